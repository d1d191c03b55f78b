/* The one way the library starts its own threads (the trace writer, the
 * exporters' HTTP thread, the profiler's sampler and aggregator).
 *
 * A library thread:
 *  - starts with every signal blocked, so it never runs the program's or
 *    the profiler's signal handlers and process-directed signals go to the
 *    program's threads;
 *  - is created through the C library's pthread_create (or a sanitizer's
 *    interceptor), never through the profiler's pthread_create wrapper;
 *  - is listed as internal (its kernel tid) from before hs_thread_start
 *    returns until its routine returns, so the profiler never registers it
 *    (hs_thread_is_internal).
 * Library threads return from their routine; they do not call
 * pthread_exit. */
#ifndef HS_COMMON_THREAD_H
#define HS_COMMON_THREAD_H

#include <pthread.h>
#include <sys/types.h>

/* Starts fn(arg) on a new joinable thread named name (at most 15 bytes
 * kept; NULL: unnamed). Same result as pthread_create (EAGAIN when no
 * pthread_create can be found). Not from a signal or fork handler. */
int hs_thread_start(pthread_t *t, void *(*fn)(void *), void *arg,
                    const char *name);

/* 1 if tid is a live library thread. Lock-free; async-signal-safe. */
int hs_thread_is_internal(pid_t tid);
/* 1 while the calling thread is inside hs_thread_start: a pthread_create
 * wrapper that sees this must pass the call through unchanged (a
 * sanitizer's interceptor may call it back). */
int hs_thread_creating_internal(void);

/* The kernel id of the calling thread. Async-signal-safe. */
pid_t hs_gettid(void);

#endif
