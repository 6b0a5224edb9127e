// NearCache: the near-cache as the proxy sees it. It owns the entries (Store), decides what
// is cached (Policy), keeps the entries coherent with Redis, and fetches misses.
//
// Coherence (docs/near-cache.md has the guarantees):
// - The invalidation connection (role Invalidation: SUBSCRIBE __redis__:invalidate) receives
//   Redis's invalidation messages; each drops the named keys, a null message (FLUSHALL /
//   FLUSHDB on Redis) drops everything.
// - Every shared pool connection runs CLIENT TRACKING on REDIRECT <invalidation connection's
//   id> (BCAST PREFIX ... in bcast mode), sent as its first request once both are ready. A
//   read is filled only through a connection whose tracking belongs to the current epoch.
// - Losing the invalidation connection, a PING on it unanswered for ping_timeout_ms, or a
//   tracking pool connection flushes everything and starts a new epoch; tracking is turned
//   on again as the connections come back.
// - Fill tickets (Store) close the race of an invalidation overtaking the reply it voids.
// - fence_ping()/pongs(): a PING sent on the invalidation connection; once its PONG is back,
//   every invalidation Redis queued before it has been applied (the session fences a
//   client after a write whose keys are unknown).
//
// Fetching: a cacheable miss is sent by the cache itself (a Fetch), followed by PTTL of its
// key, so an entry never outlives the key's expiry in Redis. Clients asking for the same
// request while it is in flight on the same connection wait for it instead of sending
// another (miss coalescing). MGET / HMGET send only the keys or fields that missed and merge.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cache/policy.h"
#include "cache/store.h"
#include "config/config.h"
#include "net/timer.h"
#include "upstream/reply_sink.h"
#include "upstream/upstream_conn.h"

namespace respite::net {
class Loop;
}
namespace respite::upstream {
class UpstreamPool;
}

namespace respite::cache {

struct CacheCounters {
  uint64_t coalesced = 0;      // requests that waited for another client's fetch
  uint64_t received = 0;       // keys named in invalidation messages from Redis
  uint64_t local_invalidations = 0;  // keys invalidated by writes through respite
  uint64_t epochs = 0;         // tracking (re)established
  uint64_t fences = 0;         // fence PINGs sent
  uint64_t bypassed = 0;       // cacheable reads not served from the cache (fence, bypass, tracking down)
  uint64_t partial = 0;        // MGET/HMGET answered partly from the cache
  uint64_t warmed = 0;         // keys loaded by warm-up
};

class NearCache final : private upstream::ReplySink {
 public:
  using Args = std::span<const std::string_view>;

  NearCache(net::Loop& loop, const config::Config& cfg, const cmd::CommandTable& table,
            upstream::UpstreamPool& pool);
  ~NearCache() override;
  NearCache(const NearCache&) = delete;
  NearCache& operator=(const NearCache&) = delete;

  // Connects the invalidation connection and starts tracking pool connections (no-op when
  // the cache is disabled).
  void start();
  void shutdown();

  bool enabled() const { return enabled_; }
  const Policy& policy() const { return policy_; }
  Store& store() { return store_; }
  // Whether a read sent now on `conn` may fill the cache.
  bool usable(const upstream::UpstreamConn* conn) const;
  // Whether the cache may serve hits (tracking is established).
  bool serving() const { return enabled_ && link_ready_ && !frozen_; }
  // A cached reply for this request, or null (counts a hit or a miss).
  const std::string* lookup(Args args, uint64_t now_ms) { return store_.find(db_, args, now_ms); }
  // Fallback (Redis unreachable): a cached reply up to grace_ms past its expiry, or null.
  const std::string* lookup_stale(Args args, uint64_t now_ms, uint64_t grace_ms) {
    return enabled_ ? store_.find_stale(db_, args, now_ms, grace_ms) : nullptr;
  }
  // Fallback on: a lost invalidation or pool connection freezes the cache instead of
  // flushing it. Frozen, it serves no hits (serving() is false) and fills nothing, but its
  // entries stay for lookup_stale(). It thaws (flush, new epoch, tracking set up again) when
  // the connections are back and `hold()` is false; resume() retries that (the fallback calls
  // it once Redis serves again).
  void keep_entries_when_down(std::function<bool()> hold) { hold_frozen_ = std::move(hold); }
  void resume();
  bool frozen() const { return frozen_; }

