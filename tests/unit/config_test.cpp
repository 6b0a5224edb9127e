// Tests of the config loader: defaults, the TOML file, the environment, --set and flag
// precedence, type and key errors, validation, password sources, conf/respite.toml,
// client authentication settings (client.password, client.users, client.deny_commands).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <map>
#include <string>

#include "config/config_loader.h"
#include "config/upstream_url.h"

namespace respite::config {
namespace {

namespace fs = std::filesystem;

// A file in the temp directory, removed when the test ends.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    static std::atomic<int> counter{0};
    path_ = (fs::temp_directory_path() /
             ("respite_config_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + ".toml"))
                .string();
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::error_code ec; fs::remove(path_, ec); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// An Environment backed by a map, so tests never see the real environment.
struct FakeEnv {
  std::map<std::string, std::string> vars;  // name -> value
  Environment env() const {
    return Environment{[this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    }};
  }
};

// Compares every field, so a new field cannot be silently ignored by a test.
void expect_same(const Config& a, const Config& b) {
#define SAME(f) EXPECT_EQ(a.f, b.f) << #f
  SAME(server.listen); SAME(server.unix_socket); SAME(server.unix_socket_mode); SAME(server.tcp_backlog);
  SAME(server.max_clients); SAME(server.tcp_keepalive_s);
  SAME(client.max_bulk_len); SAME(client.max_args); SAME(client.max_inline_len);
  SAME(client.query_buffer_limit); SAME(client.output_buffer_limit); SAME(client.output_high_water);
  SAME(client.max_pending); SAME(client.idle_timeout_s);
  SAME(client.password); SAME(client.users); SAME(client.deny_commands);
  SAME(upstream.url); SAME(upstream.password_file); SAME(upstream.pool_size);
  SAME(upstream.connect_timeout_ms); SAME(upstream.command_timeout_ms); SAME(upstream.reconnect_min_ms);
  SAME(upstream.reconnect_max_ms); SAME(upstream.max_inflight); SAME(upstream.max_batches_in_flight);
  SAME(upstream.max_pinned); SAME(upstream.pinned_idle);
  SAME(upstream.address.is_unix); SAME(upstream.address.host); SAME(upstream.address.port);
  SAME(upstream.address.path); SAME(upstream.address.username); SAME(upstream.address.password);
  SAME(upstream.address.db);
  SAME(ratelimit);
  SAME(admin.users);
  SAME(admin.listen);
  SAME(log.level);
#undef SAME
}

// Loads with the given options and an empty environment; fails the test on error.
Config load_ok(const CliOptions& cli, const FakeEnv& fake = {}) {
  Config cfg;
  std::string error;
  EXPECT_TRUE(load_config(cli, fake.env(), cfg, error)) << error;
  return cfg;
}

// Loads expecting failure; returns the error.
std::string load_err(const CliOptions& cli, const FakeEnv& fake = {}) {
  Config cfg;
  std::string error;
  EXPECT_FALSE(load_config(cli, fake.env(), cfg, error));
  EXPECT_FALSE(error.empty());
  return error;
}

CliOptions with_sets(std::vector<std::pair<std::string, std::string>> sets) {
  CliOptions cli;
  cli.sets = std::move(sets);
  return cli;
}

CliOptions with_file(const TempFile& f) {
  CliOptions cli;
  cli.config_path = f.path();
  return cli;
}

TEST(ConfigLoader, DefaultsWithoutFile) {
  Config cfg = load_ok(CliOptions{});
  Config expected;
  expected.upstream.address.host = "127.0.0.1";
  expect_same(cfg, expected);
  EXPECT_EQ(cfg.server.listen, "127.0.0.1:6380");
  EXPECT_EQ(cfg.client.max_bulk_len, 512u * 1024 * 1024);
  EXPECT_FALSE(cfg.upstream.address.is_unix);
  EXPECT_EQ(cfg.upstream.address.port, 6379);
}

TEST(ConfigLoader, ShippedConfigFileEqualsDefaults) {
  CliOptions cli;
  cli.config_path = std::string(RESPITE_SOURCE_DIR) + "/conf/respite.toml";
  Config cfg = load_ok(cli);
  expect_same(cfg, load_ok(CliOptions{}));
}

TEST(ConfigLoader, ShippedConfigFileAndDocsMentionEveryKey) {
  std::ifstream conf(std::string(RESPITE_SOURCE_DIR) + "/conf/respite.toml");
  std::ifstream docs(std::string(RESPITE_SOURCE_DIR) + "/docs/configuration.md");
  std::string conf_text((std::istreambuf_iterator<char>(conf)), {});
  std::string docs_text((std::istreambuf_iterator<char>(docs)), {});
  ASSERT_FALSE(conf_text.empty());
  ASSERT_FALSE(docs_text.empty());
  for (const auto& key : known_config_keys()) {
    std::string name = key.substr(key.find('.') + 1);
    if (key == "client.users" || key == "cache.rules" || key == "ratelimit.classes" || key == "ratelimit.rules") {
      // An array of tables has no empty form that could later be uncommented in place:
      // the file shows a commented-out [[client.users]] example instead.
      EXPECT_NE(conf_text.find("\n# [[" + key + "]]\n"), std::string::npos) << key;
      EXPECT_NE(docs_text.find("`" + key + "`"), std::string::npos) << key;
      continue;
    }
    EXPECT_NE(conf_text.find("\n" + name + " = "), std::string::npos) << key;
    EXPECT_NE(docs_text.find("`" + key + "`"), std::string::npos) << key;
  }
}

TEST(ConfigLoader, CacheSection) {
  TempFile f(R"(
[cache]
enabled = false
memory_bytes = "8mb"
eviction = "LRU"
tracking = "bcast"
bcast_prefixes = ["user:", "cfg:"]
[[cache.rules]]
pattern = "session:*"
cache = false
[[cache.rules]]
pattern = "cfg:*"
max_ttl_ms = 5000
)");
  Config c = load_ok(with_file(f));
  EXPECT_FALSE(c.cache.enabled);
  EXPECT_EQ(c.cache.memory_bytes, 8u * 1024 * 1024);
  EXPECT_EQ(c.cache.eviction, "lru");
  EXPECT_EQ(c.cache.tracking, "bcast");
  ASSERT_EQ(c.cache.rules.size(), 2u);
  EXPECT_EQ(c.cache.rules[0], (CacheRule{"session:*", false, 0}));
  EXPECT_EQ(c.cache.rules[1], (CacheRule{"cfg:*", true, 5000}));
  // The dump is valid TOML that loads back to the same rules.
  TempFile dumped(dump_config(c));
  Config again = load_ok(with_file(dumped));
  EXPECT_EQ(again.cache.rules, c.cache.rules);
  EXPECT_FALSE(again.cache.enabled);
}

TEST(ConfigLoader, CacheSectionErrors) {
  EXPECT_NE(load_err(with_file(TempFile("[cache]\neviction = \"lfu\"\n"))).find("not an eviction policy"),
            std::string::npos);
  EXPECT_NE(load_err(with_file(TempFile("[cache]\nbcast_prefixes = [\"a\"]\n"))).find("not \"bcast\""),
            std::string::npos);
  EXPECT_NE(load_err(with_file(TempFile("[[cache.rules]]\ncache = false\n"))).find("missing 'pattern'"),
            std::string::npos);
  EXPECT_NE(load_err(with_file(TempFile("[[cache.rules]]\npattern = \"x\"\nttl = 3\n"))).find("unknown key 'ttl'"),
            std::string::npos);
  EXPECT_NE(load_err(with_file(TempFile("[cache]\nenabled = 3\n"))).find("expects a boolean"), std::string::npos);
}

TEST(ConfigLoader, RateLimitSection) {
  TempFile f(R"(
[ratelimit]
exempt = ["name:ops"]
max_delayed = 10
[[ratelimit.classes]]
name = "heavy"
commands = ["KEYS", "config|set"]
[[ratelimit.rules]]
name = "per-client"
rate = 100
burst = 10
[[ratelimit.rules]]
name = "batch.writes"
scope = "GLOBAL"
clients = "name:batch-*"
commands = ["@write", "@heavy"]
rate = 2.5
action = "Delay"
max_wait_ms = 500
)");
  Config c = load_ok(with_file(f));
  EXPECT_TRUE(c.ratelimit.enabled);
  EXPECT_EQ(c.ratelimit.exempt, std::vector<std::string>{"name:ops"});
  EXPECT_EQ(c.ratelimit.max_delayed, 10u);
  ASSERT_EQ(c.ratelimit.classes.size(), 1u);
  EXPECT_EQ(c.ratelimit.classes[0], (RateLimitClass{"heavy", {"KEYS", "config|set"}}));
  ASSERT_EQ(c.ratelimit.rules.size(), 2u);
  EXPECT_EQ(c.ratelimit.rules[0], (RateLimitRule{"per-client", "client", {"*"}, {"@all"}, 100, 10, "reject", 1000}));
  // Scope and action are lower-cased; the burst defaults to the rate rounded up.
  EXPECT_EQ(c.ratelimit.rules[1],
            (RateLimitRule{"batch.writes", "global", {"name:batch-*"}, {"@write", "@heavy"}, 2.5, 3, "delay", 500}));
  // The dump is valid TOML that loads back to the same section.
  TempFile dumped(dump_config(c));
  Config again = load_ok(with_file(dumped));
  EXPECT_EQ(again.ratelimit, c.ratelimit);
}

TEST(ConfigLoader, RateLimitSectionErrors) {
  auto err = [](const std::string& toml) { return load_err(with_file(TempFile(toml))); };
  const std::string rule = "[[ratelimit.rules]]\nname = \"r\"\nrate = 5\n";
  EXPECT_NE(err("[[ratelimit.rules]]\nrate = 5\n").find("missing 'name'"), std::string::npos);
  EXPECT_NE(err("[[ratelimit.rules]]\nname = \"r\"\n").find("missing 'rate'"), std::string::npos);
  EXPECT_NE(err(rule + "per = 3\n").find("unknown key 'per'"), std::string::npos);
  EXPECT_NE(err(rule + "scope = \"user\"\n").find("is not client or global"), std::string::npos);
  EXPECT_NE(err(rule + "action = \"drop\"\n").find("is not reject or delay"), std::string::npos);
  EXPECT_NE(err("[[ratelimit.rules]]\nname = \"r\"\nrate = 0\n").find("rate must be more than 0"), std::string::npos);
  EXPECT_NE(err("[[ratelimit.rules]]\nname = \"r\"\nrate = \"5\"\n").find("'rate' expects a number"),
            std::string::npos);
  EXPECT_NE(err(rule + "burst = 0\n").find("'burst' must be between 1"), std::string::npos);
  EXPECT_NE(err(rule + "action = \"delay\"\nmax_wait_ms = 0\n").find("max_wait_ms must be between 1 and 60000"),
            std::string::npos);
  EXPECT_NE(err(rule + rule).find("rule 'r' is already defined by entry 1"), std::string::npos);
  EXPECT_NE(err("[[ratelimit.rules]]\nname = \"a b\"\nrate = 5\n").find("rule name 'a b'"), std::string::npos);
  EXPECT_NE(err(rule + "clients = []\n").find("clients is empty"), std::string::npos);
  EXPECT_NE(err("[ratelimit]\nmax_delayed = 0\n").find("ratelimit.max_delayed"), std::string::npos);
  EXPECT_NE(err("[[ratelimit.classes]]\nname = \"Heavy\"\ncommands = [\"keys\"]\n").find("class name 'Heavy'"),
            std::string::npos);
}

TEST(ConfigLoader, ChangedKeysNameWhatAReloadChanges) {
  Config a, b;
  EXPECT_TRUE(changed_config_keys(a, b).empty());
  b.client.max_pending = 7;
  b.ratelimit.rules.push_back(RateLimitRule{"r", "client", {"*"}, {"@all"}, 5, 5, "reject", 1000});
  b.client.password = "changed";
  EXPECT_EQ(changed_config_keys(a, b),
            (std::vector<std::string>{"client.max_pending", "client.password", "ratelimit.rules"}));
}

TEST(ConfigRateLimit, ExampleFilesLoad) {
  CliOptions cli;
  cli.config_path = std::string(RESPITE_SOURCE_DIR) + "/conf/examples/rate-limit.toml";
  Config cfg = load_ok(cli);
  // Every client identity: 100 requests/s, burst 10, refused beyond; and nothing else.
  ASSERT_EQ(cfg.ratelimit.rules.size(), 1u);
  const RateLimitRule& r = cfg.ratelimit.rules[0];
  EXPECT_EQ(r.scope, "client");
  EXPECT_EQ(r.clients, std::vector<std::string>{"*"});
  EXPECT_EQ(r.commands, std::vector<std::string>{"@all"});
  EXPECT_EQ(r.rate, 100);
  EXPECT_EQ(r.burst, 10u);
  EXPECT_EQ(r.action, "reject");
  EXPECT_TRUE(cfg.ratelimit.exempt.empty());
  EXPECT_TRUE(cfg.ratelimit.classes.empty());
  Config defaults;
  std::vector<std::string> changed = changed_config_keys(defaults, cfg);
  for (const auto& key : changed) {
    EXPECT_TRUE(key == "ratelimit.rules" || key == "server.listen" || key == "upstream.url") << key;
  }
  cli.config_path = std::string(RESPITE_SOURCE_DIR) + "/conf/examples/rate-limit-advanced.toml";
  cfg = load_ok(cli);
  EXPECT_GE(cfg.ratelimit.rules.size(), 3u);
}

// docs/configuration.md's key tables (| `key` | type | default | reload | meaning |) against
// what the binary reports with --print-default-config: every key, its default, and whether a
// SIGHUP applies it.
TEST(ConfigLoader, DocsTablesMatchTheDefaultsTheBinaryReports) {
  std::ifstream docs(std::string(RESPITE_SOURCE_DIR) + "/docs/configuration.md");
  std::string docs_text((std::istreambuf_iterator<char>(docs)), {});
  // Cells of one table row, split at pipes that are not escaped.
  auto cells = [](const std::string& line) {
    std::vector<std::string> out;
    std::string cell;
    for (size_t i = 1; i < line.size(); ++i) {
      if (line[i] == '|' && line[i - 1] != '\\') {
        out.push_back(cell.substr(cell.find_first_not_of(' '), cell.find_last_not_of(' ') - cell.find_first_not_of(' ') + 1));
        cell.clear();
      } else {
        cell += line[i];
      }
    }
    return out;
  };
  std::map<std::string, std::vector<std::string>> rows;  // key -> cells
  std::istringstream in(docs_text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> c = cells(line);
    if (c.size() == 5 && c[0].size() > 2) rows[c[0].substr(1, c[0].size() - 2)] = c;
  }
  std::map<std::string, std::pair<std::string, std::string>> reported;  // key -> (default, reload)
  std::istringstream report(default_config_report());
  std::string table;
  for (std::string line; std::getline(report, line);) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      table = line.substr(1, line.size() - 2);
      continue;
    }
    const size_t eq = line.find(" = "), mark = line.rfind("  # reload: ");
    ASSERT_NE(eq, std::string::npos) << line;
    ASSERT_NE(mark, std::string::npos) << line;
    reported[table + "." + line.substr(0, eq)] = {line.substr(eq + 3, mark - eq - 3), line.substr(mark + 12)};
  }
  ASSERT_EQ(reported.size(), known_config_keys().size());
  // The report is itself a config file that loads to the defaults.
  expect_same(load_ok(with_file(TempFile(default_config_report()))), load_ok(CliOptions{}));
  for (const auto& key : known_config_keys()) {
    auto row = rows.find(key);
    ASSERT_NE(row, rows.end()) << key << " has no row in a docs/configuration.md key table";
    const auto& [value, reload] = reported[key];
    const std::string& doc_default = row->second[2];
    if (value == "[]" && row->second[1] == "array of tables") {
      EXPECT_EQ(doc_default, "none") << key;
    } else {
      EXPECT_EQ(doc_default, "`" + value + "`") << key;
    }
    EXPECT_EQ(row->second[3], reload) << key;
    EXPECT_EQ(reload, reloads_live(key) ? "live" : "restart") << key;
  }
}

TEST(ConfigLoader, KnownKeysCoverEveryField) {
  EXPECT_EQ(known_config_keys().size(), 64u);
}

TEST(ConfigLoader, LoadsFile) {
  TempFile f(R"(
[server]
listen = "[::1]:7000"
unix_socket = "/tmp/respite.sock"
unix_socket_mode = "0600"
max_clients = 50

[client]
max_bulk_len = "1mb"
output_buffer_limit = 1048576
output_high_water = "64k"
max_pending = 10
idle_timeout_s = 30

[upstream]
url = "redis://app:s3cret@redis.internal:6390/3"
pool_size = 4
reconnect_min_ms = 10
reconnect_max_ms = 100

[log]
level = "debug"
)");
  Config cfg = load_ok(with_file(f));
  EXPECT_EQ(cfg.server.listen, "[::1]:7000");
  EXPECT_EQ(cfg.server.unix_socket, "/tmp/respite.sock");
  EXPECT_EQ(cfg.server.unix_socket_mode, 0600);
  EXPECT_EQ(cfg.server.max_clients, 50u);
  EXPECT_EQ(cfg.server.tcp_backlog, 511);  // untouched keys keep their defaults
  EXPECT_EQ(cfg.client.max_bulk_len, 1024u * 1024);
  EXPECT_EQ(cfg.client.output_buffer_limit, 1048576u);
  EXPECT_EQ(cfg.client.output_high_water, 64000u);
  EXPECT_EQ(cfg.client.max_pending, 10u);
  EXPECT_EQ(cfg.client.idle_timeout_s, 30);
  EXPECT_EQ(cfg.upstream.pool_size, 4u);
  EXPECT_EQ(cfg.upstream.address.host, "redis.internal");
  EXPECT_EQ(cfg.upstream.address.port, 6390);
  EXPECT_EQ(cfg.upstream.address.db, 3);
  EXPECT_EQ(cfg.upstream.address.username, "app");
  EXPECT_EQ(cfg.upstream.address.password, "s3cret");
  EXPECT_EQ(cfg.log.level, "debug");
}

TEST(ConfigLoader, EmptyFileGivesDefaults) {
  TempFile f("# nothing\n");
  expect_same(load_ok(with_file(f)), load_ok(CliOptions{}));
}

TEST(ConfigLoader, MissingFileIsAnError) {
  CliOptions cli;
  cli.config_path = "/nonexistent/respite.toml";
  std::string err = load_err(cli);
  EXPECT_NE(err.find("/nonexistent/respite.toml"), std::string::npos) << err;
  EXPECT_NE(err.find("No such file"), std::string::npos) << err;
}

TEST(ConfigLoader, DirectoryAsFileIsAnError) {
  CliOptions cli;
  cli.config_path = fs::temp_directory_path().string();
  load_err(cli);
}

TEST(ConfigLoader, TomlSyntaxErrorHasLineAndColumn) {
  TempFile f("[server]\nlisten = \"127.0.0.1:1\"\nmax_clients = = 3\n");
  std::string err = load_err(with_file(f));
  EXPECT_NE(err.find("line 3"), std::string::npos) << err;
  EXPECT_NE(err.find("column"), std::string::npos) << err;
  EXPECT_NE(err.find(f.path()), std::string::npos) << err;
}

TEST(ConfigLoader, UnknownKeyIsNamedWithSuggestion) {
  TempFile f("[client]\nmax_pendng = 3\n");
  std::string err = load_err(with_file(f));
  EXPECT_NE(err.find("unknown config key 'client.max_pendng'"), std::string::npos) << err;
  EXPECT_NE(err.find("did you mean 'client.max_pending'"), std::string::npos) << err;
  EXPECT_NE(err.find("line 2"), std::string::npos) << err;
}

TEST(ConfigLoader, KeyInWrongTableSuggestsRightOne) {
  TempFile f("[server]\nmax_pending = 3\n");
  std::string err = load_err(with_file(f));
  EXPECT_NE(err.find("'server.max_pending'"), std::string::npos) << err;
  EXPECT_NE(err.find("did you mean 'client.max_pending'"), std::string::npos) << err;
}

TEST(ConfigLoader, UnknownTableIsNamed) {
  TempFile f("[cahce]\nsize = 3\n");
  std::string err = load_err(with_file(f));
  EXPECT_NE(err.find("unknown config table '[cahce]'"), std::string::npos) << err;
}

TEST(ConfigLoader, TopLevelKeyIsUnknown) {
  TempFile f("listen = \"127.0.0.1:1\"\n");
  std::string err = load_err(with_file(f));
  EXPECT_NE(err.find("unknown config key 'listen'"), std::string::npos) << err;
}

TEST(ConfigLoader, TableGivenAsValueIsAnError) {
  TempFile f("server = 3\n");
  std::string err = load_err(with_file(f));
  EXPECT_NE(err.find("'server' must be the table [server]"), std::string::npos) << err;
}

TEST(ConfigLoader, InlineTableWorks) {
  TempFile f("client = { max_pending = 7 }\n");
  EXPECT_EQ(load_ok(with_file(f)).client.max_pending, 7u);
}

TEST(ConfigLoader, WrongTypesNameKeyAndExpectedType) {
  struct Case {
    const char* toml;         // file content
    const char* key;          // key the error must name
    const char* expected;     // expected-type phrase
  };
  const Case cases[] = {
      {"[client]\nmax_pending = \"ten\"\n", "client.max_pending", "non-negative integer"},
      {"[server]\nlisten = 6380\n", "server.listen", "a string"},
      {"[upstream]\nconnect_timeout_ms = 1.5\n", "upstream.connect_timeout_ms", "an integer"},
      {"[client]\nmax_bulk_len = true\n", "client.max_bulk_len", "byte size"},
      {"[server]\nunix_socket_mode = [1]\n", "server.unix_socket_mode", "file mode"},
      {"[log]\nlevel = 1\n", "log.level", "a string"},
  };
  for (const auto& c : cases) {
    TempFile f(c.toml);
    std::string err = load_err(with_file(f));
    EXPECT_NE(err.find(std::string("'") + c.key + "'"), std::string::npos) << err;
    EXPECT_NE(err.find(c.expected), std::string::npos) << err;
  }
}

TEST(ConfigLoader, NegativeCountsAndOutOfRangeIntsAreErrors) {
  EXPECT_NE(load_err(with_sets({{"client.max_pending", "-1"}})).find("client.max_pending"), std::string::npos);
  EXPECT_NE(load_err(with_sets({{"client.max_bulk_len", "-1"}})).find("must not be negative"), std::string::npos);
  EXPECT_NE(load_err(with_sets({{"upstream.connect_timeout_ms", "9999999999"}})).find("out of range"),
            std::string::npos);
}

TEST(ConfigLoader, SetOverridesEachType) {
  Config cfg = load_ok(with_sets({
      {"client.max_pending", "10"},             // count
      {"upstream.command_timeout_ms", "0"},     // int
      {"client.output_buffer_limit", "64mb"},   // bytes with unit (bare text)
      {"client.output_high_water", "\"512kb\""},  // bytes as TOML string
      {"client.max_inline_len", "4096"},        // bytes as integer
      {"server.unix_socket_mode", "0600"},      // mode as octal text
      {"upstream.url", "redis://x:1"},          // bare string that is not TOML
      {"server.listen", "\"127.0.0.1:7001\""},  // quoted TOML string
      {"log.level", "warn"},                    // bare word
      {"server.unix_socket", "/tmp/a b.sock"},  // text with a space
  }));
  EXPECT_EQ(cfg.client.max_pending, 10u);
  EXPECT_EQ(cfg.upstream.command_timeout_ms, 0);
  EXPECT_EQ(cfg.client.output_buffer_limit, 64u * 1024 * 1024);
  EXPECT_EQ(cfg.client.output_high_water, 512u * 1024);
  EXPECT_EQ(cfg.client.max_inline_len, 4096u);
  EXPECT_EQ(cfg.server.unix_socket_mode, 0600);
  EXPECT_EQ(cfg.upstream.url, "redis://x:1");
  EXPECT_EQ(cfg.upstream.address.host, "x");
  EXPECT_EQ(cfg.upstream.address.port, 1);
  EXPECT_EQ(cfg.server.listen, "127.0.0.1:7001");
  EXPECT_EQ(cfg.log.level, "warn");
  EXPECT_EQ(cfg.server.unix_socket, "/tmp/a b.sock");
}

TEST(ConfigLoader, SetNumberIntoStringKeyKeepsText) {
  Config cfg = load_ok(with_sets({{"upstream.password_file", ""}, {"server.unix_socket", "1234"}}));
  EXPECT_EQ(cfg.server.unix_socket, "1234");
}

TEST(ConfigLoader, SetEmptyValueClearsString) {
  Config cfg = load_ok(with_sets({{"server.unix_socket", "/tmp/r.sock"}, {"server.listen", ""}}));
  EXPECT_EQ(cfg.server.listen, "");
}

TEST(ConfigLoader, SetAppliesInOrder) {
  Config cfg = load_ok(with_sets({{"client.max_pending", "10"}, {"client.max_pending", "20"}}));
  EXPECT_EQ(cfg.client.max_pending, 20u);
}

TEST(ConfigLoader, SetCannotInjectOtherKeys) {
  // Multi-line text is never parsed as TOML, so it cannot set anything but its own key.
  Config cfg = load_ok(with_sets({{"server.unix_socket", "\"x\"\n[client]\nmax_pending = 3"}}));
  EXPECT_EQ(cfg.client.max_pending, 1024u);
  EXPECT_EQ(cfg.server.unix_socket, "\"x\"\n[client]\nmax_pending = 3");
}

TEST(ConfigLoader, SetErrorsNameTheKey) {
  std::string err = load_err(with_sets({{"client.max_pendng", "3"}}));
  EXPECT_NE(err.find("unknown config key 'client.max_pendng'"), std::string::npos) << err;
  err = load_err(with_sets({{"nosuch.key", "3"}}));
  EXPECT_NE(err.find("unknown config key 'nosuch.key'"), std::string::npos) << err;
  err = load_err(with_sets({{"client", "3"}}));
  EXPECT_NE(err.find("'client' is a table"), std::string::npos) << err;
  err = load_err(with_sets({{"client.max_pending", "ten"}}));
  EXPECT_NE(err.find("'client.max_pending'"), std::string::npos) << err;
  EXPECT_NE(err.find("--set"), std::string::npos) << err;
  err = load_err(with_sets({{"client.max_bulk_len", "12xb"}}));
  EXPECT_NE(err.find("'client.max_bulk_len'"), std::string::npos) << err;
  EXPECT_NE(err.find("unit"), std::string::npos) << err;
  err = load_err(with_sets({{"server.unix_socket_mode", "0999"}}));
  EXPECT_NE(err.find("octal"), std::string::npos) << err;
}

TEST(ConfigLoader, Precedence) {
  TempFile f("[upstream]\nurl = \"redis://file:1\"\n[log]\nlevel = \"debug\"\n[client]\nmax_pending = 5\n");
  FakeEnv env;
  CliOptions cli = with_file(f);
  // File over defaults.
  Config cfg = load_ok(cli, env);
  EXPECT_EQ(cfg.upstream.address.host, "file");
  EXPECT_EQ(cfg.log.level, "debug");
  EXPECT_EQ(cfg.client.max_pending, 5u);
  // Environment over the file.
  env.vars["RESPITE_UPSTREAM_URL"] = "redis://env:2";
  env.vars["RESPITE_LOG_LEVEL"] = "warn";
  cfg = load_ok(cli, env);
  EXPECT_EQ(cfg.upstream.address.host, "env");
  EXPECT_EQ(cfg.log.level, "warn");
  // --set over the environment.
  cli.sets = {{"upstream.url", "redis://set:3"}, {"log.level", "error"}, {"client.max_pending", "6"}};
  cfg = load_ok(cli, env);
  EXPECT_EQ(cfg.upstream.address.host, "set");
  EXPECT_EQ(cfg.log.level, "error");
  EXPECT_EQ(cfg.client.max_pending, 6u);
  // Flags over --set.
  cli.upstream = "redis://flag:4";
  cli.log_level = "trace";
  cli.listen = "127.0.0.1:0";
  cfg = load_ok(cli, env);
  EXPECT_EQ(cfg.upstream.url, "redis://flag:4");
  EXPECT_EQ(cfg.upstream.address.host, "flag");
  EXPECT_EQ(cfg.upstream.address.port, 4);
  EXPECT_EQ(cfg.log.level, "trace");
  EXPECT_EQ(cfg.server.listen, "127.0.0.1:0");
}

TEST(ConfigLoader, EmptyEnvironmentVariablesAreIgnored) {
  FakeEnv env;
  env.vars["RESPITE_UPSTREAM_URL"] = "";
  env.vars["RESPITE_LOG_LEVEL"] = "";
  env.vars["RESPITE_UPSTREAM_PASSWORD"] = "";
  expect_same(load_ok(CliOptions{}, env), load_ok(CliOptions{}));
}

TEST(ConfigLoader, EnvironmentPasswordOverridesUrlPassword) {
  FakeEnv env;
  env.vars["RESPITE_UPSTREAM_PASSWORD"] = "from-env";
  CliOptions cli;
  cli.upstream = "redis://user:from-url@h:1";
  Config cfg = load_ok(cli, env);
  EXPECT_EQ(cfg.upstream.address.username, "user");
  EXPECT_EQ(cfg.upstream.address.password, "from-env");
  EXPECT_EQ(cfg.upstream.url, "redis://user:from-url@h:1");
}

TEST(ConfigLoader, AclUserWithPasswordFromEnvironment) {
  FakeEnv env;
  env.vars["RESPITE_UPSTREAM_PASSWORD"] = "pw";
  CliOptions cli;
  cli.upstream = "redis://app@h";
  Config cfg = load_ok(cli, env);
  EXPECT_EQ(cfg.upstream.address.username, "app");
  EXPECT_EQ(cfg.upstream.address.password, "pw");
}

TEST(ConfigLoader, AclUserWithoutAnyPasswordIsAnError) {
  CliOptions cli;
  cli.upstream = "redis://app@h";
  std::string err = load_err(cli);
  EXPECT_NE(err.find("ACL user"), std::string::npos) << err;
  EXPECT_EQ(err.find("app"), std::string::npos) << err;
}

TEST(ConfigLoader, PasswordFile) {
  TempFile pw("hunter2\nsecond line ignored\n");
  CliOptions cli = with_sets({{"upstream.password_file", pw.path()}});
  cli.upstream = "redis://:old@h:1";
  Config cfg = load_ok(cli);
  EXPECT_EQ(cfg.upstream.address.password, "hunter2");
}

TEST(ConfigLoader, PasswordFileWithoutNewlineOrWithCrlf) {
  TempFile plain("abc");
  TempFile crlf("abc\r\n");
  EXPECT_EQ(load_ok(with_sets({{"upstream.password_file", plain.path()}})).upstream.address.password, "abc");
  EXPECT_EQ(load_ok(with_sets({{"upstream.password_file", crlf.path()}})).upstream.address.password, "abc");
}

TEST(ConfigLoader, PasswordFileErrors) {
  std::string err = load_err(with_sets({{"upstream.password_file", "/nonexistent/pw"}}));
  EXPECT_NE(err.find("upstream.password_file"), std::string::npos) << err;
  EXPECT_NE(err.find("/nonexistent/pw"), std::string::npos) << err;
  TempFile empty("\nsecret-on-line-2\n");
  err = load_err(with_sets({{"upstream.password_file", empty.path()}}));
  EXPECT_NE(err.find("empty"), std::string::npos) << err;
  EXPECT_EQ(err.find("secret-on-line-2"), std::string::npos) << err;
}

TEST(ConfigLoader, PasswordFileAndEnvironmentPasswordConflict) {
  TempFile pw("a\n");
  FakeEnv env;
  env.vars["RESPITE_UPSTREAM_PASSWORD"] = "b-secret";
  std::string err = load_err(with_sets({{"upstream.password_file", pw.path()}}), env);
  EXPECT_NE(err.find("RESPITE_UPSTREAM_PASSWORD"), std::string::npos) << err;
  EXPECT_NE(err.find("upstream.password_file"), std::string::npos) << err;
  EXPECT_EQ(err.find("b-secret"), std::string::npos) << err;
}

TEST(ConfigLoader, ErrorsNeverShowThePassword) {
  const char* secret = "Sup3rS3cret";
  const std::vector<std::string> urls = {
      "redis://u:Sup3rS3cret@h:99999",  "redis://u:Sup3rS3cret@h/notadb", "rediss://u:Sup3rS3cret@h",
      "redis://u:Sup3rS3cret@",         "redis://u:Sup3rS3cret%zz@h",      "unix:/s?password=Sup3rS3cret&x=1",
      "redis://:Sup3rS3cret@h?db=1",    "Sup3rS3cret",                     "ab:Sup3rS3cret@h",
  };
  for (const auto& url : urls) {
    CliOptions cli;
    cli.upstream = url;
    std::string err = load_err(cli);
    EXPECT_EQ(err.find(secret), std::string::npos) << err;
    EXPECT_NE(err.find("upstream.url"), std::string::npos) << err;
  }
  // A valid URL with a password and a later validation error.
  CliOptions cli = with_sets({{"upstream.pool_size", "0"}});
  cli.upstream = "redis://u:Sup3rS3cret@h";
  std::string err = load_err(cli);
  EXPECT_EQ(err.find(secret), std::string::npos) << err;
}

TEST(ConfigLoader, ValidationRules) {
  struct Case {
    std::vector<std::pair<std::string, std::string>> sets;  // overrides
    const char* key;                                         // key the error must name
  };
  const std::vector<Case> cases = {
      {{{"upstream.pool_size", "0"}}, "upstream.pool_size"},
      {{{"upstream.pool_size", "65"}}, "upstream.pool_size"},
      {{{"server.listen", "127.0.0.1"}}, "server.listen"},
      {{{"server.listen", "127.0.0.1:65536"}}, "server.listen"},
      {{{"server.listen", "127.0.0.1:-1"}}, "server.listen"},
      {{{"server.listen", "example.com:80"}}, "server.listen"},
      {{{"server.listen", "::1:6380"}}, "server.listen"},
      {{{"server.listen", "[::1]"}}, "server.listen"},
      {{{"server.listen", "[zz]:1"}}, "server.listen"},
      {{{"server.listen", ""}}, "server.unix_socket"},
      {{{"server.unix_socket", "/" + std::string(200, 'a')}}, "server.unix_socket"},
      {{{"server.unix_socket_mode", "01777"}}, "server.unix_socket_mode"},
      {{{"server.tcp_backlog", "0"}}, "server.tcp_backlog"},
      {{{"server.max_clients", "0"}}, "server.max_clients"},
      {{{"server.tcp_keepalive_s", "-1"}}, "server.tcp_keepalive_s"},
      {{{"client.max_bulk_len", "0"}}, "client.max_bulk_len"},
      {{{"client.max_args", "0"}}, "client.max_args"},
      {{{"client.max_inline_len", "0"}}, "client.max_inline_len"},
      {{{"client.query_buffer_limit", "0"}}, "client.query_buffer_limit"},
      {{{"client.output_buffer_limit", "0"}}, "client.output_buffer_limit"},
      {{{"client.output_high_water", "0"}}, "client.output_high_water"},
      {{{"client.max_pending", "0"}}, "client.max_pending"},
      {{{"client.idle_timeout_s", "-5"}}, "client.idle_timeout_s"},
      {{{"upstream.connect_timeout_ms", "0"}}, "upstream.connect_timeout_ms"},
      {{{"upstream.command_timeout_ms", "-1"}}, "upstream.command_timeout_ms"},
      {{{"upstream.reconnect_min_ms", "0"}}, "upstream.reconnect_min_ms"},
      {{{"upstream.reconnect_min_ms", "100"}, {"upstream.reconnect_max_ms", "50"}}, "upstream.reconnect_max_ms"},
      {{{"upstream.max_inflight", "0"}}, "upstream.max_inflight"},
      {{{"upstream.url", "rediss://h"}}, "upstream.url"},
      {{{"log.level", "verbose"}}, "log.level"},
  };
  for (const auto& c : cases) {
    std::string err = load_err(with_sets(c.sets));
    EXPECT_NE(err.find(std::string("'") + c.key + "'"), std::string::npos)
        << "expected an error naming " << c.key << ", got: " << err;
  }
}

TEST(ConfigLoader, ValidationErrorsSayWhereTheValueCameFrom) {
  FakeEnv env;
  env.vars["RESPITE_LOG_LEVEL"] = "loud";
  std::string err = load_err(CliOptions{}, env);
  EXPECT_NE(err.find("RESPITE_LOG_LEVEL"), std::string::npos) << err;
  EXPECT_NE(err.find("'log.level'"), std::string::npos) << err;
}

TEST(ConfigLoader, ValidEdgeValues) {
  Config cfg = load_ok(with_sets({{"server.listen", "0.0.0.0:0"},
                                  {"upstream.pool_size", "64"},
                                  {"upstream.reconnect_min_ms", "7"},
                                  {"upstream.reconnect_max_ms", "7"},
                                  {"client.output_high_water", "1mb"},
                                  {"client.output_buffer_limit", "1mb"},
                                  {"log.level", "OFF"}}));
  EXPECT_EQ(cfg.upstream.pool_size, 64u);
  EXPECT_EQ(cfg.log.level, "off");  // normalised to lower case
  load_ok(with_sets({{"server.listen", "[::]:6380"}}));
  load_ok(with_sets({{"server.listen", "localhost:6380"}}));
  load_ok(with_sets({{"server.listen", ""}, {"server.unix_socket", "/tmp/respite.sock"}}));
}

TEST(ConfigLoader, UnixUpstream) {
  CliOptions cli;
  cli.upstream = "unix:/run/redis.sock?db=2";
  Config cfg = load_ok(cli);
  EXPECT_TRUE(cfg.upstream.address.is_unix);
  EXPECT_EQ(cfg.upstream.address.path, "/run/redis.sock");
  EXPECT_EQ(cfg.upstream.address.db, 2);
}

TEST(ConfigLoader, FailureLeavesOutputUntouched) {
  Config cfg;
  cfg.client.max_pending = 77;
  std::string error;
  FakeEnv env;
  EXPECT_FALSE(load_config(with_sets({{"client.max_pending", "5"}, {"bad.key", "1"}}), env.env(), cfg, error));
  EXPECT_EQ(cfg.client.max_pending, 77u);
}

TEST(ConfigLoader, NullEnvironmentFunctionIsAllowed) {
  Config cfg;
  std::string error;
  EXPECT_TRUE(load_config(CliOptions{}, Environment{nullptr}, cfg, error)) << error;
}

TEST(ConfigDump, RoundTripsAndRedacts) {
  CliOptions cli = with_sets({{"client.max_pending", "9"},
                              {"client.output_high_water", "1000"},
                              {"server.unix_socket_mode", "0640"},
                              {"server.unix_socket", "/tmp/\"q\".sock"}});
  cli.upstream = "redis://u:topsecret@h:7/1";
  FakeEnv env;
  Config cfg = load_ok(cli, env);
  std::string dumped = dump_config(cfg);
  EXPECT_EQ(dumped.find("topsecret"), std::string::npos) << dumped;
  EXPECT_NE(dumped.find("redis://u:***@h:7/1"), std::string::npos) << dumped;

  TempFile f(dumped);
  env.vars["RESPITE_UPSTREAM_PASSWORD"] = "topsecret";
  Config reloaded = load_ok(with_file(f), env);
  cfg.upstream.url = reloaded.upstream.url;  // the URL text differs (redacted); the address must not
  expect_same(reloaded, cfg);
}

TEST(ConfigAuth, Defaults) {
  Config cfg = load_ok(CliOptions{});
  EXPECT_EQ(cfg.client.password, "");
  EXPECT_TRUE(cfg.client.users.empty());
  EXPECT_TRUE(cfg.client.deny_commands.empty());
  EXPECT_EQ(cfg.upstream.max_pinned, 1024u);
  EXPECT_EQ(cfg.upstream.pinned_idle, 8u);
}

TEST(ConfigAuth, LoadsFile) {
  TempFile f(R"(
[client]
password = "def-pw"
deny_commands = ["KEYS", "flushall", "CONFIG SET", "Config|Get", "keys", "my.module"]

[[client.users]]
name = "app"
password = "app-pw"

[[client.users]]
name = "ops"
password = "ops pw with spaces"

[upstream]
max_pinned = 16
pinned_idle = 0
)");
  Config cfg = load_ok(with_file(f));
  EXPECT_EQ(cfg.client.password, "def-pw");
  ASSERT_EQ(cfg.client.users.size(), 2u);
  EXPECT_EQ(cfg.client.users[0], (ClientUser{"app", "app-pw"}));
  EXPECT_EQ(cfg.client.users[1], (ClientUser{"ops", "ops pw with spaces"}));
  // Lower case, "CONFIG SET" as config|set, duplicates dropped, order kept.
  EXPECT_EQ(cfg.client.deny_commands,
            (std::vector<std::string>{"keys", "flushall", "config|set", "config|get", "my.module"}));
  EXPECT_EQ(cfg.upstream.max_pinned, 16u);
  EXPECT_EQ(cfg.upstream.pinned_idle, 0u);
}

TEST(ConfigAuth, InlineUsersAndEmptyLists) {
  TempFile f("[client]\nusers = [{ name = \"default\", password = \"x\" }]\ndeny_commands = []\n");
  Config cfg = load_ok(with_file(f));
  ASSERT_EQ(cfg.client.users.size(), 1u);
  EXPECT_EQ(cfg.client.users[0].name, "default");
  EXPECT_TRUE(cfg.client.deny_commands.empty());
  TempFile none("[client]\nusers = []\n");
  EXPECT_TRUE(load_ok(with_file(none)).client.users.empty());
}

TEST(ConfigAuth, ClientPasswordPrecedence) {
  TempFile f("[client]\npassword = \"from-file\"\n");
  FakeEnv env;
  CliOptions cli = with_file(f);
  EXPECT_EQ(load_ok(cli, env).client.password, "from-file");
  env.vars["RESPITE_CLIENT_PASSWORD"] = "from-env";
  EXPECT_EQ(load_ok(cli, env).client.password, "from-env");
  EXPECT_EQ(load_ok(CliOptions{}, env).client.password, "from-env");
  cli.sets = {{"client.password", "from-set"}};
  EXPECT_EQ(load_ok(cli, env).client.password, "from-set");
  // An empty variable counts as unset.
  env.vars["RESPITE_CLIENT_PASSWORD"] = "";
  EXPECT_EQ(load_ok(with_file(f), env).client.password, "from-file");
}

TEST(ConfigAuth, SetDenyCommandsAsList) {
  Config cfg = load_ok(with_sets({{"client.deny_commands", "keys,FLUSHALL, config set ,debug"}}));
  EXPECT_EQ(cfg.client.deny_commands, (std::vector<std::string>{"keys", "flushall", "config|set", "debug"}));
  cfg = load_ok(with_sets({{"client.deny_commands", "keys"}}));
  EXPECT_EQ(cfg.client.deny_commands, (std::vector<std::string>{"keys"}));
  cfg = load_ok(with_sets({{"client.deny_commands", R"(["keys", "config|set"])"}}));
  EXPECT_EQ(cfg.client.deny_commands, (std::vector<std::string>{"keys", "config|set"}));
  cfg = load_ok(with_sets({{"client.deny_commands", "\"keys,flushdb\""}}));
  EXPECT_EQ(cfg.client.deny_commands, (std::vector<std::string>{"keys", "flushdb"}));
  std::string err = load_err(with_sets({{"client.deny_commands", "keys,,flushdb"}}));
  EXPECT_NE(err.find("entry 2 '' is empty"), std::string::npos) << err;
  // An empty value clears a list set by the file.
  TempFile f("[client]\ndeny_commands = [\"keys\"]\n");
  CliOptions cli = with_file(f);
  cli.sets = {{"client.deny_commands", ""}};
  EXPECT_TRUE(load_ok(cli).client.deny_commands.empty());
}

TEST(ConfigAuth, SetUsersTakesTomlOnly) {
  Config cfg = load_ok(with_sets({{"client.users", R"([{name = "a", password = "b"}])"}}));
  ASSERT_EQ(cfg.client.users.size(), 1u);
  EXPECT_EQ(cfg.client.users[0], (ClientUser{"a", "b"}));
  std::string err = load_err(with_sets({{"client.users", "a:Sup3rS3cret"}}));
  EXPECT_NE(err.find("'client.users'"), std::string::npos) << err;
  EXPECT_NE(err.find("array of tables"), std::string::npos) << err;
  EXPECT_EQ(err.find("Sup3rS3cret"), std::string::npos) << err;
}

TEST(ConfigAuth, TypeErrors) {
  struct Case {
    const char* toml;      // file content
    const char* expected;  // phrase the error must contain
  };
  const Case cases[] = {
      {"[client]\npassword = 918273645\n", "'client.password' expects a string"},
      {"[client]\ndeny_commands = \"keys\"\n", "'client.deny_commands' expects an array of strings, got a string"},
      {"[client]\ndeny_commands = [\"keys\", 3]\n", "'client.deny_commands' entry 2 expects a string"},
      {"[client]\nusers = \"app\"\n", "'client.users' expects an array of tables"},
      {"[client]\nusers = [\"app\"]\n", "'client.users' entry 1 expects a table"},
      {"[[client.users]]\nname = \"a\"\n", "entry 1: missing 'password'"},
      {"[[client.users]]\npassword = \"Sup3rS3cret\"\n", "entry 1: missing 'name'"},
      {"[[client.users]]\nname = \"a\"\npassword = \"p\"\n[[client.users]]\nname = \"b\"\npass = \"Sup3rS3cret\"\n",
       "entry 2: unknown key 'pass'"},
      {"[[client.users]]\nname = \"a\"\npassword = 918273645\n",
       "entry 1: 'password' expects a string, got an integer"},
      {"[upstream]\nmax_pinned = -1\n", "'upstream.max_pinned' must not be negative"},
  };
  for (const auto& c : cases) {
    TempFile f(c.toml);
    std::string err = load_err(with_file(f));
    EXPECT_NE(err.find(c.expected), std::string::npos) << err;
    EXPECT_EQ(err.find("Sup3rS3cret"), std::string::npos) << err;
    EXPECT_EQ(err.find("918273645"), std::string::npos) << err;
  }
}

TEST(ConfigAuth, ValidationRules) {
  struct Case {
    const char* toml;      // file content
    const char* key;       // key the error must name
    const char* expected;  // phrase the error must contain
  };
  const Case cases[] = {
      {"[[client.users]]\nname = \"\"\npassword = \"p\"\n", "client.users", "entry 1: the user name is empty"},
      {"[[client.users]]\nname = \"a b\"\npassword = \"p\"\n", "client.users", "must not contain spaces"},
      {"[[client.users]]\nname = \"a\\tb\"\npassword = \"p\"\n", "client.users", "'a?b' must not contain"},
      {"[[client.users]]\nname = \"a\"\npassword = \"Sup3rS3cret\"\n[[client.users]]\nname = \"a\"\n"
       "password = \"Sup3rS3cret2\"\n",
       "client.users", "entry 2: user 'a' is already defined by entry 1"},
      {"[[client.users]]\nname = \"a\"\npassword = \"\"\n", "client.users",
       "entry 1 (user 'a'): the password is empty"},
      {"[client]\ndeny_commands = [\"\"]\n", "client.deny_commands", "entry 1 '' is empty"},
      {"[client]\ndeny_commands = [\"keys\", \"config  set\"]\n", "client.deny_commands", "entry 2 'config  set'"},
      {"[client]\ndeny_commands = [\"config\\tset\"]\n", "client.deny_commands", "other whitespace"},
      {"[client]\ndeny_commands = [\" keys\"]\n", "client.deny_commands", "entry 1 ' keys' must not contain"},
      {"[client]\ndeny_commands = [\"keys \"]\n", "client.deny_commands", "must not contain"},
      {"[client]\ndeny_commands = [\"|keys\"]\n", "client.deny_commands", "empty command or subcommand"},
      {"[client]\ndeny_commands = [\"config|\"]\n", "client.deny_commands", "empty command or subcommand"},
      {"[client]\ndeny_commands = [\"a|b|c\"]\n", "client.deny_commands", "more than one '|'"},
      {"[client]\ndeny_commands = [\"config |set\"]\n", "client.deny_commands", "other whitespace"},
      {"[client]\ndeny_commands = [\"keys\", \"AUTH\"]\n", "client.deny_commands", "entry 2 'auth' cannot be denied"},
      {"[client]\ndeny_commands = [\"reset\"]\n", "client.deny_commands", "cannot be denied"},
      {"[upstream]\nmax_pinned = 0\npinned_idle = 0\n", "upstream.max_pinned", "at least 1"},
      {"[upstream]\nmax_pinned = 4\n", "upstream.pinned_idle", "8 must not be more than upstream.max_pinned (4)"},
  };
  for (const auto& c : cases) {
    TempFile f(c.toml);
    std::string err = load_err(with_file(f));
    EXPECT_NE(err.find(std::string("'") + c.key + "'"), std::string::npos) << err;
    EXPECT_NE(err.find(c.expected), std::string::npos) << err;
    EXPECT_EQ(err.find("Sup3rS3cret"), std::string::npos) << err;
  }
  load_ok(with_sets({{"upstream.max_pinned", "1"}, {"upstream.pinned_idle", "1"}}));
  load_ok(with_sets({{"upstream.max_pinned", "1"}, {"upstream.pinned_idle", "0"}}));
}

TEST(ConfigAuth, ExampleFileLoads) {
  CliOptions cli;
  cli.config_path = std::string(RESPITE_SOURCE_DIR) + "/conf/examples/auth.toml";
  Config cfg = load_ok(cli);
  EXPECT_FALSE(cfg.client.password.empty());
  ASSERT_EQ(cfg.client.users.size(), 2u);
  EXPECT_EQ(cfg.client.users[0].name, "app");
  EXPECT_EQ(cfg.client.deny_commands,
            (std::vector<std::string>{"keys", "flushall", "flushdb", "debug", "config", "shutdown"}));
}

TEST(ConfigCache, ExampleFileLoads) {
  CliOptions cli;
  cli.config_path = std::string(RESPITE_SOURCE_DIR) + "/conf/examples/near-cache.toml";
  Config cfg = load_ok(cli);
  EXPECT_TRUE(cfg.cache.enabled);
  EXPECT_EQ(cfg.cache.memory_bytes, 256u * 1024 * 1024);
  ASSERT_EQ(cfg.cache.rules.size(), 2u);
  EXPECT_EQ(cfg.cache.rules[0], (CacheRule{"session:*", false, 0}));
  EXPECT_EQ(cfg.cache.rules[1], (CacheRule{"flags:*", true, 5000}));
  EXPECT_EQ(cfg.cache.warmup_patterns, std::vector<std::string>{"config:*"});
}

TEST(ConfigAuth, DumpRedactsClientPasswords) {
  TempFile f(R"(
[client]
password = "DefaultS3cret"
deny_commands = ["keys", "CONFIG SET"]
[[client.users]]
name = "app"
password = "AppS3cret"
[[client.users]]
name = "q\"uote"
password = "QuoteS3cret"
)");
  FakeEnv env;
  env.vars["RESPITE_UPSTREAM_PASSWORD"] = "UpstreamS3cret";
  Config cfg = load_ok(with_file(f), env);
  std::string dumped = dump_config(cfg);
  for (const char* secret : {"DefaultS3cret", "AppS3cret", "QuoteS3cret", "UpstreamS3cret"}) {
    EXPECT_EQ(dumped.find(secret), std::string::npos) << secret << "\n" << dumped;
  }
  EXPECT_NE(dumped.find("\npassword = \"***\"\n"), std::string::npos) << dumped;
  EXPECT_NE(dumped.find(R"(users = [{ name = "app", password = "***" }, { name = "q\"uote", password = "***" }])"),
            std::string::npos)
      << dumped;
  EXPECT_NE(dumped.find(R"(deny_commands = ["keys", "config|set"])"), std::string::npos) << dumped;
  EXPECT_NE(dumped.find("max_pinned = 1024\npinned_idle = 8\n"), std::string::npos) << dumped;

