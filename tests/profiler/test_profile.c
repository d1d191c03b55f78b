/* Profile builder: merging, labels, symbolization and the pprof encoding,
 * checked by decoding the gzip'ed output with protobuf-c's generated
 * unpacker. Sample stacks use addresses of real functions in this test
 * program, so symbolization is checked against known names, this file's
 * name and line ranges, and the program's build id read from memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "common/buf.h"
#include "context/endpoints.h"
#include "hotspan/error.h"
#include "profile.pb-c.h"
#include "profiler/profile.h"
#include "profiler/symbolize.h"
#include "support/gzip.h"
#include "support/skip.h"

typedef Perftools__Profiles__Profile Profile;

/* ------------------------------------------------------------ targets */

/* Functions whose addresses serve as sampled pcs. The line numbers before
 * each bound where their code can be. */
static const int leaf_line = __LINE__;
__attribute__((noinline)) int prof_target_leaf(int x) {
  int acc = 0;
  for (int i = 0; i < x; i++)
    acc += i * x;
  __asm__ volatile("" ::: "memory");
  return acc;
}

static const int mid_line = __LINE__;
__attribute__((noinline)) int prof_target_mid(int x) {
  int r = prof_target_leaf(x) + 1;
  __asm__ volatile("" ::: "memory");
  return r;
}

static const int root_line = __LINE__;
__attribute__((noinline)) int prof_target_root(int x) {
  int r = prof_target_mid(x) * 2;
  __asm__ volatile("" ::: "memory");
  return r;
}

static volatile int inl_sink;

static inline __attribute__((always_inline)) int prof_inl_helper(int x) {
  int acc = 0;
  for (int i = 0; i < x; i++)
    acc += (i * x) ^ inl_sink;
  return acc;
}

static const int inl_call_line = __LINE__ + 2;
__attribute__((noinline)) int prof_inl_caller(int x) {
  int r = prof_inl_helper(x) + 1;
  inl_sink = r;
  return r;
}

#define LEAF ((uintptr_t)&prof_target_leaf)
#define MID ((uintptr_t)&prof_target_mid)
#define ROOT ((uintptr_t)&prof_target_root)

/* ------------------------------------------------------------ helpers */

/* A sample with room for its pcs (hs_sample ends in a flexible array). */
typedef struct {
  hs_sample *s;
  uintptr_t *pcs;
  uintptr_t mem[(sizeof(hs_sample) +
                 (HS_PROF_MAX_DEPTH_LIMIT + 100) * sizeof(uintptr_t)) /
                    sizeof(uintptr_t) +
                1];
} sbuf;

static void mk(sbuf *b, int kind, uint32_t tid, int depth, ...) {
  memset(b, 0, sizeof *b);
  b->s = (hs_sample *)(void *)b->mem;
  b->pcs = b->s->pcs;
  b->s->kind = (uint8_t)kind;
  b->s->tid = tid;
  b->s->depth = (uint16_t)depth;
  b->s->time_ns = 1;
  if (kind == HS_SAMPLE_CPU)
    b->s->cpu_ns = 10000000;
  else
    b->s->wall_ns = 10000000;
  va_list ap;
  va_start(ap, depth);
  for (int i = 0; i < depth; i++)
    b->pcs[i] = va_arg(ap, uintptr_t);
  va_end(ap);
}

static void set_span(sbuf *b, uint64_t span, uint64_t root, uint64_t thi,
                     uint64_t tlo, uint32_t endpoint) {
  b->s->has_ctx = 1;
  b->s->ctx.span_id = span;
  b->s->ctx.local_root_span_id = root;
  b->s->ctx.trace_id_high = thi;
  b->s->ctx.trace_id_low = tlo;
  b->s->ctx.endpoint_id = endpoint;
}

static Profile *decode(const hs_buf *b) {
  size_t len;
  uint8_t *raw = ts_gunzip(b->data, b->len, &len);
  Profile *p = perftools__profiles__profile__unpack(NULL, len, raw);
  free(raw);
  assert_non_null(p);
  return p;
}

static Profile *encode(hs_profile *p, hs_symbolizer *sym, uint64_t end) {
  hs_buf out;
  hs_buf_init(&out, 0);
  assert_int_equal(hs_profile_encode(p, sym, end, &out), HOTSPAN_OK);
  Profile *pr = decode(&out);
  hs_buf_free(&out);
  return pr;
}

static const char *str(const Profile *p, int64_t i) {
  assert_true(i >= 0 && (size_t)i < p->n_string_table);
  return p->string_table[i];
}

static const Perftools__Profiles__Location *loc(const Profile *p, uint64_t id) {
  assert_true(id != 0);
  for (size_t i = 0; i < p->n_location; i++)
    if (p->location[i]->id == id)
      return p->location[i];
  fail_msg("no location %llu", (unsigned long long)id);
  return NULL;
}

static const Perftools__Profiles__Function *func(const Profile *p,
                                                 uint64_t id) {
  assert_true(id != 0);
  for (size_t i = 0; i < p->n_function; i++)
    if (p->function[i]->id == id)
      return p->function[i];
  fail_msg("no function %llu", (unsigned long long)id);
  return NULL;
}

