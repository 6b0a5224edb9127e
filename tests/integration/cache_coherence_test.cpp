// Near-cache coherence under load: writers write directly on Redis (as another application
// would), readers read through respite in tight loops, and every read is checked.
//
// Keys are owned by one writer each, so per key the versions Redis holds only grow. A writer
// writes version v, waits for Redis's acknowledgement, then sends RESPITE CACHE FENCE through
// respite and, once it returned, publishes v as the key's fenced version. A reader loads the
// fenced version before sending a read, so:
//   (a) every read must return a version >= the fenced version it loaded (else: a stale read,
//       served after the fence promised the invalidation had been applied);
//   (b) every value must be one that was written: well-formed, the right key, and a version no
//       higher than any writer has issued for the key when the reply arrived.
// Reported, not asserted: the delivery delay of invalidations, from each write's
// acknowledgement to the send time of the first read through respite that returned that
// version or a later one (and, the other way round, the last read sent after the
// acknowledgement that still returned an older version), as p50/p99/max; per-connection
// version regressions; read and write counts and the cache's hit ratio.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/cache_probe.h"
#include "support/redis_probe.h"
#include "support/stack.h"

namespace respite::test {
namespace {

using namespace std::chrono_literals;

constexpr int kKeys = 8;         // the key set: coh:0 .. coh:7
constexpr int kWriters = 2;      // writer w owns the keys k with k % kWriters == w
constexpr int kGetReaders = 6;   // readers sending GET of one key at a time
constexpr int kMgetReaders = 2;  // readers sending MGET of every key

std::string key_name(int k) { return cat("coh:", k); }

// "<key>|<version>|" and padding: the key is in the value, so a value served for the wrong key
// is caught.
std::string value_of(int k, long long version) {
  std::string v = cat(key_name(k), "|", version, "|");
  v.resize(48, 'p');
  return v;
}

// The version in a value of key k, or nullopt when the value is not one of key k's.
std::optional<long long> version_of(int k, std::string_view value) {
  const std::string prefix = cat(key_name(k), "|");
  if (value.size() != 48 || value.substr(0, prefix.size()) != prefix) return std::nullopt;
  value.remove_prefix(prefix.size());
  long long v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end == value.data() || *end != '|') return std::nullopt;
  return v;
}

using Nanos = long long;  // nanoseconds since the run's start

struct ReadRec {
  Nanos sent;        // when the request was sent
  long long version; // the version it returned
};
struct WriteRec {
  long long version;  // the version written
  Nanos acked;        // when Redis acknowledged it
};

// State shared by the threads of one run.
struct Shared {
  Clock::time_point start = Clock::now();                 // time origin
  std::atomic<bool> stop{false};                          // readers and writers finish
  std::atomic<long long> fenced[kKeys] = {};              // version acked and fenced, per key
  std::atomic<long long> issued[kKeys] = {};              // highest version sent to Redis, per key
  std::atomic<long long> stale{0};                        // check (a) failures
  std::atomic<long long> phantom{0};                      // check (b) failures
  std::atomic<long long> errors{0};                       // error or missing replies
  std::atomic<long long> regressions{0};                  // a connection saw a key's version go back
  std::atomic<long long> fence_failures{0};               // FENCE replies other than +OK
  std::mutex mu;                                          // guards first_problem
  std::string first_problem;                              // the first failure, described

  Nanos now() const { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count(); }
  void note(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    if (first_problem.empty()) first_problem = what;
  }
};

// Checks one read of key k whose reply is `r`, sent at
// `sent` having loaded `required` as the key's fenced version.
void check_read(Shared& sh, int k, const redisReply* r, long long required, Nanos sent, std::vector<ReadRec>& log,
                long long& last_seen) {
  if (!r || r->type != REDIS_REPLY_STRING) {
    ++sh.errors;
    sh.note(cat("read of ", key_name(k), " got ", describe(r)));
    return;
  }
  const auto version = version_of(k, std::string_view(r->str, r->len));
  const long long issued = sh.issued[k].load();
  if (!version || *version > issued) {
    ++sh.phantom;
    sh.note(cat("read of ", key_name(k), " returned a value never written: ", describe(r), " (issued up to ", issued,
                ")"));
    return;
  }
  if (*version < required) {
    ++sh.stale;
    sh.note(cat("stale read of ", key_name(k), ": version ", *version, " after version ", required,
                " was acknowledged and fenced; sent ", (sent / 1000), " us into the run"));
  }
  if (*version < last_seen) ++sh.regressions;
  last_seen = std::max(last_seen, *version);
  log.push_back({sent, *version});
}

struct Percentiles {
  size_t n = 0;
  double p50 = 0, p99 = 0, max = 0;  // milliseconds
};
Percentiles percentiles(std::vector<Nanos> v) {
  Percentiles p;
  p.n = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]) / 1e6; };
  p.p50 = at(0.50);
  p.p99 = at(0.99);
  p.max = static_cast<double>(v.back()) / 1e6;
  return p;
}
std::string show(const Percentiles& p) {
  return cat("n=", p.n, " p50=", std::to_string(p.p50), " ms p99=", std::to_string(p.p99),
             " ms max=", std::to_string(p.max), " ms");
}

