// Query parsing (hostile input included) and the compressing response writer.
#include "dataplane/dns/message.h"

#include <gtest/gtest.h>

#include <cctype>
#include <random>
#include <string>
#include <vector>

#include "tests/testing/dns_message.h"

namespace tandem::dns {
namespace {

using testing::MakeQuery;

const uint8_t* U8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// A message holding the question for `qname`, ready for a writer.
struct Question {
  std::vector<uint8_t> msg;
  size_t end = 0;
  int labels = 0;
};

Question MakeQuestion(const std::string& qname, size_t size = 512) {
  Question q;
  q.msg = MakeQuery(qname, 1);
  q.end = q.msg.size();
  q.labels = CountLabels(q.msg.data() + kHeaderSize);
  q.msg.resize(size);
  return q;
}

// The message octets in [from, to).
std::vector<uint8_t> Octets(const Question& q, size_t from, size_t to) {
  return {q.msg.begin() + static_cast<long>(from), q.msg.begin() + static_cast<long>(to)};
}

// What a writer leaves in the message, past the question.
std::vector<uint8_t> Written(const Question& q, const MessageWriter& w) { return Octets(q, q.end, w.size()); }

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

// The question name as received: no compression, any case, and hostile label sequences.
// ParseQuery reads it without ParseName; the two must agree on every input.
TEST(ParseQuery, QuestionNameAgreesWithParseName) {
  std::mt19937 rng(1);
  std::string longest = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') +
                        "." + std::string(61, 'd');
  std::vector<std::vector<uint8_t>> seeds = {MakeQuery("www.Example.COM", 1), MakeQuery("a.b.c.d.e.f.g.h", 28),
                                             MakeQuery("", 2), MakeQuery("x", 1), MakeQuery(longest, 1)};
  // 255 octets exactly, then 256: the longest name and one octet more.
  EXPECT_EQ(seeds.back().size(), 12u + 255 + 4);
  auto over = seeds.back();
  over[kHeaderSize + 3 * 64] = 62;
  over.insert(over.begin() + kHeaderSize + 3 * 64 + 1, 'd');
  Query edge;
  EXPECT_EQ(ParseQuery(seeds.back().data(), seeds.back().size(), &edge), QueryVerdict::kOk);
  EXPECT_EQ(ParseQuery(over.data(), over.size(), &edge), QueryVerdict::kFormErrHeader);
  seeds.push_back(over);
  // The most labels a name can have (127, 255 octets), and one more.
  std::string most = "a";
  for (int i = 1; i < 127; ++i) most += ".a";
  seeds.push_back(MakeQuery(most, 1));
  EXPECT_EQ(ParseQuery(seeds.back().data(), seeds.back().size(), &edge), QueryVerdict::kOk);
  EXPECT_EQ(edge.qname.labels, 127);
  EXPECT_EQ(edge.qname_offsets[127], 254);  // the root
  auto more = seeds.back();
  more.insert(more.begin() + kHeaderSize, {1, 'a'});  // 128 labels, 257 octets
  seeds.push_back(more);
  EXPECT_EQ(ParseQuery(more.data(), more.size(), &edge), QueryVerdict::kFormErrHeader);
  for (int round = 0; round < 20000; ++round) {
    auto m = seeds[rng() % seeds.size()];
    int edits = static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t at = kHeaderSize + rng() % (m.size() - kHeaderSize);
      uint8_t values[] = {0, 1, 2, 3, 63, 64, 128, 0xc0, 0xff, static_cast<uint8_t>(rng())};
      m[at] = values[rng() % 10];
    }
    if (rng() % 4 == 0) m.resize(kHeaderSize + rng() % (m.size() - kHeaderSize + 1));
    Query q;
    QueryVerdict v = ParseQuery(m.data(), m.size(), &q);
    NameBuf ref;
    size_t next;
    int budget = 0;
    bool name_ok = ParseName(m.data(), m.size(), kHeaderSize, &ref, &next, &budget) == NameError::kOk;
    if (!name_ok || next + 4 > m.size()) {
      EXPECT_EQ(v, QueryVerdict::kFormErrHeader) << round;
      continue;
    }
    ASSERT_NE(v, QueryVerdict::kFormErrHeader) << round;
    EXPECT_EQ(q.qname.length, ref.length) << round;
    EXPECT_EQ(q.qname.labels, ref.labels) << round;
    EXPECT_EQ(std::vector<uint8_t>(q.qname.data, q.qname.data + q.qname.length),
              std::vector<uint8_t>(ref.data, ref.data + ref.length)) << round;
    EXPECT_EQ(q.question_end, next + 4) << round;
    size_t at = 0;  // each label's offset, then the root's
    for (int l = 0; l <= ref.labels; ++l) {
      EXPECT_EQ(q.qname_offsets[l], at) << round << " label " << l;
      at += 1u + ref.data[at];
    }
  }
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
  ASSERT_TRUE(w.WriteName(reinterpret_cast<const uint8_t*>(mail.data())));
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

// The question name passed as itself (question_name()), or a suffix of it (a pointer into
// it at a label boundary: the zone's apex, a cut above the name), is written without a
// search; the bytes must be those of the search, whatever the case of the question or of
// an equal name taken from elsewhere: a pointer to that place (offset 12 for the whole
// name), then the same compression for the names after it. The question's root is written
// whole.
TEST(MessageWriter, QuestionOwnerIsAPointerIntoTheQuestion) {
  for (const char* qname : {"www.example.com", "WwW.ExAmPlE.cOm", "x", "A.B.C.D.E.F.G.H.I.J"}) {
    Question probe = MakeQuestion(qname);
    for (int suffix = 0; suffix <= probe.labels; ++suffix) {
      Question fast = MakeQuestion(qname);
      Question searched = MakeQuestion(qname);
      MessageWriter wf(fast.msg.data(), fast.msg.size());
      MessageWriter ws(searched.msg.data(), searched.msg.size());
      wf.StartAfterQuestion(fast.end, fast.labels);
      ws.StartAfterQuestion(searched.end, searched.labels);
      size_t at = 12;
      for (int i = 0; i < suffix; ++i) at += 1 + fast.msg[at];
      std::string lower(reinterpret_cast<const char*>(fast.msg.data() + at), fast.end - 4 - at);
      LowerName(reinterpret_cast<uint8_t*>(lower.data()), lower.size());
      std::string mail = "\x04mail" + lower;
      uint8_t a[4] = {192, 0, 2, 1};
      ASSERT_TRUE(wf.WriteRecord(wf.question_name() + (at - 12), 1, 60, a, 4));
      ASSERT_TRUE(ws.WriteRecord(U8(lower), 1, 60, a, 4));
      ASSERT_TRUE(wf.WriteName(U8(mail)));
      ASSERT_TRUE(ws.WriteName(U8(mail)));
      EXPECT_EQ(Written(fast, wf), Written(searched, ws)) << qname << " suffix " << suffix;
      if (suffix < probe.labels) {
        EXPECT_EQ(Written(fast, wf)[0], 0xc0 | (at >> 8)) << qname << " suffix " << suffix;
        EXPECT_EQ(Written(fast, wf)[1], at & 0xff) << qname << " suffix " << suffix;
      } else {
        EXPECT_EQ(Written(fast, wf)[0], 0) << qname << ": the root, whole";
      }
    }
  }
}

// Names compared with the question's suffixes: with the question's label offsets given
// (as the handler gives the parser's) and without them (the writer walks the question),
// the octets are the same, and each name reads back as written. Names equal to a suffix
// in another case point at it; names one octet apart, or a label longer, do not; labels
// of every length around the eight-octet compare.
TEST(MessageWriter, QuestionSuffixesWithAndWithoutLabelOffsets) {
  for (const char* qname : {"www.example.com", "AbCdEfGhIjK.x.LONGERLABEL-0123456789.test", "a.b", "x"}) {
    Question probe = MakeQuestion(qname);
    std::vector<std::string> names;
    size_t at = kHeaderSize;
    for (int i = 0; i <= probe.labels; ++i) {
      std::string suffix(reinterpret_cast<const char*>(probe.msg.data() + at), probe.end - 4 - at);
      for (const std::string& prefix : {std::string(), std::string("\x04mail"), std::string("\x09" "abcdefghi")}) {
        std::string lower = prefix + suffix;
        LowerName(reinterpret_cast<uint8_t*>(lower.data()), lower.size());
        names.push_back(lower);
        if (suffix.size() > 1) {
          std::string changed = prefix + suffix;
          changed[prefix.size() + suffix.size() - 2] ^= 0x01;  // the last octet before the root
          names.push_back(changed);
        }
      }
      at += 1 + probe.msg[at];
    }
    Question given = MakeQuestion(qname);
    Question walked = MakeQuestion(qname);
    Query parsed;
    ASSERT_EQ(ParseQuery(given.msg.data(), given.end, &parsed), QueryVerdict::kOk);
    MessageWriter wg(given.msg.data(), given.msg.size());
    MessageWriter ww(walked.msg.data(), walked.msg.size());
    wg.StartAfterQuestion(given.end, given.labels, parsed.qname_offsets);
    ww.StartAfterQuestion(walked.end, walked.labels);
    std::vector<size_t> starts;
    for (const std::string& n : names) {
      starts.push_back(wg.size());
      ASSERT_TRUE(wg.WriteName(U8(n)));
      ASSERT_TRUE(ww.WriteName(U8(n)));
    }
    EXPECT_EQ(Written(given, wg), Written(walked, ww)) << qname;
    for (size_t i = 0; i < names.size(); ++i) {
      NameBuf back;
      size_t next;
      int budget = 64;
      ASSERT_EQ(ParseName(given.msg.data(), wg.size(), starts[i], &back, &next, &budget), NameError::kOk);
      std::string lower = names[i];
      LowerName(reinterpret_cast<uint8_t*>(lower.data()), lower.size());
      std::string read(reinterpret_cast<const char*>(back.data), back.length);
      LowerName(reinterpret_cast<uint8_t*>(read.data()), read.size());
      EXPECT_EQ(read, lower) << qname << " name " << i;
    }
    // The whole question, in the other case: a pointer to offset 12.
    std::string upper(reinterpret_cast<const char*>(given.msg.data() + kHeaderSize), given.end - 4 - kHeaderSize);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    size_t before = wg.size();
    ASSERT_TRUE(wg.WriteName(U8(upper)));
    if (given.labels > 0) {
      EXPECT_EQ(Octets(given, before, wg.size()), (std::vector<uint8_t>{0xc0, 12})) << qname;
    }
  }
}

// The root as the question: a one-octet name is written as it stands, not as a pointer.
TEST(MessageWriter, RootQuestionOwnerIsWrittenWhole) {
  Question q = MakeQuestion("");
  ASSERT_EQ(q.labels, 0);
  MessageWriter w(q.msg.data(), q.msg.size());
  w.StartAfterQuestion(q.end, q.labels);
  ASSERT_TRUE(w.WriteName(w.question_name()));
  EXPECT_EQ(Written(q, w), std::vector<uint8_t>{0});
}

// After an answer owned by the question, other names still compress against the
// question's suffixes and against each other.
TEST(MessageWriter, NamesWithACommonSuffixAfterAQuestionOwner) {
  Question q = MakeQuestion("Www.Example.com");
  MessageWriter w(q.msg.data(), q.msg.size());
  w.StartAfterQuestion(q.end, q.labels);
  ASSERT_TRUE(w.WriteName(w.question_name()));
  size_t at = w.size();
  ASSERT_TRUE(w.WriteName(U8(*NameFromText("mail.example.com"))));
  // example.com in the question
  EXPECT_EQ(Octets(q, at, w.size()), (std::vector<uint8_t>{4, 'm', 'a', 'i', 'l', 0xc0, 16}));
  size_t second = w.size();
  ASSERT_TRUE(w.WriteName(U8(*NameFromText("a.MAIL.example.com"))));
  // the mail name above
  EXPECT_EQ(Octets(q, second, w.size()), (std::vector<uint8_t>{1, 'a', 0xc0, static_cast<uint8_t>(at)}));
  size_t third = w.size();
  ASSERT_TRUE(w.WriteName(U8(*NameFromText("www.example.com"))));  // equal, other case
  EXPECT_EQ(Octets(q, third, w.size()), (std::vector<uint8_t>{0xc0, 12}));
  ASSERT_TRUE(w.WriteName(U8(*NameFromText("other.test"))));  // nothing in common
  EXPECT_EQ(w.size(), third + 2 + 12);
}

// A question owner that does not fit leaves the message as it was; a rollback over one
// forgets nothing it should keep: later names compress as in a fresh message.
TEST(MessageWriter, RollbackAfterAQuestionOwner) {
  Question q = MakeQuestion("www.example.com");
  MessageWriter full(q.msg.data(), q.end + 1);
  full.StartAfterQuestion(q.end, q.labels);
  EXPECT_FALSE(full.WriteName(full.question_name()));
  EXPECT_EQ(full.size(), q.end);
  uint8_t a[4] = {192, 0, 2, 1};
  MessageWriter tight(q.msg.data(), q.end + 2 + 10 + 3);
  tight.StartAfterQuestion(q.end, q.labels);
  EXPECT_FALSE(tight.WriteRecord(tight.question_name(), 1, 60, a, 4));  // RDATA does not fit
  EXPECT_EQ(tight.size(), q.end);

  Question fresh = MakeQuestion("www.example.com");
  MessageWriter wf(fresh.msg.data(), fresh.msg.size());
  wf.StartAfterQuestion(fresh.end, fresh.labels);
  MessageWriter w(q.msg.data(), q.msg.size());
  w.StartAfterQuestion(q.end, q.labels);
  ASSERT_TRUE(w.WriteRecord(w.question_name(), 1, 60, a, 4));
  ASSERT_TRUE(w.WriteName(U8(*NameFromText("ns.example.com"))));
  w.Rollback(q.end);
  for (MessageWriter* x : {&w, &wf}) {
    ASSERT_TRUE(x->WriteName(U8(*NameFromText("mx.example.com"))));
    ASSERT_TRUE(x->WriteRecord(x->question_name(), 1, 60, a, 4));
    ASSERT_TRUE(x->WriteName(U8(*NameFromText("a.mx.example.com"))));
  }
  EXPECT_EQ(Written(q, w), Written(fresh, wf));
  EXPECT_EQ(Written(q, w), (std::vector<uint8_t>{2, 'm', 'x', 0xc0, 16, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4,
                                                 192, 0, 2, 1, 1, 'a', 0xc0, static_cast<uint8_t>(q.end)}));
}

}  // namespace
}  // namespace tandem::dns
