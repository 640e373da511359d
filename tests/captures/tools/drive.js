'use strict';
// Client side of the golden captures: mints the test tokens, sends each
// capture's requests (curl, or raw sockets where curl cannot do it), checks the
// answers against routes.js and writes NAME.expected.jsonl from what was sent
// and what the servers are configured to answer -- never from the agent.
//
// usage: node drive.js CAPTURE OUTDIR      (run by make-captures.sh while
//        tcpdump is recording; writes OUTDIR/CAPTURE.expected.jsonl and
//        OUTDIR/CAPTURE.meta.json)
//        node drive.js --tokens             (print the tokens and their claims)
const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const path = require('path');
const {execFileSync} = require('child_process');
const {expectedStatus, PORTS, ETAG} = require('./routes');

const CAPTURES_DIR = path.resolve(__dirname, '..');
const FP_KEY = fs.readFileSync(path.join(CAPTURES_DIR, 'fingerprint.key'));

// ---------------------------------------------------------------- tokens ---
// All JWTs are HS256 with this secret (not in the weak-secrets list) and the
// same fixed times: iat 2025-11-30T10:00:03Z, exp one hour later.
const HS256_SECRET = 'tw-captures-hs256-9c1f6e2a4b7d3e8f0a5c2b6d1e9f4a7c';
const IAT = 1764496803;
const EXP = 1764500403;

function b64url(s) {
  return Buffer.from(s).toString('base64url');
}

function jwt(claims, header) {
  const h = header || {alg: 'HS256', typ: 'JWT'};
  const input = `${b64url(JSON.stringify(h))}.${b64url(JSON.stringify(claims))}`;
  const sig = crypto.createHmac('sha256', HS256_SECRET).update(input).digest('base64url');
  return {
    raw: `${input}.${sig}`, kind: 'jwt', fpInput: input, claims, header: h,
    sub: claims.sub || '', jti: claims.jti || '', iss: claims.iss || '', alg: h.alg || '',
  };
}

function opaque(raw) {
  return {raw, kind: 'opaque', fpInput: raw, sub: '', jti: '', iss: '', alg: ''};
}

function claims(sub, aud, jti, iss = 'https://idp.test') {
  return {iss, sub, aud, exp: EXP, iat: IAT, jti};
}

const T = {
  // {"iss":"https://idp.test","sub":"alice","aud":"orders-api","exp":1764500403,"iat":1764496803,"jti":"j-alice-1"}
  alice: jwt(claims('alice', 'orders-api', 'j-alice-1')),
  // {"iss":"https://idp.test","sub":"bob","aud":"payments-api",...,"jti":"j-bob-1"}
  bob: jwt(claims('bob', 'payments-api', 'j-bob-1')),
  // {"iss":"https://idp.test","sub":"carol","aud":["orders-api","payments-api"],...,"jti":"j-carol-1"}
  carol: jwt(claims('carol', ['orders-api', 'payments-api'], 'j-carol-1')),
  // header {"alg":"HS256","typ":"JWT","kid":"hs-1"}; {"iss":"https://idp.test","sub":"dave",...,"jti":"j-dave-1"}
  dave: jwt(claims('dave', 'orders-api', 'j-dave-1'), {alg: 'HS256', typ: 'JWT', kid: 'hs-1'}),
  // {"iss":"https://idp.test","sub":"erin","aud":"orders-api",...,"jti":"j-erin-1"}
  erin: jwt(claims('erin', 'orders-api', 'j-erin-1')),
  // {"iss":"legacy-app","sub":"frank","aud":"orders-api",...,"jti":"j-frank-1"}
  frank: jwt(claims('frank', 'orders-api', 'j-frank-1', 'legacy-app')),
  // {"iss":"https://idp.test","sub":"svc-batch","aud":"orders-api",...,"jti":"j-svc-1"}
  svc: jwt(claims('svc-batch', 'orders-api', 'j-svc-1')),
  // RFC 6750 section 2.1 example: three dot-separated parts, still not a JWT
  rfcOpaque: opaque('mF_9.B5f-4.1JqM'),
  bearerOpaque: opaque('tw_live_7Qm2xK9pL4vR8sT1uW3y'),
  queryOpaque: opaque('qp-5d41402abc4b2a76b9719d911017c592'),
};

