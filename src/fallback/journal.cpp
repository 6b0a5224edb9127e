// Journal: encoding, recovery scan, appends, acknowledgement and the reader.
//
// Reading goes through a Window: a buffer over the file refilled by pread from the offset
// asked for, in chunks of at least kReadChunk, so the sequential scans (recovery, reader,
// the search for a later record) make one system call per chunk, not per record. examine()
// judges the record at an offset against the format (journal.h); recovery and the reader
// add the sequence rule (each seq above the one before).
//
// Why a length running past the end of the file is normally a torn tail: an append is one
// write of one record, so a crash can leave only the start of the last record. But a flipped
// bit in a length in the middle of the file looks the same, and cutting there would throw
// away acknowledged records without a trace. So before calling it torn, recovery looks for a
// valid record further on whose seq is the one that would follow (the previous seq + 2, or
// the suspect's own seq + 1): finding one makes it corruption, and the bytes are kept. The
// seq filter keeps this search linear: a candidate is checksummed only if its seq fits.
#include "fallback/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>

#include "obs/log.h"

namespace respite::fallback {
namespace {

constexpr std::string_view kAckMagic = "RSPJACK1";
constexpr size_t kAckSize = 8 + 8 + 8 + 4;          // magic, acked seq, seq floor, checksum
constexpr size_t kFixedPayload = 8 + 4 + 8 + 4;     // seq, db, time_ms, argc
constexpr size_t kReadChunk = size_t{256} << 10;    // a Window reads at least this much
constexpr size_t kCopyChunk = size_t{1} << 20;      // quarantine copies this much at a time
constexpr size_t kKeepBuffer = size_t{1} << 20;     // append()'s buffer shrinks back past this
constexpr uint64_t kMaxSeq = uint64_t{1} << 62;     // a larger seq is corruption, never given
constexpr uint64_t kSyncIntervalMs = 1000;          // EverySec
constexpr uint64_t kSmallestRecord = Journal::kRecordHeaderSize + Journal::kMinPayload;

void put_u32(std::string& out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, sizeof b);
}

void put_u64(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, sizeof b);
}

uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

uint64_t get_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string os_error(std::string_view what, const std::string& path, int err) {
  return std::string(what) + " " + path + ": " + std::strerror(err);
}

// Writes all of data at `off`, retrying short writes and EINTR. errno is kept on failure.
bool pwrite_all(int fd, const char* data, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return true;
}

// Reads exactly n bytes at `off`. False with errno set, or with errno 0 at an early EOF.
bool pread_exact(int fd, char* out, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t r = ::pread(fd, out, n, static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (r == 0) {
      errno = 0;
      return false;
    }
    out += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
  }
  return true;
}

std::string read_error(const std::string& path) {
  return errno == 0 ? "read " + path + ": the file is shorter than expected" : os_error("read", path, errno);
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Makes the directory's entries (a create, a rename) durable.
bool fsync_dir(const std::string& dir, std::string& error) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    error = os_error("open directory", dir, errno);
    return false;
  }
  bool ok = ::fsync(fd) == 0;
  if (!ok) error = os_error("fsync directory", dir, errno);
  ::close(fd);
  return ok;
}

// Cuts the file to `size` and makes that durable.
bool truncate_durably(int fd, uint64_t size, const std::string& path, std::string& error) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    error = os_error("truncate", path, errno);
    return false;
  }
  if (::fsync(fd) != 0) {
    error = os_error("fsync", path, errno);
    return false;
  }
  return true;
}

// Sequential reads of the file's first `end` bytes through a buffer (see the top).
struct Window {
  int fd = -1;              // not owned
  const std::string* path = nullptr;  // for error messages
  uint64_t end = 0;         // reads stay below this
  std::string buf;          // bytes [buf_off, buf_off + buf_len) of the file
  uint64_t buf_off = 0;
  size_t buf_len = 0;

