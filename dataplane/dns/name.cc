// Wire-name parsing, lower-casing and text conversion.
#include "dataplane/dns/name.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace tandem::dns {

const char* NameErrorText(NameError e) {
  switch (e) {
    case NameError::kOk: return "ok";
    case NameError::kTruncated: return "name truncated";
    case NameError::kLabelTooLong: return "label over 63 octets or reserved label type";
    case NameError::kNameTooLong: return "name over 255 octets";
    case NameError::kBadPointer: return "compression pointer not pointing backward";
    case NameError::kTooManyPointers: return "too many compression pointers";
  }
  return "unknown";
}

NameError ParseName(const uint8_t* msg, size_t msg_len, size_t offset, NameBuf* out,
                    size_t* next, int* pointer_budget) {
  size_t pos = offset;
  size_t out_len = 0;
  int labels = 0;
  bool jumped = false;
  // Every pointer must go strictly backward from where it stands, so the walk ends.
  for (;;) {
    if (pos >= msg_len) return NameError::kTruncated;
    uint8_t len = msg[pos];
    if ((len & 0xc0) == 0xc0) {
      if (pos + 1 >= msg_len) return NameError::kTruncated;
      size_t target = static_cast<size_t>(len & 0x3f) << 8 | msg[pos + 1];
      if (target >= pos) return NameError::kBadPointer;
      if (--*pointer_budget < 0) return NameError::kTooManyPointers;
      if (!jumped) {
        *next = pos + 2;
        jumped = true;
      }
      pos = target;
      continue;
    }
    if (len & 0xc0) return NameError::kLabelTooLong;
    if (out_len + 1 + len > kMaxNameLength) return NameError::kNameTooLong;
    if (pos + 1 + len > msg_len) return NameError::kTruncated;
    out->data[out_len] = len;
    std::memcpy(out->data + out_len + 1, msg + pos + 1, len);
    out_len += 1 + len;
    pos += 1 + len;
    if (len == 0) break;
    ++labels;
  }
  if (!jumped) *next = pos;
  out->length = static_cast<uint8_t>(out_len);
  out->labels = static_cast<uint8_t>(labels);
  return NameError::kOk;
}

NameError SkipName(const uint8_t* msg, size_t msg_len, size_t offset, size_t* next) {
  size_t pos = offset;
  size_t total = 0;
  for (;;) {
    if (pos >= msg_len) return NameError::kTruncated;
    uint8_t len = msg[pos];
    if ((len & 0xc0) == 0xc0) {
      if (pos + 1 >= msg_len) return NameError::kTruncated;
      size_t target = static_cast<size_t>(len & 0x3f) << 8 | msg[pos + 1];
      if (target >= pos) return NameError::kBadPointer;
      *next = pos + 2;
      return NameError::kOk;
    }
    if (len & 0xc0) return NameError::kLabelTooLong;
    total += 1 + len;
    if (total > kMaxNameLength) return NameError::kNameTooLong;
    if (pos + 1 + len > msg_len) return NameError::kTruncated;
    pos += 1 + len;
    if (len == 0) break;
  }
  *next = pos;
  return NameError::kOk;
}

size_t WireNameLength(const uint8_t* p, size_t len) {
  size_t pos = 0;
  while (pos < len) {
    uint8_t l = p[pos];
    if (l & 0xc0) return 0;
    if (pos + 1 + l > kMaxNameLength) return 0;
    pos += 1 + l;
    if (l == 0) return pos <= len ? pos : 0;
  }
  return 0;
}

void LowerName(uint8_t* name, size_t len) {
  // Where the name ends, and whether all its length octets are plain labels' (below 'A',
  // so that lower-casing every octet leaves them be).
  size_t pos = 0;
  bool plain = true;
  while (pos < len && name[pos] != 0) {
    plain &= name[pos] <= kMaxLabelLength;
    pos += 1 + name[pos];
  }
  const size_t end = std::min(pos, len);
  if (!plain) {
    for (pos = 0; pos < end; pos += 1 + name[pos]) {
      uint8_t l = name[pos];
      for (size_t i = 1; i <= l && pos + i < len; ++i) name[pos + i] = AsciiLower(name[pos + i]);
    }
    return;
  }
  size_t i = 0;
  for (; i + 8 <= end; i += 8) {
    uint64_t w;
    std::memcpy(&w, name + i, 8);
    w = AsciiLowerWord(w);
    std::memcpy(name + i, &w, 8);
  }
  for (; i < end; ++i) name[i] = AsciiLower(name[i]);
}

