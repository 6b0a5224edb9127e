// Listener: accepts connections on a TCP address or a unix socket path and hands each
// accepted socket to a callback as a Stream (which the callback then owns).
#pragma once

#include <uv.h>

#include <functional>
#include <string>

namespace respite::net {

class Loop;
class Stream;

class Listener {
 public:
  using AcceptFn = std::function<void(Stream*)>;
  Listener(Loop& loop, AcceptFn on_accept);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // `host` is an IPv4 or IPv6 literal (already validated by the caller); port 0 picks a
  // free port. Returns 0 or a libuv error, with `error` describing it.
  int listen_tcp(const std::string& host, int port, int backlog, std::string& error);
  // Binds a unix socket (an existing stale socket file is replaced) with `mode` perms.
  int listen_unix(const std::string& path, int mode, int backlog, std::string& error);
  // Address actually bound, e.g. "127.0.0.1:6380" or "unix /run/respite.sock".
  const std::string& bound() const { return bound_; }
  // Stops accepting; closes the handle.
  void close();

 private:
  static void on_connection(uv_stream_t* server, int status);

  Loop& loop_;               // loop the listener runs on
  AcceptFn on_accept_;       // receives each accepted Stream (ownership passes)
  uv_stream_t* handle_ = nullptr;  // owned uv_tcp_t/uv_pipe_t; freed in its close callback
  bool is_tcp_ = true;       // kind of handle_
  std::string bound_;        // printable bound address
  std::string unix_path_;    // socket file to unlink on close
};


}  // namespace respite::net
