// DPDK port setup, the exception path and the worker poll loop.
#include "dataplane/dpdk_port.h"

#include <arpa/inet.h>
#include <rte_bus_vdev.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_cycles.h>
#include <rte_prefetch.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "dataplane/address.h"
#include "dataplane/handler.h"
#include "dataplane/publisher.h"
#include "dataplane/rrl.h"

extern char** environ;

namespace tandem::dataplane {
namespace {

constexpr uint16_t kBurst = 64;  // frames a worker takes per poll of a port (memif_bench.py: +3% over 32)
constexpr uint32_t kKernelPollEvery = 8;  // worker loop rounds per exception-path poll
constexpr uint16_t kRxDesc = 1024;
constexpr uint16_t kTxDesc = 1024;
constexpr unsigned kMbufCache = 256;
constexpr char kTapName[] = "net_tap_tandem";

absl::Status DpdkError(const std::string& what, int rc) {
  return absl::InternalError(absl::StrCat("dpdk: ", what, ": ", rte_strerror(rc < 0 ? -rc : rc)));
}

// Runs a command (iproute2) and waits for it; control-plane setup only.
absl::Status Run(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  if (int rc = posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ); rc != 0)
    return absl::InternalError(absl::StrCat(absl::StrJoin(argv, " "), ": ", strerror(rc)));
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return absl::InternalError(absl::StrCat(absl::StrJoin(argv, " "), " failed"));
  return absl::OkStatus();
}

std::string MacText(const rte_ether_addr& a) {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", a.addr_bytes[0], a.addr_bytes[1],
                         a.addr_bytes[2], a.addr_bytes[3], a.addr_bytes[4], a.addr_bytes[5]);
}

bool HasLcoreArg(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "-l" || a == "-c" || a.rfind("--lcores", 0) == 0 || a.rfind("-l", 0) == 0) return true;
  return false;
}

