// Redis state observations and RESP helpers for tests; see redis_probe.h.
#include "support/redis_probe.h"

#include <charconv>
#include <thread>

namespace respite::test {

bool poll_until(const std::function<bool()>& condition, Deadline deadline, std::chrono::milliseconds interval) {
  for (;;) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

std::optional<long long> info_integer(Client& redis, const std::string& section, std::string_view field) {
  Reply r = redis.command({"INFO", section});
  if (!r || r->type != REDIS_REPLY_STRING) return std::nullopt;
  std::string_view info(r->str, r->len);
  const std::string needle = cat("\n", field, ":");
  size_t at = info.find(needle);
  if (at == std::string_view::npos) return std::nullopt;
  const char* begin = info.data() + at + needle.size();
  long long value = 0;
  auto [end, ec] = std::from_chars(begin, info.data() + info.size(), value);
  if (ec != std::errc() || end == begin) return std::nullopt;
  return value;
}

bool wait_for_blocked_clients(Client& redis, long long n, Deadline deadline) {
  return poll_until([&] { return info_integer(redis, "clients", "blocked_clients") == n; }, deadline);
}

std::vector<std::map<std::string, std::string>> client_list(Client& redis) {
  std::vector<std::map<std::string, std::string>> out;
  Reply r = redis.command({"CLIENT", "LIST"});
  if (!r || r->type != REDIS_REPLY_STRING) return out;
  std::string_view all(r->str, r->len);
  while (!all.empty()) {
    size_t eol = all.find('\n');
    std::string_view line = all.substr(0, eol);
    all = eol == std::string_view::npos ? std::string_view() : all.substr(eol + 1);
    if (line.empty()) continue;
    std::map<std::string, std::string> fields;
    while (!line.empty()) {
      size_t sp = line.find(' ');
      std::string_view item = line.substr(0, sp);
      line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
      size_t eq = item.find('=');
      if (eq != std::string_view::npos) fields[std::string(item.substr(0, eq))] = std::string(item.substr(eq + 1));
    }
    out.push_back(std::move(fields));
  }
  return out;
}

bool send_command(RawConn& conn, const std::vector<std::string>& args) {
  return conn.send_all(resp_command(args), deadline_in(std::chrono::seconds(5)));
}

std::string next_reply(RawConn& conn, Clock::duration within) {
  return conn.read_reply(deadline_in(within)).value_or("<none>");
}

std::string resp_bulk(std::string_view s) { return cat("$", s.size(), "\r\n", s, "\r\n"); }

std::string resp_array(const std::vector<std::string>& encoded_items) {
  std::string out = cat("*", encoded_items.size(), "\r\n");
  for (const auto& item : encoded_items) out += item;
  return out;
}

std::string resp_bulk_array(const std::vector<std::string>& items) {
  std::string out = cat("*", items.size(), "\r\n");
  for (const auto& item : items) out += resp_bulk(item);
  return out;
}

}  // namespace respite::test
