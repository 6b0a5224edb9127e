// The near-cache against a real Redis: hits that Redis never sees, coherence with writes made
// directly on Redis (invalidation messages, RESPITE CACHE FENCE), read-your-writes through
// respite (known keys, scripts and functions with undeclared keys, transactions, blocking
// pops), losing the invalidation connection or a pooled connection, FLUSHALL, the memory
// budget, MGET/HMGET assembled from cached entries, rules, bypass, warm-up, miss coalescing.
//
// Hits and misses are told apart twice: by respite's counters (RESPITE CACHE STATS, answered
// by respite) and by Redis's own (INFO commandstats read directly on Redis: a hit adds no call).
// Everything here is respite's own behaviour: skipped in direct mode.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/cache_probe.h"
#include "support/redis_probe.h"
#include "support/stack.h"

namespace respite::test {
namespace {

using namespace std::chrono_literals;
using Command = std::vector<std::string>;

constexpr auto kWait = 5s;  // upper bound for anything that should happen promptly
const std::string kNil = "$-1\r\n";
const std::string kOk = "+OK\r\n";

long long ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

// Writes `text` to <dir>/respite.toml and returns the path.
std::string write_config(const TempDir& dir, const std::string& text) {
  const std::string path = dir.path() + "/respite.toml";
  std::ofstream(path) << text;
  return path;
}

// Sends every command in one write, then reads one reply per command (raw bytes; "<none>" when
// a reply does not come within kWait).
std::vector<std::string> pipelined(RawConn& conn, const std::vector<Command>& commands) {
  std::string batch;
  for (const auto& c : commands) batch += resp_command(c);
  std::vector<std::string> replies;
  if (!conn.send_all(batch, deadline_in(kWait))) return replies;
  for (size_t i = 0; i < commands.size(); ++i) replies.push_back(next_reply(conn, kWait));
  return replies;
}

// One command, one reply (raw bytes).
std::string one(RawConn& conn, const Command& command) {
  if (!send_command(conn, command)) return "<not sent>";
  return next_reply(conn, kWait);
}

// Fixture: a stack with the cache on (unless options say otherwise), a direct Redis client and
// an admin client through respite; SetUp waits until tracking is up.
class CacheTest : public ProxyTest {
 protected:
  // Whether SetUp waits for tracking:1 (not for a disabled cache).
  virtual bool expect_tracking() { return true; }

  void SetUp() override {
    if (direct_mode()) GTEST_SKIP() << "the near-cache is respite's own";
    ProxyTest::SetUp();
    redis_.emplace(stack().connect_redis());
    admin_.emplace(connect());
    if (expect_tracking()) {
      ASSERT_TRUE(wait_for_tracking(*admin_, deadline_in(kWait)))
          << "tracking never came up: " << cache_stats(*admin_).raw;
    }
  }

  Client& redis() { return *redis_; }
  Client& admin() { return *admin_; }
  CacheStats stats() { return cache_stats(admin()); }
  long long stat(std::string_view name) { return stats().get(name); }
  long long redis_calls(std::string_view command) { return command_calls(redis(), command); }
  std::string fence() { return cache_fence(admin()); }

  // Sends `cmd` through `c` until it is cached: once (a miss, or already a hit), then -- once
  // respite has counted a fill or a hit for it -- again, which must be a hit that Redis does
  // not see. Returns the first reply (rendered).
  std::string make_cached(Client& c, const Command& cmd, const std::string& command_stat) {
    const long long hits0 = stat("hits"), fills0 = stat("fills");
    const std::string first = c.call(cmd);
    EXPECT_TRUE(poll_until([&] { return stat("fills") > fills0 || stat("hits") > hits0; }, deadline_in(kWait)))
        << cmd[0] << " " << cmd[1] << " was neither filled nor a hit: " << first;
    const long long hits = stat("hits"), calls = redis_calls(command_stat);
    EXPECT_EQ(c.call(cmd), first) << cmd[0] << " " << cmd[1];
    EXPECT_EQ(stat("hits"), hits + 1) << "the second " << cmd[0] << " " << cmd[1] << " was not a hit";
    EXPECT_EQ(redis_calls(command_stat), calls) << "the second " << cmd[0] << " " << cmd[1] << " reached Redis";
    return first;
  }
  // GET `key` made cached through `c`, checking it reads `want` (rendered).
  void cache_get(Client& c, const std::string& key, const std::string& want) {
    EXPECT_EQ(make_cached(c, {"GET", key}, "get"), want) << key;
  }

