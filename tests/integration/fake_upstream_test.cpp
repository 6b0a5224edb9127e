// respite against a scripted fake Redis (support/fake_upstream.h): the upstream edge cases a
// real Redis cannot be made to produce on demand — replies held back or split at awkward
// points, a connection cut in the middle of a reply, protocol garbage, silence until the
// command timeout, a refused handshake — and exactly what respite forwards upstream.
#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/fake_upstream.h"
#include "support/net.h"
#include "support/respite_process.h"

namespace respite::test {
namespace {

using namespace std::chrono_literals;
using Action = FakeUpstream::Action;

// respite's error lines (src/core/errors.h), spelled out: the tests check the wire bytes.
const std::string kLost =
    "-ERR upstream connection lost before the reply arrived; the command may or may not have run\r\n";
const std::string kTimeout =
    "-ERR upstream timeout: Redis did not reply in time; the command may or may not have run\r\n";
const std::string kUnavailable = "-ERR upstream unavailable: no connection to Redis (respite is reconnecting)\r\n";
// A request respite answers itself (the client has no name): no upstream round trip.
const std::string kLocalReply = "$-1\r\n";

constexpr auto kWait = 5s;  // upper bound for anything that should happen promptly

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::string gets(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += resp_command({"GET", k});
  return out;
}

class FakeUpstreamTest : public ::testing::Test {
 protected:
  // Starts respite in front of the fake, with one pooled connection (so the fake's script sees
  // one deterministic stream) and quick reconnects, plus `sets`.
  void start(std::vector<std::string> sets = {}, std::vector<std::string> extra_args = {}, std::string url = {}) {
    RespiteOptions o;
    o.upstream_url = url.empty() ? fake_.url() : url;
    // The fake speaks a script of plain replies: no near-cache (its tracking handshake).
    o.sets = {"upstream.pool_size=1", "upstream.reconnect_min_ms=20", "upstream.reconnect_max_ms=100",
              "cache.enabled=false"};
    o.sets.insert(o.sets.end(), sets.begin(), sets.end());
    o.extra_args = std::move(extra_args);
    respite_ = std::make_unique<RespiteProcess>(std::move(o));
  }

  void TearDown() override {
    if (respite_) respite_->stop();  // fails the test unless respite exits 0 on SIGTERM
    if (HasFailure()) {
      std::cerr << "---- respite log ----\n" << (respite_ ? respite_->log() : std::string("(not started)\n"))
                << "---- " << fake_.describe() << std::flush;
    }
  }

  RawConn client() { return RawConn::tcp(respite_->port()); }

  // The next reply on `c` (or "<none>" when none arrives by the deadline).
  static std::string next(RawConn& c, Clock::duration within = kWait) {
    return c.read_reply(deadline_in(within)).value_or("<none>");
  }

