// The Prometheus endpoint against a real Daemon on loopback: queries sent over UDP show up
// in the next scrape of /metrics, and so do zone serials and reloads; a busy address is an
// error naming it. RenderMetrics is checked on its own for what traffic here cannot produce
// (unassigned rcodes, several workers).
#include "control/metrics.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config/config.h"
#include "control/daemon.h"
#include "dataplane/address.h"

namespace tandem::control {
namespace {

using Bytes = std::vector<uint8_t>;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint32_t kSerial = 2024010101;

// ---- sockets ----

// A socket closed on scope exit, with a receive timeout.
class Socket {
 public:
  Socket(int family, int type) : fd_(socket(family, type | SOCK_CLOEXEC, 0)) {
    timeval tv{2, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Socket() { close(fd_); }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }
  bool Connect(const dataplane::Endpoint& to) {
    return connect(fd_, reinterpret_cast<const sockaddr*>(&to.addr), to.len) == 0;
  }

 private:
  int fd_;
};

dataplane::Endpoint Loopback(uint16_t port) {
  return *dataplane::ParseEndpoint("127.0.0.1:" + std::to_string(port));
}

// A 127.0.0.1 port that was just free for both TCP and UDP (the daemon listens on both).
uint16_t FreePort() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    Socket tcp(AF_INET, SOCK_STREAM);
    Socket udp(AF_INET, SOCK_DGRAM);
    dataplane::Endpoint any = Loopback(0);
    if (bind(tcp.fd(), reinterpret_cast<const sockaddr*>(&any.addr), any.len) != 0) continue;
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    getsockname(tcp.fd(), reinterpret_cast<sockaddr*>(&bound), &len);
    uint16_t port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    dataplane::Endpoint same = Loopback(port);
    if (bind(udp.fd(), reinterpret_cast<const sockaddr*>(&same.addr), same.len) == 0) return port;
  }
  ADD_FAILURE() << "no free loopback port";
  return 0;
}

// "www.example.com" A IN, RD clear.
Bytes Query(uint16_t id) {
  Bytes q = {static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  for (std::string_view label : {"www", "example", "com"}) {
    q.push_back(static_cast<uint8_t>(label.size()));
    q.insert(q.end(), label.begin(), label.end());
  }
  q.insert(q.end(), {0, 0, 1, 0, 1});
  return q;
}

// True when a NOERROR response with the query's id came back.
bool AnsweredOverUdp(const dataplane::Endpoint& server, uint16_t id) {
  Socket s(AF_INET, SOCK_DGRAM);
  Bytes q = Query(id);
  if (!s.Connect(server) || send(s.fd(), q.data(), q.size(), 0) != static_cast<ssize_t>(q.size()))
    return false;
  uint8_t r[512];
  ssize_t n = recv(s.fd(), r, sizeof r, 0);
  return n >= 12 && (r[0] << 8 | r[1]) == id && (r[2] & 0x80) && (r[3] & 0x0f) == 0;
}

// The whole HTTP response to GET `path` from `listen` ("ADDR:PORT"), or "" on failure.
std::string HttpGet(const std::string& listen, const std::string& path = "/metrics") {
  std::optional<dataplane::Endpoint> ep = dataplane::ParseEndpoint(listen);
  if (!ep) return "";
  Socket s(ep->family(), SOCK_STREAM);
  std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: " + listen + "\r\nConnection: close\r\n\r\n";
  if (!s.Connect(*ep) || send(s.fd(), request.data(), request.size(), MSG_NOSIGNAL) <= 0) return "";
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = recv(s.fd(), buf, sizeof buf, 0)) > 0;) response.append(buf, n);
  return response;
}

// The value of the sample line "SERIES VALUE" in Prometheus text, if present.
std::optional<double> Sample(const std::string& text, const std::string& series) {
  std::string needle = "\n" + series + " ";
  size_t at = text.find(needle);
  if (at == std::string::npos) return std::nullopt;
  return std::strtod(text.c_str() + at + needle.size(), nullptr);
}

// ---- files ----

void WriteZone(const std::filesystem::path& path, uint32_t serial, bool broken = false) {
  std::ofstream f(path);
  f << "$ORIGIN example.com.\n$TTL 300\n"
    << "@ IN SOA ns1 hostmaster " << serial << " 3600 600 86400 300\n"
    << "@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.10\n"
    << (broken ? "www IN A not-an-address\n" : "");
}

