// Where tandem answers an unusual request as Knot DNS or NSD does (docs/conformance.md):
// OPT outside the additional section, CHAOS identity questions, IXFR over UDP, QTYPE ANY
// at a CNAME or an MX owner, and a TCP message that is a lone header announcing a
// question. Driven through QueryHandler::Answer, and the TCP case through a SocketServer
// on loopback.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "control/zone_file.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/rrtype.h"
#include "dataplane/dns/wire.h"
#include "dataplane/handler.h"
#include "dataplane/publisher.h"
#include "dataplane/socket_port.h"
#include "dataplane/zone/snapshot.h"
#include "tests/testing/dns_message.h"
#include "tests/testing/socket_client.h"

namespace tandem {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Bytes = std::vector<uint8_t>;
using dataplane::Transport;
using testing::Decoded;
using testing::Lines;
using testing::MakeQuery;
using testing::QueryOptions;

constexpr int kNoError = 0, kFormErr = 1, kNotImp = 4, kRefused = 5;
constexpr uint16_t kClassCh = 3, kClassAny = 255;

constexpr char kZone[] = R"(
$ORIGIN example.com.
$TTL 3600
@        SOA   ns1 hostmaster 2024010101 7200 900 1209600 300
@        NS    ns1
ns1      A     192.0.2.1
mail     A     192.0.2.25
www      A     192.0.2.80
alias    CNAME www
mx       MX    10 mail
)";

// The 11 bytes of an OPT record: root owner, type 41, payload 1232, no flags or options.
const Bytes kOpt = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};

class ConformanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = control::LoadZoneText("example.com", kZone, "example.com.zone");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    snapshot_ = std::make_unique<zone::Snapshot>(
        std::vector<std::shared_ptr<const zone::Zone>>{loaded->zone});
  }

  Bytes AnswerRaw(const dataplane::QueryHandler& h, const Bytes& query,
                  Transport t = Transport::kUdp) {
    Bytes out(65535);
    size_t n =
        h.Answer(snapshot_.get(), query.data(), query.size(), out.data(), out.size(), t, counters_);
    out.resize(n);
    return out;
  }
  Decoded Answer(const dataplane::QueryHandler& h, const Bytes& query,
                 Transport t = Transport::kUdp) {
    Bytes out = AnswerRaw(h, query, t);
    Decoded d = testing::Decode(out);
    EXPECT_TRUE(d.ok) << "undecodable response";
    EXPECT_TRUE(d.qr);
    return d;
  }
  Decoded Ask(const std::string& name, uint16_t type, QueryOptions o = {},
              Transport t = Transport::kUdp) {
    return Answer(handler_, MakeQuery(name, type, o), t);
  }

  dataplane::QueryHandler handler_;
  dataplane::WorkerCounters counters_;
  std::unique_ptr<zone::Snapshot> snapshot_;
};

// A query for www.example.com A with `record` appended to the section whose count is at
// header offset `count_at` (6: answer, 8: authority, 10: additional).
Bytes WithRecord(Bytes query, const Bytes& record, int count_at) {
  query.insert(query.end(), record.begin(), record.end());
  dns::Put16(query.data() + count_at, dns::Get16(query.data() + count_at) + 1);
  return query;
}

// ---- OPT outside the additional section: FORMERR (RFC 6891 6.1.1), as both peers ----

TEST_F(ConformanceTest, OptInTheAnswerSectionIsFormErr) {
  Decoded d = Answer(handler_, WithRecord(MakeQuery("www.example.com", dns::kTypeA), kOpt, 6));
  EXPECT_EQ(d.rcode, kFormErr);
  EXPECT_EQ(d.qname_raw, "www.example.com.");
  EXPECT_THAT(d.answer, IsEmpty());
}

TEST_F(ConformanceTest, OptInTheAuthoritySectionIsFormErr) {
  Decoded d = Answer(handler_, WithRecord(MakeQuery("www.example.com", dns::kTypeA), kOpt, 8));
  EXPECT_EQ(d.rcode, kFormErr);
  d = Answer(handler_, WithRecord(MakeQuery("www.example.com", dns::kTypeA), kOpt, 8),
             Transport::kTcp);
  EXPECT_EQ(d.rcode, kFormErr);
}

