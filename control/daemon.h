// tandemd's life cycle in socket mode: load every file zone, publish the first snapshot,
// start the ports, reload the configuration and zone files on request, stop cleanly.
// Thread-safe: Reload, Status and Zones may be called from the signal thread and the
// control socket at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "config/config.h"
#include "control/huge_pages.h"
#include "control/journal.h"
#include "control/pools.h"
#include "control/query_tsig.h"
#include "control/secondary.h"
#include "control/transfer_out.h"
#include "dataplane/counters.h"
#include "dataplane/handler.h"
#include "dataplane/publisher.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::dataplane {
class SocketServer;
class DpdkServer;
}

namespace tandem::control {

// Loads every zone of the config and builds a snapshot. Errors name FILE:LINE; warnings
// are logged.
absl::StatusOr<std::unique_ptr<const zone::Snapshot>> BuildSnapshot(const config::Config& cfg);

// Checks what this build can serve (modes and features still to come are refused with a
// message naming the config line).
absl::Status CheckSupported(const config::Config& cfg);

struct ZoneStatus {
  std::string name;       // "example.com."
  uint32_t serial = 0;
  std::string source;     // "file" for zones loaded from a file; else the active source's name
  std::string file;
  std::string state = "serving";  // pulled zones: also "expired", "waiting for a first copy"
  size_t nodes = 0;
  size_t memory_bytes = 0;
};

struct DaemonStatus {
  std::string version;
  absl::Duration uptime;
  std::string mode;
  int workers = 0;
  std::vector<std::string> listen;
  size_t zones = 0;
  uint64_t reloads = 0;          // successful
  uint64_t reload_failures = 0;
  absl::Time last_publish;       // when the current snapshot was published
  absl::Duration last_publish_duration;  // store + grace period of that publication
  dataplane::WorkerCounters totals;
  // Per thread: UDP workers ("udp0", "udp1", ... over the listen addresses), then "tcp".
  std::vector<std::pair<std::string, dataplane::WorkerCounters>> per_worker;
  // dpdk mode: each port's own counters (dataplane::DpdkServer::PortStats).
  std::vector<dataplane::PortCounters> ports;
};

class Daemon : public dataplane::NotifySink {
 public:
  explicit Daemon(config::Config cfg);
  ~Daemon() override;

  absl::Status Start();
  // In mode "dpdk": the ports the EAL found (for logs and tests).
  std::vector<std::string> PortDescriptions() const;
  // Re-reads the config file and every zone file; adds, removes and changes zones without
  // dropping a query. On any error nothing changes and the error says why. Settings that
  // need a restart (server.mode, listen, workers) are reported in a warning and kept.
  absl::Status Reload();
  void Stop();

  DaemonStatus Status(bool with_ports = true) const;  // with_ports: read the DPDK ports' counters
  std::vector<ZoneStatus> Zones() const;
  config::Config CurrentConfig() const;

  // Pulled zones (tandemctl sources / refresh). NotFound for a zone that is not pulled.
  absl::StatusOr<PulledZoneStatus> Sources(const std::string& zone) const;
  absl::Status Refresh(const std::string& zone);
  absl::Status Use(const std::string& zone, const std::string& source);
  std::vector<PulledZoneStatus> PulledZones() const;
  std::vector<PoolStatus> PoolsStatus() const;
  absl::Status OverrideMember(const std::string& pool, const std::string& member, const std::string& state);

  // NOTIFY from the workers, handed to the pulled zones.
  uint8_t OnNotify(const uint8_t* zone_wire, size_t zone_len, const sockaddr* from) override;

 private:
  void PublishLocked(std::unique_ptr<const zone::Snapshot> snapshot);
  // Builds the snapshot from the file zones and the pulled zones' active copies.
  void Republish();
  // Republish's publication, under publish_mu_; returns the zones published.
  std::vector<std::shared_ptr<const zone::Zone>> PublishServed();
  // Transfer-out settings of the zones in `cfg` (ACLs, histories, NOTIFY targets); for
  // file zones, records the difference from the version served before in the history.
  absl::Status UpdatePrimaryState(const config::Config& cfg,
                                  const std::vector<std::shared_ptr<const zone::Zone>>& file_zones,
                                  const std::vector<std::shared_ptr<const zone::Zone>>& before);
  std::optional<TransferableZone> FindTransferable(const std::string& apex) const;

  mutable std::mutex mu_;  // control plane only; never taken by a worker
  config::Config cfg_;
  absl::Time started_;
  uint64_t reloads_ = 0;
  uint64_t reload_failures_ = 0;
  absl::Time last_publish_;
  absl::Duration last_publish_duration_;
  dataplane::QueryHandler handler_;
  std::unique_ptr<dataplane::SnapshotPublisher> publisher_;
  // publish_mu_ orders publications (reload, pulled-zone changes); notify_mu_ guards the
  // secondaries_ pointer for NOTIFY from workers and is never held across a publication.
  std::mutex publish_mu_;
  mutable std::mutex notify_mu_;
  std::vector<std::shared_ptr<const zone::Zone>> file_zones_;
  std::unique_ptr<Secondaries> secondaries_;
  std::unique_ptr<Pools> pools_;
  // Transfers out and NOTIFY: guarded by transfer_mu_ (never held across a publication).
  struct ZoneOut {
    std::vector<dataplane::Prefix> allow;
    std::vector<std::string> notify;
    std::shared_ptr<Journal> journal;
    uint32_t notified_serial = 0;
    bool notified = false;
  };
  mutable std::mutex transfer_mu_;
  std::map<std::string, ZoneOut> zones_out_;  // by lower-case apex (wire)
  std::map<std::string, std::shared_ptr<const zone::Zone>> served_;  // what the snapshot holds
  // The ports are answering; set after huge_pages_ is made, cleared before it goes.
  std::atomic<bool> serving_{false};
  std::unique_ptr<HugePageMover> huge_pages_;
  std::unique_ptr<TransferServer> transfer_server_;
  QueryTsig query_tsig_;
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<dataplane::DpdkServer> dpdk_;      // mode "dpdk": UDP on the poll-mode path
  std::unique_ptr<dataplane::SocketServer> sockets_;  // UDP and TCP; TCP only in mode "dpdk"
};

}  // namespace tandem::control
