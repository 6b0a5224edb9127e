// Unit tests of ReplyFramer (hiredis-backed reply boundaries with the deep-nesting
// fallback) and NestedScanner, including a differential check against hiredis.
#include "resp/reply_framer.h"

#include <gtest/gtest.h>
#include <hiredis/read.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace respite::resp {
namespace {

using Status = ReplyFramer::Status;

// What a framer produced for a stream: each framed reply, then how it stopped.
struct Framed {
  std::vector<size_t> lens;      // byte length of each framed reply, in order
  std::vector<ReplyKind> kinds;  // top-level kind of each framed reply
  Status last = Status::NeedMore;  // status that ended framing (NeedMore or Error)
  std::string error;               // error() when last == Error
};

// Plays the upstream connection: feeds `stream` in pieces (sizes from `piece(i)`, i = piece
// index), keeps the unframed bytes, and frames after every feed.
template <typename PieceFn>
Framed frame_pieces(std::string_view stream, PieceFn piece, ReplyFramer* reuse = nullptr) {
  ReplyFramer local;
  ReplyFramer& f = reuse != nullptr ? *reuse : local;
  Framed out;
  std::string buf;   // fed bytes; the unframed ones start at `head`
  size_t head = 0;
  size_t off = 0;
  for (size_t i = 0; off < stream.size(); ++i) {
    const size_t n = std::min(std::max<size_t>(piece(i), 1), stream.size() - off);
    f.feed(stream.data() + off, n);
    buf.append(stream.substr(off, n));
    off += n;
    for (;;) {
      size_t len = 0;
      ReplyInfo info;
      const Status st = f.next(std::string_view(buf).substr(head), len, &info);
      if (st == Status::Complete) {
        out.lens.push_back(len);
        out.kinds.push_back(info.kind);
        head += len;
        continue;
      }
      out.last = st;
      if (st == Status::Error) {
        out.error = f.error();
        return out;
      }
      break;
    }
    if (head > 4096 && head > buf.size() / 2) {
      buf.erase(0, head);
      head = 0;
    }
  }
  return out;
}

Framed frame_all(std::string_view stream) {
  return frame_pieces(stream, [&](size_t) { return stream.size(); });
}

Framed frame_fixed(std::string_view stream, size_t chunk) {
  return frame_pieces(stream, [chunk](size_t) { return chunk; });
}

// `depth` arrays of one element around `leaf`.
std::string nest(size_t depth, std::string_view leaf = ":1\r\n") {
  std::string s;
  s.reserve(depth * 4 + leaf.size());
  for (size_t i = 0; i < depth; ++i) s += "*1\r\n";
  s += leaf;
  return s;
}

// Lengths hiredis (fresh plain reader over the whole input) frames, until it stops.
std::vector<size_t> hiredis_lens(std::string_view in, bool* errored = nullptr) {
  redisReader* r = redisReaderCreateWithFunctions(nullptr);
  redisReaderFeed(r, in.data(), in.size());
  std::vector<size_t> lens;
  size_t prev = 0;
  bool err = false;
  for (;;) {
    void* reply = nullptr;
    if (redisReaderGetReply(r, &reply) != REDIS_OK) {
      err = true;
      break;
    }
    if (reply == nullptr) break;
    const size_t end = in.size() - (r->len - r->pos);
    lens.push_back(end - prev);
    prev = end;
  }
  redisReaderFree(r);
  if (errored != nullptr) *errored = err;
  return lens;
}

// A mixed stream of ordinary replies and the replies hiredis refuses.
std::string mixed_stream() {
  return "+OK\r\n-ERR wrong type\r\n:42\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n" +
         nest(10) + "*2\r\n*1\r\n:1\r\n$3\r\na\rb\r\n" + nest(9, "$-1\r\n") + "+a\rb\r\n" +
         nest(8) + "*3\r\n" + nest(12) + "$2\r\nxy\r\n" + nest(9, "*0\r\n") + ":-7\r\n";
}

TEST(ReplyFramer, EachReplyType) {
  struct Case {
    std::string bytes;
    ReplyKind kind;
  };
  const std::vector<Case> cases = {
      {"+OK\r\n", ReplyKind::Status},
      {"-ERR unknown command\r\n", ReplyKind::Error},
      {":1234\r\n", ReplyKind::Integer},
      {":-1\r\n", ReplyKind::Integer},
      {"$5\r\nhello\r\n", ReplyKind::Bulk},
      {"$0\r\n\r\n", ReplyKind::Bulk},
      {"$4\r\n\r\n\r\n\r\n", ReplyKind::Bulk},
      {"$-1\r\n", ReplyKind::Nil},
      {"*-1\r\n", ReplyKind::Nil},
      {"*0\r\n", ReplyKind::Array},
      {"*3\r\n:1\r\n$-1\r\n+x\r\n", ReplyKind::Array},
      {"*2\r\n*2\r\n:1\r\n:2\r\n*0\r\n", ReplyKind::Array},
  };
  for (const Case& c : cases) {
    const Framed f = frame_all(c.bytes + "+NEXT\r\n");
    ASSERT_EQ(f.lens.size(), 2u) << c.bytes;
    EXPECT_EQ(f.lens[0], c.bytes.size()) << c.bytes;
    EXPECT_EQ(f.kinds[0], c.kind) << c.bytes;
    EXPECT_EQ(f.lens[1], 7u);
    EXPECT_EQ(f.last, Status::NeedMore);
  }
}

TEST(ReplyFramer, IncompleteReplyNeedsMore) {
  for (std::string s : {"+OK\r", "$5\r\nhel", "*2\r\n:1\r\n", "$5\r\nhello\r", "*"}) {
    const Framed f = frame_all(s);
    EXPECT_TRUE(f.lens.empty()) << s;
    EXPECT_EQ(f.last, Status::NeedMore) << s;
  }
  ReplyFramer f;
  size_t len = 0;
  EXPECT_EQ(f.next({}, len), Status::NeedMore);
}

TEST(ReplyFramer, PipelineInOneFeed) {
  std::string stream;
  std::vector<size_t> want;
  for (int i = 0; i < 5000; ++i) {
    std::string r;
    switch (i % 5) {
      case 0: r = "+OK\r\n"; break;
      case 1: r.append(":").append(std::to_string(i)).append("\r\n"); break;
      case 2:
        r.append("$").append(std::to_string(i % 300)).append("\r\n");
        r.append(static_cast<size_t>(i % 300), 'v').append("\r\n");
        break;
      case 3: r = "*2\r\n$1\r\na\r\n*1\r\n$-1\r\n"; break;
      case 4: r.append("-ERR e").append(std::to_string(i)).append("\r\n"); break;
    }
    want.push_back(r.size());
    stream += r;
  }
  const Framed f = frame_all(stream);
  EXPECT_EQ(f.lens, want);
  EXPECT_EQ(f.last, Status::NeedMore);
  EXPECT_EQ(frame_fixed(stream, 1000).lens, want);
}

TEST(ReplyFramer, ByteByByteAndEverySplitPointMatch) {
  const std::string stream = mixed_stream();
  const Framed whole = frame_all(stream);
  ASSERT_EQ(whole.last, Status::NeedMore) << whole.error;
  size_t total = 0;
  for (size_t l : whole.lens) total += l;
  EXPECT_EQ(total, stream.size());
  EXPECT_EQ(whole.lens.size(), 15u);

  const Framed bytes = frame_fixed(stream, 1);
  EXPECT_EQ(bytes.lens, whole.lens);
  EXPECT_EQ(bytes.kinds, whole.kinds);
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    const Framed two = frame_pieces(stream, [&](size_t i) { return i == 0 ? cut : stream.size(); });
    ASSERT_EQ(two.lens, whole.lens) << "cut at " << cut;
    ASSERT_EQ(two.kinds, whole.kinds) << "cut at " << cut;
  }
  for (size_t chunk = 2; chunk < 64; ++chunk) {
    ASSERT_EQ(frame_fixed(stream, chunk).lens, whole.lens) << "chunk " << chunk;
  }
}

