/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Hardening options, each attacked: write-after-put caught by verify_on_get,
 * zero_on_get, fork (children keep a working pool; WIPEONFORK children see
 * zeros; DONTFORK children have nothing), and the memfd_secret backing that
 * /proc/self/mem cannot read. */
#include "test_util.h"

#include "pool.h" /* white-box: the fork budget test reads the budget */

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#if ZP_TEST_SANITIZED && defined(__has_include)
#if __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
#endif
#endif

/* A write through a stale pointer, the attack: ASan would report it itself
 * (the buffer is poisoned once put), so the test lifts the poison first to
 * exercise the pool's own check. */
static void stale_write(unsigned char *p, size_t off, unsigned char v) {
#ifdef ASAN_UNPOISON_MEMORY_REGION
  ASAN_UNPOISON_MEMORY_REGION(p + off, 1);
#endif
  ((volatile unsigned char *)p)[off] = v;
}

static zp_pool *new_pool(zp_verify verify, bool zero_on_get) {
  zp_builder b = {0};
  b.verify_on_get = verify;
  b.zero_on_get = zero_on_get;
  zp_pool *pool = zp_pool_new(&b);
  assert_non_null(pool);
  return pool;
}

typedef struct attack {
  zp_verify verify;
  size_t size, offset;
} attack;

static void write_after_put_child(void *arg) {
  const attack *a = arg;
  zp_pool *pool = new_pool(a->verify, false);
  unsigned char *p = zp_get(pool, a->size);
  ZP_CHILD_CHECK(p != NULL);
  memset(p, 0x11, a->size);
  zp_put(pool, p);
  stale_write(p, a->offset, 0x5A);
  p = zp_get(pool, a->size); /* must abort: the same buffer comes back */
  fprintf(stderr, "not caught: %p\n", (void *)p);
}

static void expect_caught(zp_verify verify, size_t size, size_t offset) {
  attack a = {verify, size, offset};
  zp_test_expect_abort(write_after_put_child, &a, "zeropool: zp_get");
}

/* FULL catches a write anywhere in the capacity, slack included. */
static void test_verify_full_catches_write_after_put(void **state) {
  (void)state;
  if (zp_test_under_valgrind())
    skip(); /* the stale write itself is a memcheck error */
  expect_caught(ZP_VERIFY_FULL, 100, 0);
  expect_caught(ZP_VERIFY_FULL, 4096, 4095);
  expect_caught(ZP_VERIFY_FULL, 65536, 30000);
  expect_caught(ZP_VERIFY_FULL, 5000, 7000); /* slack of the 8 KiB class */
}

/* SAMPLED catches a write in the first line of any page or the last line. */
static void test_verify_sampled_catches_sampled_lines(void **state) {
  (void)state;
  if (zp_test_under_valgrind())
    skip();
  expect_caught(ZP_VERIFY_SAMPLED, 65536, 3 * 4096 + 10);
  expect_caught(ZP_VERIFY_SAMPLED, 65536, 65535);
}

/* Without the option the same attack goes unnoticed by the pool, and the
 * next user sees the byte: what the option is for. With zero_on_get the
 * next user sees zeros. */
static void test_zero_on_get_hides_write_after_put(void **state) {
  (void)state;
  if (zp_test_under_valgrind())
    skip();
  for (int zero = 0; zero < 2; zero++) {
    zp_pool *pool = new_pool(ZP_VERIFY_OFF, zero);
    unsigned char *p = zp_get(pool, 4096), *q;
    assert_non_null(p);
    zp_put(pool, p);
    stale_write(p, 123, 0x5A);
    q = zp_get(pool, 4096);
    assert_ptr_equal(q, p);
    assert_int_equal(q[123], zero ? 0 : 0x5A);
    q[123] = 0;
    zp_put(pool, q);
    zp_pool_destroy(pool);
  }
}

/* verify_on_get does not fire on honest use. */
static void test_verify_quiet_on_honest_use(void **state) {
  (void)state;
  for (int v = ZP_VERIFY_SAMPLED; v <= ZP_VERIFY_FULL; v++) {
    zp_pool *pool = new_pool((zp_verify)v, true);
    for (int i = 0; i < 200; i++) {
      size_t n = (size_t)(i * 997) % 70000;
      unsigned char *p = zp_get(pool, n);
      assert_non_null(p);
      assert_true(zp_test_all_zero(p, n));
      memset(p, 0xEE, n);
      if (i % 2)
        zp_put(pool, p);
      else
        zp_put_used(pool, p, n);
    }
    zp_pool_destroy(pool);
  }
}

