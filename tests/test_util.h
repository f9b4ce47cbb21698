/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Test helpers: quick mode, zero checks, VmLck, forked death tests. */
/* Include this header first in every test. */
#ifndef ZP_TEST_UTIL_H
#define ZP_TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

/* cmocka needs these before its header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zeropool.h"

#define ZP_KIB ((size_t)1 << 10)
#define ZP_MIB ((size_t)1 << 20)

/* Sanitizers that intercept mlock (it then locks nothing). gcc defines
 * __SANITIZE_*__, clang answers __has_feature. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ZP_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ZP_TEST_SANITIZED 1
#endif
#endif
#ifndef ZP_TEST_SANITIZED
#define ZP_TEST_SANITIZED 0
#endif

/* Quick mode: ZP_TEST_QUICK set to anything but "" or "0". The Makefile's
 * valgrind and tsan targets export it; tests then shrink their loops. */
static inline bool zp_test_quick(void) {
  const char *e = getenv("ZP_TEST_QUICK");
  return e != NULL && e[0] != '\0' && strcmp(e, "0") != 0;
}

/* ZP_TEST_FILTER=pattern runs only the tests whose name matches (cmocka's
 * wildcards); call it in main() before cmocka_run_group_tests. */
static inline void zp_test_apply_filter(void) {
  const char *f = getenv("ZP_TEST_FILTER");
  if (f != NULL && f[0] != '\0')
    cmocka_set_test_filter(f);
}

/* Pick an iteration count: normal, or the one for quick mode. */
static inline size_t zp_test_iters(size_t normal, size_t quick) {
  return zp_test_quick() ? quick : normal;
}

static inline bool zp_test_under_valgrind(void) {
  const char *p = getenv("LD_PRELOAD");
  return p != NULL && strstr(p, "vgpreload") != NULL;
}

/* True where mlock may be intercepted and lock nothing: ASan/TSan builds,
 * valgrind, and quick mode (which the valgrind target sets). */
static inline bool zp_test_mlock_intercepted(void) {
  return ZP_TEST_SANITIZED || zp_test_under_valgrind() || zp_test_quick();
}

/* Resident memory of this process in bytes (/proc/self/statm), -1 when
 * unknown. */
static inline long long zp_test_rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long long pages = -1, rss = -1;
  if (f) {
    if (fscanf(f, "%lld %lld", &pages, &rss) != 2)
      rss = -1;
    fclose(f);
  }
  return rss < 0 ? -1 : rss * sysconf(_SC_PAGESIZE);
}

/* An address as an integer, through a volatile so that the compiler cannot
 * reason about pointers returned by a malloc-attributed function. */
static inline uintptr_t zp_test_addr(const void *p) {
  volatile uintptr_t v = (uintptr_t)p;
  return v;
}

/* True when the n bytes at p are all zero. */
static inline bool zp_test_all_zero(const void *p, size_t n) {
  const unsigned char *b = (const unsigned char *)p;
  if (n == 0)
    return true;
  return b[0] == 0 && (n == 1 || memcmp(b, b + 1, n - 1) == 0);
}

/* Deterministic PRNG (xorshift64*). */
static inline uint64_t zp_test_rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * UINT64_C(2685821657736338717);
}

static inline zp_stats zp_test_stats(zp_pool *pool) {
  zp_stats s;
  memset(&s, 0, sizeof s);
  assert_int_equal(zp_pool_stats(pool, &s), 0);
  return s;
}

