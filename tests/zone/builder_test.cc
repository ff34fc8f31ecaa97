// ZoneBuilder over records in any order: owners in scattered runs become one node each,
// empty non-terminals appear however the names come, RRsets keep their records' order,
// wildcard parents and additional-section targets are found. Checked through the Zone's
// public reading API (Find, node flags, RRsets), against the same zone in grouped order.
#include "dataplane/zone/builder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/rrtype.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::zone {
namespace {

struct Rec {
  std::string owner;  // text
  uint16_t type;
  std::string rdata;  // wire
};

std::string Wire(const std::string& text) { return *dns::NameFromText(text); }

std::string A(uint8_t a, uint8_t b) {
  return std::string{10, 0, static_cast<char>(a), static_cast<char>(b)};
}

std::string Soa() {
  std::string rd = Wire("ns1.example.com.") + Wire("hostmaster.example.com.");
  rd += std::string{0, 0, 0, 7};  // serial 7
  rd += std::string(16, '\x01');
  return rd;
}

std::string Txt(const std::string& s) { return std::string(1, static_cast<char>(s.size())) + s; }

std::shared_ptr<const Zone> Build(const std::vector<Rec>& records) {
  ZoneBuilder b(Wire("example.com."));
  for (const Rec& r : records) {
    std::string owner = Wire(r.owner);
    b.Add(reinterpret_cast<const uint8_t*>(owner.data()), owner.size(), r.type, 300,
          reinterpret_cast<const uint8_t*>(r.rdata.data()), static_cast<uint16_t>(r.rdata.size()),
          {});
  }
  auto z = b.Build();
  for (const auto& e : b.errors()) ADD_FAILURE() << e.message;
  return z;
}

uint32_t Find(const Zone& z, const std::string& text) {
  std::string w = Wire(text);
  dns::LowerName(reinterpret_cast<uint8_t*>(w.data()), w.size());
  const auto* p = reinterpret_cast<const uint8_t*>(w.data());
  return z.Find(p, w.size(), HashName(p, w.size()));
}

// Every record as "owner type rdata-bytes", in the zone's order within each RRset.
std::vector<std::string> Listing(const Zone& z) {
  std::vector<std::string> out;
  for (size_t i = 0; i < z.node_count(); ++i) {
    const Node& n = z.NodeAt(i);
    std::string owner = dns::NameToText(z.NodeName(n));
    for (const RRset* s = z.RRsetsBegin(n); s != z.RRsetsEnd(n); ++s) {
      for (Rdata rr : z.Records(*s))
        out.push_back(absl::StrCat(owner, " ", s->type, " ",
                                   std::string(reinterpret_cast<const char*>(rr.data), rr.size)));
    }
  }
  return out;
}

std::multiset<std::string> AsSet(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

std::vector<Rec> Base() {
  return {{"example.com.", dns::kTypeSOA, Soa()},
          {"example.com.", dns::kTypeNS, Wire("ns1.example.com.")},
          {"ns1.example.com.", dns::kTypeA, A(0, 1)}};
}

TEST(ZoneBuilder, ScatteredOwnersMakeOneNodeEach) {
  std::vector<Rec> grouped = Base();
  for (int i = 0; i < 200; ++i) {
    grouped.push_back(
        {absl::StrCat("h", i, ".example.com."), dns::kTypeA, A(1, static_cast<uint8_t>(i))});
    grouped.push_back(
        {absl::StrCat("h", i, ".example.com."), dns::kTypeTXT, Txt(absl::StrCat("t", i))});
  }
  std::vector<Rec> scattered = grouped;
  std::shuffle(scattered.begin() + 3, scattered.end(), std::mt19937(7));
  auto g = Build(grouped);
  auto s = Build(scattered);
  ASSERT_TRUE(g && s);
  EXPECT_EQ(s->node_count(), g->node_count());
  EXPECT_EQ(AsSet(Listing(*s)), AsSet(Listing(*g)));
  for (int i = 0; i < 200; ++i) {
    uint32_t id = Find(*s, absl::StrCat("H", i, ".Example.com."));
    ASSERT_NE(id, kNone) << i;
    const Node& n = s->node(id);
    EXPECT_EQ(n.rrset_count, 2u) << i;
    EXPECT_NE(s->FindRRset(n, dns::kTypeA), nullptr);
    EXPECT_NE(s->FindRRset(n, dns::kTypeTXT), nullptr);
  }
  EXPECT_EQ(Find(*s, "h200.example.com."), kNone);
}

TEST(ZoneBuilder, RRsetKeepsTheOrderRecordsCameIn) {
  std::vector<Rec> rs = Base();
  // Types out of order at one owner, its TXT records interleaved with other owners'.
  rs.push_back({"t.example.com.", dns::kTypeTXT, Txt("first")});
  rs.push_back({"t.example.com.", dns::kTypeA, A(2, 1)});
  rs.push_back({"u.example.com.", dns::kTypeA, A(2, 2)});
  rs.push_back({"t.example.com.", dns::kTypeTXT, Txt("second")});
  rs.push_back({"T.example.com.", dns::kTypeTXT, Txt("third")});
  rs.push_back({"t.example.com.", dns::kTypeTXT, Txt("second")});  // a duplicate: one record
  auto z = Build(rs);
  ASSERT_TRUE(z);
  uint32_t id = Find(*z, "t.example.com.");
  ASSERT_NE(id, kNone);
  const RRset* txt = z->FindRRset(z->node(id), dns::kTypeTXT);
  ASSERT_NE(txt, nullptr);
  ASSERT_EQ(txt->count, 3u);
  std::vector<std::string> got;
  for (Rdata rr : z->Records(*txt))
    got.emplace_back(reinterpret_cast<const char*>(rr.data) + 1, rr.size - 1);
  EXPECT_EQ(got, (std::vector<std::string>{"first", "second", "third"}));
  EXPECT_EQ(z->serial(), 7u);  // the SOA found at the apex although NS came after it
}

TEST(ZoneBuilder, EmptyNonTerminalsWhateverTheOrder) {
  std::vector<Rec> rs = Base();
  // 300 chains of 8 labels each below the apex: 2400 empty non-terminals for 300 owners,
  // more than the table sized for the owners holds at first.
  for (int i = 0; i < 300; ++i)
    rs.push_back({absl::StrCat("leaf.a.b.c.d.e.f.c", i, ".example.com."), dns::kTypeA,
                  A(3, static_cast<uint8_t>(i))});
  rs.push_back({"x.c7.example.com.", dns::kTypeA, A(4, 1)});  // below an existing chain
  std::shuffle(rs.begin() + 3, rs.end(), std::mt19937(11));
  auto z = Build(rs);
  ASSERT_TRUE(z);
  EXPECT_EQ(z->node_count(), 2u + 300u * 8u + 1u);  // apex, ns1, the chains, x.c7
  for (int i = 0; i < 300; ++i) {
    for (std::string ent : {"a.b.c.d.e.f.c", "d.e.f.c", "f.c", "c"}) {
      uint32_t id = Find(*z, absl::StrCat(ent, i, ".example.com."));
      ASSERT_NE(id, kNone) << ent << i;
      EXPECT_EQ(z->node(id).rrset_count, 0u);
    }
    uint32_t leaf = Find(*z, absl::StrCat("leaf.a.b.c.d.e.f.c", i, ".example.com."));
    ASSERT_NE(leaf, kNone);
    EXPECT_EQ(z->node(leaf).rrset_count, 1u);
  }
}

TEST(ZoneBuilder, WildcardParentsAndAdditionalTargets) {
  std::vector<Rec> rs = {
      {"*.wild.example.com.", dns::kTypeA, A(5, 1)},
      {"mx.example.com.", dns::kTypeMX, std::string{0, 10} + Wire("Mail.Example.com.")},
      {"mail.example.com.", dns::kTypeA, A(5, 2)},
      {"ns2.example.com.", dns::kTypeTXT, Txt("no address")}};
  for (const Rec& r : Base()) rs.push_back(r);
  rs.push_back({"example.com.", dns::kTypeNS, Wire("ns2.example.com.")});
  auto z = Build(rs);
  ASSERT_TRUE(z);
  uint32_t wild = Find(*z, "wild.example.com.");
  ASSERT_NE(wild, kNone);
  EXPECT_NE(z->node(wild).flags & kWildcardChild, 0);
  EXPECT_EQ(z->node(Find(*z, "example.com.")).flags & kWildcardChild, 0);
  const RRset* mx = z->FindRRset(z->node(Find(*z, "mx.example.com.")), dns::kTypeMX);
  ASSERT_NE(mx, nullptr);
  EXPECT_EQ(z->AdditionalNode(*mx, 0), Find(*z, "mail.example.com."));
  const RRset* ns = z->FindRRset(z->node(0), dns::kTypeNS);
  ASSERT_NE(ns, nullptr);
  ASSERT_EQ(ns->count, 2u);
  EXPECT_EQ(z->AdditionalNode(*ns, 0), Find(*z, "ns1.example.com."));
  EXPECT_EQ(z->AdditionalNode(*ns, 1), kNone);  // ns2 has no address
}

TEST(ZoneBuilder, OutOfZoneOwnersAreDropped) {
  std::vector<Rec> rs = Base();
  rs.push_back({"www.example.org.", dns::kTypeA, A(6, 1)});
  rs.push_back({"badexample.com.", dns::kTypeA, A(6, 2)});
  ZoneBuilder b(Wire("Example.COM."));
  for (const Rec& r : rs) {
    std::string owner = Wire(r.owner);
    b.Add(reinterpret_cast<const uint8_t*>(owner.data()), owner.size(), r.type, 300,
          reinterpret_cast<const uint8_t*>(r.rdata.data()), static_cast<uint16_t>(r.rdata.size()),
          {});
  }
  auto z = b.Build();
  ASSERT_TRUE(z);
  EXPECT_EQ(b.warnings().size(), 2u);
  EXPECT_EQ(z->node_count(), 2u);
}

// A field of /proc/self/smaps for the mapping holding `p` ("" if none).
std::string SmapsField(const void* p, const std::string& field) {
  std::ifstream smaps("/proc/self/smaps");
  auto at = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  std::string line;
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      inside = lo <= at && at < hi;
    } else if (inside && line.rfind(field + ":", 0) == 0) {
      return line.substr(field.size() + 1);
    }
  }
  return "";
}

