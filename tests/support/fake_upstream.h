// FakeUpstream: a scripted stand-in for Redis, for the upstream edge cases a real Redis
// cannot be made to produce on demand (replies split at awkward points, replies held back,
// connections cut mid-reply, protocol garbage, a refused handshake).
//
// It is a TCP server on 127.0.0.1 (port chosen by the kernel) served by one background thread
// around poll(). Every connection's bytes are parsed as RESP multibulk requests. respite's
// handshake (CLIENT SETNAME, and AUTH / SELECT when configured) is answered automatically;
// every other request is recorded and answered by the test's script:
//
//   1. the next queued Action (push()), if any;
//   2. otherwise the script callback (set_script()), if any;
//   3. otherwise a default: PING -> +PONG, ECHO x -> x, GET k -> "value:k", anything else -> +OK.
//
// Replies on one connection leave in request order (FIFO), as Redis's would. A reply can be
// held (Action::held(), or everything while set_holding(true)); a held reply also holds back
// every later reply on its connection until release() lets it go.
//
// Waiting is event-based: the wait_for_* functions block on a condition variable that the
// server thread signals whenever it records something, bounded by a deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/process.h"

namespace respite::test {

class FakeUpstream {
 public:
  // One request as the fake received it.
  struct Request {
    int conn = 0;                    // connection number, 1 for the first accepted
    std::vector<std::string> args;   // the bulk strings
    std::string raw;                 // the exact bytes of the request
    bool handshake = false;          // answered automatically (CLIENT SETNAME, AUTH, SELECT)
  };

  // What to do with one request.
  struct Action {
    std::string bytes;                   // sent as the reply (need not be valid RESP)
    size_t pieces = 1;                   // written in this many separate writes...
    std::chrono::milliseconds pause{0};  // ...with this pause between them
    bool close_after = false;            // close the connection once `bytes` are written
    bool silent = false;                 // send nothing at all, ever
    bool hold = false;                   // keep it (and what follows on the connection) until release()

    // Reply with exactly these bytes.
    static Action reply(std::string bytes);
    // Reply with these bytes in `pieces` writes, `pause` apart (pieces as equal as possible).
    static Action split(std::string bytes, size_t pieces, std::chrono::milliseconds pause);
    // Send `partial` (may be empty), then close the connection.
    static Action close(std::string partial = {});
    // Never answer.
    static Action none();
    // This action, but held until release().
    Action held() const;
  };

  // Runs on the server thread, without the fake's lock held (it may call push(), set_holding()...).
  // Its state persists across calls; state shared with the test thread needs its own sync.
  using Script = std::function<Action(const Request&)>;

  // Binds 127.0.0.1:0 and starts the server thread. Throws std::runtime_error on failure.
  FakeUpstream();
  ~FakeUpstream();  // stops the thread, closes every socket
  FakeUpstream(const FakeUpstream&) = delete;
  FakeUpstream& operator=(const FakeUpstream&) = delete;

  // "$<len>\r\n<s>\r\n": a RESP bulk string, for scripts.
  static std::string bulk(std::string_view s);

  uint16_t port() const { return port_; }
  // "redis://127.0.0.1:<port>"
  std::string url() const;

  // --- scripting (callable at any time from the test thread) ---
  void set_script(Script script);
  // Queues an action for the next unanswered request (FIFO, before the script).
  void push(Action action);
  // The reply to CLIENT SETNAME (default "+OK\r\n"); e.g. "-ERR nope\r\n" to refuse the handshake.
  void set_handshake_reply(std::string bytes);
  // The reply to AUTH (default "+OK\r\n"); e.g. "-WRONGPASS ...\r\n" to refuse the login.
  void set_auth_reply(std::string bytes);
  // While on, every reply produced is held (as if its Action said hold).
  void set_holding(bool on);
  // Releases the `n` oldest held replies (all of them by default), in the order they were held.
  // Returns how many were released.
  size_t release(size_t n = SIZE_MAX);
  // Held replies not yet released.
  size_t held_count() const;

  // --- observation ---
  // Non-handshake requests received so far, in arrival order (across connections).
  std::vector<Request> requests() const;
  size_t request_count() const;
  // Every request including the handshake ones.
  std::vector<Request> all_requests() const;
  // How many CLIENT SETNAME requests arrived (one per handshake attempt).
  size_t handshake_count() const;
  // Connections accepted so far, and how many of them have ended (either side).
  int connections_accepted() const;
  int connections_closed() const;
  // Every byte received on connection `conn` (1-based).
  std::string received_bytes(int conn) const;
  // Something for assertion messages: connections and requests seen.
  std::string describe() const;

  // Each waits until the count reaches `n`; false if the deadline passes first.
  bool wait_for_requests(size_t n, Deadline deadline) const;
  bool wait_for_handshakes(size_t n, Deadline deadline) const;
  bool wait_for_connections(int n, Deadline deadline) const;
  bool wait_for_closed(int n, Deadline deadline) const;

 private:
  // One write unit of a reply.
  struct Chunk {
    std::string bytes;                        // what to write
    size_t written = 0;                       // bytes of it already written
    std::chrono::milliseconds pause_after{0};  // delay before the next chunk may start
    bool close_after = false;                 // close the connection when written
    uint64_t reply_id = 0;                    // the reply this chunk belongs to
    bool held = false;                        // waiting for release()
  };
  struct Conn {
    int id = 0;                    // 1-based number
    int fd = -1;                   // socket
    std::string in;                // received, not yet parsed
    std::deque<Chunk> out;         // replies waiting to be written, in order
    Clock::time_point next_write;  // earliest time the front chunk may start
  };

  void run();                                   // server thread
  void accept_all();
  void read_from(Conn& c, std::unique_lock<std::mutex>& lk);  // reads, parses, answers; may close c
  void handle(Conn& c, Request req, std::unique_lock<std::mutex>& lk);  // one parsed request
  void enqueue(Conn& c, const Action& a);       // chunks for one reply (lock held)
  void write_to(Conn& c, Clock::time_point now);  // writes what is due; may close c
  void close_conn(Conn& c);                     // closes the socket (lock held)
  void wake();                                  // interrupts poll()
  template <typename Pred>
  bool wait_until(Pred pred, Deadline deadline) const;

  uint16_t port_ = 0;          // listening port
  int listen_fd_ = -1;         // listening socket
  int wake_fd_ = -1;           // eventfd that interrupts poll()
  std::thread thread_;         // runs run()

  mutable std::mutex mu_;                // guards everything below
  mutable std::condition_variable cv_;   // signalled whenever something is recorded
  bool stop_ = false;                    // destructor asked the thread to stop
  std::map<int, Conn> conns_;            // open connections by id
  std::map<int, std::string> received_;  // all bytes per connection id (open or closed)
  int accepted_ = 0;                     // connections accepted
  int closed_ = 0;                       // connections ended
  std::vector<Request> log_;             // every request, in arrival order
  size_t requests_ = 0;                  // non-handshake requests in log_
  size_t handshakes_ = 0;                // CLIENT SETNAME requests in log_
  std::deque<Action> queued_;            // push()ed actions not yet used
  std::shared_ptr<Script> script_;       // set_script() (shared: its state survives each call)
  std::string handshake_reply_ = "+OK\r\n";  // reply to CLIENT SETNAME
  std::string auth_reply_ = "+OK\r\n";       // reply to AUTH
  bool holding_ = false;                 // set_holding()
  uint64_t next_reply_id_ = 1;           // reply_id of the next enqueued reply
  std::deque<uint64_t> held_;            // held reply ids, oldest first
};

}  // namespace respite::test