  FakeUpstream fake_;                         // destroyed after respite
  std::unique_ptr<RespiteProcess> respite_;   // the proxy under test
};

// 1. Replies from the fake and respite's own local replies reach the client in request order,
// whatever order they become available in and however the fake cuts them up.
TEST_F(FakeUpstreamTest, LocalRepliesWaitForEarlierUpstreamReplies) {
  start();
  fake_.set_script([](const FakeUpstream::Request& r) {
    if (r.args.size() == 2 && r.args[1] == "a") return Action::split(FakeUpstream::bulk("alpha-value"), 4, 10ms);
    if (r.args.size() == 2 && r.args[1] == "b") return Action::split(FakeUpstream::bulk("beta"), 3, 10ms);
    return Action::split("+PONG\r\n", 2, 10ms);  // PING
  });
  fake_.set_holding(true);
  RawConn c = client();
  ASSERT_TRUE(c.send_all(cat(resp_command({"CLIENT", "GETNAME"}), resp_command({"GET", "a"}), resp_command({"CLIENT", "GETNAME"}),
                             resp_command({"GET", "b"}), resp_command({"PING"}), resp_command({"QUIT"})),
                         deadline_in(kWait)));
  // A local reply with nothing before it goes out at once...
  EXPECT_EQ(next(c), kLocalReply);
  ASSERT_TRUE(fake_.wait_for_requests(3, deadline_in(kWait)));
  // ...but the second CLIENT GETNAME's reply waits for GET a's reply, which the fake holds. respite
  // handled the whole batch (the fake got all three forwarded requests), so an overtaking
  // error would be on its way already.
  EXPECT_EQ(next(c, 150ms), "<none>") << "a reply overtook the held reply to GET a";

  ASSERT_EQ(fake_.release(1), 1u);  // GET a's reply, in 4 pieces
  EXPECT_EQ(next(c), FakeUpstream::bulk("alpha-value"));
  EXPECT_EQ(next(c), kLocalReply);
  EXPECT_EQ(next(c, 150ms), "<none>") << "a reply overtook the held reply to GET b";

  EXPECT_EQ(fake_.release(), 2u);  // GET b's and PING's replies, in pieces
  EXPECT_EQ(next(c), FakeUpstream::bulk("beta"));
  EXPECT_EQ(next(c), "+PONG\r\n");
  EXPECT_EQ(next(c), "+OK\r\n");  // QUIT, answered locally, last
  bool closed = false;
  EXPECT_EQ(c.read_until_closed(deadline_in(kWait), &closed), "");
  EXPECT_TRUE(closed) << "respite did not close the connection after QUIT";

  // QUIT and CLIENT GETNAME never went upstream.
  auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].args, (std::vector<std::string>{"GET", "a"}));
  EXPECT_EQ(reqs[1].args, (std::vector<std::string>{"GET", "b"}));
  EXPECT_EQ(reqs[2].args, (std::vector<std::string>{"PING"}));
}

// 2. Two clients multiplexed on the one upstream connection each get exactly their own replies.
TEST_F(FakeUpstreamTest, TwoClientsOnOneUpstreamConnectionGetTheirOwnReplies) {
  // Unlimited batches: the fake holds every reply while four batches go out.
  start({"upstream.max_batches_in_flight=0"});
  int served = 0;  // touched only by the fake's thread
  fake_.set_script([&served](const FakeUpstream::Request& r) {
    return Action::reply(FakeUpstream::bulk(cat(r.args.at(1), "#", served++)));
  });
  fake_.set_holding(true);
  RawConn a = client();
  RawConn b = client();
  // Alternate batches, each one seen by the fake before the next is sent, so the two clients'
  // requests are interleaved on the fake's single connection.
  size_t expected = 0;
  for (int round = 0; round < 4; ++round) {
    RawConn& who = round % 2 == 0 ? a : b;
    std::string name = round % 2 == 0 ? "A" : "B";
    std::vector<std::string> keys;
    for (int i = 0; i < 10; ++i) keys.push_back(cat(name, ":", round / 2 * 10 + i));
    ASSERT_TRUE(who.send_all(gets(keys), deadline_in(kWait)));
    expected += keys.size();
    ASSERT_TRUE(fake_.wait_for_requests(expected, deadline_in(kWait))) << "round " << round;
  }
  fake_.set_holding(false);
  fake_.release();

  auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 40u);
  EXPECT_EQ(fake_.connections_accepted(), 1);
  std::vector<std::string> want_a, want_b;
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(reqs[i].conn, 1);
    const std::string& key = reqs[i].args.at(1);
    EXPECT_EQ(key[0], (i / 10) % 2 == 0 ? 'A' : 'B') << "request " << i << " out of order";
    (key[0] == 'A' ? want_a : want_b).push_back(FakeUpstream::bulk(cat(key, "#", i)));
  }
  for (size_t i = 0; i < want_a.size(); ++i) EXPECT_EQ(next(a), want_a[i]) << "client A, reply " << i;
  for (size_t i = 0; i < want_b.size(); ++i) EXPECT_EQ(next(b), want_b[i]) << "client B, reply " << i;
  EXPECT_EQ(next(a, 100ms), "<none>");
  EXPECT_EQ(next(b, 100ms), "<none>");
}

