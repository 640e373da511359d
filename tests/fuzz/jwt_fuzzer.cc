// libFuzzer target: bearer classification and JWT decoding (JOSE header and
// claims with simdjson), base64url, and the fingerprint input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/jose/base64url.h"
#include "agent/token/jwt.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenwatch;
  using namespace tokenwatch::fuzz;
  static AgentStats stats;
  static token::JwtDecoder decoder(&stats);
  Buffer buf(std::string_view(reinterpret_cast<const char*>(data), size));
  std::string_view token(reinterpret_cast<const char*>(buf.data()), size);
  (void)token::LooksLikeJwt(token);
  v1::TokenInfo info;
  decoder.Decode(token, &info);
  std::string_view fp_in = token::FingerprintInput(token, info.kind());
  FUZZ_CHECK(fp_in.data() >= token.data() &&
             fp_in.data() + fp_in.size() <= token.data() + token.size());
  // The decoded record goes into every event: it must survive the wire.
  std::string wire;
  FUZZ_CHECK(info.SerializeToString(&wire));
  v1::TokenInfo back;  // proto3 strings must be UTF-8 or the collector
  FUZZ_CHECK(back.ParseFromString(wire));  // rejects the whole batch
  // base64url: what decodes re-encodes to a string that decodes the same.
  std::string raw;
  if (jose::Base64UrlDecode(token, &raw)) {
    std::string again;
    FUZZ_CHECK(jose::Base64UrlDecode(jose::Base64UrlEncode(raw), &again));
    FUZZ_CHECK(again == raw);
  }
  return 0;
}
