// NearCache: construction, tracking (the invalidation connection, CLIENT TRACKING on the pool,
// epochs and flushes), invalidation messages, fence PINGs, reply dispatch and stats. Fetching
// is in near_cache_fetch.cpp, warm-up in near_cache_warmup.cpp.
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
    if (frozen_) {
      thaw("tracking (re)established");
      return;
    }
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
    if (hold_frozen_) {
      freeze("invalidation connection lost");
    } else {
      new_epoch("invalidation connection lost");
    }
  }
}

void NearCache::freeze(std::string_view why) {
  if (frozen_) return;
  frozen_ = true;
  ++epoch_;  // nothing tracked so far is usable: no fills until thawed
  obs::info("near-cache frozen ({}): {} entries kept for the fallback, no hits served", why, store_.entries());
}

void NearCache::thaw(std::string_view why) {
  if (!frozen_ || (hold_frozen_ && hold_frozen_())) return;
  frozen_ = false;
  new_epoch(why);  // invalidations were missed while frozen: flush
  if (!link_ready_) return;
  for (size_t i = 0; i < pool_.size(); ++i) {
    if (pool_.shared(i).ready()) track(pool_.shared(i));
  }
}

void NearCache::resume() { thaw("Redis serves again"); }

void NearCache::new_epoch(std::string_view why) {
  ++epoch_;
  if (link_ready_) ++counters_.epochs;
  flush(why);
}

void NearCache::on_pool_event(UpstreamConn& c, UpstreamConn::Event e) {
  auto i = static_cast<size_t>(c.index());
  if (i >= conn_epoch_.size()) return;
  if (e == UpstreamConn::Event::Ready) {
    if (frozen_) {
      thaw("a pool connection is back");
    } else {
      track(c);
    }
  } else if (e == UpstreamConn::Event::Lost) {
    // Redis forgot what this connection read: entries filled through it get no more
    // invalidations.
    if (conn_epoch_[i] == epoch_ && epoch_ != 0) {
      if (hold_frozen_) {
        freeze("a tracking pool connection was lost");
      } else {
        flush("a tracking pool connection was lost");
      }
    }
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

void NearCache::reconfigure(const config::CacheConfig& next, bool rules_changed) {
  if (!enabled_) return;
  store_.set_max_value(next.max_value_bytes);
  store_.set_budget(next.memory_bytes);
  if (rules_changed) {
    policy_.set_rules(next.rules, static_cast<uint64_t>(next.max_ttl_ms));
    flush("the cache rules changed (reload)");
  }
}

void NearCache::flush(std::string_view why) {
  if (store_.entries() > 0 || store_.pending_fills() > 0) obs::debug("near-cache flushed: {}", why);
  store_.flush();
}

size_t NearCache::flush_matching(std::string_view pattern) {
  size_t dropped = store_.invalidate_matching(pattern);
  obs::debug("near-cache: RESPITE CACHE FLUSH <pattern> dropped {} entries", dropped);
  return dropped;
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
  line("stale_hits", s.stale_hits);
  line("pattern_flushes", s.pattern_flushes);
  line("pattern_flushed_entries", s.pattern_flushed_entries);
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
