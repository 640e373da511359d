// tokenwatch-collector as an object: ordered start-up steps, each returning
// a status (as Falco's actions do), serving until a signal, and a teardown
// that always runs once the steps have begun. main.cc only parses flags.
#ifndef TOKENWATCH_COLLECTOR_APP_H_
#define TOKENWATCH_COLLECTOR_APP_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "collector/detect/revoked_use.h"
#include "collector/engine.h"
#include "collector/http/api_server.h"
#include "collector/ingest/ingest_service.h"
#include "collector/metrics.h"
#include "collector/notify/notifier.h"
#include "collector/reload.h"
#include "collector/store/store.h"
#include "common/config.h"

namespace tokenwatch::collector {

// The command line (SPEC "Binaries"); flags override the config file.
struct CollectorFlags {
  std::string config, listen, http_listen, store, alerts_out;
};

class CollectorApp {
 public:
  // `stop` and `reload` are set by signal handlers; they must outlive Run.
  CollectorApp(CollectorFlags flags, const std::atomic<bool>* stop,
               std::atomic<bool>* reload);
  ~CollectorApp();

  CollectorApp(const CollectorApp&) = delete;
  CollectorApp& operator=(const CollectorApp&) = delete;

  // The start-up steps in order, serving until *stop, then teardown (a
  // final commit of everything applied). Returns the process's exit code:
  // 0; 2 when a start-up step finds a usage or configuration error; 1 for
  // any other failure. A failed step prints one line naming the file, key
  // or address, and stops what had started.
  int Run();

 private:
  // Start-up, in this order. InvalidArgument: a usage or configuration
  // error; anything else a runtime failure.
  absl::Status LoadConfig();
  absl::Status OpenStore();
  absl::Status OpenAlertsOut();
  absl::Status StartNotifier();
  absl::Status LoadRevocations();
  absl::Status RestoreState();
  absl::Status LoadIngestCredentials();
  absl::Status LoadApiToken();
  absl::Status StartIngest();
  absl::Status StartApi();

  void Serve();
  void Reload();
  // Always runs once the steps began: stops taking streams, commits what
  // was applied, lets the last alerts out, stops the API; after serving,
  // prints the summary.
  void Teardown();
  void OnAlert(const Alert& a);

  CollectorFlags flags_;
  const std::atomic<bool>* stop_;
  std::atomic<bool>* reload_;
  bool served_ = false;
  bool torn_down_ = false;

  config::Config config_;
  std::unique_ptr<ConfigReloader> reloader_;
  // Declared in the order they start; destroyed in reverse.
  std::unique_ptr<Store> store_;
  FILE* alerts_file_ = nullptr;  // --alerts-out; stdout for "-"
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<RevocationList> revocations_;
  std::unique_ptr<Engine> engine_;
  std::shared_ptr<grpc::ServerCredentials> ingest_credentials_;
  ApiServer::Options api_options_;
  std::unique_ptr<IngestService> service_;
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;
  std::unique_ptr<CollectorMetrics> metrics_;
  std::unique_ptr<ApiServer> api_;
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_APP_H_
