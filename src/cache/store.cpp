// Store: entries, two intrusive hash indexes, eviction queues, ghost list and fill tickets.
//
// Layout. Each entry is one allocation: the Entry header followed by its identity (every
// request argument as a 4-byte length and its bytes, the command name lower-cased), plus
// the value's own heap block. An entry sits in three intrusive doubly-linked lists at once:
//   - its bucket of the identity table (chained by XXH3-64 of db, argument count and the
//     arguments), which find() walks comparing the full identity, so hash collisions are
//     harmless; find() hashes argument by argument (seed chaining) and folds the command
//     name's case through a small stack buffer, so a lookup never allocates;
//   - its bucket of the key table (chained by the key's hash), which invalidate() walks,
//     dropping the entries of that exact key hash: O(variants of the key + bucket clash);
//   - its eviction queue.
// Both tables double when entries would exceed buckets and never shrink, so the load factor
// is at most 1, and above 1/2 while the store holds its peak number of entries.
//
// Memory: entry_cost = sizeof(Entry) + identity bytes + value bytes + kEntryOverhead, where
// kEntryOverhead (64) stands for what the entry costs outside itself: one slot in each bucket
// array (8 to 16 bytes each at the peak load factors above) and the allocator's headers of
// the entry block and the value block (about 16 each with glibc). bytes_used() is the exact
// sum of entry_cost over live entries. The ghost list and the ticket registry are not
// charged: the ghost holds at most max(kMinGhost, M's entry count) fingerprints at 12 to 24
// bytes each, the registry one node per key with a read in flight.
//
// Eviction, S3-FIFO (Yang et al., "FIFO queues are all you need for cache eviction", SOSP
// 2023), by bytes:
//   - A new entry enters the small FIFO S (probation, target 10% of the budget), unless its
//     identity hash is in the ghost G (it was evicted from S recently), then it enters the
//     main FIFO M directly. A refill of a cached identity keeps the old entry's queue and
//     frequency.
//   - A hit sets nothing but a 2-bit frequency (capped at 3); no list moves on the read path.
//   - To make room: while S holds >= 10% of the budget (or M is empty), take S's tail: if
//     it was hit since insertion, move it to M's head with frequency 0; else evict it and
//     remember its identity hash in G. Otherwise take M's tail: if its frequency is > 0,
//     decrement it and reinsert it at M's head; else evict it.
//   - G is a FIFO of 32-bit identity fingerprints holding at most as many as M has entries
//     (at least kMinGhost), with an open-addressing multiset for membership.
//   One-hit wonders (a scan, cold keys) pass through S and leave M's working set alone.
//   Measured with bench/cache_trace on Zipf traces: promoting after one hit in S does
//   slightly better than after two; a ghost of M's size (the paper's choice) is within half a
//   point of a quarter or twice that. The ghost survives flush(): it is history, not data.
// Eviction, LRU: one list, a hit moves the entry to the head, the tail is evicted.
//
// Expiry: find() drops an expired entry (a miss and an expiration). The store keeps the
// latest now_ms find() has seen; when eviction meets an entry expired by then, it drops it
// as an expiration rather than an eviction, and frees room without sacrificing a live entry.
//
// Tickets: a global sequence numbers tickets, invalidations and flushes. The registry maps a
// key hash with pending fills to {pending count, sequence of its last invalidation}; a
// ticket is valid while its sequence is above both its key's last invalidation and the last
// flush. An invalidation of a key with no pending fill records nothing: a later ticket gets
// a later sequence anyway.
//
// Pattern flushes (invalidate_matching): each entry's key is read back from its identity
// (argument 1) and matched; the walk follows both eviction queues, so it visits every entry
// once and allocates nothing. The registry knows key hashes, not keys, so a pending fill of a
// matching key that has no entry yet could not be found: a pattern flush cancels every
// pending fill, as flush() does. Keeping each pending key's bytes would spare the other reads
// in flight, at the price of an allocation per read; an admin command does not need it.
#include "cache/store.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>
#include <unordered_map>
#include <vector>

