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
//
// Roles: a Shared connection is one of the pool's multiplexed connections and reconnects
// by itself. A Dedicated connection is pinned to one client at a time (transactions,
// blocking commands, pub/sub...): it never reconnects (its state would be gone), learns
// its own CLIENT ID during the handshake, and can be wiped with reset_session() before
// the next client uses it.
//
// Push frames: Redis sends pub/sub messages and MONITOR lines without a request. A request
// sent with a PushKind other than None marks the stretch of the reply stream where such
// frames may appear; there, frames that look like one go to the push sink instead of
// answering the oldest request.
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
#include "obs/histogram.h"
#include "resp/reply_framer.h"
#include "upstream/reply_sink.h"

namespace respite::net {
class Loop;
}

namespace respite::upstream {

class UpstreamConn : private net::StreamHandler {
 public:
  enum class State { Idle, Connecting, Handshaking, Ready };
  // What the pool hears: became ready, lost readiness, or a connect/handshake attempt failed;
  // Unavailable: a reply said Redis cannot serve now (-LOADING, -MASTERDOWN, -READONLY), once
  // per such reply; Available: the first normal reply after those. (The circuit breaker
  // counts them; readiness does not change.)
  enum class Event { Ready, Lost, AttemptFailed, Unavailable, Available };
  // Invalidation: the near-cache's connection subscribed to __redis__:invalidate (reconnects
  // like a shared one; learns its CLIENT ID; every reply outside requests is a push frame).
  enum class Role : uint8_t { Shared, Dedicated, Invalidation };
  // Which unsolicited frames may arrive while a request is at the head of the queue.
  enum class PushKind : uint8_t { None, Pubsub, Monitor };
  using StateFn = std::function<void(UpstreamConn&, Event)>;

  UpstreamConn(net::Loop& loop, const config::UpstreamConfig& cfg, int index, StateFn on_state,
               Role role = Role::Shared);
  ~UpstreamConn() override;
  UpstreamConn(const UpstreamConn&) = delete;
  UpstreamConn& operator=(const UpstreamConn&) = delete;

  // Starts connecting (no-op unless Idle with no reconnect pending).
  void start();
  // Drops the socket now, as if Redis had closed it (failing what is in flight); a shared or
  // invalidation connection then reconnects with backoff.
  void abort(std::string_view why);
  // Closes the socket for good (shutdown); in-flight requests fail with `error_line`.
  void shutdown(std::string_view error_line);
  // Dedicated connections: sends RESET and the handshake again, so no state of the last
  // client survives; Event::Ready follows (or Lost if Redis refuses). Needs ready() and
  // nothing in flight.
  void reset_session();
  // Where push frames go (a dedicated connection's current client); null: none.
  void set_push_sink(ReplySink* sink) {
    push_sink_ = sink;
    if (!sink) idle_push_ = PushKind::None;
  }
  // Dedicated connections: writes `raw` (SYNC/PSYNC) and from then on passes bytes through
  // unframed, both ways (send_tunnel, ReplySink::on_tunnel). Needs ready() and nothing in
  // flight; false otherwise. The connection is never reused afterwards.
  bool start_tunnel(ReplySink* sink, std::string_view raw);
  void send_tunnel(std::string_view bytes);
  bool tunnel() const { return tunnel_sink_ != nullptr; }

  bool ready() const { return state_ == State::Ready; }
  State state() const { return state_; }
  int index() const { return index_; }
  Role role() const { return role_; }
  // Redis's id for this connection (CLIENT ID, learned by dedicated connections); 0 unknown.
  int64_t upstream_id() const { return upstream_id_; }
  size_t inflight() const { return queue_.size(); }

