/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * echo_server: a small epoll TCP echo server whose connections live in
 * pooled memory, and a client that checks it, in one program.
 *
 * The server thread listens on 127.0.0.1 on a port the kernel picks. For
 * each connection it takes two buffers from the pool: the connection's
 * state (zp_get gives it zeroed, so no memset) and a 16 KiB I/O buffer.
 * Bytes read are written back as they came; when the socket cannot take
 * them all, the connection waits for EPOLLOUT and reads nothing more until
 * they are gone. When the peer closes, the I/O buffer is put with
 * zp_put_used(high-water mark): only the bytes a read ever reached are
 * wiped.
 *
 * The client (the main thread) opens CONNECTIONS connections, GROUP at a
 * time, and sends each a message of its own length (1000 bytes to ~35 KiB)
 * in chunks, interleaved between the open connections; after every chunk it
 * reads the echo back and compares it. Then it stops the server (an eventfd
 * in the epoll set) and checks that every connection was served and every
 * buffer went back to the pool. An alarm ends the program if anything hangs.
 *
 * Usage: zp_echo_server    (exit 0: all echoes matched; 77: no loopback)
 */
#include <zeropool.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define CONNECTIONS 24
#define GROUP 4
#define IO_BUF ((size_t)16 * 1024)
#define CHUNK ((size_t)4096)
#define WATCHDOG_S 30
#define EXIT_SKIP 77

/* One connection, in a pooled buffer. */
struct conn {
  int fd;
  unsigned char *buf; /* pooled, IO_BUF bytes */
  size_t have;        /* bytes in buf still to send back */
  size_t sent;        /* of them, already sent */
  size_t high;        /* most bytes one read put in buf: what the put wipes */
  struct conn *next, *prev; /* open connections */
};

struct server {
  zp_pool *pool;
  int listen_fd, stop_fd, epoll_fd;
  struct conn *open;
  atomic_ulong served; /* connections closed after use */
  unsigned long long echoed;
  int failed;
};

static void conn_close(struct server *s, struct conn *c) {
  epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  if (c->prev)
    c->prev->next = c->next;
  else
    s->open = c->next;
  if (c->next)
    c->next->prev = c->prev;
  zp_put_used(s->pool, c->buf, c->high);
  zp_put(s->pool, c); /* the state was written all over: wipe it all */
  atomic_fetch_add(&s->served, 1);
}

static int conn_watch(struct server *s, struct conn *c, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  return epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends what is pending. 1: all sent, 0: the socket is full, -1: error. */
static int conn_flush(struct server *s, struct conn *c) {
  while (c->sent < c->have) {
    ssize_t w = send(c->fd, c->buf + c->sent, c->have - c->sent, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 0;
    if (w < 0)
      return -1;
    c->sent += (size_t)w;
    s->echoed += (size_t)w;
  }
  c->have = c->sent = 0;
  return 1;
}

static void accept_all(struct server *s) {
  for (;;) {
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        perror("echo_server: accept4");
        s->failed = 1;
      }
      return;
    }
    struct conn *c = zp_get(s->pool, sizeof *c); /* zeroed */
    unsigned char *buf = c ? zp_get(s->pool, IO_BUF) : NULL;
    if (buf == NULL) {
      perror("echo_server: zp_get");
      zp_put(s->pool, c);
      close(fd);
      s->failed = 1;
      continue;
    }
    c->fd = fd;
    c->buf = buf;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      perror("echo_server: epoll_ctl");
      zp_put(s->pool, buf);
      zp_put(s->pool, c);
      close(fd);
      s->failed = 1;
      continue;
    }
    c->next = s->open;
    if (c->next)
      c->next->prev = c;
    s->open = c;
  }
}

static void conn_event(struct server *s, struct conn *c, uint32_t events) {
  if (c->have > 0) { /* waiting to send: EPOLLOUT */
    int r = conn_flush(s, c);
    if (r < 0)
      conn_close(s, c);
    else if (r > 0)
      conn_watch(s, c, EPOLLIN | EPOLLRDHUP);
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    ssize_t n = read(c->fd, c->buf, IO_BUF);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      return;
    if (n <= 0) { /* the peer closed, or an error */
      conn_close(s, c);
      return;
    }
    c->have = (size_t)n;
    if ((size_t)n > c->high)
      c->high = (size_t)n;
    int r = conn_flush(s, c);
    if (r < 0)
      conn_close(s, c);
    else if (r == 0)
      conn_watch(s, c, EPOLLOUT); /* read nothing until this is sent */
  }
}

static void *server_main(void *arg) {
  struct server *s = arg;
  struct epoll_event events[16];
  for (;;) {
    int n = epoll_wait(s->epoll_fd, events, 16, -1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      perror("echo_server: epoll_wait");
      s->failed = 1;
      break;
    }
    for (int i = 0; i < n; i++) {
      void *p = events[i].data.ptr;
      if (p == &s->listen_fd)
        accept_all(s);
      else if (p == &s->stop_fd)
        goto stop;
      else
        conn_event(s, p, events[i].events);
    }
  }
stop:
  while (s->open) { /* connections the client left open: none expected */
    s->failed = 1;
    conn_close(s, s->open);
  }
  return NULL;
}

/* The byte i of the message on connection k. */
static unsigned char message_byte(unsigned k, size_t i) {
  return (unsigned char)(i * 13u + k * 101u + (i >> 8));
}

