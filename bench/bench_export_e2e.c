/* End-to-end export: application threads make spans, the tracer's writer
 * encodes them, the transport sends them over HTTP to a sink server on
 * 127.0.0.1, for the Datadog (msgpack) and OTLP (protobuf) exporters.
 *
 * Two measurements per exporter, through the public API only:
 *
 *   e2e      Application threads produce traces (a root and a child, each
 *            with 5 tags) as fast as they can for --seconds; then the
 *            tracer is flushed and the transport drained. Delivered spans
 *            are the exporter's items_sent (hotspan_tracer_get_exporter_
 *            stats), cross-checked against the body bytes the server
 *            received. CPU time of every thread (from /proc/self/task) is
 *            divided by the spans delivered: the application threads, the
 *            tracer's writer thread, the transport thread, the server.
 *
 *   appcost  The application thread's cost of a span when exporting: the
 *            same span loop on a tracer with the exporter and on one with
 *            exporters "none" (the writer thread still takes the chunks
 *            and frees them), in alternating batches, both paced at
 *            --rate spans/s (which the pipeline sustains) and at full
 *            speed. ns per span in wall time and in the thread's CPU time
 *            (CLOCK_THREAD_CPUTIME_ID), the median over --rounds and the
 *            median of the per-round differences (with - none).
 *
 * The sink server is a thread of this program: a listening socket, poll
 * over its connections, HTTP/1.1 with keep-alive; it reads each request's
 * header up to the blank line and skips Content-Length bytes of body,
 * parsing nothing else, and answers 200 with a small body (JSON for the
 * Datadog path; an empty ExportTraceServiceResponse for /v1/traces, as
 * the OTLP sink decodes the answer as protobuf). --dd-url / --otlp-url
 * send to another server instead (e.g. a running hotspan-agent); the byte
 * cross-check is then skipped.
 *
 * Output: "e2e ..." and "appcost ..." lines of key=value pairs (parsed by
 * bench/export.sh). --smoke: a tiny run that checks the pipeline delivers
 * and that the server got exactly the bytes the exporter counted; it makes
 * no timing assertion. Exit 1 on any failed check. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "hotspan/hotspan.h"

/* ------------------------------------------------------------ options */

typedef struct opts {
  const char *exporters; /* "datadog,otlp" */
  double seconds;        /* e2e production time */
  int threads;           /* e2e application threads */
  int rounds;            /* appcost rounds */
  double rate;           /* appcost paced rate, spans/s */
  double paced_seconds;  /* appcost paced batch length */
  long full_traces;      /* appcost full-speed batch, traces */
  const char *dd_url;    /* external sink, or NULL */
  const char *otlp_url;
  int smoke;
  int pin; /* appcost: this thread on CPU 0, every other thread on CPU 1 */
} opts;

static void usage(const char *prog) {
  fprintf(
      stderr,
      "usage: %s [--exporters LIST] [--seconds S] [--threads N]\n"
      "          [--rounds N] [--rate SPANS_PER_S] [--paced-seconds S]\n"
      "          [--full-traces N] [--dd-url URL] [--otlp-url URL]\n"
      "          [--pin] [--smoke]\n"
      "  --exporters     datadog,otlp (default both)\n"
      "  --seconds       e2e: seconds of production (default 3)\n"
      "  --threads       e2e: application threads (default 1)\n"
      "  --rounds        appcost: rounds (default 9)\n"
      "  --rate          appcost: paced rate in spans/s (default 100000)\n"
      "  --paced-seconds appcost: length of a paced batch (default 0.3)\n"
      "  --full-traces   appcost: traces per full-speed batch (50000)\n"
      "  --dd-url, --otlp-url  send there instead of the built-in sink\n"
      "  --pin           appcost: the measuring thread alone on CPU 0, the\n"
      "                  library's threads and the sink server on CPU 1\n"
      "  --smoke         tiny run for CI, checks delivery only\n",
      prog);
}

static double parse_num(const char *prog, const char *s) {
  char *end = NULL;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || !(v > 0)) {
    usage(prog);
    exit(2);
  }
  return v;
}

