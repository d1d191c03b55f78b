#include "agent/pb_budget.h"

#include <stddef.h>
#include <stdlib.h>

/* Each block carries its size in front so that free can give it back. */
void *hs_pb_budget_alloc(void *data, size_t size) {
  hs_pb_budget *b = data;
  if (size > b->max || b->used > b->max - size) {
    b->exceeded = 1;
    return NULL;
  }
  max_align_t *p = malloc(sizeof(max_align_t) + size);
  if (!p)
    return NULL;
  *(size_t *)(void *)p = size;
  b->used += size;
  return p + 1;
}

void hs_pb_budget_free(void *data, void *ptr) {
  hs_pb_budget *b = data;
  if (!ptr)
    return;
  max_align_t *p = (max_align_t *)ptr - 1;
  b->used -= *(size_t *)(void *)p;
  free(p);
}
