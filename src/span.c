/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Spans: the pool's memory from the OS. Classes up to SLAB_MAX_CLASS are
 * carved from slabs holding many buffers, so 20000 small idle buffers cost a
 * few dozen mappings, not 20000 (vm.max_map_count is 65530); larger classes
 * get one mapping per buffer, returned to the OS when the buffer is evicted.
 * Span lists and counts are guarded by pool->grow_lock; mapping a new span
 * (mmap, mlock) happens before taking it. All off the fast path.
 */
#include "os.h"
#include "pagemap.h"
#include "pool.h"
#include "track.h"

#include <errno.h>

#define SLAB_MAX_CLASS ((size_t)64 << 10)
#define SLAB_MIN_BYTES ((size_t)64 << 10)
#define SLAB_MAX_BYTES ((size_t)1 << 20)

static void span_geometry(size_t stride, size_t *bytes, uint32_t *nslots) {
  if (stride > SLAB_MAX_CLASS) {
    *bytes = zp__align_up(stride, ZP__PAGE);
    *nslots = 1;
    return;
  }
  size_t want = stride * 16;
  if (want < SLAB_MIN_BYTES)
    want = SLAB_MIN_BYTES;
  if (want > SLAB_MAX_BYTES)
    want = SLAB_MAX_BYTES;
  *nslots = (uint32_t)(want / stride);
  *bytes = zp__align_up((size_t)*nslots * stride, ZP__PAGE);
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
static char *span_map(zp_pool *pool, size_t bytes, bool *secret) {
  *secret = false;
  if (pool->cfg.backing == ZP_BACKING_SECRET) {
    char *p = zp__os_map_secret(bytes, ZP__GRANULE);
    if (p) {
      *secret = true;
      return p;
    }
    /* Falls back to anonymous memory, pinned (cfg.pinned_memory is set
     * whenever the backing is secret). */
  }
  return zp__os_map(bytes, ZP__GRANULE);
}

/* Applies the pool's fork policy; secret memory cannot be wiped on fork,
 * so it is kept out of children instead. */
static void span_fork_policy(zp_pool *pool, zp__span *s) {
  if (pool->cfg.fork_policy == ZP_FORK_WIPE && !s->secret &&
      zp__os_wipe_on_fork(s->base, s->bytes) == 0)
    return;
  if (pool->cfg.fork_policy != ZP_FORK_COPY)
    (void)zp__os_dont_fork(s->base, s->bytes);
}

/* Maps a new span; no lock held. NULL with errno ENOMEM. */
static zp__span *span_new(zp_pool *pool, unsigned cls, bool *pin_failed) {
  size_t stride = zp__class_size(pool, cls), bytes;
  uint32_t nslots;
  span_geometry(stride, &bytes, &nslots);
  *pin_failed = false;
  zp__span *s = zp__os_calloc(1, sizeof *s + nslots * sizeof(zp__buf));
  if (!s)
    return NULL;
  s->base = span_map(pool, bytes, &s->secret);
  if (!s->base) {
    zp__os_free(s);
    errno = ENOMEM;
    return NULL;
  }
  s->bytes = bytes;
  if (pool->cfg.pinned_memory && !s->secret) {
    s->pinned = zp__os_lock(s->base, bytes) == 0;
    *pin_failed = !s->pinned;
  }
  s->pool = pool;
  s->stride = stride;
  s->cls = cls;
  s->nslots = nslots;
  s->limit = (size_t)nslots * stride;
  /* Exact for off < limit <= 1 MiB and stride <= 64 KiB: the rounding
   * error off / 2^48 stays below 1 / stride. */
  s->recip = nslots > 1 ? (((uint64_t)1 << 48) + stride - 1) / stride : 0;
  if (*pin_failed && pool->cfg.pin_policy == ZP_PIN_STRICT) {
    zp__os_unmap(s->base, bytes);
    zp__os_free(s);
    errno = ENOMEM;
    return NULL;
  }
  zp__track_span_new(s->base, bytes);
  zp__os_dontdump(s->base, bytes);
  span_fork_policy(pool, s);
  /* Into the page map last: a lookup never sees a half-built span. */
  if (zp__pagemap_set(s->base, span_mapped_extent(s), s) != 0) {
    zp__track_span_free(s->base, bytes);
    zp__os_unmap(s->base, bytes);
    zp__os_free(s);
    errno = ENOMEM;
    return NULL;
  }
  return s;
}

/* Unmaps an empty span; grow_lock held. */
static void span_free(zp_pool *pool, zp__span *s) {
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
  zp__os_unmap(s->base, s->bytes); /* munmap also unlocks */
  zp__os_free(s);
}

zp__buf *zp__span_carve(zp_pool *pool, unsigned cls) {
  pthread_mutex_lock(&pool->grow_lock);
  zp__span *s = pool->partial[cls];
  if (!s) {
    /* Map outside the lock: mmap and mlock can take a while. */
    pthread_mutex_unlock(&pool->grow_lock);
    bool pin_failed;
    zp__span *fresh = span_new(pool, cls, &pin_failed);
    if (pin_failed)
      zp__counter_add_shared(&pool->pin_failures, 1);
    if (!fresh)
      return NULL;
    pthread_mutex_lock(&pool->grow_lock);
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
    list_link_partial(pool, fresh);
    s = pool->partial[cls];
  }
  zp__buf *b = s->free;
  if (b) {
    s->free = b->next;
  } else {
    b = &s->bufs[s->carved];
    b->addr = s->base + (size_t)s->carved * s->stride;
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
             (void *)(s->base + off / s->stride * s->stride));
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
