// The control socket: JSON values, the serving thread, the commands, and the client side.
#include "control/control_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "control/daemon.h"
#include "control/log.h"

namespace tandem::control {

// ---------------------------------------------------------------------------------------
// JSON values and their text.

namespace json {

Value::Value() = default;
Value::Value(const Value&) = default;
Value::Value(Value&&) noexcept = default;
Value& Value::operator=(const Value&) = default;
Value& Value::operator=(Value&&) noexcept = default;
Value::~Value() = default;

Value Value::Bool(bool b) {
  Value v;
  v.type = Type::kBool;
  v.boolean = b;
  return v;
}

Value Value::Number(uint64_t n) {
  Value v;
  v.type = Type::kNumber;
  v.text = absl::StrCat(n);
  return v;
}

Value Value::Number(int64_t n) {
  Value v;
  v.type = Type::kNumber;
  v.text = absl::StrCat(n);
  return v;
}

Value Value::Number(double d, int decimals) {
  Value v;
  v.type = Type::kNumber;
  if (!std::isfinite(d)) d = 0;  // JSON has no NaN or infinity
  v.text = absl::StrFormat("%.*f", std::clamp(decimals, 0, 9), d);
  if (v.text.find('.') != std::string::npos) {
    while (v.text.back() == '0') v.text.pop_back();
    if (v.text.back() == '.') v.text.pop_back();
  }
  if (v.text == "-0") v.text = "0";
  return v;
}

Value Value::String(std::string_view s) {
  Value v;
  v.type = Type::kString;
  v.text = std::string(s);
  return v;
}

Value Value::Array() {
  Value v;
  v.type = Type::kArray;
  return v;
}

Value Value::Object() {
  Value v;
  v.type = Type::kObject;
  return v;
}

Value& Value::Set(std::string key, Value v) {
  members.emplace_back(std::move(key), std::move(v));
  return *this;
}

Value& Value::Push(Value v) {
  items.push_back(std::move(v));
  return *this;
}

const Value* Value::Find(std::string_view key) const {
  for (const auto& [k, v] : members)
    if (k == key) return &v;
  return nullptr;
}

namespace {

// Length of the valid UTF-8 sequence starting at s[i] (a byte >= 0x80), or 0 when it is
// not one (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n = c >= 0xC2 && c <= 0xDF   ? 2
             : c >= 0xE0 && c <= 0xEF ? 3
             : c >= 0xF0 && c <= 0xF4 ? 4
                                      : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  unsigned char c1 = byte(i + 1);
  if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F)) return 0;
  if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F)) return 0;
  return n;
}

// RFC 8259's two-character escapes: kEscaped[i] is written as a backslash and
// kEscapeLetter[i].
constexpr std::string_view kEscaped = "\"\\\b\f\n\r\t";
constexpr std::string_view kEscapeLetter = "\"\\bfnrt";

void AppendAsciiEscaped(std::string* out, char c) {
  if (size_t k = kEscaped.find(c); k != std::string_view::npos) {
    out->push_back('\\');
    out->push_back(kEscapeLetter[k]);
  } else if (static_cast<unsigned char>(c) < 0x20) {
    absl::StrAppendFormat(out, "\\u%04x", static_cast<unsigned char>(c));
  } else {
    out->push_back(c);
  }
}

void AppendQuoted(std::string* out, std::string_view s) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      AppendAsciiEscaped(out, s[i++]);
      continue;
    }
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out->append("\\ufffd");
      ++i;
    } else {
      out->append(s.substr(i, n));
      i += n;
    }
  }
  out->push_back('"');
}

