// The admin listener's endpoints: /livez, /readyz, /metrics (Prometheus text format) and
// /stats (the same figures as JSON). Figures are read from the modules when asked for.
#pragma once

#include <string>
#include <vector>

#include "admin/http_server.h"
#include "obs/histogram.h"

namespace respite::proxy {
class Server;
}
namespace respite::upstream {
class UpstreamPool;
}
namespace respite::cache {
class NearCache;
}
namespace respite::ratelimit {
class Limiter;
}

namespace respite::admin {

// One exported figure: a counter, a gauge or a latency histogram, with optional labels.
struct Figure {
  std::string name;    // Prometheus name, "respite_..." (counters end in _total, histograms in _seconds)
  std::string help;    // the HELP line
  bool counter;        // TYPE counter, else gauge (ignored for histograms)
  std::string labels;  // `rule="per-client"` (rendered inside {}), or ""
  double value;        // counters and gauges
  const obs::Histogram* histogram = nullptr;  // set: TYPE histogram, buckets in seconds
};

class Endpoints {
 public:
  Endpoints(proxy::Server& server, upstream::UpstreamPool& pool, cache::NearCache& cache,
            ratelimit::Limiter& limiter, std::string version);

  HttpResponse handle(const HttpRequest& req) const;

  // Whether respite can serve now, and why not.
  bool ready(std::string& reason) const;
  std::vector<Figure> figures() const;

 private:
  proxy::Server& server_;
  upstream::UpstreamPool& pool_;
  cache::NearCache& cache_;
  ratelimit::Limiter& limiter_;
  std::string version_;
};

// Prometheus text exposition format (0.0.4) of `figures`: HELP and TYPE once per name.
std::string render_prometheus(const std::vector<Figure>& figures);
// {"respite_x_total": 1, "respite_y{rule=\"a\"}": 2, ...}; a histogram gives its _count, _sum
// and p50/p90/p99 estimates in seconds.
std::string render_json(const std::vector<Figure>& figures);

}  // namespace respite::admin
