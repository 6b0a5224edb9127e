// Config loading: layers defaults, the TOML file, the environment and the command line
// into a Config, then validates it (config_validate.cpp). Only this file and
// config_tables.cpp (arrays of tables) include toml++; every toml++ exception is caught
// here and turned into an error string.
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

#include "config/config_tables.h"
#include "config/config_validate.h"
#include "config/upstream_url.h"

namespace respite::config {
namespace {

using detail::render_cache_rules;
using detail::render_limit_classes;
using detail::render_limit_rules;
using detail::render_users;
using detail::render_words;
using detail::toml_quote;
using detail::toml_type_name;

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
  LimitClasses,  // std::vector<RateLimitClass>; TOML array of tables { name, commands }
  LimitRules,    // std::vector<RateLimitRule>; TOML array of tables { name, rate, ... }
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
template <> struct KindType<Kind::LimitClasses> { using type = std::vector<RateLimitClass>; };
template <> struct KindType<Kind::LimitRules> { using type = std::vector<RateLimitRule>; };

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
    RESPITE_FIELD(server, drain_timeout_ms, Kind::Int),
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
    RESPITE_FIELD(ratelimit, enabled, Kind::Bool),
    RESPITE_FIELD(ratelimit, exempt, Kind::Words),
    RESPITE_FIELD(ratelimit, max_delayed, Kind::Count),
    RESPITE_FIELD(ratelimit, classes, Kind::LimitClasses),
    RESPITE_FIELD(ratelimit, rules, Kind::LimitRules),
    RESPITE_FIELD(admin, listen, Kind::String),
    RESPITE_FIELD(admin, users, Kind::Words),
    RESPITE_FIELD(fallback, mode, Kind::String),
    RESPITE_FIELD(fallback, data_dir, Kind::String),
    RESPITE_FIELD(fallback, journal_file, Kind::String),
    RESPITE_FIELD(fallback, dead_letter_file, Kind::String),
    RESPITE_FIELD(fallback, fsync, Kind::String),
    RESPITE_FIELD(fallback, max_memory, Kind::Bytes),
    RESPITE_FIELD(fallback, max_journal_bytes, Kind::Bytes),
    RESPITE_FIELD(fallback, stale_max_age_ms, Kind::Int),
    RESPITE_FIELD(fallback, miss, Kind::String),
    RESPITE_FIELD(fallback, breaker_failures, Kind::Int),
    RESPITE_FIELD(fallback, breaker_open_ms, Kind::Int),
    RESPITE_FIELD(fallback, breaker_open_max_ms, Kind::Int),
    RESPITE_FIELD(fallback, replay_batch, Kind::Count),
    RESPITE_FIELD(log, level, Kind::String),
};

#undef RESPITE_FIELD

constexpr std::string_view kTables[] = {"server", "client", "upstream", "cache", "ratelimit", "admin", "fallback", "log"};

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
    case Kind::LimitClasses: return "an array of tables with a name and commands ([[ratelimit.classes]])";
    case Kind::LimitRules: return "an array of tables with a name and a rate ([[ratelimit.rules]])";
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
    case Kind::Users:
      if (!node || !node->is_array()) return type_error();
      return detail::read_users(*node, origin + ": config key '" + key + "'",
                                *static_cast<std::vector<ClientUser>*>(target), error);
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
    case Kind::Rules:
      if (!node || !node->is_array()) return type_error();
      return detail::read_cache_rules(*node, origin + ": config key '" + key + "'",
                                      *static_cast<std::vector<CacheRule>*>(target), error);
    case Kind::LimitClasses:
      if (!node || !node->is_array()) return type_error();
      return detail::read_limit_classes(*node, origin + ": config key '" + key + "'",
                                        *static_cast<std::vector<RateLimitClass>*>(target), error);
    case Kind::LimitRules:
      if (!node || !node->is_array()) return type_error();
      return detail::read_limit_rules(*node, origin + ": config key '" + key + "'",
                                      *static_cast<std::vector<RateLimitRule>*>(target), error);
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
                "]' (known tables: [server], [client], [upstream], [cache], [ratelimit], [admin], [fallback], [log])";
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
  if (cli.admin && !loader.set_text("admin", "listen", *cli.admin, "--admin", error)) return false;
  if (cli.data_dir && !loader.set_text("fallback", "data_dir", *cli.data_dir, "--data-dir", error)) return false;
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

namespace {

// One setting's value as TOML text (secrets as "***", the URL without its password).
std::string render_value(Config& copy, const Field& f) {
  void* p = f.member(copy);
  if (f.table == "upstream" && f.name == "url") return toml_quote(redact_url(copy.upstream.address));
  switch (f.kind) {
    case Kind::String: return toml_quote(*static_cast<std::string*>(p));
    case Kind::Int: return std::to_string(*static_cast<int*>(p));
    case Kind::Count: return std::to_string(*static_cast<size_t*>(p));
    case Kind::Bytes: return render_bytes(*static_cast<size_t*>(p));
    case Kind::Mode: {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\"%04o\"", static_cast<unsigned>(*static_cast<int*>(p)));
      return buf;
    }
    case Kind::Secret: return static_cast<std::string*>(p)->empty() ? "\"\"" : "\"***\"";
    case Kind::Words: return render_words(*static_cast<std::vector<std::string>*>(p));
    case Kind::Users: return render_users(*static_cast<std::vector<ClientUser>*>(p));
    case Kind::Bool: return *static_cast<bool*>(p) ? "true" : "false";
    case Kind::Rules: return render_cache_rules(*static_cast<std::vector<CacheRule>*>(p));
    case Kind::LimitClasses: return render_limit_classes(*static_cast<std::vector<RateLimitClass>*>(p));
    case Kind::LimitRules: return render_limit_rules(*static_cast<std::vector<RateLimitRule>*>(p));
  }
  return {};
}

}  // namespace

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
    out += std::string(f.name) + " = " + render_value(copy, f) + '\n';
  }
  return out;
}

