#include "collector/http/listen_address.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "collector/http/url.h"

namespace tokenwatch::collector::http {

absl::StatusOr<ListenAddress> ParseListen(const std::string& listen) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad listen address '", listen, "': ", std::string(why)));
  };
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return bad("expected HOST:PORT");
  std::string host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  if (!AllDigits(port) || port.size() > 5 || std::stoi(port) > 65535) {
    return bad("port must be a number from 0 to 65535");
  }
  ListenAddress out;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    out.family = AF_INET6;
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(),
                  out.addr) != 1) {
      return bad("not an IPv6 address");
    }
    if (!mg_check_feature(MG_FEATURES_IPV6)) {
      return absl::UnimplementedError(
          absl::StrCat("cannot listen on ", listen,
                       ": this civetweb build has no IPv6 support"));
    }
  } else {
    if (host == "localhost") host = "127.0.0.1";
    out.family = AF_INET;
    if (inet_pton(AF_INET, host.c_str(), out.addr) != 1) {
      return bad("host must be an IPv4 address, [IPv6 address] or localhost");
    }
  }
  out.civetweb_ports = absl::StrCat(host, ":", std::stoi(port));
  return out;
}

// The socket is found by what it is bound to: a listening TCP socket on our
// exact address and port can only be ours (civetweb sets no SO_REUSEPORT),
// and it stays open until mg_stop() closes it.
void WakeListener(const ListenAddress& listen, int port) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;  // mg_stop still works, only slower
  while (dirent* entry = readdir(dir)) {
    int fd = -1;
    if (sscanf(entry->d_name, "%d", &fd) != 1 || fd == dirfd(dir)) continue;
    int accepting = 0;
    socklen_t len = sizeof accepting;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 ||
        !accepting) {
      continue;
    }
    sockaddr_storage bound{};
    len = sizeof bound;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0 ||
        bound.ss_family != listen.family) {
      continue;
    }
    bool same = false;
    if (bound.ss_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(&bound);
      same = ntohs(sin->sin_port) == port &&
             memcmp(&sin->sin_addr, listen.addr, 4) == 0;
    } else {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&bound);
      same = ntohs(sin6->sin6_port) == port &&
             memcmp(&sin6->sin6_addr, listen.addr, 16) == 0;
    }
    if (same) shutdown(fd, SHUT_RDWR);
  }
  closedir(dir);
}

}  // namespace tokenwatch::collector::http
