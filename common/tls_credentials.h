// TLS for the agent -> collector gRPC link, from the PEM files the config
// names (`agent.tls`, `collector.tls`). Every file is read and checked
// before use: a missing, unreadable or malformed file, or a key that does
// not belong to its certificate, is a start-up error that names the config
// file, the line and the key, rather than a handshake that fails later
// with a vague message on the other side.
#ifndef TOKENWATCH_COMMON_TLS_CREDENTIALS_H_
#define TOKENWATCH_COMMON_TLS_CREDENTIALS_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"

namespace tokenwatch::config {

// PEM files bigger than this are not certificates or keys.
inline constexpr size_t kMaxPemBytes = 1 << 20;

template <typename Credentials>
struct TlsCredentials {
  std::shared_ptr<Credentials> credentials;
  // Things that work but should not be so (a key others may read, a
  // certificate out of its validity period); one line each.
  std::vector<std::string> warnings;
};

// The PEM text of `file`, holding at least one certificate, all of which
// parse. Errors are InvalidArgument and start with `file.where`.
absl::StatusOr<std::string> ReadCertificates(const FileSetting& file);

// The PEM text of `key`, an unencrypted private key that belongs to the
// first (leaf) certificate of `cert_pem`, read from `cert`. A key readable
// by group or others adds a warning.
absl::StatusOr<std::string> ReadPrivateKey(const FileSetting& key,
                                           const FileSetting& cert,
                                           const std::string& cert_pem,
                                           std::vector<std::string>* warnings);

// The agent's channel credentials: `ca_file` as roots (gRPC's own roots
// when unset) and, when set, the client certificate and key.
absl::StatusOr<TlsCredentials<grpc::ChannelCredentials>> MakeChannelCredentials(
    const AgentTls& tls);

// The collector's server credentials. With `client_ca_file` every client
// must present a certificate signed by it
// (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY).
absl::StatusOr<TlsCredentials<grpc::ServerCredentials>> MakeServerCredentials(
    const CollectorTls& tls);

}  // namespace tokenwatch::config

#endif  // TOKENWATCH_COMMON_TLS_CREDENTIALS_H_