static void parse_opts(int argc, char **argv, opts *o) {
  *o = (opts){"datadog,otlp", 3.0, 1, 9, 100000, 0.3, 50000, NULL, NULL, 0, 0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--pin") == 0) {
      o->pin = 1;
      continue;
    }
    if (strcmp(a, "--smoke") == 0) {
      o->smoke = 1;
      o->seconds = 0.3;
      o->rounds = 2;
      o->paced_seconds = 0.05;
      o->full_traces = 2000;
      continue;
    }
    if (v == NULL) {
      usage(argv[0]);
      exit(2);
    }
    i++;
    if (strcmp(a, "--exporters") == 0)
      o->exporters = v;
    else if (strcmp(a, "--seconds") == 0)
      o->seconds = parse_num(argv[0], v);
    else if (strcmp(a, "--threads") == 0)
      o->threads = (int)parse_num(argv[0], v);
    else if (strcmp(a, "--rounds") == 0)
      o->rounds = (int)parse_num(argv[0], v);
    else if (strcmp(a, "--rate") == 0)
      o->rate = parse_num(argv[0], v);
    else if (strcmp(a, "--paced-seconds") == 0)
      o->paced_seconds = parse_num(argv[0], v);
    else if (strcmp(a, "--full-traces") == 0)
      o->full_traces = (long)parse_num(argv[0], v);
    else if (strcmp(a, "--dd-url") == 0)
      o->dd_url = v;
    else if (strcmp(a, "--otlp-url") == 0)
      o->otlp_url = v;
    else {
      usage(argv[0]);
      exit(2);
    }
  }
  if (o->threads > 64)
    o->threads = 64;
}

/* ------------------------------------------------------------ clocks */

static uint64_t now_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t mono_ns) {
  struct timespec ts = {(time_t)(mono_ns / 1000000000u),
                        (long)(mono_ns % 1000000000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    ;
}

static pid_t self_tid(void) {
  return (pid_t)syscall(SYS_gettid);
}

/* CPU time of thread tid of this process in ns: schedstat's run time
 * (ns resolution) when the kernel has it, else utime + stime in ticks.
 * 0 if the thread is gone. */
static uint64_t task_cpu_ns(pid_t tid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)tid);
  FILE *f = fopen(path, "r");
  if (f != NULL) {
    unsigned long long run = 0;
    int ok = fscanf(f, "%llu", &run) == 1;
    fclose(f);
    if (ok)
      return run;
  }
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
  f = fopen(path, "r");
  if (f == NULL)
    return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* the name may hold spaces */
  unsigned long long ut = 0, st = 0;
  if (p == NULL || sscanf(p + 2,
                          "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                          "%llu %llu",
                          &ut, &st) != 2)
    return 0;
  return (ut + st) * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK));
}

/* This thread's time waiting for a CPU while runnable (schedstat's second
 * field), in ns; 0 where the kernel does not keep it. The file stays open
 * per thread, so a read is one pread. */
static uint64_t self_runq_ns(void) {
  static __thread int fd = -2;
  if (fd == -2) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat",
             (int)self_tid());
    fd = open(path, O_RDONLY | O_CLOEXEC);
  }
  char buf[128];
  ssize_t n = fd >= 0 ? pread(fd, buf, sizeof buf - 1, 0) : -1;
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  unsigned long long run = 0, wait = 0;
  if (sscanf(buf, "%llu %llu", &run, &wait) != 2)
    return 0;
  return wait;
}

/* The threads of this process now; returns how many (at most cap). */
static int list_tasks(pid_t *out, int cap) {
  DIR *d = opendir("/proc/self/task");
  if (d == NULL)
    return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < cap)
    if (e->d_name[0] != '.')
      out[n++] = (pid_t)atoi(e->d_name);
  closedir(d);
  return n;
}

/* Whether thread tid's name is name (/proc/self/task/<tid>/comm). */
static int task_named(pid_t tid, const char *name) {
  char path[64], comm[32] = "";
  snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  if (fgets(comm, sizeof comm, f) == NULL)
    comm[0] = '\0';
  fclose(f);
  comm[strcspn(comm, "\n")] = '\0';
  return strcmp(comm, name) == 0;
}

/* ------------------------------------------------------------ sink server */

#define MAX_CONNS 32
#define HDR_MAX 16384

typedef struct conn {
  int fd;
  size_t hlen;
  uint64_t body_left;
  int in_body;
  int otlp; /* the request's path is /v1/traces */
  char hdr[HDR_MAX];
} conn;

typedef struct server {
  int lfd;
  int port;
  int wake[2]; /* a byte on wake[1] stops the thread */
  pthread_t thread;
  _Atomic int tid;
  _Atomic uint64_t body_bytes;
  _Atomic uint64_t requests;
  _Atomic uint64_t bad; /* oversized or malformed headers, write errors */
  conn conns[MAX_CONNS];
} server;

