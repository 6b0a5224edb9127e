#include "fallback/fallback.h"

#include <sys/time.h>

#include "net/loop.h"
#include "obs/log.h"

namespace respite::fallback {
namespace {

using State = upstream::CircuitBreaker::State;

Mode parse_mode(const std::string& m) {
  if (m == "local") return Mode::Local;
  if (m == "read-only") return Mode::ReadOnly;
  return Mode::Off;
}

FsyncPolicy parse_fsync(const std::string& f) {
  if (f == "everysec") return FsyncPolicy::EverySec;
  if (f == "no") return FsyncPolicy::No;
  return FsyncPolicy::Always;
}

std::string join_path(const std::string& dir, const std::string& file) {
  if (dir.empty() || dir.back() == '/') return dir + file;
  return dir + "/" + file;
}

}  // namespace

uint64_t wall_clock_ms() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  return static_cast<uint64_t>(tv.tv_sec) * 1000 + static_cast<uint64_t>(tv.tv_usec) / 1000;
}

Fallback::Fallback(net::Loop& loop, const config::FallbackConfig& cfg, upstream::UpstreamPool& pool, int default_db)
    : loop_(loop),
      cfg_(cfg),
      pool_(pool),
      default_db_(default_db),
      mode_(parse_mode(cfg.mode)),
      store_(cfg.max_memory),
      sync_timer_(loop) {
  pool_.configure_breaker({cfg.breaker_failures, static_cast<uint64_t>(cfg.breaker_open_ms),
                           static_cast<uint64_t>(cfg.breaker_open_max_ms)});
  pool_.breaker().set_on_change([this](State from, State to, std::string_view why) { on_breaker(from, to, why); });
}

Fallback::~Fallback() { pool_.breaker().set_on_change(nullptr); }

bool Fallback::start(std::string& error) {
  // Every 100 ms: a breaker whose least time open is over while a connection is ready (it
  // came back earlier) half-opens; everysec fsyncs; the start of a replay left pending.
  sync_timer_.start(100, 100, [this] { tick(); });
  if (mode_ != Mode::Local) return true;
  RecoveryReport report;
  const std::string path = join_path(cfg_.data_dir, cfg_.journal_file);
  journal_ = Journal::open(path, parse_fsync(cfg_.fsync), report, error);
  if (!journal_) {
    error = "fallback journal: " + error;
    return false;
  }
  if (!report.detail.empty()) obs::warn("fallback journal {}: {}", path, report.detail);
  dead_letter_ = DeadLetter::open(join_path(cfg_.data_dir, cfg_.dead_letter_file), error);
  if (!dead_letter_) {
    error = "fallback dead-letter file: " + error;
    return false;
  }
  if (journal_->records() > 0) {
    obs::warn("fallback journal {}: {} writes acknowledged during an earlier outage wait to be replayed; "
              "clients are answered locally until they are",
              path, journal_->records());
    replay_pending_ = true;
    activate("a journal from an earlier run waits to be replayed");
  } else {
    obs::info("fallback: mode local, journal {} (fsync {})", path, cfg_.fsync);
  }
  return true;
}

void Fallback::tick() {
  const uint64_t now = loop_.now_ms();
  upstream::CircuitBreaker& b = pool_.breaker();
  if (b.probe_due(now) && pool_.ready_count() > 0) b.success(now);
  if (journal_) journal_->sync_if_due(now);
  // A journal left by an earlier run: the breaker may never leave Closed, so no half-open
  // transition starts its replay.
  if (replay_pending_ && !replay_conn_ && b.state() != State::Open && pool_.ready_count() > 0) start_replay();
}

void Fallback::shutdown() {
  sync_timer_.stop();
  if (replay_conn_) stop_replay("respite is shutting down");
  if (journal_) {
    std::string error;
    if (!journal_->sync(error)) obs::error("fallback journal: {}", error);
  }
}

void Fallback::activate(std::string_view why) {
  if (active_) return;
  active_ = true;
  ++stats_.activations;
  obs::warn("fallback active ({}): {}; clients are answered from local memory ({})", cfg_.mode, why,
            mode_ == Mode::Local ? "writes are journaled" : "writes are refused");
}

void Fallback::on_breaker(State from, State to, std::string_view why) {
  obs::warn("circuit breaker {} -> {}: {}", upstream::CircuitBreaker::name(from), upstream::CircuitBreaker::name(to),
            why);
  if (to == State::Open) {
    if (replay_conn_) stop_replay(why);
    if (mode_ != Mode::Off) activate(why);
  } else if (to == State::HalfOpen) {
    if (mode_ == Mode::Off || !active_) {
      pool_.breaker().recovered();
    } else {
      start_replay();
    }
  }
}