#include "core/glob.h"
#include "core/ring_queue.h"

namespace respite::cache {
namespace {

constexpr size_t kEntryOverhead = 64;      // bucket slots + allocator headers, see above
constexpr size_t kLenPrefix = sizeof(uint32_t);  // per argument in the stored identity
constexpr size_t kInitialBuckets = 16;     // both tables start here, a power of two
constexpr uint8_t kMaxFreq = 3;            // S3-FIFO's frequency saturates here
constexpr size_t kSmallPercent = 10;       // S3-FIFO's small queue target, % of the budget
constexpr size_t kMinGhost = 64;           // the ghost remembers at least this many
constexpr uint64_t kIdentitySeed = 0x72657370'69746521ULL;  // any constant

enum class Queue : uint8_t { Small, Main };

struct Entry {
  Entry* id_prev;      // identity-table bucket chain
  Entry* id_next;
  Entry* key_prev;     // key-table bucket chain
  Entry* key_next;
  Entry* q_prev;       // eviction queue, towards the head (newer)
  Entry* q_next;       // eviction queue, towards the tail (older)
  std::string value;   // the raw reply bytes
  uint64_t id_hash;    // identity_hash(db, args)
  uint64_t key_hash;   // hash_key() of the request's key (from its ticket)
  uint64_t expires_ms; // dropped once now_ms reaches this
  size_t cost;         // entry_cost(), charged to bytes_used
  int db;              // the database of the request
  uint32_t nargs;      // number of request arguments in the identity
  Queue queue;         // which eviction queue holds it (Main only, for LRU)
  uint8_t freq;        // S3-FIFO hit counter, 0..kMaxFreq

  // The identity bytes follow the header in the same allocation.
  char* identity() { return reinterpret_cast<char*>(this + 1); }
  const char* identity() const { return reinterpret_cast<const char*>(this + 1); }
};

unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c - 'A' + 'a') : c; }

size_t identity_size(Store::Args args) {
  size_t n = 0;
  for (std::string_view a : args) n += kLenPrefix + a.size();
  return n;
}

uint64_t identity_hash(int db, Store::Args args) {
  // The shape (db, argument count, name length) seeds the chain, so argument boundaries
  // cannot shift between two identities with the same chain of hashed pieces.
  struct {
    int64_t db;
    uint64_t nargs;
    uint64_t name_size;
  } shape{db, args.size(), args.empty() ? 0 : args[0].size()};
  uint64_t h = XXH3_64bits_withSeed(&shape, sizeof shape, kIdentitySeed);
  if (args.empty()) return h;
  std::string_view name = args[0];
  unsigned char folded[32];
  size_t off = 0;
  do {
    size_t n = std::min(sizeof folded, name.size() - off);
    for (size_t i = 0; i < n; ++i) folded[i] = lower(static_cast<unsigned char>(name[off + i]));
    h = XXH3_64bits_withSeed(folded, n, h);
    off += n;
  } while (off < name.size());
  for (size_t i = 1; i < args.size(); ++i) h = XXH3_64bits_withSeed(args[i].data(), args[i].size(), h);
  return h;
}

// The entry's key: argument 1 of its identity (finish_fill's contract); empty if it has none.
std::string_view entry_key(const Entry* e) {
  if (e->nargs < 2) return {};
  const char* p = e->identity();
  uint32_t len;
  std::memcpy(&len, p, sizeof len);
  p += sizeof len + len;
  std::memcpy(&len, p, sizeof len);
  return {p + sizeof len, len};
}

bool same_identity(const Entry* e, int db, Store::Args args) {
  if (e->db != db || e->nargs != args.size()) return false;
  const char* p = e->identity();
  for (size_t i = 0; i < args.size(); ++i) {
    uint32_t len;
    std::memcpy(&len, p, sizeof len);
    p += sizeof len;
    if (len != args[i].size()) return false;
    if (i == 0) {
      for (size_t k = 0; k < len; ++k) {
        if (static_cast<unsigned char>(p[k]) != lower(static_cast<unsigned char>(args[0][k]))) return false;
      }
    } else if (len != 0 && std::memcmp(p, args[i].data(), len) != 0) {
      return false;
    }
    p += len;
  }
  return true;
}

