// Config: every setting of respite, with its default. Loaded from TOML (config_loader.h),
// overridden by flags and the environment. Plain data; no dependency on libuv or RESP.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace respite::config {

// Where respite connects: parsed from redis://[user:password@]host:port[/db] or
// unix:/path/to/socket[?db=N] (also unix:///path and redis+unix / redis-socket forms).
struct UpstreamAddress {
  bool is_unix = false;       // true: `path` is a unix socket; false: host:port
  std::string host = "127.0.0.1";  // hostname or IP literal (brackets stripped for IPv6)
  uint16_t port = 6379;       // TCP port
  std::string path;           // unix socket path
  std::string username;       // ACL user ("" = default user / password-only AUTH)
  std::string password;       // "" = no AUTH
  int db = 0;                 // database selected after connecting (SELECT when != 0)
};

struct ServerConfig {
  std::string listen = "127.0.0.1:6380";  // TCP listen address host:port ("" disables TCP)
  std::string unix_socket;                // unix socket path ("" disables)
  int unix_socket_mode = 0660;            // permissions of the unix socket file
  int tcp_backlog = 511;                  // listen(2) backlog
  size_t max_clients = 10000;             // accepted connections beyond this get an error and are closed
  int tcp_keepalive_s = 300;              // TCP keepalive on client sockets (0 = off)
  int drain_timeout_ms = 5000;            // SIGTERM: longest wait for in-flight replies before closing
};

// A named user clients may authenticate as with AUTH <name> <password> (client.users).
struct ClientUser {
  std::string name;      // user name: non-empty, no spaces or control characters; "default" = the default user
  std::string password;  // the user's password (non-empty); never logged or dumped

  bool operator==(const ClientUser&) const = default;
};

struct ClientConfig {
  size_t max_bulk_len = 512u * 1024 * 1024;        // longest argument (Redis proto-max-bulk-len)
  size_t max_args = 1024u * 1024;                  // most arguments in one request
  size_t max_inline_len = 64u * 1024;              // longest inline command line
  size_t query_buffer_limit = 1024u * 1024 * 1024; // most unparsed bytes buffered for one client
  size_t output_buffer_limit = 256u * 1024 * 1024; // most unsent reply bytes before the client is closed
  size_t output_high_water = 4u * 1024 * 1024;     // stop reading a client whose unsent replies pass this
  size_t max_pending = 1024;                       // stop reading a client with this many unanswered requests
  int idle_timeout_s = 0;                          // close clients idle this long (0 = never)
  std::string password;                            // default user's password, like requirepass ("" = none)
  std::vector<ClientUser> users;                   // named users for AUTH <user> <password>
  std::vector<std::string> deny_commands;          // refused: "keys" or "config|set"; lower case, no duplicates
};

struct UpstreamConfig {
  std::string url = "redis://127.0.0.1:6379";  // the Redis server (also RESPITE_UPSTREAM_URL)
  UpstreamAddress address;                     // parsed from url (filled by the loader)
  std::string password_file;                   // file whose first line is the upstream password
  size_t pool_size = 1;                        // multiplexed connections to Redis (one batches best)
  int connect_timeout_ms = 2000;               // TCP connect + handshake deadline
  int command_timeout_ms = 5000;               // oldest in-flight request older than this drops the connection (0 = off)
  int reconnect_min_ms = 50;                   // first reconnect delay (then doubled, with jitter)
  int reconnect_max_ms = 5000;                 // reconnect delay cap
  size_t max_inflight = 65536;                 // requests in flight on one connection; beyond: error reply
  int max_batches_in_flight = 2;               // written batches awaiting replies before the next waits (0 = no limit)
  size_t max_pinned = 1024;                    // dedicated (pinned) connections in total, in use plus idle (>= 1)
  size_t pinned_idle = 8;                      // returned dedicated connections kept for reuse (<= max_pinned)
};

// One [[cache.rules]] entry: keys matching `pattern` (a Redis glob) are not cached
// (cache = false), or are cached for at most max_ttl_ms (when > 0). The first match wins.
struct CacheRule {
  std::string pattern;    // Redis glob on the key ("session:*"); non-empty
  bool cache = true;      // false: never cache these keys
  int max_ttl_ms = 0;     // > 0: cap on these keys' lifetime (0: cache.max_ttl_ms)

  bool operator==(const CacheRule&) const = default;
};

