// LocalStore: the command table, execute()'s checks around the handlers, seeding, and the
// helpers shared by the handlers (outcomes, replies, error lines).
//
// execute() order, as Redis's own: the command must be one of the table's (else -FALLBACK),
// then the arity (Redis's convention: n exact, -n at least n arguments including the name),
// then the handler. Keys whose expiry passed are expired before the handler runs (so no
// handler sees an expired key) and after it (a SET ... PXAT in the past leaves nothing).
#include "fallback/local_store.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <initializer_list>

#include "core/errors.h"
#include "fallback/local_store_internal.h"
#include "resp/resp_writer.h"

namespace respite::fallback {
namespace {

using detail::Call;
using detail::Handler;

struct Spec {
  std::string_view name;  // lower case
  int arity;              // Redis's: n exact, -n at least n (the name included)
  bool write;             // may modify the keyspace
  Handler fn;
};

// Sorted by name (binary search).
constexpr std::array kCommands = {
    Spec{"append", 3, true, detail::cmd_append},
    Spec{"decr", 2, true, detail::cmd_decr},
    Spec{"decrby", 3, true, detail::cmd_decrby},
    Spec{"del", -2, true, detail::cmd_del},
    Spec{"exists", -2, false, detail::cmd_exists},
    Spec{"expire", -3, true, detail::cmd_expire},
    Spec{"expireat", -3, true, detail::cmd_expire},
    Spec{"expiretime", 2, false, detail::cmd_ttl},
    Spec{"get", 2, false, detail::cmd_get},
    Spec{"getdel", 2, true, detail::cmd_getdel},
    Spec{"getex", -2, true, detail::cmd_getex},
    Spec{"getset", 3, true, detail::cmd_getset},
    Spec{"hdel", -3, true, detail::cmd_hdel},
    Spec{"hexists", 3, false, detail::cmd_hexists},
    Spec{"hget", 3, false, detail::cmd_hget},
    Spec{"hgetall", 2, false, detail::cmd_hgetall},
    Spec{"hincrby", 4, true, detail::cmd_hincrby},
    Spec{"hincrbyfloat", 4, true, detail::cmd_hincrbyfloat},
    Spec{"hkeys", 2, false, detail::cmd_hgetall},
    Spec{"hlen", 2, false, detail::cmd_hlen},
    Spec{"hmget", -3, false, detail::cmd_hmget},
    Spec{"hmset", -4, true, detail::cmd_hset},
    Spec{"hset", -4, true, detail::cmd_hset},
    Spec{"hsetnx", 4, true, detail::cmd_hsetnx},
    Spec{"hstrlen", 3, false, detail::cmd_hstrlen},
    Spec{"hvals", 2, false, detail::cmd_hgetall},
    Spec{"incr", 2, true, detail::cmd_incr},
    Spec{"incrby", 3, true, detail::cmd_incrby},
    Spec{"incrbyfloat", 3, true, detail::cmd_incrbyfloat},
    Spec{"lindex", 3, false, detail::cmd_lindex},
    Spec{"llen", 2, false, detail::cmd_llen},
    Spec{"lpop", -2, true, detail::cmd_pop},
    Spec{"lpush", -3, true, detail::cmd_push},
    Spec{"lpushx", -3, true, detail::cmd_push},
    Spec{"lrange", 4, false, detail::cmd_lrange},
    Spec{"mget", -2, false, detail::cmd_mget},
    Spec{"mset", -3, true, detail::cmd_mset},
    Spec{"msetnx", -3, true, detail::cmd_msetnx},
    Spec{"persist", 2, true, detail::cmd_persist},
    Spec{"pexpire", -3, true, detail::cmd_expire},
    Spec{"pexpireat", -3, true, detail::cmd_expire},
    Spec{"pexpiretime", 2, false, detail::cmd_ttl},
    Spec{"psetex", 4, true, detail::cmd_psetex},
    Spec{"pttl", 2, false, detail::cmd_ttl},
    Spec{"rpop", -2, true, detail::cmd_pop},
    Spec{"rpush", -3, true, detail::cmd_push},
    Spec{"rpushx", -3, true, detail::cmd_push},
    Spec{"sadd", -3, true, detail::cmd_sadd},
    Spec{"scard", 2, false, detail::cmd_scard},
    Spec{"set", -3, true, detail::cmd_set},
    Spec{"setex", 4, true, detail::cmd_setex},
    Spec{"setnx", 3, true, detail::cmd_setnx},
    Spec{"sismember", 3, false, detail::cmd_sismember},
    Spec{"smembers", 2, false, detail::cmd_smembers},
    Spec{"smismember", -3, false, detail::cmd_smismember},
    Spec{"srem", -3, true, detail::cmd_srem},
    Spec{"strlen", 2, false, detail::cmd_strlen},
    Spec{"ttl", 2, false, detail::cmd_ttl},
    Spec{"type", 2, false, detail::cmd_type},
    Spec{"unlink", -2, true, detail::cmd_del},
};

constexpr bool sorted_by_name() {
  for (size_t i = 1; i < kCommands.size(); ++i) {
    if (!(kCommands[i - 1].name < kCommands[i].name)) return false;
  }
  return true;
}
static_assert(sorted_by_name(), "kCommands must stay sorted for the binary search");

const Spec* find_spec(std::string_view command) {
  char lower[16];
  if (command.empty() || command.size() > sizeof lower) return nullptr;
  for (size_t i = 0; i < command.size(); ++i) {
    lower[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(command[i])));
  }
  const std::string_view name(lower, command.size());
  auto it = std::lower_bound(kCommands.begin(), kCommands.end(), name,
                             [](const Spec& s, std::string_view n) { return s.name < n; });
  return it != kCommands.end() && it->name == name ? &*it : nullptr;
}

// A key for an error line: at most 64 bytes, printable ASCII as is except ' and \, the rest
// as \xNN, "..." when cut.
std::string printable_key(std::string_view key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : key.substr(0, 64)) {
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out.append("\\x");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (key.size() > 64) out.append("...");
  return out;
}

// A command name for an error line: lower case, at most 64 bytes, '?' for the unprintable.
std::string printable_command(std::string_view command) {
  std::string out;
  for (unsigned char c : command.substr(0, 64)) {
    out.push_back(c >= 0x20 && c < 0x7f && c != '\'' ? static_cast<char>(std::tolower(c)) : '?');
  }
  return out;
}

std::string concat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) out.append(p);
  return out;
}

}  // namespace

