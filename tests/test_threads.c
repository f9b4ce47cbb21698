/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Threads: cross-thread reuse, thread exit, no bleed, late exit, trim. */
#include "test_util.h"

#include "pool.h" /* white-box: the hand-off tests look into the slot */

#include <pthread.h>
#include <stdatomic.h>

static atomic_int g_errors;
static atomic_int g_ready;

/* ---- a step gate: one thread waits until the other reaches a step ------- */

typedef struct gate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int step;
} gate;

static void gate_init(gate *g) {
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->step = 0;
}

static void gate_destroy(gate *g) {
  pthread_cond_destroy(&g->cv);
  pthread_mutex_destroy(&g->mu);
}

static void gate_set(gate *g, int step) {
  pthread_mutex_lock(&g->mu);
  g->step = step;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

static void gate_wait(gate *g, int step) {
  pthread_mutex_lock(&g->mu);
  while (g->step < step)
    pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
}

/* ---- (a) producer/consumer ---------------------------------------------- */

enum { QCAP = 32 };

typedef struct queue {
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full, drained;
  void *items[QCAP];
  size_t head, count;
  uint64_t pushed, consumed;
  bool stop;
  zp_pool *pool;
  size_t size;
} queue;

static void queue_push(queue *q, void *p) {
  pthread_mutex_lock(&q->mu);
  while (q->count == QCAP)
    pthread_cond_wait(&q->not_full, &q->mu);
  q->items[(q->head + q->count) % QCAP] = p;
  q->count++;
  q->pushed++;
  pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
}

static void queue_wait_drained(queue *q) {
  pthread_mutex_lock(&q->mu);
  while (q->consumed != q->pushed)
    pthread_cond_wait(&q->drained, &q->mu);
  pthread_mutex_unlock(&q->mu);
}

static void *consumer_main(void *arg) {
  queue *q = arg;
  for (;;) {
    unsigned char *p;
    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && !q->stop)
      pthread_cond_wait(&q->not_empty, &q->mu);
    if (q->count == 0 && q->stop) {
      pthread_mutex_unlock(&q->mu);
      return NULL;
    }
    p = q->items[q->head];
    q->head = (q->head + 1) % QCAP;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);

    /* The producer wrote a pattern; it arrives intact. */
    ZP_THREAD_CHECK(g_errors, p[0] == 0xC3 && p[q->size - 1] == 0xC3);
    zp_put(q->pool, p);

    pthread_mutex_lock(&q->mu);
    q->consumed++;
    if (q->consumed == q->pushed)
      pthread_cond_broadcast(&q->drained);
    pthread_mutex_unlock(&q->mu);
  }
}

static void produce(queue *q, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char *p = zp_get(q->pool, q->size);
    assert_non_null(p);
    if (!zp_test_all_zero(p, q->size))
      fail_msg("producer: get %zu not zero", i);
    p[0] = 0xC3;
    p[q->size - 1] = 0xC3;
    queue_push(q, p);
  }
}

/* One thread gets, another puts: after a warm-up at least 99% of the
 * producer's gets are hits (buffers freed on another thread are found). */
