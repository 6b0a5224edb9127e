// ClientSession: one client connection. Frames its requests, routes each one (answered
// locally, or forwarded to an upstream connection), and releases replies to the client
// strictly in request order, whichever source they came from.
//
// Ordering: every request that gets a reply takes a slot in `slots_`, numbered by a
// per-session sequence. A reply fills its slot; the prefix of filled slots is written
// out. Because a session's requests to one upstream connection are answered FIFO, the
// usual case is that a reply fills the head slot and goes straight to the output buffer.
//
// Routing to an upstream goes through `route_upstream()`, the single place that picks the
// connection; a session pinned to a dedicated connection (later) only changes that pick.
//
// Lifetime: owned by the Server; deleted after its socket's close callback. Before that,
// every request it still has in flight is cancelled on its upstream connection, so no
// upstream ever calls back into a deleted session.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/ring_queue.h"
#include "net/stream.h"
#include "resp/request_framer.h"
#include "upstream/reply_sink.h"

namespace respite::upstream {
class UpstreamConn;
}

namespace respite::proxy {

class Server;

class ClientSession final : private net::StreamHandler, private upstream::ReplySink {
 public:
  ClientSession(Server& server, net::Stream* stream, uint64_t id);
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  void start();
  // Stops reading; the connection closes once every pending reply is written.
  void drain();
  // Closes now; pending replies are dropped.
  void close();
  uint64_t id() const { return id_; }
  uint64_t last_activity_ms() const { return last_activity_ms_; }
  bool idle() const { return slots_.empty() && stream_ && stream_->pending_output() == 0; }

 private:
  struct Slot {
    uint64_t seq;                      // position in the session's reply order
    upstream::UpstreamConn* conn;      // where the reply comes from (null: local)
    uint64_t ticket;                   // the upstream's ticket, for cancel()
    bool ready;                        // `data` holds the complete reply
    std::string data;                  // reply bytes that arrived before earlier slots'
  };

  ~ClientSession() override;

  void process_input();
  void handle(const resp::Request& req, std::string_view raw);
  void forward(const resp::Request& req, std::string_view raw);
  upstream::UpstreamConn* route_upstream();
  void reply_local(std::string_view bytes);
  void fill(uint64_t cookie, std::string_view bytes);
  void release_ready_slots();
  void after_output();
  void update_reading();
  void finish_after_replies();
  void cancel_inflight();

  // net::StreamHandler
  void on_readable(net::Stream& s) override;
  void on_read_error(net::Stream& s, int status) override;
  void on_write_progress(net::Stream& s) override;
  void on_closed(net::Stream& s) override;
  // upstream::ReplySink
  void on_reply(uint64_t cookie, std::string_view raw) override;
  void on_failed(uint64_t cookie, std::string_view error_line) override;

  Server& server_;                         // owner; limits, pool, accounting
  const config::ClientConfig& ccfg_;       // client limits (owned by the server's config)
  net::Stream* stream_;                    // the client socket (self-deleting); null after close
  uint64_t id_;                            // unique session number (logs, pool spreading)
  resp::RequestFramer framer_;             // frames requests in stream_->input()
  resp::Request request_;                  // reused request (argument views)
  core::RingQueue<Slot> slots_;               // replies owed to the client, in order
  uint64_t next_seq_ = 0;                  // sequence number of the next slot
  upstream::UpstreamConn* upstream_ = nullptr;  // shared connection this client uses now
  uint64_t last_activity_ms_ = 0;          // loop time of the last read (idle timeout)
  bool paused_ = false;                    // reading stopped by backpressure
  bool finishing_ = false;                 // QUIT/protocol error/drain: close after pending replies
  bool closed_ = false;                    // close() called; ignore late callbacks
};

}  // namespace respite::proxy