  std::optional<Client> redis_;  // straight to Redis
  std::optional<Client> admin_;  // through respite: stats, fences
};

// ---------------------------------------------------------------------------------------------
// Set-up as Redis sees it, and the stats fields.

TEST_F(CacheTest, TrackingConnectionsAreSetUpAsDescribed) {
  const auto inv = redis_clients_named(redis(), "respite-invalidation");
  ASSERT_EQ(inv.size(), 1u) << "CLIENT LIST on Redis has no single respite-invalidation";
  const std::string inv_id = inv[0].at("id");
  EXPECT_EQ(inv[0].count("sub") ? inv[0].at("sub") : "", "1") << "not subscribed to __redis__:invalidate";
  const auto pool = redis_clients_named(redis(), "respite-pool-", true);
  ASSERT_FALSE(pool.empty());
  for (const auto& p : pool) {
    EXPECT_NE(p.at("flags").find('t'), std::string::npos) << p.at("name") << " is not tracking: " << p.at("flags");
    EXPECT_EQ(p.at("redir"), inv_id) << p.at("name") << " redirects elsewhere";
  }
  const CacheStats s = stats();
  for (const char* field : {"enabled", "tracking", "mode", "hits", "misses", "fills", "cancelled_fills", "coalesced",
                            "too_large", "invalidations", "evictions", "expirations", "flushes", "entries",
                            "bytes_used", "budget_bytes", "fences", "bypassed"})
    EXPECT_EQ(s.fields.count(field), 1u) << "stats lack " << field << ":\n" << s.raw;
  EXPECT_EQ(s.get("enabled"), 1);
  EXPECT_EQ(s.fields.count("mode") ? s.fields.at("mode") : "", "default");
  EXPECT_EQ(s.get("budget_bytes"), 64ll * 1024 * 1024);
  EXPECT_EQ(s.get("entries"), 0);
  EXPECT_EQ(admin().call({"RESPITE", "CACHE", "NOPE"}).substr(0, 1), "-");
}

// ---------------------------------------------------------------------------------------------
// 1. A hit.

TEST_F(CacheTest, SecondGetIsAHitThatRedisNeverSees) {
  ASSERT_EQ(redis().call({"SET", "hit:k", "v1"}), "+OK");
  Client c = connect();
  const CacheStats s0 = stats();
  const long long g0 = redis_calls("get");

  EXPECT_EQ(c.call({"GET", "hit:k"}), "\"v1\"");
  // The fill may land just after the reply (respite stores it with the key's PTTL).
  EXPECT_TRUE(poll_until([&] { return stat("fills") == 1; }, deadline_in(kWait))) << stats().raw;
  const CacheStats s1 = stats();
  EXPECT_EQ(s1.get("fills"), 1) << s1.raw;
  EXPECT_EQ(s1.get("misses") - s0.get("misses"), 1) << s1.raw;
  EXPECT_EQ(s1.get("hits"), 0) << s1.raw;
  EXPECT_EQ(s1.get("entries"), 1) << s1.raw;
  EXPECT_GT(s1.get("bytes_used"), 0) << s1.raw;
  EXPECT_EQ(redis_calls("get"), g0 + 1);

  EXPECT_EQ(c.call({"GET", "hit:k"}), "\"v1\"");
  const CacheStats s2 = stats();
  EXPECT_EQ(s2.get("hits"), 1) << s2.raw;
  EXPECT_EQ(s2.get("fills"), 1) << s2.raw;
  EXPECT_EQ(redis_calls("get"), g0 + 1) << "the second GET reached Redis";

  // Another client, the command name in another case: the same entry.
  Client d = connect();
  EXPECT_EQ(d.call({"get", "hit:k"}), "\"v1\"");
  EXPECT_EQ(stat("hits"), 2);
  EXPECT_EQ(redis_calls("get"), g0 + 1);
  // A missing key is cached too (a nil reply is not an error).
  cache_get(c, "hit:absent", "(nil)");
  EXPECT_EQ(stat("hits"), 3);
  EXPECT_EQ(redis_calls("get"), g0 + 2);
}

// ---------------------------------------------------------------------------------------------
// 2. Writes made directly on Redis.

TEST_F(CacheTest, DirectWriteIsSeenOnceTheFenceReturns) {
  Client c = connect();
  ASSERT_EQ(redis().call({"SET", "inv:k", "v0"}), "+OK");
  for (int i = 1; i <= 30; ++i) {
    cache_get(c, "inv:k", cat("\"v", i - 1, "\""));
    const long long inv0 = stat("invalidations");
    ASSERT_EQ(redis().call({"SET", "inv:k", cat("v", i)}), "+OK");
    ASSERT_EQ(fence(), "+OK");
    EXPECT_GT(stat("invalidations"), inv0) << "round " << i;
    ASSERT_EQ(c.call({"GET", "inv:k"}), cat("\"v", i, "\"")) << "stale read after the fence, round " << i;
  }
  // Other kinds of direct writes: a hash field, a delete, an expiry.
  ASSERT_EQ(redis().call({"HSET", "inv:h", "f", "a"}), ":1");
  EXPECT_EQ(make_cached(c, {"HGET", "inv:h", "f"}, "hget"), "\"a\"");
  ASSERT_EQ(redis().call({"HSET", "inv:h", "f", "b"}), ":0");
  ASSERT_EQ(fence(), "+OK");
  EXPECT_EQ(c.call({"HGET", "inv:h", "f"}), "\"b\"");
  ASSERT_EQ(redis().call({"DEL", "inv:k"}), ":1");
  ASSERT_EQ(fence(), "+OK");
  EXPECT_EQ(c.call({"GET", "inv:k"}), "(nil)");
}

TEST_F(CacheTest, DirectWriteBecomesVisibleWithoutAFenceWithinADeadline) {
  Client c = connect();
  std::vector<long long> delays;
  for (int i = 0; i < 10; ++i) {
    const std::string key = cat("invpoll:", i);
    ASSERT_EQ(redis().call({"SET", key, "old"}), "+OK");
    cache_get(c, key, "\"old\"");
    ASSERT_EQ(redis().call({"SET", key, "new"}), "+OK");
    const auto t0 = Clock::now();
    bool seen = poll_until([&] { return c.call({"GET", key}) == "\"new\""; }, deadline_in(2s),
                           std::chrono::milliseconds(0));
    delays.push_back(ms_since(t0));
    EXPECT_TRUE(seen) << key << ": the old value was still served 2 s after the direct write";
    EXPECT_LT(delays.back(), 1000) << key;
  }
  std::sort(delays.begin(), delays.end());
  std::cout << "[ info ] direct write -> visible through respite: median " << delays[delays.size() / 2]
            << " ms, max " << delays.back() << " ms\n";
}

// A key that expires on Redis is invalidated when Redis expires it (its active expiry cycle
// runs hz times a second); respite must not serve it much longer than that.
TEST_F(CacheTest, KeyExpiringOnRedisStopsBeingServed) {
  Client c = connect();
  ASSERT_EQ(redis().call({"SET", "exp:k", "v", "PX", "300"}), "+OK");
  const auto expires = Clock::now() + 300ms;
  cache_get(c, "exp:k", "\"v\"");
  bool gone = poll_until([&] { return c.call({"GET", "exp:k"}) == "(nil)"; }, expires + 3s,
                         std::chrono::milliseconds(1));
  const long long late = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - expires).count();
  std::cout << "[ info ] an expired key was served until " << late << " ms after its expiry\n";
  EXPECT_TRUE(gone) << "an expired key was still served 3 s after its TTL";
  EXPECT_LT(late, 1000);
}

// ---------------------------------------------------------------------------------------------
// 3. Read-your-writes through respite.

// One kind of write: Redis's state before it (set directly), the cached read, its reply before
// and after the write (raw RESP).
struct RywCase {
  std::string name;
  std::function<void(Client& redis, int i)> reset;          // direct on Redis
  Command read;                                             // the cacheable read
  std::function<std::string(int i)> before;                 // its reply before the write
  std::function<std::vector<Command>(int i)> write;         // the write, through respite
  std::function<std::string(int i)> after;                  // its reply after the write
};

class CacheReadYourWritesTest : public CacheTest {
 protected:
  // For each iteration: Redis's state reset directly; FENCE; the read cached by another
  // client (checked to be a hit); then `c` sends read, write, read -- in one write when
  // `pipeline`, else one at a time -- and the last read must see the write.
  void run(const RywCase& k, bool pipeline, int iterations = 40) {
    Client warm = connect();
    RawConn c = stack().raw();
    int not_cached = 0, wrong_before = 0, wrong_after = 0, write_errors = 0;
    std::string first_problem;
    for (int i = 0; i < iterations; ++i) {
      k.reset(redis(), i);
      ASSERT_EQ(fence(), "+OK");
      const long long hits0 = stat("hits"), fills0 = stat("fills");
      warm.command(k.read);
      poll_until([&] { return stat("fills") > fills0 || stat("hits") > hits0; }, deadline_in(kWait));
      const long long hits = stat("hits");
      warm.command(k.read);
      if (stat("hits") != hits + 1) ++not_cached;

      std::vector<Command> batch = {k.read};
      for (auto& w : k.write(i)) batch.push_back(w);
      batch.push_back(k.read);
      std::vector<std::string> replies;
      if (pipeline) {
        replies = pipelined(c, batch);
      } else {
        for (const auto& cmd : batch) replies.push_back(one(c, cmd));
      }
      ASSERT_EQ(replies.size(), batch.size()) << k.name << ": could not send";
      if (replies.front() != k.before(i)) {
        if (wrong_before++ == 0)
          first_problem += cat("iteration ", i, " read before the write: ", escape_bytes(replies.front()),
                               " want ", escape_bytes(k.before(i)), "\n");
      }
      for (size_t w = 1; w + 1 < replies.size(); ++w)
        if (replies[w].empty() || replies[w][0] == '-' || replies[w] == "<none>") {
          if (write_errors++ == 0)
            first_problem += cat("iteration ", i, " write reply: ", escape_bytes(replies[w]), "\n");
        }
      if (replies.back() != k.after(i)) {
        if (wrong_after++ == 0)
          first_problem += cat("iteration ", i, " read after the write: ", escape_bytes(replies.back()), " want ",
                               escape_bytes(k.after(i)), "\n");
      }
    }
    EXPECT_EQ(wrong_after, 0) << k.name << (pipeline ? " (pipelined)" : " (one at a time)")
                              << ": the client read its own write's old value\n"
                              << first_problem;
    EXPECT_EQ(wrong_before, 0) << k.name << ": " << first_problem;
    EXPECT_EQ(write_errors, 0) << k.name << ": " << first_problem;
    EXPECT_EQ(not_cached, 0) << k.name << ": the read was not cached before the write in " << not_cached
                             << " iterations (the check would prove nothing)";
  }
};

std::vector<RywCase> ryw_cases() {
  auto b = [](const std::string& s) { return resp_bulk(s); };
  std::vector<RywCase> cases;
  cases.push_back({"SET/GET", [](Client& r, int i) { r.call({"SET", "ryw:s", cat("old", i)}); },
                   {"GET", "ryw:s"}, [=](int i) { return b(cat("old", i)); },
                   [](int i) { return std::vector<Command>{{"SET", "ryw:s", cat("new", i)}}; },
                   [=](int i) { return b(cat("new", i)); }});
  cases.push_back({"HSET/HGET", [](Client& r, int i) { r.call({"HSET", "ryw:h", "f", cat("old", i)}); },
                   {"HGET", "ryw:h", "f"}, [=](int i) { return b(cat("old", i)); },
                   [](int i) { return std::vector<Command>{{"HSET", "ryw:h", "f", cat("new", i)}}; },
                   [=](int i) { return b(cat("new", i)); }});
  cases.push_back({"DEL/GET", [](Client& r, int i) { r.call({"SET", "ryw:d", cat("old", i)}); },
                   {"GET", "ryw:d"}, [=](int i) { return b(cat("old", i)); },
                   [](int) { return std::vector<Command>{{"DEL", "ryw:d"}}; }, [](int) { return kNil; }});
  cases.push_back({"INCR/GET", [](Client& r, int i) { r.call({"SET", "ryw:n", cat(10 * i)}); },
                   {"GET", "ryw:n"}, [=](int i) { return b(cat(10 * i)); },
                   [](int) { return std::vector<Command>{{"INCR", "ryw:n"}}; },
                   [=](int i) { return b(cat(10 * i + 1)); }});
  cases.push_back({"EXPIRE 0/GET", [](Client& r, int i) { r.call({"SET", "ryw:e", cat("old", i)}); },
                   {"GET", "ryw:e"}, [=](int i) { return b(cat("old", i)); },
                   [](int) { return std::vector<Command>{{"EXPIRE", "ryw:e", "0"}}; }, [](int) { return kNil; }});
  cases.push_back({"APPEND/STRLEN", [](Client& r, int) { r.call({"SET", "ryw:a", "abc"}); },
                   {"STRLEN", "ryw:a"}, [](int) { return std::string(":3\r\n"); },
                   [](int) { return std::vector<Command>{{"APPEND", "ryw:a", "de"}}; },
                   [](int) { return std::string(":5\r\n"); }});
  cases.push_back({"RENAME/GET",
                   [](Client& r, int i) {
                     r.call({"SET", "ryw:src", cat("new", i)});
                     r.call({"SET", "ryw:dst", cat("old", i)});
                   },
                   {"GET", "ryw:dst"}, [=](int i) { return b(cat("old", i)); },
                   [](int) { return std::vector<Command>{{"RENAME", "ryw:src", "ryw:dst"}}; },
                   [=](int i) { return b(cat("new", i)); }});
  cases.push_back({"RPUSH/LRANGE",
                   [](Client& r, int) {
                     r.call({"DEL", "ryw:l"});
                     r.call({"RPUSH", "ryw:l", "a"});
                   },
                   {"LRANGE", "ryw:l", "0", "-1"}, [](int) { return resp_bulk_array({"a"}); },
                   [](int i) { return std::vector<Command>{{"RPUSH", "ryw:l", cat("b", i)}}; },
                   [](int i) { return resp_bulk_array({"a", cat("b", i)}); }});
  cases.push_back({"MULTI SET EXEC/GET", [](Client& r, int i) { r.call({"SET", "ryw:m", cat("old", i)}); },
                   {"GET", "ryw:m"}, [=](int i) { return b(cat("old", i)); },
                   [](int i) {
                     return std::vector<Command>{{"MULTI"}, {"SET", "ryw:m", cat("new", i)}, {"EXEC"}};
                   },
                   [=](int i) { return b(cat("new", i)); }});
  cases.push_back({"BLPOP/LRANGE",
                   [](Client& r, int i) {
                     r.call({"DEL", "ryw:bl"});
                     r.call({"RPUSH", "ryw:bl", cat("a", i), cat("b", i)});
                   },
                   {"LRANGE", "ryw:bl", "0", "-1"}, [](int i) { return resp_bulk_array({cat("a", i), cat("b", i)}); },
                   [](int) { return std::vector<Command>{{"BLPOP", "ryw:bl", "1"}}; },
                   [](int i) { return resp_bulk_array({cat("b", i)}); }});
  // Scripts writing a key they do not declare.
  cases.push_back({"EVAL undeclared/GET", [](Client& r, int i) { r.call({"SET", "ryw:undeclared", cat("old", i)}); },
                   {"GET", "ryw:undeclared"}, [=](int i) { return b(cat("old", i)); },
                   [](int i) {
                     return std::vector<Command>{
                         {"EVAL", "redis.call('set','ryw:undeclared','x'..ARGV[1])", "0", cat(i)}};
                   },
                   [=](int i) { return b(cat("x", i)); }});
  cases.push_back({"EVAL declared other key/GET",
                   [](Client& r, int i) { r.call({"SET", "ryw:undeclared2", cat("old", i)}); },
                   {"GET", "ryw:undeclared2"}, [=](int i) { return b(cat("old", i)); },
                   [](int i) {
                     return std::vector<Command>{{"EVAL",
                                                  "redis.call('set',KEYS[1],'d') "
                                                  "redis.call('set','ryw:undeclared2','y'..ARGV[1])",
                                                  "1", "ryw:declared", cat(i)}};
                   },
                   [=](int i) { return b(cat("y", i)); }});
  return cases;
}

TEST_F(CacheReadYourWritesTest, OneAtATime) {
  for (const auto& k : ryw_cases()) {
    SCOPED_TRACE(k.name);
    run(k, false);
  }
}

TEST_F(CacheReadYourWritesTest, Pipelined) {
  for (const auto& k : ryw_cases()) {
    SCOPED_TRACE(k.name);
    run(k, true);
  }
}

TEST_F(CacheReadYourWritesTest, EvalshaAndFcallWithUndeclaredKeys) {
  const std::string sha_script = "redis.call('set','ryw:sha','s'..ARGV[1])";
  Reply sha = redis().command({"SCRIPT", "LOAD", sha_script});
  ASSERT_TRUE(sha && sha->type == REDIS_REPLY_STRING) << describe(sha);
  const std::string sha1(sha->str, sha->len);
  ASSERT_EQ(redis().call({"FUNCTION", "LOAD", "REPLACE",
                          "#!lua name=respitecache\n"
                          "redis.register_function('set_undeclared', function(keys, args) "
                          "return redis.call('set', 'ryw:fcall', 'f' .. args[1]) end)"}),
            "\"respitecache\"");
  auto b = [](const std::string& s) { return resp_bulk(s); };
  const RywCase evalsha{"EVALSHA undeclared/GET",
                        [](Client& r, int i) { r.call({"SET", "ryw:sha", cat("old", i)}); },
                        {"GET", "ryw:sha"},
                        [=](int i) { return b(cat("old", i)); },
                        [=](int i) { return std::vector<Command>{{"EVALSHA", sha1, "0", cat(i)}}; },
                        [=](int i) { return b(cat("s", i)); }};
  const RywCase fcall{"FCALL undeclared/GET",
                      [](Client& r, int i) { r.call({"SET", "ryw:fcall", cat("old", i)}); },
                      {"GET", "ryw:fcall"},
                      [=](int i) { return b(cat("old", i)); },
                      [](int i) { return std::vector<Command>{{"FCALL", "set_undeclared", "0", cat(i)}}; },
                      [=](int i) { return b(cat("f", i)); }};
  for (bool pipeline : {false, true}) {
    run(evalsha, pipeline);
    run(fcall, pipeline);
  }
}

// Another client's view of a script's undeclared write: not promised at once, but after a
// fence it must be there (the invalidation came from Redis).
TEST_F(CacheTest, ScriptWriteIsSeenByOtherClientsAfterAFence) {
  Client writer = connect();
  Client reader = connect();
  ASSERT_EQ(redis().call({"SET", "scr:k", "old"}), "+OK");
  cache_get(reader, "scr:k", "\"old\"");
  EXPECT_EQ(writer.call({"EVAL", "redis.call('set','scr:k','new')", "0"}), "(nil)");
  ASSERT_EQ(fence(), "+OK");
  EXPECT_EQ(reader.call({"GET", "scr:k"}), "\"new\"");
}

// A transaction's writes happen at EXEC, not when they are queued: a value another client
// cached between the queued SET and the EXEC must not be read back by the writer after EXEC.
TEST_F(CacheTest, TransactionWriteIsReadBackAfterExecThoughAnotherClientCachedTheOldValue) {
  Client other = connect();
  for (bool pipeline : {false, true}) {
    SCOPED_TRACE(pipeline ? "EXEC and GET pipelined" : "EXEC, then GET");
    RawConn a = stack().raw();
    int stale = 0;
    std::string first;
    for (int i = 0; i < 30; ++i) {
      ASSERT_EQ(redis().call({"SET", "txw:k", cat("old", i)}), "+OK");
      ASSERT_EQ(fence(), "+OK");
      ASSERT_EQ(one(a, {"MULTI"}), kOk);
      ASSERT_EQ(one(a, {"SET", "txw:k", cat("new", i)}), "+QUEUED\r\n");
      cache_get(other, "txw:k", cat("\"old", i, "\""));
      std::vector<std::string> r;
      if (pipeline) {
        r = pipelined(a, {{"EXEC"}, {"GET", "txw:k"}});
      } else {
        r = {one(a, {"EXEC"}), one(a, {"GET", "txw:k"})};
      }
      ASSERT_EQ(r.size(), 2u);
      EXPECT_EQ(r[0], "*1\r\n+OK\r\n");
      if (r[1] != resp_bulk(cat("new", i)) && stale++ == 0) first = cat("iteration ", i, ": ", escape_bytes(r[1]));
    }
    EXPECT_EQ(stale, 0) << "the writer read the old value after its own EXEC in " << stale << " of 30; first: " << first;
  }
}

// The same when the transaction's invalidation reaches respite late: the transaction first
// writes thousands of other cached keys, so Redis's invalidation messages for them (written to
// the invalidation connection at most 64 KiB per event loop turn) queue ahead of the one for
// the key the client then reads back.
TEST_F(CacheTest, TransactionWriteIsReadBackAfterExecWhenItsInvalidationIsLate) {
  constexpr int kOthers = 5000;
  Client filler = connect();
  RawConn a = stack().raw();
  int stale = 0;
  std::string first;
  for (int round = 0; round < 5; ++round) {
    // Cache the other keys (respite reads them through its pool: Redis tracks them).
    for (int i = 0; i < kOthers; ++i) filler.append({"GET", cat("txl:other:", i)});
    for (int i = 0; i < kOthers; ++i) filler.get_reply();
    ASSERT_EQ(redis().call({"SET", "txl:k", cat("old", round)}), "+OK");
    ASSERT_EQ(fence(), "+OK");
    Command mset = {"MSET"};
    for (int i = 0; i < kOthers; ++i) {
      mset.push_back(cat("txl:other:", i));
      mset.push_back(cat("r", round));
    }
    ASSERT_EQ(one(a, {"MULTI"}), kOk);
    ASSERT_EQ(one(a, mset), "+QUEUED\r\n");
    ASSERT_EQ(one(a, {"SET", "txl:k", cat("new", round)}), "+QUEUED\r\n");
    // Cached after the SET was queued (queuing invalidated it locally), before it runs.
    cache_get(filler, "txl:k", cat("\"old", round, "\""));
    ASSERT_EQ(one(a, {"EXEC"}), "*2\r\n+OK\r\n+OK\r\n");
    const std::string got = one(a, {"GET", "txl:k"});
    if (got != resp_bulk(cat("new", round)) && stale++ == 0) first = cat("round ", round, ": ", escape_bytes(got));
  }
  EXPECT_EQ(stale, 0) << "the writer read its own transaction's overwritten value after EXEC in " << stale
                      << " of 5 rounds; first: " << first;
}

// A script queued in a transaction runs at EXEC: its undeclared writes must be seen by the
// writer after EXEC, as after a plain EVAL.
TEST_F(CacheTest, ScriptInATransactionIsReadBackAfterExec) {
  Client other = connect();
  for (bool pipeline : {false, true}) {
    SCOPED_TRACE(pipeline ? "EXEC and GET pipelined" : "EXEC, then GET");
    RawConn a = stack().raw();
    int stale = 0;
    std::string first;
    for (int i = 0; i < 30; ++i) {
      ASSERT_EQ(redis().call({"SET", "txs:u", cat("old", i)}), "+OK");
      ASSERT_EQ(fence(), "+OK");
      cache_get(other, "txs:u", cat("\"old", i, "\""));
      ASSERT_EQ(one(a, {"MULTI"}), kOk);
      ASSERT_EQ(one(a, {"EVAL", "redis.call('set','txs:u','n'..ARGV[1])", "0", cat(i)}), "+QUEUED\r\n");
      std::vector<std::string> r;
      if (pipeline) {
        r = pipelined(a, {{"EXEC"}, {"GET", "txs:u"}});
      } else {
        r = {one(a, {"EXEC"}), one(a, {"GET", "txs:u"})};
      }
      ASSERT_EQ(r.size(), 2u);
      EXPECT_EQ(r[0], "*1\r\n$-1\r\n");
      if (r[1] != resp_bulk(cat("n", i)) && stale++ == 0) first = cat("iteration ", i, ": ", escape_bytes(r[1]));
    }
    EXPECT_EQ(stale, 0) << "the writer read the old value after its own EXEC in " << stale << " of 30; first: " << first;
  }
}

// Makes Redis track `n` keys "<prefix><i>" for respite's pool connection (one plain MGET
// through respite: longer than respite splits, so it is forwarded as it is, and the pool
// connection's tracking remembers every key).
void track_keys(Client& c, const std::string& prefix, int n) {
  Command mget = {"MGET"};
  for (int i = 0; i < n; ++i) mget.push_back(cat(prefix, i));
  Reply r = c.command(mget);
  ASSERT_TRUE(r && r->type == REDIS_REPLY_ARRAY) << describe(r);
}

// A script that first writes `n` tracked keys, then the undeclared key `key` (value
// "n"..ARGV[1]): Redis's invalidations for the n keys (megabytes, written to the invalidation
// connection 64 KiB per event loop turn) queue ahead of the one for `key`, which so reaches
// respite well after the script's reply.
std::string late_script(const std::string& prefix, int n, const std::string& key) {
  return cat("for i=0,", n - 1, " do redis.call('set','", prefix, "'..i,ARGV[1]) end redis.call('set','", key,
             "','n'..ARGV[1])");
}

TEST_F(CacheTest, ScriptWriteIsReadBackWhenItsInvalidationIsLate) {
  constexpr int kOthers = 20000;
  Client warm = connect();
  Client e = connect();
  int stale = 0;
  std::string first;
  for (int round = 0; round < 6; ++round) {
    const bool pipeline = round % 2 == 1;
    track_keys(warm, "late:o:", kOthers);
    ASSERT_EQ(redis().call({"SET", "late:u", cat("old", round)}), "+OK");
    ASSERT_EQ(fence(), "+OK");
    cache_get(warm, "late:u", cat("\"old", round, "\""));
    std::string got;
    const Command eval = {"EVAL", late_script("late:o:", kOthers, "late:u"), "0", cat(round)};
    if (pipeline) {
      e.append(eval);
      e.append({"GET", "late:u"});
      e.get_reply();
      got = describe(e.get_reply());
    } else {
      EXPECT_EQ(e.call(eval), "(nil)");
      got = e.call({"GET", "late:u"});
    }
    if (got != cat("\"n", round, "\"") && stale++ == 0) first = cat("round ", round, ": ", got);
  }
  EXPECT_EQ(stale, 0) << "a script's writer read the old value of the key it wrote in " << stale
                      << " of 6 rounds; first: " << first;
}

// The writer of a script is fenced by a PING on the invalidation connection. With
// upstream.max_inflight small and the invalidation connection busy with other clients'
// RESPITE CACHE FENCE pings, that PING may not be accepted: the writer must still not read
// the old value back.
class CacheBusyLinkTest : public CacheTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    // Frequent keepalive PINGs too, which meet the busy link as often as the fences do.
    o.respite_sets = {"upstream.max_inflight=4", "cache.ping_interval_ms=10"};
    return o;
  }
};

