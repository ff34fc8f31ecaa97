// Frame classification and in-place answers, a receive burst at a time.
//
//   Ethernet (dst MAC ours? multicast -> kernel; other unicast -> drop)
//     [802.1Q]
//     IPv4 / IPv6 (lengths, header checksum, fragments -> kernel)
//       UDP to port 53 at one of our addresses (lengths, checksum)
//         -> the burst's requests: QueryHandler::AnswerBurst, in place
//         -> swap MACs, addresses, ports; set lengths, TTL / hop limit and checksums
//         -> transmit
//   anything else -> kernel
#include "dataplane/packet.h"

#include <netinet/in.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "dataplane/dns/wire.h"
#include "dataplane/handler.h"
#include "dataplane/rrl.h"

namespace tandem::dataplane {
namespace {

using dns::Get16;
using dns::Put16;

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint16_t kEtherVlan = 0x8100;
constexpr uint8_t kProtoUdp = 17;
constexpr uint16_t kDnsPort = 53;
constexpr uint8_t kReplyTtl = 64;

// Ones' complement sums (RFC 1071), kept in the host's byte order. The sum of a buffer's
// 16-bit words loaded in host order is the byte swap of the sum of its big-endian words
// (RFC 1071 2(B)), and a host-order sum stored back in host order is the big-endian sum
// in memory: so neither the loads nor the stores swap bytes. Four-octet words are added
// into 64 bits and the carries folded in once at the end (2(C)); datagrams are far too
// short for that to overflow. Always inlined: most sums here have a fixed length (headers,
// addresses), which the compiler then unrolls into a few loads and adds.
using HostSum = uint64_t;

// The sum of the n / 8 eight-octet words at p, the carries out of 64 bits counted apart
// (2^64 is 1 modulo 0xffff); the caller adds the n % 8 octets left. Not inlined: inside
// the large ProcessFrames its two accumulators were kept on the stack, and the loop then
// waited on a store and a load every word.
[[gnu::noinline]] HostSum AddWords(const uint8_t* p, size_t n) {
  uint64_t sum = 0, carries = 0;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    sum += w;
    carries += sum < w;
  }
  return (sum & 0xffffffff) + (sum >> 32) + carries;
}

// Adds n octets starting at an even offset of what is summed.
[[gnu::always_inline]] inline HostSum AddOctets(const uint8_t* p, size_t n, HostSum acc) {
  if (!__builtin_constant_p(n) && n >= 16) {  // a datagram (fixed lengths unroll below)
    acc += AddWords(p, n);
    p += n & ~size_t{7};
    n &= 7;
  }
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    acc += (w & 0xffffffff) + (w >> 32);
  }
  if (n >= 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    acc += w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    acc += w;
    p += 2;
    n -= 2;
  }
  // An odd last octet is the first of a word padded with a zero octet.
  if (n) acc += std::endian::native == std::endian::little ? p[0] : static_cast<HostSum>(p[0]) << 8;
  return acc;
}

// A 16-bit value as a word of the buffer, in the sum's order.
constexpr HostSum Word(uint16_t v) {
  return std::endian::native == std::endian::little ? static_cast<uint16_t>(v << 8 | v >> 8) : v;
}

// The folded 16-bit sum, in the sum's order: 0xffff when a received sum checks out.
[[gnu::always_inline]] inline uint16_t Fold(HostSum acc) {
  acc = (acc & 0xffffffff) + (acc >> 32);  // below 2^33
  acc = (acc & 0xffffffff) + (acc >> 32);  // below 2^32
  uint32_t s = static_cast<uint32_t>(acc);
  s = (s & 0xffff) + (s >> 16);  // below 2^17
  s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}

// Stores a checksum field, given in the sum's order.
[[gnu::always_inline]] inline void StoreSum(uint8_t* field, uint16_t v) { std::memcpy(field, &v, 2); }

// Pseudo-header sums (RFC 768, RFC 8200 8.1).
[[gnu::always_inline]] inline HostSum PseudoV4(const uint8_t* ip, uint16_t udp_len) {
  return AddOctets(ip + 12, 8, Word(kProtoUdp) + Word(udp_len));
}
[[gnu::always_inline]] inline HostSum PseudoV6(const uint8_t* ip, uint32_t udp_len) {
  return AddOctets(ip + 8, 32, Word(kProtoUdp) + Word(static_cast<uint16_t>(udp_len >> 16)) +
                                   Word(static_cast<uint16_t>(udp_len)));
}

