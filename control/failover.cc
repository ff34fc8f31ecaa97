// Failover policy.
#include "control/failover.h"

namespace tandem::control {

bool Health::Record(bool ok) {
  if (ok == up_) {
    streak_ = 0;
    return false;
  }
  if (++streak_ >= (up_ ? fall_ : rise_)) {
    up_ = ok;
    streak_ = 0;
    return true;
  }
  return false;
}

namespace {

// True if a is a better copy than b (both candidates).
bool Better(const std::vector<CopyView>& s, int a, int b) {
  if (s[a].serial != s[b].serial) return SerialNewer(s[a].serial, s[b].serial);
  if (s[a].up != s[b].up) return s[a].up;
  return a < b;
}

}  // namespace

Choice ChooseCopy(const std::vector<CopyView>& s, int current, int pinned, bool in_hold) {
  int n = static_cast<int>(s.size());
  if (pinned >= 0 && pinned < n && s[pinned].valid)
    return {pinned, pinned == current ? Reason::kNone : Reason::kPinned};
  bool current_valid = current >= 0 && current < n && s[current].valid;
  int best = -1;
  for (int i = 0; i < n; ++i) {
    bool candidate = s[i].valid && (s[i].up || i == current);
    if (candidate && (best < 0 || Better(s, i, best))) best = i;
  }
  if (best < 0) return {-1, current >= 0 ? Reason::kNoCopy : Reason::kNone};
  if (best == current) return {current, Reason::kNone};
  if (current < 0) return {best, Reason::kFirstCopy};
  if (!current_valid) return {best, Reason::kActiveExpired};
  if (SerialNewer(s[best].serial, s[current].serial)) return {best, Reason::kNewerSerial};
  // Same serial from here on.
  if (!s[current].up) return {best, Reason::kActiveDown};
  if (in_hold) return {current, Reason::kNone};
  return {best, Reason::kPreferred};
}

}  // namespace tandem::control
