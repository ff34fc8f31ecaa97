// Moves served zones onto transparent huge pages (zone::Zone::PreferHugePages) on a
// background thread of the lowest priority, so that neither the start, a reload nor a
// transfer waits for the kernel to copy them.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "dataplane/zone/snapshot.h"

namespace tandem::control {

class HugePageMover {
 public:
  HugePageMover();
  ~HugePageMover();  // stops the thread; a move in progress finishes first
  HugePageMover(const HugePageMover&) = delete;
  HugePageMover& operator=(const HugePageMover&) = delete;

  // Queues the zones not moved yet; a zone freed before its turn is skipped.
  void Add(const std::vector<std::shared_ptr<const zone::Zone>>& zones);
  // Waits until the queue is empty (tests).
  void Drain();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::weak_ptr<const zone::Zone>> queue_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace tandem::control
