// Command line: parses respite's flags into CliOptions. The options are applied on top
// of the config file and the environment by load_config() (config_loader.h).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace respite::config {

struct CliOptions {
  std::string config_path;                                 // --config/-c FILE ("" = no file, defaults only)
  std::vector<std::pair<std::string, std::string>> sets;   // --set KEY=VALUE, in command-line order
  std::optional<std::string> listen;                       // --listen ADDR (server.listen)
  std::optional<std::string> upstream;                     // --upstream URL (upstream.url)
  std::optional<std::string> log_level;                    // --log-level LEVEL (log.level)
  std::optional<std::string> admin;                        // --admin ADDR (admin.listen)
  std::optional<std::string> data_dir;                     // --data-dir DIR (fallback.data_dir)
  bool check_config = false;                               // --check-config: validate, print, exit
  bool print_defaults = false;                             // --print-default-config: print every default, exit
  bool version = false;                                    // --version: print the version, exit
  bool help = false;                                       // --help/-h: print usage_text(), exit
};

// Parses argv[1..argc). Accepts "--flag value" and "--flag=value" for flags that take a
// value; a repeated flag overrides the earlier one, except --set, which accumulates.
// Returns false with `error` set on an unknown flag, a missing value, a value given to
// a flag that takes none, a positional argument, or a --set without '='.
bool parse_cli(int argc, char** argv, CliOptions& out, std::string& error);

// The --help text: synopsis, every flag, the environment variables and the precedence.
std::string usage_text();

}  // namespace respite::config
