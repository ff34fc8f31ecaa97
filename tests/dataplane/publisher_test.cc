// Snapshot publication: readers always see a whole snapshot, and an old one is freed only
// after every online reader has passed a quiescent state.
#include "dataplane/publisher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "dataplane/zone/snapshot.h"

namespace tandem::dataplane {
namespace {

std::unique_ptr<const zone::Snapshot> Empty() {
  return std::make_unique<const zone::Snapshot>(std::vector<std::shared_ptr<const zone::Zone>>{});
}

TEST(Publisher, PublishWaitsForOnlineReaders) {
  SnapshotPublisher pub(4);
  pub.Publish(Empty());
  unsigned id = pub.RegisterReader();
  pub.Online(id);
  const zone::Snapshot* seen = pub.Current();
  ASSERT_NE(seen, nullptr);
  std::atomic<bool> published{false};
  std::thread writer([&] {
    pub.Publish(Empty());
    published = true;
  });
  // The reader still holds `seen`: the publisher must not return (and free it) yet.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(published.load());
  EXPECT_NE(pub.Current(), seen);  // the new one is visible already
  pub.Quiescent(id);
  writer.join();
  EXPECT_TRUE(published.load());
  pub.UnregisterReader(id);
}

TEST(Publisher, OfflineReadersDoNotBlock) {
  SnapshotPublisher pub(2);
  unsigned id = pub.RegisterReader();
  pub.Online(id);
  pub.Offline(id);
  pub.Publish(Empty());  // returns at once
  pub.Publish(Empty());
  EXPECT_NE(pub.Current(), nullptr);
  pub.UnregisterReader(id);
}

TEST(Publisher, ManyReadersManySwaps) {
  SnapshotPublisher pub(8);
  pub.Publish(Empty());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0};
  std::atomic<int> started{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      unsigned id = pub.RegisterReader();
      pub.Online(id);
      ++started;
      while (!stop.load(std::memory_order_relaxed)) {
        const zone::Snapshot* s = pub.Current();
        ASSERT_NE(s, nullptr);
        reads += s->zones().size() + 1;  // touches the snapshot
        pub.Quiescent(id);
      }
      pub.UnregisterReader(id);
    });
  }
  while (started.load() < 3) std::this_thread::yield();
  for (int i = 0; i < 200; ++i) pub.Publish(Empty());  // each waits for all three readers
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(reads.load(), 0u);
}

}  // namespace
}  // namespace tandem::dataplane
