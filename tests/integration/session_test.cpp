// Connection state as each client sees it: SELECT, RESET, client names and ids, CLIENT INFO /
// LIST / KILL, HELLO, CLIENT REPLY, CLIENT NO-EVICT -- per client, although respite shares
// upstream connections between clients. Then client authentication (client.password and
// client.users), client.deny_commands and the upstream.max_pinned bound.
//
// Where respite's behaviour can be emulated by redis-server's own options (requirepass, ACL
// users), the tests also run in direct mode; the rest are proxy-only.
#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "support/redis_probe.h"
#include "support/stack.h"

namespace respite::test {
namespace {

using namespace std::chrono_literals;

constexpr auto kWait = 5s;  // upper bound for anything that should happen promptly

const std::string kNoAuth = "-NOAUTH Authentication required.";
const std::string kWrongPass = "-WRONGPASS invalid username-password pair or user is disabled.";

// The integer of a ":<n>" rendering, or -1.
long long integer_of(const std::string& rendered) {
  if (!starts_with(rendered, ":")) return -1;
  return std::stoll(rendered.substr(1));
}

// The bulk string of a reply (empty when it is not a string).
std::string string_of(const Reply& r) {
  if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return "";
  return std::string(r->str, r->len);
}

class SessionTest : public ProxyTest {};

TEST_F(SessionTest, SelectIsPerClient) {
  Client a = connect();
  Client b = connect();
  ASSERT_EQ(a.call({"SELECT", "3"}), "+OK");
  EXPECT_EQ(a.call({"SET", "sel:k", "a"}), "+OK");
  EXPECT_EQ(b.call({"SET", "sel:k", "b"}), "+OK");
  EXPECT_EQ(a.call({"GET", "sel:k"}), "\"a\"");
  EXPECT_EQ(b.call({"GET", "sel:k"}), "\"b\"");
  EXPECT_EQ(a.call({"DBSIZE"}), ":1");

  // On Redis itself: db 3 holds a's value, db 0 b's.
  Client redis = stack().connect_redis();
  EXPECT_EQ(redis.call({"GET", "sel:k"}), "\"b\"");
  ASSERT_EQ(redis.call({"SELECT", "3"}), "+OK");
  EXPECT_EQ(redis.call({"GET", "sel:k"}), "\"a\"");

  // Back to db 0.
  EXPECT_EQ(a.call({"SELECT", "0"}), "+OK");
  EXPECT_EQ(a.call({"GET", "sel:k"}), "\"b\"");
  EXPECT_EQ(a.call({"SET", "sel:k2", "from a in db 0"}), "+OK");
  EXPECT_EQ(b.call({"GET", "sel:k2"}), "\"from a in db 0\"");

  EXPECT_EQ(a.call({"SELECT", "99"}), "-ERR DB index is out of range");
  EXPECT_EQ(a.call({"SELECT", "x"}), "-ERR value is not an integer or out of range");
  EXPECT_EQ(a.call({"GET", "sel:k"}), "\"b\"") << "a failed SELECT changed the db";
}

TEST_F(SessionTest, SelectSwitchesInsideOnePipeline) {
  Client seed = connect();
  ASSERT_EQ(seed.call({"SET", "selp:k", "db0"}), "+OK");
  RawConn c = stack().raw();
  std::string batch;
  for (const auto& args : std::vector<std::vector<std::string>>{{"SELECT", "5"},
                                                                {"SET", "selp:k", "db5"},
                                                                {"GET", "selp:k"},
                                                                {"SELECT", "0"},
                                                                {"GET", "selp:k"},
                                                                {"SELECT", "5"},
                                                                {"GET", "selp:k"},
                                                                {"SELECT", "0"},
                                                                {"GET", "selp:k"}})
    batch += resp_command(args);
  ASSERT_TRUE(c.send_all(batch, deadline_in(kWait)));
  const std::vector<std::string> want = {"+OK\r\n", "+OK\r\n", resp_bulk("db5"), "+OK\r\n", resp_bulk("db0"),
                                         "+OK\r\n", resp_bulk("db5"), "+OK\r\n", resp_bulk("db0")};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(want[i])) << "reply " << i;
}

TEST_F(SessionTest, ManyClientsInDifferentDbsStayApart) {
  constexpr int kClients = 8;
  std::vector<Client> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connect());
    ASSERT_EQ(clients.back().call({"SELECT", std::to_string(i)}), "+OK");
  }
  for (int round = 0; round < 3; ++round)
    for (int i = 0; i < kClients; ++i)
      ASSERT_EQ(clients[i].call({"SET", "seldb:k", cat("db", i, "-", round)}), "+OK");
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(clients[i].call({"GET", "seldb:k"}), cat("\"db", i, "-2\""));
}

