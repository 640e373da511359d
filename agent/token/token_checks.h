// Checks that need the raw token, run once per distinct token on the agent
// (SPEC: signatures, algorithm policy, weak secrets, header abuse,
// lifetimes). Results travel on usage events as findings; the raw token
// never leaves the host. Keys are reloaded when their files change.
#ifndef TOKENWATCH_AGENT_TOKEN_TOKEN_CHECKS_H_
#define TOKENWATCH_AGENT_TOKEN_TOKEN_CHECKS_H_

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/jose/key_set.h"
#include "agent/jose/weak_secret.h"
#include "agent/output/usage_record.h"
#include "agent/stats.h"
#include "common/config.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::token {

class TokenChecks {
 public:
  // Loads issuers' keys and the weak-secrets list; errors name the file.
  static absl::StatusOr<std::unique_ptr<TokenChecks>> Create(
      const config::Config& config, AgentStats* stats);
  ~TokenChecks();

  // Synchronous checks of a freshly decoded token, in (type, detail) pairs.
  // `*search_weak` (optional) says whether the weak-secret search is still
  // needed: not when the token verified with the issuer's configured secret
  // (that secret was checked against the list once, at load).
  std::vector<output::Finding> Check(std::string_view raw,
                                     const v1::TokenInfo& info,
                                     bool* search_weak = nullptr);
  // Queues the weak-secret search of an HMAC token on the worker (never on
  // the packet path) and marks the record pending. The worker posts its
  // verdict back; DeliverVerdicts, on the caller's thread, writes it into
  // the record. False when there is nothing to search.
  bool QueueWeakSecret(std::string_view raw,
                       const output::MutableTokenRef& record);
  // Writes the verdicts the worker has posted into their records (found or
  // clear). Call on the thread that owns the records (the pipeline's).
  // Returns how many were delivered.
  size_t DeliverVerdicts();
  // No search queued or running (its verdict may still await delivery).
  bool Idle();
  // Re-reads key files whose modification time changed. Checks at most
  // every 2 s unless `force` (call it as often as convenient).
  void MaybeReload(bool force = false);
  void set_stats(AgentStats* stats) { stats_ = stats; }
  // Waits until queued searches are done, at most `timeout` (end of a
  // replay), then delivers their verdicts.
  void Drain(std::chrono::milliseconds timeout);
  // Takes over the searches `old` has queued but not started, and its
  // undelivered verdicts (a config reload): they run against this list, or
  // end clear when this config has none. Nothing is left pending, so no
  // held event waits forever, and the capture thread never waits for a
  // queue to empty.
  void AdoptPending(TokenChecks* old);

 private:
  struct Issuer {
    config::Issuer config;
    jose::KeySet keys;
    std::string host;  // of iss, for jku/x5u checks
    std::optional<size_t>
        weak_secret_line;  // the configured secret is on the list
    std::vector<std::pair<std::string, int64_t>> files;  // path, mtime
  };
  TokenChecks(const config::Config& config, AgentStats* stats)
      : config_(config), stats_(stats) {}
  // A search for the worker: it reads only these fields.
  struct Search {
    std::string raw;
    std::string alg;
    output::MutableTokenRef record;  // carried back, never dereferenced
  };
  struct Verdict {
    output::MutableTokenRef record;
    std::optional<size_t> line;  // of the weak secret found
  };
  absl::Status LoadIssuer(Issuer* issuer);
  void Run();
  void EndPending(Search* search);  // with mu_ held or the worker gone

  const config::Config& config_;
  AgentStats* stats_;
  std::vector<Issuer> issuers_;
  int64_t default_max_lifetime_s_;
  std::optional<jose::WeakSecretList> weak_;
  // Worker.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Search> queue_;
  std::vector<Verdict> done_;  // posted by the worker, delivered by the owner
  size_t busy_ = 0;
  bool stop_ = false;
  std::thread worker_;
  std::chrono::steady_clock::time_point last_reload_check_;
};

}  // namespace tokenwatch::token

#endif  // TOKENWATCH_AGENT_TOKEN_TOKEN_CHECKS_H_
