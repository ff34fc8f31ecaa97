// Tests of the TOML config loader: values, defaults, and every class of error with its
// exact FILE:LINE.
#include "config/config.h"

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#ifndef TANDEM_SOURCE_DIR
#error "TANDEM_SOURCE_DIR must name the source tree (set by tests/config/meson.build)"
#endif

namespace tandem::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Joins lines so that lines[i] is line i + 1 of the document.
std::string Doc(std::initializer_list<const char*> lines) {
  return absl::StrJoin(lines, "\n") + "\n";
}

// The error lines of loading `text` as "tandem.toml"; empty if it loads.
std::vector<std::string> Errors(const std::string& text) {
  absl::StatusOr<Config> cfg = LoadConfigText(text, "tandem.toml");
  if (cfg.ok()) return {};
  EXPECT_EQ(cfg.status().code(), absl::StatusCode::kInvalidArgument);
  return absl::StrSplit(cfg.status().message(), '\n');
}

// A minimal valid zone, for documents that test something else.
constexpr const char* kZone = "[[zone]]";
constexpr const char* kZoneName = "name = \"example.org\"";
constexpr const char* kZoneFile = "file = \"example.org.zone\"";

// ----- values

TEST(ConfigLoad, EmptyDocumentGivesDefaults) {
  absl::StatusOr<Config> cfg = LoadConfigText("", "tandem.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->path, "tandem.toml");
  EXPECT_EQ(cfg->server.mode, "socket");
  EXPECT_THAT(cfg->server.listen, ElementsAre("127.0.0.1:5353"));
  EXPECT_EQ(cfg->server.workers, 1);
  EXPECT_EQ(cfg->server.state_dir, "/var/lib/tandem");
  EXPECT_EQ(cfg->server.udp_max_payload, 1232);
  EXPECT_EQ(cfg->server.udp_coalesce_us, 50);
  EXPECT_EQ(cfg->server.tcp_idle_timeout, absl::Seconds(10));
  EXPECT_EQ(cfg->server.tcp_max_connections, 1024);
  EXPECT_EQ(cfg->server.log_level, "info");
  EXPECT_EQ(cfg->dpdk.exception_iface, "tandem0");
  EXPECT_TRUE(cfg->metrics.listen.empty());
  EXPECT_TRUE(cfg->control.socket.empty());
  EXPECT_EQ(cfg->health.interval, absl::Seconds(1));
  EXPECT_EQ(cfg->health.timeout, absl::Milliseconds(500));
  EXPECT_EQ(cfg->health.overload, absl::Milliseconds(250));
  EXPECT_EQ(cfg->health.rise, 3);
  EXPECT_EQ(cfg->health.fall, 3);
  EXPECT_TRUE(cfg->tsig.empty());
  EXPECT_TRUE(cfg->zones.empty());
}

const std::string kFull = Doc({
    "[server]",                                                                     // 1
    "mode = \"dpdk\"",                                                              // 2
    "listen = [\"127.0.0.1:53\", \"[::1]:53\"]",                                    // 3
    "workers = 4",                                                                  // 4
    "state_dir = \"/srv/tandem\"",                                                  // 5
    "udp_max_payload = 4096",                                                       // 6
    "tcp_idle_timeout = \"1m30s\"",                                                 // 7
    "tcp_max_connections = 500",                                                    // 8
    "log_level = \"debug\"",                                                        // 9
    "[dpdk]",                                                                       // 10
    "eal_args = [\"--no-huge\", \"-m\", \"512\"]",                                  // 11
    "address = [\"198.18.0.1\", \"2001:db8::53\"]",                                 // 12
    "exception_iface = \"dns0\"",                                                   // 13
    "[metrics]",                                                                    // 14
    "listen = \"127.0.0.1:9153\"",                                                  // 15
    "[control]",                                                                    // 16
    "socket = \"/run/tandem.sock\"",                                                // 17
    "[health]",                                                                     // 18
    "interval = \"2s\"",                                                            // 19
    "timeout = \"750ms\"",                                                          // 20
    "rise = 5",                                                                     // 21
    "fall = 2",                                                                     // 22
    "overload = \"300ms\"",                                                         // 23
    "[[tsig]]",                                                                     // 24
    "name = \"xfr-key\"",                                                           // 25
    "algorithm = \"hmac-sha512\"",                                                  // 26
    "secret = \"c2VjcmV0\"",                                                        // 27
    "[[zone]]",                                                                     // 28
    "name = \"example.org\"",                                                       // 29
    "file = \"zones/example.org.zone\"",                                            // 30
    "notify = [\"192.0.2.7\", \"[2001:db8::7]:5300\"]",                             // 31
    "allow_transfer = [\"127.0.0.0/8\", \"2001:db8::/32\"]",                        // 32
    "[[zone]]",                                                                     // 33
    "name = \"example.com.\"",                                                      // 34
    "health = { timeout = \"1s\" }",                                                // 35
    "sources = [",                                                                  // 36
    "  { name = \"primary\", address = \"192.0.2.1:53\", tsig = \"XFR-KEY.\" },",   // 37
    "  { name = \"secondary\", address = \"192.0.2.2\", health = { rise = 1 } },",  // 38
    "]",                                                                            // 39
    "[[zone]]",                                                                     // 40
    "name = \"abs.example\"",                                                       // 41
    "file = \"/var/zones/abs.zone\"",                                               // 42
});

TEST(ConfigLoad, FullConfigRoundTrips) {
  absl::StatusOr<Config> cfg = LoadConfigText(kFull, "/etc/tandem/tandem.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const ServerConfig& s = cfg->server;
  EXPECT_EQ(s.mode, "dpdk");
  EXPECT_THAT(s.listen, ElementsAre("127.0.0.1:53", "[::1]:53"));
  EXPECT_EQ(s.workers, 4);
  EXPECT_EQ(s.state_dir, "/srv/tandem");
  EXPECT_EQ(s.udp_max_payload, 4096);
  EXPECT_EQ(s.tcp_idle_timeout, absl::Seconds(90));
  EXPECT_EQ(s.tcp_max_connections, 500);
  EXPECT_EQ(s.log_level, "debug");
  EXPECT_THAT(cfg->dpdk.eal_args, ElementsAre("--no-huge", "-m", "512"));
  EXPECT_THAT(cfg->dpdk.address, ElementsAre("198.18.0.1", "2001:db8::53"));
  EXPECT_EQ(cfg->dpdk.exception_iface, "dns0");
  EXPECT_EQ(cfg->metrics.listen, "127.0.0.1:9153");
  EXPECT_EQ(cfg->control.socket, "/run/tandem.sock");

  const HealthConfig& h = cfg->health;
  EXPECT_EQ(h.interval, absl::Seconds(2));
  EXPECT_EQ(h.timeout, absl::Milliseconds(750));
  EXPECT_EQ(h.rise, 5);
  EXPECT_EQ(h.fall, 2);
  EXPECT_EQ(h.overload, absl::Milliseconds(300));

  ASSERT_EQ(cfg->tsig.size(), 1u);
  EXPECT_EQ(cfg->tsig[0].name, "xfr-key");
  EXPECT_EQ(cfg->tsig[0].algorithm, "hmac-sha512");
  EXPECT_EQ(cfg->tsig[0].secret, "secret");  // decoded
  EXPECT_EQ(cfg->tsig[0].line, 24);

  ASSERT_EQ(cfg->zones.size(), 3u);
  const ZoneConfig& local = cfg->zones[0];
  EXPECT_EQ(local.name, "example.org");
  EXPECT_EQ(local.file, "/etc/tandem/zones/example.org.zone");
  EXPECT_THAT(local.notify, ElementsAre("192.0.2.7:53", "[2001:db8::7]:5300"));
  EXPECT_THAT(local.allow_transfer, ElementsAre("127.0.0.0/8", "2001:db8::/32"));
  EXPECT_TRUE(local.sources.empty());
  EXPECT_FALSE(local.health.has_value());
  EXPECT_EQ(local.line, 28);

  const ZoneConfig& pulled = cfg->zones[1];
  EXPECT_EQ(pulled.name, "example.com.");
  EXPECT_TRUE(pulled.file.empty());
  EXPECT_EQ(pulled.line, 33);
  ASSERT_TRUE(pulled.health.has_value());
  EXPECT_EQ(pulled.health->timeout, absl::Seconds(1));   // overridden
  EXPECT_EQ(pulled.health->interval, absl::Seconds(2));  // inherited from [health]
  EXPECT_EQ(pulled.health->rise, 5);
  ASSERT_EQ(pulled.sources.size(), 2u);
  EXPECT_EQ(pulled.sources[0].name, "primary");
  EXPECT_EQ(pulled.sources[0].address, "192.0.2.1:53");
  EXPECT_EQ(pulled.sources[0].tsig, "xfr-key");  // as spelled in [[tsig]]
  EXPECT_FALSE(pulled.sources[0].health.has_value());
  EXPECT_EQ(pulled.sources[0].line, 37);
  EXPECT_EQ(pulled.sources[1].name, "secondary");
  EXPECT_EQ(pulled.sources[1].address, "192.0.2.2:53");  // default port
  EXPECT_TRUE(pulled.sources[1].tsig.empty());
  ASSERT_TRUE(pulled.sources[1].health.has_value());
  EXPECT_EQ(pulled.sources[1].health->rise, 1);                            // overridden
  EXPECT_EQ(pulled.sources[1].health->timeout, absl::Seconds(1));          // from the zone
  EXPECT_EQ(pulled.sources[1].health->overload, absl::Milliseconds(300));  // from [health]
  EXPECT_EQ(pulled.sources[1].line, 38);

  EXPECT_EQ(cfg->zones[2].file, "/var/zones/abs.zone");  // absolute paths stay
}

TEST(ConfigLoad, RelativeFileWithoutDirectoryStaysRelative) {
  absl::StatusOr<Config> cfg = LoadConfigText(Doc({kZone, kZoneName, kZoneFile}), "tandem.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->zones[0].file, "example.org.zone");
}

TEST(ConfigLoad, SourceTablesMayBeWrittenAsArrayOfTables) {
  absl::StatusOr<Config> cfg = LoadConfigText(Doc({
                                                  "[[zone]]",
                                                  "name = \"example.com\"",
                                                  "[[zone.sources]]",
                                                  "name = \"primary\"",
                                                  "address = \"192.0.2.1\"",
                                                  "[zone.sources.health]",
                                                  "fall = 7",
                                              }),
                                              "tandem.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  ASSERT_EQ(cfg->zones[0].sources.size(), 1u);
  EXPECT_EQ(cfg->zones[0].sources[0].line, 3);
  ASSERT_TRUE(cfg->zones[0].sources[0].health.has_value());
  EXPECT_EQ(cfg->zones[0].sources[0].health->fall, 7);
}

// ----- durations

TEST(ParseDuration, AcceptsUnitsAndSequences) {
  EXPECT_EQ(ParseDuration("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(ParseDuration("1s"), absl::Seconds(1));
  EXPECT_EQ(ParseDuration("2m"), absl::Minutes(2));
  EXPECT_EQ(ParseDuration("1h"), absl::Hours(1));
  EXPECT_EQ(ParseDuration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(ParseDuration("250us"), absl::Microseconds(250));
  EXPECT_EQ(ParseDuration("100ns"), absl::Nanoseconds(100));
  EXPECT_EQ(ParseDuration("1.5s"), absl::Milliseconds(1500));
  EXPECT_EQ(ParseDuration("0s"), absl::ZeroDuration());
}

TEST(ParseDuration, RejectsBareNumbersAndJunk) {
  for (const char* bad : {"", "5", "0", "1.5", "s", "1x", "1 s", " 1s", "1s ", "-1s", "+1s", "inf",
                          "-inf", "1h30", "ms", "1d"}) {
    EXPECT_FALSE(ParseDuration(bad).has_value()) << "'" << bad << "'";
  }
}

TEST(ConfigErrors, DurationsMustBeStringsAboveZero) {
  EXPECT_THAT(
      Errors(Doc({"[health]", "interval = 5", "timeout = \"0s\"", "overload = \"fast\""})),
      ElementsAre(
          R"(tandem.toml:2: health.interval: expected a duration greater than zero such as "500ms", "1s" or "1h30m", got 5)",
          R"(tandem.toml:3: health.timeout: expected a duration greater than zero such as "500ms", "1s" or "1h30m", got "0s")",
          R"(tandem.toml:4: health.overload: expected a duration greater than zero such as "500ms", "1s" or "1h30m", got "fast")"));
}

// ----- syntax, types, ranges

TEST(ConfigErrors, SyntaxErrorHasFileAndLine) {
  std::vector<std::string> errors = Errors(Doc({"[server]", "workers = 2", "mode = = \"socket\""}));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], ::testing::StartsWith("tandem.toml:3: "));
}

TEST(ConfigErrors, SyntaxErrorDuplicateKey) {
  std::vector<std::string> errors = Errors(Doc({"[server]", "workers = 2", "", "workers = 3"}));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], ::testing::StartsWith("tandem.toml:4: "));
}

TEST(ConfigErrors, WrongTypeNamesKeyAndValue) {
  EXPECT_THAT(
      Errors(Doc({"# tandem", "", "[server]", "mode = \"socket\"", "listen = [\"127.0.0.1:53\"]",
                  "", "workers = \"two\""})),
      ElementsAre(
          R"(tandem.toml:7: server.workers: expected an integer from 1 to 128, got "two")"));
}

TEST(ConfigLoad, UdpCoalesceFromZeroToAMillisecond) {
  auto off = LoadConfigText(Doc({"[server]", "udp_coalesce_us = 0"}), "tandem.toml");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->server.udp_coalesce_us, 0);
  auto most = LoadConfigText(Doc({"[server]", "udp_coalesce_us = 1000"}), "tandem.toml");
  ASSERT_TRUE(most.ok()) << most.status();
  EXPECT_EQ(most->server.udp_coalesce_us, 1000);
  EXPECT_THAT(Errors(Doc({"[server]", "udp_coalesce_us = 1001"})),
              ElementsAre("tandem.toml:2: server.udp_coalesce_us: expected an integer from 0 to 1000, got 1001"));
  EXPECT_THAT(Errors(Doc({"[server]", "udp_coalesce_us = -1"})),
              ElementsAre("tandem.toml:2: server.udp_coalesce_us: expected an integer from 0 to 1000, got -1"));
}

TEST(ConfigErrors, RangesAndChoices) {
  EXPECT_THAT(
      Errors(Doc({
          "[server]",
          "workers = 0",
          "udp_max_payload = 100",
          "tcp_max_connections = 1000001",
          "mode = \"kernel\"",
          "log_level = \"verbose\"",
          "state_dir = \"\"",
          "[health]",
          "rise = 101",
          "fall = 1.5",
      })),
      ElementsAre(
          "tandem.toml:2: server.workers: expected an integer from 1 to 128, got 0",
          "tandem.toml:3: server.udp_max_payload: expected an integer from 512 to 65535, got 100",
          "tandem.toml:4: server.tcp_max_connections: expected an integer from 1 to 1000000, got "
          "1000001",
          R"(tandem.toml:5: server.mode: expected one of "socket", "dpdk", got "kernel")",
          R"(tandem.toml:6: server.log_level: expected one of "debug", "info", "warning", "error", got "verbose")",
          R"(tandem.toml:7: server.state_dir: expected a non-empty string, got "")",
          "tandem.toml:9: health.rise: expected an integer from 1 to 100, got 101",
          "tandem.toml:10: health.fall: expected an integer from 1 to 100, got 1.5"));
}

TEST(ConfigErrors, TablesOfTheWrongKind) {
  EXPECT_THAT(Errors(Doc({"server = 5", "[zone]", "name = \"example.org\""})),
              ElementsAre("tandem.toml:1: server: expected a table ([server]), got 5",
                          "tandem.toml:2: zone: expected an array of tables, got a table"));
}

// ----- unknown keys

TEST(ConfigErrors, UnknownKeysEverywhere) {
  EXPECT_THAT(
      Errors(Doc({
          "colour = \"blue\"",                                                    // 1
          "[server]",                                                             // 2
          "wokers = 2",                                                           // 3
          "[health]",                                                             // 4
          "retries = 3",                                                          // 5
          "[[zone]]",                                                             // 6
          "name = \"example.com\"",                                               // 7
          "master = \"192.0.2.1\"",                                               // 8
          "sources = [",                                                          // 9
          "  { name = \"a\", address = \"192.0.2.1\", key = \"k\" },",            // 10
          "  { name = \"b\", address = \"192.0.2.2\", health = { rize = 2 } },",  // 11
          "]",                                                                    // 12
          "[[pool]]",                                                             // 13
          "name = \"web\"",                                                       // 14
      })),
      ElementsAre(
          "tandem.toml:1: unknown key 'colour' at the top level",
          "tandem.toml:3: unknown key 'wokers' in [server] (did you mean 'workers'?)",
          "tandem.toml:5: unknown key 'retries' in [health]",
          "tandem.toml:8: unknown key 'master' in [[zone]]",
          "tandem.toml:10: unknown key 'key' in zone[0].sources[0]",
          "tandem.toml:11: unknown key 'rize' in zone[0].sources[1].health (did you mean 'rise'?)",
          "tandem.toml:13: pool[0]: missing required key 'members'"));
}

// ----- required keys

TEST(ConfigErrors, MissingRequiredKeysUseTheTableLine) {
  EXPECT_THAT(Errors(Doc({
                  "[[tsig]]",                   // 1
                  "name = \"k\"",               // 2
                  "",                           // 3
                  "[[zone]]",                   // 4
                  "file = \"x.zone\"",          // 5
                  "[[zone]]",                   // 6
                  "name = \"example.com\"",     // 7
                  "sources = [",                // 8
                  "  { name = \"primary\" },",  // 9
                  "]",                          // 10
              })),
              ElementsAre("tandem.toml:1: tsig[0]: missing required key 'algorithm'",
                          "tandem.toml:1: tsig[0]: missing required key 'secret'",
                          "tandem.toml:4: zone[0]: missing required key 'name'",
                          "tandem.toml:9: zone[1].sources[0]: missing required key 'address'"));
}

// ----- addresses and names

TEST(ConfigErrors, AddressesAndPrefixes) {
  EXPECT_THAT(
      Errors(Doc({
          "[server]",                                                // 1
          "listen = [\"127.0.0.1:53\", \"127.0.0.1\", \"::1:53\"]",  // 2
          "[dpdk]",                                                  // 3
          "address = [\"198.18.0.1:53\"]",                           // 4
          "exception_iface = \"a-very-long-interface\"",             // 5
          "[metrics]",                                               // 6
          "listen = \"localhost:9153\"",                             // 7
          "[[zone]]",                                                // 8
          "name = \"example.org\"",                                  // 9
          "file = \"z\"",                                            // 10
          "notify = [",                                              // 11
          "  \"192.0.2.1\",",                                        // 12
          "  \"192.0.2.1:99999\",",                                  // 13
          "]",                                                       // 14
          "allow_transfer = [\"10.0.0.0/33\", 10]",                  // 15
      })),
      ElementsAre(
          R"(tandem.toml:2: server.listen[1]: expected an address and port such as "127.0.0.1:53" or "[::1]:53", got "127.0.0.1")",
          R"(tandem.toml:2: server.listen[2]: expected an address and port such as "127.0.0.1:53" or "[::1]:53", got "::1:53")",
          R"(tandem.toml:4: dpdk.address[0]: expected an IP address without a port, with an optional prefix length, such as "198.18.0.1/24", got "198.18.0.1:53")",
          R"(tandem.toml:5: dpdk.exception_iface: expected an interface name of 1 to 15 characters, got "a-very-long-interface")",
          R"(tandem.toml:7: metrics.listen: expected an address and port such as "127.0.0.1:53" or "[::1]:53", got "localhost:9153")",
          R"(tandem.toml:13: zone[0].notify[1]: expected an address with an optional port (default 53) such as "192.0.2.1" or "[2001:db8::1]:5300", got "192.0.2.1:99999")",
          R"(tandem.toml:15: zone[0].allow_transfer[0]: expected an address prefix such as "10.0.0.0/8" or "2001:db8::/32", got "10.0.0.0/33")",
          R"(tandem.toml:15: zone[0].allow_transfer[1]: expected an address prefix such as "10.0.0.0/8" or "2001:db8::/32", got 10)"));
}

TEST(ConfigErrors, RateLimiting) {
  EXPECT_THAT(Errors(Doc({
                  "[rrl]",              // 1
                  "rate = -1",          // 2
                  "slip = 101",         // 3
                  "ipv4_prefix = 33",   // 4
                  "ipv6_prefix = 0",    // 5
                  "table_size = \"big\"",  // 6
                  "burst = 5",          // 7
              })),
              ElementsAre(HasSubstr("tandem.toml:2: rrl.rate"), HasSubstr("tandem.toml:3: rrl.slip"),
                          HasSubstr("tandem.toml:4: rrl.ipv4_prefix"),
                          HasSubstr("tandem.toml:5: rrl.ipv6_prefix"),
                          HasSubstr("tandem.toml:6: rrl.table_size"),
                          HasSubstr("tandem.toml:7: unknown key 'burst' in [rrl]")));
  absl::StatusOr<Config> cfg = LoadConfigText("[rrl]\nrate = 20\nslip = 0\nipv6_prefix = 48\n", "t.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->rrl.rate, 20);
  EXPECT_EQ(cfg->rrl.slip, 0);
  EXPECT_EQ(cfg->rrl.ipv4_prefix, 24);
  EXPECT_EQ(cfg->rrl.ipv6_prefix, 48);
}

TEST(ConfigErrors, BadZoneNameAndLongSocketPath) {
  std::string long_path(120, 'x');
  EXPECT_THAT(
      Errors(Doc({"[control]", ("socket = \"/" + long_path + "\"").c_str(), kZone,
                  "name = \"a..b\"", kZoneFile})),
      ElementsAre(
          R"(tandem.toml:2: control.socket: expected a socket path of at most 107 bytes, got "/)" +
              long_path + "\"",
          R"(tandem.toml:4: zone[0].name: expected a domain name such as "example.com", got "a..b")"));
}

// ----- cross checks

TEST(ConfigErrors, DuplicateZoneNamesNameBothLines) {
  EXPECT_THAT(
      Errors(Doc({
          "[[zone]]",                 // 1
          "name = \"example.org\"",   // 2
          "file = \"a.zone\"",        // 3
          "[[zone]]",                 // 4
          "name = \"Example.ORG.\"",  // 5
          "file = \"b.zone\"",        // 6
      })),
      ElementsAre(
          "tandem.toml:5: zone[1].name: zone 'Example.ORG.' is defined twice (lines 2 and 5)"));
}

TEST(ConfigErrors, ZoneNeedsExactlyOneOfFileAndSources) {
  EXPECT_THAT(Errors(Doc({
                  "[[zone]]",                                                 // 1
                  "name = \"a.example\"",                                     // 2
                  "file = \"a.zone\"",                                        // 3
                  "sources = [ { name = \"p\", address = \"192.0.2.1\" } ]",  // 4
                  "[[zone]]",                                                 // 5
                  "name = \"b.example\"",                                     // 6
                  "[[zone]]",                                                 // 7
                  "name = \"c.example\"",                                     // 8
                  "sources = []",                                             // 9
              })),
              ElementsAre("tandem.toml:1: zone[0]: sets both 'file' and 'sources'; a zone is "
                          "either served from a local "
                          "file or pulled from sources",
                          "tandem.toml:5: zone[1]: needs 'file' (a zone served from a local file) "
                          "or 'sources' (a zone "
                          "pulled from upstream servers)",
                          "tandem.toml:9: zone[2].sources: expected at least one source"));
}

TEST(ConfigErrors, TsigKeysAndReferences) {
  EXPECT_THAT(
      Errors(Doc({
          "[[tsig]]",                                                     // 1
          "name = \"k1\"",                                                // 2
          "algorithm = \"hmac-sha256\"",                                  // 3
          "secret = \"c2VjcmV0\"",                                        // 4
          "[[tsig]]",                                                     // 5
          "name = \"K1.\"",                                               // 6
          "algorithm = \"hmac-sha3\"",                                    // 7
          "secret = \"not base64!\"",                                     // 8
          "[[zone]]",                                                     // 9
          "name = \"example.com\"",                                       // 10
          "sources = [",                                                  // 11
          "  { name = \"p\", address = \"192.0.2.1\", tsig = \"k1\" },",  // 12
          "  { name = \"s\", address = \"192.0.2.2\", tsig = \"k2\" },",  // 13
          "]",                                                            // 14
      })),
      ElementsAre("tandem.toml:6: tsig[1].name: TSIG key 'K1.' is defined twice (lines 2 and 6)",
                  "tandem.toml:7: tsig[1].algorithm: expected one of \"hmac-md5\", \"hmac-sha1\", "
                  "\"hmac-sha224\", "
                  "\"hmac-sha256\", \"hmac-sha384\", \"hmac-sha512\", got \"hmac-sha3\"",
                  "tandem.toml:8: tsig[1].secret: expected a non-empty base64 string (such as the "
                  "output of "
                  "tsig-keygen)",
                  "tandem.toml:13: zone[0].sources[1].tsig: no [[tsig]] key named 'k2'"));
}

TEST(ConfigErrors, DuplicateSourceNames) {
  EXPECT_THAT(
      Errors(Doc({
          "[[zone]]",                                                 // 1
          "name = \"example.com\"",                                   // 2
          "sources = [",                                              // 3
          "  { name = \"p\", address = \"192.0.2.1\" },",             // 4
          "  { name = \"s\", address = \"192.0.2.2\" },",             // 5
          "  { name = \"p\", address = \"192.0.2.3\" },",             // 6
          "]",                                                        // 7
          "[[zone]]",                                                 // 8
          "name = \"example.net\"",                                   // 9
          "sources = [ { name = \"p\", address = \"192.0.2.1\" } ]",  // 10: other zone, fine
      })),
      ElementsAre(
          "tandem.toml:6: zone[0].sources[2].name: source 'p' is defined twice (lines 4 and 6)"));
}

TEST(ConfigErrors, PooledNamesAndPools) {
  EXPECT_THAT(
      Errors(Doc({
          "[[pool]]",                                                     // 1
          "name = \"web\"",                                               // 2
          "policy = \"random\"",                                          // 3
          "check = { kind = \"tcp\" }",                                   // 4
          "members = [ { address = \"192.0.2.10\", weight = -1 } ]",      // 5
          "[[zone]]",                                                     // 6
          "name = \"example.org\"",                                       // 7
          "file = \"z\"",                                                 // 8
          "pooled = [",                                                   // 9
          "  { name = \"www\", pool = \"web\", ttl = 30 },",              // 10
          "  { name = \"api\", pool = \"api\", ttl = -1, weight = 2 },",  // 11
          "]",                                                            // 12
      })),
      ElementsAre("tandem.toml:3: pool[0].policy: expected one of \"all-healthy\", \"failover\", "
                  "\"weighted\", got \"random\"",
                  "tandem.toml:4: pool[0].check.kind: a tcp check needs a 'port'",
                  "tandem.toml:5: pool[0].members[0].weight: expected an integer from 0 to 1000000, got -1",
                  "tandem.toml:11: unknown key 'weight' in zone[0].pooled[1]",
                  "tandem.toml:11: zone[0].pooled[1].ttl: expected an integer from 0 to 2147483647, "
                  "got -1",
                  "tandem.toml:11: zone example.org: pooled name 'api' refers to no [[pool]] named 'api'"));
}

TEST(ConfigErrors, ModeRequirements) {
  EXPECT_THAT(
      Errors(Doc({"[server]", "mode = \"dpdk\""})),
      ElementsAre(
          R"(tandem.toml:2: server.mode: "dpdk" needs [dpdk] eal_args (the DPDK EAL arguments))"));
  EXPECT_THAT(
      Errors(Doc({"[server]", "mode = \"dpdk\"", "[dpdk]", "eal_args = []"})),
      ElementsAre(R"(tandem.toml:4: dpdk.eal_args: must not be empty when server.mode is "dpdk")"));
  EXPECT_THAT(
      Errors(Doc({"[server]", "mode = \"socket\"", "listen = []"})),
      ElementsAre(
          "tandem.toml:3: server.listen: socket mode needs at least one address to listen on"));
  // A bad element is reported once, not again as "empty".
  EXPECT_THAT(Errors(Doc({"[server]", "mode = \"dpdk\"", "[dpdk]", "eal_args = [1]"})),
              ElementsAre("tandem.toml:4: dpdk.eal_args[0]: expected a non-empty string, got 1"));
  // dpdk mode does not need listen addresses.
  EXPECT_THAT(Errors(Doc({"[server]", "mode = \"dpdk\"", "listen = []", "[dpdk]",
                          "eal_args = [\"--no-pci\"]"})),
              ElementsAre());
}

TEST(ConfigErrors, EveryErrorIsReportedInLineOrder) {
  EXPECT_THAT(
      Errors(Doc({
          "[[zone]]",                // 1
          "name = \"example.org\"",  // 2
          "file = \"z\"",            // 3
          "[server]",                // 4
          "workers = 0",             // 5
          "bogus = 1",               // 6
          "[health]",                // 7
          "interval = \"1\"",        // 8
          "[[zone]]",                // 9
          "name = \"example.org\"",  // 10
      })),
      ElementsAre(
          "tandem.toml:5: server.workers: expected an integer from 1 to 128, got 0",
          "tandem.toml:6: unknown key 'bogus' in [server]",
          R"(tandem.toml:8: health.interval: expected a duration greater than zero such as "500ms", "1s" or "1h30m", got "1")",
          "tandem.toml:9: zone[1]: needs 'file' (a zone served from a local file) or 'sources' (a "
          "zone pulled "
          "from upstream servers)",
          "tandem.toml:10: zone[1].name: zone 'example.org' is defined twice (lines 2 and 10)"));
}

// ----- files

class ConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / "tandem_config_test";
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(ConfigFile, MissingFile) {
  std::string path = (dir_ / "absent.toml").string();
  absl::StatusOr<Config> cfg = LoadConfigFile(path);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(), path + ": cannot read: No such file or directory");
}

TEST_F(ConfigFile, DirectoryIsUnreadable) {
  absl::StatusOr<Config> cfg = LoadConfigFile(dir_.string());
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(), dir_.string() + ": cannot read: Is a directory");
}

