// Differential fuzz target for ReplyFramer and NestedScanner, with hiredis as the oracle.
//
// Oracle: the whole input framed by a plain hiredis reader; where hiredis refuses a reply
// that is RESP2 beyond its limits (depth > 7, more than INT_MAX elements) the oracle frames
// that one reply with a fresh NestedScanner over the whole rest of the input and restarts
// hiredis after it, which is the framer's documented behaviour. The framer under test gets
// the input in chunks whose sizes derive from the input, and must produce the same reply
// lengths, kinds and final status. For every reply hiredis frames (depth <= 7) the scanner
// must agree, except where hiredis is laxer (it skips the two bytes after a bulk payload
// unchecked, the scanner demands CRLF). Any mismatch aborts.
#include <hiredis/read.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "resp/reply_framer.h"

using respite::resp::NestedScanner;
using respite::resp::ReplyFramer;
using respite::resp::ReplyInfo;
using respite::resp::ReplyKind;

namespace {

enum class End { NeedMore, Error };

// Replies framed from an input, and how framing stopped.
struct Result {
  std::vector<size_t> lens;      // byte length of each framed reply
  std::vector<ReplyKind> kinds;  // its top-level kind
  End end = End::NeedMore;       // status after the last reply
};

[[noreturn]] void mismatch(const char* what, size_t a, size_t b) {
  std::fprintf(stderr, "reply_framer_fuzz mismatch: %s (%zu vs %zu)\n", what, a, b);
  std::abort();
}

void check(bool ok, const char* what, size_t a = 0, size_t b = 0) {
  if (!ok) mismatch(what, a, b);
}

ReplyKind kind_of(void* reply) {
  switch (reinterpret_cast<uintptr_t>(reply)) {
    case REDIS_REPLY_STRING: return ReplyKind::Bulk;
    case REDIS_REPLY_ARRAY: return ReplyKind::Array;
    case REDIS_REPLY_INTEGER: return ReplyKind::Integer;
    case REDIS_REPLY_STATUS: return ReplyKind::Status;
    case REDIS_REPLY_ERROR: return ReplyKind::Error;
    case REDIS_REPLY_NIL: return ReplyKind::Nil;
    default: mismatch("hiredis returned an unexpected dummy reply pointer", 0, 0);
  }
}

// Scans `in` whole, and again in growing prefixes of `step` bytes; both must agree.
NestedScanner::Status scan_both(std::string_view in, size_t step, size_t& len, ReplyInfo& info,
                                std::string& error) {
  NestedScanner whole;
  const NestedScanner::Status a = whole.scan(in, len, &info);
  NestedScanner parts;
  size_t plen = 0;
  ReplyInfo pinfo;
  NestedScanner::Status b = NestedScanner::Status::NeedMore;
  for (size_t have = 0; have < in.size() && b == NestedScanner::Status::NeedMore;) {
    have = std::min(in.size(), have + step);
    b = parts.scan(in.substr(0, have), plen, &pinfo);
  }
  if (in.empty()) b = parts.scan(in, plen, &pinfo);
  check(a == b, "scanner whole vs incremental status", static_cast<size_t>(a),
        static_cast<size_t>(b));
  if (a == NestedScanner::Status::Complete) {
    check(len == plen, "scanner whole vs incremental length", len, plen);
    check(info.kind == pinfo.kind, "scanner whole vs incremental kind");
  }
  error = whole.error();
  return a;
}

Result oracle(std::string_view in, size_t step) {
  Result out;
  size_t off = 0;  // start of the reply being framed
  for (;;) {
    redisReader* r = redisReaderCreateWithFunctions(nullptr);
    check(r != nullptr, "hiredis reader allocation");
    const std::string_view rest = in.substr(off);
    if (!rest.empty()) redisReaderFeed(r, rest.data(), rest.size());
    bool restart = false;
    for (;;) {
      void* reply = nullptr;
      const int rc = redisReaderGetReply(r, &reply);
      size_t slen = 0;
      ReplyInfo sinfo;
      std::string serr;
      if (rc == REDIS_OK && reply != nullptr) {
        const size_t end = in.size() - (r->len - r->pos);
        const size_t len = end - off;
        // The scanner must frame it identically, or reject a bulk hiredis did not check.
        const auto st = scan_both(in.substr(off), step, slen, sinfo, serr);
        if (st == NestedScanner::Status::Complete) {
          check(slen == len, "scanner vs hiredis length", slen, len);
          check(sinfo.kind == kind_of(reply), "scanner vs hiredis kind");
        } else {
          check(st == NestedScanner::Status::Error &&
                    serr.find("not followed by CRLF") != std::string::npos,
                "scanner refused a reply hiredis framed", len, 0);
        }
        out.lens.push_back(len);
        out.kinds.push_back(kind_of(reply));
        off = end;
        continue;
      }
      const auto st = scan_both(in.substr(off), step, slen, sinfo, serr);
      if (rc == REDIS_OK) {  // hiredis needs more
        check(st != NestedScanner::Status::Complete, "scanner complete where hiredis needs more",
              slen, 0);
        out.end = End::NeedMore;
        break;
      }
      const bool beyond = std::strcmp(r->errstr, "No support for nested multi bulk replies with depth > 7") == 0 ||
                          std::strcmp(r->errstr, "Multi-bulk length out of range") == 0;
      if (!beyond) {
        check(st == NestedScanner::Status::Error, "scanner accepted what hiredis rejects");
        out.end = End::Error;
        break;
      }
      // hiredis's limits: the scanner is the authority for this reply.
      if (st == NestedScanner::Status::Complete) {
        out.lens.push_back(slen);
        out.kinds.push_back(sinfo.kind);
        off += slen;
        restart = true;
      } else {
        out.end = st == NestedScanner::Status::Error ? End::Error : End::NeedMore;
      }
      break;
    }
    redisReaderFree(r);
    if (!restart) return out;
  }
}

uint64_t hash(std::string_view in) {
  uint64_t h = 1469598103934665603ull;
  for (char c : in) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}

Result framer(std::string_view in, uint64_t seed) {
  Result out;
  ReplyFramer f;
  size_t fed = 0;
  size_t head = 0;  // in[head, fed) is unframed
  uint64_t x = seed | 1;
  while (fed < in.size()) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    // Mostly small reads, sometimes a large one, so both hiredis chunking paths run.
    const size_t want = (x & 7) == 0 ? 1 + (x >> 8) % 8192 : 1 + (x >> 8) % 17;
    const size_t n = std::min(want, in.size() - fed);
    f.feed(in.data() + fed, n);
    fed += n;
    for (;;) {
      size_t len = 0;
      ReplyInfo info;
      const ReplyFramer::Status st = f.next(in.substr(head, fed - head), len, &info);
      if (st == ReplyFramer::Status::Complete) {
        check(len > 0 && len <= fed - head, "framer length out of bounds", len, fed - head);
        out.lens.push_back(len);
        out.kinds.push_back(info.kind);
        head += len;
        continue;
      }
      if (st == ReplyFramer::Status::Error) {
        check(!f.error().empty(), "framer error without a message");
        out.end = End::Error;
        return out;
      }
      break;
    }
  }
  out.end = End::NeedMore;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const uint64_t seed = hash(in);
  const Result want = oracle(in, 1 + seed % 7);
  const Result got = framer(in, seed);
  const size_t n = std::min(want.lens.size(), got.lens.size());
  for (size_t i = 0; i < n; ++i) {
    check(want.lens[i] == got.lens[i], "framer vs oracle length", got.lens[i], want.lens[i]);
    check(want.kinds[i] == got.kinds[i], "framer vs oracle kind", i, 0);
  }
  check(want.lens.size() == got.lens.size(), "framer vs oracle reply count", got.lens.size(),
        want.lens.size());
  check(want.end == got.end, "framer vs oracle final status", static_cast<size_t>(got.end),
        static_cast<size_t>(want.end));
  return 0;
}
