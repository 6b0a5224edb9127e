#include "admin/http_server.h"

#include <http_parser.h>

#include "config/config_values.h"
#include "net/loop.h"
#include "net/stream.h"
#include "obs/log.h"

namespace respite::admin {

// One admin connection: reads one request, answers it, closes. Deletes itself once its
// stream is closed.
class HttpConnection final : private net::StreamHandler {
 public:
  HttpConnection(HttpServer& server, net::Stream* stream) : server_(server), stream_(stream) {
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
    http_parser_settings_init(&settings_);
    settings_.on_url = [](http_parser* p, const char* at, size_t n) {
      auto* self = static_cast<HttpConnection*>(p->data);
      self->url_.append(at, n);
      return self->url_.size() > HttpServer::kMaxRequestBytes ? 1 : 0;
    };
    settings_.on_message_complete = [](http_parser* p) {
      static_cast<HttpConnection*>(p->data)->complete_ = true;
      http_parser_pause(p, 1);  // one request per connection: ignore anything after it
      return 0;
    };
    stream_->set_handler(this);
    started_ms_ = server_.loop_.now_ms();
  }

  void start() {
    if (stream_->start_reading() != 0) stream_->close();
  }
  void close() {
    if (stream_) stream_->close();
  }
  uint64_t started_ms() const { return started_ms_; }

 private:
  void on_readable(net::Stream& s) override {
    if (answered_) {
      s.input().consume(s.input().size());
      return;
    }
    received_ += s.input().size();
    std::string_view in = s.input().view();
    size_t parsed = http_parser_execute(&parser_, &settings_, in.data(), in.size());
    s.input().consume(in.size());
    auto err = HTTP_PARSER_ERRNO(&parser_);
    if (complete_) {
      HttpRequest req;
      req.method = http_method_str(static_cast<http_method>(parser_.method));
      http_parser_url u;
      http_parser_url_init(&u);
      if (http_parser_parse_url(url_.data(), url_.size(), 0, &u) == 0 && (u.field_set & (1 << UF_PATH))) {
        req.path = url_.substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
      }
      HttpResponse r = server_.handler_(req);
      answer(r, req.method == "HEAD");
      return;
    }
    if ((err != HPE_OK && err != HPE_PAUSED) || parsed != in.size()) {
      answer({400, "text/plain; charset=utf-8", std::string("bad request: ") + http_errno_description(err) + "\n"},
             false);
      return;
    }
    if (received_ > HttpServer::kMaxRequestBytes) {
      answer({431, "text/plain; charset=utf-8", "request too large\n"}, false);
    }
  }

  void answer(const HttpResponse& r, bool head) {
    answered_ = true;
    stream_->pause_reading();
    stream_->output().append(http_render(r, head));
    stream_->close_after_flush();
  }

  void on_read_error(net::Stream& s, int) override { s.close(); }

  void on_closed(net::Stream&) override {
    stream_ = nullptr;
    server_.conns_.erase(this);
    delete this;
  }

  HttpServer& server_;
  net::Stream* stream_;          // self-deleting; null after close
  http_parser parser_{};
  http_parser_settings settings_{};
  std::string url_;              // the request target as received
  size_t received_ = 0;          // request bytes read so far
  bool complete_ = false;        // the whole request is in
  bool answered_ = false;        // the response is queued
  uint64_t started_ms_ = 0;      // loop time of the accept
};

HttpServer::HttpServer(net::Loop& loop, Handler handler)
    : loop_(loop), handler_(std::move(handler)), sweep_timer_(loop) {}

HttpServer::~HttpServer() { stop(); }

bool HttpServer::start(const std::string& address, std::string& error) {
  config::ListenAddress addr;
  if (!config::parse_listen_address(address, addr, error)) return false;
  listener_ = std::make_unique<net::Listener>(loop_, [this](net::Stream* s) { on_accept(s); });
  if (listener_->listen_tcp(addr.host, addr.port, 64, error) != 0) {
    listener_.reset();
    return false;
  }
  bound_ = listener_->bound();
  sweep_timer_.start(1000, 1000, [this] { sweep(); });
  sweep_timer_.unref();
  return true;
}

void HttpServer::stop() {
  if (listener_) listener_->close();
  listener_.reset();
  sweep_timer_.stop();
  std::vector<HttpConnection*> open(conns_.begin(), conns_.end());
  for (auto* c : open) c->close();
}

void HttpServer::on_accept(net::Stream* s) {
  if (conns_.size() >= kMaxConnections) {
    s->output().append(http_render({503, "text/plain; charset=utf-8", "too many admin connections\n"}, false));
    s->close_after_flush();
    return;
  }
  auto* c = new HttpConnection(*this, s);
  conns_.insert(c);
  c->start();
}

void HttpServer::sweep() {
  uint64_t now = loop_.now_ms();
  std::vector<HttpConnection*> late;
  for (auto* c : conns_) {
    if (now - c->started_ms() > kRequestTimeoutMs) late.push_back(c);
  }
  for (auto* c : late) c->close();
}

const char* http_reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string http_render(const HttpResponse& r, bool head) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + http_reason(r.status) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (r.status == 405) out += "Allow: GET, HEAD\r\n";
  out += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
  if (!head) out += r.body;
  return out;
}

}  // namespace respite::admin
