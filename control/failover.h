// Failover policy as plain functions over the sources of one zone (as dnsdist keeps its
// load-balancing policies apart from health checking): health hysteresis, and the choice
// of the copy to answer from (DESIGN.md "Failover semantics").
//
//   candidates: the copies of sources that are UP and not expired,
//               plus the copy answered now while it has not expired
//   best:       newest serial (RFC 1982); then UP before DOWN; then order of preference
//   pin:        an operator's pin wins while the pinned copy is valid
//   hold:       after a swap, a swap between copies of the same serial waits `hold`
//               unless the answered copy's source is DOWN
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tandem::control {

// UP/DOWN with rise/fall: `rise` successes in a row bring a DOWN source UP, `fall`
// failures in a row take an UP source DOWN. Sources start UP.
class Health {
 public:
  Health(int rise, int fall) : rise_(rise), fall_(fall) {}
  // Records a probe; true when the state changed.
  bool Record(bool ok);
  bool up() const { return up_; }
  int streak() const { return streak_; }  // probes in a row against the current state

 private:
  int rise_, fall_;
  bool up_ = true;
  int streak_ = 0;
};

struct CopyView {
  bool valid = false;  // has a copy that has not expired
  bool up = false;
  uint32_t serial = 0;
};

enum class Reason {
  kNone,           // nothing changes
  kFirstCopy,      // nothing was answered before
  kNewerSerial,    // the new copy's serial is newer
  kActiveDown,     // the answered copy's source went DOWN; another is UP with the same serial
  kPreferred,      // same serial, preferred source (UP)
  kActiveExpired,  // the answered copy expired
  kPinned,         // operator pin
  kNoCopy,         // no valid copy left: SERVFAIL
};

struct Choice {
  int index = -1;  // source to answer from, -1: none
  Reason reason = Reason::kNone;
};

// `current`: the source answered now (-1 none); `pinned`: the operator's pin (-1 none);
// `in_hold`: the last swap was less than the hold time ago.
Choice ChooseCopy(const std::vector<CopyView>& sources, int current, int pinned, bool in_hold);

bool SerialNewer(uint32_t a, uint32_t b);

}  // namespace tandem::control
