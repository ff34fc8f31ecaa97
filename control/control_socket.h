// The control socket: a Unix stream socket (mode 0600) on which tandemctl asks for status,
// zones, sources, statistics and reloads. One request and one JSON response per connection.
//
// Protocol: the client sends one line of JSON, {"command":"status","args":["..."]}, and
// reads one JSON document, {"ok":true,...} or {"ok":false,"error":"..."}; then the server
// closes the connection. A request is at most 64 KiB and must arrive within 5 s.
//
// This file also owns the small JSON value type both ends use (tandemd encodes, tandemctl
// decodes) and the client side of the exchange, so that tandemctl is only presentation.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tandem::control {

class Daemon;

namespace json {

// A parsed or to-be-written JSON value. Numbers keep their literal text, so a 64-bit
// counter goes through unchanged.
struct Value {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type = Type::kNull;
  bool boolean = false;
  std::string text;                                    // a string's contents, or a number's literal
  std::vector<Value> items;                            // kArray
  std::vector<std::pair<std::string, Value>> members;  // kObject, in insertion order

  // Declared here and defaulted in the .cc, where Value is complete: a pair holding the
  // still-incomplete Value cannot be instantiated, which an inline implicit constructor
  // or destructor would make clang (with libstdc++) do.
  Value();
  Value(const Value&);
  Value(Value&&) noexcept;
  Value& operator=(const Value&);
  Value& operator=(Value&&) noexcept;
  ~Value();

  static Value Null() { return Value(); }
  static Value Bool(bool b);
  static Value Number(uint64_t n);
  static Value Number(int64_t n);
  static Value Number(int n) { return Number(static_cast<int64_t>(n)); }
  static Value Number(double d, int decimals = 3);  // trailing zeros trimmed
  static Value String(std::string_view s);
  static Value Array();
  static Value Object();

  // Objects: appends (keys are not checked for duplicates); returns *this for chaining.
  Value& Set(std::string key, Value v);
  // Arrays: appends.
  Value& Push(Value v);
  // Objects: the member named `key`, or nullptr.
  const Value* Find(std::string_view key) const;

  bool is_string() const { return type == Type::kString; }
  bool is_number() const { return type == Type::kNumber; }
  bool is_object() const { return type == Type::kObject; }
  bool is_array() const { return type == Type::kArray; }
};

// Compact JSON text. Strings are escaped as RFC 8259 requires; bytes that are not valid
// UTF-8 become U+FFFD, so the output is always valid JSON.
std::string Serialize(const Value& v);
// `s` as a quoted, escaped JSON string.
std::string Quote(std::string_view s);
// Parses one JSON document (surrounding white space allowed), nesting at most 64 deep.
absl::StatusOr<Value> Parse(std::string_view text);

}  // namespace json

// Limits of one exchange on the control socket.
inline constexpr size_t kMaxRequestBytes = 64 * 1024;
inline constexpr std::chrono::seconds kClientTimeout{5};

class ControlServer {
 public:
  // Creates the socket at `path` (mode 0600; the parent directory is created if missing;
  // a stale socket file is replaced, but a socket another tandemd still listens on is an
  // error) and serves it from one thread. Errors name the path.
  static absl::StatusOr<std::unique_ptr<ControlServer>> Start(const std::string& path,
                                                              Daemon& daemon);
  // Stops serving and removes the socket file.
  virtual ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Answers one request line with one JSON document (without the final newline). Called
  // on the serving thread only.
  std::string Handle(std::string_view request);

 private:
  struct Sample {
    std::chrono::steady_clock::time_point at;
    uint64_t queries = 0;
  };

  ControlServer(std::string path, Daemon& daemon, int listen_fd, int stop_fd);
  void Serve();
  void ServeClient(int fd);
  void TakeSample();
  double QueriesPerSecond() const;

  json::Value Dispatch(const std::string& command, const std::vector<std::string>& args);
  json::Value Status();
  json::Value Zones();
  json::Value Stats();
  json::Value Reload();
  json::Value ZoneCommand(const std::string& command, const std::vector<std::string>& args);
  json::Value SourcesOf(const std::string& zone);
  json::Value PoolCommand(const std::vector<std::string>& args);

  std::string path_;
  Daemon& daemon_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;    // an eventfd: written once to stop the serving thread
  uint64_t inode_ = 0;  // the socket file we created; removed only if it is still ours
  Sample previous_;     // the two latest samples of the summed query counters
  Sample latest_;
  std::thread thread_;
};

// The client side: connects to the socket at `path`, sends `request` (one line of JSON)
// and returns the whole response. Errors are ready for the operator: "tandemd is not
// running? cannot connect to PATH: No such file or directory", "cannot connect to PATH:
// Permission denied", a timeout after `timeout`.
absl::StatusOr<std::string> ControlExchange(const std::string& path, std::string_view request,
                                            absl::Duration timeout);

}  // namespace tandem::control