static const Perftools__Profiles__Mapping *mapping(const Profile *p,
                                                   uint64_t id) {
  assert_true(id != 0);
  for (size_t i = 0; i < p->n_mapping; i++)
    if (p->mapping[i]->id == id)
      return p->mapping[i];
  fail_msg("no mapping %llu", (unsigned long long)id);
  return NULL;
}

/* Outermost (physical) function name of a location. */
static const char *loc_func(const Profile *p, uint64_t loc_id) {
  const Perftools__Profiles__Location *l = loc(p, loc_id);
  assert_true(l->n_line >= 1);
  return str(p, func(p, l->line[l->n_line - 1]->function_id)->name);
}

/* Checks the invariants every pprof file must satisfy. */
static void check_wellformed(const Profile *p) {
  assert_true(p->n_string_table >= 1);
  assert_string_equal(p->string_table[0], "");
  assert_int_equal(p->n_sample_type, 2);
  for (size_t i = 0; i < p->n_sample; i++) {
    const Perftools__Profiles__Sample *s = p->sample[i];
    assert_int_equal(s->n_value, 2);
    assert_true(s->value[0] > 0);
    assert_true(s->n_location_id > 0);
    for (size_t k = 0; k < s->n_location_id; k++)
      (void)loc(p, s->location_id[k]);
    for (size_t k = 0; k < s->n_label; k++) {
      const Perftools__Profiles__Label *l = s->label[k];
      assert_true(l->key > 0);
      (void)str(p, l->key);
      (void)str(p, l->str);
    }
  }
  for (size_t i = 0; i < p->n_location; i++) {
    const Perftools__Profiles__Location *l = p->location[i];
    assert_int_equal(l->id, i + 1);
    if (l->mapping_id != 0) {
      const Perftools__Profiles__Mapping *m = mapping(p, l->mapping_id);
      assert_true(l->address >= m->memory_start &&
                  l->address < m->memory_limit);
    }
    for (size_t k = 0; k < l->n_line; k++)
      (void)func(p, l->line[k]->function_id);
  }
  for (size_t i = 0; i < p->n_function; i++) {
    assert_int_equal(p->function[i]->id, i + 1);
    (void)str(p, p->function[i]->name);
    (void)str(p, p->function[i]->filename);
  }
  for (size_t i = 0; i < p->n_mapping; i++) {
    assert_int_equal(p->mapping[i]->id, i + 1);
    (void)str(p, p->mapping[i]->filename);
    (void)str(p, p->mapping[i]->build_id);
  }
}

/* Label lookup: returns 1 and the label if present exactly once. */
static const Perftools__Profiles__Label *
label(const Profile *p, const Perftools__Profiles__Sample *s, const char *key) {
  const Perftools__Profiles__Label *found = NULL;
  for (size_t i = 0; i < s->n_label; i++) {
    if (strcmp(str(p, s->label[i]->key), key) == 0) {
      assert_null(found); /* never twice */
      found = s->label[i];
    }
  }
  return found;
}

/* The main program's GNU build id, read from its PT_NOTE in memory (the
 * symbolizer reads it from the file through libdw). */
static int note_cb(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  if (info->dlpi_name != NULL && info->dlpi_name[0] != '\0')
    return 0; /* the main program comes first, with an empty name */
  char *hex = data;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE)
      continue;
    const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
    const char *end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
      const char *name = p + sizeof *nh;
      const unsigned char *desc =
          (const unsigned char *)name + ((nh->n_namesz + 3) & ~3u);
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
          memcmp(name, "GNU", 4) == 0) {
        for (unsigned k = 0; k < nh->n_descsz && k < 64; k++)
          sprintf(hex + 2 * k, "%02x", desc[k]);
        return 1;
      }
      p = (const char *)desc + ((nh->n_descsz + 3) & ~3u);
    }
  }
  return 1;
}

static void own_build_id(char hex[129]) {
  hex[0] = '\0';
  dl_iterate_phdr(note_cb, hex);
}

static hs_symbolizer *g_sym;

static int setup(void **state) {
  (void)state;
  g_sym = hs_symbolizer_new();
  return g_sym ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  hs_symbolizer_free(g_sym);
  g_sym = NULL;
  return 0;
}

static hs_profile *new_profile(int type) {
  hs_profile_config cfg = {type, 10000000, 1700000000000000000ull};
  hs_profile *p = hs_profile_new(&cfg);
  assert_non_null(p);
  return p;
}

/* ------------------------------------------------------------ tests */

static void test_header_fields_cpu(void **state) {
  (void)state;
  hs_profile *p = new_profile(HS_PROFILE_CPU);
  sbuf b;
  mk(&b, HS_SAMPLE_CPU, 7, 1, LEAF + 4);
  assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_OK);
  Profile *pr = encode(p, g_sym, 1700000000000000000ull + 60000000000ull);
  check_wellformed(pr);
  assert_string_equal(str(pr, pr->sample_type[0]->type), "samples");
  assert_string_equal(str(pr, pr->sample_type[0]->unit), "count");
  assert_string_equal(str(pr, pr->sample_type[1]->type), "cpu");
  assert_string_equal(str(pr, pr->sample_type[1]->unit), "nanoseconds");
  assert_non_null(pr->period_type);
  assert_string_equal(str(pr, pr->period_type->type), "cpu");
  assert_string_equal(str(pr, pr->period_type->unit), "nanoseconds");
  assert_int_equal(pr->period, 10000000);
  assert_int_equal(pr->time_nanos, 1700000000000000000ll);
  assert_int_equal(pr->duration_nanos, 60000000000ll);
  assert_string_equal(str(pr, pr->default_sample_type), "cpu");
  assert_int_equal(pr->n_comment, 0);
  perftools__profiles__profile__free_unpacked(pr, NULL);
  hs_profile_free(p);
}

