/* The fork-handler registry (common/fork.h). */
#include "common/fork.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#define MAX_HANDLERS 8

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
/* Sorted by ascending rank; changed only under reg_mu, which prepare holds
 * until parent or child, so no registration runs across a fork. */
static const hs_fork_handler *handlers[MAX_HANDLERS];
static size_t nhandlers;
static _Atomic unsigned generation;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int installed;

unsigned hs_fork_generation(void) {
  return atomic_load_explicit(&generation, memory_order_relaxed);
}

static void run_prepare(void) {
  pthread_mutex_lock(&reg_mu);
  for (size_t i = 0; i < nhandlers; i++)
    if (handlers[i]->prepare != NULL)
      handlers[i]->prepare();
}

static void run_parent(void) {
  for (size_t i = nhandlers; i-- > 0;)
    if (handlers[i]->parent != NULL)
      handlers[i]->parent();
  pthread_mutex_unlock(&reg_mu);
}

static void run_child(void) {
  atomic_fetch_add_explicit(&generation, 1, memory_order_relaxed);
  for (size_t i = nhandlers; i-- > 0;)
    if (handlers[i]->child != NULL)
      handlers[i]->child();
  pthread_mutex_init(&reg_mu, NULL);
}

static void install(void) {
  installed = pthread_atfork(run_prepare, run_parent, run_child) == 0;
}

int hs_fork_register(const hs_fork_handler *h) {
  pthread_once(&install_once, install);
  if (!installed || h == NULL)
    return -1;
  int rc = 0;
  pthread_mutex_lock(&reg_mu);
  size_t at = nhandlers;
  for (size_t i = 0; i < nhandlers && at == nhandlers; i++) {
    if (handlers[i] == h)
      goto out;
    if (handlers[i]->rank == h->rank)
      rc = -1;
    if (handlers[i]->rank > h->rank)
      at = i;
  }
  if (rc != 0 || nhandlers == MAX_HANDLERS) {
    rc = -1;
    goto out;
  }
  for (size_t i = nhandlers; i > at; i--)
    handlers[i] = handlers[i - 1];
  handlers[at] = h;
  nhandlers++;
out:
  pthread_mutex_unlock(&reg_mu);
  return rc;
}
