/* Thread context records: allocation on first use, release at thread exit.
 * See correlation/thread_ctx.h for the layout and the update protocol. */
#include "correlation/thread_ctx.h"

#include <pthread.h>
#include <stdlib.h>

__attribute__((visibility("default"))) __thread hs_otel_thread_ctx
    *otel_thread_ctx_v1 __attribute__((tls_model("initial-exec")));

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static int key_ok;

/* Runs at thread exit. The TLS pointer is cleared before the record is
 * freed so that a signal handler interrupting the rest of the thread's exit
 * sees "no record" rather than freed memory. */
static void release_record(void *p) {
  otel_thread_ctx_v1 = NULL;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  free(p);
}

static void make_key(void) {
  key_ok = pthread_key_create(&key, release_record) == 0;
}

hs_thread_ctx *hs_thread_ctx_get(void) {
  hs_thread_ctx *rec = hs_thread_ctx_peek();
  if (rec != NULL)
    return rec;
  pthread_once(&key_once, make_key);
  if (!key_ok)
    return NULL;
  rec = calloc(1, sizeof *rec);
  if (rec == NULL)
    return NULL;
  if (pthread_setspecific(key, rec) != 0) {
    free(rec);
    return NULL;
  }
  atomic_signal_fence(memory_order_seq_cst);
  otel_thread_ctx_v1 = &rec->otel;
  return rec;
}
