// fallback::Journal and fallback::DeadLetter: round trips of awkward arguments, recovery of a
// torn tail cut at every byte of the last record, quarantine of corruption in the middle,
// foreign headers left alone, acknowledgement and truncation across reopenings, the lock,
// a failed append leaving nothing behind (RLIMIT_FSIZE makes write(2) fail half-way), the
// fsync policies' bookkeeping, and dead-letter lines checked and decoded by Python's json.
#include "fallback/journal.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <climits>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fallback/dead_letter.h"

namespace respite::fallback {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

bool exists(const std::string& path) { return std::filesystem::exists(path); }

unsigned mode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_mode & 0777 : 0;
}

JournalRecord rec(uint64_t seq, int db, uint64_t time_ms, std::vector<std::string> args) {
  return JournalRecord{seq, db, time_ms, std::move(args)};
}

void expect_same(const JournalRecord& got, const JournalRecord& want) {
  EXPECT_EQ(got.seq, want.seq);
  EXPECT_EQ(got.db, want.db);
  EXPECT_EQ(got.time_ms, want.time_ms);
  ASSERT_EQ(got.args.size(), want.args.size()) << "seq " << want.seq;
  for (size_t i = 0; i < want.args.size(); ++i) {
    EXPECT_TRUE(got.args[i] == want.args[i]) << "seq " << want.seq << " arg " << i;
  }
}

// Every byte value, and a 1 MiB argument with a pattern.
std::vector<JournalRecord> varied_records() {
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  std::string big(size_t{1} << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 251);
  return {
      rec(1, 0, 1700000000000, {"SET", "k", "v"}),
      rec(2, 3, 1700000000001, {"SET", "", ""}),
      rec(3, 15, 0, {"PING"}),
      rec(4, 0, UINT64_MAX, {"HSET", all_bytes, "f", all_bytes}),
      rec(5, 1, 42, {"SET", "big", big}),
      rec(6, INT_MAX, 7, {std::string("\0\r\n", 3), std::string(1, '\xff')}),
  };
}

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/respite-journal-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/journal";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Journal> open(FsyncPolicy policy = FsyncPolicy::No) {
    std::string error;
    auto j = Journal::open(path_, policy, report_, error);
    EXPECT_NE(j, nullptr) << error;
    EXPECT_TRUE(j == nullptr || error.empty());
    return j;
  }

  static bool add(Journal& j, const JournalRecord& r) {
    std::vector<std::string_view> views(r.args.begin(), r.args.end());
    std::string error;
    bool ok = j.append(r.db, views, r.time_ms, error);
    EXPECT_TRUE(ok) << error;
    EXPECT_TRUE(ok || !error.empty());
    return ok;
  }

  static std::vector<JournalRecord> read_all(const Journal& j) {
    std::vector<JournalRecord> out;
    Journal::Reader r = j.reader();
    JournalRecord one;
    std::string error;
    while (r.next(one, error)) out.push_back(one);
    EXPECT_EQ(error, "");
    return out;
  }

  // Appends the records, returning the offset where each starts.
  std::vector<uint64_t> write_records(const std::vector<JournalRecord>& records) {
    auto j = open();
    std::vector<uint64_t> starts;
    for (const JournalRecord& r : records) {
      starts.push_back(j->bytes());
      add(*j, r);
    }
    return starts;
  }

  std::string dir_;
  std::string path_;
  RecoveryReport report_;
};