  // The dump loads again; the redacted passwords come back as "***" (never as "", which
  // would turn authentication off).
  TempFile again(dumped);
  Config reloaded = load_ok(with_file(again));
  EXPECT_EQ(reloaded.client.password, "***");
  ASSERT_EQ(reloaded.client.users.size(), 2u);
  EXPECT_EQ(reloaded.client.users[1], (ClientUser{"q\"uote", "***"}));
  EXPECT_EQ(reloaded.client.deny_commands, cfg.client.deny_commands);

  // Without a password nothing is redacted.
  std::string plain = dump_config(load_ok(CliOptions{}));
  EXPECT_NE(plain.find("\npassword = \"\"\nusers = []\ndeny_commands = []\n"), std::string::npos) << plain;
}

TEST(ConfigByteSize, RedisUnits) {
  struct Case {
    const char* text;  // input
    size_t value;      // expected bytes
  };
  const Case cases[] = {
      {"0", 0},          {"123", 123},           {"5b", 5},
      {"1k", 1000},      {"1kb", 1024},          {"512K", 512000},
      {"1KB", 1024},     {"64m", 64000000},      {"64mb", 64u * 1024 * 1024},
      {"1g", 1000000000}, {"1gb", 1024u * 1024 * 1024}, {"2Gb", 2ull * 1024 * 1024 * 1024},
  };
  for (const auto& c : cases) {
    size_t v = 0;
    std::string err;
    EXPECT_TRUE(parse_byte_size(c.text, v, err)) << c.text << ": " << err;
    EXPECT_EQ(v, c.value) << c.text;
  }
}