TEST(ReplyFramer, LargeBulkIn64KiBFeeds) {
  const size_t big = 16u << 20;
  std::string stream = "$" + std::to_string(big) + "\r\n";
  const size_t header = stream.size();
  stream.append(big, 'x');
  stream += "\r\n+OK\r\n";
  stream += "$" + std::to_string(big) + "\r\n";
  stream.append(big, 'y');
  stream += "\r\n";
  const Framed f = frame_fixed(stream, 64 * 1024);
  ASSERT_EQ(f.last, Status::NeedMore) << f.error;
  ASSERT_EQ(f.lens.size(), 3u);
  EXPECT_EQ(f.lens[0], header + big + 2);
  EXPECT_EQ(f.lens[1], 5u);
  EXPECT_EQ(f.lens[2], header + big + 2);
  EXPECT_EQ(f.kinds[0], ReplyKind::Bulk);
}

TEST(ReplyFramer, DeepNesting) {
  for (size_t depth : {7u, 8u, 9u, 10u, 100u, 100000u}) {
    const std::string deep = nest(depth);
    SCOPED_TRACE("depth " + std::to_string(depth));

    const Framed alone = frame_all(deep);
    ASSERT_EQ(alone.last, Status::NeedMore) << alone.error;
    ASSERT_EQ(alone.lens, std::vector<size_t>{deep.size()});
    EXPECT_EQ(alone.kinds[0], ReplyKind::Array);

    const Framed bytes = frame_fixed(deep, 1);
    ASSERT_EQ(bytes.lens, std::vector<size_t>{deep.size()});

    // Surrounded by ordinary replies, twice in a row, in one read and in odd-sized reads.
    const std::string stream = "+A\r\n" + deep + ":2\r\n" + deep + deep + "$1\r\nx\r\n";
    const std::vector<size_t> want = {4, deep.size(), 4, deep.size(), deep.size(), 7};
    EXPECT_EQ(frame_all(stream).lens, want);
    EXPECT_EQ(frame_fixed(stream, 1).lens, want);
    EXPECT_EQ(frame_fixed(stream, 7).lens, want);
    EXPECT_EQ(frame_fixed(stream, 4093).lens, want);
  }
}

