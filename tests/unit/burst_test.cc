// QueryHandler::AnswerBurst gives, for every request of a burst, the bytes Answer gives for
// it alone, and counts the same: over every kind of answer (positive, NODATA, NXDOMAIN,
// wildcard, CNAME and DNAME chains, referrals with glue, truncation, pools), requests the
// handler refuses or drops, several zones, bursts longer than one stage, answers in place.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "control/zone_file.h"
#include "dataplane/dns/message.h"
#include "dataplane/dns/name.h"
#include "dataplane/handler.h"
#include "dataplane/zone/builder.h"
#include "dataplane/zone/pools.h"
#include "dataplane/zone/snapshot.h"
#include "tests/testing/dns_message.h"

namespace tandem {
namespace {

using dataplane::Exchange;
using dataplane::QueryHandler;
using dataplane::Transport;
using dataplane::WorkerCounters;
using testing::MakeQuery;
using testing::QueryOptions;

constexpr char kParent[] = R"(
$ORIGIN example.com.
$TTL 3600
@         SOA ns1 hostmaster 2024010101 7200 900 1209600 300
@         NS  ns1
@         NS  ns2.example.net.
@         MX  10 mail
ns1       A   192.0.2.1
ns1       AAAA 2001:db8::1
mail      A   192.0.2.25
www       A   192.0.2.80
www       A   192.0.2.81
Www2      CNAME www
alias     CNAME www2
out       CNAME www.example.org.
srv       SRV 0 5 5060 sip
sip       A   192.0.2.60
a.b.c     A   192.0.2.3
*.wild    A   192.0.2.99
*.wild    TXT "wild"
x.wild    AAAA 2001:db8::99
deleg     NS  ns.deleg
ns.deleg  A   192.0.2.53
deleg     DS  12345 8 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
dn        DNAME target.example.com.
www.target A  192.0.2.7
txt       TXT "one" "two"
pooled    TXT "pooled name"
)";

constexpr char kChild[] = R"(
$ORIGIN child.example.com.
$TTL 600
@         SOA ns hostmaster 7 7200 900 1209600 60
@         NS  ns
ns        A   192.0.2.200
host      A   192.0.2.201
)";

std::string BigZone() {
  std::string z = "$ORIGIN big.test.\n$TTL 60\n@ SOA ns h 1 7200 900 1209600 60\n@ NS ns\nns A 192.0.2.9\n";
  for (int i = 0; i < 40; ++i) z += "many TXT \"a fairly long string to fill a response " + std::to_string(i) + "\"\n";
  for (int i = 0; i < 500; ++i) z += "n" + std::to_string(i) + " A 10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256) + "\n";
  return z;
}

std::shared_ptr<const zone::Zone> Load(const std::string& name, const std::string& text) {
  auto loaded = control::LoadZoneText(name, text, name + ".zone");
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return loaded.ok() ? loaded->zone : nullptr;
}

std::unique_ptr<zone::Snapshot> MakeSnapshot() {
  auto pools = std::make_shared<zone::PoolSet>();
  zone::Pool pool;  // all healthy: the same members every time
  for (int i = 0; i < 3; ++i)
    pool.members.push_back({{198, 51, 100, static_cast<uint8_t>(i + 1)}, false, i != 1, 1, static_cast<uint16_t>(i)});
  pools->pools().push_back(pool);
  pools->Bind(*dns::NameFromText("pooled.example.com"), 0, 30);
  pools->Finish();
  std::vector<std::shared_ptr<const zone::Zone>> zones = {
      Load("example.com", kParent), Load("child.example.com", kChild), Load("big.test", BigZone()),
      zone::ZoneBuilder::Unavailable(*dns::NameFromText("pulled.test"))};
  return std::make_unique<zone::Snapshot>(std::move(zones), pools);
}

