// Internals shared by the LocalStore source files: the keyspace (entries, knowledge, memory
// accounting, expiry index, seed FIFO), one command call's context, the command handlers'
// declarations, RESP2 reply helpers and the store's error lines.
//
// Files: local_store.cpp (LocalStore, the dispatch table), local_store_keyspace.cpp
// (Keyspace), local_store_strings.cpp, local_store_keys.cpp, local_store_hashes.cpp,
// local_store_lists_sets.cpp (the handlers).
//
// Handler contract: a handler runs after the arity check. It validates everything it can
// before touching the keyspace and reports Unknown or an error with nothing changed; before
// a mutation that grows the keyspace it calls Keyspace::make_room() with the exact growth
// and stops with full() if that fails; then it mutates through Keyspace's helpers, which keep
// every entry's cost and the totals exact, and fills c.reply and c.journal.
#pragma once

#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "fallback/local_store.h"

namespace respite::fallback::detail {

inline constexpr size_t kOverhead = LocalStore::kOverhead;

// XXH3 over the bytes; transparent, so maps keyed by std::string are searched by string_view.
struct BytesHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return static_cast<size_t>(XXH3_64bits(s.data(), s.size())); }
};

// A hash in insertion order (Redis's listpack order), with an index by field.
class HashValue {
 public:
  using Pair = std::pair<std::string, std::string>;  // field, value
  HashValue() = default;
  // The index holds views into the list's nodes: a move keeps the nodes, a copy would not.
  HashValue(const HashValue&) = delete;
  HashValue& operator=(const HashValue&) = delete;
  HashValue(HashValue&&) = default;
  HashValue& operator=(HashValue&&) = default;

  const Pair* find(std::string_view field) const;
  // Sets field to value; true when the field is new. Returns the change in the value's cost.
  int64_t set(std::string_view field, std::string_view value, bool* added = nullptr);
  // Removes the field; the (negative) change in cost, 0 if it was not there.
  int64_t erase(std::string_view field);
  size_t size() const { return order_.size(); }
  const std::list<Pair>& pairs() const { return order_; }

 private:
  std::list<Pair> order_;  // fields in insertion order
  std::unordered_map<std::string_view, std::list<Pair>::iterator, BytesHash> index_;  // field -> node
};

using ListValue = std::deque<std::string>;
using SetValue = std::unordered_set<std::string, BytesHash, std::equal_to<>>;

// Index order of Value's alternatives.
enum class Type : uint8_t { None, String, Hash, List, Set };
using Value = std::variant<std::monostate, std::string, HashValue, ListValue, SetValue>;

// One known key: its value (monostate: known absent, a tombstone) and what the store knows
// of its expiry. Lives in a node of its database's map, so its address never changes.
struct Entry {
  Value value;                    // the key's value; monostate for a known-absent key
  int64_t expires_ms = 0;         // absolute expiry in ms; 0: none (meaningful when ttl_known)
  size_t cost = 0;                // what it counts against max_bytes (see LocalStore)
  bool ttl_known = true;          // false: seeded without its expiry
  bool written = false;           // touched by a write during the outage: never evicted
  Entry* seed_prev = nullptr;     // seed FIFO (unwritten entries), towards the older end
  Entry* seed_next = nullptr;     // seed FIFO, towards the newer end
  int db = 0;                     // its database
  const std::string* key = nullptr;  // its name: the map node's key

  Type type() const { return static_cast<Type>(value.index()); }
  bool present() const { return type() != Type::None; }
};

// Cost of a value's contents (without the entry's kOverhead + key).
size_t value_cost(const Value& v);
inline size_t element_cost(std::string_view s) { return kOverhead + s.size(); }
inline size_t pair_cost(std::string_view f, std::string_view v) { return kOverhead + f.size() + v.size(); }
inline size_t base_cost(std::string_view key) { return kOverhead + key.size(); }

enum class Known : uint8_t { Unknown, Absent, Present };
struct Found {
  Known state = Known::Unknown;
  Entry* e = nullptr;  // null only when Unknown
};

class Keyspace {
 public:
  explicit Keyspace(size_t max_bytes) : max_bytes_(max_bytes) {}
  ~Keyspace() { clear(); }
  Keyspace(const Keyspace&) = delete;
  Keyspace& operator=(const Keyspace&) = delete;

