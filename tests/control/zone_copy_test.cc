// Zone copies held as built zones, and what feeds them: RecordArena (whole zones from
// AXFR), CopyBuilder (a transfer's sink, with its builder thread for large zones),
// ZoneCopy::Save/Load (names that need escapes), Apply (order, re-added records, TTL
// changes), Difference between two built zones (the same as between record lists).
#include "control/zone_copy.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "control/journal.h"
#include "control/transfer.h"
#include "control/zone_file.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/rrtype.h"
#include "dataplane/dns/wire.h"
#include "tests/testing/temp_dir.h"

namespace tandem::control {
namespace {

namespace fs = std::filesystem;

std::string Wire(const std::string& text) { return *dns::NameFromText(text); }

dns::Record Rec(const std::string& owner, uint16_t type, uint32_t ttl, std::string rdata) {
  return dns::Record{Wire(owner), type, dns::kClassIn, ttl, std::move(rdata)};
}

dns::Record A(const std::string& owner, uint8_t c, uint8_t d, uint32_t ttl = 300) {
  return Rec(owner, dns::kTypeA, ttl,
             std::string{10, 0, static_cast<char>(c), static_cast<char>(d)});
}

dns::Record Soa(uint32_t serial) {
  std::string rd = Wire("ns1.example.com.") + Wire("hostmaster.example.com.");
  std::string nums(20, '\0');
  auto* p = reinterpret_cast<uint8_t*>(nums.data());
  dns::Put32(p, serial);
  dns::Put32(p + 4, 3600);
  dns::Put32(p + 8, 600);
  dns::Put32(p + 12, 86400);
  dns::Put32(p + 16, 300);
  return Rec("example.com.", dns::kTypeSOA, 3600, rd + nums);
}

std::vector<dns::Record> Small(uint32_t serial) {
  return {Soa(serial), Rec("example.com.", dns::kTypeNS, 3600, Wire("ns1.example.com.")),
          A("ns1.example.com.", 0, 1)};
}

// owner (lower-case text), type, TTL, RDATA bytes
std::string Id(const dns::Record& r) {
  std::string owner = r.owner;
  dns::LowerName(reinterpret_cast<uint8_t*>(owner.data()), owner.size());
  return absl::StrCat(dns::NameToText(reinterpret_cast<const uint8_t*>(owner.data())), " ", r.type,
                      " ", r.ttl, " ", dns::CanonicalRdata(r.type, r.rdata));
}

std::multiset<std::string> Ids(const std::vector<dns::Record>& rs) {
  std::multiset<std::string> out;
  for (const auto& r : rs) out.insert(Id(r));
  return out;
}

using testing::TempDir;

TEST(RecordArena, RoundTripAcrossBlocks) {
  RecordArena arena;
  EXPECT_TRUE(arena.empty());
  EXPECT_EQ(arena.begin(), arena.end());
  std::vector<dns::Record> in;
  // Records of up to 60000 octets: a 1 MiB block holds a few, so many blocks are used.
  for (int i = 0; i < 100; ++i) {
    std::string rdata(static_cast<size_t>((i * 7919) % 60000), static_cast<char>(i));
    in.push_back(Rec(absl::StrCat("r", i, ".example.com."), static_cast<uint16_t>(65280 + i % 3),
                     static_cast<uint32_t>(i), rdata));
    in.back().rclass = static_cast<uint16_t>(1 + i % 2);
  }
  for (const auto& r : in) arena.Add(r);
  EXPECT_EQ(arena.size(), in.size());
  EXPECT_GT(arena.bytes(), size_t{2} << 20);
  size_t i = 0;
  for (RecordArena::View v : arena) {
    ASSERT_LT(i, in.size());
    dns::Record r = v.ToRecord();
    EXPECT_EQ(r.owner, in[i].owner);
    EXPECT_EQ(r.type, in[i].type);
    EXPECT_EQ(r.rclass, in[i].rclass);
    EXPECT_EQ(r.ttl, in[i].ttl);
    EXPECT_EQ(r.rdata, in[i].rdata) << i;
    ++i;
  }
  EXPECT_EQ(i, in.size());
}

TEST(ZoneCopy, FromArenaIsFromRecords) {
  std::vector<dns::Record> rs = Small(3);
  rs.push_back(
      Rec("mx.example.com.", dns::kTypeMX, 60, std::string{0, 5} + Wire("Mail.example.com.")));
  rs.push_back(A("WWW.example.com.", 1, 1));
  RecordArena arena;
  for (const auto& r : rs) arena.Add(r);
  auto a = ZoneCopy::FromRecords(Wire("example.com."), arena);
  auto v = ZoneCopy::FromRecords(Wire("example.com."), rs);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(Ids(a->records()), Ids(v->records()));
  EXPECT_EQ(Ids(a->records()), Ids(rs));
  EXPECT_EQ(a->serial(), 3u);
  EXPECT_EQ(a->size(), rs.size());
}

// Enough records for many batches: the copy is built on the builder's thread.
std::vector<dns::Record> Large(uint32_t serial, int names) {
  std::vector<dns::Record> rs = Small(serial);
  for (int i = 0; i < names; ++i) {
    std::string owner = absl::StrCat("h", i, ".example.com.");
    rs.push_back(A(owner, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)));
    if (i % 4 == 0) rs.push_back(Rec(owner, dns::kTypeTXT, 300, std::string(1, 3) + "txt"));
  }
  return rs;
}

TEST(CopyBuilder, LargeZoneAsASink) {
  std::vector<dns::Record> rs = Large(9, 60000);
  CopyBuilder b(Wire("example.com."));
  ZoneSink& sink = b;
  for (const auto& r : rs) sink.Add(RecordArena::View::Of(r));
  auto c = b.Finish();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->serial(), 9u);
  EXPECT_EQ(c->size(), rs.size());
  EXPECT_EQ(Ids(c->records()), Ids(rs));
  EXPECT_FALSE(b.Finish().ok());  // once
}

