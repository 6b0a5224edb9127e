// fallback::LocalStore: Redis's replies over the shared case list (tests/fallback_cases.h,
// checked against a real Redis by tests/integration/fallback_store_test.cpp), the knowledge
// rules (Unknown, nothing changed), TTL knowledge, memory bound and seed eviction, the
// journal forms, and Redis's number formats.
#include "fallback/local_store.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "../fallback_cases.h"
#include "fallback/redis_numbers.h"

namespace respite::fallback {
namespace {

namespace fc = test::fallback_cases;

constexpr uint64_t kNow = 1'700'000'000'000;  // the injected wall clock, ms

// Runs commands on one store and keeps the last reply and journal.
struct Runner {
  LocalStore store;
  uint64_t now = kNow;
  int db = 0;
  std::string reply;
  std::vector<std::string> journal;

  explicit Runner(size_t max_bytes = 64 << 20) : store(max_bytes) {}

  Outcome run(const std::vector<std::string>& args) {
    std::vector<std::string_view> views(args.begin(), args.end());
    return store.execute(db, views, now, reply, journal);
  }
  // The reply of a command that must be answered (Done or Refused).
  std::string answer(const std::vector<std::string>& args) {
    Outcome o = run(args);
    EXPECT_NE(o, Outcome::Unknown) << args[0] << ": " << reply;
    return reply;
  }
  void seed_absent(std::initializer_list<std::string_view> keys) {
    for (auto k : keys) EXPECT_TRUE(store.seed_absent(db, k)) << k;
  }
};

using Journal = std::vector<std::string>;

std::string describe(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
  return out;
}

// --- the shared cases ---

TEST(LocalStoreCases, EveryStepGivesRedisOwnReply) {
  for (const fc::Case& c : fc::cases()) {
    SCOPED_TRACE(c.name);
    Runner r;
    for (int db : fc::databases(c)) {
      for (const auto& key : c.absent) ASSERT_TRUE(r.store.seed_absent(db, key));
    }
    for (size_t i = 0; i < c.steps.size(); ++i) {
      const fc::Step& step = c.steps[i];
      SCOPED_TRACE("step " + std::to_string(i + 1) + ": " + describe(step.args));
      r.db = step.db;
      const Outcome o = r.run(step.args);
      ASSERT_NE(o, Outcome::Unknown) << r.reply;
      EXPECT_TRUE(fc::reply_matches(step, r.reply)) << "got      " << ::testing::PrintToString(r.reply)
                                                     << "\nexpected " << ::testing::PrintToString(step.reply);
      EXPECT_EQ(o == Outcome::Refused, !r.reply.empty() && r.reply[0] == '-');
      if (o == Outcome::Refused || !LocalStore::is_write(step.args[0])) {
        EXPECT_TRUE(r.journal.empty());
      }
      EXPECT_EQ(r.store.bytes(), r.store.recount_bytes());
    }
  }
}

TEST(LocalStoreCases, EverySupportedCommandIsCovered) {
  const char* commands[] = {
      "get", "set", "setnx", "setex", "psetex", "getset", "getdel", "getex", "mget", "mset", "msetnx", "incr",
      "decr", "incrby", "decrby", "incrbyfloat", "append", "strlen", "del", "unlink", "exists", "type", "ttl",
      "pttl", "expiretime", "pexpiretime", "expire", "pexpire", "expireat", "pexpireat", "persist", "hset",
      "hmset", "hsetnx", "hget", "hmget", "hdel", "hgetall", "hkeys", "hvals", "hlen", "hexists", "hstrlen",
      "hincrby", "hincrbyfloat", "lpush", "rpush", "lpushx", "rpushx", "lpop", "rpop", "llen", "lrange",
      "lindex", "sadd", "srem", "smembers", "sismember", "smismember", "scard"};
  for (const char* name : commands) {
    EXPECT_TRUE(LocalStore::supports(name)) << name;
    bool covered = false;
    for (const fc::Case& c : fc::cases()) {
      for (const fc::Step& s : c.steps) {
        std::string lower;
        for (char ch : s.args[0]) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
        covered = covered || lower == name;
      }
    }
    EXPECT_TRUE(covered) << name << " has no step in tests/fallback_cases.h";
  }
}

// --- knowledge ---

TEST(LocalStoreKnowledge, ReadsOfUnknownKeysAreUnknownAndChangeNothing) {
  const std::vector<std::vector<std::string>> reads = {
      {"GET", "u"},           {"STRLEN", "u"},      {"EXISTS", "u"},         {"TYPE", "u"},
      {"TTL", "u"},           {"PTTL", "u"},        {"EXPIRETIME", "u"},     {"MGET", "u"},
      {"HGET", "u", "f"},     {"HMGET", "u", "f"},  {"HGETALL", "u"},        {"HKEYS", "u"},
      {"HVALS", "u"},         {"HLEN", "u"},        {"HEXISTS", "u", "f"},   {"HSTRLEN", "u", "f"},
      {"LLEN", "u"},          {"LRANGE", "u", "0", "-1"}, {"LINDEX", "u", "0"}, {"SMEMBERS", "u"},
      {"SISMEMBER", "u", "m"}, {"SMISMEMBER", "u", "m"}, {"SCARD", "u"},
  };
  Runner r;
  for (const auto& args : reads) {
    SCOPED_TRACE(describe(args));
    EXPECT_EQ(r.run(args), Outcome::Unknown);
    std::string lower;
    for (char ch : args[0]) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
    EXPECT_EQ(r.reply, LocalStore::unknown_error(lower, "u"));
    EXPECT_TRUE(r.journal.empty());
  }
  EXPECT_EQ(r.store.entries(), 0u);
  EXPECT_EQ(r.store.bytes(), 0u);
  EXPECT_EQ(r.store.stats().unknown, reads.size());
}

TEST(LocalStoreKnowledge, WritesThatDependOnTheOldValueAreUnknown) {
  const std::vector<std::vector<std::string>> writes = {
      {"INCR", "u"},
      {"DECR", "u"},
      {"INCRBY", "u", "2"},
      {"DECRBY", "u", "2"},
      {"INCRBYFLOAT", "u", "1.5"},
      {"INCRBYFLOAT", "u", "abc"},  // Redis reads the key before the increment
      {"APPEND", "u", "x"},
      {"SETNX", "u", "v"},
      {"SET", "u", "v", "NX"},
      {"SET", "u", "v", "XX"},
      {"SET", "u", "v", "GET"},
      {"SET", "u", "v", "KEEPTTL"},
      {"GETSET", "u", "v"},
      {"GETDEL", "u"},
      {"GETEX", "u", "EX", "10"},
      {"GETEX", "u", "EX", "0"},  // the key is read before the expire time is checked
      {"DEL", "u"},
      {"UNLINK", "u"},
      {"EXPIRE", "u", "10"},
      {"PEXPIRE", "u", "10"},
      {"EXPIREAT", "u", "10"},
      {"PEXPIREAT", "u", "10"},
      {"PERSIST", "u"},
      {"MSETNX", "u", "v"},
      {"HSET", "u", "f", "v"},
      {"HMSET", "u", "f", "v"},
      {"HSETNX", "u", "f", "v"},
      {"HDEL", "u", "f"},
      {"HINCRBY", "u", "f", "1"},
      {"HINCRBYFLOAT", "u", "f", "1"},
      {"LPUSH", "u", "a"},
      {"RPUSH", "u", "a"},
      {"LPUSHX", "u", "a"},
      {"RPUSHX", "u", "a"},
      {"LPOP", "u"},
      {"RPOP", "u", "2"},
      {"SADD", "u", "m"},
      {"SREM", "u", "m"},
  };
  Runner r;
  for (const auto& args : writes) {
    SCOPED_TRACE(describe(args));
    EXPECT_EQ(r.run(args), Outcome::Unknown) << r.reply;
    EXPECT_TRUE(r.reply.starts_with("-FALLBACK cannot answer")) << r.reply;
    EXPECT_TRUE(r.journal.empty());
    EXPECT_FALSE(r.store.knows(0, "u"));
  }
  EXPECT_EQ(r.store.entries(), 0u);
  EXPECT_EQ(r.store.bytes(), 0u);
  EXPECT_EQ(r.store.stats().writes, 0u);
}

TEST(LocalStoreKnowledge, ErrorsRedisReportsBeforeReadingTheKeyAreAnswered) {
  Runner r;
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"GET"}, fc::arity("get")},
      {{"SET", "u", "v", "EX", "0"}, fc::bad_expire("set")},
      {{"SET", "u", "v", "NX", "XX"}, fc::syntax()},
      {{"SET", "u", "v", "EX", "x", "GET"}, fc::not_integer()},
      {{"SETEX", "u", "-1", "v"}, fc::bad_expire("setex")},
      {{"INCRBY", "u", "abc"}, fc::not_integer()},
      {{"DECRBY", "u", "-9223372036854775808"}, fc::error("ERR decrement would overflow")},
      {{"MSET", "u", "v", "w"}, fc::arity("mset")},
      {{"HSET", "u", "f", "v", "g"}, fc::arity("hset")},
      {{"HINCRBY", "u", "f", "x"}, fc::not_integer()},
      {{"HINCRBYFLOAT", "u", "f", "inf"}, fc::error("ERR value is NaN or Infinity")},
      {{"LRANGE", "u", "a", "1"}, fc::not_integer()},
      {{"LPOP", "u", "-1"}, fc::error("ERR value is out of range, must be positive")},
      {{"EXPIRE", "u", "10", "FOO"}, fc::error("ERR Unsupported option FOO")},
      {{"EXPIRE", "u", "x"}, fc::not_integer()},
      {{"GETEX", "u", "BAR"}, fc::syntax()},
  };
  for (const auto& [args, expected] : cases) {
    SCOPED_TRACE(describe(args));
    EXPECT_EQ(r.run(args), Outcome::Refused);
    EXPECT_EQ(r.reply, expected);
  }
  EXPECT_EQ(r.store.entries(), 0u);
  EXPECT_EQ(r.store.stats().errors, cases.size());
  // Redis checks these after reading the key: Unknown.
  EXPECT_EQ(r.run({"LINDEX", "u", "x"}), Outcome::Unknown);
  EXPECT_EQ(r.run({"INCRBYFLOAT", "u", "x"}), Outcome::Unknown);
}

