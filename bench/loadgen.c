/* loadgen: many-connection RESP load generator for bench/conn_scale.sh.
 *
 * Opens C connections (at most -C connects in flight at once), checks each with a
 * PING, then for -d seconds every connection sends one GET or SET at a time, the
 * next one no sooner than -i ms after the previous was sent (0 = closed loop), with
 * start times spread at random over the first interval.  Then it stops sending and
 * waits up to -D seconds for the outstanding replies.
 *
 * Counts and prints (key=value lines): connections ready / failed, connections
 * closed by the peer, error replies, protocol errors, replies missing at the end,
 * nil replies (all keys exist, so a nil GET reply means wrong data),
 * requests, throughput and latency percentiles, and with -P PID the CPU time that
 * process used during the load phase per reply.  Exit status 0 only if there were
 * no errors of any kind.
 *
 * Built by conn_scale.sh with `cc -O2`; not part of the CMake build.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ST_IDLE, ST_CONNECTING, ST_PING, ST_READY, ST_DEAD };

typedef struct {
  int fd;
  int state;
  int outstanding;   /* a request is in flight */
  int want_out;      /* EPOLLOUT registered */
  uint64_t sent_ns;  /* when the in-flight request was sent */
  char *rbuf;
  size_t rlen, rcap;
  char wbuf[512];
  size_t wlen, woff;
} conn_t;

typedef struct {
  uint64_t t;
  int idx;
} hent_t;

static const char *host = "127.0.0.1";
static int port = 6379, nconns = 1000, max_connecting = 200, set_pct = 10, value_size = 100,
           keyspace = 100000;
static double duration_s = 10, interval_ms = 100, connect_timeout_s = 60, drain_s = 5;

static conn_t *conns;
static int epfd;
static hent_t *heap;
static int heap_n;
static uint32_t *lat_us;
static size_t lat_n, lat_cap;
static long n_nil; /* null replies: every key exists, so a GET must not return nil */
static long n_ready, n_connect_failed, n_closed, n_err_replies, n_proto_err, n_requests,
    n_replies, n_missing;
static char first_error[256];
static char *value;
static uint64_t rng = 88172645463325252ull;
static int watch_pid = 0; /* -P: report this process's CPU ticks during the load phase */

static long proc_ticks(int pid) {
  char path[64], buf[1024];
  if (pid <= 0) return 0;
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  /* after ") " comes field 3; utime and stime are fields 14 and 15 */
  long utime = 0, stime = 0;
  int field = 3;
  for (char *tok = strtok(p + 2, " "); tok; tok = strtok(NULL, " "), field++) {
    if (field == 14) utime = atol(tok);
    if (field == 15) { stime = atol(tok); break; }
  }
  return utime + stime;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xrand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void note_error(const char *what, const char *detail, size_t len) {
  if (first_error[0]) return;
  if (len > 200) len = 200;
  snprintf(first_error, sizeof first_error, "%s: %.*s", what, (int)len, detail);
  for (char *p = first_error; *p; p++)
    if (*p == '\r' || *p == '\n') *p = ' ';
}

static void heap_push(uint64_t t, int idx) {
  int i = heap_n++;
  while (i > 0) {
    int parent = (i - 1) / 2;
    if (heap[parent].t <= t) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i].t = t;
  heap[i].idx = idx;
}

static hent_t heap_pop(void) {
  hent_t top = heap[0], last = heap[--heap_n];
  int i = 0;
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    uint64_t mt = last.t;
    if (l < heap_n && heap[l].t < mt) { m = l; mt = heap[l].t; }
    if (r < heap_n && heap[r].t < mt) m = r;
    if (m == i) break;
    heap[i] = heap[m];
    i = m;
  }
  if (heap_n > 0) heap[i] = last;
  return top;
}

/* Length of one complete RESP value at p[0..n), 0 if incomplete, -1 if malformed.
 * *is_err is set when the top-level value is an error reply. */
static long resp_len(const char *p, size_t n, int *is_err, int depth) {
  if (n < 1) return 0;
  if (depth > 32) return -1;
  const char *nl = memchr(p, '\n', n);
  if (!nl) return 0;
  if (nl == p || nl[-1] != '\r') return -1;
  long line = nl - p + 1;
  char type = p[0];
  if (depth == 0 && is_err) *is_err = (type == '-' || type == '!');
  switch (type) {
    case '+': case '-': case ':': case ',': case '#': case '_': case '(':
      return line;
    case '$': case '!': case '=': {
      long len = strtol(p + 1, NULL, 10);
      if (len < 0) return line;
      if ((size_t)(line + len + 2) > n) return 0;
      if (p[line + len] != '\r' || p[line + len + 1] != '\n') return -1;
      return line + len + 2;
    }
    case '*': case '%': case '~': case '>': case '|': {
      long count = strtol(p + 1, NULL, 10);
      if (count < 0) return line;
      if (type == '%' || type == '|') count *= 2;
      long off = line;
      for (long k = 0; k < count; k++) {
        long sub = resp_len(p + off, n - off, NULL, depth + 1);
        if (sub <= 0) return sub;
        off += sub;
      }
      return off;
    }
    default:
      return -1;
  }
}