struct RunOptions {
  std::chrono::milliseconds duration{8'000};            // how long writers and readers run
  std::chrono::milliseconds kill_every{0};              // > 0: CLIENT KILL the invalidation connection this often
};

struct RunResult {
  long long reads = 0, writes = 0, stale = 0, phantom = 0, errors = 0, regressions = 0, fence_failures = 0;
  long long kills = 0;
  Percentiles first_new;   // ack -> send of the first read returning >= v
  Percentiles last_old;    // ack -> send of the last read returning < v (writes that had one)
  long long unmatched = 0; // writes never read back at or above their version (end of run)
  CacheStats before, after;
  std::string first_problem;
};

RunResult run_stress(Stack& stack, const RunOptions& options) {
  RunResult result;
  Shared sh;
  Client admin = stack.connect();
  Client redis = stack.connect_redis();
  for (int k = 0; k < kKeys; ++k) EXPECT_EQ(redis.call({"SET", key_name(k), value_of(k, 0)}), "+OK");
  EXPECT_EQ(cache_fence(admin), "+OK");
  result.before = cache_stats(admin);

  // Connections are made here, on the test's thread; the threads only use them.
  std::vector<Client> writer_redis, writer_respite, readers;
  for (int w = 0; w < kWriters; ++w) {
    writer_redis.push_back(stack.connect_redis());
    writer_respite.push_back(stack.connect());
  }
  for (int r = 0; r < kGetReaders + kMgetReaders; ++r) readers.push_back(stack.connect());

  std::vector<std::vector<WriteRec>> write_logs(kKeys);
  std::vector<std::vector<std::vector<ReadRec>>> read_logs(kGetReaders + kMgetReaders,
                                                           std::vector<std::vector<ReadRec>>(kKeys));
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      Client& direct = writer_redis[w];
      Client& proxy = writer_respite[w];
      long long version[kKeys] = {};
      for (long long n = 0; !sh.stop; ++n) {
        const int k = static_cast<int>((n * kWriters + w) % kKeys);
        const long long v = ++version[k];
        sh.issued[k].store(v);
        const std::string got = direct.call({"SET", key_name(k), value_of(k, v)});
        const Nanos acked = sh.now();
        if (got != "+OK") {
          ++sh.errors;
          sh.note("direct SET: " + got);
          return;
        }
        write_logs[k].push_back({v, acked});
        // Fence; while tracking is down it fails: retry until it succeeds (bounded).
        const Deadline deadline = deadline_in(5s);
        std::string f;
        while ((f = cache_fence(proxy)) != "+OK") {
          ++sh.fence_failures;
          if (starts_with(f, "<error") || Clock::now() >= deadline) {
            sh.note("FENCE: " + f);
            return;
          }
          std::this_thread::sleep_for(1ms);  // pacing the retries, not synchronisation
        }
        sh.fenced[k].store(v);
        // Pace the writes a little, so that values stay cached long enough to be hit.
        if (n % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(500));
      }
    });
  }
  for (int r = 0; r < kGetReaders + kMgetReaders; ++r) {
    threads.emplace_back([&, r] {
      Client& c = readers[r];
      auto& logs = read_logs[r];
      long long last_seen[kKeys] = {};
      const bool mget = r >= kGetReaders;
      std::vector<std::string> mget_cmd = {"MGET"};
      for (int k = 0; k < kKeys; ++k) mget_cmd.push_back(key_name(k));
      uint32_t x = 2654435761u * static_cast<uint32_t>(r + 1);
      while (!sh.stop) {
        if (mget) {
          long long required[kKeys];
          for (int k = 0; k < kKeys; ++k) required[k] = sh.fenced[k].load();
          const Nanos sent = sh.now();
          Reply rep = c.command(mget_cmd);
          if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != kKeys) {
            ++sh.errors;
            sh.note("MGET: " + (rep ? describe(rep) : c.error()));
            if (!rep) return;
            continue;
          }
          for (int k = 0; k < kKeys; ++k) check_read(sh, k, rep->element[k], required[k], sent, logs[k], last_seen[k]);
        } else {
          x = x * 1664525u + 1013904223u;
          const int k = static_cast<int>((x >> 16) % kKeys);
          const long long required = sh.fenced[k].load();
          const Nanos sent = sh.now();
          Reply rep = c.command({"GET", key_name(k)});
          if (!rep) {
            ++sh.errors;
            sh.note("GET: " + c.error());
            return;
          }
          check_read(sh, k, rep.get(), required, sent, logs[k], last_seen[k]);
        }
      }
    });
  }

  const Deadline end = deadline_in(options.duration);
  if (options.kill_every.count() > 0) {
    while (Clock::now() + options.kill_every < end) {
      std::this_thread::sleep_for(options.kill_every);  // the load runs meanwhile: pacing, not synchronisation
      if (auto id = redis_client_id(redis, "respite-invalidation")) {
        if (redis.call({"CLIENT", "KILL", "ID", std::to_string(*id)}) == ":1") ++result.kills;
      }
    }
  }
  std::this_thread::sleep_until(end);
  sh.stop = true;
  for (auto& t : threads) t.join();
  result.after = cache_stats(admin);

  // Delivery delays, per key: reads in send order, writes in version (= ack) order.
  std::vector<Nanos> first_new, last_old;
  for (int k = 0; k < kKeys; ++k) {
    std::vector<ReadRec> reads;
    for (auto& per_reader : read_logs) reads.insert(reads.end(), per_reader[k].begin(), per_reader[k].end());
    std::sort(reads.begin(), reads.end(), [](const ReadRec& a, const ReadRec& b) { return a.sent < b.sent; });
    result.reads += static_cast<long long>(reads.size());
    const auto& writes = write_logs[k];
    result.writes += static_cast<long long>(writes.size());
    // First read sent at or after the ack that returned >= v (monotone in v: two pointers).
    size_t j = 0;
    for (const WriteRec& w : writes) {
      size_t i = static_cast<size_t>(
          std::lower_bound(reads.begin(), reads.end(), w.acked, [](const ReadRec& r, Nanos t) { return r.sent < t; }) -
          reads.begin());
      j = std::max(i, j);
      while (j < reads.size() && reads[j].version < w.version) ++j;
      if (j == reads.size()) {
        ++result.unmatched;
      } else {
        first_new.push_back(reads[j].sent - w.acked);
      }
    }
    // Last read sent after the ack that still returned an older version: a read of version u
    // sent at t is old for every write v > u acknowledged by t.
    std::vector<Nanos> last(writes.size(), -1);
    size_t acked_by = 0;  // writes[0, acked_by) were acknowledged by the current read's send time
    for (const ReadRec& r : reads) {
      while (acked_by < writes.size() && writes[acked_by].acked <= r.sent) ++acked_by;
      // writes are versions 1..n in order: index = version - 1
      for (long long v = r.version + 1; v <= static_cast<long long>(acked_by); ++v) last[v - 1] = r.sent;
    }
    for (size_t i = 0; i < writes.size(); ++i)
      if (last[i] >= 0) last_old.push_back(last[i] - writes[i].acked);
  }
  result.first_new = percentiles(first_new);
  result.last_old = percentiles(last_old);
  result.stale = sh.stale;
  result.phantom = sh.phantom;
  result.errors = sh.errors;
  result.regressions = sh.regressions;
  result.fence_failures = sh.fence_failures;
  result.first_problem = sh.first_problem;
  return result;
}

