// LocalStore's key commands: DEL UNLINK EXISTS TYPE TTL PTTL EXPIRETIME PEXPIRETIME EXPIRE
// PEXPIRE EXPIREAT PEXPIREAT PERSIST.
//
// DEL, UNLINK and EXISTS count keys, so every key they name must be known. TTL-like reads,
// PERSIST and EXPIRE with a condition (NX/XX/GT/LT) need the key's expiry too, which a key
// seeded without one does not have; EXPIRE without a condition sets it, so it needs only the
// key's existence.
#include <limits>

#include "core/errors.h"
#include "fallback/local_store_internal.h"
#include "fallback/redis_numbers.h"

namespace respite::fallback::detail {

Outcome cmd_del(Call& c) {
  for (size_t i = 1; i < c.args.size(); ++i) {
    if (c.ks.lookup(c.db, c.args[i]).state == Known::Unknown) return unknown(c, c.args[i]);
  }
  int64_t deleted = 0;
  for (size_t i = 1; i < c.args.size(); ++i) {
    const Found f = c.ks.lookup(c.db, c.args[i]);
    if (f.state != Known::Present) continue;  // absent, or deleted by an earlier argument
    c.ks.mark_written(*f.e);
    c.ks.assign(*f.e, Value{});
    ++deleted;
  }
  reply_int(c.reply, deleted);
  if (deleted > 0) journal_as_given(c);
  return Outcome::Done;
}

Outcome cmd_exists(Call& c) {
  int64_t n = 0;
  for (size_t i = 1; i < c.args.size(); ++i) {
    const Found f = c.ks.lookup(c.db, c.args[i]);
    if (f.state == Known::Unknown) return unknown(c, c.args[i]);
    if (f.state == Known::Present) ++n;  // a key named twice counts twice, as in Redis
  }
  reply_int(c.reply, n);
  return Outcome::Done;
}

Outcome cmd_type(Call& c) {
  const Found f = c.ks.lookup(c.db, c.args[1]);
  if (f.state == Known::Unknown) return unknown(c, c.args[1]);
  switch (f.state == Known::Absent ? Type::None : f.e->type()) {
    case Type::None:
      c.reply.append("+none\r\n");
      break;
    case Type::String:
      c.reply.append("+string\r\n");
      break;
    case Type::Hash:
      c.reply.append("+hash\r\n");
      break;
    case Type::List:
      c.reply.append("+list\r\n");
      break;
    case Type::Set:
      c.reply.append("+set\r\n");
      break;
  }
  return Outcome::Done;
}

// TTL, PTTL (time left, -1 without expiry), EXPIRETIME, PEXPIRETIME (absolute); -2 for an
// absent key. Seconds are rounded to the nearest, as Redis does.
Outcome cmd_ttl(Call& c) {
  const Found f = c.ks.lookup(c.db, c.args[1]);
  if (f.state == Known::Unknown) return unknown(c, c.args[1]);
  if (f.state == Known::Absent) {
    reply_int(c.reply, -2);
    return Outcome::Done;
  }
  if (!f.e->ttl_known) return unknown_ttl(c, c.args[1]);
  if (f.e->expires_ms == 0) {
    reply_int(c.reply, -1);
    return Outcome::Done;
  }
  const bool absolute = c.name.ends_with("expiretime");
  const bool ms = c.name.starts_with('p');
  int64_t t = f.e->expires_ms;
  if (!absolute) t = t > c.now ? t - c.now : 0;
  reply_int(c.reply, ms ? t : (t + 500) / 1000);
  return Outcome::Done;
}

namespace {

enum : unsigned { kNx = 1, kXx = 2, kGt = 4, kLt = 8 };

}  // namespace

// EXPIRE, PEXPIRE (relative), EXPIREAT, PEXPIREAT (absolute), journaled as PEXPIREAT with
// the absolute time and the given conditions, or as DEL when the time has already passed
// (Redis deletes the key at once).
Outcome cmd_expire(Call& c) {
  unsigned flags = 0;
  for (size_t j = 3; j < c.args.size(); ++j) {
    const std::string_view opt = c.args[j];
    if (iequals(opt, "nx")) {
      flags |= kNx;
    } else if (iequals(opt, "xx")) {
      flags |= kXx;
    } else if (iequals(opt, "gt")) {
      flags |= kGt;
    } else if (iequals(opt, "lt")) {
      flags |= kLt;
    } else {
      return fail(c, err::unsupported_option(opt));
    }
  }
  if ((flags & kNx) && (flags & (kXx | kGt | kLt))) return fail(c, err::kExpireNxAndOthers);
  if ((flags & kGt) && (flags & kLt)) return fail(c, err::kExpireGtAndLt);
  int64_t when = 0;
  if (!parse_integer(c.args[2], when)) return fail(c, errors::kNotInteger);
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  if (!c.name.starts_with('p')) {
    if (when > kMax / 1000 || when < kMin / 1000) return fail(c, err::invalid_expire(c.name));
    when *= 1000;
  }
  const int64_t base = c.name.ends_with("at") ? 0 : c.now;
  if (when > kMax - base) return fail(c, err::invalid_expire(c.name));
  when += base;

  const std::string_view key = c.args[1];
  const Found f = c.ks.lookup(c.db, key);
  if (f.state == Known::Unknown) return unknown(c, key);
  if (f.state == Known::Absent) {
    reply_int(c.reply, 0);
    return Outcome::Done;
  }
  Entry& e = *f.e;
  if (flags) {
    if (!e.ttl_known) return unknown_ttl(c, key);
    const int64_t current = e.expires_ms == 0 ? -1 : e.expires_ms;
    const bool skip = ((flags & kNx) && current != -1) || ((flags & kXx) && current == -1) ||
                      ((flags & kGt) && (when <= current || current == -1)) ||
                      ((flags & kLt) && current != -1 && when >= current);
    if (skip) {
      reply_int(c.reply, 0);
      return Outcome::Done;
    }
  }
  c.ks.mark_written(e);
  reply_int(c.reply, 1);
  if (when <= c.now) {
    c.ks.assign(e, Value{});
    c.journal = {"DEL", std::string(key)};
    return Outcome::Done;
  }
  c.ks.set_expiry(e, when);
  c.journal = {"PEXPIREAT", std::string(key), std::to_string(when)};
  for (size_t j = 3; j < c.args.size(); ++j) c.journal.emplace_back(c.args[j]);
  return Outcome::Done;
}

Outcome cmd_persist(Call& c) {
  const std::string_view key = c.args[1];
  const Found f = c.ks.lookup(c.db, key);
  if (f.state == Known::Unknown) return unknown(c, key);
  if (f.state == Known::Absent) {
    reply_int(c.reply, 0);
    return Outcome::Done;
  }
  if (!f.e->ttl_known) return unknown_ttl(c, key);
  if (f.e->expires_ms == 0) {
    reply_int(c.reply, 0);
    return Outcome::Done;
  }
  c.ks.mark_written(*f.e);
  c.ks.set_expiry(*f.e, 0);
  reply_int(c.reply, 1);
  journal_as_given(c);
  return Outcome::Done;
}

}  // namespace respite::fallback::detail
