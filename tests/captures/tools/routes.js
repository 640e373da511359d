'use strict';
// What the capture servers answer, as one table shared by the Node server
// (tools/server.js) and by the expectation writer (tools/drive.js). The nginx
// half mirrors the config that make-captures.sh generates; drive.js checks
// every status the clients actually received against this table, so a drift
// between the two fails the run instead of producing a wrong golden file.

const ETAG = '"v1"';

// Node server (tools/server.js), ports 18081 (127.0.0.1 and ::1) and 18099.
function nodeRoute(method, path, headers) {
  const h = headers || {};
  if (path === '/healthz') return {status: 200, kind: 'text'};
  if (path === '/v1/orders' || path.startsWith('/v1/orders/')) {
    if (method === 'POST') return {status: 201, kind: 'json'};
    if (method === 'GET' || method === 'HEAD') return {status: 200, kind: 'json'};
    return {status: 405, kind: 'json'};
  }
  if (path.startsWith('/v1/payments/')) return {status: 200, kind: 'chunked'};
  if (path.startsWith('/v1/stream/')) return {status: 200, kind: 'chunked-trailers'};
  if (path.startsWith('/v1/admin/')) return {status: 403, kind: 'json'};
  if (path.startsWith('/v1/private/')) return {status: 401, kind: 'json'};
  if (path === '/v1/empty') return {status: 204, kind: 'empty'};
  if (path.startsWith('/v1/cached/')) {
    if (h['if-none-match'] === ETAG) return {status: 304, kind: 'empty'};
    return {status: 200, kind: 'json'};
  }
  if (path === '/v1/upload' && method === 'POST') return {status: 200, kind: 'json'};
  return {status: 404, kind: 'json'};
}

// nginx, port 18080 (127.0.0.1 and ::1); see the config in make-captures.sh.
function nginxRoute(method, path) {
  if (path === '/healthz') return {status: 200};
  if (path.startsWith('/v1/orders/')) return {status: 200};
  if (path.startsWith('/v1/private/')) return {status: 401};
  if (path.startsWith('/v1/admin/')) return {status: 403};
  // proxied to the Node server on 18099 (not captured): chunked answers
  if (path.startsWith('/v1/stream/') || path.startsWith('/v1/payments/')) {
    return {status: nodeRoute(method, path).status};
  }
  return {status: 404};
}

const PORTS = {nginx: 18080, node: 18081, upstream: 18099};

function expectedStatus(port, method, path, headers) {
  if (port === PORTS.nginx) return nginxRoute(method, path).status;
  if (port === PORTS.node || port === PORTS.upstream) {
    return nodeRoute(method, path, headers).status;
  }
  throw new Error(`no server configured on port ${port}`);
}

module.exports = {nodeRoute, nginxRoute, expectedStatus, PORTS, ETAG};
