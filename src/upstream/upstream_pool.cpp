#include "upstream/upstream_pool.h"

#include "config/upstream_url.h"
#include "net/loop.h"
#include "obs/log.h"

namespace respite::upstream {

UpstreamPool::UpstreamPool(net::Loop& loop, const config::UpstreamConfig& cfg)
    : cfg_(cfg), loop_(loop), reap_timer_(loop) {
  for (size_t i = 0; i < cfg.pool_size; ++i) {
    conns_.push_back(std::make_unique<UpstreamConn>(
        loop, cfg, static_cast<int>(i), [this](UpstreamConn& c, UpstreamConn::Event e) { on_state(c, e); }));
    conns_.back()->set_rtt_histogram(&rtt_);
  }
  tried_.assign(conns_.size(), false);
  untried_ = conns_.size();
}

void UpstreamPool::start(std::function<void()> settled) {
  settled_ = std::move(settled);
  for (auto& c : conns_) c->start();
}

UpstreamPool::~UpstreamPool() {
  // Dedicated connections close without telling owners (they are gone by now).
  pinned_.clear();
}

void UpstreamPool::shutdown(std::string_view error_line) {
  stopping_ = true;
  for (auto& c : conns_) c->shutdown(error_line);
  std::vector<UpstreamConn*> all;
  for (auto& [c, p] : pinned_) all.push_back(c);
  for (auto* c : all) c->shutdown(error_line);  // each reports Lost and is retired
}

UpstreamConn* UpstreamPool::acquire_pinned(PinnedOwner* owner) {
  if (stopping_) return nullptr;
  while (!idle_.empty()) {
    UpstreamConn* c = idle_.back();
    idle_.pop_back();
    auto it = pinned_.find(c);
    if (it == pinned_.end()) continue;
    if (!c->ready()) {
      retire(c);
      continue;
    }
    it->second.owner = owner;
    it->second.use = Use::Borrowed;
    return c;
  }
  if (pinned_.size() >= cfg_.max_pinned) return nullptr;
  auto conn = std::make_unique<UpstreamConn>(
      loop_, cfg_, next_pinned_index_++, [this](UpstreamConn& c, UpstreamConn::Event e) { on_pinned_state(c, e); },
      UpstreamConn::Role::Dedicated);
  UpstreamConn* c = conn.get();
  pinned_.emplace(c, Pinned{std::move(conn), owner, Use::Borrowed});
  c->start();
  return c;
}

void UpstreamPool::release_pinned(UpstreamConn* c, bool wipe, bool reusable) {
  auto it = pinned_.find(c);
  if (it == pinned_.end()) return;
  Pinned& p = it->second;
  p.owner = nullptr;
  c->set_push_sink(nullptr);
  if (stopping_ || !reusable || !c->ready() || c->inflight() > 0) {
    retire(c);
    return;
  }
  if (wipe) {
    p.use = Use::Resetting;
    c->reset_session();  // Ready or Lost follows
    return;
  }
  park(p);
}

void UpstreamPool::park(Pinned& p) {
  if (idle_.size() >= cfg_.pinned_idle) {
    retire(p.conn.get());
    return;
  }
  p.use = Use::Idle;
  idle_.push_back(p.conn.get());
}

void UpstreamPool::retire(UpstreamConn* c) {
  auto it = pinned_.find(c);
  if (it == pinned_.end()) return;
  retired_.push_back(std::move(it->second.conn));
  pinned_.erase(it);
  std::erase(idle_, c);
  if (!reap_timer_.active()) reap_timer_.start(0, 0, [this] { retired_.clear(); });
}

void UpstreamPool::on_pinned_state(UpstreamConn& c, UpstreamConn::Event e) {
  if (e == UpstreamConn::Event::Unavailable || e == UpstreamConn::Event::Available) {
    note_breaker(e, "a dedicated connection");
    return;
  }
  auto it = pinned_.find(&c);
  if (it == pinned_.end()) return;
  Pinned& p = it->second;
  if (e == UpstreamConn::Event::Ready) {
    if (p.use == Use::Borrowed) {
      if (p.owner) p.owner->on_pinned_ready(c);
    } else if (p.use == Use::Resetting) {
      park(p);
    }
    return;
  }
  PinnedOwner* owner = p.use == Use::Borrowed ? p.owner : nullptr;
  retire(&c);
  if (owner) owner->on_pinned_lost(c);
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

void UpstreamPool::note_breaker(UpstreamConn::Event e, std::string_view where) {
  const uint64_t now = loop_.now_ms();
  switch (e) {
    case UpstreamConn::Event::Ready:
    case UpstreamConn::Event::Available: breaker_.success(now); break;
    case UpstreamConn::Event::AttemptFailed:
      breaker_.failure(now, std::string("cannot connect to or set up ") + std::string(where));
      break;
    case UpstreamConn::Event::Lost: breaker_.failure(now, std::string(where) + " was lost"); break;
    case UpstreamConn::Event::Unavailable:
      breaker_.failure(now, "Redis replied that it cannot serve (-LOADING, -MASTERDOWN or -READONLY)");
      break;
  }
}

void UpstreamPool::on_state(UpstreamConn& c, UpstreamConn::Event e) {
  if (!stopping_) note_breaker(e, "a pooled connection");
  if (e == UpstreamConn::Event::Unavailable || e == UpstreamConn::Event::Available) return;
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
  if (listener_) listener_(c, e);
}

}  // namespace respite::upstream
