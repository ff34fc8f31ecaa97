// The configuration schema (DESIGN.md "Config") as plain structs, and its loader.
// The loader validates everything before anything is used and reports every error at
// once, one per line, as "FILE:LINE: message".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tandem::config {

struct ServerConfig {
  std::string mode = "socket";                       // "socket" or "dpdk"
  std::vector<std::string> listen = {"127.0.0.1:5353"};  // "ADDR:PORT", IPv6 as "[::1]:5353"
  int workers = 1;
  std::string state_dir = "/var/lib/tandem";
  int udp_max_payload = 1232;            // cap on the client's EDNS UDP size, 512..65535
  int udp_coalesce_us = 50;              // socket mode: wait after a small receive, 0..1000 µs
  absl::Duration tcp_idle_timeout = absl::Seconds(10);
  int tcp_max_connections = 1024;
  std::string log_level = "info";        // "debug", "info", "warning", "error"
  // CHAOS TXT answers to id.server/hostname.bind and version.bind/version.server; empty
  // (the default): not told, REFUSED. At most 255 octets each.
  std::string identity;
  std::string version;
};

struct DpdkConfig {
  std::vector<std::string> eal_args;
  std::vector<std::string> address;
  std::string exception_iface = "tandem0";
};

// Response rate limiting of UDP answers (dataplane/rrl.h); rate 0 turns it off.
struct RrlConfig {
  int rate = 0;           // answers per second per client prefix and kind of answer
  int slip = 2;           // every slip-th limited answer is sent truncated; 0: none
  int ipv4_prefix = 24;
  int ipv6_prefix = 56;
  int table_size = 65536;  // buckets per worker
  int line = 0;
};

struct MetricsConfig {
  std::string listen;  // empty: no metrics endpoint
};

struct ControlConfig {
  std::string socket;  // empty: no control socket
};

struct HealthConfig {
  absl::Duration interval = absl::Seconds(1);
  absl::Duration timeout = absl::Milliseconds(500);
  int rise = 3;
  int fall = 3;
  absl::Duration overload = absl::Milliseconds(250);
  // Failover: after a swap, the zone stays on its new copy at least this long unless that
  // copy's source goes DOWN (against flapping). Used at the zone level.
  absl::Duration hold = absl::Seconds(5);
};

struct TsigKey {
  std::string name;
  std::string algorithm;  // "hmac-sha256", "hmac-sha512", ...
  std::string secret;     // decoded bytes
  int line = 0;
};

struct SourceConfig {
  std::string name;
  std::string address;  // "ADDR:PORT"
  std::string tsig;     // key name, empty for none
  std::optional<HealthConfig> health;  // per-source override
  int line = 0;
};

// A health check of pool members (issue "Load balancing"): tcp connect, http(s) status and
// body, or a DNS query and its rcode; no check: members are always up.
struct PoolCheck {
  std::string kind;  // "", "tcp", "http", "https", "dns"
  int port = 0;      // default per kind: 80, 443, 53; tcp needs one
  std::string path = "/";
  std::string host;  // http(s) Host header; empty: the member address
  std::vector<int> expect = {200};
  std::string body;  // http(s): must contain this
  std::string query = ".";   // dns: name, type, expected rcode
  std::string query_type = "SOA";
  std::string rcode = "NOERROR";
  absl::Duration interval = absl::Seconds(2);
  absl::Duration timeout = absl::Seconds(1);
  int rise = 2;
  int fall = 2;
  std::string ca_file;  // https: trust anchors beyond the system's
};

struct PoolMember {
  std::string address;  // an IPv4 or IPv6 address
  int weight = 1;
  std::string name;     // for metrics and tandemctl; default: the address
  int line = 0;
};

struct PoolConfig {
  std::string name;
  std::string policy = "all-healthy";  // "all-healthy", "failover", "weighted"
  int max_answers = 8;
  PoolCheck check;
  std::vector<PoolMember> members;
  int line = 0;
};

struct PooledName {
  std::string name;  // owner relative to the zone
  std::string pool;
  uint32_t ttl = 30;
  int line = 0;
};

struct ZoneConfig {
  std::string name;                      // as written, e.g. "example.com"
  std::string file;                      // resolved against the config file's directory
  std::vector<std::string> notify;       // "ADDR:PORT"
  std::vector<std::string> allow_transfer;  // CIDR prefixes
  std::vector<SourceConfig> sources;
  std::vector<PooledName> pooled;
  std::optional<HealthConfig> health;    // per-zone override of [health]
  // Pulled zones: the SOA timers are clamped to these (as Knot DNS's refresh-min-interval
  // and friends), NOTIFY is also taken from notify_allow, and a transfer larger than
  // max_transfer_size bytes is refused.
  absl::Duration refresh_min = absl::Seconds(2);
  absl::Duration refresh_max = absl::Hours(24);
  absl::Duration retry_min = absl::Seconds(2);
  absl::Duration retry_max = absl::Hours(24);
  absl::Duration expire_min = absl::Seconds(3);
  absl::Duration expire_max = absl::Hours(24 * 14);
  absl::Duration transfer_timeout = absl::Seconds(10);
  int64_t max_transfer_size = int64_t{1} << 30;
  std::vector<std::string> notify_allow;  // prefixes, besides the sources' addresses
  int line = 0;                          // line of the [[zone]] header
};

struct Config {
  std::string path;  // the file this was read from
  ServerConfig server;
  DpdkConfig dpdk;
  RrlConfig rrl;
  MetricsConfig metrics;
  ControlConfig control;
  HealthConfig health;
  std::vector<TsigKey> tsig;
  std::vector<PoolConfig> pools;
  std::vector<ZoneConfig> zones;
};

// Reads and validates a config file. The error message lists every problem found, one
// per line, each "FILE:LINE: message".
absl::StatusOr<Config> LoadConfigFile(const std::string& path);

// The same for text already in memory; `path` names it in messages and anchors relative
// zone file paths.
absl::StatusOr<Config> LoadConfigText(const std::string& text, const std::string& path);

// Parses "500ms", "1s", "2m", "1h", "1h30m" etc.
std::optional<absl::Duration> ParseDuration(const std::string& text);

}  // namespace tandem::config