TEST_F(SessionTest, ResetRestoresTheConnectionDefaults) {
  Client other = connect();
  ASSERT_EQ(other.call({"SET", "rst:k", "db0"}), "+OK");
  Client c = connect();
  ASSERT_EQ(c.call({"SELECT", "4"}), "+OK");
  ASSERT_EQ(c.call({"CLIENT", "SETNAME", "before-reset"}), "+OK");
  ASSERT_EQ(c.call({"MULTI"}), "+OK");
  ASSERT_EQ(c.call({"SET", "rst:queued", "v"}), "+QUEUED");
  EXPECT_EQ(c.call({"RESET"}), "+RESET");
  EXPECT_EQ(c.call({"GET", "rst:k"}), "\"db0\"");  // back in db 0, not in MULTI
  EXPECT_EQ(c.call({"CLIENT", "GETNAME"}), "(nil)");
  EXPECT_EQ(c.call({"EXEC"}), "-ERR EXEC without MULTI");
  EXPECT_EQ(other.call({"EXISTS", "rst:queued"}), ":0");
  // RESET with nothing to reset.
  EXPECT_EQ(c.call({"RESET"}), "+RESET");
  EXPECT_EQ(c.call({"PING"}), "+PONG");
}

TEST_F(SessionTest, ClientNamesArePerClient) {
  Client a = connect();
  Client b = connect();
  EXPECT_EQ(a.call({"CLIENT", "GETNAME"}), "(nil)");
  ASSERT_EQ(a.call({"CLIENT", "SETNAME", "alpha"}), "+OK");
  ASSERT_EQ(b.call({"CLIENT", "SETNAME", "beta"}), "+OK");
  EXPECT_EQ(a.call({"CLIENT", "GETNAME"}), "\"alpha\"");
  EXPECT_EQ(b.call({"CLIENT", "GETNAME"}), "\"beta\"");
  EXPECT_EQ(connect().call({"CLIENT", "GETNAME"}), "(nil)");
  EXPECT_EQ(a.call({"CLIENT", "SETNAME", "has space"}),
            "-ERR Client names cannot contain spaces, newlines or special characters.");
  EXPECT_EQ(a.call({"CLIENT", "GETNAME"}), "\"alpha\"");
  ASSERT_EQ(a.call({"CLIENT", "SETNAME", ""}), "+OK");  // clears the name
  EXPECT_EQ(a.call({"CLIENT", "GETNAME"}), "(nil)");
  EXPECT_EQ(b.call({"CLIENT", "GETNAME"}), "\"beta\"");
}

TEST_F(SessionTest, ClientIdIsUniqueAndStable) {
  Client a = connect();
  Client b = connect();
  const long long id_a = integer_of(a.call({"CLIENT", "ID"}));
  const long long id_b = integer_of(b.call({"CLIENT", "ID"}));
  ASSERT_GT(id_a, 0);
  ASSERT_GT(id_b, 0);
  EXPECT_NE(id_a, id_b);
  EXPECT_EQ(a.call({"PING"}), "+PONG");
  EXPECT_EQ(integer_of(a.call({"CLIENT", "ID"})), id_a);
  // Still the same after the client was pinned (MULTI) and released.
  ASSERT_EQ(a.call({"MULTI"}), "+OK");
  ASSERT_EQ(a.call({"EXEC"}), "[]");
  EXPECT_EQ(integer_of(a.call({"CLIENT", "ID"})), id_a);
  EXPECT_EQ(integer_of(b.call({"CLIENT", "ID"})), id_b);
  EXPECT_NE(integer_of(connect().call({"CLIENT", "ID"})), id_a);
}

TEST_F(SessionTest, ClientInfoDescribesThisClient) {
  Client a = connect();
  const long long id = integer_of(a.call({"CLIENT", "ID"}));
  ASSERT_GT(id, 0);
  Reply info = a.command({"CLIENT", "INFO"});
  ASSERT_TRUE(info && info->type == REDIS_REPLY_STRING) << describe(info);
  std::string line = string_of(info);
  EXPECT_TRUE(starts_with(line, cat("id=", id, " "))) << line;
  EXPECT_NE(line.find(" name= "), std::string::npos) << line;
  EXPECT_EQ(line.back(), '\n') << line;

  ASSERT_EQ(a.call({"CLIENT", "SETNAME", "info-name"}), "+OK");
  line = string_of(a.command({"CLIENT", "INFO"}));
  EXPECT_TRUE(starts_with(line, cat("id=", id, " "))) << line;
  EXPECT_NE(line.find(" name=info-name "), std::string::npos) << line;
}

