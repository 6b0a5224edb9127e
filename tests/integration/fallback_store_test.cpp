// The fallback store's expectations against a real redis-server:
//   - every step of tests/fallback_cases.h gets, from Redis, exactly the reply the case list
//     says (the unit test checks the LocalStore gives the same), so the store's replies are
//     Redis's own;
//   - replaying the journal the store produces for each case into an empty Redis leaves Redis
//     in the state the case leaves when run on Redis directly (types, values, expiries within
//     a few seconds), so the journal forms replay to what the client was told.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "fallback/local_store.h"
#include "fallback_cases.h"
#include "support/net.h"
#include "support/redis_server.h"

namespace respite::test {
namespace {

using namespace std::chrono_literals;
namespace fc = fallback_cases;

std::string describe_args(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
  return out;
}

// One connection to Redis speaking raw RESP, following the database per command.
class RedisConn {
 public:
  explicit RedisConn(uint16_t port) : conn_(RawConn::tcp(port)) {}

  std::string call(const std::vector<std::string>& args) {
    if (!conn_.send_all(resp_command(args), deadline_in(5s))) return "<send failed>";
    auto r = conn_.read_reply(deadline_in(5s));
    return r ? *r : "<no reply>";
  }
  std::string call_in(int db, const std::vector<std::string>& args) {
    if (db != db_) {
      std::string r = call({"SELECT", std::to_string(db)});
      EXPECT_EQ(r, "+OK\r\n");
      db_ = db;
    }
    return call(args);
  }
  void flushall() {
    EXPECT_EQ(call({"FLUSHALL"}), "+OK\r\n");
    EXPECT_EQ(call_in(0, {"PING"}), "+PONG\r\n");
  }

 private:
  RawConn conn_;
  int db_ = 0;  // the connection's selected database
};

// What a key holds, as Redis shows it.
struct KeyState {
  std::string type;        // TYPE's reply
  std::string value;       // GET / HGETALL / LRANGE 0 -1 replies, or SMEMBERS' elements sorted
  long long expire = 0;    // PEXPIRETIME: -1 without expiry
};
using Snapshot = std::map<std::string, KeyState>;  // "<db>/<key>" -> state

Snapshot snapshot(RedisConn& redis, const std::vector<int>& dbs) {
  Snapshot out;
  for (int db : dbs) {
    std::vector<std::string> keys;
    EXPECT_TRUE(fc::split_array(redis.call_in(db, {"KEYS", "*"}), keys));
    for (const std::string& raw : keys) {
      // Each element is "$<len>\r\n<key>\r\n".
      const size_t start = raw.find("\r\n") + 2;
      const std::string key = raw.substr(start, raw.size() - start - 2);
      KeyState s;
      s.type = redis.call_in(db, {"TYPE", key});
      if (s.type == "+string\r\n") {
        s.value = redis.call_in(db, {"GET", key});
      } else if (s.type == "+hash\r\n") {
        s.value = redis.call_in(db, {"HGETALL", key});
      } else if (s.type == "+list\r\n") {
        s.value = redis.call_in(db, {"LRANGE", key, "0", "-1"});
      } else if (s.type == "+set\r\n") {
        std::vector<std::string> members;
        EXPECT_TRUE(fc::split_array(redis.call_in(db, {"SMEMBERS", key}), members));
        std::sort(members.begin(), members.end());
        for (const auto& m : members) s.value += m;
      }
      const std::string t = redis.call_in(db, {"PEXPIRETIME", key});
      s.expire = std::stoll(t.substr(1));
      out[std::to_string(db) + "/" + key] = s;
    }
  }
  return out;
}

uint64_t wall_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

TEST(FallbackStoreVsRedis, CaseRepliesAreRedisOwn) {
  RedisServer server;
  RedisConn redis(server.port());
  size_t steps = 0;
  for (const fc::Case& c : fc::cases()) {
    SCOPED_TRACE(c.name);
    redis.flushall();
    for (size_t i = 0; i < c.steps.size(); ++i) {
      const fc::Step& step = c.steps[i];
      const std::string got = redis.call_in(step.db, step.args);
      EXPECT_TRUE(fc::reply_matches(step, got))
          << "step " << (i + 1) << ": " << describe_args(step.args) << "\nredis    " << escape_bytes(got)
          << "\nexpected " << escape_bytes(step.reply);
      ++steps;
    }
  }
  EXPECT_GT(steps, 400u);
}

TEST(FallbackStoreVsRedis, ReplayedJournalReachesTheStateRedisReaches) {
  RedisServer server;
  RedisConn redis(server.port());
  for (const fc::Case& c : fc::cases()) {
    SCOPED_TRACE(c.name);
    const std::vector<int> dbs = fc::databases(c);

    // The case on the store, with the wall clock Redis uses: its journal, in order.
    fallback::LocalStore store(64 << 20);
    for (int db : dbs) {
      for (const auto& key : c.absent) ASSERT_TRUE(store.seed_absent(db, key));
    }
    std::vector<std::pair<int, std::vector<std::string>>> journal;
    std::string reply;
    std::vector<std::string> record;
    for (const fc::Step& step : c.steps) {
      std::vector<std::string_view> args(step.args.begin(), step.args.end());
      const fallback::Outcome o = store.execute(step.db, args, wall_ms(), reply, record);
      ASSERT_NE(o, fallback::Outcome::Unknown) << describe_args(step.args);
      EXPECT_TRUE(fc::reply_matches(step, reply)) << describe_args(step.args) << ": " << escape_bytes(reply);
      if (!record.empty()) journal.emplace_back(step.db, record);
    }

    // The case on Redis directly.
    redis.flushall();
    for (const fc::Step& step : c.steps) redis.call_in(step.db, step.args);
    const Snapshot direct = snapshot(redis, dbs);

    // The journal replayed into an empty Redis.
    redis.flushall();
    for (const auto& [db, args] : journal) {
      const std::string r = redis.call_in(db, args);
      EXPECT_NE(r.substr(0, 1), "-") << "replaying " << describe_args(args) << ": " << escape_bytes(r);
    }
    const Snapshot replayed = snapshot(redis, dbs);

    ASSERT_EQ(direct.size(), replayed.size());
    for (const auto& [name, want] : direct) {
      SCOPED_TRACE(name);
      auto it = replayed.find(name);
      ASSERT_NE(it, replayed.end());
      const KeyState& got = it->second;
      EXPECT_EQ(got.type, want.type);
      EXPECT_EQ(escape_bytes(got.value), escape_bytes(want.value));
      if (want.expire < 0) {
        EXPECT_EQ(got.expire, want.expire);
      } else {
        EXPECT_NEAR(static_cast<double>(got.expire), static_cast<double>(want.expire), 5000.0);
      }
    }
  }
}

}  // namespace
}  // namespace respite::test
