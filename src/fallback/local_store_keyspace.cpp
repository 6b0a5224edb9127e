// Keyspace: the LocalStore's entries and their bookkeeping.
//
// Every known key is one Entry in its database's map (node-based, so entries and their key
// strings never move and can be linked by pointer). Three structures point at entries:
//   - the expiry index, an ordered set of (expires_ms, entry) over the entries with a known
//     expiry, so sweep() finds the keys due in O(log n) each;
//   - the seed FIFO, a doubly-linked list through the unwritten entries (seeded and not
//     touched by a write since), oldest first: the only entries make_room() may evict;
//   - the totals: bytes_ (every entry's cost), seed_bytes_ (the FIFO's), entries_ and
//     tombstones_.
// Every change of a value goes through account(), which keeps the totals exact; recount()
// recomputes them from the values for the tests.
#include <algorithm>

#include "fallback/local_store_internal.h"

namespace respite::fallback::detail {

size_t value_cost(const Value& v) {
  switch (static_cast<Type>(v.index())) {
    case Type::None:
      return 0;
    case Type::String:
      return std::get<std::string>(v).size();
    case Type::Hash: {
      size_t n = 0;
      for (const auto& [f, val] : std::get<HashValue>(v).pairs()) n += pair_cost(f, val);
      return n;
    }
    case Type::List: {
      size_t n = 0;
      for (const auto& el : std::get<ListValue>(v)) n += element_cost(el);
      return n;
    }
    case Type::Set: {
      size_t n = 0;
      for (const auto& m : std::get<SetValue>(v)) n += element_cost(m);
      return n;
    }
  }
  return 0;
}

// --- HashValue ---

const HashValue::Pair* HashValue::find(std::string_view field) const {
  auto it = index_.find(field);
  return it == index_.end() ? nullptr : &*it->second;
}

int64_t HashValue::set(std::string_view field, std::string_view value, bool* added) {
  auto it = index_.find(field);
  if (it != index_.end()) {
    std::string& old = it->second->second;
    const int64_t delta = static_cast<int64_t>(value.size()) - static_cast<int64_t>(old.size());
    old.assign(value);
    if (added) *added = false;
    return delta;
  }
  order_.emplace_back(std::string(field), std::string(value));
  auto node = std::prev(order_.end());
  index_.emplace(std::string_view(node->first), node);
  if (added) *added = true;
  return static_cast<int64_t>(pair_cost(field, value));
}

int64_t HashValue::erase(std::string_view field) {
  auto it = index_.find(field);
  if (it == index_.end()) return 0;
  auto node = it->second;
  const auto delta = -static_cast<int64_t>(pair_cost(node->first, node->second));
  index_.erase(it);  // before the node: the index's key views the node's field
  order_.erase(node);
  return delta;
}

// --- Keyspace ---

Found Keyspace::lookup(int db, std::string_view key) {
  auto d = dbs_.find(db);
  if (d == dbs_.end()) return {};
  auto it = d->second.find(key);
  if (it == d->second.end()) return {};
  Entry& e = it->second;
  return {e.present() ? Known::Present : Known::Absent, &e};
}

const Entry* Keyspace::find(int db, std::string_view key) const {
  auto d = dbs_.find(db);
  if (d == dbs_.end()) return nullptr;
  auto it = d->second.find(key);
  return it == d->second.end() ? nullptr : &it->second;
}

Entry& Keyspace::obtain(int db, std::string_view key) {
  Db& d = dbs_[db];
  auto [it, inserted] = d.try_emplace(std::string(key));
  Entry& e = it->second;
  if (!inserted) return e;
  e.db = db;
  e.key = &it->first;
  e.written = true;
  ++entries_;
  ++tombstones_;
  account(e, base_cost(key));
  return e;
}

void Keyspace::mark_written(Entry& e) {
  if (e.written) return;
  seed_unlink(e);
  seed_bytes_ -= e.cost;
  e.written = true;
}

void Keyspace::account(Entry& e, size_t new_cost) {
  bytes_ = bytes_ - e.cost + new_cost;
  if (!e.written) seed_bytes_ = seed_bytes_ - e.cost + new_cost;
  e.cost = new_cost;
}

void Keyspace::assign(Entry& e, Value v) {
  const bool was_present = e.present();
  e.value = std::move(v);
  const bool is_present = e.present();
  if (was_present && !is_present) ++tombstones_;
  if (!was_present && is_present) --tombstones_;
  if (!is_present) set_expiry(e, 0);
  account(e, base_cost(*e.key) + value_cost(e.value));
}

void Keyspace::assign_string(Entry& e, std::string_view s) {
  if (auto* str = std::get_if<std::string>(&e.value)) {
    str->assign(s);
    account(e, base_cost(*e.key) + s.size());
    return;
  }
  assign(e, Value(std::in_place_index<1>, s));
}

void Keyspace::charge(Entry& e, int64_t delta) {
  account(e, static_cast<size_t>(static_cast<int64_t>(e.cost) + delta));
}

void Keyspace::set_expiry(Entry& e, int64_t when) {
  if (e.ttl_known && e.expires_ms != 0) expiries_.erase({e.expires_ms, &e});
  e.expires_ms = when;
  e.ttl_known = true;
  if (when != 0) expiries_.insert({when, &e});
}

bool Keyspace::make_room(int64_t growth, std::span<Entry* const> keep) {
  if (growth <= 0) return true;
  const auto g = static_cast<size_t>(growth);
  if (bytes_ + g <= max_bytes_) return true;
  const size_t need = bytes_ + g - max_bytes_;
  // Entries the command is about to use stay: count them out of what eviction can free.
  std::vector<Entry*> kept(keep.begin(), keep.end());
  std::sort(kept.begin(), kept.end());
  kept.erase(std::unique(kept.begin(), kept.end()), kept.end());
  size_t evictable = seed_bytes_;
  for (Entry* k : kept) {
    if (k && !k->written) evictable -= k->cost;
  }
  if (evictable < need) return false;
  size_t freed = 0;
  for (Entry* e = seed_oldest_; e && freed < need;) {
    Entry* next = e->seed_next;
    if (!std::binary_search(kept.begin(), kept.end(), e)) {
      freed += e->cost;
      erase(*e);
      ++stats.evicted;
    }
    e = next;
  }
  return true;
}

void Keyspace::sweep(int64_t now) {
  while (!expiries_.empty() && expiries_.begin()->first < now) {
    Entry* e = expiries_.begin()->second;
    assign(*e, Value{});  // clears its expiry, so the loop advances
    ++stats.expired;
  }
}

bool Keyspace::seed(int db, std::string_view key, Value v, int64_t expires_at_ms) {
  if (find(db, key) != nullptr) {
    ++stats.seeds_refused;
    return false;
  }
  if (expires_at_ms < 0 && expires_at_ms != LocalStore::kTtlUnknown) v = Value{};  // already expired
  const size_t cost = base_cost(key) + value_cost(v);
  if (!make_room(static_cast<int64_t>(cost))) {
    ++stats.seeds_refused;
    return false;
  }
  Db& d = dbs_[db];
  auto [it, inserted] = d.try_emplace(std::string(key));
  Entry& e = it->second;
  e.db = db;
  e.key = &it->first;
  e.value = std::move(v);
  e.written = false;
  seed_push(e);
  account(e, cost);
  ++entries_;
  if (!e.present()) ++tombstones_;
  if (e.present() && expires_at_ms == LocalStore::kTtlUnknown) {
    e.ttl_known = false;
  } else {
    set_expiry(e, e.present() ? expires_at_ms : 0);
  }
  ++stats.seeded;
  return true;
}

void Keyspace::erase(Entry& e) {
  if (e.ttl_known && e.expires_ms != 0) expiries_.erase({e.expires_ms, &e});
  if (!e.written) {
    seed_unlink(e);
    seed_bytes_ -= e.cost;
  }
  bytes_ -= e.cost;
  --entries_;
  if (!e.present()) --tombstones_;
  auto d = dbs_.find(e.db);
  d->second.erase(d->second.find(std::string_view(*e.key)));  // by iterator: the key lives in the node
  if (d->second.empty()) dbs_.erase(d);
}

void Keyspace::seed_unlink(Entry& e) {
  (e.seed_prev ? e.seed_prev->seed_next : seed_oldest_) = e.seed_next;
  (e.seed_next ? e.seed_next->seed_prev : seed_newest_) = e.seed_prev;
  e.seed_prev = e.seed_next = nullptr;
}

void Keyspace::seed_push(Entry& e) {
  e.seed_prev = seed_newest_;
  e.seed_next = nullptr;
  (seed_newest_ ? seed_newest_->seed_next : seed_oldest_) = &e;
  seed_newest_ = &e;
}

void Keyspace::clear() {
  expiries_.clear();
  dbs_.clear();
  seed_oldest_ = seed_newest_ = nullptr;
  seed_bytes_ = bytes_ = entries_ = tombstones_ = 0;
}

size_t Keyspace::recount() const {
  size_t n = 0;
  for (const auto& [db, keys] : dbs_) {
    for (const auto& [key, e] : keys) n += base_cost(key) + value_cost(e.value);
  }
  return n;
}

}  // namespace respite::fallback::detail
