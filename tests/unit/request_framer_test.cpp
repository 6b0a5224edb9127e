// Unit tests for RequestFramer: multibulk and inline framing, Redis 7.0 error wording,
// limits, and identical results whatever the read boundaries.
#include "resp/request_framer.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

namespace respite::resp {
namespace {

using namespace std::string_literals;

// One framed request, copied out so it outlives the framer's views.
struct Framed {
  std::vector<std::string> args;  // argument bytes
  bool is_inline = false;         // framed as an inline command
  size_t raw_len = 0;             // bytes of input the request occupied
  bool operator==(const Framed&) const = default;
};

// Everything a run over some input produced.
struct Outcome {
  std::vector<Framed> requests;                  // Complete requests, in order
  FrameStatus last = FrameStatus::NeedMore;      // status that ended the run
  std::string error;                             // error() when last == Error
  size_t leftover = 0;                           // unconsumed bytes at the end
  size_t hint = 0;                               // bytes_needed_hint() at the end
  bool operator==(const Outcome&) const = default;
};

void PrintTo(const Framed& f, std::ostream* os) {
  *os << (f.is_inline ? "inline" : "mbulk") << " raw_len=" << f.raw_len << " args=";
  *os << testing::PrintToString(f.args);
}

Framed copy_out(const Request& req) {
  Framed f;
  for (auto a : req.args) f.args.emplace_back(a);
  f.is_inline = req.is_inline;
  f.raw_len = req.raw_len;
  return f;
}

// Acts like a connection: appends each chunk to its buffer (which may move), frames as
// much as it can, and erases consumed bytes.
Outcome feed(std::string_view input, const std::vector<size_t>& chunks, RequestLimits limits = {}) {
  RequestFramer framer(limits);
  Request req;
  Outcome run;
  std::string buf;
  size_t off = 0;
  size_t ci = 0;
  while (off < input.size()) {
    size_t n = chunks.empty() ? input.size() : chunks[ci++ % chunks.size()];
    n = std::min(n, input.size() - off);
    buf.append(input.substr(off, n));
    off += n;
    for (;;) {
      size_t consumed = 99;
      run.last = framer.next(buf, req, consumed);
      if (run.last == FrameStatus::Complete) {
        EXPECT_EQ(consumed, req.raw_len);
        run.requests.push_back(copy_out(req));
        buf.erase(0, consumed);
        continue;
      }
      EXPECT_EQ(consumed, 0u);
      break;
    }
    if (run.last == FrameStatus::Error) {
      run.error = framer.error();
      break;
    }
  }
  run.leftover = buf.size();
  run.hint = run.last == FrameStatus::NeedMore ? framer.bytes_needed_hint() : 0;
  return run;
}

Outcome whole(std::string_view input, RequestLimits limits = {}) { return feed(input, {}, limits); }

// Frames exactly one request from `input`, expecting `status`.
Outcome one(std::string_view input, RequestLimits limits = {}) { return whole(input, limits); }

// Concatenates (avoids "literal" + std::string, which trips GCC 12's -Wrestrict).
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::string s;
  (s.append(std::string_view(parts)), ...);
  return s;
}

std::string mbulk(const std::vector<std::string>& args) {
  std::string s = cat("*", std::to_string(args.size()), "\r\n");
  for (const auto& a : args) s += cat("$", std::to_string(a.size()), "\r\n", a, "\r\n");
  return s;
}

Framed mb(std::vector<std::string> args) {
  Framed f;
  f.raw_len = mbulk(args).size();
  f.args = std::move(args);
  return f;
}

Framed il(std::vector<std::string> args, size_t raw_len) {
  return Framed{std::move(args), true, raw_len};
}

void expect_error(std::string_view input, std::string_view message, RequestLimits limits = {}) {
  Outcome r = whole(input, limits);
  EXPECT_EQ(r.last, FrameStatus::Error) << "input: " << testing::PrintToString(std::string(input));
  EXPECT_EQ(r.error, message) << "input: " << testing::PrintToString(std::string(input));
  // The same error, whatever the read boundaries.
  Outcome bytewise = feed(input, {1}, limits);
  EXPECT_EQ(bytewise.error, r.error);
  EXPECT_EQ(bytewise.requests, r.requests);
}

size_t heap_in_use() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

// A pipeline mixing every request shape.
std::string mixed_pipeline() {
  std::string s;
  s += mbulk({"GET", "foo"});
  s += "PING\r\n";
  s += mbulk({"SET", "k", "a\r\nb\0c"s});
  s += "\r\n";
  s += "*0\r\n";
  s += "SET \"a b\" 'c\\'d' \"\\x41\\n\"\n";
  s += "*-1\r\n";
  s += mbulk({"", "x"});
  s += "   \t \r\n";
  s += mbulk({"MSET", "k1", "v1", "k2", std::string(300, 'z')});
  return s;
}

TEST(RequestFramerTest, SimpleGet) {
  RequestFramer framer;
  Request req;
  size_t consumed = 0;
  const std::string in = "*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n";
  ASSERT_EQ(framer.next(in, req, consumed), FrameStatus::Complete);
  ASSERT_EQ(req.args.size(), 2u);
  EXPECT_EQ(req.args[0], "GET");
  EXPECT_EQ(req.args[1], "foo");
  EXPECT_FALSE(req.is_inline);
  EXPECT_EQ(req.raw_len, in.size());
  EXPECT_EQ(consumed, in.size());
  // Views point into the caller's bytes: no copy.
  EXPECT_EQ(req.args[0].data(), in.data() + 8);
  EXPECT_EQ(framer.next(std::string_view(), req, consumed), FrameStatus::NeedMore);
  EXPECT_EQ(consumed, 0u);
}

TEST(RequestFramerTest, SimpleSet) {
  Outcome r = one(mbulk({"SET", "key", "value"}));
  ASSERT_EQ(r.requests.size(), 1u);
  EXPECT_EQ(r.requests[0], mb({"SET", "key", "value"}));
  EXPECT_EQ(r.last, FrameStatus::NeedMore);
  EXPECT_EQ(r.leftover, 0u);
}

TEST(RequestFramerTest, PipelineOfManyRequests) {
  std::string in;
  std::vector<Framed> expected;
  for (int i = 0; i < 500; ++i) {
    std::vector<std::string> args = {"SET", cat("key:", std::to_string(i)), std::string(i % 37, 'v')};
    in += mbulk(args);
    expected.push_back(mb(args));
  }
  Outcome r = whole(in);
  EXPECT_EQ(r.requests, expected);
  EXPECT_EQ(r.leftover, 0u);
}

TEST(RequestFramerTest, ConsumedAccountsForEveryByte) {
  const std::string in = mixed_pipeline();
  RequestFramer framer;
  Request req;
  size_t off = 0;
  size_t total = 0;
  int count = 0;
  for (;;) {
    size_t consumed = 0;
    FrameStatus st = framer.next(std::string_view(in).substr(off), req, consumed);
    if (st != FrameStatus::Complete) {
      EXPECT_EQ(st, FrameStatus::NeedMore);
      EXPECT_EQ(consumed, 0u);
      break;
    }
    EXPECT_EQ(consumed, req.raw_len);
    off += consumed;
    total += req.raw_len;
    ++count;
  }
  EXPECT_EQ(total, in.size());
  EXPECT_EQ(count, 10);
}

TEST(RequestFramerTest, MixedPipelineContents) {
  Outcome r = whole(mixed_pipeline());
  std::vector<Framed> expected = {
      mb({"GET", "foo"}),
      il({"PING"}, 6),
      mb({"SET", "k", "a\r\nb\0c"s}),
      il({}, 2),
      Framed{{}, false, 4},
      il({"SET", "a b", "c'd", "A\n"}, 26),
      Framed{{}, false, 5},
      mb({"", "x"}),
      il({}, 7),
      mb({"MSET", "k1", "v1", "k2", std::string(300, 'z')}),
  };
  EXPECT_EQ(r.requests, expected);
  EXPECT_EQ(r.leftover, 0u);
}

TEST(RequestFramerTest, OneByteAtATimeMatchesWhole) {
  const std::string in = mixed_pipeline();
  Outcome all = whole(in);
  Outcome bytewise = feed(in, {1});
  EXPECT_EQ(bytewise, all);
}

TEST(RequestFramerTest, EverySplitPointMatchesWhole) {
  const std::string in = mixed_pipeline() + "*3\r\n$3\r\nGET";  // ends mid-request
  Outcome all = whole(in);
  EXPECT_EQ(all.requests.size(), 10u);
  EXPECT_EQ(all.leftover, 11u);
  for (size_t k = 1; k < in.size(); ++k) {
    Outcome split = feed(in, {k, in.size()});
    ASSERT_EQ(split, all) << "split at " << k;
  }
}

TEST(RequestFramerTest, RandomChunkingMatchesWhole) {
  const std::string in = mixed_pipeline() + mixed_pipeline();
  Outcome all = whole(in);
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> chunks;
    for (int i = 0; i < 16; ++i) chunks.push_back(1 + rng() % 23);
    ASSERT_EQ(feed(in, chunks), all) << "round " << round;
  }
}