void AppendValue(std::string* out, const Value& v) {
  switch (v.type) {
    case Value::Type::kNull:
      out->append("null");
      return;
    case Value::Type::kBool:
      out->append(v.boolean ? "true" : "false");
      return;
    case Value::Type::kNumber:
      out->append(v.text);
      return;
    case Value::Type::kString:
      AppendQuoted(out, v.text);
      return;
    case Value::Type::kArray:
      out->push_back('[');
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i > 0) out->push_back(',');
        AppendValue(out, v.items[i]);
      }
      out->push_back(']');
      return;
    case Value::Type::kObject:
      out->push_back('{');
      for (size_t i = 0; i < v.members.size(); ++i) {
        if (i > 0) out->push_back(',');
        AppendQuoted(out, v.members[i].first);
        out->push_back(':');
        AppendValue(out, v.members[i].second);
      }
      out->push_back('}');
      return;
  }
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A recursive-descent parser of RFC 8259 JSON; errors give the byte offset.
class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  absl::StatusOr<Value> Document() {
    Value v;
    if (!ParseValue(&v, 0)) return Failure();
    SkipSpace();
    if (pos_ != s_.size()) return Fail("unexpected text after the document"), Failure();
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  bool Fail(const char* what) {
    if (error_.empty()) error_ = absl::StrCat("invalid JSON at offset ", pos_, ": ", what);
    return false;
  }
  absl::Status Failure() const { return absl::InvalidArgumentError(error_); }
  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool Eat(char c) {
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return Fail("unknown literal");
    pos_ += word.size();
    return true;
  }

  bool ParseValue(Value* out, int depth) {
    if (depth > kMaxDepth) return Fail("nested too deeply");
    SkipSpace();
    if (pos_ >= s_.size()) return Fail("unexpected end");
    char c = s_[pos_];
    if (c == '{') return ParseObject(out, depth);
    if (c == '[') return ParseArray(out, depth);
    if (c == '"') {
      out->type = Value::Type::kString;
      return ParseString(&out->text);
    }
    if (c == 't' || c == 'f') {
      *out = Value::Bool(c == 't');
      return Literal(c == 't' ? "true" : "false");
    }
    if (c == 'n') {
      *out = Value::Null();
      return Literal("null");
    }
    return ParseNumber(out);
  }

  bool ParseObject(Value* out, int depth) {
    *out = Value::Object();
    ++pos_;  // '{'
    if (Eat('}')) return true;
    do {
      std::string key;
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Fail("expected a member name");
      if (!ParseString(&key)) return false;
      if (!Eat(':')) return Fail("expected ':'");
      Value v;
      if (!ParseValue(&v, depth + 1)) return false;
      out->Set(std::move(key), std::move(v));
    } while (Eat(','));
    return Eat('}') || Fail("expected ',' or '}'");
  }

  bool ParseArray(Value* out, int depth) {
    *out = Value::Array();
    ++pos_;  // '['
    if (Eat(']')) return true;
    do {
      Value v;
      if (!ParseValue(&v, depth + 1)) return false;
      out->Push(std::move(v));
    } while (Eat(','));
    return Eat(']') || Fail("expected ',' or ']'");
  }

  bool Digits() {
    size_t start = pos_;
    while (pos_ < s_.size() && absl::ascii_isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    return pos_ > start;
  }

  bool ParseNumber(Value* out) {
    size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
    } else if (!Digits()) {
      return Fail("expected a value");
    }
    if (pos_ < s_.size() && s_[pos_] == '.' && (++pos_, !Digits())) return Fail("expected digits");
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!Digits()) return Fail("expected exponent digits");
    }
    out->type = Value::Type::kNumber;
    out->text = std::string(s_.substr(start, pos_ - start));
    return true;
  }

  bool Hex4(uint32_t* out) {
    if (pos_ + 4 > s_.size()) return Fail("short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      int d = absl::ascii_isdigit(static_cast<unsigned char>(c)) ? c - '0'
              : (c >= 'a' && c <= 'f')                           ? c - 'a' + 10
              : (c >= 'A' && c <= 'F')                           ? c - 'A' + 10
                                                                 : -1;
      if (d < 0) return Fail("bad \\u escape");
      v = v * 16 + static_cast<uint32_t>(d);
    }
    *out = v;
    return true;
  }

  // After "\u": one code point, joining a surrogate pair; a lone surrogate is U+FFFD.
  bool UnicodeEscape(std::string* out) {
    uint32_t cp = 0;
    if (!Hex4(&cp)) return false;
    if (cp >= 0xD800 && cp <= 0xDBFF && s_.substr(pos_, 2) == "\\u") {
      size_t save = pos_;
      pos_ += 2;
      uint32_t low = 0;
      if (!Hex4(&low)) return false;
      if (low >= 0xDC00 && low <= 0xDFFF) {
        AppendUtf8(out, 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00));
        return true;
      }
      pos_ = save;
    }
    AppendUtf8(out, cp >= 0xD800 && cp <= 0xDFFF ? 0xFFFD : cp);
    return true;
  }

  bool Escape(std::string* out) {
    if (pos_ >= s_.size()) return Fail("unterminated string");
    char c = s_[pos_++];
    if (c == 'u') return UnicodeEscape(out);
    if (c == '/') {
      out->push_back('/');
      return true;
    }
    size_t k = kEscapeLetter.find(c);
    if (k == std::string_view::npos) return Fail("unknown escape");
    out->push_back(kEscaped[k]);
    return true;
  }

  bool ParseString(std::string* out) {
    ++pos_;  // '"'
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (!Escape(out)) return false;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        return Fail("control character in a string");
      } else {
        out->push_back(c);
      }
    }
    return Fail("unterminated string");
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace

