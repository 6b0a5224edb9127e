// Upstream URL: parses the address of the Redis server respite forwards to, and renders
// it for logs with the password hidden. Pure string handling; no I/O, no exceptions.
//
// Accepted forms (scheme names are case-insensitive):
//   redis://[[user]:password@]host[:port][/db]     TCP; host may be [IPv6]; port 6379
//   redis://user@host[:port][/db]                  ACL user, password supplied elsewhere
//   unix:/path/to/sock[?query]                     unix socket
//   unix:///path/to/sock[?query]                   (same)
//   redis+unix:///path[?query], redis-socket:///path[?query]
// The unix forms take an optional query: db=N, password=..., user=... (alias username).
// User, password, unix path and query values are percent-decoded. rediss:// is rejected:
// respite does not speak TLS to Redis.
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"

namespace respite::config {

// Largest database index accepted in a URL (Redis's own limit is the server's
// `databases` setting; this only catches typos).
inline constexpr int kMaxUpstreamDb = 1'000'000;

// Parses `url` into `out` (fully overwritten on success; untouched on failure).
// On failure returns false and sets `error` to a message naming what is wrong; the
// message never contains the password.
bool parse_upstream_url(std::string_view url, UpstreamAddress& out, std::string& error);

// Renders `addr` as a URL for logs: "redis://user:***@host:6379/2",
// "redis://[::1]:6379", "unix:/run/redis.sock?db=1&password=***". The password, if
// any, is always shown as "***".
std::string redact_url(const UpstreamAddress& addr);

}  // namespace respite::config
