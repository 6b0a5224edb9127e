#include "admin/endpoints.h"

#include <cmath>
#include <cstdio>
#include <set>

#include "cache/near_cache.h"
#include "fallback/fallback.h"
#include "proxy/server.h"
#include "ratelimit/limiter.h"
#include "upstream/upstream_pool.h"

namespace respite::admin {
namespace {

std::string format_value(double v) {
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.6g", v);
  }
  return buf;
}

// A label value with \, " and newlines escaped (Prometheus text format).
std::string label_value(std::string_view s) {
  std::string out;
  for (char ch : s) {
    if (ch == '\\' || ch == '"') out += '\\';
    if (ch == '\n') {
      out += "\\n";
      continue;
    }
    out += ch;
  }
  return out;
}

// name_bucket{le="..."} (cumulative, in seconds, then +Inf), name_sum (seconds), name_count.
void render_histogram(std::string& out, const Figure& f) {
  const obs::Histogram& h = *f.histogram;
  std::string prefix = f.labels.empty() ? "{" : "{" + f.labels + ",";
  std::string labels = f.labels.empty() ? "" : "{" + f.labels + "}";
  uint64_t cumulative = 0;
  char le[32];
  for (size_t i = 0; i < obs::Histogram::kBuckets; ++i) {
    cumulative += h.bucket(i);
    if (i < obs::Histogram::kBoundsNs.size()) {
      std::snprintf(le, sizeof le, "%g", static_cast<double>(obs::Histogram::kBoundsNs[i]) / 1e9);
    } else {
      std::snprintf(le, sizeof le, "+Inf");
    }
    out += f.name + "_bucket" + prefix + "le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  char sum[48];  // seconds to the nanosecond: %g's six digits would lose a long-running sum's increments
  std::snprintf(sum, sizeof sum, "%.9f", static_cast<double>(h.sum_ns()) / 1e9);
  out += f.name + "_sum" + labels + " " + sum + "\n";
  out += f.name + "_count" + labels + " " + std::to_string(h.count()) + "\n";
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (char ch : s) {
    if (ch == '\\' || ch == '"') out += '\\';
    out += ch;
  }
  return out;
}

}  // namespace

Endpoints::Endpoints(proxy::Server& server, upstream::UpstreamPool& pool, cache::NearCache& cache,
                     ratelimit::Limiter& limiter, std::string version)
    : server_(server), pool_(pool), cache_(cache), limiter_(limiter), version_(std::move(version)) {}

bool Endpoints::ready(std::string& reason) const {
  if (server_.draining()) {
    reason = "draining: respite is shutting down";
    return false;
  }
  if (server_.fallback_active()) {
    reason = "fallback active: Redis is unreachable or being caught up, clients are answered from local memory";
    return true;
  }
  if (pool_.ready_count() == 0) {
    reason = "upstream unreachable: 0 of " + std::to_string(pool_.size()) + " pooled connections to Redis are ready";
    return false;
  }
  reason = "ready: " + std::to_string(pool_.ready_count()) + " of " + std::to_string(pool_.size()) +
           " pooled connections to Redis are ready";
  return true;
}

std::vector<Figure> Endpoints::figures() const {
  std::vector<Figure> f;
  auto counter = [&](std::string name, std::string help, double v, std::string labels = "") {
    f.push_back(Figure{std::move(name), std::move(help), true, std::move(labels), v});
  };
  auto gauge = [&](std::string name, std::string help, double v, std::string labels = "") {
    f.push_back(Figure{std::move(name), std::move(help), false, std::move(labels), v});
  };
  auto histogram = [&](std::string name, std::string help, const obs::Histogram& h) {
    f.push_back(Figure{std::move(name), std::move(help), false, "", 0, &h});
  };
  const proxy::ServerStats& s = server_.stats();
  gauge("respite_build_info", "respite's version (the value is always 1).", 1,
        "version=\"" + label_value(version_) + "\"");
  gauge("respite_uptime_seconds", "Seconds since respite started.", static_cast<double>(server_.uptime_ms()) / 1000.0);
  std::string why;
  gauge("respite_ready", "1 when respite can serve (what /readyz says).", ready(why) ? 1 : 0);
  gauge("respite_draining", "1 once a SIGTERM/SIGINT drain has started.", server_.draining() ? 1 : 0);
  gauge("respite_client_connections", "Client connections open now.", static_cast<double>(server_.client_count()));
  counter("respite_client_connections_accepted_total", "Client connections accepted.", static_cast<double>(s.accepted));
  counter("respite_client_connections_rejected_total", "Client connections refused (server.max_clients, draining).",
          static_cast<double>(s.rejected));
  counter("respite_commands_total", "Requests framed from clients.", static_cast<double>(s.commands));
  const char* outcome_help = "Requests by outcome.";
  counter("respite_command_outcomes_total", outcome_help, static_cast<double>(s.forwarded), "outcome=\"forwarded\"");
  counter("respite_command_outcomes_total", outcome_help, static_cast<double>(s.local_errors), "outcome=\"error\"");
  counter("respite_command_outcomes_total", outcome_help, static_cast<double>(s.denied), "outcome=\"denied\"");
  counter("respite_command_outcomes_total", outcome_help, static_cast<double>(s.rate_limited),
          "outcome=\"rate_limited\"");
  counter("respite_command_outcomes_total", outcome_help, static_cast<double>(s.pinned_refused),
          "outcome=\"pinned_refused\"");
  histogram("respite_request_duration_seconds",
            "From reading a request to queuing its reply for the client, per reply (0 for replies respite "
            "makes at once).",
            s.request_latency);
  counter("respite_protocol_errors_total", "Client connections closed for a protocol error.",
          static_cast<double>(s.protocol_errors));
  counter("respite_limit_closes_total", "Client connections closed for a buffer limit.",
          static_cast<double>(s.limit_closes));
  counter("respite_auth_failures_total", "AUTH attempts with wrong credentials.", static_cast<double>(s.auth_failures));
  counter("respite_config_reloads_total", "Configuration reloads, by result.", static_cast<double>(s.reloads),
          "result=\"success\"");
  counter("respite_config_reloads_total", "Configuration reloads, by result.", static_cast<double>(s.reload_failures),
          "result=\"failure\"");
  gauge("respite_config_restart_pending",
        "Changed settings the last successful reload could not apply live (a restart applies them).",
        static_cast<double>(server_.restart_pending().size()));
  gauge("respite_upstream_connections", "Pooled (shared) connections to Redis, by state.",
        static_cast<double>(pool_.ready_count()), "state=\"ready\"");
  gauge("respite_upstream_connections", "Pooled (shared) connections to Redis, by state.",
        static_cast<double>(pool_.size() - pool_.ready_count()), "state=\"not_ready\"");
  gauge("respite_upstream_pinned_connections", "Dedicated connections to Redis, in use plus idle.",
        static_cast<double>(pool_.pinned_count()));
  gauge("respite_upstream_requests_in_flight", "Requests sent to Redis and not yet answered.",
        static_cast<double>(pool_.inflight()));
  histogram("respite_upstream_rtt_seconds",
            "From writing a request to a pooled (shared) Redis connection to reading its reply.", pool_.rtt());

  if (cache_.enabled()) {
    const cache::StoreStats& cs = cache_.store().stats();
    counter("respite_cache_hits_total", "Reads answered from the near-cache.", static_cast<double>(cs.hits));
    counter("respite_cache_misses_total", "Cacheable reads not found in the near-cache.", static_cast<double>(cs.misses));
    counter("respite_cache_fills_total", "Entries stored in the near-cache.", static_cast<double>(cs.fills));
    counter("respite_cache_evictions_total", "Entries evicted to stay within cache.memory_bytes.",
            static_cast<double>(cs.evictions));
    counter("respite_cache_invalidations_total", "Keys invalidated (by Redis or by writes through respite).",
            static_cast<double>(cs.invalidations));
    counter("respite_cache_flushes_total", "Times the whole near-cache was emptied.", static_cast<double>(cs.flushes));
    counter("respite_cache_pattern_flushes_total", "RESPITE CACHE FLUSH <pattern> commands.",
            static_cast<double>(cs.pattern_flushes));
    counter("respite_cache_pattern_flushed_entries_total", "Entries dropped by RESPITE CACHE FLUSH <pattern>.",
            static_cast<double>(cs.pattern_flushed_entries));
    gauge("respite_cache_entries", "Entries in the near-cache.", static_cast<double>(cache_.store().entries()));
    gauge("respite_cache_bytes", "Bytes the near-cache's entries use (of cache.memory_bytes).",
          static_cast<double>(cache_.store().bytes_used()));
  }
  for (const auto& r : limiter_.rule_stats()) {
    const std::string l = "rule=\"" + label_value(r.name) + "\"";
    const char* help = "Requests a rate-limit rule applied to, by what it did.";
    counter("respite_ratelimit_requests_total", help, static_cast<double>(r.allowed), l + ",action=\"allowed\"");
    counter("respite_ratelimit_requests_total", help, static_cast<double>(r.delayed), l + ",action=\"delayed\"");
    counter("respite_ratelimit_requests_total", help, static_cast<double>(r.rejected), l + ",action=\"rejected\"");
    gauge("respite_ratelimit_buckets", "Buckets a rate-limit rule holds now.", static_cast<double>(r.buckets), l);
  }
  gauge("respite_ratelimit_delayed_requests", "Requests held by delay rules now.", static_cast<double>(server_.held()));

  const upstream::CircuitBreaker& b = pool_.breaker();
  for (auto st : {upstream::CircuitBreaker::State::Closed, upstream::CircuitBreaker::State::Open,
                  upstream::CircuitBreaker::State::HalfOpen}) {
    gauge("respite_breaker_state", "The circuit breaker's state (1 for the current one).", b.state() == st ? 1 : 0,
          std::string("state=\"") + upstream::CircuitBreaker::name(st) + "\"");
  }
  counter("respite_breaker_opens_total", "Times the circuit breaker opened (Redis considered unreachable).",
          static_cast<double>(b.opens()));
  counter("respite_breaker_failures_total", "Failures reported to the circuit breaker.",
          static_cast<double>(b.failures_total()));
  if (server_.has_fallback()) {
    const fallback::Fallback& fb = server_.fallback();
    const fallback::FallbackStats& fs = fb.stats();
    gauge("respite_fallback_active", "1 while clients are answered from local memory (fallback.mode).",
          fb.active() ? 1 : 0);
    gauge("respite_fallback_replaying", "1 while the journal is being replayed into Redis.", fb.replaying() ? 1 : 0);
    const char* replies = "Requests the fallback answered, by how.";
    counter("respite_fallback_replies_total", replies, static_cast<double>(fs.local_replies), "source=\"local_store\"");
    counter("respite_fallback_replies_total", replies, static_cast<double>(fs.stale_replies), "source=\"stale_cache\"");
    counter("respite_fallback_replies_total", replies, static_cast<double>(fs.misses), "source=\"miss\"");
    counter("respite_fallback_replies_total", replies, static_cast<double>(fs.refused), "source=\"refused\"");
    counter("respite_fallback_journaled_total", "Writes appended to the fallback journal.",
            static_cast<double>(fs.journaled));
    counter("respite_fallback_journal_errors_total", "Writes refused because the journal could not take them.",
            static_cast<double>(fs.journal_errors));
    gauge("respite_fallback_journal_bytes", "Size of the fallback journal file.",
          static_cast<double>(fb.journal_bytes()));
    gauge("respite_fallback_journal_records", "Journaled writes not yet replayed into Redis.",
          static_cast<double>(fb.journal_records()));
    counter("respite_fallback_replayed_total", "Journaled writes Redis applied during replays.",
            static_cast<double>(fs.replayed));
    counter("respite_fallback_dead_lettered_total", "Journaled writes Redis refused during replays (dead-letter file).",
            static_cast<double>(fs.dead_lettered));
  }
  return f;
}

HttpResponse Endpoints::handle(const HttpRequest& req) const {
  if (req.method != "GET" && req.method != "HEAD") return {405, "text/plain; charset=utf-8", "only GET and HEAD\n"};
  if (req.path == "/livez") return {200, "text/plain; charset=utf-8", "ok\n"};
  if (req.path == "/readyz") {
    std::string reason;
    bool ok = ready(reason);
    return {ok ? 200 : 503, "text/plain; charset=utf-8", reason + "\n"};
  }
  if (req.path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", render_prometheus(figures())};
  if (req.path == "/stats") return {200, "application/json", render_json(figures())};
  return {404, "text/plain; charset=utf-8", "not found: try /livez, /readyz, /metrics or /stats\n"};
}

std::string render_prometheus(const std::vector<Figure>& figures) {
  // A metric family's samples must be together: families in order of first appearance.
  std::vector<std::string> order;
  std::set<std::string> seen;
  for (const auto& f : figures) {
    if (seen.insert(f.name).second) order.push_back(f.name);
  }
  std::string out;
  for (const auto& name : order) {
    bool described = false;
    for (const auto& f : figures) {
      if (f.name != name) continue;
      if (!described) {
        out += "# HELP " + f.name + " " + f.help + "\n";
        out += "# TYPE " + f.name + (f.histogram ? " histogram\n" : f.counter ? " counter\n" : " gauge\n");
        described = true;
      }
      if (f.histogram) {
        render_histogram(out, f);
        continue;
      }
      out += f.name;
      if (!f.labels.empty()) out += "{" + f.labels + "}";
      out += " " + format_value(f.value) + "\n";
    }
  }
  return out;
}

std::string render_json(const std::vector<Figure>& figures) {
  std::string out = "{";
  for (size_t i = 0; i < figures.size(); ++i) {
    const auto& f = figures[i];
    std::string labels = f.labels.empty() ? "" : "{" + f.labels + "}";
    auto field = [&](std::string_view suffix, double v) {
      out += (out.size() > 1 ? ",\n \"" : "\n \"") + json_escape(f.name + std::string(suffix) + labels) +
             "\": " + format_value(v);
    };
    if (!f.histogram) {
      field("", f.value);
      continue;
    }
    const obs::Histogram& h = *f.histogram;
    field("_count", static_cast<double>(h.count()));
    field("_sum", static_cast<double>(h.sum_ns()) / 1e9);
    field("_p50", static_cast<double>(h.quantile_ns(0.5)) / 1e9);
    field("_p90", static_cast<double>(h.quantile_ns(0.9)) / 1e9);
    field("_p99", static_cast<double>(h.quantile_ns(0.99)) / 1e9);
  }
  out += "\n}\n";
  return out;
}

}  // namespace respite::admin
