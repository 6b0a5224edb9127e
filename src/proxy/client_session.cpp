#include "proxy/client_session.h"

#include <span>

#include "cmd/command_policy.h"
#include "core/errors.h"
#include "net/loop.h"
#include "obs/log.h"
#include "proxy/server.h"
#include "upstream/upstream_conn.h"
#include "upstream/upstream_pool.h"

namespace respite::proxy {

ClientSession::ClientSession(Server& server, net::Stream* stream, uint64_t id)
    : server_(server),
      ccfg_(server.config().client),
      stream_(stream),
      id_(id),
      framer_(server.request_limits()) {
  stream_->set_handler(this);
}

ClientSession::~ClientSession() = default;

void ClientSession::start() {
  last_activity_ms_ = server_.loop().now_ms();
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
  auto& in = stream_->input();
  const auto& cfg = ccfg_;
  while (!closed_ && !finishing_ && !paused_) {
    size_t consumed = 0;
    auto st = framer_.next(in.view(), request_, consumed);
    if (st == resp::FrameStatus::NeedMore) {
      if (in.size() > cfg.query_buffer_limit) {
        obs::warn("client {} ({}): query buffer limit of {} bytes exceeded, closing", id_, stream_->peer(),
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
      obs::debug("client {} ({}): {}", id_, stream_->peer(), framer_.error());
      reply_local(errors::protocol_error(framer_.error()));
      finish_after_replies();
      return;
    }
    if (!request_.args.empty()) {
      ++server_.stats().commands;
      handle(request_, std::string_view(in.data(), consumed));
    }
    if (closed_) return;
    in.consume(consumed);
    if (slots_.size() >= cfg.max_pending || stream_->pending_output() >= cfg.output_high_water) update_reading();
  }
  // Keep memory small between bursts.
  if (in.empty()) in.shrink_if_empty(256 * 1024);
}

void ClientSession::handle(const resp::Request& req, std::string_view raw) {
  std::span<const std::string_view> args(req.args.data(), req.args.size());
  cmd::Decision d = cmd::classify(args, server_.config().upstream.address.db);
  switch (d.route) {
    case cmd::Route::Forward:
      forward(req, raw);
      return;
    case cmd::Route::Quit:
      reply_local(errors::kOk);
      finish_after_replies();
      return;
    case cmd::Route::Reset:
      reply_local("+RESET\r\n");
      return;
    case cmd::Route::SelectSame:
      reply_local(errors::kOk);
      return;
    case cmd::Route::Auth:
      ++server_.stats().local_errors;
      if (args.size() < 2 || args.size() > 3) {
        reply_local(errors::wrong_arity("auth"));
      } else {
        reply_local(
            "-ERR AUTH <password> called without any password configured for the default user. "
            "Are you sure your configuration is correct?\r\n");
      }
      return;
    case cmd::Route::HelloNoProto:
      ++server_.stats().local_errors;
      reply_local(errors::noproto());
      return;
    case cmd::Route::NeedsDedicated:
      ++server_.stats().local_errors;
      reply_local(errors::needs_dedicated_connection(args[0]));
      return;
    case cmd::Route::Refuse:
      ++server_.stats().local_errors;
      reply_local(errors::not_allowed_on_shared_connection(args[0], d.why));
      return;
  }
}

upstream::UpstreamConn* ClientSession::route_upstream() {
  if (upstream_ && upstream_->ready()) return upstream_;
  upstream_ = server_.pool().pick(static_cast<size_t>(id_));
  return upstream_;
}

void ClientSession::forward(const resp::Request& req, std::string_view raw) {
  upstream::UpstreamConn* conn = route_upstream();
  if (!conn) {
    ++server_.stats().local_errors;
    reply_local(errors::kUpstreamUnavailable);
    return;
  }
  uint64_t seq = next_seq_;
  uint64_t ticket = req.is_inline
                        ? conn->send_args(this, seq, std::span<const std::string_view>(req.args.data(), req.args.size()))
                        : conn->send_raw(this, seq, raw);
  if (ticket == 0) {
    ++server_.stats().local_errors;
    reply_local(errors::kUpstreamBusy);
    return;
  }
  ++server_.stats().forwarded;
  ++next_seq_;
  slots_.push_back(Slot{seq, conn, ticket, false, {}});
}

void ClientSession::reply_local(std::string_view bytes) {
  if (closed_) return;
  if (slots_.empty()) {
    stream_->output().append(bytes);
    after_output();
    return;
  }
  slots_.push_back(Slot{next_seq_++, nullptr, 0, true, std::string(bytes)});
}

void ClientSession::on_reply(uint64_t cookie, std::string_view raw) { fill(cookie, raw); }

void ClientSession::on_failed(uint64_t cookie, std::string_view error_line) {
  ++server_.stats().local_errors;
  fill(cookie, error_line);
}

void ClientSession::fill(uint64_t cookie, std::string_view bytes) {
  if (closed_ || slots_.empty()) return;
  size_t idx = static_cast<size_t>(cookie - slots_.front().seq);
  if (idx >= slots_.size()) return;
  if (idx == 0) {
    stream_->output().append(bytes);
    slots_.pop_front();
    release_ready_slots();
  } else {
    Slot& s = slots_[idx];
    s.data.assign(bytes);
    s.ready = true;
    return;  // nothing new to write yet
  }
  after_output();
}

void ClientSession::release_ready_slots() {
  while (!slots_.empty() && slots_.front().ready) {
    stream_->output().append(slots_.front().data);
    slots_.pop_front();
  }
}

void ClientSession::after_output() {
  if (closed_) return;
  const auto& cfg = ccfg_;
  if (stream_->pending_output() > cfg.output_buffer_limit) {
    obs::warn("client {} ({}): output buffer limit of {} bytes exceeded (client not reading), closing", id_,
              stream_->peer(), cfg.output_buffer_limit);
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
  slots_.for_each([](const Slot& s) {
    if (s.conn && !s.ready) s.conn->cancel(s.ticket);
  });
  slots_.clear();
}

void ClientSession::close() {
  if (closed_) return;
  closed_ = true;
  cancel_inflight();
  if (stream_) stream_->close();
}

void ClientSession::on_closed(net::Stream&) {
  if (!closed_) {
    closed_ = true;
    cancel_inflight();
  }
  stream_ = nullptr;
  server_.on_session_closed(this);
  delete this;
}

}  // namespace respite::proxy
