/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The core-dump attack: a forked child holds a pool buffer with a 32-byte
 * random marker in it and, as a control, the same marker differently
 * derived in a malloc'd buffer; the parent dumps the child with gdb's
 * gcore and searches the core file. The pool's marker must be absent
 * (MADV_DONTDUMP) and the control present (the dump works). A second dump
 * with `gcore -a` (coredump filter off, excluded mappings dumped) must show
 * the pool's marker: the marker was really there, and only MADV_DONTDUMP
 * kept it out, except with memfd_secret backing, whose pages even gcore -a
 * cannot read.
 *
 * Skipped, with a message, where gcore is not installed (Debian package
 * gdb), where ptrace is not permitted, and under sanitizers or valgrind
 * (their runtimes own the address space a debugger would dump).
 */
#include "test_util.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>

#define MARKER_LEN 32
/* Two derivations of one random seed: neither marker is ever stored
 * anywhere in the child but where it belongs. */
#define POOL_XOR 0xA5u
#define HEAP_XOR 0x3Cu

typedef struct scenario {
  const char *name;
  zp_builder builder;
  size_t size;   /* the buffer asked for */
  size_t offset; /* where the marker goes in it */
} scenario;

static unsigned char g_seed[MARKER_LEN];

/* ---- the child ------------------------------------------------------------
 */

/* Writes seed ^ x at dst one byte at a time through volatile pointers, so
 * that no vector register or stack slot ever holds the whole marker. */
static void put_marker(unsigned char *dst, unsigned x) {
  volatile unsigned char *d = dst;
  const volatile unsigned char *s = g_seed;
  for (size_t i = 0; i < MARKER_LEN; i++)
    d[i] = (unsigned char)(s[i] ^ x);
}

/* Holds the marked buffers until the parent closes hold_fd; reports on
 * ready_fd: 's' when the pool's buffers are memfd_secret, 'a' otherwise,
 * 'f' on failure. */
static void child_main(const scenario *sc, int ready_fd, int hold_fd) {
  zp_builder cfg;
  char c = 'f', sink;
  /* Where Yama restricts ptrace to ancestors, let gdb (a sibling) in. */
  (void)prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
  alarm(60);
  zp_pool *pool = zp_pool_new(&sc->builder);
  unsigned char *p = pool ? zp_get(pool, sc->size) : NULL;
  unsigned char *heap = malloc(256);
  if (p && heap && zp_pool_config(pool, &cfg) == 0) {
    put_marker(p + sc->offset, POOL_XOR);
    put_marker(heap + 100, HEAP_XOR);
    c = cfg.backing == ZP_BACKING_SECRET ? 's' : 'a';
  }
  if (write(ready_fd, &c, 1) != 1)
    _exit(2);
  while (read(hold_fd, &sink, 1) < 0 && errno == EINTR)
    ;
  /* Used after the dump, so the compiler keeps the stores. */
  if (c != 'f' && (((volatile unsigned char *)p)[sc->offset] !=
                       (unsigned char)(g_seed[0] ^ POOL_XOR) ||
                   ((volatile unsigned char *)heap)[100] !=
                       (unsigned char)(g_seed[0] ^ HEAP_XOR)))
    _exit(3);
  free(heap);
  zp_put(pool, p);
  zp_pool_destroy(pool);
  _exit(c == 'f' ? 1 : 0);
}

/* ---- the parent --------------------------------------------------------- */

/* The path of an executable named name in PATH, or false. */
static bool find_in_path(const char *name, char *out, size_t len) {
  const char *path = getenv("PATH");
  char dirs[4096];
  if (!path || !*path)
    path = "/usr/local/bin:/usr/bin:/bin";
  snprintf(dirs, sizeof dirs, "%s", path);
  for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d;
       d = strtok_r(NULL, ":", &save)) {
    int n = snprintf(out, len, "%s/%s", d, name);
    if (n > 0 && (size_t)n < len && access(out, X_OK) == 0)
      return true;
  }
  return false;
}

static char g_gcore[4096];