TEST(LocalStoreKnowledge, BlindWritesMakeKeysKnown) {
  Runner r;
  EXPECT_EQ(r.answer({"SET", "a", "1"}), fc::ok());
  EXPECT_EQ(r.answer({"SET", "b", "2", "EX", "100"}), fc::ok());
  EXPECT_EQ(r.answer({"SETEX", "c", "100", "3"}), fc::ok());
  EXPECT_EQ(r.answer({"PSETEX", "d", "100000", "4"}), fc::ok());
  EXPECT_EQ(r.answer({"MSET", "e", "5", "f", "6"}), fc::ok());
  for (auto k : {"a", "b", "c", "d", "e", "f"}) EXPECT_TRUE(r.store.knows(0, k)) << k;
  EXPECT_EQ(r.answer({"MGET", "a", "b", "c", "d", "e", "f"}), fc::bulks({"1", "2", "3", "4", "5", "6"}));
  EXPECT_EQ(r.answer({"TTL", "a"}), fc::num(-1));
  EXPECT_EQ(r.answer({"TTL", "d"}), fc::num(100));
  EXPECT_EQ(r.answer({"INCR", "a"}), fc::num(2));
  EXPECT_EQ(r.answer({"DEL", "a", "b"}), fc::num(2));
  EXPECT_TRUE(r.store.knows(0, "a"));  // known absent
  EXPECT_EQ(r.answer({"GET", "a"}), fc::nil());
  EXPECT_EQ(r.answer({"INCR", "a"}), fc::num(1));
  EXPECT_EQ(r.store.keys(), 5u);
}

