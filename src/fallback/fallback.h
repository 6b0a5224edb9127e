// Fallback: what respite does while Redis is unreachable, and the way back (docs/fallback.md).
//
// The pool's circuit breaker (upstream/breaker.h) decides when Redis is down. This class
// watches it:
//   - breaker opens, mode read-only or local: active() turns true, and client sessions answer
//     from local memory (session_fallback.cpp): the LocalStore for keys written during the
//     outage, then the frozen near-cache, then fallback.miss. In local mode the writes the
//     store accepts are appended to the Journal first (fsync per fallback.fsync), then
//     acknowledged.
//   - breaker half-opens (Redis answers again, after its least time open): the journal is
//     replayed in order on a dedicated connection, fallback.replay_batch records in flight,
//     while clients are still answered locally (their new writes join the journal's end).
//     A record Redis refuses with an error goes to the dead-letter file with that error;
//     a lost connection or a "cannot serve" reply stops the replay and the breaker opens
//     again (the next recovery resumes after the last acknowledged batch). Acknowledgements
//     are persisted per batch (Journal::acknowledge).
//   - the journal is drained: it is truncated, the local store emptied, the breaker closed,
//     on_recovered runs (the near-cache thaws: flushed, tracking set up again), and
//     active() turns false — all in one callback, so no request falls between.
// A journal left by an earlier run (respite stopped or crashed during an outage) makes
// active() true from the start, until it is replayed once Redis is reachable.
//
// One event loop, one thread; nothing here blocks except the journal's fsyncs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/ring_queue.h"
#include "fallback/dead_letter.h"
#include "fallback/journal.h"
#include "fallback/local_store.h"
#include "net/timer.h"
#include "upstream/breaker.h"
#include "upstream/reply_sink.h"
#include "upstream/upstream_pool.h"

namespace respite::net {
class Loop;
}

namespace respite::fallback {

enum class Mode : uint8_t { Off, ReadOnly, Local };

// Wall-clock milliseconds: the clock of Redis's absolute expiry times (PXAT), which the local
// store and the journal use.
uint64_t wall_clock_ms();

struct FallbackStats {
  uint64_t activations = 0;     // times the fallback became active
  uint64_t local_replies = 0;   // requests answered by the local store
  uint64_t stale_replies = 0;   // reads answered by the frozen near-cache
  uint64_t misses = 0;          // reads nothing local could answer (fallback.miss)
  uint64_t refused = 0;         // requests refused with -FALLBACK / -OOM while active
  uint64_t journaled = 0;       // writes appended to the journal
  uint64_t journal_errors = 0;  // appends that failed (the write was refused)
  uint64_t replayed = 0;        // records Redis applied during replays
  uint64_t dead_lettered = 0;   // records Redis refused during replays
  uint64_t replays = 0;         // replays started
  uint64_t replay_aborts = 0;   // replays stopped by a failure
};

class Fallback final : private upstream::ReplySink, private upstream::PinnedOwner {
 public:
  Fallback(net::Loop& loop, const config::FallbackConfig& cfg, upstream::UpstreamPool& pool, int default_db);
  ~Fallback() override;
  Fallback(const Fallback&) = delete;
  Fallback& operator=(const Fallback&) = delete;

  // Local mode: opens (recovering) the journal and the dead-letter file under data_dir.
  // False with `error` when they cannot be opened (respite then refuses to start).
  bool start(std::string& error);
  // Shutdown: stops a replay, syncs the journal.
  void shutdown();

  Mode mode() const { return mode_; }
  // Sessions answer locally (see the header comment).
  bool active() const { return active_; }
  bool replaying() const { return replay_conn_ != nullptr; }
  LocalStore& store() { return store_; }
  uint64_t serve_stale_ms() const { return static_cast<uint64_t>(cfg_.stale_max_age_ms); }
  bool miss_is_nil() const { return cfg_.miss == "nil"; }

  // Local mode: appends a write the store accepted. False with `error`: the write must not
  // be acknowledged (the caller undoes it in the store and answers an error).
  bool journal(int db, std::span<const std::string> args, std::string& error);

  // Runs once Redis serves again after an outage (the near-cache thaws).
  void set_on_recovered(std::function<void()> fn) { on_recovered_ = std::move(fn); }

  const FallbackStats& stats() const { return stats_; }
  FallbackStats& stats() { return stats_; }
  uint64_t journal_bytes() const;
  uint64_t journal_records() const;
  // INFO-style "# Fallback" section for RESPITE STATS.
  std::string stats_text() const;

 private:
  struct InFlight {
    JournalRecord record;  // what was sent (for the dead-letter file)
    bool select = false;   // a SELECT respite sent itself before a record of another db
  };

  void on_breaker(upstream::CircuitBreaker::State from, upstream::CircuitBreaker::State to, std::string_view why);
  void activate(std::string_view why);
  void tick();
  void start_replay();
  void pump();
  void stop_replay(std::string_view why);
  void finish_replay();
  void acknowledge();

  // upstream::ReplySink (the replay connection)
  void on_reply(uint64_t cookie, std::string_view raw) override;
  void on_failed(uint64_t cookie, std::string_view error_line) override;
  // upstream::PinnedOwner
  void on_pinned_ready(upstream::UpstreamConn& c) override;
  void on_pinned_lost(upstream::UpstreamConn& c) override;

  net::Loop& loop_;
  const config::FallbackConfig& cfg_;
  upstream::UpstreamPool& pool_;
  int default_db_;                          // the database pool connections use
  Mode mode_;
  bool active_ = false;                     // sessions answer locally
  bool replay_pending_ = false;             // records left by an earlier run wait for Redis
  LocalStore store_;
  std::unique_ptr<Journal> journal_;        // local mode only
  std::unique_ptr<DeadLetter> dead_letter_; // local mode only
  std::unique_ptr<Journal::Reader> reader_; // during a replay
  upstream::UpstreamConn* replay_conn_ = nullptr;  // dedicated connection of the replay
  bool replay_conn_ready_ = false;
  int replay_db_ = 0;                       // database selected on replay_conn_
  core::RingQueue<InFlight> inflight_;      // sent, awaiting Redis's reply, in order
  uint64_t done_seq_ = 0;                   // newest record answered (applied or dead-lettered)
  uint64_t unacked_ = 0;                    // records answered since the last acknowledge()
  bool reader_done_ = false;                // the reader reached the journal's end (for now)
  net::Timer sync_timer_;                   // everysec fsyncs; start-up replay checks
  std::function<void()> on_recovered_;
  FallbackStats stats_;
};

}  // namespace respite::fallback
