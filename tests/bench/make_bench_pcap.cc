// make_bench_pcap: writes the throughput benchmark's input, a synthetic but
// realistic capture of HTTP/1.1 API traffic carrying HS256 bearer tokens.
//
//   make_bench_pcap OUT.pcap [--size-mb N] [--seed S] [--connections N]
//
// The output is a classic pcap (LINKTYPE_ETHERNET, microsecond timestamps)
// of IPv4/TCP: many concurrent keep-alive connections, each with a full
// handshake, request/response exchanges, ACKs and a FIN close, interleaved
// in time order. Sequence and acknowledgement numbers, IPv4 header checksums
// and TCP checksums are correct. Everything is derived from the seed, so a
// given (size, seed, connections) always produces the same bytes. Nothing
// is sent anywhere: the file is the only output. See README.md beside this
// file for what the capture holds.

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <queue>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

constexpr int64_t kStartEpochSeconds = 1795996800;  // 2026-11-30T00:00:00Z
constexpr uint32_t kMss = 1448;  // 1500 MTU - 20 IPv4 - 20 TCP - 12 options
constexpr int kDefaultSizeMb = 600;
constexpr int kTokenCount = 5000;
constexpr int kMaxConcurrent = 2000;
constexpr uint32_t kDelayedAckUs = 40000;

// ---------------------------------------------------------------------------
// Deterministic random numbers: xoshiro256** seeded through splitmix64. The
// standard library's distributions are implementation-defined, so the
// generator uses its own to keep the output identical across toolchains.

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& s : s_) s = SplitMix(seed);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n).
  uint64_t Below(uint64_t n) {
    __extension__ using U128 = unsigned __int128;
    return static_cast<uint64_t>((static_cast<U128>(Next()) * n) >> 64);
  }

  // Uniform in [lo, hi].
  int64_t Range(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo) + 1));
  }

  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  bool Chance(double p) { return Uniform() < p; }

  double Exp(double mean) { return -mean * std::log1p(-Uniform()); }

  // Index drawn with the given weights.
  template <typename T, typename W>
  size_t Weighted(const std::vector<T>& items, W weight) {
    int64_t total = 0;
    for (const auto& it : items) total += weight(it);
    int64_t r = static_cast<int64_t>(Below(static_cast<uint64_t>(total)));
    for (size_t i = 0; i < items.size(); ++i) {
      r -= weight(items[i]);
      if (r < 0) return i;
    }
    return items.size() - 1;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t SplitMix(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  uint64_t s_[4];
};

constexpr char kHexDigits[] = "0123456789abcdef";

void AppendHex(std::string& out, Rng& rng, int chars) {
  while (chars > 0) {
    uint64_t v = rng.Next();
    for (int i = 0; i < 16 && chars > 0; ++i, --chars, v >>= 4) {
      out.push_back(kHexDigits[v & 15]);
    }
  }
}

void AppendUuid(std::string& out, Rng& rng) {
  AppendHex(out, rng, 8);
  out.push_back('-');
  AppendHex(out, rng, 4);
  out.append("-4");
  AppendHex(out, rng, 3);
  out.push_back('-');
  out.push_back("89ab"[rng.Below(4)]);
  AppendHex(out, rng, 3);
  out.push_back('-');
  AppendHex(out, rng, 12);
}

void AppendUint(std::string& out, uint64_t v) {
  char buf[24];
  int n = std::snprintf(buf, sizeof buf, "%" PRIu64, v);
  out.append(buf, static_cast<size_t>(n));
}

// Expands a template: '#' becomes a random decimal digit, '%' a random hex
// digit; every other character is copied.
void AppendTemplate(std::string& out, Rng& rng, std::string_view tmpl) {
  for (char ch : tmpl) {
    if (ch == '#') {
      out.push_back(static_cast<char>('0' + rng.Below(10)));
    } else if (ch == '%') {
      out.push_back(kHexDigits[rng.Below(16)]);
    } else {
      out.push_back(ch);
    }
  }
}

std::string Base64Url(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) |
                 (static_cast<uint8_t>(in[i + 1]) << 8) |
                 static_cast<uint8_t>(in[i + 2]);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (size_t rest = in.size() - i; rest > 0) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    if (rest == 2) out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

// ---------------------------------------------------------------------------
// The simulated deployment.

struct Issuer {
  const char* iss;
  const char* kid;
  const char* secret;  // HS256 key; fixed so a config can verify signatures
  int weight;
};

const std::vector<Issuer> kIssuers = {
    {"https://auth.example.com/", "auth-hs-2026-11",
     "tokenwatch-bench-hs256-auth-example-com-2026-11", 70},
    {"https://sso.corp.example/", "sso-hs-1",
     "tokenwatch-bench-hs256-sso-corp-example-0001", 20},
    {"https://idp.partner.example.net/", "partner-7",
     "tokenwatch-bench-hs256-idp-partner-example-net", 10},
};

enum RespKind : uint8_t {
  kSmallJson,  // 120 B .. 1.6 KB
  kListJson,   // 1.5 .. 8 KB
  kCreated,    // 201 with a small JSON body
  kNoContent,  // 204
  kLarge,      // 24 .. 192 KB: many MSS-sized segments
};

struct Endpoint {
  const char* method;
  const char* path;  // template, see AppendTemplate
  int weight;
  RespKind resp;
  bool authenticated;
  const char* large_type;  // Content-Type of kLarge bodies
};

struct Service {
  const char* host;  // Host header
  uint32_t ip;
  uint16_t port;
  int weight;  // share of connections
  std::vector<const char*> scopes;
  std::vector<Endpoint> endpoints;
  const char* server;  // Server header
};

constexpr uint32_t Ip(int a, int b, int c, int d) {
  return (static_cast<uint32_t>(a) << 24) | (static_cast<uint32_t>(b) << 16) |
         (static_cast<uint32_t>(c) << 8) | static_cast<uint32_t>(d);
}

const std::vector<Service> kServices = {
    {"api.example.com",
     Ip(10, 0, 0, 5),
     8080,
     55,
     {"orders:read", "orders:read orders:write", "orders:read products:read",
      "openid profile orders:read orders:write products:read"},
     {
         {"GET", "/v1/orders?limit=50&cursor=%%%%%%%%%%%%%%%%", 20, kListJson,
          true, nullptr},
         {"GET", "/v1/orders/1########", 25, kSmallJson, true, nullptr},
         {"GET", "/v1/users/me", 10, kSmallJson, true, nullptr},
         {"GET", "/v1/products/SKU-######?fields=price,stock,title", 15,
          kSmallJson, true, nullptr},
         {"POST", "/v1/orders", 8, kCreated, true, nullptr},
         {"PUT", "/v1/orders/1########/items/##", 4, kSmallJson, true, nullptr},
         {"DELETE", "/v1/carts/%%%%%%%%%%%%/items/###", 3, kNoContent, true,
          nullptr},
         {"GET", "/v1/reports/export?month=2026-1#&format=json", 1, kLarge,
          true, "application/json"},
         {"GET", "/v1/status", 1, kSmallJson, false, nullptr},
     },
     "envoy"},
    {"auth.example.com",
     Ip(10, 0, 0, 6),
     8080,
     12,
     {"openid profile", "openid profile email", "openid offline_access"},
     {
         {"GET", "/oauth2/userinfo", 40, kSmallJson, true, nullptr},
         {"POST", "/v1/sessions/refresh", 20, kSmallJson, true, nullptr},
         {"GET", "/v1/sessions?active=true", 10, kListJson, true, nullptr},
         {"GET", "/.well-known/openid-configuration", 3, kSmallJson, false,
          nullptr},
     },
     "nginx/1.22.1"},
    {"billing.example.internal",
     Ip(10, 0, 0, 7),
     80,
     20,
     {"billing:read", "billing:read billing:write", "billing:admin"},
     {
         {"GET", "/v2/invoices/INV-2026########", 30, kSmallJson, true,
          nullptr},
         {"GET", "/v2/accounts/########/balance", 30, kSmallJson, true,
          nullptr},
         {"GET", "/v2/invoices?account=########&status=open", 15, kListJson,
          true, nullptr},
         {"POST", "/v2/payments", 10, kCreated, true, nullptr},
         {"GET", "/v2/invoices/INV-2026########/pdf", 1, kLarge, true,
          "application/pdf"},
     },
     "gunicorn"},
    {"files.example.com",
     Ip(10, 0, 0, 8),
     8080,
     13,
     {"files:read", "files:read files:write"},
     {
         {"GET", "/files/%%%%%%%%%%%%%%%%/metadata", 60, kSmallJson, true,
          nullptr},
         {"GET", "/files/%%%%%%%%%%%%%%%%/content", 2, kLarge, true,
          "application/octet-stream"},
         {"POST", "/files/%%%%%%%%%%%%%%%%/shares", 6, kCreated, true, nullptr},
         {"GET", "/files?folder=%%%%%%%%&page=#", 10, kListJson, true, nullptr},
     },
     "envoy"},
};

struct UserAgent {
  const char* text;
  bool browser;  // sends Accept-Language and (sometimes) cookies
  int weight;
};

const std::vector<UserAgent> kUserAgents = {
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Chrome/131.0.0.0 Safari/537.36",
     true, 25},
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/18.1 Safari/605.1.15",
     true, 10},
    {"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 "
     "Firefox/133.0",
     true, 5},
    {"okhttp/4.12.0", false, 15},
    {"python-requests/2.32.3", false, 12},
    {"Go-http-client/1.1", false, 15},
    {"axios/1.7.7", false, 10},
    {"curl/8.5.0", false, 3},
    {"checkout-service/3.14.2 (+java 21; Apache-HttpClient/5.3)", false, 5},
};

