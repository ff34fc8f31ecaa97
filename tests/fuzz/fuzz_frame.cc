// Fuzz target: dataplane::ProcessFrame on the input as an Ethernet frame to 02:00:00:00:00:01
// (198.18.0.1, 2001:db8::1), answered from the small zone of fuzz_common.h. Each input runs
// with the receive checksums unchecked and trusted (offload flags), with transmit checksum
// offload off and on, in an mbuf-sized buffer and in one exactly as long as the frame.
// A transmitted frame must fit the buffer, carry consistent lengths and, without offload,
// valid checksums, and a well-formed DNS response. Then a receive burst of 33 frames made
// from the input (whole, one octet short, to another MAC, in turn) goes through
// ProcessFrames: each frame must come out exactly as ProcessFrame leaves it alone.
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "dataplane/handler.h"
#include "dataplane/packet.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

namespace dns = tandem::dns;
using namespace tandem::dataplane;  // NOLINT: the frame step's small vocabulary
using tandem::fuzz::Fail;

uint32_t Sum16(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (; n > 1; n -= 2, p += 2) sum += static_cast<uint32_t>(p[0] << 8 | p[1]);
  if (n) sum += static_cast<uint32_t>(p[0] << 8);
  return sum;
}

uint16_t Fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

struct Fixture {
  Fixture() {
    static const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 1};
    for (FrameContext* c : {&plain, &offload}) {
      std::memcpy(c->mac, mac, 6);
      c->v4[0] = htonl(0xc6120001);  // 198.18.0.1
      c->nv4 = 1;
      static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
      std::memcpy(c->v6[0], v6, 16);
      c->nv6 = 1;
    }
    offload.tx_checksum_offload = true;
  }
  std::unique_ptr<tandem::zone::Snapshot> snapshot = tandem::fuzz::MakeSnapshot();
  QueryHandler handler;
  WorkerCounters counters;
  FrameContext plain, offload;
};

Fixture& Get() {
  static Fixture* f = new Fixture();
  return *f;
}

void CheckTransmit(const uint8_t* f, const FrameResult& r, uint32_t room, const FrameContext& ctx) {
  if (r.length > room) Fail("response frame longer than the buffer");
  if (r.l2_len != 14 && r.l2_len != 18) Fail("bad l2 length");
  if (r.length < r.l2_len + r.l3_len + 8u + dns::kHeaderSize) Fail("response frame too short");
  const uint8_t* ip = f + r.l2_len;
  const uint8_t* udp = ip + r.l3_len;
  uint16_t udp_len = dns::Get16(udp + 4);
  if (r.l2_len + r.l3_len + udp_len != r.length) Fail("UDP length does not match the frame");
  if (dns::Get16(udp) != 53) Fail("response not from port 53");
  uint32_t pseudo;
  if (r.ipv4) {
    if (r.l3_len != 20 || ip[0] != 0x45) Fail("IPv4 response header");
    if (dns::Get16(ip + 2) != 20 + udp_len) Fail("IPv4 total length");
    pseudo = Sum16(ip + 12, 8) + 17 + udp_len;
    if (!ctx.tx_checksum_offload && Fold(Sum16(ip, 20)) != 0xffff) Fail("IPv4 header checksum");
  } else {
    if (r.l3_len != 40 || (ip[0] >> 4) != 6) Fail("IPv6 response header");
    if (dns::Get16(ip + 4) != udp_len) Fail("IPv6 payload length");
    pseudo = Sum16(ip + 8, 32) + 17 + udp_len;
  }
  if (ctx.tx_checksum_offload) {
    if (dns::Get16(udp + 6) != Fold(pseudo)) Fail("pseudo-header sum for offload");
  } else if (Fold(Sum16(udp, udp_len, pseudo)) != 0xffff) {
    Fail("UDP checksum");
  }
  if (r.length - r.l2_len > ctx.mtu) Fail("response packet over the MTU");
  tandem::fuzz::CheckResponse(udp + 8, udp_len - 8u, udp_len - 8u);
}

void Run(const uint8_t* data, size_t size, uint32_t room, uint32_t flags, const FrameContext& ctx) {
  Fixture& fx = Get();
  std::unique_ptr<uint8_t[]> buf(new uint8_t[room ? room : 1]);
  std::memcpy(buf.get(), data, size);
  FrameResult r = ProcessFrame(buf.get(), static_cast<uint32_t>(size), room, flags, ctx,
                               fx.snapshot.get(), fx.handler, fx.counters);
  switch (r.verdict) {
    case FrameVerdict::kTransmit:
      CheckTransmit(buf.get(), r, room, ctx);
      break;
    case FrameVerdict::kToKernel:
      // The exception path gets the frame unchanged.
      if (std::memcmp(buf.get(), data, size) != 0) Fail("a frame for the kernel was changed");
      break;
    case FrameVerdict::kDrop:
      break;
  }
}

// The burst path against the frame-at-a-time path, frame by frame.
void RunBurst(const uint8_t* data, size_t size) {
  Fixture& fx = Get();
  constexpr size_t kFrames = 33;  // past the handler's stage of 32
  constexpr uint32_t kRoom = 2048;
  if (size > kRoom) return;
  std::unique_ptr<uint8_t[]> burst(new uint8_t[kFrames * kRoom]);
  std::unique_ptr<uint8_t[]> alone(new uint8_t[kFrames * kRoom]);
  RxFrame rx[kFrames];
  FrameResult alone_results[kFrames];
  for (size_t k = 0; k < kFrames; ++k) {
    uint8_t* f = burst.get() + k * kRoom;
    std::memcpy(f, data, size);
    uint32_t len = static_cast<uint32_t>(size);
    if (k % 3 == 1 && len > 0) --len;
    if (k % 3 == 2 && len > 0) f[0] ^= 0x02;
    std::memcpy(alone.get() + k * kRoom, f, len);
    rx[k] = {f, len, kRoom, 0};
    alone_results[k] = ProcessFrame(alone.get() + k * kRoom, len, kRoom, 0, fx.plain, fx.snapshot.get(),
                                    fx.handler, fx.counters);
  }
  ProcessFrames(rx, fx.plain, fx.snapshot.get(), fx.handler, fx.counters);
  for (size_t k = 0; k < kFrames; ++k) {
    const FrameResult& a = alone_results[k];
    const FrameResult& b = rx[k].result;
    if (a.verdict != b.verdict || a.length != b.length) Fail("a burst's frame differs from the frame alone");
    uint32_t n = b.verdict == FrameVerdict::kTransmit ? b.length : rx[k].len;
    if (std::memcmp(burst.get() + k * kRoom, alone.get() + k * kRoom, n) != 0)
      Fail("a burst's frame bytes differ from the frame alone");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 65535) return 0;
  Fixture& fx = Get();
  uint32_t mbuf = std::max<uint32_t>(2048, static_cast<uint32_t>(size));
  Run(data, size, mbuf, 0, fx.plain);
  Run(data, size, mbuf, kRxIpChecksumGood | kRxL4ChecksumGood, fx.plain);
  Run(data, size, mbuf, kRxIpChecksumGood | kRxL4ChecksumGood, fx.offload);
  Run(data, size, static_cast<uint32_t>(size), kRxIpChecksumGood | kRxL4ChecksumGood, fx.plain);
  RunBurst(data, size);
  return 0;
}
