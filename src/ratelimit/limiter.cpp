#include "ratelimit/limiter.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <unordered_map>

#include "core/glob.h"
#include "ratelimit/command_set.h"
#include "ratelimit/gcra.h"

namespace respite::ratelimit {

// A bucket: the GCRA state of one identity (or of a global rule) and how many clients use it.
struct Bucket {
  explicit Bucket(const config::RateLimitRule& r) : gcra(r.rate, r.burst) {}
  Gcra gcra;
  uint32_t refs = 0;  // ClientLimits bound to it (global buckets: unused)
};

struct Rule {
  config::RateLimitRule cfg;   // as configured (burst filled in by validation)
  CommandSet commands;         // what it counts
  size_t group = 0;            // rules with the same scope and commands: first match per identity
  bool global = false;         // scope "global": one bucket
  bool delay = false;          // action "delay"
  uint64_t max_wait_ns = 0;    // delay: longest hold
  std::string label;           // "limit 'x' exceeded (100 requests/s, burst 10)"
  std::unique_ptr<Bucket> shared;                    // global scope
  std::unique_ptr<Bucket> overflow;                  // client scope: identities beyond kMaxBuckets
  std::unordered_map<std::string, Bucket> buckets;   // client scope, by identity (node-stable)
  uint64_t allowed = 0, delayed = 0, rejected = 0;   // counters
};

namespace {

constexpr size_t kMaxRules = 64;  // also enforced by config validation
// Per-identity buckets one rule keeps at most. Beyond it (clients cycling through names),
// new identities share one overflow bucket until sweep() has forgotten idle ones.
constexpr size_t kMaxBuckets = 100'000;

std::string format_rate(double rate) {
  char buf[32];
  if (rate == std::floor(rate) && rate < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", rate);
  } else {
    std::snprintf(buf, sizeof buf, "%.4g", rate);
  }
  return buf;
}

bool matches_any(const std::vector<std::string>& globs, std::string_view identity) {
  return std::any_of(globs.begin(), globs.end(), [&](const std::string& g) { return core::glob_match(g, identity); });
}

// The group key of a rule: its scope and its commands, in a canonical form.
std::string group_key(const config::RateLimitRule& r) {
  std::vector<std::string> words;
  for (const auto& w : r.commands) {
    std::string l(w);
    std::transform(l.begin(), l.end(), l.begin(), [](unsigned char ch) { return std::tolower(ch); });
    words.push_back(std::move(l));
  }
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  std::string key = r.scope;
  for (const auto& w : words) key += "\n" + w;
  return key;
}

// Compiles every rule of `cfg` (nothing shared with a live Limiter yet).
bool compile(const config::RateLimitConfig& cfg, const cmd::CommandTable& table,
             std::vector<std::shared_ptr<Rule>>& out, std::string& error) {
  if (cfg.rules.size() > kMaxRules) {
    error = "ratelimit.rules: more than " + std::to_string(kMaxRules) + " rules";
    return false;
  }
  const auto& builtin = CommandSet::builtin_classes();
  for (const auto& c : cfg.classes) {
    if (std::find(builtin.begin(), builtin.end(), c.name) != builtin.end()) {
      error = "ratelimit.classes: '" + c.name + "' is a built-in class name";
      return false;
    }
  }
  std::map<std::string, size_t> groups;
  for (size_t i = 0; i < cfg.rules.size(); ++i) {
    const config::RateLimitRule& rc = cfg.rules[i];
    auto r = std::make_shared<Rule>();
    r->cfg = rc;
    if (!r->commands.build(rc.commands, cfg.classes, table, error)) {
      error = "ratelimit.rules entry " + std::to_string(i + 1) + " (rule '" + rc.name + "'): " + error;
      return false;
    }
    r->group = groups.emplace(group_key(rc), groups.size()).first->second;
    r->global = rc.scope == "global";
    r->delay = rc.action == "delay";
    r->max_wait_ns = r->delay ? static_cast<uint64_t>(rc.max_wait_ms) * 1'000'000 : 0;
    r->label = "limit '" + rc.name + "' exceeded (" + format_rate(rc.rate) + " requests/s, burst " +
               std::to_string(rc.burst) + ")";
    if (r->global) r->shared = std::make_unique<Bucket>(rc);
    out.push_back(std::move(r));
  }
  return true;
}

}  // namespace

// ---- ClientLimits ------------------------------------------------------------------------

ClientLimits::~ClientLimits() { unbind(); }

void ClientLimits::unbind() {
  for (auto& b : bound_) {
    if (!b.rule->global) --b.bucket->refs;
  }
  bound_.clear();
}

// ---- Limiter -----------------------------------------------------------------------------

Limiter::Limiter(const cmd::CommandTable& table)
    : table_(table), unknown_slot_(static_cast<uint32_t>(table.size())) {}
Limiter::~Limiter() = default;

bool Limiter::check(const config::RateLimitConfig& cfg, const cmd::CommandTable& table, std::string& error) {
  std::vector<std::shared_ptr<Rule>> rules;
  return compile(cfg, table, rules, error);
}

bool Limiter::configure(const config::RateLimitConfig& cfg, uint64_t now_ns, std::string& error) {
  std::vector<std::shared_ptr<Rule>> fresh;
  if (!compile(cfg, table_, fresh, error)) return false;
  // A rule that keeps its name and scope keeps its object, and with it its buckets and
  // counters: the clients bound to it stay valid until they rebind.
  for (auto& r : fresh) {
    auto old = std::find_if(rules_.begin(), rules_.end(), [&](const std::shared_ptr<Rule>& o) {
      return o->cfg.name == r->cfg.name && o->global == r->global;
    });
    if (old == rules_.end()) continue;
    Rule& keep = **old;
    keep.cfg = r->cfg;
    keep.commands = std::move(r->commands);
    keep.group = r->group;
    keep.delay = r->delay;
    keep.max_wait_ns = r->max_wait_ns;
    keep.label = std::move(r->label);
    if (keep.shared) keep.shared->gcra.configure(keep.cfg.rate, keep.cfg.burst, now_ns);
    if (keep.overflow) keep.overflow->gcra.configure(keep.cfg.rate, keep.cfg.burst, now_ns);
    for (auto& [identity, bucket] : keep.buckets) bucket.gcra.configure(keep.cfg.rate, keep.cfg.burst, now_ns);
    r = *old;
  }
  rules_ = std::move(fresh);
  exempt_ = cfg.exempt;
  max_delayed_ = cfg.max_delayed;
  enabled_ = cfg.enabled;
  active_ = cfg.enabled && !rules_.empty();
  ++generation_;
  return true;
}

void Limiter::set_identity(ClientLimits& c, std::string_view identity) {
  c.identity_.assign(identity);
  bind(c);
}

void Limiter::bind(ClientLimits& c) {
  c.unbind();
  c.generation_ = generation_;
  c.exempt_ = matches_any(exempt_, c.identity_);
  if (c.exempt_) return;
  uint64_t taken = 0;  // groups that already have their rule (at most 64 groups)
  for (const auto& r : rules_) {
    if (taken & (uint64_t{1} << r->group)) continue;
    if (!matches_any(r->cfg.clients, c.identity_)) continue;
    taken |= uint64_t{1} << r->group;
    Bucket* b = r->shared.get();
    if (!r->global) {
      auto it = r->buckets.find(c.identity_);
      if (it != r->buckets.end()) {
        b = &it->second;
      } else if (r->buckets.size() < kMaxBuckets) {
        b = &r->buckets.try_emplace(c.identity_, r->cfg).first->second;
      } else {
        if (!r->overflow) r->overflow = std::make_unique<Bucket>(r->cfg);
        b = r->overflow.get();
      }
      ++b->refs;
    }
    c.bound_.push_back(ClientLimits::Bound{r, b, &b->gcra, r->commands.bytes(), &r->allowed});
  }
}

template <typename CostOf>
Verdict Limiter::decide(ClientLimits& c, uint64_t now_ns, size_t held, CostOf cost_of) {
  if (c.generation_ != generation_) bind(c);
  Verdict v;
  const size_t n = c.bound_.size();
  if (n == 0) return v;
  uint32_t costs[kMaxRules];
  uint64_t waits[kMaxRules];
  for (size_t i = 0; i < n; ++i) {
    costs[i] = cost_of(*c.bound_[i].rule);
    waits[i] = costs[i] ? c.bound_[i].bucket->gcra.wait_ns(now_ns, costs[i]) : 0;
    v.wait_ns = std::max(v.wait_ns, waits[i]);
  }
  if (v.wait_ns == 0) {  // the common case: every rule admits it now
    for (size_t i = 0; i < n; ++i) {
      if (costs[i] == 0) continue;
      c.bound_[i].bucket->gcra.take(now_ns, costs[i]);
      ++c.bound_[i].rule->allowed;
    }
    return v;
  }
  // Some rule is over its limit: refused if a reject rule is, or a delay rule would wait
  // too long (or nothing more may be held); otherwise held for the longest wait.
  for (size_t i = 0; i < n && v.kind != Verdict::Kind::Reject; ++i) {
    const Rule& r = *c.bound_[i].rule;
    if (waits[i] == 0) continue;
    if (!r.delay || waits[i] > r.max_wait_ns || held >= max_delayed_) {
      v.kind = Verdict::Kind::Reject;
      v.rule = &r;
      v.queue_full = r.delay && waits[i] <= r.max_wait_ns;
    }
  }
  if (v.kind == Verdict::Kind::Reject) {
    for (size_t i = 0; i < n; ++i) {
      if (waits[i] > 0) ++c.bound_[i].rule->rejected;
    }
    return v;
  }
  v.kind = Verdict::Kind::Delay;
  const uint64_t at = now_ns + v.wait_ns;
  for (size_t i = 0; i < n; ++i) {
    if (costs[i] == 0) continue;
    c.bound_[i].bucket->gcra.take(at, costs[i]);
    if (waits[i] > 0) {
      ++c.bound_[i].rule->delayed;
    } else {
      ++c.bound_[i].rule->allowed;
    }
  }
  return v;
}

Verdict Limiter::admit_slow(ClientLimits& c, const cmd::CommandInfo* info, uint64_t now_ns, size_t held) {
  return decide(c, now_ns, held, [info](const Rule& r) -> uint32_t { return r.commands.matches(info) ? 1 : 0; });
}

Verdict Limiter::admit_batch(ClientLimits& c, std::span<const cmd::CommandInfo* const> commands, uint64_t now_ns,
                             size_t held) {
  return decide(c, now_ns, held, [commands](const Rule& r) -> uint32_t {
    uint32_t n = 0;
    for (const cmd::CommandInfo* info : commands) n += r.commands.matches(info) ? 1 : 0;
    return n;
  });
}

std::string Limiter::refusal(const Verdict& v) {
  uint64_t ms = (v.wait_ns + 999'999) / 1'000'000;
  if (ms == 0) ms = 1;
  std::string out = "-RATELIMITED ";
  out += v.rule ? v.rule->label : std::string("limit exceeded");
  if (v.queue_full) out += ": too many requests delayed";
  out += "; retry in " + std::to_string(ms) + " ms\r\n";
  return out;
}

void Limiter::sweep(uint64_t now_ns) {
  for (auto& r : rules_) {
    std::erase_if(r->buckets, [now_ns](const auto& kv) { return kv.second.refs == 0 && kv.second.gcra.full(now_ns); });
  }
}

void Limiter::reset() {
  for (auto& r : rules_) {
    if (r->shared) r->shared->gcra = Gcra(r->cfg.rate, r->cfg.burst);
    if (r->overflow) r->overflow->gcra = Gcra(r->cfg.rate, r->cfg.burst);
    for (auto& [identity, bucket] : r->buckets) bucket.gcra = Gcra(r->cfg.rate, r->cfg.burst);
  }
}

std::vector<Limiter::RuleStats> Limiter::rule_stats() const {
  std::vector<RuleStats> out;
  for (const auto& r : rules_) {
    out.push_back(RuleStats{r->cfg.name, r->cfg.scope, r->cfg.action, r->allowed, r->delayed, r->rejected,
                            r->global ? size_t{1} : r->buckets.size()});
  }
  return out;
}

std::string Limiter::stats_text(size_t delayed_now) const {
  std::string out = "# Ratelimit\r\n";
  auto line = [&](std::string_view key, const std::string& value) {
    out.append(key).append(":").append(value).append("\r\n");
  };
  line("enabled", enabled_ ? "1" : "0");
  line("rules", std::to_string(rules_.size()));
  line("generation", std::to_string(generation_));
  line("delayed_now", std::to_string(delayed_now));
  line("max_delayed", std::to_string(max_delayed_));
  line("exempt", std::to_string(exempt_.size()));
  for (const auto& r : rules_) {
    std::string commands;
    for (const auto& w : r->cfg.commands) commands += (commands.empty() ? "" : " ") + w;
    line("rule_" + r->cfg.name,
         "scope=" + r->cfg.scope + ",commands=" + commands + ",rate=" + format_rate(r->cfg.rate) +
             ",burst=" + std::to_string(r->cfg.burst) + ",action=" + r->cfg.action +
             ",max_wait_ms=" + std::to_string(r->delay ? r->cfg.max_wait_ms : 0) +
             ",allowed=" + std::to_string(r->allowed) + ",delayed=" + std::to_string(r->delayed) +
             ",rejected=" + std::to_string(r->rejected) +
             ",buckets=" + std::to_string(r->global ? 1 : r->buckets.size()));
  }
  return out;
}

std::string Limiter::buckets_text(uint64_t now_ns, size_t count) const {
  struct Row {
    uint32_t tokens;
    const Rule* rule;
    std::string_view identity;
  };
  std::vector<Row> rows;
  for (const auto& r : rules_) {
    if (r->shared) {
      uint32_t t = r->shared->gcra.available(now_ns);
      if (t < r->cfg.burst) rows.push_back(Row{t, r.get(), "*"});
    }
    for (const auto& [identity, bucket] : r->buckets) {
      uint32_t t = bucket.gcra.available(now_ns);
      if (t < r->cfg.burst) rows.push_back(Row{t, r.get(), identity});
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.tokens < b.tokens; });
  if (rows.size() > count) rows.resize(count);
  std::string out;
  for (const Row& row : rows) {
    out += "rule=" + row.rule->cfg.name + " identity=" + std::string(row.identity) +
           " tokens=" + std::to_string(row.tokens) + " burst=" + std::to_string(row.rule->cfg.burst) + "\r\n";
  }
  return out;
}

}  // namespace respite::ratelimit
