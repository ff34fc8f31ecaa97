// The TOML configuration loader: parses with toml++, checks every key, value and
// cross-reference, and reports all problems at once, one "FILE:LINE: message" per line.
#include <arpa/inet.h>
#include <sys/un.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/config.h"
#include "dataplane/address.h"
#include "dataplane/dns/name.h"

namespace tandem::config {
namespace {

// ---------------------------------------------------------------------------------------
// Error collection.

class Errors {
 public:
  explicit Errors(std::string path) : path_(std::move(path)) {}

  void Add(int line, std::string message) { entries_.push_back({line, std::move(message)}); }
  bool empty() const { return entries_.empty(); }

  // All errors, in line order, as one InvalidArgument status.
  absl::Status ToStatus() const {
    std::vector<Entry> sorted = entries_;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const Entry& a, const Entry& b) { return a.line < b.line; });
    std::vector<std::string> lines;
    for (const Entry& e : sorted)
      lines.push_back(absl::StrCat(path_, ":", e.line, ": ", e.message));
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }

 private:
  struct Entry {
    int line;
    std::string message;
  };
  std::string path_;
  std::vector<Entry> entries_;
};

// Debian's abseil has its own string_view type, which std::string_view does not convert to.
absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

int LineOf(const toml::node& n) { return static_cast<int>(n.source().begin.line); }
int LineOf(const toml::key& k) { return static_cast<int>(k.source().begin.line); }

// ---------------------------------------------------------------------------------------
// Showing values in messages.

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string Render(const toml::node& n) {
  if (const auto* s = n.as_string()) return Quote(s->get());
  if (const auto* i = n.as_integer()) return absl::StrCat(i->get());
  if (const auto* f = n.as_floating_point()) return absl::StrCat(f->get());
  if (const auto* b = n.as_boolean()) return b->get() ? "true" : "false";
  if (n.is_array()) return "an array";
  if (n.is_table()) return "a table";
  return "a date or time";
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// " (did you mean 'workers'?)" when a known key is within two edits, else "".
std::string Suggestion(std::string_view key, const std::vector<std::string_view>& known) {
  std::string_view best;
  size_t best_distance = 3;
  for (std::string_view k : known) {
    size_t d = EditDistance(key, k);
    if (d < best_distance && d < k.size()) {
      best = k;
      best_distance = d;
    }
  }
  if (best.empty()) return "";
  return absl::StrCat(" (did you mean '", A(best), "'?)");
}

// ---------------------------------------------------------------------------------------
// Value checks: each turns an accepted string into the form stored, or rejects it.

using Check = std::function<std::optional<std::string>(const std::string&)>;

constexpr char kNonEmpty[] = "a non-empty string";
constexpr char kEndpoint[] = R"(an address and port such as "127.0.0.1:53" or "[::1]:53")";
constexpr char kEndpoint53[] =
    R"(an address with an optional port (default 53) such as "192.0.2.1" or "[2001:db8::1]:5300")";
constexpr char kPrefix[] = R"(an address prefix such as "10.0.0.0/8" or "2001:db8::/32")";
constexpr char kAddress[] = R"(an IP address without a port, with an optional prefix length, such as "198.18.0.1/24")";
constexpr char kDomain[] = R"(a domain name such as "example.com")";
constexpr char kOwner[] = R"(a name relative to the zone such as "www" or "@")";
constexpr char kIface[] = "an interface name of 1 to 15 characters";
constexpr char kSocketPath[] = "a socket path of at most 107 bytes";
constexpr char kDuration[] = R"(a duration greater than zero such as "500ms", "1s" or "1h30m")";
constexpr char kSourceTable[] = R"(a table such as { name = "primary", address = "192.0.2.1" })";
constexpr char kPooledTable[] = R"(a table such as { name = "www", pool = "web", ttl = 30 })";

std::optional<std::string> NonEmpty(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

// One TXT character-string (RFC 1035 3.3); empty is allowed.
constexpr char kCharString[] = "a string of at most 255 bytes";
std::optional<std::string> CharString(const std::string& s) {
  if (s.size() > 255) return std::nullopt;
  return s;
}

Check EndpointCheck(std::optional<uint16_t> default_port) {
  return [default_port](const std::string& s) -> std::optional<std::string> {
    auto ep = dataplane::ParseEndpoint(s, default_port);
    if (!ep) return std::nullopt;
    return ep->ToString();
  };
}

std::optional<std::string> PrefixCheck(const std::string& s) {
  if (!dataplane::ParsePrefix(s)) return std::nullopt;
  return s;
}

// A plain address: no prefix length, no port.
std::optional<std::string> PlainAddressCheck(const std::string& s) {
  if (s.find('/') == std::string::npos && dataplane::ParsePrefix(s)) return s;
  return std::nullopt;
}

// An address with an optional prefix length ("198.18.0.1", "198.18.0.1/24").
std::optional<std::string> AddressCheck(const std::string& s) {
  if (dataplane::ParsePrefix(s)) return s;
  return std::nullopt;
}

bool HasSpace(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isspace(static_cast<unsigned char>(c)) ||
           absl::ascii_iscntrl(static_cast<unsigned char>(c));
  });
}