TEST(RequestFramerTest, BufferMayMoveBetweenCalls) {
  const std::string in = mbulk({"SET", "key", std::string(1000, 'x')});
  RequestFramer framer;
  Request req;
  size_t consumed = 0;
  FrameStatus st = FrameStatus::NeedMore;
  for (size_t n = 1; n <= in.size(); ++n) {
    std::string copy = in.substr(0, n);  // a fresh allocation each time
    st = framer.next(copy, req, consumed);
    if (n < in.size()) {
      ASSERT_EQ(st, FrameStatus::NeedMore) << n;
    } else {
      ASSERT_EQ(st, FrameStatus::Complete);
      EXPECT_EQ(req.args[2], std::string(1000, 'x'));
      EXPECT_EQ(req.args[2].data(), copy.data() + in.size() - 1002);
    }
  }
}

TEST(RequestFramerTest, BinarySafeBulks) {
  const std::vector<std::string> args = {"SET", "\0\r\n"s, "\r\n$3\r\n*1\r\n\0\0"s, "", "\n", "\r"};
  const std::string in = mbulk(args);
  EXPECT_EQ(whole(in).requests, std::vector<Framed>{mb(args)});
  EXPECT_EQ(feed(in, {1}).requests, std::vector<Framed>{mb(args)});
}

