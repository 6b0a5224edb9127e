// Whole-string decimal integers, as Redis's string2ll reads arguments: an optional '-',
// then digits, nothing else (no '+', no spaces), within the type's range.
#pragma once

#include <charconv>
#include <string_view>

namespace respite::core {

template <typename Int>
bool parse_integer(std::string_view s, Int& out) {
  if (s.empty() || s.front() == '+') return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace respite::core