std::string Serialize(const Value& v) {
  std::string out;
  AppendValue(&out, v);
  return out;
}

std::string Quote(std::string_view s) {
  std::string out;
  AppendQuoted(&out, s);
  return out;
}

absl::StatusOr<Value> Parse(std::string_view text) { return Parser(text).Document(); }

}  // namespace json

// ---------------------------------------------------------------------------------------
// Socket plumbing shared by both ends.

namespace {

using Clock = std::chrono::steady_clock;

std::string ErrnoText(int e) { return std::strerror(e); }

bool FillAddress(const std::string& path, sockaddr_un* addr) {
  if (path.empty() || path.size() >= sizeof(addr->sun_path)) return false;
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  std::memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

absl::Status PathTooLong(const std::string& path) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": not a usable socket path (empty, or longer than ",
                   sizeof(sockaddr_un::sun_path) - 1, " bytes)"));
}

// Waits until `fd` is ready for `events`; false on timeout or when `stop_fd` (if >= 0)
// becomes readable.
bool WaitFor(int fd, short events, int stop_fd, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    int n =
        poll(fds, stop_fd >= 0 ? 2 : 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) return false;
    if (n <= 0) continue;
    if (stop_fd >= 0 && fds[1].revents != 0) return false;
    if (fds[0].revents != 0) return true;
  }
}

enum class ReadOutcome { kRequest, kTooLarge, kTimeout, kClosed };

// Reads one request line (without its newline); end of stream also ends a request.
ReadOutcome ReadRequest(int fd, int stop_fd, Clock::time_point deadline, std::string* out) {
  char buf[4096];
  for (;;) {
    if (!WaitFor(fd, POLLIN, stop_fd, deadline)) return ReadOutcome::kTimeout;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return ReadOutcome::kClosed;
    if (n == 0) return out->empty() ? ReadOutcome::kClosed : ReadOutcome::kRequest;
    out->append(buf, static_cast<size_t>(n));
    if (size_t nl = out->find('\n'); nl != std::string::npos) {
      out->resize(nl);
      return out->size() > kMaxRequestBytes ? ReadOutcome::kTooLarge : ReadOutcome::kRequest;
    }
    if (out->size() > kMaxRequestBytes) return ReadOutcome::kTooLarge;
  }
}

bool WriteAll(int fd, int stop_fd, Clock::time_point deadline, std::string_view data) {
  while (!data.empty()) {
    if (!WaitFor(fd, POLLOUT, stop_fd, deadline)) return false;
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads and drops what the client sent beyond its request (bounded), so that closing does
// not reset the connection before the client has read the response.
void DiscardPending(int fd) {
  char buf[16384];
  for (int i = 0; i < 64; ++i)
    if (recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0) return;
}

// ---------------------------------------------------------------------------------------
// Creating the socket file.

absl::Status MakeParentDirectory(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return absl::OkStatus();
  std::string dir = path.substr(0, slash);
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    std::string prefix = dir.substr(0, i);
    if (mkdir(prefix.c_str(), 0750) != 0 && errno != EEXIST)
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": cannot create directory ", prefix, ": ", ErrnoText(errno)));
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return absl::FailedPreconditionError(absl::StrCat(path, ": ", dir, " is not a directory"));
  return absl::OkStatus();
}