std::optional<std::string> DomainCheck(const std::string& s) {
  if (s.empty() || HasSpace(s) || !dns::NameFromText(s).ok()) return std::nullopt;
  return s;
}

std::optional<std::string> OwnerCheck(const std::string& s) {
  if (s == "@") return s;
  return DomainCheck(s);
}

std::optional<std::string> IfaceCheck(const std::string& s) {
  if (s.empty() || s.size() > 15 || HasSpace(s) || s.find('/') != std::string::npos)
    return std::nullopt;
  return s;
}

// "" (the default) turns the control socket off.
std::optional<std::string> SocketPathCheck(const std::string& s) {
  if (s.size() >= sizeof(sockaddr_un{}.sun_path)) return std::nullopt;
  return s;
}

// "" (the default) turns the metrics endpoint off.
std::optional<std::string> OptionalEndpointCheck(const std::string& s) {
  if (s.empty()) return s;
  return EndpointCheck(std::nullopt)(s);
}

// The lower-cased wire form of a name: equal for names that differ only in case or in a
// trailing dot.
std::optional<std::string> CanonicalName(std::string_view text) {
  auto wire = dns::NameFromText(text);
  if (!wire.ok()) return std::nullopt;
  return absl::AsciiStrToLower(*wire);
}

// ---------------------------------------------------------------------------------------
// One TOML table being read. Unknown keys are reported on construction; each reader
// reports a value of the wrong type or out of range and writes its output only when the
// value is valid, so defaults survive errors and checks do not cascade.

class Fields {
 public:
  // `self` names the table in messages ("server", "zone[0].sources[1]"; "" for the
  // document); `where` completes "unknown key 'x' ..." ("in [server]").
  Fields(Errors& errors, const toml::table& table, std::string self, std::string where,
         std::initializer_list<std::string_view> known)
      : errors_(errors),
        table_(table),
        self_(std::move(self)),
        where_(std::move(where)),
        known_(known) {
    for (auto&& [key, value] : table_) {
      if (std::find(known_.begin(), known_.end(), key.str()) != known_.end()) continue;
      errors_.Add(LineOf(key), absl::StrCat("unknown key '", A(key.str()), "' ", where_,
                                            Suggestion(key.str(), known_)));
    }
  }

  int line() const { return LineOf(table_); }
  const std::string& self() const { return self_; }
  const toml::node* Get(std::string_view key) const { return table_.get(key); }
  std::string Name(std::string_view key) const {
    return self_.empty() ? std::string(key) : absl::StrCat(self_, ".", A(key));
  }

  int KeyLine(std::string_view key) const {
    auto it = table_.find(key);
    return it == table_.end() ? line() : LineOf(it->first);
  }

