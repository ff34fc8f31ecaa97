// Loads an RFC 1035 master file (through libzscanner: $ORIGIN, $TTL, $INCLUDE, relative
// names, every type it knows) into an immutable Zone.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dataplane/dns/record.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::control {

struct LoadedZone {
  std::shared_ptr<const zone::Zone> zone;
  std::vector<std::string> warnings;  // "FILE:LINE: message"
  size_t records = 0;
};

// Errors come back as one message, one "FILE:LINE: message" per line.
absl::StatusOr<LoadedZone> LoadZoneFile(const std::string& zone_name, const std::string& path);

// The same for zone text in memory (tests, fuzzing); `path` names it in messages.
absl::StatusOr<LoadedZone> LoadZoneText(const std::string& zone_name, const std::string& text,
                                        const std::string& path = "<text>");

// Reads a master file's records as they are, any class (saved zone copies).
absl::StatusOr<std::vector<dns::Record>> ReadZoneRecords(const std::string& zone_name,
                                                         const std::string& path);

}  // namespace tandem::control