void report(const RunResult& r) {
  auto delta = [&](const char* name) { return r.after.get(name) - r.before.get(name); };
  const long long hits = delta("hits"), misses = delta("misses");
  const double ratio = hits + misses > 0 ? static_cast<double>(hits) / static_cast<double>(hits + misses) : 0.0;
  std::cout << "[ info ] reads " << r.reads << ", writes " << r.writes << ", hit ratio " << std::to_string(ratio)
            << " (hits " << hits << ", misses " << misses << ", fills " << delta("fills") << ", cancelled_fills "
            << delta("cancelled_fills") << ", coalesced " << delta("coalesced") << ", invalidations "
            << delta("invalidations") << ", flushes " << delta("flushes") << ", fences " << delta("fences") << ")\n"
            << "[ info ] ack -> first read returning >= v: " << show(r.first_new) << " (never read back: "
            << r.unmatched << ")\n"
            << "[ info ] ack -> last read still returning < v: " << show(r.last_old) << "\n"
            << "[ info ] stale " << r.stale << ", phantom " << r.phantom << ", errors " << r.errors
            << ", per-connection regressions " << r.regressions << ", fence failures " << r.fence_failures
            << ", invalidation connection kills " << r.kills << "\n";
  ::testing::Test::RecordProperty("reads", std::to_string(r.reads));
  ::testing::Test::RecordProperty("writes", std::to_string(r.writes));
  ::testing::Test::RecordProperty("hit_ratio", std::to_string(ratio));
  ::testing::Test::RecordProperty("delay_first_new_p50_ms", std::to_string(r.first_new.p50));
  ::testing::Test::RecordProperty("delay_first_new_p99_ms", std::to_string(r.first_new.p99));
  ::testing::Test::RecordProperty("delay_last_old_p50_ms", std::to_string(r.last_old.p50));
  ::testing::Test::RecordProperty("delay_last_old_p99_ms", std::to_string(r.last_old.p99));
}

