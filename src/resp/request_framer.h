// RequestFramer: frames untrusted client requests (RESP multibulk and inline commands)
// in place over the caller's read buffer.
//
// Contract with the caller:
//  - The caller passes the readable bytes that start at the first byte not yet consumed.
//    Between calls it may append bytes, and may move the buffer (realloc/compact), but
//    must not drop or change bytes it has not consumed.
//  - next() returns Complete when one whole request is framed: `consumed` is its length in
//    bytes, which the caller discards after it is done with `req` (the argument views
//    point into the caller's bytes, or into the framer's scratch for inline requests, and
//    stay valid until the next call to next()).
//  - NeedMore: no complete request yet; `consumed` is 0. The framer keeps its progress
//    (as offsets), so a large request arriving in many reads is scanned once.
//  - Error: a protocol error; error() holds the message worded like Redis
//    ("Protocol error: invalid bulk length"). The caller replies "-ERR <message>" and
//    closes the connection after flushing. The framer must be reset() before reuse.
//  - A Complete request with zero arguments (empty inline line, "*0", "*-1") is framed
//    but gets no reply, as in Redis.
// Limits are checked before anything is buffered or reserved, so a header announcing a
// huge count or length allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace respite::resp {

struct RequestLimits {
  size_t max_bulk_len = 512u * 1024 * 1024;  // longest single argument (Redis proto-max-bulk-len)
  size_t max_args = 1024u * 1024;            // most arguments in one multibulk request
  size_t max_inline_len = 64u * 1024;        // longest inline request line (Redis: 64 KiB)
};

enum class FrameStatus { Complete, NeedMore, Error };

struct Request {
  std::vector<std::string_view> args;  // argument views (see contract above)
  bool is_inline = false;              // true when the request was an inline command
  size_t raw_len = 0;                  // bytes of input this request occupied
};

class RequestFramer {
 public:
  explicit RequestFramer(RequestLimits limits = {});

  FrameStatus next(std::string_view in, Request& req, size_t& consumed);

  // After NeedMore: how many more bytes of input, at least, the current request needs
  // (0 when unknown, e.g. inside a header line). Lets the caller reserve a large bulk once.
  size_t bytes_needed_hint() const;

  const std::string& error() const { return error_; }
  void reset();
  void set_limits(const RequestLimits& limits) { limits_ = limits; }
  const RequestLimits& limits() const { return limits_; }

 private:
  // Where the framer is inside the request that starts at the caller's first unconsumed byte.
  enum class State : uint8_t { Start, Inline, Count, BulkHeader, BulkData, Failed };

  FrameStatus frame_inline(std::string_view in, Request& req, size_t& consumed);
  FrameStatus frame_multibulk(std::string_view in, Request& req, size_t& consumed);
  bool split_inline(std::string_view line);  // sdssplitargs rules; false on bad quotes
  FrameStatus fail(std::string_view message);

  // Implementation state: the position reached inside a partially received request, as
  // offsets from the request's first byte (the caller may move its buffer between calls).
  RequestLimits limits_;                    // limits checked before anything is buffered
  std::string error_;                       // message of the last Error ("Protocol error: ...")
  State state_ = State::Start;              // parser state for the current request
  size_t pos_ = 0;                          // offset of the next unparsed byte of this request
  size_t scan_ = 0;                         // offset up to which the current line was searched
  size_t seen_ = 0;                         // input size at the last NeedMore (misuse guard)
  uint64_t args_total_ = 0;                 // announced argument count (multibulk)
  uint64_t bulk_len_ = 0;                   // announced length of the bulk being read
  std::vector<std::pair<size_t, size_t>> arg_offsets_;  // (offset, length) of parsed args
  std::string inline_buf_;                  // unquoted inline arguments, back to back (scratch)
  size_t need_hint_ = 0;                    // bytes still missing for the current bulk + CRLF
};

}  // namespace respite::resp
