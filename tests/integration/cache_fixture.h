// The near-cache integration tests' shared fixture: CacheTest (a stack with the cache on, a
// direct Redis client and an admin client through respite) and the helpers the test files
// cache_basic_test.cpp, cache_writes_test.cpp, cache_lifecycle_test.cpp and cache_admin_test.cpp
// share (admin_test.cpp and admin_http_test.cpp use its ProxyTest helpers).
//
// Hits and misses are told apart twice: by respite's counters (RESPITE CACHE STATS, answered
// by respite) and by Redis's own (INFO commandstats read directly on Redis: a hit adds no call).
// Everything here is respite's own behaviour: skipped in direct mode.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/cache_probe.h"
#include "support/redis_probe.h"
#include "support/stack.h"

namespace respite::test {

using namespace std::chrono_literals;
using Command = std::vector<std::string>;

inline constexpr auto kWait = 5s;  // upper bound for anything that should happen promptly
inline const std::string kNil = "$-1\r\n";
inline const std::string kOk = "+OK\r\n";

inline long long ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

// Writes `text` to <dir>/respite.toml and returns the path.
inline std::string write_config(const TempDir& dir, const std::string& text) {
  const std::string path = dir.path() + "/respite.toml";
  std::ofstream(path) << text;
  return path;
}

// Sends every command in one write, then reads one reply per command (raw bytes; "<none>" when
// a reply does not come within kWait).
inline std::vector<std::string> pipelined(RawConn& conn, const std::vector<Command>& commands) {
  std::string batch;
  for (const auto& c : commands) batch += resp_command(c);
  std::vector<std::string> replies;
  if (!conn.send_all(batch, deadline_in(kWait))) return replies;
  for (size_t i = 0; i < commands.size(); ++i) replies.push_back(next_reply(conn, kWait));
  return replies;
}

// One command, one reply (raw bytes).
inline std::string one(RawConn& conn, const Command& command) {
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

}  // namespace respite::test
