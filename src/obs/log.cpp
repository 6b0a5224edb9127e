#include "obs/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace respite::obs {
namespace {

bool parse_level(std::string_view name, spdlog::level::level_enum& out) {
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
      {"off", spdlog::level::off}};
  for (const auto& [n, l] : kLevels) {
    if (n == name) {
      out = l;
      return true;
    }
  }
  return false;
}

}  // namespace

bool valid_log_level(std::string_view level) {
  spdlog::level::level_enum l;
  return parse_level(level, l);
}

bool init_logging(std::string_view level) {
  auto logger = spdlog::stderr_logger_st("respite");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->flush_on(spdlog::level::trace);  // lifecycle lines only: flushing each is cheap
  spdlog::set_default_logger(logger);
  return set_log_level(level);
}

bool set_log_level(std::string_view level) {
  spdlog::level::level_enum l;
  if (!parse_level(level, l)) return false;
  spdlog::set_level(l);
  return true;
}

bool debug_enabled() { return spdlog::should_log(spdlog::level::debug); }

}  // namespace respite::obs
