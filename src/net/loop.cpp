#include "net/loop.h"

#include <algorithm>

#include "net/stream.h"

namespace respite::net {

Loop::Loop() {
  uv_loop_init(&loop_);
  stamp();
  uv_check_init(&loop_, &check_);
  check_.data = this;
  uv_check_start(&check_, &Loop::on_check);
  uv_unref(reinterpret_cast<uv_handle_t*>(&check_));
  uv_idle_init(&loop_, &idle_);
  idle_.data = this;
}

Loop::~Loop() {
  // Owners close their handles before the loop goes; anything left open is closed here
  // without a callback (its memory is then leaked rather than freed twice).
  uv_walk(&loop_, [](uv_handle_t* h, void*) {
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  }, nullptr);
  // Let every pending close callback run so handle memory is released.
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

int Loop::run() { return uv_run(&loop_, UV_RUN_DEFAULT); }

void Loop::stop() { uv_stop(&loop_); }

void Loop::defer_flush(Stream* s) {
  if (s->in_dirty_list_) return;
  s->in_dirty_list_ = true;
  dirty_.push_back(s);
  if (!idle_active_) {
    idle_active_ = true;
    uv_idle_start(&idle_, &Loop::on_idle);
  }
}

void Loop::forget(Stream* s) {
  if (!s->in_dirty_list_) return;
  s->in_dirty_list_ = false;
  auto it = std::find(dirty_.begin(), dirty_.end(), s);
  if (it != dirty_.end()) *it = nullptr;
  it = std::find(flushing_.begin(), flushing_.end(), s);
  if (it != flushing_.end()) *it = nullptr;
}

void Loop::on_check(uv_check_t* h) { static_cast<Loop*>(h->data)->flush_all(); }
void Loop::on_idle(uv_idle_t* h) { static_cast<Loop*>(h->data)->flush_all(); }

void Loop::flush_all() {
  // Flushing can make handlers queue more output (to other streams); those land in
  // dirty_ and are picked up by the next round of this loop.
  while (!dirty_.empty()) {
    flushing_.swap(dirty_);
    for (size_t i = 0; i < flushing_.size(); ++i) {
      Stream* s = flushing_[i];
      if (!s) continue;
      s->in_dirty_list_ = false;
      s->flush();
    }
    flushing_.clear();
  }
  if (idle_active_) {
    idle_active_ = false;
    uv_idle_stop(&idle_);
  }
}

}  // namespace respite::net
