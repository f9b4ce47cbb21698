/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Fault injection: every failing OS acquisition is a clean ENOMEM. */
#include "test_util.h"

#include "zp_testing.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct fault_ctx {
  atomic_int visible; /* calls that reported a failure */
  atomic_int bad;     /* contract violations */
} fault_ctx;

#define BAD(ctx, ...)                                                          \
  do {                                                                         \
    fprintf(stderr, "fault: " __VA_ARGS__);                                    \
    fputc('\n', stderr);                                                       \
    atomic_fetch_add(&(ctx)->bad, 1);                                          \
  } while (0)

/* zp_get that may fail once with ENOMEM; the retry must succeed. */
static unsigned char *get_checked(fault_ctx *ctx, zp_pool *pool, size_t n) {
  unsigned char *p;
  errno = 0;
  p = zp_get(pool, n);
  if (p == NULL) {
    if (errno != ENOMEM)
      BAD(ctx, "get(%zu) failed with errno %d, not ENOMEM", n, errno);
    atomic_fetch_add(&ctx->visible, 1);
    p = zp_get(pool, n);
    if (p == NULL) {
      BAD(ctx, "get(%zu) failed again after the injected failure", n);
      return NULL;
    }
  }
  if (!zp_test_all_zero(p, n))
    BAD(ctx, "get(%zu) not zero", n);
  if (zp_buffer_size(pool, p) != n)
    BAD(ctx, "zp_buffer_size %zu, want %zu", zp_buffer_size(pool, p), n);
  if (n > 0)
    memset(p, 0xAB, n);
  return p;
}

typedef struct thread_job {
  fault_ctx *ctx;
  zp_pool *pool;
} thread_job;

static void *second_thread(void *arg) {
  thread_job *j = arg;
  static const size_t sizes[] = {64, 65536, 100, 8192};
  void *p[4];
  size_t i;
  for (i = 0; i < 4; i++)
    p[i] = get_checked(j->ctx, j->pool, sizes[i]);
  for (i = 0; i < 4; i++)
    zp_put(j->pool, p[i]);
  /* Again, from this thread's cache. */
  p[0] = get_checked(j->ctx, j->pool, 64);
  zp_put_used(j->pool, p[0], 64);
  return NULL;
}

static zp_pool *new_checked(fault_ctx *ctx, const zp_builder *b) {
  zp_pool *pool;
  errno = 0;
  pool = zp_pool_new(b);
  if (pool == NULL) {
    if (errno != ENOMEM)
      BAD(ctx, "zp_pool_new failed with errno %d, not ENOMEM", errno);
    atomic_fetch_add(&ctx->visible, 1);
    pool = zp_pool_new(b);
    if (pool == NULL)
      BAD(ctx, "zp_pool_new failed again after the injected failure");
  }
  return pool;
}

/* Create, get several sizes, put some, get from a second thread, trim,
 * check nothing is left mapped, destroy with a buffer out, put it late. */
/* The hardened sweep runs the same scenario with every option that makes
 * its own system calls: mlock, MADV_WIPEONFORK, guard pages (mprotect),
 * memfd_secret, and verify-on-get. */
static bool g_hardened;

static void scenario(fault_ctx *ctx) {
  static const size_t sizes[] = {64, 65536, 2 * 1048576, 100, 4096, 5000, 64};
  enum { N = sizeof sizes / sizeof sizes[0] };
  zp_builder b;
  zp_pool *pool, *pool2;
  unsigned char *p[N], *late;
  pthread_t t;
  thread_job job;
  zp_stats s;
  size_t i;
  int rc;

  memset(&b, 0, sizeof b);
  b.min_buffer_size = 64;
  if (g_hardened) {
    b.pinned_memory = true;
    b.fork_policy = ZP_FORK_WIPE;
    b.guard_pages = ZP_GUARD_BUFFERS;
    b.backing = ZP_BACKING_SECRET;
    b.verify_on_get = ZP_VERIFY_FULL;
  }
  pool = new_checked(ctx, &b);
  if (pool == NULL)
    return;
  for (i = 0; i < N; i++)
    p[i] = get_checked(ctx, pool, sizes[i]);
  for (i = 0; i < N; i += 2)
    zp_put(pool, p[i]);
  for (i = 0; i < N; i += 2) /* hits now, mostly */
    p[i] = get_checked(ctx, pool, sizes[i]);

  job.ctx = ctx;
  job.pool = pool;
  if (pthread_create(&t, NULL, second_thread, &job) != 0)
    BAD(ctx, "pthread_create");
  else
    pthread_join(t, NULL);

  for (i = 0; i < N; i++)
    zp_put(pool, p[i]);
  rc = zp_pool_trim(pool);
  if (rc != 0 && rc != -ENOMEM)
    BAD(ctx, "trim returned %d", rc);
  if (rc != 0)
    atomic_fetch_add(&ctx->visible, 1);
  if (zp_pool_stats(pool, &s) != 0) {
    BAD(ctx, "stats failed");
  } else {
    if (s.outstanding_buffers != 0)
      BAD(ctx, "%llu buffers outstanding",
          (unsigned long long)s.outstanding_buffers);
    if (s.gets != s.puts)
      BAD(ctx, "gets %llu != puts %llu", (unsigned long long)s.gets,
          (unsigned long long)s.puts);
    if (rc == 0 && (s.os_maps != 0 || s.mapped_bytes != 0))
      BAD(ctx, "after trim: %llu maps, %llu bytes still mapped",
          (unsigned long long)s.os_maps, (unsigned long long)s.mapped_bytes);
  }
  /* Still works after all of that. */
  p[0] = get_checked(ctx, pool, 64);
  zp_put(pool, p[0]);

  /* A second pool destroyed with a buffer out, which is put afterwards. */
  pool2 = new_checked(ctx, NULL);
  if (pool2 != NULL) {
    late = get_checked(ctx, pool2, 12345);
    zp_pool_destroy(pool2);
    if (late != NULL) {
      memset(late, 1, 12345);
      zp_put(pool2, late);
    }
  }
  zp_pool_destroy(pool);
}

