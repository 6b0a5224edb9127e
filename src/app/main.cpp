// respite's entry point: reads the command line and configuration, wires the modules
// together (loop, upstream pool, server) and runs until SIGTERM/SIGINT, then drains.
#include <uv.h>

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "cache/near_cache.h"
#include "config/cli.h"
#include "config/config_loader.h"
#include "config/upstream_url.h"
#include "core/errors.h"
#include "net/loop.h"
#include "obs/log.h"
#include "proxy/server.h"
#include "upstream/upstream_pool.h"

#ifndef RESPITE_VERSION
#define RESPITE_VERSION "dev"
#endif

namespace {

using namespace respite;

constexpr uint64_t kDrainDeadlineMs = 5000;  // longest wait for in-flight replies on shutdown

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

int run(const config::Config& cfg) {
  raise_fd_limit(cfg);
  uv_signal_t sigterm, sigint, sighup;  // declared before the loop: they must outlive it
  net::Loop loop;
  upstream::UpstreamPool pool(loop, cfg.upstream);
  cache::NearCache cache(loop, cfg, cmd::CommandTable::builtin(), pool);
  proxy::Server server(loop, cfg, pool, cache);

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
    upstream::UpstreamPool* pool;
    cache::NearCache* cache;
    net::Loop* loop;
    uv_signal_t* handles[2];
    bool draining = false;
  } ctx{&server, &pool, &cache, &loop, {&sigterm, &sigint}};
  auto on_signal = [](uv_signal_t* h, int signum) {
    auto* c = static_cast<SignalCtx*>(h->data);
    if (c->draining) {
      obs::warn("second signal {}: exiting without waiting", signum);
      c->loop->stop();
      return;
    }
    c->draining = true;
    obs::info("signal {}: draining ({} client(s), {} request(s) in flight)", signum, c->server->client_count(),
              c->pool->inflight());
    c->server->drain(kDrainDeadlineMs, [c] {
      c->cache->shutdown();
      c->pool->shutdown(errors::kShuttingDown);
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
  // SIGHUP would end the process by default; until live reload exists it is logged and ignored.
  uv_signal_init(loop.raw(), &sighup);
  uv_signal_start(&sighup, [](uv_signal_t*, int) {
    obs::warn("SIGHUP: configuration reload is not supported by this version; ignoring (restart to apply changes)");
  }, SIGHUP);
  uv_unref(reinterpret_cast<uv_handle_t*>(&sighup));

  loop.run();
  // Whatever is still open (after a second signal) is closed, and the loop runs once
  // more so every close callback completes while the objects they refer to exist.
  for (uv_signal_t* s : {&sigterm, &sigint, &sighup}) {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(s))) uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
  }
  server.close_all();
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
  if (cli.version) {
    std::printf("respite %s\n", RESPITE_VERSION);
    return 0;
  }
  config::Config cfg;
  if (!config::load_config(cli, config::Environment{}, cfg, error)) {
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
  return run(cfg);
}
