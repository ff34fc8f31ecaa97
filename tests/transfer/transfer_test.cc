// Unit tests of the zone transfer building blocks that need no socket:
//   - ZoneCopy: FromRecords checks, Apply of IXFR differences, Save/Load round trip;
//   - Difference and Journal: Append, Chain, Load from disk, max_versions;
//   - TransferServer::Answer: AXFR and IXFR streams (current serial, a serial in the
//     history, an unknown serial), allow_transfer, TSIG (signed, wrong secret); the AXFR
//     in the zone's order, streamed message by message (50k names in messages of at most
//     16 KiB, a sink that refuses a message ending the transfer), and Serve's framing;
//   - SerialNewer: RFC 1982 edge cases.
// The transfer client's stream parsing (control::Transfer) is exercised against real
// servers by tests/integration/test_primary.py, not here.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "config/config.h"
#include "control/journal.h"
#include "control/transfer.h"
#include "control/transfer_out.h"
#include "control/tsig.h"
#include "control/zone_copy.h"
#include "control/zone_file.h"
#include "dataplane/address.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/record.h"
#include "dataplane/dns/rrtype.h"
#include "dataplane/dns/wire.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/dns_message.h"

namespace tandem::control {
namespace {

namespace fs = std::filesystem;

constexpr char kZone[] = "example.com.";

std::string Wire(const std::string& text) {
  auto w = dns::NameFromText(text);
  EXPECT_TRUE(w.ok()) << text;
  return w.ok() ? *w : std::string();
}

std::string Bytes(std::initializer_list<uint8_t> b) { return std::string(b.begin(), b.end()); }

dns::Record Rec(const std::string& owner, uint16_t type, uint32_t ttl, std::string rdata) {
  return dns::Record{Wire(owner), type, dns::kClassIn, ttl, std::move(rdata)};
}

dns::Record A(const std::string& owner, uint8_t last, uint32_t ttl = 300) {
  return Rec(owner, dns::kTypeA, ttl, Bytes({192, 0, 2, last}));
}

dns::Record Soa(uint32_t serial, const std::string& owner = kZone) {
  std::string rd = Wire("ns1.example.com.") + Wire("hostmaster.example.com.");
  std::string nums(20, '\0');
  auto* p = reinterpret_cast<uint8_t*>(nums.data());
  dns::Put32(p, serial);
  dns::Put32(p + 4, 3600);
  dns::Put32(p + 8, 600);
  dns::Put32(p + 12, 86400);
  dns::Put32(p + 16, 300);
  return Rec(owner, dns::kTypeSOA, 3600, rd + nums);
}

dns::Record Ns(const std::string& target) { return Rec(kZone, dns::kTypeNS, 3600, Wire(target)); }

// A small valid zone at `serial`.
std::vector<dns::Record> BaseRecords(uint32_t serial) {
  return {Soa(serial), Ns("ns1.example.com."), A("ns1.example.com.", 1), A("www.example.com.", 10),
          A("www.example.com.", 11)};
}

// A record's identity for set comparisons: lower-case owner text, type, TTL, RDATA hex.
std::string Id(const dns::Record& r) {
  std::string owner = r.owner;
  dns::LowerName(reinterpret_cast<uint8_t*>(owner.data()), owner.size());
  std::string hex;
  char b[3];
  for (unsigned char c : r.rdata) {
    std::snprintf(b, sizeof b, "%02x", c);
    hex += b;
  }
  return absl::StrCat(dns::NameToText(reinterpret_cast<const uint8_t*>(owner.data())), " ",
                      dns::TypeToText(r.type), " ", r.ttl, " ", hex);
}

std::multiset<std::string> Ids(const std::vector<dns::Record>& rs) {
  std::multiset<std::string> out;
  for (const auto& r : rs) out.insert(Id(r));
  return out;
}

// ---- SerialNewer ----------------------------------------------------------------------

TEST(SerialNewer, Rfc1982) {
  EXPECT_FALSE(SerialNewer(0, 0));
  EXPECT_FALSE(SerialNewer(7, 7));
  EXPECT_TRUE(SerialNewer(1, 0));
  EXPECT_FALSE(SerialNewer(0, 1));
  // 2^31 - 1 ahead is newer; exactly 2^31 apart is undefined: neither is newer here.
  EXPECT_TRUE(SerialNewer(0x7fffffffu, 0));
  EXPECT_FALSE(SerialNewer(0, 0x7fffffffu));
  EXPECT_FALSE(SerialNewer(0x80000000u, 0));
  EXPECT_FALSE(SerialNewer(0, 0x80000000u));
  // Wraparound: 0 and 1 follow 0xffffffff.
  EXPECT_TRUE(SerialNewer(0, 0xffffffffu));
  EXPECT_TRUE(SerialNewer(1, 0xffffffffu));
  EXPECT_FALSE(SerialNewer(0xffffffffu, 0));
  EXPECT_TRUE(SerialNewer(0x80000000u, 0x7fffffffu));
  EXPECT_TRUE(SerialNewer(5, 0x80000006u));   // 2^31 - 1 ahead across the wrap
  EXPECT_FALSE(SerialNewer(0x80000006u, 5));
}

// ---- ZoneCopy -------------------------------------------------------------------------

TEST(ZoneCopy, FromRecordsAcceptsAZone) {
  auto c = ZoneCopy::FromRecords(Wire(kZone), BaseRecords(7));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->serial(), 7u);
  EXPECT_EQ(c->size(), 5u);
  EXPECT_EQ(c->soa().type, dns::kTypeSOA);
  auto z = c->Build();
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_EQ((*z)->serial(), 7u);
}

TEST(ZoneCopy, FromRecordsRejectsTwoSoas) {
  auto rs = BaseRecords(7);
  rs.push_back(Soa(8));
  auto c = ZoneCopy::FromRecords(Wire(kZone), rs);
  EXPECT_FALSE(c.ok());
}

TEST(ZoneCopy, FromRecordsRejectsNoSoa) {
  auto rs = BaseRecords(7);
  rs.erase(rs.begin());
  EXPECT_FALSE(ZoneCopy::FromRecords(Wire(kZone), rs).ok());
  EXPECT_FALSE(ZoneCopy::FromRecords(Wire(kZone), {}).ok());
}

TEST(ZoneCopy, FromRecordsRejectsOutOfZone) {
  auto rs = BaseRecords(7);
  rs.push_back(A("www.example.org.", 1));
  auto c = ZoneCopy::FromRecords(Wire(kZone), rs);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("out-of-zone"), std::string::npos) << c.status();
  // A name that merely ends in the same characters is outside too.
  rs = BaseRecords(7);
  rs.push_back(A("badexample.com.", 1));
  EXPECT_FALSE(ZoneCopy::FromRecords(Wire(kZone), rs).ok());
}

