#include "collector/notify/notifier.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "collector/alert_json.h"
#include "common/json.h"
#include "common/log.h"
#include "common/time_format.h"

namespace tokenwatch::collector {
namespace {

void Field(std::string* out, const char* key, std::string_view value,
           bool* first) {
  if (!*first) out->push_back(',');
  *first = false;
  util::AppendJsonString(out, key);
  out->push_back(':');
  util::AppendJsonString(out, value);
}

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

}  // namespace

std::string AlertmanagerBody(const Alert& a, absl::Duration resolve_after) {
  std::string out = "[{\"labels\":{";
  bool first = true;
  const std::string type(AlertTypeName(a.type));
  Field(&out, "alertname", absl::StrCat("tokenwatch_", type), &first);
  Field(&out, "type", type, &first);
  Field(&out, "severity", SeverityName(a.severity), &first);
  Field(&out, "service", a.service, &first);
  Field(&out, "token", a.token.fp(),
        &first);  // a keyed hash: one alert per token
  out += "},\"annotations\":{";
  first = true;
  Field(&out, "summary", absl::StrCat(type, " at ", a.service), &first);
  Field(&out, "description", a.detail, &first);
  Field(&out, "alert_id", a.id, &first);
  Field(&out, "token_id", a.identity, &first);
  if (!a.token.sub().empty()) Field(&out, "sub", a.token.sub(), &first);
  Field(&out, "client", a.client, &first);
  Field(&out, "agent", a.agent, &first);
  Field(&out, "request", absl::StrCat(a.method, " ", a.path), &first);
  Field(&out, "status", a.status == 0 ? "none" : std::to_string(a.status),
        &first);
  Field(&out, "accepted",
        !a.accepted   ? "unknown"
        : *a.accepted ? "true"
                      : "false",
        &first);
  out += "},";
  first = true;
  Field(&out, "startsAt", FormatTimestamp(a.ts_us), &first);
  Field(&out, "endsAt",
        FormatTimestamp(a.ts_us + absl::ToInt64Microseconds(resolve_after)),
        &first);
  out += "}]";
  return out;
}

std::string WebhookSignature(const std::string& secret,
                             const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac,
       &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256=";
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xf]);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Notifier>> Notifier::Create(
    const config::Collector& config, Options options) {
  std::unique_ptr<Notifier> n(new Notifier(options));
  if (config.alertmanager) {
    std::string url = config.alertmanager->url;
    while (!url.empty() && url.back() == '/') url.pop_back();
    n->sinks_.push_back({"alertmanager", url + "/api/v2/alerts", "",
                         config.alertmanager->resolve_after});
  }
  for (const config::WebhookSink& w : config.webhooks) {
    std::string secret;
    if (!w.secret_file.empty()) {
      std::ifstream in(w.secret_file, std::ios::binary);
      if (!in) {
        return absl::InvalidArgumentError(
            absl::StrCat("cannot read webhook secret_file ", w.secret_file));
      }
      std::stringstream ss;
      ss << in.rdbuf();
      secret = ss.str();
    }
    n->sinks_.push_back({"webhook", w.url, secret, absl::ZeroDuration()});
  }
  if (!n->sinks_.empty()) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    n->thread_ = std::thread([p = n.get()] { p->Run(); });
  }
  return n;
}

Notifier::~Notifier() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Notifier::Enqueue(const Alert& alert) {
  if (sinks_.empty()) return;
  std::string webhook_body;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < sinks_.size(); ++i) {
    Sink& s = sinks_[i];
    if (queue_.size() >= opt_.max_queue) {
      ++s.dropped;  // bounded: the newest is refused, and counted
      continue;
    }
    std::string body;
    if (s.name == "alertmanager") {
      body = AlertmanagerBody(alert, s.resolve_after);
    } else {
      if (webhook_body.empty()) webhook_body = AlertJson(alert);
      body = webhook_body;
    }
    queue_.push_back({i, std::move(body), 0, std::chrono::steady_clock::now()});
  }
  cv_.notify_all();
}

bool Notifier::Post(const Sink& sink, const std::string& body,
                    std::string* error) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    *error = "curl_easy_init failed";
    return false;
  }
  curl_slist* headers =
      curl_slist_append(nullptr, "Content-Type: application/json");
  if (!sink.secret.empty()) {
    headers = curl_slist_append(headers, ("X-Tokenwatch-Signature: " +
                                          WebhookSignature(sink.secret, body))
                                             .c_str());
  }
  curl_easy_setopt(curl, CURLOPT_URL, sink.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(opt_.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Discard);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    *error = curl_easy_strerror(rc);
    return false;
  }
  if (status < 200 || status >= 300) {
    *error = absl::StrCat("HTTP ", status);
    return false;
  }
  return true;
}

void Notifier::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (stop_) return;
    auto now = std::chrono::steady_clock::now();
    auto due = std::find_if(queue_.begin(), queue_.end(),
                            [&](const Job& j) { return j.due <= now; });
    if (due == queue_.end()) {
      auto next = std::chrono::steady_clock::time_point::max();
      for (const Job& j : queue_) next = std::min(next, j.due);
      if (next == std::chrono::steady_clock::time_point::max()) {
        cv_.wait(lock);
      } else {
        cv_.wait_until(lock, next);
      }
      continue;
    }
    Job job = std::move(*due);
    queue_.erase(due);
    ++in_flight_;
    Sink sink = sinks_[job.sink];  // a copy: Post runs unlocked
    lock.unlock();
    std::string error;
    bool ok = Post(sink, job.body, &error);
    lock.lock();
    --in_flight_;
    Sink& s = sinks_[job.sink];
    if (ok) {
      ++s.ok;
    } else if (++job.attempts >= opt_.max_attempts) {
      ++s.dropped;
      log::Error("giving up delivering an alert to %s after %d attempts: %s",
                 s.url, job.attempts, error);
    } else {
      ++s.retry;
      auto backoff = std::min(opt_.backoff_max,
                              opt_.backoff_initial * (1 << (job.attempts - 1)));
      job.due = std::chrono::steady_clock::now() + backoff;
      queue_.push_back(std::move(job));
    }
    cv_.notify_all();
  }
}

bool Notifier::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout,
                      [this] { return queue_.empty() && in_flight_ == 0; });
}

std::vector<DeliveryCounters> Notifier::Counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<DeliveryCounters> out;
  for (const Sink& s : sinks_) {
    out.push_back({s.name, "ok", s.ok});
    out.push_back({s.name, "retry", s.retry});
    out.push_back({s.name, "dropped", s.dropped});
  }
  return out;
}

}  // namespace tokenwatch::collector