std::filesystem::path MakeTempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "tandem-metrics-XXXXXX").string();
  return mkdtemp(pattern.data()) ? std::filesystem::path(pattern) : std::filesystem::path();
}

// ---- the fixture: a daemon serving example.com, and its metrics endpoint ----

class DaemonMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    WriteZone(dir_ / "example.com.zone", kSerial);
    for (int attempt = 0; attempt < 3 && !daemon_; ++attempt) StartDaemon(FreePort());
    ASSERT_TRUE(daemon_) << "the daemon did not start";
    for (int attempt = 0; attempt < 3 && !metrics_; ++attempt) StartMetrics(FreePort());
    ASSERT_TRUE(metrics_) << "the metrics server did not start";
  }

  void TearDown() override {
    metrics_.reset();
    daemon_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void StartDaemon(uint16_t port) {
    dns_ = Loopback(port);
    std::filesystem::path conf = dir_ / "tandem.toml";
    std::ofstream(conf) << "[server]\nlisten = [\"127.0.0.1:" << port << "\"]\nworkers = 1\n"
                        << "state_dir = \"" << dir_.string() << "\"\n\n"
                        << "[[zone]]\nname = \"example.com\"\nfile = \"example.com.zone\"\n";
    absl::StatusOr<config::Config> cfg = config::LoadConfigFile(conf.string());
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    auto daemon = std::make_unique<Daemon>(*std::move(cfg));
    if (absl::Status s = daemon->Start(); !s.ok()) return;  // maybe lost a port race
    daemon_ = std::move(daemon);
  }

  void StartMetrics(uint16_t port) {
    listen_ = "127.0.0.1:" + std::to_string(port);
    absl::StatusOr<std::unique_ptr<MetricsServer>> m = MetricsServer::Start(listen_, *daemon_);
    if (m.ok()) metrics_ = *std::move(m);
  }

  // Scrapes until `series` has `value` (workers count as they go), for at most 2 s; returns
  // the last scrape.
  std::string ScrapeUntil(const std::string& series, double value) {
    std::string text = HttpGet(listen_);
    for (auto deadline = Clock::now() + milliseconds(2000);
         Sample(text, series) != value && Clock::now() < deadline; text = HttpGet(listen_))
      std::this_thread::sleep_for(milliseconds(20));
    return text;
  }

  std::filesystem::path dir_;
  dataplane::Endpoint dns_;
  std::unique_ptr<Daemon> daemon_;
  std::string listen_;
  std::unique_ptr<MetricsServer> metrics_;
};

TEST_F(DaemonMetricsTest, ScrapeShowsZoneSerialAndUdpQueries) {
  constexpr int kQueries = 5;
  for (int i = 0; i < kQueries; ++i) ASSERT_TRUE(AnsweredOverUdp(dns_, 100 + i)) << "query " << i;

  std::string text = ScrapeUntil("tandem_queries_total{transport=\"udp\"}", kQueries);
  ASSERT_EQ(text.rfind("HTTP/1.1 200", 0), 0u) << text;
  EXPECT_NE(
      text.find("\ntandem_zone_serial{zone=\"example.com.\"} " + std::to_string(kSerial) + "\n"),
      std::string::npos)
      << text;
  EXPECT_EQ(Sample(text, "tandem_queries_total{transport=\"udp\"}"), kQueries) << text;
  EXPECT_EQ(Sample(text, "tandem_queries_total{transport=\"tcp\"}"), 0) << text;
  EXPECT_EQ(Sample(text, "tandem_responses_total{rcode=\"NOERROR\"}"), kQueries) << text;
  EXPECT_EQ(Sample(text, "tandem_responses_total{rcode=\"NXDOMAIN\"}"), 0) << text;
  EXPECT_EQ(Sample(text, "tandem_worker_packets_total{worker=\"udp0\",direction=\"rx\"}"), kQueries)
      << text;
  // One query at a time: no receive of a few datagrams, no wait for more.
  EXPECT_EQ(Sample(text, "tandem_worker_udp_waits_total{worker=\"udp0\"}"), 0) << text;
  EXPECT_EQ(Sample(text, "tandem_zones"), 1) << text;
  EXPECT_EQ(Sample(text, "tandem_zone_nodes{zone=\"example.com.\"}"), 3) << text;
  EXPECT_GT(Sample(text, "tandem_zone_memory_bytes{zone=\"example.com.\"}").value_or(0), 0) << text;
  EXPECT_GT(Sample(text, "tandem_snapshot_published_timestamp_seconds").value_or(0), 1.6e9) << text;
  EXPECT_EQ(Sample(text, "tandem_build_info{version=\"" TANDEM_VERSION "\",mode=\"socket\"}"), 1)
      << text;
  EXPECT_NE(text.find("# TYPE tandem_queries_total counter"), std::string::npos);
  EXPECT_NE(text.find("# TYPE tandem_zone_serial gauge"), std::string::npos);
}

