// Config loader: builds a validated Config from the built-in defaults, the TOML file,
// the environment and the command line, in that order of precedence (later wins).
// toml++ stays behind this seam: only config_loader.cpp and config_tables.cpp include it, and its
// exceptions never escape.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/cli.h"
#include "config/config.h"
#include "config/config_values.h"

namespace respite::config {

// Environment variables read by load_config().
inline constexpr const char* kEnvUpstreamUrl = "RESPITE_UPSTREAM_URL";
inline constexpr const char* kEnvUpstreamPassword = "RESPITE_UPSTREAM_PASSWORD";
inline constexpr const char* kEnvLogLevel = "RESPITE_LOG_LEVEL";
inline constexpr const char* kEnvClientPassword = "RESPITE_CLIENT_PASSWORD";

// Source of environment variables; tests inject a map-backed lookup.
struct Environment {
  // Returns the variable's value, or nullptr when unset. Defaults to ::getenv.
  std::function<const char*(const char*)> get = [](const char* name) -> const char* {
    return std::getenv(name);
  };
};

// Loads the configuration. Layers, later ones winning:
//   1. built-in defaults (config.h)
//   2. the TOML file cli.config_path, if non-empty (missing/unreadable/invalid: error)
//   3. environment: RESPITE_UPSTREAM_URL, RESPITE_LOG_LEVEL, RESPITE_CLIENT_PASSWORD
//      (RESPITE_UPSTREAM_PASSWORD is applied in step 6); empty variables are ignored
//   4. each cli.sets entry in order (value: a TOML value if it parses as one, else text;
//      for client.deny_commands, text is a comma-separated list)
//   5. cli.listen, cli.upstream, cli.log_level
//   6. upstream.url is parsed into upstream.address; the password is then replaced by
//      RESPITE_UPSTREAM_PASSWORD or by the first line of upstream.password_file
//      (setting both is an error)
//   7. validation of every setting
// On success `out` holds the new config; on failure `out` is untouched and `error`
// names the offending key (never the password). Never throws.
bool load_config(const CliOptions& cli, const Environment& env, Config& out, std::string& error);


// The effective configuration rendered as TOML (the same syntax the loader reads), for
// --check-config and the admin config view. upstream.url is rendered from the parsed
// address with the password replaced by "***", and so are client.password and every
// client.users password (when set); byte sizes use units where exact.
std::string dump_config(const Config& config);

// The keys ("table.key") whose values differ between two configs (a reload's changes).
std::vector<std::string> changed_config_keys(const Config& before, const Config& after);

// Whether a key's new value is applied on SIGHUP ("live"); the others need a restart.
bool reloads_live(std::string_view key);

// --print-default-config: every key at its built-in default, as TOML, each value line ending
// in "# reload: live" or "# reload: restart". docs/configuration.md is checked against it.
std::string default_config_report();

// Every settable key, "table.key", in declaration order (for docs and tests).
std::vector<std::string> known_config_keys();

}  // namespace respite::config
