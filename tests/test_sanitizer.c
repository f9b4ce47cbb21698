/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Sanitizer-native mode: under ASan and valgrind, idle buffers and the slack
 * past the size asked for are inaccessible, so use after put and overflow
 * are reported. Skipped in builds without the annotations. */
#include "test_util.h"

#include "zp_testing.h"

#ifdef ZP_TEST_HAVE_MEMCHECK
#include <valgrind/memcheck.h>
#endif
#if defined(__SANITIZE_ADDRESS__)
#define ZP_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZP_TEST_ASAN 1
#endif
#endif
#ifdef ZP_TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

static bool asan_mode(void) {
  return (zp__sanitizer_mode() & ZP__MODE_ASAN) != 0;
}

static bool valgrind_mode(void) {
#ifdef ZP_TEST_HAVE_MEMCHECK
  return (zp__sanitizer_mode() & ZP__MODE_VALGRIND) != 0 && RUNNING_ON_VALGRIND;
#else
  return false;
#endif
}

/* 1: every byte of [p, p + n) may be touched; 0: at least one may not. */
static int accessible(const void *p, size_t n) {
#ifdef ZP_TEST_ASAN
  if (asan_mode())
    return __asan_region_is_poisoned((void *)(uintptr_t)p, n) == NULL;
#endif
#ifdef ZP_TEST_HAVE_MEMCHECK
  if (valgrind_mode()) {
    static unsigned char vbits[1 << 16];
    const unsigned char *c = p;
    /* 3: some byte is unaddressable; 1: all addressable. No error. */
    for (size_t off = 0; off < n; off += sizeof vbits) {
      size_t len = n - off < sizeof vbits ? n - off : sizeof vbits;
      if (VALGRIND_GET_VBITS(c + off, vbits, len) != 1)
        return 0;
    }
    return 1;
  }
#endif
  (void)p;
  (void)n;
  return -1;
}

static void skip_unless_annotated(void) {
  if (!asan_mode() && !valgrind_mode()) {
    print_message("skipped: built without ASan, or not running under "
                  "valgrind with ZP_WITH_VALGRIND\n");
    skip();
  }
}

/* What the program may touch follows get and put, for small and large
 * buffers: [0, size) after get, nothing after put, never the slack. */
static void test_idle_and_slack_inaccessible(void **state) {
  /* Each leaves slack: the byte past the size is inside the class. */
  static const size_t sizes[] = {1, 100, 4000, 5000, 70000, (1 << 20) - 100};
  zp_pool *pool;
  (void)state;
  skip_unless_annotated();
  zp_builder b = {0};
  b.min_buffer_size = 64;
  pool = zp_pool_new(&b);
  assert_non_null(pool);
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    for (int round = 0; round < 2; round++) { /* fresh, then reused */
      size_t n = sizes[i];
      unsigned char *p = zp_get(pool, n);
      assert_non_null(p);
      assert_int_equal(accessible(p, n), 1);
      if (n < 8)
        n = 8; /* ASan shadow granule: bytes below 8 share one */
      if (accessible(p + n, 1) != 0)
        fail_msg("size %zu (round %d): byte %zu past the size is accessible",
                 sizes[i], round, n);
      memset(p, 0x77, sizes[i]);
      zp_put(pool, p);
      assert_int_equal(accessible(p, 1), 0);
    }
  }
  zp_pool_destroy(pool);
}

static zp_pool *g_pool;

static void read_after_put(void *arg) {
  (void)arg;
  volatile unsigned char *p = zp_get(g_pool, 256);
  p[0] = 0x42;
  zp_put(g_pool, (void *)p);
  fprintf(stderr, "read %d\n", p[0]); /* the attack */
}

static void read_past_size(void *arg) {
  (void)arg;
  volatile unsigned char *p = zp_get(g_pool, 100);
  volatile size_t past = 104;            /* hidden from gcc's -Warray-bounds */
  fprintf(stderr, "read %d\n", p[past]); /* past the size, in the class */
  zp_put(g_pool, (void *)p);
}

/* Under ASan the attack itself is reported, in the attacker's frame. */
static void expect_asan_report(zp_test_child_fn fn, const char *frame) {
  zp_test_child_result res;
  zp_builder b = {0};
  b.min_buffer_size = 64;
  g_pool = zp_pool_new(&b);
  assert_non_null(g_pool);
  zp_test_run_child(fn, NULL, &res);
  zp_pool_destroy(g_pool);
  if (strstr(res.output, "AddressSanitizer: use-after-poison") == NULL ||
      strstr(res.output, frame) == NULL)
    fail_msg("no ASan report naming %s; child said:\n%s", frame, res.output);
  assert_false(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0);
}

static void test_asan_reports_read_after_put(void **state) {
  (void)state;
  if (!asan_mode())
    skip();
  expect_asan_report(read_after_put, "read_after_put");
}

static void test_asan_reports_read_past_size(void **state) {
  (void)state;
  if (!asan_mode())
    skip();
  expect_asan_report(read_past_size, "read_past_size");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_idle_and_slack_inaccessible),
      cmocka_unit_test(test_asan_reports_read_after_put),
      cmocka_unit_test(test_asan_reports_read_past_size),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
