// The client side of zone transfers: SOA queries, AXFR (RFC 5936) and IXFR (RFC 1995) over
// TCP, with TSIG on every message where a key is given. Blocking sockets with deadlines;
// run from the control plane's transfer thread, never from a worker.
//
//   SOA query (UDP; TCP when truncated)
//   IXFR request (our SOA in authority) --> single SOA, serial not newer: up to date
//                                       --> SOA, SOA(old) ... : incremental differences
//                                       --> SOA, records ...  : a whole zone (AXFR-style)
//   AXFR request --> SOA, records ..., SOA (the same): a whole zone
//
// Every message: our ID, QR, NOERROR, TSIG verified; the stream must end with the closing
// SOA; no out-of-zone record; at most max_bytes on the wire. Anything else is an error
// and the caller keeps what it had.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "dataplane/address.h"
#include "dataplane/dns/record.h"

namespace tandem::control {

namespace tsig {
struct Key;
}

struct TransferOptions {
  dataplane::Endpoint server;
  std::string zone;                 // wire form
  const tsig::Key* key = nullptr;   // TSIG on every exchange when set
  absl::Duration timeout = absl::Seconds(10);  // for each read and write, and the SOA query
  size_t max_bytes = size_t{1} << 30;          // of transfer messages
};

struct SoaAnswer {
  dns::Record soa;
  uint32_t serial = 0;
  absl::Duration latency;
  bool authoritative = false;
};

// Asks the server for the zone's SOA. Errors name the server and what went wrong
// (timeout, rcode, no SOA in the answer).
absl::StatusOr<SoaAnswer> QuerySoa(const TransferOptions& options);

struct IxfrDiff {
  dns::Record from_soa, to_soa;
  std::vector<dns::Record> removed, added;
};

struct TransferResult {
  bool up_to_date = false;
  bool incremental = false;          // diffs holds the changes; records is empty
  uint32_t serial = 0;               // the serial the stream brings the zone to
  std::vector<dns::Record> records;  // a whole zone: the SOA first, not repeated
  std::vector<IxfrDiff> diffs;
  size_t messages = 0;
  size_t bytes = 0;
};

// AXFR when `have` is empty; IXFR from `have` (our current SOA) otherwise.
absl::StatusOr<TransferResult> Transfer(const TransferOptions& options,
                                        const std::optional<dns::Record>& have);

// RFC 1982 serial arithmetic: a is newer than b.
bool SerialNewer(uint32_t a, uint32_t b);

}  // namespace tandem::control
