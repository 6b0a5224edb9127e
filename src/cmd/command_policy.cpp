#include "cmd/command_policy.h"

#include <array>
#include <charconv>
#include <string>
#include <unordered_map>

namespace respite::cmd {
namespace {

enum class Kind : uint8_t { Special, Dedicated, Refused };

struct Rule {
  Kind kind;             // how the command is treated
  std::string_view why;  // refusal reason (Refused only)
};

// Commands whose handling differs from plain forwarding, keyed by lowercase name.
const std::unordered_map<std::string_view, Rule>& rules() {
  static const std::unordered_map<std::string_view, Rule> table = {
      {"quit", {Kind::Special, {}}},
      {"reset", {Kind::Special, {}}},
      {"select", {Kind::Special, {}}},
      {"auth", {Kind::Special, {}}},
      {"hello", {Kind::Special, {}}},
      {"client", {Kind::Special, {}}},
      {"xread", {Kind::Special, {}}},
      {"xreadgroup", {Kind::Special, {}}},
      // Transactions keep state on the connection.
      {"multi", {Kind::Dedicated, {}}},
      {"exec", {Kind::Dedicated, {}}},
      {"discard", {Kind::Dedicated, {}}},
      {"watch", {Kind::Dedicated, {}}},
      {"unwatch", {Kind::Dedicated, {}}},
      // Blocking commands would stall every client behind them on a shared connection.
      {"blpop", {Kind::Dedicated, {}}},
      {"brpop", {Kind::Dedicated, {}}},
      {"brpoplpush", {Kind::Dedicated, {}}},
      {"blmove", {Kind::Dedicated, {}}},
      {"blmpop", {Kind::Dedicated, {}}},
      {"bzpopmin", {Kind::Dedicated, {}}},
      {"bzpopmax", {Kind::Dedicated, {}}},
      {"bzmpop", {Kind::Dedicated, {}}},
      {"wait", {Kind::Dedicated, {}}},
      {"waitaof", {Kind::Dedicated, {}}},
      // Pub/sub and MONITOR turn the connection into a push stream.
      {"subscribe", {Kind::Dedicated, {}}},
      {"psubscribe", {Kind::Dedicated, {}}},
      {"ssubscribe", {Kind::Dedicated, {}}},
      {"unsubscribe", {Kind::Dedicated, {}}},
      {"punsubscribe", {Kind::Dedicated, {}}},
      {"sunsubscribe", {Kind::Dedicated, {}}},
      {"monitor", {Kind::Dedicated, {}}},
      // Replication handshakes take over the connection for good.
      {"sync", {Kind::Refused, "replication commands cannot go through a proxy"}},
      {"psync", {Kind::Refused, "replication commands cannot go through a proxy"}},
      {"replconf", {Kind::Refused, "replication commands cannot go through a proxy"}},
  };
  return table;
}

// (length, first letter) pairs of the names in rules(): a request whose name matches no
// pair is a plain forward without hashing anything (GET, SET, HGET... all miss).
struct QuickFilter {
  bool maybe[33][26] = {};  // [name length][first letter - 'a']
  QuickFilter() {
    for (const auto& [name, rule] : rules()) {
      if (name.size() <= 32) maybe[name.size()][name[0] - 'a'] = true;
    }
  }
  bool may_match(std::string_view name) const {
    if (name.empty() || name.size() > 32) return false;
    char c = name[0];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    if (c < 'a' || c > 'z') return false;
    return maybe[name.size()][c - 'a'];
  }
};

bool lower_into(std::string_view in, std::array<char, 32>& out, std::string_view& view) {
  if (in.size() > out.size()) return false;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    out[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  }
  view = std::string_view(out.data(), in.size());
  return true;
}

Decision client_subcommand(std::span<const std::string_view> args) {
  if (args.size() < 2) return {};
  std::string_view sub = args[1];
  if (iequals(sub, "reply"))
    return {Route::Refuse, "CLIENT REPLY would desynchronise the shared upstream connection"};
  if (iequals(sub, "tracking") || iequals(sub, "caching") || iequals(sub, "getredir") ||
      iequals(sub, "trackinginfo"))
    return {Route::NeedsDedicated, {}};
  return {};
}

Decision hello(std::span<const std::string_view> args) {
  if (args.size() >= 2) {
    if (args[1] == "3") return {Route::HelloNoProto, {}};
    if (args.size() > 2)
      return {Route::Refuse, "HELLO with AUTH or SETNAME would change the shared upstream connection"};
  }
  return {};
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

Decision classify(std::span<const std::string_view> args, int shared_db) {
  static const QuickFilter filter;
  if (args.empty() || !filter.may_match(args[0])) return {};
  std::array<char, 32> buf;
  std::string_view name;
  if (!lower_into(args[0], buf, name)) return {};
  const auto& table = rules();
  auto it = table.find(name);
  if (it == table.end()) return {};
  switch (it->second.kind) {
    case Kind::Dedicated:
      return {Route::NeedsDedicated, {}};
    case Kind::Refused:
      return {Route::Refuse, it->second.why};
    case Kind::Special:
      break;
  }
  if (name == "quit") return {Route::Quit, {}};
  if (name == "reset") return {Route::Reset, {}};
  if (name == "auth") return {Route::Auth, {}};
  if (name == "hello") return hello(args);
  if (name == "client") return client_subcommand(args);
  if (name == "select") {
    if (args.size() != 2) return {};  // Redis answers the arity error
    int db = -1;
    auto [p, ec] = std::from_chars(args[1].data(), args[1].data() + args[1].size(), db);
    if (ec == std::errc() && p == args[1].data() + args[1].size() && db == shared_db)
      return {Route::SelectSame, {}};
    return {Route::NeedsDedicated, {}};
  }
  // XREAD / XREADGROUP block only with the BLOCK option (before STREAMS).
  for (size_t i = 1; i < args.size(); ++i) {
    if (iequals(args[i], "streams")) break;
    if (iequals(args[i], "block")) return {Route::NeedsDedicated, {}};
  }
  return {};
}

}  // namespace respite::cmd
