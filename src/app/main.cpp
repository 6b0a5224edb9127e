// respite's entry point: reads the command line and configuration, wires the modules
// together (loop, upstream pool, near-cache, rate limiter, server) and runs until
// SIGTERM/SIGINT, then drains. SIGHUP reloads the configuration (Reloader).
#include <uv.h>

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "admin/endpoints.h"
#include "admin/http_server.h"
#include "cache/near_cache.h"
#include "fallback/fallback.h"
#include "config/cli.h"
#include "config/config_loader.h"
#include "config/upstream_url.h"
#include "core/errors.h"
#include "net/loop.h"
#include "obs/log.h"
#include "proxy/server.h"
#include "ratelimit/limiter.h"
#include "upstream/upstream_pool.h"

#ifndef RESPITE_VERSION
#define RESPITE_VERSION "dev"
#endif

namespace {

using namespace respite;

// Raises the open-file limit so max_clients connections (plus upstream connections,
// listeners and a margin) fit, as far as the hard limit allows.
void raise_fd_limit(const config::Config& cfg) {
  rlim_t want = static_cast<rlim_t>(cfg.server.max_clients + cfg.upstream.pool_size + cfg.upstream.max_pinned + 64);
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want) return;
  rlim_t target = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want) ? want : rl.rlim_max;
  rlimit next{target, rl.rlim_max};
  if (setrlimit(RLIMIT_NOFILE, &next) != 0) target = rl.rlim_cur;
  if (target < want)
    obs::warn("open-file limit is {} (hard limit {}); server.max_clients={} needs about {}",
              static_cast<unsigned long long>(target), static_cast<unsigned long long>(rl.rlim_max),
              cfg.server.max_clients, static_cast<unsigned long long>(want));
}

// SIGHUP: reads the configuration again, the way it was read at start (same file, flags
// and environment). What can change live is applied (rate limits, log level, denied
// commands, admin users, cache rules and sizes: config::reloads_live says which); other
// changes are reported as needing a restart. An invalid configuration changes nothing.
class Reloader {
 public:
  Reloader(const config::CliOptions& cli, const config::Config& running, ratelimit::Limiter& limiter,
           proxy::Server& server, cache::NearCache& cache)
      : cli_(cli), running_(running), limiter_(limiter), server_(server), cache_(cache) {}

  // False with `error` (also logged) when the new configuration is invalid. True with
  // `restart` listing the changed keys that only a restart applies (empty: none).
  bool reload(std::string& error, std::vector<std::string>& restart) {
    config::Config next;
    if (!config::load_config(cli_, config::Environment{}, next, error) ||
        !ratelimit::Limiter::check(next.ratelimit, cmd::CommandTable::builtin(), error)) {
      obs::error("configuration reload failed: {}; keeping the running configuration", error);
      return false;
    }
    restart.clear();
    bool cache_rules = false;
    for (const std::string& key : config::changed_config_keys(running_, next)) {
      if (!config::reloads_live(key)) restart.push_back(key);
      if (key == "cache.rules" || key == "cache.max_ttl_ms") cache_rules = true;
    }
    if (!limiter_.configure(next.ratelimit, uv_hrtime(), error)) {  // checked above: not expected
      obs::error("configuration reload failed: {}; keeping the running configuration", error);
      return false;
    }
    if (next.log.level != running_.log.level) obs::set_log_level(next.log.level);
    running_.ratelimit = next.ratelimit;
    running_.log = next.log;
    if (next.client.deny_commands != running_.client.deny_commands) {
      server_.set_deny_commands(next.client.deny_commands);
      running_.client.deny_commands = next.client.deny_commands;
    }
    running_.admin.users = next.admin.users;  // Server::is_admin reads the running configuration
    cache_.reconfigure(next.cache, cache_rules);
    running_.cache.rules = next.cache.rules;
    running_.cache.max_ttl_ms = next.cache.max_ttl_ms;
    running_.cache.memory_bytes = next.cache.memory_bytes;
    running_.cache.max_value_bytes = next.cache.max_value_bytes;
    if (!restart.empty()) {
      std::string keys;
      for (const auto& k : restart) keys += (keys.empty() ? "" : ", ") + k;
      obs::warn("configuration reload: {} changed; restart respite to apply", keys);
    }
    obs::info("configuration reloaded from {} (rate-limit rules: {}, generation {})",
              cli_.config_path.empty() ? std::string("defaults and flags") : cli_.config_path,
              next.ratelimit.rules.size(), limiter_.generation());
    return true;
  }

  const config::Config& running() const { return running_; }

 private:
  const config::CliOptions& cli_;
  config::Config running_;  // the settings in effect (live ones updated by reloads)
  ratelimit::Limiter& limiter_;
  proxy::Server& server_;
  cache::NearCache& cache_;
};

