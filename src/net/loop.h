// Loop: owns the libuv event loop and the end-of-iteration write batching.
//
// Streams that gained output during an iteration register themselves with
// defer_flush(); the loop flushes all of them once, after every socket callback of the
// iteration has run (uv_check), so many replies to one client, or many clients'
// requests to one upstream connection, leave in one write system call.
#pragma once

#include <uv.h>

#include <cstdint>
#include <ctime>
#include <vector>

namespace respite::net {

class Stream;

class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_t* raw() { return &loop_; }
  // Runs until stop() or until no handles are left.
  int run();
  void stop();
  // Milliseconds of the loop's cached clock.
  uint64_t now_ms() const { return uv_now(&loop_); }
  // The monotonic clock in nanoseconds as last read by stamp(): where requests or replies
  // start moving (a client session framing its input, an upstream connection reading
  // replies), and at timers, connects, accepts and signals. Latency figures and rate limits
  // read it, so a batch of requests or replies costs one clock reading. (The end-of-iteration
  // flush does not stamp: a batch written there carries the time of the callback that
  // queued it, microseconds earlier.)
  uint64_t clock_ns() const { return clock_ns_; }
  uint64_t stamp() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);  // what uv_hrtime reads, without its two calls around it
    return clock_ns_ = static_cast<uint64_t>(t.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(t.tv_nsec);
  }

  // Registers `s` to be flushed at the end of this iteration (idempotent).
  void defer_flush(Stream* s);
  // Forgets `s` (it is closing).
  void forget(Stream* s);

 private:
  static void on_check(uv_check_t* h);
  static void on_idle(uv_idle_t* h);
  void flush_all();

  uv_loop_t loop_;              // the libuv loop (not the default loop: tests may run several)
  uv_check_t check_;            // runs flush_all after the poll phase
  uv_idle_t idle_;              // active while streams wait, so poll does not block first
  bool idle_active_ = false;    // whether idle_ is started
  uint64_t clock_ns_ = 0;       // CLOCK_MONOTONIC (as uv_hrtime) at the last stamp()
  std::vector<Stream*> dirty_;  // streams with unflushed output, in registration order
  std::vector<Stream*> flushing_;  // scratch swapped with dirty_ during flush_all
};

}  // namespace respite::net
