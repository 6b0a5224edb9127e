// libFuzzer target for fallback::Journal recovery: the input becomes a journal file (behind a
// valid header), which open() recovers; then it checks that
//   - open() succeeds, bytes() is the file's size, and the kept and cut bytes add up;
//   - a quarantine file holds exactly the bytes that were cut;
//   - the reader gives records() records, with increasing seqs above the acknowledged one;
//   - an append after recovery reads back, and a reopen finds nothing left to cut.
//
// Input layout: byte 0 is a control byte. Bit 0: recompute each record's checksum (walking
// the declared lengths), so the payload checks are reached past the checksum. Bit 1: byte 1
// is an acknowledged seq, written to the ack file. The rest is the journal after its header.
// Files live in a private directory under /dev/shm (or /tmp), emptied for every input.
#include <sys/stat.h>
#include <xxhash.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "fallback/journal.h"
#include "obs/log.h"

namespace {

using respite::fallback::FsyncPolicy;
using respite::fallback::Journal;
using respite::fallback::JournalRecord;
using respite::fallback::RecoveryReport;

void check(bool ok, const char* what, const std::string& detail = "") {
  if (!ok) {
    std::fprintf(stderr, "journal_fuzz: %s %s\n", what, detail.c_str());
    std::abort();
  }
}

void put_u32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}

uint32_t get_u32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

void spit(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The ack file for `acked` (format in journal.h).
std::string ack_file(uint64_t acked) {
  std::string b = "RSPJACK1";
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>(acked >> (8 * i)));
  b.append(8, '\0');  // seq floor
  b.append(4, '\0');
  put_u32(b, 24, XXH32(b.data(), 24, 0));
  return b;
}

// Makes every record whose declared length fits carry the right checksum.
void repair_checksums(std::string& file) {
  size_t off = Journal::kHeaderSize;
  while (off + Journal::kRecordHeaderSize <= file.size()) {
    const uint32_t len = get_u32(file, off);
    if (len > file.size() - off - Journal::kRecordHeaderSize) break;
    put_u32(file, off + 4, XXH32(file.data() + off + Journal::kRecordHeaderSize, len, 0));
    off += Journal::kRecordHeaderSize + len;
  }
}

char g_dir[256];  // the private directory; a plain array, so the atexit cleanup outlives nothing

const char* work_dir() {
  if (g_dir[0] == '\0') {
    respite::obs::set_log_level("off");
    std::snprintf(g_dir, sizeof g_dir, "%s/respite-journal-fuzz-XXXXXX",
                  std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp");
    check(::mkdtemp(g_dir) != nullptr, "mkdtemp failed");
    std::atexit([] { std::filesystem::remove_all(g_dir); });
  }
  return g_dir;
}

std::vector<JournalRecord> read_all(const Journal& j) {
  std::vector<JournalRecord> out;
  Journal::Reader r = j.reader();
  JournalRecord one;
  std::string error;
  while (r.next(one, error)) out.push_back(one);
  check(error.empty(), "reader error after recovery:", error);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t control = data[0];
  size_t skip = 1;
  uint64_t acked = 0;
  if (control & 2) {
    if (size < 2) return 0;
    acked = data[1];
    skip = 2;
  }
  const std::string dir = work_dir();
  for (const auto& e : std::filesystem::directory_iterator(dir)) std::filesystem::remove(e.path());
  const std::string path = dir + "/journal";
  std::string file(Journal::kMagic);
  file.append(reinterpret_cast<const char*>(data) + skip, size - skip);
  if (control & 1) repair_checksums(file);
  spit(path, file);
  if (acked != 0) spit(path + ".ack", ack_file(acked));

  RecoveryReport report;
  std::string error;
  auto j = Journal::open(path, FsyncPolicy::No, report, error);
  check(j != nullptr, "open failed:", error);
  check(j->bytes() == std::filesystem::file_size(path) && report.valid_bytes == j->bytes(), "size mismatch");
  check(report.dropped_bytes <= file.size() - Journal::kHeaderSize, "dropped more than the records");
  if (acked == 0) check(report.valid_bytes + report.dropped_bytes == file.size(), "kept + cut != file");
  if (!report.quarantine_path.empty()) {
    check(slurp(report.quarantine_path) == file.substr(file.size() - report.dropped_bytes), "quarantine differs");
  }
  check((report.dropped_bytes == 0) == report.detail.empty(), "detail without a cut, or a cut without detail");

  std::vector<JournalRecord> records = read_all(*j);
  check(records.size() == j->records() && records.size() == report.records, "record count mismatch");
  for (size_t i = 0; i < records.size(); ++i) {
    check(records[i].seq > j->acked_seq() && records[i].seq <= j->last_seq(), "seq outside the journal");
    check(i == 0 || records[i].seq > records[i - 1].seq, "seqs not increasing");
    check(!records[i].args.empty() && records[i].db >= 0, "impossible record");
  }

  const std::vector<std::string_view> args = {"SET", std::string_view("k\0\xff", 3), ""};
  check(j->append(7, args, 123, error), "append after recovery failed:", error);
  const uint64_t seq = j->last_seq();
  records = read_all(*j);
  check(!records.empty() && records.back().seq == seq && records.back().db == 7 && records.back().args.size() == 3 &&
            records.back().args[1] == args[1],
        "appended record not read back");
  const size_t count = records.size();
  j.reset();
  j = Journal::open(path, FsyncPolicy::No, report, error);
  check(j != nullptr, "reopen failed:", error);
  check(report.dropped_bytes == 0 && report.detail.empty(), "reopen cut again:", report.detail);
  check(read_all(*j).size() == count && j->last_seq() == seq, "reopen lost records");
  return 0;
}
