// Tests of the Authenticator: the default user from client.password or a "default"
// entry, named users, the disabled default user, and AUTH without any credentials.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "auth/authenticator.h"

namespace respite::auth {
namespace {

using Result = Authenticator::Result;

config::ClientConfig client(std::string password, std::vector<config::ClientUser> users = {}) {
  config::ClientConfig cfg;
  cfg.password = std::move(password);
  cfg.users = std::move(users);
  return cfg;
}

TEST(AuthAuthenticator, NothingConfigured) {
  Authenticator auth(client(""));
  EXPECT_FALSE(auth.required());
  EXPECT_EQ(auth.check("", "anything"), Result::NoPasswordConfigured);
  EXPECT_EQ(auth.check("", ""), Result::NoPasswordConfigured);
  EXPECT_EQ(auth.check("default", "anything"), Result::NoPasswordConfigured);
  EXPECT_EQ(auth.check("app", "anything"), Result::WrongPass);
}

TEST(AuthAuthenticator, DefaultPasswordOnly) {
  Authenticator auth(client("s3cret"));
  EXPECT_TRUE(auth.required());
  EXPECT_EQ(auth.check("", "s3cret"), Result::Ok);
  EXPECT_EQ(auth.check("default", "s3cret"), Result::Ok);
  EXPECT_EQ(auth.check("", "s3cre"), Result::WrongPass);
  EXPECT_EQ(auth.check("", "s3crett"), Result::WrongPass);
  EXPECT_EQ(auth.check("", "S3CRET"), Result::WrongPass);
  EXPECT_EQ(auth.check("", ""), Result::WrongPass);
  EXPECT_EQ(auth.check("Default", "s3cret"), Result::WrongPass);  // user names are case-sensitive
  EXPECT_EQ(auth.check("app", "s3cret"), Result::WrongPass);
}

TEST(AuthAuthenticator, NamedUsersOnlyDisableTheDefaultUser) {
  Authenticator auth(client("", {{"app", "app-pw"}, {"ops", "ops-pw"}}));
  EXPECT_TRUE(auth.required());
  EXPECT_EQ(auth.check("app", "app-pw"), Result::Ok);
  EXPECT_EQ(auth.check("ops", "ops-pw"), Result::Ok);
  EXPECT_EQ(auth.check("app", "ops-pw"), Result::WrongPass);
  EXPECT_EQ(auth.check("ops", "app-pw"), Result::WrongPass);
  EXPECT_EQ(auth.check("nobody", "app-pw"), Result::WrongPass);
  EXPECT_EQ(auth.check("", "app-pw"), Result::WrongPass);
  EXPECT_EQ(auth.check("default", "app-pw"), Result::WrongPass);
  EXPECT_EQ(auth.check("", ""), Result::WrongPass);
}

TEST(AuthAuthenticator, DefaultPasswordAndNamedUsers) {
  Authenticator auth(client("def-pw", {{"app", "app-pw"}}));
  EXPECT_EQ(auth.check("", "def-pw"), Result::Ok);
  EXPECT_EQ(auth.check("default", "def-pw"), Result::Ok);
  EXPECT_EQ(auth.check("app", "app-pw"), Result::Ok);
  EXPECT_EQ(auth.check("app", "def-pw"), Result::WrongPass);
  EXPECT_EQ(auth.check("", "app-pw"), Result::WrongPass);
}

TEST(AuthAuthenticator, DefaultEntryWinsOverClientPassword) {
  Authenticator auth(client("from-password", {{"default", "from-users"}, {"app", "app-pw"}}));
  EXPECT_EQ(auth.check("", "from-users"), Result::Ok);
  EXPECT_EQ(auth.check("default", "from-users"), Result::Ok);
  EXPECT_EQ(auth.check("", "from-password"), Result::WrongPass);

  Authenticator only_default(client("", {{"default", "pw"}}));
  EXPECT_TRUE(only_default.required());
  EXPECT_EQ(only_default.check("", "pw"), Result::Ok);
  EXPECT_EQ(only_default.check("default", "pw"), Result::Ok);
}

TEST(AuthAuthenticator, BinaryPasswords) {
  const std::string pw("a\0b\r\n\xff", 6);
  Authenticator auth(client(pw));
  EXPECT_EQ(auth.check("", pw), Result::Ok);
  EXPECT_EQ(auth.check("", std::string_view(pw).substr(0, 1)), Result::WrongPass);  // "a": stops at the NUL
  EXPECT_EQ(auth.check("", std::string("a\0c\r\n\xff", 6)), Result::WrongPass);
}

TEST(AuthAuthenticator, LongPasswords) {
  const std::string pw(100000, 'x');
  Authenticator auth(client(pw));
  EXPECT_EQ(auth.check("", pw), Result::Ok);
  std::string other = pw;
  other.back() = 'y';
  EXPECT_EQ(auth.check("", other), Result::WrongPass);
  EXPECT_EQ(auth.check("", pw + "x"), Result::WrongPass);
}

TEST(AuthAuthenticator, IndependentOfTheConfigAfterConstruction) {
  auto cfg = std::make_unique<config::ClientConfig>(client("pw", {{"app", "app-pw"}}));
  Authenticator auth(*cfg);
  cfg.reset();
  EXPECT_EQ(auth.check("", "pw"), Result::Ok);
  EXPECT_EQ(auth.check("app", "app-pw"), Result::Ok);
}

TEST(Authenticator, UserExists) {
  config::ClientConfig cfg;
  cfg.users = {config::ClientUser{"app", "pw"}};
  Authenticator a(cfg);
  EXPECT_TRUE(a.user_exists("default"));
  EXPECT_TRUE(a.user_exists("app"));
  EXPECT_FALSE(a.user_exists("App"));
  EXPECT_FALSE(a.user_exists("nobody"));
}

}  // namespace
}  // namespace respite::auth