TEST(LocalStoreKnowledge, MultiKeyCommandsNeedEveryKeyAndNeverHalfApply) {
  Runner r;
  ASSERT_TRUE(r.store.seed_string(0, "a", "1", LocalStore::kNoExpiry));
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"DEL", "a", "b"}, {"UNLINK", "a", "b"}, {"EXISTS", "a", "b"}, {"MGET", "a", "b"}, {"MSETNX", "a", "1", "b", "2"}}) {
    SCOPED_TRACE(describe(args));
    EXPECT_EQ(r.run(args), Outcome::Unknown);
    EXPECT_EQ(r.reply, LocalStore::unknown_error(args[0], "b"));
  }
  EXPECT_EQ(r.answer({"GET", "a"}), fc::bulk("1"));
  EXPECT_FALSE(r.store.knows(0, "b"));
  EXPECT_EQ(r.answer({"MSET", "a", "x", "b", "y"}), fc::ok());  // blind: defines both
  EXPECT_EQ(r.answer({"DEL", "a", "b"}), fc::num(2));
  EXPECT_EQ(r.answer({"MSETNX", "a", "1", "b", "2"}), fc::num(1));
}

TEST(LocalStoreKnowledge, SeedsAnswerReadsAndNeverOverwriteKnowledge) {
  Runner r;
  EXPECT_TRUE(r.store.seed_string(0, "s", "cached"));
  EXPECT_FALSE(r.store.seed_string(0, "s", "other"));  // already known
  EXPECT_EQ(r.answer({"GET", "s"}), fc::bulk("cached"));
  EXPECT_EQ(r.answer({"APPEND", "s", "!"}), fc::num(7));
  EXPECT_FALSE(r.store.seed_string(0, "s", "stale"));  // written during the outage: newer than any cache
  EXPECT_EQ(r.answer({"GET", "s"}), fc::bulk("cached!"));

  EXPECT_TRUE(r.store.seed_absent(0, "n"));
  EXPECT_EQ(r.answer({"GET", "n"}), fc::nil());
  EXPECT_EQ(r.answer({"INCR", "n"}), fc::num(1));

  const LocalStore::Field fields[] = {{"b", "2"}, {"a", "1"}, {"b", "3"}};
  EXPECT_TRUE(r.store.seed_hash(0, "h", fields));
  EXPECT_EQ(r.answer({"HGETALL", "h"}), fc::bulks({"b", "3", "a", "1"}));
  EXPECT_EQ(r.answer({"HSET", "h", "c", "4", "a", "0"}), fc::num(1));

  const std::string_view elements[] = {"x", "y"};
  EXPECT_TRUE(r.store.seed_list(0, "l", elements));
  EXPECT_EQ(r.answer({"RPOP", "l"}), fc::bulk("y"));
  EXPECT_TRUE(r.store.seed_set(0, "z", elements));
  EXPECT_EQ(r.answer({"SISMEMBER", "z", "y"}), fc::num(1));

  EXPECT_TRUE(r.store.seed_hash(0, "empty", {}));  // Redis holds no empty hash: absent
  EXPECT_EQ(r.answer({"EXISTS", "empty"}), fc::num(0));
  EXPECT_EQ(r.store.stats().seeded, 6u);
  EXPECT_EQ(r.store.stats().seeds_refused, 2u);
  EXPECT_EQ(r.store.bytes(), r.store.recount_bytes());
}

