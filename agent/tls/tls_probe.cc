#include "agent/tls/tls_probe.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/tls/probe.skel.h"
#include "agent/tls/probe_abi.h"
#include "common/log.h"

namespace tokenwatch::tls {
namespace {

// Bits of CapEff (linux/capability.h).
constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

bool IsDigits(const char* s) {
  if (*s == '\0') return false;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9') return false;
  }
  return true;
}

int64_t WallMinusMonotonicNs() {
  timespec rt{}, mono{};
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  return (int64_t{rt.tv_sec} - mono.tv_sec) * 1000000000 +
         (rt.tv_nsec - mono.tv_nsec);
}

analyzer::Endpoint ToEndpoint(uint16_t family, const uint8_t* addr,
                              uint16_t port) {
  analyzer::Endpoint e;
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) {
    inet_ntop(AF_INET, addr, buf, sizeof(buf));
  } else if (family == AF_INET6) {
    // An IPv4-mapped address is shown as IPv4, as pcap would show it.
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0,    0,
                                        0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(addr, kMapped, 12) == 0) {
      inet_ntop(AF_INET, addr + 12, buf, sizeof(buf));
    } else {
      inet_ntop(AF_INET6, addr, buf, sizeof(buf));
    }
  }
  e.ip = buf;
  e.port = port;
  return e;
}

}  // namespace

std::string MissingCapabilities(uint64_t caps) {
  bool admin = caps & (uint64_t{1} << kCapSysAdmin);
  std::vector<std::string> missing;
  if (!admin) {
    if (!(caps & (uint64_t{1} << kCapBpf))) missing.push_back("CAP_BPF");
    if (!(caps & (uint64_t{1} << kCapPerfmon)))
      missing.push_back("CAP_PERFMON");
  }
  if (!missing.empty()) {
    return absl::StrCat(
        "the TLS probe needs root or CAP_BPF + CAP_PERFMON (missing: ",
        absl::StrJoin(missing, ", "), ")");
  }
  return "";
}

std::string KernelUnsupportedReason() {
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return "the TLS probe needs a kernel with BTF (/sys/kernel/btf/vmlinux is "
           "missing)";
  }
  if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) != 1) {
    return "the TLS probe needs the BPF ring buffer (Linux 5.8 or later)";
  }
  return "";
}

std::vector<std::string> DiscoverTargets(const std::string& proc_root) {
  std::set<std::string> libs, exes;
  DIR* d = opendir(proc_root.c_str());
  if (d == nullptr) return {};
  pid_t self = getpid();
  while (dirent* e = readdir(d)) {
    if (!IsDigits(e->d_name) || std::atoi(e->d_name) == self) continue;
    std::string base = absl::StrCat(proc_root, "/", e->d_name);
    std::ifstream maps(base + "/maps");
    std::string line;
    while (std::getline(maps, line)) {
      size_t slash = line.find('/');
      if (slash == std::string::npos) continue;
      std::string path = line.substr(slash);
      size_t name = path.rfind('/');
      if (path.compare(name, 8, "/libssl.") == 0 &&
          path.find(".so", name) != std::string::npos &&
          path.find(" (deleted)") == std::string::npos) {
        libs.insert(path);
      }
    }
    char exe[4096];
    ssize_t n = readlink((base + "/exe").c_str(), exe, sizeof(exe) - 1);
    if (n > 0) {
      exe[n] = '\0';
      if (std::strstr(exe, " (deleted)") == nullptr) exes.insert(exe);
    }
  }
  closedir(d);
  std::vector<std::string> out(libs.begin(), libs.end());
  out.insert(out.end(), exes.begin(), exes.end());
  return out;
}

struct TlsProbe::Impl {
  tw_probe* skel = nullptr;
  ring_buffer* ring = nullptr;
  std::vector<bpf_link*> links;
  int64_t wall_offset_ns = 0;
  const std::function<void(Chunk&)>* sink = nullptr;
  const ProbeOptions* options = nullptr;
  Chunk chunk;  // reused

  ~Impl() {
    if (ring != nullptr) ring_buffer__free(ring);
    for (bpf_link* l : links) bpf_link__destroy(l);
    if (skel != nullptr) tw_probe::destroy(skel);
  }

