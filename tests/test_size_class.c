/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Size classes seen through stats: capacities, bounds, reuse. */
#include "test_util.h"

/*
 * The bounds checked for the capacity c of the class that serves a request of
 * n bytes, with m = min_buffer_size (c is read as stats.idle_bytes after one
 * get(n) + put into an empty pool):
 *
 *   always                   c >= n and c >= m, and c never shrinks as n grows
 *   n <= m                   c == m (smaller requests round up to m)
 *   m < n < 4 KiB (m = 64)   c % 64 == 0, c <= roundup64(1.25 n),
 *                            and c <= 2 n when n <= 128
 *   4 KiB < n <= 16 KiB      c == roundup(n, 4 KiB): 4097..8192 -> 8192,
 *                            8193..12288 -> 12288, 12289..16384 -> 16384
 *   n > 16 KiB               c <= roundup(1.25 n, 4 KiB)
 *
 * Requests up to 64 MiB are written to and put with zp_put; larger ones (up
 * to 256 MiB) are put with zp_put_used(.., 0) so their pages are never
 * touched.
 */

#define ZP_BIG_BUDGET ((size_t)1 << 30)

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* ceil(1.25 x) */
static size_t five_quarters(size_t x) { return x + (x + 3) / 4; }

static zp_pool *new_pool(size_t min_buffer_size) {
  zp_builder b;
  zp_pool *pool;
  memset(&b, 0, sizeof b);
  b.min_buffer_size = min_buffer_size;
  b.max_pooled_bytes = ZP_BIG_BUDGET;
  pool = zp_pool_new(&b);
  assert_non_null(pool);
  return pool;
}

/* The capacity of n's class: trim, get(n), write it, put, read idle_bytes. */
static size_t class_capacity(zp_pool *pool, size_t n) {
  zp_stats s;
  unsigned char *p;
  bool touch = n <= 64 * ZP_MIB;
  assert_int_equal(zp_pool_trim(pool), 0);
  s = zp_test_stats(pool);
  assert_int_equal(s.idle_buffers, 0);
  assert_int_equal(s.idle_bytes, 0);
  p = zp_get(pool, n);
  assert_non_null(p);
  if (touch) {
    if (n > 0) {
      p[0] = 1;
      p[n - 1] = 1;
    }
    zp_put(pool, p);
  } else {
    zp_put_used(pool, p, 0);
  }
  s = zp_test_stats(pool);
  assert_int_equal(s.idle_buffers, 1);
  assert_int_equal(s.evictions, 0);
  return (size_t)s.idle_bytes;
}

static void check_bounds(size_t n, size_t cap, size_t m) {
  if (cap < n || cap < m)
    fail_msg("n=%zu: capacity %zu < max(n, min_buffer_size %zu)", n, cap, m);
  if (n <= m) {
    if (cap != m)
      fail_msg("n=%zu <= min_buffer_size %zu: capacity %zu, expected %zu", n, m,
               cap, m);
  } else if (n <= 4096) {
    if (cap % 64 != 0)
      fail_msg("n=%zu: capacity %zu is not a multiple of 64", n, cap);
    if (cap > round_up(five_quarters(n), 64))
      fail_msg("n=%zu: capacity %zu > roundup64(1.25 n) = %zu", n, cap,
               round_up(five_quarters(n), 64));
    if (n <= 128 && cap > 2 * n)
      fail_msg("n=%zu: capacity %zu > 2 n", n, cap);
  } else if (n <= 16384) {
    if (cap != round_up(n, 4096))
      fail_msg("n=%zu: capacity %zu, expected %zu", n, cap, round_up(n, 4096));
  } else {
    if (cap > round_up(five_quarters(n), 4096))
      fail_msg("n=%zu: capacity %zu > roundup4K(1.25 n) = %zu", n, cap,
               round_up(five_quarters(n), 4096));
  }
}

/* The request sizes probed: dense below 300 and at every boundary, sparse
 * (about 7% apart, with +-1 around powers of two) up to 256 MiB. */
static size_t probe_sizes(size_t *out, size_t cap) {
  size_t k = 0, n, p;
#define ZP_ADD(x)                                                              \
  do {                                                                         \
    if (k < cap)                                                               \
      out[k++] = (x);                                                          \
  } while (0)
  for (n = 0; n <= 300; n++)
    ZP_ADD(n);
  for (n = 301; n < 4096; n += zp_test_quick() ? 97 : 37)
    ZP_ADD(n);
  for (p = 512; p <= 16384; p += 512) {
    ZP_ADD(p - 1);
    ZP_ADD(p);
    ZP_ADD(p + 1);
  }
  for (n = 16385; n < 256 * ZP_MIB; n = n + n / (zp_test_quick() ? 4 : 14) + 1)
    ZP_ADD(n);
  for (p = 32768; p <= 256 * ZP_MIB; p *= 2) {
    ZP_ADD(p - 1);
    ZP_ADD(p);
    ZP_ADD(p + 1);
  }
#undef ZP_ADD
  return k;
}

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

