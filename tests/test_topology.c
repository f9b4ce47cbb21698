/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Topology detection and zp__config_resolve on made-up machines. */
#include "test_util.h"

#include "zp_testing.h"

static bool is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

static size_t next_pow2(size_t x) {
  size_t p = 1;
  while (p < x)
    p <<= 1;
  return p;
}

static void test_detect(void **state) {
  zp__topology t;
  (void)state;
  memset(&t, 0, sizeof t);
  zp__topology_detect(&t);
  assert_true(t.pus >= 1);
  assert_true(t.cores >= 1);
  assert_true(t.cores <= t.pus);
  assert_non_null(t.source);
  if (strcmp(t.source, "hwloc") != 0 && strcmp(t.source, "sysconf") != 0)
    fail_msg("topology source \"%s\"", t.source);
  /* No more logical CPUs than sysconf knows of (when it knows). */
  {
    long conf = sysconf(_SC_NPROCESSORS_CONF);
    long onln = sysconf(_SC_NPROCESSORS_ONLN);
    long most = conf > onln ? conf : onln;
    if (most > 0)
      assert_true((long)t.pus <= most);
  }
  print_message("topology: %u PUs, %u cores, %u L3, L2 %zu, L3 %zu, RAM %zu "
                "(%s)\n",
                t.pus, t.cores, t.l3_domains, t.l2_bytes, t.l3_bytes,
                t.ram_bytes, t.source);
}

/* A pool with defaults resolves as zp__config_resolve says for the detected
 * machine. */
static void test_pool_uses_formula(void **state) {
  zp__topology t;
  zp_builder zero, want, got;
  zp_pool *pool;
  (void)state;
  zp__topology_detect(&t);
  memset(&zero, 0, sizeof zero);
  assert_int_equal(zp__config_resolve(&t, &zero, &want, NULL), 0);
  pool = zp_pool_new(NULL);
  assert_non_null(pool);
  assert_int_equal(zp_pool_config(pool, &got), 0);
  assert_int_equal(got.num_shards, want.num_shards);
  assert_int_equal(got.tls_cache_size, want.tls_cache_size);
  assert_int_equal(got.min_buffer_size, want.min_buffer_size);
  assert_int_equal(got.max_buffers_per_shard, want.max_buffers_per_shard);
  assert_int_equal(got.max_pooled_bytes, want.max_pooled_bytes);
  assert_int_equal(got.eviction_policy, want.eviction_policy);
  zp_pool_destroy(pool);
}

/* The documented default: next power of two >= 2 x cores, in [4, 256]. */
static size_t want_shards(unsigned cores) {
  size_t n = next_pow2(2 * (size_t)cores);
  return n < 4 ? 4 : n > ZP_MAX_SHARDS ? ZP_MAX_SHARDS : n;
}

static zp__topology machine(unsigned cores, unsigned smt, size_t l2,
                            size_t ram) {
  zp__topology t;
  memset(&t, 0, sizeof t);
  t.cores = cores;
  t.pus = cores * smt;
  t.l3_domains = cores >= 16 ? cores / 8 : 1;
  t.l2_bytes = l2;
  t.l3_bytes = 32 * ZP_MIB;
  t.ram_bytes = ram;
  t.source = "sysconf";
  return t;
}

/*
 * Made-up machines with 4..128 cores: num_shards is a power of two, at least
 * 2 x cores (up to 256), within [4, 256], never smaller for more cores;
 * tls_cache_size in [4, 16]; max_pooled_bytes 16 MiB per core, at least
 * 64 MiB, at most 1/8 of RAM; min_buffer_size 4 KiB; eviction LIFO.
 */
