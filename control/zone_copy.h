// One source's copy of a pulled zone (and the saved version of a zone tandem is the
// primary of): the zone as transferred, changed by IXFR differences, kept under state_dir
// so a restart serves it at once. A copy is immutable once made; applying differences
// makes a new one.
//
// The copy is held in one form only, the built Zone the data plane answers from: its
// records are what IXFR applies to and what is saved, so a zone of millions of records is
// not kept twice (once as records, once as the snapshot). What the built form does not
// keep does not matter to a copy: owner names are lower-cased (names compare without case),
// an RRset has one TTL (RFC 2181 5.2), duplicate records are one, and only class IN is held
// (only IN is served or saved).
#pragma once

#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"
#include "control/transfer.h"
#include "dataplane/dns/record.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::zone {
class ZoneBuilder;
}

namespace tandem::control {

class ZoneCopy {
 public:
  // A whole zone (AXFR, or records from elsewhere): exactly one SOA, at the apex; nothing
  // outside; and it builds (the same checks as a zone file).
  static absl::StatusOr<ZoneCopy> FromRecords(const std::string& zone,
                                              const std::vector<dns::Record>& records);
  // (A template only so that FromRecords(zone, {}) still means an empty vector.)
  template <typename Arena>
  requires std::same_as<Arena, RecordArena>
  static absl::StatusOr<ZoneCopy> FromRecords(const std::string& zone, const Arena& records) {
    return FromArena(zone, records);
  }
  // A zone already built (loaded from a file): its records as they are.
  static ZoneCopy FromZone(std::shared_ptr<const zone::Zone> built);

  // Applies IXFR differences in order. Each must start from this copy's serial (then the
  // previous difference's), and every removed record must exist: anything else is an
  // error (the caller falls back to AXFR).
  absl::StatusOr<ZoneCopy> Apply(const std::vector<IxfrDiff>& diffs) const;

  uint32_t serial() const { return serial_; }
  const dns::Record& soa() const { return soa_; }
  size_t size() const { return size_; }
  // Every record, the SOA first (materialised: for tests and small zones).
  std::vector<dns::Record> records() const;

  // The servable zone.
  const std::shared_ptr<const zone::Zone>& zone() const { return zone_; }
  absl::StatusOr<std::shared_ptr<const zone::Zone>> Build() const { return zone_; }

  // Writes the copy as a master file (RFC 3597 generic RDATA) to `path` through a temp
  // file, fsync and rename, so a crash leaves the old file or the new one.
  absl::Status Save(const std::string& path) const;
  static absl::StatusOr<ZoneCopy> Load(const std::string& zone, const std::string& path);

 private:
  static absl::StatusOr<ZoneCopy> FromArena(const std::string& zone, const RecordArena& records);

  std::shared_ptr<const zone::Zone> zone_;
  dns::Record soa_;
  size_t size_ = 0;
  uint32_t serial_ = 0;
};

// Makes a copy from a whole zone's records as they come (from a transfer, as its sink):
// checks what a copy must be (one SOA, at the apex; nothing outside the zone) and builds
// it. The records are handed over in batches to a thread of the builder's own, started
// with the first full batch: while a transfer's thread reads and parses messages, the
// zone takes shape beside it, so little is left to do when the stream ends. A small zone
// never starts the thread.
class CopyBuilder : public ZoneSink {
 public:
  explicit CopyBuilder(const std::string& apex);  // wire form
  ~CopyBuilder() override;
  void Add(const RecordArena::View& r) override;
  void Add(const dns::Record& r);
  void Add(const uint8_t* owner, size_t owner_len, uint16_t type, uint16_t rclass, uint32_t ttl,
           const uint8_t* rdata, uint16_t rdlen);
  // The copy, or the first error; once.
  absl::StatusOr<ZoneCopy> Finish();

 private:
  using Batch = std::vector<uint8_t>;  // records one after another (RecordArena's layout)
  void HandOver();
  void Work();
  void Consume(const Batch& batch);

  std::string apex_;
  // On the caller's thread.
  Batch batch_;  // filling
  std::string error_;
  int soas_ = 0;
  uint32_t serial_ = 0;
  // On the builder's thread once it runs (the caller's before that, and after the join).
  std::unique_ptr<zone::ZoneBuilder> builder_;
  // The hand-over.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> full_;    // in order
  std::vector<Batch> empty_;  // for reuse: fresh memory costs the kernel's clearing of it
  bool done_ = false;
  std::thread worker_;
};

// Calls f(owner, owner_len, type, ttl, rdata, rdlen) for every record of `z`, the SOA
// first; owners are lower-case wire names. An `f` that returns bool stops the walk by
// returning false; ForEachRecord then returns false.
template <typename F>
bool ForEachRecord(const zone::Zone& z, F&& f) {
  auto call = [&](const uint8_t* owner, size_t owner_len, uint16_t type, uint32_t ttl,
                  const uint8_t* rdata, uint16_t rdlen) {
    if constexpr (std::is_same_v<decltype(f(owner, owner_len, type, ttl, rdata, rdlen)), bool>) {
      return f(owner, owner_len, type, ttl, rdata, rdlen);
    } else {
      f(owner, owner_len, type, ttl, rdata, rdlen);
      return true;
    }
  };
  const zone::RRset& soa = z.soa();
  zone::Rdata first = z.First(soa);
  if (!call(z.apex(), z.apex_len(), soa.type, soa.ttl, first.data, first.size)) return false;
  for (size_t i = 0; i < z.node_count(); ++i) {
    const zone::Node& n = z.NodeAt(i);
    const uint8_t* owner = z.NodeName(n);
    for (const zone::RRset* set = z.RRsetsBegin(n); set != z.RRsetsEnd(n); ++set) {
      if (set == &soa) continue;
      for (zone::Rdata rr : z.Records(*set))
        if (!call(owner, n.name_len, set->type, set->ttl, rr.data, rr.size)) return false;
    }
  }
  return true;
}

// True when `set` (of `z`) holds this RDATA; names inside RDATA compare without case.
bool RRsetHas(const zone::Zone& z, const zone::RRset& set, const uint8_t* rdata, uint16_t rdlen);

// The records `z` holds, without case in names (owner and names in RDATA): true when a
// record of this owner, type and RDATA is in it; *ttl is its RRset's TTL.
bool ZoneHas(const zone::Zone& z, const uint8_t* owner, size_t owner_len, uint16_t type,
             const uint8_t* rdata, uint16_t rdlen, uint32_t* ttl = nullptr);

// Writes `data` to `path` durably: temp file in the same directory, fsync, rename, fsync
// of the directory. Creates the directory if needed.
absl::Status WriteFileAtomically(const std::string& path, const std::string& data);

// The same, written in pieces: Open, Write as often as needed, Commit (or nothing, and
// the temp file is removed).
class AtomicFile {
 public:
  ~AtomicFile();
  absl::Status Open(const std::string& path);
  absl::Status Write(const char* data, size_t len);
  absl::Status Commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};

}  // namespace tandem::control
