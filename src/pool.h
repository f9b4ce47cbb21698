/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The pool's data structures, shared by its modules.
 *
 *   thread caches (tcache.c)   one per thread per pool, no lock: a list of
 *        |  batches            idle buffers per size class
 *        v
 *   shards (shard.c)           power-of-two array, one mutex each, chosen by
 *        |  misses / evictions the current CPU; any shard can be stolen from
 *        v
 *   spans (span.c)             memory from the OS: a slab carved into many
 *                              buffers of one class, or one large buffer
 *
 * Every buffer has a descriptor (zp__buf) kept outside the buffer, in its
 * span. The page map (pagemap.c) finds the span of an address, so zp_put
 * validates any pointer without trusting the buffer's contents. Idle buffers
 * (in a cache or a shard) are always all zero: zp_put wipes before the
 * buffer enters any list.
 */
#ifndef ZP_POOL_H
#define ZP_POOL_H

#include "common.h"
#include "eviction.h"
#include "pagemap.h"
#include "size_class.h"
#include "zeropool.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>

enum zp__buf_state {
  ZP__FREE = 0, /* slot never handed out or released: zero, in no list */
  ZP__IDLE = 1, /* zeroed, in a thread cache or a shard */
  ZP__OUT = 2   /* handed out to the user */
};

/* One buffer's metadata, outside the buffer. A cache line each: two
 * threads cycling neighbouring buffers of one slab must not write the same
 * line (that false sharing halved two-thread throughput). */
typedef struct zp__buf {
  alignas(ZP__CACHE_LINE) struct zp__buf
      *next;   /* link in a cache, shard or span free list */
  char *addr;  /* the buffer */
  size_t size; /* bytes asked for while OUT: what zp_put wipes */
  _Atomic uint8_t state;
  uint8_t cls;
  uint8_t recycled; /* released once: no longer known to be untouched */
  /* At the head of a batch in a hand-off slot (shard.c): its length. Not
   * size: a buffer put twice by racing threads can head a batch in a slot
   * while its other copy is handed out, which writes size. */
  uint32_t batch_len;
} zp__buf;

/* A mapping from the OS holding nslots buffers of one class. */
typedef struct zp__span {
  zp_pool *pool;
  char *base;
  size_t stride;  /* class size */
  size_t step;    /* from one slot to the next: stride, + a guard page */
  size_t limit;   /* nslots * step: offsets below it hold buffers */
  uint64_t recip; /* off * recip >> 48 == off / step; 0 for one slot */
  size_t guard;   /* PROT_NONE bytes on each side of the mapping */
  size_t bytes;   /* mapped */
  unsigned cls;
  uint32_t nslots;
  uint32_t live;    /* slots not FREE (IDLE or OUT) */
  uint32_t carved;  /* slots [0, carved) have been handed out once */
  bool pinned;      /* mlock succeeded */
  bool secret;      /* memfd_secret backing */
  bool slot_guards; /* a guard page after every slot */
  zp__buf *free;    /* released slots below carved */
  struct zp__span *next, *prev;   /* all spans of the pool */
  struct zp__span *pnext, *pprev; /* spans of cls with a free slot */
  bool in_partial;
  zp__buf bufs[];
} zp__span;

/* What zp_put needs of a span to find a descriptor (zp__tcache.span). */
typedef struct zp__span_view {
  uintptr_t base;
  size_t limit; /* 0: no pointer is inside */
  size_t step;
  uint64_t recip;
  zp__buf *bufs;
  const zp_pool *pool;
  uint64_t epoch; /* zp__span_epoch when the copy was taken */
} zp__span_view;

/* A hand-off slot (shard.c): the most recent batch a thread cache spilled,
 * one slot per size class, each on its own cache line. The word is the
 * batch's first descriptor (64-byte aligned) plus the spilling cache's tag
 * in the low bits, so that a thread can skip its own batch without
 * reading a descriptor it does not own. */