static void check_producer_consumer(size_t size, const zp_builder *cfg) {
  /* static: should an assert fail in produce(), the consumer keeps waiting
   * on live memory rather than on a dead stack frame. */
  static queue q;
  pthread_t t;
  zp_stats a, b;
  uint64_t gets, hits;
  /* Misses after the warm-up are bounded by the growth of the buffers in
   * flight (queue + both caches, under 70), whatever the scheduling (valgrind
   * runs threads in long turns): n keeps them under 1 %. */
  size_t warm = zp_test_iters(500, 200), n = zp_test_iters(20000, 8000), i;
  memset(&q, 0, sizeof q);
  pthread_mutex_init(&q.mu, NULL);
  pthread_cond_init(&q.not_empty, NULL);
  pthread_cond_init(&q.not_full, NULL);
  pthread_cond_init(&q.drained, NULL);
  q.pool = zp_pool_new(cfg);
  q.size = size;
  assert_non_null(q.pool);
  atomic_store(&g_errors, 0);
  assert_int_equal(pthread_create(&t, NULL, consumer_main, &q), 0);

  /* Warm up until a whole chunk of gets is served without a miss (the
   * number of buffers in flight has settled), at most 20 chunks. */
  for (i = 0; i < 20; i++) {
    uint64_t misses = zp_test_stats(q.pool).misses;
    produce(&q, warm);
    queue_wait_drained(&q);
    if (zp_test_stats(q.pool).misses == misses)
      break;
  }
  a = zp_test_stats(q.pool);
  produce(&q, n);
  queue_wait_drained(&q);
  b = zp_test_stats(q.pool);

  pthread_mutex_lock(&q.mu);
  q.stop = true;
  pthread_cond_broadcast(&q.not_empty);
  pthread_mutex_unlock(&q.mu);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(atomic_load(&g_errors), 0);

  gets = b.gets - a.gets;
  hits = b.hits - a.hits;
  assert_int_equal(gets, n);
  if (hits * 100 < gets * 99)
    fail_msg("size %zu: %llu of %llu producer gets were hits (< 99%%); "
             "%llu evictions, %llu misses in the warm-up",
             size, (unsigned long long)hits, (unsigned long long)gets,
             (unsigned long long)(b.evictions - a.evictions),
             (unsigned long long)a.misses);
  b = zp_test_stats(q.pool);
  assert_int_equal(b.outstanding_buffers, 0);
  assert_int_equal(b.gets, b.puts);

  zp_pool_destroy(q.pool);
  pthread_cond_destroy(&q.drained);
  pthread_cond_destroy(&q.not_full);
  pthread_cond_destroy(&q.not_empty);
  pthread_mutex_destroy(&q.mu);
}

static void test_producer_consumer_4k(void **state) {
  (void)state;
  check_producer_consumer(4096, NULL);
}

static void test_producer_consumer_64k(void **state) {
  (void)state;
  check_producer_consumer(65536, NULL);
}

/* A thread cache larger than a shard: a flush must not carry more buffers
 * than a shard keeps (half of a 256-buffer cache into a 64-buffer shard
 * evicted half of every flush: 50 % misses). */
static void test_producer_consumer_cache_larger_than_shard(void **state) {
  zp_builder cfg;
  (void)state;
  memset(&cfg, 0, sizeof cfg);
  cfg.tls_cache_size = 256;
  cfg.max_buffers_per_shard = 64;
  check_producer_consumer(4096, &cfg);
}

/* ---- hand-off slots (shard.c) ---------------------------------------------
 * A full cache of a thread that puts a class but does not get it (a
 * consumer) spills a batch into the class's hand-off slot, where another
 * thread's refill takes it with one exchange, bypassing the shards. Pool:
 * one shard, LIFO, tls_cache_size 16 (batches of 8). The main thread gets
 * b[0..16], a consumer thread puts them: the 17th put spills the top 8 of
 * its cache, b[15] (the head) down to b[8], and keeps b[16], b[7..0].
 * Through a shard the batch comes back bottom first (b[8]), so the first
 * buffer a refill hands out tells which way it went. */

#define HAND_N 17

/* The pool, with b[0..HAND_N) got by this thread. */
static zp_pool *hand_pool(void **b) {
  zp_builder cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.num_shards = 1;
  cfg.tls_cache_size = 16;
  cfg.eviction_policy = ZP_EVICTION_LIFO;
  zp_pool *pool = zp_pool_new(&cfg);
  assert_non_null(pool);
  for (int i = 0; i < HAND_N; i++)
    assert_non_null(b[i] = zp_get(pool, 4096));
  return pool;
}

typedef struct hand_arg {
  zp_pool *pool;
  void **put;  /* HAND_N buffers to put first, or NULL */
  size_t nget; /* then gets, into got[] */
  void *got[16];
  bool put_back; /* and puts got[] back */
} hand_arg;

