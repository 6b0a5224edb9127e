// HttpServer: the admin listener's small HTTP/1.1 server (probes, metrics, stats). Requests
// are parsed with http-parser (Debian's libhttp-parser), one response per connection: the
// connection closes once the response is written. Bounded: at most kMaxConnections at
// once, kMaxRequestBytes per request, and a connection that has not sent a whole request
// within kRequestTimeoutMs is closed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include "net/listener.h"
#include "net/timer.h"

namespace respite::net {
class Loop;
}

namespace respite::admin {

struct HttpRequest {
  std::string method;  // "GET", "HEAD"...
  std::string path;    // the URL's path, without the query string
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpConnection;

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  static constexpr size_t kMaxConnections = 64;
  static constexpr size_t kMaxRequestBytes = 16 * 1024;
  static constexpr uint64_t kRequestTimeoutMs = 10'000;

  HttpServer(net::Loop& loop, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Listens on `address` (host:port, as server.listen); false with `error`.
  bool start(const std::string& address, std::string& error);
  // Stops accepting and closes every connection.
  void stop();
  // "127.0.0.1:9180": the address bound (port 0 resolved).
  const std::string& bound() const { return bound_; }

 private:
  friend class HttpConnection;
  void on_accept(net::Stream* s);
  void sweep();

  net::Loop& loop_;
  Handler handler_;
  std::unique_ptr<net::Listener> listener_;
  std::unordered_set<HttpConnection*> conns_;  // open connections (each deletes itself on close)
  net::Timer sweep_timer_;                     // closes connections past kRequestTimeoutMs
  std::string bound_;
};

// The reason phrase of an HTTP status code.
const char* http_reason(int status);
// The whole response message for `r` (HEAD: headers only).
std::string http_render(const HttpResponse& r, bool head);

}  // namespace respite::admin
