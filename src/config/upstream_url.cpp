// Upstream URL parsing and redaction (see upstream_url.h for the accepted forms).
#include "config/upstream_url.h"

#include <arpa/inet.h>
#include <sys/un.h>

#include <cctype>
#include <cstdint>

namespace respite::config {
namespace {

constexpr uint16_t kDefaultPort = 6379;
// sun_path holds the path and its terminating NUL.
constexpr size_t kMaxUnixPath = sizeof(sockaddr_un{}.sun_path) - 1;

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX sequences. `what` names the part for the error message; the text itself
// is never echoed (it may be a password).
bool percent_decode(std::string_view in, std::string_view what, std::string& out, std::string& error) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    bool complete = i + 2 < in.size();
    int hi = complete ? hex_value(in[i + 1]) : -1;
    int lo = complete ? hex_value(in[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      error = "invalid percent-encoding in upstream URL " + std::string(what) +
              " (expected '%' followed by two hex digits)";
      return false;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

// Appends `in` to `out`, escaping all but unreserved characters and those in `keep`.
void percent_encode(std::string_view in, std::string& out, std::string_view keep = {}) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : in) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~' ||
        keep.find(c) != std::string_view::npos) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool parse_db(std::string_view text, int& db, std::string& error) {
  if (!all_digits(text) || text.size() > 9) {
    error = "upstream URL database '" + std::string(text) + "' is not an integer in 0.." +
            std::to_string(kMaxUpstreamDb);
    return false;
  }
  long value = std::stol(std::string(text));
  if (value > kMaxUpstreamDb) {
    error = "upstream URL database " + std::string(text) + " is out of range 0.." +
            std::to_string(kMaxUpstreamDb);
    return false;
  }
  db = static_cast<int>(value);
  return true;
}

bool parse_port(std::string_view text, uint16_t& port, std::string& error) {
  if (text.empty()) {
    error = "upstream URL has an empty port after ':'";
    return false;
  }
  if (!all_digits(text) || text.size() > 5 || std::stol(std::string(text)) < 1 ||
      std::stol(std::string(text)) > 65535) {
    error = "upstream URL port '" + std::string(text) + "' is not a number in 1..65535";
    return false;
  }
  port = static_cast<uint16_t>(std::stol(std::string(text)));
  return true;
}

bool valid_hostname(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  bool numeric = true;
  for (char c : host) {
    auto u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) || c == '-' || c == '.' || c == '_')) return false;
    if (!(std::isdigit(u) || c == '.')) numeric = false;
  }
  if (numeric) {  // looks like IPv4: must be a valid dotted quad
    in_addr addr{};
    return inet_pton(AF_INET, std::string(host).c_str(), &addr) == 1;
  }
  return true;
}

// TCP form; `rest` is everything after "redis://".
bool parse_tcp(std::string_view rest, UpstreamAddress& out, std::string& error) {
  // Userinfo ends at the last '@': host, port and db can never contain one, while an
  // unencoded password might.
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    std::string_view user = userinfo;
    std::string_view pass;
    bool has_pass = false;
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      user = userinfo.substr(0, colon);
      pass = userinfo.substr(colon + 1);
      has_pass = true;
    }
    if (!percent_decode(user, "user name", out.username, error)) return false;
    if (!percent_decode(pass, "password", out.password, error)) return false;
    if (!has_pass && out.username.empty()) {
      error = "upstream URL has an empty user name before '@'";
      return false;
    }
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    error = "upstream URL: query strings and fragments are not supported in redis:// URLs "
            "(put the database in the path: redis://host:port/db)";
    return false;
  }

  std::string_view hostport = rest;
  std::string_view path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  }

  std::string_view port_text;
  bool has_port = false;
  if (!hostport.empty() && hostport.front() == '[') {
    auto close = hostport.find(']');
    if (close == std::string_view::npos) {
      error = "upstream URL has an unterminated IPv6 address (missing ']')";
      return false;
    }
    std::string host(hostport.substr(1, close - 1));
    in6_addr addr{};
    if (inet_pton(AF_INET6, host.c_str(), &addr) != 1) {
      error = "upstream URL host '[" + host + "]' is not a valid IPv6 address";
      return false;
    }
    out.host = std::move(host);
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        error = "upstream URL has unexpected characters after the IPv6 address (expected ':port')";
        return false;
      }
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    std::string_view host = hostport;
    if (auto colon = hostport.find(':'); colon != std::string_view::npos) {
      host = hostport.substr(0, colon);
      port_text = hostport.substr(colon + 1);
      has_port = true;
      if (port_text.find(':') != std::string_view::npos) {
        error = "upstream URL host has several ':' (write IPv6 addresses in brackets: "
                "redis://[::1]:6379)";
        return false;
      }
    }
    if (host.empty()) {
      error = "upstream URL has no host (expected redis://host[:port][/db])";
      return false;
    }
    if (!valid_hostname(host)) {
      error = "upstream URL host '" + std::string(host) + "' is not a valid host name or IPv4 address";
      return false;
    }
    out.host = std::string(host);
  }

  out.port = kDefaultPort;
  if (has_port && !parse_port(port_text, out.port, error)) return false;

  out.db = 0;
  if (!path.empty() && !parse_db(path, out.db, error)) return false;
  return true;
}

