// NearCache, warm-up: SCAN MATCH the configured patterns and fill GET entries, paced.
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

}  // namespace respite::cache
