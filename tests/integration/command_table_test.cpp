// Differential test of CommandTable::extract_keys (src/cmd) against a real redis-server's
// COMMAND GETKEYS, for representative requests of every key-position shape. Keys are compared
// as sorted lists of names (Redis lists them in key-spec order, as extract_keys does, but the
// order is not part of the contract).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "cmd/command_table.h"
#include "support/net.h"
#include "support/redis_server.h"

namespace respite::test {
namespace {

std::vector<std::vector<std::string>> requests() {
  return {
      {"GET", "k"},
      {"SET", "k", "v", "EX", "10", "GET"},
      {"MSET", "a", "1", "b", "2", "c", "3"},
      {"MSETNX", "a", "1", "b", "2"},
      {"MGET", "a", "b", "c"},
      {"DEL", "a", "b", "c"},
      {"EXISTS", "a", "a"},
      {"RENAME", "a", "b"},
      {"COPY", "a", "b", "REPLACE"},
      {"LMOVE", "a", "b", "LEFT", "RIGHT"},
      {"BLPOP", "a", "b", "0"},
      {"BRPOPLPUSH", "a", "b", "0"},
      {"HSET", "h", "f", "v"},
      {"SINTERSTORE", "d", "a", "b"},
      {"SMOVE", "a", "b", "m"},
      {"PFMERGE", "d", "a", "b"},
      {"BITOP", "AND", "d", "a", "b"},
      {"OBJECT", "ENCODING", "k"},
      {"MEMORY", "USAGE", "k", "SAMPLES", "5"},
      {"XINFO", "STREAM", "s", "FULL"},
      {"XGROUP", "CREATE", "s", "g", "$"},
      {"EVAL", "return 1", "0"},
      {"EVAL", "return 1", "2", "k1", "k2", "a1"},
      {"EVALSHA", "0123456789012345678901234567890123456789", "1", "k"},
      {"EVAL_RO", "return 1", "1", "k", "a"},
      {"FCALL", "f", "2", "k1", "k2"},
      {"XREAD", "COUNT", "5", "BLOCK", "100", "STREAMS", "s1", "s2", "0", "0"},
      {"XREAD", "STREAMS", "s", "$"},
      {"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "NOACK", "STREAMS", "s1", "s2", ">", ">"},
      {"ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2", "AGGREGATE", "SUM"},
      {"ZINTERSTORE", "d", "1", "a"},
      {"ZDIFFSTORE", "d", "2", "a", "b"},
      {"ZUNION", "2", "a", "b", "WITHSCORES"},
      {"ZINTER", "1", "a"},
      {"ZDIFF", "3", "a", "b", "c"},
      {"ZINTERCARD", "2", "a", "b", "LIMIT", "3"},
      {"SINTERCARD", "1", "a"},
      {"LMPOP", "2", "a", "b", "LEFT", "COUNT", "2"},
      {"BLMPOP", "0", "1", "a", "RIGHT"},
      {"ZMPOP", "1", "z", "MIN"},
      {"BZMPOP", "1", "2", "z1", "z2", "MAX", "COUNT", "3"},
      {"SORT", "k"},
      {"SORT", "k", "BY", "w_*", "LIMIT", "0", "5", "GET", "#", "ALPHA", "STORE", "d"},
      {"SORT_RO", "k", "BY", "w_*", "GET", "#"},
      {"MIGRATE", "127.0.0.1", "1", "k", "0", "100"},
      {"MIGRATE", "127.0.0.1", "1", "", "0", "100", "COPY", "AUTH2", "u", "p", "KEYS", "a", "b"},
      {"GEORADIUS", "g", "15", "37", "200", "km", "ASC", "STORE", "d"},
      {"GEORADIUS", "g", "15", "37", "200", "km", "STOREDIST", "d"},
      {"GEORADIUSBYMEMBER", "g", "m", "200", "km", "COUNT", "3", "STORE", "d"},
      {"GEOSEARCHSTORE", "d", "g", "FROMMEMBER", "m", "BYRADIUS", "1", "km"},
      {"LCS", "a", "b", "LEN"},
      {"BITFIELD", "b", "GET", "u4", "0"},
      {"WATCH", "a", "b"},
  };
}

// COMMAND GETKEYS as a sorted list of names; `error` set when Redis replies with an error.
std::vector<std::string> redis_keys(Client& c, const std::vector<std::string>& request,
                                    std::string& error) {
  std::vector<std::string> args = {"COMMAND", "GETKEYS"};
  args.insert(args.end(), request.begin(), request.end());
  Reply r = c.command(args);
  std::vector<std::string> out;
  if (!r) {
    error = c.error();
  } else if (r->type == REDIS_REPLY_ERROR) {
    error = std::string(r->str, r->len);
  } else if (r->type != REDIS_REPLY_ARRAY) {
    error = "unexpected reply " + describe(r);
  } else {
    for (size_t i = 0; i < r->elements; ++i) out.emplace_back(r->element[i]->str, r->element[i]->len);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(CommandTableVsRedis, ExtractKeysMatchesCommandGetkeys) {
  RedisServer server;
  Client client = Client::tcp(server.port());
  const cmd::CommandTable& table = cmd::CommandTable::builtin();
  for (const auto& request : requests()) {
    std::string name;
    for (const auto& a : request) name += (name.empty() ? "" : " ") + a;
    SCOPED_TRACE(name);
    std::string error;
    std::vector<std::string> expected = redis_keys(client, request, error);
    ASSERT_EQ(error, "");

    std::vector<std::string_view> args(request.begin(), request.end());
    const cmd::CommandInfo* info = table.find(std::span<const std::string_view>(args));
    ASSERT_NE(info, nullptr);
    std::vector<size_t> positions;
    ASSERT_TRUE(table.extract_keys(*info, args, positions));
    std::vector<std::string> got;
    for (size_t p : positions) got.emplace_back(args[p]);
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, expected);
  }
}

// Every command and subcommand in the live server is in the embedded table with the same arity.
TEST(CommandTableVsRedis, TableCoversTheServersCommands) {
  RedisServer server;
  Client client = Client::tcp(server.port());
  Reply r = client.command({"COMMAND", "LIST"});
  ASSERT_TRUE(r && r->type == REDIS_REPLY_ARRAY) << client.error();
  const cmd::CommandTable& table = cmd::CommandTable::builtin();
  for (size_t i = 0; i < r->elements; ++i) {
    std::string name(r->element[i]->str, r->element[i]->len);
    EXPECT_NE(table.find(name), nullptr) << name;
  }
  Reply count = client.command({"COMMAND", "COUNT"});
  ASSERT_TRUE(count && count->type == REDIS_REPLY_INTEGER);
  size_t top_level = 0;
  for (const auto& c : table.commands()) top_level += c.name.find('|') == std::string::npos;
  EXPECT_EQ(top_level, static_cast<size_t>(count->integer));
}

}  // namespace
}  // namespace respite::test