/* ---- quarantine ---------------------------------------------------------- */

static zp_pool *quarantine_pool(size_t q) {
  zp_builder b = {0};
  b.quarantine = q;
  zp_pool *pool = zp_pool_new(&b);
  assert_non_null(pool);
  return pool;
}

/* A put buffer is not handed out again before `quarantine` later puts; the
 * oldest comes back first; held-back buffers count as idle; trim frees
 * them. Without a quarantine the same buffer comes straight back. */
static void test_quarantine_delays_reuse(void **state) {
  enum { Q = 8 };
  unsigned char *p[Q + 1], *q;
  (void)state;
  zp_pool *plain = quarantine_pool(0);
  q = zp_get(plain, 4096);
  zp_put(plain, q);
  assert_ptr_equal(zp_get(plain, 4096), q); /* immediate reuse */
  zp_put(plain, q);
  zp_pool_destroy(plain);

  zp_pool *pool = quarantine_pool(Q);
  for (int i = 0; i <= Q; i++) {
    p[i] = zp_get(pool, 4096);
    assert_non_null(p[i]);
  }
  for (int i = 0; i < Q; i++)
    zp_put(pool, p[i]);
  q = zp_get(pool, 4096); /* all Q are held back: a fresh one */
  for (int i = 0; i < Q; i++)
    assert_ptr_not_equal(q, p[i]);
  zp_stats s = zp_test_stats(pool);
  assert_int_equal(s.idle_buffers, Q);
  zp_put(pool, p[Q]); /* pushes p[0] out of quarantine */
  assert_ptr_equal(zp_get(pool, 4096), p[0]);
  zp_put(pool, p[0]);
  zp_put(pool, q);
  assert_int_equal(zp_pool_trim(pool), 0);
  s = zp_test_stats(pool);
  assert_int_equal(s.idle_buffers, 0);
  assert_int_equal(s.mapped_bytes, 0);
  assert_int_equal(s.outstanding_buffers, 0);
  zp_pool_destroy(pool);
}

static void stale_double_put(void *arg) {
  size_t q = *(const size_t *)arg;
  zp_pool *pool = quarantine_pool(q);
  unsigned char *a = zp_get(pool, 4096);
  zp_put(pool, a);
  unsigned char *b = zp_get(pool, 4096); /* the next user */
  memset(b, 0x42, 4096);
  zp_put(pool, a); /* the bug: a second put through a stale pointer */
  fprintf(stderr, "not caught: %s\n", a == b ? "same buffer" : "other");
  _exit(b[0] == 0x42 ? 3 : 4);
}

/* With a quarantine a stale second put meets an idle buffer: caught. (Without
 * one the address was handed out again and the put wipes the next user's
 * data: the case a pointer-only API cannot tell from a legitimate put.) */
static void test_quarantine_catches_stale_double_put(void **state) {
  static const size_t q = 4;
  (void)state;
  zp_test_expect_abort(stale_double_put, (void *)&q, "zeropool: zp_put");
}

static void *quarantine_thread(void *arg) {
  zp_pool *pool = arg;
  for (int i = 0; i < 6; i++) {
    unsigned char *p = zp_get(pool, 8192);
    if (p)
      zp_put(pool, p);
  }
  return NULL; /* exit: the held-back buffers go to the shards */
}

