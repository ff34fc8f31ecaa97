// Snapshot lookups: name hashing and the open-addressing indexes.
#include "dataplane/zone/snapshot.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>

#include "dataplane/dns/name.h"
#include "dataplane/dns/wire.h"

namespace tandem::zone {
namespace {

constexpr size_t kHugePage = 2 << 20;

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25  // Linux 6.1; older C libraries do not name it
#endif

inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

inline void Store64(uint8_t* p, uint64_t v) {
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
}

constexpr uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

inline uint64_t Step(uint64_t h, uint64_t word) {
  h = (h ^ word) * 0x9e3779b97f4a7c15ULL;
  return h ^ (h >> 29);
}

// Label hashing runs from the root towards the first label, so the hashes of all
// suffixes of a name come out of one pass. A label (its length octet and its octets) is
// taken eight octets at a time; the last load reads up to seven octets past the label,
// so names are hashed in buffers with kPad spare octets, and those octets are masked off.
constexpr size_t kPad = 8;

inline uint64_t AddLabel(uint64_t h, const uint8_t* label) {
  size_t n = label[0] + 1u;
  for (; n > 8; n -= 8, label += 8) h = Step(h, Load64(label));
  return Step(h, Load64(label) & (~0ULL >> (64 - 8 * n)));
}

constexpr uint64_t kSeed = 0xcbf29ce484222325ULL;

// Suffix offsets of a wire name held in a padded buffer; returns the label count.
int LabelOffsets(const uint8_t* name, size_t len, uint8_t* offsets) {
  int labels = 0;
  size_t pos = 0;
  while (pos < len && name[pos] != 0 && pos + 1u + name[pos] < len) {
    offsets[labels++] = static_cast<uint8_t>(pos);
    pos += 1 + name[pos];
  }
  offsets[labels] = static_cast<uint8_t>(pos);
  return labels;
}

[[gnu::always_inline]] inline void SuffixHashes(const uint8_t* name, const uint8_t* offsets, int labels,
                                               uint64_t* out) {
  constexpr uint64_t kRoot = Mix(kSeed);
  uint64_t h = kSeed;
  out[labels] = kRoot;
  for (int i = labels - 1; i >= 0; --i) {
    h = AddLabel(h, name + offsets[i]);
    out[i] = Mix(h);
  }
}

}  // namespace

bool HugePagesAllowed() {
  static const bool allowed = [] {
    std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string mode;
    return std::getline(f, mode) && mode.find("[never]") == std::string::npos;
  }();
  return allowed;
}

bool HugePagesOnRequest() {
  // An empty range is accepted for any advice the kernel knows, refused for others.
  static const bool supported = madvise(nullptr, 0, MADV_COLLAPSE) == 0;
  return supported;
}

void* AllocateArray(size_t bytes) {
  if (bytes < kHugePage) {
    void* p = std::malloc(bytes ? bytes : 1);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  size_t rounded = (bytes + kHugePage - 1) & ~(kHugePage - 1);
  void* p = std::aligned_alloc(kHugePage, rounded);
  if (p == nullptr) throw std::bad_alloc();
  // Small pages while it is written, to be collapsed later; a kernel that cannot collapse
  // on request gets huge pages from the first touch, as the only way to have them soon.
  // Hints both: the array works the same on any page size.
  if (HugePagesOnRequest() || !HugePagesAllowed()) {
    madvise(p, rounded, MADV_NOHUGEPAGE);
  } else {
    madvise(p, bytes & ~(kHugePage - 1), MADV_HUGEPAGE);  // whole huge pages only
  }
  return p;
}

bool PreferHugePages(const void* p, size_t bytes) {
  // Whole huge pages only: a partly used one at the end would hold up to 2 MiB for nothing.
  // Only AllocateArray's large arrays start on a huge page boundary.
  auto start = reinterpret_cast<uintptr_t>(p);
  size_t whole = bytes & ~(kHugePage - 1);
  if (!HugePagesAllowed() || whole == 0 || (start & (kHugePage - 1)) != 0) return false;
  void* q = const_cast<void*>(p);
  // Marked first (which also lifts AllocateArray's MADV_NOHUGEPAGE), so that khugepaged
  // collapses later on what MADV_COLLAPSE could not.
  madvise(q, whole, MADV_HUGEPAGE);
  return HugePagesOnRequest() && madvise(q, whole, MADV_COLLAPSE) == 0;
}

void FreeArray(void* p) { std::free(p); }

uint64_t HashName(const uint8_t* name, size_t len) {
  uint8_t buf[dns::kMaxNameLength + kPad] = {};
  len = std::min(len, dns::kMaxNameLength);
  std::memcpy(buf, name, len);
  uint8_t offsets[dns::kMaxLabels + 1];
  int labels = LabelOffsets(buf, len, offsets);
  uint64_t h = kSeed;
  for (int i = labels - 1; i >= 0; --i) h = AddLabel(h, buf + offsets[i]);
  return Mix(h);
}

uint32_t Zone::Find(const uint8_t* lower_name, size_t len, uint64_t hash) const {
  const uint32_t tag = static_cast<uint32_t>(hash >> 32);
  const uint32_t ref_mask = packed() ? ~kTwoLines : ~0u;
  for (uint64_t i = hash & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.node == kNone) return kNone;
    if (s.hash == tag) {
      const uint32_t ref = s.node & ref_mask;
      const Node& n = node(ref);
      if (n.name_len == len && dns::SameOctets(NodeName(n), lower_name, len)) return ref;
    }
  }
}

const RRset* Zone::FindRRset(const Node& n, uint16_t type) const {
  for (const RRset* s = RRsetsBegin(n); s != RRsetsEnd(n); ++s)
    if (s->type == type) return s;
  return nullptr;
}

bool Zone::PreferHugePages() const {
  if (huge_pages_.exchange(true)) return false;
  // Every array (empty ones cost nothing): a zone too large to pack answers from the
  // separate ones.
  bool collapsed = false;
  auto prefer = [&](const auto& a) {
    collapsed = zone::PreferHugePages(a.data(), a.size() * sizeof(a[0])) || collapsed;
  };
  prefer(slots_);
  prefer(packed_);
  prefer(order_);
  prefer(additional_);
  prefer(nodes_);
  prefer(rrsets_);
  prefer(names_);
  prefer(rdata_);
  return collapsed;
}

size_t Zone::MemoryBytes() const {
  return sizeof(*this) + nodes_.capacity() * sizeof(Node) + rrsets_.capacity() * sizeof(RRset) +
         names_.capacity() + rdata_.capacity() + additional_.capacity() * sizeof(uint32_t) + packed_.capacity() +
         order_.capacity() * sizeof(uint32_t) + slots_.capacity() * sizeof(Slot);
}

namespace {

// Octets of an RRset's RDATA records, (length, bytes) each.
size_t RdataBytes(const uint8_t* p, uint16_t count) {
  const uint8_t* start = p;
  for (uint16_t k = 0; k < count; ++k) p += 2 + dns::Get16(p);
  return static_cast<size_t>(p - start);
}

constexpr size_t AlignUp(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

}  // namespace

void Zone::Pack() {
  if (packed()) return;
  constexpr uintptr_t kLine = 64;
  static_assert(alignof(Node) >= 2 && alignof(Node) % alignof(RRset) == 0);
  // Where each node goes: right after the one before. (Starting a node that fits in a
  // line on the next line rather than across two cost 12 bytes a name and zone load
  // time, and measured no faster.)
  Array<uint32_t> start(nodes_.size());
  size_t total = 0;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& n = nodes_[i];
    size_t bytes = sizeof(Node) + n.rrset_count * sizeof(RRset) + n.name_len;
    for (uint32_t k = 0; k < n.rrset_count; ++k) {
      const RRset& set = rrsets_[n.rrsets + k];
      bytes += RdataBytes(rdata_.data() + set.rdata, set.count);
    }
    total = AlignUp(total, alignof(Node));
    if (total > UINT32_MAX) return;  // offsets are 32 bits: such a zone stays as built
    start[i] = static_cast<uint32_t>(total);
    total += bytes;
  }
  if (total > UINT32_MAX) return;
  packed_.assign(total, 0);
  const uint32_t soa_index = soa_rrset_;
  uint8_t* arena = packed_.data();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node n = nodes_[i];
    size_t pos = start[i] + sizeof(Node);
    const size_t sets = pos;
    pos += n.rrset_count * sizeof(RRset);
    std::memcpy(arena + pos, names_.data() + n.name, n.name_len);
    n.name = static_cast<uint32_t>(pos);
    pos += n.name_len;
    for (uint32_t k = 0; k < n.rrset_count; ++k) {
      RRset set = rrsets_[n.rrsets + k];
      size_t bytes = RdataBytes(rdata_.data() + set.rdata, set.count);
      std::memcpy(arena + pos, rdata_.data() + set.rdata, bytes);
      set.rdata = static_cast<uint32_t>(pos);
      pos += bytes;
      if (n.rrsets + k == soa_index) soa_rrset_ = static_cast<uint32_t>(sets + k * sizeof(RRset));
      new (arena + sets + k * sizeof(RRset)) RRset(set);
    }
    n.rrsets = static_cast<uint32_t>(sets);
    new (arena + start[i]) Node(n);
    // The slot's line hint, from where the node's data starts and ends in memory.
    const uintptr_t first = reinterpret_cast<uintptr_t>(arena + start[i]);
    start[i] |= (first / kLine != (reinterpret_cast<uintptr_t>(arena + pos) - 1) / kLine) ? kTwoLines : 0;
  }
  // Indexes become offsets: in the index (with the line hint), in the additional
  // targets, and in the zone order.
  for (Slot& s : slots_)
    if (s.node != kNone) s.node = start[s.node];
  for (uint32_t& a : additional_)
    if (a != kNone) a = start[a] & ~kTwoLines;
  for (uint32_t& ref : start) ref &= ~kTwoLines;
  order_ = std::move(start);
  Array<Node>().swap(nodes_);
  Array<RRset>().swap(rrsets_);
  Array<uint8_t>().swap(names_);
  Array<uint8_t>().swap(rdata_);
}

