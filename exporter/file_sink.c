/* File sink: HOTSPAN_OUTPUT_DIR/traces.jsonl, one JSON object per span, so
 * that a program traced without any backend still leaves its traces
 * behind, in a form jq, Python or the hotspan CLI can read.
 *
 * Runs on the writer thread. Each chunk becomes one write(2) in append
 * mode, so lines from forked children sharing the file never interleave. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "context/endpoints.h"
#include "exporter/file_sink.h"

typedef struct file_sink {
  hs_trace_sink base;
  const hs_tracer_settings *st; /* the tracer's; outlives the sink */
  int fd;
  hs_buf buf;
  uint64_t write_errors;
} file_sink;

static const char *kind_name(int kind) {
  static const char *const names[] = {"unspecified", "internal", "server",
                                      "client",      "producer", "consumer"};
  return (kind >= 0 && kind <= 5) ? names[kind] : "unspecified";
}

static void json_tag_value(hs_buf *b, const hs_tag *t) {
  switch (t->type) {
  case HS_TAG_STR:
    hs_json_str(b, t->v.s);
    break;
  case HS_TAG_INT:
    hs_json_i64(b, t->v.i);
    break;
  case HS_TAG_DOUBLE:
    hs_json_double(b, t->v.d);
    break;
  default:
    hs_buf_puts(b, t->v.i ? "true" : "false");
    break;
  }
}

static int span_has_tag(const hotspan_span *s, const char *key) {
  for (uint16_t i = 0; i < s->ntags; i++)
    if (strcmp(s->tags[i].key, key) == 0)
      return 1;
  return 0;
}

/* "k1=v1,k2=v2" → "k1":"v1","k2":"v2" (leading comma per entry). */
static void json_propagated(hs_buf *b, const char *tags) {
  const char *p = tags;
  while (*p != '\0') {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', n);
    if (eq != NULL) {
      hs_buf_putc(b, ',');
      hs_json_strn(b, p, (size_t)(eq - p));
      hs_buf_putc(b, ':');
      hs_json_strn(b, eq + 1, n - (size_t)(eq - p) - 1);
    }
    p += n;
    if (*p == ',')
      p++;
  }
}

static void json_attrs(hs_buf *b, const hs_tag *attrs, uint16_t n,
                       int as_strings) {
  hs_buf_putc(b, '{');
  for (uint16_t i = 0; i < n; i++) {
    if (i > 0)
      hs_buf_putc(b, ',');
    hs_json_str(b, attrs[i].key);
    hs_buf_putc(b, ':');
    if (!as_strings || attrs[i].type == HS_TAG_STR) {
      json_tag_value(b, &attrs[i]);
      continue;
    }
    /* Datadog's span links carry string attributes only. */
    hs_buf_putc(b, '"');
    json_tag_value(b, &attrs[i]);
    hs_buf_putc(b, '"');
  }
  hs_buf_putc(b, '}');
}

/* A span's events as a JSON array of {"name","time_unix_nano",
 * "attributes":{...}} (attribute values with their types). */
static void hs_span_events_json(const hotspan_span *s, hs_buf *b) {
  hs_buf_putc(b, '[');
  for (const hs_span_event *e = s->events; e != NULL; e = e->next) {
    if (e != s->events)
      hs_buf_putc(b, ',');
    hs_buf_puts(b, "{\"name\":");
    hs_json_str(b, e->name);
    hs_buf_puts(b, ",\"time_unix_nano\":");
    hs_json_u64(b, e->time_ns);
    hs_buf_puts(b, ",\"attributes\":");
    json_attrs(b, e->attrs, e->nattrs, 0);
    hs_buf_putc(b, '}');
  }
  hs_buf_putc(b, ']');
}

