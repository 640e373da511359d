// The API's --http-listen address, parsed strictly for civetweb, and a way
// to wake civetweb's listener at shutdown.
#ifndef TOKENWATCH_COLLECTOR_HTTP_LISTEN_ADDRESS_H_
#define TOKENWATCH_COLLECTOR_HTTP_LISTEN_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"

namespace tokenwatch::collector::http {

struct ListenAddress {
  std::string civetweb_ports;   // civetweb's "listening_ports" value
  int family = 0;               // AF_INET or AF_INET6
  unsigned char addr[16] = {};  // network order; 4 bytes for AF_INET
};

// "IPV4:PORT", "[IPV6]:PORT" or "localhost:PORT" (127.0.0.1), checked
// strictly so nothing else reaches civetweb's option syntax (a ',' would
// add a port). Errors name the address.
absl::StatusOr<ListenAddress> ParseListen(const std::string& listen);

// civetweb's master thread polls its listening socket with a 2 s timeout
// and looks at the stop flag only between polls, so mg_stop() alone takes
// up to 2 s. Shutting that socket down first wakes the poll at once.
void WakeListener(const ListenAddress& listen, int port);

}  // namespace tokenwatch::collector::http

#endif  // TOKENWATCH_COLLECTOR_HTTP_LISTEN_ADDRESS_H_
