// Bursts: every request of a burst is parsed and its lookup started before any is
// answered. A lookup in a large zone is a chain of dependent loads (the index slot, then
// the node with its RRsets, name and RDATA, which Zone::Pack keeps together in one or two
// cache lines), each likely a cache miss; answering one request after the other pays
// those latencies one after the other. Here each stage takes one link of every request's
// chain and prefetches the next, so a burst waits about once per link, with all its
// requests' loads in flight together:
//
//   prepare: parse, lower-case and hash the name, find the zone  -> prefetch index slots
//   probe:   first slot whose tag matches                       -> prefetch the node
//   answer:  QueryHandler::AnswerImpl, as Answer does
//
// The prefetch stages only warm the cache: they decide nothing, so a burst's responses are
// byte for byte those Answer gives. (A software pipeline that spreads each request's
// prefetches over the answers of others keeps fewer loads in flight, and measured slower.)
#include "dataplane/burst.h"

#include <algorithm>

#include "dataplane/handler.h"

namespace tandem::dataplane {
namespace {

using zone::Zone;

// Index slots worth warming per request: the name's own and those of the names between
// it and the apex that the walk from the apex probes first (a few at most).
constexpr int kMaxWarmSlots = 4;

bool HasQuestion(dns::QueryVerdict v) {
  return v != dns::QueryVerdict::kDrop && v != dns::QueryVerdict::kFormErrHeader;
}

// Zones smaller than this stay in the caches between bursts: warming them costs more than
// it saves (BM_AnswerMix with 1000 names: about 8% slower with the stages).
constexpr size_t kWarmMinNodes = 4096;

// The zone whose index the request will probe, when it is worth warming; or null.
const Zone* LookupZone(const PreparedQuery& p) {
  if (!HasQuestion(p.verdict) || p.zone == nullptr || p.zone->servfail()) return nullptr;
  if (p.zone->node_count() < kWarmMinNodes) return nullptr;
  if (p.name.labels <= p.zone->apex_labels()) return nullptr;  // the apex: no probe
  return p.zone;
}

// Always inlined: GCC takes a function whose only effect is a prefetch for one without
// effects (ipa-pure-const) and drops calls to it.
[[gnu::always_inline]] inline void WarmSlots(const Zone& z, const zone::LookupName& name) {
  int below_apex = name.labels - z.apex_labels();
  for (int s = std::max(0, below_apex - kMaxWarmSlots); s < below_apex; ++s) z.PrefetchSlot(name.hashes[s]);
}

}  // namespace

void PrepareQuery(const zone::Snapshot* snapshot, const uint8_t* query, size_t query_len,
                  PreparedQuery* p) {
  p->verdict = dns::ParseQuery(query, query_len, &p->q);
  p->zone = nullptr;
  if (!HasQuestion(p->verdict)) return;
  p->name.Set(p->q.qname.data, p->q.qname.length, p->q.qname_offsets, p->q.qname.labels);
  if (snapshot != nullptr) p->zone = snapshot->FindZone(p->name);
}

void QueryHandler::AnswerBurst(const zone::Snapshot* snapshot, std::span<Exchange> burst,
                               WorkerCounters& counters) const {
  PreparedQuery prepared[kBurstStage];
  // Requests whose lookup probes a zone's index: which one, in what zone, with what hash.
  struct Probe {
    const Zone* zone;
    uint64_t hash;
  } probes[kBurstStage];
  for (size_t base = 0; base < burst.size(); base += kBurstStage) {
    const size_t n = std::min(kBurstStage, burst.size() - base);
    Exchange* x = burst.data() + base;

    size_t nprobes = 0;
    for (size_t i = 0; i < n; ++i) {
      ++counters.queries[static_cast<int>(x[i].transport)];
      PreparedQuery& p = prepared[i];
      PrepareQuery(snapshot, x[i].query, x[i].query_len, &p);
      if (const Zone* z = LookupZone(p)) {
        WarmSlots(*z, p.name);
        probes[nprobes++] = {z, p.name.hashes[0]};
      }
    }
    for (size_t k = 0; k < nprobes; ++k) probes[k].zone->PrefetchCandidate(probes[k].hash);

    for (size_t i = 0; i < n; ++i)
      x[i].response_len = static_cast<uint32_t>(
          AnswerImpl(snapshot, prepared[i], x[i].query, x[i].query_len, x[i].out, x[i].out_cap,
                     x[i].transport, counters, x[i].client, 0));
  }
}

}  // namespace tandem::dataplane
