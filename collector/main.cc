// tokenwatch-collector: parses the command line and runs the app
// (collector/app.h), which owns start-up, serving and teardown.
#include <getopt.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "collector/app.h"
#include "collector/ingest/ingest_service.h"
#include "common/log.h"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};
void OnSignal(int) { g_stop = true; }
void OnHangup(int) { g_reload = true; }

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

int Main(int argc, char** argv) {
  static const option kOptions[] = {
      {"config", required_argument, nullptr, 'c'},
      {"listen", required_argument, nullptr, 1},
      {"http-listen", required_argument, nullptr, 2},
      {"store", required_argument, nullptr, 3},
      {"alerts-out", required_argument, nullptr, 4},
      {"version", no_argument, nullptr, 5},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0}};
  tokenwatch::collector::CollectorFlags flags;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":c:h", kOptions, nullptr)) != -1) {
    switch (c) {
      case 'c':
        flags.config = optarg;
        break;
      case 1:
        flags.listen = optarg;
        break;
      case 2:
        flags.http_listen = optarg;
        break;
      case 3:
        flags.store = optarg;
        break;
      case 4:
        flags.alerts_out = optarg;
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
  // SIGHUP is handled once serving; SIGINT and SIGTERM end serving and the
  // teardown (a final commit) still runs.
  signal(SIGHUP, OnHangup);
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  tokenwatch::collector::CollectorApp app(std::move(flags), &g_stop, &g_reload);
  return app.Run();
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