TEST(RequestFramerTest, ZeroArgumentMultibulk) {
  Outcome r = whole(cat("*0\r\n*-1\r\n*-100\r\n*-9223372036854775808\r\n", mbulk({"PING"})));
  ASSERT_EQ(r.requests.size(), 5u);
  EXPECT_EQ(r.requests[0], (Framed{{}, false, 4}));
  EXPECT_EQ(r.requests[1], (Framed{{}, false, 5}));
  EXPECT_EQ(r.requests[2], (Framed{{}, false, 7}));
  EXPECT_EQ(r.requests[3], (Framed{{}, false, 23}));
  EXPECT_EQ(r.requests[4], mb({"PING"}));
}

TEST(RequestFramerTest, InlineBasics) {
  Outcome r = whole("PING\r\nGET foo\nSET  a\t b \r\nECHO a\r\r\n");
  std::vector<Framed> expected = {il({"PING"}, 6), il({"GET", "foo"}, 8),
                                  il({"SET", "a", "b"}, 12), il({"ECHO", "a"}, 9)};
  EXPECT_EQ(r.requests, expected);
}

TEST(RequestFramerTest, InlineEmptyLinesAreEmptyRequests) {
  Outcome r = whole("\r\n\n   \r\n\t\v\f\r\nPING\r\n");
  std::vector<Framed> expected = {il({}, 2), il({}, 1), il({}, 5), il({}, 5), il({"PING"}, 6)};
  EXPECT_EQ(r.requests, expected);
}