const std::vector<const char*> kClientIds = {
    "web-frontend", "mobile-ios",   "mobile-android", "checkout-service",
    "reporting",    "partner-sync", "billing-worker", "files-gateway"};

struct Token {
  std::string jwt;
  bool expired;
};

// Mints `count` HS256 JWTs per service pool; returns all of them and fills
// `pools[s]` with the indices of the tokens whose audience is service s.
std::vector<Token> MintTokens(Rng& rng, int count,
                              std::vector<std::vector<int>>& pools,
                              int& expired_count) {
  std::vector<Token> tokens;
  tokens.reserve(static_cast<size_t>(count));
  pools.assign(kServices.size(), {});
  expired_count = 0;
  for (int i = 0; i < count; ++i) {
    const size_t svc =
        rng.Weighted(kServices, [](const Service& s) { return s.weight; });
    const Issuer& issuer = kIssuers[rng.Weighted(
        kIssuers, [](const Issuer& x) { return x.weight; })];
    const Service& service = kServices[svc];
    const bool expired = rng.Chance(0.02);
    int64_t iat = kStartEpochSeconds - rng.Range(60, 3300);
    if (expired) iat = kStartEpochSeconds - rng.Range(3700, 80000);
    const int64_t exp = iat + 3600;

    std::string header = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"";
    header += issuer.kid;
    header += "\"}";

    std::string payload = "{\"iss\":\"";
    payload += issuer.iss;
    payload += "\",\"sub\":\"";
    const bool service_account = rng.Chance(0.15);
    if (service_account) {
      payload += "svc-";
      payload += kClientIds[rng.Below(kClientIds.size())];
    } else {
      payload += "user-";
      AppendTemplate(payload, rng, "#######");
    }
    payload += "\",\"aud\":\"";
    payload += service.host;
    payload += "\",\"exp\":";
    AppendUint(payload, static_cast<uint64_t>(exp));
    payload += ",\"iat\":";
    AppendUint(payload, static_cast<uint64_t>(iat));
    payload += ",\"jti\":\"";
    AppendUuid(payload, rng);
    payload += "\",\"scope\":\"";
    payload += service.scopes[rng.Below(service.scopes.size())];
    payload += "\",\"client_id\":\"";
    payload += kClientIds[rng.Below(kClientIds.size())];
    payload += "\"}";

    std::string signing_input = Base64Url(header) + "." + Base64Url(payload);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    const char* key = issuer.secret;
    if (HMAC(EVP_sha256(), key, static_cast<int>(std::strlen(key)),
             reinterpret_cast<const unsigned char*>(signing_input.data()),
             signing_input.size(), mac, &mac_len) == nullptr) {
      std::fprintf(stderr, "make_bench_pcap: HMAC-SHA256 failed\n");
      std::exit(1);
    }
    std::string jwt = std::move(signing_input);
    jwt += '.';
    jwt += Base64Url(
        std::string_view(reinterpret_cast<const char*>(mac), mac_len));
    pools[svc].push_back(i);
    expired_count += expired ? 1 : 0;
    tokens.push_back({std::move(jwt), expired});
  }
  return tokens;
}