TEST_F(CacheBusyLinkTest, ScriptWriterIsFencedEvenWhenTheInvalidationConnectionIsBusy) {
  constexpr int kOthers = 20000;
  Client warm = connect();
  Client e = connect();
  std::atomic<bool> stop{false};
  std::atomic<long> fence_ok{0}, fence_err{0};
  std::mutex mu;              // guards first_refusal
  std::string first_refusal;  // the first FENCE reply other than +OK
  std::vector<std::thread> flooders;
  const uint16_t port = stack().port();
  for (int f = 0; f < 3; ++f) {
    flooders.emplace_back([&] {
      RawConn conn = RawConn::tcp(port);
      while (!stop) {
        auto replies = pipelined(conn, std::vector<Command>(8, Command{"RESPITE", "CACHE", "FENCE"}));
        if (replies.size() != 8) return;
        for (const auto& r : replies) {
          if (r == kOk) {
            ++fence_ok;
          } else if (fence_err++ == 0) {
            std::lock_guard<std::mutex> lock(mu);
            first_refusal = r;
          }
        }
      }
    });
  }
  int stale = 0, rounds = 0;
  std::string first;
  for (int round = 0; round < 10; ++round) {
    track_keys(warm, "busy:o:", kOthers);
    ASSERT_EQ(redis().call({"SET", "busy:u", cat("old", round)}), "+OK");
    // No fence here (the link is saturated on purpose): wait until warm reads the old value
    // from the cache.
    bool cached = poll_until(
        [&] {
          if (warm.call({"GET", "busy:u"}) != cat("\"old", round, "\"")) return false;
          const long long h = stat("hits");
          return warm.call({"GET", "busy:u"}) == cat("\"old", round, "\"") && stat("hits") == h + 1;
        },
        deadline_in(kWait));
    if (!cached) continue;
    ++rounds;
    EXPECT_EQ(e.call({"EVAL", late_script("busy:o:", kOthers, "busy:u"), "0", cat(round)}), "(nil)");
    const std::string got = e.call({"GET", "busy:u"});
    if (got != cat("\"n", round, "\"") && stale++ == 0) first = cat("round ", round, ": ", got);
  }
  stop = true;
  for (auto& t : flooders) t.join();
  std::cout << "[ info ] busy link: " << fence_ok << " fences answered +OK, " << fence_err << " refused (" << escape_bytes(first_refusal) << "); stats fences:"
            << stats().fields["fences"] << "\n";
  EXPECT_GE(rounds, 6) << "the old value could not be cached in most rounds";
  EXPECT_EQ(stale, 0) << "a script's writer read the old value back in " << stale << " of " << rounds
                      << " rounds; first: " << first;
  const std::string fences = stats().fields["fences"];
  EXPECT_LT(fences.size(), 10u) << "the fences counter wrapped below zero: fences:" << fences;
}

