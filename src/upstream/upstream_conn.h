// UpstreamConn: one connection to Redis that pipelines requests from many clients and
// hands each reply, in FIFO order, to the sink that sent the request.
//
// Lifecycle: Idle -> Connecting -> Handshaking (AUTH, SELECT, CLIENT SETNAME) -> Ready.
// Any failure drops the socket, fails every request in flight (sink->on_failed), and
// schedules a reconnect with jittered exponential backoff. The object itself lives as
// long as its pool; only the socket comes and goes.
//
// Cancellation: a sink that goes away calls cancel(ticket) for each request it still
// has in flight; the reply is then read and discarded, and the sink is never called.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/ring_queue.h"
#include "net/connector.h"
#include "net/stream.h"
#include "net/timer.h"
#include "resp/reply_framer.h"
#include "upstream/reply_sink.h"

namespace respite::net {
class Loop;
}

namespace respite::upstream {

class UpstreamConn : private net::StreamHandler {
 public:
  enum class State { Idle, Connecting, Handshaking, Ready };
  // What the pool hears: became ready, lost readiness, or a connect/handshake attempt failed.
  enum class Event { Ready, Lost, AttemptFailed };
  using StateFn = std::function<void(UpstreamConn&, Event)>;

  UpstreamConn(net::Loop& loop, const config::UpstreamConfig& cfg, int index, StateFn on_state);
  ~UpstreamConn() override;
  UpstreamConn(const UpstreamConn&) = delete;
  UpstreamConn& operator=(const UpstreamConn&) = delete;

  // Starts connecting (no-op unless Idle with no reconnect pending).
  void start();
  // Closes the socket for good (shutdown); in-flight requests fail with `error_line`.
  void shutdown(std::string_view error_line);

  bool ready() const { return state_ == State::Ready; }
  State state() const { return state_; }
  int index() const { return index_; }
  size_t inflight() const { return queue_.size(); }

  // Queues one request. `raw` must be a complete RESP multibulk request. Returns a
  // ticket for cancel(), or 0 when the request was not accepted (not ready, or too
  // many in flight) — the caller then answers the client itself.
  uint64_t send_raw(ReplySink* sink, uint64_t cookie, std::string_view raw);
  // Same, encoding `args` as a multibulk request (for inline commands).
  uint64_t send_args(ReplySink* sink, uint64_t cookie, std::span<const std::string_view> args);
  // Forgets the sink of an in-flight request; unknown tickets are ignored.
  void cancel(uint64_t ticket);

 private:
  struct Pending {
    ReplySink* sink;      // who gets the reply; null when cancelled or internal
    uint64_t cookie;      // the sink's identifier for the request
    uint64_t sent_ms;     // loop time when queued, for the command timeout
  };

  void connect();
  void on_connected(net::Stream* s, int status, const std::string& error);
  void begin_handshake();
  void on_handshake_reply(std::string_view raw);
  void become_ready();
  void drop(std::string_view why, std::string_view error_line);
  void schedule_reconnect();
  void check_timeout();
  bool accept_request() const;
  uint64_t push(ReplySink* sink, uint64_t cookie);

  // net::StreamHandler
  void on_readable(net::Stream& s) override;
  void on_flush(net::Stream& s) override;
  void on_read_error(net::Stream& s, int status) override;
  void on_write_error(net::Stream& s, int status) override;
  void on_closed(net::Stream& s) override;

  net::Loop& loop_;                      // event loop
  const config::UpstreamConfig& cfg_;    // settings (owned by the caller, outlives us)
  int index_;                            // position in the pool, for logs
  StateFn on_state_;                     // pool's readiness observer
  State state_ = State::Idle;            // connection state
  net::Connector connector_;             // outgoing connect in progress
  net::Stream* stream_ = nullptr;        // current socket (self-deleting), or null
  resp::ReplyFramer framer_;             // finds reply boundaries in stream_->input()
  size_t framed_fed_ = 0;                // bytes of stream_->input() already fed to framer_
  core::RingQueue<Pending> queue_;          // requests in flight, oldest first
  uint64_t head_ticket_ = 1;             // ticket of queue_.front()
  core::RingQueue<uint64_t> batch_ends_; // last ticket of each written batch still awaiting replies
  uint64_t last_flushed_ticket_ = 0;     // newest ticket handed to the socket
  bool flush_waiting_ = false;           // requests queued while max_batches_in_flight were out
  int handshake_left_ = 0;               // handshake replies still expected
  int handshake_optional_ = 0;           // how many of the last handshake replies may be errors
  int attempts_ = 0;                     // consecutive failed connects (for backoff)
  bool was_ready_ = false;               // has ever been ready (for "restored" logs)
  bool stopping_ = false;                // shutdown() called: never reconnect
  net::Timer reconnect_timer_;           // backoff delay before the next connect
  net::Timer deadline_timer_;            // connect/handshake deadline, and command timeouts
};

}  // namespace respite::upstream