  void Require(std::initializer_list<std::string_view> keys) {
    for (std::string_view key : keys) {
      if (Get(key) != nullptr) continue;
      std::string msg = absl::StrCat("missing required key '", A(key), "'");
      errors_.Add(line(), self_.empty() ? msg : absl::StrCat(self_, ": ", msg));
    }
  }

  // "KEY: message" at the line of KEY's value.
  void Fail(std::string_view key, std::string_view message) {
    const toml::node* n = Get(key);
    errors_.Add(n ? LineOf(*n) : line(), absl::StrCat(Name(key), ": ", A(message)));
  }

  void Bad(const toml::node& value, std::string_view name, std::string_view expected) {
    errors_.Add(LineOf(value),
                absl::StrCat(A(name), ": expected ", A(expected), ", got ", Render(value)));
  }

  template <typename T>
  bool Int(std::string_view key, int64_t lo, int64_t hi, T* out) {
    const toml::node* n = Get(key);
    if (n == nullptr) return false;
    const auto* v = n->as_integer();
    if (v == nullptr || v->get() < lo || v->get() > hi) {
      Bad(*n, Name(key), absl::StrCat("an integer from ", lo, " to ", hi));
      return false;
    }
    *out = static_cast<T>(v->get());
    return true;
  }

  bool String(std::string_view key, std::string_view expected, const Check& check,
              std::string* out) {
    const toml::node* n = Get(key);
    return n != nullptr && Element(*n, Name(key), expected, check, out);
  }

  bool Strings(std::string_view key, std::string_view expected, const Check& check,
               std::vector<std::string>* out) {
    const toml::node* n = Get(key);
    if (n == nullptr) return false;
    const toml::array* a = n->as_array();
    if (a == nullptr) {
      Bad(*n, Name(key), "an array of strings");
      return false;
    }
    std::vector<std::string> values(a->size());
    bool ok = true;
    for (size_t i = 0; i < a->size(); ++i)
      ok &= Element(*a->get(i), absl::StrCat(Name(key), "[", i, "]"), expected, check, &values[i]);
    if (ok) *out = std::move(values);
    return ok;
  }

  bool OneOf(std::string_view key, std::initializer_list<std::string_view> choices,
             std::string* out) {
    std::vector<std::string> quoted;
    for (std::string_view c : choices) quoted.push_back(Quote(c));
    Check check = [&](const std::string& s) -> std::optional<std::string> {
      if (std::find(choices.begin(), choices.end(), s) == choices.end()) return std::nullopt;
      return s;
    };
    return String(key, absl::StrCat("one of ", absl::StrJoin(quoted, ", ")), check, out);
  }

  bool Duration(std::string_view key, absl::Duration* out) {
    const toml::node* n = Get(key);
    if (n == nullptr) return false;
    std::optional<absl::Duration> d;
    if (const auto* s = n->as_string()) d = ParseDuration(s->get());
    if (!d || *d <= absl::ZeroDuration()) {
      Bad(*n, Name(key), kDuration);
      return false;
    }
    *out = *d;
    return true;
  }

  const toml::table* Table(std::string_view key, std::string_view expected = "a table") {
    const toml::node* n = Get(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) Bad(*n, Name(key), expected);
    return n->as_table();
  }

  // The tables of an array of tables, with their indexes; other elements are reported.
  std::vector<std::pair<size_t, const toml::table*>> Tables(std::string_view key,
                                                            std::string_view element) {
    std::vector<std::pair<size_t, const toml::table*>> tables;
    const toml::node* n = Get(key);
    if (n == nullptr) return tables;
    const toml::array* a = n->as_array();
    if (a == nullptr) {
      Bad(*n, Name(key), "an array of tables");
      return tables;
    }
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      if (e.is_table())
        tables.emplace_back(i, e.as_table());
      else
        Bad(e, absl::StrCat(Name(key), "[", i, "]"), element);
    }
    return tables;
  }

 private:
  bool Element(const toml::node& n, std::string_view name, std::string_view expected,
               const Check& check, std::string* out) {
    const auto* s = n.as_string();
    std::optional<std::string> value = s ? check(s->get()) : std::nullopt;
    if (!value) {
      Bad(n, name, expected);
      return false;
    }
    *out = std::move(*value);
    return true;
  }

  Errors& errors_;
  const toml::table& table_;
  std::string self_;
  std::string where_;
  std::vector<std::string_view> known_;
};

