#include "agent/app.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/capture/pcap_source.h"
#include "agent/run_loop.h"
#include "common/log.h"
#include "common/tls_credentials.h"

namespace tokenwatch {
namespace {

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

// Progress of a long replay, shown only when stderr is a terminal.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled), start_(absl::Now()) {}
  void Maybe(const capture::PacketSource& src, uint64_t packets) {
    if (!enabled_) return;
    absl::Time now = absl::Now();
    if (now - last_ < absl::Milliseconds(500)) return;
    last_ = now;
    double secs = absl::ToDoubleSeconds(now - start_);
    double pps = secs > 0 ? packets / secs : 0;
    capture::SourceProgress p = src.Progress();
    // A terminal line redrawn in place: not a log line.
    if (p.bytes_total > 0 && p.bytes_read > 0) {
      double share = static_cast<double>(p.bytes_read) / p.bytes_total;
      double left = share > 0 ? secs * (1 - share) / share : 0;
      fprintf(stderr, "\r  %5.1f%% read  %8.0f packets/s  %5.0fs left   ",
              share * 100, pps, left);
    } else {
      fprintf(stderr, "\r  %llu packets  %8.0f packets/s   ",
              static_cast<unsigned long long>(packets), pps);
    }
    shown_ = true;
  }
  void Done() {
    if (shown_) fprintf(stderr, "\r%60s\r", "");
  }

 private:
  bool enabled_;
  bool shown_ = false;
  absl::Time start_, last_;
};

}  // namespace

AgentApp::AgentApp(AgentFlags flags, const std::atomic<bool>* stop,
                   std::atomic<bool>* reload)
    : flags_(std::move(flags)), stop_(stop), reload_(reload) {}

AgentApp::~AgentApp() = default;

int AgentApp::Run() {
  using Step = absl::Status (AgentApp::*)();
  static constexpr Step kStartUp[] = {
      &AgentApp::LoadConfig,         &AgentApp::LookUpUser,
      &AgentApp::LoadFingerprintKey, &AgentApp::OpenTlsProbe,
      &AgentApp::OpenSource,         &AgentApp::DropPrivilegesIfNotRoot,
      &AgentApp::LoadTokenChecks,    &AgentApp::OpenOutputs,
      &AgentApp::StartMetrics,       &AgentApp::DropPrivilegesIfRoot,
  };
  for (Step step : kStartUp) {
    absl::Status s = (this->*step)();
    if (!s.ok()) {
      log::StartupFailure(Message(s));
      return absl::IsInvalidArgument(s) || absl::IsFailedPrecondition(s) ? 2
                                                                         : 1;
    }
  }
  int rc = 0;
  if (absl::Status s = Capture(); !s.ok()) {
    log::Error("%s", Message(s));
    rc = 1;
  }
  return Teardown(rc);
}

absl::Status AgentApp::LoadConfig() {
  if (!flags_.config.empty()) {
    absl::StatusOr<config::Config> loaded = config::LoadConfig(flags_.config);
    if (!loaded.ok())
      return absl::InvalidArgumentError(loaded.status().message());
    config_ = *std::move(loaded);
  }
  const config::Agent& a = config_.agent;
  interface_ = !flags_.interface.empty() ? flags_.interface
               : flags_.read.empty()     ? a.interface
                                         : "";
  filter_ = flags_.have_filter ? flags_.filter : a.filter;
  collector_ = !flags_.collector.empty() ? flags_.collector : a.collector;
  events_out_ = !flags_.events_out.empty() ? flags_.events_out : a.events_out;
  metrics_explicit_ =
      !flags_.metrics_listen.empty() || !a.metrics_listen.empty();
  metrics_listen_ = !flags_.metrics_listen.empty() ? flags_.metrics_listen
                    : !a.metrics_listen.empty()    ? a.metrics_listen
                                                   : "127.0.0.1:9472";
  agent_id_ = !flags_.agent_id.empty() ? flags_.agent_id
              : !a.agent_id.empty()    ? a.agent_id
                                       : HostName();
  tls_probe_ = flags_.tls_probe || a.tls_probe.enabled;
  if (tls_probe_ && !flags_.read.empty()) {
    return absl::InvalidArgumentError(
        "--tls-probe sees live processes: it goes alone or beside -i, not "
        "with -r");
  }
  if (source_ == nullptr && flags_.read.empty() && interface_.empty() &&
      !tls_probe_)
    return absl::InvalidArgumentError("give -i IFACE, -r FILE or --tls-probe");
  if (events_out_.empty() && collector_.empty()) events_out_ = "-";
  return absl::OkStatus();
}

