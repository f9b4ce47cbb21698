/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Shards: the pool's shared idle buffers, a power-of-two array of
 * mutex-guarded LIFO lists per size class. A thread uses the shard of the CPU
 * it runs on, so a buffer put on one thread is found by the next thread on
 * that CPU; when that shard has nothing of a class, a per-class bitmap of
 * non-empty shards finds one to steal from without visiting the others.
 * Shards also enforce the limits: max_buffers_per_shard and, with the thread
 * caches, the byte budget max_pooled_bytes.
 *
 * In front of the shards, one hand-off slot per size class holds the last
 * batch that a consumer (a thread that puts the class but has never
 * refilled it) spilled from its full cache, for the next refill of that
 * class on another thread: one atomic exchange on one cache line each way.
 * Through a shard the same batch costs a lock, the class list, the
 * non-empty bitmap and the eviction policy's per-buffer entries, every one
 * of them last written by the other core. The slot holds one batch: a
 * newer one pushes the older into a shard, through the policy.
 */
#include "os.h"
#include "pool.h"
#include "zp_testing.h"

#include <errno.h>
#include <sched.h>

bool zp__budget_reserve(zp_pool *pool, size_t bytes) {
  size_t cur = atomic_load_explicit(&pool->reserved, memory_order_relaxed);
  do {
    if (bytes > pool->cfg.max_pooled_bytes ||
        cur > pool->cfg.max_pooled_bytes - bytes)
      return false;
  } while (!atomic_compare_exchange_weak_explicit(
      &pool->reserved, &cur, cur + bytes, memory_order_relaxed,
      memory_order_relaxed));
  return true;
}

void zp__budget_release(zp_pool *pool, size_t bytes) {
  if (bytes)
    atomic_fetch_sub_explicit(&pool->reserved, bytes, memory_order_relaxed);
}

int zp__shards_init(zp_pool *pool) {
  size_t n = pool->cfg.num_shards, nclasses = pool->classes.count;
  const zp__eviction_ops *ev = pool->eviction;
  /* Each shard's policy state on its own cache lines: shards are locked
   * by different CPUs. */
  size_t state = ev->state_size ? ev->state_size(pool) : 0;
  state = (state + ZP__CACHE_LINE - 1) & ~(size_t)(ZP__CACHE_LINE - 1);
  pool->mask_words = (n + 63) / 64;
  pool->shards = zp__os_aligned_calloc(ZP__CACHE_LINE, n * sizeof(zp__shard));
  zp__buf **heads = zp__os_calloc(n * nclasses, sizeof(zp__buf *));
  uint32_t *nbufs = zp__os_calloc(n * nclasses, sizeof(uint32_t));
  pool->nonempty =
      zp__os_calloc(nclasses * pool->mask_words, sizeof(_Atomic uint64_t));
  pool->hand_off =
      zp__os_aligned_calloc(ZP__CACHE_LINE, nclasses * sizeof(zp__hand_off));
  /* Pages a policy never touches (CLOCK-Pro's entries beyond what a shard
   * holds) stay uncommitted: see zp__os_aligned_calloc. */
  char *states =
      state ? zp__os_aligned_calloc(ZP__CACHE_LINE, n * state) : NULL;
  if (!pool->shards || !heads || !nbufs || !pool->nonempty || !pool->hand_off ||
      (state && !states)) {
    zp__os_aligned_free(pool->shards);
    zp__os_aligned_free(pool->hand_off);
    zp__os_free(heads);
    zp__os_free(nbufs);
    zp__os_free(pool->nonempty);
    zp__os_aligned_free(states);
    pool->shards = NULL;
    pool->hand_off = NULL;
    pool->nonempty = NULL;
    return -ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    zp__shard *sh = &pool->shards[i];
    pthread_mutex_init(&sh->lock, NULL);
    sh->head = heads + i * nclasses;
    sh->nbufs = nbufs + i * nclasses;
    if (states) {
      sh->evict = states + i * state;
      ev->init(pool, sh);
    }
  }
  return 0;
}

void zp__shards_fini(zp_pool *pool) {
  if (!pool->shards)
    return;
  for (size_t i = 0; i < pool->cfg.num_shards; i++)
    pthread_mutex_destroy(&pool->shards[i].lock);
  zp__os_free(pool->shards[0].head);
  zp__os_free(pool->shards[0].nbufs);
  zp__os_aligned_free(pool->shards[0].evict);
  zp__os_aligned_free(pool->shards);
  zp__os_aligned_free(pool->hand_off);
  zp__os_free(pool->nonempty);
  pool->shards = NULL;
  pool->hand_off = NULL;
  pool->nonempty = NULL;
}

