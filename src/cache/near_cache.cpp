#include "cache/near_cache.h"

#include <xxhash.h>

#include <algorithm>
#include <cctype>

#include "core/glob.h"
#include "core/parse.h"
#include "net/loop.h"
#include "obs/log.h"
#include "resp/resp_writer.h"
#include "upstream/upstream_pool.h"

namespace respite::cache {
namespace {

using upstream::UpstreamConn;

// Cookies of the cache's own requests: what the reply is for, and whose.
constexpr int kPartShift = 56;
constexpr uint64_t kIndexMask = (uint64_t{1} << 24) - 1;
enum class Kind : uint8_t { Read = 1, Ttl, Tracking, Ping, Scan };

uint64_t make_cookie(Kind k, uint64_t id, uint64_t index = 0) {
  return (static_cast<uint64_t>(k) << kPartShift) | (id << 24) | index;
}
Kind cookie_kind(uint64_t c) { return static_cast<Kind>(c >> kPartShift); }
uint64_t cookie_id(uint64_t c) { return (c >> 24) & ((uint64_t{1} << 32) - 1); }
uint64_t cookie_index(uint64_t c) { return c & kIndexMask; }

// The request as a coalescing key: the command name in lower case, the arguments, and the
// connection (requests only wait for a fetch on their own connection).
uint64_t identity_hash(std::span<const std::string_view> args, int conn_index) {
  char name[64];
  size_t n = std::min(args[0].size(), sizeof name);
  for (size_t i = 0; i < n; ++i) name[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(args[0][i])));
  uint64_t h = XXH3_64bits_withSeed(name, n, static_cast<uint64_t>(conn_index) + 1);
  for (size_t i = 1; i < args.size(); ++i) {
    h = XXH3_64bits_withSeed(args[i].data(), args[i].size(), h ^ (args[i].size() * 0x9E3779B97F4A7C15ull));
  }
  return h;
}

bool same_request(const std::vector<std::string>& stored, std::span<const std::string_view> args) {
  if (stored.size() != args.size()) return false;
  if (!cmd::iequals(stored[0], args[0])) return false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (stored[i] != args[i]) return false;
  }
  return true;
}

// Reads one RESP2 line ("<prefix><text>\r\n") at `pos`; false if incomplete.
bool read_line(std::string_view raw, size_t& pos, std::string_view& line) {
  size_t end = raw.find("\r\n", pos);
  if (end == std::string_view::npos) return false;
  line = raw.substr(pos, end - pos);
  pos = end + 2;
  return true;
}

// Splits a RESP2 array of bulk strings / nulls into its elements' raw bytes. False if `raw`
// is anything else (an error, or a nested type).
bool split_bulk_array(std::string_view raw, std::vector<std::string_view>& out) {
  size_t pos = 0;
  std::string_view line;
  if (!read_line(raw, pos, line) || line.empty() || line[0] != '*') return false;
  int64_t n = 0;
  if (!core::parse_integer(line.substr(1), n) || n < 0) return false;
  out.clear();
  for (int64_t i = 0; i < n; ++i) {
    size_t start = pos;
    if (!read_line(raw, pos, line) || line.empty() || line[0] != '$') return false;
    int64_t len = 0;
    if (!core::parse_integer(line.substr(1), len)) return false;
    if (len >= 0) {
      if (pos + static_cast<size_t>(len) + 2 > raw.size()) return false;
      pos += static_cast<size_t>(len) + 2;
    }
    out.push_back(raw.substr(start, pos - start));
  }
  return pos == raw.size();
}

}  // namespace

NearCache::NearCache(net::Loop& loop, const config::Config& cfg, const cmd::CommandTable& table,
                     upstream::UpstreamPool& pool)
    : loop_(loop),
      cfg_(cfg.cache),
      pool_(pool),
      db_(cfg.upstream.address.db),
      enabled_(cfg.cache.enabled),
      policy_(table, cfg.cache),
      store_(cfg.cache.memory_bytes, cfg.cache.max_value_bytes,
             cfg.cache.eviction == "lru" ? Eviction::Lru : Eviction::S3Fifo),
      ping_timer_(loop),
      warm_timer_(loop) {
  if (!enabled_) return;
  conn_epoch_.assign(pool.size(), 0);
  link_ = std::make_unique<UpstreamConn>(
      loop, cfg.upstream, 0, [this](UpstreamConn& c, UpstreamConn::Event e) { on_link_event(c, e); },
      UpstreamConn::Role::Invalidation);
}

NearCache::~NearCache() = default;

