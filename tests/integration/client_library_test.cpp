// A real client library (redis-py, Debian's python3-redis) works through respite unchanged.
#include <gtest/gtest.h>

#include <string>

#include "support/stack.h"

namespace respite::test {
namespace {

using namespace std::chrono_literals;

// Debian's interpreter, which is where python3-redis is installed (a PATH python3 may be
// another installation without it).
constexpr const char* kPython = "/usr/bin/python3";

const char* const kScript = R"PY(
import sys
try:
    import redis
except ImportError:
    print("python3-redis is not installed (apt-get install python3-redis)")
    sys.exit(3)

port = int(sys.argv[1])
r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=5,
                decode_responses=True)
print("ping", r.ping())
r.set("py:s", "h\u00e9llo w\u00f6rld")
print("get", r.get("py:s"))
print("incr", r.incr("py:n"), r.incrby("py:n", 9))
r.hset("py:h", mapping={"a": "1", "b": "2"})
print("hgetall", sorted(r.hgetall("py:h").items()))
r.rpush("py:l", "x", "y", "z")
print("lrange", r.lrange("py:l", 0, -1))
r.zadd("py:z", {"m1": 1.5, "m2": 0.5})
print("zrange", r.zrange("py:z", 0, -1, withscores=True))
r.set("py:ttl", "v", ex=100)
print("ttl", r.ttl("py:ttl"))
p = r.pipeline(transaction=False)
for i in range(500):
    p.set("py:p%d" % i, i)
for i in range(500):
    p.get("py:p%d" % i)
res = p.execute()
print("pipeline", all(res[:500]), res[500:] == [str(i) for i in range(500)])
try:
    r.lpush("py:s", "x")
    print("error none")
except redis.ResponseError as e:
    print("error", str(e).split()[0])
print("missing", r.get("py:missing"))
b = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=5)
b.set(b"py:bin\x00\r\n", bytes(range(256)))
print("binary", b.get(b"py:bin\x00\r\n") == bytes(range(256)))
print("done")
)PY";

const char* const kExpected =
    "ping True\n"
    "get h\u00e9llo w\u00f6rld\n"
    "incr 1 10\n"
    "hgetall [('a', '1'), ('b', '2')]\n"
    "lrange ['x', 'y', 'z']\n"
    "zrange [('m2', 0.5), ('m1', 1.5)]\n"
    "ttl 100\n"
    "pipeline True True\n"
    "error WRONGTYPE\n"
    "missing None\n"
    "binary True\n"
    "done\n";

class ClientLibraryTest : public ProxyTest {};

TEST_F(ClientLibraryTest, RedisPyWorksThroughRespite) {
  RunResult run = run_program({kPython, "-c", kScript, std::to_string(stack().port())}, 30s);
  ASSERT_TRUE(run.status.has_value()) << "python3 did not finish within 30 s; output:\n" << run.output;
  EXPECT_TRUE(run.status->ok()) << run.status->describe() << "; output:\n" << run.output;
  EXPECT_EQ(run.output, kExpected);
}

}  // namespace
}  // namespace respite::test