// ---------------------------------------------------------------------------------------
// The document.

class Loader {
 public:
  Loader(Errors& errors, const std::string& path)
      : errors_(errors), base_dir_(std::filesystem::path(path).parent_path()) {}

  void Read(const toml::table& root, Config* cfg) {
    Fields f(errors_, root, "", "at the top level",
             {"server", "dpdk", "rrl", "metrics", "control", "health", "tsig", "pool", "zone"});
    if (const auto* t = f.Table("server", "a table ([server])")) ReadServer(*t, &cfg->server);
    if (const auto* t = f.Table("dpdk", "a table ([dpdk])")) ReadDpdk(*t, &cfg->dpdk);
    if (const auto* t = f.Table("rrl", "a table ([rrl])")) ReadRrl(*t, &cfg->rrl);
    if (const auto* t = f.Table("metrics", "a table ([metrics])")) ReadMetrics(*t, &cfg->metrics);
    if (const auto* t = f.Table("control", "a table ([control])")) ReadControl(*t, &cfg->control);
    if (const auto* t = f.Table("health", "a table ([health])"))
      ReadHealth(*t, "health", &cfg->health);
    for (auto [i, t] : f.Tables("tsig", "a [[tsig]] table"))
      ReadTsig(*t, i, &cfg->tsig.emplace_back());
    for (auto [i, t] : f.Tables("pool", "a [[pool]] table"))
      ReadPool(*t, i, &cfg->pools.emplace_back());
    for (auto [i, t] : f.Tables("zone", "a [[zone]] table"))
      ReadZone(*t, i, cfg->health, &cfg->zones.emplace_back());
    CheckMode(root, *cfg);
    CheckPooled(*cfg);
  }

 private:
  struct Seen {
    int line;
    std::string text;
  };

  void ReadServer(const toml::table& t, ServerConfig* s) {
    Fields f(errors_, t, "server", "in [server]",
             {"mode", "listen", "workers", "state_dir", "udp_max_payload", "udp_coalesce_us",
              "tcp_idle_timeout", "tcp_max_connections", "log_level", "identity", "version"});
    f.OneOf("mode", {"socket", "dpdk"}, &s->mode);
    f.Strings("listen", kEndpoint, EndpointCheck(std::nullopt), &s->listen);
    f.Int("workers", 1, 128, &s->workers);
    f.String("state_dir", kNonEmpty, NonEmpty, &s->state_dir);
    f.Int("udp_max_payload", 512, 65535, &s->udp_max_payload);
    f.Int("udp_coalesce_us", 0, 1000, &s->udp_coalesce_us);
    f.Duration("tcp_idle_timeout", &s->tcp_idle_timeout);
    f.Int("tcp_max_connections", 1, 1000000, &s->tcp_max_connections);
    f.OneOf("log_level", {"debug", "info", "warning", "error"}, &s->log_level);
    f.String("identity", kCharString, CharString, &s->identity);
    f.String("version", kCharString, CharString, &s->version);
  }

  void ReadDpdk(const toml::table& t, DpdkConfig* d) {
    Fields f(errors_, t, "dpdk", "in [dpdk]", {"eal_args", "address", "exception_iface"});
    f.Strings("eal_args", kNonEmpty, NonEmpty, &d->eal_args);
    f.Strings("address", kAddress, AddressCheck, &d->address);
    f.String("exception_iface", kIface, IfaceCheck, &d->exception_iface);
  }

