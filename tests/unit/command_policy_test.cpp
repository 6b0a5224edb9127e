// Command policy: the Kind each request gets from the command table.
#include "cmd/command_policy.h"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

namespace respite::cmd {
namespace {

Decision decide(std::vector<std::string_view> args) { return classify(CommandTable::builtin(), args); }
Kind kind(std::vector<std::string_view> args) { return decide(std::move(args)).kind; }

TEST(CommandPolicy, StatelessCommandsArePlainInAnyCase) {
  EXPECT_EQ(kind({"GET", "k"}), Kind::Plain);
  EXPECT_EQ(kind({"set", "k", "v"}), Kind::Plain);
  EXPECT_EQ(kind({"PiNg"}), Kind::Plain);
  EXPECT_EQ(kind({"EVAL", "return 1", "0"}), Kind::Plain);
  EXPECT_EQ(kind({"CLIENT", "PAUSE", "10"}), Kind::Plain);  // acts on the whole Redis: forwarded
  EXPECT_EQ(kind({"WAIT", "0", "0"}), Kind::Plain);         // must run where the client's writes went
}

TEST(CommandPolicy, UnknownCommandsArePlainWithoutTableEntry) {
  Decision d = decide({"JSON.GET", "k"});
  EXPECT_EQ(d.kind, Kind::Plain);
  EXPECT_EQ(d.info, nullptr);
  EXPECT_TRUE(d.arity_ok);
  EXPECT_EQ(display_name(d, std::vector<std::string_view>{"JSON.GET", "k"}), "JSON.GET");
}

TEST(CommandPolicy, StatefulFamilies) {
  EXPECT_EQ(kind({"multi"}), Kind::Multi);
  EXPECT_EQ(kind({"EXEC"}), Kind::Exec);
  EXPECT_EQ(kind({"discard"}), Kind::Discard);
  EXPECT_EQ(kind({"WATCH", "a", "b"}), Kind::Watch);
  EXPECT_EQ(kind({"UNWATCH"}), Kind::Unwatch);
  EXPECT_EQ(kind({"subscribe", "c"}), Kind::Subscribe);
  EXPECT_EQ(kind({"PSUBSCRIBE", "c*"}), Kind::Psubscribe);
  EXPECT_EQ(kind({"SSUBSCRIBE", "c"}), Kind::Ssubscribe);
  EXPECT_EQ(kind({"UNSUBSCRIBE"}), Kind::Unsubscribe);
  EXPECT_EQ(kind({"PUNSUBSCRIBE"}), Kind::Punsubscribe);
  EXPECT_EQ(kind({"SUNSUBSCRIBE"}), Kind::Sunsubscribe);
  EXPECT_EQ(kind({"MONITOR"}), Kind::Monitor);
  EXPECT_EQ(kind({"SELECT", "2"}), Kind::Select);
}

TEST(CommandPolicy, BlockingCommandsComeFromTheTableFlag) {
  for (const char* name : {"BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP"}) {
    const CommandInfo* info = CommandTable::builtin().find(name);
    ASSERT_NE(info, nullptr) << name;
    EXPECT_TRUE(info->has(CommandFlag::Blocking)) << name;
  }
  EXPECT_EQ(kind({"BLPOP", "k", "0"}), Kind::Blocking);
  EXPECT_EQ(kind({"bzpopmin", "k", "1"}), Kind::Blocking);
  EXPECT_EQ(kind({"BLMPOP", "1", "1", "k", "LEFT"}), Kind::Blocking);
  EXPECT_EQ(kind({"SCRIPT", "KILL"}), Kind::Blocking);
  EXPECT_EQ(kind({"FUNCTION", "KILL"}), Kind::Blocking);
  EXPECT_EQ(kind({"CLIENT", "UNPAUSE"}), Kind::Blocking);
}

TEST(CommandPolicy, XreadBlocksOnlyWithBlockBeforeStreams) {
  EXPECT_EQ(kind({"XREAD", "STREAMS", "s", "0"}), Kind::Plain);
  EXPECT_EQ(kind({"XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "$"}), Kind::Blocking);
  EXPECT_EQ(kind({"xreadgroup", "GROUP", "g", "c", "block", "10", "STREAMS", "s", ">"}), Kind::Blocking);
  // "block" after STREAMS is a stream name, not the option.
  EXPECT_EQ(kind({"XREAD", "STREAMS", "block", "0"}), Kind::Plain);
}

TEST(CommandPolicy, ConnectionCommandsAnsweredLocally) {
  EXPECT_EQ(kind({"QUIT"}), Kind::Quit);
  EXPECT_EQ(kind({"RESET"}), Kind::Reset);
  EXPECT_EQ(kind({"AUTH", "pw"}), Kind::Auth);
  EXPECT_EQ(kind({"HELLO", "2"}), Kind::Hello);
  EXPECT_EQ(kind({"CLIENT", "ID"}), Kind::ClientId);
  EXPECT_EQ(kind({"client", "setname", "x"}), Kind::ClientSetname);
  EXPECT_EQ(kind({"CLIENT", "GETNAME"}), Kind::ClientGetname);
  EXPECT_EQ(kind({"CLIENT", "INFO"}), Kind::ClientInfo);
  EXPECT_EQ(kind({"CLIENT", "LIST"}), Kind::ClientList);
  EXPECT_EQ(kind({"CLIENT", "KILL", "ID", "3"}), Kind::ClientKill);
  EXPECT_EQ(kind({"CLIENT", "REPLY", "OFF"}), Kind::ClientReply);
  EXPECT_EQ(kind({"CLIENT", "UNBLOCK", "3"}), Kind::ClientUnblock);
  EXPECT_EQ(kind({"CLIENT", "TRACKING", "on"}), Kind::ClientTracking);
  EXPECT_EQ(kind({"CLIENT", "CACHING", "yes"}), Kind::ClientCaching);
  EXPECT_EQ(kind({"CLIENT", "SETINFO", "LIB-NAME", "x"}), Kind::ClientSetinfo);
  // An unknown subcommand goes to Redis, which names it in its error.
  EXPECT_EQ(kind({"CLIENT", "FROB"}), Kind::Plain);
}

TEST(CommandPolicy, RefusedCommands) {
  EXPECT_EQ(kind({"SCRIPT", "DEBUG", "YES"}), Kind::Refuse);
}

TEST(CommandPolicy, ReplicationCommands) {
  EXPECT_EQ(kind({"SYNC"}), Kind::Sync);
  EXPECT_EQ(kind({"PSYNC", "?", "-1"}), Kind::Sync);
  EXPECT_EQ(kind({"REPLCONF", "listening-port", "1"}), Kind::Replconf);
}

TEST(CommandPolicy, ArityFromTheTable) {
  EXPECT_FALSE(decide({"GET"}).arity_ok);
  EXPECT_TRUE(decide({"GET", "k"}).arity_ok);
  EXPECT_FALSE(decide({"CLIENT", "SETNAME"}).arity_ok);
  EXPECT_EQ(display_name(decide({"CLIENT", "SETNAME"}), std::vector<std::string_view>{"CLIENT", "SETNAME"}),
            "client|setname");
  EXPECT_FALSE(decide({"CLIENT"}).arity_ok);
  EXPECT_FALSE(decide({"SUBSCRIBE"}).arity_ok);
}

TEST(CommandPolicy, ClassesFromFlagsAndCategories) {
  auto cls = [](std::vector<std::string_view> args) { return command_class(decide(std::move(args))); };
  EXPECT_EQ(cls({"GET", "k"}), CommandClass::Read);
  EXPECT_EQ(cls({"XREAD", "STREAMS", "s", "0"}), CommandClass::Read);
  EXPECT_EQ(cls({"SET", "k", "v"}), CommandClass::Write);
  EXPECT_EQ(cls({"EVAL", "return 1", "0"}), CommandClass::Write);
  EXPECT_EQ(cls({"EVAL_RO", "return 1", "0"}), CommandClass::Read);
  EXPECT_EQ(cls({"MY.MODULECMD", "x"}), CommandClass::Write);
  EXPECT_EQ(cls({"BLPOP", "k", "0"}), CommandClass::Blocking);
  EXPECT_EQ(cls({"XREAD", "BLOCK", "0", "STREAMS", "s", "$"}), CommandClass::Blocking);
  EXPECT_EQ(cls({"SUBSCRIBE", "c"}), CommandClass::Pubsub);
  EXPECT_EQ(cls({"PUBLISH", "c", "m"}), CommandClass::Pubsub);
  EXPECT_EQ(cls({"MULTI"}), CommandClass::Transaction);
  EXPECT_EQ(cls({"EXEC"}), CommandClass::Transaction);
  EXPECT_EQ(cls({"AUTH", "pw"}), CommandClass::Connection);
  EXPECT_EQ(cls({"CLIENT", "SETNAME", "n"}), CommandClass::Connection);
  EXPECT_EQ(cls({"PING"}), CommandClass::Connection);
  EXPECT_EQ(cls({"FLUSHALL"}), CommandClass::Write);
  EXPECT_EQ(cls({"CONFIG", "SET", "x", "y"}), CommandClass::Admin);
  EXPECT_EQ(cls({"INFO"}), CommandClass::Other);
  EXPECT_EQ(class_name(CommandClass::Blocking), "blocking");
}

TEST(CommandPolicy, EmptyRequestIsPlain) { EXPECT_EQ(kind({}), Kind::Plain); }

}  // namespace
}  // namespace respite::cmd
