// ReplyFramer: finds the boundaries of replies coming from Redis, so they can be forwarded
// to clients as the exact bytes Redis sent, never re-encoded.
//
// hiredis's reader does the framing. hiredis 0.14 refuses replies nested deeper than 7
// levels ("No support for nested multi bulk replies with depth > 7"), which Redis can send
// (a Lua script returning nested tables); for such a reply the framer finishes the
// boundary scan with its own nesting-unlimited scanner (NestedScanner), then resumes using
// hiredis for the following replies.
//
// Contract with the caller (the upstream connection):
//  - feed() hands over bytes exactly once, in arrival order, as they are read. The caller
//    keeps its own copy of the bytes until they are framed, and passes them to next() as
//    `unframed`: every fed byte not yet returned as part of a framed reply, in order
//    (the deep-nesting fallback scans these).
//  - next() returns Complete with `len` = the byte length of the oldest unframed reply
//    (counted from the end of the previous reply), NeedMore when no complete reply is
//    buffered, or Error for bytes that are not RESP2 (the upstream connection must be
//    dropped; error() says why).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace respite::resp {

enum class ReplyKind : uint8_t { Status, Error, Integer, Bulk, Nil, Array };

struct ReplyInfo {
  ReplyKind kind = ReplyKind::Nil;  // top-level type of the reply
};

// Scans one RESP2 reply of unlimited nesting depth, incrementally. Exposed for the
// framer's fallback path and for differential tests against hiredis.
class NestedScanner {
 public:
  enum class Status { Complete, NeedMore, Error };
  // Scans from the start of `in` (which must begin at the reply's first byte and may grow
  // between calls). On Complete, `len` is the reply's length in bytes.
  Status scan(std::string_view in, size_t& len, ReplyInfo* info = nullptr);
  void reset();
  const std::string& error() const { return error_; }

 private:
  size_t pos_ = 0;              // offset of the next unscanned byte
  std::string error_;
  // implementation-defined stack of remaining element counts per nesting level
  std::basic_string<int64_t> remaining_;
  int top_kind_ = -1;
};

class ReplyFramer {
 public:
  ReplyFramer();
  ~ReplyFramer();
  ReplyFramer(const ReplyFramer&) = delete;
  ReplyFramer& operator=(const ReplyFramer&) = delete;

  void feed(const char* data, size_t n);
  enum class Status { Complete, NeedMore, Error };
  Status next(std::string_view unframed, size_t& len, ReplyInfo* info = nullptr);
  const std::string& error() const { return error_; }
  // Forgets all buffered state (after the upstream connection is dropped).
  void reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string error_;
};

}  // namespace respite::resp
