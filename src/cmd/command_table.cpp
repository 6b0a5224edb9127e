#include "cmd/command_table.h"

#include <array>
#include <limits>
#include <stdexcept>

#include "cmd/command_policy.h"  // iequals
#include "core/parse.h"

// Defined in the source CMake generates from proto/commands.tsv.
namespace respite::cmd::embedded {
extern const unsigned char kCommandsTsv[];
extern const size_t kCommandsTsvSize;
}  // namespace respite::cmd::embedded

namespace respite::cmd {
namespace {

// Longest name (command, or "parent|sub") that lookups consider; Redis's longest is 23.
constexpr size_t kMaxName = 64;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Lowercases `in` into `buf` at `pos`; false if it does not fit.
bool append_lower(std::array<char, kMaxName>& buf, size_t& pos, std::string_view in) {
  if (in.size() > buf.size() - pos) return false;
  for (char c : in) buf[pos++] = lower(c);
  return true;
}

template <typename Enum>
struct Named {
  std::string_view name;
  Enum bit;
};

constexpr Named<CommandFlag> kFlagNames[] = {
    {"write", CommandFlag::Write},
    {"readonly", CommandFlag::Readonly},
    {"denyoom", CommandFlag::Denyoom},
    {"module", CommandFlag::Module},
    {"admin", CommandFlag::Admin},
    {"pubsub", CommandFlag::Pubsub},
    {"noscript", CommandFlag::Noscript},
    {"blocking", CommandFlag::Blocking},
    {"loading", CommandFlag::Loading},
    {"stale", CommandFlag::Stale},
    {"skip_monitor", CommandFlag::SkipMonitor},
    {"skip_slowlog", CommandFlag::SkipSlowlog},
    {"asking", CommandFlag::Asking},
    {"fast", CommandFlag::Fast},
    {"no_auth", CommandFlag::NoAuth},
    {"may_replicate", CommandFlag::MayReplicate},
    {"no_mandatory_keys", CommandFlag::NoMandatoryKeys},
    {"no_async_loading", CommandFlag::NoAsyncLoading},
    {"no_multi", CommandFlag::NoMulti},
    {"movablekeys", CommandFlag::Movablekeys},
    {"allow_busy", CommandFlag::AllowBusy},
};

constexpr Named<AclCategory> kAclNames[] = {
    {"keyspace", AclCategory::Keyspace},       {"read", AclCategory::Read},
    {"write", AclCategory::Write},             {"set", AclCategory::Set},
    {"sortedset", AclCategory::Sortedset},     {"list", AclCategory::List},
    {"hash", AclCategory::Hash},               {"string", AclCategory::String},
    {"bitmap", AclCategory::Bitmap},           {"hyperloglog", AclCategory::Hyperloglog},
    {"geo", AclCategory::Geo},                 {"stream", AclCategory::Stream},
    {"pubsub", AclCategory::Pubsub},           {"admin", AclCategory::Admin},
    {"fast", AclCategory::Fast},               {"slow", AclCategory::Slow},
    {"blocking", AclCategory::Blocking},       {"dangerous", AclCategory::Dangerous},
    {"connection", AclCategory::Connection},   {"transaction", AclCategory::Transaction},
    {"scripting", AclCategory::Scripting},
};

constexpr Named<KeySpecFlag> kKeySpecFlagNames[] = {
    {"RO", KeySpecFlag::RO},
    {"RW", KeySpecFlag::RW},
    {"OW", KeySpecFlag::OW},
    {"RM", KeySpecFlag::RM},
    {"access", KeySpecFlag::Access},
    {"update", KeySpecFlag::Update},
    {"insert", KeySpecFlag::Insert},
    {"delete", KeySpecFlag::Delete},
    {"not_key", KeySpecFlag::NotKey},
    {"incomplete", KeySpecFlag::Incomplete},
    {"variable_flags", KeySpecFlag::VariableFlags},
};

// Splits `s` at every `sep` (an empty `s` gives one empty field).
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

// "a,b,c" (or "-" for none) -> OR of the named bits; unknown names are ignored.
template <typename Bits, typename Enum, size_t N>
Bits parse_bits(std::string_view list, const Named<Enum> (&names)[N]) {
  Bits bits = 0;
  if (list == "-") return bits;
  for (std::string_view item : split(list, ',')) {
    for (const auto& n : names) {
      if (n.name == item) bits = static_cast<Bits>(bits | static_cast<Bits>(n.bit));
    }
  }
  return bits;
}

bool parse_int(std::string_view s, long long& out) { return core::parse_integer(s, out); }

int to_int(std::string_view s, size_t line) {
  long long v = 0;
  if (!parse_int(s, v) || v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
    throw std::invalid_argument("commands.tsv line " + std::to_string(line) + ": bad integer '" +
                                std::string(s) + "'");
  }
  return static_cast<int>(v);
}

// "<begin>/<find>/<flags>", see proto/README.md.
KeySpec parse_spec(std::string_view text, size_t line) {
  auto fail = [&]() -> KeySpec {
    throw std::invalid_argument("commands.tsv line " + std::to_string(line) + ": bad key spec '" +
                                std::string(text) + "'");
  };
  std::vector<std::string_view> parts = split(text, '/');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty()) return fail();
  KeySpec spec;
  std::string_view begin = parts[0];
  if (begin[0] == 'i') {
    spec.begin = KeySpec::Begin::Index;
    spec.begin_index = to_int(begin.substr(1), line);
  } else if (begin[0] == 'k') {
    std::vector<std::string_view> kw = split(begin.substr(1), ',');
    if (kw.size() != 2 || kw[0].empty()) return fail();
    spec.begin = KeySpec::Begin::Keyword;
    spec.keyword = std::string(kw[0]);
    spec.keyword_from = to_int(kw[1], line);
  } else if (begin != "u") {
    return fail();
  }
  std::string_view find = parts[1];
  if (find[0] == 'r' || find[0] == 'n') {
    std::vector<std::string_view> nums = split(find.substr(1), ',');
    if (nums.size() != 3) return fail();
    int a = to_int(nums[0], line), b = to_int(nums[1], line), c = to_int(nums[2], line);
    if (find[0] == 'r') {
      spec.find = KeySpec::Find::Range;
      spec.range_last = a;
      spec.range_step = b;
      spec.range_limit = c;
      if (b <= 0 || c < 0 || (c > 1 && a != -1)) return fail();
    } else {
      spec.find = KeySpec::Find::KeyNum;
      spec.keynum_index = a;
      spec.keynum_first = b;
      spec.keynum_step = c;
      if (a < 0 || b < 0 || c <= 0) return fail();
    }
  } else if (find != "u") {
    return fail();
  }
  spec.flags = parse_bits<uint16_t>(parts[2], kKeySpecFlagNames);
  return spec;
}

// Chooses how extract_keys finds the command's keys.
CommandInfo::KeysBy keys_strategy(const CommandInfo& c) {
  bool resolvable = !c.key_specs.empty();
  for (const KeySpec& s : c.key_specs) {
    if (s.begin == KeySpec::Begin::Unknown || s.find == KeySpec::Find::Unknown ||
        s.has(KeySpecFlag::Incomplete)) {
      resolvable = false;
    }
  }
  if (resolvable) return CommandInfo::KeysBy::Specs;
  // Redis resolves these with hand-written code (sortGetKeys, migrateGetKeys...).
  if (c.name == "sort") return CommandInfo::KeysBy::Sort;
  if (c.name == "sort_ro") return CommandInfo::KeysBy::SortRo;
  if (c.name == "migrate") return CommandInfo::KeysBy::Migrate;
  if (!c.key_specs.empty()) return CommandInfo::KeysBy::Unknown;
  return c.first_key > 0 ? CommandInfo::KeysBy::Legacy : CommandInfo::KeysBy::None;
}

// Keys of one resolvable spec, following Redis's getKeysUsingKeySpecs (db.c) but stricter:
// false for a numkeys that is not a non-negative integer, for keys past the end, and for a
// key list that does not divide evenly (XREAD STREAMS with an odd count). numkeys 0 gives
// no keys.
bool spec_keys(const KeySpec& spec, std::span<const std::string_view> args,
               std::vector<size_t>& out) {
  const long long argc = static_cast<long long>(args.size());
  long long first = 0;
  if (spec.begin == KeySpec::Begin::Index) {
    first = spec.begin_index;
  } else {
    // The keyword is never the last argument (a key must follow it).
    if (spec.keyword_from > 0) {
      for (long long i = spec.keyword_from; i < argc - 1; ++i) {
        if (iequals(args[static_cast<size_t>(i)], spec.keyword)) {
          first = i + 1;
          break;
        }
      }
    } else {
      for (long long i = argc + spec.keyword_from; i >= 1; --i) {
        if (i < argc && iequals(args[static_cast<size_t>(i)], spec.keyword)) {
          first = i + 1;
          break;
        }
      }
    }
    if (first == 0) return true;  // keyword absent: this spec has no keys
  }

  long long last = 0;
  long long step = 1;
  if (spec.find == KeySpec::Find::Range) {
    step = spec.range_step;
    if (spec.range_last >= 0) {
      last = first + spec.range_last;
    } else if (spec.range_limit <= 1) {
      last = argc + spec.range_last;
    } else {
      long long rest = argc - first;
      if (rest % spec.range_limit != 0) return false;
      last = first + rest / spec.range_limit - 1;
    }
  } else {
    long long numkeys_at = first + spec.keynum_index;
    long long numkeys = 0;
    if (numkeys_at >= argc || !parse_int(args[static_cast<size_t>(numkeys_at)], numkeys) ||
        numkeys < 0 || numkeys > argc) {
      return false;
    }
    step = spec.keynum_step;
    first += spec.keynum_first;
    if (numkeys == 0) return true;
    last = first + (numkeys - 1) * step;
  }
  if (first >= argc || last >= argc || last < first) return false;
  for (long long i = first; i <= last; i += step) out.push_back(static_cast<size_t>(i));
  return true;
}

// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
// [STORE destination]: the key, then the last STORE's destination (as sortCommand parses).
bool sort_keys(std::span<const std::string_view> args, bool store_allowed,
               std::vector<size_t>& out) {
  size_t store = 0;
  for (size_t i = 2; i < args.size(); ++i) {
    size_t left = args.size() - i - 1;
    std::string_view a = args[i];
    if (iequals(a, "asc") || iequals(a, "desc") || iequals(a, "alpha")) continue;
    if (iequals(a, "limit") && left >= 2) {
      i += 2;
    } else if ((iequals(a, "by") || iequals(a, "get")) && left >= 1) {
      i += 1;
    } else if (store_allowed && iequals(a, "store") && left >= 1) {
      store = ++i;
    } else {
      return false;  // syntax error: Redis replies with an error and touches nothing
    }
  }
  out.push_back(1);
  if (store != 0) out.push_back(store);
  return true;
}

// MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw] [AUTH2 user pw]
// [KEYS key...]: as Redis's migrateGetKeys.
bool migrate_keys(std::span<const std::string_view> args, std::vector<size_t>& out) {
  for (size_t i = 6; i < args.size(); ++i) {
    if (iequals(args[i], "keys")) {
      if (!args[3].empty() || i + 1 >= args.size()) return false;
      for (size_t k = i + 1; k < args.size(); ++k) out.push_back(k);
      return true;
    }
    if (iequals(args[i], "auth")) {
      i += 1;
    } else if (iequals(args[i], "auth2")) {
      i += 2;
    }
  }
  out.push_back(3);
  return true;
}

}  // namespace