TEST_F(SessionTest, ClientListShowsBothClientsAndKillClosesOne) {
  Client a = connect();
  Client b = connect();
  ASSERT_EQ(a.call({"CLIENT", "SETNAME", "lister"}), "+OK");
  ASSERT_EQ(b.call({"CLIENT", "SETNAME", "victim"}), "+OK");
  const long long id_a = integer_of(a.call({"CLIENT", "ID"}));
  const long long id_b = integer_of(b.call({"CLIENT", "ID"}));
  std::string list = string_of(a.command({"CLIENT", "LIST"}));
  EXPECT_NE(list.find(cat("id=", id_a, " ")), std::string::npos) << list;
  EXPECT_NE(list.find(cat("id=", id_b, " ")), std::string::npos) << list;
  EXPECT_NE(list.find(" name=lister "), std::string::npos) << list;
  EXPECT_NE(list.find(" name=victim "), std::string::npos) << list;
  std::string only_b = string_of(a.command({"CLIENT", "LIST", "ID", std::to_string(id_b)}));
  EXPECT_TRUE(starts_with(only_b, cat("id=", id_b, " "))) << only_b;
  EXPECT_EQ(only_b.find(" name=lister "), std::string::npos) << only_b;

  EXPECT_EQ(a.call({"CLIENT", "KILL", "ID", std::to_string(id_b)}), ":1");
  Reply after = b.command({"PING"});
  EXPECT_FALSE(after && after->type == REDIS_REPLY_STATUS) << "the killed client still works: " << describe(after);
  EXPECT_EQ(a.call({"PING"}), "+PONG");
  EXPECT_EQ(a.call({"CLIENT", "KILL", "ID", std::to_string(id_b)}), ":0");
}

TEST_F(SessionTest, HelloTwoRepliesLikeRedis) {
  Client c = connect();
  const long long id = integer_of(c.call({"CLIENT", "ID"}));
  Client redis = stack().connect_redis();
  Reply server_info = redis.command({"INFO", "server"});
  std::string info = string_of(server_info);
  size_t at = info.find("redis_version:");
  ASSERT_NE(at, std::string::npos);
  const std::string version = info.substr(at + 14, info.find('\r', at) - at - 14);

  for (const auto& hello : std::vector<std::vector<std::string>>{{"HELLO"}, {"HELLO", "2"}}) {
    Reply r = c.command(hello);
    ASSERT_TRUE(r && r->type == REDIS_REPLY_ARRAY) << describe(r);
    ASSERT_EQ(r->elements, 14u) << describe(r);
    EXPECT_EQ(describe(r), cat("[\"server\", \"redis\", \"version\", \"", version, "\", \"proto\", :2, \"id\", :", id,
                               ", \"mode\", \"standalone\", \"role\", \"master\", \"modules\", []]"));
  }
  Reply named = c.command({"HELLO", "2", "SETNAME", "hello-name"});
  ASSERT_TRUE(named && named->type == REDIS_REPLY_ARRAY) << describe(named);
  EXPECT_EQ(c.call({"CLIENT", "GETNAME"}), "\"hello-name\"");
  EXPECT_EQ(c.call({"HELLO", "4"}), "-NOPROTO unsupported protocol version");
  EXPECT_EQ(c.call({"PING"}), "+PONG");
}

TEST_F(SessionTest, HelloThreeIsRefusedAndTheClientStaysOnResp2) {
  SKIP_IN_DIRECT_MODE();  // Redis 7 speaks RESP3; respite does not offer it
  RawConn c = stack().raw();
  ASSERT_TRUE(send_command(c, {"HELLO", "3"}));
  std::string reply = next_reply(c);
  EXPECT_TRUE(starts_with(reply, "-NOPROTO")) << escape_bytes(reply);
  ASSERT_TRUE(send_command(c, {"SET", "hello3:k", "v"}));
  EXPECT_EQ(next_reply(c), "+OK\r\n");
  ASSERT_TRUE(send_command(c, {"GET", "hello3:k"}));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(resp_bulk("v")));
  ASSERT_TRUE(send_command(c, {"HGETALL", "hello3:none"}));
  EXPECT_EQ(next_reply(c), "*0\r\n");  // RESP2 array, not a RESP3 map
}

