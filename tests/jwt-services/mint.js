// Mints the end-to-end test tokens at run time with `jose`.
//
// usage: node mint.js OUT_DIR
//
// Writes
//   OUT_DIR/idp.jwks.json  public JWKS of the identity provider "https://idp.e2e"
//                          (RSA kid rsa-1, EC P-256 kid ec-1): the agent's
//                          issuers[].jwks_file and the services' key set
//   OUT_DIR/tokens.json    {"name": {"token", "jti", "iss", "aud", "alg", "what"}}
//
// Nothing here is a real secret: every key is generated per run and thrown
// away, except the deliberately weak HMAC secret "secret".
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import * as jose from "jose";

const IDP = "https://idp.e2e";
const LEGACY = "legacy-app";

const outDir = process.argv[2];
if (!outDir) {
  console.error("usage: node mint.js OUT_DIR");
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });

const now = Math.floor(Date.now() / 1000);
const MIN = 60;
const DAY = 86400;
const b64u = (buf) => Buffer.from(buf).toString("base64url");
const b64uJson = (obj) => b64u(JSON.stringify(obj));
const uid = (name) => `${name}-${crypto.randomUUID().slice(0, 8)}`;

// Keys: the IdP's RSA and EC keys (public halves in the JWKS) and a rogue
// RSA key whose kid the JWKS does not hold.
const rsa = await jose.generateKeyPair("RS256", { modulusLength: 2048, extractable: true });
const ec = await jose.generateKeyPair("ES256", { extractable: true });
const rogue = await jose.generateKeyPair("RS256", { modulusLength: 2048, extractable: true });
const rsaJwk = { ...(await jose.exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" };
const ecJwk = { ...(await jose.exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" };
const jwks = { keys: [rsaJwk, ecJwk] };
fs.writeFileSync(path.join(outDir, "idp.jwks.json"), JSON.stringify(jwks, null, 2) + "\n");
const rsaPublicPem = await jose.exportSPKI(rsa.publicKey);

const tokens = {};
function record(name, token, what) {
  const [h, p] = token.split(".");
  const header = JSON.parse(Buffer.from(h, "base64url").toString());
  const claims = JSON.parse(Buffer.from(p, "base64url").toString());
  tokens[name] = { token, jti: claims.jti, iss: claims.iss, sub: claims.sub, aud: claims.aud,
                   alg: header.alg, kid: header.kid, exp: claims.exp, iat: claims.iat, what };
}

// Standard claims: issued now, 15 minutes of life, unique jti.
function claims(name, { iss = IDP, aud, sub = "alice", iat = now, exp = now + 15 * MIN } = {}) {
  const c = { iss, sub, aud, iat, jti: uid(name) };
  if (exp !== null) c.exp = exp;
  return c;
}

async function sign(name, alg, key, header, payload) {
  return new jose.SignJWT(payload).setProtectedHeader({ alg, typ: "JWT", ...header }).sign(key);
}
const rs256 = (name, payload, header = {}) => sign(name, "RS256", rsa.privateKey, { kid: "rsa-1", ...header }, payload);
const es256 = (name, payload, header = {}) => sign(name, "ES256", ec.privateKey, { kid: "ec-1", ...header }, payload);

// HMAC with any key bytes, the empty key included (WebCrypto refuses a
// zero-length HMAC key, attackers do not).
function hmac(alg, keyBytes, header, payload) {
  const input = `${b64uJson({ alg, typ: "JWT", ...header })}.${b64uJson(payload)}`;
  const hash = { HS256: "sha256", HS384: "sha384", HS512: "sha512" }[alg];
  return `${input}.${b64u(crypto.createHmac(hash, keyBytes).update(input).digest())}`;
}

// Flips one bit in the middle of the signature: same header.payload, so
// the token keeps its identity, but the signature no longer verifies.
function tamper(token) {
  const [h, p, s] = token.split(".");
  const sig = Buffer.from(s, "base64url");
  sig[Math.floor(sig.length / 2)] ^= 0x01;
  return `${h}.${p}.${b64u(sig)}`;
}

// 1. Valid tokens for the well-configured orders service (benign traffic).
for (const [i, sub] of ["alice", "bob", "carol"].entries()) {
  const name = `valid_${i + 1}`;
  record(name, await rs256(name, claims(name, { aud: "orders-api", sub })),
         "valid RS256, iss https://idp.e2e, aud orders-api, 15 min");
}
// Valid tokens that are revoked during the run (file, file changed later, API).
for (const name of ["revoked_file", "revoked_file_later", "revoked_api"]) {
  record(name, await rs256(name, claims(name, { aud: "orders-api", sub: "dave" })),
         "valid RS256 whose jti gets revoked");
}
// 2. alg none: unsigned, empty signature.
for (const [name, aud] of [["alg_none_legacy", "legacy-api"], ["alg_none_orders", "orders-api"]]) {
  record(name, new jose.UnsecuredJWT(claims(name, { aud, sub: "mallory" })).encode(),
         "alg none, empty signature");
}
// 3. RS256 with a tampered signature.
for (const [name, aud] of [["tampered_legacy", "legacy-api"], ["tampered_orders", "orders-api"]]) {
  record(name, tamper(await rs256(name, claims(name, { aud, sub: "mallory" }))),
         "RS256 with one signature bit flipped");
}
// 4. kid not in the JWKS (signed by a key the IdP does not publish).
record("unknown_kid",
       await sign("unknown_kid", "RS256", rogue.privateKey, { kid: "rsa-rogue" },
                  claims("unknown_kid", { aud: "legacy-api", sub: "mallory" })),
       "RS256 by a key whose kid rsa-rogue is not in the JWKS");
// 5. ES256 with an all-zero signature (CVE-2022-21449, "psychic signature").
{
  const payload = claims("zero_ecdsa", { aud: "legacy-api", sub: "mallory" });
  const input = `${b64uJson({ alg: "ES256", typ: "JWT", kid: "ec-1" })}.${b64uJson(payload)}`;
  record("zero_ecdsa", `${input}.${b64u(Buffer.alloc(64))}`, "ES256 with r = s = 0");
}
// 6. HS256 signed with the weak secret "secret" by the legacy app; one of
// them expired an hour ago (the reports service ignores expiry).
record("weak_hs256", hmac("HS256", "secret", {}, claims("weak_hs256", { iss: LEGACY, aud: "reports-api", sub: "erin" })),
       "HS256 with secret \"secret\", iss legacy-app");
record("weak_hs256_expired",
       hmac("HS256", "secret", {}, claims("weak_hs256_expired",
                                          { iss: LEGACY, aud: "reports-api", sub: "erin", iat: now - 2 * 3600, exp: now - 3600 })),
       "HS256 with secret \"secret\", expired 1 h ago");
// 7. Algorithm confusion: HS256 from the RS256/ES256-only IdP, keyed with
// the IdP's public RSA key in PEM form (the classic RS/HS confusion).
for (const [name, aud] of [["alg_confusion_legacy", "legacy-api"], ["alg_confusion_orders", "orders-api"]]) {
  record(name, hmac("HS256", rsaPublicPem, { kid: "rsa-1" }, claims(name, { aud, sub: "mallory" })),
         "HS256 from https://idp.e2e keyed with its RSA public key PEM");
}
// 8. Header abuse: jku pointing off the IdP (signature otherwise valid), and
// a kid with path traversal (HS256 keyed with /dev/null's contents: nothing).
record("jku", await rs256("jku", claims("jku", { aud: "legacy-api", sub: "mallory" }),
                          { jku: "https://evil.example/jwks.json" }),
       "RS256 with header jku https://evil.example/jwks.json");
record("kid_traversal", hmac("HS256", Buffer.alloc(0), { kid: "../../../../dev/null" },
                             claims("kid_traversal", { iss: LEGACY, aud: "legacy-api", sub: "mallory" })),
       "HS256 with kid ../../../../dev/null, empty key");
// 9. Lifetimes: no exp at all; exp - iat = 30 days (IdP max_lifetime is 1h).
record("no_exp", await rs256("no_exp", claims("no_exp", { aud: "legacy-api", sub: "frank", exp: null })),
       "RS256 without exp");
record("long_lived", await rs256("long_lived", claims("long_lived", { aud: "orders-api", sub: "frank", exp: now + 30 * DAY })),
       "RS256 with exp - iat = 30 days");
// 10. A valid ES256 token sent in the URL (?access_token=).
record("in_url", await es256("in_url", claims("in_url", { aud: "files-api", sub: "grace" })),
       "valid ES256 for the files service, sent as ?access_token=");

// Self-check: the valid ones verify with jose against the published JWKS,
// the broken ones do not.
const keySet = jose.createLocalJWKSet(jwks);
const shouldVerify = ["valid_1", "valid_2", "valid_3", "revoked_file", "revoked_file_later", "revoked_api",
                      "jku", "no_exp", "long_lived", "in_url"];
for (const [name, t] of Object.entries(tokens)) {
  let ok = false;
  try {
    await jose.jwtVerify(t.token, keySet, { issuer: IDP, algorithms: ["RS256", "ES256"] });
    ok = true;
  } catch {
    ok = false;
  }
  if (ok !== shouldVerify.includes(name)) {
    console.error(`mint.js self-check: ${name} ${ok ? "verifies" : "does not verify"} against the JWKS`);
    process.exit(1);
  }
}

fs.writeFileSync(path.join(outDir, "tokens.json"), JSON.stringify(tokens, null, 2) + "\n");
console.log(`minted ${Object.keys(tokens).length} tokens into ${outDir}`);
