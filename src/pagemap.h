/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The page map: which span (if any) owns an address, for every pool in the
 * process. A two-level radix tree over 64 KiB granules: zp_put finds a
 * buffer's metadata in two dependent loads, without a lock, and a pointer
 * zeropool never handed out finds nothing. Spans start on a granule boundary,
 * so a granule belongs to at most one span.
 */
#ifndef ZP_PAGEMAP_H
#define ZP_PAGEMAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define ZP__GRANULE_SHIFT 16
#define ZP__GRANULE ((size_t)1 << ZP__GRANULE_SHIFT)

struct zp__span;

/* Records span s as the owner of [base, base + bytes); base is granule
 * aligned. 0, or -ENOMEM when a leaf could not be mapped. */
int zp__pagemap_set(void *base, size_t bytes, struct zp__span *s);
/* Forgets [base, base + bytes). */
void zp__pagemap_clear(void *base, size_t bytes);
/* 47-bit user addresses: 15 root bits x 16 leaf bits x 16 granule bits. */
#define ZP__LEAF_BITS 16
#define ZP__ROOT_BITS (47 - ZP__LEAF_BITS - ZP__GRANULE_SHIFT)
#define ZP__LEAF_ENTRIES ((size_t)1 << ZP__LEAF_BITS)

typedef _Atomic(struct zp__span *) zp__leaf_entry;
/* Root entries hold leaf addresses (zp__leaf_entry *) as integers. */
extern _Atomic uintptr_t zp__pagemap_root[(size_t)1 << ZP__ROOT_BITS];

/* The span whose granule holds p, or NULL. The caller bounds-checks. Two
 * dependent loads, no lock: zp_put calls it for every buffer. */
static inline struct zp__span *zp__pagemap_lookup(const void *p) {
  uintptr_t g = (uintptr_t)p >> ZP__GRANULE_SHIFT;
  uintptr_t r = g >> ZP__LEAF_BITS;
  if (r >= ((uintptr_t)1 << ZP__ROOT_BITS))
    return NULL;
  zp__leaf_entry *leaf = (zp__leaf_entry *)atomic_load_explicit(
      &zp__pagemap_root[r], memory_order_acquire);
  if (!leaf)
    return NULL;
  return atomic_load_explicit(&leaf[g & (ZP__LEAF_ENTRIES - 1)],
                              memory_order_acquire);
}

#endif /* ZP_PAGEMAP_H */