TEST_F(SessionTest, ClientReplyOffSkipOn) {
  Client other = connect();
  RawConn c = stack().raw();
  // OFF: nothing until ON, whose +OK is the first reply; the commands in between still run.
  std::string batch = resp_command({"CLIENT", "REPLY", "OFF"}) + resp_command({"SET", "rep:a", "1"}) +
                      resp_command({"GET", "rep:a"}) + resp_command({"NOSUCHCOMMAND"}) +
                      resp_command({"CLIENT", "REPLY", "ON"}) + resp_command({"GET", "rep:a"});
  ASSERT_TRUE(c.send_all(batch, deadline_in(kWait)));
  EXPECT_EQ(next_reply(c), "+OK\r\n");
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(resp_bulk("1")));
  EXPECT_EQ(other.call({"GET", "rep:a"}), "\"1\"");

  // SKIP: only the next command's reply is dropped (SKIP itself has no reply).
  batch = resp_command({"CLIENT", "REPLY", "SKIP"}) + resp_command({"SET", "rep:b", "2"}) +
          resp_command({"GET", "rep:b"}) + resp_command({"PING"});
  ASSERT_TRUE(c.send_all(batch, deadline_in(kWait)));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(resp_bulk("2")));
  EXPECT_EQ(next_reply(c), "+PONG\r\n");

  // One at a time too, with the silence observed by a later reply.
  ASSERT_TRUE(send_command(c, {"CLIENT", "REPLY", "OFF"}));
  ASSERT_TRUE(send_command(c, {"INCR", "rep:n"}));
  ASSERT_TRUE(send_command(c, {"INCR", "rep:n"}));
  ASSERT_TRUE(poll_until([&] { return other.call({"GET", "rep:n"}) == "\"2\""; }, deadline_in(kWait)));
  ASSERT_TRUE(send_command(c, {"CLIENT", "REPLY", "ON"}));
  EXPECT_EQ(next_reply(c), "+OK\r\n");
  ASSERT_TRUE(send_command(c, {"GET", "rep:n"}));
  EXPECT_EQ(escape_bytes(next_reply(c)), escape_bytes(resp_bulk("2")));
  // Another client's replies are unaffected by this one's mode.
  EXPECT_EQ(other.call({"PING"}), "+PONG");
}

TEST_F(SessionTest, ClientNoEvict) {
  Client c = connect();
  EXPECT_EQ(c.call({"CLIENT", "NO-EVICT", "on"}), "+OK");
  EXPECT_EQ(c.call({"CLIENT", "NO-EVICT", "off"}), "+OK");
  EXPECT_EQ(c.call({"PING"}), "+PONG");
}

TEST_F(SessionTest, AuthWithoutAnyPasswordConfigured) {
  Client c = connect();
  EXPECT_EQ(c.call({"AUTH", "whatever"}),
            "-ERR AUTH <password> called without any password configured for the default user. Are you sure your "
            "configuration is correct?");
  EXPECT_EQ(c.call({"AUTH", "someone", "whatever"}), kWrongPass);
  EXPECT_EQ(c.call({"PING"}), "+PONG");
}

// ---------------------------------------------------------------------------------------------
// Client authentication. Both fixtures run in direct mode too, with redis-server configured
// the way respite is (requirepass; ACL users with the default user off).

// Polls (a fresh connection per attempt, authenticating with `auth`) until PING is answered:
// the stack's own readiness check cannot authenticate.
void wait_until_serving_with_auth(Stack& stack, const std::vector<std::string>& auth) {
  std::string last;
  bool ok = poll_until(
      [&] {
        try {
          Client c = Client::tcp(stack.port());
          last = c.call(auth);
          if (last != "+OK") return false;
          last = c.call({"PING"});
          return last == "+PONG";
        } catch (const std::exception& e) {
          last = e.what();
          return false;
        }
      },
      deadline_in(10s), 10ms);
  if (!ok) throw std::runtime_error("not serving with client auth; last reply: " + last);
}

class SessionPasswordAuthTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_sets = {"client.password=secret"};
    o.direct_redis_args = {"--requirepass", "secret"};
    o.wait_upstream_ready = false;
    return o;
  }
  void SetUp() override {
    ProxyTest::SetUp();
    wait_until_serving_with_auth(stack(), {"AUTH", "secret"});
  }
};

TEST_F(SessionPasswordAuthTest, CommandsBeforeAuthAreRefused) {
  Client c = connect();
  EXPECT_EQ(c.call({"GET", "auth:k"}), kNoAuth);
  EXPECT_EQ(c.call({"SET", "auth:k", "v"}), kNoAuth);
  EXPECT_EQ(c.call({"PING"}), kNoAuth);
  EXPECT_EQ(c.call({"MULTI"}), kNoAuth);
  EXPECT_EQ(c.call({"SUBSCRIBE", "auth:ch"}), kNoAuth);
  EXPECT_EQ(c.call({"SELECT", "2"}), kNoAuth);
  Reply hello = c.command({"HELLO", "2"});  // HELLO without AUTH needs an authenticated client
  EXPECT_TRUE(starts_with(describe(hello), "-NOAUTH")) << describe(hello);
  ASSERT_EQ(c.call({"AUTH", "secret"}), "+OK");
  EXPECT_EQ(c.call({"EXISTS", "auth:k"}), ":0") << "a refused SET was executed";
}

