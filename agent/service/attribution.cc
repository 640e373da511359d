#include "agent/service/attribution.h"

#include <atomic>

#include "common/strings.h"

namespace tokenwatch::service {

namespace {
std::atomic<uint64_t> next_generation{1};
}  // namespace

Attributor::Attributor(const std::vector<config::Service>& services)
    : generation_(next_generation.fetch_add(1, std::memory_order_relaxed)) {
  for (const config::Service& s : services) {
    for (const std::string& h : s.match.hosts) {
      std::string host = util::ToLower(h);
      if (util::StartsWith(host, "*.")) {
        by_suffix_.emplace_back(host.substr(1), s.name);
      } else {
        by_host_.emplace(host, s.name);  // first service listed wins
      }
    }
    for (const std::string& a : s.match.addresses)
      by_address_.emplace(a, s.name);
  }
}

std::string Attributor::JoinHostPort(std::string_view ip, uint16_t port) {
  if (ip.find(':') != std::string_view::npos && !util::StartsWith(ip, "[")) {
    return "[" + std::string(ip) + "]:" + std::to_string(port);
  }
  return std::string(ip) + ":" + std::to_string(port);
}

std::string Attributor::HostWithoutPort(std::string_view host) {
  host = util::Trim(host);
  if (util::StartsWith(host, "[")) {
    size_t close = host.find(']');
    if (close != std::string_view::npos) host = host.substr(0, close + 1);
  } else if (size_t colon = host.rfind(':');
             colon != std::string_view::npos && host.find(':') == colon) {
    host = host.substr(0, colon);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);  // FQDN dot
  return util::ToLower(host);
}

std::string Attributor::Attribute(std::string_view host_header,
                                  std::string_view server_ip,
                                  uint16_t server_port) const {
  std::string host = HostWithoutPort(host_header);
  if (!host.empty()) {
    if (auto it = by_host_.find(host); it != by_host_.end()) return it->second;
    for (const auto& [suffix, name] : by_suffix_) {
      if (util::EndsWith(host, suffix)) return name;
    }
  }
  if (!by_address_.empty()) {
    std::string addr = JoinHostPort(server_ip, server_port);
    if (auto it = by_address_.find(addr); it != by_address_.end())
      return it->second;
    if (auto it = by_address_.find(std::string(server_ip));
        it != by_address_.end()) {
      return it->second;
    }
  }
  return host.empty() ? JoinHostPort(server_ip, server_port)
                      : host + ":" + std::to_string(server_port);
}

}  // namespace tokenwatch::service
