/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Public API basics: zeroed aligned buffers, size 0, errors, NULLs, sizes. */
#include "test_util.h"

static int setup_default(void **state) {
  zp_pool *pool = zp_pool_new(NULL);
  if (pool == NULL)
    return -1;
  *state = pool;
  return 0;
}

static int setup_small(void **state) {
  zp_builder b;
  zp_pool *pool;
  memset(&b, 0, sizeof b);
  b.min_buffer_size = 64;
  pool = zp_pool_new(&b);
  if (pool == NULL)
    return -1;
  *state = pool;
  return 0;
}

static int teardown(void **state) {
  zp_pool_destroy((zp_pool *)*state);
  return 0;
}

static const size_t k_sizes[] = {
    1,     7,     63,    64,     65,     100,     127,     128,
    255,   1000,  2048,  4095,   4096,   4097,    8191,    12000,
    16384, 16385, 65536, 100000, 262144, 1000000, 2097152, 3 * 1048576 + 5};

/* Every size: non-NULL, all zero over the size asked for, writable over the
 * whole size, aligned as the header promises, zp_buffer_size tells the size
 * asked for. Several are held at once so they cannot be one buffer. */
static void check_get_sizes(zp_pool *pool) {
  enum { N = sizeof k_sizes / sizeof k_sizes[0] };
  void *bufs[N];
  size_t i, j;
  for (i = 0; i < N; i++) {
    size_t n = k_sizes[i];
    unsigned char *p = zp_get(pool, n);
    assert_non_null(p);
    assert_true(zp_test_all_zero(p, n));
    if (n >= 4096)
      assert_int_equal(zp_test_addr(p) % 4096, 0);
    else
      assert_int_equal(zp_test_addr(p) % 64, 0);
    memset(p, 0x5A, n);
    assert_int_equal(zp_buffer_size(pool, p), n);
    bufs[i] = p;
  }
  /* Distinct and not overlapping. */
  for (i = 0; i < N; i++)
    for (j = i + 1; j < N; j++) {
      uintptr_t a = zp_test_addr(bufs[i]), b = zp_test_addr(bufs[j]);
      assert_true(a + k_sizes[i] <= b || b + k_sizes[j] <= a);
    }
  /* Writes to one did not land in another. */
  for (i = 0; i < N; i++) {
    const unsigned char *p = bufs[i];
    assert_int_equal(p[0], 0x5A);
    assert_int_equal(p[k_sizes[i] - 1], 0x5A);
  }
  for (i = 0; i < N; i++)
    zp_put(pool, bufs[i]);
}

static void test_get_zeroed_aligned_default(void **state) {
  check_get_sizes((zp_pool *)*state);
}

static void test_get_zeroed_aligned_small(void **state) {
  check_get_sizes((zp_pool *)*state);
}

static void test_get_zero_size(void **state) {
  zp_pool *pool = *state;
  void *a = zp_get(pool, 0);
  void *b = zp_get(pool, 0);
  assert_non_null(a);
  assert_non_null(b);
  assert_true(zp_test_addr(a) != zp_test_addr(b));
  assert_int_equal(zp_test_addr(a) % 64, 0);
  assert_int_equal(zp_test_stats(pool).outstanding_buffers, 2);
  zp_put(pool, a);
  zp_put_used(pool, b, 0);
  assert_int_equal(zp_test_stats(pool).outstanding_buffers, 0);
}

static void test_get_zero_size_default(void **state) {
  test_get_zero_size(state);
}

static void test_get_zero_size_small(void **state) {
  test_get_zero_size(state);
}

static void test_get_null_pool(void **state) {
  void *p;
  (void)state;
  errno = 0;
  p = zp_get(NULL, 64);
  assert_null(p);
  assert_int_equal(errno, EINVAL);
}

static void test_get_too_large(void **state) {
  zp_pool *pool = *state;
  /* volatile: gcc rejects a constant over PTRDIFF_MAX for alloc_size. */
  volatile size_t huge = SIZE_MAX;
  volatile size_t over = ZP_MAX_REQUEST + 1;
  volatile size_t half = SIZE_MAX / 2 + 1;
  zp_stats before = zp_test_stats(pool), after;
  void *p;

  errno = 0;
  p = zp_get(pool, huge);
  assert_null(p);
  assert_int_equal(errno, ENOMEM);

  errno = 0;
  p = zp_get(pool, over);
  assert_null(p);
  assert_int_equal(errno, ENOMEM);

  errno = 0;
  p = zp_get(pool, half);
  assert_null(p);
  assert_int_equal(errno, ENOMEM);

  /* A failed get is not counted and holds nothing. */
  after = zp_test_stats(pool);
  assert_int_equal(after.gets, before.gets);
  assert_int_equal(after.outstanding_buffers, before.outstanding_buffers);

  /* The pool still works. */
  p = zp_get(pool, 4096);
  assert_non_null(p);
  zp_put(pool, p);
}