  void ReadRrl(const toml::table& t, RrlConfig* r) {
    Fields f(errors_, t, "rrl", "in [rrl]", {"rate", "slip", "ipv4_prefix", "ipv6_prefix", "table_size"});
    r->line = f.line();
    f.Int("rate", 0, 1000000, &r->rate);
    f.Int("slip", 0, 100, &r->slip);
    f.Int("ipv4_prefix", 1, 32, &r->ipv4_prefix);
    f.Int("ipv6_prefix", 1, 128, &r->ipv6_prefix);
    f.Int("table_size", 1, 1 << 24, &r->table_size);
  }

  void ReadMetrics(const toml::table& t, MetricsConfig* m) {
    Fields f(errors_, t, "metrics", "in [metrics]", {"listen"});
    f.String("listen", kEndpoint, OptionalEndpointCheck, &m->listen);
  }

  void ReadControl(const toml::table& t, ControlConfig* c) {
    Fields f(errors_, t, "control", "in [control]", {"socket"});
    f.String("socket", kSocketPath, SocketPathCheck, &c->socket);
  }

  // Overrides the fields of `h` (already holding the inherited values) that `t` sets.
  void ReadHealth(const toml::table& t, const std::string& self, HealthConfig* h) {
    std::string where = self == "health" ? "in [health]" : absl::StrCat("in ", self);
    Fields f(errors_, t, self, where, {"interval", "timeout", "rise", "fall", "overload", "hold"});
    f.Duration("interval", &h->interval);
    f.Duration("timeout", &h->timeout);
    f.Int("rise", 1, 100, &h->rise);
    f.Int("fall", 1, 100, &h->fall);
    f.Duration("overload", &h->overload);
    f.Duration("hold", &h->hold);
  }

  // An optional "health" table in `f`, inheriting from `parent`.
  std::optional<HealthConfig> ReadHealthOverride(Fields& f, const HealthConfig& parent) {
    const toml::table* t = f.Table("health");
    if (t == nullptr) return std::nullopt;
    HealthConfig h = parent;
    ReadHealth(*t, f.Name("health"), &h);
    return h;
  }

  void ReadTsig(const toml::table& t, size_t index, TsigKey* key) {
    Fields f(errors_, t, absl::StrCat("tsig[", index, "]"), "in [[tsig]]",
             {"name", "algorithm", "secret"});
    key->line = f.line();
    f.Require({"name", "algorithm", "secret"});
    if (f.String("name", kDomain, DomainCheck, &key->name))
      Unique(&tsig_names_, f, "name", key->name, "TSIG key");
    f.OneOf("algorithm",
            {"hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"},
            &key->algorithm);
    ReadSecret(f, &key->secret);
  }

  // The secret is never echoed in messages.
  void ReadSecret(Fields& f, std::string* secret) {
    const toml::node* n = f.Get("secret");
    if (n == nullptr) return;
    const auto* s = n->as_string();
    std::string decoded;
    if (s == nullptr || !absl::Base64Unescape(s->get(), &decoded) || decoded.empty()) {
      f.Fail("secret", "expected a non-empty base64 string (such as the output of tsig-keygen)");
      return;
    }
    *secret = std::move(decoded);
  }

  void ReadZone(const toml::table& t, size_t index, const HealthConfig& health, ZoneConfig* z) {
    Fields f(errors_, t, absl::StrCat("zone[", index, "]"), "in [[zone]]",
             {"name", "file", "notify", "allow_transfer", "sources", "pooled", "health",
              "refresh_min", "refresh_max", "retry_min", "retry_max", "expire_min", "expire_max",
              "transfer_timeout", "max_transfer_size", "notify_allow"});
    z->line = f.line();
    f.Require({"name"});
    if (f.String("name", kDomain, DomainCheck, &z->name))
      Unique(&zone_names_, f, "name", z->name, "zone");
    if (f.String("file", kNonEmpty, NonEmpty, &z->file)) z->file = Resolve(z->file);
    f.Strings("notify", kEndpoint53, EndpointCheck(53), &z->notify);
    f.Strings("allow_transfer", kPrefix, PrefixCheck, &z->allow_transfer);
    z->health = ReadHealthOverride(f, health);
    f.Duration("refresh_min", &z->refresh_min);
    f.Duration("refresh_max", &z->refresh_max);
    f.Duration("retry_min", &z->retry_min);
    f.Duration("retry_max", &z->retry_max);
    f.Duration("expire_min", &z->expire_min);
    f.Duration("expire_max", &z->expire_max);
    f.Duration("transfer_timeout", &z->transfer_timeout);
    f.Int("max_transfer_size", 512, int64_t{1} << 40, &z->max_transfer_size);
    f.Strings("notify_allow", kPrefix, PrefixCheck, &z->notify_allow);
    ReadSources(f, z->health.value_or(health), z);
    ReadPooled(f, z);
    CheckZoneKind(f);
  }