struct CacheConfig {
  bool enabled = true;                       // the near-cache (kept coherent by CLIENT TRACKING)
  size_t memory_bytes = 64u * 1024 * 1024;   // budget: keys, values and overhead
  size_t max_value_bytes = 64u * 1024;       // longer replies are not cached
  int max_ttl_ms = 60000;                    // longest an entry lives (rules may lower it)
  std::string eviction = "s3fifo";           // s3fifo or lru
  std::string tracking = "default";          // default (keys read) or bcast (prefixes)
  std::vector<std::string> bcast_prefixes;   // bcast: the prefixes tracked (and cached); empty = every key
  int ping_interval_ms = 1000;               // PING on the invalidation connection this often
  int ping_timeout_ms = 2000;                // no PONG within this: reconnect and flush
  std::vector<std::string> bypass_clients;   // CLIENT SETNAME globs whose reads skip the cache
  std::vector<CacheRule> rules;              // key rules, first match wins
  std::vector<std::string> warmup_patterns;  // key globs preloaded (SCAN + GET) at start and on RESPITE CACHE WARMUP
  size_t warmup_max_keys = 10000;            // most keys one warm-up loads
  size_t warmup_keys_per_second = 2000;      // warm-up pace (SCAN COUNT and GETs per second)
};

// One [[ratelimit.classes]] entry: a named command list rules can use as "@name".
struct RateLimitClass {
  std::string name;                   // [a-z0-9_-]+, not a built-in class
  std::vector<std::string> commands;  // command names ("keys", "config|set"), as written

  bool operator==(const RateLimitClass&) const = default;
};

// One [[ratelimit.rules]] entry (docs/rate-limits.md).
struct RateLimitRule {
  std::string name;                               // unique; keeps the rule's buckets across reloads
  std::string scope = "client";                   // client: a bucket per identity; global: one bucket
  std::vector<std::string> clients = {"*"};       // identity globs ("user:alice", "name:web-*", "*")
  std::vector<std::string> commands = {"@all"};   // classes (@write) and command names
  double rate = 0;                                // requests per second (> 0)
  uint32_t burst = 0;                             // requests at once from idle (0: rate rounded up)
  std::string action = "reject";                  // reject or delay
  int max_wait_ms = 1000;                         // delay: longest a request is held

  bool operator==(const RateLimitRule&) const = default;
};

struct RateLimitConfig {
  bool enabled = true;                    // false: no rule applies
  std::vector<std::string> exempt;        // identity globs never limited
  size_t max_delayed = 1024;              // requests held by delay rules at once, all clients
  std::vector<RateLimitClass> classes;    // named command lists
  std::vector<RateLimitRule> rules;       // the limits

  bool operator==(const RateLimitConfig&) const = default;
};

struct AdminConfig {
  std::string listen = "127.0.0.1:9180";       // HTTP admin listener (/livez /readyz /metrics /stats); "" disables
  std::vector<std::string> users = {"admin"};  // with client auth on: the users allowed RESPITE admin commands
};

// When Redis is unreachable (docs/fallback.md).
struct FallbackConfig {
  std::string mode = "off";                   // off | read-only | local
  std::string data_dir;                       // where the journal and dead-letter file live (--data-dir); needed by local
  std::string journal_file = "journal.rjl";   // the write journal, relative to data_dir
  std::string dead_letter_file = "dead-letter.jsonl";  // replayed writes Redis refused, relative to data_dir
  std::string fsync = "always";               // always | everysec | no: when journal appends reach the disk
  size_t max_memory = 64 * 1024 * 1024;       // the local store's budget; beyond it writes are refused
  size_t max_journal_bytes = 1024ull * 1024 * 1024;  // the journal's bound; beyond it writes are refused
  int stale_max_age_ms = 60000;               // while Redis is unreachable, cached replies are served this long past their expiry
  std::string miss = "error";                 // error | nil: a read neither the store nor the cache can answer
  int breaker_failures = 3;                   // consecutive failures that open the breaker
  int breaker_open_ms = 1000;                 // least time open before a recovered Redis is used again
  int breaker_open_max_ms = 30000;            // cap of that time, doubled after each failed recovery
  size_t replay_batch = 64;                   // journal records in flight to Redis at once during replay
};

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
};

struct Config {
  ServerConfig server;
  ClientConfig client;
  UpstreamConfig upstream;
  CacheConfig cache;
  RateLimitConfig ratelimit;
  AdminConfig admin;
  FallbackConfig fallback;
  LogConfig log;
};

}  // namespace respite::config
