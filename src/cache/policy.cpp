#include "cache/policy.h"

#include <algorithm>

#include "core/glob.h"

namespace respite::cache {
namespace {

using cmd::CommandFlag;
using cmd::CommandInfo;

bool cacheable(const CommandInfo& c) {
  if (!c.has(CommandFlag::Readonly) || c.has(CommandFlag::Write) || c.has(CommandFlag::Blocking) ||
      c.has(CommandFlag::Movablekeys) || c.has(cmd::CommandTip::NondeterministicOutput)) {
    return false;
  }
  if (c.name == "memory|usage" || c.name.starts_with("xinfo")) return false;
  // Exactly one key, at position 1, only read.
  if (c.first_key != 1 || c.last_key != 1 || c.key_specs.size() != 1) return false;
  return c.key_specs[0].has(cmd::KeySpecFlag::RO);
}

Role role_of(const CommandInfo& c) {
  if (c.name == "mget") return Role::MultiGet;
  if (c.name == "hmget") return Role::HashMultiGet;
  if (c.name == "flushall" || c.name == "flushdb" || c.name == "swapdb") return Role::Flush;
  if (c.in(cmd::AclCategory::Scripting)) {
    // EVAL, FCALL and friends may write keys they did not declare (also the _RO forms only
    // read, but that costs nothing to treat alike); SCRIPT/FUNCTION management does not
    // touch keys, except FUNCTION FLUSH/RESTORE, which change no key either.
    if (c.name.starts_with("eval") || c.name.starts_with("fcall")) return Role::WriteUnknown;
    return Role::None;
  }
  if (cacheable(c)) return Role::Read;
  if (c.has(CommandFlag::Write)) return Role::Write;
  return Role::None;
}

}  // namespace

Policy::Policy(const cmd::CommandTable& table, const config::CacheConfig& cfg)
    : table_(table),
      rules_(cfg.rules),
      prefixes_(cfg.bcast_prefixes),
      bcast_(cfg.tracking == "bcast"),
      max_ttl_ms_(static_cast<uint64_t>(cfg.max_ttl_ms)) {
  roles_.reserve(table.size());
  for (const CommandInfo& c : table.commands()) roles_.push_back(role_of(c));
}

Role Policy::role(const cmd::Decision& d, std::span<const std::string_view> args) const {
  if (!d.info) return Role::WriteUnknown;  // a module command: keys unknown
  Role r = roles_[static_cast<size_t>(d.info - table_.commands().data())];
  if (r == Role::None && d.info->name == "exists" && args.size() == 2) return Role::Read;
  return r;
}

uint64_t Policy::ttl_ms(std::string_view key) const {
  if (bcast_ && !prefixes_.empty() &&
      std::none_of(prefixes_.begin(), prefixes_.end(), [&](const std::string& p) { return key.starts_with(p); })) {
    return 0;  // Redis sends no invalidation for this key
  }
  for (const config::CacheRule& r : rules_) {
    if (!core::glob_match(r.pattern, key)) continue;
    if (!r.cache) return 0;
    return r.max_ttl_ms > 0 ? std::min<uint64_t>(static_cast<uint64_t>(r.max_ttl_ms), max_ttl_ms_) : max_ttl_ms_;
  }
  return max_ttl_ms_;
}

bool Policy::write_keys(const cmd::Decision& d, std::span<const std::string_view> args,
                        std::vector<size_t>& out) const {
  if (!d.info) return false;
  return table_.extract_keys(*d.info, args, out);
}

std::vector<std::string> Policy::cached_commands() const {
  std::vector<std::string> names;
  for (size_t i = 0; i < roles_.size(); ++i) {
    if (roles_[i] == Role::Read) names.push_back(table_.commands()[i].name);
  }
  names.push_back("exists");  // with one key
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace respite::cache
