/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Thread caches: one per thread per pool, found through a _Thread_local
 * pointer to the last one used, and linked into the pool's registry so that
 * zp_pool_destroy, zp_pool_stats and thread exit can reach them.
 *
 * Lifetime: a cache belongs to its thread and is freed by it (at thread exit,
 * or when it finds the cache orphaned). zp_pool_destroy never frees another
 * thread's cache; it empties it and sets its pool to NULL under the registry
 * lock, so a thread that exits after its pool died touches no freed memory.
 * The registry lock is process-wide because it must outlive every pool.
 *
 * zp_pool_trim empties caches of other threads, which have no lock: it
 * sets their drain_req, runs membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)
 * and waits until none is active (zp__tc_enter in pool.h is the other
 * half). Where membarrier is missing, each owner empties its own cache at
 * its next call instead.
 */
#include "os.h"
#include "pool.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Never written: its pool is NULL, so every zp__tc_enter refuses it, and
 * its span view has limit 0, so no pointer is inside it. */
zp__tcache zp__tcache_none;
_Thread_local zp__tcache *zp__tls_last
    __attribute__((tls_model("initial-exec"))) = &zp__tcache_none;
static _Thread_local zp__tcache *tls_caches;
enum { TLS_NEW, TLS_REGISTERED, TLS_EXITING };
static _Thread_local int tls_state;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static bool exit_key_ok;

static void thread_exit(void *unused);

static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static zp_pool *all_pools; /* guarded by registry_lock */
static bool membarrier_ok;

static void make_exit_key(void) {
  exit_key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
}

