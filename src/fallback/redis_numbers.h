// The number formats of Redis's string commands, reproduced exactly so the local store
// answers INCR, INCRBYFLOAT, EXPIRE... with Redis's own bytes and errors:
//   - parse_integer: Redis's strict decimal form for 64-bit integers (arguments and stored
//     values alike): an optional '-', then digits without leading zeros, nothing else; so
//     "007", "-0", "+1", " 1" and "" are not integers, as they are not for Redis.
//   - parse_float / format_float: the long double arithmetic of INCRBYFLOAT and
//     HINCRBYFLOAT: strtold over the whole string (hex and "inf" accepted, NaN, leading
//     space and out-of-range values refused), and the result printed in fixed notation with
//     17 decimals, trailing zeros and a trailing '.' removed, "-0" printed as "0".
// Both use the C library's strtold/snprintf on x86-64's 80-bit long double, as Redis does,
// so the digits agree with a Redis built on the same platform.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace respite::fallback {

// Longest text Redis reads as a float, and writes one into (its MAX_LONG_DOUBLE_CHARS).
inline constexpr size_t kMaxFloatChars = 5 * 1024;

// Redis's integer form; false when `s` is not one or is out of int64 range.
bool parse_integer(std::string_view s, int64_t& out);

// Redis's float form; false when `s` is not a valid float (the caller picks the message).
bool parse_float(std::string_view s, long double& out);

// Redis's human-friendly rendering of a finite long double; false when it would not fit in
// kMaxFloatChars (cannot happen for finite 80-bit values, kept for the contract).
bool format_float(long double v, std::string& out);

}  // namespace respite::fallback
