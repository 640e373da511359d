#include "collector/app.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/alert_json.h"
#include "collector/health.h"
#include "collector/http/bearer_auth.h"
#include "common/log.h"
#include "common/tls_credentials.h"

namespace tokenwatch::collector {
namespace {

// A usage or configuration error: exit 2.
absl::Status UsageError(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

// A runtime failure: exit 1, whatever the code of the error behind it.
absl::Status RuntimeError(absl::string_view message) {
  return absl::UnavailableError(message);
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

// Whether a gRPC listen address only takes connections from this host.
bool IsLoopback(const std::string& listen) {
  return listen.rfind("127.", 0) == 0 || listen.rfind("localhost:", 0) == 0 ||
         listen.rfind("[::1]:", 0) == 0 || listen.rfind("unix:", 0) == 0;
}

}  // namespace

CollectorApp::CollectorApp(CollectorFlags flags, const std::atomic<bool>* stop,
                           std::atomic<bool>* reload)
    : flags_(std::move(flags)), stop_(stop), reload_(reload) {}

CollectorApp::~CollectorApp() { Teardown(); }

int CollectorApp::Run() {
  using Step = absl::Status (CollectorApp::*)();
  static constexpr Step kStartUp[] = {
      &CollectorApp::LoadConfig,
      &CollectorApp::OpenStore,
      &CollectorApp::OpenAlertsOut,
      &CollectorApp::StartNotifier,
      &CollectorApp::LoadRevocations,
      &CollectorApp::RestoreState,
      &CollectorApp::LoadIngestCredentials,
      &CollectorApp::LoadApiToken,
      &CollectorApp::StartIngest,
      &CollectorApp::StartApi,
  };
  for (Step step : kStartUp) {
    if (absl::Status s = (this->*step)(); !s.ok()) {
      // "tokenwatch-collector: FILE:LINE: key '...': ...", untagged.
      log::StartupFailure(Message(s));
      Teardown();
      return absl::IsInvalidArgument(s) ? 2 : 1;
    }
  }
  Serve();
  Teardown();
  return 0;
}

absl::Status CollectorApp::LoadConfig() {
  config::Config file;
  if (!flags_.config.empty()) {
    absl::StatusOr<config::Config> loaded = config::LoadConfig(flags_.config);
    if (!loaded.ok()) return UsageError(loaded.status().message());
    file = *std::move(loaded);
  }
  config_ = file;
  if (!flags_.listen.empty()) config_.collector.listen = flags_.listen;
  if (!flags_.http_listen.empty())
    config_.collector.http_listen = flags_.http_listen;
  if (!flags_.store.empty()) config_.collector.store = flags_.store;
  if (!flags_.alerts_out.empty())
    config_.collector.alerts_out = flags_.alerts_out;
  if (!flags_.config.empty()) {
    reloader_ = std::make_unique<ConfigReloader>(flags_.config, std::move(file),
                                                 config_);
  }
  return absl::OkStatus();
}

absl::Status CollectorApp::OpenStore() {
  absl::StatusOr<std::unique_ptr<Store>> store =
      collector::OpenStore(config_.collector.store);
  // A malformed URI is a usage error; a file that cannot be used is not.
  if (!store.ok()) {
    return absl::IsInvalidArgument(store.status())
               ? store.status()
               : RuntimeError(store.status().message());
  }
  store_ = *std::move(store);
  return absl::OkStatus();
}

absl::Status CollectorApp::OpenAlertsOut() {
  const std::string& path = config_.collector.alerts_out;
  if (path.empty()) return absl::OkStatus();
  alerts_file_ = path == "-" ? stdout : fopen(path.c_str(), "a");
  if (alerts_file_ == nullptr) {
    return RuntimeError(
        absl::StrCat("cannot append to ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status CollectorApp::StartNotifier() {
  absl::StatusOr<std::unique_ptr<Notifier>> notifier =
      Notifier::Create(config_.collector, {});
  if (!notifier.ok()) return UsageError(notifier.status().message());
  notifier_ = *std::move(notifier);
  return absl::OkStatus();
}

absl::Status CollectorApp::LoadRevocations() {
  revocations_ =
      std::make_unique<RevocationList>(config_.detections.revoked_jtis_file);
  if (absl::Status s = revocations_->MaybeReload(); !s.ok()) {
    return UsageError(s.message());
  }
  return absl::OkStatus();
}

absl::Status CollectorApp::RestoreState() {
  engine_ = std::make_unique<Engine>(
      config_, store_.get(), [this](const Alert& a) { OnAlert(a); },
      revocations_.get());
  if (absl::Status s = engine_->Restore(); !s.ok()) {
    return RuntimeError(absl::StrCat("cannot load ", config_.collector.store,
                                     ": ", s.message()));
  }
  return absl::OkStatus();
}

// gRPC ingest over TLS when configured (mTLS with a client CA).
absl::Status CollectorApp::LoadIngestCredentials() {
  ingest_credentials_ = grpc::InsecureServerCredentials();
  if (!config_.collector.tls.has_value()) {
    const config::Collector& c = config_.collector;
    if (IsLoopback(c.listen)) return absl::OkStatus();
    // Plaintext off loopback: anyone who reaches the port can send events
    // as any agent and read what agents send (issue 12, item 1).
    if (!c.allow_plaintext) {
      return UsageError(absl::StrCat(
          "--listen ", c.listen,
          ": plaintext gRPC off loopback lets anyone on the network send "
          "events as any agent; configure collector.tls, listen on "
          "127.0.0.1, or set collector.allow_plaintext: true"));
    }
    log::Warning(
        "ingest on %s is plaintext gRPC (collector.allow_plaintext): anyone "
        "who reaches it can send events as any agent and read theirs",
        c.listen);
    return absl::OkStatus();
  }
  auto tls = config::MakeServerCredentials(*config_.collector.tls);
  if (!tls.ok()) return UsageError(tls.status().message());
  for (const std::string& w : tls->warnings) log::Warning("%s", w);
  if (config_.collector.tls->client_ca_file.empty()) {
    log::Warning(
        "collector.tls has no client_ca_file: any client that reaches %s may "
        "send events",
        config_.collector.listen);
  }
  ingest_credentials_ = tls->credentials;
  return absl::OkStatus();
}

// The API's write token; its value is never printed.
absl::Status CollectorApp::LoadApiToken() {
  const config::Collector& c = config_.collector;
  if (c.http_token_file.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> token = LoadBearerToken(c.http_token_file.path);
  if (!token.ok()) {
    return UsageError(
        absl::StrCat(c.http_token_file.where, ": ", token.status().message()));
  }
  api_options_.write_token = *std::move(token);
  const std::string& http = c.http_listen;
  if (http.rfind("127.", 0) != 0 && http.rfind("localhost:", 0) != 0 &&
      http.rfind("[::1]:", 0) != 0) {
    // The API speaks plain HTTP: off loopback, put a TLS proxy in front.
    log::Warning(
        "the API on %s is plain HTTP: the bearer token crosses the network "
        "in the clear",
        http);
  }
  return absl::OkStatus();
}

absl::Status CollectorApp::StartIngest() {
  const config::CollectorLimits& lim = config_.collector.limits;
  IngestOptions options;
  options.max_inflight_bytes = static_cast<int64_t>(lim.max_inflight_bytes);
  options.max_streams = static_cast<int>(lim.max_streams);
  options.idle_timeout = std::chrono::milliseconds(
      absl::ToInt64Milliseconds(lim.stream_idle_timeout));
  options.max_string_bytes = lim.max_string_bytes;
  options.bind_agent_to_certificate =
      config_.collector.tls.has_value() &&
      !config_.collector.tls->client_ca_file.empty();
  service_ = std::make_unique<IngestService>(engine_.get(), options);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.collector.listen, ingest_credentials_,
                           &grpc_port_);
  builder.RegisterService(service_.get());
  // A real batch (1,024 events) is well under a MiB; a frame is read whole.
  builder.SetMaxReceiveMessageSize(static_cast<int>(lim.max_message_bytes));
  // gRPC's own buffers (frames being read, per connection) are bounded
  // apart from the batches the service holds.
  grpc::ResourceQuota quota("tokenwatch-ingest");
  quota.Resize(static_cast<size_t>(lim.max_inflight_bytes) +
               static_cast<size_t>(lim.max_message_bytes) * 8);
  builder.SetResourceQuota(quota);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || grpc_port_ == 0) {
    return RuntimeError(
        absl::StrCat("cannot listen on ", config_.collector.listen));
  }
  return absl::OkStatus();
}

absl::Status CollectorApp::StartApi() {
  IngestService* service = service_.get();
  Notifier* notifier = notifier_.get();
  metrics_ = std::make_unique<CollectorMetrics>(
      [service](const std::function<void(const Engine&)>& fn) {
        service->WithEngine([&fn](Engine& e) { fn(e); });
      },
      [service] { return service->open_streams(); },
      [notifier] { return notifier->Counters(); });
  metrics_->SetIngestCounters([service] { return service->counters(); });
  ApiServer::Hooks hooks;
  hooks.health = [service, store = store_.get()] {
    return HealthJson(*service, store);
  };
  hooks.metrics = [metrics = metrics_.get()] { return metrics->Text(); };
  hooks.token = [service](const std::string& identity) {
    return service->WithEngine(
        [&identity](Engine& e) { return e.GetToken(identity); });
  };
  hooks.revoke =
      [revocations = revocations_.get()](const std::vector<std::string>& jtis) {
        return revocations->Add(jtis);
      };
  const config::Collector& c = config_.collector;
  absl::StatusOr<std::unique_ptr<ApiServer>> api = ApiServer::Start(
      c.http_listen, store_.get(), std::move(hooks), api_options_);
  if (!api.ok()) return RuntimeError(api.status().message());
  api_ = *std::move(api);
  log::Info("ingest on %s (port %d, %s), API on %s (writes %s), store %s",
            c.listen, grpc_port_,
            !c.tls.has_value()              ? "plaintext"
            : c.tls->client_ca_file.empty() ? "TLS"
                                            : "mTLS",
            c.http_listen,
            c.http_token_file.empty() ? "disabled" : "need the bearer token",
            c.store);
  return absl::OkStatus();
}

void CollectorApp::Serve() {
  served_ = true;
  while (!stop_->load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (reload_->exchange(false)) Reload();
  }
}

// SIGHUP: re-read the config file; the engine takes the new config under
// the lock its batch processing holds. A broken file keeps the old one.
void CollectorApp::Reload() {
  if (reloader_ == nullptr) {
    log::Warning("SIGHUP: no config file (-c) to reload");
    return;
  }
  std::vector<std::string> restart_keys;
  absl::Status s = reloader_->Reload(
      [this](const config::Config& next) {
        service_->WithEngine([&next](Engine& e) { e.Reconfigure(next); });
      },
      &restart_keys);
  if (!s.ok()) {
    service_->WithEngine([](Engine& e) { e.CountReloadFailure(); });
    log::Error("config reload failed, the running config stays: %s",
               Message(s));
    return;
  }
  log::Info("config reloaded from %s", reloader_->path());
  for (const std::string& key : restart_keys) {
    log::Warning("%s: %s changed; it takes effect at restart",
                 reloader_->path(), key);
  }
}

void CollectorApp::OnAlert(const Alert& a) {
  notifier_->Enqueue(a);
  if (alerts_file_ == nullptr) return;
  std::string line = AlertJson(a);
  line.push_back('\n');
  fwrite(line.data(), 1, line.size(), alerts_file_);
  fflush(alerts_file_);
}

void CollectorApp::Teardown() {
  if (torn_down_) return;
  torn_down_ = true;
  // Stop taking streams, then make everything applied durable.
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(2));
  }
  if (service_ != nullptr) service_->Shutdown();
  // The last alerts out, bounded.
  if (served_) notifier_->WaitIdle(std::chrono::seconds(5));
  api_.reset();
  if (served_) {
    const EngineStats& st = engine_->stats();
    log::Info(
        "summary\n  batches            %d\n  duplicate_batches  %d\n"
        "  events             %d\n  alerts             %d\n"
        "  tokens_tracked     %d",
        st.batches, st.duplicate_batches, st.events, st.alerts_raised,
        engine_->tokens().size());
  }
  if (alerts_file_ != nullptr && alerts_file_ != stdout) {
    fclose(alerts_file_);
    alerts_file_ = nullptr;
  }
}

}  // namespace tokenwatch::collector