static void test_quarantine_flushed_at_thread_exit(void **state) {
  pthread_t t;
  (void)state;
  zp_pool *pool = quarantine_pool(16);
  assert_int_equal(pthread_create(&t, NULL, quarantine_thread, pool), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  zp_stats s = zp_test_stats(pool);
  assert_int_equal(s.outstanding_buffers, 0);
  assert_int_equal(s.idle_buffers, 6);
  unsigned char *p = zp_get(pool, 8192); /* a hit: from a shard */
  assert_int_equal(zp_test_stats(pool).hits, s.hits + 1);
  zp_put(pool, p);
  zp_pool_destroy(pool);
}

/* Over a tight budget the quarantine still holds: the oldest held-back
 * buffer is released, and the newest put is not the next one handed out. */
static void test_quarantine_under_budget_pressure(void **state) {
  (void)state;
  zp_builder b = {0};
  b.quarantine = 1;
  b.max_pooled_bytes = 4096;
  zp_pool *pool = zp_pool_new(&b);
  assert_non_null(pool);
  unsigned char *a = zp_get(pool, 4096), *c = zp_get(pool, 4096);
  zp_put(pool, a);
  zp_put(pool, c); /* no budget for two idle: a leaves quarantine */
  unsigned char *d = zp_get(pool, 4096);
  assert_non_null(d);
  assert_ptr_not_equal(d, c);
  zp_put(pool, d);
  zp_pool_destroy(pool);
}

typedef struct recarve {
  zp_verify verify;
  bool zero;
} recarve;

/* A small slot released to its slab (trim) keeps its page; a stale write
 * lands there. verify_on_get must catch it when the slot is carved again,
 * zero_on_get must wipe it. */
static void stale_write_into_released_slot(void *arg) {
  const recarve *r = arg;
  zp_builder b = {0};
  b.min_buffer_size = 64;
  b.verify_on_get = r->verify;
  b.zero_on_get = r->zero;
  zp_pool *pool = zp_pool_new(&b);
  ZP_CHILD_CHECK(pool != NULL);
  unsigned char *keep = zp_get(pool, 64); /* keeps the slab mapped */
  unsigned char *p = zp_get(pool, 64);
  zp_put(pool, p);
  ZP_CHILD_CHECK(zp_pool_trim(pool) == 0);
  stale_write(p, 0, 0x5A);
  unsigned char *q = zp_get(pool, 64);
  ZP_CHILD_CHECK(q != NULL);
  if (r->zero) {
    ZP_CHILD_CHECK(q[0] == 0);
    _exit(0);
  }
  fprintf(stderr, "not caught: %p %p %d\n", (void *)keep, (void *)q, q[0]);
  _exit(3);
}

static void test_checks_cover_recarved_slots(void **state) {
  (void)state;
  if (zp_test_under_valgrind())
    skip();
  recarve v = {ZP_VERIFY_FULL, false}, z = {ZP_VERIFY_OFF, true};
  zp_test_expect_abort(stale_write_into_released_slot, &v, "zeropool: zp_get");
  zp_test_child_result res;
  zp_test_run_child(stale_write_into_released_slot, &z, &res);
  if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0)
    fail_msg("zero_on_get missed a re-carved slot (status 0x%x): %s",
             res.status, res.output);
}

/* ---- fork ---------------------------------------------------------------- */

static zp_pool *g_pool;
static atomic_bool g_stop;

/* Keeps the pool's locks busy, not only its lock-free fast path: trim takes
 * the registry, every shard and the grow lock; stats takes them too; new
 * sizes take the grow lock. A fork then often copies a held lock, which
 * only the atfork handlers make safe. */
static void *churn(void *arg) {
  (void)arg;
  for (size_t i = 0; !atomic_load(&g_stop); i++) {
    unsigned char *p = zp_get(g_pool, 4096 + (i % 64) * 4096);
    if (p) {
      p[0] = 1;
      zp_put(g_pool, p);
    }
    zp_stats s;
    (void)zp_pool_stats(g_pool, &s);
    (void)zp_pool_trim(g_pool);
  }
  return NULL;
}

static void child_uses_pool(void *arg) {
  (void)arg;
  for (int i = 0; i < 100; i++) {
    unsigned char *p = zp_get(g_pool, 4096 + (size_t)i);
    ZP_CHILD_CHECK(p != NULL);
    ZP_CHILD_CHECK(zp_test_all_zero(p, 4096));
    memset(p, 2, 4096);
    zp_put(g_pool, p);
  }
  ZP_CHILD_CHECK(zp_pool_trim(g_pool) == 0);
  zp_stats s;
  ZP_CHILD_CHECK(zp_pool_stats(g_pool, &s) == 0);
  ZP_CHILD_CHECK(s.idle_buffers == 0);
}

/* Runs fn in n children in turn; the index of the first that failed (its
 * status and output in *res), or -1. */
static int first_failing_child(zp_test_child_fn fn, int n,
                               zp_test_child_result *res) {
  for (int i = 0; i < n; i++) {
    zp_test_run_child(fn, NULL, res);
    if (!WIFEXITED(res->status) || WEXITSTATUS(res->status) != 0)
      return i;
  }
  return -1;
}

/* fork() while another thread is inside the pool: the child's pool is
 * consistent (no lock held by a thread it does not have), usable and
 * trimmable. */
