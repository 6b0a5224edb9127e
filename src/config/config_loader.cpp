// Config loading: layers defaults, the TOML file, the environment and the command line
// into a Config, then validates it (config_validate.cpp). This is the only file that
// includes toml++; every toml++ exception is caught here and turned into an error string.
#include "config/config_loader.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <map>
#include <optional>
#include <toml++/toml.h>
#include <type_traits>

#include "config/config_validate.h"
#include "config/upstream_url.h"

namespace respite::config {
namespace {

// How a setting's value is read from TOML or text.
enum class Kind {
  String,  // std::string
  Int,     // int; TOML integer (range-checked)
  Count,   // size_t; non-negative TOML integer
  Bytes,   // size_t; non-negative integer, or a string with a unit ("64mb")
  Mode,    // int; integer (0o660) or octal string ("0660")
  Secret,  // std::string, like String, but never shown: dumped as "***"
  Words,   // std::vector<std::string>; TOML array of strings, or comma-separated --set text
  Users,   // std::vector<ClientUser>; TOML array of tables { name, password }
  Bool,    // bool; TOML boolean, or true/false/yes/no/on/off/1/0 text
  Rules,   // std::vector<CacheRule>; TOML array of tables { pattern, cache, max_ttl_ms }
};

template <Kind K>
struct KindType;
template <> struct KindType<Kind::String> { using type = std::string; };
template <> struct KindType<Kind::Int> { using type = int; };
template <> struct KindType<Kind::Count> { using type = size_t; };
template <> struct KindType<Kind::Bytes> { using type = size_t; };
template <> struct KindType<Kind::Mode> { using type = int; };
template <> struct KindType<Kind::Secret> { using type = std::string; };
template <> struct KindType<Kind::Words> { using type = std::vector<std::string>; };
template <> struct KindType<Kind::Users> { using type = std::vector<ClientUser>; };
template <> struct KindType<Kind::Bool> { using type = bool; };
template <> struct KindType<Kind::Rules> { using type = std::vector<CacheRule>; };

// One settable key and where it lives in Config.
struct Field {
  std::string_view table;     // TOML table: server, client, upstream, log
  std::string_view name;      // key inside the table, spelled like the struct field
  Kind kind;                  // how the value is parsed
  void* (*member)(Config&);   // address of the field (type matches `kind`, checked at compile time)
};

// The static_assert keeps each entry's Kind in step with the struct field's C++ type.
#define RESPITE_FIELD(section, key, kind)                                                     \
  Field {                                                                                     \
    #section, #key, kind, [](Config& c) -> void* {                                            \
      static_assert(std::is_same_v<decltype(c.section.key), typename KindType<kind>::type>); \
      return &c.section.key;                                                                  \
    }                                                                                         \
  }

const Field kFields[] = {
    RESPITE_FIELD(server, listen, Kind::String),
    RESPITE_FIELD(server, unix_socket, Kind::String),
    RESPITE_FIELD(server, unix_socket_mode, Kind::Mode),
    RESPITE_FIELD(server, tcp_backlog, Kind::Int),
    RESPITE_FIELD(server, max_clients, Kind::Count),
    RESPITE_FIELD(server, tcp_keepalive_s, Kind::Int),
    RESPITE_FIELD(client, max_bulk_len, Kind::Bytes),
    RESPITE_FIELD(client, max_args, Kind::Count),
    RESPITE_FIELD(client, max_inline_len, Kind::Bytes),
    RESPITE_FIELD(client, query_buffer_limit, Kind::Bytes),
    RESPITE_FIELD(client, output_buffer_limit, Kind::Bytes),
    RESPITE_FIELD(client, output_high_water, Kind::Bytes),
    RESPITE_FIELD(client, max_pending, Kind::Count),
    RESPITE_FIELD(client, idle_timeout_s, Kind::Int),
    RESPITE_FIELD(client, password, Kind::Secret),
    RESPITE_FIELD(client, users, Kind::Users),
    RESPITE_FIELD(client, deny_commands, Kind::Words),
    RESPITE_FIELD(upstream, url, Kind::String),
    RESPITE_FIELD(upstream, password_file, Kind::String),
    RESPITE_FIELD(upstream, pool_size, Kind::Count),
    RESPITE_FIELD(upstream, connect_timeout_ms, Kind::Int),
    RESPITE_FIELD(upstream, command_timeout_ms, Kind::Int),
    RESPITE_FIELD(upstream, reconnect_min_ms, Kind::Int),
    RESPITE_FIELD(upstream, reconnect_max_ms, Kind::Int),
    RESPITE_FIELD(upstream, max_inflight, Kind::Count),
    RESPITE_FIELD(upstream, max_batches_in_flight, Kind::Int),
    RESPITE_FIELD(upstream, max_pinned, Kind::Count),
    RESPITE_FIELD(upstream, pinned_idle, Kind::Count),
    RESPITE_FIELD(cache, enabled, Kind::Bool),
    RESPITE_FIELD(cache, memory_bytes, Kind::Bytes),
    RESPITE_FIELD(cache, max_value_bytes, Kind::Bytes),
    RESPITE_FIELD(cache, max_ttl_ms, Kind::Int),
    RESPITE_FIELD(cache, eviction, Kind::String),
    RESPITE_FIELD(cache, tracking, Kind::String),
    RESPITE_FIELD(cache, bcast_prefixes, Kind::Words),
    RESPITE_FIELD(cache, ping_interval_ms, Kind::Int),
    RESPITE_FIELD(cache, ping_timeout_ms, Kind::Int),
    RESPITE_FIELD(cache, bypass_clients, Kind::Words),
    RESPITE_FIELD(cache, rules, Kind::Rules),
    RESPITE_FIELD(cache, warmup_patterns, Kind::Words),
    RESPITE_FIELD(cache, warmup_max_keys, Kind::Count),
    RESPITE_FIELD(cache, warmup_keys_per_second, Kind::Count),
    RESPITE_FIELD(log, level, Kind::String),
};

#undef RESPITE_FIELD

constexpr std::string_view kTables[] = {"server", "client", "upstream", "cache", "log"};

std::string full_key(const Field& f) { return std::string(f.table) + "." + std::string(f.name); }

bool is_table_name(std::string_view name) {
  return std::find(std::begin(kTables), std::end(kTables), name) != std::end(kTables);
}

const Field* find_field(std::string_view table, std::string_view name) {
  for (const auto& f : kFields) {
    if (f.table == table && f.name == name) return &f;
  }
  return nullptr;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// " (did you mean 'client.max_pending'?)" for a near miss, else "".
std::string suggestion(std::string_view table, std::string_view name) {
  std::string wanted = std::string(table) + "." + std::string(name);
  const Field* best = nullptr;
  size_t best_distance = 3;  // suggest only within two edits...
  for (const auto& f : kFields) {
    size_t d = edit_distance(wanted, full_key(f));
    if (f.name == name) d = 0;  // ...or the right key in the wrong table
    if (d < best_distance) {
      best = &f;
      best_distance = d;
    }
  }
  return best ? " (did you mean '" + full_key(*best) + "'?)" : "";
}

std::string unknown_key_error(std::string_view table, std::string_view name, const std::string& origin) {
  std::string key = table.empty() ? std::string(name) : std::string(table) + "." + std::string(name);
  std::string msg = origin + ": unknown config key '" + key + "'" + suggestion(table, name);
  if (table.empty() && msg.find("did you mean") == std::string::npos) {
    msg += " (settings live in the tables [server], [client], [upstream], [cache] and [log])";
  }
  return msg;
}

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

std::string_view expected_type(Kind kind) {
  switch (kind) {
    case Kind::String: return "a string";
    case Kind::Int: return "an integer";
    case Kind::Count: return "a non-negative integer";
    case Kind::Bytes: return "a byte size (an integer, or a string with a unit such as \"64mb\")";
    case Kind::Mode: return "a file mode (an octal string such as \"0660\", or an integer such as 0o660)";
    case Kind::Secret: return "a string";
    case Kind::Words: return "an array of strings";
    case Kind::Users: return "an array of tables with a name and a password ([[client.users]])";
    case Kind::Bool: return "a boolean (true or false)";
    case Kind::Rules: return "an array of tables with a pattern and cache or max_ttl_ms ([[cache.rules]])";
  }
  return "";
}

// Parses an octal permission string: "0660", "660", "0o660".
bool parse_octal_mode(std::string_view text, int& out) {
  if (text.starts_with("0o") || text.starts_with("0O")) text.remove_prefix(2);
  if (text.empty() || text.size() > 6) return false;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return false;
    value = value * 8 + (c - '0');
  }
  out = value;
  return true;
}

// Parses a plain decimal integer from --set text or the environment.
bool parse_int_text(std::string_view text, int64_t& out) {
  if (text.empty()) return false;
  bool negative = text.front() == '-';
  if (negative || text.front() == '+') text.remove_prefix(1);
  if (text.empty() || text.size() > 18) return false;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  out = negative ? -value : value;
  return true;
}

// true/false, yes/no, on/off, 1/0 (any case), from --set text or the environment.
bool parse_bool_text(std::string_view text, bool& out) {
  std::string t;
  for (char c : text) t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "true" || t == "yes" || t == "on" || t == "1") {
    out = true;
    return true;
  }
  if (t == "false" || t == "no" || t == "off" || t == "0") {
    out = false;
    return true;
  }
  return false;
}