std::vector<std::string> changed_config_keys(const Config& before, const Config& after) {
  Config a = before, b = after;
  std::vector<std::string> keys;
  for (const auto& f : kFields) {
    // Secrets render alike whatever they are: compare them directly.
    bool differ = f.kind == Kind::Secret ? *static_cast<std::string*>(f.member(a)) != *static_cast<std::string*>(f.member(b))
                                         : render_value(a, f) != render_value(b, f);
    if (f.table == "upstream" && f.name == "url") differ = differ || a.upstream.address.password != b.upstream.address.password;
    if (f.kind == Kind::Users) differ = *static_cast<std::vector<ClientUser>*>(f.member(a)) != *static_cast<std::vector<ClientUser>*>(f.member(b));
    if (differ) keys.push_back(full_key(f));
  }
  return keys;
}

bool reloads_live(std::string_view key) {
  // Kept in step with what the Reloader in src/app/main.cpp applies.
  static constexpr std::string_view kLive[] = {"log.level",          "client.deny_commands", "admin.users",
                                               "cache.rules",        "cache.max_ttl_ms",     "cache.memory_bytes",
                                               "cache.max_value_bytes"};
  return key.substr(0, 10) == "ratelimit." || std::find(std::begin(kLive), std::end(kLive), key) != std::end(kLive);
}

std::string default_config_report() {
  Config defaults;
  std::string out =
      "# respite's built-in defaults (respite --print-default-config). \"reload: live\": a new\n"
      "# value is applied on SIGHUP; \"reload: restart\": it takes a restart.\n";
  std::string_view table;
  for (const auto& f : kFields) {
    if (f.table != table) {
      table = f.table;
      out += '\n';
      out += '[';
      out += table;
      out += "]\n";
    }
    const std::string key = full_key(f);
    out += std::string(f.name) + " = " + render_value(defaults, f) + "  # reload: " +
           (reloads_live(key) ? "live" : "restart") + "\n";
  }
  return out;
}

std::vector<std::string> known_config_keys() {
  std::vector<std::string> keys;
  for (const auto& f : kFields) keys.push_back(full_key(f));
  return keys;
}

}  // namespace respite::config
