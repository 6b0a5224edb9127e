// Command policy: decides, from a request's arguments, whether it can be sent over a
// shared (multiplexed) upstream connection, must be answered by respite itself, or
// needs connection state that a shared connection cannot carry.
//
// This is the pass-through core's small, hand-written rule set. The generated command
// table (proto/) replaces the name lists when pinned sessions arrive; the Route values
// stay.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace respite::cmd {

enum class Route : uint8_t {
  Forward,         // stateless: any shared connection, in the client's order
  Quit,            // reply +OK, then close the client after flushing
  Reset,           // reply +RESET (the client's own state is reset; nothing forwarded)
  SelectSame,      // SELECT of the database the upstream connections already use: +OK
  Auth,            // AUTH to respite itself
  HelloNoProto,    // HELLO 3: -NOPROTO, so clients fall back to RESP2
  NeedsDedicated,  // transactions, blocking, pub/sub, MONITOR, other-db SELECT, tracking
  Refuse,          // would desynchronise or hijack the shared connection (CLIENT REPLY, SYNC...)
};

struct Decision {
  Route route = Route::Forward;   // what to do with the request
  std::string_view why;           // for Refuse: the reason, worded for an error reply
};

// `args` is the whole request (args[0] is the command name, any case). `shared_db` is
// the database the shared upstream connections have selected.
Decision classify(std::span<const std::string_view> args, int shared_db);

// ASCII case-insensitive equality (command names and keywords).
bool iequals(std::string_view a, std::string_view b);

}  // namespace respite::cmd
