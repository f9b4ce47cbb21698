/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* LIFO: buffers are reused most-recently-put first (the top of each stack is
 * still warm in the cache). When a limit is reached the shard releases a
 * buffer of the class it holds most of, the incoming one when that is its
 * own class: a shard full of a size the workload no longer uses makes room
 * for the sizes it does use instead of turning every put of them into an
 * eviction (and every get into a miss). O(classes) on the eviction path,
 * which also unmaps memory; nothing on the fast path. It keeps no state:
 * below the limits it never releases anything. */
#include "eviction.h"

#include "pool.h"

static int lifo_victim(zp_pool *pool, zp__shard *shard, unsigned incoming,
                       bool must) {
  if (!must || shard->count == 0)
    return -1;
  /* Ties go to the incoming class: its top is the buffer in hand. */
  unsigned most = incoming;
  for (unsigned c = 0; c < pool->classes.count; c++)
    if (shard->nbufs[c] > shard->nbufs[most])
      most = c;
  return (int)most;
}

const zp__eviction_ops zp__eviction_lifo = {
    .policy = ZP_EVICTION_LIFO, .name = "lifo", .victim = lifo_victim};

const zp__eviction_ops *zp__eviction_for(zp_eviction policy) {
  return policy == ZP_EVICTION_CLOCK_PRO ? &zp__eviction_clock_pro
                                         : &zp__eviction_lifo;
}
