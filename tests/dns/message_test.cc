// Query parsing (hostile input included) and the compressing response writer.
#include "dataplane/dns/message.h"

#include <gtest/gtest.h>

#include "tests/testing/dns_message.h"

namespace tandem::dns {
namespace {

using testing::MakeQuery;

TEST(ParseQuery, AcceptsPlainAndEdnsQueries) {
  Query q;
  auto m = MakeQuery("www.example.com", 1);
  ASSERT_EQ(ParseQuery(m.data(), m.size(), &q), QueryVerdict::kOk);
  EXPECT_EQ(q.qtype, 1);
  EXPECT_EQ(q.qclass, 1);
  EXPECT_FALSE(q.has_edns);
  testing::QueryOptions o;
  o.edns = true;
  o.udp_size = 4096;
  o.do_bit = true;
  m = MakeQuery("www.example.com", 28, o);
  ASSERT_EQ(ParseQuery(m.data(), m.size(), &q), QueryVerdict::kOk);
  EXPECT_TRUE(q.has_edns);
  EXPECT_EQ(q.edns_udp_size, 4096);
  EXPECT_TRUE(q.edns_do);
}

TEST(ParseQuery, TruncationAtEveryByteNeverCrashes) {
  testing::QueryOptions o;
  o.edns = true;
  auto m = MakeQuery("a.b.example.com", 1, o);
  for (size_t cut = 0; cut < m.size(); ++cut) {
    Query q;
    QueryVerdict v = ParseQuery(m.data(), cut, &q);
    if (cut < kHeaderSize) EXPECT_EQ(v, QueryVerdict::kDrop) << cut;
    else EXPECT_TRUE(v == QueryVerdict::kFormErrHeader || v == QueryVerdict::kFormErr) << cut;
  }
}

TEST(ParseQuery, RejectsWrongQuestionCountsAndQr) {
  Query q;
  auto m = MakeQuery("example.com", 1);
  m[5] = 2;
  EXPECT_EQ(ParseQuery(m.data(), m.size(), &q), QueryVerdict::kFormErrHeader);
  m[5] = 0;
  EXPECT_EQ(ParseQuery(m.data(), m.size(), &q), QueryVerdict::kFormErrHeader);
  m[5] = 1;
  m[2] |= 0x80;
  EXPECT_EQ(ParseQuery(m.data(), m.size(), &q), QueryVerdict::kDrop);
}

TEST(ParseQuery, RejectsCompressionInQuestionAndTrailingBytes) {
  Query q;
  std::vector<uint8_t> m = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 1, 0, 1};
  EXPECT_EQ(ParseQuery(m.data(), m.size(), &q), QueryVerdict::kFormErrHeader);
  auto t = MakeQuery("example.com", 1);
  t.push_back(0);
  EXPECT_EQ(ParseQuery(t.data(), t.size(), &q), QueryVerdict::kFormErr);
}

TEST(ParseQuery, EdnsErrors) {
  testing::QueryOptions o;
  o.edns = true;
  Query q;
  auto two = MakeQuery("example.com", 1, o);
  two.insert(two.end(), two.end() - 11, two.end());
  two[11] = 2;
  EXPECT_EQ(ParseQuery(two.data(), two.size(), &q), QueryVerdict::kFormErr);
  auto v1 = MakeQuery("example.com", 1, o);
  v1[v1.size() - 5] = 1;
  EXPECT_EQ(ParseQuery(v1.data(), v1.size(), &q), QueryVerdict::kBadVersion);
  auto badopt = MakeQuery("example.com", 1, o);
  badopt[badopt.size() - 1] = 3;  // RDLEN 3: a truncated option header
  badopt.insert(badopt.end(), {0, 10, 0});
  EXPECT_EQ(ParseQuery(badopt.data(), badopt.size(), &q), QueryVerdict::kFormErr);
}

TEST(MessageWriter, CompressesAgainstQuestionAndEarlierNames) {
  auto m = MakeQuery("www.example.com", 1);
  m.resize(512);
  MessageWriter w(m.data(), m.size());
  w.StartAfterQuestion(12 + 17 + 4, 3);
  auto owner = *NameFromText("www.example.com");
  auto mail = *NameFromText("mail.example.com");
  uint8_t a[4] = {192, 0, 2, 1};
  ASSERT_TRUE(w.WriteRecord(reinterpret_cast<const uint8_t*>(owner.data()), 1, 60, a, 4));
  EXPECT_EQ(w.size(), 33u + 2 + 10 + 4);  // owner is one pointer
  size_t before = w.size();
  ASSERT_TRUE(w.WriteName(reinterpret_cast<const uint8_t*>(mail.data()), true));
  EXPECT_EQ(w.size(), before + 5 + 2);  // "mail" then a pointer to example.com
  testing::Decoded d = testing::Decode(m.data(), 0);
  (void)d;
}

TEST(MessageWriter, RollsBackWhenFull) {
  auto m = MakeQuery("example.com", 1);
  size_t qend = m.size();
  m.resize(64);
  MessageWriter w(m.data(), 64);
  w.StartAfterQuestion(qend, 2);
  std::vector<uint8_t> big(40, 7);
  auto owner = *NameFromText("example.com");
  EXPECT_FALSE(w.WriteRecord(reinterpret_cast<const uint8_t*>(owner.data()), 16, 60, big.data(), 40));
  EXPECT_EQ(w.size(), qend);
}

}  // namespace
}  // namespace tandem::dns
