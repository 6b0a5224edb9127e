// ReplyFramer: finds the boundaries of replies coming from Redis, so they can be forwarded
// to clients as the exact bytes Redis sent, never re-encoded.
//
// hiredis's reader does the framing. hiredis 0.14 refuses replies nested deeper than 7
// levels ("No support for nested multi bulk replies with depth > 7"), which Redis can send
// (a Lua script returning nested tables); for such a reply the framer finishes the
// boundary scan with its own nesting-unlimited scanner (NestedScanner), then resumes using
// hiredis for the following replies. The same fallback takes arrays announcing more than
// INT_MAX elements, which hiredis 0.14 rejects ("Multi-bulk length out of range").
//
// Contract with the caller (the upstream connection):
//  - feed() hands over bytes exactly once, in arrival order, as they are read. The caller
//    keeps its own copy of the bytes until they are framed, and passes them to next() as
//    `unframed`: every fed byte not yet returned as part of a framed reply, in order
//    (the deep-nesting fallback scans these).
//  - next() returns Complete with `len` = the byte length of the oldest unframed reply
//    (counted from the end of the previous reply), NeedMore when no complete reply is
//    buffered, or Error for bytes that are not RESP2 (the upstream connection must be
//    dropped; error() says why). Error is sticky until reset().
//  - The framer copies bytes into hiredis from `unframed`, a few KiB at a time, when
//    next() needs them (hiredis compacts its buffer after each reply, so handing it a
//    whole large read up front would cost a memmove of the rest per reply); feed() only
//    records how many bytes arrived. An `unframed` shorter than the fed-but-unframed
//    bytes is a caller bug and yields Error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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
  // After Complete the scanner is ready for the next reply (it resets itself); after
  // Error it keeps returning Error until reset(). Nesting is limited to kMaxDepth levels.
  static constexpr size_t kMaxDepth = size_t{1} << 20;
  Status scan(std::string_view in, size_t& len, ReplyInfo* info = nullptr);
  void reset();
  const std::string& error() const { return error_; }

 private:
  // Where the scanner is inside the current reply.
  enum class State : uint8_t { Type, Line, LineLf, Length, LengthLf, BulkData, BulkCr, BulkLf };

  Status fail(std::string message);
  bool finish_value();  // closes finished arrays; true when the whole reply is done

  size_t pos_ = 0;                 // offset of the next unscanned byte
  std::string error_;              // message of the last Error (sticky until reset())
  std::vector<int64_t> remaining_;  // per open array, elements still to scan (explicit stack)
  State state_ = State::Type;      // parser state at pos_
  bool is_bulk_ = false;           // the length being parsed is a bulk's ($), not an array's (*)
  bool negative_ = false;          // the length being parsed started with '-'
  uint8_t digits_ = 0;             // digits of the length seen so far
  uint64_t num_ = 0;               // value of the length parsed so far
  uint64_t bulk_left_ = 0;         // payload bytes of the current bulk still to skip
  ReplyKind top_kind_ = ReplyKind::Nil;  // kind of the reply's top-level value
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
  Status fail(std::string message);

  std::unique_ptr<Impl> impl_;  // hiredis reader, stream offsets and the fallback scanner
  std::string error_;           // message of the last Error
};

}  // namespace respite::resp
