// Domain names on the wire: parsing with decompression (bounded, backward pointers only),
// lower-casing, comparison, and conversion to and from presentation text.
#pragma once

#include <cstddef>
#include <cstdint>
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