bool Fallback::journal(int db, std::span<const std::string> args, std::string& error) {
  if (!journal_) {
    error = "no journal";
    return false;
  }
  if (journal_->bytes() >= cfg_.max_journal_bytes) {
    error = "the journal is full (fallback.max_journal_bytes)";
    ++stats_.journal_errors;
    return false;
  }
  std::vector<std::string_view> views(args.begin(), args.end());
  if (!journal_->append(db, views, wall_clock_ms(), error)) {
    ++stats_.journal_errors;
    obs::error("fallback journal: {}; the write was refused", error);
    return false;
  }
  ++stats_.journaled;
  return true;
}

void Fallback::start_replay() {
  if (replay_conn_) return;
  ++stats_.replays;
  replay_pending_ = false;
  if (!journal_ || journal_->records() == 0) {
    finish_replay();
    return;
  }
  replay_conn_ = pool_.acquire_pinned(this);
  if (!replay_conn_) {
    obs::warn("fallback: no dedicated connection for the replay (upstream.max_pinned reached); retrying");
    replay_pending_ = true;
    return;
  }
  replay_conn_ready_ = replay_conn_->ready();
  replay_db_ = default_db_;
  reader_ = std::make_unique<Journal::Reader>(journal_->reader());
  reader_done_ = false;
  unacked_ = 0;
  obs::info("fallback: replaying {} journaled writes to Redis", journal_->records());
  if (replay_conn_ready_) pump();
}

void Fallback::pump() {
  while (replay_conn_ && replay_conn_ready_ && inflight_.size() < cfg_.replay_batch) {
    InFlight f;
    std::string error;
    if (!reader_->next(f.record, error)) {
      if (!error.empty()) {
        obs::error("fallback: reading the journal for the replay failed: {}", error);
        stop_replay("journal read error");
        replay_pending_ = true;
        return;
      }
      reader_done_ = true;
      break;
    }
    reader_done_ = false;
    if (f.record.db != replay_db_) {
      const std::string db = std::to_string(f.record.db);
      const std::string_view select[] = {"SELECT", db};
      InFlight s;
      s.select = true;
      s.record.db = f.record.db;
      s.record.seq = 0;
      if (replay_conn_->send_args(this, 0, select, 1) == 0) {
        stop_replay("the replay connection refused a request");
        return;
      }
      inflight_.push_back(std::move(s));
      replay_db_ = f.record.db;
    }
    std::vector<std::string_view> args(f.record.args.begin(), f.record.args.end());
    if (replay_conn_->send_args(this, f.record.seq, args, 1) == 0) {
      stop_replay("the replay connection refused a request");
      return;
    }
    inflight_.push_back(std::move(f));
  }
  if (replay_conn_ && reader_done_ && inflight_.empty()) {
    // Everything the reader saw is answered. Writes clients made meanwhile are after it:
    // a new reader (from the acknowledged point) picks them up; none left: done.
    acknowledge();
    if (journal_->records() > 0) {
      reader_ = std::make_unique<Journal::Reader>(journal_->reader());
      reader_done_ = false;
      pump();
      return;
    }
    finish_replay();
  }
}

void Fallback::on_reply(uint64_t cookie, std::string_view raw) {
  if (!replay_conn_ || inflight_.empty()) return;
  InFlight f = std::move(inflight_.front());
  inflight_.pop_front();
  (void)cookie;
  if (upstream::UpstreamConn::cannot_serve(raw)) {
    // Redis is not serving after all: the breaker hears it from the connection and opens.
    // This record was not applied; it is replayed again next time.
    stop_replay("Redis replied that it cannot serve");
    return;
  }
  if (f.select) {
    if (raw.starts_with("-")) {
      obs::error("fallback: SELECT {} failed during the replay: {}", f.record.db, raw.substr(0, raw.find('\r')));
      stop_replay("SELECT failed");
    }
    return;
  }
  if (raw.starts_with("-")) {
    std::string_view line = raw.substr(1, raw.find('\r') == std::string_view::npos ? raw.size() - 1 : raw.find('\r') - 1);
    std::string error;
    if (!dead_letter_->append(f.record, line, wall_clock_ms(), error)) {
      // Not recorded anywhere: keep the record in the journal and stop, rather than lose it.
      obs::error("fallback: writing the dead-letter file failed ({}); replay stopped", error);
      stop_replay("dead-letter write failed");
      replay_pending_ = true;
      return;
    }
    ++stats_.dead_lettered;
    obs::warn("fallback: journaled write #{} refused by Redis during the replay ({}); see the dead-letter file",
              f.record.seq, line);
  } else {
    ++stats_.replayed;
  }
  done_seq_ = f.record.seq;
  if (++unacked_ >= cfg_.replay_batch || inflight_.empty()) acknowledge();
  if (replay_conn_) pump();
}