void write_identity(Entry* e, Store::Args args) {
  char* p = e->identity();
  for (size_t i = 0; i < args.size(); ++i) {
    const auto len = static_cast<uint32_t>(args[i].size());
    std::memcpy(p, &len, sizeof len);
    p += sizeof len;
    if (i == 0) {
      for (size_t k = 0; k < len; ++k) p[k] = static_cast<char>(lower(static_cast<unsigned char>(args[0][k])));
    } else if (len != 0) {
      std::memcpy(p, args[i].data(), len);
    }
    p += len;
  }
}

// An intrusive FIFO over Entry::q_prev/q_next, with the bytes and entries it holds.
struct Fifo {
  Entry* head = nullptr;  // newest
  Entry* tail = nullptr;  // oldest: the next eviction candidate
  size_t bytes = 0;       // sum of cost over its entries
  size_t count = 0;       // entries in it

  void push_head(Entry* e) {
    e->q_prev = nullptr;
    e->q_next = head;
    if (head) {
      head->q_prev = e;
    } else {
      tail = e;
    }
    head = e;
    bytes += e->cost;
    ++count;
  }
  void unlink(Entry* e) {
    if (e->q_prev) {
      e->q_prev->q_next = e->q_next;
    } else {
      head = e->q_next;
    }
    if (e->q_next) {
      e->q_next->q_prev = e->q_prev;
    } else {
      tail = e->q_prev;
    }
    bytes -= e->cost;
    --count;
  }
};

// Intrusive chained hash table over one pair of Entry links, keyed by one Entry hash field.
template <Entry* Entry::*Prev, Entry* Entry::*Next, uint64_t Entry::*Hash>
struct Chains {
  std::vector<Entry*> buckets = std::vector<Entry*>(kInitialBuckets, nullptr);  // power-of-two size

  Entry* bucket(uint64_t h) const { return buckets[h & (buckets.size() - 1)]; }
  void link(Entry* e) {
    Entry*& head = buckets[e->*Hash & (buckets.size() - 1)];
    e->*Prev = nullptr;
    e->*Next = head;
    if (head) head->*Prev = e;
    head = e;
  }
  void unlink(Entry* e) {
    if (e->*Prev) {
      e->*Prev->*Next = e->*Next;
    } else {
      buckets[e->*Hash & (buckets.size() - 1)] = e->*Next;
    }
    if (e->*Next) e->*Next->*Prev = e->*Prev;
  }
  void resize(size_t n) {
    std::vector<Entry*> old(n, nullptr);
    old.swap(buckets);
    for (Entry* head : old) {
      while (head) {
        Entry* next = head->*Next;
        link(head);
        head = next;
      }
    }
  }
};

// S3-FIFO's ghost: the fingerprints of recently evicted identities, oldest first, and an
// open-addressing (linear probing) multiset of the same fingerprints for membership.
class Ghost {
 public:
  bool contains(uint64_t id_hash) const {
    if (slots_.empty()) return false;
    const uint32_t f = fingerprint(id_hash);
    const size_t mask = slots_.size() - 1;
    for (size_t i = f & mask; slots_[i] != 0; i = (i + 1) & mask) {
      if (slots_[i] == f) return true;
    }
    return false;
  }
  // Remembers id_hash, forgetting the oldest beyond `limit`.
  void add(uint64_t id_hash, size_t limit) {
    const uint32_t f = fingerprint(id_hash);
    fifo_.push_back(f);
    insert(f);
    while (fifo_.size() > limit) {
      erase(fifo_.front());
      fifo_.pop_front();
    }
  }

