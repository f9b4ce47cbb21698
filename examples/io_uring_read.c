/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * io_uring_read: reads a file with io_uring (liburing), QUEUE_DEPTH reads in
 * flight, each into its own pooled buffer.
 *
 *   zp_get(64 KiB) -> io_uring_prep_read at offset -> submit
 *   ... completion: res bytes -> check them -> zp_put_used(res)
 *
 * Buffers of 4 KiB and more come page aligned from the pool, as O_DIRECT
 * wants (this example reads a file in $TMPDIR, often tmpfs, so it does not
 * ask for O_DIRECT). A short read at the end of the file wipes only the
 * bytes that arrived. Built only when pkg-config finds liburing; exits 77
 * (skipped) where the kernel refuses io_uring (old kernel, seccomp).
 *
 * Usage: zp_io_uring_read
 */
#include <zeropool.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUEUE_DEPTH 8
#define BLOCK ((size_t)64 * 1024)
#define FILE_BYTES ((size_t)2 * 1024 * 1024 + 777)
#define EXIT_SKIP 77

struct request {
  unsigned char *buf; /* pooled, BLOCK bytes */
  size_t offset;
};

static unsigned char file_byte(size_t i) {
  return (unsigned char)((i * 2654435761u) >> 13);
}

/* Makes a temporary file of FILE_BYTES known bytes, unlinked; its fd or -1. */
static int make_file(zp_pool *pool) {
  const char *dir = getenv("TMPDIR");
  char path[4096];
  if (snprintf(path, sizeof path, "%s/zp_uring.XXXXXX",
               dir && *dir ? dir : "/tmp") >= (int)sizeof path)
    return -1;
  int fd = mkstemp(path);
  if (fd < 0)
    return -1;
  unlink(path);
  unsigned char *buf = zp_get(pool, BLOCK);
  if (buf == NULL) {
    close(fd);
    return -1;
  }
  for (size_t off = 0; off < FILE_BYTES; off += BLOCK) {
    size_t n = FILE_BYTES - off < BLOCK ? FILE_BYTES - off : BLOCK;
    for (size_t i = 0; i < n; i++)
      buf[i] = file_byte(off + i);
    if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) {
      zp_put(pool, buf);
      close(fd);
      return -1;
    }
  }
  zp_put(pool, buf);
  return fd;
}

int main(void) {
  zp_pool *pool = zp_pool_new(NULL);
  if (pool == NULL) {
    perror("io_uring_read: zp_pool_new");
    return 1;
  }
  struct io_uring ring;
  int err = io_uring_queue_init(QUEUE_DEPTH, &ring, 0);
  if (err < 0) {
    fprintf(stderr, "io_uring_read: io_uring unavailable (%s), skipping\n",
            strerror(-err));
    zp_pool_destroy(pool);
    return EXIT_SKIP;
  }
  int fd = make_file(pool);
  if (fd < 0) {
    perror("io_uring_read: temporary file");
    io_uring_queue_exit(&ring);
    zp_pool_destroy(pool);
    return 1;
  }

  struct request reqs[QUEUE_DEPTH] = {{0}}; /* buf NULL: slot free */
  size_t next = 0, done = 0, bad = 0;
  unsigned inflight = 0;
  int rc = 0;
  for (;;) {
    /* Keep QUEUE_DEPTH reads in flight, each with its own pooled buffer. */
    while (rc == 0 && inflight < QUEUE_DEPTH && next < FILE_BYTES) {
      struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
      if (sqe == NULL)
        break;
      struct request *r = reqs;
      while (r->buf != NULL) /* a free slot: inflight < QUEUE_DEPTH */
        r++;
      r->buf = zp_get(pool, BLOCK);
      if (r->buf == NULL) {
        perror("io_uring_read: zp_get");
        rc = 1;
        break;
      }
      r->offset = next;
      io_uring_prep_read(sqe, fd, r->buf, (unsigned)BLOCK, (uint64_t)next);
      io_uring_sqe_set_data(sqe, r);
      next += BLOCK;
      inflight++;
    }
    if (inflight == 0)
      break;
    if (io_uring_submit(&ring) < 0) {
      fprintf(stderr, "io_uring_read: submit failed\n");
      rc = 1;
      break;
    }
    struct io_uring_cqe *cqe;
    err = io_uring_wait_cqe(&ring, &cqe);
    if (err < 0) {
      fprintf(stderr, "io_uring_read: wait: %s\n", strerror(-err));
      rc = 1;
      break;
    }
    struct request *r = io_uring_cqe_get_data(cqe);
    int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    inflight--;
    if (res < 0) {
      fprintf(stderr, "io_uring_read: read at %zu: %s\n", r->offset,
              strerror(-res));
      zp_put_used(pool, r->buf, 0);
      r->buf = NULL;
      rc = 1;
      break;
    }
    for (size_t i = 0; i < (size_t)res; i++)
      bad += r->buf[i] != file_byte(r->offset + i);
    done += (size_t)res;
    zp_put_used(pool, r->buf, (size_t)res); /* wipes what the read wrote */
    r->buf = NULL;
  }
  /* After an error, wait for what is still in flight before the put. */
  while (inflight > 0) {
    struct io_uring_cqe *cqe;
    if (io_uring_wait_cqe(&ring, &cqe) < 0)
      break;
    struct request *r = io_uring_cqe_get_data(cqe);
    io_uring_cqe_seen(&ring, cqe);
    zp_put(pool, r->buf);
    r->buf = NULL;
    inflight--;
  }
  io_uring_queue_exit(&ring);
  close(fd);

  zp_stats st = {0};
  (void)zp_pool_stats(pool, &st);
  printf("io_uring_read: %zu of %zu bytes read, %zu wrong; pool: %" PRIu64
         " gets (%" PRIu64 " hits), %" PRIu64 " bytes zeroed, %" PRIu64
         " out\n",
         done, FILE_BYTES, bad, st.gets, st.hits, st.bytes_zeroed,
         st.outstanding_buffers);
  if (done != FILE_BYTES || bad != 0 || st.outstanding_buffers != 0)
    rc = 1;
  zp_pool_destroy(pool);
  if (rc == 0)
    printf("io_uring_read: ok\n");
  return rc;
}