  // Points at `len` bytes at `off` (off + len <= end), valid until the next get(). Null on
  // an I/O error, with `error` set.
  const char* get(uint64_t off, size_t len, std::string& error) {
    if (off >= buf_off && off + len <= buf_off + buf_len) return buf.data() + (off - buf_off);
    const auto want = static_cast<size_t>(std::min<uint64_t>(std::max(len, kReadChunk), end - off));
    if (buf.size() < want) buf.resize(want);
    buf_len = 0;
    if (!pread_exact(fd, buf.data(), want, off)) {
      error = read_error(*path);
      return nullptr;
    }
    buf_off = off;
    buf_len = want;
    return buf.data();
  }
};

enum class Verdict : uint8_t { End, Ok, Torn, Corrupt, IoError };

// A sound record's fields; `args` points into the Window (valid until its next get()).
struct RecordView {
  uint64_t seq = 0;
  uint32_t db = 0;
  uint64_t time_ms = 0;
  uint32_t argc = 0;
  const char* args = nullptr;  // argc x (u32 len | bytes)
  uint64_t size = 0;           // the whole record: header and payload
};

// Checks the payload's structure: null if sound (and `v` filled), else what is wrong.
const char* check_payload(const char* p, size_t len, RecordView& v) {
  v.seq = get_u64(p);
  v.db = get_u32(p + 8);
  v.time_ms = get_u64(p + 12);
  v.argc = get_u32(p + 20);
  if (v.seq == 0 || v.seq > kMaxSeq) return "impossible seq";
  if (v.db > static_cast<uint32_t>(INT_MAX)) return "impossible db";
  if (v.argc == 0) return "a record without a command";
  size_t rest = len - kFixedPayload;
  if (v.argc > rest / 4) return "more arguments than the payload holds";
  const char* q = p + kFixedPayload;
  for (uint32_t i = 0; i < v.argc; ++i) {
    if (rest < 4) return "more arguments than the payload holds";
    const uint32_t n = get_u32(q);
    q += 4;
    rest -= 4;
    if (n > rest) return "an argument runs past the payload";
    q += n;
    rest -= n;
  }
  if (rest != 0) return "bytes left over after the last argument";
  v.args = p + kFixedPayload;
  return nullptr;
}

// Judges the record at `off`. `why` says what is wrong (or the I/O error).
Verdict examine(Window& w, uint64_t off, RecordView& v, std::string& why) {
  const uint64_t avail = w.end - off;
  if (avail == 0) return Verdict::End;
  if (avail < Journal::kRecordHeaderSize) {
    why = "incomplete record header";
    return Verdict::Torn;
  }
  const char* h = w.get(off, Journal::kRecordHeaderSize, why);
  if (h == nullptr) return Verdict::IoError;
  const uint32_t len = get_u32(h);
  const uint32_t sum = get_u32(h + 4);
  if (len < Journal::kMinPayload || len > Journal::kMaxPayload) {
    why = "impossible payload length " + std::to_string(len);
    return Verdict::Corrupt;
  }
  if (len > avail - Journal::kRecordHeaderSize) {
    why = "record runs past the end of the file";
    return Verdict::Torn;
  }
  const char* p = w.get(off + Journal::kRecordHeaderSize, len, why);
  if (p == nullptr) return Verdict::IoError;
  if (XXH32(p, len, 0) != sum) {
    why = "checksum mismatch";
    return Verdict::Corrupt;
  }
  if (const char* bad = check_payload(p, len, v)) {
    why = bad;
    return Verdict::Corrupt;
  }
  v.size = Journal::kRecordHeaderSize + len;
  return Verdict::Ok;
}

// Whether [off, end) holds only zero bytes.
bool all_zero(Window& w, uint64_t off, bool& zero, std::string& error) {
  zero = true;
  while (off < w.end && zero) {
    const auto n = static_cast<size_t>(std::min<uint64_t>(kReadChunk, w.end - off));
    const char* p = w.get(off, n, error);
    if (p == nullptr) return false;
    zero = std::all_of(p, p + n, [](char c) { return c == 0; });
    off += n;
  }
  return true;
}

