// Real client libraries behave the same through respite as against Redis: each script in
// tests/compat (redis-py, redis-rb) exercises pipelines, transactions, WATCH, pub/sub, Lua,
// blocking pops, db selection and client names, and prints a deterministic transcript. The
// transcript through respite must be byte-identical to the one against Redis directly.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/stack.h"

#ifndef RESPITE_TESTS_DIR
#error "RESPITE_TESTS_DIR must be defined (the tests/ directory, which holds compat/)"
#endif

namespace respite::test {
namespace {

using namespace std::chrono_literals;

constexpr auto kScriptTimeout = 30s;  // each script takes about a second

size_t count_lines(const std::string& s) {
  size_t n = 0;
  for (char ch : s) n += ch == '\n';
  return n;
}

class CompatTest : public ProxyTest {
 protected:
  // Runs `interpreter` `script` against `port` with a fresh key prefix; the transcript.
  std::string run(const std::vector<std::string>& interpreter, const std::string& script, uint16_t port,
                  const std::string& label) {
    // Every run starts from an empty Redis (the scripts also use db 2 and flush scripts).
    EXPECT_EQ(stack().connect_redis().call({"FLUSHALL"}), "+OK");
    std::vector<std::string> argv = interpreter;
    argv.push_back(cat(RESPITE_TESTS_DIR, "/compat/", script));
    argv.push_back("127.0.0.1");
    argv.push_back(std::to_string(port));
    argv.push_back(cat("compat:", label, ":", ++runs_, ":"));
    RunResult result = run_program(argv, kScriptTimeout);
    EXPECT_TRUE(result.status.has_value()) << script << " (" << label << ") did not finish within 30 s; output:\n"
                                           << result.output;
    if (result.status) {
      EXPECT_TRUE(result.status->ok()) << script << " (" << label << "): " << result.status->describe() << "; output:\n"
                                       << result.output;
    }
    return result.output;
  }

  // The script's transcript against Redis, then twice through respite (the second run may be
  // given upstream connections the first one's clients left behind).
  void compare(const std::vector<std::string>& interpreter, const std::string& script) {
    const std::string direct = run(interpreter, script, stack().redis().port(), "direct");
    ASSERT_GE(count_lines(direct), 40u) << "transcript against Redis is too short:\n" << direct;
    ASSERT_TRUE(direct.size() >= 5 && direct.substr(direct.size() - 5) == "done\n")
        << "the script did not finish its transcript against Redis:\n"
        << direct;
    for (int i = 1; i <= 2; ++i) {
      const std::string proxied = run(interpreter, script, stack().port(), cat("respite", i));
      EXPECT_EQ(proxied, direct) << script << ": transcript through respite (run " << i
                                 << ", left) differs from the one against Redis (right)";
    }
  }

  int runs_ = 0;  // makes every run's key prefix unique
};

// Debian's interpreter, where python3-redis is installed (a PATH python3 may be another
// installation without it).
TEST_F(CompatTest, RedisPyTranscriptMatchesRedis) { compare({"/usr/bin/python3"}, "compat_py.py"); }

TEST_F(CompatTest, RedisRbTranscriptMatchesRedis) { compare({"ruby"}, "compat_rb.rb"); }

}  // namespace
}  // namespace respite::test
