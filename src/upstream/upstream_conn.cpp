#include "upstream/upstream_conn.h"

#include <algorithm>
#include <random>

#include "config/upstream_url.h"
#include "core/errors.h"
#include "core/parse.h"
#include "net/loop.h"
#include "obs/log.h"
#include "resp/resp_writer.h"

namespace respite::upstream {
namespace {

uint64_t jitter(uint64_t max_ms) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  if (max_ms <= 1) return max_ms;
  // "Equal jitter": half fixed, half random, so retries spread out but never collapse to 0.
  return max_ms / 2 + rng() % (max_ms / 2 + 1);
}

}  // namespace

UpstreamConn::UpstreamConn(net::Loop& loop, const config::UpstreamConfig& cfg, int index, StateFn on_state,
                           Role role)
    : loop_(loop),
      cfg_(cfg),
      index_(index),
      on_state_(std::move(on_state)),
      role_(role),
      connector_(loop),
      reconnect_timer_(loop),
      deadline_timer_(loop) {}

UpstreamConn::~UpstreamConn() {
  stopping_ = true;
  connector_.cancel();
  if (stream_) {
    stream_->set_handler(nullptr);
    stream_->close();
    stream_ = nullptr;
  }
}

void UpstreamConn::start() {
  if (state_ != State::Idle || stopping_ || reconnect_timer_.active()) return;
  connect();
}

void UpstreamConn::connect() {
  state_ = State::Connecting;
  const auto& a = cfg_.address;
  auto done = [this](net::Stream* s, int status, const std::string& err) { on_connected(s, status, err); };
  if (cfg_.connect_timeout_ms > 0) {
    deadline_timer_.start(static_cast<uint64_t>(cfg_.connect_timeout_ms), 0, [this] {
      if (state_ == State::Connecting || state_ == State::Handshaking)
        drop("connect/handshake timed out", errors::kUpstreamUnavailable);
    });
  }
  if (a.is_unix) {
    connector_.connect_unix(a.path, done);
  } else {
    connector_.connect_tcp(a.host, a.port, done);
  }
}

void UpstreamConn::on_connected(net::Stream* s, int status, const std::string& error) {
  if (!s) {
    drop(error, errors::kUpstreamUnavailable);
    return;
  }
  stream_ = s;
  stream_->set_handler(this);
  stream_->set_nodelay(true);
  framer_.reset();
  if (int rc = stream_->start_reading(); rc != 0) {
    drop(std::string("cannot read: ") + uv_strerror(rc), errors::kUpstreamUnavailable);
    return;
  }
  begin_handshake();
}

void UpstreamConn::begin_handshake() {
  state_ = State::Handshaking;
  handshake_.clear();
  write_handshake();
}

void UpstreamConn::write_handshake() {
  const auto& a = cfg_.address;
  auto& out = stream_->output();
  if (!a.password.empty()) {
    if (a.username.empty()) {
      resp::write_command(out, {"AUTH", a.password});
    } else {
      resp::write_command(out, {"AUTH", a.username, a.password});
    }
    handshake_.push_back(Step::Auth);
  }
  if (a.db != 0) {
    std::string db = std::to_string(a.db);
    resp::write_command(out, {"SELECT", db});
    handshake_.push_back(Step::Select);
  }
  // The name only helps operators read CLIENT LIST; an ACL user without +client may
  // refuse it, which must not keep respite from connecting.
  std::string name = role_ == Role::Shared      ? "respite-pool-" + std::to_string(index_)
                     : role_ == Role::Dedicated ? "respite-pinned-" + std::to_string(index_)
                                                : std::string("respite-invalidation");
  resp::write_command(out, {"CLIENT", "SETNAME", name});
  handshake_.push_back(Step::Name);
  if (role_ != Role::Shared) {
    // The id lets CLIENT UNBLOCK and CLIENT TRACKING REDIRECT name this connection.
    resp::write_command(out, {"CLIENT", "ID"});
    handshake_.push_back(Step::Id);
  }
  if (role_ == Role::Invalidation) {
    resp::write_command(out, {"SUBSCRIBE", "__redis__:invalidate"});
    handshake_.push_back(Step::Subscribe);
  }
  stream_->write_soon();
}