static void sweep(void) {
  const unsigned long cap = 400;
  unsigned long n, injected = 0, visible = 0;
  bool clean = false;
  for (n = 1; n <= cap; n++) {
    fault_ctx ctx;
    unsigned long before, used;
    atomic_init(&ctx.visible, 0);
    atomic_init(&ctx.bad, 0);
    before = zp__os_acquisitions();
    zp__os_fail_nth(n);
    scenario(&ctx);
    zp__os_fail_nth(0);
    used = zp__os_acquisitions() - before;
    if (atomic_load(&ctx.bad) != 0)
      fail_msg("failing acquisition %lu of %lu: %d contract violations "
               "(see stderr)",
               n, used, atomic_load(&ctx.bad));
    if (atomic_load(&ctx.visible) > 1)
      fail_msg("failing acquisition %lu: %d calls failed, one expected", n,
               atomic_load(&ctx.visible));
    if (used < n) {
      /* The n-th acquisition never came: the scenario ran clean. */
      if (atomic_load(&ctx.visible) != 0)
        fail_msg("no failure injected (%lu acquisitions) but a call failed",
                 used);
      clean = true;
      break;
    }
    injected++;
    visible += (unsigned long)atomic_load(&ctx.visible);
  }
  if (!clean)
    print_message("fault sweep stopped at the cap (%lu): the scenario makes "
                  "more acquisitions\n",
                  cap);
  print_message("fault sweep: %lu scenarios with an injected failure, %lu "
                "of them seen by the caller\n",
                injected, visible);
  assert_true(injected > 0); /* the scenario does acquire memory */
  assert_true(visible > 0);  /* and some failures reach the caller */
}

static void test_fail_nth_sweep(void **state) {
  (void)state;
  g_hardened = false;
  sweep();
}

/* mlock, madvise, mprotect and memfd_secret failures too: each is a clean
 * ENOMEM, a counted pin failure or a fallback, never a crash or a leak. */
static void test_fail_nth_sweep_hardened(void **state) {
  (void)state;
  g_hardened = true;
  sweep();
  g_hardened = false;
}

/* With injection off the scenario never fails. */
static void test_no_injection(void **state) {
  fault_ctx ctx;
  (void)state;
  atomic_init(&ctx.visible, 0);
  atomic_init(&ctx.bad, 0);
  zp__os_fail_nth(0);
  scenario(&ctx);
  assert_int_equal(atomic_load(&ctx.bad), 0);
  assert_int_equal(atomic_load(&ctx.visible), 0);
}

/* Every acquisition a steady get/put loop makes fails in turn: once the
 * pool is warm, hits need no acquisitions at all. */
static void test_warm_pool_needs_no_memory(void **state) {
  zp_pool *pool = zp_pool_new(NULL);
  void *p;
  unsigned long before;
  size_t i;
  (void)state;
  assert_non_null(pool);
  p = zp_get(pool, 65536);
  assert_non_null(p);
  zp_put(pool, p);
  before = zp__os_acquisitions();
  zp__os_fail_nth(1); /* the very next acquisition would fail */
  for (i = 0; i < 1000; i++) {
    p = zp_get(pool, 65536);
    assert_non_null(p);
    zp_put(pool, p);
  }
  zp__os_fail_nth(0);
  assert_int_equal(zp__os_acquisitions(), before);
  zp_pool_destroy(pool);
}

/* Repeated failures: gets of new sizes, each with its first acquisition
 * failing, fail cleanly (ENOMEM, not counted), leave nothing mapped behind,
 * and the pool then works. */
static void test_repeated_failures(void **state) {
  zp_pool *pool = zp_pool_new(NULL);
  zp_stats s;
  void *p;
  int i, failed = 0;
  (void)state;
  assert_non_null(pool);
  for (i = 0; i < 50; i++) {
    zp__os_fail_nth(1);
    errno = 0;
    p = zp_get(pool, (size_t)(i + 1) * 65536);
    zp__os_fail_nth(0);
    if (p == NULL) {
      assert_int_equal(errno, ENOMEM);
      failed++;
    } else {
      zp_put(pool, p);
    }
  }
  s = zp_test_stats(pool);
  assert_int_equal(s.outstanding_buffers, 0);
  assert_int_equal(s.gets, (uint64_t)(50 - failed));
  assert_int_equal(zp_pool_trim(pool), 0);
  s = zp_test_stats(pool);
  assert_int_equal(s.os_maps, 0);
  assert_int_equal(s.mapped_bytes, 0);
  p = zp_get(pool, 65536);
  assert_non_null(p);
  zp_put(pool, p);
  zp_pool_destroy(pool);
}

int main(void) {
  int rc;
  const struct CMUnitTest tests[] = {
      /* First, so that one-time global set-up is swept as well. */
      cmocka_unit_test(test_fail_nth_sweep),
      cmocka_unit_test(test_fail_nth_sweep_hardened),
      cmocka_unit_test(test_no_injection),
      cmocka_unit_test(test_warm_pool_needs_no_memory),
      cmocka_unit_test(test_repeated_failures),
  };
  zp_test_apply_filter();
  rc = cmocka_run_group_tests(tests, NULL, NULL);
  zp__os_fail_nth(0);
  return rc;
}
