// MULTI/EXEC, DISCARD and WATCH behave as in Redis through respite, which pins a client in a
// transaction (or watching keys) to a dedicated upstream connection; and a client that leaves
// in the middle of a transaction leaves nothing behind for the clients after it.
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_probe.h"
#include "support/stack.h"

namespace respite::test {
namespace {

using namespace std::chrono_literals;

constexpr auto kWait = 5s;  // upper bound for anything that should happen promptly

class TransactionTest : public ProxyTest {};

TEST_F(TransactionTest, MultiQueuesCommandsAndExecRunsThemInOrder) {
  Client a = connect();
  Client observer = connect();
  ASSERT_EQ(a.call({"MULTI"}), "+OK");
  EXPECT_EQ(a.call({"SET", "tx:k", "v"}), "+QUEUED");
  EXPECT_EQ(a.call({"INCR", "tx:n"}), "+QUEUED");
  EXPECT_EQ(a.call({"INCRBY", "tx:n", "10"}), "+QUEUED");
  EXPECT_EQ(a.call({"GET", "tx:k"}), "+QUEUED");
  // Queued, not run: another client sees nothing yet.
  EXPECT_EQ(observer.call({"GET", "tx:k"}), "(nil)");
  EXPECT_EQ(observer.call({"EXISTS", "tx:n"}), ":0");
  EXPECT_EQ(a.call({"EXEC"}), "[+OK, :1, :11, \"v\"]");
  EXPECT_EQ(observer.call({"GET", "tx:k"}), "\"v\"");
  EXPECT_EQ(observer.call({"GET", "tx:n"}), "\"11\"");
  // Out of the transaction again: commands run at once.
  EXPECT_EQ(a.call({"SET", "tx:after", "1"}), "+OK");
  EXPECT_EQ(observer.call({"GET", "tx:after"}), "\"1\"");
  EXPECT_EQ(a.call({"MULTI"}), "+OK");
  EXPECT_EQ(a.call({"EXEC"}), "[]");
}

TEST_F(TransactionTest, WholeTransactionInOnePipelineKeepsReplyOrder) {
  RawConn c = stack().raw();
  std::string batch;
  for (const auto& args : std::vector<std::vector<std::string>>{{"SET", "txp:a", "1"},
                                                                {"MULTI"},
                                                                {"INCR", "txp:a"},
                                                                {"GET", "txp:a"},
                                                                {"EXEC"},
                                                                {"GET", "txp:a"},
                                                                {"MULTI"},
                                                                {"INCR", "txp:a"},
                                                                {"DISCARD"},
                                                                {"GET", "txp:a"}})
    batch += resp_command(args);
  ASSERT_TRUE(c.send_all(batch, deadline_in(kWait)));
  EXPECT_EQ(escape_bytes(next_reply(c)), "+OK\\r\\n");
  EXPECT_EQ(escape_bytes(next_reply(c)), "+OK\\r\\n");
  EXPECT_EQ(escape_bytes(next_reply(c)), "+QUEUED\\r\\n");
  EXPECT_EQ(escape_bytes(next_reply(c)), "+QUEUED\\r\\n");
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(resp_array({":2\r\n", resp_bulk("2")})));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(resp_bulk("2")));
  EXPECT_EQ(escape_bytes(next_reply(c)), "+OK\\r\\n");
  EXPECT_EQ(escape_bytes(next_reply(c)), "+QUEUED\\r\\n");
  EXPECT_EQ(escape_bytes(next_reply(c)), "+OK\\r\\n");
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(resp_bulk("2")));
}

TEST_F(TransactionTest, DiscardDropsTheQueue) {
  Client a = connect();
  ASSERT_EQ(a.call({"MULTI"}), "+OK");
  EXPECT_EQ(a.call({"SET", "txd:k", "v"}), "+QUEUED");
  EXPECT_EQ(a.call({"DISCARD"}), "+OK");
  EXPECT_EQ(a.call({"GET", "txd:k"}), "(nil)");
  EXPECT_EQ(a.call({"EXEC"}), "-ERR EXEC without MULTI");
  EXPECT_EQ(a.call({"SET", "txd:k", "now"}), "+OK");
  EXPECT_EQ(connect().call({"GET", "txd:k"}), "\"now\"");
}