// Looks in (off, end) for a sound record that would follow the suspect at `off` (see the
// top). found_at: its offset, or 0 if there is none.
bool find_later_record(Window& w, uint64_t off, uint64_t prev_seq, uint64_t& found_at, std::string& error) {
  found_at = 0;
  std::string why;
  uint64_t want[2] = {prev_seq != 0 ? prev_seq + 2 : 0, 0};
  if (w.end - off >= Journal::kRecordHeaderSize + 8) {
    const char* s = w.get(off + Journal::kRecordHeaderSize, 8, error);
    if (s == nullptr) return false;
    want[1] = get_u64(s) + 1;
  }
  for (uint64_t o = off + 1; o + kSmallestRecord <= w.end; ++o) {
    const char* h = w.get(o, Journal::kRecordHeaderSize + 8, error);
    if (h == nullptr) return false;
    const uint32_t len = get_u32(h);
    const uint64_t seq = get_u64(h + Journal::kRecordHeaderSize);
    if (seq == 0 || (seq != want[0] && seq != want[1])) continue;
    if (len < Journal::kMinPayload || len > w.end - o - Journal::kRecordHeaderSize) continue;
    RecordView v;
    const Verdict verdict = examine(w, o, v, why);
    if (verdict == Verdict::IoError) {
      error = why;
      return false;
    }
    if (verdict == Verdict::Ok) {
      found_at = o;
      return true;
    }
  }
  return true;
}

// Settles what the bad bytes from `off` to the end are (see the top): a zero-filled rest is a
// torn tail; a torn-looking record with a valid one after it is corruption. For a torn tail,
// `why` becomes "bytes" or "zero bytes" (for the report).
bool classify_tail(Window& w, uint64_t off, uint64_t prev, Verdict& verdict, std::string& why,
                   std::string& error) {
  bool zero = false;
  if (!all_zero(w, off, zero, error)) return false;
  if (zero) verdict = Verdict::Torn;
  if (verdict == Verdict::Torn && !zero && w.end - off >= Journal::kRecordHeaderSize) {
    uint64_t later = 0;
    if (!find_later_record(w, off, prev, later, error)) return false;
    if (later != 0) {
      why = "length running past the end of the file (a valid record follows at offset " + std::to_string(later) +
            ")";
      verdict = Verdict::Corrupt;
    }
  }
  if (verdict == Verdict::Torn) why = zero ? "zero bytes" : "bytes";
  return true;
}

// Copies [from, end) of the journal into a new `<path>.corrupt-<unix seconds>[-n]`, fsynced.
bool quarantine(int fd, const std::string& path, uint64_t from, uint64_t end, std::string& qpath,
                std::string& error) {
  const std::string base = path + ".corrupt-" + std::to_string(static_cast<long long>(::time(nullptr)));
  int out = -1;
  for (int n = 0; n < 100 && out < 0; ++n) {
    qpath = n == 0 ? base : base + "-" + std::to_string(n);
    out = ::open(qpath.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0 && errno != EEXIST) break;
  }
  if (out < 0) {
    error = os_error("create", qpath, errno);
    qpath.clear();
    return false;
  }
  std::string buf(static_cast<size_t>(std::min<uint64_t>(kCopyChunk, end - from)), '\0');
  bool ok = true;
  for (uint64_t off = from; off < end && ok;) {
    const auto n = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - off));
    if (!pread_exact(fd, buf.data(), n, off)) {
      error = read_error(path);
      ok = false;
    } else if (!pwrite_all(out, buf.data(), n, off - from)) {
      error = os_error("write", qpath, errno);
      ok = false;
    }
    off += n;
  }
  if (ok && ::fsync(out) != 0) {
    error = os_error("fsync", qpath, errno);
    ok = false;
  }
  ::close(out);
  if (ok) ok = fsync_dir(parent_dir(qpath), error);
  return ok;
}

