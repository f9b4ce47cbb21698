/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Counters: gets/puts/hits/misses, outstanding and idle, mappings, trim. */
#include "test_util.h"

static int setup(void **state) {
  zp_pool *pool = zp_pool_new(NULL);
  *state = pool;
  return pool == NULL ? -1 : 0;
}

static int teardown(void **state) {
  zp_pool_destroy((zp_pool *)*state);
  return 0;
}

static void check_identity(const zp_stats *s) {
  assert_int_equal(s->gets, s->hits + s->misses);
}

static void test_fresh_pool_is_empty(void **state) {
  zp_stats s = zp_test_stats(*state);
  assert_int_equal(s.gets, 0);
  assert_int_equal(s.puts, 0);
  assert_int_equal(s.hits, 0);
  assert_int_equal(s.misses, 0);
  assert_int_equal(s.evictions, 0);
  assert_int_equal(s.bytes_zeroed, 0);
  assert_int_equal(s.idle_buffers, 0);
  assert_int_equal(s.idle_bytes, 0);
  assert_int_equal(s.outstanding_buffers, 0);
  assert_int_equal(s.pinned_bytes, 0);
  assert_int_equal(s.pin_failures, 0);
}

/* A walk through one get/put cycle and its counters. */
static void test_counters_walk(void **state) {
  zp_pool *pool = *state;
  const size_t n = 65536;
  zp_stats s;
  void *p, *q;

  p = zp_get(pool, n); /* first get: a miss */
  assert_non_null(p);
  s = zp_test_stats(pool);
  check_identity(&s);
  assert_int_equal(s.gets, 1);
  assert_int_equal(s.misses, 1);
  assert_int_equal(s.hits, 0);
  assert_int_equal(s.outstanding_buffers, 1);
  assert_int_equal(s.idle_buffers, 0);
  assert_int_equal(s.idle_bytes, 0);
  assert_true(s.os_maps > 0);
  assert_true(s.mapped_bytes >= n);

  zp_put(pool, p);
  s = zp_test_stats(pool);
  assert_int_equal(s.puts, 1);
  assert_int_equal(s.outstanding_buffers, 0);
  assert_int_equal(s.idle_buffers, 1);
  assert_true(s.idle_bytes >= n);
  assert_true(s.os_maps > 0);
  assert_true(s.mapped_bytes >= s.idle_bytes);

  p = zp_get(pool, n); /* after a put of the same size: a hit */
  assert_non_null(p);
  s = zp_test_stats(pool);
  check_identity(&s);
  assert_int_equal(s.gets, 2);
  assert_int_equal(s.hits, 1);
  assert_int_equal(s.misses, 1);
  assert_int_equal(s.outstanding_buffers, 1);
  assert_int_equal(s.idle_buffers, 0);
  assert_int_equal(s.idle_bytes, 0);

  q = zp_get(pool, n); /* none idle: a miss */
  assert_non_null(q);
  s = zp_test_stats(pool);
  check_identity(&s);
  assert_int_equal(s.misses, 2);
  assert_int_equal(s.outstanding_buffers, 2);

  zp_put(pool, p);
  zp_put_used(pool, q, 10);
  s = zp_test_stats(pool);
  assert_int_equal(s.puts, 3);
  assert_int_equal(s.outstanding_buffers, 0);
  assert_int_equal(s.idle_buffers, 2);
  assert_true(s.idle_bytes >= 2 * n);
  assert_int_equal(s.evictions, 0);

  /* Trim: nothing idle, nothing mapped, counters of history kept. */
  assert_int_equal(zp_pool_trim(pool), 0);
  s = zp_test_stats(pool);
  check_identity(&s);
  assert_int_equal(s.idle_buffers, 0);
  assert_int_equal(s.idle_bytes, 0);
  assert_int_equal(s.os_maps, 0);
  assert_int_equal(s.mapped_bytes, 0);
  assert_int_equal(s.gets, 3);
  assert_int_equal(s.puts, 3);

  /* After a trim the next get is a miss again, and maps again. */
  p = zp_get(pool, n);
  assert_non_null(p);
  s = zp_test_stats(pool);
  assert_int_equal(s.misses, 3);
  assert_true(s.os_maps > 0);
  zp_put(pool, p);
}

