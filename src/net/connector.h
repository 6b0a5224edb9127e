// Connector: opens one outgoing connection (TCP to host:port, resolving names
// asynchronously, or a unix socket) and reports a Stream or an error exactly once,
// unless cancel() was called first, in which case it never calls back.
#pragma once

#include <uv.h>

#include <functional>
#include <string>

namespace respite::net {

class Loop;
class Stream;

class Connector {
 public:
  // On success: (stream, 0, ""), the callee owns the Stream. On failure: (nullptr, code, text).
  using DoneFn = std::function<void(Stream*, int, const std::string&)>;
  explicit Connector(Loop& loop);
  ~Connector();
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  void connect_tcp(const std::string& host, int port, DoneFn done);
  void connect_unix(const std::string& path, DoneFn done);
  // Abandons an attempt in progress; its callback will not be called.
  void cancel();
  bool busy() const { return attempt_ != nullptr; }

 private:
  struct Attempt;
  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res);
  static void on_connected(uv_connect_t* req, int status);
  static void finish(Attempt* a, int status, const std::string& what);

  Loop& loop_;                // loop the attempt runs on
  Attempt* attempt_ = nullptr;  // in-progress attempt (owned by its libuv requests)
};

}  // namespace respite::net