// 3. An upstream that never answers: the request fails with the timeout error, the
// connection is replaced, and the next request is served.
TEST_F(FakeUpstreamTest, CommandTimeoutFailsTheRequestAndReconnects) {
  start({"upstream.command_timeout_ms=300"});
  fake_.push(Action::none());
  RawConn c = client();
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.send_all(resp_command({"GET", "slow"}), deadline_in(kWait)));
  std::string r = next(c);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  EXPECT_EQ(r, kTimeout);
  EXPECT_LT(took, 2000ms);
  EXPECT_GE(took, 250ms) << "timed out before upstream.command_timeout_ms";

  // respite hangs up on the silent connection and handshakes on a new one.
  EXPECT_TRUE(fake_.wait_for_closed(1, deadline_in(kWait)));
  EXPECT_TRUE(fake_.wait_for_handshakes(2, deadline_in(kWait)));
  ASSERT_TRUE(respite_->wait_for_log("upstream #0 restored", deadline_in(kWait)));
  EXPECT_EQ(fake_.connections_accepted(), 2);

  ASSERT_TRUE(c.send_all(resp_command({"GET", "k"}), deadline_in(kWait)));
  EXPECT_EQ(next(c), FakeUpstream::bulk("value:k"));
  auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].conn, 2);
}

// 4. The fake sends half of a bulk reply and hangs up: every request in flight fails with
// "connection lost", in order; other clients are served after the reconnect.
TEST_F(FakeUpstreamTest, ConnectionCutMidReplyFailsInFlightRequestsInOrder) {
  start();
  RawConn other = client();
  ASSERT_TRUE(other.send_all(resp_command({"GET", "before"}), deadline_in(kWait)));
  ASSERT_EQ(next(other), FakeUpstream::bulk("value:before"));

  const std::string full = FakeUpstream::bulk(std::string(40, 'z'));
  fake_.push(Action::close(full.substr(0, full.size() / 2)));
  fake_.set_holding(true);
  RawConn c = client();
  ASSERT_TRUE(c.send_all(cat(resp_command({"GET", "x1"}), resp_command({"CLIENT", "GETNAME"}), resp_command({"GET", "x2"}),
                             resp_command({"GET", "x3"})),
                         deadline_in(kWait)));
  ASSERT_TRUE(fake_.wait_for_requests(4, deadline_in(kWait)));
  fake_.set_holding(false);
  fake_.release();

  EXPECT_EQ(next(c), kLost);
  EXPECT_EQ(next(c), kLocalReply);
  EXPECT_EQ(next(c), kLost);
  EXPECT_EQ(next(c), kLost);

  ASSERT_TRUE(fake_.wait_for_handshakes(2, deadline_in(kWait)));
  ASSERT_TRUE(respite_->wait_for_log("upstream #0 restored", deadline_in(kWait)));
  ASSERT_TRUE(other.send_all(resp_command({"GET", "after"}), deadline_in(kWait)));
  EXPECT_EQ(next(other), FakeUpstream::bulk("value:after"));
  // The client whose requests failed still has a working connection.
  ASSERT_TRUE(c.send_all(resp_command({"PING"}), deadline_in(kWait)));
  EXPECT_EQ(next(c), "+PONG\r\n");
  EXPECT_TRUE(respite_->log_contains("upstream #0 lost")) << "the drop was not logged";
}

// 5. Bytes that are not RESP: respite drops the connection, fails what was in flight, reconnects.
TEST_F(FakeUpstreamTest, GarbageFromUpstreamDropsTheConnection) {
  start();
  fake_.push(Action::reply("?garbage\r\n"));
  fake_.set_holding(true);
  RawConn c = client();
  ASSERT_TRUE(c.send_all(gets({"g1", "g2"}), deadline_in(kWait)));
  ASSERT_TRUE(fake_.wait_for_requests(2, deadline_in(kWait)));
  fake_.set_holding(false);
  fake_.release();

  std::string r1 = next(c), r2 = next(c);
  EXPECT_TRUE(starts_with(r1, "-ERR upstream")) << escape_bytes(r1);
  EXPECT_TRUE(starts_with(r2, "-ERR upstream")) << escape_bytes(r2);
  EXPECT_EQ(r1.find("garbage"), std::string::npos) << "upstream garbage reached the client";

  EXPECT_TRUE(fake_.wait_for_closed(1, deadline_in(kWait))) << "respite kept the connection that sent garbage";
  ASSERT_TRUE(fake_.wait_for_handshakes(2, deadline_in(kWait)));
  ASSERT_TRUE(respite_->wait_for_log("upstream #0 restored", deadline_in(kWait)));
  EXPECT_TRUE(respite_->log_contains("protocol error from Redis")) << "the cause was not logged";
  ASSERT_TRUE(c.send_all(resp_command({"GET", "k"}), deadline_in(kWait)));
  EXPECT_EQ(next(c), FakeUpstream::bulk("value:k"));
}

