/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* LIFO: buffers are reused most-recently-put first (the top of each stack is
 * still warm in the cache). When a limit is reached the incoming buffer is
 * released and the shard keeps what it holds. O(1), no metadata. */
#include "eviction.h"

#include "pool.h"

static zp__buf *lifo_victim(zp_pool *pool, zp__shard *shard,
                            zp__buf *incoming) {
  (void)pool;
  (void)shard;
  return incoming;
}

const zp__eviction_ops zp__eviction_lifo = {
    .policy = ZP_EVICTION_LIFO, .name = "lifo", .victim = lifo_victim};
