// LocalStore's list and set commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX,
// SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD.
//
// Writes need the key known (their replies count elements, their effects extend what Redis
// holds). A list or set that loses its last element is deleted, as in Redis. LPOP/RPOP and
// LRANGE check their numeric arguments before the key, LINDEX after it (Redis's order).
#include <algorithm>

#include "core/errors.h"
#include "fallback/local_store_internal.h"
#include "fallback/redis_numbers.h"

namespace respite::fallback::detail {
namespace {

// The key's value of type T for a read: null with `out` set when the read is answered
// without one (Unknown, WRONGTYPE, or absent: `absent_reply` is appended).
template <typename T>
const T* read_value(Call& c, std::string_view absent_reply, Outcome& out) {
  const Found f = c.ks.lookup(c.db, c.args[1]);
  if (f.state == Known::Unknown) {
    out = unknown(c, c.args[1]);
  } else if (f.state == Known::Absent) {
    c.reply.append(absent_reply);
    out = Outcome::Done;
  } else if (!std::holds_alternative<T>(f.e->value)) {
    out = wrong_type(c);
  } else {
    return &std::get<T>(f.e->value);
  }
  return nullptr;
}

// The key's entry for a write of type T: null with `out` set on Unknown or WRONGTYPE.
template <typename T>
Entry* write_target(Call& c, Outcome& out) {
  const Found f = c.ks.lookup(c.db, c.args[1]);
  if (f.state == Known::Unknown) {
    out = unknown(c, c.args[1]);
    return nullptr;
  }
  if (f.state == Known::Present && !std::holds_alternative<T>(f.e->value)) {
    out = wrong_type(c);
    return nullptr;
  }
  return f.e;
}

// The entry's value of type T, created empty when the key is absent; marks it written.
template <typename T>
T& value_for_write(Call& c, Entry& e) {
  c.ks.mark_written(e);
  if (!e.present()) c.ks.assign(e, Value(std::in_place_type<T>));
  return std::get<T>(e.value);
}

// Deletes the key when its collection became empty.
template <typename T>
void drop_if_empty(Call& c, Entry& e) {
  if (std::get<T>(e.value).empty()) c.ks.assign(e, Value{});
}

}  // namespace

// LPUSH, RPUSH; LPUSHX, RPUSHX only onto an existing list.
Outcome cmd_push(Call& c) {
  const bool left = c.name.front() == 'l';
  const bool only_existing = c.name.back() == 'x';
  Outcome out = Outcome::Done;
  Entry* e = write_target<ListValue>(c, out);
  if (!e) return out;
  if (only_existing && !e->present()) {
    reply_int(c.reply, 0);
    return Outcome::Done;
  }
  int64_t growth = 0;
  for (size_t i = 2; i < c.args.size(); ++i) growth += static_cast<int64_t>(element_cost(c.args[i]));
  Entry* keep[] = {e};
  if (!c.ks.make_room(growth, keep)) return full(c);
  ListValue& list = value_for_write<ListValue>(c, *e);
  for (size_t i = 2; i < c.args.size(); ++i) {
    if (left) {
      list.emplace_front(c.args[i]);
    } else {
      list.emplace_back(c.args[i]);
    }
  }
  c.ks.charge(*e, growth);
  reply_int(c.reply, static_cast<int64_t>(list.size()));
  journal_as_given(c);
  return Outcome::Done;
}

// LPOP, RPOP, with an optional count (then the reply is an array, nil array when absent).
Outcome cmd_pop(Call& c) {
  if (c.args.size() > 3) return fail(c, errors::wrong_arity(c.name));
  const bool left = c.name.front() == 'l';
  const bool has_count = c.args.size() == 3;
  int64_t count = 1;
  if (has_count && (!parse_integer(c.args[2], count) || count < 0)) return fail(c, err::kNotPositive);
  Outcome out = Outcome::Done;
  Entry* e = write_target<ListValue>(c, out);
  if (!e) return out;
  if (!e->present()) {
    c.reply.append(has_count ? "*-1\r\n" : "$-1\r\n");
    return Outcome::Done;
  }
  if (count == 0) {
    c.reply.append("*0\r\n");
    return Outcome::Done;
  }
  ListValue& list = std::get<ListValue>(e->value);
  const size_t n = std::min(static_cast<size_t>(count), list.size());
  if (has_count) reply_array(c.reply, n);
  c.ks.mark_written(*e);
  for (size_t i = 0; i < n; ++i) {
    std::string& el = left ? list.front() : list.back();
    reply_bulk(c.reply, el);
    const auto cost = static_cast<int64_t>(element_cost(el));
    if (left) {
      list.pop_front();
    } else {
      list.pop_back();
    }
    c.ks.charge(*e, -cost);
  }
  drop_if_empty<ListValue>(c, *e);
  journal_as_given(c);
  return Outcome::Done;
}

Outcome cmd_llen(Call& c) {
  Outcome out = Outcome::Done;
  const ListValue* list = read_value<ListValue>(c, ":0\r\n", out);
  if (!list) return out;
  reply_int(c.reply, static_cast<int64_t>(list->size()));
  return Outcome::Done;
}

Outcome cmd_lrange(Call& c) {
  int64_t start = 0;
  int64_t end = 0;
  if (!parse_integer(c.args[2], start) || !parse_integer(c.args[3], end)) return fail(c, errors::kNotInteger);
  Outcome out = Outcome::Done;
  const ListValue* list = read_value<ListValue>(c, "*0\r\n", out);
  if (!list) return out;
  const auto len = static_cast<int64_t>(list->size());
  if (start < 0) start += len;
  if (end < 0) end += len;
  if (start < 0) start = 0;
  if (start > end || start >= len) {
    c.reply.append("*0\r\n");
    return Outcome::Done;
  }
  if (end >= len) end = len - 1;
  reply_array(c.reply, static_cast<size_t>(end - start + 1));
  for (int64_t i = start; i <= end; ++i) reply_bulk(c.reply, (*list)[static_cast<size_t>(i)]);
  return Outcome::Done;
}

Outcome cmd_lindex(Call& c) {
  Outcome out = Outcome::Done;
  const ListValue* list = read_value<ListValue>(c, "$-1\r\n", out);
  if (!list) return out;
  int64_t index = 0;
  if (!parse_integer(c.args[2], index)) return fail(c, errors::kNotInteger);
  const auto len = static_cast<int64_t>(list->size());
  if (index < 0) index += len;
  if (index < 0 || index >= len) {
    reply_nil(c.reply);
  } else {
    reply_bulk(c.reply, (*list)[static_cast<size_t>(index)]);
  }
  return Outcome::Done;
}

Outcome cmd_sadd(Call& c) {
  Outcome out = Outcome::Done;
  Entry* e = write_target<SetValue>(c, out);
  if (!e) return out;
  const SetValue* before = e->present() ? &std::get<SetValue>(e->value) : nullptr;
  std::unordered_set<std::string_view, BytesHash> fresh;  // members not in the set yet
  int64_t growth = 0;
  for (size_t i = 2; i < c.args.size(); ++i) {
    if (before && before->find(c.args[i]) != before->end()) continue;
    if (fresh.insert(c.args[i]).second) growth += static_cast<int64_t>(element_cost(c.args[i]));
  }
  if (fresh.empty()) {
    reply_int(c.reply, 0);
    return Outcome::Done;
  }
  Entry* keep[] = {e};
  if (!c.ks.make_room(growth, keep)) return full(c);
  SetValue& set = value_for_write<SetValue>(c, *e);
  for (size_t i = 2; i < c.args.size(); ++i) set.emplace(c.args[i]);
  c.ks.charge(*e, growth);
  reply_int(c.reply, static_cast<int64_t>(fresh.size()));
  journal_as_given(c);
  return Outcome::Done;
}

Outcome cmd_srem(Call& c) {
  Outcome out = Outcome::Done;
  Entry* e = write_target<SetValue>(c, out);
  if (!e) return out;
  int64_t removed = 0;
  if (e->present()) {
    auto& set = std::get<SetValue>(e->value);
    for (size_t i = 2; i < c.args.size(); ++i) {
      auto it = set.find(c.args[i]);
      if (it == set.end()) continue;
      if (removed == 0) c.ks.mark_written(*e);
      const auto cost = static_cast<int64_t>(element_cost(*it));
      set.erase(it);
      c.ks.charge(*e, -cost);
      ++removed;
    }
    drop_if_empty<SetValue>(c, *e);
  }
  reply_int(c.reply, removed);
  if (removed > 0) journal_as_given(c);
  return Outcome::Done;
}

Outcome cmd_smembers(Call& c) {
  Outcome out = Outcome::Done;
  const SetValue* set = read_value<SetValue>(c, "*0\r\n", out);
  if (!set) return out;
  reply_array(c.reply, set->size());
  for (const auto& m : *set) reply_bulk(c.reply, m);
  return Outcome::Done;
}

Outcome cmd_sismember(Call& c) {
  Outcome out = Outcome::Done;
  const SetValue* set = read_value<SetValue>(c, ":0\r\n", out);
  if (!set) return out;
  reply_int(c.reply, set->find(c.args[2]) != set->end() ? 1 : 0);
  return Outcome::Done;
}

Outcome cmd_smismember(Call& c) {
  const Found f = c.ks.lookup(c.db, c.args[1]);
  if (f.state == Known::Unknown) return unknown(c, c.args[1]);
  if (f.state == Known::Present && f.e->type() != Type::Set) return wrong_type(c);
  const SetValue* set = f.e->present() ? &std::get<SetValue>(f.e->value) : nullptr;
  reply_array(c.reply, c.args.size() - 2);
  for (size_t i = 2; i < c.args.size(); ++i) reply_int(c.reply, set && set->find(c.args[i]) != set->end() ? 1 : 0);
  return Outcome::Done;
}

Outcome cmd_scard(Call& c) {
  Outcome out = Outcome::Done;
  const SetValue* set = read_value<SetValue>(c, ":0\r\n", out);
  if (!set) return out;
  reply_int(c.reply, static_cast<int64_t>(set->size()));
  return Outcome::Done;
}

}  // namespace respite::fallback::detail
