/* The versions query: every (service, version) the store has traces or
 * samples of, with their counts and time span, and its JSON writer. */
#include <stdlib.h>
#include <string.h>

#include "backend/query_int.h"

typedef struct version_acc {
  hs_query_versions *out;
  size_t cap;
  int oom;
} version_acc;

/* hs_store_versions callback: appends a deep copy of v. */
static int version_acc_cb(void *arg, const hs_store_version *v) {
  version_acc *a = arg;
  hs_query_versions *r = a->out;
  if (r->n == a->cap) {
    size_t nc = a->cap ? a->cap * 2 : 16;
    hs_query_version *nv = realloc(r->v, nc * sizeof *nv);
    if (!nv) {
      a->oom = 1;
      return 1;
    }
    r->v = nv;
    a->cap = nc;
  }
  hs_query_version *d = &r->v[r->n];
  memset(d, 0, sizeof *d);
  d->service = strdup(v->service);
  d->version = strdup(v->version);
  d->requests = v->requests;
  d->samples = v->samples;
  d->first_ns = v->first_ns;
  d->last_ns = v->last_ns;
  r->n++;
  if (!d->service || !d->version) {
    a->oom = 1;
    return 1;
  }
  return 0;
}

int hs_query_versions_query(hs_store *s, const char *service,
                            hs_query_versions *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (service && !(out->service = strdup(service)))
    return hs_query_oom(err, errlen);
  version_acc a = {out, 0, 0};
  int rc = hs_store_versions(s, service, version_acc_cb, &a, err, errlen);
  if (a.oom)
    rc = hs_query_oom(err, errlen);
  if (rc == HS_STORE_OK && service && !out->n) {
    hs_query_seterr(err, errlen, "no versions known for service %s", service);
    rc = HS_STORE_NOTFOUND;
  }
  if (rc != HS_STORE_OK)
    hs_query_versions_free(out);
  return rc;
}

void hs_query_versions_free(hs_query_versions *r) {
  if (!r)
    return;
  for (size_t i = 0; i < r->n; i++) {
    free(r->v[i].service);
    free(r->v[i].version);
  }
  free(r->v);
  free(r->service);
  memset(r, 0, sizeof *r);
}

void hs_query_versions_json(const hs_query_versions *r, hs_buf *b) {
  hs_buf_puts(b, "{\"service\":");
  hs_json_str(b, r->service);
  hs_buf_puts(b, ",\"versions\":[");
  for (size_t i = 0; i < r->n; i++) {
    const hs_query_version *v = &r->v[i];
    hs_buf_puts(b, i ? ",{\"service\":" : "{\"service\":");
    hs_json_str(b, v->service);
    hs_buf_puts(b, ",\"version\":");
    hs_json_str(b, v->version);
    hs_buf_printf(b,
                  ",\"requests\":%lld,\"samples\":%lld,\"first_ns\":%lld,"
                  "\"last_ns\":%lld}",
                  (long long)v->requests, (long long)v->samples,
                  (long long)v->first_ns, (long long)v->last_ns);
  }
  hs_buf_puts(b, "]}");
}
