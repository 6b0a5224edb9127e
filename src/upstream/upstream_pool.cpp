#include "upstream/upstream_pool.h"

#include "config/upstream_url.h"
#include "obs/log.h"

namespace respite::upstream {

UpstreamPool::UpstreamPool(net::Loop& loop, const config::UpstreamConfig& cfg) : cfg_(cfg) {
  for (size_t i = 0; i < cfg.pool_size; ++i) {
    conns_.push_back(std::make_unique<UpstreamConn>(
        loop, cfg, static_cast<int>(i), [this](UpstreamConn& c, UpstreamConn::Event e) { on_state(c, e); }));
  }
  tried_.assign(conns_.size(), false);
  untried_ = conns_.size();
}

void UpstreamPool::start(std::function<void()> settled) {
  settled_ = std::move(settled);
  for (auto& c : conns_) c->start();
}

void UpstreamPool::shutdown(std::string_view error_line) {
  stopping_ = true;
  for (auto& c : conns_) c->shutdown(error_line);
}

UpstreamConn* UpstreamPool::pick(size_t hint) {
  if (ready_ == 0) return nullptr;
  size_t n = conns_.size();
  for (size_t i = 0; i < n; ++i) {
    UpstreamConn* c = conns_[(hint + i) % n].get();
    if (c->ready()) return c;
  }
  return nullptr;
}

size_t UpstreamPool::inflight() const {
  size_t n = 0;
  for (const auto& c : conns_) n += c->inflight();
  return n;
}

void UpstreamPool::on_state(UpstreamConn& c, UpstreamConn::Event e) {
  auto idx = static_cast<size_t>(c.index());
  if (e != UpstreamConn::Event::Lost && !tried_[idx]) {
    tried_[idx] = true;
    if (--untried_ == 0 && settled_) {
      auto fn = std::move(settled_);
      settled_ = nullptr;
      fn();
    }
  }
  if (e == UpstreamConn::Event::AttemptFailed) return;
  if (e == UpstreamConn::Event::Ready) {
    ++ready_;
    if (announced_down_) {
      announced_down_ = false;
      obs::info("upstream available again: {} of {} connections ready", ready_, conns_.size());
    }
  } else {
    --ready_;
    if (ready_ == 0 && !announced_down_ && !stopping_) {
      announced_down_ = true;
      obs::warn("upstream unavailable: no connection to {} is ready; clients get errors until one is",
                config::redact_url(cfg_.address));
    }
  }
}

}  // namespace respite::upstream
