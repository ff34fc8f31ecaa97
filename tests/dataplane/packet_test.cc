// The per-frame step of the poll-mode path: classification, in-place answers with
// swapped addresses and valid checksums, and hostile frames counted, never answered.
#include "dataplane/packet.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "control/zone_file.h"
#include "dataplane/dns/wire.h"
#include "dataplane/handler.h"
#include "dataplane/rrl.h"
#include "dataplane/zone/snapshot.h"
#include "tests/testing/dns_message.h"

namespace tandem::dataplane {
namespace {

const uint8_t kOurMac[6] = {0x02, 0, 0, 0, 0, 1};
const uint8_t kPeerMac[6] = {0x02, 0, 0, 0, 0, 2};

uint16_t Checksum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (; n > 1; n -= 2, p += 2) sum += p[0] << 8 | p[1];
  if (n) sum += p[0] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

struct Frames : ::testing::Test {
  void SetUp() override {
    auto z = control::LoadZoneText("example.com",
                                   "$ORIGIN example.com.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.80\n");
    ASSERT_TRUE(z.ok()) << z.status();
    snapshot = std::make_unique<zone::Snapshot>(std::vector<std::shared_ptr<const zone::Zone>>{z->zone});
    std::memcpy(ctx.mac, kOurMac, 6);
    inet_pton(AF_INET, "198.18.0.1", &ctx.v4[0]);
    ctx.nv4 = 1;
    inet_pton(AF_INET6, "2001:db8::1", ctx.v6[0]);
    ctx.nv6 = 1;
  }

  // An Ethernet frame carrying a DNS query over UDP from the peer to us.
  std::vector<uint8_t> Frame(bool v6, const std::vector<uint8_t>& dns, bool vlan = false,
                             uint16_t dport = 53, const char* source = nullptr) {
    std::vector<uint8_t> f(kOurMac, kOurMac + 6);
    f.insert(f.end(), kPeerMac, kPeerMac + 6);
    if (vlan) f.insert(f.end(), {0x81, 0x00, 0x00, 0x07});
    f.insert(f.end(), {static_cast<uint8_t>(v6 ? 0x86 : 0x08), static_cast<uint8_t>(v6 ? 0xdd : 0x00)});
    size_t ip = f.size();
    uint16_t udp_len = static_cast<uint16_t>(8 + dns.size());
    if (!v6) {
      uint8_t h[20] = {0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0};
      dns::Put16(h + 2, static_cast<uint16_t>(20 + udp_len));
      inet_pton(AF_INET, source ? source : "198.18.0.2", h + 12);
      inet_pton(AF_INET, "198.18.0.1", h + 16);
      dns::Put16(h + 10, static_cast<uint16_t>(~Checksum(h, 20)));
      f.insert(f.end(), h, h + 20);
    } else {
      uint8_t h[40] = {0x60, 0, 0, 0, 0, 0, 17, 64};
      dns::Put16(h + 4, udp_len);
      inet_pton(AF_INET6, source ? source : "2001:db8::2", h + 8);
      inet_pton(AF_INET6, "2001:db8::1", h + 24);
      f.insert(f.end(), h, h + 40);
    }
    size_t udp = f.size();
    uint8_t u[8] = {0x30, 0x39};
    dns::Put16(u + 2, dport);
    dns::Put16(u + 4, udp_len);
    f.insert(f.end(), u, u + 8);
    f.insert(f.end(), dns.begin(), dns.end());
    dns::Put16(&f[udp + 6], static_cast<uint16_t>(~Checksum(&f[udp], udp_len, Pseudo(f, ip, v6, udp_len))));
    return f;
  }

  static uint32_t Pseudo(const std::vector<uint8_t>& f, size_t ip, bool v6, uint16_t udp_len) {
    return v6 ? Checksum(&f[ip + 8], 32) + 17 + udp_len : Checksum(&f[ip + 12], 8) + 17 + udp_len;
  }