static void *hand_main(void *arg) {
  hand_arg *h = arg;
  for (size_t i = 0; h->put && i < HAND_N; i++)
    zp_put(h->pool, h->put[i]);
  for (size_t i = 0; i < h->nget; i++)
    h->got[i] = zp_get(h->pool, 4096);
  for (size_t i = 0; h->put_back && i < h->nget; i++)
    zp_put(h->pool, h->got[i]);
  return NULL; /* exit: the cache's buffers go to the shard */
}

static void hand_thread(hand_arg *h) {
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, hand_main, h), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
}

static void test_hand_off_to_other_thread(void **state) {
  (void)state;
  void *b[HAND_N];
  zp_pool *pool = hand_pool(b);
  hand_arg consumer = {.pool = pool, .put = b};
  hand_thread(&consumer);
  void *got = zp_get(pool, 4096);
  assert_ptr_equal(got, b[15]);
  assert_int_equal(zp_test_stats(pool).misses, HAND_N); /* got: a hit */
  zp_put(pool, got);
  zp_pool_destroy(pool);
}

/* A thread that gets the class as well as puts it spills to a shard, as a
 * thread alone does: its buffers stay under the eviction policy. */
static void test_hand_off_not_from_getter(void **state) {
  (void)state;
  void *b[HAND_N];
  zp_pool *pool = hand_pool(b);
  for (int i = 0; i < HAND_N; i++)
    zp_put(pool, b[i]);
  hand_arg other = {.pool = pool, .nget = 1, .put_back = true};
  hand_thread(&other);
  assert_ptr_equal(other.got[0], b[8]);
  zp_pool_destroy(pool);
}

/* The spilling thread takes its own batch back only when the shards have
 * none, and then rather than new memory. */
static void test_hand_off_own_batch_last(void **state) {
  (void)state;
  void *b[HAND_N];
  zp_pool *pool = hand_pool(b);
  hand_arg one = {.pool = pool, .nget = 1, .put_back = true};
  hand_thread(&one); /* one.got[0]: the one buffer in the shard */
  hand_arg consumer = {.pool = pool, .put = b, .nget = 11, .put_back = true};
  hand_thread(&consumer);
  assert_ptr_equal(consumer.got[0], b[16]); /* its cache: b[16], b[7..0] */
  assert_ptr_equal(consumer.got[8], b[0]);
  assert_ptr_equal(consumer.got[9], one.got[0]); /* then the shard */
  assert_ptr_equal(consumer.got[10], b[15]);     /* then its own batch */
  assert_int_equal(zp_test_stats(pool).misses, HAND_N + 1);
  zp_pool_destroy(pool);
}

/* A batch in a slot is idle memory like any other: stats count it, trim
 * releases it. */
static void test_hand_off_counted_and_trimmed(void **state) {
  (void)state;
  void *b[HAND_N];
  zp_pool *pool = hand_pool(b);
  hand_arg consumer = {.pool = pool, .put = b};
  hand_thread(&consumer);
  unsigned cls = zp__class_of(&pool->classes, 4096);
  assert_true(atomic_load(&pool->hand_off[cls].batch) != 0); /* there */
  zp_stats st = zp_test_stats(pool);
  assert_int_equal(st.idle_buffers, HAND_N);
  assert_int_equal(st.idle_bytes, HAND_N * 4096);
  assert_int_equal(zp_pool_trim(pool), 0);
  st = zp_test_stats(pool);
  assert_int_equal(st.idle_buffers, 0);
  assert_int_equal(st.idle_bytes, 0);
  zp_pool_destroy(pool);
}

/* ---- (b) thread exit returns the thread's cache to the pool ------------- */

typedef struct worker_arg {
  zp_pool *pool;
  zp_pool *other;
  size_t size;
  size_t count;
  gate *g;
  void *keep;
} worker_arg;

static void *get_put_exit(void *arg) {
  worker_arg *w = arg;
  void *p[64];
  size_t i;
  for (i = 0; i < w->count; i++) {
    p[i] = zp_get(w->pool, w->size);
    ZP_THREAD_CHECK(g_errors, p[i] != NULL);
    if (p[i] != NULL)
      memset(p[i], 0x3C, w->size);
  }
  for (i = 0; i < w->count; i++)
    zp_put(w->pool, p[i]);
  return NULL;
}