int run(const config::CliOptions& cli, const config::Config& cfg) {
  raise_fd_limit(cfg);
  uv_signal_t sigterm, sigint, sighup;  // declared before the loop: they must outlive it
  net::Loop loop;
  upstream::UpstreamPool pool(loop, cfg.upstream);
  cache::NearCache cache(loop, cfg, cmd::CommandTable::builtin(), pool);
  ratelimit::Limiter limiter(cmd::CommandTable::builtin());
  if (std::string error; !limiter.configure(cfg.ratelimit, uv_hrtime(), error)) {
    obs::error("invalid configuration: {}", error);
    return 2;
  }
  proxy::Server server(loop, cfg, pool, cache, limiter);
  // The fallback watches the pool's circuit breaker; it opens its journal (recovering one
  // left by an earlier run) before anything else happens.
  fallback::Fallback fallback(loop, cfg.fallback, pool, cfg.upstream.address.db);
  if (std::string error; !fallback.start(error)) {
    obs::error("{}", error);
    return 1;
  }
  server.set_fallback(&fallback);
  if (fallback.mode() != fallback::Mode::Off) {
    cache.keep_entries_when_down([&fallback] { return fallback.active(); });
    fallback.set_on_recovered([&cache] { cache.resume(); });
  }
  Reloader reloader(cli, cfg, limiter, server, cache);
  server.set_reload_handler(
      [&reloader](std::string& error, std::vector<std::string>& restart) { return reloader.reload(error, restart); },
                            &reloader.running());

  // The admin listener starts first: /livez answers at once, /readyz once Redis is reachable.
  admin::Endpoints endpoints(server, pool, cache, limiter, RESPITE_VERSION);
  admin::HttpServer admin_http(loop, [&endpoints](const admin::HttpRequest& r) { return endpoints.handle(r); });
  if (!cfg.admin.listen.empty()) {
    std::string error;
    if (!admin_http.start(cfg.admin.listen, error)) {
      obs::error("cannot open the admin listener (admin.listen {}): {}", cfg.admin.listen, error);
      return 1;
    }
    obs::info("admin listening on http {}", admin_http.bound());
  }

  // Listen once the pool's first connection attempts are over (connected or failed,
  // within upstream.connect_timeout_ms), so early clients of a healthy Redis are served.
  obs::info("respite {} forwarding to {} with {} pooled connection(s)", RESPITE_VERSION,
            config::redact_url(cfg.upstream.address), cfg.upstream.pool_size);
  int exit_code = 0;
  cache.start();  // before the pool, so tracking starts with each connection
  pool.start([&] {
    std::string error;
    if (!server.start(error)) {
      obs::error("{}", error);
      exit_code = 1;
      loop.stop();
    }
  });

  // Signals: first SIGTERM/SIGINT drains; a second one exits at once.
  struct SignalCtx {
    proxy::Server* server;
    admin::HttpServer* admin;
    upstream::UpstreamPool* pool;
    cache::NearCache* cache;
    fallback::Fallback* fallback;
    net::Loop* loop;
    uv_signal_t* handles[2];
    bool draining = false;
  } ctx{&server, &admin_http, &pool, &cache, &fallback, &loop, {&sigterm, &sigint}};
  auto on_signal = [](uv_signal_t* h, int signum) {
    auto* c = static_cast<SignalCtx*>(h->data);
    c->loop->stamp();
    if (c->draining) {
      obs::warn("second signal {}: exiting without waiting", signum);
      c->loop->stop();
      return;
    }
    c->draining = true;
    obs::info("signal {}: draining ({} client(s), {} request(s) in flight)", signum, c->server->client_count(),
              c->pool->inflight());
    c->server->drain(static_cast<uint64_t>(c->server->config().server.drain_timeout_ms), [c] {
      c->fallback->shutdown();  // syncs the journal
      c->cache->shutdown();
      c->pool->shutdown(errors::kShuttingDown);
      c->admin->stop();  // /readyz said 503 all through the drain
      obs::info("drained; exiting");
      c->loop->stop();
    });
  };
  for (uv_signal_t* s : {&sigterm, &sigint}) {
    uv_signal_init(loop.raw(), s);
    s->data = &ctx;
  }
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_init(loop.raw(), &sighup);
  sighup.data = &server;
  uv_signal_start(&sighup, [](uv_signal_t* h, int) {
    obs::info("SIGHUP: reloading the configuration");
    std::string error;
    static_cast<proxy::Server*>(h->data)->reload(error);  // logs either way
  }, SIGHUP);
  uv_unref(reinterpret_cast<uv_handle_t*>(&sighup));

  loop.run();
  // Whatever is still open (after a second signal) is closed, and the loop runs once
  // more so every close callback completes while the objects they refer to exist.
  for (uv_signal_t* s : {&sigterm, &sigint, &sighup}) {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(s))) uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
  }
  server.close_all();
  admin_http.stop();
  fallback.shutdown();
  cache.shutdown();
  pool.shutdown(errors::kShuttingDown);
  loop.run();
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  config::CliOptions cli;
  std::string error;
  if (!config::parse_cli(argc, argv, cli, error)) {
    std::fprintf(stderr, "respite: %s\n(see respite --help)\n", error.c_str());
    return 2;
  }
  if (cli.help) {
    std::fputs(config::usage_text().c_str(), stdout);
    return 0;
  }
  if (cli.print_defaults) {
    std::fputs(config::default_config_report().c_str(), stdout);
    return 0;
  }
  if (cli.version) {
    std::printf("respite %s\n", RESPITE_VERSION);
    return 0;
  }
  config::Config cfg;
  if (!config::load_config(cli, config::Environment{}, cfg, error)) {
    std::fprintf(stderr, "respite: invalid configuration: %s\n", error.c_str());
    return 2;
  }
  if (!ratelimit::Limiter::check(cfg.ratelimit, cmd::CommandTable::builtin(), error)) {
    std::fprintf(stderr, "respite: invalid configuration: %s\n", error.c_str());
    return 2;
  }
  if (cli.check_config) {
    std::fputs(config::dump_config(cfg).c_str(), stdout);
    std::fprintf(stderr, "respite: configuration OK\n");
    return 0;
  }
  if (!obs::init_logging(cfg.log.level)) {
    std::fprintf(stderr, "respite: invalid log level '%s'\n", cfg.log.level.c_str());
    return 2;
  }
  return run(cli, cfg);
}