const CommandTable& CommandTable::builtin() {
  static const CommandTable table = parse(std::string_view(
      reinterpret_cast<const char*>(embedded::kCommandsTsv), embedded::kCommandsTsvSize));
  return table;
}

CommandTable CommandTable::parse(std::string_view tsv) {
  CommandTable t;
  size_t line_no = 0;
  for (std::string_view line : split(tsv, '\n')) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line[0] == '#') {
      constexpr std::string_view kMark = "redis-server ";
      size_t at = line.find(kMark);
      if (t.redis_version_.empty() && at != std::string_view::npos) {
        std::string_view rest = line.substr(at + kMark.size());
        t.redis_version_ = std::string(rest.substr(0, rest.find(' ')));
      }
      continue;
    }
    std::vector<std::string_view> f = split(line, '\t');
    if ((f.size() != 8 && f.size() != 9) || f[0].empty()) {
      throw std::invalid_argument("commands.tsv line " + std::to_string(line_no) +
                                  ": expected 8 or 9 tab-separated fields");
    }
    CommandInfo c;
    c.name.reserve(f[0].size());
    for (char ch : f[0]) c.name.push_back(lower(ch));
    c.arity = to_int(f[1], line_no);
    c.flags = parse_bits<uint32_t>(f[2], kFlagNames);
    c.first_key = to_int(f[3], line_no);
    c.last_key = to_int(f[4], line_no);
    c.key_step = to_int(f[5], line_no);
    c.acl = parse_bits<uint32_t>(f[6], kAclNames);
    if (f[7] != "-") {
      for (std::string_view spec : split(f[7], ';')) c.key_specs.push_back(parse_spec(spec, line_no));
    }
    if (c.name.size() > kMaxName || c.arity == 0 || (c.first_key > 0 && c.key_step <= 0)) {
      throw std::invalid_argument("commands.tsv line " + std::to_string(line_no) +
                                  ": bad name, arity or key range");
    }
    if (f.size() == 9) {
      for (std::string_view tip : split(f[8], ',')) {
        if (tip == "nondeterministic_output") c.tips |= static_cast<uint8_t>(CommandTip::NondeterministicOutput);
        if (tip == "nondeterministic_output_order")
          c.tips |= static_cast<uint8_t>(CommandTip::NondeterministicOutputOrder);
      }
    }
    c.keys_by = keys_strategy(c);
    c.index = static_cast<uint32_t>(t.commands_.size());
    t.commands_.push_back(std::move(c));
  }
  // commands_ is complete: the map's keys may now view its names.
  t.by_name_.reserve(t.commands_.size());
  for (const CommandInfo& c : t.commands_) {
    if (!t.by_name_.emplace(c.name, &c).second) {
      throw std::invalid_argument("commands.tsv: duplicate command '" + c.name + "'");
    }
  }
  for (CommandInfo& c : t.commands_) {
    size_t bar = c.name.find('|');
    if (bar == std::string::npos) continue;
    auto parent = t.by_name_.find(std::string_view(c.name).substr(0, bar));
    if (parent == t.by_name_.end()) {
      throw std::invalid_argument("commands.tsv: subcommand '" + c.name + "' has no parent");
    }
    t.commands_[static_cast<size_t>(parent->second - t.commands_.data())].container = true;
  }
  return t;
}

