/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The public API. zp_get and zp_put run their fast path here, inline: a
 * thread-cache hit touches only the calling thread's cache and the buffer's
 * descriptor: no lock, no atomic read-modify-write.
 * Everything else goes to the slow paths below and to the modules.
 */
#include "pool.h"
#include "os.h"
#include "pagemap.h"
#include "track.h"
#include "zp_testing.h"

#include <errno.h>
#include <pthread.h>

static pthread_once_t topo_once = PTHREAD_ONCE_INIT;
static zp__topology topo;
static void detect_topology(void) { zp__topology_detect(&topo); }

static void pool_free(zp_pool *pool) {
  zp__track_pool_free(pool);
  zp__shards_fini(pool);
  zp__os_free(pool->partial);
  pthread_mutex_destroy(&pool->grow_lock);
  zp__os_aligned_free(pool);
}

zp_pool *zp_pool_new(const zp_builder *builder) {
  zp_builder cfg;
  pthread_once(&topo_once, detect_topology);
  if (zp__config_resolve(&topo, builder, &cfg, NULL) != 0) {
    errno = EINVAL;
    return NULL;
  }
  zp_pool *pool = zp__os_aligned_calloc(ZP__CACHE_LINE, sizeof *pool);
  if (!pool)
    return NULL;
  pool->shard_mask = cfg.num_shards - 1;
  pool->eviction = zp__eviction_for(cfg.eviction_policy);
  zp__size_classes_init(&pool->classes, cfg.min_buffer_size);
  /* Half a cache per refill or flush, but at most half a shard: a flush
   * larger than a shard keeps would evict the rest on arrival. */
  size_t batch = cfg.tls_cache_size / 2;
  if (batch > cfg.max_buffers_per_shard / 2)
    batch = cfg.max_buffers_per_shard / 2;
  pool->batch = batch ? batch : 1;
  /* A batch in a hand-off slot is out of the eviction policy's reach: at
   * most 1/16 of the budget per slot (measured on the eviction benchmarks: a
   * 512 KiB buffer held in a slot under a 1/8 budget cost CLOCK-Pro 13 %
   * more misses on the phase trace). */
  pool->hand_off_max = cfg.max_pooled_bytes / 16 / pool->batch;
  /* A tick locks every shard: at most one per 64 hand-offs per shard. */
  pool->tick_every = 64 * cfg.num_shards < 1024 ? 1024 : 64 * cfg.num_shards;
  /* One cache may hold a share of the budget: half of it spread over as
   * many caches as there are shards, but always room for one buffer. */
  pool->tc_byte_cap = cfg.max_pooled_bytes / (2 * cfg.num_shards);
  if (pool->tc_byte_cap < cfg.min_buffer_size)
    pool->tc_byte_cap = cfg.min_buffer_size;
  if (cfg.backing == ZP_BACKING_SECRET) {
    /* The fallback chain: memfd_secret, else mlock + MADV_DONTDUMP (pinned,
     * best effort unless pin_policy is strict), which config reports. */
    cfg.pinned_memory = true;
    if (!zp__os_secret_available())
      cfg.backing = ZP_BACKING_ANONYMOUS;
  }
  pool->cfg = cfg;
  pool->get_checks = cfg.verify_on_get != ZP_VERIFY_OFF || cfg.zero_on_get;
  /* With a quarantine every put takes the slow path, which holds it. */
  pool->put_cache_limit = cfg.quarantine ? 0 : cfg.tls_cache_size;
  pthread_mutex_init(&pool->grow_lock, NULL);
  zp__track_pool_new(pool);
  pool->partial = zp__os_calloc(pool->classes.count, sizeof(zp__span *));
  if (!pool->partial || zp__shards_init(pool) != 0) {
    pool_free(pool);
    errno = ENOMEM;
    return NULL;
  }
  zp__pools_link(pool);
  return pool;
}

void zp_pool_destroy(zp_pool *pool) {
  if (!pool)
    return;
  if (atomic_load_explicit(&pool->destroyed, memory_order_relaxed))
    zp__misuse("zp_pool_destroy(%p): destroyed twice", (void *)pool);
  atomic_store_explicit(&pool->destroyed, true, memory_order_relaxed);
  zp__pools_unlink(pool);
  zp__tcaches_orphan(pool);
  zp__span_release(pool, zp__shards_drain(pool));
  zp__shards_fini(pool);
  zp__span_destroy_pool(pool);
  if (pool->zombie_out == 0)
    pool_free(pool);
  /* else the last zp_put of a buffer still out frees the pool */
}