// A socket file left by a tandemd that did not stop cleanly is removed; one that another
// process still accepts on is not.
absl::Status RemoveStaleSocket(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(path, ": ", ErrnoText(errno)));
  }
  if (!S_ISSOCK(st.st_mode))
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": exists and is not a socket; not replacing it"));
  sockaddr_un addr;
  if (!FillAddress(path, &addr)) return PathTooLong(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat(path, ": socket: ", ErrnoText(errno)));
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  close(fd);
  if (rc == 0 || err == EAGAIN)
    return absl::AlreadyExistsError(absl::StrCat(
        path,
        ": another tandemd is listening on this control socket; stop it or set another "
        "[control] socket"));
  if (err != ECONNREFUSED)
    return absl::FailedPreconditionError(absl::StrCat(path, ": connect: ", ErrnoText(err)));
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": cannot remove the stale socket: ", ErrnoText(errno)));
  LogInfo("control socket ", path, ": replaced a stale socket file");
  return absl::OkStatus();
}

// Binds with umask 0177 so that the socket is never reachable by others, even between
// bind and chmod.
absl::StatusOr<int> BindSocket(const std::string& path) {
  sockaddr_un addr;
  if (!FillAddress(path, &addr)) return PathTooLong(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat(path, ": socket: ", ErrnoText(errno)));
  mode_t old_mask = umask(0177);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  umask(old_mask);
  std::string failed;
  if (rc != 0) {
    failed = absl::StrCat("bind: ", ErrnoText(err));
  } else if (chmod(path.c_str(), 0600) != 0) {
    failed = absl::StrCat("chmod: ", ErrnoText(errno));
  } else if (listen(fd, 64) != 0) {
    failed = absl::StrCat("listen: ", ErrnoText(errno));
  }
  if (failed.empty()) return fd;
  close(fd);
  if (rc == 0) unlink(path.c_str());
  return absl::FailedPreconditionError(absl::StrCat(path, ": control socket ", failed));
}

// ---------------------------------------------------------------------------------------
// Responses.

json::Value Ok() { return json::Value::Object().Set("ok", json::Value::Bool(true)); }

json::Value Error(const std::string& message) {
  return json::Value::Object()
      .Set("ok", json::Value::Bool(false))
      .Set("error", json::Value::String(message));
}

const char* RcodeName(int rcode) {
  static constexpr const char* kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                           "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                           "NXRRSET", "NOTAUTH", "NOTZONE",  "DSOTYPENI"};
  if (rcode >= 0 && rcode < static_cast<int>(std::size(kNames))) return kNames[rcode];
  return rcode == 16 ? "BADVERS" : nullptr;
}

json::Value Counters(const dataplane::WorkerCounters& c) {
  using json::Value;
  Value responses = Value::Object();
  for (int r = 0; r < 24; ++r) {
    if (c.responses[r] == 0) continue;
    const char* name = RcodeName(r);
    responses.Set(name != nullptr ? name : absl::StrCat("RCODE", r), Value::Number(c.responses[r]));
  }
  return Value::Object()
      .Set("queries", Value::Number(c.queries[0] + c.queries[1]))
      .Set("queries_udp", Value::Number(c.queries[static_cast<int>(dataplane::Transport::kUdp)]))
      .Set("queries_tcp", Value::Number(c.queries[static_cast<int>(dataplane::Transport::kTcp)]))
      .Set("responses", std::move(responses))
      .Set("dropped", Value::Number(c.dropped))
      .Set("truncated", Value::Number(c.truncated))
      .Set("rrl_dropped", Value::Number(c.rrl_dropped))
      .Set("rrl_slipped", Value::Number(c.rrl_slipped))
      .Set("rx_packets", Value::Number(c.rx_packets))
      .Set("tx_packets", Value::Number(c.tx_packets))
      .Set("rx_errors", Value::Number(c.rx_errors))
      .Set("udp_waits", Value::Number(c.udp_waits))
      .Set("to_kernel", Value::Number(c.to_kernel))
      .Set("from_kernel", Value::Number(c.from_kernel))
      .Set("malformed", Value::Number(c.malformed))
      .Set("not_for_us", Value::Number(c.not_for_us))
      .Set("tx_dropped", Value::Number(c.tx_dropped));
}

// "Example.COM" and "example.com." name the same zone.
std::string ZoneKey(std::string_view name) {
  std::string key = absl::AsciiStrToLower(std::string(name));
  if (key.empty() || key.back() != '.') key.push_back('.');
  return key;
}

struct Request {
  std::string command;
  std::vector<std::string> args;
};

