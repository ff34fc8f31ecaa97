// The history of a zone's versions as differences (IXFR, RFC 1995), for zones tandem is
// the primary of: each reload that changes a zone's serial adds the difference from the
// version served before, kept under state_dir so IXFR survives restarts.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control/transfer.h"
#include "dataplane/dns/record.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::control {

// Every record of a zone as served (owner names lower-case), in ForEachRecord's order
// (control/zone_copy.h): the SOA first. Empty for a zone with no SOA (SERVFAIL). Transfers
// walk the zone with ForEachRecord instead of listing it.
std::vector<dns::Record> ZoneRecords(const zone::Zone& z);

// The difference between two versions of a zone (SOA records in from_soa/to_soa only).
IxfrDiff Difference(const std::vector<dns::Record>& from, const std::vector<dns::Record>& to);
// The same for two built versions, without listing either (zones of millions of records).
IxfrDiff Difference(const zone::Zone& from, const zone::Zone& to);

class Journal {
 public:
  // Loads `dir`/*.diff (missing directory: empty history).
  static Journal Load(const std::string& dir, size_t max_versions = 32);

  // Appends a difference (its from serial must be the last to serial, else the history
  // restarts from it) and saves it; the oldest are dropped past max_versions.
  absl::Status Append(IxfrDiff diff);

  // The differences leading from `from_serial` to `to_serial`, or nullopt.
  std::optional<std::vector<const IxfrDiff*>> Chain(uint32_t from_serial, uint32_t to_serial) const;

  size_t size() const { return diffs_.size(); }

 private:
  std::string dir_;
  size_t max_versions_ = 32;
  std::vector<IxfrDiff> diffs_;  // oldest first, contiguous
};

uint32_t SoaSerial(const dns::Record& soa);

}  // namespace tandem::control