TEST(ConfigByteSize, Rejects) {
  for (const char* text : {"", "mb", "-1", "1.5mb", " 1mb", "1 mb", "1tb", "1kbb", "99999999999999999999",
                           "99999999999gb"}) {
    size_t v = 0;
    std::string err;
    EXPECT_FALSE(parse_byte_size(text, v, err)) << text;
    EXPECT_FALSE(err.empty()) << text;
  }
}

TEST(ConfigListenAddress, Parses) {
  ListenAddress a;
  std::string err;
  ASSERT_TRUE(parse_listen_address("127.0.0.1:6380", a, err)) << err;
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 6380);
  EXPECT_FALSE(a.ipv6);
  ASSERT_TRUE(parse_listen_address("[::1]:0", a, err)) << err;
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 0);
  EXPECT_TRUE(a.ipv6);
  ASSERT_TRUE(parse_listen_address("localhost:65535", a, err)) << err;
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 65535);
  for (const char* bad : {"", ":6380", "1.2.3.4:", "1.2.3.4:x", "1.2.3.4:65536", "300.1.1.1:1", "[::1]:",
                          "[::1]6380", "host:1"}) {
    EXPECT_FALSE(parse_listen_address(bad, a, err)) << bad;
  }
}

}  // namespace
}  // namespace respite::config

