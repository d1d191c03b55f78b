#include "support/store_fixtures.h"

void tmpdb_make(tmpdb *t) {
  snprintf(t->dir, sizeof t->dir, "/tmp/hs_store_test_XXXXXX");
  if (!mkdtemp(t->dir))
    abort();
  snprintf(t->path, sizeof t->path, "%s/agent.db", t->dir);
}

void tmpdb_remove(tmpdb *t) {
  char p[160];
  const char *suffix[] = {"", "-wal", "-shm", "-journal"};
  for (int i = 0; i < 4; i++) {
    snprintf(p, sizeof p, "%s%s", t->path, suffix[i]);
    unlink(p);
  }
  rmdir(t->dir);
}

void tb_init(tbatch *t, const char *service) {
  memset(t, 0, sizeof *t);
  t->b.spans = t->spans;
  t->b.samples = t->samples;
  t->b.service = service;
}

hs_ing_span *tb_span(tbatch *t, uint64_t thi, uint64_t tlo, uint64_t id,
                     uint64_t parent, const char *service, const char *resource,
                     int64_t start, int64_t dur) {
  hs_ing_span *s = &t->spans[t->b.nspans++];
  memset(s, 0, sizeof *s);
  s->trace_id_high = thi;
  s->trace_id_low = tlo;
  s->span_id = id;
  s->parent_id = parent;
  s->service = service;
  s->name = "op";
  s->resource = resource;
  s->start_ns = start;
  s->duration_ns = dur;
  return s;
}

void tb_samples(tbatch *t, int n, uint8_t type, int64_t value, uint64_t span,
                const char *endpoint, int64_t time, const hs_ing_frame *frames,
                uint32_t nframes) {
  for (int i = 0; i < n; i++) {
    hs_ing_sample *s = &t->samples[t->b.nsamples++];
    memset(s, 0, sizeof *s);
    s->time_ns = time;
    s->type = type;
    s->value = value;
    s->span_id = span;
    s->local_root_span_id = span;
    s->endpoint = endpoint;
    s->thread_id = 7;
    s->thread_name = "worker";
    s->frames = frames;
    s->nframes = nframes;
  }
}