// The user to become once the capture is open, looked up now so that a
// typo stops the agent before it opens anything. Never continue as root
// when asked to drop.
absl::Status AgentApp::LookUpUser() {
  std::string user = !flags_.user.empty() ? flags_.user : config_.agent.user;
  if (user.empty()) return absl::OkStatus();
  absl::StatusOr<privilege::TargetUser> target = privilege::LookUpUser(user);
  if (!target.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        flags_.user.empty() ? config_.path + ": agent.user" : "--user", ": ",
        Message(target.status())));
  }
  drop_to_ = *std::move(target);
  return absl::OkStatus();
}

absl::Status AgentApp::LoadFingerprintKey() {
  if (!config_.fingerprint_key_file.empty()) {
    auto fp = token::Fingerprinter::FromFile(config_.fingerprint_key_file);
    if (!fp.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          config_.path, ": fingerprint_key_file: ", Message(fp.status())));
    }
    fingerprinter_ = *std::move(fp);
    return absl::OkStatus();
  }
  unsigned char key[32];
  RAND_bytes(key, sizeof key);
  log::Warning(
      "no fingerprint_key_file: using a random key, so fingerprints will not "
      "match other agents");
  fingerprinter_ = *token::Fingerprinter::Create(
      std::string_view(reinterpret_cast<char*>(key), sizeof key));
  return absl::OkStatus();
}

// Before the capture: both need the privileges the agent may drop.
absl::Status AgentApp::OpenTlsProbe() {
  if (!tls_probe_) return absl::OkStatus();
  // The capabilities first, from the privilege module's reading of
  // /proc/self/status: without them the kernel's refusal says less.
  std::string status;
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) status.append(buf, n);
    std::fclose(f);
  }
  absl::StatusOr<privilege::ThreadCredentials> creds =
      privilege::ParseProcStatus(status);
  if (!creds.ok())
    return absl::FailedPreconditionError(creds.status().message());
  if (std::string why = tls::MissingCapabilities(creds->cap_eff); !why.empty())
    return absl::FailedPreconditionError(why);
  const config::TlsProbe& c = config_.agent.tls_probe;
  tls::ProbeOptions o;
  o.auto_targets = c.auto_targets;
  o.targets = c.targets;
  o.exclude_comm = c.exclude_comm;
  absl::StatusOr<std::unique_ptr<tls::ProbeRunner>> r =
      tls::ProbeRunner::Start(o);
  if (!r.ok()) {
    // No BTF, no ring buffer, no CAP_BPF + CAP_PERFMON: exit 2, saying so.
    return absl::FailedPreconditionError(r.status().message());
  }
  probe_ = *std::move(r);
  if (!c.record.empty()) {
    auto w = tls::RecordingWriter::Create(c.record);
    if (!w.ok()) return w.status();
    probe_record_ = *std::move(w);
    log::Warning("recording the TLS probe's plaintext (tokens included) to %s",
                 c.record);
  }
  log::Info("TLS probe on: %d targets%s", static_cast<int>(probe_->targets()),
            c.auto_targets ? " (auto: new processes are attached as they start)"
                           : "");
  return absl::OkStatus();
}

void AgentApp::DrainProbe() {
  if (probe_ == nullptr) return;
  if (probe_->has_data()) {
    probe_->Drain([this](const tls::Chunk& c) {
      if (probe_record_ != nullptr) {
        if (absl::Status s = probe_record_->Write(c); !s.ok()) {
          log::Error("%s; recording stopped", s.message());
          probe_record_.reset();
        }
      }
      pipeline_->OnTlsChunk(c);
    });
  }
  uint64_t dropped = probe_->queue_dropped();
  if (dropped > probe_dropped_seen_) {
    pipeline_->mutable_stats().Count(Drop::kTlsProbeRing,
                                     dropped - probe_dropped_seen_);
    probe_dropped_seen_ = dropped;
  }
}

