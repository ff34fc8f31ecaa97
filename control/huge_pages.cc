// The huge page mover's thread (see huge_pages.h).
#include "control/huge_pages.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

namespace tandem::control {

HugePageMover::HugePageMover() : thread_([this] { Run(); }) {}

HugePageMover::~HugePageMover() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void HugePageMover::Add(const std::vector<std::shared_ptr<const zone::Zone>>& zones) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& z : zones)
      if (!z->huge_pages_requested()) queue_.push_back(z);
  }
  cv_.notify_all();
}

void HugePageMover::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return (queue_.empty() && !busy_) || stop_; });
}

void HugePageMover::Run() {
  pthread_setname_np(pthread_self(), "tandem-hugepage");
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 19);  // this thread only (Linux)
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return !queue_.empty() || stop_; });
    if (stop_) return;
    std::shared_ptr<const zone::Zone> z = queue_.front().lock();
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    if (z) z->PreferHugePages();
    z.reset();
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace tandem::control
