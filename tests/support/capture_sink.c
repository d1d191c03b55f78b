#include "support/capture_sink.h"

#include <stdio.h>

static void cap_copy(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src ? src : "");
}

static void cap_write(hs_trace_sink *self, const hs_chunk *c) {
  capture_sink *cs = (capture_sink *)self;
  pthread_mutex_lock(&cs->mu);
  cs->chunks++;
  for (const hotspan_span *s = c->spans; s != NULL; s = s->next) {
    if (cs->n == cs->cap) {
      cs->cap = cs->cap ? cs->cap * 2 : 64;
      cs->spans = realloc(cs->spans, cs->cap * sizeof *cs->spans);
    }
    cap_span *o = &cs->spans[cs->n++];
    memset(o, 0, sizeof *o);
    o->trace_hi = s->trace->id_high;
    o->trace_lo = s->trace->id_low;
    o->span_id = s->span_id;
    o->parent_id = s->parent_id;
    o->local_root_id = s->trace->local_root_id;
    o->start = s->start_ns;
    o->duration = s->duration_ns;
    cap_copy(o->name, sizeof o->name, s->name);
    cap_copy(o->resource, sizeof o->resource, s->resource);
    cap_copy(o->service, sizeof o->service, s->service);
    cap_copy(o->type, sizeof o->type, s->type);
    o->kind = s->kind;
    o->error = s->error;
    o->is_root = s->is_local_root;
    o->partial = c->partial;
    pthread_mutex_lock(&s->trace->mu);
    o->priority = s->trace->priority;
    cap_copy(o->propagated, sizeof o->propagated, s->trace->propagated_tags);
    pthread_mutex_unlock(&s->trace->mu);
    o->endpoint_id = atomic_load(&s->trace->endpoint_id);
    for (uint16_t i = 0; i < s->ntags && i < 16; i++) {
      const hs_tag *t = &s->tags[i];
      cap_copy(o->tag_keys[i], sizeof o->tag_keys[i], t->key);
      switch (t->type) {
      case HS_TAG_STR:
        cap_copy(o->tag_vals[i], sizeof o->tag_vals[i], t->v.s);
        break;
      case HS_TAG_INT:
        snprintf(o->tag_vals[i], sizeof o->tag_vals[i], "i:%lld",
                 (long long)t->v.i);
        break;
      case HS_TAG_DOUBLE:
        snprintf(o->tag_vals[i], sizeof o->tag_vals[i], "d:%g", t->v.d);
        break;
      default:
        snprintf(o->tag_vals[i], sizeof o->tag_vals[i], "b:%d", (int)t->v.i);
      }
      o->ntags++;
    }
  }
  pthread_mutex_unlock(&cs->mu);
}

static void cap_destroy(hs_trace_sink *self) {
  capture_sink *cs = (capture_sink *)self;
  free(cs->spans);
  pthread_mutex_destroy(&cs->mu);
  free(cs);
}

capture_sink *capture_sink_new(void) {
  capture_sink *cs = calloc(1, sizeof *cs);
  pthread_mutex_init(&cs->mu, NULL);
  cs->base.name = "capture";
  cs->base.write = cap_write;
  cs->base.destroy = cap_destroy;
  return cs;
}

const cap_span *cap_find(capture_sink *cs, const char *name) {
  for (size_t i = 0; i < cs->n; i++)
    if (strcmp(cs->spans[i].name, name) == 0)
      return &cs->spans[i];
  return NULL;
}

const char *cap_tag(const cap_span *s, const char *key) {
  for (int i = 0; i < s->ntags; i++)
    if (strcmp(s->tag_keys[i], key) == 0)
      return s->tag_vals[i];
  return NULL;
}

hotspan_tracer *capture_tracer(capture_sink **out,
                               hotspan_config *cfg_or_null) {
  hotspan_config cfg;
  if (cfg_or_null == NULL) {
    hotspan_config_init(&cfg);
    cfg_or_null = &cfg;
  }
  cfg_or_null->ignore_environment = 1;
  if (cfg_or_null->exporters == NULL)
    cfg_or_null->exporters = "none";
  if (cfg_or_null->log_level == 0)
    cfg_or_null->log_level = 1; /* errors only: keep test output readable */
  hotspan_tracer *t = NULL;
  *out = NULL;
  if (hotspan_tracer_new(cfg_or_null, &t) != HOTSPAN_OK)
    return NULL;
  *out = capture_sink_new();
  hs_tracer_add_sink(t, &(*out)->base);
  return t;
}
