/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * CLOCK-Pro eviction (clockpro.c) behind the eviction interface: one
 * instance per shard, in memory zp__shards_init takes from zp__os_*, used
 * only under the shard's lock. The instance's resident entries are the
 * shard's idle buffers, class by class (check() verifies it).
 *
 * Limits. The instance gets max_buffers_per_shard as its count limit and
 * the pool's whole max_pooled_bytes as its byte budget: a shard may hold
 * the entire budget (one shard, or one CPU doing all the puts), so a fixed
 * share per shard would waste most of it. The budget is shared, though
 * (pool->reserved covers every shard and every thread cache's credit), so
 * when the pool's reservation fails the shard asks for a forced victim
 * (zp__cp_victim_force): the cold hand picks the class, exactly as it does
 * when the instance's own limits are exceeded.
 *
 * Decay. CLOCK-Pro's hands move only under pressure: below the limits it
 * keeps every idle buffer, however long unused. So idle memory follows
 * demand by a per-shard low-water mark over windows of shard operations:
 * the fewest idle bytes the shard held during a window were not needed in
 * it, and half of them are released over the next window, one buffer per
 * operation, chosen by the cold hand (cold, unreferenced capacity first).
 * A burst's leftovers halve every window; what the working set cycles
 * through never sits at the low-water mark and stays. When clockpro.c
 * grows its own per-operation decay, cp_decay below is where it plugs in.
 */
#include "clockpro.h"
#include "eviction.h"
#include "pool.h"

/* Shard operations per decay window: long enough that a working set
 * cycling through the shard shows its peak in every window, at least twice
 * the count limit so that one release per operation can pay any debt. */
#define ZP__DECAY_MIN_WINDOW 256u

typedef struct cp_shard {
  zp__clockpro cp;
  size_t window;    /* operations per window */
  size_t ops;       /* operations in the current window */
  size_t low_water; /* fewest idle bytes after an operation in it */
  size_t debt;      /* idle bytes still to release from the last window */
} cp_shard;

#define CP_HEADER ((sizeof(cp_shard) + 15) & ~(size_t)15)

static cp_shard *state(zp__shard *sh) { return (cp_shard *)sh->evict; }

static size_t cp_state_size(const zp_pool *pool) {
  return CP_HEADER +
         zp__cp_mem_size(pool->classes.count, pool->cfg.max_buffers_per_shard);
}

static void cp_init(zp_pool *pool, zp__shard *sh) {
  cp_shard *s = state(sh);
  size_t max = pool->cfg.max_buffers_per_shard;
  /* Arguments config has validated: classes <= ZP__MAX_CLASSES < 256,
   * 1 <= max <= 1 << 20, budget >= min_buffer_size. */
  int rc = zp__cp_init(&s->cp, (char *)s + CP_HEADER, pool->classes.size,
                       pool->classes.count, pool->cfg.max_pooled_bytes, max);
  (void)rc;
  s->window = 2 * max > ZP__DECAY_MIN_WINDOW ? 2 * max : ZP__DECAY_MIN_WINDOW;
  s->ops = 0;
  s->low_water = SIZE_MAX;
  s->debt = 0;
}

static void cp_took(zp_pool *pool, zp__shard *sh, unsigned cls, size_t n) {
  (void)pool;
  while (n--)
    zp__cp_hit(&state(sh)->cp, cls);
}

static void cp_missed(zp_pool *pool, zp__shard *sh, unsigned cls) {
  (void)pool;
  (void)zp__cp_miss(&state(sh)->cp, cls); /* a refault grows m_c itself */
}

static bool cp_admit(zp_pool *pool, zp__shard *sh, unsigned cls) {
  (void)pool;
  return zp__cp_put(&state(sh)->cp, cls);
}

static int cp_victim(zp_pool *pool, zp__shard *sh, unsigned incoming,
                     bool must) {
  (void)pool;
  (void)incoming; /* the shard releases the incoming buffer when it is of
                     the class named: it is the top of that list */
  zp__clockpro *cp = &state(sh)->cp;
  int v = zp__cp_victim(cp);
  return v >= 0 || !must ? v : zp__cp_victim_force(cp);
}

static int cp_decay(zp_pool *pool, zp__shard *sh) {
  cp_shard *s = state(sh);
  if (sh->idle_bytes < s->low_water)
    s->low_water = sh->idle_bytes;
  if (++s->ops >= s->window) {
    s->debt = s->low_water / 2; /* replaces what is left of the last one */
    s->ops = 0;
    s->low_water = SIZE_MAX;
  }
  if (!s->debt || !sh->count)
    return -1;
  int v = zp__cp_victim_force(&s->cp);
  if (v >= 0) {
    size_t size = zp__class_size(pool, (unsigned)v);
    s->debt = s->debt > size ? s->debt - size : 0;
  }
  return v;
}

static void cp_dropped_all(zp_pool *pool, zp__shard *sh) {
  (void)pool;
  cp_shard *s = state(sh);
  zp__cp_drop_resident(&s->cp);
  s->debt = 0;
  s->low_water = 0;
}

static const char *cp_check(zp_pool *pool, zp__shard *sh) {
  const zp__clockpro *cp = &state(sh)->cp;
  for (unsigned c = 0; c < pool->classes.count; c++)
    if (cp->res_count[c] != sh->nbufs[c])
      return "clock-pro: resident entries of a class != its idle buffers";
  if (zp__cp_resident_bytes(cp) != sh->idle_bytes)
    return "clock-pro: resident bytes != the shard's idle bytes";
  return zp__cp_check(cp);
}

const zp__eviction_ops zp__eviction_clock_pro = {.policy =
                                                     ZP_EVICTION_CLOCK_PRO,
                                                 .name = "clock-pro",
                                                 .state_size = cp_state_size,
                                                 .init = cp_init,
                                                 .took = cp_took,
                                                 .missed = cp_missed,
                                                 .admit = cp_admit,
                                                 .victim = cp_victim,
                                                 .decay = cp_decay,
                                                 .dropped_all = cp_dropped_all,
                                                 .check = cp_check};
