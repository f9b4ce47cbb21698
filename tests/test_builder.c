/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Builder validation (the field named) and zp_pool_config's resolved values. */
#include "test_util.h"

static bool is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

typedef struct bad_case {
  const char *field; /* the name zp_builder_validate must report */
  void (*apply)(zp_builder *b);
} bad_case;

static void shards_3(zp_builder *b) { b->num_shards = 3; }
static void shards_512(zp_builder *b) { b->num_shards = 512; }
static void shards_257(zp_builder *b) { b->num_shards = 257; }
static void min_1000(zp_builder *b) { b->min_buffer_size = 1000; }
static void min_32(zp_builder *b) { b->min_buffer_size = 32; }
static void min_2g(zp_builder *b) { b->min_buffer_size = (size_t)2 << 30; }
static void budget_100(zp_builder *b) { b->max_pooled_bytes = 100; }
static void budget_below_min(zp_builder *b) {
  b->min_buffer_size = 65536;
  b->max_pooled_bytes = 65535;
}
static void tls_100000(zp_builder *b) { b->tls_cache_size = 100000; }
static void tls_4097(zp_builder *b) { b->tls_cache_size = 4097; }
static void per_shard_over(zp_builder *b) {
  b->max_buffers_per_shard = ((size_t)1 << 20) + 1;
}
static void eviction_7(zp_builder *b) { b->eviction_policy = (zp_eviction)7; }
static void verify_3(zp_builder *b) { b->verify_on_get = (zp_verify)3; }
static void pin_policy_2(zp_builder *b) { b->pin_policy = (zp_pinning)2; }
static void fork_3(zp_builder *b) { b->fork_policy = (zp_fork)3; }
static void backing_2(zp_builder *b) { b->backing = (zp_backing)2; }
static void guard_3(zp_builder *b) { b->guard_pages = (zp_guard)3; }
static void quarantine_4097(zp_builder *b) { b->quarantine = 4097; }
static void reserved_0(zp_builder *b) { b->reserved[0] = 1; }
static void reserved_5(zp_builder *b) { b->reserved[5] = UINT64_MAX; }

static const bad_case k_bad[] = {
    {"num_shards", shards_3},
    {"num_shards", shards_512},
    {"num_shards", shards_257},
    {"min_buffer_size", min_1000},
    {"min_buffer_size", min_32},
    {"min_buffer_size", min_2g},
    {"max_pooled_bytes", budget_100},
    {"max_pooled_bytes", budget_below_min},
    {"tls_cache_size", tls_100000},
    {"tls_cache_size", tls_4097},
    {"max_buffers_per_shard", per_shard_over},
    {"eviction_policy", eviction_7},
    {"verify_on_get", verify_3},
    {"pin_policy", pin_policy_2},
    {"fork_policy", fork_3},
    {"backing", backing_2},
    {"guard_pages", guard_3},
    {"quarantine", quarantine_4097},
    {"reserved", reserved_0},
    {"reserved", reserved_5},
};

/* The field name must be the one named (or, for reserved, start with it:
 * "reserved" or "reserved[0]"). */
static void check_field(const char *got, const char *want) {
  if (got == NULL)
    fail_msg("no field named, expected \"%s\"", want);
  if (strcmp(want, "reserved") == 0 ? strncmp(got, want, strlen(want)) != 0
                                    : strcmp(got, want) != 0)
    fail_msg("field \"%s\" named, expected \"%s\"", got, want);
}

static void test_invalid_builders(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < sizeof k_bad / sizeof k_bad[0]; i++) {
    zp_builder b;
    const char *field = NULL;
    zp_pool *pool;
    memset(&b, 0, sizeof b);
    k_bad[i].apply(&b);
    assert_int_equal(zp_builder_validate(&b, &field), -EINVAL);
    check_field(field, k_bad[i].field);
    assert_int_equal(zp_builder_validate(&b, NULL), -EINVAL);
    errno = 0;
    pool = zp_pool_new(&b);
    if (pool != NULL) {
      zp_pool_destroy(pool);
      fail_msg("zp_pool_new accepted a bad %s", k_bad[i].field);
    }
    assert_int_equal(errno, EINVAL);
  }
}

/* Two bad fields: the first in struct order is named, and a bad minimum
 * does not make the budget look wrong. */
static void test_first_bad_field_named(void **state) {
  zp_builder b;
  const char *field = NULL;
  (void)state;
  memset(&b, 0, sizeof b);
  b.tls_cache_size = 5000;
  b.max_pooled_bytes = 1;
  assert_int_equal(zp_builder_validate(&b, &field), -EINVAL);
  assert_string_equal(field, "tls_cache_size");
  memset(&b, 0, sizeof b);
  b.min_buffer_size = (size_t)2 << 30;
  b.max_pooled_bytes = 1 << 20;
  assert_int_equal(zp_builder_validate(&b, &field), -EINVAL);
  assert_string_equal(field, "min_buffer_size");
}