// The checksum to send for a datagram: `sum` covers the pseudo-header and the UDP header,
// `p` and `len` the payload. In the sum's order; all zeros is sent as all ones (over IPv4
// zero means none).
[[gnu::always_inline]] inline uint16_t UdpChecksum(HostSum sum, const uint8_t* p, size_t len) {
  uint16_t c = static_cast<uint16_t>(~Fold(AddOctets(p, len, sum)));
  return c == 0 ? 0xffff : c;
}

// Whether a received IPv4 header's checksum holds; most have no options.
[[gnu::always_inline]] inline bool Ipv4HeaderSumHolds(const uint8_t* ip, uint32_t ihl) {
  return Fold(ihl == 20 ? AddOctets(ip, 20, 0) : AddOctets(ip, ihl, 0)) == 0xffff;
}

bool IsOurV4(const FrameContext& ctx, const uint8_t* addr) {
  uint32_t a;
  std::memcpy(&a, addr, 4);
  for (int i = 0; i < ctx.nv4; ++i)
    if (ctx.v4[i] == a) return true;
  return false;
}

bool IsOurV6(const FrameContext& ctx, const uint8_t* addr) {
  for (int i = 0; i < ctx.nv6; ++i)
    if (std::memcmp(ctx.v6[i], addr, 16) == 0) return true;
  return false;
}

// Six octets compared in two loads, without a call to memcmp (once per frame).
bool SameMac(const uint8_t* a, const uint8_t* b) {
  uint32_t a4, b4;
  uint16_t a2, b2;
  std::memcpy(&a4, a, 4);
  std::memcpy(&b4, b, 4);
  std::memcpy(&a2, a + 4, 2);
  std::memcpy(&b2, b + 4, 2);
  return ((a4 ^ b4) | static_cast<uint32_t>(a2 ^ b2)) == 0;
}

void SwapBytes(uint8_t* a, uint8_t* b, size_t n) {
  uint8_t tmp[16];
  std::memcpy(tmp, a, n);
  std::memcpy(a, b, n);
  std::memcpy(b, tmp, n);
}

FrameResult Drop(uint64_t& counter) {
  ++counter;
  return {FrameVerdict::kDrop};
}

constexpr FrameResult kKernel{FrameVerdict::kToKernel};

// The sender as a socket address, for NOTIFY access checks (NOTIFY only: queries do not
// pay for it).
const sockaddr* NotifySender(const uint8_t* ip, const uint8_t* udp, size_t query_len, bool v6,
                             sockaddr_storage* ss) {
  if (query_len < 3 || ((udp[8 + 2] >> 3) & 0x0f) != 4) return nullptr;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(ss);
    *a = {};
    a->sin6_family = AF_INET6;
    std::memcpy(&a->sin6_addr, ip + 8, 16);
    std::memcpy(&a->sin6_port, udp, 2);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(ss);
    *a = {};
    a->sin_family = AF_INET;
    std::memcpy(&a->sin_addr, ip + 12, 4);
    std::memcpy(&a->sin_port, udp, 2);
  }
  return reinterpret_cast<const sockaddr*>(ss);
}

// A frame that carries a DNS request to answer, as classification leaves it: the headers
// checked, the UDP datagram directly after a 20-byte IPv4 (or 40-byte IPv6) header.
struct Request {
  uint8_t* frame;
  uint8_t* ip;
  uint8_t* udp;
  uint8_t l2;
  bool v6;
};

// Either sets *result (not a request to answer) or fills *req and the exchange.
bool ClassifyIpv4(uint8_t* frame, uint32_t len, uint32_t room, uint8_t l2, uint32_t rx_flags,
                  const FrameContext& ctx, WorkerCounters& c, FrameResult* result, Request* req,
                  Exchange* x) {
  uint8_t* ip = frame + l2;
  if (len < l2 + 20u || (ip[0] >> 4) != 4) return *result = Drop(c.malformed), false;
  uint32_t ihl = (ip[0] & 0x0f) * 4u;
  uint32_t total = Get16(ip + 2);
  if (ihl < 20 || total < ihl || l2 + total > len) return *result = Drop(c.malformed), false;
  if (ip[9] != kProtoUdp || (Get16(ip + 6) & 0x3fff) != 0 || !IsOurV4(ctx, ip + 16))
    return *result = kKernel, false;
  if (!(rx_flags & kRxIpChecksumGood) && !Ipv4HeaderSumHolds(ip, ihl))
    return *result = Drop(c.malformed), false;
  uint8_t* udp = ip + ihl;
  if (total < ihl + 8 || Get16(udp + 2) != kDnsPort) return *result = kKernel, false;
  uint32_t udp_len = Get16(udp + 4);
  if (udp_len < 8 || udp_len > total - ihl) return *result = Drop(c.malformed), false;
  if (!(rx_flags & kRxL4ChecksumGood) && Get16(udp + 6) != 0 &&
      Fold(AddOctets(udp, udp_len, PseudoV4(ip, static_cast<uint16_t>(udp_len)))) != 0xffff)
    return *result = Drop(c.malformed), false;

  if (ihl > 20) {  // answer without IP options: move the UDP datagram up
    std::memmove(ip + 20, udp, udp_len);
    udp = ip + 20;
    ip[0] = 0x45;
  }
  *req = {frame, ip, udp, l2, false};
  x->query = udp + 8;
  x->query_len = udp_len - 8;
  x->out = udp + 8;
  x->out_cap = static_cast<uint32_t>(std::min<size_t>(room - (l2 + 28u), ctx.mtu - 28u));
  return true;
}

