// Authenticator: checks AUTH credentials against respite's own client credentials
// (client.password and client.users), the way Redis checks requirepass and ACL users.
// Pure logic: no libuv, no RESP; the client session turns a Result into a reply.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace respite::auth {

class Authenticator {
 public:
  // Copies what it needs from `cfg` (password digests, not the passwords); `cfg` may
  // be destroyed afterwards. The default user's password is that of a client.users
  // entry named "default" if there is one, else client.password; with neither, but
  // other users configured, the default user is disabled.
  explicit Authenticator(const config::ClientConfig& cfg);

  // True when clients must authenticate: client.password is set or client.users is
  // non-empty.
  bool required() const;

  enum class Result {
    Ok,                    // credentials accepted
    WrongPass,             // unknown user, disabled default user or wrong password (-WRONGPASS)
    NoPasswordConfigured,  // AUTH for the default user while no authentication is configured
  };

  // AUTH <password> (`user` == "") or AUTH <user> <password>. The user "default" is the
  // same as "". Without any credentials configured, the default user gets
  // NoPasswordConfigured and any other user WrongPass. The time taken does not depend
  // on the contents or length of the configured passwords. Thread-safe (const).
  Result check(std::string_view user, std::string_view password) const;

  // Whether a user of this name exists ("default" always does), for CLIENT KILL USER.
  bool user_exists(std::string_view user) const;

 private:
  using Digest = std::array<uint8_t, 16>;  // keyed 128-bit hash of a password

  struct User {
    std::string name;  // user name as configured
    Digest digest;     // digest of the user's password
  };

  Digest digest(std::string_view password) const;
  // Constant-time comparison of `password`'s digest with `expected`.
  bool matches(std::string_view password, const Digest& expected) const;

  uint64_t seed_;                         // random per instance: digests cannot be precomputed
  bool required_ = false;                 // see required()
  std::optional<Digest> default_digest_;  // default user's password; nullopt = disabled or none
  std::vector<User> users_;               // named users other than "default"
};

}  // namespace respite::auth
