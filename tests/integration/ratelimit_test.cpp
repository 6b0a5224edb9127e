// Rate limits (issue 5) against a real Redis: requests over a limit are refused with
// -RATELIMITED (or held, for `delay` rules) before they reach Redis; limits are per client
// identity or global, per command class, skip exempt identities and the admin commands, charge
// a transaction at EXEC, follow a SIGHUP reload on live connections, and show up in RESPITE
// RATELIMIT STATS / BUCKETS. The contract is docs/rate-limits.md.
//
// Each test writes its own config file (rules need one) with the near-cache off, so every
// count is about limits only. Refills are inherent waits: expectations are computed from the
// time measured on a steady clock, never from a sleep. Everything here is respite's own
// behaviour: skipped in direct mode.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <cctype>
#include <cmath>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "integration/cache_fixture.h"

namespace respite::test {
namespace {

// Every config starts with this: the near-cache off.
const std::string kNoCache = "[cache]\nenabled = false\n\n";

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A -RATELIMITED reply, parsed.
struct Limited {
  std::string rule;          // the rule named in the reply
  std::string rate;          // as written in the reply
  long long burst = 0;
  bool too_many_delayed = false;  // ": too many requests delayed" (ratelimit.max_delayed reached)
  long long retry_ms = 0;    // "retry in N ms"
};

// Small parsers for respite's reply formats (std::regex trips GCC 12's -Wmaybe-uninitialized
// at -O3 inside <regex>, and -Werror is on in CI).
bool eat(std::string_view& s, std::string_view literal) {
  if (s.substr(0, literal.size()) != literal) return false;
  s.remove_prefix(literal.size());
  return true;
}

// Moves the leading run of characters `ok` accepts (at least one) from `s` to `out`.
template <typename Ok>
bool take(std::string_view& s, Ok ok, std::string& out) {
  size_t n = 0;
  while (n < s.size() && ok(static_cast<unsigned char>(s[n]))) ++n;
  if (n == 0) return false;
  out.assign(s.substr(0, n));
  s.remove_prefix(n);
  return true;
}

bool is_digit(unsigned char c) { return std::isdigit(c) != 0; }
bool is_not_space(unsigned char c) { return c != ' ' && c != '\r' && c != '\n'; }
bool is_rule_name_char(unsigned char c) { return std::isalnum(c) || c == '_' || c == '.' || c == '-'; }

// A number as respite prints a rate: digits, optionally '.' and more digits.
bool take_rate(std::string_view& s, std::string& out) {
  std::string whole, fraction;
  if (!take(s, is_digit, whole)) return false;
  out = whole;
  if (eat(s, ".")) {
    if (!take(s, is_digit, fraction)) return false;
    out += "." + fraction;
  }
  return true;
}

// "-RATELIMITED limit '<rule>' exceeded (<rate> requests/s, burst <n>)[: too many requests
// delayed]; retry in <n> ms\r\n", exactly.
std::optional<Limited> parse_limited(const std::string& reply) {
  std::string_view s = reply;
  Limited l;
  std::string burst, retry;
  if (!eat(s, "-RATELIMITED limit '") || !take(s, is_rule_name_char, l.rule) || !eat(s, "' exceeded (") ||
      !take_rate(s, l.rate) || !eat(s, " requests/s, burst ") || !take(s, is_digit, burst) || !eat(s, ")"))
    return std::nullopt;
  l.too_many_delayed = eat(s, ": too many requests delayed");
  if (!eat(s, "; retry in ") || !take(s, is_digit, retry) || !eat(s, " ms\r\n") || !s.empty()) return std::nullopt;
  l.burst = std::stoll(burst);
  l.retry_ms = std::stoll(retry);
  return l;
}

bool is_limited(const std::string& reply) { return starts_with(reply, "-RATELIMITED"); }

// Replies of a pipeline sorted into admitted (not an error), refused (-RATELIMITED, in the
// documented format, for `rule`) and anything else.
struct Tally {
  int ok = 0;
  int limited = 0;
  std::vector<std::string> bad;  // other errors, missing replies, malformed -RATELIMITED (escaped)
  std::vector<Limited> refusals;
};

Tally tally(const std::vector<std::string>& replies, const std::string& rule) {
  Tally t;
  for (size_t i = 0; i < replies.size(); ++i) {
    const std::string& r = replies[i];
    if (is_limited(r)) {
      ++t.limited;
      auto l = parse_limited(r);
      if (!l || l->rule != rule || l->retry_ms < 1)
        t.bad.push_back(cat("#", i, " ", escape_bytes(r)));
      else
        t.refusals.push_back(*l);
    } else if (r.empty() || r[0] == '-' || r == "<none>") {
      t.bad.push_back(cat("#", i, " ", escape_bytes(r)));
    } else {
      ++t.ok;
    }
  }
  return t;
}

std::vector<Command> repeat(const Command& c, int n) { return std::vector<Command>(static_cast<size_t>(n), c); }

// The INCR replies among `replies` must be :1, :2, ... in order (admitted requests keep their
// order and each ran once); returns how many there were.
int check_incr_sequence(const std::vector<std::string>& replies, long long start = 1) {
  long long next = start;
  for (size_t i = 0; i < replies.size(); ++i) {
    if (is_limited(replies[i])) continue;
    EXPECT_EQ(replies[i], cat(":", next, "\r\n")) << "reply #" << i;
    ++next;
  }
  return static_cast<int>(next - start);
}

// RESPITE RATELIMIT STATS, parsed: "key:value" lines; rule_<name> lines split into key=value.
struct RlStats {
  std::map<std::string, std::string> fields;
  std::map<std::string, std::map<std::string, std::string>> rules;
  std::string raw;

  long long get(const std::string& key) const {
    auto it = fields.find(key);
    if (it == fields.end()) return -1;
    try {
      return std::stoll(it->second);
    } catch (...) {
      return -1;
    }
  }
  std::string rule_field(const std::string& rule, const std::string& key) const {
    auto r = rules.find(rule);
    if (r == rules.end()) return "<no rule>";
    auto it = r->second.find(key);
    return it == r->second.end() ? "<absent>" : it->second;
  }
  long long rule_count(const std::string& rule, const std::string& key) const {
    try {
      return std::stoll(rule_field(rule, key));
    } catch (...) {
      return -1;
    }
  }
};

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) out.emplace_back(line);
  }
  return out;
}

