#include "net/stream.h"

#include <utility>

#include "net/loop.h"

namespace respite::net {
namespace {
constexpr size_t kReadChunk = 64 * 1024;       // default read size
constexpr size_t kMaxReadChunk = 4 * 1024 * 1024;  // largest single read buffer request
}  // namespace

Stream::Stream(Loop& loop, uv_stream_t* handle, bool is_tcp)
    : loop_(loop), handle_(handle), is_tcp_(is_tcp) {
  handle_->data = this;
  write_req_.data = this;
}

int Stream::start_reading() {
  if (reading_ || closing_) return 0;
  int rc = uv_read_start(handle_, &Stream::on_alloc, &Stream::on_read);
  if (rc == 0) reading_ = true;
  return rc;
}

void Stream::pause_reading() {
  if (!reading_) return;
  uv_read_stop(handle_);
  reading_ = false;
}

void Stream::on_alloc(uv_handle_t* h, size_t, uv_buf_t* out) {
  auto* self = static_cast<Stream*>(h->data);
  size_t want = kReadChunk;
  if (self->read_hint_ > want) want = std::min(self->read_hint_, kMaxReadChunk);
  char* p = self->input_.prepare(want);
  *out = uv_buf_init(p, static_cast<unsigned>(self->input_.writable()));
}

void Stream::on_read(uv_stream_t* h, ssize_t nread, const uv_buf_t*) {
  auto* self = static_cast<Stream*>(h->data);
  if (nread > 0) {
    self->input_.commit(static_cast<size_t>(nread));
    if (self->handler_ && !self->closing_) self->handler_->on_readable(*self);
    return;
  }
  if (nread == 0) return;  // EAGAIN
  self->pause_reading();
  if (self->handler_ && !self->closing_) self->handler_->on_read_error(*self, static_cast<int>(nread));
}

void Stream::write_soon() {
  if (closing_ || writing_) return;  // an outstanding write continues in on_write
  loop_.defer_flush(this);
}

void Stream::flush() {
  if (closing_ || writing_) return;
  if (!output_.empty()) {
    if (handler_) handler_->on_flush(*this);
    uv_buf_t b = uv_buf_init(output_.mutable_data(), static_cast<unsigned>(output_.size()));
    int n = uv_try_write(handle_, &b, 1);
    if (n > 0) {
      output_.consume(static_cast<size_t>(n));
    } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
      fail_write(n);
      return;
    }
    if (!output_.empty()) {
      std::swap(output_, in_flight_);
      uv_buf_t rest = uv_buf_init(in_flight_.mutable_data(), static_cast<unsigned>(in_flight_.size()));
      int rc = uv_write(&write_req_, handle_, &rest, 1, &Stream::on_write);
      if (rc != 0) {
        fail_write(rc);
        return;
      }
      writing_ = true;
      return;
    }
    if (handler_) handler_->on_write_progress(*this);
  }
  if (close_when_flushed_ && !writing_ && output_.empty() && !closing_) close();
}

void Stream::on_write(uv_write_t* req, int status) {
  auto* self = static_cast<Stream*>(req->data);
  self->writing_ = false;
  self->in_flight_.clear();
  self->in_flight_.shrink_if_empty(1024 * 1024);
  if (self->closing_) return;
  if (status < 0) {
    self->fail_write(status);
    return;
  }
  if (self->handler_) self->handler_->on_write_progress(*self);
  if (self->closing_) return;
  if (!self->output_.empty() || self->close_when_flushed_) self->flush();
}

void Stream::fail_write(int status) {
  if (handler_) handler_->on_write_error(*this, status);
  close();
}

void Stream::close() {
  if (closing_) return;
  closing_ = true;
  reading_ = false;
  loop_.forget(this);
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), &Stream::on_close);
}

void Stream::close_after_flush() {
  if (closing_) return;
  close_when_flushed_ = true;
  pause_reading();
  if (!writing_ && output_.empty()) {
    close();
  } else {
    write_soon();
  }
}

void Stream::on_close(uv_handle_t* h) {
  auto* self = static_cast<Stream*>(h->data);
  if (self->handler_) self->handler_->on_closed(*self);
  if (self->is_tcp_) {
    delete reinterpret_cast<uv_tcp_t*>(h);
  } else {
    delete reinterpret_cast<uv_pipe_t*>(h);
  }
  delete self;
}

namespace {

// "host:port" ("[v6]:port") of a TCP handle's peer or local end; "?" when unknown.
std::string tcp_address(const uv_tcp_t* tcp, bool peer) {
  sockaddr_storage ss{};
  int len = sizeof(ss);
  int rc = peer ? uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&ss), &len)
                : uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&ss), &len);
  if (rc != 0) return "?";
  char host[64] = {0};
  std::string out;
  int port = 0;
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    uv_ip6_name(a, host, sizeof(host));
    port = ntohs(a->sin6_port);
    out.append("[").append(host).append("]");
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    uv_ip4_name(a, host, sizeof(host));
    port = ntohs(a->sin_port);
    out.append(host);
  }
  out.append(":").append(std::to_string(port));
  return out;
}

}  // namespace

std::string Stream::peer() const {
  if (!is_tcp_) return "unix";
  return tcp_address(reinterpret_cast<const uv_tcp_t*>(handle_), true);
}

std::string Stream::local() const {
  if (!is_tcp_) return "unix";
  return tcp_address(reinterpret_cast<const uv_tcp_t*>(handle_), false);
}

int Stream::fd() const {
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(handle_), &fd) != 0) return -1;
  return static_cast<int>(fd);
}

void Stream::set_nodelay(bool on) {
  if (is_tcp_) uv_tcp_nodelay(reinterpret_cast<uv_tcp_t*>(handle_), on ? 1 : 0);
}

void Stream::set_keepalive(int seconds) {
  if (is_tcp_ && seconds > 0) uv_tcp_keepalive(reinterpret_cast<uv_tcp_t*>(handle_), 1, static_cast<unsigned>(seconds));
}

}  // namespace respite::net
