#include "collector/http/connection_cap.h"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <map>
#include <optional>
#include <vector>

namespace tokenwatch::collector::http {
namespace {

using Key = std::tuple<int, std::string, int>;

// The connection on `fd` if it was accepted on `port`: local port `port`
// and a peer (a listening socket has none; a client socket of this
// process has an ephemeral local port).
std::optional<Key> AcceptedOn(int port, int fd) {
  sockaddr_storage local{}, peer{};
  socklen_t len = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    return std::nullopt;
  }
  int local_port = 0;
  if (local.ss_family == AF_INET) {
    local_port = ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port);
  } else if (local.ss_family == AF_INET6) {
    local_port = ntohs(reinterpret_cast<sockaddr_in6*>(&local)->sin6_port);
  }
  if (local_port != port) return std::nullopt;
  len = sizeof peer;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) {
    return std::nullopt;
  }
  if (peer.ss_family == AF_INET) {
    const auto* p = reinterpret_cast<const sockaddr_in*>(&peer);
    return Key(fd,
               std::string(reinterpret_cast<const char*>(&p->sin_addr),
                           sizeof p->sin_addr),
               ntohs(p->sin_port));
  }
  if (peer.ss_family == AF_INET6) {
    const auto* p = reinterpret_cast<const sockaddr_in6*>(&peer);
    return Key(fd,
               std::string(reinterpret_cast<const char*>(&p->sin6_addr),
                           sizeof p->sin6_addr),
               ntohs(p->sin6_port));
  }
  return std::nullopt;
}

// Every connection of this process accepted on `port`.
std::vector<Key> AcceptedOn(int port) {
  std::vector<Key> out;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return out;
  while (dirent* entry = readdir(dir)) {
    int fd = -1;
    if (sscanf(entry->d_name, "%d", &fd) != 1 || fd == dirfd(dir)) continue;
    if (std::optional<Key> k = AcceptedOn(port, fd)) out.push_back(*k);
  }
  closedir(dir);
  return out;
}

}  // namespace

int ConnectionCap::Enforce(int port, std::string_view refusal) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Key> now = AcceptedOn(port);
  std::set<Key> admitted;
  std::map<std::string, int> per_address;
  for (const Key& k : now) {
    if (admitted_.count(k) > 0) {
      admitted.insert(k);
      ++per_address[std::get<1>(k)];
    }
  }
  int refused = 0;
  std::set<Key> still_refused;
  for (const Key& k : now) {
    if (admitted.count(k) > 0) continue;
    if (refused_.count(k) > 0) {
      still_refused.insert(k);
      continue;
    }
    int& n = per_address[std::get<1>(k)];
    if (n < max_per_address_) {
      ++n;
      admitted.insert(k);
      continue;
    }
    const int fd = std::get<0>(k);
    // The socket is civetweb's, which may have closed it since the scan
    // and reused the number: act only if it still is that peer.
    if (AcceptedOn(port, fd) != k) continue;
    (void)send(fd, refusal.data(), refusal.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    // The worker reading it (now or later) sees the end at once.
    shutdown(fd, SHUT_RDWR);
    still_refused.insert(k);
    ++refused;
  }
  admitted_ = std::move(admitted);  // closed connections drop out
  refused_ = std::move(still_refused);
  return refused;
}

}  // namespace tokenwatch::collector::http
