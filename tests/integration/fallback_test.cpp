// The fallback against a real redis-server that the tests stop and start: cached reads keep
// being served, writes are refused (read-only) or journaled and replayed (local), every write
// respite acknowledged is in Redis after the replay (also across a kill -9 of respite during
// the outage), and a write Redis refuses at replay goes to the dead-letter file.
//
// Waiting is on respite's log lines ("fallback active", "fallback over"): events, not sleeps.
#include <signal.h>

#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/cache_probe.h"
#include "support/redis_probe.h"
#include "support/stack.h"

namespace respite::test {
namespace {

constexpr auto kOutage = std::chrono::seconds(15);

class FallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_IN_DIRECT_MODE();
    redis_ = std::make_unique<RedisServer>();
  }
  void TearDown() override {
    if (::testing::Test::HasFailure()) {
      if (respite_) std::fprintf(stderr, "---- respite log ----\n%s\n", respite_->log().c_str());
      if (redis_) std::fprintf(stderr, "---- redis log ----\n%s\n", redis_->log().c_str());
    }
  }

  // respite with `fallback` as its [fallback] table (plus quick failure detection), its
  // journal under data_ (kept across restarts of respite).
  void start_respite(const std::string& fallback, int open_ms = 200) {
    const std::string path = dir_.path() + "/respite.toml";
    std::ofstream(path) << "[upstream]\nconnect_timeout_ms = 300\nreconnect_min_ms = 20\nreconnect_max_ms = 200\n"
                           "command_timeout_ms = 2000\n[fallback]\ndata_dir = \""
                        << data_.path() << "\"\nbreaker_failures = 2\nbreaker_open_ms = " << open_ms << "\n"
                        << fallback;
    RespiteOptions o;
    o.upstream_url = "redis://127.0.0.1:" + std::to_string(redis_->port());
    o.extra_args = {"--config", path};
    o.admin = "127.0.0.1:0";
    log_seen_ = 0;
    respite_ = std::make_unique<RespiteProcess>(o);
  }
  // Caches `key` (set in Redis to `value` first): tracking on, then a read through respite.
  void cache_value(Client& c, const std::string& key, const std::string& value) {
    ASSERT_TRUE(wait_for_tracking(c, deadline_in(kOutage)));
    ASSERT_EQ(redis_client().call({"SET", key, value}), "+OK");
    ASSERT_EQ(c.call({"GET", key}), "\"" + value + "\"");
    const std::string cache = c.call({"RESPITE", "CACHE", "STATS"});
    ASSERT_NE(cache.find("\nentries:1\r"), std::string::npos) << cache;
  }
  Client client() { return Client::tcp(respite_->port()); }
  // GET `path` on the admin listener: the whole HTTP response ("" if it failed).
  std::string http_get(const std::string& path) {
    const std::string& a = respite_->admin_address();
    RawConn c = RawConn::tcp(static_cast<uint16_t>(std::stoi(a.substr(a.rfind(':') + 1))));
    if (!c.send_all("GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n", deadline_in(kOutage))) return "";
    bool closed = false;
    return c.read_until_closed(deadline_in(kOutage), &closed);
  }
  Client redis_client() { return Client::tcp(redis_->port()); }

  // The next occurrence of `line` in respite's log after the ones already waited for.
  bool wait_log(const std::string& line) {
    const bool ok = poll_until([&] { return count(respite_->log(), line) > seen_[line]; }, deadline_in(kOutage),
                               std::chrono::milliseconds(10));
    if (ok) ++seen_[line];
    return ok;
  }
  static size_t count(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  }
  // A field of RESPITE STATS ("# Fallback" section), -1 if absent.
  static long long stat(Client& c, const std::string& key) {
    const std::string s = c.call({"RESPITE", "STATS"});
    const size_t at = s.find("\n" + key + ":", s.find("# Fallback"));
    if (at == std::string::npos) return -1;
    return std::stoll(s.substr(at + key.size() + 2));
  }

  TempDir dir_;   // config file
  TempDir data_;  // fallback.data_dir
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<RespiteProcess> respite_;
  std::map<std::string, size_t> seen_;
  size_t log_seen_ = 0;
};

