// Pool member health checks (control/pool_monitor.*) against real listeners on 127.0.0.1
// started by the test: a TCP listener, a small HTTP(S) server thread, a UDP DNS responder.
#include "control/pool_monitor.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace tandem::control {
namespace {

using Kind = MemberCheck::Kind;

dataplane::Endpoint Loopback(uint16_t port) {
  return *dataplane::ParseEndpoint(absl::StrCat("127.0.0.1:", port));
}

// A socket bound to 127.0.0.1 on a port of the kernel's choice.
int BoundSocket(int type, uint16_t* port) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// A TCP listener nobody accepts from: the kernel completes handshakes, nothing answers.
struct Listener {
  Listener() {
    fd = BoundSocket(SOCK_STREAM, &port);
    listen(fd, 64);
  }
  ~Listener() { close(fd); }
  int fd;
  uint16_t port = 0;
};

uint16_t ClosedPort() {
  uint16_t port = 0;
  close(BoundSocket(SOCK_STREAM, &port));
  return port;
}

// The callbacks of a monitor, with their arrival times.
class Results {
 public:
  PoolMonitor::Callback Callback() {
    return [this](size_t member, const CheckResult& r) {
      std::lock_guard<std::mutex> l(mu_);
      seen_.push_back({member, r, absl::Now()});
      cv_.notify_all();
    };
  }
  // The first `n` results of `member`, waiting at most `limit` for them.
  std::vector<CheckResult> Wait(size_t member, size_t n, absl::Duration limit = absl::Seconds(5)) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, absl::ToChronoMilliseconds(limit), [&] { return Of(member).size() >= n; });
    auto all = Of(member);
    if (all.size() > n) all.resize(n);
    return all;
  }
  std::vector<absl::Time> Times(size_t member) {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<absl::Time> t;
    for (auto& s : seen_)
      if (s.member == member) t.push_back(s.at);
    return t;
  }
  size_t Count(size_t member) { return Times(member).size(); }
  size_t Total() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_.size();
  }

 private:
  struct Seen {
    size_t member;
    CheckResult result;
    absl::Time at;
  };
  std::vector<CheckResult> Of(size_t member) {
    std::vector<CheckResult> r;
    for (auto& s : seen_)
      if (s.member == member) r.push_back(s.result);
    return r;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Seen> seen_;
};

// Runs one member until its first verdict.
CheckResult CheckOnce(MemberCheck c) {
  Results results;
  PoolMonitor monitor(results.Callback());
  monitor.Add(std::move(c));
  monitor.Start();
  auto r = results.Wait(0, 1);
  monitor.Stop();
  if (r.empty()) return {false, {}, "test: no callback within 5s"};
  return r[0];
}

// A self-signed certificate for "member.test" and 127.0.0.1, and its PEM file as the CA.
struct SelfSigned {
  SelfSigned() {
    key = EVP_EC_gen("P-256");
    cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("member.test"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_set_pubkey(cert, key);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, "DNS:member.test,IP:127.0.0.1"},
                              std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
      X509_add_ext(cert, ext, -1);
      X509_EXTENSION_free(ext);
    }
    X509_sign(cert, key, EVP_sha256());
    ca_file = absl::StrCat(testing::TempDir(), "/pool_monitor_ca_", getpid(), ".pem");
    FILE* f = fopen(ca_file.c_str(), "w");
    PEM_write_X509(f, cert);
    fclose(f);
    tls = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(tls, cert);
    SSL_CTX_use_PrivateKey(tls, key);
  }
  ~SelfSigned() {
    SSL_CTX_free(tls);
    X509_free(cert);
    EVP_PKEY_free(key);
    unlink(ca_file.c_str());
  }
  EVP_PKEY* key;
  X509* cert;
  SSL_CTX* tls;
  std::string ca_file;
};

