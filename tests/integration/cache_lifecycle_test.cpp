// The near-cache against a real Redis, over its life: losing the invalidation connection or a
// pooled connection, Redis restarting, evicting or not allowing tracking, an unanswered PING;
// the memory budget; miss coalescing; BCAST mode, warm-up and RESPITE CACHE FLUSH. The fixture
// is in cache_fixture.h.
#include <algorithm>
#include <atomic>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "integration/cache_fixture.h"

namespace respite::test {
namespace {

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
