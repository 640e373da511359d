#include "agent/tls/probe_streams.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace tokenwatch::tls {

struct ProbeStreams::Conn {
  std::unique_ptr<analyzer::StreamHandler> handler;  // null until bound
  bool bound = false;
  bool mirror = false;     // the other end of a connection parsed elsewhere
  std::string tuple;       // TupleKey, once bound
  std::deque<Chunk> held;  // data before the socket was known
  size_t held_bytes = 0;
  int64_t last_us = 0;
  Lru::iterator lru;
};

namespace {
std::string ExeOf(uint32_t pid) {
  char buf[4096];
  ssize_t n = readlink(absl::StrCat("/proc/", pid, "/exe").c_str(), buf,
                       sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}
}  // namespace

ProbeStreams::ProbeStreams(analyzer::StreamHandlerFactory* factory,
                           AgentStats* stats, ProbeStreamLimits limits,
                           std::function<std::string(uint32_t)> exe_of)
    : factory_(factory),
      stats_(stats),
      limits_(limits),
      exe_of_(exe_of ? std::move(exe_of) : ExeOf) {}

ProbeStreams::~ProbeStreams() { CloseAll(); }

std::string ProbeStreams::TupleKey(const analyzer::Endpoint& a,
                                   const analyzer::Endpoint& b) {
  std::string x = absl::StrCat(a.ip, "|", a.port);
  std::string y = absl::StrCat(b.ip, "|", b.port);
  return x < y ? absl::StrCat(x, "/", y) : absl::StrCat(y, "/", x);
}

ProbeStreams::Conn* ProbeStreams::Find(const Key& k) {
  auto it = conns_.find(k);
  return it == conns_.end() ? nullptr : it->second.get();
}

ProbeStreams::Conn& ProbeStreams::Open(const Key& k, const Chunk& c) {
  if (conns_.size() >= limits_.max_connections && !lru_.empty()) {
    stats_->Count(Drop::kTlsProbeConnections);
    Close(lru_.front());
  }
  auto conn = std::make_unique<Conn>();
  conn->lru = lru_.insert(lru_.end(), k);
  ++per_pid_[k.pid];
  conn->last_us = c.ts_us;
  Conn& ref = *conn;
  conns_[k] = std::move(conn);
  return ref;
}

void ProbeStreams::Bind(Conn& conn, const Chunk& c) {
  conn.bound = true;
  conn.tuple = TupleKey(c.local, c.remote);
  Key k{c.pid, c.ssl};
  auto [it, fresh] = tuples_.try_emplace(conn.tuple, k);
  if (!fresh && !(it->second == k) && Find(it->second) != nullptr) {
    // The peer process is probed too and its end is parsed already: one
    // request seen at both ends is one use.
    conn.mirror = true;
    ++stats_->tls_probe_both_ends;
    return;
  }
  it->second = k;
  analyzer::Endpoint local = c.local, remote = c.remote;
  auto& proc = processes_[c.pid];
  if (proc == nullptr || proc->comm != c.comm) {
    auto p = std::make_shared<analyzer::Process>();
    p->pid = c.pid;
    p->comm = c.comm;
    p->exe = exe_of_(c.pid);
    proc = std::move(p);
  }
  local.process = proc;
  conn.handler = factory_->Create(std::move(local), std::move(remote));
  ++stats_->tls_probe_connections;
}

void ProbeStreams::Deliver(Conn& conn, const Chunk& c) {
  if (conn.mirror || conn.handler == nullptr) return;
  int dir = c.dir == Chunk::Dir::kWrite ? 0 : 1;
  conn.handler->OnData(dir, reinterpret_cast<const uint8_t*>(c.data.data()),
                       c.data.size());
  if (c.truncated && c.orig_len > c.data.size()) {
    // The rest of the call was cut in the kernel: a gap, as a lost segment
    // would be on the wire.
    stats_->Count(Drop::kTlsProbeTruncated);
    conn.handler->OnGap(dir, c.orig_len - c.data.size());
  }
}

void ProbeStreams::OnChunk(const Chunk& c) {
  Key k{c.pid, c.ssl};
  if (c.kind == Chunk::Kind::kClose) {
    Close(k);
    return;
  }
  Conn* conn = Find(k);
  if (conn != nullptr && conn->bound && c.bound &&
      TupleKey(c.local, c.remote) != conn->tuple) {
    // A freed SSL* reused for another connection (SSL_free not seen).
    Close(k);
    conn = nullptr;
  }
  if (conn == nullptr) {
    if (c.kind == Chunk::Kind::kBind && !c.bound) return;
    conn = &Open(k, c);
  }
  lru_.splice(lru_.end(), lru_, conn->lru);
  conn->last_us = c.ts_us;
  if (c.kind == Chunk::Kind::kData) {
    ++stats_->tls_probe_chunks;
    stats_->tls_probe_bytes += c.data.size();
  }
  if (!conn->bound && c.bound) {
    Bind(*conn, c);
    // What arrived before the socket was known goes first, in order.
    for (const Chunk& h : conn->held) Deliver(*conn, h);
    conn->held.clear();
    conn->held_bytes = 0;
  }
  if (c.kind != Chunk::Kind::kData) return;
  if (conn->bound) {
    Deliver(*conn, c);
    return;
  }
  if (conn->held_bytes + c.data.size() > limits_.max_unbound_bytes) {
    stats_->Count(Drop::kTlsProbeUnbound);
    return;
  }
  conn->held_bytes += c.data.size();
  conn->held.push_back(c);
}

void ProbeStreams::Close(Key k) {  // a copy: callers pass lru_.front()
  auto it = conns_.find(k);
  if (it == conns_.end()) return;
  Conn& conn = *it->second;
  if (!conn.held.empty()) stats_->Count(Drop::kTlsProbeUnbound);
  if (conn.handler != nullptr) conn.handler->Close();
  if (conn.bound) {
    auto t = tuples_.find(conn.tuple);
    if (t != tuples_.end() && t->second == k) tuples_.erase(t);
  }
  lru_.erase(conn.lru);
  conns_.erase(it);
  // A process with no connection left keeps no entry.
  auto n = per_pid_.find(k.pid);
  if (n != per_pid_.end() && --n->second == 0) {
    per_pid_.erase(n);
    processes_.erase(k.pid);
  }
}

void ProbeStreams::Expire(int64_t now_us) {
  while (!lru_.empty()) {
    Conn* c = Find(lru_.front());
    if (c == nullptr || now_us - c->last_us < limits_.idle_timeout_us) break;
    Close(lru_.front());
  }
}

void ProbeStreams::CloseAll() {
  while (!lru_.empty()) Close(lru_.front());
}

}  // namespace tokenwatch::tls
