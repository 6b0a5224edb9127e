// UpstreamPool: the fixed set of shared (multiplexed) connections to one Redis.
//
// Clients are spread over the connections by a per-client hint; a client keeps using the
// same connection while it is ready, so its requests reach Redis in order on one socket.
// Dedicated (pinned) connections for stateful clients will be handed out from here too.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "config/config.h"
#include "upstream/upstream_conn.h"

namespace respite::upstream {

class UpstreamPool {
 public:
  UpstreamPool(net::Loop& loop, const config::UpstreamConfig& cfg);
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
  size_t size() const { return conns_.size(); }
  size_t inflight() const;

 private:
  void on_state(UpstreamConn& c, UpstreamConn::Event e);

  const config::UpstreamConfig& cfg_;                  // settings; outlive the pool
  std::vector<std::unique_ptr<UpstreamConn>> conns_;   // the shared connections
  size_t ready_ = 0;                                   // how many are ready now
  bool announced_down_ = false;                        // "all down" was logged
  bool stopping_ = false;                              // shutdown() called
  std::vector<bool> tried_;                            // per connection: first attempt finished
  size_t untried_ = 0;                                 // connections still on their first attempt
  std::function<void()> settled_;                      // start()'s callback, until it runs
};

}  // namespace respite::upstream
