// Per-worker packet and query counters: one cache-line-aligned block per worker, written
// with plain increments by its owner only; the metrics collector sums them at scrape time.
#pragma once

#include <cstdint>

namespace tandem::dataplane {

enum class Transport : uint8_t { kUdp = 0, kTcp = 1 };

struct alignas(64) WorkerCounters {
  uint64_t queries[2] = {};      // by Transport
  uint64_t responses[24] = {};   // by rcode (0..23; BADVERS = 16)
  uint64_t dropped = 0;          // requests not answered (QR set, shorter than a header)
  uint64_t truncated = 0;        // UDP responses sent with TC
  uint64_t rx_packets = 0;
  uint64_t tx_packets = 0;
  uint64_t rx_errors = 0;        // receive or send failures, malformed frames
};

}  // namespace tandem::dataplane
