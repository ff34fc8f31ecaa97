// Fuzz target: the wire codec on arbitrary messages. dns::ParseQuery on the whole input;
// dns::ParseName at the question and at an offset taken from the input (with compression);
// dns::ReadRecord over every record after the question. Invariants: SkipName agrees with
// ParseName on where a name ends; a parsed name is valid uncompressed wire form and
// survives NameToText -> NameFromText; a record read and re-appended reads back the same.
#include <cstring>
#include <string>

#include "tests/fuzz/fuzz_common.h"

namespace {

namespace dns = tandem::dns;
using tandem::fuzz::Fail;

void CheckName(const uint8_t* msg, size_t len, size_t offset, int budget) {
  dns::NameBuf name;
  size_t next = 0;
  dns::NameError e = dns::ParseName(msg, len, offset, &name, &next, &budget);
  size_t skipped = 0;
  dns::NameError se = dns::SkipName(msg, len, offset, &skipped);
  if (e != dns::NameError::kOk) {
    if (dns::NameErrorText(e) == nullptr) Fail("NameErrorText without text");
    return;
  }
  if (next <= offset || next > len) Fail("ParseName end outside the message");
  if (se != dns::NameError::kOk || skipped != next)
    Fail("SkipName and ParseName disagree on the name's end");
  if (name.length == 0 || name.length > dns::kMaxNameLength)
    Fail("parsed name length out of range");
  if (dns::WireNameLength(name.data, name.length) != name.length)
    Fail("parsed name is not valid wire form");
  if (dns::CountLabels(name.data) != name.labels) Fail("parsed name label count wrong");

  std::string text = dns::NameToText(name.data);
  auto back = dns::NameFromText(text);
  if (!back.ok()) Fail("NameFromText rejects what NameToText wrote");
  if (back->size() != name.length || std::memcmp(back->data(), name.data, name.length) != 0)
    Fail("name changed through its presentation form");

  uint8_t lower[dns::kMaxNameLength];
  std::memcpy(lower, name.data, name.length);
  dns::LowerName(lower, name.length);
  if (!dns::NameEqual(lower, name.data)) Fail("a name differs from its lower-cased self");
  if (!dns::IsSubdomain(name.data, name.length, name.data + name.length - 1, 1))
    Fail("a name is not below the root");
}

void CheckRecords(const uint8_t* msg, size_t len) {
  if (len < dns::kHeaderSize) return;
  size_t pos = dns::kHeaderSize;
  for (int i = 0; i < dns::header::Qdcount(msg); ++i) {
    if (dns::SkipName(msg, len, pos, &pos) != dns::NameError::kOk || pos + 4 > len) return;
    pos += 4;
  }
  int budget = 4096;
  for (int i = 0; i < 256 && pos < len; ++i) {
    dns::Record r;
    std::string error;
    size_t start = pos;
    if (!dns::ReadRecord(msg, len, &pos, &budget, &r, &error)) {
      if (error.empty()) Fail("ReadRecord failed without a reason");
      return;
    }
    if (pos <= start || pos > len) Fail("ReadRecord moved outside the message");
    if (dns::WireNameLength(reinterpret_cast<const uint8_t*>(r.owner.data()), r.owner.size()) !=
        r.owner.size())
      Fail("record owner is not valid wire form");
    // Written back uncompressed, the record must read back the same.
    std::string again(dns::kHeaderSize, '\0');
    dns::AppendRecord(&again, r);
    if (r.rdata.size() > 65535) continue;  // decompressed past what one RDATA can hold
    size_t p2 = dns::kHeaderSize;
    int b2 = 0;
    dns::Record r2;
    std::string e2;
    if (!dns::ReadRecord(reinterpret_cast<const uint8_t*>(again.data()), again.size(), &p2, &b2,
                         &r2, &e2))
      Fail("a record written by AppendRecord does not read back");
    if (p2 != again.size() || r2.owner != r.owner || r2.type != r.type || r2.rclass != r.rclass ||
        r2.ttl != r.ttl || r2.rdata != r.rdata)
      Fail("a record changed through AppendRecord");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dns::Query q;
  dns::QueryVerdict v = dns::ParseQuery(data, size, &q);
  if (v == dns::QueryVerdict::kOk || v == dns::QueryVerdict::kFormErr ||
      v == dns::QueryVerdict::kBadVersion) {
    if (q.question_end > size || q.question_end < dns::kHeaderSize + 5)
      Fail("question end outside the message");
    if (dns::WireNameLength(q.qname.data, q.qname.length) != q.qname.length)
      Fail("query name is not valid wire form");
  }
  CheckName(data, size, dns::kHeaderSize, 0);
  if (size >= 2) CheckName(data, size, (size_t{data[0]} << 8 | data[1]) % size, 16);
  CheckRecords(data, size);
  return 0;
}