namespace respite::config {
namespace {

TEST(ConfigFallback, SectionDefaultsErrorsAndTheDataDirFlag) {
  Config defaults;
  EXPECT_EQ(defaults.fallback.mode, "off");
  EXPECT_EQ(defaults.fallback.fsync, "always");
  auto err = [](const std::string& toml) { return load_err(with_file(TempFile(toml))); };
  EXPECT_NE(err("[fallback]\nmode = \"on\"\n").find("fallback.mode"), std::string::npos);
  EXPECT_NE(err("[fallback]\nmode = \"local\"\n").find("fallback.data_dir"), std::string::npos);
  EXPECT_NE(err("[fallback]\nfsync = \"sometimes\"\n").find("fallback.fsync"), std::string::npos);
  EXPECT_NE(err("[fallback]\nmiss = \"maybe\"\n").find("fallback.miss"), std::string::npos);
  EXPECT_NE(err("[fallback]\njournal_file = \"../j\"\n").find("fallback.journal_file"), std::string::npos);
  EXPECT_NE(err("[fallback]\nbreaker_failures = 0\n").find("fallback.breaker_failures"), std::string::npos);
  EXPECT_NE(err("[fallback]\nbreaker_open_ms = 100\nbreaker_open_max_ms = 10\n").find("breaker_open_max_ms"),
            std::string::npos);
  EXPECT_NE(err("[fallback]\nreplay_batch = 0\n").find("fallback.replay_batch"), std::string::npos);

  // --data-dir gives fallback.data_dir, over the file.
  TempFile file("[fallback]\nmode = \"local\"\ndata_dir = \"/from/file\"\n");
  CliOptions cli = with_file(file);
  cli.data_dir = "/from/flag";
  EXPECT_EQ(load_ok(cli).fallback.data_dir, "/from/flag");
}

TEST(ConfigFallback, ExampleFileLoads) {
  CliOptions cli;
  cli.config_path = std::string(RESPITE_SOURCE_DIR) + "/conf/examples/fallback-local.toml";
  Config cfg = load_ok(cli);
  EXPECT_EQ(cfg.fallback.mode, "local");
  EXPECT_EQ(cfg.fallback.fsync, "always");
  EXPECT_EQ(cfg.fallback.journal_file, "journal.rjl");
  EXPECT_FALSE(cfg.fallback.data_dir.empty());
}

}  // namespace
}  // namespace respite::config
