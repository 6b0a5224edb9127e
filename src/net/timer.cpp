#include "net/timer.h"

#include "net/loop.h"

namespace respite::net {

Timer::Timer(Loop& loop) : h_(new Handle) {
  h_->loop = &loop;
  uv_timer_init(loop.raw(), &h_->timer);
  h_->timer.data = h_;
}

Timer::~Timer() {
  uv_timer_stop(&h_->timer);
  h_->fn = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&h_->timer),
           [](uv_handle_t* x) { delete static_cast<Handle*>(x->data); });
}

void Timer::start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> fn) {
  h_->fn = std::move(fn);
  uv_timer_start(&h_->timer, [](uv_timer_t* t) {
    auto* h = static_cast<Handle*>(t->data);
    if (h->fn) {
      h->loop->stamp();
      // Copy: the callback may restart or destroy its own timer.
      auto callback = h->fn;
      callback();
    }
  }, timeout_ms, repeat_ms);
}

void Timer::stop() { uv_timer_stop(&h_->timer); }

bool Timer::active() const { return uv_is_active(reinterpret_cast<const uv_handle_t*>(&h_->timer)) != 0; }

void Timer::unref() { uv_unref(reinterpret_cast<uv_handle_t*>(&h_->timer)); }

}  // namespace respite::net