void NearCache::start() {
  if (!enabled_) return;
  pool_.set_listener([this](UpstreamConn& c, UpstreamConn::Event e) { on_pool_event(c, e); });
  link_->start();
  auto every = static_cast<uint64_t>(cfg_.ping_interval_ms);
  ping_timer_.start(every, every, [this] { ping_tick(); });
}

void NearCache::shutdown() {
  if (!enabled_) return;
  ping_timer_.stop();
  warm_timer_.stop();
  warming_ = false;
  pool_.set_listener(nullptr);
  link_->shutdown("-ERR respite is shutting down\r\n");
}

bool NearCache::usable(const UpstreamConn* conn) const {
  if (!link_ready_ || epoch_ == 0 || !conn || conn->role() != UpstreamConn::Role::Shared) return false;
  auto i = static_cast<size_t>(conn->index());
  return i < conn_epoch_.size() && conn_epoch_[i] == epoch_;
}

bool NearCache::tracking_everywhere() const {
  if (!serving()) return false;
  for (size_t i = 0; i < conn_epoch_.size(); ++i) {
    if (pool_.shared(i).ready() && conn_epoch_[i] != epoch_) return false;
  }
  return true;
}

bool NearCache::bypass_name(std::string_view name) const {
  return std::any_of(cfg_.bypass_clients.begin(), cfg_.bypass_clients.end(),
                     [&](const std::string& p) { return core::glob_match(p, name); });
}

// ---- tracking ------------------------------------------------------------------------

void NearCache::on_link_event(UpstreamConn& c, UpstreamConn::Event e) {
  if (e == UpstreamConn::Event::Ready) {
    link_ready_ = true;
    c.set_push_sink(this);
    new_epoch("tracking (re)established");
    for (size_t i = 0; i < pool_.size(); ++i) {
      if (pool_.shared(i).ready()) track(pool_.shared(i));
    }
    if (counters_.epochs == 1 && !cfg_.warmup_patterns.empty()) warmup();
    return;
  }
  if (e == UpstreamConn::Event::Lost && link_ready_) {
    link_ready_ = false;
    pongs_ = pings_sent_;  // nothing more will answer; fenced clients see a flushed, unused cache
    ping_sent_ms_ = 0;
    new_epoch("invalidation connection lost");
  }
}

void NearCache::new_epoch(std::string_view why) {
  ++epoch_;
  if (link_ready_) ++counters_.epochs;
  flush(why);
}

void NearCache::on_pool_event(UpstreamConn& c, UpstreamConn::Event e) {
  auto i = static_cast<size_t>(c.index());
  if (i >= conn_epoch_.size()) return;
  if (e == UpstreamConn::Event::Ready) {
    track(c);
  } else if (e == UpstreamConn::Event::Lost) {
    // Redis forgot what this connection read: entries filled through it get no more
    // invalidations.
    if (conn_epoch_[i] == epoch_ && epoch_ != 0) flush("a tracking pool connection was lost");
    conn_epoch_[i] = 0;
  }
}

void NearCache::track(UpstreamConn& c) {
  auto i = static_cast<size_t>(c.index());
  if (!link_ready_ || i >= conn_epoch_.size()) return;
  std::string id = std::to_string(link_->upstream_id());
  std::vector<std::string_view> args = {"CLIENT", "TRACKING", "on", "REDIRECT", id};
  if (cfg_.tracking == "bcast") {
    args.push_back("BCAST");
    for (const std::string& p : cfg_.bcast_prefixes) {
      args.push_back("PREFIX");
      args.push_back(p);
    }
  }
  // Reads sent after this on the same connection are tracked: Redis applies it first.
  if (c.send_args(this, make_cookie(Kind::Tracking, epoch_ & 0xffffffffu, i), args) != 0) conn_epoch_[i] = epoch_;
}

void NearCache::flush(std::string_view why) {
  if (store_.entries() > 0 || store_.pending_fills() > 0) obs::debug("near-cache flushed: {}", why);
  store_.flush();
}

void NearCache::invalidate_key(std::string_view key) { invalidate_hash(hash_key(key)); }

void NearCache::invalidate_hash(uint64_t key_hash) {
  ++counters_.local_invalidations;
  store_.invalidate(key_hash);
}

uint64_t NearCache::send_ping() {
  uint64_t n = pings_sent_ + 1;
  const std::string_view ping[] = {"PING"};
  if (link_->send_args(this, make_cookie(Kind::Ping, n & 0xffffffffu), ping, 1, UpstreamConn::PushKind::Pubsub) == 0) {
    return 0;
  }
  pings_sent_ = n;
  if (ping_sent_ms_ == 0) ping_sent_ms_ = loop_.now_ms();
  return n;
}

