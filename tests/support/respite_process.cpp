// RespiteProcess; see respite_process.h.
#include "support/respite_process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <cctype>
#include <stdexcept>

#ifndef RESPITE_BINARY
#error "RESPITE_BINARY must be defined (path of the respite executable under test)"
#endif

namespace respite::test {

namespace {
constexpr auto kStartTimeout = std::chrono::seconds(10);
constexpr auto kStopTimeout = std::chrono::seconds(10);
const std::string kTcpMarker = "listening on tcp ";
const std::string kUnixMarker = "listening on unix ";
const std::string kAdminMarker = "admin listening on http ";

// The address after `marker` ("127.0.0.1:<port>", "[::1]:<port>"), or "" while the line is
// incomplete.
std::string parse_tcp_address(const std::string& out, const std::string& marker = kTcpMarker) {
  size_t at = out.find(marker);
  if (at == std::string::npos) return "";
  size_t pos = at + marker.size();
  size_t end = pos;
  while (end < out.size() && !isspace(static_cast<unsigned char>(out[end]))) ++end;
  if (end == pos || end == out.size()) return "";  // the address may still be arriving
  return out.substr(pos, end - pos);
}

// The port at the end of the TCP address after the marker, or 0 if the line is not complete yet.
uint16_t parse_port(const std::string& out) {
  std::string addr = parse_tcp_address(out);
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon + 1 == addr.size() || addr.size() - colon > 6) return 0;
  for (size_t i = colon + 1; i < addr.size(); ++i) {
    if (!isdigit(static_cast<unsigned char>(addr[i]))) return 0;
  }
  unsigned long port = std::stoul(addr.substr(colon + 1));
  return port > 0 && port < 65536 ? static_cast<uint16_t>(port) : 0;
}

// The path after the unix marker, up to whitespace, or "" while the line is incomplete.
std::string parse_unix_path(const std::string& out) {
  size_t at = out.find(kUnixMarker);
  if (at == std::string::npos) return "";
  size_t pos = at + kUnixMarker.size();
  size_t end = pos;
  while (end < out.size() && !isspace(static_cast<unsigned char>(out[end]))) ++end;
  if (end == out.size()) return "";
  return out.substr(pos, end - pos);
}
}  // namespace

RespiteProcess::RespiteProcess(RespiteOptions options) {
  std::vector<std::string> argv = {RESPITE_BINARY, "--listen", options.listen, "--upstream", options.upstream_url,
                                   "--admin", options.admin};
  const bool wants_admin = !options.admin.empty();
  bool wants_unix = false;
  for (const auto& s : options.sets) {
    argv.push_back("--set");
    argv.push_back(s);
    if (s.rfind("server.unix_socket=", 0) == 0 && s.size() > 19) wants_unix = true;
  }
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());

  proc_ = std::make_unique<ChildProcess>(argv);
  pid_ = proc_->pid();
  bool ready = proc_->wait_for_output(
      [wants_unix, wants_admin](const std::string& out) {
        return parse_port(out) != 0 && (!wants_unix || !parse_unix_path(out).empty()) &&
               (!wants_admin || !parse_tcp_address(out, kAdminMarker).empty());
      },
      deadline_in(kStartTimeout));
  std::string out = proc_->output();
  if (!ready) {
    proc_.reset();  // SIGKILL + reap
    throw std::runtime_error("respite did not report its listening address within 10 s (" +
                             std::string(RESPITE_BINARY) + "); output:\n" + out);
  }
  port_ = parse_port(out);
  tcp_address_ = parse_tcp_address(out);
  unix_path_ = parse_unix_path(out);
  admin_address_ = parse_tcp_address(out, kAdminMarker);
}

RespiteProcess::~RespiteProcess() {
  if (proc_) stop();
}

void RespiteProcess::stop() {
  if (!proc_) return;
  proc_->send_signal(SIGTERM);
  auto status = proc_->wait_exit(deadline_in(kStopTimeout));
  if (!status) {
    proc_->send_signal(SIGKILL);
    proc_->wait_exit(deadline_in(kStopTimeout));
    ADD_FAILURE() << "respite (pid " << pid_ << ") did not exit within 10 s of SIGTERM; killed it";
  } else if (!status->ok()) {
    ADD_FAILURE() << "respite (pid " << pid_ << ") exited after SIGTERM with " << status->describe()
                  << ", expected exit code 0";
  }
  // Its pipe closes as it exits; let the drain thread collect the last lines.
  proc_->wait_for_output([](const std::string&) { return false; }, deadline_in(std::chrono::seconds(2)));
  final_log_ = proc_->output();
  proc_.reset();
}

void RespiteProcess::send_signal(int sig) {
  if (proc_) proc_->send_signal(sig);
}

std::optional<ExitStatus> RespiteProcess::wait_exit(Deadline deadline) {
  if (!proc_) return exit_status_;
  auto status = proc_->wait_exit(deadline);
  if (!status) return std::nullopt;
  // Its pipe closes as it exits; let the drain thread collect the last lines.
  proc_->wait_for_output([](const std::string&) { return false; }, deadline_in(std::chrono::seconds(2)));
  final_log_ = proc_->output();
  exit_status_ = status;
  proc_.reset();
  return status;
}

std::string RespiteProcess::log() const { return proc_ ? proc_->output() : final_log_; }

bool RespiteProcess::log_contains(std::string_view needle) const {
  return log().find(needle) != std::string::npos;
}

bool RespiteProcess::wait_for_log(std::string_view needle, Deadline deadline) const {
  if (!proc_) return log_contains(needle);
  return proc_->wait_for_output(
      [needle](const std::string& out) { return out.find(needle) != std::string::npos; }, deadline);
}

}  // namespace respite::test