  void CheckZoneKind(Fields& f) {
    bool file = f.Get("file") != nullptr;
    bool sources = f.Get("sources") != nullptr;
    if (file && sources) {
      errors_.Add(f.line(), absl::StrCat(f.self(),
                                         ": sets both 'file' and 'sources'; a zone is either "
                                         "served from a local file or pulled from sources"));
    } else if (!file && !sources) {
      errors_.Add(f.line(), absl::StrCat(f.self(),
                                         ": needs 'file' (a zone served from a local file) or "
                                         "'sources' (a zone pulled from upstream servers)"));
    }
  }

  void ReadSources(Fields& zf, const HealthConfig& health, ZoneConfig* z) {
    const toml::node* n = zf.Get("sources");
    if (n != nullptr && n->is_array() && n->as_array()->empty())
      zf.Fail("sources", "expected at least one source");
    std::map<std::string, Seen> names;
    for (auto [i, t] : zf.Tables("sources", kSourceTable)) {
      Fields f(errors_, *t, absl::StrCat(zf.Name("sources"), "[", i, "]"),
               absl::StrCat("in ", zf.Name("sources"), "[", i, "]"),
               {"name", "address", "tsig", "health"});
      ReadSource(f, health, &names, &z->sources.emplace_back());
    }
  }

  void ReadSource(Fields& f, const HealthConfig& health, std::map<std::string, Seen>* names,
                  SourceConfig* s) {
    s->line = f.line();
    f.Require({"name", "address"});
    if (f.String("name", kNonEmpty, NonEmpty, &s->name))
      Unique(names, f, "name", s->name, "source", s->name);
    f.String("address", kEndpoint53, EndpointCheck(53), &s->address);
    if (f.String("tsig", "the name of a [[tsig]] key", NonEmpty, &s->tsig)) {
      auto canonical = CanonicalName(s->tsig);
      auto it = canonical ? tsig_names_.find(*canonical) : tsig_names_.end();
      if (it == tsig_names_.end())
        f.Fail("tsig", absl::StrCat("no [[tsig]] key named '", s->tsig, "'"));
      else
        s->tsig = it->second.text;  // as spelled in [[tsig]], so lookups can be exact
    }
    s->health = ReadHealthOverride(f, health);
  }

  void ReadPooled(Fields& zf, ZoneConfig* z) {
    for (auto [i, t] : zf.Tables("pooled", kPooledTable)) {
      std::string self = absl::StrCat(zf.Name("pooled"), "[", i, "]");
      Fields f(errors_, *t, self, absl::StrCat("in ", self), {"name", "pool", "ttl"});
      PooledName& p = z->pooled.emplace_back();
      p.line = f.line();
      f.Require({"name", "pool"});
      f.String("name", kOwner, OwnerCheck, &p.name);
      f.String("pool", kNonEmpty, NonEmpty, &p.pool);
      f.Int("ttl", 0, 2147483647, &p.ttl);
    }
  }

