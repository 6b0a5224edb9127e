// ClientSession: one client connection. Frames its requests, routes each one (answered
// locally, multiplexed on a shared upstream connection, or sent on the client's own pinned
// connection) and releases replies to the client strictly in request order.
//
// Ordering: every reply the client is owed takes a slot in `slots_`, numbered by a
// per-session sequence. A reply fills its slot; the prefix of filled slots is written
// out. A request answered by several frames (SUBSCRIBE a b c) takes one slot per frame.
// A client's requests are in flight on at most one upstream connection at a time: a
// request for another connection (shared -> pinned or back) waits until the replies from
// the first are in, so Redis sees the client's commands in the order they were sent.
//
// Pinning: the session mirrors the connection state Redis keeps for it (MULTI, WATCH,
// subscriptions, MONITOR, tracking, selected db), updated as requests are sent, which is
// the order Redis applies them. A request that creates state, or may block, borrows a
// dedicated connection from the pool; when no state is left and nothing is in flight the
// connection goes back (wiped with RESET if the client changed it).
//
// The code is in several files: client_session.cpp (lifecycle, sending, pinning, reply
// order), session_commands.cpp (what each kind of request does), session_connection.cpp (the
// connection commands: CLIENT, AUTH, HELLO, SELECT, RESET), session_cache.cpp (the
// near-cache), session_limits.cpp (rate limits), session_admin.cpp (RESPITE commands) and
// session_fallback.cpp (requests answered while Redis is unreachable).
//
// Lifetime: owned by the Server; deleted after its socket's close callback. Before that,
// every request still in flight is cancelled and the pinned connection is returned (or
// closed, when a request on it is still running, e.g. a BLPOP), so no upstream calls back
// into a deleted session.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "cache/policy.h"
#include "cmd/command_policy.h"
#include "config/config.h"
#include "core/ring_queue.h"
#include "net/stream.h"
#include "ratelimit/limiter.h"
#include "resp/request_framer.h"
#include "upstream/reply_sink.h"
#include "upstream/upstream_conn.h"
#include "upstream/upstream_pool.h"

