// ChildProcess: a program the tests start (redis-server, respite, python3), with its stdout and
// stderr drained into memory by a background thread so tests can wait for and assert on log
// lines. Only the PID this object started is ever signalled.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace respite::test {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

// A point in time `d` from now.
inline Deadline deadline_in(Clock::duration d) { return Clock::now() + d; }

// How a child ended, decoded from waitpid's status.
struct ExitStatus {
  bool exited = false;  // true: returned from main / called exit; `code` is valid
  int code = -1;        // exit code when `exited`
  int signal = 0;       // terminating signal when !exited
  bool ok() const { return exited && code == 0; }
  std::string describe() const;
};

class ChildProcess {
 public:
  // Starts argv[0] (looked up in PATH when it has no '/') with stdin from /dev/null and stdout +
  // stderr into one pipe. Throws std::runtime_error when the pipe or fork fails; an exec
  // failure shows up as exit code 127 with a message in output(). The child gets SIGKILL if
  // the thread that spawned it dies, so a crashed test leaves no servers behind: spawn from the
  // test's main thread.
  explicit ChildProcess(std::vector<std::string> argv);
  ~ChildProcess();  // SIGKILLs the child if still running, reaps it, joins the drain thread

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::vector<std::string>& argv() const { return argv_; }

  // Everything the child has written so far (stdout and stderr interleaved).
  std::string output() const;

  // Waits until `pred(output)` holds (true), the output ends because the child closed it
  // (false), or `deadline` passes (false). `pred` runs under the output lock: keep it cheap.
  bool wait_for_output(const std::function<bool(const std::string&)>& pred, Deadline deadline) const;

  // True once the child's output pipe reached EOF (the child, and anything it forked, exited).
  bool output_closed() const;

  // Sends `sig` to the child, unless it has already been reaped.
  void send_signal(int sig);

  // Reaps the child if it has exited by `deadline`; nullopt if it is still running then.
  std::optional<ExitStatus> wait_exit(Deadline deadline);

  // Non-blocking: has the child exited (reaping it if so)?
  bool running();

  // The exit status once reaped.
  std::optional<ExitStatus> exit_status() const { return status_; }

 private:
  void drain();  // background thread: pipe -> output_

  std::vector<std::string> argv_;  // what was started (for diagnostics)
  pid_t pid_ = -1;                 // the child; -1 once reaped
  int pidfd_ = -1;                 // pidfd of the child, for waiting on exit as an event (-1: unsupported)
  int out_fd_ = -1;                // read end of the stdout/stderr pipe, owned by the drain thread
  std::optional<ExitStatus> status_;  // set when reaped

  mutable std::mutex mu_;               // guards output_ and eof_
  mutable std::condition_variable cv_;  // signalled on new output and on EOF
  std::string output_;                  // all output so far
  bool eof_ = false;                    // the pipe reached EOF
  std::thread drainer_;                 // runs drain()
};

// Runs a program to completion with a deadline; kills it (SIGKILL) when the deadline passes.
struct RunResult {
  std::optional<ExitStatus> status;  // nullopt: killed at the deadline
  std::string output;                // stdout and stderr
};
RunResult run_program(std::vector<std::string> argv, std::chrono::milliseconds timeout);

}  // namespace respite::test
