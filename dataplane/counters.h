// Per-worker packet and query counters: one cache-line-aligned block per worker, written
// with plain increments by its owner only; the metrics collector sums them at scrape time.
#pragma once

#include <cstdint>
#include <string>

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
  uint64_t udp_waits = 0;        // socket mode: waits for more datagrams (udp_coalesce_us)
  // The poll-mode path.
  uint64_t to_kernel = 0;        // frames handed to the exception interface
  uint64_t from_kernel = 0;      // frames the kernel sent out through the port
  uint64_t malformed = 0;        // short frames, bad lengths or checksums
  uint64_t not_for_us = 0;       // unicast frames for another MAC address
  uint64_t tx_dropped = 0;       // frames the port or the kernel would not take
  // Pools.
  uint64_t pool_all_down = 0;    // answers given with every member of the family down
  // Response rate limiting (UDP).
  uint64_t rrl_dropped = 0;      // answers over the rate, not sent
  uint64_t rrl_slipped = 0;      // answers over the rate, sent truncated instead
  uint64_t member_answers[256] = {};  // by global pool member id

  WorkerCounters& operator+=(const WorkerCounters& c) {
    for (int i = 0; i < 2; ++i) queries[i] += c.queries[i];
    for (int i = 0; i < 24; ++i) responses[i] += c.responses[i];
    dropped += c.dropped;
    truncated += c.truncated;
    rx_packets += c.rx_packets;
    tx_packets += c.tx_packets;
    rx_errors += c.rx_errors;
    udp_waits += c.udp_waits;
    to_kernel += c.to_kernel;
    from_kernel += c.from_kernel;
    malformed += c.malformed;
    not_for_us += c.not_for_us;
    tx_dropped += c.tx_dropped;
    pool_all_down += c.pool_all_down;
    rrl_dropped += c.rrl_dropped;
    rrl_slipped += c.rrl_slipped;
    for (int i = 0; i < 256; ++i) member_answers[i] += c.member_answers[i];
    return *this;
  }
};

// A port's own counters (rte_eth_stats): what the device or its driver saw, before and
// after the workers. rx_missed counts frames the port dropped on receive, mostly because
// its receive ring was full (the workers were too slow or not polling). What a driver
// counts there varies: DPDK 22.11's net_af_xdp counts only the AF_XDP socket's
// rx_dropped (no buffer, frame too large), not the frames the kernel could not put in
// the socket's full receive ring (those show in the interface's own receive drops).
struct PortCounters {
  std::string name;
  uint64_t rx_packets = 0;
  uint64_t tx_packets = 0;
  uint64_t rx_missed = 0;   // imissed
  uint64_t rx_errors = 0;   // ierrors
  uint64_t rx_no_mbuf = 0;  // rx_nombuf: no buffer to receive into
  uint64_t tx_errors = 0;   // oerrors
};

}  // namespace tandem::dataplane
