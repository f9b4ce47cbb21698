/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* LIFO: buffers are reused most-recently-put first (the top of each stack is
 * still warm in the cache). When a limit is reached the shard releases a
 * buffer of the class it holds most of, the incoming one when that is its
 * own class: a shard full of a size the workload no longer uses makes room
 * for the sizes it does use instead of turning every put of them into an
 * eviction (and every get into a miss). O(classes) on the eviction path,
 * which also unmaps memory; nothing on the fast path. */
#include "eviction.h"

#include "pool.h"

static zp__buf *lifo_victim(zp_pool *pool, zp__shard *shard,
                            zp__buf *incoming) {
  unsigned most = incoming->cls;
  for (unsigned c = 0; c < pool->classes.count; c++)
    if (shard->nbufs[c] > shard->nbufs[most])
      most = c;
  if (most == incoming->cls || !shard->head[most])
    return incoming;
  zp__buf *v = shard->head[most];
  shard->head[most] = v->next;
  shard->nbufs[most]--;
  return v;
}

const zp__eviction_ops zp__eviction_lifo = {
    .policy = ZP_EVICTION_LIFO, .name = "lifo", .victim = lifo_victim};