static void test_header_fields_wall(void **state) {
  (void)state;
  hs_profile *p = new_profile(HS_PROFILE_WALL);
  sbuf b;
  mk(&b, HS_SAMPLE_WALL, 7, 1, LEAF + 4);
  b.s->wall_ns = 12345;
  assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_OK);
  /* An end before the start gives duration 0, not a huge number. */
  Profile *pr = encode(p, g_sym, 5);
  check_wellformed(pr);
  assert_string_equal(str(pr, pr->sample_type[1]->type), "wall");
  assert_string_equal(str(pr, pr->period_type->type), "wall");
  assert_string_equal(str(pr, pr->default_sample_type), "wall");
  assert_int_equal(pr->duration_nanos, 0);
  assert_int_equal(pr->n_sample, 1);
  assert_int_equal(pr->sample[0]->value[0], 1);
  assert_int_equal(pr->sample[0]->value[1], 12345);
  perftools__profiles__profile__free_unpacked(pr, NULL);
  hs_profile_free(p);
}

static void test_merge_identical_stacks(void **state) {
  (void)state;
  hs_profile *p = new_profile(HS_PROFILE_CPU);
  sbuf b;
  uint64_t ns[3] = {10000000, 20000000, 5000000};
  for (int i = 0; i < 3; i++) {
    mk(&b, HS_SAMPLE_CPU, 11, 3, LEAF + 8, MID + 12, ROOT + 12);
    b.s->cpu_ns = ns[i];
    assert_int_equal(hs_profile_add(p, b.s, "worker"), HOTSPAN_OK);
  }
  /* Same stack, other thread: a sample of its own. */
  mk(&b, HS_SAMPLE_CPU, 12, 3, LEAF + 8, MID + 12, ROOT + 12);
  assert_int_equal(hs_profile_add(p, b.s, "worker"), HOTSPAN_OK);
  /* Same thread, other leaf address. */
  mk(&b, HS_SAMPLE_CPU, 11, 3, LEAF + 9, MID + 12, ROOT + 12);
  assert_int_equal(hs_profile_add(p, b.s, "worker"), HOTSPAN_OK);
  /* Same thread id, other name (the thread renamed itself). */
  mk(&b, HS_SAMPLE_CPU, 11, 3, LEAF + 8, MID + 12, ROOT + 12);
  assert_int_equal(hs_profile_add(p, b.s, "renamed"), HOTSPAN_OK);
  assert_int_equal(hs_profile_sample_count(p), 6);

  Profile *pr = encode(p, g_sym, 0);
  check_wellformed(pr);
  assert_int_equal(pr->n_sample, 4);
  int64_t total = 0, merged = 0;
  for (size_t i = 0; i < pr->n_sample; i++) {
    const Perftools__Profiles__Sample *s = pr->sample[i];
    total += s->value[0];
    const Perftools__Profiles__Label *tid = label(pr, s, "thread id");
    const Perftools__Profiles__Label *tn = label(pr, s, "thread name");
    assert_non_null(tid);
    assert_non_null(tn);
    if (tid->num == 11 && strcmp(str(pr, tn->str), "worker") == 0 &&
        loc(pr, s->location_id[0])->address == LEAF + 8) {
      assert_int_equal(s->value[0], 3);
      assert_int_equal(s->value[1], 35000000);
      merged++;
    }
  }
  assert_int_equal(merged, 1);
  assert_int_equal(total, 6);
  /* Locations are shared: LEAF+8, LEAF+9, MID, ROOT. */
  assert_int_equal(pr->n_location, 4);
  perftools__profiles__profile__free_unpacked(pr, NULL);
  hs_profile_free(p);
}

