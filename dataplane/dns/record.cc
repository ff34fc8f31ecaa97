// Record reading with RDATA decompression.
#include "dataplane/dns/record.h"

#include "absl/strings/str_cat.h"
#include "dataplane/dns/rrtype.h"
#include "dataplane/dns/wire.h"

namespace tandem::dns {
namespace {

bool Fail(std::string* error, const std::string& what) {
  *error = what;
  return false;
}

// Decompresses the RDATA at msg[start, start + rdlen) into out.
bool ReadRdata(const uint8_t* msg, size_t len, size_t start, uint16_t rdlen, uint16_t type,
               int* budget, std::string* out, std::string* error) {
  size_t end = start + rdlen;
  size_t pos = start;
  if (HasNames(type)) {
    for (Field f : LayoutOf(type).fields) {
      if (f == Field::kEnd) break;
      // Only an opaque remainder may be empty: a layout cut short (an SOA without its
      // timers) would leave readers of the fixed fields outside the RDATA.
      if (pos >= end && f != Field::kRest)
        return Fail(error, absl::StrCat("RDATA of type ", TypeToText(type), " too short"));
      size_t n = 0;
      switch (f) {
        case Field::kName:
        case Field::kCompressibleName: {
          NameBuf name;
          size_t next;
          NameError e = ParseName(msg, end, pos, &name, &next, budget);
          if (e != NameError::kOk) return Fail(error, absl::StrCat("RDATA of type ", TypeToText(type), ": ", NameErrorText(e)));
          out->append(reinterpret_cast<const char*>(name.data), name.length);
          pos = next;
          continue;
        }
        case Field::kFixed1: n = 1; break;
        case Field::kFixed2: n = 2; break;
        case Field::kFixed4: n = 4; break;
        case Field::kFixed16: n = 16; break;
        case Field::kCharString: n = 1u + msg[pos]; break;
        case Field::kRest: n = end - pos; break;
        case Field::kEnd: break;
      }
      if (pos + n > end) return Fail(error, absl::StrCat("RDATA of type ", TypeToText(type), " too short"));
      out->append(reinterpret_cast<const char*>(msg + pos), n);
      pos += n;
    }
    if (pos != end) return Fail(error, absl::StrCat("RDATA of type ", TypeToText(type), " has trailing bytes"));
    return true;
  }
  (void)len;
  out->append(reinterpret_cast<const char*>(msg + start), rdlen);
  return true;
}

}  // namespace

bool ReadRecord(const uint8_t* msg, size_t len, size_t* pos, int* pointer_budget, Record* out,
                std::string* error) {
  NameBuf owner;
  size_t p;
  NameError e = ParseName(msg, len, *pos, &owner, &p, pointer_budget);
  if (e != NameError::kOk) return Fail(error, absl::StrCat("owner name: ", NameErrorText(e)));
  if (p + 10 > len) return Fail(error, "record header truncated");
  out->owner.assign(reinterpret_cast<const char*>(owner.data), owner.length);
  out->type = Get16(msg + p);
  out->rclass = Get16(msg + p + 2);
  out->ttl = Get32(msg + p + 4);
  uint16_t rdlen = Get16(msg + p + 8);
  if (p + 10 + rdlen > len) return Fail(error, "RDATA truncated");
  out->rdata.clear();
  if (!ReadRdata(msg, len, p + 10, rdlen, out->type, pointer_budget, &out->rdata, error)) return false;
  *pos = p + 10 + rdlen;
  return true;
}

std::string CanonicalRdata(uint16_t type, const std::string& rdata) {
  std::string out = rdata;
  if (!HasNames(type)) return out;
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  size_t off = 0, end = out.size();
  for (Field f : LayoutOf(type).fields) {
    if (f == Field::kEnd || off >= end) break;
    size_t n = 0;
    switch (f) {
      case Field::kName:
      case Field::kCompressibleName:
        n = WireNameLength(p + off, end - off);
        if (n == 0) return out;  // malformed: leave the rest as it is
        LowerName(p + off, n);
        break;
      case Field::kFixed1: n = 1; break;
      case Field::kFixed2: n = 2; break;
      case Field::kFixed4: n = 4; break;
      case Field::kFixed16: n = 16; break;
      case Field::kCharString: n = 1u + p[off]; break;
      case Field::kRest: n = end - off; break;
      case Field::kEnd: break;
    }
    off += n;
  }
  return out;
}

std::string RecordKey(const Record& r) {
  std::string k = r.owner;
  LowerName(reinterpret_cast<uint8_t*>(k.data()), k.size());
  k.push_back(static_cast<char>(r.type >> 8));
  k.push_back(static_cast<char>(r.type));
  k += CanonicalRdata(r.type, r.rdata);
  return k;
}

void AppendRecord(std::string* msg, const Record& r) {
  msg->append(r.owner);
  uint8_t h[10];
  Put16(h, r.type);
  Put16(h + 2, r.rclass);
  Put32(h + 4, r.ttl);
  Put16(h + 8, static_cast<uint16_t>(r.rdata.size()));
  msg->append(reinterpret_cast<const char*>(h), 10);
  msg->append(r.rdata);
}

}  // namespace tandem::dns
