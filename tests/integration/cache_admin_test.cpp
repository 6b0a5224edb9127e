// The near-cache's admin command RESPITE CACHE FLUSH <pattern> against a real Redis: only the
// entries of matching keys go (the next read of one reaches Redis, the others stay hits), the
// reply counts them, arity errors, and the admin.users guard when clients authenticate; and a
// reload of the cache rules and budget. The fixture is in cache_fixture.h.
#include <string>

#include "integration/cache_fixture.h"

namespace respite::test {
namespace {

TEST_F(CacheTest, FlushPatternDropsOnlyTheEntriesOfMatchingKeys) {
  Client c = connect();
  for (const char* key : {"user:1", "user:2", "session:1"}) {
    ASSERT_EQ(redis().call({"SET", key, cat("v-", key)}), "+OK");
    cache_get(c, key, cat("\"v-", key, "\""));
  }
  ASSERT_EQ(stat("entries"), 3);
  const long long bytes0 = stat("bytes_used"), flushes0 = stat("flushes");

  EXPECT_EQ(admin().call({"RESPITE", "CACHE", "FLUSH", "user:*"}), ":2");
  CacheStats s = stats();
  EXPECT_EQ(s.get("entries"), 1) << s.raw;
  EXPECT_LT(s.get("bytes_used"), bytes0) << s.raw;
  EXPECT_EQ(s.get("pattern_flushes"), 1) << s.raw;
  EXPECT_EQ(s.get("pattern_flushed_entries"), 2) << s.raw;
  EXPECT_EQ(s.get("flushes"), flushes0) << s.raw;  // not the whole cache

  // user:1 is a miss that Redis answers; session:1 is still a hit Redis never sees.
  const long long g0 = redis_calls("get"), hits0 = stat("hits");
  EXPECT_EQ(c.call({"GET", "user:1"}), "\"v-user:1\"");
  EXPECT_EQ(redis_calls("get"), g0 + 1) << "a flushed key was served from the cache";
  EXPECT_EQ(c.call({"GET", "session:1"}), "\"v-session:1\"");
  EXPECT_EQ(redis_calls("get"), g0 + 1) << "a key outside the pattern was flushed";
  EXPECT_EQ(stat("hits"), hits0 + 1);

  // Nothing matches: 0, counted all the same. The subcommand is case-insensitive.
  EXPECT_EQ(admin().call({"respite", "cache", "flush", "nomatch:*"}), ":0");
  EXPECT_EQ(stat("pattern_flushes"), 2);
  EXPECT_EQ(redis_calls("respite"), 0) << "a RESPITE command reached Redis";
}

TEST_F(CacheTest, FlushPatternFollowsRedisGlobRulesAcrossVariants) {
  Client c = connect();
  ASSERT_EQ(redis().call({"SET", "g:a1", "1"}), "+OK");
  ASSERT_EQ(redis().call({"SET", "g:b1", "2"}), "+OK");
  ASSERT_EQ(redis().call({"HSET", "g:h1", "f", "3"}), ":1");
  ASSERT_EQ(redis().call({"SET", "g:a12", "4"}), "+OK");
  cache_get(c, "g:a1", "\"1\"");
  cache_get(c, "g:b1", "\"2\"");
  cache_get(c, "g:a12", "\"4\"");
  EXPECT_EQ(make_cached(c, {"HGET", "g:h1", "f"}, "hget"), "\"3\"");
  EXPECT_EQ(make_cached(c, {"STRLEN", "g:a1"}, "strlen"), ":1");  // a second variant of g:a1
  ASSERT_EQ(stat("entries"), 5);

  // g:[ah]? matches g:a1 (GET and STRLEN) and g:h1 (HGET), not g:b1 nor g:a12.
  EXPECT_EQ(admin().call({"RESPITE", "CACHE", "FLUSH", "g:[ah]?"}), ":3");
  EXPECT_EQ(stat("entries"), 2);
  const long long get0 = redis_calls("get"), hget0 = redis_calls("hget"), strlen0 = redis_calls("strlen");
  EXPECT_EQ(c.call({"GET", "g:b1"}), "\"2\"");
  EXPECT_EQ(c.call({"GET", "g:a12"}), "\"4\"");
  EXPECT_EQ(redis_calls("get"), get0) << "a key outside the pattern was flushed";
  EXPECT_EQ(c.call({"GET", "g:a1"}), "\"1\"");
  EXPECT_EQ(c.call({"HGET", "g:h1", "f"}), "\"3\"");
  EXPECT_EQ(c.call({"STRLEN", "g:a1"}), ":1");
  EXPECT_EQ(redis_calls("get"), get0 + 1);
  EXPECT_EQ(redis_calls("hget"), hget0 + 1);
  EXPECT_EQ(redis_calls("strlen"), strlen0 + 1);
}

TEST_F(CacheTest, FlushWithoutPatternStillRepliesOkAndBadArityIsAnError) {
  const long long flushes0 = stat("flushes");  // tracking's set-up flushed once already
  EXPECT_EQ(admin().call({"RESPITE", "CACHE", "FLUSH"}), "+OK");
  EXPECT_EQ(admin().call({"RESPITE", "CACHE", "FLUSH", "a*", "b*"}),
            "-ERR wrong number of arguments for 'respite cache flush' command");
  EXPECT_EQ(stat("pattern_flushes"), 0);
  EXPECT_EQ(stat("flushes"), flushes0 + 1);
}

// With client authentication on, RESPITE CACHE FLUSH <pattern> is an admin command like the
// others: refused to a user outside admin.users, and then drops nothing.
class CacheAdminAuthTest : public CacheTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_args = {"--config", write_config(dir_,
                                               "[client]\n"
                                               "users = [{ name = \"app\", password = \"app-pw\" },"
                                               " { name = \"boss\", password = \"boss-pw\" }]\n"
                                               "[admin]\n"
                                               "users = [\"boss\"]\n")};
    o.wait_upstream_ready = false;  // its probe does not authenticate
    return o;
  }
  // The fixture's admin client has to log in before it can read the stats.
  bool expect_tracking() override { return false; }
  TempDir dir_;  // holds the config file
};

