// JWS compact-serialisation signature check (RFC 7515 section 5.2) against
// an issuer's KeySet, for the alg_none and invalid_signature alerts. Pure
// and thread-safe: any number of threads may verify against one KeySet.
#ifndef TOKENWATCH_AGENT_JOSE_VERIFIER_H_
#define TOKENWATCH_AGENT_JOSE_VERIFIER_H_

#include <string_view>

#include "agent/jose/key_set.h"

namespace tokenwatch::jose {

enum class SignatureVerdict {
  kValid,           // a key of the set verifies the signature
  kInvalid,         // no candidate key verifies it, or the signature is
                    // impossible (wrong length, all-zero ECDSA r or s), or
                    // the key named by kid is of another type or alg
  kUnknownKid,      // kid given, no key carries it (and every key has a kid)
  kNoKeys,          // the set holds no key that could check this alg
  kAlgNone,         // alg "none" in any letter case, or an empty signature
  kUnsupportedAlg,  // an alg this verifier does not implement
  kMalformed,       // not three parts, empty header, alg missing, or a
                    // part that is not canonical base64url (no '=', no
                    // stray characters, zero unused bits)
};

std::string_view SignatureVerdictName(SignatureVerdict v);

// Why a verdict was reached, for an alert's detail ("ECDSA r or s is zero
// (CVE-2022-21449)"). `reason` points to a static string.
struct VerifyDetails {
  std::string_view reason;
  int keys_tried = 0;
};

// Supported: RS256/384/512, PS256/384/512 (MGF1 with the same hash, salt =
// hash length, RFC 7518 3.5), ES256/384/512 (raw r||s, RFC 7518 3.4), EdDSA
// (Ed25519, Ed448; RFC 8037; also the fully specified "Ed25519"/"Ed448")
// and HS256/384/512. Alg names are case-sensitive. `alg` and `kid` are the
// protected header's values (as decoded by agent/token/jwt.h). The
// signature covers the exact bytes of `header.payload` as they arrived.
//
// Key choice: with a kid, the keys carrying that kid; when none does and
// the set has keys without a kid (PEM, secret file), those; otherwise
// kUnknownKid. Without a kid, every key. A key is tried only when its type
// fits the alg, its curve fits (ES256 needs P-256...), and its JWK "alg",
// when present, equals the token's. Never throws; hostile input (huge or
// bad base64, bad DER, wrong key types) yields a verdict, not a crash.
SignatureVerdict Verify(std::string_view token, std::string_view alg,
                        std::string_view kid, const KeySet& keys,
                        VerifyDetails* details = nullptr);

// True for the algorithms Verify implements.
bool IsSupportedAlg(std::string_view alg);

// True for HS256, HS384 and HS512.
bool IsHmacAlg(std::string_view alg);

}  // namespace tokenwatch::jose

#endif  // TOKENWATCH_AGENT_JOSE_VERIFIER_H_
