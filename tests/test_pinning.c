/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Pinning: VmLck rises, pinned_bytes, pin_failures when mlock is refused. */
#include "test_util.h"

#include <linux/capability.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static zp_pool *new_pinned_pool(void) {
  zp_builder b;
  zp_pool *pool;
  memset(&b, 0, sizeof b);
  b.pinned_memory = true;
  pool = zp_pool_new(&b);
  assert_non_null(pool);
  return pool;
}

static void test_config_reports_pinned(void **state) {
  zp_pool *pool = new_pinned_pool();
  zp_builder cfg;
  (void)state;
  assert_int_equal(zp_pool_config(pool, &cfg), 0);
  assert_true(cfg.pinned_memory);
  zp_pool_destroy(pool);
}

/*
 * While 1 MiB of buffers is held, VmLck rises by at least 1 MiB and
 * stats.pinned_bytes covers them; after they are put and trimmed, nothing
 * stays pinned. The VmLck part is skipped under ASan/TSan (mlock is
 * intercepted and locks nothing), under valgrind (LD_PRELOAD names
 * vgpreload) and in quick mode (the valgrind/tsan Makefile targets set it);
 * stats are still checked there.
 */
static void test_vmlck_rises(void **state) {
  enum { N = 4 };
  const size_t n = 256 * ZP_KIB;
  zp_pool *pool = new_pinned_pool();
  bool check_vmlck = !zp_test_mlock_intercepted();
  long long before = zp_test_vmlck_bytes(), during, after;
  unsigned char *p[N];
  zp_stats s;
  size_t i;
  (void)state;
  if (before < 0)
    check_vmlck = false;
  for (i = 0; i < N; i++) {
    p[i] = zp_get(pool, n);
    assert_non_null(p[i]);
    assert_true(zp_test_all_zero(p[i], n));
    memset(p[i], 0x5C, n);
  }
  s = zp_test_stats(pool);
  if (ZP_TEST_SANITIZED) {
    /* ASan and TSan intercept mlock and lock nothing: the pool must say so
     * (refused, nothing pinned), not pretend. */
    assert_int_equal(s.pinned_bytes, 0);
    assert_true(s.pin_failures >= N);
  } else {
    assert_true(s.pinned_bytes > 0);
    if (s.pin_failures == 0)
      assert_true(s.pinned_bytes >= N * n);
  }
  during = zp_test_vmlck_bytes();
  if (check_vmlck) {
    if (s.pin_failures != 0)
      fail_msg("mlock refused %llu times (RLIMIT_MEMLOCK too low?)",
               (unsigned long long)s.pin_failures);
    if (during - before < (long long)(N * n))
      fail_msg("VmLck rose by %lld bytes while %zu bytes are held",
               during - before, N * n);
  } else {
    print_message("VmLck check skipped: mlock is intercepted here "
                  "(sanitizer, valgrind or ZP_TEST_QUICK)\n");
  }
  for (i = 0; i < N; i++)
    zp_put(pool, p[i]);
  assert_int_equal(zp_pool_trim(pool), 0);
  s = zp_test_stats(pool);
  assert_int_equal(s.pinned_bytes, 0);
  assert_int_equal(s.mapped_bytes, 0);
  after = zp_test_vmlck_bytes();
  if (check_vmlck && after > before)
    fail_msg("VmLck %lld bytes after trim, %lld before", after, before);
  zp_pool_destroy(pool);
}

/* An unpinned pool pins nothing. */
static void test_unpinned_pins_nothing(void **state) {
  zp_pool *pool = zp_pool_new(NULL);
  long long before = zp_test_vmlck_bytes(), during;
  void *p;
  zp_stats s;
  (void)state;
  assert_non_null(pool);
  p = zp_get(pool, ZP_MIB);
  assert_non_null(p);
  s = zp_test_stats(pool);
  assert_int_equal(s.pinned_bytes, 0);
  assert_int_equal(s.pin_failures, 0);
  during = zp_test_vmlck_bytes();
  if (!zp_test_mlock_intercepted() && before >= 0)
    assert_true(during - before < (long long)ZP_MIB);
  zp_put(pool, p);
  zp_pool_destroy(pool);
}

/* A thread's cache of pinned buffers is released by zp_pool_destroy on
 * another thread: VmLck falls back while the thread is still alive. */
typedef struct cache_holder {
  zp_pool *pool;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int step;
  atomic_int errors;
} cache_holder;

