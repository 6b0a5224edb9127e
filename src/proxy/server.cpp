#include "proxy/server.h"

#include "config/config_values.h"
#include "core/errors.h"
#include "net/loop.h"
#include "net/stream.h"
#include "obs/log.h"
#include "proxy/client_session.h"

namespace respite::proxy {

Server::Server(net::Loop& loop, const config::Config& cfg, upstream::UpstreamPool& pool)
    : loop_(loop), cfg_(cfg), pool_(pool), idle_timer_(loop), drain_timer_(loop) {
  limits_.max_bulk_len = cfg.client.max_bulk_len;
  limits_.max_args = cfg.client.max_args;
  limits_.max_inline_len = cfg.client.max_inline_len;
}

Server::~Server() {
  // The owner calls close_all() and lets the loop run the close callbacks first;
  // sessions still alive here would call back into a destroyed server.
  for (auto& l : listeners_) l->close();
}

void Server::close_all() {
  for (auto& l : listeners_) l->close();
  idle_timer_.stop();
  drain_timer_.stop();
  std::vector<ClientSession*> live(sessions_.begin(), sessions_.end());
  for (auto* s : live) s->close();
}

bool Server::start(std::string& error) {
  const auto& sc = cfg_.server;
  auto accept = [this](net::Stream* s) { on_accept(s); };
  if (!sc.listen.empty()) {
    config::ListenAddress addr;  // validated when the config was loaded
    if (!config::parse_listen_address(sc.listen, addr, error)) return false;
    auto l = std::make_unique<net::Listener>(loop_, accept);
    if (l->listen_tcp(addr.host, addr.port, sc.tcp_backlog, error) != 0) return false;
    obs::info("listening on tcp {}", l->bound());
    bound_.push_back(l->bound());
    listeners_.push_back(std::move(l));
  }
  if (!sc.unix_socket.empty()) {
    auto l = std::make_unique<net::Listener>(loop_, accept);
    if (l->listen_unix(sc.unix_socket, sc.unix_socket_mode, sc.tcp_backlog, error) != 0) return false;
    obs::info("listening on unix {}", l->bound());
    bound_.push_back("unix:" + l->bound());
    listeners_.push_back(std::move(l));
  }
  if (cfg_.client.idle_timeout_s > 0) {
    idle_timer_.start(1000, 1000, [this] { sweep_idle(); });
    idle_timer_.unref();
  }
  return true;
}

void Server::on_accept(net::Stream* s) {
  if (draining_ || sessions_.size() >= cfg_.server.max_clients) {
    ++stats_.rejected;
    s->output().append(draining_ ? errors::kShuttingDown : errors::kMaxClients);
    s->close_after_flush();
    return;
  }
  ++stats_.accepted;
  s->set_nodelay(true);
  s->set_keepalive(cfg_.server.tcp_keepalive_s);
  auto* session = new ClientSession(*this, s, next_id_++);
  sessions_.insert(session);
  session->start();
}

void Server::on_session_closed(ClientSession* s) {
  sessions_.erase(s);
  if (draining_) check_drained();
}

void Server::sweep_idle() {
  uint64_t now = loop_.now_ms();
  uint64_t limit = static_cast<uint64_t>(cfg_.client.idle_timeout_s) * 1000;
  std::vector<ClientSession*> idle;
  for (auto* s : sessions_) {
    if (s->idle() && now - s->last_activity_ms() >= limit) idle.push_back(s);
  }
  for (auto* s : idle) s->close();
}

void Server::drain(uint64_t deadline_ms, std::function<void()> done) {
  draining_ = true;
  drained_ = std::move(done);
  for (auto& l : listeners_) l->close();
  idle_timer_.stop();
  std::vector<ClientSession*> live(sessions_.begin(), sessions_.end());
  for (auto* s : live) s->drain();
  drain_timer_.start(deadline_ms, 0, [this] {
    if (!sessions_.empty()) obs::warn("drain deadline passed; closing {} remaining client(s)", sessions_.size());
    std::vector<ClientSession*> rest(sessions_.begin(), sessions_.end());
    for (auto* s : rest) s->close();
    check_drained();
  });
  check_drained();
}

void Server::check_drained() {
  if (!sessions_.empty() || !drained_) return;
  drain_timer_.stop();
  auto fn = std::move(drained_);
  drained_ = nullptr;
  fn();
}

}  // namespace respite::proxy
