// Command policy: what kind of request this is, as far as routing goes. Driven by the
// command table (proto/commands.tsv): its flags say which commands block, and the few
// commands that carry connection state or describe the connection are named here.
//
// The session (src/proxy) decides from the Kind whether a request is multiplexed on a
// shared upstream connection, needs a dedicated (pinned) connection, or is answered by
// respite itself. Unknown commands (modules) are Plain: forwarded, treated as writes.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "cmd/command_table.h"

namespace respite::cmd {

enum class Kind : uint8_t {
  Plain,         // stateless: forwarded in the client's order
  Quit,          // +OK, then close after earlier replies
  Reset,         // the client's whole state is reset
  Auth,          // AUTH to respite itself
  Hello,         // HELLO [protover [AUTH u p] [SETNAME n]]
  Select,        // SELECT db
  Multi,         // transactions
  Exec,
  Discard,
  Watch,
  Unwatch,
  Subscribe,     // pub/sub (RESP2 subscribed mode)
  Psubscribe,
  Ssubscribe,
  Unsubscribe,
  Punsubscribe,
  Sunsubscribe,
  Monitor,
  Blocking,      // may wait on the server: a dedicated connection for the duration
  ClientId,      // CLIENT subcommands answered from the client's own view
  ClientSetname,
  ClientGetname,
  ClientInfo,
  ClientList,
  ClientKill,
  ClientNoEvict,
  ClientReply,
  ClientUnblock,
  ClientGetredir,
  ClientTracking,
  ClientTrackingInfo,
  ClientCaching,
  ClientSetinfo,      // CLIENT SETINFO / NO-TOUCH (Redis 7.2): acknowledged, no effect
  Replconf,      // replica handshake: state on a dedicated connection for the session
  Sync,          // SYNC / PSYNC: the dedicated connection becomes a byte tunnel
  Refuse,        // cannot work through a proxy (the Lua debugger)
};

struct Decision {
  Kind kind = Kind::Plain;
  const CommandInfo* info = nullptr;  // null: not in the table (module or unknown command)
  bool arity_ok = true;               // false: Redis would answer "wrong number of arguments"
};

// `args` is the whole request (args[0] is the command name, any case).
Decision classify(const CommandTable& table, std::span<const std::string_view> args);

// The class a policy (rate limits, the near-cache) sees a command in, from the table's flags
// and ACL categories. Each command has exactly one; the first rule that matches wins:
// Blocking (may wait on the server), Pubsub, Transaction, Connection (describes or sets up
// the connection: AUTH, HELLO, CLIENT, PING, SELECT...), Admin (the `admin` flag),
// Write (the `write` flag, scripts and functions that may write, and unknown commands),
// Read (the `readonly` flag), Other (server-level commands such as INFO, TIME, COMMAND).
enum class CommandClass : uint8_t { Read, Write, Admin, Blocking, Pubsub, Transaction, Connection, Other };
CommandClass command_class(const Decision& d);
std::string_view class_name(CommandClass c);

// Name of the command for error messages, as Redis prints it: "get", "client|setname".
std::string_view display_name(const Decision& d, std::span<const std::string_view> args);

// ASCII case-insensitive equality (command names and keywords).
bool iequals(std::string_view a, std::string_view b);

}  // namespace respite::cmd
