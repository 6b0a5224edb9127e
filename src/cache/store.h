// Store: the near-cache's entries, their memory accounting and eviction, and the fill
// tickets that keep a reply from being cached after its key was invalidated.
//
// An entry is one cached reply: identified by the database and the exact request (command
// name compared case-insensitively, arguments byte for byte), indexed by the hash of its one
// Redis key, so one invalidation drops every cached variant of that key (GET k, HGET k f,
// LRANGE k 0 9...) in every database. Values are the raw RESP reply bytes. The key is the
// request's args[1]: every cached command has its one key there (single-key reads; MGET and
// HMGET fill GET and HGET entries), which is how invalidate_matching() reads an entry's key.
//
// Fill tickets: begin_fill(key) before a read goes upstream; invalidate(key) or flush()
// cancels every ticket of that key taken before it; finish_fill() stores the reply only if
// its ticket is still valid. So a reply that was overtaken by its key's invalidation (which
// travels on another socket) is never stored. A ticket knows its key's hash, not the key,
// so invalidate_matching() (a glob over keys) cancels every ticket taken before it, like
// flush().
//
// Memory: every entry costs entry_cost() bytes against the budget (key index, identity,
// value and a fixed overhead for the containers); inserting past the budget evicts first.
// Eviction is S3-FIFO (a small probationary FIFO, a main FIFO with reinsertion of used
// entries, and a ghost list of recently evicted identities) or plain LRU, for comparison.
//
// Pure data structure: no I/O, no clock (callers pass now_ms), single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace respite::cache {

enum class Eviction : uint8_t { S3Fifo, Lru };

struct StoreStats {
  uint64_t hits = 0;              // find() returned an entry
  uint64_t misses = 0;            // find() returned nothing (expired entries count here)
  uint64_t fills = 0;             // finish_fill() stored an entry
  uint64_t cancelled_fills = 0;   // finish_fill() with a ticket invalidated since begin_fill
  uint64_t too_large = 0;         // finish_fill() refused: value over max_value or entry over budget
  uint64_t invalidations = 0;     // invalidate() calls
  uint64_t invalidated_entries = 0;  // entries dropped by invalidate()
  uint64_t evictions = 0;         // entries dropped to stay within the budget
  uint64_t expirations = 0;       // entries dropped because their expiry passed
  uint64_t flushes = 0;           // flush() calls
  uint64_t stale_hits = 0;        // find_stale() returned an entry
  uint64_t pattern_flushes = 0;   // invalidate_matching() calls
  uint64_t pattern_flushed_entries = 0;  // entries dropped by invalidate_matching()
};

// Hash of a Redis key as the store indexes it (XXH3-64 of the key's bytes).
uint64_t hash_key(std::string_view key);

class Store {
 public:
  using Args = std::span<const std::string_view>;  // the whole request; args[0] is the command name

  // A pending fill. seq 0: no ticket (never valid).
  struct Ticket {
    uint64_t key_hash = 0;
    uint64_t seq = 0;
  };
  enum class FillResult : uint8_t { Stored, Cancelled, TooLarge };

  // budget_bytes: the most entry_cost() summed over all entries. max_value: longest value
  // stored (longer ones get TooLarge).
  Store(size_t budget_bytes, size_t max_value, Eviction policy = Eviction::S3Fifo);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The cached reply for (db, args), or null. An entry whose expiry is <= now_ms is removed
  // and counts as a miss. Counts a hit or a miss; a hit marks the entry used for eviction.
  // Does not allocate.
  const std::string* find(int db, Args args, uint64_t now_ms);
  // Like find() without counting or marking (tests, MGET planning).
  bool contains(int db, Args args, uint64_t now_ms) const;
  // While Redis is unreachable (fallback): the cached reply for (db, args) even if it
  // expired, as long as less than grace_ms ago. Counts a stale hit; never removes.
  const std::string* find_stale(int db, Args args, uint64_t now_ms, uint64_t grace_ms);

  // Registers a pending fill for the key with this hash.
  Ticket begin_fill(uint64_t key_hash);
  // Whether no invalidate() of the ticket's key and no flush() or invalidate_matching()
  // happened since begin_fill.
  bool valid(const Ticket& t) const;
  // Releases the ticket and, if it is still valid and the value fits, stores `value` as the
  // reply to (db, args), expiring at expires_ms, replacing any entry with that identity.
  // args[1] must be the ticket's key.
  FillResult finish_fill(const Ticket& t, int db, Args args, std::string_view value, uint64_t expires_ms);
  // Releases the ticket without storing anything (the read failed, or was not cacheable).
  void abandon_fill(const Ticket& t);

  // Drops every entry of the key with this hash and cancels its pending fills. Returns the
  // number of entries dropped.
  size_t invalidate(uint64_t key_hash);
  size_t invalidate_key(std::string_view key) { return invalidate(hash_key(key)); }
  // Drops every entry and cancels every pending fill.
  void flush();
  // Drops every entry whose key (args[1]) matches the Redis glob `pattern` (core/glob.h), in
  // every database, and cancels every pending fill: a ticket holds only its key's hash, so a
  // fill of a matching key that has no entry yet cannot be told from the others, and
  // cancelling a fill is always safe (the read is answered, just not stored). Walks every
  // entry: O(entries) glob matches, no allocation. Returns the number of entries dropped.
  size_t invalidate_matching(std::string_view pattern);

  // Changes the budget, evicting down to it at once.
  void set_budget(size_t budget_bytes);
  void set_max_value(size_t max_value);

  size_t budget() const;
  size_t bytes_used() const;
  size_t entries() const;
  size_t pending_fills() const;  // tickets taken and not yet finished or abandoned
  const StoreStats& stats() const;

  // What one entry for (db, args) with a value of value_size bytes counts against the budget.
  static size_t entry_cost(int db, Args args, size_t value_size);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace respite::cache