function fingerprint(tok) {
  return crypto.createHmac('sha256', FP_KEY).update(tok.fpInput).digest()
      .subarray(0, 16).toString('hex');
}

// ------------------------------------------------------ request builders ---
// Each helper returns the bytes it adds to the request *and* the token uses
// those bytes carry, so the expectation is written next to what is sent.
const use = (location, param, tok) => ({location, param, tok});
const host = (h) => ({host: h});
const hdr = (name, value) => ({headers: [[name, value]]});
const auth = (value, tok) => ({
  headers: [['Authorization', value]], uses: tok ? [use('authorization', '', tok)] : []});
const bearer = (tok) => auth(`Bearer ${tok.raw}`, tok);
const tokenHeader = (name, tok) => ({
  headers: [[name, tok.raw]], uses: [use('header', name.toLowerCase(), tok)]});
// pairs: [name, value] where value is a string (no use) or a JWT token object
const cookie = (...pairs) => ({
  headers: [['Cookie', pairs.map(([n, v]) => `${n}=${typeof v === 'string' ? v : v.raw}`).join('; ')]],
  uses: pairs.filter(([, v]) => typeof v !== 'string').map(([n, v]) => use('cookie', n, v))});
const q = (name, tok) => ({query: [[name, tok.raw]], uses: [use('query', name, tok)]});
const qx = (name, value) => ({query: [[name, value]]});
const body = (text) => ({body: text});
const chunkedBody = (text) => ({body: text, chunked: true});
const cuts = (...markers) => ({cuts: markers});

function R(method, reqPath, ...parts) {
  const r = {method, path: reqPath, host: null, headers: [], query: [], uses: [],
    body: null, chunked: false, cuts: []};
  for (const p of parts) {
    for (const k of ['headers', 'query', 'uses', 'cuts']) if (p[k]) r[k] = r[k].concat(p[k]);
    if (p.host) r.host = p.host;
    if (p.body !== undefined) r.body = p.body;
    if (p.chunked) r.chunked = true;
  }
  r.target = r.path + (r.query.length ? '?' + r.query.map(([k, v]) => `${k}=${v}`).join('&') : '');
  return r;
}

const V4 = '127.0.0.1';
const V6 = '::1';
const fmtIp = (ip) => (ip.includes(':') ? `[${ip}]` : ip);
const NGINX = PORTS.nginx;
const NODE = PORTS.node;

// A connection: one curl invocation (curl reuses one connection for all its
// URLs), or a raw socket ('pipeline': everything in one write; 'split': each
// request written in pieces cut after the given markers, TCP_NODELAY).
const curlConn = (ip, port, requests, opts = {}) => ({client: 'curl', ip, port, requests, ...opts});
const rawConn = (ip, port, mode, requests) => ({client: 'raw', ip, port, mode, requests});

const ORDERS = host('orders.test');
const PAYMENTS = host('payments.test');
const BASIC = auth('Basic YWxpY2U6c2VjcmV0', null);  // alice:secret, never a token

// ------------------------------------------------------------- captures ---
const anyInterfacePlan = () => [
  curlConn(V4, NODE, [
    R('GET', '/v1/orders/71', ORDERS, bearer(T.alice)),
    R('GET', '/v1/private/72', PAYMENTS, bearer(T.bob)),
  ]),
  curlConn(V6, NGINX, [
    R('GET', '/v1/orders/73', ORDERS, cookie(['session', T.carol], ['theme', 'dark'])),
    R('GET', '/v1/admin/74', tokenHeader('X-Api-Token', T.svc)),
  ]),
];

