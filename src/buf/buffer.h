// Buffer: a growable contiguous byte buffer with a read cursor and a write cursor.
//
// Used for socket read buffers (the framers parse in place over the readable region)
// and for output batches. Bytes between the cursors are "readable"; space after the
// write cursor is "writable". consume() advances the read cursor; when it reaches the
// write cursor both reset to zero so a drained buffer never needs a memmove.
// Not thread-safe; knows nothing of sockets or RESP.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace respite::buf {

class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t initial_capacity) { reserve(initial_capacity); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&&) noexcept = default;
  Buffer& operator=(Buffer&&) noexcept = default;

  // Readable bytes.
  const char* data() const { return mem_.get() + rpos_; }
  char* mutable_data() { return mem_.get() + rpos_; }
  size_t size() const { return wpos_ - rpos_; }
  bool empty() const { return wpos_ == rpos_; }
  std::string_view view() const { return {data(), size()}; }
  size_t capacity() const { return cap_; }

  // Drops n readable bytes from the front (n <= size()).
  void consume(size_t n) {
    rpos_ += n;
    if (rpos_ == wpos_) rpos_ = wpos_ = 0;
  }

  // Returns a pointer to at least n writable bytes, growing or compacting as needed.
  // The pointer is valid until the next call that changes capacity.
  char* prepare(size_t n) {
    if (cap_ - wpos_ < n) make_room(n);
    return mem_.get() + wpos_;
  }
  size_t writable() const { return cap_ - wpos_; }
  char* write_ptr() { return mem_.get() + wpos_; }
  // Marks n bytes written at write_ptr() as readable.
  void commit(size_t n) { wpos_ += n; }

  void append(const void* p, size_t n) {
    if (n == 0) return;
    std::memcpy(prepare(n), p, n);
    wpos_ += n;
  }
  void append(std::string_view s) { append(s.data(), s.size()); }

  void clear() { rpos_ = wpos_ = 0; }
  // Ensures capacity for at least n readable+writable bytes in total.
  void reserve(size_t n);
  // Releases memory when empty and larger than keep bytes (after a burst).
  void shrink_if_empty(size_t keep);
  // Moves the readable bytes to the start of the memory.
  void compact();

 private:
  void make_room(size_t n);

  std::unique_ptr<char[]> mem_;  // owned storage, cap_ bytes
  size_t cap_ = 0;               // bytes allocated
  size_t rpos_ = 0;              // first readable byte
  size_t wpos_ = 0;              // one past the last readable byte
};

}  // namespace respite::buf
