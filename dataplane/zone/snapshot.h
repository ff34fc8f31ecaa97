// The immutable snapshot the data plane answers from: every served zone, its names in
// one flat open-addressing index, each node's RRsets, name and RDATA (wire form) side by
// side in one arena, and the additional-section targets of NS/MX/SRV resolved to nodes
// when the zone is built.
// Built once (see builder.h), never changed; lookups allocate nothing.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/dns/wire.h"

namespace tandem::zone {

inline constexpr uint32_t kNone = 0xffffffff;

// Large arrays (2 MiB and more) start on a huge page boundary, so that PreferHugePages can
// move them onto transparent huge pages once built: a lookup in a zone of millions of
// names touches a few random cache lines, and with 4 KiB pages each of them would also
// miss the TLB. They are written on small pages (MADV_NOHUGEPAGE): on a virtual machine,
// the first touch of a huge page can cost ten times that of its 512 small ones (up to
// 0.2 s more to load a zone of a million names). On a kernel that cannot collapse pages
// on request (before Linux 6.1) they get huge pages as they are first touched instead.
// Small arrays come from the ordinary heap.
void* AllocateArray(size_t bytes);
// Moves the whole huge pages of an AllocateArray array onto transparent huge pages now
// (MADV_COLLAPSE, Linux 6.1 and later), and marks them for the kernel's background
// collapsing (MADV_HUGEPAGE). The kernel copies each 2 MiB in turn; a reader touching one
// while it is being replaced waits for it (a page fault). Does nothing when the system
// has transparent huge pages off ("never"). A hint: returns whether the kernel collapsed
// them, and the array works the same either way.
bool PreferHugePages(const void* p, size_t bytes);
// Transparent huge pages are not off ("never") on this system.
bool HugePagesAllowed();
// The kernel collapses pages on request (MADV_COLLAPSE).
bool HugePagesOnRequest();
void FreeArray(void* p);

template <typename T>
struct ArrayAllocator {
  using value_type = T;
  ArrayAllocator() = default;
  template <typename U>
  ArrayAllocator(const ArrayAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(AllocateArray(n * sizeof(T))); }
  void deallocate(T* p, size_t) { FreeArray(p); }
  template <typename U>
  bool operator==(const ArrayAllocator<U>&) const { return true; }
};

template <typename T>
using Array = std::vector<T, ArrayAllocator<T>>;

enum NodeFlags : uint16_t {
  kApex = 1 << 0,
  kDelegation = 1 << 1,     // NS below the apex: a zone cut
  kHasCname = 1 << 2,
  kHasDname = 1 << 3,
  kWildcardChild = 1 << 4,  // "*.<this node>" exists
};

struct RRset {
  uint16_t type;
  uint16_t count;       // records
  uint32_t ttl;
  uint32_t rdata;       // where its RDATA starts (Zone::First): `count` x (u16 length, bytes)
  uint32_t additional;  // offset in additional_: `count` node indexes (kNone: none), or kNone
};

struct Node {
  uint32_t name;        // where its name starts (Zone::NodeName): lower-case wire form
  uint8_t name_len;
  uint8_t labels;
  uint16_t flags;
  uint32_t rrsets;      // where its RRsets start (Zone::RRsetsBegin)
  uint32_t rrset_count;
};

// One record's RDATA, in wire form.
struct Rdata {
  const uint8_t* data;
  uint16_t size;
};

// The records of an RRset, in order: for (Rdata rr : zone.Records(set)). Reads only the
// set's own bytes: a step past the last record would read the next node's, in another
// cache line, which a lookup has no reason to have brought in.
class RecordRange {
 public:
  class iterator {
   public:
    iterator(const uint8_t* at, uint16_t left) : at_(at), left_(left) {}
    Rdata operator*() const { return {at_ + 2, Length()}; }
    iterator& operator++() {
      at_ += 2u + Length();
      --left_;
      return *this;
    }
    bool operator!=(const iterator& other) const { return left_ != other.left_; }

   private:
    uint16_t Length() const { return dns::Get16(at_); }
    const uint8_t* at_;  // the record's length octets
    uint16_t left_;      // records from here to the end
  };
  RecordRange(const uint8_t* first, uint16_t count) : first_(first), count_(count) {}
  iterator begin() const { return {first_, count_}; }
  iterator end() const { return {nullptr, 0}; }

