// CircuitBreaker: whether respite treats Redis as reachable, from the outcomes it sees.
//
//   Closed    Redis serves requests. `failures` consecutive failures (a connect refused or
//             timed out, a failed handshake, a connection lost, a command timeout, a reply
//             saying Redis cannot serve: -LOADING, -MASTERDOWN, -READONLY) open it; any
//             success in between starts the count again.
//   Open      Redis is considered down: the fallback answers. The pool keeps reconnecting
//             in the background; a success there does not close the breaker before
//             `open_ms` has passed since it opened (so a flapping Redis is not used for a
//             moment at a time). After that, the next success moves it to HalfOpen.
//   HalfOpen  Redis answers again and respite is getting back to it (the fallback journal
//             is replayed in this state). recovered() closes it; a failure opens it again
//             with the wait doubled, up to `open_max_ms`. The wait goes back to `open_ms`
//             once the breaker closes.
//
// Pure state machine: no I/O, time passed in (milliseconds of a monotonic clock), so tests
// drive it with a fake clock. The caller is told of every change through `on_change`.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string_view>

namespace respite::upstream {

class CircuitBreaker {
 public:
  enum class State : uint8_t { Closed, Open, HalfOpen };
  struct Settings {
    int failures = 3;             // consecutive failures that open it
    uint64_t open_ms = 1000;      // least time open before a success leads to HalfOpen
    uint64_t open_max_ms = 30000; // cap of the wait, doubled after each failed recovery
  };
  using ChangeFn = std::function<void(State from, State to, std::string_view why)>;

  CircuitBreaker() = default;
  explicit CircuitBreaker(Settings s) : settings_(s), wait_ms_(s.open_ms) {}

  void set_on_change(ChangeFn fn) { on_change_ = std::move(fn); }

  // A request or connection attempt failed for a reason that says Redis cannot serve.
  void failure(uint64_t now_ms, std::string_view why) {
    ++failures_total_;
    switch (state_) {
      case State::Closed:
        if (++consecutive_ >= settings_.failures) open(now_ms, why);
        break;
      case State::Open:
        break;  // still down: the wait runs from when it opened
      case State::HalfOpen:
        wait_ms_ = std::min(wait_ms_ * 2, settings_.open_max_ms);
        open(now_ms, why);
        break;
    }
  }

  // A connection became ready or a request was answered normally.
  void success(uint64_t now_ms) {
    if (state_ == State::Closed) {
      consecutive_ = 0;
      return;
    }
    if (state_ == State::Open && now_ms - opened_ms_ >= wait_ms_) change(State::HalfOpen, "Redis answers again");
  }

  // Open with its wait elapsed: the next success() will move it to HalfOpen. (For callers
  // that want to probe only then.)
  bool probe_due(uint64_t now_ms) const { return state_ == State::Open && now_ms - opened_ms_ >= wait_ms_; }

  // HalfOpen: the way back is complete (journal replayed); Redis serves again.
  void recovered() {
    if (state_ != State::HalfOpen) return;
    consecutive_ = 0;
    wait_ms_ = settings_.open_ms;
    change(State::Closed, "recovered");
  }

  State state() const { return state_; }
  bool closed() const { return state_ == State::Closed; }
  uint64_t opened_ms() const { return opened_ms_; }
  uint64_t wait_ms() const { return wait_ms_; }          // the current least time open
  uint64_t opens() const { return opens_; }              // Closed/HalfOpen -> Open transitions
  uint64_t transitions() const { return transitions_; }  // every state change
  uint64_t failures_total() const { return failures_total_; }

  static const char* name(State s) {
    switch (s) {
      case State::Closed: return "closed";
      case State::Open: return "open";
      case State::HalfOpen: return "half-open";
    }
    return "?";
  }

 private:
  void open(uint64_t now_ms, std::string_view why) {
    opened_ms_ = now_ms;
    consecutive_ = 0;
    ++opens_;
    change(State::Open, why);
  }
  void change(State to, std::string_view why) {
    State from = state_;
    state_ = to;
    ++transitions_;
    if (on_change_) on_change_(from, to, why);
  }

  Settings settings_;
  State state_ = State::Closed;
  int consecutive_ = 0;          // failures since the last success (Closed)
  uint64_t wait_ms_ = 1000;      // least time open before HalfOpen (doubles on failed recoveries)
  uint64_t opened_ms_ = 0;       // when it last opened
  uint64_t opens_ = 0;           // times it opened
  uint64_t transitions_ = 0;     // state changes
  uint64_t failures_total_ = 0;  // failures reported
  ChangeFn on_change_;           // told of every change
};

}  // namespace respite::upstream
