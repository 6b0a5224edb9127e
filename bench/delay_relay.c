/* delay_relay: a TCP relay that adds a fixed delay in each direction, to put a
 * "network" between a proxy (or a client) and Redis on one machine, where no netem
 * qdisc is available.
 *
 * It listens on 127.0.0.1:PORT; for every accepted connection it opens one
 * connection to the upstream and forwards bytes both ways.  Every chunk read from
 * one side is held for DELAY microseconds (CLOCK_MONOTONIC, from the moment it was
 * read) before it is written to the other side, in order; end-of-stream is delayed
 * the same way (then forwarded as shutdown(SHUT_WR)).  "-d 500" gives 0.5 ms each
 * way, i.e. 1 ms added to every round trip.
 *
 * Timing: all chunks get the same delay, so chunks become due in the order they
 * were read; one FIFO of not-yet-due chunks (across all connections) is kept, and
 * a timerfd (absolute CLOCK_MONOTONIC, ns resolution, timer slack set to 1 ns) is
 * armed for its head.  Every loop iteration (timer or I/O wake-up) releases every
 * chunk that is due, and writes the due chunks of a direction with one writev.
 * A wake-up from a sleeping epoll_wait comes some tens of microseconds after the
 * timer expires on a VM; that latency is measured at start-up (median of 50 timer
 * sleeps; -L overrides it) and the timer is armed that much before the head is
 * due ("lead"); a chunk due within half the lead is released at once rather than
 * slept for (no busy waiting anywhere).  Buffering is bounded: a side whose
 * pending (read, not yet written) bytes exceed -b stops being read until they fall
 * below half of it.  TCP_NODELAY on every socket.
 *
 * On exit (SIGTERM/SIGINT, or the -t lifetime) it prints to stderr when chunks were
 * first written relative to their due time (p1/p50/p99/p99.9/max; negative =
 * early): a check that the delay stays accurate under load, not batched late.
 * (A chunk that waits because its destination does not read is counted as late.)
 *
 * Build:  cc -O2 -o delay_relay bench/delay_relay.c
 * Run:    delay_relay -l 7001 -u 127.0.0.1:6379 -d 500 -t 600
 *         -l listen port (127.0.0.1 only)   -u upstream host:port (IPv4)
 *         -d delay in microseconds per direction (default 500)
 *         -b pending-byte limit per direction (default 4 MiB)
 *         -t lifetime in seconds, then exit (default 3600)
 *         -L timer lead in microseconds (default: measured at start-up)
 *         -q quiet (no stats line at exit)
 * bench/cache.sh builds and runs it; it is not part of the CMake build.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK 65536

typedef struct chunk chunk_t;
typedef struct dir dir_t;
typedef struct pair pair_t;

struct chunk {
  chunk_t *next;               /* next in its direction's queue */
  chunk_t *gprev, *gnext;      /* the global not-yet-due FIFO */
  dir_t *dir;
  uint64_t due;                /* ns, CLOCK_MONOTONIC */
  int due_listed;              /* still in the global FIFO */
  size_t len, off;             /* len 0 = end of stream marker */
  char data[];
};

struct dir {                   /* bytes flowing from src to dst */
  pair_t *pair;
  int src, dst;                /* fds (owned by the pair) */
  chunk_t *head, *tail;
  size_t pending;              /* bytes queued, not yet written */
  int src_eof;                 /* read 0 from src (no more reading) */
  int paused;                  /* src not read: pending over the limit */
  int write_blocked;           /* dst returned EAGAIN */
  int done;                    /* eof forwarded */
};

struct pair {
  int cfd, ufd;                /* client side, upstream side */
  int connecting;              /* upstream connect in progress */
  dir_t up, down;              /* up: client -> upstream, down: upstream -> client */
  uint32_t cev, uev;           /* registered epoll events */
  int closing;
  pair_t *next_dead;
};

/* epoll tags: low bit distinguishes the two fds of a pair; special pointers below */
static int tag_listen, tag_timer, tag_signal;

