// FakeUpstream; see fake_upstream.h.
#include "support/fake_upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <set>
#include <stdexcept>

#include "support/net.h"

namespace respite::test {

namespace {

using std::chrono::milliseconds;

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 32);
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 32);
    if (x != y) return false;
  }
  return true;
}

// Parses "<prefix><digits>\r\n" at `pos`; returns the number and moves `pos` past the CRLF.
// 0: incomplete; -1: malformed; 1: ok.
int parse_len_line(std::string_view b, size_t& pos, char prefix, long long& n) {
  if (pos >= b.size()) return 0;
  if (b[pos] != prefix) return -1;
  size_t eol = b.find("\r\n", pos);
  if (eol == std::string_view::npos) return b.size() - pos > 32 ? -1 : 0;
  const char* first = b.data() + pos + 1;
  const char* last = b.data() + eol;
  auto [p, ec] = std::from_chars(first, last, n);
  if (ec != std::errc() || p != last || n < 0) return -1;
  pos = eol + 2;
  return 1;
}

// One multibulk request at the start of `b`: its length (args filled), 0 if incomplete,
// or -1 if the bytes are not a multibulk request of bulk strings.
long long parse_request(std::string_view b, std::vector<std::string>& args) {
  args.clear();
  size_t pos = 0;
  long long count = 0;
  int st = parse_len_line(b, pos, '*', count);
  if (st <= 0) return st;
  for (long long i = 0; i < count; ++i) {
    long long len = 0;
    st = parse_len_line(b, pos, '$', len);
    if (st <= 0) return st;
    size_t need = pos + static_cast<size_t>(len) + 2;
    if (need > b.size()) return 0;
    if (b[need - 2] != '\r' || b[need - 1] != '\n') return -1;
    args.emplace_back(b.substr(pos, static_cast<size_t>(len)));
    pos = need;
  }
  return static_cast<long long>(pos);
}

FakeUpstream::Action default_action(const FakeUpstream::Request& r) {
  const auto& a = r.args;
  if (!a.empty() && iequal(a[0], "PING")) return FakeUpstream::Action::reply("+PONG\r\n");
  if (a.size() == 2 && iequal(a[0], "ECHO")) return FakeUpstream::Action::reply(FakeUpstream::bulk(a[1]));
  if (a.size() == 2 && iequal(a[0], "GET")) return FakeUpstream::Action::reply(FakeUpstream::bulk(cat("value:", a[1])));
  return FakeUpstream::Action::reply("+OK\r\n");
}

}  // namespace

// ---- Action ----

FakeUpstream::Action FakeUpstream::Action::reply(std::string bytes) {
  Action a;
  a.bytes = std::move(bytes);
  return a;
}

FakeUpstream::Action FakeUpstream::Action::split(std::string bytes, size_t pieces, milliseconds pause) {
  Action a;
  a.bytes = std::move(bytes);
  a.pieces = std::max<size_t>(1, pieces);
  a.pause = pause;
  return a;
}

FakeUpstream::Action FakeUpstream::Action::close(std::string partial) {
  Action a;
  a.bytes = std::move(partial);
  a.close_after = true;
  return a;
}

FakeUpstream::Action FakeUpstream::Action::none() {
  Action a;
  a.silent = true;
  return a;
}

FakeUpstream::Action FakeUpstream::Action::held() const {
  Action a = *this;
  a.hold = true;
  return a;
}

std::string FakeUpstream::bulk(std::string_view s) { return cat("$", s.size(), "\r\n", s, "\r\n"); }

// ---- lifecycle ----

FakeUpstream::FakeUpstream() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error(cat("FakeUpstream socket: ", strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(listen_fd_);
    throw std::runtime_error(cat("FakeUpstream bind/listen: ", strerror(err)));
  }
  port_ = ntohs(addr.sin_port);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    int err = errno;
    ::close(listen_fd_);
    throw std::runtime_error(cat("FakeUpstream eventfd: ", strerror(err)));
  }
  thread_ = std::thread([this] { run(); });
}

FakeUpstream::~FakeUpstream() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  wake();
  thread_.join();
  for (auto& [id, c] : conns_) {
    if (c.fd >= 0) ::close(c.fd);
  }
  ::close(listen_fd_);
  ::close(wake_fd_);
}

std::string FakeUpstream::url() const { return cat("redis://127.0.0.1:", port_); }

void FakeUpstream::wake() {
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_, &one, sizeof one);
  (void)n;  // a full counter still wakes poll
}

// ---- scripting ----

void FakeUpstream::set_script(Script script) {
  std::lock_guard<std::mutex> lk(mu_);
  script_ = script ? std::make_shared<Script>(std::move(script)) : nullptr;
}

void FakeUpstream::push(Action action) {
  std::lock_guard<std::mutex> lk(mu_);
  queued_.push_back(std::move(action));
}

void FakeUpstream::set_auth_reply(std::string bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auth_reply_ = std::move(bytes);
}

