// Response rate limiting: token buckets per client prefix and kind of answer, slip.
#include "dataplane/rrl.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

namespace tandem::dataplane {
namespace {

// A response: header (QR, `rcode`, QDCOUNT 1, ANCOUNT `answers`), the question `qname`
// A IN, and 40 bytes standing for the answer records.
std::vector<uint8_t> Response(const std::string& qname, uint8_t rcode, uint16_t answers) {
  std::vector<uint8_t> m = {0x12, 0x34, 0x84, rcode, 0, 1, 0, static_cast<uint8_t>(answers), 0, 0, 0, 1};
  size_t start = 0;
  while (start < qname.size()) {
    size_t dot = qname.find('.', start);
    if (dot == std::string::npos) dot = qname.size();
    m.push_back(static_cast<uint8_t>(dot - start));
    m.insert(m.end(), qname.begin() + start, qname.begin() + dot);
    start = dot + 1;
  }
  m.insert(m.end(), {0, 0, 1, 0, 1});
  m.resize(m.size() + 40, 0xaa);
  return m;
}

std::array<uint8_t, 4> V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return {a, b, c, d}; }

class RrlTest : public ::testing::Test {
 protected:
  // Sends `n` copies of `response` to `addr`; returns how many went out whole.
  int Whole(RateLimiter& rrl, const uint8_t* addr, bool v6, const std::vector<uint8_t>& response,
            int n) {
    int whole = 0;
    for (int i = 0; i < n; ++i) {
      std::vector<uint8_t> r = response;
      if (rrl.Apply(addr, v6, r.data(), r.size(), counters) == response.size()) ++whole;
    }
    return whole;
  }
  WorkerCounters counters;
};

TEST_F(RrlTest, OffByDefaultSendsEverything) {
  RateLimiter rrl(RrlOptions{});
  EXPECT_FALSE(rrl.enabled());
  auto addr = V4(192, 0, 2, 1);
  EXPECT_EQ(Whole(rrl, addr.data(), false, Response("a.example", 0, 1), 1000), 1000);
  EXPECT_EQ(counters.rrl_dropped + counters.rrl_slipped, 0u);
}

TEST_F(RrlTest, RateAnswersPerSecondThenRefill) {
  RateLimiter rrl(RrlOptions{.rate = 5, .slip = 0});
  auto addr = V4(192, 0, 2, 1);
  auto r = Response("a.example", 0, 1);
  rrl.SetNow(10000);
  EXPECT_EQ(Whole(rrl, addr.data(), false, r, 20), 5);
  EXPECT_EQ(counters.rrl_dropped, 15u);
  rrl.SetNow(10200);  // a fifth of a second: one answer's worth
  EXPECT_EQ(Whole(rrl, addr.data(), false, r, 5), 1);
  rrl.SetNow(20000);  // long idle: one second's worth at most
  EXPECT_EQ(Whole(rrl, addr.data(), false, r, 20), 5);
}

TEST_F(RrlTest, SlipSendsEverySecondLimitedAnswerTruncated) {
  RateLimiter rrl(RrlOptions{.rate = 1, .slip = 2});
  auto addr = V4(198, 51, 100, 7);
  auto r = Response("Big.Example", 0, 3);
  rrl.SetNow(5000);
  std::vector<size_t> lengths;
  std::vector<uint8_t> last_slip;
  for (int i = 0; i < 5; ++i) {
    std::vector<uint8_t> m = r;
    size_t n = rrl.Apply(addr.data(), false, m.data(), m.size(), counters);
    lengths.push_back(n);
    if (n != 0 && n != r.size()) last_slip.assign(m.begin(), m.begin() + static_cast<long>(n));
  }
  size_t question = 12 + 13 + 4;  // header, "\3Big\7Example\0", type and class
  EXPECT_EQ(lengths, (std::vector<size_t>{r.size(), 0, question, 0, question}));
  EXPECT_EQ(counters.rrl_dropped, 2u);
  EXPECT_EQ(counters.rrl_slipped, 2u);
  ASSERT_EQ(last_slip.size(), question);
  EXPECT_EQ(last_slip[0], 0x12);  // the id stays
  EXPECT_EQ(last_slip[2] & 0x82, 0x82);  // QR and TC
  EXPECT_EQ(last_slip[5], 1);  // QDCOUNT 1, the rest 0
  for (int i = 6; i < 12; ++i) EXPECT_EQ(last_slip[i], 0) << i;
  EXPECT_TRUE(std::equal(last_slip.begin() + 12, last_slip.end(), r.begin() + 12));
}

TEST_F(RrlTest, SlipOneTruncatesEveryLimitedAnswer) {
  RateLimiter rrl(RrlOptions{.rate = 1, .slip = 1});
  auto addr = V4(198, 51, 100, 7);
  rrl.SetNow(5000);
  EXPECT_EQ(Whole(rrl, addr.data(), false, Response("a.example", 0, 1), 4), 1);
  EXPECT_EQ(counters.rrl_slipped, 3u);
  EXPECT_EQ(counters.rrl_dropped, 0u);
}

TEST_F(RrlTest, ClientsOfOnePrefixShareABucket) {
  RateLimiter rrl(RrlOptions{.rate = 4, .slip = 0, .ipv4_prefix = 24, .ipv6_prefix = 56});
  auto r = Response("a.example", 0, 1);
  rrl.SetNow(1000);
  auto a = V4(203, 0, 113, 1), b = V4(203, 0, 113, 200), other = V4(203, 0, 114, 1);
  EXPECT_EQ(Whole(rrl, a.data(), false, r, 3), 3);
  EXPECT_EQ(Whole(rrl, b.data(), false, r, 3), 1);  // same /24: one left
  EXPECT_EQ(Whole(rrl, other.data(), false, r, 3), 3);

  std::array<uint8_t, 16> v6a = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0x10};
  std::array<uint8_t, 16> v6b = v6a, v6c = v6a;
  v6b[7] = 0x11;  // same /56, another /64
  v6b[15] = 9;
  v6c[6] = 1;  // another /56
  EXPECT_EQ(Whole(rrl, v6a.data(), true, r, 3), 3);
  EXPECT_EQ(Whole(rrl, v6b.data(), true, r, 3), 1);
  EXPECT_EQ(Whole(rrl, v6c.data(), true, r, 3), 3);
}