// A reply nested `depth` arrays deep, with a mix of element types at each level.
std::string nested_reply(int depth) {
  std::string open, close;
  for (int d = 0; d < depth - 1; ++d) {
    // Each level: a bulk, the next level, an integer (the integer follows the inner array).
    open += cat("*3\r\n$2\r\nL", d % 10, "\r\n");
    close = cat(":", -d, "\r\n") + close;
  }
  return open + "*6\r\n+deepest\r\n$-1\r\n*0\r\n*-1\r\n-ERR inner\r\n$4\r\na\r\nb\r\n" + close;
}

// 6. Deep nesting (past hiredis 0.14's limit of 7) and a 5 MiB bulk, each dribbled out in
// small pieces, arrive at the client byte for byte, and the stream stays in step after them.
TEST_F(FakeUpstreamTest, DeepAndLargeRepliesInSmallPiecesAreForwardedExactly) {
  start();
  const std::string deep12 = nested_reply(12);
  const std::string deep9 = nested_reply(9);
  ASSERT_EQ(resp_frame_length(deep12), deep12.size());
  std::string payload(5 * 1024 * 1024, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  const std::string big = FakeUpstream::bulk(payload);

  fake_.push(Action::split(deep12, deep12.size(), 1ms));  // one byte at a time
  fake_.push(Action::split(big, 160, 1ms));               // 32 KiB pieces
  fake_.push(Action::split(deep9, deep9.size() / 3, 1ms));

  RawConn c = client();
  ASSERT_TRUE(c.send_all(gets({"deep12", "big", "deep9"}) + resp_command({"PING"}), deadline_in(kWait)));
  EXPECT_EQ(escape_bytes(next(c), 2000), escape_bytes(deep12, 2000));
  std::optional<std::string> got = c.read_exact(big.size(), deadline_in(10s));
  ASSERT_TRUE(got) << "the 5 MiB reply did not arrive";
  EXPECT_TRUE(*got == big) << "5 MiB bulk differs; first bytes: " << escape_bytes(*got, 60);
  EXPECT_EQ(escape_bytes(next(c), 2000), escape_bytes(deep9, 2000));
  EXPECT_EQ(next(c), "+PONG\r\n");  // default answer, after the scripted ones
}

// 6b. The same kinds of replies back to back, released together so that several (deep and
// shallow) arrive in one read: respite must switch between hiredis and its deep-nesting
// fallback inside one buffer.
TEST_F(FakeUpstreamTest, DeepAndShallowRepliesBackToBackInOneRead) {
  start();
  const std::vector<std::string> replies = {
      "+first\r\n", nested_reply(12), ":1\r\n", nested_reply(8), FakeUpstream::bulk(std::string(100000, 'q')),
      nested_reply(30), "*2\r\n$1\r\nx\r\n*1\r\n:2\r\n", nested_reply(12)};
  for (const auto& r : replies) fake_.push(Action::reply(r));
  fake_.set_holding(true);
  RawConn c = client();
  std::string batch;
  for (size_t i = 0; i < replies.size(); ++i) batch += resp_command({"GET", cat("r", i)});
  ASSERT_TRUE(c.send_all(batch, deadline_in(kWait)));
  ASSERT_TRUE(fake_.wait_for_requests(replies.size(), deadline_in(kWait)));
  fake_.set_holding(false);
  fake_.release();
  for (size_t i = 0; i < replies.size(); ++i)
    EXPECT_EQ(escape_bytes(next(c), 400), escape_bytes(replies[i], 400)) << "reply " << i;
  ASSERT_TRUE(c.send_all(resp_command({"PING"}), deadline_in(kWait)));
  EXPECT_EQ(next(c), "+PONG\r\n");
  EXPECT_EQ(fake_.connections_accepted(), 1);
}

// 7. An inline request is re-encoded as multibulk; a multibulk request goes upstream verbatim.
TEST_F(FakeUpstreamTest, InlineIsReencodedAndMultibulkIsForwardedVerbatim) {
  start();
  RawConn c = client();
  ASSERT_TRUE(c.send_all("SET k \"a b\"\r\n", deadline_in(kWait)));
  EXPECT_EQ(next(c), "+OK\r\n");
  // Odd but valid: lowercase name, binary and CRLF inside arguments, an empty argument.
  static const char kMultibulk[] = "*4\r\n$3\r\nsEt\r\n$4\r\nk\r\n2\r\n$5\r\n\0\xff\r\n\x01\r\n$0\r\n\r\n";
  const std::string multibulk(kMultibulk, sizeof kMultibulk - 1);
  ASSERT_TRUE(c.send_all(multibulk, deadline_in(kWait)));
  EXPECT_EQ(next(c), "+OK\r\n");

  auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].args, (std::vector<std::string>{"SET", "k", "a b"}));
  EXPECT_EQ(escape_bytes(reqs[0].raw), escape_bytes(resp_command({"SET", "k", "a b"})));
  EXPECT_EQ(escape_bytes(reqs[1].raw), escape_bytes(multibulk));
  // Nothing else went upstream after the handshake: the connection's bytes end with exactly these two.
  const std::string all = fake_.received_bytes(1);
  const std::string tail = reqs[0].raw + reqs[1].raw;
  ASSERT_GE(all.size(), tail.size());
  EXPECT_EQ(escape_bytes(all.substr(all.size() - tail.size())), escape_bytes(tail));
  EXPECT_TRUE(starts_with(all, resp_command({"CLIENT", "SETNAME", "respite-pool-0"}))) << escape_bytes(all);
}