// A pool of JSON records; response and request bodies are slices of it, cut
// at record boundaries so every body is well-formed JSON.
class JsonPool {
 public:
  explicit JsonPool(Rng& rng) {
    static const char* kStatuses[] = {"pending",   "paid",      "shipped",
                                      "delivered", "cancelled", "refunded"};
    static const char* kNames[] = {"Espresso beans 1kg", "USB-C cable 2m",
                                   "Desk lamp",          "Notebook A5 dotted",
                                   "Wireless mouse",     "Water bottle 750ml",
                                   "Monitor arm",        "Mechanical keyboard"};
    for (int i = 0; i < 6000; ++i) {
      offsets_.push_back(text_.size());
      text_ += "{\"id\":\"1";
      AppendTemplate(text_, rng, "########");
      text_ += "\",\"status\":\"";
      text_ += kStatuses[rng.Below(6)];
      text_ += "\",\"customer\":\"cus_";
      AppendHex(text_, rng, 14);
      text_ += "\",\"items\":[";
      const int items = static_cast<int>(rng.Range(1, 3));
      for (int k = 0; k < items; ++k) {
        if (k > 0) text_ += ',';
        text_ += "{\"sku\":\"SKU-";
        AppendTemplate(text_, rng, "######");
        text_ += "\",\"name\":\"";
        text_ += kNames[rng.Below(8)];
        text_ += "\",\"qty\":";
        AppendUint(text_, rng.Range(1, 5));
        text_ += ",\"unit_price\":";
        AppendUint(text_, rng.Range(1, 499));
        text_ += '.';
        AppendTemplate(text_, rng, "##");
        text_ += '}';
      }
      char when[32];
      std::snprintf(when, sizeof when, "2026-11-%02dT%02d:%02d:%02dZ",
                    static_cast<int>(rng.Range(1, 29)),
                    static_cast<int>(rng.Range(0, 23)),
                    static_cast<int>(rng.Range(0, 59)),
                    static_cast<int>(rng.Range(0, 59)));
      text_ += "],\"currency\":\"EUR\",\"created_at\":\"";
      text_ += when;
      text_ += "\"}";
      text_ += ',';
    }
    offsets_.push_back(text_.size());
  }

  // Appends `prefix` + records totalling about `size` bytes + `suffix`.
  void AppendBody(std::string& out, Rng& rng, size_t size,
                  std::string_view prefix, std::string_view suffix) const {
    out += prefix;
    const size_t records = offsets_.size() - 1;
    size_t first = rng.Below(records);
    // Pick the first record so that the slice fits before the pool's end.
    const size_t want = std::max<size_t>(size, 1);
    while (first > 0 && text_.size() - offsets_[first] < want) first /= 2;
    auto it = std::lower_bound(offsets_.begin() + first + 1, offsets_.end(),
                               offsets_[first] + want);
    if (it == offsets_.end()) --it;
    // Drop the trailing comma of the last record in the slice.
    out.append(text_, offsets_[first], *it - offsets_[first] - 1);
    out += suffix;
  }

 private:
  std::string text_;
  std::vector<size_t> offsets_;
};

// ---------------------------------------------------------------------------
// TCP connection scripts.

enum : uint8_t { kFin = 0x01, kSyn = 0x02, kPsh = 0x08, kAck = 0x10 };
enum Dir : uint8_t { kC2S = 0, kS2C = 1 };
enum Buf : uint8_t { kNoBuf = 0, kReqBuf = 1, kRespBuf = 2 };

struct Pkt {
  uint64_t t;  // microseconds since the capture's start
  uint32_t seq;
  uint32_t ack;
  uint32_t off;
  uint32_t len;
  uint8_t dir;
  uint8_t flags;
  uint8_t buf;
};

enum class ConnState : uint8_t { kOpen, kClosed };

struct Conn {
  uint32_t cip = 0;
  uint16_t cport = 0;
  size_t svc = 0;
  uint32_t nxt[2] = {0, 0};  // next sequence number per direction
  uint16_t ip_id[2] = {0, 0};
  uint32_t ts_base[2] = {0, 0};
  uint32_t last_tsval[2] = {0, 0};
  uint32_t rtt_us = 0;
  int primary_token = 0;
  size_t ua = 0;
  std::string cookie;  // empty: none
  std::string forwarded_for;
  int requests_left = 0;
  ConnState state = ConnState::kOpen;
  uint64_t next_request_t = 0;
  std::string req;
  std::string resp;
  std::vector<Pkt> q;
  size_t qi = 0;
};

struct Stats {
  uint64_t connections = 0;
  uint64_t requests = 0;
  uint64_t by_method_get = 0;
  uint64_t by_method_post = 0;
  uint64_t by_method_put = 0;
  uint64_t by_method_delete = 0;
  uint64_t token_in_header = 0;
  uint64_t token_in_query = 0;
  uint64_t no_token = 0;
  uint64_t expired_token_uses = 0;
  uint64_t status_200 = 0;
  uint64_t status_201 = 0;
  uint64_t status_204 = 0;
  uint64_t status_401 = 0;
  uint64_t status_404 = 0;
  uint64_t status_503 = 0;
  uint64_t chunked = 0;
  uint64_t large = 0;
  uint64_t server_closes = 0;
  uint64_t request_header_bytes = 0;
  uint64_t request_header_min = UINT64_MAX;
  uint64_t request_header_max = 0;
  uint64_t bearer_requests = 0;
  uint64_t bearer_header_bytes = 0;
};

// ---------------------------------------------------------------------------
// Output.

class PcapWriter {
 public:
  explicit PcapWriter(FILE* f) : f_(f), buf_(kBufSize) {
    // Global header, little-endian: magic, v2.4, thiszone, sigfigs,
    // snaplen, LINKTYPE_ETHERNET.
    Put32(0xa1b2c3d4);
    Put16(2);
    Put16(4);
    Put32(0);
    Put32(0);
    Put32(262144);
    Put32(1);
    bytes_ = n_;
  }

  uint8_t* Reserve(size_t size) {
    if (n_ + size > buf_.size()) Flush();
    return buf_.data() + n_;
  }
  void Commit(size_t size) {
    n_ += size;
    bytes_ += size;
    ++packets_;
  }

