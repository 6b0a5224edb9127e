// Policy: what a request means to the near-cache, decided from the command table once per
// command (read that may be cached, write of known keys, write of unknown keys, flush), and
// the key rules of the config (which keys are cached, and for how long).
//
// Cached commands are the table's read-only, deterministic (no `nondeterministic_output`
// tip), non-blocking, single-key commands whose key spec only reads (GET, HGET, LRANGE,
// ZRANGE, SMEMBERS...), plus EXISTS with one key; MEMORY USAGE and XINFO are left out (their
// answers change without a write). MGET and HMGET are served piecewise from GET and HGET
// entries.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cmd/command_policy.h"
#include "config/config.h"

namespace respite::cache {

enum class Role : uint8_t {
  None,          // neither served from the cache nor changes keys (connection, server, other reads)
  Read,          // a cacheable read of the key at args[1]
  MultiGet,      // MGET k...: each key's GET entry
  HashMultiGet,  // HMGET k f...: each field's HGET entry
  Write,         // writes keys the table names: invalidated before sending and at the reply
  WriteUnknown,  // may write keys respite cannot know (scripts, functions, unknown commands)
  Flush,         // FLUSHALL, FLUSHDB, SWAPDB: every entry goes
};

class Policy {
 public:
  Policy(const cmd::CommandTable& table, const config::CacheConfig& cfg);

  // The role of a classified request (`args` is the whole request).
  Role role(const cmd::Decision& d, std::span<const std::string_view> args) const;
  // How long entries of this key may live, in ms; 0: the key is not cached (a rule says so,
  // or BCAST mode does not track it).
  uint64_t ttl_ms(std::string_view key) const;
  // A reload: new key rules and cap (the caller flushes what the old ones admitted).
  void set_rules(const std::vector<config::CacheRule>& rules, uint64_t max_ttl_ms) {
    rules_ = rules;
    max_ttl_ms_ = max_ttl_ms;
  }
  // Appends the positions of the keys of a Write to `out`; false if they cannot be known.
  bool write_keys(const cmd::Decision& d, std::span<const std::string_view> args, std::vector<size_t>& out) const;
  // Names of the cached commands (docs, tests).
  std::vector<std::string> cached_commands() const;

 private:
  const cmd::CommandTable& table_;
  std::vector<Role> roles_;             // by command table position
  std::vector<config::CacheRule> rules_;
  std::vector<std::string> prefixes_;   // BCAST prefixes (empty: every key)
  bool bcast_ = false;
  uint64_t max_ttl_ms_;
};

}  // namespace respite::cache