Snapshot::Snapshot(std::vector<std::shared_ptr<const Zone>> zones, std::shared_ptr<const PoolSet> pools)
    : zones_(std::move(zones)), pools_(std::move(pools)) {
  for (const auto& z : zones_) max_apex_labels_ = std::max(max_apex_labels_, z->apex_labels());
  size_t cap = 4;
  while (cap < zones_.size() * 2) cap <<= 1;
  slots_.assign(cap, ApexSlot{});
  mask_ = cap - 1;
  for (const auto& z : zones_) {
    uint64_t h = HashName(z->apex(), z->apex_len());
    uint64_t i = h & mask_;
    while (slots_[i].zone != nullptr) i = (i + 1) & mask_;
    slots_[i] = {h, z.get(), z->apex(), z->apex_len()};
  }
}

const Zone* Snapshot::FindZone(const LookupName& name) const {
  // Longest suffix first: the deepest enclosing zone wins.
  for (int l = std::max(0, name.labels - max_apex_labels_); l <= name.labels; ++l) {
    const uint64_t h = name.hashes[l];
    const size_t len = name.suffix_len(l);
    for (uint64_t i = h & mask_; slots_[i].zone != nullptr; i = (i + 1) & mask_) {
      const ApexSlot& s = slots_[i];
      if (s.hash == h && s.apex_len == len && dns::SameOctets(s.apex, name.suffix(l), len)) return s.zone;
    }
  }
  return nullptr;
}

