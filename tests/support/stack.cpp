// Stack and ProxyTest; see stack.h.
#include "support/stack.h"

#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <thread>

namespace respite::test {

bool direct_mode() {
  const char* v = std::getenv("RESPITE_TEST_DIRECT");
  return v && std::string(v) == "1";
}

Stack::Stack(StackOptions options) : options_(std::move(options)) {
  dir_ = std::make_unique<TempDir>();
  std::vector<std::string> redis_args = options_.redis_args;
  if (direct_mode()) {
    redis_args.insert(redis_args.end(), options_.direct_redis_args.begin(), options_.direct_redis_args.end());
    if (options_.unix_socket) {
      redis_args.insert(redis_args.end(), {"--unixsocket", dir_->path() + "/redis.sock", "--unixsocketperm", "700"});
    }
  }
  redis_ = std::make_unique<RedisServer>(redis_args);
  if (direct_mode()) return;

  RespiteOptions ro;
  ro.upstream_url = upstream_url();
  ro.sets = options_.respite_sets;
  if (options_.unix_socket) ro.sets.push_back("server.unix_socket=" + dir_->path() + "/respite.sock");
  ro.extra_args = options_.respite_args;
  ro.admin = options_.respite_admin;
  respite_ = std::make_unique<RespiteProcess>(ro);
  // respite may report "listening" before its pool has connected; tests of steady-state
  // behaviour start once requests are actually served (StartupTest covers the startup window).
  std::string last;
  if (options_.wait_upstream_ready && !wait_until_serving(deadline_in(std::chrono::seconds(10)), &last))
    throw std::runtime_error(
        cat("respite did not serve a request within 10 s of starting; last reply: ", last, "\n", diagnostics()));
}

bool Stack::wait_until_serving(Deadline deadline, std::string* last_reply) {
  std::string last;
  while (Clock::now() < deadline) {
    try {
      Client c = connect();
      for (int i = 0; i < 200 && Clock::now() < deadline; ++i) {
        last = c.call({"DBSIZE"});
        if (!last.empty() && last[0] == ':') {
          if (last_reply) *last_reply = last;
          return true;
        }
        if (c.context()->err) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    } catch (const std::exception& e) {
      last = e.what();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (last_reply) *last_reply = last;
  return false;
}

Stack::~Stack() { stop_respite(); }

void Stack::stop_respite() {
  if (respite_) respite_->stop();
}

uint16_t Stack::port() const { return respite_ ? respite_->port() : redis_->port(); }

std::string Stack::unix_path() const {
  if (!options_.unix_socket) return "";
  return respite_ ? respite_->unix_path() : dir_->path() + "/redis.sock";
}

std::string Stack::upstream_url() const {
  std::string url = "redis://";
  if (!options_.upstream_user.empty() || !options_.upstream_password.empty())
    url += options_.upstream_user + ":" + options_.upstream_password + "@";
  url += cat("127.0.0.1:", redis_->port());
  if (options_.upstream_db != 0) url += cat("/", options_.upstream_db);
  return url;
}

namespace {
void authenticate(Client& c, const StackOptions& o) {
  if (o.upstream_password.empty()) return;
  std::vector<std::string> auth = {"AUTH"};
  if (!o.upstream_user.empty()) auth.push_back(o.upstream_user);
  auth.push_back(o.upstream_password);
  std::string r = c.call(auth);
  if (r != "+OK") throw std::runtime_error("AUTH to redis-server failed: " + r);
}
}  // namespace

Client Stack::connect() {
  Client c = Client::tcp(port());
  if (!respite_) {
    authenticate(c, options_);
    if (options_.upstream_db != 0) {
      std::string r = c.call({"SELECT", std::to_string(options_.upstream_db)});
      if (r != "+OK") throw std::runtime_error("SELECT failed: " + r);
    }
  }
  return c;
}

Client Stack::connect_redis() {
  Client c = Client::tcp(redis_->port());
  authenticate(c, options_);
  return c;
}

RawConn Stack::raw(int rcvbuf) { return RawConn::tcp(port(), rcvbuf); }

std::string Stack::diagnostics() const {
  std::string out;
  if (respite_) out += cat("---- respite log (pid ", respite_->pid(), ") ----\n", respite_->log());
  out += cat("\n---- redis-server log (port ", redis_->port(), ") ----\n", redis_->log());
  return out;
}

void dump_logs_on_failure(const Stack& stack) {
  if (::testing::Test::HasFailure()) std::cerr << stack.diagnostics() << std::endl;
}

void ProxyTest::SetUp() { stack_ = std::make_unique<Stack>(options()); }

void ProxyTest::TearDown() {
  if (!stack_) return;
  stack_->stop_respite();  // may add a failure (exit code, SIGKILL)
  dump_logs_on_failure(*stack_);
  stack_.reset();
}

}  // namespace respite::test
