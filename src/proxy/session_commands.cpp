// The request side of ClientSession: what each kind of request does to the client's state
// and where it goes (answered here, a shared connection, or the pinned one). The connection
// commands respite answers from the client's own view (CLIENT, HELLO, AUTH...) are in
// session_connection.cpp; lifecycle, sending, pinning and reply ordering in client_session.cpp.
#include <algorithm>

#include "auth/authenticator.h"
#include "cache/near_cache.h"
#include "core/errors.h"
#include "core/parse.h"
#include "net/loop.h"
#include "proxy/client_session.h"
#include "proxy/server.h"
#include "resp/resp_writer.h"

namespace respite::proxy {
namespace {

using PushKind = upstream::UpstreamConn::PushKind;

// One RESP2 confirmation of an unsubscribe when nothing was subscribed (what Redis sends).
void append_unsubscribed(std::string& out, std::string_view kind, const std::string_view* channel) {
  out.append("*3\r\n");
  resp::append_bulk(out, kind);
  if (channel) {
    resp::append_bulk(out, *channel);
  } else {
    out.append("$-1\r\n");
  }
  out.append(":0\r\n");
}

}  // namespace

// ---- routing -------------------------------------------------------------------------

bool ClientSession::handle(const resp::Request& req, std::string_view raw) {
  Args args(req.args.data(), req.args.size());
  cmd::Decision d = cmd::classify(server_.commands(), args);
  discard_ = reply_off_ || skip_next_;
  skip_next_ = false;

  // Rate limits come first: a refused or held request costs nothing further. Commands
  // queued in a transaction are charged together at EXEC (handle_in_multi).
  if (!(in_multi_ && pinned_) && !limit_admitted_ && limiter_.active() && !limits_pass_fast(d)) {
    if (Gate g = rate_gate(d, args); g != Gate::Go) return g == Gate::Done;
  }

  if (!authenticated_ && d.kind != cmd::Kind::Auth && d.kind != cmd::Kind::Hello && d.kind != cmd::Kind::Quit &&
      d.kind != cmd::Kind::Reset) {
    // Redis checks arity first, then authentication.
    reply_error(d.arity_ok ? std::string(errors::kNoAuth) : errors::wrong_arity(cmd::display_name(d, args)));
    return true;
  }
  if (!d.info && cmd::iequals(args[0], "respite")) {
    if (in_multi_) {
      multi_poisoned_ = true;
      reply_error(errors::not_in_multi("respite"));
      return true;
    }
    return handle_respite(args);
  }
  if (server_.denied(d, args)) {
    ++server_.stats().denied;
    // Inside MULTI a refused command fails the transaction, like a queue-time error in Redis.
    if (in_multi_) multi_poisoned_ = true;
    reply_error(errors::denied(cmd::display_name(d, args)));
    return true;
  }
  // Inside MULTI and in subscribed mode Redis judges (and queues or refuses) nearly every
  // command itself, arity included: forward so its answer and its transaction state are exact.
  if (in_multi_ && pinned_) return handle_in_multi(d, req, raw);
  if (subscribed() && pinned_) return handle_subscribed(d, req, raw);

  if (!d.arity_ok) {
    reply_error(errors::wrong_arity(cmd::display_name(d, args)));
    return true;
  }
  if (multi_refused_) {
    // MULTI itself was refused: the commands a client pipelined after it must not run
    // outside a transaction. EXEC then fails the way Redis fails a transaction with errors.
    if (d.kind == cmd::Kind::Quit || d.kind == cmd::Kind::Reset || d.kind == cmd::Kind::Multi) {
      multi_refused_ = false;  // a new MULTI tries again
    } else {
      if (d.kind == cmd::Kind::Exec || d.kind == cmd::Kind::Discard) multi_refused_ = false;
      reply_error(d.kind == cmd::Kind::Exec ? std::string(errors::kExecAbort) : multi_refusal_);
      return true;
    }
  }
  if (d.info) last_cmd_ = d.info;  // unknown names are not echoed (CLIENT LIST is line-based)
  // Redis unreachable: plain and stateful requests are answered locally (session_fallback.cpp);
  // connection commands (AUTH, HELLO, CLIENT, QUIT, RESET...) keep their usual path.
  if (server_.fallback_active() && !pinned_ && (d.kind == cmd::Kind::Plain || fallback_refuses_kind(d)))
    return handle_fallback(d, args);

  switch (d.kind) {
    case cmd::Kind::Plain:
      return forward_plain(d, req, raw);
    case cmd::Kind::Quit:
      reply_local(errors::kOk);
      finish_after_replies();
      return true;
    case cmd::Kind::Reset:
      if (pinned_) {
        if (!pin_ready_ || !may_send_on(pinned_)) return false;
        if (!forward_pinned(req, raw, 1, push_kind())) return false;
        pin_dirty_ = true;
      } else {
        reply_local("+RESET\r\n");
      }
      handle_reset_locally();
      return true;
    case cmd::Kind::Auth:
      handle_auth(args);
      return true;
    case cmd::Kind::Hello:
      handle_hello(args);
      return true;
    case cmd::Kind::Select:
      return handle_select(req, raw);
    case cmd::Kind::Multi:
    case cmd::Kind::Watch: {
      Pin p = ensure_pinned();
      if (p == Pin::Wait) return false;
      if (p != Pin::Ready) {
        if (d.kind == cmd::Kind::Multi) {
          multi_refused_ = true;
          multi_refusal_ = "-ERR transaction refused: MULTI could not get a dedicated upstream connection\r\n";
        }
        return true;
      }
      if (!forward_pinned(req, raw)) return false;
      if (d.kind == cmd::Kind::Multi) {
        in_multi_ = true;
        multi_queued_ = 0;
        multi_flush_ = false;
        multi_cmds_.clear();
      } else {
        watching_ = true;
      }
      return true;
    }
    case cmd::Kind::Exec:
    case cmd::Kind::Discard:
      // Without MULTI: Redis's own error ("EXEC without MULTI"); WATCHes stay.
      return forward(req, raw);
    case cmd::Kind::Unwatch:
      if (!forward(req, raw)) return false;
      watching_ = false;
      return true;
    case cmd::Kind::Subscribe:
    case cmd::Kind::Psubscribe:
    case cmd::Kind::Ssubscribe:
    case cmd::Kind::Unsubscribe:
    case cmd::Kind::Punsubscribe:
    case cmd::Kind::Sunsubscribe:
      return handle_subscription(d, req, raw);
    case cmd::Kind::Monitor: {
      Pin p = ensure_pinned();
      if (p == Pin::Wait) return false;
      if (p != Pin::Ready) return true;
      if (!forward_pinned(req, raw, 1, PushKind::Monitor)) return false;
      pin_dirty_ = true;
      monitor_ = true;
      return true;
    }
    case cmd::Kind::Blocking: {
      Pin p = ensure_pinned();
      if (p == Pin::Wait) return false;
      if (p != Pin::Ready) return true;
      // BLMOVE, BLPOP... change the keys they pop from.
      CacheAfter after = cache_before_write(d, args);
      uint64_t before = next_seq_;
      if (!forward_pinned(req, raw, 1, push_kind())) return false;
      cache_after_send(before, after);
      return true;
    }
    case cmd::Kind::Replconf: {
      Pin p = ensure_pinned();
      if (p == Pin::Wait) return false;
      if (p != Pin::Ready) return true;
      if (!forward_pinned(req, raw)) return false;
      // The connection now carries replica settings: it stays this client's, and is closed after.
      pin_dirty_ = true;
      pin_reusable_ = false;
      replica_ = true;
      return true;
    }
    case cmd::Kind::Sync: {
      Pin p = ensure_pinned();
      if (p == Pin::Wait) return false;
      if (p != Pin::Ready) return true;
      // Every earlier reply must be out before the stream starts.
      if (inflight_ > 0 || !slots_.empty()) return false;
      if (!pinned_->start_tunnel(this, req.is_inline ? std::string_view() : raw)) {
        reply_error(errors::kUpstreamUnavailable);
        return true;
      }
      if (req.is_inline) {
        std::string encoded;
        for (const auto& a : args) encoded.append(a).push_back(' ');
        encoded.back() = '\r';
        encoded.append("\n");
        pinned_->send_tunnel(encoded);
      }
      pin_dirty_ = true;
      pin_reusable_ = false;
      replica_ = true;
      tunnel_ = true;
      return true;
    }
    case cmd::Kind::Refuse:
      reply_error(errors::not_supported(cmd::display_name(d, args), "the Lua debugger would take over a shared connection"));
      return true;
    default:
      return handle_client(d, req, raw);
  }
}

bool ClientSession::handle_in_multi(const cmd::Decision& d, const resp::Request& req, std::string_view raw) {
  if (!pin_ready_ || !may_send_on(pinned_)) return false;
  Args args(req.args.data(), req.args.size());
  if (d.info) last_cmd_ = d.info;
  switch (d.kind) {
    case cmd::Kind::Quit:
      reply_local(errors::kOk);
      finish_after_replies();
      return true;
    case cmd::Kind::Reset:
      if (!forward_pinned(req, raw)) return false;
      pin_dirty_ = true;  // Redis logged the connection out and selected db 0
      handle_reset_locally();
      return true;
    case cmd::Kind::Replconf:
    case cmd::Kind::Sync:
      // Queued (SYNC/PSYNC are then refused by Redis at EXEC time); the connection may carry
      // replica settings afterwards: never reused.
      if (!forward_pinned(req, raw)) return false;
      pin_dirty_ = true;
      pin_reusable_ = false;
      ++multi_queued_;
      return true;
    case cmd::Kind::Exec:
    case cmd::Kind::Discard: {
      // The transaction is charged now, one request per queued command. Refused: it is
      // discarded (its commands never run) and EXEC answers the refusal.
      Gate gate = d.kind == cmd::Kind::Exec && !multi_poisoned_ ? rate_gate(d, args) : Gate::Go;
      if (gate == Gate::Wait) return false;
      if (gate == Gate::Done) {
        const std::string_view discard[] = {"DISCARD"};
        bool was_discarding = discard_;
        discard_ = true;  // DISCARD's +OK is not the client's: it already has EXEC's reply
        send_args_on(pinned_, discard);
        discard_ = was_discarding;
      } else if (multi_poisoned_) {
        // A command was refused while queueing: abort as Redis does after a queue-time error.
        const std::string_view discard[] = {"DISCARD"};
        if (!send_args_on(pinned_, discard, d.kind == cmd::Kind::Exec ? errors::kExecAbort : errors::kOk))
          return false;
      } else {
        // The queued commands run now: a write of keys respite did not track (they were
        // queued earlier), so the client is fenced like after a script.
        uint64_t before = next_seq_;
        if (!forward_pinned(req, raw)) return false;
        // SWAPDB sends no invalidation at all: a transaction with one flushes the cache.
        if (d.kind == cmd::Kind::Exec) cache_after_send(before, multi_flush_ ? CacheAfter::Flush : CacheAfter::Fence);
      }
      in_multi_ = false;
      multi_poisoned_ = false;
      multi_flush_ = false;
      watching_ = false;
      multi_cmds_.clear();
      return true;
    }
    case cmd::Kind::Subscribe:
    case cmd::Kind::Psubscribe:
    case cmd::Kind::Ssubscribe:
    case cmd::Kind::Monitor:
    case cmd::Kind::Auth:
    case cmd::Kind::Hello:
    case cmd::Kind::ClientId:
    case cmd::Kind::ClientSetname:
    case cmd::Kind::ClientGetname:
    case cmd::Kind::ClientInfo:
    case cmd::Kind::ClientList:
    case cmd::Kind::ClientKill:
    case cmd::Kind::ClientNoEvict:
    case cmd::Kind::ClientReply:
    case cmd::Kind::ClientUnblock:
    case cmd::Kind::ClientGetredir:
    case cmd::Kind::ClientTracking:
    case cmd::Kind::ClientTrackingInfo:
    case cmd::Kind::ClientCaching:
    case cmd::Kind::ClientSetinfo:
    case cmd::Kind::Refuse:
      if (d.arity_ok) {
        // Run at EXEC, these would switch the pinned connection's mode or act on it instead
        // of on the client respite shows. Refused, and the transaction fails like one with
        // a queue-time error in Redis.
        multi_poisoned_ = true;
        reply_error(errors::not_in_multi(d.info->name));
        return true;
      }
      return forward_pinned(req, raw);
    case cmd::Kind::Select:
      db_unknown_ = true;  // takes effect at EXEC, if the transaction runs
      [[fallthrough]];
    default:
      if (!forward_pinned(req, raw)) return false;
      ++multi_queued_;
      if (server_.limiter().active()) multi_cmds_.push_back(d.info);
      if (server_.cache().enabled() && server_.cache().policy().role(d, args) == cache::Role::Flush) multi_flush_ = true;
      return true;
  }
}

bool ClientSession::handle_subscribed(const cmd::Decision& d, const resp::Request& req, std::string_view raw) {
  if (!pin_ready_ || !may_send_on(pinned_)) return false;
  if (d.info) last_cmd_ = d.info;
  switch (d.kind) {
    case cmd::Kind::Quit:
      reply_local(errors::kOk);
      finish_after_replies();
      return true;
    case cmd::Kind::Reset:
      if (!forward_pinned(req, raw, 1, PushKind::Pubsub)) return false;
      pin_dirty_ = true;  // Redis logged the connection out and selected db 0
      handle_reset_locally();
      return true;
    case cmd::Kind::Subscribe:
    case cmd::Kind::Psubscribe:
    case cmd::Kind::Ssubscribe:
    case cmd::Kind::Unsubscribe:
    case cmd::Kind::Punsubscribe:
    case cmd::Kind::Sunsubscribe:
      if (d.arity_ok) return handle_subscription(d, req, raw);
      return forward_pinned(req, raw, 1, PushKind::Pubsub);
    default:
      // PING is answered ["pong", msg]; anything else gets Redis's subscribed-mode error.
      return forward_pinned(req, raw, 1, PushKind::Pubsub);
  }
}

bool ClientSession::handle_subscription(const cmd::Decision& d, const resp::Request& req, std::string_view raw) {
  Args args(req.args.data(), req.args.size());
  // Redis sends (un)subscribe confirmations and messages even under CLIENT REPLY OFF/SKIP.
  discard_ = false;
  std::unordered_set<std::string>* set = nullptr;
  std::string_view unsub_name;
  bool subscribe = false;
  switch (d.kind) {
    case cmd::Kind::Subscribe:
      subscribe = true;
      [[fallthrough]];
    case cmd::Kind::Unsubscribe:
      set = &channels_;
      unsub_name = "unsubscribe";
      break;
    case cmd::Kind::Psubscribe:
      subscribe = true;
      [[fallthrough]];
    case cmd::Kind::Punsubscribe:
      set = &patterns_;
      unsub_name = "punsubscribe";
      break;
    case cmd::Kind::Ssubscribe:
      subscribe = true;
      [[fallthrough]];
    default:
      set = &shard_channels_;
      unsub_name = "sunsubscribe";
      break;
  }
  if (!subscribe && !pinned_) {
    // Not subscribed to anything: Redis would confirm each unsubscribe with a count of 0.
    std::string out;
    if (args.size() == 1) {
      append_unsubscribed(out, unsub_name, nullptr);
    } else {
      for (size_t i = 1; i < args.size(); ++i) append_unsubscribed(out, unsub_name, &args[i]);
    }
    reply_local(out);
    return true;
  }
  if (subscribe) {
    Pin p = ensure_pinned();
    if (p == Pin::Wait) return false;
    if (p != Pin::Ready) return true;
  } else if (!pin_ready_ || !may_send_on(pinned_)) {
    return false;
  }
  // Redis confirms every channel named, or with no names, every channel dropped (at least one).
  size_t replies = args.size() > 1 ? args.size() - 1 : std::max<size_t>(1, set->size());
  bool was_subscribed = subscribed();
  if (!forward_pinned(req, raw, replies, (subscribe || was_subscribed) ? PushKind::Pubsub : PushKind::None))
    return false;
  if (subscribe) {
    for (size_t i = 1; i < args.size(); ++i) set->emplace(args[i]);
  } else if (args.size() == 1) {
    set->clear();
  } else {
    for (size_t i = 1; i < args.size(); ++i) set->erase(std::string(args[i]));
  }
  return true;
}

void ClientSession::clear_state() {
  in_multi_ = false;
  multi_poisoned_ = false;
  multi_queued_ = 0;
  multi_flush_ = false;
  multi_cmds_.clear();
  watching_ = false;
  monitor_ = false;
  tracking_ = false;
  redirect_ = -1;
  db_ = server_.shared_db();
  db_unknown_ = false;
  channels_.clear();
  patterns_.clear();
  shard_channels_.clear();
}

bool ClientSession::has_state() const {
  return in_multi_ || watching_ || monitor_ || tracking_ || subscribed() || db_unknown_ || replica_ ||
         db_ != server_.shared_db();
}

PushKind ClientSession::push_kind() const {
  if (monitor_) return PushKind::Monitor;
  if (subscribed()) return PushKind::Pubsub;
  return PushKind::None;
}

// ---- introspection ---------------------------------------------------------------------

}  // namespace respite::proxy
