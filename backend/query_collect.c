/* The sample collector the profile queries share: sample rows from the
 * store summed per (profile type, stack id), then each distinct stack's
 * frames resolved to display names once (a stack id seen for both CPU and
 * wall is read from the store once). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/query_int.h"

void hs_query_coll_init(hs_query_coll *c, hs_store *s, int lines) {
  memset(c, 0, sizeof *c);
  c->store = s;
  c->lines = lines;
}

void hs_query_coll_free(hs_query_coll *c) {
  for (size_t i = 0; i < c->n; i++) {
    for (size_t k = 0; k < c->v[i].nnames; k++)
      free(c->v[i].names[k]);
    free(c->v[i].names);
  }
  free(c->v);
  hs_kvmap_free(&c->idx);
  memset(c, 0, sizeof *c);
}

/* hs_store_samples callback: adds a row's value and count to its (type,
 * stack id) entry, creating it on first sight. Stops (1) out of memory,
 * with c->oom set. */
static int coll_cb(void *arg, int type, int64_t stack_id, int64_t value,
                   int64_t count) {
  hs_query_coll *c = arg;
  int64_t key[2] = {type, stack_id};
  int added;
  hs_kv_slot *sl =
      hs_kvmap_put(&c->idx, key, sizeof key, (int64_t)c->n, &added);
  if (!sl) {
    c->oom = 1;
    return 1;
  }
  if (added) {
    if (c->n == c->cap) {
      size_t nc = c->cap ? c->cap * 2 : 64;
      hs_query_stack *nv = realloc(c->v, nc * sizeof *nv);
      if (!nv) {
        c->oom = 1;
        return 1;
      }
      c->v = nv;
      c->cap = nc;
    }
    hs_query_stack *st = &c->v[c->n++];
    memset(st, 0, sizeof *st);
    st->type = type;
    st->stack_id = stack_id;
  }
  c->v[sl->val].value = hs_query_sat_add(c->v[sl->val].value, value);
  c->v[sl->val].count = hs_query_sat_add(c->v[sl->val].count, count);
  return 0;
}

int hs_query_coll_add(hs_query_coll *c, const hs_store_sample_sel *sel,
                      char *err, size_t errlen) {
  int rc = hs_store_samples(c->store, sel, coll_cb, c, err, errlen);
  if (c->oom)
    return hs_query_oom(err, errlen);
  return rc;
}

/* A frame's display name: "function" or "function file:line". malloc'ed. */
static char *frame_name(const hs_store_frame *f, int lines) {
  const char *fn = f->function && *f->function ? f->function : "??";
  if (!lines || !f->file || !*f->file)
    return strdup(fn);
  char *s = NULL;
  if (asprintf(&s, "%s %s:%lld", fn, f->file, (long long)f->line) < 0)
    return NULL;
  return s;
}

/* Where names_cb puts a stack's frame names. */
typedef struct names_out {
  hs_query_stack *st;
  int lines;
} names_out;

/* hs_store_stack callback: one display name per frame, leaf first, or
 * "[no frames]" for an empty stack; a stack stored before the frame cap
 * is cut as ingest cuts it (model.h). 1 out of memory. */
static int names_cb(void *arg, const hs_store_frame *frames, size_t n) {
  names_out *o = arg;
  int cut = n > HS_ING_MAX_FRAMES;
  if (cut)
    n = HS_ING_MAX_FRAMES - 1;
  /* An empty stack still has a leaf, so its time shows. */
  size_t m = n + (size_t)cut;
  if (m == 0)
    m = 1;
  o->st->names = calloc(m, sizeof *o->st->names);
  if (!o->st->names)
    return 1;
  for (size_t i = 0; i < n; i++) {
    o->st->names[i] = frame_name(&frames[i], o->lines);
    if (!o->st->names[i])
      return 1;
    o->st->nnames++;
  }
  if (cut) {
    if (!(o->st->names[n] = strdup(HS_ING_TRUNCATED_FRAME)))
      return 1;
    o->st->nnames++;
    return 0;
  }
  if (!n) {
    o->st->names[0] = strdup("[no frames]");
    if (!o->st->names[0])
      return 1;
    o->st->nnames = 1;
  }
  return 0;
}

int hs_query_coll_resolve(hs_query_coll *c, char *err, size_t errlen) {
  /* A stack id has the same frames for CPU and wall: copy the names. */
  hs_kvmap done;
  hs_kvmap_init(&done);
  int rc = HS_STORE_OK;
  for (size_t i = 0; i < c->n && rc == HS_STORE_OK; i++) {
    hs_query_stack *st = &c->v[i];
    if (st->names)
      continue;
    hs_kv_slot *sl = hs_kvmap_get(&done, &st->stack_id, sizeof st->stack_id);
    if (sl) {
      const hs_query_stack *o = &c->v[sl->val];
      st->names = calloc(o->nnames, sizeof *st->names);
      if (!st->names) {
        rc = hs_query_oom(err, errlen);
        break;
      }
      for (size_t k = 0; k < o->nnames; k++) {
        if (!(st->names[k] = strdup(o->names[k]))) {
          rc = hs_query_oom(err, errlen);
          break;
        }
        st->nnames++;
      }
      continue;
    }
    names_out no = {st, c->lines};
    rc = hs_store_stack(c->store, st->stack_id, names_cb, &no, err, errlen);
    if (rc > 0)
      rc = hs_query_oom(err, errlen);
    if (rc == HS_STORE_OK &&
        !hs_kvmap_put(&done, &st->stack_id, sizeof st->stack_id, (int64_t)i,
                      NULL))
      rc = hs_query_oom(err, errlen);
  }
  hs_kvmap_free(&done);
  return rc;
}