static void test_symbolized_stack(void **state) {
  (void)state;
  hs_profile *p = new_profile(HS_PROFILE_CPU);
  sbuf b;
  /* pcs[0] is exact, the others are return addresses (one past). */
  mk(&b, HS_SAMPLE_CPU, 1, 3, LEAF + 4, MID + 9, ROOT + 9);
  assert_int_equal(hs_profile_add(p, b.s, "main"), HOTSPAN_OK);
  Profile *pr = encode(p, g_sym, 0);
  check_wellformed(pr);
  assert_int_equal(pr->n_sample, 1);
  const Perftools__Profiles__Sample *s = pr->sample[0];
  assert_int_equal(s->n_location_id, 3);
  const char *names[3] = {"prof_target_leaf", "prof_target_mid",
                          "prof_target_root"};
  const int lines[3] = {leaf_line, mid_line, root_line};
  const uintptr_t addrs[3] = {LEAF + 4, MID + 8, ROOT + 8};

  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  assert_true(n > 0);
  exe[n] = '\0';
  char build_id[129];
  own_build_id(build_id);
  assert_true(strlen(build_id) >= 16);

  for (int i = 0; i < 3; i++) {
    const Perftools__Profiles__Location *l = loc(pr, s->location_id[i]);
    /* Return addresses are stepped back into the call instruction. */
    assert_int_equal(l->address, addrs[i]);
    assert_true(l->n_line >= 1);
    const Perftools__Profiles__Line *ln = l->line[l->n_line - 1];
    const Perftools__Profiles__Function *f = func(pr, ln->function_id);
    assert_string_equal(str(pr, f->name), names[i]);
    assert_string_equal(str(pr, f->system_name), names[i]);
    const char *file = str(pr, f->filename);
    size_t fl = strlen(file);
    assert_true(fl >= 14);
    assert_string_equal(file + fl - 14, "test_profile.c");
    assert_true(ln->line > lines[i] && ln->line < lines[i] + 8);
    assert_true(f->start_line > lines[i] && f->start_line <= lines[i] + 2);

    const Perftools__Profiles__Mapping *m = mapping(pr, l->mapping_id);
    assert_string_equal(str(pr, m->filename), exe);
    assert_string_equal(str(pr, m->build_id), build_id);
    assert_true(m->has_functions);
    assert_true(m->has_filenames);
    assert_true(m->has_line_numbers);
  }
  /* The main executable is mapping 1. */
  assert_string_equal(str(pr, mapping(pr, 1)->filename), exe);
  perftools__profiles__profile__free_unpacked(pr, NULL);
  hs_profile_free(p);
}

static void test_span_labels(void **state) {
  (void)state;
  uint32_t ep = hs_endpoint_intern("POST /checkout", 14);
  assert_true(ep != 0);
  hs_profile *p = new_profile(HS_PROFILE_CPU);
  sbuf b;
  mk(&b, HS_SAMPLE_CPU, 21, 2, LEAF + 4, MID + 9);
  set_span(&b, 0x00000000000000abull, 0x1234567890abcdefull,
           0x0000000065a1b2c3ull, 0x0102030405060708ull, ep);
  assert_int_equal(hs_profile_add(p, b.s, "http-1"), HOTSPAN_OK);
  /* Overflowed endpoint registry: the endpoint is "other". */
  mk(&b, HS_SAMPLE_CPU, 22, 2, LEAF + 4, MID + 9);
  set_span(&b, 0x7fffffffffffffffull, 0, 0, 1, HS_ENDPOINT_OVERFLOW);
  assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_OK);
  /* An endpoint id nobody interned: no endpoint label. */
  mk(&b, HS_SAMPLE_CPU, 23, 2, LEAF + 4, MID + 9);
  set_span(&b, 5, 5, 0, 9, 4000);
  assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_OK);
  /* No span: thread labels only. has_ctx with span id 0 is no span. */
  mk(&b, HS_SAMPLE_CPU, 24, 2, LEAF + 4, MID + 9);
  assert_int_equal(hs_profile_add(p, b.s, "idle"), HOTSPAN_OK);
  mk(&b, HS_SAMPLE_CPU, 25, 2, LEAF + 4, MID + 9);
  set_span(&b, 0, 7, 1, 1, ep);
  assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_OK);

  Profile *pr = encode(p, g_sym, 0);
  check_wellformed(pr);
  assert_int_equal(pr->n_sample, 5);
  int seen = 0;
  for (size_t i = 0; i < pr->n_sample; i++) {
    const Perftools__Profiles__Sample *s = pr->sample[i];
    const Perftools__Profiles__Label *tid = label(pr, s, "thread id");
    assert_non_null(tid);
    assert_int_equal(tid->str, 0);
    const Perftools__Profiles__Label *span = label(pr, s, "span id");
    const Perftools__Profiles__Label *root = label(pr, s, "local root span id");
    const Perftools__Profiles__Label *epl = label(pr, s, "trace endpoint");
    const Perftools__Profiles__Label *shex = label(pr, s, "span_id");
    const Perftools__Profiles__Label *thex = label(pr, s, "trace_id");
    const Perftools__Profiles__Label *tn = label(pr, s, "thread name");
    switch (tid->num) {
    case 21:
      assert_int_equal(s->n_label, 7);
      assert_int_equal(span->num, 0xab);
      assert_int_equal(span->str, 0);
      assert_int_equal(root->num, 0x1234567890abcdefll);
      assert_string_equal(str(pr, epl->str), "POST /checkout");
      assert_string_equal(str(pr, shex->str), "00000000000000ab");
      assert_string_equal(str(pr, thex->str),
                          "0000000065a1b2c30102030405060708");
      assert_int_equal(shex->num, 0);
      assert_string_equal(str(pr, tn->str), "http-1");
      seen |= 1;
      break;
    case 22:
      assert_int_equal(span->num, 0x7fffffffffffffffll);
      assert_null(root); /* 0: not a span id */
      assert_string_equal(str(pr, epl->str), "other");
      assert_string_equal(str(pr, shex->str), "7fffffffffffffff");
      assert_string_equal(str(pr, thex->str),
                          "00000000000000000000000000000001");
      assert_null(tn);
      seen |= 2;
      break;
    case 23:
      assert_int_equal(span->num, 5);
      assert_null(epl);
      seen |= 4;
      break;
    case 24:
    case 25:
      assert_null(span);
      assert_null(root);
      assert_null(epl);
      assert_null(shex);
      assert_null(thex);
      assert_int_equal(s->n_label, tid->num == 24 ? 2 : 1);
      seen |= tid->num == 24 ? 8 : 16;
      break;
    default:
      fail_msg("unexpected thread id %lld", (long long)tid->num);
    }
  }
  assert_int_equal(seen, 31);
  perftools__profiles__profile__free_unpacked(pr, NULL);
  hs_profile_free(p);
}

