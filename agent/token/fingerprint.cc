#include "agent/token/fingerprint.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tokenwatch::token {

absl::StatusOr<std::unique_ptr<Fingerprinter>> Fingerprinter::Create(
    std::string_view key) {
  if (key.empty())
    return absl::InvalidArgumentError("fingerprint key is empty");
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) return absl::InternalError("OpenSSL has no HMAC");
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  if (ctx == nullptr ||
      EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()),
                   key.size(), params) != 1) {
    EVP_MAC_CTX_free(ctx);
    return absl::InternalError("cannot initialise HMAC-SHA256");
  }
  return std::unique_ptr<Fingerprinter>(new Fingerprinter(ctx));
}

absl::StatusOr<std::unique_ptr<Fingerprinter>> Fingerprinter::FromFile(
    const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat("cannot read fingerprint key file ",
                                            path, ": ", strerror(errno)));
  }
  // The mode of the file actually opened (no race with a rename). Like ssh
  // with a private key: anyone else who can read the key can compute every
  // fingerprint, and anyone who can write it can change them.
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("fingerprint key file ", path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    close(fd);
    return absl::PermissionDeniedError(absl::StrFormat(
        "fingerprint key file %s has mode %04o: it must not be accessible by "
        "group or others; run: chmod 600 %s",
        path, st.st_mode & 07777, path));
  }
  std::string key;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return absl::NotFoundError(absl::StrCat(
          "cannot read fingerprint key file ", path, ": ", strerror(err)));
    }
    if (n == 0) break;
    key.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("fingerprint key file ", path, " is empty"));
  }
  return Create(key);
}

Fingerprinter::~Fingerprinter() { EVP_MAC_CTX_free(keyed_); }

std::string Fingerprinter::Fingerprint(std::string_view input) const {
  static constexpr char kHex[] = "0123456789abcdef";
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t out_len = 0;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(keyed_);
  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  EVP_MAC_final(ctx, out, &out_len, sizeof out);
  EVP_MAC_CTX_free(ctx);
  std::string hex(32, '0');
  for (int i = 0; i < 16; ++i) {
    hex[2 * i] = kHex[out[i] >> 4];
    hex[2 * i + 1] = kHex[out[i] & 0xf];
  }
  return hex;
}

}  // namespace tokenwatch::token