TEST_F(SessionPasswordAuthTest, WrongPasswordIsRefusedRightPasswordWorks) {
  Client c = connect();
  EXPECT_EQ(c.call({"AUTH", "wrong"}), kWrongPass);
  EXPECT_EQ(c.call({"GET", "auth:k"}), kNoAuth);
  EXPECT_EQ(c.call({"AUTH", "default", "wrong"}), kWrongPass);
  EXPECT_EQ(c.call({"AUTH", "nobody", "secret"}), kWrongPass);
  EXPECT_EQ(c.call({"AUTH", "secret"}), "+OK");
  EXPECT_EQ(c.call({"SET", "auth:k", "v"}), "+OK");
  EXPECT_EQ(c.call({"GET", "auth:k"}), "\"v\"");
  EXPECT_EQ(c.call({"AUTH", "wrong"}), kWrongPass);
  EXPECT_EQ(c.call({"GET", "auth:k"}), "\"v\"") << "a failed AUTH ended an authenticated session";

  Client d = connect();
  EXPECT_EQ(d.call({"AUTH", "default", "secret"}), "+OK");
  EXPECT_EQ(d.call({"GET", "auth:k"}), "\"v\"");
  // Authentication is per client.
  EXPECT_EQ(connect().call({"GET", "auth:k"}), kNoAuth);
}

TEST_F(SessionPasswordAuthTest, HelloWithAuth) {
  Client c = connect();
  EXPECT_EQ(c.call({"HELLO", "2", "AUTH", "default", "wrong"}), kWrongPass);
  EXPECT_EQ(c.call({"GET", "auth:k"}), kNoAuth);
  Reply hello = c.command({"HELLO", "2", "AUTH", "default", "secret", "SETNAME", "authed"});
  ASSERT_TRUE(hello && hello->type == REDIS_REPLY_ARRAY) << describe(hello);
  ASSERT_EQ(hello->elements, 14u);
  EXPECT_EQ(c.call({"CLIENT", "GETNAME"}), "\"authed\"");
  EXPECT_EQ(c.call({"PING"}), "+PONG");
}

TEST_F(SessionPasswordAuthTest, ResetEndsAuthentication) {
  Client c = connect();
  ASSERT_EQ(c.call({"AUTH", "secret"}), "+OK");
  EXPECT_EQ(c.call({"PING"}), "+PONG");
  EXPECT_EQ(c.call({"RESET"}), "+RESET");
  EXPECT_EQ(c.call({"PING"}), kNoAuth);
  EXPECT_EQ(c.call({"AUTH", "secret"}), "+OK");
  EXPECT_EQ(c.call({"PING"}), "+PONG");
}

TEST_F(SessionPasswordAuthTest, QuitBeforeAuth) {
  RawConn c = stack().raw();
  ASSERT_TRUE(send_command(c, {"QUIT"}));
  bool closed = false;
  EXPECT_EQ(escape_bytes(c.read_until_closed(deadline_in(kWait), &closed)), "+OK\\r\\n");
  EXPECT_TRUE(closed);
}

class SessionNamedUsersTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    // respite: the users come from a config file; Redis: the same users as ACL rules, with the
    // default user off (respite disables it when only named users are configured).
    const std::string path = dir_.path() + "/respite.toml";
    std::ofstream(path) << "[[client.users]]\nname = \"app\"\npassword = \"pw\"\n\n"
                           "[[client.users]]\nname = \"ops\"\npassword = \"pw2\"\n";
    o.respite_args = {"--config", path};
    o.direct_redis_args = {"--user", "app", "on", ">pw",  "~*", "&*",      "+@all", "--user", "ops", "on",
                           ">pw2",   "~*",  "&*", "+@all", "--user", "default", "off"};
    o.wait_upstream_ready = false;
    return o;
  }
  void SetUp() override {
    ProxyTest::SetUp();
    wait_until_serving_with_auth(stack(), {"AUTH", "app", "pw"});
  }

  TempDir dir_;  // holds the config file
};