TEST_F(CacheAdminAuthTest, FlushPatternNeedsAnAdminUser) {
  ASSERT_EQ(admin().call({"AUTH", "boss", "boss-pw"}), "+OK");
  ASSERT_TRUE(wait_for_tracking(admin(), deadline_in(kWait))) << stats().raw;
  Client app = connect();
  ASSERT_EQ(app.call({"AUTH", "app", "app-pw"}), "+OK");
  ASSERT_EQ(redis().call({"SET", "user:1", "u"}), "+OK");
  cache_get(app, "user:1", "\"u\"");

  EXPECT_EQ(app.call({"RESPITE", "CACHE", "FLUSH", "user:*"}),
            "-NOPERM user 'app' may not run RESPITE admin commands (see admin.users)");
  EXPECT_EQ(stat("entries"), 1);
  EXPECT_EQ(stat("pattern_flushes"), 0);
  EXPECT_EQ(admin().call({"RESPITE", "CACHE", "FLUSH", "user:*"}), ":1");
  EXPECT_EQ(stat("entries"), 0);
}

// Reloading cache.rules applies to the running cache: the entries admitted under the old rules
// go, and a key the new rules exclude is no longer cached; cache.memory_bytes shrinks the budget.
class CacheReloadTest : public CacheTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_args = {"--config", write_config(dir_, "[cache]\nmemory_bytes = \"8m\"\n")};
    return o;
  }
  TempDir dir_;  // holds the config file
};

TEST_F(CacheReloadTest, RulesAndBudgetApplyOnReload) {
  Client c = connect();
  ASSERT_EQ(redis().call({"SET", "nocache:1", "a"}), "+OK");
  ASSERT_EQ(redis().call({"SET", "other:1", "b"}), "+OK");
  cache_get(c, "nocache:1", "\"a\"");
  cache_get(c, "other:1", "\"b\"");
  ASSERT_EQ(stat("entries"), 2);
  ASSERT_EQ(stat("budget_bytes"), 8000000) << stats().raw;

  write_config(dir_, "[cache]\nmemory_bytes = \"4m\"\nrules = [{ pattern = \"nocache:*\", cache = false }]\n");
  EXPECT_EQ(admin().call({"RESPITE", "RELOAD"}), "+OK");  // every changed key applies live
  EXPECT_EQ(stat("entries"), 0) << "entries admitted under the old rules were kept";
  EXPECT_EQ(stat("budget_bytes"), 4000000) << stats().raw;

  // nocache:1 now always reaches Redis; other:1 is cached again.
  const long long g0 = redis_calls("get");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.call({"GET", "nocache:1"}), "\"a\"");
  EXPECT_EQ(redis_calls("get"), g0 + 3);
  cache_get(c, "other:1", "\"b\"");
  EXPECT_EQ(stat("entries"), 1);
}

}  // namespace
}  // namespace respite::test