  FrameResult Run(std::vector<uint8_t>& f, uint32_t flags = 0, RateLimiter* rrl = nullptr) {
    size_t len = f.size();
    f.resize(2048, 0xa5);  // not zeros: a sum that read past the datagram would show
    FrameResult r = ProcessFrame(f.data(), static_cast<uint32_t>(len), 2048, flags, ctx,
                                 snapshot.get(), handler, counters, rrl);
    if (r.verdict == FrameVerdict::kTransmit) f.resize(r.length);
    else f.resize(len);
    return r;
  }

  FrameContext ctx;
  QueryHandler handler;
  WorkerCounters counters;
  std::unique_ptr<zone::Snapshot> snapshot;
};

TEST_F(Frames, AnswersIpv4InPlace) {
  auto f = Frame(false, testing::MakeQuery("www.example.com", 1));
  FrameResult r = Run(f);
  ASSERT_EQ(r.verdict, FrameVerdict::kTransmit);
  EXPECT_EQ(std::memcmp(&f[0], kPeerMac, 6), 0);
  EXPECT_EQ(std::memcmp(&f[6], kOurMac, 6), 0);
  char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &f[14 + 12], src, sizeof src);
  inet_ntop(AF_INET, &f[14 + 16], dst, sizeof dst);
  EXPECT_STREQ(src, "198.18.0.1");  // the reply comes from the address queried
  EXPECT_STREQ(dst, "198.18.0.2");
  EXPECT_EQ(dns::Get16(&f[14 + 2]), f.size() - 14);
  EXPECT_EQ(Checksum(&f[14], 20), 0xffff);
  EXPECT_EQ(dns::Get16(&f[34]), 53);      // source port
  EXPECT_EQ(dns::Get16(&f[36]), 0x3039);  // back to the client's port
  uint16_t udp_len = dns::Get16(&f[38]);
  EXPECT_EQ(udp_len, f.size() - 34);
  EXPECT_EQ(Checksum(&f[34], udp_len, Pseudo(f, 14, false, udp_len)), 0xffff);
  testing::Decoded d = testing::Decode(&f[42], f.size() - 42);
  ASSERT_TRUE(d.ok);
  EXPECT_TRUE(d.aa);
  ASSERT_EQ(d.answer.size(), 1u);
  EXPECT_EQ(d.answer[0].rdata, "192.0.2.80");
}

// An IPv4 header with options: its checksum covers them, so a query with any octet of
// them changed is dropped; the answer goes back without them, its checksums holding.
TEST_F(Frames, Ipv4OptionsAreCheckedAndNotEchoed) {
  for (size_t opt : {4u, 8u, 12u, 40u}) {
    testing::QueryOptions o;
    o.id = 7;
    auto q = Frame(false, testing::MakeQuery("www.example.com", 1, o));
    std::vector<uint8_t> options(opt, 1);  // NOPs, then the end of the list
    options.back() = 0;
    q.insert(q.begin() + 34, options.begin(), options.end());
    q[14] = static_cast<uint8_t>(0x40 | (20 + opt) / 4);
    dns::Put16(&q[14 + 2], static_cast<uint16_t>(q.size() - 14));
    dns::Put16(&q[14 + 10], 0);
    dns::Put16(&q[14 + 10], static_cast<uint16_t>(~Checksum(&q[14], 20 + opt)));
    for (size_t at = 34; at < 34 + opt; ++at) {
      auto bad = q;
      bad[at] ^= 0x10;
      EXPECT_EQ(Run(bad).verdict, FrameVerdict::kDrop) << "options " << opt << " byte " << at;
    }
    auto ttl = q;
    ttl[14 + 8] ^= 0x01;
    EXPECT_EQ(Run(ttl).verdict, FrameVerdict::kDrop) << "options " << opt;
    auto f = q;
    ASSERT_EQ(Run(f).verdict, FrameVerdict::kTransmit) << "options " << opt;
    EXPECT_EQ(f[14], 0x45);
    EXPECT_EQ(dns::Get16(&f[14 + 2]), f.size() - 14);
    EXPECT_EQ(Checksum(&f[14], 20), 0xffff);
    uint16_t udp_len = dns::Get16(&f[38]);
    ASSERT_EQ(udp_len, f.size() - 34);
    EXPECT_EQ(Checksum(&f[34], udp_len, Pseudo(f, 14, false, udp_len)), 0xffff);
    testing::Decoded d = testing::Decode(&f[42], f.size() - 42);
    ASSERT_TRUE(d.ok);
    EXPECT_EQ(d.id, 7);
    ASSERT_EQ(d.answer.size(), 1u);
    EXPECT_EQ(d.answer[0].rdata, "192.0.2.80");
  }
}

TEST_F(Frames, AnswersIpv6AndVlan) {
  auto f = Frame(true, testing::MakeQuery("www.example.com", 1), true);
  FrameResult r = Run(f);
  ASSERT_EQ(r.verdict, FrameVerdict::kTransmit);
  EXPECT_EQ(r.l2_len, 18);
  size_t ip = 18, udp = 58;
  uint16_t udp_len = dns::Get16(&f[udp + 4]);
  EXPECT_EQ(dns::Get16(&f[ip + 4]), udp_len);
  EXPECT_EQ(Checksum(&f[udp], udp_len, Pseudo(f, ip, true, udp_len)), 0xffff);
  char src[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, &f[ip + 8], src, sizeof src);
  EXPECT_STREQ(src, "2001:db8::1");
  EXPECT_TRUE(testing::Decode(&f[udp + 8], udp_len - 8).ok);
}

TEST_F(Frames, OtherTrafficGoesToTheKernel) {
  auto arp = Frame(false, {});
  std::memset(arp.data(), 0xff, 6);  // broadcast
  arp[12] = 0x08;
  arp[13] = 0x06;
  EXPECT_EQ(Run(arp).verdict, FrameVerdict::kToKernel);
  auto other_port = Frame(false, testing::MakeQuery("www.example.com", 1), false, 54);
  EXPECT_EQ(Run(other_port).verdict, FrameVerdict::kToKernel);
  auto tcp = Frame(false, testing::MakeQuery("www.example.com", 1));
  tcp[14 + 9] = 6;
  EXPECT_EQ(Run(tcp).verdict, FrameVerdict::kToKernel);
  auto fragment = Frame(false, testing::MakeQuery("www.example.com", 1));
  fragment[14 + 6] = 0x20;  // MF
  EXPECT_EQ(Run(fragment).verdict, FrameVerdict::kToKernel);
  EXPECT_EQ(counters.malformed, 0u);
}

TEST_F(Frames, ForeignUnicastIsDropped) {
  auto f = Frame(false, testing::MakeQuery("www.example.com", 1));
  f[5] = 9;
  EXPECT_EQ(Run(f).verdict, FrameVerdict::kDrop);
  EXPECT_EQ(counters.not_for_us, 1u);
}

TEST_F(Frames, BadChecksumsAndLengthsAreCounted) {
  auto bad_ip = Frame(false, testing::MakeQuery("www.example.com", 1));
  bad_ip[14 + 10] ^= 1;
  EXPECT_EQ(Run(bad_ip).verdict, FrameVerdict::kDrop);
  auto bad_udp = Frame(false, testing::MakeQuery("www.example.com", 1));
  bad_udp[bad_udp.size() - 1] ^= 1;
  EXPECT_EQ(Run(bad_udp).verdict, FrameVerdict::kDrop);
  auto v6_zero = Frame(true, testing::MakeQuery("www.example.com", 1));
  v6_zero[54 + 6] = v6_zero[54 + 7] = 0;
  EXPECT_EQ(Run(v6_zero).verdict, FrameVerdict::kDrop);
  auto long_udp = Frame(false, testing::MakeQuery("www.example.com", 1));
  dns::Put16(&long_udp[38], 900);
  EXPECT_EQ(Run(long_udp).verdict, FrameVerdict::kDrop);
  EXPECT_EQ(counters.malformed, 4u);
}

// Datagrams of every length modulo eight, both families: the reply's checksums hold, and
// a query with any one byte of its datagram changed is dropped (the sum's tail handling).
TEST_F(Frames, ChecksumsHoldAtEveryLength) {
  for (bool v6 : {false, true}) {
    for (size_t label = 1; label <= 17; ++label) {
      std::string name = std::string(label, 'a') + ".example.com";
      auto q = Frame(v6, testing::MakeQuery(name, 1));
      size_t ip = 14, udp = v6 ? 54 : 34;
      for (size_t at = udp; at < q.size(); ++at) {
        if (at == udp + 6 || at == udp + 7) continue;  // the checksum itself: 0 means none over IPv4
        auto bad = q;
        bad[at] ^= 0x10;
        FrameVerdict v = Run(bad).verdict;
        if (at < udp + 8) {  // ports and length: another port goes to the kernel
          EXPECT_NE(v, FrameVerdict::kTransmit) << name << " v6 " << v6 << " byte " << at;
        } else {
          EXPECT_EQ(v, FrameVerdict::kDrop) << name << " v6 " << v6 << " byte " << at;
        }
      }
      auto f = q;
      ASSERT_EQ(Run(f).verdict, FrameVerdict::kTransmit) << name;
      uint16_t udp_len = dns::Get16(&f[udp + 4]);
      ASSERT_EQ(udp_len, f.size() - udp);
      EXPECT_EQ(Checksum(&f[udp], udp_len, Pseudo(f, ip, v6, udp_len)), 0xffff) << name << " v6 " << v6;
      if (!v6) {
        EXPECT_EQ(Checksum(&f[ip], 20), 0xffff) << name;
      }
    }
  }
}

// The reply's sums are made from the header values it writes and the ones it keeps: the
// client's address, its port and (over IPv4) the type of service, echoed. Each of them,
// with octets from 0x00 to 0xff, is covered: a sum that left one out fails here. With
// transmit checksum offload the UDP checksum field holds the pseudo-header's folded sum
// (the NIC adds the rest) and the IPv4 header checksum is left to the NIC.
TEST_F(Frames, ReplySumsCoverTheClientsAddressPortAndTos) {
  struct Client {
    const char* v4;
    const char* v6;
    uint16_t port;
    uint8_t tos;
  };
  const Client clients[] = {
      {"198.18.0.2", "2001:db8::2", 0x3039, 0},
      {"0.0.0.1", "::1", 1, 0x01},
      {"255.255.255.254", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 0xffff, 0xff},
      {"10.128.255.7", "fe80::8000:ff:7", 0x8001, 0xb8},
      {"192.0.2.200", "2001:db8:ffff::c8", 0xfe01, 0x28},
  };
  for (bool offload : {false, true}) {
    ctx.tx_checksum_offload = offload;
    for (bool v6 : {false, true}) {
      for (const Client& c : clients) {
        auto f = Frame(v6, testing::MakeQuery("www.example.com", 1), false, 53, v6 ? c.v6 : c.v4);
        size_t ip = 14, udp = v6 ? 54 : 34;
        dns::Put16(&f[udp], c.port);
        uint16_t udp_len = dns::Get16(&f[udp + 4]);
        if (!v6) {
          f[ip + 1] = c.tos;
          dns::Put16(&f[ip + 10], 0);
          dns::Put16(&f[ip + 10], static_cast<uint16_t>(~Checksum(&f[ip], 20)));
        }
        dns::Put16(&f[udp + 6], 0);
        dns::Put16(&f[udp + 6], static_cast<uint16_t>(~Checksum(&f[udp], udp_len, Pseudo(f, ip, v6, udp_len))));
        std::string what = std::string(v6 ? c.v6 : c.v4) + " port " + std::to_string(c.port) +
                           (offload ? " offload" : "");
        FrameResult r = Run(f);
        ASSERT_EQ(r.verdict, FrameVerdict::kTransmit) << what;
        EXPECT_EQ(r.l2_len, 14) << what;
        EXPECT_EQ(r.l3_len, v6 ? 40 : 20) << what;
        EXPECT_EQ(r.ipv4, !v6) << what;
        EXPECT_EQ(dns::Get16(&f[udp + 2]), c.port) << what;
        udp_len = dns::Get16(&f[udp + 4]);
        if (offload) {
          EXPECT_EQ(dns::Get16(&f[udp + 6]), Checksum(nullptr, 0, Pseudo(f, ip, v6, udp_len))) << what;
        } else {
          EXPECT_EQ(Checksum(&f[udp], udp_len, Pseudo(f, ip, v6, udp_len)), 0xffff) << what;
        }
        if (!v6) {
          EXPECT_EQ(f[ip + 1], c.tos) << what;
          if (offload) {
            EXPECT_EQ(dns::Get16(&f[ip + 10]), 0) << what;
          } else {
            EXPECT_EQ(Checksum(&f[ip], 20), 0xffff) << what;
          }
        }
      }
    }
  }
}

TEST_F(Frames, OffloadedChecksumsAreTrusted) {
  auto f = Frame(false, testing::MakeQuery("www.example.com", 1));
  f[41] ^= 0xff;  // a wrong UDP checksum the NIC reported good is not re-checked
  EXPECT_EQ(Run(f, kRxIpChecksumGood | kRxL4ChecksumGood).verdict, FrameVerdict::kTransmit);
}

TEST_F(Frames, TruncationAtEveryLengthNeverAnswersGarbage) {
  for (bool v6 : {false, true}) {
    auto full = Frame(v6, testing::MakeQuery("www.example.com", 1));
    for (size_t cut = 0; cut < full.size(); ++cut) {
      std::vector<uint8_t> f(full.begin(), full.begin() + cut);
      FrameResult r = Run(f);
      EXPECT_NE(r.verdict, FrameVerdict::kTransmit) << cut;
    }
  }
}

TEST_F(Frames, QueriesWithQrSetGetNothing) {
  auto q = testing::MakeQuery("www.example.com", 1);
  q[2] |= 0x80;
  auto f = Frame(false, q);
  EXPECT_EQ(Run(f).verdict, FrameVerdict::kDrop);
}

TEST_F(Frames, ResponsesFitTheMtu) {
  ctx.mtu = 576;  // the handler's UDP limit becomes 548 bytes of DNS at most
  testing::QueryOptions o;
  o.edns = true;
  o.udp_size = 4096;
  auto f = Frame(false, testing::MakeQuery("www.example.com", 1, o));
  ASSERT_EQ(Run(f).verdict, FrameVerdict::kTransmit);
  EXPECT_LE(f.size() - 14, 576u);
}

// Rate limiting on the poll-mode path: by the client's (source) address; a slipped answer
// is a valid frame with TC set and no records.
TEST_F(Frames, RateLimitedBySourceAddressWithSlip) {
  RateLimiter rrl(RrlOptions{.rate = 2, .slip = 2});
  rrl.SetNow(1000);
  auto query = testing::MakeQuery("www.example.com", 1);
  std::vector<FrameVerdict> verdicts;
  std::vector<bool> tc;
  for (int i = 0; i < 6; ++i) {
    auto f = Frame(false, query);
    FrameResult r = Run(f, 0, &rrl);
    verdicts.push_back(r.verdict);
    if (r.verdict != FrameVerdict::kTransmit) continue;
    uint16_t udp_len = dns::Get16(&f[38]);
    EXPECT_EQ(Checksum(&f[14], 20), 0xffff);
    EXPECT_EQ(Checksum(&f[34], udp_len, Pseudo(f, 14, false, udp_len)), 0xffff);
    testing::Decoded d = testing::Decode(&f[42], f.size() - 42);
    ASSERT_TRUE(d.ok);
    tc.push_back(d.tc);
    if (d.tc) {
      EXPECT_TRUE(d.answer.empty());
    }
  }
  using V = FrameVerdict;
  EXPECT_EQ(verdicts, (std::vector<V>{V::kTransmit, V::kTransmit, V::kDrop, V::kTransmit, V::kDrop,
                                      V::kTransmit}));
  EXPECT_EQ(tc, (std::vector<bool>{false, false, true, true}));
  EXPECT_EQ(counters.rrl_dropped, 2u);
  EXPECT_EQ(counters.rrl_slipped, 2u);

  // Another client prefix, to the same server address, has its own allowance.
  auto other = Frame(false, query, false, 53, "198.18.9.2");
  EXPECT_EQ(Run(other, 0, &rrl).verdict, FrameVerdict::kTransmit);
  EXPECT_FALSE(testing::Decode(&other[42], other.size() - 42).tc);
  auto v6 = Frame(true, query);
  EXPECT_EQ(Run(v6, 0, &rrl).verdict, FrameVerdict::kTransmit);
}

// A receive burst through ProcessFrames: every frame, whatever it is and wherever it sits
// in the burst (past the handler's stage of 32, too), gets exactly the bytes and verdict
// ProcessFrame gives it alone, and the counters agree.
TEST_F(Frames, BurstMatchesFrameByFrame) {
  std::vector<std::vector<uint8_t>> burst;
  const char* names[] = {"www.example.com", "ns.example.com", "nope.example.com", "example.com",
                         "www.example.net"};
  for (int i = 0; i < 45; ++i) {
    testing::QueryOptions o;
    o.edns = i % 3 == 0;
    auto f = Frame(i % 4 == 1, testing::MakeQuery(names[i % 5], i % 7 == 0 ? 28 : 1, o), i % 6 == 5);
    switch (i % 9) {
      case 2: f[5] = 9; break;               // another host's MAC
      case 4: f[f.size() - 1] ^= 1; break;   // bad UDP checksum
      case 6: f.resize(f.size() - 3); break; // truncated
      case 7: std::memset(f.data(), 0xff, 6); break;  // broadcast
      default: break;
    }
    burst.push_back(f);
  }
  auto q = testing::MakeQuery("www.example.com", 1);
  q[2] |= 0x80;  // a response: no answer
  burst.insert(burst.begin() + 10, Frame(false, q));
  burst.insert(burst.begin() + 20, Frame(false, testing::MakeQuery("www.example.com", 1), false, 54));

  std::vector<std::vector<uint8_t>> alone = burst;
  std::vector<FrameResult> alone_results;
  for (auto& f : alone) alone_results.push_back(Run(f));
  WorkerCounters alone_counters = counters;
  counters = {};

  std::vector<RxFrame> rx;
  for (auto& f : burst) {
    uint32_t len = static_cast<uint32_t>(f.size());
    f.resize(2048);
    rx.push_back({f.data(), len, 2048, 0});
  }
  ProcessFrames(rx, ctx, snapshot.get(), handler, counters);
  int answered = 0;
  for (size_t i = 0; i < burst.size(); ++i) {
    const FrameResult& r = rx[i].result;
    EXPECT_EQ(r.verdict, alone_results[i].verdict) << i;
    EXPECT_EQ(r.length, alone_results[i].length) << i;
    burst[i].resize(r.verdict == FrameVerdict::kTransmit ? r.length : rx[i].len);
    EXPECT_EQ(burst[i], alone[i]) << i;
    answered += r.verdict == FrameVerdict::kTransmit;
  }
  EXPECT_GT(answered, 20);
  EXPECT_EQ(counters.rx_packets, alone_counters.rx_packets);
  EXPECT_EQ(counters.malformed, alone_counters.malformed);
  EXPECT_EQ(counters.not_for_us, alone_counters.not_for_us);
  EXPECT_EQ(counters.queries[0], alone_counters.queries[0]);
  for (int rcode = 0; rcode < 24; ++rcode) EXPECT_EQ(counters.responses[rcode], alone_counters.responses[rcode]) << rcode;
}

}  // namespace
}  // namespace tandem::dataplane
