#include "cmd/command_policy.h"

#include <cstring>
#include <memory>
#include <vector>

namespace respite::cmd {
namespace {

// Commands (or subcommands, "parent|sub") with a Kind other than Plain, by table name.
// Blocking commands are found from the table's `blocking` flag, plus these few that wait
// on the server without the flag.
constexpr std::pair<std::string_view, Kind> kSpecial[] = {
    {"quit", Kind::Quit},
    {"reset", Kind::Reset},
    {"auth", Kind::Auth},
    {"hello", Kind::Hello},
    {"select", Kind::Select},
    {"multi", Kind::Multi},
    {"exec", Kind::Exec},
    {"discard", Kind::Discard},
    {"watch", Kind::Watch},
    {"unwatch", Kind::Unwatch},
    {"subscribe", Kind::Subscribe},
    {"psubscribe", Kind::Psubscribe},
    {"ssubscribe", Kind::Ssubscribe},
    {"unsubscribe", Kind::Unsubscribe},
    {"punsubscribe", Kind::Punsubscribe},
    {"sunsubscribe", Kind::Sunsubscribe},
    {"monitor", Kind::Monitor},
    // A busy script holds its connection: the kill must come in on another one, not queue
    // behind the script on the shared connection.
    {"script|kill", Kind::Blocking},
    // Likewise CLIENT UNPAUSE must not wait behind a write that CLIENT PAUSE holds back.
    {"client|unpause", Kind::Blocking},
    {"function|kill", Kind::Blocking},
    {"client|id", Kind::ClientId},
    {"client|setname", Kind::ClientSetname},
    {"client|getname", Kind::ClientGetname},
    {"client|info", Kind::ClientInfo},
    {"client|list", Kind::ClientList},
    {"client|kill", Kind::ClientKill},
    {"client|no-evict", Kind::ClientNoEvict},
    {"client|reply", Kind::ClientReply},
    {"client|unblock", Kind::ClientUnblock},
    {"client|getredir", Kind::ClientGetredir},
    {"client|tracking", Kind::ClientTracking},
    {"client|trackinginfo", Kind::ClientTrackingInfo},
    {"client|caching", Kind::ClientCaching},
    // Replication: REPLCONF sets replica state on the connection; SYNC/PSYNC turn it into a
    // byte stream (the RDB, then the command stream) for good.
    {"sync", Kind::Sync},
    {"psync", Kind::Sync},
    {"replconf", Kind::Replconf},
    // The Lua debugger would take over the shared connection for other clients' EVALs.
    {"script|debug", Kind::Refuse},
};

// Kind of every table entry, indexed by the entry's position in the table (no hashing on
// the request path).
class KindIndex {
 public:
  explicit KindIndex(const CommandTable& table) : table_(&table), kinds_(table.commands().size(), Kind::Plain) {
    const CommandInfo* base = table.commands().data();
    for (const auto& info : table.commands()) {
      if (info.has(CommandFlag::Blocking)) kinds_[static_cast<size_t>(&info - base)] = Kind::Blocking;
    }
    for (const auto& [name, kind] : kSpecial) {
      if (const CommandInfo* info = table.find(name)) kinds_[static_cast<size_t>(info - base)] = kind;
    }
  }
  const CommandTable* table() const { return table_; }
  Kind kind(const CommandInfo* info) const {
    return kinds_[static_cast<size_t>(info - table_->commands().data())];
  }

 private:
  const CommandTable* table_;
  std::vector<Kind> kinds_;
};

const KindIndex& index_for(const CommandTable& table) {
  // Nearly always the builtin table; a test may pass its own.
  static const KindIndex builtin(CommandTable::builtin());
  if (&table == builtin.table()) return builtin;
  static thread_local const CommandTable* last = nullptr;
  static thread_local std::unique_ptr<KindIndex> other;
  if (last != &table) {
    other = std::make_unique<KindIndex>(table);
    last = &table;
  }
  return *other;
}

// XREAD / XREADGROUP wait only with BLOCK, which comes before STREAMS.
bool has_block_option(std::span<const std::string_view> args) {
  for (size_t i = 1; i < args.size(); ++i) {
    if (iequals(args[i], "streams")) return false;
    if (iequals(args[i], "block")) return true;
  }
  return false;
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

namespace {

// The last command name looked up, byte for byte: pipelines mostly repeat one command, and
// a short compare is cheaper than lowercasing and hashing the name again.
struct LastLookup {
  const CommandTable* table = nullptr;
  const CommandInfo* info = nullptr;  // a non-container command
  uint8_t len = 0;
  char name[23] = {};
};

const CommandInfo* find_command(const CommandTable& table, std::span<const std::string_view> args) {
  static thread_local LastLookup last;
  std::string_view name = args[0];
  if (last.table == &table && name.size() == last.len && std::memcmp(name.data(), last.name, last.len) == 0)
    return last.info;
  const CommandInfo* info = table.find(args);
  if (info && !info->container && info->name.size() == name.size() && name.size() <= sizeof(last.name)) {
    last.table = &table;
    last.info = info;
    last.len = static_cast<uint8_t>(name.size());
    std::memcpy(last.name, name.data(), name.size());
  }
  return info;
}

}  // namespace

Decision classify(const CommandTable& table, std::span<const std::string_view> args) {
  Decision d;
  if (args.empty()) return d;
  d.info = find_command(table, args);
  if (!d.info) return d;
  if (d.info->container && args.size() >= 2 && d.info->name == "client" &&
      (iequals(args[1], "setinfo") || iequals(args[1], "no-touch"))) {
    // Redis 7.2 subcommands that clients send on connect; about the connection only.
    d.kind = Kind::ClientSetinfo;
    return d;
  }
  d.arity_ok = d.info->arity_ok(args.size());
  d.kind = index_for(table).kind(d.info);
  if (d.kind == Kind::Blocking && d.info->has(CommandFlag::Movablekeys) &&
      (d.info->name == "xread" || d.info->name == "xreadgroup") && !has_block_option(args)) {
    d.kind = Kind::Plain;
  }
  return d;
}

CommandClass command_class(const Decision& d) {
  if (!d.info) return CommandClass::Write;  // module or unknown: assume the worst
  const CommandInfo& c = *d.info;
  if (d.kind == Kind::Blocking) return CommandClass::Blocking;
  if (c.has(CommandFlag::Pubsub) || c.in(AclCategory::Pubsub)) return CommandClass::Pubsub;
  if (c.in(AclCategory::Transaction)) return CommandClass::Transaction;
  if (c.in(AclCategory::Connection)) return CommandClass::Connection;
  if (c.has(CommandFlag::Admin)) return CommandClass::Admin;
  if (c.has(CommandFlag::Write)) return CommandClass::Write;
  if (c.has(CommandFlag::Readonly)) return CommandClass::Read;
  if (c.in(AclCategory::Scripting)) return CommandClass::Write;  // EVAL, FCALL: may write any key
  return CommandClass::Other;
}

std::string_view class_name(CommandClass c) {
  switch (c) {
    case CommandClass::Read: return "read";
    case CommandClass::Write: return "write";
    case CommandClass::Admin: return "admin";
    case CommandClass::Blocking: return "blocking";
    case CommandClass::Pubsub: return "pubsub";
    case CommandClass::Transaction: return "transaction";
    case CommandClass::Connection: return "connection";
    case CommandClass::Other: return "other";
  }
  return "other";
}

std::string_view display_name(const Decision& d, std::span<const std::string_view> args) {
  if (d.info) return d.info->name;
  return args.empty() ? std::string_view() : args[0];
}

}  // namespace respite::cmd