absl::StatusOr<Request> ParseRequest(std::string_view line) {
  auto doc = json::Parse(line);
  if (!doc.ok())
    return absl::InvalidArgumentError(absl::StrCat("bad request: ", doc.status().message()));
  if (!doc->is_object()) return absl::InvalidArgumentError("bad request: not a JSON object");
  const json::Value* command = doc->Find("command");
  if (command == nullptr || !command->is_string())
    return absl::InvalidArgumentError("bad request: \"command\" (a string) is missing");
  Request r{command->text, {}};
  if (const json::Value* args = doc->Find("args"); args != nullptr) {
    if (!args->is_array())
      return absl::InvalidArgumentError("bad request: \"args\" is not an array");
    for (const json::Value& a : args->items) {
      if (!a.is_string())
        return absl::InvalidArgumentError("bad request: an argument is not a string");
      r.args.push_back(a.text);
    }
  }
  return r;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// The server.

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& path,
                                                                    Daemon& daemon) {
  if (auto s = MakeParentDirectory(path); !s.ok()) return s;
  if (auto s = RemoveStaleSocket(path); !s.ok()) return s;
  auto fd = BindSocket(path);
  if (!fd.ok()) return fd.status();
  int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) {
    close(*fd);
    unlink(path.c_str());
    return absl::InternalError(absl::StrCat(path, ": eventfd: ", ErrnoText(errno)));
  }
  std::unique_ptr<ControlServer> server(new ControlServer(path, daemon, *fd, stop_fd));
  struct stat st;
  if (stat(path.c_str(), &st) == 0) server->inode_ = st.st_ino;
  server->TakeSample();
  server->previous_ = server->latest_;
  server->thread_ = std::thread([s = server.get()] { s->Serve(); });
  LogInfo("control socket listening on ", path);
  return server;
}

ControlServer::ControlServer(std::string path, Daemon& daemon, int listen_fd, int stop_fd)
    : path_(std::move(path)), daemon_(daemon), listen_fd_(listen_fd), stop_fd_(stop_fd) {}

ControlServer::~ControlServer() {
  uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof one) != sizeof one)
    LogError("control socket: cannot stop: ", ErrnoText(errno));
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
  close(stop_fd_);
  // Another tandemd may have replaced the file meanwhile; remove only ours.
  struct stat st;
  if (lstat(path_.c_str(), &st) == 0 && st.st_ino == inode_) unlink(path_.c_str());
}

void ControlServer::Serve() {
  auto next_sample = Clock::now() + std::chrono::seconds(1);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_sample - Clock::now());
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    int n = poll(fds, 2, static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1000)));
    if (n < 0 && errno != EINTR) {
      LogError("control socket ", path_, ": poll: ", ErrnoText(errno));
      return;
    }
    if (n > 0 && fds[1].revents != 0) return;
    if (Clock::now() >= next_sample) {
      TakeSample();
      next_sample = Clock::now() + std::chrono::seconds(1);
    }
    if (n <= 0 || (fds[0].revents & POLLIN) == 0) continue;
    int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (client < 0) continue;  // the client gave up already, or a transient error
    ServeClient(client);
    close(client);
  }
}

void ControlServer::ServeClient(int fd) {
  std::string request;
  std::string response;
  switch (ReadRequest(fd, stop_fd_, Clock::now() + kClientTimeout, &request)) {
    case ReadOutcome::kRequest:
      response = Handle(request);
      break;
    case ReadOutcome::kTooLarge:
      response =
          json::Serialize(Error(absl::StrCat("request larger than ", kMaxRequestBytes, " bytes")));
      break;
    case ReadOutcome::kTimeout:
      LogDebug("control socket: dropped a client that sent no request within ",
               kClientTimeout.count(), " s");
      return;
    case ReadOutcome::kClosed:
      return;
  }
  response.push_back('\n');
  if (!WriteAll(fd, stop_fd_, Clock::now() + kClientTimeout, response))
    LogDebug("control socket: a client did not read its response");
  DiscardPending(fd);
}

void ControlServer::TakeSample() {
  DaemonStatus s = daemon_.Status(/*with_ports=*/false);  // every second: the query totals only
  previous_ = latest_;
  latest_ = Sample{Clock::now(), s.totals.queries[0] + s.totals.queries[1]};
}

double ControlServer::QueriesPerSecond() const {
  double seconds = std::chrono::duration<double>(latest_.at - previous_.at).count();
  if (seconds <= 0 || latest_.queries < previous_.queries) return 0;
  return static_cast<double>(latest_.queries - previous_.queries) / seconds;
}

