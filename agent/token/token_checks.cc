#include "agent/token/token_checks.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "agent/jose/header_check.h"
#include "agent/jose/verifier.h"
#include "common/log.h"
#include "common/strings.h"

namespace tokenwatch::token {
namespace {

constexpr size_t kMaxWeakQueue =
    4096;  // distinct HMAC tokens awaiting a search

int64_t MtimeOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
         st.st_mtim.tv_nsec;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<TokenChecks>> TokenChecks::Create(
    const config::Config& config, AgentStats* stats) {
  std::unique_ptr<TokenChecks> c(new TokenChecks(config, stats));
  c->default_max_lifetime_s_ =
      absl::ToInt64Seconds(config.detections.default_max_lifetime);
  if (!config.detections.weak_secrets_file.empty()) {
    auto list =
        jose::WeakSecretList::FromFile(config.detections.weak_secrets_file);
    if (!list.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("detections.weak_secrets_file: ",
                       std::string(list.status().message())));
    }
    c->weak_ = *std::move(list);
    c->worker_ = std::thread([p = c.get()] { p->Run(); });
  }

  for (const config::Issuer& i : config.issuers) {
    Issuer issuer;
    issuer.config = i;
    issuer.host = jose::UrlHost(i.iss);
    if (absl::Status s = c->LoadIssuer(&issuer); !s.ok()) return s;
    c->issuers_.push_back(std::move(issuer));
  }
  c->last_reload_check_ = std::chrono::steady_clock::now();
  return c;
}

// A search that will not run: the verdict is "clear", so the token's
// events do not wait forever. The raw token is wiped.
void TokenChecks::EndPending(Search* search) {
  std::fill(search->raw.begin(), search->raw.end(), '\0');
  done_.push_back({std::move(search->record), std::nullopt});
}

TokenChecks::~TokenChecks() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();  // after at most the search running
  // The worker is gone: what it posted, and what it never started, is
  // delivered here, on the owner's thread.
  for (Search& search : queue_) EndPending(&search);
  queue_.clear();
  DeliverVerdicts();
}

void TokenChecks::AdoptPending(TokenChecks* old) {
  std::deque<Search> taken;
  std::vector<Verdict> verdicts;
  {
    std::lock_guard<std::mutex> lock(old->mu_);
    taken.swap(old->queue_);
    verdicts.swap(old->done_);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (Verdict& v : verdicts) done_.push_back(std::move(v));
  for (Search& search : taken) {
    if (!weak_) {
      EndPending(&search);  // the new config searches no list
    } else if (queue_.size() >= kMaxWeakQueue) {
      if (stats_ != nullptr) stats_->Count(Drop::kWeakSecretQueue);
      EndPending(&search);
    } else {
      queue_.push_back(std::move(search));
    }
  }
  cv_.notify_one();
}

size_t TokenChecks::DeliverVerdicts() {
  std::vector<Verdict> verdicts;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_.empty()) return 0;
    verdicts.swap(done_);
  }
  for (Verdict& v : verdicts) {
    if (v.line) {
      v.record->weak_state = output::TokenRecord::kWeakFound;
      v.record->weak_detail = absl::StrCat(
          "HMAC secret found in the weak-secrets list (line ", *v.line, ")");
    } else {
      v.record->weak_state = output::TokenRecord::kWeakClear;
    }
  }
  return verdicts.size();
}

absl::Status TokenChecks::LoadIssuer(Issuer* issuer) {
  jose::KeySet keys;
  issuer->files.clear();
  const config::Issuer& i = issuer->config;
  auto note = [issuer](const std::string& path) {
    issuer->files.push_back({path, MtimeOf(path)});
  };
  if (!i.jwks_file.empty()) {
    auto ks = jose::KeySet::FromJwksFile(i.jwks_file);
    if (!ks.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("issuer ", i.iss,
                       ": jwks_file: ", std::string(ks.status().message())));
    }
    keys.Merge(*ks);
    note(i.jwks_file);
  }
  if (!i.pem_file.empty()) {
    auto ks = jose::KeySet::FromPemFile(i.pem_file);
    if (!ks.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("issuer ", i.iss,
                       ": pem_file: ", std::string(ks.status().message())));
    }
    keys.Merge(*ks);
    note(i.pem_file);
  }
  if (!i.secret_file.empty()) {
    auto secret = ReadFile(i.secret_file);
    if (!secret.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "issuer ", i.iss,
          ": secret_file: ", std::string(secret.status().message())));
    }
    keys.AddHmacSecret(*secret);
    note(i.secret_file);
    issuer->weak_secret_line.reset();
    if (weak_) {
      for (size_t n = 0; n < weak_->size(); ++n) {
        if (weak_->secret(n) == *secret)
          issuer->weak_secret_line = weak_->line(n);
      }
    }
  }
  issuer->keys = std::move(keys);
  return absl::OkStatus();
}

void TokenChecks::MaybeReload(bool force) {
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_reload_check_ < std::chrono::seconds(2)) return;
  last_reload_check_ = now;
  for (Issuer& issuer : issuers_) {
    bool changed = false;
    for (const auto& [path, mtime] : issuer.files)
      changed |= MtimeOf(path) != mtime;
    if (!changed) continue;
    Issuer fresh = issuer;
    if (absl::Status s = LoadIssuer(&fresh); !s.ok()) {
      // Keep the keys that worked; say why the new ones did not.
      log::Warning("keeping old keys: %s", std::string(s.message()));
      issuer.files =
          fresh.files;  // do not retry the same broken file every time
      continue;
    }
    issuer = std::move(fresh);
    log::Info("reloaded keys of issuer %s", issuer.config.iss);
  }
}

