// Network helpers for the integration tests; see net.h.
#include "support/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace respite::test {

namespace {

// Writing to a socket the peer closed must fail with EPIPE, not kill the test binary
// (hiredis uses plain write()). Children get SIGPIPE back to default before exec.
const bool kSigpipeIgnored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

int ms_until(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  if (left > 60'000) return 60'000;
  return static_cast<int>(left);
}

constexpr size_t kIncomplete = static_cast<size_t>(-1);

// End offset of the RESP value starting at `pos`, or kIncomplete.
size_t parse_value(std::string_view b, size_t pos, int depth) {
  if (depth > 1000) throw std::runtime_error("RESP nesting too deep");
  if (pos >= b.size()) return kIncomplete;
  size_t eol = b.find("\r\n", pos);
  if (eol == std::string_view::npos) return kIncomplete;
  char type = b[pos];
  std::string_view line = b.substr(pos + 1, eol - pos - 1);
  size_t after = eol + 2;
  switch (type) {
    case '+':
    case '-':
    case ':':
      return after;
    case '$':
    case '*': {
      long long n = 0;
      auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), n);
      if (ec != std::errc() || p != line.data() + line.size())
        throw std::runtime_error(cat("bad RESP length: ", line));
      if (n < 0) return after;  // nil
      if (type == '$') {
        size_t end = after + static_cast<size_t>(n) + 2;
        return end <= b.size() ? end : kIncomplete;
      }
      size_t cur = after;
      for (long long i = 0; i < n; ++i) {
        cur = parse_value(b, cur, depth + 1);
        if (cur == kIncomplete) return kIncomplete;
      }
      return cur;
    }
    default:
      throw std::runtime_error(cat("not RESP: ", escape_bytes(b.substr(pos, 40))));
  }
}

}  // namespace

uint16_t find_free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error(std::string("bind/getsockname: ") + strerror(err));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/respite-it-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error(std::string("mkdtemp: ") + strerror(errno));
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string resp_command(const std::vector<std::string>& args) {
  std::string out = cat("*", args.size(), "\r\n");
  for (const auto& a : args) {
    out += cat("$", a.size(), "\r\n");
    out += a;
    out += "\r\n";
  }
  return out;
}

size_t resp_frame_length(std::string_view buf) {
  size_t end = parse_value(buf, 0, 0);
  return end == kIncomplete ? 0 : end;
}

std::string escape_bytes(std::string_view bytes, size_t max_len) {
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < max_len; ++i) {
    unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else if (c == '\\') out += "\\\\";
    else if (c < 32 || c > 126) {
      char hex[8];
      snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (bytes.size() > max_len) out += cat("...(", bytes.size(), " bytes)");
  return out;
}

// ---- RawConn ----

RawConn RawConn::tcp(uint16_t port, int rcvbuf) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + strerror(errno));
  RawConn conn(fd);
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  // Loopback connects complete or fail at once (the listen backlog absorbs the handshake).
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error(cat("connect 127.0.0.1:", port, ": ", strerror(errno)));
  return conn;
}

RawConn RawConn::tcp6(uint16_t port) {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + strerror(errno));
  RawConn conn(fd);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  addr.sin6_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error(cat("connect [::1]:", port, ": ", strerror(errno)));
  return conn;
}

RawConn RawConn::unix_socket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + strerror(errno));
  RawConn conn(fd);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw std::runtime_error(cat("unix socket path too long: ", path));
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error(cat("connect ", path, ": ", strerror(errno)));
  return conn;
}

RawConn::RawConn(RawConn&& other) noexcept
    : fd_(other.fd_), buf_(std::move(other.buf_)), closed_(other.closed_) {
  other.fd_ = -1;
}

RawConn& RawConn::operator=(RawConn&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.fd_;
    buf_ = std::move(other.buf_);
    closed_ = other.closed_;
    other.fd_ = -1;
  }
  return *this;
}

RawConn::~RawConn() { close(); }

void RawConn::close(bool reset) {
  if (fd_ < 0) return;
  if (reset) {
    linger lg{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  ::close(fd_);
  fd_ = -1;
}

bool RawConn::send_all(std::string_view bytes, Deadline deadline) {
  size_t off = 0;
  while (off < bytes.size()) {
    if (fd_ < 0) return false;
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (Clock::now() >= deadline) return false;
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, std::max(1, ms_until(deadline)));
      continue;
    }
    return false;  // EPIPE, ECONNRESET, ...
  }
  return true;
}

