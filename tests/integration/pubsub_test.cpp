// Pub/sub through respite: a subscribed client is pinned to an upstream connection of its own,
// gets exactly the messages of its channels and patterns, follows Redis's RESP2 subscribed-mode
// rules, and returns to normal commands once it has unsubscribed from everything (or RESET).
// Subscribers use RawConn so the exact push bytes are checked.
#include <gtest/gtest.h>

#include <cctype>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "support/redis_probe.h"
#include "support/stack.h"

namespace respite::test {
namespace {

using namespace std::chrono_literals;

constexpr auto kWait = 5s;  // upper bound for anything that should happen promptly

// A (un)subscribe confirmation: [kind, channel, count]; a null channel when `channel` is empty
// and `null_channel` is set (UNSUBSCRIBE with nothing subscribed).
std::string confirmation(const std::string& kind, const std::string& channel, int count, bool null_channel = false) {
  return cat("*3\r\n", resp_bulk(kind), null_channel ? std::string("$-1\r\n") : resp_bulk(channel), ":", count, "\r\n");
}
std::string message(const std::string& channel, const std::string& payload) {
  return resp_bulk_array({"message", channel, payload});
}
std::string pmessage(const std::string& pattern, const std::string& channel, const std::string& payload) {
  return resp_bulk_array({"pmessage", pattern, channel, payload});
}
// PING's reply in subscribed mode (RESP2).
std::string sub_pong(const std::string& arg = "") { return resp_bulk_array({"pong", arg}); }

class PubSubTest : public ProxyTest {
 protected:
  // A new raw connection subscribed (kind "subscribe", "psubscribe" or "ssubscribe") to `names`,
  // each confirmation checked.
  RawConn subscriber(const std::string& command, const std::vector<std::string>& names) {
    RawConn c = stack().raw();
    std::vector<std::string> args = {command};
    args.insert(args.end(), names.begin(), names.end());
    EXPECT_TRUE(send_command(c, args));
    std::string kind = command;
    for (auto& ch : kind) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
    for (size_t i = 0; i < names.size(); ++i)
      EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation(kind, names[i], static_cast<int>(i + 1))));
    return c;
  }

  // Expects exactly `pushes` next on `c`, then nothing else: a PING sent afterwards must be
  // answered right after them (Redis answers in order, so an extra message would come first).
  void expect_exactly(RawConn& c, const std::vector<std::string>& pushes, const std::string& who) {
    for (size_t i = 0; i < pushes.size(); ++i)
      EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(pushes[i])) << who << ", push " << i;
    ASSERT_TRUE(send_command(c, {"PING", "sentinel"}));
    EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(sub_pong("sentinel"))) << who << ": an unexpected push";
  }
};

TEST_F(PubSubTest, MessagesReachExactlyTheirSubscribersInOrder) {
  RawConn one = subscriber("SUBSCRIBE", {"ps:ch1"});
  RawConn two = subscriber("SUBSCRIBE", {"ps:ch2"});
  RawConn pattern = subscriber("PSUBSCRIBE", {"ps:ch*"});
  Client publisher = connect();
  EXPECT_EQ(publisher.call({"PUBLISH", "ps:ch1", "m1"}), ":2");
  EXPECT_EQ(publisher.call({"PUBLISH", "ps:ch2", "m2"}), ":2");
  EXPECT_EQ(publisher.call({"PUBLISH", "ps:other", "lost"}), ":0");
  EXPECT_EQ(publisher.call({"PUBLISH", "ps:ch1", "m3"}), ":2");
  EXPECT_EQ(publisher.call({"PUBLISH", "ps:ch3", "m4"}), ":1");

  expect_exactly(one, {message("ps:ch1", "m1"), message("ps:ch1", "m3")}, "subscriber of ps:ch1");
  expect_exactly(two, {message("ps:ch2", "m2")}, "subscriber of ps:ch2");
  expect_exactly(pattern,
                 {pmessage("ps:ch*", "ps:ch1", "m1"), pmessage("ps:ch*", "ps:ch2", "m2"),
                  pmessage("ps:ch*", "ps:ch1", "m3"), pmessage("ps:ch*", "ps:ch3", "m4")},
                 "pattern subscriber");
}

