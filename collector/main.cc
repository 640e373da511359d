// tokenwatch-collector: flags, ordered start-up, serve until a signal,
// teardown (final commit) always.
#include <getopt.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "collector/alert_json.h"
#include "collector/detect/revoked_use.h"
#include "collector/engine.h"
#include "collector/health.h"
#include "collector/http/api_server.h"
#include "collector/http/bearer_auth.h"
#include "collector/ingest/ingest_service.h"
#include "collector/metrics.h"
#include "collector/model.h"
#include "collector/notify/notifier.h"
#include "collector/reload.h"
#include "collector/store/store.h"
#include "common/config.h"
#include "common/log.h"
#include "common/tls_credentials.h"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};
void OnSignal(int) { g_stop = true; }
void OnHangup(int) { g_reload = true; }

// SIGHUP: re-read the config file; the engine takes the new config under
// the lock its batch processing holds. A broken file keeps the old one.
void Reload(tokenwatch::collector::ConfigReloader* reloader,
            tokenwatch::collector::IngestService& service) {
  using tokenwatch::collector::Engine;
  if (reloader == nullptr) {
    fprintf(stderr,
            "tokenwatch-collector: SIGHUP: no config file (-c) to reload\n");
    return;
  }
  std::vector<std::string> restart_keys;
  absl::Status s = reloader->Reload(
      [&service](const tokenwatch::config::Config& next) {
        service.WithEngine([&next](Engine& e) { e.Reconfigure(next); });
      },
      &restart_keys);
  if (!s.ok()) {
    service.WithEngine([](Engine& e) { e.CountReloadFailure(); });
    fprintf(stderr,
            "tokenwatch-collector: config reload failed, the running config "
            "stays: %s\n",
            std::string(s.message()).c_str());
    return;
  }
  fprintf(stderr, "tokenwatch-collector: config reloaded from %s\n",
          reloader->path().c_str());
  for (const std::string& key : restart_keys) {
    fprintf(stderr,
            "tokenwatch-collector: warning: %s: %s changed; it takes effect "
            "at restart\n",
            reloader->path().c_str(), key.c_str());
  }
}

constexpr char kUsage[] =
    "usage: tokenwatch-collector [-c FILE] [--listen ADDR] [--http-listen "
    "ADDR]\n"
    "                            [--store URI] [--alerts-out FILE]\n"
    "  -c, --config FILE      the YAML file the agents read\n"
    "      --listen ADDR      gRPC ingest (default 127.0.0.1:9470)\n"
    "      --http-listen ADDR HTTP API and /metrics (default 127.0.0.1:9471)\n"
    "      --store URI        sqlite:PATH (default sqlite:tokenwatch.db) or "
    "memory:\n"
    "      --alerts-out FILE  append alerts as JSON lines (- = stdout)\n"
    "      --version, --help\n";

int Usage(const std::string& why) {
  fprintf(stderr, "tokenwatch-collector: %s\n%s", why.c_str(), kUsage);
  return 2;
}

