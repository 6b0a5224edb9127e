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