  void Flush() {
    if (n_ == 0) return;
    if (std::fwrite(buf_.data(), 1, n_, f_) != n_) {
      std::perror("make_bench_pcap: write");
      std::exit(1);
    }
    n_ = 0;
  }

  uint64_t bytes() const { return bytes_; }
  uint64_t packets() const { return packets_; }

 private:
  static constexpr size_t kBufSize = 8 << 20;

  void Put16(uint16_t v) {
    buf_[n_++] = static_cast<uint8_t>(v);
    buf_[n_++] = static_cast<uint8_t>(v >> 8);
  }
  void Put32(uint32_t v) {
    for (int i = 0; i < 4; ++i) buf_[n_++] = static_cast<uint8_t>(v >> (8 * i));
  }

  FILE* f_;
  std::vector<uint8_t> buf_;
  size_t n_ = 0;
  uint64_t bytes_ = 0;
  uint64_t packets_ = 0;
};

inline void Be16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void Be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline void Le32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}

// Ones'-complement sum of big-endian 16-bit words, not yet folded.
uint64_t SumWords(const uint8_t* p, size_t len) {
  uint64_t sum = 0;
  while (len >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    w = __builtin_bswap64(w);
    sum += (w >> 32) + (w & 0xffffffffu);
    p += 8;
    len -= 8;
  }
  while (len >= 2) {
    sum += (static_cast<uint32_t>(p[0]) << 8) | p[1];
    p += 2;
    len -= 2;
  }
  if (len) sum += static_cast<uint32_t>(p[0]) << 8;
  return sum;
}

uint16_t Fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

// ---------------------------------------------------------------------------
// The generator.

class Generator {
 public:
  Generator(uint64_t seed, uint64_t target_bytes, int concurrency, FILE* out)
      : rng_(seed),
        target_bytes_(target_bytes),
        concurrency_(concurrency),
        writer_(out),
        pool_(rng_) {
    tokens_ = MintTokens(rng_, kTokenCount, pools_, expired_tokens_);
    token_used_.assign(tokens_.size(), false);
    for (int i = 0; i < 600; ++i) {
      client_ips_.push_back(Ip(10, 1, i / 200, 10 + i % 200));
      next_port_.push_back(static_cast<uint16_t>(32768 + rng_.Below(20000)));
    }
    large_blob_.resize(300 * 1024);
    for (auto& b : large_blob_) b = static_cast<char>(rng_.Next() >> 56);
  }

  void Run() {
    conns_.resize(static_cast<size_t>(concurrency_));
    using Entry = std::pair<uint64_t, size_t>;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
    for (size_t i = 0; i < conns_.size(); ++i) {
      // Connections open over the first second, then run independently.
      Open(conns_[i], static_cast<uint64_t>(rng_.Range(0, 1000000)));
      heap.emplace(conns_[i].q[0].t, i);
    }
    while (!heap.empty()) {
      const size_t i = heap.top().second;
      heap.pop();
      Conn& c = conns_[i];
      const Pkt& p = c.q[c.qi++];
      Emit(c, p);
      last_t_ = p.t;
      if (c.qi == c.q.size()) {
        const uint64_t t = p.t;
        c.q.clear();
        c.qi = 0;
        Advance(c, t);
        if (c.q.empty()) continue;  // finished for good
      }
      heap.emplace(c.q[c.qi].t, i);
    }
    writer_.Flush();
  }

  void PrintSummary(const char* path, double seconds) const {
    const double mib = static_cast<double>(writer_.bytes()) / (1 << 20);
    const double span_s = static_cast<double>(last_t_) / 1e6;
    uint64_t distinct = 0;
    for (bool used : token_used_) distinct += used ? 1 : 0;
    std::printf("make_bench_pcap: wrote %s\n", path);
    std::printf("  bytes                %" PRIu64 " (%.1f MiB)\n",
                writer_.bytes(), mib);
    std::printf("  packets              %" PRIu64 "\n", writer_.packets());
    std::printf("  connections          %" PRIu64 " (%d concurrent, %" PRIu64
                " closed by the server)\n",
                stats_.connections, concurrency_, stats_.server_closes);
    std::printf("  requests             %" PRIu64 "\n", stats_.requests);
    std::printf("  methods              GET %" PRIu64 ", POST %" PRIu64
                ", PUT %" PRIu64 ", DELETE %" PRIu64 "\n",
                stats_.by_method_get, stats_.by_method_post,
                stats_.by_method_put, stats_.by_method_delete);
    std::printf("  token_in_header      %" PRIu64 "\n", stats_.token_in_header);
    std::printf("  token_in_query       %" PRIu64 "\n", stats_.token_in_query);
    std::printf("  no_token             %" PRIu64 "\n", stats_.no_token);
    std::printf("  expired_token_uses   %" PRIu64 "\n",
                stats_.expired_token_uses);
    std::printf("  distinct_tokens      %" PRIu64
                " (of %zu minted, %d expired)\n",
                distinct, tokens_.size(), expired_tokens_);
    std::printf("  statuses             200 %" PRIu64 ", 201 %" PRIu64
                ", 204 %" PRIu64 ", 401 %" PRIu64 ", 404 %" PRIu64
                ", 503 %" PRIu64 "\n",
                stats_.status_200, stats_.status_201, stats_.status_204,
                stats_.status_401, stats_.status_404, stats_.status_503);
    std::printf("  chunked_responses    %" PRIu64 "\n", stats_.chunked);
    std::printf("  large_responses      %" PRIu64 "\n", stats_.large);
    if (stats_.requests > 0) {
      std::printf("  request_header_bytes avg %" PRIu64 ", min %" PRIu64
                  ", max %" PRIu64 " (bearer requests avg %" PRIu64 ")\n",
                  stats_.request_header_bytes / stats_.requests,
                  stats_.request_header_min, stats_.request_header_max,
                  stats_.bearer_requests
                      ? stats_.bearer_header_bytes / stats_.bearer_requests
                      : 0);
    }
    std::printf(
        "  simulated_span       %.3f s from 2026-11-30T00:00:00Z "
        "(%.2f M packets/min)\n",
        span_s,
        span_s > 0
            ? static_cast<double>(writer_.packets()) / span_s * 60.0 / 1e6
            : 0.0);
    std::printf("  elapsed              %.2f s (%.0f MiB/s)\n", seconds,
                seconds > 0 ? mib / seconds : 0.0);
  }