static uint64_t delay_ns = 500000;
static size_t limit_bytes = 4u << 20;
static double lifetime_s = 3600;
static int quiet;
static int epfd, tfd, sfd, lfd;
static struct sockaddr_in upstream;
static chunk_t *ghead, *gtail;
static uint64_t armed_at;      /* expiry the timer is armed for, 0 = disarmed */
static uint64_t lead_ns;       /* arm the timer this long before the head is due */
static uint64_t slack_ns;      /* release chunks due within this at once (lead / 2) */
static pair_t *dead_list;
static long n_pairs, n_chunks, n_connect_fail;
static uint64_t n_bytes;
/* lateness histogram (first write time - due time): 1 us buckets from -EARLY_US
   (clamped) to +1 s (clamped) */
#define EARLY_US 1000
#define LATE_BUCKETS (EARLY_US + 1000000)
static uint32_t late_hist[LATE_BUCKETS + 1];
static int64_t late_max_ns, late_min_ns;
static uint64_t late_n;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(2);
}

static void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void arm_timer(uint64_t when) {
  if (when == armed_at) return;
  /* armed for earlier than needed: let it fire (one spurious wake-up) rather than
     pay a timerfd_settime per loop iteration under load */
  if (when && armed_at && armed_at < when) return;
  struct itimerspec its = {0};
  if (when) {
    its.it_value.tv_sec = (time_t)(when / 1000000000ull);
    its.it_value.tv_nsec = (long)(when % 1000000000ull);
  }
  if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) die("timerfd_settime");
  armed_at = when;
}

static void glist_remove(chunk_t *c) {
  if (!c->due_listed) return;
  if (c->gprev) c->gprev->gnext = c->gnext; else ghead = c->gnext;
  if (c->gnext) c->gnext->gprev = c->gprev; else gtail = c->gprev;
  c->gprev = c->gnext = NULL;
  c->due_listed = 0;
}

static void update_events(pair_t *p) {
  if (p->closing) return;
  uint32_t cev = 0, uev = 0;
  /* client fd: source of up (read even while the upstream connects: data is queued),
     destination of down */
  if (!p->up.src_eof && !p->up.paused) cev |= EPOLLIN;
  if (p->down.write_blocked) cev |= EPOLLOUT;
  if (p->connecting) {
    uev = EPOLLOUT;
  } else {
    if (!p->down.src_eof && !p->down.paused) uev |= EPOLLIN;
    if (p->up.write_blocked) uev |= EPOLLOUT;
  }
  if (cev != p->cev) {
    struct epoll_event ev = {.events = cev, .data.ptr = (void *)((uintptr_t)p)};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, p->cfd, &ev) < 0) die("epoll_ctl client");
    p->cev = cev;
  }
  if (uev != p->uev) {
    struct epoll_event ev = {.events = uev, .data.ptr = (void *)((uintptr_t)p | 1)};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, p->ufd, &ev) < 0) die("epoll_ctl upstream");
    p->uev = uev;
  }
}

static void free_dir_chunks(dir_t *d) {
  chunk_t *c = d->head;
  while (c) {
    chunk_t *n = c->next;
    glist_remove(c);
    free(c);
    c = n;
  }
  d->head = d->tail = NULL;
  d->pending = 0;
}

static void close_pair(pair_t *p) {
  if (p->closing) return;
  p->closing = 1;
  free_dir_chunks(&p->up);
  free_dir_chunks(&p->down);
  epoll_ctl(epfd, EPOLL_CTL_DEL, p->cfd, NULL);
  epoll_ctl(epfd, EPOLL_CTL_DEL, p->ufd, NULL);
  close(p->cfd);
  close(p->ufd);
  /* events for this pair may still be in the current epoll batch: free later */
  p->next_dead = dead_list;
  dead_list = p;
}

static void record_lateness(uint64_t now, uint64_t due) {
  int64_t late = (int64_t)now - (int64_t)due;
  int64_t b = late / 1000 + EARLY_US;
  late_hist[b < 0 ? 0 : b > LATE_BUCKETS ? LATE_BUCKETS : b]++;
  if (!late_n || late > late_max_ns) late_max_ns = late;
  if (!late_n || late < late_min_ns) late_min_ns = late;
  late_n++;
}

