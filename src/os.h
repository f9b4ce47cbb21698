/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Every memory acquisition from the OS or libc goes through here, so the
 * platform calls live in one place and tests can fail the Nth one. */
#ifndef ZP_OS_H
#define ZP_OS_H

#include <stdbool.h>
#include <stddef.h>

/* Maps bytes (a multiple of the page size) of zeroed, private, anonymous
 * memory whose address is a multiple of align (a power of two >= page),
 * with guard bytes (0 or a page multiple) of PROT_NONE on each side.
 * NULL with errno ENOMEM on failure. */
void *zp__os_map(size_t bytes, size_t align, size_t guard);
/* Unmaps what zp__os_map returned, guards included. */
void zp__os_unmap(void *p, size_t bytes, size_t guard);
/* Makes [p, p + bytes) inaccessible (a guard page); 0 or a negative errno. */
int zp__os_guard(void *p, size_t bytes);
/* As zp__os_map, but backed by memfd_secret(2): pages out of the kernel's
 * direct map. NULL with errno (ENOSYS where the kernel lacks it). */
void *zp__os_map_secret(size_t bytes, size_t align, size_t guard);
/* Whether memfd_secret works here (probed once). */
bool zp__os_secret_available(void);
/* madvise(MADV_WIPEONFORK) / (MADV_DONTFORK); 0 or a negative errno. */
int zp__os_wipe_on_fork(void *p, size_t bytes);
int zp__os_dont_fork(void *p, size_t bytes);
/* mlock; 0 or a negative errno. */
int zp__os_lock(void *p, size_t bytes);
/* Gives the pages of an unused range back to the OS; they read as zero
 * when touched again (best effort). */
void zp__os_discard(void *p, size_t bytes);
/* Keeps the range out of core dumps; 0 or a negative errno. */
int zp__os_dontdump(void *p, size_t bytes);

/* Metadata allocations (zeroed). NULL with errno ENOMEM on failure. */
void *zp__os_calloc(size_t n, size_t size);
void zp__os_free(void *p);
/* Zeroed and aligned to align (a power of two, at least a pointer), from
 * calloc: pages of a large block stay uncommitted until touched. Freed
 * with zp__os_aligned_free only. */
void *zp__os_aligned_calloc(size_t align, size_t bytes);
void zp__os_aligned_free(void *p);

/* Physical memory in bytes, 0 when unknown. */
size_t zp__os_ram_bytes(void);

#endif /* ZP_OS_H */