namespace respite::proxy {

class Server;

class ClientSession final : private net::StreamHandler,
                            private upstream::ReplySink,
                            private upstream::PinnedOwner {
 public:
  using Args = std::span<const std::string_view>;

  ClientSession(Server& server, net::Stream* stream, uint64_t id);
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  void start();
  // Stops reading; the connection closes once every pending reply is written.
  void drain();
  // Closes now; pending replies are dropped.
  void close();
  // Drain deadline: every reply still awaited is answered `error_line` (in its place), then
  // the connection closes once that is written.
  void fail_pending(std::string_view error_line);
  uint64_t id() const { return id_; }
  uint64_t last_activity_ms() const { return last_activity_ms_; }
  bool idle() const { return slots_.empty() && stream_ && stream_->pending_output() == 0 && !pinned_; }

  // What CLIENT LIST and CLIENT INFO show for this client (one line, no newline).
  void describe(std::string& out) const;
  bool subscribed() const { return !channels_.empty() || !patterns_.empty() || !shard_channels_.empty(); }
  const std::string& user() const { return user_; }
  const std::string& peer() const { return peer_; }
  const std::string& local_address() const { return local_; }
  // Redis's id of this client's pinned connection (CLIENT UNBLOCK, TRACKING REDIRECT); 0 if none.
  int64_t pinned_upstream_id() const;
  // A request held by a delay rate limit may go now (Server::hold()).
  void release_hold();

 private:
  // What the near-cache must do when a write's reply arrives (see session_cache.cpp).
  enum class CacheAfter : uint8_t { None, Invalidate, Fence, Flush };
  struct Slot {
    uint64_t seq;                      // position in the session's reply order
    upstream::UpstreamConn* conn;      // where the reply comes from (null: local)
    uint64_t ticket;                   // the upstream's ticket, for cancel() (a cache fetch's id if `fetch`)
    bool ready;                        // `data` holds the complete reply
    bool discard;                      // CLIENT REPLY OFF/SKIP: the reply is not sent
    std::string_view replace;          // non-empty: sent instead of the upstream's reply
    std::string data;                  // reply bytes that arrived before earlier slots'
    bool fetch = false;                // the near-cache sends the request (NearCache::cancel)
    CacheAfter after = CacheAfter::None;  // near-cache work when the reply arrives
    uint64_t start_ns = 0;             // the loop's clock when the slot was taken (request latency)
  };
  // A key a write in flight changes: invalidated again when the write's reply arrives.
  struct WriteMark {
    uint64_t seq;                      // the write's slot
    uint64_t key_hash;                 // cache::hash_key of the key
  };
  enum class Pin : uint8_t { Ready, Wait, Refused, Failed };
  // What the rate limits say about a request: go on, wait (held; framed again on release),
  // or done (refused: the error reply is queued).
  enum class Gate : uint8_t { Go, Wait, Done };

  ~ClientSession() override;

  void process_input();
  // A reply owed since `start_ns` is on its way to the client: request latency.
  void observe_latency(uint64_t start_ns);
  // False: the request cannot go yet (a connection switch or a pinned connection that is
  // still connecting); it stays in the input buffer and is framed again on resume().
  bool handle(const resp::Request& req, std::string_view raw);
  bool handle_in_multi(const cmd::Decision& d, const resp::Request& req, std::string_view raw);
  bool handle_subscribed(const cmd::Decision& d, const resp::Request& req, std::string_view raw);
  bool handle_client(const cmd::Decision& d, const resp::Request& req, std::string_view raw);
  bool handle_subscription(const cmd::Decision& d, const resp::Request& req, std::string_view raw);
  void handle_auth(Args args);
  void handle_hello(Args args);
  bool handle_select(const resp::Request& req, std::string_view raw);
  // RESPITE admin commands (session_admin.cpp).
  bool handle_respite(Args args);
  bool handle_respite_cache(Args args);
  bool handle_respite_ratelimit(Args args);
  // While Redis is unreachable (session_fallback.cpp).
  bool handle_fallback(const cmd::Decision& d, Args args);
  bool fallback_refuses_kind(const cmd::Decision& d) const;
  void fallback_seed(const cmd::Decision& d, Args args);

  // Rate limits (session_limits.cpp). The common case first, inline: a known command other
  // than QUIT and EXEC that every applying rule admits at once (and is charged). False:
  // nothing was charged, rate_gate() decides.
  bool limits_pass_fast(const cmd::Decision& d) {
    if (limits_stale_ || !d.info || d.kind == cmd::Kind::Exec || d.kind == cmd::Kind::Quit) return false;
    if (!limiter_.admit_fast(limits_, d.info, batch_now_)) return false;
    limit_admitted_ = true;
    return true;
  }
  Gate rate_gate(const cmd::Decision& d, Args args);
  // "user:<name>", "name:<name>" or "addr:<peer>": who the limits see (docs/rate-limits.md).
  std::string limit_identity() const;
  void identity_changed() { limits_stale_ = true; }

  // The near-cache (session_cache.cpp).
  bool forward_plain(const cmd::Decision& d, const resp::Request& req, std::string_view raw);
  bool cache_read(Args args, const resp::Request& req, std::string_view raw);
  bool cache_read_multi(cache::Role role, Args args, const resp::Request& req, std::string_view raw);
  // Before sending a request that may write: invalidates its keys; returns what is due again
  // at its reply.
  CacheAfter cache_before_write(const cmd::Decision& d, Args args);
  CacheAfter cache_before_write(cache::Role role, const cmd::Decision& d, Args args);
  // After the send (the slot at `before`, if one went upstream): records that work.
  void cache_after_send(uint64_t before, CacheAfter after);
  // A write's reply arrived (or will never come).
  void cache_on_reply(const Slot& s);
  bool fenced() const;
  bool handle_tracking(const resp::Request& req, std::string_view raw);
  void handle_reset_locally();

  // Sending. Each returns false when the request must wait (see handle()).
  bool forward_shared(const resp::Request& req, std::string_view raw);
  bool forward_pinned(const resp::Request& req, std::string_view raw, size_t replies = 1,
                      upstream::UpstreamConn::PushKind push = upstream::UpstreamConn::PushKind::None,
                      std::string_view replace = {});
  // Sends on the pinned connection if there is one, else on a shared one.
  bool forward(const resp::Request& req, std::string_view raw);
  bool send_args_on(upstream::UpstreamConn* conn, Args args, std::string_view replace = {});
  bool send_on(upstream::UpstreamConn* conn, const resp::Request& req, std::string_view raw, size_t replies,
               upstream::UpstreamConn::PushKind push, std::string_view replace);
  // After a send: the slots for its `replies` frames (ticket 0: refused, answered busy).
  void track_sent(upstream::UpstreamConn* conn, uint64_t ticket, size_t replies, std::string_view replace);
  // After NearCache::fetch(): the slot for its reply (id 0: refused, answered busy).
  void track_fetch(upstream::UpstreamConn* conn, uint64_t id);
  // Makes sure a dedicated connection is pinned; Refused/Failed have been answered.
  Pin ensure_pinned();
  void maybe_unpin();
  void release_pin(bool closing);
  bool has_state() const;
  void clear_state();
  upstream::UpstreamConn* route_upstream();
  bool may_send_on(const upstream::UpstreamConn* conn) const { return inflight_ == 0 || inflight_conn_ == conn; }
  upstream::UpstreamConn::PushKind push_kind() const;

  void reply_local(std::string_view bytes);
  void reply_error(std::string_view bytes);
  void fill(uint64_t cookie, std::string_view bytes);
  void release_ready_slots();
  void after_output();
  void update_reading();
  void finish_after_replies();
  void cancel_inflight();
  void resume();

  // net::StreamHandler
  void on_readable(net::Stream& s) override;
  void on_read_error(net::Stream& s, int status) override;
  void on_write_progress(net::Stream& s) override;
  void on_closed(net::Stream& s) override;
  // upstream::ReplySink
  void on_reply(uint64_t cookie, std::string_view raw) override;
  void on_failed(uint64_t cookie, std::string_view error_line) override;
  void on_push(std::string_view raw) override;
  void on_tunnel(std::string_view bytes) override;
  // upstream::PinnedOwner
  void on_pinned_ready(upstream::UpstreamConn& c) override;
  void on_pinned_lost(upstream::UpstreamConn& c) override;

  Server& server_;                         // owner; limits, pool, accounting
  const config::ClientConfig& ccfg_;       // client limits (owned by the server's config)
  net::Stream* stream_;                    // the client socket (self-deleting); null after close
  uint64_t id_;                            // CLIENT ID: unique in this process
  resp::RequestFramer framer_;             // frames requests in stream_->input()
  resp::Request request_;                  // reused request (argument views)
  core::RingQueue<Slot> slots_;            // replies owed to the client, in order
  uint64_t next_seq_ = 0;                  // sequence number of the next slot
  upstream::UpstreamConn* upstream_ = nullptr;  // shared connection this client uses now
  size_t inflight_ = 0;                    // slots awaiting an upstream reply
  const upstream::UpstreamConn* inflight_conn_ = nullptr;  // where those are (one connection)
  uint64_t last_activity_ms_ = 0;          // loop time of the last read (idle timeout)
  uint64_t created_ms_ = 0;                // loop time of the accept (CLIENT LIST age)
  bool paused_ = false;                    // reading stopped by backpressure
  bool stalled_ = false;                   // a request waits for a connection (see handle())
  bool finishing_ = false;                 // QUIT/protocol error/drain: close after pending replies
  bool closed_ = false;                    // close() called; ignore late callbacks

  // Pinned connection.
  upstream::UpstreamConn* pinned_ = nullptr;  // dedicated connection, or null
  bool pin_ready_ = false;                 // pinned_ has finished connecting
  bool pin_dirty_ = false;                 // the client changed its state: RESET before reuse
  bool pin_failed_ = false;                // the last pin attempt could not connect
  bool pin_reusable_ = true;               // false: a tracking REDIRECT target; closed on release

  // The connection state Redis keeps for this client, as of the last request sent.
  bool in_multi_ = false;                  // between MULTI and EXEC/DISCARD
  bool multi_poisoned_ = false;            // a command was refused inside MULTI: EXEC aborts
  bool multi_refused_ = false;             // MULTI itself was refused: refuse until EXEC/DISCARD
  std::string multi_refusal_;              // the error given to commands after a refused MULTI
  int multi_queued_ = 0;
  bool multi_flush_ = false;               // a FLUSHALL/FLUSHDB/SWAPDB is queued: EXEC flushes the cache                   // commands queued in the transaction (CLIENT LIST)
  bool watching_ = false;                  // WATCH without EXEC/DISCARD/UNWATCH since
  bool monitor_ = false;                   // MONITOR
  bool replica_ = false;                   // REPLCONF / SYNC / PSYNC: replica state on the pinned connection
  bool tunnel_ = false;                    // after SYNC/PSYNC: bytes pass through unframed
  bool tracking_ = false;                  // CLIENT TRACKING ON
  int64_t redirect_ = -1;                  // tracking redirect (respite client id), -1 off
  int db_ = 0;                             // selected database
  bool db_unknown_ = false;                // SELECT ran inside a transaction
  std::unordered_set<std::string> channels_;        // SUBSCRIBE
  std::unordered_set<std::string> patterns_;        // PSUBSCRIBE
  std::unordered_set<std::string> shard_channels_;  // SSUBSCRIBE

  // respite's own view of the connection.
  std::string name_;                       // CLIENT SETNAME
  std::string user_ = "default";           // AUTH user
  bool authenticated_ = false;             // AUTH done, or no auth configured
  bool reply_off_ = false;                 // CLIENT REPLY OFF
  bool skip_next_ = false;                 // CLIENT REPLY SKIP: the next command's reply is dropped
  bool discard_ = false;                   // the current request's replies are dropped
  bool name_bypass_ = false;                // the client name matches cache.bypass_clients
  bool cache_bypass_ = false;              // RESPITE CACHE BYPASS ON
  size_t fence_writes_ = 0;                // writes of unknown keys sent, reply not yet in
  uint64_t fence_ping_ = 0;                // the near-cache fence PING this client waits for
  core::RingQueue<WriteMark> marks_;       // keys of writes in flight
  std::vector<size_t> key_positions_;      // scratch: positions of a write's keys
  std::vector<uint64_t> key_hashes_;       // their hashes, until the write is sent
  ratelimit::Limiter& limiter_;            // the server's rate limiter
  ratelimit::ClientLimits limits_;         // the rate-limit rules that apply to this client
  bool limits_stale_ = true;               // the identity changed: resolve limits_ again
  bool limit_admitted_ = false;            // the request being handled has passed the limits
  bool held_ = false;                      // a delay limit holds the next request (stalled_ too)
  std::string fallback_reply_;             // scratch for LocalStore::execute
  std::vector<std::string> fallback_journal_;  // scratch: the journal form of a write
  uint64_t batch_now_ = 0;                 // the loop's clock when process_input began (limits, latency)
  std::vector<const cmd::CommandInfo*> multi_cmds_;  // commands queued in MULTI (charged at EXEC)
  const cmd::CommandInfo* last_cmd_ = nullptr;  // last known command (CLIENT LIST cmd=; NULL if none)
  std::string peer_;                       // client address (CLIENT LIST addr=)
  std::string local_;                      // listener address (CLIENT LIST laddr=)
};

}  // namespace respite::proxy