  // Queues one request. `raw` must be a complete RESP multibulk request. Returns a
  // ticket for cancel(), or 0 when the request was not accepted (not ready, or too
  // many in flight) — the caller then answers the client itself.
  // A request answered by `replies` frames (SUBSCRIBE a b c: 3) takes that many tickets and
  // cookies, consecutive from the returned ones; each frame is delivered on its own.
  uint64_t send_raw(ReplySink* sink, uint64_t cookie, std::string_view raw, size_t replies = 1,
                    PushKind push = PushKind::None);
  // Same, encoding `args` as a multibulk request (for inline commands).
  uint64_t send_args(ReplySink* sink, uint64_t cookie, std::span<const std::string_view> args,
                     size_t replies = 1, PushKind push = PushKind::None);
  // Forgets the sink of an in-flight request; unknown tickets are ignored.
  void cancel(uint64_t ticket);
  // Whether a reply says Redis cannot serve now: -LOADING (loading its dataset), -MASTERDOWN
  // (a replica without its primary), -READONLY (a primary that became a replica).
  static bool cannot_serve(std::string_view raw) {
    return raw.starts_with("-LOADING") || raw.starts_with("-MASTERDOWN") || raw.starts_with("-READONLY");
  }
  // Where round-trip times go: from writing a request's batch to reading its reply (null:
  // not measured). The histogram must outlive the connection.
  void set_rtt_histogram(obs::Histogram* h) { rtt_ = h; }

 private:
  enum class Step : uint8_t { Auth, Select, Reset, Name, Id, Subscribe };  // handshake replies awaited
  struct Pending {
    ReplySink* sink;      // who gets the reply; null when cancelled or internal
    uint64_t cookie;      // the sink's identifier for the request
    uint64_t sent_ms;     // loop time when queued, for the command timeout
    PushKind push;        // push frames that may precede this request's reply
  };

  void connect();
  void on_connected(net::Stream* s, int status, const std::string& error);
  void begin_handshake();
  void write_handshake();
  void on_handshake_reply(std::string_view raw);
  void become_ready();
  void drop(std::string_view why, std::string_view error_line);
  void schedule_reconnect();
  void check_timeout();
  bool accept_request() const;
  uint64_t push(ReplySink* sink, uint64_t cookie, size_t replies, PushKind push);
  bool is_push_frame(std::string_view raw) const;
  // A reply's first bytes: Event::Unavailable / Available for the circuit breaker.
  void note_reply_kind(std::string_view raw);

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
  Role role_;                            // shared (reconnects) or dedicated (never does)
  ReplySink* push_sink_ = nullptr;       // receives push frames (dedicated connections)
  ReplySink* tunnel_sink_ = nullptr;     // tunnel mode: receives every byte read
  PushKind idle_push_ = PushKind::None;  // push frames expected when nothing is in flight
  int64_t upstream_id_ = 0;              // CLIENT ID reply (dedicated connections)
  State state_ = State::Idle;            // connection state
  net::Connector connector_;             // outgoing connect in progress
  net::Stream* stream_ = nullptr;        // current socket (self-deleting), or null
  resp::ReplyFramer framer_;             // finds reply boundaries in stream_->input()
  size_t framed_fed_ = 0;                // bytes of stream_->input() already fed to framer_
  core::RingQueue<Pending> queue_;          // requests in flight, oldest first
  uint64_t head_ticket_ = 1;             // ticket of queue_.front()
  struct Batch {
    uint64_t last_ticket;                // its newest request
    uint64_t written_ns;                 // the loop's clock when it was handed to the socket
  };
  core::RingQueue<Batch> batch_ends_;    // written batches still awaiting replies, oldest first
  obs::Histogram* rtt_ = nullptr;        // round-trip times, or null
  bool unavailable_ = false;             // the last reply said Redis cannot serve (Event::Unavailable)
  uint64_t last_flushed_ticket_ = 0;     // newest ticket handed to the socket
  bool flush_waiting_ = false;           // requests queued while max_batches_in_flight were out
  core::RingQueue<Step> handshake_;      // handshake replies still expected, in order
  int attempts_ = 0;                     // consecutive failed connects (for backoff)
  bool was_ready_ = false;               // has ever been ready (for "restored" logs)
  bool stopping_ = false;                // shutdown() called: never reconnect
  net::Timer reconnect_timer_;           // backoff delay before the next connect
  net::Timer deadline_timer_;            // connect/handshake deadline, and command timeouts
};

}  // namespace respite::upstream