RlStats rl_stats(Client& admin) {
  RlStats s;
  Reply r = admin.command({"RESPITE", "RATELIMIT", "STATS"});
  if (!r || r->type != REDIS_REPLY_STRING) {
    s.raw = r ? describe(r) : "<error: " + admin.error() + ">";
    return s;
  }
  s.raw.assign(r->str, r->len);
  for (const std::string& line : split_lines(s.raw)) {
    if (line[0] == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon), value = line.substr(colon + 1);
    if (starts_with(key, "rule_")) {
      auto& fields = s.rules[key.substr(5)];
      size_t pos = 0;
      while (pos <= value.size()) {
        size_t comma = value.find(',', pos);
        std::string item = value.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        size_t eq = item.find('=');
        if (eq != std::string::npos) fields[item.substr(0, eq)] = item.substr(eq + 1);
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
    } else {
      s.fields[key] = value;
    }
  }
  return s;
}

// One line of RESPITE RATELIMIT BUCKETS.
struct BucketLine {
  std::string rule, identity;
  long long tokens = -1, burst = -1;
};

// RESPITE RATELIMIT BUCKETS [count]; `raw` receives the reply as rendered. Lines that do not
// follow the documented format fail the test.
std::vector<BucketLine> rl_buckets(Client& admin, std::string* raw, std::optional<int> count = std::nullopt) {
  Command cmd = {"RESPITE", "RATELIMIT", "BUCKETS"};
  if (count) cmd.push_back(std::to_string(*count));
  Reply r = admin.command(cmd);
  std::vector<BucketLine> out;
  if (!r || r->type != REDIS_REPLY_STRING) {
    ADD_FAILURE() << "BUCKETS did not return a bulk string: " << (r ? describe(r) : admin.error());
    return out;
  }
  std::string text(r->str, r->len);
  if (raw) *raw = text;
  for (const std::string& line : split_lines(text)) {
    // "rule=<rule> identity=<identity> tokens=<n> burst=<n>"
    std::string_view rest = line;
    std::string rule, identity, tokens, burst;
    if (!eat(rest, "rule=") || !take(rest, is_not_space, rule) || !eat(rest, " identity=") ||
        !take(rest, is_not_space, identity) || !eat(rest, " tokens=") || !take(rest, is_digit, tokens) ||
        !eat(rest, " burst=") || !take(rest, is_digit, burst) || !rest.empty()) {
      ADD_FAILURE() << "BUCKETS line not in the documented format: " << escape_bytes(line);
      continue;
    }
    out.push_back({rule, identity, std::stoll(tokens), std::stoll(burst)});
  }
  return out;
}

const BucketLine* find_bucket(const std::vector<BucketLine>& lines, const std::string& rule,
                              const std::string& identity) {
  for (const auto& l : lines)
    if (l.rule == rule && l.identity == identity) return &l;
  return nullptr;
}

// One rule as TOML: Rule("name", rate, burst), then the optional keys.
class Rule {
 public:
  Rule(std::string name, double rate, int burst) : name_(std::move(name)), rate_(rate), burst_(burst) {}
  Rule& clients(std::string toml_value) { clients_ = std::move(toml_value); return *this; }
  Rule& commands(std::string toml_value) { commands_ = std::move(toml_value); return *this; }
  Rule& scope(std::string s) { scope_ = std::move(s); return *this; }
  Rule& action(std::string a) { action_ = std::move(a); return *this; }
  Rule& max_wait_ms(int ms) { max_wait_ms_ = ms; return *this; }

  std::string toml() const {
    std::ostringstream rate;
    rate << rate_;
    std::string out = cat("[[ratelimit.rules]]\nname = \"", name_, "\"\nrate = ", rate.str(), "\nburst = ", burst_,
                          "\nclients = ", clients_, "\n");
    if (!commands_.empty()) out += cat("commands = ", commands_, "\n");
    if (!scope_.empty()) out += cat("scope = \"", scope_, "\"\n");
    if (!action_.empty()) out += cat("action = \"", action_, "\"\n");
    if (max_wait_ms_) out += cat("max_wait_ms = ", max_wait_ms_, "\n");
    return out + "\n";
  }

 private:
  std::string name_;
  double rate_;
  int burst_;
  std::string clients_ = "[\"name:*\"]";  // TOML value; every named client by default here
  std::string commands_;                   // TOML value; "" = not written (@all)
  std::string scope_;                      // "" = not written (client)
  std::string action_;                     // "" = not written (reject)
  int max_wait_ms_ = 0;                    // 0 = not written
};

// `header` (the [ratelimit] table's keys) and the rules, after kNoCache.
std::string ratelimit_config(const std::vector<Rule>& rules, const std::string& header = "") {
  std::string out = kNoCache + "[ratelimit]\n" + header + "\n";
  for (const auto& r : rules) out += r.toml();
  return out;
}

// Fixture: each test starts its own stack with start(config); an admin client through respite
// (RESPITE commands are never limited) and a direct client to Redis.
class RateLimitTest : public ProxyTest {
 protected:
  void SetUp() override { SKIP_IN_DIRECT_MODE(); }

  // Starts Redis and respite with `config` as the --config file (kept in dir_ so a test can
  // rewrite it and reload), waits until respite serves, then refills every bucket so the
  // readiness probe's request does not count.
  void start(const std::string& config, std::vector<std::string> sets = {}) {
    config_path_ = write_config(dir_, config);
    StackOptions o;
    o.respite_args = {"--config", config_path_};
    o.respite_sets = std::move(sets);
    // The stack's own readiness probe (DBSIZE from unnamed clients) could be limited by a tight
    // rule; this fixture waits itself, refilling the buckets before each probe.
    o.wait_upstream_ready = false;
    stack_ = std::make_unique<Stack>(o);
    admin_.emplace(connect());
    redis_.emplace(stack().connect_redis());
    std::string last;
    ASSERT_TRUE(poll_until(
        [&] {
          admin_->call({"RESPITE", "RATELIMIT", "RESET"});
          last = admin_->call({"DBSIZE"});
          return starts_with(last, ":");
        },
        deadline_in(10s), 10ms))
        << "respite did not serve DBSIZE within 10 s; last reply: " << last;
    ASSERT_EQ(reset(), "+OK");
  }

  // Rewrites the config file (for a reload).
  void rewrite_config(const std::string& config) { write_config(dir_, config); }

  // SIGHUP, then waits until STATS reports `generation`.
  bool reload_and_wait(long long generation) {
    stack().respite()->send_signal(SIGHUP);
    return poll_until([&] { return rl_stats(admin()).get("generation") == generation; }, deadline_in(kWait), 5ms);
  }

  std::string reset() { return admin().call({"RESPITE", "RATELIMIT", "RESET"}); }

  // A raw connection that has set its client name to `name` (the identity name:<name>).
  RawConn named(const std::string& name) {
    RawConn c = stack().raw();
    EXPECT_EQ(one(c, {"CLIENT", "SETNAME", name}), kOk) << name;
    return c;
  }

  Client& admin() { return *admin_; }
  Client& redis() { return *redis_; }
  RlStats stats() { return rl_stats(admin()); }

  TempDir dir_;                  // holds the config file
  std::string config_path_;      // <dir_>/respite.toml
  std::optional<Client> admin_;  // through respite
  std::optional<Client> redis_;  // straight to Redis
};

// ---------------------------------------------------------------------------------------------
// 1. Per-client limits: one client over its limit, another not.

TEST_F(RateLimitTest, OverLimitClientIsRejectedWhileAnotherIsNot) {
  start(ratelimit_config({Rule("noisy", 10, 5).clients(R"(["name:noisy"])"),
                          Rule("quiet", 1000, 100).clients(R"(["name:quiet"])")}));
  ASSERT_EQ(redis().call({"SET", "k", "v"}), "+OK");
  RawConn a = named("noisy");
  RawConn b = named("quiet");

  const auto t0 = Clock::now();
  const auto ra = pipelined(a, repeat({"GET", "k"}, 50));
  const double elapsed = seconds_since(t0);
  ASSERT_EQ(ra.size(), 50u);
  const Tally ta = tally(ra, "noisy");
  EXPECT_TRUE(ta.bad.empty()) << ta.bad.size() << " bad replies, first: " << ta.bad.front();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(ra[i], "$1\r\nv\r\n") << "request " << i << " of the burst";
  EXPECT_GE(ta.ok, 5);
  EXPECT_LE(ta.ok, 5 + static_cast<int>(elapsed * 10) + 1) << "elapsed " << elapsed << " s";
  EXPECT_GE(ta.limited, 50 - 5 - static_cast<int>(elapsed * 10) - 1);
  for (const auto& l : ta.refusals) {
    EXPECT_EQ(l.rate, "10");
    EXPECT_EQ(l.burst, 5);
    EXPECT_FALSE(l.too_many_delayed);
    EXPECT_GE(l.retry_ms, 1);
    EXPECT_LE(l.retry_ms, 101) << "one request at 10/s is never more than 100 ms away";
  }
  if (!ta.refusals.empty()) std::cout << "[ info ] refusal: " << escape_bytes(ra[ra.size() - 1]) << "\n";

  const auto rb = pipelined(b, repeat({"GET", "k"}, 50));
  const Tally tb = tally(rb, "quiet");
  EXPECT_EQ(tb.ok, 50) << (tb.bad.empty() ? "" : tb.bad.front());
  EXPECT_EQ(tb.limited, 0);
}

// ---------------------------------------------------------------------------------------------
// 2. A refused request is never forwarded.

TEST_F(RateLimitTest, RefusedRequestsNeverReachRedis) {
  start(ratelimit_config({Rule("per-client", 5, 3)}));
  RawConn c = named("counter");
  const long long incr0 = command_calls(redis(), "incr");
  const RlStats s0 = stats();

  const auto replies = pipelined(c, repeat({"INCR", "rl:n"}, 40));
  ASSERT_EQ(replies.size(), 40u);
  const Tally t = tally(replies, "per-client");
  EXPECT_TRUE(t.bad.empty()) << t.bad.front();
  const int admitted = check_incr_sequence(replies);
  EXPECT_EQ(admitted, t.ok);
  EXPECT_GE(admitted, 3);
  EXPECT_GT(t.limited, 0);

  EXPECT_EQ(redis().call({"GET", "rl:n"}), cat("\"", admitted, "\"")) << "Redis ran other than the admitted INCRs";
  EXPECT_EQ(command_calls(redis(), "incr") - incr0, admitted) << "cmdstat_incr on Redis";
  const RlStats s1 = stats();
  EXPECT_EQ(s1.rule_count("per-client", "allowed") - s0.rule_count("per-client", "allowed"), admitted) << s1.raw;
  EXPECT_EQ(s1.rule_count("per-client", "rejected") - s0.rule_count("per-client", "rejected"), t.limited) << s1.raw;
}

// ---------------------------------------------------------------------------------------------
// 3. A global rule: one bucket for the sum of all matching clients.

TEST_F(RateLimitTest, GlobalLimitCapsTheSum) {
  start(ratelimit_config({Rule("global", 20, 20).scope("global")}));
  std::vector<RawConn> conns;
  for (int i = 0; i < 4; ++i) conns.push_back(named(cat("g", i)));
  ASSERT_EQ(reset(), "+OK");

  std::string batch;
  for (int i = 0; i < 30; ++i) batch += resp_command({"INCR", "rl:global"});
  const auto t0 = Clock::now();
  for (auto& c : conns) ASSERT_TRUE(c.send_all(batch, deadline_in(kWait)));
  int ok = 0, limited = 0;
  std::vector<int> per_conn;
  for (auto& c : conns) {
    std::vector<std::string> replies;
    for (int i = 0; i < 30; ++i) replies.push_back(next_reply(c, kWait));
    const Tally t = tally(replies, "global");
    EXPECT_TRUE(t.bad.empty()) << t.bad.front();
    ok += t.ok;
    limited += t.limited;
    per_conn.push_back(t.ok);
  }
  const double elapsed = seconds_since(t0);
  std::cout << "[ info ] admitted per client: " << per_conn[0] << " " << per_conn[1] << " " << per_conn[2] << " "
            << per_conn[3] << " in " << elapsed << " s\n";
  EXPECT_GE(ok, 20);
  EXPECT_LE(ok, 20 + static_cast<int>(elapsed * 20) + 1) << "elapsed " << elapsed << " s";
  EXPECT_EQ(ok + limited, 120);
  EXPECT_EQ(redis().call({"GET", "rl:global"}), cat("\"", ok, "\""));

  std::string raw;
  const auto buckets = rl_buckets(admin(), &raw);
  const BucketLine* g = find_bucket(buckets, "global", "*");
  ASSERT_NE(g, nullptr) << "the global bucket is not listed as identity=*:\n" << raw;
  EXPECT_EQ(g->burst, 20);
  EXPECT_LT(g->tokens, 20);
  EXPECT_EQ(stats().rule_field("global", "scope"), "global");
}

// ---------------------------------------------------------------------------------------------
// 4. `delay`: a burst is spread out at the rate, in order, without errors; a wait beyond
// max_wait_ms is refused rather than held.

TEST_F(RateLimitTest, DelaySpreadsABurstWithoutErrors) {
  start(ratelimit_config({Rule("smooth", 50, 5).action("delay").max_wait_ms(2000)}));
  RawConn c = named("delayed");
  const RlStats s0 = stats();

  const auto t0 = Clock::now();
  const auto replies = pipelined(c, repeat({"INCR", "rl:d"}, 40));
  const double elapsed = seconds_since(t0);
  ASSERT_EQ(replies.size(), 40u);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(replies[i], cat(":", i + 1, "\r\n")) << "reply " << i;
  // From idle, 5 pass at once, then one every 20 ms: the 40th at (40 - 5) / 50 = 0.7 s.
  std::cout << "[ info ] 40 requests at 50/s, burst 5, delayed: " << elapsed << " s (at least 0.7 s)\n";
  EXPECT_GE(elapsed, 0.7 - 0.01);
  EXPECT_LE(elapsed, 0.7 + 2.0);

  const RlStats s1 = stats();
  const long long allowed = s1.rule_count("smooth", "allowed") - s0.rule_count("smooth", "allowed");
  const long long delayed = s1.rule_count("smooth", "delayed") - s0.rule_count("smooth", "delayed");
  EXPECT_EQ(allowed + delayed, 40) << s1.raw;
  EXPECT_GE(allowed, 5) << s1.raw;
  EXPECT_GE(delayed, 1) << s1.raw;
  EXPECT_EQ(s1.rule_count("smooth", "rejected"), 0) << s1.raw;
  EXPECT_EQ(s1.get("delayed_now"), 0) << s1.raw;
  EXPECT_EQ(redis().call({"GET", "rl:d"}), "\"40\"");
}

TEST_F(RateLimitTest, DelayBeyondMaxWaitIsRefusedNotHeld) {
  // One request every 500 ms, held at most 300 ms: right after one is admitted, the next
  // would wait ~500 ms, so it is refused; a client's pipeline is answered in full.
  start(ratelimit_config({Rule("impatient", 2, 1).action("delay").max_wait_ms(300)}));
  RawConn c = named("burster");

  const auto t0 = Clock::now();
  const auto replies = pipelined(c, repeat({"INCR", "rl:w"}, 20));
  const double elapsed = seconds_since(t0);
  ASSERT_EQ(replies.size(), 20u);
  EXPECT_EQ(replies[0], ":1\r\n");
  const Tally t = tally(replies, "impatient");
  EXPECT_TRUE(t.bad.empty()) << t.bad.front();
  EXPECT_GE(t.limited, 1) << "nothing was refused";
  EXPECT_EQ(check_incr_sequence(replies), t.ok);
  // Admitted: the first, plus any whose slot (every 500 ms) was within 300 ms when it was read.
  EXPECT_LE(t.ok, 1 + static_cast<int>((elapsed + 0.3) * 2) + 1) << "elapsed " << elapsed << " s";
  EXPECT_LE(elapsed, 0.3 * t.ok + 2.0) << "held longer than max_wait_ms";
  for (const auto& l : t.refusals) {
    EXPECT_FALSE(l.too_many_delayed);
    EXPECT_GE(l.retry_ms, 1);
    EXPECT_LE(l.retry_ms, 501);
  }
  EXPECT_EQ(redis().call({"GET", "rl:w"}), cat("\"", t.ok, "\""));
  const RlStats s = stats();
  EXPECT_EQ(s.rule_count("impatient", "rejected"), t.limited) << s.raw;
}

// ratelimit.max_delayed: while one request is held, another that would have to wait is refused
// with "too many requests delayed".
TEST_F(RateLimitTest, MaxDelayedRefusesWhenTooManyAreHeld) {
  start(ratelimit_config(
      {Rule("slow", 1, 1).scope("global").action("delay").max_wait_ms(5000)},
      "max_delayed = 1\n"));
  RawConn a = named("a");
  RawConn b = named("b");
  EXPECT_EQ(stats().get("max_delayed"), 1);

  const auto t0 = Clock::now();
  ASSERT_TRUE(a.send_all(resp_command({"INCR", "rl:md"}) + resp_command({"INCR", "rl:md"}), deadline_in(kWait)));
  EXPECT_EQ(next_reply(a), ":1\r\n");
  // The second is held for ~1 s: an event respite reports in delayed_now.
  ASSERT_TRUE(poll_until([&] { return stats().get("delayed_now") == 1; }, deadline_in(kWait), 1ms))
      << stats().raw;
  const std::string rb = one(b, {"INCR", "rl:md"});
  const double held_seen = seconds_since(t0);
  auto l = parse_limited(rb);
  ASSERT_TRUE(l) << escape_bytes(rb) << " (" << held_seen << " s after the first request)";
  EXPECT_EQ(l->rule, "slow");
  EXPECT_TRUE(l->too_many_delayed) << escape_bytes(rb);
  EXPECT_GE(l->retry_ms, 1);

  EXPECT_EQ(next_reply(a), ":2\r\n");
  const double elapsed = seconds_since(t0);
  EXPECT_GE(elapsed, 1.0 - 0.01) << "the held request was released before its slot";
  EXPECT_LE(elapsed, 3.0);
  const RlStats s = stats();
  EXPECT_EQ(s.rule_count("slow", "allowed"), 1) << s.raw;
  EXPECT_EQ(s.rule_count("slow", "delayed"), 1) << s.raw;
  EXPECT_EQ(s.rule_count("slow", "rejected"), 1) << s.raw;
  EXPECT_EQ(s.get("delayed_now"), 0) << s.raw;
  EXPECT_EQ(redis().call({"GET", "rl:md"}), "\"2\"");
}

// ---------------------------------------------------------------------------------------------
// 5. Exempt identities.

TEST_F(RateLimitTest, ExemptIdentityIsNeverLimited) {
  start(ratelimit_config({Rule("everyone", 5, 1).clients(R"(["*"])")},
                         "exempt = [\"name:ops\", \"user:admin\"]\n"));
  EXPECT_EQ(stats().get("exempt"), 2);
  RawConn ops = named("ops");
  RawConn other = named("other");
  ASSERT_EQ(reset(), "+OK");

  const auto r_ops = pipelined(ops, repeat({"GET", "k"}, 200));
  const Tally t_ops = tally(r_ops, "everyone");
  EXPECT_EQ(t_ops.ok, 200) << (t_ops.bad.empty() ? "" : t_ops.bad.front());
  EXPECT_EQ(t_ops.limited, 0);

  const auto t0 = Clock::now();
  const auto r_other = pipelined(other, repeat({"GET", "k"}, 20));
  const double elapsed = seconds_since(t0);
  const Tally t_other = tally(r_other, "everyone");
  EXPECT_TRUE(t_other.bad.empty()) << t_other.bad.front();
  EXPECT_GE(t_other.ok, 1);
  EXPECT_LE(t_other.ok, 1 + static_cast<int>(elapsed * 5) + 1);
  EXPECT_EQ(t_other.ok + t_other.limited, 20);
  EXPECT_GT(t_other.limited, 0);
}

// ---------------------------------------------------------------------------------------------
// 6. Reload (SIGHUP).

TEST_F(RateLimitTest, ReloadChangesALimitOnALiveConnection) {
  start(ratelimit_config({Rule("live", 5, 1)}));
  EXPECT_EQ(stats().get("generation"), 1);
  RawConn c = named("live");
  const Tally before = tally(pipelined(c, repeat({"GET", "k"}, 10)), "live");
  EXPECT_GE(before.limited, 1);
  EXPECT_TRUE(before.bad.empty()) << before.bad.front();

  rewrite_config(ratelimit_config({Rule("live", 100000, 100000)}));
  ASSERT_TRUE(reload_and_wait(2)) << stats().raw << "\n" << stack().respite()->log();
  EXPECT_TRUE(stack().respite()->wait_for_log("configuration reloaded", deadline_in(kWait)));
  const RlStats s = stats();
  EXPECT_EQ(s.rule_field("live", "rate"), "100000") << s.raw;
  EXPECT_EQ(s.rule_field("live", "burst"), "100000") << s.raw;

  // The same connection, never reconnected.
  const auto after = pipelined(c, repeat({"GET", "k"}, 200));
  const Tally t = tally(after, "live");
  EXPECT_EQ(t.ok, 200) << (t.bad.empty() ? "" : t.bad.front()) << " limited " << t.limited;
  EXPECT_FALSE(c.closed());
}

TEST_F(RateLimitTest, InvalidReloadKeepsTheOldLimits) {
  start(ratelimit_config({Rule("live", 5, 1)}));
  RawConn c = named("live");
  ASSERT_FALSE(is_limited(one(c, {"GET", "k"})));

  // rate must be > 0.
  rewrite_config(ratelimit_config({Rule("live", 0, 100000)}));
  stack().respite()->send_signal(SIGHUP);
  ASSERT_TRUE(stack().respite()->wait_for_log("configuration reload failed", deadline_in(kWait)))
      << stack().respite()->log();
  const RlStats s = stats();
  EXPECT_EQ(s.get("generation"), 1) << s.raw;
  EXPECT_EQ(s.rule_field("live", "rate"), "5") << s.raw;
  EXPECT_EQ(s.rule_field("live", "burst"), "1") << s.raw;
  // The old limit still applies, on the same connection.
  const Tally t = tally(pipelined(c, repeat({"GET", "k"}, 10)), "live");
  EXPECT_TRUE(t.bad.empty()) << t.bad.front();
  EXPECT_GE(t.limited, 1);
  for (const auto& l : t.refusals) EXPECT_EQ(l.rate, "5");
  EXPECT_FALSE(c.closed());

  // A valid file afterwards is applied (the failure left the reload path working).
  rewrite_config(ratelimit_config({Rule("live", 100000, 100000)}));
  ASSERT_TRUE(reload_and_wait(2)) << stats().raw;
  const Tally t2 = tally(pipelined(c, repeat({"GET", "k"}, 100)), "live");
  EXPECT_EQ(t2.ok, 100);
}

// A rule that keeps its name and scope keeps its bucket (a new burst does not refill it); a
// renamed rule starts with a full one.
TEST_F(RateLimitTest, ReloadKeepsTheBucketsOfKeptRules) {
  start(ratelimit_config({Rule("kept", 0.5, 5).clients(R"(["name:keep"])"),
                          Rule("old-name", 0.5, 5).clients(R"(["name:ren"])")}));
  RawConn keep = named("keep");
  RawConn ren = named("ren");
  const auto t0 = Clock::now();
  EXPECT_EQ(tally(pipelined(keep, repeat({"GET", "k"}, 5)), "kept").ok, 5);
  EXPECT_EQ(tally(pipelined(ren, repeat({"GET", "k"}, 5)), "old-name").ok, 5);

  rewrite_config(ratelimit_config({Rule("kept", 0.5, 10).clients(R"(["name:keep"])"),
                                   Rule("new-name", 0.5, 10).clients(R"(["name:ren"])")}));
  ASSERT_TRUE(reload_and_wait(2)) << stats().raw;
  std::string raw;
  const auto buckets = rl_buckets(admin(), &raw);
  const BucketLine* b = find_bucket(buckets, "kept", "name:keep");
  ASSERT_NE(b, nullptr) << "the kept rule's bucket was refilled or dropped:\n" << raw;
  EXPECT_EQ(b->burst, 10);
  EXPECT_LT(b->tokens, 10);
  EXPECT_EQ(find_bucket(buckets, "new-name", "name:ren"), nullptr) << raw;

  // name:keep has at most 10 - 5 (+ the refill at 0.5/s); name:ren a full 10.
  const Tally tk = tally(pipelined(keep, repeat({"GET", "k"}, 10)), "kept");
  const double elapsed = seconds_since(t0);
  EXPECT_TRUE(tk.bad.empty()) << tk.bad.front();
  EXPECT_LE(tk.ok, 5 + static_cast<int>(elapsed * 0.5) + 1) << "elapsed " << elapsed << " s";
  EXPECT_GE(tk.limited, 1);
  const Tally tr = tally(pipelined(ren, repeat({"GET", "k"}, 10)), "new-name");
  EXPECT_EQ(tr.ok, 10) << (tr.bad.empty() ? "" : tr.bad.front());
}

// ---------------------------------------------------------------------------------------------
// 7. A rule for one command class leaves the others alone.

TEST_F(RateLimitTest, PerClassLimitOnlyTouchesItsClass) {
  start(ratelimit_config({Rule("writes", 5, 2).commands(R"(["@write"])")}));
  RawConn c = named("mixed");
  ASSERT_EQ(redis().call({"SET", "k", "v"}), "+OK");

  const Tally reads = tally(pipelined(c, repeat({"GET", "k"}, 100)), "writes");
  EXPECT_EQ(reads.ok, 100) << (reads.bad.empty() ? "" : reads.bad.front());

  const auto t0 = Clock::now();
  const auto w = pipelined(c, repeat({"SET", "rl:w", "x"}, 10));
  const double elapsed = seconds_since(t0);
  const Tally writes = tally(w, "writes");
  EXPECT_TRUE(writes.bad.empty()) << writes.bad.front();
  EXPECT_EQ(w[0], kOk);
  EXPECT_EQ(w[1], kOk);
  EXPECT_LE(writes.ok, 2 + static_cast<int>(elapsed * 5) + 1);
  EXPECT_GE(writes.limited, 1);
  for (const auto& l : writes.refusals) EXPECT_LE(l.retry_ms, 201);

  // Interleaved: the reads pass while the writes are refused.
  const auto mixed = pipelined(c, {{"GET", "k"}, {"SET", "rl:w", "y"}, {"GET", "k"}, {"SET", "rl:w", "z"}, {"GET", "k"}});
  ASSERT_EQ(mixed.size(), 5u);
  for (int i : {0, 2, 4}) EXPECT_EQ(mixed[i], "$1\r\nv\r\n") << "read #" << i;
}

// ---------------------------------------------------------------------------------------------
// 8. A transaction is charged at EXEC, one request per queued command.

TEST_F(RateLimitTest, TransactionIsChargedAtExec) {
  // 0.1/s: no refill worth counting during the test.
  start(ratelimit_config({Rule("tx", 0.1, 3).commands(R"(["@write"])")}));
  RawConn c = named("tx");
  const long long sets0 = command_calls(redis(), "set");

  const auto first = pipelined(c, {{"MULTI"}, {"SET", "tx:a", "1"}, {"SET", "tx:b", "1"}, {"EXEC"}});
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(first[0], kOk);
  EXPECT_EQ(first[1], "+QUEUED\r\n");
  EXPECT_EQ(first[2], "+QUEUED\r\n");
  EXPECT_EQ(first[3], "*2\r\n+OK\r\n+OK\r\n");

  // One token left: a transaction of two writes is refused as a whole.
  const auto second = pipelined(c, {{"MULTI"}, {"SET", "tx:c", "1"}, {"SET", "tx:d", "1"}, {"EXEC"}});
  ASSERT_EQ(second.size(), 4u);
  EXPECT_EQ(second[0], kOk);
  EXPECT_EQ(second[1], "+QUEUED\r\n") << "queued commands are not checked";
  EXPECT_EQ(second[2], "+QUEUED\r\n");
  auto l = parse_limited(second[3]);
  ASSERT_TRUE(l) << "EXEC: " << escape_bytes(second[3]);
  EXPECT_EQ(l->rule, "tx");
  EXPECT_EQ(redis().call({"EXISTS", "tx:c", "tx:d"}), ":0") << "a refused transaction ran";
  EXPECT_EQ(redis().call({"EXISTS", "tx:a", "tx:b"}), ":2");

  // The connection is out of MULTI and usable.
  EXPECT_EQ(one(c, {"GET", "tx:a"}), "$1\r\n1\r\n");
  EXPECT_EQ(one(c, {"GET", "tx:c"}), kNil);
  // The refused transaction took no tokens: the one left admits a single write, then no more.
  EXPECT_EQ(one(c, {"SET", "tx:e", "1"}), kOk);
  EXPECT_TRUE(is_limited(one(c, {"SET", "tx:f", "1"})));
  EXPECT_EQ(command_calls(redis(), "set") - sets0, 3) << "SETs run on Redis: tx:a, tx:b, tx:e";
  // A transaction of reads is not charged by a @write rule.
  EXPECT_EQ(pipelined(c, {{"MULTI"}, {"GET", "tx:a"}, {"EXEC"}}).back(), "*1\r\n$1\r\n1\r\n");
}

// ---------------------------------------------------------------------------------------------
// 9. Pinned connections (subscribed, WATCH) are limited like any other.

TEST_F(RateLimitTest, PubSubAndPinnedClientsAreLimited) {
  start(ratelimit_config({Rule("small", 2, 2).clients(R"(["name:sub", "name:pin"])")}));
  RawConn sub = named("sub");
  EXPECT_EQ(one(sub, {"SUBSCRIBE", "rl:ch"}), "*3\r\n" + resp_bulk("subscribe") + resp_bulk("rl:ch") + ":1\r\n");
  RawConn pin = named("pin");
  EXPECT_EQ(one(pin, {"WATCH", "rl:watched"}), kOk);
  ASSERT_EQ(reset(), "+OK");

  const auto t0 = Clock::now();
  const auto pings = pipelined(sub, repeat({"PING"}, 10));
  const auto gets = pipelined(pin, repeat({"GET", "rl:watched"}, 10));
  const double elapsed = seconds_since(t0);
  const Tally ts = tally(pings, "small");
  const Tally tp = tally(gets, "small");
  for (const Tally* t : {&ts, &tp}) {
    EXPECT_TRUE(t->bad.empty()) << t->bad.front();
    EXPECT_GE(t->ok, 2);
    EXPECT_LE(t->ok, 2 + static_cast<int>(elapsed * 2) + 1) << "elapsed " << elapsed << " s";
    EXPECT_GE(t->limited, 1);
  }
  EXPECT_EQ(pings[0], resp_bulk_array({"pong", ""}));

  // Still subscribed: a message published on Redis arrives.
  EXPECT_EQ(redis().call({"PUBLISH", "rl:ch", "hello"}), ":1");
  EXPECT_EQ(next_reply(sub), resp_bulk_array({"message", "rl:ch", "hello"}));
}

// ---------------------------------------------------------------------------------------------
// 10. The admin view.

TEST_F(RateLimitTest, StatsAndBucketsShowCounters) {
  start(ratelimit_config({Rule("per-client", 1, 10).clients(R"(["name:stat-*"])")}));
  RlStats s = stats();
  EXPECT_EQ(s.get("enabled"), 1) << s.raw;
  EXPECT_EQ(s.get("rules"), 1) << s.raw;
  EXPECT_EQ(s.get("generation"), 1) << s.raw;
  EXPECT_EQ(s.get("delayed_now"), 0) << s.raw;
  EXPECT_EQ(s.get("max_delayed"), 1024) << s.raw;
  EXPECT_EQ(s.get("exempt"), 0) << s.raw;
  EXPECT_TRUE(starts_with(s.raw, "# Ratelimit\r\n")) << escape_bytes(s.raw);
  const std::map<std::string, std::string> want = {{"scope", "client"}, {"commands", "@all"}, {"rate", "1"},
                                                   {"burst", "10"},     {"action", "reject"}, {"max_wait_ms", "0"},
                                                   {"allowed", "0"},    {"delayed", "0"},     {"rejected", "0"},
                                                   {"buckets", "0"}};
  for (const auto& [k, v] : want) EXPECT_EQ(s.rule_field("per-client", k), v) << k << "\n" << s.raw;
  std::string raw;
  EXPECT_TRUE(rl_buckets(admin(), &raw).empty()) << raw;

  RawConn a = named("stat-a");
  RawConn b = named("stat-b");
  const auto t0 = Clock::now();
  const Tally ta = tally(pipelined(a, repeat({"GET", "k"}, 30)), "per-client");
  const Tally tb = tally(pipelined(b, repeat({"GET", "k"}, 3)), "per-client");
  EXPECT_TRUE(ta.bad.empty()) << ta.bad.front();
  EXPECT_EQ(tb.ok, 3);

  s = stats();
  const double elapsed = seconds_since(t0);
  EXPECT_EQ(s.rule_count("per-client", "allowed"), ta.ok + tb.ok) << s.raw;
  EXPECT_EQ(s.rule_count("per-client", "rejected"), ta.limited) << s.raw;
  EXPECT_EQ(s.rule_count("per-client", "delayed"), 0) << s.raw;
  EXPECT_EQ(s.rule_count("per-client", "buckets"), 2) << s.raw;

  // Fewest tokens first; stat-b (7 of 10 plus the refill) stays busy for ~3 s at 1/s.
  const auto buckets = rl_buckets(admin(), &raw);
  ASSERT_EQ(buckets.size(), 2u) << raw;
  EXPECT_EQ(buckets[0].identity, "name:stat-a") << raw;
  EXPECT_EQ(buckets[1].identity, "name:stat-b") << raw;
  EXPECT_EQ(buckets[0].rule, "per-client");
  EXPECT_EQ(buckets[0].burst, 10);
  EXPECT_LE(buckets[0].tokens, static_cast<long long>(elapsed * 1) + 1) << raw;
  EXPECT_GE(buckets[1].tokens, 7) << raw;
  EXPECT_LE(buckets[1].tokens, 7 + static_cast<long long>(elapsed * 1) + 1) << raw;
  const auto first_only = rl_buckets(admin(), &raw, 1);
  ASSERT_EQ(first_only.size(), 1u) << raw;
  EXPECT_EQ(first_only[0].identity, "name:stat-a");

  // RESET refills every bucket.
  ASSERT_EQ(reset(), "+OK");
  EXPECT_TRUE(rl_buckets(admin(), &raw).empty()) << raw;
  EXPECT_EQ(tally(pipelined(a, repeat({"GET", "k"}, 10)), "per-client").ok, 10);
}

// ---------------------------------------------------------------------------------------------
// 11. Accuracy: 1,000 requests/s under a flood from 20 connections sharing one identity.

TEST_F(RateLimitTest, AccuracyAtAThousandPerSecond) {
  // Burst 100 (100 ms of tokens): a bucket that is full stops filling, so a respite the
  // kernel leaves unscheduled for longer than the burst's worth loses the excess tokens. With
  // burst 10 a loaded 2-core machine (other builds running) lost up to 18% that way; the
  // rate itself is what is measured here.
  start(ratelimit_config({Rule("hammer", 1000, 100).clients(R"(["name:hammer"])")}));
  constexpr int kConns = 20, kInFlight = 4;
  constexpr auto kRun = 5000ms;
  std::vector<RawConn> conns;
  for (int i = 0; i < kConns; ++i) conns.push_back(named("hammer"));
  ASSERT_EQ(reset(), "+OK");

  const std::string ping = resp_command({"PING"});
  struct State {
    std::string in;
    int in_flight = 0;
  };
  std::vector<State> st(kConns);
  long long admitted = 0, refused = 0, other = 0;
  std::string first_other;
  auto send_ping = [&](int i) {
    // 14 bytes on a socket whose send buffer never fills (at most kInFlight outstanding).
    const ssize_t n = ::send(conns[i].fd(), ping.data(), ping.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n != static_cast<ssize_t>(ping.size())) return false;
    ++st[i].in_flight;
    return true;
  };

  const auto t0 = Clock::now();
  const auto stop_sending = t0 + kRun;
  const auto give_up = stop_sending + kWait;
  auto last_reply = t0;
  for (int i = 0; i < kConns; ++i)
    for (int k = 0; k < kInFlight; ++k) ASSERT_TRUE(send_ping(i));
  std::vector<pollfd> pfds(kConns);
  for (int i = 0; i < kConns; ++i) pfds[i] = {conns[i].fd(), POLLIN, 0};
  int outstanding = kConns * kInFlight;
  while (outstanding > 0 && Clock::now() < give_up) {
    if (::poll(pfds.data(), pfds.size(), 100) < 0) break;
    for (int i = 0; i < kConns; ++i) {
      if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[16384];
      const ssize_t n = ::recv(conns[i].fd(), buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) {
        ADD_FAILURE() << "connection " << i << " closed";
        outstanding = 0;
        break;
      }
      st[i].in.append(buf, static_cast<size_t>(n));
      size_t pos = 0, eol;
      while ((eol = st[i].in.find("\r\n", pos)) != std::string::npos) {
        const std::string_view line(st[i].in.data() + pos, eol - pos);
        pos = eol + 2;
        if (line == "+PONG")
          ++admitted;
        else if (starts_with(line, "-RATELIMITED limit 'hammer'"))
          ++refused;
        else if (other++ == 0)
          first_other = std::string(line);
        --st[i].in_flight;
        --outstanding;
        last_reply = Clock::now();
        if (last_reply < stop_sending) {
          if (!send_ping(i)) {
            ADD_FAILURE() << "send failed on connection " << i;
          } else {
            ++outstanding;
          }
        }
      }
      st[i].in.erase(0, pos);
    }
  }
  ASSERT_EQ(outstanding, 0) << "replies missing " << std::chrono::duration<double>(kWait).count()
                            << " s after the flood stopped";
  EXPECT_EQ(other, 0) << "first unexpected reply: " << first_other;
  const double elapsed = std::chrono::duration<double>(last_reply - t0).count();
  const double expected = 1000 * elapsed + 100;
  const double tolerance = 0.02 * (1000 * 5.0 + 100);
  std::cout << "[ info ] accuracy: admitted " << admitted << " in " << elapsed << " s, expected " << expected
            << " (1000/s * elapsed + burst 100; refused " << refused << ", "
            << static_cast<long long>((admitted + refused) / elapsed) << " requests/s offered)\n";
  RecordProperty("admitted", std::to_string(admitted));
  RecordProperty("elapsed_s", std::to_string(elapsed));
  RecordProperty("expected", std::to_string(expected));
  EXPECT_GT(refused, admitted) << "the flood did not exceed the limit: the accuracy is not measured";
  EXPECT_LE(std::abs(static_cast<double>(admitted) - expected), tolerance)
      << "admitted " << admitted << " in " << elapsed << " s, expected " << expected << " +- " << tolerance;
  const RlStats s = stats();
  EXPECT_EQ(s.rule_count("hammer", "allowed"), admitted) << s.raw;
  EXPECT_EQ(s.rule_count("hammer", "rejected"), refused) << s.raw;
}

// ---------------------------------------------------------------------------------------------
// 12. QUIT and RESPITE commands are never checked.

TEST_F(RateLimitTest, QuitAndRespiteCommandsAreNeverLimited) {
  start(ratelimit_config({Rule("tight", 0.1, 1).clients(R"(["*"])")}));
  RawConn c = stack().raw();
  EXPECT_EQ(one(c, {"GET", "k"}), kNil);
  EXPECT_TRUE(is_limited(one(c, {"GET", "k"})));
  for (int i = 0; i < 5; ++i) {
    const std::string r = one(c, {"RESPITE", "RATELIMIT", "STATS"});
    EXPECT_TRUE(starts_with(r, "$")) << escape_bytes(r);
  }
  EXPECT_TRUE(starts_with(one(c, {"RESPITE", "RATELIMIT", "BUCKETS"}), "$"));
  EXPECT_TRUE(is_limited(one(c, {"PING"})));
  EXPECT_EQ(one(c, {"QUIT"}), kOk);
  bool closed = false;
  c.read_until_closed(deadline_in(kWait), &closed);
  EXPECT_TRUE(closed) << "QUIT did not close the connection";
}

// ratelimit.enabled=false (a scalar, from the command line): no rule applies.
TEST_F(RateLimitTest, DisabledAppliesNoRule) {
  start(ratelimit_config({Rule("tight", 0.1, 1).clients(R"(["*"])")}),
        {"ratelimit.enabled=false"});
  EXPECT_EQ(stats().get("enabled"), 0) << stats().raw;
  RawConn c = named("free");
  const Tally t = tally(pipelined(c, repeat({"INCR", "rl:off"}, 50)), "tight");
  EXPECT_EQ(t.ok, 50) << (t.bad.empty() ? "" : t.bad.front());
  EXPECT_EQ(redis().call({"GET", "rl:off"}), "\"50\"");
}

// With client authentication the identity is the AUTH user (a name does not change it);
// before AUTH it is the connection, so AUTH attempts are limited too. Connections of one user
// share its bucket. This stack needs AUTH for everything, so it is built here, not by start().
TEST_F(RateLimitTest, AuthenticatedClientsAreLimitedByTheirUser) {
  const std::string config = kNoCache +
                             "[client]\nusers = [{ name = \"app\", password = \"app-pw\" },"
                             " { name = \"ops\", password = \"ops-pw\" }, { name = \"admin\", password = \"admin-pw\" }]\n\n"
                             "[ratelimit]\n\n" +
                             Rule("app-user", 0.1, 2).clients(R"(["user:app"])").toml() +
                             Rule("before-auth", 0.1, 4).clients(R"(["addr:*"])").toml();
  StackOptions o;
  o.respite_args = {"--config", write_config(dir_, config)};
  o.wait_upstream_ready = false;
  stack_ = std::make_unique<Stack>(o);
  RawConn anon = stack().raw();
  // Not authenticated: the connection's bucket (4) pays for NOAUTH replies and for AUTH.
  EXPECT_TRUE(poll_until([&] { return starts_with(one(anon, {"PING"}), "-NOAUTH"); }, deadline_in(kWait), 10ms));
  EXPECT_TRUE(starts_with(one(anon, {"PING"}), "-NOAUTH"));
  EXPECT_EQ(one(anon, {"AUTH", "app", "app-pw"}), kOk);  // the 3rd or 4th token at most
  // Now user:app: 2 at once, then nothing for 10 s; a client name does not change that.
  RawConn app2 = stack().raw();
  ASSERT_EQ(one(app2, {"AUTH", "app", "app-pw"}), kOk);
  EXPECT_EQ(one(anon, {"CLIENT", "SETNAME", "not-app"}), kOk);
  const Tally t = tally(pipelined(anon, repeat({"GET", "k"}, 5)), "app-user");
  EXPECT_TRUE(t.bad.empty()) << t.bad.front();
  EXPECT_EQ(t.ok, 1) << "SETNAME took the first of the user's 2 tokens";
  EXPECT_EQ(t.limited, 4);
  EXPECT_TRUE(is_limited(one(app2, {"GET", "k"})));  // the same user: the same bucket
  // Another user matches no rule.
  RawConn ops = stack().raw();
  ASSERT_EQ(one(ops, {"AUTH", "ops", "ops-pw"}), kOk);
  const Tally t_ops = tally(pipelined(ops, repeat({"GET", "k"}, 50)), "app-user");
  EXPECT_EQ(t_ops.ok, 50) << (t_ops.bad.empty() ? "" : t_ops.bad.front());
  // BUCKETS names the identities; only admin.users (default ["admin"]) may ask.
  EXPECT_TRUE(starts_with(one(ops, {"RESPITE", "RATELIMIT", "BUCKETS"}), "-NOPERM")) << "ops is not an admin";
  RawConn admin_conn = stack().raw();
  ASSERT_EQ(one(admin_conn, {"AUTH", "admin", "admin-pw"}), kOk);
  const std::string buckets = one(admin_conn, {"RESPITE", "RATELIMIT", "BUCKETS"});
  EXPECT_NE(buckets.find("rule=app-user identity=user:app tokens=0 burst=2"), std::string::npos) << buckets;
  EXPECT_NE(buckets.find("rule=before-auth identity=addr:127.0.0.1:"), std::string::npos) << buckets;
}

}  // namespace
}  // namespace respite::test
