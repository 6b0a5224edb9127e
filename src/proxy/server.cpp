#include "proxy/server.h"

#include <algorithm>
#include <cctype>

#include "config/config_values.h"
#include "core/errors.h"
#include "core/parse.h"
#include "fallback/fallback.h"
#include "net/loop.h"
#include "net/stream.h"
#include "obs/log.h"
#include "proxy/client_session.h"
#include "cache/near_cache.h"
#include "ratelimit/limiter.h"
#include "upstream/upstream_pool.h"

namespace respite::proxy {

Server::Server(net::Loop& loop, const config::Config& cfg, upstream::UpstreamPool& pool, cache::NearCache& cache,
               ratelimit::Limiter& limiter)
    : loop_(loop),
      cfg_(cfg),
      pool_(pool),
      cache_(cache),
      limiter_(limiter),
      delay_timer_(loop),
      limit_sweep_timer_(loop),
      commands_(cmd::CommandTable::builtin()),
      auth_(cfg.client),
      deny_(cfg.client.deny_commands.begin(), cfg.client.deny_commands.end()),
      idle_timer_(loop),
      drain_timer_(loop) {
  index_denied_commands();
  started_ms_ = loop.now_ms();
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
  delay_timer_.stop();
  limit_sweep_timer_.stop();
  for (auto* s : snapshot()) s->close();
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
  limit_sweep_timer_.start(1000, 1000, [this] {
    if (limiter_.active()) limiter_.sweep(uv_hrtime());
  });
  limit_sweep_timer_.unref();
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
  sessions_.emplace(session->id(), session);
  session->start();
}

void Server::on_session_closed(ClientSession* s) {
  sessions_.erase(s->id());
  if (draining_) check_drained();
}

void Server::sweep_idle() {
  uint64_t now = loop_.now_ms();
  uint64_t limit = static_cast<uint64_t>(cfg_.client.idle_timeout_s) * 1000;
  std::vector<ClientSession*> idle;
  for (auto& [id, s] : sessions_) {
    if (s->idle() && now - s->last_activity_ms() >= limit) idle.push_back(s);
  }
  for (auto* s : idle) s->close();
}

void Server::drain(uint64_t deadline_ms, std::function<void()> done) {
  draining_ = true;
  drained_ = std::move(done);
  for (auto& l : listeners_) l->close();
  idle_timer_.stop();
  for (auto* s : snapshot()) s->drain();
  drain_timer_.start(deadline_ms, 0, [this] {
    if (!sessions_.empty()) obs::warn("drain deadline passed; closing {} remaining client(s)", sessions_.size());
    // Replies still awaited get an error in their place; a client that does not read them
    // within another second is closed anyway.
    for (auto* s : snapshot()) s->fail_pending(errors::kDrainTimeout);
    drain_timer_.start(1000, 0, [this] {
      for (auto* s : snapshot()) s->close();
      check_drained();
    });
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

std::vector<ClientSession*> Server::snapshot() const {
  std::vector<ClientSession*> out;
  out.reserve(sessions_.size());
  for (const auto& [id, s] : sessions_) out.push_back(s);
  std::sort(out.begin(), out.end(), [](const ClientSession* a, const ClientSession* b) { return a->id() < b->id(); });
  return out;
}

void Server::set_deny_commands(const std::vector<std::string>& names) {
  deny_ = std::unordered_set<std::string>(names.begin(), names.end());
  index_denied_commands();
}

void Server::index_denied_commands() {
  // Table commands are marked once here (a container denies all its subcommands), so the
  // check per request is an index; names not in the table (modules) stay in deny_.
  denied_entries_.assign(commands_.size(), false);
  const auto& all = commands_.commands();
  for (size_t i = 0; i < all.size(); ++i) {
    const std::string& name = all[i].name;
    size_t bar = name.find('|');
    denied_entries_[i] = deny_.count(name) > 0 || (bar != std::string::npos && deny_.count(name.substr(0, bar)) > 0);
  }
}

bool Server::denied(const cmd::Decision& d, std::span<const std::string_view> args) const {
  if (deny_.empty()) return false;
  if (d.info) return denied_entries_[static_cast<size_t>(d.info - commands_.commands().data())];
  std::string name;
  for (char c : args[0].substr(0, 64)) name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (deny_.count(name)) return true;
  size_t bar = name.find('|');
  return bar != std::string::npos && deny_.count(name.substr(0, bar)) > 0;
}

ClientSession* Server::find_session(uint64_t id) const {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

namespace {

// CLIENT LIST / KILL TYPE: respite's clients are normal or pubsub, never master or replica.
bool type_matches(const ClientSession& s, std::string_view type, bool& known) {
  known = true;
  if (cmd::iequals(type, "normal")) return !s.subscribed();
  if (cmd::iequals(type, "pubsub")) return s.subscribed();
  if (cmd::iequals(type, "master") || cmd::iequals(type, "replica") || cmd::iequals(type, "slave")) return false;
  known = false;
  return false;
}

}  // namespace

bool Server::client_list(std::span<const std::string_view> args, std::string& out) const {
  std::string_view type;
  std::vector<uint64_t> ids;
  size_t i = 2;
  if (args.size() == 4 && cmd::iequals(args[2], "type")) {
    type = args[3];
    i = 4;
  } else if (args.size() >= 4 && cmd::iequals(args[2], "id")) {
    for (size_t j = 3; j < args.size(); ++j) {
      uint64_t id = 0;
      if (!core::parse_integer(args[j], id) || id == 0) {
        out = "-ERR Invalid client ID\r\n";
        return false;
      }
      ids.push_back(id);
    }
    i = args.size();
  }
  if (i != args.size()) {
    out = std::string(errors::kSyntax);
    return false;
  }
  out.clear();
  for (auto* s : snapshot()) {
    if (!type.empty()) {
      bool known = true;
      bool match = type_matches(*s, type, known);
      if (!known) {
        out = "-ERR Unknown client type '" + std::string(type.substr(0, 128)) + "'\r\n";
        return false;
      }
      if (!match) continue;
    }
    if (!ids.empty() && std::find(ids.begin(), ids.end(), s->id()) == ids.end()) continue;
    s->describe(out);
    out.push_back('\n');
  }
  return true;
}

std::string Server::client_kill(ClientSession* self, std::span<const std::string_view> args, bool& kill_self) {
  kill_self = false;
  auto kill = [&](ClientSession* s) {
    if (s == self) {
      kill_self = true;
    } else {
      s->close();
    }
  };
  if (args.size() == 3) {
    // Old form: CLIENT KILL addr:port.
    for (auto* s : snapshot()) {
      if (s->peer() == args[2]) {
        kill(s);
        return std::string(errors::kOk);
      }
    }
    return std::string(errors::kNoSuchClient);
  }
  if (args.size() % 2 != 0) return std::string(errors::kSyntax);
  uint64_t id = 0;
  std::string_view type, addr, laddr, user;
  bool skipme = true;
  for (size_t i = 2; i + 1 < args.size(); i += 2) {
    std::string_view opt = args[i], val = args[i + 1];
    if (cmd::iequals(opt, "id")) {
      if (!core::parse_integer(val, id) || id == 0) return "-ERR client-id should be greater than 0\r\n";
    } else if (cmd::iequals(opt, "type")) {
      type = val;
      bool known = true;
      type_matches(*self, type, known);
      if (!known) return "-ERR Unknown client type '" + std::string(val.substr(0, 128)) + "'\r\n";
    } else if (cmd::iequals(opt, "addr")) {
      addr = val;
    } else if (cmd::iequals(opt, "laddr")) {
      laddr = val;
    } else if (cmd::iequals(opt, "user")) {
      user = val;
      if (!auth_.user_exists(user)) return "-ERR No such user '" + std::string(val.substr(0, 128)) + "'\r\n";
    } else if (cmd::iequals(opt, "skipme")) {
      if (cmd::iequals(val, "yes")) {
        skipme = true;
      } else if (cmd::iequals(val, "no")) {
        skipme = false;
      } else {
        return std::string(errors::kSyntax);
      }
    } else {
      return std::string(errors::kSyntax);
    }
  }
  int64_t killed = 0;
  for (auto* s : snapshot()) {
    if (id != 0 && s->id() != id) continue;
    bool known = true;
    if (!type.empty() && !type_matches(*s, type, known)) continue;
    if (!addr.empty() && s->peer() != addr) continue;
    if (!laddr.empty() && s->local_address() != laddr) continue;
    if (!user.empty() && s->user() != user) continue;
    if (skipme && s == self) continue;
    kill(s);
    ++killed;
  }
  return ":" + std::to_string(killed) + "\r\n";
}

}  // namespace respite::proxy

namespace respite::proxy {

// ---- requests held by delay rate limits ------------------------------------------------

void Server::hold(ClientSession* s, uint64_t wait_ns) {
  uint64_t now = uv_hrtime();
  bool earlier = delayed_.empty() || now + wait_ns < delayed_.next_due();
  delayed_.push(now + wait_ns, s->id());
  if (earlier) {
    delay_timer_.start((wait_ns + 999'999) / 1'000'000, 0, [this] { release_held(); });
  }
}

void Server::release_held() {
  // Timers have millisecond resolution: what is due within the next half millisecond goes now
  // (its tokens were taken when it was held, so going a little early takes nothing extra).
  uint64_t now = uv_hrtime();
  delayed_.pop_due(now + 500'000, [this](uint64_t id) {
    if (ClientSession* s = find_session(id)) s->release_hold();
  });
  if (!delayed_.empty()) {
    uint64_t due = delayed_.next_due();
    delay_timer_.start(due > now ? (due - now + 999'999) / 1'000'000 : 0, 0, [this] { release_held(); });
  }
}

}  // namespace respite::proxy

namespace respite::proxy {

// ---- admin -----------------------------------------------------------------------------

bool Server::reload(std::string& error) {
  if (!reload_) {
    error = "reloading is not available";
    ++stats_.reload_failures;
    return false;
  }
  std::vector<std::string> restart;
  bool ok = reload_(error, restart);
  ++(ok ? stats_.reloads : stats_.reload_failures);
  if (ok) restart_pending_ = std::move(restart);
  return ok;
}

bool Server::fallback_active() const { return fallback_ && fallback_->active(); }

uint64_t Server::uptime_ms() const { return loop_.now_ms() - started_ms_; }

bool Server::is_admin(std::string_view user) const {
  const auto& admins = running_config().admin.users;  // reloads apply live
  return std::find(admins.begin(), admins.end(), user) != admins.end();
}

std::string Server::stats_text() const {
  std::string out = "# Server\r\n";
  auto line = [&](std::string_view key, uint64_t value) {
    out.append(key).append(":").append(std::to_string(value)).append("\r\n");
  };
  line("uptime_s", (loop_.now_ms() - started_ms_) / 1000);
  line("clients", sessions_.size());
  line("draining", draining_ ? 1 : 0);
  line("accepted", stats_.accepted);
  line("rejected", stats_.rejected);
  line("commands", stats_.commands);
  line("forwarded", stats_.forwarded);
  line("local_errors", stats_.local_errors);
  line("protocol_errors", stats_.protocol_errors);
  line("limit_closes", stats_.limit_closes);
  line("denied", stats_.denied);
  line("auth_failures", stats_.auth_failures);
  line("pinned_refused", stats_.pinned_refused);
  line("rate_limited", stats_.rate_limited);
  line("config_reloads", stats_.reloads);
  line("config_reload_failures", stats_.reload_failures);
  line("config_restart_pending", restart_pending_.size());
  // Quantiles are estimates from the histogram buckets (what /metrics exports).
  auto latency = [&](std::string_view name, const obs::Histogram& h) {
    line(std::string(name) + "_count", h.count());
    line(std::string(name) + "_p50_us", h.quantile_ns(0.5) / 1000);
    line(std::string(name) + "_p99_us", h.quantile_ns(0.99) / 1000);
  };
  latency("request_latency", stats_.request_latency);
  out += "\r\n# Upstream\r\n";
  line("pool_size", pool_.size());
  line("pool_ready", pool_.ready_count());
  line("inflight", pool_.inflight());
  line("pinned", pool_.pinned_count());
  line("pinned_idle", pool_.pinned_idle_count());
  latency("rtt", pool_.rtt());
  out += "\r\n" + cache_.stats_text() + "\r\n" + limiter_.stats_text(delayed_.size());
  if (fallback_) out += "\r\n" + fallback_->stats_text();
  return out;
}

}  // namespace respite::proxy