TEST(ZoneCopy, FromRecordsRejectsSoaBelowApex) {
  auto rs = BaseRecords(7);
  rs[0] = Soa(7, "sub.example.com.");
  EXPECT_FALSE(ZoneCopy::FromRecords(Wire(kZone), rs).ok());
}

IxfrDiff Diff(uint32_t from, uint32_t to, std::vector<dns::Record> removed, std::vector<dns::Record> added) {
  IxfrDiff d;
  d.from_soa = Soa(from);
  d.to_soa = Soa(to);
  d.removed = std::move(removed);
  d.added = std::move(added);
  return d;
}

TEST(ZoneCopy, ApplyChainOfTwo) {
  auto c = ZoneCopy::FromRecords(Wire(kZone), BaseRecords(1));
  ASSERT_TRUE(c.ok());
  std::vector<IxfrDiff> diffs = {
      Diff(1, 2, {A("www.example.com.", 11)}, {A("www.example.com.", 12), A("new.example.com.", 5)}),
      Diff(2, 3, {A("new.example.com.", 5)}, {A("mail.example.com.", 25)}),
  };
  auto n = c->Apply(diffs);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->serial(), 3u);
  std::vector<dns::Record> want = {Soa(3), Ns("ns1.example.com."), A("ns1.example.com.", 1),
                                   A("www.example.com.", 10), A("www.example.com.", 12),
                                   A("mail.example.com.", 25)};
  EXPECT_EQ(Ids(n->records()), Ids(want));
  // The original copy is unchanged (immutable).
  EXPECT_EQ(c->serial(), 1u);
  EXPECT_EQ(Ids(c->records()), Ids(BaseRecords(1)));
  EXPECT_TRUE(n->Build().ok());
}

TEST(ZoneCopy, ApplyIsCaseInsensitiveForOwners) {
  auto c = ZoneCopy::FromRecords(Wire(kZone), BaseRecords(1));
  ASSERT_TRUE(c.ok());
  auto n = c->Apply({Diff(1, 2, {A("WWW.Example.COM.", 11)}, {})});
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->size(), 4u);
}

// Names inside RDATA compare case-insensitively too: a primary may spell them with another
// case in the IXFR than in the AXFR the copy came from (tandemd's own MessageWriter does:
// compression points "Mail.example.com." at an earlier "mail.example.com.").
TEST(ZoneCopy, ApplyRemovesRecordWhoseRdataNamesDifferInCase) {
  auto rs = BaseRecords(1);
  rs.push_back(Rec("mx.example.com.", dns::kTypeMX, 300, Bytes({0, 10}) + Wire("Mail.Example.com.")));
  auto c = ZoneCopy::FromRecords(Wire(kZone), rs);
  ASSERT_TRUE(c.ok());
  auto n = c->Apply({Diff(1, 2, {Rec("mx.example.com.", dns::kTypeMX, 300, Bytes({0, 10}) + Wire("mail.example.com."))}, {})});
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->serial(), 2u);
  EXPECT_EQ(n->size(), 5u);  // the MX is gone
}

TEST(ZoneCopy, ApplyReplacesSoaSpelledWithAnotherCase) {
  auto c = ZoneCopy::FromRecords(Wire(kZone), BaseRecords(1));
  ASSERT_TRUE(c.ok());
  IxfrDiff d = Diff(1, 2, {}, {A("new.example.com.", 7)});
  // The difference's old SOA names the same servers as the copy's, in another case.
  d.from_soa.rdata = Wire("NS1.example.com.") + Wire("hostmaster.EXAMPLE.com.") +
                     d.from_soa.rdata.substr(d.from_soa.rdata.size() - 20);
  auto n = c->Apply({d});
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->serial(), 2u);
  EXPECT_EQ(n->size(), 6u);  // one SOA, the new one
}

TEST(ZoneCopy, ApplyRejectsWrongFromSerial) {
  auto c = ZoneCopy::FromRecords(Wire(kZone), BaseRecords(5));
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->Apply({Diff(4, 6, {}, {A("x.example.com.", 1)})}).ok());
  // The second difference does not follow the first.
  EXPECT_FALSE(c->Apply({Diff(5, 6, {}, {A("x.example.com.", 1)}), Diff(7, 8, {}, {})}).ok());
}

TEST(ZoneCopy, ApplyRejectsRemovingAbsentRecord) {
  auto c = ZoneCopy::FromRecords(Wire(kZone), BaseRecords(5));
  ASSERT_TRUE(c.ok());
  auto n = c->Apply({Diff(5, 6, {A("www.example.com.", 99)}, {})});
  EXPECT_FALSE(n.ok());
  // Removed in the first difference, removed again in the second.
  n = c->Apply({Diff(5, 6, {A("www.example.com.", 10)}, {}), Diff(6, 7, {A("www.example.com.", 10)}, {})});
  EXPECT_FALSE(n.ok());
}

using testing::TempDir;

