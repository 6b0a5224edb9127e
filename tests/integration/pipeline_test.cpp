// Ordering and isolation under load: one huge pipeline, many concurrent clients, and a client
// that disappears mid-pipeline while others keep working.
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/stack.h"

namespace respite::test {
namespace {

using namespace std::chrono_literals;

class PipelineTest : public ProxyTest {};

TEST_F(PipelineTest, HundredThousandCommandsInOneWriteComeBackInOrder) {
  constexpr int kPairs = 50'000;  // SET + GET each: 100,000 commands
  std::string batch;
  batch.reserve(kPairs * 80);
  for (int i = 0; i < kPairs; ++i) {
    const std::string key = cat("k:", i);
    batch += resp_command({"SET", key, cat("value-", i)});
    batch += resp_command({"GET", key});
  }

  RawConn conn = stack().raw();
  std::atomic<bool> sent{false};
  // The writer pushes the whole buffer while the main thread reads: neither side may wait for
  // the other to finish, or a proxy that stops reading at a high-water mark would deadlock us.
  std::thread writer([&] { sent = conn.send_all(batch, deadline_in(60s)); });

  const Deadline deadline = deadline_in(60s);
  int bad = 0;
  std::string first_bad;
  for (int i = 0; i < kPairs; ++i) {
    auto set_reply = conn.read_reply(deadline);
    auto get_reply = set_reply ? conn.read_reply(deadline) : std::nullopt;
    if (!set_reply || !get_reply) {
      ADD_FAILURE() << "replies stop at pair " << i << (conn.closed() ? " (connection closed)" : " (timeout)");
      break;
    }
    const std::string value = cat("value-", i);
    const std::string want_get = cat("$", value.size(), "\r\n", value, "\r\n");
    if (*set_reply != "+OK\r\n" || *get_reply != want_get) {
      if (bad++ == 0)
        first_bad = cat("pair ", i, ": ", escape_bytes(*set_reply), " / ", escape_bytes(*get_reply));
    }
  }
  conn.close(true);  // unblocks the writer if the reader gave up early
  writer.join();
  EXPECT_TRUE(sent) << "the pipeline could not be written within 60 s";
  EXPECT_EQ(bad, 0) << "wrong or out-of-order replies; first: " << first_bad;
}

TEST_F(PipelineTest, TwoHundredConcurrentClientsGetTheirOwnResults) {
  constexpr int kClients = 200;
  constexpr int kRounds = 25;
  std::latch start(kClients);
  std::mutex mu;
  std::vector<std::string> errors;
  auto fail = [&](const std::string& e) {
    std::lock_guard<std::mutex> lock(mu);
    if (errors.size() < 20) errors.push_back(e);
  };

  std::vector<std::thread> threads;
  threads.reserve(kClients);
  const uint16_t port = stack().port();
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      std::optional<Client> client;
      try {
        client.emplace(Client::tcp(port, 10s));
      } catch (const std::exception& e) {
        fail(e.what());
      }
      start.arrive_and_wait();  // everyone connected before anyone works: maximal interleaving
      if (!client) return;
      const std::string id = std::to_string(c);
      const std::string str = "client:" + id + ":str";
      const std::string cnt = "client:" + id + ":cnt";
      const std::string lst = "client:" + id + ":list";
      for (int r = 0; r < kRounds; ++r) {
        const std::string value = cat(id, "/", r);
        std::string got;
        if ((got = client->call({"SET", str, value})) != "+OK") return fail(id + " SET: " + got);
        if ((got = client->call({"GET", str})) != cat("\"", value, "\"")) return fail(id + " GET: " + got);
        if ((got = client->call({"INCRBY", cnt, id})) != cat(":", (r + 1) * c))
          return fail(id + " INCRBY: " + got);
        // A small pipeline per round too: replies must stay in this client's order.
        client->append({"RPUSH", lst, value});
        client->append({"LINDEX", lst, "-1"});
        client->append({"LLEN", lst});
        Reply a = client->get_reply(), b = client->get_reply(), n = client->get_reply();
        if (describe(a) != cat(":", r + 1) || describe(b) != cat("\"", value, "\"") ||
            describe(n) != cat(":", r + 1))
          return fail(id + " pipeline: " + describe(a) + " " + describe(b) + " " + describe(n));
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) ADD_FAILURE() << e;
  EXPECT_TRUE(errors.empty());
}

// A client writes a long pipeline of large-reply commands and vanishes without reading, while
// other clients work; they must be unaffected and respite must keep serving.
void client_vanishes_mid_pipeline(Stack& stack, bool reset) {
  {
    Client setup = stack.connect();
    ASSERT_EQ(setup.call({"SET", "bulky", std::string(64 * 1024, 'b')}), "+OK");
  }
  std::string batch;
  for (int i = 0; i < 500; ++i) batch += resp_command({"GET", "bulky"});  // ~32 MiB of replies
  for (int i = 0; i < 20000; ++i) batch += resp_command({"INCR", "vanisher:counter"});

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> errors;
  std::atomic<int> ops{0};
  std::vector<std::thread> bystanders;
  const uint16_t port = stack.port();
  for (int b = 0; b < 4; ++b) {
    bystanders.emplace_back([&, b] {
      try {
        Client c = Client::tcp(port);
        const std::string key = cat("bystander:", b);
        for (int i = 0; !stop || i < 200; ++i) {
          const std::string v = std::to_string(i);
          std::string set = c.call({"SET", key, v}), get = c.call({"GET", key});
          if (set != "+OK" || get != cat("\"", v, "\"")) {
            std::lock_guard<std::mutex> lock(mu);
            errors.push_back(key + ": " + set + " / " + get);
            return;
          }
          ++ops;
        }
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mu);
        errors.push_back(e.what());
      }
    });
  }

  for (int round = 0; round < 3; ++round) {
    RawConn vanisher = stack.raw(16 * 1024);
    // Write what fits within a short time: the proxy may legitimately stop reading us once
    // our unread replies pile up (backpressure), so do not insist on the whole batch.
    vanisher.send_all(batch, deadline_in(500ms));
    // Make sure at least some replies were produced before vanishing.
    auto first = vanisher.read_reply(deadline_in(5s));
    EXPECT_TRUE(first.has_value()) << "the vanishing client got no reply at all";
    vanisher.close(reset);
  }
  stop = true;
  for (auto& t : bystanders) t.join();
  for (const auto& e : errors) ADD_FAILURE() << e;
  EXPECT_GE(ops.load(), 800);

  // Still serving, to old and new clients.
  Client after = stack.connect();
  EXPECT_EQ(after.call({"PING"}), "+PONG");
  EXPECT_EQ(after.call({"SET", "after", "ok"}), "+OK");
  EXPECT_EQ(after.call({"GET", "after"}), "\"ok\"");
}

TEST_F(PipelineTest, ClientClosingMidPipelineLeavesOthersUnaffected) {
  client_vanishes_mid_pipeline(stack(), /*reset=*/false);
}

TEST_F(PipelineTest, ClientResettingMidPipelineLeavesOthersUnaffected) {
  client_vanishes_mid_pipeline(stack(), /*reset=*/true);
}

}  // namespace
}  // namespace respite::test
