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
#include <memory>
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

// Records in one arena, in the order added, in uncompressed wire form: a whole zone from
// AXFR is millions of records, held here without an allocation per record (1 MiB blocks).
class RecordArena {
 public:
  struct View {
    const uint8_t* owner;
    uint8_t owner_len;
    uint16_t type;
    uint16_t rclass;
    uint32_t ttl;
    const uint8_t* rdata;
    uint16_t rdlen;
    dns::Record ToRecord() const;
    static View Of(const dns::Record& r);  // valid while r is
  };

  RecordArena() = default;
  RecordArena(RecordArena&&) = default;
  RecordArena& operator=(RecordArena&&) = default;

  void Add(const uint8_t* owner, size_t owner_len, uint16_t type, uint16_t rclass, uint32_t ttl,
           const uint8_t* rdata, uint16_t rdlen);
  void Add(const dns::Record& r);

  // The layout of one record in the arena (and in ZoneCopy's batches): owner length,
  // owner, type, class, TTL, RDATA length (host order), RDATA.
  static size_t EncodedSize(size_t owner_len, uint16_t rdlen) { return 1 + owner_len + 10 + rdlen; }
  static void Encode(uint8_t* p, const uint8_t* owner, size_t owner_len, uint16_t type,
                     uint16_t rclass, uint32_t ttl, const uint8_t* rdata, uint16_t rdlen);

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  size_t bytes() const;  // of record data held

  class Iterator {
   public:
    View operator*() const;
    Iterator& operator++();
    bool operator==(const Iterator& o) const { return block_ == o.block_ && offset_ == o.offset_; }

   private:
    friend class RecordArena;
    Iterator(const RecordArena* a, size_t block, size_t offset)
        : arena_(a), block_(block), offset_(offset) {}
    const RecordArena* arena_;
    size_t block_, offset_;
  };
  Iterator begin() const { return Iterator(this, 0, 0); }
  Iterator end() const { return Iterator(this, blocks_.size(), 0); }

 private:
  static constexpr size_t kBlockSize = size_t{1} << 20;  // more than the largest record
  struct Block {
    std::unique_ptr<uint8_t[]> data;
    size_t used = 0;
  };
  std::vector<Block> blocks_;
  size_t count_ = 0;
};

// Takes a whole zone's records as a transfer brings them, the SOA first (the closing SOA
// not repeated): a zone of millions of records is built while it arrives rather than
// held first. A stream that fails leaves the sink with part of a zone: drop it.
class ZoneSink {
 public:
  virtual ~ZoneSink() = default;
  // The record's bytes are valid during the call only.
  virtual void Add(const RecordArena::View& r) = 0;
};

// True when `name` (uncompressed wire form) is `apex` or below it; without case.
bool NameInZone(const uint8_t* name, size_t len, const std::string& apex);

struct IxfrDiff {
  dns::Record from_soa, to_soa;
  std::vector<dns::Record> removed, added;
};

struct TransferResult {
  bool up_to_date = false;
  bool incremental = false;          // diffs holds the changes; records is empty
  uint32_t serial = 0;               // the serial the stream brings the zone to
  RecordArena records;               // a whole zone: the SOA first, not repeated (empty
                                     // when Transfer was given a sink)
  std::vector<IxfrDiff> diffs;
  size_t messages = 0;
  size_t bytes = 0;
};

// AXFR when `have` is empty; IXFR from `have` (our current SOA) otherwise. A whole zone
// goes to `sink` when one is given, else to TransferResult::records.
absl::StatusOr<TransferResult> Transfer(const TransferOptions& options,
                                        const std::optional<dns::Record>& have,
                                        ZoneSink* sink = nullptr);

// RFC 1982 serial arithmetic: a is newer than b.
bool SerialNewer(uint32_t a, uint32_t b);

}  // namespace tandem::control
