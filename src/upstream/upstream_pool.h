// UpstreamPool: the fixed set of shared (multiplexed) connections to one Redis.
//
// Clients are spread over the connections by a per-client hint; a client keeps using the
// same connection while it is ready, so its requests reach Redis in order on one socket.
// Dedicated (pinned) connections for stateful clients will be handed out from here too.
#pragma once

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

  void start();
  // Fails everything in flight with `error_line` and stops reconnecting.
  void shutdown(std::string_view error_line);

  // A ready connection for the client with this hint (preferring hint % size), or null
  // when none is ready.
  UpstreamConn* pick(size_t hint);
  size_t ready_count() const { return ready_; }
  size_t size() const { return conns_.size(); }
  size_t inflight() const;

 private:
  void on_state(UpstreamConn& c, bool ready);

  const config::UpstreamConfig& cfg_;                  // settings; outlive the pool
  std::vector<std::unique_ptr<UpstreamConn>> conns_;   // the shared connections
  size_t ready_ = 0;                                   // how many are ready now
  bool announced_down_ = false;                        // "all down" was logged
  bool stopping_ = false;                              // shutdown() called
};

}  // namespace respite::upstream
