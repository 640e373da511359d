// Which service a request went to: the configured services matched by Host
// header or by destination address; anything else is named `host:port`.
#ifndef TOKENWATCH_AGENT_SERVICE_ATTRIBUTION_H_
#define TOKENWATCH_AGENT_SERVICE_ATTRIBUTION_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/config.h"

namespace tokenwatch::service {

class Attributor {
 public:
  explicit Attributor(const std::vector<config::Service>& services);

  // `host_header` as sent (may carry a port, any case); `server_ip` as text
  // ("10.0.0.5", "::1"); `server_port` the destination port.
  std::string Attribute(std::string_view host_header,
                        std::string_view server_ip, uint16_t server_port) const;

  // Changes whenever the attributor is replaced (a config reload assigns a
  // new one in place): lets a caller keep answers it got from this one.
  uint64_t generation() const { return generation_; }

  // "10.0.0.5:8080" / "[::1]:8080".
  static std::string JoinHostPort(std::string_view ip, uint16_t port);
  // Host header without its port, lower-cased; IPv6 keeps its brackets.
  static std::string HostWithoutPort(std::string_view host_header);

 private:
  absl::flat_hash_map<std::string, std::string> by_host_;       // exact host
  std::vector<std::pair<std::string, std::string>> by_suffix_;  // "*.x" → ".x"
  absl::flat_hash_map<std::string, std::string> by_address_;    // ip:port or ip
  uint64_t generation_;
};

}  // namespace tokenwatch::service

#endif  // TOKENWATCH_AGENT_SERVICE_ATTRIBUTION_H_
