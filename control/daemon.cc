// Daemon start, reload and stop.
#include "control/daemon.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "control/log.h"
#include "control/zone_file.h"
#include "dataplane/socket_port.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::control {

absl::Status CheckSupported(const config::Config& cfg) {
  std::vector<std::string> errors;
  if (cfg.server.mode != "socket")
    errors.push_back(absl::StrCat(cfg.path, ": server.mode \"", cfg.server.mode,
                                  "\" is not available in this build; use \"socket\""));
  for (const auto& z : cfg.zones) {
    if (!z.sources.empty())
      errors.push_back(absl::StrCat(cfg.path, ":", z.line, ": zone ", z.name,
                                    ": pulling zones from sources is not available in this build"));
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::UnimplementedError(absl::StrJoin(errors, "\n"));
}

absl::StatusOr<std::unique_ptr<const zone::Snapshot>> BuildSnapshot(const config::Config& cfg) {
  std::vector<std::shared_ptr<const zone::Zone>> zones;
  std::vector<std::string> errors;
  for (const auto& zc : cfg.zones) {
    auto loaded = LoadZoneFile(zc.name, zc.file);
    if (!loaded.ok()) {
      errors.emplace_back(loaded.status().message());
      continue;
    }
    for (const auto& w : loaded->warnings) LogWarning("zone ", zc.name, ": ", w);
    LogInfo("zone ", loaded->zone->name_text(), ": loaded ", loaded->records, " records, serial ",
            loaded->zone->serial(), ", from ", zc.file);
    zones.push_back(std::move(loaded->zone));
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  return std::make_unique<const zone::Snapshot>(std::move(zones));
}

Daemon::Daemon(config::Config cfg)
    : cfg_(std::move(cfg)),
      handler_(dataplane::HandlerOptions{static_cast<uint16_t>(cfg_.server.udp_max_payload)}) {}

Daemon::~Daemon() { Stop(); }

absl::Status Daemon::Start() {
  auto snapshot = BuildSnapshot(cfg_);
  if (!snapshot.ok()) return snapshot.status();
  // Readers: the UDP workers of every listen address and the TCP thread.
  unsigned readers = static_cast<unsigned>(cfg_.server.workers * cfg_.server.listen.size() + 8);
  publisher_ = std::make_unique<dataplane::SnapshotPublisher>(readers);
  publisher_->Publish(std::move(*snapshot));

  dataplane::SocketPortOptions opts;
  opts.listen = cfg_.server.listen;
  opts.workers = cfg_.server.workers;
  opts.tcp_idle_timeout = cfg_.server.tcp_idle_timeout;
  opts.tcp_max_connections = cfg_.server.tcp_max_connections;
  auto server = dataplane::SocketServer::Start(opts, *publisher_, handler_);
  if (!server.ok()) return server.status();
  sockets_ = std::move(*server);
  LogInfo("serving ", cfg_.zones.size(), " zones on ", absl::StrJoin(cfg_.server.listen, ", "),
          " (UDP and TCP, socket mode, ", cfg_.server.workers, " workers)");
  return absl::OkStatus();
}

absl::Status Daemon::ReloadZones() {
  auto snapshot = BuildSnapshot(cfg_);
  if (!snapshot.ok()) return snapshot.status();
  publisher_->Publish(std::move(*snapshot));
  return absl::OkStatus();
}

void Daemon::Stop() {
  if (sockets_) {
    sockets_->Stop();
    sockets_.reset();
  }
}

}  // namespace tandem::control