absl::Status AgentApp::OpenSource() {
  if (source_ != nullptr) {
    source_given_ = true;
    return absl::OkStatus();
  }
  if (tls_probe_ && interface_.empty()) {
    source_ = std::make_unique<tls::ProbeOnlySource>(probe_.get());
    return absl::OkStatus();
  }
  if (!flags_.read.empty() && flags_.read != "-" &&
      tls::IsRecording(flags_.read)) {
    // A recording of the TLS probe (agent.tls_probe.record): its records go
    // through the probe's user-space half, in order, without a kernel.
    auto r = tls::RecordingReader::Open(flags_.read);
    if (!r.ok()) return absl::InvalidArgumentError(r.status().message());
    probe_replay_ = *std::move(r);
    source_ = std::make_unique<capture::MemoryPacketSource>(
        1, std::vector<capture::MemoryPacketSource::Frame>{});
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<capture::PcapSource>> source =
      flags_.read.empty() ? capture::PcapSource::OpenLive(interface_, filter_)
                          : capture::PcapSource::OpenFile(flags_.read, filter_);
  if (!source.ok()) {
    std::string why = Message(source.status());
    if (absl::IsPermissionDenied(source.status()))
      why += " (live capture needs root or CAP_NET_RAW)";
    return absl::Status(absl::IsInvalidArgument(source.status())
                            ? absl::StatusCode::kInvalidArgument
                            : absl::StatusCode::kUnavailable,
                        why);
  }
  source_ = *std::move(source);
  if (source_->IsLive()) {
    log::Info("capturing on %s%s%s", interface_,
              filter_.empty() ? "" : " with filter ", filter_);
  }
  return absl::OkStatus();
}

absl::Status AgentApp::DropPrivileges() {
  if (probe_ != nullptr) {
    // Attaching needs CAP_BPF + CAP_PERFMON: the targets found at start stay.
    probe_->StopRescanning();
    log::Warning(
        "--user: the TLS probe keeps its %d targets; processes that load "
        "OpenSSL from a new file later are not probed",
        static_cast<int>(probe_->targets()));
  }
  if (absl::Status s = privilege::DropTo(*drop_to_); !s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot drop privileges: ", Message(s)));
  }
  log::Info("running as user %s (uid %u, gid %u) with no capabilities",
            drop_to_->name, static_cast<unsigned>(drop_to_->uid),
            static_cast<unsigned>(drop_to_->gid));
  return absl::OkStatus();
}

// Not root: nothing privileged is left but the capture, which is open.
// Drop now, while this is the only thread: capset reaches only the calling
// thread, and threads started later inherit the empty sets.
absl::Status AgentApp::DropPrivilegesIfNotRoot() {
  if (!drop_to_.has_value() || geteuid() == 0) return absl::OkStatus();
  return DropPrivileges();
}

// Issuer keys and the weak-secrets list, read before root drops (they may
// be readable by root alone).
absl::Status AgentApp::LoadTokenChecks() {
  auto checks = token::TokenChecks::Create(config_, /*stats=*/nullptr);
  if (!checks.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(config_.path, ": ", Message(checks.status())));
  }
  checks_ = *std::move(checks);
  return absl::OkStatus();
}

