// Store wrappers for tests of what the engine and the ingest service do
// when the store fails or is slow. Each passes everything else on to a
// real store.
#ifndef TOKENWATCH_TESTS_COLLECTOR_TESTING_STORES_H_
#define TOKENWATCH_TESTS_COLLECTOR_TESTING_STORES_H_

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/store/store.h"

namespace tokenwatch::collector::test {

// Passes every call on to `real`.
class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(Store* real) : real_(real) {}
  absl::StatusOr<Snapshot> Load() override { return real_->Load(); }
  absl::Status Commit(const CommitBatch& batch) override {
    return real_->Commit(batch);
  }
  absl::StatusOr<std::vector<Alert>> QueryAlerts(const AlertQuery& q) override {
    return real_->QueryAlerts(q);
  }
  absl::StatusOr<std::optional<TokenRow>> GetToken(
      const std::string& identity) override {
    return real_->GetToken(identity);
  }

 private:
  Store* real_;
};

// Refuses commits while `failing` (a full disk); counts the attempts.
// Used from one thread.
class FlakyStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  absl::Status Commit(const CommitBatch& batch) override {
    ++attempts;
    if (failing) return absl::ResourceExhaustedError("disk full (test)");
    return ForwardingStore::Commit(batch);
  }
  bool failing = false;
  int attempts = 0;
};

// While closed, a commit waits inside Commit until Open() (a stalled
// fsync); thread-safe.
class GatedStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  absl::Status Commit(const CommitBatch& batch) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++waiting_;
      changed_.notify_all();
      changed_.wait(lock, [this] { return open_; });
      --waiting_;
    }
    return ForwardingStore::Commit(batch);
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    changed_.notify_all();
  }
  // Whether a commit is waiting at the gate, within `timeout`.
  bool WaitForBlockedCommit(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                             [this] { return waiting_ > 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool open_ = true;
  int waiting_ = 0;
};

}  // namespace tokenwatch::collector::test

#endif  // TOKENWATCH_TESTS_COLLECTOR_TESTING_STORES_H_