// HTTP/1.1 (over TLS when given a context), one request per connection:
//   /health  200 "member is healthy"
//   /big     200, 96 KiB of 'x' then "tail-marker"
//   other    503 "draining"
class HttpServer {
 public:
  explicit HttpServer(SSL_CTX* tls = nullptr) : tls_(tls) {
    signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not end the test
    fd_ = BoundSocket(SOCK_STREAM | SOCK_NONBLOCK, &port_);
    listen(fd_, 16);
    thread_ = std::thread([this] { Serve(); });
  }
  ~HttpServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }
  std::string last_host() {
    std::lock_guard<std::mutex> l(mu_);
    return last_host_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      timeval tv{2, 0};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      SSL* ssl = nullptr;
      if (tls_) {
        ssl = SSL_new(tls_);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) <= 0) {  // e.g. the client refused the certificate
          ERR_clear_error();
          SSL_free(ssl);
          close(c);
          continue;
        }
      }
      Answer(c, ssl);
      if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
      }
      close(c);
    }
  }

  void Answer(int c, SSL* ssl) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
      int n = ssl ? SSL_read(ssl, buf, sizeof buf) : static_cast<int>(recv(c, buf, sizeof buf, 0));
      if (n <= 0) return;
      request.append(buf, n);
    }
    std::string path = request.substr(4, request.find(' ', 4) - 4);  // "GET /path HTTP/1.1"
    size_t h = request.find("\r\nHost: ");
    if (h != std::string::npos) {
      std::lock_guard<std::mutex> l(mu_);
      last_host_ = request.substr(h + 8, request.find("\r\n", h + 8) - h - 8);
    }
    int status = 503;
    std::string body = "draining";
    if (path == "/health") {
      status = 200;
      body = "member is healthy";
    } else if (path == "/big") {
      status = 200;
      body = std::string(96 * 1024, 'x') + "tail-marker";
    }
    std::string response =
        absl::StrCat("HTTP/1.1 ", status, status == 200 ? " OK" : " Service Unavailable",
                     "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
    for (size_t off = 0; off < response.size();) {
      int n = ssl ? SSL_write(ssl, response.data() + off, static_cast<int>(response.size() - off))
                  : static_cast<int>(
                        send(c, response.data() + off, response.size() - off, MSG_NOSIGNAL));
      if (n <= 0) return;
      off += n;
    }
  }

  SSL_CTX* tls_;
  int fd_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::string last_host_;
};

// Answers every query with the header and question echoed, QR set and `rcode`, after
// `delay`; with rcode < 0, never answers. Keeps the queries it received.
class DnsResponder {
 public:
  explicit DnsResponder(int rcode, absl::Duration delay = absl::ZeroDuration())
      : rcode_(rcode), delay_(delay) {
    fd_ = BoundSocket(SOCK_DGRAM | SOCK_NONBLOCK, &port_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~DnsResponder() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }
  std::vector<std::string> queries() {
    std::lock_guard<std::mutex> l(mu_);
    return queries_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      uint8_t buf[512];
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      ssize_t n = recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 12) continue;
      {
        std::lock_guard<std::mutex> l(mu_);
        queries_.emplace_back(reinterpret_cast<char*>(buf), n);
      }
      if (rcode_ < 0) continue;
      absl::SleepFor(delay_);
      buf[2] |= 0x84;  // QR, AA
      buf[3] = static_cast<uint8_t>((buf[3] & 0xf0) | rcode_);
      sendto(fd_, buf, n, 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }

  int rcode_;
  absl::Duration delay_;
  int fd_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> queries_;
};

MemberCheck Tcp(uint16_t port) {
  MemberCheck c;
  c.kind = Kind::kTcp;
  c.target = Loopback(port);
  return c;
}

MemberCheck Http(uint16_t port, std::string path, std::string body = "") {
  MemberCheck c;
  c.kind = Kind::kHttp;
  c.target = Loopback(port);
  c.path = std::move(path);
  c.body = std::move(body);
  return c;
}

MemberCheck Dns(uint16_t port, int rcode) {
  MemberCheck c;
  c.kind = Kind::kDns;
  c.target = Loopback(port);
  c.dns_name = "pool.example.";
  c.dns_type = 28;
  c.dns_rcode = rcode;
  return c;
}

TEST(PoolMonitorTcp, ListenerIsUp) {
  Listener l;
  auto r = CheckOnce(Tcp(l.port));
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.error, "");
  EXPECT_LT(r.latency, absl::Seconds(1));
}

TEST(PoolMonitorTcp, ClosedPortIsRefused) {
  auto r = CheckOnce(Tcp(ClosedPort()));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("refused"), std::string::npos) << r.error;
}

TEST(PoolMonitorHttp, StatusAndBodyAccepted) {
  HttpServer server;
  auto r = CheckOnce(Http(server.port(), "/health", "healthy"));
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(server.last_host(), absl::StrCat("127.0.0.1:", server.port()));
}

