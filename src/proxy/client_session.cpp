#include "proxy/client_session.h"

#include "auth/authenticator.h"
#include "cache/near_cache.h"
#include "core/errors.h"
#include "net/loop.h"
#include "obs/log.h"
#include "proxy/server.h"

namespace respite::proxy {
namespace {

using PushKind = upstream::UpstreamConn::PushKind;

}  // namespace

ClientSession::ClientSession(Server& server, net::Stream* stream, uint64_t id)
    : server_(server),
      ccfg_(server.config().client),
      stream_(stream),
      id_(id),
      framer_(server.request_limits()),
      db_(server.shared_db()),
      authenticated_(!server.auth().required()),
      limiter_(server.limiter()),
      peer_(stream->peer()),
      local_(stream->local()) {
  stream_->set_handler(this);
}

ClientSession::~ClientSession() = default;

void ClientSession::start() {
  last_activity_ms_ = created_ms_ = server_.loop().now_ms();
  if (int rc = stream_->start_reading(); rc != 0) {
    obs::debug("client {}: cannot start reading: {}", id_, uv_strerror(rc));
    close();
  }
}

void ClientSession::on_readable(net::Stream&) {
  last_activity_ms_ = server_.loop().now_ms();
  process_input();
}

void ClientSession::process_input() {
  // Read fresh: process_input also runs from write completions and releases, not only reads.
  batch_now_ = server_.loop().stamp();
  auto& in = stream_->input();
  const auto& cfg = ccfg_;
  if (tunnel_) {
    // After SYNC/PSYNC the client speaks the replication protocol (REPLCONF ACK...): bytes
    // pass through to its dedicated connection unframed.
    if (!in.empty() && pinned_) pinned_->send_tunnel(in.view());
    in.consume(in.size());
    return;
  }
  while (!closed_ && !finishing_ && !paused_ && !stalled_ && !tunnel_) {
    size_t consumed = 0;
    auto st = framer_.next(in.view(), request_, consumed);
    if (st == resp::FrameStatus::NeedMore) {
      if (in.size() > cfg.query_buffer_limit) {
        obs::warn("client {} ({}): query buffer limit of {} bytes exceeded, closing", id_, peer_,
                  cfg.query_buffer_limit);
        ++server_.stats().limit_closes;
        reply_local("-ERR query buffer limit exceeded\r\n");
        finish_after_replies();
        return;
      }
      size_t need = framer_.bytes_needed_hint();
      stream_->set_read_size_hint(need > 64 * 1024 ? need : 0);
      break;
    }
    if (st == resp::FrameStatus::Error) {
      ++server_.stats().protocol_errors;
      obs::debug("client {} ({}): {}", id_, peer_, framer_.error());
      reply_local(errors::protocol_error(framer_.error()));
      finish_after_replies();
      return;
    }
    if (!request_.args.empty()) {
      bool skip = skip_next_;
      if (!handle(request_, std::string_view(in.data(), consumed))) {
        // Framed again on resume(); the framer holds no state between complete requests.
        skip_next_ = skip;
        stalled_ = true;
        break;
      }
      limit_admitted_ = false;
      ++server_.stats().commands;
    }
    if (closed_) return;
    in.consume(consumed);
    if (slots_.size() >= cfg.max_pending || stream_->pending_output() >= cfg.output_high_water) update_reading();
  }
  if (tunnel_ && !closed_ && !in.empty()) {
    pinned_->send_tunnel(in.view());  // what the client sent right behind SYNC/PSYNC
    in.consume(in.size());
  }
  // Keep memory small between bursts.
  if (in.empty()) in.shrink_if_empty(256 * 1024);
}

void ClientSession::resume() {
  if (!stalled_ || closed_ || held_) return;
  stalled_ = false;
  process_input();
}

// ---- sending -------------------------------------------------------------------------

upstream::UpstreamConn* ClientSession::route_upstream() {
  if (upstream_ && upstream_->ready()) return upstream_;
  upstream_ = server_.pool().pick(static_cast<size_t>(id_));
  return upstream_;
}

bool ClientSession::forward(const resp::Request& req, std::string_view raw) {
  if (pinned_) {
    if (!pin_ready_) return false;
    return forward_pinned(req, raw, 1, push_kind());
  }
  return forward_shared(req, raw);
}

bool ClientSession::forward_shared(const resp::Request& req, std::string_view raw) {
  upstream::UpstreamConn* conn = route_upstream();
  if (!conn) {
    reply_error(errors::kUpstreamUnavailable);
    return true;
  }
  return send_on(conn, req, raw, 1, PushKind::None, {});
}

bool ClientSession::forward_pinned(const resp::Request& req, std::string_view raw, size_t replies, PushKind push,
                                   std::string_view replace) {
  if (!pinned_ || !pin_ready_) return false;
  return send_on(pinned_, req, raw, replies, push, replace);
}

bool ClientSession::send_on(upstream::UpstreamConn* conn, const resp::Request& req, std::string_view raw,
                            size_t replies, PushKind push, std::string_view replace) {
  if (!may_send_on(conn)) return false;
  uint64_t seq = next_seq_;
  uint64_t ticket =
      req.is_inline
          ? conn->send_args(this, seq, Args(req.args.data(), req.args.size()), replies, push)
          : conn->send_raw(this, seq, raw, replies, push);
  track_sent(conn, ticket, replies, replace);
  return true;
}

void ClientSession::track_sent(upstream::UpstreamConn* conn, uint64_t ticket, size_t replies,
                               std::string_view replace) {
  if (ticket == 0) {
    reply_error(errors::kUpstreamBusy);
    return;
  }
  ++server_.stats().forwarded;
  for (size_t i = 0; i < replies; ++i)
    slots_.push_back(Slot{next_seq_ + i, conn, ticket + i, false, discard_, replace, {}, false, CacheAfter::None, batch_now_});
  next_seq_ += replies;
  inflight_ += replies;
  inflight_conn_ = conn;
}

void ClientSession::track_fetch(upstream::UpstreamConn* conn, uint64_t id) {
  if (id == 0) {
    reply_error(errors::kUpstreamBusy);
    return;
  }
  ++server_.stats().forwarded;
  Slot s{next_seq_++, conn, id, false, discard_, {}, {}};
  s.fetch = true;
  s.start_ns = batch_now_;
  slots_.push_back(std::move(s));
  ++inflight_;
  inflight_conn_ = conn;
}

bool ClientSession::send_args_on(upstream::UpstreamConn* conn, Args args, std::string_view replace) {
  if (!may_send_on(conn)) return false;
  uint64_t seq = next_seq_;
  uint64_t ticket = conn->send_args(this, seq, args, 1, conn == pinned_ ? push_kind() : PushKind::None);
  track_sent(conn, ticket, 1, replace);
  return true;
}

ClientSession::Pin ClientSession::ensure_pinned() {
  if (pin_failed_) {
    // The dedicated connection this request waited for could not be opened.
    pin_failed_ = false;
    reply_error(errors::kUpstreamUnavailable);
    return Pin::Failed;
  }
  if (pinned_) {
    if (!pin_ready_) return Pin::Wait;
    return may_send_on(pinned_) ? Pin::Ready : Pin::Wait;
  }
  if (inflight_ > 0) return Pin::Wait;  // replies from the shared connection come first
  upstream::UpstreamConn* c = server_.pool().acquire_pinned(this);
  if (!c) {
    ++server_.stats().pinned_refused;
    reply_error(errors::pinned_limit(server_.config().upstream.max_pinned));
    return Pin::Refused;
  }
  pinned_ = c;
  pin_dirty_ = false;
  pin_reusable_ = true;
  pin_ready_ = c->ready();
  if (!pin_ready_) return Pin::Wait;
  c->set_push_sink(this);
  return Pin::Ready;
}

void ClientSession::on_pinned_ready(upstream::UpstreamConn& c) {
  if (&c != pinned_ || closed_) return;
  pin_ready_ = true;
  c.set_push_sink(this);
  resume();
}

void ClientSession::on_pinned_lost(upstream::UpstreamConn& c) {
  if (&c != pinned_) return;
  bool was_ready = pin_ready_;
  pinned_ = nullptr;
  pin_ready_ = false;
  if (closed_) return;
  if (!was_ready) {
    pin_failed_ = true;  // the waiting request gets the error when framed again
    resume();
    return;
  }
  if (has_state()) {
    // Redis dropped the connection holding this client's state (transaction, subscriptions,
    // database...): the client is disconnected after the replies it is owed, as Redis would.
    obs::info("client {} ({}): its pinned upstream connection was lost with its state; closing the client", id_,
              peer_);
    clear_state();
    finish_after_replies();
  }
}

void ClientSession::maybe_unpin() {
  if (!pinned_ || !pin_ready_ || inflight_ > 0 || has_state()) return;
  release_pin(false);
}

void ClientSession::release_pin(bool closing) {
  upstream::UpstreamConn* c = pinned_;
  if (!c) return;
  pinned_ = nullptr;
  pin_ready_ = false;
  // A connection goes back as it came (no RESET round trip) when its client only ran
  // commands whose state ends by itself: transactions ended by EXEC/DISCARD, WATCH ended,
  // blocking commands answered, subscriptions all dropped, SELECT back to the default db.
  // Anything else, or a client that leaves in the middle of such a state, gets it wiped.
  bool wipe = pin_dirty_ || has_state() || closing;
  server_.pool().release_pinned(c, wipe, pin_reusable_);
  pin_dirty_ = false;
  pin_reusable_ = true;
}

int64_t ClientSession::pinned_upstream_id() const {
  return pinned_ && pin_ready_ ? pinned_->upstream_id() : 0;
}

// ---- replies -------------------------------------------------------------------------

void ClientSession::reply_error(std::string_view bytes) {
  ++server_.stats().local_errors;
  reply_local(bytes);
}

void ClientSession::reply_local(std::string_view bytes) {
  if (closed_) return;
  if (slots_.empty()) {
    if (!discard_) stream_->output().append(bytes);
    observe_latency(batch_now_);
    after_output();
    return;
  }
  slots_.push_back(Slot{next_seq_++, nullptr, 0, true, discard_, {}, std::string(bytes), false, CacheAfter::None, batch_now_});
}

void ClientSession::on_reply(uint64_t cookie, std::string_view raw) { fill(cookie, raw); }

void ClientSession::on_failed(uint64_t cookie, std::string_view error_line) {
  ++server_.stats().local_errors;
  fill(cookie, error_line);
}

void ClientSession::on_tunnel(std::string_view bytes) {
  if (closed_) return;
  stream_->output().append(bytes);
  after_output();
}

void ClientSession::on_push(std::string_view raw) {
  // Every reply that came before this frame on the pinned connection has filled its slot,
  // and slots behind are ready local replies or later requests: writing now keeps the
  // order Redis sent.
  // Pub/sub messages bypass CLIENT REPLY OFF, as in Redis; MONITOR lines do not.
  if (closed_ || (reply_off_ && monitor_) || (finishing_ && slots_.empty())) return;
  stream_->output().append(raw);
  after_output();
}

void ClientSession::fill(uint64_t cookie, std::string_view bytes) {
  if (closed_ || slots_.empty()) return;
  size_t idx = static_cast<size_t>(cookie - slots_.front().seq);
  if (idx >= slots_.size()) return;
  Slot& s = slots_[idx];
  if (s.ready) return;
  if (s.conn && inflight_ > 0) --inflight_;
  // Before the client can see the reply (and send its next read).
  if (s.after != CacheAfter::None) cache_on_reply(s);
  std::string_view out = s.replace.empty() || (!bytes.empty() && bytes[0] == '-' && s.replace[0] != '-') ? bytes : s.replace;
  if (idx == 0) {
    if (!s.discard) stream_->output().append(out);
    observe_latency(s.start_ns);
    slots_.pop_front();
    release_ready_slots();
  } else {
    s.data.assign(out);
    s.ready = true;
  }
  if (inflight_ == 0) {
    inflight_conn_ = nullptr;
    maybe_unpin();
  }
  if (idx != 0) {
    if (inflight_ == 0) resume();
    return;  // nothing new to write yet
  }
  after_output();
  if (inflight_ == 0) resume();
}

void ClientSession::observe_latency(uint64_t start_ns) {
  server_.stats().request_latency.observe(server_.loop().clock_ns() - start_ns);
}

void ClientSession::release_ready_slots() {
  while (!slots_.empty() && slots_.front().ready) {
    if (!slots_.front().discard) stream_->output().append(slots_.front().data);
    observe_latency(slots_.front().start_ns);
    slots_.pop_front();
  }
}

void ClientSession::after_output() {
  if (closed_) return;
  const auto& cfg = ccfg_;
  if (stream_->pending_output() > cfg.output_buffer_limit) {
    obs::warn("client {} ({}): output buffer limit of {} bytes exceeded (client not reading), closing", id_, peer_,
              cfg.output_buffer_limit);
    ++server_.stats().limit_closes;
    close();
    return;
  }
  stream_->write_soon();
  if (finishing_ && slots_.empty()) {
    stream_->close_after_flush();
    return;
  }
  if (paused_ || slots_.size() >= ccfg_.max_pending || stream_->pending_output() >= ccfg_.output_high_water)
    update_reading();
}

void ClientSession::update_reading() {
  if (closed_ || finishing_) return;
  const auto& cfg = ccfg_;
  bool over = slots_.size() >= cfg.max_pending || stream_->pending_output() >= cfg.output_high_water;
  if (over && !paused_) {
    paused_ = true;
    stream_->pause_reading();
  } else if (!over && paused_) {
    // Resume with hysteresis: only once well below the marks, to avoid flapping.
    if (slots_.size() <= cfg.max_pending / 2 && stream_->pending_output() <= cfg.output_high_water / 2) {
      paused_ = false;
      stream_->start_reading();
      // Requests may already be buffered from before the pause.
      if (!stream_->input().empty()) process_input();
    }
  }
}

void ClientSession::on_write_progress(net::Stream&) {
  if (paused_) update_reading();
}

void ClientSession::finish_after_replies() {
  finishing_ = true;
  stream_->pause_reading();
  if (slots_.empty()) stream_->close_after_flush();
}

void ClientSession::drain() {
  if (closed_ || finishing_) return;
  finish_after_replies();
}

void ClientSession::on_read_error(net::Stream&, int status) {
  if (status != UV_EOF) obs::debug("client {}: read error: {}", id_, uv_strerror(status));
  // The peer is gone (or half-closed): replies can no longer be delivered reliably.
  close();
}

void ClientSession::cancel_inflight() {
  cache::NearCache& nc = server_.cache();
  slots_.for_each([&](const Slot& s) {
    if (!s.conn || s.ready) return;
    if (s.fetch) {
      nc.cancel(s.ticket, this);
    } else {
      s.conn->cancel(s.ticket);
    }
    // The writes may still run: their keys go now (the client is gone; nobody else was
    // promised to read them right after).
    if (s.after != CacheAfter::None) cache_on_reply(s);
  });
  marks_.clear();
  slots_.clear();
  inflight_ = 0;
  inflight_conn_ = nullptr;
}

void ClientSession::fail_pending(std::string_view error_line) {
  if (closed_) return;
  cache::NearCache& nc = server_.cache();
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.ready || !s.conn) continue;
    if (s.fetch) {
      nc.cancel(s.ticket, this);
    } else {
      s.conn->cancel(s.ticket);
    }
    if (s.after != CacheAfter::None) cache_on_reply(s);
    s.data.assign(error_line);
    s.ready = true;
  }
  marks_.clear();
  inflight_ = 0;
  inflight_conn_ = nullptr;
  release_ready_slots();
  finishing_ = true;
  stream_->pause_reading();
  after_output();  // writes what is owed, then closes (no slot is left)
}

void ClientSession::close() {
  if (closed_) return;
  closed_ = true;
  cancel_inflight();
  release_pin(true);
  if (stream_) stream_->close();
}

void ClientSession::on_closed(net::Stream&) {
  if (!closed_) {
    closed_ = true;
    cancel_inflight();
    release_pin(true);
  }
  stream_ = nullptr;
  server_.on_session_closed(this);
  delete this;
}

}  // namespace respite::proxy
