// The whole per-packet path of the poll-mode data plane over prebuilt mbufs: classify,
// answer in place, rewrite the headers, as a worker lcore does between rx and tx burst.
// items_per_second = frames answered per second on one core. The EAL is started without
// hugepages or devices, only for the mbuf pool.
#include <benchmark/benchmark.h>
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "control/zone_file.h"
#include "dataplane/handler.h"
#include "dataplane/packet.h"
#include "dataplane/zone/snapshot.h"

namespace {

using namespace tandem;

rte_mempool* Pool() {
  static rte_mempool* pool = [] {
    std::string prefix = absl::StrCat("--file-prefix=tandembench", getpid());
    const char* argv[] = {"tandem_bench", "--no-huge", "-m", "256", "--no-pci", "-l", "0",
                          "--log-level=error", prefix.c_str(), nullptr};
    if (rte_eal_init(9, const_cast<char**>(argv)) < 0) return static_cast<rte_mempool*>(nullptr);
    return rte_pktmbuf_pool_create("bench", 4096, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  }();
  return pool;
}

std::vector<uint8_t> QueryFrame(const std::string& name, uint16_t id) {
  std::vector<uint8_t> f = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00};
  std::vector<uint8_t> dns = {static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    dns.push_back(static_cast<uint8_t>(dot - start));
    dns.insert(dns.end(), name.begin() + start, name.begin() + dot);
    start = dot + 1;
  }
  dns.insert(dns.end(), {0, 0, 1, 0, 1});
  uint16_t udp_len = static_cast<uint16_t>(8 + dns.size());
  uint16_t ip_len = static_cast<uint16_t>(20 + udp_len);
  uint8_t ip[20] = {0x45, 0, static_cast<uint8_t>(ip_len >> 8), static_cast<uint8_t>(ip_len), 0, 0, 0, 0, 64, 17, 0, 0,
                    198, 18, 0, 2, 198, 18, 0, 1};
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += ip[i] << 8 | ip[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  ip[10] = static_cast<uint8_t>(~sum >> 8);
  ip[11] = static_cast<uint8_t>(~sum);
  f.insert(f.end(), ip, ip + 20);
  uint8_t udp[8] = {0x30, 0x39, 0, 53, static_cast<uint8_t>(udp_len >> 8), static_cast<uint8_t>(udp_len), 0, 0};
  f.insert(f.end(), udp, udp + 8);  // checksum 0: none (IPv4)
  f.insert(f.end(), dns.begin(), dns.end());
  return f;
}

// `burst`: the frames go through ProcessFrames together, as the worker lcore hands them
// over; otherwise one ProcessFrame call each (the baseline).
void FramePath(benchmark::State& state, bool burst) {
  rte_mempool* pool = Pool();
  if (pool == nullptr) {
    state.SkipWithError("EAL or mbuf pool unavailable");
    return;
  }
  int names = static_cast<int>(state.range(0));
  std::string text = "$ORIGIN bench.test.\n$TTL 300\n@ SOA ns1 h 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n";
  for (int i = 0; i < names; ++i) absl::StrAppend(&text, "h", i, " A 10.0.", (i >> 8) & 255, ".", i & 255, "\n");
  auto loaded = control::LoadZoneText("bench.test", text, "bench.zone");
  if (!loaded.ok()) std::abort();
  loaded->zone->PreferHugePages();  // as tandemd does once the zone is served
  zone::Snapshot snapshot({loaded->zone});
  dataplane::QueryHandler handler;
  dataplane::WorkerCounters counters;
  dataplane::FrameContext ctx;
  const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 1};
  std::memcpy(ctx.mac, mac, 6);
  ctx.v4[0] = htonl(0xc6120001);  // 198.18.0.1
  ctx.nv4 = 1;

  constexpr int kBurst = 32;
  // Queries for up to 64k different names, spread over the zone.
  constexpr size_t kFrames = 1 << 16;
  std::vector<std::vector<uint8_t>> frames;
  for (size_t i = 0; i < kFrames; ++i)
    frames.push_back(QueryFrame(absl::StrCat("h", (i * 7919) % static_cast<size_t>(names), ".bench.test"), static_cast<uint16_t>(i)));
  rte_mbuf* mbufs[kBurst];
  if (rte_pktmbuf_alloc_bulk(pool, mbufs, kBurst) != 0) {
    state.SkipWithError("mbuf allocation failed");
    return;
  }
  size_t next = 0;
  uint64_t answered = 0;
  for (auto _ : state) {
    // The rx burst: frames land in the mbufs (a NIC's DMA; here a copy).
    for (int k = 0; k < kBurst; ++k) {
      const auto& f = frames[next++ & (kFrames - 1)];
      rte_mbuf* m = mbufs[k];
      std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), f.data(), f.size());
      m->data_len = static_cast<uint16_t>(f.size());
      m->pkt_len = static_cast<uint32_t>(f.size());
    }
    dataplane::RxFrame rx[kBurst];
    for (int k = 0; k < kBurst; ++k) {
      rte_mbuf* m = mbufs[k];
      rx[k] = {rte_pktmbuf_mtod(m, uint8_t*), m->data_len, static_cast<uint32_t>(m->buf_len - m->data_off), 0};
      if (!burst) rx[k].result = dataplane::ProcessFrame(rx[k].data, rx[k].len, rx[k].room, 0, ctx, &snapshot, handler, counters);
    }
    if (burst) dataplane::ProcessFrames(rx, ctx, &snapshot, handler, counters);
    for (int k = 0; k < kBurst; ++k) {
      if (rx[k].result.verdict == dataplane::FrameVerdict::kTransmit) {
        mbufs[k]->data_len = static_cast<uint16_t>(rx[k].result.length);
        ++answered;
      }
    }
  }
  rte_pktmbuf_free_bulk(mbufs, kBurst);
  if (answered != static_cast<uint64_t>(state.iterations()) * kBurst) state.SkipWithError("a frame was not answered");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kBurst);
}
void BM_FramePath(benchmark::State& state) { FramePath(state, true); }
void BM_FramePathSingle(benchmark::State& state) { FramePath(state, false); }
BENCHMARK(BM_FramePath)->Arg(1000)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_FramePathSingle)->Arg(1000)->Arg(100000)->Arg(1000000);

}  // namespace
