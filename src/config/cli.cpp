// Command-line parsing for respite (see cli.h).
#include "config/cli.h"

#include <string_view>

namespace respite::config {
namespace {

enum class Flag { Config, Listen, Admin, DataDir, Upstream, Set, LogLevel, CheckConfig, PrintDefaults, Version, Help };

struct FlagSpec {
  std::string_view long_name;   // "--config"
  std::string_view short_name;  // "-c", or "" when there is none
  Flag flag;                    // which option it sets
  bool takes_value;             // true: needs a value (next argument or after '=')
};

constexpr FlagSpec kFlags[] = {
    {"--config", "-c", Flag::Config, true},
    {"--listen", "", Flag::Listen, true},
    {"--admin", "", Flag::Admin, true},
    {"--data-dir", "", Flag::DataDir, true},
    {"--upstream", "", Flag::Upstream, true},
    {"--set", "", Flag::Set, true},
    {"--log-level", "", Flag::LogLevel, true},
    {"--check-config", "", Flag::CheckConfig, false},
    {"--print-default-config", "", Flag::PrintDefaults, false},
    {"--version", "", Flag::Version, false},
    {"--help", "-h", Flag::Help, false},
};

const FlagSpec* find_flag(std::string_view name) {
  for (const auto& spec : kFlags) {
    if (name == spec.long_name || (!spec.short_name.empty() && name == spec.short_name)) return &spec;
  }
  return nullptr;
}

}  // namespace

bool parse_cli(int argc, char** argv, CliOptions& out, std::string& error) {
  CliOptions opts;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view name = arg;
    std::optional<std::string_view> inline_value;
    if (arg.starts_with("--")) {
      if (auto eq = arg.find('='); eq != std::string_view::npos) {
        name = arg.substr(0, eq);
        inline_value = arg.substr(eq + 1);
      }
    }
    if (!arg.starts_with("-") || arg == "-") {
      error = "unexpected argument '" + std::string(arg) + "' (respite takes no positional "
              "arguments; did you mean --config " + std::string(arg) + "?)";
      return false;
    }
    const FlagSpec* spec = find_flag(name);
    if (spec == nullptr) {
      error = "unknown option '" + std::string(name) + "' (see --help)";
      return false;
    }

    std::string value;
    if (spec->takes_value) {
      if (inline_value) {
        value = std::string(*inline_value);
      } else {
        // A following argument that looks like a flag is not taken as the value, so
        // "--listen --upstream x" reports the missing value instead of eating a flag.
        if (i + 1 >= argc || (argv[i + 1][0] == '-' && argv[i + 1][1] != '\0')) {
          error = "option '" + std::string(name) + "' needs a value (" + std::string(name) +
                  " VALUE or " + std::string(spec->long_name) + "=VALUE)";
          return false;
        }
        value = argv[++i];
      }
    } else if (inline_value) {
      error = "option '" + std::string(name) + "' takes no value";
      return false;
    }

    switch (spec->flag) {
      case Flag::Config:
        if (value.empty()) {
          error = "option '--config' needs a file name";
          return false;
        }
        opts.config_path = std::move(value);
        break;
      case Flag::Listen: opts.listen = std::move(value); break;
      case Flag::Admin: opts.admin = std::move(value); break;
      case Flag::DataDir: opts.data_dir = std::move(value); break;
      case Flag::Upstream: opts.upstream = std::move(value); break;
      case Flag::LogLevel: opts.log_level = std::move(value); break;
      case Flag::Set: {
        auto eq = value.find('=');
        if (eq == std::string::npos) {
          error = "option '--set' needs KEY=VALUE (e.g. --set client.max_pending=2048); got '" +
                  value + "'";
          return false;
        }
        if (eq == 0) {
          error = "option '--set' has an empty key (expected KEY=VALUE)";
          return false;
        }
        opts.sets.emplace_back(value.substr(0, eq), value.substr(eq + 1));
        break;
      }
      case Flag::CheckConfig: opts.check_config = true; break;
      case Flag::PrintDefaults: opts.print_defaults = true; break;
      case Flag::Version: opts.version = true; break;
      case Flag::Help: opts.help = true; break;
    }
  }
  out = std::move(opts);
  return true;
}

std::string usage_text() {
  return R"(Usage: respite [options]

respite is a Redis-protocol sidecar proxy: point your Redis client at it instead of
at Redis.

Options:
  -c, --config FILE       read settings from the TOML file FILE (see conf/respite.toml);
                          without it every setting has its built-in default
      --listen ADDR       TCP address to listen on, host:port or [ipv6]:port
                          ("" disables TCP); same as --set server.listen=ADDR
      --admin ADDR        the HTTP admin listener (/livez, /readyz, /metrics, /stats),
                          host:port ("" disables); same as --set admin.listen=ADDR
      --data-dir DIR      where the fallback journal and dead-letter file are kept;
                          same as --set fallback.data_dir=DIR
      --upstream URL      the Redis server: redis://[[user]:password@]host[:port][/db]
                          or unix:/path/to/socket[?db=N]; same as --set upstream.url=URL
      --set KEY=VALUE     override one setting, e.g. --set client.max_pending=2048,
                          --set client.output_buffer_limit=64mb; repeatable, applied
                          in order; VALUE is read as a TOML value when it is one
                          (number, boolean, "quoted string"), else as plain text
      --log-level LEVEL   trace, debug, info, warn, error, critical or off
      --check-config      load and validate the configuration, print it and exit
                          (exit status 0 if valid)
      --print-default-config
                          print every setting at its built-in default, as TOML, each
                          marked "reload: live" (applied on SIGHUP) or "reload: restart",
                          and exit
      --version           print the version and exit
  -h, --help              print this help and exit

Options that take a value accept both "--flag VALUE" and "--flag=VALUE".

Environment:
  RESPITE_UPSTREAM_URL       the Redis server URL (upstream.url)
  RESPITE_UPSTREAM_PASSWORD  the Redis password; overrides a password in the URL
                             (must not be combined with upstream.password_file)
  RESPITE_CLIENT_PASSWORD    the password clients must AUTH with (client.password)
  RESPITE_LOG_LEVEL          the log level (log.level)
Empty variables are ignored.

Precedence (later wins): built-in defaults, the config file, the environment,
--set options in order, then --listen, --admin, --data-dir, --upstream and
--log-level.
)";
}

}  // namespace respite::config
