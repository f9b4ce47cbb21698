/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* CLOCK-Pro (src/clockpro.c): hand movements and state transitions on small
 * hand-built cases, and invariants over random traces. */
#include "test_util.h"

#include "clockpro.h"

/* Classes: 0 = 4 KiB, 1 = 8 KiB, 2 = 64 KiB. */
static const size_t sizes[3] = {4096, 8192, 65536};

typedef struct fixture {
  zp__clockpro cp;
  void *mem;
} fixture;

static void fx_init(fixture *fx, size_t budget, size_t max_resident) {
  fx->mem = malloc(zp__cp_mem_size(3, max_resident));
  assert_non_null(fx->mem);
  assert_int_equal(
      zp__cp_init(&fx->cp, fx->mem, sizes, 3, budget, max_resident), 0);
  /* These tests put buffers they never got: with no demand seen, decay
   * would release every one of them. A peak far above any budget keeps
   * decay out of the rules under test; the decay tests reset it. */
  fx->cp.demand_peak = (size_t)1 << 40;
}

static void check(const zp__clockpro *cp) {
  const char *why = zp__cp_check(cp);
  if (why)
    fail_msg("invariant: %s", why);
}

/* A get served from an idle buffer of cls and its put, releasing what the
 * policy asks; returns the number of releases. No full check: decay tests
 * run it hundreds of thousands of times. */
static int reuse(zp__clockpro *cp, unsigned cls) {
  int n = 0;
  zp__cp_hit(cp, cls);
  assert_true(zp__cp_put(cp, cls));
  while (zp__cp_victim(cp) >= 0)
    n++;
  return n;
}

/* Puts one buffer of cls and releases what the policy asks; returns the
 * number of releases and stores the first victim's class in *first. */
static int put(zp__clockpro *cp, unsigned cls, int *first) {
  int n = 0, v;
  assert_true(zp__cp_put(cp, cls));
  while ((v = zp__cp_victim(cp)) >= 0) {
    if (n == 0 && first)
      *first = v;
    n++;
  }
  check(cp);
  return n;
}

static void test_init_rejects_bad_arguments(void **state) {
  (void)state;
  zp__clockpro cp;
  char mem[256];
  assert_int_equal(zp__cp_init(&cp, mem, sizes, 0, 4096, 4), -1);
  assert_int_equal(zp__cp_init(&cp, mem, sizes, 3, 0, 4), -1);
  assert_int_equal(zp__cp_init(&cp, mem, sizes, 3, 4096, 0), -1);
  assert_int_equal(zp__cp_init(&cp, NULL, sizes, 3, 4096, 4), -1);
}

/* New buffers enter cold, in their test period, at the head (just behind
 * the hot hand); under budget nothing is released. */
static void test_new_entries_cold_in_test(void **state) {
  (void)state;
  fixture fx;
  fx_init(&fx, 4 * 4096, 16);
  zp__clockpro *cp = &fx.cp;
  for (int i = 0; i < 4; i++)
    assert_int_equal(put(cp, 0, NULL), 0);
  assert_int_equal(cp->ncold, 4);
  assert_int_equal(cp->nhot, 0);
  assert_int_equal(zp__cp_resident_bytes(cp), 4 * 4096);
  /* Each one is cold and in test; the newest sits just behind the hot
   * hand, the oldest under it. */
  uint32_t h = cp->hand_hot;
  uint32_t newest = cp->res_head[0];
  assert_int_equal(cp->e[h].prev, newest);
  for (uint32_t i = h, n = 0; n < 4; i = cp->e[i].next, n++)
    assert_int_equal(cp->e[i].flags,
                     ZP__CP_USED | ZP__CP_RESIDENT | ZP__CP_TEST);
  free(fx.mem);
}

/* Over budget, the cold hand evicts the oldest unreferenced cold entry; an
 * entry evicted in its test period stays as a test entry of its class. */