  Found lookup(int db, std::string_view key);
  const Entry* find(int db, std::string_view key) const;

  // The entry of `key`, created as a written tombstone (charged base_cost) if unknown. The
  // caller made room for it.
  Entry& obtain(int db, std::string_view key);
  // Marks the entry as written during the outage (out of the seed FIFO, never evicted).
  void mark_written(Entry& e);
  // Replaces the value (charging the difference); a monostate makes the key absent, which
  // also clears its expiry (known).
  void assign(Entry& e, Value v);
  void assign_string(Entry& e, std::string_view s);
  // Records a change of `delta` bytes in the entry's value made in place.
  void charge(Entry& e, int64_t delta);
  // Sets the expiry (absolute ms; 0: none): known from now on.
  void set_expiry(Entry& e, int64_t when);
  // Makes room for `growth` more bytes: true if bytes() + growth fits max_bytes, evicting
  // unwritten (seeded) entries, oldest first, except those in `keep`. Evicts nothing and
  // returns false if even evicting all of them would not be enough.
  bool make_room(int64_t growth, std::span<Entry* const> keep = {});
  // Expiry of keys whose time is before `now` (Redis: a key is expired once now > when).
  void sweep(int64_t now);

  // Forgets the key if known: it is unknown again (see LocalStore::forget).
  void forget(int db, std::string_view key) {
    if (const Entry* e = find(db, key)) erase(const_cast<Entry&>(*e));
  }

  // Seeding: a new unwritten entry at the newest end of the seed FIFO.
  bool seed(int db, std::string_view key, Value v, int64_t expires_at_ms);

  void clear();
  size_t bytes() const { return bytes_; }
  size_t max_bytes() const { return max_bytes_; }
  void set_max_bytes(size_t m) { max_bytes_ = m; }
  size_t keys() const { return entries_ - tombstones_; }
  size_t entries() const { return entries_; }
  // Costs recomputed from the values (tests: must equal bytes()).
  size_t recount() const;

  LocalStore::Stats stats;  // counters, updated by LocalStore and the keyspace

 private:
  using Db = std::unordered_map<std::string, Entry, BytesHash, std::equal_to<>>;

  void erase(Entry& e);  // forgets the key (eviction)
  void seed_unlink(Entry& e);
  void seed_push(Entry& e);
  void account(Entry& e, size_t new_cost);  // sets e.cost, keeping the totals

  std::unordered_map<int, Db> dbs_;                 // database number -> its keys
  std::set<std::pair<int64_t, Entry*>> expiries_;  // (expires_ms, entry) of keys with a known expiry
  Entry* seed_oldest_ = nullptr;                    // seed FIFO ends
  Entry* seed_newest_ = nullptr;
  size_t seed_bytes_ = 0;   // cost of the entries in the seed FIFO (evictable)
  size_t bytes_ = 0;        // cost of every entry
  size_t max_bytes_;        // the bound on bytes_ for writes and seeds
  size_t entries_ = 0;      // entries, tombstones included
  size_t tombstones_ = 0;   // entries holding no value
};

// One execute() call.
struct Call {
  Keyspace& ks;
  std::string_view name;       // the command's lower-case name
  int db;
  LocalStore::Args args;       // args[0] is the command as the client spelt it
  int64_t now;                 // wall-clock ms
  std::string& reply;
  std::vector<std::string>& journal;
};

using Handler = Outcome (*)(Call&);

// --- outcomes ---
Outcome fail(Call& c, std::string_view error_line);      // Refused with this error
Outcome unknown(Call& c, std::string_view key);         // Unknown: the key is not known
Outcome unknown_ttl(Call& c, std::string_view key);     // Unknown: its expiry is not known
Outcome full(Call& c);                                  // Refused: -OOM
Outcome wrong_type(Call& c);                            // Refused: -WRONGTYPE

// --- replies ---
void reply_int(std::string& out, int64_t v);
void reply_bulk(std::string& out, std::string_view s);
void reply_array(std::string& out, size_t n);
inline void reply_nil(std::string& out) { out.append("$-1\r\n"); }
inline void reply_ok(std::string& out) { out.append("+OK\r\n"); }

// --- journal ---
void journal_as_given(Call& c);  // the request itself, the name upper case

