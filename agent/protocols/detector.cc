#include "agent/protocols/detector.h"

#include <algorithm>
#include <cstring>

#include "agent/http2/frame.h"

namespace tokenwatch::protocols {
namespace {

// First bytes held while they are still a prefix of the preface, or a
// frame not yet complete (a mid-stream pickup's first, partial frame).
constexpr size_t kMaxPending = http2::kDefaultMaxFrameSize + 2 * 9;

// Inside a CONNECT tunnel, HTTP/1 only when the client opens with a
// request line's method ("GET ", "POST "...): a tunnel usually carries TLS
// (0x16...) or another protocol, which the HTTP/1 parser would only read
// as malformed requests. kWait while the bytes are still a method prefix.
enum class MethodStart { kYes, kNo, kWait };
MethodStart StartsWithMethod(std::string_view b) {
  constexpr size_t kMaxMethod = 16;
  for (size_t i = 0; i < b.size() && i <= kMaxMethod; ++i) {
    char c = b[i];
    if (c == ' ') return i >= 3 ? MethodStart::kYes : MethodStart::kNo;
    if (!((c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
      return MethodStart::kNo;
  }
  return b.size() > kMaxMethod ? MethodStart::kNo : MethodStart::kWait;
}

}  // namespace

ProtocolDetector::ProtocolDetector(Analyzers analyzers,
                                   analyzer::Endpoint side0,
                                   analyzer::Endpoint side1)
    : analyzers_(analyzers), ends_{std::move(side0), std::move(side1)} {}

ProtocolDetector::~ProtocolDetector() = default;

void ProtocolDetector::SetClientSide(int dir) {
  if (client_ < 0) client_ = dir;
  if (http2_) http2_->SetClientSide(dir);
  if (http1_) http1_->SetClientSide(dir);
}

void ProtocolDetector::StartResync(int dir) {
  resync_[dir] = true;
  if (http2_) http2_->StartResync(dir);
  if (http1_) http1_->StartResync(dir);
}

ProtocolDetector::Verdict ProtocolDetector::Classify(int dir) const {
  const std::string& b = pending_[dir];
  const auto* p = reinterpret_cast<const uint8_t*>(b.data());
  if (resync_[dir]) {
    // Mid-stream: frames from the first byte, or HTTP/1 (which searches
    // for a message start itself).
    http2::FrameChain c = http2::CheckFrameChain(p, b.size());
    if (c.broken) return Verdict::kHttp1;
    if (c.frames >= 2 || (c.frames == 1 && c.ends_exact))
      return Verdict::kHttp2;
    return b.size() < kMaxPending ? Verdict::kWait : Verdict::kHttp1;
  }
  std::string_view preface = http2::kClientPreface;
  size_t n = std::min(b.size(), preface.size());
  if (dir != 1 - client_ && std::memcmp(b.data(), preface.data(), n) == 0) {
    return n == preface.size() ? Verdict::kHttp2 : Verdict::kWait;
  }
  // A server's connection preface is a SETTINGS frame (RFC 9113 3.4); an
  // h2c server may send it before the client's preface arrives.
  if (dir != client_) {
    if (b.size() < http2::kFrameHeaderBytes) {
      // "HTTP/1.x" and SETTINGS part at the first byte ('H' vs 0x00).
      return b[0] == 0 ? Verdict::kWait : Verdict::kHttp1;
    }
    http2::FrameHeader h = http2::FrameHeader::Parse(p);
    if (h.Is(http2::FrameType::kSettings) &&
        http2::IsPlausibleFrame(h, http2::kDefaultMaxFrameSize) &&
        (h.flags & http2::flags::kAck) == 0) {
      return Verdict::kHttp2;
    }
  }
  return Verdict::kHttp1;
}

void ProtocolDetector::OnData(int dir, const uint8_t* data, size_t len) {
  switch (kind_) {
    case Kind::kHttp2:
      http2_->OnData(dir, data, len);
      return;
    case Kind::kHttp1:
      http1_->OnData(dir, data, len);
      return;
    case Kind::kOpaque:
      analyzers_.http1->stats->undecoded_bytes += len;
      return;
    case Kind::kUndecided:
      break;
  }
  pending_[dir].append(reinterpret_cast<const char*>(data), len);
  switch (Classify(dir)) {
    case Verdict::kWait:
      return;
    case Verdict::kHttp2: {
      int client = client_;
      if (client < 0 && !resync_[dir]) {
        // The preface's sender is the client; a SETTINGS sender the server.
        client = pending_[dir].compare(0, http2::kClientPreface.size(),
                                       http2::kClientPreface) == 0
                     ? dir
                     : 1 - dir;
      }
      StartHttp2(client);
      break;
    }
    case Verdict::kHttp1:
      if (depth_ > 0) {
        // A tunnel: HTTP/1 only if the client begins with a method.
        MethodStart m =
            dir == client_ ? StartsWithMethod(pending_[dir]) : MethodStart::kNo;
        if (m == MethodStart::kWait) return;
        if (m == MethodStart::kNo) {
          kind_ = Kind::kOpaque;
          for (std::string& b : pending_) {
            analyzers_.http1->stats->undecoded_bytes += b.size();
            std::string().swap(b);
          }
          return;
        }
      }
      StartHttp1();
      break;
  }
  Replay();
}

void ProtocolDetector::StartHttp1() {
  kind_ = Kind::kHttp1;
  http1_ =
      std::make_unique<http::HttpSession>(analyzers_.http1, ends_[0], ends_[1]);
  http1_->set_protocol_switch(this);
  if (client_ >= 0) http1_->SetClientSide(client_);
  for (int d = 0; d < 2; ++d) {
    if (resync_[d]) http1_->StartResync(d);
  }
}

void ProtocolDetector::StartHttp2(int client_dir) {
  kind_ = Kind::kHttp2;
  http2_ = std::make_unique<http2::Http2Session>(analyzers_.http2, ends_[0],
                                                 ends_[1], client_dir);
  for (int d = 0; d < 2; ++d) {
    if (resync_[d]) http2_->StartResync(d);
  }
}

void ProtocolDetector::Replay() {
  for (int d = 0; d < 2; ++d) {
    std::string bytes = std::move(pending_[d]);
    pending_[d].clear();
    pending_[d].shrink_to_fit();
    if (!bytes.empty())
      OnData(d, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
}

void ProtocolDetector::OnGap(int dir, uint64_t len) {
  if (kind_ == Kind::kUndecided) {
    // Bytes lost before a verdict: HTTP/1 resynchronises on its own.
    resync_[dir] = true;
    StartHttp1();
    Replay();
  }
  if (kind_ == Kind::kHttp2) {
    http2_->OnGap(dir, len);
  } else if (kind_ == Kind::kHttp1) {
    http1_->OnGap(dir, len);
  }
}

void ProtocolDetector::OnHttp2Upgrade(
    int client_dir, std::unique_ptr<analyzer::PendingRequest> observed) {
  http2_ = std::make_unique<http2::Http2Session>(analyzers_.http2, ends_[0],
                                                 ends_[1], client_dir);
  http2_->AdoptUpgradeRequest(std::move(observed));
  upgraded_ = true;
  // From the next delivery on, bytes go straight to HTTP/2; the rest of
  // the current one arrives through OnTunnelData.
  kind_ = Kind::kHttp2;
}

void ProtocolDetector::OnConnectTunnel(int client_dir) {
  if (depth_ >= 2 || tunnel_ != nullptr) return;  // the bytes stay undecoded
  tunnel_ = std::make_unique<ProtocolDetector>(analyzers_, ends_[0], ends_[1]);
  tunnel_->depth_ = depth_ + 1;
  tunnel_->SetClientSide(client_dir);
}

void ProtocolDetector::OnTunnelData(int dir, const uint8_t* data, size_t len) {
  if (upgraded_) {
    http2_->OnData(dir, data, len);
    return;
  }
  if (tunnel_ != nullptr) {
    tunnel_->OnData(dir, data, len);
    return;
  }
  analyzers_.http1->stats->undecoded_bytes += len;
}

void ProtocolDetector::Close() {
  if (kind_ == Kind::kUndecided) {
    // Too few bytes for a verdict: HTTP/1 gets them, as it always did.
    StartHttp1();
    Replay();
  }
  if (http1_) http1_->Close();
  if (http2_) http2_->Close();
  if (tunnel_) tunnel_->Close();
}

}  // namespace tokenwatch::protocols