static void holder_set(cache_holder *h, int step) {
  pthread_mutex_lock(&h->mu);
  h->step = step;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

static void holder_wait(cache_holder *h, int step) {
  pthread_mutex_lock(&h->mu);
  while (h->step < step)
    pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
}

static void *fill_cache_and_wait(void *arg) {
  cache_holder *h = arg;
  void *p[4];
  size_t i;
  for (i = 0; i < 4; i++) {
    p[i] = zp_get(h->pool, 256 * ZP_KIB);
    if (p[i] == NULL)
      atomic_fetch_add(&h->errors, 1);
    else
      memset(p[i], 0x3A, 256 * ZP_KIB);
  }
  for (i = 0; i < 4; i++)
    zp_put(h->pool, p[i]);
  holder_set(h, 1);
  holder_wait(h, 2); /* the pool is destroyed meanwhile */
  return NULL;
}

static void test_destroy_unpins_other_threads_cache(void **state) {
  static cache_holder h;
  pthread_t t;
  long long before, during, after;
  zp_stats s;
  (void)state;
  if (zp_test_mlock_intercepted()) {
    print_message("skipped: mlock is intercepted here (sanitizer, valgrind "
                  "or ZP_TEST_QUICK)\n");
    skip();
  }
  memset(&h, 0, sizeof h);
  pthread_mutex_init(&h.mu, NULL);
  pthread_cond_init(&h.cv, NULL);
  h.pool = new_pinned_pool();
  before = zp_test_vmlck_bytes();
  assert_true(before >= 0);
  assert_int_equal(pthread_create(&t, NULL, fill_cache_and_wait, &h), 0);
  holder_wait(&h, 1);
  /* No asserts until the thread is released. */
  memset(&s, 0, sizeof s);
  (void)zp_pool_stats(h.pool, &s);
  during = zp_test_vmlck_bytes();
  zp_pool_destroy(h.pool);
  after = zp_test_vmlck_bytes();
  holder_set(&h, 2);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(atomic_load(&h.errors), 0);
  assert_int_equal(s.idle_buffers, 4);
  if (s.pin_failures != 0)
    fail_msg("mlock refused %llu times", (unsigned long long)s.pin_failures);
  if (during - before < (long long)(ZP_MIB))
    fail_msg("VmLck rose by %lld bytes with 1 MiB cached", during - before);
  if (after > before)
    fail_msg("VmLck %lld bytes after destroy, %lld before: the other "
             "thread's cache stayed pinned",
             after, before);
  pthread_cond_destroy(&h.cv);
  pthread_mutex_destroy(&h.mu);
}

/* Drops CAP_IPC_LOCK from this (child) process so that RLIMIT_MEMLOCK binds
 * root too. */
static void drop_ipc_lock(void) {
  struct __user_cap_header_struct hdr;
  struct __user_cap_data_struct data[2];
  memset(&hdr, 0, sizeof hdr);
  memset(data, 0, sizeof data);
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  if (syscall(SYS_capget, &hdr, data) != 0)
    return;
  data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
  data[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
  data[CAP_IPC_LOCK / 32].inheritable &= ~(1u << (CAP_IPC_LOCK % 32));
  (void)syscall(SYS_capset, &hdr, data);
}

enum { CHILD_SKIP = 77 };

/* In the child: RLIMIT_MEMLOCK 0 (and CAP_IPC_LOCK dropped when root). If
 * mlock still succeeds (sanitizer interceptors), report a skip. Else a pinned
 * pool must still serve zeroed buffers and count pin_failures. */
static void pin_refused_child(void *arg) {
  struct rlimit lim = {0, 0};
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  void *probe;
  zp_builder b;
  zp_pool *pool;
  unsigned char *p;
  zp_stats s;
  (void)arg;
  drop_ipc_lock();
  ZP_CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &lim) == 0);
  probe = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
               -1, 0);
  ZP_CHILD_CHECK(probe != MAP_FAILED);
  if (mlock(probe, page) == 0) {
    fprintf(stderr, "mlock cannot be made to fail here\n");
    _exit(CHILD_SKIP);
  }
  munmap(probe, page);

  memset(&b, 0, sizeof b);
  b.pinned_memory = true;
  pool = zp_pool_new(&b);
  ZP_CHILD_CHECK(pool != NULL);
  p = zp_get(pool, 65536);
  ZP_CHILD_CHECK(p != NULL);
  ZP_CHILD_CHECK(zp_test_all_zero(p, 65536));
  memset(p, 1, 65536);
  s = zp_test_stats(pool);
  ZP_CHILD_CHECK(s.pin_failures > 0);
  ZP_CHILD_CHECK(s.pinned_bytes == 0);
  ZP_CHILD_CHECK(s.outstanding_buffers == 1);
  zp_put(pool, p);
  p = zp_get(pool, 100);
  ZP_CHILD_CHECK(p != NULL);
  zp_put(pool, p);
  zp_pool_destroy(pool);
}