TEST_F(JournalTest, RoundTripVariedArgumentsAcrossReopen) {
  const std::vector<JournalRecord> want = varied_records();
  {
    auto j = open(FsyncPolicy::Always);
    ASSERT_NE(j, nullptr);
    EXPECT_EQ(report_.records, 0u);
    EXPECT_EQ(j->bytes(), Journal::kHeaderSize);
    for (const JournalRecord& r : want) ASSERT_TRUE(add(*j, r));
    EXPECT_EQ(j->last_seq(), want.size());
    EXPECT_EQ(j->records(), want.size());
    auto got = read_all(*j);  // before reopening, too
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) expect_same(got[i], want[i]);
  }
  EXPECT_EQ(slurp(path_).substr(0, 8), "RSPJRNL1");
  EXPECT_EQ(mode_of(path_), 0600u);
  auto j = open();
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(report_.records, want.size());
  EXPECT_EQ(report_.dropped_bytes, 0u);
  EXPECT_EQ(report_.detail, "");
  EXPECT_EQ(report_.valid_bytes, j->bytes());
  EXPECT_EQ(report_.valid_bytes, std::filesystem::file_size(path_));
  auto got = read_all(*j);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) expect_same(got[i], want[i]);
  // The sequence goes on after a reopen.
  ASSERT_TRUE(add(*j, rec(7, 0, 1, {"INCR", "n"})));
  EXPECT_EQ(j->last_seq(), 7u);
}

TEST_F(JournalTest, RejectsWritesItCannotRecord) {
  auto j = open();
  std::string error;
  EXPECT_FALSE(j->append(0, {}, 1, error));
  EXPECT_NE(error, "");
  std::vector<std::string_view> set = {"SET", "k", "v"};
  EXPECT_FALSE(j->append(-1, set, 1, error));
  EXPECT_EQ(j->records(), 0u);
  EXPECT_EQ(j->bytes(), Journal::kHeaderSize);
}

TEST_F(JournalTest, TornTailAtEveryByteOfTheLastRecord) {
  const std::vector<JournalRecord> first = {rec(1, 0, 10, {"SET", "a", "1"}), rec(2, 2, 11, {"SADD", "s", "x", "y"})};
  const JournalRecord last = rec(3, 0, 12, {"HSET", "h", "field", std::string("v\0\xfe", 3)});
  std::vector<uint64_t> starts = write_records({first[0], first[1], last});
  const std::string full = slurp(path_);
  const uint64_t last_start = starts[2];
  ASSERT_GT(full.size() - last_start, Journal::kRecordHeaderSize + Journal::kMinPayload);
  for (uint64_t cut = last_start + 1; cut < full.size(); ++cut) {
    SCOPED_TRACE("file cut at " + std::to_string(cut));
    std::filesystem::remove(path_ + ".ack");
    spit(path_, std::string_view(full).substr(0, cut));
    {
      auto j = open();
      ASSERT_NE(j, nullptr);
      const uint64_t dropped = cut - last_start;
      EXPECT_EQ(report_.dropped_bytes, dropped);
      EXPECT_EQ(report_.detail, "torn tail: " + std::to_string(dropped) + " bytes after record 2 cut off");
      EXPECT_EQ(report_.quarantine_path, "");
      EXPECT_EQ(report_.records, 2u);
      EXPECT_EQ(j->bytes(), last_start);
      EXPECT_EQ(std::filesystem::file_size(path_), last_start);
      auto got = read_all(*j);
      ASSERT_EQ(got.size(), 2u);
      expect_same(got[0], first[0]);
      expect_same(got[1], first[1]);
      ASSERT_TRUE(add(*j, rec(3, 5, 99, {"SET", "after", "cut"})));
    }
    auto j = open();
    ASSERT_NE(j, nullptr);
    EXPECT_EQ(report_.dropped_bytes, 0u);
    auto got = read_all(*j);
    ASSERT_EQ(got.size(), 3u);
    expect_same(got[2], rec(3, 5, 99, {"SET", "after", "cut"}));
  }
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_), {}), 1);  // no .corrupt files
}