class CacheCoherenceTest : public ProxyTest {
 protected:
  void SetUp() override {
    if (direct_mode()) GTEST_SKIP() << "the near-cache is respite's own";
    ProxyTest::SetUp();
    Client admin = connect();
    ASSERT_TRUE(wait_for_tracking(admin, deadline_in(5s))) << cache_stats(admin).raw;
  }
};

TEST_F(CacheCoherenceTest, DirectWritersAndCachedReadersNeverSeeStaleOrPhantomValues) {
  const RunResult r = run_stress(stack(), {});
  report(r);
  EXPECT_EQ(r.stale, 0) << r.first_problem;
  EXPECT_EQ(r.phantom, 0) << r.first_problem;
  EXPECT_EQ(r.errors, 0) << r.first_problem;
  EXPECT_EQ(r.fence_failures, 0) << r.first_problem;
  EXPECT_GT(r.writes, 1000);
  EXPECT_GT(r.reads, 10'000);
  EXPECT_GT(r.after.get("hits") - r.before.get("hits"), r.reads / 10) << "the cache was hardly used: proves little";
}

// The same while the invalidation connection is killed every 600 ms: each loss flushes the
// cache; nothing read while tracking was down may outlive the reconnection.
TEST_F(CacheCoherenceTest, StaysCoherentWhileTheInvalidationConnectionIsKilled) {
  const RunResult r = run_stress(stack(), {std::chrono::milliseconds(6000), std::chrono::milliseconds(600)});
  report(r);
  EXPECT_GE(r.kills, 5);
  EXPECT_EQ(r.stale, 0) << r.first_problem;
  EXPECT_EQ(r.phantom, 0) << r.first_problem;
  EXPECT_EQ(r.errors, 0) << r.first_problem;
  EXPECT_GE(r.after.get("flushes") - r.before.get("flushes"), r.kills);
  EXPECT_GT(r.writes, 500);
  // After the last kill, coherence is whole again: one more write per key, a fence, a read.
  Client admin = connect();
  ASSERT_TRUE(wait_for_tracking(admin, deadline_in(5s)));
  Client redis = stack().connect_redis();
  for (int k = 0; k < kKeys; ++k) ASSERT_EQ(redis.call({"SET", key_name(k), value_of(k, 1'000'000)}), "+OK");
  ASSERT_EQ(cache_fence(admin), "+OK");
  for (int k = 0; k < kKeys; ++k) EXPECT_EQ(admin.call({"GET", key_name(k)}), cat("\"", value_of(k, 1'000'000), "\""));
}

// Four pooled connections: reads of one key are filled through different connections, each
// tracking on its own; invalidations for all of them arrive on the one invalidation connection.
class CacheCoherencePoolTest : public CacheCoherenceTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_sets = {"upstream.pool_size=4"};
    return o;
  }
};

TEST_F(CacheCoherencePoolTest, FourPooledConnectionsStayCoherent) {
  const RunResult r = run_stress(stack(), {std::chrono::milliseconds(6000), std::chrono::milliseconds(0)});
  report(r);
  EXPECT_EQ(r.stale, 0) << r.first_problem;
  EXPECT_EQ(r.phantom, 0) << r.first_problem;
  EXPECT_EQ(r.errors, 0) << r.first_problem;
  EXPECT_EQ(r.fence_failures, 0) << r.first_problem;
  EXPECT_GT(r.writes, 1000);
  EXPECT_GT(r.after.get("hits") - r.before.get("hits"), r.reads / 10) << "the cache was hardly used: proves little";
  Client redis = stack().connect_redis();
  for (const auto& p : redis_clients_named(redis, "respite-pool-", true))
    EXPECT_NE(p.at("flags").find('t'), std::string::npos) << p.at("name") << ": " << p.at("flags");
  EXPECT_EQ(redis_clients_named(redis, "respite-pool-", true).size(), 4u);
}

}  // namespace
}  // namespace respite::test