TEST(ZoneCopy, SaveLoadRoundTrip) {
  TempDir tmp;
  auto rs = BaseRecords(2024010101);
  rs.push_back(Rec("txt.example.com.", dns::kTypeTXT, 60, Bytes({5, 'h', 'e', 'l', 'l', 'o', 0})));
  rs.push_back(Rec("mx.example.com.", dns::kTypeMX, 120, Bytes({0, 10}) + Wire("mail.example.com.")));
  rs.push_back(Rec("gen.example.com.", 65280, 0, ""));  // empty RDATA, TTL 0
  rs.push_back(Rec("gen.example.com.", 65280, 0, Bytes({0, 1, 2, 0xff})));
  auto c = ZoneCopy::FromRecords(Wire(kZone), rs);
  ASSERT_TRUE(c.ok()) << c.status();
  std::string path = tmp.path() + "/sub/dir/copy.zone";  // the directory is created
  ASSERT_TRUE(c->Save(path).ok());
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  auto l = ZoneCopy::Load(Wire(kZone), path);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->serial(), 2024010101u);
  EXPECT_EQ(Ids(l->records()), Ids(c->records()));
  // Saving again over the file works (rename over the old one).
  ASSERT_TRUE(l->Save(path).ok());
  auto l2 = ZoneCopy::Load(Wire(kZone), path);
  ASSERT_TRUE(l2.ok());
  EXPECT_EQ(Ids(l2->records()), Ids(c->records()));
}

TEST(ZoneCopy, LoadMissingFileFails) {
  TempDir tmp;
  EXPECT_FALSE(ZoneCopy::Load(Wire(kZone), tmp.path() + "/nothing.zone").ok());
}

// ---- Difference and Journal -----------------------------------------------------------

TEST(Difference, AddedRemovedAndTtlChanges) {
  auto from = BaseRecords(1);
  auto to = BaseRecords(2);
  to.erase(std::remove_if(to.begin(), to.end(), [](const dns::Record& r) { return Id(r) == Id(A("www.example.com.", 11)); }),
           to.end());
  to.push_back(A("new.example.com.", 1));
  for (auto& r : to)
    if (Id(r) == Id(A("ns1.example.com.", 1))) r.ttl = 999;  // a TTL change: removed and added
  IxfrDiff d = Difference(from, to);
  EXPECT_EQ(SoaSerial(d.from_soa), 1u);
  EXPECT_EQ(SoaSerial(d.to_soa), 2u);
  EXPECT_EQ(Ids(d.removed), Ids({A("www.example.com.", 11), A("ns1.example.com.", 1)}));
  EXPECT_EQ(Ids(d.added), Ids({A("new.example.com.", 1), A("ns1.example.com.", 1, 999)}));
  // Applying it to the old version gives the new one.
  auto c = ZoneCopy::FromRecords(Wire(kZone), from);
  ASSERT_TRUE(c.ok());
  auto n = c->Apply({d});
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(Ids(n->records()), Ids(to));
}

TEST(Journal, MissingDirectoryIsEmpty) {
  TempDir tmp;
  Journal j = Journal::Load(tmp.path() + "/none");
  EXPECT_EQ(j.size(), 0u);
  EXPECT_FALSE(j.Chain(1, 2).has_value());
}

TEST(Journal, AppendChainLoadRoundTrip) {
  TempDir tmp;
  std::string dir = tmp.path() + "/ixfr";
  auto v1 = BaseRecords(1);
  auto v2 = v1;
  v2[0] = Soa(2);
  v2.push_back(A("two.example.com.", 2));
  auto v3 = v2;
  v3[0] = Soa(3);
  v3.push_back(A("three.example.com.", 3));
  {
    Journal j = Journal::Load(dir);
    ASSERT_TRUE(j.Append(Difference(v1, v2)).ok());
    ASSERT_TRUE(j.Append(Difference(v2, v3)).ok());
    EXPECT_EQ(j.size(), 2u);
    auto c = j.Chain(1, 3);
    ASSERT_TRUE(c.has_value());
    ASSERT_EQ(c->size(), 2u);
    EXPECT_EQ(SoaSerial((*c)[0]->from_soa), 1u);
    EXPECT_EQ(SoaSerial((*c)[1]->to_soa), 3u);
    c = j.Chain(2, 3);
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->size(), 1u);
    c = j.Chain(1, 2);
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->size(), 1u);
    EXPECT_FALSE(j.Chain(0, 3).has_value());  // serial not in the history
    EXPECT_FALSE(j.Chain(1, 4).has_value());  // target not reached
  }
  Journal j = Journal::Load(dir);
  EXPECT_EQ(j.size(), 2u);
  auto c = j.Chain(1, 3);
  ASSERT_TRUE(c.has_value());
  ASSERT_EQ(c->size(), 2u);
  EXPECT_EQ(Ids((*c)[0]->added), Ids({A("two.example.com.", 2)}));
  EXPECT_EQ(Ids((*c)[1]->added), Ids({A("three.example.com.", 3)}));
  EXPECT_TRUE((*c)[0]->removed.empty());
  EXPECT_EQ(Id((*c)[0]->from_soa), Id(Soa(1)));
  // Applying the loaded chain to v1 gives v3.
  auto copy = ZoneCopy::FromRecords(Wire(kZone), v1);
  ASSERT_TRUE(copy.ok());
  std::vector<IxfrDiff> diffs;
  for (const IxfrDiff* d : *c) diffs.push_back(*d);
  auto n = copy->Apply(diffs);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(Ids(n->records()), Ids(v3));
}