static void test_cold_hand_evicts_into_test(void **state) {
  (void)state;
  fixture fx;
  fx_init(&fx, 3 * 4096, 16);
  zp__clockpro *cp = &fx.cp;
  int first = -1;
  put(cp, 0, NULL);                        /* A, 4 KiB */
  put(cp, 1, NULL);                        /* B, 8 KiB: 12 KiB, full */
  assert_int_equal(put(cp, 0, &first), 1); /* C: the oldest, A, goes */
  assert_int_equal(first, 0);
  assert_int_equal(cp->ntest, 1);
  assert_true(cp->test_head[0] != ZP__CP_NIL);
  assert_int_equal(cp->res_count[0], 1);
  assert_int_equal(cp->res_count[1], 1);
  /* A miss of class 0 now is a refault: the cold target grows by 4 KiB and
   * the buffer comes back hot. */
  size_t before = cp->cold_target;
  assert_true(zp__cp_miss(cp, 0));
  assert_int_equal(cp->cold_target, before + 4096);
  assert_int_equal(cp->ntest, 0);
  assert_int_equal(put(cp, 0, &first), 1);
  assert_int_equal(first, 1); /* the cold hand reaches B before C */
  assert_int_equal(cp->nhot, 1);
  assert_int_equal(cp->res_count[0], 2);
  /* A miss of a class with no test entry is not a refault. */
  assert_false(zp__cp_miss(cp, 2));
  free(fx.mem);
}

/* A hit takes the class's most recent entry out of the clock; its put
 * brings it back referenced; the cold hand then promotes it (referenced
 * within its test period) and moves it to the head. */
static void test_reference_promotes_in_test(void **state) {
  (void)state;
  fixture fx;
  fx_init(&fx, 3 * 4096, 16);
  zp__clockpro *cp = &fx.cp;
  put(cp, 0, NULL); /* A */
  put(cp, 1, NULL); /* B: 12 KiB, full */
  zp__cp_hit(cp, 0);
  check(cp);
  assert_int_equal(cp->res_count[0], 0);
  assert_int_equal(cp->out_test[0], 1);
  put(cp, 0, NULL); /* A again, referenced, at the head */
  uint32_t a = cp->res_head[0];
  assert_int_equal(cp->e[a].flags,
                   ZP__CP_USED | ZP__CP_RESIDENT | ZP__CP_TEST | ZP__CP_REF);
  /* Another 4 KiB buffer: the cold hand passes B (unreferenced) first. */
  int first = -1;
  assert_int_equal(put(cp, 0, &first), 1);
  assert_int_equal(first, 1);
  assert_int_equal(cp->st.promotions, 0);
  /* Two more: over budget again, the hand reaches A, referenced in its
   * test period: promoted to hot, moved to the head; C is evicted. */
  put(cp, 0, NULL);
  assert_int_equal(put(cp, 0, &first), 1);
  assert_int_equal(first, 0);
  assert_int_equal(cp->st.promotions, 1);
  assert_true(cp->e[a].flags & ZP__CP_HOT);
  assert_false(cp->e[a].flags & (ZP__CP_REF | ZP__CP_TEST));
  assert_int_equal(cp->nhot, 1);
  assert_int_equal(cp->e[cp->hand_hot].prev == a ||
                       cp->e[cp->e[cp->hand_hot].prev].prev == a,
                   1);
  free(fx.mem);
}

/* The hot hand demotes an unreferenced hot entry, clears a referenced
 * one's bit, and ends the test periods it passes; a test period ending
 * unreferenced shrinks the cold target by the entry's size. */
