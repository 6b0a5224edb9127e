// Stream: one connected socket (TCP or unix), wrapping a libuv stream handle.
//
// Ownership: a Stream is heap-allocated and owns its uv handle; it deletes itself after
// libuv's close callback, right after calling StreamHandler::on_closed(). After
// on_closed() the handler must not touch the Stream again.
// Reading: bytes are read straight into the Stream's input Buffer (no copy); the handler
// frames them in place and consume()s what it has used.
// Writing: the handler appends to output() and calls write_soon(); the Loop flushes once
// per iteration. A Buffer handed to uv_write stays untouched until its write callback
// (double buffering: `output_` accumulates while `in_flight_` is being written).
#pragma once

#include <uv.h>

#include <string>

#include "buf/buffer.h"

namespace respite::net {

class Loop;
class Stream;

// Callbacks from a Stream. Each is called from the loop thread, never re-entrantly from
// a Stream method the handler itself called (except on_closed, which is always
// deferred to libuv's close callback).
class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // New bytes were appended to s.input().
  virtual void on_readable(Stream& s) = 0;
  // The peer closed (status == UV_EOF) or a socket error happened. The handler usually
  // calls s.close().
  virtual void on_read_error(Stream& s, int status) = 0;
  // s.output() is about to be handed to the kernel as one batch.
  virtual void on_flush(Stream& s) { (void)s; }
  // Some output was written; s.pending_output() shrank.
  virtual void on_write_progress(Stream& s) { (void)s; }
  // A write failed; the stream is being closed.
  virtual void on_write_error(Stream& s, int status) { (void)s; (void)status; }
  // The handle is closed; the Stream is deleted right after this returns.
  virtual void on_closed(Stream& s) = 0;
};

class Stream {
 public:
  // Takes ownership of an initialised, connected handle (uv_tcp_t or uv_pipe_t, allocated
  // with new) whose data pointer it overwrites.
  Stream(Loop& loop, uv_stream_t* handle, bool is_tcp);
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  void set_handler(StreamHandler* h) { handler_ = h; }
  int start_reading();
  void pause_reading();
  bool reading() const { return reading_; }

  buf::Buffer& input() { return input_; }
  // Size of the next read buffer request (grown for large announced bulks).
  void set_read_size_hint(size_t n) { read_hint_ = n; }

  buf::Buffer& output() { return output_; }
  // Queues a flush at the end of this loop iteration.
  void write_soon();
  // Writes now (uv_try_write, then uv_write for the rest).
  void flush();
  // Bytes accepted for writing but not yet handed to the kernel.
  size_t pending_output() const { return output_.size() + in_flight_.size(); }

  // Closes the handle; pending output is dropped. Idempotent.
  void close();
  // Closes once all pending output has been written (or immediately if none).
  void close_after_flush();
  bool closing() const { return closing_; }

  // Peer address as text ("127.0.0.1:5555", "unix"), for logs.
  std::string peer() const;
  // Local address as text (the listener's address for an accepted socket).
  std::string local() const;
  // The socket's file descriptor, or -1 (CLIENT LIST's fd field).
  int fd() const;
  Loop& loop() { return loop_; }
  bool is_tcp() const { return is_tcp_; }
  void set_nodelay(bool on);
  void set_keepalive(int seconds);

 private:
  ~Stream() = default;
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* h, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_close(uv_handle_t* h);
  void fail_write(int status);

  Loop& loop_;                     // the loop this stream lives on
  uv_stream_t* handle_;            // owned libuv handle, freed in on_close
  bool is_tcp_;                    // uv_tcp_t (true) or uv_pipe_t (false)
  StreamHandler* handler_ = nullptr;  // receives events; not owned
  buf::Buffer input_;              // bytes read and not yet consumed by the handler
  buf::Buffer output_;             // bytes queued, not yet handed to uv_write
  buf::Buffer in_flight_;          // bytes owned by the pending uv_write
  uv_write_t write_req_;           // the single outstanding write request
  size_t read_hint_ = 0;           // preferred size of the next read buffer
  bool writing_ = false;           // a uv_write is outstanding
  bool reading_ = false;           // uv_read_start is active
  bool closing_ = false;           // uv_close was called
  bool close_when_flushed_ = false;  // close after the last byte is written
  friend class Loop;
  bool in_dirty_list_ = false;     // registered with Loop::defer_flush
};

}  // namespace respite::net
