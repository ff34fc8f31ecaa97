// A DNS load generator on one DPDK port (net_memif in bench/memif_bench.py), on one lcore.
//
//   memif_loadgen [EAL args] -- [--names N] [--duration S] [--count N] [--rate PPS] [--json]
//
// It builds 65536 Ethernet/IPv4/UDP query frames up front, one per DNS id (the id is the
// frame's index), over the zone bench/answer_bench.cc generates: about 75% existing A/AAAA,
// 10% NXDOMAIN, the rest wildcard, CNAME, referral and TXT. Then, on one core:
//
//   wait for the link and a first answer (a probe from another source port)
//   loop: rx burst -> check every reply against the table of outstanding ids
//         tx: bulk-allocate a burst, copy the next templates in, send what the link takes
//             (the rest on a later turn, a microsecond on when the peer's ring was full),
//             optionally paced to --rate
//   after --duration / --count: stop sending, drain replies for --drain-ms, report
//   with --linger: stay connected, idle, until the peer leaves (see Linger)
//
// A reply is correct when its id is outstanding, it echoes the question and its rcode and
// answer count (zero or not) are the ones expected for that query. Every other reply is
// counted as wrong, by what was wrong. lost = sent - received after the drain. Exit status
// 0 when no reply was wrong, 1 otherwise, 2 when the port or the peer never came up.
//
// Two more modes measure the load generator itself: `--mode reflect` swaps the MACs of
// whatever it receives and sends it back (a macswap forwarder, the peer for a ceiling run);
// `--mode echo` generates as usual and expects its own queries back from such a peer.
#include <arpa/inet.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>
#include <rte_prefetch.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr uint16_t kBurstMax = 64;
constexpr uint16_t kRingDesc = 1024;
constexpr uint32_t kIds = 65536;   // one template per DNS id
constexpr uint32_t kStride = 128;  // bytes per template frame
constexpr uint32_t kDnsOffset = 14 + 20 + 8;
constexpr uint16_t kDnsPort = 53;

volatile sig_atomic_t g_quit = 0;

enum class Mode { kDns, kEcho, kReflect };

struct Options {
  Mode mode = Mode::kDns;
  uint16_t port = 0;
  int names = 100000;
  double duration = -1;  // seconds of sending: default 10; reflect: 0, until a signal
  uint64_t count = 0;    // queries to send; 0: no limit
  uint64_t rate = 0;     // packets per second; 0: as fast as the link takes
  uint16_t burst = 32;
  uint32_t drain_ms = 500;
  double tx_backoff_ns = 1000;  // pause of tx attempts after the peer's ring was full
  double wait = 30;             // seconds for the link and a first answer
  bool json = false;
  bool listening = false;  // the port waits for its peer to connect (memif role=server)
  bool linger = false;     // after the report, wait for the peer to leave (see Linger)
  bool edns = false;
  bool verify_checksums = false;
  bool progress = false;
  uint32_t seed = 42;
  rte_ether_addr src_mac{};
  bool src_mac_set = false;
  rte_ether_addr dst_mac{{0x02, 0, 0, 0, 0, 0x01}};
  uint32_t src_ip = 0;  // network byte order
  uint32_t dst_ip = 0;
  uint16_t sport = 10000;  // queries; the readiness probe uses sport + 1
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "memif_loadgen: %s\n"
               "usage: memif_loadgen [EAL args] -- [--mode dns|echo|reflect] [--names N]\n"
               "  [--duration S] [--count N] [--rate PPS] [--burst N] [--drain-ms MS] [--wait S]\n"
               "  [--tx-backoff-ns NS]\n"
               "  [--src-mac MAC] [--dst-mac MAC] [--src-ip A] [--dst-ip A] [--sport P]\n"
               "  [--port ID] [--seed N] [--edns] [--verify-checksums] [--progress] [--listening]\n"
               "  [--linger] [--json]\n",
               why);
  std::exit(2);
}

