// LocalStore's hash commands: HSET HMSET HSETNX HGET HMGET HDEL HGETALL HKEYS HVALS HLEN
// HEXISTS HSTRLEN HINCRBY HINCRBYFLOAT.
//
// Every hash write needs the key known: HSET's reply counts the new fields and its effect is
// a merge with the fields Redis holds. Fields keep insertion order; a hash that loses its
// last field is deleted, as in Redis. HINCRBY and HINCRBYFLOAT check their increment before
// the key (Redis's order).
#include <cmath>
#include <limits>

#include "core/errors.h"
#include "fallback/local_store_internal.h"
#include "fallback/redis_numbers.h"

namespace respite::fallback::detail {
namespace {

// The key's hash for a read: null with `out` set when the read is answered without one
// (Unknown, WRONGTYPE, or absent: `absent_reply` is appended).
const HashValue* read_hash(Call& c, std::string_view absent_reply, Outcome& out) {
  const Found f = c.ks.lookup(c.db, c.args[1]);
  if (f.state == Known::Unknown) {
    out = unknown(c, c.args[1]);
  } else if (f.state == Known::Absent) {
    c.reply.append(absent_reply);
    out = Outcome::Done;
  } else if (f.e->type() != Type::Hash) {
    out = wrong_type(c);
  } else {
    return &std::get<HashValue>(f.e->value);
  }
  return nullptr;
}

// The key's entry for a write: null with `out` set on Unknown or WRONGTYPE.
Entry* write_target(Call& c, Outcome& out) {
  const Found f = c.ks.lookup(c.db, c.args[1]);
  if (f.state == Known::Unknown) {
    out = unknown(c, c.args[1]);
    return nullptr;
  }
  if (f.state == Known::Present && f.e->type() != Type::Hash) {
    out = wrong_type(c);
    return nullptr;
  }
  return f.e;
}

// The entry's hash, created (empty) when the key is absent; marks the entry written.
HashValue& hash_for_write(Call& c, Entry& e) {
  c.ks.mark_written(e);
  if (!e.present()) c.ks.assign(e, Value(std::in_place_index<2>));
  return std::get<HashValue>(e.value);
}

// Sets one field, charging the entry.
bool set_field(Call& c, Entry& e, HashValue& h, std::string_view field, std::string_view value) {
  bool added = false;
  c.ks.charge(e, h.set(field, value, &added));
  return added;
}

// The growth of setting `field` to `value` in `h` (null: no hash yet).
int64_t field_growth(const HashValue* h, std::string_view field, std::string_view value) {
  const HashValue::Pair* p = h ? h->find(field) : nullptr;
  if (p) return static_cast<int64_t>(value.size()) - static_cast<int64_t>(p->second.size());
  return static_cast<int64_t>(pair_cost(field, value));
}

const HashValue* hash_of(const Entry* e) { return e->present() ? &std::get<HashValue>(e->value) : nullptr; }

}  // namespace

// HSET replies with the number of new fields, HMSET with +OK.
Outcome cmd_hset(Call& c) {
  if (c.args.size() % 2 == 1) return fail(c, errors::wrong_arity(c.name));
  Outcome out = Outcome::Done;
  Entry* e = write_target(c, out);
  if (!e) return out;
  const HashValue* before = hash_of(e);
  std::unordered_map<std::string_view, std::string_view, BytesHash> last;  // field -> its last value
  for (size_t i = 2; i + 1 < c.args.size(); i += 2) last[c.args[i]] = c.args[i + 1];
  int64_t growth = 0;
  for (const auto& [field, value] : last) growth += field_growth(before, field, value);
  Entry* keep[] = {e};
  if (!c.ks.make_room(growth, keep)) return full(c);
  HashValue& h = hash_for_write(c, *e);
  int64_t added = 0;
  for (size_t i = 2; i + 1 < c.args.size(); i += 2) added += set_field(c, *e, h, c.args[i], c.args[i + 1]) ? 1 : 0;
  if (c.name == "hmset") {
    reply_ok(c.reply);
  } else {
    reply_int(c.reply, added);
  }
  journal_as_given(c);
  return Outcome::Done;
}

Outcome cmd_hsetnx(Call& c) {
  Outcome out = Outcome::Done;
  Entry* e = write_target(c, out);
  if (!e) return out;
  const HashValue* before = hash_of(e);
  if (before && before->find(c.args[2])) {
    reply_int(c.reply, 0);
    return Outcome::Done;
  }
  Entry* keep[] = {e};
  if (!c.ks.make_room(field_growth(before, c.args[2], c.args[3]), keep)) return full(c);
  set_field(c, *e, hash_for_write(c, *e), c.args[2], c.args[3]);
  reply_int(c.reply, 1);
  journal_as_given(c);
  return Outcome::Done;
}

Outcome cmd_hget(Call& c) {
  Outcome out = Outcome::Done;
  const HashValue* h = read_hash(c, "$-1\r\n", out);
  if (!h) return out;
  const HashValue::Pair* p = h->find(c.args[2]);
  if (p) {
    reply_bulk(c.reply, p->second);
  } else {
    reply_nil(c.reply);
  }
  return Outcome::Done;
}

Outcome cmd_hmget(Call& c) {
  const Found f = c.ks.lookup(c.db, c.args[1]);
  if (f.state == Known::Unknown) return unknown(c, c.args[1]);
  if (f.state == Known::Present && f.e->type() != Type::Hash) return wrong_type(c);
  const HashValue* h = hash_of(f.e);
  reply_array(c.reply, c.args.size() - 2);
  for (size_t i = 2; i < c.args.size(); ++i) {
    const HashValue::Pair* p = h ? h->find(c.args[i]) : nullptr;
    if (p) {
      reply_bulk(c.reply, p->second);
    } else {
      reply_nil(c.reply);
    }
  }
  return Outcome::Done;
}

Outcome cmd_hdel(Call& c) {
  Outcome out = Outcome::Done;
  Entry* e = write_target(c, out);
  if (!e) return out;
  int64_t removed = 0;
  if (e->present()) {
    auto& h = std::get<HashValue>(e->value);
    for (size_t i = 2; i < c.args.size(); ++i) {
      const int64_t delta = h.erase(c.args[i]);
      if (delta == 0) continue;
      if (removed == 0) c.ks.mark_written(*e);
      c.ks.charge(*e, delta);
      ++removed;
    }
    if (h.size() == 0) c.ks.assign(*e, Value{});
  }
  reply_int(c.reply, removed);
  if (removed > 0) journal_as_given(c);
  return Outcome::Done;
}

// HGETALL (field, value, ...), HKEYS, HVALS.
Outcome cmd_hgetall(Call& c) {
  Outcome out = Outcome::Done;
  const HashValue* h = read_hash(c, "*0\r\n", out);
  if (!h) return out;
  const bool keys = c.name != "hvals";
  const bool values = c.name != "hkeys";
  reply_array(c.reply, h->size() * (keys && values ? 2 : 1));
  for (const auto& [field, value] : h->pairs()) {
    if (keys) reply_bulk(c.reply, field);
    if (values) reply_bulk(c.reply, value);
  }
  return Outcome::Done;
}

Outcome cmd_hlen(Call& c) {
  Outcome out = Outcome::Done;
  const HashValue* h = read_hash(c, ":0\r\n", out);
  if (!h) return out;
  reply_int(c.reply, static_cast<int64_t>(h->size()));
  return Outcome::Done;
}

Outcome cmd_hexists(Call& c) {
  Outcome out = Outcome::Done;
  const HashValue* h = read_hash(c, ":0\r\n", out);
  if (!h) return out;
  reply_int(c.reply, h->find(c.args[2]) ? 1 : 0);
  return Outcome::Done;
}

Outcome cmd_hstrlen(Call& c) {
  Outcome out = Outcome::Done;
  const HashValue* h = read_hash(c, ":0\r\n", out);
  if (!h) return out;
  const HashValue::Pair* p = h->find(c.args[2]);
  reply_int(c.reply, p ? static_cast<int64_t>(p->second.size()) : 0);
  return Outcome::Done;
}

Outcome cmd_hincrby(Call& c) {
  int64_t incr = 0;
  if (!parse_integer(c.args[3], incr)) return fail(c, errors::kNotInteger);
  Outcome out = Outcome::Done;
  Entry* e = write_target(c, out);
  if (!e) return out;
  const HashValue* before = hash_of(e);
  const HashValue::Pair* p = before ? before->find(c.args[2]) : nullptr;
  int64_t value = 0;
  if (p && !parse_integer(p->second, value)) return fail(c, err::kHashNotInteger);
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if ((incr < 0 && value < 0 && incr < kMin - value) || (incr > 0 && value > 0 && incr > kMax - value)) {
    return fail(c, err::kOverflow);
  }
  value += incr;
  const std::string text = std::to_string(value);
  Entry* keep[] = {e};
  if (!c.ks.make_room(field_growth(before, c.args[2], text), keep)) return full(c);
  set_field(c, *e, hash_for_write(c, *e), c.args[2], text);
  reply_int(c.reply, value);
  journal_as_given(c);
  return Outcome::Done;
}

// Journaled as HSET k f <result>, as Redis propagates it.
Outcome cmd_hincrbyfloat(Call& c) {
  long double incr = 0;
  if (!parse_float(c.args[3], incr)) return fail(c, err::kNotFloat);
  if (std::isnan(incr) || std::isinf(incr)) return fail(c, err::kIncrNanOrInf);
  Outcome out = Outcome::Done;
  Entry* e = write_target(c, out);
  if (!e) return out;
  const HashValue* before = hash_of(e);
  const HashValue::Pair* p = before ? before->find(c.args[2]) : nullptr;
  long double value = 0;
  if (p && !parse_float(p->second, value)) return fail(c, err::kHashNotFloat);
  value += incr;
  if (std::isnan(value) || std::isinf(value)) return fail(c, err::kResultNanOrInf);
  std::string text;
  if (!format_float(value, text)) return fail(c, LocalStore::unsupported_error(c.name));
  Entry* keep[] = {e};
  if (!c.ks.make_room(field_growth(before, c.args[2], text), keep)) return full(c);
  set_field(c, *e, hash_for_write(c, *e), c.args[2], text);
  reply_bulk(c.reply, text);
  c.journal = {"HSET", std::string(c.args[1]), std::string(c.args[2]), text};
  return Outcome::Done;
}

}  // namespace respite::fallback::detail
