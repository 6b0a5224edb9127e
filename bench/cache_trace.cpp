// cache_trace: replays deterministic synthetic GET traces through cache::Store with S3-FIFO
// and with LRU, and prints one table row per (trace, cache size) with both hit ratios.
//
// Traces: Zipf(0.8), Zipf(0.99), Zipf(1.2) over --keys keys, and Zipf(0.99) interrupted by
// ten evenly spaced scans, each reading keys/10 distinct cold keys once (never read again),
// capped so scans are at most a tenth of the requests. Every miss fills a 100-byte value,
// as a GET through the proxy would. The cache size is a share of what all the trace's
// Zipf keys would cost cached (Store::entry_cost summed; cold scan keys not counted).
// The two policies run side by side on two threads (separate stores, shared read-only
// trace); results depend only on the flags.
//
// Usage: cache_trace [--requests N] [--keys N] [--seed S]
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cache/store.h"
#include "core/parse.h"

namespace {

using respite::cache::Eviction;
using respite::cache::Store;

constexpr size_t kValueBytes = 100;
constexpr uint64_t kFullRequests = 10'000'000;  // the size asked for; the default is smaller
constexpr uint64_t kDefaultRequests = 4'000'000;
constexpr uint64_t kDefaultKeys = 1'000'000;
constexpr int kScans = 10;

struct Trace {
  std::string name;
  uint64_t keys = 0;            // the Zipf keys; cold scan keys have ids >= keys
  std::vector<uint32_t> ids;    // one key id per request
};

// Inverse-CDF Zipf sampler over ranks 0..n-1; deterministic for a seed.
class Zipf {
 public:
  Zipf(uint64_t n, double alpha, uint64_t seed) : rng_(seed), cdf_(n) {
    double sum = 0;
    for (uint64_t i = 0; i < n; ++i) cdf_[i] = sum += 1.0 / std::pow(static_cast<double>(i + 1), alpha);
    for (double& c : cdf_) c /= sum;
  }
  uint32_t next() {
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
    return static_cast<uint32_t>(std::min<size_t>(static_cast<size_t>(it - cdf_.begin()), cdf_.size() - 1));
  }

