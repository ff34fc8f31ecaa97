// Zone building: group records into nodes and RRsets, add empty non-terminals, check the
// zone, resolve additional-section targets and lay out the flat index.
#include "dataplane/zone/builder.h"

#include <algorithm>
#include <cstring>
#include <string_view>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/rrtype.h"

namespace tandem::zone {
namespace {

using dns::Field;

std::string Lowered(const uint8_t* name, size_t len) {
  std::string s(reinterpret_cast<const char*>(name), len);
  dns::LowerName(reinterpret_cast<uint8_t*>(s.data()), s.size());
  return s;
}

std::string NameText(const std::string& wire) {
  return dns::NameToText(reinterpret_cast<const uint8_t*>(wire.data()));
}

// Node ids by name, over names held elsewhere (open addressing, a tag of the hash beside
// each id): the builder's table of names without a string per name.
class NameSet {
 public:
  explicit NameSet(size_t expected) { Resize(Capacity(expected)); }

  // The id of the name, or `id` when the name is new (then recorded as that id; the caller
  // makes name_of(id), a (pointer, length) pair, valid before the next call).
  template <typename NameOf>
  uint32_t FindOrInsert(const uint8_t* name, size_t len, uint32_t id, NameOf&& name_of) {
    return FindOrInsert(name, len, Hash(name, len), id, name_of);
  }
  template <typename NameOf>
  uint32_t FindOrInsert(const uint8_t* name, size_t len, uint64_t h, uint32_t id, NameOf&& name_of) {
    if (2 * (count_ + 1) > slots_.size()) Grow(name_of);
    for (size_t s = h & mask_;; s = (s + 1) & mask_) {
      Slot& slot = slots_[s];
      if (slot.id == kNone) {
        slot = {static_cast<uint32_t>(h >> 32), id};
        ++count_;
        return id;
      }
      if (slot.tag != static_cast<uint32_t>(h >> 32)) continue;
      auto [known, known_len] = name_of(slot.id);
      if (known_len == len && std::memcmp(known, name, len) == 0) return slot.id;
    }
  }