TEST_F(ConformanceTest, OptInTheAnswerSectionIsFormErrEvenWithOneInTheAdditional) {
  QueryOptions edns;
  edns.edns = true;
  Bytes q = MakeQuery("www.example.com", dns::kTypeA, edns);
  // The answer section goes between the question and the additional OPT.
  q.insert(q.end() - kOpt.size(), kOpt.begin(), kOpt.end());
  dns::Put16(q.data() + 6, 1);
  Decoded d = Answer(handler_, q);
  EXPECT_EQ(d.rcode, kFormErr);
  EXPECT_TRUE(d.has_opt);
}

TEST_F(ConformanceTest, OptInTheAdditionalSectionAndOtherRecordsInTheAnswerAreAnswered) {
  QueryOptions edns;
  edns.edns = true;
  EXPECT_EQ(Ask("www.example.com", dns::kTypeA, edns).rcode, kNoError);
  // An A record in the answer section of a query: Knot DNS answers it, and so does tandem.
  const Bytes a_record = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1};
  Decoded d = Answer(handler_, WithRecord(MakeQuery("www.example.com", dns::kTypeA), a_record, 6));
  EXPECT_EQ(d.rcode, kNoError);
  EXPECT_THAT(Lines(d.answer), ElementsAre("www.example.com. A 192.0.2.80"));
}

// ---- CHAOS identity ----

QueryOptions Chaos() {
  QueryOptions o;
  o.qclass = kClassCh;
  return o;
}

TEST_F(ConformanceTest, ChaosIdentityAndVersionAreHiddenByDefault) {
  for (const char* name : {"version.bind", "version.server", "id.server", "hostname.bind"}) {
    Decoded d = Ask(name, dns::kTypeTXT, Chaos());
    EXPECT_EQ(d.rcode, kRefused) << name;
    EXPECT_THAT(d.answer, IsEmpty()) << name;
  }
}

// The TXT record as Knot DNS and NSD write it: owner as asked, class CH, TTL 0, one string.
void ExpectChaosTxt(const Bytes& response, const std::string& owner, const std::string& text) {
  std::string owner_wire = *dns::NameFromText(owner);
  Decoded d = testing::Decode(response);
  ASSERT_TRUE(d.ok);
  EXPECT_EQ(d.rcode, kNoError);
  EXPECT_FALSE(d.aa);
  ASSERT_EQ(d.answer.size(), 1u);
  EXPECT_EQ(d.answer[0].type, dns::kTypeTXT);
  EXPECT_EQ(d.answer[0].ttl, 0u);
  size_t record = 12 + owner_wire.size() + 4;  // after the question; the owner is a pointer
  ASSERT_GE(response.size(), record + 12 + text.size());
  EXPECT_EQ(dns::Get16(response.data() + record), 0xc00c);
  EXPECT_EQ(dns::Get16(response.data() + record + 4), kClassCh);
  EXPECT_EQ(dns::Get16(response.data() + record + 10), text.size() + 1);
  EXPECT_EQ(response[record + 12], text.size());
  EXPECT_EQ(
      std::string(response.begin() + record + 13, response.begin() + record + 13 + text.size()),
      text);
}

TEST_F(ConformanceTest, ChaosIdentityAndVersionWhenConfigured) {
  dataplane::QueryHandler h(
      dataplane::HandlerOptions{.identity = "ns1.example.com", .version = "tandem 1"});
  for (const char* name : {"id.server", "hostname.bind", "ID.Server"})
    ExpectChaosTxt(AnswerRaw(h, MakeQuery(name, dns::kTypeTXT, Chaos())), name, "ns1.example.com");
  ExpectChaosTxt(AnswerRaw(h, MakeQuery("version.bind", dns::kTypeTXT, Chaos())), "version.bind",
                 "tandem 1");
  ExpectChaosTxt(AnswerRaw(h, MakeQuery("VERSION.Server", dns::kTypeTXT, Chaos()), Transport::kTcp),
                 "VERSION.Server", "tandem 1");
  // The question keeps its case.
  Decoded d = Answer(h, MakeQuery("ID.server", dns::kTypeTXT, Chaos()));
  EXPECT_EQ(d.qname_raw, "ID.server.");
}

TEST_F(ConformanceTest, ChaosWithEdnsCarriesOpt) {
  dataplane::QueryHandler h(dataplane::HandlerOptions{.identity = "ns1"});
  QueryOptions o = Chaos();
  o.edns = true;
  Decoded d = Answer(h, MakeQuery("id.server", dns::kTypeTXT, o));
  EXPECT_EQ(d.rcode, kNoError);
  EXPECT_EQ(d.answer.size(), 1u);
  EXPECT_TRUE(d.has_opt);
}

