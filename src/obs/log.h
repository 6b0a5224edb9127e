// Logging seam: the only header that includes spdlog. Everything else logs through
// respite::obs::{trace,debug,info,warn,error}. Lines go to stderr.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>
#include <utility>

namespace respite::obs {

// Configures the stderr logger. Returns false for an unknown level name.
bool init_logging(std::string_view level);
// Changes the level of the running logger (false for an unknown name).
bool set_log_level(std::string_view level);
bool valid_log_level(std::string_view level);
bool debug_enabled();

template <typename... A>
void trace(spdlog::format_string_t<A...> f, A&&... a) { spdlog::trace(f, std::forward<A>(a)...); }
template <typename... A>
void debug(spdlog::format_string_t<A...> f, A&&... a) { spdlog::debug(f, std::forward<A>(a)...); }
template <typename... A>
void info(spdlog::format_string_t<A...> f, A&&... a) { spdlog::info(f, std::forward<A>(a)...); }
template <typename... A>
void warn(spdlog::format_string_t<A...> f, A&&... a) { spdlog::warn(f, std::forward<A>(a)...); }
template <typename... A>
void error(spdlog::format_string_t<A...> f, A&&... a) { spdlog::error(f, std::forward<A>(a)...); }

}  // namespace respite::obs