std::string ControlServer::Handle(std::string_view request) {
  auto r = ParseRequest(request);
  if (!r.ok()) return json::Serialize(Error(std::string(r.status().message())));
  LogDebug("control socket: ", r->command, r->args.empty() ? "" : " ", absl::StrJoin(r->args, " "));
  return json::Serialize(Dispatch(r->command, r->args));
}

json::Value ControlServer::Dispatch(const std::string& command,
                                    const std::vector<std::string>& args) {
  if (command == "sources" || command == "refresh" || command == "use")
    return ZoneCommand(command, args);
  if (command == "pool") return PoolCommand(args);
  bool known =
      command == "status" || command == "zones" || command == "stats" || command == "reload";
  if (!known)
    return Error(absl::StrCat("unknown command \"", command,
                              "\"; commands: status, zones, sources, refresh, use, reload, stats, pool"));
  if (!args.empty()) return Error(absl::StrCat(command, " takes no arguments"));
  if (command == "status") return Status();
  if (command == "zones") return Zones();
  if (command == "stats") return Stats();
  return Reload();
}

json::Value ControlServer::Status() {
  using json::Value;
  DaemonStatus s = daemon_.Status();
  Value listen = Value::Array();
  for (const std::string& l : s.listen) listen.Push(Value::String(l));
  std::string published =
      s.last_publish == absl::Time()
          ? ""
          : absl::FormatTime(absl::RFC3339_sec, s.last_publish, absl::UTCTimeZone());
  return Ok()
      .Set("version", Value::String(s.version))
      .Set("uptime_seconds", Value::Number(static_cast<int64_t>(absl::ToInt64Seconds(s.uptime))))
      .Set("mode", Value::String(s.mode))
      .Set("workers", Value::Number(s.workers))
      .Set("listen", std::move(listen))
      .Set("zones", Value::Number(static_cast<uint64_t>(s.zones)))
      .Set("queries_total", Value::Number(s.totals.queries[0] + s.totals.queries[1]))
      .Set("queries_per_second", Value::Number(QueriesPerSecond()))
      .Set("reloads", Value::Number(s.reloads))
      .Set("reload_failures", Value::Number(s.reload_failures))
      .Set("last_publish", Value::String(published))
      .Set("last_publish_seconds",
           Value::Number(absl::ToDoubleSeconds(s.last_publish_duration), 6));
}

json::Value ControlServer::Zones() {
  using json::Value;
  Value zones = Value::Array();
  for (const ZoneStatus& z : daemon_.Zones()) {
    zones.Push(Value::Object()
                   .Set("name", Value::String(z.name))
                   .Set("serial", Value::Number(static_cast<uint64_t>(z.serial)))
                   .Set("source", Value::String(z.source))
                   .Set("file", Value::String(z.file))
                   .Set("nodes", Value::Number(static_cast<uint64_t>(z.nodes)))
                   .Set("memory_bytes", Value::Number(static_cast<uint64_t>(z.memory_bytes)))
                   .Set("state", Value::String(z.state)));
  }
  return Ok().Set("zones", std::move(zones));
}

json::Value ControlServer::Stats() {
  using json::Value;
  DaemonStatus s = daemon_.Status();
  Value workers = Value::Array();
  for (const auto& [name, counters] : s.per_worker)
    workers.Push(
        Value::Object().Set("name", Value::String(name)).Set("counters", Counters(counters)));
  Value ports = Value::Array();
  for (const dataplane::PortCounters& p : s.ports)
    ports.Push(Value::Object()
                   .Set("name", Value::String(p.name))
                   .Set("rx_packets", Value::Number(p.rx_packets))
                   .Set("tx_packets", Value::Number(p.tx_packets))
                   .Set("rx_missed", Value::Number(p.rx_missed))
                   .Set("rx_errors", Value::Number(p.rx_errors))
                   .Set("rx_no_mbuf", Value::Number(p.rx_no_mbuf))
                   .Set("tx_errors", Value::Number(p.tx_errors)));
  return Ok()
      .Set("queries_per_second", Value::Number(QueriesPerSecond()))
      .Set("total", Counters(s.totals))
      .Set("workers", std::move(workers))
      .Set("ports", std::move(ports));
}

