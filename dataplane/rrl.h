// Response rate limiting (RRL) for UDP answers, as Knot DNS's, NSD's and BIND's: a token
// bucket per (client prefix, kind of answer[, query name]), refilled at `rate` answers per
// second up to one second's worth. An answer over the rate is dropped, except every
// `slip`-th one, which goes out truncated (TC set, no records) so that a real client
// behind a spoofed-against prefix retries over TCP and still gets its answer.
//
// One RateLimiter per worker: a fixed table allocated at start, no lock, no allocation,
// no system call per answer (the port sets the time once per burst). Colliding keys
// share nothing: a bucket whose key differs is taken over with a full allowance.
//
// What a bucket counts (the key besides the prefix):
//   positive answers and NODATA/referrals: the kind and the query name (case-folded), so a
//     reflection attack with one large name is limited while other names keep their own;
//   NXDOMAIN: the kind alone, so random names under a zone share one bucket per prefix;
//   any other rcode: the kind alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "dataplane/counters.h"

namespace tandem::dataplane {

struct RrlOptions {
  uint32_t rate = 0;        // answers per second per bucket; 0: rate limiting off
  uint32_t slip = 2;        // every slip-th limited answer goes out truncated; 0: none, 1: all
  uint8_t ipv4_prefix = 24;  // client prefix lengths that share a bucket
  uint8_t ipv6_prefix = 56;
  uint32_t table_size = 65536;  // buckets per worker, rounded up to a power of two
};

class RateLimiter {
 public:
  explicit RateLimiter(const RrlOptions& options);
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  bool enabled() const { return options_.rate != 0; }

  // The worker's clock, set once per burst: milliseconds from any fixed origin.
  void SetNow(uint64_t now_ms) { now_ms_ = now_ms; }

  // Decides the fate of the UDP `response` (length `len`) to the client whose address is
  // `addr` (4 bytes, or 16 when `v6`). Returns the length to send: `len`, a shorter
  // truncated response written in place (slipped), or 0 (dropped). Counts both.
  size_t Apply(const uint8_t* addr, bool v6, uint8_t* response, size_t len,
               WorkerCounters& counters);

 private:
  struct Bucket {
    uint64_t key = 0;
    uint64_t stamp_ms = 0;   // when `tokens` was last brought up to date
    int64_t tokens = 0;      // in thousandths of an answer
    uint32_t limited = 0;    // answers limited since the bucket was taken, for slip
  };

  uint64_t Key(const uint8_t* addr, bool v6, const uint8_t* response, size_t len) const;

  RrlOptions options_;
  uint64_t mask_;
  uint64_t now_ms_ = 0;
  std::unique_ptr<Bucket[]> buckets_;
};

}  // namespace tandem::dataplane