/* Write every released chunk of d that the destination accepts (one writev for up
   to 64 chunks). */
static void flush_dir(dir_t *d) {
  pair_t *p = d->pair;
  if (p->closing || p->connecting) return;
  while (d->head && !d->head->due_listed) {
    chunk_t *c = d->head;
    if (c->len == 0) {          /* delayed end of stream */
      shutdown(d->dst, SHUT_WR);
      d->done = 1;
      d->head = c->next;
      if (!d->head) d->tail = NULL;
      free(c);
      if (p->up.done && p->down.done) close_pair(p);
      return;
    }
    struct iovec iov[64];
    int n = 0;
    size_t total = 0;
    for (chunk_t *x = c; x && !x->due_listed && x->len && n < 64; x = x->next) {
      iov[n].iov_base = x->data + x->off;
      iov[n].iov_len = x->len - x->off;
      total += iov[n].iov_len;
      n++;
    }
    ssize_t w = writev(d->dst, iov, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        d->write_blocked = 1;
        update_events(p);
        return;
      }
      close_pair(p);
      return;
    }
    uint64_t now = now_ns();
    size_t left = (size_t)w;
    d->pending -= left;
    n_bytes += left;
    while (left > 0) {
      chunk_t *x = d->head;
      size_t avail = x->len - x->off;
      if (x->off == 0) record_lateness(now, x->due);
      if (left < avail) {
        x->off += left;
        break;
      }
      left -= avail;
      d->head = x->next;
      if (!d->head) d->tail = NULL;
      free(x);
    }
    if ((size_t)w < total) {
      d->write_blocked = 1;
      update_events(p);
      return;
    }
  }
  d->write_blocked = 0;
  if (d->paused && d->pending < limit_bytes / 2) d->paused = 0;
  update_events(p);
}

/* Arm the timer for the head of the not-yet-due FIFO: lead_ns early when that is
   still ahead, else at the release point (due - slack). */
static void schedule(uint64_t now) {
  if (!ghead) {
    arm_timer(0);
    return;
  }
  uint64_t due = ghead->due;
  uint64_t t = due > lead_ns && due - lead_ns > now ? due - lead_ns : due - slack_ns;
  if (t <= now) t = now + 1;
  arm_timer(t);
}

static void enqueue(dir_t *d, chunk_t *c, uint64_t now) {
  c->dir = d;
  c->due = now + delay_ns;
  c->next = NULL;
  if (d->tail) d->tail->next = c; else d->head = c;
  d->tail = c;
  d->pending += c->len;
  c->due_listed = 1;
  c->gnext = NULL;
  c->gprev = gtail;
  if (gtail) gtail->gnext = c; else ghead = c;
  gtail = c;
  n_chunks++;
  if (!armed_at) schedule(now);
}

/* Read what src has into chunks (bounded by the limit). */
static void read_dir(dir_t *d) {
  static char buf[READ_CHUNK];
  pair_t *p = d->pair;
  while (!p->closing && !d->src_eof && !d->paused) {
    ssize_t r = read(d->src, buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      close_pair(p);       /* reset: drop both sides at once */
      return;
    }
    uint64_t now = now_ns();
    chunk_t *c = malloc(sizeof *c + (size_t)r);
    if (!c) die("malloc");
    memcpy(c->data, buf, (size_t)r);
    c->len = (size_t)r;    /* 0: end of stream, which travels with the same delay */
    c->off = 0;
    enqueue(d, c, now);
    if (r == 0) {
      d->src_eof = 1;
      break;
    }
    if (d->pending > limit_bytes) d->paused = 1;
    if ((size_t)r < sizeof buf) break;
  }
  update_events(p);
}

/* Release every chunk that is due (or due within slack_ns), then re-arm the timer. */
static void release_due(void) {
  uint64_t now = now_ns();
  while (ghead && ghead->due <= now + slack_ns) {
    chunk_t *c = ghead;
    dir_t *d = c->dir;
    glist_remove(c);
    /* only the queue head can be written; later chunks of the same direction are
       released in order by this same loop */
    if (d->head == c) flush_dir(d);
  }
  schedule(now_ns());
}

