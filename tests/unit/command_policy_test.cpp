// Unit tests of cmd::classify: which requests may use a shared upstream connection.
#include <gtest/gtest.h>

#include <string_view>
#include <vector>

#include "cmd/command_policy.h"

using respite::cmd::classify;
using respite::cmd::Route;

namespace {
Route route(std::vector<std::string_view> args, int db = 0) { return classify(args, db).route; }
}  // namespace

TEST(CommandPolicy, StatelessCommandsAreForwardedInAnyCase) {
  EXPECT_EQ(route({"GET", "k"}), Route::Forward);
  EXPECT_EQ(route({"set", "k", "v"}), Route::Forward);
  EXPECT_EQ(route({"PiNg"}), Route::Forward);
  EXPECT_EQ(route({"EVAL", "return 1", "0"}), Route::Forward);
  EXPECT_EQ(route({"SOME.MODULECOMMAND", "x"}), Route::Forward);
  EXPECT_EQ(route({std::string_view("a-very-long-command-name-longer-than-thirty-two-bytes")}), Route::Forward);
}

TEST(CommandPolicy, StatefulFamiliesNeedADedicatedConnection) {
  for (auto name : {"MULTI", "exec", "Discard", "WATCH", "unwatch", "BLPOP", "brpop", "BRPOPLPUSH", "BLMOVE",
                    "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE",
                    "UNSUBSCRIBE", "MONITOR"}) {
    EXPECT_EQ(route({name, "x", "0"}), Route::NeedsDedicated) << name;
  }
  EXPECT_EQ(route({"CLIENT", "TRACKING", "on"}), Route::NeedsDedicated);
}

TEST(CommandPolicy, XreadBlocksOnlyWithBlockBeforeStreams) {
  EXPECT_EQ(route({"XREAD", "COUNT", "1", "STREAMS", "s", "0"}), Route::Forward);
  EXPECT_EQ(route({"XREAD", "block", "0", "STREAMS", "s", "$"}), Route::NeedsDedicated);
  // A stream *named* "block" is not the option.
  EXPECT_EQ(route({"XREAD", "STREAMS", "block", "0"}), Route::Forward);
  EXPECT_EQ(route({"XREADGROUP", "GROUP", "g", "c", "BLOCK", "10", "STREAMS", "s", ">"}), Route::NeedsDedicated);
}

TEST(CommandPolicy, SelectOfTheSharedDatabaseIsLocal) {
  EXPECT_EQ(route({"SELECT", "0"}, 0), Route::SelectSame);
  EXPECT_EQ(route({"SELECT", "3"}, 3), Route::SelectSame);
  EXPECT_EQ(route({"SELECT", "1"}, 0), Route::NeedsDedicated);
  EXPECT_EQ(route({"SELECT", "0x"}, 0), Route::NeedsDedicated);
  EXPECT_EQ(route({"SELECT"}, 0), Route::Forward);  // Redis answers the arity error
}

TEST(CommandPolicy, ConnectionLevelCommands) {
  EXPECT_EQ(route({"QUIT"}), Route::Quit);
  EXPECT_EQ(route({"reset"}), Route::Reset);
  EXPECT_EQ(route({"AUTH", "pw"}), Route::Auth);
  EXPECT_EQ(route({"HELLO", "3"}), Route::HelloNoProto);
  EXPECT_EQ(route({"HELLO", "2"}), Route::Forward);
  EXPECT_EQ(route({"HELLO"}), Route::Forward);
  EXPECT_EQ(route({"HELLO", "2", "AUTH", "u", "p"}), Route::Refuse);
  EXPECT_EQ(route({"CLIENT", "REPLY", "OFF"}), Route::Refuse);
  EXPECT_EQ(route({"CLIENT", "SETNAME", "x"}), Route::Forward);
  EXPECT_EQ(route({"PSYNC", "?", "-1"}), Route::Refuse);
  EXPECT_FALSE(classify(std::vector<std::string_view>{"CLIENT", "REPLY", "OFF"}, 0).why.empty());
}