TEST(Journal, BrokenChainRestartsHistory) {
  TempDir tmp;
  std::string dir = tmp.path() + "/ixfr";
  Journal j = Journal::Load(dir);
  ASSERT_TRUE(j.Append(Diff(1, 2, {}, {A("a.example.com.", 1)})).ok());
  ASSERT_TRUE(j.Append(Diff(2, 3, {}, {A("b.example.com.", 2)})).ok());
  // From 10: does not follow 3, the history restarts from it.
  ASSERT_TRUE(j.Append(Diff(10, 11, {}, {A("c.example.com.", 3)})).ok());
  EXPECT_EQ(j.size(), 1u);
  EXPECT_FALSE(j.Chain(1, 3).has_value());
  EXPECT_FALSE(j.Chain(1, 11).has_value());
  EXPECT_TRUE(j.Chain(10, 11).has_value());
  Journal l = Journal::Load(dir);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_TRUE(l.Chain(10, 11).has_value());
  EXPECT_FALSE(l.Chain(1, 3).has_value());
}

TEST(Journal, LoadKeepsTheLongestChainOnDisk) {
  TempDir tmp;
  std::string dir = tmp.path() + "/ixfr";
  {
    Journal j = Journal::Load(dir);
    ASSERT_TRUE(j.Append(Diff(1, 2, {}, {})).ok());
    ASSERT_TRUE(j.Append(Diff(2, 3, {}, {})).ok());
  }
  // A stray history file whose from serial does not follow: the longer chain is kept.
  {
    Journal other = Journal::Load(tmp.path() + "/other");
    ASSERT_TRUE(other.Append(Diff(7, 8, {}, {})).ok());
  }
  for (const auto& e : fs::directory_iterator(tmp.path() + "/other"))
    fs::copy_file(e.path(), fs::path(dir) / ("99999999999999999999.diff"));
  Journal l = Journal::Load(dir);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_FALSE(l.Chain(7, 8).has_value());
  EXPECT_TRUE(l.Chain(1, 3).has_value());
}

TEST(Journal, MaxVersions) {
  TempDir tmp;
  std::string dir = tmp.path() + "/ixfr";
  {
    Journal j = Journal::Load(dir, 3);
    for (uint32_t s = 1; s <= 6; ++s) {
      ASSERT_TRUE(j.Append(Diff(s, s + 1, {}, {})).ok());
    }
    EXPECT_EQ(j.size(), 3u);
    EXPECT_FALSE(j.Chain(1, 7).has_value());
    EXPECT_FALSE(j.Chain(3, 7).has_value());
    auto c = j.Chain(4, 7);
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->size(), 3u);
  }
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".diff") ++files;
  EXPECT_EQ(files, 3u);
  Journal l = Journal::Load(dir, 3);
  EXPECT_EQ(l.size(), 3u);
  EXPECT_TRUE(l.Chain(4, 7).has_value());
  EXPECT_FALSE(l.Chain(3, 7).has_value());
}

// ---- TransferServer::Answer -----------------------------------------------------------

constexpr char kV1[] = R"($ORIGIN example.com.
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 86400 300
@ IN NS ns1
@ IN NS ns2
ns1 IN A 192.0.2.1
ns2 IN A 192.0.2.2
www IN A 192.0.2.10
www IN AAAA 2001:db8::10
mail IN MX 10 www
txt IN TXT "hello" "world"
old IN A 192.0.2.99
)";

std::string Version(int serial, const std::string& extra_edits) {
  std::string t = kV1;
  std::string from = "hostmaster 1 ";
  t.replace(t.find(from), from.size(), absl::StrCat("hostmaster ", serial, " "));
  return t + extra_edits;
}

std::shared_ptr<const zone::Zone> LoadZone(const std::string& text) {
  auto z = LoadZoneText(kZone, text);
  EXPECT_TRUE(z.ok()) << z.status();
  return z.ok() ? z->zone : nullptr;
}

sockaddr_in Addr(const char* ip) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(40000);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

std::string Query(uint16_t type, uint16_t id = 0x4242, std::optional<uint32_t> ixfr_serial = std::nullopt,
                  const std::string& qname = kZone) {
  testing::QueryOptions o;
  o.id = id;
  auto q = testing::MakeQuery(qname, type, o);
  std::string m(q.begin(), q.end());
  if (ixfr_serial) {
    dns::AppendRecord(&m, Soa(*ixfr_serial));
    dns::Put16(reinterpret_cast<uint8_t*>(m.data()) + 8, 1);  // NSCOUNT
  }
  return m;
}

struct Parsed {
  bool ok = true;
  std::string error;
  uint16_t id = 0;
  bool qr = false, aa = false;
  int rcode = 0;
  int qdcount = 0;
  std::vector<dns::Record> answer;
  size_t additional = 0;
};

Parsed Parse(const std::string& m) {
  Parsed p;
  const auto* b = reinterpret_cast<const uint8_t*>(m.data());
  if (m.size() < dns::kHeaderSize) return {false, "short"};
  p.id = dns::header::Id(b);
  p.qr = dns::header::Qr(b);
  p.aa = dns::header::Aa(b);
  p.rcode = dns::header::Rcode(b);
  p.qdcount = dns::header::Qdcount(b);
  p.additional = dns::header::Arcount(b);
  size_t pos = dns::kHeaderSize;
  for (int i = 0; i < p.qdcount; ++i) {
    while (pos < m.size() && b[pos] != 0) {
      if (b[pos] & 0xc0) return {false, "compressed question"};
      pos += 1 + b[pos];
    }
    pos += 5;
  }
  int budget = 4096;  // per message, as control::Transfer reads them
  for (int i = 0; i < dns::header::Ancount(b); ++i) {
    dns::Record r;
    if (!dns::ReadRecord(b, m.size(), &pos, &budget, &r, &p.error)) {
      p.ok = false;
      return p;
    }
    p.answer.push_back(std::move(r));
  }
  if (dns::header::Nscount(b) != 0) {
    p.ok = false;
    p.error = "authority records";
  }
  return p;
}

