// CommandTable: every Redis command and subcommand (name, arity, flags, ACL categories, key
// positions), loaded from proto/commands.tsv, which is generated from a real redis-server's
// COMMAND output (proto/gen_command_table.py) and compiled into the binary.
//
// Lookups do not allocate: names are lowercased into a stack buffer and looked up in a map
// built once. A command that is not in the table (find() returns nullptr) should be treated
// as a write whose keys are unknown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace respite::cmd {

// Command flags as Redis 7.0 reports them in COMMAND (one bit each).
enum class CommandFlag : uint32_t {
  Write = 1u << 0,
  Readonly = 1u << 1,
  Denyoom = 1u << 2,
  Module = 1u << 3,
  Admin = 1u << 4,
  Pubsub = 1u << 5,
  Noscript = 1u << 6,
  Blocking = 1u << 7,
  Loading = 1u << 8,
  Stale = 1u << 9,
  SkipMonitor = 1u << 10,
  SkipSlowlog = 1u << 11,
  Asking = 1u << 12,
  Fast = 1u << 13,
  NoAuth = 1u << 14,
  MayReplicate = 1u << 15,
  NoMandatoryKeys = 1u << 16,
  NoAsyncLoading = 1u << 17,
  NoMulti = 1u << 18,
  Movablekeys = 1u << 19,
  AllowBusy = 1u << 20,
};

// ACL categories (without the '@'), one bit each.
enum class AclCategory : uint32_t {
  Keyspace = 1u << 0,
  Read = 1u << 1,
  Write = 1u << 2,
  Set = 1u << 3,
  Sortedset = 1u << 4,
  List = 1u << 5,
  Hash = 1u << 6,
  String = 1u << 7,
  Bitmap = 1u << 8,
  Hyperloglog = 1u << 9,
  Geo = 1u << 10,
  Stream = 1u << 11,
  Pubsub = 1u << 12,
  Admin = 1u << 13,
  Fast = 1u << 14,
  Slow = 1u << 15,
  Blocking = 1u << 16,
  Dangerous = 1u << 17,
  Connection = 1u << 18,
  Transaction = 1u << 19,
  Scripting = 1u << 20,
};

// Key-spec flags (how a key is accessed), one bit each.
enum class KeySpecFlag : uint16_t {
  RO = 1u << 0,          // read only
  RW = 1u << 1,          // read and modified
  OW = 1u << 2,          // overwritten without being read
  RM = 1u << 3,          // deleted
  Access = 1u << 4,      // the value is returned or used
  Update = 1u << 5,      // the value is updated
  Insert = 1u << 6,      // data is added
  Delete = 1u << 7,      // data is removed
  NotKey = 1u << 8,      // not a key (e.g. a shard channel); extract_keys skips it
  Incomplete = 1u << 9,  // may miss keys: a special case decides (MIGRATE)
  VariableFlags = 1u << 10,  // flags depend on the arguments (SET ... GET)
};

// Command tips that matter to respite (COMMAND's "tips"; the others are for cluster clients).
enum class CommandTip : uint8_t {
  NondeterministicOutput = 1u << 0,       // two calls on the same data may answer differently (TTL, SRANDMEMBER)
  NondeterministicOutputOrder = 1u << 1,  // the same elements, in an order that may differ (SMEMBERS)
};

// One key specification: where the search for keys begins, then how keys are found from there.
// Positions count from the command name at 0 (also for subcommands).
struct KeySpec {
  enum class Begin : uint8_t { Index, Keyword, Unknown };
  enum class Find : uint8_t { Range, KeyNum, Unknown };

  Begin begin = Begin::Unknown;  // how the first position is found
  int begin_index = 0;           // Index: the first position
  std::string keyword;           // Keyword: the keys start after this argument (uppercase)
  int keyword_from = 0;          // Keyword: search from here (< 0: from argc+this, backwards)
  Find find = Find::Unknown;     // how the keys are found from the first position
  int range_last = 0;            // Range: last key, relative to first (>= 0) or to argc (< 0)
  int range_step = 1;            // Range: distance between keys
  int range_limit = 0;           // Range with range_last -1: keys are 1/limit of the rest
  int keynum_index = 0;          // KeyNum: numkeys argument, relative to the first position
  int keynum_first = 0;          // KeyNum: first key, relative to the first position
  int keynum_step = 1;           // KeyNum: distance between keys
  uint16_t flags = 0;            // KeySpecFlag bits
  bool has(KeySpecFlag f) const { return (flags & static_cast<uint16_t>(f)) != 0; }
};

