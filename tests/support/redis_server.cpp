// RedisServer; see redis_server.h.
#include "support/redis_server.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <stdexcept>

namespace respite::test {

namespace {
constexpr auto kStartTimeout = std::chrono::seconds(10);
constexpr auto kStopTimeout = std::chrono::seconds(10);
constexpr int kStartAttempts = 5;
const char* const kReadyLine = "Ready to accept connections";
}  // namespace

RedisServer::RedisServer(std::vector<std::string> extra_args) : extra_args_(std::move(extra_args)) {
  std::string why;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    if (start_on(find_free_port(), &why)) return;
  }
  throw std::runtime_error("redis-server did not start: " + why);
}

RedisServer::~RedisServer() {
  if (proc_) stop();
}

bool RedisServer::start_on(uint16_t port, std::string* why) {
  std::vector<std::string> argv = {"redis-server",  "--port",       std::to_string(port),
                                   "--bind",        "127.0.0.1",    "--save",
                                   "",              "--appendonly", "no",
                                   "--daemonize",   "no",           "--dir",
                                   dir_.path(),     "--logfile",    ""};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  auto proc = std::make_unique<ChildProcess>(argv);
  bool ready = proc->wait_for_output(
      [](const std::string& out) { return out.find(kReadyLine) != std::string::npos; },
      deadline_in(kStartTimeout));
  if (!ready) {
    *why = cat("port ", port, ": ", proc->output());
    old_logs_ += proc->output();
    proc.reset();  // SIGKILL + reap if still running
    return false;
  }
  port_ = port;
  proc_ = std::move(proc);
  return true;
}

void RedisServer::stop() {
  if (!proc_) return;
  proc_->send_signal(SIGTERM);
  auto status = proc_->wait_exit(deadline_in(kStopTimeout));
  if (!status) {
    ADD_FAILURE() << "redis-server (port " << port_ << ") ignored SIGTERM; killing it";
    proc_->send_signal(SIGKILL);
    proc_->wait_exit(deadline_in(kStopTimeout));
  }
  old_logs_ += proc_->output();
  proc_.reset();
}

void RedisServer::kill() {
  if (!proc_) return;
  proc_->send_signal(SIGKILL);
  proc_->wait_exit(deadline_in(kStopTimeout));
  old_logs_ += proc_->output();
  proc_.reset();
}

void RedisServer::restart() {
  if (proc_) stop();
  std::string why;
  // The same port is needed (respite is configured with it); a failure here is usually a
  // moment of TIME_WAIT or another test grabbing the port, so retry a few times.
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    if (start_on(port_, &why)) return;
  }
  throw std::runtime_error("redis-server did not restart: " + why);
}

bool RedisServer::wait_for_log(std::string_view needle, Deadline deadline) const {
  if (!proc_) return false;
  return proc_->wait_for_output(
      [needle](const std::string& out) { return out.find(needle) != std::string::npos; }, deadline);
}

std::string RedisServer::log() const {
  std::string out = old_logs_;
  if (proc_) out += proc_->output();
  return out;
}

}  // namespace respite::test
