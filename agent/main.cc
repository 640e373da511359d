// tokenwatch-agent: flags, ordered start-up, the capture loop, teardown.
#include <fcntl.h>
#include <getopt.h>
#include <openssl/rand.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "agent/capture/pcap_source.h"
#include "agent/config/config.h"
#include "agent/config/tls_credentials.h"
#include "agent/metrics/agent_metrics.h"
#include "agent/output/collector_sink.h"
#include "agent/output/event_json.h"
#include "agent/pipeline.h"
#include "agent/privilege/drop_privileges.h"
#include "agent/reload.h"
#include "agent/token/fingerprint.h"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};
void OnSignal(int) { g_stop = true; }
void OnHangup(int) { g_reload = true; }

constexpr char kUsage[] =
    "usage: tokenwatch-agent [-c FILE] (-i IFACE | -r FILE) [-f EXPR]\n"
    "                        [--collector HOST:PORT] [--events-out FILE]\n"
    "                        [--agent-id ID] [--metrics-listen ADDR]\n"
    "                        [--user USER]\n"
    "  -c, --config FILE       YAML config; flags override it\n"
    "  -i, --interface IFACE   live capture (any allowed)\n"
    "  -r, --read FILE         read a pcap/pcapng file (- = stdin)\n"
    "  -f, --filter EXPR       BPF filter, tcpdump syntax\n"
    "      --collector ADDR    stream usage events to a collector (gRPC)\n"
    "      --events-out FILE   write usage events as JSON lines (- = stdout)\n"
    "      --agent-id ID       defaults to the host name\n"
    "      --metrics-listen A  Prometheus /metrics (default 127.0.0.1:9472)\n"
    "      --user USER         once the capture is open, run as USER with no\n"
    "                          capabilities (like tcpdump -Z)\n"
    "      --version, --help\n";

struct Flags {
  std::string config, interface, read, filter, collector, events_out, agent_id,
      metrics_listen, user;
  bool have_filter = false;
};

int Usage(const std::string& why) {
  fprintf(stderr, "tokenwatch-agent: %s\n%s", why.c_str(), kUsage);
  return 2;
}

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