static void skip_if_unsupported(void) {
  if (ZP_TEST_SANITIZED || zp_test_under_valgrind()) {
    print_message("skipped: the sanitizer or valgrind runtime owns the "
                  "address space gcore would dump\n");
    skip();
  }
  if (!find_in_path("gcore", g_gcore, sizeof g_gcore)) {
    print_message("skipped: gcore not installed (Debian package gdb)\n");
    skip();
  }
}

/* Runs gcore [-a] -o prefix pid, its output into log. The exit status, or
 * -1 when it could not be started. */
static int run_gcore(bool all, const char *prefix, pid_t pid, const char *log) {
  char pidstr[32];
  int status;
  snprintf(pidstr, sizeof pidstr, "%ld", (long)pid);
  fflush(stdout);
  fflush(stderr);
  pid_t g = fork();
  if (g < 0)
    return -1;
  if (g == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int null = open("/dev/null", O_RDONLY);
    if (fd < 0 || null < 0)
      _exit(126);
    (void)dup2(null, STDIN_FILENO);
    (void)dup2(fd, STDOUT_FILENO);
    (void)dup2(fd, STDERR_FILENO);
    unsetenv("DEBUGINFOD_URLS"); /* no network, no question */
    if (all)
      execl(g_gcore, "gcore", "-a", "-o", prefix, pidstr, (char *)NULL);
    else
      execl(g_gcore, "gcore", "-o", prefix, pidstr, (char *)NULL);
    _exit(127);
  }
  while (waitpid(g, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void read_text(const char *path, char *out, size_t len) {
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(out, 1, len - 1, f) : 0;
  out[n] = '\0';
  if (f)
    fclose(f);
}

typedef struct dump_result {
  bool skipped; /* ptrace refused: why in log */
  bool failed;  /* gcore failed otherwise: why in log */
  bool has_pool, has_heap;
  char log[4096];
} dump_result;

/* Dumps pid with gcore (-a when all), then searches the core for both
 * markers. */
static void dump_and_search(const char *dir, pid_t pid, bool all,
                            dump_result *r) {
  char prefix[512], core[600], log[600];
  unsigned char pool_marker[MARKER_LEN], heap_marker[MARKER_LEN];
  memset(r, 0, sizeof *r);
  snprintf(prefix, sizeof prefix, "%s/core%s", dir, all ? "-all" : "");
  snprintf(core, sizeof core, "%s.%ld", prefix, (long)pid);
  snprintf(log, sizeof log, "%s/gcore%s.log", dir, all ? "-all" : "");
  int rc = run_gcore(all, prefix, pid, log);
  read_text(log, r->log, sizeof r->log);
  unlink(log);
  int fd = open(core, O_RDONLY);
  if (rc != 0 || fd < 0) {
    if (fd >= 0)
      close(fd);
    unlink(core);
    if (strstr(r->log, "ptrace") || strstr(r->log, "not permitted") ||
        strstr(r->log, "Could not attach"))
      r->skipped = true;
    else
      r->failed = true;
    return;
  }
  struct stat st;
  assert_int_equal(fstat(fd, &st), 0);
  size_t len = (size_t)st.st_size;
  void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
  close(fd);
  unlink(core);
  assert_true(len > 0 && map != MAP_FAILED);
  /* The markers exist in this process only now, after the dump. */
  for (size_t i = 0; i < MARKER_LEN; i++) {
    pool_marker[i] = (unsigned char)(g_seed[i] ^ POOL_XOR);
    heap_marker[i] = (unsigned char)(g_seed[i] ^ HEAP_XOR);
  }
  r->has_pool = memmem(map, len, pool_marker, MARKER_LEN) != NULL;
  r->has_heap = memmem(map, len, heap_marker, MARKER_LEN) != NULL;
  munmap(map, len);
  explicit_bzero(pool_marker, sizeof pool_marker);
  explicit_bzero(heap_marker, sizeof heap_marker);
}

static void run_scenario(const scenario *sc) {
  int ready[2], hold[2];
  char dir[] = "/tmp/zp_coredump.XXXXXX", c = 0;
  dump_result r = {0};
  int status;
  skip_if_unsupported();
  assert_int_equal(getrandom(g_seed, sizeof g_seed, 0), (ssize_t)MARKER_LEN);
  assert_non_null(mkdtemp(dir));
  assert_int_equal(pipe(ready), 0);
  assert_int_equal(pipe(hold), 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(ready[0]);
    close(hold[1]);
    child_main(sc, ready[1], hold[0]);
  }
  close(ready[1]);
  close(hold[0]);
  while (read(ready[0], &c, 1) < 0 && errno == EINTR)
    ;
  close(ready[0]);

  bool ok = c == 'a' || c == 's', secret = c == 's';
  dump_result all = {0};
  if (ok) {
    dump_and_search(dir, pid, false, &r);
    if (!r.skipped && !r.failed)
      dump_and_search(dir, pid, true, &all);
  }
  close(hold[1]); /* the child puts its buffer and exits */
  while (waitpid(pid, &status, 0) < 0)
    assert_int_equal(errno, EINTR);
  rmdir(dir);

  if (!ok)
    fail_msg("%s: the child could not set up its buffers", sc->name);
  if (r.skipped || all.skipped) {
    print_message("skipped: ptrace is not permitted here; gcore said:\n%s\n",
                  r.skipped ? r.log : all.log);
    skip();
  }
  if (r.failed || all.failed)
    fail_msg("%s: gcore failed:\n%s", sc->name, r.failed ? r.log : all.log);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  /* The control: the dump holds the child's heap. */
  if (!r.has_heap)
    fail_msg("%s: the malloc'd marker is not in the core: the dump does not "
             "show memory; gcore said:\n%s",
             sc->name, r.log);
  /* The attack: the pool's buffer is not in it. */
  if (r.has_pool)
    fail_msg("%s: the pool buffer's marker is in the core dump", sc->name);
  /* The marker was there: gcore -a, which ignores MADV_DONTDUMP, finds it,
   * except in memfd_secret memory, which no one but the owner can read. */
  if (!all.has_heap)
    fail_msg("%s: gcore -a lost the heap marker:\n%s", sc->name, all.log);
  if (secret && all.has_pool)
    fail_msg("%s: gcore -a read the marker out of memfd_secret memory",
             sc->name);
  if (!secret && !all.has_pool)
    fail_msg("%s: gcore -a did not find the pool marker either: the test "
             "proves nothing; gcore said:\n%s",
             sc->name, all.log);
  if (secret)
    print_message("%s: memfd_secret backing in effect\n", sc->name);
}

/* ---- the tests ---------------------------------------------------------- */

/* A 64 KiB buffer of a slab (sixteen per mapping), default pool. */
static void test_dump_excludes_slab_buffer(void **state) {
  scenario sc = {"slab buffer", {0}, 64 * ZP_KIB, 30000};
  (void)state;
  run_scenario(&sc);
}

/* A 100-byte buffer of a 64-byte-granule slab. */
static void test_dump_excludes_small_buffer(void **state) {
  scenario sc = {"small buffer", {0}, 100, 40};
  (void)state;
  sc.builder.min_buffer_size = 64;
  run_scenario(&sc);
}

/* A 1 MiB buffer with a mapping of its own. */
static void test_dump_excludes_large_buffer(void **state) {
  scenario sc = {"large buffer", {0}, ZP_MIB, ZP_MIB - 100};
  (void)state;
  run_scenario(&sc);
}

/* pinned_memory: locked pages are still kept out of the dump. */
static void test_dump_excludes_pinned_buffer(void **state) {
  scenario sc = {"pinned buffer", {0}, 8 * ZP_KIB, 5000};
  (void)state;
  sc.builder.pinned_memory = true;
  run_scenario(&sc);
}

/* backing = ZP_BACKING_SECRET: memfd_secret where the kernel has it (then
 * even gcore -a cannot read it), else the pinned fallback. */
static void test_dump_excludes_secret_buffer(void **state) {
  scenario sc = {"secret buffer", {0}, 16 * ZP_KIB, 9000};
  (void)state;
  sc.builder.backing = ZP_BACKING_SECRET;
  run_scenario(&sc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dump_excludes_slab_buffer),
      cmocka_unit_test(test_dump_excludes_small_buffer),
      cmocka_unit_test(test_dump_excludes_large_buffer),
      cmocka_unit_test(test_dump_excludes_pinned_buffer),
      cmocka_unit_test(test_dump_excludes_secret_buffer),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
