// Signed requests on the query path: a request signed with a configured key gets a signed
// answer; a wrong key gets NOTAUTH with the TSIG error; an unsigned request is unchanged.
#include "control/query_tsig.h"

#include <gtest/gtest.h>

#include <ctime>

#include "control/zone_file.h"
#include "dataplane/handler.h"
#include "dataplane/zone/snapshot.h"
#include "tests/testing/dns_message.h"

namespace tandem::control {
namespace {

tsig::Key MakeTestKey(const std::string& secret) {
  config::TsigKey k{"xfr-key", "hmac-sha256", secret, 1};
  return *tsig::MakeKey(k);
}

class SignedQueries : public ::testing::Test {
 protected:
  void SetUp() override {
    auto z = LoadZoneText("example.com", "$ORIGIN example.com.\n$TTL 60\n@ SOA ns h 7 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n");
    ASSERT_TRUE(z.ok()) << z.status();
    snapshot_ = std::make_unique<zone::Snapshot>(std::vector<std::shared_ptr<const zone::Zone>>{z->zone});
    sink_.SetKeys({MakeTestKey("server secret")});
    handler_.set_tsig_sink(&sink_);
  }

  std::string Ask(const tsig::Key& key, tsig::ClientSession* session, dataplane::Transport t) {
    auto q = testing::MakeQuery("example.com", 6);
    std::string msg(q.begin(), q.end());
    EXPECT_TRUE(session->SignRequest(&msg, static_cast<uint64_t>(time(nullptr))).ok());
    (void)key;
    std::vector<uint8_t> out(65535);
    size_t n = handler_.Answer(snapshot_.get(), reinterpret_cast<const uint8_t*>(msg.data()), msg.size(),
                               out.data(), out.size(), t, counters_);
    return std::string(reinterpret_cast<const char*>(out.data()), n);
  }

  QueryTsig sink_;
  dataplane::QueryHandler handler_;
  dataplane::WorkerCounters counters_;
  std::unique_ptr<zone::Snapshot> snapshot_;
};

TEST_F(SignedQueries, SignedRequestGetsASignedAnswer) {
  for (auto t : {dataplane::Transport::kUdp, dataplane::Transport::kTcp}) {
    tsig::Key key = MakeTestKey("server secret");
    tsig::ClientSession session(key);
    std::string r = Ask(key, &session, t);
    ASSERT_GT(r.size(), 12u);
    auto len = session.VerifyResponse(reinterpret_cast<uint8_t*>(r.data()), r.size(), static_cast<uint64_t>(time(nullptr)));
    ASSERT_TRUE(len.ok()) << len.status();
    testing::Decoded d = testing::Decode(reinterpret_cast<const uint8_t*>(r.data()), *len);
    EXPECT_TRUE(d.ok);
    EXPECT_EQ(d.rcode, 0);
    EXPECT_TRUE(d.aa);
    ASSERT_EQ(d.answer.size(), 1u);
    EXPECT_EQ(d.answer[0].type, 6);
  }
}

TEST_F(SignedQueries, WrongSecretIsNotAuth) {
  tsig::Key key = MakeTestKey("another secret");
  tsig::ClientSession session(key);
  std::string r = Ask(key, &session, dataplane::Transport::kUdp);
  ASSERT_GE(r.size(), 12u);
  EXPECT_EQ(r[3] & 0x0f, 9);  // NOTAUTH
  auto len = session.VerifyResponse(reinterpret_cast<uint8_t*>(r.data()), r.size(), static_cast<uint64_t>(time(nullptr)));
  ASSERT_FALSE(len.ok());
  EXPECT_NE(std::string(len.status().message()).find("BADSIG"), std::string::npos) << len.status();
}

}  // namespace
}  // namespace tandem::control
