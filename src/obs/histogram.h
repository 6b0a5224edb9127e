// Histogram: a latency distribution counted into fixed buckets, in nanoseconds. Rendered as
// a Prometheus histogram (cumulative `le` buckets in seconds, _sum, _count) and read back
// as quantile estimates for the human-readable views.
//
// observe() is a handful of compares and three additions: no clock, no allocation, no lock
// (one event loop, one thread). Callers pass durations they measured with the loop's clock.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace respite::obs {

class Histogram {
 public:
  // Upper bounds (inclusive) of the finite buckets: 10 us to 10 s, roughly 1-2.5-5 steps.
  static constexpr std::array<uint64_t, 19> kBoundsNs = {
      10'000,      25'000,      50'000,      100'000,       250'000,       500'000,       1'000'000,
      2'500'000,   5'000'000,   10'000'000,  25'000'000,    50'000'000,    100'000'000,   250'000'000,
      500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};
  static constexpr size_t kBuckets = kBoundsNs.size() + 1;  // the last one is +Inf

 private:
  // By floor(log2(ns)): the first bucket whose bound is >= 2^that.
  static constexpr std::array<uint8_t, 64> kFirstCandidate = [] {
    std::array<uint8_t, 64> t{};
    for (size_t k = 0; k < 64; ++k) {
      const uint64_t low = uint64_t{1} << k;
      size_t i = 0;
      while (i < kBoundsNs.size() && low > kBoundsNs[i]) ++i;
      t[k] = static_cast<uint8_t>(i);
    }
    return t;
  }();

 public:

  void observe(uint64_t ns) {
    // Start at the first bound >= the largest power of two <= ns: bounds are at most 2.5x
    // apart, so at most two steps remain (a linear scan from the first bucket showed up in
    // instruction counts).
    size_t i = kFirstCandidate[ns == 0 ? 0 : 63 - std::countl_zero(ns)];
    while (i < kBoundsNs.size() && ns > kBoundsNs[i]) ++i;
    ++counts_[i];
    sum_ns_ += ns;
    ++count_;
  }

  uint64_t count() const { return count_; }
  uint64_t sum_ns() const { return sum_ns_; }
  // Observations in bucket i alone (not cumulative); i == kBuckets - 1 is above every bound.
  uint64_t bucket(size_t i) const { return counts_[i]; }

  // Estimate of the q-quantile (0 < q <= 1) in nanoseconds, interpolated linearly within
  // its bucket as Prometheus's histogram_quantile does; 0 when empty. A quantile in the
  // +Inf bucket reports the largest finite bound.
  uint64_t quantile_ns(double q) const {
    if (count_ == 0) return 0;
    double rank = q * static_cast<double>(count_);
    uint64_t below = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      if (counts_[i] == 0 || static_cast<double>(below + counts_[i]) < rank) {
        below += counts_[i];
        continue;
      }
      if (i == kBoundsNs.size()) return kBoundsNs.back();
      double lo = i == 0 ? 0.0 : static_cast<double>(kBoundsNs[i - 1]);
      double hi = static_cast<double>(kBoundsNs[i]);
      double within = (rank - static_cast<double>(below)) / static_cast<double>(counts_[i]);
      return static_cast<uint64_t>(lo + (hi - lo) * within);
    }
    return kBoundsNs.back();
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t sum_ns_ = 0;
  uint64_t count_ = 0;
};

}  // namespace respite::obs