int Run(int argc, char** argv) {
  static const option kOptions[] = {
      {"config", required_argument, nullptr, 'c'},
      {"listen", required_argument, nullptr, 1},
      {"http-listen", required_argument, nullptr, 2},
      {"store", required_argument, nullptr, 3},
      {"alerts-out", required_argument, nullptr, 4},
      {"version", no_argument, nullptr, 5},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0}};
  std::string config_path, listen, http_listen, store_uri, alerts_out;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":c:h", kOptions, nullptr)) != -1) {
    switch (c) {
      case 'c':
        config_path = optarg;
        break;
      case 1:
        listen = optarg;
        break;
      case 2:
        http_listen = optarg;
        break;
      case 3:
        store_uri = optarg;
        break;
      case 4:
        alerts_out = optarg;
        break;
      case 5:
        printf("tokenwatch-collector %s\n", TOKENWATCH_VERSION);
        return 0;
      case 'h':
        printf("%s", kUsage);
        return 0;
      case ':':
        return Usage(
            absl::StrCat("option ", argv[optind - 1], " needs a value"));
      default:
        return Usage(absl::StrCat("unknown option ", argv[optind - 1]));
    }
  }
  if (optind < argc)
    return Usage(absl::StrCat("unexpected argument ", argv[optind]));

  tokenwatch::log::SetProgramName("tokenwatch-collector");
  tokenwatch::collector::RouteProtobufLogs();
  // Step 1: configuration; flags override the file.
  signal(SIGHUP, OnHangup);  // handled once serving
  tokenwatch::config::Config cfg, file_cfg;
  if (!config_path.empty()) {
    auto loaded = tokenwatch::config::LoadConfig(config_path);
    if (!loaded.ok()) {
      fprintf(stderr, "tokenwatch-collector: %s\n",
              std::string(loaded.status().message()).c_str());
      return 2;
    }
    cfg = *std::move(loaded);
    file_cfg = cfg;
  }
  if (!listen.empty()) cfg.collector.listen = listen;
  if (!http_listen.empty()) cfg.collector.http_listen = http_listen;
  if (!store_uri.empty()) cfg.collector.store = store_uri;
  if (!alerts_out.empty()) cfg.collector.alerts_out = alerts_out;
  std::unique_ptr<tokenwatch::collector::ConfigReloader> reloader;
  if (!config_path.empty()) {
    reloader = std::make_unique<tokenwatch::collector::ConfigReloader>(
        config_path, file_cfg, cfg);
  }

  // Step 2: the store, and the state it holds.
  auto store = tokenwatch::collector::OpenStore(cfg.collector.store);
  if (!store.ok()) {
    fprintf(stderr, "tokenwatch-collector: %s\n",
            std::string(store.status().message()).c_str());
    return absl::IsInvalidArgument(store.status()) ? 2 : 1;
  }
  FILE* alerts_file = nullptr;
  if (!cfg.collector.alerts_out.empty()) {
    alerts_file = cfg.collector.alerts_out == "-"
                      ? stdout
                      : fopen(cfg.collector.alerts_out.c_str(), "a");
    if (alerts_file == nullptr) {
      fprintf(stderr, "tokenwatch-collector: cannot append to %s: %m\n",
              cfg.collector.alerts_out.c_str());
      return 1;
    }
  }
  auto notifier = tokenwatch::collector::Notifier::Create(cfg.collector, {});
  if (!notifier.ok()) {
    fprintf(stderr, "tokenwatch-collector: %s\n",
            std::string(notifier.status().message()).c_str());
    return 2;
  }
  tokenwatch::collector::Notifier* notify = notifier->get();
  tokenwatch::collector::RevocationList revocations(
      cfg.detections.revoked_jtis_file);
  if (absl::Status s = revocations.MaybeReload(); !s.ok()) {
    fprintf(stderr, "tokenwatch-collector: %s\n",
            std::string(s.message()).c_str());
    return 2;
  }
  tokenwatch::collector::Engine engine(
      cfg, store->get(),
      [alerts_file, notify](const tokenwatch::collector::Alert& a) {
        notify->Enqueue(a);
        if (alerts_file == nullptr) return;
        std::string line = tokenwatch::collector::AlertJson(a);
        line.push_back('\n');
        fwrite(line.data(), 1, line.size(), alerts_file);
        fflush(alerts_file);
      },
      &revocations);
  if (absl::Status s = engine.Restore(); !s.ok()) {
    fprintf(stderr, "tokenwatch-collector: cannot load %s: %s\n",
            cfg.collector.store.c_str(), std::string(s.message()).c_str());
    return 1;
  }

  // Step 3: gRPC ingest, over TLS when configured (mTLS with a client CA).
  std::shared_ptr<grpc::ServerCredentials> ingest_credentials =
      grpc::InsecureServerCredentials();
  if (cfg.collector.tls.has_value()) {
    auto tls = tokenwatch::config::MakeServerCredentials(*cfg.collector.tls);
    if (!tls.ok()) {
      fprintf(stderr, "tokenwatch-collector: %s\n",
              std::string(tls.status().message()).c_str());
      return 2;
    }
    for (const std::string& w : tls->warnings) {
      fprintf(stderr, "tokenwatch-collector: warning: %s\n", w.c_str());
    }
    if (cfg.collector.tls->client_ca_file.empty()) {
      fprintf(stderr,
              "tokenwatch-collector: warning: collector.tls has no "
              "client_ca_file: any client that reaches %s may send events\n",
              cfg.collector.listen.c_str());
    }
    ingest_credentials = tls->credentials;
  }
  // The API's write token; its value is never printed.
  tokenwatch::collector::ApiServer::Options api_options;
  if (!cfg.collector.http_token_file.empty()) {
    auto token = tokenwatch::collector::LoadBearerToken(
        cfg.collector.http_token_file.path);
    if (!token.ok()) {
      fprintf(stderr, "tokenwatch-collector: %s: %s\n",
              cfg.collector.http_token_file.where.c_str(),
              std::string(token.status().message()).c_str());
      return 2;
    }
    api_options.write_token = *std::move(token);
    const std::string& http = cfg.collector.http_listen;
    if (http.rfind("127.", 0) != 0 && http.rfind("localhost:", 0) != 0 &&
        http.rfind("[::1]:", 0) != 0) {
      // The API speaks plain HTTP: off loopback, put a TLS proxy in front.
      fprintf(stderr,
              "tokenwatch-collector: warning: the API on %s is plain HTTP: "
              "the bearer token crosses the network in the clear\n",
              http.c_str());
    }
  }
  tokenwatch::collector::IngestService service(&engine);
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(cfg.collector.listen, ingest_credentials,
                           &grpc_port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(64 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || grpc_port == 0) {
    fprintf(stderr, "tokenwatch-collector: cannot listen on %s\n",
            cfg.collector.listen.c_str());
    return 1;
  }

  // Step 4: the HTTP API.
  tokenwatch::collector::ApiServer::Hooks hooks;
  hooks.health = [&service]() {
    return tokenwatch::collector::HealthJson(service);
  };
  tokenwatch::collector::CollectorMetrics metrics(
      [&service](
          const std::function<void(const tokenwatch::collector::Engine&)>& fn) {
        service.WithEngine([&fn](tokenwatch::collector::Engine& e) { fn(e); });
      },
      [&service]() { return service.open_streams(); },
      [notify]() { return notify->Counters(); });
  hooks.metrics = [&metrics]() { return metrics.Text(); };
  hooks.token = [&service](const std::string& identity) {
    return service.WithEngine([&identity](tokenwatch::collector::Engine& e) {
      return e.GetToken(identity);
    });
  };
  hooks.revoke = [&revocations](const std::vector<std::string>& jtis) {
    return revocations.Add(jtis);
  };
  auto api = tokenwatch::collector::ApiServer::Start(
      cfg.collector.http_listen, store->get(), hooks, std::move(api_options));
  if (!api.ok()) {
    fprintf(stderr, "tokenwatch-collector: %s\n",
            std::string(api.status().message()).c_str());
    server->Shutdown();
    return 1;
  }
  fprintf(stderr,
          "tokenwatch-collector: ingest on %s (port %d, %s), API on %s "
          "(writes %s), store %s\n",
          cfg.collector.listen.c_str(), grpc_port,
          !cfg.collector.tls.has_value()              ? "plaintext"
          : cfg.collector.tls->client_ca_file.empty() ? "TLS"
                                                      : "mTLS",
          cfg.collector.http_listen.c_str(),
          cfg.collector.http_token_file.empty() ? "disabled"
                                                : "need the bearer token",
          cfg.collector.store.c_str());

  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (g_reload.exchange(false)) Reload(reloader.get(), service);
  }

  // Teardown: stop taking streams, make everything applied durable.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  service.Shutdown();
  notify->WaitIdle(std::chrono::seconds(5));  // last alerts out, bounded
  api->reset();
  const auto& st = engine.stats();
  fprintf(stderr,
          "tokenwatch-collector: summary\n  batches            %llu\n  "
          "duplicate_batches  %llu\n"
          "  events             %llu\n  alerts             %llu\n  "
          "tokens_tracked     %zu\n",
          (unsigned long long)st.batches,
          (unsigned long long)st.duplicate_batches,
          (unsigned long long)st.events, (unsigned long long)st.alerts_raised,
          engine.tokens().size());
  if (alerts_file != nullptr && alerts_file != stdout) fclose(alerts_file);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
