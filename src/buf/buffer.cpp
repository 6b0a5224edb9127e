#include "buf/buffer.h"

#include <algorithm>

namespace respite::buf {

void Buffer::compact() {
  if (rpos_ == 0) return;
  size_t n = size();
  if (n) std::memmove(mem_.get(), mem_.get() + rpos_, n);
  rpos_ = 0;
  wpos_ = n;
}

void Buffer::make_room(size_t n) {
  size_t live = size();
  // Compacting is enough when the dead prefix makes the room. Moving `live` bytes is
  // paid for by the rpos_ >= live bytes consumed since the last move, so the cost stays
  // linear, and a socket buffer with a small partial request at its end is reused
  // instead of doubled.
  if (cap_ - live >= n && rpos_ >= live) {
    compact();
    return;
  }
  size_t want = std::max<size_t>({live + n, cap_ * 2, 4096});
  std::unique_ptr<char[]> mem(new char[want]);
  if (live) std::memcpy(mem.get(), mem_.get() + rpos_, live);
  mem_ = std::move(mem);
  cap_ = want;
  rpos_ = 0;
  wpos_ = live;
}

void Buffer::reserve(size_t n) {
  if (cap_ >= n) return;
  make_room(n - size());
}

void Buffer::shrink_if_empty(size_t keep) {
  if (empty() && cap_ > keep) {
    mem_.reset();
    cap_ = rpos_ = wpos_ = 0;
  }
}

}  // namespace respite::buf
