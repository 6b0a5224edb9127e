// Differential test: one command script covering every data type is run against redis-server
// directly and through respite (after FLUSHALL each time), and the raw reply bytes must match.
// Spot checks pin a few replies to known bytes so the script itself is validated in direct mode.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "support/stack.h"

namespace respite::test {
namespace {

struct Step {
  std::vector<std::string> args;        // the command
  std::optional<std::string> expected;  // exact reply bytes, where worth pinning
};

std::vector<Step> script() {
  const std::string big(1000, 'x');
  return {
      // connection-level (answered by respite itself or forwarded: same bytes either way)
      {{"PING"}, "+PONG\r\n"},
      {{"ECHO", "hi there"}, "$8\r\nhi there\r\n"},
      // strings and integers
      {{"SET", "s", "hello"}, "+OK\r\n"},
      {{"GET", "s"}, "$5\r\nhello\r\n"},
      {{"APPEND", "s", " world"}, ":11\r\n"},
      {{"STRLEN", "s"}, ":11\r\n"},
      {{"GETRANGE", "s", "0", "4"}, "$5\r\nhello\r\n"},
      {{"SETRANGE", "s", "6", "W"}, ":11\r\n"},
      {{"GET", "s"}, "$11\r\nhello World\r\n"},
      {{"SET", "s", "v2", "GET"}, "$11\r\nhello World\r\n"},
      {{"SETNX", "s", "x"}, ":0\r\n"},
      {{"MSET", "a", "1", "b", "2"}, "+OK\r\n"},
      {{"MGET", "a", "b", "missing"}, "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"},
      {{"INCR", "a"}, ":2\r\n"},
      {{"INCRBY", "a", "10"}, ":12\r\n"},
      {{"DECRBY", "b", "5"}, ":-3\r\n"},
      {{"INCRBYFLOAT", "f", "1.5"}, "$3\r\n1.5\r\n"},
      {{"SET", "big", big}, "+OK\r\n"},
      {{"GET", "big"}, "$1000\r\n" + big + "\r\n"},
      {{"GETDEL", "big"}, std::nullopt},
      {{"EXISTS", "s", "a", "big"}, ":2\r\n"},
      {{"TYPE", "s"}, "+string\r\n"},
      {{"SET", "n", "notanint"}, "+OK\r\n"},
      {{"INCR", "n"}, "-ERR value is not an integer or out of range\r\n"},
      // nil
      {{"GET", "missing"}, "$-1\r\n"},
      {{"DEL", "a", "b", "missing"}, ":2\r\n"},
      // hashes
      {{"HSET", "h", "f1", "v1", "f2", "v2"}, ":2\r\n"},
      {{"HGET", "h", "f1"}, "$2\r\nv1\r\n"},
      {{"HGET", "h", "nope"}, "$-1\r\n"},
      {{"HGETALL", "h"}, "*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n"},
      {{"HMGET", "h", "f1", "nope", "f2"}, "*3\r\n$2\r\nv1\r\n$-1\r\n$2\r\nv2\r\n"},
      {{"HINCRBY", "h", "cnt", "5"}, ":5\r\n"},
      {{"HLEN", "h"}, ":3\r\n"},
      {{"HEXISTS", "h", "f2"}, ":1\r\n"},
      {{"HDEL", "h", "f2", "nope"}, ":1\r\n"},
      {{"HKEYS", "h"}, std::nullopt},
      {{"HVALS", "h"}, std::nullopt},
      {{"OBJECT", "ENCODING", "h"}, "$8\r\nlistpack\r\n"},
      // lists
      {{"RPUSH", "l", "a", "b", "c"}, ":3\r\n"},
      {{"LPUSH", "l", "z"}, ":4\r\n"},
      {{"LRANGE", "l", "0", "-1"}, "*4\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"},
      {{"LLEN", "l"}, ":4\r\n"},
      {{"LINDEX", "l", "1"}, "$1\r\na\r\n"},
      {{"LINSERT", "l", "BEFORE", "b", "ab"}, ":5\r\n"},
      {{"LSET", "l", "0", "zz"}, "+OK\r\n"},
      {{"LPOS", "l", "b"}, ":3\r\n"},
      {{"LPOP", "l"}, "$2\r\nzz\r\n"},
      {{"RPOP", "l", "2"}, "*2\r\n$1\r\nc\r\n$1\r\nb\r\n"},
      {{"LREM", "l", "0", "a"}, ":1\r\n"},
      {{"LPOP", "emptylist"}, "$-1\r\n"},
      // sets
      {{"SADD", "st", "3", "1", "2", "2"}, ":3\r\n"},
      {{"SCARD", "st"}, ":3\r\n"},
      {{"SISMEMBER", "st", "2"}, ":1\r\n"},
      {{"SMISMEMBER", "st", "1", "9"}, "*2\r\n:1\r\n:0\r\n"},
      {{"SMEMBERS", "st"}, "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"},
      {{"SADD", "st2", "2", "3", "4"}, ":3\r\n"},
      {{"SINTER", "st", "st2"}, "*2\r\n$1\r\n2\r\n$1\r\n3\r\n"},
      {{"SUNION", "st", "st2"}, std::nullopt},
      {{"SDIFF", "st", "st2"}, "*1\r\n$1\r\n1\r\n"},
      {{"SADD", "words", "apple", "pear"}, ":2\r\n"},
      {{"SMEMBERS", "words"}, std::nullopt},
      {{"SREM", "st", "1", "9"}, ":1\r\n"},
      // sorted sets
      {{"ZADD", "z", "1", "a", "2", "b", "3", "c"}, ":3\r\n"},
      {{"ZRANGE", "z", "0", "-1", "WITHSCORES"},
       "*6\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n"},
      {{"ZSCORE", "z", "b"}, "$1\r\n2\r\n"},
      {{"ZSCORE", "z", "missing"}, "$-1\r\n"},
      {{"ZINCRBY", "z", "2.5", "a"}, "$3\r\n3.5\r\n"},
      {{"ZRANK", "z", "a"}, ":2\r\n"},
      {{"ZREVRANGE", "z", "0", "1"}, "*2\r\n$1\r\na\r\n$1\r\nc\r\n"},
      {{"ZRANGEBYSCORE", "z", "(2", "+inf"}, "*2\r\n$1\r\nc\r\n$1\r\na\r\n"},
      {{"ZCOUNT", "z", "-inf", "+inf"}, ":3\r\n"},
      {{"ZPOPMIN", "z"}, "*2\r\n$1\r\nb\r\n$1\r\n2\r\n"},
      {{"ZCARD", "z"}, ":2\r\n"},
      // streams (explicit IDs: auto IDs depend on the clock)
      {{"XADD", "xs", "1-1", "f", "v"}, "$3\r\n1-1\r\n"},
      {{"XADD", "xs", "2-1", "f2", "v2", "a", "b"}, "$3\r\n2-1\r\n"},
      {{"XLEN", "xs"}, ":2\r\n"},
      {{"XRANGE", "xs", "-", "+"},
       "*2\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
       "*2\r\n$3\r\n2-1\r\n*4\r\n$2\r\nf2\r\n$2\r\nv2\r\n$1\r\na\r\n$1\r\nb\r\n"},
      {{"XREVRANGE", "xs", "+", "-", "COUNT", "1"},
       "*1\r\n*2\r\n$3\r\n2-1\r\n*4\r\n$2\r\nf2\r\n$2\r\nv2\r\n$1\r\na\r\n$1\r\nb\r\n"},
      {{"XADD", "xs", "1-0", "x", "y"},
       "-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n"},
      {{"XDEL", "xs", "1-1"}, ":1\r\n"},
      {{"XLEN", "xs"}, ":1\r\n"},
      // bitmaps
      {{"SETBIT", "bm", "7", "1"}, ":0\r\n"},
      {{"SETBIT", "bm", "100", "1"}, ":0\r\n"},
      {{"SETBIT", "bm", "7", "1"}, ":1\r\n"},
      {{"GETBIT", "bm", "7"}, ":1\r\n"},
      {{"GETBIT", "bm", "8"}, ":0\r\n"},
      {{"BITCOUNT", "bm"}, ":2\r\n"},
      {{"BITPOS", "bm", "1"}, ":7\r\n"},
      {{"GET", "bm"}, std::string("$13\r\n\x01", 6) + std::string(11, '\0') + "\x08\r\n"},
      // HyperLogLog
      {{"PFADD", "hll", "a", "b", "c", "d"}, ":1\r\n"},
      {{"PFADD", "hll", "a"}, ":0\r\n"},
      {{"PFCOUNT", "hll"}, ":4\r\n"},
      {{"PFADD", "hll2", "e"}, ":1\r\n"},
      {{"PFMERGE", "hll3", "hll", "hll2"}, "+OK\r\n"},
      {{"PFCOUNT", "hll3"}, ":5\r\n"},
      // expiry
      {{"SET", "e", "v", "EX", "100"}, "+OK\r\n"},
      {{"TTL", "e"}, ":100\r\n"},
      {{"EXPIRE", "e", "200"}, ":1\r\n"},
      {{"TTL", "e"}, ":200\r\n"},
      {{"PERSIST", "e"}, ":1\r\n"},
      {{"TTL", "e"}, ":-1\r\n"},
      {{"TTL", "missing"}, ":-2\r\n"},
      {{"EXPIRE", "missing", "10"}, ":0\r\n"},
      // errors: wrong type
      {{"LPUSH", "s", "x"}, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
      {{"GET", "h"}, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
      {{"ZADD", "z", "notafloat", "m"}, "-ERR value is not a valid float\r\n"},
      // scripts: mixed and nested types, script errors
      {{"EVAL", "return {1,'two',{3,'four'},redis.status_reply('FINE'),false}", "0"},
       "*5\r\n:1\r\n$3\r\ntwo\r\n*2\r\n:3\r\n$4\r\nfour\r\n+FINE\r\n$-1\r\n"},
      {{"EVAL", "return redis.error_reply('MYERR custom')", "0"}, "-MYERR custom\r\n"},
      {{"EVAL", "return redis.call('GET', KEYS[1])", "1", "s"}, "$2\r\nv2\r\n"},
      {{"DBSIZE"}, std::nullopt},
  };
}

// Runs the script on `conn`, one command at a time; returns the raw replies.
std::vector<std::string> run_script(RawConn& conn, const std::vector<Step>& steps) {
  std::vector<std::string> replies;
  for (const auto& step : steps) {
    EXPECT_TRUE(conn.send_all(resp_command(step.args), deadline_in(std::chrono::seconds(5))));
    auto reply = conn.read_reply(deadline_in(std::chrono::seconds(5)));
    if (!reply) {
      ADD_FAILURE() << "no reply to " << step.args[0] << (conn.closed() ? " (connection closed)" : " (timeout)");
      replies.push_back("<none>");
      break;
    }
    replies.push_back(*reply);
  }
  return replies;
}

void flushall(Stack& stack) {
  Client admin = stack.connect_redis();
  ASSERT_EQ(admin.call({"FLUSHALL"}), "+OK");
}

std::string label(const Step& step) {
  std::string out;
  for (const auto& a : step.args) out += cat(out.empty() ? "" : " ", escape_bytes(a, 60));
  return out;
}

class DataTypesTest : public ProxyTest {};

TEST_F(DataTypesTest, EveryTypeRoundTripsWithRedisExactBytes) {
  const auto steps = script();

  flushall(stack());
  RawConn direct = RawConn::tcp(stack().redis().port());
  const auto want = run_script(direct, steps);
  ASSERT_EQ(want.size(), steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].expected) {
      EXPECT_EQ(escape_bytes(want[i]), escape_bytes(*steps[i].expected)) << "redis-server itself, step: " << label(steps[i]);
    }
  }

  flushall(stack());
  RawConn via = stack().raw();
  const auto got = run_script(via, steps);
  ASSERT_EQ(got.size(), steps.size());
  for (size_t i = 0; i < steps.size(); ++i)
    EXPECT_EQ(escape_bytes(got[i]), escape_bytes(want[i])) << "step: " << label(steps[i]);
}

TEST_F(DataTypesTest, WholeScriptPipelinedInOneWriteMatchesRedis) {
  const auto steps = script();
  std::string batch;
  for (const auto& s : steps) batch += resp_command(s.args);

  auto run = [&](RawConn& conn) {
    std::string all;
    EXPECT_TRUE(conn.send_all(batch, deadline_in(std::chrono::seconds(5))));
    for (size_t i = 0; i < steps.size(); ++i) {
      auto reply = conn.read_reply(deadline_in(std::chrono::seconds(5)));
      if (!reply) {
        ADD_FAILURE() << "reply " << i << " missing (" << label(steps[i]) << ")";
        break;
      }
      all += *reply;
    }
    return all;
  };

  flushall(stack());
  RawConn direct = RawConn::tcp(stack().redis().port());
  const std::string want = run(direct);
  flushall(stack());
  RawConn via = stack().raw();
  const std::string got = run(via);
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "pipelined replies differ from Redis's";
}

TEST_F(DataTypesTest, IntegerNilAndErrorRepliesThroughHiredis) {
  Client c = connect();
  EXPECT_EQ(c.call({"SET", "counter", "41"}), "+OK");
  EXPECT_EQ(c.call({"INCR", "counter"}), ":42");
  EXPECT_EQ(c.call({"GET", "nothing-here"}), "(nil)");
  EXPECT_EQ(c.call({"HSET", "hash", "f", "v"}), ":1");
  EXPECT_EQ(c.call({"LLEN", "hash"}), "-WRONGTYPE Operation against a key holding the wrong kind of value");
  EXPECT_EQ(c.call({"MGET", "counter", "nothing-here"}), "[\"42\", (nil)]");
  // The connection is still usable after an error reply.
  EXPECT_EQ(c.call({"PING"}), "+PONG");
}

}  // namespace
}  // namespace respite::test
