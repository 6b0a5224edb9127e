#include "config/config_validate.h"

#include <sys/un.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iterator>
#include <map>

#include "config/config_values.h"

namespace respite::config {
namespace {

constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
constexpr size_t kMaxPoolSize = 64;
constexpr size_t kMaxUnixPath = sizeof(sockaddr_un{}.sun_path) - 1;

bool is_control(char ch) {
  auto u = static_cast<unsigned char>(ch);
  return u < 0x20 || u == 0x7f;
}

// `s` quoted for an error message, control characters shown as '?'.
std::string quoted(std::string_view s) {
  std::string out = "'";
  for (char ch : s) out += is_control(ch) ? '?' : ch;
  out += '\'';
  return out;
}

// Brings one client.deny_commands entry to its stored form: lower case, "name" or
// "container|subcommand" ("CONFIG SET" with one space becomes "config|set").
bool normalise_denied_command(std::string_view entry, std::string& out, std::string& why) {
  out.clear();
  for (char ch : entry) out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (out.empty()) {
    why = "is empty";
    return false;
  }
  const auto space = out.find(' ');
  const bool one_inner_space = space != std::string::npos && space != 0 && space + 1 != out.size() &&
                               out.find(' ', space + 1) == std::string::npos;
  if (one_inner_space && out.find('|') == std::string::npos) {
    out[space] = '|';
  }
  if (std::any_of(out.begin(), out.end(), [](char ch) { return ch == ' ' || is_control(ch); })) {
    why = "must not contain other whitespace (write a command as \"keys\", a subcommand as \"config|set\" or "
          "\"CONFIG SET\")";
    return false;
  }
  if (std::count(out.begin(), out.end(), '|') > 1) {
    why = "has more than one '|' (write a command as \"keys\" or a subcommand as \"config|set\")";
    return false;
  }
  if (out.front() == '|' || out.back() == '|') {
    why = "names an empty command or subcommand";
    return false;
  }
  return true;
}

bool validate_users(const std::vector<ClientUser>& users, std::string& why) {
  std::map<std::string_view, size_t> seen;  // name -> 1-based entry
  for (size_t i = 0; i < users.size(); ++i) {
    const ClientUser& u = users[i];
    const std::string entry = "entry " + std::to_string(i + 1);
    if (u.name.empty()) {
      why = entry + ": the user name is empty";
      return false;
    }
    if (std::any_of(u.name.begin(), u.name.end(), [](char ch) { return ch == ' ' || is_control(ch); })) {
      why = entry + ": the user name " + quoted(u.name) + " must not contain spaces or control characters";
      return false;
    }
    if (auto [it, inserted] = seen.emplace(u.name, i + 1); !inserted) {
      why = entry + ": user '" + u.name + "' is already defined by entry " + std::to_string(it->second);
      return false;
    }
    if (u.password.empty()) {
      why = entry + " (user '" + u.name + "'): the password is empty";
      return false;
    }
  }
  return true;
}

bool valid_rule_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '_' || ch == '-' || ch == '.';
  });
}

bool valid_class_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](unsigned char ch) {
    return std::islower(ch) || std::isdigit(ch) || ch == '_' || ch == '-';
  });
}

