/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Size classes: four per doubling, so a request wastes at most 25 % of its
 * class, rounded to the class granule: 64 bytes below 4 KiB (64-byte
 * alignment), 4 KiB from there on (page alignment, O_DIRECT). Between 4 and
 * 16 KiB the page granule is coarser than a quarter step: 4097 bytes get
 * 8 KiB. The class of a size is one table lookup, O(1): a direct table
 * up to 4 MiB (clz and a variable shift cost ~5 ns on the fast path), the
 * quarter table above.
 */
#ifndef ZP_SIZE_CLASS_H
#define ZP_SIZE_CLASS_H

#include "zeropool.h"

#include <stddef.h>
#include <stdint.h>

#define ZP__MAX_SHIFT 40 /* ZP_MAX_REQUEST == 1 << 40 */
#define ZP__MAX_CLASSES (4 * (ZP__MAX_SHIFT - 6) + 1)

#define ZP__SMALL_STEP_SHIFT 6   /* by_64: n <= 64 KiB in 64-byte steps */
#define ZP__MEDIUM_STEP_SHIFT 12 /* by_4k: n <= 4 MiB in 4 KiB steps */
#define ZP__TABLE_ENTRIES 1024

typedef struct zp__size_classes {
  /* Every class below 4 KiB is a multiple of 64 and every class above a
   * multiple of 4 KiB, so all n in one step share a class. */
  uint8_t by_64[ZP__TABLE_ENTRIES];
  uint8_t by_4k[ZP__TABLE_ENTRIES];
  size_t min_size; /* class 0 */
  unsigned count;
  /* (k, q) -> class, where k = floor(log2(n - 1)) and q = the two bits
   * below the top bit of n - 1: every n in one quarter maps to one class. */
  uint8_t by_quarter[ZP__MAX_SHIFT * 4];
  size_t size[ZP__MAX_CLASSES];
} zp__size_classes;

/* min_size: a power of two in [64, 1 GiB]. */
void zp__size_classes_init(zp__size_classes *sc, size_t min_size);

/* The class of a request by the quarter table; n <= ZP_MAX_REQUEST. */
static inline unsigned zp__class_of_quarter(const zp__size_classes *sc,
                                            size_t n) {
  if (n <= sc->min_size)
    return 0;
  size_t m = n - 1;
  unsigned k = 63u - (unsigned)__builtin_clzll((unsigned long long)m);
  return sc->by_quarter[k * 4 + ((m >> (k - 2)) & 3)];
}

/* The class of a request; n <= ZP_MAX_REQUEST. */
static inline unsigned zp__class_of(const zp__size_classes *sc, size_t n) {
  size_t i = (n - 1) >> ZP__SMALL_STEP_SHIFT; /* n == 0 wraps: large */
  if (i < ZP__TABLE_ENTRIES)
    return sc->by_64[i];
  i = (n - 1) >> ZP__MEDIUM_STEP_SHIFT;
  if (i < ZP__TABLE_ENTRIES)
    return sc->by_4k[i];
  return n ? zp__class_of_quarter(sc, n) : 0;
}

#endif /* ZP_SIZE_CLASS_H */
