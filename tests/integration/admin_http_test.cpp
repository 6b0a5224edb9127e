// The HTTP admin listener (admin.listen / --admin): /livez, /readyz (flipping as Redis stops and
// starts, and as respite drains), /metrics in the Prometheus text format (checked with promtool
// when it is installed: scripts/deps.sh installs it) with counters that move with traffic, /stats
// as JSON, and the errors (404, 405, 400).
#include <signal.h>
#include <stdlib.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "integration/cache_fixture.h"

namespace respite::test {
namespace {

struct HttpReply {
  int status = 0;
  std::string headers;
  std::string body;
};

// One request on a fresh connection (the admin listener answers one request per connection).
HttpReply http(const std::string& address, const std::string& request) {
  HttpReply r;
  // The admin listener is on 127.0.0.1 here: only its port matters. Status 0: no connection.
  std::optional<RawConn> conn;
  try {
    conn.emplace(RawConn::tcp(static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)))));
  } catch (const std::exception&) {
    return r;
  }
  RawConn& c = *conn;
  if (!c.send_all(request, deadline_in(kWait))) return r;
  bool closed = false;
  std::string all = c.read_until_closed(deadline_in(kWait), &closed);
  const size_t head_end = all.find("\r\n\r\n");
  if (!closed || all.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos) return r;
  r.status = std::stoi(all.substr(9, 3));
  r.headers = all.substr(0, head_end);
  r.body = all.substr(head_end + 4);
  return r;
}

HttpReply get(const std::string& address, const std::string& path) {
  return http(address, "GET " + path + " HTTP/1.1\r\nHost: respite\r\n\r\n");
}

// The value of the sample `series` (name plus labels, as written) in a /metrics body (-1: absent).
double sample(const std::string& metrics, const std::string& series) {
  size_t at = metrics.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(metrics.substr(at + series.size() + 2));
}

class AdminHttpTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_admin = "127.0.0.1:0";
    o.respite_sets = {"cache.enabled=false"};
    return o;
  }
  void SetUp() override {
    SKIP_IN_DIRECT_MODE();
    ProxyTest::SetUp();
    admin_ = stack().respite()->admin_address();
    ASSERT_FALSE(admin_.empty()) << "no \"admin listening on http\" line in respite's log";
  }
  std::string admin_;
};