std::vector<std::vector<uint8_t>> Requests() {
  std::vector<std::vector<uint8_t>> r;
  QueryOptions edns;
  edns.edns = true;
  QueryOptions edns_do = edns;
  edns_do.do_bit = true;
  QueryOptions small = edns;
  small.udp_size = 512;
  const std::pair<const char*, uint16_t> questions[] = {
      {"www.example.com", 1},     {"WWW.Example.COM", 1},    {"www.example.com", 28},
      {"ns1.example.com", 28},    {"example.com", 6},        {"example.com", 2},
      {"example.com", 15},        {"example.com", 255},      {"nothing.example.com", 1},
      {"alias.example.com", 1},   {"www2.example.com", 5},   {"out.example.com", 1},
      {"srv.example.com", 33},    {"b.c.example.com", 1},    {"a.b.c.example.com", 1},
      {"foo.wild.example.com", 1}, {"foo.wild.example.com", 16}, {"x.wild.example.com", 1},
      {"deep.foo.wild.example.com", 1}, {"deleg.example.com", 1}, {"deleg.example.com", 43},
      {"a.b.deleg.example.com", 28}, {"www.dn.example.com", 1}, {"a.b.dn.example.com", 5},
      {"txt.example.com", 16},    {"pooled.example.com", 1}, {"pooled.example.com", 28},
      {"pooled.example.com", 16}, {"host.child.example.com", 1}, {"child.example.com", 6},
      {"nx.child.example.com", 1}, {"many.big.test", 16},    {"n17.big.test", 1},
      {"n499.big.test", 1},       {"n500.big.test", 1},      {"x.pulled.test", 1},
      {"example.org", 1},         {".", 2},                  {"www.example.com", 0},
      {"example.com", 252},       {"example.com", 251},
  };
  for (const auto& [name, type] : questions) {
    r.push_back(MakeQuery(name, type));
    r.push_back(MakeQuery(name, type, edns_do));
  }
  r.push_back(MakeQuery("many.big.test", 16, edns));
  r.push_back(MakeQuery("many.big.test", 16, small));
  QueryOptions chaos;
  chaos.qclass = 3;
  r.push_back(MakeQuery("version.bind", 16, chaos));
  QueryOptions any_class;
  any_class.qclass = 255;
  r.push_back(MakeQuery("www.example.com", 1, any_class));
  QueryOptions notify;
  notify.opcode = 4;
  r.push_back(MakeQuery("example.com", 6, notify));
  QueryOptions update;
  update.opcode = 5;
  r.push_back(MakeQuery("example.com", 6, update));
  QueryOptions bad_version = edns;
  r.push_back(MakeQuery("www.example.com", 1, bad_version));
  r.back()[r.back().size() - 5] = 1;  // EDNS version 1: BADVERS
  auto response = MakeQuery("www.example.com", 1);
  response[2] |= 0x80;  // QR set: dropped
  r.push_back(response);
  auto two_questions = MakeQuery("www.example.com", 1);
  two_questions[5] = 2;  // FORMERR, header only
  r.push_back(two_questions);
  auto trailing = MakeQuery("www.example.com", 1);
  trailing.push_back(0);  // FORMERR with the question
  r.push_back(trailing);
  r.push_back({0x12, 0x34, 0x01});  // shorter than a header
  return r;
}

void ExpectSameCounters(const WorkerCounters& a, const WorkerCounters& b) {
  for (int i = 0; i < 2; ++i) EXPECT_EQ(a.queries[i], b.queries[i]) << "transport " << i;
  for (int i = 0; i < 24; ++i) EXPECT_EQ(a.responses[i], b.responses[i]) << "rcode " << i;
  EXPECT_EQ(a.dropped, b.dropped);
  EXPECT_EQ(a.truncated, b.truncated);
  EXPECT_EQ(a.pool_all_down, b.pool_all_down);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(a.member_answers[i], b.member_answers[i]) << "member " << i;
}

constexpr size_t kCap = 1232;

std::vector<uint8_t> Bytes(const uint8_t* p, size_t n) { return std::vector<uint8_t>(p, p + n); }