TEST(RequestFramerTest, InlineQuotesAndEscapes) {
  struct Case {
    std::string line;
    std::vector<std::string> args;
  };
  const std::vector<Case> cases = {
      {R"(SET "hello world" x)", {"SET", "hello world", "x"}},
      {R"(ECHO "a\nb\rc\td\be\af\\g\"h")", {"ECHO", "a\nb\rc\td\be\af\\g\"h"}},
      {R"(ECHO "\x41\x4g\z")", {"ECHO", "Ax4gz"}},
      {R"(ECHO "\x00\xff\xAb")", {"ECHO", "\0\xff\xab"s}},
      {R"(ECHO "\x4")", {"ECHO", "x4"}},
      {R"(ECHO 'a\'b')", {"ECHO", "a'b"}},
      {R"(ECHO 'a\nb\\c')", {"ECHO", "a\\nb\\\\c"}},
      {R"(ECHO a"b c")", {"ECHO", "ab c"}},
      {R"(ECHO a'b c')", {"ECHO", "ab c"}},
      {R"(ECHO "" '')", {"ECHO", "", ""}},
      {"ECHO \"a\"\v", {"ECHO", "a"}},
      {"ECHO a\vb", {"ECHO", "a\vb"}},
      {"ECHO \f\vX", {"ECHO", "X"}},
      {R"(ECHO a\nb)", {"ECHO", "a\\nb"}},
      {"ECHO a\0b"s, {"ECHO", "a\0b"s}},
      {R"(ECHO "a b"	'c d')", {"ECHO", "a b", "c d"}},
  };
  for (const auto& c : cases) {
    Outcome r = whole(c.line + "\r\n");
    ASSERT_EQ(r.requests.size(), 1u) << c.line;
    EXPECT_EQ(r.requests[0].args, c.args) << c.line;
    EXPECT_TRUE(r.requests[0].is_inline);
  }
}

TEST(RequestFramerTest, InlineArgsLiveInScratch) {
  RequestFramer framer;
  Request req;
  size_t consumed = 0;
  const std::string in = "GET foo\r\n";
  ASSERT_EQ(framer.next(in, req, consumed), FrameStatus::Complete);
  ASSERT_EQ(req.args.size(), 2u);
  EXPECT_EQ(req.args[1], "foo");
  const char* lo = in.data();
  const char* hi = in.data() + in.size();
  EXPECT_FALSE(req.args[1].data() >= lo && req.args[1].data() < hi);
}

