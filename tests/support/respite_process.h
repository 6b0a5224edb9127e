// RespiteProcess: the respite binary under test as a child process, listening on an ephemeral
// loopback port that it reports in its log ("listening on tcp 127.0.0.1:<port>"). Its output is
// kept so tests can assert on log lines and print it when they fail.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/process.h"

namespace respite::test {

struct RespiteOptions {
  std::string upstream_url;              // --upstream, e.g. redis://127.0.0.1:6379
  std::vector<std::string> sets;         // each becomes `--set <key=value>`
  std::vector<std::string> extra_args;   // appended verbatim
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
  // The unix socket path from "listening on unix <path>" ("" if none was configured).
  const std::string& unix_path() const { return unix_path_; }
  pid_t pid() const { return pid_; }

  // SIGTERM, then wait for exit; expects exit code 0 (ADD_FAILURE otherwise). SIGKILL after
  // a deadline, which also fails the test.
  void stop();
  bool running() const { return proc_ != nullptr; }

  std::string log() const;
  bool log_contains(std::string_view needle) const;
  // Waits for a log line containing `needle`; false at the deadline or when output ends.
  bool wait_for_log(std::string_view needle, Deadline deadline) const;

 private:
  std::unique_ptr<ChildProcess> proc_;  // the running proxy, or null once stopped
  pid_t pid_ = -1;                      // its PID (kept for diagnostics after stop)
  uint16_t port_ = 0;                   // the TCP port from its log
  std::string unix_path_;               // the unix socket from its log
  std::string final_log_;               // output captured at stop()
};

}  // namespace respite::test
