// Redis glob matching without backtracking blow-up.
//
// Every token other than '*' ('?', a set, an escaped or plain byte) consumes exactly one byte
// of text, and how the pattern splits into tokens does not depend on the text. So the classic
// greedy scheme is exact: on a mismatch, only the most recent '*' needs to absorb one more
// byte; earlier stars never need to be revisited (whatever they could absorb, the last star
// can absorb too). Each text position is retried at most once per pattern position, hence
// O(len(pattern) * len(text)). Redis's recursive matcher reaches the same answers (it prunes
// with its skipLongerMatches flag and gives up beyond 1000 nested stars; we have no such limit).
#include "core/glob.h"

#include <cstddef>
#include <utility>

namespace respite::core {
namespace {

unsigned char fold(unsigned char c, bool nocase) {
  return nocase && c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c - 'A' + 'a') : c;
}

unsigned char byte_at(std::string_view s, size_t i) { return static_cast<unsigned char>(s[i]); }

// The set starting at pattern[at] == '['. Returns whether `c` is accepted and the position
// after the set (the end of the pattern for an unterminated set).
std::pair<bool, size_t> match_set(std::string_view pattern, size_t at, unsigned char c, bool nocase) {
  const size_t n = pattern.size();
  size_t i = at + 1;
  const bool negate = i < n && pattern[i] == '^';
  if (negate) ++i;
  bool match = false;
  while (i < n) {
    const unsigned char ch = byte_at(pattern, i);
    if (ch == '\\' && n - i >= 2) {  // escaped member: compared exactly, even with nocase
      if (byte_at(pattern, i + 1) == c) match = true;
      i += 2;
    } else if (ch == ']') {
      ++i;
      break;
    } else if (n - i >= 3 && pattern[i + 1] == '-') {  // a range; its end may be ']'
      unsigned char lo = ch;
      unsigned char hi = byte_at(pattern, i + 2);
      if (lo > hi) std::swap(lo, hi);
      lo = fold(lo, nocase);
      hi = fold(hi, nocase);
      const unsigned char fc = fold(c, nocase);
      if (fc >= lo && fc <= hi) match = true;
      i += 3;
    } else {
      if (fold(ch, nocase) == fold(c, nocase)) match = true;
      ++i;
    }
  }
  return {match != negate, i};
}

// The one-byte token at pattern[at] (not '*'): whether it accepts `c`, and where the next
// token starts.
std::pair<bool, size_t> match_token(std::string_view pattern, size_t at, unsigned char c, bool nocase) {
  switch (pattern[at]) {
    case '?':
      return {true, at + 1};
    case '[':
      return match_set(pattern, at, c, nocase);
    case '\\':
      if (at + 1 < pattern.size()) ++at;  // a trailing '\' is itself
      [[fallthrough]];
    default:
      return {fold(byte_at(pattern, at), nocase) == fold(c, nocase), at + 1};
  }
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text, bool nocase) {
  // Redis's matcher never matches an empty text (not even with "**"); KEYS and SCAN MATCH
  // short-cut the pattern "*" to match everything, the empty key included.
  if (text.empty()) return pattern.empty() || pattern == "*";
  constexpr size_t kNone = static_cast<size_t>(-1);
  size_t p = 0;               // next pattern position
  size_t t = 0;               // next text position
  size_t star_p = kNone;      // pattern position after the last '*' run seen
  size_t star_t = 0;          // text position that '*' run was last tried to end at
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      while (p < pattern.size() && pattern[p] == '*') ++p;
      if (p == pattern.size()) return true;  // a trailing '*' takes the rest of the text
      star_p = p;
      star_t = t;
      continue;
    }
    if (p < pattern.size()) {
      auto [ok, next] = match_token(pattern, p, byte_at(text, t), nocase);
      if (ok) {
        p = next;
        ++t;
        continue;
      }
    }
    if (star_p == kNone) return false;
    p = star_p;  // let the last '*' absorb one more byte and retry from there
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;  // stars left match the empty rest
  return p == pattern.size();
}

}  // namespace respite::core
