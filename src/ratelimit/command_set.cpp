#include "ratelimit/command_set.h"

#include <algorithm>
#include <cctype>

namespace respite::ratelimit {
namespace {

using cmd::AclCategory;
using cmd::CommandFlag;
using cmd::CommandInfo;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return out;
}

// Keyspace iteration: the commands that walk a whole keyspace or collection by cursor or
// pattern.
bool is_scan_like(const CommandInfo& c) {
  return c.name == "scan" || c.name == "sscan" || c.name == "hscan" || c.name == "zscan" || c.name == "keys";
}

struct BuiltinClass {
  const char* name;
  bool (*test)(const CommandInfo&);
};

// Classes from the command flags first (they say what a command does), then Redis's ACL
// categories by their own names.
const BuiltinClass kClasses[] = {
    {"all", [](const CommandInfo&) { return true; }},
    {"read", [](const CommandInfo& c) { return c.has(CommandFlag::Readonly); }},
    {"write", [](const CommandInfo& c) { return c.has(CommandFlag::Write); }},
    {"admin", [](const CommandInfo& c) { return c.has(CommandFlag::Admin) || c.in(AclCategory::Admin); }},
    {"blocking", [](const CommandInfo& c) { return c.has(CommandFlag::Blocking) || c.in(AclCategory::Blocking); }},
    {"pubsub", [](const CommandInfo& c) { return c.has(CommandFlag::Pubsub) || c.in(AclCategory::Pubsub); }},
    {"scan", is_scan_like},
    {"keyspace", [](const CommandInfo& c) { return c.in(AclCategory::Keyspace); }},
    {"string", [](const CommandInfo& c) { return c.in(AclCategory::String); }},
    {"list", [](const CommandInfo& c) { return c.in(AclCategory::List); }},
    {"set", [](const CommandInfo& c) { return c.in(AclCategory::Set); }},
    {"sortedset", [](const CommandInfo& c) { return c.in(AclCategory::Sortedset); }},
    {"hash", [](const CommandInfo& c) { return c.in(AclCategory::Hash); }},
    {"bitmap", [](const CommandInfo& c) { return c.in(AclCategory::Bitmap); }},
    {"hyperloglog", [](const CommandInfo& c) { return c.in(AclCategory::Hyperloglog); }},
    {"geo", [](const CommandInfo& c) { return c.in(AclCategory::Geo); }},
    {"stream", [](const CommandInfo& c) { return c.in(AclCategory::Stream); }},
    {"fast", [](const CommandInfo& c) { return c.in(AclCategory::Fast); }},
    {"slow", [](const CommandInfo& c) { return c.in(AclCategory::Slow); }},
    {"dangerous", [](const CommandInfo& c) { return c.in(AclCategory::Dangerous); }},
    {"connection", [](const CommandInfo& c) { return c.in(AclCategory::Connection); }},
    {"transaction", [](const CommandInfo& c) { return c.in(AclCategory::Transaction); }},
    {"scripting", [](const CommandInfo& c) { return c.in(AclCategory::Scripting); }},
};

}  // namespace

const std::vector<std::string>& CommandSet::builtin_classes() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& c : kClasses) v.emplace_back(c.name);
    return v;
  }();
  return names;
}

bool CommandSet::build(const std::vector<std::string>& words, const std::vector<config::RateLimitClass>& classes,
                       const cmd::CommandTable& table, std::string& error) {
  entries_.assign(table.size() + 1, 0);  // the last: commands not in the table
  for (const std::string& w : words) {
    if (!add_word(w, classes, table, false, error)) return false;
  }
  return true;
}

bool CommandSet::add_word(const std::string& word, const std::vector<config::RateLimitClass>& classes,
                          const cmd::CommandTable& table, bool in_class, std::string& error) {
  const auto& all = table.commands();
  if (!word.empty() && word[0] == '@') {
    if (in_class) {
      error = "class members must be command names, not classes ('" + word + "')";
      return false;
    }
    std::string name = lower(std::string_view(word).substr(1));
    for (const auto& c : kClasses) {
      if (name != c.name) continue;
      for (size_t i = 0; i < all.size(); ++i) {
        if (c.test(all[i])) entries_[i] = 1;
      }
      if (name == "all") entries_.back() = 1;
      return true;
    }
    for (const auto& c : classes) {
      if (c.name != name) continue;
      for (const std::string& member : c.commands) {
        if (!add_word(member, classes, table, true, error)) {
          error = "class '" + c.name + "': " + error;
          return false;
        }
      }
      return true;
    }
    error = "unknown command class '" + word + "' (built in: @all, @read, @write, @admin, @blocking, @pubsub, "
            "@scan and Redis's ACL categories; or define it in [[ratelimit.classes]])";
    return false;
  }
  // "CONFIG SET" is written "config|set".
  std::string name = lower(word);
  if (auto sp = name.find(' '); sp != std::string::npos && name.find(' ', sp + 1) == std::string::npos) name[sp] = '|';
  const CommandInfo* info = table.find(name);
  if (!info) {
    error = "unknown command '" + word + "' (not in the Redis " + table.redis_version() +
            " command table; module commands are counted by @all only)";
    return false;
  }
  entries_[info->index] = 1;
  if (info->container) {
    const std::string prefix = info->name + "|";
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i].name.compare(0, prefix.size(), prefix) == 0) entries_[i] = 1;
    }
  }
  return true;
}

}  // namespace respite::ratelimit
