/* Shared body of the fuzz_extract_<style> libFuzzer targets. Each target
 * defines FUZZ_STYLES (the extract style list, its own style first) and
 * includes this file.
 *
 * Input format, chosen so that seeds are readable text: one header per
 * line ('\n'), the name up to the first ':' and the value after it, bytes
 * taken as they are (no trimming: whitespace handling is fuzzed too). Every
 * name and value is handed to the codec in its own exactly sized heap
 * buffer without a NUL, so ASan reports any read past the given length.
 *
 * Besides "no crash, no sanitizer report", the target checks properties
 * every extracted context must have and that it survives inject → extract
 * in every style with the same ids (and, for datadog and tracecontext, the
 * same priority, origin and tags). A violation aborts. */
#ifndef HS_FUZZ_EXTRACT_H
#define HS_FUZZ_EXTRACT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tracer/propagation_codec.h"

typedef struct fz_input {
  const uint8_t *data;
  size_t size;
} fz_input;

static int fz_foreach(void *carrier, hotspan_header_visit_fn visit, void *arg) {
  const fz_input *in = carrier;
  size_t i = 0;
  while (i < in->size) {
    const uint8_t *line = in->data + i;
    const uint8_t *nl = memchr(line, '\n', in->size - i);
    size_t ll = nl != NULL ? (size_t)(nl - line) : in->size - i;
    i += ll + 1;
    const uint8_t *colon = memchr(line, ':', ll);
    size_t nlen = colon != NULL ? (size_t)(colon - line) : ll;
    size_t vlen = colon != NULL ? ll - nlen - 1 : 0;
    char *name = malloc(nlen > 0 ? nlen : 1);
    char *value = malloc(vlen > 0 ? vlen : 1);
    if (name == NULL || value == NULL)
      abort();
    memcpy(name, line, nlen);
    if (vlen > 0)
      memcpy(value, colon + 1, vlen);
    int stop = visit(arg, name, nlen, value, vlen);
    free(name);
    free(value);
    if (stop)
      break;
  }
  return 0;
}

/* Recording carrier for the round trip. */
#define FZ_MAX 16
typedef struct fz_rec {
  int n;
  char name[FZ_MAX][32];
  char value[FZ_MAX][1024];
} fz_rec;

static void fz_fail(const char *what) {
  fprintf(stderr, "fuzz_extract: property violated: %s\n", what);
  abort();
}

static int fz_set(void *carrier, const char *name, const char *value) {
  fz_rec *r = carrier;
  size_t vn = strlen(value);
  if (r->n >= FZ_MAX || strlen(name) >= sizeof r->name[0] ||
      vn >= sizeof r->value[0])
    fz_fail("injected header too large");
  /* Whatever came in, what goes out must be a clean header value. */
  for (size_t i = 0; i < vn; i++)
    if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] > 0x7e)
      fz_fail("injected value not printable ASCII");
  strcpy(r->name[r->n], name);
  strcpy(r->value[r->n], value);
  r->n++;
  return 0;
}

static int fz_rec_foreach(void *carrier, hotspan_header_visit_fn visit,
                          void *arg) {
  fz_rec *r = carrier;
  for (int i = 0; i < r->n; i++)
    visit(arg, r->name[i], strlen(r->name[i]), r->value[i],
          strlen(r->value[i]));
  return 0;
}

static const char *fz_get(const fz_rec *r, const char *name) {
  for (int i = 0; i < r->n; i++)
    if (strcmp(r->name[i], name) == 0)
      return r->value[i];
  return NULL;
}

