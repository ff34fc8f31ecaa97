// Byte-order helpers and DNS wire constants shared by the codec. No I/O, no allocation.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tandem::dns {

inline constexpr size_t kHeaderSize = 12;
inline constexpr size_t kMaxNameLength = 255;   // wire octets, root label included
inline constexpr size_t kMaxLabelLength = 63;
inline constexpr size_t kMaxLabels = 128;
inline constexpr size_t kMaxMessageSize = 65535;
inline constexpr uint16_t kClassIn = 1;
inline constexpr uint16_t kClassCh = 3;
inline constexpr uint16_t kClassNone = 254;
inline constexpr uint16_t kClassAny = 255;

enum Opcode : uint8_t { kOpQuery = 0, kOpIquery = 1, kOpStatus = 2, kOpNotify = 4, kOpUpdate = 5 };

enum Rcode : uint16_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
  kYxDomain = 6,
  kNotAuth = 9,
  kBadVers = 16,  // extended: carried in the OPT record
};

// Big-endian fields as one load or store each (unaligned access through memcpy).
inline uint16_t Get16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return std::endian::native == std::endian::little ? __builtin_bswap16(v) : v;
}
inline uint32_t Get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return std::endian::native == std::endian::little ? __builtin_bswap32(v) : v;
}
inline void Put16(uint8_t* p, uint16_t v) {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
  std::memcpy(p, &v, 2);
}
inline void Put32(uint8_t* p, uint32_t v) {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}

inline uint8_t AsciiLower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }
// AsciiLower on eight octets at once, in a word loaded from memory in either byte order
// (no carry crosses an octet).
inline uint64_t AsciiLowerWord(uint64_t x) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  uint64_t heptets = x & (0x7f * kOnes);
  uint64_t at_least_a = heptets + (0x80 - 'A') * kOnes;  // top bit set where >= 'A'
  uint64_t above_z = heptets + (0x80 - 'Z' - 1) * kOnes;  // top bit set where > 'Z'
  uint64_t upper = at_least_a & ~above_z & ~x & (0x80 * kOnes);
  return x | (upper >> 2);
}

// Header field accessors on a message buffer of at least kHeaderSize bytes.
namespace header {
inline uint16_t Id(const uint8_t* m) { return Get16(m); }
inline bool Qr(const uint8_t* m) { return m[2] & 0x80; }
inline uint8_t Opcode(const uint8_t* m) { return (m[2] >> 3) & 0x0f; }
inline bool Aa(const uint8_t* m) { return m[2] & 0x04; }
inline bool Tc(const uint8_t* m) { return m[2] & 0x02; }
inline bool Rd(const uint8_t* m) { return m[2] & 0x01; }
inline bool Cd(const uint8_t* m) { return m[3] & 0x10; }
inline uint8_t Rcode(const uint8_t* m) { return m[3] & 0x0f; }
inline uint16_t Qdcount(const uint8_t* m) { return Get16(m + 4); }
inline uint16_t Ancount(const uint8_t* m) { return Get16(m + 6); }
inline uint16_t Nscount(const uint8_t* m) { return Get16(m + 8); }
inline uint16_t Arcount(const uint8_t* m) { return Get16(m + 10); }
}  // namespace header

}  // namespace tandem::dns