json::Value ControlServer::Reload() {
  LogInfo("control socket: reloading the configuration and zone files");
  absl::Status s = daemon_.Reload();
  if (!s.ok()) {
    // One log line; the response keeps one line per error.
    LogError(absl::StrReplaceAll(s.message(), {{":\n", ": "}, {"\n", "; "}}));
    return Error(std::string(s.message()));
  }
  size_t zones = daemon_.Zones().size();
  return Ok()
      .Set("zones", json::Value::Number(static_cast<uint64_t>(zones)))
      .Set("message", json::Value::String(absl::StrCat("reloaded: serving ", zones, " zones")));
}

// sources, refresh and use act on the upstream sources of pulled zones; zones served from
// their files have none.
json::Value ControlServer::ZoneCommand(const std::string& command,
                                       const std::vector<std::string>& args) {
  size_t want = command == "use" ? 2 : 1;
  if (args.size() != want)
    return Error(command == "use" ? "usage: use ZONE SOURCE|auto"
                                  : absl::StrCat("usage: ", command, " ZONE"));
  std::string key = ZoneKey(args[0]);
  for (const ZoneStatus& z : daemon_.Zones()) {
    if (ZoneKey(z.name) != key) continue;
    if (z.source == "file") {
      std::string base = absl::StrCat("zone ", z.name, " is served from its file; it has no sources");
      if (command == "refresh")
        return Error(absl::StrCat(base, " to refresh (tandemctl reload re-reads the file)"));
      if (command == "use") return Error(absl::StrCat(base, " to choose from"));
      return Error(base);
    }
    if (command == "refresh") {
      absl::Status st = daemon_.Refresh(z.name);
      if (!st.ok()) return Error(std::string(st.message()));
      return Ok().Set("message", json::Value::String(absl::StrCat("refresh of ", z.name, " scheduled")));
    }
    if (command == "use") {
      absl::Status st = daemon_.Use(z.name, args[1]);
      if (!st.ok()) return Error(std::string(st.message()));
      return Ok().Set("message", json::Value::String(
                                     args[1] == "auto" ? absl::StrCat(z.name, ": automatic choice of the copy")
                                                       : absl::StrCat(z.name, ": pinned to ", args[1])));
    }
    return SourcesOf(z.name);
  }
  return Error(absl::StrCat("no such zone: ", key));
}

json::Value ControlServer::PoolCommand(const std::vector<std::string>& args) {
  using json::Value;
  if (args.size() != 1 && args.size() != 3) return Error("usage: pool POOL [MEMBER up|down|auto]");
  if (args.size() == 3) {
    absl::Status st = daemon_.OverrideMember(args[0], args[1], args[2]);
    if (!st.ok()) return Error(std::string(st.message()));
    return Ok().Set("message", Value::String(absl::StrCat("pool ", args[0], " member ", args[1], ": ", args[2])));
  }
  DaemonStatus d = daemon_.Status();
  for (const PoolStatus& p : daemon_.PoolsStatus()) {
    if (p.name != args[0]) continue;
    Value members = Value::Array();
    for (const PoolMemberStatus& m : p.members) {
      members.Push(Value::Object()
                       .Set("name", Value::String(m.name))
                       .Set("address", Value::String(m.address))
                       .Set("weight", Value::Number(static_cast<uint64_t>(m.weight)))
                       .Set("state", Value::String(m.up ? "UP" : "DOWN"))
                       .Set("healthy", Value::Bool(m.healthy))
                       .Set("override", Value::String(m.override))
                       .Set("latency_ms", Value::Number(absl::ToDoubleMilliseconds(m.latency)))
                       .Set("error", Value::String(m.error))
                       .Set("checks_ok", Value::Number(m.checks_ok))
                       .Set("checks_failed", Value::Number(m.checks_failed))
                       .Set("answers", Value::Number(d.totals.member_answers[m.id])));
    }
    return Ok()
        .Set("pool", Value::String(p.name))
        .Set("policy", Value::String(p.policy))
        .Set("check", Value::String(p.check))
        .Set("all_down_answers", Value::Number(d.totals.pool_all_down))
        .Set("members", std::move(members));
  }
  return Error(absl::StrCat("no pool ", args[0]));
}

