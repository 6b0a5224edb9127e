// Gcra: one rate limiter (the generic cell rate algorithm, a token bucket kept as a single
// timestamp).
//
// A limit is `rate` requests per second with a `burst`: from idle, `burst` requests pass at
// once, then one every 1/rate s. The state is the theoretical arrival time (TAT) of the
// next request at the steady rate; a request at `now` conforms when TAT - now <= tau, with
// tau = (burst - 1) / rate. Time is passed in by the caller (nanoseconds on any monotonic
// clock), so tests drive it with a fake clock. O(1), no allocation.
//
// A request may cost more than one (a transaction, charged at EXEC for each queued
// command): it needs `cost` tokens at once, or the whole burst when it costs more than
// the burst (it could never pass otherwise), and then leaves the bucket in debt by the rest.
#pragma once

#include <algorithm>
#include <cstdint>

namespace respite::ratelimit {

class Gcra {
 public:
  // rate > 0 requests per second; burst >= 1.
  Gcra(double rate, uint32_t burst) { configure(rate, burst); }

  // Changes the limit, keeping the bucket's state: the requests it is owed are owed at the
  // new rate (a reload neither refills nor drains it).
  void configure(double rate, uint32_t burst, uint64_t now_ns) {
    const uint64_t old_interval = interval_ns_;
    configure(rate, burst);
    if (tat_ns_ > now_ns) {
      double owed = static_cast<double>(tat_ns_ - now_ns) / static_cast<double>(old_interval);
      tat_ns_ = now_ns + static_cast<uint64_t>(owed * static_cast<double>(interval_ns_));
    }
  }

  void configure(double rate, uint32_t burst) {
    interval_ns_ = static_cast<uint64_t>(1e9 / rate);
    if (interval_ns_ == 0) interval_ns_ = 1;
    burst_ = std::max<uint32_t>(burst, 1);
    tau_ns_ = interval_ns_ * (burst_ - 1);
  }

  // How long from `now_ns` until a request of `cost` conforms (0: it does now).
  uint64_t wait_ns(uint64_t now_ns, uint32_t cost = 1) const {
    if (tat_ns_ <= now_ns) return 0;
    uint64_t need = std::min<uint64_t>(std::max<uint32_t>(cost, 1), burst_) - 1;
    uint64_t allowance = tau_ns_ - need * interval_ns_;  // how far ahead TAT may run for this cost
    uint64_t ahead = tat_ns_ - now_ns;
    return ahead > allowance ? ahead - allowance : 0;
  }

  // Whether one request conforms now (wait_ns(now_ns) == 0, cheaper).
  bool conforms(uint64_t now_ns) const { return tat_ns_ <= now_ns + tau_ns_; }

  // Charges a request of `cost` admitted at `at_ns` (now, or the end of a wait).
  void take(uint64_t at_ns, uint32_t cost = 1) { tat_ns_ = std::max(tat_ns_, at_ns) + cost * interval_ns_; }

  // Takes one request now if it conforms. Otherwise leaves the state alone and sets
  // `retry_ns` to how long until it would.
  bool try_take(uint64_t now_ns, uint64_t& retry_ns) {
    retry_ns = wait_ns(now_ns);
    if (retry_ns > 0) return false;
    take(now_ns);
    return true;
  }

  // Reserves the next conforming slot for a request that may wait up to `max_wait_ns`:
  // true with `wait_ns` (0: now) when the slot is close enough, and the slot is then taken,
  // so requests reserved one after another are spaced at the rate in their order. False,
  // with nothing taken, when the wait would be longer.
  bool reserve(uint64_t now_ns, uint64_t max_wait_ns, uint64_t& wait) {
    wait = wait_ns(now_ns);
    if (wait > max_wait_ns) return false;
    take(now_ns + wait);
    return true;
  }

  // Whole requests that would pass at once now (for an admin view); never above the burst.
  uint32_t available(uint64_t now_ns) const {
    uint64_t tat = std::max(tat_ns_, now_ns);
    uint64_t slack = tau_ns_ + interval_ns_ - std::min(tau_ns_ + interval_ns_, tat - now_ns);
    return static_cast<uint32_t>(slack / interval_ns_);
  }
  // Whether the bucket is full (as good as a new one: it can be forgotten).
  bool full(uint64_t now_ns) const { return tat_ns_ <= now_ns; }

  uint64_t interval_ns() const { return interval_ns_; }
  uint32_t burst() const { return burst_; }

 private:
  uint64_t interval_ns_ = 1;  // 1 / rate
  uint64_t tau_ns_ = 0;       // (burst - 1) / rate: how far ahead of now TAT may run
  uint64_t tat_ns_ = 0;       // theoretical arrival time of the next request
  uint32_t burst_ = 1;        // requests at once from idle
};

}  // namespace respite::ratelimit
