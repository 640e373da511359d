// Least privilege for the agent (`--user`, `agent.user`): once the capture is
// open and the listeners are bound, the agent becomes an unprivileged user
// with no capabilities, for good, as `tcpdump -Z` does.
#ifndef TOKENWATCH_AGENT_PRIVILEGE_DROP_PRIVILEGES_H_
#define TOKENWATCH_AGENT_PRIVILEGE_DROP_PRIVILEGES_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tokenwatch::privilege {

// The user the agent becomes, resolved once at start-up so that a typo
// fails before anything is opened.
struct TargetUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // primary and supplementary, sorted, unique
};

// Looks `name` up in the user and group databases (NSS). An unknown user is
// NotFound; root (uid 0) is InvalidArgument, since it would drop nothing.
absl::StatusOr<TargetUser> LookUpUser(std::string_view name);

// Whether the process must change its identity to become `user`: false when
// it already runs as that user (systemd's User=, or setpriv), where only the
// capabilities are left to clear.
bool NeedsIdentityChange(const TargetUser& user);

// Becomes `user` irrevocably: groups, then gid, then uid (each step needs
// the privilege the next one gives up), with PR_SET_KEEPCAPS off so that
// the kernel empties the permitted, effective and ambient sets of every
// thread; then the calling thread's remaining sets (inheritable, ambient)
// are cleared and the result is checked with VerifyDropped. glibc applies
// setgroups/setresgid/setresuid to every thread of the process; capset only
// to the calling thread, so a process that keeps its uid must call this
// before it starts any thread (VerifyDropped catches a thread left behind).
absl::Status DropTo(const TargetUser& user);

// The credentials of one thread, as /proc/<pid>/task/<tid>/status shows
// them.
struct ThreadCredentials {
  uid_t uid[4] = {0, 0, 0, 0};  // real, effective, saved, filesystem
  gid_t gid[4] = {0, 0, 0, 0};
  std::vector<gid_t> groups;  // sorted
  uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_amb = 0;
};

// Parses the text of a /proc status file. A missing or malformed Uid, Gid,
// Groups or Cap* line is InvalidArgument (CapAmb may be absent: old kernels).
absl::StatusOr<ThreadCredentials> ParseProcStatus(std::string_view status);

// Checks that every thread of this process runs as `user` (all four uids
// and gids, and its groups), holds no capability in its inheritable,
// permitted, effective or ambient set, and that setuid(0) fails.
absl::Status VerifyDropped(const TargetUser& user);

}  // namespace tokenwatch::privilege

#endif  // TOKENWATCH_AGENT_PRIVILEGE_DROP_PRIVILEGES_H_