/* VmLck of this process in bytes, or -1 when /proc cannot tell. */
static inline long long zp_test_vmlck_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long long kb = -1;
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "VmLck:", 6) == 0) {
      kb = strtoll(line + 6, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}

/* ---- forked children ---------------------------------------------------- */

typedef void (*zp_test_child_fn)(void *arg);

typedef struct zp_test_child_result {
  int status;        /* from waitpid */
  char output[8192]; /* what the child wrote on stderr (truncated) */
} zp_test_child_result;

/* Runs fn(arg) in a forked child whose stderr goes into a pipe. When fn
 * returns the child exits with status 0. SIGABRT is reset to its default,
 * core dumps are off, and an alarm kills a child that hangs. */
static inline void zp_test_run_child(zp_test_child_fn fn, void *arg,
                                     zp_test_child_result *res) {
  int fds[2];
  pid_t pid;
  size_t len = 0;
  memset(res, 0, sizeof *res);
  fflush(stdout);
  fflush(stderr);
  assert_int_equal(pipe(fds), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct rlimit core = {0, 0};
    close(fds[0]);
    (void)setrlimit(RLIMIT_CORE, &core);
    (void)signal(SIGABRT, SIG_DFL);
    (void)dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    alarm(60);
    fn(arg);
    _exit(0);
  }
  close(fds[1]);
  for (;;) {
    ssize_t r;
    char sink[512];
    if (len + 1 < sizeof res->output)
      r = read(fds[0], res->output + len, sizeof res->output - 1 - len);
    else
      r = read(fds[0], sink, sizeof sink);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    if (len + 1 < sizeof res->output)
      len += (size_t)r;
  }
  res->output[len] = '\0';
  close(fds[0]);
  while (waitpid(pid, &res->status, 0) < 0)
    assert_int_equal(errno, EINTR);
}

/* True when some line of text starts with prefix. */
static inline bool zp_test_has_line(const char *text, const char *prefix) {
  size_t n = strlen(prefix);
  const char *line = text;
  while (line != NULL && *line != '\0') {
    if (strncmp(line, prefix, n) == 0)
      return true;
    line = strchr(line, '\n');
    if (line != NULL)
      line++;
  }
  return false;
}

/* Death test: fn(arg) must die by SIGABRT after printing a line that starts
 * with "zeropool:" on stderr. */
static inline void zp_test_expect_abort(zp_test_child_fn fn, void *arg,
                                        const char *what) {
  zp_test_child_result res;
  zp_test_run_child(fn, arg, &res);
  if (!WIFSIGNALED(res.status) || WTERMSIG(res.status) != SIGABRT) {
    if (WIFSIGNALED(res.status))
      fail_msg("%s: child died by signal %d, not SIGABRT; stderr:\n%s", what,
               WTERMSIG(res.status), res.output);
    else
      fail_msg("%s: child exited with %d instead of aborting; stderr:\n%s",
               what, WEXITSTATUS(res.status), res.output);
  }
  if (!zp_test_has_line(res.output, "zeropool:"))
    fail_msg("%s: no stderr line starts with \"zeropool:\"; stderr:\n%s", what,
             res.output);
}

/* As zp_test_expect_abort, and the report must contain text: the misuse
 * was recognised for what it is. */
static inline void zp_test_expect_abort_saying(zp_test_child_fn fn, void *arg,
                                               const char *what,
                                               const char *text) {
  zp_test_child_result res;
  zp_test_run_child(fn, arg, &res);
  if (!WIFSIGNALED(res.status) || WTERMSIG(res.status) != SIGABRT)
    fail_msg("%s: child did not abort (status 0x%x); stderr:\n%s", what,
             (unsigned)res.status, res.output);
  if (!zp_test_has_line(res.output, "zeropool:") ||
      strstr(res.output, text) == NULL)
    fail_msg("%s: no \"zeropool:\" line saying \"%s\"; stderr:\n%s", what, text,
             res.output);
}

/* fn(arg) must return normally (child exit status 0). */
static inline void zp_test_expect_survival(zp_test_child_fn fn, void *arg,
                                           const char *what) {
  zp_test_child_result res;
  zp_test_run_child(fn, arg, &res);
  if (WIFSIGNALED(res.status))
    fail_msg("%s: child died by signal %d; stderr:\n%s", what,
             WTERMSIG(res.status), res.output);
  if (WEXITSTATUS(res.status) != 0)
    fail_msg("%s: child exited with %d; stderr:\n%s", what,
             WEXITSTATUS(res.status), res.output);
}

/* A child-side check: prints and exits with status 1 on failure. */
#define ZP_CHILD_CHECK(cond)                                                   \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "check failed at %s:%d: %s\n", __FILE__, __LINE__,       \
              #cond);                                                          \
      _exit(1);                                                                \
    }                                                                          \
  } while (0)

/* A thread-side check: cmocka asserts must not run off the main thread, so
 * worker threads count failures here and the main thread asserts zero. */
#define ZP_THREAD_CHECK(counter, cond)                                         \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "check failed at %s:%d: %s\n", __FILE__, __LINE__,       \
              #cond);                                                          \
      atomic_fetch_add(&(counter), 1);                                         \
    }                                                                          \
  } while (0)

#endif /* ZP_TEST_UTIL_H */
