#include "core/errors.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <string>

namespace respite::errors {
namespace {

// Command names are echoed lowercased and cut short, and never with control bytes, so
// an error line cannot be broken by what the client sent.
std::string printable_name(std::string_view name) {
  std::string out;
  for (char c : name.substr(0, 64)) {
    unsigned char u = static_cast<unsigned char>(c);
    out.push_back(std::isprint(u) && c != '\'' ? static_cast<char>(std::tolower(u)) : '?');
  }
  return out;
}

}  // namespace

std::string protocol_error(std::string_view detail) {
  std::string s = "-ERR ";
  s.append(detail);
  s.append("\r\n");
  return s;
}

// Concatenation by append (GCC 12 warns falsely about operator+ chains under -O2).
std::string concat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) out.append(p);
  return out;
}

std::string not_supported(std::string_view command, std::string_view why) {
  return concat({"-ERR '", printable_name(command), "' is not supported through respite: ", why, "\r\n"});
}

std::string pinned_limit(size_t max_pinned) {
  return concat({"-ERR pinned connection limit reached: all ", std::to_string(max_pinned),
                 " dedicated upstream connections are in use (upstream.max_pinned)\r\n"});
}

std::string denied(std::string_view command) {
  return concat({"-ERR command '", printable_name(command),
                 "' is denied by respite's configuration (client.deny_commands)\r\n"});
}

std::string not_in_multi(std::string_view command) {
  std::string upper = printable_name(command);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return concat({"-ERR respite: ", upper, " is not supported inside MULTI\r\n"});
}

std::string wrong_arity(std::string_view command) {
  return concat({"-ERR wrong number of arguments for '", printable_name(command), "' command\r\n"});
}

std::string_view noproto() { return "-NOPROTO sorry, this protocol version is not supported\r\n"; }

}  // namespace respite::errors
