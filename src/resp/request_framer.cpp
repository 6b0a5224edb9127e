// RequestFramer: frames client requests (RESP multibulk and inline) in place, with the
// semantics and error wording of Redis 7.0's processMultibulkBuffer/processInlineBuffer.
//
// Deliberate differences from Redis, all stricter or saner on input Redis mishandles:
//  - A NUL byte is an ordinary byte (Redis searches lines with strchr, so a NUL before
//    the line end makes it wait for more input until its 64 KiB limit).
//  - The byte after a header's '\r' must be '\n', and a bulk must be followed by "\r\n"
//    (Redis skips those two bytes unchecked).
//  - Line-length limits are decided by the first limit+1 bytes of the line, so the outcome
//    does not depend on how the input was split into reads.
#include "resp/request_framer.h"

#include <climits>
#include <cstring>

namespace respite::resp {

namespace {

// Longest "*<count>" / "$<len>" line Redis waits for (PROTO_INLINE_MAX_SIZE).
constexpr size_t kMaxCountLine = 64 * 1024;
// arg_offsets_ capacity kept between requests; a larger one is released.
constexpr size_t kKeepArgs = 8192;

constexpr std::string_view kTooBigInline = "Protocol error: too big inline request";
constexpr std::string_view kUnbalancedQuotes = "Protocol error: unbalanced quotes in request";
constexpr std::string_view kTooBigMbulk = "Protocol error: too big mbulk count string";
constexpr std::string_view kInvalidMbulk = "Protocol error: invalid multibulk length";
constexpr std::string_view kTooBigBulk = "Protocol error: too big bulk count string";
constexpr std::string_view kInvalidBulk = "Protocol error: invalid bulk length";
constexpr std::string_view kBulkNoCrlf = "Protocol error: bulk data not followed by CRLF";

enum class LineScan { Found, NeedMore, TooLong };

// Finds `delim` in the line starting at `line_start`, looking only at the line's first
// max_len+1 bytes. `scan` is the offset already searched (kept across calls so a slowly
// arriving line is searched once); `at` receives the delimiter's offset.
LineScan find_delim(std::string_view in, size_t line_start, size_t max_len, char delim,
                    size_t& scan, size_t& at) {
  const size_t avail = in.size() - line_start;
  const size_t end = avail > max_len ? line_start + max_len + 1 : in.size();
  const size_t from = scan > line_start ? scan : line_start;
  if (from < end) {
    // Header lines are a few bytes long: a plain loop beats a memchr call for those.
    const size_t short_end = end - from > 24 ? from + 24 : end;
    for (size_t i = from; i < short_end; ++i) {
      if (in[i] == delim) {
        at = scan = i;
        return LineScan::Found;
      }
    }
    const void* hit = short_end == end ? nullptr
                                       : std::memchr(in.data() + short_end, delim, end - short_end);
    if (hit != nullptr) {
      at = static_cast<size_t>(static_cast<const char*>(hit) - in.data());
      scan = at;
      return LineScan::Found;
    }
    scan = end;
  }
  return avail > max_len ? LineScan::TooLong : LineScan::NeedMore;
}

// Parses a decimal integer exactly as Redis's string2ll accepts it: optional '-', no '+',
// no leading zeros, no spaces, fits in int64.
bool parse_int(const char* p, size_t n, int64_t& out) {
  if (n == 0 || n > 20) return false;
  if (n == 1 && p[0] == '0') {
    out = 0;
    return true;
  }
  size_t i = 0;
  const bool negative = p[0] == '-';
  if (negative && ++i == n) return false;
  if (p[i] < '1' || p[i] > '9') return false;
  uint64_t v = static_cast<uint64_t>(p[i++] - '0');
  for (; i < n; ++i) {
    const unsigned d = static_cast<unsigned>(static_cast<unsigned char>(p[i])) - '0';
    if (d > 9 || v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (negative) {
    if (v > static_cast<uint64_t>(INT64_MAX) + 1) return false;
    out = static_cast<int64_t>(0 - v);  // two's complement; v == 2^63 gives INT64_MIN
  } else {
    if (v > static_cast<uint64_t>(INT64_MAX)) return false;
    out = static_cast<int64_t>(v);
  }
  return true;
}

// isspace() in the C locale, which is what sdssplitargs uses to skip blanks.
bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
  if (c <= '9') return c - '0';
  if (c <= 'F') return c - 'A' + 10;
  return c - 'a' + 10;
}

}  // namespace

RequestFramer::RequestFramer(RequestLimits limits) : limits_(limits) {}

size_t RequestFramer::bytes_needed_hint() const { return need_hint_; }

void RequestFramer::reset() {
  error_.clear();
  state_ = State::Start;
  pos_ = 0;
  scan_ = 0;
  seen_ = 0;
  args_total_ = 0;
  bulk_len_ = 0;
  arg_offsets_.clear();
  need_hint_ = 0;
}

FrameStatus RequestFramer::fail(std::string_view message) {
  error_.assign(message);
  state_ = State::Failed;
  return FrameStatus::Error;
}

FrameStatus RequestFramer::next(std::string_view in, Request& req, size_t& consumed) {
  consumed = 0;
  need_hint_ = 0;
  if (state_ == State::Failed) return FrameStatus::Error;
  // Misuse guard: the caller dropped bytes it had not consumed; start the request over
  // rather than read past the end of `in`.
  if (state_ != State::Start && in.size() < seen_) state_ = State::Start;
  if (state_ == State::Start) {
    if (in.empty()) return FrameStatus::NeedMore;
    pos_ = 0;
    scan_ = 0;
    if (arg_offsets_.capacity() > kKeepArgs) std::vector<std::pair<size_t, size_t>>().swap(arg_offsets_);
    arg_offsets_.clear();
    state_ = in[0] == '*' ? State::Count : State::Inline;
  }
  const FrameStatus status =
      state_ == State::Inline ? frame_inline(in, req, consumed) : frame_multibulk(in, req, consumed);
  seen_ = status == FrameStatus::NeedMore ? in.size() : 0;
  return status;
}

FrameStatus RequestFramer::frame_multibulk(std::string_view in, Request& req, size_t& consumed) {
  const char* p = in.data();
  const size_t n = in.size();
  size_t cr = 0;
  if (state_ == State::Count) {
    switch (find_delim(in, 0, kMaxCountLine, '\r', scan_, cr)) {
      case LineScan::NeedMore: return FrameStatus::NeedMore;
      case LineScan::TooLong: return fail(kTooBigMbulk);
      case LineScan::Found: break;
    }
    if (cr + 1 >= n) return FrameStatus::NeedMore;  // the '\n' has not arrived yet
    int64_t count = 0;
    if (!parse_int(p + 1, cr - 1, count) || p[cr + 1] != '\n' || count > INT_MAX ||
        (count > 0 && static_cast<uint64_t>(count) > limits_.max_args)) {
      return fail(kInvalidMbulk);
    }
    pos_ = cr + 2;
    if (count <= 0) {  // "*0", "*-1": an empty request that gets no reply
      req.args.clear();
      req.is_inline = false;
      req.raw_len = consumed = pos_;
      state_ = State::Start;
      return FrameStatus::Complete;
    }
    args_total_ = static_cast<uint64_t>(count);
    scan_ = pos_;
    state_ = State::BulkHeader;
  }

  for (;;) {
    if (state_ == State::BulkHeader) {
      switch (find_delim(in, pos_, kMaxCountLine, '\r', scan_, cr)) {
        case LineScan::NeedMore: return FrameStatus::NeedMore;
        case LineScan::TooLong: return fail(kTooBigBulk);
        case LineScan::Found: break;
      }
      if (cr + 1 >= n) return FrameStatus::NeedMore;
      if (p[pos_] != '$') {
        // Like Redis's addReplyErrorFormat, keep the reply on one line.
        const char got = p[pos_] == '\r' || p[pos_] == '\n' || p[pos_] == '\0' ? ' ' : p[pos_];
        error_.assign("Protocol error: expected '$', got '");
        error_.push_back(got);
        error_.push_back('\'');
        state_ = State::Failed;
        return FrameStatus::Error;
      }
      int64_t len = 0;
      if (!parse_int(p + pos_ + 1, cr - pos_ - 1, len) || p[cr + 1] != '\n' || len < 0 ||
          static_cast<uint64_t>(len) > limits_.max_bulk_len) {
        return fail(kInvalidBulk);
      }
      bulk_len_ = static_cast<uint64_t>(len);
      pos_ = cr + 2;
      state_ = State::BulkData;
    }
    const uint64_t avail = n - pos_;
    if (avail < bulk_len_ + 2) {
      need_hint_ = static_cast<size_t>(bulk_len_ + 2 - avail);
      return FrameStatus::NeedMore;
    }
    const size_t end = pos_ + static_cast<size_t>(bulk_len_);
    if (p[end] != '\r' || p[end + 1] != '\n') return fail(kBulkNoCrlf);
    arg_offsets_.emplace_back(pos_, static_cast<size_t>(bulk_len_));
    pos_ = end + 2;
    if (arg_offsets_.size() == args_total_) break;
    scan_ = pos_;
    state_ = State::BulkHeader;
  }

  req.args.clear();
  for (const auto& [offset, len] : arg_offsets_) req.args.emplace_back(p + offset, len);
  req.is_inline = false;
  req.raw_len = consumed = pos_;
  state_ = State::Start;
  return FrameStatus::Complete;
}

FrameStatus RequestFramer::frame_inline(std::string_view in, Request& req, size_t& consumed) {
  size_t nl = 0;
  switch (find_delim(in, 0, limits_.max_inline_len, '\n', scan_, nl)) {
    case LineScan::NeedMore: return FrameStatus::NeedMore;
    case LineScan::TooLong: return fail(kTooBigInline);
    case LineScan::Found: break;
  }
  const size_t line_len = nl > 0 && in[nl - 1] == '\r' ? nl - 1 : nl;
  if (!split_inline(in.substr(0, line_len))) return fail(kUnbalancedQuotes);
  req.args.clear();
  for (const auto& [offset, len] : arg_offsets_) req.args.emplace_back(inline_buf_.data() + offset, len);
  req.is_inline = true;
  req.raw_len = consumed = nl + 1;
  state_ = State::Start;
  return FrameStatus::Complete;
}

// Splits an inline line into arguments with the rules of Redis's sdssplitargs: blanks
// separate arguments; "double quotes" take \n \r \t \b \a \xHH and \<any> escapes;
// 'single quotes' take only \'; a closing quote must be followed by a blank or the end of
// the line. Unquoted bytes go to inline_buf_ (never longer than the line).
bool RequestFramer::split_inline(std::string_view line) {
  arg_offsets_.clear();
  inline_buf_.resize(line.size());
  char* const base = inline_buf_.data();
  char* out = base;
  const char* p = line.data();
  const char* const e = p + line.size();
  for (;;) {
    while (p < e && is_space(*p)) ++p;
    if (p == e) break;
    const size_t start = static_cast<size_t>(out - base);
    bool in_dq = false;  // inside "double quotes"
    bool in_sq = false;  // inside 'single quotes'
    for (bool done = false; !done;) {
      if (in_dq) {
        if (p == e) return false;  // unterminated quotes
        if (*p == '\\' && e - p >= 4 && p[1] == 'x' && is_hex(p[2]) && is_hex(p[3])) {
          *out++ = static_cast<char>(hex_value(p[2]) * 16 + hex_value(p[3]));
          p += 4;
        } else if (*p == '\\' && e - p >= 2) {
          switch (p[1]) {
            case 'n': *out++ = '\n'; break;
            case 'r': *out++ = '\r'; break;
            case 't': *out++ = '\t'; break;
            case 'b': *out++ = '\b'; break;
            case 'a': *out++ = '\a'; break;
            default: *out++ = p[1]; break;
          }
          p += 2;
        } else if (*p == '"') {
          if (p + 1 < e && !is_space(p[1])) return false;
          ++p;
          done = true;
        } else {
          *out++ = *p++;
        }
      } else if (in_sq) {
        if (p == e) return false;
        if (*p == '\\' && e - p >= 2 && p[1] == '\'') {
          *out++ = '\'';
          p += 2;
        } else if (*p == '\'') {
          if (p + 1 < e && !is_space(p[1])) return false;
          ++p;
          done = true;
        } else {
          *out++ = *p++;
        }
      } else if (p == e) {
        done = true;
      } else {
        switch (*p) {
          case ' ':
          case '\n':
          case '\r':
          case '\t': done = true; ++p; break;
          case '"': in_dq = true; ++p; break;
          case '\'': in_sq = true; ++p; break;
          default: *out++ = *p++; break;
        }
      }
    }
    arg_offsets_.emplace_back(start, static_cast<size_t>(out - base) - start);
  }
  return true;
}

}  // namespace respite::resp