TEST(ReplyFramer, DeepReplyWithWideBranches) {
  // hiredis refuses this midway (after having framed part of it); the scanner restarts it.
  std::string deep = "*4\r\n$3\r\nabc\r\n" + nest(6, "*3\r\n:1\r\n:2\r\n" + nest(5) + "") +
                     "*2\r\n" + nest(20, "$-1\r\n") + "+s\r\n" + ":9\r\n";
  const std::string stream = deep + "+OK\r\n" + deep;
  const std::vector<size_t> want = {deep.size(), 5, deep.size()};
  EXPECT_EQ(frame_all(stream).lens, want);
  EXPECT_EQ(frame_fixed(stream, 1).lens, want);
  EXPECT_EQ(frame_fixed(stream, 3).lens, want);
}

TEST(ReplyFramer, ArrayCountsBeyondHiredisLimit) {
  // Valid RESP2 that hiredis 0.14 refuses; the scanner takes it (and waits for elements).
  for (std::string s : {"*2147483648\r\n:1\r\n", "*9223372036854775807\r\n", "*1\r\n*3000000000\r\n"}) {
    const Framed f = frame_fixed(s, 3);
    EXPECT_TRUE(f.lens.empty()) << s;
    EXPECT_EQ(f.last, Status::NeedMore) << s << ": " << f.error;
  }
  const Framed ok = frame_all("*2147483647\r\n:1\r\n");
  EXPECT_EQ(ok.last, Status::NeedMore);
}

