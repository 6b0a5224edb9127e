// The connection commands respite answers from its own view of the client (CLIENT ...,
// AUTH, HELLO, SELECT, RESET), and the client's CLIENT LIST line. What other requests do is in
// session_commands.cpp.
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

// Redis accepts names of printable ASCII without spaces ('!' to '~').
bool valid_client_name(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char c) { return c >= '!' && c <= '~'; });
}

std::string integer_reply(int64_t n) { return ":" + std::to_string(n) + "\r\n"; }

}  // namespace

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
      reply_local(name_.empty() ? std::string("$-1\r\n") : resp::bulk_string(name_));
      return true;
    case cmd::Kind::ClientInfo: {
      std::string line;
      describe(line);
      line.push_back('\n');
      reply_local(resp::bulk_string(line));
      return true;
    }
    case cmd::Kind::ClientList: {
      std::string out;
      if (server_.client_list(args, out)) {
        reply_local(resp::bulk_string(out));
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
  resp::append_bulk(out, "server");
  resp::append_bulk(out, "redis");
  resp::append_bulk(out, "version");
  resp::append_bulk(out, server_.commands().redis_version());
  resp::append_bulk(out, "proto");
  out.append(":2\r\n");
  resp::append_bulk(out, "id");
  out.append(integer_reply(static_cast<int64_t>(id_)));
  resp::append_bulk(out, "mode");
  resp::append_bulk(out, "standalone");
  resp::append_bulk(out, "role");
  resp::append_bulk(out, "master");
  resp::append_bulk(out, "modules");
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