TEST(RequestFramerTest, InlineUnbalancedQuotes) {
  for (const std::string line : {R"(PING "a"b)", R"(PING 'a'b)", R"(PING "abc)", R"(PING 'abc)",
                                 R"(PING "abc\)", R"(PING 'abc\')", R"(SET "a""b")", R"(")"}) {
    expect_error(line + "\r\n", "Protocol error: unbalanced quotes in request");
  }
  // A quote closed right before the stripped \r is fine; before another \r it is a blank.
  EXPECT_EQ(whole("ECHO \"a\"\r\r\n").requests.at(0).args, (std::vector<std::string>{"ECHO", "a"}));
}

TEST(RequestFramerTest, InlineTooBig) {
  RequestLimits limits;
  limits.max_inline_len = 16;
  // A line of exactly max_inline_len bytes before the '\n' is accepted.
  Outcome ok = whole(std::string(16, 'a') + "\n", limits);
  ASSERT_EQ(ok.requests.size(), 1u);
  EXPECT_EQ(ok.requests[0].args[0], std::string(16, 'a'));
  // max_inline_len bytes without '\n': wait for more.
  Outcome wait = whole(std::string(16, 'a'), limits);
  EXPECT_EQ(wait.last, FrameStatus::NeedMore);
  EXPECT_EQ(wait.hint, 0u);
  // One more byte and still no newline: error, however the bytes arrived.
  expect_error(std::string(17, 'a'), "Protocol error: too big inline request", limits);
  expect_error(std::string(17, 'a') + "\n", "Protocol error: too big inline request", limits);
  expect_error(std::string(16, 'a') + "\r\n", "Protocol error: too big inline request", limits);
  // Default limit: 64 KiB.
  expect_error(std::string(64 * 1024 + 1, 'a'), "Protocol error: too big inline request");
  EXPECT_EQ(whole(std::string(64 * 1024, 'a')).last, FrameStatus::NeedMore);
}

TEST(RequestFramerTest, TooBigMbulkCountString) {
  const std::string digits(64 * 1024 - 1, '1');
  EXPECT_EQ(whole(cat("*", digits)).last, FrameStatus::NeedMore);
  expect_error(cat("*", digits, "1"), "Protocol error: too big mbulk count string");
  // A '\r' inside the window makes it a (bad) count instead.
  expect_error(cat("*", digits, "\r\n"), "Protocol error: invalid multibulk length");
}

TEST(RequestFramerTest, InvalidMultibulkLength) {
  RequestLimits limits;
  limits.max_args = 3;
  const std::vector<std::string> inputs = {
      "*abc\r\n", "*\r\n", "*01\r\n", "*+1\r\n", "*-0\r\n", "* 1\r\n", "*1 \r\n", "*1\n\r\n",
      "*1\rX", "*1\r\r\n", "*4\r\n", "*2147483648\r\n", "*9223372036854775807\r\n",
      "*99999999999999999999\r\n", "*-9223372036854775809\r\n", "*1\0\r\n"s};
  for (const std::string& in : inputs) {
    expect_error(in, "Protocol error: invalid multibulk length", limits);
  }
  EXPECT_EQ(whole(mbulk({"a", "b", "c"}), limits).requests.size(), 1u);
}

TEST(RequestFramerTest, ExpectedDollar) {
  expect_error("*1\r\nX\r\n", "Protocol error: expected '$', got 'X'");
  expect_error("*2\r\n$1\r\na\r\n:1\r\n", "Protocol error: expected '$', got ':'");
  expect_error("*1\r\n\x01\r\n", "Protocol error: expected '$', got '\x01'");
  // Like Redis, line breaks (and NUL) are not put into the one-line error reply.
  expect_error("*1\r\n\r\n", "Protocol error: expected '$', got ' '");
  expect_error("*1\r\n\n\r\n", "Protocol error: expected '$', got ' '");
  expect_error("*1\r\n\0\r\n"s, "Protocol error: expected '$', got ' '");
  // Like Redis, the check happens once the whole line is in.
  EXPECT_EQ(whole("*1\r\nX").last, FrameStatus::NeedMore);
}

TEST(RequestFramerTest, TooBigBulkCountString) {
  const std::string head = "*1\r\n$";
  const std::string digits(64 * 1024 - 1, '1');
  EXPECT_EQ(whole(head + digits).last, FrameStatus::NeedMore);
  expect_error(head + digits + "1", "Protocol error: too big bulk count string");
  expect_error(cat("*1\r\n", std::string(64 * 1024 + 1, 'x')), "Protocol error: too big bulk count string");
}

TEST(RequestFramerTest, InvalidBulkLength) {
  RequestLimits limits;
  limits.max_bulk_len = 10;
  for (const std::string in : {"*1\r\n$-1\r\n", "*1\r\n$abc\r\n", "*1\r\n$01\r\n", "*1\r\n$\r\n",
                               "*1\r\n$+1\r\n", "*1\r\n$11\r\n", "*1\r\n$3\rXfoo\r\n",
                               "*1\r\n$ 3\r\n", "*1\r\n$99999999999999999999\r\n"}) {
    expect_error(in, "Protocol error: invalid bulk length", limits);
  }
  Outcome ok = whole(mbulk({std::string(10, 'b')}), limits);
  EXPECT_EQ(ok.requests.size(), 1u);
}

TEST(RequestFramerTest, BulkNotFollowedByCrlf) {
  for (const std::string in : {"*1\r\n$3\r\nfooXY", "*1\r\n$3\r\nfoo\rX", "*1\r\n$3\r\nfoo\n\r",
                               "*2\r\n$0\r\nab\r\n"}) {
    expect_error(in, "Protocol error: bulk data not followed by CRLF");
  }
  EXPECT_EQ(whole("*1\r\n$3\r\nfoo\r").last, FrameStatus::NeedMore);
}

TEST(RequestFramerTest, HugeAnnouncedCountDoesNotAllocate) {
  expect_error("*1000000000\r\n", "Protocol error: invalid multibulk length");
  RequestLimits limits;
  limits.max_args = 2000000000;
  RequestFramer framer(limits);
  Request req;
  size_t consumed = 0;
  const size_t before = heap_in_use();
  std::string in = "*1000000000\r\n";
  EXPECT_EQ(framer.next(in, req, consumed), FrameStatus::NeedMore);
  in += "$1\r\na\r\n$1\r\nb\r\n";
  EXPECT_EQ(framer.next(in, req, consumed), FrameStatus::NeedMore);
  EXPECT_LT(heap_in_use(), before + 64 * 1024);
  EXPECT_LT(req.args.capacity(), 1024u);
}

TEST(RequestFramerTest, HugeAnnouncedBulkDoesNotAllocate) {
  expect_error("*1\r\n$2000000000\r\n", "Protocol error: invalid bulk length");
  RequestLimits limits;
  limits.max_bulk_len = 4000000000u;
  RequestFramer framer(limits);
  Request req;
  size_t consumed = 0;
  const size_t before = heap_in_use();
  const std::string in = "*2\r\n$3\r\nGET\r\n$2000000000\r\nabc";
  EXPECT_EQ(framer.next(in, req, consumed), FrameStatus::NeedMore);
  EXPECT_EQ(framer.bytes_needed_hint(), 2000000000u + 2 - 3);
  EXPECT_LT(heap_in_use(), before + 64 * 1024);
}

TEST(RequestFramerTest, ArgumentLimits) {
  RequestLimits limits;
  limits.max_args = 2;
  limits.max_bulk_len = 4;
  EXPECT_EQ(whole(mbulk({"abcd", "efgh"}), limits).requests.size(), 1u);
  expect_error(mbulk({"a", "b", "c"}), "Protocol error: invalid multibulk length", limits);
  expect_error(mbulk({"abcde"}), "Protocol error: invalid bulk length", limits);
  // Inline requests are bounded by max_inline_len only, like in Redis.
  EXPECT_EQ(whole("a b c defgh\r\n", limits).requests.at(0).args.size(), 4u);
}

TEST(RequestFramerTest, HintTracksTheCurrentBulk) {
  RequestFramer framer;
  Request req;
  size_t consumed = 0;
  std::string in = "*2\r\n$3\r\nSET\r\n$1";
  EXPECT_EQ(framer.next(in, req, consumed), FrameStatus::NeedMore);
  EXPECT_EQ(framer.bytes_needed_hint(), 0u);  // inside a header line
  in += "00\r\n";
  EXPECT_EQ(framer.next(in, req, consumed), FrameStatus::NeedMore);
  EXPECT_EQ(framer.bytes_needed_hint(), 102u);
  in += std::string(60, 'x');
  EXPECT_EQ(framer.next(in, req, consumed), FrameStatus::NeedMore);
  EXPECT_EQ(framer.bytes_needed_hint(), 42u);
  in += std::string(40, 'x') + "\r";
  EXPECT_EQ(framer.next(in, req, consumed), FrameStatus::NeedMore);
  EXPECT_EQ(framer.bytes_needed_hint(), 1u);
  in += "\n";
  EXPECT_EQ(framer.next(in, req, consumed), FrameStatus::Complete);
  EXPECT_EQ(consumed, in.size());
  EXPECT_EQ(framer.bytes_needed_hint(), 0u);
}

TEST(RequestFramerTest, LargeBulkInChunksIsLinear) {
  const size_t big = 16u * 1024 * 1024;
  const std::string head = cat("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$", std::to_string(big), "\r\n");
  std::string payload(big, 'p');
  payload[0] = '\0';
  payload[big - 1] = '\r';
  const std::string in = head + payload + "\r\n";

  RequestFramer framer;
  Request req;
  size_t consumed = 0;
  std::string buf;
  const size_t chunk = 64 * 1024;
  size_t off = 0;
  int calls = 0;
  bool reserved = false;
  FrameStatus st = FrameStatus::NeedMore;
  std::chrono::steady_clock::duration in_framer{};  // time spent inside next() only
  while (off < in.size()) {
    const size_t n = std::min(chunk, in.size() - off);
    buf.append(in, off, n);
    off += n;
    const auto t0 = std::chrono::steady_clock::now();
    st = framer.next(buf, req, consumed);
    in_framer += std::chrono::steady_clock::now() - t0;
    ++calls;
    if (st == FrameStatus::NeedMore) {
      EXPECT_EQ(framer.bytes_needed_hint(), in.size() - off);
      if (!reserved) {
        buf.reserve(buf.size() + framer.bytes_needed_hint());
        reserved = true;
      }
    }
  }
  ASSERT_EQ(st, FrameStatus::Complete);
  EXPECT_EQ(consumed, in.size());
  ASSERT_EQ(req.args.size(), 3u);
  EXPECT_EQ(req.args[2].size(), big);
  EXPECT_TRUE(req.args[2] == payload);
  EXPECT_EQ(calls, static_cast<int>((in.size() + chunk - 1) / chunk));
  // 256 calls that each rescanned the buffered bulk would touch ~2 GiB; a framer that
  // keeps its progress does a few header bytes per call.
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(in_framer).count(), 250);
}