// [ratelimit]: shapes and ranges. Whether command names and classes exist is checked by
// the rate limiter, which knows the command table (ratelimit::compile). Fills each rule's
// default burst and lower-cases scope and action.
bool validate_ratelimit(RateLimitConfig& rl, std::string& key, std::string& why) {
  constexpr size_t kMaxRules = 64;
  constexpr double kMaxRate = 1e9;
  auto is_blank = [](const std::string& s) { return s.empty() || std::any_of(s.begin(), s.end(), is_control); };
  key = "ratelimit.max_delayed";
  if (rl.max_delayed < 1) return (why = "must be at least 1", false);
  key = "ratelimit.exempt";
  for (size_t i = 0; i < rl.exempt.size(); ++i) {
    if (is_blank(rl.exempt[i])) return (why = "entry " + std::to_string(i + 1) + " is empty or has control characters", false);
  }
  key = "ratelimit.classes";
  if (rl.classes.size() > kMaxRules) return (why = "more than " + std::to_string(kMaxRules) + " classes", false);
  std::map<std::string_view, size_t> seen;
  for (size_t i = 0; i < rl.classes.size(); ++i) {
    const RateLimitClass& c = rl.classes[i];
    const std::string entry = "entry " + std::to_string(i + 1);
    if (!valid_class_name(c.name))
      return (why = entry + ": class name " + quoted(c.name) + " must be 1 to 64 of a-z, 0-9, '_' and '-'", false);
    if (auto [it, inserted] = seen.emplace(c.name, i + 1); !inserted)
      return (why = entry + ": class '" + c.name + "' is already defined by entry " + std::to_string(it->second), false);
    if (c.commands.empty()) return (why = entry + " (class '" + c.name + "'): no commands", false);
  }
  key = "ratelimit.rules";
  if (rl.rules.size() > kMaxRules) return (why = "more than " + std::to_string(kMaxRules) + " rules", false);
  seen.clear();
  for (size_t i = 0; i < rl.rules.size(); ++i) {
    RateLimitRule& r = rl.rules[i];
    std::string entry = "entry " + std::to_string(i + 1);
    if (!valid_rule_name(r.name))
      return (why = entry + ": rule name " + quoted(r.name) + " must be 1 to 64 of A-Z, a-z, 0-9, '_', '-' and '.'", false);
    if (auto [it, inserted] = seen.emplace(r.name, i + 1); !inserted)
      return (why = entry + ": rule '" + r.name + "' is already defined by entry " + std::to_string(it->second), false);
    entry += " (rule '" + r.name + "')";
    for (std::string* word : {&r.scope, &r.action}) {
      std::transform(word->begin(), word->end(), word->begin(), [](unsigned char ch) { return std::tolower(ch); });
    }
    if (r.scope != "client" && r.scope != "global")
      return (why = entry + ": scope " + quoted(r.scope) + " is not client or global", false);
    if (r.action != "reject" && r.action != "delay")
      return (why = entry + ": action " + quoted(r.action) + " is not reject or delay", false);
    if (!(r.rate > 0) || r.rate > kMaxRate)
      return (why = entry + ": rate must be more than 0 and at most 1e9 requests per second", false);
    if (r.burst == 0) r.burst = static_cast<uint32_t>(std::min(std::ceil(r.rate), kMaxRate));
    if (r.action == "delay" && (r.max_wait_ms < 1 || r.max_wait_ms > 60000))
      return (why = entry + ": max_wait_ms must be between 1 and 60000 for a delay rule", false);
    if (r.clients.empty()) return (why = entry + ": clients is empty (use [\"*\"] for every client)", false);
    if (r.commands.empty()) return (why = entry + ": commands is empty (use [\"@all\"] for every command)", false);
    for (const auto* list : {&r.clients, &r.commands}) {
      for (const std::string& w : *list) {
        if (is_blank(w)) return (why = entry + ": an empty entry in " + (list == &r.clients ? "clients" : "commands"), false);
      }
    }
  }
  return true;
}

}  // namespace