static void fz_check_str(const char *s, size_t cap, const char *what) {
  if (memchr(s, '\0', cap) == NULL)
    fz_fail(what);
  for (const char *p = s; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
      fz_fail(what);
}

static void fz_check_ctx(const hotspan_context *c) {
  if (c->trace_id_low == 0 || c->span_id == 0)
    fz_fail("valid context with a zero id");
  fz_check_str(c->origin, sizeof c->origin, "origin");
  fz_check_str(c->propagated_tags, sizeof c->propagated_tags, "tags");
  fz_check_str(c->tracestate_other, sizeof c->tracestate_other, "tracestate");
  fz_check_str(c->last_dd_parent_id, sizeof c->last_dd_parent_id, "parent");
  size_t pl = strlen(c->last_dd_parent_id);
  if (pl != 0 && pl != 16)
    fz_fail("last_dd_parent_id length");
  for (const char *m = c->propagated_tags; *m != '\0';) {
    if (strncmp(m, "_dd.p.", 6) != 0 || strncmp(m, "_dd.p.tid=", 10) == 0)
      fz_fail("propagated tag not _dd.p.*, or tid left in them");
    const char *comma = strchr(m, ',');
    if (comma == NULL)
      break;
    m = comma + 1;
  }
  if (strncmp(c->tracestate_other, "dd=", 3) == 0 ||
      strstr(c->tracestate_other, ",dd=") != NULL)
    fz_fail("dd member left in tracestate_other");
}

static void fz_round_trip(const hotspan_context *in, const char *style) {
  hs_prop_styles st;
  if (hs_prop_parse_styles(style, &st) != 0)
    fz_fail("style list");
  fz_rec r;
  r.n = 0;
  hotspan_carrier_writer w = {fz_set};
  if (hs_prop_inject(&st, in, &w, &r) != HOTSPAN_OK)
    fz_fail("inject failed");
  const char *tags = fz_get(&r, "x-datadog-tags");
  if (tags != NULL && strlen(tags) > 512)
    fz_fail("x-datadog-tags over 512 bytes");
  const char *ts = fz_get(&r, "tracestate");
  if (ts != NULL) {
    const char *comma = strchr(ts, ',');
    size_t dd = comma != NULL ? (size_t)(comma - ts) : strlen(ts);
    int members = 1;
    for (const char *p = ts; *p != '\0'; p++)
      members += *p == ',';
    if (dd > 256 || members > 32)
      fz_fail("tracestate limits");
  }

  hotspan_context out;
  hotspan_carrier_reader rd = {fz_rec_foreach};
  uint64_t bad = 0;
  if (hs_prop_extract(&st, &rd, &r, &out, &bad) != HOTSPAN_OK || bad != 0)
    fz_fail("re-extract of injected headers failed");
  fz_check_ctx(&out);
  /* Datadog carries the high bits in x-datadog-tags, which is left out
   * whole when it would pass 512 bytes (documented). */
  int high_lost = strcmp(style, "datadog") == 0 && tags == NULL &&
                  in->propagated_tags[0] != '\0';
  if ((!high_lost && out.trace_id_high != in->trace_id_high) ||
      out.trace_id_low != in->trace_id_low || out.span_id != in->span_id)
    fz_fail("ids changed in a round trip");
  if (strcmp(style, "datadog") == 0) {
    if (out.sampling_priority != in->sampling_priority ||
        strcmp(out.origin, in->origin) != 0)
      fz_fail("datadog round trip: priority or origin");
    if (tags != NULL && strcmp(out.propagated_tags, in->propagated_tags) != 0)
      fz_fail("datadog round trip: tags");
  }
  if (strcmp(style, "tracecontext") == 0 &&
      in->sampling_priority != HOTSPAN_PRIORITY_UNSET &&
      out.sampling_priority != in->sampling_priority)
    fz_fail("tracecontext round trip: priority");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static hs_prop_styles styles;
  static int ready;
  if (!ready) {
    if (hs_prop_parse_styles(FUZZ_STYLES, &styles) != 0)
      abort();
    ready = 1;
  }
  fz_input in = {data, size};
  hotspan_carrier_reader reader = {fz_foreach};
  hotspan_context ctx;
  uint64_t malformed = 0;
  int rc = hs_prop_extract(&styles, &reader, &in, &ctx, &malformed);
  if (malformed > styles.n)
    fz_fail("malformed counted more than once per style");
  if (rc == HOTSPAN_ENOCTX) {
    if (ctx.trace_id_low != 0 || ctx.span_id != 0)
      fz_fail("ENOCTX with ids");
    return 0;
  }
  if (rc != HOTSPAN_OK)
    fz_fail("unexpected status");
  fz_check_ctx(&ctx);
  fz_round_trip(&ctx, "datadog");
  fz_round_trip(&ctx, "tracecontext");
  fz_round_trip(&ctx, "b3multi");
  fz_round_trip(&ctx, "b3");
  return 0;
}

#endif