TEST_F(JournalTest, TornHeaderOnlyAndZeroFilledTail) {
  write_records({rec(1, 0, 1, {"SET", "k", "v"})});
  const std::string full = slurp(path_);
  spit(path_, full + std::string(4096, '\0'));  // the file grew, its data never landed
  {
    auto j = open();
    EXPECT_EQ(report_.dropped_bytes, 4096u);
    EXPECT_EQ(report_.detail, "torn tail: 4096 zero bytes after record 1 cut off");
    EXPECT_EQ(report_.quarantine_path, "");
    EXPECT_EQ(read_all(*j).size(), 1u);
  }
  spit(path_, "RSPJRNL1abc");  // a record header cut short, no record before it
  {
    auto j = open();
    EXPECT_EQ(report_.detail, "torn tail: 3 bytes after the header cut off");
    EXPECT_EQ(j->records(), 0u);
  }
  spit(path_, "RSPJ");  // a crash while creating the file
  auto j = open();
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(slurp(path_), "RSPJRNL1");
}

TEST_F(JournalTest, ChecksumMismatchInTheMiddleIsQuarantined) {
  std::vector<JournalRecord> want;
  for (uint64_t i = 1; i <= 6; ++i) want.push_back(rec(i, 0, i, {"SET", "key" + std::to_string(i), "value"}));
  const std::vector<uint64_t> starts = write_records(want);
  std::string bytes = slurp(path_);
  const uint64_t bad = starts[2];  // record 3 of 6
  bytes[bad + Journal::kRecordHeaderSize + 30] ^= 0x01;  // inside its arguments
  spit(path_, bytes);
  {
    auto j = open();
    ASSERT_NE(j, nullptr);
    EXPECT_EQ(report_.records, 2u);
    EXPECT_EQ(report_.dropped_bytes, bytes.size() - bad);
    EXPECT_EQ(report_.detail.rfind("checksum mismatch in the record after 2 at offset " + std::to_string(bad), 0), 0u)
        << report_.detail;
    ASSERT_NE(report_.quarantine_path, "");
    EXPECT_EQ(report_.quarantine_path.rfind(path_ + ".corrupt-", 0), 0u);
    EXPECT_NE(report_.detail.find(report_.quarantine_path), std::string::npos);
    EXPECT_EQ(slurp(report_.quarantine_path), bytes.substr(bad));
    EXPECT_EQ(mode_of(report_.quarantine_path), 0600u);
    EXPECT_EQ(std::filesystem::file_size(path_), bad);
    auto got = read_all(*j);
    ASSERT_EQ(got.size(), 2u);
    expect_same(got[1], want[1]);
    // The quarantined records' seqs are not given again.
    ASSERT_TRUE(add(*j, rec(0, 0, 9, {"SET", "new", "1"})));
    EXPECT_GT(j->last_seq(), 6u);
  }
  auto j = open();
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(report_.detail, "");
  EXPECT_EQ(j->records(), 3u);
  auto got = read_all(*j);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_GT(got[2].seq, 6u);
  EXPECT_EQ(got[2].args[1], "new");
  const uint64_t next = j->last_seq() + 1;
  ASSERT_TRUE(add(*j, rec(0, 0, 9, {"SET", "newer", "1"})));
  EXPECT_EQ(j->last_seq(), next);
}