  void Prefetch(uint64_t h) const { __builtin_prefetch(&slots_[h & mask_]); }
  static uint64_t Hash(const uint8_t* name, size_t len) {
    return absl::Hash<absl::string_view>{}(absl::string_view(reinterpret_cast<const char*>(name), len));
  }
  static size_t Capacity(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    return cap;
  }
  void Resize(size_t cap) {
    slots_.assign(cap, Slot{0, kNone});
    mask_ = cap - 1;
  }
 private:
  struct Slot {
    uint32_t tag;  // upper half of the hash
    uint32_t id;   // kNone: empty
  };
  template <typename NameOf>
  void Grow(NameOf&& name_of) {
    std::vector<Slot> old = std::move(slots_);
    Resize(old.size() * 2);
    for (const Slot& o : old) {
      if (o.id == kNone) continue;
      auto [name, len] = name_of(o.id);
      uint64_t h = Hash(name, len);
      size_t s = h & mask_;
      while (slots_[s].id != kNone) s = (s + 1) & mask_;
      slots_[s] = o;
    }
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

// The builder's arrays grow eightfold, not twofold: each growth copies into fresh pages,
// which the kernel must clear first (a zone of millions of records spent a third of its
// build there), while capacity never written costs address space only. They live for
// one build.
template <typename V>
void GrowFor(V& v, size_t more) {
  if (v.size() + more > v.capacity())
    v.reserve(std::max<size_t>(8 * v.capacity(), std::max<size_t>(v.size() + more, 1024)));
}

// dns::IsSubdomain for names both lower-case already: the suffix compares byte for byte.
bool InZone(const uint8_t* lower, size_t len, const std::string& apex) {
  size_t pos = 0;
  while (pos < len && len - pos > apex.size()) {
    if (lower[pos] == 0) return false;
    pos += 1 + lower[pos];
  }
  return pos <= len && len - pos == apex.size() && std::memcmp(lower + pos, apex.data(), apex.size()) == 0;
}

// Offset of the name in RDATA that additional-section processing follows, or -1.
int AdditionalTargetOffset(uint16_t type) {
  switch (type) {
    case dns::kTypeNS: return 0;
    case dns::kTypeMX: return 2;
    case dns::kTypeSRV: return 6;
    default: return -1;
  }
}

}  // namespace

bool RdataValid(uint16_t type, const uint8_t* rdata, uint16_t rdlen) {
  size_t off = 0;
  for (Field f : dns::LayoutOf(type).fields) {
    size_t n = 0;
    switch (f) {
      case Field::kEnd: return off == rdlen;
      case Field::kRest: return true;
      case Field::kFixed1: n = 1; break;
      case Field::kFixed2: n = 2; break;
      case Field::kFixed4: n = 4; break;
      case Field::kFixed16: n = 16; break;
      case Field::kCharString:
        if (off >= rdlen) return false;
        n = 1 + rdata[off];
        break;
      case Field::kName:
      case Field::kCompressibleName:
        n = dns::WireNameLength(rdata + off, rdlen - off);
        if (n == 0) return false;
        break;
    }
    if (off + n > rdlen) return false;
    off += n;
  }
  return off == rdlen;
}

ZoneBuilder::ZoneBuilder(const std::string& apex)
    : apex_(Lowered(reinterpret_cast<const uint8_t*>(apex.data()), apex.size())) {
  NodeFor(reinterpret_cast<const uint8_t*>(apex_.data()), apex_.size());  // node 0
}

uint32_t ZoneBuilder::NodeFor(const uint8_t* lower, size_t len) {
  // Looked up by view, so a name already known costs no string; one hash either way.
  absl::string_view key(reinterpret_cast<const char*>(lower), len);
  auto it = node_ids_.lazy_emplace(key, [&](const auto& make) {
    make(std::string(key), static_cast<uint32_t>(nodes_.size()));
    nodes_.push_back({static_cast<uint32_t>(names_.size()), static_cast<uint8_t>(len)});
    names_.insert(names_.end(), lower, lower + len);
  });
  return it->second;
}

void ZoneBuilder::Add(const uint8_t* owner, size_t owner_len, uint16_t type, uint32_t ttl,
                      const uint8_t* rdata, uint16_t rdlen, Position where) {
  if (owner_len == 0 || owner_len > dns::kMaxNameLength) {
    errors_.push_back({where, "malformed owner name"});
    return;
  }
  // Millions of records: the owner is lowered on the stack, not in a string of its own.
  uint8_t lowered[dns::kMaxNameLength];
  std::memcpy(lowered, owner, owner_len);
  dns::LowerName(lowered, owner_len);
  std::string_view lower(reinterpret_cast<const char*>(lowered), owner_len);
  if (!InZone(lowered, owner_len, apex_)) {
    warnings_.push_back({where, absl::StrCat("out-of-zone record ", NameText(std::string(lower)), " ",
                                             dns::TypeToText(type), " ignored")});
    return;
  }
  if (dns::IsMetaType(type)) {
    errors_.push_back({where, absl::StrCat(NameText(std::string(lower)), ": type ", dns::TypeToText(type),
                                           " cannot be stored in a zone")});
    return;
  }
  if (!RdataValid(type, rdata, rdlen)) {
    errors_.push_back({where, absl::StrCat(NameText(std::string(lower)), " ", dns::TypeToText(type),
                                           ": malformed RDATA")});
    return;
  }
  if (type == dns::kTypeSOA && lower != apex_) {
    errors_.push_back({where, absl::StrCat(NameText(std::string(lower)), ": SOA record not at the zone apex ",
                                           NameText(apex_))});
    return;
  }
  // Records of one owner usually come together (zone files, AXFR): the last record's node
  // is tried before the index.
  uint32_t node = kNone;
  if (!records_.empty()) {
    const PendingNode& last = nodes_[records_.back().node];
    if (last.len == owner_len && std::memcmp(names_.data() + last.name, lowered, owner_len) == 0)
      node = records_.back().node;
  }
  if (node == kNone) {  // a node per run of one owner; AddEmptyNonTerminals merges them
    node = static_cast<uint32_t>(nodes_.size());
    GrowFor(nodes_, 1);
    GrowFor(names_, owner_len);
    nodes_.push_back({static_cast<uint32_t>(names_.size()), static_cast<uint8_t>(owner_len)});
    names_.insert(names_.end(), lowered, lowered + owner_len);
  }
  GrowFor(records_, 1);
  GrowFor(rdata_, rdlen);
  records_.push_back({node, type, rdlen, ttl, rdata_.size(), where});
  rdata_.insert(rdata_.end(), rdata, rdata + rdlen);
}

// Add() made a node for every run of records of one owner: here the runs of one name
// become one node (records renumbered, names compacted), then the empty non-terminals are
// added. One table local to the build, over the names arena, finds names: no string per
// name (a zone has millions of them).
void ZoneBuilder::AddEmptyNonTerminals() {
  const size_t runs = nodes_.size();
  NameSet set(runs);
  // Nodes and names are compacted in place: the node a name becomes is never after the run
  // it comes from, so what is written never overtakes what is still to be read.
  size_t node_count = 0, names_size = 0;
  auto name_of = [&](uint32_t i) { return std::make_pair(names_.data() + nodes_[i].name, size_t{nodes_[i].len}); };
  // The node of a name, added when new; `fresh` tells which.
  auto intern = [&](const uint8_t* name, size_t len, uint64_t hash, bool* fresh) {
    uint32_t id = set.FindOrInsert(name, len, hash, static_cast<uint32_t>(node_count), name_of);
    *fresh = id == node_count;
    if (*fresh) {
      if (node_count < nodes_.size()) {
        std::memmove(names_.data() + names_size, name, len);
        nodes_[node_count] = {static_cast<uint32_t>(names_size), static_cast<uint8_t>(len)};
      } else {
        names_.insert(names_.end(), name, name + len);
        nodes_.push_back({static_cast<uint32_t>(names_size), static_cast<uint8_t>(len)});
      }
      ++node_count;
      names_size += len;
    }
    return id;
  };
  std::vector<uint32_t> merged(runs);
  bool fresh;
  // Hashes a few names ahead, their slots prefetched (as in BuildIndex).
  constexpr size_t kAhead = 16;
  uint64_t ahead[kAhead];
  auto hash_ahead = [&](size_t i) {
    ahead[i % kAhead] = NameSet::Hash(names_.data() + nodes_[i].name, nodes_[i].len);
    set.Prefetch(ahead[i % kAhead]);
  };
  for (size_t i = 0; i < runs && i < kAhead; ++i) hash_ahead(i);
  for (size_t i = 0; i < runs; ++i) {
    uint64_t h = ahead[i % kAhead];
    if (i + kAhead < runs) hash_ahead(i + kAhead);
    merged[i] = intern(names_.data() + nodes_[i].name, nodes_[i].len, h, &fresh);
  }
  for (Record& r : records_) r.node = merged[r.node];  // the apex stays node 0: it came first
  nodes_.resize(node_count);
  names_.resize(names_size);
  const size_t real = node_count;
  uint8_t name[dns::kMaxNameLength];  // a copy: interning moves names_
  for (size_t i = 1; i < real; ++i) {
    size_t len = nodes_[i].len;
    // Parents up to (not including) the apex.
    size_t pos = static_cast<size_t>(names_[nodes_[i].name]) + 1;
    if (len - pos <= apex_.size()) continue;
    std::memcpy(name, names_.data() + nodes_[i].name, len);
    while (len - pos > apex_.size()) {
      intern(name + pos, len - pos, NameSet::Hash(name + pos, len - pos), &fresh);
      if (!fresh) break;  // already present: so are its ancestors
      pos += static_cast<uint8_t>(name[pos]) + 1;
    }
  }
}

void ZoneBuilder::CheckNode(uint32_t node, const Record* begin, const Record* end) {
  bool cname = false, other = false;
  int cname_count = 0, dname_count = 0;
  for (const Record* r = begin; r != end; ++r) {
    if (r->type == dns::kTypeCNAME) {
      cname = true;
      ++cname_count;
    } else if (r->type == dns::kTypeDNAME) {
      ++dname_count;
      other = true;
    } else if (r->type != dns::kTypeRRSIG && r->type != dns::kTypeNSEC) {
      other = true;
    }
  }
  if (!(cname && other) && cname_count <= 1 && dname_count <= 1) return;
  std::string owner = NameText(std::string(
      reinterpret_cast<const char*>(names_.data() + nodes_[node].name), nodes_[node].len));
  if (cname && other)
    errors_.push_back({begin->where, absl::StrCat(owner, ": CNAME beside other data")});
  if (cname_count > 1)
    errors_.push_back({begin->where, absl::StrCat(owner, ": more than one CNAME record")});
  if (dname_count > 1)
    errors_.push_back({begin->where, absl::StrCat(owner, ": more than one DNAME record")});
}

std::shared_ptr<const Zone> ZoneBuilder::Build() {
  auto zone = std::make_shared<Zone>();
  Zone& z = *zone;
  z.name_text_ = NameText(apex_);
  AddEmptyNonTerminals();

  // Group by node, then type; keep the order records came in within an RRset. Zone files
  // and transfers usually come grouped already: then there is nothing to sort.
  auto by_node_type = [](const Record& a, const Record& b) {
    return a.node != b.node ? a.node < b.node : a.type < b.type;
  };
  auto by_node = [](const Record& a, const Record& b) { return a.node < b.node; };
  auto by_type = [](const Record& a, const Record& b) { return a.type < b.type; };
  if (!std::is_sorted(records_.begin(), records_.end(), by_node)) {
    std::stable_sort(records_.begin(), records_.end(), by_node_type);
  } else {
    for (auto run = records_.begin(); run != records_.end();) {
      auto end = std::find_if(run, records_.end(), [&](const Record& r) { return r.node != run->node; });
      if (!std::is_sorted(run, end, by_type)) std::stable_sort(run, end, by_type);
      run = end;
    }
  }
  // The arrays are sized once: growing them would copy them, on fresh pages each time.
  z.rdata_.reserve(rdata_.size() + 2 * records_.size() + 2);
  size_t rrsets = 0;
  for (size_t k = 0; k < records_.size(); ++k)
    rrsets += k == 0 || records_[k].node != records_[k - 1].node || records_[k].type != records_[k - 1].type;
  z.rrsets_.reserve(rrsets);

  z.names_.assign(names_.begin(), names_.end());
  z.nodes_.resize(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& n = z.nodes_[i];
    n.name = nodes_[i].name;
    n.name_len = nodes_[i].len;
    n.labels = static_cast<uint8_t>(dns::CountLabels(names_.data() + n.name));
    n.flags = 0;
    n.rrsets = 0;
    n.rrset_count = 0;
  }
  z.nodes_[0].flags |= kApex;

  std::vector<std::pair<const uint8_t*, uint16_t>> seen;  // one RRset's records so far
  size_t i = 0;
  while (i < records_.size()) {
    size_t node_end = i;
    while (node_end < records_.size() && records_[node_end].node == records_[i].node) ++node_end;
    uint32_t node = records_[i].node;
    CheckNode(node, &records_[i], records_.data() + node_end);
    Node& n = z.nodes_[node];
    n.rrsets = static_cast<uint32_t>(z.rrsets_.size());
    for (size_t j = i; j < node_end;) {
      size_t set_end = j;
      while (set_end < node_end && records_[set_end].type == records_[j].type) ++set_end;
      RRset set{records_[j].type, 0, records_[j].ttl, static_cast<uint32_t>(z.rdata_.size()), kNone};
      seen.clear();
      for (size_t k = j; k < set_end; ++k) {
        const Record& r = records_[k];
        const uint8_t* data = rdata_.data() + r.rdata;
        bool dup = std::any_of(seen.begin(), seen.end(), [&](auto& s) {
          return s.second == r.rdlen && std::memcmp(s.first, data, r.rdlen) == 0;
        });
        if (dup) continue;
        if (r.ttl != set.ttl)
          warnings_.push_back({r.where, absl::StrCat("TTL ", r.ttl, " differs from the RRset's TTL ",
                                                     set.ttl, "; using ", set.ttl)});
        seen.emplace_back(data, r.rdlen);
        z.rdata_.push_back(static_cast<uint8_t>(r.rdlen >> 8));
        z.rdata_.push_back(static_cast<uint8_t>(r.rdlen));
        z.rdata_.insert(z.rdata_.end(), data, data + r.rdlen);
        ++set.count;
      }
      if (set.type == dns::kTypeCNAME) n.flags |= kHasCname;
      if (set.type == dns::kTypeDNAME) n.flags |= kHasDname;
      if (set.type == dns::kTypeNS && node != 0) n.flags |= kDelegation;
      if (set.type == dns::kTypeSOA) {
        if (set.count != 1)
          errors_.push_back({records_[j].where, absl::StrCat(z.name_text_, ": more than one SOA record")});
        z.soa_rrset_ = static_cast<uint32_t>(z.rrsets_.size());
      }
      z.rrsets_.push_back(set);
      ++n.rrset_count;
      j = set_end;
    }
    i = node_end;
  }
  const Node& apex = z.nodes_[0];
  if (!z.FindRRset(apex, dns::kTypeSOA))
    errors_.push_back({{}, absl::StrCat(z.name_text_, ": no SOA record at the zone apex")});
  if (!z.FindRRset(apex, dns::kTypeNS))
    errors_.push_back({{}, absl::StrCat(z.name_text_, ": no NS records at the zone apex")});
  if (!errors_.empty()) return nullptr;

  Rdata soa = z.First(z.soa());
  const uint8_t* fixed = soa.data + soa.size - 20;
  z.serial_ = dns::Get32(fixed);
  z.negative_ttl_ = std::min(z.soa().ttl, dns::Get32(fixed + 16));

  // The zone's own index first: the names looked up below are found through it.
  BuildIndex(z);
  // Wildcard children: "*.<parent>".
  for (Node& n : z.nodes_) {
    const uint8_t* name = z.names_.data() + n.name;
    if (name[0] == 1 && name[1] == '*' && (n.flags & kApex) == 0) {
      uint32_t parent = z.Find(name + 2, n.name_len - 2, HashName(name + 2, n.name_len - 2));
      if (parent != kNone) z.nodes_[parent].flags |= kWildcardChild;
    }
  }
  FillAdditional(z);
  z.Pack();  // lays each node's data out together for lookups
  z.Seal();
  return zone;
}

std::shared_ptr<const Zone> ZoneBuilder::Unavailable(const std::string& apex) {
  ZoneBuilder b(apex);
  auto zone = std::make_shared<Zone>();
  zone->name_text_ = NameText(b.apex_);
  zone->names_.assign(b.names_.begin(), b.names_.end());
  zone->nodes_.push_back({0, static_cast<uint8_t>(b.apex_.size()),
                          static_cast<uint8_t>(dns::CountLabels(b.names_.data())), kApex, 0, 0});
  zone->servfail_ = true;
  b.BuildIndex(*zone);
  zone->Seal();
  return zone;
}

void ZoneBuilder::FillAdditional(Zone& z) {
  for (RRset& set : z.rrsets_) {
    int off = AdditionalTargetOffset(set.type);
    if (off < 0) continue;
    set.additional = static_cast<uint32_t>(z.additional_.size());
    for (Rdata rr : z.Records(set)) {
      uint8_t target[dns::kMaxNameLength];
      size_t len = rr.size - off;  // the name ends the RDATA less its offset, or comes first
      len = dns::WireNameLength(rr.data + off, len);
      uint32_t node = kNone;
      if (len != 0) {
        std::memcpy(target, rr.data + off, len);
        dns::LowerName(target, len);
        uint32_t id = z.Find(target, len, HashName(target, len));
        if (id != kNone && (z.FindRRset(z.nodes_[id], dns::kTypeA) || z.FindRRset(z.nodes_[id], dns::kTypeAAAA)))
          node = id;
      }
      z.additional_.push_back(node);
    }
  }
}

void ZoneBuilder::BuildIndex(Zone& z) {
  size_t cap = 16;
  while (cap < z.nodes_.size() * 2) cap <<= 1;
  z.slots_.assign(cap, Zone::Slot{0, kNone});
  z.mask_ = cap - 1;
  // Hashes are made a few nodes ahead and their slots prefetched: slots are written in
  // random order, and with millions of names each write would wait for memory.
  constexpr uint32_t kAhead = 16;
  uint64_t ahead[kAhead];
  const auto count = static_cast<uint32_t>(z.nodes_.size());
  auto hash_ahead = [&](uint32_t i) {
    const Node& n = z.nodes_[i];
    ahead[i % kAhead] = HashName(z.names_.data() + n.name, n.name_len);
    __builtin_prefetch(&z.slots_[ahead[i % kAhead] & z.mask_], 1);
  };
  for (uint32_t i = 0; i < count && i < kAhead; ++i) hash_ahead(i);
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t h = ahead[i % kAhead];
    if (i + kAhead < count) hash_ahead(i + kAhead);
    uint64_t s = h & z.mask_;
    while (z.slots_[s].node != kNone) s = (s + 1) & z.mask_;
    z.slots_[s] = {static_cast<uint32_t>(h >> 32), i};
  }
}

}  // namespace tandem::zone
