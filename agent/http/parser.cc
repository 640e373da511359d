#include "agent/http/parser.h"

#include <algorithm>
#include <cstring>

#include "common/strings.h"

namespace tokenwatch::http {
namespace {

constexpr size_t kMaxLineBytes = 4096;  // chunk-size and trailer lines
constexpr size_t kNpos = std::string_view::npos;

// Methods that may start a message when resynchronising: a stricter test
// than the one applied to a head in sync, so body bytes rarely pass.
constexpr std::string_view kKnownMethods[] = {
    "GET",   "POST",  "PUT",     "DELETE",   "HEAD",      "OPTIONS",
    "PATCH", "TRACE", "CONNECT", "PROPFIND", "PROPPATCH", "MKCOL",
    "COPY",  "MOVE",  "LOCK",    "UNLOCK",   "SEARCH",    "REPORT"};

bool IsTokenChar(char c) {
  return util::IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

using util::Trim;

// Offset just past the blank line ending a head, searching from `from`;
// accepts CRLF and bare LF line ends. npos when not yet complete.
size_t FindHeadEnd(const char* p, size_t n, size_t from) {
  while (from < n) {
    const void* nl = std::memchr(p + from, '\n', n - from);
    if (nl == nullptr) return kNpos;
    size_t i = static_cast<const char*>(nl) - p;
    if (i + 1 < n && p[i + 1] == '\n') return i + 2;
    if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') return i + 3;
    from = i + 1;
  }
  return kNpos;
}

bool StartsWithKnownMethod(std::string_view s) {
  for (std::string_view m : kKnownMethods) {
    if (s.size() > m.size() && s.substr(0, m.size()) == m && s[m.size()] == ' ')
      return true;
  }
  return false;
}

bool LooksLikeMessageStart(std::string_view s, Role role) {
  bool req = role != Role::kResponse && StartsWithKnownMethod(s);
  bool resp = role != Role::kRequest && util::StartsWith(s, "HTTP/1.");
  return req || resp;
}

// "HTTP/1.1" → major/minor.
bool ParseVersion(std::string_view v, int* major, int* minor) {
  if (v.size() != 8 || !util::StartsWith(v, "HTTP/") || v[6] != '.' ||
      !util::IsDigit(v[5]) || !util::IsDigit(v[7]))
    return false;
  *major = v[5] - '0';
  *minor = v[7] - '0';
  return true;
}

// Parses a Content-Length value: digits only (surrounding blanks allowed), a
// comma list of identical values accepted (RFC 9110 8.6).
bool ParseContentLength(std::string_view v, uint64_t* out) {
  bool have = false;
  uint64_t first = 0;
  while (true) {
    size_t comma = v.find(',');
    std::string_view part = Trim(v.substr(0, comma));
    if (part.empty()) return false;
    // Leading zeros are digits like any other (Zeek's cl leading-zeros case).
    while (part.size() > 1 && part.front() == '0') part.remove_prefix(1);
    if (part.size() > 18) return false;  // < 10^18
    uint64_t n = 0;
    for (char c : part) {
      if (!util::IsDigit(c)) return false;
      n = n * 10 + (c - '0');
    }
    if (have && n != first) return false;
    first = n;
    have = true;
    if (comma == kNpos) break;
    v.remove_prefix(comma + 1);
  }
  *out = first;
  return true;
}

}  // namespace

std::string_view MessageHead::Find(std::string_view name) const {
  for (size_t i = 0; i < num_headers; ++i) {
    if (util::EqualsIgnoreCase(headers[i].name, name)) return headers[i].value;
  }
  return {};
}

bool MessageHead::Has(std::string_view name) const {
  for (size_t i = 0; i < num_headers; ++i) {
    if (util::EqualsIgnoreCase(headers[i].name, name)) return true;
  }
  return false;
}

void HttpParser::Feed(const uint8_t* data, size_t len) {
  while (len > 0) {
    size_t used = 0;
    switch (state_) {
      case State::kHead:
        used = FeedHead(data, len);
        break;
      case State::kResync:
        used = FeedResync(data, len);
        stats_->undecoded_bytes += used;  // skipped before a message start
        break;
      case State::kBody:
      case State::kChunkData: {
        used = static_cast<size_t>(std::min<uint64_t>(remaining_, len));
        if (state_ == State::kBody && has_mark_ && mark_ >= offset_ &&
            mark_ - offset_ < used) {
          // The other Content-Length reading's next message starts inside
          // this body (a request framed inside the conflict): look there.
          used = static_cast<size_t>(mark_ - offset_);
          resync_after_body_ = false;
          Reset();
          state_ = State::kResync;
          at_line_start_ = true;
          break;
        }
        remaining_ -= used;
        if (remaining_ == 0) {
          if (state_ == State::kBody && resync_after_body_) {
            resync_after_body_ = false;
            Reset();
            state_ = State::kResync;
          } else if (state_ == State::kBody) {
            Reset();
          } else {
            state_ = State::kChunkDataEnd;
          }
        }
        break;
      }
      case State::kChunkSize:
      case State::kChunkDataEnd:
      case State::kTrailers:
        used = FeedLine(data, len);
        break;
      case State::kUntilClose:
        return;
      case State::kTunnel:
        handler_->OnTunnelData(*this, data, len);
        return;
    }
    data += used;
    len -= used;
    offset_ += used;
    if (has_mark_ && offset_ > mark_) has_mark_ = false;  // passed in a head
  }
}

void HttpParser::Finish() {
  if (state_ == State::kHead && !head_buf_.empty()) {
    stats_->Count(Anomaly::kHttpIncompleteHead);
    stats_->undecoded_bytes += head_buf_.size();
  }
  ClearBuffers();
}

size_t HttpParser::FeedHead(const uint8_t* data, size_t len) {
  const char* p = reinterpret_cast<const char*>(data);
  size_t skipped = 0;
  if (head_buf_.empty()) {
    // Blank lines between messages are allowed (RFC 9112 2.2).
    while (skipped < len && (p[skipped] == '\r' || p[skipped] == '\n'))
      ++skipped;
    if (skipped == len) return len;
    p += skipped;
    len -= skipped;
    size_t end = FindHeadEnd(p, len, 0);
    if (end != kNpos) {
      if (end > max_header_bytes_) {
        stats_->Count(Drop::kHeaderBytes);
        LoseSync(Anomaly::kHttpHeaderTooLarge);
        return skipped + end;
      }
      body_start_ = offset_ + skipped + end;
      ParseHead(std::string_view(p, end), /*allow_http09=*/false);
      return skipped + end;
    }
  }
  // The head spans segments: collect it, bounded.
  size_t old = head_buf_.size();
  if (old == 0) first_line_checked_ = false;  // a new head begins
  size_t room = max_header_bytes_ > old ? max_header_bytes_ - old : 0;
  size_t take = std::min(len, room);
  head_buf_.append(p, take);
  size_t end =
      FindHeadEnd(head_buf_.data(), head_buf_.size(), old >= 3 ? old - 3 : 0);
  if (end != kNpos) {
    size_t used_here = end - old;
    std::string block = std::move(head_buf_);
    head_buf_.clear();
    block.resize(end);
    body_start_ = offset_ + skipped + used_here;
    ParseHead(block, /*allow_http09=*/false);
    return skipped + used_here;
  }
  // HTTP/0.9: a lone request line without a version has no blank line.
  // Checked once, on the segment that completes the first line: checking on
  // every segment rescanned a long first line each time (quadratic in
  // max_header_bytes; hostile_test LongRequestLine...).
  size_t nl = first_line_checked_ || role_ == Role::kResponse
                  ? kNpos
                  : head_buf_.find('\n', old);
  if (nl != kNpos) {
    first_line_checked_ = true;
    std::string_view first(head_buf_.data(), nl + 1);
    if (first.find(" HTTP/") == kNpos && StartsWithKnownMethod(first)) {
      std::string block(first);
      size_t used_here = nl + 1 - old;
      head_buf_.clear();
      ParseHead(block, /*allow_http09=*/true);
      return skipped + used_here;
    }
  }
  if (take < len || head_buf_.size() >= max_header_bytes_) {
    stats_->Count(Drop::kHeaderBytes);
    LoseSync(Anomaly::kHttpHeaderTooLarge);
  }
  return skipped + take;
}

size_t HttpParser::FeedResync(const uint8_t* data, size_t len) {
  const char* p = reinterpret_cast<const char*>(data);
  size_t pos = 0;
  while (pos < len) {
    // The other Content-Length reading's message boundary counts as a line
    // start, even mid-line.
    if (has_mark_ && offset_ + pos == mark_) {
      has_mark_ = false;
      at_line_start_ = true;
    }
    size_t limit = len;
    if (has_mark_ && mark_ > offset_ + pos) {
      limit = static_cast<size_t>(std::min<uint64_t>(len, mark_ - offset_));
    }
    if (!at_line_start_) {
      const void* nl = std::memchr(p + pos, '\n', limit - pos);
      pos = nl == nullptr ? limit : static_cast<const char*>(nl) - p + 1;
      at_line_start_ = nl != nullptr;
      continue;
    }
    if (LooksLikeMessageStart(std::string_view(p + pos, len - pos), role_)) {
      state_ = State::kHead;
      head_buf_.clear();
      return pos;
    }
    at_line_start_ = false;
  }
  return len;
}

bool HttpParser::ParseHead(std::string_view block, bool allow_http09) {
  MessageHead& h = *head_;
  h.num_headers = 0;
  h.method = h.target = {};
  h.status = 0;
  size_t nl = block.find('\n');
  std::string_view start = Trim(block.substr(0, nl));
  std::string_view rest =
      nl == kNpos ? std::string_view() : block.substr(nl + 1);

  bool as_response =
      role_ != Role::kRequest && util::StartsWith(start, "HTTP/");
  if (as_response) {
    // HTTP/1.1 SP 3DIGIT [SP reason]
    size_t sp = start.find(' ');
    std::string_view code =
        sp == kNpos ? std::string_view() : Trim(start.substr(sp + 1, 4));
    if (!ParseVersion(start.substr(0, sp), &h.version_major,
                      &h.version_minor) ||
        code.size() != 3 || !util::IsDigit(code[0]) ||
        !util::IsDigit(code[1]) || !util::IsDigit(code[2])) {
      LoseSync(Anomaly::kHttpBadStatusLine);
      return false;
    }
    h.is_request = false;
    h.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
  } else {
    if (role_ == Role::kResponse) {
      LoseSync(Anomaly::kHttpBadStatusLine);
      return false;
    }
    // METHOD SP target [SP HTTP/x.y]
    size_t sp1 = start.find(' ');
    if (sp1 == 0 || sp1 == kNpos) {
      LoseSync(Anomaly::kHttpBadRequestLine);
      return false;
    }
    h.method = start.substr(0, sp1);
    for (char c : h.method) {
      if (!IsTokenChar(c)) {
        LoseSync(Anomaly::kHttpBadRequestLine);
        return false;
      }
    }
    std::string_view after = Trim(start.substr(sp1 + 1));
    size_t sp2 = after.rfind(' ');
    if (sp2 == kNpos) {
      if (!allow_http09 || after.empty()) {
        LoseSync(Anomaly::kHttpBadRequestLine);
        return false;
      }
      stats_->Count(Anomaly::kHttpVersion09);
      h.target = after;
      h.version_major = 0;
      h.version_minor = 9;
    } else {
      h.target = Trim(after.substr(0, sp2));
      if (!ParseVersion(after.substr(sp2 + 1), &h.version_major,
                        &h.version_minor) ||
          h.target.empty()) {
        LoseSync(Anomaly::kHttpBadRequestLine);
        return false;
      }
    }
    h.is_request = true;
    if (h.method == "PRI" && h.target == "*" && h.version_major == 2) {
      // The HTTP/2 connection preface (RFC 9113 3.4): not an HTTP/1
      // request; frames follow, which this parser does not read.
      stats_->Count(Anomaly::kHttp2Preface);
      Reset();
      state_ = State::kTunnel;
      handler_->OnOpaqueProtocol(*this);
      return true;
    }
  }
  last_http09_ = h.is_request && h.version_major == 0;

  // Header fields; obsolete line folding extends the previous value.
  while (!rest.empty()) {
    size_t e = rest.find('\n');
    std::string_view line = rest.substr(0, e);
    rest = e == kNpos ? std::string_view() : rest.substr(e + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    if ((line.front() == ' ' || line.front() == '\t') && h.num_headers > 0) {
      Header& prev = h.headers[h.num_headers - 1];
      const char* begin = prev.value.empty() ? line.data() : prev.value.data();
      prev.value =
          Trim(std::string_view(begin, line.data() + line.size() - begin));
      continue;
    }
    size_t colon = line.find(':');
    if (colon == kNpos || colon == 0) continue;  // not a field: ignore it
    if (h.num_headers == MessageHead::kMaxHeaders) {
      stats_->Count(Anomaly::kHttpTooManyHeaders);
      break;
    }
    h.headers[h.num_headers++] = {Trim(line.substr(0, colon)),
                                  Trim(line.substr(colon + 1))};
  }

  if (role_ == Role::kUnknown)
    role_ = h.is_request ? Role::kRequest : Role::kResponse;
  BodyRule rule = handler_->OnMessageHead(*this, h);
  if (state_ == State::kTunnel && rule != BodyRule::kTunnel) {
    return true;  // the handler switched this parser into a tunnel
  }
  SetBodyState(h, rule);
  return true;
}

void HttpParser::SetBodyState(const MessageHead& h, BodyRule rule) {
  Reset();
  switch (rule) {
    case BodyRule::kNone:
      return;
    case BodyRule::kTunnel:
      stats_->Count(Anomaly::kHttpTunnel);
      state_ = State::kTunnel;
      return;
    case BodyRule::kUntilClose:
      state_ = State::kUntilClose;
      return;
    case BodyRule::kFromHeaders:
      break;
  }
  if (h.version_major == 0) return;  // HTTP/0.9 request: no body
  bool chunked = false, have_te = false, have_cl = false, cl_ok = true;
  bool cl_conflict = false;
  uint64_t cl = 0, cl_max = 0;
  for (size_t i = 0; i < h.num_headers; ++i) {
    const Header& f = h.headers[i];
    if (util::EqualsIgnoreCase(f.name, "transfer-encoding")) {
      have_te = true;
      if (util::ContainsIgnoreCase(f.value, "chunked")) chunked = true;
    } else if (util::EqualsIgnoreCase(f.name, "content-length")) {
      uint64_t v = 0;
      if (!ParseContentLength(f.value, &v)) {
        stats_->Count(Anomaly::kHttpBadContentLength);
        cl_ok = false;
      } else if (have_cl && v != cl) {
        stats_->Count(Anomaly::kHttpMultipleContentLength);
        cl_conflict = true;
        cl_max = std::max(cl_max, v);
        cl = std::min(cl, v);
      } else {
        cl = cl_max = v;
      }
      have_cl = true;
    }
  }
  if (chunked) {
    if (have_cl) stats_->Count(Anomaly::kHttpClAndChunked);
    state_ = State::kChunkSize;
    chunk_size_seen_ = false;
    return;
  }
  if (have_cl && cl_ok) {
    if (cl > 0) {
      state_ = State::kBody;
      remaining_ = cl;
      resync_after_body_ = cl_conflict;
    } else if (cl_conflict) {
      state_ = State::kResync;
      at_line_start_ = true;
    }
    if (cl_conflict) {
      has_mark_ = true;
      mark_ = body_start_ + cl_max;
    }
    return;
  }
  if (have_cl && !cl_ok) {
    // No trustworthy framing: find the next message by its start line.
    LoseSync(Anomaly::kHttpBadContentLength);
    return;
  }
  // A request without length has no body; a response (or one with a
  // transfer coding we do not know) runs until the connection closes.
  if (!h.is_request || have_te) state_ = State::kUntilClose;
}

size_t HttpParser::FeedLine(const uint8_t* data, size_t len) {
  const char* p = reinterpret_cast<const char*>(data);
  const void* nl = std::memchr(p, '\n', len);
  size_t take = nl == nullptr ? len : static_cast<const char*>(nl) - p + 1;
  if (nl == nullptr || !line_buf_.empty()) {
    if (line_buf_.size() + take > kMaxLineBytes) {
      LoseSync(Anomaly::kHttpBadChunkSize);
      return take;
    }
    line_buf_.append(p, take);
    if (nl == nullptr) return take;
    std::string line = std::move(line_buf_);
    line_buf_.clear();
    OnLine(line);
  } else {
    OnLine(std::string_view(p, take));
  }
  return take;
}

void HttpParser::OnLine(std::string_view line) {
  std::string_view t = Trim(line);
  switch (state_) {
    case State::kChunkDataEnd:
      // The CRLF after chunk data; tolerate junk up to the line end.
      state_ = State::kChunkSize;
      return;
    case State::kTrailers:
      if (t.empty()) Reset();
      return;
    case State::kChunkSize: {
      size_t ext = t.find_first_of("; \t");
      std::string_view hex = t.substr(0, ext);
      if (hex.empty() || hex.size() > 15) {  // > 2^60 bytes is no real chunk
        LoseSync(Anomaly::kHttpBadChunkSize);
        return;
      }
      uint64_t n = 0;
      for (char c : hex) {
        int d = util::IsDigit(c)         ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0) {
          LoseSync(Anomaly::kHttpBadChunkSize);
          return;
        }
        n = n * 16 + static_cast<uint64_t>(d);
      }
      if (n == 0) {
        state_ = State::kTrailers;
      } else {
        state_ = State::kChunkData;
        remaining_ = n;
      }
      return;
    }
    default:
      return;
  }
}

void HttpParser::OnGap(uint64_t len) {
  switch (state_) {
    case State::kBody:
    case State::kChunkData:
      if (len <= remaining_) {
        // A hole inside a body loses nothing we need.
        remaining_ -= len;
        if (remaining_ == 0) {
          if (state_ == State::kBody && resync_after_body_) {
            resync_after_body_ = false;
            Reset();
            state_ = State::kResync;
          } else if (state_ == State::kBody) {
            Reset();
          } else {
            state_ = State::kChunkDataEnd;
          }
        }
        return;
      }
      break;
    case State::kUntilClose:
    case State::kTunnel:
      return;
    default:
      break;
  }
  LoseSync(Anomaly::kTcpContentGap);
}

}  // namespace tokenwatch::http