std::vector<output::Finding> TokenChecks::Check(std::string_view raw,
                                                const v1::TokenInfo& t,
                                                bool* search_weak) {
  std::vector<output::Finding> out;
  if (search_weak != nullptr) *search_weak = true;
  if (t.kind() != v1::TOKEN_KIND_JWT) return out;
  size_t last_dot = raw.rfind('.');
  bool empty_signature =
      last_dot == std::string_view::npos || last_dot + 1 == raw.size();
  bool alg_none = util::EqualsIgnoreCase(t.alg(), "none") || empty_signature;
  if (alg_none) {
    out.push_back(
        {AlertType::kAlgNone,
         util::EqualsIgnoreCase(t.alg(), "none")
             ? absl::StrCat("unsigned token (alg \"", t.alg(), "\")")
             : absl::StrCat("empty signature (alg \"", t.alg(), "\")")});
  }
  const Issuer* issuer = nullptr;
  for (const Issuer& i : issuers_) {
    if (i.config.iss == t.iss()) issuer = &i;
  }
  if (issuer != nullptr && !alg_none && !issuer->config.algorithms.empty() &&
      std::find(issuer->config.algorithms.begin(),
                issuer->config.algorithms.end(),
                t.alg()) == issuer->config.algorithms.end()) {
    out.push_back(
        {AlertType::kAlgNotAllowed,
         absl::StrCat("alg ", t.alg(), " is not in the issuer's algorithms [",
                      absl::StrJoin(issuer->config.algorithms, ", "), "]")});
  }
  if (issuer != nullptr && !alg_none && !issuer->keys.empty()) {
    jose::VerifyDetails d;
    jose::SignatureVerdict v =
        jose::Verify(raw, t.alg(), t.kid(), issuer->keys, &d);
    if (v == jose::SignatureVerdict::kValid && jose::IsHmacAlg(t.alg())) {
      // Signed with the configured secret: it alone decides weakness.
      if (search_weak != nullptr) *search_weak = false;
      if (issuer->weak_secret_line) {
        out.push_back({AlertType::kWeakSecret,
                       absl::StrCat("the issuer's configured HMAC secret "
                                    "is in the weak-secrets list (line ",
                                    *issuer->weak_secret_line, ")")});
      }
    }
    if (v == jose::SignatureVerdict::kInvalid) {
      out.push_back(
          {AlertType::kInvalidSignature,
           absl::StrCat("signature does not verify against the issuer's keys",
                        d.reason.empty() ? "" : ": ",
                        absl::string_view(d.reason.data(), d.reason.size()))});
    } else if (v == jose::SignatureVerdict::kUnknownKid) {
      out.push_back({AlertType::kInvalidSignature,
                     absl::StrCat("kid \"", t.kid(),
                                  "\" is not in the issuer's key set")});
    }
  }
  std::vector<std::string> header =
      jose::HeaderFindings(t, issuer != nullptr ? issuer->host : "");
  if (!header.empty())
    out.push_back({AlertType::kHeaderInjection, absl::StrJoin(header, "; ")});
  if (!t.has_exp()) {
    out.push_back({AlertType::kNoExpiry, "the token has no exp claim"});
  } else if (t.has_iat()) {
    int64_t max_s = issuer != nullptr && issuer->config.max_lifetime
                        ? absl::ToInt64Seconds(*issuer->config.max_lifetime)
                        : default_max_lifetime_s_;
    int64_t lifetime = t.exp() - t.iat();
    if (lifetime > max_s) {
      out.push_back({AlertType::kLongLived,
                     absl::StrCat("lifetime ",
                                  absl::FormatDuration(absl::Seconds(lifetime)),
                                  " exceeds ",
                                  absl::FormatDuration(absl::Seconds(max_s)))});
    }
  }
  return out;
}

bool TokenChecks::QueueWeakSecret(std::string_view raw,
                                  const output::MutableTokenRef& record) {
  if (!weak_ || record->info.kind() != v1::TOKEN_KIND_JWT ||
      !jose::IsHmacAlg(record->info.alg())) {
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (queue_.size() >= kMaxWeakQueue) {
    stats_->Count(Drop::kWeakSecretQueue);
    return false;
  }
  record->weak_state = output::TokenRecord::kWeakPending;
  // The raw token stays on this host, in memory; the worker reads only the
  // job, never the record, which it carries back with its verdict.
  queue_.push_back({std::string(raw), record->info.alg(), record});
  cv_.notify_one();
  return true;
}

void TokenChecks::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Search search = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    lock.unlock();
    std::optional<size_t> hit =
        weak_->FindSecretForToken(search.raw, search.alg);
    std::optional<size_t> line;
    if (hit) line = weak_->line(*hit);
    std::fill(search.raw.begin(), search.raw.end(), '\0');
    lock.lock();
    done_.push_back({std::move(search.record), line});
    --busy_;
    cv_.notify_all();
  }
}

bool TokenChecks::Idle() {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.empty() && busy_ == 0;
}

void TokenChecks::Drain(std::chrono::milliseconds timeout) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout,
                 [this] { return queue_.empty() && busy_ == 0; });
  }
  DeliverVerdicts();
}

}  // namespace tokenwatch::token
