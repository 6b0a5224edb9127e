// Who a client is for the rate limits: the AUTH user when client authentication is on, else
// the name it gave itself (CLIENT SETNAME), else its connection. Rules and exemptions match
// this string with globs ("user:*", "name:batch-*", "addr:10.0.0.*").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace respite::ratelimit {

struct IdentitySource {
  bool auth_required = false;  // client.password or client.users is set
  bool authenticated = false;  // the client has authenticated (AUTH / HELLO AUTH)
  std::string_view user;       // the user it authenticated as
  std::string_view name;       // CLIENT SETNAME ("" = none)
  std::string_view peer;       // "ip:port", or "unix" for a unix-socket client
  uint64_t client_id = 0;      // CLIENT ID (tells unix-socket clients apart)
};

// "user:<user>", "name:<name>", "addr:<ip>:<port>" or "addr:unix:<client id>".
inline std::string identity_of(const IdentitySource& s) {
  if (s.auth_required && s.authenticated) return "user:" + std::string(s.user);
  if (!s.name.empty()) return "name:" + std::string(s.name);
  if (s.peer == "unix") return "addr:unix:" + std::to_string(s.client_id);
  return "addr:" + std::string(s.peer);
}

}  // namespace respite::ratelimit
