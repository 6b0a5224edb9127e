// Limiter: the rate-limit rules of [ratelimit] (docs/rate-limits.md), their buckets and
// their counters. The proxy asks it about each request before sending it anywhere.
//
// A rule applies to client identities (globs on "user:...", "name:...", "addr:...") and to
// a set of commands (classes such as @write, or names). Its buckets are GCRA limiters: one
// per identity (scope "client") or one for the rule (scope "global"). Which rules apply to
// a client is decided when its identity is set, not per request: a request then costs a
// lookup in a byte table and one GCRA step per applying rule, with no allocation.
//
// Reload: configure() swaps the rules. A rule whose name and scope are unchanged keeps its
// buckets (with the new rate and burst, not refilled). Clients pick up the new rules at
// their next request (the generation number changed). A removed rule stays alive, through
// shared ownership, until the last client bound to it has moved on.
//
// Time is passed in (nanoseconds, monotonic), so tests use a fake clock. Single-threaded.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cmd/command_table.h"
#include "config/config.h"
#include "ratelimit/gcra.h"

namespace respite::ratelimit {

struct Rule;
struct Bucket;

// One client's rules, resolved from its identity. Owned by the client's session.
class ClientLimits {
 public:
  ClientLimits() = default;
  ~ClientLimits();
  ClientLimits(const ClientLimits&) = delete;
  ClientLimits& operator=(const ClientLimits&) = delete;

  const std::string& identity() const { return identity_; }
  bool exempt() const { return exempt_; }
  size_t rule_count() const { return bound_.size(); }

 private:
  friend class Limiter;
  // Everything the per-request check touches, reached without going through the rule.
  // Valid while generation_ matches the Limiter's (a reload rebinds before any use).
  struct Bound {
    std::shared_ptr<Rule> rule;  // keeps a rule removed by a reload alive while bound
    Bucket* bucket;              // owned by the rule
    Gcra* gcra;                  // the bucket's limiter
    const uint8_t* counts;       // the rule's CommandSet bytes: counts[index] != 0 if it counts
    uint64_t* allowed;           // the rule's counter
  };
  void unbind();

  std::vector<Bound> bound_;     // the applying rules, in file order
  std::string identity_;         // "user:alice", "name:web-1", "addr:10.0.0.5:41234"
  uint64_t generation_ = 0;      // the Limiter generation bound_ was resolved in (0: never)
  bool exempt_ = false;          // matches ratelimit.exempt
};

// The answer for one request.
struct Verdict {
  enum class Kind : uint8_t { Allow, Delay, Reject };
  Kind kind = Kind::Allow;
  uint64_t wait_ns = 0;        // Delay: how long to hold the request; Reject: until it would pass
  const Rule* rule = nullptr;  // Reject: the first rule that refused
  bool queue_full = false;     // Reject: a delay rule would have held it, but max_delayed was reached
};

class Limiter {
 public:
  explicit Limiter(const cmd::CommandTable& table);
  ~Limiter();
  Limiter(const Limiter&) = delete;
  Limiter& operator=(const Limiter&) = delete;

  // Checks `cfg` against the command table (command names, classes) and swaps it in; false
  // with `error`, and nothing changed, if it is invalid. The generation goes up by one.
  // Kept buckets owe what they owed at `now_ns`, at their new rate.
  bool configure(const config::RateLimitConfig& cfg, uint64_t now_ns, std::string& error);
  // The same checks without applying anything (for --check-config and reload).
  static bool check(const config::RateLimitConfig& cfg, const cmd::CommandTable& table, std::string& error);

  // Enabled with at least one rule: otherwise admit() need not be called.
  bool active() const { return active_; }
  uint64_t generation() const { return generation_; }
  size_t max_delayed() const { return max_delayed_; }

  // Sets the client's identity and resolves its rules.
  void set_identity(ClientLimits& c, std::string_view identity);

  // One request of command `info` (null: a command not in the table). `held`: requests
  // held by delay rules right now; at max_delayed, delay rules refuse instead.
  // Allow and Delay charge every applying bucket; Reject charges nothing.
  Verdict admit(ClientLimits& c, const cmd::CommandInfo* info, uint64_t now_ns, size_t held) {
    return admit_fast(c, info, now_ns) ? Verdict{} : admit_slow(c, info, now_ns, held);
  }
  // The common case, inline and a few instructions per rule: true when every rule that
  // counts the command admits it at once; it is then charged. False: nothing was charged,
  // and admit() gives the verdict.
  bool admit_fast(ClientLimits& c, const cmd::CommandInfo* info, uint64_t now_ns) {
    if (c.generation_ != generation_) return false;
    const uint32_t slot = command_slot(info);
    for (const auto& b : c.bound_) {
      if (b.counts[slot] && !b.gcra->conforms(now_ns)) return false;
    }
    for (const auto& b : c.bound_) {
      if (!b.counts[slot]) continue;
      b.gcra->take(now_ns);
      ++*b.allowed;
    }
    return true;
  }
  // A transaction at EXEC: one request per queued command, each against the rules that
  // match it.
  Verdict admit_batch(ClientLimits& c, std::span<const cmd::CommandInfo* const> commands, uint64_t now_ns,
                      size_t held);

  // The error reply for a refusal ("-RATELIMITED limit 'x' exceeded (...); retry in N ms\r\n").
  static std::string refusal(const Verdict& v);

  // Forgets per-identity buckets that are full and bound to no client (a full bucket is as
  // good as a new one). Call now and then.
  void sweep(uint64_t now_ns);
  // Refills every bucket (RESPITE RATELIMIT RESET).
  void reset();

  // Per-rule counters, in rule order (metrics).
  struct RuleStats {
    std::string name, scope, action;
    uint64_t allowed, delayed, rejected;
    size_t buckets;
  };
  std::vector<RuleStats> rule_stats() const;

  // RESPITE RATELIMIT STATS: INFO-style lines; `delayed_now` is the number held right now.
  std::string stats_text(size_t delayed_now) const;
  // RESPITE RATELIMIT BUCKETS: buckets below their burst, fewest tokens first, at most `count`.
  std::string buckets_text(uint64_t now_ns, size_t count) const;

 private:
  // admit() when a rule is over its limit or the client must rebind first.
  Verdict admit_slow(ClientLimits& c, const cmd::CommandInfo* info, uint64_t now_ns, size_t held);
  template <typename CostOf>
  Verdict decide(ClientLimits& c, uint64_t now_ns, size_t held, CostOf cost_of);
  // The index of `info` in a CommandSet's bytes (the table's size for unknown commands).
  uint32_t command_slot(const cmd::CommandInfo* info) const { return info ? info->index : unknown_slot_; }
  void bind(ClientLimits& c);

  const cmd::CommandTable& table_;
  uint32_t unknown_slot_;                     // table_.size(): CommandSet's byte for unknown commands
  std::vector<std::shared_ptr<Rule>> rules_;  // in file order
  std::vector<std::string> exempt_;           // identity globs
  size_t max_delayed_ = 1024;
  uint64_t generation_ = 0;
  bool enabled_ = true;   // ratelimit.enabled
  bool active_ = false;   // enabled with at least one rule
};

}  // namespace respite::ratelimit