void UpstreamConn::reset_session() {
  if (state_ != State::Ready || !queue_.empty() || !stream_) return;
  state_ = State::Handshaking;
  push_sink_ = nullptr;
  idle_push_ = PushKind::None;
  deadline_timer_.stop();
  if (cfg_.connect_timeout_ms > 0) {
    deadline_timer_.start(static_cast<uint64_t>(cfg_.connect_timeout_ms), 0, [this] {
      if (state_ == State::Handshaking) drop("reset timed out", errors::kUpstreamUnavailable);
    });
  }
  // RESET ends MULTI, WATCH, subscriptions, MONITOR, tracking and CLIENT REPLY, selects db 0
  // and logs the connection out; the handshake then puts back AUTH and SELECT.
  resp::write_command(stream_->output(), {"RESET"});
  handshake_.clear();
  handshake_.push_back(Step::Reset);
  write_handshake();
}

void UpstreamConn::on_handshake_reply(std::string_view raw) {
  Step step = handshake_.front();
  handshake_.pop_front();
  bool error = !raw.empty() && raw[0] == '-';
  if (step == Step::Id && raw.size() > 3 && raw[0] == ':') {
    int64_t id = 0;
    if (core::parse_integer(raw.substr(1, raw.size() - 3), id)) upstream_id_ = id;
  }
  if (step == Step::Subscribe && !raw.starts_with("*3\r\n$9\r\nsubscribe\r\n")) error = true;
  if (error) {
    std::string msg(raw.substr(raw[0] == '-' ? 1 : 0, raw.size() >= 3 ? raw.size() - 3 : 0));
    // The name is cosmetic, and a dedicated connection works without its id (CLIENT UNBLOCK
    // and tracking REDIRECT then cannot name it; e.g. CLIENT ID refused as BUSY while a
    // script runs, when the connection is opened for SCRIPT KILL).
    if (step != Step::Name && !(step == Step::Id && role_ == Role::Dedicated)) {
      drop("handshake refused by Redis: " + msg, errors::kUpstreamUnavailable);
      return;
    }
    obs::debug("upstream #{}: CLIENT SETNAME refused ({}); continuing without a connection name", index_, msg);
  }
  if (handshake_.empty()) become_ready();
}

void UpstreamConn::become_ready() {
  state_ = State::Ready;
  attempts_ = 0;
  if (role_ == Role::Dedicated) {
    obs::debug("upstream pinned #{} ready (redis client id {})", index_, upstream_id_);
  } else if (role_ == Role::Invalidation) {
    obs::info("invalidation connection {} (redis client id {}, {})", was_ready_ ? "restored" : "connected",
              upstream_id_, config::redact_url(cfg_.address));
  } else if (was_ready_) {
    obs::info("upstream #{} restored ({})", index_, config::redact_url(cfg_.address));
  } else {
    obs::info("upstream #{} connected ({})", index_, config::redact_url(cfg_.address));
  }
  was_ready_ = true;
  if (role_ == Role::Invalidation) idle_push_ = PushKind::Pubsub;  // invalidation messages
  // Dedicated connections carry blocking commands and subscriptions, which wait as long as
  // their client wants: the command timeout applies to shared connections only.
  if (cfg_.command_timeout_ms > 0 && role_ == Role::Shared) {
    uint64_t every = std::clamp<uint64_t>(static_cast<uint64_t>(cfg_.command_timeout_ms) / 4, 10, 250);
    deadline_timer_.start(every, every, [this] { check_timeout(); });
  } else {
    deadline_timer_.stop();
  }
  if (on_state_) on_state_(*this, Event::Ready);
}

void UpstreamConn::note_reply_kind(std::string_view raw) {
  if (cannot_serve(raw)) {
    unavailable_ = true;
    if (on_state_) on_state_(*this, Event::Unavailable);
  } else if (unavailable_) {
    unavailable_ = false;
    if (on_state_) on_state_(*this, Event::Available);
  }
}

void UpstreamConn::check_timeout() {
  if (state_ != State::Ready || queue_.empty()) return;
  uint64_t age = loop_.now_ms() - queue_.front().sent_ms;
  if (age > static_cast<uint64_t>(cfg_.command_timeout_ms))
    drop("command timed out after " + std::to_string(age) + " ms", errors::kUpstreamTimeout);
}

bool UpstreamConn::accept_request() const { return state_ == State::Ready && queue_.size() < cfg_.max_inflight; }

uint64_t UpstreamConn::push(ReplySink* sink, uint64_t cookie, size_t replies, PushKind push) {
  uint64_t first = head_ticket_ + queue_.size();
  uint64_t now = loop_.now_ms();
  for (size_t i = 0; i < replies; ++i) queue_.push_back(Pending{sink, cookie + i, now, push});
  idle_push_ = push;
  // Adaptive batching: while enough earlier batches are still being answered, requests
  // gather in the output buffer and leave together when a batch completes. Redis then
  // reads many requests per system call, which is where its CPU goes at high client counts.
  int limit = cfg_.max_batches_in_flight;
  if (limit == 0 || batch_ends_.size() < static_cast<size_t>(limit)) {
    stream_->write_soon();
  } else {
    flush_waiting_ = true;
  }
  return first;
}

