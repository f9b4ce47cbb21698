/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * pipeline: producer threads fill pooled buffers and pass them through a
 * bounded queue to consumer threads, which check them and put them back.
 *
 *   producer: zp_get(size) -> check [0, used) and the last byte are zero
 *             -> write a pattern into [0, used) -> enqueue
 *   consumer: dequeue -> check the pattern and its checksum
 *             -> zp_put_used(used)          (a different thread from the get)
 *
 * Sizes vary from 100 bytes to 192 KiB (slab classes and single mappings),
 * `used` is a random prefix of at most 8 KiB. Every buffer is taken on one
 * thread and put on another: the pool moves it from the consumer's cache to
 * a shard and back to a producer, so after the first round most gets are
 * hits. The program prints the counters and fails on a bad byte, a bad
 * checksum, or a buffer not put back.
 *
 * Usage: zp_pipeline [ITEMS_PER_PRODUCER]   (default 20000; 2000 when
 *        ZP_TEST_QUICK is set, as under valgrind and TSan)
 */
#include <zeropool.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define PRODUCERS 2
#define CONSUMERS 2
#define QUEUE_CAP 64
#define MAX_USED ((size_t)8192)

static const size_t sizes[] = {100, 1000, 4096, 10000, 65536, 196608};
#define NSIZES (sizeof sizes / sizeof sizes[0])

struct msg {
  unsigned char *buf; /* NULL: no more messages for this consumer */
  size_t size;        /* asked from zp_get */
  size_t used;        /* bytes written: [0, used) */
  uint64_t seq;
  unsigned producer;
  uint64_t sum; /* of the pattern, computed by the producer */
};

/* A bounded FIFO of messages: one lock, two condition variables. */
struct queue {
  pthread_mutex_t lock;
  pthread_cond_t not_full, not_empty;
  struct msg items[QUEUE_CAP];
  size_t head, count;
};

static zp_pool *pool;
static struct queue queue = {.lock = PTHREAD_MUTEX_INITIALIZER,
                             .not_full = PTHREAD_COND_INITIALIZER,
                             .not_empty = PTHREAD_COND_INITIALIZER};
static unsigned long items_per_producer = 20000;
static atomic_ulong errors, consumed;

static void enqueue(const struct msg *m) {
  pthread_mutex_lock(&queue.lock);
  while (queue.count == QUEUE_CAP)
    pthread_cond_wait(&queue.not_full, &queue.lock);
  queue.items[(queue.head + queue.count) % QUEUE_CAP] = *m;
  queue.count++;
  pthread_cond_signal(&queue.not_empty);
  pthread_mutex_unlock(&queue.lock);
}

static struct msg dequeue(void) {
  pthread_mutex_lock(&queue.lock);
  while (queue.count == 0)
    pthread_cond_wait(&queue.not_empty, &queue.lock);
  struct msg m = queue.items[queue.head];
  queue.head = (queue.head + 1) % QUEUE_CAP;
  queue.count--;
  pthread_cond_signal(&queue.not_full);
  pthread_mutex_unlock(&queue.lock);
  return m;
}