 private:
  // --- scripting -----------------------------------------------------------

  // Appends a packet to the connection's script. Data and control flags
  // consume sequence space; the ACK number is everything the peer has sent
  // so far unless `ack_override` is given.
  void Add(Conn& c, uint64_t t, Dir dir, uint8_t flags, Buf buf, uint32_t off,
           uint32_t len, int64_t ack_override = -1) {
    if (!c.q.empty()) t = std::max(t, c.q.back().t);
    Pkt p;
    p.t = t;
    p.dir = dir;
    p.flags = flags;
    p.buf = buf;
    p.off = off;
    p.len = len;
    p.seq = c.nxt[dir];
    p.ack = 0;
    if (flags & kAck) {
      p.ack = ack_override >= 0 ? static_cast<uint32_t>(ack_override)
                                : c.nxt[1 - dir];
    }
    c.nxt[dir] += len + ((flags & kSyn) ? 1 : 0) + ((flags & kFin) ? 1 : 0);
    c.q.push_back(p);
  }

  // Sends `len` bytes of `buf` from `dir` in MSS-sized segments starting at
  // `t`, one every `gap_us` microseconds for full segments. The receiver
  // acknowledges every second segment one `ack_delay_us` later; the ACK of
  // the final segment is left to the caller. Returns the last segment's time.
  uint64_t Transfer(Conn& c, uint64_t t, Dir dir, Buf buf, uint32_t len,
                    uint32_t gap_us, uint32_t ack_delay_us) {
    const Dir peer = dir == kC2S ? kS2C : kC2S;
    pending_acks_.clear();
    size_t next_ack = 0;
    uint64_t ts = t;
    for (uint32_t off = 0; off < len; off += kMss) {
      const uint32_t seg = std::min(kMss, len - off);
      const bool last = off + seg >= len;
      if (off > 0) ts += gap_us;
      while (next_ack < pending_acks_.size() &&
             pending_acks_[next_ack].first <= ts) {
        Add(c, pending_acks_[next_ack].first, peer, kAck, kNoBuf, 0, 0,
            pending_acks_[next_ack].second);
        ++next_ack;
      }
      Add(c, ts, dir, last ? (kAck | kPsh) : kAck, buf, off, seg);
      if (!last && (off / kMss) % 2 == 1) {
        pending_acks_.emplace_back(ts + ack_delay_us, c.nxt[dir]);
      }
    }
    for (; next_ack < pending_acks_.size(); ++next_ack) {
      Add(c, pending_acks_[next_ack].first, peer, kAck, kNoBuf, 0, 0,
          pending_acks_[next_ack].second);
    }
    return ts;
  }

  void Open(Conn& c, uint64_t t) {
    ++stats_.connections;
    const size_t client = rng_.Below(client_ips_.size());
    c.cip = client_ips_[client];
    uint16_t& port = next_port_[client];
    port = static_cast<uint16_t>(port + rng_.Range(1, 7));
    if (port < 32768 || port > 60999) port = 32768;
    c.cport = port;
    c.svc = rng_.Weighted(kServices, [](const Service& s) { return s.weight; });
    const std::vector<int>& pool = pools_[c.svc];
    c.primary_token = pool[rng_.Below(pool.size())];
    c.ua =
        rng_.Weighted(kUserAgents, [](const UserAgent& u) { return u.weight; });
    c.cookie.clear();
    if (kUserAgents[c.ua].browser && rng_.Chance(0.4)) {
      c.cookie = "Cookie: session_id=";
      AppendHex(c.cookie, rng_, 32);
      c.cookie += "; _ga=GA1.2.";
      AppendTemplate(c.cookie, rng_, "1#########.17959#####");
      c.cookie += "\r\n";
    }
    c.forwarded_for.clear();
    if (rng_.Chance(0.4)) {
      c.forwarded_for = "X-Forwarded-For: 198.51.100.";
      AppendUint(c.forwarded_for, rng_.Range(1, 254));
      c.forwarded_for += "\r\n";
    }
    // Mostly in-datacenter clients, some from further away.
    c.rtt_us = static_cast<uint32_t>(
        rng_.Chance(0.8) ? rng_.Range(150, 900) : rng_.Range(2000, 30000));
    c.requests_left = static_cast<int>(std::min(1000.0, 3 + rng_.Exp(50)));
    c.state = ConnState::kOpen;
    c.ip_id[0] = static_cast<uint16_t>(rng_.Next());
    c.ip_id[1] = static_cast<uint16_t>(rng_.Next());
    c.ts_base[0] = static_cast<uint32_t>(rng_.Next());
    c.ts_base[1] = static_cast<uint32_t>(rng_.Next());
    c.last_tsval[0] = c.last_tsval[1] = 0;
    c.nxt[kC2S] = static_cast<uint32_t>(rng_.Next());
    c.nxt[kS2C] = static_cast<uint32_t>(rng_.Next());
    c.q.clear();
    c.qi = 0;

    // Seen from the server side: the SYN arrives, the SYN-ACK leaves at
    // once, the handshake's ACK arrives a round trip later, and the first
    // request right after it.
    Add(c, t, kC2S, kSyn, kNoBuf, 0, 0);
    Add(c, t + 15, kS2C, kSyn | kAck, kNoBuf, 0, 0);
    const uint64_t established = t + 15 + c.rtt_us;
    Add(c, established, kC2S, kAck, kNoBuf, 0, 0);
    Exchange(c, established + static_cast<uint64_t>(rng_.Range(5, 300)));
  }

  // Called when a connection's script has been fully emitted.
  void Advance(Conn& c, uint64_t t) {
    const bool draining = writer_.bytes() >= target_bytes_;
    if (c.state == ConnState::kClosed) {
      if (!draining) Open(c, t + static_cast<uint64_t>(rng_.Exp(20000)) + 1);
      return;
    }
    if (draining || c.requests_left <= 0) {
      // The client closes its idle keep-alive connection.
      const uint64_t fin_t = std::max(c.next_request_t, t + 1);
      Add(c, fin_t, kC2S, kFin | kAck, kNoBuf, 0, 0);
      const uint64_t sfin_t =
          fin_t + static_cast<uint64_t>(rng_.Range(30, 300));
      Add(c, sfin_t, kS2C, kFin | kAck, kNoBuf, 0, 0);
      Add(c, sfin_t + c.rtt_us, kC2S, kAck, kNoBuf, 0, 0);
      c.state = ConnState::kClosed;
      return;
    }
    Exchange(c, std::max(c.next_request_t, t + 1));
  }

