// tandemd's life cycle in socket mode: load every file zone, publish the first snapshot,
// start the ports, reload zone files on request, stop cleanly.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "config/config.h"
#include "dataplane/handler.h"
#include "dataplane/publisher.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::dataplane {
class SocketServer;
}

namespace tandem::control {

// Loads every zone of the config and builds a snapshot. Errors name FILE:LINE; warnings
// are logged.
absl::StatusOr<std::unique_ptr<const zone::Snapshot>> BuildSnapshot(const config::Config& cfg);

// Checks what this build can serve (modes and features still to come are refused with a
// message naming the config line).
absl::Status CheckSupported(const config::Config& cfg);

class Daemon {
 public:
  explicit Daemon(config::Config cfg);
  ~Daemon();

  absl::Status Start();
  // Re-reads the zone files; on any error the running zones stay as they are.
  absl::Status ReloadZones();
  void Stop();

 private:
  config::Config cfg_;
  dataplane::QueryHandler handler_;
  std::unique_ptr<dataplane::SnapshotPublisher> publisher_;
  std::unique_ptr<dataplane::SocketServer> sockets_;
};

}  // namespace tandem::control
