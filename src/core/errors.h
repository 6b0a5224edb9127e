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
// A reply still awaited when the drain deadline (server.drain_timeout_ms) passes.
inline constexpr std::string_view kDrainTimeout =
    "-ERR respite is shutting down: no reply from Redis within server.drain_timeout_ms; the command may or may "
    "not have run\r\n";
inline constexpr std::string_view kOk = "+OK\r\n";
inline constexpr std::string_view kNoAuth = "-NOAUTH Authentication required.\r\n";
inline constexpr std::string_view kWrongPass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
inline constexpr std::string_view kAuthWithoutPassword =
    "-ERR AUTH <password> called without any password configured for the default user. Are you sure your "
    "configuration is correct?\r\n";
inline constexpr std::string_view kHelloNoAuth =
    "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> "
    "<pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n";
inline constexpr std::string_view kSyntax = "-ERR syntax error\r\n";
inline constexpr std::string_view kNotInteger = "-ERR value is not an integer or out of range\r\n";
inline constexpr std::string_view kExecAbort = "-EXECABORT Transaction discarded because of previous errors.\r\n";
inline constexpr std::string_view kBadClientName =
    "-ERR Client names cannot contain spaces, newlines or special characters.\r\n";
inline constexpr std::string_view kNoSuchClient = "-ERR No such client\r\n";
inline constexpr std::string_view kRedirectMissing = "-ERR The client ID you want redirect to does not exist\r\n";
inline constexpr std::string_view kCachingWithoutTracking =
    "-ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode "
    "enabled\r\n";
inline constexpr std::string_view kProtoVersionNotInteger =
    "-ERR Protocol version is not an integer or out of range\r\n";
inline constexpr std::string_view kUnsupportedProto = "-NOPROTO unsupported protocol version\r\n";

// "-ERR Protocol error: <detail>\r\n" (detail comes from the RequestFramer).
std::string protocol_error(std::string_view detail);
// Refusal of a command that cannot work through a proxy (SCRIPT DEBUG).
std::string not_supported(std::string_view command, std::string_view why);
// No dedicated upstream connection left for a client that needs one.
std::string pinned_limit(size_t max_pinned);
// A command listed in client.deny_commands.
std::string denied(std::string_view command);
// A command respite refuses inside MULTI (it would change the connection's mode at EXEC).
std::string not_in_multi(std::string_view command);
// "-ERR wrong number of arguments for '<cmd>' command".
std::string wrong_arity(std::string_view command);
// "-NOPROTO ..." for HELLO 3.
std::string_view noproto();

}  // namespace respite::errors
