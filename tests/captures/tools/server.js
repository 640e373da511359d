'use strict';
// HTTP/1.1 origin server for the golden captures. Node's built-in http module
// only. Usage: node server.js PORT_SPEC...   where PORT_SPEC is ip:port or
// [ip6]:port. Loopback addresses only. Answers are chosen by routes.js.
const http = require('http');
const crypto = require('crypto');
const {nodeRoute, ETAG} = require('./routes');

function jsonBody(obj) {
  return Buffer.from(JSON.stringify(obj) + '\n');
}

// Deterministic filler so pcaps differ between runs only in times and ports.
function filler(n, seed) {
  let out = '';
  let i = 0;
  while (out.length < n) {
    out += crypto.createHash('sha256').update(`${seed}:${i++}`).digest('hex');
  }
  return out.slice(0, n);
}

function later(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function answer(req, res, bodyLen) {
  const path = req.url.split('?')[0];
  const route = nodeRoute(req.method, path, req.headers);
  const status = route.status;
  res.setHeader('Cache-Control', 'no-store');
  switch (route.kind) {
    case 'text': {
      const b = Buffer.from('ok\n');
      res.writeHead(status, {'Content-Type': 'text/plain', 'Content-Length': b.length});
      res.end(b);
      return;
    }
    case 'empty': {
      const headers = status === 304 ? {ETag: ETAG} : {};
      res.writeHead(status, headers);
      res.end();
      return;
    }
    case 'chunked': {
      // Three writes with pauses: each chunk leaves in its own TCP segment.
      res.writeHead(status, {'Content-Type': 'application/json'});
      res.write('{"payments":[');
      await later(15);
      res.write('{"id":1,"amount":"12.50"},');
      await later(15);
      res.write('{"id":2,"amount":"7.25"}]}\n');
      res.end();
      return;
    }
    case 'chunked-trailers': {
      // Bigger chunks and a trailer section (RFC 9112 section 7.1.2).
      res.writeHead(status, {'Content-Type': 'text/plain', 'Trailer': 'X-Checksum'});
      const hash = crypto.createHash('sha256');
      for (let i = 0; i < 4; i++) {
        const piece = filler(6000, `${path}:${i}`) + '\n';
        hash.update(piece);
        res.write(piece);
        await later(10);
      }
      res.addTrailers({'X-Checksum': hash.digest('hex')});
      res.end();
      return;
    }
    default: {
      const extra = {};
      if (status === 401) extra['WWW-Authenticate'] = 'Bearer error="invalid_token"';
      if (status === 200 && path.startsWith('/v1/cached/')) extra['ETag'] = ETAG;
      const b = jsonBody({status, path, received_body_bytes: bodyLen});
      res.writeHead(status, {
        'Content-Type': 'application/json', 'Content-Length': b.length, ...extra});
      res.end(b);  // Node drops the body itself for HEAD, keeps Content-Length
    }
  }
}

function handler(req, res) {
  let bodyLen = 0;
  req.on('data', (d) => { bodyLen += d.length; });
  req.on('end', () => {
    answer(req, res, bodyLen).catch((e) => {
      console.error(e);
      res.destroy();
    });
  });
}

const specs = process.argv.slice(2);
if (specs.length === 0) {
  console.error('usage: node server.js 127.0.0.1:18081 [::1]:18081 ...');
  process.exit(2);
}
for (const spec of specs) {
  const m = /^\[?([^\]]+)\]?:(\d+)$/.exec(spec);
  if (!m || !['127.0.0.1', '::1'].includes(m[1])) {
    console.error(`refusing non-loopback listen address ${spec}`);
    process.exit(2);
  }
  const server = http.createServer(handler);
  server.keepAliveTimeout = 30000;
  server.on('error', (e) => {
    console.error(`listen ${spec}: ${e.message}`);
    process.exit(1);
  });
  server.listen({host: m[1], port: Number(m[2]), ipv6Only: m[1] === '::1'}, () => {
    console.error(`listening on ${spec}`);
  });
}
