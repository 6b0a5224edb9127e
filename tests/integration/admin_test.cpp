// respite's in-band admin commands (RESPITE STATS | CONFIG | RELOAD), answered by respite and
// never forwarded, and the admin.users guard when client authentication is on.
#include <signal.h>

#include <string>

#include "integration/cache_fixture.h"

namespace respite::test {
namespace {

// A stack whose respite reads `config` from a file the test can rewrite.
class AdminTest : public ProxyTest {
 protected:
  void SetUp() override { SKIP_IN_DIRECT_MODE(); }

  void start(const std::string& config) {
    StackOptions o;
    o.respite_args = {"--config", write_config(dir_, config)};
    o.wait_upstream_ready = false;
    stack_ = std::make_unique<Stack>(o);
  }
  void rewrite(const std::string& config) { write_config(dir_, config); }

  // The value of "key:" in an INFO-style text (-1 if absent).
  static long long field(const std::string& text, const std::string& key) {
    size_t at = text.find("\n" + key + ":");
    if (at == std::string::npos) return -1;
    return std::stoll(text.substr(at + key.size() + 2));
  }

  TempDir dir_;
};

const std::string kBase = "[cache]\nenabled = false\n";
const std::string kUsers =
    "[client]\nusers = [{ name = \"app\", password = \"app-pw\" }, { name = \"boss\", password = \"boss-pw\" }]\n"
    "[admin]\nusers = [\"boss\"]\n";

TEST_F(AdminTest, StatsConfigAndReloadWithoutClientAuthentication) {
  start(kBase);
  RawConn c = stack().raw();
  const std::string stats = one(c, {"RESPITE", "STATS"});
  ASSERT_TRUE(starts_with(stats, "$")) << escape_bytes(stats);
  for (const char* section : {"# Server", "# Upstream", "# Ratelimit"}) {
    EXPECT_NE(stats.find(section), std::string::npos) << section << "\n" << stats;
  }
  EXPECT_GE(field(stats, "clients"), 1) << stats;
  EXPECT_EQ(field(stats, "config_reloads"), 0) << stats;

  const std::string config = one(c, {"RESPITE", "CONFIG"});
  EXPECT_NE(config.find("[server]"), std::string::npos) << config;
  EXPECT_NE(config.find("enabled = false"), std::string::npos) << config;  // the file's cache.enabled

  // A valid reload, then an invalid one: the second is refused with the reason and counted.
  rewrite(kBase + "[ratelimit]\nmax_delayed = 7\n");
  EXPECT_EQ(one(c, {"RESPITE", "RELOAD"}), kOk);
  rewrite(kBase + "[ratelimit]\nmax_delayed = 0\n");
  const std::string refused = one(c, {"RESPITE", "RELOAD"});
  EXPECT_TRUE(starts_with(refused, "-ERR configuration reload failed: ")) << escape_bytes(refused);
  EXPECT_NE(refused.find("ratelimit.max_delayed"), std::string::npos) << escape_bytes(refused);
  const std::string after = one(c, {"RESPITE", "STATS"});
  EXPECT_EQ(field(after, "config_reloads"), 1) << after;
  EXPECT_EQ(field(after, "config_reload_failures"), 1) << after;
  EXPECT_EQ(field(after, "max_delayed"), 7) << after;  // the valid reload's value stays
  EXPECT_NE(one(c, {"RESPITE", "CONFIG"}).find("max_delayed = 7"), std::string::npos);

  // A change only a restart applies is named in the reply and counted, not ignored.
  rewrite(kBase + "[ratelimit]\nmax_delayed = 7\n[client]\nmax_pending = 99\n");
  EXPECT_EQ(one(c, {"RESPITE", "RELOAD"}), "+OK (restart respite to apply: client.max_pending)\r\n");
  EXPECT_EQ(field(one(c, {"RESPITE", "STATS"}), "config_restart_pending"), 1);
  EXPECT_NE(one(c, {"RESPITE", "CONFIG"}).find("max_pending = 1024"), std::string::npos);  // still running
  rewrite(kBase + "[ratelimit]\nmax_delayed = 7\n");
  EXPECT_EQ(one(c, {"RESPITE", "RELOAD"}), kOk);
  EXPECT_EQ(field(one(c, {"RESPITE", "STATS"}), "config_restart_pending"), 0);

  // SIGHUP goes the same way and is counted the same.
  rewrite(kBase + "[ratelimit]\nmax_delayed = 9\n");
  stack().respite()->send_signal(SIGHUP);
  EXPECT_TRUE(poll_until([&] { return field(one(c, {"RESPITE", "STATS"}), "config_reloads") == 4; },
                         deadline_in(kWait), 5ms));
  EXPECT_EQ(field(one(c, {"RESPITE", "STATS"}), "max_delayed"), 9);

  EXPECT_TRUE(starts_with(one(c, {"RESPITE", "NOPE"}), "-ERR unknown or malformed RESPITE command"));
  EXPECT_TRUE(starts_with(one(c, {"RESPITE"}), "-ERR wrong number of arguments"));
}

TEST_F(AdminTest, DeniedCommandsAndAdminUsersReloadOnOpenConnections) {
  start(kBase + "[client]\ndeny_commands = [\"flushall\"]\n" +
        "users = [{ name = \"app\", password = \"app-pw\" }, { name = \"boss\", password = \"boss-pw\" }]\n"
        "[admin]\nusers = [\"boss\"]\n");
  RawConn app = stack().raw();
  ASSERT_EQ(one(app, {"AUTH", "app", "app-pw"}), kOk);
  RawConn boss = stack().raw();
  ASSERT_EQ(one(boss, {"AUTH", "boss", "boss-pw"}), kOk);
  EXPECT_NE(one(app, {"FLUSHALL"}).find("client.deny_commands"), std::string::npos);
  EXPECT_EQ(one(app, {"SET", "admin:reload", "1"}), kOk);
  EXPECT_TRUE(starts_with(one(app, {"RESPITE", "STATS"}), "-NOPERM"));

  // Now SET is denied, FLUSHALL is not, and app is an admin: the same connections see it.
  const std::string users =
      "[client]\nusers = [{ name = \"app\", password = \"app-pw\" }, { name = \"boss\", password = \"boss-pw\" }]\n"
      "deny_commands = [\"set\"]\n[admin]\nusers = [\"app\"]\n";
  rewrite(kBase + users);
  EXPECT_EQ(one(boss, {"RESPITE", "RELOAD"}), kOk);  // both keys apply live: nothing to restart
  EXPECT_NE(one(app, {"SET", "admin:reload", "2"}).find("client.deny_commands"), std::string::npos);
  EXPECT_EQ(one(app, {"FLUSHALL"}), kOk);
  EXPECT_TRUE(starts_with(one(app, {"RESPITE", "STATS"}), "$"));
  EXPECT_TRUE(starts_with(one(boss, {"RESPITE", "STATS"}), "-NOPERM"));
  EXPECT_NE(one(app, {"RESPITE", "CONFIG"}).find("deny_commands = [\"set\"]"), std::string::npos);
}

TEST_F(AdminTest, OnlyAdminUsersMayRunThemWhenClientsAuthenticate) {
  start(kBase + kUsers);
  RawConn anon = stack().raw();
  EXPECT_TRUE(starts_with(one(anon, {"RESPITE", "STATS"}), "-NOAUTH"));
  RawConn app = stack().raw();
  ASSERT_EQ(one(app, {"AUTH", "app", "app-pw"}), kOk);
  for (const Command& cmd : std::vector<Command>{{"RESPITE", "STATS"},
                                                 {"RESPITE", "CONFIG"},
                                                 {"RESPITE", "RELOAD"},
                                                 {"RESPITE", "CACHE", "FLUSH"},
                                                 {"RESPITE", "RATELIMIT", "RESET"}}) {
    const std::string r = one(app, cmd);
    EXPECT_EQ(r, "-NOPERM user 'app' may not run RESPITE admin commands (see admin.users)\r\n") << cmd[1];
  }
  RawConn boss = stack().raw();
  ASSERT_EQ(one(boss, {"AUTH", "boss", "boss-pw"}), kOk);
  EXPECT_TRUE(starts_with(one(boss, {"RESPITE", "STATS"}), "$"));
  const std::string config = one(boss, {"RESPITE", "CONFIG"});
  EXPECT_NE(config.find("password = \"***\""), std::string::npos) << config;  // secrets are never shown
  EXPECT_EQ(config.find("boss-pw"), std::string::npos);
  EXPECT_EQ(config.find("app-pw"), std::string::npos);
  EXPECT_EQ(one(boss, {"RESPITE", "RELOAD"}), kOk);
}

// SIGTERM while a pipeline of slow commands is running: respite stops accepting, answers every
// request it had read (none is lost or left unanswered), then exits 0 within the drain timeout.
TEST_F(AdminTest, SigtermDuringASlowPipelineAnswersEverythingThenExitsZero) {
  start(kBase + "[server]\ndrain_timeout_ms = 5000\n");
  Client redis = stack().connect_redis();
  RawConn c = stack().raw();
  std::string batch;
  for (int i = 0; i < 10; ++i) {
    batch += resp_command({"BLPOP", "drain:none", "0.1"});  // 100 ms each, on a pinned connection
    batch += resp_command({"INCR", "drain:n"});
  }
  ASSERT_TRUE(c.send_all(batch, deadline_in(kWait)));
  ASSERT_EQ(next_reply(c), "*-1\r\n");  // the pipeline is running
  const auto t0 = Clock::now();
  stack().respite()->send_signal(SIGTERM);
  std::vector<std::string> replies = {"*-1\r\n"};
  for (int i = 1; i < 20; ++i) replies.push_back(next_reply(c));
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(replies[2 * i], "*-1\r\n") << "BLPOP #" << i;
    EXPECT_EQ(replies[2 * i + 1], cat(":", i + 1, "\r\n")) << "INCR #" << i;
  }
  bool closed = false;
  EXPECT_EQ(c.read_until_closed(deadline_in(kWait), &closed), "");
  EXPECT_TRUE(closed);
  auto status = stack().respite()->wait_exit(t0 + 6s);
  ASSERT_TRUE(status) << "respite still running 6 s after SIGTERM";
  EXPECT_TRUE(status->ok()) << status->describe();
  EXPECT_LT(ms_since(t0), 5000) << "it should not have needed the whole drain timeout";
  EXPECT_EQ(redis.call({"GET", "drain:n"}), "\"10\"");  // every acknowledged INCR ran, once
}

}  // namespace
}  // namespace respite::test