// 8. The fake refuses AUTH: clients get "unavailable", the reason is logged, respite
// keeps retrying, and it recovers once the handshake is accepted.
TEST_F(FakeUpstreamTest, RefusedHandshakeYieldsUnavailableAndRetries) {
  fake_.set_auth_reply("-ERR nope\r\n");
  start({}, {}, cat("redis://:secret@127.0.0.1:", fake_.port()));
  RawConn c = client();
  ASSERT_TRUE(c.send_all(resp_command({"GET", "k"}), deadline_in(kWait)));
  EXPECT_EQ(next(c), kUnavailable);
  EXPECT_TRUE(respite_->wait_for_log("handshake refused by Redis: ERR nope", deadline_in(kWait)));
  EXPECT_TRUE(fake_.wait_for_connections(2, deadline_in(kWait))) << "respite did not retry";
  EXPECT_TRUE(fake_.wait_for_handshakes(2, deadline_in(kWait)));
  EXPECT_EQ(fake_.request_count(), 0u) << "a client request went upstream before the handshake succeeded";

  fake_.set_auth_reply("+OK\r\n");
  ASSERT_TRUE(respite_->wait_for_log("upstream #0 connected", deadline_in(kWait)));
  ASSERT_TRUE(c.send_all(resp_command({"GET", "k"}), deadline_in(kWait)));
  EXPECT_EQ(next(c), FakeUpstream::bulk("value:k"));
}

// An ACL user without +client may refuse CLIENT SETNAME: the name is optional, so respite
// connects anyway and serves.
TEST_F(FakeUpstreamTest, RefusedClientSetnameIsNotFatal) {
  fake_.set_handshake_reply("-NOPERM this user has no permissions to run the 'client|setname' command\r\n");
  start();
  ASSERT_TRUE(respite_->wait_for_log("upstream #0 connected", deadline_in(kWait)));
  RawConn c = client();
  ASSERT_TRUE(c.send_all(resp_command({"GET", "k"}), deadline_in(kWait)));
  EXPECT_EQ(next(c), FakeUpstream::bulk("value:k"));
  EXPECT_EQ(fake_.connections_accepted(), 1);
}

