/* One fork-handler registry for the whole library.
 *
 * Each part of the library that holds locks or threads registers one
 * handler with a rank. A single pthread_atfork runs them in a fixed order
 * whatever part started first: prepare in ascending rank, parent and child
 * in descending rank. Ranks follow the call direction: code that calls
 * into other code while holding its locks (the tracer's writer calls the
 * exporters, which call the transport) takes its locks first, and the
 * lowest layer is repaired first in the child, so a higher layer's child
 * handler may already use it.
 *
 * Handlers run inside fork(): they may only take and release their own
 * mutexes, reset their state and call async-signal-safe functions; they
 * must never call hs_fork_register. */
#ifndef HS_COMMON_FORK_H
#define HS_COMMON_FORK_H

#include <stdint.h>

enum hs_fork_rank {
  HS_FORK_RANK_TRACERS = 10,   /* tracer list, writer queues, live traces */
  HS_FORK_RANK_POOLS = 20,     /* span, trace and chunk pools */
  HS_FORK_RANK_PROFILER = 30,  /* sampling paused, thread table */
  HS_FORK_RANK_TRANSPORT = 40, /* exporters' queues and HTTP thread */
  HS_FORK_RANK_IDENTITY = 45,  /* runtime id */
  HS_FORK_RANK_CORE = 50,      /* fork generation, library threads */
  HS_FORK_RANK_LIMIT = 64      /* ranks are below this (one bit each) */
};

typedef struct hs_fork_handler {
  int rank;              /* enum hs_fork_rank; unique */
  void (*prepare)(void); /* each may be NULL */
  void (*parent)(void);
  void (*child)(void);
} hs_fork_handler;

/* Adds h (static storage; registering the same pointer twice is a no-op).
 * Returns 0, or -1 when the rank is out of range or taken by another
 * handler. Lock-free, so it may be called with any lock held; not from a
 * fork handler. A handler added while another thread forks takes part
 * from the next fork on. */
int hs_fork_register(const hs_fork_handler *h);

/* Number of forks this process descends from (bumped in each child before
 * any other child handler runs). Async-signal-safe. */
unsigned hs_fork_generation(void);

#endif
