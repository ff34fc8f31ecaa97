// The Prometheus endpoint: prometheus-cpp's exposer on [metrics] listen, serving metrics
// collected from the Daemon at scrape time (per-worker counters are summed then; the data
// plane never touches a shared atomic for metrics). The metric list is docs/metrics.md.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tandem::control {

class Daemon;
struct DaemonStatus;
struct ZoneStatus;
struct PulledZoneStatus;

class MetricsServer {
 public:
  // Listens on "ADDR:PORT" ("127.0.0.1:9153"; "[::1]:9153" where civetweb has IPv6, which
  // Debian 12's has not) and serves /metrics until destroyed; `daemon` must outlive the
  // server. Errors name the address and say why.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                              const Daemon& daemon);
  virtual ~MetricsServer() = default;
};

// The tandem_* metrics of one status and zone list in the Prometheus text format: what a
// scrape of /metrics returns, less the exposer's own exposer_* metrics. (An overload rather
// than a `pulled = {}` default: clang cannot build that default from the incomplete type.)
std::string RenderMetrics(const DaemonStatus& status, const std::vector<ZoneStatus>& zones,
                          const std::vector<PulledZoneStatus>& pulled);
// The same with no pulled (secondary) zones.
std::string RenderMetrics(const DaemonStatus& status, const std::vector<ZoneStatus>& zones);

}  // namespace tandem::control
