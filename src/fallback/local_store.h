// LocalStore: the in-memory keyspace that answers clients while Redis is unreachable
// (fallback.mode = "local"), for the common string, key, hash, list and set commands.
//
// Knowledge. Redis holds the real data and the store cannot see it, so the store answers
// only from keys it *knows*: keys whose whole current value it holds, or that it knows do
// not exist. A key becomes known when
//   - a command defines its whole value whatever the old one was (blind writes: SET without
//     NX/XX/GET/KEEPTTL, SETEX, PSETEX, MSET);
//   - the caller seeds it (seed_*) from its near-cache, or as absent;
// and stays known, whatever runs on it, until clear() or, for a seeded key no write has
// touched, eviction. Known-absent keys are remembered as tombstones (deleted or expired
// keys, seed_absent), so a key deleted during the outage never falls back to a stale copy.
// A command whose reply or effect depends on a key the store does not know returns Unknown
// and changes nothing: reads of it, writes that read it (INCR, APPEND, SETNX, SET NX/XX/GET
// /KEEPTTL, GETSET, GETDEL, DEL, EXPIRE, PERSIST, HSET, HDEL, LPUSH, SADD...), and every
// multi-key command (MGET, DEL, EXISTS, MSETNX) with at least one unknown key: multi-key
// commands are never half-applied. Errors Redis reports before it looks at the key (wrong
// arity, syntax, a non-integer increment, an invalid expire time) are answered anyway.
// Expiry is knowledge too: a seeded key's TTL is unknown unless given, so TTL, PTTL,
// EXPIRETIME, PERSIST and EXPIRE with NX/XX/GT/LT on it return Unknown (`reply` then holds
// unknown_ttl_error()), while commands that set or clear the TTL (SET without KEEPTTL,
// GETSET, MSET, SETEX, EXPIRE without flags, GETEX with EX/PX/EXAT/PXAT/PERSIST) make it
// known; commands that keep the TTL (APPEND, INCR, HSET, SET KEEPTTL...) leave it unknown. A
// known key whose expiry passes becomes known-absent.
//
// Replies are Redis 7.0's RESP2 bytes, errors included (checked against a real redis-server
// by tests/integration/fallback_store_test.cpp over tests/fallback_cases.h). Element order:
// hashes keep insertion order (as Redis's small listpack hashes do; large hashes have no
// defined order in Redis), sets have no defined order.
//
// Journal. Every accepted write that may have changed something fills `journal` with the
// command to replay into Redis once it is back, in order, so that Redis ends where the
// client was told it is:
//   - relative times become absolute: SET k v EX/PX/EXAT n -> SET k v PXAT <ms>, SETEX and
//     PSETEX -> SET k v PXAT <ms>, EXPIRE/PEXPIRE/EXPIREAT -> PEXPIREAT k <ms> (NX/XX/GT/LT
//     kept), GETEX k EX/PX/EXAT/PXAT n -> PEXPIREAT k <ms>, GETEX k PERSIST -> PERSIST k; an
//     EXPIRE* or GETEX whose time has already passed deleted the key -> DEL k;
//   - float increments become their result: INCRBYFLOAT -> SET k <result> KEEPTTL,
//     HINCRBYFLOAT -> HSET k f <result> (as Redis's own AOF does: exact across replays);
//   - SET drops GET (only the reply differs) and keeps NX/XX/KEEPTTL; everything else is
//     replayed as given, the name upper-cased (INCR stays INCR: it applies on top of whatever
//     Redis holds at replay time, which is what the store saw if Redis missed no writes);
//   - writes that changed nothing leave `journal` empty: SET NX/XX, SETNX, MSETNX, HSETNX
//     that did not set; DEL, UNLINK, HDEL, SREM, SADD, LPUSHX, RPUSHX, EXPIRE*, PERSIST that
//     replied 0; GETDEL, LPOP, RPOP of an absent key (or LPOP k 0); GETEX without options
//     (or PERSIST on a key without expiry); and every error.
//
// Memory. Each key costs kOverhead + its name + its value's bytes (strings), plus kOverhead
// + the bytes of each hash field and value, list element and set member; a tombstone costs
// kOverhead + its name. bytes() is the sum over known keys, expired keys counted out once an
// execute() or expire() has seen the time pass. Keys written during the outage are never
// dropped: a write that would take bytes() over max_bytes first evicts seeded keys that no
// write has touched (oldest seed first), and if that is not enough it is Refused with an
// -OOM error and nothing changes. Reads are never refused for memory.
//
// Pure data structure: no I/O, no clock (callers pass now_ms, wall-clock milliseconds, the
// clock Redis's absolute expiry times use), single-threaded, no exceptions beyond
// std::bad_alloc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace respite::fallback {

enum class Outcome : uint8_t {
  Done,     // `reply` holds Redis's RESP2 reply; for a write, `journal` the command to replay (may be empty)
  Unknown,  // the answer depends on a key the store does not know; nothing changed. `reply` holds
            // unknown_error() for the first such key, for callers with nothing better to say
  Refused,  // `reply` holds a RESP error line (Redis's own error, -OOM or -FALLBACK); nothing changed
};

namespace detail {
class Keyspace;
}

class LocalStore {
 public:
  using Args = std::span<const std::string_view>;  // the whole request; args[0] is the command name
  using Field = std::pair<std::string_view, std::string_view>;

