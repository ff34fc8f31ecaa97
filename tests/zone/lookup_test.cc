// Authoritative answers from the handler over a zone built from text: every lookup case
// of RFC 1034 4.3.2 and its successors, checked on the decoded response.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/zone_file.h"
#include "dataplane/handler.h"
#include "dataplane/zone/snapshot.h"
#include "tests/testing/dns_message.h"

namespace tandem {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::Decoded;
using testing::Lines;
using testing::MakeQuery;
using testing::QueryOptions;

constexpr char kZone[] = R"(
$ORIGIN example.com.
$TTL 3600
@        IN SOA ns1 hostmaster 2024010101 7200 900 1209600 300
@        NS  ns1
@        NS  ns2.example.net.
@        MX  10 mail
@        TXT "v=spf1 -all"
ns1      A   192.0.2.1
ns1      AAAA 2001:db8::1
mail     A   192.0.2.25
www      A   192.0.2.80
www      A   192.0.2.81
WWW2     CNAME www
alias3   CNAME www2
out      CNAME www.example.org.
dangling CNAME nothing
srv      SRV 0 5 5060 sip
_sip._udp SRV 0 5 5060 sip
sip      A   192.0.2.60
a.b.c    A   192.0.2.3
*.wild   A   192.0.2.99
*.wild   TXT "wild"
x.wild   AAAA 2001:db8::99
*.cw     CNAME www
sub      NS  ns.sub
sub      NS  ns.elsewhere.org.
ns.sub   A   192.0.2.53
below.sub A  192.0.2.54
sub      DS  12345 8 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
dn       DNAME target.example.com.
www.target A 192.0.2.7
dnout    DNAME example.net.
big      A 10.0.0.1
big      A 10.0.0.2
big      A 10.0.0.3
big      A 10.0.0.4
big      A 10.0.0.5
big      A 10.0.0.6
big      A 10.0.0.7
big      A 10.0.0.8
big      A 10.0.0.9
big      A 10.0.0.10
big      A 10.0.0.11
big      A 10.0.0.12
big      A 10.0.0.13
big      A 10.0.0.14
big      A 10.0.0.15
big      A 10.0.0.16
big      A 10.0.0.17
big      A 10.0.0.18
big      A 10.0.0.19
big      A 10.0.0.20
big      A 10.0.0.21
big      A 10.0.0.22
big      A 10.0.0.23
big      A 10.0.0.24
big      A 10.0.0.25
big      A 10.0.0.26
big      A 10.0.0.27
big      A 10.0.0.28
big      A 10.0.0.29
big      A 10.0.0.30
big      A 10.0.0.31
big      A 10.0.0.32
big      A 10.0.0.33
big      A 10.0.0.34
big      A 10.0.0.35
big      A 10.0.0.36
big      A 10.0.0.37
big      A 10.0.0.38
big      A 10.0.0.39
big      A 10.0.0.40
)";

class LookupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = control::LoadZoneText("example.com", kZone, "example.com.zone");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    snapshot_ = std::make_unique<zone::Snapshot>(std::vector<std::shared_ptr<const zone::Zone>>{loaded->zone});
  }

  Decoded Ask(const std::string& name, uint16_t type, QueryOptions o = {},
              dataplane::Transport t = dataplane::Transport::kUdp) {
    auto q = MakeQuery(name, type, o);
    std::vector<uint8_t> out(65535);
    size_t n = handler_.Answer(snapshot_.get(), q.data(), q.size(), out.data(), out.size(), t, counters_);
    last_size_ = n;
    Decoded d = testing::Decode(out.data(), n);
    EXPECT_TRUE(d.ok) << "undecodable response to " << name;
    EXPECT_TRUE(d.qr);
    EXPECT_EQ(d.id, o.id);
    return d;
  }

  dataplane::QueryHandler handler_;
  dataplane::WorkerCounters counters_;
  std::unique_ptr<zone::Snapshot> snapshot_;
  size_t last_size_ = 0;
};

constexpr uint16_t A = 1, NS = 2, CNAME = 5, SOA = 6, MX = 15, TXT = 16, SRV = 33,
                   DS = 43, DNAME = 39, ANY = 255;
const char* kSoaLine = "example.com. SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 900 1209600 300";

TEST_F(LookupTest, ExactMatchIsAuthoritative) {
  Decoded d = Ask("www.example.com", A);
  EXPECT_EQ(d.rcode, 0);
  EXPECT_TRUE(d.aa);
  EXPECT_FALSE(d.tc);
  EXPECT_THAT(Lines(d.answer), ElementsAre("www.example.com. A 192.0.2.80", "www.example.com. A 192.0.2.81"));
  EXPECT_THAT(d.authority, IsEmpty());
  EXPECT_EQ(d.answer[0].ttl, 3600u);
}