// ---------------------------------------------------------------------------------------------
// 4. Losing the invalidation connection, or a pooled connection.

TEST_F(CacheTest, KilledInvalidationConnectionFlushesAndTrackingComesBack) {
  Client c = connect();
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(redis().call({"SET", cat("kill:", i), cat("v", i)}), "+OK");
    cache_get(c, cat("kill:", i), cat("\"v", i, "\""));
  }
  ASSERT_GE(stat("entries"), 10);
  const auto old_id = redis_client_id(redis(), "respite-invalidation");
  ASSERT_TRUE(old_id);
  const long long flushes0 = stat("flushes");

  ASSERT_EQ(redis().call({"CLIENT", "KILL", "ID", std::to_string(*old_id)}), ":1");
  ASSERT_TRUE(poll_until([&] { return stat("flushes") > flushes0; }, deadline_in(kWait)))
      << "no flush after the invalidation connection was killed: " << stats().raw;
  EXPECT_EQ(stat("entries"), 0) << stats().raw;

  ASSERT_TRUE(wait_for_tracking(admin(), deadline_in(kWait))) << stats().raw;
  const auto new_id = redis_client_id(redis(), "respite-invalidation");
  ASSERT_TRUE(new_id) << "no single respite-invalidation on Redis after tracking:1";
  EXPECT_NE(*new_id, *old_id);
  // tracking:1 means the pool tracks again, redirected to the new connection.
  for (const auto& p : redis_clients_named(redis(), "respite-pool-", true)) {
    EXPECT_NE(p.at("flags").find('t'), std::string::npos) << p.at("name") << ": " << p.at("flags");
    EXPECT_EQ(p.at("redir"), std::to_string(*new_id)) << p.at("name") << " still redirects to a dead connection";
  }

  // Coherence restored.
  for (int i = 0; i < 10; ++i) {
    const std::string key = cat("kill:", i);
    cache_get(c, key, cat("\"v", i, "\""));
    ASSERT_EQ(redis().call({"SET", key, cat("w", i)}), "+OK");
    ASSERT_EQ(fence(), "+OK");
    EXPECT_EQ(c.call({"GET", key}), cat("\"w", i, "\"")) << "stale after tracking came back";
  }
}

// While the invalidation connection is down, Redis drops the invalidations meant for it (the
// pool's tracking redirects to a dead client). A reply read in that window and cached would
// never be invalidated: after tracking is back and a fence, nothing stale may be served.
TEST_F(CacheTest, NothingCachedDuringTheReconnectWindowGoesStale) {
  constexpr int kRounds = 8;
  int stale_rounds = 0;
  std::string first_stale;
  for (int round = 0; round < kRounds; ++round) {
    const std::string key = cat("window:", round);
    ASSERT_EQ(redis().call({"SET", key, "initial"}), "+OK");
    std::atomic<bool> stop{false};
    std::atomic<long> reads{0};
    const uint16_t port = stack().port();
    std::thread reader([&] {
      Client r = Client::tcp(port);
      while (!stop) {
        r.command({"GET", key});
        ++reads;
      }
    });
    poll_until([&] { return reads > 100; }, deadline_in(kWait));
    const auto id = redis_client_id(redis(), "respite-invalidation");
    ASSERT_TRUE(id);
    ASSERT_EQ(redis().call({"CLIENT", "KILL", "ID", std::to_string(*id)}), ":1");
    // Write directly while tracking is down; stop once it is back.
    int n = 0;
    std::string last;
    const Deadline deadline = deadline_in(kWait);
    bool back = false;
    while (Clock::now() < deadline) {
      last = cat("w", n++);
      redis().call({"SET", key, last});
      if (n > 3 && stat("tracking") == 1 && redis_client_id(redis(), "respite-invalidation") != id) {
        back = true;
        break;
      }
    }
    stop = true;
    reader.join();
    ASSERT_TRUE(back) << "tracking did not come back: " << stats().raw;
    ASSERT_EQ(fence(), "+OK");
    Client check = connect();
    const std::string got = check.call({"GET", key});
    if (got != cat("\"", last, "\"")) {
      if (stale_rounds++ == 0) first_stale = cat(key, ": got ", got, ", Redis has ", redis().call({"GET", key}));
    }
  }
  EXPECT_EQ(stale_rounds, 0) << stale_rounds << " of " << kRounds
                             << " rounds served a stale value after tracking came back and a fence; first: "
                             << first_stale;
}

TEST_F(CacheTest, KilledPoolConnectionFlushesAndCoherenceIsRestored) {
  Client c = connect();
  ASSERT_EQ(redis().call({"SET", "poolkill:k", "v1"}), "+OK");
  cache_get(c, "poolkill:k", "\"v1\"");
  const auto pool = redis_clients_named(redis(), "respite-pool-", true);
  ASSERT_FALSE(pool.empty());
  const std::string victim = pool[0].at("id");
  const long long flushes0 = stat("flushes");
  ASSERT_EQ(redis().call({"CLIENT", "KILL", "ID", victim}), ":1");
  ASSERT_TRUE(poll_until([&] { return stat("flushes") > flushes0; }, deadline_in(kWait))) << stats().raw;
  EXPECT_EQ(stat("entries"), 0);
  ASSERT_TRUE(wait_for_tracking(admin(), deadline_in(kWait)));
  ASSERT_TRUE(stack().wait_until_serving(deadline_in(kWait)));
  const auto inv = redis_client_id(redis(), "respite-invalidation");
  ASSERT_TRUE(inv);
  for (const auto& p : redis_clients_named(redis(), "respite-pool-", true)) {
    EXPECT_NE(p.at("id"), victim);
    EXPECT_NE(p.at("flags").find('t'), std::string::npos) << p.at("name") << ": " << p.at("flags");
    EXPECT_EQ(p.at("redir"), std::to_string(*inv)) << p.at("name");
  }
  cache_get(c, "poolkill:k", "\"v1\"");
  ASSERT_EQ(redis().call({"SET", "poolkill:k", "v2"}), "+OK");
  ASSERT_EQ(fence(), "+OK");
  EXPECT_EQ(c.call({"GET", "poolkill:k"}), "\"v2\"");
}

// Redis restarted empty (no persistence): while it is down nothing is served from the cache,
// and afterwards the old values are gone.
TEST_F(CacheTest, RedisRestartFlushesTheCache) {
  Client c = Client::tcp(stack().port(), 5s);
  ASSERT_EQ(redis().call({"SET", "rs:k", "before"}), "+OK");
  cache_get(c, "rs:k", "\"before\"");
  redis_.reset();
  stack().redis().kill();
  std::string during;
  EXPECT_TRUE(poll_until([&] { return starts_with(during = c.call({"GET", "rs:k"}), "-"); }, deadline_in(kWait)))
      << "a cached value was still served while Redis was down: " << during;
  stack().redis().restart();
  ASSERT_TRUE(stack().wait_until_serving(deadline_in(10s)));
  redis_.emplace(stack().connect_redis());
  ASSERT_TRUE(wait_for_tracking(admin(), deadline_in(10s))) << stats().raw;
  EXPECT_EQ(c.call({"GET", "rs:k"}), "(nil)");
  ASSERT_EQ(redis().call({"SET", "rs:k", "after"}), "+OK");
  ASSERT_EQ(fence(), "+OK");
  cache_get(c, "rs:k", "\"after\"");
  ASSERT_EQ(redis().call({"SET", "rs:k", "after2"}), "+OK");
  ASSERT_EQ(fence(), "+OK");
  EXPECT_EQ(c.call({"GET", "rs:k"}), "\"after2\"");
}

// Keys Redis evicts under maxmemory are invalidated like written ones.
TEST_F(CacheTest, KeysEvictedByRedisAreNotServed) {
  Client c = connect();
  const std::string value(1000, 'e');
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(redis().call({"SET", cat("ev:", i), value}), "+OK");
    cache_get(c, cat("ev:", i), cat("\"", value, "\""));
  }
  ASSERT_EQ(redis().call({"CONFIG", "SET", "maxmemory-policy", "allkeys-random"}), "+OK");
  const long long mem = info_integer(redis(), "memory", "used_memory").value_or(0);
  ASSERT_GT(mem, 0);
  ASSERT_EQ(redis().call({"CONFIG", "SET", "maxmemory", std::to_string(mem + 512 * 1024)}), "+OK");
  for (int i = 0; i < 3000; ++i) redis().append({"SET", cat("filler:", i), value});
  for (int i = 0; i < 3000; ++i) redis().get_reply();
  ASSERT_EQ(fence(), "+OK");
  int evicted = 0, wrong = 0;
  std::string first;
  for (int i = 0; i < 50; ++i) {
    const std::string direct = redis().call({"EXISTS", cat("ev:", i)});
    const std::string via = c.call({"GET", cat("ev:", i)});
    if (direct == ":0") {
      ++evicted;
      if (via != "(nil)" && wrong++ == 0) first = cat("ev:", i, " evicted by Redis but respite served a value");
    }
  }
  redis().call({"CONFIG", "SET", "maxmemory", "0"});
  std::cout << "[ info ] Redis evicted " << evicted << " of 50 cached keys\n";
  EXPECT_GT(evicted, 0) << "Redis evicted none of the cached keys (the check proves nothing)";
  EXPECT_EQ(wrong, 0) << first;
}

// Keys with CR LF, NUL and other bytes, and the empty key: invalidations name them exactly.
TEST_F(CacheTest, BinaryAndEmptyKeysStayCoherent) {
  Client c = connect();
  const std::vector<std::string> keys = {std::string("bin\r\nkey\0x", 10), "", " ", "$3\r\nfoo\r\n",
                                         std::string(1000, 'L'), "\xff\xfe"};
  for (size_t i = 0; i < keys.size(); ++i) {
    SCOPED_TRACE(escape_bytes(keys[i], 40));
    ASSERT_EQ(redis().call({"SET", keys[i], cat("a", i)}), "+OK");
    cache_get(c, keys[i], cat("\"a", i, "\""));
    ASSERT_EQ(redis().call({"SET", keys[i], cat("b", i)}), "+OK");
    ASSERT_EQ(fence(), "+OK");
    EXPECT_EQ(c.call({"GET", keys[i]}), cat("\"b", i, "\""));
    // And a write through respite, read back at once.
    c.append({"SET", keys[i], cat("c", i)});
    c.append({"GET", keys[i]});
    EXPECT_EQ(describe(c.get_reply()), "+OK");
    EXPECT_EQ(describe(c.get_reply()), cat("\"c", i, "\""));
  }
}

// A read that misses, a write and a read, pipelined: the second read must not join the first
// one's fetch (sent before the write).
TEST_F(CacheTest, PipelinedMissThenWriteThenReadDoesNotJoinTheEarlierFetch) {
  RawConn c = stack().raw();
  int wrong = 0;
  std::string first;
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(redis().call({"SET", "pmw:k", cat("old", i)}), "+OK");
    ASSERT_EQ(fence(), "+OK");
    auto r = pipelined(c, {{"GET", "pmw:k"}, {"SET", "pmw:k", cat("new", i)}, {"GET", "pmw:k"}, {"GET", "pmw:k"}});
    const std::vector<std::string> want = {resp_bulk(cat("old", i)), kOk, resp_bulk(cat("new", i)),
                                           resp_bulk(cat("new", i))};
    if (r != want && wrong++ == 0) {
      first = cat("iteration ", i, ":");
      for (const auto& x : r) first += " " + escape_bytes(x);
    }
  }
  EXPECT_EQ(wrong, 0) << first;
}

