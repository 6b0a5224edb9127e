// cache::Policy: which requests the near-cache serves, which invalidate, and the key rules.
#include "cache/policy.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string_view>
#include <vector>

namespace respite::cache {
namespace {

using cmd::CommandTable;

Role role_of(const Policy& p, std::vector<std::string_view> args) {
  return p.role(cmd::classify(CommandTable::builtin(), args), args);
}

TEST(CachePolicy, RolesComeFromTheCommandTable) {
  config::CacheConfig cfg;
  Policy p(CommandTable::builtin(), cfg);
  EXPECT_EQ(role_of(p, {"GET", "k"}), Role::Read);
  EXPECT_EQ(role_of(p, {"hget", "k", "f"}), Role::Read);
  EXPECT_EQ(role_of(p, {"LRANGE", "k", "0", "-1"}), Role::Read);
  EXPECT_EQ(role_of(p, {"EXISTS", "k"}), Role::Read);
  EXPECT_EQ(role_of(p, {"EXISTS", "a", "b"}), Role::None);       // several keys
  EXPECT_EQ(role_of(p, {"TTL", "k"}), Role::None);               // nondeterministic_output
  EXPECT_EQ(role_of(p, {"SRANDMEMBER", "k"}), Role::None);
  EXPECT_EQ(role_of(p, {"SORT_RO", "k"}), Role::None);           // movable keys (BY/GET)
  EXPECT_EQ(role_of(p, {"MEMORY", "USAGE", "k"}), Role::None);
  EXPECT_EQ(role_of(p, {"PING"}), Role::None);
  EXPECT_EQ(role_of(p, {"MGET", "a", "b"}), Role::MultiGet);
  EXPECT_EQ(role_of(p, {"HMGET", "h", "a", "b"}), Role::HashMultiGet);
  EXPECT_EQ(role_of(p, {"SET", "k", "v"}), Role::Write);
  EXPECT_EQ(role_of(p, {"BLMOVE", "a", "b", "LEFT", "LEFT", "0"}), Role::Write);
  EXPECT_EQ(role_of(p, {"EVAL", "return 1", "1", "k"}), Role::WriteUnknown);  // may write undeclared keys
  EXPECT_EQ(role_of(p, {"fcall_ro", "f", "0"}), Role::WriteUnknown);
  EXPECT_EQ(role_of(p, {"JSON.SET", "k", "$", "1"}), Role::WriteUnknown);     // unknown command
  EXPECT_EQ(role_of(p, {"FLUSHALL"}), Role::Flush);
  EXPECT_EQ(role_of(p, {"swapdb", "0", "1"}), Role::Flush);
  EXPECT_EQ(role_of(p, {"SCRIPT", "FLUSH"}), Role::None);
}

TEST(CachePolicy, WriteKeys) {
  config::CacheConfig cfg;
  Policy p(CommandTable::builtin(), cfg);
  std::vector<std::string_view> args = {"MSET", "a", "1", "b", "2"};
  std::vector<size_t> keys;
  ASSERT_TRUE(p.write_keys(cmd::classify(CommandTable::builtin(), args), args, keys));
  EXPECT_EQ(keys, (std::vector<size_t>{1, 3}));
}

TEST(CachePolicy, RulesFirstMatchWinsAndCapTheLifetime) {
  config::CacheConfig cfg;
  cfg.max_ttl_ms = 60000;
  cfg.rules = {{"session:*", false, 0}, {"cfg:*", true, 500}, {"cfg:big*", true, 99999999}, {"*", true, 0}};
  Policy p(CommandTable::builtin(), cfg);
  EXPECT_EQ(p.ttl_ms("session:1"), 0u);
  EXPECT_EQ(p.ttl_ms("cfg:a"), 500u);
  EXPECT_EQ(p.ttl_ms("cfg:bigger"), 500u);  // the first matching rule decides
  EXPECT_EQ(p.ttl_ms("other"), 60000u);
  cfg.rules = {{"long:*", true, 99999999}};
  Policy capped(CommandTable::builtin(), cfg);
  EXPECT_EQ(capped.ttl_ms("long:1"), 60000u);  // never above cache.max_ttl_ms
}

TEST(CachePolicy, BcastCachesOnlyItsPrefixes) {
  config::CacheConfig cfg;
  cfg.tracking = "bcast";
  cfg.bcast_prefixes = {"user:", "cfg:"};
  Policy p(CommandTable::builtin(), cfg);
  EXPECT_GT(p.ttl_ms("user:1"), 0u);
  EXPECT_GT(p.ttl_ms("cfg:x"), 0u);
  EXPECT_EQ(p.ttl_ms("other:1"), 0u);
}

// docs/near-cache.md lists the cached commands; the list must be the policy's.
TEST(CachePolicy, DocsListTheCachedCommands) {
  std::ifstream in(std::string(RESPITE_SOURCE_DIR) + "/docs/near-cache.md");
  ASSERT_TRUE(in) << "docs/near-cache.md";
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  const std::string start = "generated from Redis's `COMMAND`):\n  `";
  size_t a = text.find(start);
  ASSERT_NE(a, std::string::npos);
  a += start.size();
  size_t b = text.find('`', a);
  ASSERT_NE(b, std::string::npos);
  std::istringstream words(text.substr(a, b - a));
  std::vector<std::string> documented;
  for (std::string w; words >> w;) documented.push_back(w);
  documented.push_back("exists");  // named separately: with one key
  std::sort(documented.begin(), documented.end());
  config::CacheConfig cfg;
  Policy p(CommandTable::builtin(), cfg);
  EXPECT_EQ(documented, p.cached_commands());
}

}  // namespace
}  // namespace respite::cache
