/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The eviction interface. When a put would take a shard past
 * max_buffers_per_shard or the pool past max_pooled_bytes, the policy picks
 * which idle buffer of the shard is released to the OS instead. Called with
 * the shard's lock held; O(1).
 */
#ifndef ZP_EVICTION_H
#define ZP_EVICTION_H

#include "zeropool.h"

struct zp__buf;
struct zp__shard;

typedef struct zp__eviction_ops {
  zp_eviction policy;
  const char *name;
  /* Returns the buffer to release: the incoming one, or one unlinked from
   * the shard (the caller then links the incoming one). */
  struct zp__buf *(*victim)(zp_pool *pool, struct zp__shard *shard,
                            struct zp__buf *incoming);
} zp__eviction_ops;

extern const zp__eviction_ops zp__eviction_lifo;

#endif /* ZP_EVICTION_H */