static uint64_t xorshift(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* The pattern byte i of message (producer, seq). */
static unsigned char pattern(unsigned producer, uint64_t seq, size_t i) {
  return (unsigned char)(seq * 131u + i * 7u + producer * 61u + 1u);
}

static void *producer(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  uint64_t rng = 0x2545F4914F6CDD1Du + id;
  for (uint64_t seq = 0; seq < items_per_producer; seq++) {
    struct msg m = {.seq = seq, .producer = id};
    m.size = sizes[xorshift(&rng) % NSIZES];
    m.buf = zp_get(pool, m.size);
    if (m.buf == NULL) {
      perror("pipeline: zp_get");
      atomic_fetch_add(&errors, 1);
      break;
    }
    size_t cap = m.size < MAX_USED ? m.size : MAX_USED;
    m.used = 1 + (size_t)(xorshift(&rng) % cap);
    /* Zero on get: whatever the last user wrote was wiped. */
    if (m.buf[m.size - 1] != 0)
      atomic_fetch_add(&errors, 1);
    for (size_t i = 0; i < m.used; i++) {
      if (m.buf[i] != 0) {
        atomic_fetch_add(&errors, 1);
        break;
      }
    }
    for (size_t i = 0; i < m.used; i++) {
      m.buf[i] = pattern(id, seq, i);
      m.sum += m.buf[i];
    }
    enqueue(&m);
  }
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  for (;;) {
    struct msg m = dequeue();
    if (m.buf == NULL)
      return NULL;
    uint64_t sum = 0;
    int bad = 0;
    for (size_t i = 0; i < m.used; i++) {
      bad |= m.buf[i] != pattern(m.producer, m.seq, i);
      sum += m.buf[i];
    }
    if (bad || sum != m.sum || zp_buffer_size(pool, m.buf) != m.size) {
      fprintf(stderr, "pipeline: message %u/%" PRIu64 " is corrupt\n",
              m.producer, m.seq);
      atomic_fetch_add(&errors, 1);
    }
    zp_put_used(pool, m.buf, m.used); /* wipes what the producer wrote */
    atomic_fetch_add(&consumed, 1);
  }
}

int main(int argc, char **argv) {
  if (getenv("ZP_TEST_QUICK") != NULL)
    items_per_producer = 2000;
  if (argc > 1)
    items_per_producer = strtoul(argv[1], NULL, 10);

  pool = zp_pool_new(NULL);
  if (pool == NULL) {
    perror("pipeline: zp_pool_new");
    return 1;
  }
  pthread_t prod[PRODUCERS], cons[CONSUMERS];
  for (unsigned i = 0; i < CONSUMERS; i++)
    if (pthread_create(&cons[i], NULL, consumer, NULL) != 0) {
      fprintf(stderr, "pipeline: pthread_create failed\n");
      return 1;
    }
  for (unsigned i = 0; i < PRODUCERS; i++)
    if (pthread_create(&prod[i], NULL, producer, (void *)(uintptr_t)i) != 0) {
      fprintf(stderr, "pipeline: pthread_create failed\n");
      return 1;
    }
  for (unsigned i = 0; i < PRODUCERS; i++)
    pthread_join(prod[i], NULL);
  for (unsigned i = 0; i < CONSUMERS; i++)
    enqueue(&(struct msg){.buf = NULL}); /* one stop message each */
  for (unsigned i = 0; i < CONSUMERS; i++)
    pthread_join(cons[i], NULL);

  zp_stats st = {0};
  (void)zp_pool_stats(pool, &st);
  unsigned long want = PRODUCERS * items_per_producer;
  printf("pipeline: %lu buffers through %d producers and %d consumers\n",
         atomic_load(&consumed), PRODUCERS, CONSUMERS);
  printf("pipeline: pool: %" PRIu64 " gets, %" PRIu64 " puts, %.1f %% hits, "
         "%" PRIu64 " bytes zeroed, %" PRIu64 " idle, %" PRIu64 " out\n",
         st.gets, st.puts,
         st.gets ? 100.0 * (double)st.hits / (double)st.gets : 0.0,
         st.bytes_zeroed, st.idle_buffers, st.outstanding_buffers);
  int rc = 0;
  if (atomic_load(&errors) != 0) {
    fprintf(stderr, "pipeline: %lu errors\n", atomic_load(&errors));
    rc = 1;
  }
  if (atomic_load(&consumed) != want || st.puts != want ||
      st.outstanding_buffers != 0) {
    fprintf(stderr, "pipeline: expected %lu buffers put back\n", want);
    rc = 1;
  }
  zp_pool_destroy(pool);
  if (rc == 0)
    printf("pipeline: ok\n");
  return rc;
}
