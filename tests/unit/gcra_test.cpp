// ratelimit::Gcra with a fake clock: steady rate, bursts, refill, reservations, accuracy.
#include "ratelimit/gcra.h"

#include <gtest/gtest.h>

namespace respite::ratelimit {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000 * kMs;

TEST(Gcra, BurstPassesAtOnceThenTheRate) {
  Gcra g(100, 10);  // 100/s: one every 10 ms; 10 at once
  uint64_t now = 5 * kSec, retry = 0;
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(g.try_take(now, retry)) << i;
  EXPECT_FALSE(g.try_take(now, retry));
  EXPECT_EQ(retry, 10 * kMs);           // the next slot
  EXPECT_FALSE(g.try_take(now + 9 * kMs, retry));
  EXPECT_EQ(retry, 1 * kMs);
  EXPECT_TRUE(g.try_take(now + 10 * kMs, retry));
  EXPECT_FALSE(g.try_take(now + 10 * kMs, retry));
}

TEST(Gcra, RefusalsTakeNothing) {
  Gcra g(10, 1);
  uint64_t retry = 0;
  EXPECT_TRUE(g.try_take(kSec, retry));
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(g.try_take(kSec + 50 * kMs, retry));
  EXPECT_TRUE(g.try_take(kSec + 100 * kMs, retry));  // refused attempts did not push it back
}

TEST(Gcra, RefillsToTheBurstAndNoMore) {
  Gcra g(100, 5);
  uint64_t now = kSec, retry = 0;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(g.try_take(now, retry));
  EXPECT_EQ(g.available(now), 0u);
  EXPECT_EQ(g.available(now + 20 * kMs), 2u);
  EXPECT_EQ(g.available(now + 10 * kSec), 5u);  // idle for long: the burst, not more
  now += 10 * kSec;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(g.try_take(now, retry));
  EXPECT_FALSE(g.try_take(now, retry));
}

TEST(Gcra, SteadyRateNeverRefused) {
  Gcra g(1000, 1);
  uint64_t retry = 0;
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(g.try_take(kSec + static_cast<uint64_t>(i) * kMs, retry)) << i;
}

TEST(Gcra, ReservationsAreSpacedInOrderUpToTheMaxWait) {
  Gcra g(100, 2);
  uint64_t now = kSec, wait = 0;
  ASSERT_TRUE(g.reserve(now, 50 * kMs, wait));
  EXPECT_EQ(wait, 0u);
  ASSERT_TRUE(g.reserve(now, 50 * kMs, wait));
  EXPECT_EQ(wait, 0u);  // the burst
  for (uint64_t i = 1; i <= 5; ++i) {
    ASSERT_TRUE(g.reserve(now, 50 * kMs, wait));
    EXPECT_EQ(wait, i * 10 * kMs);  // one slot after another, in order
  }
  EXPECT_FALSE(g.reserve(now, 50 * kMs, wait));  // the 6th would wait 60 ms
  EXPECT_EQ(wait, 60 * kMs);
  EXPECT_TRUE(g.reserve(now + 10 * kMs, 50 * kMs, wait));  // a refusal took nothing
  EXPECT_EQ(wait, 50 * kMs);
}

TEST(Gcra, ReconfigureKeepsTheState) {
  Gcra g(10, 1);
  uint64_t retry = 0;
  ASSERT_TRUE(g.try_take(kSec, retry));
  g.configure(1000, 1);
  EXPECT_FALSE(g.try_take(kSec, retry));  // the earlier take still counts
  EXPECT_TRUE(g.try_take(kSec + 100 * kMs, retry));
}

TEST(Gcra, ACostlyRequestNeedsThatManyTokensOrTheWholeBurst) {
  Gcra g(100, 5);
  uint64_t now = kSec;
  EXPECT_EQ(g.wait_ns(now, 5), 0u);
  g.take(now, 3);
  EXPECT_EQ(g.wait_ns(now, 2), 0u);
  EXPECT_EQ(g.wait_ns(now, 3), 10 * kMs);  // one token short: one interval
  EXPECT_EQ(g.wait_ns(now, 50), 30 * kMs); // more than the burst: waits for a full bucket
  g.take(now + 30 * kMs, 50);               // and then owes the rest
  EXPECT_EQ(g.available(now + 30 * kMs), 0u);
  EXPECT_EQ(g.wait_ns(now + 30 * kMs), 460 * kMs);  // 50 taken from 5: 45 intervals, less tau
}

TEST(Gcra, ReconfigureKeepsWhatIsOwedAtTheNewRate) {
  Gcra g(10, 4);  // 100 ms per request
  uint64_t now = kSec;
  g.take(now, 3);
  EXPECT_EQ(g.available(now), 1u);
  g.configure(100, 4, now);  // 10 ms per request: still 3 taken, refilled at the new rate
  EXPECT_EQ(g.available(now), 1u);
  EXPECT_EQ(g.available(now + 20 * kMs), 3u);
  g.configure(100, 10, now);  // a bigger burst: its headroom is there at once
  EXPECT_EQ(g.available(now), 7u);
}

// The accuracy point, on a fake clock: 1,000/s with a burst of 10, offered far more
// (20 callers every 0.1 ms) for 5 s, admits 5,000 + 10 (within 2%).
TEST(Gcra, AdmitsTheRatePlusTheBurstUnderHammering) {
  Gcra g(1000, 10);
  uint64_t admitted = 0, retry = 0;
  const uint64_t start = 7 * kSec;
  for (uint64_t t = start; t < start + 5 * kSec; t += kMs / 10) {
    for (int caller = 0; caller < 20; ++caller) admitted += g.try_take(t, retry) ? 1 : 0;
  }
  EXPECT_NEAR(static_cast<double>(admitted), 5010.0, 5010.0 * 0.02);
  EXPECT_GE(admitted, 5000u);
  EXPECT_LE(admitted, 5011u);
}

}  // namespace
}  // namespace respite::ratelimit