TEST_F(PubSubTest, ManySubscribersOfOneChannelAllReceive) {
  constexpr int kSubscribers = 10;
  std::vector<RawConn> subs;
  for (int i = 0; i < kSubscribers; ++i) subs.push_back(subscriber("SUBSCRIBE", {"ps:fan"}));
  Client publisher = connect();
  EXPECT_EQ(publisher.call({"PUBLISH", "ps:fan", "hello"}), cat(":", kSubscribers));
  EXPECT_EQ(publisher.call({"PUBLISH", "ps:fan", "again"}), cat(":", kSubscribers));
  for (int i = 0; i < kSubscribers; ++i)
    expect_exactly(subs[i], {message("ps:fan", "hello"), message("ps:fan", "again")}, cat("subscriber ", i));
}

TEST_F(PubSubTest, SubscribeInAPipelineAfterOrdinaryCommands) {
  RawConn c = stack().raw();
  ASSERT_TRUE(c.send_all(resp_command({"SET", "ps:k", "1"}) + resp_command({"GET", "ps:k"}) +
                             resp_command({"SUBSCRIBE", "ps:pipe"}) + resp_command({"PING"}),
                         deadline_in(kWait)));
  EXPECT_EQ(next_reply(c), "+OK\r\n");
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(resp_bulk("1")));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation("subscribe", "ps:pipe", 1)));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(sub_pong()));
  EXPECT_EQ(connect().call({"PUBLISH", "ps:pipe", "x"}), ":1");
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(message("ps:pipe", "x")));
}

TEST_F(PubSubTest, UnsubscribeRepliesAndCounts) {
  RawConn c = subscriber("SUBSCRIBE", {"ps:a", "ps:b", "ps:c"});
  ASSERT_TRUE(send_command(c, {"PSUBSCRIBE", "ps:p*"}));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation("psubscribe", "ps:p*", 4)));
  ASSERT_TRUE(send_command(c, {"UNSUBSCRIBE", "ps:a"}));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation("unsubscribe", "ps:a", 3)));
  // Unsubscribing from a channel not subscribed still confirms, with the count unchanged.
  ASSERT_TRUE(send_command(c, {"UNSUBSCRIBE", "ps:never"}));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation("unsubscribe", "ps:never", 3)));

  // UNSUBSCRIBE without arguments: one confirmation per remaining channel (in no set order).
  ASSERT_TRUE(send_command(c, {"UNSUBSCRIBE"}));
  std::set<std::string> left;
  for (int count = 2; count >= 1; --count) {
    std::string reply = next_reply(c);
    if (reply == confirmation("unsubscribe", "ps:b", count)) left.insert("ps:b");
    else if (reply == confirmation("unsubscribe", "ps:c", count)) left.insert("ps:c");
    else ADD_FAILURE() << "unexpected reply " << escape_bytes(reply) << " (count " << count << " expected)";
  }
  EXPECT_EQ(left, (std::set<std::string>{"ps:b", "ps:c"}));

  // Still subscribed to the pattern.
  EXPECT_EQ(connect().call({"PUBLISH", "ps:p1", "x"}), ":1");
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(pmessage("ps:p*", "ps:p1", "x")));
  ASSERT_TRUE(send_command(c, {"PUNSUBSCRIBE"}));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation("punsubscribe", "ps:p*", 0)));

  // Out of subscribed mode: PING is an ordinary PING, and UNSUBSCRIBE confirms "nothing".
  ASSERT_TRUE(send_command(c, {"PING"}));
  EXPECT_EQ(next_reply(c), "+PONG\r\n");
  ASSERT_TRUE(send_command(c, {"UNSUBSCRIBE"}));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation("unsubscribe", "", 0, /*null_channel=*/true)));
  ASSERT_TRUE(send_command(c, {"PUNSUBSCRIBE"}));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation("punsubscribe", "", 0, /*null_channel=*/true)));
  EXPECT_EQ(connect().call({"PUBLISH", "ps:p1", "y"}), ":0");
}

TEST_F(PubSubTest, PingInSubscribedMode) {
  RawConn c = subscriber("SUBSCRIBE", {"ps:ping"});
  ASSERT_TRUE(send_command(c, {"PING"}));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(sub_pong()));
  EXPECT_EQ(escape_bytes(sub_pong()), "*2\\r\\n$4\\r\\npong\\r\\n$0\\r\\n\\r\\n");
  ASSERT_TRUE(send_command(c, {"PING", "hello"}));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(sub_pong("hello")));
}