ZP__SLOW __attribute__((noreturn)) static void handed_out_twice(zp__buf *b) {
  zp__misuse("buffer %p is already out: it was put twice by racing threads",
             (void *)b->addr);
}

static inline void *hand_out(zp_pool *pool, zp__buf *b, size_t size) {
  if (zp__unlikely(atomic_load_explicit(&b->state, memory_order_relaxed) ==
                   ZP__OUT))
    handed_out_twice(b);
  b->size = size;
  atomic_store_explicit(&b->state, ZP__OUT, memory_order_relaxed);
  zp__track_hand_out(pool, b->addr, size);
  return b->addr;
}

/* The offset of the first nonzero byte of [p, p + n), or n. */
static size_t first_nonzero(const unsigned char *p, size_t n) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    uint64_t acc = 0, w;
    for (size_t j = 0; j < 64; j += 8) {
      memcpy(&w, p + i + j, 8);
      acc |= w;
    }
    if (acc)
      break;
  }
  for (; i < n; i++)
    if (p[i])
      return i;
  return n;
}

/* verify_on_get and zero_on_get, for a buffer that was idle. */
ZP__SLOW static void get_checks(zp_pool *pool, zp__buf *b) {
  if (pool->cfg.verify_on_get == ZP_VERIFY_OFF)
    return;
  size_t cap = zp__class_size(pool, b->cls), bad = cap;
  unsigned char *p = (unsigned char *)b->addr;
  zp__track_peek_begin(p, cap);
  if (pool->cfg.verify_on_get == ZP_VERIFY_FULL) {
    bad = first_nonzero(p, cap);
  } else {
    /* One cache line per page, and the last one. */
    for (size_t off = 0; off < cap && bad == cap; off += ZP__PAGE) {
      size_t n = cap - off < 64 ? cap - off : 64;
      if (first_nonzero(p + off, n) < n)
        bad = off + first_nonzero(p + off, n);
    }
    size_t tail = cap < 64 ? 0 : cap - 64;
    if (bad == cap && first_nonzero(p + tail, cap - tail) < cap - tail)
      bad = tail + first_nonzero(p + tail, cap - tail);
  }
  unsigned char value = bad < cap ? p[bad] : 0;
  zp__track_peek_end(p, cap);
  if (bad < cap)
    zp__misuse("zp_get: buffer %p was written after it was put: byte %zu "
               "is 0x%02x, not zero",
               (void *)p, bad, value);
}

/* Hands out a buffer that was idle (a hit). */
static inline void *hand_out_idle(zp_pool *pool, zp__buf *b, size_t size) {
  if (zp__unlikely(pool->get_checks)) {
    get_checks(pool, b);
    void *p = hand_out(pool, b, size);
    if (pool->cfg.zero_on_get)
      zp__wipe(p, size);
    return p;
  }
  return hand_out(pool, b, size);
}

/* Pushes b on tc's list; the caller checked count and room. */
static inline void tc_push(zp__tcache *tc, zp__buf *b, size_t csize) {
  b->next = tc->head[b->cls];
  tc->head[b->cls] = b;
  zp__counter_add(&tc->count, 1);
  zp__counter_sub(&tc->room, csize);
}

/* Pops the top buffer of class cls, or NULL. */
static inline zp__buf *tc_pop(zp__tcache *tc, unsigned cls, size_t csize) {
  zp__buf *b = tc->head[cls];
  if (zp__likely(b != NULL)) {
    /* The next buffer's descriptor, for the next get of this class: when
     * another thread put it (producer/consumer), its line is in that
     * thread's cache, and the next pop would wait for it. */
    __builtin_prefetch(b->next, 1, 3);
    tc->head[cls] = b->next;
    zp__counter_sub(&tc->count, 1);
    zp__counter_add(&tc->room, csize);
  }
  return b;
}

/* The calling thread's cache for pool, entered; NULL: go without one. */
static zp__tcache *tc_for_slow_path(zp_pool *pool) {
  zp__tcache *tc = zp__tcache_for(pool);
  return tc && zp__tc_enter(pool, tc) ? tc : NULL;
}