// --- helpers shared by the handlers ---
namespace detail {

Outcome fail(Call& c, std::string_view error_line) {
  c.reply.assign(error_line);
  c.journal.clear();
  return Outcome::Refused;
}

Outcome unknown(Call& c, std::string_view key) {
  c.reply = LocalStore::unknown_error(c.name, key);
  c.journal.clear();
  return Outcome::Unknown;
}

Outcome unknown_ttl(Call& c, std::string_view key) {
  c.reply = LocalStore::unknown_ttl_error(c.name, key);
  c.journal.clear();
  return Outcome::Unknown;
}

Outcome full(Call& c) { return fail(c, err::kFull); }

Outcome wrong_type(Call& c) { return fail(c, err::kWrongType); }

void reply_int(std::string& out, int64_t v) {
  out.push_back(':');
  out.append(std::to_string(v));
  out.append("\r\n");
}

void reply_bulk(std::string& out, std::string_view s) { resp::append_bulk(out, s); }

void reply_array(std::string& out, size_t n) {
  out.push_back('*');
  out.append(std::to_string(n));
  out.append("\r\n");
}

void journal_as_given(Call& c) {
  c.journal.assign(c.args.begin(), c.args.end());
  for (char& ch : c.journal[0]) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

namespace err {

std::string invalid_expire(std::string_view command) {
  return concat({"-ERR invalid expire time in '", command, "' command\r\n"});
}

std::string unsupported_option(std::string_view option) {
  std::string opt(option);
  std::replace_if(opt.begin(), opt.end(), [](char ch) { return ch == '\r' || ch == '\n'; }, ' ');
  return concat({"-ERR Unsupported option ", opt, "\r\n"});
}

}  // namespace err
}  // namespace detail

// --- LocalStore ---

LocalStore::LocalStore(size_t max_bytes) : ks_(std::make_unique<detail::Keyspace>(max_bytes)) {}
LocalStore::~LocalStore() = default;

Outcome LocalStore::execute(int db, Args args, uint64_t now_ms, std::string& reply,
                            std::vector<std::string>& journal) {
  reply.clear();
  journal.clear();
  Stats& st = ks_->stats;
  const Spec* spec = args.empty() ? nullptr : find_spec(args[0]);
  if (spec == nullptr) {
    reply = unsupported_error(args.empty() ? std::string_view() : args[0]);
    ++st.refused;
    ++st.unsupported;
    return Outcome::Refused;
  }
  const auto now = static_cast<int64_t>(now_ms);
  ks_->sweep(now);
  Call c{*ks_, spec->name, db, args, now, reply, journal};
  const auto n = static_cast<int>(args.size());
  Outcome out;
  if (spec->arity > 0 ? n != spec->arity : n < -spec->arity) {
    out = detail::fail(c, errors::wrong_arity(spec->name));
  } else {
    out = spec->fn(c);
  }
  ks_->sweep(now);
  switch (out) {
    case Outcome::Done:
      if (spec->write) {
        ++st.writes;
        if (!journal.empty()) ++st.journaled;
      } else {
        ++st.reads;
      }
      break;
    case Outcome::Unknown:
      ++st.unknown;
      break;
    case Outcome::Refused:
      ++st.refused;
      if (reply.starts_with("-OOM")) {
        ++st.full;
      } else if (reply.starts_with("-FALLBACK")) {
        ++st.unsupported;
      } else {
        ++st.errors;
      }
      break;
  }
  return out;
}

bool LocalStore::supports(std::string_view command) { return find_spec(command) != nullptr; }

bool LocalStore::is_write(std::string_view command) {
  const Spec* s = find_spec(command);
  return s != nullptr && s->write;
}

bool LocalStore::seed_string(int db, std::string_view key, std::string_view value, int64_t expires_at_ms) {
  return ks_->seed(db, key, detail::Value(std::in_place_index<1>, value), expires_at_ms);
}

bool LocalStore::seed_absent(int db, std::string_view key) { return ks_->seed(db, key, detail::Value{}, kNoExpiry); }

bool LocalStore::seed_hash(int db, std::string_view key, std::span<const Field> fields, int64_t expires_at_ms) {
  detail::Value v;
  if (!fields.empty()) {
    auto& h = v.emplace<detail::HashValue>();
    for (const auto& [f, val] : fields) h.set(f, val);
  }
  return ks_->seed(db, key, std::move(v), expires_at_ms);
}

bool LocalStore::seed_list(int db, std::string_view key, std::span<const std::string_view> elements,
                           int64_t expires_at_ms) {
  detail::Value v;
  if (!elements.empty()) {
    auto& list = v.emplace<detail::ListValue>();
    for (std::string_view el : elements) list.emplace_back(el);
  }
  return ks_->seed(db, key, std::move(v), expires_at_ms);
}

bool LocalStore::seed_set(int db, std::string_view key, std::span<const std::string_view> members,
                          int64_t expires_at_ms) {
  detail::Value v;
  if (!members.empty()) {
    auto& set = v.emplace<detail::SetValue>();
    for (std::string_view m : members) set.emplace(m);
  }
  return ks_->seed(db, key, std::move(v), expires_at_ms);
}

void LocalStore::forget(int db, std::string_view key) { ks_->forget(db, key); }

bool LocalStore::knows(int db, std::string_view key) const { return ks_->find(db, key) != nullptr; }

void LocalStore::expire(uint64_t now_ms) { ks_->sweep(static_cast<int64_t>(now_ms)); }

size_t LocalStore::bytes() const { return ks_->bytes(); }
size_t LocalStore::max_bytes() const { return ks_->max_bytes(); }
void LocalStore::set_max_bytes(size_t max_bytes) { ks_->set_max_bytes(max_bytes); }
size_t LocalStore::keys() const { return ks_->keys(); }
size_t LocalStore::entries() const { return ks_->entries(); }
void LocalStore::clear() { ks_->clear(); }
const LocalStore::Stats& LocalStore::stats() const { return ks_->stats; }
size_t LocalStore::recount_bytes() const { return ks_->recount(); }

std::string LocalStore::unknown_error(std::string_view command, std::string_view key) {
  return concat({"-FALLBACK cannot answer '", printable_command(command), "' for key '", printable_key(key),
                 "' while Redis is unreachable: respite has no copy of it\r\n"});
}

std::string LocalStore::unknown_ttl_error(std::string_view command, std::string_view key) {
  return concat({"-FALLBACK cannot answer '", printable_command(command), "' for key '", printable_key(key),
                 "' while Redis is unreachable: respite does not know its expiry\r\n"});
}

std::string LocalStore::unsupported_error(std::string_view command) {
  return concat({"-FALLBACK '", printable_command(command),
                 "' is not available while Redis is unreachable (respite's local store does not implement it)\r\n"});
}

std::string_view LocalStore::full_error() { return detail::err::kFull; }

}  // namespace respite::fallback
