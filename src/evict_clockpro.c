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
 * Decay lives in clockpro.c, nowhere else (so that tools/sim/zp_sim
 * replays exactly what a shard runs): zp__cp_victim, which the shard's
 * victim loop calls after every admitted buffer, also names the classes
 * decay releases (at most two per put). This file adds no decay rule. A
 * shard's instance counts its own operations (a refill of n is n hits, a
 * flush of n is n puts).
 */
#include "clockpro.h"
#include "eviction.h"
#include "pool.h"

/* The shard's state: the instance, then the entries it runs over. */
#define CP_HEADER ((sizeof(zp__clockpro) + 15) & ~(size_t)15)

static zp__clockpro *state(zp__shard *sh) { return (zp__clockpro *)sh->evict; }

static size_t cp_state_size(const zp_pool *pool) {
  return CP_HEADER +
         zp__cp_mem_size(pool->classes.count, pool->cfg.max_buffers_per_shard);
}

static void cp_init(zp_pool *pool, zp__shard *sh) {
  zp__clockpro *cp = state(sh);
  size_t max = pool->cfg.max_buffers_per_shard;
  /* Arguments config has validated: classes <= ZP__MAX_CLASSES < 256,
   * 1 <= max <= 1 << 20, budget >= min_buffer_size. */
  int rc = zp__cp_init(cp, (char *)cp + CP_HEADER, pool->classes.size,
                       pool->classes.count, pool->cfg.max_pooled_bytes, max);
  (void)rc;
}

static void cp_took(zp_pool *pool, zp__shard *sh, unsigned cls, size_t n) {
  (void)pool;
  while (n--)
    zp__cp_hit(state(sh), cls);
}

static void cp_missed(zp_pool *pool, zp__shard *sh, unsigned cls) {
  (void)pool;
  (void)zp__cp_miss(state(sh), cls); /* a refault grows m_c itself */
}

static bool cp_admit(zp_pool *pool, zp__shard *sh, unsigned cls) {
  (void)pool;
  return zp__cp_put(state(sh), cls);
}

static int cp_victim(zp_pool *pool, zp__shard *sh, unsigned incoming,
                     bool must) {
  (void)pool;
  (void)incoming; /* the shard releases the incoming buffer when it is of
                     the class named: it is the top of that list */
  zp__clockpro *cp = state(sh);
  int v = zp__cp_victim(cp);
  return v >= 0 || !must ? v : zp__cp_victim_force(cp);
}

static void cp_ticked(zp_pool *pool, zp__shard *sh, size_t ops) {
  (void)pool;
  zp__cp_tick(state(sh), ops);
}

static void cp_dropped_all(zp_pool *pool, zp__shard *sh) {
  (void)pool;
  zp__cp_drop_resident(state(sh));
}

static const char *cp_check(zp_pool *pool, zp__shard *sh) {
  const zp__clockpro *cp = state(sh);
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
                                                 .ticked = cp_ticked,
                                                 .dropped_all = cp_dropped_all,
                                                 .check = cp_check};
