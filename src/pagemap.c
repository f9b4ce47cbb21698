/* SPDX-License-Identifier: MIT OR Apache-2.0 */
#include "pagemap.h"

#include "common.h"
#include "os.h"

#include <errno.h>

#define LEAF_BITS ZP__LEAF_BITS
#define ROOT_BITS ZP__ROOT_BITS
#define LEAF_ENTRIES ZP__LEAF_ENTRIES
#define root zp__pagemap_root
typedef zp__leaf_entry leaf_entry;

/* Leaves are mapped on first use and kept for the life of the process: at
 * most one per 4 GiB of address space that ever held a span. */
_Atomic uintptr_t zp__pagemap_root[(size_t)1 << ROOT_BITS];

static inline size_t granule_of(uintptr_t a) { return a >> ZP__GRANULE_SHIFT; }

static leaf_entry *leaf_for(size_t g, int create) {
  size_t r = g >> LEAF_BITS;
  if (r >= ((size_t)1 << ROOT_BITS))
    return NULL;
  leaf_entry *leaf =
      (leaf_entry *)atomic_load_explicit(&root[r], memory_order_acquire);
  if (leaf || !create)
    return leaf;
  leaf_entry *fresh = zp__os_map(LEAF_ENTRIES * sizeof(leaf_entry), 0, 0);
  if (!fresh)
    return NULL;
  uintptr_t expected = 0;
  if (!atomic_compare_exchange_strong_explicit(
          &root[r], &expected, (uintptr_t)fresh, memory_order_acq_rel,
          memory_order_acquire)) {
    zp__os_unmap(fresh, LEAF_ENTRIES * sizeof(leaf_entry), 0);
    return (leaf_entry *)expected;
  }
  return fresh;
}

int zp__pagemap_set(void *base, size_t bytes, struct zp__span *s) {
  size_t first = granule_of((uintptr_t)base);
  size_t last = granule_of((uintptr_t)base + bytes - 1);
  /* Create every leaf first, so a failure leaves nothing half-recorded. */
  for (size_t g = first; g <= last; g = (g | (LEAF_ENTRIES - 1)) + 1)
    if (!leaf_for(g, 1))
      return -ENOMEM;
  for (size_t g = first; g <= last; g++)
    atomic_store_explicit(&leaf_for(g, 0)[g & (LEAF_ENTRIES - 1)], s,
                          memory_order_release);
  return 0;
}

void zp__pagemap_clear(void *base, size_t bytes) {
  size_t first = granule_of((uintptr_t)base);
  size_t last = granule_of((uintptr_t)base + bytes - 1);
  for (size_t g = first; g <= last; g++)
    atomic_store_explicit(&leaf_for(g, 0)[g & (LEAF_ENTRIES - 1)], NULL,
                          memory_order_release);
}
