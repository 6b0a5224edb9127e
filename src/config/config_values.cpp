#include "config/config_values.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <limits>

namespace respite::config {

bool parse_byte_size(std::string_view text, size_t& out, std::string& error) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) {
    error = "'" + std::string(text) + "' is not a byte size (expected digits with an optional unit: "
            "b, k, kb, m, mb, g, gb)";
    return false;
  }
  std::string unit(text.substr(digits));
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char ch) { return std::tolower(ch); });
  uint64_t mul = 0;
  if (unit.empty() || unit == "b") mul = 1;
  else if (unit == "k") mul = 1000;
  else if (unit == "kb") mul = 1024;
  else if (unit == "m") mul = 1000 * 1000;
  else if (unit == "mb") mul = 1024 * 1024;
  else if (unit == "g") mul = 1000ull * 1000 * 1000;
  else if (unit == "gb") mul = 1024ull * 1024 * 1024;
  else {
    error = "'" + std::string(text) + "' has an unknown size unit '" + std::string(text.substr(digits)) +
            "' (use b, k, kb, m, mb, g or gb)";
    return false;
  }
  uint64_t value = 0;
  constexpr uint64_t kMax = std::numeric_limits<size_t>::max();
  for (size_t i = 0; i < digits; ++i) {
    uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (value > (kMax - d) / 10) {
      error = "'" + std::string(text) + "' is too large a byte size";
      return false;
    }
    value = value * 10 + d;
  }
  if (value > kMax / mul) {
    error = "'" + std::string(text) + "' is too large a byte size";
    return false;
  }
  out = static_cast<size_t>(value * mul);
  return true;
}

bool parse_listen_address(std::string_view text, ListenAddress& out, std::string& error) {
  const std::string shown = "'" + std::string(text) + "'";
  std::string_view host;
  std::string_view port;
  bool ipv6 = false;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      error = shown + " is not a listen address (expected [ipv6]:port, e.g. [::1]:6380)";
      return false;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    ipv6 = true;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      error = shown + " is not a listen address (expected host:port, e.g. 127.0.0.1:6380)";
      return false;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      error = shown + ": write IPv6 addresses in brackets, e.g. [::1]:6380";
      return false;
    }
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) ||
      std::stoul(std::string(port)) > 65535) {
    error = shown + ": port '" + std::string(port) + "' is not a number in 0..65535";
    return false;
  }
  std::string host_str(host);
  if (!ipv6 && host_str == "localhost") host_str = "127.0.0.1";
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(ipv6 ? AF_INET6 : AF_INET, host_str.c_str(), buf) != 1) {
    error = shown + ": host '" + std::string(host) + "' is not an IP address (use an IPv4 address, [ipv6] or "
            "localhost; listen addresses are not resolved)";
    return false;
  }
  out.host = std::move(host_str);
  out.port = static_cast<uint16_t>(std::stoul(std::string(port)));
  out.ipv6 = ipv6;
  return true;
}

}  // namespace respite::config
