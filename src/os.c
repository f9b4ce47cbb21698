/* SPDX-License-Identifier: MIT OR Apache-2.0 */
#include "os.h"

#include "common.h"
#include "track.h"
#include "zp_testing.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static atomic_ulong acquisitions;
static atomic_ulong fail_at; /* acquisition number that fails; 0 = none */

void zp__os_fail_nth(unsigned long n) {
  unsigned long now = atomic_load(&acquisitions);
  atomic_store(&fail_at, n ? now + n : 0);
}

unsigned long zp__os_acquisitions(void) { return atomic_load(&acquisitions); }

/* Counts one acquisition; true when fault injection says it must fail. */
static bool injected_failure(void) {
  unsigned long n = atomic_fetch_add(&acquisitions, 1) + 1;
  unsigned long target = atomic_load_explicit(&fail_at, memory_order_relaxed);
  if (zp__unlikely(target != 0 && n == target)) {
    errno = ENOMEM;
    return true;
  }
  return false;
}

/* Reserves bytes + 2 x guard, aligned after the leading guard; returns the
 * data start, all of it PROT_NONE still, and trims what is not needed. */
static char *reserve(size_t bytes, size_t align, size_t guard, int prot) {
  if (align < ZP__PAGE)
    align = ZP__PAGE;
  size_t over = bytes + 2 * guard + align - ZP__PAGE;
  if (over < bytes) {
    errno = ENOMEM;
    return NULL;
  }
  char *raw = mmap(NULL, over, guard ? PROT_NONE : prot,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) {
    errno = ENOMEM;
    return NULL;
  }
  char *data = (char *)zp__align_up((uintptr_t)raw + guard, align);
  size_t head = (size_t)(data - guard - raw);
  size_t tail = over - head - (bytes + 2 * guard);
  if (head)
    munmap(raw, head);
  if (tail)
    munmap(data + bytes + guard, tail);
  return data;
}

void *zp__os_map(size_t bytes, size_t align, size_t guard) {
  if (injected_failure())
    return NULL;
  int rw = PROT_READ | PROT_WRITE;
  char *data = reserve(bytes, align, guard, rw);
  if (data && guard && mprotect(data, bytes, rw) != 0) {
    munmap(data - guard, bytes + 2 * guard);
    errno = ENOMEM;
    return NULL;
  }
  return data;
}

int zp__os_guard(void *p, size_t bytes) {
  if (injected_failure())
    return -ENOMEM;
  return mprotect(p, bytes, PROT_NONE) == 0 ? 0 : -errno;
}

static int secret_fd(void) {
#ifdef SYS_memfd_secret
  return (int)syscall(SYS_memfd_secret, (unsigned)O_CLOEXEC);
#else
  errno = ENOSYS;
  return -1;
#endif
}

void *zp__os_map_secret(size_t bytes, size_t align, size_t guard) {
  if (injected_failure())
    return NULL;
  int fd = secret_fd();
  if (fd < 0)
    return NULL;
  /* Reserve an aligned range (guards included), then put the secret pages
   * over its middle. */
  char *data = reserve(bytes, align, guard, PROT_NONE);
  char *result = NULL;
  int saved = errno;
  if (data && ftruncate(fd, (off_t)bytes) == 0) {
    void *p = mmap(data, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                   fd, 0);
    if (p != MAP_FAILED)
      result = p;
    saved = errno;
  }
  if (data && !result)
    munmap(data - guard, bytes + 2 * guard);
  close(fd);
  errno = result ? 0 : (saved ? saved : ENOMEM);
  return result;
}

static bool secret_ok;
static void probe_secret(void) {
  int fd = secret_fd();
  if (fd >= 0) {
    secret_ok = true;
    close(fd);
  }
}

bool zp__os_secret_available(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, probe_secret);
  return secret_ok;
}

int zp__os_wipe_on_fork(void *p, size_t bytes) {
  if (injected_failure())
    return -ENOMEM;
#ifdef MADV_WIPEONFORK
  return madvise(p, bytes, MADV_WIPEONFORK) == 0 ? 0 : -errno;
#else
  (void)p;
  (void)bytes;
  return -ENOSYS;
#endif
}

int zp__os_dont_fork(void *p, size_t bytes) {
  if (injected_failure())
    return -ENOMEM;
  return madvise(p, bytes, MADV_DONTFORK) == 0 ? 0 : -errno;
}

void zp__os_unmap(void *p, size_t bytes, size_t guard) {
  if (p && munmap((char *)p - guard, bytes + 2 * guard) != 0)
    zp__misuse("munmap(%p, %zu) failed: internal error", p, bytes);
}

int zp__os_lock(void *p, size_t bytes) {
  if (injected_failure())
    return -ENOMEM;
  if (!ZP__MLOCK_WORKS)
    return -ENOTSUP; /* the sanitizer would intercept it and lock nothing */
  return mlock(p, bytes) == 0 ? 0 : -errno;
}

void zp__os_discard(void *p, size_t bytes) {
  if (!injected_failure())
    (void)madvise(p, bytes, MADV_DONTNEED);
}

int zp__os_dontdump(void *p, size_t bytes) {
  if (injected_failure())
    return -ENOMEM;
#ifdef MADV_DONTDUMP
  return madvise(p, bytes, MADV_DONTDUMP) == 0 ? 0 : -errno;
#else
  (void)p;
  (void)bytes;
  return -ENOSYS;
#endif
}

void *zp__os_calloc(size_t n, size_t size) {
  if (injected_failure())
    return NULL;
  return calloc(n, size);
}

/* calloc, then aligned by hand with the block's address one word below:
 * aligned_alloc + memset would commit every page of a large block at once
 * (a CLOCK-Pro state sized for 2^20 buffers per shard, a slab's
 * descriptors), where calloc hands fresh pages out untouched. */
void *zp__os_aligned_calloc(size_t align, size_t bytes) {
  if (injected_failure())
    return NULL;
  char *raw = calloc(1, bytes + align + sizeof(void *));
  if (!raw)
    return NULL;
  char *p = (char *)zp__align_up((uintptr_t)raw + sizeof(void *), align);
  memcpy(p - sizeof(void *), &raw, sizeof raw);
  return p;
}

void zp__os_aligned_free(void *p) {
  if (!p)
    return;
  void *raw;
  memcpy(&raw, (char *)p - sizeof(void *), sizeof raw);
  free(raw);
}

void zp__os_free(void *p) { free(p); }

size_t zp__os_ram_bytes(void) {
  long pages = sysconf(_SC_PHYS_PAGES);
  long psize = sysconf(_SC_PAGESIZE);
  return pages > 0 && psize > 0 ? (size_t)pages * (size_t)psize : 0;
}

void zp__misuse(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "zeropool: %s\n", line);
  fflush(stderr);
  abort();
}