// Answers each request alone and as one burst (separate buffers, then in place) and
// compares every response byte for byte, over `transport`.
void CheckBurstMatchesAnswer(Transport transport) {
  auto snapshot = MakeSnapshot();
  QueryHandler handler;
  auto requests = Requests();
  // Longer than one stage, and not a multiple of it.
  while (requests.size() < 2 * QueryHandler::kBurstStage + 5) requests.push_back(requests[requests.size() % 20]);
  ASSERT_GT(requests.size(), 2 * QueryHandler::kBurstStage);

  WorkerCounters single_counters;
  std::vector<std::vector<uint8_t>> expected;
  for (const auto& q : requests) {
    std::vector<uint8_t> out(kCap);
    size_t n = handler.Answer(snapshot.get(), q.data(), q.size(), out.data(), out.size(), transport,
                              single_counters);
    out.resize(n);
    expected.push_back(out);
  }

  std::vector<std::vector<uint8_t>> outs(requests.size(), std::vector<uint8_t>(kCap));
  std::vector<Exchange> burst(requests.size());
  for (size_t i = 0; i < requests.size(); ++i)
    burst[i] = {requests[i].data(), static_cast<uint32_t>(requests[i].size()), outs[i].data(),
                static_cast<uint32_t>(kCap), transport, nullptr, 12345};
  WorkerCounters burst_counters;
  handler.AnswerBurst(snapshot.get(), burst, burst_counters);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(Bytes(outs[i].data(), burst[i].response_len), expected[i]) << "request " << i;
  }
  ExpectSameCounters(single_counters, burst_counters);

  // In place, as the poll-mode path answers inside the receive buffer.
  std::vector<std::vector<uint8_t>> buffers;
  for (const auto& q : requests) {
    buffers.push_back(q);
    buffers.back().resize(kCap);
  }
  for (size_t i = 0; i < requests.size(); ++i)
    burst[i] = {buffers[i].data(), static_cast<uint32_t>(requests[i].size()), buffers[i].data(),
                static_cast<uint32_t>(kCap), transport, nullptr, 12345};
  WorkerCounters in_place_counters;
  handler.AnswerBurst(snapshot.get(), burst, in_place_counters);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(Bytes(buffers[i].data(), burst[i].response_len), expected[i]) << "request " << i;
  }
  ExpectSameCounters(single_counters, in_place_counters);
}

TEST(AnswerBurst, SameBytesAsAnswerOverUdp) { CheckBurstMatchesAnswer(Transport::kUdp); }

TEST(AnswerBurst, SameBytesAsAnswerOverTcp) { CheckBurstMatchesAnswer(Transport::kTcp); }

TEST(AnswerBurst, EmptyBurstAndNoSnapshot) {
  QueryHandler handler;
  WorkerCounters counters;
  handler.AnswerBurst(nullptr, {}, counters);
  EXPECT_EQ(counters.queries[0], 0u);

  auto q = MakeQuery("www.example.com", 1);
  std::vector<uint8_t> expected(kCap), out(kCap);
  WorkerCounters single;
  size_t n = handler.Answer(nullptr, q.data(), q.size(), expected.data(), expected.size(), Transport::kUdp, single);
  Exchange x{q.data(), static_cast<uint32_t>(q.size()), out.data(), static_cast<uint32_t>(kCap)};
  handler.AnswerBurst(nullptr, {&x, 1}, counters);
  EXPECT_EQ(Bytes(out.data(), x.response_len), Bytes(expected.data(), n));
  EXPECT_EQ(testing::Decode(out.data(), n).rcode, 5);  // REFUSED: no zone
  ExpectSameCounters(single, counters);
}

