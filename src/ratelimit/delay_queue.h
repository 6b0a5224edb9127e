// DelayQueue: requests held by `delay` rate-limit rules, by the time they may go. The
// server keeps one and releases the due entries from a timer. Earliest first; entries due
// at the same time leave in the order they came (a client's and the clients' order).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace respite::ratelimit {

class DelayQueue {
 public:
  void push(uint64_t due_ns, uint64_t id) {
    heap_.push_back(Entry{due_ns, next_seq_++, id});
    std::push_heap(heap_.begin(), heap_.end(), later);
  }
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  // The earliest due time (the queue must not be empty).
  uint64_t next_due() const { return heap_.front().due; }
  // Removes the entries due at or before `now_ns`, earliest first, calling fn(id) for each.
  template <typename Fn>
  void pop_due(uint64_t now_ns, Fn fn) {
    while (!heap_.empty() && heap_.front().due <= now_ns) {
      std::pop_heap(heap_.begin(), heap_.end(), later);
      uint64_t id = heap_.back().id;
      heap_.pop_back();
      fn(id);
    }
  }

 private:
  struct Entry {
    uint64_t due;  // when the request may go
    uint64_t seq;  // arrival order, for ties
    uint64_t id;   // the client session
  };
  // std::*_heap keep the greatest first: "greater" is earlier.
  static bool later(const Entry& a, const Entry& b) { return a.due != b.due ? a.due > b.due : a.seq > b.seq; }

  std::vector<Entry> heap_;
  uint64_t next_seq_ = 0;
};

}  // namespace respite::ratelimit