TEST_F(TransactionTest, ExecWithoutMultiAndOtherMisuseGetRedisErrors) {
  Client a = connect();
  EXPECT_EQ(a.call({"EXEC"}), "-ERR EXEC without MULTI");
  EXPECT_EQ(a.call({"DISCARD"}), "-ERR DISCARD without MULTI");
  ASSERT_EQ(a.call({"MULTI"}), "+OK");
  EXPECT_EQ(a.call({"MULTI"}), "-ERR MULTI calls can not be nested");
  EXPECT_EQ(a.call({"WATCH", "txm:k"}), "-ERR WATCH inside MULTI is not allowed");
  EXPECT_EQ(a.call({"SET", "txm:k", "v"}), "+QUEUED");
  // Neither error aborts the transaction.
  EXPECT_EQ(a.call({"EXEC"}), "[+OK]");
  EXPECT_EQ(a.call({"GET", "txm:k"}), "\"v\"");
}

TEST_F(TransactionTest, QueueTimeErrorAbortsExec) {
  Client a = connect();
  ASSERT_EQ(a.call({"MULTI"}), "+OK");
  EXPECT_EQ(a.call({"SET", "txa:k1", "v"}), "+QUEUED");
  EXPECT_EQ(a.call({"SET", "txa:k2"}), "-ERR wrong number of arguments for 'set' command");
  EXPECT_EQ(a.call({"SET", "txa:k3", "v"}), "+QUEUED");
  EXPECT_EQ(a.call({"EXEC"}), "-EXECABORT Transaction discarded because of previous errors.");
  Client observer = connect();
  EXPECT_EQ(observer.call({"EXISTS", "txa:k1", "txa:k2", "txa:k3"}), ":0");
  // The client is out of the transaction.
  EXPECT_EQ(a.call({"SET", "txa:k1", "direct"}), "+OK");
  EXPECT_EQ(observer.call({"GET", "txa:k1"}), "\"direct\"");
}

TEST_F(TransactionTest, RuntimeErrorInsideExecDoesNotStopTheRest) {
  Client a = connect();
  ASSERT_EQ(a.call({"SET", "txr:s", "str"}), "+OK");
  ASSERT_EQ(a.call({"MULTI"}), "+OK");
  EXPECT_EQ(a.call({"LPUSH", "txr:s", "x"}), "+QUEUED");
  EXPECT_EQ(a.call({"INCR", "txr:n"}), "+QUEUED");
  EXPECT_EQ(a.call({"EXEC"}), "[-WRONGTYPE Operation against a key holding the wrong kind of value, :1]");
}

TEST_F(TransactionTest, WatchedKeyModifiedByAnotherClientMakesExecReturnNull) {
  Client a = connect();
  Client b = connect();
  ASSERT_EQ(a.call({"SET", "txw:k", "0"}), "+OK");
  ASSERT_EQ(a.call({"WATCH", "txw:k"}), "+OK");
  EXPECT_EQ(a.call({"GET", "txw:k"}), "\"0\"");
  ASSERT_EQ(b.call({"SET", "txw:k", "theirs"}), "+OK");
  ASSERT_EQ(a.call({"MULTI"}), "+OK");
  EXPECT_EQ(a.call({"SET", "txw:k", "mine"}), "+QUEUED");
  EXPECT_EQ(a.call({"SET", "txw:other", "mine"}), "+QUEUED");
  EXPECT_EQ(a.call({"EXEC"}), "(nil)");  // RESP2 null array: the transaction did not run
  EXPECT_EQ(b.call({"GET", "txw:k"}), "\"theirs\"");
  EXPECT_EQ(b.call({"EXISTS", "txw:other"}), ":0");

  // EXEC ended the WATCH: the same client's next transaction runs.
  ASSERT_EQ(b.call({"SET", "txw:k", "again"}), "+OK");
  ASSERT_EQ(a.call({"MULTI"}), "+OK");
  EXPECT_EQ(a.call({"SET", "txw:k", "mine"}), "+QUEUED");
  EXPECT_EQ(a.call({"EXEC"}), "[+OK]");
  EXPECT_EQ(b.call({"GET", "txw:k"}), "\"mine\"");
}

