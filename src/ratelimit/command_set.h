// CommandSet: the commands one rate-limit rule counts, compiled from its `commands` list
// (classes such as "@write" and names such as "GET" or "config|set") into one byte per
// command-table entry, so a request is matched with one lookup.
#pragma once

#include <string>
#include <vector>

#include "cmd/command_table.h"
#include "config/config.h"

namespace respite::ratelimit {

class CommandSet {
 public:
  // The built-in class names (without '@'), for documentation and error messages.
  static const std::vector<std::string>& builtin_classes();

  // Compiles `words` against `table`, with the user-defined `classes` available as
  // "@name". False with `error` for an unknown command, subcommand or class.
  bool build(const std::vector<std::string>& words, const std::vector<config::RateLimitClass>& classes,
             const cmd::CommandTable& table, std::string& error);

  // Whether a request of this command counts (`info` null: not in the table; only @all
  // counts those). `info` comes from the table the set was built with.
  bool matches(const cmd::CommandInfo* info) const { return entries_[info ? info->index : entries_.size() - 1] != 0; }
  // One byte per CommandInfo::index, then one for commands not in the table (the Limiter's
  // fast path reads it directly).
  const uint8_t* bytes() const { return entries_.data(); }

 private:
  bool add_word(const std::string& word, const std::vector<config::RateLimitClass>& classes,
                const cmd::CommandTable& table, bool in_class, std::string& error);

  std::vector<uint8_t> entries_;  // per command-table entry (CommandInfo::index), then unknown commands: counted
};

}  // namespace respite::ratelimit
