// Blocking commands (BLPOP, BRPOPLPUSH, BLMOVE, BZPOPMIN, XREAD BLOCK, WAIT) through respite,
// which runs each on a dedicated upstream connection so it cannot stall other clients; and a
// client that vanishes while blocked must not take an element pushed later.
//
// "Blocked" is awaited by polling Redis's INFO clients (blocked_clients) directly: an event the
// test can observe, instead of a sleep.
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "support/redis_probe.h"
#include "support/stack.h"

namespace respite::test {
namespace {

using namespace std::chrono_literals;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr auto kWait = 5s;  // upper bound for anything that should happen promptly

const std::string kNullArray = "*-1\r\n";  // a blocking command's timeout, in RESP2

class BlockingTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    redis_.emplace(stack().connect_redis());
  }

  // Waits until Redis reports `n` blocked clients; a failed wait fails the test.
  void await_blocked(long long n) {
    ASSERT_TRUE(wait_for_blocked_clients(*redis_, n, deadline_in(kWait)))
        << "Redis did not report " << n << " blocked client(s); blocked_clients="
        << info_integer(*redis_, "clients", "blocked_clients").value_or(-1);
  }

  std::optional<Client> redis_;  // straight to Redis, for observations
};

long long ms_since(Clock::time_point t0) { return duration_cast<milliseconds>(Clock::now() - t0).count(); }

TEST_F(BlockingTest, BlpopUnblocksWhenAnotherClientPushes) {
  RawConn waiter = stack().raw();
  ASSERT_TRUE(send_command(waiter, {"BLPOP", "bl:k", "5"}));
  await_blocked(1);
  Client pusher = connect();
  EXPECT_EQ(pusher.call({"RPUSH", "bl:k", "v1", "v2"}), ":2");
  EXPECT_EQ(escape_bytes(next_reply(waiter)), escape_bytes(resp_bulk_array({"bl:k", "v1"})));
  EXPECT_EQ(pusher.call({"LRANGE", "bl:k", "0", "-1"}), "[\"v2\"]");
  // Unblocked, the client runs ordinary commands again.
  ASSERT_TRUE(send_command(waiter, {"SET", "bl:after", "x"}));
  EXPECT_EQ(next_reply(waiter), "+OK\r\n");
  EXPECT_EQ(pusher.call({"GET", "bl:after"}), "\"x\"");
}

TEST_F(BlockingTest, BlpopOnAListWithElementsReturnsAtOnce) {
  Client c = connect();
  ASSERT_EQ(c.call({"RPUSH", "bl:ready", "a"}), ":1");
  EXPECT_EQ(c.call({"BLPOP", "bl:none", "bl:ready", "5"}), "[\"bl:ready\", \"a\"]");
  EXPECT_EQ(c.call({"GET", "bl:none"}), "(nil)");
}

TEST_F(BlockingTest, BlpopTimesOutWithNullAfterRoughlyTheTimeout) {
  RawConn c = stack().raw();
  for (int i = 0; i < 2; ++i) {
    const auto t0 = Clock::now();
    ASSERT_TRUE(send_command(c, {"BLPOP", "bl:empty", "0.1"}));
    EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(kNullArray));
    const long long took = ms_since(t0);
    EXPECT_GE(took, 90) << "BLPOP 0.1 returned before its timeout";
    EXPECT_LT(took, 2000) << "BLPOP 0.1 took far longer than its timeout";
  }
  ASSERT_TRUE(send_command(c, {"PING"}));
  EXPECT_EQ(next_reply(c), "+PONG\r\n");
}

TEST_F(BlockingTest, BrpoplpushAndBlmoveUnblockOnPush) {
  Client pusher = connect();
  RawConn waiter = stack().raw();

  ASSERT_TRUE(send_command(waiter, {"BRPOPLPUSH", "bm:src", "bm:dst", "5"}));
  await_blocked(1);
  EXPECT_EQ(pusher.call({"RPUSH", "bm:src", "a"}), ":1");
  EXPECT_EQ(escape_bytes(next_reply(waiter)), escape_bytes(resp_bulk("a")));

  ASSERT_TRUE(send_command(waiter, {"BLMOVE", "bm:src", "bm:dst", "LEFT", "LEFT", "5"}));
  await_blocked(1);
  EXPECT_EQ(pusher.call({"RPUSH", "bm:src", "b"}), ":1");
  EXPECT_EQ(escape_bytes(next_reply(waiter)), escape_bytes(resp_bulk("b")));

  EXPECT_EQ(pusher.call({"LRANGE", "bm:dst", "0", "-1"}), "[\"b\", \"a\"]");
  EXPECT_EQ(pusher.call({"EXISTS", "bm:src"}), ":0");

  const auto t0 = Clock::now();
  ASSERT_TRUE(send_command(waiter, {"BLMOVE", "bm:src", "bm:dst", "RIGHT", "LEFT", "0.1"}));
  EXPECT_EQ(escape_bytes(next_reply(waiter)), escape_bytes(kNullArray));  // what Redis 7.0 sends
  EXPECT_GE(ms_since(t0), 90);
}