// Opens the journal read-write, creating it (empty) if missing; `created` says which.
int open_or_create(const std::string& path, bool& created, std::string& error) {
  created = false;
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT) {
      if (fd < 0) error = os_error("open journal", path, errno);
      return fd;
    }
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      created = true;
      return fd;
    }
    if (errno != EEXIST) break;  // else another process created it: open that one
  }
  error = os_error("create journal", path, errno);
  return -1;
}

// Reads `<journal>.ack`; both stay 0 if the file is missing.
bool read_state(const std::string& ack_path, uint64_t& acked, uint64_t& floor, std::string& error) {
  acked = floor = 0;
  int fd = ::open(ack_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return true;
    error = os_error("open", ack_path, errno);
    return false;
  }
  char b[kAckSize + 1];
  ssize_t n;
  do {
    n = ::read(fd, b, sizeof b);
  } while (n < 0 && errno == EINTR);
  const int err = errno;
  ::close(fd);
  if (n < 0) {
    error = os_error("read", ack_path, err);
    return false;
  }
  if (static_cast<size_t>(n) != kAckSize || std::string_view(b, 8) != kAckMagic ||
      XXH32(b, kAckSize - 4, 0) != get_u32(b + kAckSize - 4) || get_u64(b + 8) > kMaxSeq ||
      get_u64(b + 16) > kMaxSeq) {
    error = "acknowledgement file " + ack_path +
            " is damaged: refusing to guess which journal records Redis already applied (delete it to replay them "
            "all)";
    return false;
  }
  acked = get_u64(b + 8);
  floor = get_u64(b + 16);
  return true;
}

}  // namespace

// ---- Reader ----

struct Journal::Reader::State {
  Window window;              // over the journal's descriptor, up to its size at reader()
  uint64_t offset = 0;        // where the next record starts
  uint64_t skip_through = 0;  // acknowledged when the reader was made: skipped
  uint64_t prev_seq = 0;      // the last record's seq, for the sequence rule
  std::string error;          // set once a read failed: sticky
};

Journal::Reader::Reader(std::unique_ptr<State> state) : state_(std::move(state)) {}
Journal::Reader::Reader(Reader&&) noexcept = default;
Journal::Reader& Journal::Reader::operator=(Reader&&) noexcept = default;
Journal::Reader::~Reader() = default;

bool Journal::Reader::next(JournalRecord& out, std::string& error) {
  error.clear();
  if (!state_) return false;
  State& s = *state_;
  while (s.error.empty()) {
    RecordView v;
    std::string why;
    const Verdict verdict = examine(s.window, s.offset, v, why);
    if (verdict == Verdict::End) return false;
    if (verdict == Verdict::Ok && v.seq <= s.prev_seq) {
      why = "seq " + std::to_string(v.seq) + " not above " + std::to_string(s.prev_seq);
    } else if (verdict == Verdict::Ok) {
      s.prev_seq = v.seq;
      s.offset += v.size;
      if (v.seq <= s.skip_through) continue;
      out.seq = v.seq;
      out.db = static_cast<int>(v.db);
      out.time_ms = v.time_ms;
      out.args.resize(v.argc);
      const char* p = v.args;
      for (std::string& a : out.args) {
        const uint32_t n = get_u32(p);
        a.assign(p + 4, n);
        p += 4 + n;
      }
      return true;
    }
    s.error = "journal " + *s.window.path + ": record at offset " + std::to_string(s.offset) + ": " + why;
  }
  error = s.error;
  return false;
}

// ---- Journal ----

Journal::Journal(std::string path, int fd, FsyncPolicy policy)
    : path_(std::move(path)), ack_path_(path_ + ".ack"), dir_(parent_dir(path_)), fd_(fd), policy_(policy) {}

Journal::~Journal() {
  if (unsynced_ && !failed_) {
    std::string error;
    if (!fdatasync_now(error)) obs::error("journal: {}", error);
  }
  ::close(fd_);
}

