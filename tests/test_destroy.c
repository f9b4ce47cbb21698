/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Destroy with buffers out: they stay valid and are put late, any thread. */
#include "test_util.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

static atomic_int g_errors;

static zp_pool *new_pool(size_t min_buffer_size) {
  zp_builder b;
  zp_pool *pool;
  memset(&b, 0, sizeof b);
  b.min_buffer_size = min_buffer_size;
  pool = zp_pool_new(&b);
  assert_non_null(pool);
  return pool;
}

static const size_t k_sizes[] = {1,    64,    100,    1000,    4096,
                                 5000, 65536, 300000, 2097152, 64};
enum { NSIZES = sizeof k_sizes / sizeof k_sizes[0] };

static void get_all(zp_pool *pool, unsigned char **p) {
  size_t i;
  for (i = 0; i < NSIZES; i++) {
    p[i] = zp_get(pool, k_sizes[i]);
    assert_non_null(p[i]);
    memset(p[i], 0x61, k_sizes[i]);
  }
}

/* Writes to every byte of every buffer, checks the earlier contents survived
 * the destroy, then puts them back one by one (zp_put and zp_put_used). */
static int write_and_put_all(zp_pool *dead_pool, unsigned char **p) {
  size_t i;
  int bad = 0;
  for (i = 0; i < NSIZES; i++) {
    size_t n = k_sizes[i];
    if (p[i][0] != 0x61 || p[i][n - 1] != 0x61)
      bad++;
    memset(p[i], 0x62, n);
  }
  for (i = 0; i < NSIZES; i++) {
    if (i % 2 == 0)
      zp_put(dead_pool, p[i]);
    else
      zp_put_used(dead_pool, p[i], k_sizes[i] / 2);
  }
  return bad;
}

static void check_destroy_with_out(size_t min_buffer_size) {
  zp_pool *pool = new_pool(min_buffer_size);
  unsigned char *p[NSIZES];
  void *idle[3];
  size_t i;
  get_all(pool, p);
  /* Some idle buffers too, in the thread cache and beyond. */
  for (i = 0; i < 3; i++) {
    idle[i] = zp_get(pool, 4096 * (i + 1));
    assert_non_null(idle[i]);
  }
  for (i = 0; i < 3; i++)
    zp_put(pool, idle[i]);
  zp_pool_destroy(pool);
  assert_int_equal(write_and_put_all(pool, p), 0);
}

static void test_destroy_with_buffers_out(void **state) {
  (void)state;
  check_destroy_with_out(0);
}

static void test_destroy_with_buffers_out_small(void **state) {
  (void)state;
  check_destroy_with_out(64);
}

/* Many small buffers sharing slabs, all out at destroy, put afterwards: the
 * last put releases the memory. */
static void test_destroy_with_many_small_out(void **state) {
  size_t n = zp_test_iters(3000, 500), i;
  zp_pool *pool = new_pool(64);
  unsigned char **p = calloc(n, sizeof *p);
  (void)state;
  assert_non_null(p);
  for (i = 0; i < n; i++) {
    p[i] = zp_get(pool, 64 + (i % 3) * 64);
    assert_non_null(p[i]);
    p[i][0] = (unsigned char)i;
  }
  zp_pool_destroy(pool);
  for (i = 0; i < n; i++) {
    assert_int_equal(p[i][0], (unsigned char)i);
    memset(p[i], 0x7E, 64);
  }
  /* Put in an interleaved order so slabs empty late. */
  for (i = 0; i < n; i += 2)
    zp_put(pool, p[i]);
  for (i = 1; i < n; i += 2)
    zp_put_used(pool, p[i], 64);
  free(p);
}

typedef struct late_put {
  zp_pool *dead_pool;
  unsigned char **bufs;
} late_put;

static void *put_from_thread(void *arg) {
  late_put *x = arg;
  if (write_and_put_all(x->dead_pool, x->bufs) != 0)
    atomic_fetch_add(&g_errors, 1);
  return NULL;
}