TEST_F(PubSubTest, OtherCommandsInSubscribedModeGetRedisError) {
  RawConn c = subscriber("SUBSCRIBE", {"ps:strict"});
  ASSERT_TRUE(send_command(c, {"GET", "ps:k"}));
  EXPECT_EQ(next_reply(c),
            "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in "
            "this context\r\n");
  ASSERT_TRUE(send_command(c, {"SET", "ps:k", "v"}));
  EXPECT_EQ(next_reply(c),
            "-ERR Can't execute 'set': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in "
            "this context\r\n");
  Client other = connect();
  EXPECT_EQ(other.call({"EXISTS", "ps:k"}), ":0") << "a refused command was executed";
  // Still subscribed.
  EXPECT_EQ(other.call({"PUBLISH", "ps:strict", "still"}), ":1");
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(message("ps:strict", "still")));
}

TEST_F(PubSubTest, AfterUnsubscribingFromEverythingNormalCommandsWork) {
  Client other = connect();
  ASSERT_EQ(other.call({"SET", "ps:normal", "value"}), "+OK");
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(cat("round ", round));
    RawConn c = subscriber("SUBSCRIBE", {"ps:x", "ps:y"});
    ASSERT_TRUE(send_command(c, {"PSUBSCRIBE", "ps:z*"}));
    EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation("psubscribe", "ps:z*", 3)));
    ASSERT_TRUE(send_command(c, {"UNSUBSCRIBE", "ps:x", "ps:y"}));
    EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation("unsubscribe", "ps:x", 2)));
    EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation("unsubscribe", "ps:y", 1)));
    ASSERT_TRUE(send_command(c, {"PUNSUBSCRIBE", "ps:z*"}));
    EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation("punsubscribe", "ps:z*", 0)));
    ASSERT_TRUE(send_command(c, {"GET", "ps:normal"}));
    EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(resp_bulk("value")));
    ASSERT_TRUE(send_command(c, {"SET", "ps:written", cat(round)}));
    EXPECT_EQ(next_reply(c), "+OK\r\n");
    EXPECT_EQ(other.call({"GET", "ps:written"}), cat("\"", round, "\""));
    EXPECT_EQ(other.call({"PUBLISH", "ps:x", "late"}), ":0");
    EXPECT_EQ(other.call({"PUBLISH", "ps:zz", "late"}), ":0");
  }
}

TEST_F(PubSubTest, ShardedSubscribeAndPublish) {
  RawConn c = subscriber("SSUBSCRIBE", {"ps:shard"});
  RawConn other_channel = subscriber("SSUBSCRIBE", {"ps:shard2"});
  Client publisher = connect();
  EXPECT_EQ(publisher.call({"SPUBLISH", "ps:shard", "hi"}), ":1");
  EXPECT_EQ(publisher.call({"PUBLISH", "ps:shard", "not sharded"}), ":0");
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(resp_bulk_array({"smessage", "ps:shard", "hi"})));
  ASSERT_TRUE(send_command(c, {"SUNSUBSCRIBE", "ps:shard"}));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation("sunsubscribe", "ps:shard", 0)));
  ASSERT_TRUE(send_command(c, {"GET", "ps:none"}));
  EXPECT_EQ(next_reply(c), "$-1\r\n");
  EXPECT_EQ(publisher.call({"SPUBLISH", "ps:shard", "gone"}), ":0");
  ASSERT_TRUE(send_command(other_channel, {"PING"}));
  EXPECT_EQ(escape_bytes(next_reply(other_channel)), escape_bytes(sub_pong()))
      << "a subscriber of another shard channel got a message";
}

TEST_F(PubSubTest, ResetLeavesSubscribedMode) {
  Client other = connect();
  ASSERT_EQ(other.call({"SET", "ps:r", "v"}), "+OK");
  RawConn c = subscriber("SUBSCRIBE", {"ps:reset"});
  ASSERT_TRUE(send_command(c, {"PSUBSCRIBE", "ps:reset*"}));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation("psubscribe", "ps:reset*", 2)));
  ASSERT_TRUE(send_command(c, {"RESET"}));
  EXPECT_EQ(next_reply(c), "+RESET\r\n");
  EXPECT_EQ(other.call({"PUBLISH", "ps:reset", "after"}), ":0");
  ASSERT_TRUE(send_command(c, {"GET", "ps:r"}));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(resp_bulk("v")));
  ASSERT_TRUE(send_command(c, {"PING"}));
  EXPECT_EQ(next_reply(c), "+PONG\r\n");
}

