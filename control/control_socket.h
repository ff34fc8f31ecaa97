// The control socket: a Unix stream socket (mode 0600) on which tandemctl asks for status,
// zones, sources, statistics and reloads. One request and one JSON response per connection.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace tandem::control {

class Daemon;

class ControlServer {
 public:
  // Creates the socket at `path` (replacing a stale one); errors name the path.
  static absl::StatusOr<std::unique_ptr<ControlServer>> Start(const std::string& path, Daemon& daemon);
  virtual ~ControlServer() = default;  // stops serving and removes the socket file
};

}  // namespace tandem::control
