// The client-facing protocol: malformed input, inline commands, listeners, limits, refused
// stateful commands, and SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>

#include <string>
#include <thread>

#include "support/stack.h"

namespace respite::test {
namespace {

using namespace std::chrono_literals;

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

// Sends `input` on a fresh connection; expects exactly `reply` and then the connection closed.
void expect_error_then_close(Stack& stack, const std::string& input, const std::string& reply) {
  RawConn conn = stack.raw();
  ASSERT_TRUE(conn.send_all(input, deadline_in(5s)));
  bool closed = false;
  std::string got = conn.read_until_closed(deadline_in(5s), &closed);
  EXPECT_EQ(escape_bytes(got), escape_bytes(reply)) << "for input " << escape_bytes(input);
  EXPECT_TRUE(closed) << "connection not closed after the protocol error, for input " << escape_bytes(input);
}

class ProtocolTest : public ProxyTest {};

TEST_F(ProtocolTest, NegativeBulkLengthIsAProtocolError) {
  expect_error_then_close(stack(), "*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n");
}

TEST_F(ProtocolTest, NonNumericMultibulkLengthIsAProtocolError) {
  expect_error_then_close(stack(), "*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
}

TEST_F(ProtocolTest, MissingDollarIsAProtocolError) {
  expect_error_then_close(stack(), "*1\r\nPING\r\n", "-ERR Protocol error: expected '$', got 'P'\r\n");
}

TEST_F(ProtocolTest, UnbalancedQuotesInInlineCommand) {
  expect_error_then_close(stack(), "SET k \"abc\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n");
}

TEST_F(ProtocolTest, OversizedInlineRequestIsAProtocolError) {
  expect_error_then_close(stack(), std::string(70 * 1024, 'a'), "-ERR Protocol error: too big inline request\r\n");
}

TEST_F(ProtocolTest, RepliesBeforeTheErrorAreDelivered) {
  // Valid commands pipelined ahead of the bad one still get their replies, in order.
  expect_error_then_close(stack(), "PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n$-5\r\n",
                          "+PONG\r\n+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
}

TEST_F(ProtocolTest, InlineCommandsWork) {
  RawConn conn = stack().raw();
  ASSERT_TRUE(conn.send_all("PING\r\n", deadline_in(5s)));
  EXPECT_EQ(conn.read_reply(deadline_in(5s)).value_or("<none>"), "+PONG\r\n");
  ASSERT_TRUE(conn.send_all("SET inline:k \"a b\"\r\n", deadline_in(5s)));
  EXPECT_EQ(conn.read_reply(deadline_in(5s)).value_or("<none>"), "+OK\r\n");
  ASSERT_TRUE(conn.send_all("GET inline:k\r\n", deadline_in(5s)));
  EXPECT_EQ(conn.read_reply(deadline_in(5s)).value_or("<none>"), "$3\r\na b\r\n");
  // Bare \n terminators, escapes in double quotes, and a multibulk mixed in, in one write.
  ASSERT_TRUE(conn.send_all("SET inline:x \"\\x41\\r\\n\"\nGET inline:x\n" + resp_command({"ECHO", "mb"}) + "ping\r\n",
                            deadline_in(5s)));
  EXPECT_EQ(conn.read_reply(deadline_in(5s)).value_or("<none>"), "+OK\r\n");
  EXPECT_EQ(escape_bytes(conn.read_reply(deadline_in(5s)).value_or("<none>")), escape_bytes("$3\r\nA\r\n\r\n"));
  EXPECT_EQ(conn.read_reply(deadline_in(5s)).value_or("<none>"), "$2\r\nmb\r\n");
  EXPECT_EQ(conn.read_reply(deadline_in(5s)).value_or("<none>"), "+PONG\r\n");
}

TEST_F(ProtocolTest, CommandSplitIntoSingleBytesIsReassembled) {
  RawConn conn = stack().raw();
  const std::string cmd = resp_command({"SET", "split:k", "v\r\nv"}) + resp_command({"GET", "split:k"});
  for (char ch : cmd) ASSERT_TRUE(conn.send_all(std::string(1, ch), deadline_in(5s)));
  EXPECT_EQ(conn.read_reply(deadline_in(5s)).value_or("<none>"), "+OK\r\n");
  EXPECT_EQ(escape_bytes(conn.read_reply(deadline_in(5s)).value_or("<none>")), escape_bytes("$4\r\nv\r\nv\r\n"));
}

TEST_F(ProtocolTest, UnknownCommandGetsAnErrorAndConnectionSurvives) {
  Client c = connect();
  std::string r = c.call({"NOSUCHCOMMAND", "x"});
  EXPECT_TRUE(starts_with(r, "-ERR")) << r;
  EXPECT_EQ(c.call({"PING"}), "+PONG");
}

class BulkLimitTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_sets = {"client.max_bulk_len=1048576"};
    o.direct_redis_args = {"--proto-max-bulk-len", "1048576"};  // Redis's smallest allowed value
    return o;
  }
};

TEST_F(BulkLimitTest, BulkOverTheLimitIsRefusedBeforeBuffering) {
  Client c = connect();
  EXPECT_EQ(c.call({"SET", "at-limit", std::string(1048576, 'x')}), "+OK");
  // Only the header is sent: the refusal must not wait for the 2 MiB payload.
  expect_error_then_close(stack(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2097152\r\n",
                          "-ERR Protocol error: invalid bulk length\r\n");
}

class UnixSocketTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.unix_socket = true;
    return o;
  }
};

TEST_F(UnixSocketTest, UnixListenerServesClients) {
  ASSERT_FALSE(stack().unix_path().empty());
  Client c = Client::unix_socket(stack().unix_path());
  EXPECT_EQ(c.call({"PING"}), "+PONG");
  EXPECT_EQ(c.call({"SET", "unix:k", "v"}), "+OK");
  Client tcp = connect();
  EXPECT_EQ(tcp.call({"GET", "unix:k"}), "\"v\"");
  RawConn raw = RawConn::unix_socket(stack().unix_path());
  ASSERT_TRUE(raw.send_all("PING\r\n", deadline_in(5s)));
  EXPECT_EQ(raw.read_reply(deadline_in(5s)).value_or("<none>"), "+PONG\r\n");
}

class MaxClientsTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_sets = {"server.max_clients=3"};
    o.direct_redis_args = {"--maxclients", "3"};
    return o;
  }
};