static void test_null_noops(void **state) {
  zp_pool *pool = *state;
  zp_stats before = zp_test_stats(pool), after;
  zp_put(pool, NULL);
  zp_put_used(pool, NULL, 0);
  zp_pool_destroy(NULL);
  after = zp_test_stats(pool);
  assert_int_equal(after.puts, before.puts);
  assert_int_equal(after.outstanding_buffers, before.outstanding_buffers);
  assert_int_equal(after.idle_buffers, before.idle_buffers);
}

static void test_control_calls_reject_null(void **state) {
  zp_pool *pool = *state;
  zp_stats s;
  zp_builder b;
  assert_int_equal(zp_pool_stats(NULL, &s), -EINVAL);
  assert_int_equal(zp_pool_stats(pool, NULL), -EINVAL);
  assert_int_equal(zp_pool_trim(NULL), -EINVAL);
  assert_int_equal(zp_pool_config(NULL, &b), -EINVAL);
  assert_int_equal(zp_pool_config(pool, NULL), -EINVAL);
  assert_int_equal(zp_pool_trim(pool), 0);
  assert_int_equal(zp_buffer_size(NULL, NULL), 0);
  assert_int_equal(zp_buffer_size(pool, NULL), 0);
}

static void test_buffer_size_foreign(void **state) {
  zp_pool *pool = *state;
  char stack[256];
  char *heap = malloc(8192);
  unsigned char *p = zp_get(pool, 5000);
  assert_non_null(heap);
  assert_non_null(p);
  assert_int_equal(zp_buffer_size(pool, p), 5000);
  assert_int_equal(zp_buffer_size(pool, stack), 0);
  assert_int_equal(zp_buffer_size(pool, heap), 0);
  assert_int_equal(zp_buffer_size(pool, heap + 4096), 0);
  /* Interior pointers are not buffers. */
  assert_int_equal(zp_buffer_size(pool, p + 1), 0);
  assert_int_equal(zp_buffer_size(pool, p + 64), 0);
  assert_int_equal(zp_buffer_size(pool, p + 4096), 0);
  zp_put(pool, p);
  /* Not outstanding any more. */
  assert_int_equal(zp_buffer_size(pool, p), 0);
  free(heap);
}

static void test_buffer_size_tracks_request(void **state) {
  zp_pool *pool = *state;
  /* Same class, different requests: the size asked for, not the capacity. */
  void *a = zp_get(pool, 5000);
  assert_non_null(a);
  assert_int_equal(zp_buffer_size(pool, a), 5000);
  zp_put(pool, a);
  a = zp_get(pool, 8000);
  assert_non_null(a);
  assert_int_equal(zp_buffer_size(pool, a), 8000);
  zp_put(pool, a);
  a = zp_get(pool, 0);
  assert_non_null(a);
  assert_int_equal(zp_buffer_size(pool, a), 0);
  zp_put(pool, a);
}

static void test_version(void **state) {
  (void)state;
  assert_string_equal(zp_version_string(), ZP_VERSION_STRING);
  assert_int_equal(zp_version_number(), ZP_VERSION_NUMBER);
}

static void test_many_pools(void **state) {
  enum { N = 16 };
  zp_pool *pools[N];
  void *bufs[N];
  int i;
  (void)state;
  for (i = 0; i < N; i++) {
    pools[i] = zp_pool_new(NULL);
    assert_non_null(pools[i]);
    bufs[i] = zp_get(pools[i], 4096);
    assert_non_null(bufs[i]);
  }
  for (i = 0; i < N; i++) {
    zp_put(pools[i], bufs[i]);
    zp_pool_destroy(pools[i]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_get_zeroed_aligned_default,
                                      setup_default, teardown),
      cmocka_unit_test_setup_teardown(test_get_zeroed_aligned_small,
                                      setup_small, teardown),
      cmocka_unit_test_setup_teardown(test_get_zero_size_default, setup_default,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_get_zero_size_small, setup_small,
                                      teardown),
      cmocka_unit_test(test_get_null_pool),
      cmocka_unit_test_setup_teardown(test_get_too_large, setup_default,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_null_noops, setup_default, teardown),
      cmocka_unit_test_setup_teardown(test_control_calls_reject_null,
                                      setup_default, teardown),
      cmocka_unit_test_setup_teardown(test_buffer_size_foreign, setup_default,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_buffer_size_tracks_request,
                                      setup_default, teardown),
      cmocka_unit_test(test_version),
      cmocka_unit_test(test_many_pools),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