static const char dd_reply[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 22\r\n"
                               "\r\n"
                               "{\"rate_by_service\":{}}";
static const char otlp_reply[] = "HTTP/1.1 200 OK\r\n"
                                 "Content-Type: application/x-protobuf\r\n"
                                 "Content-Length: 0\r\n"
                                 "\r\n";

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads the request line's path and Content-Length from a complete header
 * (NUL-terminated). Returns -1 if Content-Length is malformed. */
static int parse_header(conn *c) {
  const char *sp = strchr(c->hdr, ' ');
  c->otlp = sp != NULL && strncmp(sp + 1, "/v1/traces", 10) == 0;
  c->body_left = 0;
  for (const char *line = strstr(c->hdr, "\r\n"); line != NULL;
       line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, "content-length:", 15) != 0)
      continue;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(line + 17, &end, 10);
    if (errno != 0 || end == line + 17)
      return -1;
    c->body_left = v;
  }
  return 0;
}

/* Consumes n bytes read from c; answers every complete request. Returns -1
 * to close the connection. */
static int conn_feed(server *sv, conn *c, const char *p, size_t n) {
  while (n > 0) {
    if (c->in_body) {
      size_t take = n < c->body_left ? n : (size_t)c->body_left;
      c->body_left -= take;
      atomic_fetch_add(&sv->body_bytes, take);
      p += take;
      n -= take;
    } else {
      /* Copy header bytes one at a time until the blank line, so that
       * what follows it is left for the body. */
      if (c->hlen + 1 >= HDR_MAX) {
        atomic_fetch_add(&sv->bad, 1);
        return -1;
      }
      c->hdr[c->hlen++] = *p++;
      n--;
      if (c->hlen < 4 || memcmp(c->hdr + c->hlen - 4, "\r\n\r\n", 4) != 0)
        continue;
      c->hdr[c->hlen] = '\0';
      if (parse_header(c) != 0) {
        atomic_fetch_add(&sv->bad, 1);
        return -1;
      }
      c->in_body = 1;
    }
    if (c->in_body && c->body_left == 0) {
      const char *r = c->otlp ? otlp_reply : dd_reply;
      size_t rlen = c->otlp ? sizeof otlp_reply - 1 : sizeof dd_reply - 1;
      /* Counted before the answer goes out: the exporter counts the
       * payload when the answer arrives, and the totals are compared as
       * soon as the exporter's count is complete. */
      atomic_fetch_add(&sv->requests, 1);
      if (write_all(c->fd, r, rlen) != 0) {
        atomic_fetch_add(&sv->bad, 1);
        return -1;
      }
      c->in_body = 0;
      c->hlen = 0;
    }
  }
  return 0;
}

static void *server_main(void *arg) {
  server *sv = arg;
  atomic_store(&sv->tid, (int)self_tid());
  static char buf[1 << 16];
  struct pollfd pf[MAX_CONNS + 2];
  for (;;) {
    pf[0] = (struct pollfd){sv->wake[0], POLLIN, 0};
    pf[1] = (struct pollfd){sv->lfd, POLLIN, 0};
    for (int i = 0; i < MAX_CONNS; i++)
      pf[i + 2] = (struct pollfd){sv->conns[i].fd, POLLIN, 0};
    if (poll(pf, MAX_CONNS + 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (pf[0].revents)
      break;
    if (pf[1].revents & POLLIN) {
      int fd = accept(sv->lfd, NULL, NULL);
      int i = 0;
      while (fd >= 0 && i < MAX_CONNS && sv->conns[i].fd >= 0)
        i++;
      if (fd >= 0 && i == MAX_CONNS) {
        close(fd); /* more connections than any exporter opens */
        atomic_fetch_add(&sv->bad, 1);
      } else if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sv->conns[i].fd = fd;
        sv->conns[i].hlen = 0;
        sv->conns[i].in_body = 0;
      }
    }
    for (int i = 0; i < MAX_CONNS; i++) {
      conn *c = &sv->conns[i];
      if (c->fd < 0 || pf[i + 2].revents == 0)
        continue;
      ssize_t r = read(c->fd, buf, sizeof buf);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0 || conn_feed(sv, c, buf, (size_t)r) != 0) {
        close(c->fd);
        c->fd = -1;
      }
    }
  }
  for (int i = 0; i < MAX_CONNS; i++)
    if (sv->conns[i].fd >= 0)
      close(sv->conns[i].fd);
  return NULL;
}

