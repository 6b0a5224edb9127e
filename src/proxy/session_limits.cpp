// The rate-limit side of ClientSession: who the client is for the limits, and the check
// every request passes before it is answered or sent (docs/rate-limits.md).
#include <uv.h>

#include "auth/authenticator.h"
#include "proxy/client_session.h"
#include "proxy/server.h"
#include "ratelimit/identity.h"

namespace respite::proxy {

std::string ClientSession::limit_identity() const {
  return ratelimit::identity_of({server_.auth().required(), authenticated_, user_, name_, peer_, id_});
}

ClientSession::Gate ClientSession::rate_gate(const cmd::Decision& d, Args args) {
  ratelimit::Limiter& limiter = server_.limiter();
  if (limit_admitted_ || !limiter.active()) return Gate::Go;
  // Never limited: leaving, and respite's own admin commands.
  if (d.kind == cmd::Kind::Quit || (!d.info && cmd::iequals(args[0], "respite"))) return Gate::Go;
  if (limits_stale_) {
    limiter.set_identity(limits_, limit_identity());
    limits_stale_ = false;
  }
  // One clock reading per batch of input: the requests of one read arrived together.
  const bool exec = d.kind == cmd::Kind::Exec && in_multi_;
  ratelimit::Verdict v = exec ? limiter.admit_batch(limits_, multi_cmds_, batch_now_, server_.held())
                              : limiter.admit(limits_, d.info, batch_now_, server_.held());
  switch (v.kind) {
    case ratelimit::Verdict::Kind::Allow:
      limit_admitted_ = true;
      return Gate::Go;
    case ratelimit::Verdict::Kind::Delay:
      // Held: the request stays in the input buffer, and is framed again (already admitted)
      // when the server releases it. Nothing behind it is read meanwhile.
      limit_admitted_ = true;
      held_ = true;
      server_.hold(this, v.wait_ns);
      return Gate::Wait;
    case ratelimit::Verdict::Kind::Reject:
      ++server_.stats().rate_limited;
      reply_error(ratelimit::Limiter::refusal(v));
      return Gate::Done;
  }
  return Gate::Go;
}

void ClientSession::release_hold() {
  if (!held_) return;
  held_ = false;
  resume();
}

}  // namespace respite::proxy
