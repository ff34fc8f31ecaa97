// The huge page mover: every zone queued is moved once, in the background, and no zone is
// kept alive by the queue.
#include "control/huge_pages.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "control/zone_file.h"

namespace tandem::control {
namespace {

std::shared_ptr<const zone::Zone> SmallZone(const std::string& name) {
  auto loaded = LoadZoneText(name, "@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n", name + ".zone");
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return loaded.ok() ? loaded->zone : nullptr;
}

TEST(HugePageMover, MovesEveryZoneQueuedOnce) {
  HugePageMover mover;
  std::vector<std::shared_ptr<const zone::Zone>> zones;
  for (int i = 0; i < 5; ++i) zones.push_back(SmallZone("z" + std::to_string(i) + ".test"));
  for (const auto& z : zones) ASSERT_FALSE(z->huge_pages_requested());
  mover.Add(zones);
  mover.Add(zones);  // again: nothing more to do
  mover.Drain();
  for (const auto& z : zones) EXPECT_TRUE(z->huge_pages_requested());
  EXPECT_FALSE(zones[0]->PreferHugePages()) << "already moved";
}

TEST(HugePageMover, KeepsNoZoneAlive) {
  HugePageMover mover;
  auto kept = SmallZone("kept.test");
  std::weak_ptr<const zone::Zone> freed;
  {
    auto gone = SmallZone("gone.test");
    freed = gone;
    mover.Add({gone, kept});
  }  // the queue holds no reference: the zone is freed at once, or after its move
  mover.Drain();
  EXPECT_TRUE(kept->huge_pages_requested());
  EXPECT_TRUE(freed.expired());
}

TEST(HugePageMover, StopsWithZonesStillQueued) {
  auto mover = std::make_unique<HugePageMover>();
  std::vector<std::shared_ptr<const zone::Zone>> zones;
  for (int i = 0; i < 50; ++i) zones.push_back(SmallZone("q" + std::to_string(i) + ".test"));
  mover->Add(zones);
  mover.reset();  // returns (the thread joined), whatever was left undone
  EXPECT_TRUE(zones[0]->huge_pages_requested() || !zones[49]->huge_pages_requested());
}

}  // namespace
}  // namespace tandem::control
