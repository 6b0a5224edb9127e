// Observations for the near-cache tests: respite's own cache counters (RESPITE CACHE STATS,
// answered by respite), Redis's per-command call counters (INFO commandstats, read directly on
// Redis, to tell a cache hit from a forwarded read), the cache fence, and the connections
// respite keeps on Redis for tracking (CLIENT LIST on Redis).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/net.h"
#include "support/process.h"

namespace respite::test {

// RESPITE CACHE STATS, parsed: "name:value" lines.
struct CacheStats {
  std::map<std::string, std::string> fields;  // every line's name -> value
  std::string raw;                            // the reply as received (for messages)

  // The integer `name`, or -1 when it is absent or not an integer.
  long long get(std::string_view name) const;
  bool empty() const { return fields.empty(); }
};

// Sends RESPITE CACHE STATS on `respite`; an empty CacheStats (raw = the reply) when the reply
// is not a bulk string of name:value lines.
CacheStats cache_stats(Client& respite);

// RESPITE CACHE FENCE on `respite`, rendered ("+OK" when every invalidation queued before it
// has been applied).
std::string cache_fence(Client& respite);

// Polls RESPITE CACHE STATS until tracking:1; false at the deadline.
bool wait_for_tracking(Client& respite, Deadline deadline);

// calls= of cmdstat_<command> in Redis's INFO commandstats (command in lower case, a
// subcommand as "client|kill"); 0 when Redis has not run the command yet, -1 when the reply
// cannot be read.
long long command_calls(Client& redis, std::string_view command);

// The CLIENT LIST entries on Redis whose name is `name`, or starts with it when `prefix`.
std::vector<std::map<std::string, std::string>> redis_clients_named(Client& redis, std::string_view name,
                                                                    bool prefix = false);

// Redis's id of the one connection named `name`; nullopt when there is none or several.
std::optional<long long> redis_client_id(Client& redis, std::string_view name);

}  // namespace respite::test
