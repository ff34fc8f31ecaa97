// Daemon start, reload and stop.
#include "control/daemon.h"

#include <malloc.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "control/zone_copy.h"
#include "absl/strings/str_cat.h"
#include "dataplane/dns/name.h"
#include "dataplane/dns/rrtype.h"
#include "dataplane/dns/wire.h"
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
  if (errors.empty()) return absl::OkStatus();
  return absl::UnimplementedError(absl::StrJoin(errors, "\n"));
}

namespace {

absl::StatusOr<std::vector<std::shared_ptr<const zone::Zone>>> LoadFileZones(const config::Config& cfg) {
  std::vector<std::shared_ptr<const zone::Zone>> zones;
  std::vector<std::string> errors;
  for (const auto& zc : cfg.zones) {
    if (zc.file.empty()) continue;  // pulled from sources
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
  return zones;
}

std::string FileSafeName(std::string s) {
  if (s.size() > 1 && s.back() == '.') s.pop_back();
  for (char& c : s)
    if (c == '/' || c == '\\') c = '_';
  return absl::AsciiStrToLower(s);
}

// Adds the difference from the version served before (in memory after a reload, the
// saved version after a restart) to the zone's IXFR history, and saves this version.
// Both versions are compared as built zones, never listed as records.
void RecordVersion(const std::shared_ptr<const zone::Zone>& version, const zone::Zone* before,
                   const std::string& dir, Journal& journal) {
  const zone::Zone& z = *version;
  std::string saved = absl::StrCat(dir, "/current.zone");
  std::string apex(reinterpret_cast<const char*>(z.apex()), z.apex_len());
  std::shared_ptr<const zone::Zone> saved_version;
  if (before == nullptr) {
    if (auto copy = ZoneCopy::Load(apex, saved); copy.ok()) saved_version = copy->zone();
    before = saved_version.get();
  }
  if (before != nullptr) {
    uint32_t old_serial = before->serial();
    IxfrDiff diff = Difference(*before, z);
    saved_version.reset();
    if (old_serial == z.serial()) {
      if (!diff.removed.empty() || !diff.added.empty())
        LogWarning("zone ", z.name_text(), " changed without a new serial (", z.serial(),
                   "): secondaries will not notice");
      return;
    }
    if (SerialNewer(z.serial(), old_serial)) {
      if (auto s = journal.Append(std::move(diff)); !s.ok()) LogWarning("zone ", z.name_text(), ": IXFR history: ", s.message());
    }
  }
  if (auto s = ZoneCopy::FromZone(version).Save(saved); !s.ok()) LogWarning("zone ", z.name_text(), ": ", s.message());
}

}  // namespace

absl::StatusOr<std::unique_ptr<const zone::Snapshot>> BuildSnapshot(const config::Config& cfg) {
  auto zones = LoadFileZones(cfg);
  if (!zones.ok()) return zones.status();
  return std::make_unique<const zone::Snapshot>(std::move(*zones));
}

Daemon::Daemon(config::Config cfg)
    : cfg_(std::move(cfg)),
      started_(absl::Now()),
      handler_(dataplane::HandlerOptions{
          .udp_max_payload = static_cast<uint16_t>(cfg_.server.udp_max_payload),
          .identity = cfg_.server.identity,
          .version = cfg_.server.version}) {}

Daemon::~Daemon() { Stop(); }

// Callers hold publish_mu_ (or run before the ports start).
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
  // Zones are built in large arrays that live for one build (a transfer's is built on a
  // thread of its own): with a fixed threshold they are mapped and unmapped, never kept in
  // a heap. glibc's threshold otherwise rises with the first such array freed, and the
  // free top of a thread's heap is not given back, even by malloc_trim.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  auto zones = LoadFileZones(cfg_);
  if (!zones.ok()) return zones.status();
  file_zones_ = std::move(*zones);
  // Pulled zones: the saved copies are served from the first snapshot on.
  auto secondaries = std::make_unique<Secondaries>(cfg_, [this] { Republish(); });
  if (auto s = secondaries->Init(); !s.ok()) return s;
  auto pools = std::make_unique<Pools>(cfg_, [this] { Republish(); });
  if (auto s = pools->Init(); !s.ok()) return s;
  {
    std::lock_guard<std::mutex> n(notify_mu_);
    secondaries_ = std::move(secondaries);
    pools_ = std::move(pools);
  }
  handler_.set_notify_sink(this);
  // Transfer-out settings now; the file zones' IXFR history (each compared with the version
  // saved before, then saved: seconds for a zone of millions of records) once they are
  // served, and NOTIFY after that, so that a notified secondary finds the difference.
  config::Config without_notify = cfg_;
  for (auto& zc : without_notify.zones) zc.notify.clear();
  if (auto s = UpdatePrimaryState(without_notify, {}, {}); !s.ok()) return s;
  std::vector<tsig::Key> keys;
  for (const auto& k : cfg_.tsig) {
    auto key = tsig::MakeKey(k);
    if (!key.ok()) return key.status();
    keys.push_back(*key);
  }
  query_tsig_.SetKeys(keys);
  handler_.set_tsig_sink(&query_tsig_);
  transfer_server_ = std::make_unique<TransferServer>(
      [this](const std::string& apex) { return FindTransferable(apex); }, std::move(keys));
  handler_.set_transfer_sink(transfer_server_.get());
  notifier_ = std::make_unique<Notifier>();
  // Readers: the UDP workers or lcores, and the TCP thread.
  unsigned readers = static_cast<unsigned>(cfg_.server.workers * (cfg_.server.listen.size() + 1) + 8);
  publisher_ = std::make_unique<dataplane::SnapshotPublisher>(readers);
  Republish();