ZP__SLOW static void *get_slow(zp_pool *pool, size_t size, unsigned cls) {
  if (atomic_load_explicit(&pool->destroyed, memory_order_relaxed))
    zp__misuse("zp_get(%p): the pool was destroyed", (void *)pool);
  if (pool->forked_away) {
    errno = ENOMEM; /* ZP_FORK_DROP: this child has none of the memory */
    return NULL;
  }
  size_t csize = zp__class_size(pool, cls);
  zp__tcache *tc = tc_for_slow_path(pool);
  zp__buf *b = NULL, *list;
  bool hit = true;
  if (tc && (b = tc_pop(tc, cls, csize)) == NULL) {
    /* Refill a batch from the shards; their budget becomes our credit. One
     * buffer to hand out, plus what fits under tls_cache_size and
     * tc_byte_cap: a refill must not let one cache hoard the budget. */
    size_t count = zp__counter_get(&tc->count);
    size_t idle = zp__counter_get(&tc->credit) - zp__counter_get(&tc->room);
    size_t fit_count = pool->cfg.tls_cache_size - count;
    size_t fit_bytes =
        idle < pool->tc_byte_cap ? (pool->tc_byte_cap - idle) / csize : 0;
    size_t want = 1 + (fit_count < fit_bytes ? fit_count : fit_bytes);
    tc->refilled[cls] = 1;
    size_t n = zp__shard_take(pool, cls, &list,
                              want < pool->batch ? want : pool->batch,
                              tc->hand_off_tag);
    if (n) {
      /* The first is handed out; the rest become the class's list as they
       * are (it was empty), without a walk: the pops that follow touch
       * each descriptor one get at a time (tc_pop prefetches the next). */
      b = list;
      zp__counter_add(&tc->count, n - 1);
      zp__counter_add(&tc->credit, n * csize);
      zp__counter_add(&tc->room, csize); /* n * csize in, (n - 1) held */
      /* Published after the credit: a fork child that finds this thread
       * mid-refill returns the credit with the cache (tcache.c). */
      tc->head[cls] = b->next;
    }
    /* Keep at most tc_byte_cap of credit beyond what we hold. */
    size_t room = zp__counter_get(&tc->room);
    size_t keep = pool->tc_byte_cap + (b ? csize : 0);
    if (room > keep) {
      zp__budget_release(pool, room - keep);
      zp__counter_sub(&tc->credit, room - keep);
      zp__counter_sub(&tc->room, room - keep);
    }
  } else if (!tc && zp__shard_take(pool, cls, &list, 1, 0)) {
    b = list;
    zp__budget_release(pool, csize);
  }
  if (!b) {
    hit = false;
    if ((b = zp__span_carve(pool, cls)) != NULL)
      zp__shard_missed(pool, cls);
  }
  if (tc) {
    if (b)
      zp__counter_add(hit ? &tc->hits : &tc->misses, 1);
    zp__tc_leave(tc);
  } else if (b) {
    zp__counter_add_shared(hit ? &pool->hits : &pool->misses, 1);
  }
  if (!b) {
    errno = ENOMEM;
    return NULL;
  }
  /* A slot carved again after release may have been written through a
   * stale pointer since: it gets the same checks as an idle buffer. */
  return hit || b->recycled ? hand_out_idle(pool, b, size)
                            : hand_out(pool, b, size);
}

void *zp_get(zp_pool *pool, size_t size) {
  if (zp__unlikely(!pool)) {
    errno = EINVAL;
    return NULL;
  }
  if (zp__unlikely(size > ZP_MAX_REQUEST)) {
    errno = ENOMEM;
    return NULL;
  }
  unsigned cls = zp__class_of(&pool->classes, size);
  zp__tcache *tc = zp__tls_last;
  if (zp__likely(zp__tc_enter(pool, tc))) {
    zp__buf *b = tc_pop(tc, cls, zp__class_size(pool, cls));
    if (zp__likely(b != NULL)) {
      zp__counter_add(&tc->hits, 1);
      zp__tc_leave(tc);
      return hand_out_idle(pool, b, size);
    }
    zp__tc_leave(tc);
  }
  return get_slow(pool, size, cls);
}

ZP__SLOW static void zombie_put(zp_pool *pool, zp__span *s, zp__buf *b) {
  if (zp__span_zombie_put(pool, s, b))
    pool_free(pool);
}

/* A put the fast path could not finish: no usable cache, a full one, or a
 * destroyed pool. b is IDLE and wiped; used bytes were wiped. */
