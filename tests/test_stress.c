/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Stress (mimalloc test-stress style): cookies, hand-offs, thread churn. */
#include "test_util.h"

#include <pthread.h>
#include <stdatomic.h>

enum { LOCAL = 32 };

static zp_pool *g_pool;
static _Atomic(uintptr_t) *g_slots; /* buffers in transit between threads */
static size_t g_nslots;
static size_t g_iters;
static atomic_int g_errors;
static atomic_ulong g_gets, g_puts;

static void report(const char *what, const void *p, size_t n) {
  if (atomic_fetch_add(&g_errors, 1) < 10)
    fprintf(stderr, "stress: %s (buffer %p, size %zu)\n", what, p, n);
}

/* The cookie of a buffer: derived from its address and size. */
static uint64_t cookie_of(const void *p, size_t n) {
  uint64_t c = (uint64_t)zp_test_addr(p) ^ ((uint64_t)n * 0x9E3779B97F4A7C15u);
  c ^= c >> 29;
  c *= 0xBF58476D1CE4E5B9u;
  return c | 1;
}

static void fill(unsigned char *p, size_t n) {
  uint64_t c = cookie_of(p, n);
  size_t i, words = n / 8;
  for (i = 0; i < words; i++) {
    uint64_t v = c ^ i;
    memcpy(p + 8 * i, &v, 8);
  }
  for (i = words * 8; i < n; i++)
    p[i] = (unsigned char)(c >> (8 * (i % 8)));
}

static bool verify(const unsigned char *p, size_t n) {
  uint64_t c = cookie_of(p, n);
  size_t i, words = n / 8;
  for (i = 0; i < words; i++) {
    uint64_t v;
    memcpy(&v, p + 8 * i, 8);
    if (v != (c ^ i))
      return false;
  }
  for (i = words * 8; i < n; i++)
    if (p[i] != (unsigned char)(c >> (8 * (i % 8))))
      return false;
  return true;
}

/* 1 B .. 1 MiB, skewed small. */
static size_t pick_size(uint64_t *rng) {
  uint64_t r = zp_test_rand(rng) % 1000;
  uint64_t limit = r < 700   ? 1024
                   : r < 950 ? 64 * 1024
                   : r < 995 ? 256 * 1024
                             : 1024 * 1024;
  return 1 + (size_t)(zp_test_rand(rng) % limit);
}

static unsigned char *get_filled(uint64_t *rng) {
  size_t n = pick_size(rng);
  unsigned char *p = zp_get(g_pool, n);
  if (p == NULL) {
    report("zp_get failed", NULL, n);
    return NULL;
  }
  atomic_fetch_add(&g_gets, 1);
  if (!zp_test_all_zero(p, n))
    report("fresh buffer not zero", p, n);
  fill(p, n);
  return p;
}

/* Checks the cookie of a buffer (any thread's) and puts it. */
static void check_and_put(uint64_t *rng, unsigned char *p) {
  size_t n;
  if (p == NULL)
    return;
  n = zp_buffer_size(g_pool, p);
  if (n == 0)
    report("zp_buffer_size is 0 for an outstanding buffer", p, n);
  else if (!verify(p, n))
    report("cookie mismatch", p, n);
  if (zp_test_rand(rng) & 1)
    zp_put(g_pool, p);
  else
    zp_put_used(g_pool, p, n);
  atomic_fetch_add(&g_puts, 1);
}

typedef struct worker {
  pthread_t thread;
  uint64_t seed;
} worker;