TEST(CopyBuilder, ErrorsInALargeZone) {
  std::vector<dns::Record> rs = Large(9, 60000);
  rs.push_back(A("www.example.org.", 1, 1));  // last: found after many batches
  CopyBuilder b(Wire("example.com."));
  for (const auto& r : rs) b.Add(r);
  auto c = b.Finish();
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("out-of-zone record www.example.org."),
            std::string::npos)
      << c.status();

  rs = Large(9, 60000);
  rs.push_back(Soa(10));
  CopyBuilder two(Wire("example.com."));
  for (const auto& r : rs) two.Add(r);
  EXPECT_FALSE(two.Finish().ok());

  rs = Large(9, 60000);
  rs.push_back(Rec("cname.example.com.", dns::kTypeCNAME, 300, Wire("www.example.com.")));
  rs.push_back(A("cname.example.com.", 9, 9));
  CopyBuilder bad(Wire("example.com."));
  for (const auto& r : rs) bad.Add(r);
  c = bad.Finish();
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("CNAME beside other data"), std::string::npos)
      << c.status();
}

TEST(CopyBuilder, GivenUpWhileItsThreadRuns) {
  // A failed transfer drops its sink without Finish: the builder's thread ends with it.
  for (int round = 0; round < 3; ++round) {
    CopyBuilder b(Wire("example.com."));
    for (const auto& r : Large(1, 40000)) b.Add(r);
  }
  SUCCEED();
}

