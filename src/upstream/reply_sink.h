// ReplySink: what an upstream connection delivers replies to (a client session).
#pragma once

#include <cstdint>
#include <string_view>

namespace respite::upstream {

class ReplySink {
 public:
  virtual ~ReplySink() = default;
  // One complete reply, as the raw RESP bytes Redis sent, for the request the sink
  // registered under `cookie`. The bytes are valid only during the call.
  virtual void on_reply(uint64_t cookie, std::string_view raw) = 0;
  // The request will get no reply from Redis; `error_line` is a complete RESP error
  // ("-ERR ...\r\n") to give the client instead.
  virtual void on_failed(uint64_t cookie, std::string_view error_line) = 0;
  // A frame that answers no request: a pub/sub message or a MONITOR line, on a dedicated
  // connection in push mode (see UpstreamConn::PushKind). The bytes are valid only during
  // the call.
  virtual void on_push(std::string_view raw) { (void)raw; }
  // Bytes from a dedicated connection in tunnel mode (after SYNC/PSYNC), unframed.
  virtual void on_tunnel(std::string_view bytes) { (void)bytes; }
};

}  // namespace respite::upstream
