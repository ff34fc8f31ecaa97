// The socket port over real loopback sockets. Nothing is published, so the handler answers
// every well-formed query REFUSED (echoing the id and question) and drops QR=1 messages.
#include "dataplane/socket_port.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dataplane/handler.h"
#include "dataplane/publisher.h"
#include "dataplane/zone/snapshot.h"
#include "tests/testing/socket_client.h"

namespace tandem::dataplane {
namespace {

using Bytes = std::vector<uint8_t>;
using testing::Client;
using testing::Frame;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr uint8_t kRefused = 5;
// 253 characters: the longest name, for long queries and long answers.
const std::string kLongName = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                              std::string(63, 'c') + "." + std::string(61, 'd');

// A query: 12-byte header (RD clear), one question `name` A IN.
Bytes Query(uint16_t id, bool qr = false, std::string_view name = "www.example.com") {
  Bytes q = {static_cast<uint8_t>(id >> 8),
             static_cast<uint8_t>(id),
             qr ? uint8_t{0x80} : uint8_t{0},
             0,
             0,
             1,
             0,
             0,
             0,
             0,
             0,
             0};
  while (!name.empty()) {
    std::string_view label = name.substr(0, name.find('.'));
    q.push_back(static_cast<uint8_t>(label.size()));
    q.insert(q.end(), label.begin(), label.end());
    name.remove_prefix(std::min(name.size(), label.size() + 1));
  }
  q.insert(q.end(), {0, 0, 1, 0, 1});
  return q;
}

uint16_t Id(const Bytes& m) { return static_cast<uint16_t>(m[0] << 8 | m[1]); }

// REFUSED for `query`: same id, QR set, same question.
void ExpectRefused(const std::optional<Bytes>& response, const Bytes& query) {
  ASSERT_TRUE(response.has_value()) << "no response";
  ASSERT_GE(response->size(), query.size());
  EXPECT_EQ(Id(*response), Id(query));
  EXPECT_TRUE((*response)[2] & 0x80) << "QR";
  EXPECT_EQ((*response)[3] & 0x0f, kRefused);
  EXPECT_EQ(Bytes(response->begin() + 4, response->begin() + 6), Bytes({0, 1})) << "QDCOUNT";
  EXPECT_EQ(Bytes(response->begin() + 12, response->begin() + query.size()),
            Bytes(query.begin() + 12, query.end()))
      << "question";
}

std::optional<Bytes> UdpExchange(const Endpoint& server, const Bytes& query) {
  Client client(server, SOCK_DGRAM);
  if (!client.Send(query)) return std::nullopt;
  return client.ReceiveDatagram();
}

std::optional<Bytes> TcpExchange(const Endpoint& server, const Bytes& query) {
  Client client(server, SOCK_STREAM);
  if (!client.connected() || !client.Send(Frame(query))) return std::nullopt;
  return client.ReadFrame();
}

// A worker counts a datagram as sent after sendmmsg returns, which can be after the client
// has read it: counters are checked with a little patience.
template <typename Condition>
bool Eventually(Condition condition) {
  Clock::time_point deadline = Clock::now() + milliseconds(2000);
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

Endpoint WithAddress(const Endpoint& bound, const char* v4) {
  Endpoint ep = bound;
  inet_pton(AF_INET, v4, &reinterpret_cast<sockaddr_in*>(&ep.addr)->sin_addr);
  return ep;
}

class SocketPortTest : public ::testing::Test {
 protected:
  // Starts a server on `listen` and returns its first bound endpoint.
  Endpoint Start(SocketPortOptions options) {
    absl::StatusOr<std::unique_ptr<SocketServer>> server =
        SocketServer::Start(options, publisher_, handler_);
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return {};
    server_ = *std::move(server);
    return server_->BoundEndpoints().at(0);
  }
  Endpoint Start(std::string listen) {
    SocketPortOptions options;
    options.listen = {std::move(listen)};
    return Start(std::move(options));
  }

  SnapshotPublisher publisher_{64};
  QueryHandler handler_;
  std::unique_ptr<SocketServer> server_;
};

// ---- UDP ----

TEST_F(SocketPortTest, UdpQueryIsRefusedWithTheSameId) {
  Endpoint server = Start("127.0.0.1:0");
  ASSERT_NE(server.port(), 0);
  Bytes query = Query(0x1234);
  ExpectRefused(UdpExchange(server, query), query);
  EXPECT_TRUE(Eventually([&] { return server_->Totals().tx_packets == 1; }));
  WorkerCounters totals = server_->Totals();
  EXPECT_EQ(totals.rx_packets, 1u);
  EXPECT_EQ(totals.queries[static_cast<int>(Transport::kUdp)], 1u);
  EXPECT_EQ(totals.responses[kRefused], 1u);
}

TEST_F(SocketPortTest, Ipv6UdpAndTcp) {
  Endpoint server = Start("[::1]:0");
  ASSERT_EQ(server.family(), AF_INET6);
  Bytes query = Query(0x6666);
  ExpectRefused(UdpExchange(server, query), query);
  ExpectRefused(TcpExchange(server, query), query);
}

TEST_F(SocketPortTest, UdpQueryWithQrSetGetsNoReplyAndTheNextIsAnswered) {
  Endpoint server = Start("127.0.0.1:0");
  Client client(server, SOCK_DGRAM, milliseconds(300));
  ASSERT_TRUE(client.Send(Query(1, /*qr=*/true)));
  EXPECT_FALSE(client.ReceiveDatagram().has_value());
  client.SetTimeout(milliseconds(2000));
  Bytes next = Query(2);
  ASSERT_TRUE(client.Send(next));
  ExpectRefused(client.ReceiveDatagram(), next);
  EXPECT_GE(server_->Totals().dropped, 1u);
}

// On 0.0.0.0 the reply must come from the address the query went to (127.0.0.2 here),
// or a client that checks the source (every resolver does) would discard it.
TEST_F(SocketPortTest, UdpOnWildcardRepliesFromTheQueriedAddress) {
  Endpoint bound = Start("0.0.0.0:0");
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (const char* address : {"127.0.0.1", "127.0.0.2"}) {
    Endpoint to = WithAddress(bound, address);
    Bytes query = Query(7);
    ASSERT_EQ(
        sendto(fd, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&to.addr), to.len),
        static_cast<ssize_t>(query.size()));
    Bytes buf(4096);
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    ssize_t n =
        recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    ASSERT_GT(n, 0) << address;
    Endpoint source;
    source.addr = from;
    source.len = from_len;
    EXPECT_EQ(source.ToString(), to.ToString());
  }
  close(fd);
}

// The IPv4 header of the first datagram seen on loopback from `server` to `client`
// (an AF_PACKET capture, root only), or nothing before the timeout.
std::optional<Bytes> CaptureReplyHeader(int capture, const Endpoint& server, const Endpoint& client) {
  Bytes buf(65536);
  for (auto deadline = Clock::now() + milliseconds(2000); Clock::now() < deadline;) {
    ssize_t n = recv(capture, buf.data(), buf.size(), 0);
    if (n < 28 || (buf[0] >> 4) != 4 || buf[9] != IPPROTO_UDP) continue;
    size_t ihl = (buf[0] & 0x0f) * 4u;
    uint16_t sport = static_cast<uint16_t>(buf[ihl] << 8 | buf[ihl + 1]);
    uint16_t dport = static_cast<uint16_t>(buf[ihl + 2] << 8 | buf[ihl + 3]);
    if (sport == server.port() && dport == client.port()) return Bytes(buf.begin(), buf.begin() + ihl);
  }
  return std::nullopt;
}

// With the default payload cap (1232) UDP answers over IPv4 leave with DF set and no IP
// identification, as the poll-mode path sends them; with a cap above an Ethernet frame's
// room the kernel may fragment them, and picks an identification for each.
TEST_F(SocketPortTest, UdpAnswersOverIpv4CarryDontFragmentWhenTheyFitAnyLink) {
  int capture = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
  if (capture < 0) GTEST_SKIP() << "no AF_PACKET socket (needs root): " << strerror(errno);
  sockaddr_ll lo{};
  lo.sll_family = AF_PACKET;
  lo.sll_protocol = htons(ETH_P_IP);
  lo.sll_ifindex = static_cast<int>(if_nametoindex("lo"));
  ASSERT_EQ(bind(capture, reinterpret_cast<sockaddr*>(&lo), sizeof lo), 0) << strerror(errno);
  timeval tv{0, 200 * 1000};
  setsockopt(capture, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  // Three answers each, their IPv4 headers: DF set? identification 0?
  auto headers = [&](const Endpoint& server) {
    std::vector<Bytes> out;
    for (uint16_t id = 1; id <= 3; ++id) {
      Client client(server, SOCK_DGRAM);
      Endpoint local;
      local.len = sizeof local.addr;
      getsockname(client.fd(), reinterpret_cast<sockaddr*>(&local.addr), &local.len);
      Bytes query = Query(id);
      EXPECT_TRUE(client.Send(query));
      ExpectRefused(client.ReceiveDatagram(), query);
      std::optional<Bytes> header = CaptureReplyHeader(capture, server, local);
      EXPECT_TRUE(header.has_value());
      if (header) out.push_back(*header);
    }
    return out;
  };

  Endpoint server = Start("127.0.0.1:0");
  std::vector<Bytes> capped = headers(server);
  ASSERT_EQ(capped.size(), 3u);
  for (const Bytes& h : capped) {
    EXPECT_TRUE(h[6] & 0x40) << "DF";
    EXPECT_EQ(h[4] << 8 | h[5], 0) << "identification";
  }
  server_->Stop();

  QueryHandler big(HandlerOptions{.udp_max_payload = 4096});
  SocketPortOptions options;
  options.listen = {"127.0.0.1:0"};
  absl::StatusOr<std::unique_ptr<SocketServer>> other = SocketServer::Start(options, publisher_, big);
  ASSERT_TRUE(other.ok()) << other.status();
  std::vector<Bytes> uncapped = headers((*other)->BoundEndpoints().at(0));
  (*other)->Stop();
  ASSERT_EQ(uncapped.size(), 3u);
  EXPECT_TRUE(std::any_of(uncapped.begin(), uncapped.end(), [](const Bytes& h) { return (h[4] << 8 | h[5]) != 0; }))
      << "the kernel chose no identification";
  close(capture);
}

TEST_F(SocketPortTest, SeveralUdpWorkersAllAnswer) {
  SocketPortOptions options;
  options.listen = {"127.0.0.1:0"};
  options.workers = 4;
  Endpoint server = Start(options);
  constexpr int kClients = 40;
  for (int i = 0; i < kClients; ++i) {
    Bytes query = Query(static_cast<uint16_t>(100 + i));
    ExpectRefused(UdpExchange(server, query), query);
  }
  EXPECT_TRUE(Eventually([&] { return server_->Totals().tx_packets == kClients; }));
  EXPECT_EQ(server_->Totals().rx_packets, uint64_t{kClients});
}

TEST(UdpCoalescing, WaitsAfterAFewDatagramsInASteadyStream) {
  using socket_port_internal::kStreamGapNs;
  using socket_port_internal::WaitBeforeReceive;
  for (int last = 0; last <= 32; ++last) {
    bool few = last >= 2 && last <= 7;
    EXPECT_EQ(WaitBeforeReceive(last, 0), few) << last;
    EXPECT_EQ(WaitBeforeReceive(last, kStreamGapNs - 1), few) << last;
    EXPECT_FALSE(WaitBeforeReceive(last, kStreamGapNs)) << last << ": after a quiet spell";
    EXPECT_FALSE(WaitBeforeReceive(last, 100 * kStreamGapNs)) << last;
  }
}

// Queries one at a time (each answered before the next, receives of one datagram each)
// never make a worker wait.
TEST_F(SocketPortTest, UdpCoalescingNeverDelaysQueriesOneAtATime) {
  SocketPortOptions options;
  options.listen = {"127.0.0.1:0"};
  options.udp_coalesce_us = 1000;
  Endpoint server = Start(options);
  for (int i = 0; i < 20; ++i) {
    Bytes query = Query(static_cast<uint16_t>(500 + i));
    ExpectRefused(UdpExchange(server, query), query);
  }
  EXPECT_TRUE(Eventually([&] { return server_->Totals().tx_packets == 20; }));
  EXPECT_EQ(server_->Totals().udp_waits, 0u);
}

// With coalescing, a worker that received a few datagrams in a stream waits before its
// next receive: streams of small bursts, and lone queries between them, are all answered.
TEST_F(SocketPortTest, UdpCoalescingAnswersEveryDatagram) {
  SocketPortOptions options;
  options.listen = {"127.0.0.1:0"};
  options.udp_coalesce_us = 1000;  // the longest wait allowed
  Endpoint server = Start(options);
  Client client(server, SOCK_DGRAM);
  int sent = 0;
  for (int round = 0; round < 30; ++round) {
    int burst = round % 3 == 2 ? 1 : 2 + round % 6;  // lone queries and bursts of 2 to 7
    std::set<uint16_t> ids;
    for (int k = 0; k < burst; ++k) {
      Bytes query = Query(static_cast<uint16_t>(1000 + sent));
      ASSERT_TRUE(client.Send(query));
      ids.insert(Id(query));
      ++sent;
    }
    for (int k = 0; k < burst; ++k) {
      std::optional<Bytes> response = client.ReceiveDatagram();
      ASSERT_TRUE(response.has_value()) << "round " << round;
      EXPECT_EQ(ids.erase(Id(*response)), 1u) << "round " << round;
      EXPECT_EQ((*response)[3] & 0x0f, kRefused);
    }
  }
  EXPECT_TRUE(Eventually([&] { return server_->Totals().tx_packets == static_cast<uint64_t>(sent); }));
  EXPECT_EQ(server_->Totals().rx_packets, static_cast<uint64_t>(sent));
  std::printf("%d queries, %lu waits\n", sent, static_cast<unsigned long>(server_->Totals().udp_waits));
}

TEST_F(SocketPortTest, SeveralListenAddresses) {
  SocketPortOptions options;
  options.listen = {"127.0.0.1:0", "[::1]:0"};
  Start(options);
  ASSERT_EQ(server_->BoundEndpoints().size(), 2u);
  for (const Endpoint& server : server_->BoundEndpoints()) {
    Bytes query = Query(9);
    ExpectRefused(UdpExchange(server, query), query);
    ExpectRefused(TcpExchange(server, query), query);
  }
}

// ---- TCP ----

TEST_F(SocketPortTest, TcpSingleQuery) {
  Endpoint server = Start("127.0.0.1:0");
  Bytes query = Query(0xbeef);
  ExpectRefused(TcpExchange(server, query), query);
  EXPECT_EQ(server_->Totals().queries[static_cast<int>(Transport::kTcp)], 1u);
}

TEST_F(SocketPortTest, TcpTwoQueriesInOneWriteAreAnsweredInOrder) {
  Endpoint server = Start("127.0.0.1:0");
  Client client(server, SOCK_STREAM);
  Bytes first = Query(1, false, "a.example");
  Bytes second = Query(2, false, "second.example.net");
  Bytes both = Frame(first);
  Bytes tail = Frame(second);
  both.insert(both.end(), tail.begin(), tail.end());
  ASSERT_TRUE(client.Send(both));
  ExpectRefused(client.ReadFrame(), first);
  ExpectRefused(client.ReadFrame(), second);
}

TEST_F(SocketPortTest, TcpQueryWrittenByteByByte) {
  Endpoint server = Start("127.0.0.1:0");
  Client client(server, SOCK_STREAM);
  int one = 1;
  setsockopt(client.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  Bytes query = Query(0x0b0b);
  for (uint8_t byte : Frame(query)) {
    ASSERT_TRUE(client.Send({byte}));
    std::this_thread::sleep_for(milliseconds(5));
  }
  ExpectRefused(client.ReadFrame(), query);
}

TEST_F(SocketPortTest, TcpLengthPrefixSplitAcrossSegments) {
  Endpoint server = Start("127.0.0.1:0");
  Client client(server, SOCK_STREAM);
  Bytes query = Query(0x5151);
  Bytes frame = Frame(query);
  ASSERT_TRUE(client.Send({frame[0]}));
  std::this_thread::sleep_for(milliseconds(50));
  ASSERT_TRUE(client.Send(Bytes(frame.begin() + 1, frame.end())));
  ExpectRefused(client.ReadFrame(), query);
}

TEST_F(SocketPortTest, TcpQueryWithQrSetGetsNoReplyAndTheNextIsAnswered) {
  Endpoint server = Start("127.0.0.1:0");
  Client client(server, SOCK_STREAM);
  Bytes next = Query(2);
  ASSERT_TRUE(client.Send(Frame(Query(1, /*qr=*/true))));
  ASSERT_TRUE(client.Send(Frame(next)));
  ExpectRefused(client.ReadFrame(), next);
}

TEST_F(SocketPortTest, TcpZeroLengthMessageClosesTheConnection) {
  Endpoint server = Start("127.0.0.1:0");
  Client client(server, SOCK_STREAM);
  Bytes query = Query(3);
  Bytes bytes = Frame(query);
  bytes.insert(bytes.end(), {0, 0});
  ASSERT_TRUE(client.Send(bytes));
  ExpectRefused(client.ReadFrame(), query);
  EXPECT_EQ(client.ReceiveResult(), 0);
}

// A client may shut down its sending side after its last query (RFC 7766, 6.2.4 leaves
// the connection to the server): the answers still arrive, then the server closes.
TEST_F(SocketPortTest, TcpAnswersQueriesSentBeforeTheClientHalfCloses) {
  Endpoint server = Start("127.0.0.1:0");
  Client client(server, SOCK_STREAM);
  Bytes first = Query(21);
  Bytes second = Query(22);
  Bytes both = Frame(first);
  Bytes tail = Frame(second);
  both.insert(both.end(), tail.begin(), tail.end());
  ASSERT_TRUE(client.Send(both));
  ASSERT_EQ(shutdown(client.fd(), SHUT_WR), 0);
  ExpectRefused(client.ReadFrame(), first);
  ExpectRefused(client.ReadFrame(), second);
  EXPECT_EQ(client.ReceiveResult(), 0);
}

// A client that writes many queries before reading any: the server stops reading while
// its answers wait (more than one response's worth), then answers every query, in order,
// once the client reads.
TEST_F(SocketPortTest, TcpPipelinedQueriesFromAClientThatReadsLate) {
  Endpoint server = Start("127.0.0.1:0");
  Client client(server, SOCK_STREAM);
  constexpr int kQueries = 30000;  // ~8 MB each way: more than the socket buffers
  Bytes stream;
  for (int i = 0; i < kQueries; ++i) {
    Bytes f = Frame(Query(static_cast<uint16_t>(i), false, kLongName));
    stream.insert(stream.end(), f.begin(), f.end());
  }
  std::future<bool> written = std::async(std::launch::async, [&] { return client.Send(stream); });
  std::this_thread::sleep_for(milliseconds(300));
  for (int i = 0; i < kQueries; ++i) {
    std::optional<Bytes> response = client.ReadFrame();
    ASSERT_TRUE(response.has_value()) << "response " << i;
    ASSERT_EQ(Id(*response), static_cast<uint16_t>(i));
  }
  EXPECT_TRUE(written.get());
}

TEST_F(SocketPortTest, TcpIdleTimeoutClosesASilentConnection) {
  SocketPortOptions options;
  options.listen = {"127.0.0.1:0"};
  options.tcp_idle_timeout = absl::Milliseconds(300);
  Endpoint server = Start(options);
  Client silent(server, SOCK_STREAM);
  Client partial(server, SOCK_STREAM);  // a query that never completes does not count
  ASSERT_TRUE(partial.Send({0, 40, 1, 2, 3}));
  Clock::time_point start = Clock::now();
  EXPECT_EQ(silent.ReceiveResult(), 0);
  EXPECT_EQ(partial.ReceiveResult(), 0);
  auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, milliseconds(250));
  EXPECT_LT(elapsed, milliseconds(1500));
}

TEST_F(SocketPortTest, TcpIdleTimeoutSparesAnActiveConnection) {
  SocketPortOptions options;
  options.listen = {"127.0.0.1:0"};
  options.tcp_idle_timeout = absl::Milliseconds(300);
  Endpoint server = Start(options);
  Client client(server, SOCK_STREAM);
  for (int i = 0; i < 6; ++i) {  // 6 x 150 ms: longer than the timeout, never idle for it
    Bytes query = Query(static_cast<uint16_t>(i));
    ASSERT_TRUE(client.Send(Frame(query)));
    ExpectRefused(client.ReadFrame(), query);
    std::this_thread::sleep_for(milliseconds(150));
  }
}

TEST_F(SocketPortTest, TcpConnectionCapClosesTheConnectionOverIt) {
  SocketPortOptions options;
  options.listen = {"127.0.0.1:0"};
  options.tcp_max_connections = 2;
  Endpoint server = Start(options);
  Client first(server, SOCK_STREAM);
  Client second(server, SOCK_STREAM);
  Bytes query = Query(11);
  for (Client* c : {&first, &second}) {  // both accepted before the third arrives
    ASSERT_TRUE(c->Send(Frame(query)));
    ExpectRefused(c->ReadFrame(), query);
  }
  Client third(server, SOCK_STREAM);
  ASSERT_TRUE(third.connected());
  EXPECT_EQ(third.ReceiveResult(), 0);
  for (Client* c : {&first, &second}) {
    ASSERT_TRUE(c->Send(Frame(query)));
    ExpectRefused(c->ReadFrame(), query);
  }
  EXPECT_GE(server_->Totals().rx_errors, 1u);
}

TEST_F(SocketPortTest, TcpSlotIsReusedAfterAClientLeaves) {
  SocketPortOptions options;
  options.listen = {"127.0.0.1:0"};
  options.tcp_max_connections = 1;
  Endpoint server = Start(options);
  for (int i = 0; i < 5; ++i) {
    Bytes query = Query(static_cast<uint16_t>(i));
    ExpectRefused(TcpExchange(server, query), query);
    std::this_thread::sleep_for(milliseconds(20));  // the server sees the close
  }
}

// ---- Lifecycle ----

TEST_F(SocketPortTest, StopReturnsPromptlyAndIsIdempotent) {
  SocketPortOptions options;
  options.listen = {"127.0.0.1:0", "[::1]:0"};
  options.workers = 3;
  Endpoint server = Start(options);
  Client open_connection(server, SOCK_STREAM);
  ASSERT_TRUE(open_connection.Send({0, 20, 1}));  // half a query
  std::this_thread::sleep_for(milliseconds(50));
  Clock::time_point start = Clock::now();
  server_->Stop();
  EXPECT_LT(Clock::now() - start, milliseconds(500));
  server_->Stop();
  EXPECT_EQ(open_connection.ReceiveResult(), 0);
  Client late(server, SOCK_STREAM);
  EXPECT_FALSE(late.connected());
}

// Idle workers sit in recvmmsg and epoll_wait offline, so publishing does not wait on them.
TEST_F(SocketPortTest, PublishDoesNotWaitForIdleWorkers) {
  SocketPortOptions options;
  options.listen = {"127.0.0.1:0"};
  options.workers = 2;
  Endpoint server = Start(options);
  for (int i = 0; i < 3; ++i) {
    std::future<void> published = std::async(std::launch::async, [&] {
      publisher_.Publish(
          std::make_unique<zone::Snapshot>(std::vector<std::shared_ptr<const zone::Zone>>{}));
    });
    ASSERT_EQ(published.wait_for(std::chrono::seconds(2)), std::future_status::ready);
    Bytes query = Query(static_cast<uint16_t>(i));
    ExpectRefused(UdpExchange(server, query), query);  // no zone in the snapshot either
  }
}

TEST_F(SocketPortTest, StartFailsOnAnAddressAlreadyBound) {
  int taken = socket(AF_INET, SOCK_DGRAM, 0);
  Endpoint any = *ParseEndpoint("127.0.0.1:0");
  ASSERT_EQ(bind(taken, reinterpret_cast<sockaddr*>(&any.addr), any.len), 0);
  Endpoint bound;
  bound.len = sizeof bound.addr;
  getsockname(taken, reinterpret_cast<sockaddr*>(&bound.addr), &bound.len);
  SocketPortOptions options;
  options.listen = {bound.ToString()};
  absl::StatusOr<std::unique_ptr<SocketServer>> server =
      SocketServer::Start(options, publisher_, handler_);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find(bound.ToString() + ": "), std::string_view::npos)
      << server.status();
  EXPECT_NE(server.status().message().find("Address already in use"), std::string_view::npos)
      << server.status();
  close(taken);
}

TEST_F(SocketPortTest, SecondServerOnTheSameAddressFails) {
  Endpoint first = Start("127.0.0.1:0");
  SocketPortOptions options;
  options.listen = {first.ToString()};
  absl::StatusOr<std::unique_ptr<SocketServer>> second =
      SocketServer::Start(options, publisher_, handler_);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(first.ToString()), std::string_view::npos)
      << second.status();
  Bytes query = Query(4);
  ExpectRefused(UdpExchange(first, query), query);  // the first one is untouched
}

TEST_F(SocketPortTest, StartRejectsAListenAddressThatIsNotAnAddress) {
  SocketPortOptions options;
  options.listen = {"localhost:53"};
  absl::StatusOr<std::unique_ptr<SocketServer>> server =
      SocketServer::Start(options, publisher_, handler_);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(server.status().message().find("localhost:53"), std::string_view::npos);
}

TEST_F(SocketPortTest, StartFailsWhenThePublisherHasTooFewReaders) {
  SnapshotPublisher small(2);
  SocketPortOptions options;
  options.listen = {"127.0.0.1:0"};
  options.workers = 2;  // 2 UDP threads + 1 TCP thread
  absl::StatusOr<std::unique_ptr<SocketServer>> server =
      SocketServer::Start(options, small, handler_);
  EXPECT_FALSE(server.ok());
}

}  // namespace
}  // namespace tandem::dataplane
