/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Guard pages: an overflow or underflow off a mapping's end, or (with
 * ZP_GUARD_BUFFERS) off a 4..64 KiB buffer's end, dies with SIGSEGV instead
 * of reaching other memory; and their accounting. */
#include "test_util.h"

typedef struct poke {
  zp_guard guard;
  size_t size;
  ptrdiff_t offset; /* from the buffer's start */
} poke;

static void poke_child(void *arg) {
  const poke *k = arg;
  zp_builder b = {0};
  b.guard_pages = k->guard;
  zp_pool *pool = zp_pool_new(&b);
  ZP_CHILD_CHECK(pool != NULL);
  volatile unsigned char *p = zp_get(pool, k->size);
  ZP_CHILD_CHECK(p != NULL);
  (void)signal(SIGSEGV, SIG_DFL); /* not cmocka's handler: die of it */
  fprintf(stderr, "poking\n");
  volatile ptrdiff_t off = k->offset; /* hidden from -Warray-bounds */
  p[off] = 0x41;
  _exit(3); /* reached only when nothing guarded the byte */
}

/* Stopped at the poke: SIGSEGV, or under ASan its report of the SEGV, or
 * of the poisoned guard page (ASan sees the slab's guards as poisoned). */
static bool died_of_segv(const zp_test_child_result *res) {
  if (WIFSIGNALED(res->status) && WTERMSIG(res->status) == SIGSEGV)
    return true;
  return strstr(res->output, "AddressSanitizer: SEGV") != NULL ||
         strstr(res->output, "AddressSanitizer: use-after-poison") != NULL;
}

static void expect_segv(zp_guard guard, size_t size, ptrdiff_t offset) {
  poke k = {guard, size, offset};
  zp_test_child_result res;
  zp_test_run_child(poke_child, &k, &res);
  if (!died_of_segv(&res))
    fail_msg("guard %d, size %zu, offset %td: no SIGSEGV (status 0x%x): %s",
             (int)guard, size, offset, res.status, res.output);
}

static void skip_if_checked_elsewhere(void) {
  if (zp_test_under_valgrind())
    skip(); /* the poke itself is a memcheck error */
}

/* Default: a buffer with its own mapping (> 64 KiB) is guarded both ends. */
static void test_large_buffer_guarded_both_ends(void **state) {
  (void)state;
  skip_if_checked_elsewhere();
  expect_segv(ZP_GUARD_SPANS, ZP_MIB, (ptrdiff_t)ZP_MIB);
  expect_segv(ZP_GUARD_SPANS, ZP_MIB, -1);
  expect_segv(ZP_GUARD_SPANS, 100 * ZP_KIB, 112 * ZP_KIB); /* class: 112 KiB */
}

/* Default: a slab is guarded at its ends (the first slot's underflow). */
static void test_slab_guarded_at_ends(void **state) {
  (void)state;
  skip_if_checked_elsewhere();
  expect_segv(ZP_GUARD_SPANS, 4096, -1);
  expect_segv(ZP_GUARD_SPANS, 64, -1);
}

/* ZP_GUARD_BUFFERS: a 4..64 KiB buffer is guarded right after its end. */
static void test_buffer_guards(void **state) {
  (void)state;
  skip_if_checked_elsewhere();
  expect_segv(ZP_GUARD_BUFFERS, 4096, 4096);
  expect_segv(ZP_GUARD_BUFFERS, 64 * ZP_KIB, 64 * ZP_KIB);
}

/* Accounting: 2 guard pages per mapping by default, none when off, and one
 * more per slot with ZP_GUARD_BUFFERS; all gone after trim. Buffers keep
 * their alignment and zeroes. */
static void test_guard_accounting(void **state) {
  (void)state;
  for (int g = ZP_GUARD_SPANS; g <= ZP_GUARD_BUFFERS; g++) {
    zp_builder b = {0};
    b.guard_pages = (zp_guard)g;
    zp_pool *pool = zp_pool_new(&b);
    assert_non_null(pool);
    unsigned char *p = zp_get(pool, 4096);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 4096, 0);
    assert_true(zp_test_all_zero(p, 4096));
    zp_stats s = zp_test_stats(pool);
    assert_int_equal(s.os_maps, 1);
    if (g == ZP_GUARD_OFF)
      assert_int_equal(s.guard_pages, 0);
    else if (g == ZP_GUARD_SPANS)
      assert_int_equal(s.guard_pages, 2);
    else
      assert_true(s.guard_pages > 2); /* + one per slot */
    zp_put(pool, p);
    assert_int_equal(zp_pool_trim(pool), 0);
    s = zp_test_stats(pool);
    assert_int_equal(s.guard_pages, 0);
    zp_pool_destroy(pool);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_large_buffer_guarded_both_ends),
      cmocka_unit_test(test_slab_guarded_at_ends),
      cmocka_unit_test(test_buffer_guards),
      cmocka_unit_test(test_guard_accounting),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