static void set_events(conn_t *c, int idx, int want_out) {
  if (c->want_out == want_out) return;
  struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.u32 = (uint32_t)idx};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
  c->want_out = want_out;
}

static void kill_conn(conn_t *c, int was_ready) {
  if (c->state == ST_DEAD) return;
  if (c->fd >= 0) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
  if (was_ready) n_ready--;
  c->state = ST_DEAD;
}

static int flush_out(conn_t *c, int idx) {
  while (c->woff < c->wlen) {
    ssize_t w = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        set_events(c, idx, 1);
        return 0;
      }
      return -1;
    }
    c->woff += (size_t)w;
  }
  c->wlen = c->woff = 0;
  set_events(c, idx, 0);
  return 0;
}

static int send_request(conn_t *c, int idx, int ping) {
  int n;
  if (ping) {
    n = snprintf(c->wbuf, sizeof c->wbuf, "*1\r\n$4\r\nPING\r\n");
  } else {
    char key[32];
    int kl = snprintf(key, sizeof key, "key:%012d", (int)(xrand() % (uint64_t)keyspace));
    if ((int)(xrand() % 100) < set_pct) {
      n = snprintf(c->wbuf, sizeof c->wbuf, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", kl, key,
                   value_size, value);
    } else {
      n = snprintf(c->wbuf, sizeof c->wbuf, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", kl, key);
    }
    n_requests++;
  }
  c->wlen = (size_t)n;
  c->woff = 0;
  c->outstanding = 1;
  c->sent_ns = now_ns();
  return flush_out(c, idx);
}

static int open_conn(int idx) {
  conn_t *c = &conns[idx];
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    note_error("socket", strerror(errno), strlen(strerror(errno)));
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, host, &sa.sin_addr);
  c->fd = fd;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
    note_error("connect", strerror(errno), strlen(strerror(errno)));
    close(fd);
    c->fd = -1;
    return -1;
  }
  c->state = ST_CONNECTING;
  c->want_out = 1;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)idx};
  epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  return 0;
}

static void record_latency(uint64_t ns) {
  if (lat_n == lat_cap) {
    lat_cap = lat_cap ? lat_cap * 2 : 1 << 20;
    lat_us = realloc(lat_us, lat_cap * sizeof *lat_us);
    if (!lat_us) { perror("realloc"); exit(2); }
  }
  uint64_t us = ns / 1000;
  lat_us[lat_n++] = us > 0xffffffffu ? 0xffffffffu : (uint32_t)us;
}

