// The poll-mode path's per-burst step, on plain bytes so that tests, benchmarks and fuzz
// targets drive it without DPDK: classify an Ethernet frame (optionally 802.1Q tagged),
// answer DNS over UDP to one of our addresses in place, and say what to do with the rest.
// No allocation, no lock, no system call.
#pragma once

#include <cstdint>
#include <span>

#include "dataplane/counters.h"

namespace tandem::zone {
class Snapshot;
}

namespace tandem::dataplane {

class QueryHandler;
class RateLimiter;

inline constexpr int kMaxFrameAddresses = 16;

struct FrameContext {
  uint8_t mac[6] = {};
  uint32_t v4[kMaxFrameAddresses] = {};  // network byte order
  int nv4 = 0;
  uint8_t v6[kMaxFrameAddresses][16] = {};
  int nv6 = 0;
  uint16_t mtu = 1500;  // IP MTU of the port: the largest response packet
  // The port computes IPv4 header and UDP checksums on transmit: write only the
  // pseudo-header sum, as DPDK's checksum offload expects.
  bool tx_checksum_offload = false;
};

// What the receive path already knows about a frame (from NIC offload flags).
enum RxFlags : uint32_t {
  kRxIpChecksumGood = 1 << 0,
  kRxL4ChecksumGood = 1 << 1,
};

enum class FrameVerdict : uint8_t {
  kTransmit,  // answered in place: send `length` bytes back out the same port
  kToKernel,  // not ours to answer: hand the frame, unchanged, to the exception interface
  kDrop,      // malformed, not for this host, or a request that gets no answer
};

struct FrameResult {
  FrameVerdict verdict;
  uint32_t length = 0;   // with kTransmit: the response frame's length
  uint8_t l2_len = 0;    // with kTransmit: header lengths, for checksum offload
  uint8_t l3_len = 0;
  bool ipv4 = false;
};

// One received frame of a burst. `room` is how many bytes the buffer holding the frame can
// take from its start. ProcessFrames sets `result`.
struct RxFrame {
  uint8_t* data = nullptr;
  uint32_t len = 0;
  uint32_t room = 0;
  uint32_t rx_flags = 0;
  FrameResult result{FrameVerdict::kDrop};
};

// A receive burst: classifies every frame, answers the DNS requests among them together
// (QueryHandler::AnswerBurst: their lookups overlap), then rewrites each answered frame's
// headers for the way back. Each frame gets the result ProcessFrame would give it alone.
// `rrl` (the worker's, may be null) rate-limits the answers.
void ProcessFrames(std::span<RxFrame> frames, const FrameContext& ctx,
                   const zone::Snapshot* snapshot, const QueryHandler& handler,
                   WorkerCounters& counters, RateLimiter* rrl = nullptr);

// One frame alone, as a burst of one (tests, fuzz targets).
FrameResult ProcessFrame(uint8_t* frame, uint32_t len, uint32_t room, uint32_t rx_flags,
                         const FrameContext& ctx, const zone::Snapshot* snapshot,
                         const QueryHandler& handler, WorkerCounters& counters,
                         RateLimiter* rrl = nullptr);

}  // namespace tandem::dataplane
