#include "config/config_tables.h"

#include <climits>
#include <cstdio>

namespace respite::config::detail {
namespace {

// Walks a TOML array of tables: `fn(table, entry)` reads one, `entry` being the prefix for
// its error messages ("<where> entry 2"). Entries that are not tables are errors.
template <typename Fn>
bool each_table(const toml::node& array, const std::string& where, std::string_view expects, std::string& error,
                Fn fn) {
  size_t index = 0;
  for (const toml::node& item : *array.as_array()) {
    ++index;
    const std::string entry = where + " entry " + std::to_string(index);
    const toml::table* table = item.as_table();
    if (!table) {
      error = entry + " expects " + std::string(expects) + ", got " + std::string(toml_type_name(item.type()));
      return false;
    }
    if (!fn(*table, entry)) return false;
  }
  return true;
}

bool type_error(std::string& error, const std::string& entry, std::string_view key, std::string_view expects,
                const toml::node& value) {
  error = entry + ": '" + std::string(key) + "' expects " + std::string(expects) + ", got " +
          std::string(toml_type_name(value.type()));
  return false;
}

// A string, or an array of strings.
bool read_strings(const toml::node& value, const std::string& entry, std::string_view key,
                  std::vector<std::string>& out, std::string& error) {
  out.clear();
  if (value.is_string()) {
    out.push_back(value.as_string()->get());
    return true;
  }
  if (!value.is_array()) return type_error(error, entry, key, "a string or an array of strings", value);
  for (const toml::node& item : *value.as_array()) {
    if (!item.is_string()) return type_error(error, entry, key, "a string or an array of strings", item);
    out.push_back(item.as_string()->get());
  }
  return true;
}

bool read_int(const toml::node& value, const std::string& entry, std::string_view key, int64_t lo, int64_t hi,
              int64_t& out, std::string& error) {
  if (!value.is_integer()) return type_error(error, entry, key, "an integer", value);
  out = value.as_integer()->get();
  if (out < lo || out > hi) {
    error = entry + ": '" + std::string(key) + "' must be between " + std::to_string(lo) + " and " +
            std::to_string(hi) + " (got " + std::to_string(out) + ")";
    return false;
  }
  return true;
}

std::string render_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string s = buf;
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // stays a TOML float
  return s;
}

}  // namespace

std::string_view toml_type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::none: break;
  }
  return "nothing";
}

bool read_users(const toml::node& node, const std::string& where, std::vector<ClientUser>& out, std::string& error) {
  std::vector<ClientUser> users;
  bool ok = each_table(node, where, "a table with a name and a password", error,
                       [&](const toml::table& table, const std::string& entry) {
    ClientUser user;
    bool has_name = false;
    bool has_password = false;
    for (auto&& [user_key, user_value] : table) {
      std::string_view k = user_key.str();
      if (k != "name" && k != "password") {
        error = entry + ": unknown key '" + std::string(k) + "' (a user has a name and a password)";
        return false;
      }
      // The value is not echoed: it may be a password.
      if (!user_value.is_string()) return type_error(error, entry, k, "a string", user_value);
      if (k == "name") {
        user.name = user_value.as_string()->get();
        has_name = true;
      } else {
        user.password = user_value.as_string()->get();
        has_password = true;
      }
    }
    if (!has_name || !has_password) {
      error = entry + ": missing '" + std::string(has_name ? "password" : "name") +
              "' (a user has a name and a password)";
      return false;
    }
    users.push_back(std::move(user));
    return true;
  });
  if (ok) out = std::move(users);
  return ok;
}

bool read_cache_rules(const toml::node& node, const std::string& where, std::vector<CacheRule>& out,
                      std::string& error) {
  std::vector<CacheRule> rules;
  bool ok = each_table(node, where, "a table with a pattern", error,
                       [&](const toml::table& table, const std::string& entry) {
    CacheRule rule;
    bool has_pattern = false;
    for (auto&& [rule_key, value] : table) {
      std::string_view k = rule_key.str();
      if (k == "pattern") {
        if (!value.is_string()) return type_error(error, entry, k, "a string", value);
        rule.pattern = value.as_string()->get();
        has_pattern = true;
      } else if (k == "cache") {
        if (!value.is_boolean()) return type_error(error, entry, k, "a boolean", value);
        rule.cache = value.as_boolean()->get();
      } else if (k == "max_ttl_ms") {
        int64_t v = 0;
        if (!read_int(value, entry, k, 0, INT_MAX, v, error)) return false;
        rule.max_ttl_ms = static_cast<int>(v);
      } else {
        error = entry + ": unknown key '" + std::string(k) + "' (a rule has pattern, cache and max_ttl_ms)";
        return false;
      }
    }
    if (!has_pattern) {
      error = entry + ": missing 'pattern'";
      return false;
    }
    rules.push_back(std::move(rule));
    return true;
  });
  if (ok) out = std::move(rules);
  return ok;
}

