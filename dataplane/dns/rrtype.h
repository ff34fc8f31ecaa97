// Resource record types and, per type, the layout of its RDATA: which fields are domain
// names and whether those names may be compressed when written (RFC 3597 section 4).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tandem::dns {

enum RRType : uint16_t {
  kTypeA = 1,
  kTypeNS = 2,
  kTypeCNAME = 5,
  kTypeSOA = 6,
  kTypePTR = 12,
  kTypeHINFO = 13,
  kTypeMX = 15,
  kTypeTXT = 16,
  kTypeAAAA = 28,
  kTypeSRV = 33,
  kTypeNAPTR = 35,
  kTypeDNAME = 39,
  kTypeOPT = 41,
  kTypeDS = 43,
  kTypeRRSIG = 46,
  kTypeNSEC = 47,
  kTypeDNSKEY = 48,
  kTypeNSEC3 = 50,
  kTypeNSEC3PARAM = 51,
  kTypeSVCB = 64,
  kTypeHTTPS = 65,
  kTypeTKEY = 249,
  kTypeTSIG = 250,
  kTypeIXFR = 251,
  kTypeAXFR = 252,
  kTypeMAILB = 253,
  kTypeMAILA = 254,
  kTypeANY = 255,
  kTypeCAA = 257,
};

// One RDATA field kind. Layouts are sequences of fields; kRest takes what remains.
enum class Field : uint8_t {
  kEnd = 0,
  kFixed1,
  kFixed2,
  kFixed4,
  kFixed16,
  kCompressibleName,  // may be compressed on the wire both ways (RFC 1035 types)
  kName,              // a name never compressed when written; decompressed when read
  kCharString,        // one <character-string>: length octet + data
  kRest,              // opaque remainder
};

struct RdataLayout {
  Field fields[8];
};

// The layout for a type; unknown types are one opaque kRest field (RFC 3597).
const RdataLayout& LayoutOf(uint16_t type);

// True when the RDATA of this type holds at least one name.
bool HasNames(uint16_t type);

// Meta and query-only types (OPT, TSIG, TKEY, IXFR, AXFR, MAILA, MAILB, ANY).
inline bool IsMetaType(uint16_t t) { return t == kTypeOPT || (t >= 128 && t <= 255); }

// "A", "TYPE65280" etc.
std::string TypeToText(uint16_t type);

}  // namespace tandem::dns