TEST(ReplyFramer, ProtocolGarbageIsError) {
  for (const std::string& s : std::vector<std::string>{"hello\r\n", "$abc\r\n", "$-2\r\n", "$05\r\nhello\r\n", "*-5\r\n", "*x\r\n",
                        "*9223372036854775808\r\n", "*2\r\n:1\r\n?\r\n", nest(12, "!\r\n"),
                        nest(12, "$3\r\nabcXY")}) {
    const Framed f = frame_all(s);
    EXPECT_EQ(f.last, Status::Error) << s;
    EXPECT_FALSE(f.error.empty()) << s;
    EXPECT_EQ(frame_fixed(s, 1).last, Status::Error) << s;
  }
  // Replies before the garbage are framed; the error is then sticky.
  ReplyFramer f;
  const std::string s = "+OK\r\n:1\r\n\x01garbage";
  f.feed(s.data(), s.size());
  size_t len = 0;
  std::string_view rest = s;
  ASSERT_EQ(f.next(rest, len), Status::Complete);
  rest.remove_prefix(len);
  ASSERT_EQ(f.next(rest, len), Status::Complete);
  rest.remove_prefix(len);
  EXPECT_EQ(f.next(rest, len), Status::Error);
  EXPECT_NE(f.error().find("reply type byte"), std::string::npos) << f.error();
  EXPECT_EQ(f.next(rest, len), Status::Error);
}

TEST(ReplyFramer, ShortUnframedIsCallerError) {
  ReplyFramer f;
  f.feed("+OK\r\n", 5);
  size_t len = 0;
  EXPECT_EQ(f.next("+OK", len), Status::Error);
  EXPECT_FALSE(f.error().empty());
}

TEST(ReplyFramer, ResetThenReuse) {
  ReplyFramer f;
  // Leave it mid-reply, in the fallback, and in error; each time reset() starts afresh.
  for (std::string junk : {std::string("$10\r\nabc"), nest(20).substr(0, 50), std::string("?!\r\n")}) {
    f.feed(junk.data(), junk.size());
    size_t len = 0;
    EXPECT_NE(f.next(junk, len), Status::Complete);
    f.reset();
    EXPECT_TRUE(f.error().empty());
    const std::string stream = mixed_stream();
    const Framed again = frame_fixed(stream, 5);  // fresh framer for the reference
    const Framed reused = frame_pieces(stream, [](size_t) { return 5; }, &f);
    EXPECT_EQ(reused.lens, again.lens);
    EXPECT_EQ(reused.last, Status::NeedMore);
    f.reset();
  }
}

// ---------------------------------------------------------------------------------------
// NestedScanner

// Scans `in` fed in growing prefixes of `step` bytes; returns the final status.
NestedScanner::Status scan_growing(NestedScanner& s, std::string_view in, size_t step, size_t& len) {
  NestedScanner::Status st = NestedScanner::Status::NeedMore;
  for (size_t have = std::min(step, in.size());; have = std::min(have + step, in.size())) {
    st = s.scan(in.substr(0, have), len);
    if (st != NestedScanner::Status::NeedMore || have == in.size()) return st;
  }
}

TEST(NestedScanner, FramesEachTypeAndResetsItself) {
  NestedScanner s;
  const std::string in = "*3\r\n$3\r\nabc\r\n*-1\r\n+x\r\nTRAILING";
  size_t len = 0;
  ReplyInfo info;
  ASSERT_EQ(s.scan(in, len, &info), NestedScanner::Status::Complete);
  EXPECT_EQ(len, in.size() - 8);
  EXPECT_EQ(info.kind, ReplyKind::Array);
  ASSERT_EQ(s.scan("$-1\r\n", len, &info), NestedScanner::Status::Complete);
  EXPECT_EQ(info.kind, ReplyKind::Nil);
  ASSERT_EQ(s.scan("-E\r\n", len, &info), NestedScanner::Status::Complete);
  EXPECT_EQ(info.kind, ReplyKind::Error);
}

TEST(NestedScanner, OneMillionDeepDoesNotRecurse) {
  const std::string deep = nest(1000000, "$3\r\nabc\r\n");
  NestedScanner s;
  size_t len = 0;
  ASSERT_EQ(s.scan(deep, len), NestedScanner::Status::Complete) << s.error();
  EXPECT_EQ(len, deep.size());
  ASSERT_EQ(scan_growing(s, deep, 65536, len), NestedScanner::Status::Complete);
  EXPECT_EQ(len, deep.size());
}

