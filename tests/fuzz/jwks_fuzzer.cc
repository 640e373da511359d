// libFuzzer target for everything in agent/jose that reads untrusted bytes:
// JWKS and PEM parsing, signature verification against keys of every type,
// header findings and wordlist parsing. The first input byte picks the
// target. Build with clang: -fsanitize=fuzzer,address,undefined.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/jose/header_check.h"
#include "agent/jose/key_set.h"
#include "agent/jose/verifier.h"
#include "agent/jose/weak_secret.h"
#include "tests/agent/jose/jose_test_util.h"

namespace tokenwatch::jose {
namespace {

const KeySet& Keys() {
  static const KeySet* keys = [] {
    std::string jwks = "{\"keys\":[";
    const char* kinds[] = {"RSA", "P-256", "P-384", "P-521", "Ed25519"};
    for (const char* kind : kinds) {
      PkeyRef k = testing::GenerateKey(kind);
      if (jwks.size() > 9) jwks += ",";
      jwks += testing::PublicJwk(k.get(), kind);
    }
    jwks += "]}";
    auto* set = new KeySet(*KeySet::FromJwks(jwks));
    set->AddHmacSecret("secret");
    return set;
  }();
  return *keys;
}

const WeakSecretList& Secrets() {
  static const WeakSecretList* list = new WeakSecretList(
      WeakSecretList::FromText("secret\npassword\n123456\n"));
  return *list;
}

constexpr std::string_view kAlgs[] = {"RS256", "PS384", "ES256", "ES384",
                                      "ES512", "EdDSA", "HS256", "HS512",
                                      "none",  ""};

}  // namespace
}  // namespace tokenwatch::jose

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenwatch::jose;
  if (size == 0) return 0;
  uint8_t selector = data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (selector % 5) {
    case 0:
      (void)KeySet::FromJwks(in);
      break;
    case 1:
      (void)KeySet::FromPem(in);
      break;
    case 2: {
      std::string_view alg = kAlgs[(selector / 5) % std::size(kAlgs)];
      std::string_view kid = (selector & 0x80) ? "P-256" : "";
      (void)Verify(in, alg, kid, Keys());
      break;
    }
    case 3: {
      tokenwatch::v1::TokenInfo t;
      t.set_kid(std::string(in));
      t.set_jku(std::string(in));
      t.set_x5u(std::string(in));
      (void)HeaderFindings(t, in.substr(0, in.size() / 2));
      (void)UrlHost(in);
      break;
    }
    case 4: {
      WeakSecretList list = WeakSecretList::FromText(in);
      (void)list.FindSecretForToken(in, "HS256");
      (void)Secrets().FindSecretForToken(in,
                                         (selector & 0x80) ? "HS512" : "HS256");
      break;
    }
  }
  return 0;
}