bool NameEqual(const uint8_t* a, const uint8_t* b) {
  for (;;) {
    if (*a != *b) return false;
    uint8_t l = *a;
    if (l == 0) return true;
    for (uint8_t i = 1; i <= l; ++i)
      if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
    a += 1 + l;
    b += 1 + l;
  }
}

int CountLabels(const uint8_t* name) {
  int n = 0;
  while (*name) {
    name += 1 + *name;
    ++n;
  }
  return n;
}

bool IsSubdomain(const uint8_t* name, size_t name_len, const uint8_t* parent, size_t parent_len) {
  if (name_len < parent_len) return false;
  // Walk label boundaries of name until the remaining suffix has parent's length.
  size_t pos = 0;
  while (name_len - pos > parent_len) {
    if (name[pos] == 0) return false;
    pos += 1 + name[pos];
  }
  return name_len - pos == parent_len && NameEqual(name + pos, parent);
}

absl::StatusOr<std::string> NameFromText(std::string_view text) {
  std::string out;
  if (text == "." || text.empty()) return std::string(1, '\0');
  std::string label;
  auto flush = [&]() -> absl::Status {
    if (label.empty()) return absl::InvalidArgumentError(absl::StrCat("empty label in name '", std::string(text), "'"));
    if (label.size() > kMaxLabelLength)
      return absl::InvalidArgumentError(absl::StrCat("label over 63 octets in name '", std::string(text), "'"));
    out.push_back(static_cast<char>(label.size()));
    out += label;
    label.clear();
    return absl::OkStatus();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\') {
      if (i + 3 < text.size() && isdigit(static_cast<unsigned char>(text[i + 1])) &&
          isdigit(static_cast<unsigned char>(text[i + 2])) &&
          isdigit(static_cast<unsigned char>(text[i + 3]))) {
        int v = (text[i + 1] - '0') * 100 + (text[i + 2] - '0') * 10 + (text[i + 3] - '0');
        if (v > 255) return absl::InvalidArgumentError(absl::StrCat("bad escape in name '", std::string(text), "'"));
        label.push_back(static_cast<char>(v));
        i += 3;
      } else if (i + 1 < text.size()) {
        label.push_back(text[++i]);
      } else {
        return absl::InvalidArgumentError(absl::StrCat("trailing backslash in name '", std::string(text), "'"));
      }
    } else if (c == '.') {
      if (auto s = flush(); !s.ok()) return s;
    } else {
      label.push_back(c);
    }
  }
  if (!label.empty())
    if (auto s = flush(); !s.ok()) return s;
  out.push_back('\0');
  if (out.size() > kMaxNameLength)
    return absl::InvalidArgumentError(absl::StrCat("name over 255 octets: '", std::string(text), "'"));
  return out;
}

void AppendNameText(std::string* out, const uint8_t* wire) {
  if (*wire == 0) {
    out->push_back('.');
    return;
  }
  static const char kDigits[] = "0123456789";
  while (*wire) {
    uint8_t l = *wire;
    for (uint8_t i = 1; i <= l; ++i) {
      uint8_t c = wire[i];
      if (c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' || c == '@' ||
          c == '$') {
        out->push_back('\\');
        out->push_back(static_cast<char>(c));
      } else if (c <= 0x20 || c >= 0x7f) {  // \DDD
        char esc[4] = {'\\', kDigits[c / 100], kDigits[c / 10 % 10], kDigits[c % 10]};
        out->append(esc, 4);
      } else {
        out->push_back(static_cast<char>(c));
      }
    }
    out->push_back('.');
    wire += 1 + l;
  }
}

std::string NameToText(const uint8_t* wire) {
  std::string out;
  AppendNameText(&out, wire);
  return out;
}

}  // namespace tandem::dns
