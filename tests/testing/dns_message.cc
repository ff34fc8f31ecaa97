// Test helpers.
#include "tests/testing/dns_message.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/rrtype.h"
#include "dataplane/dns/wire.h"

namespace tandem::testing {

using namespace tandem::dns;

std::vector<uint8_t> MakeQuery(const std::string& name, uint16_t type, const QueryOptions& o) {
  std::vector<uint8_t> m(12, 0);
  Put16(m.data(), o.id);
  m[2] = static_cast<uint8_t>((o.opcode & 0x0f) << 3 | (o.rd ? 1 : 0));
  Put16(m.data() + 4, 1);
  auto wire = NameFromText(name);
  m.insert(m.end(), wire->begin(), wire->end());
  uint8_t tail[4];
  Put16(tail, type);
  Put16(tail + 2, o.qclass);
  m.insert(m.end(), tail, tail + 4);
  if (o.edns) {
    uint8_t opt[11] = {0, 0, 41};
    Put16(opt + 3, o.udp_size);
    opt[7] = o.do_bit ? 0x80 : 0;
    m.insert(m.end(), opt, opt + 11);
    Put16(m.data() + 10, 1);
  }
  return m;
}

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(AsciiLower(static_cast<uint8_t>(c)));
  return s;
}

bool ReadRdata(const uint8_t* msg, size_t len, size_t pos, uint16_t type, uint16_t rdlen,
               std::string* out) {
  const uint8_t* rd = msg + pos;
  if (type == kTypeA && rdlen == 4) {
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, rd, buf, sizeof buf);
    *out = buf;
    return true;
  }
  if (type == kTypeAAAA && rdlen == 16) {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, rd, buf, sizeof buf);
    *out = buf;
    return true;
  }
  int budget = 64;
  NameBuf name;
  size_t next;
  size_t fixed = type == kTypeMX ? 2 : type == kTypeSRV ? 6 : 0;
  if (type == kTypeNS || type == kTypeCNAME || type == kTypePTR || type == kTypeDNAME ||
      type == kTypeMX || type == kTypeSRV) {
    std::string prefix;
    for (size_t i = 0; i < fixed; i += 2) prefix += absl::StrCat(Get16(rd + i), " ");
    if (ParseName(msg, len, pos + fixed, &name, &next, &budget) != NameError::kOk) return false;
    if (next != pos + rdlen) return false;
    *out = prefix + Lower(NameToText(name.data));
    return true;
  }
  if (type == kTypeSOA) {
    NameBuf rname;
    if (ParseName(msg, len, pos, &name, &next, &budget) != NameError::kOk) return false;
    if (ParseName(msg, len, next, &rname, &next, &budget) != NameError::kOk) return false;
    if (next + 20 != pos + rdlen) return false;
    *out = absl::StrCat(Lower(NameToText(name.data)), " ", Lower(NameToText(rname.data)), " ",
                        Get32(msg + next), " ", Get32(msg + next + 4), " ", Get32(msg + next + 8),
                        " ", Get32(msg + next + 12), " ", Get32(msg + next + 16));
    return true;
  }
  std::string hex;
  for (uint16_t i = 0; i < rdlen; ++i) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", rd[i]);
    hex += b;
  }
  *out = hex;
  return true;
}

}  // namespace

Decoded Decode(const uint8_t* msg, size_t len) {
  Decoded d;
  if (len < 12) return d;
  d.id = Get16(msg);
  d.qr = header::Qr(msg);
  d.aa = header::Aa(msg);
  d.tc = header::Tc(msg);
  d.rd = header::Rd(msg);
  d.rcode = header::Rcode(msg);
  d.qdcount = header::Qdcount(msg);
  size_t pos = 12;
  int budget = 256;
  for (int i = 0; i < d.qdcount; ++i) {
    NameBuf q;
    if (ParseName(msg, len, pos, &q, &pos, &budget) != NameError::kOk || pos + 4 > len) return d;
    d.qname_raw = NameToText(q.data);
    d.qtype = Get16(msg + pos);
    pos += 4;
  }
  std::vector<Record>* sections[3] = {&d.answer, &d.authority, &d.additional};
  int counts[3] = {header::Ancount(msg), header::Nscount(msg), header::Arcount(msg)};
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < counts[s]; ++i) {
      NameBuf owner;
      if (ParseName(msg, len, pos, &owner, &pos, &budget) != NameError::kOk || pos + 10 > len) return d;
      uint16_t type = Get16(msg + pos);
      uint16_t rdlen = Get16(msg + pos + 8);
      if (pos + 10 + rdlen > len) return d;
      if (type == kTypeOPT) {
        d.has_opt = true;
        d.opt_udp_size = Get16(msg + pos + 2);
        d.rcode |= msg[pos + 4] << 4;
        d.opt_do = msg[pos + 6] & 0x80;
        pos += 10 + rdlen;
        continue;
      }
      Record r{Lower(NameToText(owner.data)), type, Get32(msg + pos + 4), ""};
      if (!ReadRdata(msg, len, pos + 10, type, rdlen, &r.rdata)) return d;
      sections[s]->push_back(r);
      pos += 10 + rdlen;
    }
  }
  d.ok = pos == len;
  return d;
}

std::vector<std::string> Lines(const std::vector<Record>& rrs) {
  std::vector<std::string> out;
  for (const auto& r : rrs) out.push_back(absl::StrCat(r.owner, " ", TypeToText(r.type), " ", r.rdata));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace tandem::testing
