/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Spans: the pool's memory from the OS. Classes up to SLAB_MAX_CLASS are
 * carved from slabs holding many buffers, so 20000 small idle buffers cost a
 * few dozen mappings, not 20000 (vm.max_map_count is 65530); larger classes
 * get one mapping per buffer, returned to the OS when the buffer is evicted.
 * Span lists and counts are guarded by pool->grow_lock, which is also held
 * while a new span is mapped. All off the fast path.
 */
#include "os.h"
#include "pagemap.h"
#include "pool.h"
#include "track.h"

#include <errno.h>
#include <stdalign.h>
#include <stdio.h>

#define SLAB_MAX_CLASS ((size_t)64 << 10)
#define SLAB_MIN_BYTES ((size_t)64 << 10)
#define SLAB_MAX_BYTES ((size_t)1 << 20)

/* Slots of stride bytes, step apart (stride, or stride + a guard page):
 * one slot for a large class, else enough for a 64 KiB..1 MiB slab. */
static void span_geometry(size_t stride, size_t step, size_t *bytes,
                          uint32_t *nslots) {
  if (stride > SLAB_MAX_CLASS) {
    *bytes = zp__align_up(stride, ZP__PAGE);
    *nslots = 1;
    return;
  }
  size_t want = step * 16;
  if (want < SLAB_MIN_BYTES)
    want = SLAB_MIN_BYTES;
  if (want > SLAB_MAX_BYTES)
    want = SLAB_MAX_BYTES;
  *nslots = (uint32_t)(want / step);
  *bytes = zp__align_up((size_t)*nslots * step, ZP__PAGE);
}

/* Per-buffer guard pages split a slab into 2 VMAs per slot; all pools of
 * the process together stay under a quarter of vm.max_map_count. */
static atomic_size_t slot_guard_vmas;
static size_t slot_guard_budget(void) {
  static atomic_size_t budget;
  size_t b = atomic_load_explicit(&budget, memory_order_relaxed);
  if (!b) {
    unsigned long max = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
      if (fscanf(f, "%lu", &max) != 1)
        max = 65530;
      fclose(f);
    }
    b = max / 4;
    atomic_store_explicit(&budget, b, memory_order_relaxed);
  }
  return b;
}

static bool take_slot_guard_vmas(size_t n) {
  size_t cur = atomic_load_explicit(&slot_guard_vmas, memory_order_relaxed);
  do {
    if (cur + n > slot_guard_budget())
      return false;
  } while (!atomic_compare_exchange_weak_explicit(&slot_guard_vmas, &cur,
                                                  cur + n, memory_order_relaxed,
                                                  memory_order_relaxed));
  return true;
}

static size_t span_guard_pages(const zp__span *s) {
  return (s->guard ? 2 : 0) + (s->slot_guards ? s->nslots : 0);
}

static void list_unlink_partial(zp_pool *pool, zp__span *s) {
  if (!s->in_partial)
    return;
  if (s->pprev)
    s->pprev->pnext = s->pnext;
  else
    pool->partial[s->cls] = s->pnext;
  if (s->pnext)
    s->pnext->pprev = s->pprev;
  s->pnext = s->pprev = NULL;
  s->in_partial = false;
}

static void list_link_partial(zp_pool *pool, zp__span *s) {
  if (s->in_partial)
    return;
  s->pprev = NULL;
  s->pnext = pool->partial[s->cls];
  if (s->pnext)
    s->pnext->pprev = s;
  pool->partial[s->cls] = s;
  s->in_partial = true;
}

/* The part of a span recorded in the page map. All of a slab (an interior
 * pointer anywhere in it is named as such), but for one large buffer only
 * its first 16 MiB: the page map's leaves stay small for a huge buffer, and
 * a pointer further in is still refused, as not a buffer zeropool handed
 * out. */
#define PAGEMAP_LARGE_EXTENT ((size_t)16 << 20)
static size_t span_mapped_extent(const zp__span *s) {
  return s->nslots == 1 && s->bytes > PAGEMAP_LARGE_EXTENT
             ? PAGEMAP_LARGE_EXTENT
             : s->bytes;
}

/* Memory for a span: memfd_secret when asked for and it works, else
 * anonymous. */
static char *span_map(zp_pool *pool, size_t bytes, size_t guard, bool *secret) {
  *secret = false;
  if (pool->cfg.backing == ZP_BACKING_SECRET) {
    char *p = zp__os_map_secret(bytes, ZP__GRANULE, guard);
    if (p) {
      *secret = true;
      return p;
    }
    /* Falls back to anonymous memory, pinned (cfg.pinned_memory is set
     * whenever the backing is secret). */
  }
  return zp__os_map(bytes, ZP__GRANULE, guard);
}

/* Applies the pool's fork policy; where MADV_WIPEONFORK is refused the
 * memory is kept out of children instead. */
