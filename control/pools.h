// Load-balancing pools in the control plane: the [[pool]] members, their health from the
// monitors (rise/fall hysteresis), operator overrides, and the table the data plane
// answers from (zone::PoolSet), rebuilt and published whenever a member's state changes.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "config/config.h"
#include "control/failover.h"
#include "control/pool_monitor.h"
#include "dataplane/zone/pools.h"

namespace tandem::control {

struct PoolMemberStatus {
  std::string name;
  std::string address;
  uint16_t id = 0;
  uint32_t weight = 0;
  bool up = true;             // as answered (health and override)
  bool healthy = true;        // by the checks alone
  std::string override;       // "auto", "up", "down"
  absl::Duration latency;     // of the last check
  std::string error;          // of the last check, empty after a success
  uint64_t checks_ok = 0, checks_failed = 0;
};

struct PoolStatus {
  std::string name;
  std::string policy;
  std::string check;  // kind, or "none"
  std::vector<PoolMemberStatus> members;
};

class Pools {
 public:
  Pools(const config::Config& cfg, std::function<void()> on_change);
  ~Pools();

  // Checks the members and binds the pooled names; errors name the pool or zone.
  absl::Status Init();
  void Start();
  void Stop();

  std::shared_ptr<const zone::PoolSet> Table() const;
  std::vector<PoolStatus> Status() const;
  // "up", "down" or "auto" for one member.
  absl::Status Override(const std::string& pool, const std::string& member, const std::string& state);

 private:
  struct Member {
    std::string pool_name;
    config::PoolMember cfg;
    uint8_t addr[16];
    bool v6 = false;
    Health health{2, 2};
    bool checked = false;
    int override = 0;  // 0 auto, 1 up, -1 down
    absl::Duration latency;
    std::string error;
    uint64_t ok = 0, failed = 0;
    bool Up() const { return override != 0 ? override > 0 : health.up(); }
  };

  void OnCheck(size_t monitor_index, const CheckResult& r);
  void RebuildLocked();

  config::Config cfg_;
  std::function<void()> on_change_;
  mutable std::mutex mu_;
  std::vector<std::vector<Member>> members_;  // by pool, in configuration order
  std::vector<std::pair<size_t, size_t>> monitored_;  // monitor index -> pool, member
  std::shared_ptr<const zone::PoolSet> table_;
  std::unique_ptr<PoolMonitor> monitor_;
};

}  // namespace tandem::control