TEST_F(MaxClientsTest, ConnectionsBeyondTheLimitGetAnErrorAndAreClosed) {
  std::vector<RawConn> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(stack().raw());
    ASSERT_TRUE(held.back().send_all("PING\r\n", deadline_in(5s)));
    ASSERT_EQ(held.back().read_reply(deadline_in(5s)).value_or("<none>"), "+PONG\r\n") << "client " << i;
  }
  RawConn extra = stack().raw();
  bool closed = false;
  std::string got = extra.read_until_closed(deadline_in(5s), &closed);
  EXPECT_EQ(escape_bytes(got), escape_bytes("-ERR max number of clients reached\r\n"));
  EXPECT_TRUE(closed);
  // The admitted clients are unaffected.
  ASSERT_TRUE(held[0].send_all("PING\r\n", deadline_in(5s)));
  EXPECT_EQ(held[0].read_reply(deadline_in(5s)).value_or("<none>"), "+PONG\r\n");

  // Once one leaves, a newcomer is admitted (the server notices the close asynchronously:
  // poll until it does).
  held.pop_back();
  const Deadline deadline = deadline_in(5s);
  std::string last;
  while (Clock::now() < deadline) {
    RawConn again = stack().raw();
    again.send_all("PING\r\n", deadline_in(5s));  // a refused client may be closed already
    last = again.read_reply(deadline_in(5s)).value_or("<none>");
    if (last == "+PONG\r\n") break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(last, "+PONG\r\n");
}

class OutputLimitTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    // respite requires the read-pause mark not to exceed the limit.
    o.respite_sets = {"client.output_buffer_limit=1048576", "client.output_high_water=262144"};
    o.direct_redis_args = {"--client-output-buffer-limit", "normal", "1mb", "1mb", "0"};
    return o;
  }
};

TEST_F(OutputLimitTest, ClientThatDoesNotReadIsClosedPastTheOutputLimit) {
  // Each reply alone is twice the limit, so pausing reads cannot keep the client under it.
  const size_t kValue = 2u * 1024 * 1024;
  {
    Client c = connect();
    ASSERT_EQ(c.call({"SET", "v2m", std::string(kValue, 'v')}), "+OK");
  }
  std::string batch;
  for (int i = 0; i < 16; ++i) batch += resp_command({"GET", "v2m"});  // 32 MiB of replies
  RawConn slow = stack().raw(16 * 1024);
  slow.send_all(batch, deadline_in(2s));  // may stop early once the server stops reading us
  size_t read = 0;
  bool closed = slow.drain_until_closed(deadline_in(10s), &read);
  EXPECT_TRUE(closed) << "the non-reading client was not disconnected";
  EXPECT_LT(read, 16 * kValue) << "all replies were delivered: the limit did not apply";

  // Others are unaffected.
  Client c = connect();
  EXPECT_EQ(c.call({"STRLEN", "v2m"}), cat(":", kValue));
}

class RefusedCommandsTest : public ProxyTest {};

TEST_F(RefusedCommandsTest, ScriptDebugIsRefusedAndTheConnectionStaysUsable) {
  SKIP_IN_DIRECT_MODE();
  Client c = connect();
  for (const char* mode : {"YES", "SYNC", "NO"}) {
    std::string r = c.call({"SCRIPT", "DEBUG", mode});
    EXPECT_TRUE(starts_with(r, "-ERR")) << mode << " -> " << r;
    EXPECT_NE(r.find("not supported through respite"), std::string::npos) << r;
    EXPECT_EQ(c.call({"PING"}), "+PONG") << "connection unusable after refusing SCRIPT DEBUG " << mode;
  }
}

TEST_F(ProtocolTest, SigtermWithConnectedClientsExitsZero) {
  SKIP_IN_DIRECT_MODE();
  Client a = connect();
  RawConn b = stack().raw();
  ASSERT_EQ(a.call({"SET", "k", "v"}), "+OK");
  ASSERT_TRUE(b.send_all(resp_command({"GET", "k"}), deadline_in(5s)));
  EXPECT_EQ(b.read_reply(deadline_in(5s)).value_or("<none>"), "$1\r\nv\r\n");
  stack().stop_respite();  // SIGTERM; fails the test unless the exit code is 0 within 10 s
  bool closed = false;
  b.read_until_closed(deadline_in(5s), &closed);
  EXPECT_TRUE(closed) << "client connections not closed at exit";
}

}  // namespace
}  // namespace respite::test
