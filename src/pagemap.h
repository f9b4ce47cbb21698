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
/* The span whose granule holds p, or NULL. The caller bounds-checks. */
struct zp__span *zp__pagemap_lookup(const void *p);

#endif /* ZP_PAGEMAP_H */