/* Mixed sizes: idle_bytes is the sum of the idle buffers' capacities and
 * trim with buffers still out keeps their mappings. */
static void test_idle_and_trim_with_outstanding(void **state) {
  zp_pool *pool = *state;
  static const size_t sizes[] = {100, 4096, 5000, 20000, 65536, 1 << 20};
  enum { N = sizeof sizes / sizeof sizes[0] };
  void *p[N];
  size_t i, sum = 0;
  zp_stats s;
  for (i = 0; i < N; i++) {
    p[i] = zp_get(pool, sizes[i]);
    assert_non_null(p[i]);
    sum += sizes[i];
  }
  s = zp_test_stats(pool);
  assert_int_equal(s.outstanding_buffers, N);
  assert_true(s.mapped_bytes >= sum);
  for (i = 0; i < N; i += 2)
    zp_put(pool, p[i]);
  s = zp_test_stats(pool);
  assert_int_equal(s.idle_buffers, (N + 1) / 2);
  assert_int_equal(s.outstanding_buffers, N / 2);
  assert_true(s.idle_bytes >= sizes[0] + sizes[2] + sizes[4]);

  assert_int_equal(zp_pool_trim(pool), 0);
  s = zp_test_stats(pool);
  assert_int_equal(s.idle_buffers, 0);
  assert_int_equal(s.idle_bytes, 0);
  assert_true(s.os_maps > 0); /* the outstanding ones are still mapped */
  assert_true(s.mapped_bytes >= sizes[1] + sizes[3] + sizes[5]);

  for (i = 1; i < N; i += 2) {
    /* Still valid and writable after the trim. */
    memset(p[i], 0x77, sizes[i]);
    zp_put(pool, p[i]);
  }
  assert_int_equal(zp_pool_trim(pool), 0);
  s = zp_test_stats(pool);
  assert_int_equal(s.outstanding_buffers, 0);
  assert_int_equal(s.os_maps, 0);
  assert_int_equal(s.mapped_bytes, 0);
  assert_int_equal(s.gets, s.puts);
  check_identity(&s);
}

/* Hits and misses over many cycles: a steady get/put loop is all hits after
 * the first get of each size. */
static void test_steady_state_hits(void **state) {
  zp_pool *pool = *state;
  static const size_t sizes[] = {64, 4096, 65536, 300000};
  size_t rounds = zp_test_iters(2000, 200), r, i;
  zp_stats a, b;
  for (i = 0; i < 4; i++) {
    void *p = zp_get(pool, sizes[i]);
    assert_non_null(p);
    zp_put(pool, p);
  }
  a = zp_test_stats(pool);
  for (r = 0; r < rounds; r++)
    for (i = 0; i < 4; i++) {
      void *p = zp_get(pool, sizes[i]);
      assert_non_null(p);
      zp_put(pool, p);
    }
  b = zp_test_stats(pool);
  assert_int_equal(b.gets - a.gets, 4 * rounds);
  assert_int_equal(b.hits - a.hits, 4 * rounds);
  assert_int_equal(b.misses, a.misses);
  assert_int_equal(b.puts - a.puts, 4 * rounds);
  check_identity(&b);
}

/* Stats of two pools are separate. */
static void test_stats_per_pool(void **state) {
  zp_pool *a = *state;
  zp_pool *b = zp_pool_new(NULL);
  void *p;
  zp_stats sa, sb;
  assert_non_null(b);
  p = zp_get(a, 4096);
  assert_non_null(p);
  sb = zp_test_stats(b);
  assert_int_equal(sb.gets, 0);
  assert_int_equal(sb.outstanding_buffers, 0);
  zp_put(a, p);
  sa = zp_test_stats(a);
  sb = zp_test_stats(b);
  assert_int_equal(sa.puts, 1);
  assert_int_equal(sb.puts, 0);
  assert_int_equal(sb.idle_buffers, 0);
  zp_pool_destroy(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_fresh_pool_is_empty, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_counters_walk, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idle_and_trim_with_outstanding,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_steady_state_hits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stats_per_pool, setup, teardown),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
