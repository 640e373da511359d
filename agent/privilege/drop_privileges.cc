#include "agent/privilege/drop_privileges.h"

#include <dirent.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace tokenwatch::privilege {
namespace {

std::string Errno(int err) { return std::strerror(err); }

// "tokenwatch (uid 998, gid 998)"
std::string Describe(const TargetUser& user) {
  return absl::StrCat(user.name, " (uid ", user.uid, ", gid ", user.gid, ")");
}

template <typename Id>
bool ParseIds(absl::string_view text, Id* out, size_t want) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (parts.size() != want) return false;
  for (size_t i = 0; i < want; ++i) {
    uint32_t v = 0;
    if (!absl::SimpleAtoi(parts[i], &v)) return false;
    out[i] = static_cast<Id>(v);
  }
  return true;
}

absl::Status ClearCapabilities() {
  // Ambient capabilities survive a capset that keeps them permitted and
  // inheritable; clear them first. EINVAL: a kernel without ambient sets.
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 &&
      errno != EINVAL) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot clear ambient capabilities: ", Errno(errno)));
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capset, &header, data) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot clear capabilities: ", Errno(errno)));
  }
  return absl::OkStatus();
}

std::vector<gid_t> CurrentGroups() {
  int n = getgroups(0, nullptr);
  std::vector<gid_t> groups(n > 0 ? n : 0);
  if (n > 0) n = getgroups(n, groups.data());
  groups.resize(n > 0 ? n : 0);
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  return groups;
}

}  // namespace

absl::StatusOr<TargetUser> LookUpUser(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("empty user name");
  std::string user_name(name);
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size > 0 ? size : 16384);
  passwd pw;
  passwd* found = nullptr;
  int err;
  while ((err = getpwnam_r(user_name.c_str(), &pw, buf.data(), buf.size(),
                           &found)) == ERANGE &&
         buf.size() < (1u << 20)) {
    buf.resize(buf.size() * 2);
  }
  if (err != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot look up user '", user_name, "': ", Errno(err)));
  }
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown user '", user_name, "'"));
  }
  TargetUser user;
  user.name = user_name;
  user.uid = pw.pw_uid;
  user.gid = pw.pw_gid;
  if (user.uid == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "user '", user_name, "' has uid 0: running as it drops no privilege"));
  }
  int n = 32;
  for (;;) {
    user.groups.resize(n);
    int got = n;
    if (getgrouplist(user_name.c_str(), user.gid, user.groups.data(), &got) >=
        0) {
      user.groups.resize(got);
      break;
    }
    if (got <= n || got > 65536) {
      return absl::UnavailableError(
          absl::StrCat("cannot list the groups of user '", user_name, "'"));
    }
    n = got;
  }
  std::sort(user.groups.begin(), user.groups.end());
  user.groups.erase(std::unique(user.groups.begin(), user.groups.end()),
                    user.groups.end());
  return user;
}

// Groups beyond the user's own (a stale list from whoever started us, a
// container's --group-add 0) are privilege too; fewer groups are fine.
bool OnlyUsersGroups(const std::vector<gid_t>& groups, const TargetUser& user) {
  for (gid_t g : groups) {
    if (!std::binary_search(user.groups.begin(), user.groups.end(), g) &&
        g != user.gid) {
      return false;
    }
  }
  return true;
}

bool NeedsIdentityChange(const TargetUser& user) {
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  if (getresuid(&ruid, &euid, &suid) != 0 ||
      getresgid(&rgid, &egid, &sgid) != 0) {
    return true;
  }
  return !(ruid == user.uid && euid == user.uid && suid == user.uid &&
           rgid == user.gid && egid == user.gid && sgid == user.gid &&
           OnlyUsersGroups(CurrentGroups(), user));
}

absl::Status DropTo(const TargetUser& user) {
  if (NeedsIdentityChange(user)) {
    // Off is the default; say so anyway: with it on, the kernel would keep
    // the permitted set across setuid.
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
      return absl::InternalError(
          absl::StrCat("cannot turn PR_SET_KEEPCAPS off: ", Errno(errno)));
    }
    // Groups first: once the uid is gone, so is the right to change them.
    if (setgroups(user.groups.size(), user.groups.data()) != 0) {
      int err = errno;
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot set the groups of user ", Describe(user), ": ", Errno(err),
          err == EPERM ? " (changing user needs root)" : ""));
    }
    if (setresgid(user.gid, user.gid, user.gid) != 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot set the group id of user ", Describe(user), ": ",
                       Errno(errno)));
    }
    if (setresuid(user.uid, user.uid, user.uid) != 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot set the user id of user ", Describe(user), ": ",
                       Errno(errno)));
    }
    if (CurrentGroups() != user.groups) {
      return absl::InternalError(
          absl::StrCat("groups after the drop to ", Describe(user), " are ",
                       absl::StrJoin(CurrentGroups(), ","), ", expected ",
                       absl::StrJoin(user.groups, ",")));
    }
  }
  if (absl::Status s = ClearCapabilities(); !s.ok()) return s;
  return VerifyDropped(user);
}