  dataplane::SocketPortOptions opts;
  opts.listen = cfg_.server.listen;
  opts.workers = cfg_.server.workers;
  opts.tcp_idle_timeout = cfg_.server.tcp_idle_timeout;
  opts.tcp_max_connections = cfg_.server.tcp_max_connections;
  opts.udp_coalesce_us = static_cast<uint32_t>(cfg_.server.udp_coalesce_us);
  opts.rrl = {.rate = static_cast<uint32_t>(cfg_.rrl.rate),
              .slip = static_cast<uint32_t>(cfg_.rrl.slip),
              .ipv4_prefix = static_cast<uint8_t>(cfg_.rrl.ipv4_prefix),
              .ipv6_prefix = static_cast<uint8_t>(cfg_.rrl.ipv6_prefix),
              .table_size = static_cast<uint32_t>(cfg_.rrl.table_size)};
  if (cfg_.server.mode == "dpdk") {
    dataplane::DpdkPortOptions d{cfg_.dpdk.eal_args, cfg_.dpdk.address, cfg_.dpdk.exception_iface,
                                 cfg_.server.workers, opts.rrl};
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
  // Served: the zones onto huge pages, in the background (later ones as Republish
  // publishes them).
  huge_pages_ = std::make_unique<HugePageMover>();
  serving_.store(true, std::memory_order_release);
  std::vector<std::shared_ptr<const zone::Zone>> served;
  {
    std::lock_guard<std::mutex> t(transfer_mu_);
    for (const auto& [apex, z] : served_) served.push_back(z);
  }
  huge_pages_->Add(served);
  secondaries_->Start();
  pools_->Start();
  if (cfg_.rrl.rate > 0)
    LogInfo("rrl: ", cfg_.rrl.rate, " answers/s per /", cfg_.rrl.ipv4_prefix, " and /",
            cfg_.rrl.ipv6_prefix, " prefix, slip ", cfg_.rrl.slip);
  if (dpdk_)
    LogInfo("serving ", cfg_.zones.size(), " zones on ", absl::StrJoin(cfg_.dpdk.address, ", "),
            " (UDP on the poll-mode path with ", cfg_.server.workers, " lcores, TCP through ",
            cfg_.dpdk.exception_iface, ")");
  else
    LogInfo("serving ", cfg_.zones.size(), " zones on ", absl::StrJoin(cfg_.server.listen, ", "),
            " (UDP and TCP, socket mode, ", cfg_.server.workers, " workers)");
  if (auto s = UpdatePrimaryState(cfg_, file_zones_, {}); !s.ok()) return s;
  Republish();  // NOTIFY, now that the history holds this version
  // What loading and comparing the zones used (builders, parsers, the saved versions) is
  // free now: give it back rather than keep it in the heap for the daemon's lifetime.
  malloc_trim(0);
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
  auto zones = LoadFileZones(*next);
  if (!zones.ok()) return fail(zones.status());
  // What the running ports were started with stays until a restart.
  if (next->server.mode != cfg_.server.mode || next->server.listen != cfg_.server.listen ||
      next->server.workers != cfg_.server.workers ||
      next->server.udp_max_payload != cfg_.server.udp_max_payload ||
      next->server.udp_coalesce_us != cfg_.server.udp_coalesce_us ||
      next->server.tcp_idle_timeout != cfg_.server.tcp_idle_timeout ||
      next->server.tcp_max_connections != cfg_.server.tcp_max_connections ||
      next->server.state_dir != cfg_.server.state_dir ||
      next->server.identity != cfg_.server.identity ||
      next->server.version != cfg_.server.version) {
    LogWarning("reload: changes to [server] mode, listen, workers, state_dir, udp_max_payload, "
               "udp_coalesce_us, tcp_*, identity and version take effect at the next restart");
    next->server = cfg_.server;
  }
  if (next->rrl.rate != cfg_.rrl.rate || next->rrl.slip != cfg_.rrl.slip ||
      next->rrl.ipv4_prefix != cfg_.rrl.ipv4_prefix || next->rrl.ipv6_prefix != cfg_.rrl.ipv6_prefix ||
      next->rrl.table_size != cfg_.rrl.table_size) {
    LogWarning("reload: changes to [rrl] take effect at the next restart");
    next->rrl = cfg_.rrl;
  }
  // Pulled zones start again from their saved copies (the running ones saved every copy
  // they accepted), so nothing fetched is lost and nothing is fetched twice.
  secondaries_->Stop();
  auto secondaries = std::make_unique<Secondaries>(*next, [this] { Republish(); });
  if (auto s = secondaries->Init(); !s.ok()) {
    secondaries_->Start();
    return fail(s);
  }
  auto pools = std::make_unique<Pools>(*next, [this] { Republish(); });
  if (auto s = pools->Init(); !s.ok()) {
    secondaries_->Start();
    return fail(s);
  }
  if (auto s = UpdatePrimaryState(*next, *zones, file_zones_); !s.ok()) {
    secondaries->Stop();
    secondaries_->Start();
    return fail(s);
  }
  std::vector<tsig::Key> keys;
  for (const auto& k : next->tsig)
    if (auto key = tsig::MakeKey(k); key.ok()) keys.push_back(*key);
  query_tsig_.SetKeys(keys);
  transfer_server_->SetKeys(std::move(keys));
  LogLevel level;
  if (ParseLogLevel(next->server.log_level, &level)) SetLogLevel(level);
  size_t before = cfg_.zones.size();
  cfg_ = std::move(*next);
  {
    std::lock_guard<std::mutex> p(publish_mu_);
    std::lock_guard<std::mutex> n(notify_mu_);
    file_zones_ = std::move(*zones);
    secondaries_.swap(secondaries);
    pools_->Stop();
    pools_.swap(pools);
  }
  Republish();
  secondaries_->Start();
  pools_->Start();
  secondaries.reset();  // the old one, stopped above
  malloc_trim(0);       // the reload's transient memory, as at the start
  ++reloads_;
  LogInfo("reload: serving ", cfg_.zones.size(), " zones (was ", before, ")");
  return absl::OkStatus();
}

void Daemon::Republish() {
  std::vector<std::shared_ptr<const zone::Zone>> zones = PublishServed();
  // The zones new in it onto huge pages, now that they are answered.
  if (serving_.load(std::memory_order_acquire)) huge_pages_->Add(zones);
}

std::vector<std::shared_ptr<const zone::Zone>> Daemon::PublishServed() {
  std::lock_guard<std::mutex> p(publish_mu_);
  std::vector<std::shared_ptr<const zone::Zone>> zones = file_zones_;
  if (secondaries_)
    for (auto& z : secondaries_->ActiveZones()) zones.push_back(std::move(z));
  std::vector<std::tuple<std::string, uint32_t, std::vector<std::string>>> to_notify;
  {
    std::lock_guard<std::mutex> t(transfer_mu_);
    served_.clear();
    for (const auto& z : zones) {
      std::string apex(reinterpret_cast<const char*>(z->apex()), z->apex_len());
      served_[apex] = z;
      auto it = zones_out_.find(apex);
      if (it == zones_out_.end() || it->second.notify.empty() || z->servfail()) continue;
      ZoneOut& out = it->second;
      if (!out.notified || out.notified_serial != z->serial()) {
        out.notified = true;
        out.notified_serial = z->serial();
        to_notify.emplace_back(apex, z->serial(), out.notify);
      }
    }
  }
  PublishLocked(std::make_unique<const zone::Snapshot>(zones, pools_ ? pools_->Table() : nullptr));
  // After the new serial is served: tell the secondaries.
  if (notifier_)
    for (auto& [apex, serial, targets] : to_notify) notifier_->Notify(apex, serial, targets);
  return zones;
}

std::optional<TransferableZone> Daemon::FindTransferable(const std::string& apex) const {
  std::lock_guard<std::mutex> t(transfer_mu_);
  auto served = served_.find(apex);
  auto out = zones_out_.find(apex);
  if (served == served_.end() || out == zones_out_.end()) return std::nullopt;
  return TransferableZone{served->second, out->second.allow, out->second.journal};
}

absl::Status Daemon::UpdatePrimaryState(const config::Config& cfg,
                                        const std::vector<std::shared_ptr<const zone::Zone>>& file_zones,
                                        const std::vector<std::shared_ptr<const zone::Zone>>& before) {
  std::map<std::string, ZoneOut> next;
  std::map<std::string, std::shared_ptr<const zone::Zone>> by_apex, previous;
  for (const auto& z : file_zones) by_apex[std::string(reinterpret_cast<const char*>(z->apex()), z->apex_len())] = z;
  for (const auto& z : before) previous[std::string(reinterpret_cast<const char*>(z->apex()), z->apex_len())] = z;
  for (const auto& zc : cfg.zones) {
    auto wire = dns::NameFromText(zc.name);
    if (!wire.ok()) return wire.status();
    std::string apex = *wire;
    dns::LowerName(reinterpret_cast<uint8_t*>(apex.data()), apex.size());
    ZoneOut out;
    for (const auto& p : zc.allow_transfer)
      if (auto prefix = dataplane::ParsePrefix(p)) out.allow.push_back(*prefix);
    out.notify = zc.notify;
    {
      std::lock_guard<std::mutex> t(transfer_mu_);
      if (auto it = zones_out_.find(apex); it != zones_out_.end()) {
        out.notified = it->second.notified;
        out.notified_serial = it->second.notified_serial;
        out.journal = it->second.journal;
      }
    }
    auto current = by_apex.find(apex);
    if (current != by_apex.end()) {
      std::string name = FileSafeName(zc.name);
      std::string dir = absl::StrCat(cfg.server.state_dir, "/primary/", name);
      // Copy on write: transfers in flight keep reading the history they started with.
      auto journal = out.journal ? std::make_shared<Journal>(*out.journal)
                                 : std::make_shared<Journal>(Journal::Load(absl::StrCat(dir, "/ixfr")));
      RecordVersion(current->second, previous.count(apex) ? previous[apex].get() : nullptr, dir, *journal);
      out.journal = std::move(journal);
    }
    next[apex] = std::move(out);
  }
  std::lock_guard<std::mutex> t(transfer_mu_);
  zones_out_ = std::move(next);
  return absl::OkStatus();
}

uint8_t Daemon::OnNotify(const uint8_t* zone_wire, size_t zone_len, const sockaddr* from) {
  std::lock_guard<std::mutex> n(notify_mu_);
  if (!secondaries_) return dns::kRefused;
  return secondaries_->OnNotify(zone_wire, zone_len, from);
}

absl::StatusOr<PulledZoneStatus> Daemon::Sources(const std::string& zone) const {
  std::lock_guard<std::mutex> n(notify_mu_);
  auto apex = dns::NameFromText(zone);
  if (!apex.ok()) return apex.status();
  std::string want = dns::NameToText(reinterpret_cast<const uint8_t*>(apex->data()));
  if (secondaries_)
    for (auto& z : secondaries_->Status())
      if (absl::EqualsIgnoreCase(z.name, want)) return z;
  return absl::NotFoundError(absl::StrCat("zone ", want, " is not pulled from sources"));
}

absl::Status Daemon::Use(const std::string& zone, const std::string& source) {
  std::lock_guard<std::mutex> n(notify_mu_);
  if (!secondaries_) return absl::NotFoundError(absl::StrCat("zone ", zone, " is not pulled from sources"));
  return secondaries_->Use(zone, source);
}

std::vector<PulledZoneStatus> Daemon::PulledZones() const {
  std::lock_guard<std::mutex> n(notify_mu_);
  if (!secondaries_) return {};
  return secondaries_->Status();
}

std::vector<PoolStatus> Daemon::PoolsStatus() const {
  std::lock_guard<std::mutex> n(notify_mu_);
  return pools_ ? pools_->Status() : std::vector<PoolStatus>{};
}

absl::Status Daemon::OverrideMember(const std::string& pool, const std::string& member, const std::string& state) {
  // mu_ keeps a reload from replacing pools_ meanwhile; Override republishes, which
  // takes publish_mu_ (never held while waiting for mu_).
  std::lock_guard<std::mutex> lock(mu_);
  if (!pools_) return absl::NotFoundError(absl::StrCat("no pool ", pool));
  return pools_->Override(pool, member, state);
}

absl::Status Daemon::Refresh(const std::string& zone) {
  std::lock_guard<std::mutex> n(notify_mu_);
  if (!secondaries_) return absl::NotFoundError(absl::StrCat("zone ", zone, " is not pulled from sources"));
  return secondaries_->Refresh(zone);
}

void Daemon::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (secondaries_) secondaries_->Stop();
  if (pools_) pools_->Stop();
  // Nothing republishes now (the reload path holds mu_).
  serving_.store(false, std::memory_order_release);
  huge_pages_.reset();
  if (notifier_) notifier_->Stop();
  if (sockets_) {
    sockets_->Stop();
    sockets_.reset();
  }
  if (dpdk_) {
    dpdk_->Stop();
    dpdk_.reset();
  }
  if (transfer_server_) transfer_server_->Stop();  // after the ports: nothing hands over now
}