TEST_F(JournalTest, CorruptLengthsAreQuarantinedNotTakenForATornTail) {
  std::vector<JournalRecord> want;
  for (uint64_t i = 1; i <= 5; ++i) want.push_back(rec(i, 0, i, {"RPUSH", "list", std::string(40, 'a' + i)}));
  const std::vector<uint64_t> starts = write_records(want);
  const std::string clean = slurp(path_);
  struct Case {
    const char* name;
    size_t record;        // 0-based record to damage
    uint32_t new_length;  // written over its payload_len
    const char* detail;   // how the report starts
  } cases[] = {
      // Runs past the end of the file, but record 3 (seq 4) follows: corruption, not a tear.
      {"length past the end", 2, 1u << 20,
       "length running past the end of the file (a valid record follows at offset "},
      {"length above the limit", 1, 0xffffffffu, "impossible payload length 4294967295"},
      {"length below the minimum", 3, 3, "impossible payload length 3"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string bytes = clean;
    for (int i = 0; i < 4; ++i) bytes[starts[c.record] + i] = static_cast<char>(c.new_length >> (8 * i));
    spit(path_, bytes);
    std::filesystem::remove(path_ + ".ack");
    auto j = open();
    ASSERT_NE(j, nullptr);
    EXPECT_EQ(report_.detail.rfind(c.detail, 0), 0u) << report_.detail;
    EXPECT_EQ(report_.records, c.record);
    EXPECT_EQ(slurp(report_.quarantine_path), bytes.substr(starts[c.record]));
    EXPECT_EQ(read_all(*j).size(), c.record);
  }
  // A complete last record with a bad checksum may have been acknowledged: kept.
  std::string bytes = clean;
  bytes.back() ^= 0x20;
  spit(path_, bytes);
  std::filesystem::remove(path_ + ".ack");
  auto j = open();
  EXPECT_EQ(report_.detail.rfind("checksum mismatch in the record after 4", 0), 0u) << report_.detail;
  EXPECT_EQ(slurp(report_.quarantine_path), bytes.substr(starts[4]));
}

TEST_F(JournalTest, SequenceGoingBackwardsIsCorruption) {
  const std::vector<uint64_t> starts =
      write_records({rec(1, 0, 1, {"SET", "a", "1"}), rec(2, 0, 2, {"SET", "b", "2"})});
  std::string bytes = slurp(path_);
  bytes += bytes.substr(starts[0], starts[1] - starts[0]);  // record 1 again, sound on its own
  spit(path_, bytes);
  auto j = open();
  EXPECT_EQ(report_.detail.rfind("seq 1 not above 2 in the record after 2", 0), 0u) << report_.detail;
  EXPECT_EQ(j->records(), 2u);
}

TEST_F(JournalTest, ForeignHeaderIsRefusedAndLeftAlone) {
  const std::string other = "NOTAJOURNAL but some operator's precious file\n";
  spit(path_, other);
  RecoveryReport report;
  std::string error;
  EXPECT_EQ(Journal::open(path_, FsyncPolicy::No, report, error), nullptr);
  EXPECT_NE(error.find("not a respite journal"), std::string::npos) << error;
  EXPECT_EQ(slurp(path_), other);
  spit(path_, "RSPJRNL2" + std::string(100, 'x'));
  EXPECT_EQ(Journal::open(path_, FsyncPolicy::No, report, error), nullptr);
  EXPECT_NE(error.find("unsupported format version '2'"), std::string::npos) << error;
  EXPECT_EQ(slurp(path_), "RSPJRNL2" + std::string(100, 'x'));
  spit(path_, "xyz");
  EXPECT_EQ(Journal::open(path_, FsyncPolicy::No, report, error), nullptr);
  EXPECT_EQ(slurp(path_), "xyz");
  EXPECT_FALSE(exists(path_ + ".ack"));
}

TEST_F(JournalTest, AcknowledgeSurvivesReopenAndTruncateAllContinuesTheSequence) {
  std::vector<JournalRecord> want;
  for (uint64_t i = 1; i <= 5; ++i) want.push_back(rec(i, 0, i, {"INCR", "n" + std::to_string(i)}));
  write_records(want);
  std::string error;
  {
    auto j = open();
    EXPECT_TRUE(j->acknowledge(3, error)) << error;
    EXPECT_TRUE(j->acknowledge(2, error));  // older: nothing to do
    EXPECT_EQ(j->acked_seq(), 3u);
    EXPECT_FALSE(j->acknowledge(6, error));  // past the last record
    EXPECT_NE(error, "");
    EXPECT_EQ(j->records(), 2u);
    EXPECT_EQ(mode_of(path_ + ".ack"), 0600u);
  }
  {
    auto j = open();
    EXPECT_EQ(report_.records, 2u);
    EXPECT_EQ(j->records(), 2u);
    EXPECT_EQ(j->acked_seq(), 3u);
    auto got = read_all(*j);
    ASSERT_EQ(got.size(), 2u);
    expect_same(got[0], want[3]);
    expect_same(got[1], want[4]);
    ASSERT_TRUE(j->truncate_all(error)) << error;
    EXPECT_EQ(j->bytes(), Journal::kHeaderSize);
    EXPECT_EQ(j->records(), 0u);
    EXPECT_TRUE(read_all(*j).empty());
    EXPECT_EQ(std::filesystem::file_size(path_), Journal::kHeaderSize);
    ASSERT_TRUE(add(*j, rec(6, 0, 6, {"SET", "six", "6"})));
    EXPECT_EQ(j->last_seq(), 6u);
  }
  {
    auto j = open();
    EXPECT_EQ(j->records(), 1u);
    auto got = read_all(*j);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].seq, 6u);
    // Everything acknowledged but not truncated (a crash in truncate_all): emptied at open.
    EXPECT_TRUE(j->acknowledge(6, error));
  }
  auto j = open();
  EXPECT_EQ(j->bytes(), Journal::kHeaderSize);
  EXPECT_EQ(j->records(), 0u);
  EXPECT_EQ(j->last_seq(), 6u);
  ASSERT_TRUE(add(*j, rec(7, 0, 7, {"SET", "seven", "7"})));
  EXPECT_EQ(j->last_seq(), 7u);
}