static int send_all(int fd, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int recv_all(int fd, unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1; /* closed, error, or SO_RCVTIMEO ran out */
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* Runs the client against port; 0 when every echo matched. */
static int client(zp_pool *pool, uint16_t port) {
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval tmo = {.tv_sec = 5};
  unsigned char *out = zp_get(pool, CHUNK), *in = zp_get(pool, CHUNK);
  int rc = -1;
  if (out == NULL || in == NULL) {
    perror("echo_server: client: zp_get");
    goto done;
  }
  for (unsigned first = 0; first < CONNECTIONS; first += GROUP) {
    int fds[GROUP];
    size_t len[GROUP], off[GROUP];
    unsigned open_n = 0;
    for (unsigned g = 0; g < GROUP && first + g < CONNECTIONS; g++) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0 ||
          setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo) != 0 ||
          setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof tmo) != 0 ||
          connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("echo_server: client: connect");
        if (fd >= 0)
          close(fd);
        for (unsigned j = 0; j < open_n; j++)
          close(fds[j]);
        goto done;
      }
      fds[g] = fd;
      len[g] = 1000 + (size_t)(first + g) * 1500;
      off[g] = 0;
      open_n++;
    }
    /* Interleave: one chunk per open connection per round. */
    for (int busy = 1; busy;) {
      busy = 0;
      for (unsigned g = 0; g < open_n; g++) {
        if (off[g] == len[g])
          continue;
        busy = 1;
        unsigned k = first + g;
        size_t n = len[g] - off[g] < CHUNK ? len[g] - off[g] : CHUNK;
        for (size_t i = 0; i < n; i++)
          out[i] = message_byte(k, off[g] + i);
        if (send_all(fds[g], out, n) != 0 || recv_all(fds[g], in, n) != 0) {
          fprintf(stderr, "echo_server: client: connection %u: %s\n", k,
                  strerror(errno));
          for (unsigned j = 0; j < open_n; j++)
            close(fds[j]);
          goto done;
        }
        if (memcmp(in, out, n) != 0) {
          fprintf(stderr,
                  "echo_server: client: connection %u: bad echo at "
                  "byte %zu\n",
                  k, off[g]);
          for (unsigned j = 0; j < open_n; j++)
            close(fds[j]);
          goto done;
        }
        off[g] += n;
      }
    }
    for (unsigned g = 0; g < open_n; g++)
      close(fds[g]);
  }
  rc = 0;
done:
  zp_put(pool, out);
  zp_put(pool, in);
  return rc;
}

int main(void) {
  alarm(WATCHDOG_S); /* a hang kills the program (and fails the test) */
  struct server s = {.listen_fd = -1, .stop_fd = -1, .epoll_fd = -1};
  s.pool = zp_pool_new(NULL);
  if (s.pool == NULL) {
    perror("echo_server: zp_pool_new");
    return 1;
  }

  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof addr;
  s.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s.listen_fd < 0 ||
      bind(s.listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(s.listen_fd, 64) != 0 ||
      getsockname(s.listen_fd, (struct sockaddr *)&addr, &alen) != 0) {
    perror("echo_server: no TCP on 127.0.0.1, skipping");
    zp_pool_destroy(s.pool);
    return EXIT_SKIP;
  }
  s.stop_fd = eventfd(0, EFD_CLOEXEC);
  s.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &s.listen_fd};
  struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &s.stop_fd};
  if (s.stop_fd < 0 || s.epoll_fd < 0 ||
      epoll_ctl(s.epoll_fd, EPOLL_CTL_ADD, s.listen_fd, &lev) != 0 ||
      epoll_ctl(s.epoll_fd, EPOLL_CTL_ADD, s.stop_fd, &sev) != 0) {
    perror("echo_server: epoll");
    return 1;
  }
  uint16_t port = ntohs(addr.sin_port);
  printf("echo_server: listening on 127.0.0.1:%u\n", (unsigned)port);

  pthread_t server_thread;
  if (pthread_create(&server_thread, NULL, server_main, &s) != 0) {
    fprintf(stderr, "echo_server: pthread_create failed\n");
    return 1;
  }
  int rc = client(s.pool, port) == 0 ? 0 : 1;

  /* The server may not have seen the last close yet: stop it once it has
   * served every connection (or after 5 s; the check below then fails). */
  for (int tries = 0; tries < 5000; tries++) {
    if (atomic_load(&s.served) >= CONNECTIONS)
      break;
    usleep(1000);
  }
  uint64_t one = 1;
  if (write(s.stop_fd, &one, sizeof one) != (ssize_t)sizeof one) {
    perror("echo_server: eventfd write");
    return 1;
  }
  pthread_join(server_thread, NULL);

  zp_stats st = {0};
  (void)zp_pool_stats(s.pool, &st);
  printf("echo_server: %lu connections echoed, %llu bytes, pool: %" PRIu64
         " gets (%" PRIu64 " hits), %" PRIu64 " bytes zeroed, %" PRIu64
         " out\n",
         atomic_load(&s.served), s.echoed, st.gets, st.hits, st.bytes_zeroed,
         st.outstanding_buffers);
  if (s.failed || atomic_load(&s.served) != CONNECTIONS ||
      st.outstanding_buffers != 0) {
    fprintf(stderr, "echo_server: FAILED (served %lu of %d)\n",
            atomic_load(&s.served), CONNECTIONS);
    rc = 1;
  }
  close(s.epoll_fd);
  close(s.stop_fd);
  close(s.listen_fd);
  zp_pool_destroy(s.pool);
  if (rc == 0)
    printf("echo_server: ok\n");
  return rc;
}