static void test_samples_with_other_spans_not_merged(void **state) {
  (void)state;
  hs_profile *p = new_profile(HS_PROFILE_WALL);
  sbuf b;
  for (int i = 0; i < 4; i++) {
    mk(&b, HS_SAMPLE_WALL, 3, 1, LEAF + 4);
    set_span(&b, (uint64_t)(i % 2) + 1, 1, 0, 1, 0);
    assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_OK);
  }
  Profile *pr = encode(p, g_sym, 0);
  check_wellformed(pr);
  assert_int_equal(pr->n_sample, 2);
  assert_int_equal(pr->sample[0]->value[0], 2);
  assert_int_equal(pr->sample[1]->value[0], 2);
  perftools__profiles__profile__free_unpacked(pr, NULL);
  hs_profile_free(p);
}

static void test_bad_arguments(void **state) {
  (void)state;
  hs_profile_config bad = {3, 1, 1};
  assert_null(hs_profile_new(&bad));
  assert_null(hs_profile_new(NULL));
  hs_profile_free(NULL);
  hs_symbolizer_free(NULL);

  hs_profile *p = new_profile(HS_PROFILE_CPU);
  sbuf b;
  mk(&b, HS_SAMPLE_WALL, 1, 1, LEAF);
  assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_EINVAL);
  mk(&b, 0, 1, 1, LEAF);
  assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_EINVAL);
  mk(&b, 77, 1, 1, LEAF);
  assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_EINVAL);
  assert_int_equal(hs_profile_add(p, NULL, NULL), HOTSPAN_EINVAL);
  mk(&b, HS_SAMPLE_CPU, 1, 1, LEAF);
  assert_int_equal(hs_profile_add(NULL, b.s, NULL), HOTSPAN_EINVAL);
  assert_int_equal(hs_profile_sample_count(p), 0);

  hs_buf out;
  hs_buf_init(&out, 0);
  assert_int_equal(hs_profile_encode(NULL, g_sym, 0, &out), HOTSPAN_EINVAL);
  assert_int_equal(hs_profile_encode(p, NULL, 0, &out), HOTSPAN_EINVAL);
  assert_int_equal(hs_profile_encode(p, g_sym, 0, NULL), HOTSPAN_EINVAL);
  assert_int_equal(out.len, 0);

  /* A profile with no samples still encodes (an idle period). */
  assert_int_equal(hs_profile_encode(p, g_sym, 0, &out), HOTSPAN_OK);
  Profile *pr = decode(&out);
  check_wellformed(pr);
  assert_int_equal(pr->n_sample, 0);
  perftools__profiles__profile__free_unpacked(pr, NULL);

  /* Over the output cap: ETOOBIG, and out keeps what it had. */
  hs_buf small;
  hs_buf_init(&small, 16);
  hs_buf_append(&small, "abc", 3);
  assert_int_equal(hs_profile_encode(p, g_sym, 0, &small), HOTSPAN_ETOOBIG);
  assert_int_equal(small.len, 3);
  hs_buf_free(&small);
  hs_buf_free(&out);
  hs_profile_free(p);
}

static void test_depth_zero_and_truncated(void **state) {
  (void)state;
  hs_profile *p = new_profile(HS_PROFILE_CPU);
  sbuf b;
  mk(&b, HS_SAMPLE_CPU, 1, 0);
  assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_OK);
  mk(&b, HS_SAMPLE_CPU, 2, 2, LEAF + 4, MID + 9);
  b.s->truncated = 1;
  assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_OK);
  Profile *pr = encode(p, g_sym, 0);
  check_wellformed(pr);
  assert_int_equal(pr->n_sample, 2);
  for (size_t i = 0; i < pr->n_sample; i++) {
    const Perftools__Profiles__Sample *s = pr->sample[i];
    int64_t tid = label(pr, s, "thread id")->num;
    if (tid == 1) {
      /* The time is kept, under a frame that says what happened. */
      assert_int_equal(s->n_location_id, 1);
      assert_string_equal(loc_func(pr, s->location_id[0]), "[no stack]");
      assert_int_equal(loc(pr, s->location_id[0])->mapping_id, 0);
    } else {
      assert_int_equal(s->n_location_id, 3);
      assert_string_equal(loc_func(pr, s->location_id[0]), "prof_target_leaf");
      assert_string_equal(loc_func(pr, s->location_id[2]), "[truncated]");
    }
  }
  perftools__profiles__profile__free_unpacked(pr, NULL);
  hs_profile_free(p);
}

