// ReplyFramer and NestedScanner: byte boundaries of RESP2 replies from Redis. hiredis's
// reader frames the ordinary replies; NestedScanner takes over for the replies hiredis 0.14
// refuses (nesting deeper than 7, more than INT_MAX elements) and hiredis resumes after.
#include "resp/reply_framer.h"

#include <hiredis/read.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>

namespace respite::resp {

// ---------------------------------------------------------------------------------------
// NestedScanner
//
// A byte-at-a-time state machine over offsets (the caller may move its buffer between
// calls), with an explicit stack of "elements still to scan" per open array, so depth
// costs heap memory (8 bytes a level, at most kMaxDepth levels = 8 MiB), never C++ stack.
// Lengths are parsed as strictly as hiredis 0.14 does (no sign but "-1", no leading zeros),
// but up to INT64_MAX for both bulks and arrays. Unlike hiredis it also checks the CRLF
// after a bulk's payload. Status, error and integer lines are taken up to the first CRLF,
// unvalidated, as hiredis does.

namespace {

const char* describe_byte(char c, char (&buf)[8]) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) {
    std::snprintf(buf, sizeof buf, "'%c'", c);
  } else {
    std::snprintf(buf, sizeof buf, "\\x%02x", u);
  }
  return buf;
}

}  // namespace

void NestedScanner::reset() {
  pos_ = 0;
  error_.clear();
  remaining_.clear();  // keeps its capacity: no allocation for the next deep reply
  state_ = State::Type;
  is_bulk_ = false;
  negative_ = false;
  digits_ = 0;
  num_ = 0;
  bulk_left_ = 0;
  top_kind_ = ReplyKind::Nil;
}

NestedScanner::Status NestedScanner::fail(std::string message) {
  error_ = std::move(message);
  return Status::Error;
}

bool NestedScanner::finish_value() {
  while (!remaining_.empty()) {
    if (--remaining_.back() > 0) {
      state_ = State::Type;
      return false;
    }
    remaining_.pop_back();
  }
  return true;
}

NestedScanner::Status NestedScanner::scan(std::string_view in, size_t& len, ReplyInfo* info) {
  if (!error_.empty()) return Status::Error;
  if (in.size() < pos_) return fail("reply scanner: input shrank between calls");
  const char* const p = in.data();
  const size_t n = in.size();
  size_t i = pos_;
  bool done = false;
  while (i < n && !done) {
    switch (state_) {
      case State::Type: {
        const char c = p[i++];
        const bool top = remaining_.empty();
        switch (c) {
          case '+':
          case '-':
          case ':':
            if (top) top_kind_ = c == '+' ? ReplyKind::Status
                                 : c == '-' ? ReplyKind::Error
                                            : ReplyKind::Integer;
            state_ = State::Line;
            break;
          case '$':
          case '*':
            if (top) top_kind_ = c == '$' ? ReplyKind::Bulk : ReplyKind::Array;
            is_bulk_ = c == '$';
            negative_ = false;
            digits_ = 0;
            num_ = 0;
            state_ = State::Length;
            break;
          default: {
            char b[8];
            pos_ = i;
            return fail(std::string("Protocol error, got ") + describe_byte(c, b) +
                        " as reply type byte");
          }
        }
        break;
      }
      case State::Line: {
        const void* cr = std::memchr(p + i, '\r', n - i);
        if (cr == nullptr) {
          i = n;
        } else {
          i = static_cast<size_t>(static_cast<const char*>(cr) - p) + 1;
          state_ = State::LineLf;
        }
        break;
      }
      case State::LineLf:
        // A lone '\r' is part of the line; do not consume this byte (it may be '\r' again).
        if (p[i] == '\n') {
          ++i;
          done = finish_value();
        } else {
          state_ = State::Line;
        }
        break;
      case State::Length: {
        const char c = p[i++];
        if (c >= '0' && c <= '9') {
          const auto d = static_cast<uint64_t>(c - '0');
          if (digits_ > 0 && num_ == 0) return fail("Protocol error: length with leading zero");
          if (negative_ && (digits_ > 0 || d != 1)) {
            return fail("Protocol error: negative length other than -1");
          }
          if (num_ > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - d) / 10) {
            return fail("Protocol error: length out of range");
          }
          num_ = num_ * 10 + d;
          ++digits_;
        } else if (c == '-' && digits_ == 0 && !negative_) {
          negative_ = true;
        } else if (c == '\r' && digits_ > 0) {
          state_ = State::LengthLf;
        } else {
          return fail(is_bulk_ ? "Protocol error: bad bulk string length"
                               : "Protocol error: bad multi-bulk length");
        }
        break;
      }
      case State::LengthLf: {
        if (p[i++] != '\n') {
          return fail(is_bulk_ ? "Protocol error: bad bulk string length"
                               : "Protocol error: bad multi-bulk length");
        }
        const bool top = remaining_.empty();
        if (negative_) {  // "$-1" or "*-1"
          if (top) top_kind_ = ReplyKind::Nil;
          done = finish_value();
        } else if (is_bulk_) {
          bulk_left_ = num_;
          state_ = State::BulkData;
        } else if (num_ == 0) {
          done = finish_value();
        } else {
          if (remaining_.size() >= kMaxDepth) {
            return fail("Protocol error: reply nested deeper than " + std::to_string(kMaxDepth) +
                        " levels");
          }
          remaining_.push_back(static_cast<int64_t>(num_));
          state_ = State::Type;
        }
        break;
      }
      case State::BulkData: {
        const uint64_t take = std::min<uint64_t>(bulk_left_, n - i);
        i += static_cast<size_t>(take);
        bulk_left_ -= take;
        if (bulk_left_ == 0) state_ = State::BulkCr;
        break;
      }
      case State::BulkCr:
        if (p[i++] != '\r') return fail("Protocol error: bulk string not followed by CRLF");
        state_ = State::BulkLf;
        break;
      case State::BulkLf:
        if (p[i++] != '\n') return fail("Protocol error: bulk string not followed by CRLF");
        done = finish_value();
        break;
    }
  }
  if (!done) {
    pos_ = i;
    return Status::NeedMore;
  }
  len = i;
  if (info != nullptr) info->kind = top_kind_;
  reset();
  return Status::Complete;
}