bool ClassifyIpv6(uint8_t* frame, uint32_t len, uint32_t room, uint8_t l2, uint32_t rx_flags,
                  const FrameContext& ctx, WorkerCounters& c, FrameResult* result, Request* req,
                  Exchange* x) {
  uint8_t* ip = frame + l2;
  if (len < l2 + 40u || (ip[0] >> 4) != 6) return *result = Drop(c.malformed), false;
  uint32_t payload = Get16(ip + 4);
  if (l2 + 40u + payload > len) return *result = Drop(c.malformed), false;
  // Extension headers (fragments among them) are left to the kernel.
  if (ip[6] != kProtoUdp || !IsOurV6(ctx, ip + 24)) return *result = kKernel, false;
  uint8_t* udp = ip + 40;
  if (payload < 8 || Get16(udp + 2) != kDnsPort) return *result = kKernel, false;
  uint32_t udp_len = Get16(udp + 4);
  if (udp_len < 8 || udp_len > payload) return *result = Drop(c.malformed), false;
  // The UDP checksum is mandatory over IPv6.
  if (!(rx_flags & kRxL4ChecksumGood) &&
      (Get16(udp + 6) == 0 || Fold(AddOctets(udp, udp_len, PseudoV6(ip, udp_len))) != 0xffff))
    return *result = Drop(c.malformed), false;

  *req = {frame, ip, udp, l2, true};
  x->query = udp + 8;
  x->query_len = udp_len - 8;
  x->out = udp + 8;
  x->out_cap = static_cast<uint32_t>(std::min<size_t>(room - (l2 + 48u), ctx.mtu - 48u));
  return true;
}

// Ethernet and VLAN, then IPv4 or IPv6.
bool Classify(uint8_t* frame, uint32_t len, uint32_t room, uint32_t rx_flags,
              const FrameContext& ctx, WorkerCounters& c, FrameResult* result, Request* req,
              Exchange* x) {
  ++c.rx_packets;
  if (len < 14 || room < len) return *result = Drop(c.malformed), false;
  if (frame[0] & 1) return *result = kKernel, false;  // broadcast and multicast: ARP, ND
  if (!SameMac(frame, ctx.mac)) return *result = Drop(c.not_for_us), false;
  uint8_t l2 = 14;
  uint16_t type = Get16(frame + 12);
  if (type == kEtherVlan) {
    if (len < 18) return *result = Drop(c.malformed), false;
    type = Get16(frame + 16);
    l2 = 18;
  }
  if (room < l2 + 48u + 512u) return *result = kKernel, false;  // no room to answer in place
  if (type == kEtherIpv4) return ClassifyIpv4(frame, len, room, l2, rx_flags, ctx, c, result, req, x);
  if (type == kEtherIpv6) return ClassifyIpv6(frame, len, room, l2, rx_flags, ctx, c, result, req, x);
  return *result = kKernel, false;
}