#define ZP__HAND_OFF_TAGS 63u
typedef struct zp__hand_off {
  alignas(ZP__CACHE_LINE) _Atomic uintptr_t batch;
} zp__hand_off;

typedef struct zp__shard {
  alignas(ZP__CACHE_LINE) pthread_mutex_t lock;
  size_t count;      /* idle buffers, all classes */
  size_t idle_bytes; /* their capacity */
  zp__buf **head;    /* [nclasses] LIFO lists */
  uint32_t *nbufs;   /* [nclasses] their lengths */
  void *evict;       /* the eviction policy's state, or NULL */
} zp__shard;

/* One thread's cache for one pool. Owned by its thread; linked into the
 * pool's registry so that destroy, trim and stats can find it. The owner
 * works on it between zp__tc_enter and zp__tc_leave. */
typedef struct zp__tcache {
  /* Hot: what a cache hit reads and writes, in the first cache line. */
  _Atomic(zp_pool *) pool; /* NULL once the pool was destroyed */
  /* Lets zp_pool_trim empty this cache from another thread without a lock
   * or an atomic read-modify-write on the fast path (see tcache.c). */
  _Atomic uint8_t active;    /* the owner is inside an operation on it */
  _Atomic uint8_t drain_req; /* a trim asks for it; the owner stays out */
  zp__counter count;         /* idle buffers */
  zp__counter room;          /* credit - idle bytes: what a put may add */
  zp__counter hits, puts, bytes_zeroed;
  /* A copy of the geometry of the span of the last buffer put through
   * this cache, valid while no span anywhere was freed since (its epoch):
   * zp_put validates a pointer inside it without the page map's chain of
   * dependent loads. A copy, not the span: the span itself may be freed by
   * another thread at any time, and is read only once the pointer is known
   * to lie in it (then it is the pointer's own, live span). Owner only. */
  zp__span_view span;
  /* Cold. */
  zp__counter credit; /* bytes of the pool's budget this cache holds */
  zp__counter misses; /* gets = hits + misses */
  pthread_t owner;
  /* Marks the batches this cache leaves in hand-off slots (shard.c):
   * 1..ZP__HAND_OFF_TAGS, given out in turn. */
  unsigned hand_off_tag;
  size_t handed_off; /* buffers spilled to slots since the last tick */
  struct zp__tcache *thread_next;         /* the owning thread's caches */
  struct zp__tcache *reg_next, *reg_prev; /* the pool's registry */
  /* Quarantine: a FIFO ring of recently put buffers, counted in count and
   * room like the lists but not handed out until they leave it. */
  zp__buf **qring;
  /* [nclasses]: the thread has refilled the class. A thread that only
   * puts a class (a consumer) spills it to the hand-off slot; one that
   * also gets it spills to a shard, as a thread alone does, so that the
   * eviction policy sees its buffers as it would without slots. */
  uint8_t *refilled;
  uint32_t qhead, qlen;
  zp__buf *head[]; /* [nclasses], the ring's slots, then refilled */
} zp__tcache;

struct zp_pool {
  /* Read-mostly: what the fast paths read. */
  alignas(ZP__CACHE_LINE) zp_builder cfg; /* resolved */
  size_t shard_mask;
  size_t tc_byte_cap;  /* most budget one thread cache holds */
  size_t batch;        /* buffers moved per refill/flush */
  size_t hand_off_max; /* largest class a full cache spills to a hand-off
                          slot (shard.c); larger ones go to a shard */
  size_t tick_every;   /* buffers a cache hands off between shard ticks */
  _Atomic bool destroyed;
  const zp__eviction_ops *eviction;
  zp__shard *shards;
  zp__hand_off *hand_off;     /* [nclasses] */
  _Atomic uint64_t *nonempty; /* [nclasses][mask_words]: shards with idle */
  size_t mask_words;
  bool get_checks;        /* verify_on_get or zero_on_get */
  size_t put_cache_limit; /* fast-path put: tls_cache_size, 0 to bypass */
  bool forked_away;       /* ZP_FORK_DROP, in a fork child: no memory here */
  zp__size_classes classes;

