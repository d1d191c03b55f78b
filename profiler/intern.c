#include "profiler/intern.h"

#include <stdlib.h>
#include <string.h>

static int grow(hs_intern_set *t) {
  size_t ncap = t->cap ? t->cap * 2 : 256;
  char **ns = calloc(ncap, sizeof *ns);
  if (ns == NULL)
    return -1;
  for (size_t i = 0; i < t->cap; i++) {
    if (t->slots[i] == NULL)
      continue;
    size_t j = hs_hash_bytes(t->slots[i], strlen(t->slots[i])) & (ncap - 1);
    while (ns[j] != NULL)
      j = (j + 1) & (ncap - 1);
    ns[j] = t->slots[i];
  }
  free(t->slots);
  t->slots = ns;
  t->cap = ncap;
  return 0;
}

const char *hs_intern_n(hs_intern_set *t, const char *s, size_t len) {
  len = strnlen(s, len);
  /* Keep the load under one half so probe runs stay short. */
  if ((t->count + 1) * 2 > t->cap && grow(t) != 0)
    return NULL;
  size_t j = hs_hash_bytes(s, len) & (t->cap - 1);
  while (t->slots[j] != NULL) {
    if (strncmp(t->slots[j], s, len) == 0 && t->slots[j][len] == '\0')
      return t->slots[j];
    j = (j + 1) & (t->cap - 1);
  }
  char *c = malloc(len + 1);
  if (c == NULL)
    return NULL;
  memcpy(c, s, len);
  c[len] = '\0';
  t->slots[j] = c;
  t->count++;
  return c;
}

const char *hs_intern(hs_intern_set *t, const char *s) {
  return hs_intern_n(t, s, strlen(s));
}

void hs_intern_free(hs_intern_set *t) {
  for (size_t i = 0; i < t->cap; i++)
    free(t->slots[i]);
  free(t->slots);
  t->slots = NULL;
  t->cap = t->count = 0;
}