unsigned zp__shard_here(const zp_pool *pool) {
  int cpu = sched_getcpu();
  if (cpu < 0) {
    /* No CPU number: fall back to a hash of the thread. */
    static _Thread_local char anchor;
    cpu = (int)(((uintptr_t)&anchor >> 12) * 0x9E3779B1u >> 8);
  }
  return (unsigned)cpu & (unsigned)pool->shard_mask;
}

static _Atomic uint64_t *mask_word(zp_pool *pool, unsigned cls, size_t i) {
  return &pool->nonempty[cls * pool->mask_words + i / 64];
}

static void mark(zp_pool *pool, unsigned cls, size_t i, bool nonempty) {
  uint64_t bit = (uint64_t)1 << (i % 64);
  if (nonempty)
    atomic_fetch_or_explicit(mask_word(pool, cls, i), bit,
                             memory_order_relaxed);
  else
    atomic_fetch_and_explicit(mask_word(pool, cls, i), ~bit,
                              memory_order_relaxed);
}

/* Unlinks the top buffer of class cls (the shard holds one) onto *released;
 * shard lock held. The caller gives back its budget. */
static void shard_pop(zp_pool *pool, zp__shard *sh, size_t i, unsigned cls,
                      zp__buf **released) {
  zp__buf *b = sh->head[cls];
  sh->head[cls] = b->next;
  sh->nbufs[cls]--;
  sh->count--;
  sh->idle_bytes -= zp__class_size(pool, cls);
  if (!sh->head[cls])
    mark(pool, cls, i, false);
  b->next = *released;
  *released = b;
}

/* Counts and releases what a shard operation evicted; no lock held. */
static void release_evicted(zp_pool *pool, zp__buf *evicted, size_t n) {
  if (!n)
    return;
  zp__counter_add_shared(&pool->evictions, n);
  zp__span_release(pool, evicted);
}

static size_t take_from(zp_pool *pool, size_t i, unsigned cls, zp__buf **list,
                        size_t max) {
  zp__shard *sh = &pool->shards[i];
  size_t csize = zp__class_size(pool, cls), n = 0;
  pthread_mutex_lock(&sh->lock);
  zp__buf *head = sh->head[cls];
  if (sh->nbufs[cls] <= max) {
    /* The whole list, already NULL-terminated: no walk. The buffers were
     * usually put by another thread (producer/consumer), so walking them
     * would wait for each descriptor's line from that thread's cache, one
     * after another, with the lock held. */
    n = sh->nbufs[cls];
    sh->head[cls] = NULL;
  } else {
    zp__buf *last = head;
    for (n = 1; n < max; n++)
      last = last->next;
    sh->head[cls] = last->next;
    last->next = NULL;
  }
  if (n) {
    sh->nbufs[cls] -= (uint32_t)n;
    sh->count -= n;
    sh->idle_bytes -= n * csize;
    if (!sh->head[cls])
      mark(pool, cls, i, false);
    if (pool->eviction->took)
      pool->eviction->took(pool, sh, cls, n); /* n hits */
  }
  pthread_mutex_unlock(&sh->lock);
  *list = n ? head : NULL;
  return n;
}

/* Takes the batch in cls's hand-off slot unless the cache tagged tag left
 * it there (tag 0: any batch); its first max buffers are the caller's, the
 * rest go to a shard. */
static size_t take_hand_off(zp_pool *pool, unsigned cls, zp__buf **list,
                            size_t max, unsigned tag) {
  _Atomic uintptr_t *slot = &pool->hand_off[cls].batch;
  /* Look before the exchange: an empty slot, or the caller's own batch,
   * stays untouched and shared. A consumer that starts to get the class
   * takes its own batch back only when the shards have none
   * (zp__shard_take), so the buffers the shards hold are used first. */
  uintptr_t word = atomic_load_explicit(slot, memory_order_relaxed);
  if (!word || (tag && (word & ZP__HAND_OFF_TAGS) == tag))
    return 0;
  word = atomic_exchange_explicit(slot, 0, memory_order_acquire);
  if (!word)
    return 0;
  zp__buf *head = (zp__buf *)(word & ~(uintptr_t)ZP__HAND_OFF_TAGS);
  if (head->batch_len == 0 || head->batch_len > pool->batch)
    zp__list_corrupt("a hand-off slot");
  size_t n = head->batch_len, csize = zp__class_size(pool, cls);
  if (n > max) {
    zp__buf *last = head;
    for (size_t k = 1; k < max; k++)
      last = last->next;
    zp__shard_give(pool, cls, last->next, n - max, (n - max) * csize);
    last->next = NULL;
    n = max;
  }
  *list = head;
  return n;
}