// ---------------------------------------------------------------------------------------
// ReplyFramer
//
// Stream offsets count bytes since reset(): `framed` <= `hiredis_fed` <= `fed`. The hiredis
// reader holds copies of stream bytes [x, hiredis_fed) for some x, of which its last
// (len - pos) are unconsumed, so when it emits a reply that reply ends at stream offset
// hiredis_fed - (len - pos). This holds across its internal compaction (sdsrange when
// pos >= 1024), which changes pos and len by the same amount.
//
// The reader is created with a NULL function table, so it builds no reply objects: for a
// finished reply it returns the reply's type cast to a pointer (REDIS_REPLY_STRING = 1 ...
// REDIS_REPLY_ERROR = 6, never NULL), which gives the top-level kind for free.

namespace {

// Unused buffer space the reader may keep when it empties. Steady-state buffers stay
// within a few times kMaxChunk, so this avoids reallocating per read while releasing the
// memory that a large bulk reply made hiredis grab.
constexpr size_t kReaderMaxBuf = 64 * 1024;
// Bytes handed to hiredis at a time: small, so its per-reply compaction moves little;
// growing up to kMaxChunk with what it already buffers, so a large reply needs few calls.
constexpr size_t kMinChunk = 4 * 1024;
constexpr size_t kMaxChunk = 64 * 1024;

// hiredis errors on replies that are valid RESP2 but beyond its limits; the framer hands
// those to NestedScanner.
constexpr const char kDepthError[] = "No support for nested multi bulk replies with depth > 7";
constexpr const char kCountError[] = "Multi-bulk length out of range";

redisReader* new_reader() {
  redisReader* r = redisReaderCreateWithFunctions(nullptr);
  if (r != nullptr) r->maxbuf = kReaderMaxBuf;
  return r;
}

ReplyKind kind_of(void* reply) {
  switch (reinterpret_cast<uintptr_t>(reply)) {
    case REDIS_REPLY_STRING: return ReplyKind::Bulk;
    case REDIS_REPLY_ARRAY: return ReplyKind::Array;
    case REDIS_REPLY_INTEGER: return ReplyKind::Integer;
    case REDIS_REPLY_STATUS: return ReplyKind::Status;
    case REDIS_REPLY_ERROR: return ReplyKind::Error;
    default: return ReplyKind::Nil;
  }
}

}  // namespace

