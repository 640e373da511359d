'use strict';
// Client side of the demo capture (examples/make-demo.sh): mints the demo
// tokens (HS256, node crypto) with times relative to --now, then plays the
// scenario of examples/README.md with curl, one curl process per keep-alive
// connection. Every status is checked against what the scenario expects, and
// every request is written to a manifest that verify.py compares with the pcap.
//
// usage: node drive.js --now EPOCH_SECONDS --manifest FILE
//        node drive.js --now EPOCH_SECONDS --tokens      (print the tokens)
// env:   DEMO_IDP_SECRET, DEMO_ISSUER, DEMO_BASIC (user:password),
//        DEMO_ORDERS_PORT, DEMO_PAYMENTS_PORT, DEMO_INVENTORY_PORT
const crypto = require('crypto');
const fs = require('fs');
const {execFileSync} = require('child_process');

function arg(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
function need(v, what) {
  if (!v) {
    console.error(`drive.js: missing ${what}`);
    process.exit(2);
  }
  return v;
}

const NOW = Number(need(arg('--now'), '--now'));
const SECRET = need(process.env.DEMO_IDP_SECRET, 'DEMO_IDP_SECRET');
const ISSUER = process.env.DEMO_ISSUER || 'https://idp.demo';
const BASIC = process.env.DEMO_BASIC || 'ops:inventory-ops-2026';
const PORT = {
  orders: Number(process.env.DEMO_ORDERS_PORT || 18181),
  payments: Number(process.env.DEMO_PAYMENTS_PORT || 18182),
  inventory: Number(process.env.DEMO_INVENTORY_PORT || 18183),
};
const HOST = {orders: 'orders.demo', payments: 'payments.demo', inventory: 'inventory.demo'};

// ---------------------------------------------------------------- tokens ---
const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');

function hs256(claims) {
  const input = `${b64({alg: 'HS256', typ: 'JWT'})}.${b64(claims)}`;
  return `${input}.${crypto.createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

// alg "none" and an empty signature: header.payload.
function unsigned(claims) {
  return `${b64({alg: 'none', typ: 'JWT'})}.${b64(claims)}.`;
}

// Minted two minutes before the capture, valid 15 minutes: realistic
// access tokens, well inside the issuer's max_lifetime of 1h.
function claims(sub, aud, scope, clientId, jti, iat = NOW - 120, exp = NOW + 780) {
  return {iss: ISSUER, sub, aud, scope, client_id: clientId, iat, exp, jti};
}

const TOKENS = {
  // a shop user, through the web shop: her own orders
  alice: hs256(claims('alice', 'orders-api', 'orders:read orders:write', 'web-shop',
      '5c1e8a2f-orders')),
  // a finance operator: payments, refunds included
  bob: hs256(claims('bob', 'payments-api', 'payments:read payments:refund', 'finance-console',
      '3b7d0c94-pay')),
  // the support chatbot: may read payments, may not refund
  supportBot: hs256(claims('svc:support-bot', 'payments-api', 'payments:read', 'support-bot',
      'e04a6d13-pay')),
  // a nightly reporting job's token, 30 minutes long, expired two hours ago
  reporting: hs256(claims('svc:reporting', ['orders-api', 'inventory-api'],
      'orders:read inventory:read', 'reporting-job', '71d2b5e8-rpt',
      NOW - 9000, NOW - 7200)),
  // a forged token: unsigned, claims to be bob on both APIs
  forged: unsigned(claims('bob', ['orders-api', 'payments-api'],
      'orders:read payments:read payments:refund', 'finance-console', 'ff01c3d7-forged',
      NOW - 60, NOW + 840)),
  // the legacy stock dashboard puts its token in the URL
  dave: hs256(claims('dave', 'inventory-api', 'inventory:read', 'stock-dashboard',
      '2a6f4c80-inv')),
  // a mobile-app token that turns up on three client addresses
  carol: hs256(claims('carol', 'orders-api', 'orders:read', 'mobile-app', '8e5b3d71-orders')),
  // a legacy inventory API key: opaque, not a JWT
  apiKey: 'inv_live_4Jx9Qm2Lr7Tz8Wp3Kc6Vb1Ny',
};

if (process.argv.includes('--tokens')) {
  for (const [k, t] of Object.entries(TOKENS)) {
    const p = t.split('.');
    const desc = p.length === 3
      ? `${Buffer.from(p[0], 'base64url')} ${Buffer.from(p[1], 'base64url')}`
      : '(opaque)';
    console.log(`${k}\t${desc}\n\t${t}`);
  }
  process.exit(0);
}
const MANIFEST = need(arg('--manifest'), '--manifest');

// -------------------------------------------------------------- scenario ---
const bearer = (t) => ['Authorization', `Bearer ${t}`];
const basic = () => ['Authorization', `Basic ${Buffer.from(BASIC).toString('base64')}`];
const get = (target, header, status) => ({method: 'GET', target, header, status});
const post = (target, header, status, body) => ({method: 'POST', target, header, status, body});

// Each step is one curl process = one keep-alive TCP connection.
const STEPS = [
  {step: '1 benign: alice at orders', service: 'orders', client: '127.0.0.1', requests: [
    get('/v1/orders', bearer(TOKENS.alice), 200),
    get('/v1/orders/1042', bearer(TOKENS.alice), 200),
    post('/v1/orders', bearer(TOKENS.alice), 201, '{"sku":"sku-1001","qty":2}'),
  ]},
  {step: '2 benign: bob at payments, scoped refund', service: 'payments', client: '127.0.0.1',
    requests: [
      get('/v1/payments', bearer(TOKENS.bob), 200),
      get('/v1/payments/pay_8812', bearer(TOKENS.bob), 200),
      post('/v1/refunds/pay_8812', bearer(TOKENS.bob), 201, '{"amount":"59.90"}'),
    ]},
  {step: '3 cross-service: alice replayed at payments', service: 'payments', client: '127.0.0.1',
    requests: [
      get('/v1/payments/pay_8812', bearer(TOKENS.alice), 200),
      get('/v1/payments', bearer(TOKENS.alice), 200),
    ]},
  {step: '4a expired: accepted by inventory', service: 'inventory', client: '127.0.0.1',
    requests: [
      get('/v1/items', bearer(TOKENS.reporting), 200),
      get('/v1/items/sku-1001', bearer(TOKENS.reporting), 200),
    ]},
  {step: '4b expired: rejected by orders', service: 'orders', client: '127.0.0.1', requests: [
    get('/v1/orders', bearer(TOKENS.reporting), 401),
    get('/v1/orders/1042', bearer(TOKENS.reporting), 401),
  ]},
  {step: '5 refund without payments:refund', service: 'payments', client: '127.0.0.1',
    requests: [
      get('/v1/payments/pay_9031', bearer(TOKENS.supportBot), 200),
      post('/v1/refunds/pay_9031', bearer(TOKENS.supportBot), 201, '{"amount":"12.00"}'),
    ]},
  {step: '6a alg none: accepted by payments', service: 'payments', client: '127.0.0.1',
    requests: [
      get('/v1/payments', bearer(TOKENS.forged), 200),
      get('/v1/payments/pay_9031', bearer(TOKENS.forged), 200),
    ]},
  {step: '6b alg none: rejected by orders', service: 'orders', client: '127.0.0.1', requests: [
    get('/v1/orders', bearer(TOKENS.forged), 401),
  ]},
  {step: '7 token in URL: dave at inventory', service: 'inventory', client: '127.0.0.1',
    requests: [
      get(`/v1/items?page=2&access_token=${TOKENS.dave}`, null, 200),
      get(`/v1/items/sku-1002?access_token=${TOKENS.dave}`, null, 200),
    ]},
  {step: '8 multi-source: carol from 127.0.0.2', service: 'orders', client: '127.0.0.2',
    requests: [
      get('/v1/orders/1042', bearer(TOKENS.carol), 200),
      get('/v1/orders/1043', bearer(TOKENS.carol), 200),
    ]},
  {step: '8 multi-source: carol from 127.0.0.3', service: 'orders', client: '127.0.0.3',
    requests: [get('/v1/orders/1042', bearer(TOKENS.carol), 200)]},
  {step: '8 multi-source: carol from 127.0.0.4', service: 'orders', client: '127.0.0.4',
    requests: [get('/v1/orders/1044', bearer(TOKENS.carol), 200)]},
  {step: '9 opaque API key at inventory', service: 'inventory', client: '127.0.0.1', requests: [
    get('/v1/items', bearer(TOKENS.apiKey), 200),
    get('/v1/items/sku-1002', bearer(TOKENS.apiKey), 200),
  ]},
  {step: '10 Basic auth, no token', service: 'inventory', client: '127.0.0.1', requests: [
    get('/v1/admin/stock-report', basic(), 200),
  ]},
];

function runCurl(step) {
  const port = PORT[step.service];
  const host = HOST[step.service];
  const args = [];
  step.requests.forEach((r, i) => {
    if (i > 0) args.push('--next');
    args.push('-sS', '--http1.1', '--noproxy', '*', '--max-time', '20',
        '--interface', step.client, '--resolve', `${host}:${port}:127.0.0.1`,
        '-H', 'User-Agent: demo-client/1.0', '-o', '/dev/null',
        '-w', '%{http_code} %{num_connects}\\n');
    if (r.header) args.push('-H', `${r.header[0]}: ${r.header[1]}`);
    if (r.body !== undefined) {
      args.push('-H', 'Content-Type: application/json', '--data-binary', r.body);
    }
    args.push(`http://${host}:${port}${r.target}`);
  });
  const out = execFileSync('curl', args, {encoding: 'utf8'});
  const lines = out.trim().split('\n').map((l) => l.split(' ').map(Number));
  const connects = lines.reduce((a, [, c]) => a + c, 0);
  if (connects !== 1) throw new Error(`${step.step}: curl opened ${connects} connections, wanted 1`);
  return lines.map(([code]) => code);
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const manifest = [];
for (const step of STEPS) {
  const got = runCurl(step);
  step.requests.forEach((r, i) => {
    if (got[i] !== r.status) {
      throw new Error(`${step.step}: ${r.method} ${r.target.split('?')[0]} answered ${got[i]}, ` +
          `the scenario expects ${r.status}`);
    }
    manifest.push({step: step.step, client: step.client, service: step.service,
      host: `${HOST[step.service]}:${PORT[step.service]}`, method: r.method,
      path: r.target.split('?')[0], status: r.status});
  });
  console.error(`[drive] ${step.step}: ${got.join(' ')}`);
  sleep(250);  // a readable timeline: steps a quarter second apart
}
fs.writeFileSync(MANIFEST, JSON.stringify(manifest, null, 1) + '\n');
console.error(`[drive] ${manifest.length} requests on ${STEPS.length} connections`);