TEST(ZoneCopy, SaveLoadNamesThatNeedEscapes) {
  TempDir tmp;
  std::vector<dns::Record> rs = Small(5);
  // Labels holding a dot, a backslash, a space, quotes, parentheses, ; @ $, and octets
  // outside printable ASCII (0x00 and 0xff): written escaped, read back the same.
  std::string odd = std::string(
                        "\x07"
                        "a.b\\c d") +
                    std::string(
                        "\x06"
                        "\"()@;$") +
                    std::string("\x02\x00\xff", 3) + Wire("example.com.");
  rs.push_back(dns::Record{odd, dns::kTypeA, dns::kClassIn, 60, std::string{10, 0, 0, 1}});
  rs.push_back(Rec("empty.example.com.", 65280, 0, ""));
  rs.push_back(Rec("txt.example.com.", dns::kTypeTXT, 120, std::string("\x05hello\x00", 7)));
  auto c = ZoneCopy::FromRecords(Wire("example.com."), rs);
  ASSERT_TRUE(c.ok()) << c.status();
  std::string path = tmp.path() + "/copy.zone";
  ASSERT_TRUE(c->Save(path).ok());
  auto l = ZoneCopy::Load(Wire("example.com."), path);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(Ids(l->records()), Ids(rs));
  EXPECT_EQ(l->serial(), 5u);
}

TEST(ZoneCopy, SaveLoadLargeZone) {
  TempDir tmp;
  std::vector<dns::Record> rs = Large(11, 50000);
  auto c = ZoneCopy::FromRecords(Wire("example.com."), rs);
  ASSERT_TRUE(c.ok()) << c.status();
  std::string path = tmp.path() + "/copy.zone";
  ASSERT_TRUE(c->Save(path).ok());
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  auto l = ZoneCopy::Load(Wire("example.com."), path);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->size(), rs.size());
  EXPECT_EQ(Ids(l->records()), Ids(rs));
}

IxfrDiff Diff(uint32_t from, uint32_t to, std::vector<dns::Record> removed,
              std::vector<dns::Record> added) {
  return IxfrDiff{Soa(from), Soa(to), std::move(removed), std::move(added)};
}

TEST(ZoneCopy, ApplyKeepsOrderAndTakesTheLastVersion) {
  std::vector<dns::Record> rs = Small(1);
  rs.push_back(Rec("t.example.com.", dns::kTypeTXT, 300,
                   std::string("\x01"
                               "a",
                               2)));
  rs.push_back(Rec("t.example.com.", dns::kTypeTXT, 300,
                   std::string("\x01"
                               "b",
                               2)));
  auto c = ZoneCopy::FromRecords(Wire("example.com."), rs);
  ASSERT_TRUE(c.ok());
  auto n = c->Apply({
      Diff(1, 2, {},
           {Rec("t.example.com.", dns::kTypeTXT, 300,
                std::string("\x01"
                            "c",
                            2))}),
      // Removed and added again: present once.
      Diff(2, 3,
           {Rec("T.example.com.", dns::kTypeTXT, 300,
                std::string("\x01"
                            "a",
                            2))},
           {Rec("t.example.com.", dns::kTypeTXT, 300,
                std::string("\x01"
                            "a",
                            2))}),
  });
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->serial(), 3u);
  std::vector<std::string> txt;
  for (const auto& r : n->records())
    if (r.type == dns::kTypeTXT) txt.push_back(r.rdata.substr(1));
  EXPECT_EQ(txt, (std::vector<std::string>{"b", "c", "a"}));  // the copy's order, then additions
  // A TTL change (removed, added with the new TTL) of the whole RRset.
  auto m =
      n->Apply({Diff(3, 4, {A("ns1.example.com.", 0, 1)}, {A("ns1.example.com.", 0, 1, 999)})});
  ASSERT_TRUE(m.ok()) << m.status();
  for (const auto& r : m->records())
    if (r.type == dns::kTypeA) {
      EXPECT_EQ(r.ttl, 999u);
    }
}

TEST(ZoneCopy, ApplyRejectsAnotherOldSoa) {
  auto c = ZoneCopy::FromRecords(Wire("example.com."), Small(1));
  ASSERT_TRUE(c.ok());
  IxfrDiff d = Diff(1, 2, {}, {});
  d.from_soa.rdata[d.from_soa.rdata.size() - 1] ^= 1;  // same serial, another minimum
  EXPECT_FALSE(c->Apply({d}).ok());
}

