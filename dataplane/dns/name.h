// Domain names on the wire: parsing with decompression (bounded, backward pointers only),
// lower-casing, comparison, and conversion to and from presentation text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "dataplane/dns/wire.h"

namespace tandem::dns {

// A parsed name in uncompressed wire form (labels, ending with the root label).
struct NameBuf {
  uint8_t data[kMaxNameLength];
  uint8_t length = 0;  // wire octets including the root label
  uint8_t labels = 0;  // label count excluding the root
};

enum class NameError : uint8_t {
  kOk = 0,
  kTruncated,       // the message ends inside the name
  kLabelTooLong,    // a label over 63 octets, or a reserved label type (0x40, 0x80)
  kNameTooLong,     // over 255 octets once decompressed
  kBadPointer,      // a pointer that points forward, at itself, or outside the message
  kTooManyPointers, // pointer-following work over the per-message budget
};

const char* NameErrorText(NameError e);

// Reads the name at msg[offset], following compression pointers. Pointers must point
// strictly before the pointer itself (no loops, no forward references), and at most
// *pointer_budget pointers are followed (decremented; shared across one message).
// On success *next is the offset just past the name in the original position.
NameError ParseName(const uint8_t* msg, size_t msg_len, size_t offset, NameBuf* out,
                    size_t* next, int* pointer_budget);

// Skips the name at msg[offset] without decompressing (for records we do not keep).
NameError SkipName(const uint8_t* msg, size_t msg_len, size_t offset, size_t* next);

// Validates an uncompressed wire name held in [p, p+len): returns its length or 0.
size_t WireNameLength(const uint8_t* p, size_t len);

// Lower-cases an uncompressed wire name in place.
void LowerName(uint8_t* name, size_t len);

// Whether two octet strings of len octets (names in the same case, say) are equal: eight
// octets at a time, the last word overlapping the one before, so nothing past either is
// read. For short names it costs less than a call to memcmp.
inline bool SameOctets(const uint8_t* a, const uint8_t* b, size_t len) {
  auto word = [](const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  };
  auto half = [](const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  };
  if (len >= 8) {
    for (size_t i = 0; i + 8 <= len; i += 8)
      if (word(a + i) != word(b + i)) return false;
    return word(a + len - 8) == word(b + len - 8);
  }
  if (len >= 4) return half(a) == half(b) && half(a + len - 4) == half(b + len - 4);
  for (size_t i = 0; i < len; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

// SameOctets without regard to ASCII case: for uncompressed wire names, whose length
// octets (below 64) lower-casing leaves as they are.
inline bool SameOctetsNoCase(const uint8_t* a, const uint8_t* b, size_t len) {
  auto word = [](const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return AsciiLowerWord(v);
  };
  if (len >= 8) {
    for (size_t i = 0; i + 8 <= len; i += 8)
      if (word(a + i) != word(b + i)) return false;
    return word(a + len - 8) == word(b + len - 8);
  }
  for (size_t i = 0; i < len; ++i)
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  return true;
}

// Case-insensitive comparison of two uncompressed wire names.
bool NameEqual(const uint8_t* a, const uint8_t* b);

// Counts labels of an uncompressed wire name (root = 0).
int CountLabels(const uint8_t* name);

// True if `name` equals `parent` or lies below it (both uncompressed wire form).
bool IsSubdomain(const uint8_t* name, size_t name_len, const uint8_t* parent, size_t parent_len);

// Presentation format <-> wire. Text names are taken as absolute ("a.b." and "a.b" alike).
absl::StatusOr<std::string> NameFromText(std::string_view text);
std::string NameToText(const uint8_t* wire);
// The same, appended to `out` (no string of its own: zone files of millions of names).
void AppendNameText(std::string* out, const uint8_t* wire);

}  // namespace tandem::dns
