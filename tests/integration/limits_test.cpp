// Settings and behaviours the other suites leave out: the per-client limits
// (client.query_buffer_limit, client.max_args, client.max_inline_len, client.idle_timeout_s),
// upstream.max_inflight, the graceful drain on SIGTERM, a unix-socket upstream (with a db), an
// IPv6 listener, and the command line (--check-config, --version, --help).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/fake_upstream.h"
#include "support/net.h"
#include "support/process.h"
#include "support/redis_server.h"
#include "support/respite_process.h"
#include "support/stack.h"

namespace respite::test {
namespace {

using namespace std::chrono_literals;
using Action = FakeUpstream::Action;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr auto kWait = 5s;  // upper bound for anything that should happen promptly

// respite's error lines (src/core/errors.h), spelled out: the tests check the wire bytes.
const std::string kQueryLimit = "-ERR query buffer limit exceeded\r\n";
const std::string kInvalidMbulk = "-ERR Protocol error: invalid multibulk length\r\n";
const std::string kTooBigInline = "-ERR Protocol error: too big inline request\r\n";
const std::string kShuttingDown = "-ERR respite is shutting down\r\n";

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// The next reply on `c`, or "<none>" when none arrives in time.
std::string next(RawConn& c, Clock::duration within = kWait) {
  return c.read_reply(deadline_in(within)).value_or("<none>");
}

long long ms_since(Clock::time_point t0) { return duration_cast<milliseconds>(Clock::now() - t0).count(); }

// ---------------------------------------------------------------------------------------------
// 1. client.query_buffer_limit

class QueryBufferLimitTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    // A bulk may be larger than the query buffer limit: the limit is what ends the request.
    o.respite_sets = {"client.query_buffer_limit=1mb", "client.max_bulk_len=8mb"};
    return o;
  }
};

TEST_F(QueryBufferLimitTest, PartialRequestOverTheLimitIsRefusedAndClosed) {
  SKIP_IN_DIRECT_MODE();
  RawConn other = stack().raw();
  ASSERT_TRUE(other.send_all(resp_command({"PING"}), deadline_in(kWait)));
  ASSERT_EQ(next(other), "+PONG\r\n");

  // A 4 MiB bulk (under max_bulk_len) of which 1.25 MiB arrive: more unparsed bytes than the limit.
  RawConn greedy = stack().raw();
  const std::string partial = "*3\r\n$3\r\nSET\r\n$5\r\nqbl:k\r\n$4194304\r\n" + std::string(1280 * 1024, 'x');
  greedy.send_all(partial, deadline_in(kWait));  // respite may stop reading (and close) part-way
  bool closed = false;
  std::string got = greedy.read_until_closed(deadline_in(kWait), &closed);
  EXPECT_EQ(escape_bytes(got), escape_bytes(kQueryLimit));
  EXPECT_TRUE(closed) << "the client over the query buffer limit was not disconnected";

  // The other client is unaffected, and a pipeline of complete requests larger than the limit in
  // total is fine (only unparsed bytes count).
  ASSERT_TRUE(other.send_all(resp_command({"GET", "qbl:k"}), deadline_in(kWait)));
  EXPECT_EQ(next(other), "$-1\r\n") << "the refused request was executed";
  std::string batch;
  const int kCount = 200;
  for (int i = 0; i < kCount; ++i) batch += resp_command({"SET", cat("qbl:", i), std::string(8 * 1024, 'v')});
  ASSERT_GT(batch.size(), 1024u * 1024u);
  ASSERT_TRUE(other.send_all(batch, deadline_in(kWait)));
  for (int i = 0; i < kCount; ++i) ASSERT_EQ(next(other), "+OK\r\n") << "reply " << i;
  EXPECT_TRUE(stack().respite()->log_contains("query buffer limit of 1048576 bytes exceeded"));
}

// ---------------------------------------------------------------------------------------------
// 2. client.max_args and client.max_inline_len

class RequestShapeLimitTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_sets = {"client.max_args=3", "client.max_inline_len=32"};
    return o;
  }

  // Sends `input` on a fresh connection; expects exactly `reply`, then the connection closed.
  void expect_replies_then_close(const std::string& input, const std::string& reply) {
    RawConn conn = stack().raw();
    ASSERT_TRUE(conn.send_all(input, deadline_in(kWait)));
    bool closed = false;
    std::string got = conn.read_until_closed(deadline_in(kWait), &closed);
    EXPECT_EQ(escape_bytes(got), escape_bytes(reply)) << "for input " << escape_bytes(input);
    EXPECT_TRUE(closed) << "connection not closed after the protocol error, for input " << escape_bytes(input);
  }
};

TEST_F(RequestShapeLimitTest, TooManyArgumentsIsAProtocolErrorAfterEarlierReplies) {
  SKIP_IN_DIRECT_MODE();
  // At the limit: served.
  RawConn ok = stack().raw();
  ASSERT_TRUE(ok.send_all(resp_command({"SET", "args:k", "v"}), deadline_in(kWait)));
  EXPECT_EQ(next(ok), "+OK\r\n");
  // Over it, after two forwarded requests in the same write.
  expect_replies_then_close(
      resp_command({"GET", "args:k"}) + resp_command({"PING"}) + resp_command({"MSET", "a", "1", "b", "2"}) +
          resp_command({"PING"}),
      "$1\r\nv\r\n+PONG\r\n" + kInvalidMbulk);
  // Only the header of the request over the limit is needed to refuse it.
  expect_replies_then_close("*4\r\n", kInvalidMbulk);
  // The first client is unaffected.
  ASSERT_TRUE(ok.send_all(resp_command({"PING"}), deadline_in(kWait)));
  EXPECT_EQ(next(ok), "+PONG\r\n");
}

TEST_F(RequestShapeLimitTest, TooLongInlineLineIsAProtocolErrorAfterEarlierReplies) {
  SKIP_IN_DIRECT_MODE();
  // Inline lines under 32 bytes are served; the first longer one ends the connection.
  expect_replies_then_close("PING\r\nSET inl:k v\r\nGET inl:" + std::string(60, 'x') + "\r\nPING\r\n",
                            "+PONG\r\n+OK\r\n" + kTooBigInline);
  // A line without its newline yet is refused once it is longer than the limit.
  expect_replies_then_close("ECHO " + std::string(40, 'y'), kTooBigInline);
  RawConn c = stack().raw();
  ASSERT_TRUE(c.send_all("GET inl:k\r\n", deadline_in(kWait)));
  EXPECT_EQ(next(c), "$1\r\nv\r\n");
}

// ---------------------------------------------------------------------------------------------
// 3. client.idle_timeout_s

class IdleTimeoutTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_sets = {"client.idle_timeout_s=1"};
    return o;
  }
};

TEST_F(IdleTimeoutTest, IdleClientIsClosedAndActiveClientIsNot) {
  SKIP_IN_DIRECT_MODE();
  RawConn idle = stack().raw();
  ASSERT_TRUE(idle.send_all(resp_command({"PING"}), deadline_in(kWait)));
  ASSERT_EQ(next(idle), "+PONG\r\n");
  const auto t0 = Clock::now();  // the idle client's last activity (give or take its reply)

  // The idle client is watched on its own thread while the main thread keeps another one busy.
  bool idle_closed = false;
  long long idle_closed_ms = -1;
  std::string idle_got;
  std::thread watcher([&] {
    idle_got = idle.read_until_closed(t0 + 4s, &idle_closed);
    idle_closed_ms = ms_since(t0);
  });

  RawConn active = stack().raw();
  int pings = 0;
  while (Clock::now() - t0 < 2500ms) {
    if (!active.send_all(resp_command({"PING"}), deadline_in(kWait))) break;
    std::string r = next(active);
    if (r != "+PONG\r\n") {
      ADD_FAILURE() << "active client, ping " << pings << " at " << ms_since(t0) << " ms: " << escape_bytes(r);
      break;
    }
    ++pings;
    std::this_thread::sleep_for(300ms);  // the pace of the active client, not a wait
  }
  watcher.join();

  EXPECT_TRUE(idle_closed) << "idle client still open after 4 s with client.idle_timeout_s=1";
  EXPECT_GE(idle_closed_ms, 900) << "idle client closed too early";
  EXPECT_LE(idle_closed_ms, 4000);
  EXPECT_EQ(idle_got, "") << "the idle client got bytes before its close";
  EXPECT_GE(pings, 7);
  // Active for 2.5 s (longer than the timeout): still open.
  ASSERT_TRUE(active.send_all(resp_command({"PING"}), deadline_in(kWait)));
  EXPECT_EQ(next(active), "+PONG\r\n") << "the active client was closed";
}

