// RDATA layouts per type.
#include "dataplane/dns/rrtype.h"

#include "absl/strings/str_cat.h"

namespace tandem::dns {
namespace {

using F = Field;
constexpr RdataLayout kOpaque{{F::kRest}};
constexpr RdataLayout kOneCompressible{{F::kCompressibleName}};
constexpr RdataLayout kSoa{{F::kCompressibleName, F::kCompressibleName, F::kFixed4, F::kFixed4,
                            F::kFixed4, F::kFixed4, F::kFixed4}};
constexpr RdataLayout kMx{{F::kFixed2, F::kCompressibleName}};
constexpr RdataLayout kSrv{{F::kFixed2, F::kFixed2, F::kFixed2, F::kName}};
constexpr RdataLayout kNaptr{
    {F::kFixed2, F::kFixed2, F::kCharString, F::kCharString, F::kCharString, F::kName}};
constexpr RdataLayout kDname{{F::kName}};
// RRSIG: type covered, algorithm+labels, original TTL, expiration, inception, key tag,
// signer's name, signature.
constexpr RdataLayout kRrsig{
    {F::kFixed2, F::kFixed2, F::kFixed4, F::kFixed4, F::kFixed4, F::kFixed2, F::kName, F::kRest}};
constexpr RdataLayout kNsec{{F::kName, F::kRest}};
// SVCB/HTTPS: priority, target name, parameters.
constexpr RdataLayout kSvcb{{F::kFixed2, F::kName, F::kRest}};

}  // namespace

const RdataLayout& LayoutOf(uint16_t type) {
  switch (type) {
    case kTypeNS:
    case kTypeCNAME:
    case kTypePTR:
      return kOneCompressible;
    case kTypeSOA: return kSoa;
    case kTypeMX: return kMx;
    case kTypeSRV: return kSrv;
    case kTypeNAPTR: return kNaptr;
    case kTypeDNAME: return kDname;
    case kTypeRRSIG: return kRrsig;
    case kTypeNSEC: return kNsec;
    case kTypeSVCB:
    case kTypeHTTPS:
      return kSvcb;
    default: return kOpaque;
  }
}

bool HasNames(uint16_t type) {
  for (Field f : LayoutOf(type).fields) {
    if (f == Field::kEnd) break;
    if (f == Field::kName || f == Field::kCompressibleName) return true;
  }
  return false;
}

std::string TypeToText(uint16_t type) {
  switch (type) {
    case kTypeA: return "A";
    case kTypeNS: return "NS";
    case kTypeCNAME: return "CNAME";
    case kTypeSOA: return "SOA";
    case kTypePTR: return "PTR";
    case kTypeHINFO: return "HINFO";
    case kTypeMX: return "MX";
    case kTypeTXT: return "TXT";
    case kTypeAAAA: return "AAAA";
    case kTypeSRV: return "SRV";
    case kTypeNAPTR: return "NAPTR";
    case kTypeDNAME: return "DNAME";
    case kTypeOPT: return "OPT";
    case kTypeDS: return "DS";
    case kTypeRRSIG: return "RRSIG";
    case kTypeNSEC: return "NSEC";
    case kTypeDNSKEY: return "DNSKEY";
    case kTypeNSEC3: return "NSEC3";
    case kTypeNSEC3PARAM: return "NSEC3PARAM";
    case kTypeSVCB: return "SVCB";
    case kTypeHTTPS: return "HTTPS";
    case kTypeAXFR: return "AXFR";
    case kTypeIXFR: return "IXFR";
    case kTypeANY: return "ANY";
    case kTypeCAA: return "CAA";
    default: return absl::StrCat("TYPE", type);
  }
}

}  // namespace tandem::dns