TEST_F(ConformanceTest, ChaosOtherQuestionsAreRefused) {
  dataplane::QueryHandler h(dataplane::HandlerOptions{.identity = "ns1", .version = "v"});
  // Another name, another type, ANY (as Knot DNS answers it), a name of the zone.
  EXPECT_EQ(Answer(h, MakeQuery("authors.bind", dns::kTypeTXT, Chaos())).rcode, kRefused);
  EXPECT_EQ(Answer(h, MakeQuery("id.server", dns::kTypeA, Chaos())).rcode, kRefused);
  EXPECT_EQ(Answer(h, MakeQuery("id.server", dns::kTypeANY, Chaos())).rcode, kRefused);
  EXPECT_EQ(Answer(h, MakeQuery("server", dns::kTypeTXT, Chaos())).rcode, kRefused);
  EXPECT_EQ(Answer(h, MakeQuery("www.example.com", dns::kTypeA, Chaos())).rcode, kRefused);
  // Only the one that is configured is told.
  dataplane::QueryHandler only_version(dataplane::HandlerOptions{.version = "v"});
  EXPECT_EQ(Answer(only_version, MakeQuery("id.server", dns::kTypeTXT, Chaos())).rcode, kRefused);
  EXPECT_EQ(Answer(only_version, MakeQuery("version.bind", dns::kTypeTXT, Chaos())).rcode,
            kNoError);
}

TEST_F(ConformanceTest, ChaosStringOfTheMaximumLength) {
  std::string longest(255, 'x');
  dataplane::QueryHandler h(dataplane::HandlerOptions{.identity = longest});
  ExpectChaosTxt(AnswerRaw(h, MakeQuery("id.server", dns::kTypeTXT, Chaos())), "id.server",
                 longest);
}

TEST(ChaosConfig, IdentityAndVersionAreReadAndHiddenByDefault) {
  auto defaults = config::LoadConfigText("", "tandem.toml");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->server.identity, "");
  EXPECT_EQ(defaults->server.version, "");
  auto set = config::LoadConfigText("[server]\nidentity = \"ns1.example.com\"\nversion = \"v 1\"\n",
                                    "tandem.toml");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->server.identity, "ns1.example.com");
  EXPECT_EQ(set->server.version, "v 1");
  std::string longest(255, 'x');
  EXPECT_TRUE(
      config::LoadConfigText("[server]\nidentity = \"" + longest + "\"\n", "tandem.toml").ok());
}

