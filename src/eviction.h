/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The eviction interface: which idle buffers of a shard are released to the
 * OS. shard.c owns the lists, the limits and the releases; a policy only
 * names a size class, and the shard releases any idle buffer of it (they
 * are interchangeable): the top of that class's list, which on a give is
 * the incoming buffer when it is of that class.
 *
 * Every hook but state_size and init runs with the shard's lock held. The
 * thread caches never call a policy: a refill of n buffers from a shard is
 * n hits (took), a flush of n into a shard is n admits, a get that carves
 * fresh memory is one miss (missed); batches a hand-off slot passes
 * between threads are counted and told to every shard now and then
 * (ticked). A NULL hook does nothing.
 */
#ifndef ZP_EVICTION_H
#define ZP_EVICTION_H

#include "zeropool.h"

#include <stdbool.h>
#include <stddef.h>

struct zp__shard;

typedef struct zp__eviction_ops {
  zp_eviction policy;
  const char *name;
  /* Bytes of per-shard state; zp__shards_init allocates them for every
   * shard (sh->evict) and calls init. 0: the policy keeps none. */
  size_t (*state_size)(const zp_pool *pool);
  void (*init)(zp_pool *pool, struct zp__shard *sh);
  /* n idle buffers of cls left the shard to be handed out. */
  void (*took)(zp_pool *pool, struct zp__shard *sh, unsigned cls, size_t n);
  /* A get of cls found no idle buffer in any shard: fresh memory. */
  void (*missed)(zp_pool *pool, struct zp__shard *sh, unsigned cls);
  /* A buffer of cls is about to join the shard's idle buffers (the shard
   * links it right after). False: the policy cannot keep it; the shard
   * releases it instead. */
  bool (*admit)(zp_pool *pool, struct zp__shard *sh, unsigned cls);
  /* The class of an idle buffer to release now, or -1. must: a limit of
   * the pool (byte budget, max_buffers_per_shard) is hit and the policy
   * has to name a class while the shard holds an idle buffer; else only
   * the policy's own bookkeeping asks for releases (CLOCK-Pro's decay of
   * idle memory toward demand, without a trim or a thread). incoming: the
   * class of the buffer just linked. Called until -1. */
  int (*victim)(zp_pool *pool, struct zp__shard *sh, unsigned incoming,
                bool must);
  /* ops operations the shard did not see went by (buffers that went out
   * and came back through a hand-off slot): a policy whose decay counts
   * operations moves on; the shard then calls victim(must = false) until
   * -1. */
  void (*ticked)(zp_pool *pool, struct zp__shard *sh, size_t ops);
  /* Every idle buffer of the shard was released (trim, destroy, fork). */
  void (*dropped_all)(zp_pool *pool, struct zp__shard *sh);
  /* Tests: NULL when the policy's state agrees with the shard's lists. */
  const char *(*check)(zp_pool *pool, struct zp__shard *sh);
} zp__eviction_ops;

extern const zp__eviction_ops zp__eviction_lifo;
extern const zp__eviction_ops zp__eviction_clock_pro;

/* The policy config resolved to (ZP_EVICTION_LIFO or _CLOCK_PRO). */
const zp__eviction_ops *zp__eviction_for(zp_eviction policy);

#endif /* ZP_EVICTION_H */