size_t zp__shard_take(zp_pool *pool, unsigned cls, zp__buf **list, size_t max,
                      unsigned tag) {
  size_t n = take_hand_off(pool, cls, list, max, tag);
  if (n)
    return n;
  size_t home = zp__shard_here(pool);
  n = take_from(pool, home, cls, list, max);
  if (n)
    return n;
  for (size_t w = 0; w < pool->mask_words; w++) {
    uint64_t bits = atomic_load_explicit(
        &pool->nonempty[cls * pool->mask_words + w], memory_order_relaxed);
    while (bits) {
      size_t i = w * 64 + (size_t)__builtin_ctzll(bits);
      bits &= bits - 1;
      if (i != home && (n = take_from(pool, i, cls, list, max)) != 0)
        return n;
    }
  }
  /* Nothing in the shards: the caller's own batch, rather than new memory. */
  return tag ? take_hand_off(pool, cls, list, max, 0) : 0;
}

/* Links b at the top of its class list; shard lock held. */
static void shard_push(zp_pool *pool, zp__shard *sh, size_t i, zp__buf *b) {
  if (!sh->head[b->cls])
    mark(pool, b->cls, i, true);
  b->next = sh->head[b->cls];
  sh->head[b->cls] = b;
  sh->nbufs[b->cls]++;
  sh->count++;
  sh->idle_bytes += zp__class_size(pool, b->cls);
}

void zp__shard_give(zp_pool *pool, unsigned cls, zp__buf *list, size_t n,
                    size_t credit) {
  size_t i = zp__shard_here(pool);
  zp__shard *sh = &pool->shards[i];
  const zp__eviction_ops *ev = pool->eviction;
  size_t csize = zp__class_size(pool, cls), nevicted = 0;
  zp__buf *evicted = NULL;
  pthread_mutex_lock(&sh->lock);
  /* Exactly n buffers: a list's last link may be stale (a buffer fresh out
   * of zp_put still carries the link it had in a cache). */
  for (; n; n--) {
    zp__buf *b = list;
    list = b->next;
    bool budget = credit >= csize ? (credit -= csize, true)
                                  : zp__budget_reserve(pool, csize);
    if (ev->admit && !ev->admit(pool, sh, cls)) {
      if (budget)
        zp__budget_release(pool, csize);
      b->next = evicted;
      evicted = b;
      nevicted++;
      continue;
    }
    /* b is linked first, so that a victim of its own class is b itself
     * (the top of the list): the buffer in hand goes, nothing else moves. */
    shard_push(pool, sh, i, b);
    bool b_idle = true;
    for (;;) {
      /* Without budget for b, or over the count limit, the policy must
       * name a victim; else it may still want one for its own limits. */
      bool must = !budget || sh->count > pool->cfg.max_buffers_per_shard;
      int v = ev->victim(pool, sh, cls, must);
      if (v < 0)
        break;
      bool is_b = b_idle && sh->head[v] == b;
      shard_pop(pool, sh, i, (unsigned)v, &evicted);
      nevicted++;
      if (is_b) {
        b_idle = false;
        if (budget)
          zp__budget_release(pool, csize);
        budget = true; /* b needs none any more */
      } else {
        zp__budget_release(pool, zp__class_size(pool, (unsigned)v));
        if (!budget)
          budget = zp__budget_reserve(pool, csize);
      }
    }
  }
  pthread_mutex_unlock(&sh->lock);
  zp__budget_release(pool, credit); /* credit beyond what was kept */
  release_evicted(pool, evicted, nevicted);
}