static void test_hot_hand_demotes_and_ends_tests(void **state) {
  (void)state;
  fixture fx;
  size_t budget = 15 * 4096; /* under 16 pages: no size credit */
  fx_init(&fx, budget, 64);
  zp__clockpro *cp = &fx.cp;
  cp->out_fault[0] = 1;
  put(cp, 0, NULL); /* H: hot (a refault), unreferenced */
  uint32_t h = cp->res_head[0];
  cp->out_hot[0] = 1;
  put(cp, 0, NULL); /* K: hot, referenced (back from a hit) */
  uint32_t k = cp->res_head[0];
  put(cp, 1, NULL); /* T: cold, in test */
  uint32_t t = cp->res_head[1];
  assert_int_equal(cp->hand_hot, h);
  assert_int_equal(cp->nhot, 2);
  /* Room for one 4 KiB hot entry only; one more hot put runs the hand. */
  cp->cold_target = budget - 4096;
  cp->out_fault[0] = 1;
  put(cp, 0, NULL); /* H2, hot, inserted behind the hand: after T */
  uint32_t h2 = cp->res_head[0];
  check(cp);
  assert_false(cp->e[h].flags & ZP__CP_HOT); /* demoted */
  assert_int_equal(cp->e[k].flags & (ZP__CP_HOT | ZP__CP_REF), ZP__CP_HOT);
  assert_false(cp->e[t].flags & ZP__CP_TEST); /* test ended */
  assert_false(cp->e[h2].flags & ZP__CP_HOT); /* demoted */
  assert_int_equal(cp->st.demotions, 2);
  assert_int_equal(cp->st.test_expired, 1);
  assert_int_equal(cp->cold_target, budget - 4096 - 8192);
  assert_int_equal(cp->nhot, 1);
  assert_int_equal(cp->hot_bytes, 4096);
  free(fx.mem);
}

/* With no cold entry left, the cold hand has the hot hand demote one first;
 * with every resident class too large for the budget, a put is refused. */
static void test_all_hot_and_reject(void **state) {
  (void)state;
  fixture fx;
  fx_init(&fx, 2 * 4096, 16);
  zp__clockpro *cp = &fx.cp;
  cp->out_fault[0] = 3;
  put(cp, 0, NULL);
  put(cp, 0, NULL);
  put(cp, 0, NULL); /* three hot 4 KiB: one must go */
  assert_int_equal(zp__cp_resident_bytes(cp), 2 * 4096);
  assert_int_equal(cp->st.evictions, 1);
  assert_false(zp__cp_put(cp, 2)); /* 64 KiB > 8 KiB budget */
  assert_int_equal(cp->st.rejects, 1);
  check(cp);
  zp__cp_drop_resident(cp);
  check(cp);
  assert_int_equal(zp__cp_resident_bytes(cp), 0);
  free(fx.mem);
}

/* The count limit bounds resident entries like the byte budget. */
static void test_count_limit(void **state) {
  (void)state;
  fixture fx;
  fx_init(&fx, 1 << 20, 4);
  zp__clockpro *cp = &fx.cp;
  for (int i = 0; i < 10; i++)
    put(cp, (unsigned)(i % 2), NULL);
  assert_int_equal(cp->nhot + cp->ncold, 4);
  assert_true(cp->ntest <= 4);
  free(fx.mem);
}

/* Size credit at the cold hand: an unreferenced 4 KiB entry with credit is
 * passed (one credit spent) and the 64 KiB entry after it, with none, is
 * evicted; without the rule the oldest entry, the small one, would go. */
static void test_size_credit_spares_small_cold(void **state) {
  (void)state;
  fixture fx;
  size_t budget = 64 * 4096; /* 4 KiB: 4 passes; 64 KiB: none */
  fx_init(&fx, budget, 64);
  zp__clockpro *cp = &fx.cp;
  put(cp, 0, NULL); /* A, 4 KiB, the oldest: under the cold hand */
  uint32_t a = cp->res_head[0];
  assert_int_equal(cp->e[a].credit, 4);
  for (int i = 0; i < 3; i++)
    assert_int_equal(put(cp, 2, NULL), 0); /* 196 KiB */
  int first = -1;
  assert_int_equal(put(cp, 2, &first), 1); /* 260 KiB: one must go */
  assert_int_equal(first, 2);
  assert_int_equal(cp->res_count[0], 1);
  assert_int_equal(cp->e[a].credit, 3);
  assert_int_equal(cp->st.credit_passes, 1);
  free(fx.mem);
}

/* Size credit at the hot hand: an unreferenced hot 4 KiB entry with credit
 * is passed, the hot 64 KiB entry after it is demoted; without the rule
 * the small one would be demoted first and the large one too. */
