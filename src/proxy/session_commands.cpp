// The request side of ClientSession: what each kind of request does to the client's state
// and where it goes (answered here, a shared connection, or the pinned one), and the
// connection commands respite answers from the client's own view (CLIENT, HELLO, AUTH...).
// Lifecycle, sending, pinning and reply ordering are in client_session.cpp.
#include <algorithm>

#include "auth/authenticator.h"
#include "cache/near_cache.h"
#include "core/errors.h"
#include "core/parse.h"
#include "net/loop.h"
#include "proxy/client_session.h"
#include "proxy/server.h"

namespace respite::proxy {
namespace {

using PushKind = upstream::UpstreamConn::PushKind;

// Redis accepts names of printable ASCII without spaces ('!' to '~').
bool valid_client_name(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char c) { return c >= '!' && c <= '~'; });
}

void append_bulk(std::string& out, std::string_view s) {
  out.append("$").append(std::to_string(s.size())).append("\r\n").append(s).append("\r\n");
}

std::string integer_reply(int64_t n) { return ":" + std::to_string(n) + "\r\n"; }

std::string bulk_reply(std::string_view s) {
  std::string out;
  append_bulk(out, s);
  return out;
}

// One RESP2 confirmation of an unsubscribe when nothing was subscribed (what Redis sends).
void append_unsubscribed(std::string& out, std::string_view kind, const std::string_view* channel) {
  out.append("*3\r\n");
  append_bulk(out, kind);
  if (channel) {
    append_bulk(out, *channel);
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

bool ClientSession::handle_client(const cmd::Decision& d, const resp::Request& req, std::string_view raw) {
  Args args(req.args.data(), req.args.size());
  switch (d.kind) {
    case cmd::Kind::ClientId:
      reply_local(integer_reply(static_cast<int64_t>(id_)));
      return true;
    case cmd::Kind::ClientSetname:
      if (!valid_client_name(args[2])) {
        reply_error(errors::kBadClientName);
      } else {
        name_.assign(args[2]);
        name_bypass_ = server_.cache().bypass_name(name_);
        identity_changed();
        reply_local(errors::kOk);
      }
      return true;
    case cmd::Kind::ClientGetname:
      reply_local(name_.empty() ? std::string("$-1\r\n") : bulk_reply(name_));
      return true;
    case cmd::Kind::ClientInfo: {
      std::string line;
      describe(line);
      line.push_back('\n');
      reply_local(bulk_reply(line));
      return true;
    }
    case cmd::Kind::ClientList: {
      std::string out;
      if (server_.client_list(args, out)) {
        reply_local(bulk_reply(out));
      } else {
        reply_error(out);
      }
      return true;
    }
    case cmd::Kind::ClientKill: {
      bool kill_self = false;
      std::string out = server_.client_kill(this, args, kill_self);
      if (out[0] == '-') {
        reply_error(out);
      } else {
        reply_local(out);
      }
      if (kill_self) finish_after_replies();
      return true;
    }
    case cmd::Kind::ClientNoEvict:
      if (cmd::iequals(args[2], "on") || cmd::iequals(args[2], "off")) {
        reply_local(errors::kOk);
      } else {
        reply_error(errors::kSyntax);
      }
      return true;
    case cmd::Kind::ClientReply:
      if (cmd::iequals(args[2], "on")) {
        reply_off_ = false;
        discard_ = false;
        reply_local(errors::kOk);
      } else if (cmd::iequals(args[2], "off")) {
        reply_off_ = true;
      } else if (cmd::iequals(args[2], "skip")) {
        if (!reply_off_) skip_next_ = true;
      } else {
        reply_error(errors::kSyntax);
      }
      return true;
    case cmd::Kind::ClientUnblock: {
      int64_t target_id = 0;
      if (!core::parse_integer(args[2], target_id)) {
        reply_error(errors::kNotInteger);
        return true;
      }
      if (args.size() > 4 || (args.size() == 4 && !cmd::iequals(args[3], "timeout") && !cmd::iequals(args[3], "error"))) {
        reply_error("-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n");
        return true;
      }
      ClientSession* target = server_.find_session(static_cast<uint64_t>(target_id));
      int64_t upstream_id = target ? target->pinned_upstream_id() : 0;
      if (upstream_id <= 0) {
        reply_local(":0\r\n");
        return true;
      }
      // Only the target's pinned connection can be blocked: unblock it by Redis's id for it.
      std::string up = std::to_string(upstream_id);
      std::string_view fwd[4] = {"CLIENT", "UNBLOCK", up, args.size() == 4 ? args[3] : std::string_view()};
      upstream::UpstreamConn* conn = pinned_ ? pinned_ : route_upstream();
      if (!conn) {
        reply_error(errors::kUpstreamUnavailable);
        return true;
      }
      if (pinned_ && !pin_ready_) return false;
      return send_args_on(conn, Args(fwd, args.size() == 4 ? 4 : 3));
    }
    case cmd::Kind::ClientGetredir:
      reply_local(integer_reply(tracking_ ? redirect_ : -1));
      return true;
    case cmd::Kind::ClientTracking:
      return handle_tracking(req, raw);
    case cmd::Kind::ClientTrackingInfo:
      if (pinned_ && tracking_) return forward(req, raw);
      reply_local("*6\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n");
      return true;
    case cmd::Kind::ClientCaching:
      if (pinned_ && tracking_) return forward(req, raw);
      reply_error(errors::kCachingWithoutTracking);
      return true;
    case cmd::Kind::ClientSetinfo:
      reply_local(errors::kOk);
      return true;
    default:
      return forward(req, raw);
  }
}

bool ClientSession::handle_tracking(const resp::Request& req, std::string_view raw) {
  Args args(req.args.data(), req.args.size());
  bool on = cmd::iequals(args[2], "on");
  if (!on && !cmd::iequals(args[2], "off")) {
    reply_error(errors::kSyntax);
    return true;
  }
  if (!on) {
    if (!pinned_) {
      reply_local(errors::kOk);
      return true;
    }
    if (!forward(req, raw)) return false;
    tracking_ = false;
    redirect_ = -1;
    return true;
  }
  // REDIRECT names a respite client (its CLIENT ID); Redis knows that client's pinned
  // connection by another id, so the argument is rewritten.
  std::vector<std::string_view> out(args.begin(), args.end());
  std::string upstream_id;
  int64_t redirect = 0;
  for (size_t i = 3; i + 1 < args.size(); ++i) {
    if (!cmd::iequals(args[i], "redirect")) continue;
    if (!core::parse_integer(args[i + 1], redirect)) {
      reply_error(errors::kNotInteger);
      return true;
    }
    ClientSession* target = server_.find_session(static_cast<uint64_t>(redirect));
    int64_t up = target ? target->pinned_upstream_id() : 0;
    if (up <= 0) {
      reply_error(errors::kRedirectMissing);
      return true;
    }
    // Redis keeps sending invalidations to that connection: it must never serve another client.
    target->pin_reusable_ = false;
    upstream_id = std::to_string(up);
    out[i + 1] = upstream_id;
    break;
  }
  Pin p = ensure_pinned();
  if (p == Pin::Wait) return false;
  if (p != Pin::Ready) return true;
  if (!may_send_on(pinned_)) return false;
  if (!send_args_on(pinned_, Args(out.data(), out.size()))) return false;
  pin_dirty_ = true;
  tracking_ = true;
  redirect_ = redirect;
  return true;
}

void ClientSession::handle_auth(Args args) {
  if (args.size() > 3) {
    reply_error(errors::kSyntax);
    return;
  }
  std::string_view user = args.size() == 3 ? args[1] : std::string_view();
  if (args.size() == 3 && !server_.auth().required() && user == "default") {
    // Without credentials the default user has no password, and Redis accepts any.
    reply_local(errors::kOk);
    return;
  }
  switch (server_.auth().check(user, args.back())) {
    case auth::Authenticator::Result::Ok:
      authenticated_ = true;
      user_.assign(user.empty() ? std::string_view("default") : user);
      identity_changed();
      reply_local(errors::kOk);
      return;
    case auth::Authenticator::Result::NoPasswordConfigured:
      reply_error(errors::kAuthWithoutPassword);
      return;
    case auth::Authenticator::Result::WrongPass:
      ++server_.stats().auth_failures;
      reply_error(errors::kWrongPass);
      return;
  }
}

void ClientSession::handle_hello(Args args) {
  if (args.size() >= 2) {
    int64_t ver = 0;
    if (!core::parse_integer(args[1], ver)) {
      reply_error(errors::kProtoVersionNotInteger);
      return;
    }
    if (ver < 2 || ver > 3) {
      reply_error(errors::kUnsupportedProto);
      return;
    }
    if (ver == 3) {
      // RESP3 is not offered: clients fall back to RESP2.
      reply_error(errors::noproto());
      return;
    }
  }
  std::string_view user, pass, setname;
  bool auth_given = false, name_given = false;
  for (size_t j = 2; j < args.size(); ++j) {
    size_t more = args.size() - 1 - j;
    if (cmd::iequals(args[j], "auth") && more >= 2) {
      auth_given = true;
      user = args[j + 1];
      pass = args[j + 2];
      j += 2;
    } else if (cmd::iequals(args[j], "setname") && more >= 1) {
      name_given = true;
      setname = args[j + 1];
      j += 1;
    } else {
      std::string e = "-ERR Syntax error in HELLO option '";
      e.append(args[j].substr(0, 128)).append("'\r\n");
      reply_error(e);
      return;
    }
  }
  if (auth_given) {
    auto r = server_.auth().check(user, pass);
    if (r == auth::Authenticator::Result::WrongPass) {
      ++server_.stats().auth_failures;
      reply_error(errors::kWrongPass);
      return;
    }
    authenticated_ = true;
    user_.assign(user);
    identity_changed();
  }
  if (!authenticated_) {
    reply_error(errors::kHelloNoAuth);
    return;
  }
  if (name_given) {
    if (!valid_client_name(setname)) {
      reply_error(errors::kBadClientName);
      return;
    }
    name_.assign(setname);
    name_bypass_ = server_.cache().bypass_name(name_);
    identity_changed();
  }
  std::string out = "*14\r\n";
  append_bulk(out, "server");
  append_bulk(out, "redis");
  append_bulk(out, "version");
  append_bulk(out, server_.commands().redis_version());
  append_bulk(out, "proto");
  out.append(":2\r\n");
  append_bulk(out, "id");
  out.append(integer_reply(static_cast<int64_t>(id_)));
  append_bulk(out, "mode");
  append_bulk(out, "standalone");
  append_bulk(out, "role");
  append_bulk(out, "master");
  append_bulk(out, "modules");
  out.append("*0\r\n");
  reply_local(out);
}

bool ClientSession::handle_select(const resp::Request& req, std::string_view raw) {
  int64_t db = 0;
  if (!core::parse_integer(req.args[1], db) || db < 0 || db > INT32_MAX) {
    // Redis answers the error and nothing changes.
    return forward(req, raw);
  }
  if (db == server_.shared_db()) {
    if (!pinned_) {
      reply_local(errors::kOk);
      return true;
    }
    if (!forward_pinned(req, raw)) return false;
    db_ = static_cast<int>(db);
    return true;
  }
  Pin p = ensure_pinned();
  if (p == Pin::Wait) return false;
  if (p != Pin::Ready) {
    // Commands pipelined behind this SELECT would run in the wrong database: the client is
    // disconnected after the error instead.
    finish_after_replies();
    return true;
  }
  if (!forward_pinned(req, raw)) return false;
  db_ = static_cast<int>(db);  // an index beyond Redis's `databases` is refused there, and only keeps the pin
  return true;
}

void ClientSession::handle_reset_locally() {
  clear_state();
  identity_changed();
  name_.clear();
  name_bypass_ = false;
  cache_bypass_ = false;
  reply_off_ = false;
  skip_next_ = false;
  authenticated_ = !server_.auth().required();
  user_ = "default";
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

void ClientSession::describe(std::string& out) const {
  uint64_t now = server_.loop().now_ms();
  std::string flags;
  if (subscribed()) flags.push_back('P');
  if (in_multi_) flags.push_back('x');
  if (monitor_) flags.push_back('O');
  if (tracking_) flags.push_back('t');
  if (pinned_ && inflight_ > 0 && !in_multi_ && !subscribed() && !monitor_) flags.push_back('b');
  if (replica_) flags.push_back('S');
  if (flags.empty()) flags.push_back('N');
  size_t qbuf = stream_ ? stream_->input().size() : 0;
  size_t omem = stream_ ? stream_->pending_output() : 0;
  auto n = [](auto v) { return std::to_string(v); };
  out.append("id=").append(n(id_));
  out.append(" addr=").append(peer_);
  out.append(" laddr=").append(local_);
  out.append(" fd=").append(n(stream_ ? stream_->fd() : -1));
  out.append(" name=").append(name_);
  out.append(" age=").append(n((now - created_ms_) / 1000));
  out.append(" idle=").append(n((now - last_activity_ms_) / 1000));
  out.append(" flags=").append(flags);
  out.append(" db=").append(n(db_));
  out.append(" sub=").append(n(channels_.size()));
  out.append(" psub=").append(n(patterns_.size()));
  out.append(" ssub=").append(n(shard_channels_.size()));
  out.append(" multi=").append(n(in_multi_ ? multi_queued_ : -1));
  out.append(" qbuf=").append(n(qbuf));
  out.append(" qbuf-free=0 argv-mem=0 multi-mem=0");
  out.append(" rbs=").append(n(stream_ ? stream_->input().capacity() : 0));
  out.append(" rbp=0 obl=0 oll=").append(n(slots_.size()));
  out.append(" omem=").append(n(omem));
  out.append(" tot-mem=").append(n(qbuf + omem));
  out.append(" events=r cmd=").append(last_cmd_ ? std::string_view(last_cmd_->name) : std::string_view("NULL"));
  out.append(" user=").append(user_);
  out.append(" redir=").append(n(tracking_ ? redirect_ : -1));
  out.append(" resp=2");
}

}  // namespace respite::proxy
