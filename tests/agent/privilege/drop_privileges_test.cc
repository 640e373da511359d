#include "agent/privilege/drop_privileges.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

namespace tokenwatch::privilege {
namespace {

constexpr char kRootStatus[] =
    "Name:\ttokenwatch-agen\n"
    "Umask:\t0022\n"
    "State:\tS (sleeping)\n"
    "Uid:\t0\t0\t0\t0\n"
    "Gid:\t0\t0\t0\t0\n"
    "FDSize:\t64\n"
    "Groups:\t0 4 27 \n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t000001ffffffffff\n"
    "CapEff:\t000001ffffffffff\n"
    "CapBnd:\t000001ffffffffff\n"
    "CapAmb:\t0000000000000000\n"
    "NoNewPrivs:\t0\n";

TEST(ParseProcStatusTest, ReadsIdsGroupsAndCapabilities) {
  absl::StatusOr<ThreadCredentials> c = ParseProcStatus(kRootStatus);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->uid[0], 0u);
  EXPECT_EQ(c->gid[3], 0u);
  EXPECT_EQ(c->groups, (std::vector<gid_t>{0, 4, 27}));
  EXPECT_EQ(c->cap_prm, 0x1ffffffffffull);
  EXPECT_EQ(c->cap_eff, 0x1ffffffffffull);
  EXPECT_EQ(c->cap_inh, 0u);
  EXPECT_EQ(c->cap_amb, 0u);

  absl::StatusOr<ThreadCredentials> nobody = ParseProcStatus(
      "Uid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\n"
      "Groups:\t\nCapInh:\t0\nCapPrm:\t0\nCapEff:\t0\n");
  ASSERT_TRUE(nobody.ok()) << nobody.status();
  EXPECT_EQ(nobody->uid[1], 65534u);
  EXPECT_TRUE(nobody->groups.empty());
}

TEST(ParseProcStatusTest, RejectsMalformedOrMissingLines) {
  std::string bad_uid = kRootStatus;
  bad_uid.replace(bad_uid.find("Uid:\t0\t0\t0\t0"), 12, "Uid:\t0\t0\tx\t0");
  EXPECT_FALSE(ParseProcStatus(bad_uid).ok());
  std::string bad_cap = kRootStatus;
  bad_cap.replace(bad_cap.find("CapEff:\t0"), 9, "CapEff:\tz");
  EXPECT_FALSE(ParseProcStatus(bad_cap).ok());
  std::string no_eff = kRootStatus;
  no_eff.erase(no_eff.find("CapEff:"), 24);
  EXPECT_FALSE(ParseProcStatus(no_eff).ok());
  EXPECT_FALSE(ParseProcStatus("").ok());
  EXPECT_FALSE(ParseProcStatus("\x01\xff:\n:::").ok());
}

TEST(ParseProcStatusTest, ReadsThisProcess) {
  std::ifstream in("/proc/self/status");
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<ThreadCredentials> c = ParseProcStatus(text.str());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->uid[0], getuid());
  EXPECT_EQ(c->gid[1], getegid());
}

TEST(LookUpUserTest, KnownUnknownAndRoot) {
  absl::StatusOr<TargetUser> nobody = LookUpUser("nobody");
  ASSERT_TRUE(nobody.ok()) << nobody.status();
  passwd* pw = getpwnam("nobody");
  ASSERT_NE(pw, nullptr);
  EXPECT_EQ(nobody->uid, pw->pw_uid);
  EXPECT_EQ(nobody->gid, pw->pw_gid);
  EXPECT_NE(std::find(nobody->groups.begin(), nobody->groups.end(), pw->pw_gid),
            nobody->groups.end());

  absl::StatusOr<TargetUser> unknown = LookUpUser("tokenwatch-no-such-user");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(unknown.status().message(),
            "unknown user 'tokenwatch-no-such-user'");
  EXPECT_EQ(LookUpUser("root").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LookUpUser("").status().code(), absl::StatusCode::kInvalidArgument);
}

// Runs `body` in a forked child (a drop cannot be undone) and returns what
// it reported: "" for success, else the failure.
std::string InChild(const std::function<std::string()>& body) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    close(fds[0]);
    std::string result = body();
    if (write(fds[1], result.data(), result.size()) < 0) _exit(3);
    _exit(result.empty() ? 0 : 1);
  }
  close(fds[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return "child crashed: " + out;
  if (WEXITSTATUS(status) != 0 && out.empty()) return "child failed silently";
  return out;
}

bool NoCapabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  for (const auto& d : data) {
    if (d.effective | d.permitted | d.inheritable) return false;
  }
  return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_RAW, 0, 0) == 0;
}

