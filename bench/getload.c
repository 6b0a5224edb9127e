/* getload: closed-loop GET load generator and PING round-trip probe, for bench/cache.sh.
 *
 * GET mode (default): opens -c connections; for -d seconds each connection sends a
 * batch of -P GETs in one write, waits for all -P replies, and sends the next batch
 * at once (closed loop, like redis-benchmark -P).  Keys are "key:%012d" (the names
 * redis-benchmark -r and bench_populate use), drawn with a deterministic generator
 * (-S seed) either
 *   uniformly from a hot set of -k K keys (key:0 .. key:K-1), or
 *   from Zipf(-z alpha) over -N keys: rank r (0 = most popular) has weight
 *   1/(r+1)^alpha; ranks are mapped to key numbers by a fixed permutation, so the
 *   hot keys are spread over the key space.
 * Every key must have been preloaded (e.g. bench_populate in bench/lib.sh): a nil
 * reply is counted as wrong, and with -s SIZE a bulk reply of another length too.
 * Latency is per request, from the write of its batch to the read that completed
 * its reply.  Replies arriving after -d seconds are waited for (up to -D s) but not
 * counted in throughput or latency.
 *
 * PING mode (-m ping): one connection, -n sequential PINGs (each sent when the
 * previous PONG arrived, after -g microseconds of pause), prints the round-trip
 * time percentiles.  Used to measure the delay bench/delay_relay.c adds.
 *
 * Output: key=value lines on stdout.  Exit status 0 only if there was no error
 * (connect failures, closed connections, error/nil/wrong-size replies, protocol
 * errors, missing replies).
 *
 * Build:  cc -O2 -o getload bench/getload.c -lm
 * Run:    getload -p 6379 -c 50 -P 16 -d 5 -k 1000 -s 100
 *         getload -p 6379 -c 50 -P 1 -d 5 -z 0.99 -N 200000 -s 100
 *         getload -m ping -p 7001 -n 2000
 * Not part of the CMake build.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  int fd;
  int alive;
  int in_flight;       /* replies still expected for the current batch */
  int out_on;          /* EPOLLOUT registered */
  uint64_t sent_ns;
  char *wbuf;
  size_t wlen, woff;
  char *rbuf;
  size_t rlen, rcap;
} conn_t;

static const char *host = "127.0.0.1";
static int port = 6379, nconns = 50, pipeline = 1, value_size = 0, hot_keys = 0, ping_count = 1000;
static long zipf_keys = 0;
static double zipf_alpha = 0, duration_s = 5, drain_s = 5, ping_gap_us = 0;
static uint64_t seed = 1;
static const char *mode = "get";

static long n_requests, n_replies, n_nil, n_err, n_wrong_size, n_proto, n_closed, n_connect_failed,
    n_missing;
static char first_error[256];

/* latency histogram: 1 us buckets up to 1 s, then an overflow bucket */
#define HBUCKETS 1000000
static uint32_t *hist;
static uint64_t hist_n, hist_max_ns, hist_sum_ns;

static double *zipf_cdf;
static long perm_step;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* splitmix64: deterministic for a given seed */
static uint64_t rng_state;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static double rnd_unit(void) { return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0); }

static void note_error(const char *what, const char *detail, size_t len) {
  if (first_error[0]) return;
  if (len > 200) len = 200;
  snprintf(first_error, sizeof first_error, "%s: %.*s", what, (int)len, detail);
  for (char *p = first_error; *p; p++)
    if (*p == '\r' || *p == '\n') *p = ' ';
}

static long gcd(long a, long b) {
  while (b) {
    long t = a % b;
    a = b;
    b = t;
  }
  return a;
}

static void zipf_init(void) {
  zipf_cdf = malloc((size_t)zipf_keys * sizeof *zipf_cdf);
  if (!zipf_cdf) { perror("malloc"); exit(2); }
  double sum = 0;
  for (long i = 0; i < zipf_keys; i++) {
    sum += 1.0 / pow((double)(i + 1), zipf_alpha);
    zipf_cdf[i] = sum;
  }
  for (long i = 0; i < zipf_keys; i++) zipf_cdf[i] /= sum;
  zipf_cdf[zipf_keys - 1] = 1.0;
  /* rank -> key: r * step mod N with gcd(step, N) = 1 is a permutation */
  perm_step = (long)((double)zipf_keys * 0.6180339887) | 1;
  while (gcd(perm_step, zipf_keys) != 1) perm_step += 2;
}

