/* SPDX-License-Identifier: MIT OR Apache-2.0 */
#include "size_class.h"

#include "common.h"

static size_t class_granule(size_t n) { return n > ZP__PAGE ? ZP__PAGE : 64; }

void zp__size_classes_init(zp__size_classes *sc, size_t min_size) {
  unsigned min_shift = (unsigned)__builtin_ctzll(min_size);
  sc->min_size = min_size;
  sc->size[0] = min_size;
  sc->count = 1;
  for (unsigned k = min_shift; k < ZP__MAX_SHIFT; k++) {
    for (unsigned q = 0; q < 4; q++) {
      /* The largest n whose n - 1 lies in quarter q of [2^k, 2^(k+1)). */
      size_t top = ((size_t)1 << k) + ((size_t)(q + 1) << (k - 2));
      size_t cls = zp__align_up(top, class_granule(top));
      if (cls != sc->size[sc->count - 1])
        sc->size[sc->count++] = cls;
      sc->by_quarter[k * 4 + q] = (uint8_t)(sc->count - 1);
    }
  }
  for (size_t i = 0; i < ZP__TABLE_ENTRIES; i++) {
    sc->by_64[i] =
        (uint8_t)zp__class_of_quarter(sc, (i + 1) << ZP__SMALL_STEP_SHIFT);
    sc->by_4k[i] =
        (uint8_t)zp__class_of_quarter(sc, (i + 1) << ZP__MEDIUM_STEP_SHIFT);
  }
}