  /* The byte budget: shard idle bytes + thread cache credit. */
  alignas(ZP__CACHE_LINE) _Atomic size_t reserved;

  /* Spans; guarded by grow_lock. */
  alignas(ZP__CACHE_LINE) pthread_mutex_t grow_lock;
  zp__span *spans;
  zp__span **partial; /* [nclasses] */
  size_t mapped_bytes, os_maps, pinned_bytes, secret_bytes, guard_pages;
  size_t zombie_out; /* after destroy: buffers still out */

  /* Counters of slow paths, exited threads and cache-less calls. */
  zp__counter puts, hits, misses, bytes_zeroed, evictions, pin_failures;

  /* Thread caches; guarded by the process-wide registry lock (tcache.c). */
  zp__tcache *caches;
  /* All live pools, for fork handling; guarded by the same lock. */
  struct zp_pool *pool_next, *pool_prev;
};

static inline size_t zp__class_size(const zp_pool *p, unsigned cls) {
  return p->classes.size[cls];
}

/* span.c */
zp__buf *zp__span_carve(zp_pool *pool, unsigned cls);
void zp__span_release(zp_pool *pool, zp__buf *list);
__attribute__((noreturn)) void zp__span_bad_pointer(zp_pool *pool,
                                                    const void *p);
void zp__span_destroy_pool(zp_pool *pool); /* at destroy, under no lock */
/* After destroy: releases b; true when it was the last buffer out. */
bool zp__span_zombie_put(zp_pool *pool, zp__span *s, zp__buf *b);

/* shard.c */
int zp__shards_init(zp_pool *pool);
void zp__shards_fini(zp_pool *pool);
unsigned zp__shard_here(const zp_pool *pool);
/* Up to max idle buffers of class cls, with their budget (the caller's
 * credit now): the hand-off slot's batch when another cache left it there
 * (tag: the caller's cache's, 0 for none), else from a shard. */
size_t zp__shard_take(zp_pool *pool, unsigned cls, zp__buf **list, size_t max,
                      unsigned tag);
/* Leaves a batch of n buffers (list, NULL-terminated, idle, class cls,
 * with n * class size of the budget) in the class's hand-off slot, marked
 * with the spilling cache's tag; the batch it replaces goes to a shard. */
void zp__shard_hand_off(zp_pool *pool, unsigned cls, zp__buf *list, size_t n,
                        unsigned tag);
/* ops buffer operations went by that no shard saw (hand-offs): every
 * shard's policy is told, and releases what its decay then allows. */
void zp__shards_tick(zp_pool *pool, size_t ops);
/* Moves the hand-off slots' batches into the shards (stats, drain). */
void zp__shard_settle_hand_offs(zp_pool *pool);
/* Gives the first n buffers of list (idle, class cls) to the current CPU's
 * shard; credit: budget bytes the caller already reserved for them. */
void zp__shard_give(zp_pool *pool, unsigned cls, zp__buf *list, size_t n,
                    size_t credit);
zp__buf *zp__shards_drain(zp_pool *pool);
/* A get of cls found no idle buffer and carved fresh memory: tells the
 * eviction policy of the current CPU's shard (nothing for LIFO). */
void zp__shard_missed(zp_pool *pool, unsigned cls);
bool zp__budget_reserve(zp_pool *pool, size_t bytes);
void zp__budget_release(zp_pool *pool, size_t bytes);

/* Bumped whenever a span is freed, before its memory goes: a thread's
 * cached span view (zp__tcache.span) is trusted only while it is unchanged. */
extern _Atomic uint64_t zp__span_epoch;

/* A list of idle buffers is longer than its count says, or has a cycle:
 * some buffer is in it twice, which racing double puts (two threads putting
 * the same buffer at the same instant) can do. Aborts with a "zeropool:"
 * line instead of walking forever. */
__attribute__((noreturn)) void zp__list_corrupt(const char *where);