/* Returns 1 if a reply completed (the connection may send again). */
static int handle_read(conn_t *c, int idx, int *failed) {
  *failed = 0;
  for (;;) {
    if (c->rcap - c->rlen < 1024) {
      c->rcap = c->rcap ? c->rcap * 2 : 2048;
      c->rbuf = realloc(c->rbuf, c->rcap);
      if (!c->rbuf) { perror("realloc"); exit(2); }
    }
    ssize_t r = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (r > 0) {
      c->rlen += (size_t)r;
      if (c->rlen < c->rcap) break;
      continue;
    }
    if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
      const char *why = r == 0 ? "closed by peer" : strerror(errno);
      note_error("connection", why, strlen(why));
      n_closed++;
      *failed = 1;
      return 0;
    }
    break;
  }
  int completed = 0;
  size_t off = 0;
  while (off < c->rlen) {
    int is_err = 0;
    long len = resp_len(c->rbuf + off, c->rlen - off, &is_err, 0);
    if (len == 0) break;
    if (len < 0 || !c->outstanding) {
      note_error(len < 0 ? "protocol error" : "unexpected reply", c->rbuf + off, c->rlen - off);
      n_proto_err++;
      *failed = 1;
      return 0;
    }
    if (len == 5 && memcmp(c->rbuf + off, "$-1\r\n", 5) == 0) {
      n_nil++;
      note_error("nil reply", "GET of an existing key returned nil", 35);
    }
    if (is_err) {
      n_err_replies++;
      note_error("error reply", c->rbuf + off, (size_t)len);
    }
    if (c->state == ST_READY) {
      record_latency(now_ns() - c->sent_ns);
      n_replies++;
    }
    c->outstanding = 0;
    completed = 1;
    off += (size_t)len;
  }
  if (off) {
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
  }
  (void)idx;
  return completed;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double pct(double p) {
  if (!lat_n) return 0;
  size_t i = (size_t)(p / 100.0 * (double)(lat_n - 1) + 0.5);
  return lat_us[i] / 1000.0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen [-h host] [-p port] [-c conns] [-d seconds] [-i interval_ms]\n"
          "               [-w set_percent] [-s value_size] [-k keyspace] [-C max_connecting]\n"
          "               [-T connect_timeout_s] [-D drain_s] [-P server_pid]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int opt;
  while ((opt = getopt(argc, argv, "h:p:c:d:i:w:s:k:C:T:D:P:")) != -1) {
    switch (opt) {
      case 'h': host = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 'c': nconns = atoi(optarg); break;
      case 'd': duration_s = atof(optarg); break;
      case 'i': interval_ms = atof(optarg); break;
      case 'w': set_pct = atoi(optarg); break;
      case 's': value_size = atoi(optarg); break;
      case 'k': keyspace = atoi(optarg); break;
      case 'C': max_connecting = atoi(optarg); break;
      case 'T': connect_timeout_s = atof(optarg); break;
      case 'D': drain_s = atof(optarg); break;
      case 'P': watch_pid = atoi(optarg); break;
      default: usage();
    }
  }
  if (nconns < 1 || value_size < 1 || value_size > 400 || keyspace < 1 || max_connecting < 1) usage();
  signal(SIGPIPE, SIG_IGN);
  value = malloc((size_t)value_size + 1);
  memset(value, 'x', (size_t)value_size);
  value[value_size] = 0;
  conns = calloc((size_t)nconns, sizeof *conns);
  heap = calloc((size_t)nconns, sizeof *heap);
  for (int i = 0; i < nconns; i++) conns[i].fd = -1;
  epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event *evs = calloc(4096, sizeof *evs);

  /* Phase 1: connect everything (bounded concurrency) and PING each connection. */
  uint64_t t_start = now_ns(), connect_deadline = t_start + (uint64_t)(connect_timeout_s * 1e9);
  int next_open = 0, connecting = 0;
  while (n_ready + n_connect_failed < nconns && now_ns() < connect_deadline) {
    while (next_open < nconns && connecting < max_connecting) {
      if (open_conn(next_open) == 0)
        connecting++;
      else {
        conns[next_open].state = ST_DEAD;
        n_connect_failed++;
      }
      next_open++;
    }
    int ne = epoll_wait(epfd, evs, 4096, 100);
    for (int e = 0; e < ne; e++) {
      int idx = (int)evs[e].data.u32;
      conn_t *c = &conns[idx];
      if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
          note_error("connect", strerror(err), strlen(strerror(err)));
          kill_conn(c, 0);
          n_connect_failed++;
          connecting--;
          continue;
        }
        c->state = ST_PING;
        if (send_request(c, idx, 1) < 0) {
          kill_conn(c, 0);
          n_connect_failed++;
          connecting--;
        }
        continue;
      }
      if (c->state == ST_PING) {
        if (evs[e].events & EPOLLOUT) {
          if (flush_out(c, idx) < 0) {
            kill_conn(c, 0); n_connect_failed++; connecting--; continue;
          }
        }
        if (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
          int failed;
          int done = handle_read(c, idx, &failed);
          if (failed) {
            kill_conn(c, 0); n_connect_failed++; connecting--; continue;
          }
          if (done) {
            c->state = ST_READY;
            n_ready++;
            connecting--;
          }
        }
        continue;
      }
      if (c->state == ST_READY && (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        /* nothing is expected on an idle ready connection: a close or junk is an error */
        int failed;
        handle_read(c, idx, &failed);
        if (failed) kill_conn(c, 1);
      }
    }
  }
  for (int i = 0; i < nconns; i++) {
    if (conns[i].state == ST_CONNECTING || conns[i].state == ST_PING || conns[i].state == ST_IDLE) {
      if (conns[i].state != ST_IDLE || i < next_open) note_error("connect", "timed out", 9);
      kill_conn(&conns[i], 0);
      n_connect_failed++;
    }
  }
  double connect_s = (double)(now_ns() - t_start) / 1e9;
  fprintf(stderr, "loadgen: %ld/%d connections ready in %.2fs\n", n_ready, nconns, connect_s);

  /* Phase 2: load. */
  uint64_t interval_ns = (uint64_t)(interval_ms * 1e6);
  long ticks0 = proc_ticks(watch_pid);
  uint64_t t0 = now_ns(), t_end = t0 + (uint64_t)(duration_s * 1e9);
  for (int i = 0; i < nconns; i++)
    if (conns[i].state == ST_READY)
      heap_push(t0 + (interval_ns ? xrand() % interval_ns : 0), i);
  for (;;) {
    uint64_t now = now_ns();
    if (now >= t_end) break;
    while (heap_n > 0 && heap[0].t <= now) {
      hent_t h = heap_pop();
      conn_t *c = &conns[h.idx];
      if (c->state != ST_READY) continue;
      if (send_request(c, h.idx, 0) < 0) {
        note_error("write", strerror(errno), strlen(strerror(errno)));
        n_closed++;
        kill_conn(c, 1);
      }
    }
    int timeout_ms = 100;
    if (heap_n > 0) {
      uint64_t wait = heap[0].t > now ? heap[0].t - now : 0;
      int w = (int)((wait + 999999) / 1000000);
      if (w < timeout_ms) timeout_ms = w;
    }
    uint64_t to_end = (t_end - now + 999999) / 1000000;
    if ((uint64_t)timeout_ms > to_end) timeout_ms = (int)to_end;
    int ne = epoll_wait(epfd, evs, 4096, timeout_ms);
    for (int e = 0; e < ne; e++) {
      int idx = (int)evs[e].data.u32;
      conn_t *c = &conns[idx];
      if (c->state != ST_READY) continue;
      if ((evs[e].events & EPOLLOUT) && flush_out(c, idx) < 0) {
        note_error("write", strerror(errno), strlen(strerror(errno)));
        n_closed++;
        kill_conn(c, 1);
        continue;
      }
      if (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        int failed;
        int done = handle_read(c, idx, &failed);
        if (failed) {
          kill_conn(c, 1);
          continue;
        }
        if (done) {
          uint64_t next = c->sent_ns + interval_ns, n2 = now_ns();
          heap_push(next > n2 ? next : n2, idx);
        }
      }
    }
  }
  double load_s = (double)(now_ns() - t0) / 1e9;
  long load_ticks = proc_ticks(watch_pid) - ticks0;
  long replies_in_load = n_replies;

  /* Phase 3: drain outstanding replies. */
  uint64_t drain_end = now_ns() + (uint64_t)(drain_s * 1e9);
  for (;;) {
    long waiting = 0;
    for (int i = 0; i < nconns; i++)
      if (conns[i].state == ST_READY && conns[i].outstanding) waiting++;
    if (!waiting || now_ns() >= drain_end) {
      n_missing = waiting;
      break;
    }
    int ne = epoll_wait(epfd, evs, 4096, 50);
    for (int e = 0; e < ne; e++) {
      int idx = (int)evs[e].data.u32;
      conn_t *c = &conns[idx];
      if (c->state != ST_READY) continue;
      if ((evs[e].events & EPOLLOUT) && flush_out(c, idx) < 0) {
        n_closed++;
        kill_conn(c, 1);
        continue;
      }
      if (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        int failed;
        handle_read(c, idx, &failed);
        if (failed) kill_conn(c, 1);
      }
    }
  }
  if (n_missing) note_error("missing replies", "no reply within the drain time", 30);
  long still_open = n_ready;
  for (int i = 0; i < nconns; i++) kill_conn(&conns[i], 0);

  qsort(lat_us, lat_n, sizeof *lat_us, cmp_u32);
  long errors = n_connect_failed + n_closed + n_err_replies + n_proto_err + n_missing + n_nil;
  printf("connections=%d\n", nconns);
  printf("connections_ok=%ld\n", still_open);
  printf("connect_failed=%ld\n", n_connect_failed);
  printf("connect_seconds=%.2f\n", connect_s);
  printf("closed_by_peer=%ld\n", n_closed);
  printf("error_replies=%ld\n", n_err_replies);
  printf("protocol_errors=%ld\n", n_proto_err);
  printf("missing_replies=%ld\n", n_missing);
  printf("nil_replies=%ld\n", n_nil);
  printf("errors=%ld\n", errors);
  printf("requests=%ld\n", n_requests);
  printf("replies=%ld\n", n_replies);
  printf("seconds=%.2f\n", load_s);
  printf("rps=%.0f\n", load_s > 0 ? (double)n_replies / load_s : 0);
  printf("p50_ms=%.3f\n", pct(50));
  printf("p90_ms=%.3f\n", pct(90));
  printf("p99_ms=%.3f\n", pct(99));
  printf("p999_ms=%.3f\n", pct(99.9));
  printf("max_ms=%.3f\n", lat_n ? lat_us[lat_n - 1] / 1000.0 : 0);
  if (watch_pid > 0) {
    double us = (double)load_ticks * 1e6 / (double)sysconf(_SC_CLK_TCK);
    printf("server_ticks=%ld\n", load_ticks);
    printf("server_cpu_us_per_req=%.2f\n", replies_in_load ? us / (double)replies_in_load : 0.0);
  }
  printf("first_error=%s\n", first_error[0] ? first_error : "none");
  return errors ? 1 : 0;
}