static int span_fork_policy(zp_pool *pool, zp__span *s) {
  /* memfd_secret memory is MAP_SHARED: a child would share it, not copy
   * it. A secret-backed pool keeps all its memory out of children. */
  if (pool->cfg.backing == ZP_BACKING_SECRET)
    return zp__os_dont_fork(s->base, s->bytes);
  if (pool->cfg.fork_policy == ZP_FORK_COPY)
    return 0;
  if (pool->cfg.fork_policy == ZP_FORK_WIPE &&
      zp__os_wipe_on_fork(s->base, s->bytes) == 0)
    return 0;
  return zp__os_dont_fork(s->base, s->bytes);
}

/* Maps a new span; no lock held. NULL with errno ENOMEM. */
static zp__span *span_new(zp_pool *pool, unsigned cls, bool *pin_failed) {
  size_t stride = zp__class_size(pool, cls), bytes, step = stride;
  size_t guard = pool->cfg.guard_pages != ZP_GUARD_OFF ? ZP__PAGE : 0;
  uint32_t nslots;
  bool slot_guards = pool->cfg.guard_pages == ZP_GUARD_BUFFERS &&
                     stride >= ZP__PAGE && stride <= SLAB_MAX_CLASS;
  if (slot_guards)
    step = stride + ZP__PAGE;
  span_geometry(stride, step, &bytes, &nslots);
  if (slot_guards && !take_slot_guard_vmas(2 * (size_t)nslots)) {
    slot_guards = false; /* over the VMA budget: this slab goes without */
    step = stride;
    span_geometry(stride, step, &bytes, &nslots);
  }
  *pin_failed = false;
  zp__span *s = zp__os_aligned_calloc(ZP__CACHE_LINE,
                                      sizeof *s + nslots * sizeof(zp__buf));
  if (!s)
    goto fail_guards;
  s->base = span_map(pool, bytes, guard, &s->secret);
  if (!s->base) {
    zp__os_aligned_free(s);
    goto fail_guards;
  }
  s->bytes = bytes;
  s->guard = guard;
  s->step = step;
  s->nslots = nslots;
  for (uint32_t i = 0; slot_guards && i < nslots; i++) {
    if (zp__os_guard(s->base + (size_t)i * step + stride, ZP__PAGE) != 0) {
      zp__os_unmap(s->base, bytes, guard);
      zp__os_aligned_free(s);
      goto fail_guards;
    }
  }
  s->slot_guards = slot_guards;
  if (pool->cfg.pinned_memory && !s->secret) {
    s->pinned = zp__os_lock(s->base, bytes) == 0;
    *pin_failed = !s->pinned;
  }
  s->pool = pool;
  s->stride = stride;
  s->cls = cls;
  s->limit = (size_t)nslots * step;
  /* Exact for off < limit <= 1 MiB + 16 pages and step <= 68 KiB: the
   * rounding error off / 2^48 stays below 1 / step. */
  s->recip = nslots > 1 ? (((uint64_t)1 << 48) + step - 1) / step : 0;
  if (*pin_failed && pool->cfg.pin_policy == ZP_PIN_STRICT) {
    zp__os_unmap(s->base, bytes, guard);
    zp__os_aligned_free(s);
    goto fail_guards;
  }
  zp__track_span_new(s->base, bytes);
  /* Into the page map last: a lookup never sees a half-built span. A span
   * that cannot be kept out of core dumps, or out of fork children as
   * asked, is not used at all. */
  if (zp__os_dontdump(s->base, bytes) != 0 || span_fork_policy(pool, s) != 0 ||
      zp__pagemap_set(s->base, span_mapped_extent(s), s) != 0) {
    zp__track_span_free(s->base, bytes);
    zp__os_unmap(s->base, bytes, guard);
    zp__os_aligned_free(s);
    goto fail_guards;
  }
  return s;

fail_guards:
  if (slot_guards)
    atomic_fetch_sub_explicit(&slot_guard_vmas, 2 * (size_t)nslots,
                              memory_order_relaxed);
  errno = ENOMEM;
  return NULL;
}

/* Its own cache line: every put reads it, and nothing nearby may be
 * written often (slot_guard_vmas is, with per-buffer guards). */
alignas(ZP__CACHE_LINE) _Atomic uint64_t zp__span_epoch;

