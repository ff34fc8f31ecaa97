// One source's copy of a pulled zone: the records as transferred, changed by IXFR
// differences, built into a servable Zone, and kept under state_dir so a restart serves
// it at once. A copy is immutable once made; applying differences makes a new one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control/transfer.h"
#include "dataplane/dns/record.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::control {

class ZoneCopy {
 public:
  // A whole zone (AXFR, or a saved copy): exactly one SOA, at the apex; nothing outside.
  static absl::StatusOr<ZoneCopy> FromRecords(const std::string& zone, std::vector<dns::Record> records);

  // Applies IXFR differences in order. Each must start from this copy's serial (then the
  // previous difference's), and every removed record must exist: anything else is an
  // error (the caller falls back to AXFR).
  absl::StatusOr<ZoneCopy> Apply(const std::vector<IxfrDiff>& diffs) const;

  uint32_t serial() const { return serial_; }
  const dns::Record& soa() const { return records_[soa_index_]; }
  size_t size() const { return records_.size(); }
  const std::vector<dns::Record>& records() const { return records_; }

  // The servable zone, with the same checks as a zone file.
  absl::StatusOr<std::shared_ptr<const zone::Zone>> Build() const;

  // Writes the copy as a master file (RFC 3597 generic RDATA) to `path` through a temp
  // file, fsync and rename, so a crash leaves the old file or the new one.
  absl::Status Save(const std::string& path) const;
  static absl::StatusOr<ZoneCopy> Load(const std::string& zone, const std::string& path);

 private:
  std::string zone_;  // wire form
  std::vector<dns::Record> records_;
  size_t soa_index_ = 0;
  uint32_t serial_ = 0;
};

// Writes `data` to `path` durably: temp file in the same directory, fsync, rename, fsync
// of the directory. Creates the directory if needed.
absl::Status WriteFileAtomically(const std::string& path, const std::string& data);

}  // namespace tandem::control
