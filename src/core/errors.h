// The catalogue of every error reply respite itself sends. Worded like Redis's own
// errors ("-ERR ..."), or with a RESPITE-specific meaning spelled out. Each constant is a
// complete RESP error line including "\r\n", ready to append to an output buffer.
#pragma once

#include <string>
#include <string_view>

namespace respite::errors {

inline constexpr std::string_view kUpstreamUnavailable =
    "-ERR upstream unavailable: no connection to Redis (respite is reconnecting)\r\n";
inline constexpr std::string_view kUpstreamLost =
    "-ERR upstream connection lost before the reply arrived; the command may or may not have run\r\n";
inline constexpr std::string_view kUpstreamTimeout =
    "-ERR upstream timeout: Redis did not reply in time; the command may or may not have run\r\n";
inline constexpr std::string_view kUpstreamBusy =
    "-ERR upstream busy: too many requests in flight on the upstream connection\r\n";
inline constexpr std::string_view kMaxClients = "-ERR max number of clients reached\r\n";
inline constexpr std::string_view kShuttingDown = "-ERR respite is shutting down\r\n";
inline constexpr std::string_view kOk = "+OK\r\n";

// "-ERR Protocol error: <detail>\r\n" (detail comes from the RequestFramer).
std::string protocol_error(std::string_view detail);
// Refusal of a command that needs a dedicated upstream connection (not yet supported).
std::string needs_dedicated_connection(std::string_view command);
// Refusal of a command that would change the shared upstream connection's state.
std::string not_allowed_on_shared_connection(std::string_view command, std::string_view why);
// "-ERR wrong number of arguments for '<cmd>' command".
std::string wrong_arity(std::string_view command);
// "-NOPROTO ..." for HELLO 3.
std::string_view noproto();

}  // namespace respite::errors