std::unique_ptr<Journal> Journal::open(const std::string& path, FsyncPolicy policy, RecoveryReport& report,
                                       std::string& error) {
  report = RecoveryReport{};
  error.clear();
  bool created = false;
  const int fd = open_or_create(path, created, error);
  if (fd < 0) return nullptr;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    error = err == EWOULDBLOCK ? "journal " + path + " is in use by another process" : os_error("lock", path, err);
    return nullptr;
  }
  std::unique_ptr<Journal> j(new Journal(path, fd, policy));
  if (created && !fsync_dir(j->dir_, error)) return nullptr;
  if (!j->recover(report, error)) return nullptr;
  return j;
}

// Checks that the file starts with kMagic, or with a part of it if shorter (a crash while
// creating it); head_len: how much of the header is there.
bool Journal::check_header(uint64_t file_size, size_t& head_len, std::string& error) {
  char head[kHeaderSize];
  head_len = static_cast<size_t>(std::min<uint64_t>(file_size, kHeaderSize));
  if (!pread_exact(fd_, head, head_len, 0)) {
    error = read_error(path_);
    return false;
  }
  if (std::string_view(head, head_len) == kMagic.substr(0, head_len)) return true;
  const bool other_version = head_len == kHeaderSize && kMagic.substr(0, 7) == std::string_view(head, 7);
  error = "journal " + path_ +
          (other_version ? ": unsupported format version '" + std::string(1, head[7]) + "'"
                         : ": not a respite journal (bad header)") +
          "; the file was left as it is";
  return false;
}

bool Journal::recover(RecoveryReport& report, std::string& error) {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    error = os_error("stat", path_, errno);
    return false;
  }
  const auto file_size = static_cast<uint64_t>(st.st_size);
  size_t head_len = 0;
  if (!check_header(file_size, head_len, error)) return false;
  if (!read_state(ack_path_, acked_seq_, seq_floor_, error)) return false;
  last_seq_ = std::max(acked_seq_, seq_floor_);
  if (head_len < kHeaderSize) {
    // New, or a crash while creating it: (re)write the header.
    if (head_len > 0) obs::warn("journal {}: incomplete header ({} bytes) rewritten", path_, head_len);
    if (!pwrite_all(fd_, kMagic.data(), kHeaderSize, 0)) {
      error = os_error("write", path_, errno);
      return false;
    }
    if (!truncate_durably(fd_, kHeaderSize, path_, error)) return false;
    size_ = report.valid_bytes = kHeaderSize;
    return true;
  }

  Window w{fd_, &path_, file_size, {}, 0, 0};
  uint64_t off = kHeaderSize;
  uint64_t prev = 0;
  std::string why;
  Verdict verdict;
  for (;;) {
    RecordView v;
    verdict = examine(w, off, v, why);
    if (verdict == Verdict::Ok && v.seq <= prev) {
      why = "seq " + std::to_string(v.seq) + " not above " + std::to_string(prev);
      verdict = Verdict::Corrupt;
    }
    if (verdict != Verdict::Ok) break;
    add_record(v.seq);
    prev = v.seq;
    off += v.size;
  }
  if (verdict == Verdict::IoError) {
    error = why;
    return false;
  }
  if (verdict != Verdict::End && (!classify_tail(w, off, prev, verdict, why, error) ||
                                  !cut_tail(off, file_size, verdict == Verdict::Corrupt, why, prev, report, error))) {
    return false;
  }
  size_ = off;
  last_seq_ = std::max(last_seq_, prev);
  if (!runs_.empty() && prev <= acked_seq_) {
    // Every record was applied: finish the truncate_all() a crash interrupted.
    if (!truncate_durably(fd_, kHeaderSize, path_, error)) return false;
    obs::info("journal {}: every record (through {}) was acknowledged: emptied", path_, prev);
    size_ = kHeaderSize;
    runs_.clear();
  }
  report.records = records();
  report.valid_bytes = size_;
  return true;
}