TEST_F(DaemonMetricsTest, ScrapeAfterReloadShowsTheNewSerialAndTheResults) {
  WriteZone(dir_ / "example.com.zone", kSerial + 1);
  ASSERT_TRUE(daemon_->Reload().ok());
  WriteZone(dir_ / "example.com.zone", kSerial + 2, /*broken=*/true);
  ASSERT_FALSE(daemon_->Reload().ok());

  std::string text = HttpGet(listen_);
  EXPECT_EQ(Sample(text, "tandem_zone_serial{zone=\"example.com.\"}"), kSerial + 1) << text;
  EXPECT_EQ(Sample(text, "tandem_reloads_total{result=\"success\"}"), 1) << text;
  EXPECT_EQ(Sample(text, "tandem_reloads_total{result=\"failure\"}"), 1) << text;
}

TEST_F(DaemonMetricsTest, SecondServerOnTheSameAddressFailsNamingIt) {
  absl::StatusOr<std::unique_ptr<MetricsServer>> second = MetricsServer::Start(listen_, *daemon_);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(listen_), std::string_view::npos) << second.status();
  EXPECT_NE(second.status().message().find("in use"), std::string_view::npos) << second.status();
  EXPECT_EQ(Sample(HttpGet(listen_), "tandem_zones"), 1) << "the first server stopped serving";
}

TEST_F(DaemonMetricsTest, OnlyMetricsPathIsServed) {
  EXPECT_EQ(HttpGet(listen_, "/").rfind("HTTP/1.1 404", 0), 0u);
}

// IPv6 needs a civetweb built with it (Debian 12's is not): either it serves, or the error
// names the address and says why.
TEST_F(DaemonMetricsTest, Ipv6ListenServesOrSaysWhy) {
  std::string listen = "[::1]:" + std::to_string(FreePort());
  absl::StatusOr<std::unique_ptr<MetricsServer>> v6 = MetricsServer::Start(listen, *daemon_);
  if (v6.ok()) {
    EXPECT_EQ(Sample(HttpGet(listen), "tandem_zones"), 1);
    return;
  }
  EXPECT_NE(v6.status().message().find(listen), std::string_view::npos) << v6.status();
  EXPECT_NE(v6.status().message().find("IPv6"), std::string_view::npos) << v6.status();
}

TEST(MetricsServerTest, MalformedAddressIsAnErrorNamingIt) {
  config::Config cfg;
  Daemon daemon(cfg);  // never started: Status() and Zones() work on an idle daemon
  absl::StatusOr<std::unique_ptr<MetricsServer>> m = MetricsServer::Start("localhost:x", daemon);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("localhost:x"), std::string_view::npos) << m.status();
}

// ---- RenderMetrics: what loopback traffic cannot easily produce ----