static void test_huge_depth(void **state) {
  (void)state;
  hs_profile *p = new_profile(HS_PROFILE_CPU);
  sbuf b;
  /* Deep recursion: the limit itself is kept whole. */
  mk(&b, HS_SAMPLE_CPU, 1, 0);
  b.pcs[0] = LEAF + 4;
  for (int i = 1; i < HS_PROF_MAX_DEPTH_LIMIT; i++)
    b.pcs[i] = (i % 2 ? MID : ROOT) + 9;
  b.s->depth = HS_PROF_MAX_DEPTH_LIMIT;
  assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_OK);
  /* Past the limit (a bad depth from the engine): the leaf-most frames are
   * kept and the stack is marked truncated. */
  for (int i = HS_PROF_MAX_DEPTH_LIMIT; i < HS_PROF_MAX_DEPTH_LIMIT + 100; i++)
    b.pcs[i] = ROOT + 9;
  b.s->depth = HS_PROF_MAX_DEPTH_LIMIT + 100;
  b.s->tid = 2;
  assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_OK);
  Profile *pr = encode(p, g_sym, 0);
  check_wellformed(pr);
  assert_int_equal(pr->n_sample, 2);
  assert_int_equal(pr->n_location, 4); /* leaf, mid, root, [truncated] */
  for (size_t i = 0; i < pr->n_sample; i++) {
    const Perftools__Profiles__Sample *s = pr->sample[i];
    if (label(pr, s, "thread id")->num == 1) {
      assert_int_equal(s->n_location_id, HS_PROF_MAX_DEPTH_LIMIT);
      assert_string_equal(
          loc_func(pr, s->location_id[HS_PROF_MAX_DEPTH_LIMIT - 1]),
          "prof_target_mid");
    } else {
      assert_int_equal(s->n_location_id, HS_PROF_MAX_DEPTH_LIMIT + 1);
      assert_string_equal(loc_func(pr, s->location_id[HS_PROF_MAX_DEPTH_LIMIT]),
                          "[truncated]");
    }
  }
  perftools__profiles__profile__free_unpacked(pr, NULL);
  hs_profile_free(p);
}

static void test_unknown_addresses(void **state) {
  (void)state;
  hs_profile *p = new_profile(HS_PROFILE_CPU);
  sbuf b;
  /* Address 0, a low page never mapped, and a kernel address. */
  mk(&b, HS_SAMPLE_CPU, 1, 4, (uintptr_t)0x10, (uintptr_t)0,
     (uintptr_t)0xffff888000000123ull, MID + 9);
  assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_OK);
  Profile *pr = encode(p, g_sym, 0);
  check_wellformed(pr);
  assert_int_equal(pr->n_sample, 1);
  const Perftools__Profiles__Sample *s = pr->sample[0];
  assert_int_equal(s->n_location_id, 4);
  const Perftools__Profiles__Location *l0 = loc(pr, s->location_id[0]);
  assert_int_equal(l0->address, 0x10);
  assert_int_equal(l0->mapping_id, 0);
  assert_string_equal(loc_func(pr, s->location_id[0]), "??");
  /* A zero return address stays 0 rather than wrapping around. */
  assert_int_equal(loc(pr, s->location_id[1])->address, 0);
  assert_string_equal(loc_func(pr, s->location_id[1]), "??");
  assert_string_equal(loc_func(pr, s->location_id[3]), "prof_target_mid");
  perftools__profiles__profile__free_unpacked(pr, NULL);
  hs_profile_free(p);
}

static void test_many_distinct_samples(void **state) {
  (void)state;
  enum { N = 100000 };
  hs_profile *p = new_profile(HS_PROFILE_CPU);
  sbuf b;
  for (int i = 0; i < N; i++) {
    mk(&b, HS_SAMPLE_CPU, (uint32_t)(i % 97), 3, LEAF + (uintptr_t)(i % 16),
       MID + 9, ROOT + 9);
    set_span(&b, (uint64_t)i + 1, 1, 0, 1, 0);
    assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_OK);
  }
  assert_int_equal(hs_profile_sample_count(p), N);
  uint64_t before = hs_symbolizer_misses(g_sym);
  Profile *pr = encode(p, g_sym, 0);
  check_wellformed(pr);
  assert_int_equal(pr->n_sample, N);
  int64_t total = 0;
  for (size_t i = 0; i < pr->n_sample; i++)
    total += pr->sample[i]->value[0];
  assert_int_equal(total, N);
  assert_int_equal(pr->n_location, 18);
  /* Each distinct address was resolved at most once... */
  assert_true(hs_symbolizer_misses(g_sym) - before <= 18);
  perftools__profiles__profile__free_unpacked(pr, NULL);
  /* ...and a second profile of the same addresses resolves none again. */
  before = hs_symbolizer_misses(g_sym);
  pr = encode(p, g_sym, 0);
  assert_int_equal(hs_symbolizer_misses(g_sym), before);
  perftools__profiles__profile__free_unpacked(pr, NULL);
  hs_profile_free(p);
}

/* ------------------------------------------------------------ symbolizer */

static void test_symbolize_api(void **state) {
  (void)state;
  hs_symbol sy;
  assert_int_equal(hs_symbolize(g_sym, MID + 4, &sy), 0);
  assert_string_equal(sy.function, "prof_target_mid");
  assert_non_null(sy.file);
  assert_true(sy.line > mid_line && sy.line < mid_line + 8);
  assert_non_null(sy.mapping);
  assert_true(sy.map_start <= MID + 4 && MID + 4 < sy.map_limit);
  char build_id[129];
  own_build_id(build_id);
  assert_non_null(sy.build_id);
  assert_string_equal(sy.build_id, build_id);

  assert_int_equal(hs_symbolize(g_sym, 0x10, &sy), -1);
  assert_string_equal(sy.function, "??");
  assert_null(sy.mapping);

  /* A shared library: libc's getpid, with its load bias applied. */
  assert_int_equal(hs_symbolize(g_sym, (uintptr_t)&getpid, &sy), 0);
  assert_non_null(strstr(sy.function, "getpid"));
  assert_non_null(strstr(sy.mapping, "libc"));
}