struct ReplyFramer::Impl {
  redisReader* reader = nullptr;  // frames ordinary replies; nullptr while `scanner` has one
  uint64_t fed = 0;               // stream bytes announced by feed()
  uint64_t hiredis_fed = 0;       // stream offset up to which bytes were copied into `reader`
  uint64_t framed = 0;            // stream offset of the end of the last framed reply
  bool failed = false;            // an Error was returned; sticky until reset()
  NestedScanner scanner;          // frames the reply hiredis refused (reader == nullptr)

  ~Impl() {
    if (reader != nullptr) redisReaderFree(reader);
  }
};

ReplyFramer::ReplyFramer() : impl_(std::make_unique<Impl>()) { reset(); }

ReplyFramer::~ReplyFramer() = default;

void ReplyFramer::reset() {
  Impl& m = *impl_;
  if (m.reader != nullptr) redisReaderFree(m.reader);
  m.reader = new_reader();
  m.fed = m.hiredis_fed = m.framed = 0;
  m.failed = false;
  m.scanner.reset();
  error_.clear();
  if (m.reader == nullptr) fail("reply framer: out of memory creating the hiredis reader");
}

void ReplyFramer::feed(const char* /*data: copied from `unframed` in next()*/, size_t n) {
  impl_->fed += n;
}

ReplyFramer::Status ReplyFramer::fail(std::string message) {
  impl_->failed = true;
  error_ = std::move(message);
  return Status::Error;
}

ReplyFramer::Status ReplyFramer::next(std::string_view unframed, size_t& len, ReplyInfo* info) {
  Impl& m = *impl_;
  if (m.failed) return Status::Error;
  const uint64_t avail = m.fed - m.framed;
  if (unframed.size() < avail) {
    return fail("reply framer: caller passed " + std::to_string(unframed.size()) +
                " unframed bytes, " + std::to_string(avail) + " were fed and not yet framed");
  }
  unframed = unframed.substr(0, static_cast<size_t>(avail));

  if (m.reader != nullptr) {
    for (;;) {
      void* reply = nullptr;
      if (redisReaderGetReply(m.reader, &reply) != REDIS_OK) {
        const char* why = m.reader->errstr;
        if (std::strcmp(why, kDepthError) != 0 && std::strcmp(why, kCountError) != 0) {
          return fail(std::string("upstream reply: ") + why);
        }
        // The refused reply starts at `framed` (hiredis works on one reply at a time);
        // hiredis dropped its buffer, and the scanner rescans the reply from `unframed`.
        redisReaderFree(m.reader);
        m.reader = nullptr;
        m.scanner.reset();
        break;
      }
      if (reply != nullptr) {
        const uint64_t end = m.hiredis_fed - (m.reader->len - m.reader->pos);
        len = static_cast<size_t>(end - m.framed);
        m.framed = end;
        if (info != nullptr) info->kind = kind_of(reply);
        return Status::Complete;
      }
      const uint64_t pending = m.fed - m.hiredis_fed;
      if (pending == 0) return Status::NeedMore;
      const size_t chunk = static_cast<size_t>(std::min<uint64_t>(
          pending, std::clamp(m.reader->len - m.reader->pos, kMinChunk, kMaxChunk)));
      const char* from = unframed.data() + (m.hiredis_fed - m.framed);
      if (redisReaderFeed(m.reader, from, chunk) != REDIS_OK) {
        return fail(std::string("upstream reply reader: ") + m.reader->errstr);
      }
      m.hiredis_fed += chunk;
    }
  }

  size_t n = 0;
  switch (m.scanner.scan(unframed, n, info)) {
    case NestedScanner::Status::NeedMore: return Status::NeedMore;
    case NestedScanner::Status::Error: return fail("upstream reply: " + m.scanner.error());
    case NestedScanner::Status::Complete: break;
  }
  len = n;
  m.framed += n;
  // Resume with a fresh hiredis reader; it is fed from `unframed` on the next call.
  m.reader = new_reader();
  m.hiredis_fed = m.framed;
  if (m.reader == nullptr) {
    fail("reply framer: out of memory creating the hiredis reader");
    // The reply itself was framed; report it, the Error shows on the next call.
  }
  return Status::Complete;
}

}  // namespace respite::resp
