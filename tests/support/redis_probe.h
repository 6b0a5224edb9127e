// Observations of Redis's own state, for tests that must await something Redis does not
// announce (a client is now blocked, a disconnect has been processed, a subscriber is gone).
// Each wait is a bounded poll of an observable condition, never a fixed sleep.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/net.h"
#include "support/process.h"

namespace respite::test {

// Polls `condition` every `interval` until it holds (true) or `deadline` passes (false).
bool poll_until(const std::function<bool()>& condition, Deadline deadline,
                std::chrono::milliseconds interval = std::chrono::milliseconds(2));

// The integer `field` of `INFO <section>` (e.g. "clients", "blocked_clients"); nullopt when the
// reply is not readable or lacks the field.
std::optional<long long> info_integer(Client& redis, const std::string& section, std::string_view field);

// Waits until Redis reports exactly `n` blocked clients (INFO clients, blocked_clients).
bool wait_for_blocked_clients(Client& redis, long long n, Deadline deadline);

// CLIENT LIST, one map of field -> value per connected client.
std::vector<std::map<std::string, std::string>> client_list(Client& redis);

// One RawConn request: writes `args` as a RESP command; false if it could not be written.
bool send_command(RawConn& conn, const std::vector<std::string>& args);

// The next complete reply on `conn`, or "<none>" when none arrives within `within`
// (EOF and reset also give "<none>"; conn.closed() tells them apart).
std::string next_reply(RawConn& conn, Clock::duration within = std::chrono::seconds(5));

// RESP2 encodings, to spell out expected wire bytes.
std::string resp_bulk(std::string_view s);                  // $<len>\r\n<s>\r\n
std::string resp_array(const std::vector<std::string>& encoded_items);  // *<n>\r\n + items as given
std::string resp_bulk_array(const std::vector<std::string>& items);    // an array of bulk strings

inline bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace respite::test