 private:
  static uint32_t fingerprint(uint64_t h) {
    auto f = static_cast<uint32_t>(h >> 32);  // the identity table uses the low bits
    return f ? f : 1;                          // 0 marks an empty slot
  }
  void insert(uint32_t f) {
    if ((used_ + 1) * 2 > slots_.size()) grow();
    const size_t mask = slots_.size() - 1;
    size_t i = f & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = f;
    ++used_;
  }
  void erase(uint32_t f) {
    const size_t mask = slots_.size() - 1;
    size_t hole = f & mask;
    while (slots_[hole] != f) {
      if (slots_[hole] == 0) return;
      hole = (hole + 1) & mask;
    }
    // Backward-shift deletion: pull later members of the probe run into the hole when
    // their home slot does not lie cyclically in (hole, j].
    for (size_t j = (hole + 1) & mask; slots_[j] != 0; j = (j + 1) & mask) {
      const size_t home = slots_[j] & mask;
      const bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (!stays) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = 0;
    --used_;
  }
  void grow() {
    std::vector<uint32_t> old(std::max<size_t>(16, slots_.size() * 2), 0);
    old.swap(slots_);
    used_ = 0;
    for (uint32_t f : old) {
      if (f != 0) insert(f);
    }
  }

  core::RingQueue<uint32_t> fifo_;  // fingerprints in eviction order, oldest at the front
  std::vector<uint32_t> slots_;     // the same fingerprints, a power-of-two table; 0 = empty
  size_t used_ = 0;                 // occupied slots
};

struct Pending {
  uint32_t count = 0;          // tickets of this key not yet released
  uint64_t invalidated = 0;    // sequence of the key's last invalidate(), 0 if none
};

}  // namespace

struct Store::Impl {
  size_t budget;           // most bytes_used
  size_t max_value;        // longest value stored
  Eviction policy;         // S3Fifo or Lru
  Chains<&Entry::id_prev, &Entry::id_next, &Entry::id_hash> by_identity;  // find()
  Chains<&Entry::key_prev, &Entry::key_next, &Entry::key_hash> by_key;    // invalidate()
  Fifo small;              // S3-FIFO's probation queue (unused by LRU)
  Fifo main;               // S3-FIFO's main queue, or the LRU list (head = most recent)
  Ghost ghost;             // S3-FIFO's recently evicted identities
  size_t entries = 0;      // live entries
  size_t bytes = 0;        // sum of their costs
  std::unordered_map<uint64_t, Pending> pending;  // key hash -> its outstanding tickets
  size_t pending_total = 0;  // outstanding tickets over all keys
  uint64_t seq = 0;        // last sequence handed to a ticket, invalidation or flush
  uint64_t flushed = 0;    // sequence of the last flush() or invalidate_matching()
  uint64_t latest_now = 0; // the latest now_ms find() has seen: eviction's notion of expired
  StoreStats stats;

  Impl(size_t b, size_t mv, Eviction p) : budget(b), max_value(mv), policy(p) {}
  ~Impl() { drop_all(); }

  Fifo& queue_of(const Entry* e) { return e->queue == Queue::Small ? small : main; }

  Entry* lookup(int db, Args args, uint64_t h) const {
    for (Entry* e = by_identity.bucket(h); e; e = e->id_next) {
      if (e->id_hash == h && same_identity(e, db, args)) return e;
    }
    return nullptr;
  }

  static void destroy(Entry* e) {
    e->~Entry();
    ::operator delete(e);
  }

  void remove(Entry* e) {
    by_identity.unlink(e);
    by_key.unlink(e);
    queue_of(e).unlink(e);
    bytes -= e->cost;
    --entries;
    destroy(e);
  }

  void drop_all() {
    for (Fifo* q : {&small, &main}) {
      while (Entry* e = q->tail) {
        q->unlink(e);
        destroy(e);
      }
    }
    std::fill(by_identity.buckets.begin(), by_identity.buckets.end(), nullptr);
    std::fill(by_key.buckets.begin(), by_key.buckets.end(), nullptr);
    entries = 0;
    bytes = 0;
  }

  bool expired(const Entry* e) const { return e->expires_ms <= latest_now; }