uint64_t NearCache::fence_ping() {
  if (!link_ready_) return 0;
  uint64_t n = send_ping();
  if (n == 0) {
    // The invalidation connection is too busy to take the PING (upstream.max_inflight): the
    // fence cannot be placed, so nothing cached may be trusted to include the write.
    flush("a fence PING could not be sent");
    return 0;
  }
  ++counters_.fences;
  return n;
}

void NearCache::ping_tick() {
  if (!link_ready_) return;
  uint64_t now = loop_.now_ms();
  if (ping_sent_ms_ != 0 && now - ping_sent_ms_ > static_cast<uint64_t>(cfg_.ping_timeout_ms)) {
    link_->abort("no PONG within cache.ping_timeout_ms (" + std::to_string(cfg_.ping_timeout_ms) + " ms)");
    return;
  }
  if (ping_sent_ms_ == 0) send_ping();  // keepalive
}

void NearCache::on_push(std::string_view raw) {
  // ["message", "__redis__:invalidate", payload]: payload is an array of keys, or null
  // after FLUSHALL / FLUSHDB.
  constexpr std::string_view kHead = "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n";
  if (!raw.starts_with(kHead)) return;
  std::string_view payload = raw.substr(kHead.size());
  if (payload.starts_with("$-1") || payload.starts_with("*-1")) {
    ++counters_.received;
    flush("FLUSHALL/FLUSHDB on Redis");
    return;
  }
  std::vector<std::string_view> keys;
  if (!split_bulk_array(payload, keys)) {
    flush("unreadable invalidation message");
    return;
  }
  for (std::string_view k : keys) {
    size_t nl = k.find("\r\n");
    if (k.starts_with("$-1") || nl == std::string_view::npos) continue;
    std::string_view key = k.substr(nl + 2, k.size() - nl - 4);
    ++counters_.received;
    store_.invalidate(hash_key(key));
  }
}

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

void NearCache::on_reply(uint64_t cookie, std::string_view raw) {
  switch (cookie_kind(cookie)) {
    case Kind::Read:
    case Kind::Ttl:
      on_fetch_reply(cookie, raw, false);
      return;
    case Kind::Tracking: {
      auto i = cookie_index(cookie);
      if (!raw.empty() && raw[0] == '-') {
        obs::warn("near-cache: Redis refused CLIENT TRACKING on pool connection #{}: {}; the cache is not used "
                  "through it",
                  i, raw.substr(1, raw.size() >= 3 ? raw.size() - 3 : 0));
        if (i < conn_epoch_.size()) conn_epoch_[i] = 0;
        flush("tracking refused");
      }
      return;
    }
    case Kind::Ping:
      pongs_ = std::max(pongs_, cookie_id(cookie));
      ping_sent_ms_ = pongs_ < pings_sent_ ? loop_.now_ms() : 0;
      return;
    case Kind::Scan:
      on_scan_reply(raw);
      return;
  }
}

