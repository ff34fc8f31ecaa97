// Snapshot publication over DPDK's QSBR RCU. rte_rcu_qsbr needs no EAL: it works on
// memory we allocate, so socket mode uses the same mechanism as the poll-mode path.
#include "dataplane/publisher.h"

#include <rte_rcu_qsbr.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "dataplane/zone/snapshot.h"

namespace tandem::dataplane {
namespace {
std::mutex registry_mutex;  // guards reader-id allocation (control path only)
}

SnapshotPublisher::SnapshotPublisher(unsigned max_readers) : max_readers_(max_readers) {
  size_t size = rte_rcu_qsbr_get_memsize(max_readers);
  qsbr_ = static_cast<rte_rcu_qsbr*>(std::aligned_alloc(RTE_CACHE_LINE_SIZE,
                                                        (size + RTE_CACHE_LINE_SIZE - 1) /
                                                            RTE_CACHE_LINE_SIZE * RTE_CACHE_LINE_SIZE));
  if (qsbr_ == nullptr || rte_rcu_qsbr_init(qsbr_, max_readers) != 0)
    throw std::runtime_error("cannot initialise the snapshot RCU state");
  used_.assign(max_readers, false);
}

SnapshotPublisher::~SnapshotPublisher() {
  delete current_.exchange(nullptr);
  std::free(qsbr_);
}

void SnapshotPublisher::Publish(std::unique_ptr<const zone::Snapshot> next) {
  const zone::Snapshot* old = current_.exchange(next.release(), std::memory_order_acq_rel);
  // Wait until every online reader has passed a quiescent state after the store.
  rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
  delete old;
}

unsigned SnapshotPublisher::RegisterReader() {
  std::lock_guard<std::mutex> lock(registry_mutex);
  for (unsigned id = 0; id < max_readers_; ++id) {
    if (!used_[id]) {
      used_[id] = true;
      rte_rcu_qsbr_thread_register(qsbr_, id);
      return id;
    }
  }
  throw std::runtime_error("too many snapshot readers");
}

void SnapshotPublisher::UnregisterReader(unsigned id) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  rte_rcu_qsbr_thread_offline(qsbr_, id);
  rte_rcu_qsbr_thread_unregister(qsbr_, id);
  used_[id] = false;
}

void SnapshotPublisher::Online(unsigned id) { rte_rcu_qsbr_thread_online(qsbr_, id); }
void SnapshotPublisher::Offline(unsigned id) { rte_rcu_qsbr_thread_offline(qsbr_, id); }
void SnapshotPublisher::Quiescent(unsigned id) { rte_rcu_qsbr_quiescent(qsbr_, id); }

}  // namespace tandem::dataplane
