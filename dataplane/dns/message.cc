// Query parsing and response writing.
#include "dataplane/dns/message.h"

#include <cstring>

namespace tandem::dns {

bool SkipRecord(const uint8_t* msg, size_t len, size_t pos, size_t* next, uint16_t* type) {
  size_t p;
  if (SkipName(msg, len, pos, &p) != NameError::kOk) return false;
  if (p + 10 > len) return false;
  *type = Get16(msg + p);
  uint16_t rdlen = Get16(msg + p + 8);
  if (p + 10 + rdlen > len) return false;
  *next = p + 10 + rdlen;
  return true;
}

namespace {

// The question name: ParseName with no pointer allowed (nothing before the question to
// point at), so the name stands whole in the message and is used where it stands.
// Returns false where ParseName fails.
bool ParseQuestionName(const uint8_t* msg, size_t len, Query* q, size_t* next) {
  size_t pos = kHeaderSize;
  size_t labels = 0;
  // A label running past the end fails at the next length octet. The length limit is
  // checked once at the end: the verdict is the same whichever check fails first (a name
  // of more than 127 labels is longer than 255 octets).
  for (;;) {
    if (pos >= len || labels >= kMaxLabels) return false;
    uint8_t l = msg[pos];
    if (l & 0xc0) return false;  // a pointer, or a reserved label type
    q->qname_offsets[labels] = static_cast<uint8_t>(pos - kHeaderSize);
    pos += 1 + l;
    if (l == 0) break;
    ++labels;
  }
  size_t n = pos - kHeaderSize;
  if (n > kMaxNameLength) return false;
  q->qname.data = msg + kHeaderSize;
  q->qname.length = static_cast<uint8_t>(n);
  q->qname.labels = static_cast<uint8_t>(labels);
  *next = pos;
  return true;
}

}  // namespace

QueryVerdict ParseQuery(const uint8_t* msg, size_t len, Query* q) {
  if (len < kHeaderSize || header::Qr(msg)) return QueryVerdict::kDrop;
  if (header::Qdcount(msg) != 1) return QueryVerdict::kFormErrHeader;
  size_t pos;
  if (!ParseQuestionName(msg, len, q, &pos)) return QueryVerdict::kFormErrHeader;
  if (pos + 4 > len) return QueryVerdict::kFormErrHeader;
  q->qtype = Get16(msg + pos);
  q->qclass = Get16(msg + pos + 2);
  pos += 4;
  q->question_end = pos;
  q->has_edns = false;
  q->has_tsig = false;
  q->opt_outside_additional = false;
  q->edns_do = false;
  q->edns_version = 0;
  q->edns_udp_size = 0;

  // Answer and authority sections are skipped (a NOTIFY or UPDATE may carry them);
  // the additional section is searched for OPT.
  uint16_t records = header::Ancount(msg) + header::Nscount(msg);
  uint16_t additional = header::Arcount(msg);
  for (uint32_t i = 0; i < static_cast<uint32_t>(records) + additional; ++i) {
    size_t next;
    uint16_t type;
    if (!SkipRecord(msg, len, pos, &next, &type)) return QueryVerdict::kFormErr;
    if (type == kTypeTSIG) {
      // Only as the last record of the message.
      if (i + 1 != static_cast<uint32_t>(records) + additional) return QueryVerdict::kFormErr;
      q->has_tsig = true;
    }
    if (i < records && type == kTypeOPT) q->opt_outside_additional = true;
    if (i >= records && type == kTypeOPT) {
      // OPT: owner must be the root; only one.
      if (q->has_edns || msg[pos] != 0) return QueryVerdict::kFormErr;
      const uint8_t* rr = msg + pos + 1;
      q->has_edns = true;
      q->edns_udp_size = Get16(rr + 2);
      q->edns_version = rr[5];
      q->edns_do = rr[6] & 0x80;
      // Options must tile the RDATA exactly.
      uint16_t rdlen = Get16(rr + 8);
      const uint8_t* opt = rr + 10;
      size_t left = rdlen;
      while (left > 0) {
        if (left < 4) return QueryVerdict::kFormErr;
        uint16_t olen = Get16(opt + 2);
        if (4u + olen > left) return QueryVerdict::kFormErr;
        opt += 4 + olen;
        left -= 4 + olen;
      }
    }
    pos = next;
  }
  if (pos != len) return QueryVerdict::kFormErr;  // trailing bytes
  if (q->has_edns && q->edns_version != 0) return QueryVerdict::kBadVersion;
  return QueryVerdict::kOk;
}

void MessageWriter::StartAfterQuestion(size_t question_end, int qname_labels, const uint8_t* label_offsets) {
  pos_ = question_end;
  ntargets_ = 0;
  qname_labels_ = qname_labels;
  qname_root_ = question_end - 5;  // before the root: QTYPE, QCLASS
  qname_offsets_ = label_offsets;
}

void MessageWriter::Rollback(size_t size) {
  pos_ = size;
  while (ntargets_ > 0 && targets_[ntargets_ - 1].offset >= size) --ntargets_;
}

void MessageWriter::AddTargets(size_t start, const uint8_t* name, int labels, int count) {
  size_t off = start;
  for (int i = 0; i < count && ntargets_ < kMaxTargets; ++i) {
    if (off >= 0x4000) break;
    targets_[ntargets_++] = {static_cast<uint16_t>(off), static_cast<uint8_t>(labels - i)};
    off += 1 + name[off - start];
  }
}

// The question first: its suffix of as many labels, uncompressed, compared whole; then
// the names written since, label by label through their pointers.
int MessageWriter::FindSuffix(const uint8_t* suffix, int labels, size_t len) {
  if (labels <= qname_labels_) {
    if (qname_offsets_ == nullptr) {  // the labels of the question, walked once
      size_t off = 0;
      for (int i = 0; i <= qname_labels_; ++i) {
        own_offsets_[i] = static_cast<uint8_t>(off);
        off += 1u + buf_[kHeaderSize + off];
      }
      qname_offsets_ = own_offsets_;
    }
    const size_t at = kHeaderSize + qname_offsets_[qname_labels_ - labels];
    if (qname_root_ + 1 - at == len && SameOctetsNoCase(buf_ + at, suffix, len)) return static_cast<int>(at);
  }
  for (int t = 0; t < ntargets_; ++t) {
    if (targets_[t].labels != labels) continue;
    size_t p = targets_[t].offset;
    const uint8_t* s = suffix;
    bool equal = true;
    for (;;) {
      uint8_t l = buf_[p];
      if ((l & 0xc0) == 0xc0) {
        p = static_cast<size_t>(l & 0x3f) << 8 | buf_[p + 1];
        continue;
      }
      if (l != *s) {
        equal = false;
        break;
      }
      if (l == 0) break;
      for (uint8_t i = 1; i <= l; ++i) {
        uint8_t a = buf_[p + i];
        uint8_t b = s[i];
        if (a != b && AsciiLower(a) != AsciiLower(b)) {
          equal = false;
          break;
        }
      }
      if (!equal) break;
      p += 1 + l;
      s += 1 + l;
    }
    if (equal) return targets_[t].offset;
  }
  return -1;
}

bool MessageWriter::WriteSearchedName(const uint8_t* name, size_t* name_len) {
  int labels = 0;
  size_t len = 0;  // zone data and questions: validated when built or parsed
  for (; name[len] != 0; len += 1u + name[len]) ++labels;
  if (name_len != nullptr) *name_len = len + 1;
  const uint8_t* p = name;
  int written_labels = 0;
  size_t start = pos_;
  while (*p) {
    int found = FindSuffix(p, labels - written_labels, len + 1 - static_cast<size_t>(p - name));
    if (found >= 0) {
      size_t prefix = static_cast<size_t>(p - name);
      if (!Reserve(prefix + 2)) return false;
      std::memcpy(buf_ + pos_, name, prefix);
      buf_[pos_ + prefix] = static_cast<uint8_t>(0xc0 | (found >> 8));
      buf_[pos_ + prefix + 1] = static_cast<uint8_t>(found);
      pos_ += prefix + 2;
      AddTargets(start, buf_ + start, labels, written_labels);
      return true;
    }
    p += 1 + *p;
    ++written_labels;
  }
  const size_t n = len + 1;  // no suffix found: the whole name
  if (!Reserve(n)) return false;
  std::memcpy(buf_ + pos_, name, n);
  pos_ += n;
  AddTargets(start, buf_ + start, labels, labels);
  return true;
}

bool MessageWriter::WriteRdata(uint16_t type, const uint8_t* rdata, uint16_t rdlen) {
  const RdataLayout& layout = LayoutOf(type);
  size_t off = 0;
  for (Field f : layout.fields) {
    if (f == Field::kEnd || off >= rdlen) break;
    size_t n = 0;
    switch (f) {
      case Field::kCompressibleName:  // never in the message: no question suffix to point at
        if (!WriteSearchedName(rdata + off, &n)) return false;
        off += n;
        continue;
      case Field::kName: n = WireNameLength(rdata + off, rdlen - off); break;
      case Field::kFixed1: n = 1; break;
      case Field::kFixed2: n = 2; break;
      case Field::kFixed4: n = 4; break;
      case Field::kFixed16: n = 16; break;
      case Field::kCharString: n = 1 + rdata[off]; break;
      case Field::kRest: n = rdlen - off; break;
      case Field::kEnd: break;
    }
    if (n == 0 || off + n > rdlen) n = rdlen - off;  // zone data is validated at build
    if (!Reserve(n)) return false;
    std::memcpy(buf_ + pos_, rdata + off, n);
    pos_ += n;
    off += n;
  }
  if (off < rdlen) {
    size_t n = rdlen - off;
    if (!Reserve(n)) return false;
    std::memcpy(buf_ + pos_, rdata + off, n);
    pos_ += n;
  }
  return true;
}

bool MessageWriter::WriteRecord(const uint8_t* owner, uint16_t type, uint32_t ttl,
                                const uint8_t* rdata, uint16_t rdlen) {
  size_t start = pos_;
  if (!WriteName(owner) || !Reserve(10)) {
    Rollback(start);
    return false;
  }
  uint8_t* h = buf_ + pos_;
  Put16(h, type);
  Put16(h + 2, kClassIn);
  Put32(h + 4, ttl);
  pos_ += 10;
  size_t rd_start = pos_;
  bool ok;
  if (type == kTypeA || type == kTypeAAAA || !HasNames(type)) {  // RDATA as it stands
    ok = Reserve(rdlen);
    if (ok) {
      // An address, most answers, as one move rather than a call.
      if (rdlen == 4) std::memcpy(buf_ + pos_, rdata, 4);
      else if (rdlen == 16) std::memcpy(buf_ + pos_, rdata, 16);
      else std::memcpy(buf_ + pos_, rdata, rdlen);
      pos_ += rdlen;
    }
  } else {
    ok = WriteRdata(type, rdata, rdlen);
  }
  if (!ok) {
    Rollback(start);
    return false;
  }
  Put16(h + 8, static_cast<uint16_t>(pos_ - rd_start));
  return true;
}

bool MessageWriter::WriteOpt(uint16_t udp_size, uint8_t ext_rcode, bool do_bit) {
  if (!Reserve(11)) return false;
  uint8_t* p = buf_ + pos_;
  p[0] = 0;
  Put16(p + 1, kTypeOPT);
  Put16(p + 3, udp_size);
  p[5] = ext_rcode;
  p[6] = 0;  // version
  p[7] = do_bit ? 0x80 : 0;
  p[8] = 0;
  Put16(p + 9, 0);
  pos_ += 11;
  return true;
}

}  // namespace tandem::dns