uint32_t ParseIp(const char* s) {
  in_addr a{};
  if (inet_pton(AF_INET, s, &a) != 1) Usage("bad IPv4 address");
  return a.s_addr;
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  o.src_ip = ParseIp("198.18.0.2");
  o.dst_ip = ParseIp("198.18.0.1");
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) Usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--mode") {
      std::string m = value();
      if (m == "dns")
        o.mode = Mode::kDns;
      else if (m == "echo")
        o.mode = Mode::kEcho;
      else if (m == "reflect")
        o.mode = Mode::kReflect;
      else
        Usage("--mode is dns, echo or reflect");
    } else if (a == "--names") {
      o.names = std::atoi(value());
    } else if (a == "--duration") {
      o.duration = std::atof(value());
    } else if (a == "--count") {
      o.count = std::strtoull(value(), nullptr, 10);
    } else if (a == "--rate") {
      o.rate = static_cast<uint64_t>(std::atof(value()));
    } else if (a == "--burst") {
      o.burst = static_cast<uint16_t>(std::atoi(value()));
    } else if (a == "--drain-ms") {
      o.drain_ms = static_cast<uint32_t>(std::atoi(value()));
    } else if (a == "--tx-backoff-ns") {
      o.tx_backoff_ns = std::atof(value());
    } else if (a == "--wait") {
      o.wait = std::atof(value());
    } else if (a == "--src-mac") {
      if (rte_ether_unformat_addr(value(), &o.src_mac) != 0) Usage("bad --src-mac");
      o.src_mac_set = true;
    } else if (a == "--dst-mac") {
      if (rte_ether_unformat_addr(value(), &o.dst_mac) != 0) Usage("bad --dst-mac");
    } else if (a == "--src-ip") {
      o.src_ip = ParseIp(value());
    } else if (a == "--dst-ip") {
      o.dst_ip = ParseIp(value());
    } else if (a == "--sport") {
      o.sport = static_cast<uint16_t>(std::atoi(value()));
    } else if (a == "--port") {
      o.port = static_cast<uint16_t>(std::atoi(value()));
    } else if (a == "--seed") {
      o.seed = static_cast<uint32_t>(std::atoi(value()));
    } else if (a == "--edns") {
      o.edns = true;
    } else if (a == "--verify-checksums") {
      o.verify_checksums = true;
    } else if (a == "--progress") {
      o.progress = true;
    } else if (a == "--listening") {
      o.listening = true;
    } else if (a == "--linger") {
      o.linger = true;
    } else if (a == "--json") {
      o.json = true;
    } else {
      Usage(("unknown option " + a).c_str());
    }
  }
  if (o.duration < 0) o.duration = o.mode == Mode::kReflect ? 0 : 10;
  if (o.names < 1 || o.burst < 1 || o.burst > kBurstMax) Usage("--names >= 1, 1 <= --burst <= 64");
  return o;
}

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// Ones' complement sum of 16-bit words, folded.
uint16_t Sum16(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (; n > 1; n -= 2, p += 2) sum += static_cast<uint32_t>(p[0] << 8 | p[1]);
  if (n) sum += static_cast<uint32_t>(p[0] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

uint32_t PseudoSum(const uint8_t* ip, uint16_t udp_len) {
  return Sum16(ip + 12, 8) + 17u + udp_len;
}

// --- The query mix ----------------------------------------------------------------------

// What a query should get back: its rcode and whether the answer section is empty.
enum Expect : uint8_t {
  kRcodeMask = 0x0f,
  kAnswers = 0x10,
  kOutstanding = 0x80,  // sent, no reply seen yet
};

struct Query {
  std::string name;
  uint16_t qtype;
  uint8_t expect;
};

// The mix and the zone of bench/answer_bench.cc (MakeMix, MakeZoneText).
Query MixQuery(std::mt19937& rng, int names) {
  int r = static_cast<int>(rng() % 100);
  int h = static_cast<int>(rng() % static_cast<unsigned>(names));
  auto name = [](const char* label, int n, const char* rest) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%d%s.bench.test", label, n, rest);
    return std::string(buf);
  };
  if (r < 60) return {name("h", h, ""), 1, kAnswers};
  if (r < 75) return {name("h", h - h % 4, ""), 28, kAnswers};
  if (r < 85) return {name("nx", h, ""), 1, 3};  // NXDOMAIN
  if (r < 90) return {name("w", h, ".wild"), 1, kAnswers};
  if (r < 94) return {"alias.bench.test", 1, kAnswers};  // CNAME to h1
  if (r < 97) return {name("x", h, ".sub"), 1, 0};       // referral
  return {"txt.bench.test", 16, kAnswers};
}

// Writes an Ethernet/IPv4/UDP/DNS query frame; returns its length.
uint32_t BuildFrame(uint8_t* f, const Options& o, const rte_ether_addr& src_mac, const Query& q,
                    uint16_t id, uint16_t sport, uint8_t* qlen) {
  uint8_t* dns = f + kDnsOffset;
  Put16(dns, id);
  std::memset(dns + 2, 0, 10);
  Put16(dns + 4, 1);
  uint8_t* p = dns + 12;
  size_t start = 0;
  while (start < q.name.size()) {
    size_t dot = q.name.find('.', start);
    if (dot == std::string::npos) dot = q.name.size();
    *p++ = static_cast<uint8_t>(dot - start);
    std::memcpy(p, q.name.data() + start, dot - start);
    p += dot - start;
    start = dot + 1;
  }
  *p++ = 0;
  Put16(p, q.qtype);
  Put16(p + 2, 1);
  p += 4;
  *qlen = static_cast<uint8_t>(p - (dns + 12));
  if (o.edns) {  // OPT: UDP payload size 1232, no flags, no options
    const uint8_t opt[11] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
    std::memcpy(p, opt, sizeof opt);
    p += sizeof opt;
    Put16(dns + 10, 1);
  }
  uint16_t udp_len = static_cast<uint16_t>(p - (f + 34));
  std::memcpy(f, o.dst_mac.addr_bytes, 6);
  std::memcpy(f + 6, src_mac.addr_bytes, 6);
  Put16(f + 12, RTE_ETHER_TYPE_IPV4);
  uint8_t* ip = f + 14;
  const uint8_t ip_head[12] = {0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0};
  std::memcpy(ip, ip_head, 12);
  Put16(ip + 2, static_cast<uint16_t>(20 + udp_len));
  Put16(ip + 4, id);
  std::memcpy(ip + 12, &o.src_ip, 4);
  std::memcpy(ip + 16, &o.dst_ip, 4);
  Put16(ip + 10, static_cast<uint16_t>(~Sum16(ip, 20)));
  uint8_t* udp = ip + 20;
  Put16(udp, sport);
  Put16(udp + 2, kDnsPort);
  Put16(udp + 4, udp_len);
  Put16(udp + 6, 0);
  uint16_t c = static_cast<uint16_t>(~Sum16(udp, udp_len, PseudoSum(ip, udp_len)));
  Put16(udp + 6, c == 0 ? 0xffff : c);
  return static_cast<uint32_t>(p - f);
}

struct Templates {
  std::vector<uint8_t> frames;  // kIds x kStride
  const uint8_t* frames_end = nullptr;
  std::vector<uint8_t> len;     // frame length
  std::vector<uint8_t> qlen;    // question length (name, type, class)
  std::vector<uint8_t> expect;  // Expect bits; kOutstanding set while a query is in flight
  std::vector<uint8_t> probe;   // the readiness probe: the SOA of bench.test
  uint32_t probe_len = 0;
};

Templates BuildTemplates(const Options& o, const rte_ether_addr& src_mac) {
  Templates t;
  t.frames.assign(size_t{kIds} * kStride, 0);
  t.frames_end = t.frames.data() + t.frames.size();
  t.len.resize(kIds);
  t.qlen.resize(kIds);
  t.expect.resize(kIds);
  std::mt19937 rng(o.seed);
  for (uint32_t id = 0; id < kIds; ++id) {
    Query q = MixQuery(rng, o.names);
    t.len[id] = static_cast<uint8_t>(BuildFrame(&t.frames[size_t{id} * kStride], o, src_mac, q,
                                                static_cast<uint16_t>(id), o.sport, &t.qlen[id]));
    t.expect[id] = q.expect;
  }
  t.probe.assign(kStride, 0);
  uint8_t qlen;
  t.probe_len = BuildFrame(t.probe.data(), o, src_mac, {"bench.test", 6, kAnswers}, 0,
                           static_cast<uint16_t>(o.sport + 1), &qlen);
  return t;
}

// --- The port ---------------------------------------------------------------------------

rte_mempool* g_pool = nullptr;

bool LinkUp(uint16_t port) {
  rte_eth_link link{};
  return rte_eth_link_get_nowait(port, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
}

// Configures one RX and one TX queue, starts the port and waits for its link (not the
// reflector: it waits for a peer as long as it runs). A memif client whose server is not
// listening yet fails to start, and connects once per start: starting is retried until
// --wait runs out, unless the port is the listening side (--listening, memif role=server).
bool SetUpPort(const Options& o) {
  if (!rte_eth_dev_is_valid_port(o.port)) {
    std::fprintf(stderr, "memif_loadgen: no port %u (add a --vdev)\n", o.port);
    return false;
  }
  g_pool = rte_pktmbuf_pool_create("loadgen", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                   static_cast<int>(rte_socket_id()));
  rte_eth_conf conf{};
  if (g_pool == nullptr || rte_eth_dev_configure(o.port, 1, 1, &conf) != 0 ||
      rte_eth_rx_queue_setup(o.port, 0, kRingDesc, rte_socket_id(), nullptr, g_pool) != 0 ||
      rte_eth_tx_queue_setup(o.port, 0, kRingDesc, rte_socket_id(), nullptr) != 0) {
    std::fprintf(stderr, "memif_loadgen: port %u setup failed: %s\n", o.port,
                 rte_strerror(rte_errno));
    return false;
  }
  if (o.mode == Mode::kReflect) return rte_eth_dev_start(o.port) == 0;
  uint64_t hz = rte_get_tsc_hz();
  uint64_t deadline = rte_get_tsc_cycles() + static_cast<uint64_t>(o.wait * hz);
  while (!g_quit && rte_get_tsc_cycles() < deadline) {
    if (rte_eth_dev_start(o.port) != 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    uint64_t give_up = o.listening ? deadline : rte_get_tsc_cycles() + 3 * hz;
    while (!g_quit && rte_get_tsc_cycles() < give_up) {
      if (LinkUp(o.port)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    rte_eth_dev_stop(o.port);
  }
  std::fprintf(stderr, "memif_loadgen: port %u did not come up within %.0f s\n", o.port, o.wait);
  return false;
}

// --- The generator ----------------------------------------------------------------------

struct Stats {
  uint64_t sent = 0, received = 0, correct = 0;
  uint64_t wrong_id = 0, wrong_question = 0, wrong_rcode = 0, wrong_answer = 0, bad_checksum = 0;
  uint64_t malformed = 0, other = 0, tx_full = 0, reused = 0, alloc_failed = 0;
  double send_seconds = 0, drain_seconds = 0;
  std::vector<double> answered_by_second;  // correct replies per second, second by second

  uint64_t wrong() const {
    return wrong_id + wrong_question + wrong_rcode + wrong_answer + bad_checksum + malformed;
  }
  uint64_t lost() const { return sent > received ? sent - received : 0; }
};

class Generator {
 public:
  Generator(const Options& o, Templates& t) : o_(o), t_(t), hz_(rte_get_tsc_hz()) {}

  bool WaitReady();
  void Run();
  const Stats& stats() const { return s_; }

 private:
  void Receive();
  void Check(const uint8_t* f, uint32_t len);
  void Send(uint64_t elapsed);
  void Refill(uint64_t elapsed);
  void Progress(uint64_t now);

  const Options& o_;
  Templates& t_;
  uint64_t hz_;
  Stats s_;
  bool echo() const { return o_.mode == Mode::kEcho; }

  rte_mbuf* pending_[kBurstMax];
  uint16_t npending_ = 0, pending_off_ = 0;
  uint32_t next_id_ = 0;  // the template of pending_[pending_off_]
  bool probing_ = false;  // readiness: replies to the probe port count, others are dropped
  bool ready_ = false;
  uint64_t last_report_ = 0, last_sent_ = 0, last_correct_ = 0;
  uint64_t tx_resume_ = 0;  // after the peer's ring was full: no tx attempt before this
  uint64_t backoff_ = static_cast<uint64_t>(o_.tx_backoff_ns * 1e-9 * hz_);
};

// Receives a burst and checks each reply.
void Generator::Receive() {
  rte_mbuf* rx[kBurstMax];
  uint16_t n = rte_eth_rx_burst(o_.port, 0, rx, kBurstMax);
  for (uint16_t k = 0; k < n; ++k) {
    if (k + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(rx[k + 1], void*));
    Check(rte_pktmbuf_mtod(rx[k], const uint8_t*), rx[k]->data_len);
  }
  if (n) rte_pktmbuf_free_bulk(rx, n);
}

void Generator::Check(const uint8_t* f, uint32_t len) {
  const uint8_t* ip = f + 14;
  uint32_t ihl = len >= kDnsOffset ? (ip[0] & 0x0f) * 4u : 0;
  if (len < kDnsOffset + 12 || Get16(f + 12) != RTE_ETHER_TYPE_IPV4 || ip[9] != 17 || ihl < 20 ||
      len < 14 + ihl + 8 + 12) {
    ++s_.other;  // ARP, IPv6 neighbour discovery from the exception interface, ...
    return;
  }
  const uint8_t* udp = ip + ihl;
  uint16_t sport = probing_ ? static_cast<uint16_t>(o_.sport + 1) : o_.sport;
  uint16_t from = echo() ? sport : kDnsPort, to = echo() ? kDnsPort : sport;
  if (Get16(udp) != from || Get16(udp + 2) != to) {
    if (!probing_) ++s_.other;
    return;
  }
  if (probing_) {
    ready_ = ready_ || echo() || (udp[8 + 3] & 0x0f) == 0;
    return;
  }
  ++s_.received;
  uint32_t udp_len = Get16(udp + 4);
  if (udp_len < 8 + 12 || 14 + ihl + udp_len > len) {
    ++s_.malformed;
    return;
  }
  const uint8_t* dns = udp + 8;
  uint16_t id = Get16(dns);
  uint8_t& e = t_.expect[id];
  if (!(e & kOutstanding)) {
    ++s_.wrong_id;  // never sent, or answered twice
    return;
  }
  e &= static_cast<uint8_t>(~kOutstanding);
  uint32_t qlen = t_.qlen[id];
  const uint8_t* question = &t_.frames[size_t{id} * kStride + kDnsOffset + 12];
  bool qr = dns[2] & 0x80;
  if (qr == echo() || Get16(dns + 4) != 1 || udp_len < 8 + 12 + qlen ||
      std::memcmp(dns + 12, question, qlen) != 0) {
    ++s_.wrong_question;
    return;
  }
  if (o_.verify_checksums &&
      (Sum16(ip, ihl) != 0xffff ||
       (Get16(udp + 6) != 0 &&
        Sum16(udp, udp_len, PseudoSum(ip, static_cast<uint16_t>(udp_len))) != 0xffff))) {
    ++s_.bad_checksum;
    return;
  }
  if (!echo()) {
    if ((dns[3] & 0x0f) != (e & kRcodeMask)) {
      ++s_.wrong_rcode;
      return;
    }
    bool answers = Get16(dns + 6) != 0;
    if (answers != static_cast<bool>(e & kAnswers) || (dns[2] & 0x02)) {  // TC: not expected
      ++s_.wrong_answer;
      return;
    }
  }
  ++s_.correct;
}

// Allocates the next burst and copies the templates in: how many, from --rate and --count.
void Generator::Refill(uint64_t elapsed) {
  uint64_t want = o_.burst;
  if (o_.rate) {
    uint64_t due = static_cast<uint64_t>(static_cast<double>(elapsed) / hz_ * o_.rate);
    if (due <= s_.sent) return;
    want = std::min(want, due - s_.sent);
  }
  if (o_.count) want = std::min(want, o_.count - s_.sent);
  if (want == 0) return;
  if (rte_pktmbuf_alloc_bulk(g_pool, pending_, static_cast<unsigned>(want)) != 0) {
    ++s_.alloc_failed;
    return;
  }
  for (uint32_t k = 0; k < want; ++k) {
    uint32_t id = (next_id_ + k) & (kIds - 1);
    rte_mbuf* m = pending_[k];
    // The whole stride, a constant size: vector moves (compilers turn a plain memcpy of
    // this into `rep movs`, slow for 128 bytes); the mbuf's data room is far larger.
    rte_memcpy(rte_pktmbuf_mtod(m, uint8_t*), &t_.frames[size_t{id} * kStride], kStride);
    m->data_len = t_.len[id];
    m->pkt_len = t_.len[id];
  }
  // The next burst's templates (both cache lines of each), while this one is sent.
  const uint8_t* next = &t_.frames[size_t{(next_id_ + want) & (kIds - 1)} * kStride];
  for (uint32_t k = 0; k < want * kStride / 64 && next + k * 64 < t_.frames_end; ++k)
    rte_prefetch0(next + k * 64);
  npending_ = static_cast<uint16_t>(want);
  pending_off_ = 0;
}

// Sends what the link takes of the pending burst; the ids it took become outstanding.
void Generator::Send(uint64_t elapsed) {
  if (npending_ == 0) Refill(elapsed);
  if (npending_ == 0) return;
  uint16_t n = rte_eth_tx_burst(o_.port, 0, pending_ + pending_off_, npending_);
  for (uint16_t k = 0; k < n; ++k) {
    uint8_t& e = t_.expect[(next_id_ + k) & (kIds - 1)];
    if (e & kOutstanding) ++s_.reused;  // its reply never came (counted in lost)
    e |= kOutstanding;
  }
  next_id_ = (next_id_ + n) & (kIds - 1);
  s_.sent += n;
  pending_off_ = static_cast<uint16_t>(pending_off_ + n);
  npending_ = static_cast<uint16_t>(npending_ - n);
  if (npending_) {
    // The peer's ring is full. Polling it again at once would only contend for the cache
    // lines the peer is writing: give it a moment (replies are still received meanwhile).
    ++s_.tx_full;
    tx_resume_ = rte_rdtsc() + backoff_;
  }
}

// Every second: the rates of that second, kept for the report (a shared machine's noise
// shows there) and printed with --progress.
void Generator::Progress(uint64_t now) {
  if (now - last_report_ < hz_) return;
  double secs = static_cast<double>(now - last_report_) / hz_;
  double sent = (s_.sent - last_sent_) / secs, answered = (s_.correct - last_correct_) / secs;
  s_.answered_by_second.push_back(answered);
  if (o_.progress)
    std::fprintf(stderr, "memif_loadgen: sent %.2f Mpps, answered %.2f Mqps\n", sent / 1e6,
                 answered / 1e6);
  last_report_ = now;
  last_sent_ = s_.sent;
  last_correct_ = s_.correct;
}

// Sends the probe (bench.test SOA from sport + 1) every 20 ms until it is answered.
bool Generator::WaitReady() {
  uint64_t deadline = rte_rdtsc() + static_cast<uint64_t>(o_.wait * hz_);
  probing_ = true;
  while (!ready_ && !g_quit && rte_rdtsc() < deadline) {
    rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
    if (m == nullptr) return false;
    std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), t_.probe.data(), t_.probe_len);
    m->data_len = static_cast<uint16_t>(t_.probe_len);
    m->pkt_len = t_.probe_len;
    if (rte_eth_tx_burst(o_.port, 0, &m, 1) != 1) rte_pktmbuf_free(m);
    uint64_t until = rte_rdtsc() + hz_ / 50;
    while (!ready_ && rte_rdtsc() < until) Receive();
  }
  uint64_t until = rte_rdtsc() + hz_ / 50;  // late probe replies
  while (rte_rdtsc() < until) Receive();
  probing_ = false;
  s_ = Stats{};
  return ready_;
}

void Generator::Run() {
  uint64_t start = rte_rdtsc();
  uint64_t stop_at = start + static_cast<uint64_t>(o_.duration * hz_);
  last_report_ = start;
  uint64_t send_end = 0;
  for (;;) {
    Receive();
    uint64_t now = rte_rdtsc();
    if (send_end == 0) {
      if (now >= stop_at || (o_.count && s_.sent >= o_.count) || g_quit) {
        send_end = now;
        if (npending_) rte_pktmbuf_free_bulk(pending_ + pending_off_, npending_);
        npending_ = 0;
      } else if (now >= tx_resume_) {
        Send(now - start);
        Progress(now);
      }
    } else if (s_.received >= s_.sent || now - send_end >= o_.drain_ms * hz_ / 1000) {
      s_.send_seconds = static_cast<double>(send_end - start) / hz_;
      s_.drain_seconds = static_cast<double>(now - send_end) / hz_;
      return;
    }
  }
}

std::string Number(double v, const char* format = "%.0f") {
  char buf[32];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

void Report(const Options& o, const Stats& s) {
  double secs = s.send_seconds > 0 ? s.send_seconds : 1;
  std::string mode = o.mode == Mode::kEcho ? "echo" : "dns";
  const std::pair<const char*, uint64_t> counts[] = {
      {"sent", s.sent},
      {"received", s.received},
      {"correct", s.correct},
      {"wrong", s.wrong()},
      {"lost", s.lost()},
      {"wrong_id", s.wrong_id},
      {"wrong_question", s.wrong_question},
      {"wrong_rcode", s.wrong_rcode},
      {"wrong_answer", s.wrong_answer},
      {"bad_checksum", s.bad_checksum},
      {"malformed", s.malformed},
      {"other", s.other},
      {"tx_full", s.tx_full},
      {"reused", s.reused},
      {"alloc_failed", s.alloc_failed},
  };
  if (o.json) {
    std::string j = "{\"mode\": \"" + mode + "\", \"names\": " + std::to_string(o.names) +
                    ", \"rate\": " + std::to_string(o.rate) +
                    ", \"send_seconds\": " + Number(s.send_seconds, "%.6f");
    for (const auto& [name, value] : counts)
      j += std::string(", \"") + name + "\": " + std::to_string(value);
    j += ", \"sent_pps\": " + Number(s.sent / secs) +
         ", \"received_pps\": " + Number(s.received / secs) +
         ", \"answered_qps\": " + Number(s.correct / secs) + ", \"answered_qps_by_second\": [";
    for (size_t i = 0; i < s.answered_by_second.size(); ++i)
      j += (i ? ", " : "") + Number(s.answered_by_second[i]);
    std::printf("%s]}\n", j.c_str());
    return;
  }
  std::printf("%s mode, %d names, rate %s, %.3f s of sending\n", mode.c_str(), o.names,
              o.rate ? std::to_string(o.rate).c_str() : "max", s.send_seconds);
  for (const auto& [name, value] : counts)
    if (value != 0 || name == std::string("lost") || name == std::string("wrong"))
      std::printf("  %-15s %llu\n", name, static_cast<unsigned long long>(value));
  std::printf("  sent           %.3f Mpps\n  answered       %.3f M/s\n", s.sent / secs / 1e6,
              s.correct / secs / 1e6);
}

// --- The reflector ----------------------------------------------------------------------

// Sends every frame back with its MACs swapped, until a signal or --duration; peers may
// come and go meanwhile.
void Reflect(const Options& o) {
  uint64_t hz = rte_get_tsc_hz(), start = rte_rdtsc();
  uint64_t stop_at = o.duration > 0 ? start + static_cast<uint64_t>(o.duration * hz) : UINT64_MAX;
  uint64_t received = 0, sent = 0;
  rte_mbuf* pkts[kBurstMax];
  while (!g_quit && rte_rdtsc() < stop_at) {
    uint16_t n = rte_eth_rx_burst(o.port, 0, pkts, kBurstMax);
    for (uint16_t k = 0; k < n; ++k) {
      uint8_t* f = rte_pktmbuf_mtod(pkts[k], uint8_t*);
      uint8_t tmp[6];
      std::memcpy(tmp, f, 6);
      std::memcpy(f, f + 6, 6);
      std::memcpy(f + 6, tmp, 6);
    }
    uint16_t done = n ? rte_eth_tx_burst(o.port, 0, pkts, n) : 0;
    if (done < n) rte_pktmbuf_free_bulk(pkts + done, n - done);
    received += n;
    sent += done;
  }
  double secs = static_cast<double>(rte_rdtsc() - start) / hz;
  if (o.json)
    std::printf("{\"mode\": \"reflect\", \"received\": %llu, \"sent\": %llu, \"seconds\": %.3f}\n",
                static_cast<unsigned long long>(received), static_cast<unsigned long long>(sent),
                secs);
  else
    std::printf("reflected %llu of %llu frames in %.3f s\n", static_cast<unsigned long long>(sent),
                static_cast<unsigned long long>(received), secs);
}

// Keeps the port open and unpolled until a signal or until the peer leaves. DPDK 22.11's
// memif unmaps the shared rings from its control thread when the peer disconnects, under
// an lcore that may be polling them (a segfault in librte_net_memif): whichever side
// disconnects first, the other must not be polling. The driver stops the peer (which stops
// its lcores before its port) and only then this process.
void Linger(uint16_t port) {
  std::fflush(stdout);
  while (!g_quit && LinkUp(port)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

void OnSignal(int) { g_quit = 1; }

}  // namespace

int main(int argc, char** argv) {
  int eal = rte_eal_init(argc, argv);
  if (eal < 0) {
    std::fprintf(stderr, "memif_loadgen: EAL init failed: %s\n", rte_strerror(rte_errno));
    return 2;
  }
  Options o = ParseOptions(argc - eal - 1, argv + eal + 1);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  int rc = 0;
  if (!SetUpPort(o)) {
    rc = 2;
  } else if (o.mode == Mode::kReflect) {
    Reflect(o);
  } else {
    rte_ether_addr src = o.src_mac;
    if (!o.src_mac_set) rte_eth_macaddr_get(o.port, &src);
    Templates t = BuildTemplates(o, src);
    Generator g(o, t);
    if (!g.WaitReady()) {
      std::fprintf(stderr, "memif_loadgen: no answer to the probe within %.0f s\n", o.wait);
      rc = 2;
    } else {
      g.Run();
      Report(o, g.stats());
      rc = g.stats().wrong() == 0 ? 0 : 1;
      if (o.linger) Linger(o.port);
    }
  }
  if (rte_eth_dev_is_valid_port(o.port)) {
    rte_eth_dev_stop(o.port);
    rte_eth_dev_close(o.port);
  }
  rte_eal_cleanup();
  return rc;
}
