#include "common/tls_credentials.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "gtest/gtest.h"

namespace tokenwatch::config {
namespace {

namespace fs = std::filesystem;

// A throw-away PKI from scripts/make-test-ca.sh, made once for the suite.
class TlsCredentialsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        absl::StrCat("tls_credentials_test.", getpid()));
    fs::remove_all(*dir_);
    const std::string command = absl::StrCat("bash '", TOKENWATCH_SOURCE_DIR,
                                             "/scripts/make-test-ca.sh' '",
                                             dir_->string(), "' 2 >/dev/null");
    made_ = std::system(command.c_str()) == 0;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  void SetUp() override { ASSERT_TRUE(made_) << "make-test-ca.sh failed"; }

  // A setting as the config loader makes it, naming where it came from.
  static FileSetting File(const std::string& name,
                          const std::string& key = "collector.tls.cert_file") {
    return {(*dir_ / name).string(),
            absl::StrCat("tw.yaml:7: key '", key, "'")};
  }
  static std::string Write(const std::string& name,
                           const std::string& content) {
    const std::string path = (*dir_ / name).string();
    std::ofstream(path, std::ios::binary) << content;
    chmod(path.c_str(), 0600);
    return path;
  }
  static std::string Read(const std::string& name) {
    std::ifstream in(*dir_ / name, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  static CollectorTls ServerFiles() {
    return {File("server.crt", "collector.tls.cert_file"),
            File("server.key", "collector.tls.key_file"),
            File("ca.crt", "collector.tls.client_ca_file")};
  }

  static inline fs::path* dir_ = nullptr;
  static inline bool made_ = false;
};

TEST_F(TlsCredentialsTest, ServerCredentialsFromTheTestCa) {
  auto creds = MakeServerCredentials(ServerFiles());
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_NE(creds->credentials, nullptr);
  EXPECT_TRUE(creds->warnings.empty()) << creds->warnings[0];
}

TEST_F(TlsCredentialsTest, ChannelCredentialsWithAndWithoutAClientCert) {
  AgentTls tls{File("ca.crt", "agent.tls.ca_file"),
               File("agent.crt", "agent.tls.cert_file"),
               File("agent.key", "agent.tls.key_file"), "localhost"};
  auto creds = MakeChannelCredentials(tls);
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_NE(creds->credentials, nullptr);
  EXPECT_TRUE(creds->warnings.empty());
  tls.cert_file = {};
  tls.key_file = {};
  creds = MakeChannelCredentials(tls);
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_NE(creds->credentials, nullptr);
}

TEST_F(TlsCredentialsTest, MissingFileNamesConfigLineKeyAndPath) {
  CollectorTls tls = ServerFiles();
  tls.cert_file = File("nope.crt");
  auto creds = MakeServerCredentials(tls);
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(creds.status().message(),
            absl::StrCat("tw.yaml:7: key 'collector.tls.cert_file': cannot "
                         "read ",
                         (*dir_ / "nope.crt").string(),
                         ": No such file or directory"));
}

TEST_F(TlsCredentialsTest, DirectoryIsNotACertificate) {
  CollectorTls tls = ServerFiles();
  tls.client_ca_file = {dir_->string(),
                        "tw.yaml:9: key 'collector.tls.client_ca_file'"};
  auto creds = MakeServerCredentials(tls);
  ASSERT_FALSE(creds.ok());
  EXPECT_TRUE(absl::StartsWith(
      creds.status().message(),
      "tw.yaml:9: key 'collector.tls.client_ca_file': cannot read "))
      << creds.status();
}

TEST_F(TlsCredentialsTest, GarbageIsNoCertificate) {
  Write("garbage.crt", "this is not PEM\n");
  auto certs = ReadCertificates(File("garbage.crt"));
  ASSERT_FALSE(certs.ok());
  EXPECT_EQ(certs.status().message(),
            absl::StrCat("tw.yaml:7: key 'collector.tls.cert_file': no PEM "
                         "certificate in ",
                         (*dir_ / "garbage.crt").string()));
  // A key where a certificate belongs is no certificate either.
  EXPECT_FALSE(ReadCertificates(File("server.key")).ok());
}

TEST_F(TlsCredentialsTest, DamagedCertificateIsMalformed) {
  std::string pem = Read("server.crt");
  pem[pem.size() / 2] = pem[pem.size() / 2] == 'A' ? 'B' : 'A';
  pem.insert(pem.size() / 2, "!!");
  Write("damaged.crt", pem);
  auto certs = ReadCertificates(File("damaged.crt"));
  ASSERT_FALSE(certs.ok());
  EXPECT_TRUE(absl::StrContains(certs.status().message(),
                                "malformed certificate 1 in "))
      << certs.status();
  // A good certificate followed by a damaged one: the second is named.
  Write("chain.crt", Read("ca.crt") + pem);
  certs = ReadCertificates(File("chain.crt"));
  ASSERT_FALSE(certs.ok());
  EXPECT_TRUE(absl::StrContains(certs.status().message(),
                                "malformed certificate 2 in "))
      << certs.status();
}

TEST_F(TlsCredentialsTest, KeyOfAnotherCertificateIsRefused) {
  CollectorTls tls = ServerFiles();
  tls.key_file = File("agent.key", "collector.tls.key_file");
  auto creds = MakeServerCredentials(tls);
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().message(),
            absl::StrCat("tw.yaml:7: key 'collector.tls.key_file': the key "
                         "in ",
                         (*dir_ / "agent.key").string(),
                         " does not belong to the certificate in ",
                         (*dir_ / "server.crt").string()));
}

TEST_F(TlsCredentialsTest, CertificateInsteadOfKeyIsRefused) {
  CollectorTls tls = ServerFiles();
  tls.key_file = File("server.crt", "collector.tls.key_file");
  auto creds = MakeServerCredentials(tls);
  ASSERT_FALSE(creds.ok());
  EXPECT_TRUE(absl::StrContains(creds.status().message(),
                                "collector.tls.key_file': no usable PEM "
                                "private key in "))
      << creds.status();
}

TEST_F(TlsCredentialsTest, EncryptedKeyIsRefusedWithoutPrompting) {
  // stdin is closed: a passphrase prompt would fail or hang, not pass.
  const std::string command = absl::StrCat(
      "openssl pkey -in '", (*dir_ / "server.key").string(),
      "' -aes256 -passout pass:secret -out '",
      (*dir_ / "encrypted.key").string(), "' </dev/null 2>/dev/null");
  ASSERT_EQ(std::system(command.c_str()), 0);
  CollectorTls tls = ServerFiles();
  tls.key_file = File("encrypted.key", "collector.tls.key_file");
  auto creds = MakeServerCredentials(tls);
  ASSERT_FALSE(creds.ok());
  EXPECT_TRUE(absl::StrContains(creds.status().message(), "is encrypted"))
      << creds.status();
}

TEST_F(TlsCredentialsTest, KeyOthersCanReadIsAWarning) {
  Write("open.key", Read("server.key"));
  chmod((*dir_ / "open.key").c_str(), 0644);
  CollectorTls tls = ServerFiles();
  tls.key_file = File("open.key", "collector.tls.key_file");
  auto creds = MakeServerCredentials(tls);
  ASSERT_TRUE(creds.ok()) << creds.status();
  ASSERT_EQ(creds->warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(creds->warnings[0], "mode 0644"))
      << creds->warnings[0];
  EXPECT_TRUE(absl::StartsWith(creds->warnings[0],
                               "tw.yaml:7: key 'collector.tls.key_file'"));
}

// A self-signed certificate valid from `from_days` to `to_days` from now,
// and its key, written as PEM.
void WriteSelfSigned(const std::string& cert_path, const std::string& key_path,
                     long from_days, long to_days) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  ASSERT_NE(key, nullptr);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
  X509_gmtime_adj(X509_getm_notBefore(cert), from_days * 86400);
  X509_gmtime_adj(X509_getm_notAfter(cert), to_days * 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("old"), -1,
                             -1, 0);
  X509_set_issuer_name(cert, name);
  ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
  FILE* f = fopen(cert_path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_X509(f, cert);
  fclose(f);
  f = fopen(key_path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  fclose(f);
  chmod(key_path.c_str(), 0600);
  X509_free(cert);
  EVP_PKEY_free(key);
}

TEST_F(TlsCredentialsTest, CertificateOutsideItsValidityIsAWarning) {
  WriteSelfSigned((*dir_ / "expired.crt").string(),
                  (*dir_ / "expired.key").string(), -10, -1);
  WriteSelfSigned((*dir_ / "future.crt").string(),
                  (*dir_ / "future.key").string(), 2, 10);
  CollectorTls tls = ServerFiles();
  tls.cert_file = File("expired.crt");
  tls.key_file = File("expired.key", "collector.tls.key_file");
  auto creds = MakeServerCredentials(tls);
  ASSERT_TRUE(creds.ok()) << creds.status();
  ASSERT_EQ(creds->warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(creds->warnings[0], " expired on "))
      << creds->warnings[0];
  tls.cert_file = File("future.crt");
  tls.key_file = File("future.key", "collector.tls.key_file");
  creds = MakeServerCredentials(tls);
  ASSERT_TRUE(creds.ok()) << creds.status();
  ASSERT_EQ(creds->warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(creds->warnings[0], " is not valid before "))
      << creds->warnings[0];
}

TEST_F(TlsCredentialsTest, OversizedFileIsRefused) {
  Write("huge.crt", Read("ca.crt") + std::string(kMaxPemBytes, '\n'));
  auto certs = ReadCertificates(File("huge.crt"));
  ASSERT_FALSE(certs.ok());
  EXPECT_TRUE(absl::StrContains(certs.status().message(), "larger than 1 MiB"))
      << certs.status();
}

}  // namespace
}  // namespace tokenwatch::config