void FakeUpstream::set_handshake_reply(std::string bytes) {
  std::lock_guard<std::mutex> lk(mu_);
  handshake_reply_ = std::move(bytes);
}

void FakeUpstream::set_holding(bool on) {
  std::lock_guard<std::mutex> lk(mu_);
  holding_ = on;
}

size_t FakeUpstream::release(size_t n) {
  size_t count = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    std::set<uint64_t> ids;
    while (count < n && !held_.empty()) {
      ids.insert(held_.front());
      held_.pop_front();
      ++count;
    }
    for (auto& [id, c] : conns_) {
      for (auto& ch : c.out) {
        if (ch.held && ids.count(ch.reply_id)) ch.held = false;
      }
    }
  }
  wake();
  return count;
}

size_t FakeUpstream::held_count() const {
  std::lock_guard<std::mutex> lk(mu_);
  return held_.size();
}

// ---- observation ----

std::vector<FakeUpstream::Request> FakeUpstream::requests() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<Request> out;
  for (const auto& r : log_) {
    if (!r.handshake) out.push_back(r);
  }
  return out;
}

size_t FakeUpstream::request_count() const {
  std::lock_guard<std::mutex> lk(mu_);
  return requests_;
}

std::vector<FakeUpstream::Request> FakeUpstream::all_requests() const {
  std::lock_guard<std::mutex> lk(mu_);
  return log_;
}

size_t FakeUpstream::handshake_count() const {
  std::lock_guard<std::mutex> lk(mu_);
  return handshakes_;
}

int FakeUpstream::connections_accepted() const {
  std::lock_guard<std::mutex> lk(mu_);
  return accepted_;
}

int FakeUpstream::connections_closed() const {
  std::lock_guard<std::mutex> lk(mu_);
  return closed_;
}

std::string FakeUpstream::received_bytes(int conn) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = received_.find(conn);
  return it == received_.end() ? std::string() : it->second;
}

std::string FakeUpstream::describe() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::string out = cat("FakeUpstream 127.0.0.1:", port_, ": ", accepted_, " connection(s) accepted, ", closed_,
                        " ended, ", held_.size(), " reply(ies) held; requests:\n");
  size_t shown = 0;
  for (const auto& r : log_) {
    if (++shown > 60) {
      out += cat("  ... (", log_.size(), " in all)\n");
      break;
    }
    out += cat("  #", r.conn, r.handshake ? " (handshake)" : "", ":");
    for (const auto& a : r.args) out += cat(" ", escape_bytes(a, 40));
    out += "\n";
  }
  return out;
}

template <typename Pred>
bool FakeUpstream::wait_until(Pred pred, Deadline deadline) const {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_.wait_until(lk, deadline, pred);
}

bool FakeUpstream::wait_for_requests(size_t n, Deadline deadline) const {
  return wait_until([&] { return requests_ >= n; }, deadline);
}

bool FakeUpstream::wait_for_handshakes(size_t n, Deadline deadline) const {
  return wait_until([&] { return handshakes_ >= n; }, deadline);
}

bool FakeUpstream::wait_for_connections(int n, Deadline deadline) const {
  return wait_until([&] { return accepted_ >= n; }, deadline);
}

bool FakeUpstream::wait_for_closed(int n, Deadline deadline) const {
  return wait_until([&] { return closed_ >= n; }, deadline);
}

// ---- server thread ----

void FakeUpstream::run() {
  std::unique_lock<std::mutex> lk(mu_);
  std::vector<pollfd> fds;
  std::vector<int> ids;
  while (!stop_) {
    // Forget closed connections.
    for (auto it = conns_.begin(); it != conns_.end();) {
      it = it->second.fd < 0 ? conns_.erase(it) : std::next(it);
    }
    fds.clear();
    ids.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    const auto now = Clock::now();
    int timeout = -1;
    for (auto& [id, c] : conns_) {
      short events = POLLIN;
      if (!c.out.empty() && !c.out.front().held) {
        if (c.next_write <= now) {
          events |= POLLOUT;
        } else {
          auto ms = std::chrono::ceil<milliseconds>(c.next_write - now).count();
          int t = static_cast<int>(std::min<long long>(ms, 1000));
          timeout = timeout < 0 ? t : std::min(timeout, t);
        }
      }
      fds.push_back({c.fd, events, 0});
      ids.push_back(id);
    }
    lk.unlock();
    int rc = ::poll(fds.data(), fds.size(), timeout);
    lk.lock();
    if (stop_) break;
    if (rc < 0) continue;  // EINTR (other errors cannot happen with these arguments)
    if (rc > 0 && (fds[0].revents & POLLIN)) {
      uint64_t v;
      while (::read(wake_fd_, &v, sizeof v) > 0) {
      }
    }
    if (rc > 0 && (fds[1].revents & POLLIN)) accept_all();
    for (size_t i = 0; i < ids.size(); ++i) {
      auto it = conns_.find(ids[i]);
      if (it == conns_.end() || it->second.fd < 0) continue;
      if (rc > 0 && (fds[i + 2].revents & (POLLIN | POLLHUP | POLLERR))) read_from(it->second, lk);
    }
    const auto after = Clock::now();
    for (auto& [id, c] : conns_) {
      if (c.fd >= 0) write_to(c, after);
    }
  }
}