/* Starts the server on an ephemeral port of 127.0.0.1. Returns NULL (and
 * says why) on failure. */
static server *server_start(void) {
  server *sv = calloc(1, sizeof *sv);
  if (sv == NULL)
    return NULL;
  for (int i = 0; i < MAX_CONNS; i++)
    sv->conns[i].fd = -1;
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  sv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sv->lfd < 0 || bind(sv->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(sv->lfd, 64) != 0 ||
      getsockname(sv->lfd, (struct sockaddr *)&a, &alen) != 0 ||
      pipe(sv->wake) != 0) {
    perror("bench_export_e2e: sink server");
    if (sv->lfd >= 0)
      close(sv->lfd);
    free(sv);
    return NULL;
  }
  sv->port = ntohs(a.sin_port);
  if (pthread_create(&sv->thread, NULL, server_main, sv) != 0) {
    fprintf(stderr, "bench_export_e2e: cannot start the sink server\n");
    close(sv->lfd);
    close(sv->wake[0]);
    close(sv->wake[1]);
    free(sv);
    return NULL;
  }
  while (atomic_load(&sv->tid) == 0)
    sched_yield();
  return sv;
}

static void server_stop(server *sv) {
  if (sv == NULL)
    return;
  if (write(sv->wake[1], "x", 1) != 1)
    perror("bench_export_e2e: stopping the sink server");
  pthread_join(sv->thread, NULL);
  close(sv->lfd);
  close(sv->wake[0]);
  close(sv->wake[1]);
  free(sv);
}

/* ------------------------------------------------------------ workload */

typedef struct loop_opts {
  hotspan_span_options root, child;
} loop_opts;

static void loop_opts_init(loop_opts *l) {
  hotspan_span_options_init(&l->root);
  l->root.root = 1;
  l->root.kind = HOTSPAN_KIND_SERVER;
  l->root.resource = "POST /checkout";
  l->root.type = "web";
  hotspan_span_options_init(&l->child);
  l->child.kind = HOTSPAN_KIND_CLIENT;
  l->child.resource = "SELECT * FROM carts WHERE id=?";
  l->child.type = "sql";
}

/* Five tags, as the encode benches use: three strings, an int, a double. */
static void tags5(hotspan_span *s) {
  hotspan_span_set_tag_str(s, "http.method", "POST");
  hotspan_span_set_tag_str(s, "http.url", "https://shop.example.com/checkout");
  hotspan_span_set_tag_str(s, "component", "libcurl");
  hotspan_span_set_tag_int(s, "http.status_code", 200);
  hotspan_span_set_tag_double(s, "cart.total", 123.45);
}

/* One trace: a root and a child, 5 tags each. 2 spans. */
static void one_trace(hotspan_tracer *t, loop_opts *l) {
  hotspan_span *r = hotspan_span_start(t, "http.request", &l->root);
  tags5(r);
  l->child.parent = r;
  hotspan_span *c = hotspan_span_start(t, "db.query", &l->child);
  tags5(c);
  hotspan_span_finish(c);
  hotspan_span_finish(r);
}

/* ------------------------------------------------------------ tracers */

static hotspan_tracer *make_tracer(const char *exporter, const char *url) {
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.service = "checkout";
  cfg.env = "bench";
  cfg.version = "1.0";
  cfg.ignore_environment = 1;
  cfg.sample_rate = 1.0; /* keep every trace ... */
  cfg.rate_limit = 0;    /* ... without the limiter */
  cfg.exporters = exporter;
  if (strcmp(exporter, "datadog") == 0)
    cfg.agent_url = url;
  else if (strcmp(exporter, "otlp") == 0)
    cfg.otlp_endpoint = url;
  hotspan_tracer *t = NULL;
  int rc = hotspan_tracer_new(&cfg, &t);
  if (rc != HOTSPAN_OK) {
    fprintf(stderr, "bench_export_e2e: tracer (%s): %s\n", exporter,
            hotspan_strerror(rc));
    exit(1);
  }
  return t;
}

static int exporter_stats(hotspan_tracer *t, hotspan_exporter_stats *es) {
  memset(es, 0, sizeof *es);
  es->struct_size = sizeof *es;
  return hotspan_tracer_get_exporter_stats(t, 0, es) == HOTSPAN_OK;
}