  // One request/response exchange starting at `t`; may end with the server
  // closing the connection after a "Connection: close" request.
  void Exchange(Conn& c, uint64_t t) {
    --c.requests_left;
    const bool last = c.requests_left <= 0 && rng_.Chance(0.3);
    const Service& svc = kServices[c.svc];
    const Endpoint& ep = svc.endpoints[rng_.Weighted(
        svc.endpoints, [](const Endpoint& e) { return e.weight; })];
    int token = -1;
    if (ep.authenticated && !rng_.Chance(0.01)) {
      token = c.primary_token;
      if (rng_.Chance(0.15)) {
        const std::vector<int>& pool = pools_[c.svc];
        token = pool[rng_.Below(pool.size())];
      }
    }
    const bool in_query = token >= 0 && rng_.Chance(0.03);
    BuildRequest(c, svc, ep, token, in_query, last);

    const uint32_t req_len = static_cast<uint32_t>(c.req.size());
    const uint64_t req_end = Transfer(c, t, kC2S, kReqBuf, req_len, 12, 20);

    // Server think time; a slow answer is preceded by a delayed ACK.
    uint64_t latency =
        200 + static_cast<uint64_t>(rng_.Exp(ep.resp == kLarge ? 25000 : 6000));
    if (rng_.Chance(0.01))
      latency += static_cast<uint64_t>(rng_.Range(50000, 400000));
    if (latency > kDelayedAckUs) {
      Add(c, req_end + kDelayedAckUs, kS2C, kAck, kNoBuf, 0, 0);
    }

    BuildResponse(c, svc, ep, token, last, req_end + latency);
    const uint32_t resp_len = static_cast<uint32_t>(c.resp.size());
    // Pace bulk data at 150..900 Mbit/s per flow.
    const uint32_t gap =
        static_cast<uint32_t>(kMss * 8 / rng_.Range(150, 900)) + 1;
    const uint64_t resp_end =
        Transfer(c, req_end + latency, kS2C, kRespBuf, resp_len, gap, c.rtt_us);

    if (last) {
      // Server closes after a "Connection: close" exchange; the client ACKs
      // the data and the FIN with its own FIN.
      ++stats_.server_closes;
      Add(c, resp_end + 20, kS2C, kFin | kAck, kNoBuf, 0, 0);
      const uint64_t cfin = resp_end + 20 + c.rtt_us;
      Add(c, cfin, kC2S, kFin | kAck, kNoBuf, 0, 0);
      Add(c, cfin + 20, kS2C, kAck, kNoBuf, 0, 0);
      c.state = ConnState::kClosed;
      return;
    }

    // Client think time: bursts of dependent calls, then pauses.
    const uint64_t think = static_cast<uint64_t>(
        rng_.Chance(0.35) ? static_cast<double>(rng_.Range(300, 30000))
                          : std::min(5e6, rng_.Exp(450000)));
    const uint64_t ack_after =
        static_cast<uint64_t>(rng_.Range(200, kDelayedAckUs));
    if (think > ack_after) {
      Add(c, resp_end + c.rtt_us + ack_after, kC2S, kAck, kNoBuf, 0, 0);
    }
    c.next_request_t = resp_end + c.rtt_us + think;
  }

  void BuildRequest(Conn& c, const Service& svc, const Endpoint& ep, int token,
                    bool in_query, bool last) {
    std::string& r = c.req;
    r.clear();
    r += ep.method;
    r += ' ';
    AppendTemplate(r, rng_, ep.path);
    if (in_query) {
      r += std::strchr(ep.path, '?') ? "&access_token=" : "?access_token=";
      r += tokens_[static_cast<size_t>(token)].jwt;
    }
    r += " HTTP/1.1\r\nHost: ";
    r += svc.host;
    r += "\r\nUser-Agent: ";
    const UserAgent& ua = kUserAgents[c.ua];
    r += ua.text;
    r += "\r\nAccept: application/json, text/plain, */*\r\n"
         "Accept-Encoding: gzip, deflate, br\r\n";
    if (ua.browser) {
      r += "Accept-Language: en-US,en;q=0.9\r\n"
           "Origin: https://app.example.com\r\n";
    }
    if (token >= 0 && !in_query) {
      r += "Authorization: Bearer ";
      r += tokens_[static_cast<size_t>(token)].jwt;
      r += "\r\n";
    }
    r += "X-Request-Id: ";
    AppendUuid(r, rng_);
    r += "\r\ntraceparent: 00-";
    AppendHex(r, rng_, 32);
    r += '-';
    AppendHex(r, rng_, 16);
    r += "-01\r\n";
    r += c.forwarded_for;
    r += c.cookie;

    const bool has_body = std::strcmp(ep.method, "POST") == 0 ||
                          std::strcmp(ep.method, "PUT") == 0;
    body_.clear();
    if (has_body) {
      pool_.AppendBody(body_, rng_, static_cast<size_t>(rng_.Range(60, 600)),
                       "{\"items\":[", "]}");
      r += "Content-Type: application/json\r\nContent-Length: ";
      AppendUint(r, body_.size());
      r += "\r\n";
    }
    r += last ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n";
    const uint64_t header_bytes = r.size();
    r += body_;

    ++stats_.requests;
    stats_.request_header_bytes += header_bytes;
    stats_.request_header_min =
        std::min(stats_.request_header_min, header_bytes);
    stats_.request_header_max =
        std::max(stats_.request_header_max, header_bytes);
    switch (ep.method[0]) {
      case 'G':
        ++stats_.by_method_get;
        break;
      case 'P':
        ++(ep.method[1] == 'O' ? stats_.by_method_post : stats_.by_method_put);
        break;
      default:
        ++stats_.by_method_delete;
    }
    if (token < 0) {
      ++stats_.no_token;
    } else {
      token_used_[static_cast<size_t>(token)] = true;
      if (tokens_[static_cast<size_t>(token)].expired) {
        ++stats_.expired_token_uses;
      }
      if (in_query) {
        ++stats_.token_in_query;
      } else {
        ++stats_.token_in_header;
        ++stats_.bearer_requests;
        stats_.bearer_header_bytes += header_bytes;
      }
    }
  }