DaemonStatus Daemon::Status(bool with_ports) const {
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
    if (with_ports) s.ports = dpdk_->PortStats();  // under mu_: Stop() cannot close the ports meanwhile
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
  size_t i = 0;
  for (const auto& zc : cfg_.zones) {
    if (zc.file.empty() || i >= file_zones_.size()) continue;
    const zone::Zone& z = *file_zones_[i++];
    ZoneStatus zs;
    zs.name = z.name_text();
    zs.serial = z.serial();
    zs.source = "file";
    zs.file = zc.file;
    zs.nodes = z.node_count();
    zs.memory_bytes = z.MemoryBytes();
    out.push_back(std::move(zs));
  }
  std::lock_guard<std::mutex> n(notify_mu_);
  if (!secondaries_) return out;
  auto active = secondaries_->ActiveZones();
  auto status = secondaries_->Status();
  for (size_t k = 0; k < status.size() && k < active.size(); ++k) {
    ZoneStatus zs;
    zs.name = status[k].name;
    zs.serial = status[k].serial;
    zs.source = status[k].active_source;
    zs.state = status[k].state;
    zs.nodes = active[k]->servfail() ? 0 : active[k]->node_count();
    zs.memory_bytes = active[k]->MemoryBytes();
    out.push_back(std::move(zs));
  }
  return out;
}

config::Config Daemon::CurrentConfig() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cfg_;
}

}  // namespace tandem::control