bool RawConn::fill(Deadline deadline) {
  if (fd_ < 0 || closed_) return false;
  char tmp[65536];
  for (;;) {
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, MSG_DONTWAIT);
    if (n > 0) {
      buf_.append(tmp, static_cast<size_t>(n));
      return true;
    }
    if (n == 0) {
      closed_ = true;
      return false;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      closed_ = true;  // reset counts as closed
      return false;
    }
    if (Clock::now() >= deadline) return false;
    pollfd p{fd_, POLLIN, 0};
    ::poll(&p, 1, std::max(1, ms_until(deadline)));
  }
}

std::optional<std::string> RawConn::read_reply(Deadline deadline) {
  for (;;) {
    size_t len = buf_.empty() ? 0 : resp_frame_length(buf_);
    if (len > 0) {
      std::string reply = buf_.substr(0, len);
      buf_.erase(0, len);
      return reply;
    }
    if (!fill(deadline)) return std::nullopt;
  }
}

std::optional<std::string> RawConn::read_exact(size_t n, Deadline deadline) {
  while (buf_.size() < n) {
    if (!fill(deadline)) return std::nullopt;
  }
  std::string out = buf_.substr(0, n);
  buf_.erase(0, n);
  return out;
}

std::string RawConn::read_until_closed(Deadline deadline, bool* closed) {
  while (fill(deadline)) {
  }
  if (closed) *closed = closed_;
  std::string out;
  out.swap(buf_);
  return out;
}

bool RawConn::drain_until_closed(Deadline deadline, size_t* bytes_read) {
  size_t total = 0;
  while (fill(deadline)) {
    total += buf_.size();
    buf_.clear();
  }
  total += buf_.size();
  buf_.clear();
  if (bytes_read) *bytes_read = total;
  return closed_;
}

// ---- hiredis ----

std::string describe(const redisReply* r) {
  if (!r) return "<no reply>";
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      return cat("+", std::string_view(r->str, r->len));
    case REDIS_REPLY_ERROR:
      return cat("-", std::string_view(r->str, r->len));
    case REDIS_REPLY_INTEGER:
      return cat(":", r->integer);
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_STRING:
      return cat("\"", std::string_view(r->str, r->len), "\"");
    case REDIS_REPLY_ARRAY: {
      std::string out = "[";
      for (size_t i = 0; i < r->elements; ++i) {
        if (i) out += ", ";
        out += describe(r->element[i]);
      }
      return out + "]";
    }
    default:
      return cat("<type ", r->type, ">");
  }
}

namespace {
timeval to_timeval(std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  return tv;
}

void argv_of(const std::vector<std::string>& args, std::vector<const char*>& ptrs, std::vector<size_t>& lens) {
  ptrs.clear();
  lens.clear();
  for (const auto& a : args) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
}
}  // namespace

Client Client::tcp(uint16_t port, std::chrono::milliseconds timeout) {
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, to_timeval(timeout));
  if (!c || c->err) {
    std::string err = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    throw std::runtime_error(cat("hiredis connect 127.0.0.1:", port, ": ", err));
  }
  redisSetTimeout(c, to_timeval(timeout));
  return Client(c);
}

Client Client::unix_socket(const std::string& path, std::chrono::milliseconds timeout) {
  redisContext* c = redisConnectUnixWithTimeout(path.c_str(), to_timeval(timeout));
  if (!c || c->err) {
    std::string err = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    throw std::runtime_error(cat("hiredis connect ", path, ": ", err));
  }
  redisSetTimeout(c, to_timeval(timeout));
  return Client(c);
}

Reply Client::command(const std::vector<std::string>& args) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  argv_of(args, ptrs, lens);
  void* r = redisCommandArgv(ctx_.get(), static_cast<int>(args.size()), ptrs.data(), lens.data());
  return Reply(static_cast<redisReply*>(r));
}

std::string Client::call(const std::vector<std::string>& args) {
  Reply r = command(args);
  if (!r) return "<error: " + error() + ">";
  return describe(r);
}

void Client::append(const std::vector<std::string>& args) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  argv_of(args, ptrs, lens);
  redisAppendCommandArgv(ctx_.get(), static_cast<int>(args.size()), ptrs.data(), lens.data());
}

Reply Client::get_reply() {
  void* r = nullptr;
  if (redisGetReply(ctx_.get(), &r) != REDIS_OK) return nullptr;
  return Reply(static_cast<redisReply*>(r));
}

std::string Client::error() const {
  if (!ctx_ || !ctx_->err) return "";
  return ctx_->errstr;
}

}  // namespace respite::test