TEST(RequestFramerTest, LongHeaderLineIsScannedOnce) {
  // A 64 KiB count line arriving one byte at a time must not be rescanned each time.
  const std::string in = cat("*", std::string(64 * 1024 - 1, '1'));
  const auto t0 = std::chrono::steady_clock::now();
  Outcome r = feed(in + "1", {1});
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.error, "Protocol error: too big mbulk count string");
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 1000);
}

TEST(RequestFramerTest, ErrorIsStickyUntilReset) {
  RequestFramer framer;
  Request req;
  size_t consumed = 0;
  ASSERT_EQ(framer.next("*1\r\n$x\r\n", req, consumed), FrameStatus::Error);
  EXPECT_EQ(framer.error(), "Protocol error: invalid bulk length");
  EXPECT_EQ(framer.next("PING\r\n", req, consumed), FrameStatus::Error);
  EXPECT_EQ(consumed, 0u);
  framer.reset();
  EXPECT_TRUE(framer.error().empty());
  ASSERT_EQ(framer.next("PING\r\n", req, consumed), FrameStatus::Complete);
  EXPECT_EQ(req.args.at(0), "PING");
  EXPECT_EQ(consumed, 6u);
}

TEST(RequestFramerTest, ResetDropsPartialProgress) {
  RequestFramer framer;
  Request req;
  size_t consumed = 0;
  ASSERT_EQ(framer.next("*2\r\n$3\r\nGET\r\n$3\r\nf", req, consumed), FrameStatus::NeedMore);
  framer.reset();
  ASSERT_EQ(framer.next("GET x\n", req, consumed), FrameStatus::Complete);
  EXPECT_EQ(req.args.size(), 2u);
  EXPECT_TRUE(req.is_inline);
}

TEST(RequestFramerTest, SteadyStateDoesNotAllocate) {
  RequestFramer framer;
  Request req;
  std::string in;
  for (int i = 0; i < 100; ++i) in += "*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n";
  auto frame_all = [&] {
    size_t off = 0;
    size_t consumed = 0;
    while (framer.next(std::string_view(in).substr(off), req, consumed) == FrameStatus::Complete) {
      off += consumed;
    }
    return off;
  };
  ASSERT_EQ(frame_all(), in.size());  // warm-up sizes the reused vectors
  const size_t before = heap_in_use();
  for (int round = 0; round < 100; ++round) ASSERT_EQ(frame_all(), in.size());
  EXPECT_EQ(heap_in_use(), before);
}

}  // namespace
}  // namespace respite::resp