// ---------------------------------------------------------------------------------------------
// 4 and 5: respite in front of the scripted fake Redis.

class FakeLimitsTest : public ::testing::Test {
 protected:
  void start(std::vector<std::string> sets = {}) {
    RespiteOptions o;
    o.upstream_url = fake_.url();
    // The fake speaks a script of plain replies: no near-cache (its tracking handshake).
    o.sets = {"upstream.pool_size=1", "upstream.reconnect_min_ms=20", "upstream.reconnect_max_ms=100",
              "cache.enabled=false"};
    o.sets.insert(o.sets.end(), sets.begin(), sets.end());
    respite_ = std::make_unique<RespiteProcess>(std::move(o));
  }

  void TearDown() override {
    if (respite_) respite_->stop();  // no-op once the test saw respite exit
    if (HasFailure()) {
      std::cerr << "---- respite log ----\n" << (respite_ ? respite_->log() : std::string("(not started)\n"))
                << "---- " << fake_.describe() << std::flush;
    }
  }

  RawConn client() { return RawConn::tcp(respite_->port()); }

  FakeUpstream fake_;                        // destroyed after respite
  std::unique_ptr<RespiteProcess> respite_;  // the proxy under test
};

TEST_F(FakeLimitsTest, RequestsBeyondMaxInflightGetBusyInOrder) {
  SKIP_IN_DIRECT_MODE();
  start({"upstream.max_inflight=2", "upstream.max_batches_in_flight=0"});
  fake_.set_holding(true);
  RawConn c = client();
  ASSERT_TRUE(c.send_all(resp_command({"GET", "a"}) + resp_command({"GET", "b"}) + resp_command({"GET", "c"}),
                         deadline_in(kWait)));
  ASSERT_TRUE(fake_.wait_for_requests(2, deadline_in(kWait)));
  // Nothing signals that respite refused the third: a bounded window for a wrong extra request
  // upstream or a busy error overtaking the held replies.
  EXPECT_EQ(next(c, 200ms), "<none>") << "a reply overtook the held replies";
  EXPECT_EQ(fake_.request_count(), 2u) << "more than upstream.max_inflight requests went upstream";

  // Another client while the connection is full: refused at once (nothing ahead of it).
  RawConn other = client();
  ASSERT_TRUE(other.send_all(resp_command({"GET", "x"}), deadline_in(kWait)));
  std::string r = next(other);
  EXPECT_TRUE(starts_with(r, "-ERR upstream busy")) << escape_bytes(r);

  fake_.set_holding(false);
  EXPECT_EQ(fake_.release(), 2u);
  EXPECT_EQ(next(c), FakeUpstream::bulk("value:a"));
  EXPECT_EQ(next(c), FakeUpstream::bulk("value:b"));
  r = next(c);
  EXPECT_TRUE(starts_with(r, "-ERR upstream busy")) << escape_bytes(r);
  // The connection has room again.
  ASSERT_TRUE(c.send_all(resp_command({"GET", "d"}), deadline_in(kWait)));
  EXPECT_EQ(next(c), FakeUpstream::bulk("value:d"));
  EXPECT_EQ(fake_.request_count(), 3u);
}