// The prepared name (lower-cased and hashed eight octets at a time) hashes each suffix as
// the zone hashes its names: labels of every length, upper and lower case, octets that
// only look like letters with the top bit set, the longest names.
TEST(AnswerBurst, PreparedNamesHashAsTheZoneDoes) {
  std::vector<std::string> names = {".", "a", "A.b", "Ab.Cd.Ef", "x.Wild.Example.COM", "1234567.12345678.123456789"};
  names.push_back(std::string(63, 'Q') + "." + std::string(62, 'z') + "." + std::string(63, 'M') + "." +
                  std::string(62, 'k'));  // 255 octets on the wire
  std::string odd = "a";
  odd += static_cast<char>(0xc1);  // 'A' | 0x80
  odd += static_cast<char>(0xda);  // 'Z' | 0x80
  odd += "Z@[`{";
  names.push_back(odd + ".example");
  // Label counts about the parser's offsets copy (15, 16 and 17 labels) and the most (127).
  for (int labels : {15, 16, 17, 127}) {
    std::string many;
    for (int i = 0; i < labels; ++i) absl::StrAppend(&many, i ? "." : "", i % 2 ? "B" : "c");
    names.push_back(many);
  }
  for (const std::string& text : names) {
    auto wire = dns::NameFromText(text);
    ASSERT_TRUE(wire.ok()) << text;
    zone::LookupName name;
    name.Set(reinterpret_cast<const uint8_t*>(wire->data()), wire->size());
    std::string lower = *wire;
    dns::LowerName(reinterpret_cast<uint8_t*>(lower.data()), lower.size());
    ASSERT_EQ(name.len, lower.size()) << text;
    EXPECT_EQ(Bytes(name.data, name.len), Bytes(reinterpret_cast<const uint8_t*>(lower.data()), lower.size())) << text;
    ASSERT_EQ(name.labels, dns::CountLabels(reinterpret_cast<const uint8_t*>(lower.data()))) << text;
    for (int i = 0; i <= name.labels; ++i)
      EXPECT_EQ(name.hashes[i], zone::HashName(name.suffix(i), name.suffix_len(i))) << text << " suffix " << i;
    // The same name prepared from a parsed question, with the parser's label offsets.
    std::string text_msg = std::string(5, '\0') + '\1' + std::string(6, '\0') + *wire;  // QDCOUNT 1
    text_msg += std::string("\0\1\0\1", 4);                                               // A, IN
    std::vector<uint8_t> msg(text_msg.begin(), text_msg.end());
    dns::Query q;
    ASSERT_EQ(dns::ParseQuery(msg.data(), msg.size(), &q), dns::QueryVerdict::kOk) << text;
    zone::LookupName parsed;
    parsed.Set(q.qname.data, q.qname.length, q.qname_offsets, q.qname.labels);
    ASSERT_EQ(parsed.len, name.len) << text;
    ASSERT_EQ(parsed.labels, name.labels) << text;
    EXPECT_EQ(Bytes(parsed.data, parsed.len), Bytes(name.data, name.len)) << text;
    for (int i = 0; i <= name.labels; ++i) {
      EXPECT_EQ(parsed.offsets[i], name.offsets[i]) << text << " suffix " << i;
      EXPECT_EQ(parsed.hashes[i], name.hashes[i]) << text << " suffix " << i;
    }
  }
}

TEST(AnswerBurst, ResponsesAreWhatTheLookupGives) {
  // The burst path is not only equal to Answer: spot-check a few decoded answers.
  auto snapshot = MakeSnapshot();
  QueryHandler handler;
  std::vector<std::vector<uint8_t>> qs = {MakeQuery("www.example.com", 1), MakeQuery("nx.example.com", 1),
                                          MakeQuery("n42.big.test", 1)};
  std::vector<std::vector<uint8_t>> outs(qs.size(), std::vector<uint8_t>(kCap));
  std::vector<Exchange> burst;
  for (size_t i = 0; i < qs.size(); ++i)
    burst.push_back({qs[i].data(), static_cast<uint32_t>(qs[i].size()), outs[i].data(), static_cast<uint32_t>(kCap)});
  WorkerCounters counters;
  handler.AnswerBurst(snapshot.get(), burst, counters);
  auto www = testing::Decode(outs[0].data(), burst[0].response_len);
  EXPECT_EQ(testing::Lines(www.answer),
            (std::vector<std::string>{"www.example.com. A 192.0.2.80", "www.example.com. A 192.0.2.81"}));
  EXPECT_TRUE(www.aa);
  EXPECT_EQ(testing::Decode(outs[1].data(), burst[1].response_len).rcode, 3);
  EXPECT_EQ(testing::Lines(testing::Decode(outs[2].data(), burst[2].response_len).answer),
            (std::vector<std::string>{"n42.big.test. A 10.1.0.42"}));
  EXPECT_EQ(counters.queries[0], 3u);
}

}  // namespace
}  // namespace tandem