static void test_size_credit_spares_small_hot(void **state) {
  (void)state;
  fixture fx;
  size_t budget = 64 * 4096;
  fx_init(&fx, budget, 64);
  zp__clockpro *cp = &fx.cp;
  cp->out_fault[0] = 1;
  put(cp, 0, NULL); /* H: hot 4 KiB, credit 4, under the hot hand */
  uint32_t h = cp->res_head[0];
  cp->out_fault[2] = 1;
  put(cp, 2, NULL); /* G: hot 64 KiB, credit 0 */
  uint32_t g = cp->res_head[2];
  cp->cold_target = budget - 65536; /* room for 64 KiB of hot entries */
  cp->out_fault[0] = 1;
  put(cp, 0, NULL); /* 72 KiB hot: the hot hand must demote */
  assert_true(cp->e[h].flags & ZP__CP_HOT);
  assert_int_equal(cp->e[h].credit, 3);
  assert_false(cp->e[g].flags & ZP__CP_HOT);
  assert_int_equal(cp->st.demotions, 1);
  assert_int_equal(cp->hot_bytes, 2 * 4096);
  free(fx.mem);
}

/* Credit is granted again when the hot hand clears a reference bit and
 * when it demotes an entry (a fresh start as cold). */
static void test_size_credit_regranted(void **state) {
  (void)state;
  fixture fx;
  size_t budget = 64 * 4096;
  fx_init(&fx, budget, 64);
  zp__clockpro *cp = &fx.cp;
  cp->out_hot[0] = 1;
  put(cp, 0, NULL); /* K: hot, referenced */
  uint32_t k = cp->res_head[0];
  cp->out_fault[0] = 1;
  put(cp, 0, NULL); /* H: hot, unreferenced */
  uint32_t h = cp->res_head[0];
  cp->e[k].credit = 0; /* as if spent */
  cp->e[h].credit = 0;
  cp->cold_target = budget - 2 * 4096; /* room for two hot 4 KiB */
  cp->out_fault[0] = 1;
  put(cp, 0, NULL); /* three hot: K's bit cleared, H demoted */
  check(cp);
  assert_int_equal(cp->e[k].flags & (ZP__CP_HOT | ZP__CP_REF), ZP__CP_HOT);
  assert_int_equal(cp->e[k].credit, 4);
  assert_false(cp->e[h].flags & ZP__CP_HOT);
  assert_int_equal(cp->e[h].credit, 4);
  free(fx.mem);
}

/* Decay: under the budget, once idle bytes exceed what recent demand can
 * use and a whole window has passed, each put releases at most two
 * entries, until idle bytes are back within the target; while they are
 * within it, nothing is released. */
static void test_decay_follows_demand(void **state) {
  (void)state;
  fixture fx;
  size_t budget = 256 * 4096;
  fx_init(&fx, budget, 256);
  zp__clockpro *cp = &fx.cp;
  cp->demand_peak = 0;
  /* A burst: 40 buffers out, then all back. Recent demand can use all of
   * them: nothing is released. */
  for (int i = 0; i < 40; i++)
    assert_false(zp__cp_miss(cp, 0));
  assert_int_equal(cp->out_bytes, 40 * 4096);
  assert_int_equal(cp->demand_peak, 40 * 4096);
  for (int i = 0; i < 40; i++)
    assert_int_equal(put(cp, 0, NULL), 0);
  assert_int_equal(zp__cp_resident_bytes(cp), 40 * 4096);
  assert_int_equal(cp->st.decay_evictions, 0);
  /* Then one buffer at a time: the peak decays toward it, the target
   * falls below the idle bytes and, from the end of the first window on,
   * puts start to release, two at most. */
  size_t steps = 0;
  while (cp->st.decay_evictions == 0 && steps < 1000000) {
    assert_true(reuse(cp, 0) <= (int)ZP__CP_DECAY_PER_PUT);
    steps++;
  }
  check(cp);
  assert_true(cp->st.decay_evictions > 0);
  /* Not before a whole window (80 operations before the loop, two per
   * step). */
  assert_true(2 * steps + 80 >= ZP__CP_DECAY_WINDOW);
  for (size_t i = 0; i < 300000; i++) {
    assert_true(reuse(cp, 0) <= (int)ZP__CP_DECAY_PER_PUT);
  }
  check(cp);
  assert_true(zp__cp_resident_bytes(cp) <= zp__cp_idle_target(cp) + 4096);
  assert_true(zp__cp_resident_bytes(cp) < 20 * 4096);
  free(fx.mem);
}