static void tracer_stats(hotspan_tracer *t, hotspan_tracer_stats *ts) {
  memset(ts, 0, sizeof *ts);
  ts->struct_size = sizeof *ts;
  hotspan_tracer_get_stats(t, ts);
}

/* Everything finished so far written and, with an exporter, sent or
 * dropped. Returns 0 on success, -1 if that took more than 15 s. */
static int drain(hotspan_tracer *t) {
  if (hotspan_tracer_flush(t, 15000) != HOTSPAN_OK)
    return -1;
  uint64_t deadline = now_ns(CLOCK_MONOTONIC) + 15000000000ull;
  hotspan_exporter_stats es;
  while (exporter_stats(t, &es) && es.bytes_queued > 0) {
    if (now_ns(CLOCK_MONOTONIC) > deadline)
      return -1;
    sleep_until(now_ns(CLOCK_MONOTONIC) + 1000000);
  }
  return 0;
}

static uint64_t export_dropped(const hotspan_exporter_stats *e) {
  return e->items_dropped;
}

/* ------------------------------------------------------------ e2e */

typedef struct producer {
  hotspan_tracer *t;
  _Atomic int *stop;
  _Atomic int *ready;
  pthread_t thread;
  pid_t tid;
  uint64_t spans;
  uint64_t cpu_ns;
} producer;

static void *producer_main(void *arg) {
  producer *p = arg;
  p->tid = self_tid();
  loop_opts l;
  loop_opts_init(&l);
  atomic_fetch_add(p->ready, 1);
  uint64_t c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
  while (!atomic_load_explicit(p->stop, memory_order_relaxed)) {
    for (int i = 0; i < 64; i++)
      one_trace(p->t, &l);
    p->spans += 128;
  }
  p->cpu_ns = now_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
  return NULL;
}

/* The library's threads: those started by creating a tracer. */
typedef struct lib_threads {
  pid_t writer, transport;
} lib_threads;

/* The library names its threads: the tracer's writer is the new thread
 * (in after[], not in before[]) named hotspan-writer; the process's one
 * transport thread is named hotspan-export. */
static lib_threads find_lib_threads(const pid_t *before, int nb,
                                    const pid_t *after, int na) {
  lib_threads lt = {0, 0};
  for (int i = 0; i < na; i++) {
    int old = 0;
    for (int j = 0; j < nb && !old; j++)
      old = after[i] == before[j];
    if (!old && task_named(after[i], "hotspan-writer"))
      lt.writer = after[i];
    else if (task_named(after[i], "hotspan-export"))
      lt.transport = after[i];
  }
  return lt;
}