// 9. A client that goes away while its reply is held: the late reply is read and discarded,
// respite does not crash, and the next client's request gets its own reply.
TEST_F(FakeUpstreamTest, ClientGoneWhileItsReplyIsHeld) {
  start({}, {"--log-level", "debug"});
  fake_.set_holding(true);
  {
    RawConn gone = client();
    ASSERT_TRUE(gone.send_all(cat(resp_command({"GET", "a1"}), resp_command({"CLIENT", "GETNAME"}), resp_command({"GET", "a2"})),
                              deadline_in(kWait)));
    ASSERT_TRUE(fake_.wait_for_requests(2, deadline_in(kWait)));
    gone.close(/*reset=*/true);
  }
  // The reset makes respite log a read error (debug): it has seen the client go.
  ASSERT_TRUE(respite_->wait_for_log("read error", deadline_in(kWait)));
  // A second client that closes normally (FIN) with a held request; no event tells when respite
  // notices, and either order is correct.
  {
    RawConn gone2 = client();
    ASSERT_TRUE(gone2.send_all(resp_command({"GET", "c1"}), deadline_in(kWait)));
    ASSERT_TRUE(fake_.wait_for_requests(3, deadline_in(kWait)));
  }
  fake_.set_holding(false);
  EXPECT_EQ(fake_.release(), 3u);

  RawConn b = client();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(b.send_all(resp_command({"GET", cat("b", i)}), deadline_in(kWait)));
    EXPECT_EQ(next(b), FakeUpstream::bulk(cat("value:b", i)));
  }
  EXPECT_EQ(fake_.connections_accepted(), 1) << "the upstream connection was dropped";
}

// 10. Backpressure: with client.max_pending=4 and replies held, respite forwards only 4 of a
// client's 100 pipelined requests; after the release all 100 replies come, in order.
TEST_F(FakeUpstreamTest, MaxPendingLimitsRequestsForwardedWhileRepliesAreHeld) {
  start({"client.max_pending=4"});
  fake_.set_holding(true);
  RawConn c = client();
  std::vector<std::string> keys;
  for (int i = 0; i < 100; ++i) keys.push_back(cat("k", i));
  ASSERT_TRUE(c.send_all(gets(keys), deadline_in(kWait)));
  ASSERT_TRUE(fake_.wait_for_requests(4, deadline_in(kWait)));
  // Nothing marks "respite has stopped reading": allow it a moment to (wrongly) send more.
  EXPECT_FALSE(fake_.wait_for_requests(5, deadline_in(200ms)))
      << "respite forwarded " << fake_.request_count() << " requests with max_pending=4";

  fake_.set_holding(false);
  fake_.release();
  for (int i = 0; i < 100; ++i) {
    std::string r = next(c);
    ASSERT_EQ(r, FakeUpstream::bulk(cat("value:k", i))) << "reply " << i;
  }
  auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(reqs[i].args.at(1), cat("k", i));
}

// 11. A reply when nothing is in flight (after the real one, in the same write): respite
// delivers the real reply, then drops the out-of-step connection and reconnects.
TEST_F(FakeUpstreamTest, UnsolicitedReplyDropsTheConnection) {
  start();
  fake_.push(Action::reply("+OK\r\n+EXTRA\r\n"));
  RawConn c = client();
  ASSERT_TRUE(c.send_all(resp_command({"SET", "k", "v"}), deadline_in(kWait)));
  EXPECT_EQ(next(c), "+OK\r\n");
  EXPECT_TRUE(fake_.wait_for_closed(1, deadline_in(kWait))) << "respite kept an out-of-step connection";
  ASSERT_TRUE(respite_->wait_for_log("upstream #0 restored", deadline_in(kWait)));
  EXPECT_TRUE(respite_->log_contains("unexpected reply"));
  ASSERT_TRUE(c.send_all(resp_command({"GET", "k"}), deadline_in(kWait)));
  EXPECT_EQ(next(c), FakeUpstream::bulk("value:k"));
  EXPECT_EQ(next(c, 100ms), "<none>") << "the unsolicited reply reached the client";
}