TEST_F(LookupTest, QuestionEchoedWithItsCase) {
  Decoded d = Ask("wWw.ExAmPlE.cOm", A);
  EXPECT_EQ(d.qname_raw, "wWw.ExAmPlE.cOm.");
  EXPECT_EQ(d.answer.size(), 2u);
}

TEST_F(LookupTest, NoDataHasSoaWithNegativeTtl) {
  Decoded d = Ask("www.example.com", MX);
  EXPECT_EQ(d.rcode, 0);
  EXPECT_TRUE(d.aa);
  EXPECT_THAT(d.answer, IsEmpty());
  ASSERT_EQ(d.authority.size(), 1u);
  EXPECT_EQ(d.authority[0].type, SOA);
  EXPECT_EQ(d.authority[0].ttl, 300u);  // min(SOA TTL 3600, MINIMUM 300)
}

TEST_F(LookupTest, NxDomainHasSoa) {
  Decoded d = Ask("nope.example.com", A);
  EXPECT_EQ(d.rcode, 3);
  EXPECT_TRUE(d.aa);
  EXPECT_THAT(Lines(d.authority), ElementsAre(kSoaLine));
}

TEST_F(LookupTest, EmptyNonTerminalIsNoData) {
  Decoded d = Ask("b.c.example.com", A);
  EXPECT_EQ(d.rcode, 0);  // RFC 8020: the name exists
  EXPECT_THAT(d.answer, IsEmpty());
  ASSERT_EQ(d.authority.size(), 1u);
  EXPECT_EQ(Ask("x.b.c.example.com", A).rcode, 3);
}

TEST_F(LookupTest, OutsideEveryZoneIsRefused) {
  Decoded d = Ask("www.example.org", A);
  EXPECT_EQ(d.rcode, 5);
  EXPECT_FALSE(d.aa);
  EXPECT_THAT(d.answer, IsEmpty());
}

TEST_F(LookupTest, CnameChainFollowedInZone) {
  Decoded d = Ask("alias3.example.com", A);
  EXPECT_EQ(d.rcode, 0);
  EXPECT_TRUE(d.aa);
  EXPECT_THAT(Lines(d.answer), ElementsAre("alias3.example.com. CNAME www2.example.com.",
                                           "www.example.com. A 192.0.2.80", "www.example.com. A 192.0.2.81",
                                           "www2.example.com. CNAME www.example.com."));
}

TEST_F(LookupTest, CnameQueryReturnsCnameOnly) {
  Decoded d = Ask("www2.example.com", CNAME);
  EXPECT_THAT(Lines(d.answer), ElementsAre("www2.example.com. CNAME www.example.com."));
}

TEST_F(LookupTest, CnameOutOfZoneStops) {
  Decoded d = Ask("out.example.com", A);
  EXPECT_EQ(d.rcode, 0);
  EXPECT_THAT(Lines(d.answer), ElementsAre("out.example.com. CNAME www.example.org."));
  EXPECT_THAT(d.authority, IsEmpty());
}

TEST_F(LookupTest, CnameToMissingNameIsNxDomain) {
  Decoded d = Ask("dangling.example.com", A);
  EXPECT_EQ(d.rcode, 3);  // RFC 6604: the rcode of the last name in the chain
  EXPECT_THAT(Lines(d.answer), ElementsAre("dangling.example.com. CNAME nothing.example.com."));
  ASSERT_EQ(d.authority.size(), 1u);
  EXPECT_EQ(d.authority[0].type, SOA);
}

TEST_F(LookupTest, WildcardSynthesizesQueryName) {
  Decoded d = Ask("Foo.Wild.example.com", A);
  EXPECT_EQ(d.rcode, 0);
  EXPECT_TRUE(d.aa);
  EXPECT_THAT(Lines(d.answer), ElementsAre("foo.wild.example.com. A 192.0.2.99"));
  Decoded deep = Ask("a.b.wild.example.com", TXT);
  EXPECT_EQ(deep.answer.size(), 1u);
  EXPECT_EQ(deep.answer[0].owner, "a.b.wild.example.com.");
}

TEST_F(LookupTest, WildcardNoData) {
  Decoded d = Ask("foo.wild.example.com", MX);
  EXPECT_EQ(d.rcode, 0);
  EXPECT_THAT(d.answer, IsEmpty());
  EXPECT_EQ(d.authority.size(), 1u);
}

TEST_F(LookupTest, ExistingNameBlocksWildcard) {
  Decoded d = Ask("x.wild.example.com", A);
  EXPECT_EQ(d.rcode, 0);
  EXPECT_THAT(d.answer, IsEmpty());  // x.wild exists (AAAA only): NODATA, no synthesis
  EXPECT_EQ(Ask("y.x.wild.example.com", A).rcode, 3);  // below x.wild: closest encloser x.wild
}