TEST_F(TransactionTest, WatchWithoutConflictExecutes) {
  Client a = connect();
  ASSERT_EQ(a.call({"WATCH", "txn:k", "txn:j"}), "+OK");
  ASSERT_EQ(connect().call({"SET", "txn:unrelated", "x"}), "+OK");
  ASSERT_EQ(a.call({"MULTI"}), "+OK");
  EXPECT_EQ(a.call({"SET", "txn:k", "v"}), "+QUEUED");
  EXPECT_EQ(a.call({"EXEC"}), "[+OK]");
  EXPECT_EQ(a.call({"GET", "txn:k"}), "\"v\"");
}

TEST_F(TransactionTest, UnwatchForgetsTheWatchedKeys) {
  Client a = connect();
  Client b = connect();
  ASSERT_EQ(a.call({"WATCH", "txu:k"}), "+OK");
  ASSERT_EQ(b.call({"SET", "txu:k", "theirs"}), "+OK");
  ASSERT_EQ(a.call({"UNWATCH"}), "+OK");
  ASSERT_EQ(a.call({"MULTI"}), "+OK");
  EXPECT_EQ(a.call({"SET", "txu:k", "mine"}), "+QUEUED");
  EXPECT_EQ(a.call({"EXEC"}), "[+OK]");
  EXPECT_EQ(b.call({"GET", "txu:k"}), "\"mine\"");
}

TEST_F(TransactionTest, DiscardAlsoEndsTheWatch) {
  Client a = connect();
  Client b = connect();
  ASSERT_EQ(a.call({"WATCH", "txdw:k"}), "+OK");
  ASSERT_EQ(a.call({"MULTI"}), "+OK");
  ASSERT_EQ(a.call({"DISCARD"}), "+OK");
  ASSERT_EQ(b.call({"SET", "txdw:k", "theirs"}), "+OK");
  ASSERT_EQ(a.call({"MULTI"}), "+OK");
  EXPECT_EQ(a.call({"SET", "txdw:k", "mine"}), "+QUEUED");
  EXPECT_EQ(a.call({"EXEC"}), "[+OK]");
}