static long next_key(void) {
  if (zipf_keys > 0) {
    double u = rnd_unit();
    long lo = 0, hi = zipf_keys - 1;
    while (lo < hi) {
      long mid = (lo + hi) / 2;
      if (zipf_cdf[mid] >= u) hi = mid; else lo = mid + 1;
    }
    return (long)(((__int128)lo * perm_step) % zipf_keys);
  }
  return (long)(rnd() % (uint64_t)hot_keys);
}

static void record(uint64_t ns) {
  uint64_t us = ns / 1000;
  hist[us < HBUCKETS ? us : HBUCKETS]++;
  hist_n++;
  hist_sum_ns += ns;
  if (ns > hist_max_ns) hist_max_ns = ns;
}

static double hist_pct(double q) {
  if (!hist_n) return 0;
  uint64_t want = (uint64_t)(q / 100.0 * (double)(hist_n - 1)) + 1, acc = 0;
  for (int i = 0; i <= HBUCKETS; i++) {
    acc += hist[i];
    if (acc >= want) return i / 1000.0;
  }
  return HBUCKETS / 1000.0;
}

static int connect_to(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    close(fd);
    errno = EINVAL;
    return -1;
  }
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/* Length of one complete RESP value at p[0..n): 0 if incomplete, -1 if malformed. */
static long resp_len(const char *p, size_t n, int depth) {
  if (n < 1) return 0;
  if (depth > 32) return -1;
  const char *nl = memchr(p, '\n', n);
  if (!nl) return 0;
  if (nl == p || nl[-1] != '\r') return -1;
  long line = nl - p + 1;
  switch (p[0]) {
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
      if (p[0] == '%' || p[0] == '|') count *= 2;
      long off = line;
      for (long k = 0; k < count; k++) {
        long sub = resp_len(p + off, n - off, depth + 1);
        if (sub <= 0) return sub;
        off += sub;
      }
      return off;
    }
    default:
      return -1;
  }
}

/* ---------------------------------------------------------------- PING mode */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int run_ping(void) {
  int fd = connect_to();
  if (fd < 0) {
    printf("errors=1\nfirst_error=connect: %s\n", strerror(errno));
    return 1;
  }
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  uint64_t *rtt = calloc((size_t)ping_count, sizeof *rtt);
  char buf[256];
  int errors = 0, n = 0;
  /* a few unrecorded round trips first (connection set-up, caches) */
  for (int i = -10; i < ping_count; i++) {
    if (ping_gap_us > 0) {
      struct timespec ts = {.tv_sec = (time_t)(ping_gap_us / 1e6),
                            .tv_nsec = (long)(fmod(ping_gap_us, 1e6) * 1000)};
      nanosleep(&ts, NULL);
    }
    uint64_t t0 = now_ns();
    if (write(fd, "*1\r\n$4\r\nPING\r\n", 14) != 14) {
      note_error("write", strerror(errno), strlen(strerror(errno)));
      errors++;
      break;
    }
    size_t got = 0;
    while (got < 7) {
      ssize_t r = read(fd, buf + got, sizeof buf - got);
      if (r <= 0) break;
      got += (size_t)r;
    }
    uint64_t t1 = now_ns();
    if (got != 7 || memcmp(buf, "+PONG\r\n", 7) != 0) {
      note_error("ping reply", got ? buf : "none", got ? got : 4);
      errors++;
      break;
    }
    if (i >= 0) rtt[n++] = t1 - t0;
  }
  close(fd);
  qsort(rtt, (size_t)n, sizeof *rtt, cmp_u64);
  double sum = 0;
  for (int i = 0; i < n; i++) sum += (double)rtt[i];
#define PCT(q) (n ? (double)rtt[(size_t)((q) / 100.0 * (n - 1) + 0.5)] / 1e6 : 0.0)
  printf("pings=%d\n", n);
  printf("rtt_min_ms=%.4f\n", n ? (double)rtt[0] / 1e6 : 0.0);
  printf("rtt_p50_ms=%.4f\n", PCT(50));
  printf("rtt_p90_ms=%.4f\n", PCT(90));
  printf("rtt_p99_ms=%.4f\n", PCT(99));
  printf("rtt_max_ms=%.4f\n", n ? (double)rtt[n - 1] / 1e6 : 0.0);
  printf("rtt_mean_ms=%.4f\n", n ? sum / n / 1e6 : 0.0);
  printf("errors=%d\n", errors);
  printf("first_error=%s\n", first_error[0] ? first_error : "none");
  return errors ? 1 : 0;
}

