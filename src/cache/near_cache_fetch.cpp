// NearCache, fetching: misses sent by the cache (with the PTTL of their key), coalesced
// waiters, MGET/HMGET merging, and storing what may be stored. The rest is in near_cache.cpp.
#include "cache/near_cache.h"

#include <algorithm>

#include "cache/near_cache_internal.h"
#include "core/glob.h"
#include "core/parse.h"
#include "net/loop.h"
#include "obs/log.h"
#include "upstream/upstream_pool.h"

namespace respite::cache {

using upstream::UpstreamConn;
using namespace detail;

// ---- fetching ------------------------------------------------------------------------

NearCache::Fetch& NearCache::new_fetch(Role role, UpstreamConn* conn, size_t items) {
  uint64_t id;
  if (!free_fetches_.empty()) {
    id = free_fetches_.back();
    free_fetches_.pop_back();
  } else {
    fetch_slots_.push_back(std::make_unique<Fetch>());
    id = fetch_slots_.size();
  }
  Fetch& f = *fetch_slots_[id - 1];
  // Reset, keeping the vectors' and strings' capacity: a miss allocates little.
  f.id = id;
  f.live = true;
  f.role = role;
  f.conn = conn;
  f.identity = 0;
  f.sent_ms = 0;
  f.pending = 0;
  f.ttl_missing = false;
  f.answered = false;
  f.pieces.clear();
  f.waiters.clear();
  f.items.resize(items);
  for (Item& item : f.items) {
    item.ticket = {};
    item.ttl_cap = 0;
    item.identity.clear();
    item.value.clear();
    item.storable = false;
    item.done = false;
  }
  ++live_fetches_;
  return f;
}

NearCache::Fetch* NearCache::find_fetch(uint64_t id) {
  if (id == 0 || id > fetch_slots_.size()) return nullptr;
  Fetch* f = fetch_slots_[id - 1].get();
  return f->live ? f : nullptr;
}

void NearCache::release_fetch(Fetch& f) {
  abandon_items(f);
  f.live = false;
  f.request.clear();
  f.pieces.clear();
  --live_fetches_;
  free_fetches_.push_back(f.id);
}

uint64_t NearCache::fetch(UpstreamConn* conn, upstream::ReplySink* sink, uint64_t cookie, Args args,
                          std::string_view raw, uint64_t ttl_ms) {
  uint64_t ident = identity_hash(args, conn->index());
  if (auto it = coalesce_.find(ident); it != coalesce_.end()) {
    Fetch* f = find_fetch(it->second);
    // Join only a fetch whose reply can still be trusted: sent on this client's connection
    // (so it is ordered before whatever the client sends next) and not invalidated since (a
    // write the client made after it was sent must be seen).
    if (f && f->role == Role::Read && f->conn == conn && !f->answered && store_.valid(f->items[0].ticket) &&
        same_request(f->request, args)) {
      f->waiters.push_back(Waiter{sink, cookie});
      ++counters_.coalesced;
      return it->second;
    }
  }
  Fetch& f = new_fetch(Role::Read, conn, 1);
  f.identity = ident;
  f.request.resize(args.size());
  for (size_t i = 0; i < args.size(); ++i) f.request[i].assign(args[i]);
  f.waiters.push_back(Waiter{sink, cookie});
  f.items[0].ttl_cap = ttl_ms;
  std::string_view key = args[1];
  uint64_t id = send_fetch(f, args, raw, std::span<const std::string_view>(&key, 1));
  if (id != 0) coalesce_[ident] = id;
  return id;
}

uint64_t NearCache::send_fetch(Fetch& f, Args request, std::string_view raw, std::span<const std::string_view> keys) {
  UpstreamConn* conn = f.conn;
  uint64_t id = f.id;
  uint64_t ticket = raw.empty() ? conn->send_args(this, make_cookie(Kind::Read, id), request)
                                : conn->send_raw(this, make_cookie(Kind::Read, id), raw);
  if (ticket == 0) {
    release_fetch(f);
    return 0;
  }
  f.sent_ms = loop_.now_ms();
  f.pending = 1;
  // Tickets before the reply can arrive; HMGET's fields share the one key.
  for (Item& item : f.items) item.ticket = store_.begin_fill(hash_key(f.role == Role::MultiGet ? item.identity[1] : keys[0]));
  for (size_t i = 0; i < keys.size(); ++i) {
    // PTTL right behind the read: an entry must not outlive its key in Redis.
    std::string_view pttl[] = {"PTTL", keys[i]};
    if (conn->send_args(this, make_cookie(Kind::Ttl, id, i), pttl) == 0) {
      f.ttl_missing = true;
    } else {
      ++f.pending;
    }
  }
  return id;
}

uint64_t NearCache::fetch_multi(UpstreamConn* conn, upstream::ReplySink* sink, uint64_t cookie, Role role, Args args,
                                std::string& out, bool& answered) {
  answered = false;
  uint64_t now = loop_.now_ms();
  Fetch& f = new_fetch(role, conn, 0);
  std::vector<std::string_view> miss_request;
  std::vector<std::string_view> miss_keys;
  bool hash = role == Role::HashMultiGet;
  miss_request.push_back(args[0]);
  if (hash) miss_request.push_back(args[1]);
  size_t hits = 0;
  uint64_t hash_ttl = hash ? policy_.ttl_ms(args[1]) : 0;
  for (size_t i = hash ? 2 : 1; i < args.size(); ++i) {
    std::string_view probe_get[] = {"get", args[i]};
    std::string_view probe_hget[] = {"hget", args[1], args[i]};
    Args probe = hash ? Args(probe_hget) : Args(probe_get);
    const std::string* hit = store_.find(db_, probe, now);
    Piece p;
    if (hit) {
      p.bytes = *hit;
      ++hits;
    } else {
      p.miss = static_cast<int>(f.items.size());
      Item item;
      item.identity.assign(probe.begin(), probe.end());
      item.ttl_cap = hash ? hash_ttl : policy_.ttl_ms(args[i]);
      f.items.push_back(std::move(item));
      miss_request.push_back(args[i]);
      if (!hash) miss_keys.push_back(args[i]);
    }
    f.pieces.push_back(std::move(p));
  }
  if (f.items.empty()) {
    out = "*" + std::to_string(f.pieces.size()) + "\r\n";
    for (const Piece& p : f.pieces) out += p.bytes;
    answered = true;
    release_fetch(f);
    return 0;
  }
  if (hits > 0) ++counters_.partial;
  if (hash) miss_keys.push_back(args[1]);  // one PTTL covers every field
  f.waiters.push_back(Waiter{sink, cookie});
  return send_fetch(f, miss_request, {}, miss_keys);
}

void NearCache::cancel(uint64_t fetch_id, upstream::ReplySink* sink) {
  Fetch* f = find_fetch(fetch_id);
  if (!f) return;
  for (Waiter& w : f->waiters) {
    if (w.sink == sink) w.sink = nullptr;
  }
}

void NearCache::on_fetch_reply(uint64_t cookie, std::string_view raw, bool failed) {
  Fetch* f = find_fetch(cookie_id(cookie));
  if (!f) return;
  if (cookie_kind(cookie) == Kind::Read) {
    deliver(*f, raw, failed);
  } else if (!failed) {
    finish_ttl(*f, cookie_index(cookie), raw);
  }
  if (--f->pending == 0) release_fetch(*f);  // abandons what was not stored
}

void NearCache::deliver(Fetch& f, std::string_view raw, bool failed) {
  f.answered = true;
  if (f.role == Role::Read) {
    // Later requests send their own read (this one's reply is in).
    auto c = coalesce_.find(f.identity);
    if (c != coalesce_.end() && c->second == f.id) coalesce_.erase(c);
  }
  bool is_error = failed || raw.empty() || raw[0] == '-';
  std::string merged;
  std::string_view reply = raw;
  if (f.role == Role::Read) {
    if (!is_error) {
      f.items[0].value.assign(raw);
      f.items[0].storable = true;
    }
  } else if (!is_error) {
    std::vector<std::string_view> elems;
    if (!split_bulk_array(raw, elems) || elems.size() != f.items.size()) {
      // Never expected from Redis; the client gets an error rather than a misaligned reply.
      merged = "-ERR near-cache: unexpected reply to the partial MGET/HMGET\r\n";
      is_error = true;
    } else {
      merged = "*" + std::to_string(f.pieces.size()) + "\r\n";
      for (const Piece& p : f.pieces) merged += p.miss >= 0 ? elems[static_cast<size_t>(p.miss)] : p.bytes;
      for (size_t i = 0; i < elems.size(); ++i) {
        // An MGET nil may be a key of another type (GET would fail): only strings are kept.
        // HMGET answered, so the key is a hash or missing: a nil field is a nil HGET.
        f.items[i].storable = f.role == Role::HashMultiGet || !elems[i].starts_with("$-1");
        if (f.items[i].storable) f.items[i].value.assign(elems[i]);
      }
    }
    reply = merged;
  } else if (!failed) {
    reply = raw;
  }
  if (is_error && !merged.empty()) reply = merged;
  for (size_t i = 0; i < f.waiters.size(); ++i) {
    Waiter w = f.waiters[i];
    if (!w.sink) continue;
    if (failed) {
      w.sink->on_failed(w.cookie, reply);
    } else {
      w.sink->on_reply(w.cookie, reply);
    }
  }
  f.waiters.clear();
}

void NearCache::finish_ttl(Fetch& f, size_t index, std::string_view raw) {
  int64_t pttl = 0;
  bool ok = raw.size() > 3 && raw[0] == ':' && core::parse_integer(raw.substr(1, raw.size() - 3), pttl);
  if (f.role == Role::HashMultiGet) {
    for (Item& item : f.items) {
      if (ok) {
        store_item(f, item, pttl);
      } else {
        store_.abandon_fill(item.ticket);
      }
      item.done = true;
    }
    return;
  }
  if (index >= f.items.size()) return;
  Item& item = f.items[index];
  if (ok) {
    store_item(f, item, pttl);
  } else {
    store_.abandon_fill(item.ticket);
  }
  item.done = true;
}

void NearCache::store_item(Fetch& f, Item& item, int64_t pttl) {
  uint64_t life = item.ttl_cap;
  if (pttl >= 0) life = std::min(life, static_cast<uint64_t>(pttl));  // -1: no expiry; -2: no key
  if (!item.storable || f.ttl_missing || life == 0) {
    store_.abandon_fill(item.ticket);
    return;
  }
  std::vector<std::string_view> id;
  const std::vector<std::string>& src = item.identity.empty() ? f.request : item.identity;
  id.assign(src.begin(), src.end());
  // Counted from when the read was sent: the entry expires no later than the key does.
  store_.finish_fill(item.ticket, db_, id, item.value, f.sent_ms + life);
}

void NearCache::abandon_items(Fetch& f) {
  for (Item& item : f.items) {
    if (!item.done) store_.abandon_fill(item.ticket);
    item.done = true;
  }
}

}  // namespace respite::cache
