// Near-cache observations for tests; see cache_probe.h.
#include "support/cache_probe.h"

#include <charconv>

#include "support/redis_probe.h"

namespace respite::test {

namespace {

// The whole of `s` as an integer, or nullopt.
std::optional<long long> whole_integer(std::string_view s) {
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

long long CacheStats::get(std::string_view name) const {
  auto it = fields.find(std::string(name));
  if (it == fields.end()) return -1;
  return whole_integer(it->second).value_or(-1);
}

CacheStats cache_stats(Client& respite) {
  CacheStats out;
  Reply r = respite.command({"RESPITE", "CACHE", "STATS"});
  if (!r) {
    out.raw = "<error: " + respite.error() + ">";
    return out;
  }
  if (r->type != REDIS_REPLY_STRING) {
    out.raw = describe(r);
    return out;
  }
  out.raw.assign(r->str, r->len);
  std::string_view all = out.raw;
  while (!all.empty()) {
    size_t eol = all.find('\n');
    std::string_view line = all.substr(0, eol);
    all = eol == std::string_view::npos ? std::string_view() : all.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    out.fields[std::string(line.substr(0, colon))] = std::string(line.substr(colon + 1));
  }
  return out;
}

std::string cache_fence(Client& respite) { return respite.call({"RESPITE", "CACHE", "FENCE"}); }

bool wait_for_tracking(Client& respite, Deadline deadline) {
  return poll_until([&] { return cache_stats(respite).get("tracking") == 1; }, deadline,
                    std::chrono::milliseconds(5));
}

long long command_calls(Client& redis, std::string_view command) {
  Reply r = redis.command({"INFO", "commandstats"});
  if (!r || r->type != REDIS_REPLY_STRING) return -1;
  std::string_view info(r->str, r->len);
  const std::string needle = cat("\ncmdstat_", command, ":calls=");
  size_t at = info.find(needle);
  if (at == std::string_view::npos) {
    // The first line is "# Commandstats"; a command is never the first line, but be exact.
    return 0;
  }
  const char* begin = info.data() + at + needle.size();
  long long value = 0;
  auto [end, ec] = std::from_chars(begin, info.data() + info.size(), value);
  if (ec != std::errc() || end == begin) return -1;
  return value;
}

std::vector<std::map<std::string, std::string>> redis_clients_named(Client& redis, std::string_view name,
                                                                    bool prefix) {
  std::vector<std::map<std::string, std::string>> out;
  for (auto& c : client_list(redis)) {
    auto it = c.find("name");
    if (it == c.end()) continue;
    const std::string& n = it->second;
    if (prefix ? starts_with(n, name) : n == name) out.push_back(std::move(c));
  }
  return out;
}

std::optional<long long> redis_client_id(Client& redis, std::string_view name) {
  auto found = redis_clients_named(redis, name);
  if (found.size() != 1) return std::nullopt;
  return whole_integer(found[0]["id"]);
}

}  // namespace respite::test
