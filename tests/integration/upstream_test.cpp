// The upstream side: Redis going away and coming back, and the AUTH/SELECT handshake taken from
// the upstream URL.
#include <gtest/gtest.h>


#include "support/redis_probe.h"
#include "support/stack.h"

namespace respite::test {
namespace {

using namespace std::chrono_literals;

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

class UpstreamOutageTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_sets = {"upstream.reconnect_max_ms=200"};
    return o;
  }
};

TEST_F(UpstreamOutageTest, StoppedRedisYieldsPromptErrorsAndRestartRestoresService) {
  SKIP_IN_DIRECT_MODE();
  Client c = Client::tcp(stack().port(), 5s);
  ASSERT_EQ(c.call({"SET", "before", "1"}), "+OK");

  stack().redis().stop();

  // An existing client gets an error, not a hang, and stays connected.
  for (int i = 0; i < 3; ++i) {
    const auto t0 = Clock::now();
    std::string r = c.call({"GET", "before"});
    const auto took = Clock::now() - t0;
    EXPECT_TRUE(starts_with(r, "-ERR upstream")) << r;
    EXPECT_LT(took, 3s) << "error reply took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                        << " ms";
  }
  // A new client is accepted and gets the same prompt error.
  {
    const auto t0 = Clock::now();
    Client fresh = Client::tcp(stack().port(), 5s);
    std::string r = fresh.call({"SET", "during", "1"});
    EXPECT_TRUE(starts_with(r, "-ERR upstream unavailable")) << r;
    EXPECT_LT(Clock::now() - t0, 3s);
  }
  // Pipelined requests all get errors, in order, none lost.
  c.append({"GET", "a"});
  c.append({"GET", "b"});
  c.append({"GET", "c"});
  for (int i = 0; i < 3; ++i) {
    Reply r = c.get_reply();
    ASSERT_TRUE(r) << c.error();
    EXPECT_TRUE(starts_with(describe(r), "-ERR upstream")) << describe(r);
  }

  stack().redis().restart();
  std::string last;
  EXPECT_TRUE(stack().wait_until_serving(deadline_in(10s), &last))
      << "service not restored 10 s after Redis restarted; last reply: " << last;
  // The old client connection works again too (no persistence: the old key is gone).
  EXPECT_EQ(c.call({"GET", "before"}), "(nil)");
  EXPECT_EQ(c.call({"SET", "after", "2"}), "+OK");
  EXPECT_EQ(c.call({"GET", "after"}), "\"2\"");
}

TEST_F(UpstreamOutageTest, RequestInFlightWhenRedisDiesGetsAnError) {
  SKIP_IN_DIRECT_MODE();
  Client c = Client::tcp(stack().port(), 5s);
  ASSERT_EQ(c.call({"PING"}), "+PONG");
  // A script that announces itself in Redis's log, then keeps Redis busy for 3 s: once the
  // line shows up, the request is certainly in flight.
  c.append({"EVAL",
            "redis.log(redis.LOG_WARNING, 'respite-test: script running') "
            "local s = redis.call('TIME')[1] while redis.call('TIME')[1] - s < 3 do end return 1",
            "0"});
  c.append({"PING"});
  // Push the appended commands out without waiting for a reply.
  int done = 0;
  while (!done) ASSERT_EQ(redisBufferWrite(c.context(), &done), REDIS_OK);
  ASSERT_TRUE(stack().redis().wait_for_log("respite-test: script running", deadline_in(5s)))
      << "the script never reached Redis";
  const auto t0 = Clock::now();
  stack().redis().kill();
  Reply r1 = c.get_reply();
  Reply r2 = c.get_reply();
  ASSERT_TRUE(r1 && r2) << "no reply after Redis died: " << c.error();
  EXPECT_TRUE(starts_with(describe(r1), "-ERR upstream")) << describe(r1);
  EXPECT_TRUE(starts_with(describe(r2), "-ERR upstream")) << describe(r2);
  EXPECT_LT(Clock::now() - t0, 3s);

  stack().redis().restart();
  std::string last;
  EXPECT_TRUE(stack().wait_until_serving(deadline_in(10s), &last)) << last;
}

