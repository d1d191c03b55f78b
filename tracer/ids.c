/* Id generation: a per-thread xoroshiro128+ generator, seeded from the
 * kernel's random source, reseeded in a forked child (fork generation
 * changes) so that parent and child never produce the same sequence. */
#include "common/clock.h"
#include "common/fork.h"
#include "common/random.h"
#include "tracer/internal.h"

static void seed(hs_tstate *ts) {
  uint64_t s[2];
  hs_random_seed(s, sizeof s);
  ts->rng[0] = s[0];
  ts->rng[1] = s[1];
  if ((ts->rng[0] | ts->rng[1]) == 0)
    ts->rng[1] = 1;
  ts->rng_fork_gen = hs_fork_generation() + 1; /* +1: 0 means unseeded */
}

static inline uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t hs_random64(hs_tstate *ts) {
  if (__builtin_expect(ts->rng_fork_gen != hs_fork_generation() + 1, 0))
    seed(ts);
  uint64_t s0 = ts->rng[0], s1 = ts->rng[1];
  uint64_t r = s0 + s1;
  s1 ^= s0;
  ts->rng[0] = rotl(s0, 24) ^ s1 ^ (s1 << 16);
  ts->rng[1] = rotl(s1, 37);
  return r;
}

uint64_t hs_new_span_id(hs_tstate *ts) {
  uint64_t id;
  do
    id = hs_random64(ts) >> 1; /* top bit clear: Datadog-compatible */
  while (id == 0);
  return id;
}

uint64_t hs_unix_from_mono(hs_tstate *ts, uint64_t mono) {
  if (__builtin_expect(mono - ts->rt_offset_mono > 1000000000u ||
                           ts->rt_offset_mono == 0,
                       0)) {
    /* Read the monotonic clock on both sides of the realtime read and use
     * the midpoint, so the offset is good to a fraction of a microsecond. */
    uint64_t m0 = hs_now_mono_ns();
    uint64_t rt = hs_now_unix_ns();
    uint64_t m1 = hs_now_mono_ns();
    ts->rt_offset = rt - (m0 + (m1 - m0) / 2);
    ts->rt_offset_mono = m1;
  }
  return mono + ts->rt_offset;
}
