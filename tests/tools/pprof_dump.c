/* Writes a CPU and a wall profile with known content into a directory, for
 * tests/scripts/test_pprof_decode.sh, which checks them with independent
 * decoders (protoc, go tool pprof).
 *
 * Usage: pprof_dump <dir>
 * Prints the two file paths, one per line.
 *
 * Usage: pprof_dump --symbolize <library> <debug dir>
 * Loads the test library (tests/tools/symtest_lib.c), symbolizes its static
 * function with <debug dir> as the separate debug file directory and
 * prints "<function> <file> <line>". The stacks are real: each is
 * captured with backtrace() inside the functions below, so the profile
 * holds genuine return addresses of this program.
 *
 * Content of the CPU profile:
 *   90 samples  main -> pd_outer -> pd_hot_leaf        span 0x1234abcd...
 *   10 samples  main -> pd_outer -> pd_cold_leaf       no span
 * so pd_hot_leaf is the top entry and a span filter keeps only it. */
#include <dlfcn.h>
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "context/endpoints.h"
#include "exporter/pprof_file.h"
#include "hotspan/error.h"
#include "profiler/profile.h"
#include "profiler/symbolize.h"

#define SPAN_ID 0x1234abcd5678ef01ull
#define ROOT_ID 0x0fedcba987654321ull
#define TRACE_HI 0x00000000669e1a2bull
#define TRACE_LO 0x8899aabbccddeeffull

/* Captured stacks: leaf first, as the engine delivers them. */
typedef struct {
  uintptr_t pcs[64];
  uint16_t depth;
} stack;

static stack captured[2];
/* Room for a sample and its pcs (hs_sample ends in a flexible array). */
static uintptr_t sample_mem[(sizeof(hs_sample) + 64 * sizeof(uintptr_t)) /
                                sizeof(uintptr_t) +
                            1];

__attribute__((noinline)) static void capture(int which) {
  void *frames[64];
  int n = backtrace(frames, 64);
  /* Start at the caller: the entry equal to our own return address
   * (frames before it are in capture, or in a sanitizer's interceptor). */
  void *ret = __builtin_return_address(0);
  int first = 0;
  while (first < n && frames[first] != ret)
    first++;
  if (first == n)
    first = 1;
  stack *st = &captured[which];
  memset(st, 0, sizeof *st);
  for (int i = first; i < n; i++)
    st->pcs[st->depth++] = (uintptr_t)frames[i];
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void pd_hot_leaf(void) {
  capture(0);
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void pd_cold_leaf(void) {
  capture(1);
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void pd_outer(void) {
  pd_hot_leaf();
  pd_cold_leaf();
  __asm__ volatile("" ::: "memory");
}

static int write_profile(const char *dir, int type, uint64_t start,
                         hs_symbolizer *sym) {
  hs_profile_config cfg = {type, 10000000, start};
  hs_profile *p = hs_profile_new(&cfg);
  if (p == NULL)
    return 1;
  uint32_t ep = hs_endpoint_intern("GET /checkout", 13);
  for (int i = 0; i < 100; i++) {
    const stack *st = &captured[i < 90 ? 0 : 1];
    hs_sample *s = (hs_sample *)(void *)sample_mem;
    memset(sample_mem, 0, sizeof sample_mem);
    memcpy(s->pcs, st->pcs, st->depth * sizeof st->pcs[0]);
    s->depth = st->depth;
    /* The contract's pcs[0] is an exact instruction pointer; step the
     * captured return address back into the call as the engine's leaf
     * would be. */
    s->pcs[0] -= 1;
    s->kind = type == HS_PROFILE_CPU ? HS_SAMPLE_CPU : HS_SAMPLE_WALL;
    s->tid = 4242;
    s->time_ns = start + (uint64_t)i * 10000000;
    if (type == HS_PROFILE_CPU)
      s->cpu_ns = 10000000;
    else
      s->wall_ns = 10000000;
    if (i < 90) {
      s->has_ctx = 1;
      s->ctx.span_id = SPAN_ID;
      s->ctx.local_root_span_id = ROOT_ID;
      s->ctx.trace_id_high = TRACE_HI;
      s->ctx.trace_id_low = TRACE_LO;
      s->ctx.endpoint_id = ep;
    }
    int rc = hs_profile_add(p, s, "worker-1");
    if (rc != HOTSPAN_OK) {
      fprintf(stderr, "add: %s\n", hotspan_strerror(rc));
      return 1;
    }
  }
  hs_buf out;
  hs_buf_init(&out, 0);
  int rc = hs_profile_encode(p, sym, start + 1000000000ull, &out);
  char *path = NULL;
  if (rc == HOTSPAN_OK)
    rc = hs_pprof_write_file(dir, "pprof_dump", type, start,
                             start + 1000000000ull, &out, &path);
  if (rc != HOTSPAN_OK) {
    fprintf(stderr, "encode/write: %s\n", hotspan_strerror(rc));
    return 1;
  }
  printf("%s\n", path);
  free(path);
  hs_buf_free(&out);
  hs_profile_free(p);
  return 0;
}

static int symbolize_lib(const char *lib, const char *debug_dir) {
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  uintptr_t (*entry)(int) = (uintptr_t(*)(int))dlsym(h, "symtest_entry");
  if (entry == NULL)
    return 1;
  uintptr_t fn = entry(3);
  hs_symbolizer *sym = hs_symbolizer_new();
  if (sym == NULL || hs_symbolizer_set_debug_dir(sym, debug_dir) != 0)
    return 1;
  hs_symbol sy;
  int rc = hs_symbolize(sym, fn + 2, &sy);
  printf("%s %s %d\n", sy.function, sy.file ? sy.file : "-", sy.line);
  hs_symbolizer_free(sym);
  dlclose(h);
  return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--symbolize") == 0)
    return symbolize_lib(argv[2], argv[3]);
  if (argc != 2) {
    fprintf(stderr, "usage: pprof_dump <dir>\n");
    return 2;
  }
  pd_outer();
  hs_symbolizer *sym = hs_symbolizer_new();
  if (sym == NULL)
    return 1;
  /* 2025-03-14T09:26:53Z */
  uint64_t start = 1741944413ull * 1000000000ull;
  int rc = write_profile(argv[1], HS_PROFILE_CPU, start, sym) ||
           write_profile(argv[1], HS_PROFILE_WALL, start, sym);
  hs_symbolizer_free(sym);
  return rc;
}
