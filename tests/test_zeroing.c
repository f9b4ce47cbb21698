/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Zeroing: every get is all zero; puts wipe exactly what was handed out. */
#include "test_util.h"

static int setup_default(void **state) {
  zp_pool *pool = zp_pool_new(NULL);
  *state = pool;
  return pool == NULL ? -1 : 0;
}

static int setup_small(void **state) {
  zp_builder b;
  zp_pool *pool;
  memset(&b, 0, sizeof b);
  b.min_buffer_size = 64;
  pool = zp_pool_new(&b);
  *state = pool;
  return pool == NULL ? -1 : 0;
}

static int teardown(void **state) {
  zp_pool_destroy((zp_pool *)*state);
  return 0;
}

static uint64_t zeroed(zp_pool *pool) {
  return zp_test_stats(pool).bytes_zeroed;
}

/* bytes_zeroed: a fresh get adds 0, a hit adds 0, zp_put adds the size asked
 * for (not the capacity), zp_put_used adds `used`. */
static void test_bytes_zeroed_exact(void **state) {
  zp_pool *pool = *state;
  static const size_t sizes[] = {0,    1,     64,    100,    4095,   4096,
                                 5000, 16385, 65536, 100000, 1 << 20};
  size_t i;
  for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    uint64_t z0 = zeroed(pool);
    unsigned char *p = zp_get(pool, n);
    assert_non_null(p);
    assert_int_equal(zeroed(pool), z0); /* fresh memory: not re-zeroed */
    memset(p, 0xA5, n);
    zp_put(pool, p);
    assert_int_equal(zeroed(pool), z0 + n);

    p = zp_get(pool, n); /* a hit: zeroed already, not again */
    assert_non_null(p);
    assert_int_equal(zeroed(pool), z0 + n);
    assert_true(zp_test_all_zero(p, n));
    memset(p, 0x5A, n / 3);
    zp_put_used(pool, p, n / 3);
    assert_int_equal(zeroed(pool), z0 + n + n / 3);

    p = zp_get(pool, n);
    assert_non_null(p);
    assert_true(zp_test_all_zero(p, n));
    zp_put_used(pool, p, 0); /* nothing written: nothing wiped */
    assert_int_equal(zeroed(pool), z0 + n + n / 3);
  }
}

/* A buffer written over its whole request, put, then handed out for a larger
 * request of the same class (its full capacity): all zero. */
static void test_reuse_larger_request(void **state) {
  zp_pool *pool = *state;
  unsigned char *p, *q;
  uintptr_t pa;
  p = zp_get(pool, 4097);
  assert_non_null(p);
  memset(p, 0xFF, 4097);
  pa = zp_test_addr(p);
  zp_put(pool, p);
  q = zp_get(pool, 8192);
  assert_non_null(q);
  assert_int_equal(zp_test_addr(q), pa);
  assert_true(zp_test_all_zero(q, 8192));
  memset(q, 0xFF, 8192);
  zp_put_used(pool, q, 8192);
  q = zp_get(pool, 6000);
  assert_non_null(q);
  assert_int_equal(zp_test_addr(q), pa);
  assert_true(zp_test_all_zero(q, 6000));
  zp_put(pool, q);
}

typedef struct held {
  unsigned char *p;
  size_t n;
} held;

static size_t random_size(uint64_t *rng) {
  /* Skewed small: a random bit length 0..18, then a value below it. */
  unsigned bits = (unsigned)(zp_test_rand(rng) % 19);
  return (size_t)(zp_test_rand(rng) % ((uint64_t)1 << bits));
}

static bool seen_before(const uintptr_t *seen, size_t nseen, uintptr_t a) {
  size_t i;
  for (i = 0; i < nseen; i++)
    if (seen[i] == a)
      return true;
  return false;
}

/* Property: many rounds of random-size gets, each checked all zero, written
 * (0xA5 or random bytes), and put back in random order, half with zp_put and
 * half with zp_put_used(true written length). Addresses are reused across
 * rounds; bytes_zeroed equals the sum of sizes and used lengths exactly. */