/* Code inlined into a function yields two frames: the inlined function at
 * its own line, then its caller at the call site. */
static void test_symbolize_inlined(void **state) {
  (void)state;
  const uintptr_t caller = (uintptr_t)&prof_inl_caller;
  int found = 0;
  for (uintptr_t off = 0; off < 4096 && !found; off++) {
    const hs_sym_loc *l = hs_symbolize_loc(g_sym, caller + off);
    assert_non_null(l);
    assert_true(l->nframes >= 1);
    if (strcmp(l->frames[l->nframes - 1].function, "prof_inl_caller") != 0)
      break; /* past the end of the caller */
    if (l->nframes < 2 || strcmp(l->frames[0].function, "prof_inl_helper") != 0)
      continue;
    assert_int_equal(l->nframes, 2);
    assert_non_null(strstr(l->frames[0].file, "test_profile.c"));
    assert_non_null(strstr(l->frames[1].file, "test_profile.c"));
    assert_true(l->frames[0].line > 0);
    assert_int_equal(l->frames[1].line, inl_call_line);
    assert_non_null(l->map);
    assert_true(l->map->has_inline_frames);
    found = 1;
  }
  assert_true(found);
}

static void test_symbolize_vdso(void **state) {
  (void)state;
  void *h = dlopen("linux-vdso.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (h == NULL)
    TS_SKIP("no vDSO on this kernel and architecture");
  void *fn = dlsym(h, "__vdso_clock_gettime");
  if (fn == NULL)
    fn = dlsym(h, "__kernel_clock_gettime");
  assert_non_null(fn);
  hs_symbol sy;
  assert_int_equal(hs_symbolize(g_sym, (uintptr_t)fn + 1, &sy), 0);
  assert_string_equal(sy.mapping, "[vdso]");
  assert_non_null(strstr(sy.function, "clock_gettime"));
  dlclose(h);
}

static char tmpdir[] = "/tmp/hs_symXXXXXX";

static void *map_file(const char *path, size_t len) {
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  assert_true(m != MAP_FAILED);
  return m;
}

static void write_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  close(fd);
}

static void test_symbolize_weird_mappings(void **state) {
  (void)state;
  assert_non_null(mkdtemp(tmpdir));
  char path[256];
  size_t len = 3 * 4096;
  unsigned char *data = calloc(1, len);
  hs_symbol sy;

  /* Anonymous memory (JIT code lives in such mappings). */
  void *anon = mmap(NULL, len, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(anon != MAP_FAILED);
  hs_symbolizer_new_epoch(g_sym);
  assert_int_equal(hs_symbolize(g_sym, (uintptr_t)anon + 100, &sy), 0);
  assert_string_equal(sy.function, "??");
  assert_string_equal(sy.mapping, "[anon]");

  /* A data file that is not ELF. */
  for (size_t i = 0; i < len; i++)
    data[i] = (unsigned char)(i * 7);
  snprintf(path, sizeof path, "%s/data.bin", tmpdir);
  write_file(path, data, len);
  void *m1 = map_file(path, len);
  hs_symbolizer_new_epoch(g_sym);
  assert_int_equal(hs_symbolize(g_sym, (uintptr_t)m1 + 5000, &sy), 0);
  assert_string_equal(sy.function, "??");
  assert_string_equal(sy.mapping, path);

  /* A truncated ELF: this program's first page, then zeros. */
  int fd = open("/proc/self/exe", O_RDONLY);
  assert_true(fd >= 0);
  memset(data, 0, len);
  assert_true(read(fd, data, 4096) > 64);
  close(fd);
  snprintf(path, sizeof path, "%s/trunc.so", tmpdir);
  write_file(path, data, len);
  void *m2 = map_file(path, len);
  /* ...and a corrupt one: ELF magic, garbage headers. */
  for (size_t i = 4; i < len; i++)
    data[i] = (unsigned char)(i * 13 + 5);
  snprintf(path, sizeof path, "%s/corrupt.so", tmpdir);
  write_file(path, data, len);
  void *m3 = map_file(path, len);
  /* ...and a deleted one. */
  snprintf(path, sizeof path, "%s/deleted.so", tmpdir);
  write_file(path, data, len);
  void *m4 = map_file(path, len);
  unlink(path);
  hs_symbolizer_new_epoch(g_sym);
  void *maps[3] = {m2, m3, m4};
  for (int i = 0; i < 3; i++) {
    for (size_t off = 0; off < len; off += 1000) {
      assert_int_equal(hs_symbolize(g_sym, (uintptr_t)maps[i] + off, &sy), 0);
      assert_string_equal(sy.function, "??");
    }
  }
  assert_non_null(strstr(sy.mapping, "deleted.so"));

  /* The program's own symbols still resolve afterwards. */
  assert_int_equal(hs_symbolize(g_sym, LEAF + 4, &sy), 0);
  assert_string_equal(sy.function, "prof_target_leaf");

  munmap(anon, len);
  munmap(m1, len);
  munmap(m2, len);
  munmap(m3, len);
  munmap(m4, len);
  snprintf(path, sizeof path, "%s/data.bin", tmpdir);
  unlink(path);
  snprintf(path, sizeof path, "%s/trunc.so", tmpdir);
  unlink(path);
  snprintf(path, sizeof path, "%s/corrupt.so", tmpdir);
  unlink(path);
  rmdir(tmpdir);
  free(data);
}

/* A process that keeps mapping and unmapping memory: records of mappings
 * that are gone are collected between profiles, answers for code that
 * stays are kept, and nothing dangles (run under ASan). */
static void test_symbolize_map_churn(void **state) {
  (void)state;
  hs_symbol sy;
  assert_int_equal(hs_symbolize(g_sym, LEAF + 4, &sy), 0);
  for (int i = 1; i <= 1100; i++) {
    size_t len = (size_t)i * 4096;
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    hs_symbolizer_new_epoch(g_sym);
    assert_int_equal(hs_symbolize(g_sym, (uintptr_t)m + len - 1, &sy), 0);
    assert_string_equal(sy.mapping, "[anon]");
    munmap(m, len);
  }
  hs_symbolizer_new_epoch(g_sym);
  /* Without collection there would be over 1100 records of gone maps. */
  assert_true(hs_symbolizer_map_records(g_sym) < 1100);
  uint64_t misses = hs_symbolizer_misses(g_sym);
  assert_int_equal(hs_symbolize(g_sym, LEAF + 4, &sy), 0);
  assert_string_equal(sy.function, "prof_target_leaf");
  assert_int_equal(hs_symbolizer_misses(g_sym), misses); /* still cached */
  /* A profile after the collection is whole. */
  hs_profile *p = new_profile(HS_PROFILE_CPU);
  sbuf b;
  mk(&b, HS_SAMPLE_CPU, 1, 2, LEAF + 4, MID + 9);
  assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_OK);
  Profile *pr = encode(p, g_sym, 0);
  check_wellformed(pr);
  assert_string_equal(loc_func(pr, pr->sample[0]->location_id[1]),
                      "prof_target_mid");
  perftools__profiles__profile__free_unpacked(pr, NULL);
  hs_profile_free(p);
}