// The answer (`n` bytes of DNS at udp + 8) becomes the frame to send back. The result's
// fields are stored one by one: a FrameResult built in a temporary was assembled on the
// stack from byte stores and copied out with wider loads, which waited on those stores.
// For the same reason the sums of the headers are made from the values written rather
// than by reading back words that several narrower stores have just written; swapping the
// addresses or the ports leaves their sum as it was.
void Rewrite(const Request& r, size_t n, const FrameContext& ctx, FrameResult& out) {
  uint8_t* ip = r.ip;
  uint8_t* udp = r.udp;
  SwapBytes(r.frame, r.frame + 6, 6);
  uint32_t ports;
  std::memcpy(&ports, udp, 4);
  SwapBytes(udp, udp + 2, 2);
  uint16_t new_udp = static_cast<uint16_t>(n + 8);
  Put16(udp + 4, new_udp);
  Put16(udp + 6, 0);
  const HostSum udp_header = HostSum{ports} + Word(new_udp);  // and a zero checksum
  if (!r.v6) {
    uint64_t addresses;
    std::memcpy(&addresses, ip + 12, 8);
    const HostSum address_sum = (addresses & 0xffffffff) + (addresses >> 32);
    const HostSum pseudo = address_sum + Word(kProtoUdp) + Word(new_udp);
    SwapBytes(ip + 12, ip + 16, 4);
    uint16_t total = static_cast<uint16_t>(20 + new_udp);
    Put16(ip + 2, total);
    Put16(ip + 4, 0);       // identification: unfragmented
    Put16(ip + 6, 0x4000);  // DF
    ip[8] = kReplyTtl;      // ip[9] is UDP
    Put16(ip + 10, 0);
    if (ctx.tx_checksum_offload) {
      StoreSum(udp + 6, Fold(pseudo));
    } else {
      uint16_t version_tos;  // ip[0] and ip[1], as received (or 0x45 once options went)
      std::memcpy(&version_tos, ip, 2);
      HostSum header = HostSum{version_tos} + Word(total) + Word(0x4000) +
                       Word(static_cast<uint16_t>(kReplyTtl << 8 | kProtoUdp)) + address_sum;
      StoreSum(ip + 10, static_cast<uint16_t>(~Fold(header)));
      StoreSum(udp + 6, UdpChecksum(pseudo + udp_header, udp + 8, n));
    }
    out.length = r.l2 + 20u + new_udp;
    out.l3_len = 20;
    out.ipv4 = true;
    return;
  }
  SwapBytes(ip + 8, ip + 24, 16);
  Put16(ip + 4, new_udp);
  ip[7] = kReplyTtl;
  if (ctx.tx_checksum_offload)
    StoreSum(udp + 6, Fold(PseudoV6(ip, new_udp)));
  else
    StoreSum(udp + 6, UdpChecksum(PseudoV6(ip, new_udp) + udp_header, udp + 8, n));
  out.length = r.l2 + 40u + new_udp;
  out.l3_len = 40;
  out.ipv4 = false;
}

}  // namespace

void ProcessFrames(std::span<RxFrame> frames, const FrameContext& ctx,
                   const zone::Snapshot* snapshot, const QueryHandler& handler,
                   WorkerCounters& c, RateLimiter* rrl) {
  constexpr size_t kStage = QueryHandler::kBurstStage;
  Request requests[kStage];
  Exchange exchanges[kStage];
  RxFrame* owners[kStage];
  sockaddr_storage senders[kStage];  // written for NOTIFY only
  for (size_t base = 0; base < frames.size(); base += kStage) {
    const size_t n = std::min(kStage, frames.size() - base);
    size_t nx = 0;
    for (size_t i = 0; i < n; ++i) {
      RxFrame& f = frames[base + i];
      Exchange& x = exchanges[nx];
      if (!Classify(f.data, f.len, f.room, f.rx_flags, ctx, c, &f.result, &requests[nx], &x)) continue;
      x.transport = Transport::kUdp;
      x.client = NotifySender(requests[nx].ip, requests[nx].udp, x.query_len, requests[nx].v6, &senders[nx]);
      owners[nx++] = &f;
    }
    if (nx == 0) continue;
    handler.AnswerBurst(snapshot, std::span<Exchange>(exchanges, nx), c);
    for (size_t k = 0; k < nx; ++k) {
      const Request& r = requests[k];
      size_t len = exchanges[k].response_len;
      if (len != 0 && rrl != nullptr && rrl->enabled())
        len = rrl->Apply(r.v6 ? r.ip + 8 : r.ip + 12, r.v6, r.udp + 8, len, c);
      FrameResult& out = owners[k]->result;
      if (len == 0) {
        out = FrameResult{FrameVerdict::kDrop};  // constants: nothing to wait for
        continue;
      }
      out.verdict = FrameVerdict::kTransmit;
      out.l2_len = r.l2;
      Rewrite(r, len, ctx, out);
    }
  }
}

FrameResult ProcessFrame(uint8_t* frame, uint32_t len, uint32_t room, uint32_t rx_flags,
                         const FrameContext& ctx, const zone::Snapshot* snapshot,
                         const QueryHandler& handler, WorkerCounters& c, RateLimiter* rrl) {
  RxFrame f{frame, len, room, rx_flags};
  ProcessFrames(std::span<RxFrame>(&f, 1), ctx, snapshot, handler, c, rrl);
  return f.result;
}

}  // namespace tandem::dataplane
