'use strict';
// The two Node services of the demo fleet (examples/make-demo.sh). Node's
// built-in http module only; loopback addresses only.
//
//   node service.js orders   127.0.0.1:18181   -- careful: checks everything
//   node service.js payments 127.0.0.1:18182   -- sloppy: trusts the token
//
// Both read the IdP's HS256 secret from DEMO_IDP_SECRET and its issuer from
// DEMO_ISSUER. "orders" verifies the algorithm (HS256 only), the signature,
// iss, exp (30 s leeway), aud (orders-api) and the scope; a failure is 401
// (403 for a missing scope). "payments" has the classic bugs on purpose: it
// skips the signature check when the header says alg "none", and it never
// looks at exp, aud or scope -- so it accepts a replayed orders token, a
// forged unsigned token and a refund without payments:refund.
//
// List endpoints (GET /v1/orders, GET /v1/payments) answer chunked, in three
// writes; everything else has a Content-Length. GET /healthz needs no token.
const crypto = require('crypto');
const http = require('http');

const SECRET = process.env.DEMO_IDP_SECRET;
const ISSUER = process.env.DEMO_ISSUER || 'https://idp.demo';
const LEEWAY_S = 30;

const [name, spec] = process.argv.slice(2);
if (!SECRET || !['orders', 'payments'].includes(name) || !spec) {
  console.error('usage: DEMO_IDP_SECRET=... node service.js {orders|payments} 127.0.0.1:PORT');
  process.exit(2);
}
const m = /^(127\.0\.0\.1|\[::1\]):(\d+)$/.exec(spec);
if (!m) {
  console.error(`refusing non-loopback listen address ${spec}`);
  process.exit(2);
}

function decodePart(part) {
  try {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return v && typeof v === 'object' ? v : null;
  } catch (e) {
    return null;
  }
}

// -> {claims} or {error, status}
function parseBearer(req) {
  const a = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization || '');
  if (!a) return {status: 401, error: 'invalid_request', why: 'no bearer token'};
  const parts = a[1].split('.');
  const header = parts.length === 3 ? decodePart(parts[0]) : null;
  const claims = parts.length === 3 ? decodePart(parts[1]) : null;
  if (!header || !claims) return {status: 401, error: 'invalid_token', why: 'not a JWT'};
  return {token: a[1], parts, header, claims};
}

function signatureOk(parts) {
  const want = crypto.createHmac('sha256', SECRET).update(`${parts[0]}.${parts[1]}`).digest();
  const got = Buffer.from(parts[2], 'base64url');
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

function scopes(claims) {
  return typeof claims.scope === 'string' ? claims.scope.split(' ') : [];
}

// orders: the careful one.
function checkOrders(req, needScope) {
  const t = parseBearer(req);
  if (t.error) return t;
  const now = Math.floor(Date.now() / 1000);
  const aud = [].concat(t.claims.aud || []);
  if (t.header.alg !== 'HS256') return {status: 401, error: 'invalid_token', why: 'algorithm not allowed'};
  if (!signatureOk(t.parts)) return {status: 401, error: 'invalid_token', why: 'bad signature'};
  if (t.claims.iss !== ISSUER) return {status: 401, error: 'invalid_token', why: 'unknown issuer'};
  if (typeof t.claims.exp !== 'number' || now > t.claims.exp + LEEWAY_S) {
    return {status: 401, error: 'invalid_token', why: 'token expired'};
  }
  if (!aud.includes('orders-api')) return {status: 401, error: 'invalid_token', why: 'wrong audience'};
  if (!scopes(t.claims).includes(needScope)) {
    return {status: 403, error: 'insufficient_scope', why: `needs ${needScope}`};
  }
  return t;
}

// payments: the sloppy one (on purpose; see the top of the file).
function checkPayments(req) {
  const t = parseBearer(req);
  if (t.error) return t;
  const alg = String(t.header.alg || '').toLowerCase();
  if (alg !== 'none' && !signatureOk(t.parts)) {
    return {status: 401, error: 'invalid_token', why: 'bad signature'};
  }
  return t;  // no exp, aud or scope check
}

function later(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function json(res, status, obj, extra = {}) {
  const b = Buffer.from(JSON.stringify(obj) + '\n');
  res.writeHead(status, {'Content-Type': 'application/json', 'Content-Length': b.length,
    'Cache-Control': 'no-store', ...extra});
  res.end(b);
}

function deny(res, t) {
  json(res, t.status, {error: t.error, error_description: t.why}, {
    'WWW-Authenticate': `Bearer realm="${name}", error="${t.error}", error_description="${t.why}"`});
}

// Three writes with pauses, no Content-Length: Node sends chunked encoding and
// each chunk leaves in its own TCP segment.
async function chunkedList(res, key, items) {
  res.writeHead(200, {'Content-Type': 'application/json', 'Cache-Control': 'no-store'});
  res.write(`{"${key}":[`);
  await later(15);
  res.write(JSON.stringify(items[0]) + ',');
  await later(15);
  res.write(JSON.stringify(items[1]) + ']}\n');
  res.end();
}

async function orders(req, res, path, body) {
  if (path === '/v1/orders' && req.method === 'POST') {
    const t = checkOrders(req, 'orders:write');
    if (t.error) return deny(res, t);
    return json(res, 201, {id: 1045, status: 'created', by: t.claims.sub, received_bytes: body});
  }
  if (req.method !== 'GET') return json(res, 405, {error: 'method not allowed'});
  const t = checkOrders(req, 'orders:read');
  if (t.error) return deny(res, t);
  if (path === '/v1/orders') {
    return chunkedList(res, 'orders', [{id: 1042, total: '59.90'}, {id: 1043, total: '12.00'}]);
  }
  const o = /^\/v1\/orders\/(\d+)$/.exec(path);
  if (o) return json(res, 200, {id: Number(o[1]), status: 'shipped', total: '59.90'});
  return json(res, 404, {error: 'not found'});
}

async function payments(req, res, path, body) {
  const t = checkPayments(req);
  if (t.error) return deny(res, t);
  const r = /^\/v1\/refunds\/([\w-]+)$/.exec(path);
  if (r && req.method === 'POST') {
    return json(res, 201, {refund: `re_${r[1].slice(4)}`, payment: r[1], status: 'pending',
      received_bytes: body});
  }
  if (req.method !== 'GET') return json(res, 405, {error: 'method not allowed'});
  if (path === '/v1/payments') {
    return chunkedList(res, 'payments', [{id: 'pay_8812', amount: '59.90'},
      {id: 'pay_9031', amount: '12.00'}]);
  }
  const p = /^\/v1\/payments\/([\w-]+)$/.exec(path);
  if (p) return json(res, 200, {id: p[1], amount: '59.90', currency: 'EUR', status: 'captured'});
  return json(res, 404, {error: 'not found'});
}

const server = http.createServer((req, res) => {
  let body = 0;
  req.on('data', (d) => { body += d.length; });
  req.on('end', () => {
    const path = req.url.split('?')[0];
    const handle = path === '/healthz'
      ? async () => json(res, 200, {ok: true})
      : async () => (name === 'orders' ? orders : payments)(req, res, path, body);
    handle().catch((e) => {
      console.error(e);
      res.destroy();
    });
  });
});
server.keepAliveTimeout = 30000;
server.on('error', (e) => {
  console.error(`${name} ${spec}: ${e.message}`);
  process.exit(1);
});
const host = m[1].replace(/[[\]]/g, '');
server.listen({host, port: Number(m[2])}, () => console.error(`${name} listening on ${spec}`));
