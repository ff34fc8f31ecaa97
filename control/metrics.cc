// The Prometheus endpoint. Nothing is counted here: every scrape calls Daemon::Status() and
// Daemon::Zones(), which sum the per-worker counters at that moment, and turns the result
// into metric families. No background thread copies counters and no registry is updated by
// the data plane.
#include "control/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <iterator>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "control/daemon.h"
#include "dataplane/address.h"

namespace tandem::control {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;
using Families = std::vector<MetricFamily>;

// ---- building families ----

MetricFamily NewFamily(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

MetricFamily Counter(std::string name, std::string help) {
  return NewFamily(std::move(name), std::move(help), MetricType::Counter);
}

MetricFamily Gauge(std::string name, std::string help) {
  return NewFamily(std::move(name), std::move(help), MetricType::Gauge);
}

void AddSample(MetricFamily& f, double value, Labels labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  f.metric.push_back(std::move(m));
}

// A family with one unlabelled sample.
MetricFamily Single(MetricFamily f, double value) {
  AddSample(f, value);
  return f;
}

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

// ---- traffic: totals over every worker ----

// The mnemonic of a response code (IANA "DNS RCODEs"; BADVERS rather than BADSIG, since
// TSIG errors are not header rcodes), or "" for an unassigned one.
std::string_view RcodeName(int rcode) {
  static constexpr std::string_view kNames[24] = {
      "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",  "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
      "NXRRSET", "NOTAUTH", "NOTZONE",  "DSOTYPENI", "",        "",        "",         "",
      "BADVERS", "BADKEY",  "BADTIME",  "BADMODE",   "BADNAME", "BADALG",  "BADTRUNC", "BADCOOKIE"};
  static_assert(std::size(kNames) == std::size(dataplane::WorkerCounters{}.responses));
  return rcode >= 0 && rcode < 24 ? kNames[rcode] : std::string_view();
}

// The rcodes a query can get from tandem: always exported, at 0 until counted, so that
// rate() works from the first scrape. Others appear once counted.
bool AlwaysExported(int rcode) { return rcode <= 6 || rcode == 9 || rcode == 16; }

std::string RcodeLabel(int rcode) {
  std::string_view name = RcodeName(rcode);
  return name.empty() ? absl::StrCat(rcode) : std::string(name);
}

MetricFamily Queries(const dataplane::WorkerCounters& c) {
  MetricFamily f = Counter("tandem_queries_total", "DNS queries received, by transport.");
  AddSample(f, c.queries[static_cast<int>(dataplane::Transport::kUdp)], {{"transport", "udp"}});
  AddSample(f, c.queries[static_cast<int>(dataplane::Transport::kTcp)], {{"transport", "tcp"}});
  return f;
}

MetricFamily Responses(const dataplane::WorkerCounters& c) {
  MetricFamily f = Counter("tandem_responses_total",
                           "DNS responses sent, by response code (the name, or the number "
                           "of an unassigned code).");
  for (int rcode = 0; rcode < static_cast<int>(std::size(c.responses)); ++rcode) {
    if (c.responses[rcode] == 0 && !AlwaysExported(rcode)) continue;
    AddSample(f, c.responses[rcode], {{"rcode", RcodeLabel(rcode)}});
  }
  return f;
}

void AddTraffic(const dataplane::WorkerCounters& c, Families& out) {
  out.push_back(Queries(c));
  out.push_back(Responses(c));
  out.push_back(Single(
      Counter("tandem_dropped_total", "Requests not answered (QR set, shorter than a DNS header)."),
      c.dropped));
  out.push_back(
      Single(Counter("tandem_truncated_total", "UDP responses sent with TC set."), c.truncated));
  MetricFamily rrl = Counter("tandem_rrl_responses_total",
                             "UDP answers over the [rrl] rate: dropped, or slipped (sent "
                             "truncated). They are also counted in tandem_responses_total.");
  AddSample(rrl, c.rrl_dropped, {{"action", "dropped"}});
  AddSample(rrl, c.rrl_slipped, {{"action", "slipped"}});
  out.push_back(std::move(rrl));
}

// ---- per worker ----

void AddWorkers(const std::vector<std::pair<std::string, dataplane::WorkerCounters>>& workers,
                Families& out) {
  MetricFamily packets =
      Counter("tandem_worker_packets_total", "Packets received (rx) and sent (tx) by each worker.");
  MetricFamily errors = Counter("tandem_worker_errors_total",
                                "Receive or send failures and malformed frames, by worker.");
  MetricFamily frames = Counter(
      "tandem_worker_frames_total",
      "Poll-mode frames by worker and fate: to_kernel, from_kernel (exception path), malformed, "
      "not_for_us (another MAC), tx_dropped (not taken by the port or the kernel).");
  MetricFamily waits = Counter(
      "tandem_worker_udp_waits_total",
      "Socket-mode UDP workers' waits of [server] udp_coalesce_us for more datagrams before a "
      "receive, by worker.");
  for (const auto& [name, c] : workers) {
    AddSample(packets, c.rx_packets, {{"worker", name}, {"direction", "rx"}});
    AddSample(packets, c.tx_packets, {{"worker", name}, {"direction", "tx"}});
    AddSample(errors, c.rx_errors, {{"worker", name}});
    if (name.rfind("udp", 0) == 0) AddSample(waits, c.udp_waits, {{"worker", name}});
    if (name.rfind("lcore", 0) != 0) continue;  // socket workers have no frames
    AddSample(frames, c.to_kernel, {{"worker", name}, {"fate", "to_kernel"}});
    AddSample(frames, c.from_kernel, {{"worker", name}, {"fate", "from_kernel"}});
    AddSample(frames, c.malformed, {{"worker", name}, {"fate", "malformed"}});
    AddSample(frames, c.not_for_us, {{"worker", name}, {"fate", "not_for_us"}});
    AddSample(frames, c.tx_dropped, {{"worker", name}, {"fate", "tx_dropped"}});
  }
  out.push_back(std::move(packets));
  out.push_back(std::move(errors));
  out.push_back(std::move(waits));
  out.push_back(std::move(frames));
}

// ---- per DPDK port ----

void AddPorts(const std::vector<dataplane::PortCounters>& ports, Families& out) {
  if (ports.empty()) return;
  MetricFamily packets =
      Counter("tandem_port_packets_total",
              "Frames received (rx) and sent (tx) by each DPDK port, as its driver counts them.");
  MetricFamily dropped = Counter(
      "tandem_port_dropped_total",
      "Frames a DPDK port dropped on receive, by reason: missed (mostly its receive ring was "
      "full: the workers did not keep up; what a driver counts varies, see docs/metrics.md), "
      "no_mbuf (buffer allocation failures; some drivers count the frame in missed too).");
  MetricFamily errors =
      Counter("tandem_port_errors_total", "Receive (rx) and transmit (tx) errors of each DPDK port.");
  for (const dataplane::PortCounters& p : ports) {
    AddSample(packets, p.rx_packets, {{"port", p.name}, {"direction", "rx"}});
    AddSample(packets, p.tx_packets, {{"port", p.name}, {"direction", "tx"}});
    AddSample(dropped, p.rx_missed, {{"port", p.name}, {"reason", "missed"}});
    AddSample(dropped, p.rx_no_mbuf, {{"port", p.name}, {"reason", "no_mbuf"}});
    AddSample(errors, p.rx_errors, {{"port", p.name}, {"direction", "rx"}});
    AddSample(errors, p.tx_errors, {{"port", p.name}, {"direction", "tx"}});
  }
  out.push_back(std::move(packets));
  out.push_back(std::move(dropped));
  out.push_back(std::move(errors));
}

// ---- zones: the snapshot being served ----

void AddZones(const std::vector<ZoneStatus>& zones, Families& out) {
  MetricFamily serial = Gauge("tandem_zone_serial", "SOA serial of the zone being served.");
  MetricFamily nodes =
      Gauge("tandem_zone_nodes", "Names in the zone being served, empty non-terminals included.");
  MetricFamily memory =
      Gauge("tandem_zone_memory_bytes", "Memory held by the zone's snapshot, in bytes.");
  for (const ZoneStatus& z : zones) {
    Labels zone = {{"zone", z.name}};  // with the trailing dot, as in DNS: "example.com."
    AddSample(serial, z.serial, zone);
    AddSample(nodes, static_cast<double>(z.nodes), zone);
    AddSample(memory, static_cast<double>(z.memory_bytes), zone);
  }
  out.push_back(std::move(serial));
  out.push_back(std::move(nodes));
  out.push_back(std::move(memory));
}

// ---- pulled zones: sources, health, failover ----

void AddPulled(const std::vector<PulledZoneStatus>& zones, Families& out) {
  MetricFamily active = Gauge("tandem_zone_active_source",
                              "1 for the source whose copy of the zone is answered, 0 for the others.");
  MetricFamily up = Gauge("tandem_source_up", "1 when the source is UP by its SOA probes, 0 when DOWN.");
  MetricFamily serial = Gauge("tandem_source_serial", "Serial of the source's copy (0: none yet).");
  MetricFamily latency = Gauge("tandem_source_probe_latency_seconds", "Latency of the last SOA probe.");
  MetricFamily probes = Counter("tandem_source_probes_total", "SOA probes, by result.");
  MetricFamily swaps = Counter("tandem_zone_swaps_total", "Changes of the copy answered for the zone.");
  MetricFamily transfers = Counter("tandem_transfers_total",
                                   "Refreshes that fetched a copy (type axfr or ixfr, result success) or "
                                   "failed (type refresh, result failure).");
  for (const PulledZoneStatus& z : zones) {
    AddSample(swaps, static_cast<double>(z.swaps), {{"zone", z.name}});
    for (const SourceStatus& s : z.sources) {
      Labels l = {{"zone", z.name}, {"source", s.name}};
      AddSample(active, s.name == z.active_source ? 1 : 0, l);
      AddSample(up, s.up ? 1 : 0, l);
      AddSample(serial, s.serial, l);
      AddSample(latency, Seconds(s.probe_latency), l);
      AddSample(probes, static_cast<double>(s.probes_ok), {{"zone", z.name}, {"source", s.name}, {"result", "success"}});
      AddSample(probes, static_cast<double>(s.probes_failed), {{"zone", z.name}, {"source", s.name}, {"result", "failure"}});
      AddSample(transfers, static_cast<double>(s.transfers_axfr),
                {{"zone", z.name}, {"source", s.name}, {"type", "axfr"}, {"result", "success"}});
      AddSample(transfers, static_cast<double>(s.transfers_ixfr),
                {{"zone", z.name}, {"source", s.name}, {"type", "ixfr"}, {"result", "success"}});
      AddSample(transfers, static_cast<double>(s.transfers_failed),
                {{"zone", z.name}, {"source", s.name}, {"type", "refresh"}, {"result", "failure"}});
    }
  }
  for (MetricFamily* f : {&active, &up, &serial, &latency, &probes, &swaps, &transfers}) out.push_back(std::move(*f));
}

// ---- pools ----

void AddPools(const std::vector<PoolStatus>& pools, const dataplane::WorkerCounters& totals, Families& out) {
  MetricFamily up = Gauge("tandem_pool_member_up", "1 when the member is answered as up (checks and override).");
  MetricFamily latency = Gauge("tandem_pool_check_latency_seconds", "Latency of the member's last health check.");
  MetricFamily answers = Counter("tandem_pool_member_answers_total", "Address records answered for the member.");
  for (const PoolStatus& p : pools) {
    for (const PoolMemberStatus& m : p.members) {
      Labels l = {{"pool", p.name}, {"member", m.name}};
      AddSample(up, m.up ? 1 : 0, l);
      AddSample(latency, Seconds(m.latency), l);
      AddSample(answers, static_cast<double>(totals.member_answers[m.id]), l);
    }
  }
  out.push_back(std::move(up));
  out.push_back(std::move(latency));
  out.push_back(std::move(answers));
  out.push_back(Single(Counter("tandem_pool_all_down_answers_total",
                               "Answers from a pool whose members of that family were all down "
                               "(every member answered)."),
                       static_cast<double>(totals.pool_all_down)));
}

// ---- the daemon ----

MetricFamily Reloads(const DaemonStatus& s) {
  MetricFamily f = Counter("tandem_reloads_total",
                           "Configuration and zone reloads, by result (a failed reload "
                           "changes nothing).");
  AddSample(f, s.reloads, {{"result", "success"}});
  AddSample(f, s.reload_failures, {{"result", "failure"}});
  return f;
}

// Seconds since the Unix epoch; 0 when nothing was published yet.
double UnixSeconds(absl::Time t) {
  return t <= absl::UnixEpoch() ? 0.0 : Seconds(t - absl::UnixEpoch());
}

void AddDaemon(const DaemonStatus& s, Families& out) {
  out.push_back(Single(Gauge("tandem_zones", "Zones configured and served."), s.zones));
  out.push_back(Reloads(s));
  out.push_back(Single(Gauge("tandem_snapshot_publish_seconds",
                             "Duration of the last snapshot publication: pointer store and "
                             "RCU grace period."),
                       Seconds(s.last_publish_duration)));
  out.push_back(Single(Gauge("tandem_snapshot_published_timestamp_seconds",
                             "When the snapshot being served was published (Unix time)."),
                       UnixSeconds(s.last_publish)));
  out.push_back(
      Single(Gauge("tandem_uptime_seconds", "Seconds since tandemd started."), Seconds(s.uptime)));
  MetricFamily build = Gauge("tandem_build_info", "Always 1; the version and mode as labels.");
  AddSample(build, 1, {{"version", s.version}, {"mode", s.mode}});
  out.push_back(std::move(build));
}

Families CollectFamilies(const DaemonStatus& status, const std::vector<ZoneStatus>& zones,
                         const std::vector<PulledZoneStatus>& pulled, const std::vector<PoolStatus>& pools) {
  Families out;
  AddTraffic(status.totals, out);
  AddWorkers(status.per_worker, out);
  AddPorts(status.ports, out);
  AddZones(zones, out);
  AddPulled(pulled, out);
  AddPools(pools, status.totals, out);
  AddDaemon(status, out);
  return out;
}

// ---- the endpoint ----

// Called by the exposer's threads for every scrape of /metrics.
class DaemonCollector final : public prometheus::Collectable {
 public:
  explicit DaemonCollector(const Daemon& daemon) : daemon_(daemon) {}

  std::vector<MetricFamily> Collect() const override {
    return CollectFamilies(daemon_.Status(), daemon_.Zones(), daemon_.PulledZones(), daemon_.PoolsStatus());
  }

 private:
  const Daemon& daemon_;
};

class ExposedMetrics final : public MetricsServer {
 public:
  ExposedMetrics(std::shared_ptr<DaemonCollector> collector,
                 std::unique_ptr<prometheus::Exposer> exposer)
      : collector_(std::move(collector)), exposer_(std::move(exposer)) {
    exposer_->RegisterCollectable(collector_);
  }

 private:
  // Declared first, destroyed last: the exposer's threads stop before the collector goes.
  std::shared_ptr<DaemonCollector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

// Why the exposer could not listen: civetweb only says "possible problem binding to port",
// so bind a TCP socket to the address the same way and report what the kernel says.
std::string BindFailureReason(const dataplane::Endpoint& ep) {
  int fd = socket(ep.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::generic_category().message(errno);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as civetweb does
  bool ok =
      bind(fd, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) == 0 && ::listen(fd, 1) == 0;
  int error = errno;
  close(fd);
  if (!ok) return std::generic_category().message(error);
  if (ep.family() == AF_INET6)
    return "the HTTP server (civetweb) could not bind it; a civetweb built without IPv6, "
           "as Debian 12's is, listens on IPv4 addresses only";
  return "the HTTP server (civetweb) could not bind it";
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                                    const Daemon& daemon) {
  // civetweb reads more than ADDR:PORT ("9153" for every address, "s" for TLS, lists):
  // only what the config documents gets through.
  std::optional<dataplane::Endpoint> ep = dataplane::ParseEndpoint(listen);
  if (!ep)
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics: cannot listen on ", listen, ": not ADDR:PORT (IPv6 in brackets: [::1]:9153)"));
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(listen, /*num_threads=*/2);
  } catch (const std::exception&) {  // civetweb's CivetException: it could not bind
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", listen, ": ", BindFailureReason(*ep)));
  }
  return std::make_unique<ExposedMetrics>(std::make_shared<DaemonCollector>(daemon),
                                          std::move(exposer));
}

std::string RenderMetrics(const DaemonStatus& status, const std::vector<ZoneStatus>& zones,
                          const std::vector<PulledZoneStatus>& pulled) {
  return prometheus::TextSerializer().Serialize(CollectFamilies(status, zones, pulled, {}));
}

std::string RenderMetrics(const DaemonStatus& status, const std::vector<ZoneStatus>& zones) {
  return RenderMetrics(status, zones, {});
}

}  // namespace tandem::control