static void test_resolve_made_up_machines(void **state) {
  static const unsigned cores[] = {1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 96, 128};
  static const size_t l2s[] = {0, 256 * 1024, 512 * 1024, 1 << 20, 2 << 20};
  size_t prev_shards = 0, i, j;
  (void)state;
  for (i = 0; i < sizeof cores / sizeof cores[0]; i++) {
    const size_t ram = (size_t)64 << 30; /* RAM/8 = 8 GiB: not binding */
    zp__topology t = machine(cores[i], 1, 512 * 1024, ram);
    zp_builder in, out;
    const char *field = NULL;
    size_t want_budget;
    memset(&in, 0, sizeof in);
    assert_int_equal(zp__config_resolve(&t, &in, &out, &field), 0);
    assert_true(is_pow2(out.num_shards));
    assert_in_range(out.num_shards, 4, ZP_MAX_SHARDS);
    if (out.num_shards < 2 * (size_t)cores[i] && out.num_shards < 256)
      fail_msg("%u cores: %zu shards (< 2 x cores)", cores[i], out.num_shards);
    assert_int_equal(out.num_shards, want_shards(cores[i]));
    if (out.num_shards < prev_shards)
      fail_msg("%u cores: %zu shards, fewer than for fewer cores (%zu)",
               cores[i], out.num_shards, prev_shards);
    prev_shards = out.num_shards;
    assert_in_range(out.tls_cache_size, 4, 16);
    assert_int_equal(out.min_buffer_size, 4096);
    assert_int_equal(out.max_buffers_per_shard, 64);
    assert_int_equal(out.eviction_policy, ZP_EVICTION_CLOCK_PRO);
    want_budget = 16 * ZP_MIB * cores[i];
    if (want_budget < 64 * ZP_MIB)
      want_budget = 64 * ZP_MIB;
    assert_int_equal(out.max_pooled_bytes, want_budget);
    assert_int_equal(zp_builder_validate(&out, NULL), 0);

    /* SMT: shards follow cores at least. */
    t = machine(cores[i], 2, 512 * 1024, ram);
    assert_int_equal(zp__config_resolve(&t, &in, &out, NULL), 0);
    assert_true(is_pow2(out.num_shards));
    assert_true(out.num_shards >= 2 * (size_t)cores[i] ||
                out.num_shards == 256);

    /* The RAM cap: 1/8 of 2 GiB = 256 MiB, below 16 MiB x 64 cores. */
    t = machine(cores[i], 1, 512 * 1024, (size_t)2 << 30);
    assert_int_equal(zp__config_resolve(&t, &in, &out, NULL), 0);
    assert_true(out.max_pooled_bytes <= ((size_t)2 << 30) / 8);
    assert_true(out.max_pooled_bytes >= out.min_buffer_size);

    /* Any L2 size (unknown too) gives a TLS cache of 4..16. */
    for (j = 0; j < sizeof l2s / sizeof l2s[0]; j++) {
      t = machine(cores[i], 1, l2s[j], ram);
      assert_int_equal(zp__config_resolve(&t, &in, &out, NULL), 0);
      assert_in_range(out.tls_cache_size, 4, 16);
    }
  }
}

/* Explicit values pass through; in and out may alias; unknown RAM works. */
static void test_resolve_explicit_and_alias(void **state) {
  zp__topology t = machine(8, 2, 1 << 20, 0);
  zp_builder b;
  (void)state;
  memset(&b, 0, sizeof b);
  assert_int_equal(zp__config_resolve(&t, &b, &b, NULL), 0);
  assert_true(is_pow2(b.num_shards));
  assert_true(b.max_pooled_bytes > 0);
  assert_true(b.tls_cache_size > 0);

  memset(&b, 0, sizeof b);
  b.num_shards = 2;
  b.tls_cache_size = 9;
  b.min_buffer_size = 256;
  b.max_buffers_per_shard = 5;
  b.max_pooled_bytes = 12345;
  b.eviction_policy = ZP_EVICTION_CLOCK_PRO;
  assert_int_equal(zp__config_resolve(&t, &b, &b, NULL), 0);
  assert_int_equal(b.num_shards, 2);
  assert_int_equal(b.tls_cache_size, 9);
  assert_int_equal(b.min_buffer_size, 256);
  assert_int_equal(b.max_buffers_per_shard, 5);
  assert_int_equal(b.max_pooled_bytes, 12345);
  assert_int_equal(b.eviction_policy, ZP_EVICTION_CLOCK_PRO);
}

typedef struct bad_case {
  const char *field;
  void (*apply)(zp_builder *b);
} bad_case;

static void shards_3(zp_builder *b) { b->num_shards = 3; }
static void shards_512(zp_builder *b) { b->num_shards = 512; }
static void min_1000(zp_builder *b) { b->min_buffer_size = 1000; }
static void min_32(zp_builder *b) { b->min_buffer_size = 32; }
static void budget_100(zp_builder *b) { b->max_pooled_bytes = 100; }
static void tls_100000(zp_builder *b) { b->tls_cache_size = 100000; }
static void per_shard_over(zp_builder *b) {
  b->max_buffers_per_shard = ((size_t)1 << 20) + 1;
}
static void eviction_7(zp_builder *b) { b->eviction_policy = (zp_eviction)7; }
static void reserved_0(zp_builder *b) { b->reserved[0] = 1; }

static void test_resolve_rejects(void **state) {
  static const bad_case bad[] = {
      {"num_shards", shards_3},
      {"num_shards", shards_512},
      {"min_buffer_size", min_1000},
      {"min_buffer_size", min_32},
      {"max_pooled_bytes", budget_100},
      {"tls_cache_size", tls_100000},
      {"max_buffers_per_shard", per_shard_over},
      {"eviction_policy", eviction_7},
      {"reserved", reserved_0},
  };
  zp__topology t = machine(16, 2, 1 << 20, (size_t)32 << 30);
  size_t i;
  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    zp_builder in, out;
    const char *field = NULL;
    memset(&in, 0, sizeof in);
    bad[i].apply(&in);
    assert_int_equal(zp__config_resolve(&t, &in, &out, &field), -EINVAL);
    assert_non_null(field);
    if (strncmp(field, bad[i].field, strlen(bad[i].field)) != 0)
      fail_msg("field \"%s\" named, expected \"%s\"", field, bad[i].field);
    assert_int_equal(zp__config_resolve(&t, &in, &out, NULL), -EINVAL);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_detect),
      cmocka_unit_test(test_pool_uses_formula),
      cmocka_unit_test(test_resolve_made_up_machines),
      cmocka_unit_test(test_resolve_explicit_and_alias),
      cmocka_unit_test(test_resolve_rejects),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