/* Buffers out at destroy are put by another thread. */
static void test_destroy_put_from_other_thread(void **state) {
  zp_pool *pool = new_pool(64);
  unsigned char *p[NSIZES];
  late_put x;
  pthread_t t;
  (void)state;
  get_all(pool, p);
  zp_pool_destroy(pool);
  x.dead_pool = pool;
  x.bufs = p;
  atomic_store(&g_errors, 0);
  assert_int_equal(pthread_create(&t, NULL, put_from_thread, &x), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(atomic_load(&g_errors), 0);
}

typedef struct holder {
  zp_pool *pool;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int step;
} holder;

static void holder_step(holder *h, int step) {
  pthread_mutex_lock(&h->mu);
  h->step = step;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

static void holder_wait(holder *h, int step) {
  pthread_mutex_lock(&h->mu);
  while (h->step < step)
    pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
}

static void *hold_across_destroy(void *arg) {
  holder *h = arg;
  unsigned char *p[NSIZES];
  size_t i;
  int failed = 0;
  for (i = 0; i < NSIZES; i++) {
    p[i] = zp_get(h->pool, k_sizes[i]);
    if (p[i] == NULL)
      failed = 1;
    else
      memset(p[i], 0x61, k_sizes[i]);
  }
  /* Some idle in this thread's cache as well. */
  for (i = 0; i < 4; i++) {
    void *q = zp_get(h->pool, 8192);
    if (q == NULL)
      failed = 1;
    zp_put(h->pool, q);
  }
  holder_step(h, 1);
  holder_wait(h, 2); /* the main thread destroyed the pool */
  if (failed || write_and_put_all(h->pool, p) != 0)
    atomic_fetch_add(&g_errors, 1);
  return NULL;
}

/* A thread gets buffers, the main thread destroys the pool, the thread then
 * writes and puts them and exits. */
static void test_destroy_while_other_thread_holds(void **state) {
  holder h;
  pthread_t t;
  (void)state;
  memset(&h, 0, sizeof h);
  pthread_mutex_init(&h.mu, NULL);
  pthread_cond_init(&h.cv, NULL);
  h.pool = new_pool(64);
  atomic_store(&g_errors, 0);
  assert_int_equal(pthread_create(&t, NULL, hold_across_destroy, &h), 0);
  holder_wait(&h, 1);
  zp_pool_destroy(h.pool);
  holder_step(&h, 2);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(atomic_load(&g_errors), 0);
  pthread_cond_destroy(&h.cv);
  pthread_mutex_destroy(&h.mu);
}

static void test_destroy_empty_idle_trimmed(void **state) {
  zp_pool *pool;
  void *p;
  (void)state;
  /* Never used. */
  zp_pool_destroy(new_pool(0));
  /* Only idle buffers. */
  pool = new_pool(0);
  p = zp_get(pool, 100000);
  assert_non_null(p);
  zp_put(pool, p);
  zp_pool_destroy(pool);
  /* Trimmed. */
  pool = new_pool(64);
  p = zp_get(pool, 100);
  assert_non_null(p);
  zp_put(pool, p);
  assert_int_equal(zp_pool_trim(pool), 0);
  zp_pool_destroy(pool);
}

/* Create and destroy in a loop with work in between: nothing accumulates
 * (ASan/valgrind would report the leak; the loop makes it large). */
static void test_create_destroy_loop(void **state) {
  size_t n = zp_test_iters(300, 40), i;
  (void)state;
  for (i = 0; i < n; i++) {
    zp_pool *pool = new_pool(i % 2 ? 64 : 0);
    void *a = zp_get(pool, 64), *b = zp_get(pool, 70000);
    assert_non_null(a);
    assert_non_null(b);
    zp_put(pool, a);
    if (i % 3 == 0) {
      zp_pool_destroy(pool);
      zp_put(pool, b);
    } else {
      zp_put(pool, b);
      zp_pool_destroy(pool);
    }
  }
}

typedef struct racer {
  zp_pool *pool;
  atomic_int *done;
} racer;

static void *use_then_exit(void *arg) {
  racer *r = arg;
  unsigned char *p[4];
  for (int i = 0; i < 4; i++)
    p[i] = zp_get(r->pool, 1000 + 3000 * (size_t)i);
  for (int i = 0; i < 4; i++)
    zp_put(r->pool, p[i]); /* into this thread's cache */
  atomic_fetch_add(r->done, 1);
  return NULL; /* exits (flushing its cache) while the pool is destroyed */
}

/* Thread exit is not a call on the pool: it may race with zp_pool_destroy.
 * Each round, threads finish their last call and exit while the main thread
 * destroys the pool; nothing is touched after it is freed (ASan, TSan,
 * valgrind) and nothing leaks. */
static void test_destroy_races_thread_exit(void **state) {
  enum { T = 4 };
  (void)state;
  for (int round = 0; round < (int)zp_test_iters(50, 10); round++) {
    static atomic_int done;
    static racer r[T];
    pthread_t t[T];
    zp_pool *pool = zp_pool_new(NULL);
    assert_non_null(pool);
    atomic_store(&done, 0);
    for (int i = 0; i < T; i++) {
      r[i].pool = pool;
      r[i].done = &done;
      assert_int_equal(pthread_create(&t[i], NULL, use_then_exit, &r[i]), 0);
    }
    while (atomic_load(&done) < T)
      sched_yield();
    zp_pool_destroy(pool); /* the threads are exiting right now */
    for (int i = 0; i < T; i++)
      assert_int_equal(pthread_join(t[i], NULL), 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_destroy_with_buffers_out),
      cmocka_unit_test(test_destroy_with_buffers_out_small),
      cmocka_unit_test(test_destroy_with_many_small_out),
      cmocka_unit_test(test_destroy_put_from_other_thread),
      cmocka_unit_test(test_destroy_while_other_thread_holds),
      cmocka_unit_test(test_destroy_empty_idle_trimmed),
      cmocka_unit_test(test_create_destroy_loop),
      cmocka_unit_test(test_destroy_races_thread_exit),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