/* tcache.c */
/* The calling thread's last used cache; never NULL: zp__tcache_none (a
 * cache of no pool, which every zp__tc_enter refuses) when there is none.
 * Initial-exec: one %fs-relative load, also from the shared library (the
 * default model there calls __tls_get_addr on every access). */
extern _Thread_local zp__tcache *zp__tls_last
    __attribute__((tls_model("initial-exec")));
extern zp__tcache zp__tcache_none;
zp__tcache *zp__tcache_for(zp_pool *pool); /* NULL: go without a cache */
/* Moves up to max buffers of class cls from tc to a shard. */
void zp__tcache_flush(zp_pool *pool, zp__tcache *tc, unsigned cls, size_t max);
/* A full cache makes room: one batch of class cls to the hand-off slot
 * (to a shard for classes above pool->hand_off_max). */
void zp__tcache_spill(zp_pool *pool, zp__tcache *tc, unsigned cls);
void zp__tcache_trim_mine(zp_pool *pool, zp__tcache *tc);
/* Puts b, wiped and counted in tc (count, room), into tc's quarantine;
 * the oldest buffer there moves on to tc's lists or a shard. */
void zp__tcache_quarantine(zp_pool *pool, zp__tcache *tc, zp__buf *b);
/* Takes the oldest buffer out of tc's quarantine (its credit stays). */
zp__buf *zp__tcache_quarantine_pop(zp_pool *pool, zp__tcache *tc);
/* Returns all of tc's credit to the pool; tc must hold no buffer. */
void zp__tcache_drop_credit(zp_pool *pool, zp__tcache *tc);
void zp__tcaches_orphan(zp_pool *pool);
/* Links a new pool into / out of the list fork handling walks. */
void zp__pools_link(zp_pool *pool);
void zp__pools_unlink(zp_pool *pool);
/* zp_pool_trim's part: empties every thread's cache of the pool. */
void zp__tcaches_drain(zp_pool *pool);

/* Marks tc busy for an operation of its owner on pool. False when tc is not
 * this pool's or a trim is draining it: go without the cache then.
 *
 * The owner's side of an asymmetric Dekker handshake: a store, a compiler
 * barrier and a load. The trimmer stores drain_req, then membarrier() runs
 * a full barrier on every CPU running one of our threads, then it reads
 * active: either it sees the owner inside, and waits, or the owner's next
 * load of drain_req sees the request. */
static inline bool zp__tc_enter(zp_pool *pool, zp__tcache *tc) {
  if (atomic_load_explicit(&tc->pool, memory_order_relaxed) != pool)
    return false;
  atomic_store_explicit(&tc->active, 1, memory_order_relaxed);
  atomic_signal_fence(memory_order_seq_cst);
  if (zp__likely(!atomic_load_explicit(&tc->drain_req, memory_order_acquire)))
    return true;
  atomic_store_explicit(&tc->active, 0, memory_order_release);
  return false;
}

static inline void zp__tc_leave(zp__tcache *tc) {
  atomic_store_explicit(&tc->active, 0, memory_order_release);
}
/* Adds the registered caches' counters; registry lock held. */
void zp__tcaches_sum(zp_pool *pool, zp_stats *st);
void zp__registry_lock(void);
void zp__registry_unlock(void);

/* The descriptor of buffer p of this pool and its span; aborts with a
 * "zeropool:" line for a pointer that is not the start of one of its
 * buffers. */
static inline zp__buf *zp__span_find(zp_pool *pool, const void *p,
                                     zp__span **span_out) {
  zp__span *s = zp__pagemap_lookup(p);
  size_t off = (uintptr_t)p - (uintptr_t)(s ? s->base : NULL);
  if (zp__unlikely(!s || s->pool != pool || off >= s->limit))
    zp__span_bad_pointer(pool, p);
  size_t idx = (size_t)((off * s->recip) >> 48);
  if (zp__unlikely(off != idx * s->step))
    zp__span_bad_pointer(pool, p);
  *span_out = s;
  return &s->bufs[idx];
}

#endif /* ZP_POOL_H */