static int run_e2e(const opts *o, const char *exporter, hotspan_tracer *t,
                   lib_threads lt, server *sv) {
  int failed = 0;
  _Atomic int stop = 0, ready = 0;
  producer *ps = calloc((size_t)o->threads, sizeof *ps);
  if (ps == NULL)
    return 1;
  hotspan_tracer_stats ts0, ts1;
  hotspan_exporter_stats e0, e1;
  drain(t);
  tracer_stats(t, &ts0);
  exporter_stats(t, &e0);
  uint64_t sb0 = sv ? atomic_load(&sv->body_bytes) : 0;
  uint64_t sr0 = sv ? atomic_load(&sv->requests) : 0;
  uint64_t w0 = lt.writer ? task_cpu_ns(lt.writer) : 0;
  uint64_t x0 = lt.transport ? task_cpu_ns(lt.transport) : 0;
  uint64_t s0 = sv ? task_cpu_ns(sv->tid) : 0;
  uint64_t t0 = now_ns(CLOCK_MONOTONIC);
  for (int i = 0; i < o->threads; i++) {
    ps[i].t = t;
    ps[i].stop = &stop;
    ps[i].ready = &ready;
    if (pthread_create(&ps[i].thread, NULL, producer_main, &ps[i]) != 0) {
      fprintf(stderr, "bench_export_e2e: cannot start a producer\n");
      exit(1);
    }
  }
  sleep_until(t0 + (uint64_t)(o->seconds * 1e9));
  atomic_store(&stop, 1);
  uint64_t produced = 0, app_cpu = 0;
  for (int i = 0; i < o->threads; i++) {
    pthread_join(ps[i].thread, NULL);
    produced += ps[i].spans;
    app_cpu += ps[i].cpu_ns;
  }
  uint64_t t_prod = now_ns(CLOCK_MONOTONIC);
  if (drain(t) != 0) {
    fprintf(stderr, "bench_export_e2e: %s: not drained within 15 s\n",
            exporter);
    failed = 1;
  }
  uint64_t t1 = now_ns(CLOCK_MONOTONIC);
  uint64_t wcpu = lt.writer ? task_cpu_ns(lt.writer) - w0 : 0;
  uint64_t xcpu = lt.transport ? task_cpu_ns(lt.transport) - x0 : 0;
  uint64_t scpu = sv ? task_cpu_ns(sv->tid) - s0 : 0;
  tracer_stats(t, &ts1);
  exporter_stats(t, &e1);
  uint64_t delivered = e1.items_sent - e0.items_sent;
  uint64_t bytes = e1.bytes_sent - e0.bytes_sent;
  uint64_t payloads = e1.payloads_sent - e0.payloads_sent;
  uint64_t sbytes = sv ? atomic_load(&sv->body_bytes) - sb0 : 0;
  uint64_t sreq = sv ? atomic_load(&sv->requests) - sr0 : 0;
  uint64_t qdrop = ts1.spans_dropped - ts0.spans_dropped;
  uint64_t xdrop = export_dropped(&e1) - export_dropped(&e0);
  double d = delivered > 0 ? (double)delivered : 1;
  printf("e2e exporter=%s threads=%d seconds=%.2f drain_s=%.3f "
         "produced=%llu delivered=%llu spans_per_s=%.0f "
         "produced_per_s=%.0f payloads=%llu bytes_sent=%llu "
         "server_bytes=%s%llu server_requests=%s%llu bytes_per_span=%.1f "
         "queue_dropped_spans=%llu export_dropped_spans=%llu "
         "app_cpu_ns_per_span=%.1f writer_cpu_ns_per_span=%.1f "
         "transport_cpu_ns_per_span=%.1f server_cpu_ns_per_span=%.1f\n",
         exporter, o->threads, (t_prod - t0) / 1e9, (t1 - t_prod) / 1e9,
         (unsigned long long)produced, (unsigned long long)delivered,
         delivered / ((t1 - t0) / 1e9), produced / ((t_prod - t0) / 1e9),
         (unsigned long long)payloads, (unsigned long long)bytes, sv ? "" : "-",
         (unsigned long long)sbytes, sv ? "" : "-", (unsigned long long)sreq,
         bytes / d, (unsigned long long)qdrop, (unsigned long long)xdrop,
         app_cpu / (double)(produced ? produced : 1),
         lt.writer ? wcpu / d : -1.0, lt.transport ? xcpu / d : -1.0,
         sv ? scpu / d : -1.0);
  if (delivered == 0) {
    fprintf(stderr, "bench_export_e2e: %s: nothing delivered (%s)\n", exporter,
            e1.last_error);
    failed = 1;
  }
  if (sv != NULL && (sbytes != bytes || sreq != payloads)) {
    fprintf(stderr,
            "bench_export_e2e: %s: server got %llu bytes in %llu requests, "
            "exporter counted %llu in %llu\n",
            exporter, (unsigned long long)sbytes, (unsigned long long)sreq,
            (unsigned long long)bytes, (unsigned long long)payloads);
    failed = 1;
  }
  free(ps);
  return failed;
}

/* ------------------------------------------------------------ appcost */

typedef struct batch_result {
  double wall_ns; /* per span */
  double cpu_ns;  /* per span, this thread's CPU */
  double runq_ns; /* per span, runnable but waiting for a CPU */
  uint64_t dropped;
} batch_result;

/* Full speed: traces back to back. */
static batch_result batch_full(hotspan_tracer *t, loop_opts *l, long traces) {
  hotspan_tracer_stats a, b;
  hotspan_exporter_stats ea, eb;
  tracer_stats(t, &a);
  int has_exp = exporter_stats(t, &ea);
  uint64_t q0 = self_runq_ns();
  uint64_t w0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
  for (long i = 0; i < traces; i++)
    one_trace(t, l);
  uint64_t w1 = now_ns(CLOCK_MONOTONIC), c1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
  uint64_t q1 = self_runq_ns();
  drain(t);
  tracer_stats(t, &b);
  batch_result r = {(w1 - w0) / (2.0 * traces), (c1 - c0) / (2.0 * traces),
                    (q1 - q0) / (2.0 * traces),
                    b.spans_dropped - a.spans_dropped};
  if (has_exp && exporter_stats(t, &eb))
    r.dropped += export_dropped(&eb) - export_dropped(&ea);
  return r;
}

