// Connections per client address to the API, capped from the kernel's
// view. civetweb 1.15 gives a worker a connection before its headers are
// read and tells the application neither the socket nor the client address
// until then (mg_get_request_info is NULL in init_connection), so one
// address with many slow connections could hold every worker. Each new
// connection triggers a look at this process's sockets accepted on the
// API's port; those of an address already at its cap are answered and
// shut down, whether a worker holds them yet or they still wait in
// civetweb's queue.
#ifndef TOKENWATCH_COLLECTOR_HTTP_CONNECTION_CAP_H_
#define TOKENWATCH_COLLECTOR_HTTP_CONNECTION_CAP_H_

#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <tuple>

#include "absl/base/thread_annotations.h"

namespace tokenwatch::collector::http {

class ConnectionCap {
 public:
  explicit ConnectionCap(int max_per_address)
      : max_per_address_(max_per_address) {}

  // Looks at the sockets accepted on `port`: connections seen for the
  // first time while their address already has max_per_address admitted
  // get `refusal` written (best effort) and are shut down. Returns how
  // many. Costs one pass over this process's descriptors.
  int Enforce(int port, std::string_view refusal);

 private:
  const int max_per_address_;
  std::mutex mu_;
  // Admitted connections as (descriptor, peer address bytes, peer port):
  // a descriptor reused by another connection is another key.
  std::set<std::tuple<int, std::string, int>> admitted_ ABSL_GUARDED_BY(mu_);
  // Refused and not yet closed by civetweb: not refused (counted) again.
  std::set<std::tuple<int, std::string, int>> refused_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tokenwatch::collector::http

#endif  // TOKENWATCH_COLLECTOR_HTTP_CONNECTION_CAP_H_