// Cuts the file at `off` after the records up to `prev`: a torn tail (why: "bytes" or "zero
// bytes") is dropped; corrupt bytes (why: what is wrong) are quarantined first, and the seq
// floor is raised past every seq they could hold.
bool Journal::cut_tail(uint64_t off, uint64_t file_size, bool corrupt, std::string_view why, uint64_t prev,
                       RecoveryReport& report, std::string& error) {
  const uint64_t cut = file_size - off;
  if (!corrupt) {
    report.detail = "torn tail: " + std::to_string(cut) + " " + std::string(why) + " after " +
                    (prev != 0 ? "record " + std::to_string(prev) : "the header") + " cut off";
  } else {
    if (!quarantine(fd_, path_, off, file_size, report.quarantine_path, error)) return false;
    const uint64_t floor = std::max(last_seq_, prev) + cut / kSmallestRecord + 1;
    if (!write_state(acked_seq_, floor, error)) return false;
    seq_floor_ = floor;
    last_seq_ = floor;
    const std::string where = prev != 0 ? "the record after " + std::to_string(prev) : "the first record";
    report.detail = std::string(why) + " in " + where + " at offset " + std::to_string(off) + ": " +
                    std::to_string(cut) + " bytes moved to " + report.quarantine_path +
                    " (new records start after seq " + std::to_string(floor) + ")";
  }
  if (!truncate_durably(fd_, off, path_, error)) return false;
  report.dropped_bytes = cut;
  if (corrupt) {
    obs::error("journal {}: {}", path_, report.detail);
  } else {
    obs::warn("journal {}: {}", path_, report.detail);
  }
  return true;
}

void Journal::add_record(uint64_t seq) {
  if (!runs_.empty() && runs_.back().last + 1 == seq) {
    runs_.back().last = seq;
  } else {
    runs_.push_back(Run{seq, seq});
  }
}

bool Journal::append(int db, std::span<const std::string_view> args, uint64_t time_ms, std::string& error) {
  if (failed_) {
    error = "journal " + path_ + " is unusable after a failed sync or cut-back: restart respite to recover it";
    return false;
  }
  if (args.empty() || db < 0) {
    error = "journal append: a write needs a command and a database >= 0";
    return false;
  }
  size_t payload = kFixedPayload;
  for (std::string_view a : args) {
    if (a.size() > kMaxPayload || (payload += 4 + a.size()) > kMaxPayload) {
      error = "journal append: the write is larger than the journal's limit of " + std::to_string(kMaxPayload) +
              " bytes";
      return false;
    }
  }
  if (last_seq_ >= kMaxSeq) {
    error = "journal append: sequence exhausted";
    return false;
  }
  const uint64_t seq = last_seq_ + 1;
  buf_.clear();
  buf_.reserve(kRecordHeaderSize + payload);
  put_u32(buf_, static_cast<uint32_t>(payload));
  put_u32(buf_, 0);  // the checksum, once the payload is there
  put_u64(buf_, seq);
  put_u32(buf_, static_cast<uint32_t>(db));
  put_u64(buf_, time_ms);
  put_u32(buf_, static_cast<uint32_t>(args.size()));
  for (std::string_view a : args) {
    put_u32(buf_, static_cast<uint32_t>(a.size()));
    buf_.append(a);
  }
  const uint32_t sum = XXH32(buf_.data() + kRecordHeaderSize, payload, 0);
  for (int i = 0; i < 4; ++i) buf_[4 + i] = static_cast<char>(sum >> (8 * i));

  bool ok = pwrite_all(fd_, buf_.data(), buf_.size(), size_);
  if (!ok) error = os_error("write", path_, errno);
  if (ok && policy_ == FsyncPolicy::Always) ok = fdatasync_now(error);
  if (!ok) {
    // Leave no part of the record behind: the caller refuses the client's write.
    if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
      failed_ = true;
      obs::error("journal {}: cutting back a failed append failed: {}", path_, std::strerror(errno));
    }
  } else {
    size_ += buf_.size();
    last_seq_ = seq;
    add_record(seq);
    unsynced_ = policy_ != FsyncPolicy::Always;
  }
  if (buf_.capacity() > kKeepBuffer) std::string().swap(buf_);
  return ok;
}

