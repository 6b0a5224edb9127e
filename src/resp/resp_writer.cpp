#include "resp/resp_writer.h"

#include <charconv>

namespace respite::resp {
namespace {

void write_header(buf::Buffer& out, char type, long long n) {
  char tmp[24];
  tmp[0] = type;
  auto [p, ec] = std::to_chars(tmp + 1, tmp + sizeof(tmp) - 2, n);
  *p++ = '\r';
  *p++ = '\n';
  out.append(tmp, static_cast<size_t>(p - tmp));
}

}  // namespace

void write_bulk(buf::Buffer& out, std::string_view s) {
  write_header(out, '$', static_cast<long long>(s.size()));
  out.append(s);
  out.append("\r\n", 2);
}

void append_bulk(std::string& out, std::string_view s) {
  out.append("$").append(std::to_string(s.size())).append("\r\n").append(s).append("\r\n");
}

std::string bulk_string(std::string_view s) {
  std::string out;
  append_bulk(out, s);
  return out;
}

void write_command(buf::Buffer& out, std::span<const std::string_view> args) {
  write_header(out, '*', static_cast<long long>(args.size()));
  for (auto a : args) write_bulk(out, a);
}

void write_command(buf::Buffer& out, std::initializer_list<std::string_view> args) {
  write_command(out, std::span<const std::string_view>(args.begin(), args.size()));
}

void write_integer(buf::Buffer& out, long long v) { write_header(out, ':', v); }

}  // namespace respite::resp
