/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Builder validation and the defaults formula (documented in the README):
 *   num_shards            next_pow2(2 x cores), clamped to [4, 256]: at
 *                         least one shard per hardware thread on SMT
 *                         machines, so CPUs rarely share a shard lock
 *   tls_cache_size        L2 bytes / 64 KiB, clamped to [4, 16] (8 when the
 *                         L2 size is unknown): a thread's idle 64 KiB I/O
 *                         buffers fit in its own L2
 *   max_buffers_per_shard 64
 *   max_pooled_bytes      16 MiB x cores, at least 64 MiB, at most RAM / 8
 *                         (but never below one min_buffer_size)
 *   min_buffer_size       4 KiB (one page)
 *   eviction_policy       CLOCK-Pro (ZP__DEFAULT_EVICTION below), on the
 *                         evidence in docs/clockpro.md and BENCHMARKS.md
 */
#include "zp_testing.h"

#include "common.h"

#include <errno.h>

#define MIB ((size_t)1 << 20)

/* What ZP_EVICTION_DEFAULT resolves to. */
#define ZP__DEFAULT_EVICTION ZP_EVICTION_CLOCK_PRO

static size_t next_pow2(size_t n) {
  size_t p = 1;
  while (p < n)
    p <<= 1;
  return p;
}

static size_t clamp(size_t v, size_t lo, size_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

int zp__config_resolve(const zp__topology *t, const zp_builder *in,
                       zp_builder *out, const char **bad_field) {
  zp_builder b = {0};
  if (in)
    b = *in;
  /* The first invalid field in struct order is the one named. */
  const char *bad = NULL;
#define ZP_CHECK(cond, field)                                                  \
  do {                                                                         \
    if (!bad && !(cond))                                                       \
      bad = field;                                                             \
  } while (0)
  ZP_CHECK(b.tls_cache_size <= 4096, "tls_cache_size");
  ZP_CHECK(!b.min_buffer_size ||
               (zp__is_pow2(b.min_buffer_size) && b.min_buffer_size >= 64 &&
                b.min_buffer_size <= ((size_t)1 << 30)),
           "min_buffer_size");
  ZP_CHECK(b.max_buffers_per_shard <= ((size_t)1 << 20),
           "max_buffers_per_shard");
  ZP_CHECK(!b.num_shards ||
               (zp__is_pow2(b.num_shards) && b.num_shards <= ZP_MAX_SHARDS),
           "num_shards");
  size_t min_size = b.min_buffer_size ? b.min_buffer_size : 4096;
  ZP_CHECK(!b.max_pooled_bytes || b.max_pooled_bytes >= min_size,
           "max_pooled_bytes");
  ZP_CHECK(b.eviction_policy == ZP_EVICTION_DEFAULT ||
               b.eviction_policy == ZP_EVICTION_CLOCK_PRO ||
               b.eviction_policy == ZP_EVICTION_LIFO,
           "eviction_policy");
  ZP_CHECK(b.verify_on_get <= ZP_VERIFY_FULL, "verify_on_get");
  ZP_CHECK(b.pin_policy <= ZP_PIN_STRICT, "pin_policy");
  ZP_CHECK(b.fork_policy <= ZP_FORK_DROP, "fork_policy");
  ZP_CHECK(b.backing <= ZP_BACKING_SECRET, "backing");
  ZP_CHECK(b.guard_pages <= ZP_GUARD_BUFFERS, "guard_pages");
  ZP_CHECK(b.quarantine <= 4096, "quarantine");
  for (size_t i = 0; i < sizeof b.reserved / sizeof b.reserved[0]; i++)
    ZP_CHECK(b.reserved[i] == 0, "reserved");
#undef ZP_CHECK
  if (bad) {
    if (bad_field)
      *bad_field = bad;
    return -EINVAL;
  }

  size_t cores = t && t->cores ? t->cores : 1;
  if (!b.num_shards)
    b.num_shards = clamp(next_pow2(2 * cores), 4, ZP_MAX_SHARDS);
  if (!b.tls_cache_size)
    b.tls_cache_size =
        t && t->l2_bytes ? clamp(t->l2_bytes / (64 << 10), 4, 16) : 8;
  if (!b.max_buffers_per_shard)
    b.max_buffers_per_shard = 64;
  if (!b.max_pooled_bytes) {
    size_t budget = 16 * MIB * cores;
    if (budget < 64 * MIB)
      budget = 64 * MIB;
    if (t && t->ram_bytes && budget > t->ram_bytes / 8)
      budget = t->ram_bytes / 8;
    b.max_pooled_bytes = budget < min_size ? min_size : budget;
  }
  b.min_buffer_size = min_size;
  if (b.eviction_policy == ZP_EVICTION_DEFAULT)
    b.eviction_policy = ZP__DEFAULT_EVICTION;
  *out = b;
  return 0;
}