TEST_F(SessionNamedUsersTest, NamedUsersAuthenticateAndTheDefaultUserIsOff) {
  Client c = connect();
  EXPECT_EQ(c.call({"GET", "users:k"}), kNoAuth);
  EXPECT_EQ(c.call({"AUTH", "pw"}), kWrongPass);  // the default user is disabled
  EXPECT_EQ(c.call({"AUTH", "app", "pw2"}), kWrongPass);
  EXPECT_EQ(c.call({"AUTH", "nobody", "pw"}), kWrongPass);
  EXPECT_EQ(c.call({"GET", "users:k"}), kNoAuth);
  EXPECT_EQ(c.call({"AUTH", "app", "pw"}), "+OK");
  EXPECT_EQ(c.call({"SET", "users:k", "v"}), "+OK");

  Client d = connect();
  EXPECT_EQ(d.call({"AUTH", "ops", "pw2"}), "+OK");
  EXPECT_EQ(d.call({"GET", "users:k"}), "\"v\"");
  EXPECT_EQ(d.call({"RESET"}), "+RESET");
  EXPECT_EQ(d.call({"GET", "users:k"}), kNoAuth);
  Reply hello = d.command({"HELLO", "2", "AUTH", "ops", "pw2"});
  ASSERT_TRUE(hello && hello->type == REDIS_REPLY_ARRAY) << describe(hello);
  EXPECT_EQ(d.call({"GET", "users:k"}), "\"v\"");
}

// ---------------------------------------------------------------------------------------------
// client.deny_commands (proxy-only: Redis has no such list; ACLs would word it differently).

class SessionDenyCommandsTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_sets = {"client.deny_commands=[\"keys\", \"FLUSHALL\", \"config|set\"]"};
    return o;
  }
};

TEST_F(SessionDenyCommandsTest, DeniedCommandsAreRefusedOthersForwarded) {
  SKIP_IN_DIRECT_MODE();
  Client c = connect();
  ASSERT_EQ(c.call({"SET", "deny:k", "v"}), "+OK");
  for (const char* keys : {"KEYS", "keys", "kEyS"}) {
    std::string got = c.call({keys, "*"});
    EXPECT_TRUE(starts_with(got, "-ERR command 'keys' is denied")) << got;
  }
  std::string got = c.call({"FLUSHALL"});
  EXPECT_TRUE(starts_with(got, "-ERR command 'flushall' is denied")) << got;
  EXPECT_EQ(c.call({"GET", "deny:k"}), "\"v\"") << "the denied FLUSHALL reached Redis";
  got = c.call({"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"});
  EXPECT_TRUE(starts_with(got, "-ERR command 'config|set' is denied")) << got;
  EXPECT_EQ(stack().connect_redis().call({"CONFIG", "GET", "maxmemory-policy"}), "[\"maxmemory-policy\", \"noeviction\"]");
  // Other subcommands of a denied container, and other commands, still work.
  EXPECT_EQ(c.call({"CONFIG", "GET", "maxmemory-policy"}), "[\"maxmemory-policy\", \"noeviction\"]");
  EXPECT_EQ(c.call({"SCAN", "0", "MATCH", "deny:*"}), "[\"0\", [\"deny:k\"]]");
  EXPECT_EQ(c.call({"FLUSHDB"}), "+OK");
  EXPECT_EQ(c.call({"DBSIZE"}), ":0");
}

// ---------------------------------------------------------------------------------------------
// upstream.max_pinned (proxy-only).

class SessionPinnedLimitTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_sets = {"upstream.max_pinned=2", "upstream.pinned_idle=2"};
    return o;
  }
};