  // Drops the eviction candidate `e`: an expiration if it already expired, else an eviction.
  void drop_victim(Entry* e) {
    if (expired(e)) {
      ++stats.expirations;
    } else {
      ++stats.evictions;
    }
    remove(e);
  }

  void evict_small() {
    Entry* e = small.tail;
    if (!expired(e) && e->freq > 0) {  // used while on probation: promote
      small.unlink(e);
      e->queue = Queue::Main;
      e->freq = 0;
      main.push_head(e);
      return;
    }
    if (!expired(e)) ghost.add(e->id_hash, std::max(kMinGhost, main.count));
    drop_victim(e);
  }

  void evict_main() {
    Entry* e = main.tail;
    if (!expired(e) && e->freq > 0) {  // used since it last reached the tail: reinsert
      --e->freq;
      main.unlink(e);
      main.push_head(e);
      return;
    }
    drop_victim(e);
  }

  // Evicts until `need` more bytes fit in the budget (or nothing is left).
  void make_room(size_t need) {
    while (entries > 0 && bytes + need > budget) {
      if (policy == Eviction::Lru) {
        drop_victim(main.tail);
      } else if (small.count > 0 && (main.count == 0 || small.bytes >= budget / 100 * kSmallPercent)) {
        evict_small();
      } else {
        evict_main();
      }
    }
  }

  void insert(uint64_t id_hash, uint64_t key_hash, int db, Args args, std::string_view value,
              uint64_t expires_ms, size_t cost, Queue queue, uint8_t freq) {
    make_room(cost);
    if (entries + 1 > by_identity.buckets.size()) {
      by_identity.resize(by_identity.buckets.size() * 2);
      by_key.resize(by_key.buckets.size() * 2);
    }
    Entry* e = new (::operator new(sizeof(Entry) + identity_size(args))) Entry{};
    e->value.assign(value);
    e->id_hash = id_hash;
    e->key_hash = key_hash;
    e->expires_ms = expires_ms;
    e->cost = cost;
    e->db = db;
    e->nargs = static_cast<uint32_t>(args.size());
    e->queue = queue;
    e->freq = freq;
    write_identity(e, args);
    by_identity.link(e);
    by_key.link(e);
    queue_of(e).push_head(e);
    bytes += cost;
    ++entries;
  }

  void release(const Ticket& t) {
    if (t.seq == 0) return;
    auto it = pending.find(t.key_hash);
    if (it == pending.end()) return;  // released twice: nothing left to release
    if (--it->second.count == 0) pending.erase(it);
    --pending_total;
  }
};