static void accept_all(void) {
  for (;;) {
    int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == ECONNABORTED) return;
      perror("accept4");
      return;
    }
    int ufd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ufd < 0) {
      perror("socket");
      close(cfd);
      continue;
    }
    set_nodelay(cfd);
    set_nodelay(ufd);
    if (connect(ufd, (struct sockaddr *)&upstream, sizeof upstream) < 0 && errno != EINPROGRESS) {
      n_connect_fail++;
      close(ufd);
      close(cfd);
      continue;
    }
    pair_t *p = calloc(1, sizeof *p);
    if (!p) die("calloc");
    p->cfd = cfd;
    p->ufd = ufd;
    p->connecting = 1;
    p->up = (dir_t){.pair = p, .src = cfd, .dst = ufd};
    p->down = (dir_t){.pair = p, .src = ufd, .dst = cfd};
    struct epoll_event ev = {.events = 0, .data.ptr = p};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &ev) < 0) die("epoll_ctl add");
    ev.data.ptr = (void *)((uintptr_t)p | 1);
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, ufd, &ev) < 0) die("epoll_ctl add");
    n_pairs++;
    update_events(p);
  }
}

static void on_upstream_connected(pair_t *p) {
  int err = 0;
  socklen_t el = sizeof err;
  getsockopt(p->ufd, SOL_SOCKET, SO_ERROR, &err, &el);
  if (err) {
    n_connect_fail++;
    fprintf(stderr, "delay_relay: upstream connect: %s\n", strerror(err));
    close_pair(p);
    return;
  }
  p->connecting = 0;
  update_events(p);
  flush_dir(&p->up);  /* anything from the client that is already due */
}

static double late_pct(double q) {
  if (!late_n) return 0;
  uint64_t want = (uint64_t)(q / 100.0 * (double)(late_n - 1)) + 1, acc = 0;
  for (int i = 0; i <= LATE_BUCKETS; i++) {
    acc += late_hist[i];
    if (acc >= want) return (i - EARLY_US) / 1000.0;
  }
  return (LATE_BUCKETS - EARLY_US) / 1000.0;
}

/* Median overshoot of a timerfd sleep through epoll_wait: how late this machine
   wakes us after a timer expires. */
static uint64_t calibrate_lead(void) {
  uint64_t late[50];
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN};
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
  for (int i = 0; i < 50; i++) {
    uint64_t due = now_ns() + 200000;
    arm_timer(due);
    while (epoll_wait(ep, &ev, 1, 1000) < 0 && errno == EINTR) {}
    late[i] = now_ns() - due;
    uint64_t exp;
    while (read(tfd, &exp, sizeof exp) > 0) {}
    armed_at = 0;
  }
  close(ep);
  for (int i = 1; i < 50; i++)   /* insertion sort */
    for (int j = i; j > 0 && late[j] < late[j - 1]; j--) {
      uint64_t t = late[j];
      late[j] = late[j - 1];
      late[j - 1] = t;
    }
  return late[25];
}

