#include "fallback/redis_numbers.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace respite::fallback {

bool parse_integer(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  if (s == "0") {
    out = 0;
    return true;
  }
  size_t i = 0;
  const bool negative = s[0] == '-';
  if (negative) ++i;
  // The first digit must be 1..9: no leading zeros, no "-0", no sign alone.
  if (i >= s.size() || s[i] < '1' || s[i] > '9') return false;
  // Accumulate as a magnitude, so INT64_MIN (one more than INT64_MAX) is representable.
  uint64_t v = 0;
  const uint64_t limit = negative ? uint64_t{1} << 63 : static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const auto d = static_cast<uint64_t>(s[i] - '0');
    if (v > (limit - d) / 10) return false;
    v = v * 10 + d;
  }
  // Unsigned negation wraps to the two's complement value, INT64_MIN included.
  out = negative ? static_cast<int64_t>(~v + 1) : static_cast<int64_t>(v);
  return true;
}

bool parse_float(std::string_view s, long double& out) {
  if (s.empty() || s.size() >= kMaxFloatChars) return false;
  char buf[kMaxFloatChars];
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';  // an embedded NUL ends the number early, as in Redis
  errno = 0;
  char* end = nullptr;
  const long double v = std::strtold(buf, &end);
  if (std::isspace(static_cast<unsigned char>(buf[0])) || *end != '\0') return false;
  if (errno == ERANGE && (std::isinf(v) || std::fpclassify(v) == FP_ZERO)) return false;
  if (errno == EINVAL || std::isnan(v)) return false;
  out = v;
  return true;
}

bool format_float(long double v, std::string& out) {
  char buf[kMaxFloatChars];
  const int n = std::snprintf(buf, sizeof buf, "%.17Lf", v);
  if (n < 0 || static_cast<size_t>(n) + 1 > sizeof buf) return false;
  size_t len = static_cast<size_t>(n);
  if (std::memchr(buf, '.', len) != nullptr) {
    while (buf[len - 1] == '0') --len;
    if (buf[len - 1] == '.') --len;
  }
  if (len == 2 && buf[0] == '-' && buf[1] == '0') {
    buf[0] = '0';
    len = 1;
  }
  out.assign(buf, len);
  return true;
}

}  // namespace respite::fallback