// Inline (telnet-style) requests are cached and invalidated like multibulk ones.
TEST_F(CacheTest, InlineRequestsUseTheCacheCoherently) {
  RawConn c = stack().raw();
  ASSERT_EQ(redis().call({"SET", "inl:k", "v1"}), "+OK");
  ASSERT_TRUE(c.send_all("GET inl:k\r\n", deadline_in(kWait)));
  EXPECT_EQ(next_reply(c), resp_bulk("v1"));
  ASSERT_TRUE(poll_until([&] { return stat("fills") >= 1; }, deadline_in(kWait)));
  const long long g0 = redis_calls("get"), h0 = stat("hits");
  ASSERT_TRUE(c.send_all("GET inl:k\r\nget inl:k\r\n", deadline_in(kWait)));
  EXPECT_EQ(next_reply(c), resp_bulk("v1"));
  EXPECT_EQ(next_reply(c), resp_bulk("v1"));
  EXPECT_EQ(redis_calls("get"), g0);
  EXPECT_EQ(stat("hits"), h0 + 2);
  ASSERT_TRUE(c.send_all("SET inl:k v2\r\nGET inl:k\r\n", deadline_in(kWait)));
  EXPECT_EQ(next_reply(c), kOk);
  EXPECT_EQ(next_reply(c), resp_bulk("v2"));
  ASSERT_EQ(redis().call({"SET", "inl:k", "v3"}), "+OK");
  ASSERT_EQ(fence(), "+OK");
  ASSERT_TRUE(c.send_all("GET inl:k\r\n", deadline_in(kWait)));
  EXPECT_EQ(next_reply(c), resp_bulk("v3"));
}

// The upstream user may not run CLIENT TRACKING: nothing may be cached (no invalidations
// would come), reads stay correct, and the stats must not claim tracking.
class CacheNoTrackingPermissionTest : public CacheTest {
 protected:
  bool expect_tracking() override { return false; }
  StackOptions options() override {
    StackOptions o;
    o.upstream_user = "app";
    o.upstream_password = "pw";
    o.redis_args = {"--user", "app", "on", ">pw", "~*", "&*", "+@all", "-client|tracking"};
    return o;
  }
};

TEST_F(CacheNoTrackingPermissionTest, ReadsAreForwardedAndNothingIsCached) {
  Client c = connect();
  ASSERT_EQ(redis().call({"SET", "acl:k", "v1"}), "+OK");
  // Give respite time to set tracking up (or fail to): until its invalidation connection is
  // on Redis and the pool has answered a request after it.
  ASSERT_TRUE(poll_until([&] { return !redis_clients_named(redis(), "respite-invalidation").empty(); },
                         deadline_in(kWait)));
  ASSERT_TRUE(stack().wait_until_serving(deadline_in(kWait)));
  const long long g0 = redis_calls("get");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.call({"GET", "acl:k"}), "\"v1\"");
  EXPECT_EQ(redis_calls("get"), g0 + 3);
  EXPECT_EQ(stat("hits"), 0);
  EXPECT_EQ(stat("entries"), 0);
  ASSERT_EQ(redis().call({"SET", "acl:k", "v2"}), "+OK");
  EXPECT_EQ(c.call({"GET", "acl:k"}), "\"v2\"");
  EXPECT_EQ(stat("tracking"), 0) << "tracking:1 although the pool could not turn tracking on:\n" << stats().raw;
}

class CachePingTimeoutTest : public CacheTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_sets = {"cache.ping_interval_ms=100", "cache.ping_timeout_ms=300"};
    return o;
  }
};

// Redis paused: the invalidation connection's PING goes unanswered; the cache is flushed
// within about ping_timeout_ms, FENCE fails while tracking is down, and tracking comes back.
TEST_F(CachePingTimeoutTest, UnansweredPingFlushesTheCache) {
  Client c = connect();
  ASSERT_EQ(redis().call({"SET", "ping:k", "v1"}), "+OK");
  cache_get(c, "ping:k", "\"v1\"");
  const long long flushes0 = stat("flushes");
  Client pauser = stack().connect_redis();
  ASSERT_EQ(pauser.call({"CLIENT", "PAUSE", "1500", "ALL"}), "+OK");
  const auto t0 = Clock::now();
  ASSERT_TRUE(poll_until([&] { return stat("flushes") > flushes0; }, t0 + 1400ms))
      << "no flush while Redis did not answer PINGs: " << stats().raw;
  const long long flushed_after = ms_since(t0);
  EXPECT_EQ(stat("entries"), 0);
  EXPECT_EQ(stat("tracking"), 0);
  const auto f0 = Clock::now();
  const std::string f = fence();
  EXPECT_EQ(f.substr(0, 1), "-") << "FENCE while tracking is down: " << f;
  EXPECT_LT(ms_since(f0), 1000) << "FENCE while tracking is down took long";
  std::cout << "[ info ] unanswered PING: cache flushed " << flushed_after << " ms after Redis paused\n";
  ASSERT_TRUE(wait_for_tracking(admin(), deadline_in(kWait))) << stats().raw;
  cache_get(c, "ping:k", "\"v1\"");
  ASSERT_EQ(redis().call({"SET", "ping:k", "v2"}), "+OK");
  ASSERT_EQ(fence(), "+OK");
  EXPECT_EQ(c.call({"GET", "ping:k"}), "\"v2\"");
}

// ---------------------------------------------------------------------------------------------
// 5. FLUSHALL and friends.

TEST_F(CacheTest, FlushallDirectlyOnRedisEmptiesTheCache) {
  Client c = connect();
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(redis().call({"SET", cat("fl:", i), "v"}), "+OK");
    cache_get(c, cat("fl:", i), "\"v\"");
  }
  ASSERT_GE(stat("entries"), 10);
  ASSERT_EQ(redis().call({"FLUSHALL"}), "+OK");
  ASSERT_EQ(fence(), "+OK");
  EXPECT_EQ(stat("entries"), 0) << stats().raw;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(c.call({"GET", cat("fl:", i)}), "(nil)");

  // FLUSHDB directly, too.
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(redis().call({"SET", cat("fl:", i), "w"}), "+OK");
    cache_get(c, cat("fl:", i), "\"w\"");
  }
  ASSERT_EQ(redis().call({"FLUSHDB"}), "+OK");
  ASSERT_EQ(fence(), "+OK");
  EXPECT_EQ(stat("entries"), 0) << stats().raw;
  EXPECT_EQ(c.call({"GET", "fl:0"}), "(nil)");
}

TEST_F(CacheTest, FlushallFlushdbAndSwapdbThroughRespiteEmptyTheCacheAtOnce) {
  Client c = connect();
  for (const char* flush : {"FLUSHALL", "FLUSHDB"}) {
    SCOPED_TRACE(flush);
    for (int i = 0; i < 10; ++i) {
      ASSERT_EQ(c.call({"SET", cat("flr:", i), "v"}), "+OK");
      cache_get(c, cat("flr:", i), "\"v\"");
    }
    ASSERT_GE(stat("entries"), 10);
    const long long flushes0 = stat("flushes");
    ASSERT_EQ(c.call({flush}), "+OK");
    EXPECT_EQ(stat("entries"), 0) << stats().raw;  // no fence: this client's own write
    EXPECT_GT(stat("flushes"), flushes0);
    EXPECT_EQ(c.call({"GET", "flr:0"}), "(nil)");
  }
  // SWAPDB: the same key name now reads from what was db 1.
  ASSERT_EQ(redis().call({"SET", "sw:k", "db0"}), "+OK");
  Client redis1 = stack().connect_redis();
  ASSERT_EQ(redis1.call({"SELECT", "1"}), "+OK");
  ASSERT_EQ(redis1.call({"SET", "sw:k", "db1"}), "+OK");
  cache_get(c, "sw:k", "\"db0\"");
  ASSERT_EQ(c.call({"SWAPDB", "0", "1"}), "+OK");
  EXPECT_EQ(c.call({"GET", "sw:k"}), "\"db1\"") << "SWAPDB through respite left db 0's old value cached";
}

// SWAPDB changes what every key of the two databases reads, and Redis sends no invalidation
// for it (checked on Redis 7.0: none arrives). Through respite it must flush the cache when it
// takes effect: inside a transaction, at EXEC.
TEST_F(CacheTest, SwapdbInsideATransactionThroughRespiteLeavesNothingStale) {
  ASSERT_EQ(redis().call({"SET", "swt:k", "db0"}), "+OK");
  Client redis1 = stack().connect_redis();
  ASSERT_EQ(redis1.call({"SELECT", "1"}), "+OK");
  ASSERT_EQ(redis1.call({"SET", "swt:k", "db1"}), "+OK");
  Client a = connect();
  Client b = connect();
  ASSERT_EQ(a.call({"MULTI"}), "+OK");
  ASSERT_EQ(a.call({"SWAPDB", "0", "1"}), "+QUEUED");
  cache_get(b, "swt:k", "\"db0\"");  // cached after the SWAPDB was queued, before it ran
  ASSERT_EQ(a.call({"EXEC"}), "[+OK]");
  ASSERT_EQ(fence(), "+OK");
  EXPECT_EQ(redis().call({"GET", "swt:k"}), "\"db1\"");
  EXPECT_EQ(b.call({"GET", "swt:k"}), "\"db1\"") << "stale after a SWAPDB in a transaction through respite";
  EXPECT_EQ(a.call({"GET", "swt:k"}), "\"db1\"") << "the client that swapped reads the old database's value";
}

// A script that swaps databases: its keys are unknown, so the writer is fenced, but a fence
// cannot bring an invalidation Redis never sends. A documented limitation (docs/near-cache.md,
// "What Redis does not announce"): reported here, and RESPITE CACHE FLUSH is the remedy.
TEST_F(CacheTest, SwapdbInAScriptIsADocumentedLimitationAndFlushRecovers) {
  ASSERT_EQ(redis().call({"SET", "sws:k", "db0"}), "+OK");
  Client redis1 = stack().connect_redis();
  ASSERT_EQ(redis1.call({"SELECT", "1"}), "+OK");
  ASSERT_EQ(redis1.call({"SET", "sws:k", "db1"}), "+OK");
  Client a = connect();
  cache_get(a, "sws:k", "\"db0\"");
  ASSERT_EQ(a.call({"EVAL", "return redis.call('swapdb','0','1')", "0"}), "+OK");
  ASSERT_EQ(fence(), "+OK");
  const std::string got = a.call({"GET", "sws:k"});
  std::cout << "[ info ] after SWAPDB in a script and a fence, GET through respite gives " << got
            << " (Redis has \"db1\")\n";
  RecordProperty("swapdb_script_read", got);
  ASSERT_EQ(a.call({"RESPITE", "CACHE", "FLUSH"}), "+OK");
  EXPECT_EQ(a.call({"GET", "sws:k"}), "\"db1\"");
}

// Not in the contract (only SWAPDB through respite is): does a SWAPDB made directly on Redis
// reach the cache? Reported, not asserted.
TEST_F(CacheTest, SwapdbDirectlyOnRedisIsReported) {
  Client c = connect();
  ASSERT_EQ(redis().call({"SET", "swd:k", "db0"}), "+OK");
  Client redis1 = stack().connect_redis();
  ASSERT_EQ(redis1.call({"SELECT", "1"}), "+OK");
  ASSERT_EQ(redis1.call({"SET", "swd:k", "db1"}), "+OK");
  cache_get(c, "swd:k", "\"db0\"");
  ASSERT_EQ(redis().call({"SWAPDB", "0", "1"}), "+OK");
  ASSERT_EQ(fence(), "+OK");
  const std::string got = c.call({"GET", "swd:k"});
  std::cout << "[ info ] after SWAPDB 0 1 directly on Redis and a fence, GET through respite gives " << got
            << " (Redis has \"db1\")\n";
  RecordProperty("swapdb_direct_read", got);
}