/* ZP_PIN_STRICT: where mlock is refused (here: RLIMIT_MEMLOCK 0 without
 * CAP_IPC_LOCK, or a sanitizer build where the pool knows mlock is a no-op),
 * zp_get fails cleanly rather than hand out memory that is not locked. */
static void pin_strict_child(void *arg) {
  struct rlimit lim = {0, 0};
  zp_builder b;
  zp_pool *pool;
  zp_stats s;
  (void)arg;
  drop_ipc_lock();
  ZP_CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &lim) == 0);
  memset(&b, 0, sizeof b);
  b.pinned_memory = true;
  b.pin_policy = ZP_PIN_STRICT;
  pool = zp_pool_new(&b);
  ZP_CHILD_CHECK(pool != NULL);
  for (int i = 0; i < 3; i++) {
    errno = 0;
    ZP_CHILD_CHECK(zp_get(pool, i ? 100 : 65536) == NULL);
    ZP_CHILD_CHECK(errno == ENOMEM);
  }
  s = zp_test_stats(pool);
  ZP_CHILD_CHECK(s.pin_failures >= 3);
  ZP_CHILD_CHECK(s.pinned_bytes == 0);
  ZP_CHILD_CHECK(s.mapped_bytes == 0);
  ZP_CHILD_CHECK(s.outstanding_buffers == 0);
  zp_pool_destroy(pool);
}

static void test_pin_strict_refuses(void **state) {
  zp_test_child_result res;
  (void)state;
  zp_test_run_child(pin_strict_child, NULL, &res);
  if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0)
    fail_msg("child failed (status 0x%x): %s", res.status, res.output);
}

static void test_pin_refused_still_serves(void **state) {
  zp_test_child_result res;
  (void)state;
  zp_test_run_child(pin_refused_child, NULL, &res);
  if (WIFEXITED(res.status) && WEXITSTATUS(res.status) == CHILD_SKIP) {
    print_message("skipped: %s", res.output);
    skip();
  }
  if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0)
    fail_msg("child status 0x%x; stderr:\n%s", (unsigned)res.status,
             res.output);
}

/* The VmFlags line of the /proc/self/smaps entry that holds addr, or "". */
static void vmflags_of(uintptr_t addr, char *out, size_t cap) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[512];
  bool inside = false;
  out[0] = '\0';
  assert_non_null(f);
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') &&
        line[0] != 'V') {
      inside = addr >= lo && addr < hi;
      continue;
    }
    if (inside && strncmp(line, "VmFlags:", 8) == 0) {
      snprintf(out, cap, "%s", line + 8);
      break;
    }
  }
  fclose(f);
}

/* Pool memory is kept out of core dumps (MADV_DONTDUMP: "dd" in VmFlags),
 * pinned or not, small slab or large buffer. */
static void test_memory_excluded_from_core_dumps(void **state) {
  static const size_t sizes[] = {64, 4096, 64 * 1024, 2 * 1024 * 1024};
  char flags[512];
  (void)state;
  for (int pinned = 0; pinned < 2; pinned++) {
    zp_builder b = {0};
    b.pinned_memory = pinned;
    zp_pool *pool = zp_pool_new(&b);
    assert_non_null(pool);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      char *p = zp_get(pool, sizes[i]);
      assert_non_null(p);
      vmflags_of((uintptr_t)p, flags, sizeof flags);
      if (strstr(flags, " dd") == NULL)
        fail_msg("buffer of %zu bytes (pinned %d): VmFlags '%s' lacks dd",
                 sizes[i], pinned, flags);
      zp_put(pool, p);
    }
    zp_pool_destroy(pool);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_reports_pinned),
      cmocka_unit_test(test_vmlck_rises),
      cmocka_unit_test(test_unpinned_pins_nothing),
      cmocka_unit_test(test_destroy_unpins_other_threads_cache),
      cmocka_unit_test(test_pin_refused_still_serves),
      cmocka_unit_test(test_pin_strict_refuses),
      cmocka_unit_test(test_memory_excluded_from_core_dumps),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