/* Operations the instance did not see (hand-offs between threads), told
 * in bulk: the same burst as above, then only ticks of 2048 operations.
 * Nothing goes before a whole window has passed; after 400,000
 * operations idle bytes are down as far as after as many seen ones (the
 * test above); the invariants hold after every tick and its releases. */
static void test_tick_decays_like_operations(void **state) {
  (void)state;
  fixture fx;
  fx_init(&fx, 256 * 4096, 256);
  zp__clockpro *cp = &fx.cp;
  cp->demand_peak = 0;
  for (int i = 0; i < 40; i++)
    assert_false(zp__cp_miss(cp, 0));
  for (int i = 0; i < 40; i++)
    assert_int_equal(put(cp, 0, NULL), 0);
  /* The buffer the workload keeps cycling stays out. */
  zp__cp_hit(cp, 0);
  zp__cp_tick(cp, 0);
  assert_int_equal(cp->decay_quota, 0);
  size_t ops = 0, released = 0;
  while (ops < 400000) {
    zp__cp_tick(cp, 2048);
    ops += 2048;
    while (zp__cp_victim(cp) >= 0)
      released++;
    check(cp);
    if (ops + 81 < ZP__CP_DECAY_WINDOW)
      assert_int_equal(released, 0);
  }
  assert_int_equal(cp->st.decay_evictions, released);
  assert_true(zp__cp_resident_bytes(cp) <= zp__cp_idle_target(cp) + 4096);
  assert_true(zp__cp_resident_bytes(cp) < 20 * 4096);
  free(fx.mem);
}

/* One tick of n operations decays the demand peak as n ticks of one do
 * (the per-operation rule: each step 1/2^17 of the remaining gap), also
 * over a whole window, where a single linear step would close the gap
 * that n steps only shrink to 1/e. And a tick spanning more windows than
 * a count has bits empties the out_* counts (no shift past their width). */
static void test_tick_decay_geometric(void **state) {
  (void)state;
  fixture a, b;
  fx_init(&a, 256 * 4096, 256);
  fx_init(&b, 256 * 4096, 256);
  a.cp.demand_peak = b.cp.demand_peak = (size_t)1 << 30;
  for (size_t i = 0; i < ZP__CP_DECAY_WINDOW; i++)
    zp__cp_tick(&a.cp, 1);
  zp__cp_tick(&b.cp, ZP__CP_DECAY_WINDOW);
  size_t pa = a.cp.demand_peak, pb = b.cp.demand_peak;
  assert_true(pa > ((size_t)1 << 30) / 3); /* about 1/e of the gap left */
  print_message("peak after a window: per operation %zu, one tick %zu\n", pa,
                pb);
  assert_true(pb > pa - pa / 100 && pb < pa + pa / 100); /* within 1 % */
  b.cp.out_hot[0] = b.cp.out_cold[1] = UINT32_MAX;
  zp__cp_tick(&b.cp, (size_t)40 * ZP__CP_DECAY_WINDOW);
  assert_int_equal(b.cp.out_hot[0], 0);
  assert_int_equal(b.cp.out_cold[1], 0);
  while (zp__cp_victim(&a.cp) >= 0 || zp__cp_victim(&b.cp) >= 0) {
  }
  check(&a.cp);
  check(&b.cp);
  free(a.mem);
  free(b.mem);
}

/* The window rule: idle bytes above the idle target go only as far as the
 * low water of the last whole window allows. Nothing is released while
 * the last window's low water is 0, however far above the target; after a
 * window whose low water was 10 buffers, exactly those, then nothing
 * until the next window ends. Fails
 * without the window (the demand rule alone releases on the first put). */