const CommandInfo* CommandTable::find(std::string_view name) const {
  std::array<char, kMaxName> buf;
  size_t len = 0;
  if (!append_lower(buf, len, name)) return nullptr;
  auto it = by_name_.find(std::string_view(buf.data(), len));
  return it == by_name_.end() ? nullptr : it->second;
}

const CommandInfo* CommandTable::find(std::span<const std::string_view> args) const {
  // "CONFIG|GET" is not a command a client can send (Redis: unknown command).
  if (args.empty() || args[0].find('|') != std::string_view::npos) return nullptr;
  const CommandInfo* cmd = find(args[0]);
  if (cmd == nullptr || !cmd->container || args.size() < 2) return cmd;
  std::array<char, kMaxName> buf;
  size_t len = 0;
  if (!append_lower(buf, len, cmd->name) || !append_lower(buf, len, "|") ||
      !append_lower(buf, len, args[1])) {
    return cmd;
  }
  auto it = by_name_.find(std::string_view(buf.data(), len));
  return it == by_name_.end() ? cmd : it->second;
}

bool CommandTable::extract_keys(const CommandInfo& info, std::span<const std::string_view> args,
                                std::vector<size_t>& key_indexes) const {
  if (!info.arity_ok(args.size())) return false;
  const size_t before = key_indexes.size();
  bool ok = true;
  switch (info.keys_by) {
    case CommandInfo::KeysBy::None:
      break;
    case CommandInfo::KeysBy::Specs:
      for (const KeySpec& spec : info.key_specs) {
        if (spec.has(KeySpecFlag::NotKey)) continue;
        if (!(ok = spec_keys(spec, args, key_indexes))) break;
      }
      break;
    case CommandInfo::KeysBy::Legacy: {
      const long long argc = static_cast<long long>(args.size());
      long long last = info.last_key < 0 ? argc + info.last_key : info.last_key;
      if (last >= argc || last < info.first_key) {
        ok = false;
        break;
      }
      for (long long i = info.first_key; i <= last; i += info.key_step) {
        key_indexes.push_back(static_cast<size_t>(i));
      }
      break;
    }
    case CommandInfo::KeysBy::Sort:
      ok = sort_keys(args, true, key_indexes);
      break;
    case CommandInfo::KeysBy::SortRo:
      ok = sort_keys(args, false, key_indexes);
      break;
    case CommandInfo::KeysBy::Migrate:
      ok = migrate_keys(args, key_indexes);
      break;
    case CommandInfo::KeysBy::Unknown:
      ok = false;
      break;
  }
  if (!ok) key_indexes.resize(before);
  return ok;
}

}  // namespace respite::cmd