struct CommandInfo {
  // How extract_keys finds this command's keys (derived when the table is loaded).
  enum class KeysBy : uint8_t { None, Specs, Legacy, Sort, SortRo, Migrate, Unknown };

  std::string name;               // lowercase; "parent|sub" for a subcommand
  int arity = 0;                  // argc including the name: N exactly, or -N at least N
  uint32_t flags = 0;             // CommandFlag bits
  int first_key = 0;              // legacy key range: first key position (0: no keys)
  int last_key = 0;               // legacy: last key position (< 0: counted from argc)
  int key_step = 0;               // legacy: distance between keys
  uint32_t acl = 0;               // AclCategory bits
  std::vector<KeySpec> key_specs; // Redis 7 key specifications, in Redis's order
  uint8_t tips = 0;               // CommandTip bits
  bool container = false;         // has subcommands ("client", "config"...)
  KeysBy keys_by = KeysBy::None;  // strategy for extract_keys
  uint32_t index = 0;             // position in CommandTable::commands() (per-command tables elsewhere)

  bool has(CommandFlag f) const { return (flags & static_cast<uint32_t>(f)) != 0; }
  bool in(AclCategory c) const { return (acl & static_cast<uint32_t>(c)) != 0; }
  bool has(CommandTip t) const { return (tips & static_cast<uint8_t>(t)) != 0; }
  // Whether a request of `argc` arguments (name included) satisfies the arity.
  bool arity_ok(size_t argc) const {
    return arity >= 0 ? argc == static_cast<size_t>(arity) : argc >= static_cast<size_t>(-arity);
  }
};

class CommandTable {
 public:
  // The table compiled into the binary from proto/commands.tsv, parsed on first use.
  static const CommandTable& builtin();

  // Parses the TSV format of proto/commands.tsv. Throws std::invalid_argument (with the line
  // number) on a malformed line. Unknown flag or category names are ignored.
  static CommandTable parse(std::string_view tsv);

  CommandTable(CommandTable&&) = default;
  CommandTable& operator=(CommandTable&&) = default;
  CommandTable(const CommandTable&) = delete;
  CommandTable& operator=(const CommandTable&) = delete;

  // A command or subcommand by name, any case ("get", "CLIENT|kill"); nullptr if unknown.
  const CommandInfo* find(std::string_view name) const;
  // The command of a request (args[0] is the name): for a container command with a known
  // subcommand in args[1], the subcommand's entry ("CLIENT KILL" -> client|kill); with an
  // unknown or missing subcommand, the container's entry. nullptr if args[0] is unknown.
  const CommandInfo* find(std::span<const std::string_view> args) const;

  // Appends to `key_indexes` the positions in `args` (the whole request, name included) of
  // the keys `info` would access. False, with `key_indexes` unchanged, when the keys cannot be
  // determined: wrong arity, malformed numkeys, a missing or unbalanced key list, a SORT
  // syntax error, or a command whose keys Redis itself cannot know from its specs.
  bool extract_keys(const CommandInfo& info, std::span<const std::string_view> args,
                    std::vector<size_t>& key_indexes) const;

  size_t size() const { return commands_.size(); }
  const std::vector<CommandInfo>& commands() const { return commands_; }
  // The Redis version named in the TSV header ("" if none).
  const std::string& redis_version() const { return redis_version_; }

 private:
  CommandTable() = default;

  std::vector<CommandInfo> commands_;  // all entries; never resized after parse
  std::unordered_map<std::string_view, const CommandInfo*> by_name_;  // keys view commands_
  std::string redis_version_;          // from the header comment
};

}  // namespace respite::cmd
