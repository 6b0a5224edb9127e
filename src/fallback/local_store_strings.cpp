// LocalStore's string commands: GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX MGET MSET
// MSETNX INCR DECR INCRBY DECRBY INCRBYFLOAT APPEND STRLEN.
//
// Check order follows Redis 7.0's, because an error Redis reports before it reads the key is
// answered for unknown keys too, while one it reports after (WRONGTYPE, a stored value that
// is not a number) needs the key: SET parses its options and expire time first; INCRBY and
// DECRBY their increment first; INCRBYFLOAT reads the key first; GETEX parses its options,
// then reads the key, then checks the expire time.
#include <cmath>
#include <limits>

#include "core/errors.h"
#include "fallback/local_store_internal.h"
#include "fallback/redis_numbers.h"

namespace respite::fallback::detail {
namespace {

// SET and GETEX options.
enum : unsigned {
  kNx = 1u << 0,
  kXx = 1u << 1,
  kGet = 1u << 2,
  kKeepTtl = 1u << 3,
  kEx = 1u << 4,
  kPx = 1u << 5,
  kExat = 1u << 6,
  kPxat = 1u << 7,
  kPersist = 1u << 8,
};
constexpr unsigned kAnyExpire = kEx | kPx | kExat | kPxat;

// Redis's option grammar for SET (from argument 3) and GETEX (from argument 2): each
// option once in spirit, but repeats of a compatible option are accepted (the last expire
// time wins), and an expire option needs a following argument. False: a syntax error.
bool parse_options(LocalStore::Args args, size_t first, bool for_set, unsigned& flags, std::string_view& expire) {
  for (size_t j = first; j < args.size(); ++j) {
    const std::string_view opt = args[j];
    const bool has_next = j + 1 < args.size();
    auto expire_option = [&](unsigned flag) {
      const unsigned others = (kAnyExpire & ~flag) | kKeepTtl | kPersist;
      if ((flags & others) || !has_next) return false;
      flags |= flag;
      expire = args[++j];
      return true;
    };
    if (for_set && iequals(opt, "nx") && !(flags & kXx)) {
      flags |= kNx;
    } else if (for_set && iequals(opt, "xx") && !(flags & kNx)) {
      flags |= kXx;
    } else if (for_set && iequals(opt, "get")) {
      flags |= kGet;
    } else if (for_set && iequals(opt, "keepttl") && !(flags & kAnyExpire)) {
      flags |= kKeepTtl;
    } else if (!for_set && iequals(opt, "persist") && !(flags & kAnyExpire)) {
      flags |= kPersist;
    } else if (iequals(opt, "ex")) {
      if (!expire_option(kEx)) return false;
    } else if (iequals(opt, "px")) {
      if (!expire_option(kPx)) return false;
    } else if (iequals(opt, "exat")) {
      if (!expire_option(kExat)) return false;
    } else if (iequals(opt, "pxat")) {
      if (!expire_option(kPxat)) return false;
    } else {
      return false;
    }
  }
  return true;
}

// Redis's checks of an expire time in `unit` (kEx, kPx, kExat or kPxat): an integer, above
// zero, not overflowing once in ms and, for relative units, once added to now. Sets `when`
// (absolute ms) or `error` (the reply line).
bool expire_time(std::string_view arg, unsigned unit, std::string_view command, int64_t now, int64_t& when,
                 std::string& error) {
  int64_t v = 0;
  if (!parse_integer(arg, v)) {
    error = errors::kNotInteger;
    return false;
  }
  const bool seconds = (unit & (kEx | kExat)) != 0;
  if (v <= 0 || (seconds && v > std::numeric_limits<int64_t>::max() / 1000)) {
    error = err::invalid_expire(command);
    return false;
  }
  if (seconds) v *= 1000;
  if (unit & (kEx | kPx)) {
    if (v > std::numeric_limits<int64_t>::max() - now) {
      error = err::invalid_expire(command);
      return false;
    }
    v += now;
  }
  when = v;
  return true;
}

// The cost growth of giving `key` (entry `e`, null when unknown) the string `value`.
int64_t string_growth(const Entry* e, std::string_view key, std::string_view value) {
  const auto cost = static_cast<int64_t>(base_cost(key) + value.size());
  return e ? cost - static_cast<int64_t>(e->cost) : cost;
}

// Sets `key` (entry `e`, null when unknown) to the string `value`, whatever it held, keeping
// the entry's expiry (callers change it where the command does). Null: no room, nothing changed.
Entry* write_string(Call& c, Entry* e, std::string_view key, std::string_view value) {
  Entry* keep[] = {e};
  if (!c.ks.make_room(string_growth(e, key, value), keep)) return nullptr;
  Entry& dst = e ? *e : c.ks.obtain(c.db, key);
  c.ks.mark_written(dst);
  c.ks.assign_string(dst, value);
  return &dst;
}

const std::string& str(const Entry* e) { return std::get<std::string>(e->value); }

// SETEX and PSETEX.
Outcome set_with_expiry(Call& c, unsigned unit) {
  const std::string_view key = c.args[1];
  const std::string_view value = c.args[3];
  int64_t when = 0;
  std::string error;
  if (!expire_time(c.args[2], unit, c.name, c.now, when, error)) return fail(c, error);
  Entry* e = write_string(c, c.ks.lookup(c.db, key).e, key, value);
  if (!e) return full(c);
  c.ks.set_expiry(*e, when);
  reply_ok(c.reply);
  c.journal = {"SET", std::string(key), std::string(value), "PXAT", std::to_string(when)};
  return Outcome::Done;
}

Outcome incr_by(Call& c, int64_t incr) {
  const std::string_view key = c.args[1];
  const Found f = c.ks.lookup(c.db, key);
  if (f.state == Known::Unknown) return unknown(c, key);
  int64_t value = 0;
  if (f.state == Known::Present) {
    if (f.e->type() != Type::String) return wrong_type(c);
    if (!parse_integer(str(f.e), value)) return fail(c, errors::kNotInteger);
  }
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if ((incr < 0 && value < 0 && incr < kMin - value) || (incr > 0 && value > 0 && incr > kMax - value)) {
    return fail(c, err::kOverflow);
  }
  value += incr;
  const std::string text = std::to_string(value);
  if (!write_string(c, f.e, key, text)) return full(c);  // a string keeps its expiry
  reply_int(c.reply, value);
  journal_as_given(c);
  return Outcome::Done;
}

}  // namespace

Outcome cmd_get(Call& c) {
  const Found f = c.ks.lookup(c.db, c.args[1]);
  if (f.state == Known::Unknown) return unknown(c, c.args[1]);
  if (f.state == Known::Absent) {
    reply_nil(c.reply);
  } else if (f.e->type() != Type::String) {
    return wrong_type(c);
  } else {
    reply_bulk(c.reply, str(f.e));
  }
  return Outcome::Done;
}

Outcome cmd_set(Call& c) {
  unsigned flags = 0;
  std::string_view expire;
  if (!parse_options(c.args, 3, true, flags, expire)) return fail(c, errors::kSyntax);
  int64_t when = 0;
  if (flags & kAnyExpire) {
    std::string error;
    if (!expire_time(expire, flags & kAnyExpire, c.name, c.now, when, error)) return fail(c, error);
  }
  const std::string_view key = c.args[1];
  const std::string_view value = c.args[2];
  const Found f = c.ks.lookup(c.db, key);
  // NX, XX and GET read the key; KEEPTTL keeps an expiry the store would have to know.
  if (f.state == Known::Unknown && (flags & (kNx | kXx | kGet | kKeepTtl))) return unknown(c, key);
  const bool found = f.state == Known::Present;
  if ((flags & kGet) && found && f.e->type() != Type::String) return wrong_type(c);
  if ((flags & kNx && found) || (flags & kXx && !found)) {
    if ((flags & kGet) && found) {
      reply_bulk(c.reply, str(f.e));
    } else {
      reply_nil(c.reply);
    }
    return Outcome::Done;  // nothing set, nothing to replay
  }
  Entry* keep[] = {f.e};
  if (!c.ks.make_room(string_growth(f.e, key, value), keep)) return full(c);
  if (flags & kGet) {
    if (found) {
      reply_bulk(c.reply, str(f.e));
    } else {
      reply_nil(c.reply);
    }
  } else {
    reply_ok(c.reply);
  }
  Entry* e = write_string(c, f.e, key, value);  // room was made above: cannot fail
  if (flags & kAnyExpire) {
    c.ks.set_expiry(*e, when);
  } else if (!(flags & kKeepTtl) || !found) {
    c.ks.set_expiry(*e, 0);
  }
  c.journal = {"SET", std::string(key), std::string(value)};
  if (flags & kNx) c.journal.emplace_back("NX");
  if (flags & kXx) c.journal.emplace_back("XX");
  if (flags & kAnyExpire) {
    c.journal.emplace_back("PXAT");
    c.journal.push_back(std::to_string(when));
  }
  if (flags & kKeepTtl) c.journal.emplace_back("KEEPTTL");
  return Outcome::Done;
}

Outcome cmd_setnx(Call& c) {
  const std::string_view key = c.args[1];
  const Found f = c.ks.lookup(c.db, key);
  if (f.state == Known::Unknown) return unknown(c, key);
  if (f.state == Known::Present) {
    reply_int(c.reply, 0);
    return Outcome::Done;
  }
  if (!write_string(c, f.e, key, c.args[2])) return full(c);
  reply_int(c.reply, 1);
  journal_as_given(c);
  return Outcome::Done;
}

Outcome cmd_setex(Call& c) { return set_with_expiry(c, kEx); }
Outcome cmd_psetex(Call& c) { return set_with_expiry(c, kPx); }

Outcome cmd_getset(Call& c) {
  const std::string_view key = c.args[1];
  const Found f = c.ks.lookup(c.db, key);
  if (f.state == Known::Unknown) return unknown(c, key);
  const bool found = f.state == Known::Present;
  if (found && f.e->type() != Type::String) return wrong_type(c);
  Entry* keep[] = {f.e};
  if (!c.ks.make_room(string_growth(f.e, key, c.args[2]), keep)) return full(c);
  if (found) {
    reply_bulk(c.reply, str(f.e));
  } else {
    reply_nil(c.reply);
  }
  Entry* e = write_string(c, f.e, key, c.args[2]);
  c.ks.set_expiry(*e, 0);  // GETSET is a SET: the expiry goes
  journal_as_given(c);
  return Outcome::Done;
}

Outcome cmd_getdel(Call& c) {
  const std::string_view key = c.args[1];
  const Found f = c.ks.lookup(c.db, key);
  if (f.state == Known::Unknown) return unknown(c, key);
  if (f.state == Known::Absent) {
    reply_nil(c.reply);
    return Outcome::Done;
  }
  if (f.e->type() != Type::String) return wrong_type(c);
  reply_bulk(c.reply, str(f.e));
  c.ks.mark_written(*f.e);
  c.ks.assign(*f.e, Value{});
  journal_as_given(c);
  return Outcome::Done;
}

// GETEX's effect is journaled as Redis propagates it: PEXPIREAT, PERSIST, or DEL when the
// absolute time has already passed.
Outcome cmd_getex(Call& c) {
  unsigned flags = 0;
  std::string_view expire;
  if (!parse_options(c.args, 2, false, flags, expire)) return fail(c, errors::kSyntax);
  const std::string_view key = c.args[1];
  const Found f = c.ks.lookup(c.db, key);
  if (f.state == Known::Unknown) return unknown(c, key);
  if (f.state == Known::Absent) {
    reply_nil(c.reply);
    return Outcome::Done;
  }
  if (f.e->type() != Type::String) return wrong_type(c);
  int64_t when = 0;
  if (flags & kAnyExpire) {
    std::string error;
    if (!expire_time(expire, flags & kAnyExpire, c.name, c.now, when, error)) return fail(c, error);
  }
  reply_bulk(c.reply, str(f.e));
  Entry& e = *f.e;
  if ((flags & (kExat | kPxat)) && when <= c.now) {
    c.ks.mark_written(e);
    c.ks.assign(e, Value{});
    c.journal = {"DEL", std::string(key)};
  } else if (flags & kAnyExpire) {
    c.ks.mark_written(e);
    c.ks.set_expiry(e, when);
    c.journal = {"PEXPIREAT", std::string(key), std::to_string(when)};
  } else if ((flags & kPersist) && !(e.ttl_known && e.expires_ms == 0)) {
    c.ks.mark_written(e);
    c.ks.set_expiry(e, 0);
    c.journal = {"PERSIST", std::string(key)};
  }
  return Outcome::Done;
}

Outcome cmd_mget(Call& c) {
  for (size_t i = 1; i < c.args.size(); ++i) {
    if (c.ks.lookup(c.db, c.args[i]).state == Known::Unknown) return unknown(c, c.args[i]);
  }
  reply_array(c.reply, c.args.size() - 1);
  for (size_t i = 1; i < c.args.size(); ++i) {
    const Found f = c.ks.lookup(c.db, c.args[i]);
    if (f.state == Known::Present && f.e->type() == Type::String) {
      reply_bulk(c.reply, str(f.e));
    } else {
      reply_nil(c.reply);
    }
  }
  return Outcome::Done;
}

namespace {

// MSET and MSETNX once their checks passed: every key gets its last value in the request and
// no expiry. False: no room (nothing changed).
bool mset_apply(Call& c) {
  std::unordered_map<std::string_view, std::string_view, BytesHash> last;  // key -> its last value
  for (size_t i = 1; i + 1 < c.args.size(); i += 2) last[c.args[i]] = c.args[i + 1];
  int64_t growth = 0;
  std::vector<Entry*> keep;
  for (const auto& [key, value] : last) {
    Entry* e = c.ks.lookup(c.db, key).e;
    growth += string_growth(e, key, value);
    if (e) keep.push_back(e);
  }
  if (!c.ks.make_room(growth, keep)) return false;
  for (const auto& [key, value] : last) {
    Entry& e = c.ks.obtain(c.db, key);
    c.ks.mark_written(e);
    c.ks.assign_string(e, value);
    c.ks.set_expiry(e, 0);
  }
  return true;
}

}  // namespace

Outcome cmd_mset(Call& c) {
  if (c.args.size() % 2 == 0) return fail(c, errors::wrong_arity(c.name));
  if (!mset_apply(c)) return full(c);
  reply_ok(c.reply);
  journal_as_given(c);
  return Outcome::Done;
}

Outcome cmd_msetnx(Call& c) {
  if (c.args.size() % 2 == 0) return fail(c, errors::wrong_arity(c.name));
  bool any = false;
  for (size_t i = 1; i < c.args.size(); i += 2) {
    const Found f = c.ks.lookup(c.db, c.args[i]);
    if (f.state == Known::Unknown) return unknown(c, c.args[i]);
    any = any || f.state == Known::Present;
  }
  if (any) {
    reply_int(c.reply, 0);
    return Outcome::Done;
  }
  if (!mset_apply(c)) return full(c);
  reply_int(c.reply, 1);
  journal_as_given(c);
  return Outcome::Done;
}

Outcome cmd_incr(Call& c) { return incr_by(c, 1); }
Outcome cmd_decr(Call& c) { return incr_by(c, -1); }

Outcome cmd_incrby(Call& c) {
  int64_t incr = 0;
  if (!parse_integer(c.args[2], incr)) return fail(c, errors::kNotInteger);
  return incr_by(c, incr);
}

Outcome cmd_decrby(Call& c) {
  int64_t decr = 0;
  if (!parse_integer(c.args[2], decr)) return fail(c, errors::kNotInteger);
  if (decr == std::numeric_limits<int64_t>::min()) return fail(c, err::kDecrOverflow);
  return incr_by(c, -decr);
}

// Journaled as SET k <result> KEEPTTL: replaying the increment could round differently.
Outcome cmd_incrbyfloat(Call& c) {
  const std::string_view key = c.args[1];
  const Found f = c.ks.lookup(c.db, key);
  if (f.state == Known::Unknown) return unknown(c, key);
  long double value = 0;
  if (f.state == Known::Present) {
    if (f.e->type() != Type::String) return wrong_type(c);
    if (!parse_float(str(f.e), value)) return fail(c, err::kNotFloat);
  }
  long double incr = 0;
  if (!parse_float(c.args[2], incr)) return fail(c, err::kNotFloat);
  value += incr;
  if (std::isnan(value) || std::isinf(value)) return fail(c, err::kResultNanOrInf);
  std::string text;
  if (!format_float(value, text)) return fail(c, LocalStore::unsupported_error(c.name));
  if (!write_string(c, f.e, key, text)) return full(c);
  reply_bulk(c.reply, text);
  c.journal = {"SET", std::string(key), text, "KEEPTTL"};
  return Outcome::Done;
}

Outcome cmd_append(Call& c) {
  const std::string_view key = c.args[1];
  const std::string_view tail = c.args[2];
  const Found f = c.ks.lookup(c.db, key);
  if (f.state == Known::Unknown) return unknown(c, key);
  size_t length = tail.size();
  if (f.state == Known::Present) {
    if (f.e->type() != Type::String) return wrong_type(c);
    length += str(f.e).size();
    if (length > kMaxStringLength) return fail(c, err::kTooLong);
    Entry* keep[] = {f.e};
    if (!c.ks.make_room(static_cast<int64_t>(tail.size()), keep)) return full(c);
    c.ks.mark_written(*f.e);
    std::get<std::string>(f.e->value).append(tail);
    c.ks.charge(*f.e, static_cast<int64_t>(tail.size()));
  } else if (!write_string(c, f.e, key, tail)) {
    return full(c);
  }
  reply_int(c.reply, static_cast<int64_t>(length));
  journal_as_given(c);
  return Outcome::Done;
}

Outcome cmd_strlen(Call& c) {
  const Found f = c.ks.lookup(c.db, c.args[1]);
  if (f.state == Known::Unknown) return unknown(c, c.args[1]);
  if (f.state == Known::Absent) {
    reply_int(c.reply, 0);
  } else if (f.e->type() != Type::String) {
    return wrong_type(c);
  } else {
    reply_int(c.reply, static_cast<int64_t>(str(f.e).size()));
  }
  return Outcome::Done;
}

}  // namespace respite::fallback::detail