void zp__shard_hand_off(zp_pool *pool, unsigned cls, zp__buf *list, size_t n,
                        unsigned tag) {
  list->batch_len = (uint32_t)n;
  uintptr_t word = atomic_exchange_explicit(
      &pool->hand_off[cls].batch, (uintptr_t)list | tag, memory_order_acq_rel);
  zp__buf *old = (zp__buf *)(word & ~(uintptr_t)ZP__HAND_OFF_TAGS);
  if (old)
    zp__shard_give(pool, cls, old, old->batch_len,
                   old->batch_len * zp__class_size(pool, cls));
}

void zp__shards_tick(zp_pool *pool, size_t ops) {
  const zp__eviction_ops *ev = pool->eviction;
  if (!ev->ticked)
    return;
  for (size_t i = 0; i < pool->cfg.num_shards; i++) {
    zp__shard *sh = &pool->shards[i];
    zp__buf *evicted = NULL;
    size_t nevicted = 0;
    int v;
    pthread_mutex_lock(&sh->lock);
    ev->ticked(pool, sh, ops);
    /* Until -1, which also ends the tick's release quota (a policy names
     * no class once the shard holds nothing). */
    while ((v = ev->victim(pool, sh, 0, false)) >= 0) {
      shard_pop(pool, sh, i, (unsigned)v, &evicted);
      zp__budget_release(pool, zp__class_size(pool, (unsigned)v));
      nevicted++;
    }
    pthread_mutex_unlock(&sh->lock);
    release_evicted(pool, evicted, nevicted);
  }
}

void zp__shard_settle_hand_offs(zp_pool *pool) {
  for (unsigned c = 0; c < pool->classes.count; c++) {
    zp__buf *list;
    size_t n = take_hand_off(pool, c, &list, SIZE_MAX, 0);
    if (n)
      zp__shard_give(pool, c, list, n, n * zp__class_size(pool, c));
  }
}

zp__buf *zp__shards_drain(zp_pool *pool) {
  zp__buf *all = NULL;
  zp__shard_settle_hand_offs(pool);
  for (size_t i = 0; i < pool->cfg.num_shards; i++) {
    zp__shard *sh = &pool->shards[i];
    pthread_mutex_lock(&sh->lock);
    for (unsigned c = 0; c < pool->classes.count; c++) {
      zp__buf *b = sh->head[c];
      if (!b)
        continue;
      /* Exactly nbufs[c] buffers; a longer list holds one twice. */
      for (uint32_t k = 1; k < sh->nbufs[c] && b; k++)
        b = b->next;
      if (!b || b->next)
        zp__list_corrupt("a shard");
      b->next = all;
      all = sh->head[c];
      sh->head[c] = NULL;
      sh->nbufs[c] = 0;
      mark(pool, c, i, false);
    }
    zp__budget_release(pool, sh->idle_bytes);
    if (pool->eviction->dropped_all)
      pool->eviction->dropped_all(pool, sh);
    sh->count = 0;
    sh->idle_bytes = 0;
    pthread_mutex_unlock(&sh->lock);
  }
  return all;
}

void zp__shard_missed(zp_pool *pool, unsigned cls) {
  if (!pool->eviction->missed)
    return;
  zp__shard *sh = &pool->shards[zp__shard_here(pool)];
  pthread_mutex_lock(&sh->lock);
  pool->eviction->missed(pool, sh, cls);
  pthread_mutex_unlock(&sh->lock);
}

const char *zp__pool_eviction_name(zp_pool *pool) {
  return pool->eviction->name;
}

const char *zp__pool_check_eviction(zp_pool *pool) {
  const char *bad = NULL;
  for (size_t i = 0; i < pool->cfg.num_shards && !bad; i++) {
    zp__shard *sh = &pool->shards[i];
    size_t count = 0, bytes = 0;
    pthread_mutex_lock(&sh->lock);
    for (unsigned c = 0; c < pool->classes.count && !bad; c++) {
      size_t len = 0;
      for (zp__buf *b = sh->head[c]; b; b = b->next)
        len++;
      if (len != sh->nbufs[c])
        bad = "a class list's length != its count";
      count += len;
      bytes += len * zp__class_size(pool, c);
    }
    if (!bad && (count != sh->count || bytes != sh->idle_bytes))
      bad = "a shard's totals != its lists";
    if (!bad && sh->count > pool->cfg.max_buffers_per_shard)
      bad = "a shard holds more than max_buffers_per_shard";
    if (!bad && pool->eviction->check)
      bad = pool->eviction->check(pool, sh);
    pthread_mutex_unlock(&sh->lock);
  }
  return bad;
}