TEST_F(JournalTest, ReaderSeesTheRecordsOfItsMoment) {
  auto j = open();
  add(*j, rec(1, 0, 1, {"SET", "a", "1"}));
  Journal::Reader r = j->reader();
  add(*j, rec(2, 0, 2, {"SET", "b", "2"}));
  JournalRecord out;
  std::string error;
  ASSERT_TRUE(r.next(out, error));
  EXPECT_EQ(out.seq, 1u);
  EXPECT_FALSE(r.next(out, error));
  EXPECT_EQ(error, "");
  EXPECT_EQ(read_all(*j).size(), 2u);
}

TEST_F(JournalTest, DamagedAckFileIsRefused) {
  write_records({rec(1, 0, 1, {"SET", "a", "1"})});
  spit(path_ + ".ack", "RSPJACK1garbage");
  RecoveryReport report;
  std::string error;
  EXPECT_EQ(Journal::open(path_, FsyncPolicy::No, report, error), nullptr);
  EXPECT_NE(error.find("is damaged"), std::string::npos) << error;
  std::filesystem::remove(path_ + ".ack");
  EXPECT_NE(open(), nullptr);
}

TEST_F(JournalTest, SecondOpenOfTheSamePathFails) {
  auto first = open();
  ASSERT_NE(first, nullptr);
  RecoveryReport report;
  std::string error;
  EXPECT_EQ(Journal::open(path_, FsyncPolicy::No, report, error), nullptr);
  EXPECT_EQ(error, "journal " + path_ + " is in use by another process");
  first.reset();
  EXPECT_NE(open(), nullptr);
}

// RLIMIT_FSIZE (with SIGXFSZ ignored) makes write(2) stop at the limit and then fail with
// EFBIG: a record straddling it is written in part, then the append fails.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &old_);
    struct rlimit lim = old_;
    lim.rlim_cur = bytes;
    ok_ = ::setrlimit(RLIMIT_FSIZE, &lim) == 0;
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }
  bool ok() const { return ok_; }

 private:
  struct rlimit old_ {};
  void (*old_handler_)(int);
  bool ok_ = false;
};