static void usage(void) {
  fprintf(stderr, "usage: delay_relay -l listen_port -u host:port [-d delay_us] [-b limit_bytes]"
                  " [-t lifetime_s] [-L lead_us] [-q]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int opt, lport = 0;
  double lead_us = -1;
  char *up = NULL;
  while ((opt = getopt(argc, argv, "l:u:d:b:t:L:q")) != -1) {
    switch (opt) {
      case 'l': lport = atoi(optarg); break;
      case 'u': up = optarg; break;
      case 'd': delay_ns = (uint64_t)(atof(optarg) * 1000.0); break;
      case 'b': limit_bytes = (size_t)atol(optarg); break;
      case 't': lifetime_s = atof(optarg); break;
      case 'L': lead_us = atof(optarg); break;
      case 'q': quiet = 1; break;
      default: usage();
    }
  }
  if (lport <= 0 || lport > 65535 || !up || limit_bytes < 1024 || lifetime_s <= 0) usage();
  char *colon = strrchr(up, ':');
  if (!colon) usage();
  *colon = 0;
  upstream.sin_family = AF_INET;
  upstream.sin_port = htons((uint16_t)atoi(colon + 1));
  if (inet_pton(AF_INET, up, &upstream.sin_addr) != 1) usage();

  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (sfd < 0 || tfd < 0 || epfd < 0) die("setup");
  lead_ns = lead_us >= 0 ? (uint64_t)(lead_us * 1000.0) : calibrate_lead();
  if (lead_ns > delay_ns / 2) lead_ns = delay_ns / 2;
  slack_ns = lead_ns / 2;

  lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons((uint16_t)lport)};
  inet_pton(AF_INET, "127.0.0.1", &la.sin_addr);
  if (bind(lfd, (struct sockaddr *)&la, sizeof la) < 0) die("bind");
  if (listen(lfd, 1024) < 0) die("listen");

  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_listen};
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
  ev.data.ptr = &tag_timer;
  epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev);
  ev.data.ptr = &tag_signal;
  epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);

  uint64_t end = now_ns() + (uint64_t)(lifetime_s * 1e9);
  struct epoll_event evs[256];
  int stop = 0;
  const char *why = "lifetime over";
  while (!stop) {
    uint64_t now = now_ns();
    if (now >= end) break;
    /* the timerfd wakes us for due chunks; this timeout only bounds the lifetime */
    uint64_t left_ms = (end - now) / 1000000 + 1;
    int ne = epoll_wait(epfd, evs, 256, left_ms > 1000 ? 1000 : (int)left_ms);
    if (ne < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < ne; i++) {
      void *tag = evs[i].data.ptr;
      if (tag == &tag_listen) { accept_all(); continue; }
      if (tag == &tag_timer) {
        uint64_t exp;
        if (read(tfd, &exp, sizeof exp) < 0 && errno != EAGAIN) die("read timerfd");
        armed_at = 0;  /* fired; release_due below re-arms */
        continue;
      }
      if (tag == &tag_signal) { stop = 1; why = "signal"; continue; }
      pair_t *p = (pair_t *)((uintptr_t)tag & ~(uintptr_t)1);
      int is_up = (int)((uintptr_t)tag & 1);
      if (p->closing) continue;
      uint32_t e = evs[i].events;
      if (e & EPOLLERR) {       /* reset or unreachable: drop both sides */
        if (is_up && p->connecting) {
          n_connect_fail++;
          fprintf(stderr, "delay_relay: upstream connect failed\n");
        }
        close_pair(p);
        continue;
      }
      if (is_up) {
        if (p->connecting) {
          if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_upstream_connected(p);
          continue;
        }
        if ((e & EPOLLOUT) && p->up.write_blocked) flush_dir(&p->up);
        if (!p->closing && (e & (EPOLLIN | EPOLLERR | EPOLLHUP))) read_dir(&p->down);
      } else {
        if ((e & EPOLLOUT) && p->down.write_blocked) flush_dir(&p->down);
        if (!p->closing && (e & (EPOLLIN | EPOLLERR | EPOLLHUP))) read_dir(&p->up);
      }
    }
    release_due();
    while (dead_list) {
      pair_t *p = dead_list;
      dead_list = p->next_dead;
      free(p);
    }
  }
  if (!quiet)
    fprintf(stderr,
            "delay_relay: exit (%s): delay %.0f us/direction, timer lead %.0f us, %ld connections, "
            "%ld upstream connect failures, %ld chunks, %llu bytes; first write minus due time: "
            "min %.3f ms, p1 %.3f, p50 %.3f, p99 %.3f, p99.9 %.3f, max %.3f ms\n",
            why, (double)delay_ns / 1000.0, (double)lead_ns / 1000.0, n_pairs, n_connect_fail,
            n_chunks, (unsigned long long)n_bytes, (double)late_min_ns / 1e6, late_pct(1),
            late_pct(50), late_pct(99), late_pct(99.9), (double)late_max_ns / 1e6);
  return 0;
}