/* Paced: bursts of 50 traces at rate spans/s; only the bursts are timed
 * (two clock reads per 100 spans). */
static batch_result batch_paced(hotspan_tracer *t, loop_opts *l, double rate,
                                double seconds) {
  enum { BURST = 50 };
  hotspan_tracer_stats a, b;
  hotspan_exporter_stats ea, eb;
  tracer_stats(t, &a);
  int has_exp = exporter_stats(t, &ea);
  long bursts = (long)(rate * seconds / (2 * BURST));
  if (bursts < 1)
    bursts = 1;
  uint64_t period = (uint64_t)(2 * BURST * 1e9 / rate);
  uint64_t next = now_ns(CLOCK_MONOTONIC), wall = 0, cpu = 0, runq = 0;
  for (long k = 0; k < bursts; k++) {
    sleep_until(next);
    next += period;
    uint64_t q0 = self_runq_ns();
    uint64_t w0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < BURST; i++)
      one_trace(t, l);
    cpu += now_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    wall += now_ns(CLOCK_MONOTONIC) - w0;
    runq += self_runq_ns() - q0;
  }
  drain(t);
  tracer_stats(t, &b);
  double spans = 2.0 * BURST * (double)bursts;
  batch_result r = {wall / spans, cpu / spans, runq / spans,
                    b.spans_dropped - a.spans_dropped};
  if (has_exp && exporter_stats(t, &eb))
    r.dropped += export_dropped(&eb) - export_dropped(&ea);
  return r;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void run_appcost(const opts *o, const char *exporter,
                        hotspan_tracer *with, hotspan_tracer *none, int paced) {
  int n = o->rounds;
  double *v = calloc((size_t)n * 9, sizeof *v);
  if (v == NULL)
    exit(1);
  double *ww = v, *nw = v + n, *dw = v + 2 * n;
  double *wc = v + 3 * n, *nc = v + 4 * n, *dc = v + 5 * n;
  double *wq = v + 6 * n, *nq = v + 7 * n, *dq = v + 8 * n;
  uint64_t dropped_with = 0, dropped_none = 0;
  loop_opts l;
  loop_opts_init(&l);
  /* One unmeasured round: pools and connections warm. */
  for (int r = -1; r < n; r++) {
    batch_result bw, bn;
    hotspan_tracer *first = r % 2 ? with : none;
    hotspan_tracer *second = first == with ? none : with;
    batch_result *rf = first == with ? &bw : &bn;
    batch_result *rs = first == with ? &bn : &bw;
    if (paced) {
      *rf = batch_paced(first, &l, o->rate, o->paced_seconds);
      *rs = batch_paced(second, &l, o->rate, o->paced_seconds);
    } else {
      *rf = batch_full(first, &l, o->full_traces);
      *rs = batch_full(second, &l, o->full_traces);
    }
    if (r < 0)
      continue;
    ww[r] = bw.wall_ns;
    nw[r] = bn.wall_ns;
    dw[r] = bw.wall_ns - bn.wall_ns;
    wc[r] = bw.cpu_ns;
    nc[r] = bn.cpu_ns;
    dc[r] = bw.cpu_ns - bn.cpu_ns;
    wq[r] = bw.runq_ns;
    nq[r] = bn.runq_ns;
    dq[r] = bw.runq_ns - bn.runq_ns;
    dropped_with += bw.dropped;
    dropped_none += bn.dropped;
  }
  double mww = median(ww, n), mnw = median(nw, n), mwc = median(wc, n),
         mnc = median(nc, n), mdw = median(dw, n), mdc = median(dc, n),
         mwq = median(wq, n), mnq = median(nq, n), mdq = median(dq, n);
  /* dw and dc are sorted now: their ends are the smallest and largest
   * difference. */
  printf("appcost exporter=%s mode=%s pinned=%d rate=%.0f rounds=%d "
         "spans_per_batch=%ld "
         "with_ns=%.1f none_ns=%.1f diff_ns=%.1f with_cpu_ns=%.1f "
         "none_cpu_ns=%.1f diff_cpu_ns=%.1f with_runq_ns=%.1f "
         "none_runq_ns=%.1f diff_runq_ns=%.1f diff_ns_min=%.1f "
         "diff_ns_max=%.1f diff_cpu_ns_min=%.1f diff_cpu_ns_max=%.1f "
         "dropped_with=%llu dropped_none=%llu\n",
         exporter, paced ? "paced" : "full", o->pin, paced ? o->rate : 0.0, n,
         paced ? (long)(o->rate * o->paced_seconds) : 2 * o->full_traces, mww,
         mnw, mdw, mwc, mnc, mdc, mwq, mnq, mdq, dw[0], dw[n - 1], dc[0],
         dc[n - 1], (unsigned long long)dropped_with,
         (unsigned long long)dropped_none);
  free(v);
}