void hs_span_links_json(const hotspan_span *s, hs_buf *b, int dd_form) {
  hs_buf_putc(b, '[');
  for (const hs_span_link *l = s->links; l != NULL; l = l->next) {
    if (l != s->links)
      hs_buf_putc(b, ',');
    hs_buf_puts(b, "{\"trace_id\":\"");
    hs_json_hex64(b, l->trace_id_high);
    hs_json_hex64(b, l->trace_id_low);
    hs_buf_puts(b, "\",\"span_id\":\"");
    hs_json_hex64(b, l->span_id);
    hs_buf_putc(b, '"');
    if (l->tracestate != NULL) {
      hs_buf_puts(b, ",\"tracestate\":");
      hs_json_str(b, l->tracestate);
    }
    hs_buf_puts(b, ",\"flags\":");
    /* Datadog marks "flags were given" with bit 31. */
    hs_json_u64(b, dd_form ? (uint64_t)l->trace_flags | 0x80000000u
                           : (uint64_t)l->trace_flags);
    if (l->nattrs > 0 || !dd_form) {
      hs_buf_puts(b, ",\"attributes\":");
      json_attrs(b, l->attrs, l->nattrs, dd_form);
    }
    hs_buf_putc(b, '}');
  }
  hs_buf_putc(b, ']');
}

static void span_json(const hotspan_span *s, const hs_tracer_settings *st,
                      const hs_trace_view *tv, hs_buf *b) {
  hs_buf_puts(b, "{\"trace_id\":\"");
  hs_json_hex64(b, tv->id_high);
  hs_json_hex64(b, tv->id_low);
  hs_buf_puts(b, "\",\"span_id\":\"");
  hs_json_hex64(b, s->span_id);
  hs_buf_puts(b, "\",\"parent_id\":\"");
  hs_json_hex64(b, s->parent_id);
  hs_buf_puts(b, "\",\"name\":");
  hs_json_str(b, s->name);
  hs_buf_puts(b, ",\"resource\":");
  hs_json_str(b, s->resource);
  hs_buf_puts(b, ",\"service\":");
  hs_json_str(b, s->service);
  hs_buf_puts(b, ",\"type\":");
  hs_json_str(b, s->type);
  hs_buf_puts(b, ",\"kind\":");
  hs_json_str(b, kind_name(s->kind));
  hs_buf_puts(b, ",\"start\":");
  hs_json_u64(b, s->start_ns);
  hs_buf_puts(b, ",\"duration\":");
  hs_json_u64(b, s->duration_ns);
  hs_buf_puts(b, ",\"error\":");
  hs_json_u64(b, s->error);
  if (s->is_local_root && tv != NULL) {
    hs_buf_puts(b, ",\"local_root\":true,\"sampling_priority\":");
    hs_json_i64(b, tv->priority);
    const char *ep = hs_endpoint_name(tv->endpoint_id);
    hs_buf_puts(b, ",\"endpoint\":");
    hs_json_str(b, ep);
  }
  hs_buf_puts(b, ",\"tags\":{");
  int first = 1;
  for (uint16_t i = 0; i < s->ntags; i++) {
    if (!first)
      hs_buf_putc(b, ',');
    first = 0;
    hs_json_str(b, s->tags[i].key);
    hs_buf_putc(b, ':');
    json_tag_value(b, &s->tags[i]);
  }
  /* Process-wide tags, unless the span set the same key. */
  if (st != NULL) {
    if (st->env != NULL && !span_has_tag(s, "env")) {
      hs_buf_puts(b, first ? "\"env\":" : ",\"env\":");
      hs_json_str(b, st->env);
      first = 0;
    }
    if (st->version != NULL && !span_has_tag(s, "version")) {
      hs_buf_puts(b, first ? "\"version\":" : ",\"version\":");
      hs_json_str(b, st->version);
      first = 0;
    }
    for (size_t i = 0; i < st->ntags; i++) {
      if (span_has_tag(s, st->tags[i].key))
        continue;
      if (!first)
        hs_buf_putc(b, ',');
      first = 0;
      hs_json_str(b, st->tags[i].key);
      hs_buf_putc(b, ':');
      hs_json_str(b, st->tags[i].value);
    }
  }
  hs_buf_putc(b, '}');
  if (s->events != NULL) {
    hs_buf_puts(b, ",\"events\":");
    hs_span_events_json(s, b);
  }
  if (s->links != NULL) {
    hs_buf_puts(b, ",\"links\":");
    hs_span_links_json(s, b, 0);
  }
  if (s->is_local_root && tv != NULL) {
    /* Trace-level tags travel on the local root, as Datadog does. */
    hs_buf_puts(b, ",\"trace_tags\":{\"_dd.origin\":");
    hs_json_str(b, tv->origin[0] ? tv->origin : NULL);
    json_propagated(b, tv->propagated_tags);
    if (tv->last_dd_parent_id[0]) {
      hs_buf_puts(b, ",\"_dd.parent_id\":");
      hs_json_str(b, tv->last_dd_parent_id);
    }
    if (tv->rule_rate >= 0) {
      hs_buf_puts(b, ",\"_dd.rule_psr\":");
      hs_json_double(b, tv->rule_rate);
    }
    if (tv->limit_rate >= 0) {
      hs_buf_puts(b, ",\"_dd.limit_psr\":");
      hs_json_double(b, tv->limit_rate);
    }
    hs_buf_putc(b, '}');
  }
  hs_buf_putc(b, '}');
}