TEST_F(RrlTest, PositiveAnswersPerNameNxdomainPerPrefix) {
  RateLimiter rrl(RrlOptions{.rate = 2, .slip = 0});
  auto addr = V4(192, 0, 2, 1);
  rrl.SetNow(1000);
  // Positive answers: each name has its own bucket, whatever its case.
  EXPECT_EQ(Whole(rrl, addr.data(), false, Response("a.example", 0, 1), 3), 2);
  EXPECT_EQ(Whole(rrl, addr.data(), false, Response("A.EXAMPLE", 0, 1), 3), 0);
  EXPECT_EQ(Whole(rrl, addr.data(), false, Response("b.example", 0, 1), 3), 2);
  // NODATA is another kind than a positive answer for the same name.
  EXPECT_EQ(Whole(rrl, addr.data(), false, Response("a.example", 0, 0), 3), 2);
  // NXDOMAIN for random names shares one bucket per prefix.
  int whole = 0;
  for (int i = 0; i < 10; ++i)
    whole += Whole(rrl, addr.data(), false, Response("r" + std::to_string(i) + ".example", 3, 0), 1);
  EXPECT_EQ(whole, 2);
  // Errors (REFUSED here) likewise, apart from NXDOMAIN.
  EXPECT_EQ(Whole(rrl, addr.data(), false, Response("x.other", 5, 0), 3), 2);
}

TEST_F(RrlTest, ShortOrQuestionlessResponsesAreHandled) {
  RateLimiter rrl(RrlOptions{.rate = 1, .slip = 1});
  auto addr = V4(192, 0, 2, 1);
  rrl.SetNow(1000);
  std::vector<uint8_t> header = {0, 1, 0x84, 1, 0, 0, 0, 0, 0, 0, 0, 0};  // FORMERR, no question
  for (int i = 0; i < 3; ++i) {
    std::vector<uint8_t> m = header;
    size_t n = rrl.Apply(addr.data(), false, m.data(), m.size(), counters);
    EXPECT_EQ(n, 12u);
    EXPECT_EQ(m[2] & 0x02, i > 0 ? 0x02 : 0) << i;
  }
  std::vector<uint8_t> tiny = {1, 2, 3};
  EXPECT_EQ(rrl.Apply(addr.data(), false, tiny.data(), tiny.size(), counters), 3u);
}

}  // namespace
}  // namespace tandem::dataplane