absl::StatusOr<ThreadCredentials> ParseProcStatus(std::string_view status) {
  ThreadCredentials c;
  bool have_uid = false, have_gid = false, have_groups = false;
  bool have_inh = false, have_prm = false, have_eff = false;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(status.data(), status.size()), '\n')) {
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    absl::string_view key = line.substr(0, colon);
    absl::string_view value =
        absl::StripAsciiWhitespace(line.substr(colon + 1));
    auto cap = [&](uint64_t* out, bool* have) -> bool {
      *have = absl::SimpleHexAtoi(value, out);
      return *have;
    };
    bool ok = true;
    if (key == "Uid") {
      ok = have_uid = ParseIds(value, c.uid, 4);
    } else if (key == "Gid") {
      ok = have_gid = ParseIds(value, c.gid, 4);
    } else if (key == "Groups") {
      have_groups = true;
      for (absl::string_view g :
           absl::StrSplit(value, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
        uint32_t v = 0;
        if (!absl::SimpleAtoi(g, &v)) {
          ok = false;
          break;
        }
        c.groups.push_back(static_cast<gid_t>(v));
      }
    } else if (key == "CapInh") {
      ok = cap(&c.cap_inh, &have_inh);
    } else if (key == "CapPrm") {
      ok = cap(&c.cap_prm, &have_prm);
    } else if (key == "CapEff") {
      ok = cap(&c.cap_eff, &have_eff);
    } else if (key == "CapAmb") {
      bool have_amb = false;
      ok = cap(&c.cap_amb, &have_amb);
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed status line '", line, "'"));
    }
  }
  if (!have_uid || !have_gid || !have_groups || !have_inh || !have_prm ||
      !have_eff) {
    return absl::InvalidArgumentError(
        "status lacks a Uid, Gid, Groups, CapInh, CapPrm or CapEff line");
  }
  std::sort(c.groups.begin(), c.groups.end());
  return c;
}

absl::Status VerifyDropped(const TargetUser& user) {
  std::vector<gid_t> groups = CurrentGroups();
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot list /proc/self/task: ", Errno(errno)));
  }
  absl::Status result = absl::OkStatus();
  int threads = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::string path = absl::StrCat("/proc/self/task/", e->d_name, "/status");
    std::ifstream in(path);
    if (!in) continue;  // the thread has just exited
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<ThreadCredentials> c = ParseProcStatus(text.str());
    if (!c.ok()) {
      result = absl::InternalError(
          absl::StrCat(path, ": ", std::string(c.status().message())));
      break;
    }
    ++threads;
    std::string wrong;
    for (int i = 0; i < 4; ++i) {
      if (c->uid[i] != user.uid) wrong = absl::StrCat("uid ", c->uid[i]);
      if (c->gid[i] != user.gid) wrong = absl::StrCat("gid ", c->gid[i]);
    }
    if (c->groups != groups || !OnlyUsersGroups(c->groups, user))
      wrong = absl::StrCat("groups ", absl::StrJoin(c->groups, ","));
    if (c->cap_inh | c->cap_prm | c->cap_eff | c->cap_amb) {
      wrong = absl::StrFormat(
          "capabilities inh=%016x prm=%016x eff=%016x amb=%016x", c->cap_inh,
          c->cap_prm, c->cap_eff, c->cap_amb);
    }
    if (!wrong.empty()) {
      result = absl::InternalError(
          absl::StrCat("thread ", e->d_name, " still has ", wrong,
                       " after the drop to ", Describe(user)));
      break;
    }
  }
  closedir(dir);
  if (!result.ok()) return result;
  if (threads == 0) return absl::InternalError("no thread in /proc/self/task");
  // The raw system calls test this thread only, without glibc's broadcast
  // to the others: success would mean the drop can be undone.
  if (syscall(SYS_setuid, 0) == 0) {
    return absl::InternalError(
        absl::StrCat("setuid(0) succeeded after the drop to ", Describe(user)));
  }
  if (user.gid != 0 && syscall(SYS_setgid, 0) == 0) {
    return absl::InternalError(
        absl::StrCat("setgid(0) succeeded after the drop to ", Describe(user)));
  }
  return absl::OkStatus();
}

}  // namespace tokenwatch::privilege
