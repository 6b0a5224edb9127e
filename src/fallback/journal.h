// Journal: the on-disk log of every write respite acknowledged while Redis was down, so a
// crash or restart during the outage loses nothing acknowledged (under FsyncPolicy::Always),
// and the writes can be replayed into Redis, in order, once it is back.
//
// File format (all integers little-endian; proto/journal-format.md has the same, for
// operators):
//   header   8 bytes  "RSPJRNL1" (magic "RSPJRNL" + format version '1')
//   records, back to back:
//     u32 payload_len   bytes of payload, kMinPayload..kMaxPayload
//     u32 checksum      XXH32(payload, seed 0)
//     payload:  u64 seq | u32 db | u64 time_ms | u32 argc | argc x (u32 len | len bytes)
//   seq numbers the records 1, 2, 3... in append order and is never given twice for one
//   journal: each record's seq is greater than the one before (one more, except after a
//   corruption cut, see below); the first record of a file may start anywhere.
//   argc >= 1 (args[0] is the command name); the argument lengths fill the payload exactly.
//
// Acknowledgement file `<path>.ack` (28 bytes): "RSPJACK1" | u64 acked_seq | u64 seq_floor |
// u32 XXH32 of the first 24 bytes. Every record with seq <= acked_seq has been applied by
// Redis. No record is ever appended with a seq <= max(acked_seq, seq_floor): the next record
// gets max(last seq in the file, acked_seq, seq_floor) + 1, which carries the sequence across
// truncate_all() (it acknowledges everything) and past the seqs of quarantined records
// (recovery raises seq_floor past every seq the cut bytes could hold: one per 36 bytes, the
// smallest record). It is replaced atomically (temp file, fsync, rename, fsync of the
// directory). A missing ack file means nothing was acknowledged; a damaged one makes open()
// fail (guessing could replay writes Redis already applied: delete it to replay them all).
//
// Delivery: a record acknowledged by acknowledge() is never replayed again; records sent to
// Redis but not yet acknowledged when respite crashes are replayed again after the restart
// (at-least-once for the records in flight at a crash, exactly-once otherwise). Callers
// acknowledge in batches, since each acknowledge() costs two fsyncs.
//
// Recovery (open of an existing file): the header must be ours, else open() fails and the
// file is left alone. The records are scanned and checked; the scan stops at the first bad
// one:
//   - torn tail: the last record is incomplete at the end of the file (a write cut short by
//     a crash: fewer than 8 bytes, or a plausible length running past the end), or the rest
//     of the file is zero bytes (a crash after the file grew but before its data reached
//     the disk). Cut off, with a warn line: never acknowledged under Always.
//   - corruption: anything else (checksum mismatch, impossible length, malformed payload,
//     seq not above the one before, or a length running past the end of the file with a
//     valid record found further on). Everything from the bad record to the end is copied
//     to `<path>.corrupt-<unix seconds>` (fsynced) and then cut off, with an error line. A
//     complete last record with a bad checksum counts as corruption too: it may have been
//     acknowledged, so its bytes are kept for the operator rather than thrown away.
// If every record left is acknowledged, the file is emptied at open (a truncate_all that a
// crash interrupted). Then the journal is ready for appends; the report says what happened.
//
// Fsync policy, as Redis's appendfsync: Always fdatasyncs inside append() before it returns
// (the client's write is acknowledged only once it is on disk); EverySec fdatasyncs from
// sync_if_due() (call it from a timer) at most once a second, so a crash may lose up to about
// a second of acknowledged writes; No leaves it to the kernel (sync() and the destructor
// still sync). A failed fdatasync is sticky: the kernel may have dropped the unwritten pages,
// so every later append fails until respite restarts and recovers the file.
//
// Threading and cost: single-threaded, every call blocks the calling thread (the event loop)
// on the disk: an fdatasync costs from tens of microseconds (NVMe, tmpfs) to several
// milliseconds (SATA SSD, network disks), per append under Always. open() reads the whole
// file once; reader() skips the acknowledged records by reading through them. No threads.
// Exclusive: open() takes flock(LOCK_EX | LOCK_NB) on the file; a second respite (or a second
// open in the same process) fails. Files are created with mode 0600. No exceptions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace respite::fallback {

enum class FsyncPolicy : uint8_t { Always, EverySec, No };

// One journaled write, as the reader gives it back.
struct JournalRecord {
  uint64_t seq = 0;               // 1, 2, 3... in append order, never reused for a journal file
  int db = 0;                     // the database the write applies to
  uint64_t time_ms = 0;           // wall-clock ms when it was accepted (for the operator)
  std::vector<std::string> args;  // the command, args[0] the name, exactly as it must be replayed
};

// What open() found and did to an existing journal.
struct RecoveryReport {
  size_t records = 0;          // valid records not yet acknowledged (what records() says)
  uint64_t valid_bytes = 0;    // the journal's size after recovery, header included (bytes())
  uint64_t dropped_bytes = 0;  // bytes cut off the end (torn tail or corruption)
  std::string detail;          // human-readable summary of the cut, "" if nothing was cut
  std::string quarantine_path; // where cut bytes that were not a torn tail went ("" if none)
};

