/* Helpers for the store and engine tests: a temporary directory per test
 * and builders for hand-made batches. */
#ifndef HS_TESTS_SUPPORT_STORE_FIXTURES_H
#define HS_TESTS_SUPPORT_STORE_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/model.h"

typedef struct tmpdb {
  char dir[64];
  char path[128];
} tmpdb;

void tmpdb_make(tmpdb *t);

void tmpdb_remove(tmpdb *t);

/* A batch under construction: fixed capacity, enough for the tests. */
#define TB_MAX 4096
typedef struct tbatch {
  hs_ing_batch b;
  hs_ing_span spans[TB_MAX];
  hs_ing_sample samples[TB_MAX];
} tbatch;

void tb_init(tbatch *t, const char *service);

hs_ing_span *tb_span(tbatch *t, uint64_t thi, uint64_t tlo, uint64_t id,
                     uint64_t parent, const char *service, const char *resource,
                     int64_t start, int64_t dur);

/* n samples of one value each on a stack (leaf first). */
void tb_samples(tbatch *t, int n, uint8_t type, int64_t value, uint64_t span,
                const char *endpoint, int64_t time, const hs_ing_frame *frames,
                uint32_t nframes);

#endif