  static int OnRecord(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Impl*>(ctx);
    if (size < sizeof(tw_record)) return 0;
    const auto* r = static_cast<const tw_record*>(data);
    if (sizeof(tw_record) + r->len > size) return 0;
    Chunk& c = self->chunk;
    c.kind = r->kind == TW_BIND    ? Chunk::Kind::kBind
             : r->kind == TW_CLOSE ? Chunk::Kind::kClose
                                   : Chunk::Kind::kData;
    c.dir = r->dir == TW_DIR_READ ? Chunk::Dir::kRead : Chunk::Dir::kWrite;
    c.ts_us = (static_cast<int64_t>(r->ts_ns) + self->wall_offset_ns) / 1000;
    c.ssl = r->ssl;
    c.pid = r->tgid;
    c.comm.assign(r->comm, strnlen(r->comm, sizeof(r->comm)));
    for (const std::string& x : self->options->exclude_comm) {
      if (x == c.comm) return 0;
    }
    c.bound = r->tuple.family != 0;
    if (c.bound) {
      c.local = ToEndpoint(r->tuple.family, r->tuple.laddr, r->tuple.lport);
      c.remote = ToEndpoint(r->tuple.family, r->tuple.raddr, r->tuple.rport);
    } else {
      c.local = c.remote = {};
    }
    c.truncated = r->flags & TW_FLAG_TRUNCATED;
    c.orig_len = r->orig_len;
    c.data.assign(reinterpret_cast<const char*>(r + 1), r->len);
    (*self->sink)(c);
    return 0;
  }
};

TlsProbe::TlsProbe(const ProbeOptions& o)
    : options_(o), impl_(std::make_unique<Impl>()) {}

TlsProbe::~TlsProbe() = default;

absl::StatusOr<std::unique_ptr<TlsProbe>> TlsProbe::Open(
    const ProbeOptions& o) {
  if (std::string why = KernelUnsupportedReason(); !why.empty()) {
    return absl::FailedPreconditionError(why);
  }
  std::unique_ptr<TlsProbe> p(new TlsProbe(o));
  Impl& m = *p->impl_;
  m.options = &p->options_;
  m.skel = tw_probe::open();
  if (m.skel == nullptr) {
    return absl::InternalError(absl::StrCat(
        "TLS probe: cannot open the BPF object: ", std::strerror(errno)));
  }
  m.skel->rodata->self_tgid = static_cast<uint32_t>(getpid());
  bpf_map__set_max_entries(m.skel->maps.events, o.ring_bytes);
  if (int err = tw_probe::load(m.skel); err != 0) {
    return absl::InternalError(
        absl::StrCat("TLS probe: the kernel refused the BPF programs: ",
                     std::strerror(-err)));
  }
  for (bpf_program* prog :
       {m.skel->progs.tw_tcp_sendmsg, m.skel->progs.tw_tcp_recvmsg}) {
    bpf_link* l = bpf_program__attach(prog);
    if (l == nullptr) {
      return absl::InternalError(absl::StrCat("TLS probe: cannot attach ",
                                              bpf_program__name(prog), ": ",
                                              std::strerror(errno)));
    }
    m.links.push_back(l);
  }
  m.ring = ring_buffer__new(bpf_map__fd(m.skel->maps.events), &Impl::OnRecord,
                            &m, nullptr);
  if (m.ring == nullptr) {
    return absl::InternalError("TLS probe: cannot open the ring buffer");
  }
  m.wall_offset_ns = WallMinusMonotonicNs();
  if (!o.auto_targets) {
    for (const std::string& t : o.targets) {
      if (absl::Status s = p->Attach(t, true); !s.ok()) return s;
    }
  } else {
    p->Rescan();
  }
  return p;
}

