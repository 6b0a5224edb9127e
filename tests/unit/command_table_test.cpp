// CommandTable: the table embedded from proto/commands.tsv (Redis 7.0), lookups, arity and
// key extraction. The differential check against a live server's COMMAND GETKEYS is in
// tests/integration/command_table_test.cpp.
#include "cmd/command_table.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace respite::cmd {
namespace {

const CommandTable& table() { return CommandTable::builtin(); }

const CommandInfo& info(std::string_view name) {
  const CommandInfo* c = table().find(name);
  if (c == nullptr) throw std::runtime_error("no command " + std::string(name));
  return *c;
}

// The key positions of a request, resolving subcommands; "FAIL" rendered as {999}.
std::vector<size_t> keys(std::vector<std::string_view> args) {
  const CommandInfo* c = table().find(std::span<const std::string_view>(args));
  if (c == nullptr) return {999};
  std::vector<size_t> out;
  if (!table().extract_keys(*c, args, out)) return {999};
  return out;
}
const std::vector<size_t> kFail = {999};
using V = std::vector<size_t>;

TEST(CommandTable, LoadsTheEmbeddedTable) {
  EXPECT_GT(table().size(), 200u);
  EXPECT_EQ(table().redis_version().substr(0, 2), "7.");
  EXPECT_EQ(&CommandTable::builtin(), &table());
  for (const CommandInfo& c : table().commands()) {
    EXPECT_NE(c.arity, 0) << c.name;
    EXPECT_NE(c.keys_by, CommandInfo::KeysBy::Unknown) << c.name;
  }
}

TEST(CommandTable, Flags) {
  EXPECT_TRUE(info("get").has(CommandFlag::Readonly));
  EXPECT_TRUE(info("get").has(CommandFlag::Fast));
  EXPECT_FALSE(info("get").has(CommandFlag::Write));
  EXPECT_TRUE(info("get").in(AclCategory::Read));
  EXPECT_TRUE(info("get").in(AclCategory::String));
  EXPECT_TRUE(info("set").has(CommandFlag::Write));
  EXPECT_TRUE(info("set").has(CommandFlag::Denyoom));
  EXPECT_FALSE(info("set").has(CommandFlag::Readonly));
  EXPECT_TRUE(info("blpop").has(CommandFlag::Blocking));
  EXPECT_TRUE(info("blpop").in(AclCategory::Blocking));
  EXPECT_TRUE(info("subscribe").has(CommandFlag::Pubsub));
  EXPECT_TRUE(info("xread").has(CommandFlag::Movablekeys));
  EXPECT_TRUE(info("eval").has(CommandFlag::NoMandatoryKeys));
  // Redis 7.0 reports MULTI as noscript, loading, stale, fast, allow_busy: no no_multi.
  EXPECT_TRUE(info("multi").has(CommandFlag::AllowBusy));
  EXPECT_FALSE(info("multi").has(CommandFlag::NoMulti));
  EXPECT_TRUE(info("multi").in(AclCategory::Transaction));
  // no_multi is on the replication and shutdown commands.
  EXPECT_TRUE(info("sync").has(CommandFlag::NoMulti));
  EXPECT_TRUE(info("auth").has(CommandFlag::NoAuth));
  EXPECT_TRUE(info("flushall").in(AclCategory::Dangerous));
}

TEST(CommandTable, SubcommandNamesAreNotCommands) {
  const auto& t = CommandTable::builtin();
  std::vector<std::string_view> args = {"CONFIG|GET", "x"};
  EXPECT_EQ(t.find(args), nullptr);
  args = {"GET|"};
  EXPECT_EQ(t.find(args), nullptr);
  EXPECT_NE(t.find("config|get"), nullptr);  // by table name, as the policy looks it up
}

TEST(CommandTable, FindIsCaseInsensitive) {
  EXPECT_EQ(table().find("GET"), table().find("get"));
  EXPECT_EQ(table().find("gEt")->name, "get");
  EXPECT_EQ(table().find("CONFIG|Get")->name, "config|get");
  EXPECT_EQ(table().find("nosuchcommand"), nullptr);
  EXPECT_EQ(table().find(""), nullptr);
  EXPECT_EQ(table().find(std::string(200, 'a')), nullptr);
}

TEST(CommandTable, SubcommandResolution) {
  auto find = [](std::vector<std::string_view> args) {
    const CommandInfo* c = table().find(std::span<const std::string_view>(args));
    return c == nullptr ? std::string("null") : c->name;
  };
  EXPECT_EQ(find({"client", "kill"}), "client|kill");
  EXPECT_EQ(find({"CLIENT", "KILL", "ID", "7"}), "client|kill");
  EXPECT_EQ(find({"CONFIG", "get", "maxmemory"}), "config|get");
  EXPECT_EQ(find({"config", "nosuch"}), "config");
  EXPECT_EQ(find({"config"}), "config");
  EXPECT_EQ(find({"object", "ENCODING", "k"}), "object|encoding");
  EXPECT_EQ(find({"get", "config"}), "get");  // not a container
  EXPECT_EQ(find({"nosuch", "x"}), "null");
  EXPECT_EQ(find({}), "null");
  EXPECT_TRUE(info("client").container);
  EXPECT_FALSE(info("client|kill").container);
  EXPECT_TRUE(info("client|kill").has(CommandFlag::Admin));
}

TEST(CommandTable, Arity) {
  EXPECT_TRUE(info("get").arity_ok(2));
  EXPECT_FALSE(info("get").arity_ok(1));
  EXPECT_FALSE(info("get").arity_ok(3));
  EXPECT_TRUE(info("set").arity_ok(3));
  EXPECT_TRUE(info("set").arity_ok(7));
  EXPECT_FALSE(info("set").arity_ok(2));
  EXPECT_TRUE(info("ping").arity_ok(1));
  EXPECT_TRUE(info("ping").arity_ok(2));
  EXPECT_EQ(info("config|get").arity, -3);
  EXPECT_FALSE(info("config|get").arity_ok(2));
  // Wrong arity: no keys can be claimed.
  EXPECT_EQ(keys({"GET"}), kFail);
  EXPECT_EQ(keys({"GET", "a", "b"}), kFail);
}

TEST(CommandTable, FixedKeyPositions) {
  EXPECT_EQ(keys({"GET", "k"}), V({1}));
  EXPECT_EQ(keys({"SET", "k", "v", "EX", "10"}), V({1}));
  EXPECT_EQ(keys({"MSET", "a", "1", "b", "2", "c", "3"}), V({1, 3, 5}));
  EXPECT_EQ(keys({"DEL", "a", "b", "c"}), V({1, 2, 3}));
  EXPECT_EQ(keys({"MGET", "a"}), V({1}));
  EXPECT_EQ(keys({"BLPOP", "a", "b", "0"}), V({1, 2}));
  EXPECT_EQ(keys({"LMOVE", "a", "b", "LEFT", "RIGHT"}), V({1, 2}));
  EXPECT_EQ(keys({"OBJECT", "ENCODING", "k"}), V({2}));
  EXPECT_EQ(keys({"PING"}), V({}));
  EXPECT_EQ(keys({"CLIENT", "KILL", "ID", "3"}), V({}));
  EXPECT_EQ(keys({"SPUBLISH", "chan", "msg"}), V({}));  // a shard channel, not a key
}

TEST(CommandTable, ExtractAppendsAndLeavesOutputAloneOnFailure) {
  std::vector<size_t> out = {42};
  std::vector<std::string_view> ok = {"GET", "k"};
  std::vector<std::string_view> bad = {"EVAL", "s", "x"};
  EXPECT_TRUE(table().extract_keys(info("get"), ok, out));
  EXPECT_EQ(out, V({42, 1}));
  EXPECT_FALSE(table().extract_keys(info("eval"), bad, out));
  EXPECT_EQ(out, V({42, 1}));
}

TEST(CommandTable, EvalNumkeys) {
  EXPECT_EQ(keys({"EVAL", "return 1", "0"}), V({}));
  EXPECT_EQ(keys({"EVAL", "return 1", "0", "arg"}), V({}));
  EXPECT_EQ(keys({"EVAL", "s", "2", "k1", "k2", "a1"}), V({3, 4}));
  EXPECT_EQ(keys({"evalsha", "abc", "1", "k"}), V({3}));
  EXPECT_EQ(keys({"EVAL_RO", "s", "1", "k"}), V({3}));
  EXPECT_EQ(keys({"FCALL", "f", "2", "a", "b"}), V({3, 4}));
  EXPECT_EQ(keys({"FCALL_RO", "f", "0"}), V({}));
  // Malformed numkeys.
  EXPECT_EQ(keys({"EVAL", "s", "x"}), kFail);
  EXPECT_EQ(keys({"EVAL", "s", "-1"}), kFail);
  EXPECT_EQ(keys({"EVAL", "s", "+1", "k"}), kFail);
  EXPECT_EQ(keys({"EVAL", "s", "1 ", "k"}), kFail);
  EXPECT_EQ(keys({"EVAL", "s", "3", "k1", "k2"}), kFail);
  EXPECT_EQ(keys({"EVAL", "s", "99999999999999999999", "k"}), kFail);
}

TEST(CommandTable, XreadStreams) {
  EXPECT_EQ(keys({"XREAD", "STREAMS", "a", "0"}), V({2}));
  EXPECT_EQ(keys({"XREAD", "COUNT", "5", "BLOCK", "100", "streams", "a", "b", "0", "0"}), V({6, 7}));
  EXPECT_EQ(keys({"XREAD", "STREAMS", "a", "b", "0"}), kFail);  // unbalanced
  EXPECT_EQ(keys({"XREAD", "COUNT", "5", "BLOCK", "100"}), V({}));  // no STREAMS: no keys
  EXPECT_EQ(keys({"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s1", "s2", ">", ">"}),
            V({7, 8}));
  EXPECT_EQ(keys({"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"}), V({5}));
}

TEST(CommandTable, NumkeysCommands) {
  EXPECT_EQ(keys({"ZUNIONSTORE", "dst", "2", "a", "b", "WEIGHTS", "1", "2"}), V({1, 3, 4}));
  EXPECT_EQ(keys({"ZINTERSTORE", "dst", "1", "a"}), V({1, 3}));
  EXPECT_EQ(keys({"ZDIFFSTORE", "dst", "2", "a", "b"}), V({1, 3, 4}));
  EXPECT_EQ(keys({"ZUNION", "2", "a", "b", "WITHSCORES"}), V({2, 3}));
  EXPECT_EQ(keys({"ZINTER", "1", "a"}), V({2}));
  EXPECT_EQ(keys({"ZDIFF", "2", "a", "b"}), V({2, 3}));
  EXPECT_EQ(keys({"ZUNIONSTORE", "dst", "x", "a"}), kFail);
  EXPECT_EQ(keys({"LMPOP", "2", "a", "b", "LEFT", "COUNT", "2"}), V({2, 3}));
  EXPECT_EQ(keys({"BLMPOP", "0", "1", "a", "LEFT"}), V({3}));
  EXPECT_EQ(keys({"ZMPOP", "1", "z", "MIN"}), V({2}));
  EXPECT_EQ(keys({"BZMPOP", "1.5", "2", "z1", "z2", "MAX"}), V({3, 4}));
  EXPECT_EQ(keys({"SINTERCARD", "2", "a", "b", "LIMIT", "1"}), V({2, 3}));
  EXPECT_EQ(keys({"ZINTERCARD", "1", "a"}), V({2}));
  EXPECT_EQ(keys({"LMPOP", "5", "a", "LEFT"}), kFail);
}

TEST(CommandTable, Sort) {
  EXPECT_EQ(keys({"SORT", "k"}), V({1}));
  EXPECT_EQ(keys({"SORT", "k", "BY", "w_*", "LIMIT", "0", "10", "GET", "#", "DESC", "ALPHA"}), V({1}));
  EXPECT_EQ(keys({"SORT", "k", "GET", "store", "STORE", "dst"}), V({1, 5}));
  EXPECT_EQ(keys({"SORT", "k", "STORE", "d1", "STORE", "d2"}), V({1, 5}));  // the last wins
  EXPECT_EQ(keys({"SORT", "k", "NOSUCH"}), kFail);
  EXPECT_EQ(keys({"SORT_RO", "k", "BY", "x", "ALPHA"}), V({1}));
  EXPECT_EQ(keys({"SORT_RO", "k", "STORE", "d"}), kFail);
}

TEST(CommandTable, Migrate) {
  EXPECT_EQ(keys({"MIGRATE", "h", "6379", "k", "0", "5000"}), V({3}));
  EXPECT_EQ(keys({"MIGRATE", "h", "6379", "k", "0", "5000", "COPY", "REPLACE"}), V({3}));
  EXPECT_EQ(keys({"MIGRATE", "h", "6379", "", "0", "5000", "COPY", "AUTH", "keys", "KEYS", "a", "b"}),
            V({10, 11}));
  EXPECT_EQ(keys({"MIGRATE", "h", "6379", "", "0", "5000", "AUTH2", "u", "p", "KEYS", "a"}), V({10}));
  EXPECT_EQ(keys({"MIGRATE", "h", "6379", "k", "0", "5000", "KEYS", "a"}), kFail);
}

TEST(CommandTable, GeoradiusStore) {
  EXPECT_EQ(keys({"GEORADIUS", "g", "15", "37", "200", "km"}), V({1}));
  EXPECT_EQ(keys({"GEORADIUS", "g", "15", "37", "200", "km", "ASC", "STORE", "dst"}), V({1, 8}));
  EXPECT_EQ(keys({"GEORADIUS", "g", "15", "37", "200", "km", "STOREDIST", "dd"}), V({1, 7}));
  EXPECT_EQ(keys({"GEORADIUSBYMEMBER", "g", "m", "200", "km", "STORE", "dst"}), V({1, 6}));
  EXPECT_EQ(keys({"GEOSEARCHSTORE", "dst", "src", "FROMMEMBER", "m", "BYRADIUS", "1", "km"}),
            V({1, 2}));
}

TEST(CommandTable, ParseRejectsMalformedLines) {
  EXPECT_THROW(CommandTable::parse("get\t2\treadonly\n"), std::invalid_argument);
  EXPECT_THROW(CommandTable::parse("get\tx\t-\t1\t1\t1\t-\t-\n"), std::invalid_argument);
  EXPECT_THROW(CommandTable::parse("get\t2\t-\t1\t1\t1\t-\tz1/r0,1,0/RO\n"), std::invalid_argument);
  EXPECT_THROW(CommandTable::parse("a|b\t2\t-\t0\t0\t0\t-\t-\n"), std::invalid_argument);
  EXPECT_THROW(CommandTable::parse("a\t2\t-\t0\t0\t0\t-\t-\na\t2\t-\t0\t0\t0\t-\t-\n"),
               std::invalid_argument);
  CommandTable t = CommandTable::parse(
      "# from redis-server 9.9.9 COMMAND\n"
      "Foo\t-2\twrite,newflag\t1\t-1\t1\tread,newcat\ti1/r-1,1,0/RW,newspecflag\n");
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.redis_version(), "9.9.9");
  ASSERT_NE(t.find("FOO"), nullptr);
  EXPECT_EQ(t.find("foo")->flags, static_cast<uint32_t>(CommandFlag::Write));
  EXPECT_EQ(t.find("foo")->acl, static_cast<uint32_t>(AclCategory::Read));
  std::vector<std::string_view> args = {"foo", "a", "b"};
  std::vector<size_t> out;
  EXPECT_TRUE(t.extract_keys(*t.find("foo"), args, out));
  EXPECT_EQ(out, V({1, 2}));
}

}  // namespace
}  // namespace respite::cmd
