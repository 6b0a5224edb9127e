// ChildProcess: fork/exec with a drained output pipe; see process.h.
#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace respite::test {

namespace {

int ms_until(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left < 0) return 0;
  if (left > 60'000) return 60'000;
  return static_cast<int>(left) + 1;
}

ExitStatus decode(int wstatus) {
  ExitStatus s;
  if (WIFEXITED(wstatus)) {
    s.exited = true;
    s.code = WEXITSTATUS(wstatus);
  } else if (WIFSIGNALED(wstatus)) {
    s.signal = WTERMSIG(wstatus);
  }
  return s;
}

// Closes every descriptor from 3 up in the forked child (async-signal-safe).
void close_inherited_fds() {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0) return;
#endif
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536) max = 65536;
  for (int fd = 3; fd < max; ++fd) ::close(fd);
}

}  // namespace

std::string ExitStatus::describe() const {
  if (exited) return "exit code " + std::to_string(code);
  if (signal != 0) return std::string("killed by signal ") + strsignal(signal);
  return "unknown status";
}

ChildProcess::ChildProcess(std::vector<std::string> argv) : argv_(std::move(argv)) {
  if (argv_.empty()) throw std::runtime_error("ChildProcess: empty argv");
  std::vector<char*> cargv;
  for (auto& a : argv_) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + strerror(errno));
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) {
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    throw std::runtime_error(std::string("open /dev/null: ") + strerror(errno));
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    ::close(devnull);
    throw std::runtime_error(std::string("fork: ") + strerror(err));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls from here to exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, nullptr);
    dup2(devnull, 0);
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    close_inherited_fds();
    execvp(cargv[0], cargv.data());
    const char msg[] = "ChildProcess: exec failed\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(127);
  }
  ::close(pipefd[1]);
  ::close(devnull);
  pid_ = pid;
  out_fd_ = pipefd[0];
#ifdef SYS_pidfd_open
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#endif
  drainer_ = std::thread([this] { drain(); });
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int ws = 0;
    while (waitpid(pid_, &ws, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  if (drainer_.joinable()) drainer_.join();
  if (pidfd_ >= 0) ::close(pidfd_);
  if (out_fd_ >= 0) ::close(out_fd_);
}

void ChildProcess::drain() {
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    std::lock_guard<std::mutex> lock(mu_);
    if (n <= 0) {
      eof_ = true;
      cv_.notify_all();
      return;
    }
    output_.append(buf, static_cast<size_t>(n));
    cv_.notify_all();
  }
}

std::string ChildProcess::output() const {
  std::lock_guard<std::mutex> lock(mu_);
  return output_;
}

bool ChildProcess::output_closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return eof_;
}

bool ChildProcess::wait_for_output(const std::function<bool(const std::string&)>& pred,
                                   Deadline deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (pred(output_)) return true;
    if (eof_) return false;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) return pred(output_);
  }
}

void ChildProcess::send_signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int ws = 0;
  pid_t r = waitpid(pid_, &ws, WNOHANG);
  if (r == pid_) {
    status_ = decode(ws);
    pid_ = -1;
    return false;
  }
  return true;
}

std::optional<ExitStatus> ChildProcess::wait_exit(Deadline deadline) {
  for (;;) {
    if (!running()) return status_;
    if (Clock::now() >= deadline) return std::nullopt;
    if (pidfd_ >= 0) {
      // The pidfd becomes readable when the child exits: an event, not a sleep.
      pollfd p{pidfd_, POLLIN, 0};
      int r = ::poll(&p, 1, ms_until(deadline));
      if (r < 0 && errno != EINTR) {
        ::close(pidfd_);
        pidfd_ = -1;
      }
    } else {
      // No pidfd on this kernel: poll waitpid with a short period until the deadline.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

RunResult run_program(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  ChildProcess child(std::move(argv));
  RunResult result;
  result.status = child.wait_exit(deadline_in(timeout));
  if (!result.status) {
    child.send_signal(SIGKILL);
    child.wait_exit(deadline_in(std::chrono::seconds(5)));
  }
  // The output pipe closes once the child is gone; wait briefly for the drainer to see EOF.
  child.wait_for_output([](const std::string&) { return false; }, deadline_in(std::chrono::seconds(2)));
  result.output = child.output();
  return result;
}

}  // namespace respite::test
