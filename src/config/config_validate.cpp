#include "config/config_validate.h"

#include <sys/un.h>

#include <algorithm>
#include <cctype>
#include <iterator>

#include "config/config_values.h"

namespace respite::config {
namespace {

constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
constexpr size_t kMaxPoolSize = 64;
constexpr size_t kMaxUnixPath = sizeof(sockaddr_un{}.sun_path) - 1;

}  // namespace

bool validate_config(Config& c, const std::function<std::string(std::string_view)>& about, std::string& error) {
  auto fail = [&](std::string_view key, const std::string& msg) {
    error = about(key) + ": " + msg;
    return false;
  };

  // [server]
  if (!c.server.listen.empty()) {
    ListenAddress addr;
    std::string why;
    if (!parse_listen_address(c.server.listen, addr, why)) return fail("server.listen", why);
  }
  if (c.server.unix_socket.size() > kMaxUnixPath) {
    return fail("server.unix_socket", "path is too long (" + std::to_string(c.server.unix_socket.size()) +
                                          " bytes; the limit is " + std::to_string(kMaxUnixPath) + ")");
  }
  if (c.server.listen.empty() && c.server.unix_socket.empty()) {
    error = "config keys 'server.listen' and 'server.unix_socket' are both empty: respite would accept no "
            "clients (set at least one)";
    return false;
  }
  if (c.server.unix_socket_mode < 0 || c.server.unix_socket_mode > 0777) {
    return fail("server.unix_socket_mode", "must be a permission mode between 0000 and 0777");
  }
  if (c.server.tcp_backlog < 1) return fail("server.tcp_backlog", "must be at least 1");
  if (c.server.max_clients < 1) return fail("server.max_clients", "must be at least 1");
  if (c.server.tcp_keepalive_s < 0) return fail("server.tcp_keepalive_s", "must be 0 (off) or more seconds");

  // [client]
  if (c.client.max_bulk_len < 1) return fail("client.max_bulk_len", "must be at least 1 byte");
  if (c.client.max_args < 1) return fail("client.max_args", "must be at least 1");
  if (c.client.max_inline_len < 1) return fail("client.max_inline_len", "must be at least 1 byte");
  if (c.client.query_buffer_limit < 1) return fail("client.query_buffer_limit", "must be at least 1 byte");
  if (c.client.output_buffer_limit < 1) return fail("client.output_buffer_limit", "must be at least 1 byte");
  if (c.client.output_high_water < 1) return fail("client.output_high_water", "must be at least 1 byte");
  // A high-water mark above output_buffer_limit is allowed: the limit then disconnects
  // the client before reading would pause, which is what lowering only the limit means.
  if (c.client.max_pending < 1) return fail("client.max_pending", "must be at least 1");
  if (c.client.idle_timeout_s < 0) return fail("client.idle_timeout_s", "must be 0 (never) or more seconds");

  // [upstream]
  if (c.upstream.pool_size < 1 || c.upstream.pool_size > kMaxPoolSize) {
    return fail("upstream.pool_size", "must be between 1 and " + std::to_string(kMaxPoolSize) + " (got " +
                                          std::to_string(c.upstream.pool_size) + ")");
  }
  if (c.upstream.connect_timeout_ms < 1) return fail("upstream.connect_timeout_ms", "must be at least 1 ms");
  if (c.upstream.command_timeout_ms < 0) {
    return fail("upstream.command_timeout_ms", "must be 0 (off) or more milliseconds");
  }
  if (c.upstream.reconnect_min_ms < 1) return fail("upstream.reconnect_min_ms", "must be at least 1 ms");
  if (c.upstream.reconnect_max_ms < c.upstream.reconnect_min_ms) {
    return fail("upstream.reconnect_max_ms", std::to_string(c.upstream.reconnect_max_ms) +
                                                 " ms must not be less than upstream.reconnect_min_ms (" +
                                                 std::to_string(c.upstream.reconnect_min_ms) + " ms)");
  }
  if (c.upstream.max_inflight < 1) return fail("upstream.max_inflight", "must be at least 1");
  if (c.upstream.max_batches_in_flight < 0)
    return fail("upstream.max_batches_in_flight", "must be 0 (no limit) or more");

  // [log]
  std::string level = c.log.level;
  std::transform(level.begin(), level.end(), level.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (std::find(std::begin(kLogLevels), std::end(kLogLevels), level) == std::end(kLogLevels)) {
    return fail("log.level", "'" + c.log.level + "' is not a log level (use trace, debug, info, warn, error, "
                             "critical or off)");
  }
  c.log.level = level;
  return true;
}

}  // namespace respite::config