TEST(PoolMonitorHttp, ServiceUnavailableFails) {
  HttpServer server;
  auto r = CheckOnce(Http(server.port(), "/down"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "status 503");
  MemberCheck c = Http(server.port(), "/down");
  c.expect = {200, 503};  // the operator accepts a draining member
  r = CheckOnce(c);
  EXPECT_TRUE(r.ok) << r.error;
}

TEST(PoolMonitorHttp, MissingBodyFails) {
  HttpServer server;
  auto r = CheckOnce(Http(server.port(), "/health", "all systems go"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "body lacks \"all systems go\"");
}

TEST(PoolMonitorHttp, OnlyTheFirst64KiBOfTheBodyAreRead) {
  HttpServer server;
  auto r = CheckOnce(Http(server.port(), "/big", "xxxx"));
  EXPECT_TRUE(r.ok) << r.error;
  r = CheckOnce(Http(server.port(), "/big", "tail-marker"));  // past 64 KiB
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "body lacks \"tail-marker\"");
}

TEST(PoolMonitorHttp, HostHeaderNamedButAddressConnected) {
  HttpServer server;
  MemberCheck c = Http(server.port(), "health");  // a path without its slash gets one
  c.host = "member.test";  // not resolvable: the connection must go to the target
  auto r = CheckOnce(c);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(server.last_host(), absl::StrCat("member.test:", server.port()));
}

TEST(PoolMonitorHttp, SilentServerTimesOut) {
  Listener l;  // accepts the connection in the kernel, never answers
  MemberCheck c = Http(l.port, "/health");
  c.timeout = absl::Milliseconds(300);
  auto r = CheckOnce(c);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "timeout");
  EXPECT_GE(r.latency, absl::Milliseconds(290));
  EXPECT_LT(r.latency, absl::Seconds(1));
}

TEST(PoolMonitorHttp, ClosedPortFails) {
  auto r = CheckOnce(Http(ClosedPort(), "/health"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error.rfind("http: ", 0), 0u) << r.error;
}

TEST(PoolMonitorHttps, VerifiedAgainstTheGivenCa) {
  SelfSigned cert;
  HttpServer server(cert.tls);
  MemberCheck c = Http(server.port(), "/health", "healthy");
  c.kind = Kind::kHttps;
  c.ca_file = cert.ca_file;
  auto r = CheckOnce(c);
  EXPECT_TRUE(r.ok) << r.error;  // the certificate carries IP:127.0.0.1
  c.host = "member.test";
  r = CheckOnce(c);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(server.last_host(), absl::StrCat("member.test:", server.port()));
}

TEST(PoolMonitorHttps, UntrustedCertificateFails) {
  SelfSigned cert;
  HttpServer server(cert.tls);
  MemberCheck c = Http(server.port(), "/health");
  c.kind = Kind::kHttps;  // no ca_file: the system store does not know this certificate
  auto r = CheckOnce(c);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error.rfind("https: SSL certificate problem", 0), 0u) << r.error;
}

TEST(PoolMonitorHttps, CertificateForAnotherNameFails) {
  SelfSigned cert;
  HttpServer server(cert.tls);
  MemberCheck c = Http(server.port(), "/health");
  c.kind = Kind::kHttps;
  c.ca_file = cert.ca_file;
  c.host = "other.test";
  auto r = CheckOnce(c);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error.rfind("https: ", 0), 0u) << r.error;
  EXPECT_NE(r.error.find("other.test"), std::string::npos) << r.error;
}

TEST(PoolMonitorDns, RcodeMatches) {
  DnsResponder server(3);
  auto r = CheckOnce(Dns(server.port(), 3));  // NXDOMAIN is what this member should say
  EXPECT_TRUE(r.ok) << r.error;
  auto q = server.queries();
  ASSERT_EQ(q.size(), 1u);
  // Header: one question, no flags; then pool.example. AAAA IN.
  EXPECT_EQ(q[0].substr(2), std::string("\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                                        "\x04pool\x07"
                                        "example\x00\x00\x1c\x00\x01",
                                        28));
}

TEST(PoolMonitorDns, RcodeMismatchFails) {
  DnsResponder server(3);
  auto r = CheckOnce(Dns(server.port(), 0));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "rcode NXDOMAIN(3), want NOERROR(0)");
}

TEST(PoolMonitorDns, SilentServerTimesOut) {
  DnsResponder server(-1);
  MemberCheck c = Dns(server.port(), 0);
  c.timeout = absl::Milliseconds(200);
  auto r = CheckOnce(c);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "timeout");
  EXPECT_GE(r.latency, absl::Milliseconds(195));
  EXPECT_LT(r.latency, absl::Seconds(1));
}

TEST(PoolMonitorDns, BadNameFailsEveryCheck) {
  MemberCheck c = Dns(ClosedPort(), 0);
  c.dns_name = std::string(64, 'a') + ".example.";  // label too long
  auto r = CheckOnce(c);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error.rfind("query name", 0), 0u) << r.error;
}

