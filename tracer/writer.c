/* The writer: chunks of kept traces wait in a bounded queue; one background
 * thread per tracer hands them to the sinks. Application threads only take
 * the queue mutex for a few stores, and never wait for I/O: when the queue
 * holds max_spans spans, new chunks are dropped and counted.
 *
 * The thread wakes every HS_WRITER_TICK_MS, or at once when a flush is
 * requested or HS_WRITER_WAKE_SPANS spans are queued, so a finishing span
 * pays for a wake-up (futex call) only once per batch. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "common/thread.h"
#include "tracer/internal.h"

#define HS_WRITER_TICK_MS 200
#define HS_WRITER_MAX_SPANS 100000
#define HS_WRITER_WAKE_SPANS 1024

static void deadline_in(struct timespec *ts, int ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

static void init_sync(hs_writer *w) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, &ca);
  pthread_cond_init(&w->done_cv, &ca);
  pthread_condattr_destroy(&ca);
}

/* Hands each chunk to every sink and releases it at once, while its spans
 * are still in cache (a batch can hold far more spans than fit there).
 * While one chunk is written, the next chunk's first span and the chunk
 * after it are loaded: the queue is a linked list of objects that have
 * usually left the cache, and the sinks prefetch within a chunk. */
static void write_batch(hotspan_tracer *t, hs_chunk *batch, int force) {
  for (hs_chunk *c = batch, *next; c != NULL; c = next) {
    next = c->next;
    if (next != NULL) {
      hs_span_prefetch(next->spans);
      __builtin_prefetch(next->next, 0, 3);
    }
    for (hs_trace_sink *s = t->sinks; s != NULL; s = s->next)
      s->write(s, c);
    hs_chunk_free(c);
  }
  for (hs_trace_sink *s = t->sinks; s != NULL; s = s->next)
    if (s->flush != NULL)
      s->flush(s, force);
}