bool validate_config(Config& c, const std::function<std::string(std::string_view)>& about, std::string& error) {
  auto fail = [&](std::string_view key, const std::string& msg) {
    error = about(key) + ": " + msg;
    return false;
  };

  // [server]
  if (!c.server.listen.empty()) {
    ListenAddress addr;
    std::string why;
    if (!parse_listen_address(c.server.listen, addr, why)) return fail("server.listen", why);
  }
  if (c.server.unix_socket.size() > kMaxUnixPath) {
    return fail("server.unix_socket", "path is too long (" + std::to_string(c.server.unix_socket.size()) +
                                          " bytes; the limit is " + std::to_string(kMaxUnixPath) + ")");
  }
  if (c.server.listen.empty() && c.server.unix_socket.empty()) {
    error = "config keys 'server.listen' and 'server.unix_socket' are both empty: respite would accept no "
            "clients (set at least one)";
    return false;
  }
  if (c.server.unix_socket_mode < 0 || c.server.unix_socket_mode > 0777) {
    return fail("server.unix_socket_mode", "must be a permission mode between 0000 and 0777");
  }
  if (c.server.tcp_backlog < 1) return fail("server.tcp_backlog", "must be at least 1");
  if (c.server.max_clients < 1) return fail("server.max_clients", "must be at least 1");
  if (c.server.tcp_keepalive_s < 0) return fail("server.tcp_keepalive_s", "must be 0 (off) or more seconds");
  if (c.server.drain_timeout_ms < 0 || c.server.drain_timeout_ms > 3'600'000)
    return fail("server.drain_timeout_ms", "must be between 0 and 3600000 ms");

  // [client]
  if (c.client.max_bulk_len < 1) return fail("client.max_bulk_len", "must be at least 1 byte");
  if (c.client.max_args < 1) return fail("client.max_args", "must be at least 1");
  if (c.client.max_inline_len < 1) return fail("client.max_inline_len", "must be at least 1 byte");
  if (c.client.query_buffer_limit < 1) return fail("client.query_buffer_limit", "must be at least 1 byte");
  if (c.client.output_buffer_limit < 1) return fail("client.output_buffer_limit", "must be at least 1 byte");
  if (c.client.output_high_water < 1) return fail("client.output_high_water", "must be at least 1 byte");
  // A high-water mark above output_buffer_limit is allowed: the limit then disconnects
  // the client before reading would pause, which is what lowering only the limit means.
  if (c.client.max_pending < 1) return fail("client.max_pending", "must be at least 1");
  if (c.client.idle_timeout_s < 0) return fail("client.idle_timeout_s", "must be 0 (never) or more seconds");
  // client.password may be any text; "" means none.
  if (std::string why; !validate_users(c.client.users, why)) return fail("client.users", why);
  std::vector<std::string> denied;
  for (size_t i = 0; i < c.client.deny_commands.size(); ++i) {
    std::string command;
    std::string why;
    if (!normalise_denied_command(c.client.deny_commands[i], command, why)) {
      return fail("client.deny_commands",
                  "entry " + std::to_string(i + 1) + " " + quoted(c.client.deny_commands[i]) + " " + why);
    }
    if (command == "auth" || command == "hello" || command == "quit" || command == "reset") {
      // These end or set up a session; denying them would lock clients in or out.
      return fail("client.deny_commands", "entry " + std::to_string(i + 1) + " " + quoted(command) +
                                              " cannot be denied (AUTH, HELLO, QUIT and RESET are always allowed)");
    }
    if (std::find(denied.begin(), denied.end(), command) == denied.end()) denied.push_back(std::move(command));
  }

  // [upstream]
  if (c.upstream.pool_size < 1 || c.upstream.pool_size > kMaxPoolSize) {
    return fail("upstream.pool_size", "must be between 1 and " + std::to_string(kMaxPoolSize) + " (got " +
                                          std::to_string(c.upstream.pool_size) + ")");
  }
  if (c.upstream.connect_timeout_ms < 1) return fail("upstream.connect_timeout_ms", "must be at least 1 ms");
  if (c.upstream.command_timeout_ms < 0) {
    return fail("upstream.command_timeout_ms", "must be 0 (off) or more milliseconds");
  }
  if (c.upstream.reconnect_min_ms < 1) return fail("upstream.reconnect_min_ms", "must be at least 1 ms");
  if (c.upstream.reconnect_max_ms < c.upstream.reconnect_min_ms) {
    return fail("upstream.reconnect_max_ms", std::to_string(c.upstream.reconnect_max_ms) +
                                                 " ms must not be less than upstream.reconnect_min_ms (" +
                                                 std::to_string(c.upstream.reconnect_min_ms) + " ms)");
  }
  if (c.upstream.max_inflight < 1) return fail("upstream.max_inflight", "must be at least 1");
  if (c.upstream.max_batches_in_flight < 0)
    return fail("upstream.max_batches_in_flight", "must be 0 (no limit) or more");
  if (c.upstream.max_pinned < 1) return fail("upstream.max_pinned", "must be at least 1");
  if (c.upstream.pinned_idle > c.upstream.max_pinned) {
    return fail("upstream.pinned_idle", std::to_string(c.upstream.pinned_idle) +
                                            " must not be more than upstream.max_pinned (" +
                                            std::to_string(c.upstream.max_pinned) + ")");
  }

  // [cache]
  auto lower = [](std::string v) {
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char ch) { return std::tolower(ch); });
    return v;
  };
  std::string eviction = lower(c.cache.eviction);
  std::string tracking = lower(c.cache.tracking);
  if (eviction != "s3fifo" && eviction != "lru") {
    return fail("cache.eviction", quoted(c.cache.eviction) + " is not an eviction policy (use s3fifo or lru)");
  }
  if (tracking != "default" && tracking != "bcast") {
    return fail("cache.tracking", quoted(c.cache.tracking) + " is not a tracking mode (use default or bcast)");
  }
  if (c.cache.memory_bytes < 64 * 1024) return fail("cache.memory_bytes", "must be at least 64kb");
  if (c.cache.max_value_bytes < 1) return fail("cache.max_value_bytes", "must be at least 1 byte");
  if (c.cache.max_ttl_ms < 1) return fail("cache.max_ttl_ms", "must be at least 1 ms");
  if (c.cache.ping_interval_ms < 10) return fail("cache.ping_interval_ms", "must be at least 10 ms");
  if (c.cache.ping_timeout_ms < 10) return fail("cache.ping_timeout_ms", "must be at least 10 ms");
  for (size_t i = 0; i < c.cache.bcast_prefixes.size(); ++i) {
    const std::string& p = c.cache.bcast_prefixes[i];
    if (p.empty() || std::any_of(p.begin(), p.end(), is_control)) {
      return fail("cache.bcast_prefixes", "entry " + std::to_string(i + 1) + " is empty or has control characters");
    }
  }
  if (tracking != "bcast" && !c.cache.bcast_prefixes.empty()) {
    return fail("cache.bcast_prefixes", "is set but cache.tracking is not \"bcast\"");
  }
  for (size_t i = 0; i < c.cache.rules.size(); ++i) {
    if (c.cache.rules[i].pattern.empty()) return fail("cache.rules", "entry " + std::to_string(i + 1) + ": empty pattern");
  }
  for (const auto* list : {&c.cache.bypass_clients, &c.cache.warmup_patterns}) {
    for (size_t i = 0; i < list->size(); ++i) {
      if ((*list)[i].empty()) {
        return fail(list == &c.cache.bypass_clients ? "cache.bypass_clients" : "cache.warmup_patterns",
                    "entry " + std::to_string(i + 1) + " is empty");
      }
    }
  }
  if (c.cache.warmup_keys_per_second < 1) return fail("cache.warmup_keys_per_second", "must be at least 1");

  // [ratelimit]
  {
    std::string key, why;
    if (!validate_ratelimit(c.ratelimit, key, why)) return fail(key, why);
  }

  // [admin]
  if (!c.admin.listen.empty()) {
    ListenAddress addr;
    std::string why;
    if (!parse_listen_address(c.admin.listen, addr, why)) return fail("admin.listen", why);
  }
  for (size_t i = 0; i < c.admin.users.size(); ++i) {
    const std::string& u = c.admin.users[i];
    if (u.empty() || std::any_of(u.begin(), u.end(), [](char ch) { return ch == ' ' || is_control(ch); }))
      return fail("admin.users", "entry " + std::to_string(i + 1) + " is empty or has spaces or control characters");
  }

  // [fallback]
  {
    const FallbackConfig& f = c.fallback;
    auto one_of = [](const std::string& v, std::initializer_list<std::string_view> options) {
      return std::find(options.begin(), options.end(), v) != options.end();
    };
    if (!one_of(f.mode, {"off", "read-only", "local"}))
      return fail("fallback.mode", "'" + f.mode + "' is not a fallback mode (use off, read-only or local)");
    if (!one_of(f.fsync, {"always", "everysec", "no"}))
      return fail("fallback.fsync", "'" + f.fsync + "' is not an fsync policy (use always, everysec or no)");
    if (!one_of(f.miss, {"error", "nil"}))
      return fail("fallback.miss", "'" + f.miss + "' is not a miss policy (use error or nil)");
    if (f.mode == "local" && f.data_dir.empty())
      return fail("fallback.data_dir", "is needed by fallback.mode = \"local\" (the journal lives there; or --data-dir DIR)");
    for (const auto& [key, file] : {std::pair{"fallback.journal_file", &f.journal_file},
                                    std::pair{"fallback.dead_letter_file", &f.dead_letter_file}}) {
      if (file->empty() || file->front() == '/' || file->find("..") != std::string::npos)
        return fail(key, "must be a file name relative to fallback.data_dir (not empty, not absolute, no '..')");
    }
    if (f.max_memory < 1024 * 1024) return fail("fallback.max_memory", "must be at least 1mb");
    if (f.max_journal_bytes < 1024 * 1024) return fail("fallback.max_journal_bytes", "must be at least 1mb");
    if (f.stale_max_age_ms < 0) return fail("fallback.stale_max_age_ms", "must not be negative");
    if (f.breaker_failures < 1) return fail("fallback.breaker_failures", "must be at least 1");
    if (f.breaker_open_ms < 1) return fail("fallback.breaker_open_ms", "must be at least 1");
    if (f.breaker_open_max_ms < f.breaker_open_ms)
      return fail("fallback.breaker_open_max_ms", "must be at least fallback.breaker_open_ms");
    if (f.replay_batch < 1 || f.replay_batch > 10000) return fail("fallback.replay_batch", "must be 1 to 10000");
  }

  // [log]
  std::string level = c.log.level;
  std::transform(level.begin(), level.end(), level.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (std::find(std::begin(kLogLevels), std::end(kLogLevels), level) == std::end(kLogLevels)) {
    return fail("log.level", "'" + c.log.level + "' is not a log level (use trace, debug, info, warn, error, "
                             "critical or off)");
  }
  // Normalised forms are stored only once everything is valid (`c` is then the result).
  c.client.deny_commands = std::move(denied);
  c.log.level = level;
  c.cache.eviction = eviction;
  c.cache.tracking = tracking;
  return true;
}

}  // namespace respite::config