// Every answer record of a stream, in order; checks each message parses and is NOERROR.
std::vector<dns::Record> Stream(const std::vector<std::string>& msgs, uint16_t id) {
  std::vector<dns::Record> out;
  for (size_t i = 0; i < msgs.size(); ++i) {
    Parsed p = Parse(msgs[i]);
    EXPECT_TRUE(p.ok) << "message " << i << ": " << p.error;
    EXPECT_EQ(p.id, id) << "message " << i;
    EXPECT_TRUE(p.qr);
    EXPECT_TRUE(p.aa);
    EXPECT_EQ(p.rcode, 0) << "message " << i;
    EXPECT_EQ(p.qdcount, i == 0 ? 1 : 0) << "message " << i;
    EXPECT_LE(msgs[i].size(), 16384u);
    for (auto& r : p.answer) out.push_back(std::move(r));
  }
  return out;
}

class AnswerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    v1_ = LoadZone(kV1);
    // v2: www A changed, old removed, new added, txt TTL changed.
    std::string v2 = Version(2, "");
    v2.replace(v2.find("www IN A 192.0.2.10"), 19, "www IN A 192.0.2.20");
    v2.replace(v2.find("old IN A 192.0.2.99\n"), 20, "");
    v2.replace(v2.find("txt IN TXT"), 10, "txt 60 IN TXT");
    v2 += "new IN A 192.0.2.50\n";
    v2_ = LoadZone(v2);
    // v3: one more record.
    v3_ = LoadZone(v2.replace(v2.find("hostmaster 2 "), 13, "hostmaster 3 ") + "three IN TXT \"3\"\n");
    ASSERT_TRUE(v1_ && v2_ && v3_);
    journal_ = std::make_shared<Journal>(Journal::Load(tmp_.path() + "/ixfr"));
    ASSERT_TRUE(journal_->Append(Difference(ZoneRecords(*v1_), ZoneRecords(*v2_))).ok());
    ASSERT_TRUE(journal_->Append(Difference(ZoneRecords(*v2_), ZoneRecords(*v3_))).ok());
    allow_ = {*dataplane::ParsePrefix("127.0.0.0/8")};
  }

  std::unique_ptr<TransferServer> Server(std::shared_ptr<const zone::Zone> z, std::vector<tsig::Key> keys = {}) {
    auto lookup = [this, z](const std::string& apex) -> std::optional<TransferableZone> {
      if (apex != Wire(kZone)) return std::nullopt;
      return TransferableZone{z, allow_, journal_};
    };
    return std::make_unique<TransferServer>(lookup, std::move(keys), /*threads=*/0);
  }

  std::vector<std::string> Ask(TransferServer& s, const std::string& q, const char* from = "127.0.0.1") {
    sockaddr_in a = Addr(from);
    return s.Answer(q, reinterpret_cast<const sockaddr*>(&a));
  }

  TempDir tmp_;
  std::shared_ptr<const zone::Zone> v1_, v2_, v3_;
  std::shared_ptr<Journal> journal_;
  std::vector<dataplane::Prefix> allow_;
};

TEST_F(AnswerTest, AxfrStartsAndEndsWithSoaAndHoldsEveryRecordOnce) {
  auto s = Server(v3_);
  auto msgs = Ask(*s, Query(dns::kTypeAXFR, 0x1111));
  ASSERT_FALSE(msgs.empty());
  auto rs = Stream(msgs, 0x1111);
  ASSERT_GE(rs.size(), 3u);
  EXPECT_EQ(rs.front().type, dns::kTypeSOA);
  EXPECT_EQ(rs.back().type, dns::kTypeSOA);
  EXPECT_EQ(Id(rs.front()), Id(rs.back()));
  EXPECT_EQ(SoaSerial(rs.front()), 3u);
  std::vector<dns::Record> body(rs.begin(), rs.end() - 1);
  EXPECT_EQ(Ids(body), Ids(ZoneRecords(*v3_)));
  std::set<std::string> unique;
  for (const auto& r : body) EXPECT_TRUE(unique.insert(Id(r)).second) << "twice: " << Id(r);
  for (size_t i = 1; i + 1 < rs.size(); ++i) EXPECT_NE(rs[i].type, dns::kTypeSOA) << "SOA inside the stream";
}

TEST_F(AnswerTest, AxfrOfALargeZoneSpansSeveralMessages) {
  std::string text = kV1;
  for (int i = 0; i < 2000; ++i) text += absl::StrCat("h", i, " IN TXT \"record number ", i, " of a zone that needs several messages\"\n");
  auto big = LoadZone(text);
  ASSERT_TRUE(big);
  auto s = Server(big);
  auto msgs = Ask(*s, Query(dns::kTypeAXFR, 0x2222));
  EXPECT_GT(msgs.size(), 3u);
  auto rs = Stream(msgs, 0x2222);
  ASSERT_FALSE(rs.empty());
  EXPECT_EQ(rs.front().type, dns::kTypeSOA);
  EXPECT_EQ(rs.back().type, dns::kTypeSOA);
  std::vector<dns::Record> body(rs.begin(), rs.end() - 1);
  EXPECT_EQ(body.size(), ZoneRecords(*big).size());
  EXPECT_EQ(Ids(body), Ids(ZoneRecords(*big)));
}

TEST_F(AnswerTest, IxfrFromCurrentSerialIsOneSoa) {
  auto s = Server(v3_);
  for (uint32_t serial : {3u, 4u}) {  // current, and newer than ours
    auto msgs = Ask(*s, Query(dns::kTypeIXFR, 0x3333, serial));
    auto rs = Stream(msgs, 0x3333);
    ASSERT_EQ(rs.size(), 1u) << "client serial " << serial;
    EXPECT_EQ(rs[0].type, dns::kTypeSOA);
    EXPECT_EQ(SoaSerial(rs[0]), 3u);
  }
}

