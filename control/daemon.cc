// Daemon start, reload and stop.
#include "control/daemon.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "control/log.h"
#include "control/zone_file.h"
#include "dataplane/dpdk_port.h"
#include "dataplane/socket_port.h"
#include "dataplane/zone/snapshot.h"

namespace tandem::control {

absl::Status CheckSupported(const config::Config& cfg) {
  std::vector<std::string> errors;
  if (cfg.server.mode == "dpdk" && cfg.dpdk.address.empty())
    errors.push_back(absl::StrCat(cfg.path, ": dpdk.address: mode \"dpdk\" needs at least one address to answer on"));
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
      started_(absl::Now()),
      handler_(dataplane::HandlerOptions{static_cast<uint16_t>(cfg_.server.udp_max_payload)}) {}

Daemon::~Daemon() { Stop(); }

void Daemon::PublishLocked(std::unique_ptr<const zone::Snapshot> snapshot) {
  absl::Time t0 = absl::Now();
  publisher_->Publish(std::move(snapshot));
  last_publish_ = absl::Now();
  last_publish_duration_ = last_publish_ - t0;
}

namespace {

// "ADDR[/LEN]" -> "ADDR:53" or "[ADDR]:53": where the kernel TCP listener serves the
// poll-mode addresses.
std::string TcpEndpointFor(const std::string& address) {
  std::string a = address.substr(0, address.find('/'));
  return a.find(':') == std::string::npos ? absl::StrCat(a, ":53") : absl::StrCat("[", a, "]:53");
}

}  // namespace

absl::Status Daemon::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  auto snapshot = BuildSnapshot(cfg_);
  if (!snapshot.ok()) return snapshot.status();
  // Readers: the UDP workers or lcores, and the TCP thread.
  unsigned readers = static_cast<unsigned>(cfg_.server.workers * (cfg_.server.listen.size() + 1) + 8);
  publisher_ = std::make_unique<dataplane::SnapshotPublisher>(readers);
  PublishLocked(std::move(*snapshot));

  dataplane::SocketPortOptions opts;
  opts.listen = cfg_.server.listen;
  opts.workers = cfg_.server.workers;
  opts.tcp_idle_timeout = cfg_.server.tcp_idle_timeout;
  opts.tcp_max_connections = cfg_.server.tcp_max_connections;
  if (cfg_.server.mode == "dpdk") {
    dataplane::DpdkPortOptions d{cfg_.dpdk.eal_args, cfg_.dpdk.address, cfg_.dpdk.exception_iface,
                                 cfg_.server.workers};
    auto dpdk = dataplane::DpdkServer::Start(d, *publisher_, handler_);
    if (!dpdk.ok()) return dpdk.status();
    dpdk_ = std::move(*dpdk);
    for (const auto& p : dpdk_->ports())
      LogInfo("dpdk: port ", p.port_id, " ", p.name, " mac ", p.mac, ", ", p.queues, " queues",
              p.rss ? ", RSS" : "", p.tx_checksum_offload ? ", checksum offload" : "");
    // TCP reaches the host stack through the exception interface, which now holds the
    // addresses: the kernel listener serves it there. No kernel UDP socket.
    opts.listen.clear();
    for (const auto& a : cfg_.dpdk.address) opts.listen.push_back(TcpEndpointFor(a));
    opts.udp = false;
  }
  auto server = dataplane::SocketServer::Start(opts, *publisher_, handler_);
  if (!server.ok()) return server.status();
  sockets_ = std::move(*server);
  if (dpdk_)
    LogInfo("serving ", cfg_.zones.size(), " zones on ", absl::StrJoin(cfg_.dpdk.address, ", "),
            " (UDP on the poll-mode path with ", cfg_.server.workers, " lcores, TCP through ",
            cfg_.dpdk.exception_iface, ")");
  else
    LogInfo("serving ", cfg_.zones.size(), " zones on ", absl::StrJoin(cfg_.server.listen, ", "),
            " (UDP and TCP, socket mode, ", cfg_.server.workers, " workers)");
  return absl::OkStatus();
}

std::vector<std::string> Daemon::PortDescriptions() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  if (dpdk_)
    for (const auto& p : dpdk_->ports()) out.push_back(absl::StrCat(p.name, " ", p.mac));
  return out;
}

