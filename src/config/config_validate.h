// Validation of a fully layered Config: ranges, cross-field rules, address syntax.
// Internal to the config module (config_loader.cpp calls it after applying every layer).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace respite::config {

// Checks `c`, normalising what has a canonical form (log.level to lower case;
// client.deny_commands to lower-case "name" or "container|subcommand", duplicates
// dropped). On failure, `error` starts with about(key), which names the key and where
// its value came from, and the function returns false.
bool validate_config(Config& c, const std::function<std::string(std::string_view)>& about, std::string& error);

}  // namespace respite::config
