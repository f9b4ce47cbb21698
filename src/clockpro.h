/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * CLOCK-Pro (Jiang, Chen, Zhang, USENIX ATC 2005) for a buffer pool: which
 * size classes keep idle memory under a byte budget. A pure data structure:
 * no locks, no pool types, no allocation (the caller hands in the memory),
 * so one instance can sit beside each shard under the shard's lock.
 *
 * The mapping (docs/clockpro.md argues it):
 *   resident entry  one idle buffer, hot or cold; it has its class's size
 *   test entry      a released idle buffer remembered for a while (class
 *                   only, no memory): non-resident, in its test period
 *   reference       a get served from the class takes its most recently
 *                   put entry out of the clock; the buffer's put brings it
 *                   back at the head, referenced, with its hot/cold/test
 *                   status (buffers of one class are interchangeable, so
 *                   the status travels as a per-class count, not per
 *                   buffer)
 *   refault         a get of a class with no idle buffer while a test entry
 *                   of that class lives: the cold target grows by the class
 *                   size and the buffer comes back hot
 *   eviction        the cold hand picks a cold entry; the caller releases
 *                   ANY idle buffer of that class (they are interchangeable)
 *
 * Two rules make it fit a byte budget where every get counts the same:
 *   size credit     an entry of size s survives about budget / (16 s) hand
 *                   passes without a reference (at most 64) before the cold
 *                   hand evicts it or the hot hand demotes it: a small
 *                   buffer costs little budget per get it serves, so it is
 *                   kept longer (GreedyDual-Size's cost / size, as passes)
 *   decay           idle bytes above what recent demand can use (the
 *                   decaying peak of bytes out, minus bytes out now, plus
 *                   that peak again as slack) that also stayed idle through
 *                   a whole window of ZP__CP_DECAY_WINDOW operations (its
 *                   low-water mark) are released, up to two per put,
 *                   through the same cold hand: idle memory shrinks after
 *                   a burst without a trim call or a thread
 *
 * The caller keeps, per class, exactly as many idle buffers as the policy
 * has resident entries: every put it keeps goes through zp__cp_put, every
 * get it serves from idle buffers through zp__cp_hit, every release the
 * policy asks for through zp__cp_victim.
 *
 * Metadata: 16 bytes per entry (resident or test) in the caller's memory,
 * seven 4-byte words per class. Every operation is O(1) amortised.
 */
#ifndef ZP_CLOCKPRO_H
#define ZP_CLOCKPRO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZP__CP_NIL 0xFFFFFFu         /* no entry (24-bit index) */
#define ZP__CP_MAX_ENTRIES 0xFFFFF0u /* entries one instance can index */
#define ZP__CP_MAX_CLASSES 256u

/* Entry flags. */
enum {
  ZP__CP_USED = 1,     /* in the clock (else on the free list) */
  ZP__CP_RESIDENT = 2, /* holds an idle buffer (else a test entry) */
  ZP__CP_HOT = 4,      /* resident and hot */
  ZP__CP_TEST = 8,     /* in its test period */
  ZP__CP_REF = 16      /* referenced since a hand last passed */
};

/* One entry: clock links (circular, in the hands' direction), links in
 * its class's list (resident or test), class, flags and the hand passes it
 * may still survive unreferenced (its size credit). 16 bytes. */
typedef struct zp__cp_entry {
  unsigned prev : 24, cls : 8;
  unsigned next : 24, flags : 8;
  unsigned cprev : 24, credit : 8;
  unsigned cnext : 24, spare : 8;
} zp__cp_entry;

/* Size credit: passes = budget / (ZP__CP_CREDIT_DIV * size), at most
 * ZP__CP_CREDIT_MAX (which bounds the passes one reference pays for). */
#define ZP__CP_CREDIT_DIV 16u
#define ZP__CP_CREDIT_MAX 64u
/* Decay (docs/clockpro.md, "Decay", has the measurements): the demand
 * peak moves toward the bytes out by 1/2^SHIFT of the gap per operation (a
 * time constant of about 131k operations); resident bytes above the idle
 * target are released only up to the low-water mark of resident bytes over
 * the last window of ZP__CP_DECAY_WINDOW operations (what no operation of
 * that window needed), at most ZP__CP_DECAY_PER_PUT per put. Either rule
 * alone, at these constants, costs more than 1 % misses over LIFO on some
 * simulated trace; together they hold it. Operations are hits, misses and
 * puts: in a pool, a batch of n counts n. At the end of each window the
 * per-class out_* counts are halved, so that buffers that never come back
 * (kept in a thread cache, returned to another shard, freed to the OS) do
 * not keep deciding what status later puts bring. */
#define ZP__CP_DECAY_SHIFT 17u
#define ZP__CP_DECAY_WINDOW 131072u
#define ZP__CP_DECAY_PER_PUT 2u

/* Counters, for statistics and tests. */
typedef struct zp__cp_stats {
  uint64_t hits, misses, refaults, puts, rejects, evictions;
  uint64_t promotions;      /* cold -> hot (cold hand, referenced in test) */
  uint64_t demotions;       /* hot -> cold (hot hand, not referenced) */
  uint64_t test_expired;    /* test periods that ended without a reference */
  uint64_t hand_steps;      /* entries the three hands passed, all together */
  uint64_t credit_passes;   /* passes paid by size credit (within steps) */
  uint64_t decay_evictions; /* evictions under budget, above idle target */
} zp__cp_stats;

typedef struct zp__clockpro {
  zp__cp_entry *e;
  uint32_t cap, free_list;
  /* Entries [fresh, cap) were never used and are never read: an instance
   * touches its memory only as it needs entries (a pool's shards may be
   * sized for far more buffers than they ever hold). */
  uint32_t fresh;
  unsigned nclasses;
  const size_t *class_size; /* [nclasses], the caller's */
  uint32_t *res_head;       /* [nclasses] most recent resident entry */
  uint32_t *test_head;      /* [nclasses] most recent test entry */
  uint32_t *res_count;      /* [nclasses] idle buffers the caller holds */
  /* [nclasses] buffers out after a hit, by the status their entry had
   * (hot; cold in test; cold), and after a refault: what their puts bring
   * back. */
  uint32_t *out_hot, *out_test, *out_cold, *out_fault;
  size_t budget;       /* most resident bytes */
  size_t max_resident; /* most resident entries; test entries as many */
  size_t cold_min;     /* the cold target's floor */
  size_t cold_target;  /* m_c, bytes: in [cold_min, budget] */
  size_t hot_bytes, cold_bytes, test_bytes;
  size_t nhot, ncold, ntest;
  uint32_t hand_hot, hand_cold, hand_test;
  /* Demand, for decay: bytes the caller has out (gets minus puts, as far
   * as this instance saw them), and their peak, decaying toward them. */
  size_t out_bytes, demand_peak;
  /* The decay window: operations in the current one, the fewest resident
   * bytes at the start of any of them, and what the last window's low
   * water still allows decay to release. */
  size_t decay_ops, low_water, decay_debt;
  unsigned decay_quota; /* decay evictions the current put may still do */
  zp__cp_stats st;
} zp__clockpro;

/* Bytes of memory zp__cp_init needs for these limits. */
size_t zp__cp_mem_size(unsigned nclasses, size_t max_resident);

/* Sets cp up over mem (zp__cp_mem_size bytes, aligned for a pointer).
 * class_size[nclasses] stays the caller's and must outlive cp. budget: most
 * idle bytes; max_resident: most idle buffers (at most ZP__CP_MAX_ENTRIES/2
 * - 1). 0, or -1 for bad arguments. */
int zp__cp_init(zp__clockpro *cp, void *mem, const size_t *class_size,
                unsigned nclasses, size_t budget, size_t max_resident);

/* A get served from an idle buffer of cls (the caller holds at least one;
 * it may hand out any of them). */
void zp__cp_hit(zp__clockpro *cp, unsigned cls);

/* A get of cls that found no idle buffer and takes fresh memory. True when
 * it is a refault: a test entry of cls was alive (the cold target grew). */
bool zp__cp_miss(zp__clockpro *cp, unsigned cls);

/* A buffer of cls comes back. True: the caller keeps it idle, then calls
 * zp__cp_victim until it returns -1. False: the class can never fit the
 * budget; the caller releases the buffer and is done. */
bool zp__cp_put(zp__clockpro *cp, unsigned cls);

/* ops operations this instance did not see went by: buffers that went out
 * and came back elsewhere (a hand-off slot), so bytes out are unchanged.
 * Decay moves on as over ops operations (the window, the demand peak),
 * and the zp__cp_victim calls that follow may release what it allows, as
 * after ops / 2 puts. */
void zp__cp_tick(zp__clockpro *cp, size_t ops);

/* The class of an idle buffer the caller must release now (any buffer of
 * that class), or -1 when resident bytes and entries are within limits and,
 * after the put's few decay releases, nothing more is due. */
int zp__cp_victim(zp__clockpro *cp);

/* The class of an idle buffer to release although the limits hold (the
 * pool's shared byte budget is short, or idle memory decays): the cold hand
 * evicts one cold unreferenced entry, demoting a hot one first when no cold
 * entry is left. -1 when nothing is resident. */
int zp__cp_victim_force(zp__clockpro *cp);

/* Forgets every resident entry (the caller released all idle buffers, as
 * zp_pool_trim does); test entries stay. */
void zp__cp_drop_resident(zp__clockpro *cp);

/* Resident bytes (the caller's idle bytes under the policy). */
static inline size_t zp__cp_resident_bytes(const zp__clockpro *cp) {
  return cp->hot_bytes + cp->cold_bytes;
}

/* Idle bytes recent demand can use: what decay shrinks resident bytes
 * toward (never above the budget), as far as the window's low water lets
 * it. */
size_t zp__cp_idle_target(const zp__clockpro *cp);

/* Checks every invariant by walking the whole structure: O(entries), for
 * tests. NULL when all hold, else what failed. */
const char *zp__cp_check(const zp__clockpro *cp);

#endif /* ZP_CLOCKPRO_H */