  // Sends a cacheable read on `conn` for `sink` (cookie), or joins the same request already
  // in flight there. `raw`: the request as the client sent it (empty: encode `args`).
  // Returns an id for cancel(), 0 when `conn` refused it (too many in flight).
  uint64_t fetch(upstream::UpstreamConn* conn, upstream::ReplySink* sink, uint64_t cookie, Args args,
                 std::string_view raw, uint64_t ttl_ms);
  // MGET / HMGET: answers from the cache when every piece hits (returns the reply in `out`
  // and 0 with `answered` set), else sends the misses and returns a fetch id (0: refused).
  uint64_t fetch_multi(upstream::UpstreamConn* conn, upstream::ReplySink* sink, uint64_t cookie, Role role,
                       Args args, std::string& out, bool& answered);
  // The sink no longer wants this fetch's reply.
  void cancel(uint64_t fetch_id, upstream::ReplySink* sink);

  // Writes through respite.
  void invalidate_key(std::string_view key);
  void invalidate_hash(uint64_t key_hash);
  void flush(std::string_view why);
  // A configuration reload: new key rules and TTL cap (the cache is flushed: entries were
  // admitted under the old ones), and new memory and value limits (evicting down at once).
  // Nothing happens when the cache is disabled.
  void reconfigure(const config::CacheConfig& next, bool rules_changed);
  // RESPITE CACHE FLUSH <pattern>: drops the entries whose key matches the Redis glob
  // `pattern` (every database) and cancels every pending fill (Store::invalidate_matching).
  // O(entries). Returns the number of entries dropped.
  size_t flush_matching(std::string_view pattern);

  // Fences: sends a PING on the invalidation connection now; returns its number, or 0 when
  // there is nothing to wait for: tracking is down (the cache is flushed and unused), or the
  // PING could not be sent (then the cache is flushed).
  uint64_t fence_ping();
  // Number of the last fence PING answered (or given up with the connection).
  uint64_t pongs() const { return pongs_; }
  // The invalidation connection when it is ready (RESPITE CACHE FENCE waits on it).
  upstream::UpstreamConn* link() { return link_ready_ ? link_.get() : nullptr; }

  // Starts a warm-up with the configured patterns; false if one is running or none are set.
  bool warmup();
  // RESPITE CACHE STATS: INFO-style lines.
  std::string stats_text() const;
  const CacheCounters& counters() const { return counters_; }
  void count_bypass() { ++counters_.bypassed; }
  int db() const { return db_; }
  // Whether reads of a client named `name` skip the cache (cache.bypass_clients).
  bool bypass_name(std::string_view name) const;

 private:
  struct Waiter {
    upstream::ReplySink* sink;  // null: cancelled
    uint64_t cookie;
  };
  // One key (or HMGET field) a fetch may fill.
  struct Item {
    Store::Ticket ticket;                // taken when the read was sent
    uint64_t ttl_cap = 0;                // the key rules' lifetime cap (0: do not store)
    std::vector<std::string> identity;   // the entry ("get k", "hget k f"); empty: the fetch's request
    std::string value;                   // its reply, kept until the key's PTTL arrives
    bool storable = false;               // the reply may be cached (not an error, not an MGET nil)
    bool done = false;                   // stored or abandoned
  };
  // MGET/HMGET reply element, in request order.
  struct Piece {
    int miss = -1;       // index of the Item fetched for it, or -1: `bytes` came from the cache
    std::string bytes;   // cached element
  };
  struct Fetch {
    uint64_t id = 0;                      // its cookie id: slot index + 1
    bool live = false;                    // in flight (else on the free list)
    Role role = Role::Read;
    upstream::UpstreamConn* conn = nullptr;
    uint64_t identity = 0;                // coalescing key (Read only)
    uint64_t sent_ms = 0;                 // loop time when sent: lifetimes count from here
    size_t pending = 0;                   // replies still to come (the read, then PTTLs)
    bool ttl_missing = false;             // a PTTL could not be sent: store nothing
    bool answered = false;                // the read reply has been delivered
    std::vector<std::string> request;     // Read: the request (coalescing check, entry identity)
    std::vector<Item> items;
    std::vector<Piece> pieces;
    std::vector<Waiter> waiters;
  };

