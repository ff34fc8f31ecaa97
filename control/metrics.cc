// Prometheus metrics (being written).
#include "control/metrics.h"

namespace tandem::control {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                                    const Daemon&) {
  return absl::UnimplementedError(listen + ": metrics endpoint not available in this build");
}

}  // namespace tandem::control