 private:
  std::mt19937_64 rng_;
  std::vector<double> cdf_;
};

// The key of id: "key:<id>", written into buf (no allocation per request).
std::string_view key_of(uint32_t id, char (&buf)[24]) {
  std::memcpy(buf, "key:", 4);
  auto [end, ec] = std::to_chars(buf + 4, buf + sizeof buf, id);
  (void)ec;
  return {buf, static_cast<size_t>(end - buf)};
}

Trace zipf_trace(uint64_t keys, uint64_t requests, double alpha, uint64_t seed) {
  char name[64];
  std::snprintf(name, sizeof name, "zipf %.2f", alpha);
  Trace t{name, keys, {}};
  Zipf z(keys, alpha, seed);
  t.ids.resize(requests);
  for (uint32_t& id : t.ids) id = z.next();
  return t;
}

Trace scan_trace(uint64_t keys, uint64_t requests, uint64_t seed) {
  const uint64_t scan_len = std::min(keys / 10, requests / (10 * kScans));
  char name[64];
  std::snprintf(name, sizeof name, "zipf 0.99 + %dx%llu-key scans", kScans, static_cast<unsigned long long>(scan_len));
  Trace t{name, keys, {}};
  Zipf z(keys, 0.99, seed);
  t.ids.reserve(requests);
  const uint64_t zipf_total = requests - kScans * scan_len;
  uint32_t cold = static_cast<uint32_t>(keys);
  for (uint64_t period = 0; period < kScans; ++period) {
    // Each period: Zipf requests with one scan in the middle.
    const uint64_t chunk = zipf_total / kScans + (period < zipf_total % kScans ? 1 : 0);
    for (uint64_t i = 0; i < chunk / 2; ++i) t.ids.push_back(z.next());
    for (uint64_t i = 0; i < scan_len; ++i) t.ids.push_back(cold++);
    for (uint64_t i = chunk / 2; i < chunk; ++i) t.ids.push_back(z.next());
  }
  return t;
}

size_t keys_bytes(uint64_t keys) {
  size_t total = 0;
  char buf[24];
  for (uint64_t id = 0; id < keys; ++id) {
    const std::string_view req[] = {"GET", key_of(static_cast<uint32_t>(id), buf)};
    total += Store::entry_cost(0, req, kValueBytes);
  }
  return total;
}

double replay(const Trace& t, size_t budget, Eviction policy) {
  Store store(budget, kValueBytes, policy);
  const std::string value(kValueBytes, 'v');
  char buf[24];
  for (uint32_t id : t.ids) {
    const std::string_view key = key_of(id, buf);
    const std::string_view req[] = {"GET", key};
    if (store.find(0, req, 0) == nullptr) {
      Store::Ticket ticket = store.begin_fill(respite::cache::hash_key(key));
      store.finish_fill(ticket, 0, req, value, UINT64_MAX);
    }
  }
  const auto& s = store.stats();
  return static_cast<double>(s.hits) / static_cast<double>(s.hits + s.misses);
}

bool flag_value(int argc, char** argv, int& i, std::string_view name, uint64_t& out) {
  if (argv[i] != name) return false;
  if (i + 1 >= argc || !respite::core::parse_integer(std::string_view(argv[i + 1]), out)) {
    std::fprintf(stderr, "%s needs a non-negative integer\n", argv[i]);
    std::exit(2);
  }
  ++i;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t requests = kDefaultRequests;
  uint64_t keys = kDefaultKeys;
  uint64_t seed = 1;
  bool requests_given = false;
  for (int i = 1; i < argc; ++i) {
    if (flag_value(argc, argv, i, "--requests", requests)) {
      requests_given = true;
      continue;
    }
    if (flag_value(argc, argv, i, "--keys", keys) || flag_value(argc, argv, i, "--seed", seed)) {
      continue;
    }
    std::fprintf(stderr, "usage: %s [--requests N] [--keys N] [--seed S]\n", argv[0]);
    return 2;
  }
  if (keys == 0 || keys > UINT32_MAX / 2 || requests == 0) {
    std::fprintf(stderr, "--keys must be in 1..%u and --requests at least 1\n", UINT32_MAX / 2);
    return 2;
  }
  const auto started = std::chrono::steady_clock::now();

  std::printf("# command:");
  for (int i = 0; i < argc; ++i) std::printf(" %s", argv[i]);
  std::printf("\n# keys=%llu requests=%llu seed=%llu value=%zu bytes, every miss fills (GET-like)\n",
              static_cast<unsigned long long>(keys), static_cast<unsigned long long>(requests),
              static_cast<unsigned long long>(seed), kValueBytes);
  if (!requests_given) {
    std::printf("# requests scaled down from %llu to %llu per trace to keep the run near a minute on 2 cores\n",
                static_cast<unsigned long long>(kFullRequests), static_cast<unsigned long long>(requests));
  }
  std::printf("# cache size: %% of the summed entry_cost of all Zipf keys (scan keys not counted)\n");
  std::printf("%-34s %9s %10s %7s %8s %8s %8s\n", "trace", "keys", "requests", "cache", "S3-FIFO", "LRU",
              "diff");
  std::fflush(stdout);

  const size_t all_bytes = keys_bytes(keys);
  const double alphas[] = {0.8, 0.99, 1.2};
  for (int which = 0; which < 4; ++which) {
    const Trace t = which < 3 ? zipf_trace(keys, requests, alphas[which], seed + static_cast<uint64_t>(which))
                              : scan_trace(keys, requests, seed + 3);
    for (double pct : {1.0, 10.0}) {
      const auto budget = static_cast<size_t>(static_cast<double>(all_bytes) * pct / 100.0);
      double s3 = 0;
      double lru = 0;
      std::thread other([&] { lru = replay(t, budget, Eviction::Lru); });
      s3 = replay(t, budget, Eviction::S3Fifo);
      other.join();
      std::printf("%-34s %9llu %10zu %6.0f%% %8.4f %8.4f %+8.4f\n", t.name.c_str(),
                  static_cast<unsigned long long>(t.keys), t.ids.size(), pct, s3, lru, s3 - lru);
      std::fflush(stdout);
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("# total %.1f s\n", secs);
  return 0;
}