ZP__SLOW static void put_slow(zp_pool *pool, zp__buf *b, size_t used) {
  if (atomic_load_explicit(&pool->destroyed, memory_order_relaxed)) {
    zombie_put(pool, zp__pagemap_lookup(b->addr), b);
    return;
  }
  unsigned cls = b->cls;
  size_t csize = zp__class_size(pool, cls);
  zp__tcache *tc = tc_for_slow_path(pool);
  if (!tc) {
    zp__counter_add_shared(&pool->puts, 1);
    zp__counter_add_shared(&pool->bytes_zeroed, used);
    zp__shard_give(pool, cls, b, 1, 0);
    return;
  }
  zp__counter_add(&tc->puts, 1);
  zp__counter_add(&tc->bytes_zeroed, used);
  size_t held_back = tc->qlen; /* in quarantine: not in the lists */
  if (zp__counter_get(&tc->count) - held_back >= pool->cfg.tls_cache_size) {
    /* Full: a batch of this class goes to a shard or the hand-off slot,
     * or, when the cache holds none, of another class (one the thread may
     * no longer use), so a stale size cannot keep the cache full for good. */
    unsigned victim = cls;
    for (unsigned c = 0; !tc->head[victim] && c < pool->classes.count; c++)
      victim = c;
    zp__tcache_spill(pool, tc, victim);
  }
  size_t room = zp__counter_get(&tc->room);
  size_t idle = zp__counter_get(&tc->credit) - room;
  size_t cap_bytes = pool->tc_byte_cap +
                     (pool->cfg.quarantine ? pool->cfg.quarantine * csize : 0);
  bool fits = (pool->cfg.quarantine ||
               zp__counter_get(&tc->count) < pool->cfg.tls_cache_size) &&
              idle + csize <= cap_bytes;
  if (fits && room < csize) {
    size_t need = csize - room;
    size_t more = cap_bytes - idle - csize; /* room to grow */
    more = more < need ? more : need;       /* lease 2x when we can */
    if (zp__budget_reserve(pool, need + more))
      need += more;
    else if (!zp__budget_reserve(pool, need))
      fits = false;
    if (fits) {
      zp__counter_add(&tc->credit, need);
      zp__counter_add(&tc->room, need);
    }
  }
  /* Over the budget with a quarantine: the oldest held-back buffers go to
   * the OS before the newest one skips its quarantine. */
  while (!fits && pool->cfg.quarantine && tc->qlen) {
    zp__buf *old = zp__tcache_quarantine_pop(pool, tc);
    old->next = NULL;
    zp__counter_add_shared(&pool->evictions, 1);
    zp__span_release(pool, old);
    fits = zp__counter_get(&tc->room) >= csize;
  }
  if (fits && pool->cfg.quarantine) {
    zp__counter_add(&tc->count, 1);
    zp__counter_sub(&tc->room, csize);
    zp__tcache_quarantine(pool, tc, b);
  } else if (fits) {
    tc_push(tc, b, csize);
  }
  zp__tc_leave(tc);
  if (!fits)
    zp__shard_give(pool, cls, b, 1, 0);
}

/* Reports a put of a buffer that is not out. */
ZP__SLOW __attribute__((noreturn)) static void bad_state(const void *p,
                                                         int state) {
  if (state == ZP__IDLE)
    zp__misuse("zp_put(%p): double put, the buffer is already back in the "
               "pool",
               p);
  zp__misuse("zp_put(%p): the buffer is not out (double put, or never "
             "handed out)",
             p);
}

/* The page map's way to b: two dependent loads to the span, whose
 * geometry the thread then keeps (zp__tcache.span). The epoch is read
 * before the lookup, so a span freed after it is not trusted later. */
__attribute__((noinline)) static zp__buf *
find_buf_paged(zp_pool *pool, zp__tcache *tc, const void *p) {
  uint64_t epoch = atomic_load_explicit(&zp__span_epoch, memory_order_acquire);
  zp__span *s;
  zp__buf *b = zp__span_find(pool, p, &s);
  if (tc != &zp__tcache_none)
    tc->span = (zp__span_view){.base = (uintptr_t)s->base,
                               .limit = s->limit,
                               .step = s->step,
                               .recip = s->recip,
                               .bufs = s->bufs,
                               .pool = s->pool,
                               .epoch = epoch};
  return b;
}