// Pinned clients and Redis going away: a client whose state lived on a dedicated connection
// is disconnected (its state is gone); a client that asks for a dedicated connection while
// Redis is down gets a prompt error and stays connected.
TEST_F(UpstreamOutageTest, PinnedStateIsLostVisiblyAndNewPinsFailPromptly) {
  SKIP_IN_DIRECT_MODE();
  RawConn sub = stack().raw();
  ASSERT_TRUE(sub.send_all(resp_command({"SUBSCRIBE", "outage:ch"}), deadline_in(5s)));
  ASSERT_EQ(sub.read_reply(deadline_in(5s)).value_or("<none>"), "*3\r\n$9\r\nsubscribe\r\n$9\r\noutage:ch\r\n:1\r\n");
  Client tx = Client::tcp(stack().port(), 5s);
  ASSERT_EQ(tx.call({"MULTI"}), "+OK");
  ASSERT_EQ(tx.call({"SET", "outage:k", "1"}), "+QUEUED");

  stack().redis().stop();

  bool closed = false;
  sub.read_until_closed(deadline_in(5s), &closed);
  EXPECT_TRUE(closed) << "a subscriber whose upstream connection died was left open";
  std::string r = tx.call({"EXEC"});
  EXPECT_TRUE(starts_with(r, "<error")) << "the transaction's client was not disconnected: " << r;

  Client c = Client::tcp(stack().port(), 5s);
  for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
           {"MULTI"}, {"BLPOP", "outage:list", "1"}, {"SUBSCRIBE", "outage:ch"}}) {
    const auto t0 = Clock::now();
    r = c.call(cmd);
    EXPECT_TRUE(starts_with(r, "-ERR upstream unavailable")) << cmd[0] << " -> " << r;
    EXPECT_LT(Clock::now() - t0, 3s) << cmd[0];
    if (cmd[0] == "MULTI") {
      EXPECT_TRUE(starts_with(c.call({"EXEC"}), "-EXECABORT"));
    }
  }
  EXPECT_TRUE(starts_with(c.call({"GET", "x"}), "-ERR upstream")) << "client unusable after refusals";

  stack().redis().restart();
  std::string last;
  ASSERT_TRUE(stack().wait_until_serving(deadline_in(10s), &last)) << last;
  EXPECT_EQ(c.call({"MULTI"}), "+OK");
  EXPECT_EQ(c.call({"INCR", "outage:n"}), "+QUEUED");
  EXPECT_EQ(c.call({"EXEC"}), "[:1]");
}

// SCRIPT KILL goes to Redis on a connection of its own, so it is not queued behind the busy
// script on the shared connection it should stop. (The command timeout is raised: Redis reads
// nothing else for its first 5 s, busy-reply-threshold, longer than the default timeout.)
class BusyScriptTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_sets = {"upstream.command_timeout_ms=20000"};
    return o;
  }
};

TEST_F(BusyScriptTest, ScriptKillStopsABusyScriptRunningOnTheSharedConnection) {
  Client a = Client::tcp(stack().port(), 10s);
  a.append({"EVAL",
            "redis.log(redis.LOG_WARNING, 'respite-test: busy script') "
            "local s = redis.call('TIME')[1] while redis.call('TIME')[1] - s < 8 do end return 1",
            "0"});
  int done = 0;
  while (!done) ASSERT_EQ(redisBufferWrite(a.context(), &done), REDIS_OK);
  ASSERT_TRUE(stack().redis().wait_for_log("respite-test: busy script", deadline_in(5s)));
  Client b = Client::tcp(stack().port(), 10s);
  const auto t0 = Clock::now();
  std::string r;
  // Redis reads other connections only once the script has run for busy-reply-threshold
  // (5 s by default), so the reply to the kill comes after that.
  ASSERT_TRUE(poll_until([&] { return (r = b.call({"SCRIPT", "KILL"})) == "+OK"; }, deadline_in(7s), 50ms)) << r;
  Reply killed = a.get_reply();
  ASSERT_TRUE(killed) << a.error();
  EXPECT_NE(describe(killed).find("killed"), std::string::npos) << describe(killed);
  EXPECT_LT(Clock::now() - t0, 7s);
  EXPECT_EQ(a.call({"PING"}), "+PONG");
}

// CLIENT PAUSE WRITE holds back writes, which on a shared connection also holds back what
// follows them; CLIENT UNPAUSE goes on a connection of its own, so it cannot deadlock there.
TEST_F(BusyScriptTest, ClientUnpauseIsNotStuckBehindAPausedWrite) {
  Client a = Client::tcp(stack().port(), 10s);
  Client b = Client::tcp(stack().port(), 10s);
  ASSERT_EQ(a.call({"CLIENT", "PAUSE", "8000", "WRITE"}), "+OK");
  b.append({"SET", "pause:k", "v"});
  int done = 0;
  while (!done) ASSERT_EQ(redisBufferWrite(b.context(), &done), REDIS_OK);
  Client redis = stack().connect_redis();
  // The write is held by Redis: it shows up as a blocked client (paused).
  ASSERT_TRUE(poll_until([&] { return info_integer(redis, "clients", "blocked_clients").value_or(0) >= 1; },
                         deadline_in(5s), 5ms));
  const auto t0 = Clock::now();
  EXPECT_EQ(a.call({"CLIENT", "UNPAUSE"}), "+OK");
  Reply r = b.get_reply();
  ASSERT_TRUE(r) << b.error();
  EXPECT_EQ(describe(r), "+OK");
  EXPECT_LT(Clock::now() - t0, 4s) << "the write waited for the pause to run out";
}

class StartupTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.wait_upstream_ready = false;
    return o;
  }
};

TEST_F(StartupTest, RequestsRightAfterStartupAreServedWhenRedisIsUp) {
  SKIP_IN_DIRECT_MODE();
  // Redis is up before respite starts: a request sent as soon as respite reports that it is
  // listening must be served (queued behind the pool's first connect), not refused as
  // "upstream unavailable".
  RawConn conn = stack().raw();
  ASSERT_TRUE(conn.send_all(resp_command({"SET", "startup:k", "v"}) + resp_command({"GET", "startup:k"}),
                            deadline_in(5s)));
  EXPECT_EQ(conn.read_reply(deadline_in(5s)).value_or("<none>"), "+OK\r\n");
  EXPECT_EQ(conn.read_reply(deadline_in(5s)).value_or("<none>"), "$1\r\nv\r\n");
}

class UpstreamAclTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    // The default user needs a password nobody gives respite: only alice can work.
    o.redis_args = {"--requirepass", "admin-secret", "--user", "alice", "on", ">alice-pw", "~*", "&*", "+@all"};
    o.upstream_user = "alice";
    o.upstream_password = "alice-pw";
    o.upstream_db = 3;
    return o;
  }
};

TEST_F(UpstreamAclTest, AclUserAndDatabaseFromUrlApplyToEveryUpstreamConnection) {
  Client c = connect();
  EXPECT_EQ(c.call({"SET", "acl:key", "in-db-3"}), "+OK");
  EXPECT_EQ(c.call({"GET", "acl:key"}), "\"in-db-3\"");
  // Enough concurrent traffic to touch every pooled connection.
  for (int i = 0; i < 200; ++i) c.append({"SET", cat("acl:k", i), "v"});
  for (int i = 0; i < 200; ++i) EXPECT_EQ(describe(c.get_reply()), "+OK");

  Client redis = stack().connect_redis();
  EXPECT_EQ(redis.call({"SELECT", "3"}), "+OK");
  EXPECT_EQ(redis.call({"GET", "acl:key"}), "\"in-db-3\"");
  EXPECT_EQ(redis.call({"DBSIZE"}), ":201");
  EXPECT_EQ(redis.call({"SELECT", "0"}), "+OK");
  EXPECT_EQ(redis.call({"DBSIZE"}), ":0") << "keys leaked into db 0";
  if (!stack().direct()) {
    // Every connection respite holds is authenticated as alice.
    Reply list = redis.command({"CLIENT", "LIST"});
    ASSERT_TRUE(list);
    std::string text(list->str, list->len);
    EXPECT_EQ(text.find("user=default"), std::string::npos) << text;
  }
}

class UpstreamPasswordTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.redis_args = {"--requirepass", "s3cret"};
    o.upstream_password = "s3cret";
    return o;
  }
};

TEST_F(UpstreamPasswordTest, PasswordOnlyAuthFromUrl) {
  Client c = connect();
  EXPECT_EQ(c.call({"SET", "pw:key", "v"}), "+OK");
  Client redis = stack().connect_redis();
  EXPECT_EQ(redis.call({"GET", "pw:key"}), "\"v\"");
}

class WrongPasswordTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.redis_args = {"--requirepass", "right-password"};
    o.upstream_password = "wrong-password";
    o.respite_sets = {"upstream.reconnect_max_ms=200"};
    o.wait_upstream_ready = false;  // it never will be
    return o;
  }
};

TEST_F(WrongPasswordTest, WrongUpstreamPasswordYieldsErrorsAndALogLineNotAHang) {
  SKIP_IN_DIRECT_MODE();
  Client c = Client::tcp(stack().port(), 5s);
  for (int i = 0; i < 3; ++i) {
    const auto t0 = Clock::now();
    std::string r = c.call({"GET", "k"});
    EXPECT_TRUE(starts_with(r, "-ERR upstream")) << r;
    EXPECT_LT(Clock::now() - t0, 3s);
  }
  // The failure is logged, naming the cause Redis gave; the password itself is never logged.
  RespiteProcess& p = *stack().respite();
  EXPECT_TRUE(p.wait_for_log("WRONGPASS", deadline_in(5s))) << "no log line with Redis's WRONGPASS error";
  EXPECT_FALSE(p.log_contains("wrong-password")) << "the upstream password appears in the log";
}

}  // namespace
}  // namespace respite::test
