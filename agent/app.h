// tokenwatch-agent as an object: ordered start-up steps, each returning a
// status (as Falco's actions do), the run loop, and a teardown that always
// runs once the steps have begun. main.cc only parses flags.
#ifndef TOKENWATCH_AGENT_APP_H_
#define TOKENWATCH_AGENT_APP_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "agent/capture/packet_source.h"
#include "agent/metrics/agent_metrics.h"
#include "agent/output/collector_sink.h"
#include "agent/output/event_json.h"
#include "agent/pipeline.h"
#include "agent/privilege/drop_privileges.h"
#include "agent/reload.h"
#include "agent/tls/probe_runner.h"
#include "agent/tls/recording.h"
#include "agent/token/fingerprint.h"
#include "agent/token/token_checks.h"
#include "common/config.h"

namespace tokenwatch {

// The command line (SPEC "Binaries"); flags override the config file.
struct AgentFlags {
  std::string config, interface, read, filter, collector, events_out, agent_id,
      metrics_listen, user;
  bool have_filter = false;
  bool tls_probe = false;  // --tls-probe
};

class AgentApp {
 public:
  // `stop` and `reload` are set by signal handlers; they must outlive Run.
  AgentApp(AgentFlags flags, const std::atomic<bool>* stop,
           std::atomic<bool>* reload);
  ~AgentApp();

  // The start-up steps in order, the loop, then teardown. Returns the
  // process's exit code: 0, 1 (runtime failure, events not delivered) or
  // 2 (a usage or configuration error, named in one line).
  int Run();

  // The source is given instead of opened (tests, and sources other than
  // pcap); call before Run.
  void UseSource(std::unique_ptr<capture::PacketSource> source) {
    source_ = std::move(source);
  }

 private:
  // Start-up, in this order. An error's message names the file and key;
  // InvalidArgument means exit 2, anything else 1.
  absl::Status LoadConfig();
  absl::Status LookUpUser();
  absl::Status LoadFingerprintKey();
  absl::Status OpenSource();
  absl::Status OpenTlsProbe();
  absl::Status DropPrivilegesIfNotRoot();
  absl::Status LoadTokenChecks();
  absl::Status OpenOutputs();
  absl::Status StartMetrics();
  absl::Status DropPrivilegesIfRoot();
  absl::Status Capture();
  // Always run after the steps began: flush, drain the collector stream,
  // publish the last metrics, print the summary. Returns the exit code.
  int Teardown(int rc);

  absl::Status DropPrivileges();
  void Reload();
  void PublishMetrics();
  // Chunks the probe queued, into the pipeline (its thread).
  void DrainProbe();

  AgentFlags flags_;
  const std::atomic<bool>* stop_;
  std::atomic<bool>* reload_;

  config::Config config_;
  // Resolved from flags and config.
  std::string interface_, filter_, collector_, events_out_, agent_id_,
      metrics_listen_;
  bool metrics_explicit_ = false;
  std::optional<privilege::TargetUser> drop_to_;

  std::unique_ptr<token::Fingerprinter> fingerprinter_;
  bool tls_probe_ = false;
  std::unique_ptr<tls::ProbeRunner>
      probe_;  // before source_: it may wait on it
  std::unique_ptr<tls::RecordingWriter>
      probe_record_;  // agent.tls_probe.record
  std::unique_ptr<tls::RecordingReader>
      probe_replay_;                 // -r FILE of a recording
  uint64_t probe_dropped_seen_ = 0;  // queue drops already counted
  std::unique_ptr<capture::PacketSource> source_;
  bool source_given_ = false;
  std::unique_ptr<token::TokenChecks> checks_;
  std::unique_ptr<output::JsonLinesSink> json_sink_;
  std::unique_ptr<output::CollectorSink> collector_sink_;
  std::unique_ptr<output::TeeSink> sink_;
  std::shared_ptr<metrics::AgentMetrics> metrics_;
  std::unique_ptr<metrics::MetricsServer> metrics_server_;
  // The latest reloaded config and checks; declared before the pipeline,
  // which uses them until it is gone.
  AgentConfigGeneration live_;
  std::unique_ptr<AgentReloader> reloader_;
  std::unique_ptr<Pipeline> pipeline_;
  double capture_seconds_ = 0;
};

}  // namespace tokenwatch

#endif  // TOKENWATCH_AGENT_APP_H_
