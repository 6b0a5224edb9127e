// RespiteProcess: the respite binary under test as a child process, listening on an ephemeral
// loopback port that it reports in its log ("listening on tcp 127.0.0.1:<port>", or
// "listening on tcp [::1]:<port>" with listen = "[::1]:0"). Its output is kept so tests can
// assert on log lines and print it when they fail.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/process.h"

namespace respite::test {

struct RespiteOptions {
  std::string upstream_url;              // --upstream, e.g. redis://127.0.0.1:6379
  std::string listen = "127.0.0.1:0";    // --listen; must be a TCP address (its port is waited for)
  std::vector<std::string> sets;         // each becomes `--set <key=value>`
  std::string admin;                     // --admin: "" (none: tests run many respites at once) or "127.0.0.1:0"
  std::vector<std::string> extra_args;   // appended verbatim (after --admin: a config file's admin.listen loses)
};

class RespiteProcess {
 public:
  // Starts RESPITE_BINARY and waits (up to ~10 s) for its listening log line(s); throws
  // std::runtime_error, with the output so far, if it exits or stays silent.
  explicit RespiteProcess(RespiteOptions options);
  ~RespiteProcess();  // stop() if still running

  RespiteProcess(const RespiteProcess&) = delete;
  RespiteProcess& operator=(const RespiteProcess&) = delete;

  uint16_t port() const { return port_; }
  // The TCP address from "listening on tcp <address>", e.g. "127.0.0.1:40123" or "[::1]:40123".
  const std::string& tcp_address() const { return tcp_address_; }
  // The unix socket path from "listening on unix <path>" ("" if none was configured).
  const std::string& unix_path() const { return unix_path_; }
  // The admin listener's address from "admin listening on http <address>" ("" if none).
  const std::string& admin_address() const { return admin_address_; }
  pid_t pid() const { return pid_; }

  // SIGTERM, then wait for exit; expects exit code 0 (ADD_FAILURE otherwise). SIGKILL after
  // a deadline, which also fails the test.
  void stop();
  bool running() const { return proc_ != nullptr; }

  // Sends `sig` to this respite (by its PID), unless it has already exited and been reaped.
  void send_signal(int sig);
  // Waits for respite to exit on its own (e.g. after send_signal(SIGTERM)); nullopt if it is
  // still running at the deadline. Once it has exited, its log is kept, running() is false and
  // later calls return the same status.
  std::optional<ExitStatus> wait_exit(Deadline deadline);

  std::string log() const;
  bool log_contains(std::string_view needle) const;
  // Waits for a log line containing `needle`; false at the deadline or when output ends.
  bool wait_for_log(std::string_view needle, Deadline deadline) const;

 private:
  std::unique_ptr<ChildProcess> proc_;  // the running proxy, or null once stopped
  pid_t pid_ = -1;                      // its PID (kept for diagnostics after stop)
  uint16_t port_ = 0;                   // the TCP port from its log
  std::string tcp_address_;             // the TCP address from its log
  std::string unix_path_;               // the unix socket from its log
  std::string admin_address_;           // the admin listener from its log
  std::string final_log_;               // output captured at stop() / wait_exit()
  std::optional<ExitStatus> exit_status_;  // how it ended, once wait_exit() saw it
};

}  // namespace respite::test