TEST_F(AnswerTest, IxfrFromHistoryIsRfc1995Sequence) {
  auto s = Server(v3_);
  auto msgs = Ask(*s, Query(dns::kTypeIXFR, 0x4444, 1));
  auto rs = Stream(msgs, 0x4444);
  // SOA3, SOA1, removed(1->2), SOA2, added(1->2), SOA2, removed(2->3), SOA3, added(2->3), SOA3
  IxfrDiff d12 = Difference(ZoneRecords(*v1_), ZoneRecords(*v2_));
  IxfrDiff d23 = Difference(ZoneRecords(*v2_), ZoneRecords(*v3_));
  ASSERT_EQ(rs.size(), 1 + 2 + d12.removed.size() + d12.added.size() + 2 + d23.removed.size() + d23.added.size() + 1);
  size_t i = 0;
  auto soa_at = [&](size_t k, uint32_t serial) {
    ASSERT_LT(k, rs.size());
    EXPECT_EQ(rs[k].type, dns::kTypeSOA) << "position " << k;
    EXPECT_EQ(SoaSerial(rs[k]), serial) << "position " << k;
  };
  soa_at(i++, 3);
  auto section = [&](const std::vector<dns::Record>& want) {
    std::vector<dns::Record> got(rs.begin() + i, rs.begin() + i + want.size());
    EXPECT_EQ(Ids(got), Ids(want));
    i += want.size();
  };
  soa_at(i++, 1);
  section(d12.removed);
  soa_at(i++, 2);
  section(d12.added);
  soa_at(i++, 2);
  section(d23.removed);
  soa_at(i++, 3);
  section(d23.added);
  soa_at(i++, 3);
  EXPECT_EQ(i, rs.size());
  // What changed, spelled out: www A .10 -> .20, old removed, new added, txt TTL 300 -> 60.
  std::set<std::string> removed, added;
  for (const auto& r : d12.removed) removed.insert(Id(r));
  for (const auto& r : d12.added) added.insert(Id(r));
  EXPECT_EQ(removed.size(), 3u);
  EXPECT_EQ(added.size(), 3u);
  EXPECT_TRUE(removed.count(Id(A("www.example.com.", 10))));
  EXPECT_TRUE(removed.count(Id(A("old.example.com.", 99))));
  EXPECT_TRUE(added.count(Id(A("www.example.com.", 20))));
  EXPECT_TRUE(added.count(Id(A("new.example.com.", 50))));

  // From serial 2: only the last difference.
  rs = Stream(Ask(*s, Query(dns::kTypeIXFR, 0x4445, 2)), 0x4445);
  ASSERT_EQ(rs.size(), 4 + d23.removed.size() + d23.added.size());
  EXPECT_EQ(SoaSerial(rs[0]), 3u);
  EXPECT_EQ(SoaSerial(rs[1]), 2u);
  EXPECT_EQ(SoaSerial(rs.back()), 3u);

  // Applied to v1 the differences give v3.
  auto c = ZoneCopy::FromRecords(Wire(kZone), ZoneRecords(*v1_));
  ASSERT_TRUE(c.ok());
  auto n = c->Apply({d12, d23});
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(Ids(n->records()), Ids(ZoneRecords(*v3_)));
}

TEST_F(AnswerTest, IxfrFromUnknownSerialIsWholeZone) {
  auto s = Server(v3_);
  // Older than anything in the history, and one 2^31+ away (older by RFC 1982 too).
  for (uint32_t serial : {0u, 0x80000010u}) {
    auto rs = Stream(Ask(*s, Query(dns::kTypeIXFR, 0x5555, serial)), 0x5555);
    ASSERT_GE(rs.size(), 3u);
    EXPECT_EQ(rs.front().type, dns::kTypeSOA);
    EXPECT_EQ(rs.back().type, dns::kTypeSOA);
    EXPECT_EQ(SoaSerial(rs.front()), 3u);
    EXPECT_NE(rs[1].type, dns::kTypeSOA) << "AXFR-style: the second record is not an SOA";
    std::vector<dns::Record> body(rs.begin(), rs.end() - 1);
    EXPECT_EQ(Ids(body), Ids(ZoneRecords(*v3_))) << "client serial " << serial;
  }

  // Without a journal at all: the whole zone too.
  journal_ = nullptr;
  auto s2 = Server(v3_);
  auto rs = Stream(Ask(*s2, Query(dns::kTypeIXFR, 0x5556, 1)), 0x5556);
  std::vector<dns::Record> body2(rs.begin(), rs.end() - 1);
  EXPECT_EQ(Ids(body2), Ids(ZoneRecords(*v3_)));
}

TEST_F(AnswerTest, ClientOutsideAllowIsRefused) {
  allow_ = {*dataplane::ParsePrefix("127.0.0.2/32")};
  auto s2 = Server(v3_);
  for (uint16_t type : {dns::kTypeAXFR, dns::kTypeIXFR}) {
    auto msgs = type == dns::kTypeIXFR ? Ask(*s2, Query(type, 0x6666, 1)) : Ask(*s2, Query(type, 0x6666));
    ASSERT_EQ(msgs.size(), 1u);
    Parsed p = Parse(msgs[0]);
    EXPECT_EQ(p.rcode, dns::kRefused);
    EXPECT_EQ(p.id, 0x6666);
    EXPECT_TRUE(p.qr);
    EXPECT_TRUE(p.answer.empty());
  }
  // 127.0.0.2 is in.
  auto rs = Stream(Ask(*s2, Query(dns::kTypeAXFR, 0x6667), "127.0.0.2"), 0x6667);
  EXPECT_FALSE(rs.empty());
  // An empty allow list admits nobody.
  allow_.clear();
  auto s3 = Server(v3_);
  auto msgs = Ask(*s3, Query(dns::kTypeAXFR, 0x6668));
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(Parse(msgs[0]).rcode, dns::kRefused);
}

TEST_F(AnswerTest, ZoneNotServedIsNotAuth) {
  auto s = Server(v3_);
  auto msgs = Ask(*s, Query(dns::kTypeAXFR, 0x7777, std::nullopt, "example.org."));
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(Parse(msgs[0]).rcode, dns::kNotAuth);
}