static void *writer_main(void *arg) {
  hotspan_tracer *t = arg;
  hs_writer *w = &t->writer;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    if (w->head == NULL && !w->stop && w->flush_done == w->flush_req) {
      /* One tick: sinks get a flush call even when nothing arrived, so
       * they can send what has waited long enough. */
      struct timespec dl;
      deadline_in(&dl, HS_WRITER_TICK_MS);
      pthread_cond_timedwait(&w->cv, &w->mu, &dl);
    }
    hs_chunk *batch = w->head;
    uint64_t seq = w->enqueued_seq;
    uint64_t req = w->flush_req;
    w->head = w->tail = NULL;
    w->queued_spans = 0;
    int stop = w->stop;
    int force = stop || req != w->flush_done;
    pthread_mutex_unlock(&w->mu);

    write_batch(t, batch, force);

    pthread_mutex_lock(&w->mu);
    w->written_seq = seq;
    w->flush_done = req;
    pthread_cond_broadcast(&w->done_cv);
    if (stop && w->head == NULL)
      break;
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

int hs_writer_start(hotspan_tracer *t) {
  hs_writer *w = &t->writer;
  init_sync(w);
  w->max_spans = HS_WRITER_MAX_SPANS;
  w->fork_gen = hs_fork_generation();
  if (hs_thread_start(&w->thread, writer_main, t, "hotspan-writer") != 0) {
    hs_log(HS_LOG_ERROR, "cannot start the trace writer thread");
    return HOTSPAN_ESYS;
  }
  w->running = 1;
  return HOTSPAN_OK;
}

/* A forked child inherits the queue (chunks the parent will write) but not
 * the thread: drop the copies; the child's first enqueue starts a thread of
 * its own (hs_writer_enqueue), outside the atfork handler. Called from the
 * child's atfork handler, where only this thread exists. */
void hs_writer_after_fork_child(hotspan_tracer *t) {
  hs_writer *w = &t->writer;
  hs_chunk *stale = w->head;
  init_sync(w);
  w->head = w->tail = NULL;
  w->queued_spans = 0;
  w->flush_done = w->flush_req;
  w->written_seq = w->enqueued_seq;
  w->running = 0;
  /* The parent owns these chunks' spans; in the child they are plain
   * copies. Give their memory back to the child's pools. */
  for (hs_chunk *c = stale, *next; c != NULL; c = next) {
    next = c->next;
    hs_chunk_free(c);
  }
}

static void restart_after_fork(hotspan_tracer *t) {
  hs_writer *w = &t->writer;
  pthread_mutex_lock(&w->mu);
  if (w->fork_gen != hs_fork_generation() && !w->stop) {
    w->fork_gen = hs_fork_generation();
    if (hs_thread_start(&w->thread, writer_main, t, "hotspan-writer") == 0)
      w->running = 1;
    else
      hs_log(HS_LOG_ERROR, "cannot start the trace writer in a forked child");
  }
  pthread_mutex_unlock(&w->mu);
}

void hs_writer_enqueue(hotspan_tracer *t, hs_chunk *c) {
  hs_writer *w = &t->writer;
  if (__builtin_expect(w->fork_gen != hs_fork_generation(), 0))
    restart_after_fork(t);
  pthread_mutex_lock(&w->mu);
  if (!w->running || w->queued_spans + c->nspans > w->max_spans) {
    pthread_mutex_unlock(&w->mu);
    atomic_fetch_add_explicit(&t->counters.chunks_queue_dropped, 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&t->counters.spans_dropped, c->nspans,
                              memory_order_relaxed);
    hs_chunk_free(c);
    return;
  }
  c->next = NULL;
  if (w->tail != NULL)
    w->tail->next = c;
  else
    w->head = c;
  w->tail = c;
  w->queued_spans += c->nspans;
  w->enqueued_seq++;
  /* Wake the writer every HS_WRITER_WAKE_SPANS spans: a few thousand
   * queued spans are still warm in cache when the writer frees them and
   * the application reuses them; tens of thousands are not (measured in
   * docs/PERFORMANCE.md). One futex wake per batch costs ~1 ns a span. */
  int wake = w->queued_spans - c->nspans < HS_WRITER_WAKE_SPANS &&
             w->queued_spans >= HS_WRITER_WAKE_SPANS;
  pthread_mutex_unlock(&w->mu);
  if (wake)
    pthread_cond_signal(&w->cv);
}

int hs_writer_flush(hotspan_tracer *t, int timeout_ms) {
  hs_writer *w = &t->writer;
  if (timeout_ms <= 0)
    timeout_ms = 5000;
  struct timespec dl;
  deadline_in(&dl, timeout_ms);
  int rc = HOTSPAN_OK;
  pthread_mutex_lock(&w->mu);
  uint64_t target = w->enqueued_seq;
  uint64_t req = ++w->flush_req;
  if (w->running) {
    pthread_cond_signal(&w->cv);
    while (w->written_seq < target || w->flush_done < req) {
      if (pthread_cond_timedwait(&w->done_cv, &w->mu, &dl) == ETIMEDOUT) {
        rc = HOTSPAN_EIO;
        break;
      }
    }
  }
  pthread_mutex_unlock(&w->mu);
  return rc;
}

void hs_writer_stop(hotspan_tracer *t, int timeout_ms) {
  hs_writer *w = &t->writer;
  if (hs_writer_flush(t, timeout_ms) != HOTSPAN_OK)
    hs_log(HS_LOG_WARN,
           "trace writer did not finish within %d ms; "
           "unwritten traces are dropped",
           timeout_ms);
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  int running = w->running;
  w->running = 0;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  if (running)
    pthread_join(w->thread, NULL);
  /* Anything still queued (flush timed out) is released unwritten. */
  for (hs_chunk *c = w->head, *next; c != NULL; c = next) {
    next = c->next;
    hs_chunk_free(c);
  }
  w->head = w->tail = NULL;
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  pthread_cond_destroy(&w->done_cv);
}
