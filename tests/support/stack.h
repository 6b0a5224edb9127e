// Stack: one redis-server plus one respite in front of it, the unit every integration test
// runs against; and the ProxyTest fixture that builds a default Stack per test.
//
// RESPITE_TEST_DIRECT=1 leaves respite out: clients connect straight to redis-server, so the
// tests themselves can be validated against Redis. Options that respite would apply (upstream
// AUTH/SELECT, limits) are then emulated on the client or on Redis's command line.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/net.h"
#include "support/redis_server.h"
#include "support/respite_process.h"

namespace respite::test {

// True when RESPITE_TEST_DIRECT=1: tests talk to redis-server directly.
bool direct_mode();

// For tests of behaviour only the proxy has.
#define SKIP_IN_DIRECT_MODE()                                                   \
  do {                                                                          \
    if (::respite::test::direct_mode()) GTEST_SKIP() << "proxy-only behaviour"; \
  } while (0)

struct StackOptions {
  std::vector<std::string> redis_args;         // extra redis-server args, always
  std::vector<std::string> direct_redis_args;  // extra redis-server args in direct mode only (emulate respite's limits)
  std::vector<std::string> respite_sets;       // `--set key=value` for respite
  std::vector<std::string> respite_args;       // extra respite args
  std::string respite_admin;                   // respite's --admin ("" = no admin listener; "127.0.0.1:0")
  std::string upstream_user;                   // ACL user in the upstream URL ("" = none)
  std::string upstream_password;               // password in the upstream URL ("" = none)
  int upstream_db = 0;                         // db in the upstream URL (0 = omitted)
  bool unix_socket = false;                    // also listen on a unix socket in the stack's temp dir
  bool wait_upstream_ready = true;             // after start, wait until a command is forwarded successfully
};

class Stack {
 public:
  // Starts redis-server, then respite (unless in direct mode). Throws on failure.
  explicit Stack(StackOptions options = {});
  ~Stack();

  RedisServer& redis() { return *redis_; }
  RespiteProcess* respite() { return respite_.get(); }  // null in direct mode
  bool direct() const { return !respite_; }
  const StackOptions& options() const { return options_; }

  // Where clients connect: respite's port, or Redis's in direct mode.
  uint16_t port() const;
  // The unix socket clients connect to ("" unless options.unix_socket).
  std::string unix_path() const;
  // The upstream URL given to respite.
  std::string upstream_url() const;

  // A hiredis client for the service under test. In direct mode it performs the AUTH and
  // SELECT that respite would do upstream, so tests behave the same in both modes.
  Client connect();
  // A hiredis client straight to Redis, authenticated as the upstream user if there is one.
  Client connect_redis();
  // A raw socket to the service under test (no AUTH/SELECT).
  RawConn raw(int rcvbuf = 0);

  // Polls (no event exists for it) until a forwarded command (DBSIZE) gets a non-error reply;
  // false if that does not happen by `deadline`.
  bool wait_until_serving(Deadline deadline, std::string* last_reply = nullptr);

  // Stops respite (expects exit 0 on SIGTERM). Idempotent.
  void stop_respite();

  // Logs of both processes, for failure messages.
  std::string diagnostics() const;

 private:
  StackOptions options_;                    // what was asked for
  std::unique_ptr<TempDir> dir_;            // for unix sockets
  std::unique_ptr<RedisServer> redis_;      // always present
  std::unique_ptr<RespiteProcess> respite_; // null in direct mode
};

// Fixture: a default Stack per test (override options() for another one); on failure, prints
// respite's and Redis's logs.
class ProxyTest : public ::testing::Test {
 protected:
  virtual StackOptions options() { return {}; }
  void SetUp() override;
  void TearDown() override;

  Stack& stack() { return *stack_; }
  Client connect() { return stack_->connect(); }

  std::unique_ptr<Stack> stack_;  // built in SetUp
};

// Prints a stack's logs if the current test has failed (call before destroying a Stack that a
// test built itself).
void dump_logs_on_failure(const Stack& stack);

}  // namespace respite::test