TEST(NestedScanner, DepthBeyondLimitIsError) {
  const std::string deep = nest(NestedScanner::kMaxDepth + 1);
  NestedScanner s;
  size_t len = 0;
  EXPECT_EQ(s.scan(deep, len), NestedScanner::Status::Error);
  EXPECT_NE(s.error().find("deeper"), std::string::npos) << s.error();
  s.reset();
  const std::string ok = nest(NestedScanner::kMaxDepth);
  EXPECT_EQ(s.scan(ok, len), NestedScanner::Status::Complete);
}

TEST(NestedScanner, StrictWhereHiredisIsLax) {
  // hiredis 0.14 skips the two bytes after a bulk payload unchecked; the scanner checks them.
  NestedScanner s;
  size_t len = 0;
  EXPECT_EQ(s.scan("$1\r\naXY", len), NestedScanner::Status::Error);
  s.reset();
  EXPECT_EQ(s.scan("*-0\r\n", len), NestedScanner::Status::Error);
  s.reset();
  EXPECT_EQ(s.scan("*00\r\n", len), NestedScanner::Status::Error);
}

// Random replies of depth <= 7 (hiredis's range), deterministic.
std::string random_reply(std::mt19937& rng, int depth) {
  const int pick = static_cast<int>(rng() % (depth >= 7 ? 6 : 8));
  switch (pick) {
    case 0: return "+st\rat\nus\r\n";
    case 1: return "-ERR " + std::to_string(rng() % 1000) + "\r\n";
    case 2: return ":" + std::to_string(static_cast<int>(rng())) + "\r\n";
    case 3: {
      const size_t n = rng() % 40;
      std::string payload(n, '\r');
      for (size_t i = 0; i < n; ++i) payload[i] = static_cast<char>(rng() % 256);
      return "$" + std::to_string(n) + "\r\n" + payload + "\r\n";
    }
    case 4: return "$-1\r\n";
    case 5: return "$0\r\n\r\n";
    case 6: return rng() % 2 ? "*-1\r\n" : "*0\r\n";
    default: {
      const size_t n = 1 + rng() % 4;
      std::string s = "*" + std::to_string(n) + "\r\n";
      for (size_t i = 0; i < n; ++i) s += random_reply(rng, depth + 1);
      return s;
    }
  }
}

TEST(NestedScanner, AgreesWithHiredisUpToDepth7) {
  std::vector<std::string> replies = {"+OK\r\n", ":0\r\n", "$-1\r\n", "*-1\r\n", "*0\r\n",
                                      "$2\r\n\r\n\r\n", nest(7), nest(8), nest(7, "*0\r\n"),
                                      "*2\r\n" + nest(6) + nest(6, "$1\r\n*\r\n")};
  std::mt19937 rng(12345);
  for (int i = 0; i < 2000; ++i) replies.push_back(random_reply(rng, 0));
  for (const std::string& r : replies) {
    bool err = false;
    const std::vector<size_t> want = hiredis_lens(r + "+tail\r\n", &err);
    ASSERT_FALSE(err) << r;
    ASSERT_EQ(want.size(), 2u) << r;
    ASSERT_EQ(want[0], r.size());
    NestedScanner s;
    size_t len = 0;
    ASSERT_EQ(s.scan(r + "+tail\r\n", len), NestedScanner::Status::Complete) << r;
    EXPECT_EQ(len, want[0]) << r;
    for (size_t step : {1u, 2u, 5u}) {
      ASSERT_EQ(scan_growing(s, r, step, len), NestedScanner::Status::Complete) << r;
      EXPECT_EQ(len, r.size());
    }
    // And the framer, which takes hiredis's path for these.
    EXPECT_EQ(frame_fixed(r + r, 3).lens, (std::vector<size_t>{r.size(), r.size()}));
  }
}

}  // namespace
}  // namespace respite::resp
