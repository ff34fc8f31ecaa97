// Publishes snapshots to the workers: one atomic pointer store, and the old snapshot is
// freed only after every registered reader has reported a quiescent state (rte_rcu_qsbr).
#pragma once

#include <atomic>
#include <memory>
#include <vector>

struct rte_rcu_qsbr;

namespace tandem::zone {
class Snapshot;
}

namespace tandem::dataplane {

class SnapshotPublisher {
 public:
  explicit SnapshotPublisher(unsigned max_readers);
  ~SnapshotPublisher();
  SnapshotPublisher(const SnapshotPublisher&) = delete;
  SnapshotPublisher& operator=(const SnapshotPublisher&) = delete;

  // Control plane: installs `next` and returns once no reader can still see the old one
  // (which is then freed).
  void Publish(std::unique_ptr<const zone::Snapshot> next);

  // Readers. A reader registers once, goes online, loads the pointer once per burst and
  // reports quiescent once per loop iteration; it goes offline around blocking waits.
  unsigned RegisterReader();
  void UnregisterReader(unsigned id);
  void Online(unsigned id);
  void Offline(unsigned id);
  void Quiescent(unsigned id);
  const zone::Snapshot* Current() const { return current_.load(std::memory_order_acquire); }

 private:
  std::atomic<const zone::Snapshot*> current_{nullptr};
  rte_rcu_qsbr* qsbr_ = nullptr;
  unsigned max_readers_;
  std::vector<bool> used_;
};

}  // namespace tandem::dataplane