absl::Status TlsProbe::Attach(const std::string& path, bool from_config) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    if (from_config) {
      return absl::NotFoundError(absl::StrCat("agent.tls_probe.targets: ", path,
                                              ": ", std::strerror(errno)));
    }
    return absl::OkStatus();
  }
  auto id = std::make_pair(uint64_t{st.st_dev}, uint64_t{st.st_ino});
  for (const Target& t : targets_) {
    if (t.dev == id.first && t.ino == id.second) return absl::OkStatus();
  }
  if (std::find(not_targets_.begin(), not_targets_.end(), id) !=
      not_targets_.end())
    return absl::OkStatus();
  struct Spec {
    bpf_program* prog;
    const char* func;
    bool ret;
    bool required;
  };
  tw_probe* s = impl_->skel;
  const Spec specs[] = {
      {s->progs.tw_ssl_write_enter, "SSL_write", false, true},
      {s->progs.tw_ssl_write_leave, "SSL_write", true, true},
      {s->progs.tw_ssl_read_enter, "SSL_read", false, true},
      {s->progs.tw_ssl_read_leave, "SSL_read", true, true},
      {s->progs.tw_ssl_write_ex_enter, "SSL_write_ex", false, false},
      {s->progs.tw_ssl_write_ex_leave, "SSL_write_ex", true, false},
      {s->progs.tw_ssl_read_ex_enter, "SSL_read_ex", false, false},
      {s->progs.tw_ssl_read_ex_leave, "SSL_read_ex", true, false},
      {s->progs.tw_ssl_free, "SSL_free", false, false},
  };
  std::vector<bpf_link*> links;
  for (const Spec& sp : specs) {
    bpf_uprobe_opts opts{};
    opts.sz = sizeof(opts);
    opts.func_name = sp.func;
    opts.retprobe = sp.ret;
    bpf_link* l =
        bpf_program__attach_uprobe_opts(sp.prog, -1, path.c_str(), 0, &opts);
    if (l == nullptr) {
      if (!sp.required) continue;
      int err = errno;
      for (bpf_link* x : links) bpf_link__destroy(x);
      if (from_config) {
        return absl::FailedPreconditionError(
            absl::StrCat("agent.tls_probe.targets: ", path, ": cannot probe ",
                         sp.func, ": ", std::strerror(err)));
      }
      not_targets_.push_back(id);  // no OpenSSL in it: never tried again
      return absl::OkStatus();
    }
    links.push_back(l);
  }
  impl_->links.insert(impl_->links.end(), links.begin(), links.end());
  targets_.push_back(
      {path, id.first, id.second, static_cast<int>(links.size())});
  log::Info("TLS probe attached to %s (%d probes)", path,
            static_cast<int>(links.size()));
  return absl::OkStatus();
}

int TlsProbe::Rescan() {
  if (!options_.auto_targets) return 0;
  size_t before = targets_.size();
  // libbpf prints its own failures for executables without OpenSSL.
  libbpf_print_fn_t old = libbpf_set_print(nullptr);
  for (const std::string& path : DiscoverTargets()) {
    (void)Attach(path, false);
  }
  libbpf_set_print(old);
  return static_cast<int>(targets_.size() - before);
}

absl::Status TlsProbe::Poll(int timeout_ms,
                            const std::function<void(Chunk&)>& sink) {
  impl_->sink = &sink;
  // The kernel half wakes this reader only when the ring fills up: the
  // wait is a timer, then whatever arrived is read.
  int n = ring_buffer__poll(impl_->ring, timeout_ms);
  if (n >= 0) n = ring_buffer__consume(impl_->ring);
  impl_->sink = nullptr;
  if (n < 0 && n != -EINTR) {
    return absl::InternalError(
        absl::StrCat("TLS probe: ring buffer poll: ", std::strerror(-n)));
  }
  return absl::OkStatus();
}

ProbeCounters TlsProbe::counters() const {
  ProbeCounters out;
  int fd = bpf_map__fd(impl_->skel->maps.counters);
  int cpus = libbpf_num_possible_cpus();
  if (fd < 0 || cpus <= 0) return out;
  std::vector<uint64_t> v(static_cast<size_t>(cpus));
  uint64_t* fields[] = {&out.ring_full, &out.truncated, &out.read_fail};
  for (uint32_t k = 0; k < 3; ++k) {
    if (bpf_map_lookup_elem(fd, &k, v.data()) != 0) continue;
    for (uint64_t x : v) *fields[k] += x;
  }
  return out;
}

}  // namespace tokenwatch::tls
