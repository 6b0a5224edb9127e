// The config keys whose values are arrays of tables ([[client.users]], [[cache.rules]],
// [[ratelimit.classes]], [[ratelimit.rules]]): reading them from TOML and writing them back
// for --check-config. Internal to the config module: only config_loader.cpp and
// config_tables.cpp include it (and with it toml++).
#pragma once

#include <toml++/toml.h>

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace respite::config::detail {

// "a string", "an integer"... for error messages.
std::string_view toml_type_name(toml::node_type t);

// Each reads the array `node` into `out`; false with `error` (prefixed by `where`, e.g.
// "config file 'x' line 3: config key 'cache.rules'") on a malformed entry. Values of
// secret fields are never echoed.
bool read_users(const toml::node& node, const std::string& where, std::vector<ClientUser>& out, std::string& error);
bool read_cache_rules(const toml::node& node, const std::string& where, std::vector<CacheRule>& out,
                      std::string& error);
bool read_limit_classes(const toml::node& node, const std::string& where, std::vector<RateLimitClass>& out,
                        std::string& error);
bool read_limit_rules(const toml::node& node, const std::string& where, std::vector<RateLimitRule>& out,
                      std::string& error);

// TOML text for a dump (inline tables in an array). Passwords are written as "***".
std::string toml_quote(std::string_view s);
std::string render_words(const std::vector<std::string>& words);
std::string render_users(const std::vector<ClientUser>& users);
std::string render_cache_rules(const std::vector<CacheRule>& rules);
std::string render_limit_classes(const std::vector<RateLimitClass>& classes);
std::string render_limit_rules(const std::vector<RateLimitRule>& rules);

}  // namespace respite::config::detail