tsig::Key Key(const std::string& secret) {
  config::TsigKey k;
  k.name = "xfr-key";
  k.algorithm = "hmac-sha256";
  k.secret = secret;
  auto key = tsig::MakeKey(k);
  EXPECT_TRUE(key.ok()) << key.status();
  return *key;
}

// ---- Streaming ------------------------------------------------------------------------

// The records of a zone in the order an AXFR has always carried them, read straight from
// the zone: the SOA, then node by node, RRset by RRset, RDATA by RDATA (the SOA not again).
std::vector<std::string> ZoneOrder(const zone::Zone& z) {
  std::vector<std::string> out;
  auto id = [&](const zone::Node& n, const zone::RRset& set, zone::Rdata rr) {
    return Id(dns::Record{std::string(reinterpret_cast<const char*>(z.NodeName(n)), n.name_len),
                          set.type, dns::kClassIn, set.ttl,
                          std::string(reinterpret_cast<const char*>(rr.data), rr.size)});
  };
  out.push_back(id(z.node(0), z.soa(), z.First(z.soa())));
  for (size_t i = 0; i < z.node_count(); ++i) {
    const zone::Node& n = z.NodeAt(i);
    for (const zone::RRset* set = z.RRsetsBegin(n); set != z.RRsetsEnd(n); ++set) {
      if (set->type == dns::kTypeSOA) continue;
      for (zone::Rdata rr : z.Records(*set)) out.push_back(id(n, *set, rr));
    }
  }
  return out;
}

std::vector<std::string> InOrder(const std::vector<dns::Record>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(Id(r));
  return out;
}

// A zone of `names` names beside kV1's: A, AAAA, MX and TXT records, so that messages
// fill with records of several sizes and with names compressed against each other.
std::string ManyNames(int names) {
  std::string text = kV1;
  for (int i = 0; i < names; ++i) {
    switch (i % 4) {
      case 0:
        absl::StrAppend(&text, "n", i, " IN A 192.0.", (i >> 8) & 255, ".", i & 255, "\n");
        break;
      case 1:
        absl::StrAppend(&text, "n", i, " IN AAAA 2001:db8::", absl::Hex(i >> 16), ":",
                        absl::Hex(i & 0xffff), "\n");
        break;
      case 2:
        absl::StrAppend(&text, "n", i, " IN MX 10 n", i - 2, "\n");
        break;
      default:
        absl::StrAppend(&text, "n", i, " 60 IN TXT \"name ", i, "\"\n");
        break;
    }
  }
  return text;
}

TEST_F(AnswerTest, AxfrCarriesTheZoneInItsOrder) {
  auto s = Server(v3_);
  auto rs = Stream(Ask(*s, Query(dns::kTypeAXFR, 0x1112)), 0x1112);
  ASSERT_GE(rs.size(), 3u);
  std::vector<dns::Record> body(rs.begin(), rs.end() - 1);
  EXPECT_EQ(InOrder(body), ZoneOrder(*v3_));
  EXPECT_EQ(InOrder(body), InOrder(ZoneRecords(*v3_)));
  EXPECT_EQ(Id(rs.back()), Id(rs.front()));
}

TEST_F(AnswerTest, AxfrOf50kNamesStreamsMessagesOfAtMost16KiB) {
  auto big = LoadZone(ManyNames(50000));
  ASSERT_TRUE(big);
  auto s = Server(big);
  sockaddr_in from = Addr("127.0.0.1");
  std::vector<std::string> msgs;
  s->Answer(Query(dns::kTypeAXFR, 0x2223), reinterpret_cast<const sockaddr*>(&from),
            [&](const std::string& m) {
              EXPECT_LE(m.size(), 16384u) << "message " << msgs.size();
              msgs.push_back(m);
              return true;
            });
  EXPECT_GT(msgs.size(), 50u);
  auto rs = Stream(msgs, 0x2223);
  ASSERT_EQ(rs.size(), ZoneRecords(*big).size() + 1);
  std::vector<dns::Record> body(rs.begin(), rs.end() - 1);
  EXPECT_EQ(InOrder(body), ZoneOrder(*big));
  EXPECT_EQ(InOrder(body), InOrder(ZoneRecords(*big)));
  EXPECT_EQ(Id(rs.back()), Id(rs.front()));
  // Every message but the last is full to within one record: none is sent half empty.
  for (size_t i = 0; i + 1 < msgs.size(); ++i)
    EXPECT_GT(msgs[i].size(), 16384u - 300) << "message " << i;

  // IXFR from the current serial: one message holding the SOA alone.
  std::vector<std::string> soa_only;
  s->Answer(Query(dns::kTypeIXFR, 0x2224, 1), reinterpret_cast<const sockaddr*>(&from),
            [&](const std::string& m) {
              soa_only.push_back(m);
              return true;
            });
  ASSERT_EQ(soa_only.size(), 1u);
  rs = Stream(soa_only, 0x2224);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(Id(rs[0]), ZoneOrder(*big)[0]);
}

TEST_F(AnswerTest, SinkRefusingAMessageEndsTheTransfer) {
  auto big = LoadZone(ManyNames(20000));
  ASSERT_TRUE(big);
  tsig::Key key = Key("secret secret secret secret!");
  auto s = Server(big, {key});
  sockaddr_in from = Addr("127.0.0.1");
  for (bool sign : {false, true}) {
    for (size_t stop_at : {1u, 3u}) {
      std::string q = Query(dns::kTypeAXFR, 0x2225);
      if (sign) {
        ASSERT_TRUE(
            tsig::ClientSession(key).SignRequest(&q, static_cast<uint64_t>(time(nullptr))).ok());
      }
      size_t calls = 0;
      s->Answer(q, reinterpret_cast<const sockaddr*>(&from),
                [&](const std::string&) { return ++calls < stop_at; });
      EXPECT_EQ(calls, stop_at) << "signed " << sign;
    }
  }
  // The same server answers the next request in full.
  auto rs = Stream(Ask(*s, Query(dns::kTypeAXFR, 0x2226)), 0x2226);
  EXPECT_EQ(rs.size(), ZoneRecords(*big).size() + 1);
}

