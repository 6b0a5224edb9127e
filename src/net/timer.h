// Timer: RAII wrapper over uv_timer_t. The handle's memory is released in its close
// callback, so destroying a Timer from inside its own callback is safe.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>

namespace respite::net {

class Loop;

class Timer {
 public:
  explicit Timer(Loop& loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // (Re)arms: fires after `timeout_ms`, then every `repeat_ms` (0 = once).
  void start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> fn);
  void stop();
  bool active() const;
  // Timers do not keep the loop alive on their own when unref'd.
  void unref();

 private:
  struct Handle {
    uv_timer_t timer;            // the libuv timer
    Loop* loop;                  // stamped before the callback runs
    std::function<void()> fn;    // callback; cleared when the owner is gone
  };
  Handle* h_;                    // heap state, freed in the close callback
};

}  // namespace respite::net