TEST_F(LookupTest, WildcardCname) {
  Decoded d = Ask("q.cw.example.com", A);
  EXPECT_THAT(Lines(d.answer), ElementsAre("q.cw.example.com. CNAME www.example.com.",
                                           "www.example.com. A 192.0.2.80", "www.example.com. A 192.0.2.81"));
}

TEST_F(LookupTest, ReferralAtZoneCut) {
  for (const char* name : {"sub.example.com", "www.sub.example.com", "below.sub.example.com"}) {
    Decoded d = Ask(name, A);
    EXPECT_EQ(d.rcode, 0) << name;
    EXPECT_FALSE(d.aa) << name;
    EXPECT_THAT(d.answer, IsEmpty()) << name;
    EXPECT_THAT(Lines(d.authority), ElementsAre("sub.example.com. NS ns.elsewhere.org.",
                                                "sub.example.com. NS ns.sub.example.com."));
    EXPECT_THAT(Lines(d.additional), ElementsAre("ns.sub.example.com. A 192.0.2.53"));
  }
}

TEST_F(LookupTest, DsAtCutAnsweredByParent) {
  Decoded d = Ask("sub.example.com", DS);
  EXPECT_TRUE(d.aa);
  ASSERT_EQ(d.answer.size(), 1u);
  EXPECT_EQ(d.answer[0].type, DS);
}

TEST_F(LookupTest, DnameSynthesizesCname) {
  Decoded d = Ask("www.dn.example.com", A);
  EXPECT_EQ(d.rcode, 0);
  EXPECT_TRUE(d.aa);
  EXPECT_THAT(Lines(d.answer), ElementsAre("dn.example.com. DNAME target.example.com.",
                                           "www.dn.example.com. CNAME www.target.example.com.",
                                           "www.target.example.com. A 192.0.2.7"));
  Decoded out = Ask("a.b.dnout.example.com", A);
  EXPECT_THAT(Lines(out.answer), ElementsAre("a.b.dnout.example.com. CNAME a.b.example.net.",
                                             "dnout.example.com. DNAME example.net."));
  Decoded cname = Ask("www.dn.example.com", CNAME);  // the synthesized CNAME is the answer
  EXPECT_THAT(Lines(cname.answer), ElementsAre("dn.example.com. DNAME target.example.com.",
                                               "www.dn.example.com. CNAME www.target.example.com."));
  EXPECT_THAT(cname.authority, IsEmpty());
  Decoded owner = Ask("dn.example.com", DNAME);  // the owner itself is not redirected
  EXPECT_THAT(Lines(owner.answer), ElementsAre("dn.example.com. DNAME target.example.com."));
}

TEST_F(LookupTest, AdditionalAddressesForMxNsSrv) {
  Decoded mx = Ask("example.com", MX);
  EXPECT_THAT(Lines(mx.additional), ElementsAre("mail.example.com. A 192.0.2.25"));
  Decoded ns = Ask("example.com", NS);
  EXPECT_TRUE(ns.aa);
  EXPECT_THAT(Lines(ns.additional), ElementsAre("ns1.example.com. A 192.0.2.1", "ns1.example.com. AAAA 2001:db8::1"));
  Decoded srv = Ask("_sip._udp.example.com", SRV);
  EXPECT_THAT(Lines(srv.answer), ElementsAre("_sip._udp.example.com. SRV 0 5 5060 sip.example.com."));
  EXPECT_THAT(Lines(srv.additional), ElementsAre("sip.example.com. A 192.0.2.60"));
}

TEST_F(LookupTest, TruncatesWithoutEdnsAndFitsWithIt) {
  Decoded small = Ask("big.example.com", A);
  EXPECT_TRUE(small.tc);
  EXPECT_THAT(small.answer, IsEmpty());  // no partial RRset
  EXPECT_LE(last_size_, 512u);
  QueryOptions edns;
  edns.edns = true;
  edns.udp_size = 4096;
  Decoded big = Ask("big.example.com", A, edns);
  EXPECT_FALSE(big.tc);
  EXPECT_EQ(big.answer.size(), 40u);
  EXPECT_TRUE(big.has_opt);
  EXPECT_EQ(big.opt_udp_size, 1232);
  Decoded tcp = Ask("big.example.com", A, {}, dataplane::Transport::kTcp);
  EXPECT_FALSE(tcp.tc);
  EXPECT_EQ(tcp.answer.size(), 40u);
}

TEST_F(LookupTest, UdpSizeCappedAndSmallSizesRaisedTo512) {
  QueryOptions o;
  o.edns = true;
  o.udp_size = 100;  // below 512: treated as 512
  Decoded d = Ask("www.example.com", A, o);
  EXPECT_FALSE(d.tc);
  EXPECT_EQ(d.answer.size(), 2u);
}

