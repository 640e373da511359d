// Express services with real JWT middleware for the end-to-end test, some
// correctly configured and some misconfigured the way real services are.
//
// usage: node services.js --jwks FILE [--orders PORT] [--legacy PORT]
//                         [--reports PORT] [--files PORT]
// (or ORDERS_PORT, LEGACY_PORT, REPORTS_PORT, FILES_PORT, JWKS_FILE in the
// environment). Every service listens on 127.0.0.1 only. Once all listen,
// one JSON line {"ready": {...ports}} goes to stdout. SIGTERM/SIGINT stop it.
//
//   orders   correct: express-jwt, RS256 only, keys from the JWKS by kid,
//            exp checked, aud "orders-api", iss "https://idp.e2e"
//   legacy   broken: decodes the token without verifying it (jose.decodeJwt
//            instead of jwtVerify): alg none and bad signatures pass
//   reports  broken: express-jwt with HS256 and the secret "secret",
//            ignoreExpiration, no audience or issuer check
//   files    correct verification (RS256/ES256, aud "files-api", iss), but
//            takes the token from the query string ?access_token=
//
// Rejected tokens get 401 with a JSON body.
import crypto from "node:crypto";
import fs from "node:fs";
import https from "node:https";
import express from "express";
import { expressjwt } from "express-jwt";
import * as jose from "jose";

const IDP = "https://idp.e2e";

function arg(name, env) {
  const i = process.argv.indexOf(`--${name}`);
  if (i !== -1 && i + 1 < process.argv.length) return process.argv[i + 1];
  return process.env[env];
}

const jwksFile = arg("jwks", "JWKS_FILE");
if (!jwksFile) {
  console.error("usage: node services.js --jwks FILE [--orders PORT] [--legacy PORT] [--reports PORT] [--files PORT] [--tls CERT,KEY]");
  process.exit(2);
}
// kid -> public KeyObject, from the IdP's JWKS.
const keys = new Map(JSON.parse(fs.readFileSync(jwksFile, "utf8")).keys
  .map((jwk) => [jwk.kid, crypto.createPublicKey({ key: jwk, format: "jwk" })]));
function keyByKid(req, token) {
  const key = keys.get(token?.header?.kid);
  if (!key) throw Object.assign(new Error(`unknown kid ${token?.header?.kid}`), { status: 401 });
  return key;
}

function bearer(req) {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization || "");
  return m ? m[1] : undefined;
}

// Errors from the JWT middleware (express-jwt's UnauthorizedError, or our
// own) become 401; anything else 500.
function errors(name) {
  return (err, req, res, next) => {
    const status = err.status === 401 || err.name === "UnauthorizedError" ? 401 : 500;
    res.status(status).json({ service: name, error: err.code || "error", message: err.message });
  };
}

function orders() {
  const app = express();
  app.get("/healthz", (req, res) => res.json({ ok: true }));
  app.use(expressjwt({
    secret: keyByKid,
    algorithms: ["RS256"],
    audience: "orders-api",
    issuer: IDP,
  }));
  app.get("/v1/orders", (req, res) => res.json({ service: "orders", sub: req.auth.sub, orders: [42, 43] }));
  app.get("/v1/orders/:id", (req, res) => res.json({ service: "orders", sub: req.auth.sub, id: req.params.id }));
  app.post("/v1/orders", (req, res) => res.status(201).json({ service: "orders", sub: req.auth.sub, id: 44 }));
  app.use(errors("orders"));
  return app;
}

// The mistake: decode instead of verify. Any well-formed JWT is "valid".
function legacy() {
  const app = express();
  app.get("/healthz", (req, res) => res.json({ ok: true }));
  app.use((req, res, next) => {
    const token = bearer(req);
    if (!token) return res.status(401).json({ service: "legacy", error: "credentials_required" });
    try {
      req.auth = jose.decodeJwt(token);
    } catch (e) {
      return res.status(401).json({ service: "legacy", error: "malformed", message: e.message });
    }
    next();
  });
  app.get("/api/profile", (req, res) => res.json({ service: "legacy", sub: req.auth.sub }));
  app.get("/api/admin/users", (req, res) => res.json({ service: "legacy", sub: req.auth.sub, users: ["a", "b"] }));
  return app;
}

function reports() {
  const app = express();
  app.get("/healthz", (req, res) => res.json({ ok: true }));
  app.use(expressjwt({
    secret: "secret",
    algorithms: ["HS256"],
    ignoreExpiration: true, // passed through to jsonwebtoken.verify
  }));
  app.get("/reports/daily", (req, res) => res.json({ service: "reports", sub: req.auth.sub, rows: 3 }));
  app.use(errors("reports"));
  return app;
}

function files() {
  const app = express();
  app.get("/healthz", (req, res) => res.json({ ok: true }));
  app.use(expressjwt({
    secret: keyByKid,
    algorithms: ["RS256", "ES256"],
    audience: "files-api",
    issuer: IDP,
    getToken: (req) => (typeof req.query.access_token === "string" ? req.query.access_token : bearer(req)),
  }));
  app.get("/files/:name", (req, res) => res.json({ service: "files", sub: req.auth.sub, name: req.params.name }));
  app.use(errors("files"));
  return app;
}

const tlsArg = arg("tls", "SERVICES_TLS");
const tlsFiles = tlsArg
  ? { cert: fs.readFileSync(tlsArg.split(",")[0]), key: fs.readFileSync(tlsArg.split(",")[1]) }
  : null;
const wanted = {
  orders: [orders, arg("orders", "ORDERS_PORT")],
  legacy: [legacy, arg("legacy", "LEGACY_PORT")],
  reports: [reports, arg("reports", "REPORTS_PORT")],
  files: [files, arg("files", "FILES_PORT")],
};
const servers = [];
const ready = {};
await Promise.all(Object.entries(wanted).filter(([, [, port]]) => port).map(([name, [make, port]]) =>
  new Promise((resolve, reject) => {
    // --tls CERT,KEY: HTTPS (node's OpenSSL, memory BIOs: the TLS probe's
    // hard case), else HTTP.
    const srv = (tlsFiles ? https.createServer(tlsFiles, make()) : make()).listen(Number(port), "127.0.0.1", () => {
      ready[name] = srv.address().port;
      resolve();
    });
    srv.on("error", reject);
    servers.push(srv);
  })));
if (!Object.keys(ready).length) {
  console.error("services.js: no port given for any service");
  process.exit(2);
}
console.log(JSON.stringify({ ready }));

function stop() {
  for (const s of servers) {
    s.close();
    s.closeAllConnections?.();
  }
  setTimeout(() => process.exit(0), 500).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
