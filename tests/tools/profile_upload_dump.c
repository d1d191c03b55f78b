/* Builds a real Datadog profile upload, for
 * tests/scripts/test_profile_upload.sh, which takes it apart with
 * independent parsers (Python's email package, protoc).
 *
 * Usage: profile_upload_dump <dir>
 * Writes <dir>/body.bin (the request body) and <dir>/content-type.txt (the
 * request's Content-Type value). The profiles are encoded by the profiler's
 * encoder from real stacks of this program (captured with backtrace()):
 *   CPU and wall: 30 samples in span 0x1234abcd5678ef01 (endpoint
 *   "GET /checkout"), 10 without a span.
 * They go through the profile exporter exactly as the engine hands them
 * over (CPU, then wall of the same period), and the exporter's sender is
 * replaced by a function that writes the request to files. Seven requests
 * to "GET /checkout" are counted first, for endpoint_counts. */
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "context/endpoints.h"
#include "exporter/profile_exporter.h"
#include "hotspan/error.h"
#include "profiler/profile.h"

#define SPAN_ID 0x1234abcd5678ef01ull
#define ROOT_ID 0x0fedcba987654321ull

static uintptr_t stack_pcs[64];
static int stack_depth;
static uintptr_t sample_mem[(sizeof(hs_sample) + 64 * sizeof(uintptr_t)) /
                                sizeof(uintptr_t) +
                            1];
static const char *out_dir;
static int written;

__attribute__((noinline)) static void upd_leaf(void) {
  void *frames[64];
  int n = backtrace(frames, 64);
  for (int i = 0; i < n; i++)
    stack_pcs[i] = (uintptr_t)frames[i];
  stack_depth = n;
  __asm__ volatile("" ::: "memory");
}

static int write_file(const char *name, const void *data, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", out_dir, name);
  FILE *f = fopen(path, "wb");
  if (f == NULL)
    return -1;
  int ok = fwrite(data, 1, len, f) == len;
  return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int to_files(void *arg, unsigned dest, char *body, size_t len,
                    const char *const *headers, const char *url,
                    uint32_t items) {
  (void)arg;
  (void)url;
  (void)items;
  int rc = HOTSPAN_EIO;
  for (const char *const *h = headers; h && *h; h++)
    if (dest == HS_PROFEXP_DATADOG && strncmp(*h, "Content-Type: ", 14) == 0 &&
        write_file("content-type.txt", *h + 14, strlen(*h + 14)) == 0 &&
        write_file("body.bin", body, len) == 0) {
      written++;
      rc = HOTSPAN_OK;
    }
  free(body);
  return rc;
}

static int encode(int type, uint64_t start, hs_symbolizer *sym, hs_buf *out) {
  hs_profile_config cfg = {type, 10000000, start};
  hs_profile *p = hs_profile_new(&cfg);
  if (p == NULL)
    return 1;
  uint32_t ep = hs_endpoint_intern("GET /checkout", 13);
  for (int i = 0; i < 40; i++) {
    hs_sample *s = (hs_sample *)(void *)sample_mem;
    memset(sample_mem, 0, sizeof sample_mem);
    memcpy(s->pcs, stack_pcs, (size_t)stack_depth * sizeof stack_pcs[0]);
    s->depth = (uint16_t)stack_depth;
    s->kind = type == HS_PROFILE_CPU ? HS_SAMPLE_CPU : HS_SAMPLE_WALL;
    s->tid = 4242;
    s->time_ns = start + (uint64_t)i * 10000000;
    if (type == HS_PROFILE_CPU)
      s->cpu_ns = 10000000;
    else
      s->wall_ns = 10000000;
    if (i < 30) {
      s->has_ctx = 1;
      s->ctx.span_id = SPAN_ID;
      s->ctx.local_root_span_id = ROOT_ID;
      s->ctx.trace_id_low = 0x8899aabbccddeeffull;
      s->ctx.endpoint_id = ep;
    }
    if (hs_profile_add(p, s, "worker-1") != HOTSPAN_OK)
      return 1;
  }
  int rc = hs_profile_encode(p, sym, start + 60000000000ull, out);
  hs_profile_free(p);
  return rc != HOTSPAN_OK;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: profile_upload_dump <dir>\n");
    return 2;
  }
  out_dir = argv[1];
  upd_leaf();
  hs_symbolizer *sym = hs_symbolizer_new();
  if (sym == NULL)
    return 1;
  uint64_t start = 1741944413ull * 1000000000ull; /* 2025-03-14T09:26:53Z */
  hs_buf cpu, wall;
  hs_buf_init(&cpu, 0);
  hs_buf_init(&wall, 0);
  if (encode(HS_PROFILE_CPU, start, sym, &cpu) ||
      encode(HS_PROFILE_WALL, start, sym, &wall)) {
    fprintf(stderr, "profile not encoded\n");
    return 1;
  }
  (void)hs_endpoint_counts_drain(NULL, NULL);
  uint32_t ep = hs_endpoint_intern("GET /checkout", 13);
  for (int i = 0; i < 7; i++)
    hs_endpoint_count_request(ep);

  hs_profexp_config c;
  memset(&c, 0, sizeof c);
  c.exporters = HS_PROFEXP_DATADOG;
  c.service = "upload-test";
  c.env = "ci";
  c.version = "1.0";
  snprintf(c.host, sizeof c.host, "test-host");
  snprintf(c.runtime_id, sizeof c.runtime_id,
           "0c0ffee0-0000-4000-8000-000000000001");
  c.cpu_hz = 100;
  c.wall_hz = 100;
  hs_profexp *x = hs_profexp_new(&c, to_files, NULL);
  if (x == NULL)
    return 1;
  uint64_t end = start + 60000000000ull;
  hs_profexp_on_profile(x, HS_PROFILE_CPU, (const uint8_t *)cpu.data, cpu.len,
                        start, end);
  hs_profexp_on_profile(x, HS_PROFILE_WALL, (const uint8_t *)wall.data,
                        wall.len, start, end);
  hs_profexp_flush(x);
  hs_profexp_free(x);
  hs_buf_free(&cpu);
  hs_buf_free(&wall);
  hs_symbolizer_free(sym);
  if (written != 1) {
    fprintf(stderr, "expected one upload, got %d\n", written);
    return 1;
  }
  return 0;
}
