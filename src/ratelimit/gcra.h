// Gcra: one rate limiter (the generic cell rate algorithm, a token bucket kept as a single
// timestamp). Groundwork for issue 5 (rate limits); not yet wired into the proxy.
//
// A limit is `rate` requests per second with a `burst`: from idle, `burst` requests pass at
// once, then one every 1/rate s. The state is the theoretical arrival time (TAT) of the
// next request at the steady rate; a request at `now` conforms when TAT - now <= tau, with
// tau = (burst - 1) / rate. Time is passed in by the caller (nanoseconds on any monotonic
// clock), so tests drive it with a fake clock. O(1), no allocation.
#pragma once

#include <algorithm>
#include <cstdint>

namespace respite::ratelimit {

class Gcra {
 public:
  // rate > 0 requests per second; burst >= 1.
  Gcra(double rate, uint32_t burst) { configure(rate, burst); }

  // Changes the limit, keeping the bucket's state (a reload does not refill it).
  void configure(double rate, uint32_t burst) {
    interval_ns_ = static_cast<uint64_t>(1e9 / rate);
    if (interval_ns_ == 0) interval_ns_ = 1;
    tau_ns_ = interval_ns_ * (std::max<uint32_t>(burst, 1) - 1);
  }

  // Takes one request now if it conforms. Otherwise leaves the state alone and sets
  // `retry_ns` to how long until it would.
  bool try_take(uint64_t now_ns, uint64_t& retry_ns) {
    uint64_t tat = std::max(tat_ns_, now_ns);
    if (tat - now_ns > tau_ns_) {
      retry_ns = tat - now_ns - tau_ns_;
      return false;
    }
    tat_ns_ = tat + interval_ns_;
    retry_ns = 0;
    return true;
  }

  // Reserves the next conforming slot for a request that may wait up to `max_wait_ns`:
  // true with `wait_ns` (0: now) when the slot is close enough, and the slot is then taken,
  // so requests reserved one after another are spaced at the rate in their order. False,
  // with nothing taken, when the wait would be longer.
  bool reserve(uint64_t now_ns, uint64_t max_wait_ns, uint64_t& wait_ns) {
    uint64_t tat = std::max(tat_ns_, now_ns);
    uint64_t earliest = tat - std::min(tat, tau_ns_);  // tat - tau, not before 0
    wait_ns = earliest > now_ns ? earliest - now_ns : 0;
    if (wait_ns > max_wait_ns) return false;
    tat_ns_ = tat + interval_ns_;
    return true;
  }

  // Whole requests that would pass at once now (for an admin view); never above the burst.
  uint32_t available(uint64_t now_ns) const {
    uint64_t tat = std::max(tat_ns_, now_ns);
    uint64_t slack = tau_ns_ + interval_ns_ - std::min(tau_ns_ + interval_ns_, tat - now_ns);
    return static_cast<uint32_t>(slack / interval_ns_);
  }

  uint64_t interval_ns() const { return interval_ns_; }

 private:
  uint64_t interval_ns_ = 1;  // 1 / rate
  uint64_t tau_ns_ = 0;       // (burst - 1) / rate: how far ahead of now TAT may run
  uint64_t tat_ns_ = 0;       // theoretical arrival time of the next request
};

}  // namespace respite::ratelimit