TEST_F(JournalTest, FailedAppendLeavesNoPartialRecord) {
  for (FsyncPolicy policy : {FsyncPolicy::No, FsyncPolicy::Always}) {
    std::filesystem::remove(path_);
    auto j = open(policy);
    ASSERT_TRUE(add(*j, rec(1, 0, 1, {"SET", "a", "1"})));
    const uint64_t before = j->bytes();
    std::string error;
    bool limited = false;
    bool appended = true;
    {
      // Nothing else writes to a file while the limit holds (not even a test failure).
      FileSizeLimit limit(before + 20);
      const std::vector<std::string_view> big = {"SET", "b", "0123456789012345678901234567890123456789"};
      limited = limit.ok();
      if (limited) appended = j->append(0, big, 2, error);
    }
    ASSERT_TRUE(limited);
    EXPECT_FALSE(appended);
    EXPECT_NE(error.find("File too large"), std::string::npos) << error;
    EXPECT_EQ(std::filesystem::file_size(path_), before);
    EXPECT_EQ(j->bytes(), before);
    EXPECT_EQ(j->last_seq(), 1u);
    EXPECT_FALSE(j->failed());
    ASSERT_TRUE(add(*j, rec(2, 0, 3, {"SET", "c", "3"})));
    j.reset();
    j = open();
    EXPECT_EQ(report_.dropped_bytes, 0u);
    auto got = read_all(*j);
    ASSERT_EQ(got.size(), 2u);
    expect_same(got[1], rec(2, 0, 3, {"SET", "c", "3"}));
  }
}

TEST_F(JournalTest, FsyncPolicyBookkeeping) {
  const JournalRecord r = rec(0, 0, 0, {"SET", "k", "v"});
  std::string error;
  {
    auto j = open(FsyncPolicy::Always);
    add(*j, r);
    add(*j, r);
    EXPECT_EQ(j->syncs(), 2u);  // one per append, before it returns
    j->sync_if_due(5000);
    EXPECT_TRUE(j->sync(error));
    EXPECT_EQ(j->syncs(), 2u);  // nothing unsynced
  }
  std::filesystem::remove(path_);
  {
    auto j = open(FsyncPolicy::No);
    add(*j, r);
    add(*j, r);
    j->sync_if_due(5000);
    EXPECT_EQ(j->syncs(), 0u);  // left to the kernel
    EXPECT_TRUE(j->sync(error));
    EXPECT_EQ(j->syncs(), 1u);
    EXPECT_TRUE(j->sync(error));
    EXPECT_EQ(j->syncs(), 1u);
  }
  std::filesystem::remove(path_);
  auto j = open(FsyncPolicy::EverySec);
  j->sync_if_due(2000);
  EXPECT_EQ(j->syncs(), 0u);  // nothing appended
  add(*j, r);
  EXPECT_EQ(j->syncs(), 0u);
  j->sync_if_due(2000);
  EXPECT_EQ(j->syncs(), 1u);
  add(*j, r);
  j->sync_if_due(2999);  // 999 ms after the last sync
  EXPECT_EQ(j->syncs(), 1u);
  j->sync_if_due(3000);
  EXPECT_EQ(j->syncs(), 2u);
  j->sync_if_due(9000);  // nothing new
  EXPECT_EQ(j->syncs(), 2u);
  add(*j, r);
  j->sync_if_due(100);  // the clock went back: due
  EXPECT_EQ(j->syncs(), 3u);
}

// ---- DeadLetter ----

class DeadLetterTest : public JournalTest {
 protected:
  std::string dl_path() const { return dir_ + "/dead-letter.jsonl"; }
};

std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    out.push_back(kHex[static_cast<unsigned char>(c) >> 4]);
    out.push_back(kHex[static_cast<unsigned char>(c) & 15]);
  }
  return out;
}

// The line the Python reader below prints for a record.
std::string decoded_line(const JournalRecord& r, uint64_t failed_ms, std::string_view error) {
  std::ostringstream out;
  out << r.seq << ' ' << r.db << ' ' << r.time_ms << ' ' << failed_ms << ' ';
  for (size_t i = 0; i < r.args.size(); ++i) out << (i ? "," : "") << 'x' << hex(r.args[i]);
  out << " x" << hex(error) << '\n';
  return out.str();
}