TEST_F(BlockingTest, BzpopminUnblocksOnZadd) {
  RawConn waiter = stack().raw();
  ASSERT_TRUE(send_command(waiter, {"BZPOPMIN", "bz:z", "5"}));
  await_blocked(1);
  Client pusher = connect();
  EXPECT_EQ(pusher.call({"ZADD", "bz:z", "2.5", "m", "3", "n"}), ":2");
  EXPECT_EQ(escape_bytes(next_reply(waiter)), escape_bytes(resp_bulk_array({"bz:z", "m", "2.5"})));
  EXPECT_EQ(pusher.call({"ZRANGE", "bz:z", "0", "-1"}), "[\"n\"]");

  ASSERT_TRUE(send_command(waiter, {"BZPOPMAX", "bz:z", "5"}));
  EXPECT_EQ(escape_bytes(next_reply(waiter)), escape_bytes(resp_bulk_array({"bz:z", "n", "3"})));
}

TEST_F(BlockingTest, XreadBlockUnblocksOnXaddAndTimesOut) {
  RawConn reader = stack().raw();
  ASSERT_TRUE(send_command(reader, {"XREAD", "COUNT", "10", "BLOCK", "5000", "STREAMS", "xs:s", "$"}));
  await_blocked(1);
  Client writer = connect();
  EXPECT_EQ(writer.call({"XADD", "xs:s", "7-1", "f", "v"}), "\"7-1\"");
  // [[stream, [[id, [field, value]]]]]
  const std::string entry = resp_array({resp_bulk("7-1"), resp_bulk_array({"f", "v"})});
  const std::string stream = resp_array({resp_bulk("xs:s"), resp_array({entry})});
  EXPECT_EQ(escape_bytes(next_reply(reader)), escape_bytes(resp_array({stream})));

  const auto t0 = Clock::now();
  ASSERT_TRUE(send_command(reader, {"XREAD", "BLOCK", "100", "STREAMS", "xs:s", "$"}));
  EXPECT_EQ(escape_bytes(next_reply(reader)), escape_bytes(kNullArray));
  EXPECT_GE(ms_since(t0), 90);

  // Without BLOCK, XREAD answers at once.
  ASSERT_TRUE(send_command(reader, {"XREAD", "STREAMS", "xs:s", "0"}));
  EXPECT_EQ(escape_bytes(next_reply(reader)), escape_bytes(resp_array({stream})));
}

TEST_F(BlockingTest, WaitWithoutReplicas) {
  Client c = connect();
  ASSERT_EQ(c.call({"SET", "wait:k", "v"}), "+OK");
  EXPECT_EQ(c.call({"WAIT", "0", "0"}), ":0");
  const auto t0 = Clock::now();
  EXPECT_EQ(c.call({"WAIT", "1", "100"}), ":0");  // no replica can acknowledge: times out
  const long long took = ms_since(t0);
  EXPECT_GE(took, 90);
  EXPECT_LT(took, 2000);
  EXPECT_EQ(c.call({"GET", "wait:k"}), "\"v\"");
}