// The event outputs: the collector stream, a JSON-lines file, or both. The
// file is opened before the drop: it may be in a folder only root can write.
absl::Status AgentApp::OpenOutputs() {
  if (!events_out_.empty()) {
    FILE* out = stdout;
    if (events_out_ != "-") {
      // O_NOFOLLOW: run as root, a symlink planted in the events folder must
      // not turn this open into a write to a file of root's choosing.
      int fd =
          open(events_out_.c_str(),
               O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
      out = fd >= 0 ? fdopen(fd, "w") : nullptr;
      if (out == nullptr) {
        return absl::UnavailableError(
            absl::StrCat("cannot write ", events_out_, ": ", strerror(errno)));
      }
    }
    json_sink_ = std::make_unique<output::JsonLinesSink>(out);
  }
  if (!collector_.empty()) {
    const config::Agent& a = config_.agent;
    output::CollectorSinkOptions o;
    o.target = collector_;
    o.agent_id = agent_id_;
    o.batch_max_events = a.batch_max_events;
    o.flush_interval = std::chrono::milliseconds(
        std::max<int64_t>(1, absl::ToInt64Milliseconds(a.flush_interval)));
    o.queue_max_events = a.queue_max_events;
    if (a.tls.has_value()) {
      auto tls = config::MakeChannelCredentials(*a.tls);
      if (!tls.ok()) return absl::InvalidArgumentError(tls.status().message());
      for (const std::string& w : tls->warnings) log::Warning("%s", w);
      o.credentials = tls->credentials;
      o.tls_server_name = a.tls->server_name;
    }
    collector_sink_ = std::make_unique<output::CollectorSink>(o);
  }
  sink_ = std::make_unique<output::TeeSink>(
      std::vector<output::EventSink*>{json_sink_.get(), collector_sink_.get()});
  return absl::OkStatus();
}

// An address given by the user must work; the default may be taken
// (another agent on this host): then say so and go on.
absl::Status AgentApp::StartMetrics() {
  metrics_ = std::make_shared<metrics::AgentMetrics>(agent_id_);
  // A replay (-r) serves metrics only when asked to: it is usually over
  // before any scrape, and stopping the HTTP server costs up to 2 s.
  bool want = metrics_listen_ != "off" &&
              (metrics_explicit_ || (flags_.read.empty() && !source_given_));
  if (!want) return absl::OkStatus();
  auto started = metrics::MetricsServer::Start(metrics_listen_, metrics_);
  if (started.ok()) {
    metrics_server_ = *std::move(started);
  } else if (metrics_explicit_) {
    return absl::UnavailableError(started.status().message());
  } else {
    log::Warning("%s; running without metrics", Message(started.status()));
  }
  return absl::OkStatus();
}

// Root drops to --user now that the capture is open and the listeners are
// bound (a port below 1024 needs root). setresuid reaches every thread, and
// with it the kernel empties each one's capabilities.
absl::Status AgentApp::DropPrivilegesIfRoot() {
  if (!drop_to_.has_value()) return absl::OkStatus();
  if (geteuid() == 0) {
    if (absl::Status s = DropPrivileges(); !s.ok()) return s;
  }
  // Issuer key files are re-read when they change, by the dropped user.
  for (const config::Issuer& i : config_.issuers) {
    for (const std::string* f : {&i.jwks_file, &i.pem_file, &i.secret_file}) {
      if (!f->empty() && access(f->c_str(), R_OK) != 0) {
        log::Warning(
            "%s is not readable by user %s: changes to it will not be "
            "reloaded",
            *f, drop_to_->name);
      }
    }
  }
  return absl::OkStatus();
}

void AgentApp::PublishMetrics() {
  if (metrics_ == nullptr) return;
  metrics::StageSeconds st{capture_seconds_, pipeline_->decode_seconds(),
                           pipeline_->tcp_http_seconds(),
                           pipeline_->output_seconds()};
  std::optional<output::DeliveryStats> d;
  if (collector_sink_ != nullptr) d = collector_sink_->Stats();
  metrics_->Publish(pipeline_->stats(), source_->Stats(), st, d);
}

// SIGHUP: the reloadable parts of the file (agent/reload.h) are swapped in
// on the capture thread, between two packets.
void AgentApp::Reload() {
  if (reloader_ == nullptr) {
    log::Warning("SIGHUP: no config file (-c) to reload");
    return;
  }
  std::vector<std::string> restart_keys;
  auto next = reloader_->Load(&pipeline_->mutable_stats(), &restart_keys);
  if (!next.ok()) {
    metrics_->CountReload(/*ok=*/false);
    log::Error("config reload failed, the running config stays: %s",
               Message(next.status()));
    return;
  }
  pipeline_->Reconfigure(*next->config, next->checks.get());
  // The old checks go before the config they refer to. Their queued
  // weak-secret searches move to the new checks (none is dropped, so no
  // held event waits forever); only the search already running is waited
  // for.
  std::unique_ptr<config::Config> old_config = std::move(live_.config);
  std::unique_ptr<token::TokenChecks> old_checks =
      live_.checks != nullptr ? std::move(live_.checks) : std::move(checks_);
  next->checks->AdoptPending(old_checks.get());
  old_checks.reset();
  live_ = *std::move(next);
  metrics_->CountReload(/*ok=*/true);
  log::Info("config reloaded from %s", reloader_->path());
  for (const std::string& key : restart_keys) {
    log::Warning("%s: %s changed; it takes effect at restart",
                 reloader_->path(), key);
  }
}

// Runs until the source ends or a signal arrives.
absl::Status AgentApp::Capture() {
  pipeline_ = std::make_unique<Pipeline>(
      config_, agent_id_, fingerprinter_.get(), sink_.get(), checks_.get());
  checks_->set_stats(&pipeline_->mutable_stats());
  if (!flags_.config.empty()) {
    reloader_ =
        std::make_unique<AgentReloader>(flags_.config, config_, config_);
  }
  capture::PacketSource& src = *source_;
  Progress progress(!src.IsLive() && flags_.read != "-" && !source_given_ &&
                    isatty(STDERR_FILENO));
  absl::Time last_publish = absl::Now();
  auto maybe_publish = [&] {
    if (metrics_server_ == nullptr ||
        absl::Now() - last_publish <= absl::Seconds(1)) {
      return;
    }
    PublishMetrics();
    last_publish = absl::Now();
  };
  RunLoopHooks hooks;
  hooks.stop_requested = [this] {
    return stop_ != nullptr && stop_->load(std::memory_order_relaxed);
  };
  hooks.between_packets = [this] {
    if (reload_ != nullptr && reload_->load(std::memory_order_relaxed) &&
        reload_->exchange(false)) {
      Reload();
    }
    DrainProbe();
  };
  hooks.idle = [&] {
    DrainProbe();
    if (json_sink_ != nullptr) json_sink_->Flush();
    maybe_publish();
  };
  hooks.every_256 = [&](uint64_t n) {
    if (src.IsLive() && json_sink_ != nullptr) json_sink_->Flush();
    if ((n & 0x3ff) == 0) maybe_publish();
    if ((n & 0xffff) == 0) progress.Maybe(src, n);
  };
  if (probe_ != nullptr) probe_->Run();
  if (probe_replay_ != nullptr) {
    pipeline_->SetProbeReplay();
    tls::Chunk chunk;
    while (!hooks.stop_requested()) {
      absl::StatusOr<bool> more = probe_replay_->Next(&chunk);
      if (!more.ok()) return more.status();
      if (!*more) break;
      pipeline_->OnTlsChunk(chunk);
    }
    progress.Done();
    return absl::OkStatus();
  }
  RunLoop loop(&src, pipeline_.get(), std::move(hooks));
  absl::Status s = loop.Run();
  capture_seconds_ = loop.capture_seconds();
  progress.Done();
  return s;
}

int AgentApp::Teardown(int rc) {
  if (probe_ != nullptr) {
    DrainProbe();
    tls::ProbeCounters k = probe_->kernel_counters();
    probe_.reset();  // every probe detached before the report
    AgentStats& st = pipeline_->mutable_stats();
    st.Count(Drop::kTlsProbeRing, k.ring_full);
    st.Count(Drop::kTlsProbeTruncated, k.truncated);
  }
  pipeline_->Finish();
  sink_->Flush();
  if (collector_sink_ != nullptr) {
    // Exit only once the collector has stored every event, or say what was
    // not.
    bool drained = collector_sink_->Drain(std::chrono::milliseconds(
        absl::ToInt64Milliseconds(config_.agent.drain_timeout)));
    output::DeliveryStats d = collector_sink_->Stats();
    log::Info(
        "delivery: %d events queued, %d acknowledged, %d dropped (queue "
        "full), %d reconnects",
        d.queued, d.acked, d.dropped, d.reconnects);
    if (!drained) {
      log::Error(
          "%d events in %d batches were not acknowledged by the collector at "
          "%s within %s",
          d.unacked_events, d.unacked_batches, collector_,
          absl::FormatDuration(config_.agent.drain_timeout));
      if (!d.last_error.empty())
        log::Info("last error from %s: %s", collector_, d.last_error);
      rc = 1;
    } else if (d.dropped > 0) {
      log::Error("%d events were dropped (queue full)", d.dropped);
      rc = 1;
    }
  }
  PublishMetrics();
  AgentStats& stats = pipeline_->mutable_stats();
  capture::CaptureStats cs = source_->Stats();
  stats.Count(Drop::kCaptureKernel, cs.kernel_dropped);
  stats.Count(Drop::kCaptureInterface, cs.iface_dropped);
  // The summary is the run's report, not a log line (tests and users read
  // it as "name value" lines).
  fprintf(stderr, "%s", stats.Summary().c_str());
  return rc;
}

}  // namespace tokenwatch