TEST_F(ConfigFile, LoadsAndResolvesZoneFiles) {
  std::string path = Write("tandem.toml", Doc({kZone, kZoneName, kZoneFile}));
  absl::StatusOr<Config> cfg = LoadConfigFile(path);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->path, path);
  EXPECT_EQ(cfg->zones[0].file, (dir_ / "example.org.zone").string());
}

TEST_F(ConfigFile, ErrorsNameThePathAsGiven) {
  std::string path = Write("bad.toml", Doc({"[server]", "workers = 200"}));
  absl::StatusOr<Config> cfg = LoadConfigFile(path);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(),
            path + ":2: server.workers: expected an integer from 1 to 128, got 200");
}

TEST(ConfigExamples, EveryExampleLoads) {
  std::filesystem::path dir = std::filesystem::path(TANDEM_SOURCE_DIR) / "config" / "examples";
  int count = 0;
  bool reference = false;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".toml") continue;
    ++count;
    reference |= entry.path().filename() == "reference.toml";
    absl::StatusOr<Config> cfg = LoadConfigFile(entry.path().string());
    EXPECT_TRUE(cfg.ok()) << cfg.status();
  }
  EXPECT_TRUE(reference) << "config/examples/reference.toml is missing";
  EXPECT_GE(count, 1);
}

