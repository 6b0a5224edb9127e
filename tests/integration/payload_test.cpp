// Payload fidelity: large values, binary keys and values, deeply nested replies survive the
// proxy byte for byte.
#include <gtest/gtest.h>

#include <string>

#include "support/stack.h"

namespace respite::test {
namespace {

using namespace std::chrono_literals;

class PayloadTest : public ProxyTest {};

std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

TEST_F(PayloadTest, SixteenMebibyteValueRoundTrips) {
  std::string value(16u * 1024 * 1024, '\0');
  // A pattern that catches dropped, duplicated or reordered chunks, with \r\n sprinkled in.
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>((i * 131 + (i >> 13)) & 0xff);
  value.replace(1000, 2, "\r\n");
  value.replace(value.size() - 2, 2, "\r\n");

  Client c = Client::tcp(stack().port(), 20s);
  EXPECT_EQ(c.call({"SET", "big:value", value}), "+OK");
  Reply r = c.command({"GET", "big:value"});
  ASSERT_TRUE(r) << c.error();
  ASSERT_EQ(r->type, REDIS_REPLY_STRING);
  ASSERT_EQ(r->len, value.size());
  EXPECT_TRUE(std::string(r->str, r->len) == value) << "16 MiB value corrupted";
  EXPECT_EQ(c.call({"STRLEN", "big:value"}), cat(":", value.size()));

  // The same value twice in one pipeline, after a small command, still lines up.
  c.append({"GET", "big:value"});
  c.append({"PING"});
  c.append({"GET", "big:value"});
  Reply a = c.get_reply(), p = c.get_reply(), b = c.get_reply();
  ASSERT_TRUE(a && p && b) << c.error();
  EXPECT_TRUE(std::string(a->str, a->len) == value);
  EXPECT_EQ(describe(p), "+PONG");
  EXPECT_TRUE(std::string(b->str, b->len) == value);
}

TEST_F(PayloadTest, BinaryKeysAndValuesRoundTripExactly) {
  const std::string key = "bin:" + all_bytes() + "\r\n*1\r\n$3\r\n";
  const std::string value = all_bytes() + "\r\n" + all_bytes();

  Client c = connect();
  EXPECT_EQ(c.call({"SET", key, value}), "+OK");
  Reply r = c.command({"GET", key});
  ASSERT_TRUE(r) << c.error();
  ASSERT_EQ(r->type, REDIS_REPLY_STRING);
  EXPECT_EQ(escape_bytes(std::string(r->str, r->len), 2000), escape_bytes(value, 2000));
  EXPECT_EQ(c.call({"EXISTS", key}), ":1");
  EXPECT_EQ(c.call({"HSET", "bin:hash", key, value}), ":1");
  Reply h = c.command({"HGET", "bin:hash", key});
  ASSERT_TRUE(h);
  EXPECT_TRUE(std::string(h->str, h->len) == value);

  // Redis itself holds exactly that key: the proxy forwarded the bytes unchanged.
  Client redis = stack().connect_redis();
  Reply d = redis.command({"GET", key});
  ASSERT_TRUE(d);
  ASSERT_EQ(d->type, REDIS_REPLY_STRING);
  EXPECT_TRUE(std::string(d->str, d->len) == value);
  Reply keys = redis.command({"KEYS", "bin:*"});
  ASSERT_TRUE(keys);
  ASSERT_EQ(keys->type, REDIS_REPLY_ARRAY);
  bool found = false;
  for (size_t i = 0; i < keys->elements; ++i)
    found |= std::string(keys->element[i]->str, keys->element[i]->len) == key;
  EXPECT_TRUE(found) << "the binary key is not in Redis as sent";
}

TEST_F(PayloadTest, ReplyNestedTenLevelsDeepPassesThroughIntact) {
  const std::string eval = resp_command({"EVAL", "return {{{{{{{{{{1}}}}}}}}}}", "0"});
  std::string want;
  for (int i = 0; i < 10; ++i) want += "*1\r\n";
  want += ":1\r\n";

  RawConn direct = RawConn::tcp(stack().redis().port());
  ASSERT_TRUE(direct.send_all(eval, deadline_in(5s)));
  auto from_redis = direct.read_reply(deadline_in(5s));
  ASSERT_TRUE(from_redis);
  EXPECT_EQ(escape_bytes(*from_redis), escape_bytes(want));

  RawConn via = stack().raw();
  // Twice in one write, plus a PING, to check framing of the nested reply in a pipeline.
  ASSERT_TRUE(via.send_all(eval + resp_command({"PING"}) + eval, deadline_in(5s)));
  for (const std::string& expected : {want, std::string("+PONG\r\n"), want}) {
    auto got = via.read_reply(deadline_in(5s));
    ASSERT_TRUE(got) << (via.closed() ? "connection closed" : "timeout");
    EXPECT_EQ(escape_bytes(*got), escape_bytes(expected));
  }
}

}  // namespace
}  // namespace respite::test
