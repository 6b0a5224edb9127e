// The near-cache side of ClientSession: cacheable reads answered from the cache or fetched
// through it, writes invalidating their keys (before they are sent and again when their
// reply arrives), the fence after writes of unknown keys, and the RESPITE admin commands.
// docs/near-cache.md states the guarantees this code keeps.
#include "cache/near_cache.h"
#include "core/errors.h"
#include "net/loop.h"
#include "proxy/client_session.h"
#include "proxy/server.h"
#include "resp/resp_writer.h"

namespace respite::proxy {
namespace {

constexpr size_t kMaxMultiKeys = 4096;  // longer MGET/HMGET are forwarded as they are

}  // namespace

bool ClientSession::fenced() const {
  return fence_writes_ > 0 || fence_ping_ > server_.cache().pongs();
}

bool ClientSession::forward_plain(const cmd::Decision& d, const resp::Request& req, std::string_view raw) {
  cache::NearCache& nc = server_.cache();
  if (!nc.enabled()) return forward(req, raw);
  Args args(req.args.data(), req.args.size());
  cache::Role role = nc.policy().role(d, args);
  switch (role) {
    case cache::Role::None:
      return forward(req, raw);
    case cache::Role::Read:
    case cache::Role::MultiGet:
    case cache::Role::HashMultiGet:
      // Pinned clients (transactions, another database...) read on their own connection.
      if (pinned_) return forward(req, raw);
      if (cache_bypass_ || name_bypass_ || fenced() || !nc.serving()) {
        nc.count_bypass();
        return forward(req, raw);
      }
      if (role == cache::Role::Read) return cache_read(args, req, raw);
      return cache_read_multi(role, args, req, raw);
    case cache::Role::Write:
    case cache::Role::WriteUnknown:
    case cache::Role::Flush: {
      CacheAfter after = cache_before_write(role, d, args);
      uint64_t before = next_seq_;
      if (!forward(req, raw)) return false;
      cache_after_send(before, after);
      return true;
    }
  }
  return forward(req, raw);
}

bool ClientSession::cache_read(Args args, const resp::Request& req, std::string_view raw) {
  cache::NearCache& nc = server_.cache();
  if (const std::string* hit = nc.lookup(args, server_.loop().now_ms())) {
    reply_local(*hit);
    return true;
  }
  upstream::UpstreamConn* conn = route_upstream();
  uint64_t ttl = conn && nc.usable(conn) ? nc.policy().ttl_ms(args[1]) : 0;
  if (ttl == 0) return forward(req, raw);
  if (!may_send_on(conn)) return false;
  track_fetch(conn, nc.fetch(conn, this, next_seq_, args, req.is_inline ? std::string_view() : raw, ttl));
  return true;
}

bool ClientSession::cache_read_multi(cache::Role role, Args args, const resp::Request& req, std::string_view raw) {
  cache::NearCache& nc = server_.cache();
  upstream::UpstreamConn* conn = route_upstream();
  if (!conn || !nc.usable(conn) || args.size() > kMaxMultiKeys) return forward(req, raw);
  if (!may_send_on(conn)) return false;
  std::string out;
  bool answered = false;
  uint64_t id = nc.fetch_multi(conn, this, next_seq_, role, args, out, answered);
  if (answered) {
    reply_local(out);
  } else {
    track_fetch(conn, id);
  }
  return true;
}

ClientSession::CacheAfter ClientSession::cache_before_write(const cmd::Decision& d, Args args) {
  cache::NearCache& nc = server_.cache();
  if (!nc.enabled()) return CacheAfter::None;
  return cache_before_write(nc.policy().role(d, args), d, args);
}

ClientSession::CacheAfter ClientSession::cache_before_write(cache::Role role, const cmd::Decision& d, Args args) {
  cache::NearCache& nc = server_.cache();
  switch (role) {
    case cache::Role::Flush:
      nc.flush("FLUSHALL/FLUSHDB/SWAPDB through respite");
      return CacheAfter::Flush;
    case cache::Role::WriteUnknown:
      return CacheAfter::Fence;
    case cache::Role::Write:
      key_positions_.clear();
      key_hashes_.clear();
      if (!nc.policy().write_keys(d, args, key_positions_)) return CacheAfter::Fence;
      // Before sending: a read this client pipelines behind the write must miss.
      for (size_t pos : key_positions_) {
        key_hashes_.push_back(cache::hash_key(args[pos]));
        nc.invalidate_hash(key_hashes_.back());
      }
      return key_hashes_.empty() ? CacheAfter::None : CacheAfter::Invalidate;
    default:
      return CacheAfter::None;
  }
}

void ClientSession::cache_after_send(uint64_t before, CacheAfter after) {
  if (after == CacheAfter::None || next_seq_ == before || slots_.empty()) return;
  Slot& s = slots_[slots_.size() - 1];
  if (!s.conn || s.ready || s.seq != before) return;  // answered locally: nothing was sent
  s.after = after;
  if (after == CacheAfter::Fence) {
    ++fence_writes_;
  } else if (after == CacheAfter::Invalidate) {
    // Again at the reply: a read another client sent on another connection before the
    // write ran may be filled after the local invalidation above.
    for (uint64_t h : key_hashes_) marks_.push_back(WriteMark{before, h});
  }
}

void ClientSession::cache_on_reply(const Slot& s) {
  cache::NearCache& nc = server_.cache();
  switch (s.after) {
    case CacheAfter::None:
      return;
    case CacheAfter::Invalidate:
      while (!marks_.empty() && marks_.front().seq <= s.seq) {
        if (marks_.front().seq == s.seq) nc.invalidate_hash(marks_.front().key_hash);
        marks_.pop_front();
      }
      return;
    case CacheAfter::Fence:
      // The write is done; its invalidations are on their way on the invalidation
      // connection. A PING sent there now returns after them: until then this client's
      // reads go to Redis.
      if (fence_writes_ > 0) --fence_writes_;
      if (uint64_t n = nc.fence_ping(); n > fence_ping_) fence_ping_ = n;
      return;
    case CacheAfter::Flush:
      nc.flush("FLUSHALL/FLUSHDB/SWAPDB through respite");
      return;
  }
}

}  // namespace respite::proxy