TEST_F(FakeLimitsTest, SigtermDrainsInFlightRequestsThenExits) {
  SKIP_IN_DIRECT_MODE();
  start();
  RawConn quiet = client();  // connected, nothing in flight
  ASSERT_TRUE(quiet.send_all(resp_command({"PING"}), deadline_in(kWait)));
  ASSERT_EQ(next(quiet), "+PONG\r\n");
  fake_.set_holding(true);
  RawConn busy = client();
  ASSERT_TRUE(busy.send_all(resp_command({"GET", "a"}), deadline_in(kWait)));
  ASSERT_TRUE(fake_.wait_for_requests(2, deadline_in(kWait)));

  respite_->send_signal(SIGTERM);
  ASSERT_TRUE(respite_->wait_for_log("draining (2 client(s), 1 request(s) in flight)", deadline_in(kWait)))
      << "respite did not start draining";

  // The client with nothing in flight is closed without a reply.
  bool closed = false;
  EXPECT_EQ(escape_bytes(quiet.read_until_closed(deadline_in(kWait), &closed)), "");
  EXPECT_TRUE(closed) << "a client with nothing in flight was kept open during the drain";

  // New connections: refused (the listener is closed), or told and closed.
  try {
    RawConn late = client();
    late.send_all(resp_command({"PING"}), deadline_in(kWait));  // may fail: respite may reset it
    bool late_closed = false;
    std::string got = late.read_until_closed(deadline_in(kWait), &late_closed);
    EXPECT_TRUE(got.empty() || got == kShuttingDown) << escape_bytes(got);
    EXPECT_TRUE(late_closed) << "a connection made during the drain was kept open";
  } catch (const std::runtime_error& e) {
    SUCCEED() << "connect refused during the drain: " << e.what();
  }

  // Nothing signals "still waiting": a bounded window in which respite must not exit.
  EXPECT_FALSE(respite_->wait_exit(deadline_in(200ms))) << "respite exited with a reply still in flight";
  EXPECT_EQ(next(busy, 1ms), "<none>");

  EXPECT_EQ(fake_.release(), 1u);
  EXPECT_EQ(next(busy), FakeUpstream::bulk("value:a")) << "the in-flight reply was not delivered";
  closed = false;
  EXPECT_EQ(escape_bytes(busy.read_until_closed(deadline_in(kWait), &closed)), "");
  EXPECT_TRUE(closed) << "the drained client was not closed after its last reply";

  auto status = respite_->wait_exit(deadline_in(kWait));
  ASSERT_TRUE(status) << "respite did not exit after the drain";
  EXPECT_TRUE(status->ok()) << status->describe();
  EXPECT_TRUE(respite_->log_contains("drained; exiting"));
  EXPECT_FALSE(respite_->log_contains("drain deadline passed"));
}

