// DeadLetter: JSON Lines encoding (bytes as Latin-1 code points, see dead_letter.h), appends
// that are cut back on failure, and the cut of an incomplete last line at open.
#include "fallback/dead_letter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "obs/log.h"

namespace respite::fallback {
namespace {

constexpr size_t kTailChunk = 64 << 10;  // open() looks for the last newline this much at a time

std::string os_error(std::string_view what, const std::string& path, int err) {
  return std::string(what) + " " + path + ": " + std::strerror(err);
}

// Appends `bytes` as a JSON string, one character per byte (see dead_letter.h).
void append_json_string(std::string& out, std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\r') {
      out.append("\\r");
    } else if (c == '\t') {
      out.append("\\t");
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(ch);
    } else {
      out.append("\\u00");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  out.push_back('"');
}

// The error text without RESP's leading '-' and trailing CRLF.
std::string_view error_text(std::string_view reply) {
  if (!reply.empty() && reply.front() == '-') reply.remove_prefix(1);
  if (reply.size() >= 2 && reply.substr(reply.size() - 2) == "\r\n") reply.remove_suffix(2);
  return reply;
}

// The size of the file's whole lines: up to and including its last '\n' (0 if none).
bool whole_lines_size(int fd, uint64_t size, uint64_t& whole, std::string& error, const std::string& path) {
  std::string buf(kTailChunk, '\0');
  uint64_t end = size;
  while (end > 0) {
    const auto n = static_cast<size_t>(std::min<uint64_t>(kTailChunk, end));
    const uint64_t from = end - n;
    ssize_t r;
    do {
      r = ::pread(fd, buf.data(), n, static_cast<off_t>(from));
    } while (r < 0 && errno == EINTR);
    if (r != static_cast<ssize_t>(n)) {
      error = r < 0 ? os_error("read", path, errno) : "read " + path + ": the file shrank while it was read";
      return false;
    }
    const auto nl = std::string_view(buf.data(), n).rfind('\n');
    if (nl != std::string_view::npos) {
      whole = from + nl + 1;
      return true;
    }
    end = from;
  }
  whole = 0;
  return true;
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

DeadLetter::DeadLetter(std::string path, int fd, uint64_t size) : path_(std::move(path)), fd_(fd), size_(size) {}

DeadLetter::~DeadLetter() { ::close(fd_); }

std::unique_ptr<DeadLetter> DeadLetter::open(const std::string& path, std::string& error) {
  error.clear();
  const int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = os_error("open dead-letter file", path, errno);
    return nullptr;
  }
  std::unique_ptr<DeadLetter> d(new DeadLetter(path, fd, 0));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    error = os_error("stat", path, errno);
    return nullptr;
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  uint64_t whole = 0;
  if (!whole_lines_size(fd, size, whole, error, path)) return nullptr;
  if (whole != size) {
    if (::ftruncate(fd, static_cast<off_t>(whole)) != 0 || ::fsync(fd) != 0) {
      error = os_error("cut the incomplete last line of", path, errno);
      return nullptr;
    }
    obs::warn("dead-letter file {}: incomplete last line ({} bytes) cut off", path, size - whole);
  }
  d->size_ = whole;
  // Make a new file's directory entry durable (harmless for an existing one).
  const int dir = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool dir_ok = dir >= 0 && ::fsync(dir) == 0;
  if (!dir_ok) error = os_error("fsync the directory of", path, errno);
  if (dir >= 0) ::close(dir);
  return dir_ok ? std::move(d) : nullptr;
}

bool DeadLetter::append(const JournalRecord& r, std::string_view error_reply, uint64_t now_ms, std::string& error) {
  line_.clear();
  line_.append("{\"seq\":").append(std::to_string(r.seq));
  line_.append(",\"db\":").append(std::to_string(r.db));
  line_.append(",\"time_ms\":").append(std::to_string(r.time_ms));
  line_.append(",\"failed_ms\":").append(std::to_string(now_ms));
  line_.append(",\"command\":[");
  for (size_t i = 0; i < r.args.size(); ++i) {
    if (i > 0) line_.push_back(',');
    append_json_string(line_, r.args[i]);
  }
  line_.append("],\"error\":");
  append_json_string(line_, error_text(error_reply));
  line_.append("}\n");

  const char* p = line_.data();
  size_t left = line_.size();
  bool ok = true;
  while (left > 0 && ok) {
    const ssize_t w = ::write(fd_, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      ok = false;
      break;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  if (!ok) error = os_error("write", path_, errno);
  if (ok && ::fdatasync(fd_) != 0) {
    error = os_error("fdatasync", path_, errno);
    ok = false;
  }
  if (!ok) {
    if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
      obs::error("dead-letter file {}: cutting back a failed line failed: {}", path_, std::strerror(errno));
    }
    return false;
  }
  size_ += line_.size();
  ++count_;
  if (line_.capacity() > (size_t{1} << 20)) std::string().swap(line_);
  return true;
}

}  // namespace respite::fallback