TEST(LocalStoreKnowledge, SeededKeysHaveAnUnknownExpiryUntilACommandSetsIt) {
  Runner r;
  ASSERT_TRUE(r.store.seed_string(0, "k", "5"));
  EXPECT_EQ(r.answer({"GET", "k"}), fc::bulk("5"));
  for (const auto& args : std::vector<std::vector<std::string>>{{"TTL", "k"},
                                                                {"PTTL", "k"},
                                                                {"EXPIRETIME", "k"},
                                                                {"PEXPIRETIME", "k"},
                                                                {"PERSIST", "k"},
                                                                {"EXPIRE", "k", "10", "NX"},
                                                                {"EXPIRE", "k", "10", "GT"}}) {
    SCOPED_TRACE(describe(args));
    EXPECT_EQ(r.run(args), Outcome::Unknown);
    std::string lower;
    for (char ch : args[0]) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
    EXPECT_EQ(r.reply, LocalStore::unknown_ttl_error(lower, "k"));
  }
  EXPECT_EQ(r.answer({"INCR", "k"}), fc::num(6));  // keeps the (unknown) expiry
  EXPECT_EQ(r.run({"TTL", "k"}), Outcome::Unknown);
  EXPECT_EQ(r.answer({"EXPIRE", "k", "100"}), fc::num(1));  // sets it: known from now on
  EXPECT_EQ(r.answer({"TTL", "k"}), fc::num(100));

  ASSERT_TRUE(r.store.seed_string(0, "s", "v"));
  EXPECT_EQ(r.answer({"SET", "s", "w"}), fc::ok());  // SET clears the expiry
  EXPECT_EQ(r.answer({"TTL", "s"}), fc::num(-1));

  ASSERT_TRUE(r.store.seed_string(0, "g", "v"));
  EXPECT_EQ(r.answer({"GETEX", "g", "PERSIST"}), fc::bulk("v"));
  EXPECT_EQ(r.journal, (Journal{"PERSIST", "g"}));  // it may have had one
  EXPECT_EQ(r.answer({"TTL", "g"}), fc::num(-1));

  ASSERT_TRUE(r.store.seed_string(0, "t", "v", static_cast<int64_t>(kNow) + 50'000));
  EXPECT_EQ(r.answer({"TTL", "t"}), fc::num(50));
  ASSERT_TRUE(r.store.seed_string(0, "p", "v", LocalStore::kNoExpiry));
  EXPECT_EQ(r.answer({"PERSIST", "p"}), fc::num(0));
}

TEST(LocalStoreKnowledge, ExpiredKeysBecomeKnownAbsent) {
  Runner r;
  EXPECT_EQ(r.answer({"SET", "k", "value", "PX", "100"}), fc::ok());
  const size_t tombstone = LocalStore::kOverhead + 1;
  EXPECT_EQ(r.store.bytes(), tombstone + 5);
  r.now = kNow + 100;  // Redis: expired once now > expiry
  EXPECT_EQ(r.answer({"PTTL", "k"}), fc::num(0));
  EXPECT_EQ(r.answer({"GET", "k"}), fc::bulk("value"));
  r.now = kNow + 101;
  r.store.expire(r.now);
  EXPECT_EQ(r.store.bytes(), tombstone);
  EXPECT_EQ(r.store.keys(), 0u);
  EXPECT_TRUE(r.store.knows(0, "k"));
  EXPECT_EQ(r.answer({"GET", "k"}), fc::nil());
  EXPECT_EQ(r.answer({"TTL", "k"}), fc::num(-2));
  EXPECT_EQ(r.store.stats().expired, 1u);
  // A seed with a known expiry expires the same way.
  ASSERT_TRUE(r.store.seed_string(0, "s", "v", static_cast<int64_t>(r.now) + 10));
  r.now += 11;
  EXPECT_EQ(r.answer({"EXISTS", "s"}), fc::num(0));
}

TEST(LocalStoreKnowledge, DatabasesAreSeparateKeyspaces) {
  Runner r;
  EXPECT_EQ(r.answer({"SET", "k", "zero"}), fc::ok());
  r.db = 3;
  EXPECT_EQ(r.run({"GET", "k"}), Outcome::Unknown);
  EXPECT_EQ(r.answer({"SET", "k", "three"}), fc::ok());
  r.db = -7;  // any int
  EXPECT_EQ(r.answer({"SET", "k", "neg"}), fc::ok());
  r.db = 0;
  EXPECT_EQ(r.answer({"GET", "k"}), fc::bulk("zero"));
  EXPECT_FALSE(r.store.knows(1, "k"));
  EXPECT_TRUE(r.store.knows(3, "k"));
}

TEST(LocalStoreKnowledge, UnsupportedCommandsAreRefused) {
  for (auto cmd : {"KEYS", "SELECT", "MULTI", "EXEC", "SCAN", "SETRANGE", "RENAME", "EVAL", "SPOP", "ZADD", "",
                   "averyveryverylongcommandname"}) {
    EXPECT_FALSE(LocalStore::supports(cmd)) << cmd;
    EXPECT_FALSE(LocalStore::is_write(cmd)) << cmd;
  }
  EXPECT_TRUE(LocalStore::supports("GeT"));
  EXPECT_TRUE(LocalStore::is_write("set"));
  EXPECT_TRUE(LocalStore::is_write("GETEX"));
  EXPECT_FALSE(LocalStore::is_write("GET"));
  Runner r;
  EXPECT_EQ(r.run({"KEYS", "*"}), Outcome::Refused);
  EXPECT_EQ(r.reply,
            "-FALLBACK 'keys' is not available while Redis is unreachable (respite's local store does not "
            "implement it)\r\n");
  EXPECT_EQ(r.store.stats().unsupported, 1u);
}

TEST(LocalStoreKnowledge, UnknownErrorShowsAPrintableKey) {
  EXPECT_EQ(LocalStore::unknown_error("GET", "user:1"),
            "-FALLBACK cannot answer 'get' for key 'user:1' while Redis is unreachable: respite has no copy of "
            "it\r\n");
  const std::string key = "a\r\n'\\" + std::string(100, 'x');
  const std::string e = LocalStore::unknown_error("get", key);
  EXPECT_EQ(e.find('\r'), e.size() - 2);
  EXPECT_NE(e.find("a\\x0d\\x0a\\x27\\x5cxxx"), std::string::npos) << e;
  EXPECT_NE(e.find("x...'"), std::string::npos) << e;
}

// --- memory ---

TEST(LocalStoreMemory, WritesBeyondTheBoundAreRefusedAndChangeNothing) {
  Runner r(1000);
  const std::string big(500, 'x');
  EXPECT_EQ(r.answer({"SET", "a", big}), fc::ok());
  EXPECT_EQ(r.store.bytes(), LocalStore::kOverhead + 1 + 500);
  EXPECT_EQ(r.run({"SET", "b", big}), Outcome::Refused);
  EXPECT_EQ(r.reply, "-OOM respite's fallback store is full (fallback.max_memory); the write was not applied\r\n");
  EXPECT_EQ(r.reply, LocalStore::full_error());
  EXPECT_TRUE(r.journal.empty());
  EXPECT_FALSE(r.store.knows(0, "b"));
  EXPECT_EQ(r.store.bytes(), LocalStore::kOverhead + 1 + 500);
  EXPECT_EQ(r.run({"APPEND", "a", big}), Outcome::Refused);
  EXPECT_EQ(r.run({"HSET", "a", "f", "v"}), Outcome::Refused);  // WRONGTYPE first
  EXPECT_EQ(r.reply, fc::wrongtype());
  EXPECT_EQ(r.run({"MSET", "a", big, "c", big}), Outcome::Refused);
  EXPECT_EQ(r.answer({"GET", "a"}), fc::bulk(big));  // reads are never refused
  EXPECT_EQ(r.store.stats().full, 3u);
  // Shrinking writes still go through when full.
  EXPECT_EQ(r.answer({"SET", "a", "small"}), fc::ok());
  EXPECT_EQ(r.answer({"SET", "b", big}), fc::ok());
  EXPECT_EQ(r.store.bytes(), r.store.recount_bytes());
}

TEST(LocalStoreMemory, BytesGoBackDownWhenKeysShrinkOrGo) {
  Runner r;
  r.seed_absent({"h", "l", "s"});
  const size_t tomb = LocalStore::kOverhead + 1;  // a known-absent one-byte key
  const size_t base = r.store.bytes();
  EXPECT_EQ(base, 3 * tomb);
  EXPECT_EQ(r.answer({"HSET", "h", "field", "value", "f2", "v2"}), fc::num(2));
  EXPECT_EQ(r.store.bytes(), base + 2 * LocalStore::kOverhead + 10 + 4);
  EXPECT_EQ(r.answer({"HDEL", "h", "field"}), fc::num(1));
  EXPECT_EQ(r.store.bytes(), base + LocalStore::kOverhead + 4);
  EXPECT_EQ(r.answer({"DEL", "h"}), fc::num(1));
  EXPECT_EQ(r.store.bytes(), base);  // a known-absent key keeps its name
  EXPECT_EQ(r.answer({"RPUSH", "l", "a", "b", "c"}), fc::num(3));
  EXPECT_EQ(r.answer({"LPOP", "l", "3"}), fc::bulks({"a", "b", "c"}));
  EXPECT_EQ(r.answer({"SADD", "s", "m1", "m2"}), fc::num(2));
  EXPECT_EQ(r.answer({"SREM", "s", "m1", "m2"}), fc::num(2));
  EXPECT_EQ(r.store.bytes(), base);
  EXPECT_EQ(r.answer({"SET", "k", std::string(1000, 'x')}), fc::ok());
  EXPECT_EQ(r.answer({"SET", "k", "y"}), fc::ok());
  EXPECT_EQ(r.store.bytes(), base + tomb + 1);
  EXPECT_EQ(r.store.bytes(), r.store.recount_bytes());
  r.store.clear();
  EXPECT_EQ(r.store.bytes(), 0u);
  EXPECT_EQ(r.store.entries(), 0u);
  EXPECT_FALSE(r.store.knows(0, "k"));
}

TEST(LocalStoreMemory, SeedsAreEvictedOldestFirstToMakeRoomForWrites) {
  Runner r(1000);
  const std::string v(200, 's');
  ASSERT_TRUE(r.store.seed_string(0, "s1", v));
  ASSERT_TRUE(r.store.seed_string(0, "s2", v));
  ASSERT_TRUE(r.store.seed_string(0, "s3", v));  // 3 * 266 = 798
  EXPECT_EQ(r.answer({"SET", "w", std::string(500, 'w')}), fc::ok());  // needs 565: evicts s1 and s2
  EXPECT_FALSE(r.store.knows(0, "s1"));
  EXPECT_FALSE(r.store.knows(0, "s2"));
  EXPECT_TRUE(r.store.knows(0, "s3"));
  EXPECT_EQ(r.store.stats().evicted, 2u);
  // A seed touched by a write is no longer evictable; written keys are never evicted.
  EXPECT_EQ(r.answer({"APPEND", "s3", "!"}), fc::num(201));
  EXPECT_FALSE(r.store.seed_string(0, "s4", std::string(400, 's')));
  EXPECT_EQ(r.run({"SET", "x", std::string(400, 'x')}), Outcome::Refused);
  EXPECT_TRUE(r.store.knows(0, "s3"));
  EXPECT_TRUE(r.store.knows(0, "w"));
  EXPECT_EQ(r.store.bytes(), r.store.recount_bytes());
}

TEST(LocalStoreMemory, TheKeyBeingWrittenIsNotEvictedForItself) {
  Runner r(600);
  ASSERT_TRUE(r.store.seed_string(0, "k", std::string(300, 'k')));  // 365
  ASSERT_TRUE(r.store.seed_string(0, "j", std::string(100, 'j')));  // 165
  EXPECT_EQ(r.answer({"APPEND", "k", std::string(80, 'a')}), fc::num(380));  // 610: j goes, not k
  EXPECT_FALSE(r.store.knows(0, "j"));
  EXPECT_EQ(r.answer({"STRLEN", "k"}), fc::num(380));
  // A write too big even after evicting every seed evicts nothing.
  ASSERT_TRUE(r.store.seed_absent(0, "a"));
  EXPECT_EQ(r.run({"SET", "b", std::string(600, 'b')}), Outcome::Refused);
  EXPECT_TRUE(r.store.knows(0, "a"));
  EXPECT_EQ(r.store.stats().evicted, 1u);
}

// --- journal ---

TEST(LocalStoreJournal, RelativeTimesBecomeAbsolute) {
  Runner r;
  const std::string in10s = std::to_string(kNow + 10'000);
  r.answer({"SET", "k", "v", "EX", "10"});
  EXPECT_EQ(r.journal, (Journal{"SET", "k", "v", "PXAT", in10s}));
  r.answer({"SET", "k", "v", "PX", "10000", "XX"});
  EXPECT_EQ(r.journal, (Journal{"SET", "k", "v", "XX", "PXAT", in10s}));
  r.answer({"SET", "k", "v", "EXAT", "2000000000"});
  EXPECT_EQ(r.journal, (Journal{"SET", "k", "v", "PXAT", "2000000000000"}));
  r.answer({"SETEX", "k", "10", "v"});
  EXPECT_EQ(r.journal, (Journal{"SET", "k", "v", "PXAT", in10s}));
  r.answer({"PSETEX", "k", "10000", "v"});
  EXPECT_EQ(r.journal, (Journal{"SET", "k", "v", "PXAT", in10s}));
  r.answer({"EXPIRE", "k", "10"});
  EXPECT_EQ(r.journal, (Journal{"PEXPIREAT", "k", in10s}));
  r.answer({"PEXPIRE", "k", "10000", "xx"});
  EXPECT_EQ(r.journal, (Journal{"PEXPIREAT", "k", in10s, "xx"}));
  r.answer({"EXPIREAT", "k", "2000000000"});
  EXPECT_EQ(r.journal, (Journal{"PEXPIREAT", "k", "2000000000000"}));
  r.answer({"GETEX", "k", "EX", "10"});
  EXPECT_EQ(r.journal, (Journal{"PEXPIREAT", "k", in10s}));
  r.answer({"GETEX", "k", "PERSIST"});
  EXPECT_EQ(r.journal, (Journal{"PERSIST", "k"}));
  r.answer({"EXPIRE", "k", "-1"});
  EXPECT_EQ(r.journal, (Journal{"DEL", "k"}));
  r.answer({"SET", "k", "v"});
  r.answer({"GETEX", "k", "EXAT", "1"});
  EXPECT_EQ(r.journal, (Journal{"DEL", "k"}));
}

TEST(LocalStoreJournal, FloatIncrementsBecomeTheirResult) {
  Runner r;
  r.seed_absent({"h"});
  r.answer({"SET", "k", "10.5"});
  EXPECT_EQ(r.answer({"INCRBYFLOAT", "k", "0.1"}), fc::bulk("10.6"));
  EXPECT_EQ(r.journal, (Journal{"SET", "k", "10.6", "KEEPTTL"}));
  EXPECT_EQ(r.answer({"HINCRBYFLOAT", "h", "f", "1.5"}).substr(0, 1), "$");
  EXPECT_EQ(r.journal, (Journal{"HSET", "h", "f", "1.5"}));
}

TEST(LocalStoreJournal, OtherWritesAreReplayedAsGiven) {
  Runner r;
  r.seed_absent({"h", "l"});
  r.answer({"SET", "k", "1"});
  EXPECT_EQ(r.journal, (Journal{"SET", "k", "1"}));
  r.answer({"incr", "k"});
  EXPECT_EQ(r.journal, (Journal{"INCR", "k"}));
  r.answer({"SET", "k", "2", "GET"});  // GET only changes the reply
  EXPECT_EQ(r.journal, (Journal{"SET", "k", "2"}));
  r.answer({"SET", "k", "3", "KEEPTTL"});
  EXPECT_EQ(r.journal, (Journal{"SET", "k", "3", "KEEPTTL"}));
  r.answer({"DEL", "k"});
  r.answer({"SET", "k", "4", "NX"});
  EXPECT_EQ(r.journal, (Journal{"SET", "k", "4", "NX"}));
  r.answer({"HSET", "h", "a", "1", "b", "2"});
  EXPECT_EQ(r.journal, (Journal{"HSET", "h", "a", "1", "b", "2"}));
  r.answer({"RPUSH", "l", "x", "y"});
  EXPECT_EQ(r.journal, (Journal{"RPUSH", "l", "x", "y"}));
  r.answer({"LPOP", "l", "1"});
  EXPECT_EQ(r.journal, (Journal{"LPOP", "l", "1"}));
  r.answer({"GETDEL", "k"});
  EXPECT_EQ(r.journal, (Journal{"GETDEL", "k"}));
  r.answer({"MSET", "a", "1", "b", "2"});
  EXPECT_EQ(r.journal, (Journal{"MSET", "a", "1", "b", "2"}));
}

TEST(LocalStoreJournal, WritesThatChangedNothingJournalNothing) {
  Runner r;
  r.seed_absent({"n", "h", "s", "l"});
  r.answer({"SET", "k", "v"});
  r.answer({"HSET", "h", "f", "v"});
  r.answer({"SADD", "s", "m"});
  r.answer({"RPUSH", "l", "x"});
  const std::vector<std::vector<std::string>> noops = {
      {"DEL", "n"},
      {"UNLINK", "n", "n"},
      {"SET", "k", "w", "NX"},
      {"SET", "n", "w", "XX"},
      {"SETNX", "k", "w"},
      {"MSETNX", "k", "1", "n", "2"},
      {"HSETNX", "h", "f", "w"},
      {"HDEL", "h", "nope"},
      {"HDEL", "n", "f"},
      {"SREM", "s", "nope"},
      {"SADD", "s", "m"},
      {"LPUSHX", "n", "a"},
      {"EXPIRE", "n", "10"},
      {"EXPIRE", "k", "10", "XX"},
      {"PERSIST", "k"},
      {"GETDEL", "n"},
      {"LPOP", "n"},
      {"LPOP", "l", "0"},
      {"GETEX", "k"},
      {"GETEX", "k", "PERSIST"},
      {"INCR", "k"},             // error
      {"GET", "k", "x"},         // arity
  };
  for (const auto& args : noops) {
    SCOPED_TRACE(describe(args));
    r.answer(args);
    EXPECT_TRUE(r.journal.empty()) << describe(r.journal);
  }
  EXPECT_EQ(r.answer({"MGET", "k", "n"}), fc::arr({fc::bulk("v"), fc::nil()}));
  EXPECT_EQ(r.answer({"LLEN", "l"}), fc::num(1));
}

// --- numbers ---

TEST(LocalStoreNumbers, IntegersFollowRedisStrictForm) {
  int64_t v = 0;
  EXPECT_TRUE(parse_integer("0", v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(parse_integer("-9223372036854775808", v));
  EXPECT_EQ(v, INT64_MIN);
  EXPECT_TRUE(parse_integer("9223372036854775807", v));
  EXPECT_EQ(v, INT64_MAX);
  for (auto bad : {"", "-", "+1", "01", "-0", "00", " 1", "1 ", "1.0", "9223372036854775808",
                   "-9223372036854775809", "99999999999999999999", "0x10", "1e3"}) {
    EXPECT_FALSE(parse_integer(bad, v)) << bad;
  }
}

TEST(LocalStoreNumbers, FloatsParseAndPrintAsRedisDoes) {
  long double v = 0;
  EXPECT_TRUE(parse_float("0x10", v));
  EXPECT_EQ(v, 16);
  EXPECT_TRUE(parse_float("inf", v));
  EXPECT_TRUE(parse_float("1e-4950", v));  // denormal: kept
  for (auto bad : {"", " 1", "1 ", "nan", "abc", "1e5000", "1e-5000"}) EXPECT_FALSE(parse_float(bad, v)) << bad;
  EXPECT_TRUE(parse_float(std::string("1.") + std::string(kMaxFloatChars - 3, '0'), v));
  EXPECT_FALSE(parse_float(std::string("1.") + std::string(kMaxFloatChars - 2, '0'), v));
  std::string out;
  ASSERT_TRUE(format_float(0.1L + 0.2L, out));
  EXPECT_EQ(out, "0.3");
  ASSERT_TRUE(format_float(-1e-19L, out));
  EXPECT_EQ(out, "0");
  ASSERT_TRUE(format_float(1e20L, out));
  EXPECT_EQ(out, "100000000000000000000");
  ASSERT_TRUE(format_float(-0.5L, out));
  EXPECT_EQ(out, "-0.5");
}

}  // namespace
}  // namespace respite::fallback