void UpstreamConn::on_flush(net::Stream&) {
  if (state_ != State::Ready || queue_.empty()) return;
  uint64_t last = head_ticket_ + queue_.size() - 1;
  if (last > last_flushed_ticket_) {
    batch_ends_.push_back(Batch{last, loop_.clock_ns()});
    last_flushed_ticket_ = last;
  }
  flush_waiting_ = false;
}

uint64_t UpstreamConn::send_raw(ReplySink* sink, uint64_t cookie, std::string_view raw, size_t replies,
                                PushKind push_kind) {
  if (!accept_request() || replies == 0) return 0;
  stream_->output().append(raw);
  return push(sink, cookie, replies, push_kind);
}

uint64_t UpstreamConn::send_args(ReplySink* sink, uint64_t cookie, std::span<const std::string_view> args,
                                 size_t replies, PushKind push_kind) {
  if (!accept_request() || replies == 0) return 0;
  resp::write_command(stream_->output(), args);
  return push(sink, cookie, replies, push_kind);
}

bool UpstreamConn::is_push_frame(std::string_view raw) const {
  PushKind kind = queue_.empty() ? idle_push_ : queue_.front().push;
  switch (kind) {
    case PushKind::None:
      return false;
    case PushKind::Pubsub:
      // RESP2 messages: ["message", channel, payload], ["pmessage", pattern, channel,
      // payload], ["smessage", channel, payload]. Replies in subscribed mode are
      // (un)subscribe confirmations, pongs and errors, which never start like these.
      return raw.starts_with("*3\r\n$7\r\nmessage\r\n") || raw.starts_with("*4\r\n$8\r\npmessage\r\n") ||
             raw.starts_with("*3\r\n$8\r\nsmessage\r\n");
    case PushKind::Monitor:
      // "+<unix time>.<micros> [<db> <client>] ...": no command's status reply starts with a digit.
      return raw.size() > 2 && raw[0] == '+' && raw[1] >= '0' && raw[1] <= '9';
  }
  return false;
}

void UpstreamConn::cancel(uint64_t ticket) {
  if (ticket < head_ticket_ || ticket >= head_ticket_ + queue_.size()) return;
  queue_[ticket - head_ticket_].sink = nullptr;
}

bool UpstreamConn::start_tunnel(ReplySink* sink, std::string_view raw) {
  if (role_ != Role::Dedicated || state_ != State::Ready || !queue_.empty() || !stream_) return false;
  tunnel_sink_ = sink;
  push_sink_ = nullptr;
  stream_->output().append(raw);
  stream_->write_soon();
  return true;
}

void UpstreamConn::send_tunnel(std::string_view bytes) {
  if (!tunnel_sink_ || !stream_) return;
  stream_->output().append(bytes);
  stream_->write_soon();
}

void UpstreamConn::on_readable(net::Stream& s) {
  loop_.stamp();  // replies' arrival time: round trips, request latency
  auto& in = s.input();
  if (tunnel_sink_) {
    std::string_view bytes = in.view();
    in.consume(bytes.size());
    framed_fed_ = 0;
    tunnel_sink_->on_tunnel(bytes);  // the view stays valid: consume() does not free
    return;
  }
  // The framer has seen every byte up to in.size() - fresh; feed only the new ones.
  size_t fresh = in.size() - framed_fed_;
  framer_.feed(in.data() + framed_fed_, fresh);
  framed_fed_ = in.size();
  size_t len = 0;
  while (true) {
    auto st = framer_.next(in.view(), len);
    if (st == resp::ReplyFramer::Status::NeedMore) break;
    if (st == resp::ReplyFramer::Status::Error) {
      drop("protocol error from Redis: " + framer_.error(), errors::kUpstreamLost);
      return;
    }
    std::string_view raw(in.data(), len);
    if (!handshake_.empty()) {
      // Consumed first (the bytes stay where they are): becoming ready calls out, and a
      // tunnel started from there must see only what follows this reply.
      in.consume(len);
      framed_fed_ -= len;
      on_handshake_reply(raw);
      if (state_ == State::Idle || stream_ != &s) return;  // dropped
      if (tunnel_sink_) {
        if (!in.empty()) on_readable(s);
        return;
      }
      continue;
    } else if (push_sink_ && is_push_frame(raw)) {
      push_sink_->on_push(raw);
      if (stream_ != &s) return;  // the sink closed or dropped this connection
    } else if (queue_.empty()) {
      drop("unexpected reply from Redis (nothing in flight)", errors::kUpstreamLost);
      return;
    } else {
      Pending p = queue_.front();
      queue_.pop_front();
      uint64_t ticket = head_ticket_++;
      if (!batch_ends_.empty() && rtt_) rtt_->observe(loop_.clock_ns() - batch_ends_.front().written_ns);
      if (!batch_ends_.empty() && ticket >= batch_ends_.front().last_ticket) {
        batch_ends_.pop_front();
        if (flush_waiting_) {
          flush_waiting_ = false;
          s.write_soon();
        }
      }
      if (raw[0] == '-' || unavailable_) note_reply_kind(raw);
      if (p.sink) {
        p.sink->on_reply(p.cookie, raw);
        if (stream_ != &s) return;  // the sink closed or dropped this connection
      }
    }
    in.consume(len);
    framed_fed_ -= len;
  }
  // A large reply in progress: read it in big chunks.
  s.set_read_size_hint(in.size() > 64 * 1024 ? in.size() : 0);
}