TEST(PoolMonitor, IntervalRespected) {
  Listener l;
  Results results;
  PoolMonitor monitor(results.Callback());
  MemberCheck c = Tcp(l.port);
  c.interval = absl::Milliseconds(100);
  monitor.Add(c);
  monitor.Start();
  absl::SleepFor(absl::Milliseconds(1050));
  monitor.Stop();
  auto t = results.Times(0);
  EXPECT_GE(t.size(), 9u);  // at 0, 100, ..., 1000 ms
  EXPECT_LE(t.size(), 12u);
  for (size_t i = 1; i < t.size(); ++i) EXPECT_GE(t[i] - t[i - 1], absl::Milliseconds(80));
}

TEST(PoolMonitor, NextCheckIsDueAnIntervalAfterTheLastStart) {
  DnsResponder server(0, absl::Milliseconds(120));  // each check takes 120 ms
  Results results;
  PoolMonitor monitor(results.Callback());
  MemberCheck c = Dns(server.port(), 0);
  c.interval = absl::Milliseconds(200);
  monitor.Add(c);
  monitor.Start();
  absl::SleepFor(absl::Milliseconds(1050));
  monitor.Stop();
  auto t = results.Times(0);  // due at 0, 200, ... ms: not 320 ms apart
  ASSERT_GE(t.size(), 4u);
  for (size_t i = 1; i < t.size(); ++i) {
    EXPECT_GE(t[i] - t[i - 1], absl::Milliseconds(160));
    EXPECT_LE(t[i] - t[i - 1], absl::Milliseconds(260));
  }
}

TEST(PoolMonitor, ChecksOfAMemberNeverOverlap) {
  DnsResponder server(-1);
  Results results;
  PoolMonitor monitor(results.Callback());
  MemberCheck c = Dns(server.port(), 0);
  c.interval = absl::Milliseconds(50);  // shorter than the check itself
  c.timeout = absl::Milliseconds(250);
  monitor.Add(c);
  monitor.Start();
  absl::SleepFor(absl::Milliseconds(1100));
  monitor.Stop();
  size_t done = results.Count(0);
  EXPECT_GE(done, 3u);
  EXPECT_LE(done, 5u);
  size_t sent = server.queries().size();  // every query is answered by a callback but the last
  EXPECT_GE(sent, done);
  EXPECT_LE(sent, done + 1);
}

TEST(PoolMonitor, MembersOfAllKindsInOneLoop) {
  Listener listener;
  HttpServer http;
  DnsResponder dns(0);
  Results results;
  PoolMonitor monitor(results.Callback());
  size_t none = monitor.Add(MemberCheck{});
  size_t tcp = monitor.Add(Tcp(listener.port));
  size_t refused = monitor.Add(Tcp(ClosedPort()));
  size_t web = monitor.Add(Http(http.port(), "/health"));
  size_t down = monitor.Add(Http(http.port(), "/down"));
  size_t name = monitor.Add(Dns(dns.port(), 0));
  monitor.Start();
  for (size_t m : {tcp, web, name}) {
    auto r = results.Wait(m, 2);
    ASSERT_EQ(r.size(), 2u) << m;
    EXPECT_TRUE(r[0].ok && r[1].ok) << m << ": " << r[0].error << r[1].error;
  }
  for (size_t m : {refused, down}) {
    auto r = results.Wait(m, 1);
    ASSERT_EQ(r.size(), 1u) << m;
    EXPECT_FALSE(r[0].ok) << m;
  }
  monitor.Stop();
  EXPECT_EQ(results.Count(none), 0u);  // kNone: taken as up, never checked
}

TEST(PoolMonitor, StopIsPrompt) {
  Listener silent_tcp;
  DnsResponder silent_dns(-1);
  Results results;
  PoolMonitor monitor(results.Callback());
  MemberCheck web = Http(silent_tcp.port, "/health");
  web.timeout = absl::Seconds(30);
  MemberCheck name = Dns(silent_dns.port(), 0);
  name.timeout = absl::Seconds(30);
  monitor.Add(web);
  monitor.Add(name);
  monitor.Start();
  absl::SleepFor(absl::Milliseconds(300));  // both checks are in flight now
  absl::Time before = absl::Now();
  monitor.Stop();
  EXPECT_LT(absl::Now() - before, absl::Milliseconds(250));
  EXPECT_EQ(results.Total(), 0u);  // checks in flight are dropped, not reported
}

TEST(PoolMonitor, RestartsAfterStop) {
  Listener l;
  Results results;
  PoolMonitor monitor(results.Callback());
  monitor.Add(Tcp(l.port));
  monitor.Start();
  ASSERT_EQ(results.Wait(0, 1).size(), 1u);
  monitor.Stop();
  monitor.Start();
  EXPECT_EQ(results.Wait(0, 2).size(), 2u);
}

}  // namespace
}  // namespace tandem::control