// ---------------------------------------------------------------------------------------------
// 6. The memory budget.

class CacheBudgetTest : public CacheTest, public ::testing::WithParamInterface<const char*> {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_sets = {"cache.memory_bytes=1mb", cat("cache.eviction=", std::string(GetParam()))};
    return o;
  }
};

std::string budget_value(int i) {
  std::string v = cat("value-", i, "-");
  v.resize(200, static_cast<char>('a' + i % 26));
  return v;
}

TEST_P(CacheBudgetTest, StaysWithinBudgetAndEvicts) {
  constexpr int kKeys = 20'000;
  constexpr int kBatch = 500;
  for (int i = 0; i < kKeys; ++i) redis().append({"SET", cat("bud:", i), budget_value(i)});
  for (int i = 0; i < kKeys; ++i) {
    Reply r = redis().get_reply();
    ASSERT_TRUE(r && r->type == REDIS_REPLY_STATUS) << describe(r);
  }
  Client c = connect();
  ASSERT_EQ(stat("budget_bytes"), 1024 * 1024);
  long long max_used = 0, samples = 0, over = 0, wrong = 0;
  std::string first_over, first_wrong;
  // Two passes: in order, then with a stride (revisits keys that may still be cached).
  for (int pass = 0; pass < 2; ++pass) {
    for (int start = 0; start < kKeys; start += kBatch) {
      std::vector<int> keys;
      for (int j = start; j < start + kBatch; ++j) keys.push_back(pass == 0 ? j : (j * 7919) % kKeys);
      for (int k : keys) c.append({"GET", cat("bud:", k)});
      for (int k : keys) {
        Reply r = c.get_reply();
        if (describe(r) != cat("\"", budget_value(k), "\"") && wrong++ == 0)
          first_wrong = cat("bud:", k, " -> ", describe(r).substr(0, 60));
      }
      const CacheStats s = stats();
      ++samples;
      max_used = std::max(max_used, s.get("bytes_used"));
      if (s.get("bytes_used") > s.get("budget_bytes") || s.get("bytes_used") < 0) {
        if (over++ == 0) first_over = s.raw;
      }
    }
  }
  const CacheStats s = stats();
  std::cout << "[ info ] budget " << GetParam() << ": max bytes_used " << max_used << " of " << s.get("budget_bytes")
            << ", entries " << s.get("entries") << ", evictions " << s.get("evictions") << ", hits "
            << s.get("hits") << ", fills " << s.get("fills") << "\n";
  EXPECT_EQ(wrong, 0) << "wrong values read; first: " << first_wrong;
  EXPECT_EQ(over, 0) << over << " of " << samples << " samples over budget; first:\n" << first_over;
  EXPECT_GT(s.get("evictions"), 0);
  EXPECT_GT(s.get("entries"), 1000) << "the budget holds far more than this";
  EXPECT_GT(max_used, 512 * 1024) << "the cache never used half its budget";
}

INSTANTIATE_TEST_SUITE_P(Eviction, CacheBudgetTest, ::testing::Values("s3fifo", "lru"));

TEST_F(CacheTest, RepliesOverMaxValueBytesAreNotCached) {
  Client c = connect();
  const std::string big(70'000, 'B'), fits(60'000, 'F');
  ASSERT_EQ(redis().call({"SET", "big:k", big}), "+OK");
  ASSERT_EQ(redis().call({"SET", "fits:k", fits}), "+OK");
  const long long g0 = redis_calls("get"), tl0 = stat("too_large"), h0 = stat("hits");
  EXPECT_EQ(c.call({"GET", "big:k"}), cat("\"", big, "\""));
  EXPECT_EQ(c.call({"GET", "big:k"}), cat("\"", big, "\""));
  EXPECT_EQ(redis_calls("get"), g0 + 2);
  EXPECT_EQ(stat("hits"), h0);
  EXPECT_GE(stat("too_large"), tl0 + 1);
  cache_get(c, "fits:k", cat("\"", fits, "\""));
}

// ---------------------------------------------------------------------------------------------
// 7, 8. MGET and HMGET assembled from cached entries.

TEST_F(CacheTest, MgetMergesCachedAndFetchedValuesInOrder) {
  Client c = connect();
  ASSERT_EQ(redis().call({"MSET", "m:a", "A", "m:b", "B", "m:c", "C", "m:d", "D"}), "+OK");
  ASSERT_EQ(redis().call({"HSET", "m:h", "f", "v"}), ":1");
  cache_get(c, "m:a", "\"A\"");
  cache_get(c, "m:c", "\"C\"");
  EXPECT_EQ(c.call({"GET", "m:h"}).substr(0, 10), "-WRONGTYPE");

  const Command mget = {"MGET", "m:a", "m:b", "m:none", "m:h", "m:c", "m:a", "m:d", "m:b"};
  const long long hits0 = stat("hits"), mget0 = redis_calls("mget"), get0 = redis_calls("get");
  const std::string got = c.call(mget);
  const long long hits1 = stat("hits"), mget1 = redis_calls("mget"), get1 = redis_calls("get");
  const std::string want = redis().call(mget);
  EXPECT_EQ(want, "[\"A\", \"B\", (nil), (nil), \"C\", \"A\", \"D\", \"B\"]");
  EXPECT_EQ(got, want);
  EXPECT_GE(hits1 - hits0, 2) << "m:a and m:c were cached";
  EXPECT_EQ(mget1 - mget0, 1) << "the misses are fetched with one MGET";
  EXPECT_EQ(get1, get0);

  // Everything cached: Redis sees nothing.
  cache_get(c, "m:b", "\"B\"");
  cache_get(c, "m:d", "\"D\"");
  const long long mget2 = redis_calls("mget"), hits2 = stat("hits");
  EXPECT_EQ(c.call({"MGET", "m:d", "m:c", "m:b", "m:a"}), "[\"D\", \"C\", \"B\", \"A\"]");
  EXPECT_EQ(redis_calls("mget"), mget2) << "an MGET of cached keys reached Redis";
  EXPECT_GE(stat("hits"), hits2 + 4);

  // A direct write to one of them, then a fence: MGET sees it.
  ASSERT_EQ(redis().call({"SET", "m:c", "C2"}), "+OK");
  ASSERT_EQ(fence(), "+OK");
  EXPECT_EQ(c.call({"MGET", "m:d", "m:c", "m:b", "m:a"}), "[\"D\", \"C2\", \"B\", \"A\"]");
  // And its own write, pipelined right behind it.
  c.append({"SET", "m:a", "A2"});
  c.append({"MGET", "m:a", "m:b"});
  EXPECT_EQ(describe(c.get_reply()), "+OK");
  EXPECT_EQ(describe(c.get_reply()), "[\"A2\", \"B\"]");
  // Wrong arity is Redis's error, as is.
  EXPECT_EQ(c.call({"MGET"}), redis().call({"MGET"}));
}

TEST_F(CacheTest, HmgetMergesCachedAndFetchedFieldsInOrder) {
  Client c = connect();
  ASSERT_EQ(redis().call({"HSET", "hm:h", "f1", "v1", "f2", "v2", "f3", "v3"}), ":3");
  ASSERT_EQ(redis().call({"SET", "hm:s", "str"}), "+OK");
  EXPECT_EQ(make_cached(c, {"HGET", "hm:h", "f1"}, "hget"), "\"v1\"");
  EXPECT_EQ(make_cached(c, {"HGET", "hm:h", "f3"}, "hget"), "\"v3\"");
  const Command hmget = {"HMGET", "hm:h", "f1", "f2", "f4", "f3", "f1"};
  const long long hits0 = stat("hits"), hmget0 = redis_calls("hmget"), hget0 = redis_calls("hget");
  const std::string got = c.call(hmget);
  const long long hits1 = stat("hits"), hmget1 = redis_calls("hmget"), hget1 = redis_calls("hget");
  const std::string want = redis().call(hmget);
  EXPECT_EQ(want, "[\"v1\", \"v2\", (nil), \"v3\", \"v1\"]");
  EXPECT_EQ(got, want);
  EXPECT_GE(hits1 - hits0, 2);
  EXPECT_EQ(hmget1 - hmget0, 1);
  EXPECT_EQ(hget1, hget0);
  // Errors and missing keys are Redis's.
  EXPECT_EQ(c.call({"HMGET", "hm:s", "f1"}), redis().call({"HMGET", "hm:s", "f1"}));
  EXPECT_EQ(c.call({"HMGET", "hm:none", "f1", "f2"}), "[(nil), (nil)]");
  // A direct write, a fence.
  ASSERT_EQ(redis().call({"HSET", "hm:h", "f1", "w1"}), ":0");
  ASSERT_EQ(fence(), "+OK");
  EXPECT_EQ(c.call({"HMGET", "hm:h", "f3", "f1"}), "[\"v3\", \"w1\"]");
  // The hash deleted through respite: its own next HMGET sees it.
  make_cached(c, {"HGET", "hm:h", "f3"}, "hget");
  c.append({"DEL", "hm:h"});
  c.append({"HMGET", "hm:h", "f3", "f1"});
  EXPECT_EQ(describe(c.get_reply()), ":1");
  EXPECT_EQ(describe(c.get_reply()), "[(nil), (nil)]");
}

// ---------------------------------------------------------------------------------------------
// Pipelines mixing hits and misses keep their order.

TEST_F(CacheTest, PipelineOfHitsAndMissesKeepsOrder) {
  constexpr int kKeys = 100, kReads = 3000;
  for (int i = 0; i < kKeys; ++i) redis().append({"SET", cat("ord:", i), cat("val-", i)});
  for (int i = 0; i < kKeys; ++i) ASSERT_EQ(describe(redis().get_reply()), "+OK");
  Client c = connect();
  for (int i = 0; i < kKeys; i += 2) EXPECT_EQ(c.call({"GET", cat("ord:", i)}), cat("\"val-", i, "\""));
  RawConn raw = stack().raw();
  std::vector<Command> batch;
  std::vector<std::string> want;
  uint32_t x = 12345;
  for (int n = 0; n < kReads; ++n) {
    x = x * 1103515245 + 12345;
    const int k = static_cast<int>((x >> 8) % (kKeys + 10));  // some keys do not exist
    if (n % 10 == 9) {
      batch.push_back({"MGET", cat("ord:", k), cat("ord:", (k + 1) % kKeys)});
      want.push_back(resp_array({k < kKeys ? resp_bulk(cat("val-", k)) : kNil, resp_bulk(cat("val-", (k + 1) % kKeys))}));
    } else {
      batch.push_back({"GET", cat("ord:", k)});
      want.push_back(k < kKeys ? resp_bulk(cat("val-", k)) : kNil);
    }
  }
  const long long hits0 = stat("hits");
  auto replies = pipelined(raw, batch);
  ASSERT_EQ(replies.size(), batch.size());
  int wrong = 0;
  std::string first;
  for (size_t i = 0; i < replies.size(); ++i)
    if (replies[i] != want[i] && wrong++ == 0)
      first = cat("reply ", i, ": ", escape_bytes(replies[i]), " want ", escape_bytes(want[i]));
  EXPECT_EQ(wrong, 0) << first;
  EXPECT_GT(stat("hits") - hits0, kReads / 3);
}

