// The DPDK port: EAL initialised from [dpdk] eal_args; every ethdev the EAL finds (PCI or
// virtual) set up with one RX and one TX queue per worker lcore (RSS across them where the
// device offers it); one mbuf pool per NUMA socket; a poll loop per worker lcore:
//
//   snapshot = Current()
//   for each port: rx burst (32) -> prefetch -> ProcessFrames -> answers: tx burst back out
//                                                             -> others: tx to the kernel
//   exception interface: rx burst -> tx out the port
//   quiescent-state report
//
// The exception interface is a net_tap device named [dpdk] exception_iface with the first
// port's MAC and the [dpdk] addresses, so ARP, ICMP, neighbour discovery and TCP (served by
// tandemd's kernel TCP listener) reach the host's stack.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dataplane/counters.h"
#include "dataplane/packet.h"
#include "dataplane/rrl.h"

namespace tandem::dataplane {

class QueryHandler;
class SnapshotPublisher;

struct DpdkPortOptions {
  std::vector<std::string> eal_args;   // without the program name
  std::vector<std::string> addresses;  // "ADDR" or "ADDR/LEN"
  std::string exception_iface = "tandem0";
  int workers = 1;
  RrlOptions rrl;  // per worker lcore
};

struct PortInfo {
  uint16_t port_id;
  std::string name;
  std::string mac;
  uint16_t queues;
  bool rss;
  bool tx_checksum_offload;
};

class DpdkServer {
 public:
  static absl::StatusOr<std::unique_ptr<DpdkServer>> Start(const DpdkPortOptions& options,
                                                           SnapshotPublisher& publisher,
                                                           const QueryHandler& handler);
  ~DpdkServer();
  DpdkServer(const DpdkServer&) = delete;
  DpdkServer& operator=(const DpdkServer&) = delete;

  // Stops the worker lcores, stops and closes the ports, cleans up the EAL. Idempotent.
  void Stop();

  WorkerCounters Totals() const;
  std::vector<WorkerCounters> PerWorker() const;
  // The counters of every port the workers poll (not the exception interface), read from
  // the drivers on the calling thread while the workers run; empty once stopped. Not to
  // be called concurrently with Stop() (the daemon holds one lock around both).
  std::vector<PortCounters> PortStats() const;
  const std::vector<PortInfo>& ports() const { return ports_; }

  struct Lcore;  // one worker's context (dpdk_port.cc)

 private:
  DpdkServer(SnapshotPublisher& publisher, const QueryHandler& handler);
  absl::Status Init(const DpdkPortOptions& options);
  absl::Status SetUpPorts(const DpdkPortOptions& options);
  absl::Status SetUpExceptionPath(const DpdkPortOptions& options);
  absl::Status Launch();

  SnapshotPublisher& publisher_;
  const QueryHandler& handler_;
  std::vector<PortInfo> ports_;
  int tap_port_ = -1;
  RrlOptions rrl_;
  std::vector<FrameContext> contexts_;  // per port, by position in ports_
  std::vector<std::unique_ptr<Lcore>> lcores_;
  std::atomic<bool> quit_{false};
  bool eal_ready_ = false;
  bool running_ = false;
};

}  // namespace tandem::dataplane
