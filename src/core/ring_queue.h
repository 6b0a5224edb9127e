// RingQueue: a FIFO over a power-of-two ring that grows by doubling and never shrinks
// below its peak, with O(1) indexed access from the front. Replaces std::deque on the
// per-request paths (reply slots, upstream in-flight queues), where deque's block
// allocations showed up as malloc/free per few requests.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace respite::core {

template <typename T>
class RingQueue {
 public:
  RingQueue() = default;
  RingQueue(const RingQueue&) = delete;
  RingQueue& operator=(const RingQueue&) = delete;
  RingQueue(RingQueue&& o) noexcept { swap(o); }
  RingQueue& operator=(RingQueue&& o) noexcept {
    swap(o);
    return *this;
  }
  ~RingQueue() { clear(); }

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  T& front() { return slot(head_); }
  const T& front() const { return slot(head_); }
  T& back() { return slot(head_ + size_ - 1); }
  T& operator[](size_t i) { return slot(head_ + i); }
  const T& operator[](size_t i) const { return slot(head_ + i); }

  void push_back(T v) {
    if (size_ == cap_) grow();
    new (&slot(head_ + size_)) T(std::move(v));
    ++size_;
  }
  void pop_front() {
    slot(head_).~T();
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
  }
  void clear() {
    while (size_) pop_front();
    head_ = 0;
  }
  void swap(RingQueue& o) noexcept {
    std::swap(mem_, o.mem_);
    std::swap(cap_, o.cap_);
    std::swap(head_, o.head_);
    std::swap(size_, o.size_);
  }

  template <typename F>
  void for_each(F&& f) const {
    for (size_t i = 0; i < size_; ++i) f((*this)[i]);
  }

 private:
  struct alignas(T) Cell {
    unsigned char bytes[sizeof(T)];
  };
  T& slot(size_t i) { return *std::launder(reinterpret_cast<T*>(&mem_[i & (cap_ - 1)])); }
  const T& slot(size_t i) const { return *std::launder(reinterpret_cast<const T*>(&mem_[i & (cap_ - 1)])); }
  void grow() {
    size_t ncap = cap_ ? cap_ * 2 : 16;
    std::unique_ptr<Cell[]> nmem(new Cell[ncap]);
    for (size_t i = 0; i < size_; ++i) {
      T& old = slot(head_ + i);
      new (&nmem[i]) T(std::move(old));
      old.~T();
    }
    mem_ = std::move(nmem);
    cap_ = ncap;
    head_ = 0;
  }

  std::unique_ptr<Cell[]> mem_;  // raw storage for cap_ elements
  size_t cap_ = 0;               // capacity, a power of two (or 0)
  size_t head_ = 0;              // index of the front element
  size_t size_ = 0;              // number of live elements
};

}  // namespace respite::core