TEST_F(FakeLimitsTest, SigtermWithAReplyNeverReleasedExitsAtTheDrainDeadline) {
  SKIP_IN_DIRECT_MODE();
  // Only the drain deadline (server.drain_timeout_ms) may end the wait.
  start({"upstream.command_timeout_ms=0", "server.drain_timeout_ms=1500"});
  fake_.set_holding(true);
  RawConn busy = client();
  ASSERT_TRUE(busy.send_all(resp_command({"GET", "never"}), deadline_in(kWait)));
  ASSERT_TRUE(fake_.wait_for_requests(1, deadline_in(kWait)));

  const auto t0 = Clock::now();
  respite_->send_signal(SIGTERM);
  auto status = respite_->wait_exit(t0 + 6s);  // 1.5 s drain deadline plus slack
  const long long took = ms_since(t0);
  ASSERT_TRUE(status) << "respite still running 6 s after SIGTERM";
  EXPECT_TRUE(status->ok()) << status->describe();
  EXPECT_GE(took, 1400) << "respite gave up on the in-flight request before its drain deadline";
  EXPECT_LT(took, 4500) << "the drain took longer than server.drain_timeout_ms (1500 ms) by far";
  EXPECT_TRUE(respite_->log_contains("drain deadline passed; closing 1 remaining client(s)"));
  // The reply that never came is answered with an error in its place before the close.
  bool closed = false;
  std::string got = busy.read_until_closed(deadline_in(kWait), &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(got,
            "-ERR respite is shutting down: no reply from Redis within server.drain_timeout_ms; the command may or "
            "may not have run\r\n");
}

// ---------------------------------------------------------------------------------------------
// 6. Upstream over a unix socket

// The CLIENT LIST line of respite's pooled connection, from Redis itself.
std::string pool_client_line(Client& redis) {
  std::string list = redis.call({"CLIENT", "LIST"});
  size_t at = list.find("name=respite-pool-0 ");
  if (at == std::string::npos) return "<no respite-pool-0 in " + list + ">";
  size_t start = list.rfind("id=", at);
  if (start == std::string::npos) start = 0;
  size_t end = list.find('\n', at);
  return list.substr(start, end == std::string::npos ? std::string::npos : end - start) + " ";
}

TEST(UnixUpstreamTest, ForwardsOverAUnixSocketToTheConfiguredDb) {
  SKIP_IN_DIRECT_MODE();
  TempDir dir;
  const std::string sock = dir.path() + "/redis.sock";
  RedisServer redis({"--unixsocket", sock, "--unixsocketperm", "700"});
  Client direct = Client::tcp(redis.port());

  struct Case {
    std::string url;
    int db;
  };
  for (const Case& tc : {Case{"unix:" + sock, 0}, Case{"unix:" + sock + "?db=2", 2}}) {
    SCOPED_TRACE(tc.url);
    RespiteOptions o;
    o.upstream_url = tc.url;
    RespiteProcess respite(o);
    ASSERT_TRUE(respite.wait_for_log("upstream #0 connected", deadline_in(kWait))) << respite.log();
    Client c = Client::tcp(respite.port());
    const std::string key = cat("unixup:", tc.db);
    EXPECT_EQ(c.call({"SET", key, "here"}), "+OK");
    EXPECT_EQ(c.call({"GET", key}), "\"here\"");

    // Redis sees respite's connection as a unix-socket client ('U') in the configured db...
    std::string line = pool_client_line(direct);
    // U: a unix socket client (t: tracking, for the near-cache).
    EXPECT_TRUE(line.find(" flags=U ") != std::string::npos || line.find(" flags=tU ") != std::string::npos) << line;
    EXPECT_NE(line.find(cat(" db=", tc.db, " ")), std::string::npos) << line;
    // ...and the key is in that db only.
    for (int db : {0, 2}) {
      ASSERT_EQ(direct.call({"SELECT", std::to_string(db)}), "+OK");
      EXPECT_EQ(direct.call({"EXISTS", key}), db == tc.db ? ":1" : ":0") << "db " << db;
    }
    ASSERT_EQ(direct.call({"SELECT", "0"}), "+OK");
    respite.stop();
    if (HasFailure()) std::cerr << "---- respite log ----\n" << respite.log() << std::flush;
  }
}

// ---------------------------------------------------------------------------------------------
// 7. IPv6 listener

bool have_ipv6_loopback() {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

TEST(Ipv6ListenTest, ListensOnIpv6LoopbackAndServes) {
  SKIP_IN_DIRECT_MODE();
  if (!have_ipv6_loopback()) GTEST_SKIP() << "no ::1 on this machine";
  RedisServer redis;
  RespiteOptions o;
  o.upstream_url = cat("redis://127.0.0.1:", redis.port());
  o.listen = "[::1]:0";
  RespiteProcess respite(o);
  ASSERT_NE(respite.port(), 0);
  EXPECT_EQ(respite.tcp_address(), cat("[::1]:", respite.port()));
  EXPECT_TRUE(respite.log_contains(cat("listening on tcp [::1]:", respite.port()))) << respite.log();
  ASSERT_TRUE(respite.wait_for_log("upstream #0 connected", deadline_in(kWait))) << respite.log();

  RawConn c = RawConn::tcp6(respite.port());
  ASSERT_TRUE(c.send_all(resp_command({"PING"}), deadline_in(kWait)));
  EXPECT_EQ(next(c), "+PONG\r\n");
  ASSERT_TRUE(c.send_all(resp_command({"SET", "v6:k", "v"}) + resp_command({"GET", "v6:k"}), deadline_in(kWait)));
  EXPECT_EQ(next(c), "+OK\r\n");
  EXPECT_EQ(next(c), "$1\r\nv\r\n");
  respite.stop();
  if (HasFailure()) std::cerr << "---- respite log ----\n" << respite.log() << std::flush;
}

// ---------------------------------------------------------------------------------------------
// 8. The command line

RunResult run_respite(std::vector<std::string> args) {
  args.insert(args.begin(), RESPITE_BINARY);
  return run_program(std::move(args), 5000ms);
}

TEST(CommandLineTest, CheckConfigPrintsTheEffectiveConfigAndExitsZero) {
  SKIP_IN_DIRECT_MODE();
  RunResult r = run_respite({"--check-config", "--upstream", "redis://127.0.0.1:1/3", "--set",
                             "client.max_pending=7", "--set", "client.query_buffer_limit=2mb"});
  ASSERT_TRUE(r.status) << "respite --check-config did not exit within 5 s:\n" << r.output;
  EXPECT_TRUE(r.status->ok()) << r.status->describe() << "\n" << r.output;
  for (const char* want : {"[server]", "[client]", "[upstream]", "[log]", "max_pending = 7\n",
                           "query_buffer_limit = \"2mb\"\n", "url = \"redis://127.0.0.1:1/3\"\n",
                           "max_inflight = 65536\n", "idle_timeout_s = 0\n", "configuration OK"}) {
    EXPECT_NE(r.output.find(want), std::string::npos) << "missing '" << want << "' in:\n" << r.output;
  }
  EXPECT_EQ(r.output.find("listening"), std::string::npos) << "--check-config started the server";
}

TEST(CommandLineTest, MisspeltKeyIsAnErrorNamingTheKey) {
  SKIP_IN_DIRECT_MODE();
  RunResult r = run_respite({"--set", "client.max_pendng=3"});
  ASSERT_TRUE(r.status) << "respite did not exit within 5 s:\n" << r.output;
  EXPECT_TRUE(r.status->exited && r.status->code != 0) << r.status->describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("client.max_pendng"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean 'client.max_pending'"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("listening"), std::string::npos) << r.output;
}

TEST(CommandLineTest, VersionAndHelpExitZero) {
  SKIP_IN_DIRECT_MODE();
  RunResult v = run_respite({"--version"});
  ASSERT_TRUE(v.status) << v.output;
  EXPECT_TRUE(v.status->ok()) << v.status->describe() << "\n" << v.output;
  EXPECT_TRUE(starts_with(v.output, "respite ")) << v.output;
  for (const char* flag : {"--help", "-h"}) {
    RunResult h = run_respite({flag});
    ASSERT_TRUE(h.status) << flag << ": " << h.output;
    EXPECT_TRUE(h.status->ok()) << flag << ": " << h.status->describe() << "\n" << h.output;
    EXPECT_TRUE(starts_with(h.output, "Usage: respite")) << flag << ": " << h.output;
    EXPECT_NE(h.output.find("--check-config"), std::string::npos) << h.output;
  }
}

}  // namespace
}  // namespace respite::test