// Root with CAP_NET_RAW in its permitted and effective sets only: what a
// unit with User= and AmbientCapabilities=CAP_NET_RAW looks like.
std::string BecomeUserWithNetRaw(const TargetUser& user) {
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return "keepcaps";
  if (setgroups(0, nullptr) != 0 ||
      setresgid(user.gid, user.gid, user.gid) != 0 ||
      setresuid(user.uid, user.uid, user.uid) != 0) {
    return "cannot become the user";
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  data[0].permitted = data[0].effective = data[0].inheritable = 1u
                                                                << CAP_NET_RAW;
  if (syscall(SYS_capset, &header, data) != 0) return "capset";
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0) != 0)
    return "ambient";
  if (NoCapabilities()) return "CAP_NET_RAW did not stick";
  return "";
}

class DropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // These tests change the identity of a child: they need root, and fail
    // (not skip) without it.
    ASSERT_EQ(geteuid(), 0u) << "drop_privileges_test must run as root";
    absl::StatusOr<TargetUser> user = LookUpUser("nobody");
    ASSERT_TRUE(user.ok()) << user.status();
    nobody_ = *user;
  }
  TargetUser nobody_;
};

TEST_F(DropTest, RootDropsEveryThreadForGood) {
  std::string result = InChild([&]() -> std::string {
    // A thread started before the drop, as the metrics server's are.
    int go[2], done[2];
    if (pipe(go) != 0 || pipe(done) != 0) return "pipe";
    std::string seen;
    std::thread other([&] {
      char c;
      if (read(go[0], &c, 1) != 1) return;
      if (getuid() != nobody_.uid || geteuid() != nobody_.uid)
        seen = "other thread kept its uid";
      else if (!NoCapabilities())
        seen = "other thread kept capabilities";
      if (write(done[1], "x", 1) != 1) seen = "write";
    });
    absl::Status s = DropTo(nobody_);
    if (write(go[1], "x", 1) != 1) return "write";
    char c;
    if (read(done[0], &c, 1) != 1) return "read";
    other.join();
    if (!s.ok()) return std::string(s.message());
    if (!seen.empty()) return seen;
    if (getuid() != nobody_.uid || getgid() != nobody_.gid) return "uid/gid";
    if (!NoCapabilities()) return "capabilities left";
    if (setuid(0) == 0 || seteuid(0) == 0) return "setuid(0) succeeded";
    gid_t groups[64];
    int n = getgroups(64, groups);
    for (int i = 0; i < n; ++i) {
      if (groups[i] == 0) return "still in group 0";
    }
    return "";
  });
  EXPECT_EQ(result, "");
}

TEST_F(DropTest, SameUserWithCapabilitiesClearsThem) {
  std::string result = InChild([&]() -> std::string {
    if (std::string e = BecomeUserWithNetRaw(nobody_); !e.empty()) return e;
    if (NeedsIdentityChange(nobody_)) return "identity change still needed";
    if (absl::Status s = DropTo(nobody_); !s.ok())
      return std::string(s.message());
    if (!NoCapabilities()) return "capabilities left";
    return "";
  });
  EXPECT_EQ(result, "");
}

TEST_F(DropTest, AThreadThatKeepsCapabilitiesIsCaught) {
  std::string result = InChild([&]() -> std::string {
    if (std::string e = BecomeUserWithNetRaw(nobody_); !e.empty()) return e;
    int go[2];
    if (pipe(go) != 0) return "pipe";
    // Started with CAP_NET_RAW; capset in the main thread cannot reach it.
    std::thread other([&] {
      char c;
      if (read(go[0], &c, 1) != 1) return;
    });
    absl::Status s = DropTo(nobody_);
    if (write(go[1], "x", 1) != 1) return "write";
    other.join();
    if (s.ok()) return "DropTo accepted a thread holding CAP_NET_RAW";
    if (std::string(s.message()).find("still has capabilities") ==
        std::string::npos) {
      return "unexpected message: " + std::string(s.message());
    }
    return "";
  });
  EXPECT_EQ(result, "");
}

TEST_F(DropTest, NonRootCannotBecomeSomeoneElse) {
  std::string result = InChild([&]() -> std::string {
    if (setgroups(0, nullptr) != 0 ||
        setresgid(nobody_.gid, nobody_.gid, nobody_.gid) != 0 ||
        setresuid(nobody_.uid, nobody_.uid, nobody_.uid) != 0) {
      return "cannot become nobody";
    }
    absl::StatusOr<TargetUser> daemon = LookUpUser("daemon");
    if (!daemon.ok()) return std::string(daemon.status().message());
    absl::Status s = DropTo(*daemon);
    if (s.ok()) return "nobody became daemon";
    if (s.code() != absl::StatusCode::kPermissionDenied ||
        std::string(s.message()).find("changing user needs root") ==
            std::string::npos) {
      return "unexpected: " + s.ToString();
    }
    return "";
  });
  EXPECT_EQ(result, "");
}

}  // namespace
}  // namespace tokenwatch::privilege
