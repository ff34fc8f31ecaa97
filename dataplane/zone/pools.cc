// Pool tables and member choice.
#include "dataplane/zone/pools.h"

#include <cstring>

#include "dataplane/dns/name.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::zone {

void PoolSet::Bind(const std::string& name, uint32_t pool, uint32_t ttl) {
  std::string lower = name;
  dns::LowerName(reinterpret_cast<uint8_t*>(lower.data()), lower.size());
  entries_.push_back({HashName(reinterpret_cast<const uint8_t*>(lower.data()), lower.size()), lower, {pool, ttl}});
}

void PoolSet::Finish() {
  size_t cap = 4;
  while (cap < entries_.size() * 2) cap <<= 1;
  slots_.assign(cap, -1);
  mask_ = cap - 1;
  for (size_t i = 0; i < entries_.size(); ++i) {
    uint64_t s = entries_[i].hash & mask_;
    while (slots_[s] >= 0) s = (s + 1) & mask_;
    slots_[s] = static_cast<int32_t>(i);
  }
}

const PoolSet::Binding* PoolSet::Find(const LookupName& name) const {
  if (entries_.empty()) return nullptr;
  uint64_t h = name.hashes[0];
  for (uint64_t s = h & mask_; slots_[s] >= 0; s = (s + 1) & mask_) {
    const Entry& e = entries_[slots_[s]];
    if (e.hash == h && e.name.size() == name.len && dns::SameOctets(reinterpret_cast<const uint8_t*>(e.name.data()), name.data, name.len))
      return &e.binding;
  }
  return nullptr;
}

int PickMembers(const Pool& pool, bool v6, uint32_t random, uint16_t* out, bool* all_down) {
  int up = 0, any = 0;
  for (const PoolMember& m : pool.members) {
    if (m.v6 != v6) continue;
    ++any;
    up += m.up;
  }
  *all_down = any > 0 && up == 0;
  if (any == 0) return 0;
  bool want_up = up > 0;  // with every member down, all of them are answered
  auto eligible = [&](const PoolMember& m) { return m.v6 == v6 && (!want_up || m.up); };
  int n = 0;
  switch (pool.policy) {
    case PoolPolicy::kAllHealthy:
      for (size_t i = 0; i < pool.members.size() && n < pool.max_answers; ++i)
        if (eligible(pool.members[i])) out[n++] = static_cast<uint16_t>(i);
      return n;
    case PoolPolicy::kFailover:
      for (size_t i = 0; i < pool.members.size(); ++i)
        if (eligible(pool.members[i])) {
          out[0] = static_cast<uint16_t>(i);
          return 1;
        }
      return 0;
    case PoolPolicy::kWeighted: {
      uint64_t total = 0;
      for (const PoolMember& m : pool.members)
        if (eligible(m)) total += m.weight;
      if (total == 0) {  // every eligible weight is 0: the first eligible member
        for (size_t i = 0; i < pool.members.size(); ++i)
          if (eligible(pool.members[i])) {
            out[0] = static_cast<uint16_t>(i);
            return 1;
          }
        return 0;
      }
      uint64_t pick = random % total;
      for (size_t i = 0; i < pool.members.size(); ++i) {
        const PoolMember& m = pool.members[i];
        if (!eligible(m)) continue;
        if (pick < m.weight) {
          out[0] = static_cast<uint16_t>(i);
          return 1;
        }
        pick -= m.weight;
      }
      return 0;
    }
  }
  return 0;
}

}  // namespace tandem::zone