 private:
  const uint8_t* first_;
  uint16_t count_;
};

class Zone {
 public:
  // The apex node's name, length and labels, kept apart by Seal: every query asks.
  const uint8_t* apex() const { return apex_; }
  size_t apex_len() const { return apex_len_; }
  int apex_labels() const { return apex_labels_; }
  const std::string& name_text() const { return name_text_; }
  uint32_t serial() const { return serial_; }
  // A pulled zone with no valid copy (none yet, or expired): answered SERVFAIL.
  bool servfail() const { return servfail_; }

  // Nodes are named by references: what Find and AdditionalNode return, and 0 for the
  // apex. (Where the node sits: its offset in the arena once packed, else its index.)
  // Node lookup by lower-case wire name and its hash (HashName). Returns kNone if absent.
  uint32_t Find(const uint8_t* lower_name, size_t len, uint64_t hash) const;
  const Node& node(uint32_t ref) const {
    return packed() ? *reinterpret_cast<const Node*>(packed_.data() + ref) : nodes_[ref];
  }
  // The nodes in zone order (the apex first), for walks over the whole zone.
  size_t node_count() const { return packed() ? order_.size() : nodes_.size(); }
  const Node& NodeAt(size_t i) const { return packed() ? node(order_[i]) : nodes_[i]; }
  const uint8_t* NodeName(const Node& n) const { return (packed() ? packed_.data() : names_.data()) + n.name; }
  const RRset* FindRRset(const Node& n, uint16_t type) const;
  const RRset* RRsetsBegin(const Node& n) const {
    return packed() ? reinterpret_cast<const RRset*>(packed_.data() + n.rrsets) : rrsets_.data() + n.rrsets;
  }
  const RRset* RRsetsEnd(const Node& n) const { return RRsetsBegin(n) + n.rrset_count; }

  // The set's first record (every RRset has one).
  Rdata First(const RRset& set) const { return *Records(set).begin(); }
  RecordRange Records(const RRset& set) const {
    return {(packed() ? packed_.data() : rdata_.data()) + set.rdata, set.count};
  }
  uint32_t AdditionalNode(const RRset& set, uint16_t i) const {
    return set.additional == kNone ? kNone : additional_[set.additional + i];
  }

  const RRset& soa() const {
    return packed() ? *reinterpret_cast<const RRset*>(packed_.data() + soa_rrset_) : rrsets_[soa_rrset_];
  }
  uint32_t negative_ttl() const { return negative_ttl_; }

  size_t MemoryBytes() const;

  // The zone's arrays onto huge pages (zone::PreferHugePages), once the zone is served: a
  // zone is built on small pages, which are faster to fault in. Only the first call does
  // anything; returns whether the kernel collapsed any of the arrays then.
  bool PreferHugePages() const;
  bool huge_pages_requested() const { return huge_pages_.load(std::memory_order_relaxed); }

  // Cache warming for burst lookups (QueryHandler::AnswerBurst): each step touches only
  // what the previous one brought in, so a burst overlaps its queries' memory latencies.
  // The index slot where a probe for `hash` starts.
  void PrefetchSlot(uint64_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }
  // Once the slot is in: the node whose slot tag matches first along the probe (without
  // comparing names, so possibly not the name hashed), with its RRsets, name and RDATA.
  // After Pack they lie together, in one cache line or two; the slot tells which.
  // (The search and the prefetches are apart: GCC deletes a loop whose only effects are
  // prefetches.)
  [[gnu::always_inline]] void PrefetchCandidate(uint64_t hash) const {
    if (!packed()) return;
    const uint32_t tag = static_cast<uint32_t>(hash >> 32);
    uint64_t i = hash & mask_;
    while (slots_[i].node != kNone && slots_[i].hash != tag) i = (i + 1) & mask_;
    const uint32_t ref = slots_[i].node;
    if (ref == kNone) return;
    const uint8_t* p = packed_.data() + (ref & ~kTwoLines);
    __builtin_prefetch(p);
    if (ref & kTwoLines) __builtin_prefetch(p + 64);
  }

