// The near-cache against a real Redis, the basics: the tracking set-up, hits that Redis never
// sees, coherence with writes made directly on Redis (invalidation messages, RESPITE CACHE
// FENCE), MGET/HMGET assembled from cached entries, pipelines of hits and misses, what is not
// cached, rules, bypass and the cache turned off. The fixture is in cache_fixture.h.
#include <algorithm>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "integration/cache_fixture.h"

namespace respite::test {
namespace {

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
  // Lifetimes count from respite's loop clock when the read was sent (millisecond resolution,
  // taken at the start of the loop iteration, so at or a little before t0): an entry may
  // expire a few ms early, by design never late.
  EXPECT_GE(missed_after, 190) << "expired well before its max_ttl_ms";
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

}  // namespace
}  // namespace respite::test