const CAPTURES = {
  'keepalive': () => [
    curlConn(V4, NODE, [
      R('GET', '/v1/orders/42', ORDERS, bearer(T.alice)),
      R('HEAD', '/v1/orders/42', ORDERS, bearer(T.alice)),
      R('GET', '/v1/empty', ORDERS, bearer(T.alice)),
      R('GET', '/v1/cached/7', ORDERS, hdr('If-None-Match', ETAG), bearer(T.alice)),
      R('GET', '/v1/payments/9', PAYMENTS, bearer(T.bob)),
      R('POST', '/v1/orders', ORDERS, bearer(T.alice), hdr('Content-Type', 'application/json'),
          body('{"item":"book","qty":1}')),
      R('GET', '/v1/private/keys', ORDERS, bearer(T.dave)),
      R('GET', '/v1/nothing-here'),
      R('GET', '/v1/orders/43', bearer(T.carol)),
    ]),
    curlConn(V4, NGINX, [
      R('GET', '/v1/orders/1', ORDERS, bearer(T.alice)),
      R('GET', '/v1/admin/users', ORDERS, bearer(T.alice)),
      R('GET', '/v1/private/x', ORDERS, bearer(T.erin)),
      R('GET', '/v1/stream/5', ORDERS, bearer(T.alice)),
      R('GET', '/missing', ORDERS, bearer(T.alice)),
    ]),
  ],

  'pipelining': () => [
    rawConn(V4, NODE, 'pipeline', [
      R('GET', '/v1/orders/100', ORDERS, bearer(T.alice)),
      // HEAD answer has Content-Length but no body: the next answer follows at once
      R('HEAD', '/v1/orders/100', ORDERS, bearer(T.bob)),
      R('GET', '/v1/private/z', ORDERS, bearer(T.carol)),
    ]),
    rawConn(V4, NGINX, 'pipeline', [
      R('GET', '/v1/admin/a', ORDERS, bearer(T.dave)),
      R('GET', '/nope', PAYMENTS, q('access_token', T.erin)),
      R('GET', '/v1/orders/5', PAYMENTS, cookie(['session', T.bob])),
    ]),
  ],

  'split-headers': () => [
    rawConn(V4, NODE, 'split', [
      // cut inside the method, the path, the Host value, the header name
      // "Authorization", the scheme, the token itself and between CR and LF
      R('GET', '/v1/orders/7', ORDERS, bearer(T.alice),
          cuts('GE', 'GET /v1/ord', 'Host: ord', 'Author', 'Bearer ', T.alice.raw.slice(0, 30),
              T.alice.raw.slice(30, 80), '\r')),
      // cut inside a custom token header name, a cookie value, the blank line
      // ending the headers, and the body
      R('POST', '/v1/orders', ORDERS, tokenHeader('X-Api-Token', T.svc),
          cookie(['theme', 'dark'], ['session', T.carol]),
          hdr('Content-Type', 'application/json'), body('{"item":"pen","qty":12}'),
          cuts('X-Api-', 'session=eyJhbGciOiJIUzI1', '\r\n\r', '{"item":')),
    ]),
    rawConn(V4, NGINX, 'split', [
      // cut inside the query-string token
      R('GET', '/v1/orders/8', ORDERS, qx('view', 'full'), q('id_token', T.erin),
          cuts('GET /v1/orders/8?view=full&id_', 'id_token=eyJhbGciOiJIUzI1NiIsInR5cCI6',
              'HTTP/1.', 'Host: orders.test\r\n')),
    ]),
  ],

  'chunked': () => [
    curlConn(V4, NODE, [
      R('GET', '/v1/payments/1', PAYMENTS, bearer(T.bob)),
      R('GET', '/v1/stream/2', ORDERS, bearer(T.alice)),
      // chunked request body behind an interim 100 Continue
      R('POST', '/v1/upload', ORDERS, bearer(T.alice), hdr('Content-Type', 'text/plain'),
          hdr('Expect', '100-continue'), chunkedBody('line one\nline two\nline three\n')),
      R('GET', '/v1/orders/3', ORDERS, bearer(T.carol)),
    ]),
    curlConn(V4, NGINX, [
      R('GET', '/v1/stream/9', ORDERS, bearer(T.dave)),
      R('GET', '/v1/payments/4', PAYMENTS, bearer(T.bob)),
      R('GET', '/v1/orders/4', ORDERS, bearer(T.erin)),
    ]),
  ],

  'ipv6': () => [
    curlConn(V6, NODE, [
      R('GET', '/v1/orders/61', bearer(T.alice)),
      R('GET', '/v1/payments/62', PAYMENTS, bearer(T.bob)),
      R('GET', '/v1/private/63', ORDERS, q('token', T.queryOpaque)),
    ]),
    curlConn(V6, NGINX, [
      R('GET', '/v1/orders/64', ORDERS, cookie(['session', T.carol], ['theme', 'dark'])),
      R('GET', '/v1/admin/65', tokenHeader('X-Api-Token', T.svc)),
    ]),
  ],

  'any-interface': anyInterfacePlan,
  'any-sll2': anyInterfacePlan,

  'mixed-tokens': () => [
    curlConn(V4, NODE, [
      R('GET', '/v1/orders/42', ORDERS, bearer(T.alice)),
      R('GET', '/v1/orders/43', ORDERS, {headers: [['authorization', `bearer ${T.bob.raw}`]],
        uses: [use('authorization', '', T.bob)]}),
      R('GET', '/v1/payments/7', PAYMENTS, auth(`BEARER ${T.bearerOpaque.raw}`, T.bearerOpaque)),
      R('GET', '/v1/admin/audit', ORDERS, auth(`JWT ${T.carol.raw}`, T.carol)),
      R('GET', '/v1/orders/44', ORDERS, auth(T.dave.raw, T.dave)),  // no scheme
      R('GET', '/v1/unknown/1', PAYMENTS, bearer(T.rfcOpaque)),
      R('GET', '/v1/orders/45', ORDERS, cookie(['session', T.alice], ['theme', 'dark'])),
      R('GET', '/v1/orders/46', ORDERS, cookie(['theme', 'dark'], ['sid', '8f3c2a9e41b07d65'])),
      R('GET', '/v1/private/47', PAYMENTS, q('access_token', T.bob)),
      R('GET', '/v1/orders/48', ORDERS, qx('page', '2'), q('id_token', T.carol), qx('sort', 'asc')),
      R('GET', '/v1/payments/49', PAYMENTS, q('token', T.queryOpaque)),
      R('GET', '/v1/admin/50', ORDERS, q('jwt', T.erin)),
      R('GET', '/v1/orders/51', ORDERS, tokenHeader('X-API-Token', T.svc)),
      R('GET', '/v1/orders/52', ORDERS),
      R('GET', '/v1/orders/53', ORDERS, BASIC),
      // the same token twice in one request: one use per location
      R('GET', '/v1/orders/54', ORDERS, q('access_token', T.frank), bearer(T.frank)),
      R('POST', '/v1/orders', ORDERS, bearer(T.alice),
          cookie(['theme', 'dark'], ['auth_token', T.carol], ['lang', 'en']),
          hdr('Content-Type', 'application/json'), body('{"item":"lamp","qty":2}')),
      // parameter names that merely contain "token" are not token parameters
      R('GET', '/v1/orders/55', ORDERS, qx('next_token', 'abc123'), qx('tokens', 'x')),
      R('GET', '/v1/orders/56', bearer(T.bob)),  // Host 127.0.0.1:18081
    ]),
    curlConn(V4, NGINX, [
      R('GET', '/v1/orders/60', ORDERS, bearer(T.alice)),
      R('GET', '/v1/private/61', PAYMENTS, bearer(T.bob)),
      R('GET', '/v1/admin/62', host('inventory.test'), bearer(T.carol)),
      R('GET', '/nowhere', ORDERS, q('id_token', T.dave)),
      R('GET', '/v1/orders/63', ORDERS, BASIC),
    ]),
    // curl --resolve: the Host header carries the port ("orders.test:18080")
    curlConn(V4, NGINX, [
      R('GET', '/v1/orders/64', bearer(T.erin)),
      R('GET', '/v1/admin/65', tokenHeader('X-Api-Token', T.svc)),
    ], {resolve: 'orders.test'}),
  ],
};

