// libFuzzer target for RequestFramer: frames the input whole, then again as a stream of
// chunks whose sizes come from the input, and aborts unless both give the same requests,
// the same final status and the same error. Small limits put the limit paths in reach.
//
// Input layout: byte 0 picks the limits and how many chunk-size bytes follow (1..8);
// those bytes give the chunk sizes (cycled); the rest is the client byte stream.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "resp/request_framer.h"

namespace {

using respite::resp::FrameStatus;
using respite::resp::Request;
using respite::resp::RequestFramer;
using respite::resp::RequestLimits;

// Everything one pass over the stream produced, copied out of the framer's views.
struct Outcome {
  std::vector<std::vector<std::string>> args;  // arguments of each Complete request
  std::vector<size_t> raw_lens;                // raw_len of each Complete request
  std::vector<bool> inline_flags;              // is_inline of each Complete request
  FrameStatus last = FrameStatus::NeedMore;    // status that ended the pass
  std::string error;                           // error() if the pass ended in Error
  size_t leftover = 0;                         // unconsumed bytes at the end (0 on Error)
  size_t hint = 0;                             // bytes_needed_hint() after a final NeedMore
  bool operator==(const Outcome&) const = default;
};

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "request_framer_fuzz: %s\n", what);
    std::abort();
  }
}

// Feeds `stream` in chunks (cycling `chunks`; empty = all at once) into a caller-style
// buffer that is appended to and compacted, so it moves between calls.
Outcome frame(std::string_view stream, const std::vector<size_t>& chunks, const RequestLimits& limits) {
  RequestFramer framer(limits);
  Request req;
  Outcome out;
  std::string buf;
  size_t off = 0;
  size_t ci = 0;
  while (off < stream.size()) {
    size_t n = chunks.empty() ? stream.size() : chunks[ci++ % chunks.size()];
    if (n > stream.size() - off) n = stream.size() - off;
    buf.append(stream.substr(off, n));
    off += n;
    for (;;) {
      size_t consumed = 12345;
      out.last = framer.next(buf, req, consumed);
      if (out.last != FrameStatus::Complete) {
        check(consumed == 0, "consumed != 0 without a complete request");
        break;
      }
      check(consumed == req.raw_len && consumed > 0 && consumed <= buf.size(),
            "bad consumed/raw_len");
      std::vector<std::string> args;
      size_t arg_bytes = 0;
      for (std::string_view a : req.args) {
        args.emplace_back(a);
        arg_bytes += a.size();
      }
      check(arg_bytes <= consumed, "arguments larger than the request");
      check(req.is_inline || req.args.size() <= limits.max_args, "max_args exceeded");
      for (std::string_view a : req.args) {
        check(req.is_inline || a.size() <= limits.max_bulk_len, "max_bulk_len exceeded");
      }
      out.args.push_back(std::move(args));
      out.raw_lens.push_back(req.raw_len);
      out.inline_flags.push_back(req.is_inline);
      buf.erase(0, consumed);
    }
    if (out.last == FrameStatus::Error) {
      out.error = framer.error();
      check(out.error.rfind("Protocol error: ", 0) == 0, "error not worded like Redis");
      check(out.error.find_first_of("\r\n") == std::string::npos, "line break in error");
      // Sticky until reset(); usable again afterwards.
      size_t consumed = 0;
      check(framer.next(buf, req, consumed) == FrameStatus::Error, "error not sticky");
      framer.reset();
      check(framer.next("*0\r\n", req, consumed) == FrameStatus::Complete, "reset failed");
      break;
    }
  }
  // After an error the unconsumed byte count depends on when the error was seen.
  out.leftover = out.last == FrameStatus::Error ? 0 : buf.size();
  if (out.last == FrameStatus::NeedMore) {
    out.hint = framer.bytes_needed_hint();
    check(out.hint <= limits.max_bulk_len + 2, "hint larger than a bulk");
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t control = data[0];
  const size_t nsizes = 1 + (control & 7);
  if (size < 1 + nsizes) return 0;
  RequestLimits limits;
  if (control & 8) {  // small limits, to reach the limit paths
    limits.max_bulk_len = 16;
    limits.max_args = 8;
    limits.max_inline_len = 32;
  } else if (control & 16) {
    limits.max_bulk_len = 0;
    limits.max_args = 1;
    limits.max_inline_len = 0;
  }
  std::vector<size_t> chunks;
  for (size_t i = 0; i < nsizes; ++i) chunks.push_back(1 + data[1 + i] % 32);
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1 + nsizes, size - 1 - nsizes);

  const Outcome all = frame(stream, {}, limits);
  const Outcome split = frame(stream, chunks, limits);
  check(all == split, "chunked framing differs from whole-input framing");
  const Outcome bytewise = frame(stream, {1}, limits);
  check(all == bytewise, "byte-at-a-time framing differs from whole-input framing");
  return 0;
}
