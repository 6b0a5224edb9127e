// DeadLetter: the file where the replay puts journaled writes that Redis refused (for
// example -WRONGTYPE), with the error, for operators to inspect. A write goes here instead
// of being retried forever; the journal can then be acknowledged past it.
//
// Format: JSON Lines, one object per refused write, fields in this order:
//   {"seq":43,"db":0,"time_ms":1700000000000,"failed_ms":1700000060000,
//    "command":["HSET","k","f","v"],"error":"WRONGTYPE Operation against a key holding the wrong kind of value"}
// (one line). seq, db and time_ms are the journal record's; failed_ms is when Redis refused
// it. "command" holds the arguments and "error" the error text (without the leading '-' and
// the trailing CRLF), both as JSON strings in which every character stands for one byte:
// printable ASCII as itself (with \" and \\), \n \r \t as those escapes, and every other byte
// (controls, 0x7f, and 0x80..0xff) as \u00XX. So the lines are valid JSON whatever the
// bytes (they need not be UTF-8), and a decoded string's code points, all below 256, are the
// original bytes: in Python, `s.encode("latin-1")` (proto/journal-format.md has a reader).
//
// Durability: each line is written with one append and fdatasynced before append() returns,
// so a line that append() reported is on disk. A crash in the middle of an append can leave
// an incomplete last line; open() cuts it off (with a warn line), so every line in the file
// is complete JSON. Such a write was not reported, so the replay did not acknowledge it and
// sends it again after the restart.
//
// Blocking I/O on the caller's thread (the event loop), like the journal; single-threaded;
// the file is created with mode 0600. No exceptions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fallback/journal.h"

namespace respite::fallback {

class DeadLetter {
 public:
  // Opens `path` for appending, creating it if missing. Null with `error` set on failure.
  static std::unique_ptr<DeadLetter> open(const std::string& path, std::string& error);
  ~DeadLetter();
  DeadLetter(const DeadLetter&) = delete;
  DeadLetter& operator=(const DeadLetter&) = delete;

  // Appends the line for record `r` refused with `error_reply` (as Redis sent it, with or
  // without the '-' and the CRLF) at now_ms, fdatasynced. On failure nothing of the line
  // stays in the file and `error` is set.
  bool append(const JournalRecord& r, std::string_view error_reply, uint64_t now_ms, std::string& error);

  uint64_t count() const { return count_; }  // lines appended by this process
  const std::string& path() const { return path_; }

 private:
  DeadLetter(std::string path, int fd, uint64_t size);

  std::string path_;    // the file, as given to open()
  int fd_;              // O_APPEND, owned
  uint64_t size_;       // the file's size: whole lines only
  uint64_t count_ = 0;  // lines appended since open()
  std::string line_;    // append()'s line, reused
};

}  // namespace respite::fallback
