// Control socket (being written).
#include "control/control_socket.h"

namespace tandem::control {

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& path, Daemon&) {
  return absl::UnimplementedError(path + ": control socket not available in this build");
}

}  // namespace tandem::control