bool HasFlag(const std::string& vm_flags, const std::string& flag) {
  return (" " + vm_flags + " ").find(" " + flag + " ") != std::string::npos;
}

// A zone is written on small pages and moved onto huge pages when asked (once served):
// the mapping's flags say so whether or not the kernel finds huge pages at that moment.
TEST(ZoneBuilder, ArenaMovesOntoHugePagesWhenAsked) {
  std::vector<Rec> rs = Base();
  for (int i = 0; i < 60000; ++i) {
    std::string owner = absl::StrCat("host-", i, ".example.com.");
    rs.push_back({owner, dns::kTypeA, A(static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i))});
    rs.push_back({owner, dns::kTypeTXT, Txt(absl::StrCat("a record to fill the arena ", i))});
  }
  auto z = Build(rs);
  ASSERT_TRUE(z);
  const Node* arena = &z->node(0);  // the apex starts the arena
  ASSERT_EQ(reinterpret_cast<uintptr_t>(arena) % (2 << 20), 0u);
  if (!HugePagesAllowed()) {
    EXPECT_FALSE(z->PreferHugePages()) << "transparent huge pages are off here";
    return;
  }
  if (!HugePagesOnRequest()) GTEST_SKIP() << "a kernel without MADV_COLLAPSE: huge pages from the first touch";
  EXPECT_TRUE(HasFlag(SmapsField(arena, "VmFlags"), "nh")) << SmapsField(arena, "VmFlags");
  EXPECT_EQ(std::stol(SmapsField(arena, "AnonHugePages")), 0) << "built on small pages";
  bool collapsed = z->PreferHugePages();
  std::string flags = SmapsField(arena, "VmFlags");
  EXPECT_TRUE(HasFlag(flags, "hg")) << flags;
  EXPECT_FALSE(HasFlag(flags, "nh")) << flags;
  if (collapsed) {
    EXPECT_GE(std::stol(SmapsField(arena, "AnonHugePages")), 2048);
  }
  EXPECT_FALSE(z->PreferHugePages()) << "only the first call does anything";
  for (int i = 0; i < 60000; i += 997) EXPECT_NE(Find(*z, absl::StrCat("host-", i, ".example.com.")), kNone);
}