/* A library loaded after the symbolizer read the mappings is found by a
 * reload when a profile is encoded. */
static void test_symbolize_after_dlopen(void **state) {
  (void)state;
  static const struct {
    const char *lib, *sym;
  } cands[] = {{"libthread_db.so.1", "td_init"},
               {"libanl.so.1", "getaddrinfo_a"},
               {"libBrokenLocale.so.1", "__ctype_get_mb_cur_max"}};
  hs_symbol sy;
  assert_int_equal(hs_symbolize(g_sym, LEAF, &sy), 0); /* maps loaded */
  for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
    if (dlopen(cands[i].lib, RTLD_LAZY | RTLD_NOLOAD) != NULL)
      continue; /* already loaded: proves nothing */
    void *h = dlopen(cands[i].lib, RTLD_LAZY | RTLD_LOCAL);
    if (h == NULL)
      continue;
    void *fn = dlsym(h, cands[i].sym);
    Dl_info di;
    if (fn == NULL || dladdr(fn, &di) == 0 || di.dli_fname == NULL ||
        strstr(di.dli_fname, cands[i].lib) == NULL) {
      dlclose(h);
      continue;
    }
    hs_profile *p = new_profile(HS_PROFILE_CPU);
    sbuf b;
    mk(&b, HS_SAMPLE_CPU, 1, 2, (uintptr_t)fn + 1, MID + 9);
    assert_int_equal(hs_profile_add(p, b.s, NULL), HOTSPAN_OK);
    Profile *pr = encode(p, g_sym, 0);
    check_wellformed(pr);
    const Perftools__Profiles__Location *l =
        loc(pr, pr->sample[0]->location_id[0]);
    assert_string_equal(loc_func(pr, l->id), cands[i].sym);
    assert_non_null(
        strstr(str(pr, mapping(pr, l->mapping_id)->filename), cands[i].lib));
    perftools__profiles__profile__free_unpacked(pr, NULL);
    hs_profile_free(p);
    dlclose(h);
    return;
  }
  TS_SKIP("no candidate library installed that was not loaded yet");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_header_fields_cpu),
      cmocka_unit_test(test_header_fields_wall),
      cmocka_unit_test(test_merge_identical_stacks),
      cmocka_unit_test(test_symbolized_stack),
      cmocka_unit_test(test_span_labels),
      cmocka_unit_test(test_samples_with_other_spans_not_merged),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_depth_zero_and_truncated),
      cmocka_unit_test(test_huge_depth),
      cmocka_unit_test(test_unknown_addresses),
      cmocka_unit_test(test_many_distinct_samples),
      cmocka_unit_test(test_symbolize_api),
      cmocka_unit_test(test_symbolize_inlined),
      cmocka_unit_test(test_symbolize_vdso),
      cmocka_unit_test(test_symbolize_weird_mappings),
      cmocka_unit_test(test_symbolize_map_churn),
      cmocka_unit_test(test_symbolize_after_dlopen),
  };
  return ts_exit(cmocka_run_group_tests(tests, setup, teardown));
}
