// Snapshot lookups: name hashing and the open-addressing indexes.
#include "dataplane/zone/snapshot.h"

#include <cstring>

#include "dataplane/dns/wire.h"

namespace tandem::zone {
namespace {

inline uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// Label hashing runs from the root towards the first label, so the hashes of all
// suffixes of a name come out of one pass (SuffixHashes).
inline uint64_t AddLabel(uint64_t h, const uint8_t* label) {
  uint8_t len = label[0];
  h = (h ^ len) * 0x100000001b3ULL;
  for (uint8_t i = 1; i <= len; ++i) h = (h ^ label[i]) * 0x100000001b3ULL;
  return h;
}

constexpr uint64_t kSeed = 0xcbf29ce484222325ULL;

}  // namespace

uint64_t HashName(const uint8_t* name, size_t len) {
  uint8_t offsets[128];
  int labels = 0;
  for (size_t pos = 0; pos < len && name[pos] != 0; pos += 1 + name[pos])
    offsets[labels++] = static_cast<uint8_t>(pos);
  uint64_t h = kSeed;
  for (int i = labels - 1; i >= 0; --i) h = AddLabel(h, name + offsets[i]);
  return Mix(h);
}

void SuffixHashes(const uint8_t* name, const uint8_t* offsets, int labels, uint64_t* out) {
  uint64_t h = kSeed;
  out[labels] = Mix(h);  // the root
  for (int i = labels - 1; i >= 0; --i) {
    h = AddLabel(h, name + offsets[i]);
    out[i] = Mix(h);
  }
}

uint32_t Zone::Find(const uint8_t* lower_name, size_t len, uint64_t hash) const {
  uint32_t tag = static_cast<uint32_t>(hash >> 32);
  for (uint64_t i = hash & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.node == kNone) return kNone;
    if (s.hash == tag) {
      const Node& n = nodes_[s.node];
      if (n.name_len == len && std::memcmp(names_.data() + n.name, lower_name, len) == 0)
        return s.node;
    }
  }
}

const RRset* Zone::FindRRset(const Node& n, uint16_t type) const {
  for (const RRset* s = RRsetsBegin(n); s != RRsetsEnd(n); ++s)
    if (s->type == type) return s;
  return nullptr;
}

Rdata Zone::First(const RRset& set) const {
  const uint8_t* p = rdata_.data() + set.rdata;
  return {p + 2, static_cast<uint16_t>(p[0] << 8 | p[1])};
}

size_t Zone::MemoryBytes() const {
  return sizeof(*this) + nodes_.capacity() * sizeof(Node) + rrsets_.capacity() * sizeof(RRset) +
         names_.capacity() + rdata_.capacity() + additional_.capacity() * sizeof(uint32_t) +
         slots_.capacity() * sizeof(Slot);
}

Snapshot::Snapshot(std::vector<std::shared_ptr<const Zone>> zones, std::shared_ptr<const PoolSet> pools)
    : zones_(std::move(zones)), pools_(std::move(pools)) {
  size_t cap = 4;
  while (cap < zones_.size() * 2) cap <<= 1;
  slots_.assign(cap, kNone);
  slot_hash_.assign(cap, 0);
  mask_ = cap - 1;
  for (uint32_t z = 0; z < zones_.size(); ++z) {
    uint64_t h = HashName(zones_[z]->apex(), zones_[z]->apex_len());
    uint64_t i = h & mask_;
    while (slots_[i] != kNone) i = (i + 1) & mask_;
    slots_[i] = z;
    slot_hash_[i] = h;
  }
}

const Zone* Snapshot::FindZone(const LookupName& name) const {
  // Longest suffix first: the deepest enclosing zone wins.
  for (int l = 0; l <= name.labels; ++l) {
    uint64_t h = name.hashes[l];
    for (uint64_t i = h & mask_; slots_[i] != kNone; i = (i + 1) & mask_) {
      if (slot_hash_[i] != h) continue;
      const Zone* z = zones_[slots_[i]].get();
      if (z->apex_len() == name.suffix_len(l) &&
          std::memcmp(z->apex(), name.suffix(l), z->apex_len()) == 0)
        return z;
    }
  }
  return nullptr;
}

void LookupName::Set(const uint8_t* wire, size_t wire_len) {
  len = static_cast<uint8_t>(wire_len);
  labels = 0;
  size_t pos = 0;
  while (wire[pos] != 0) {
    uint8_t l = wire[pos];
    offsets[labels++] = static_cast<uint8_t>(pos);
    data[pos] = l;
    for (uint8_t i = 1; i <= l; ++i) data[pos + i] = dns::AsciiLower(wire[pos + i]);
    pos += 1 + l;
  }
  data[pos] = 0;
  offsets[labels] = static_cast<uint8_t>(pos);
  SuffixHashes(data, offsets, labels, hashes);
}

}  // namespace tandem::zone