bool read_limit_classes(const toml::node& node, const std::string& where, std::vector<RateLimitClass>& out,
                        std::string& error) {
  std::vector<RateLimitClass> classes;
  bool ok = each_table(node, where, "a table with a name and commands", error,
                       [&](const toml::table& table, const std::string& entry) {
    RateLimitClass c;
    bool has_name = false;
    bool has_commands = false;
    for (auto&& [class_key, value] : table) {
      std::string_view k = class_key.str();
      if (k == "name") {
        if (!value.is_string()) return type_error(error, entry, k, "a string", value);
        c.name = value.as_string()->get();
        has_name = true;
      } else if (k == "commands") {
        if (!read_strings(value, entry, k, c.commands, error)) return false;
        has_commands = true;
      } else {
        error = entry + ": unknown key '" + std::string(k) + "' (a class has a name and commands)";
        return false;
      }
    }
    if (!has_name || !has_commands) {
      error = entry + ": missing '" + std::string(has_name ? "commands" : "name") + "'";
      return false;
    }
    classes.push_back(std::move(c));
    return true;
  });
  if (ok) out = std::move(classes);
  return ok;
}

bool read_limit_rules(const toml::node& node, const std::string& where, std::vector<RateLimitRule>& out,
                      std::string& error) {
  std::vector<RateLimitRule> rules;
  bool ok = each_table(node, where, "a table with a name and a rate", error,
                       [&](const toml::table& table, const std::string& entry) {
    RateLimitRule r;
    bool has_name = false;
    bool has_rate = false;
    for (auto&& [rule_key, value] : table) {
      std::string_view k = rule_key.str();
      int64_t v = 0;
      if (k == "name" || k == "scope" || k == "action") {
        if (!value.is_string()) return type_error(error, entry, k, "a string", value);
        (k == "name" ? r.name : k == "scope" ? r.scope : r.action) = value.as_string()->get();
        has_name = has_name || k == "name";
      } else if (k == "clients") {
        if (!read_strings(value, entry, k, r.clients, error)) return false;
      } else if (k == "commands") {
        if (!read_strings(value, entry, k, r.commands, error)) return false;
      } else if (k == "rate") {
        if (value.is_integer()) {
          r.rate = static_cast<double>(value.as_integer()->get());
        } else if (value.is_floating_point()) {
          r.rate = value.as_floating_point()->get();
        } else {
          return type_error(error, entry, k, "a number", value);
        }
        has_rate = true;
      } else if (k == "burst") {
        if (!read_int(value, entry, k, 1, 1'000'000'000, v, error)) return false;
        r.burst = static_cast<uint32_t>(v);
      } else if (k == "max_wait_ms") {
        if (!read_int(value, entry, k, 0, INT_MAX, v, error)) return false;
        r.max_wait_ms = static_cast<int>(v);
      } else {
        error = entry + ": unknown key '" + std::string(k) +
                "' (a rule has name, scope, clients, commands, rate, burst, action and max_wait_ms)";
        return false;
      }
    }
    if (!has_name || !has_rate) {
      error = entry + ": missing '" + std::string(has_name ? "rate" : "name") + "'";
      return false;
    }
    rules.push_back(std::move(r));
    return true;
  });
  if (ok) out = std::move(rules);
  return ok;
}

std::string toml_quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += ch;
    }
  }
  out += '"';
  return out;
}

std::string render_words(const std::vector<std::string>& words) {
  std::string out = "[";
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += ", ";
    out += toml_quote(words[i]);
  }
  out += ']';
  return out;
}

// Passwords are replaced by "***": reloading a dump then fails closed (a wrong password)
// instead of silently turning authentication off.
std::string render_users(const std::vector<ClientUser>& users) {
  std::string out = "[";
  for (size_t i = 0; i < users.size(); ++i) {
    if (i > 0) out += ", ";
    out += "{ name = " + toml_quote(users[i].name) + ", password = \"***\" }";
  }
  out += ']';
  return out;
}

std::string render_cache_rules(const std::vector<CacheRule>& rules) {
  std::string out = "[";
  for (size_t i = 0; i < rules.size(); ++i) {
    if (i > 0) out += ", ";
    out += "{ pattern = " + toml_quote(rules[i].pattern) + ", cache = " + (rules[i].cache ? "true" : "false") +
           ", max_ttl_ms = " + std::to_string(rules[i].max_ttl_ms) + " }";
  }
  out += ']';
  return out;
}

std::string render_limit_classes(const std::vector<RateLimitClass>& classes) {
  std::string out = "[";
  for (size_t i = 0; i < classes.size(); ++i) {
    if (i > 0) out += ", ";
    out += "{ name = " + toml_quote(classes[i].name) + ", commands = " + render_words(classes[i].commands) + " }";
  }
  out += ']';
  return out;
}

std::string render_limit_rules(const std::vector<RateLimitRule>& rules) {
  std::string out = "[";
  for (size_t i = 0; i < rules.size(); ++i) {
    const RateLimitRule& r = rules[i];
    if (i > 0) out += ", ";
    out += "{ name = " + toml_quote(r.name) + ", scope = " + toml_quote(r.scope) +
           ", clients = " + render_words(r.clients) + ", commands = " + render_words(r.commands) +
           ", rate = " + render_double(r.rate) + ", burst = " + std::to_string(r.burst) +
           ", action = " + toml_quote(r.action) + ", max_wait_ms = " + std::to_string(r.max_wait_ms) + " }";
  }
  out += ']';
  return out;
}

}  // namespace respite::config::detail
