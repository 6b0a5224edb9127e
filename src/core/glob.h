// Redis glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE): the near-cache's key rules, bypass
// client names and warm-up patterns are written in them.
#pragma once

#include <string_view>

namespace respite::core {

// Whether `text` matches `pattern` as Redis's stringmatchlen() decides it:
//   *       any run of bytes, also empty
//   ?       one byte
//   [abc]   one byte of the set; [^abc] one byte not in it; [a-z] a range, either way round
//           ([z-a] is [a-z]); \x inside a set is x itself; the set ends at the first ']'
//           after '[' or '[^' (so "[]" is an empty set), or at the end of the pattern
//   \x      x itself, so \* \? \[ are literal; a trailing '\' is a literal backslash
// nocase folds ASCII letters as Redis does: literals, set members and range bounds (bounds
// are ordered before folding), but not escaped set members.
// Bytes are compared unsigned (Redis compares plain `char`, signed on x86, which only
// matters for ranges with one bound >= 0x80).
// The empty text matches only "" and "*" (Redis's matcher rejects it for every pattern, and
// KEYS and SCAN MATCH treat "*" as match-all before calling it).
// Iterative: O(len(pattern) * len(text)) at worst, no recursion, no allocation.
bool glob_match(std::string_view pattern, std::string_view text, bool nocase = false);

}  // namespace respite::core