/* The descriptor of buffer p of pool when p lies in the thread's span
 * view, else NULL; aborts on a pointer into it that is not the start of a
 * buffer. Nothing here loads through p until the descriptor: on a get-put
 * cycle p feeds only a subtract, a multiply and a shift (the page map's
 * dependent loads were the longest chain of a cycle).
 *
 * Why the epoch check suffices for a valid put: the buffer is out, so its
 * span S is live. If the view's span V was freed before S was created, the
 * bump of that free happened before the get that handed p out, hence
 * before this load, which then sees a newer epoch. Otherwise V and S were
 * live together and both contain p, so V is S: the descriptor read is of
 * p's own live span. (A stale pointer racing the free of its span is not
 * a valid put; the page map path has the same limit.) */
static inline zp__buf *find_buf_cached(zp_pool *pool, zp__tcache *tc,
                                       const void *p) {
  const zp__span_view *v = &tc->span;
  size_t off = (uintptr_t)p - v->base;
  if (zp__likely(off < v->limit && v->pool == pool &&
                 v->epoch == atomic_load_explicit(&zp__span_epoch,
                                                  memory_order_relaxed))) {
    size_t idx = (size_t)((off * v->recip) >> 48);
    if (zp__unlikely(off != idx * v->step))
      zp__span_bad_pointer(pool, p);
    return &v->bufs[idx];
  }
  return NULL;
}

/* The second half of a put, after the wipe: into the thread cache when it
 * has room. A separate step so that only pool, b and used live across the
 * call to explicit_bzero (fewer registers to save on every put). */
static inline void put_cached(zp_pool *pool, zp__buf *b, size_t used) {
  size_t csize = zp__class_size(pool, b->cls);
  zp__track_put(pool, b->addr, b->size, csize);
  /* A usable cache implies a live pool: destroy orphans every cache. */
  zp__tcache *tc = zp__tls_last;
  if (zp__likely(zp__tc_enter(pool, tc))) {
    if (zp__likely(zp__counter_get(&tc->count) < pool->put_cache_limit &&
                   zp__counter_get(&tc->room) >= csize)) {
      zp__counter_add(&tc->puts, 1);
      zp__counter_add(&tc->bytes_zeroed, used);
      tc_push(tc, b, csize);
      zp__tc_leave(tc);
      return;
    }
    zp__tc_leave(tc);
  }
  put_slow(pool, b, used);
}

/* The wipe and the rest of a put that wrote bytes: out of line, so that
 * zp_put itself calls nothing on a hit (no registers to save) and this
 * function keeps just pool, b and used across explicit_bzero. */
__attribute__((noinline)) static void put_wipe(zp_pool *pool, zp__buf *b,
                                               size_t used) {
  zp__wipe(b->addr, used);
  put_cached(pool, b, used);
}

/* Validates buf, marks it idle, then wipes and caches it. */
static inline void put_buf(zp_pool *pool, zp__buf *b, size_t used,
                           bool partial) {
  size_t size = b->size;
  if (!partial)
    used = size;
  else if (zp__unlikely(used > size) &&
           atomic_load_explicit(&b->state, memory_order_relaxed) == ZP__OUT)
    zp__misuse("zp_put_used(%p, %zu): used is larger than the %zu bytes "
               "handed out",
               (void *)b->addr, used, size);
  /* A load and a store, not an exchange: a locked instruction would wait
   * for the caller's writes to the buffer to drain (~6 ns at 1 KiB). Two
   * puts racing on one buffer can both pass here; hand_out catches the
   * duplicate when the second copy is popped while the first is out. */
  int prev = atomic_load_explicit(&b->state, memory_order_relaxed);
  if (zp__unlikely(prev != ZP__OUT))
    bad_state(b->addr, prev);
  atomic_store_explicit(&b->state, ZP__IDLE, memory_order_relaxed);
  if (used)
    put_wipe(pool, b, used);
  else
    put_cached(pool, b, 0);
}

/* A put whose buffer is outside the thread's cached span. */
__attribute__((noinline)) static void put_paged(zp_pool *pool, void *buf,
                                                size_t used, bool partial) {
  put_buf(pool, find_buf_paged(pool, zp__tls_last, buf), used, partial);
}

static inline void put_impl(zp_pool *pool, void *buf, size_t used,
                            bool partial) {
  zp__buf *b = find_buf_cached(pool, zp__tls_last, buf);
  if (zp__likely(b != NULL))
    put_buf(pool, b, used, partial);
  else
    put_paged(pool, buf, used, partial);
}