// Serve: the messages of Answer go out on the connection, each behind its two-octet length
// (RFC 1035 4.2.2), and the connection is closed after the last.
TEST_F(AnswerTest, ServedConnectionCarriesTheMessagesFramed) {
  auto big = LoadZone(ManyNames(5000));
  ASSERT_TRUE(big);
  auto lookup = [this, big](const std::string& apex) -> std::optional<TransferableZone> {
    if (apex != Wire(kZone)) return std::nullopt;
    return TransferableZone{big, allow_, journal_};
  };
  TransferServer server(lookup, {}, /*threads=*/1);
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  sockaddr_in from = Addr("127.0.0.1");
  server.OnTransfer(fds[0], Query(dns::kTypeAXFR, 0x2227),
                    reinterpret_cast<const sockaddr*>(&from));
  std::string received;
  char buf[65536];
  for (ssize_t n; (n = read(fds[1], buf, sizeof buf)) > 0;)
    received.append(buf, static_cast<size_t>(n));
  close(fds[1]);
  std::vector<std::string> msgs;
  size_t pos = 0;
  while (pos + 2 <= received.size()) {
    size_t len = dns::Get16(reinterpret_cast<const uint8_t*>(received.data()) + pos);
    ASSERT_LE(pos + 2 + len, received.size()) << "a message cut short";
    msgs.push_back(received.substr(pos + 2, len));
    pos += 2 + len;
  }
  EXPECT_EQ(pos, received.size());
  EXPECT_EQ(msgs, Ask(server, Query(dns::kTypeAXFR, 0x2227)));
}

TEST_F(AnswerTest, TsigSignedAxfrIsSignedEveryMessage) {
  tsig::Key key = Key("secret secret secret secret!");
  auto s = Server(v3_, {key});
  tsig::ClientSession client(key);
  std::string q = Query(dns::kTypeAXFR, 0x8888);
  uint64_t now = static_cast<uint64_t>(time(nullptr));
  ASSERT_TRUE(client.SignRequest(&q, now).ok());
  auto msgs = Ask(*s, q);
  ASSERT_FALSE(msgs.empty());
  std::vector<std::string> stripped;
  for (auto& m : msgs) {
    auto n = client.VerifyResponse(reinterpret_cast<uint8_t*>(m.data()), m.size(), now);
    ASSERT_TRUE(n.ok()) << n.status();
    stripped.push_back(m.substr(0, *n));
  }
  EXPECT_TRUE(client.Finish().ok());
  EXPECT_EQ(client.signed_messages(), static_cast<int>(msgs.size()));
  auto rs = Stream(stripped, 0x8888);
  std::vector<dns::Record> body(rs.begin(), rs.end() - 1);
  EXPECT_EQ(Ids(body), Ids(ZoneRecords(*v3_)));
}

TEST_F(AnswerTest, TsigSignedMultiMessageAxfr) {
  std::string text = kV1;
  for (int i = 0; i < 1500; ++i) text += absl::StrCat("h", i, " IN TXT \"record number ", i, " of a signed multi-message transfer\"\n");
  auto big = LoadZone(text);
  ASSERT_TRUE(big);
  tsig::Key key = Key("secret secret secret secret!");
  auto s = Server(big, {key});
  tsig::ClientSession client(key);
  std::string q = Query(dns::kTypeAXFR, 0x8889);
  uint64_t now = static_cast<uint64_t>(time(nullptr));
  ASSERT_TRUE(client.SignRequest(&q, now).ok());
  auto msgs = Ask(*s, q);
  ASSERT_GT(msgs.size(), 2u);
  std::vector<std::string> stripped;
  for (auto& m : msgs) {
    auto n = client.VerifyResponse(reinterpret_cast<uint8_t*>(m.data()), m.size(), now);
    ASSERT_TRUE(n.ok()) << n.status();
    stripped.push_back(m.substr(0, *n));
  }
  EXPECT_TRUE(client.Finish().ok());
  EXPECT_EQ(client.signed_messages(), static_cast<int>(msgs.size()));
  auto rs = Stream(stripped, 0x8889);
  std::vector<dns::Record> body(rs.begin(), rs.end() - 1);
  EXPECT_EQ(Ids(body), Ids(ZoneRecords(*big)));
}

TEST_F(AnswerTest, TsigWrongSecretIsNotAuth) {
  tsig::Key server_key = Key("secret secret secret secret!");
  tsig::Key wrong = Key("wrong wrong wrong wrong wrong!");
  auto s = Server(v3_, {server_key});
  tsig::ClientSession client(wrong);
  std::string q = Query(dns::kTypeAXFR, 0x9999);
  ASSERT_TRUE(client.SignRequest(&q, static_cast<uint64_t>(time(nullptr))).ok());
  auto msgs = Ask(*s, q);
  ASSERT_EQ(msgs.size(), 1u);
  Parsed p = Parse(msgs[0]);
  EXPECT_EQ(p.rcode, dns::kNotAuth);
  EXPECT_TRUE(p.answer.empty());
  EXPECT_EQ(p.additional, 1u);  // the unsigned TSIG carrying BADSIG
  // An unknown key name: NOTAUTH too.
  config::TsigKey other;
  other.name = "other-key";
  other.algorithm = "hmac-sha256";
  other.secret = "secret secret secret secret!";
  tsig::ClientSession c2(*tsig::MakeKey(other));
  q = Query(dns::kTypeAXFR, 0x999a);
  ASSERT_TRUE(c2.SignRequest(&q, static_cast<uint64_t>(time(nullptr))).ok());
  msgs = Ask(*s, q);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(Parse(msgs[0]).rcode, dns::kNotAuth);
}

}  // namespace
}  // namespace tandem::control
