#include "dataplane/rrl.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "dataplane/dns/wire.h"

namespace tandem::dataplane {
namespace {

constexpr int64_t kMilli = 1000;  // tokens are kept in thousandths of an answer

enum Kind : uint64_t { kPositive = 1, kNoData = 2, kNxDomain = 3, kError = 4 };

uint64_t Mix(uint64_t h) {  // a 64-bit finaliser: every input bit moves every output bit
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// The client's prefix: the address with the bits past `prefix` cleared, folded to 64 bits.
uint64_t PrefixHash(const uint8_t* addr, bool v6, uint8_t prefix) {
  uint8_t a[16] = {};
  size_t n = v6 ? 16 : 4;
  std::memcpy(a, addr, n);
  for (size_t i = 0; i < n; ++i) {
    int keep = std::clamp(static_cast<int>(prefix) - static_cast<int>(i * 8), 0, 8);
    a[i] &= static_cast<uint8_t>(0xff00 >> keep);
  }
  uint64_t hi, lo;
  std::memcpy(&hi, a, 8);
  std::memcpy(&lo, a + 8, 8);
  return Mix(hi ^ Mix(lo ^ (v6 ? 6 : 4)));
}

// The question name's length in `msg` (uncompressed labels from offset 12), or 0 when
// there is no well-formed question.
size_t QuestionNameLength(const uint8_t* msg, size_t len) {
  if (len < 12 || dns::Get16(msg + 4) == 0) return 0;
  size_t pos = 12;
  while (pos < len) {
    uint8_t label = msg[pos];
    if (label == 0) return pos + 1 - 12;
    if (label > 63) return 0;
    pos += 1 + label;
  }
  return 0;
}

// FNV-1a over the case-folded name.
uint64_t NameHash(const uint8_t* name, size_t len) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; ++i) {
    uint8_t c = name[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c + 32);
    h = (h ^ c) * 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

RateLimiter::RateLimiter(const RrlOptions& options)
    : options_(options),
      mask_(std::bit_ceil<uint64_t>(std::max<uint32_t>(options.table_size, 1)) - 1),
      buckets_(options.rate ? std::make_unique<Bucket[]>(mask_ + 1) : nullptr) {}

uint64_t RateLimiter::Key(const uint8_t* addr, bool v6, const uint8_t* response,
                          size_t len) const {
  uint64_t key = PrefixHash(addr, v6, v6 ? options_.ipv6_prefix : options_.ipv4_prefix);
  uint8_t rcode = response[3] & 0x0f;
  uint64_t kind = rcode == 3 ? kNxDomain : rcode != 0 ? kError
                  : dns::Get16(response + 6) != 0 ? kPositive : kNoData;
  key = Mix(key ^ kind);
  if (kind == kPositive || kind == kNoData) {
    size_t name_len = QuestionNameLength(response, len);
    key = Mix(key ^ NameHash(response + 12, name_len));
  }
  return key;
}

size_t RateLimiter::Apply(const uint8_t* addr, bool v6, uint8_t* response, size_t len,
                          WorkerCounters& counters) {
  if (!enabled() || len < 12) return len;
  uint64_t key = Key(addr, v6, response, len);
  Bucket& b = buckets_[key & mask_];
  const int64_t cap = static_cast<int64_t>(options_.rate) * kMilli;
  if (b.key != key) {
    b = Bucket{key, now_ms_, cap, 0};
  } else if (now_ms_ > b.stamp_ms) {
    // `rate` answers a second is `rate` thousandths a millisecond.
    uint64_t elapsed = std::min<uint64_t>(now_ms_ - b.stamp_ms, 1000);
    b.tokens = std::min(cap, b.tokens + static_cast<int64_t>(elapsed * options_.rate));
    b.stamp_ms = now_ms_;
  }
  if (b.tokens >= kMilli) {
    b.tokens -= kMilli;
    return len;
  }
  ++b.limited;
  if (options_.slip == 0 || b.limited % options_.slip != 0) {
    ++counters.rrl_dropped;
    return 0;
  }
  // Slip: the header and the question only, with TC set; the client retries over TCP.
  ++counters.rrl_slipped;
  size_t name_len = QuestionNameLength(response, len);
  size_t out = name_len && 12 + name_len + 4 <= len ? 12 + name_len + 4 : 12;
  response[2] |= 0x02;
  dns::Put16(response + 4, out > 12 ? 1 : 0);
  std::memset(response + 6, 0, 6);
  return out;
}

}  // namespace tandem::dataplane
