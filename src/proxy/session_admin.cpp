// RESPITE ...: respite's own admin commands, answered here and never forwarded. With client
// authentication on, only the users named in admin.users may run them.
#include <uv.h>

#include "auth/authenticator.h"
#include "cache/near_cache.h"
#include "config/config_loader.h"
#include "core/errors.h"
#include "core/parse.h"
#include "proxy/client_session.h"
#include "proxy/server.h"
#include "resp/resp_writer.h"

namespace respite::proxy {

bool ClientSession::handle_respite(Args args) {
  auto is = [&](size_t i, std::string_view word) { return args.size() > i && cmd::iequals(args[i], word); };
  if (args.size() < 2) {
    reply_error(errors::wrong_arity("respite"));
    return true;
  }
  if (server_.auth().required() && !server_.is_admin(user_)) {
    reply_error("-NOPERM user '" + user_ + "' may not run RESPITE admin commands (see admin.users)\r\n");
    return true;
  }
  if (is(1, "cache")) return handle_respite_cache(args);
  if (is(1, "ratelimit")) return handle_respite_ratelimit(args);
  if (args.size() == 2 && is(1, "stats")) {
    reply_local(resp::bulk_string(server_.stats_text()));
  } else if (args.size() == 2 && is(1, "config")) {
    reply_local(resp::bulk_string(config::dump_config(server_.running_config())));
  } else if (args.size() == 2 && is(1, "reload")) {
    std::string error;
    if (server_.reload(error)) {
      // +OK, or +OK with the changed settings only a restart applies.
      std::string keys;
      for (const auto& k : server_.restart_pending()) keys += (keys.empty() ? "" : ", ") + k;
      reply_local(keys.empty() ? std::string(errors::kOk) : "+OK (restart respite to apply: " + keys + ")\r\n");
    } else {
      reply_error("-ERR configuration reload failed: " + error + "\r\n");
    }
  } else {
    reply_error("-ERR unknown or malformed RESPITE command '" + std::string(args[1].substr(0, 64)) +
                "'. Try RESPITE STATS | CONFIG | RELOAD | CACHE ... | RATELIMIT ...\r\n");
  }
  return true;
}

// RESPITE CACHE STATS | FLUSH [pattern] | FENCE | WARMUP | BYPASS ON|OFF
bool ClientSession::handle_respite_cache(Args args) {
  cache::NearCache& nc = server_.cache();
  auto is = [&](size_t i, std::string_view word) { return args.size() > i && cmd::iequals(args[i], word); };
  if (args.size() == 3 && is(2, "stats")) {
    reply_local(resp::bulk_string(nc.stats_text()));
  } else if (args.size() == 3 && is(2, "flush")) {
    nc.flush("RESPITE CACHE FLUSH");
    reply_local(errors::kOk);
  } else if (args.size() == 4 && is(2, "flush")) {
    // Only the entries of matching keys (and every pending fill); the reply counts the entries.
    reply_local(":" + std::to_string(nc.flush_matching(args[3])) + "\r\n");
  } else if (is(2, "flush")) {
    reply_error(errors::wrong_arity("respite cache flush"));
  } else if (args.size() == 3 && is(2, "fence")) {
    // Answered when a PING sent now on the invalidation connection comes back.
    upstream::UpstreamConn* link = nc.link();
    if (!link) {
      reply_error("-ERR near-cache tracking is not active (cache disabled, or the invalidation connection is down)\r\n");
      return true;
    }
    if (!may_send_on(link)) return false;
    const std::string_view ping[] = {"PING"};
    uint64_t ticket = link->send_args(this, next_seq_, ping, 1, upstream::UpstreamConn::PushKind::Pubsub);
    track_sent(link, ticket, 1, errors::kOk);
  } else if (args.size() == 3 && is(2, "warmup")) {
    if (nc.warmup()) {
      reply_local(errors::kOk);
    } else {
      reply_error("-ERR no warm-up started (the cache is disabled, cache.warmup_patterns is empty, or one is running)\r\n");
    }
  } else if (args.size() == 4 && is(2, "bypass") && (is(3, "on") || is(3, "off"))) {
    cache_bypass_ = is(3, "on");
    reply_local(errors::kOk);
  } else {
    reply_error("-ERR unknown or malformed RESPITE CACHE command. Try RESPITE CACHE STATS|FLUSH [pattern]|FENCE|WARMUP|BYPASS ON|OFF.\r\n");
  }
  return true;
}

// RESPITE RATELIMIT STATS | BUCKETS [count] | RESET
bool ClientSession::handle_respite_ratelimit(Args args) {
  ratelimit::Limiter& limiter = server_.limiter();
  auto is = [&](size_t i, std::string_view word) { return args.size() > i && cmd::iequals(args[i], word); };
  if (args.size() == 3 && is(2, "stats")) {
    reply_local(resp::bulk_string(limiter.stats_text(server_.held())));
  } else if ((args.size() == 3 || args.size() == 4) && is(2, "buckets")) {
    int64_t count = 100;
    if (args.size() == 4 && (!core::parse_integer(args[3], count) || count < 0)) {
      reply_error("-ERR RESPITE RATELIMIT BUCKETS count must be a non-negative integer\r\n");
      return true;
    }
    reply_local(resp::bulk_string(limiter.buckets_text(uv_hrtime(), static_cast<size_t>(count))));
  } else if (args.size() == 3 && is(2, "reset")) {
    limiter.reset();
    reply_local(errors::kOk);
  } else {
    reply_error("-ERR unknown or malformed RESPITE RATELIMIT command. Try RESPITE RATELIMIT STATS|BUCKETS [count]|RESET.\r\n");
  }
  return true;
}

}  // namespace respite::proxy
