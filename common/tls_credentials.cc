#include "common/tls_credentials.h"

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tokenwatch::config {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

absl::Status Error(const FileSetting& f, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(f.where, ": ", what));
}

// The reason of OpenSSL's last error, and the queue cleared: errors left
// behind would surface in gRPC's own handshakes later.
std::string OpenSslReason() {
  const unsigned long code = ERR_peek_last_error();
  const char* reason = code == 0 ? nullptr : ERR_reason_error_string(code);
  ERR_clear_error();
  return reason == nullptr ? "unknown error" : reason;
}

absl::StatusOr<std::string> ReadFile(const FileSetting& f) {
  std::FILE* file = std::fopen(f.path.c_str(), "rb");
  if (file == nullptr) {
    return Error(
        f, absl::StrCat("cannot read ", f.path, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (fstat(fileno(file), &st) != 0 || !S_ISREG(st.st_mode)) {
    std::fclose(file);
    return Error(f, absl::StrCat("cannot read ", f.path, ": not a file"));
  }
  std::string text;
  char buf[16384];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, file)) > 0) {
    if (text.size() + n > kMaxPemBytes) {
      std::fclose(file);
      return Error(f, absl::StrCat(f.path, " is larger than ",
                                   kMaxPemBytes >> 20, " MiB"));
    }
    text.append(buf, n);
  }
  const bool failed = std::ferror(file) != 0;
  const int read_errno = errno;
  std::fclose(file);
  if (failed) {
    return Error(f, absl::StrCat("cannot read ", f.path, ": ",
                                 std::strerror(read_errno)));
  }
  return text;
}

BioPtr MemoryBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// The first certificate of PEM text already checked by ReadCertificates.
X509Ptr LeafOf(const std::string& pem) {
  BioPtr bio = MemoryBio(pem);
  if (bio == nullptr) return nullptr;
  X509Ptr leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return leaf;
}

// Never prompts: without this OpenSSL asks the terminal for a passphrase.
int NoPassphrase(char*, int, int, void*) { return -1; }

std::string AsnTime(const ASN1_TIME* t) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || ASN1_TIME_print(bio.get(), t) != 1) return "?";
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

void CheckValidity(const FileSetting& f, const std::string& pem,
                   std::vector<std::string>* warnings) {
  X509Ptr leaf = LeafOf(pem);
  if (leaf == nullptr) return;
  if (X509_cmp_current_time(X509_get0_notAfter(leaf.get())) < 0) {
    warnings->push_back(absl::StrCat(f.where, ": the certificate in ", f.path,
                                     " expired on ",
                                     AsnTime(X509_get0_notAfter(leaf.get()))));
  } else if (X509_cmp_current_time(X509_get0_notBefore(leaf.get())) > 0) {
    warnings->push_back(absl::StrCat(f.where, ": the certificate in ", f.path,
                                     " is not valid before ",
                                     AsnTime(X509_get0_notBefore(leaf.get()))));
  }
}

}  // namespace

absl::StatusOr<std::string> ReadCertificates(const FileSetting& file) {
  absl::StatusOr<std::string> text = ReadFile(file);
  if (!text.ok()) return text.status();
  BioPtr bio = MemoryBio(*text);
  if (bio == nullptr) return Error(file, "out of memory");
  ERR_clear_error();
  int count = 0;
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert != nullptr) {
      ++count;
      continue;
    }
    const unsigned long code = ERR_peek_last_error();
    // "No start line" after the last certificate is the normal end.
    if (count > 0 && ERR_GET_LIB(code) == ERR_LIB_PEM &&
        ERR_GET_REASON(code) == PEM_R_NO_START_LINE) {
      ERR_clear_error();
      break;
    }
    if (count == 0 && ERR_GET_LIB(code) == ERR_LIB_PEM &&
        ERR_GET_REASON(code) == PEM_R_NO_START_LINE) {
      ERR_clear_error();
      return Error(file, absl::StrCat("no PEM certificate in ", file.path));
    }
    return Error(file, absl::StrCat("malformed certificate ", count + 1, " in ",
                                    file.path, ": ", OpenSslReason()));
  }
  return *std::move(text);
}