static void test_decay_bounded_by_window_low_water(void **state) {
  (void)state;
  fixture fx;
  fx_init(&fx, 256 * 4096, 256);
  zp__clockpro *cp = &fx.cp;
  cp->demand_peak = 0; /* no demand seen: the idle target is 0 */
  for (int i = 0; i < 40; i++)
    assert_int_equal(put(cp, 0, NULL), 0);
  assert_true(zp__cp_resident_bytes(cp) > zp__cp_idle_target(cp));
  /* The first window (its low water is 0: it began empty): 4 KiB of
   * demand, one at a time; nothing is released. */
  while (cp->decay_ops != 0) {
    zp__cp_hit(cp, 0);
    assert_int_equal(put(cp, 0, NULL), 0);
  }
  assert_int_equal(cp->decay_debt, 0);
  /* Once in the second window, 30 buffers go out and come back: that
   * window's low water is 10 buffers. */
  for (int i = 0; i < 30; i++)
    zp__cp_hit(cp, 0);
  for (int i = 0; i < 30; i++)
    assert_int_equal(put(cp, 0, NULL), 0);
  /* The rest of the window: 4 KiB of demand, one at a time. */
  while (cp->decay_ops + 2 < ZP__CP_DECAY_WINDOW) {
    zp__cp_hit(cp, 0);
    assert_int_equal(put(cp, 0, NULL), 0);
  }
  assert_int_equal(cp->st.decay_evictions, 0);
  assert_int_equal(zp__cp_resident_bytes(cp), 40 * 4096);
  /* The window ends: now the demand peak says 2 buffers, the low water
   * says at most 10 may go. */
  for (int i = 0; i < 100; i++) {
    zp__cp_hit(cp, 0);
    int n = put(cp, 0, NULL);
    assert_true(n <= (int)ZP__CP_DECAY_PER_PUT);
  }
  assert_int_equal(cp->st.decay_evictions, 10);
  assert_int_equal(zp__cp_resident_bytes(cp), 30 * 4096);
  assert_int_equal(cp->decay_debt, 0);
  assert_true(zp__cp_resident_bytes(cp) > zp__cp_idle_target(cp));
  free(fx.mem);
}

/* Buffers that never come back (kept in a thread cache, put into another
 * shard, freed to the OS) leave their status counts behind; they halve at
 * the end of every window, so a later put of the class is no longer
 * taken for the return of a long-gone hit. Fails without the halving. */
static void test_out_counts_decay(void **state) {
  (void)state;
  fixture fx;
  fx_init(&fx, 256 * 4096, 256);
  zp__clockpro *cp = &fx.cp;
  for (int i = 0; i < 8; i++)
    assert_int_equal(put(cp, 0, NULL), 0);
  for (int i = 0; i < 8; i++)
    zp__cp_hit(cp, 0); /* taken, never put back */
  assert_int_equal(cp->out_test[0], 8);
  assert_int_equal(put(cp, 1, NULL), 0);
  for (unsigned expect = 4;; expect /= 2) {
    /* Class 1 alone keeps the policy busy for a window. */
    size_t left = ZP__CP_DECAY_WINDOW - cp->decay_ops;
    for (size_t i = 0; i < left; i += 2) {
      zp__cp_hit(cp, 1);
      assert_true(zp__cp_put(cp, 1));
      assert_int_equal(zp__cp_victim(cp), -1);
    }
    assert_int_equal(cp->out_test[0], expect);
    check(cp);
    if (!expect)
      break;
  }
  /* A put of class 0 now is a buffer the policy has not seen: cold, in
   * test, not referenced (the status a hit's return would bring is gone). */
  assert_int_equal(put(cp, 0, NULL), 0);
  unsigned f = cp->e[cp->res_head[0]].flags;
  assert_true(f & ZP__CP_TEST);
  assert_false(f & ZP__CP_REF);
  free(fx.mem);
}

/* Random traces: the caller's per-class idle counts always equal the
 * policy's resident entries, resident bytes stay within budget after each
 * put, test entries stay bounded, every invariant of zp__cp_check holds. */
/* An instance touches its entries only as it uses them: init writes none,
 * and memory never needed keeps whatever it held (a shard sized for 2^20
 * buffers must not commit 32 MiB up front). Garbage in the memory does not
 * matter either. */