void Fallback::acknowledge() {
  if (unacked_ == 0 || !journal_) return;
  std::string error;
  if (!journal_->acknowledge(done_seq_, error)) {
    obs::error("fallback: recording the replay's progress failed: {}", error);
    // Not fatal: the records would be replayed again after a restart (at least once).
  }
  unacked_ = 0;
}

void Fallback::on_failed(uint64_t, std::string_view error_line) {
  if (!replay_conn_) return;
  obs::warn("fallback: replay interrupted: {}", error_line.substr(0, error_line.find('\r')));
  stop_replay("the replay connection failed");
}

void Fallback::stop_replay(std::string_view why) {
  acknowledge();
  if (replay_conn_) {
    ++stats_.replay_aborts;
    obs::warn("fallback: replay stopped ({}); it resumes after the last acknowledged write once Redis is back", why);
    upstream::UpstreamConn* c = replay_conn_;
    replay_conn_ = nullptr;
    replay_conn_ready_ = false;
    pool_.release_pinned(c, true, false);
  }
  inflight_.clear();
  reader_.reset();
}

void Fallback::finish_replay() {
  reader_.reset();  // before the truncation, which a reader must not see
  if (journal_) {
    std::string error;
    if (!journal_->truncate_all(error)) obs::error("fallback: truncating the replayed journal failed: {}", error);
  }
  if (replay_conn_) {
    upstream::UpstreamConn* c = replay_conn_;
    replay_conn_ = nullptr;
    replay_conn_ready_ = false;
    pool_.release_pinned(c, true);
  }
  reader_.reset();
  store_.clear();
  const bool was_active = active_;
  active_ = false;
  pool_.breaker().recovered();
  if (on_recovered_) on_recovered_();
  if (was_active) {
    obs::info("fallback over: Redis serves again ({} writes replayed, {} dead-lettered so far)", stats_.replayed,
              stats_.dead_lettered);
  }
}

void Fallback::on_pinned_ready(upstream::UpstreamConn& c) {
  if (&c != replay_conn_) return;
  replay_conn_ready_ = true;
  pump();
}

void Fallback::on_pinned_lost(upstream::UpstreamConn& c) {
  if (&c != replay_conn_) return;
  replay_conn_ = nullptr;  // the pool retired it
  replay_conn_ready_ = false;
  ++stats_.replay_aborts;
  acknowledge();
  inflight_.clear();
  reader_.reset();
  replay_pending_ = true;  // retried by the timer while the breaker is not open
  obs::warn("fallback: the replay connection was lost; the replay resumes after the last acknowledged write");
}

uint64_t Fallback::journal_bytes() const { return journal_ ? journal_->bytes() : 0; }
uint64_t Fallback::journal_records() const { return journal_ ? journal_->records() : 0; }

std::string Fallback::stats_text() const {
  std::string out = "# Fallback\r\n";
  auto line = [&](std::string_view key, const std::string& value) {
    out.append(key).append(":").append(value).append("\r\n");
  };
  auto num = [&](std::string_view key, uint64_t v) { line(key, std::to_string(v)); };
  const auto& b = pool_.breaker();
  line("mode", cfg_.mode);
  line("breaker", upstream::CircuitBreaker::name(b.state()));
  num("breaker_opens", b.opens());
  num("active", active_ ? 1 : 0);
  num("replaying", replay_conn_ ? 1 : 0);
  num("activations", stats_.activations);
  num("local_replies", stats_.local_replies);
  num("stale_replies", stats_.stale_replies);
  num("misses", stats_.misses);
  num("refused", stats_.refused);
  num("journaled", stats_.journaled);
  num("journal_errors", stats_.journal_errors);
  num("journal_bytes", journal_bytes());
  num("journal_records", journal_records());
  num("replays", stats_.replays);
  num("replay_aborts", stats_.replay_aborts);
  num("replayed", stats_.replayed);
  num("dead_lettered", stats_.dead_lettered);
  num("store_keys", store_.keys());
  num("store_bytes", store_.bytes());
  return out;
}

}  // namespace respite::fallback
