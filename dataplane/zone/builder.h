// Builds an immutable Zone from records (from a zone file or a transfer), checking what an
// authoritative server must refuse to serve: a missing or second SOA, no NS at the apex,
// CNAME beside other data, malformed RDATA. Out-of-zone records are dropped with a warning.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::zone {

// Where a record came from, for messages: an index into the caller's list of file names
// (zone files may $INCLUDE others) and a line; line 0 means "the zone as a whole".
struct Position {
  uint32_t file = 0;
  uint32_t line = 0;
};

struct BuildIssue {
  Position where;
  std::string message;
};

class ZoneBuilder {
 public:
  // `apex` is the zone name in wire form (any case).
  explicit ZoneBuilder(const std::string& apex);

  // Adds one IN-class record; owner and RDATA in uncompressed wire form.
  void Add(const uint8_t* owner, size_t owner_len, uint16_t type, uint32_t ttl,
           const uint8_t* rdata, uint16_t rdlen, Position where);

  // Returns the zone, or nullptr when errors() is not empty.
  std::shared_ptr<const Zone> Build();

  // A zone that has no servable copy: every query in it is answered SERVFAIL.
  static std::shared_ptr<const Zone> Unavailable(const std::string& apex);

  const std::vector<BuildIssue>& errors() const { return errors_; }
  const std::vector<BuildIssue>& warnings() const { return warnings_; }
  size_t record_count() const { return records_.size(); }

 private:
  struct Record {
    uint32_t node;
    uint16_t type;
    uint16_t rdlen;
    uint32_t ttl;
    uint64_t rdata;  // offset in rdata_
    Position where;
  };
  struct PendingNode {
    uint32_t name;  // offset in names_
    uint8_t len;
  };

  uint32_t NodeFor(const uint8_t* lower, size_t len);
  void AddEmptyNonTerminals();
  void CheckNode(uint32_t node, const Record* begin, const Record* end);
  void FillAdditional(Zone& z);
  void BuildIndex(Zone& z);

  std::string apex_;  // lower-case wire
  std::vector<Record> records_;
  std::vector<uint8_t> rdata_;
  std::vector<uint8_t> names_;
  std::vector<PendingNode> nodes_;
  absl::flat_hash_map<std::string, uint32_t> node_ids_;
  std::vector<BuildIssue> errors_;
  std::vector<BuildIssue> warnings_;
};

// Checks that RDATA matches its type's layout (names well-formed, fixed fields present).
bool RdataValid(uint16_t type, const uint8_t* rdata, uint16_t rdlen);

}  // namespace tandem::zone