TEST_F(FallbackTest, ReadOnlyServesCachedReadsAndRefusesWrites) {
  start_respite("mode = \"read-only\"\n");
  Client c = client();
  cache_value(c, "ro:k", "cached");

  redis_->stop();
  ASSERT_TRUE(wait_log("fallback active"));
  EXPECT_EQ(c.call({"GET", "ro:k"}), "\"cached\"");
  const std::string refused = c.call({"SET", "ro:k", "new"});
  EXPECT_NE(refused.find("FALLBACK writes are refused"), std::string::npos) << refused;
  const std::string miss = c.call({"GET", "ro:never-cached"});
  EXPECT_NE(miss.find("FALLBACK cannot answer 'get'"), std::string::npos) << miss;
  EXPECT_EQ(c.call({"PING"}), "+PONG");
  EXPECT_EQ(stat(c, "active"), 1);
  EXPECT_GE(stat(c, "stale_replies"), 1);
  // The pod can serve: /readyz says so, /metrics shows the breaker and the fallback.
  const std::string ready = http_get("/readyz");
  EXPECT_EQ(ready.rfind("HTTP/1.1 200", 0), 0u) << ready;
  EXPECT_NE(ready.find("fallback active"), std::string::npos) << ready;
  const std::string metrics = http_get("/metrics");
  EXPECT_NE(metrics.find("respite_breaker_state{state=\"open\"} 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("respite_fallback_active 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("respite_fallback_replies_total{source=\"stale_cache\"} 1\n"), std::string::npos);

  redis_->restart();
  ASSERT_TRUE(wait_log("fallback over"));
  EXPECT_EQ(stat(c, "active"), 0);
  EXPECT_NE(http_get("/metrics").find("respite_breaker_state{state=\"closed\"} 1\n"), std::string::npos);
  // The near-cache missed invalidations while Redis was away: it was flushed, and tracking is
  // set up again. (This Redis restarted empty, so the stale "cached" must not come back.)
  const std::string cache = c.call({"RESPITE", "CACHE", "STATS"});
  EXPECT_NE(cache.find("\nentries:0\r"), std::string::npos) << cache;
  EXPECT_TRUE(wait_for_tracking(c, deadline_in(kOutage)));
  EXPECT_EQ(c.call({"GET", "ro:k"}), "(nil)");
  EXPECT_EQ(c.call({"SET", "ro:k", "new"}), "+OK");
  EXPECT_EQ(redis_client().call({"GET", "ro:k"}), "\"new\"");
}

TEST_F(FallbackTest, MissPolicyNilAnswersANullReply) {
  start_respite("mode = \"read-only\"\nmiss = \"nil\"\n");
  Client c = client();
  ASSERT_EQ(c.call({"PING"}), "+PONG");
  redis_->stop();
  ASSERT_TRUE(wait_log("fallback active"));
  EXPECT_EQ(c.call({"GET", "nil:k"}), "(nil)");
  EXPECT_EQ(stat(c, "misses"), 1);
}

TEST_F(FallbackTest, LocalWritesAreReadBackAndReplayedInOrder) {
  start_respite("mode = \"local\"\nfsync = \"always\"\n");
  Client c = client();
  cache_value(c, "loc:cached", "5");  // cached before the outage

  redis_->stop();
  ASSERT_TRUE(wait_log("fallback active"));
  EXPECT_EQ(c.call({"SET", "loc:a", "1"}), "+OK");
  EXPECT_EQ(c.call({"GET", "loc:a"}), "\"1\"");  // reads see the outage's writes
  EXPECT_EQ(c.call({"INCR", "loc:a"}), ":2");
  EXPECT_EQ(c.call({"HSET", "loc:h", "f", "v"}).find("-FALLBACK cannot answer 'hset'"), 0u);  // unknown key
  EXPECT_EQ(c.call({"INCRBY", "loc:cached", "10"}), ":15");  // seeded from the cache
  EXPECT_EQ(c.call({"SET", "loc:ttl", "x", "EX", "1000"}), "+OK");
  EXPECT_EQ(c.call({"MULTI"}).find("-FALLBACK 'multi' is not available"), 0u);
  EXPECT_EQ(stat(c, "journal_records"), 4);

  redis_->restart();
  ASSERT_TRUE(wait_log("fallback over"));
  Client r = redis_client();
  EXPECT_EQ(r.call({"GET", "loc:a"}), "\"2\"");
  EXPECT_EQ(r.call({"GET", "loc:cached"}), "\"10\"") << "INCRBY replays on what Redis holds (empty after restart)";
  const std::string ttl = r.call({"TTL", "loc:ttl"});
  EXPECT_NE(ttl, ":-1") << "the TTL was replayed";
  EXPECT_EQ(stat(c, "journal_records"), 0);
  EXPECT_EQ(stat(c, "replayed"), 4);
  EXPECT_EQ(c.call({"GET", "loc:a"}), "\"2\"");  // through Redis again
}

// A bounded write load through respite while Redis goes away and comes back: every write
// respite acknowledged is in Redis afterwards, with the last acknowledged value.
TEST_F(FallbackTest, NoAcknowledgedWriteIsLostAcrossAnOutage) {
  start_respite("mode = \"local\"\nfsync = \"always\"\n");
  constexpr int kWriters = 4;
  constexpr int kKeys = 50;
  std::atomic<bool> stop{false};
  std::vector<std::map<std::string, std::string>> acked(kWriters);  // per writer: key -> last acked value
  std::vector<long> ok_count(kWriters, 0), err_count(kWriters, 0);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      Client c = client();
      for (long i = 0; !stop && i < 200000; ++i) {
        const std::string key = "load:" + std::to_string(w) + ":" + std::to_string(i % kKeys);
        const std::string value = std::to_string(i);
        Reply r = c.command({"SET", key, value});
        if (r && r->type == REDIS_REPLY_STATUS) {
          acked[w][key] = value;
          ++ok_count[w];
        } else {
          ++err_count[w];  // an error reply: not acknowledged, may or may not be applied
          if (!r) c = client();
        }
      }
    });
  }
  auto total_ok = [&] {
    long n = 0;
    for (long v : ok_count) n += v;
    return n;
  };
  ASSERT_TRUE(poll_until([&] { return total_ok() > 500; }, deadline_in(kOutage), std::chrono::milliseconds(5)));
  redis_->kill();
  ASSERT_TRUE(wait_log("fallback active"));
  const long at_outage = total_ok();
  ASSERT_TRUE(poll_until([&] { return total_ok() > at_outage + 500; }, deadline_in(kOutage),
                         std::chrono::milliseconds(5)));
  redis_->restart();
  ASSERT_TRUE(wait_log("fallback over"));
  const long after = total_ok();
  ASSERT_TRUE(poll_until([&] { return total_ok() > after + 200; }, deadline_in(kOutage), std::chrono::milliseconds(5)));
  stop = true;
  for (auto& t : writers) t.join();

  Client r = redis_client();
  size_t checked = 0;
  for (int w = 0; w < kWriters; ++w) {
    for (const auto& [key, value] : acked[w]) {
      ASSERT_EQ(r.call({"GET", key}), "\"" + value + "\"") << key;
      ++checked;
    }
  }
  EXPECT_EQ(checked, static_cast<size_t>(kWriters * kKeys));
  Client c = client();
  EXPECT_GE(stat(c, "replayed"), 500);
  EXPECT_EQ(stat(c, "dead_lettered"), 0);
  std::fprintf(stderr, "acknowledged %ld writes (%ld during the outage window), %lld replayed\n", total_ok(),
               after - at_outage, stat(c, "replayed"));
}

