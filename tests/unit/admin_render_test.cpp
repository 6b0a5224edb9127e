// The admin listener's renderings: Prometheus text (families together, HELP/TYPE once, label
// escaping), JSON, and HTTP responses.
#include <gtest/gtest.h>

#include "admin/endpoints.h"
#include "admin/http_server.h"

namespace respite::admin {
namespace {

TEST(AdminRender, PrometheusKeepsEachFamilyTogether) {
  std::vector<Figure> f = {
      {"respite_a_total", "A.", true, "rule=\"x\"", 1},
      {"respite_b", "B.", false, "", 2.5},
      {"respite_a_total", "A.", true, "rule=\"y\"", 3},
  };
  EXPECT_EQ(render_prometheus(f),
            "# HELP respite_a_total A.\n# TYPE respite_a_total counter\n"
            "respite_a_total{rule=\"x\"} 1\nrespite_a_total{rule=\"y\"} 3\n"
            "# HELP respite_b B.\n# TYPE respite_b gauge\nrespite_b 2.5\n");
}

TEST(AdminRender, Json) {
  std::vector<Figure> f = {{"respite_a_total", "A.", true, "rule=\"x\"", 1}, {"respite_b", "B.", false, "", 2}};
  EXPECT_EQ(render_json(f), "{\n \"respite_a_total{rule=\\\"x\\\"}\": 1,\n \"respite_b\": 2\n}\n");
}

TEST(AdminRender, HistogramHasCumulativeBucketsSumAndCount) {
  obs::Histogram h;
  h.observe(5'000);          // 5 us: the first bucket (le 1e-05)
  h.observe(10'000);         // exactly on a bound: that bucket (le is inclusive)
  h.observe(300'000);        // 0.3 ms: le 0.0005
  h.observe(20'000'000'000);  // 20 s: only +Inf
  std::vector<Figure> f = {{"respite_x_seconds", "X.", false, "", 0, &h}};
  std::string text = render_prometheus(f);
  EXPECT_NE(text.find("# TYPE respite_x_seconds histogram\n"), std::string::npos) << text;
  EXPECT_NE(text.find("respite_x_seconds_bucket{le=\"1e-05\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("respite_x_seconds_bucket{le=\"0.00025\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("respite_x_seconds_bucket{le=\"0.0005\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("respite_x_seconds_bucket{le=\"10\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("respite_x_seconds_bucket{le=\"+Inf\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("respite_x_seconds_sum 20.000315000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("respite_x_seconds_count 4\n"), std::string::npos) << text;
  // Labels go before le.
  std::vector<Figure> g = {{"respite_y_seconds", "Y.", false, "pool=\"a\"", 0, &h}};
  EXPECT_NE(render_prometheus(g).find("respite_y_seconds_bucket{pool=\"a\",le=\"+Inf\"} 4\n"), std::string::npos);
  std::string json = render_json(f);
  EXPECT_NE(json.find("\"respite_x_seconds_count\": 4"), std::string::npos) << json;
  EXPECT_NE(json.find("\"respite_x_seconds_p50\": "), std::string::npos) << json;
}

TEST(AdminRender, HistogramQuantilesInterpolateWithinABucket) {
  obs::Histogram h;
  EXPECT_EQ(h.quantile_ns(0.5), 0u);
  for (int i = 0; i < 100; ++i) h.observe(60'000);  // all in (50 us, 100 us]
  // Rank 50 of 100 in that bucket: halfway between its bounds.
  EXPECT_EQ(h.quantile_ns(0.5), 75'000u);
  EXPECT_EQ(h.quantile_ns(1.0), 100'000u);
  for (int i = 0; i < 100; ++i) h.observe(3'000'000);  // (2.5 ms, 5 ms]
  EXPECT_EQ(h.quantile_ns(0.5), 100'000u);
  EXPECT_EQ(h.quantile_ns(0.99), 4'950'000u);
  obs::Histogram big;
  big.observe(60'000'000'000);
  EXPECT_EQ(big.quantile_ns(0.5), 10'000'000'000u);  // the +Inf bucket reports the last bound
}

TEST(AdminRender, HistogramBucketsMatchAPlainScan) {
  // observe() jumps to a starting bucket by the value's power of two; a plain scan of the
  // bounds must agree for values around every bound and every power of two.
  std::vector<uint64_t> values = {0, 1, 2, 3, ~uint64_t{0}};
  for (uint64_t b : obs::Histogram::kBoundsNs) values.insert(values.end(), {b - 1, b, b + 1});
  for (int k = 1; k < 64; ++k) {
    const uint64_t p = uint64_t{1} << k;
    values.insert(values.end(), {p - 1, p, p + 1});
  }
  for (uint64_t v : values) {
    obs::Histogram h;
    h.observe(v);
    size_t expect = 0;
    while (expect < obs::Histogram::kBoundsNs.size() && v > obs::Histogram::kBoundsNs[expect]) ++expect;
    for (size_t i = 0; i < obs::Histogram::kBuckets; ++i) EXPECT_EQ(h.bucket(i), i == expect ? 1u : 0u) << v;
  }
}

TEST(AdminRender, HttpResponses) {
  EXPECT_EQ(http_render({200, "text/plain", "ok\n"}, false),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\nok\n");
  // HEAD: the same headers (Content-Length of the body it would have), no body.
  EXPECT_EQ(http_render({503, "text/plain", "no\n"}, true),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n");
  EXPECT_NE(http_render({405, "text/plain", ""}, false).find("Allow: GET, HEAD\r\n"), std::string::npos);
}

}  // namespace
}  // namespace respite::admin
