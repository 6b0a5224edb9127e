// RESP encoding helpers for the few messages respite composes itself (upstream
// handshake commands, re-encoded inline requests, local replies). Forwarded traffic is
// never re-encoded.
#pragma once

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include "buf/buffer.h"

namespace respite::resp {

// Appends "*<n>\r\n" then "$<len>\r\n<arg>\r\n" per argument.
void write_command(buf::Buffer& out, std::span<const std::string_view> args);
void write_command(buf::Buffer& out, std::initializer_list<std::string_view> args);
void write_bulk(buf::Buffer& out, std::string_view s);
void write_integer(buf::Buffer& out, long long v);
// "$<len>\r\n<s>\r\n" appended to `out`, or as a string (local replies).
void append_bulk(std::string& out, std::string_view s);
std::string bulk_string(std::string_view s);

}  // namespace respite::resp
