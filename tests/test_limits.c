/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Limits: byte budget, per-shard count, small buffers sharing mappings. */
#include "test_util.h"

#include <pthread.h>
#include <sched.h>

static zp_pool *new_pool(const zp_builder *b) {
  zp_pool *pool = zp_pool_new(b);
  assert_non_null(pool);
  return pool;
}

static zp_pool *g_pool;
static size_t g_size;

static void *fill_shards_and_exit(void *arg) {
  unsigned char *p[8];
  (void)arg;
  for (int i = 0; i < 8; i++)
    p[i] = zp_get(g_pool, g_size);
  for (int i = 0; i < 8; i++)
    zp_put(g_pool, p[i]);
  return NULL; /* exit: the cache goes back to the shards */
}

static void *get_put_twice(void *arg) {
  (void)arg;
  for (int i = 0; i < 2; i++) {
    unsigned char *p = zp_get(g_pool, 65536);
    if (p)
      zp_put(g_pool, p);
  }
  return NULL;
}

/* One thread's cache must not keep the pool's whole budget as credit while
 * it holds nothing: after the main thread takes every idle buffer, another
 * thread's put is kept (not evicted) and its next get is a hit. */
static void test_one_cache_cannot_hoard_budget(void **state) {
  zp_builder b = {0};
  pthread_t t;
  unsigned char *held[8];
  zp_stats before, after;
  (void)state;
  b.max_pooled_bytes = 8 * ZP_MIB;
  b.num_shards = 4; /* a cache may hold 8 MiB / (2 x 4) = 1 MiB beyond */
  g_size = ZP_MIB;
  g_pool = new_pool(&b);
  assert_int_equal(pthread_create(&t, NULL, fill_shards_and_exit, NULL), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  for (int i = 0; i < 8; i++) {
    held[i] = zp_get(g_pool, g_size);
    assert_non_null(held[i]);
  }
  before = zp_test_stats(g_pool);
  assert_int_equal(pthread_create(&t, NULL, get_put_twice, NULL), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  after = zp_test_stats(g_pool);
  assert_int_equal(after.evictions - before.evictions, 0);
  assert_int_equal(after.hits - before.hits, 1);
  for (int i = 0; i < 8; i++)
    zp_put(g_pool, held[i]);
  after = zp_test_stats(g_pool);
  assert_true(after.idle_bytes <= b.max_pooled_bytes);
  zp_pool_destroy(g_pool);
}

/* A huge buffer costs little metadata: the page map records only the start
 * of a large buffer, so RSS does not grow with its size. */
static void test_huge_buffer_small_metadata(void **state) {
  (void)state;
  if (ZP_TEST_SANITIZED || zp_test_under_valgrind())
    skip(); /* their own shadow memory for a huge mapping dwarfs ours */
  zp_pool *pool = new_pool(NULL);
  long long before = zp_test_rss_bytes();
  unsigned char *p = zp_get(pool, (size_t)64 << 30); /* 64 GiB, untouched */
  if (p == NULL) {
    zp_pool_destroy(pool);
    skip(); /* no address space for it here */
  }
  long long during = zp_test_rss_bytes();
  zp_put_used(pool, p, 0);
  zp_pool_destroy(pool);
  if (during - before > 8 * (long long)ZP_MIB)
    fail_msg("RSS grew by %lld bytes for one untouched 64 GiB buffer",
             during - before);
}

/* A pool whose shard and thread cache are full of a size the workload no
 * longer uses adapts to the new size: stale buffers are evicted, not every
 * put of the new size (which would make every later get a miss). */
static void test_stale_size_does_not_block_new_size(void **state) {
  enum { OLD = 100, NEW = 20, ROUNDS = 200 };
  void *b[OLD];
  cpu_set_t set;
  (void)state;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  (void)sched_setaffinity(0, sizeof set, &set); /* one shard throughout */
  zp_pool *pool = new_pool(NULL);
  for (int i = 0; i < OLD; i++)
    b[i] = zp_get(pool, 4096);
  for (int i = 0; i < OLD; i++)
    zp_put(pool, b[i]); /* fills the cache and the shard with 4 KiB */
  zp_stats before = zp_test_stats(pool);
  for (int r = 0; r < ROUNDS; r++) {
    for (int i = 0; i < NEW; i++)
      b[i] = zp_get(pool, 65536);
    for (int i = 0; i < NEW; i++)
      zp_put(pool, b[i]);
  }
  zp_stats after = zp_test_stats(pool);
  uint64_t misses = after.misses - before.misses;
  if (misses > 2 * NEW)
    fail_msg("%llu misses over %d rounds of %d x 64 KiB: the stale 4 KiB "
             "buffers keep the new size out",
             (unsigned long long)misses, ROUNDS, NEW);
  zp_pool_destroy(pool);
  CPU_ZERO(&set);
  for (int c = 0; c < CPU_SETSIZE && c < 1024; c++)
    CPU_SET(c, &set);
  (void)sched_setaffinity(0, sizeof set, &set);
}

/* max_pooled_bytes = 1 MiB, 64 outstanding 64 KiB buffers put back: at most
 * 1 MiB stays idle (16 buffers), at least 48 are evicted. */
static void test_byte_budget(void **state) {
  enum { N = 64 };
  const size_t n = 64 * ZP_KIB;
  zp_builder b;
  zp_pool *pool;
  void *p[N];
  zp_stats s;
  size_t i;
  (void)state;
  memset(&b, 0, sizeof b);
  b.max_pooled_bytes = ZP_MIB;
  pool = new_pool(&b);
  for (i = 0; i < N; i++) {
    p[i] = zp_get(pool, n);
    assert_non_null(p[i]);
    memset(p[i], 0x11, n);
  }
  for (i = 0; i < N; i++) {
    zp_put(pool, p[i]);
    s = zp_test_stats(pool);
    if (s.idle_bytes > ZP_MIB)
      fail_msg("after %zu puts idle_bytes = %llu > 1 MiB", i + 1,
               (unsigned long long)s.idle_bytes);
  }
  s = zp_test_stats(pool);
  assert_int_equal(s.outstanding_buffers, 0);
  assert_true(s.idle_bytes <= ZP_MIB);
  assert_true(s.evictions >= 48);
  assert_int_equal(s.idle_buffers + s.evictions, N);
  /* What stays idle is still handed out zeroed. */
  for (i = 0; i < s.idle_buffers; i++) {
    p[i] = zp_get(pool, n);
    assert_non_null(p[i]);
    assert_true(zp_test_all_zero(p[i], n));
  }
  for (i = 0; i < s.idle_buffers; i++)
    zp_put(pool, p[i]);
  zp_pool_destroy(pool);
}

/* max_buffers_per_shard = 2, tls_cache_size = 1, one shard: of 10 buffers
 * put back at most 3 stay idle, at least 7 are evicted. */
static void test_buffer_count_limit(void **state) {
  enum { N = 10 };
  zp_builder b;
  zp_pool *pool;
  void *p[N];
  zp_stats s;
  size_t i;
  (void)state;
  memset(&b, 0, sizeof b);
  b.max_buffers_per_shard = 2;
  b.tls_cache_size = 1;
  b.num_shards = 1;
  pool = new_pool(&b);
  for (i = 0; i < N; i++) {
    p[i] = zp_get(pool, 16384);
    assert_non_null(p[i]);
  }
  for (i = 0; i < N; i++)
    zp_put(pool, p[i]);
  s = zp_test_stats(pool);
  assert_true(s.idle_buffers <= 3);
  assert_true(s.evictions >= 7);
  assert_int_equal(s.idle_buffers + s.evictions, N);
  assert_int_equal(s.outstanding_buffers, 0);
  zp_pool_destroy(pool);
}

/* 20000 outstanding 64-byte buffers (min_buffer_size 64) share mappings:
 * far fewer than one OS mapping each. */
static void test_small_buffers_share_mappings(void **state) {
  size_t n = 20000, i;
  zp_builder b;
  zp_pool *pool;
  void **p = calloc(n, sizeof *p);
  zp_stats s;
  (void)state;
  assert_non_null(p);
  memset(&b, 0, sizeof b);
  b.min_buffer_size = 64;
  pool = new_pool(&b);
  for (i = 0; i < n; i++) {
    p[i] = zp_get(pool, 64);
    assert_non_null(p[i]);
    assert_int_equal(zp_test_addr(p[i]) % 64, 0);
    memset(p[i], (int)(i & 0xFF) | 1, 64);
  }
  s = zp_test_stats(pool);
  assert_int_equal(s.outstanding_buffers, n);
  if (s.os_maps >= 200)
    fail_msg("%zu buffers of 64 B use %llu OS mappings (want < 200)", n,
             (unsigned long long)s.os_maps);
  assert_true(s.mapped_bytes >= n * 64);
  /* Neighbours did not overwrite each other. */
  for (i = 0; i < n; i++) {
    const unsigned char *q = p[i];
    assert_int_equal(q[0], (i & 0xFF) | 1);
    assert_int_equal(q[63], (i & 0xFF) | 1);
  }
  for (i = 0; i < n; i++)
    zp_put(pool, p[i]);
  s = zp_test_stats(pool);
  assert_int_equal(s.outstanding_buffers, 0);
  assert_int_equal(s.puts, n);
  assert_int_equal(zp_pool_trim(pool), 0);
  s = zp_test_stats(pool);
  assert_int_equal(s.os_maps, 0);
  assert_int_equal(s.mapped_bytes, 0);
  zp_pool_destroy(pool);
  free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_byte_budget),
      cmocka_unit_test(test_buffer_count_limit),
      cmocka_unit_test(test_small_buffers_share_mappings),
      cmocka_unit_test(test_one_cache_cannot_hoard_budget),
      cmocka_unit_test(test_stale_size_does_not_block_new_size),
      cmocka_unit_test(test_huge_buffer_small_metadata),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