void NearCache::on_failed(uint64_t cookie, std::string_view error_line) {
  switch (cookie_kind(cookie)) {
    case Kind::Read:
    case Kind::Ttl:
      on_fetch_reply(cookie, error_line, true);
      return;
    case Kind::Scan:
      warm_scanning_ = false;
      warming_ = false;
      return;
    default:
      return;
  }
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

// ---- warm-up -------------------------------------------------------------------------

bool NearCache::warmup() {
  if (!enabled_ || warming_ || cfg_.warmup_patterns.empty()) return false;
  warming_ = true;
  warm_pattern_ = 0;
  warm_cursor_.clear();
  warm_keys_.clear();
  warm_loaded_ = 0;
  warm_scanning_ = false;
  obs::info("near-cache warm-up started ({} patterns, at most {} keys, {} keys/s)", cfg_.warmup_patterns.size(),
            cfg_.warmup_max_keys, cfg_.warmup_keys_per_second);
  warm_timer_.start(1, 100, [this] { warm_step(); });
  return true;
}

void NearCache::warm_step() {
  auto finish = [this] {
    warming_ = false;
    warm_timer_.stop();
    warm_keys_.clear();
    obs::info("near-cache warm-up finished: {} keys loaded", warm_loaded_);
  };
  if (!warming_) {
    warm_timer_.stop();
    return;
  }
  UpstreamConn* conn = pool_.pick(0);
  if (!serving() || !conn || !usable(conn)) return;  // waits for tracking
  uint64_t now = loop_.now_ms();
  size_t budget = std::max<size_t>(1, cfg_.warmup_keys_per_second / 10);  // ticks are 100 ms
  while (budget > 0 && !warm_keys_.empty() && warm_loaded_ < cfg_.warmup_max_keys) {
    std::string key = std::move(warm_keys_.back());
    warm_keys_.pop_back();
    std::string_view req[] = {"get", key};
    uint64_t ttl = policy_.ttl_ms(key);
    if (ttl == 0 || store_.contains(db_, req, now)) continue;
    Fetch& f = new_fetch(Role::Read, conn, 1);
    f.request.assign(std::begin(req), std::end(req));
    f.items[0].ttl_cap = ttl;
    std::string_view k = key;
    if (send_fetch(f, req, {}, std::span<const std::string_view>(&k, 1)) == 0) break;
    ++warm_loaded_;
    ++counters_.warmed;
    --budget;
  }
  if (warm_loaded_ >= cfg_.warmup_max_keys) {
    finish();
    return;
  }
  if (!warm_keys_.empty() || warm_scanning_) return;
  if (warm_cursor_ == "0") {  // this pattern is done
    warm_cursor_.clear();
    if (++warm_pattern_ >= cfg_.warmup_patterns.size()) {
      finish();
      return;
    }
  }
  std::string count = std::to_string(std::max<size_t>(10, cfg_.warmup_keys_per_second / 10));
  std::string_view scan[] = {"SCAN", warm_cursor_.empty() ? std::string_view("0") : std::string_view(warm_cursor_),
                             "MATCH", cfg_.warmup_patterns[warm_pattern_], "COUNT", count};
  if (conn->send_args(this, make_cookie(Kind::Scan, 0), scan) != 0) warm_scanning_ = true;
}

void NearCache::on_scan_reply(std::string_view raw) {
  warm_scanning_ = false;
  if (!warming_) return;
  // [cursor, [key...]]
  size_t pos = 0;
  std::string_view line;
  std::vector<std::string_view> elems;
  int64_t len = 0;
  bool ok = read_line(raw, pos, line) && line == "*2" && read_line(raw, pos, line) && line.size() > 1 &&
            line[0] == '$' && core::parse_integer(line.substr(1), len) && len >= 0 &&
            pos + static_cast<size_t>(len) + 2 <= raw.size();
  std::string cursor;
  if (ok) {
    cursor.assign(raw.substr(pos, static_cast<size_t>(len)));
    pos += static_cast<size_t>(len) + 2;
    ok = split_bulk_array(raw.substr(pos), elems);
  }
  if (!ok) {
    obs::warn("near-cache warm-up stopped: SCAN failed: {}", raw.substr(0, std::min<size_t>(raw.size(), 200)));
    warming_ = false;
    return;
  }
  warm_cursor_ = cursor;
  for (std::string_view e : elems) {
    size_t nl = e.find("\r\n");
    if (e.starts_with("$-1") || nl == std::string_view::npos) continue;
    warm_keys_.emplace_back(e.substr(nl + 2, e.size() - nl - 4));
  }
}

// ---- stats ---------------------------------------------------------------------------

std::string NearCache::stats_text() const {
  const StoreStats& s = store_.stats();
  std::string out;
  auto line = [&out](std::string_view name, auto value) {
    out.append(name).append(":");
    if constexpr (std::is_convertible_v<decltype(value), std::string_view>) {
      out.append(value);
    } else {
      out.append(std::to_string(value));
    }
    out.append("\r\n");
  };
  line("enabled", enabled_ ? 1 : 0);
  line("tracking", tracking_everywhere() ? 1 : 0);
  line("mode", std::string_view(cfg_.tracking));
  line("eviction", std::string_view(cfg_.eviction));
  line("hits", s.hits);
  line("misses", s.misses);
  line("fills", s.fills);
  line("cancelled_fills", s.cancelled_fills);
  line("too_large", s.too_large);
  line("coalesced", counters_.coalesced);
  line("partial", counters_.partial);
  line("bypassed", counters_.bypassed);
  line("invalidations", counters_.received + counters_.local_invalidations);
  line("invalidations_received", counters_.received);
  line("local_invalidations", counters_.local_invalidations);
  line("invalidated_entries", s.invalidated_entries);
  line("evictions", s.evictions);
  line("expirations", s.expirations);
  line("flushes", s.flushes);
  line("entries", store_.entries());
  line("bytes_used", store_.bytes_used());
  line("budget_bytes", store_.budget());
  line("pending_fills", store_.pending_fills());
  line("fetches_in_flight", live_fetches_);
  line("fences", counters_.fences);
  line("epochs", counters_.epochs);
  line("warmed", counters_.warmed);
  line("warming", warming_ ? 1 : 0);
  return out;
}

}  // namespace respite::cache
