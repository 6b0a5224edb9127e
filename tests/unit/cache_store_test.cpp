// cache::Store: identity and lookup, invalidation of every variant of a key, expiry, fill
// tickets (an invalidation that overtakes its read's reply), exact memory accounting against a
// reference model, and eviction quality (S3-FIFO against LRU on Zipf and scan traces).
#include "cache/store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace respite::cache {
namespace {

using Args = std::vector<std::string_view>;
using FillResult = Store::FillResult;

constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
constexpr size_t kBig = size_t{1} << 30;

Store::Args span(const Args& a) { return Store::Args(a.data(), a.size()); }

const std::string* find(Store& s, const Args& args, uint64_t now = 0, int db = 0) {
  return s.find(db, span(args), now);
}

// One read of `key` completed without interference: ticket, then fill.
FillResult fill(Store& s, std::string_view key, const Args& args, std::string_view value,
                uint64_t expires = kNever, int db = 0) {
  Store::Ticket t = s.begin_fill(hash_key(key));
  return s.finish_fill(t, db, span(args), value, expires);
}

TEST(CacheStore, HitMissAndCaseInsensitiveCommandName) {
  Store s(kBig, 1024);
  EXPECT_EQ(find(s, {"GET", "k"}), nullptr);
  ASSERT_EQ(fill(s, "k", {"GET", "k"}, "$1\r\nv\r\n"), FillResult::Stored);
  const std::string* v = find(s, {"GET", "k"});
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(*v, "$1\r\nv\r\n");
  EXPECT_NE(find(s, {"get", "k"}), nullptr);
  EXPECT_NE(find(s, {"gEt", "k"}), nullptr);
  EXPECT_EQ(find(s, {"GET", "K"}), nullptr);          // keys are byte-exact
  EXPECT_EQ(find(s, {"GET", "k"}, 0, 1), nullptr);    // another database
  EXPECT_EQ(find(s, {"GETEX", "k"}), nullptr);
  EXPECT_EQ(s.stats().hits, 3u);
  EXPECT_EQ(s.stats().misses, 4u);
  EXPECT_EQ(s.stats().fills, 1u);
  EXPECT_TRUE(s.contains(0, span({"Get", "k"}), 0));
  EXPECT_EQ(s.stats().hits, 3u);  // contains() does not count
}

TEST(CacheStore, ArgumentsAreComparedExactlyWithTheirBoundaries) {
  Store s(kBig, 1024);
  ASSERT_EQ(fill(s, "k", {"HGET", "k", "ab"}, "x"), FillResult::Stored);
  EXPECT_EQ(find(s, {"HGET", "k", "a"}), nullptr);
  EXPECT_EQ(find(s, {"HGET", "k", "AB"}), nullptr);
  EXPECT_EQ(find(s, {"HGET", "k", "a", "b"}), nullptr);
  EXPECT_EQ(find(s, {"HGET", "ka", "b"}), nullptr);
  EXPECT_EQ(find(s, {"HGET", "k", "ab", ""}), nullptr);
  EXPECT_NE(find(s, {"hget", "k", "ab"}), nullptr);
  ASSERT_EQ(fill(s, "k", {"HGET", "k", ""}, "empty field"), FillResult::Stored);
  ASSERT_NE(find(s, {"HGET", "k", ""}), nullptr);
  EXPECT_EQ(*find(s, {"HGET", "k", ""}), "empty field");
}

TEST(CacheStore, OneInvalidateDropsEveryVariantOfTheKey) {
  Store s(kBig, 1024);
  fill(s, "k", {"GET", "k"}, "1");
  fill(s, "k", {"HGET", "k", "f"}, "2");
  fill(s, "k", {"LRANGE", "k", "0", "9"}, "3");
  fill(s, "other", {"GET", "other"}, "4");
  EXPECT_EQ(s.entries(), 4u);
  EXPECT_EQ(s.invalidate_key("k"), 3u);
  EXPECT_EQ(find(s, {"GET", "k"}), nullptr);
  EXPECT_EQ(find(s, {"HGET", "k", "f"}), nullptr);
  EXPECT_EQ(find(s, {"LRANGE", "k", "0", "9"}), nullptr);
  EXPECT_NE(find(s, {"GET", "other"}), nullptr);
  EXPECT_EQ(s.entries(), 1u);
  EXPECT_EQ(s.stats().invalidations, 1u);
  EXPECT_EQ(s.stats().invalidated_entries, 3u);
  EXPECT_EQ(s.invalidate_key("k"), 0u);
  EXPECT_EQ(s.invalidate_key("never-cached"), 0u);
  EXPECT_EQ(s.stats().invalidations, 3u);
}

TEST(CacheStore, InvalidateDropsTheKeyInEveryDatabase) {
  // Redis tracking messages carry no database: one invalidation covers them all.
  Store s(kBig, 1024);
  fill(s, "k", {"GET", "k"}, "db0", kNever, 0);
  fill(s, "k", {"GET", "k"}, "db3", kNever, 3);
  ASSERT_EQ(*find(s, {"GET", "k"}, 0, 3), "db3");
  EXPECT_EQ(s.invalidate_key("k"), 2u);
  EXPECT_EQ(find(s, {"GET", "k"}, 0, 0), nullptr);
  EXPECT_EQ(find(s, {"GET", "k"}, 0, 3), nullptr);
}

TEST(CacheStore, EntriesExpireAtTheirDeadline) {
  Store s(kBig, 1024);
  fill(s, "k", {"GET", "k"}, "v", 1000);
  EXPECT_NE(find(s, {"GET", "k"}, 999), nullptr);
  EXPECT_TRUE(s.contains(0, span({"GET", "k"}), 999));
  EXPECT_FALSE(s.contains(0, span({"GET", "k"}), 1000));
  EXPECT_EQ(s.entries(), 1u);  // contains() leaves it
  EXPECT_EQ(find(s, {"GET", "k"}, 1000), nullptr);
  EXPECT_EQ(s.entries(), 0u);
  EXPECT_EQ(s.bytes_used(), 0u);
  EXPECT_EQ(s.stats().expirations, 1u);
  EXPECT_EQ(s.stats().misses, 1u);
  EXPECT_EQ(s.stats().hits, 1u);
}

TEST(CacheStore, InvalidationThatOvertakesTheReplyCancelsTheFill) {
  Store s(kBig, 1024);
  const uint64_t k = hash_key("k");
  Store::Ticket t = s.begin_fill(k);  // GET k goes upstream
  EXPECT_TRUE(s.valid(t));
  EXPECT_EQ(s.pending_fills(), 1u);
  EXPECT_EQ(s.invalidate(k), 0u);     // another client's SET k: the invalidation arrives first
  EXPECT_FALSE(s.valid(t));
  // The reply carries the old value: it must not be cached.
  EXPECT_EQ(s.finish_fill(t, 0, span({"GET", "k"}), "old", kNever), FillResult::Cancelled);
  EXPECT_EQ(find(s, {"GET", "k"}), nullptr);
  EXPECT_EQ(s.entries(), 0u);
  EXPECT_EQ(s.pending_fills(), 0u);
  EXPECT_EQ(s.stats().cancelled_fills, 1u);
  EXPECT_EQ(s.stats().fills, 0u);
}

TEST(CacheStore, TicketTakenAfterTheInvalidationIsValid) {
  Store s(kBig, 1024);
  const uint64_t k = hash_key("k");
  Store::Ticket before = s.begin_fill(k);
  s.invalidate(k);
  Store::Ticket after = s.begin_fill(k);
  EXPECT_FALSE(s.valid(before));
  EXPECT_TRUE(s.valid(after));
  EXPECT_EQ(s.finish_fill(before, 0, span({"GET", "k"}), "old", kNever), FillResult::Cancelled);
  EXPECT_EQ(s.finish_fill(after, 0, span({"GET", "k"}), "new", kNever), FillResult::Stored);
  EXPECT_EQ(*find(s, {"GET", "k"}), "new");
  EXPECT_EQ(s.pending_fills(), 0u);

  // Same when no ticket was pending at the invalidation (nothing is recorded for the key).
  s.invalidate(hash_key("j"));
  EXPECT_EQ(fill(s, "j", {"GET", "j"}, "j"), FillResult::Stored);
  // And when the registry entry of the old ticket was released before the new one.
  Store::Ticket t1 = s.begin_fill(k);
  s.invalidate(k);
  EXPECT_EQ(s.finish_fill(t1, 0, span({"GET", "k"}), "x", kNever), FillResult::Cancelled);
  EXPECT_EQ(fill(s, "k", {"GET", "k"}, "y"), FillResult::Stored);
  EXPECT_EQ(*find(s, {"GET", "k"}), "y");
}

TEST(CacheStore, ConcurrentTicketsForTheSameKey) {
  Store s(kBig, 1024);
  const uint64_t k = hash_key("k");
  // Two reads in flight, no write: both store, the later one replaces the earlier.
  Store::Ticket a = s.begin_fill(k);
  Store::Ticket b = s.begin_fill(k);
  EXPECT_EQ(s.pending_fills(), 2u);
  EXPECT_EQ(s.finish_fill(a, 0, span({"GET", "k"}), "short", kNever), FillResult::Stored);
  EXPECT_TRUE(s.valid(b));
  EXPECT_EQ(s.finish_fill(b, 0, span({"GET", "k"}), "a longer value", kNever), FillResult::Stored);
  EXPECT_EQ(*find(s, {"GET", "k"}), "a longer value");
  EXPECT_EQ(s.entries(), 1u);
  EXPECT_EQ(s.bytes_used(), Store::entry_cost(0, span({"GET", "k"}), 14));

  // One invalidation cancels both tickets taken before it...
  Store::Ticket c = s.begin_fill(k);
  Store::Ticket d = s.begin_fill(k);
  s.invalidate(k);
  // ...but not one taken between them and the next.
  Store::Ticket e = s.begin_fill(k);
  EXPECT_EQ(s.finish_fill(c, 0, span({"GET", "k"}), "c", kNever), FillResult::Cancelled);
  EXPECT_EQ(s.finish_fill(e, 0, span({"HGET", "k", "f"}), "e", kNever), FillResult::Stored);
  EXPECT_EQ(s.finish_fill(d, 0, span({"GET", "k"}), "d", kNever), FillResult::Cancelled);
  EXPECT_EQ(find(s, {"GET", "k"}), nullptr);
  EXPECT_EQ(*find(s, {"HGET", "k", "f"}), "e");
  EXPECT_EQ(s.pending_fills(), 0u);
}

TEST(CacheStore, InvalidationOfOneKeyLeavesOtherTicketsValid) {
  Store s(kBig, 1024);
  Store::Ticket a = s.begin_fill(hash_key("a"));
  Store::Ticket b = s.begin_fill(hash_key("b"));
  s.invalidate_key("a");
  EXPECT_FALSE(s.valid(a));
  EXPECT_TRUE(s.valid(b));
  EXPECT_EQ(s.finish_fill(b, 0, span({"GET", "b"}), "b", kNever), FillResult::Stored);
  s.abandon_fill(a);
  EXPECT_EQ(s.pending_fills(), 0u);
}

TEST(CacheStore, FlushDropsEntriesAndCancelsEveryTicket) {
  Store s(kBig, 1024);
  fill(s, "x", {"GET", "x"}, "1");
  Store::Ticket a = s.begin_fill(hash_key("a"));
  Store::Ticket b = s.begin_fill(hash_key("b"));
  s.flush();
  EXPECT_EQ(s.entries(), 0u);
  EXPECT_EQ(s.bytes_used(), 0u);
  EXPECT_EQ(find(s, {"GET", "x"}), nullptr);
  EXPECT_FALSE(s.valid(a));
  EXPECT_FALSE(s.valid(b));
  Store::Ticket c = s.begin_fill(hash_key("a"));
  EXPECT_TRUE(s.valid(c));
  EXPECT_EQ(s.finish_fill(a, 0, span({"GET", "a"}), "a", kNever), FillResult::Cancelled);
  EXPECT_EQ(s.finish_fill(b, 0, span({"GET", "b"}), "b", kNever), FillResult::Cancelled);
  EXPECT_EQ(s.finish_fill(c, 0, span({"GET", "a"}), "a2", kNever), FillResult::Stored);
  EXPECT_EQ(s.stats().flushes, 1u);
  EXPECT_EQ(s.pending_fills(), 0u);
}

TEST(CacheStore, PatternFlushDropsMatchingKeysInEveryVariantAndDatabase) {
  Store s(kBig, 1024);
  const std::vector<std::tuple<int, Args, std::string>> matching = {
      {0, {"GET", "user:1"}, "a"},          {0, {"HGET", "user:1", "f"}, "bb"},
      {3, {"GET", "user:1"}, "ccc"},        {0, {"GET", "user:2"}, "dddd"},
      {0, {"LRANGE", "user:", "0", "9"}, "e"},  // '*' also matches the empty rest
  };
  const std::vector<std::tuple<int, Args, std::string>> others = {
      {0, {"GET", "session:1"}, "f"},   {0, {"HGET", "session:1", "user:1"}, "g"},  // a field is no key
      {3, {"GET", "User:1"}, "h"},      {0, {"GET", "xuser:1"}, "i"},
      {0, {"GET", ""}, "j"},
  };
  size_t matching_cost = 0;
  for (const auto& [db, args, value] : matching) {
    ASSERT_EQ(fill(s, args[1], args, value, kNever, db), FillResult::Stored);
    matching_cost += Store::entry_cost(db, span(args), value.size());
  }
  for (const auto& [db, args, value] : others) ASSERT_EQ(fill(s, args[1], args, value, kNever, db), FillResult::Stored);
  ASSERT_NE(find(s, {"GET", "user:1"}), nullptr);  // a hit (used, for eviction) goes all the same
  const size_t bytes0 = s.bytes_used();
  EXPECT_EQ(s.entries(), matching.size() + others.size());

  EXPECT_EQ(s.invalidate_matching("user:*"), matching.size());
  EXPECT_EQ(s.entries(), others.size());
  EXPECT_EQ(s.bytes_used(), bytes0 - matching_cost);
  for (const auto& [db, args, value] : matching) EXPECT_EQ(find(s, args, 0, db), nullptr) << args[0] << " " << args[1];
  for (const auto& [db, args, value] : others) {
    const std::string* v = find(s, args, 0, db);
    ASSERT_NE(v, nullptr) << args[0] << " " << args[1];
    EXPECT_EQ(*v, value);
  }
  EXPECT_EQ(s.stats().pattern_flushes, 1u);
  EXPECT_EQ(s.stats().pattern_flushed_entries, matching.size());
  EXPECT_EQ(s.stats().flushes, 0u);             // not a whole flush
  EXPECT_EQ(s.stats().invalidations, 0u);       // nor an invalidation from Redis
  EXPECT_EQ(s.stats().invalidated_entries, 0u);

  // Redis glob rules: sets, '?', escapes; no match drops nothing but still counts.
  EXPECT_EQ(s.invalidate_matching("nothing*"), 0u);
  EXPECT_EQ(s.invalidate_matching("[sx]?ssion:\\1"), 2u);  // both variants of session:1
  EXPECT_EQ(find(s, {"HGET", "session:1", "user:1"}), nullptr);
  EXPECT_NE(find(s, {"GET", "xuser:1"}), nullptr);
  EXPECT_EQ(s.invalidate_matching("*"), 3u);  // the rest, the empty key included
  EXPECT_EQ(s.entries(), 0u);
  EXPECT_EQ(s.bytes_used(), 0u);
  EXPECT_EQ(s.stats().pattern_flushes, 4u);
  EXPECT_EQ(s.stats().pattern_flushed_entries, matching.size() + others.size());
}

TEST(CacheStore, PatternFlushCancelsEveryPendingFill) {
  // A ticket holds its key's hash only, so a pattern flush cannot tell a pending fill of a
  // matching key that has no entry yet from any other: it cancels them all, as flush() does.
  Store s(kBig, 1024);
  fill(s, "user:1", {"GET", "user:1"}, "old");
  Store::Ticket cached = s.begin_fill(hash_key("user:1"));  // refill of a cached key
  Store::Ticket fresh = s.begin_fill(hash_key("user:9"));   // a matching key with no entry
  Store::Ticket other = s.begin_fill(hash_key("session:1"));  // not matching: cancelled too
  EXPECT_EQ(s.invalidate_matching("user:*"), 1u);
  EXPECT_FALSE(s.valid(cached));
  EXPECT_FALSE(s.valid(fresh));
  EXPECT_FALSE(s.valid(other));
  Store::Ticket after = s.begin_fill(hash_key("user:9"));
  EXPECT_TRUE(s.valid(after));
  EXPECT_EQ(s.finish_fill(cached, 0, span({"GET", "user:1"}), "stale", kNever), FillResult::Cancelled);
  EXPECT_EQ(s.finish_fill(fresh, 0, span({"HGET", "user:9", "f"}), "stale", kNever), FillResult::Cancelled);
  EXPECT_EQ(s.finish_fill(other, 0, span({"GET", "session:1"}), "s", kNever), FillResult::Cancelled);
  EXPECT_EQ(s.finish_fill(after, 0, span({"GET", "user:9"}), "new", kNever), FillResult::Stored);
  EXPECT_EQ(find(s, {"GET", "user:1"}), nullptr);
  EXPECT_EQ(find(s, {"HGET", "user:9", "f"}), nullptr);
  EXPECT_EQ(*find(s, {"GET", "user:9"}), "new");
  EXPECT_EQ(s.stats().cancelled_fills, 3u);
  EXPECT_EQ(s.pending_fills(), 0u);
  EXPECT_EQ(s.entries(), 1u);
}

TEST(CacheStore, PatternFlushKeepsTheAccountingExactInEveryQueue) {
  for (Eviction policy : {Eviction::S3Fifo, Eviction::Lru}) {
    const size_t cost = Store::entry_cost(0, span({"GET", "a:000"}), 20);
    Store s(cost * 40, 1024, policy);
    // Past the budget, with hits: S3-FIFO's entries sit in both queues.
    for (int i = 100; i < 200; ++i) {
      const std::string key = (i % 2 ? "a:" : "b:") + std::to_string(i);
      fill(s, key, {"GET", key}, std::string(20, 'v'));
      if (i % 3 == 0) find(s, {"GET", key});
    }
    ASSERT_GT(s.stats().evictions, 0u);
    size_t a_entries = 0;
    for (int i = 100; i < 200; ++i) {
      const std::string key = (i % 2 ? "a:" : "b:") + std::to_string(i);
      a_entries += i % 2 && s.contains(0, span({"GET", key}), 0) ? 1 : 0;
    }
    const size_t entries0 = s.entries();
    ASSERT_GT(a_entries, 0u);
    EXPECT_EQ(s.invalidate_matching("a:*"), a_entries);
    EXPECT_EQ(s.entries(), entries0 - a_entries);
    EXPECT_EQ(s.bytes_used(), s.entries() * cost);
    // The freed room is used again, and eviction still finds what is left.
    for (int i = 300; i < 400; ++i) {
      const std::string key = "c:" + std::to_string(i);
      fill(s, key, {"GET", key}, std::string(20, 'v'));
      ASSERT_LE(s.bytes_used(), s.budget());
      ASSERT_EQ(s.bytes_used(), s.entries() * cost);
    }
    EXPECT_EQ(s.entries(), 40u);
    EXPECT_EQ(s.invalidate_matching("*"), 40u);
    EXPECT_EQ(s.bytes_used(), 0u);
  }
}

TEST(CacheStore, AbandonReleasesTickets) {
  Store s(kBig, 1024);
  Store::Ticket a = s.begin_fill(hash_key("k"));
  Store::Ticket b = s.begin_fill(hash_key("k"));
  Store::Ticket c = s.begin_fill(hash_key("j"));
  EXPECT_EQ(s.pending_fills(), 3u);
  s.abandon_fill(a);
  EXPECT_EQ(s.pending_fills(), 2u);
  EXPECT_TRUE(s.valid(b));
  s.abandon_fill(b);
  s.abandon_fill(c);
  EXPECT_EQ(s.pending_fills(), 0u);
  EXPECT_EQ(s.entries(), 0u);
  // The empty ticket is never valid and releases nothing.
  Store::Ticket none;
  EXPECT_FALSE(s.valid(none));
  EXPECT_EQ(s.finish_fill(none, 0, span({"GET", "k"}), "v", kNever), FillResult::Cancelled);
  s.abandon_fill(none);
  EXPECT_EQ(s.pending_fills(), 0u);
}

TEST(CacheStore, EntryCostCountsIdentityAndValueBytes) {
  const size_t base = Store::entry_cost(0, span({"GET", "k"}), 0);
  EXPECT_GT(base, 64u);  // header and fixed overhead
  EXPECT_EQ(Store::entry_cost(0, span({"GET", "k"}), 100), base + 100);
  EXPECT_EQ(Store::entry_cost(0, span({"GET", "key"}), 0), base + 2);
  EXPECT_EQ(Store::entry_cost(5, span({"GET", "k"}), 0), base);
  EXPECT_GT(Store::entry_cost(0, span({"GET", "k", ""}), 0), base);  // an extra argument costs
}

TEST(CacheStore, RefillReplacesTheEntryAndItsCost) {
  Store s(kBig, 1024);
  const Args get{"GET", "k"};
  fill(s, "k", get, std::string(10, 'a'));
  EXPECT_EQ(s.bytes_used(), Store::entry_cost(0, span(get), 10));
  fill(s, "k", {"get", "k"}, std::string(100, 'b'));
  EXPECT_EQ(s.entries(), 1u);
  EXPECT_EQ(s.bytes_used(), Store::entry_cost(0, span(get), 100));
  EXPECT_EQ(*find(s, get), std::string(100, 'b'));
  EXPECT_EQ(s.stats().fills, 2u);
}

TEST(CacheStore, TooLargeValuesAndEntriesAreRefused) {
  const Args get{"GET", "k"};
  const size_t budget = Store::entry_cost(0, span(get), 500);
  Store s(budget, 400);
  EXPECT_EQ(fill(s, "k", get, std::string(400, 'v')), FillResult::Stored);  // exactly max_value
  EXPECT_EQ(fill(s, "k", get, std::string(401, 'v')), FillResult::TooLarge);
  // The older, shorter reply is not served once a newer one was refused.
  EXPECT_EQ(find(s, get), nullptr);
  EXPECT_EQ(s.entries(), 0u);
  s.set_max_value(10000);
  EXPECT_EQ(fill(s, "k", get, std::string(500, 'v')), FillResult::Stored);  // cost == budget
  EXPECT_EQ(s.bytes_used(), s.budget());
  EXPECT_EQ(fill(s, "k", get, std::string(501, 'v')), FillResult::TooLarge);  // cost > budget
  EXPECT_EQ(s.stats().too_large, 2u);
  EXPECT_EQ(s.pending_fills(), 0u);
  EXPECT_EQ(s.bytes_used(), 0u);
}

TEST(CacheStore, InsertingPastTheBudgetEvicts) {
  for (Eviction policy : {Eviction::S3Fifo, Eviction::Lru}) {
    const size_t cost = Store::entry_cost(0, span({"GET", "k000"}), 50);
    Store s(cost * 10, 1024, policy);
    for (int i = 100; i < 200; ++i) {
      std::string key = "k" + std::to_string(i);
      ASSERT_EQ(fill(s, key, {"GET", key}, std::string(50, 'v')), FillResult::Stored);
      ASSERT_LE(s.bytes_used(), s.budget());
    }
    EXPECT_EQ(s.entries(), 10u);
    EXPECT_EQ(s.bytes_used(), cost * 10);
    EXPECT_EQ(s.stats().evictions, 90u);
    // FIFO order without hits: the newest stay.
    EXPECT_NE(find(s, {"GET", "k199"}), nullptr);
    EXPECT_NE(find(s, {"GET", "k190"}), nullptr);
    EXPECT_EQ(find(s, {"GET", "k189"}), nullptr);
    EXPECT_EQ(find(s, {"GET", "k100"}), nullptr);
  }
}

TEST(CacheStore, SetBudgetEvictsDownAtOnce) {
  for (Eviction policy : {Eviction::S3Fifo, Eviction::Lru}) {
    const size_t cost = Store::entry_cost(0, span({"GET", "k00"}), 50);
    Store s(cost * 20, 1024, policy);
    for (int i = 10; i < 30; ++i) {
      std::string key = "k" + std::to_string(i);
      fill(s, key, {"GET", key}, std::string(50, 'v'));
    }
    EXPECT_EQ(s.entries(), 20u);
    s.set_budget(cost * 5 + cost / 2);
    EXPECT_EQ(s.entries(), 5u);
    EXPECT_EQ(s.bytes_used(), cost * 5);
    EXPECT_EQ(s.budget(), cost * 5 + cost / 2);
    s.set_budget(0);
    EXPECT_EQ(s.entries(), 0u);
    EXPECT_EQ(s.bytes_used(), 0u);
  }
}

TEST(CacheStore, LruEvictsTheLeastRecentlyUsed) {
  const size_t cost = Store::entry_cost(0, span({"GET", "a"}), 1);
  Store s(cost * 3, 1024, Eviction::Lru);
  fill(s, "a", {"GET", "a"}, "1");
  fill(s, "b", {"GET", "b"}, "2");
  fill(s, "c", {"GET", "c"}, "3");
  ASSERT_NE(find(s, {"GET", "a"}), nullptr);
  fill(s, "d", {"GET", "d"}, "4");
  EXPECT_NE(find(s, {"GET", "a"}), nullptr);
  EXPECT_EQ(find(s, {"GET", "b"}), nullptr);
  EXPECT_NE(find(s, {"GET", "c"}), nullptr);
  EXPECT_NE(find(s, {"GET", "d"}), nullptr);
}

TEST(CacheStore, S3FifoKeepsAnEntryUsedOnProbation) {
  const size_t cost = Store::entry_cost(0, span({"GET", "k00"}), 10);
  Store s(cost * 20, 1024, Eviction::S3Fifo);
  fill(s, "hot", {"GET", "hot"}, "h");
  ASSERT_NE(find(s, {"GET", "hot"}), nullptr);  // hit once while in the small queue
  for (int i = 10; i < 200; ++i) {
    std::string key = "k" + std::to_string(i);
    fill(s, key, {"GET", key}, std::string(10, 'v'));
  }
  EXPECT_NE(find(s, {"GET", "hot"}), nullptr);  // promoted to the main queue
  EXPECT_EQ(find(s, {"GET", "k10"}), nullptr);
}

TEST(CacheStore, S3FifoReadmitsARecentlyEvictedIdentityToTheMainQueue) {
  const size_t cost = Store::entry_cost(0, span({"GET", "k000"}), 10);
  auto survives_fillers_after_refill = [&](bool evict_first) {
    Store s(cost * 20, 1024, Eviction::S3Fifo);
    int next = 100;
    auto fillers = [&](int n) {
      for (int i = 0; i < n; ++i) {
        std::string key = "k" + std::to_string(next++);
        fill(s, key, {"GET", key}, std::string(10, 'v'));
      }
    };
    if (evict_first) {
      fill(s, "j000", {"GET", "j000"}, std::string(10, 'v'));  // never hit: evicted into the ghost
      fillers(30);
      EXPECT_FALSE(s.contains(0, span({"GET", "j000"}), 0));
    }
    fill(s, "j000", {"GET", "j000"}, std::string(10, 'v'));
    fillers(30);
    return s.contains(0, span({"GET", "j000"}), 0);
  };
  EXPECT_TRUE(survives_fillers_after_refill(true));    // the ghost sent it to the main queue
  EXPECT_FALSE(survives_fillers_after_refill(false));  // a first-timer leaves with the fillers
}

TEST(CacheStore, EvictionDropsExpiredEntriesAsExpirations) {
  const size_t cost = Store::entry_cost(0, span({"GET", "a"}), 1);
  for (Eviction policy : {Eviction::S3Fifo, Eviction::Lru}) {
    Store s(cost * 3, 1024, policy);
    fill(s, "a", {"GET", "a"}, "1", 100);  // the oldest, and expired by the time room is needed
    fill(s, "b", {"GET", "b"}, "2");
    fill(s, "c", {"GET", "c"}, "3");
    ASSERT_NE(find(s, {"GET", "b"}, 200), nullptr);  // the store learns that now is 200
    fill(s, "d", {"GET", "d"}, "4");
    EXPECT_EQ(s.stats().expirations, 1u);
    EXPECT_EQ(s.stats().evictions, 0u);
    EXPECT_EQ(s.entries(), 3u);
    EXPECT_NE(find(s, {"GET", "c"}, 200), nullptr);
  }
}

// --- randomized check against a reference model -------------------------------------------

// What the store may hold: every stored identity not since invalidated, flushed, replaced,
// refused or found expired. The store may have evicted any of them, never more.
struct ModelEntry {
  std::string key;
  std::vector<std::string> args;  // command name upper-case
  int db = 0;
  std::string value;
  uint64_t expires = 0;
};

struct ModelTicket {
  Store::Ticket ticket;
  std::string key;
  bool cancelled = false;
};

void run_model(Eviction policy, uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  const size_t max_value = 300;
  Store s(8000, max_value, policy);
  std::map<std::tuple<int, std::vector<std::string>>, ModelEntry> model;
  std::vector<ModelTicket> tickets;
  uint64_t now = 1;
  uint64_t serial = 0;

  const std::vector<std::vector<std::string>> shapes = {{"GET"}, {"HGET", "f1"}, {"HGET", "f2"}};
  auto request = [&](const std::string& key) {
    const auto& shape = shapes[pick(shapes.size())];
    std::vector<std::string> args{shape[0], key};
    args.insert(args.end(), shape.begin() + 1, shape.end());
    return args;
  };
  auto random_case = [&](std::vector<std::string> args) {
    for (char& c : args[0]) {
      if (rng() % 2) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return args;
  };
  auto views = [](const std::vector<std::string>& args) { return Args(args.begin(), args.end()); };
  auto random_key = [&] { return "key" + std::to_string(pick(8)); };

  for (int step = 0; step < 20000; ++step) {
    const size_t op = pick(1000);
    if (op < 440) {  // find
      if (pick(10) == 0) now += pick(50);
      std::vector<std::string> args = request(random_key());
      const int db = static_cast<int>(pick(2));
      const std::vector<std::string> cased = random_case(args);
      Args v = views(cased);
      const std::string* got = s.find(db, span(v), now);
      auto it = model.find({db, args});
      if (it == model.end() || it->second.expires <= now) {
        ASSERT_EQ(got, nullptr) << "step " << step << ": served an entry the model dropped";
        if (it != model.end()) model.erase(it);
      } else if (got == nullptr) {
        model.erase(it);  // evicted
      } else {
        ASSERT_EQ(*got, it->second.value) << "step " << step;
      }
    } else if (op < 650) {  // begin a read
      std::string key = random_key();
      tickets.push_back({s.begin_fill(hash_key(key)), key, false});
    } else if (op < 880 && !tickets.empty()) {  // its reply arrives
      const size_t i = pick(tickets.size());
      ModelTicket t = tickets[i];
      tickets.erase(tickets.begin() + static_cast<std::ptrdiff_t>(i));
      std::vector<std::string> args = request(t.key);
      const int db = static_cast<int>(pick(2));
      std::string value = std::to_string(++serial) + ":" + std::string(pick(max_value + 60), 'v');
      const uint64_t expires = pick(4) == 0 ? kNever : now + 1 + pick(2000);
      const std::vector<std::string> cased = random_case(args);
      Args v = views(cased);
      const size_t cost = Store::entry_cost(db, span(v), value.size());
      FillResult expected = t.cancelled                                           ? FillResult::Cancelled
                            : value.size() > max_value || cost > s.budget() ? FillResult::TooLarge
                                                                                  : FillResult::Stored;
      ASSERT_EQ(s.finish_fill(t.ticket, db, span(v), value, expires), expected) << "step " << step;
      if (expected == FillResult::Stored) {
        model[{db, args}] = ModelEntry{t.key, args, db, value, expires};
      } else if (expected == FillResult::TooLarge) {
        model.erase({db, args});
      }
    } else if (op < 900 && !tickets.empty()) {  // the read failed
      const size_t i = pick(tickets.size());
      s.abandon_fill(tickets[i].ticket);
      tickets.erase(tickets.begin() + static_cast<std::ptrdiff_t>(i));
    } else if (op < 930) {  // a write somewhere
      std::string key = random_key();
      size_t present = 0;
      for (auto it = model.begin(); it != model.end();) {
        if (it->second.key == key) {
          present += s.contains(it->second.db, span(views(it->second.args)), 0) ? 1 : 0;
          it = model.erase(it);
        } else {
          ++it;
        }
      }
      ASSERT_EQ(s.invalidate_key(key), present) << "step " << step;
      for (ModelTicket& t : tickets) t.cancelled = t.cancelled || t.key == key;
    } else if (op < 932) {
      s.flush();
      model.clear();
      for (ModelTicket& t : tickets) t.cancelled = true;
    } else if (op < 940) {  // RESPITE CACHE FLUSH <pattern>
      static const std::vector<std::pair<std::string_view, std::string_view>> patterns = {
          {"key[0-3]", "0123"}, {"key?", "01234567"}, {"*5", "5"}, {"key[^0-5]", "67"}, {"nomatch*", ""}};
      const auto& [pattern, digits] = patterns[pick(patterns.size())];
      size_t present = 0;
      for (auto it = model.begin(); it != model.end();) {
        if (digits.find(it->second.key.back()) != std::string_view::npos) {
          present += s.contains(it->second.db, span(views(it->second.args)), 0) ? 1 : 0;
          it = model.erase(it);
        } else {
          ++it;
        }
      }
      ASSERT_EQ(s.invalidate_matching(pattern), present) << "step " << step << ": " << pattern;
      for (ModelTicket& t : tickets) t.cancelled = true;  // every pending fill, see Store
    } else {
      s.set_budget(1000 + pick(20000));
    }

    // Invariants after every operation.
    ASSERT_LE(s.bytes_used(), s.budget()) << "step " << step;
    ASSERT_EQ(s.pending_fills(), tickets.size()) << "step " << step;
    size_t bytes = 0;
    size_t entries = 0;
    for (const auto& [id, e] : model) {
      Args v = views(e.args);
      if (s.contains(e.db, span(v), 0)) {  // expires is never 0: contains() sees every entry
        bytes += Store::entry_cost(e.db, span(v), e.value.size());
        ++entries;
      }
    }
    ASSERT_EQ(s.entries(), entries) << "step " << step << ": the store holds an entry the model dropped";
    ASSERT_EQ(s.bytes_used(), bytes) << "step " << step;
    for (const ModelTicket& t : tickets) ASSERT_EQ(s.valid(t.ticket), !t.cancelled) << "step " << step;
  }
  EXPECT_GT(s.stats().hits, 0u);
  EXPECT_GT(s.stats().evictions, 0u);
  EXPECT_GT(s.stats().cancelled_fills, 0u);
  EXPECT_GT(s.stats().too_large, 0u);
  EXPECT_GT(s.stats().expirations, 0u);
}

TEST(CacheStore, RandomOperationsAgreeWithModelS3Fifo) { run_model(Eviction::S3Fifo, 12345); }
TEST(CacheStore, RandomOperationsAgreeWithModelLru) { run_model(Eviction::Lru, 54321); }

// --- eviction quality ----------------------------------------------------------------------

// Zipf(alpha) ranks over n keys by inverse CDF; deterministic for a seed.
class Zipf {
 public:
  Zipf(size_t n, double alpha, uint64_t seed) : rng_(seed), cdf_(n) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) cdf_[i] = sum += 1.0 / std::pow(static_cast<double>(i + 1), alpha);
    for (double& c : cdf_) c /= sum;
  }
  size_t next() {
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    return static_cast<size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::mt19937_64 rng_;
  std::vector<double> cdf_;
};

// GET-like replay: a miss fills a 100-byte value. Returns the hit ratio.
double replay(Store& s, const std::vector<std::string>& keys, const std::vector<uint32_t>& trace) {
  const std::string value(100, 'v');
  for (uint32_t k : trace) {
    const std::string_view req[] = {"GET", keys[k]};
    if (s.find(0, req, 0) == nullptr) {
      Store::Ticket t = s.begin_fill(hash_key(keys[k]));
      s.finish_fill(t, 0, req, value, kNever);
    }
  }
  const StoreStats& st = s.stats();
  return static_cast<double>(st.hits) / static_cast<double>(st.hits + st.misses);
}

std::vector<std::string> make_keys(size_t n, std::string_view prefix) {
  std::vector<std::string> keys;
  keys.reserve(n);
  for (size_t i = 0; i < n; ++i) keys.push_back(std::string(prefix) + std::to_string(i));
  return keys;
}

size_t total_cost(const std::vector<std::string>& keys) {
  size_t total = 0;
  for (const auto& k : keys) {
    const std::string_view req[] = {"GET", k};
    total += Store::entry_cost(0, req, 100);
  }
  return total;
}

TEST(CacheStore, S3FifoBeatsLruOnZipf) {
  const std::vector<std::string> keys = make_keys(100000, "user:");
  Zipf zipf(keys.size(), 0.99, 42);
  std::vector<uint32_t> trace(400000);
  for (uint32_t& k : trace) k = static_cast<uint32_t>(zipf.next());
  const size_t budget = total_cost(keys) / 20;  // about 5% of the keys
  Store s3(budget, 1024, Eviction::S3Fifo);
  Store lru(budget, 1024, Eviction::Lru);
  const double s3_ratio = replay(s3, keys, trace);
  const double lru_ratio = replay(lru, keys, trace);
  RecordProperty("s3fifo_hit_ratio", std::to_string(s3_ratio));
  RecordProperty("lru_hit_ratio", std::to_string(lru_ratio));
  EXPECT_GT(s3_ratio, lru_ratio);
  EXPECT_GT(s3_ratio, 0.3);
  EXPECT_LE(s3.bytes_used(), budget);
  EXPECT_LE(lru.bytes_used(), budget);
}

TEST(CacheStore, S3FifoKeepsTheHotSetThroughAScan) {
  const std::vector<std::string> hot = make_keys(500, "hot:");
  const std::vector<std::string> cold = make_keys(20000, "cold:");
  const size_t budget = total_cost(hot) * 2;  // room for the hot set twice over
  auto hot_hit_ratio_after_scan = [&](Eviction policy) {
    Store s(budget, 1024, policy);
    std::vector<uint32_t> warm;
    for (int round = 0; round < 4; ++round) {
      for (uint32_t i = 0; i < hot.size(); ++i) warm.push_back(i);
    }
    replay(s, hot, warm);
    std::vector<uint32_t> scan(cold.size());
    for (uint32_t i = 0; i < scan.size(); ++i) scan[i] = i;
    replay(s, cold, scan);  // each cold key once, like a batch job's pass
    size_t hits = 0;
    for (const auto& k : hot) {
      const std::string_view req[] = {"GET", k};
      hits += s.contains(0, req, 0) ? 1 : 0;
    }
    return static_cast<double>(hits) / static_cast<double>(hot.size());
  };
  EXPECT_GE(hot_hit_ratio_after_scan(Eviction::S3Fifo), 0.95);
  EXPECT_LE(hot_hit_ratio_after_scan(Eviction::Lru), 0.05);  // for contrast: LRU loses it all
}

}  // namespace
}  // namespace respite::cache