json::Value ControlServer::SourcesOf(const std::string& zone) {
  using json::Value;
  auto st = daemon_.Sources(zone);
  if (!st.ok()) return Error(std::string(st.status().message()));
  auto when = [](absl::Time t) {
    if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return Value::String("");
    return Value::String(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone()));
  };
  Value sources = Value::Array();
  for (const SourceStatus& s : st->sources) {
    sources.Push(Value::Object()
                     .Set("name", Value::String(s.name))
                     .Set("address", Value::String(s.address))
                     .Set("active", Value::Bool(s.name == st->active_source))
                     .Set("has_copy", Value::Bool(s.has_copy))
                     .Set("serial", Value::Number(static_cast<uint64_t>(s.serial)))
                     .Set("records", Value::Number(static_cast<uint64_t>(s.records)))
                     .Set("expired", Value::Bool(s.expired))
                     .Set("last_refresh", when(s.last_refresh))
                     .Set("expires", when(s.expires))
                     .Set("next_check", when(s.next_check))
                     .Set("last_transfer", Value::String(s.last_transfer))
                     .Set("last_error", Value::String(s.last_error))
                     .Set("transfers_ok", Value::Number(s.transfers_ok))
                     .Set("transfers_failed", Value::Number(s.transfers_failed))
                     .Set("state", Value::String(s.up ? "UP" : "DOWN"))
                     .Set("probe_latency_ms", Value::Number(absl::ToDoubleMilliseconds(s.probe_latency)))
                     .Set("probe_error", Value::String(s.probe_error))
                     .Set("probe_serial", Value::Number(static_cast<uint64_t>(s.probe_serial))));
  }
  return Ok()
      .Set("zone", Value::String(st->name))
      .Set("state", Value::String(st->state))
      .Set("serial", Value::Number(static_cast<uint64_t>(st->serial)))
      .Set("active_source", Value::String(st->active_source))
      .Set("pinned", Value::String(st->pinned))
      .Set("swaps", Value::Number(st->swaps))
      .Set("last_swap", when(st->last_swap))
      .Set("last_swap_reason", Value::String(st->last_swap_reason))
      .Set("sources", std::move(sources));
}

// ---------------------------------------------------------------------------------------
// The client.

namespace {

absl::Status ConnectError(const std::string& path, int err) {
  std::string reason = absl::StrCat("cannot connect to ", path, ": ", ErrnoText(err));
  if (err == ENOENT || err == ECONNREFUSED)
    return absl::UnavailableError(absl::StrCat("tandemd is not running? ", reason));
  if (err == EACCES || err == EPERM)
    return absl::PermissionDeniedError(absl::StrCat(
        reason,
        " (the socket is mode 0600: run tandemctl as the user tandemd runs as, or as root)"));
  return absl::UnavailableError(reason);
}

}  // namespace

absl::StatusOr<std::string> ControlExchange(const std::string& path, std::string_view request,
                                            absl::Duration timeout) {
  constexpr size_t kMaxResponseBytes = 64 << 20;
  sockaddr_un addr;
  if (!FillAddress(path, &addr)) return PathTooLong(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", ErrnoText(errno)));
  // A blocking connect, bounded by the send timeout when the listen queue is full.
  timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    close(fd);
    if (err == EAGAIN)
      return absl::DeadlineExceededError(
          absl::StrCat(path, ": tandemd did not accept the connection"));
    return ConnectError(path, err);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  auto deadline = Clock::now() + absl::ToChronoMilliseconds(timeout);
  std::string response;
  bool sent = WriteAll(fd, -1, deadline, request);
  bool complete = false;
  char buf[16384];
  while (sent && !complete && response.size() < kMaxResponseBytes &&
         WaitFor(fd, POLLIN, -1, deadline)) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) break;
    complete = n == 0;  // the server closes after its response
    response.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (!sent)
    return absl::UnavailableError(absl::StrCat(path, ": tandemd did not take the request"));
  if (!complete && response.size() >= kMaxResponseBytes)
    return absl::ResourceExhaustedError(
        absl::StrCat(path, ": response larger than ", kMaxResponseBytes, " bytes"));
  if (!complete)
    return absl::DeadlineExceededError(absl::StrCat(
        path, ": no complete response from tandemd within ", absl::FormatDuration(timeout)));
  if (response.empty())
    return absl::UnavailableError(
        absl::StrCat(path, ": tandemd closed the connection without a response"));
  return response;
}

}  // namespace tandem::control
