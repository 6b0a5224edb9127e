#include "net/listener.h"

#include <sys/stat.h>
#include <unistd.h>


#include "net/loop.h"
#include "net/stream.h"
#include "obs/log.h"

namespace respite::net {

Listener::Listener(Loop& loop, AcceptFn on_accept) : loop_(loop), on_accept_(std::move(on_accept)) {}

Listener::~Listener() { close(); }

int Listener::listen_tcp(const std::string& host, int port, int backlog, std::string& error) {
  const std::string address = host.find(':') == std::string::npos ? host + ":" + std::to_string(port)
                                                                  : "[" + host + "]:" + std::to_string(port);
  sockaddr_storage ss{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&ss)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&ss)) != 0) {
    error = "listen address '" + address + "' is not an IP address";
    return UV_EINVAL;
  }
  auto* tcp = new uv_tcp_t;
  uv_tcp_init(loop_.raw(), tcp);
  tcp->data = this;
  handle_ = reinterpret_cast<uv_stream_t*>(tcp);
  is_tcp_ = true;
  int rc = uv_tcp_bind(tcp, reinterpret_cast<sockaddr*>(&ss), 0);
  if (rc == 0) rc = uv_listen(handle_, backlog, &Listener::on_connection);
  if (rc != 0) {
    error = "cannot listen on " + address + ": " + uv_strerror(rc);
    close();
    return rc;
  }
  sockaddr_storage bound{};
  int len = sizeof(bound);
  uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&bound), &len);
  char name[64] = {0};
  if (bound.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&bound);
    uv_ip6_name(a, name, sizeof(name));
    bound_ = "[" + std::string(name) + "]:" + std::to_string(ntohs(a->sin6_port));
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&bound);
    uv_ip4_name(a, name, sizeof(name));
    bound_ = std::string(name) + ":" + std::to_string(ntohs(a->sin_port));
  }
  return 0;
}

int Listener::listen_unix(const std::string& path, int mode, int backlog, std::string& error) {
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  auto* pipe = new uv_pipe_t;
  uv_pipe_init(loop_.raw(), pipe, 0);
  pipe->data = this;
  handle_ = reinterpret_cast<uv_stream_t*>(pipe);
  is_tcp_ = false;
  int rc = uv_pipe_bind(pipe, path.c_str());
  if (rc == 0) {
    unix_path_ = path;
    if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) rc = -errno;
  }
  if (rc == 0) rc = uv_listen(handle_, backlog, &Listener::on_connection);
  if (rc != 0) {
    error = "cannot listen on unix socket " + path + ": " + uv_strerror(rc);
    close();
    return rc;
  }
  bound_ = path;
  return 0;
}

void Listener::close() {
  if (!handle_) return;
  uv_handle_t* h = reinterpret_cast<uv_handle_t*>(handle_);
  handle_ = nullptr;
  if (is_tcp_) {
    uv_close(h, [](uv_handle_t* x) { delete reinterpret_cast<uv_tcp_t*>(x); });
  } else {
    uv_close(h, [](uv_handle_t* x) { delete reinterpret_cast<uv_pipe_t*>(x); });
  }
  if (!unix_path_.empty()) {
    ::unlink(unix_path_.c_str());
    unix_path_.clear();
  }
}

void Listener::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<Listener*>(server->data);
  self->loop_.stamp();
  if (status < 0) {
    obs::warn("accept failed on {}: {}", self->bound_, uv_strerror(status));
    return;
  }
  uv_stream_t* client;
  if (self->is_tcp_) {
    auto* tcp = new uv_tcp_t;
    uv_tcp_init(self->loop_.raw(), tcp);
    client = reinterpret_cast<uv_stream_t*>(tcp);
  } else {
    auto* pipe = new uv_pipe_t;
    uv_pipe_init(self->loop_.raw(), pipe, 0);
    client = reinterpret_cast<uv_stream_t*>(pipe);
  }
  int rc = uv_accept(server, client);
  if (rc != 0) {
    // Closing the half-made handle frees it; nothing else refers to it.
    if (self->is_tcp_) {
      uv_close(reinterpret_cast<uv_handle_t*>(client), [](uv_handle_t* x) { delete reinterpret_cast<uv_tcp_t*>(x); });
    } else {
      uv_close(reinterpret_cast<uv_handle_t*>(client), [](uv_handle_t* x) { delete reinterpret_cast<uv_pipe_t*>(x); });
    }
    obs::warn("accept failed on {}: {}", self->bound_, uv_strerror(rc));
    return;
  }
  self->on_accept_(new Stream(self->loop_, client, self->is_tcp_));
}

}  // namespace respite::net
