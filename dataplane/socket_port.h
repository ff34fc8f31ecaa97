// The socket port: DNS over kernel UDP and TCP on the configured listen addresses, fed to
// the QueryHandler. UDP: per listen address, `workers` threads, each with its own
// SO_REUSEPORT socket, recvmmsg/sendmmsg bursts of 32. TCP (RFC 7766): one epoll thread for
// every listener and connection, 2-byte length framing, pipelined answers in order.
//
// Every thread is an RCU reader of the SnapshotPublisher, so the publisher must allow
// listen.size() * workers + 1 readers.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "dataplane/address.h"
#include "dataplane/counters.h"
#include "dataplane/rrl.h"

namespace tandem::dataplane {

class QueryHandler;
class SnapshotPublisher;

namespace socket_port_internal {
struct Listener;  // the sockets of one listen address
class TcpLoop;    // the TCP event loop

// Whether a UDP worker waits (SocketPortOptions::udp_coalesce_us) before its next
// receive, given what the last receive brought and how long after the one before it
// returned: a few datagrams (2 to 7) in a steady stream (a receive at least every
// millisecond), so more are on their way and waiting a moment for them spreads the cost
// of a wake-up and a receive over more of them. After a lone datagram, 8 and more, or a
// quiet spell, the next receive is at once.
inline constexpr int64_t kStreamGapNs = 1000000;
constexpr bool WaitBeforeReceive(int last, int64_t gap_ns) {
  return last >= 2 && last < 8 && gap_ns < kStreamGapNs;
}
}  // namespace socket_port_internal

struct SocketPortOptions {
  std::vector<std::string> listen;  // "ADDR:PORT"
  int workers = 1;                  // UDP threads per listen address (SO_REUSEPORT sockets)
  absl::Duration tcp_idle_timeout = absl::Seconds(10);
  int tcp_max_connections = 1024;  // across all listeners
  bool udp = true;  // false: TCP only (dpdk mode answers UDP on the poll-mode path)
  RrlOptions rrl;   // UDP answers only; TCP is never limited
  // How long a UDP worker waits before a receive after one that brought a few datagrams
  // in a steady stream (socket_port_internal::WaitBeforeReceive). 0: never waits.
  uint32_t udp_coalesce_us = 0;
};

class SocketServer {
 public:
  // Binds every listen address for UDP and TCP (IPv4 and IPv6; IPV6_V6ONLY on v6) and
  // starts the threads. Errors name the address and the reason
  // ("127.0.0.1:53: tcp bind: Address already in use").
  static absl::StatusOr<std::unique_ptr<SocketServer>> Start(const SocketPortOptions& options,
                                                             SnapshotPublisher& publisher,
                                                             const QueryHandler& handler);
  ~SocketServer();
  SocketServer(const SocketServer&) = delete;
  SocketServer& operator=(const SocketServer&) = delete;

  // Stops and joins every thread and closes every socket; idempotent; returns within about
  // one receive timeout (100 ms).
  void Stop();

  // Sum over the workers; reads race with the workers' increments, which is fine for metrics.
  // Connections refused at the TCP connection cap count as rx_errors.
  WorkerCounters Totals() const;
  // Each thread's counters: the UDP workers (listen address by listen address), then TCP.
  std::vector<WorkerCounters> PerWorker() const;

  // The bound addresses, one per listen address (port 0 resolved; UDP and TCP share it).
  std::vector<Endpoint> BoundEndpoints() const;

 private:
  SocketServer(const SocketPortOptions& options, SnapshotPublisher& publisher,
               const QueryHandler& handler);
  absl::Status RegisterReaders();
  void StartThreads();

  SnapshotPublisher& publisher_;
  const QueryHandler& handler_;
  RrlOptions rrl_;
  uint32_t udp_coalesce_us_;
  std::vector<std::unique_ptr<socket_port_internal::Listener>> listeners_;
  std::vector<Endpoint> bound_;
  std::unique_ptr<socket_port_internal::TcpLoop> tcp_;
  size_t counter_count_ = 0;
  std::unique_ptr<WorkerCounters[]> counters_;  // UDP workers first, the TCP thread last
  std::vector<unsigned> readers_;               // RCU reader ids, one per thread, in thread order
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
};

}  // namespace tandem::dataplane