TEST(RenderMetricsTest, RcodesByNameOrNumberAndWorkersByName) {
  DaemonStatus s;
  s.version = "9.9";
  s.mode = "dpdk";
  s.totals.responses[12] = 2;  // unassigned
  s.totals.responses[23] = 3;  // BADCOOKIE
  dataplane::WorkerCounters lcore;
  lcore.rx_packets = 7;
  lcore.tx_packets = 6;
  lcore.rx_errors = 1;
  s.per_worker = {{"lcore0", lcore}, {"tcp", {}}};
  std::string text = "\n" + RenderMetrics(s, {});

  EXPECT_EQ(Sample(text, "tandem_responses_total{rcode=\"12\"}"), 2) << text;
  EXPECT_EQ(Sample(text, "tandem_responses_total{rcode=\"BADCOOKIE\"}"), 3) << text;
  EXPECT_EQ(Sample(text, "tandem_responses_total{rcode=\"BADVERS\"}"), 0) << "always exported";
  EXPECT_EQ(Sample(text, "tandem_responses_total{rcode=\"YXRRSET\"}"), std::nullopt)
      << "not counted, not sent by tandem: left out";
  EXPECT_EQ(Sample(text, "tandem_worker_packets_total{worker=\"lcore0\",direction=\"rx\"}"), 7);
  EXPECT_EQ(Sample(text, "tandem_worker_packets_total{worker=\"lcore0\",direction=\"tx\"}"), 6);
  EXPECT_EQ(Sample(text, "tandem_worker_errors_total{worker=\"lcore0\"}"), 1);
  EXPECT_EQ(Sample(text, "tandem_worker_errors_total{worker=\"tcp\"}"), 0);
  EXPECT_EQ(Sample(text, "tandem_build_info{version=\"9.9\",mode=\"dpdk\"}"), 1);
  EXPECT_EQ(Sample(text, "tandem_snapshot_published_timestamp_seconds"), 0) << "never published";
}

TEST(RenderMetricsTest, DpdkPortsByNameOnlyWhenThereArePorts) {
  DaemonStatus s;
  s.mode = "socket";
  std::string text = "\n" + RenderMetrics(s, {});
  EXPECT_EQ(text.find("tandem_port_"), std::string::npos) << "socket mode has no ports: " << text;

  dataplane::PortCounters a;
  a.name = "net_af_xdp0";
  a.rx_packets = 100;
  a.tx_packets = 98;
  a.rx_missed = 5;
  a.rx_no_mbuf = 1;
  a.rx_errors = 2;
  a.tx_errors = 3;
  dataplane::PortCounters b;
  b.name = "net_memif0";
  b.rx_packets = 7;
  s.mode = "dpdk";
  s.ports = {a, b};
  text = "\n" + RenderMetrics(s, {});
  EXPECT_EQ(Sample(text, "tandem_port_packets_total{port=\"net_af_xdp0\",direction=\"rx\"}"), 100) << text;
  EXPECT_EQ(Sample(text, "tandem_port_packets_total{port=\"net_af_xdp0\",direction=\"tx\"}"), 98);
  EXPECT_EQ(Sample(text, "tandem_port_dropped_total{port=\"net_af_xdp0\",reason=\"missed\"}"), 5);
  EXPECT_EQ(Sample(text, "tandem_port_dropped_total{port=\"net_af_xdp0\",reason=\"no_mbuf\"}"), 1);
  EXPECT_EQ(Sample(text, "tandem_port_errors_total{port=\"net_af_xdp0\",direction=\"rx\"}"), 2);
  EXPECT_EQ(Sample(text, "tandem_port_errors_total{port=\"net_af_xdp0\",direction=\"tx\"}"), 3);
  EXPECT_EQ(Sample(text, "tandem_port_packets_total{port=\"net_memif0\",direction=\"rx\"}"), 7);
  EXPECT_EQ(Sample(text, "tandem_port_dropped_total{port=\"net_memif0\",reason=\"missed\"}"), 0);
}

TEST(RenderMetricsTest, ZonesKeepTheirTrailingDotAndFullSerial) {
  ZoneStatus z;
  z.name = "example.org.";
  z.serial = 4294967295u;
  z.nodes = 12;
  z.memory_bytes = 123456789;
  std::string text = "\n" + RenderMetrics(DaemonStatus{}, {z});
  EXPECT_EQ(Sample(text, "tandem_zone_serial{zone=\"example.org.\"}"), 4294967295.0) << text;
  EXPECT_NE(text.find("tandem_zone_serial{zone=\"example.org.\"} 4294967295\n"), std::string::npos)
      << "printed as an integer: " << text;
  EXPECT_EQ(Sample(text, "tandem_zone_nodes{zone=\"example.org.\"}"), 12);
  EXPECT_EQ(Sample(text, "tandem_zone_memory_bytes{zone=\"example.org.\"}"), 123456789);
}

}  // namespace
}  // namespace tandem::control