// ---------------------------------------------------------------------------------------------
// What is not cached, and where the cache is not used.

TEST_F(CacheTest, TimeDependentNondeterministicMultiKeyAndErrorRepliesAreNotCached) {
  Client c = connect();
  ASSERT_EQ(redis().call({"SET", "nc:s", "v", "EX", "1000"}), "+OK");
  ASSERT_EQ(redis().call({"SADD", "nc:set", "a", "b", "c"}), ":3");
  ASSERT_EQ(redis().call({"HSET", "nc:h", "f", "v", "g", "w"}), ":2");
  const std::vector<std::pair<Command, std::string>> reads = {
      {{"TTL", "nc:s"}, "ttl"},
      {{"PTTL", "nc:s"}, "pttl"},
      {{"OBJECT", "ENCODING", "nc:s"}, "object|encoding"},
      {{"EXISTS", "nc:s", "nc:set"}, "exists"},
      {{"SRANDMEMBER", "nc:set"}, "srandmember"},
      {{"HRANDFIELD", "nc:h"}, "hrandfield"},
      {{"GET", "nc:h"}, "get"},  // WRONGTYPE: an error reply
      {{"GETEX", "nc:s"}, "getex"},  // a write
  };
  for (const auto& [cmd, stat_name] : reads) {
    const long long calls0 = redis_calls(stat_name), hits0 = stat("hits");
    c.command(cmd);
    c.command(cmd);
    EXPECT_EQ(redis_calls(stat_name) - calls0, 2) << cmd[0] << " was served from the cache";
    EXPECT_EQ(stat("hits"), hits0) << cmd[0];
  }
  // And what is cached, for contrast: single-key deterministic reads.
  for (const auto& [cmd, stat_name] : std::vector<std::pair<Command, std::string>>{{{"EXISTS", "nc:s"}, "exists"},
                                                                                   {{"STRLEN", "nc:s"}, "strlen"},
                                                                                   {{"TYPE", "nc:set"}, "type"},
                                                                                   {{"SMEMBERS", "nc:set"}, "smembers"},
                                                                                   {{"HGETALL", "nc:h"}, "hgetall"}})
    make_cached(c, cmd, stat_name);
}

// The contract lists EXPIRETIME and PEXPIRETIME as not cached; docs/near-cache.md caches them
// (their answer is an absolute time, changed only by writes, which Redis invalidates). Either
// way they must follow direct changes of the key's expiry once a fence has returned.
TEST_F(CacheTest, ExpiretimeFollowsDirectExpiryChanges) {
  Client c = connect();
  ASSERT_EQ(redis().call({"SET", "et:k", "v"}), "+OK");
  for (const char* cmd : {"EXPIRETIME", "PEXPIRETIME"}) {
    SCOPED_TRACE(cmd);
    EXPECT_EQ(c.call({cmd, "et:k"}), ":-1");
    EXPECT_EQ(c.call({cmd, "et:k"}), ":-1");
  }
  ASSERT_EQ(redis().call({"EXPIREAT", "et:k", "4000000000"}), ":1");
  ASSERT_EQ(fence(), "+OK");
  EXPECT_EQ(c.call({"EXPIRETIME", "et:k"}), ":4000000000");
  EXPECT_EQ(c.call({"PEXPIRETIME", "et:k"}), ":4000000000000");
  ASSERT_EQ(redis().call({"PERSIST", "et:k"}), ":1");
  ASSERT_EQ(fence(), "+OK");
  EXPECT_EQ(c.call({"EXPIRETIME", "et:k"}), ":-1");
  EXPECT_EQ(c.call({"PEXPIRETIME", "et:k"}), ":-1");
  ASSERT_EQ(redis().call({"DEL", "et:k"}), ":1");
  ASSERT_EQ(fence(), "+OK");
  EXPECT_EQ(c.call({"EXPIRETIME", "et:k"}), ":-2");
  const long long g0 = redis_calls("expiretime");
  c.call({"EXPIRETIME", "et:k"});
  RecordProperty("expiretime_cached", redis_calls("expiretime") == g0 ? "yes" : "no");
  std::cout << "[ info ] EXPIRETIME is " << (redis_calls("expiretime") == g0 ? "" : "not ") << "served from the cache\n";
}

TEST_F(CacheTest, TransactionsAndOtherDatabasesDoNotUseTheCache) {
  Client c = connect();
  ASSERT_EQ(redis().call({"SET", "tx:k", "db0"}), "+OK");
  Client redis1 = stack().connect_redis();
  ASSERT_EQ(redis1.call({"SELECT", "1"}), "+OK");
  ASSERT_EQ(redis1.call({"SET", "tx:k", "db1"}), "+OK");
  cache_get(c, "tx:k", "\"db0\"");
  // MULTI: reads are queued, not answered from the cache.
  ASSERT_EQ(c.call({"MULTI"}), "+OK");
  EXPECT_EQ(c.call({"GET", "tx:k"}), "+QUEUED");
  EXPECT_EQ(c.call({"SET", "tx:k", "new"}), "+QUEUED");
  EXPECT_EQ(c.call({"GET", "tx:k"}), "+QUEUED");
  EXPECT_EQ(c.call({"EXEC"}), "[\"db0\", +OK, \"new\"]");
  EXPECT_EQ(c.call({"GET", "tx:k"}), "\"new\"");
  // Another database: its own value, never db 0's cached one.
  Client d = connect();
  cache_get(d, "tx:k", "\"new\"");
  ASSERT_EQ(d.call({"SELECT", "1"}), "+OK");
  EXPECT_EQ(d.call({"GET", "tx:k"}), "\"db1\"");
  EXPECT_EQ(d.call({"GET", "tx:k"}), "\"db1\"");
  ASSERT_EQ(d.call({"SELECT", "0"}), "+OK");
  EXPECT_EQ(d.call({"GET", "tx:k"}), "\"new\"");
}

class CacheUrlDbTest : public CacheTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.upstream_db = 3;
    return o;
  }
};

TEST_F(CacheUrlDbTest, CachesInTheUrlsDatabase) {
  Client c = connect();
  ASSERT_EQ(redis().call({"SELECT", "3"}), "+OK");
  ASSERT_EQ(redis().call({"SET", "url:k", "db3"}), "+OK");
  cache_get(c, "url:k", "\"db3\"");
  ASSERT_EQ(redis().call({"SET", "url:k", "db3-new"}), "+OK");
  ASSERT_EQ(fence(), "+OK");
  EXPECT_EQ(c.call({"GET", "url:k"}), "\"db3-new\"");
}

// ---------------------------------------------------------------------------------------------
// 9. Rules.

class CacheRulesTest : public CacheTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_args = {"--config", write_config(dir_,
                                               "[cache]\n"
                                               "[[cache.rules]]\n"
                                               "pattern = \"nocache:*\"\n"
                                               "cache = false\n"
                                               "[[cache.rules]]\n"
                                               "pattern = \"short:*\"\n"
                                               "max_ttl_ms = 200\n")};
    return o;
  }
  TempDir dir_;  // holds the config file
};

TEST_F(CacheRulesTest, NocacheKeysAreNeverServedFromTheCache) {
  Client c = connect();
  ASSERT_EQ(redis().call({"SET", "nocache:k", "v"}), "+OK");
  const long long hits0 = stat("hits"), fills0 = stat("fills"), g0 = redis_calls("get");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(c.call({"GET", "nocache:k"}), "\"v\"");
  EXPECT_EQ(stat("hits"), hits0);
  EXPECT_EQ(stat("fills"), fills0);
  EXPECT_EQ(redis_calls("get"), g0 + 5);
  // Through MGET too.
  ASSERT_EQ(redis().call({"SET", "other:k", "o"}), "+OK");
  cache_get(c, "other:k", "\"o\"");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.call({"MGET", "nocache:k", "other:k"}), "[\"v\", \"o\"]");
  ASSERT_EQ(redis().call({"SET", "nocache:k", "v2"}), "+OK");
  EXPECT_EQ(c.call({"MGET", "nocache:k", "other:k"}), "[\"v2\", \"o\"]");  // no fence: never cached
}

TEST_F(CacheRulesTest, MaxTtlExpiresEntries) {
  Client c = connect();
  ASSERT_EQ(redis().call({"SET", "short:k", "s"}), "+OK");
  ASSERT_EQ(redis().call({"SET", "long:k", "l"}), "+OK");
  cache_get(c, "long:k", "\"l\"");
  const long long exp0 = stat("expirations");
  const long long fills0 = stat("fills");
  const auto t0 = Clock::now();
  EXPECT_EQ(c.call({"GET", "short:k"}), "\"s\"");  // fills, expiring 200 ms after this
  EXPECT_TRUE(poll_until([&] { return stat("fills") > fills0; }, deadline_in(kWait)));
  const long long g0 = redis_calls("get");
  EXPECT_EQ(c.call({"GET", "short:k"}), "\"s\"");
  const bool quick = ms_since(t0) < 150;
  if (quick) {
    EXPECT_EQ(redis_calls("get"), g0) << "the second GET was not a hit";
  }
  long long missed_after = -1;
  ASSERT_TRUE(poll_until(
      [&] {
        EXPECT_EQ(c.call({"GET", "short:k"}), "\"s\"");
        if (redis_calls("get") == g0) return false;
        missed_after = ms_since(t0);
        return true;
      },
      t0 + 3s, std::chrono::milliseconds(10)))
      << "short:k was still served from the cache 3 s after it was cached (max_ttl_ms 200)";
  std::cout << "[ info ] max_ttl_ms=200 entry missed " << missed_after << " ms after it was cached\n";
  EXPECT_GE(missed_after, 200) << "expired before its max_ttl_ms";
  EXPECT_LT(missed_after, 1000);
  EXPECT_GT(stat("expirations"), exp0);
  // The entry without a rule is still cached (60 s default).
  const long long g1 = redis_calls("get");
  EXPECT_EQ(c.call({"GET", "long:k"}), "\"l\"");
  EXPECT_EQ(redis_calls("get"), g1);
}

// ---------------------------------------------------------------------------------------------
// 10, 11. Bypass, and the cache turned off.

TEST_F(CacheTest, BypassOnSkipsTheCacheForThatConnectionOnly) {
  Client other = connect();
  Client bypass = connect();
  ASSERT_EQ(redis().call({"SET", "byp:k", "v"}), "+OK");
  cache_get(other, "byp:k", "\"v\"");
  ASSERT_EQ(bypass.call({"RESPITE", "CACHE", "BYPASS", "ON"}), "+OK");
  const long long g0 = redis_calls("get"), hits0 = stat("hits"), byp0 = stat("bypassed");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(bypass.call({"GET", "byp:k"}), "\"v\"");
  EXPECT_EQ(redis_calls("get"), g0 + 5);
  EXPECT_EQ(stat("hits"), hits0);
  EXPECT_GE(stat("bypassed"), byp0 + 5);
  // Others still hit.
  EXPECT_EQ(other.call({"GET", "byp:k"}), "\"v\"");
  EXPECT_EQ(stat("hits"), hits0 + 1);
  EXPECT_EQ(redis_calls("get"), g0 + 5);
  // A bypassing client's direct view: a direct write is seen at once, no fence.
  ASSERT_EQ(redis().call({"SET", "byp:k", "v2"}), "+OK");
  EXPECT_EQ(bypass.call({"GET", "byp:k"}), "\"v2\"");
  ASSERT_EQ(bypass.call({"RESPITE", "CACHE", "BYPASS", "OFF"}), "+OK");
  ASSERT_EQ(fence(), "+OK");
  cache_get(bypass, "byp:k", "\"v2\"");
  EXPECT_EQ(bypass.call({"RESPITE", "CACHE", "BYPASS", "MAYBE"}).substr(0, 1), "-");
}