// Unix form; `rest` is the path plus optional query.
bool parse_unix(std::string_view rest, UpstreamAddress& out, std::string& error) {
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (rest.find('#') != std::string_view::npos) {
    error = "upstream URL: fragments ('#') are not supported";
    return false;
  }
  if (!percent_decode(rest, "socket path", out.path, error)) return false;
  if (out.path.empty() || out.path.front() != '/') {
    error = "upstream unix socket path must be absolute (e.g. unix:/run/redis/redis.sock)";
    return false;
  }
  if (out.path.size() > kMaxUnixPath) {
    error = "upstream unix socket path is too long (" + std::to_string(out.path.size()) +
            " bytes; the limit is " + std::to_string(kMaxUnixPath) + ")";
    return false;
  }

  bool seen_db = false, seen_user = false, seen_pass = false;
  while (!query.empty()) {
    std::string_view item = query;
    if (auto amp = query.find('&'); amp != std::string_view::npos) {
      item = query.substr(0, amp);
      query.remove_prefix(amp + 1);
    } else {
      query = {};
    }
    if (item.empty()) continue;
    std::string_view name = item;
    std::string_view value;
    if (auto eq = item.find('='); eq != std::string_view::npos) {
      name = item.substr(0, eq);
      value = item.substr(eq + 1);
    }
    auto once = [&](bool& seen) {
      if (seen) {
        error = "upstream URL query parameter '" + std::string(name) + "' is given twice";
        return false;
      }
      seen = true;
      return true;
    };
    if (name == "db") {
      if (!once(seen_db) || !parse_db(value, out.db, error)) return false;
    } else if (name == "password") {
      if (!once(seen_pass) || !percent_decode(value, "password", out.password, error)) return false;
    } else if (name == "user" || name == "username") {
      if (!once(seen_user) || !percent_decode(value, "user name", out.username, error)) return false;
    } else {
      error = "upstream URL query parameter '" + std::string(name) +
              "' is not supported (known: db, password, user)";
      return false;
    }
  }
  return true;
}

}  // namespace

bool parse_upstream_url(std::string_view url, UpstreamAddress& out, std::string& error) {
  UpstreamAddress addr;
  addr.host.clear();
  bool ok = false;
  if (url.empty()) {
    error = "upstream URL is empty (expected redis://host:port or unix:/path)";
    return false;
  }
  if (iequals_prefix(url, "rediss://")) {
    error = "upstream URL uses rediss:// but TLS not supported: respite speaks plain TCP or "
            "unix sockets to Redis (use redis:// or unix:)";
    return false;
  }
  if (iequals_prefix(url, "redis://")) {
    ok = parse_tcp(url.substr(8), addr, error);
  } else if (iequals_prefix(url, "redis+unix://") || iequals_prefix(url, "redis-socket://") ||
             iequals_prefix(url, "unix://")) {
    std::string_view rest = url.substr(url.find("://") + 3);
    if (rest.empty() || rest.front() != '/') {
      error = "upstream URL: a unix socket URL needs an absolute path after '://' "
              "(e.g. unix:///run/redis/redis.sock)";
      return false;
    }
    addr.is_unix = true;
    ok = parse_unix(rest, addr, error);
  } else if (iequals_prefix(url, "unix:")) {
    addr.is_unix = true;
    ok = parse_unix(url.substr(5), addr, error);
  } else {
    // Name the scheme only when it clearly is one: text before a bare ':' might be a
    // user name followed by a password.
    auto colon = url.find("://");
    if (colon != std::string_view::npos && colon < 20) {
      error = "upstream URL scheme '" + std::string(url.substr(0, colon)) +
              "' is not supported (use redis://host:port[/db] or unix:/path)";
    } else {
      error = "upstream URL must start with redis://, unix:, redis+unix:// or redis-socket:// "
              "(e.g. redis://host:port[/db] or unix:/path/to/redis.sock)";
    }
    return false;
  }
  if (!ok) return false;
  out = std::move(addr);
  return true;
}

std::string redact_url(const UpstreamAddress& addr) {
  std::string s;
  if (addr.is_unix) {
    s = "unix:";
    percent_encode(addr.path, s, "/");
    char sep = '?';
    if (addr.db != 0) {
      s += sep;
      s += "db=" + std::to_string(addr.db);
      sep = '&';
    }
    if (!addr.username.empty()) {
      s += sep;
      s += "user=";
      percent_encode(addr.username, s);
      sep = '&';
    }
    if (!addr.password.empty()) {
      s += sep;
      s += "password=***";
    }
    return s;
  }
  s = "redis://";
  if (!addr.username.empty() || !addr.password.empty()) {
    percent_encode(addr.username, s);
    if (!addr.password.empty()) s += ":***";
    s += '@';
  }
  if (addr.host.find(':') != std::string::npos) {
    s += '[' + addr.host + ']';
  } else {
    s += addr.host;
  }
  s += ':' + std::to_string(addr.port);
  if (addr.db != 0) s += '/' + std::to_string(addr.db);
  return s;
}

}  // namespace respite::config