namespace {

// Copies a wire name into `data` lower-cased, eight octets at a time (the last eight
// overlap the ones before), and zeroes the eight octets after it, which hashing reads.
[[gnu::always_inline]] inline void LowerInto(uint8_t* data, const uint8_t* wire, size_t wire_len) {
  if (wire_len >= 8) {
    for (size_t i = 0; i + 8 <= wire_len; i += 8) Store64(data + i, dns::AsciiLowerWord(Load64(wire + i)));
    Store64(data + wire_len - 8, dns::AsciiLowerWord(Load64(wire + wire_len - 8)));
  } else {
    for (size_t i = 0; i < wire_len; ++i) data[i] = dns::AsciiLower(wire[i]);
  }
  Store64(data + wire_len, 0);
}

}  // namespace

void LookupName::Set(const uint8_t* wire, size_t wire_len) {
  static_assert(sizeof(data) >= dns::kMaxNameLength + kPad);
  len = static_cast<uint8_t>(wire_len);
  LowerInto(data, wire, wire_len);
  labels = static_cast<uint8_t>(LabelOffsets(data, wire_len, offsets));
  SuffixHashes(data, offsets, labels, hashes);
}

void LookupName::Set(const uint8_t* wire, size_t wire_len, const uint8_t (&label_offsets)[dns::kMaxLabels + 1],
                     int label_count) {
  static_assert(sizeof(offsets) >= sizeof(label_offsets));
  len = static_cast<uint8_t>(wire_len);
  LowerInto(data, wire, wire_len);
  labels = static_cast<uint8_t>(label_count);
  if (label_count < 16) {
    std::memcpy(offsets, label_offsets, 16);  // most names: one fixed copy
  } else {
    std::memcpy(offsets, label_offsets, label_count + 1u);
  }
  SuffixHashes(data, offsets, labels, hashes);
}

}  // namespace tandem::zone