void UpstreamConn::on_read_error(net::Stream& s, int status) {
  drop(status == UV_EOF ? std::string("Redis closed the connection") : std::string("read error: ") + uv_strerror(status),
       errors::kUpstreamLost);
}

void UpstreamConn::on_write_error(net::Stream& s, int status) {
  drop(std::string("write error: ") + uv_strerror(status), errors::kUpstreamLost);
}

void UpstreamConn::on_closed(net::Stream& s) {
  if (&s == stream_) stream_ = nullptr;
}

void UpstreamConn::drop(std::string_view why, std::string_view error_line) {
  bool was_ready = state_ == State::Ready;
  state_ = State::Idle;
  handshake_.clear();
  deadline_timer_.stop();
  connector_.cancel();
  if (stream_) {
    stream_->set_handler(nullptr);
    stream_->close();
    stream_ = nullptr;
  }
  framer_.reset();
  framed_fed_ = 0;
  batch_ends_.clear();
  flush_waiting_ = false;
  // Fail what was in flight, oldest first, so each client still sees its replies in order.
  core::RingQueue<Pending> failed;
  failed.swap(queue_);
  head_ticket_ += failed.size();
  last_flushed_ticket_ = head_ticket_ - 1;
  push_sink_ = nullptr;
  tunnel_sink_ = nullptr;
  idle_push_ = PushKind::None;
  if (stopping_ || role_ == Role::Dedicated) {
    obs::debug("upstream {}#{} closed: {} ({} requests in flight failed)", role_ == Role::Dedicated ? "pinned " : "",
               index_, why, failed.size());
  } else if (role_ == Role::Invalidation) {
    obs::warn("invalidation connection {}: {}", was_ready ? "lost" : "cannot connect", why);
  } else if (was_ready) {
    obs::warn("upstream #{} lost: {} ({} requests in flight failed)", index_, why, failed.size());
  } else if (attempts_ == 0) {
    obs::warn("upstream #{} cannot connect: {}", index_, why);
  } else {
    obs::debug("upstream #{} reconnect attempt {} failed: {}", index_, attempts_, why);
  }
  if (on_state_) on_state_(*this, was_ready ? Event::Lost : Event::AttemptFailed);
  for (size_t i = 0; i < failed.size(); ++i) {
    if (failed[i].sink) failed[i].sink->on_failed(failed[i].cookie, error_line);
  }
  if (!stopping_ && role_ != Role::Dedicated) schedule_reconnect();
}

void UpstreamConn::schedule_reconnect() {
  uint64_t base = static_cast<uint64_t>(std::max(1, cfg_.reconnect_min_ms));
  uint64_t cap = static_cast<uint64_t>(std::max(cfg_.reconnect_min_ms, cfg_.reconnect_max_ms));
  uint64_t delay = base << std::min(attempts_, 20);
  delay = jitter(std::min(delay, cap));
  ++attempts_;
  reconnect_timer_.start(delay, 0, [this] {
    if (!stopping_ && state_ == State::Idle) connect();
  });
}

void UpstreamConn::abort(std::string_view why) {
  if (state_ != State::Idle || stream_) drop(why, errors::kUpstreamLost);
}

void UpstreamConn::shutdown(std::string_view error_line) {
  stopping_ = true;
  reconnect_timer_.stop();
  if (state_ != State::Idle || stream_) drop("shutting down", error_line);
}

}  // namespace respite::upstream
