#include "net/connector.h"

#include <cstring>

#include "net/loop.h"
#include "net/stream.h"

namespace respite::net {

// State of one attempt. It outlives a cancel(): libuv requests in flight still point at
// it, so it is freed when the last of them completes.
struct Connector::Attempt {
  Connector* owner;         // null once cancelled
  Loop* loop;               // loop of the attempt
  DoneFn done;              // result callback
  uv_getaddrinfo_t resolve; // name resolution request
  uv_connect_t connect;     // connect request
  uv_tcp_t* tcp = nullptr;  // socket being connected (TCP)
  uv_pipe_t* pipe = nullptr;  // socket being connected (unix)
  int port = 0;             // TCP port
  std::string target;       // for error messages
};

Connector::Connector(Loop& loop) : loop_(loop) {}

Connector::~Connector() { cancel(); }

void Connector::cancel() {
  if (!attempt_) return;
  attempt_->owner = nullptr;
  if (attempt_->tcp) {
    // Closing the socket makes the pending connect complete with UV_ECANCELED.
    uv_close(reinterpret_cast<uv_handle_t*>(attempt_->tcp), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    attempt_->tcp = nullptr;
  } else if (attempt_->pipe) {
    uv_close(reinterpret_cast<uv_handle_t*>(attempt_->pipe), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    attempt_->pipe = nullptr;
  } else {
    uv_cancel(reinterpret_cast<uv_req_t*>(&attempt_->resolve));
  }
  attempt_ = nullptr;
}

void Connector::connect_tcp(const std::string& host, int port, DoneFn done) {
  cancel();
  auto* a = new Attempt;
  a->owner = this;
  a->loop = &loop_;
  a->done = std::move(done);
  a->port = port;
  a->target = host + ":" + std::to_string(port);
  a->resolve.data = a;
  a->connect.data = a;
  attempt_ = a;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(loop_.raw(), &a->resolve, &Connector::on_resolved, host.c_str(), nullptr, &hints);
  if (rc != 0) finish(a, rc, "cannot resolve " + host);
}

void Connector::on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  auto* a = static_cast<Attempt*>(req->data);
  if (!a->owner) {
    if (res) uv_freeaddrinfo(res);
    delete a;
    return;
  }
  a->loop->stamp();
  if (status != 0 || !res) {
    if (res) uv_freeaddrinfo(res);
    finish(a, status ? status : UV_EAI_NONAME, "cannot resolve " + a->target);
    return;
  }
  sockaddr_storage ss{};
  std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
  uv_freeaddrinfo(res);
  if (ss.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(static_cast<uint16_t>(a->port));
  } else {
    reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(static_cast<uint16_t>(a->port));
  }
  a->tcp = new uv_tcp_t;
  uv_tcp_init(a->loop->raw(), a->tcp);
  int rc = uv_tcp_connect(&a->connect, a->tcp, reinterpret_cast<sockaddr*>(&ss), &Connector::on_connected);
  if (rc != 0) finish(a, rc, "cannot connect to " + a->target);
}

void Connector::connect_unix(const std::string& path, DoneFn done) {
  cancel();
  auto* a = new Attempt;
  a->owner = this;
  a->loop = &loop_;
  a->done = std::move(done);
  a->target = path;
  a->connect.data = a;
  attempt_ = a;
  a->pipe = new uv_pipe_t;
  uv_pipe_init(loop_.raw(), a->pipe, 0);
  uv_pipe_connect(&a->connect, a->pipe, path.c_str(), &Connector::on_connected);
}

void Connector::on_connected(uv_connect_t* req, int status) {
  auto* a = static_cast<Attempt*>(req->data);
  if (!a->owner) {  // cancelled: the handle was closed by cancel()
    delete a;
    return;
  }
  a->loop->stamp();
  if (status != 0) {
    finish(a, status, "cannot connect to " + a->target);
    return;
  }
  Stream* s;
  if (a->tcp) {
    s = new Stream(*a->loop, reinterpret_cast<uv_stream_t*>(a->tcp), true);
    a->tcp = nullptr;
  } else {
    s = new Stream(*a->loop, reinterpret_cast<uv_stream_t*>(a->pipe), false);
    a->pipe = nullptr;
  }
  Connector* owner = a->owner;
  DoneFn done = std::move(a->done);
  owner->attempt_ = nullptr;
  delete a;
  done(s, 0, "");
}

void Connector::finish(Attempt* a, int status, const std::string& what) {
  if (a->tcp) {
    uv_close(reinterpret_cast<uv_handle_t*>(a->tcp), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    a->tcp = nullptr;
  }
  if (a->pipe) {
    uv_close(reinterpret_cast<uv_handle_t*>(a->pipe), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    a->pipe = nullptr;
  }
  Connector* owner = a->owner;
  DoneFn done = std::move(a->done);
  if (owner) owner->attempt_ = nullptr;
  delete a;
  if (owner && done) done(nullptr, status, what + ": " + uv_strerror(status));
}

}  // namespace respite::net
