/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Replays fuzz inputs without libFuzzer: the ctest test fuzz_regress feeds
 * every file of tests/fuzz/corpus/ to LLVMFuzzerTestOneInput, so the corpus
 * runs in every build (gcc, clang, ASan, TSan, valgrind).
 *
 *   fuzz_regress [-v] DIR|FILE...
 *
 * A directory contributes its regular files in name order; -v names each
 * input as it runs. Fails when an argument cannot be read or when no input
 * was found; an input the library fails aborts with the fuzz target's
 * "fuzz_api:" line, and the name of the input follows it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool verbose;
static char current[4096]; /* the input running, for the crash handler */

/* Names the failing input, then dies of the same signal. */
static void on_fatal(int sig) {
  static const char msg[] = "fuzz_regress: the failing input is ";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)!write(STDERR_FILENO, current, strlen(current));
  (void)!write(STDERR_FILENO, "\n", 1);
  raise(sig); /* SA_RESETHAND: the default action now */
}

static void catch_fatal_signals(void) {
  static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fatal;
  sa.sa_flags = (int)SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    (void)sigaction(sigs[i], &sa, NULL);
}

/* Reads a whole file; NULL on error. *len gets its size. */
static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf = NULL;
  size_t cap = 0, n = 0;
  if (!f)
    return NULL;
  for (;;) {
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 4096;
      uint8_t *nbuf = realloc(buf, ncap);
      if (!nbuf) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = nbuf;
      cap = ncap;
    }
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (r == 0)
      break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

static int run_file(const char *path) {
  size_t len = 0;
  uint8_t *data = read_file(path, &len);
  if (!data) {
    fprintf(stderr, "fuzz_regress: cannot read %s: %s\n", path,
            strerror(errno));
    return -1;
  }
  snprintf(current, sizeof current, "%s", path);
  if (verbose)
    fprintf(stderr, "fuzz_regress: %s (%zu bytes)\n", path, len);
  LLVMFuzzerTestOneInput(data, len);
  free(data);
  return 0;
}

static int regular_file(const struct dirent *e) { return e->d_name[0] != '.'; }

/* Runs every regular file of dir in name order; the count, or -1. */
static long run_dir(const char *dir) {
  struct dirent **names = NULL;
  int n = scandir(dir, &names, regular_file, alphasort);
  long count = 0;
  if (n < 0) {
    fprintf(stderr, "fuzz_regress: cannot list %s: %s\n", dir, strerror(errno));
    return -1;
  }
  for (int i = 0; i < n; i++) {
    char path[4096];
    struct stat st;
    int w = snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
    if (count >= 0 && w > 0 && (size_t)w < sizeof path &&
        stat(path, &st) == 0 && S_ISREG(st.st_mode))
      count = run_file(path) == 0 ? count + 1 : -1;
    free(names[i]);
  }
  free(names);
  return count;
}

int main(int argc, char **argv) {
  long total = 0;
  int first = 1;
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    verbose = true;
    first = 2;
  }
  if (argc <= first) {
    fprintf(stderr, "usage: %s [-v] DIR|FILE...\n", argv[0]);
    return 2;
  }
  catch_fatal_signals();
  for (int i = first; i < argc; i++) {
    struct stat st;
    long n;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "fuzz_regress: %s: %s\n", argv[i], strerror(errno));
      return 1;
    }
    n = S_ISDIR(st.st_mode) ? run_dir(argv[i])
                            : (run_file(argv[i]) == 0 ? 1 : -1);
    if (n < 0)
      return 1;
    total += n;
  }
  if (total == 0) {
    fprintf(stderr, "fuzz_regress: no inputs found\n");
    return 1;
  }
  printf("fuzz_regress: %ld inputs replayed, no failure\n", total);
  return 0;
}