TEST(ZoneCopy, ApplyOnALargeZone) {
  std::vector<dns::Record> rs = Large(1, 50000);
  auto c = ZoneCopy::FromRecords(Wire("example.com."), rs);
  ASSERT_TRUE(c.ok());
  auto n =
      c->Apply({Diff(1, 2, {A("h17.example.com.", 0, 17), A("h49999.example.com.", 0xc3, 0x4f)},
                     {A("new.example.com.", 7, 7), A("h17.example.com.", 1, 17)})});
  ASSERT_TRUE(n.ok()) << n.status();
  std::vector<dns::Record> want;
  for (const auto& r : rs) {
    if (Id(r) == Id(A("h17.example.com.", 0, 17)) ||
        Id(r) == Id(A("h49999.example.com.", 0xc3, 0x4f)))
      continue;
    want.push_back(r.type == dns::kTypeSOA ? Soa(2) : r);
  }
  want.push_back(A("new.example.com.", 7, 7));
  want.push_back(A("h17.example.com.", 1, 17));
  EXPECT_EQ(Ids(n->records()), Ids(want));
}

TEST(Difference, OfBuiltZonesIsOfRecordLists) {
  std::vector<dns::Record> v1 = Small(1), v2 = Small(2);
  for (int i = 0; i < 50; ++i) {
    v1.push_back(A(absl::StrCat("h", i, ".example.com."), 0, static_cast<uint8_t>(i)));
    if (i % 5 != 0)
      v2.push_back(
          A(absl::StrCat("h", i, ".example.com."), 0, static_cast<uint8_t>(i)));  // removed
  }
  v1.push_back(
      Rec("mx.example.com.", dns::kTypeMX, 60, std::string{0, 5} + Wire("MAIL.example.com.")));
  v2.push_back(Rec("mx.example.com.", dns::kTypeMX, 60,
                   std::string{0, 5} + Wire("mail.example.com.")));  // same
  v1.push_back(A("ttl.example.com.", 1, 1, 60));
  v2.push_back(A("ttl.example.com.", 1, 1, 120));  // a TTL change
  v2.push_back(A("deep.new.example.com.", 2, 2));  // new, with an empty non-terminal
  auto z1 = ZoneCopy::FromRecords(Wire("example.com."), v1);
  auto z2 = ZoneCopy::FromRecords(Wire("example.com."), v2);
  ASSERT_TRUE(z1.ok() && z2.ok());
  IxfrDiff built = Difference(*z1->zone(), *z2->zone());
  IxfrDiff listed = Difference(v1, v2);
  EXPECT_EQ(SoaSerial(built.from_soa), 1u);
  EXPECT_EQ(SoaSerial(built.to_soa), 2u);
  EXPECT_EQ(Ids(built.removed), Ids(listed.removed));
  EXPECT_EQ(Ids(built.added), Ids(listed.added));
  EXPECT_EQ(built.removed.size(), 11u);  // 10 names, the old TTL
  EXPECT_EQ(built.added.size(), 2u);     // the new TTL, deep.new
  // Applied to the old copy, it gives the new one.
  auto n = z1->Apply({built});
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(Ids(n->records()), Ids(z2->records()));
  EXPECT_TRUE(Difference(*z2->zone(), *n->zone()).added.empty());
}

TEST(ZoneCopy, FromZoneOfALoadedFile) {
  auto loaded = LoadZoneText("example.com",
                             "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 42 1 1 1 1\n"
                             "@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\nwww A 192.0.2.3\n");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ZoneCopy c = ZoneCopy::FromZone(loaded->zone);
  EXPECT_EQ(c.serial(), 42u);
  EXPECT_EQ(c.size(), 5u);
  EXPECT_EQ(c.soa().type, dns::kTypeSOA);
  EXPECT_EQ(c.zone(), loaded->zone);  // the same zone, not a second form of it
}

}  // namespace
}  // namespace tandem::control