/* --pin: the calling thread alone on CPU 0 and every other thread of the
 * process on CPU 1 (on = 1), or all back on every CPU (on = 0). Returns
 * 0, or -1 (and says why) if the machine has fewer than 2 CPUs or the
 * kernel refused. */
static int pin_threads(int on) {
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu < 2) {
    fprintf(stderr, "bench_export_e2e: --pin needs 2 CPUs\n");
    return -1;
  }
  cpu_set_t all, app, lib;
  CPU_ZERO(&all);
  CPU_ZERO(&app);
  CPU_ZERO(&lib);
  for (long i = 0; i < ncpu && i < CPU_SETSIZE; i++)
    CPU_SET((int)i, &all);
  CPU_SET(0, &app);
  CPU_SET(1, &lib);
  pid_t self = self_tid(), tids[256];
  int n = list_tasks(tids, 256);
  for (int i = 0; i < n; i++) {
    const cpu_set_t *set = !on ? &all : tids[i] == self ? &app : &lib;
    if (sched_setaffinity(tids[i], sizeof *set, set) != 0) {
      perror("bench_export_e2e: sched_setaffinity");
      return -1;
    }
  }
  return 0;
}

/* ------------------------------------------------------------ main */

static int run_exporter(const opts *o, const char *exporter, server *sv) {
  char url[128];
  const char *ext = strcmp(exporter, "datadog") == 0 ? o->dd_url : o->otlp_url;
  if (ext != NULL)
    snprintf(url, sizeof url, "%s", ext);
  else if (strcmp(exporter, "datadog") == 0)
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sv->port);
  else
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", sv->port);

  pid_t before[256], after[256];
  int nb = list_tasks(before, 256);
  hotspan_tracer *with = make_tracer(exporter, url);
  /* Let the new threads reach their resting system call. */
  sleep_until(now_ns(CLOCK_MONOTONIC) + 50000000);
  int na = list_tasks(after, 256);
  lib_threads lt = find_lib_threads(before, nb, after, na);
  hotspan_tracer *none = make_tracer("none", NULL);
  printf("info exporter=%s url=%s writer_tid_found=%d "
         "transport_tid_found=%d\n",
         exporter, url, lt.writer != 0, lt.transport != 0);
  fflush(stdout);

  int failed = run_e2e(o, exporter, with, lt, ext ? NULL : sv);
  fflush(stdout);
  if (o->pin && pin_threads(1) != 0)
    exit(1);
  run_appcost(o, exporter, with, none, 1);
  fflush(stdout);
  run_appcost(o, exporter, with, none, 0);
  fflush(stdout);
  if (o->pin && pin_threads(0) != 0)
    exit(1);
  hotspan_tracer_free(none);
  hotspan_tracer_free(with);
  return failed;
}

int main(int argc, char **argv) {
  opts o;
  parse_opts(argc, argv, &o);
  server *sv = NULL;
  if (o.dd_url == NULL || o.otlp_url == NULL) {
    sv = server_start();
    if (sv == NULL)
      return 1;
  }
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  printf("info program=bench_export_e2e tracer=hotspan-%s cpus=%ld "
         "spans_per_trace=2 tags_per_span=5 smoke=%d\n",
         HOTSPAN_VERSION_STRING, ncpu, o.smoke);
  int failed = 0, ran = 0;
  const char *names[] = {"datadog", "otlp"};
  for (int i = 0; i < 2; i++) {
    const char *p = strstr(o.exporters, names[i]);
    if (p == NULL)
      continue;
    ran++;
    failed |= run_exporter(&o, names[i], sv);
  }
  if (sv != NULL && atomic_load(&sv->bad) > 0) {
    fprintf(stderr, "bench_export_e2e: sink server saw %llu bad requests\n",
            (unsigned long long)atomic_load(&sv->bad));
    failed = 1;
  }
  server_stop(sv);
  if (ran == 0) {
    usage(argv[0]);
    return 2;
  }
  return failed;
}