void FakeUpstream::accept_all() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a transient error: poll tells us again
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Conn c;
    c.id = ++accepted_;
    c.fd = fd;
    c.next_write = Clock::now();
    received_[c.id];
    conns_.emplace(c.id, std::move(c));
    cv_.notify_all();
  }
}

void FakeUpstream::read_from(Conn& c, std::unique_lock<std::mutex>& lk) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      received_[c.id].append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // EOF or error: the peer is gone. Requests already buffered are not answered.
    close_conn(c);
    return;
  }
  std::vector<std::string> args;
  for (;;) {
    long long len = parse_request(c.in, args);
    if (len == 0) break;
    if (len < 0) {
      // Not what respite should ever send; keep the bytes (received_bytes) and hang up.
      close_conn(c);
      return;
    }
    Request req;
    req.conn = c.id;
    req.args = std::move(args);
    req.raw = c.in.substr(0, static_cast<size_t>(len));
    c.in.erase(0, static_cast<size_t>(len));
    handle(c, std::move(req), lk);
    if (c.fd < 0) return;
  }
}

void FakeUpstream::handle(Conn& c, Request req, std::unique_lock<std::mutex>& lk) {
  const auto& a = req.args;
  bool setname = a.size() >= 2 && iequal(a[0], "CLIENT") && iequal(a[1], "SETNAME");
  req.handshake = setname || (!a.empty() && (iequal(a[0], "AUTH") || iequal(a[0], "SELECT")));
  log_.push_back(req);
  if (setname) ++handshakes_;
  if (!req.handshake) ++requests_;
  cv_.notify_all();

  Action action;
  if (req.handshake) {
    bool auth = !a.empty() && iequal(a[0], "AUTH");
    action = Action::reply(setname ? handshake_reply_ : auth ? auth_reply_ : std::string("+OK\r\n"));
  } else if (!queued_.empty()) {
    action = std::move(queued_.front());
    queued_.pop_front();
  } else if (script_) {
    // The script runs unlocked, so it may call back into this object (push, set_holding...).
    std::shared_ptr<Script> script = script_;
    lk.unlock();
    action = (*script)(req);
    lk.lock();
  } else {
    action = default_action(req);
  }
  if (c.fd >= 0) enqueue(c, action);
}

void FakeUpstream::enqueue(Conn& c, const Action& a) {
  if (a.silent) return;
  const uint64_t reply_id = next_reply_id_++;
  const bool held = a.hold || holding_;
  if (held) held_.push_back(reply_id);
  const size_t total = a.bytes.size();
  const size_t pieces = std::max<size_t>(1, std::min(a.pieces, std::max<size_t>(1, total)));
  size_t off = 0;
  for (size_t i = 0; i < pieces; ++i) {
    size_t len = total / pieces + (i < total % pieces ? 1 : 0);
    Chunk ch;
    ch.bytes = a.bytes.substr(off, len);
    off += len;
    const bool last = i + 1 == pieces;
    ch.pause_after = last ? milliseconds(0) : a.pause;
    ch.close_after = last && a.close_after;
    ch.reply_id = reply_id;
    ch.held = held;
    c.out.push_back(std::move(ch));
  }
}

void FakeUpstream::write_to(Conn& c, Clock::time_point now) {
  while (c.fd >= 0 && !c.out.empty()) {
    Chunk& ch = c.out.front();
    if (ch.held || c.next_write > now) return;
    while (ch.written < ch.bytes.size()) {
      ssize_t n = ::send(c.fd, ch.bytes.data() + ch.written, ch.bytes.size() - ch.written, MSG_NOSIGNAL);
      if (n > 0) {
        ch.written += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // POLLOUT brings us back
      close_conn(c);  // EPIPE, ECONNRESET: the peer is gone
      return;
    }
    const bool close_now = ch.close_after;
    c.next_write = now + ch.pause_after;
    c.out.pop_front();
    if (close_now) {
      close_conn(c);
      return;
    }
    if (c.next_write > now) return;  // the loop's poll timeout brings us back
  }
}

void FakeUpstream::close_conn(Conn& c) {
  if (c.fd < 0) return;
  ::close(c.fd);
  c.fd = -1;
  // Replies still queued on this connection will never be sent: they are no longer held.
  std::set<uint64_t> gone;
  for (const auto& ch : c.out) gone.insert(ch.reply_id);
  c.out.clear();
  std::erase_if(held_, [&](uint64_t id) { return gone.count(id) > 0; });
  ++closed_;
  cv_.notify_all();
}

}  // namespace respite::test