// Optimistic locking from several clients at once: every increment lands exactly once, which
// needs each client's WATCH, GET, MULTI, SET and EXEC to reach Redis on one connection of its own.
TEST_F(TransactionTest, ConcurrentOptimisticIncrementsAllLand) {
  constexpr int kClients = 8;
  constexpr int kIncrements = 20;
  std::latch start(kClients);
  std::mutex mu;
  std::vector<std::string> errors;
  std::atomic<int> conflicts{0};
  const uint16_t port = stack().port();
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&] {
      auto fail = [&](const std::string& e) {
        std::lock_guard<std::mutex> lock(mu);
        errors.push_back(e);
      };
      std::optional<Client> c;
      try {
        c.emplace(Client::tcp(port, 10s));
      } catch (const std::exception& e) {
        fail(e.what());
      }
      start.arrive_and_wait();
      if (!c) return;
      for (int done = 0, attempts = 0; done < kIncrements; ++attempts) {
        if (attempts > 2000) return fail("too many conflicts");
        std::string got;
        if ((got = c->call({"WATCH", "txc:counter"})) != "+OK") return fail("WATCH: " + got);
        Reply value = c->command({"GET", "txc:counter"});
        if (!value || (value->type != REDIS_REPLY_NIL && value->type != REDIS_REPLY_STRING))
          return fail("GET: " + describe(value));
        long long n = value->type == REDIS_REPLY_NIL ? 0 : std::stoll(std::string(value->str, value->len));
        if ((got = c->call({"MULTI"})) != "+OK") return fail("MULTI: " + got);
        if ((got = c->call({"SET", "txc:counter", std::to_string(n + 1)})) != "+QUEUED") return fail("SET: " + got);
        got = c->call({"EXEC"});
        if (got == "[+OK]") {
          ++done;
        } else if (got == "(nil)") {
          ++conflicts;
        } else {
          return fail("EXEC: " + got);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) ADD_FAILURE() << e;
  EXPECT_EQ(connect().call({"GET", "txc:counter"}), cat("\"", kClients * kIncrements, "\""))
      << conflicts.load() << " conflicts were retried";
}

// A client that disconnects inside MULTI: nothing it queued is applied, and the clients after
// it -- which may be given the same upstream connection -- are not inside its transaction.
// Repeated, alternating FIN and RST, so a connection handed on without a reset would be caught.
TEST_F(TransactionTest, ClientLeavingInsideMultiLeavesNoTransactionBehind) {
  Client redis = stack().connect_redis();
  Client observer = connect();
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE(cat("round ", round));
    const std::string abandoned = cat("txl:abandoned:", round);
    const std::string fresh = cat("txl:fresh:", round);
    {
      RawConn leaver = stack().raw();
      ASSERT_TRUE(send_command(leaver, {"MULTI"}));
      ASSERT_EQ(next_reply(leaver), "+OK\r\n");
      ASSERT_TRUE(send_command(leaver, {"SET", abandoned, "v"}));
      ASSERT_EQ(next_reply(leaver), "+QUEUED\r\n");
      ASSERT_TRUE(send_command(leaver, {"INCR", "txl:abandoned:counter"}));
      ASSERT_EQ(next_reply(leaver), "+QUEUED\r\n");
      leaver.close(/*reset=*/round % 2 == 1);
    }
    // Until no connection on Redis is inside MULTI (the leaver's was closed or reset).
    EXPECT_TRUE(poll_until(
        [&] {
          for (const auto& client : client_list(redis)) {
            auto multi = client.find("multi");
            if (multi == client.end() || multi->second != "-1") return false;
          }
          return true;
        },
        deadline_in(kWait)))
        << "a connection on Redis is still inside MULTI after its client left";

    Client next = connect();
    // WATCH (and later MULTI) pin this client too: an upstream connection still in the
    // leaver's MULTI would answer "-ERR WATCH inside MULTI is not allowed" and queue the SET.
    EXPECT_EQ(next.call({"WATCH", "txl:watched"}), "+OK");
    EXPECT_EQ(next.call({"SET", fresh, "now"}), "+OK");
    EXPECT_EQ(observer.call({"GET", fresh}), "\"now\"");
    EXPECT_EQ(next.call({"MULTI"}), "+OK");
    EXPECT_EQ(next.call({"INCR", "txl:own"}), "+QUEUED");
    EXPECT_EQ(next.call({"EXEC"}), cat("[:", round + 1, "]"));  // only its own command ran
    EXPECT_EQ(next.call({"SET", fresh, "later"}), "+OK");
    EXPECT_EQ(observer.call({"GET", fresh}), "\"later\"");

    EXPECT_EQ(observer.call({"EXISTS", abandoned, "txl:abandoned:counter"}), ":0")
        << "a queued command of the client that left was applied";
  }
}

// A client that leaves while WATCHing: the next clients' transactions are not aborted by the
// leaver's watched key changing.
TEST_F(TransactionTest, ClientLeavingWhileWatchingLeavesNoWatchBehind) {
  Client writer = connect();
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE(cat("round ", round));
    {
      RawConn leaver = stack().raw();
      ASSERT_TRUE(send_command(leaver, {"WATCH", "txlw:k"}));
      ASSERT_EQ(next_reply(leaver), "+OK\r\n");
      ASSERT_TRUE(send_command(leaver, {"QUIT"}));
      EXPECT_EQ(next_reply(leaver), "+OK\r\n");
      bool closed = false;
      leaver.read_until_closed(deadline_in(kWait), &closed);
      EXPECT_TRUE(closed) << "QUIT did not close the connection";
    }
    ASSERT_EQ(writer.call({"SET", "txlw:k", cat("changed-", round)}), "+OK");
    Client next = connect();
    ASSERT_EQ(next.call({"MULTI"}), "+OK");
    EXPECT_EQ(next.call({"SET", "txlw:mine", std::to_string(round)}), "+QUEUED");
    EXPECT_EQ(next.call({"EXEC"}), "[+OK]") << "a transaction was aborted by another client's WATCH";
  }
}

}  // namespace
}  // namespace respite::test
