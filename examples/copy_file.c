/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * copy_file: copies a file with read(2) and write(2) through pooled
 * buffers, then checks the copy byte for byte (as cmp(1) would).
 *
 *   zp_copy_file SRC DST   copy SRC to DST and compare them
 *   zp_copy_file           self-test: make a 3 MiB + 123 byte file of
 *                          pseudo-random bytes in $TMPDIR (else /tmp), copy
 *                          it, compare, remove both
 *
 * Every chunk is one zp_get(CHUNK) .. zp_put_used(n) cycle: the buffer
 * comes zeroed, read(2) fills n bytes, write(2) sends them, and the put
 * wipes those n bytes only. The last chunk of a file is short, so its put
 * wipes less than the chunk. At the end the program prints the pool's
 * counters: after the first get (a miss), the same buffer comes back from
 * the thread cache for every chunk (hits), and nothing is left out.
 */
#include <zeropool.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK ((size_t)64 * 1024)
#define SELF_TEST_BYTES ((size_t)3 * 1024 * 1024 + 123)

/* read(2) that retries on EINTR. */
static ssize_t read_some(int fd, void *buf, size_t n) {
  ssize_t r;
  do
    r = read(fd, buf, n);
  while (r < 0 && errno == EINTR);
  return r;
}

/* Reads until n bytes or end of file; returns the bytes read or -1. */
static ssize_t read_full(int fd, char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read_some(fd, buf + got, n - got);
    if (r < 0)
      return -1;
    if (r == 0)
      break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

/* Writes all n bytes; 0 or -1. */
static int write_full(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Copies src_fd to dst_fd, one pooled chunk at a time. Returns the bytes
 * copied, or -1 (message printed). */
static long long copy_fd(zp_pool *pool, int src_fd, int dst_fd) {
  long long total = 0;
  for (;;) {
    char *buf = zp_get(pool, CHUNK);
    if (buf == NULL) {
      perror("copy_file: zp_get");
      return -1;
    }
    ssize_t n = read_some(src_fd, buf, CHUNK);
    if (n <= 0) {
      int saved = errno;
      zp_put_used(pool, buf, 0); /* nothing was written into it */
      if (n == 0)
        return total;
      errno = saved;
      perror("copy_file: read");
      return -1;
    }
    int rc = write_full(dst_fd, buf, (size_t)n);
    zp_put_used(pool, buf, (size_t)n); /* wipes the n bytes read only */
    if (rc != 0) {
      perror("copy_file: write");
      return -1;
    }
    total += n;
  }
}

/* Compares two files as cmp(1) does, through two pooled buffers. Returns
 * 0 when identical, 1 when they differ (the first difference printed), -1
 * on an error. */
static int compare_fds(zp_pool *pool, int a_fd, int b_fd) {
  long long offset = 0;
  int result = -1;
  char *a = zp_get(pool, CHUNK);
  char *b = zp_get(pool, CHUNK);
  size_t used = 0; /* the largest chunk read: what both puts wipe */
  if (a == NULL || b == NULL) {
    perror("copy_file: zp_get");
    goto out;
  }
  for (;;) {
    ssize_t na = read_full(a_fd, a, CHUNK);
    ssize_t nb = read_full(b_fd, b, CHUNK);
    if (na < 0 || nb < 0) {
      perror("copy_file: read");
      goto out;
    }
    if ((size_t)na > used)
      used = (size_t)na;
    if ((size_t)nb > used)
      used = (size_t)nb;
    size_t common = (size_t)(na < nb ? na : nb);
    if (memcmp(a, b, common) != 0) {
      size_t i = 0;
      while (a[i] == b[i])
        i++;
      printf("copy_file: differ: byte %lld\n", offset + (long long)i + 1);
      result = 1;
      goto out;
    }
    if (na != nb) {
      printf("copy_file: EOF on the %s file after byte %lld\n",
             na < nb ? "first" : "second", offset + (long long)common);
      result = 1;
      goto out;
    }
    if (na == 0) {
      result = 0;
      goto out;
    }
    offset += na;
  }
out:
  zp_put_used(pool, a, used);
  zp_put_used(pool, b, used);
  return result;
}

/* Copies src to dst and compares them. 0 on success. */
static int copy_and_check(zp_pool *pool, const char *src, const char *dst) {
  int rc = 1;
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    fprintf(stderr, "copy_file: %s: %s\n", src, strerror(errno));
    return 1;
  }
  struct stat st;
  if (fstat(in, &st) != 0) {
    perror("copy_file: fstat");
    close(in);
    return 1;
  }
  int out =
      open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 0777);
  if (out < 0) {
    fprintf(stderr, "copy_file: %s: %s\n", dst, strerror(errno));
    close(in);
    return 1;
  }
  long long copied = copy_fd(pool, in, out);
  if (close(out) != 0 && copied >= 0) {
    perror("copy_file: close");
    copied = -1;
  }
  close(in);
  if (copied < 0)
    return 1;

  int a = open(src, O_RDONLY | O_CLOEXEC);
  int b = open(dst, O_RDONLY | O_CLOEXEC);
  if (a < 0 || b < 0) {
    perror("copy_file: open for the comparison");
  } else if (compare_fds(pool, a, b) == 0) {
    printf("copy_file: copied %lld bytes, %s and %s are identical\n", copied,
           src, dst);
    rc = 0;
  }
  if (a >= 0)
    close(a);
  if (b >= 0)
    close(b);
  return rc;
}