// --- the store's error lines, in Redis 7.0's exact wording (the client must not tell the
// store from Redis); the ones respite also sends elsewhere come from core/errors.h ---
namespace err {
inline constexpr std::string_view kWrongType = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
inline constexpr std::string_view kOverflow = "-ERR increment or decrement would overflow\r\n";
inline constexpr std::string_view kDecrOverflow = "-ERR decrement would overflow\r\n";
inline constexpr std::string_view kNotFloat = "-ERR value is not a valid float\r\n";
inline constexpr std::string_view kResultNanOrInf = "-ERR increment would produce NaN or Infinity\r\n";
inline constexpr std::string_view kIncrNanOrInf = "-ERR value is NaN or Infinity\r\n";
inline constexpr std::string_view kHashNotInteger = "-ERR hash value is not an integer\r\n";
inline constexpr std::string_view kHashNotFloat = "-ERR hash value is not a float\r\n";
inline constexpr std::string_view kNotPositive = "-ERR value is out of range, must be positive\r\n";
inline constexpr std::string_view kTooLong = "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n";
inline constexpr std::string_view kExpireNxAndOthers =
    "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n";
inline constexpr std::string_view kExpireGtAndLt = "-ERR GT and LT options at the same time are not compatible\r\n";
inline constexpr std::string_view kFull =
    "-OOM respite's fallback store is full (fallback.max_memory); the write was not applied\r\n";
// "-ERR invalid expire time in '<cmd>' command".
std::string invalid_expire(std::string_view command);
// "-ERR Unsupported option <opt>" (CR and LF shown as spaces, as Redis does).
std::string unsupported_option(std::string_view option);
}  // namespace err

// Redis's largest string (proto-max-bulk-len's default).
inline constexpr size_t kMaxStringLength = 512ull * 1024 * 1024;

// Case-insensitive ASCII comparison (option names).
bool iequals(std::string_view a, std::string_view b);

// --- handlers, by file ---
// local_store_strings.cpp
Outcome cmd_get(Call& c);
Outcome cmd_set(Call& c);
Outcome cmd_setnx(Call& c);
Outcome cmd_setex(Call& c);
Outcome cmd_psetex(Call& c);
Outcome cmd_getset(Call& c);
Outcome cmd_getdel(Call& c);
Outcome cmd_getex(Call& c);
Outcome cmd_mget(Call& c);
Outcome cmd_mset(Call& c);
Outcome cmd_msetnx(Call& c);
Outcome cmd_incr(Call& c);
Outcome cmd_decr(Call& c);
Outcome cmd_incrby(Call& c);
Outcome cmd_decrby(Call& c);
Outcome cmd_incrbyfloat(Call& c);
Outcome cmd_append(Call& c);
Outcome cmd_strlen(Call& c);
// local_store_keys.cpp
Outcome cmd_del(Call& c);  // DEL and UNLINK
Outcome cmd_exists(Call& c);
Outcome cmd_type(Call& c);
Outcome cmd_ttl(Call& c);  // TTL, PTTL, EXPIRETIME, PEXPIRETIME
Outcome cmd_expire(Call& c);  // EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT
Outcome cmd_persist(Call& c);
// local_store_hashes.cpp
Outcome cmd_hset(Call& c);  // HSET and HMSET
Outcome cmd_hsetnx(Call& c);
Outcome cmd_hget(Call& c);
Outcome cmd_hmget(Call& c);
Outcome cmd_hdel(Call& c);
Outcome cmd_hgetall(Call& c);  // HGETALL, HKEYS, HVALS
Outcome cmd_hlen(Call& c);
Outcome cmd_hexists(Call& c);
Outcome cmd_hstrlen(Call& c);
Outcome cmd_hincrby(Call& c);
Outcome cmd_hincrbyfloat(Call& c);
// local_store_lists_sets.cpp
Outcome cmd_push(Call& c);  // LPUSH, RPUSH, LPUSHX, RPUSHX
Outcome cmd_pop(Call& c);   // LPOP, RPOP
Outcome cmd_llen(Call& c);
Outcome cmd_lrange(Call& c);
Outcome cmd_lindex(Call& c);
Outcome cmd_sadd(Call& c);
Outcome cmd_srem(Call& c);
Outcome cmd_smembers(Call& c);
Outcome cmd_sismember(Call& c);
Outcome cmd_smismember(Call& c);
Outcome cmd_scard(Call& c);

}  // namespace respite::fallback::detail
