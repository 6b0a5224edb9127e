// Replication through respite: SYNC/PSYNC turn the client's dedicated upstream connection into
// a byte tunnel, so a replica (or a tool reading the replication stream) works through the
// proxy as it does against Redis.
#include <gtest/gtest.h>

#include <string>

#include "support/redis_probe.h"
#include "support/stack.h"

namespace respite::test {
namespace {

using namespace std::chrono_literals;

constexpr auto kWait = 10s;

class ReplicationTest : public ProxyTest {};

// A real redis-server replicating from Redis through respite: full sync, then live writes.
TEST_F(ReplicationTest, ReplicaOfRespiteReceivesTheDataAndLaterWrites) {
  Client master = stack().connect();
  ASSERT_EQ(master.call({"SET", "repl:before", "1"}), "+OK");

  RedisServer replica({"--replicaof", "127.0.0.1", std::to_string(stack().port())});
  Client r = Client::tcp(replica.port(), 5s);
  std::string got;
  EXPECT_TRUE(poll_until([&] { return (got = r.call({"GET", "repl:before"})) == "\"1\""; }, deadline_in(kWait), 20ms))
      << "full sync through respite: " << got << "\n" << replica.log();
  ASSERT_EQ(master.call({"SET", "repl:after", "2"}), "+OK");
  ASSERT_EQ(master.call({"RPUSH", "repl:list", "a", "b"}), ":2");
  EXPECT_TRUE(poll_until([&] { return (got = r.call({"LRANGE", "repl:list", "0", "-1"})) == "[\"a\", \"b\"]"; },
                         deadline_in(kWait), 20ms))
      << "command stream through respite: " << got;
  EXPECT_EQ(r.call({"GET", "repl:after"}), "\"2\"");
  std::string info = r.call({"INFO", "replication"});
  EXPECT_NE(info.find("master_link_status:up"), std::string::npos) << info;
}

// The raw stream a test harness or `redis-cli --replica` reads: the RDB as a bulk without a
// trailing CRLF, then the commands. A client that leaves takes its upstream connection along.
TEST_F(ReplicationTest, SyncStreamsTheRdbThenTheCommands) {
  RawConn c = stack().raw();
  ASSERT_TRUE(c.send_all("SYNC\r\n", deadline_in(kWait)));  // inline, as test harnesses send it
  std::string head;
  // Newlines may come first while Redis prepares the RDB.
  while (head.find("\r\n") == std::string::npos) {
    auto b = c.read_exact(1, deadline_in(kWait));
    ASSERT_TRUE(b) << "no RDB header";
    if (head.empty() && *b == "\n") continue;
    head += *b;
  }
  ASSERT_EQ(head[0], '$') << escape_bytes(head);
  size_t len = std::stoul(head.substr(1));
  auto rdb = c.read_exact(len, deadline_in(kWait));
  ASSERT_TRUE(rdb);
  EXPECT_EQ(rdb->substr(0, 5), "REDIS");

  Client w = stack().connect();
  ASSERT_EQ(w.call({"SET", "repl:streamed", "yes"}), "+OK");
  std::string stream;
  ASSERT_TRUE(poll_until(
      [&] {
        auto more = c.read_exact(1, deadline_in(50ms));
        if (more) stream += *more;
        return stream.find("repl:streamed") != std::string::npos && stream.find("yes\r\n") != std::string::npos;
      },
      deadline_in(kWait), 0ms))
      << escape_bytes(stream);
  EXPECT_NE(stream.find("$3\r\nSET\r\n$13\r\nrepl:streamed\r\n$3\r\nyes\r\n"), std::string::npos) << escape_bytes(stream);
  c.close();
  if (!stack().direct()) {
    Client redis = stack().connect_redis();
    // The tunnel's upstream connection (a replica in Redis's eyes) goes away with the client.
    EXPECT_TRUE(poll_until([&] { return info_integer(redis, "replication", "connected_slaves") == 0; },
                           deadline_in(kWait), 10ms));
  }
}

}  // namespace
}  // namespace respite::test
