// Load-balancing pools as the data plane sees them: for each pooled name, the pool's
// policy and members with their health, built by the control plane and published inside
// the Snapshot (a health change publishes a new one). Answering from a pool allocates
// nothing and takes no lock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tandem::zone {

struct LookupName;

enum class PoolPolicy : uint8_t { kAllHealthy, kFailover, kWeighted };

inline constexpr int kMaxPoolMembers = 256;  // across all pools (member ids index counters)

struct PoolMember {
  uint8_t addr[16];
  bool v6;
  bool up;
  uint32_t weight;
  uint16_t id;  // global member id, for per-worker answer counters
};

struct Pool {
  PoolPolicy policy = PoolPolicy::kAllHealthy;
  uint16_t max_answers = 8;
  std::vector<PoolMember> members;  // in configuration order
};

class PoolSet {
 public:
  // Binds a name (wire form, any case) to a pool with a TTL.
  void Bind(const std::string& name, uint32_t pool, uint32_t ttl);
  std::vector<Pool>& pools() { return pools_; }
  const std::vector<Pool>& pools() const { return pools_; }
  void Finish();  // builds the name index; call once after the last Bind

  struct Binding {
    uint32_t pool;
    uint32_t ttl;
  };
  // The binding of an exact name, or null.
  const Binding* Find(const LookupName& name) const;

 private:
  struct Entry {
    uint64_t hash;
    std::string name;  // lower-case wire
    Binding binding;
  };
  std::vector<Pool> pools_;
  std::vector<Entry> entries_;
  std::vector<int32_t> slots_;  // index into entries_, -1 empty
  uint64_t mask_ = 0;
};

// Picks the members to answer for `v6` by the pool's policy into `out` (indexes into
// pool.members); returns how many, and sets *all_down when no member of the family is up
// (then every member of the family is a candidate).
int PickMembers(const Pool& pool, bool v6, uint32_t random, uint16_t* out, bool* all_down);

}  // namespace tandem::zone