bool Journal::fdatasync_now(std::string& error) {
  if (::fdatasync(fd_) != 0) {
    failed_ = true;  // the kernel may have dropped the pages it could not write: see journal.h
    error = os_error("fdatasync", path_, errno);
    return false;
  }
  ++syncs_;
  unsynced_ = false;
  return true;
}

void Journal::sync_if_due(uint64_t now_ms) {
  if (policy_ != FsyncPolicy::EverySec || !unsynced_ || failed_) return;
  if (now_ms >= last_sync_ms_ && now_ms - last_sync_ms_ < kSyncIntervalMs) return;
  std::string error;
  if (!fdatasync_now(error)) obs::error("journal: {}", error);
  last_sync_ms_ = now_ms;
}

bool Journal::sync(std::string& error) {
  if (failed_) {
    error = "journal " + path_ + " is unusable after a failed sync or cut-back";
    return false;
  }
  return !unsynced_ || fdatasync_now(error);
}

Journal::Reader Journal::reader() const {
  auto s = std::make_unique<Reader::State>();
  s->window = Window{fd_, &path_, size_, {}, 0, 0};
  s->offset = kHeaderSize;
  s->skip_through = acked_seq_;
  return Reader(std::move(s));
}

uint64_t Journal::records() const {
  uint64_t n = 0;
  for (const Run& r : runs_) {
    const uint64_t from = std::max(r.first, acked_seq_ + 1);
    if (r.last >= from) n += r.last - from + 1;
  }
  return n;
}

bool Journal::write_state(uint64_t acked, uint64_t floor, std::string& error) {
  std::string b(kAckMagic);
  put_u64(b, acked);
  put_u64(b, floor);
  put_u32(b, XXH32(b.data(), b.size(), 0));
  const std::string tmp = ack_path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = os_error("create", tmp, errno);
    return false;
  }
  bool ok = pwrite_all(fd, b.data(), b.size(), 0);
  if (!ok) error = os_error("write", tmp, errno);
  if (ok && ::fsync(fd) != 0) {
    error = os_error("fsync", tmp, errno);
    ok = false;
  }
  ::close(fd);
  if (ok && ::rename(tmp.c_str(), ack_path_.c_str()) != 0) {
    error = os_error("rename " + tmp + " to", ack_path_, errno);
    ok = false;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return false;
  }
  return fsync_dir(dir_, error);
}

bool Journal::acknowledge(uint64_t seq, std::string& error) {
  if (seq <= acked_seq_) return true;
  if (seq > last_seq_) {
    error = "journal " + path_ + ": cannot acknowledge record " + std::to_string(seq) + ", the last is " +
            std::to_string(last_seq_);
    return false;
  }
  if (!write_state(seq, seq_floor_, error)) return false;
  acked_seq_ = seq;
  return true;
}

bool Journal::truncate_all(std::string& error) {
  if (!acknowledge(last_seq_, error)) return false;
  if (size_ == kHeaderSize) return true;
  // Every record is acknowledged now, so a crash or a failure from here on leaves a
  // consistent journal: open() empties one whose records are all acknowledged.
  if (::ftruncate(fd_, static_cast<off_t>(kHeaderSize)) != 0) {
    error = os_error("truncate", path_, errno);
    return false;
  }
  size_ = kHeaderSize;
  runs_.clear();
  if (::fsync(fd_) != 0) {
    failed_ = true;  // as a failed fdatasync: see journal.h
    error = os_error("fsync", path_, errno);
    return false;
  }
  unsynced_ = false;
  return true;
}

}  // namespace respite::fallback