// Progress of a long replay, shown only when stderr is a terminal.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled), start_(absl::Now()) {}
  void Maybe(const tokenwatch::capture::PacketSource& src, uint64_t packets) {
    if (!enabled_) return;
    absl::Time now = absl::Now();
    if (now - last_ < absl::Milliseconds(500)) return;
    last_ = now;
    double secs = absl::ToDoubleSeconds(now - start_);
    double pps = secs > 0 ? packets / secs : 0;
    tokenwatch::capture::SourceProgress p = src.Progress();
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

int Run(int argc, char** argv) {
  static const option kOptions[] = {
      {"config", required_argument, nullptr, 'c'},
      {"interface", required_argument, nullptr, 'i'},
      {"read", required_argument, nullptr, 'r'},
      {"filter", required_argument, nullptr, 'f'},
      {"collector", required_argument, nullptr, 1},
      {"events-out", required_argument, nullptr, 2},
      {"agent-id", required_argument, nullptr, 3},
      {"metrics-listen", required_argument, nullptr, 4},
      {"version", no_argument, nullptr, 5},
      {"user", required_argument, nullptr, 6},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0}};
  Flags flags;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":c:i:r:f:h", kOptions, nullptr)) != -1) {
    switch (c) {
      case 'c':
        flags.config = optarg;
        break;
      case 'i':
        flags.interface = optarg;
        break;
      case 'r':
        flags.read = optarg;
        break;
      case 'f':
        flags.filter = optarg;
        flags.have_filter = true;
        break;
      case 1:
        flags.collector = optarg;
        break;
      case 2:
        flags.events_out = optarg;
        break;
      case 3:
        flags.agent_id = optarg;
        break;
      case 4:
        flags.metrics_listen = optarg;
        break;
      case 6:
        flags.user = optarg;
        break;
      case 5:
        printf("tokenwatch-agent %s\n", TOKENWATCH_VERSION);
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

  // Step 1: configuration; flags override the file.
  signal(SIGHUP, OnHangup);  // handled in the capture loop
  tokenwatch::config::Config cfg;
  if (!flags.config.empty()) {
    absl::StatusOr<tokenwatch::config::Config> loaded =
        tokenwatch::config::LoadConfig(flags.config);
    if (!loaded.ok()) {
      fprintf(stderr, "tokenwatch-agent: %s\n",
              std::string(loaded.status().message()).c_str());
      return 2;
    }
    cfg = *std::move(loaded);
  }
  std::string interface = !flags.interface.empty() ? flags.interface
                          : flags.read.empty()     ? cfg.agent.interface
                                                   : "";
  std::string filter = flags.have_filter ? flags.filter : cfg.agent.filter;
  std::string collector =
      !flags.collector.empty() ? flags.collector : cfg.agent.collector;
  std::string events_out =
      !flags.events_out.empty() ? flags.events_out : cfg.agent.events_out;
  bool metrics_explicit =
      !flags.metrics_listen.empty() || !cfg.agent.metrics_listen.empty();
  std::string metrics_listen =
      !flags.metrics_listen.empty()       ? flags.metrics_listen
      : !cfg.agent.metrics_listen.empty() ? cfg.agent.metrics_listen
                                          : "127.0.0.1:9472";
  std::string agent_id = !flags.agent_id.empty()       ? flags.agent_id
                         : !cfg.agent.agent_id.empty() ? cfg.agent.agent_id
                                                       : HostName();
  if (!flags.read.empty() && !flags.interface.empty()) {
    return Usage("-i and -r exclude each other");
  }
  if (flags.read.empty() && interface.empty())
    return Usage("give -i IFACE or -r FILE");
  if (events_out.empty() && collector.empty()) events_out = "-";
  // The user to become once the capture is open, looked up now so that a
  // typo stops the agent before it opens anything. Never continue as root
  // when asked to drop.
  std::optional<tokenwatch::privilege::TargetUser> drop_to;
  if (std::string user = !flags.user.empty() ? flags.user : cfg.agent.user;
      !user.empty()) {
    absl::StatusOr<tokenwatch::privilege::TargetUser> target =
        tokenwatch::privilege::LookUpUser(user);
    if (!target.ok()) {
      fprintf(
          stderr, "tokenwatch-agent: %s: %s\n",
          flags.user.empty() ? (cfg.path + ": agent.user").c_str() : "--user",
          std::string(target.status().message()).c_str());
      return 2;
    }
    drop_to = *std::move(target);
  }
  auto drop_privileges = [&]() -> bool {
    if (absl::Status s = tokenwatch::privilege::DropTo(*drop_to); !s.ok()) {
      fprintf(stderr, "tokenwatch-agent: cannot drop privileges: %s\n",
              std::string(s.message()).c_str());
      return false;
    }
    fprintf(stderr,
            "tokenwatch-agent: running as user %s (uid %u, gid %u) with no "
            "capabilities\n",
            drop_to->name.c_str(), static_cast<unsigned>(drop_to->uid),
            static_cast<unsigned>(drop_to->gid));
    return true;
  };

  // Step 2: the fingerprint key.
  std::unique_ptr<tokenwatch::token::Fingerprinter> fingerprinter;
  if (!cfg.fingerprint_key_file.empty()) {
    auto fp =
        tokenwatch::token::Fingerprinter::FromFile(cfg.fingerprint_key_file);
    if (!fp.ok()) {
      fprintf(stderr, "tokenwatch-agent: %s: fingerprint_key_file: %s\n",
              cfg.path.c_str(), std::string(fp.status().message()).c_str());
      return 2;
    }
    fingerprinter = *std::move(fp);
  } else {
    unsigned char key[32];
    RAND_bytes(key, sizeof key);
    fprintf(stderr,
            "tokenwatch-agent: warning: no fingerprint_key_file: using a "
            "random key, so fingerprints will not match other agents\n");
    fingerprinter = *tokenwatch::token::Fingerprinter::Create(
        std::string_view(reinterpret_cast<char*>(key), sizeof key));
  }

  // Step 3: the packet source.
  absl::StatusOr<std::unique_ptr<tokenwatch::capture::PcapSource>> source =
      flags.read.empty()
          ? tokenwatch::capture::PcapSource::OpenLive(interface, filter)
          : tokenwatch::capture::PcapSource::OpenFile(flags.read, filter);
  if (!source.ok()) {
    fprintf(stderr, "tokenwatch-agent: %s%s\n",
            std::string(source.status().message()).c_str(),
            absl::IsPermissionDenied(source.status())
                ? " (live capture needs root or CAP_NET_RAW)"
                : "");
    return absl::IsInvalidArgument(source.status()) ? 2 : 1;
  }
  tokenwatch::capture::PcapSource& src = **source;
  if (src.IsLive()) {
    fprintf(stderr, "tokenwatch-agent: capturing on %s%s%s\n",
            interface.c_str(), filter.empty() ? "" : " with filter ",
            filter.c_str());
  }
  // Not root: nothing privileged is left but the capture, which is open.
  // Drop now, while this is the only thread: capset reaches only the calling
  // thread, and threads started later inherit the empty sets.
  if (drop_to.has_value() && geteuid() != 0 && !drop_privileges()) return 2;

  // Step 4: issuer keys and the weak-secrets list, read before root drops
  // (they may be readable by root alone).
  auto checks = tokenwatch::token::TokenChecks::Create(cfg, /*stats=*/nullptr);
  if (!checks.ok()) {
    fprintf(stderr, "tokenwatch-agent: %s: %s\n", cfg.path.c_str(),
            std::string(checks.status().message()).c_str());
    return 2;
  }

  // Step 5: the event outputs: the collector stream, a JSON-lines file, or
  // both. The file is opened before the drop: it may be in a folder only
  // root can write.
  std::unique_ptr<tokenwatch::output::JsonLinesSink> json_sink;
  if (!events_out.empty()) {
    FILE* out = stdout;
    if (events_out != "-") {
      // O_NOFOLLOW: run as root, a symlink planted in the events folder must
      // not turn this open into a write to a file of root's choosing.
      int fd =
          open(events_out.c_str(),
               O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
      out = fd >= 0 ? fdopen(fd, "w") : nullptr;
      if (out == nullptr) {
        fprintf(stderr, "tokenwatch-agent: cannot write %s: %m\n",
                events_out.c_str());
        return 1;
      }
    }
    json_sink = std::make_unique<tokenwatch::output::JsonLinesSink>(out);
  }
  std::unique_ptr<tokenwatch::output::CollectorSink> collector_sink;
  if (!collector.empty()) {
    tokenwatch::output::CollectorSinkOptions o;
    o.target = collector;
    o.agent_id = agent_id;
    o.batch_max_events = cfg.agent.batch_max_events;
    o.flush_interval = std::chrono::milliseconds(std::max<int64_t>(
        1, absl::ToInt64Milliseconds(cfg.agent.flush_interval)));
    o.queue_max_events = cfg.agent.queue_max_events;
    if (cfg.agent.tls.has_value()) {
      auto tls = tokenwatch::config::MakeChannelCredentials(*cfg.agent.tls);
      if (!tls.ok()) {
        fprintf(stderr, "tokenwatch-agent: %s\n",
                std::string(tls.status().message()).c_str());
        return 2;
      }
      for (const std::string& w : tls->warnings) {
        fprintf(stderr, "tokenwatch-agent: warning: %s\n", w.c_str());
      }
      o.credentials = tls->credentials;
      o.tls_server_name = cfg.agent.tls->server_name;
    }
    collector_sink = std::make_unique<tokenwatch::output::CollectorSink>(o);
  }
  tokenwatch::output::TeeSink sink({json_sink.get(), collector_sink.get()});

  // Step 6: metrics. An address given by the user must work; the default
  // may be taken (another agent on this host): then say so and go on.
  auto metrics = std::make_shared<tokenwatch::metrics::AgentMetrics>(agent_id);
  std::unique_ptr<tokenwatch::metrics::MetricsServer> metrics_server;
  // A replay (-r) serves metrics only when asked to: it is usually over
  // before any scrape, and stopping the HTTP server costs up to 2 s.
  bool want_metrics =
      metrics_listen != "off" && (metrics_explicit || flags.read.empty());
  if (want_metrics) {
    auto started =
        tokenwatch::metrics::MetricsServer::Start(metrics_listen, metrics);
    if (started.ok()) {
      metrics_server = *std::move(started);
    } else if (metrics_explicit) {
      fprintf(stderr, "tokenwatch-agent: %s\n",
              std::string(started.status().message()).c_str());
      return 1;
    } else {
      fprintf(stderr,
              "tokenwatch-agent: warning: %s; running without metrics\n",
              std::string(started.status().message()).c_str());
    }
  }

  // Step 7: root drops to --user now that the capture is open and the
  // listeners are bound (a port below 1024 needs root). setresuid reaches
  // every thread, and with it the kernel empties each one's capabilities.
  if (drop_to.has_value() && geteuid() == 0) {
    if (!drop_privileges()) return 2;
  }
  if (drop_to.has_value()) {
    // Issuer key files are re-read when they change, by the dropped user.
    for (const tokenwatch::config::Issuer& i : cfg.issuers) {
      for (const std::string* f : {&i.jwks_file, &i.pem_file, &i.secret_file}) {
        if (!f->empty() && access(f->c_str(), R_OK) != 0) {
          fprintf(stderr,
                  "tokenwatch-agent: warning: %s is not readable by user %s: "
                  "changes to it will not be reloaded\n",
                  f->c_str(), drop_to->name.c_str());
        }
      }
    }
  }

  // Step 8: run until the file ends or a signal arrives.
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  // The latest reloaded config and checks; declared before the pipeline,
  // which uses them until it is gone.
  tokenwatch::AgentConfigGeneration live;
  tokenwatch::Pipeline pipeline(cfg, agent_id, fingerprinter.get(), &sink,
                                checks->get());
  (*checks)->set_stats(&pipeline.mutable_stats());
  // SIGHUP: the reloadable parts of the file (agent/reload.h) are swapped
  // in on this thread, between two packets.
  std::unique_ptr<tokenwatch::AgentReloader> reloader;
  if (!flags.config.empty())
    reloader =
        std::make_unique<tokenwatch::AgentReloader>(flags.config, cfg, cfg);
  auto reload = [&] {
    if (reloader == nullptr) {
      fprintf(stderr,
              "tokenwatch-agent: SIGHUP: no config file (-c) to reload\n");
      return;
    }
    std::vector<std::string> restart_keys;
    auto next = reloader->Load(&pipeline.mutable_stats(), &restart_keys);
    if (!next.ok()) {
      metrics->CountReload(/*ok=*/false);
      fprintf(stderr,
              "tokenwatch-agent: config reload failed, the running config "
              "stays: %s\n",
              std::string(next.status().message()).c_str());
      return;
    }
    pipeline.Reconfigure(*next->config, next->checks.get());
    // The old checks go before the config they refer to. Their queued
    // weak-secret searches move to the new checks (none is dropped, so no
    // held event waits forever); only the search already running is
    // waited for.
    std::unique_ptr<tokenwatch::config::Config> old_config =
        std::move(live.config);
    std::unique_ptr<tokenwatch::token::TokenChecks> old_checks =
        live.checks != nullptr ? std::move(live.checks) : std::move(*checks);
    next->checks->AdoptPending(old_checks.get());
    old_checks.reset();
    live = *std::move(next);
    metrics->CountReload(/*ok=*/true);
    fprintf(stderr, "tokenwatch-agent: config reloaded from %s\n",
            reloader->path().c_str());
    for (const std::string& key : restart_keys) {
      fprintf(stderr,
              "tokenwatch-agent: warning: %s: %s changed; it takes effect at "
              "restart\n",
              reloader->path().c_str(), key.c_str());
    }
  };
  Progress progress(!src.IsLive() && flags.read != "-" &&
                    isatty(STDERR_FILENO));
  int rc = 0;
  tokenwatch::capture::RawPacket packet;
  uint64_t n = 0;
  double capture_seconds = 0;
  absl::Time last_publish = absl::Now();
  auto publish = [&] {
    tokenwatch::metrics::StageSeconds st{
        capture_seconds, pipeline.decode_seconds(), pipeline.tcp_http_seconds(),
        pipeline.output_seconds()};
    std::optional<tokenwatch::output::DeliveryStats> d;
    if (collector_sink != nullptr) d = collector_sink->Stats();
    metrics->Publish(pipeline.stats(), src.Stats(), st, d);
  };
  while (!g_stop) {
    if (g_reload.load(std::memory_order_relaxed) && g_reload.exchange(false))
      reload();
    bool timed = (n & 63) == 0;
    absl::Time t0 = timed ? absl::Now() : absl::Time();
    absl::StatusOr<tokenwatch::capture::PacketSource::Result> r =
        src.Next(&packet);
    if (timed) capture_seconds += 64 * absl::ToDoubleSeconds(absl::Now() - t0);
    if (!r.ok()) {
      fprintf(stderr, "\ntokenwatch-agent: %s\n",
              std::string(r.status().message()).c_str());
      rc = 1;
      break;
    }
    if (*r == tokenwatch::capture::PacketSource::Result::kEnd) break;
    if (*r == tokenwatch::capture::PacketSource::Result::kTimeout) {
      // Live and idle: packet time stands still, the wall clock does not.
      pipeline.Advance(absl::ToUnixMicros(absl::Now()));
      if (json_sink != nullptr) json_sink->Flush();
      if (metrics_server != nullptr &&
          absl::Now() - last_publish > absl::Seconds(1)) {
        publish();
        last_publish = absl::Now();
      }
      continue;
    }
    pipeline.OnPacket(packet);
    if ((++n & 0xffff) == 0) progress.Maybe(src, n);
    if ((n & 0x3ff) == 0 && metrics_server != nullptr &&
        absl::Now() - last_publish > absl::Seconds(1)) {
      publish();
      last_publish = absl::Now();
    }
    if (src.IsLive() && json_sink != nullptr && (n & 0xff) == 0)
      json_sink->Flush();
  }
  progress.Done();

  // Teardown, always.
  pipeline.Finish();
  sink.Flush();
  if (collector_sink != nullptr) {
    // Exit only once the collector has stored every event, or say what was not.
    bool drained = collector_sink->Drain(std::chrono::milliseconds(
        absl::ToInt64Milliseconds(cfg.agent.drain_timeout)));
    tokenwatch::output::DeliveryStats d = collector_sink->Stats();
    fprintf(stderr,
            "tokenwatch-agent: delivery: %llu events queued, %llu "
            "acknowledged, %llu dropped "
            "(queue full), %llu reconnects\n",
            (unsigned long long)d.queued, (unsigned long long)d.acked,
            (unsigned long long)d.dropped, (unsigned long long)d.reconnects);
    if (!drained) {
      fprintf(stderr,
              "tokenwatch-agent: error: %llu events in %llu batches were not "
              "acknowledged by "
              "the collector at %s within %s\n",
              (unsigned long long)d.unacked_events,
              (unsigned long long)d.unacked_batches, collector.c_str(),
              absl::FormatDuration(cfg.agent.drain_timeout).c_str());
      if (!d.last_error.empty()) {
        fprintf(stderr, "tokenwatch-agent: last error from %s: %s\n",
                collector.c_str(), d.last_error.c_str());
      }
      rc = 1;
    } else if (d.dropped > 0) {
      fprintf(
          stderr,
          "tokenwatch-agent: error: %llu events were dropped (queue full)\n",
          (unsigned long long)d.dropped);
      rc = 1;
    }
  }
  publish();
  tokenwatch::AgentStats& stats = pipeline.mutable_stats();
  tokenwatch::capture::CaptureStats cs = src.Stats();
  stats.Count(tokenwatch::Drop::kCaptureKernel, cs.kernel_dropped);
  stats.Count(tokenwatch::Drop::kCaptureInterface, cs.iface_dropped);
  fprintf(stderr, "%s", stats.Summary().c_str());
  return rc;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