static void test_fork_while_threads_use_pool(void **state) {
  pthread_t t;
  (void)state;
  g_pool = zp_pool_new(NULL);
  assert_non_null(g_pool);
  atomic_store(&g_stop, false);
  assert_int_equal(pthread_create(&t, NULL, churn, NULL), 0);
  static zp_test_child_result res; /* 8 KiB: not on the stack */
  int failed =
      first_failing_child(child_uses_pool, (int)zp_test_iters(20, 4), &res);
  /* Stop the thread before any assert: it must not outlive the test. */
  atomic_store(&g_stop, true);
  assert_int_equal(pthread_join(t, NULL), 0);
  if (failed >= 0)
    fail_msg("child %d failed (status 0x%x): %s", failed, res.status,
             res.output);
  zp_pool_destroy(g_pool);
}

/* A fork can land while another thread is between taking a batch out of
 * its cache and handing it on (to a hand-off slot or a shard): in the
 * child that batch is in no list, and its budget must not be lost with
 * it, or the child's pool keeps less than max_pooled_bytes for good. The
 * child recounts the budget from what it has, so after a trim it reserves
 * nothing. Producers and consumers pass buffers through a ring (spills on
 * one side, refills on the other); without the recount about one fork in
 * five left budget behind. */
#define FORK_RING 256
static void *_Atomic g_ring[FORK_RING];

static void *ring_producer(void *arg) {
  uint64_t seed = (uintptr_t)arg;
  while (!atomic_load(&g_stop)) {
    void *p = zp_get(g_pool, 4096);
    if (!p)
      continue;
    void *old = atomic_exchange(&g_ring[zp_test_rand(&seed) % FORK_RING], p);
    if (old)
      zp_put(g_pool, old);
  }
  return NULL;
}

static void *ring_consumer(void *arg) {
  uint64_t seed = (uintptr_t)arg;
  while (!atomic_load(&g_stop)) {
    void *p = atomic_exchange(&g_ring[zp_test_rand(&seed) % FORK_RING], NULL);
    if (p)
      zp_put(g_pool, p);
  }
  return NULL;
}

static void child_reserves_nothing(void *arg) {
  (void)arg;
  ZP_CHILD_CHECK(zp_pool_trim(g_pool) == 0);
  ZP_CHILD_CHECK(atomic_load(&g_pool->reserved) == 0);
}

static void test_fork_keeps_budget(void **state) {
  zp_builder b;
  pthread_t t[4];
  (void)state;
  memset(&b, 0, sizeof b);
  b.num_shards = 1;
  b.tls_cache_size = 16;
  g_pool = zp_pool_new(&b);
  assert_non_null(g_pool);
  atomic_store(&g_stop, false);
  for (uintptr_t i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL,
                                    i < 2 ? ring_producer : ring_consumer,
                                    (void *)(i + 1)),
                     0);
  static zp_test_child_result res;
  int failed = first_failing_child(child_reserves_nothing,
                                   (int)zp_test_iters(100, 10), &res);
  atomic_store(&g_stop, true);
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_join(t[i], NULL), 0);
  for (int i = 0; i < FORK_RING; i++) {
    void *p = atomic_exchange(&g_ring[i], NULL);
    if (p)
      zp_put(g_pool, p);
  }
  if (failed >= 0)
    fail_msg("child %d failed (status 0x%x): %s", failed, res.status,
             res.output);
  zp_pool_destroy(g_pool);
}

static unsigned char *g_secret;

static void child_sees_zeros(void *arg) {
  (void)arg;
  ZP_CHILD_CHECK(zp_test_all_zero(g_secret, 4096));
  unsigned char *p = zp_get(g_pool, 4096); /* and the pool still works */
  ZP_CHILD_CHECK(p != NULL && zp_test_all_zero(p, 4096));
  zp_put(g_pool, p);
}

/* ZP_FORK_WIPE: a secret held by the parent reads as zero in the child. */
static void test_fork_wipe_child_sees_zeros(void **state) {
  zp_builder b = {0};
  zp_test_child_result res;
  (void)state;
  b.fork_policy = ZP_FORK_WIPE;
  g_pool = zp_pool_new(&b);
  assert_non_null(g_pool);
  g_secret = zp_get(g_pool, 4096);
  assert_non_null(g_secret);
  memset(g_secret, 'S', 4096);
  zp_test_run_child(child_sees_zeros, NULL, &res);
  if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0)
    fail_msg("child failed (status 0x%x): %s", res.status, res.output);
  assert_int_equal(g_secret[0], 'S'); /* the parent keeps its data */
  zp_put(g_pool, g_secret);
  zp_pool_destroy(g_pool);
}