  void BuildResponse(Conn& c, const Service& svc, const Endpoint& ep, int token,
                     bool last, uint64_t t) {
    int status = 200;
    const bool expired =
        token >= 0 && tokens_[static_cast<size_t>(token)].expired;
    if (expired || (ep.authenticated && token < 0) || rng_.Chance(0.01)) {
      status = 401;
    } else if (rng_.Chance(0.03)) {
      status = 404;
    } else if (rng_.Chance(0.002)) {
      status = 503;
    } else if (ep.resp == kCreated) {
      status = 201;
    } else if (ep.resp == kNoContent) {
      status = 204;
    }

    body_.clear();
    const char* content_type = "application/json";
    bool chunked = false;
    switch (status) {
      case 401:
        body_ = expired ? "{\"error\":\"invalid_token\",\"error_description\":"
                          "\"The access token expired\"}"
                        : "{\"error\":\"invalid_token\",\"error_description\":"
                          "\"The access token is invalid\"}";
        ++stats_.status_401;
        break;
      case 404:
        body_ = "{\"error\":\"not_found\",\"message\":\"No such resource\"}";
        ++stats_.status_404;
        break;
      case 503:
        body_ = "{\"error\":\"unavailable\",\"retry_after\":1}";
        ++stats_.status_503;
        break;
      case 204:
        ++stats_.status_204;
        break;
      case 201:
        pool_.AppendBody(body_, rng_, static_cast<size_t>(rng_.Range(100, 700)),
                         "{\"data\":", "}");
        ++stats_.status_201;
        break;
      default:
        ++stats_.status_200;
        switch (ep.resp) {
          case kListJson:
            pool_.AppendBody(body_, rng_,
                             static_cast<size_t>(rng_.Range(1500, 8000)),
                             "{\"data\":[", "],\"has_more\":true}");
            chunked = rng_.Chance(0.4);
            break;
          case kLarge: {
            ++stats_.large;
            content_type = ep.large_type;
            const size_t size =
                static_cast<size_t>(rng_.Range(24 << 10, 192 << 10));
            if (std::strcmp(content_type, "application/json") == 0) {
              pool_.AppendBody(body_, rng_, size, "{\"data\":[", "]}");
              chunked = true;
            } else {
              const size_t start = rng_.Below(large_blob_.size() - size);
              body_.assign(large_blob_, start, size);
            }
            break;
          }
          default:
            pool_.AppendBody(body_, rng_,
                             static_cast<size_t>(rng_.Range(120, 1600)),
                             "{\"data\":", "}");
            chunked = rng_.Chance(0.08);
            break;
        }
    }

    std::string& r = c.resp;
    r.clear();
    r += "HTTP/1.1 ";
    switch (status) {
      case 200:
        r += "200 OK";
        break;
      case 201:
        r += "201 Created";
        break;
      case 204:
        r += "204 No Content";
        break;
      case 401:
        r += "401 Unauthorized";
        break;
      case 404:
        r += "404 Not Found";
        break;
      default:
        r += "503 Service Unavailable";
    }
    r += "\r\nDate: ";
    AppendDate(r, t);
    r += "\r\nServer: ";
    r += svc.server;
    r += "\r\n";
    if (status != 204) {
      r += "Content-Type: ";
      r += content_type;
      r += "\r\n";
      if (chunked) {
        r += "Transfer-Encoding: chunked\r\n";
      } else {
        r += "Content-Length: ";
        AppendUint(r, body_.size());
        r += "\r\n";
      }
    }
    if (status == 401) {
      r += "WWW-Authenticate: Bearer realm=\"";
      r += svc.host;
      r += "\", error=\"invalid_token\"\r\n";
    }
    r += "Cache-Control: no-store\r\nVary: Accept-Encoding\r\n";
    if (std::strcmp(svc.server, "envoy") == 0) {
      r += "x-envoy-upstream-service-time: ";
      AppendUint(r, rng_.Range(1, 40));
      r += "\r\n";
    }
    r += last ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n";

    if (chunked) {
      ++stats_.chunked;
      size_t off = 0;
      while (off < body_.size()) {
        const size_t n = std::min(body_.size() - off,
                                  static_cast<size_t>(rng_.Range(1000, 8192)));
        char hex[20];
        const int hn = std::snprintf(hex, sizeof hex, "%zx\r\n", n);
        r.append(hex, static_cast<size_t>(hn));
        r.append(body_, off, n);
        r += "\r\n";
        off += n;
      }
      r += "0\r\n\r\n";
    } else {
      r += body_;
    }
  }

  void AppendDate(std::string& out, uint64_t t_us) {
    const int64_t sec =
        kStartEpochSeconds + static_cast<int64_t>(t_us / 1000000);
    if (sec != date_sec_) {
      date_sec_ = sec;
      const time_t tt = static_cast<time_t>(sec);
      struct tm tm;
      gmtime_r(&tt, &tm);
      char buf[64];
      const size_t n =
          std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
      date_.assign(buf, n);
    }
    out += date_;
  }

  // --- output --------------------------------------------------------------