  void ReadPool(const toml::table& t, size_t index, PoolConfig* p) {
    Fields f(errors_, t, absl::StrCat("pool[", index, "]"), "in [[pool]]",
             {"name", "policy", "max_answers", "check", "members"});
    p->line = f.line();
    f.Require({"name", "members"});
    if (f.String("name", kNonEmpty, NonEmpty, &p->name)) Unique(&pool_names_, f, "name", p->name, "pool", p->name);
    f.OneOf("policy", {"all-healthy", "failover", "weighted"}, &p->policy);
    f.Int("max_answers", 1, 64, &p->max_answers);
    if (const toml::table* c = f.Table("check")) ReadCheck(*c, f.Name("check"), &p->check);
    const toml::node* n = f.Get("members");
    if (n != nullptr && n->is_array() && n->as_array()->empty()) f.Fail("members", "expected at least one member");
    for (auto [i, m] : f.Tables("members", R"(a table such as { address = "192.0.2.10", weight = 1 })")) {
      Fields mf(errors_, *m, absl::StrCat(f.Name("members"), "[", i, "]"),
                absl::StrCat("in ", f.Name("members"), "[", i, "]"), {"address", "weight", "name"});
      PoolMember& member = p->members.emplace_back();
      member.line = mf.line();
      mf.Require({"address"});
      mf.String("address", R"(an IP address such as "192.0.2.10" or "2001:db8::10")", PlainAddressCheck, &member.address);
      mf.Int("weight", 0, 1000000, &member.weight);
      member.name = member.address;
      mf.String("name", kNonEmpty, NonEmpty, &member.name);
    }
  }

  void ReadCheck(const toml::table& t, const std::string& self, PoolCheck* c) {
    Fields f(errors_, t, self, absl::StrCat("in ", self),
             {"kind", "port", "path", "host", "expect", "body", "query", "query_type", "rcode",
              "interval", "timeout", "rise", "fall", "ca_file"});
    f.Require({"kind"});
    f.OneOf("kind", {"tcp", "http", "https", "dns"}, &c->kind);
    f.Int("port", 1, 65535, &c->port);
    f.String("path", kNonEmpty, NonEmpty, &c->path);
    f.String("host", kNonEmpty, NonEmpty, &c->host);
    f.String("body", kNonEmpty, NonEmpty, &c->body);
    f.String("query", kDomain, DomainCheck, &c->query);
    f.OneOf("query_type", {"SOA", "A", "AAAA", "NS", "TXT", "MX"}, &c->query_type);
    f.OneOf("rcode", {"NOERROR", "NXDOMAIN", "REFUSED", "SERVFAIL"}, &c->rcode);
    f.Duration("interval", &c->interval);
    f.Duration("timeout", &c->timeout);
    f.Int("rise", 1, 100, &c->rise);
    f.Int("fall", 1, 100, &c->fall);
    f.String("ca_file", kNonEmpty, NonEmpty, &c->ca_file);
    if (const toml::node* e = f.Get("expect")) {
      const toml::array* a = e->as_array();
      std::vector<int> codes;
      for (size_t i = 0; a != nullptr && i < a->size(); ++i) {
        const auto* v = a->get(i)->as_integer();
        if (v == nullptr || v->get() < 100 || v->get() > 599) {
          f.Bad(*a->get(i), absl::StrCat(f.Name("expect"), "[", i, "]"), "an HTTP status code from 100 to 599");
          codes.clear();
          break;
        }
        codes.push_back(static_cast<int>(v->get()));
      }
      if (a == nullptr || a->empty()) f.Bad(*e, f.Name("expect"), "a non-empty array of HTTP status codes");
      else if (!codes.empty()) c->expect = codes;
    }
    if (c->port == 0) c->port = c->kind == "http" ? 80 : c->kind == "https" ? 443 : c->kind == "dns" ? 53 : 0;
    if (c->kind == "tcp" && f.Get("port") == nullptr) f.Fail("kind", "a tcp check needs a 'port'");
  }

  // Every pooled name refers to a pool that exists.
  void CheckPooled(const Config& cfg) {
    for (const auto& z : cfg.zones)
      for (const auto& p : z.pooled) {
        bool found = false;
        for (const auto& pool : cfg.pools) found |= pool.name == p.pool;
        if (!found && !p.pool.empty())
          errors_.Add(p.line, absl::StrCat("zone ", z.name, ": pooled name '", p.name, "' refers to no [[pool]] named '", p.pool, "'"));
      }
  }