static void test_entries_touched_lazily(void **state) {
  enum { MAX = 1000 };
  size_t bytes = zp__cp_mem_size(3, MAX);
  unsigned char *mem = malloc(bytes);
  zp__clockpro cp;
  int i;
  (void)state;
  assert_non_null(mem);
  memset(mem, 0xA5, bytes);
  assert_int_equal(zp__cp_init(&cp, mem, sizes, 3, 64 * 4096, MAX), 0);
  cp.demand_peak = (size_t)1 << 40;
  for (i = 0; i < 20; i++)
    (void)put(&cp, (unsigned)i % 2, NULL);
  /* 20 entries used; the last entry's bytes were never written. */
  assert_true(cp.fresh <= 21);
  for (size_t b = 0; b < sizeof(zp__cp_entry); b++)
    assert_int_equal(((unsigned char *)&cp.e[cp.cap - 1])[b], 0xA5);
  for (i = 0; i < 10; i++)
    zp__cp_hit(&cp, (unsigned)i % 2);
  for (i = 0; i < 10; i++)
    (void)put(&cp, (unsigned)i % 2, NULL);
  check(&cp);
  free(mem);
}

static void test_property_random_traces(void **state) {
  (void)state;
  size_t rounds = zp_test_iters(40, 4), ops = zp_test_iters(20000, 2000);
  uint64_t x = 88172645463325252u;
  for (size_t r = 0; r < rounds; r++) {
    size_t budget = 4096 * (1 + (size_t)(r * 7 % 64));
    size_t maxres = 2 + r % 40;
    fixture fx;
    fx_init(&fx, budget, maxres);
    zp__clockpro *cp = &fx.cp;
    cp->demand_peak = 0; /* decay on, as in use */
    uint32_t idle[3] = {0, 0, 0}, out[3] = {0, 0, 0};
    for (size_t i = 0; i < ops; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      unsigned cls = (unsigned)(x % 3);
      bool do_get = out[cls] == 0 || ((x >> 8) & 3) < 2;
      if ((x >> 20) % 5000 == 0) {
        zp__cp_drop_resident(cp); /* a trim */
        idle[0] = idle[1] = idle[2] = 0;
      } else if (do_get) {
        if (idle[cls]) {
          zp__cp_hit(cp, cls);
          idle[cls]--;
        } else {
          zp__cp_miss(cp, cls);
        }
        out[cls]++;
      } else {
        out[cls]--;
        if (zp__cp_put(cp, cls)) {
          idle[cls]++;
          int v;
          while ((v = zp__cp_victim(cp)) >= 0) {
            assert_true(v < 3);
            assert_true(idle[v] > 0);
            idle[v]--;
          }
        }
        assert_true(zp__cp_resident_bytes(cp) <= budget);
        assert_true(cp->nhot + cp->ncold <= maxres);
        assert_true(cp->ntest <= maxres + 1);
        assert_true(cp->test_bytes <= budget + 65536);
      }
      for (unsigned c = 0; c < 3; c++)
        assert_int_equal(idle[c], cp->res_count[c]);
      if (i % 97 == 0 || zp_test_quick())
        check(cp);
    }
    check(cp);
    /* O(1) amortised: the hands moved a bounded number of times. */
    assert_true(cp->st.hand_steps <= 64 * ops);
    free(fx.mem);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_init_rejects_bad_arguments),
      cmocka_unit_test(test_new_entries_cold_in_test),
      cmocka_unit_test(test_cold_hand_evicts_into_test),
      cmocka_unit_test(test_reference_promotes_in_test),
      cmocka_unit_test(test_hot_hand_demotes_and_ends_tests),
      cmocka_unit_test(test_all_hot_and_reject),
      cmocka_unit_test(test_count_limit),
      cmocka_unit_test(test_size_credit_spares_small_cold),
      cmocka_unit_test(test_size_credit_spares_small_hot),
      cmocka_unit_test(test_size_credit_regranted),
      cmocka_unit_test(test_decay_follows_demand),
      cmocka_unit_test(test_tick_decays_like_operations),
      cmocka_unit_test(test_tick_decay_geometric),
      cmocka_unit_test(test_decay_bounded_by_window_low_water),
      cmocka_unit_test(test_out_counts_decay),
      cmocka_unit_test(test_entries_touched_lazily),
      cmocka_unit_test(test_property_random_traces),
  };
  zp_test_apply_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
