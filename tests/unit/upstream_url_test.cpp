// Tests of upstream URL parsing and redaction: TCP, IPv6, ACL users, percent-encoding,
// databases, unix socket forms, rejected inputs, and that the password never shows.
#include <gtest/gtest.h>

#include <string>

#include "config/upstream_url.h"

namespace respite::config {
namespace {

UpstreamAddress parse_ok(const std::string& url) {
  UpstreamAddress a;
  std::string err;
  EXPECT_TRUE(parse_upstream_url(url, a, err)) << url << ": " << err;
  return a;
}

std::string parse_err(const std::string& url) {
  UpstreamAddress a;
  a.host = "untouched";
  std::string err;
  EXPECT_FALSE(parse_upstream_url(url, a, err)) << url;
  EXPECT_FALSE(err.empty()) << url;
  EXPECT_EQ(a.host, "untouched") << url;  // failure leaves the output alone
  return err;
}

TEST(UpstreamUrl, HostOnlyGetsDefaults) {
  UpstreamAddress a = parse_ok("redis://redis.example.com");
  EXPECT_FALSE(a.is_unix);
  EXPECT_EQ(a.host, "redis.example.com");
  EXPECT_EQ(a.port, 6379);
  EXPECT_EQ(a.db, 0);
  EXPECT_EQ(a.username, "");
  EXPECT_EQ(a.password, "");
  EXPECT_EQ(a.path, "");
}

TEST(UpstreamUrl, HostPortDb) {
  UpstreamAddress a = parse_ok("redis://10.0.0.5:7000/12");
  EXPECT_EQ(a.host, "10.0.0.5");
  EXPECT_EQ(a.port, 7000);
  EXPECT_EQ(a.db, 12);
  EXPECT_EQ(parse_ok("redis://h:1/").db, 0);
  EXPECT_EQ(parse_ok("redis://h/0").db, 0);
  EXPECT_EQ(parse_ok("redis://h/1000000").db, 1000000);
  EXPECT_EQ(parse_ok("REDIS://h:65535").port, 65535);
}

TEST(UpstreamUrl, PasswordOnly) {
  UpstreamAddress a = parse_ok("redis://:s3cret@h:6380");
  EXPECT_EQ(a.username, "");
  EXPECT_EQ(a.password, "s3cret");
  EXPECT_EQ(a.port, 6380);
}

TEST(UpstreamUrl, AclUserAndPassword) {
  UpstreamAddress a = parse_ok("redis://app:pw@h/2");
  EXPECT_EQ(a.username, "app");
  EXPECT_EQ(a.password, "pw");
  EXPECT_EQ(a.db, 2);
}

TEST(UpstreamUrl, UserWithoutPassword) {
  // As in RFC 3986 and redis-py: no ':' means a user name; the password comes from
  // RESPITE_UPSTREAM_PASSWORD or upstream.password_file.
  UpstreamAddress a = parse_ok("redis://app@h");
  EXPECT_EQ(a.username, "app");
  EXPECT_EQ(a.password, "");
  a = parse_ok("redis://app:@h");
  EXPECT_EQ(a.username, "app");
  EXPECT_EQ(a.password, "");
}

TEST(UpstreamUrl, PercentDecoding) {
  UpstreamAddress a = parse_ok("redis://us%40er:p%3Aa%2Fs%25s%20w@h");
  EXPECT_EQ(a.username, "us@er");
  EXPECT_EQ(a.password, "p:a/s%s w");
}

TEST(UpstreamUrl, UnencodedSpecialCharactersInPassword) {
  // The userinfo ends at the last '@', so '@', '/', ':' and '?' in a password still work.
  UpstreamAddress a = parse_ok("redis://u:p@ss/w:o?rd@h:6390/4");
  EXPECT_EQ(a.username, "u");
  EXPECT_EQ(a.password, "p@ss/w:o?rd");
  EXPECT_EQ(a.host, "h");
  EXPECT_EQ(a.port, 6390);
  EXPECT_EQ(a.db, 4);
}

TEST(UpstreamUrl, Ipv6) {
  UpstreamAddress a = parse_ok("redis://[::1]:6379");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 6379);
  a = parse_ok("redis://:pw@[2001:db8::7]/3");
  EXPECT_EQ(a.host, "2001:db8::7");
  EXPECT_EQ(a.port, 6379);
  EXPECT_EQ(a.db, 3);
  EXPECT_EQ(a.password, "pw");
}

TEST(UpstreamUrl, UnixForms) {
  for (const char* url : {"unix:/run/redis/redis.sock", "unix:///run/redis/redis.sock",
                          "redis+unix:///run/redis/redis.sock", "redis-socket:///run/redis/redis.sock",
                          "UNIX:/run/redis/redis.sock"}) {
    UpstreamAddress a = parse_ok(url);
    EXPECT_TRUE(a.is_unix) << url;
    EXPECT_EQ(a.path, "/run/redis/redis.sock") << url;
    EXPECT_EQ(a.db, 0) << url;
    EXPECT_EQ(a.password, "") << url;
  }
}

TEST(UpstreamUrl, UnixQuery) {
  UpstreamAddress a = parse_ok("unix:/tmp/r.sock?db=3&password=p%26w&user=app");
  EXPECT_TRUE(a.is_unix);
  EXPECT_EQ(a.path, "/tmp/r.sock");
  EXPECT_EQ(a.db, 3);
  EXPECT_EQ(a.password, "p&w");
  EXPECT_EQ(a.username, "app");
  EXPECT_EQ(parse_ok("redis+unix:///tmp/r.sock?username=u").username, "u");
  EXPECT_EQ(parse_ok("unix:/tmp/my%20dir/r.sock").path, "/tmp/my dir/r.sock");
}

TEST(UpstreamUrl, RejectsTls) {
  std::string err = parse_err("rediss://h:6380");
  EXPECT_NE(err.find("TLS not supported"), std::string::npos) << err;
  parse_err("REDISS://h");
}

TEST(UpstreamUrl, RejectsBadPorts) {
  for (const char* url : {"redis://h:0", "redis://h:65536", "redis://h:-1", "redis://h:abc", "redis://h:",
                          "redis://h:123456", "redis://[::1]:", "redis://[::1]:99999"}) {
    std::string err = parse_err(url);
    EXPECT_NE(err.find("port"), std::string::npos) << url << ": " << err;
  }
}

TEST(UpstreamUrl, RejectsBadDatabases) {
  for (const char* url : {"redis://h/-1", "redis://h/x", "redis://h/1000001", "redis://h/1/2", "redis://h/1.5",
                          "unix:/s?db=", "unix:/s?db=abc", "unix:/s?db=99999999999"}) {
    std::string err = parse_err(url);
    EXPECT_NE(err.find("database"), std::string::npos) << url << ": " << err;
  }
}

TEST(UpstreamUrl, RejectsMalformed) {
  const char* urls[] = {
      "",                      // empty
      "h:6379",                // no scheme
      "http://h",              // wrong scheme
      "redis://",              // no host
      "redis://:pw@",          // no host
      "redis://:6379",         // no host
      "redis://@h",            // empty userinfo
      "redis://::1:6379",      // IPv6 without brackets
      "redis://[::1",          // unterminated bracket
      "redis://[::1]x",        // junk after bracket
      "redis://[nothex]:1",    // not an IPv6 address
      "redis://h_o st",        // space in host
      "redis://999.1.1.1",     // not an IPv4 address
      "redis://h?db=1",        // query on TCP form
      "redis://h#frag",        // fragment
      "redis://u:p%4@h",       // truncated percent-escape
      "redis://u:p%zz@h",      // bad percent-escape
      "unix:",                 // no path
      "unix:relative.sock",    // relative path
      "unix://relative.sock",  // relative path after //
      "redis+unix://",         // no path
      "unix:/s?bogus=1",       // unknown parameter
      "unix:/s?db=1&db=2",     // repeated parameter
  };
  for (const char* url : urls) parse_err(url);
}

TEST(UpstreamUrl, ErrorsNameTheProblem) {
  EXPECT_NE(parse_err("http://h").find("'http'"), std::string::npos);
  EXPECT_NE(parse_err("redis://h:abc").find("'abc'"), std::string::npos);
  EXPECT_NE(parse_err("unix:/s?bogus=1").find("'bogus'"), std::string::npos);
  EXPECT_NE(parse_err("redis://::1:6379").find("brackets"), std::string::npos);
  EXPECT_NE(parse_err("unix:rel").find("absolute"), std::string::npos);
}

TEST(UpstreamUrl, RejectsTooLongUnixPath) {
  std::string err = parse_err("unix:/" + std::string(120, 'a'));
  EXPECT_NE(err.find("too long"), std::string::npos) << err;
}

TEST(UpstreamUrl, ErrorsNeverContainThePassword) {
  const std::string secret = "Pa55w0rdX";
  for (const std::string& url : {
           "redis://u:" + secret + "@h:0", "redis://:" + secret + "@h/x", "rediss://:" + secret + "@h",
           "redis://:" + secret + "%g0@h", "redis://:" + secret + "@", "redis://:" + secret + "@h?x=1",
           "unix:/s?password=" + secret + "&db=x", "unix:/s?password=%" + secret, "unix:/s?password=" + secret +
           "&password=" + secret, "user:" + secret + "@h", "redis://:" + secret + "@[zz]:1",
       }) {
    UpstreamAddress a;
    std::string err;
    ASSERT_FALSE(parse_upstream_url(url, a, err)) << url;
    EXPECT_EQ(err.find(secret), std::string::npos) << err;
  }
}

TEST(UpstreamUrl, RedactHidesPassword) {
  EXPECT_EQ(redact_url(parse_ok("redis://app:topsecret@h:7000/3")), "redis://app:***@h:7000/3");
  EXPECT_EQ(redact_url(parse_ok("redis://:topsecret@h")), "redis://:***@h:6379");
  EXPECT_EQ(redact_url(parse_ok("redis://h")), "redis://h:6379");
  EXPECT_EQ(redact_url(parse_ok("redis://app@h")), "redis://app@h:6379");
  EXPECT_EQ(redact_url(parse_ok("redis://:topsecret@[::1]:1/2")), "redis://:***@[::1]:1/2");
  EXPECT_EQ(redact_url(parse_ok("unix:/run/r.sock")), "unix:/run/r.sock");
  EXPECT_EQ(redact_url(parse_ok("unix:/run/r.sock?db=2&password=topsecret&user=a%20b")),
            "unix:/run/r.sock?db=2&user=a%20b&password=***");
  UpstreamAddress a;
  a.password = "topsecret";
  a.username = "u@x";
  EXPECT_EQ(redact_url(a).find("topsecret"), std::string::npos);
  EXPECT_NE(redact_url(a).find("u%40x"), std::string::npos);
}

TEST(UpstreamUrl, RedactedUrlParsesBackToTheSameAddress) {
  for (const char* url : {"redis://app:pw@h:7000/3", "redis://[::1]:6380", "unix:/tmp/a%20b.sock?db=1&user=u",
                          "redis://us%40er@h"}) {
    UpstreamAddress a = parse_ok(url);
    UpstreamAddress b = parse_ok(redact_url(a));
    EXPECT_EQ(a.is_unix, b.is_unix) << url;
    EXPECT_EQ(a.host, b.host) << url;
    EXPECT_EQ(a.port, b.port) << url;
    EXPECT_EQ(a.path, b.path) << url;
    EXPECT_EQ(a.username, b.username) << url;
    EXPECT_EQ(a.db, b.db) << url;
  }
}

}  // namespace
}  // namespace respite::config
