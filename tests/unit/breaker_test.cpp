// CircuitBreaker's transitions on a fake clock: opening after consecutive failures only,
// the least time open, half-open on a success after it, recovery, and the doubling wait.
#include "upstream/breaker.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace respite::upstream {
namespace {

using State = CircuitBreaker::State;

struct Recorder {
  std::vector<std::string> changes;
  void attach(CircuitBreaker& b) {
    b.set_on_change([this](State from, State to, std::string_view why) {
      changes.push_back(std::string(CircuitBreaker::name(from)) + "->" + CircuitBreaker::name(to) + " (" +
                        std::string(why) + ")");
    });
  }
};

TEST(Breaker, OpensOnlyAfterConsecutiveFailures) {
  CircuitBreaker b({3, 1000, 8000});
  Recorder r;
  r.attach(b);
  b.failure(0, "refused");
  b.failure(1, "refused");
  b.success(2);  // the count starts again
  b.failure(3, "refused");
  b.failure(4, "refused");
  EXPECT_EQ(b.state(), State::Closed);
  b.failure(5, "timeout");
  EXPECT_EQ(b.state(), State::Open);
  EXPECT_EQ(b.opened_ms(), 5u);
  EXPECT_EQ(b.opens(), 1u);
  EXPECT_EQ(b.failures_total(), 5u);
  ASSERT_EQ(r.changes.size(), 1u);
  EXPECT_EQ(r.changes[0], "closed->open (timeout)");
}

TEST(Breaker, StaysOpenForTheWaitThenHalfOpensOnASuccess) {
  CircuitBreaker b({1, 1000, 8000});
  b.failure(100, "refused");
  ASSERT_EQ(b.state(), State::Open);
  b.success(1099);  // too early: Redis answered, but the wait is not over
  EXPECT_EQ(b.state(), State::Open);
  EXPECT_FALSE(b.probe_due(1099));
  EXPECT_TRUE(b.probe_due(1100));
  b.failure(1050, "refused");  // failures while open do not restart the wait
  b.success(1100);
  EXPECT_EQ(b.state(), State::HalfOpen);
  b.recovered();
  EXPECT_EQ(b.state(), State::Closed);
  EXPECT_EQ(b.transitions(), 3u);
}

TEST(Breaker, AFailedRecoveryDoublesTheWaitUpToTheCapAndRecoveryResetsIt) {
  CircuitBreaker b({1, 1000, 3000});
  uint64_t t = 0;
  b.failure(t, "refused");
  for (uint64_t expect : {2000u, 3000u, 3000u}) {
    t += b.wait_ms();
    b.success(t);
    ASSERT_EQ(b.state(), State::HalfOpen);
    b.failure(t, "lost during replay");
    ASSERT_EQ(b.state(), State::Open);
    EXPECT_EQ(b.wait_ms(), expect);
    b.success(t + expect - 1);
    EXPECT_EQ(b.state(), State::Open);
  }
  t += b.wait_ms();
  b.success(t);
  b.recovered();
  EXPECT_EQ(b.state(), State::Closed);
  EXPECT_EQ(b.wait_ms(), 1000u);
  EXPECT_EQ(b.opens(), 4u);
}

TEST(Breaker, RecoveredOnlyFromHalfOpen) {
  CircuitBreaker b({2, 10, 10});
  b.recovered();
  EXPECT_EQ(b.state(), State::Closed);
  b.failure(0, "x");
  b.failure(0, "x");
  b.recovered();  // open, not half-open: nothing happens
  EXPECT_EQ(b.state(), State::Open);
}

}  // namespace
}  // namespace respite::upstream
