// RedisServer: a private redis-server child on 127.0.0.1 and a free port, with no persistence
// and a fresh working directory. Readiness is the "Ready to accept connections" log line, read
// from the server's stdout (an event, not a sleep).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/net.h"
#include "support/process.h"

namespace respite::test {

class RedisServer {
 public:
  // Starts at once. `extra_args` are appended to the command line as separate argv elements,
  // e.g. {"--requirepass", "pw"} or {"--user", "alice", "on", ">pw", "~*", "&*", "+@all"}.
  // Throws std::runtime_error if no start succeeds (a few ports are tried).
  explicit RedisServer(std::vector<std::string> extra_args = {});
  ~RedisServer();  // stops the server (SIGTERM, then SIGKILL) and removes its directory

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_.path(); }
  bool running() const { return proc_ != nullptr; }

  // SIGTERM and wait for exit (ADD_FAILURE if it has to be killed).
  void stop();
  // SIGKILL and wait: the server vanishes without closing anything gracefully.
  void kill();
  // Starts again on the same port (after stop() or kill()). Throws on failure.
  void restart();

  // Waits until the current run's log contains `needle` (e.g. a redis.log() line written by a
  // script); false at the deadline or if the server exits.
  bool wait_for_log(std::string_view needle, Deadline deadline) const;

  // The server's log: earlier runs', then the current run's (for failure diagnostics).
  std::string log() const;

 private:
  bool start_on(uint16_t port, std::string* why);  // one attempt

  std::vector<std::string> extra_args_;  // appended to every start
  TempDir dir_;                          // --dir; removed on destruction
  uint16_t port_ = 0;                    // the port, kept across restarts
  std::unique_ptr<ChildProcess> proc_;   // the running server, or null
  std::string old_logs_;                 // output of earlier runs
};

}  // namespace respite::test