/* ---------------------------------------------------------------- GET mode */

static int epfd;
static uint64_t load_end; /* replies read after this are not counted */

static void kill_conn(conn_t *c) {
  if (!c->alive) return;
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->alive = 0;
}

static void set_out(conn_t *c, int idx, int on) {
  if (c->out_on == on) return;
  c->out_on = on;
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u32 = (uint32_t)idx};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static int flush_out(conn_t *c, int idx) {
  while (c->woff < c->wlen) {
    ssize_t w = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        set_out(c, idx, 1);
        return 0;
      }
      note_error("write", strerror(errno), strlen(strerror(errno)));
      return -1;
    }
    c->woff += (size_t)w;
  }
  set_out(c, idx, 0);
  c->wlen = c->woff = 0;
  return 0;
}

static int send_batch(conn_t *c, int idx) {
  size_t off = 0;
  for (int i = 0; i < pipeline; i++) {
    char key[32];
    int kl = snprintf(key, sizeof key, "key:%012ld", next_key());
    off += (size_t)sprintf(c->wbuf + off, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", kl, key);
  }
  c->wlen = off;
  c->woff = 0;
  c->in_flight = pipeline;
  c->sent_ns = now_ns();
  n_requests += pipeline;
  return flush_out(c, idx);
}

/* Read and account replies; returns -1 if the connection failed. */
static int handle_read(conn_t *c) {
  for (;;) {
    if (c->rcap - c->rlen < 4096) {
      c->rcap = c->rcap ? c->rcap * 2 : 65536;
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
      return -1;
    }
    if (errno == EAGAIN) break;
  }
  uint64_t t = now_ns();
  size_t off = 0;
  while (off < c->rlen) {
    long len = resp_len(c->rbuf + off, c->rlen - off, 0);
    if (len == 0) break;
    const char *p = c->rbuf + off;
    if (len < 0 || c->in_flight == 0) {
      note_error(len < 0 ? "protocol error" : "unexpected reply", p, c->rlen - off);
      n_proto++;
      return -1;
    }
    if (p[0] == '-' || p[0] == '!') {
      n_err++;
      note_error("error reply", p, (size_t)len);
    } else if (len == 5 && memcmp(p, "$-1\r\n", 5) == 0) {
      n_nil++;
      note_error("nil reply", "GET of a preloaded key returned nil", 35);
    } else if (p[0] != '$') {
      n_proto++;
      note_error("not a bulk string", p, (size_t)len);
    } else if (value_size > 0 && strtol(p + 1, NULL, 10) != value_size) {
      n_wrong_size++;
      note_error("wrong value size", p, (size_t)len);
    }
    if (t < load_end) {
      record(t - c->sent_ns);
      n_replies++;
    }
    c->in_flight--;
    off += (size_t)len;
  }
  if (off) {
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
  }
  return 0;
}

static int run_get(void) {
  if (zipf_keys > 0) {
    if (zipf_alpha <= 0) { fprintf(stderr, "getload: -N needs -z alpha > 0\n"); return 2; }
    zipf_init();
  } else if (hot_keys <= 0) {
    fprintf(stderr, "getload: give -k HOT_KEYS or -z ALPHA -N KEYS\n");
    return 2;
  }
  hist = calloc(HBUCKETS + 1, sizeof *hist);
  conn_t *conns = calloc((size_t)nconns, sizeof *conns);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < nconns; i++) {
    conn_t *c = &conns[i];
    c->fd = connect_to();
    if (c->fd < 0) {
      note_error("connect", strerror(errno), strlen(strerror(errno)));
      n_connect_failed++;
      continue;
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->alive = 1;
    c->wbuf = malloc((size_t)pipeline * 64);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
  }
  struct epoll_event *evs = calloc(1024, sizeof *evs);
  uint64_t t0 = now_ns(), t_end = t0 + (uint64_t)(duration_s * 1e9);
  load_end = t_end;
  for (int i = 0; i < nconns; i++)
    if (conns[i].alive && send_batch(&conns[i], i) < 0) {
      n_closed++;
      kill_conn(&conns[i]);
    }
  int loading = 1;
  uint64_t drain_end = 0;
  for (;;) {
    uint64_t now = now_ns();
    if (loading && now >= t_end) {
      loading = 0;
      drain_end = now + (uint64_t)(drain_s * 1e9);
    }
    if (!loading) {
      long waiting = 0;
      for (int i = 0; i < nconns; i++)
        if (conns[i].alive && conns[i].in_flight) waiting++;
      if (!waiting || now >= drain_end) {
        for (int i = 0; i < nconns; i++)
          if (conns[i].alive && conns[i].in_flight) n_missing += conns[i].in_flight;
        break;
      }
    }
    uint64_t until = loading ? t_end : drain_end;
    int timeout_ms = (int)((until - now) / 1000000) + 1;
    if (timeout_ms > 100) timeout_ms = 100;
    int ne = epoll_wait(epfd, evs, 1024, timeout_ms);
    for (int e = 0; e < ne; e++) {
      int idx = (int)evs[e].data.u32;
      conn_t *c = &conns[idx];
      if (!c->alive) continue;
      if ((evs[e].events & EPOLLOUT) && flush_out(c, idx) < 0) {
        n_closed++;
        kill_conn(c);
        continue;
      }
      if (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        if (handle_read(c) < 0) {
          kill_conn(c);
          continue;
        }
        if (c->in_flight == 0 && loading) {
          uint64_t n2 = now_ns();
          if (n2 < t_end && send_batch(c, idx) < 0) {
            n_closed++;
            kill_conn(c);
          }
        }
      }
    }
  }
  if (n_missing) note_error("missing replies", "no reply within the drain time", 30);
  double secs = (double)(t_end - t0) / 1e9;
  long errors = n_connect_failed + n_closed + n_err + n_nil + n_wrong_size + n_proto + n_missing;
  printf("connections=%d\n", nconns);
  printf("connect_failed=%ld\n", n_connect_failed);
  printf("pipeline=%d\n", pipeline);
  if (zipf_keys > 0)
    printf("keys=zipf(%.3f) over %ld\n", zipf_alpha, zipf_keys);
  else
    printf("keys=uniform over %d\n", hot_keys);
  printf("requests=%ld\n", n_requests);
  printf("replies=%ld\n", n_replies);
  printf("seconds=%.3f\n", secs);
  printf("rps=%.0f\n", secs > 0 ? (double)n_replies / secs : 0.0);
  printf("p50_ms=%.3f\n", hist_pct(50));
  printf("p90_ms=%.3f\n", hist_pct(90));
  printf("p99_ms=%.3f\n", hist_pct(99));
  printf("p999_ms=%.3f\n", hist_pct(99.9));
  printf("max_ms=%.3f\n", (double)hist_max_ns / 1e6);
  printf("mean_ms=%.4f\n", hist_n ? (double)hist_sum_ns / (double)hist_n / 1e6 : 0.0);
  printf("nil_replies=%ld\n", n_nil);
  printf("error_replies=%ld\n", n_err);
  printf("wrong_size=%ld\n", n_wrong_size);
  printf("protocol_errors=%ld\n", n_proto);
  printf("closed_by_peer=%ld\n", n_closed);
  printf("missing_replies=%ld\n", n_missing);
  printf("errors=%ld\n", errors);
  printf("first_error=%s\n", first_error[0] ? first_error : "none");
  return errors ? 1 : 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: getload [-h host] [-p port] [-c conns] [-P pipeline] [-d seconds] [-D drain_s]\n"
          "               (-k hot_keys | -z alpha -N keys) [-S seed] [-s value_size]\n"
          "       getload -m ping [-h host] [-p port] [-n count] [-g gap_us]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int opt;
  while ((opt = getopt(argc, argv, "m:h:p:c:P:d:D:k:z:N:S:s:n:g:")) != -1) {
    switch (opt) {
      case 'm': mode = optarg; break;
      case 'h': host = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 'c': nconns = atoi(optarg); break;
      case 'P': pipeline = atoi(optarg); break;
      case 'd': duration_s = atof(optarg); break;
      case 'D': drain_s = atof(optarg); break;
      case 'k': hot_keys = atoi(optarg); break;
      case 'z': zipf_alpha = atof(optarg); break;
      case 'N': zipf_keys = atol(optarg); break;
      case 'S': seed = strtoull(optarg, NULL, 10); break;
      case 's': value_size = atoi(optarg); break;
      case 'n': ping_count = atoi(optarg); break;
      case 'g': ping_gap_us = atof(optarg); break;
      default: usage();
    }
  }
  if (nconns < 1 || pipeline < 1 || pipeline > 4096 || duration_s <= 0 || ping_count < 1) usage();
  signal(SIGPIPE, SIG_IGN);
  rng_state = seed;
  if (strcmp(mode, "ping") == 0) return run_ping();
  if (strcmp(mode, "get") == 0) return run_get();
  usage();
  return 2;
}