static void *stress_thread(void *arg) {
  worker *w = arg;
  uint64_t rng = w->seed;
  unsigned char *mine[LOCAL];
  size_t i;
  memset(mine, 0, sizeof mine);
  for (i = 0; i < g_iters; i++) {
    uint64_t r = zp_test_rand(&rng) % 100;
    size_t k = (size_t)(zp_test_rand(&rng) % LOCAL);
    if (r < 50) {
      /* Replace a local buffer with a fresh one. */
      check_and_put(&rng, mine[k]);
      mine[k] = get_filled(&rng);
    } else if (r < 75) {
      check_and_put(&rng, mine[k]);
      mine[k] = NULL;
    } else {
      /* Hand a buffer over: swap it with whatever sits in a shared slot. */
      size_t s = (size_t)(zp_test_rand(&rng) % g_nslots);
      uintptr_t old = atomic_exchange(&g_slots[s], (uintptr_t)mine[k]);
      mine[k] = (unsigned char *)old;
      if (mine[k] != NULL && (zp_test_rand(&rng) & 3) == 0) {
        check_and_put(&rng, mine[k]);
        mine[k] = NULL;
      }
    }
  }
  /* At exit: put some, leave others in slots to outlive this thread. */
  for (i = 0; i < LOCAL; i++) {
    if (mine[i] == NULL)
      continue;
    if (zp_test_rand(&rng) & 1) {
      check_and_put(&rng, mine[i]);
    } else {
      size_t s = (size_t)(zp_test_rand(&rng) % g_nslots);
      uintptr_t old = atomic_exchange(&g_slots[s], (uintptr_t)mine[i]);
      check_and_put(&rng, (unsigned char *)old);
    }
  }
  return NULL;
}

static void run_stress(const zp_builder *b) {
  size_t nthreads = zp_test_iters(4, 2);
  size_t rounds = zp_test_iters(6, 4);
  size_t r, t, i;
  worker w[4];
  zp_stats s;
  uint64_t rng = 42;

  g_pool = zp_pool_new(b);
  assert_non_null(g_pool);
  g_nslots = zp_test_iters(256, 64);
  g_iters = zp_test_iters(4000, 1500);
  g_slots = calloc(g_nslots, sizeof *g_slots);
  assert_non_null(g_slots);
  for (i = 0; i < g_nslots; i++)
    atomic_init(&g_slots[i], 0);
  atomic_store(&g_errors, 0);
  atomic_store(&g_gets, 0);
  atomic_store(&g_puts, 0);

  for (r = 0; r < rounds; r++) {
    for (t = 0; t < nthreads; t++) {
      w[t].seed = ((uint64_t)(r + 1) * 0x9E3779B97F4A7C15u) ^
                  ((uint64_t)(t + 1) * 0xD1B54A32D192ED03u);
      assert_int_equal(pthread_create(&w[t].thread, NULL, stress_thread, &w[t]),
                       0);
    }
    for (t = 0; t < nthreads; t++)
      assert_int_equal(pthread_join(w[t].thread, NULL), 0);
    /* Between rounds no thread is inside the library: the books balance. */
    s = zp_test_stats(g_pool);
    assert_int_equal(s.gets, atomic_load(&g_gets));
    assert_int_equal(s.puts, atomic_load(&g_puts));
    assert_int_equal(s.gets, s.hits + s.misses);
    assert_int_equal(s.outstanding_buffers, s.gets - s.puts);
  }

  /* Put everything still in transit. */
  for (i = 0; i < g_nslots; i++)
    check_and_put(&rng, (unsigned char *)atomic_exchange(&g_slots[i], 0));

  assert_int_equal(atomic_load(&g_errors), 0);
  s = zp_test_stats(g_pool);
  assert_int_equal(s.outstanding_buffers, 0);
  assert_int_equal(s.gets, s.puts);
  assert_int_equal(s.gets, atomic_load(&g_gets));
  assert_int_equal(s.gets, s.hits + s.misses);
  assert_true(s.hits > 0);
  print_message("stress: %llu gets, %llu hits, %llu evictions\n",
                (unsigned long long)s.gets, (unsigned long long)s.hits,
                (unsigned long long)s.evictions);
  assert_int_equal(zp_pool_trim(g_pool), 0);
  s = zp_test_stats(g_pool);
  assert_int_equal(s.idle_buffers, 0);
  assert_int_equal(s.os_maps, 0);
  assert_int_equal(s.mapped_bytes, 0);

  zp_pool_destroy(g_pool);
  g_pool = NULL;
  free(g_slots);
  g_slots = NULL;
}

static void test_stress_default(void **state) {
  (void)state;
  run_stress(NULL);
}

/* Small buffers share slabs; small caches and budget force evictions and
 * shard traffic. */
static void test_stress_tight(void **state) {
  zp_builder b;
  (void)state;
  memset(&b, 0, sizeof b);
  b.min_buffer_size = 64;
  b.tls_cache_size = 2;
  b.num_shards = 2;
  b.max_buffers_per_shard = 16;
  b.max_pooled_bytes = 4 * ZP_MIB;
  run_stress(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stress_default),
      cmocka_unit_test(test_stress_tight),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
