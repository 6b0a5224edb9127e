// UpstreamPool: the fixed set of shared (multiplexed) connections to one Redis.
//
// Clients are spread over the connections by a per-client hint; a client keeps using the
// same connection while it is ready, so its requests reach Redis in order on one socket.
//
// Dedicated (pinned) connections: a client whose commands need connection state (MULTI,
// blocking commands, pub/sub...) borrows one with acquire_pinned() and gives it back with
// release_pinned(). At most upstream.max_pinned exist at once (borrowed, being reset, or
// idle); up to upstream.pinned_idle wiped ones are kept for reuse. A connection that dies
// is destroyed on a later loop iteration, never inside a callback that still uses it.
#pragma once

#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "net/timer.h"
#include "upstream/breaker.h"
#include "upstream/upstream_conn.h"

namespace respite::upstream {

// The borrower of a dedicated connection.
class PinnedOwner {
 public:
  virtual ~PinnedOwner() = default;
  // The connection acquire_pinned() returned while it was still connecting is ready.
  virtual void on_pinned_ready(UpstreamConn& c) = 0;
  // It failed to connect or was lost. It is no longer the owner's: the pool destroys it
  // soon. Requests in flight on it are failed right after this call.
  virtual void on_pinned_lost(UpstreamConn& c) = 0;
};

class UpstreamPool {
 public:
  UpstreamPool(net::Loop& loop, const config::UpstreamConfig& cfg);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // Starts connecting. `settled` runs once every connection has either become ready or
  // failed its first attempt (bounded by the connect timeout), so a listener opened then
  // does not refuse the first clients of a healthy Redis.
  void start(std::function<void()> settled = nullptr);
  // Fails everything in flight with `error_line` and stops reconnecting.
  void shutdown(std::string_view error_line);

  // A ready connection for the client with this hint (preferring hint % size), or null
  // when none is ready.
  UpstreamConn* pick(size_t hint);
  size_t ready_count() const { return ready_; }
  // Shared connection number i (< size()).
  UpstreamConn& shared(size_t i) { return *conns_[i]; }
  // Called after every state change of a shared connection (the near-cache turns tracking
  // on when one becomes ready, and flushes when one is lost).
  void set_listener(UpstreamConn::StateFn fn) { listener_ = std::move(fn); }
  size_t size() const { return conns_.size(); }
  size_t inflight() const;

  // A dedicated connection for `owner`: a ready idle one, or a new one that is connecting
  // (then on_pinned_ready or on_pinned_lost follows). Null when upstream.max_pinned
  // dedicated connections exist already, or the pool is shutting down.
  UpstreamConn* acquire_pinned(PinnedOwner* owner);
  // Gives a borrowed connection back. `wipe`: the client changed its state, so it gets RESET
  // and the handshake before reuse. A connection with requests in flight (a client that
  // left while blocked) or not ready is closed instead, so Redis forgets what it was doing.
  // `reusable` false: always closed (Redis may still send it another client's data).
  void release_pinned(UpstreamConn* c, bool wipe, bool reusable = true);
  size_t pinned_count() const { return pinned_.size(); }
  // Round trips on the shared connections (dedicated ones carry blocking commands, whose
  // wait is not a round trip).
  const obs::Histogram& rtt() const { return rtt_; }
  size_t pinned_idle_count() const { return idle_.size(); }
  // The circuit breaker fed by every connection's outcomes (see breaker.h); the fallback
  // watches it. Settings before start().
  CircuitBreaker& breaker() { return breaker_; }
  const CircuitBreaker& breaker() const { return breaker_; }
  void configure_breaker(CircuitBreaker::Settings s) { breaker_ = CircuitBreaker(s); }

 private:
  enum class Use : uint8_t { Borrowed, Resetting, Idle };
  struct Pinned {
    std::unique_ptr<UpstreamConn> conn;  // the connection
    PinnedOwner* owner;                  // borrower (Borrowed only)
    Use use;                             // where it is in its cycle
  };

  void note_breaker(UpstreamConn::Event e, std::string_view where);
  void on_state(UpstreamConn& c, UpstreamConn::Event e);
  void on_pinned_state(UpstreamConn& c, UpstreamConn::Event e);
  void park(Pinned& p);
  void retire(UpstreamConn* c);

  const config::UpstreamConfig& cfg_;                  // settings; outlive the pool
  obs::Histogram rtt_;                                 // round trips on conns_ (declared first: outlives them)
  std::vector<std::unique_ptr<UpstreamConn>> conns_;   // the shared connections
  size_t ready_ = 0;                                   // how many are ready now
  CircuitBreaker breaker_;                             // Redis reachable or not, from the outcomes
  bool announced_down_ = false;                        // "all down" was logged
  bool stopping_ = false;                              // shutdown() called
  std::vector<bool> tried_;                            // per connection: first attempt finished
  size_t untried_ = 0;                                 // connections still on their first attempt
  std::function<void()> settled_;                      // start()'s callback, until it runs
  UpstreamConn::StateFn listener_;                     // set_listener()
  net::Loop& loop_;                                    // for new dedicated connections
  std::unordered_map<UpstreamConn*, Pinned> pinned_;   // every dedicated connection
  std::vector<UpstreamConn*> idle_;                    // wiped, ready, unborrowed (LIFO)
  std::vector<std::unique_ptr<UpstreamConn>> retired_; // dead; destroyed by reap_timer_
  net::Timer reap_timer_;                              // destroys retired_ on the next iteration
  int next_pinned_index_ = 0;                          // numbers dedicated connections in logs
};

}  // namespace respite::upstream