TEST_F(SessionPinnedLimitTest, ClientsBeyondTheLimitAreRefusedUntilOneIsReleased) {
  SKIP_IN_DIRECT_MODE();
  const std::string kLimit = "-ERR pinned connection limit reached";
  Client a = connect();
  Client b = connect();
  ASSERT_EQ(a.call({"MULTI"}), "+OK");
  ASSERT_EQ(a.call({"SET", "pin:a", "1"}), "+QUEUED");
  ASSERT_EQ(b.call({"WATCH", "pin:b"}), "+OK");

  // Both dedicated connections are taken: whatever needs a third is refused at once.
  const auto t0 = Clock::now();
  Client c = connect();
  std::string got = c.call({"MULTI"});
  EXPECT_TRUE(starts_with(got, kLimit)) << got;
  // A pipelined transaction is never applied piecemeal: the commands up to EXEC are refused
  // and EXEC fails as for a transaction with queue-time errors.
  got = c.call({"SET", "pin:c", "1"});
  EXPECT_TRUE(starts_with(got, "-ERR transaction refused")) << got;
  EXPECT_EQ(c.call({"EXEC"}), "-EXECABORT Transaction discarded because of previous errors.");
  EXPECT_EQ(stack().connect_redis().call({"EXISTS", "pin:c"}), ":0");
  // After EXEC the client is an ordinary one again.
  EXPECT_EQ(c.call({"SET", "pin:c", "1"}), "+OK");
  Client d = connect();
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"WATCH", "pin:d"}, {"SUBSCRIBE", "pin:ch"}, {"BLPOP", "pin:list", "5"}}) {
    got = d.call(args);
    EXPECT_TRUE(starts_with(got, kLimit)) << args[0] << ": " << got;
  }
  // A refused SELECT: what the client pipelined behind it must not run in the wrong
  // database, so respite answers the error and closes the connection.
  RawConn s = stack().raw();
  ASSERT_TRUE(s.send_all(cat(resp_command({"SELECT", "3"}), resp_command({"SET", "pin:sel", "x"})),
                         deadline_in(kWait)));
  got = s.read_reply(deadline_in(kWait)).value_or("<none>");
  EXPECT_TRUE(starts_with(got, kLimit)) << got;
  bool closed = false;
  s.read_until_closed(deadline_in(kWait), &closed);
  EXPECT_TRUE(closed) << "connection left open after a refused SELECT";
  EXPECT_EQ(stack().connect_redis().call({"EXISTS", "pin:sel"}), ":0");
  EXPECT_LT(Clock::now() - t0, 2s) << "refusals must come at once, not after waiting for a connection";
  // The refused client d is still served on the shared connections.
  EXPECT_EQ(d.call({"SET", "pin:d", "1"}), "+OK");
  EXPECT_EQ(d.call({"GET", "pin:d"}), "\"1\"");
  EXPECT_EQ(stack().connect_redis().call({"GET", "pin:d"}), "\"1\"");
  EXPECT_EQ(d.call({"EXEC"}), "-ERR EXEC without MULTI");

  ASSERT_EQ(a.call({"EXEC"}), "[+OK]");
  // a's connection is given back (after a reset), so a new client can have it. Polled with a
  // fresh client per attempt, since the release may complete just after EXEC's reply.
  std::optional<Client> e;
  EXPECT_TRUE(poll_until(
      [&] {
        e.emplace(connect());
        return (got = e->call({"MULTI"})) == "+OK";
      },
      deadline_in(kWait), 5ms))
      << got;
  EXPECT_EQ(e->call({"SET", "pin:e", "2"}), "+QUEUED");
  EXPECT_EQ(e->call({"EXEC"}), "[+OK]");
  // b still holds its own connection: its WATCH still works.
  ASSERT_EQ(d.call({"SET", "pin:b", "changed"}), "+OK");
  ASSERT_EQ(b.call({"MULTI"}), "+OK");
  ASSERT_EQ(b.call({"SET", "pin:b", "mine"}), "+QUEUED");
  EXPECT_EQ(b.call({"EXEC"}), "(nil)");
  EXPECT_EQ(d.call({"GET", "pin:b"}), "\"changed\"");
}

// One dedicated connection, reused by client after client: whatever state one client
// leaves on it (database, subscriptions, watches, a transaction, tracking) must not reach
// the next.
class SessionPinnedReuseTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.respite_sets = {"upstream.max_pinned=1", "upstream.pinned_idle=1"};
    return o;
  }
};

TEST_F(SessionPinnedReuseTest, NoStateReachesTheNextClient) {
  SKIP_IN_DIRECT_MODE();
  Client redis = stack().connect_redis();
  auto next_client_is_clean = [&](const std::string& after) {
    Client b = connect();
    std::string got;
    // The single connection may still be on its way back (a RESET in flight): retry MULTI.
    EXPECT_TRUE(poll_until([&] { return (got = b.call({"MULTI"})) == "+OK"; }, deadline_in(kWait), 5ms))
        << after << ": " << got;
    EXPECT_EQ(b.call({"SET", "reuse:k", "b"}), "+QUEUED") << after;
    EXPECT_EQ(b.call({"EXEC"}), "[+OK]") << after;
    EXPECT_EQ(redis.call({"GET", "reuse:k"}), "\"b\"") << after << ": the write went to another database";
    EXPECT_EQ(redis.call({"DEL", "reuse:k"}), ":1") << after;
    EXPECT_EQ(redis.call({"PUBLISH", "reuse:ch", "x"}), ":0") << after << ": a subscription survived";
  };
  {
    Client a = connect();
    ASSERT_EQ(a.call({"SELECT", "5"}), "+OK");
    ASSERT_EQ(a.call({"SET", "reuse:k", "a"}), "+OK");
    ASSERT_EQ(a.call({"SELECT", "0"}), "+OK");
  }
  next_client_is_clean("after SELECT 5 / SELECT 0");
  {
    Client a = connect();
    ASSERT_EQ(a.call({"SELECT", "5"}), "+OK");  // left in db 5: wiped on disconnect
  }
  next_client_is_clean("after a client left in db 5");
  {
    RawConn a = stack().raw();
    ASSERT_TRUE(send_command(a, {"SUBSCRIBE", "reuse:ch"}));
    ASSERT_NE(next_reply(a), "<none>");
    ASSERT_TRUE(send_command(a, {"UNSUBSCRIBE"}));
    ASSERT_NE(next_reply(a), "<none>");
    ASSERT_TRUE(send_command(a, {"PING"}));
    ASSERT_EQ(next_reply(a), "+PONG\r\n");
  }
  next_client_is_clean("after SUBSCRIBE / UNSUBSCRIBE");
  {
    RawConn a = stack().raw();
    ASSERT_TRUE(send_command(a, {"SUBSCRIBE", "reuse:ch"}));
    ASSERT_NE(next_reply(a), "<none>");
  }
  next_client_is_clean("after a subscriber left");
  {
    Client a = connect();
    ASSERT_EQ(a.call({"WATCH", "reuse:w"}), "+OK");
    ASSERT_EQ(a.call({"MULTI"}), "+OK");
    ASSERT_EQ(a.call({"SET", "reuse:w", "1"}), "+QUEUED");
  }
  next_client_is_clean("after a client left inside MULTI with a WATCH");
  EXPECT_EQ(redis.call({"EXISTS", "reuse:w"}), ":0");
}