// ------------------------------------------------------------- execution ---
function urlHost(conn) {
  return `${conn.resolve || fmtIp(conn.ip)}:${conn.port}`;
}

function hostHeader(conn, r) {
  return r.host || urlHost(conn);
}

function runCurl(conn) {
  const args = [];
  conn.requests.forEach((r, i) => {
    if (i > 0) args.push('--next');
    args.push('-sS', '--http1.1', '-g', '--noproxy', '*', '--max-time', '20',
        '-o', '/dev/null', '-w', '%{http_code} %{num_connects}\\n');
    if (conn.resolve) args.push('--resolve', `${conn.resolve}:${conn.port}:${conn.ip}`);
    if (r.host) args.push('-H', `Host: ${r.host}`);
    for (const [n, v] of r.headers) args.push('-H', `${n}: ${v}`);
    if (r.method === 'HEAD') {
      args.push('-I');
    } else if (r.body !== null) {
      if (r.chunked) args.push('-H', 'Transfer-Encoding: chunked');
      args.push('--data-binary', r.body);
      if (r.method !== 'POST') args.push('-X', r.method);
    } else if (r.method !== 'GET') {
      args.push('-X', r.method);
    }
    args.push(`http://${urlHost(conn)}${r.target}`);
  });
  const out = execFileSync('curl', args, {encoding: 'utf8'});
  const lines = out.trim().split('\n').map((l) => l.split(' ').map(Number));
  const connects = lines.reduce((a, [, c]) => a + c, 0);
  if (connects !== 1) {
    throw new Error(`curl opened ${connects} connections for one keep-alive connection`);
  }
  return lines.map(([code]) => code);
}