/* Unmaps an empty span; grow_lock held. */
static void span_free(zp_pool *pool, zp__span *s) {
  /* Before the span's memory can be reused: threads that cached it stop
   * trusting the copy (see zp__tcache.span). */
  atomic_fetch_add_explicit(&zp__span_epoch, 1, memory_order_release);
  list_unlink_partial(pool, s);
  if (s->prev)
    s->prev->next = s->next;
  else
    pool->spans = s->next;
  if (s->next)
    s->next->prev = s->prev;
  pool->mapped_bytes -= s->bytes;
  pool->os_maps--;
  if (s->pinned)
    pool->pinned_bytes -= s->bytes;
  if (s->secret)
    pool->secret_bytes -= s->bytes;
  zp__pagemap_clear(s->base, span_mapped_extent(s));
  zp__track_span_free(s->base, s->bytes);
  pool->guard_pages -= span_guard_pages(s);
  if (s->slot_guards)
    atomic_fetch_sub_explicit(&slot_guard_vmas, 2 * (size_t)s->nslots,
                              memory_order_relaxed);
  zp__os_unmap(s->base, s->bytes, s->guard); /* munmap also unlocks */
  zp__os_aligned_free(s);
}

zp__buf *zp__span_carve(zp_pool *pool, unsigned cls) {
  pthread_mutex_lock(&pool->grow_lock);
  zp__span *s = pool->partial[cls];
  if (!s) {
    /* Mapped under the lock: slower for concurrent misses (rare), but a
     * fork (whose handler takes this lock) never copies a span that some
     * other thread is half-way through creating, which the child would
     * leak. */
    bool pin_failed;
    zp__span *fresh = span_new(pool, cls, &pin_failed);
    if (pin_failed)
      zp__counter_add_shared(&pool->pin_failures, 1);
    if (!fresh) {
      pthread_mutex_unlock(&pool->grow_lock);
      return NULL;
    }
    fresh->next = pool->spans;
    if (fresh->next)
      fresh->next->prev = fresh;
    pool->spans = fresh;
    pool->mapped_bytes += fresh->bytes;
    pool->os_maps++;
    if (fresh->pinned)
      pool->pinned_bytes += fresh->bytes;
    if (fresh->secret)
      pool->secret_bytes += fresh->bytes;
    pool->guard_pages += span_guard_pages(fresh);
    list_link_partial(pool, fresh);
    s = pool->partial[cls];
  }
  zp__buf *b = s->free;
  if (b) {
    s->free = b->next;
  } else {
    b = &s->bufs[s->carved];
    b->addr = s->base + (size_t)s->carved * s->step;
    b->cls = (uint8_t)cls;
    s->carved++;
  }
  b->next = NULL;
  s->live++;
  if (!s->free && s->carved == s->nslots)
    list_unlink_partial(pool, s);
  pthread_mutex_unlock(&pool->grow_lock);
  return b;
}

/* Returns a FREE slot to its span; grow_lock held. */
static void slot_release(zp_pool *pool, zp__span *s, zp__buf *b) {
  atomic_store_explicit(&b->state, ZP__FREE, memory_order_relaxed);
  b->recycled = 1;
  s->live--;
  if (s->live == 0) {
    span_free(pool, s);
    return;
  }
  /* The slab stays; the slot's pages go back to the OS (they are zero, and
   * an evicted buffer must not keep its memory). mlocked pages stay. */
  if (s->stride >= ZP__PAGE && !s->pinned && !s->secret)
    zp__os_discard(b->addr, s->stride);
  b->next = s->free;
  s->free = b;
  list_link_partial(pool, s);
}

void zp__span_release(zp_pool *pool, zp__buf *list) {
  if (!list)
    return;
  pthread_mutex_lock(&pool->grow_lock);
  while (list) {
    zp__buf *b = list;
    list = b->next;
    slot_release(pool, zp__pagemap_lookup(b->addr), b);
  }
  pthread_mutex_unlock(&pool->grow_lock);
}

void zp__span_bad_pointer(zp_pool *pool, const void *p) {
  zp__span *s = zp__pagemap_lookup(p);
  const char *cp = p;
  if (!s || cp < s->base || cp >= s->base + s->limit)
    zp__misuse("zp_put(%p): not a buffer zeropool handed out", p);
  if (s->pool != pool)
    zp__misuse("zp_put(%p): buffer of pool %p put into a different pool %p", p,
               (void *)s->pool, (void *)pool);
  size_t off = (size_t)(cp - s->base);
  zp__misuse("zp_put(%p): interior pointer, the buffer starts at %p", p,
             (void *)(s->base + off / s->step * s->step));
}

void zp__span_destroy_pool(zp_pool *pool) {
  /* Every idle buffer was released before: what is left is out. */
  pthread_mutex_lock(&pool->grow_lock);
  size_t out = 0;
  for (zp__span *s = pool->spans; s; s = s->next)
    out += s->live;
  pool->zombie_out = out;
  pthread_mutex_unlock(&pool->grow_lock);
}

bool zp__span_zombie_put(zp_pool *pool, zp__span *s, zp__buf *b) {
  pthread_mutex_lock(&pool->grow_lock);
  slot_release(pool, s, b);
  bool last = --pool->zombie_out == 0;
  pthread_mutex_unlock(&pool->grow_lock);
  return last;
}