 private:
  friend class ZoneBuilder;
  struct Slot {
    uint32_t hash;  // upper bits of the name hash; 0 only in empty slots' companion
    uint32_t node;  // the node's reference, with kTwoLines after Pack; kNone: empty
  };
  // In a packed zone's slots: the node and its data span two cache lines. (References
  // are multiples of alignof(Node) there, so the low bit is free.)
  static constexpr uint32_t kTwoLines = 1;

  // Lays out each node, its RRset headers, name and RDATA together in one arena, in zone
  // order, so that a lookup past the index touches one or two cache lines instead of four
  // arrays. References become arena offsets; frees the separate arrays. The last step of
  // building a zone.
  void Pack();
  bool packed() const { return !packed_.empty(); }
  // Notes the apex for apex(), apex_len() and apex_labels(): the last step of a build,
  // once the nodes stay where they are.
  void Seal() {
    const Node& a = node(0);
    apex_ = NodeName(a);
    apex_len_ = a.name_len;
    apex_labels_ = a.labels;
  }

  std::string name_text_;
  uint32_t serial_ = 0;
  uint32_t negative_ttl_ = 0;
  uint32_t soa_rrset_ = 0;
  bool servfail_ = false;
  uint8_t apex_len_ = 0;
  uint8_t apex_labels_ = 0;
  const uint8_t* apex_ = nullptr;
  Array<Node> nodes_;     // nodes_[0] is the apex; empty after Pack
  Array<RRset> rrsets_;   // grouped by node
  Array<uint8_t> names_;
  Array<uint8_t> rdata_;
  Array<uint32_t> additional_;
  Array<Slot> slots_;     // power-of-two size
  // After Pack: per node, the Node, its RRsets, name and RDATA. Node references,
  // Node::name, Node::rrsets, RRset::rdata and soa_rrset_ are then byte offsets in it
  // (before, indexes and offsets in the arrays above, which Pack empties).
  Array<uint8_t> packed_;
  Array<uint32_t> order_;  // after Pack: the nodes' references in zone order
  uint64_t mask_ = 0;
  mutable std::atomic<bool> huge_pages_{false};  // PreferHugePages was called
};

// A set of zones answered together; finds the zone closest to a query name.
class PoolSet;

class Snapshot {
 public:
  explicit Snapshot(std::vector<std::shared_ptr<const Zone>> zones,
                    std::shared_ptr<const PoolSet> pools = nullptr);

  // The deepest zone whose apex is the name or an ancestor of it.
  const Zone* FindZone(const struct LookupName& name) const;

  const std::vector<std::shared_ptr<const Zone>>& zones() const { return zones_; }
  const PoolSet* pools() const { return pools_.get(); }

 private:
  std::vector<std::shared_ptr<const Zone>> zones_;
  std::shared_ptr<const PoolSet> pools_;
  // Open addressing over apex names. A slot holds what a probe compares, so that only
  // the zone found is touched (zone == nullptr: empty).
  struct ApexSlot {
    uint64_t hash = 0;
    const Zone* zone = nullptr;
    const uint8_t* apex = nullptr;  // the zone's apex name, in the zone's own memory
    size_t apex_len = 0;
  };
  std::vector<ApexSlot> slots_;
  uint64_t mask_ = 0;
  int max_apex_labels_ = 0;  // suffixes longer than the deepest apex need no probe
};

// Hash of a lower-case wire name; the same function serves zones and snapshots.
uint64_t HashName(const uint8_t* name, size_t len);

// A query name prepared for lookups: lower-cased, with the offset and hash of every
// suffix. Suffix i (0 = the whole name, labels = the root) starts at offsets[i].
// `data` has room past the longest name so that Set works eight octets at a time.
struct LookupName {
  uint8_t data[264];
  uint8_t len;
  uint8_t labels;
  uint8_t offsets[129];
  uint64_t hashes[129];

  const uint8_t* suffix(int i) const { return data + offsets[i]; }
  size_t suffix_len(int i) const { return len - offsets[i]; }
  // Fills from an uncompressed wire name (validated by the parser).
  void Set(const uint8_t* wire, size_t wire_len);
  // The same, with the name's label offsets already known (dns::Query::qname_offsets:
  // `labels` of them, then the root's; the rest of the array is read but not used).
  void Set(const uint8_t* wire, size_t wire_len, const uint8_t (&label_offsets)[dns::kMaxLabels + 1],
           int labels);
};

}  // namespace tandem::zone