TEST_F(LookupTest, EdnsEchoedWithDoBit) {
  QueryOptions o;
  o.edns = true;
  o.do_bit = true;
  Decoded d = Ask("www.example.com", A, o);
  EXPECT_TRUE(d.has_opt);
  EXPECT_TRUE(d.opt_do);
  EXPECT_FALSE(Ask("www.example.com", A).has_opt);
}

TEST_F(LookupTest, AnyIsMinimal) {
  Decoded d = Ask("example.com", ANY);
  EXPECT_EQ(d.rcode, 0);
  EXPECT_EQ(d.answer.size() > 0, true);
  // One RRset only (RFC 8482).
  for (const auto& r : d.answer) EXPECT_EQ(r.type, d.answer[0].type);
}

TEST_F(LookupTest, RcodesForUnsupportedRequests) {
  QueryOptions notify;
  notify.opcode = 2;  // STATUS
  EXPECT_EQ(Ask("example.com", SOA, notify).rcode, 4);  // NOTIMP
  QueryOptions chaos;
  chaos.qclass = 3;
  EXPECT_EQ(Ask("example.com", SOA, chaos).rcode, 5);
  QueryOptions badvers;
  badvers.edns = true;
  auto q = MakeQuery("example.com", SOA, badvers);
  q[q.size() - 5] = 1;  // EDNS version 1
  std::vector<uint8_t> out(4096);
  size_t n = handler_.Answer(snapshot_.get(), q.data(), q.size(), out.data(), out.size(),
                             dataplane::Transport::kUdp, counters_);
  Decoded d = testing::Decode(out.data(), n);
  EXPECT_EQ(d.rcode, 16);  // BADVERS
  EXPECT_TRUE(d.has_opt);
}

TEST_F(LookupTest, ResponsesAreNeverAnswered) {
  auto q = MakeQuery("www.example.com", A);
  q[2] |= 0x80;  // QR
  std::vector<uint8_t> out(4096);
  EXPECT_EQ(handler_.Answer(snapshot_.get(), q.data(), q.size(), out.data(), out.size(),
                            dataplane::Transport::kUdp, counters_), 0u);
}

TEST_F(LookupTest, AnswersInPlace) {
  auto q = MakeQuery("WWW.example.com", A);
  q.resize(4096);
  size_t n = handler_.Answer(snapshot_.get(), q.data(), 33, q.data(), q.size(),
                             dataplane::Transport::kUdp, counters_);
  Decoded d = testing::Decode(q.data(), n);
  EXPECT_TRUE(d.ok);
  EXPECT_EQ(d.qname_raw, "WWW.example.com.");
  EXPECT_EQ(d.answer.size(), 2u);
}

TEST_F(LookupTest, CountersByRcode) {
  Ask("www.example.com", A);
  Ask("nope.example.com", A);
  EXPECT_EQ(counters_.queries[0], 2u);
  EXPECT_EQ(counters_.responses[0], 1u);
  EXPECT_EQ(counters_.responses[3], 1u);
}

TEST(ZoneLoad, ErrorsNameFileAndLine) {
  auto r = control::LoadZoneText("example.com", "$ORIGIN example.com.\n@ 3600 SOA ns h 1 2 3 4 5\n@ NS ns\nfoo A 999.1.1.1\n", "z.zone");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("z.zone:4:"));
}

TEST(ZoneLoad, CnameBesideOtherDataIsRejected) {
  auto r = control::LoadZoneText("example.com",
                                 "$ORIGIN example.com.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nx CNAME y\nx A 192.0.2.1\n", "z.zone");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("CNAME beside other data"));
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("z.zone:"));
}

TEST(ZoneLoad, MissingSoaOrNsIsRejected) {
  auto no_soa = control::LoadZoneText("example.com", "$ORIGIN example.com.\n$TTL 60\n@ NS ns\n", "z.zone");
  ASSERT_FALSE(no_soa.ok());
  EXPECT_THAT(std::string(no_soa.status().message()), ::testing::HasSubstr("no SOA"));
  auto no_ns = control::LoadZoneText("example.com", "$ORIGIN example.com.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n", "z.zone");
  ASSERT_FALSE(no_ns.ok());
  EXPECT_THAT(std::string(no_ns.status().message()), ::testing::HasSubstr("no NS"));
}

TEST(ZoneLoad, OutOfZoneDataDroppedWithWarning) {
  auto r = control::LoadZoneText("example.com",
                                 "$ORIGIN example.com.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nwww.example.org. A 192.0.2.1\n", "z.zone");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_THAT(r->warnings[0], ::testing::HasSubstr("z.zone:5: out-of-zone"));
}

TEST(ZoneLoad, MissingFileNamesIt) {
  auto r = control::LoadZoneFile("example.com", "/nonexistent/zone");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("/nonexistent/zone"));
}

}  // namespace
}  // namespace tandem