static void child_cannot_reach(void *arg) {
  (void)arg;
  errno = 0;
  ZP_CHILD_CHECK(zp_get(g_pool, 4096) == NULL && errno == ENOMEM);
  (void)signal(SIGSEGV, SIG_DFL); /* not cmocka's handler: die of it */
  fprintf(stderr, "reading the parent's buffer\n");
  fprintf(stderr, "read %d\n", ((volatile unsigned char *)g_secret)[0]);
  _exit(3); /* not reached: the page is not mapped in the child */
}

/* ZP_FORK_DROP: the child has none of the pool's memory; zp_get fails. The
 * same for a secret-backed pool whatever its fork_policy: memfd_secret
 * pages are shared memory, a child would share the parent's secrets. */
static void check_fork_drop(zp_fork policy, zp_backing backing) {
  zp_builder b = {0};
  zp_test_child_result res;
  b.fork_policy = policy;
  b.backing = backing;
  g_pool = zp_pool_new(&b);
  assert_non_null(g_pool);
  g_secret = zp_get(g_pool, 4096);
  assert_non_null(g_secret);
  memset(g_secret, 'S', 4096);
  zp_test_run_child(child_cannot_reach, NULL, &res);
  bool segv = WIFSIGNALED(res.status) && WTERMSIG(res.status) == SIGSEGV;
  bool asan_segv = strstr(res.output, "SEGV") != NULL; /* ASan's handler */
  if (!(segv || asan_segv) || strstr(res.output, "reading") == NULL)
    fail_msg("child was not stopped by the missing page (status 0x%x): %s",
             res.status, res.output);
  zp_put(g_pool, g_secret);
  zp_pool_destroy(g_pool);
}

static void test_fork_drop_child_has_nothing(void **state) {
  (void)state;
  if (zp_test_under_valgrind())
    skip(); /* the child's fault is a memcheck error */
  check_fork_drop(ZP_FORK_DROP, ZP_BACKING_ANONYMOUS);
  check_fork_drop(ZP_FORK_COPY, ZP_BACKING_SECRET);
}

/* ---- memfd_secret -------------------------------------------------------- */

/* ZP_BACKING_SECRET: where the kernel has memfd_secret, buffers live there
 * and /proc/self/mem cannot read them; elsewhere the pool says it fell back
 * (anonymous + pinned) and counts no secret bytes. */
static void test_secret_backing(void **state) {
  zp_builder b = {0}, cfg;
  zp_stats s;
  (void)state;
  b.backing = ZP_BACKING_SECRET;
  zp_pool *pool = zp_pool_new(&b);
  assert_non_null(pool);
  assert_int_equal(zp_pool_config(pool, &cfg), 0);
  assert_true(cfg.pinned_memory);
  unsigned char *p = zp_get(pool, 8192);
  assert_non_null(p);
  assert_true(zp_test_all_zero(p, 8192));
  memset(p, 'K', 8192);
  s = zp_test_stats(pool);
  if (cfg.backing == ZP_BACKING_SECRET) {
    assert_true(s.secret_bytes >= 8192);
    int fd = open("/proc/self/mem", O_RDONLY);
    assert_true(fd >= 0);
    unsigned char c = 0;
    ssize_t r = pread(fd, &c, 1, (off_t)(uintptr_t)p);
    close(fd);
    if (r == 1)
      fail_msg("/proc/self/mem read a secret byte (0x%02x)", c);
  } else {
    print_message("memfd_secret unavailable here: fell back\n");
    assert_int_equal(s.secret_bytes, 0);
  }
  zp_put(pool, p);
  assert_int_equal(zp_pool_trim(pool), 0);
  s = zp_test_stats(pool);
  assert_int_equal(s.secret_bytes, 0);
  assert_int_equal(s.mapped_bytes, 0);
  zp_pool_destroy(pool);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_verify_full_catches_write_after_put),
      cmocka_unit_test(test_verify_sampled_catches_sampled_lines),
      cmocka_unit_test(test_zero_on_get_hides_write_after_put),
      cmocka_unit_test(test_verify_quiet_on_honest_use),
      cmocka_unit_test(test_quarantine_delays_reuse),
      cmocka_unit_test(test_quarantine_catches_stale_double_put),
      cmocka_unit_test(test_quarantine_flushed_at_thread_exit),
      cmocka_unit_test(test_quarantine_under_budget_pressure),
      cmocka_unit_test(test_checks_cover_recarved_slots),
      cmocka_unit_test(test_fork_while_threads_use_pool),
      cmocka_unit_test(test_fork_keeps_budget),
      cmocka_unit_test(test_fork_wipe_child_sees_zeros),
      cmocka_unit_test(test_fork_drop_child_has_nothing),
      cmocka_unit_test(test_secret_backing),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