// Splits comma-separated --set text ("keys, flushall") into trimmed items. Blank text is
// an empty list; an empty item is kept so that validation reports it.
std::vector<std::string> split_list_text(std::string_view text) {
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  std::vector<std::string> items;
  if (trim(text).empty()) return items;
  while (true) {
    auto comma = text.find(',');
    items.emplace_back(trim(text.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

std::string node_origin(const std::string& path, const toml::node& node) {
  std::string s = "config file '" + path + "'";
  const auto& src = node.source();
  if (src.begin.line > 0) {
    s += " line " + std::to_string(src.begin.line);
  }
  return s;
}

// Walks a TOML array of tables ([[client.users]], [[cache.rules]]): `fn(table, entry)` reads
// one, `entry` being the prefix for its error messages. Entries that are not tables are errors.
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

// Stores one value into its field. `node` is the TOML value (nullptr when the value is
// plain text from the environment, a flag, or a --set value that is not TOML); `text`
// is the original text for those (nullptr for file values). Errors name the key and the
// expected type, never the value of a string setting (it may be a URL with a password).
bool apply_value(Config& cfg, const Field& field, const toml::node* node, const std::string* text,
                 const std::string& origin, std::string& error) {
  const std::string key = full_key(field);
  auto type_error = [&]() {
    error = origin + ": config key '" + key + "' expects " + std::string(expected_type(field.kind));
    if (node) error += ", got " + std::string(toml_type_name(node->type()));
    return false;
  };
  void* target = field.member(cfg);

  // The text of a value given as a TOML string, or as a bare --set value; null otherwise.
  auto string_input = [&]() -> const std::string* {
    if (node && node->is_string()) return &node->as_string()->get();
    if (!node && text) return text;
    return nullptr;
  };

  switch (field.kind) {
    case Kind::String: {
      if (node && node->is_string()) {
        *static_cast<std::string*>(target) = node->as_string()->get();
      } else if (text) {
        // A --set value that happens to parse as a number or boolean is still text here.
        *static_cast<std::string*>(target) = *text;
      } else {
        return type_error();
      }
      return true;
    }
    case Kind::Int:
    case Kind::Count: {
      int64_t value = 0;
      if (node && node->is_integer()) {
        value = node->as_integer()->get();
      } else if (!node && text && parse_int_text(*text, value)) {
        // plain decimal text
      } else {
        return type_error();
      }
      if (field.kind == Kind::Int) {
        if (value < INT_MIN || value > INT_MAX) {
          error = origin + ": config key '" + key + "' value " + std::to_string(value) + " is out of range";
          return false;
        }
        *static_cast<int*>(target) = static_cast<int>(value);
      } else {
        if (value < 0) {
          error = origin + ": config key '" + key + "' must not be negative (got " + std::to_string(value) + ")";
          return false;
        }
        *static_cast<size_t*>(target) = static_cast<size_t>(value);
      }
      return true;
    }
    case Kind::Bytes: {
      if (node && node->is_integer()) {
        int64_t value = node->as_integer()->get();
        if (value < 0) {
          error = origin + ": config key '" + key + "' must not be negative (got " + std::to_string(value) + ")";
          return false;
        }
        *static_cast<size_t*>(target) = static_cast<size_t>(value);
        return true;
      }
      const std::string* s = string_input();
      if (!s) return type_error();
      std::string size_error;
      if (!parse_byte_size(*s, *static_cast<size_t*>(target), size_error)) {
        error = origin + ": config key '" + key + "': " + size_error;
        return false;
      }
      return true;
    }
    case Kind::Mode: {
      int mode = 0;
      if (node && node->is_integer()) {
        int64_t value = node->as_integer()->get();
        if (value < 0 || value > 07777) {
          error = origin + ": config key '" + key + "' is not a file mode (0..07777)";
          return false;
        }
        mode = static_cast<int>(value);
      } else {
        const std::string* s = string_input();
        if (!s) return type_error();
        if (!parse_octal_mode(*s, mode)) {
          error = origin + ": config key '" + key + "' value '" + *s +
                  "' is not an octal file mode (e.g. \"0660\")";
          return false;
        }
      }
      *static_cast<int*>(target) = mode;
      return true;
    }
    case Kind::Secret: {
      // Same input rules as String; only the rendering differs.
      if (node && node->is_string()) {
        *static_cast<std::string*>(target) = node->as_string()->get();
      } else if (text) {
        *static_cast<std::string*>(target) = *text;
      } else {
        return type_error();
      }
      return true;
    }
    case Kind::Words: {
      std::vector<std::string> words;
      if (node && node->is_array()) {
        size_t index = 0;
        for (const toml::node& item : *node->as_array()) {
          ++index;
          if (!item.is_string()) {
            error = origin + ": config key '" + key + "' entry " + std::to_string(index) + " expects a string, got " +
                    std::string(toml_type_name(item.type()));
            return false;
          }
          words.push_back(item.as_string()->get());
        }
      } else if (text) {
        // --set text: "keys,flushall", or a TOML string holding the same.
        words = split_list_text(node && node->is_string() ? std::string_view(node->as_string()->get())
                                                          : std::string_view(*text));
      } else {
        return type_error();
      }
      *static_cast<std::vector<std::string>*>(target) = std::move(words);
      return true;
    }
    case Kind::Users: {
      if (!node || !node->is_array()) return type_error();
      std::vector<ClientUser> users;
      bool ok = each_table(*node, origin + ": config key '" + key + "'", "a table with a name and a password", error,
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
          if (!user_value.is_string()) {
            // The value is not echoed: it may be a password.
            error = entry + ": '" + std::string(k) + "' expects a string, got " +
                    std::string(toml_type_name(user_value.type()));
            return false;
          }
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
      if (!ok) return false;
      *static_cast<std::vector<ClientUser>*>(target) = std::move(users);
      return true;
    }
    case Kind::Bool: {
      bool value = false;
      if (node && node->is_boolean()) {
        value = node->as_boolean()->get();
      } else if (const std::string* s = string_input(); s && parse_bool_text(*s, value)) {
        // "yes", "off"... from --set or the environment
      } else if (!node && text && parse_bool_text(*text, value)) {
        // --set cache.enabled=1 parses as a TOML integer; the text decides
      } else {
        return type_error();
      }
      *static_cast<bool*>(target) = value;
      return true;
    }
    case Kind::Rules: {
      if (!node || !node->is_array()) return type_error();
      std::vector<CacheRule> rules;
      bool ok = each_table(*node, origin + ": config key '" + key + "'", "a table with a pattern", error,
                           [&](const toml::table& table, const std::string& entry) {
        CacheRule rule;
        bool has_pattern = false;
        for (auto&& [rule_key, rule_value] : table) {
          std::string_view k = rule_key.str();
          if (k == "pattern" && rule_value.is_string()) {
            rule.pattern = rule_value.as_string()->get();
            has_pattern = true;
          } else if (k == "cache" && rule_value.is_boolean()) {
            rule.cache = rule_value.as_boolean()->get();
          } else if (k == "max_ttl_ms" && rule_value.is_integer()) {
            int64_t v = rule_value.as_integer()->get();
            if (v < 0 || v > INT_MAX) {
              error = entry + ": 'max_ttl_ms' must be between 0 and " + std::to_string(INT_MAX);
              return false;
            }
            rule.max_ttl_ms = static_cast<int>(v);
          } else if (k == "pattern" || k == "cache" || k == "max_ttl_ms") {
            error = entry + ": '" + std::string(k) + "' expects " +
                    (k == "pattern" ? "a string" : k == "cache" ? "a boolean" : "a non-negative integer") + ", got " +
                    std::string(toml_type_name(rule_value.type()));
            return false;
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
      if (!ok) return false;
      *static_cast<std::vector<CacheRule>*>(target) = std::move(rules);
      return true;
    }
  }
  return type_error();
}

// State shared by the loading steps.
struct Loader {
  Config cfg;                                  // the config being built
  std::map<std::string, std::string> origins;  // "table.key" -> where its current value came from

  // Message prefix naming a key and, when it was not a default, where it was set.
  std::string about(std::string_view key) const {
    std::string s = "config key '" + std::string(key) + "'";
    if (auto it = origins.find(std::string(key)); it != origins.end()) s += " (from " + it->second + ")";
    return s;
  }

  bool set(const Field& field, const toml::node* node, const std::string* text, const std::string& origin,
           std::string& error) {
    if (!apply_value(cfg, field, node, text, origin, error)) return false;
    origins[full_key(field)] = origin;
    return true;
  }

  bool set_text(std::string_view table, std::string_view name, const std::string& value,
                const std::string& origin, std::string& error) {
    return set(*find_field(table, name), nullptr, &value, origin, error);
  }
};

bool read_file(const std::string& path, std::string& content, std::string& error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    error = std::strerror(errno);
    return false;
  }
  content.clear();
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) content.append(buf, n);
  bool failed = std::ferror(f) != 0;
  int saved = errno;
  std::fclose(f);
  if (failed) {
    error = std::strerror(saved);
    return false;
  }
  return true;
}

bool load_file(Loader& loader, const std::string& path, std::string& error) {
  std::string content;
  std::string why;
  if (!read_file(path, content, why)) {
    error = "cannot read config file '" + path + "': " + why;
    return false;
  }
  toml::table doc;
  try {
    doc = toml::parse(content, path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    error = "config file '" + path + "' line " + std::to_string(where.line) + ", column " +
            std::to_string(where.column) + ": " + std::string(e.description());
    return false;
  }

  for (auto&& [table_key, table_node] : doc) {
    std::string_view table = table_key.str();
    if (!is_table_name(table)) {
      if (table_node.is_table()) {
        error = node_origin(path, table_node) + ": unknown config table '[" + std::string(table) +
                "]' (known tables: [server], [client], [upstream], [cache], [log])";
      } else {
        error = unknown_key_error("", table, node_origin(path, table_node));
      }
      return false;
    }
    const toml::table* entries = table_node.as_table();
    if (!entries) {
      error = node_origin(path, table_node) + ": config key '" + std::string(table) + "' must be the table [" +
              std::string(table) + "], got " + std::string(toml_type_name(table_node.type()));
      return false;
    }
    for (auto&& [key, value] : *entries) {
      const Field* field = find_field(table, key.str());
      if (!field) {
        error = unknown_key_error(table, key.str(), node_origin(path, value));
        return false;
      }
      if (!loader.set(*field, &value, nullptr, node_origin(path, value), error)) return false;
    }
  }
  return true;
}

bool apply_set(Loader& loader, const std::string& key, const std::string& raw, std::string& error) {
  const std::string origin = "--set " + key;
  auto dot = key.find('.');
  std::string_view table = dot == std::string::npos ? std::string_view(key) : std::string_view(key).substr(0, dot);
  std::string_view name = dot == std::string::npos ? std::string_view() : std::string_view(key).substr(dot + 1);
  if (dot == std::string::npos) {
    if (is_table_name(key)) {
      error = origin + ": '" + key + "' is a table; set one of its keys: --set " + key + ".KEY=VALUE";
    } else {
      error = unknown_key_error("", key, origin);
    }
    return false;
  }
  const Field* field = is_table_name(table) ? find_field(table, name) : nullptr;
  if (!field) {
    if (!is_table_name(table)) {
      error = origin + ": unknown config key '" + key + "'" + suggestion(table, name);
    } else {
      error = unknown_key_error(table, name, origin);
    }
    return false;
  }

  // Read the value as TOML when it is one ("10", "true", "\"text\""); otherwise it is
  // plain text. Multi-line input is always text, so a value cannot inject other keys.
  std::optional<toml::table> parsed;
  const toml::node* node = nullptr;
  if (!raw.empty() && raw.find_first_of("\r\n") == std::string::npos) {
    try {
      parsed = toml::parse("v = " + raw);
      if (parsed->size() == 1) node = parsed->get("v");
    } catch (const toml::parse_error&) {
      node = nullptr;
    }
  }
  return loader.set(*field, node, &raw, origin, error);
}

bool read_password_file(const std::string& path, std::string& password, std::string& error) {
  std::string content;
  std::string why;
  if (!read_file(path, content, why)) {
    error = "config key 'upstream.password_file': cannot read '" + path + "': " + why;
    return false;
  }
  auto nl = content.find('\n');
  if (nl != std::string::npos) content.resize(nl);
  if (!content.empty() && content.back() == '\r') content.pop_back();
  if (content.empty()) {
    error = "config key 'upstream.password_file': the first line of '" + path + "' is empty";
    return false;
  }
  password = std::move(content);
  return true;
}

std::string get_env(const Environment& env, const char* name) {
  if (!env.get) return {};
  const char* v = env.get(name);
  return v ? std::string(v) : std::string();
}

bool load_layers(const CliOptions& cli, const Environment& env, Loader& loader, std::string& error) {
  // 2. the file
  if (!cli.config_path.empty() && !load_file(loader, cli.config_path, error)) return false;

  // 3. the environment (the upstream password is applied after the URL is parsed)
  const std::string env_url = get_env(env, kEnvUpstreamUrl);
  const std::string env_level = get_env(env, kEnvLogLevel);
  const std::string env_password = get_env(env, kEnvUpstreamPassword);
  const std::string env_client_password = get_env(env, kEnvClientPassword);
  if (!env_url.empty() &&
      !loader.set_text("upstream", "url", env_url, std::string("environment variable ") + kEnvUpstreamUrl, error)) {
    return false;
  }
  if (!env_level.empty() &&
      !loader.set_text("log", "level", env_level, std::string("environment variable ") + kEnvLogLevel, error)) {
    return false;
  }
  if (!env_client_password.empty() &&
      !loader.set_text("client", "password", env_client_password,
                       std::string("environment variable ") + kEnvClientPassword, error)) {
    return false;
  }

  // 4. --set, in order
  for (const auto& [key, value] : cli.sets) {
    if (!apply_set(loader, key, value, error)) return false;
  }

  // 5. dedicated flags
  if (cli.listen && !loader.set_text("server", "listen", *cli.listen, "--listen", error)) return false;
  if (cli.upstream && !loader.set_text("upstream", "url", *cli.upstream, "--upstream", error)) return false;
  if (cli.log_level && !loader.set_text("log", "level", *cli.log_level, "--log-level", error)) return false;

  // 6. the upstream address and its password
  UpstreamConfig& up = loader.cfg.upstream;
  std::string why;
  if (!parse_upstream_url(up.url, up.address, why)) {
    error = loader.about("upstream.url") + ": " + why;
    return false;
  }
  if (!env_password.empty() && !up.password_file.empty()) {
    error = std::string("both ") + kEnvUpstreamPassword + " and " + loader.about("upstream.password_file") +
            " are set; use one of them for the upstream password";
    return false;
  }
  if (!up.password_file.empty()) {
    if (!read_password_file(up.password_file, up.address.password, error)) return false;
  } else if (!env_password.empty()) {
    up.address.password = env_password;
  }
  if (!up.address.username.empty() && up.address.password.empty()) {
    // The user name is not echoed: redis-cli reads "redis://word@host" as a password.
    error = loader.about("upstream.url") + ": names an ACL user but no password is given (put it in the URL "
            "as redis://user:password@host, or in " + kEnvUpstreamPassword + " or upstream.password_file)";
    return false;
  }

  // 7. validation
  return validate_config(loader.cfg, [&loader](std::string_view key) { return loader.about(key); }, error);
}

// TOML rendering for dump_config().
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

std::string render_rules(const std::vector<CacheRule>& rules) {
  std::string out = "[";
  for (size_t i = 0; i < rules.size(); ++i) {
    if (i > 0) out += ", ";
    out += "{ pattern = " + toml_quote(rules[i].pattern) + ", cache = " + (rules[i].cache ? "true" : "false") +
           ", max_ttl_ms = " + std::to_string(rules[i].max_ttl_ms) + " }";
  }
  out += ']';
  return out;
}

std::string render_bytes(size_t n) {
  constexpr size_t kKb = 1024, kMb = kKb * 1024, kGb = kMb * 1024;
  if (n != 0 && n % kGb == 0) return "\"" + std::to_string(n / kGb) + "gb\"";
  if (n != 0 && n % kMb == 0) return "\"" + std::to_string(n / kMb) + "mb\"";
  if (n != 0 && n % kKb == 0) return "\"" + std::to_string(n / kKb) + "kb\"";
  return std::to_string(n);
}

}  // namespace

bool load_config(const CliOptions& cli, const Environment& env, Config& out, std::string& error) {
  try {
    Loader loader;
    if (!load_layers(cli, env, loader, error)) return false;
    out = std::move(loader.cfg);
    return true;
  } catch (const std::exception& e) {
    error = std::string("cannot load the configuration: ") + e.what();
  } catch (...) {
    error = "cannot load the configuration: unexpected error";
  }
  return false;
}

std::string dump_config(const Config& config) {
  Config copy = config;  // members are reached through the non-const accessors
  std::string out;
  std::string_view table;
  for (const auto& f : kFields) {
    if (f.table != table) {
      if (!table.empty()) out += '\n';
      table = f.table;
      // Appended piecewise: GCC 12 gives a false -Wrestrict on "[" + std::string(...).
      out += '[';
      out += table;
      out += "]\n";
    }
    out += std::string(f.name) + " = ";
    void* p = f.member(copy);
    if (f.table == "upstream" && f.name == "url") {
      out += toml_quote(redact_url(copy.upstream.address));
    } else {
      switch (f.kind) {
        case Kind::String: out += toml_quote(*static_cast<std::string*>(p)); break;
        case Kind::Int: out += std::to_string(*static_cast<int*>(p)); break;
        case Kind::Count: out += std::to_string(*static_cast<size_t*>(p)); break;
        case Kind::Bytes: out += render_bytes(*static_cast<size_t*>(p)); break;
        case Kind::Mode: {
          char buf[16];
          std::snprintf(buf, sizeof buf, "\"%04o\"", static_cast<unsigned>(*static_cast<int*>(p)));
          out += buf;
          break;
        }
        case Kind::Secret: out += static_cast<std::string*>(p)->empty() ? "\"\"" : "\"***\""; break;
        case Kind::Words: out += render_words(*static_cast<std::vector<std::string>*>(p)); break;
        case Kind::Users: out += render_users(*static_cast<std::vector<ClientUser>*>(p)); break;
        case Kind::Bool: out += *static_cast<bool*>(p) ? "true" : "false"; break;
        case Kind::Rules: out += render_rules(*static_cast<std::vector<CacheRule>*>(p)); break;
      }
    }
    out += '\n';
  }
  return out;
}

std::vector<std::string> known_config_keys() {
  std::vector<std::string> keys;
  for (const auto& f : kFields) keys.push_back(full_key(f));
  return keys;
}

}  // namespace respite::config
