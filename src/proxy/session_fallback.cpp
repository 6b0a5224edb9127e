// ClientSession: requests answered while Redis is unreachable (fallback/fallback.h says when;
// docs/fallback.md says what clients see).
//
// A plain request goes, in order, to:
//   1. the local store (mode local): it answers from keys written during the outage, after
//      seeding the keys it does not know from the frozen near-cache (a cached GET or HGETALL
//      of the key, even if expired within fallback.stale_max_age_ms). Accepted writes are
//      journaled before they are acknowledged;
//   2. the frozen near-cache, for reads: the cached reply to this very request;
//   3. fallback.miss: a null reply or a -FALLBACK error.
// Writes are refused in read-only mode, and in local mode when the store cannot answer them
// exactly. Stateful commands (transactions, blocking, pub/sub, MONITOR) are refused.
#include "cache/near_cache.h"
#include "cmd/command_table.h"
#include "core/errors.h"
#include "fallback/fallback.h"
#include "net/loop.h"
#include "proxy/client_session.h"
#include "proxy/server.h"
#include "resp/resp_writer.h"

namespace respite::proxy {
namespace {

// A RESP2 bulk string reply: its payload. False for anything else (nil included).
bool parse_bulk(std::string_view r, std::string_view& out, size_t& used) {
  if (r.size() < 4 || r[0] != '$') return false;
  size_t eol = r.find("\r\n");
  if (eol == std::string_view::npos) return false;
  long long n = 0;
  for (size_t i = 1; i < eol; ++i) {
    if (r[i] < '0' || r[i] > '9') return false;
    n = n * 10 + (r[i] - '0');
    if (n > (1LL << 40)) return false;
  }
  const size_t len = static_cast<size_t>(n);
  if (eol + 2 + len + 2 > r.size()) return false;
  out = r.substr(eol + 2, len);
  used = eol + 2 + len + 2;
  return true;
}

// A flat RESP2 array of bulk strings (HGETALL's reply): its elements.
bool parse_bulk_array(std::string_view r, std::vector<std::string_view>& out) {
  if (r.size() < 4 || r[0] != '*') return false;
  size_t eol = r.find("\r\n");
  if (eol == std::string_view::npos) return false;
  size_t n = 0;
  for (size_t i = 1; i < eol; ++i) {
    if (r[i] < '0' || r[i] > '9') return false;
    n = n * 10 + static_cast<size_t>(r[i] - '0');
    if (n > (1u << 24)) return false;
  }
  r.remove_prefix(eol + 2);
  out.clear();
  for (size_t i = 0; i < n; ++i) {
    std::string_view v;
    size_t used = 0;
    if (!parse_bulk(r, v, used)) return false;
    out.push_back(v);
    r.remove_prefix(used);
  }
  return r.empty();
}

}  // namespace

bool ClientSession::fallback_refuses_kind(const cmd::Decision& d) const {
  switch (d.kind) {
    case cmd::Kind::Multi:
    case cmd::Kind::Watch:
    case cmd::Kind::Subscribe:
    case cmd::Kind::Psubscribe:
    case cmd::Kind::Ssubscribe:
    case cmd::Kind::Monitor:
    case cmd::Kind::Blocking:
    case cmd::Kind::Replconf:
    case cmd::Kind::Sync:
    case cmd::Kind::ClientTracking:
    case cmd::Kind::ClientUnblock:
      return true;
    default:
      return false;
  }
}

void ClientSession::fallback_seed(const cmd::Decision& d, Args args) {
  fallback::Fallback& fb = server_.fallback();
  fallback::LocalStore& store = fb.store();
  cache::NearCache& nc = server_.cache();
  if (!d.info || !nc.enabled()) return;
  std::vector<size_t> keys;
  if (!server_.commands().extract_keys(*d.info, args, keys)) return;
  const uint64_t now = server_.loop().now_ms();
  for (size_t i : keys) {
    std::string_view key = args[i];
    if (store.knows(db_, key)) continue;
    const std::string_view get[] = {"GET", key};
    if (const std::string* r = nc.lookup_stale(get, now, fb.serve_stale_ms())) {
      std::string_view value;
      size_t used = 0;
      if (*r == "$-1\r\n") {
        store.seed_absent(db_, key);
      } else if (parse_bulk(*r, value, used) && used == r->size()) {
        store.seed_string(db_, key, value);
      }
      continue;
    }
    const std::string_view hgetall[] = {"HGETALL", key};
    if (const std::string* r = nc.lookup_stale(hgetall, now, fb.serve_stale_ms())) {
      std::vector<std::string_view> flat;
      if (!parse_bulk_array(*r, flat) || flat.size() % 2 != 0) continue;
      std::vector<fallback::LocalStore::Field> fields;
      for (size_t j = 0; j + 1 < flat.size(); j += 2) fields.emplace_back(flat[j], flat[j + 1]);
      if (fields.empty()) {
        store.seed_absent(db_, key);
      } else {
        store.seed_hash(db_, key, fields);
      }
    }
  }
}

bool ClientSession::handle_fallback(const cmd::Decision& d, Args args) {
  fallback::Fallback& fb = server_.fallback();
  auto& stats = fb.stats();
  const std::string_view name = args[0];
  if (fallback_refuses_kind(d)) {
    ++stats.refused;
    reply_error("-FALLBACK '" + std::string(cmd::display_name(d, args)) +
                "' is not available while Redis is unreachable (respite answers from local memory)\r\n");
    return true;
  }
  // Liveness checks keep working.
  if (cmd::iequals(name, "ping") && args.size() <= 2) {
    reply_local(args.size() == 1 ? std::string("+PONG\r\n") : resp::bulk_string(args[1]));
    return true;
  }
  if (cmd::iequals(name, "echo") && args.size() == 2) {
    reply_local(resp::bulk_string(args[1]));
    return true;
  }

  const bool write = !d.info || d.info->has(cmd::CommandFlag::Write);
  if (fb.mode() == fallback::Mode::Local && fallback::LocalStore::supports(name)) {
    fallback::LocalStore& store = fb.store();
    std::string& reply = fallback_reply_;
    std::vector<std::string>& journal = fallback_journal_;
    const uint64_t now = fallback::wall_clock_ms();
    fallback::Outcome o = store.execute(db_, args, now, reply, journal);
    if (o == fallback::Outcome::Unknown) {
      fallback_seed(d, args);
      o = store.execute(db_, args, now, reply, journal);
    }
    if (o == fallback::Outcome::Done) {
      if (!journal.empty()) {
        std::string error;
        if (!fb.journal(db_, journal, error)) {
          // Not durable, so not acknowledged: the store forgets what the write told it.
          std::vector<size_t> keys;
          if (d.info && server_.commands().extract_keys(*d.info, args, keys)) {
            for (size_t i : keys) store.forget(db_, args[i]);
          } else {
            store.clear();
          }
          ++stats.refused;
          reply_error("-FALLBACK the write was not applied: respite could not journal it (" + error + ")\r\n");
          return true;
        }
      }
      ++stats.local_replies;
      reply_local(reply);
      return true;
    }
    if (o == fallback::Outcome::Refused || write) {
      ++stats.refused;
      reply_error(reply);
      return true;
    }
    // A read of a key the store does not know: the near-cache may have this very reply.
  } else if (write) {
    ++stats.refused;
    reply_error(fb.mode() == fallback::Mode::Local
                    ? fallback::LocalStore::unsupported_error(name)
                    : "-FALLBACK writes are refused while Redis is unreachable (fallback.mode = read-only)\r\n");
    return true;
  }

  cache::NearCache& nc = server_.cache();
  if (const std::string* hit = nc.lookup_stale(args, server_.loop().now_ms(), fb.serve_stale_ms())) {
    ++stats.stale_replies;
    reply_local(*hit);
    return true;
  }
  ++stats.misses;
  if (fb.miss_is_nil()) {
    reply_local("$-1\r\n");
  } else {
    reply_error("-FALLBACK cannot answer '" + std::string(cmd::display_name(d, args)) +
                "' while Redis is unreachable: respite has no local copy\r\n");
  }
  return true;
}

}  // namespace respite::proxy
