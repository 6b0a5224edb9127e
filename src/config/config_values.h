// Parsers for setting values that are more than a number: byte sizes with units and
// listen addresses. Used by the loader's validation and by the server when it listens.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace respite::config {

// A parsed server.listen address.
struct ListenAddress {
  std::string host;   // IP literal without brackets ("127.0.0.1", "::1")
  uint16_t port = 0;  // 0 = ephemeral port chosen by the kernel
  bool ipv6 = false;  // true when host is an IPv6 literal
};

// Parses "a.b.c.d:port", "[ipv6]:port" or "localhost:port" (= 127.0.0.1). Only IP
// literals are accepted: listen addresses are never resolved. Port 0..65535.
bool parse_listen_address(std::string_view text, ListenAddress& out, std::string& error);

// Parses a byte count the way Redis's memtoll does: digits with an optional
// case-insensitive unit b, k (1000), kb (1024), m (1e6), mb (1024^2), g (1e9),
// gb (1024^3). "64mb" -> 67108864. Rejects signs, fractions, spaces and overflow.
bool parse_byte_size(std::string_view text, size_t& out, std::string& error);

}  // namespace respite::config