TEST_F(DeadLetterTest, LinesAreJsonAndBytesRoundTrip) {
  const std::string python = "/usr/bin/python3";
  if (!exists(python)) GTEST_SKIP() << "no " << python;
  const std::vector<JournalRecord> records = varied_records();
  std::string error;
  {
    auto d = DeadLetter::open(dl_path(), error);
    ASSERT_NE(d, nullptr) << error;
    EXPECT_TRUE(d->append(records[0], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", 100,
                          error))
        << error;
    EXPECT_TRUE(d->append(records[3], "ERR bytes \"\\\x01\xff\" in the error", 101, error));
    EXPECT_TRUE(d->append(records[5], "", 102, error));
    EXPECT_EQ(d->count(), 3u);
  }
  {
    auto d = DeadLetter::open(dl_path(), error);  // appends after the earlier lines
    ASSERT_NE(d, nullptr);
    EXPECT_TRUE(d->append(records[4], "-OOM command not allowed", 103, error));
    EXPECT_EQ(d->count(), 1u);
  }
  EXPECT_EQ(mode_of(dl_path()), 0600u);
  const std::string first = slurp(dl_path()).substr(0, slurp(dl_path()).find('\n'));
  EXPECT_EQ(first,
            R"({"seq":1,"db":0,"time_ms":1700000000000,"failed_ms":100,"command":["SET","k","v"],)"
            R"("error":"WRONGTYPE Operation against a key holding the wrong kind of value"})");

  const std::string script = dir_ + "/read.py";
  spit(script,
       "import json, sys\n"
       "for line in open(sys.argv[1], encoding='ascii'):\n"
       "    o = json.loads(line)\n"
       "    args = ','.join('x' + a.encode('latin-1').hex() for a in o['command'])\n"
       "    print(o['seq'], o['db'], o['time_ms'], o['failed_ms'], args, 'x' + o['error'].encode('latin-1').hex())\n");
  FILE* p = ::popen((python + " " + script + " " + dl_path() + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[65536];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  EXPECT_EQ(::pclose(p), 0) << out;
  const std::string want =
      decoded_line(records[0], 100, "WRONGTYPE Operation against a key holding the wrong kind of value") +
      decoded_line(records[3], 101, "ERR bytes \"\\\x01\xff\" in the error") + decoded_line(records[5], 102, "") +
      decoded_line(records[4], 103, "OOM command not allowed");
  EXPECT_TRUE(out == want) << out.substr(0, 2000);
}

TEST_F(DeadLetterTest, IncompleteLastLineIsCutAtOpen) {
  std::string error;
  const JournalRecord r = rec(9, 0, 1, {"LPUSH", "k", "v"});
  {
    auto d = DeadLetter::open(dl_path(), error);
    ASSERT_NE(d, nullptr) << error;
    ASSERT_TRUE(d->append(r, "-WRONGTYPE x", 5, error));
  }
  const std::string whole = slurp(dl_path());
  spit(dl_path(), whole + R"({"seq":10,"db":0,"time_ms")");
  auto d = DeadLetter::open(dl_path(), error);
  ASSERT_NE(d, nullptr) << error;
  EXPECT_EQ(slurp(dl_path()), whole);
  ASSERT_TRUE(d->append(r, "-WRONGTYPE y", 6, error));
  EXPECT_EQ(slurp(dl_path()).rfind(whole, 0), 0u);
  EXPECT_EQ(slurp(dl_path()).back(), '\n');
}

TEST_F(DeadLetterTest, OpenFailsWithAClearError) {
  std::string error;
  EXPECT_EQ(DeadLetter::open(dir_ + "/no/such/dir/dl.jsonl", error), nullptr);
  EXPECT_NE(error.find("no/such/dir"), std::string::npos) << error;
}

}  // namespace
}  // namespace respite::fallback