class Journal {
 public:
  static constexpr std::string_view kMagic = "RSPJRNL1";       // the file header
  static constexpr size_t kHeaderSize = 8;                     // kMagic's length
  static constexpr size_t kRecordHeaderSize = 8;               // payload_len + checksum
  static constexpr size_t kMinPayload = 8 + 4 + 8 + 4 + 4;     // one empty argument
  // Redis's largest bulk (512 MiB) plus room for the fixed fields and 4 bytes of length
  // for each of up to 4 Mi arguments. A longer write is refused by append().
  static constexpr size_t kMaxPayload = (size_t{512} << 20) + (size_t{16} << 20);

  // Reads records in order, through the journal's descriptor (the journal must outlive the
  // reader; don't truncate_all() while one is in use). It sees the records that were in the
  // file when reader() was called, from the acknowledged point on; records appended later
  // are not seen (make a new reader for them). Move-only.
  class Reader {
   public:
    Reader(Reader&&) noexcept;
    Reader& operator=(Reader&&) noexcept;
    ~Reader();
    // The next record into `out` (its strings reuse their capacity). False at the end, with
    // `error` empty, or on an I/O error or a record that no longer checks out, with `error`
    // set (and then false ever after).
    bool next(JournalRecord& out, std::string& error);

   private:
    friend class Journal;
    struct State;
    explicit Reader(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;  // descriptor, position, end and read buffer
  };

  // Opens (creating it, with its header, if missing) and recovers the journal at `path`
  // (absolute or relative to the working directory). On failure returns null with `error`
  // set; `report` says what recovery found and did either way.
  static std::unique_ptr<Journal> open(const std::string& path, FsyncPolicy policy, RecoveryReport& report,
                                       std::string& error);
  // Syncs unsynced appends (best effort, a failure is logged), releases the lock.
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Appends one write (args[0] the command name; db >= 0) as record last_seq() + 1, in one
  // write(2), fdatasynced before returning under Always. On failure nothing of it stays in
  // the file (it is cut back), `error` is set and the caller must refuse the client's write.
  bool append(int db, std::span<const std::string_view> args, uint64_t time_ms, std::string& error);
  // EverySec: fdatasync when something was appended since the last sync and at least 1000 ms
  // passed since it (now_ms on any clock that the caller uses consistently; a clock that went
  // back counts as due). Other policies: nothing. A failure is logged and makes appends fail.
  void sync_if_due(uint64_t now_ms);
  // fdatasync now if anything is unsynced (any policy); false with `error` on failure.
  bool sync(std::string& error);

  // A reader over the unacknowledged records, from the oldest.
  Reader reader() const;
  // Redis has applied every record up to `seq` (<= last_seq()): persists it, so they are not
  // replayed again. An older seq than acked_seq() is a no-op. Two fsyncs and a rename.
  bool acknowledge(uint64_t seq, std::string& error);
  // Every record has been applied: acknowledges them all, then empties the journal down to
  // its header, durably. The next append continues the sequence.
  bool truncate_all(std::string& error);

  uint64_t bytes() const { return size_; }                 // file size, header included
  uint64_t records() const;                                // records not yet acknowledged
  uint64_t last_seq() const { return last_seq_; }          // the latest seq given (or passed over)
  uint64_t acked_seq() const { return acked_seq_; }        // every seq up to this is applied
  uint64_t syncs() const { return syncs_; }                // fdatasyncs of the journal so far
  bool failed() const { return failed_; }                  // a sync failed: appends are refused
  const std::string& path() const { return path_; }

 private:
  Journal(std::string path, int fd, FsyncPolicy policy);
  // A run of consecutive seqs in the file (records() counts through them).
  struct Run {
    uint64_t first;  // seq of the run's first record
    uint64_t last;   // seq of its last record
  };

  bool recover(RecoveryReport& report, std::string& error);
  bool check_header(uint64_t file_size, size_t& head_len, std::string& error);
  bool cut_tail(uint64_t off, uint64_t file_size, bool corrupt, std::string_view why, uint64_t prev,
                RecoveryReport& report, std::string& error);
  bool write_state(uint64_t acked, uint64_t floor, std::string& error);
  bool fdatasync_now(std::string& error);
  void add_record(uint64_t seq);

  std::string path_;          // the journal file, as given to open()
  std::string ack_path_;      // path_ + ".ack"
  std::string dir_;           // path_'s directory, fsynced after creating or renaming in it
  int fd_;                    // read-write, flock'ed; owned
  FsyncPolicy policy_;        // when append() data reaches the disk
  uint64_t size_ = 0;         // file size: the header and whole records only
  std::vector<Run> runs_;     // the seqs in the file, in order (one run unless recovery cut)
  uint64_t last_seq_ = 0;     // the latest seq given out (or floor); the next is one more
  uint64_t acked_seq_ = 0;    // from the ack file: records up to it are applied
  uint64_t seq_floor_ = 0;    // from the ack file: no seq up to it is given again
  uint64_t last_sync_ms_ = 0; // sync_if_due()'s now_ms at its last sync
  uint64_t syncs_ = 0;        // fdatasyncs of fd_ (tests check the policies with it)
  bool unsynced_ = false;     // appended since the last fdatasync
  bool failed_ = false;       // an fdatasync or a cut-back failed: the file can't be trusted
  std::string buf_;           // append()'s record, reused
};

}  // namespace respite::fallback