/* Writes n pseudo-random bytes (xorshift64) to fd, through a pooled buffer
 * as well. 0 on success. */
static int fill_random(zp_pool *pool, int fd, size_t n) {
  uint64_t x = 0x9E3779B97F4A7C15u;
  char *buf = zp_get(pool, CHUNK);
  if (buf == NULL) {
    perror("copy_file: zp_get");
    return -1;
  }
  int rc = 0;
  while (n > 0 && rc == 0) {
    size_t len = n < CHUNK ? n : CHUNK;
    for (size_t i = 0; i < len; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[i] = (char)(x >> 56);
    }
    rc = write_full(fd, buf, len);
    n -= len;
  }
  zp_put(pool, buf); /* every byte was written: wipe all */
  if (rc != 0)
    perror("copy_file: write");
  return rc;
}

static int self_test(zp_pool *pool) {
  const char *dir = getenv("TMPDIR");
  if (dir == NULL || *dir == '\0')
    dir = "/tmp";
  char src[4096], dst[4096];
  if (snprintf(src, sizeof src, "%s/zp_copy_src.XXXXXX", dir) >=
          (int)sizeof src ||
      snprintf(dst, sizeof dst, "%s/zp_copy_dst.XXXXXX", dir) >=
          (int)sizeof dst) {
    fprintf(stderr, "copy_file: TMPDIR is too long\n");
    return 1;
  }
  int sfd = mkstemp(src);
  if (sfd < 0) {
    perror("copy_file: mkstemp");
    return 1;
  }
  int dfd = mkstemp(dst);
  if (dfd < 0) {
    perror("copy_file: mkstemp");
    close(sfd);
    unlink(src);
    return 1;
  }
  close(dfd);
  int rc = fill_random(pool, sfd, SELF_TEST_BYTES);
  if (close(sfd) != 0)
    rc = -1;
  if (rc == 0)
    rc = copy_and_check(pool, src, dst);
  else
    rc = 1;
  unlink(src);
  unlink(dst);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 1 && argc != 3) {
    fprintf(stderr, "usage: %s [SRC DST]\n", argv[0]);
    return 2;
  }
  zp_pool *pool = zp_pool_new(NULL);
  if (pool == NULL) {
    perror("copy_file: zp_pool_new");
    return 1;
  }
  int rc = argc == 3 ? copy_and_check(pool, argv[1], argv[2]) : self_test(pool);

  zp_stats st = {0};
  if (zp_pool_stats(pool, &st) == 0)
    printf("copy_file: pool: %" PRIu64 " gets (%" PRIu64 " hits, %" PRIu64
           " misses), %" PRIu64 " bytes zeroed, %" PRIu64 " out\n",
           st.gets, st.hits, st.misses, st.bytes_zeroed,
           st.outstanding_buffers);
  if (st.outstanding_buffers != 0) {
    fprintf(stderr, "copy_file: %" PRIu64 " buffers were not put back\n",
            st.outstanding_buffers);
    rc = 1;
  }
  zp_pool_destroy(pool);
  return rc;
}
