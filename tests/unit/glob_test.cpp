// core::glob_match: Redis KEYS semantics, including its quirks with odd sets and escapes.
// Every case with nocase = false was checked against redis-server 7.0.15's KEYS.
#include "core/glob.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>

using respite::core::glob_match;

namespace {

TEST(Glob, Wildcards) {
  EXPECT_TRUE(glob_match("h?llo", "hello"));
  EXPECT_TRUE(glob_match("h?llo", "hallo"));
  EXPECT_FALSE(glob_match("h?llo", "hllo"));
  EXPECT_TRUE(glob_match("h*llo", "hllo"));
  EXPECT_TRUE(glob_match("h*llo", "heeeello"));
  EXPECT_FALSE(glob_match("h*llo", "hellx"));
  EXPECT_TRUE(glob_match("user:*", "user:42"));
  EXPECT_TRUE(glob_match("user:*", "user:"));
  EXPECT_FALSE(glob_match("user:*", "users:1"));
  EXPECT_TRUE(glob_match("*a*a*b", "aaab"));
  EXPECT_TRUE(glob_match("a*b*c", "abbbc"));
  EXPECT_FALSE(glob_match("a*b*c", "acb"));
  EXPECT_TRUE(glob_match("*?", "x"));
  EXPECT_TRUE(glob_match("a**", "a"));
  EXPECT_TRUE(glob_match("*:*:*", "a:b:c"));
  EXPECT_FALSE(glob_match("*:*:*", "a:b"));
  EXPECT_FALSE(glob_match("", "a"));
  EXPECT_FALSE(glob_match("abc", "ab"));
  EXPECT_FALSE(glob_match("ab", "abc"));
}

TEST(Glob, EmptyTextMatchesOnlyEmptyPatternAndLoneStar) {
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_TRUE(glob_match("*", ""));    // KEYS * lists the empty key
  EXPECT_FALSE(glob_match("**", ""));  // Redis's matcher itself never matches ""
  EXPECT_FALSE(glob_match("?", ""));
  EXPECT_FALSE(glob_match("[^a]", ""));
}

TEST(Glob, Sets) {
  EXPECT_TRUE(glob_match("h[ae]llo", "hello"));
  EXPECT_TRUE(glob_match("h[ae]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[ae]llo", "hillo"));
  EXPECT_TRUE(glob_match("h[^e]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[^e]llo", "hello"));
  EXPECT_TRUE(glob_match("h[a-b]llo", "hbllo"));
  EXPECT_FALSE(glob_match("h[a-b]llo", "hcllo"));
  EXPECT_TRUE(glob_match("[!a]", "!"));  // '!' is no negation in Redis
  EXPECT_TRUE(glob_match("[!a]", "a"));
  EXPECT_FALSE(glob_match("[!a]", "b"));
  EXPECT_TRUE(glob_match("[--]", "-"));
  EXPECT_TRUE(glob_match("[-a]", "-"));
  EXPECT_TRUE(glob_match("[-a]", "a"));
}

TEST(Glob, ReversedRangesAreAccepted) {
  EXPECT_TRUE(glob_match("[z-a]", "m"));
  EXPECT_TRUE(glob_match("[z-a]", "a"));
  EXPECT_TRUE(glob_match("[z-a]", "z"));
  EXPECT_FALSE(glob_match("[z-a]", "A"));
  EXPECT_TRUE(glob_match("[Z-a]", "_"));  // '_' lies between 'Z' and 'a' in ASCII
}

TEST(Glob, RangeEndingInBracketLeavesSetOpen) {
  // "[a-]" is the range 'a'..']' (reversed to ']'..'a') and the set is never closed.
  EXPECT_TRUE(glob_match("[a-]", "a"));
  EXPECT_TRUE(glob_match("[a-]", "]"));
  EXPECT_TRUE(glob_match("[a-]", "_"));
  EXPECT_FALSE(glob_match("[a-]", "-"));
  EXPECT_FALSE(glob_match("[a-]", "b"));
  // With one more ']' the set closes after the range.
  EXPECT_TRUE(glob_match("[a-]]", "^"));
  EXPECT_FALSE(glob_match("[a-]]", "a]"));
}

TEST(Glob, EmptyAndUnterminatedSets) {
  EXPECT_FALSE(glob_match("[]", "]"));   // the set closes at once: empty, matches nothing
  EXPECT_FALSE(glob_match("[]a]", "a]"));
  EXPECT_FALSE(glob_match("[]a]", "]"));
  EXPECT_TRUE(glob_match("[^]", "x"));   // an empty set negated: any byte
  EXPECT_TRUE(glob_match("[abc", "a"));  // unterminated: the set runs to the end
  EXPECT_TRUE(glob_match("[abc", "c"));
  EXPECT_FALSE(glob_match("[abc", "d"));
  EXPECT_FALSE(glob_match("[abc", "ab"));
  EXPECT_FALSE(glob_match("[", "["));
  EXPECT_TRUE(glob_match("[^", "x"));
  EXPECT_TRUE(glob_match("[^a", "b"));
  EXPECT_FALSE(glob_match("[^a", "a"));
  EXPECT_TRUE(glob_match("[a-b", "b"));
  EXPECT_TRUE(glob_match("[a-", "-"));   // too short for a range: 'a' and '-'
}

TEST(Glob, Escapes) {
  EXPECT_TRUE(glob_match("\\*", "*"));
  EXPECT_FALSE(glob_match("\\*", "a"));
  EXPECT_TRUE(glob_match("\\?x", "?x"));
  EXPECT_FALSE(glob_match("\\?x", "ax"));
  EXPECT_TRUE(glob_match("\\[a\\]", "[a]"));
  EXPECT_TRUE(glob_match("\\a", "a"));
  EXPECT_TRUE(glob_match("\\", "\\"));    // a trailing backslash is itself
  EXPECT_TRUE(glob_match("a\\", "a\\"));
  EXPECT_TRUE(glob_match("[\\]]", "]"));  // escaped ']' inside a set
  EXPECT_FALSE(glob_match("[\\]]", "\\"));
  EXPECT_TRUE(glob_match("[\\-a]", "-"));
  EXPECT_FALSE(glob_match("[\\-a]", "\\"));
  EXPECT_TRUE(glob_match("[a\\-z]", "-"));  // escaped '-' is no range
  EXPECT_FALSE(glob_match("[a\\-z]", "m"));
  EXPECT_TRUE(glob_match("[\\", "\\"));     // a lone '\' at the end of a set is itself
  EXPECT_TRUE(glob_match("[a-\\]", "\\"));  // range 'a'..'\' reversed, then ']' closes
  EXPECT_TRUE(glob_match("[a-\\]", "_"));
  EXPECT_FALSE(glob_match("[a-\\]", "b"));
}

TEST(Glob, NoCase) {
  EXPECT_TRUE(glob_match("HELLO*", "hello world", true));
  EXPECT_FALSE(glob_match("HELLO*", "hello world", false));
  EXPECT_TRUE(glob_match("[A]", "a", true));
  EXPECT_TRUE(glob_match("[A-C]x", "bX", true));
  EXPECT_FALSE(glob_match("[\\A]", "a", true));  // escaped set members compare exactly
  EXPECT_TRUE(glob_match("\\A", "a", true));     // an escaped literal outside a set folds
  EXPECT_FALSE(glob_match("[Z-a]", "m", true));  // bounds ordered first, then folded: z..a
}

TEST(Glob, BinaryBytes) {
  using namespace std::string_view_literals;
  EXPECT_TRUE(glob_match("a\0b"sv, "a\0b"sv));
  EXPECT_TRUE(glob_match("a?b", "a\0b"sv));
  EXPECT_FALSE(glob_match("a\0b"sv, "a\0c"sv));
  EXPECT_TRUE(glob_match("[\x80-\xff]", "\x90"));
  EXPECT_FALSE(glob_match("[\x80-\xff]", "a"));
}

TEST(Glob, PathologicalPatternsStayLinearInStars) {
  const std::string text(10000, 'a');
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(glob_match("a*a*a*a*a*a*b", text));
  EXPECT_TRUE(glob_match("a*a*a*a*a*a*a", text));
  std::string many;
  for (int i = 0; i < 200; ++i) many += "*a";
  EXPECT_FALSE(glob_match(many + "b", text));
  EXPECT_TRUE(glob_match(many, text));
  EXPECT_FALSE(glob_match("*[^a]*", text));
  auto elapsed = std::chrono::steady_clock::now() - start;
  // Exponential backtracking would not finish; O(pattern * text) is a few million steps.
  EXPECT_LT(elapsed, std::chrono::seconds(2));
}

}  // namespace
