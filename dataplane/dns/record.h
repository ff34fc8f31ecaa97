// Reading whole resource records out of a message, with the names inside RDATA
// decompressed per type (for transfers and any other message whose records are kept).
// No I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "dataplane/dns/name.h"

namespace tandem::dns {

struct Record {
  std::string owner;  // uncompressed wire form, case as received
  uint16_t type = 0;
  uint16_t rclass = 0;
  uint32_t ttl = 0;
  std::string rdata;  // uncompressed wire form
};

// Reads the record at msg[*pos] and advances *pos. Names in RDATA are decompressed where
// the type's layout has names; pointers must point backward and are counted against
// *pointer_budget. On failure returns false and sets *error.
bool ReadRecord(const uint8_t* msg, size_t len, size_t* pos, int* pointer_budget, Record* out,
                std::string* error);

// The RDATA with the names it holds lower-cased (RFC 4034 6.2 canonical form, for the
// types whose layout is known): two records are the same when owner, type and canonical
// RDATA match.
std::string CanonicalRdata(uint16_t type, const std::string& rdata);

// The identity of a record (for IXFR and zone differences): owner without case, type,
// canonical RDATA. TTL and class are not part of it.
std::string RecordKey(const Record& r);

// Appends a record in uncompressed form to a message being built.
void AppendRecord(std::string* msg, const Record& r);

}  // namespace tandem::dns
