// The Prometheus endpoint: prometheus-cpp's exposer on [metrics] listen, serving metrics
// collected from the Daemon at scrape time (per-worker counters are summed then; the data
// plane never touches a shared atomic for metrics).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace tandem::control {

class Daemon;

class MetricsServer {
 public:
  // Listens on "ADDR:PORT"; errors name the address.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                              const Daemon& daemon);
  virtual ~MetricsServer() = default;
};

}  // namespace tandem::control
