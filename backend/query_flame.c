/* The flame graph of a profile: a tree of frame names, root first, in
 * which every node's value is the summed sample value of the stacks that
 * pass through it. Built one collected stack at a time, sorted once, and
 * written as nested JSON objects. The tree functions recurse once per
 * stack depth, which the store bounds (HS_ING_MAX_FRAMES, model.h). */
#include <stdlib.h>
#include <string.h>

#include "backend/query_int.h"

void hs_query_flame_free(hs_query_flame *f) {
  for (size_t i = 0; i < f->nchildren; i++)
    hs_query_flame_free(&f->children[i]);
  free(f->children);
  free(f->name);
  memset(f, 0, sizeof *f);
}

/* The child of f named name, added (value 0) if f has none yet. A linear
 * search: a node has few distinct callees. NULL out of memory. */
static hs_query_flame *flame_child(hs_query_flame *f, const char *name) {
  for (size_t i = 0; i < f->nchildren; i++)
    if (!strcmp(f->children[i].name, name))
      return &f->children[i];
  if (f->nchildren == f->cap) {
    size_t nc = f->cap ? f->cap * 2 : 4;
    hs_query_flame *nv = realloc(f->children, nc * sizeof *nv);
    if (!nv)
      return NULL;
    f->children = nv;
    f->cap = nc;
  }
  hs_query_flame *c = &f->children[f->nchildren];
  memset(c, 0, sizeof *c);
  if (!(c->name = strdup(name)))
    return NULL;
  f->nchildren++;
  return c;
}

int hs_query_flame_add(hs_query_flame *root, const hs_query_stack *st) {
  hs_query_flame *node = root;
  node->value = hs_query_sat_add(node->value, st->value);
  /* names are leaf first: walk them from the outermost caller. */
  for (size_t k = st->nnames; k-- > 0;) {
    if (!(node = flame_child(node, st->names[k])))
      return -1;
    node->value = hs_query_sat_add(node->value, st->value);
  }
  return 0;
}

/* Largest value first; equal values by name, so the output is stable. */
static int cmp_flame(const void *a, const void *b) {
  const hs_query_flame *x = a, *y = b;
  if (x->value != y->value)
    return x->value > y->value ? -1 : 1;
  return strcmp(x->name, y->name);
}

void hs_query_flame_sort(hs_query_flame *f) {
  if (f->nchildren > 1)
    qsort(f->children, f->nchildren, sizeof *f->children, cmp_flame);
  for (size_t i = 0; i < f->nchildren; i++)
    hs_query_flame_sort(&f->children[i]);
}

void hs_query_flame_json(hs_buf *b, const hs_query_flame *f) {
  hs_buf_puts(b, "{\"name\":");
  hs_json_str(b, f->name ? f->name : "root");
  hs_buf_printf(b, ",\"value\":%lld,\"children\":[", (long long)f->value);
  for (size_t i = 0; i < f->nchildren; i++) {
    if (i)
      hs_buf_putc(b, ',');
    hs_query_flame_json(b, &f->children[i]);
  }
  hs_buf_puts(b, "]}");
}
