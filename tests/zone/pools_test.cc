// Pooled names in the handler: A/AAAA from the pool by policy, every member when all are
// down, other types from the zone, NODATA (not NXDOMAIN) for a pooled name the zone lacks.
#include "dataplane/zone/pools.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "control/zone_file.h"
#include "dataplane/dns/name.h"
#include "dataplane/handler.h"
#include "dataplane/zone/snapshot.h"
#include "tests/testing/dns_message.h"

namespace tandem::zone {
namespace {

PoolMember V4(uint8_t last, bool up, uint32_t weight, uint16_t id) {
  return {{192, 0, 2, last}, false, up, weight, id};
}

class Pooled : public ::testing::Test {
 protected:
  void Build(PoolPolicy policy, std::vector<PoolMember> members) {
    auto z = control::LoadZoneText("example.com",
                                   "$ORIGIN example.com.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n"
                                   "www A 198.51.100.1\nwww TXT \"zone data\"\n");
    ASSERT_TRUE(z.ok()) << z.status();
    auto set = std::make_shared<PoolSet>();
    Pool pool;
    pool.policy = policy;
    pool.max_answers = 8;
    pool.members = std::move(members);
    pool.members.push_back({{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}, true, true, 1, 99});
    set->pools().push_back(pool);
    set->Bind(*dns::NameFromText("www.example.com"), 0, 30);
    set->Bind(*dns::NameFromText("api.example.com"), 0, 30);
    set->Finish();
    snapshot_ = std::make_unique<Snapshot>(std::vector<std::shared_ptr<const Zone>>{z->zone}, set);
  }

  testing::Decoded Ask(const std::string& name, uint16_t type) {
    auto q = testing::MakeQuery(name, type);
    std::vector<uint8_t> out(4096);
    size_t n = handler_.Answer(snapshot_.get(), q.data(), q.size(), out.data(), out.size(),
                               dataplane::Transport::kUdp, counters_);
    return testing::Decode(out.data(), n);
  }

  dataplane::QueryHandler handler_;
  dataplane::WorkerCounters counters_;
  std::unique_ptr<Snapshot> snapshot_;
};

TEST_F(Pooled, AllHealthyAnswersTheUpMembersAndReplacesZoneAddresses) {
  Build(PoolPolicy::kAllHealthy, {V4(10, true, 1, 0), V4(11, false, 1, 1), V4(12, true, 1, 2)});
  testing::Decoded d = Ask("www.example.com", 1);
  EXPECT_TRUE(d.aa);
  EXPECT_THAT(testing::Lines(d.answer), ::testing::ElementsAre("www.example.com. A 192.0.2.10",
                                                               "www.example.com. A 192.0.2.12"));
  EXPECT_EQ(d.answer[0].ttl, 30u);
  EXPECT_EQ(counters_.member_answers[0], 1u);
  EXPECT_EQ(counters_.member_answers[1], 0u);
}

TEST_F(Pooled, EveryMemberDownAnswersThemAllAndCounts) {
  Build(PoolPolicy::kAllHealthy, {V4(10, false, 1, 0), V4(11, false, 1, 1)});
  EXPECT_EQ(Ask("www.example.com", 1).answer.size(), 2u);
  EXPECT_EQ(counters_.pool_all_down, 1u);
}

TEST_F(Pooled, FailoverAnswersTheFirstHealthy) {
  Build(PoolPolicy::kFailover, {V4(10, false, 1, 0), V4(11, true, 1, 1), V4(12, true, 1, 2)});
  testing::Decoded d = Ask("www.example.com", 1);
  ASSERT_EQ(d.answer.size(), 1u);
  EXPECT_EQ(d.answer[0].rdata, "192.0.2.11");
}

TEST_F(Pooled, WeightedFollowsTheWeights) {
  Build(PoolPolicy::kWeighted, {V4(10, true, 3, 0), V4(11, true, 1, 1), V4(12, false, 50, 2)});
  std::map<std::string, int> seen;
  for (int i = 0; i < 8000; ++i) {
    testing::Decoded d = Ask("www.example.com", 1);
    ASSERT_EQ(d.answer.size(), 1u);
    ++seen[d.answer[0].rdata];
  }
  EXPECT_EQ(seen.count("192.0.2.12"), 0u);  // down
  double share = seen["192.0.2.10"] / 8000.0;
  EXPECT_NEAR(share, 0.75, 0.03);  // 5 sigma of a binomial(8000, 0.75) is about 0.024
}

TEST_F(Pooled, AaaaFromTheV6MembersOtherTypesFromTheZone) {
  Build(PoolPolicy::kAllHealthy, {V4(10, true, 1, 0)});
  testing::Decoded v6 = Ask("www.example.com", 28);
  ASSERT_EQ(v6.answer.size(), 1u);
  EXPECT_EQ(v6.answer[0].rdata, "2001:db8::10");
  testing::Decoded txt = Ask("www.example.com", 16);
  EXPECT_EQ(txt.answer.size(), 1u);
  testing::Decoded missing = Ask("api.example.com", 16);  // pooled, not in the zone
  EXPECT_EQ(missing.rcode, 0);
  EXPECT_TRUE(missing.answer.empty());
  EXPECT_EQ(missing.authority.size(), 1u);
}

}  // namespace
}  // namespace tandem::zone
