// Network helpers for the integration tests: free loopback ports, temp dirs, RESP encoding and
// framing, a raw socket with deadlines (protocol-level tests, exact reply bytes) and a thin RAII
// wrapper over hiredis's synchronous API. Every blocking read is bounded by a deadline or a
// socket timeout, so a broken proxy fails a test instead of hanging it.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "support/process.h"

namespace respite::test {

// A loopback TCP port that was free a moment ago (bind 127.0.0.1:0, read it, close). Another
// process may take it before the caller binds it: callers retry on a failed start.
uint16_t find_free_port();

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;  // absolute path of the directory
};

// Concatenates strings, string views, C strings and integers. (Also sidesteps GCC 12's false
// -Wrestrict positive on `"literal" + std::string` at -O2.)
namespace detail {
inline void cat_one(std::string& out, std::string_view s) { out.append(s); }
template <typename T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, char> && !std::is_same_v<T, bool>)
void cat_one(std::string& out, T v) {
  out.append(std::to_string(v));
}
}  // namespace detail
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (detail::cat_one(out, parts), ...);
  return out;
}

// RESP multibulk encoding of one command.
std::string resp_command(const std::vector<std::string>& args);

// Length of the first complete RESP2 value at the start of `buf` (simple string, error,
// integer, bulk, array, nested arrays, nil), or 0 if `buf` holds only part of one. Throws
// std::runtime_error on bytes that are not RESP.
size_t resp_frame_length(std::string_view buf);

// Readable rendering of raw bytes for assertion messages (\r, \n and non-printables escaped).
std::string escape_bytes(std::string_view bytes, size_t max_len = 300);

// A connected stream socket (TCP on 127.0.0.1, or unix) with deadline-bounded I/O. send and
// the read functions may be called from two different threads at once (one each).
class RawConn {
 public:
  // Connects to 127.0.0.1:port. `rcvbuf` > 0 sets SO_RCVBUF before connecting (to make a
  // client that does not read fill up quickly). Throws std::runtime_error on failure.
  static RawConn tcp(uint16_t port, int rcvbuf = 0);
  // Connects to [::1]:port. Throws std::runtime_error on failure.
  static RawConn tcp6(uint16_t port);
  static RawConn unix_socket(const std::string& path);

  RawConn(RawConn&& other) noexcept;
  RawConn& operator=(RawConn&& other) noexcept;
  ~RawConn();

  // Writes all of `bytes`; false if the peer closed/reset or the deadline passed.
  bool send_all(std::string_view bytes, Deadline deadline);

  // Reads one complete RESP reply and returns its exact bytes; nullopt on timeout, EOF or
  // reset (see closed()).
  std::optional<std::string> read_reply(Deadline deadline);

  // Reads exactly n bytes (beyond what read_reply left buffered); nullopt on timeout/EOF.
  std::optional<std::string> read_exact(size_t n, Deadline deadline);

  // Reads until the peer closes (EOF or reset). Returns everything read (including bytes
  // still buffered); `closed` tells whether the close was seen before the deadline.
  std::string read_until_closed(Deadline deadline, bool* closed);

  // Discards incoming bytes until the peer closes; true if it did before the deadline.
  // `bytes_read`, if given, receives how many bytes were discarded.
  bool drain_until_closed(Deadline deadline, size_t* bytes_read = nullptr);

  // True once a read has seen EOF or a reset.
  bool closed() const { return closed_; }

  // Closes the socket; with `reset` the kernel sends RST (SO_LINGER 0) instead of FIN.
  void close(bool reset = false);

  int fd() const { return fd_; }

 private:
  explicit RawConn(int fd) : fd_(fd) {}
  bool fill(Deadline deadline);  // reads more into buf_; false on timeout/EOF/reset

  int fd_ = -1;           // the socket; -1 when closed
  std::string buf_;       // bytes read but not yet returned
  bool closed_ = false;   // EOF or reset seen
};

// Owns a redisReply from hiredis.
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// Compact rendering for assertions: +STATUS, -ERROR, :42, (nil), "bulk", [a, b].
std::string describe(const redisReply* r);
inline std::string describe(const Reply& r) { return describe(r.get()); }

// A hiredis synchronous connection; reads time out after `timeout` (redisSetTimeout).
class Client {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout{5000};
  // Throws std::runtime_error when the connection cannot be made.
  static Client tcp(uint16_t port, std::chrono::milliseconds timeout = kDefaultTimeout);
  static Client unix_socket(const std::string& path, std::chrono::milliseconds timeout = kDefaultTimeout);

  Client(Client&&) noexcept = default;
  Client& operator=(Client&&) noexcept = default;

  // Sends one command and waits for its reply; nullptr on an I/O error or timeout (then
  // error() says why and the connection is unusable).
  Reply command(const std::vector<std::string>& args);
  // Shorthand: command({"GET", "k"}) rendered with describe(); "<error: ...>" on I/O error.
  std::string call(const std::vector<std::string>& args);

  // Pipelining: queue commands, then read their replies in order.
  void append(const std::vector<std::string>& args);
  Reply get_reply();

  // The I/O error of the last failed call ("" if none).
  std::string error() const;
  redisContext* context() const { return ctx_.get(); }

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  explicit Client(redisContext* c) : ctx_(c) {}
  std::unique_ptr<redisContext, ContextDeleter> ctx_;  // the hiredis connection
};

}  // namespace respite::test
