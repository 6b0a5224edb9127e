// Unit tests of buf::Buffer: cursor arithmetic, growth, compaction, move semantics.
#include <gtest/gtest.h>

#include <string>

#include "buf/buffer.h"

using respite::buf::Buffer;

TEST(Buffer, AppendConsumeResetsCursorsWhenDrained) {
  Buffer b;
  b.append("hello ");
  b.append("world");
  EXPECT_EQ(b.view(), "hello world");
  b.consume(6);
  EXPECT_EQ(b.view(), "world");
  b.consume(5);
  EXPECT_TRUE(b.empty());
  // A drained buffer starts writing at the front again: no memmove needed.
  size_t cap = b.capacity();
  b.append(std::string(cap, 'x'));
  EXPECT_EQ(b.capacity(), cap);
}

TEST(Buffer, PrepareCommitGrowsAndKeepsReadableBytes) {
  Buffer b;
  b.append("abc");
  char* p = b.prepare(100000);
  ASSERT_GE(b.writable(), 100000u);
  for (int i = 0; i < 100000; ++i) p[i] = static_cast<char>('0' + i % 10);
  b.commit(100000);
  ASSERT_EQ(b.size(), 100003u);
  EXPECT_EQ(b.view().substr(0, 5), "abc01");
}

TEST(Buffer, CompactsInsteadOfGrowingWhenPrefixIsDead) {
  Buffer b(4096);
  b.append(std::string(4000, 'a'));
  b.consume(3000);
  size_t cap = b.capacity();
  b.append(std::string(2000, 'b'));  // fits once the 3000 dead bytes are reclaimed
  EXPECT_EQ(b.capacity(), cap);
  EXPECT_EQ(b.size(), 3000u);
  EXPECT_EQ(b.view().substr(0, 1000), std::string(1000, 'a'));
  EXPECT_EQ(b.view().substr(1000), std::string(2000, 'b'));
}

TEST(Buffer, MoveAndSwapTransferStorage) {
  Buffer a;
  a.append("payload");
  Buffer b(std::move(a));
  EXPECT_EQ(b.view(), "payload");
  Buffer c;
  std::swap(b, c);
  EXPECT_EQ(c.view(), "payload");
  EXPECT_TRUE(b.empty());
}

TEST(Buffer, ShrinkIfEmptyReleasesOnlyLargeEmptyBuffers) {
  Buffer b;
  b.append(std::string(1 << 20, 'z'));
  b.shrink_if_empty(1024);
  EXPECT_GE(b.capacity(), 1u << 20);  // not empty: kept
  b.consume(b.size());
  b.shrink_if_empty(1024);
  EXPECT_EQ(b.capacity(), 0u);
  b.append("again");
  EXPECT_EQ(b.view(), "again");
}

TEST(Buffer, ReadBufferWithASmallPartialTailIsReusedNotDoubled) {
  // A socket read buffer: most of a read consumed, a partial request left at the end,
  // then room for the next 64 KiB read is asked for. The consumed prefix (60 KiB) is
  // less than half the buffer but far more than the 10 KiB still live: compact, do not grow.
  Buffer b;
  b.reserve(128 * 1024);
  size_t cap = b.capacity();
  b.append(std::string(70 * 1024, 'r'));
  b.consume(60 * 1024);
  b.prepare(64 * 1024);
  EXPECT_EQ(b.capacity(), cap);
  EXPECT_EQ(b.view(), std::string(10 * 1024, 'r'));
}