// The lookup layout: each node lies in the arena right before its RRsets, its name and
// its RDATA, nodes in zone order, so a lookup past the index reads one place. Checked on
// nodes of many sizes; references from Find and from the zone order agree.
TEST(ZoneBuilder, NodesLieBesideTheirData) {
  std::vector<Rec> rs = Base();
  std::mt19937 rng(5);
  for (int i = 0; i < 5000; ++i) {
    std::string owner = absl::StrCat("n", i, ".example.com.");
    rs.push_back({owner, dns::kTypeA, A(static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i))});
    if (i % 3 == 0) rs.push_back({owner, dns::kTypeTXT, Txt(std::string(rng() % 90, 'x'))});
    if (i % 7 == 0) rs.push_back({owner, dns::kTypeAAAA, std::string(16, '\x20')});
  }
  auto z = Build(rs);
  ASSERT_TRUE(z);
  uintptr_t previous_end = 0;
  for (size_t i = 0; i < z->node_count(); ++i) {
    const Node& n = z->NodeAt(i);
    std::string owner = dns::NameToText(z->NodeName(n));
    ASSERT_EQ(&z->node(Find(*z, owner)), &n) << owner;
    auto at = [](const void* p) { return reinterpret_cast<uintptr_t>(p); };
    if (i > 0) {  // right after the node before, but for alignment
      ASSERT_GE(at(&n), previous_end) << owner;
      ASSERT_LT(at(&n) - previous_end, alignof(Node)) << owner;
    }
    ASSERT_EQ(at(z->RRsetsBegin(n)), at(&n) + sizeof(Node)) << owner;
    ASSERT_EQ(at(z->NodeName(n)), at(z->RRsetsEnd(n))) << owner;
    uintptr_t end = at(z->NodeName(n)) + n.name_len;
    for (const RRset* s = z->RRsetsBegin(n); s != z->RRsetsEnd(n); ++s) {
      ASSERT_EQ(at(z->First(*s).data), end + 2) << owner;  // (length, bytes) records, set after set
      for (Rdata rr : z->Records(*s)) end = at(rr.data) + rr.size;
    }
    previous_end = end;
  }
}