  void Emit(Conn& c, const Pkt& p) {
    const Service& svc = kServices[c.svc];
    const bool syn = p.flags & kSyn;
    const uint32_t tcp_hl = syn ? 40 : 32;
    const uint32_t ip_len = 20 + tcp_hl + p.len;
    const uint32_t frame_len = 14 + ip_len;
    uint8_t* rec = writer_.Reserve(16 + frame_len);

    const uint64_t sec =
        static_cast<uint64_t>(kStartEpochSeconds) + p.t / 1000000;
    Le32(rec, static_cast<uint32_t>(sec));
    Le32(rec + 4, static_cast<uint32_t>(p.t % 1000000));
    Le32(rec + 8, frame_len);
    Le32(rec + 12, frame_len);

    uint8_t* eth = rec + 16;
    // Clients reach the servers through a router; servers have their own
    // locally administered MACs derived from their IPs.
    static constexpr uint8_t kRouterMac[6] = {0x02, 0x00, 0x0a,
                                              0x01, 0xff, 0x01};
    uint8_t server_mac[6] = {0x02, 0x00, 0x0a,
                             0x00, 0x00, static_cast<uint8_t>(svc.ip & 0xff)};
    const bool c2s = p.dir == kC2S;
    std::memcpy(eth, c2s ? server_mac : kRouterMac, 6);
    std::memcpy(eth + 6, c2s ? kRouterMac : server_mac, 6);
    eth[12] = 0x08;
    eth[13] = 0x00;

    const uint32_t src = c2s ? c.cip : svc.ip;
    const uint32_t dst = c2s ? svc.ip : c.cip;
    uint8_t* ip = eth + 14;
    ip[0] = 0x45;
    ip[1] = 0;
    Be16(ip + 2, ip_len);
    Be16(ip + 4, c.ip_id[p.dir]++);
    Be16(ip + 6, 0x4000);  // DF
    ip[8] = c2s ? 62 : 64;
    ip[9] = 6;
    ip[10] = ip[11] = 0;
    Be32(ip + 12, src);
    Be32(ip + 16, dst);
    Be16(ip + 10, Fold(SumWords(ip, 20)));

    uint8_t* tcp = ip + 20;
    Be16(tcp, c2s ? c.cport : svc.port);
    Be16(tcp + 2, c2s ? svc.port : c.cport);
    Be32(tcp + 4, p.seq);
    Be32(tcp + 8, p.ack);
    tcp[12] = static_cast<uint8_t>((tcp_hl / 4) << 4);
    tcp[13] = p.flags;
    // Scaled windows (shift 7): 1 MiB at the client, 256 KiB at the server.
    uint32_t window = c2s ? 8192 : 2048;
    if (syn) window = c2s ? 64240 : 65160;
    Be16(tcp + 14, window);
    tcp[16] = tcp[17] = 0;
    tcp[18] = tcp[19] = 0;

    const uint32_t tsval = c.ts_base[p.dir] + static_cast<uint32_t>(p.t / 1000);
    const uint32_t tsecr = (p.flags & kAck) ? c.last_tsval[1 - p.dir] : 0;
    c.last_tsval[p.dir] = tsval;
    uint8_t* o = tcp + 20;
    if (syn) {
      o[0] = 2;  // MSS 1460
      o[1] = 4;
      Be16(o + 2, 1460);
      o[4] = 4;  // SACK permitted
      o[5] = 2;
      o[6] = 8;  // timestamps
      o[7] = 10;
      Be32(o + 8, tsval);
      Be32(o + 12, tsecr);
      o[16] = 1;  // NOP
      o[17] = 3;  // window scale 7
      o[18] = 3;
      o[19] = 7;
    } else {
      o[0] = 1;
      o[1] = 1;
      o[2] = 8;
      o[3] = 10;
      Be32(o + 4, tsval);
      Be32(o + 8, tsecr);
    }
    if (p.len > 0) {
      const std::string& b = p.buf == kReqBuf ? c.req : c.resp;
      std::memcpy(tcp + tcp_hl, b.data() + p.off, p.len);
    }
    // Pseudo-header + segment.
    uint64_t sum = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) +
                   6 + tcp_hl + p.len;
    sum += SumWords(tcp, tcp_hl + p.len);
    Be16(tcp + 16, Fold(sum));

    writer_.Commit(16 + frame_len);
  }

  Rng rng_;
  uint64_t target_bytes_;
  int concurrency_;
  PcapWriter writer_;
  JsonPool pool_;
  std::vector<Token> tokens_;
  std::vector<std::vector<int>> pools_;
  int expired_tokens_ = 0;
  std::vector<bool> token_used_;
  std::vector<uint32_t> client_ips_;
  std::vector<uint16_t> next_port_;
  std::string large_blob_;
  std::vector<Conn> conns_;
  std::vector<std::pair<uint64_t, uint32_t>> pending_acks_;
  std::string body_;
  std::string date_;
  int64_t date_sec_ = -1;
  uint64_t last_t_ = 0;
  Stats stats_;
};

[[noreturn]] void Usage(const char* msg) {
  if (msg) std::fprintf(stderr, "make_bench_pcap: %s\n", msg);
  std::fprintf(stderr,
               "usage: make_bench_pcap OUT.pcap [--size-mb N] [--seed S] "
               "[--connections N]\n"
               "  --size-mb N      approximate output size in MiB (default "
               "%d)\n"
               "  --seed S         random seed (default 1)\n"
               "  --connections N  concurrent connections (default: 4 per "
               "MiB, at most %d)\n",
               kDefaultSizeMb, kMaxConcurrent);
  std::exit(2);
}

uint64_t ParseNumber(const char* flag, const char* text, uint64_t min,
                     uint64_t max) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < min ||
      v > max) {
    std::string msg = std::string("bad value for ") + flag + ": '" + text + "'";
    Usage(msg.c_str());
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  const char* out_path = nullptr;
  uint64_t size_mb = kDefaultSizeMb;
  uint64_t seed = 1;
  int64_t connections = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc)
        Usage(("missing value for " + std::string(arg)).c_str());
      return argv[++i];
    };
    if (arg == "--size-mb") {
      size_mb = ParseNumber("--size-mb", value(), 1, 1 << 20);
    } else if (arg == "--seed") {
      seed = ParseNumber("--seed", value(), 0, UINT64_MAX);
    } else if (arg == "--connections") {
      connections = static_cast<int64_t>(
          ParseNumber("--connections", value(), 1, 100000));
    } else if (arg == "-h" || arg == "--help") {
      Usage(nullptr);
    } else if (!arg.empty() && arg[0] == '-') {
      Usage(("unknown option " + std::string(arg)).c_str());
    } else if (out_path == nullptr) {
      out_path = argv[i];
    } else {
      Usage("more than one output file given");
    }
  }
  if (out_path == nullptr) Usage("no output file given");
  if (connections < 0) {
    connections = std::clamp<int64_t>(static_cast<int64_t>(size_mb) * 4, 8,
                                      kMaxConcurrent);
  }

  FILE* f = std::fopen(out_path, "wb");
  if (f == nullptr) {
    std::fprintf(stderr, "make_bench_pcap: cannot open %s: %s\n", out_path,
                 std::strerror(errno));
    return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  Generator gen(seed, size_mb << 20, static_cast<int>(connections), f);
  gen.Run();
  if (std::fclose(f) != 0) {
    std::fprintf(stderr, "make_bench_pcap: closing %s: %s\n", out_path,
                 std::strerror(errno));
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  gen.PrintSummary(out_path, seconds);
  return 0;
}
