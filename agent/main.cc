// tokenwatch-agent: parses the command line and runs the app
// (agent/app.h), which owns start-up, the capture loop and teardown.
#include <getopt.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/app.h"
#include "common/log.h"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};
void OnSignal(int) { g_stop = true; }
void OnHangup(int) { g_reload = true; }

constexpr char kUsage[] =
    "usage: tokenwatch-agent [-c FILE] (-i IFACE | -r FILE | --tls-probe)\n"
    "                        [-f EXPR]\n"
    "                        [--collector HOST:PORT] [--events-out FILE]\n"
    "                        [--agent-id ID] [--metrics-listen ADDR]\n"
    "                        [--user USER]\n"
    "  -c, --config FILE       YAML config; flags override it\n"
    "  -i, --interface IFACE   live capture (any allowed)\n"
    "  -r, --read FILE         read a pcap/pcapng file (- = stdin)\n"
    "  -f, --filter EXPR       BPF filter, tcpdump syntax\n"
    "      --tls-probe         plaintext of this host's OpenSSL calls (eBPF;\n"
    "                          alone or beside -i; root or CAP_BPF+PERFMON)\n"
    "      --collector ADDR    stream usage events to a collector (gRPC)\n"
    "      --events-out FILE   write usage events as JSON lines (- = stdout)\n"
    "      --agent-id ID       defaults to the host name\n"
    "      --metrics-listen A  Prometheus /metrics (default 127.0.0.1:9472)\n"
    "      --user USER         once the capture is open, run as USER with no\n"
    "                          capabilities (like tcpdump -Z)\n"
    "      --version, --help\n";

int Usage(const std::string& why) {
  fprintf(stderr, "tokenwatch-agent: %s\n%s", why.c_str(), kUsage);
  return 2;
}

int Main(int argc, char** argv) {
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
      {"tls-probe", no_argument, nullptr, 7},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0}};
  tokenwatch::AgentFlags flags;
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
      case 7:
        flags.tls_probe = true;
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

  if (!flags.read.empty() && !flags.interface.empty())
    return Usage("-i and -r exclude each other");

  tokenwatch::log::SetProgramName("tokenwatch-agent");
  // SIGHUP is handled between two packets; SIGINT and SIGTERM end the loop
  // and the teardown still runs.
  signal(SIGHUP, OnHangup);
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  tokenwatch::AgentApp app(std::move(flags), &g_stop, &g_reload);
  return app.Run();
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