absl::StatusOr<std::string> ReadPrivateKey(const FileSetting& key,
                                           const FileSetting& cert,
                                           const std::string& cert_pem,
                                           std::vector<std::string>* warnings) {
  absl::StatusOr<std::string> text = ReadFile(key);
  if (!text.ok()) return text.status();
  BioPtr bio = MemoryBio(*text);
  if (bio == nullptr) return Error(key, "out of memory");
  ERR_clear_error();
  PkeyPtr pkey(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, &NoPassphrase, nullptr));
  if (pkey == nullptr) {
    const std::string reason = OpenSslReason();
    if (text->find("ENCRYPTED") != std::string::npos) {
      return Error(key, absl::StrCat(key.path,
                                     " is encrypted; give an unencrypted key "
                                     "(protect it with file permissions)"));
    }
    return Error(key, absl::StrCat("no usable PEM private key in ", key.path,
                                   ": ", reason));
  }
  X509Ptr leaf = LeafOf(cert_pem);
  if (leaf == nullptr) {
    return Error(cert, absl::StrCat("no PEM certificate in ", cert.path));
  }
  if (X509_check_private_key(leaf.get(), pkey.get()) != 1) {
    ERR_clear_error();
    return Error(key, absl::StrCat("the key in ", key.path,
                                   " does not belong to the certificate in ",
                                   cert.path));
  }
  struct stat st;
  if (warnings != nullptr && stat(key.path.c_str(), &st) == 0 &&
      (st.st_mode & 077) != 0) {
    warnings->push_back(absl::StrFormat(
        "%s: %s may be read by group or others (mode %04o); chmod 600 it",
        key.where, key.path, st.st_mode & 07777));
  }
  return *std::move(text);
}

absl::StatusOr<TlsCredentials<grpc::ChannelCredentials>> MakeChannelCredentials(
    const AgentTls& tls) {
  TlsCredentials<grpc::ChannelCredentials> out;
  grpc::SslCredentialsOptions options;
  if (!tls.ca_file.empty()) {
    absl::StatusOr<std::string> roots = ReadCertificates(tls.ca_file);
    if (!roots.ok()) return roots.status();
    options.pem_root_certs = *std::move(roots);
  }
  if (!tls.cert_file.empty()) {
    absl::StatusOr<std::string> chain = ReadCertificates(tls.cert_file);
    if (!chain.ok()) return chain.status();
    absl::StatusOr<std::string> key =
        ReadPrivateKey(tls.key_file, tls.cert_file, *chain, &out.warnings);
    if (!key.ok()) return key.status();
    CheckValidity(tls.cert_file, *chain, &out.warnings);
    options.pem_cert_chain = *std::move(chain);
    options.pem_private_key = *std::move(key);
  }
  out.credentials = grpc::SslCredentials(options);
  if (out.credentials == nullptr) {
    return absl::InternalError("gRPC could not make TLS channel credentials");
  }
  return out;
}

absl::StatusOr<TlsCredentials<grpc::ServerCredentials>> MakeServerCredentials(
    const CollectorTls& tls) {
  TlsCredentials<grpc::ServerCredentials> out;
  absl::StatusOr<std::string> chain = ReadCertificates(tls.cert_file);
  if (!chain.ok()) return chain.status();
  absl::StatusOr<std::string> key =
      ReadPrivateKey(tls.key_file, tls.cert_file, *chain, &out.warnings);
  if (!key.ok()) return key.status();
  CheckValidity(tls.cert_file, *chain, &out.warnings);
  const bool mutual = !tls.client_ca_file.empty();
  grpc::SslServerCredentialsOptions options(
      mutual ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
             : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (mutual) {
    absl::StatusOr<std::string> roots = ReadCertificates(tls.client_ca_file);
    if (!roots.ok()) return roots.status();
    options.pem_root_certs = *std::move(roots);
  }
  options.pem_key_cert_pairs.push_back({*std::move(key), *std::move(chain)});
  out.credentials = grpc::SslServerCredentials(options);
  if (out.credentials == nullptr) {
    return absl::InternalError("gRPC could not make TLS server credentials");
  }
  return out;
}

}  // namespace tokenwatch::config
