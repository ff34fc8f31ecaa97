// Name codec: parsing with decompression, hostile input, text conversion.
#include "dataplane/dns/name.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace tandem::dns {
namespace {

NameError Parse(const std::vector<uint8_t>& msg, size_t offset, NameBuf* out, size_t* next) {
  int budget = 16;
  return ParseName(msg.data(), msg.size(), offset, out, next, &budget);
}

TEST(Name, ParsesPlainName) {
  std::vector<uint8_t> m = {3, 'w', 'w', 'w', 7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0xff};
  NameBuf n;
  size_t next;
  ASSERT_EQ(Parse(m, 0, &n, &next), NameError::kOk);
  EXPECT_EQ(next, 13u);
  EXPECT_EQ(n.length, 13);
  EXPECT_EQ(n.labels, 2);
  EXPECT_EQ(NameToText(n.data), "www.Example.");
}

TEST(Name, FollowsBackwardPointer) {
  std::vector<uint8_t> m = {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 3, 'w', 'w', 'w', 0xc0, 0};
  NameBuf n;
  size_t next;
  ASSERT_EQ(Parse(m, 9, &n, &next), NameError::kOk);
  EXPECT_EQ(next, 15u);  // just past the pointer
  EXPECT_EQ(NameToText(n.data), "www.example.");
}

TEST(Name, RejectsPointerLoopAndForwardPointer) {
  std::vector<uint8_t> self = {0xc0, 0};
  NameBuf n;
  size_t next;
  EXPECT_EQ(Parse(self, 0, &n, &next), NameError::kBadPointer);
  std::vector<uint8_t> forward = {0xc0, 2, 0};
  EXPECT_EQ(Parse(forward, 0, &n, &next), NameError::kBadPointer);
  // Two pointers pointing at each other: the second one points forward.
  std::vector<uint8_t> loop = {1, 'a', 0xc0, 4, 1, 'b', 0xc0, 0};
  EXPECT_NE(Parse(loop, 0, &n, &next), NameError::kOk);
}

TEST(Name, BoundsPointerWork) {
  // A chain of pointers each one step back: legal, but over the budget.
  std::vector<uint8_t> m = {0};
  for (int i = 0; i < 40; ++i) {
    size_t target = m.size() - (i == 0 ? 1 : 2);
    m.push_back(static_cast<uint8_t>(0xc0 | (target >> 8)));
    m.push_back(static_cast<uint8_t>(target));
  }
  NameBuf n;
  size_t next;
  EXPECT_EQ(Parse(m, m.size() - 2, &n, &next), NameError::kTooManyPointers);
}

TEST(Name, RejectsLongLabelsAndNames) {
  std::vector<uint8_t> label(66, 'a');
  label[0] = 64;  // 0x40: reserved label type
  label.back() = 0;
  NameBuf n;
  size_t next;
  EXPECT_EQ(Parse(label, 0, &n, &next), NameError::kLabelTooLong);
  std::vector<uint8_t> name;
  for (int i = 0; i < 5; ++i) {
    name.push_back(63);
    name.insert(name.end(), 63, 'x');
  }
  name.push_back(0);
  EXPECT_EQ(Parse(name, 0, &n, &next), NameError::kNameTooLong);
}

TEST(Name, NameOf255OctetsIsAccepted) {
  std::vector<uint8_t> name;
  for (int i = 0; i < 3; ++i) {
    name.push_back(63);
    name.insert(name.end(), 63, 'x');
  }
  name.push_back(61);
  name.insert(name.end(), 61, 'y');
  name.push_back(0);
  ASSERT_EQ(name.size(), 255u);
  NameBuf n;
  size_t next;
  EXPECT_EQ(Parse(name, 0, &n, &next), NameError::kOk);
}

TEST(Name, TruncationAtEveryByteIsAnError) {
  std::vector<uint8_t> m = {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 3, 'w', 'w', 'w', 0xc0, 0};
  for (size_t cut = 9; cut < m.size(); ++cut) {
    std::vector<uint8_t> t(m.begin(), m.begin() + cut);
    NameBuf n;
    size_t next;
    EXPECT_EQ(Parse(t, 9, &n, &next), NameError::kTruncated) << cut;
  }
}

TEST(Name, TextRoundTripWithEscapes) {
  auto w = NameFromText("a\\.b.c\\032d.Example.");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(NameToText(reinterpret_cast<const uint8_t*>(w->data())), "a\\.b.c\\032d.Example.");
  EXPECT_FALSE(NameFromText("a..b").ok());
  EXPECT_FALSE(NameFromText(std::string(64, 'a') + ".com").ok());
  EXPECT_EQ(*NameFromText("."), std::string(1, '\0'));
}

TEST(Name, CaseInsensitiveCompareAndSubdomain) {
  auto a = *NameFromText("WWW.example.COM");
  auto b = *NameFromText("www.EXAMPLE.com");
  auto p = *NameFromText("example.com");
  auto u = reinterpret_cast<const uint8_t*>(a.data());
  EXPECT_TRUE(NameEqual(u, reinterpret_cast<const uint8_t*>(b.data())));
  EXPECT_TRUE(IsSubdomain(u, a.size(), reinterpret_cast<const uint8_t*>(p.data()), p.size()));
  EXPECT_FALSE(IsSubdomain(reinterpret_cast<const uint8_t*>(p.data()), p.size(), u, a.size()));
  auto other = *NameFromText("xample.com");
  EXPECT_FALSE(IsSubdomain(u, a.size(), reinterpret_cast<const uint8_t*>(other.data()), other.size()));
}

// LowerName works eight octets at a time: it must change exactly the octets the label by
// label definition does (ASCII A-Z inside labels, up to the root or `len`), whatever the
// octets, the label lengths (including ones over 63) and where `len` cuts the name.
TEST(Name, LowerNameEqualsLabelByLabelLowering) {
  auto reference = [](std::vector<uint8_t> n, size_t len) {
    size_t pos = 0;
    while (pos < len && n[pos] != 0) {
      uint8_t l = n[pos];
      for (size_t i = 1; i <= l && pos + i < len; ++i) n[pos + i] = AsciiLower(n[pos + i]);
      pos += 1 + l;
    }
    return n;
  };
  std::mt19937 rng(3);
  const uint8_t alphabet[] = {'A', 'Z', 'a', 'z', '@', '[', '`', '{', '0', '-', 0xc1, 0xda, 0x41 | 0x80, 0};
  for (int round = 0; round < 20000; ++round) {
    std::vector<uint8_t> name;
    int labels = static_cast<int>(rng() % 6);
    for (int k = 0; k < labels; ++k) {
      uint8_t l = static_cast<uint8_t>(rng() % 10 == 0 ? 60 + rng() % 140 : 1 + rng() % 20);
      name.push_back(l);
      for (int i = 0; i < l && name.size() < 300; ++i) name.push_back(alphabet[rng() % sizeof(alphabet)]);
    }
    name.push_back(0);
    for (int i = static_cast<int>(rng() % 12); i > 0; --i) name.push_back('Q');  // past the root
    size_t len = rng() % 3 == 0 ? rng() % (name.size() + 1) : name.size();
    std::vector<uint8_t> got = name;
    LowerName(got.data(), len);
    ASSERT_EQ(got, reference(name, len)) << "round " << round << " len " << len;
  }
}

// SameOctets against memcmp: strings of every length up to 255 that are equal, or differ
// in one octet at any position (a word compare that skipped an octet would miss it).
TEST(Name, SameOctetsFindsADifferenceAtEveryPosition) {
  std::mt19937 rng(9);
  std::vector<uint8_t> a(256), b(256);
  for (size_t len = 0; len <= 255; ++len) {
    for (auto& c : a) c = static_cast<uint8_t>(rng());
    b = a;
    ASSERT_TRUE(SameOctets(a.data(), b.data(), len)) << len;
    for (size_t i = 0; i < len; ++i) {
      b[i] ^= static_cast<uint8_t>(1 + rng() % 255);
      ASSERT_FALSE(SameOctets(a.data(), b.data(), len)) << len << " at " << i;
      b[i] = a[i];
    }
    b[len] ^= 1;  // past the strings: not compared
    ASSERT_TRUE(SameOctets(a.data(), b.data(), len)) << len;
  }
}

}  // namespace
}  // namespace tandem::dns
