/* Forks many children while the parent exports traces, as prefork servers
 * (nginx workers) do. Each child sends one trace of its own, tagged
 * "child.id" = its number, and exits; the parent keeps producing spans from
 * a second thread the whole time, so forks land while the exporter holds
 * its locks, encodes, or sends. Public API only.
 *
 *   fork_export --agent URL [--otlp URL] [--exporters LIST] --forks N
 *
 * Prints one JSON line: {"forks":N,"ok":k,"failed":f,"hung":h,
 * "parent_sent":s}. Exit 0 when every child reported success. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hotspan/hotspan.h>

static hotspan_tracer *tracer;
static atomic_int stop;

static void *produce(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    hotspan_span_options o;
    hotspan_span_options_init(&o);
    o.root = 1;
    hotspan_span *root = hotspan_span_start(tracer, "parent.work", &o);
    hotspan_span_set_tag_str(root, "who", "parent");
    hotspan_span_options_init(&o);
    o.parent = root;
    hotspan_span_finish(hotspan_span_start(tracer, "parent.child", &o));
    hotspan_span_finish(root);
    usleep(50);
  }
  return NULL;
}

static uint64_t items_sent(void) {
  uint64_t n = 0;
  for (size_t i = 0;; i++) {
    hotspan_exporter_stats s;
    s.struct_size = sizeof s;
    if (hotspan_tracer_get_exporter_stats(tracer, i, &s) != HOTSPAN_OK)
      break;
    n += s.items_sent;
  }
  return n;
}

static int child_main(int id) {
  alarm(30); /* a deadlock ends as SIGALRM, which the parent counts */
  char tag[32];
  snprintf(tag, sizeof tag, "%d", id);
  hotspan_span_options o;
  hotspan_span_options_init(&o);
  o.root = 1;
  hotspan_span *s = hotspan_span_start(tracer, "child.work", &o);
  hotspan_span_set_tag_str(s, "child.id", tag);
  /* The exporter reports the process id of every local root: the child's
   * own, not the parent's it was forked from. */
  hotspan_span_set_tag_int(s, "child.pid", (int64_t)getpid());
  hotspan_span_finish(s);
  if (hotspan_tracer_flush(tracer, 20000) != HOTSPAN_OK) {
    hotspan_exporter_stats st;
    st.struct_size = sizeof st;
    if (hotspan_tracer_get_exporter_stats(tracer, 0, &st) == HOTSPAN_OK)
      fprintf(stderr,
              "child %d (pid %d): flush timed out: sent %" PRIu64
              " spans, %" PRIu64 " bytes queued, %" PRIu64
              " retries, last status %" PRId64 ", last error \"%s\"\n",
              id, (int)getpid(), st.items_sent, st.bytes_queued, st.retries,
              st.last_status, st.last_error);
    if (getenv("HOTSPAN_TEST_HOLD") != NULL) {
      alarm(0);
      sleep(120); /* time to attach a debugger */
    }
    return 3;
  }
  /* Counters start at zero in a child: what it sent is its own. */
  return items_sent() >= 1 ? 0 : 4;
}

int main(int argc, char **argv) {
  hotspan_config cfg;
  hotspan_config_init(&cfg);
  cfg.service = "fork-export";
  int forks = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--agent") == 0)
      cfg.agent_url = argv[i + 1];
    else if (strcmp(argv[i], "--otlp") == 0)
      cfg.otlp_endpoint = argv[i + 1];
    else if (strcmp(argv[i], "--exporters") == 0)
      cfg.exporters = argv[i + 1];
    else if (strcmp(argv[i], "--forks") == 0)
      forks = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (hotspan_tracer_new(&cfg, &tracer) != HOTSPAN_OK)
    return 1;
  pthread_t th;
  pthread_create(&th, NULL, produce, NULL);
  int ok = 0, failed = 0, hung = 0;
  for (int i = 0; i < forks; i++) {
    pid_t pid = fork();
    if (pid < 0) {
      failed++;
      continue;
    }
    if (pid == 0) {
      /* _exit: the child flushed explicitly; exit() would also run the
       * leak checker of a sanitizer build over the parent's buffers the
       * child deliberately abandons (it must not touch them). */
      _exit(child_main(i));
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
      ok++;
    else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
      hung++;
    else {
      failed++;
      if (failed <= 5)
        fprintf(stderr, "child %d: %s %d\n", i,
                WIFEXITED(st) ? "exit" : "signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
  }
  atomic_store(&stop, 1);
  pthread_join(th, NULL);
  hotspan_tracer_flush(tracer, 10000);
  printf("{\"forks\":%d,\"ok\":%d,\"failed\":%d,\"hung\":%d,"
         "\"parent_sent\":%" PRIu64 "}\n",
         forks, ok, failed, hung, items_sent());
  hotspan_tracer_free(tracer);
  return ok == forks ? 0 : 1;
}