TEST_F(PubSubTest, QuitInSubscribedMode) {
  RawConn c = subscriber("SUBSCRIBE", {"ps:quit"});
  ASSERT_TRUE(send_command(c, {"QUIT"}));
  bool closed = false;
  EXPECT_EQ(escape_bytes(c.read_until_closed(deadline_in(kWait), &closed)), "+OK\\r\\n");
  EXPECT_TRUE(closed);
}

// A subscriber that disconnects is forgotten by Redis (its upstream connection is closed or
// reset): PUBLISH stops counting it.
TEST_F(PubSubTest, DisconnectedSubscriberIsForgotten) {
  Client redis = stack().connect_redis();
  Client publisher = connect();
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE(cat("round ", round));
    {
      RawConn gone = subscriber("SUBSCRIBE", {"ps:gone"});
      ASSERT_TRUE(send_command(gone, {"PSUBSCRIBE", "ps:gone*"}));
      EXPECT_EQ(escape_bytes(next_reply(gone)), escape_bytes(confirmation("psubscribe", "ps:gone*", 2)));
      EXPECT_EQ(publisher.call({"PUBLISH", "ps:gone", "x"}), ":2");
      gone.close(/*reset=*/round % 2 == 1);
    }
    EXPECT_TRUE(poll_until(
        [&] {
          return redis.call({"PUBSUB", "NUMSUB", "ps:gone"}) == "[\"ps:gone\", :0]" &&
                 redis.call({"PUBSUB", "NUMPAT"}) == ":0";
        },
        deadline_in(kWait)))
        << "Redis still has the disconnected subscriber: " << redis.call({"PUBSUB", "NUMSUB", "ps:gone"});
    EXPECT_EQ(publisher.call({"PUBLISH", "ps:gone", "y"}), ":0");
    // The next client (possibly on the same upstream connection) is not subscribed.
    RawConn next = stack().raw();
    ASSERT_TRUE(send_command(next, {"PING"}));
    EXPECT_EQ(next_reply(next), "+PONG\r\n");
  }
}

// Redis 7 delivers (un)subscribe confirmations and messages even to a client that silenced its
// replies with CLIENT REPLY OFF or SKIP; other replies stay silenced.
TEST_F(PubSubTest, ClientReplyOffDoesNotSilencePubSub) {
  Client redis = stack().connect();
  ASSERT_EQ(redis.call({"CONFIG", "SET", "notify-keyspace-events", "KA"}), "+OK");
  RawConn c = stack().raw();
  ASSERT_TRUE(send_command(c, {"CLIENT", "REPLY", "OFF"}));
  ASSERT_TRUE(send_command(c, {"PSUBSCRIBE", "__keyspace@*__:rq:*"}));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation("psubscribe", "__keyspace@*__:rq:*", 1)));
  ASSERT_EQ(redis.call({"SET", "rq:k", "v"}), "+OK");
  std::string got = next_reply(c);
  EXPECT_NE(got.find("pmessage"), std::string::npos) << escape_bytes(got);
  EXPECT_NE(got.find(":rq:k"), std::string::npos) << escape_bytes(got);
  // PING's reply is an ordinary reply: silenced.
  ASSERT_TRUE(send_command(c, {"PING", "quiet"}));
  ASSERT_TRUE(send_command(c, {"PUNSUBSCRIBE"}));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(confirmation("punsubscribe", "__keyspace@*__:rq:*", 0)));
  ASSERT_EQ(redis.call({"CONFIG", "SET", "notify-keyspace-events", ""}), "+OK");

  RawConn d = stack().raw();
  ASSERT_TRUE(send_command(d, {"CLIENT", "REPLY", "SKIP"}));
  ASSERT_TRUE(send_command(d, {"SUBSCRIBE", "rq:ch"}));
  EXPECT_EQ(escape_bytes(next_reply(d)), escape_bytes(confirmation("subscribe", "rq:ch", 1)));
  ASSERT_EQ(redis.call({"PUBLISH", "rq:ch", "hi"}), ":1");
  EXPECT_EQ(escape_bytes(next_reply(d)), escape_bytes(message("rq:ch", "hi")));
}

}  // namespace
}  // namespace respite::test