uint32_t MbufRxFlags(const rte_mbuf* m) {
  uint32_t f = 0;
  if ((m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD) f |= kRxIpChecksumGood;
  if ((m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD) f |= kRxL4ChecksumGood;
  return f;
}

// Sends what it can and frees the rest, counting it.
void SendOrFree(uint16_t port, uint16_t queue, rte_mbuf** pkts, uint16_t n, uint64_t& sent,
                uint64_t& dropped) {
  if (n == 0) return;
  uint16_t done = rte_eth_tx_burst(port, queue, pkts, n);
  sent += done;
  if (done < n) {
    dropped += n - done;
    rte_pktmbuf_free_bulk(pkts + done, n - done);
  }
}

}  // namespace

struct alignas(64) DpdkServer::Lcore {
  unsigned lcore_id = 0;
  uint16_t queue = 0;
  unsigned reader = 0;
  std::vector<uint16_t> ports;            // physical ports, polled in turn
  std::vector<const FrameContext*> contexts;
  int tap = -1;                           // exception port, or -1
  uint16_t tap_peer = 0;                  // the port the exception interface stands for
  SnapshotPublisher* publisher = nullptr;
  const QueryHandler* handler = nullptr;
  const std::atomic<bool>* quit = nullptr;
  std::unique_ptr<RateLimiter> rrl;       // this worker's buckets
  uint64_t tsc_per_ms = 1;
  WorkerCounters counters;

  void PollPort(size_t i, const zone::Snapshot* snapshot);
  void PollKernel();
  int Run();
};

void DpdkServer::Lcore::PollPort(size_t i, const zone::Snapshot* snapshot) {
  uint16_t port = ports[i];
  const FrameContext& ctx = *contexts[i];
  rte_mbuf* pkts[kBurst];
  rte_mbuf* answers[kBurst];
  rte_mbuf* kernel[kBurst];
  uint16_t n = rte_eth_rx_burst(port, queue, pkts, kBurst);
  if (n == 0) return;
  uint16_t na = 0, nk = 0, nd = 0;
  rte_mbuf* drop[kBurst];
  RxFrame frames[kBurst];
  rte_mbuf* framed[kBurst];  // the mbuf of each frame
  uint16_t nf = 0;
  for (uint16_t k = 0; k < n; ++k) {
    rte_mbuf* m = pkts[k];
    // A query spans two cache lines; with a zero-copy port they were last written by the
    // peer's core, and both misses of every frame in the burst are started here.
    const uint8_t* data = rte_pktmbuf_mtod(m, const uint8_t*);
    rte_prefetch0(data);
    rte_prefetch0(data + m->data_len - 1);
    if (m->nb_segs != 1) {  // DNS queries fit one segment; leave the rest to the kernel
      ++counters.rx_packets;
      kernel[nk++] = m;
      continue;
    }
    frames[nf] = {rte_pktmbuf_mtod(m, uint8_t*), m->data_len,
                  static_cast<uint32_t>(m->buf_len - m->data_off), MbufRxFlags(m)};
    framed[nf++] = m;
  }
  ProcessFrames(std::span<RxFrame>(frames, nf), ctx, snapshot, *handler, counters, rrl.get());
  for (uint16_t k = 0; k < nf; ++k) {
    rte_mbuf* m = framed[k];
    const FrameResult& r = frames[k].result;
    switch (r.verdict) {
      case FrameVerdict::kTransmit:
        m->data_len = static_cast<uint16_t>(r.length);
        m->pkt_len = r.length;
        m->ol_flags = 0;
        if (ctx.tx_checksum_offload) {
          m->l2_len = r.l2_len;
          m->l3_len = r.l3_len;
          m->ol_flags = r.ipv4 ? (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM)
                               : (RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM);
        }
        answers[na++] = m;
        break;
      case FrameVerdict::kToKernel:
        kernel[nk++] = m;
        break;
      case FrameVerdict::kDrop:
        drop[nd++] = m;
        break;
    }
  }
  if (nd) rte_pktmbuf_free_bulk(drop, nd);
  SendOrFree(port, queue, answers, na, counters.tx_packets, counters.tx_dropped);
  if (tap >= 0 && port == tap_peer) {
    SendOrFree(static_cast<uint16_t>(tap), queue, kernel, nk, counters.to_kernel, counters.tx_dropped);
  } else if (nk) {
    counters.tx_dropped += nk;  // no exception path for this port
    rte_pktmbuf_free_bulk(kernel, nk);
  }
}

void DpdkServer::Lcore::PollKernel() {
  rte_mbuf* pkts[kBurst];
  uint16_t n = rte_eth_rx_burst(static_cast<uint16_t>(tap), queue, pkts, kBurst);
  SendOrFree(tap_peer, queue, pkts, n, counters.from_kernel, counters.tx_dropped);
}

int DpdkServer::Lcore::Run() {
  publisher->Online(reader);
  for (uint32_t iteration = 0; !quit->load(std::memory_order_relaxed); ++iteration) {
    const zone::Snapshot* snapshot = publisher->Current();  // once per iteration
    if (rrl->enabled()) rrl->SetNow(rte_get_tsc_cycles() / tsc_per_ms);
    for (size_t i = 0; i < ports.size(); ++i) PollPort(i, snapshot);
    // The kernel's traffic (ARP, ICMP, TCP) is light, and polling the empty tap every
    // round took about 6% of a busy worker's time (memif_bench.py): every few rounds will do.
    if (tap >= 0 && iteration % kKernelPollEvery == 0) PollKernel();
    publisher->Quiescent(reader);
  }
  publisher->Offline(reader);
  return 0;
}

DpdkServer::DpdkServer(SnapshotPublisher& publisher, const QueryHandler& handler)
    : publisher_(publisher), handler_(handler) {}

DpdkServer::~DpdkServer() { Stop(); }

absl::StatusOr<std::unique_ptr<DpdkServer>> DpdkServer::Start(const DpdkPortOptions& options,
                                                              SnapshotPublisher& publisher,
                                                              const QueryHandler& handler) {
  std::unique_ptr<DpdkServer> server(new DpdkServer(publisher, handler));
  server->rrl_ = options.rrl;
  if (auto s = server->Init(options); !s.ok()) return s;
  if (auto s = server->SetUpPorts(options); !s.ok()) return s;
  if (auto s = server->SetUpExceptionPath(options); !s.ok()) return s;
  if (auto s = server->Launch(); !s.ok()) return s;
  return server;
}

absl::Status DpdkServer::Init(const DpdkPortOptions& options) {
  std::vector<std::string> args = {"tandemd"};
  args.insert(args.end(), options.eal_args.begin(), options.eal_args.end());
  if (!HasLcoreArg(options.eal_args)) args.push_back(absl::StrCat("-l0-", options.workers));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int rc = rte_eal_init(static_cast<int>(args.size()), argv.data());
  if (rc < 0) return DpdkError(absl::StrCat("EAL init with ", absl::StrJoin(options.eal_args, " ")), rte_errno);
  eal_ready_ = true;
  if (rte_lcore_count() < 2)
    return absl::InvalidArgumentError("dpdk: the EAL has no worker lcore; give -l with at least two cores");
  return absl::OkStatus();
}

absl::Status DpdkServer::SetUpPorts(const DpdkPortOptions& options) {
  unsigned lcores = 0;
  unsigned id;
  RTE_LCORE_FOREACH_WORKER(id) if (lcores < static_cast<unsigned>(options.workers)) ++lcores;
  uint16_t queues = static_cast<uint16_t>(lcores);
  uint16_t port;
  RTE_ETH_FOREACH_DEV(port) {
    rte_eth_dev_info info;
    if (int rc = rte_eth_dev_info_get(port, &info); rc != 0) return DpdkError("device info", rc);
    if (info.max_rx_queues < queues || info.max_tx_queues < queues)
      return absl::InvalidArgumentError(absl::StrCat("dpdk: port ", port, " (", info.driver_name,
                                                     ") has fewer queues than ", queues, " workers"));
    rte_eth_conf conf{};
    bool rss = queues > 1 && info.flow_type_rss_offloads != 0;
    if (rss) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_hf =
          (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    }
    uint64_t csum = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    bool offload = (info.tx_offload_capa & csum) == csum;
    if (offload) conf.txmode.offloads = csum;
    if (int rc = rte_eth_dev_configure(port, queues, queues, &conf); rc != 0)
      return DpdkError(absl::StrCat("configure port ", port), rc);
    int socket = rte_eth_dev_socket_id(port);
    if (socket < 0) socket = 0;
    std::string pool_name = absl::StrCat("tandem_mbufs_", socket);
    rte_mempool* pool = rte_mempool_lookup(pool_name.c_str());
    if (pool == nullptr) {
      unsigned mbufs = 8192 * std::max<unsigned>(2, queues * 2);
      pool = rte_pktmbuf_pool_create(pool_name.c_str(), mbufs, kMbufCache, 0,
                                     RTE_MBUF_DEFAULT_BUF_SIZE, socket);
      if (pool == nullptr) return DpdkError(absl::StrCat("mbuf pool on socket ", socket), rte_errno);
    }
    for (uint16_t q = 0; q < queues; ++q) {
      if (int rc = rte_eth_rx_queue_setup(port, q, kRxDesc, socket, nullptr, pool); rc != 0)
        return DpdkError(absl::StrCat("rx queue ", q, " of port ", port), rc);
      if (int rc = rte_eth_tx_queue_setup(port, q, kTxDesc, socket, nullptr); rc != 0)
        return DpdkError(absl::StrCat("tx queue ", q, " of port ", port), rc);
    }
    if (int rc = rte_eth_dev_start(port); rc != 0) return DpdkError(absl::StrCat("start port ", port), rc);
    rte_ether_addr mac;
    rte_eth_macaddr_get(port, &mac);
    char name[RTE_ETH_NAME_MAX_LEN] = {};
    rte_eth_dev_get_name_by_port(port, name);
    ports_.push_back({port, name, MacText(mac), queues, rss, offload});

    FrameContext ctx;
    std::memcpy(ctx.mac, mac.addr_bytes, 6);
    uint16_t mtu = 1500;
    if (rte_eth_dev_get_mtu(port, &mtu) == 0 && mtu >= 576) ctx.mtu = mtu;
    ctx.tx_checksum_offload = offload;
    for (const auto& a : options.addresses) {
      auto p = ParsePrefix(a);
      if (!p) return absl::InvalidArgumentError(absl::StrCat("dpdk: bad address ", a));
      if (p->family == AF_INET && ctx.nv4 < kMaxFrameAddresses) std::memcpy(&ctx.v4[ctx.nv4++], p->bytes, 4);
      if (p->family == AF_INET6 && ctx.nv6 < kMaxFrameAddresses) std::memcpy(ctx.v6[ctx.nv6++], p->bytes, 16);
    }
    contexts_.push_back(ctx);
  }
  if (ports_.empty())
    return absl::InvalidArgumentError("dpdk: the EAL found no port; add a --vdev or a PCI device to eal_args");
  return absl::OkStatus();
}

absl::Status DpdkServer::SetUpExceptionPath(const DpdkPortOptions& options) {
  if (options.exception_iface.empty()) return absl::OkStatus();
  const PortInfo& first = ports_.front();
  uint16_t queues = first.queues;
  std::string devargs = absl::StrCat("iface=", options.exception_iface, ",mac=", first.mac);
  if (int rc = rte_vdev_init(kTapName, devargs.c_str()); rc != 0)
    return DpdkError(absl::StrCat("exception interface ", options.exception_iface, " (net_tap ", devargs, ")"), rc);
  uint16_t tap;
  if (int rc = rte_eth_dev_get_port_by_name(kTapName, &tap); rc != 0) return DpdkError("exception port", rc);
  rte_eth_conf conf{};
  if (int rc = rte_eth_dev_configure(tap, queues, queues, &conf); rc != 0) return DpdkError("configure exception port", rc);
  rte_mempool* pool = rte_mempool_lookup(absl::StrCat("tandem_mbufs_", std::max(0, rte_eth_dev_socket_id(first.port_id))).c_str());
  for (uint16_t q = 0; q < queues; ++q) {
    if (int rc = rte_eth_rx_queue_setup(tap, q, 512, SOCKET_ID_ANY, nullptr, pool); rc != 0)
      return DpdkError("exception rx queue", rc);
    if (int rc = rte_eth_tx_queue_setup(tap, q, 512, SOCKET_ID_ANY, nullptr); rc != 0)
      return DpdkError("exception tx queue", rc);
  }
  if (int rc = rte_eth_dev_start(tap); rc != 0) return DpdkError("start exception port", rc);
  tap_port_ = tap;
  // The kernel side: up, with the addresses (their prefix gives it a connected route).
  const std::string& iface = options.exception_iface;
  if (auto s = Run({"ip", "link", "set", "dev", iface, "up"}); !s.ok()) return s;
  for (const auto& a : options.addresses) {
    auto p = ParsePrefix(a);
    bool v6 = p && p->family == AF_INET6;
    std::string with_len = a.find('/') == std::string::npos ? absl::StrCat(a, v6 ? "/128" : "/32") : a;
    std::vector<std::string> cmd = {"ip", v6 ? "-6" : "-4", "addr", "replace", with_len, "dev", iface};
    if (v6) cmd.push_back("nodad");
    if (auto s = Run(cmd); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status DpdkServer::Launch() {
  unsigned lcore_id;
  uint16_t queue = 0;
  RTE_LCORE_FOREACH_WORKER(lcore_id) {
    if (queue >= ports_.front().queues) break;
    auto lc = std::make_unique<Lcore>();
    lc->lcore_id = lcore_id;
    lc->queue = queue++;
    for (size_t i = 0; i < ports_.size(); ++i) {
      lc->ports.push_back(ports_[i].port_id);
      lc->contexts.push_back(&contexts_[i]);
    }
    lc->tap = tap_port_;
    lc->tap_peer = ports_.front().port_id;
    lc->publisher = &publisher_;
    lc->handler = &handler_;
    lc->quit = &quit_;
    lc->rrl = std::make_unique<RateLimiter>(rrl_);
    lc->tsc_per_ms = std::max<uint64_t>(rte_get_tsc_hz() / 1000, 1);
    try {
      lc->reader = publisher_.RegisterReader();
    } catch (const std::exception& e) {
      return absl::ResourceExhaustedError(absl::StrCat("dpdk: ", e.what()));
    }
    lcores_.push_back(std::move(lc));
  }
  for (auto& lc : lcores_) {
    int rc = rte_eal_remote_launch([](void* arg) { return static_cast<Lcore*>(arg)->Run(); },
                                   lc.get(), lc->lcore_id);
    if (rc != 0) return DpdkError(absl::StrCat("launch on lcore ", lc->lcore_id), rc);
  }
  running_ = true;
  return absl::OkStatus();
}

void DpdkServer::Stop() {
  quit_.store(true, std::memory_order_relaxed);
  if (running_) {
    rte_eal_mp_wait_lcore();
    running_ = false;
  }
  for (auto& lc : lcores_) publisher_.UnregisterReader(lc->reader);
  lcores_.clear();
  if (!eal_ready_) return;
  for (const PortInfo& p : ports_) {
    rte_eth_dev_stop(p.port_id);
    rte_eth_dev_close(p.port_id);
  }
  if (tap_port_ >= 0) {
    rte_eth_dev_stop(static_cast<uint16_t>(tap_port_));
    rte_eth_dev_close(static_cast<uint16_t>(tap_port_));
    tap_port_ = -1;
  }
  ports_.clear();
  rte_eal_cleanup();
  eal_ready_ = false;
}

WorkerCounters DpdkServer::Totals() const {
  WorkerCounters sum;
  for (const auto& lc : lcores_) sum += lc->counters;
  return sum;
}

std::vector<WorkerCounters> DpdkServer::PerWorker() const {
  std::vector<WorkerCounters> out;
  for (const auto& lc : lcores_) out.push_back(lc->counters);
  return out;
}

std::vector<PortCounters> DpdkServer::PortStats() const {
  std::vector<PortCounters> out;
  if (!running_) return out;
  for (const PortInfo& p : ports_) {
    rte_eth_stats st;
    if (rte_eth_stats_get(p.port_id, &st) != 0) continue;
    out.push_back({p.name, st.ipackets, st.opackets, st.imissed, st.ierrors, st.rx_nombuf, st.oerrors});
  }
  return out;
}

}  // namespace tandem::dataplane
