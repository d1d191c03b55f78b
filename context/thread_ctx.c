#include "context/thread_ctx.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

__attribute__((visibility("default"))) __thread void *otel_thread_ctx_v1
    __attribute__((tls_model("initial-exec"))) = NULL;

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

/* Thread exit: unpublish first, then free. A signal handler running on this
 * thread after the store sees NULL; one running before it sees the record,
 * which is still allocated. */
static void ctx_destroy(void *p) {
  otel_thread_ctx_v1 = NULL;
  atomic_signal_fence(memory_order_seq_cst);
  free(p);
}

static void ctx_key_init(void) {
  (void)pthread_key_create(&ctx_key, ctx_destroy);
}

hs_thread_ctx *hs_thread_ctx_get(void) {
  hs_thread_ctx *rec = hs_thread_ctx_peek();
  if (rec != NULL)
    return rec;
  pthread_once(&ctx_once, ctx_key_init);
  rec = calloc(1, sizeof *rec);
  if (rec == NULL)
    return NULL;
  if (pthread_setspecific(ctx_key, rec) != 0) {
    free(rec);
    return NULL;
  }
  atomic_signal_fence(memory_order_seq_cst);
  otel_thread_ctx_v1 = rec; /* rec->otel is at offset 0 */
  return rec;
}