  void on_pool_event(upstream::UpstreamConn& c, upstream::UpstreamConn::Event e);
  void on_link_event(upstream::UpstreamConn& c, upstream::UpstreamConn::Event e);
  void track(upstream::UpstreamConn& c);
  void new_epoch(std::string_view why);
  void freeze(std::string_view why);
  void thaw(std::string_view why);
  void ping_tick();
  uint64_t send_ping();  // a PING on the link; its number, or 0 if not accepted
  // Tracking is up and every ready pool connection tracks in the current epoch.
  bool tracking_everywhere() const;
  // A cleared Fetch from the pool (its vectors keep their capacity), with `items` items.
  Fetch& new_fetch(Role role, upstream::UpstreamConn* conn, size_t items);
  Fetch* find_fetch(uint64_t id);
  void release_fetch(Fetch& f);  // abandons what it did not store; back to the pool
  // Sends f's request and the PTTLs of `keys`; its id, or 0 (then f is released).
  uint64_t send_fetch(Fetch& f, Args request, std::string_view raw, std::span<const std::string_view> keys);
  // A reply (or failure) for a fetch's read or one of its PTTLs.
  void on_fetch_reply(uint64_t cookie, std::string_view raw, bool failed);
  void deliver(Fetch& f, std::string_view raw, bool failed);
  void finish_ttl(Fetch& f, size_t index, std::string_view pttl_reply);
  void store_item(Fetch& f, Item& item, int64_t pttl);
  void abandon_items(Fetch& f);
  void warm_step();
  void on_scan_reply(std::string_view raw);

  // upstream::ReplySink
  void on_reply(uint64_t cookie, std::string_view raw) override;
  void on_failed(uint64_t cookie, std::string_view error_line) override;
  void on_push(std::string_view raw) override;

  net::Loop& loop_;
  const config::CacheConfig& cfg_;
  upstream::UpstreamPool& pool_;
  int db_;                                   // database of the shared connections
  bool enabled_;
  Policy policy_;
  std::function<bool()> hold_frozen_;        // set: freeze on losses; true: stay frozen
  bool frozen_ = false;                      // entries kept for the fallback, nothing served
  Store store_;
  std::unique_ptr<upstream::UpstreamConn> link_;  // the invalidation connection
  bool link_ready_ = false;
  uint64_t epoch_ = 0;                       // tracking generation; 0: none
  std::vector<uint64_t> conn_epoch_;         // per shared connection: epoch its tracking belongs to
  uint64_t pings_sent_ = 0;                  // fence/keepalive PINGs sent on the link
  uint64_t pongs_ = 0;                       // ... answered (or abandoned with the link)
  uint64_t ping_sent_ms_ = 0;                // when the oldest unanswered PING went out (0: none)
  net::Timer ping_timer_;
  std::vector<std::unique_ptr<Fetch>> fetch_slots_;  // every Fetch ever made; id = index + 1
  std::vector<uint64_t> free_fetches_;              // ids of slots not in flight
  size_t live_fetches_ = 0;                         // slots in flight
  std::unordered_map<uint64_t, uint64_t> coalesce_; // request identity -> fetch id
  CacheCounters counters_;
  // Warm-up.
  bool warming_ = false;
  size_t warm_pattern_ = 0;                  // index into cfg_.warmup_patterns
  std::string warm_cursor_;                  // SCAN cursor ("0" at the start)
  std::vector<std::string> warm_keys_;       // keys found, not yet fetched
  size_t warm_loaded_ = 0;                   // keys fetched this warm-up
  bool warm_scanning_ = false;               // a SCAN is in flight
  net::Timer warm_timer_;
};

}  // namespace respite::cache