function serialize(conn, r, last) {
  let head = `${r.method} ${r.target} HTTP/1.1\r\nHost: ${hostHeader(conn, r)}\r\n`;
  for (const [n, v] of r.headers) head += `${n}: ${v}\r\n`;
  head += 'User-Agent: tokenwatch-captures/1\r\nAccept: */*\r\n';
  if (r.body !== null) head += `Content-Length: ${Buffer.byteLength(r.body)}\r\n`;
  if (last) head += 'Connection: close\r\n';
  return head + '\r\n' + (r.body || '');
}

function splitAt(text, markers) {
  const pieces = [];
  let from = 0;
  for (const m of markers) {
    // first occurrence that ends after the previous cut (markers may overlap it)
    let at = text.indexOf(m);
    while (at >= 0 && at + m.length <= from) at = text.indexOf(m, at + 1);
    if (at < 0) throw new Error(`cut marker ${JSON.stringify(m)} not found`);
    const end = at + m.length;
    if (end <= from || end >= text.length) throw new Error(`bad cut at ${JSON.stringify(m)}`);
    pieces.push(text.slice(from, end));
    from = end;
  }
  pieces.push(text.slice(from));
  return pieces;
}

// Minimal HTTP/1.1 response reader: returns the final statuses in order once
// `expected` complete responses (1xx interim answers skipped) have arrived.
function parseResponses(buf, methods) {
  const statuses = [];
  let pos = 0;
  const s = buf.toString('latin1');
  while (statuses.length < methods.length) {
    const headEnd = s.indexOf('\r\n\r\n', pos);
    if (headEnd < 0) return {statuses, complete: false};
    const lines = s.slice(pos, headEnd).split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const h = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      h[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let p = headEnd + 4;
    if (status >= 100 && status < 200) { pos = p; continue; }
    const method = methods[statuses.length];
    if (method === 'HEAD' || status === 204 || status === 304) {
      // no body
    } else if ((h['transfer-encoding'] || '').toLowerCase() === 'chunked') {
      for (;;) {
        const le = s.indexOf('\r\n', p);
        if (le < 0) return {statuses, complete: false};
        const size = parseInt(s.slice(p, le).split(';')[0], 16);
        p = le + 2;
        if (size === 0) {
          const te = s.indexOf('\r\n\r\n', p - 2);
          if (te < 0) return {statuses, complete: false};
          p = te + 4;
          break;
        }
        p += size + 2;
        if (p > s.length) return {statuses, complete: false};
      }
    } else if (h['content-length'] !== undefined) {
      p += Number(h['content-length']);
      if (p > s.length) return {statuses, complete: false};
    } else {
      throw new Error('response without framing; the capture servers never send one');
    }
    statuses.push(status);
    pos = p;
  }
  return {statuses, complete: true};
}

function later(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function runRaw(conn) {
  const sock = net.connect({host: conn.ip, port: conn.port});
  sock.setNoDelay(true);
  let received = Buffer.alloc(0);
  let ended = false;
  const closed = new Promise((resolve) => sock.once('close', resolve));
  const waiters = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  sock.on('data', (d) => { received = Buffer.concat([received, d]); wake(); });
  sock.on('end', () => { ended = true; wake(); });
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  const deadline = Date.now() + 10000;
  const until = async (pred) => {
    while (!pred()) {
      if (ended || Date.now() > deadline) throw new Error(`raw connection to ${urlHost(conn)} stalled`);
      await new Promise((resolve) => { waiters.push(resolve); setTimeout(resolve, 50); });
    }
  };
  const methods = conn.requests.map((r) => r.method);
  const n = conn.requests.length;
  const texts = conn.requests.map((r, i) => serialize(conn, r, i === n - 1));
  if (conn.mode === 'pipeline') {
    sock.write(texts.join(''));
    conn.clientSegments = 1;
  } else {
    conn.clientSegments = 0;
    for (let i = 0; i < n; i++) {
      for (const piece of splitAt(texts[i], conn.requests[i].cuts)) {
        sock.write(piece);
        conn.clientSegments++;
        await later(15);  // Nagle is off: every piece leaves as its own segment
      }
      // wait for this answer so the next request does not overlap it
      await until(() => parseResponses(received, methods.slice(0, i + 1)).complete);
    }
  }
  await until(() => parseResponses(received, methods).complete);
  // the last request said "Connection: close": the server closes first
  if (!ended) await Promise.race([new Promise((resolve) => sock.once('end', resolve)), closed]);
  sock.end();
  await closed;
  return parseResponses(received, methods).statuses;
}

function expectedLines(conn, r, status) {
  const serviceFor = (hostValue, port) => {
    const h = hostValue.startsWith('[') ? hostValue.slice(0, hostValue.indexOf(']') + 1)
                                        : hostValue.split(':')[0];
    if (h === 'orders.test') return 'orders';
    if (h === 'payments.test') return 'payments';
    return `${h}:${port}`;
  };
  return r.uses.map((u) => ({
    method: r.method,
    path: r.path,
    status,
    location: u.location,
    param: u.param,
    service: serviceFor(hostHeader(conn, r), conn.port),
    client: conn.ip,
    server: `${fmtIp(conn.ip)}:${conn.port}`,
    protocol: 'http/1.1',
    source: 'pcap',
    token: {kind: u.tok.kind, fp: fingerprint(u.tok), sub: u.tok.sub, jti: u.tok.jti,
      iss: u.tok.iss, alg: u.tok.alg},
  }));
}

async function main() {
  const [name, outDir] = process.argv.slice(2);
  if (name === '--tokens') {
    for (const [k, t] of Object.entries(T)) {
      console.log(`${k}\t${t.kind}\t${fingerprint(t)}\t${t.raw}` +
          (t.claims ? `\t${JSON.stringify(t.header)} ${JSON.stringify(t.claims)}` : ''));
    }
    return;
  }
  if (!CAPTURES[name] || !outDir) {
    console.error(`usage: node drive.js {${Object.keys(CAPTURES).join('|')}} OUTDIR`);
    process.exit(2);
  }
  const conns = CAPTURES[name]();
  const lines = [];
  let requests = 0;
  for (const conn of conns) {
    const got = conn.client === 'curl' ? runCurl(conn) : await runRaw(conn);
    conn.requests.forEach((r, i) => {
      const want = expectedStatus(conn.port, r.method, r.path,
          Object.fromEntries(r.headers.map(([k, v]) => [k.toLowerCase(), v])));
      if (got[i] !== want) {
        throw new Error(`${name}: ${r.method} ${r.target} on ${urlHost(conn)}: ` +
            `server answered ${got[i]}, routes.js says ${want}`);
      }
      lines.push(...expectedLines(conn, r, want));
    });
    requests += conn.requests.length;
  }
  fs.writeFileSync(path.join(outDir, `${name}.expected.jsonl`),
      lines.map((l) => JSON.stringify(l) + '\n').join(''));
  fs.writeFileSync(path.join(outDir, `${name}.meta.json`),
      JSON.stringify({requests, token_uses: lines.length, connections: conns.map((c) => ({
        server: `${fmtIp(c.ip)}:${c.port}`, requests: c.requests.length,
        client_segments: c.clientSegments === undefined ? null : c.clientSegments}))}) + '\n');
  console.error(`${name}: ${requests} requests on ${conns.length} connections, ${lines.length} token uses`);
}

// An await that can never resolve would let Node exit quietly with status 0.
let finished = false;
process.on('exit', (code) => {
  if (!finished && code === 0) {
    console.error('drive.js: exited before finishing');
    process.exitCode = 1;
  }
});

main().then(() => { finished = true; }).catch((e) => {
  console.error(`drive.js: ${e.stack || e}`);
  process.exit(1);
});