class CacheBypassClientsTest : public CacheTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_args = {"--config", write_config(dir_, "[cache]\nbypass_clients = [\"batch-*\"]\n")};
    return o;
  }
  TempDir dir_;  // holds the config file
};

TEST_F(CacheBypassClientsTest, NamedClientsBypass) {
  Client batch = connect();
  Client app = connect();
  ASSERT_EQ(batch.call({"CLIENT", "SETNAME", "batch-7"}), "+OK");
  ASSERT_EQ(app.call({"CLIENT", "SETNAME", "app-1"}), "+OK");
  ASSERT_EQ(redis().call({"SET", "bc:k", "v"}), "+OK");
  cache_get(app, "bc:k", "\"v\"");
  const long long g0 = redis_calls("get"), hits0 = stat("hits");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(batch.call({"GET", "bc:k"}), "\"v\"");
  EXPECT_EQ(redis_calls("get"), g0 + 3);
  EXPECT_EQ(stat("hits"), hits0);
  // Renamed out of the glob: uses the cache again.
  ASSERT_EQ(batch.call({"CLIENT", "SETNAME", "app-2"}), "+OK");
  EXPECT_EQ(batch.call({"GET", "bc:k"}), "\"v\"");
  EXPECT_EQ(stat("hits"), hits0 + 1);
}

class CacheDisabledTest : public CacheTest {
 protected:
  bool expect_tracking() override { return false; }
  StackOptions options() override {
    StackOptions o;
    o.respite_sets = {"cache.enabled=false"};
    return o;
  }
};

TEST_F(CacheDisabledTest, ReadsAreForwarded) {
  Client c = connect();
  ASSERT_EQ(redis().call({"SET", "off:k", "v"}), "+OK");
  const CacheStats s = stats();
  ASSERT_FALSE(s.empty()) << "RESPITE CACHE STATS with the cache off: " << s.raw;
  EXPECT_EQ(s.get("enabled"), 0);
  const long long g0 = redis_calls("get");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.call({"GET", "off:k"}), "\"v\"");
  EXPECT_EQ(redis_calls("get"), g0 + 3);
  EXPECT_EQ(stat("hits"), 0);
  EXPECT_EQ(stat("entries"), 0);
  EXPECT_TRUE(redis_clients_named(redis(), "respite-invalidation").empty())
      << "an invalidation connection exists with the cache off";
  for (const auto& p : redis_clients_named(redis(), "respite-pool-", true))
    EXPECT_EQ(p.at("flags").find('t'), std::string::npos) << p.at("name") << " tracks with the cache off";
}

// ---------------------------------------------------------------------------------------------
// 12. Miss coalescing.

TEST_F(CacheTest, ConcurrentMissesShareOneUpstreamRead) {
  constexpr int kClients = 20;
  const std::string value(1000, 'h');
  ASSERT_EQ(redis().call({"SET", "hot:k", value}), "+OK");
  std::vector<RawConn> conns;
  for (int i = 0; i < kClients; ++i) {
    conns.push_back(stack().raw());
    ASSERT_EQ(one(conns.back(), {"CLIENT", "SETNAME", cat("coal-", i)}), kOk);
  }
  const long long g0 = redis_calls("get");
  const CacheStats s0 = stats();
  Client pauser = stack().connect_redis();
  ASSERT_EQ(pauser.call({"CLIENT", "PAUSE", "1000", "ALL"}), "+OK");
  const auto paused_at = Clock::now();
  for (auto& conn : conns) ASSERT_TRUE(send_command(conn, {"GET", "hot:k"}));
  // respite answers CLIENT LIST itself: wait until every client is owed its GET's reply.
  const bool all_waiting = poll_until(
      [&] {
        Reply r = admin().command({"CLIENT", "LIST"});
        if (!r || r->type != REDIS_REPLY_STRING) return false;
        std::string_view list(r->str, r->len);
        int waiting = 0;
        size_t at = 0;
        while ((at = list.find(" name=coal-", at)) != std::string_view::npos) {
          size_t eol = list.find('\n', at);
          std::string_view line = list.substr(at, eol - at);
          if (line.find(" cmd=get") != std::string_view::npos && line.find(" oll=0 ") == std::string_view::npos)
            ++waiting;
          at = eol;
        }
        return waiting == kClients;
      },
      paused_at + 800ms);
  int right = 0;
  for (auto& conn : conns)
    if (next_reply(conn, kWait) == resp_bulk(value)) ++right;
  const long long g1 = redis_calls("get");
  const CacheStats s1 = stats();
  const long long coalesced = s1.get("coalesced") - s0.get("coalesced");
  std::cout << "[ info ] " << kClients << " concurrent misses: " << (g1 - g0) << " GET(s) reached Redis, coalesced "
            << coalesced << ", misses " << s1.get("misses") - s0.get("misses") << "\n";
  EXPECT_TRUE(all_waiting) << "the GETs did not all reach respite while Redis was paused (check not meaningful)";
  EXPECT_EQ(right, kClients);
  EXPECT_LE(g1 - g0, 2) << "concurrent misses were not coalesced";
  EXPECT_GE(coalesced, 1);
  EXPECT_EQ(s1.get("fills") - s0.get("fills"), 1);
}

// ---------------------------------------------------------------------------------------------
// BCAST mode, warm-up, RESPITE CACHE FLUSH.

class CacheBcastTest : public CacheTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_args = {"--config", write_config(dir_,
                                               "[cache]\n"
                                               "tracking = \"bcast\"\n"
                                               "bcast_prefixes = [\"user:\", \"cfg:\"]\n")};
    return o;
  }
  TempDir dir_;  // holds the config file
};

TEST_F(CacheBcastTest, OnlyPrefixedKeysAreCachedAndStayCoherent) {
  Client c = connect();
  EXPECT_EQ(stats().fields["mode"], "bcast");
  for (const auto& p : redis_clients_named(redis(), "respite-pool-", true))
    EXPECT_NE(p.at("flags").find('t'), std::string::npos) << p.at("name") << ": " << p.at("flags");
  ASSERT_EQ(redis().call({"SET", "user:1", "u1"}), "+OK");
  ASSERT_EQ(redis().call({"SET", "other:1", "o1"}), "+OK");
  cache_get(c, "user:1", "\"u1\"");
  const long long g0 = redis_calls("get"), hits0 = stat("hits");
  EXPECT_EQ(c.call({"GET", "other:1"}), "\"o1\"");
  EXPECT_EQ(c.call({"GET", "other:1"}), "\"o1\"");
  EXPECT_EQ(redis_calls("get"), g0 + 2) << "a key outside bcast_prefixes was cached";
  EXPECT_EQ(stat("hits"), hits0);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(redis().call({"SET", "user:1", cat("u", i)}), "+OK");
    ASSERT_EQ(fence(), "+OK");
    EXPECT_EQ(c.call({"GET", "user:1"}), cat("\"u", i, "\""));
    EXPECT_EQ(c.call({"GET", "user:1"}), cat("\"u", i, "\""));
  }
}

// Warm-up needs keys in Redis before respite starts: a second respite, with warm-up
// patterns, is started in front of the fixture's Redis once the keys are there.
TEST_F(CacheTest, WarmupPreloadsMatchingKeysUpToMaxKeysAtStartAndOnCommand) {
  for (int i = 0; i < 50; ++i) ASSERT_EQ(redis().call({"SET", cat("warm:", i), cat("w", i)}), "+OK");
  for (int i = 0; i < 5; ++i) ASSERT_EQ(redis().call({"SET", cat("cold:", i), cat("c", i)}), "+OK");
  TempDir dir;
  RespiteOptions ro;
  ro.upstream_url = stack().upstream_url();
  // The settings as docs/configuration.md names them (cache.warmup_*); the brief's contract
  // had a [cache.warmup] table with patterns / max_keys / keys_per_second.
  ro.extra_args = {"--config", write_config(dir,
                                            "[cache]\n"
                                            "warmup_patterns = [\"warm:*\"]\n"
                                            "warmup_max_keys = 30\n"
                                            "warmup_keys_per_second = 2000\n")};
  RespiteProcess warm(ro);
  Client wadmin = Client::tcp(warm.port());
  ASSERT_TRUE(wait_for_tracking(wadmin, deadline_in(kWait))) << cache_stats(wadmin).raw;
  auto wstat = [&](std::string_view name) { return cache_stats(wadmin).get(name); };
  ASSERT_TRUE(poll_until([&] { return wstat("entries") >= 30; }, deadline_in(kWait)))
      << "warm-up at start did not preload 30 keys: " << cache_stats(wadmin).raw;
  Client c = Client::tcp(warm.port());
  auto read_all = [&](const char* value_prefix) {
    const long long hits0 = wstat("hits"), g0 = redis_calls("get");
    for (int i = 0; i < 50; ++i) EXPECT_EQ(c.call({"GET", cat("warm:", i)}), cat("\"", value_prefix, i, "\""));
    EXPECT_EQ(wstat("hits") - hits0, 30) << "warm-up preloaded other than max_keys keys";
    EXPECT_EQ(redis_calls("get") - g0, 20);
  };
  read_all("w");
  const long long g1 = redis_calls("get");
  EXPECT_EQ(c.call({"GET", "cold:0"}), "\"c0\"");
  EXPECT_EQ(redis_calls("get"), g1 + 1) << "a key outside the warm-up patterns was preloaded";
  // Warmed entries are tracked like any other.
  for (int i = 0; i < 50; ++i) ASSERT_EQ(redis().call({"SET", cat("warm:", i), cat("x", i)}), "+OK");
  ASSERT_EQ(cache_fence(wadmin), "+OK");
  for (int i = 0; i < 50; ++i) EXPECT_EQ(c.call({"GET", cat("warm:", i)}), cat("\"x", i, "\""));
  // On command, after a flush.
  ASSERT_EQ(wadmin.call({"RESPITE", "CACHE", "FLUSH"}), "+OK");
  ASSERT_EQ(wadmin.call({"RESPITE", "CACHE", "WARMUP"}), "+OK");
  ASSERT_TRUE(poll_until([&] { return wstat("entries") >= 30; }, deadline_in(kWait)))
      << "RESPITE CACHE WARMUP did not preload 30 keys: " << cache_stats(wadmin).raw;
  read_all("x");
  if (HasFailure()) std::cerr << "---- warm-up respite log ----\n" << warm.log() << std::endl;
}

TEST_F(CacheTest, CacheFlushCommandDropsEverything) {
  Client c = connect();
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(redis().call({"SET", cat("cf:", i), "v"}), "+OK");
    cache_get(c, cat("cf:", i), "\"v\"");
  }
  ASSERT_EQ(admin().call({"RESPITE", "CACHE", "FLUSH"}), "+OK");
  EXPECT_EQ(stat("entries"), 0);
  EXPECT_EQ(stat("bytes_used"), 0);
  const long long g0 = redis_calls("get");
  EXPECT_EQ(c.call({"GET", "cf:0"}), "\"v\"");
  EXPECT_EQ(redis_calls("get"), g0 + 1);
  EXPECT_EQ(redis_calls("respite"), 0) << "a RESPITE command reached Redis";
}

}  // namespace
}  // namespace respite::test
