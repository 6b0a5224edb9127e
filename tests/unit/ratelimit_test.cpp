// Rate limits with a fake clock: rule matching (command classes, identities, precedence),
// reject and delay verdicts, transactions, reloads, the admin view, the delay queue.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config_loader.h"
#include "ratelimit/command_set.h"
#include "ratelimit/delay_queue.h"
#include "ratelimit/gcra.h"
#include "ratelimit/identity.h"
#include "ratelimit/limiter.h"

namespace respite::ratelimit {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000 * kMs;

const cmd::CommandTable& table() { return cmd::CommandTable::builtin(); }
const cmd::CommandInfo* info(std::string_view name) { return table().find(name); }

config::RateLimitRule rule(std::string name, double rate, uint32_t burst, std::vector<std::string> clients = {"*"},
                           std::vector<std::string> commands = {"@all"}) {
  config::RateLimitRule r;
  r.name = std::move(name);
  r.rate = rate;
  r.burst = burst;
  r.clients = std::move(clients);
  r.commands = std::move(commands);
  return r;
}

config::RateLimitRule delay_rule(std::string name, double rate, uint32_t burst, int max_wait_ms) {
  config::RateLimitRule r = rule(std::move(name), rate, burst);
  r.action = "delay";
  r.max_wait_ms = max_wait_ms;
  return r;
}

config::RateLimitConfig limits(std::vector<config::RateLimitRule> rules) {
  config::RateLimitConfig c;
  c.rules = std::move(rules);
  return c;
}

// A Limiter configured with `cfg` (the test fails if it is invalid).
struct Fixture {
  explicit Fixture(const config::RateLimitConfig& cfg) {
    std::string error;
    EXPECT_TRUE(limiter.configure(cfg, 0, error)) << error;
  }
  Limiter limiter{table()};
};

// Counts how many of `n` GETs at `now` pass.
int admitted(Limiter& l, ClientLimits& c, int n, uint64_t now, const char* command = "get") {
  int ok = 0;
  for (int i = 0; i < n; ++i) ok += l.admit(c, info(command), now, 0).kind == Verdict::Kind::Allow;
  return ok;
}

// ---- command classes ---------------------------------------------------------------------

bool set_matches(const std::vector<std::string>& words, std::string_view command,
                 const std::vector<config::RateLimitClass>& classes = {}) {
  CommandSet set;
  std::string error;
  EXPECT_TRUE(set.build(words, classes, table(), error)) << error;
  return set.matches(command.empty() ? nullptr : info(command));
}

TEST(RateLimitCommands, ClassesFollowTheCommandTable) {
  EXPECT_TRUE(set_matches({"@write"}, "set"));
  EXPECT_FALSE(set_matches({"@write"}, "get"));
  EXPECT_TRUE(set_matches({"@read"}, "get"));
  EXPECT_FALSE(set_matches({"@read"}, "set"));
  EXPECT_TRUE(set_matches({"@blocking"}, "blpop"));
  EXPECT_FALSE(set_matches({"@blocking"}, "lpop"));
  EXPECT_TRUE(set_matches({"@admin"}, "config|set"));
  EXPECT_TRUE(set_matches({"@pubsub"}, "publish"));
  for (const char* c : {"scan", "sscan", "hscan", "zscan", "keys"}) EXPECT_TRUE(set_matches({"@scan"}, c)) << c;
  EXPECT_FALSE(set_matches({"@scan"}, "get"));
  EXPECT_TRUE(set_matches({"@hash"}, "hget"));
  EXPECT_TRUE(set_matches({"@SCRIPTING"}, "eval"));  // class names are case-insensitive
}

TEST(RateLimitCommands, OnlyAllCountsUnknownCommands) {
  EXPECT_TRUE(set_matches({"@all"}, ""));
  EXPECT_FALSE(set_matches({"@write"}, ""));
  EXPECT_FALSE(set_matches({"get"}, ""));
}

TEST(RateLimitCommands, NamesCoverSubcommandsOrOne) {
  EXPECT_TRUE(set_matches({"GET"}, "get"));
  EXPECT_FALSE(set_matches({"GET"}, "set"));
  EXPECT_TRUE(set_matches({"config"}, "config|set"));
  EXPECT_TRUE(set_matches({"config"}, "config|get"));
  EXPECT_TRUE(set_matches({"CONFIG SET"}, "config|set"));
  EXPECT_TRUE(set_matches({"config|set"}, "config|set"));
  EXPECT_FALSE(set_matches({"config|set"}, "config|get"));
}

TEST(RateLimitCommands, NamedClasses) {
  std::vector<config::RateLimitClass> classes = {{"heavy", {"KEYS", "smembers"}}};
  EXPECT_TRUE(set_matches({"@heavy"}, "keys", classes));
  EXPECT_TRUE(set_matches({"@heavy"}, "smembers", classes));
  EXPECT_FALSE(set_matches({"@heavy"}, "get", classes));
}

TEST(RateLimitCommands, UnknownNamesAndClassesAreErrors) {
  CommandSet set;
  std::string error;
  EXPECT_FALSE(set.build({"gte"}, {}, table(), error));
  EXPECT_NE(error.find("unknown command 'gte'"), std::string::npos) << error;
  EXPECT_FALSE(set.build({"@writes"}, {}, table(), error));
  EXPECT_NE(error.find("unknown command class '@writes'"), std::string::npos) << error;
  EXPECT_FALSE(set.build({"@heavy"}, {{"heavy", {"@write"}}}, table(), error));
  EXPECT_NE(error.find("class members must be command names"), std::string::npos) << error;
}

TEST(RateLimitCommands, ConfigCheckRejectsUnknownCommandsAndBuiltinClassNames) {
  std::string error;
  EXPECT_FALSE(Limiter::check(limits({rule("r", 5, 5, {"*"}, {"NOPE"})}), table(), error));
  EXPECT_NE(error.find("rule 'r'"), std::string::npos) << error;
  config::RateLimitConfig c = limits({rule("r", 5, 5)});
  c.classes.push_back({"write", {"set"}});
  EXPECT_FALSE(Limiter::check(c, table(), error));
  EXPECT_NE(error.find("built-in class name"), std::string::npos) << error;
}

TEST(RateLimitCommands, ExampleConfigsPassTheCheck) {
  for (const char* file : {"rate-limit.toml", "rate-limit-advanced.toml"}) {
    config::CliOptions cli;
    cli.config_path = std::string(RESPITE_SOURCE_DIR) + "/conf/examples/" + file;
    config::Config cfg;
    std::string error;
    ASSERT_TRUE(config::load_config(cli, config::Environment{}, cfg, error)) << file << ": " << error;
    EXPECT_TRUE(Limiter::check(cfg.ratelimit, table(), error)) << file << ": " << error;
  }
}

// ---- identities --------------------------------------------------------------------------

TEST(RateLimitIdentity, UserThenNameThenConnection) {
  EXPECT_EQ(identity_of({true, true, "alice", "web-1", "10.0.0.5:4000", 7}), "user:alice");
  // Before AUTH, or without client authentication, the user does not count.
  EXPECT_EQ(identity_of({true, false, "default", "web-1", "10.0.0.5:4000", 7}), "name:web-1");
  EXPECT_EQ(identity_of({false, true, "default", "web-1", "10.0.0.5:4000", 7}), "name:web-1");
  EXPECT_EQ(identity_of({false, true, "default", "", "10.0.0.5:4000", 7}), "addr:10.0.0.5:4000");
  EXPECT_EQ(identity_of({false, true, "default", "", "[::1]:4000", 7}), "addr:[::1]:4000");
  EXPECT_EQ(identity_of({false, true, "default", "", "unix", 7}), "addr:unix:7");
}

// ---- verdicts ------------------------------------------------------------------------------

TEST(RateLimiter, BurstThenSteadyRateThenRefill) {
  Fixture f(limits({rule("r", 100, 10)}));
  ClientLimits c;
  f.limiter.set_identity(c, "name:a");
  uint64_t now = 10 * kSec;
  EXPECT_EQ(admitted(f.limiter, c, 20, now), 10);
  EXPECT_EQ(admitted(f.limiter, c, 5, now + 10 * kMs), 1);   // one slot per 10 ms
  EXPECT_EQ(admitted(f.limiter, c, 5, now + 35 * kMs), 2);   // two more slots by then
  EXPECT_EQ(admitted(f.limiter, c, 50, now + 10 * kSec), 10);  // idle: the burst, no more
}

TEST(RateLimiter, RefusalNamesTheRuleAndTheRetryDelay) {
  Fixture f(limits({rule("per-client", 100, 2)}));
  ClientLimits c;
  f.limiter.set_identity(c, "name:a");
  uint64_t now = kSec;
  ASSERT_EQ(admitted(f.limiter, c, 2, now), 2);
  Verdict v = f.limiter.admit(c, info("get"), now + 3 * kMs, 0);
  ASSERT_EQ(v.kind, Verdict::Kind::Reject);
  EXPECT_EQ(v.wait_ns, 7 * kMs);
  EXPECT_EQ(Limiter::refusal(v),
            "-RATELIMITED limit 'per-client' exceeded (100 requests/s, burst 2); retry in 7 ms\r\n");
  // The retry delay is right: refused before it, admitted at it.
  EXPECT_EQ(f.limiter.admit(c, info("get"), now + 9 * kMs, 0).kind, Verdict::Kind::Reject);
  EXPECT_EQ(f.limiter.admit(c, info("get"), now + 10 * kMs, 0).kind, Verdict::Kind::Allow);
}

TEST(RateLimiter, FractionalRateAndRetryRoundedUp) {
  Fixture f(limits({rule("slow", 0.5, 1)}));  // one every 2 s
  ClientLimits c;
  f.limiter.set_identity(c, "name:a");
  ASSERT_EQ(admitted(f.limiter, c, 1, kSec), 1);
  Verdict v = f.limiter.admit(c, info("get"), kSec + 1, 0);
  ASSERT_EQ(v.kind, Verdict::Kind::Reject);
  EXPECT_NE(Limiter::refusal(v).find("(0.5 requests/s, burst 1); retry in 2000 ms"), std::string::npos)
      << Limiter::refusal(v);
}

TEST(RateLimiter, ClientScopeGivesEachIdentityItsBucketGlobalScopeShares) {
  config::RateLimitRule global = rule("all", 10, 10, {"name:g-*"});
  global.scope = "global";
  Fixture f(limits({rule("each", 100, 5, {"name:c-*"}), global}));
  ClientLimits a, b, g1, g2;
  f.limiter.set_identity(a, "name:c-a");
  f.limiter.set_identity(b, "name:c-b");
  f.limiter.set_identity(g1, "name:g-1");
  f.limiter.set_identity(g2, "name:g-2");
  EXPECT_EQ(admitted(f.limiter, a, 10, kSec), 5);
  EXPECT_EQ(admitted(f.limiter, b, 10, kSec), 5);  // untouched by a
  EXPECT_EQ(admitted(f.limiter, g1, 6, kSec), 6);
  EXPECT_EQ(admitted(f.limiter, g2, 6, kSec), 4);  // the rest of the shared 10
  // Two connections of one identity share its bucket.
  ClientLimits a2;
  f.limiter.set_identity(a2, "name:c-a");
  EXPECT_EQ(admitted(f.limiter, a2, 1, kSec), 0);
}

TEST(RateLimiter, FirstMatchingRuleOfAGroupWinsOtherGroupsAlsoApply) {
  Fixture f(limits({
      rule("vip", 1000, 50, {"user:vip"}),        // group: client + @all
      rule("everyone", 100, 3, {"*"}),             // same group: only for the others
      rule("writes", 100, 2, {"*"}, {"@write"}),   // another group: applies to all, vip too
  }));
  ClientLimits vip, other;
  f.limiter.set_identity(vip, "user:vip");
  f.limiter.set_identity(other, "user:bob");
  EXPECT_EQ(vip.rule_count(), 2u);
  EXPECT_EQ(other.rule_count(), 2u);
  EXPECT_EQ(admitted(f.limiter, vip, 20, kSec), 20);            // not held to "everyone"
  EXPECT_EQ(admitted(f.limiter, other, 20, kSec), 3);
  EXPECT_EQ(admitted(f.limiter, vip, 5, kSec, "set"), 2);       // "writes" applies to vip as well
}

TEST(RateLimiter, ARequestMustPassEveryRuleAndARefusalChargesNone) {
  Fixture f(limits({rule("all", 100, 5), rule("writes", 100, 1, {"*"}, {"@write"})}));
  ClientLimits c;
  f.limiter.set_identity(c, "name:a");
  EXPECT_EQ(admitted(f.limiter, c, 1, kSec, "set"), 1);
  EXPECT_EQ(admitted(f.limiter, c, 3, kSec, "set"), 0);  // "writes" refuses; "all" is not charged
  EXPECT_EQ(admitted(f.limiter, c, 10, kSec, "get"), 4);   // 5 - the one SET
}

TEST(RateLimiter, ExemptIdentitiesAreNeverLimited) {
  config::RateLimitConfig cfg = limits({rule("r", 1, 1)});
  cfg.exempt = {"name:ops", "user:admin*"};
  Fixture f(cfg);
  ClientLimits ops, admin, other;
  f.limiter.set_identity(ops, "name:ops");
  f.limiter.set_identity(admin, "user:admin-2");
  f.limiter.set_identity(other, "name:app");
  EXPECT_TRUE(ops.exempt());
  EXPECT_EQ(admitted(f.limiter, ops, 1000, kSec), 1000);
  EXPECT_EQ(admitted(f.limiter, admin, 1000, kSec), 1000);
  EXPECT_EQ(admitted(f.limiter, other, 1000, kSec), 1);
}

TEST(RateLimiter, IdentityChangeMovesTheClientToItsNewBucket) {
  Fixture f(limits({rule("r", 10, 2, {"name:*"}), rule("anon", 10, 1, {"addr:*"})}));
  ClientLimits c;
  f.limiter.set_identity(c, "addr:127.0.0.1:5000");
  // "r" does not match an addr: identity, so "anon" (same group, next in order) applies.
  EXPECT_EQ(admitted(f.limiter, c, 5, kSec), 1);
  // After CLIENT SETNAME, "r" matches first.
  f.limiter.set_identity(c, "name:web");
  EXPECT_EQ(admitted(f.limiter, c, 5, kSec), 2);
}

TEST(RateLimiter, DelayHoldsInArrivalOrderUpToTheMaxWait) {
  Fixture f(limits({delay_rule("d", 100, 1, 50)}));  // one per 10 ms, hold at most 50 ms
  ClientLimits c;
  f.limiter.set_identity(c, "name:a");
  uint64_t now = kSec;
  std::vector<uint64_t> waits;
  for (int i = 0; i < 8; ++i) {
    Verdict v = f.limiter.admit(c, info("get"), now, 0);
    if (v.kind == Verdict::Kind::Reject) break;
    waits.push_back(v.kind == Verdict::Kind::Allow ? 0 : v.wait_ns);
  }
  // 0, then one slot after another, until the wait would pass 50 ms.
  EXPECT_EQ(waits, (std::vector<uint64_t>{0, 10 * kMs, 20 * kMs, 30 * kMs, 40 * kMs, 50 * kMs}));
  Verdict v = f.limiter.admit(c, info("get"), now, 0);
  ASSERT_EQ(v.kind, Verdict::Kind::Reject);
  EXPECT_EQ(v.wait_ns, 60 * kMs);
  EXPECT_FALSE(v.queue_full);
}

TEST(RateLimiter, DelayBetweenClientsKeepsTheirOrder) {
  config::RateLimitRule d = delay_rule("d", 10, 1, 1000);
  d.scope = "global";
  Fixture f(limits({d}));
  ClientLimits a, b, c;
  f.limiter.set_identity(a, "name:a");
  f.limiter.set_identity(b, "name:b");
  f.limiter.set_identity(c, "name:c");
  EXPECT_EQ(f.limiter.admit(a, info("get"), kSec, 0).wait_ns, 0u);
  EXPECT_EQ(f.limiter.admit(b, info("get"), kSec, 0).wait_ns, 100 * kMs);
  EXPECT_EQ(f.limiter.admit(c, info("get"), kSec + 10 * kMs, 0).wait_ns, 190 * kMs);
  EXPECT_EQ(f.limiter.admit(a, info("get"), kSec + 20 * kMs, 0).wait_ns, 280 * kMs);
}

TEST(RateLimiter, FullDelayQueueRefuses) {
  Fixture f(limits({delay_rule("d", 100, 1, 1000)}));
  ClientLimits c;
  f.limiter.set_identity(c, "name:a");
  ASSERT_EQ(admitted(f.limiter, c, 1, kSec), 1);
  Verdict v = f.limiter.admit(c, info("get"), kSec, /*held=*/1024);  // ratelimit.max_delayed held already
  ASSERT_EQ(v.kind, Verdict::Kind::Reject);
  EXPECT_TRUE(v.queue_full);
  EXPECT_NE(Limiter::refusal(v).find(": too many requests delayed; retry in 10 ms"), std::string::npos);
  EXPECT_EQ(f.limiter.admit(c, info("get"), kSec, 0).kind, Verdict::Kind::Delay);  // nothing was taken
}

TEST(RateLimiter, RejectBeatsDelay) {
  Fixture f(limits({delay_rule("d", 10, 1, 1000), rule("r", 10, 1, {"*"}, {"@write"})}));
  ClientLimits c;
  f.limiter.set_identity(c, "name:a");
  ASSERT_EQ(admitted(f.limiter, c, 1, kSec, "set"), 1);
  Verdict v = f.limiter.admit(c, info("set"), kSec, 0);
  EXPECT_EQ(v.kind, Verdict::Kind::Reject);
  EXPECT_EQ(f.limiter.admit(c, info("get"), kSec, 0).kind, Verdict::Kind::Delay);
}

TEST(RateLimiter, TransactionCostsOnePerQueuedCommandOfTheRule) {
  Fixture f(limits({rule("writes", 10, 3, {"*"}, {"@write"})}));
  ClientLimits c;
  f.limiter.set_identity(c, "name:a");
  std::vector<const cmd::CommandInfo*> tx = {info("set"), info("get"), info("incr"), nullptr};
  EXPECT_EQ(f.limiter.admit_batch(c, tx, kSec, 0).kind, Verdict::Kind::Allow);  // 2 writes
  EXPECT_EQ(f.limiter.admit_batch(c, tx, kSec, 0).kind, Verdict::Kind::Reject);  // 1 token left
  std::vector<const cmd::CommandInfo*> reads = {info("get"), info("get")};
  EXPECT_EQ(f.limiter.admit_batch(c, reads, kSec, 0).kind, Verdict::Kind::Allow);  // costs nothing here
  EXPECT_EQ(admitted(f.limiter, c, 2, kSec, "set"), 1);
}

TEST(RateLimiter, TransactionLargerThanTheBurstWaitsForAFullBucketThenOwes) {
  Fixture f(limits({rule("r", 10, 3)}));
  ClientLimits c;
  f.limiter.set_identity(c, "name:a");
  std::vector<const cmd::CommandInfo*> big(6, info("set"));
  EXPECT_EQ(admitted(f.limiter, c, 1, kSec), 1);
  EXPECT_EQ(f.limiter.admit_batch(c, big, kSec, 0).kind, Verdict::Kind::Reject);  // not full
  EXPECT_EQ(f.limiter.admit_batch(c, big, kSec + 100 * kMs, 0).kind, Verdict::Kind::Allow);
  // 6 taken from a full bucket of 3: it owes 3, so the next request passes 400 ms later
  // (when one token is back), not 100 ms later.
  EXPECT_EQ(admitted(f.limiter, c, 1, kSec + 450 * kMs), 0);
  EXPECT_EQ(admitted(f.limiter, c, 1, kSec + 500 * kMs), 1);
}

TEST(RateLimiter, AccuracyOverFiveSeconds) {
  // 1,000 requests/s for one identity, hammered from 20 connections every 50 us for 5 s.
  Fixture f(limits({rule("r", 1000, 10, {"name:hammer"})}));
  std::vector<ClientLimits> conns(20);
  for (auto& c : conns) f.limiter.set_identity(c, "name:hammer");
  int ok = 0;
  const uint64_t start = 100 * kSec;
  for (uint64_t t = start; t < start + 5 * kSec; t += 50'000) {
    for (auto& c : conns) ok += f.limiter.admit(c, info("get"), t, 0).kind == Verdict::Kind::Allow;
  }
  // In [0, 5 s): the burst of 10 at 0, then one at each whole millisecond from 1 to 4999.
  EXPECT_EQ(ok, 5009);
}

// ---- reload ----------------------------------------------------------------------------------

TEST(RateLimiterReload, KeepsBucketsOfUnchangedRulesWithTheNewRate) {
  Fixture f(limits({rule("keep", 10, 5), rule("other", 10, 5, {"*"}, {"@write"})}));
  ClientLimits c;
  f.limiter.set_identity(c, "name:a");
  ASSERT_EQ(admitted(f.limiter, c, 5, kSec), 5);
  EXPECT_EQ(f.limiter.generation(), 1u);
  std::string error;
  // A higher rate and burst: the 5 requests taken stay taken (no refill), and the new burst's
  // headroom is there at once.
  ASSERT_TRUE(f.limiter.configure(limits({rule("keep", 100, 8), rule("other", 10, 5, {"*"}, {"@write"})}), kSec, error));
  EXPECT_EQ(f.limiter.generation(), 2u);
  EXPECT_EQ(admitted(f.limiter, c, 20, kSec), 3);  // 8 - the 5 already taken
  EXPECT_EQ(admitted(f.limiter, c, 20, kSec + 10 * kMs), 1);  // then 100/s
  EXPECT_NE(f.limiter.stats_text(0).find("rule_keep:scope=client,commands=@all,rate=100,burst=8"), std::string::npos);
}

TEST(RateLimiterReload, NewOrChangedScopeRulesStartFull) {
  Fixture f(limits({rule("r", 10, 2)}));
  ClientLimits c;
  f.limiter.set_identity(c, "name:a");
  ASSERT_EQ(admitted(f.limiter, c, 5, kSec), 2);
  config::RateLimitRule global = rule("r", 10, 2);
  global.scope = "global";
  std::string error;
  ASSERT_TRUE(f.limiter.configure(limits({global}), kSec, error));
  EXPECT_EQ(admitted(f.limiter, c, 5, kSec), 2);
  ASSERT_TRUE(f.limiter.configure(limits({}), kSec, error));
  EXPECT_FALSE(f.limiter.active());
}

TEST(RateLimiterReload, InvalidConfigChangesNothing) {
  Fixture f(limits({rule("r", 10, 2)}));
  std::string error;
  EXPECT_FALSE(f.limiter.configure(limits({rule("r", 10, 2, {"*"}, {"@nope"})}), kSec, error));
  EXPECT_EQ(f.limiter.generation(), 1u);
  ClientLimits c;
  f.limiter.set_identity(c, "name:a");
  EXPECT_EQ(admitted(f.limiter, c, 5, kSec), 2);
}

TEST(RateLimiterReload, RemovedRuleLetsGoOfItsClients) {
  Fixture f(limits({rule("gone", 1, 1)}));
  ClientLimits c;
  f.limiter.set_identity(c, "name:a");
  ASSERT_EQ(admitted(f.limiter, c, 3, kSec), 1);
  std::string error;
  ASSERT_TRUE(f.limiter.configure(limits({rule("new", 1000, 100, {"name:z"})}), kSec, error));
  EXPECT_EQ(admitted(f.limiter, c, 50, kSec), 50);  // rebound at its next request: no rule applies
  EXPECT_EQ(c.rule_count(), 0u);
}

// ---- admin view and housekeeping ---------------------------------------------------------------

TEST(RateLimiterStats, CountersAndBusyBuckets) {
  Fixture f(limits({rule("r", 10, 4), delay_rule("d", 1000, 1, 100)}));
  ClientLimits a, b;
  f.limiter.set_identity(a, "name:a");
  f.limiter.set_identity(b, "name:b");
  admitted(f.limiter, a, 6, kSec);
  admitted(f.limiter, b, 1, kSec);
  std::string stats = f.limiter.stats_text(3);
  EXPECT_NE(stats.find("enabled:1\r\n"), std::string::npos) << stats;
  EXPECT_NE(stats.find("delayed_now:3\r\n"), std::string::npos) << stats;
  EXPECT_NE(stats.find("rule_r:scope=client,commands=@all,rate=10,burst=4,action=reject,max_wait_ms=0,"
                       "allowed=5,delayed=0,rejected=2,buckets=2"),
            std::string::npos)
      << stats;
  std::string buckets = f.limiter.buckets_text(kSec, 100);
  EXPECT_EQ(buckets.find("rule=r identity=name:a tokens=0 burst=4\r\n"), 0u) << buckets;  // fewest first
  EXPECT_NE(buckets.find("rule=r identity=name:b tokens=3 burst=4\r\n"), std::string::npos) << buckets;
  EXPECT_EQ(f.limiter.buckets_text(kSec, 1), "rule=r identity=name:a tokens=0 burst=4\r\n");
  f.limiter.reset();
  EXPECT_EQ(f.limiter.buckets_text(kSec, 100), "");
}

TEST(RateLimiterStats, SweepForgetsOnlyFullUnusedBuckets) {
  Fixture f(limits({rule("r", 10, 2)}));
  auto buckets = [&] {
    std::string s = f.limiter.stats_text(0);
    size_t at = s.find("buckets=");
    return at == std::string::npos ? -1 : std::stoi(s.substr(at + 8));
  };
  {
    ClientLimits gone;
    f.limiter.set_identity(gone, "name:gone");
    admitted(f.limiter, gone, 2, kSec);
  }
  ClientLimits idle;
  f.limiter.set_identity(idle, "name:idle");
  EXPECT_EQ(buckets(), 2);
  f.limiter.sweep(kSec + 50 * kMs);   // "gone" is not full yet: kept (a reconnect must not refill it)
  EXPECT_EQ(buckets(), 2);
  f.limiter.sweep(kSec + 300 * kMs);  // full and unused: forgotten; "idle" is bound: kept
  EXPECT_EQ(buckets(), 1);
}

TEST(RateLimiterStats, BucketsPerRuleAreCappedNewIdentitiesShareAnOverflowBucket) {
  Fixture f(limits({rule("r", 10, 2)}));
  std::vector<ClientLimits> clients(100'002);
  for (size_t i = 0; i < clients.size(); ++i) f.limiter.set_identity(clients[i], "name:c" + std::to_string(i));
  EXPECT_NE(f.limiter.stats_text(0).find(",buckets=100000\r\n"), std::string::npos);
  // The two beyond the cap share one bucket: 2 requests between them.
  EXPECT_EQ(admitted(f.limiter, clients[100'000], 5, kSec) + admitted(f.limiter, clients[100'001], 5, kSec), 2);
  EXPECT_EQ(admitted(f.limiter, clients[0], 5, kSec), 2);  // one with its own bucket
}

// ---- the delay queue ----------------------------------------------------------------------------

TEST(DelayQueue, ReleasesEarliestFirstAndTiesInArrivalOrder) {
  DelayQueue q;
  q.push(30, 1);
  q.push(10, 2);
  q.push(20, 3);
  q.push(10, 4);
  q.push(20, 5);
  EXPECT_EQ(q.next_due(), 10u);
  std::vector<uint64_t> out;
  q.pop_due(20, [&](uint64_t id) { out.push_back(id); });
  EXPECT_EQ(out, (std::vector<uint64_t>{2, 4, 3, 5}));
  EXPECT_EQ(q.size(), 1u);
  q.pop_due(29, [&](uint64_t id) { out.push_back(id); });
  EXPECT_EQ(q.size(), 1u);
  q.pop_due(30, [&](uint64_t id) { out.push_back(id); });
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(out.back(), 1u);
}

}  // namespace
}  // namespace respite::ratelimit
