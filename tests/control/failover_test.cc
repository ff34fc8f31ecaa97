// The failover policy: health hysteresis and the choice of the copy to answer from
// (DESIGN.md "Failover semantics"), as plain functions.
#include "control/failover.h"

#include <gtest/gtest.h>

namespace tandem::control {
namespace {

TEST(Health, FallAndRiseHysteresis) {
  Health h(2, 3);  // rise 2, fall 3
  EXPECT_TRUE(h.up());
  EXPECT_FALSE(h.Record(false));
  EXPECT_FALSE(h.Record(false));
  EXPECT_FALSE(h.Record(true));  // a success resets the streak...
  EXPECT_TRUE(h.up());
  EXPECT_FALSE(h.Record(false));
  EXPECT_FALSE(h.Record(false));
  EXPECT_TRUE(h.Record(false));  // ...so only three failures in a row take it DOWN
  EXPECT_FALSE(h.up());
  EXPECT_FALSE(h.Record(true));
  EXPECT_TRUE(h.Record(true));   // two successes bring it UP
  EXPECT_TRUE(h.up());
}

TEST(Health, ChangeIsReportedOnce) {
  Health h(1, 1);
  EXPECT_TRUE(h.Record(false));
  EXPECT_FALSE(h.Record(false));
  EXPECT_TRUE(h.Record(true));
  EXPECT_FALSE(h.Record(true));
}

CopyView Up(uint32_t serial) { return {true, true, serial}; }
CopyView Down(uint32_t serial) { return {true, false, serial}; }
CopyView None() { return {false, true, 0}; }

TEST(ChooseCopy, FirstCopyPrefersTheFirstSource) {
  Choice c = ChooseCopy({Up(5), Up(5)}, -1, -1, false);
  EXPECT_EQ(c.index, 0);
  EXPECT_EQ(c.reason, Reason::kFirstCopy);
  EXPECT_EQ(ChooseCopy({None(), Up(5)}, -1, -1, false).index, 1);
  EXPECT_EQ(ChooseCopy({None(), None()}, -1, -1, false).index, -1);
}

TEST(ChooseCopy, NewestSerialWins) {
  Choice c = ChooseCopy({Up(5), Up(6)}, 0, -1, false);
  EXPECT_EQ(c.index, 1);
  EXPECT_EQ(c.reason, Reason::kNewerSerial);
  // RFC 1982: 1 is newer than 0xffffffff.
  EXPECT_EQ(ChooseCopy({Up(0xffffffff), Up(1)}, 0, -1, false).index, 1);
}

TEST(ChooseCopy, ActiveSourceDownMovesToAnUpSourceWithTheSameSerial) {
  Choice c = ChooseCopy({Down(5), Up(5)}, 0, -1, true);  // even within the hold time
  EXPECT_EQ(c.index, 1);
  EXPECT_EQ(c.reason, Reason::kActiveDown);
}

TEST(ChooseCopy, NeverAnOlderCopyThanTheOneServed) {
  // The primary is DOWN with serial 6; the secondary is UP but behind: keep serving 6.
  Choice c = ChooseCopy({Down(6), Up(5)}, 0, -1, false);
  EXPECT_EQ(c.index, 0);
  EXPECT_EQ(c.reason, Reason::kNone);
}

TEST(ChooseCopy, ReturningSourceWithOlderSerialIsNotMadeActive) {
  EXPECT_EQ(ChooseCopy({Up(4), Up(5)}, 1, -1, false).index, 1);
}

TEST(ChooseCopy, FailbackToThePreferredSourceAfterTheHold) {
  EXPECT_EQ(ChooseCopy({Up(5), Up(5)}, 1, -1, true).index, 1);  // in hold: stay
  Choice c = ChooseCopy({Up(5), Up(5)}, 1, -1, false);
  EXPECT_EQ(c.index, 0);
  EXPECT_EQ(c.reason, Reason::kPreferred);
  // A newer serial does not wait for the hold.
  EXPECT_EQ(ChooseCopy({Up(6), Up(5)}, 1, -1, true).index, 0);
}

TEST(ChooseCopy, DownSourcesCopyIsNotPickedUpUnlessServed) {
  // Source 0 is DOWN with a newer copy it got earlier; we serve 1: do not move to it.
  EXPECT_EQ(ChooseCopy({Down(7), Up(5)}, 1, -1, false).index, 1);
}

TEST(ChooseCopy, EveryoneDownKeepsServingUntilExpiry) {
  EXPECT_EQ(ChooseCopy({Down(5), Down(5)}, 0, -1, false).index, 0);
  Choice expired = ChooseCopy({{false, false, 5}, Down(5)}, 0, -1, false);
  EXPECT_EQ(expired.index, -1);
  EXPECT_EQ(expired.reason, Reason::kNoCopy);
}

TEST(ChooseCopy, ExpiredActiveMovesToAValidCopy) {
  Choice c = ChooseCopy({{false, true, 5}, Up(5)}, 0, -1, false);
  EXPECT_EQ(c.index, 1);
  EXPECT_EQ(c.reason, Reason::kActiveExpired);
}

TEST(ChooseCopy, PinWinsWhileItsCopyIsValid) {
  Choice c = ChooseCopy({Up(6), Down(5)}, 0, 1, false);
  EXPECT_EQ(c.index, 1);
  EXPECT_EQ(c.reason, Reason::kPinned);
  // A pinned source without a valid copy does not take the zone down.
  EXPECT_EQ(ChooseCopy({Up(6), None()}, 0, 1, false).index, 0);
}

}  // namespace
}  // namespace tandem::control