// 12. An upstream that accepts but never answers the handshake: the connect deadline ends the
// attempt, clients get "unavailable", and respite tries again.
TEST_F(FakeUpstreamTest, SilentHandshakeHitsTheConnectTimeout) {
  fake_.set_handshake_reply("");  // say nothing
  const auto t0 = Clock::now();
  start({"upstream.connect_timeout_ms=200"});
  EXPECT_LT(Clock::now() - t0, 3s) << "respite waited too long for the first connection";
  EXPECT_TRUE(respite_->wait_for_log("connect/handshake timed out", deadline_in(kWait)));
  RawConn c = client();
  ASSERT_TRUE(c.send_all(resp_command({"GET", "k"}), deadline_in(kWait)));
  EXPECT_EQ(next(c), kUnavailable);
  EXPECT_TRUE(fake_.wait_for_handshakes(2, deadline_in(kWait))) << "respite did not retry";
  EXPECT_TRUE(fake_.wait_for_closed(1, deadline_in(kWait)));

  fake_.set_handshake_reply("+OK\r\n");
  ASSERT_TRUE(respite_->wait_for_log("upstream #0 connected", deadline_in(kWait)));
  ASSERT_TRUE(c.send_all(resp_command({"GET", "k"}), deadline_in(kWait)));
  EXPECT_EQ(next(c), FakeUpstream::bulk("value:k"));
}

// Adaptive batching: with max_batches_in_flight=1 and the first batch unanswered, later
// requests wait in respite and then leave together as one batch once the reply arrives.
TEST_F(FakeUpstreamTest, RequestsGatherWhileTheBatchLimitIsReached) {
  start({"upstream.max_batches_in_flight=1"});
  fake_.set_holding(true);
  RawConn first = client();
  ASSERT_TRUE(first.send_all(gets({"k0"}), deadline_in(kWait)));
  ASSERT_TRUE(fake_.wait_for_requests(1, deadline_in(kWait)));
  RawConn second = client();
  ASSERT_TRUE(second.send_all(gets({"k1", "k2", "k3"}), deadline_in(kWait)));
  // Bounded negative check: nothing else may reach the fake while the first batch is out.
  EXPECT_FALSE(fake_.wait_for_requests(2, deadline_in(200ms)));
  fake_.set_holding(false);
  fake_.release();
  ASSERT_TRUE(fake_.wait_for_requests(4, deadline_in(kWait)));
  EXPECT_EQ(next(first), FakeUpstream::bulk("value:k0"));
  for (const char* k : {"k1", "k2", "k3"}) EXPECT_EQ(next(second), FakeUpstream::bulk(cat("value:", k)));
}

}  // namespace
}  // namespace respite::test

namespace respite::test {
namespace {

// Replies saying Redis cannot serve (-LOADING while it loads its dataset, -READONLY after a
// failover) count as failures: consecutive ones open the circuit breaker and the fallback
// answers; once the fake serves again, the breaker half-opens after its least time open and
// closes (nothing to replay in read-only mode).
TEST_F(FakeUpstreamTest, LoadingRepliesOpenTheBreakerAndTheFallbackAnswers) {
  std::atomic<bool> loading{true};
  fake_.set_script([&](const FakeUpstream::Request& r) {
    if (loading) return FakeUpstream::Action{"-LOADING Redis is loading the dataset in memory\r\n"};
    return FakeUpstream::Action{r.args[0] == "GET" ? FakeUpstream::bulk("back") : std::string("+OK\r\n")};
  });
  start({"fallback.mode=read-only", "fallback.breaker_failures=3", "fallback.breaker_open_ms=100"});
  RawConn c = client();
  // Three -LOADING replies reach the client as they are, and open the breaker.
  for (int i = 0; i < 3; ++i) {
    c.send_all(resp_command({"GET", "k"}), deadline_in(kWait));
    EXPECT_EQ(next(c), "-LOADING Redis is loading the dataset in memory\r\n");
  }
  ASSERT_TRUE(respite_->wait_for_log("circuit breaker closed -> open", deadline_in(kWait)));
  c.send_all(resp_command({"GET", "k"}), deadline_in(kWait));
  EXPECT_EQ(next(c).rfind("-FALLBACK cannot answer 'get'", 0), 0u);  // answered by respite, not the fake
  const size_t seen = fake_.request_count();

  // Redis serves again: the pool's connection is up all along, so the breaker half-opens
  // once its least time open is over, and closes.
  loading = false;
  ASSERT_TRUE(respite_->wait_for_log("fallback over", deadline_in(kWait)));
  c.send_all(resp_command({"GET", "k"}), deadline_in(kWait));
  EXPECT_EQ(next(c), "$4\r\nback\r\n");
  EXPECT_EQ(fake_.request_count(), seen + 1);
}

}  // namespace
}  // namespace respite::test