static void check_classes(size_t m) {
  static size_t sizes[2048];
  size_t k = probe_sizes(sizes, sizeof sizes / sizeof sizes[0]);
  size_t i, prev_cap = 0;
  zp_pool *pool = new_pool(m);
  zp_builder cfg;
  assert_int_equal(zp_pool_config(pool, &cfg), 0);
  assert_int_equal(cfg.min_buffer_size, m == 0 ? 4096 : m);
  if (m == 0)
    m = 4096;
  qsort(sizes, k, sizeof sizes[0], cmp_size);
  for (i = 0; i < k; i++) {
    size_t cap = class_capacity(pool, sizes[i]);
    check_bounds(sizes[i], cap, m);
    if (cap < prev_cap)
      fail_msg("capacity shrinks: n=%zu has %zu, a smaller n had %zu", sizes[i],
               cap, prev_cap);
    prev_cap = cap;
  }
  zp_pool_destroy(pool);
}

static void test_classes_min64(void **state) {
  (void)state;
  check_classes(64);
}

static void test_classes_default_min(void **state) {
  (void)state;
  check_classes(0);
}

/* A larger min_buffer_size: everything below it takes one class of it. */
static void test_classes_min64k(void **state) {
  zp_pool *pool = new_pool(65536);
  (void)state;
  check_bounds(0, class_capacity(pool, 0), 65536);
  check_bounds(1, class_capacity(pool, 1), 65536);
  check_bounds(4096, class_capacity(pool, 4096), 65536);
  check_bounds(65536, class_capacity(pool, 65536), 65536);
  check_bounds(65537, class_capacity(pool, 65537), 65536);
  zp_pool_destroy(pool);
}

/* The largest request: either served or NULL + ENOMEM; never anything else.
 * Skipped under sanitizers and valgrind, which would shadow 1 TiB. */
static void test_max_request(void **state) {
  zp_pool *pool = new_pool(0);
  volatile size_t n = ZP_MAX_REQUEST;
  void *p;
  (void)state;
  if (ZP_TEST_SANITIZED || zp_test_under_valgrind() || zp_test_quick()) {
    zp_pool_destroy(pool);
    skip();
  }
  errno = 0;
  p = zp_get(pool, n);
  if (p == NULL) {
    assert_int_equal(errno, ENOMEM);
  } else {
    assert_int_equal(zp_buffer_size(pool, p), ZP_MAX_REQUEST);
    zp_put_used(pool, p, 0);
  }
  zp_pool_destroy(pool);
}

/* Requests of one class share buffers; the buffer is handed back whole. */
static void test_same_class_reuse(void **state) {
  zp_pool *pool = new_pool(0);
  zp_stats a, b;
  unsigned char *p, *q;
  uintptr_t pa;
  (void)state;
  p = zp_get(pool, 5000);
  assert_non_null(p);
  memset(p, 0xA5, 5000);
  pa = zp_test_addr(p);
  zp_put(pool, p);
  a = zp_test_stats(pool);
  q = zp_get(pool, 8192); /* same class as 5000: 8192 */
  assert_non_null(q);
  b = zp_test_stats(pool);
  assert_int_equal(b.hits, a.hits + 1);
  assert_int_equal(b.misses, a.misses);
  assert_int_equal(zp_test_addr(q), pa);
  assert_true(zp_test_all_zero(q, 8192));
  zp_put(pool, q);
  zp_pool_destroy(pool);
}

/* A small request never takes a far larger idle buffer: its capacity would
 * break the bounds above. */
static void test_no_cross_class_reuse(void **state) {
  zp_pool *pool = new_pool(64);
  zp_stats a, b;
  void *big, *small;
  (void)state;
  big = zp_get(pool, ZP_MIB);
  assert_non_null(big);
  zp_put(pool, big);
  a = zp_test_stats(pool);
  assert_int_equal(a.idle_buffers, 1);
  small = zp_get(pool, 100);
  assert_non_null(small);
  b = zp_test_stats(pool);
  assert_int_equal(b.misses, a.misses + 1);
  assert_int_equal(b.idle_buffers, 1);
  assert_int_equal(b.idle_bytes, a.idle_bytes);
  zp_put(pool, small);
  zp_pool_destroy(pool);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_classes_min64),
      cmocka_unit_test(test_classes_default_min),
      cmocka_unit_test(test_classes_min64k),
      cmocka_unit_test(test_max_request),
      cmocka_unit_test(test_same_class_reuse),
      cmocka_unit_test(test_no_cross_class_reuse),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