TEST(ConfigExamples, ReferenceMatchesTheDefaults) {
  absl::StatusOr<Config> cfg = LoadConfigFile(
      (std::filesystem::path(TANDEM_SOURCE_DIR) / "config/examples/reference.toml").string());
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  Config defaults;
  EXPECT_EQ(cfg->server.mode, defaults.server.mode);
  EXPECT_EQ(cfg->server.listen, defaults.server.listen);
  EXPECT_EQ(cfg->server.workers, defaults.server.workers);
  EXPECT_EQ(cfg->server.state_dir, defaults.server.state_dir);
  EXPECT_EQ(cfg->server.udp_max_payload, defaults.server.udp_max_payload);
  EXPECT_EQ(cfg->server.udp_coalesce_us, defaults.server.udp_coalesce_us);
  EXPECT_EQ(cfg->server.tcp_idle_timeout, defaults.server.tcp_idle_timeout);
  EXPECT_EQ(cfg->server.tcp_max_connections, defaults.server.tcp_max_connections);
  EXPECT_EQ(cfg->server.log_level, defaults.server.log_level);
  EXPECT_EQ(cfg->dpdk.exception_iface, defaults.dpdk.exception_iface);
  EXPECT_EQ(cfg->rrl.rate, defaults.rrl.rate);
  EXPECT_EQ(cfg->rrl.slip, defaults.rrl.slip);
  EXPECT_EQ(cfg->rrl.ipv4_prefix, defaults.rrl.ipv4_prefix);
  EXPECT_EQ(cfg->rrl.ipv6_prefix, defaults.rrl.ipv6_prefix);
  EXPECT_EQ(cfg->rrl.table_size, defaults.rrl.table_size);
  EXPECT_EQ(cfg->health.interval, defaults.health.interval);
  EXPECT_EQ(cfg->health.timeout, defaults.health.timeout);
  EXPECT_EQ(cfg->health.rise, defaults.health.rise);
  EXPECT_EQ(cfg->health.fall, defaults.health.fall);
  EXPECT_EQ(cfg->health.overload, defaults.health.overload);
}

}  // namespace
}  // namespace tandem::config
