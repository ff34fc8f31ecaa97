// Zone building: group records into nodes and RRsets, add empty non-terminals, check the
// zone, resolve additional-section targets and lay out the flat index.
#include "dataplane/zone/builder.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
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
  auto [it, inserted] = node_ids_.try_emplace(
      std::string(reinterpret_cast<const char*>(lower), len), static_cast<uint32_t>(nodes_.size()));
  if (inserted) {
    nodes_.push_back({static_cast<uint32_t>(names_.size()), static_cast<uint8_t>(len)});
    names_.insert(names_.end(), lower, lower + len);
  }
  return it->second;
}

void ZoneBuilder::Add(const uint8_t* owner, size_t owner_len, uint16_t type, uint32_t ttl,
                      const uint8_t* rdata, uint16_t rdlen, Position where) {
  std::string lower = Lowered(owner, owner_len);
  if (!dns::IsSubdomain(reinterpret_cast<const uint8_t*>(lower.data()), lower.size(),
                        reinterpret_cast<const uint8_t*>(apex_.data()), apex_.size())) {
    warnings_.push_back({where, absl::StrCat("out-of-zone record ", NameText(lower), " ",
                                             dns::TypeToText(type), " ignored")});
    return;
  }
  if (dns::IsMetaType(type)) {
    errors_.push_back({where, absl::StrCat(NameText(lower), ": type ", dns::TypeToText(type),
                                           " cannot be stored in a zone")});
    return;
  }
  if (!RdataValid(type, rdata, rdlen)) {
    errors_.push_back({where, absl::StrCat(NameText(lower), " ", dns::TypeToText(type),
                                           ": malformed RDATA")});
    return;
  }
  if (type == dns::kTypeSOA && lower != apex_) {
    errors_.push_back({where, absl::StrCat(NameText(lower), ": SOA record not at the zone apex ",
                                           NameText(apex_))});
    return;
  }
  uint32_t node = NodeFor(reinterpret_cast<const uint8_t*>(lower.data()), lower.size());
  records_.push_back({node, type, rdlen, ttl, rdata_.size(), where});
  rdata_.insert(rdata_.end(), rdata, rdata + rdlen);
}

void ZoneBuilder::AddEmptyNonTerminals() {
  size_t real = nodes_.size();
  for (size_t i = 1; i < real; ++i) {
    std::string name(reinterpret_cast<const char*>(names_.data() + nodes_[i].name), nodes_[i].len);
    // Parents up to (not including) the apex.
    size_t pos = static_cast<uint8_t>(name[0]) + 1;
    while (name.size() - pos > apex_.size()) {
      uint32_t before = static_cast<uint32_t>(nodes_.size());
      NodeFor(reinterpret_cast<const uint8_t*>(name.data() + pos), name.size() - pos);
      if (nodes_.size() == before) break;  // already present: so are its ancestors
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

  // Group by node, then type; keep the order records came in within an RRset.
  std::stable_sort(records_.begin(), records_.end(), [](const Record& a, const Record& b) {
    return a.node != b.node ? a.node < b.node : a.type < b.type;
  });

  z.names_ = names_;
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
      std::vector<std::pair<const uint8_t*, uint16_t>> seen;
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
  // Iterating an RRset calls Next() once past its last record; a zero length after the
  // last RRset keeps that read inside the arena.
  z.rdata_.push_back(0);
  z.rdata_.push_back(0);

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

  // Wildcard children: "*.<parent>".
  for (Node& n : z.nodes_) {
    const uint8_t* name = z.names_.data() + n.name;
    if (name[0] == 1 && name[1] == '*' && (n.flags & kApex) == 0) {
      auto it = node_ids_.find(std::string(reinterpret_cast<const char*>(name + 2), n.name_len - 2));
      if (it != node_ids_.end()) z.nodes_[it->second].flags |= kWildcardChild;
    }
  }
  FillAdditional(z);
  BuildIndex(z);
  return zone;
}

std::shared_ptr<const Zone> ZoneBuilder::Unavailable(const std::string& apex) {
  ZoneBuilder b(apex);
  auto zone = std::make_shared<Zone>();
  zone->name_text_ = NameText(b.apex_);
  zone->names_ = b.names_;
  zone->nodes_.push_back({0, static_cast<uint8_t>(b.apex_.size()),
                          static_cast<uint8_t>(dns::CountLabels(b.names_.data())), kApex, 0, 0});
  zone->servfail_ = true;
  b.BuildIndex(*zone);
  return zone;
}

void ZoneBuilder::FillAdditional(Zone& z) {
  for (RRset& set : z.rrsets_) {
    int off = AdditionalTargetOffset(set.type);
    if (off < 0) continue;
    set.additional = static_cast<uint32_t>(z.additional_.size());
    Rdata rr = z.First(set);
    for (uint16_t k = 0; k < set.count; ++k, rr = z.Next(rr)) {
      std::string target = Lowered(rr.data + off, rr.size - off);
      auto it = node_ids_.find(target);
      uint32_t node = kNone;
      if (it != node_ids_.end()) {
        const Node& n = z.nodes_[it->second];
        if (z.FindRRset(n, dns::kTypeA) || z.FindRRset(n, dns::kTypeAAAA)) node = it->second;
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
  for (uint32_t i = 0; i < z.nodes_.size(); ++i) {
    const Node& n = z.nodes_[i];
    uint64_t h = HashName(z.names_.data() + n.name, n.name_len);
    uint64_t s = h & z.mask_;
    while (z.slots_[s].node != kNone) s = (s + 1) & z.mask_;
    z.slots_[s] = {static_cast<uint32_t>(h >> 32), i};
  }
}

}  // namespace tandem::zone
