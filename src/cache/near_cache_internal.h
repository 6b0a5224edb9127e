// Helpers shared by the NearCache source files (near_cache*.cpp): the cookies of the cache's
// own upstream requests, the coalescing key of a request, and small RESP2 readers.
#pragma once

#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cmd/command_policy.h"
#include "core/parse.h"

namespace respite::cache::detail {

// Cookies of the cache's own requests: what the reply is for, and whose.
inline constexpr int kPartShift = 56;
inline constexpr uint64_t kIndexMask = (uint64_t{1} << 24) - 1;
enum class Kind : uint8_t { Read = 1, Ttl, Tracking, Ping, Scan };

inline uint64_t make_cookie(Kind k, uint64_t id, uint64_t index = 0) {
  return (static_cast<uint64_t>(k) << kPartShift) | (id << 24) | index;
}
inline Kind cookie_kind(uint64_t c) { return static_cast<Kind>(c >> kPartShift); }
inline uint64_t cookie_id(uint64_t c) { return (c >> 24) & ((uint64_t{1} << 32) - 1); }
inline uint64_t cookie_index(uint64_t c) { return c & kIndexMask; }

// The request as a coalescing key: the command name in lower case, the arguments, and the
// connection (requests only wait for a fetch on their own connection).
inline uint64_t identity_hash(std::span<const std::string_view> args, int conn_index) {
  char name[64];
  size_t n = std::min(args[0].size(), sizeof name);
  for (size_t i = 0; i < n; ++i) name[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(args[0][i])));
  uint64_t h = XXH3_64bits_withSeed(name, n, static_cast<uint64_t>(conn_index) + 1);
  for (size_t i = 1; i < args.size(); ++i) {
    h = XXH3_64bits_withSeed(args[i].data(), args[i].size(), h ^ (args[i].size() * 0x9E3779B97F4A7C15ull));
  }
  return h;
}

inline bool same_request(const std::vector<std::string>& stored, std::span<const std::string_view> args) {
  if (stored.size() != args.size()) return false;
  if (!cmd::iequals(stored[0], args[0])) return false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (stored[i] != args[i]) return false;
  }
  return true;
}

// Reads one RESP2 line ("<prefix><text>\r\n") at `pos`; false if incomplete.
inline bool read_line(std::string_view raw, size_t& pos, std::string_view& line) {
  size_t end = raw.find("\r\n", pos);
  if (end == std::string_view::npos) return false;
  line = raw.substr(pos, end - pos);
  pos = end + 2;
  return true;
}

// Splits a RESP2 array of bulk strings / nulls into its elements' raw bytes. False if `raw`
// is anything else (an error, or a nested type).
inline bool split_bulk_array(std::string_view raw, std::vector<std::string_view>& out) {
  size_t pos = 0;
  std::string_view line;
  if (!read_line(raw, pos, line) || line.empty() || line[0] != '*') return false;
  int64_t n = 0;
  if (!core::parse_integer(line.substr(1), n) || n < 0) return false;
  out.clear();
  for (int64_t i = 0; i < n; ++i) {
    size_t start = pos;
    if (!read_line(raw, pos, line) || line.empty() || line[0] != '$') return false;
    int64_t len = 0;
    if (!core::parse_integer(line.substr(1), len)) return false;
    if (len >= 0) {
      if (pos + static_cast<size_t>(len) + 2 > raw.size()) return false;
      pos += static_cast<size_t>(len) + 2;
    }
    out.push_back(raw.substr(start, pos - start));
  }
  return pos == raw.size();
}


}  // namespace respite::cache::detail