void hs_span_to_json(const hotspan_span *s, const hs_tracer_settings *st,
                     hs_buf *out) {
  hs_trace_view tv;
  hs_trace_snapshot(s->trace, &tv);
  span_json(s, st, &tv, out);
}

static void file_write(hs_trace_sink *self, const hs_chunk *c) {
  file_sink *fs = (file_sink *)self;
  hs_trace_view tv;
  hs_trace_snapshot(c->trace, &tv);
  hs_buf_reset(&fs->buf);
  for (const hotspan_span *s = c->spans; s != NULL; s = s->next) {
    span_json(s, fs->st, &tv, &fs->buf);
    hs_buf_putc(&fs->buf, '\n');
  }
  if (hs_buf_failed(&fs->buf)) {
    hs_log(HS_LOG_WARN, "file sink: chunk of %u spans too large; dropped",
           c->nspans);
    return;
  }
  const char *p = fs->buf.data;
  size_t n = fs->buf.len;
  while (n > 0) {
    ssize_t w = write(fs->fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      if (fs->write_errors++ == 0)
        hs_log(HS_LOG_WARN, "file sink: write failed: %s", strerror(errno));
      return;
    }
    p += w;
    n -= (size_t)w;
  }
}

static void file_destroy(hs_trace_sink *self) {
  file_sink *fs = (file_sink *)self;
  if (fs->fd >= 0)
    close(fs->fd);
  hs_buf_free(&fs->buf);
  free(fs);
}

/* mkdir -p */
static int make_dirs(const char *dir) {
  char path[4096];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof path)
    return -1;
  memcpy(path, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (path[i] == '/' || path[i] == '\0') {
      char c = path[i];
      path[i] = '\0';
      if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return -1;
      path[i] = c;
    }
  }
  return 0;
}

hs_trace_sink *hs_file_sink_new(const hs_trace_sink_host *h, const char *dir) {
  if (h == NULL || h->settings == NULL || dir == NULL)
    return NULL;
  char path[4096];
  if (make_dirs(dir) != 0 ||
      snprintf(path, sizeof path, "%s/traces.jsonl", dir) >= (int)sizeof path) {
    hs_log(HS_LOG_ERROR, "file sink: cannot create directory %s: %s", dir,
           strerror(errno));
    return NULL;
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
  if (fd < 0) {
    hs_log(HS_LOG_ERROR, "file sink: cannot open %s: %s", path,
           strerror(errno));
    return NULL;
  }
  file_sink *fs = calloc(1, sizeof *fs);
  if (fs == NULL) {
    close(fd);
    return NULL;
  }
  fs->fd = fd;
  fs->st = h->settings;
  hs_buf_init(&fs->buf, (size_t)256 << 20);
  fs->base.name = "file";
  fs->base.write = file_write;
  fs->base.destroy = file_destroy;
  return &fs->base;
}