static void test_zero_property(void **state) {
  enum { BATCH = 48 };
  zp_pool *pool = *state;
  size_t rounds = zp_test_iters(60, 12);
  uintptr_t *seen = calloc(rounds * BATCH, sizeof *seen);
  size_t nseen = 0, reused = 0, r, i, j;
  uint64_t rng = 0x9E3779B97F4A7C15u;
  uint64_t expect_zeroed = zeroed(pool);
  held h[BATCH];
  assert_non_null(seen);
  for (r = 0; r < rounds; r++) {
    for (i = 0; i < BATCH; i++) {
      uintptr_t a;
      h[i].n = random_size(&rng);
      h[i].p = zp_get(pool, h[i].n);
      assert_non_null(h[i].p);
      if (!zp_test_all_zero(h[i].p, h[i].n))
        fail_msg("round %zu: get(%zu) at %p is not all zero", r, h[i].n,
                 (void *)h[i].p);
      a = zp_test_addr(h[i].p);
      for (j = 0; j < i; j++) {
        uintptr_t b = zp_test_addr(h[j].p);
        if (a < b + (h[j].n ? h[j].n : 1) && b < a + (h[i].n ? h[i].n : 1))
          fail_msg("round %zu: get(%zu) = %p overlaps outstanding get(%zu) = "
                   "%p",
                   r, h[i].n, (void *)h[i].p, h[j].n, (void *)h[j].p);
      }
      if (seen_before(seen, nseen, a))
        reused++;
      else
        seen[nseen++] = a;
    }
    /* Shuffle (Fisher-Yates) so puts come back in random order. */
    for (i = BATCH - 1; i > 0; i--) {
      size_t o = (size_t)(zp_test_rand(&rng) % (i + 1));
      held t = h[i];
      h[i] = h[o];
      h[o] = t;
    }
    for (i = 0; i < BATCH; i++) {
      bool use_put = (zp_test_rand(&rng) & 1) != 0;
      size_t w = use_put ? h[i].n : (size_t)(zp_test_rand(&rng) % (h[i].n + 1));
      if (zp_test_rand(&rng) & 1) {
        memset(h[i].p, 0xA5, w);
      } else {
        size_t k;
        for (k = 0; k < w; k++)
          h[i].p[k] = (unsigned char)(zp_test_rand(&rng) | 1);
      }
      if (use_put) {
        zp_put(pool, h[i].p);
        expect_zeroed += h[i].n;
      } else {
        zp_put_used(pool, h[i].p, w);
        expect_zeroed += w;
      }
    }
    assert_int_equal(zeroed(pool), expect_zeroed);
    assert_int_equal(zp_test_stats(pool).outstanding_buffers, 0);
  }
  assert_true(reused > 0);
  assert_true(zp_test_stats(pool).hits > 0);
  free(seen);
}

/* The same after a trim and across a second thread's cache. */
static void test_zero_after_trim(void **state) {
  zp_pool *pool = *state;
  unsigned char *p[8];
  size_t i;
  for (i = 0; i < 8; i++) {
    p[i] = zp_get(pool, 3000 * (i + 1));
    assert_non_null(p[i]);
    memset(p[i], 0xEE, 3000 * (i + 1));
  }
  for (i = 0; i < 4; i++)
    zp_put(pool, p[i]);
  assert_int_equal(zp_pool_trim(pool), 0);
  for (i = 4; i < 8; i++)
    zp_put(pool, p[i]);
  for (i = 0; i < 8; i++) {
    p[i] = zp_get(pool, 3000 * (i + 1));
    assert_non_null(p[i]);
    assert_true(zp_test_all_zero(p[i], 3000 * (i + 1)));
  }
  for (i = 0; i < 8; i++)
    zp_put(pool, p[i]);
}

static void put_used_too_much(void *arg) {
  zp_pool *pool = zp_pool_new(NULL);
  unsigned char *p;
  (void)arg;
  if (pool == NULL)
    _exit(3);
  p = zp_get(pool, 100); /* capacity 4096: 101 is in bounds, still misuse */
  if (p == NULL)
    _exit(3);
  memset(p, 1, 100);
  zp_put_used(pool, p, 101);
}

static void test_put_used_over_size_aborts(void **state) {
  (void)state;
  zp_test_expect_abort(put_used_too_much, NULL, "zp_put_used(size + 1)");
}

static void test_bytes_zeroed_exact_default(void **state) {
  test_bytes_zeroed_exact(state);
}
static void test_bytes_zeroed_exact_small(void **state) {
  test_bytes_zeroed_exact(state);
}
static void test_zero_property_default(void **state) {
  test_zero_property(state);
}
static void test_zero_property_small(void **state) {
  test_zero_property(state);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_bytes_zeroed_exact_default,
                                      setup_default, teardown),
      cmocka_unit_test_setup_teardown(test_bytes_zeroed_exact_small,
                                      setup_small, teardown),
      cmocka_unit_test_setup_teardown(test_reuse_larger_request, setup_default,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_zero_property_default, setup_default,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_zero_property_small, setup_small,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_zero_after_trim, setup_small,
                                      teardown),
      cmocka_unit_test(test_put_used_over_size_aborts),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
