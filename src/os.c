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

void *zp__os_map(size_t bytes, size_t align) {
  if (injected_failure())
    return NULL;
  if (align < ZP__PAGE)
    align = ZP__PAGE;
  /* Over-map by align - page, then trim both ends to the aligned range. */
  size_t over = bytes + align - ZP__PAGE;
  if (over < bytes) {
    errno = ENOMEM;
    return NULL;
  }
  char *raw = mmap(NULL, over, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) {
    errno = ENOMEM;
    return NULL;
  }
  char *aligned = (char *)zp__align_up((uintptr_t)raw, align);
  size_t head = (size_t)(aligned - raw);
  size_t tail = over - head - bytes;
  if (head)
    munmap(raw, head);
  if (tail)
    munmap(aligned + bytes, tail);
  return aligned;
}

static int secret_fd(void) {
#ifdef SYS_memfd_secret
  return (int)syscall(SYS_memfd_secret, (unsigned)O_CLOEXEC);
#else
  errno = ENOSYS;
  return -1;
#endif
}

void *zp__os_map_secret(size_t bytes, size_t align) {
  if (injected_failure())
    return NULL;
  if (align < ZP__PAGE)
    align = ZP__PAGE;
  int fd = secret_fd();
  if (fd < 0)
    return NULL;
  void *result = NULL;
  size_t over = bytes + align - ZP__PAGE;
  /* Reserve an aligned range, then put the secret pages over it. */
  char *raw = mmap(NULL, over, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw != MAP_FAILED && ftruncate(fd, (off_t)bytes) == 0) {
    char *aligned = (char *)zp__align_up((uintptr_t)raw, align);
    void *p = mmap(aligned, bytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED, fd, 0);
    if (p != MAP_FAILED) {
      size_t head = (size_t)(aligned - raw), tail = over - head - bytes;
      if (head)
        munmap(raw, head);
      if (tail)
        munmap(aligned + bytes, tail);
      result = p;
    }
  }
  int saved = errno;
  if (!result && raw != MAP_FAILED)
    munmap(raw, over);
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
#ifdef MADV_WIPEONFORK
  return madvise(p, bytes, MADV_WIPEONFORK) == 0 ? 0 : -errno;
#else
  (void)p;
  (void)bytes;
  return -ENOSYS;
#endif
}

int zp__os_dont_fork(void *p, size_t bytes) {
  return madvise(p, bytes, MADV_DONTFORK) == 0 ? 0 : -errno;
}

void zp__os_unmap(void *p, size_t bytes) {
  if (p && munmap(p, bytes) != 0)
    zp__misuse("munmap(%p, %zu) failed: internal error", p, bytes);
}

int zp__os_lock(void *p, size_t bytes) {
  if (!ZP__MLOCK_WORKS)
    return -ENOTSUP; /* the sanitizer would intercept it and lock nothing */
  return mlock(p, bytes) == 0 ? 0 : -errno;
}

void zp__os_discard(void *p, size_t bytes) {
  (void)madvise(p, bytes, MADV_DONTNEED);
}

void zp__os_dontdump(void *p, size_t bytes) {
#ifdef MADV_DONTDUMP
  (void)madvise(p, bytes, MADV_DONTDUMP);
#else
  (void)p;
  (void)bytes;
#endif
}

void *zp__os_calloc(size_t n, size_t size) {
  if (injected_failure())
    return NULL;
  return calloc(n, size);
}

void *zp__os_aligned_calloc(size_t align, size_t bytes) {
  if (injected_failure())
    return NULL;
  bytes = zp__align_up(bytes, align);
  void *p = aligned_alloc(align, bytes);
  if (p)
    memset(p, 0, bytes);
  return p;
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