static void check_thread_exit(size_t count) {
  zp_pool *pool = zp_pool_new(NULL);
  worker_arg w;
  pthread_t t;
  zp_stats a, b;
  void *p[64];
  size_t i;
  assert_non_null(pool);
  memset(&w, 0, sizeof w);
  w.pool = pool;
  w.size = 65536;
  w.count = count;
  atomic_store(&g_errors, 0);
  assert_int_equal(pthread_create(&t, NULL, get_put_exit, &w), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(atomic_load(&g_errors), 0);

  a = zp_test_stats(pool);
  /* The exited thread's buffers are still idle in the pool, not freed. */
  assert_int_equal(a.idle_buffers, count);
  assert_true(a.idle_bytes >= count * w.size);
  assert_int_equal(a.outstanding_buffers, 0);
  assert_int_equal(a.evictions, 0);
  assert_true(a.mapped_bytes >= count * w.size);

  /* And this thread gets them: all hits, all zero. */
  for (i = 0; i < count; i++) {
    p[i] = zp_get(pool, w.size);
    assert_non_null(p[i]);
    assert_true(zp_test_all_zero(p[i], w.size));
  }
  b = zp_test_stats(pool);
  assert_int_equal(b.hits - a.hits, count);
  assert_int_equal(b.misses, a.misses);
  for (i = 0; i < count; i++)
    zp_put(pool, p[i]);
  zp_pool_destroy(pool);
}

static void test_thread_exit_flushes_small(void **state) {
  (void)state;
  check_thread_exit(3);
}

static void test_thread_exit_flushes_many(void **state) {
  (void)state;
  check_thread_exit(40);
}

/* ---- (c) no bleed between pools ----------------------------------------- */

static void check_no_bleed(zp_pool *a, zp_pool *b, void **pa, size_t k,
                           size_t size) {
  zp_stats s0 = zp_test_stats(b), s1;
  size_t i, j;
  void *pb[16];
  for (i = 0; i < k; i++) {
    pb[i] = zp_get(b, size);
    assert_non_null(pb[i]);
    assert_int_equal(zp_buffer_size(a, pb[i]), 0);
    assert_int_equal(zp_buffer_size(b, pb[i]), size);
    for (j = 0; j < k; j++)
      assert_true(zp_test_addr(pb[i]) != zp_test_addr(pa[j]));
  }
  s1 = zp_test_stats(b);
  assert_int_equal(s1.misses - s0.misses, k);
  assert_int_equal(s1.hits, s0.hits);
  for (i = 0; i < k; i++)
    zp_put(b, pb[i]);
}

static void test_no_bleed_between_pools(void **state) {
  enum { K = 8 };
  zp_pool *a = zp_pool_new(NULL), *b = zp_pool_new(NULL);
  void *pa[K];
  size_t i;
  (void)state;
  assert_non_null(a);
  assert_non_null(b);
  for (i = 0; i < K; i++) {
    pa[i] = zp_get(a, 4096);
    assert_non_null(pa[i]);
  }
  for (i = 0; i < K; i++)
    zp_put(a, pa[i]);
  /* A's idle buffers sit in this thread's cache and A's shards; B must not
   * hand them out. */
  check_no_bleed(a, b, pa, K, 4096);
  assert_int_equal(zp_test_stats(a).idle_buffers, K);
  zp_pool_destroy(b);
  zp_pool_destroy(a);
}

typedef struct bleed_arg {
  zp_pool *a, *b;
  size_t size;
} bleed_arg;

static void *bleed_thread(void *arg) {
  bleed_arg *x = arg;
  void *pa[8], *pb[8];
  size_t i;
  for (i = 0; i < 8; i++) {
    pa[i] = zp_get(x->a, x->size);
    ZP_THREAD_CHECK(g_errors, pa[i] != NULL);
  }
  for (i = 0; i < 8; i++)
    zp_put(x->a, pa[i]);
  for (i = 0; i < 8; i++) {
    pb[i] = zp_get(x->b, x->size);
    ZP_THREAD_CHECK(g_errors, pb[i] != NULL);
    ZP_THREAD_CHECK(g_errors, zp_buffer_size(x->a, pb[i]) == 0);
    ZP_THREAD_CHECK(g_errors, zp_buffer_size(x->b, pb[i]) == x->size);
  }
  for (i = 0; i < 8; i++)
    zp_put(x->b, pb[i]);
  return NULL;
}

/* The same from another thread, whose caches for A are filled first. */
static void test_no_bleed_other_thread(void **state) {
  bleed_arg x;
  pthread_t t;
  zp_stats sb;
  (void)state;
  memset(&x, 0, sizeof x);
  x.a = zp_pool_new(NULL);
  x.b = zp_pool_new(NULL);
  x.size = 65536;
  assert_non_null(x.a);
  assert_non_null(x.b);
  atomic_store(&g_errors, 0);
  assert_int_equal(pthread_create(&t, NULL, bleed_thread, &x), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(atomic_load(&g_errors), 0);
  sb = zp_test_stats(x.b);
  assert_int_equal(sb.misses, 8);
  assert_int_equal(sb.hits, 0);
  assert_int_equal(sb.idle_buffers, 8);
  assert_int_equal(zp_test_stats(x.a).idle_buffers, 8);
  zp_pool_destroy(x.b);
  zp_pool_destroy(x.a);
}

/* ---- (d) a thread that used a pool exits after the pool was destroyed --- */

typedef struct late_arg {
  zp_pool *pool;     /* destroyed while the thread waits */
  zp_pool *new_pool; /* created afterwards (maybe at the same address) */
  gate g;
  size_t size;
} late_arg;

static void *late_thread(void *arg) {
  late_arg *x = arg;
  void *p[6], *keep, *q;
  size_t i;
  /* Fill this thread's cache for the pool, keep one buffer out. */
  for (i = 0; i < 6; i++) {
    p[i] = zp_get(x->pool, x->size);
    ZP_THREAD_CHECK(g_errors, p[i] != NULL);
  }
  for (i = 0; i < 5; i++)
    zp_put(x->pool, p[i]);
  keep = p[5];
  gate_set(&x->g, 1);
  gate_wait(&x->g, 2); /* the pool is destroyed, new_pool exists */

  /* The buffer that was out is still valid and may be put late. */
  if (keep != NULL) {
    memset(keep, 0x42, x->size);
    zp_put(x->pool, keep);
  }
  /* The new pool (maybe at the old address) does not see the old cache. */
  q = zp_get(x->new_pool, x->size);
  ZP_THREAD_CHECK(g_errors, q != NULL);
  if (q != NULL) {
    ZP_THREAD_CHECK(g_errors, zp_buffer_size(x->new_pool, q) == x->size);
    ZP_THREAD_CHECK(g_errors, zp_test_all_zero(q, x->size));
    memset(q, 0x24, x->size);
    zp_put(x->new_pool, q);
  }
  return NULL; /* exits with a cache entry for a destroyed pool */
}

static void test_thread_exits_after_destroy(void **state) {
  /* static: a failing assert must not leave the thread waiting on a dead
   * stack frame; no assert runs while the thread is parked. */
  static late_arg x;
  pthread_t t;
  zp_stats s;
  (void)state;
  memset(&x, 0, sizeof x);
  gate_init(&x.g);
  x.size = 16384;
  x.pool = zp_pool_new(NULL);
  assert_non_null(x.pool);
  atomic_store(&g_errors, 0);
  assert_int_equal(pthread_create(&t, NULL, late_thread, &x), 0);
  gate_wait(&x.g, 1);
  zp_pool_destroy(x.pool);
  x.new_pool = zp_pool_new(NULL);
  if (x.new_pool == NULL) {
    fprintf(stderr, "zp_pool_new failed\n");
    abort(); /* the thread would use it: no clean way on */
  }
  gate_set(&x.g, 2);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(atomic_load(&g_errors), 0);

  s = zp_test_stats(x.new_pool);
  assert_int_equal(s.gets, 1);
  assert_int_equal(s.misses, 1);
  assert_int_equal(s.hits, 0);
  assert_int_equal(s.puts, 1);
  assert_int_equal(s.outstanding_buffers, 0);
  assert_int_equal(s.idle_buffers, 1); /* only its own buffer came back */
  zp_pool_destroy(x.new_pool);
  gate_destroy(&x.g);
}

/* Several threads with caches for a pool, destroyed while they wait, then
 * they exit without touching the pool. */
static void *cache_then_wait(void *arg) {
  worker_arg *w = arg;
  void *p[4];
  size_t i;
  for (i = 0; i < 4; i++) {
    p[i] = zp_get(w->pool, w->size);
    ZP_THREAD_CHECK(g_errors, p[i] != NULL);
  }
  for (i = 0; i < 4; i++)
    zp_put(w->pool, p[i]);
  atomic_fetch_add(&g_ready, 1);
  gate_wait(w->g, 1);
  return NULL;
}

static void test_threads_idle_at_destroy(void **state) {
  enum { T = 4 };
  static gate g;
  static worker_arg w[T];
  pthread_t t[T];
  zp_pool *pool = zp_pool_new(NULL);
  uint64_t idle;
  int i;
  (void)state;
  assert_non_null(pool);
  gate_init(&g);
  atomic_store(&g_errors, 0);
  atomic_store(&g_ready, 0);
  for (i = 0; i < T; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].pool = pool;
    w[i].size = 4096 << i;
    w[i].g = &g;
    if (pthread_create(&t[i], NULL, cache_then_wait, &w[i]) != 0)
      abort();
  }
  /* Wait until every thread has filled its cache and left the library. */
  while (atomic_load(&g_ready) < T)
    usleep(1000);
  idle = zp_test_stats(pool).idle_buffers;
  zp_pool_destroy(pool);
  gate_set(&g, 1);
  for (i = 0; i < T; i++)
    assert_int_equal(pthread_join(t[i], NULL), 0);
  assert_int_equal(atomic_load(&g_errors), 0);
  assert_int_equal(idle, 4 * T);
  gate_destroy(&g);
}

/* ---- (e) trim empties the caches of other live threads ------------------ */

static void *trim_victim(void *arg) {
  worker_arg *w = arg;
  void *p[4], *q;
  size_t i;
  for (i = 0; i < 4; i++) {
    p[i] = zp_get(w->pool, w->size);
    ZP_THREAD_CHECK(g_errors, p[i] != NULL);
    if (p[i] != NULL)
      memset(p[i], 0x99, w->size);
  }
  for (i = 0; i < 4; i++)
    zp_put(w->pool, p[i]);
  gate_set(w->g, 1);
  gate_wait(w->g, 2); /* the main thread trimmed */
  /* This thread's cache was emptied under it: its next get is valid. */
  q = zp_get(w->pool, w->size);
  ZP_THREAD_CHECK(g_errors, q != NULL);
  if (q != NULL) {
    ZP_THREAD_CHECK(g_errors, zp_test_all_zero(q, w->size));
    memset(q, 0x99, w->size);
    zp_put(w->pool, q);
  }
  return NULL;
}

static void test_trim_other_threads(void **state) {
  static gate g;
  static worker_arg w;
  pthread_t t;
  zp_stats before, trimmed, s;
  int rc;
  (void)state;
  memset(&w, 0, sizeof w);
  gate_init(&g);
  w.pool = zp_pool_new(NULL);
  w.size = 32768;
  w.g = &g;
  assert_non_null(w.pool);
  atomic_store(&g_errors, 0);
  assert_int_equal(pthread_create(&t, NULL, trim_victim, &w), 0);
  gate_wait(&g, 1);
  /* No asserts until the thread is released and joined. */
  memset(&before, 0, sizeof before);
  memset(&trimmed, 0, sizeof trimmed);
  (void)zp_pool_stats(w.pool, &before);
  rc = zp_pool_trim(w.pool);
  (void)zp_pool_stats(w.pool, &trimmed);
  gate_set(&g, 2);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(atomic_load(&g_errors), 0);

  assert_int_equal(before.idle_buffers, 4);
  assert_int_equal(rc, 0);
  assert_int_equal(trimmed.idle_buffers, 0);
  assert_int_equal(trimmed.idle_bytes, 0);
  assert_int_equal(trimmed.os_maps, 0);
  assert_int_equal(trimmed.mapped_bytes, 0);
  s = zp_test_stats(w.pool);
  assert_int_equal(s.idle_buffers, 1);
  assert_int_equal(s.outstanding_buffers, 0);
  assert_int_equal(s.gets, 5);
  assert_int_equal(s.puts, 5);
  zp_pool_destroy(w.pool);
  gate_destroy(&g);
}

/* ---- (f) a trim frees the span a put has cached, during the put -------- */

static zp_pool *g_trim_pool;
static atomic_int g_trim_stop;

static void *trim_forever(void *arg) {
  (void)arg;
  while (!atomic_load(&g_trim_stop))
    (void)zp_pool_trim(g_trim_pool);
  return NULL;
}

/* Every call is valid. Each round caches the span of x (a 1 MiB buffer,
 * its own span, idle in this thread's cache) and then puts y, which lies in
 * another span, while the other thread's trims free x's span: the put of y
 * must not read the freed span (ASan: heap-use-after-free; TSan: a race
 * with free) and must still find y. A stress test: the window it probes is
 * a few instructions wide (the reviewer's repro of the bug this guards
 * against, a read of the cached span before the range check, took ~2 s
 * under ASan), so it catches such a bug only sometimes; the structural
 * guard is that find_buf_cached reads nothing but the thread's own copy
 * until the pointer is known to lie in the span. */
static void test_put_while_trim_frees_cached_span(void **state) {
  zp_builder cfg;
  pthread_t t;
  size_t rounds = zp_test_iters(50000, 3000), i;
  zp_stats s;
  (void)state;
  memset(&cfg, 0, sizeof cfg);
  cfg.num_shards = 1;
  g_trim_pool = zp_pool_new(&cfg);
  assert_non_null(g_trim_pool);
  atomic_store(&g_trim_stop, 0);
  assert_int_equal(pthread_create(&t, NULL, trim_forever, NULL), 0);
  for (i = 0; i < rounds; i++) {
    unsigned char *y = zp_get(g_trim_pool, 64);
    unsigned char *x = zp_get(g_trim_pool, (size_t)1 << 20);
    if (y == NULL || x == NULL)
      break;
    y[0] = 1;
    zp_put_used(g_trim_pool, x, 0); /* caches x's span */
    zp_put_used(g_trim_pool, y, 1); /* y is elsewhere */
  }
  atomic_store(&g_trim_stop, 1);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(i, rounds);
  s = zp_test_stats(g_trim_pool);
  assert_int_equal(s.outstanding_buffers, 0);
  assert_int_equal(s.puts, 2 * rounds);
  zp_pool_destroy(g_trim_pool);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_producer_consumer_4k),
      cmocka_unit_test(test_producer_consumer_64k),
      cmocka_unit_test(test_producer_consumer_cache_larger_than_shard),
      cmocka_unit_test(test_hand_off_to_other_thread),
      cmocka_unit_test(test_hand_off_not_from_getter),
      cmocka_unit_test(test_hand_off_own_batch_last),
      cmocka_unit_test(test_hand_off_counted_and_trimmed),
      cmocka_unit_test(test_thread_exit_flushes_small),
      cmocka_unit_test(test_thread_exit_flushes_many),
      cmocka_unit_test(test_no_bleed_between_pools),
      cmocka_unit_test(test_no_bleed_other_thread),
      cmocka_unit_test(test_thread_exits_after_destroy),
      cmocka_unit_test(test_threads_idle_at_destroy),
      cmocka_unit_test(test_trim_other_threads),
      cmocka_unit_test(test_put_while_trim_frees_cached_span),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