// The same with an upstream password and database: a RESET that reached Redis (sent inside
// MULTI, while subscribed, or plainly) logs the dedicated connection out and selects db 0, so
// it must get the handshake again before another client uses it.
class SessionPinnedReuseAuthDbTest : public ProxyTest {
 protected:
  StackOptions options() override {
    StackOptions o;
    o.redis_args = {"--requirepass", "upw"};
    o.upstream_password = "upw";
    o.upstream_db = 3;
    o.respite_sets = {"upstream.max_pinned=1", "upstream.pinned_idle=1"};
    return o;
  }
};

TEST_F(SessionPinnedReuseAuthDbTest, ResetThroughThePinnedConnectionIsFollowedByTheHandshake) {
  SKIP_IN_DIRECT_MODE();
  Client redis = stack().connect_redis();
  ASSERT_EQ(redis.call({"SELECT", "3"}), "+OK");
  const std::vector<std::vector<std::vector<std::string>>> firsts = {
      {{"MULTI"}, {"RESET"}},
      {{"SUBSCRIBE", "reuse:ch"}, {"RESET"}},
      {{"WATCH", "reuse:w"}, {"RESET"}},
  };
  for (const auto& first : firsts) {
    {
      Client a = connect();
      for (const auto& cmd : first) ASSERT_FALSE(starts_with(a.call(cmd), "-")) << first[0][0];
      EXPECT_EQ(a.call({"PING"}), "+PONG");
    }
    Client b = connect();
    std::string got;
    EXPECT_TRUE(poll_until([&] { return (got = b.call({"MULTI"})) == "+OK"; }, deadline_in(kWait), 5ms))
        << first[0][0] << ": " << got;
    EXPECT_EQ(b.call({"SET", "reuse:k", first[0][0]}), "+QUEUED") << first[0][0];
    EXPECT_EQ(b.call({"EXEC"}), "[+OK]") << first[0][0];
    EXPECT_EQ(redis.call({"GET", "reuse:k"}), "\"" + first[0][0] + "\"") << first[0][0] << ": not in db 3";
  }
}

// Commands that reach across databases act on the client's own database, as with Redis.
TEST_F(SessionTest, MoveCopyAndSwapdbActFromTheClientsDatabase) {
  Client c = connect();
  ASSERT_EQ(c.call({"SET", "xdb:k", "v"}), "+OK");
  EXPECT_EQ(c.call({"MOVE", "xdb:k", "2"}), ":1");
  EXPECT_EQ(c.call({"EXISTS", "xdb:k"}), ":0");
  ASSERT_EQ(c.call({"SELECT", "2"}), "+OK");
  EXPECT_EQ(c.call({"GET", "xdb:k"}), "\"v\"");
  EXPECT_EQ(c.call({"COPY", "xdb:k", "xdb:copy", "DB", "4"}), ":1");
  EXPECT_EQ(c.call({"SWAPDB", "2", "3"}), "+OK");
  EXPECT_EQ(c.call({"GET", "xdb:k"}), "(nil)");
  ASSERT_EQ(c.call({"SELECT", "3"}), "+OK");
  EXPECT_EQ(c.call({"GET", "xdb:k"}), "\"v\"");
  ASSERT_EQ(c.call({"SELECT", "4"}), "+OK");
  EXPECT_EQ(c.call({"GET", "xdb:copy"}), "\"v\"");
  ASSERT_EQ(c.call({"SELECT", "0"}), "+OK");
  // Another client, on the shared connection, saw none of it in db 0.
  Client other = connect();
  EXPECT_EQ(other.call({"EXISTS", "xdb:k", "xdb:copy"}), ":0");
  EXPECT_EQ(c.call({"FLUSHALL"}), "+OK");
}

}  // namespace
}  // namespace respite::test