TEST_F(AdminHttpTest, ProbesAndErrors) {
  HttpReply live = get(admin_, "/livez");
  EXPECT_EQ(live.status, 200);
  EXPECT_EQ(live.body, "ok\n");
  HttpReply ready = get(admin_, "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, "ready: 1 of 1 pooled connections to Redis are ready\n");
  EXPECT_NE(ready.headers.find("Content-Length: "), std::string::npos);
  EXPECT_EQ(get(admin_, "/nope").status, 404);
  EXPECT_EQ(get(admin_, "/livez?verbose=1").status, 200);  // the query string is not part of the path
  HttpReply post = http(admin_, "POST /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.headers.find("Allow: GET, HEAD"), std::string::npos);
  HttpReply head = http(admin_, "HEAD /livez HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(http(admin_, "NONSENSE\r\n\r\n").status, 400);
  EXPECT_EQ(http(admin_, "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n").status, 400);
}

TEST_F(AdminHttpTest, ReadyzFollowsRedis) {
  stack().redis().stop();
  HttpReply r;
  EXPECT_TRUE(poll_until([&] { return (r = get(admin_, "/readyz")).status == 503; }, deadline_in(kWait), 20ms));
  EXPECT_EQ(r.body, "upstream unreachable: 0 of 1 pooled connections to Redis are ready\n");
  EXPECT_EQ(get(admin_, "/livez").status, 200);  // alive all the same
  stack().redis().restart();
  EXPECT_TRUE(poll_until([&] { return get(admin_, "/readyz").status == 200; }, deadline_in(10s), 20ms));
}

TEST_F(AdminHttpTest, MetricsMoveWithTrafficAndPassPromtool) {
  const HttpReply before = get(admin_, "/metrics");
  ASSERT_EQ(before.status, 200);
  EXPECT_NE(before.headers.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  Client c = connect();
  for (int i = 0; i < 10; ++i) ASSERT_EQ(c.call({"SET", cat("m:", i), "v"}), "+OK");
  const HttpReply after = get(admin_, "/metrics");
  EXPECT_GE(sample(after.body, "respite_commands_total") - sample(before.body, "respite_commands_total"), 10)
      << after.body;
  EXPECT_GE(sample(after.body, "respite_command_outcomes_total{outcome=\"forwarded\"}") -
                sample(before.body, "respite_command_outcomes_total{outcome=\"forwarded\"}"),
            10);
  EXPECT_EQ(sample(after.body, "respite_ready"), 1);
  EXPECT_EQ(sample(after.body, "respite_upstream_connections{state=\"ready\"}"), 1);
  EXPECT_NE(after.body.find("respite_build_info{version=\""), std::string::npos);

  // promtool's own check of the exposition format and naming conventions.
  if (system("command -v promtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "promtool not installed";
  TempDir dir;
  const std::string path = dir.path() + "/metrics.txt";
  std::ofstream(path) << after.body;
  const std::string cmd = "promtool check metrics < " + path + " > " + dir.path() + "/promtool.out 2>&1";
  const int rc = system(cmd.c_str());
  std::ifstream out(dir.path() + "/promtool.out");
  std::string report((std::istreambuf_iterator<char>(out)), {});
  EXPECT_EQ(rc, 0) << report << "\n" << after.body;
  EXPECT_EQ(report, "") << "promtool has remarks";
}

TEST_F(AdminHttpTest, LatencyHistogramsPlaceASlowCommand) {
  // A script that keeps Redis busy for 60 ms: one observation above 50 ms in both the request
  // histogram and the upstream round-trip one; ten quick GETs add ten observations.
  const std::string req = "respite_request_duration_seconds";
  const std::string rtt = "respite_upstream_rtt_seconds";
  const std::string before = get(admin_, "/metrics").body;
  Client c = connect();
  for (int i = 0; i < 10; ++i) ASSERT_EQ(c.call({"GET", "lat:none"}), "(nil)");
  const std::string quick = get(admin_, "/metrics").body;
  EXPECT_EQ(sample(quick, req + "_count") - sample(before, req + "_count"), 10) << quick;
  EXPECT_EQ(sample(quick, rtt + "_count") - sample(before, rtt + "_count"), 10) << quick;
  const char* busy =
      "local s = redis.call('TIME') "
      "repeat local n = redis.call('TIME') until (n[1] - s[1]) * 1000000 + (n[2] - s[2]) >= 60000 "
      "return 1";
  ASSERT_EQ(c.call({"EVAL", busy, "0"}), ":1");
  const std::string after = get(admin_, "/metrics").body;
  for (const std::string& h : {req, rtt}) {
    EXPECT_EQ(sample(after, h + "_count") - sample(quick, h + "_count"), 1) << h;
    EXPECT_EQ(sample(after, h + "_bucket{le=\"0.05\"}") - sample(quick, h + "_bucket{le=\"0.05\"}"), 0) << h;
    EXPECT_EQ(sample(after, h + "_bucket{le=\"+Inf\"}") - sample(quick, h + "_bucket{le=\"+Inf\"}"), 1) << h;
    EXPECT_GE(sample(after, h + "_sum") - sample(quick, h + "_sum"), 0.06) << h;
  }
  // RESPITE STATS shows the same distributions as quantile estimates.
  const std::string stats = c.call({"RESPITE", "STATS"});
  EXPECT_NE(stats.find("request_latency_count:"), std::string::npos) << stats;
  EXPECT_NE(stats.find("rtt_p99_us:"), std::string::npos) << stats;
}

TEST_F(AdminHttpTest, StatsIsJson) {
  HttpReply s = get(admin_, "/stats");
  EXPECT_EQ(s.status, 200);
  EXPECT_NE(s.headers.find("Content-Type: application/json"), std::string::npos);
  ASSERT_FALSE(s.body.empty());
  EXPECT_EQ(s.body.front(), '{');
  EXPECT_NE(s.body.find("\"respite_commands_total\": "), std::string::npos) << s.body;
  // python3 (always there: scripts/deps.sh) parses it.
  TempDir dir;
  std::ofstream(dir.path() + "/stats.json") << s.body;
  const std::string cmd = "/usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' " + dir.path() +
                          "/stats.json";
  EXPECT_EQ(system(cmd.c_str()), 0) << s.body;
}

TEST_F(AdminHttpTest, ReadyzTurnsUnavailableAsSoonAsTheDrainStarts) {
  // A blocked client keeps the drain going; meanwhile /readyz says so.
  const std::string forwarded = "respite_command_outcomes_total{outcome=\"forwarded\"}";
  const double sent_before = sample(get(admin_, "/metrics").body, forwarded);
  RawConn blocked = stack().raw();
  ASSERT_TRUE(blocked.send_all(resp_command({"BLPOP", "admin:none", "1"}), deadline_in(kWait)));
  // Wait until respite has sent it to Redis (on a dedicated connection it opens first).
  ASSERT_TRUE(poll_until([&] { return sample(get(admin_, "/metrics").body, forwarded) > sent_before; },
                         deadline_in(kWait), 10ms));
  stack().respite()->send_signal(SIGTERM);
  HttpReply r;
  EXPECT_TRUE(poll_until([&] { return (r = get(admin_, "/readyz")).status == 503; }, deadline_in(kWait), 10ms));
  EXPECT_EQ(r.body, "draining: respite is shutting down\n");
  EXPECT_EQ(next_reply(blocked), "*-1\r\n");  // the blocked command still got its answer
  auto status = stack().respite()->wait_exit(deadline_in(kWait));
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->ok()) << status->describe();
}

}  // namespace
}  // namespace respite::test