void zp_put(zp_pool *pool, void *buf) {
  if (!buf)
    return;
  if (!pool)
    zp__misuse("zp_put(NULL, %p): no pool", buf);
  put_impl(pool, buf, 0, false);
}

void zp_put_used(zp_pool *pool, void *buf, size_t used) {
  if (!buf)
    return;
  if (!pool)
    zp__misuse("zp_put_used(NULL, %p): no pool", buf);
  put_impl(pool, buf, used, true);
}

int zp_pool_stats(zp_pool *pool, zp_stats *out) {
  if (!pool || !out)
    return -EINVAL;
  zp_stats st = {0};
  /* Under the registry lock throughout: a thread exiting meanwhile would
   * otherwise move its counters and buffers into the pool between the two
   * halves of the sum and be counted twice. */
  /* The hand-off slots' batches go to the shards, where they are counted;
   * before the registry lock, which a shard's evictions need not wait on. */
  zp__shard_settle_hand_offs(pool);
  zp__registry_lock();
  zp__tcaches_sum(pool, &st);
  st.puts += zp__counter_get(&pool->puts);
  st.hits += zp__counter_get(&pool->hits);
  st.misses += zp__counter_get(&pool->misses);
  st.bytes_zeroed += zp__counter_get(&pool->bytes_zeroed);
  st.evictions = zp__counter_get(&pool->evictions);
  st.pin_failures = zp__counter_get(&pool->pin_failures);
  for (size_t i = 0; i < pool->cfg.num_shards; i++) {
    zp__shard *sh = &pool->shards[i];
    pthread_mutex_lock(&sh->lock);
    st.idle_buffers += sh->count;
    st.idle_bytes += sh->idle_bytes;
    pthread_mutex_unlock(&sh->lock);
  }
  pthread_mutex_lock(&pool->grow_lock);
  st.mapped_bytes = pool->mapped_bytes;
  st.os_maps = pool->os_maps;
  st.pinned_bytes = pool->pinned_bytes;
  st.secret_bytes = pool->secret_bytes;
  st.guard_pages = pool->guard_pages;
  pthread_mutex_unlock(&pool->grow_lock);
  zp__registry_unlock();
  st.gets = st.hits + st.misses;
  st.outstanding_buffers = st.gets - st.puts;
  *out = st;
  return 0;
}

int zp_pool_trim(zp_pool *pool) {
  if (!pool)
    return -EINVAL;
  zp__tcaches_drain(pool);
  zp__span_release(pool, zp__shards_drain(pool));
  return 0;
}

int zp_pool_config(zp_pool *pool, zp_builder *out) {
  if (!pool || !out)
    return -EINVAL;
  *out = pool->cfg;
  return 0;
}

int zp_builder_validate(const zp_builder *builder, const char **bad_field) {
  pthread_once(&topo_once, detect_topology);
  zp_builder ignored;
  return zp__config_resolve(&topo, builder, &ignored, bad_field);
}

size_t zp_buffer_size(zp_pool *pool, const void *buf) {
  if (!pool || !buf)
    return 0;
  /* Spans are freed under grow_lock: holding it, the span found cannot go
   * away under us, even if buf is stale and another thread trims. */
  size_t size = 0;
  pthread_mutex_lock(&pool->grow_lock);
  zp__span *s = zp__pagemap_lookup(buf);
  uintptr_t p = (uintptr_t)buf;
  if (s && s->pool == pool && p >= (uintptr_t)s->base &&
      p - (uintptr_t)s->base < s->limit) {
    size_t off = p - (uintptr_t)s->base, idx = off / s->step;
    zp__buf *b = &s->bufs[idx];
    if (off == idx * s->step &&
        atomic_load_explicit(&b->state, memory_order_relaxed) == ZP__OUT)
      size = b->size;
  }
  pthread_mutex_unlock(&pool->grow_lock);
  return size;
}

unsigned zp__sanitizer_mode(void) {
  unsigned mode = 0;
#ifdef ZP__ASAN
  mode |= ZP__MODE_ASAN;
#endif
#ifdef ZP_WITH_VALGRIND
  mode |= ZP__MODE_VALGRIND;
#endif
  return mode;
}

const char *zp_version_string(void) { return ZP_VERSION_STRING; }
unsigned zp_version_number(void) { return ZP_VERSION_NUMBER; }