TEST_F(BlockingTest, ClientUnblockByClientId) {
  RawConn waiter = stack().raw();
  ASSERT_TRUE(send_command(waiter, {"CLIENT", "ID"}));
  const std::string id_reply = next_reply(waiter);
  ASSERT_TRUE(starts_with(id_reply, ":")) << escape_bytes(id_reply);
  const std::string id = id_reply.substr(1, id_reply.size() - 3);
  Client other = connect();

  EXPECT_EQ(other.call({"CLIENT", "UNBLOCK", id}), ":0");  // not blocked yet
  ASSERT_TRUE(send_command(waiter, {"BLPOP", "ub:k", "0"}));
  await_blocked(1);
  EXPECT_EQ(other.call({"CLIENT", "UNBLOCK", id}), ":1");
  EXPECT_EQ(escape_bytes(next_reply(waiter)), escape_bytes(kNullArray));

  ASSERT_TRUE(send_command(waiter, {"BLPOP", "ub:k", "0"}));
  await_blocked(1);
  EXPECT_EQ(other.call({"CLIENT", "UNBLOCK", id, "ERROR"}), ":1");
  EXPECT_EQ(next_reply(waiter), "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
  await_blocked(0);
  EXPECT_EQ(other.call({"RPUSH", "ub:k", "v"}), ":1");
  EXPECT_EQ(other.call({"LLEN", "ub:k"}), ":1");
}

// A client killed while blocked: its BLPOP must die with it. If its upstream connection stayed
// blocked in Redis, the next element pushed would be popped for nobody and lost.
void killed_while_blocked_does_not_steal(Stack& stack, Client& redis, bool reset) {
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(cat("round ", round));
    const std::string key = cat("steal:", reset ? "rst:" : "fin:", round);
    {
      RawConn victim = stack.raw();
      ASSERT_TRUE(send_command(victim, {"BLPOP", key, "0"}));  // blocks forever
      ASSERT_TRUE(wait_for_blocked_clients(redis, 1, deadline_in(kWait))) << "BLPOP did not block";
      victim.close(reset);
    }
    ASSERT_TRUE(wait_for_blocked_clients(redis, 0, deadline_in(kWait)))
        << "the closed client's BLPOP is still blocked in Redis";
    Client pusher = stack.connect();
    EXPECT_EQ(pusher.call({"LPUSH", key, "v"}), ":1");
    EXPECT_EQ(pusher.call({"LLEN", key}), ":1") << "the element was taken by the client that left";
    EXPECT_EQ(pusher.call({"LPOP", key}), "\"v\"");
  }
}

TEST_F(BlockingTest, ClientClosedWhileBlockedDoesNotStealAnElement) {
  killed_while_blocked_does_not_steal(stack(), *redis_, /*reset=*/false);
}

TEST_F(BlockingTest, ClientResetWhileBlockedDoesNotStealAnElement) {
  killed_while_blocked_does_not_steal(stack(), *redis_, /*reset=*/true);
}

TEST_F(BlockingTest, TwentyBlockedClientsEachGetTheirOwnElement) {
  constexpr int kClients = 20;
  std::vector<RawConn> waiters;
  for (int i = 0; i < kClients; ++i) {
    waiters.push_back(stack().raw());
    ASSERT_TRUE(send_command(waiters.back(), {"BLPOP", cat("many:", i), "5"}));
  }
  await_blocked(kClients);
  // Others are not stalled while twenty clients block.
  Client pusher = connect();
  EXPECT_EQ(pusher.call({"PING"}), "+PONG");
  for (int i = kClients - 1; i >= 0; --i) EXPECT_EQ(pusher.call({"RPUSH", cat("many:", i), cat("v", i)}), ":1");
  for (int i = 0; i < kClients; ++i)
    EXPECT_EQ(escape_bytes(next_reply(waiters[i])), escape_bytes(resp_bulk_array({cat("many:", i), cat("v", i)})))
        << "client " << i;
  await_blocked(0);
}

TEST_F(BlockingTest, TwentyClientsBlockedOnOneKeyAreServedOnePerElement) {
  constexpr int kClients = 20;
  std::vector<RawConn> waiters;
  for (int i = 0; i < kClients; ++i) {
    waiters.push_back(stack().raw());
    ASSERT_TRUE(send_command(waiters.back(), {"BLPOP", "shared:q", "5"}));
  }
  await_blocked(kClients);
  Client pusher = connect();
  std::vector<std::string> push = {"RPUSH", "shared:q"};
  for (int i = 0; i < kClients; ++i) push.push_back(cat("e", i));
  EXPECT_EQ(pusher.call(push), cat(":", kClients));
  std::set<std::string> got;
  for (int i = 0; i < kClients; ++i) {
    std::string reply = next_reply(waiters[i]);
    bool matched = false;
    for (int e = 0; e < kClients; ++e) {
      if (reply == resp_bulk_array({"shared:q", cat("e", e)})) {
        matched = got.insert(cat("e", e)).second;
        break;
      }
    }
    EXPECT_TRUE(matched) << "client " << i << " got " << escape_bytes(reply);
  }
  EXPECT_EQ(got.size(), static_cast<size_t>(kClients));
  EXPECT_EQ(pusher.call({"LLEN", "shared:q"}), ":0");
}

}  // namespace
}  // namespace respite::test