TEST_F(FallbackTest, KillNineDuringTheOutageLosesNothingAcknowledged) {
  start_respite("mode = \"local\"\nfsync = \"always\"\n");
  {
    Client c = client();
    ASSERT_EQ(c.call({"PING"}), "+PONG");
  }
  redis_->kill();
  ASSERT_TRUE(wait_log("fallback active"));
  {
    Client c = client();
    for (int i = 0; i < 100; ++i) ASSERT_EQ(c.call({"SET", "k9:" + std::to_string(i), "v" + std::to_string(i)}), "+OK");
  }
  respite_->send_signal(SIGKILL);
  ASSERT_TRUE(respite_->wait_exit(deadline_in(kOutage)));
  // Redis is still down: the new respite recovers the journal and keeps answering locally.
  start_respite("mode = \"local\"\nfsync = \"always\"\n");
  ASSERT_TRUE(wait_log("wait to be replayed"));
  redis_->restart();
  ASSERT_TRUE(wait_log("fallback over"));
  Client r = redis_client();
  for (int i = 0; i < 100; ++i) ASSERT_EQ(r.call({"GET", "k9:" + std::to_string(i)}), "\"v" + std::to_string(i) + "\"");
}

TEST_F(FallbackTest, AWriteRedisRefusesAtReplayGoesToTheDeadLetterFile) {
  // A long least-open time leaves the test a window between Redis's return and the replay.
  start_respite("mode = \"local\"\nfsync = \"always\"\n", 4000);
  Client c = client();
  cache_value(c, "dl:n", "1");  // cached: the store can seed it
  redis_->stop();
  ASSERT_TRUE(wait_log("fallback active"));
  EXPECT_EQ(c.call({"INCR", "dl:n"}), ":2");
  EXPECT_EQ(c.call({"SET", "dl:other", "x"}), "+OK");
  redis_->restart();
  // Meanwhile another application made dl:n a hash.
  ASSERT_EQ(redis_client().call({"HSET", "dl:n", "f", "v"}), ":1");
  ASSERT_TRUE(wait_log("fallback over"));
  EXPECT_EQ(stat(c, "dead_lettered"), 1);
  EXPECT_EQ(redis_client().call({"GET", "dl:other"}), "\"x\"");  // the rest was replayed
  std::ifstream in(data_.path() + "/dead-letter.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_NE(line.find("\"INCR\""), std::string::npos) << line;
  EXPECT_NE(line.find("WRONGTYPE"), std::string::npos) << line;
}

}  // namespace
}  // namespace respite::test
