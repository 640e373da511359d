#include "agent/http2/session.h"

#include <algorithm>

#include "common/strings.h"

namespace tokenwatch::http2 {
namespace {

// Control frame payload buffered at most (SETTINGS: 682 parameters).
constexpr uint32_t kMaxControlPayload = 4096;
// Bytes kept while searching for a frame boundary; older ones are skipped.
constexpr size_t kMaxResyncBytes = 64 * 1024;
// A buffer grown past this by one large block or frame is given back.
constexpr size_t kKeepCapacity = 16 * 1024;

// ":status" and grpc-status values: digits only.
std::optional<uint32_t> ParseCode(std::string_view v, size_t max_digits) {
  if (v.empty() || v.size() > max_digits) return std::nullopt;
  uint32_t n = 0;
  for (char c : v) {
    if (!util::IsDigit(c)) return std::nullopt;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  return n;
}

void Trim(std::string& s) {
  if (s.capacity() > kKeepCapacity) {
    std::string().swap(s);
  } else {
    s.clear();
  }
}

}  // namespace

Http2Session::Http2Session(Http2Context* ctx, Endpoint side0, Endpoint side1,
                           int client_dir)
    : ctx_(ctx), ends_{std::move(side0), std::move(side1)} {
  // A client speaks first with the preface (prior knowledge, and after a
  // 101); until the client is known either side may turn out to be it.
  for (Direction& d : dirs_) d.state = State::kPreface;
  if (client_dir >= 0) SetClientSide(client_dir);
}

Http2Session::~Http2Session() = default;

void Http2Session::SetClientSide(int dir) {
  if (client_ >= 0) return;
  client_ = dir;
  Direction& server = dirs_[1 - dir];
  if (server.state == State::kPreface && server.preface_have == 0)
    server.state = State::kHeader;
}

void Http2Session::StartResync(int dir) {
  Direction& d = dirs_[dir];
  d.state = State::kResync;
  d.preface_have = 0;
  d.hdr_have = 0;
  ctx_->stats->Count(Anomaly::kHttp2Resync);
}

void Http2Session::AdoptUpgradeRequest(
    std::unique_ptr<analyzer::PendingRequest> observed) {
  Stream s;
  s.id = 1;
  s.observed = std::move(observed);
  streams_.push_back(std::move(s));
}

void Http2Session::OnData(int dir, const uint8_t* data, size_t len) {
  Direction& d = dirs_[dir];
  while (len > 0) {
    size_t used = 0;
    switch (d.state) {
      case State::kPreface:
        used = FeedPreface(d, data, len);
        if (d.state == State::kResync) ctx_->stats->undecoded_bytes += used;
        break;
      case State::kHeader:
        used = FeedHeader(dir, data, len);
        break;
      case State::kPayload:
        used = FeedPayload(dir, data, len);
        break;
      case State::kResync:
        used = FeedResync(dir, data, len);
        break;
    }
    data += used;
    len -= used;
  }
}

size_t Http2Session::FeedPreface(Direction& d, const uint8_t* p, size_t n) {
  size_t i = 0;
  while (i < n && d.preface_have < kClientPreface.size()) {
    if (p[i] != static_cast<uint8_t>(kClientPreface[d.preface_have])) {
      bool was_started = d.preface_have > 0;
      d.preface_have = 0;
      if (!was_started) {
        // Frames from the start: the server side, or a client whose
        // preface went before watching began.
        d.state = State::kHeader;
        return i;
      }
      ctx_->stats->Count(Anomaly::kHttp2BadPreface);
      d.state = State::kResync;
      return i;
    }
    ++i;
    ++d.preface_have;
  }
  if (d.preface_have == kClientPreface.size()) {
    d.state = State::kHeader;
    int dir = &d == &dirs_[0] ? 0 : 1;
    SetClientSide(dir);
  }
  return i;
}

size_t Http2Session::FeedHeader(int dir, const uint8_t* p, size_t n) {
  Direction& d = dirs_[dir];
  size_t take = std::min(n, kFrameHeaderBytes - d.hdr_have);
  std::copy(p, p + take, d.hdr + d.hdr_have);
  d.hdr_have += take;
  if (d.hdr_have == kFrameHeaderBytes) {
    d.hdr_have = 0;
    d.frame = FrameHeader::Parse(d.hdr);
    BeginFrame(dir);
  }
  return take;
}

void Http2Session::BeginFrame(int dir) {
  Direction& d = dirs_[dir];
  const FrameHeader& f = d.frame;
  if (f.reserved_bit || ViolatesFrameRules(f)) {
    // No real peer sends this: the bytes are not the frames we think.
    LoseSync(dir, Anomaly::kHttp2FrameError);
    return;
  }
  if (d.in_block && !f.Is(FrameType::kContinuation)) {
    // RFC 9113 6.10: nothing may interleave a header block.
    ctx_->stats->Count(Anomaly::kHttp2FrameError);
    d.in_block = false;
    Trim(d.block);
    if (d.hpack) d.hpack->Reset();  // the block's inserts are lost
  }
  d.remaining = f.length;
  d.keep = 0;
  switch (static_cast<FrameType>(f.type)) {
    case FrameType::kHeaders:
    case FrameType::kPushPromise:
      d.in_block = true;
      d.block_dropped = false;
      d.block_end_stream =
          (f.flags & flags::kEndStream) != 0 && f.Is(FrameType::kHeaders);
      d.block_is_push = f.Is(FrameType::kPushPromise);
      d.block_stream = f.stream;
      d.continuations = 0;
      d.block.clear();
      [[fallthrough]];
    case FrameType::kContinuation:
      if (f.Is(FrameType::kContinuation)) {
        if (!d.in_block || f.stream != d.block_stream) {
          ctx_->stats->Count(Anomaly::kHttp2FrameError);
          break;  // skipped
        }
        if (++d.continuations == ctx_->max_continuations + 1 &&
            !d.block_dropped) {
          // Endless (even empty) CONTINUATION frames: CVE-2024-27316.
          ctx_->stats->Count(Anomaly::kHttp2ContinuationFlood);
          d.block_dropped = true;
        }
      }
      if (!d.block_dropped &&
          d.block.size() + f.length > ctx_->max_header_bytes) {
        ctx_->stats->Count(Drop::kHeaderBytes);
        ctx_->stats->Count(Anomaly::kHttp2ContinuationFlood);
        d.block_dropped = true;
        Trim(d.block);
      }
      if (!d.block_dropped) d.keep = f.length;
      break;
    case FrameType::kSettings:
      d.keep = std::min(f.length, kMaxControlPayload);
      if ((f.flags & flags::kAck) == 0) CountControl(dir);
      break;
    case FrameType::kRstStream:
      d.keep = 4;
      break;
    case FrameType::kGoaway:
      d.keep = 8;
      break;
    case FrameType::kPing:
      if ((f.flags & flags::kAck) == 0) CountControl(dir);
      break;
    case FrameType::kPriority:
      CountControl(dir);
      break;
    case FrameType::kData:
      if (f.length == 0 && (f.flags & flags::kEndStream) == 0)
        CountControl(dir);
      break;
    default:
      break;  // WINDOW_UPDATE, extension frames: length only
  }
  if (d.keep == 0) OnFrame(dir, nullptr, 0);
  if (d.state == State::kResync) return;  // OnFrame lost sync
  d.state = d.remaining == 0 ? State::kHeader : State::kPayload;
}

size_t Http2Session::FeedPayload(int dir, const uint8_t* p, size_t n) {
  Direction& d = dirs_[dir];
  size_t used = 0;
  if (d.keep > 0) {
    if (d.payload.empty() && n >= d.keep) {
      used = d.keep;
      uint32_t keep = d.keep;
      d.remaining -= keep;
      d.keep = 0;
      OnFrame(dir, p, keep);  // straight from the segment: no copy
    } else {
      size_t take = std::min<size_t>(n, d.keep - d.payload.size());
      d.payload.append(reinterpret_cast<const char*>(p), take);
      used = take;
      if (d.payload.size() < d.keep) return used;
      uint32_t keep = d.keep;
      d.remaining -= keep;
      d.keep = 0;
      std::string payload = std::move(d.payload);
      d.payload.clear();
      OnFrame(dir, reinterpret_cast<const uint8_t*>(payload.data()), keep);
      if (payload.capacity() <= kKeepCapacity) {
        payload.clear();
        d.payload = std::move(payload);  // keep the buffer for the next one
      }
    }
    if (d.state != State::kPayload) return used;
  }
  size_t skip = std::min<size_t>(n - used, d.remaining);
  d.remaining -= static_cast<uint32_t>(skip);
  used += skip;
  if (d.remaining == 0) d.state = State::kHeader;
  return used;
}

size_t Http2Session::FeedResync(int dir, const uint8_t* p, size_t n) {
  Direction& d = dirs_[dir];
  d.resync_buf.append(reinterpret_cast<const char*>(p), n);
  const auto* buf = reinterpret_cast<const uint8_t*>(d.resync_buf.data());
  size_t size = d.resync_buf.size();
  size_t o = 0;
  bool found = false;
  while (o + kFrameHeaderBytes <= size) {
    FrameChain c = CheckFrameChain(buf + o, size - o);
    if (!c.broken && (c.frames >= 2 || (c.frames == 1 && c.ends_exact))) {
      found = true;
      break;
    }
    if (!c.broken) break;  // plausible so far: wait for the rest
    ++o;
  }
  ctx_->stats->undecoded_bytes += o;
  if (!found) {
    d.resync_buf.erase(0, o);
    if (d.resync_buf.size() > kMaxResyncBytes) {
      size_t drop = d.resync_buf.size() - kMaxResyncBytes;
      ctx_->stats->undecoded_bytes += drop;
      d.resync_buf.erase(0, drop);
    }
    return n;
  }
  std::string tail = d.resync_buf.substr(o);
  Trim(d.resync_buf);
  d.state = State::kHeader;
  d.hdr_have = 0;
  OnData(dir, reinterpret_cast<const uint8_t*>(tail.data()), tail.size());
  return n;
}

void Http2Session::OnFrame(int dir, const uint8_t* p, size_t len) {
  Direction& d = dirs_[dir];
  switch (static_cast<FrameType>(d.frame.type)) {
    case FrameType::kHeaders:
    case FrameType::kPushPromise:
      OnHeadersFrame(dir, p, len);
      break;
    case FrameType::kContinuation:
      if (d.in_block && d.frame.stream == d.block_stream)
        OnContinuation(dir, p, len);
      break;
    case FrameType::kSettings:
      OnSettings(dir, p, len);
      break;
    case FrameType::kRstStream:
      OnRstStream(dir);
      break;
    case FrameType::kGoaway:
      OnGoaway(dir, p, len);
      break;
    case FrameType::kData:
      if (d.frame.flags & flags::kEndStream) OnEndStream(dir, d.frame.stream);
      break;
    default:
      break;
  }
}

void Http2Session::OnHeadersFrame(int dir, const uint8_t* p, size_t len) {
  Direction& d = dirs_[dir];
  const FrameHeader& f = d.frame;
  if (!d.block_dropped) {
    // RFC 9113 6.2 / 6.6: [pad length] [priority (5) | promised id (4)]
    // fragment [padding].
    size_t off = 0, pad = 0;
    if (f.flags & flags::kPadded) {
      if (len < 1) {
        d.block_dropped = true;
      } else {
        pad = p[0];
        off = 1;
      }
    }
    if (f.Is(FrameType::kHeaders) && (f.flags & flags::kPriority)) off += 5;
    if (f.Is(FrameType::kPushPromise)) off += 4;
    if (!d.block_dropped && off + pad > len) d.block_dropped = true;
    if (d.block_dropped) {
      ctx_->stats->Count(Anomaly::kHttp2FrameError);
    } else if ((f.flags & flags::kEndHeaders) && d.block.empty()) {
      // The usual case: the whole block in one frame, decoded in place.
      d.in_block = false;
      EndBlock(dir, p + off, len - off - pad);
      return;
    } else {
      d.block.append(reinterpret_cast<const char*>(p + off), len - off - pad);
    }
  }
  if (f.flags & flags::kEndHeaders) {
    d.in_block = false;
    EndBlock(dir, reinterpret_cast<const uint8_t*>(d.block.data()),
             d.block.size());
  }
}

void Http2Session::OnContinuation(int dir, const uint8_t* p, size_t len) {
  Direction& d = dirs_[dir];
  if (!d.block_dropped) d.block.append(reinterpret_cast<const char*>(p), len);
  if (d.frame.flags & flags::kEndHeaders) {
    d.in_block = false;
    EndBlock(dir, reinterpret_cast<const uint8_t*>(d.block.data()),
             d.block.size());
  }
}

void Http2Session::EndBlock(int dir, const uint8_t* block, size_t len) {
  Direction& d = dirs_[dir];
  dirs_[0].control_run = dirs_[1].control_run = 0;
  if (d.hpack == nullptr) {
    d.hpack = std::make_unique<HpackDecoder>(
        HpackDecoder::Limits{ctx_->max_table_bytes,
                             ctx_->max_header_list_bytes},
        ctx_->stats);
  }
  if (d.block_dropped) {
    // Its inserts into the table are unknown: start the table afresh.
    d.hpack->Reset();
    Trim(d.block);
    return;
  }
  HeaderList& h = ctx_->headers_scratch;
  d.hpack->Decode(block, len, &h);
  Trim(d.block);
  if (d.block_is_push) return;  // decoded for the table; not a client's

  int client = client_;
  if (client < 0) {
    // Mid-stream: the pseudo-fields tell a request from a response; else
    // the side opening a stream is the client.
    bool has_status = false, has_method = false;
    for (size_t i = 0; i < h.size(); ++i) {
      std::string_view n = h.name(i);
      if (n.empty() || n[0] != ':') break;
      has_status |= n == ":status";
      has_method |= n == ":method";
    }
    if (has_status) {
      client = 1 - dir;
    } else if (has_method || Find(d.block_stream) == nullptr) {
      client = dir;
    } else {
      client = 1 - dir;
    }
    SetClientSide(client);
  }
  if (dir == client) {
    OnRequestBlock(dir, d.block_stream, d.block_end_stream);
  } else {
    OnResponseBlock(dir, d.block_stream, d.block_end_stream);
  }
}

void Http2Session::OnRequestBlock(int dir, uint32_t id, bool end_stream) {
  if (id % 2 == 0) {
    ctx_->stats->Count(Anomaly::kHttp2StreamError);  // clients open odd ids
    return;
  }
  if (Find(id) != nullptr) return;  // the request's trailers
  const HeaderList& h = ctx_->headers_scratch;
  analyzer::Request req;
  std::vector<analyzer::Header>& views = ctx_->view_scratch;
  views.clear();
  std::string_view content_type;
  for (size_t i = 0; i < h.size(); ++i) {
    std::string_view n = h.name(i), v = h.value(i);
    if (!n.empty() && n[0] == ':') {
      if (n == ":method") {
        req.method = v;
      } else if (n == ":path") {
        req.target = v;
      } else if (n == ":authority") {
        req.authority = v;
      }
      continue;
    }
    if (n == "content-type") content_type = v;
    views.push_back({n, v});
  }
  bool grpc = util::StartsWith(content_type, "application/grpc");
  ++ctx_->stats->http2_requests;
  if (grpc) ++ctx_->stats->grpc_requests;
  req.protocol = grpc ? analyzer::Protocol::kGrpc : analyzer::Protocol::kHttp2;
  req.source = ctx_->source;
  req.headers = views.data();
  req.num_headers = views.size();
  req.client = &ends_[dir];
  req.server = &ends_[1 - dir];
  req.ts_us = ctx_->clock->now_us;
  std::unique_ptr<analyzer::PendingRequest> observed =
      ctx_->observer->OnRequest(req);
  if (streams_.size() >= ctx_->max_streams) {
    // Over the bound: the uses go out now, without a status.
    ctx_->stats->Count(Drop::kHttp2Streams);
    if (observed) observed->Complete({0, ctx_->clock->now_us, std::nullopt});
    return;
  }
  Stream& s = streams_.emplace_back();
  s.id = id;
  s.grpc = grpc;
  s.observed = std::move(observed);
  (void)end_stream;  // the request's end does not end the exchange
}

void Http2Session::OnResponseBlock(int dir, uint32_t id, bool end_stream) {
  (void)dir;
  const HeaderList& h = ctx_->headers_scratch;
  std::optional<uint32_t> status, grpc_status;
  for (size_t i = 0; i < h.size(); ++i) {
    std::string_view n = h.name(i);
    if (n == ":status") {
      status = ParseCode(h.value(i), 3);
    } else if (n == "grpc-status") {
      grpc_status = ParseCode(h.value(i), 5);
    }
  }
  Stream* s = Find(id);
  bool interim = status && *status >= 100 && *status < 200;
  if (s == nullptr) {
    // A stream opened before watching began (or not tracked).
    if (!interim && status) ++ctx_->stats->http2_responses;
    return;
  }
  s->answered = true;
  if (!s->final_head) {
    if (interim && !end_stream) return;  // 100 Continue, 103 Early Hints
    s->final_head = true;
    s->status = status.value_or(0);
    ++ctx_->stats->http2_responses;
  }
  if (grpc_status) s->grpc_status = grpc_status;
  if (end_stream) {
    Complete(*s);
    Erase(id);
  }
}

void Http2Session::OnEndStream(int dir, uint32_t id) {
  if (client_ < 0 || dir == client_) return;
  Stream* s = Find(id);
  if (s == nullptr) return;
  Complete(*s);
  Erase(id);
}

void Http2Session::OnSettings(int dir, const uint8_t* p, size_t len) {
  Direction& d = dirs_[dir];
  if (d.frame.flags & flags::kAck) {
    // This side acknowledges what the other announced: its encoder now
    // keeps the table the other side's decoder allows.
    Direction& peer = dirs_[1 - dir];
    if (peer.announced_table_size) {
      if (d.hpack == nullptr) {
        d.hpack = std::make_unique<HpackDecoder>(
            HpackDecoder::Limits{ctx_->max_table_bytes,
                                 ctx_->max_header_list_bytes},
            ctx_->stats);
      }
      d.hpack->SetSettingsTableSize(*peer.announced_table_size);
      peer.announced_table_size.reset();
    }
    return;
  }
  for (size_t i = 0; i + 6 <= len; i += 6) {
    uint16_t id = static_cast<uint16_t>(p[i] << 8 | p[i + 1]);
    if (id == kSettingsHeaderTableSize) {
      d.announced_table_size = ReadU32(p + i + 2);
    }
  }
}

void Http2Session::OnRstStream(int dir) {
  uint32_t id = dirs_[dir].frame.stream;
  Stream* s = Find(id);
  if (s == nullptr) return;
  if (dir == client_ && !s->answered &&
      ++resets_before_answer_ >= ctx_->rapid_reset_threshold &&
      !rapid_reset_counted_) {
    ctx_->stats->Count(Anomaly::kHttp2RapidReset);  // CVE-2023-44487
    rapid_reset_counted_ = true;
  }
  Complete(*s);
  Erase(id);
}

void Http2Session::OnGoaway(int dir, const uint8_t* p, size_t len) {
  if (len < 8 || client_ < 0 || dir == client_) return;
  // The server processed no stream above last_stream_id: those requests
  // end here without an answer.
  uint32_t last = ReadU32(p) & 0x7fffffff;
  for (size_t i = 0; i < streams_.size();) {
    if (streams_[i].id > last) {
      Complete(streams_[i]);
      streams_.erase(streams_.begin() + static_cast<ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}

void Http2Session::CountControl(int dir) {
  Direction& d = dirs_[dir];
  if (++d.control_run > ctx_->control_flood_threshold && !d.flood_counted) {
    ctx_->stats->Count(Anomaly::kHttp2ControlFlood);
    d.flood_counted = true;
  }
}

void Http2Session::LoseSync(int dir, Anomaly why) {
  Direction& d = dirs_[dir];
  ctx_->stats->Count(why);
  d.state = State::kResync;
  d.hdr_have = 0;
  d.keep = d.remaining = 0;
  Trim(d.payload);
  d.in_block = false;
  Trim(d.block);
  if (d.hpack) d.hpack->Reset();
}

void Http2Session::OnGap(int dir, uint64_t len) {
  Direction& d = dirs_[dir];
  if (d.state == State::kPayload && d.keep == 0 && len <= d.remaining) {
    // A hole inside a payload we skip anyway (DATA): nothing is lost.
    d.remaining -= static_cast<uint32_t>(len);
    if (d.remaining == 0) d.state = State::kHeader;
    return;
  }
  LoseSync(dir, Anomaly::kTcpContentGap);
  ctx_->stats->Count(Anomaly::kHttp2Resync);
}

Http2Session::Stream* Http2Session::Find(uint32_t id) {
  for (size_t i = streams_.size(); i-- > 0;) {
    if (streams_[i].id == id) return &streams_[i];
  }
  return nullptr;
}

void Http2Session::Complete(Stream& s) {
  if (s.observed == nullptr) return;
  s.observed->Complete(
      {s.status, ctx_->clock->now_us, s.grpc ? s.grpc_status : std::nullopt});
  s.observed.reset();
}

void Http2Session::Erase(uint32_t id) {
  for (size_t i = streams_.size(); i-- > 0;) {
    if (streams_[i].id == id) {
      streams_.erase(streams_.begin() + static_cast<ptrdiff_t>(i));
      return;
    }
  }
}

void Http2Session::Close() {
  for (Stream& s : streams_) Complete(s);
  streams_.clear();
}

size_t Http2Session::MemoryBytes() const {
  size_t n = sizeof(*this) + streams_.capacity() * sizeof(Stream);
  for (const Direction& d : dirs_) {
    n += d.payload.capacity() + d.resync_buf.capacity() + d.block.capacity();
    if (d.hpack) {
      n += sizeof(HpackDecoder) + d.hpack->allocated_bytes() +
           d.hpack->memo_bytes();
    }
  }
  return n;
}

}  // namespace tokenwatch::http2