static void test_valid_builders(void **state) {
  zp_builder b;
  const char *field = "untouched";
  zp_pool *pool;
  (void)state;
  memset(&b, 0, sizeof b);
  assert_int_equal(zp_builder_validate(&b, &field), 0);
  assert_int_equal(zp_builder_validate(NULL, &field), 0);
  assert_int_equal(zp_builder_validate(NULL, NULL), 0);
  pool = zp_pool_new(&b);
  assert_non_null(pool);
  zp_pool_destroy(pool);
  pool = zp_pool_new(NULL);
  assert_non_null(pool);
  zp_pool_destroy(pool);

  /* The edges of every range are valid. */
  b.num_shards = 1;
  b.min_buffer_size = 64;
  b.tls_cache_size = 4096;
  b.max_buffers_per_shard = (size_t)1 << 20;
  b.max_pooled_bytes = 64;
  b.eviction_policy = ZP_EVICTION_LIFO;
  assert_int_equal(zp_builder_validate(&b, &field), 0);
  pool = zp_pool_new(&b);
  assert_non_null(pool);
  zp_pool_destroy(pool);

  memset(&b, 0, sizeof b);
  b.num_shards = ZP_MAX_SHARDS;
  b.min_buffer_size = (size_t)1 << 30;
  b.max_pooled_bytes = (size_t)1 << 30;
  b.tls_cache_size = 1;
  b.max_buffers_per_shard = 1;
  b.eviction_policy = ZP_EVICTION_CLOCK_PRO;
  b.pinned_memory = true;
  assert_int_equal(zp_builder_validate(&b, &field), 0);
  pool = zp_pool_new(&b);
  assert_non_null(pool);
  zp_pool_destroy(pool);
}

static void test_config_defaults(void **state) {
  zp_pool *pool = zp_pool_new(NULL);
  zp_builder c;
  size_t i;
  (void)state;
  assert_non_null(pool);
  memset(&c, 0xFF, sizeof c);
  assert_int_equal(zp_pool_config(pool, &c), 0);
  assert_true(is_pow2(c.num_shards));
  assert_in_range(c.num_shards, 1, ZP_MAX_SHARDS);
  assert_int_equal(c.min_buffer_size, 4096);
  assert_true(c.tls_cache_size > 0);
  assert_true(c.tls_cache_size <= 4096);
  assert_true(c.max_buffers_per_shard > 0);
  assert_true(c.max_pooled_bytes > 0);
  assert_true(c.max_pooled_bytes >= c.min_buffer_size);
  assert_int_equal(c.eviction_policy, ZP_EVICTION_CLOCK_PRO);
  assert_false(c.pinned_memory);
  for (i = 0; i < 6; i++)
    assert_int_equal(c.reserved[i], 0);
  /* What config reports is itself a valid builder. */
  assert_int_equal(zp_builder_validate(&c, NULL), 0);
  zp_pool_destroy(pool);
}

static void test_config_keeps_explicit(void **state) {
  zp_builder b, c;
  zp_pool *pool;
  (void)state;
  memset(&b, 0, sizeof b);
  b.tls_cache_size = 7;
  b.min_buffer_size = 128;
  b.max_buffers_per_shard = 33;
  b.num_shards = 8;
  b.max_pooled_bytes = (size_t)3 << 20;
  b.eviction_policy = ZP_EVICTION_LIFO;
  pool = zp_pool_new(&b);
  assert_non_null(pool);
  assert_int_equal(zp_pool_config(pool, &c), 0);
  assert_int_equal(c.tls_cache_size, 7);
  assert_int_equal(c.min_buffer_size, 128);
  assert_int_equal(c.max_buffers_per_shard, 33);
  assert_int_equal(c.num_shards, 8);
  assert_int_equal(c.max_pooled_bytes, (size_t)3 << 20);
  assert_int_equal(c.eviction_policy, ZP_EVICTION_LIFO);
  assert_false(c.pinned_memory);
  zp_pool_destroy(pool);
}

/* A pool created from another pool's resolved config resolves the same. */
static void test_config_round_trip(void **state) {
  zp_pool *a = zp_pool_new(NULL), *b;
  zp_builder ca, cb;
  (void)state;
  assert_non_null(a);
  assert_int_equal(zp_pool_config(a, &ca), 0);
  b = zp_pool_new(&ca);
  assert_non_null(b);
  assert_int_equal(zp_pool_config(b, &cb), 0);
  assert_int_equal(ca.tls_cache_size, cb.tls_cache_size);
  assert_int_equal(ca.min_buffer_size, cb.min_buffer_size);
  assert_int_equal(ca.max_buffers_per_shard, cb.max_buffers_per_shard);
  assert_int_equal(ca.num_shards, cb.num_shards);
  assert_int_equal(ca.max_pooled_bytes, cb.max_pooled_bytes);
  assert_int_equal(ca.pinned_memory, cb.pinned_memory);
  assert_int_equal(ca.eviction_policy, cb.eviction_policy);
  zp_pool_destroy(b);
  zp_pool_destroy(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_invalid_builders),
      cmocka_unit_test(test_first_bad_field_named),
      cmocka_unit_test(test_valid_builders),
      cmocka_unit_test(test_config_defaults),
      cmocka_unit_test(test_config_keeps_explicit),
      cmocka_unit_test(test_config_round_trip),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