uint64_t hash_key(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

Store::Store(size_t budget_bytes, size_t max_value, Eviction policy)
    : impl_(std::make_unique<Impl>(budget_bytes, max_value, policy)) {}

Store::~Store() = default;

const std::string* Store::find(int db, Args args, uint64_t now_ms) {
  Impl& s = *impl_;
  if (now_ms > s.latest_now) s.latest_now = now_ms;
  Entry* e = s.lookup(db, args, identity_hash(db, args));
  if (e && e->expires_ms <= now_ms) {
    s.remove(e);
    ++s.stats.expirations;
    e = nullptr;
  }
  if (!e) {
    ++s.stats.misses;
    return nullptr;
  }
  ++s.stats.hits;
  if (s.policy == Eviction::Lru) {
    s.main.unlink(e);
    s.main.push_head(e);
  } else if (e->freq < kMaxFreq) {
    ++e->freq;
  }
  return &e->value;
}

bool Store::contains(int db, Args args, uint64_t now_ms) const {
  const Entry* e = impl_->lookup(db, args, identity_hash(db, args));
  return e && e->expires_ms > now_ms;
}

const std::string* Store::find_stale(int db, Args args, uint64_t now_ms, uint64_t grace_ms) {
  Impl& s = *impl_;
  Entry* e = s.lookup(db, args, identity_hash(db, args));
  if (!e || now_ms >= e->expires_ms + grace_ms) return nullptr;
  ++s.stats.stale_hits;
  return &e->value;
}

Store::Ticket Store::begin_fill(uint64_t key_hash) {
  Impl& s = *impl_;
  ++s.pending[key_hash].count;
  ++s.pending_total;
  return Ticket{key_hash, ++s.seq};
}

bool Store::valid(const Ticket& t) const {
  const Impl& s = *impl_;
  if (t.seq == 0 || t.seq <= s.flushed) return false;
  auto it = s.pending.find(t.key_hash);
  return it != s.pending.end() && t.seq > it->second.invalidated;
}

Store::FillResult Store::finish_fill(const Ticket& t, int db, Args args, std::string_view value,
                                     uint64_t expires_ms) {
  Impl& s = *impl_;
  const bool ok = valid(t);
  s.release(t);
  if (!ok) {
    ++s.stats.cancelled_fills;
    return FillResult::Cancelled;
  }
  const uint64_t h = identity_hash(db, args);
  Entry* old = s.lookup(db, args, h);
  const size_t cost = entry_cost(db, args, value.size());
  bool fits = value.size() <= s.max_value && cost <= s.budget && !args.empty() &&
              args.size() <= std::numeric_limits<uint32_t>::max();
  for (std::string_view a : args) fits = fits && a.size() <= std::numeric_limits<uint32_t>::max();
  if (!fits) {
    if (old) s.remove(old);  // the reply changed since: the old one must not be served either
    ++s.stats.too_large;
    return FillResult::TooLarge;
  }
  Queue queue = Queue::Main;
  uint8_t freq = 0;
  if (old) {
    queue = old->queue;
    freq = old->freq;
    s.remove(old);
  } else if (s.policy == Eviction::S3Fifo && !s.ghost.contains(h)) {
    queue = Queue::Small;
  }
  s.insert(h, t.key_hash, db, args, value, expires_ms, cost, queue, freq);
  ++s.stats.fills;
  return FillResult::Stored;
}

void Store::abandon_fill(const Ticket& t) { impl_->release(t); }

size_t Store::invalidate(uint64_t key_hash) {
  Impl& s = *impl_;
  ++s.stats.invalidations;
  auto it = s.pending.find(key_hash);
  if (it != s.pending.end()) it->second.invalidated = ++s.seq;
  size_t dropped = 0;
  Entry* e = s.by_key.bucket(key_hash);
  while (e) {
    Entry* next = e->key_next;
    if (e->key_hash == key_hash) {
      s.remove(e);
      ++dropped;
    }
    e = next;
  }
  s.stats.invalidated_entries += dropped;
  return dropped;
}

void Store::flush() {
  Impl& s = *impl_;
  ++s.stats.flushes;
  s.flushed = ++s.seq;
  s.drop_all();
}

size_t Store::invalidate_matching(std::string_view pattern) {
  Impl& s = *impl_;
  ++s.stats.pattern_flushes;
  s.flushed = ++s.seq;
  size_t dropped = 0;
  for (Fifo* q : {&s.small, &s.main}) {
    Entry* e = q->head;
    while (e) {
      Entry* next = e->q_next;
      if (core::glob_match(pattern, entry_key(e))) {
        s.remove(e);
        ++dropped;
      }
      e = next;
    }
  }
  s.stats.pattern_flushed_entries += dropped;
  return dropped;
}

void Store::set_budget(size_t budget_bytes) {
  impl_->budget = budget_bytes;
  impl_->make_room(0);
}

void Store::set_max_value(size_t max_value) { impl_->max_value = max_value; }

size_t Store::budget() const { return impl_->budget; }
size_t Store::bytes_used() const { return impl_->bytes; }
size_t Store::entries() const { return impl_->entries; }
size_t Store::pending_fills() const { return impl_->pending_total; }
const StoreStats& Store::stats() const { return impl_->stats; }

size_t Store::entry_cost(int /*db*/, Args args, size_t value_size) {
  return sizeof(Entry) + identity_size(args) + value_size + kEntryOverhead;
}

}  // namespace respite::cache