absl::Status Daemon::Reload() {
  std::lock_guard<std::mutex> lock(mu_);
  auto fail = [this](absl::Status s) {
    ++reload_failures_;
    return absl::Status(s.code(), absl::StrCat("reload failed, still serving the previous configuration:\n",
                                               s.message()));
  };
  auto next = config::LoadConfigFile(cfg_.path);
  if (!next.ok()) return fail(next.status());
  if (auto s = CheckSupported(*next); !s.ok()) return fail(s);
  auto snapshot = BuildSnapshot(*next);
  if (!snapshot.ok()) return fail(snapshot.status());
  // What the running ports were started with stays until a restart.
  if (next->server.mode != cfg_.server.mode || next->server.listen != cfg_.server.listen ||
      next->server.workers != cfg_.server.workers ||
      next->server.udp_max_payload != cfg_.server.udp_max_payload ||
      next->server.tcp_idle_timeout != cfg_.server.tcp_idle_timeout ||
      next->server.tcp_max_connections != cfg_.server.tcp_max_connections) {
    LogWarning("reload: changes to [server] mode, listen, workers, udp_max_payload and tcp_* "
               "take effect at the next restart");
    next->server = cfg_.server;
  }
  LogLevel level;
  if (ParseLogLevel(next->server.log_level, &level)) SetLogLevel(level);
  size_t before = cfg_.zones.size();
  cfg_ = std::move(*next);
  PublishLocked(std::move(*snapshot));
  ++reloads_;
  LogInfo("reload: serving ", cfg_.zones.size(), " zones (was ", before, ")");
  return absl::OkStatus();
}

void Daemon::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (sockets_) {
    sockets_->Stop();
    sockets_.reset();
  }
  if (dpdk_) {
    dpdk_->Stop();
    dpdk_.reset();
  }
}

DaemonStatus Daemon::Status() const {
  std::lock_guard<std::mutex> lock(mu_);
  DaemonStatus s;
  s.version = TANDEM_VERSION;
  s.uptime = absl::Now() - started_;
  s.mode = cfg_.server.mode;
  s.workers = cfg_.server.workers;
  s.listen = cfg_.server.listen;
  s.zones = cfg_.zones.size();
  s.reloads = reloads_;
  s.reload_failures = reload_failures_;
  s.last_publish = last_publish_;
  s.last_publish_duration = last_publish_duration_;
  if (dpdk_) {
    std::vector<dataplane::WorkerCounters> each = dpdk_->PerWorker();
    for (size_t i = 0; i < each.size(); ++i) {
      s.totals += each[i];
      s.per_worker.emplace_back(absl::StrCat("lcore", i), each[i]);
    }
  }
  if (sockets_) {
    s.totals += sockets_->Totals();
    std::vector<dataplane::WorkerCounters> each = sockets_->PerWorker();
    for (size_t i = 0; i < each.size(); ++i)
      s.per_worker.emplace_back(i + 1 == each.size() ? std::string("tcp") : absl::StrCat("udp", i), each[i]);
  }
  return s;
}

std::vector<ZoneStatus> Daemon::Zones() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ZoneStatus> out;
  const zone::Snapshot* snap = publisher_ ? publisher_->Current() : nullptr;
  if (snap == nullptr) return out;
  // The snapshot is only replaced under mu_, which we hold: safe to read here.
  for (size_t i = 0; i < snap->zones().size(); ++i) {
    const zone::Zone& z = *snap->zones()[i];
    ZoneStatus zs;
    zs.name = z.name_text();
    zs.serial = z.serial();
    zs.source = "file";
    zs.file = i < cfg_.zones.size() ? cfg_.zones[i].file : "";
    zs.nodes = z.node_count();
    zs.memory_bytes = z.MemoryBytes();
    out.push_back(std::move(zs));
  }
  return out;
}

config::Config Daemon::CurrentConfig() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cfg_;
}

}  // namespace tandem::control