  void CheckMode(const toml::table& root, const Config& cfg) {
    if (cfg.server.mode == "socket" && cfg.server.listen.empty()) {
      const toml::node* listen = root.at_path("server.listen").node();
      errors_.Add(listen ? LineOf(*listen) : 1,
                  "server.listen: socket mode needs at least one address to listen on");
    }
    if (cfg.server.mode != "dpdk" || !cfg.dpdk.eal_args.empty()) return;
    const toml::node* eal = root.at_path("dpdk.eal_args").node();
    const toml::node* mode = root.at_path("server.mode").node();
    if (eal == nullptr) {
      errors_.Add(mode ? LineOf(*mode) : 1,
                  R"(server.mode: "dpdk" needs [dpdk] eal_args (the DPDK EAL arguments))");
    } else if (eal->is_array() &&
               eal->as_array()->empty()) {  // other mistakes are reported already
      errors_.Add(LineOf(*eal), R"(dpdk.eal_args: must not be empty when server.mode is "dpdk")");
    }
  }

  // Records the DNS name `text` found at key `key` of `f`; reports a repeat, naming both
  // lines. Names compare as DNS names unless `exact` is given (then it is the map key).
  void Unique(std::map<std::string, Seen>* seen, Fields& f, std::string_view key,
              const std::string& text, std::string_view what,
              std::optional<std::string> exact = std::nullopt) {
    std::optional<std::string> id = exact ? exact : CanonicalName(text);
    if (!id) return;
    int line = LineOf(*f.Get(key));
    auto [it, inserted] = seen->emplace(*id, Seen{line, text});
    if (inserted) return;
    errors_.Add(line,
                absl::StrCat(f.Name(key), ": ", A(what), " '", text, "' is defined twice (lines ",
                             it->second.line, " and ", line, ")"));
  }

  std::string Resolve(const std::string& file) const {
    std::filesystem::path p(file);
    if (p.is_absolute() || base_dir_.empty()) return file;
    return (base_dir_ / p).string();
  }

  Errors& errors_;
  std::filesystem::path base_dir_;
  std::map<std::string, Seen> tsig_names_;  // canonical name -> where and as written
  std::map<std::string, Seen> zone_names_;
  std::map<std::string, Seen> pool_names_;
};

absl::Status CannotRead(const std::string& path, int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(path, ": cannot read: ", std::strerror(err)));
}

absl::Status ReadWholeFile(const std::string& path, std::string* out) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return CannotRead(path, errno);
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err != 0) return CannotRead(path, err);
  return absl::OkStatus();
}

}  // namespace

std::optional<absl::Duration> ParseDuration(const std::string& text) {
  // absl accepts sequences such as "1h30m" and "1.5s" with units ns, us, ms, s, m, h; it
  // also accepts a sign, a bare "0" and "inf", which a config should not.
  if (text.empty() || text == "0" || text == "inf" || text.front() == '+' || text.front() == '-')
    return std::nullopt;
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d == absl::InfiniteDuration()) return std::nullopt;
  return d;
}

absl::StatusOr<Config> LoadConfigText(const std::string& text, const std::string& path) {
  Errors errors(path);
  toml::table root;
  try {
    root = toml::parse(std::string_view(text), std::string_view(path));
  } catch (const toml::parse_error& e) {  // the packaged toml++ is built with exceptions
    errors.Add(static_cast<int>(e.source().begin.line), std::string(e.description()));
    return errors.ToStatus();
  }
  Config cfg;
  cfg.path = path;
  Loader(errors, path).Read(root, &cfg);
  if (!errors.empty()) return errors.ToStatus();
  return cfg;
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  std::string text;
  if (absl::Status s = ReadWholeFile(path, &text); !s.ok()) return s;
  return LoadConfigText(text, path);
}

}  // namespace tandem::config
