// The query handler on one core over a generated zone and a query mix: about 75% existing
// A/AAAA, 10% NXDOMAIN, the rest wildcard, CNAME, referral and TXT. items_per_second is
// queries answered per second. Also: zone build rate and bytes of snapshot per name.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "control/zone_file.h"
#include "dataplane/dns/name.h"
#include "dataplane/handler.h"
#include "dataplane/zone/pools.h"
#include "dataplane/zone/snapshot.h"

namespace {

using namespace tandem;

std::string MakeZoneText(int names) {
  std::string z = "$ORIGIN bench.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n"
                  "@ NS ns1\nns1 A 192.0.2.1\n*.wild A 192.0.2.2\nalias CNAME h1\n"
                  "sub NS ns.sub\nns.sub A 192.0.2.3\ntxt TXT \"hello world\"\n";
  for (int i = 0; i < names; ++i) {
    absl::StrAppend(&z, "h", i, " A 10.", (i >> 16) & 255, ".", (i >> 8) & 255, ".", i & 255, "\n");
    if (i % 4 == 0) absl::StrAppend(&z, "h", i, " AAAA 2001:db8::", absl::Hex(i >> 16), ":", absl::Hex(i & 0xffff), "\n");
  }
  return z;
}

std::vector<uint8_t> Query(const std::string& name, uint16_t type, uint16_t id) {
  std::vector<uint8_t> m = {static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    m.push_back(static_cast<uint8_t>(dot - start));
    m.insert(m.end(), name.begin() + start, name.begin() + dot);
    start = dot + 1;
  }
  m.insert(m.end(), {0, static_cast<uint8_t>(type >> 8), static_cast<uint8_t>(type), 0, 1});
  return m;
}

std::vector<std::vector<uint8_t>> MakeMix(int names, int count) {
  std::mt19937 rng(42);
  std::vector<std::vector<uint8_t>> qs;
  for (int i = 0; i < count; ++i) {
    int r = static_cast<int>(rng() % 100);
    int h = static_cast<int>(rng() % names);
    std::string n;
    uint16_t t = 1;
    if (r < 60) n = absl::StrCat("h", h, ".bench.test");
    else if (r < 75) { n = absl::StrCat("h", h - h % 4, ".bench.test"); t = 28; }
    else if (r < 85) n = absl::StrCat("nx", h, ".bench.test");
    else if (r < 90) n = absl::StrCat("w", h, ".wild.bench.test");
    else if (r < 94) n = "alias.bench.test";
    else if (r < 97) n = absl::StrCat("x", h, ".sub.bench.test");
    else { n = "txt.bench.test"; t = 16; }
    qs.push_back(Query(n, t, static_cast<uint16_t>(i)));
  }
  return qs;
}

std::unique_ptr<zone::Snapshot> Build(int names) {
  auto loaded = control::LoadZoneText("bench.test", MakeZoneText(names), "bench.zone");
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", std::string(loaded.status().message()).c_str());
    std::abort();
  }
  loaded->zone->PreferHugePages();  // as tandemd does once the zone is served
  return std::make_unique<zone::Snapshot>(std::vector<std::shared_ptr<const zone::Zone>>{loaded->zone});
}

// Bursts of 32 through AnswerBurst, as the ports answer their receive bursts: each
// request is copied into its receive buffer (the NIC's DMA or recvmmsg; here a copy) and
// answered in place.
void BM_AnswerMix(benchmark::State& state) {
  int names = static_cast<int>(state.range(0));
  auto snapshot = Build(names);
  auto queries = MakeMix(names, 1 << 16);
  dataplane::QueryHandler handler;
  dataplane::WorkerCounters counters;
  constexpr size_t kBurst = 32;
  constexpr size_t kBuffer = 1280;
  std::vector<uint8_t> buffers(kBurst * kBuffer);
  dataplane::Exchange burst[kBurst];
  size_t i = 0;
  for (auto _ : state) {
    for (size_t k = 0; k < kBurst; ++k) {
      const auto& q = queries[i++ & (queries.size() - 1)];
      uint8_t* buf = buffers.data() + k * kBuffer;
      std::memcpy(buf, q.data(), q.size());
      burst[k] = {buf, static_cast<uint32_t>(q.size()), buf, kBuffer, dataplane::Transport::kUdp};
    }
    handler.AnswerBurst(snapshot.get(), burst, counters);
    benchmark::DoNotOptimize(burst[kBurst - 1].response_len);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBurst));
  state.counters["bytes_per_name"] = static_cast<double>(snapshot->zones()[0]->MemoryBytes()) / names;
}
BENCHMARK(BM_AnswerMix)->Arg(1000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kNanosecond);

// The same mix one request at a time through Answer (the TCP path; the baseline).
void BM_AnswerMixSingle(benchmark::State& state) {
  int names = static_cast<int>(state.range(0));
  auto snapshot = Build(names);
  auto queries = MakeMix(names, 1 << 16);
  dataplane::QueryHandler handler;
  dataplane::WorkerCounters counters;
  std::vector<uint8_t> out(4096);
  size_t i = 0;
  for (auto _ : state) {
    const auto& q = queries[i++ & (queries.size() - 1)];
    size_t n = handler.Answer(snapshot.get(), q.data(), q.size(), out.data(), out.size(),
                              dataplane::Transport::kUdp, counters);
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_AnswerMixSingle)->Arg(1000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kNanosecond);

// A pooled name: A answered from a pool of 8 members (policy from the argument: 0
// all-healthy, 1 failover, 2 weighted), one member down. Shows the pool path costs no
// lock and no allocation per query (compare with BM_AnswerMix).
void BM_AnswerPool(benchmark::State& state) {
  auto loaded = control::LoadZoneText("bench.test", MakeZoneText(1000), "bench.zone");
  if (!loaded.ok()) std::abort();
  auto pools = std::make_shared<zone::PoolSet>();
  zone::Pool pool;
  pool.policy = static_cast<zone::PoolPolicy>(state.range(0));
  for (int i = 0; i < 8; ++i) {
    zone::PoolMember m{{192, 0, 2, static_cast<uint8_t>(10 + i)}, false, i != 3, static_cast<uint32_t>(1 + i), static_cast<uint16_t>(i)};
    pool.members.push_back(m);
  }
  pools->pools().push_back(pool);
  pools->Bind(*dns::NameFromText("www.bench.test"), 0, 30);
  pools->Finish();
  zone::Snapshot snapshot({loaded->zone}, pools);
  auto q = Query("www.bench.test", 1, 7);
  dataplane::QueryHandler handler;
  dataplane::WorkerCounters counters;
  std::vector<uint8_t> out(4096);
  for (auto _ : state) {
    size_t n = handler.Answer(&snapshot, q.data(), q.size(), out.data(), out.size(),
                              dataplane::Transport::kUdp, counters);
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_AnswerPool)->Arg(0)->Arg(1)->Arg(2);

void BM_ZoneBuild(benchmark::State& state) {
  int names = static_cast<int>(state.range(0));
  std::string text = MakeZoneText(names);
  for (auto _ : state) {
    auto loaded = control::LoadZoneText("bench.test", text, "bench.zone");
    benchmark::DoNotOptimize(loaded);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * names);
}
BENCHMARK(BM_ZoneBuild)->Arg(100000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