static void register_membarrier(void) {
  membarrier_ok = syscall(SYS_membarrier,
                          MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

/* A full memory barrier on every CPU that runs a thread of this process. */
static bool barrier_all_threads(void) {
  pthread_once(&membarrier_once, register_membarrier);
  return membarrier_ok &&
         syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
}

__attribute__((destructor)) static void zp__unload(void) {
  if (exit_key_ok)
    pthread_key_delete(exit_key);
}

void zp__list_corrupt(const char *where) {
  zp__misuse("the idle buffers of %s are corrupt: a buffer is in them twice "
             "(two threads put the same buffer at the same instant?)",
             where);
}

/* Unlinks every buffer of tc onto the front of all; returns the new list.
 * The caller owns tc->credit. Walks at most count buffers. */
static zp__buf *take_all(zp_pool *pool, zp__tcache *tc, zp__buf *all) {
  size_t left = zp__counter_get(&tc->count);
  for (unsigned c = 0; c < pool->classes.count; c++) {
    zp__buf *b = tc->head[c];
    if (!b)
      continue;
    for (; b->next; b = b->next)
      if (left-- == 0)
        zp__list_corrupt("a thread cache");
    b->next = all;
    all = tc->head[c];
    tc->head[c] = NULL;
  }
  for (; tc->qlen; tc->qlen--) {
    zp__buf *b = tc->qring[tc->qhead];
    tc->qhead = (tc->qhead + 1) % (uint32_t)pool->cfg.quarantine;
    b->next = all;
    all = b;
  }
  atomic_store_explicit(&tc->count, 0, memory_order_relaxed);
  atomic_store_explicit(&tc->room, zp__counter_get(&tc->credit),
                        memory_order_relaxed);
  return all;
}

/* Unlinks up to max buffers of class cls from the top of tc's list, with
 * their share of the credit (room is unchanged); *n: how many. */
static zp__buf *cut_batch(zp_pool *pool, zp__tcache *tc, unsigned cls,
                          size_t max, size_t *n) {
  zp__buf *head = tc->head[cls], *last = NULL;
  size_t count = zp__counter_get(&tc->count);
  size_t limit = max < count ? max : count;
  *n = 0;
  for (zp__buf *b = head; b && *n < limit; b = b->next) {
    last = b;
    ++*n;
  }
  if (*n == count && *n < max && last && last->next)
    zp__list_corrupt("a thread cache"); /* more buffers than it holds */
  if (!*n)
    return NULL;
  tc->head[cls] = last->next;
  last->next = NULL;
  zp__counter_sub(&tc->count, *n);
  zp__counter_sub(&tc->credit, *n * zp__class_size(pool, cls));
  return head;
}

void zp__tcache_flush(zp_pool *pool, zp__tcache *tc, unsigned cls, size_t max) {
  size_t n;
  zp__buf *list = cut_batch(pool, tc, cls, max, &n);
  if (list)
    zp__shard_give(pool, cls, list, n, n * zp__class_size(pool, cls));
}

void zp__tcache_spill(zp_pool *pool, zp__tcache *tc, unsigned cls) {
  if (tc->refilled[cls] || zp__class_size(pool, cls) > pool->hand_off_max) {
    zp__tcache_flush(pool, tc, cls, pool->batch);
    return;
  }
  size_t n;
  zp__buf *list = cut_batch(pool, tc, cls, pool->batch, &n);
  if (!list)
    return;
  zp__shard_hand_off(pool, cls, list, n, tc->hand_off_tag);
  /* No shard sees these buffers go round; their policies' decay counts
   * operations, so they hear of them in bulk (a get and a put each). */
  tc->handed_off += n;
  if (tc->handed_off >= pool->tick_every) {
    zp__shards_tick(pool, 2 * tc->handed_off);
    tc->handed_off = 0;
  }
}

/* Gives b, counted in tc, to a shard with its share of the credit. */
static void give_counted(zp_pool *pool, zp__tcache *tc, zp__buf *b) {
  size_t csize = zp__class_size(pool, b->cls);
  zp__counter_sub(&tc->count, 1);
  zp__counter_sub(&tc->credit, csize);
  zp__shard_give(pool, b->cls, b, 1, csize);
}

static void flush_all(zp_pool *pool, zp__tcache *tc) {
  for (unsigned c = 0; c < pool->classes.count; c++)
    if (tc->head[c])
      zp__tcache_flush(pool, tc, c, SIZE_MAX);
  for (; tc->qlen; tc->qlen--) {
    zp__buf *b = tc->qring[tc->qhead];
    tc->qhead = (tc->qhead + 1) % (uint32_t)pool->cfg.quarantine;
    give_counted(pool, tc, b);
  }
  zp__tcache_drop_credit(pool, tc);
}

zp__buf *zp__tcache_quarantine_pop(zp_pool *pool, zp__tcache *tc) {
  zp__buf *b = tc->qring[tc->qhead];
  tc->qhead = (tc->qhead + 1) % (uint32_t)pool->cfg.quarantine;
  tc->qlen--;
  zp__counter_sub(&tc->count, 1);
  zp__counter_add(&tc->room, zp__class_size(pool, b->cls));
  return b;
}

void zp__tcache_quarantine(zp_pool *pool, zp__tcache *tc, zp__buf *b) {
  uint32_t cap = (uint32_t)pool->cfg.quarantine;
  zp__buf *oldest = NULL;
  if (tc->qlen == cap) {
    oldest = tc->qring[tc->qhead];
    tc->qhead = (tc->qhead + 1) % cap;
    tc->qlen--;
  }
  tc->qring[(tc->qhead + tc->qlen) % cap] = b;
  tc->qlen++;
  if (!oldest)
    return;
  /* Out of quarantine: reusable now, from the lists or a shard. */
  if (zp__counter_get(&tc->count) - tc->qlen <= pool->cfg.tls_cache_size) {
    oldest->next = tc->head[oldest->cls];
    tc->head[oldest->cls] = oldest;
  } else {
    give_counted(pool, tc, oldest);
  }
}

void zp__tcache_drop_credit(zp_pool *pool, zp__tcache *tc) {
  zp__budget_release(pool, zp__counter_get(&tc->credit));
  atomic_store_explicit(&tc->credit, 0, memory_order_relaxed);
  atomic_store_explicit(&tc->room, 0, memory_order_relaxed);
}

void zp__tcache_trim_mine(zp_pool *pool, zp__tcache *tc) {
  zp__buf *all = take_all(pool, tc, NULL);
  zp__tcache_drop_credit(pool, tc);
  zp__span_release(pool, all);
}

static void registry_unlink(zp_pool *pool, zp__tcache *tc) {
  if (tc->reg_prev)
    tc->reg_prev->reg_next = tc->reg_next;
  else
    pool->caches = tc->reg_next;
  if (tc->reg_next)
    tc->reg_next->reg_prev = tc->reg_prev;
}

static void fold_counters(zp_pool *pool, zp__tcache *tc) {
  zp__counter_add_shared(&pool->puts, zp__counter_get(&tc->puts));
  zp__counter_add_shared(&pool->hits, zp__counter_get(&tc->hits));
  zp__counter_add_shared(&pool->misses, zp__counter_get(&tc->misses));
  zp__counter_add_shared(&pool->bytes_zeroed,
                         zp__counter_get(&tc->bytes_zeroed));
}

/* Frees the calling thread's caches whose pool was destroyed. */
static void reap_orphans(void) {
  pthread_mutex_lock(&registry_lock);
  for (zp__tcache **pp = &tls_caches; *pp;) {
    zp__tcache *t = *pp;
    if (atomic_load_explicit(&t->pool, memory_order_relaxed)) {
      pp = &t->thread_next;
      continue;
    }
    *pp = t->thread_next;
    if (zp__tls_last == t)
      zp__tls_last = &zp__tcache_none;
    zp__os_free(t);
  }
  pthread_mutex_unlock(&registry_lock);
}

static zp__tcache *tcache_new(zp_pool *pool) {
  pthread_once(&exit_key_once, make_exit_key);
  if (!exit_key_ok)
    return NULL; /* no way to flush at exit: go without a cache */
  if (tls_state == TLS_NEW) {
    /* The destructor runs only for a non-NULL value. */
    if (pthread_setspecific(exit_key, &tls_caches) != 0)
      return NULL;
    tls_state = TLS_REGISTERED;
  }
  size_t lists = pool->classes.count + pool->cfg.quarantine;
  /* Allocated under the registry lock, which the fork handlers take: a
   * fork child finds the cache linked (and returns its buffers) or not
   * allocated, never held only by a thread the child does not have. */
  pthread_mutex_lock(&registry_lock);
  zp__tcache *tc = zp__os_calloc(1, sizeof *tc + lists * sizeof(zp__buf *) +
                                        pool->classes.count);
  if (!tc) {
    pthread_mutex_unlock(&registry_lock);
    return NULL;
  }
  atomic_store_explicit(&tc->pool, pool, memory_order_relaxed);
  tc->owner = pthread_self();
  /* In turn, so that up to ZP__HAND_OFF_TAGS caches have distinct tags (a
   * shared tag only costs the two caches their hand-offs to each other). */
  static _Atomic unsigned tags;
  tc->hand_off_tag =
      1 + atomic_fetch_add_explicit(&tags, 1, memory_order_relaxed) %
              ZP__HAND_OFF_TAGS;
  tc->qring = tc->head + pool->classes.count;
  tc->refilled = (uint8_t *)(tc->head + lists);
  tc->reg_next = pool->caches;
  if (tc->reg_next)
    tc->reg_next->reg_prev = tc;
  pool->caches = tc;
  pthread_mutex_unlock(&registry_lock);
  tc->thread_next = tls_caches;
  tls_caches = tc;
  return tc;
}

zp__tcache *zp__tcache_for(zp_pool *pool) {
  if (tls_state == TLS_EXITING)
    return NULL;
  zp__tcache *tc = NULL;
  bool orphans = false;
  for (zp__tcache *t = tls_caches; t; t = t->thread_next) {
    zp_pool *p = atomic_load_explicit(&t->pool, memory_order_relaxed);
    if (p == pool) {
      tc = t;
      break;
    }
    orphans |= p == NULL;
  }
  if (orphans)
    reap_orphans();
  if (!tc && !(tc = tcache_new(pool)))
    return NULL;
  if (atomic_load_explicit(&tc->drain_req, memory_order_acquire)) {
    /* A trim is emptying this cache, or asked us to (no membarrier): wait
     * for it under the registry lock, then do what is left ourselves. */
    pthread_mutex_lock(&registry_lock);
    if (atomic_load_explicit(&tc->drain_req, memory_order_relaxed)) {
      zp__tcache_trim_mine(pool, tc);
      atomic_store_explicit(&tc->drain_req, 0, memory_order_relaxed);
    }
    pthread_mutex_unlock(&registry_lock);
  }
  zp__tls_last = tc;
  return tc;
}

static void thread_exit(void *unused) {
  (void)unused;
  tls_state = TLS_EXITING;
  zp__tls_last = &zp__tcache_none;
  pthread_mutex_lock(&registry_lock);
  for (zp__tcache *tc = tls_caches; tc; tc = tc->thread_next) {
    zp_pool *pool = atomic_load_explicit(&tc->pool, memory_order_relaxed);
    if (!pool)
      continue;
    /* Back to the shards, not to the OS: another thread will want them. */
    flush_all(pool, tc);
    fold_counters(pool, tc);
    registry_unlink(pool, tc);
  }
  /* Freed under the lock the fork handlers take: unlinked but not yet
   * freed, a cache would be copied into a child that lacks this thread. */
  while (tls_caches) {
    zp__tcache *tc = tls_caches;
    tls_caches = tc->thread_next;
    zp__os_free(tc);
  }
  pthread_mutex_unlock(&registry_lock);
}

void zp__tcaches_orphan(zp_pool *pool) {
  zp__buf *all = NULL;
  pthread_mutex_lock(&registry_lock);
  for (zp__tcache *tc = pool->caches; tc; tc = tc->reg_next) {
    all = take_all(pool, tc, all);
    atomic_store_explicit(&tc->pool, NULL, memory_order_relaxed);
  }
  pool->caches = NULL;
  pthread_mutex_unlock(&registry_lock);
  zp__span_release(pool, all);
  reap_orphans();
}

void zp__tcaches_drain(zp_pool *pool) {
  zp__buf *all = NULL;
  pthread_mutex_lock(&registry_lock);
  for (zp__tcache *tc = pool->caches; tc; tc = tc->reg_next)
    atomic_store_explicit(&tc->drain_req, 1, memory_order_relaxed);
  bool barrier = pool->caches && barrier_all_threads();
  pthread_t self = pthread_self();
  for (zp__tcache *tc = pool->caches; tc; tc = tc->reg_next) {
    /* Without membarrier only our own cache is safe to touch now; the
     * others empty themselves at their owner's next call. */
    if (barrier || pthread_equal(tc->owner, self)) {
      while (atomic_load_explicit(&tc->active, memory_order_acquire))
        sched_yield(); /* the owner is inside one get or put: short */
      all = take_all(pool, tc, all);
      zp__tcache_drop_credit(pool, tc);
      atomic_store_explicit(&tc->drain_req, 0, memory_order_release);
    }
  }
  pthread_mutex_unlock(&registry_lock);
  zp__span_release(pool, all);
}

/*
 * fork(): the child gets one thread, copies of every lock and the caches of
 * threads it does not have. Before the fork every pool lock is taken (lock
 * order: registry, shards, grow), so the child's copies are consistent; in
 * the child the caches of the missing threads go back to the shards, and
 * pools whose memory the child did not inherit (ZP_FORK_DROP) are marked
 * empty-handed.
 */
static void lock_all(void) {
  pthread_mutex_lock(&registry_lock);
  for (zp_pool *p = all_pools; p; p = p->pool_next) {
    for (size_t i = 0; i < p->cfg.num_shards; i++)
      pthread_mutex_lock(&p->shards[i].lock);
    pthread_mutex_lock(&p->grow_lock);
  }
}

static void unlock_all(void) {
  for (zp_pool *p = all_pools; p; p = p->pool_next) {
    pthread_mutex_unlock(&p->grow_lock);
    for (size_t i = p->cfg.num_shards; i-- > 0;)
      pthread_mutex_unlock(&p->shards[i].lock);
  }
}

static void fork_parent(void) {
  unlock_all();
  pthread_mutex_unlock(&registry_lock);
}

/* In a fork child, alone: the budget reserved is what the shards hold
 * plus the credit of the caches left. A thread the child does not have
 * may have been between taking buffers out of its cache and handing them
 * on (a spill, a flush, a refill's rest): those buffers are in no list
 * here and stay unused, but their budget comes back. */
static void recount_budget(zp_pool *p) {
  zp__shard_settle_hand_offs(p);
  size_t reserved = 0;
  for (size_t i = 0; i < p->cfg.num_shards; i++)
    reserved += p->shards[i].idle_bytes;
  for (zp__tcache *tc = p->caches; tc; tc = tc->reg_next)
    reserved += zp__counter_get(&tc->credit);
  atomic_store_explicit(&p->reserved, reserved, memory_order_relaxed);
}

static void fork_child(void) {
  unlock_all(); /* this thread took them: it still holds them here */
  pthread_t self = pthread_self();
  for (zp_pool *p = all_pools; p; p = p->pool_next) {
    /* ZP_FORK_DROP, and any secret-backed pool: no memory in the child. */
    bool dropped = p->cfg.fork_policy == ZP_FORK_DROP ||
                   p->cfg.backing == ZP_BACKING_SECRET;
    p->forked_away = dropped;
    for (zp__tcache *tc = p->caches, *next; tc; tc = next) {
      next = tc->reg_next;
      atomic_store_explicit(&tc->active, 0, memory_order_relaxed);
      atomic_store_explicit(&tc->drain_req, 0, memory_order_relaxed);
      bool mine = pthread_equal(tc->owner, self);
      if (!mine || dropped) {
        if (dropped) { /* its memory is not here: release the metadata */
          zp__buf *list = take_all(p, tc, NULL);
          zp__tcache_drop_credit(p, tc);
          zp__span_release(p, list);
        } else {
          flush_all(p, tc);
        }
        fold_counters(p, tc);
        registry_unlink(p, tc);
        atomic_store_explicit(&tc->pool, NULL, memory_order_relaxed);
        if (!mine)
          zp__os_free(tc); /* its thread does not exist here */
      }
    }
    if (dropped)
      zp__span_release(p, zp__shards_drain(p));
    recount_budget(p);
  }
  pthread_mutex_unlock(&registry_lock);
}

static void register_atfork(void) {
  (void)pthread_atfork(lock_all, fork_parent, fork_child);
}

void zp__pools_link(zp_pool *pool) {
  pthread_once(&atfork_once, register_atfork);
  pthread_mutex_lock(&registry_lock);
  pool->pool_next = all_pools;
  if (all_pools)
    all_pools->pool_prev = pool;
  all_pools = pool;
  pthread_mutex_unlock(&registry_lock);
}

void zp__pools_unlink(zp_pool *pool) {
  pthread_mutex_lock(&registry_lock);
  if (pool->pool_prev)
    pool->pool_prev->pool_next = pool->pool_next;
  else if (all_pools == pool)
    all_pools = pool->pool_next;
  if (pool->pool_next)
    pool->pool_next->pool_prev = pool->pool_prev;
  pool->pool_next = pool->pool_prev = NULL;
  pthread_mutex_unlock(&registry_lock);
}

void zp__registry_lock(void) { pthread_mutex_lock(&registry_lock); }
void zp__registry_unlock(void) { pthread_mutex_unlock(&registry_lock); }

void zp__tcaches_sum(zp_pool *pool, zp_stats *st) {
  for (zp__tcache *tc = pool->caches; tc; tc = tc->reg_next) {
    st->puts += zp__counter_get(&tc->puts);
    st->hits += zp__counter_get(&tc->hits);
    st->misses += zp__counter_get(&tc->misses);
    st->bytes_zeroed += zp__counter_get(&tc->bytes_zeroed);
    st->idle_buffers += zp__counter_get(&tc->count);
    st->idle_bytes += zp__counter_get(&tc->credit) - zp__counter_get(&tc->room);
  }
}