TEST(ChaosConfig, AStringLongerThanATxtStringIsRejected) {
  auto cfg = config::LoadConfigText("[server]\nversion = \"" + std::string(256, 'x') + "\"\n",
                                    "tandem.toml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(std::string(cfg.status().message()),
              ::testing::StartsWith(
                  "tandem.toml:2: server.version: expected a string of at most 255 bytes"));
  cfg = config::LoadConfigText("[server]\nidentity = 7\n", "tandem.toml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(std::string(cfg.status().message()), ::testing::HasSubstr("server.identity"));
}

// ---- Zone transfers over UDP ----

TEST_F(ConformanceTest, IxfrOverUdpIsRefusedAsNsdAnswersIt) {
  Decoded d = Ask("example.com", dns::kTypeIXFR);
  EXPECT_EQ(d.rcode, kRefused);
  EXPECT_EQ(d.qname_raw, "example.com.");
  // With the client's SOA in the authority section (RFC 1995 3).
  Bytes soa = {0xc0, 0x0c, 0, 6, 0, 1, 0, 0, 0, 0, 0, 22, 0, 0};  // MNAME, RNAME: the root
  soa.resize(soa.size() + 20);                                    // serial 1, timers 0
  soa[17] = 1;
  d = Answer(handler_, WithRecord(MakeQuery("example.com", dns::kTypeIXFR), soa, 8));
  EXPECT_EQ(d.rcode, kRefused);
}

TEST_F(ConformanceTest, AxfrOverUdpIsNotImplementedAndTransfersOverTcpAreRefusedWithoutAServer) {
  EXPECT_EQ(Ask("example.com", dns::kTypeAXFR).rcode, kNotImp);
  EXPECT_EQ(Ask("example.com", dns::kTypeAXFR, {}, Transport::kTcp).rcode, kRefused);
  EXPECT_EQ(Ask("example.com", dns::kTypeIXFR, {}, Transport::kTcp).rcode, kRefused);
}

// ---- QTYPE ANY (found by the differential test against Knot DNS and NSD) ----

TEST_F(ConformanceTest, AnyAtACnameOwnerIsTheCnameAlone) {
  // ANY matches the CNAME: no restart at the target (RFC 1034 4.3.2 step 3a).
  Decoded d = Ask("alias.example.com", dns::kTypeANY);
  EXPECT_EQ(d.rcode, kNoError);
  EXPECT_TRUE(d.aa);
  EXPECT_THAT(Lines(d.answer), ElementsAre("alias.example.com. CNAME www.example.com."));
  EXPECT_THAT(d.authority, IsEmpty());
}

TEST_F(ConformanceTest, AnyAnsweredWithAnMxBringsItsAddresses) {
  Decoded d = Ask("mx.example.com", dns::kTypeANY);
  EXPECT_THAT(Lines(d.answer), ElementsAre("mx.example.com. MX 10 mail.example.com."));
  EXPECT_THAT(Lines(d.additional), ElementsAre("mail.example.com. A 192.0.2.25"));
}

TEST_F(ConformanceTest, ClassAnyIsAnsweredAsClassIn) {
  QueryOptions any;
  any.qclass = kClassAny;
  Decoded d = Ask("www.example.com", dns::kTypeA, any);
  EXPECT_EQ(d.rcode, kNoError);
  EXPECT_TRUE(d.aa);  // as Knot DNS (NSD clears AA: docs/conformance.md)
  EXPECT_THAT(Lines(d.answer), ElementsAre("www.example.com. A 192.0.2.80"));
  d = Ask("nothing.example.com", dns::kTypeA, any);
  EXPECT_EQ(d.rcode, 3);
  EXPECT_EQ(d.authority.size(), 1u);  // the SOA, as Knot DNS
}

// ---- TCP: a lone header announcing a question closes the connection ----

using testing::Client;

class TcpConformanceTest : public ::testing::Test {
 protected:
  dataplane::Endpoint Start() {
    dataplane::SocketPortOptions options;
    options.listen = {"127.0.0.1:0"};
    auto server = dataplane::SocketServer::Start(options, publisher_, handler_);
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return {};
    server_ = *std::move(server);
    return server_->BoundEndpoints().at(0);
  }

  dataplane::SnapshotPublisher publisher_{64};
  dataplane::QueryHandler handler_;
  std::unique_ptr<dataplane::SocketServer> server_;
};

Bytes Header(uint16_t id, uint16_t qdcount) {
  Bytes h(12, 0);
  dns::Put16(h.data(), id);
  dns::Put16(h.data() + 4, qdcount);
  return h;
}

TEST_F(TcpConformanceTest, LoneHeaderAnnouncingAQuestionClosesTheConnection) {
  dataplane::Endpoint server = Start();
  for (uint16_t qdcount : {1, 2}) {
    Client client(server);
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.SendFrame(Header(0x4d41, qdcount)));
    EXPECT_EQ(client.ReceiveResult(), 0) << "QDCOUNT " << qdcount;
  }
}

TEST_F(TcpConformanceTest, AnswersBeforeALoneHeaderAreSentThenTheConnectionCloses) {
  dataplane::Endpoint server = Start();
  Client client(server);
  ASSERT_TRUE(client.connected());
  Bytes query = MakeQuery("www.example.com", dns::kTypeA, {.id = 0x1111});
  ASSERT_TRUE(client.SendFrame(query));
  ASSERT_TRUE(client.SendFrame(Header(0x2222, 1)));
  ASSERT_TRUE(client.SendFrame(MakeQuery("www.example.com", dns::kTypeA, {.id = 0x3333})));
  std::optional<Bytes> first = client.ReadFrame();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(dns::Get16(first->data()), 0x1111);
  EXPECT_EQ((*first)[3] & 0x0f, kRefused);  // nothing is published
  EXPECT_EQ(client.ReceiveResult(), 0);     // the query after the header is not answered
}

TEST_F(TcpConformanceTest, LoneHeaderWithoutAQuestionIsFormErrAndTheConnectionStays) {
  dataplane::Endpoint server = Start();
  Client client(server);
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.SendFrame(Header(0x5555, 0)));
  std::optional<Bytes> reply = client.ReadFrame();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(dns::Get16(reply->data()), 0x5555);
  EXPECT_EQ((*reply)[3] & 0x0f, kFormErr);
  ASSERT_TRUE(client.SendFrame(MakeQuery("www.example.com", dns::kTypeA, {.id = 0x6666})));
  reply = client.ReadFrame();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(dns::Get16(reply->data()), 0x6666);
}

}  // namespace
}  // namespace tandem