  // Expiry arguments of the seed_* functions.
  static constexpr int64_t kTtlUnknown = INT64_MIN;  // the key's expiry is not known
  static constexpr int64_t kNoExpiry = 0;            // known to have no expiry
  // What every key, hash field, list element and set member costs on top of its bytes.
  static constexpr size_t kOverhead = 64;

  struct Stats {
    uint64_t reads = 0;        // Done outcomes of read-only commands
    uint64_t writes = 0;       // Done outcomes of write commands (journal empty or not)
    uint64_t journaled = 0;    // of those, the ones with a non-empty journal
    uint64_t unknown = 0;      // Unknown outcomes
    uint64_t refused = 0;      // Refused outcomes, all kinds (= errors + unsupported + full)
    uint64_t errors = 0;       //   Redis's own error replies (arity, syntax, WRONGTYPE...)
    uint64_t unsupported = 0;  //   -FALLBACK: a command the store does not implement
    uint64_t full = 0;         //   -OOM: the write did not fit in max_bytes
    uint64_t seeded = 0;       // seed_* calls that stored a key
    uint64_t seeds_refused = 0;  // seed_* calls refused (key already known, or no room)
    uint64_t evicted = 0;      // seeded keys dropped to make room
    uint64_t expired = 0;      // keys whose expiry passed (now tombstones)
  };

  // max_bytes: the most bytes() may reach through writes and seeds.
  explicit LocalStore(size_t max_bytes);
  ~LocalStore();
  LocalStore(const LocalStore&) = delete;
  LocalStore& operator=(const LocalStore&) = delete;

  // Runs one command in database `db` (any int; each is its own keyspace) at wall-clock time
  // now_ms. args[0] is the command name, any case. `reply` and `journal` are overwritten (the
  // journal holds the replay command's arguments, args[0] upper case, for database `db`).
  // Also expires the keys whose time passed before now_ms. The string views need only live
  // for the call.
  Outcome execute(int db, Args args, uint64_t now_ms, std::string& reply, std::vector<std::string>& journal);

  // Whether `command` (any case) is one this store implements; execute() refuses any other
  // with -FALLBACK.
  static bool supports(std::string_view command);
  // Whether `command` is a supported command that may modify the keyspace (its accepted runs
  // are journaled). False for unsupported commands.
  static bool is_write(std::string_view command);

  // Seeding from the near-cache: the key's value as Redis last had it. Only an unknown key is
  // seeded (a known one already holds newer knowledge): false when the key is known, or
  // when it does not fit even after evicting older seeds (then nothing is stored). A seed
  // without a value (empty hash, list or set) seeds the key as absent, as Redis never holds
  // empty collections. expires_at_ms: absolute ms, kNoExpiry, or kTtlUnknown.
  bool seed_string(int db, std::string_view key, std::string_view value, int64_t expires_at_ms = kTtlUnknown);
  bool seed_absent(int db, std::string_view key);  // known not to exist (a cached nil GET, EXISTS 0)
  bool seed_hash(int db, std::string_view key, std::span<const Field> fields, int64_t expires_at_ms = kTtlUnknown);
  bool seed_list(int db, std::string_view key, std::span<const std::string_view> elements,
                 int64_t expires_at_ms = kTtlUnknown);
  bool seed_set(int db, std::string_view key, std::span<const std::string_view> members,
                int64_t expires_at_ms = kTtlUnknown);

  // Makes the key unknown again, whatever the store knew of it: for a write the store
  // accepted but the caller could not journal (so it was not acknowledged).
  void forget(int db, std::string_view key);

  // Whether the store knows the key (holds its value or knows it is absent).
  bool knows(int db, std::string_view key) const;

  // Expires the keys whose time passed before now_ms (execute() does this too), so bytes()
  // and keys() reflect them.
  void expire(uint64_t now_ms);

  size_t bytes() const;      // memory accounted, see above
  size_t max_bytes() const;
  // Changes the bound; a lower one applies to later writes (nothing is dropped now).
  void set_max_bytes(size_t max_bytes);
  size_t keys() const;       // known keys that hold a value (tombstones excluded)
  size_t entries() const;    // known keys, tombstones included
  // bytes() recomputed from every value (O(everything)): equal to bytes() unless the
  // accounting is broken. For tests.
  size_t recount_bytes() const;
  // Forgets everything (Redis is back and the journal replayed): every key unknown again.
  void clear();
  const Stats& stats() const;

  // "-FALLBACK cannot answer '<cmd>' for key '<key>' while Redis is unreachable: respite has
  // no copy of it\r\n", the command lower case, the key cut at 64 bytes with non-printable
  // bytes escaped as \xNN.
  static std::string unknown_error(std::string_view command, std::string_view key);
  // Same, for a key whose value is known but whose expiry is not.
  static std::string unknown_ttl_error(std::string_view command, std::string_view key);
  // "-FALLBACK '<cmd>' is not available while Redis is unreachable (respite's local store
  // does not implement it)\r\n".
  static std::string unsupported_error(std::string_view command);
  // The -OOM error of a write that does not fit.
  static std::string_view full_error();

 private:
  std::unique_ptr<detail::Keyspace> ks_;  // entries, memory, expiry; see local_store_internal.h
};

}  // namespace respite::fallback
