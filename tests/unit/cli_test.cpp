// Tests of command-line parsing: every flag in both "--flag value" and "--flag=value"
// forms, repeated --set, and the errors for unknown flags and missing values.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "config/cli.h"

namespace respite::config {
namespace {

// Builds a mutable argv from string literals (argv[0] = "respite").
struct Argv {
  std::vector<std::string> storage;  // owns the strings
  std::vector<char*> ptrs;           // argv-style pointers into storage
  explicit Argv(std::initializer_list<const char*> args) {
    storage.emplace_back("respite");
    for (const char* a : args) storage.emplace_back(a);
    for (auto& s : storage) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(storage.size()); }
  char** argv() { return ptrs.data(); }
};

CliOptions parse_ok(std::initializer_list<const char*> args) {
  Argv a(args);
  CliOptions opts;
  std::string err;
  EXPECT_TRUE(parse_cli(a.argc(), a.argv(), opts, err)) << err;
  return opts;
}

std::string parse_err(std::initializer_list<const char*> args) {
  Argv a(args);
  CliOptions opts;
  opts.config_path = "untouched";
  std::string err;
  EXPECT_FALSE(parse_cli(a.argc(), a.argv(), opts, err));
  EXPECT_FALSE(err.empty());
  EXPECT_EQ(opts.config_path, "untouched");
  return err;
}

TEST(Cli, NoArguments) {
  CliOptions o = parse_ok({});
  EXPECT_EQ(o.config_path, "");
  EXPECT_TRUE(o.sets.empty());
  EXPECT_FALSE(o.listen);
  EXPECT_FALSE(o.upstream);
  EXPECT_FALSE(o.log_level);
  EXPECT_FALSE(o.check_config);
  EXPECT_FALSE(o.version);
  EXPECT_FALSE(o.help);
}

TEST(Cli, SeparateValues) {
  CliOptions o = parse_ok({"--config", "a.toml", "--listen", "127.0.0.1:1", "--upstream", "redis://h:2",
                           "--log-level", "debug", "--set", "client.max_pending=10"});
  EXPECT_EQ(o.config_path, "a.toml");
  EXPECT_EQ(o.listen, "127.0.0.1:1");
  EXPECT_EQ(o.upstream, "redis://h:2");
  EXPECT_EQ(o.log_level, "debug");
  ASSERT_EQ(o.sets.size(), 1u);
  EXPECT_EQ(o.sets[0].first, "client.max_pending");
  EXPECT_EQ(o.sets[0].second, "10");
}

TEST(Cli, EqualsValues) {
  CliOptions o = parse_ok({"--config=a.toml", "--listen=[::1]:1", "--upstream=redis://u:p=q@h:2",
                           "--log-level=warn", "--set=upstream.url=redis://x:1"});
  EXPECT_EQ(o.config_path, "a.toml");
  EXPECT_EQ(o.listen, "[::1]:1");
  EXPECT_EQ(o.upstream, "redis://u:p=q@h:2");  // only the first '=' splits
  EXPECT_EQ(o.log_level, "warn");
  ASSERT_EQ(o.sets.size(), 1u);
  EXPECT_EQ(o.sets[0].first, "upstream.url");
  EXPECT_EQ(o.sets[0].second, "redis://x:1");
}

TEST(Cli, ShortFlags) {
  CliOptions o = parse_ok({"-c", "b.toml", "-h"});
  EXPECT_EQ(o.config_path, "b.toml");
  EXPECT_TRUE(o.help);
}

TEST(Cli, BooleanFlags) {
  CliOptions o = parse_ok({"--check-config", "--print-default-config", "--version", "--help"});
  EXPECT_TRUE(o.check_config);
  EXPECT_TRUE(o.print_defaults);
  EXPECT_TRUE(o.version);
  EXPECT_TRUE(o.help);
}

TEST(Cli, SetIsRepeatableAndOrdered) {
  CliOptions o = parse_ok({"--set", "a.b=1", "--set=c.d=x=y", "--set", "a.b=2", "--set", "e.f="});
  ASSERT_EQ(o.sets.size(), 4u);
  EXPECT_EQ(o.sets[0], (std::pair<std::string, std::string>{"a.b", "1"}));
  EXPECT_EQ(o.sets[1], (std::pair<std::string, std::string>{"c.d", "x=y"}));
  EXPECT_EQ(o.sets[2], (std::pair<std::string, std::string>{"a.b", "2"}));
  EXPECT_EQ(o.sets[3], (std::pair<std::string, std::string>{"e.f", ""}));
}

TEST(Cli, LaterFlagWins) {
  CliOptions o = parse_ok({"--listen", "127.0.0.1:1", "--listen=127.0.0.1:2"});
  EXPECT_EQ(o.listen, "127.0.0.1:2");
}

TEST(Cli, EmptyListenIsAllowed) {
  CliOptions o = parse_ok({"--listen="});
  ASSERT_TRUE(o.listen);
  EXPECT_EQ(*o.listen, "");
  o = parse_ok({"--listen", ""});
  EXPECT_EQ(*o.listen, "");
}

TEST(Cli, UnknownFlag) {
  std::string err = parse_err({"--lisen", "x"});
  EXPECT_NE(err.find("'--lisen'"), std::string::npos) << err;
  EXPECT_NE(parse_err({"-x"}).find("'-x'"), std::string::npos);
  EXPECT_NE(parse_err({"--bogus=1"}).find("'--bogus'"), std::string::npos);
}

TEST(Cli, MissingValue) {
  for (auto args : {std::initializer_list<const char*>{"--config"}, {"-c"}, {"--listen"}, {"--upstream"},
                    {"--set"}, {"--log-level"}, {"--listen", "--upstream", "x"}}) {
    Argv a(args);
    CliOptions o;
    std::string err;
    EXPECT_FALSE(parse_cli(a.argc(), a.argv(), o, err));
    EXPECT_NE(err.find("needs a value"), std::string::npos) << err;
  }
}

TEST(Cli, ValueForBooleanFlag) {
  EXPECT_NE(parse_err({"--version=yes"}).find("takes no value"), std::string::npos);
}

TEST(Cli, BadSet) {
  EXPECT_NE(parse_err({"--set", "novalue"}).find("KEY=VALUE"), std::string::npos);
  EXPECT_NE(parse_err({"--set", "=3"}).find("empty key"), std::string::npos);
}

TEST(Cli, PositionalArgumentIsAnError) {
  std::string err = parse_err({"respite.toml"});
  EXPECT_NE(err.find("'respite.toml'"), std::string::npos) << err;
  parse_err({"-"});
}

TEST(Cli, EmptyConfigPathIsAnError) { parse_err({"--config="}); }

TEST(Cli, UsageMentionsEveryFlagAndVariable) {
  std::string u = usage_text();
  for (const char* s : {"--config", "-c", "--listen", "--upstream", "--set", "--log-level", "--check-config",
                        "--print-default-config", "--admin", "--version", "--help", "-h", "RESPITE_UPSTREAM_URL", "RESPITE_UPSTREAM_PASSWORD",
                        "RESPITE_CLIENT_PASSWORD", "RESPITE_LOG_LEVEL"}) {
    EXPECT_NE(u.find(s), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace respite::config