// Find at every name length (dns::SameOctets compares eight octets at a time, then the
// short tails): under the apex "t." every name of 3 to 24 octets is found, and none with a
// single octet of its first label changed.
TEST(ZoneBuilder, FindComparesEveryOctetOfNamesOfEveryLength) {
  ZoneBuilder b(Wire("t."));
  auto add = [&](const std::string& owner, uint16_t type, const std::string& rdata) {
    std::string w = Wire(owner);
    b.Add(reinterpret_cast<const uint8_t*>(w.data()), w.size(), type, 300,
          reinterpret_cast<const uint8_t*>(rdata.data()), static_cast<uint16_t>(rdata.size()), {});
  };
  std::string soa = Wire("ns.t.") + Wire("h.t.") + std::string(20, '\x01');
  add("t.", dns::kTypeSOA, soa);
  add("t.", dns::kTypeNS, Wire("ns.t."));
  for (int k = 1; k <= 20; ++k) add(std::string(k, 'a') + ".t.", dns::kTypeA, A(1, static_cast<uint8_t>(k)));
  auto z = b.Build();
  ASSERT_TRUE(z);
  EXPECT_EQ(Find(*z, "t."), 0u);
  for (int k = 1; k <= 20; ++k) {
    std::string label(k, 'a');
    uint32_t id = Find(*z, label + ".t.");
    ASSERT_NE(id, kNone) << k;
    EXPECT_EQ(dns::NameToText(z->NodeName(z->node(id))), label + ".t.");
    for (int i = 0; i < k; ++i) {
      std::string other = label;
      other[i] = 'b';
      EXPECT_EQ(Find(*z, other + ".t."), kNone) << other;
    }
  }
}

}  // namespace
}  // namespace tandem::zone
