/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * CLOCK-Pro over a byte budget (see clockpro.h for the mapping onto a pool
 * and docs/clockpro.md for the argument).
 *
 * One circular list holds hot and cold resident entries and non-resident
 * test entries; the hands move along `next`. New entries go to the head:
 * just behind the hot hand, the place every hand reaches last.
 *
 *   cold hand  at a cold resident entry: referenced and in its test period:
 *              promoted to hot, moved to the head; referenced, not in test:
 *              a new test period, moved to the head; not referenced:
 *              evicted (kept as a test entry while its test period lasts).
 *   hot hand   at a hot entry: referenced: the bit is cleared; not: demoted
 *              to cold. At a cold entry in test: the test period ends. At a
 *              test entry: removed. A test period that ends without a
 *              reference shrinks the cold target by the entry's size.
 *   test hand  ends test periods (removing test entries) when test entries
 *              exceed the resident limits (count or bytes).
 *
 * The cold target m_c is in bytes: a refault grows it by the class size,
 * an expired test period shrinks it by the entry's size; hot bytes are kept
 * at most budget - m_c by running the hot hand.
 *
 * Size credit. Under a byte budget a size-blind clock keeps one 1 MiB
 * buffer as readily as 256 buffers of 4 KiB that serve 256 times the gets
 * for the same bytes. So an unreferenced entry is not evicted (cold hand)
 * or demoted (hot hand) the first time a hand finds it: it first spends
 * its credit, one pass each, and credit is budget / (16 * size), at most
 * 64. Small entries thus survive many turns, entries of a sixteenth of the
 * budget or more behave as in plain CLOCK-Pro. Credit is granted when an
 * entry is put (every reference is a put), when the hot hand clears its
 * reference bit and when it is demoted (a fresh start as a cold entry):
 * every grant follows an operation, so the passes stay O(1) amortised.
 *
 * Decay. Under the budget the hands would never move, and idle memory a
 * burst left behind would stay forever (as with LIFO). Two signals, both
 * O(1) per operation, decide what may go:
 *   demand     bytes out rise on hits and misses and fall on puts; their
 *              peak jumps up with them and decays back by 1/2^17 of the gap
 *              per operation. Recent demand can use at most peak - out idle
 *              bytes; with the peak again as slack that is the idle target.
 *   low water  the fewest resident bytes at the start of any operation of
 *              a window of 2^17 operations: capacity no operation of the
 *              window touched. At the window's end it becomes the debt.
 * While resident bytes exceed the idle target and debt is left, each put
 * may have the cold hand release two more entries (each pays its size off
 * the debt): the same hand, the same order, so it releases what CLOCK-Pro
 * considers coldest. The demand rule alone is summed over classes (one
 * class rising while another falls); the window alone misses cycles longer
 * than a window; each is wrong in different traces, and releasing only what
 * both agree on is what held the simulator's bar at twice the speed.
 */
#include "clockpro.h"

#include <string.h>

#define NIL ZP__CP_NIL

static size_t esize(const zp__clockpro *cp, uint32_t i) {
  return cp->class_size[cp->e[i].cls];
}

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Hand passes an unreferenced entry of size s survives (see the top). */
static unsigned size_credit(const zp__clockpro *cp, size_t s) {
  size_t passes = cp->budget / ZP__CP_CREDIT_DIV / s;
  return passes < ZP__CP_CREDIT_MAX ? (unsigned)passes : ZP__CP_CREDIT_MAX;
}

size_t zp__cp_mem_size(unsigned nclasses, size_t max_resident) {
  size_t cap = 2 * max_resident + 2;
  return align8(cap * sizeof(zp__cp_entry)) +
         align8((size_t)nclasses * 7 * sizeof(uint32_t));
}

int zp__cp_init(zp__clockpro *cp, void *mem, const size_t *class_size,
                unsigned nclasses, size_t budget, size_t max_resident) {
  if (!cp || !mem || !class_size || nclasses == 0 ||
      nclasses > ZP__CP_MAX_CLASSES || max_resident == 0 ||
      max_resident > ZP__CP_MAX_ENTRIES / 2 - 1 || budget == 0)
    return -1;
  memset(cp, 0, sizeof *cp);
  cp->cap = (uint32_t)(2 * max_resident + 2);
  cp->e = (zp__cp_entry *)mem;
  uint32_t *w =
      (uint32_t *)((char *)mem + align8(cp->cap * sizeof(zp__cp_entry)));
  cp->res_head = w;
  cp->test_head = w + nclasses;
  cp->res_count = w + 2 * nclasses;
  cp->out_hot = w + 3 * nclasses;
  cp->out_test = w + 4 * nclasses;
  cp->out_cold = w + 5 * nclasses;
  cp->out_fault = w + 6 * nclasses;
  for (unsigned c = 0; c < nclasses; c++) {
    cp->res_head[c] = cp->test_head[c] = NIL;
    cp->res_count[c] = cp->out_hot[c] = cp->out_test[c] = 0;
    cp->out_cold[c] = cp->out_fault[c] = 0;
  }
  cp->free_list = NIL;
  cp->fresh = 0;
  cp->nclasses = nclasses;
  cp->class_size = class_size;
  cp->budget = budget;
  cp->max_resident = max_resident;
  cp->cold_min = budget / 64 ? budget / 64 : 1;
  cp->cold_target = cp->cold_min;
  cp->hand_hot = cp->hand_cold = cp->hand_test = NIL;
  cp->low_water = SIZE_MAX;
  return 0;
}

/* ---- entries, the clock and the class lists ------------------------------ */

static uint32_t entry_alloc(zp__clockpro *cp, unsigned cls, unsigned flags) {
  /* A freed entry, else a fresh one: never out of both, cap covers every
   * limit + 1. */
  uint32_t i = cp->free_list;
  if (i != NIL) {
    cp->free_list = cp->e[i].next;
  } else {
    i = cp->fresh++;
    memset(&cp->e[i], 0, sizeof cp->e[i]);
  }
  cp->e[i].cls = cls;
  cp->e[i].flags = flags | ZP__CP_USED;
  cp->e[i].credit = 0;
  return i;
}

static void entry_free(zp__clockpro *cp, uint32_t i) {
  cp->e[i].flags = 0;
  cp->e[i].next = cp->free_list;
  cp->free_list = i;
}

/* Inserts i at the head: just behind the hot hand. */
static void clock_insert_head(zp__clockpro *cp, uint32_t i) {
  uint32_t h = cp->hand_hot;
  if (h == NIL) {
    cp->e[i].prev = cp->e[i].next = i;
    cp->hand_hot = cp->hand_cold = cp->hand_test = i;
    return;
  }
  uint32_t p = cp->e[h].prev;
  cp->e[i].prev = p;
  cp->e[i].next = h;
  cp->e[p].next = i;
  cp->e[h].prev = i;
}

/* Unlinks i; a hand on i moves on to the next entry. */
static void clock_unlink(zp__clockpro *cp, uint32_t i) {
  uint32_t n = cp->e[i].next, p = cp->e[i].prev;
  if (n == i) {
    cp->hand_hot = cp->hand_cold = cp->hand_test = NIL;
    return;
  }
  cp->e[p].next = n;
  cp->e[n].prev = p;
  if (cp->hand_hot == i)
    cp->hand_hot = n;
  if (cp->hand_cold == i)
    cp->hand_cold = n;
  if (cp->hand_test == i)
    cp->hand_test = n;
}

static void move_to_head(zp__clockpro *cp, uint32_t i) {
  clock_unlink(cp, i);
  clock_insert_head(cp, i);
}

static void list_push(zp__clockpro *cp, uint32_t *head, uint32_t i) {
  cp->e[i].cprev = NIL;
  cp->e[i].cnext = *head;
  if (*head != NIL)
    cp->e[*head].cprev = i;
  *head = i;
}

static void list_remove(zp__clockpro *cp, uint32_t *head, uint32_t i) {
  uint32_t n = cp->e[i].cnext, p = cp->e[i].cprev;
  if (p != NIL)
    cp->e[p].cnext = n;
  else
    *head = n;
  if (n != NIL)
    cp->e[n].cprev = p;
}

static void cold_target_grow(zp__clockpro *cp, size_t s) {
  cp->cold_target =
      s > cp->budget - cp->cold_target ? cp->budget : cp->cold_target + s;
}

static void cold_target_shrink(zp__clockpro *cp, size_t s) {
  cp->cold_target =
      cp->cold_target - cp->cold_min > s ? cp->cold_target - s : cp->cold_min;
}

/* Removes test entry i from everything. */
static void test_remove(zp__clockpro *cp, uint32_t i) {
  size_t s = esize(cp, i);
  list_remove(cp, &cp->test_head[cp->e[i].cls], i);
  clock_unlink(cp, i);
  entry_free(cp, i);
  cp->ntest--;
  cp->test_bytes -= s;
}

/* A test period ends without a reference. */
static void test_expire(zp__clockpro *cp, size_t s) {
  cold_target_shrink(cp, s);
  cp->st.test_expired++;
}

/* ---- the hands ----------------------------------------------------------- */

/* One step of the hot hand. True when it demoted a hot entry. */
static bool hot_step(zp__clockpro *cp) {
  uint32_t i = cp->hand_hot;
  unsigned f = cp->e[i].flags;
  size_t s = esize(cp, i);
  cp->st.hand_steps++;
  if (!(f & ZP__CP_RESIDENT)) {
    test_remove(cp, i); /* the hand moves on */
    test_expire(cp, s);
    return false;
  }
  cp->hand_hot = cp->e[i].next;
  if (f & ZP__CP_HOT) {
    if (f & ZP__CP_REF) {
      cp->e[i].flags = f & ~(unsigned)ZP__CP_REF;
      cp->e[i].credit = size_credit(cp, s);
      return false;
    }
    if (cp->e[i].credit) {
      cp->e[i].credit--;
      cp->st.credit_passes++;
      return false;
    }
    cp->e[i].flags = f & ~(unsigned)ZP__CP_HOT;
    cp->e[i].credit = size_credit(cp, s); /* a fresh start as cold */
    cp->nhot--;
    cp->hot_bytes -= s;
    cp->ncold++;
    cp->cold_bytes += s;
    cp->st.demotions++;
    return true;
  }
  if (f & ZP__CP_TEST) {
    cp->e[i].flags = f & ~(unsigned)ZP__CP_TEST;
    if (!(f & ZP__CP_REF))
      test_expire(cp, s);
  }
  return false;
}

/* Runs the hot hand until it demoted one hot entry (at most
 * ZP__CP_CREDIT_MAX + 2 turns: one clears the reference bits, the others
 * spend credit). */
static void demote_one(zp__clockpro *cp) {
  while (cp->nhot && !hot_step(cp)) {
  }
}

/* Keeps hot bytes within budget - cold target. */
static void enforce_hot(zp__clockpro *cp) {
  while (cp->nhot && cp->hot_bytes > cp->budget - cp->cold_target)
    demote_one(cp);
}

/* One step of the test hand. */
static void test_step(zp__clockpro *cp) {
  uint32_t i = cp->hand_test;
  unsigned f = cp->e[i].flags;
  size_t s = esize(cp, i);
  cp->st.hand_steps++;
  if (!(f & ZP__CP_RESIDENT)) {
    test_remove(cp, i);
    test_expire(cp, s);
    return;
  }
  cp->hand_test = cp->e[i].next;
  if (!(f & ZP__CP_HOT) && (f & ZP__CP_TEST)) {
    cp->e[i].flags = f & ~(unsigned)ZP__CP_TEST;
    if (!(f & ZP__CP_REF))
      test_expire(cp, s);
  }
}

/* Runs the cold hand until it evicts one cold entry; returns its class. */
static int cold_evict(zp__clockpro *cp) {
  for (;;) {
    if (cp->ncold == 0) {
      demote_one(cp); /* resident entries exist, so hot ones do */
      continue;
    }
    uint32_t i = cp->hand_cold;
    unsigned f = cp->e[i].flags;
    cp->st.hand_steps++;
    if (!(f & ZP__CP_RESIDENT) || (f & ZP__CP_HOT)) {
      cp->hand_cold = cp->e[i].next;
      continue;
    }
    size_t s = esize(cp, i);
    if (f & ZP__CP_REF) {
      f &= ~(unsigned)ZP__CP_REF;
      if (f & ZP__CP_TEST) { /* re-referenced within its test period */
        cp->e[i].flags = (f & ~(unsigned)ZP__CP_TEST) | ZP__CP_HOT;
        cp->ncold--;
        cp->cold_bytes -= s;
        cp->nhot++;
        cp->hot_bytes += s;
        cp->st.promotions++;
        move_to_head(cp, i);
        enforce_hot(cp);
      } else {
        cp->e[i].flags = f | ZP__CP_TEST;
        move_to_head(cp, i);
      }
      continue;
    }
    if (cp->e[i].credit) { /* unreferenced, but small: not yet */
      cp->e[i].credit--;
      cp->st.credit_passes++;
      cp->hand_cold = cp->e[i].next;
      continue;
    }
    unsigned cls = cp->e[i].cls;
    cp->hand_cold = cp->e[i].next;
    list_remove(cp, &cp->res_head[cls], i);
    cp->res_count[cls]--;
    cp->ncold--;
    cp->cold_bytes -= s;
    if (f & ZP__CP_TEST) { /* stays where it is, without memory */
      cp->e[i].flags = ZP__CP_USED | ZP__CP_TEST;
      list_push(cp, &cp->test_head[cls], i);
      cp->ntest++;
      cp->test_bytes += s;
    } else {
      clock_unlink(cp, i);
      entry_free(cp, i);
    }
    cp->st.evictions++;
    return (int)cls;
  }
}

/* ---- demand, for decay --------------------------------------------------- */

/* At the start of every operation: the window's low water; at a window's
 * end, the debt, and the out_* counts halved (O(classes) once per window:
 * O(1) amortised). */
static void window_note(zp__clockpro *cp) {
  size_t r = zp__cp_resident_bytes(cp);
  if (r < cp->low_water)
    cp->low_water = r;
  if (++cp->decay_ops < ZP__CP_DECAY_WINDOW)
    return;
  cp->decay_debt = cp->low_water; /* replaces what is left of the last */
  cp->decay_ops = 0;
  cp->low_water = SIZE_MAX;
  for (unsigned c = 0; c < cp->nclasses; c++) {
    cp->out_hot[c] /= 2;
    cp->out_test[c] /= 2;
    cp->out_cold[c] /= 2;
    cp->out_fault[c] /= 2;
  }
}

/* After every change of bytes out: the peak follows them up at once and
 * down by 1/2^ZP__CP_DECAY_SHIFT of the gap (at least a byte), so any gap
 * halves within about 2^ZP__CP_DECAY_SHIFT operations. */
static void demand_note(zp__clockpro *cp) {
  window_note(cp);
  if (cp->out_bytes >= cp->demand_peak) {
    cp->demand_peak = cp->out_bytes;
    return;
  }
  /* At least a byte: a gap under 2^SHIFT bytes would never close. */
  size_t step = (cp->demand_peak - cp->out_bytes) >> ZP__CP_DECAY_SHIFT;
  cp->demand_peak -= step ? step : 1;
}

static void demand_out(zp__clockpro *cp, size_t s) {
  cp->out_bytes += s;
  demand_note(cp);
}

/* A put of a buffer this instance may not have seen go out (taken before
 * a drop, or out of another shard): bytes out stop at zero. */
static void demand_back(zp__clockpro *cp, size_t s) {
  cp->out_bytes -= s < cp->out_bytes ? s : cp->out_bytes;
  demand_note(cp);
}

void zp__cp_tick(zp__clockpro *cp, size_t ops) {
  if (!ops)
    return;
  /* The window: its low water, then as many window ends as ops spans (the
   * out_* counts halve once per window, 64 halvings empty any count). */
  size_t r = zp__cp_resident_bytes(cp);
  if (r < cp->low_water)
    cp->low_water = r;
  size_t total = cp->decay_ops + ops;
  if (total >= ZP__CP_DECAY_WINDOW) {
    size_t windows = total / ZP__CP_DECAY_WINDOW;
    cp->decay_debt = cp->low_water;
    cp->low_water = r; /* every later operation starts from r too */
    for (unsigned c = 0; c < cp->nclasses; c++) {
      /* Halved once per window; 32 halvings empty a 32-bit count. */
      unsigned shift = windows < 32 ? (unsigned)windows : 0;
      cp->out_hot[c] = shift ? cp->out_hot[c] >> shift : 0;
      cp->out_test[c] = shift ? cp->out_test[c] >> shift : 0;
      cp->out_cold[c] = shift ? cp->out_cold[c] >> shift : 0;
      cp->out_fault[c] = shift ? cp->out_fault[c] >> shift : 0;
    }
  }
  cp->decay_ops = total % ZP__CP_DECAY_WINDOW;
  /* The peak: ops steps of 1/2^SHIFT of the gap (at least a byte each),
   * taken in chunks of 2^10 with the gap recomputed between them, so the
   * decay stays geometric as per operation (over a whole window the peak
   * ends within 0.5 % of the per-operation one; one linear step would
   * close the gap that those steps shrink to 1/e). At most a few thousand
   * chunks even for
   * billions of operations: the gap shrinks by 1/128 per chunk, and below
   * 2^SHIFT bytes it closes by 2^10 bytes per chunk. */
  for (size_t left = ops; left && cp->demand_peak > cp->out_bytes;) {
    size_t chunk = left < 1024 ? left : 1024;
    size_t gap = cp->demand_peak - cp->out_bytes;
    size_t per = gap >> ZP__CP_DECAY_SHIFT;
    size_t step = (per ? per : 1) * chunk;
    cp->demand_peak -= step < gap ? step : gap;
    left -= chunk;
  }
  /* Releases as ops / 2 puts would have allowed; none when nothing is
   * resident (the caller then asks for no victim, and the quota must not
   * outlive this tick). */
  size_t quota = r ? ops / 2 * ZP__CP_DECAY_PER_PUT : 0;
  cp->decay_quota = quota < UINT32_MAX ? (unsigned)quota : UINT32_MAX;
}

size_t zp__cp_idle_target(const zp__clockpro *cp) {
  /* Slack of a whole peak: bytes out summed over classes hide one class
   * rising while another falls, and a class's next rise needs buffers
   * the sum says nobody uses. Measured: a quarter of the peak costs up to
   * +7 % misses at full budget on the zipf and bursty traces. */
  size_t used = cp->demand_peak - cp->out_bytes;
  size_t usable = used + cp->demand_peak;
  return usable >= used && usable < cp->budget ? usable : cp->budget;
}

/* ---- operations ---------------------------------------------------------- */

void zp__cp_hit(zp__clockpro *cp, unsigned cls) {
  uint32_t i = cp->res_head[cls]; /* the class's most recent put */
  unsigned f = cp->e[i].flags;
  size_t s = esize(cp, i);
  cp->st.hits++;
  demand_out(cp, s);
  if (f & ZP__CP_HOT) {
    cp->out_hot[cls]++;
    cp->nhot--;
    cp->hot_bytes -= s;
  } else {
    if (f & ZP__CP_TEST)
      cp->out_test[cls]++;
    else
      cp->out_cold[cls]++;
    cp->ncold--;
    cp->cold_bytes -= s;
  }
  list_remove(cp, &cp->res_head[cls], i);
  cp->res_count[cls]--;
  clock_unlink(cp, i);
  entry_free(cp, i);
}

bool zp__cp_miss(zp__clockpro *cp, unsigned cls) {
  uint32_t t = cp->test_head[cls];
  cp->st.misses++;
  demand_out(cp, cp->class_size[cls]);
  if (t == NIL)
    return false;
  size_t s = esize(cp, t);
  test_remove(cp, t);
  cold_target_grow(cp, s);
  cp->out_fault[cls]++;
  cp->st.refaults++;
  return true;
}

bool zp__cp_put(zp__clockpro *cp, unsigned cls) {
  unsigned flags;
  cp->st.puts++;
  if (cp->out_hot[cls]) {
    cp->out_hot[cls]--;
    flags = ZP__CP_HOT | ZP__CP_REF;
  } else if (cp->out_fault[cls]) {
    cp->out_fault[cls]--;
    flags = ZP__CP_HOT;
  } else if (cp->out_test[cls]) {
    cp->out_test[cls]--;
    flags = ZP__CP_TEST | ZP__CP_REF;
  } else if (cp->out_cold[cls]) {
    cp->out_cold[cls]--;
    flags = ZP__CP_REF;
  } else {
    flags = ZP__CP_TEST; /* a buffer the policy has not seen: cold, in test */
  }
  size_t s = cp->class_size[cls];
  demand_back(cp, s);
  if (s > cp->budget) {
    cp->st.rejects++;
    return false;
  }
  cp->decay_quota = ZP__CP_DECAY_PER_PUT;
  uint32_t i = entry_alloc(cp, cls, flags | ZP__CP_RESIDENT);
  cp->e[i].credit = size_credit(cp, s);
  clock_insert_head(cp, i);
  list_push(cp, &cp->res_head[cls], i);
  cp->res_count[cls]++;
  if (flags & ZP__CP_HOT) {
    cp->nhot++;
    cp->hot_bytes += s;
    enforce_hot(cp);
  } else {
    cp->ncold++;
    cp->cold_bytes += s;
  }
  return true;
}

int zp__cp_victim(zp__clockpro *cp) {
  while (cp->ntest > cp->max_resident || cp->test_bytes > cp->budget)
    test_step(cp);
  if (zp__cp_resident_bytes(cp) > cp->budget ||
      cp->nhot + cp->ncold > cp->max_resident)
    return cold_evict(cp);
  if (cp->decay_quota && cp->decay_debt &&
      zp__cp_resident_bytes(cp) > zp__cp_idle_target(cp)) {
    cp->decay_quota--;
    cp->st.decay_evictions++;
    int v = cold_evict(cp);
    size_t s = cp->class_size[v];
    cp->decay_debt = cp->decay_debt > s ? cp->decay_debt - s : 0;
    return v;
  }
  cp->decay_quota = 0; /* nothing more until the next put */
  return -1;
}

int zp__cp_victim_force(zp__clockpro *cp) {
  return cp->nhot + cp->ncold ? cold_evict(cp) : -1;
}

void zp__cp_drop_resident(zp__clockpro *cp) {
  for (unsigned c = 0; c < cp->nclasses; c++) {
    while (cp->res_head[c] != NIL) {
      uint32_t i = cp->res_head[c];
      list_remove(cp, &cp->res_head[c], i);
      clock_unlink(cp, i);
      entry_free(cp, i);
    }
    cp->res_count[c] = 0;
  }
  cp->nhot = cp->ncold = 0;
  cp->hot_bytes = cp->cold_bytes = 0;
  cp->decay_quota = 0;
  cp->decay_debt = 0;
  cp->low_water = 0; /* the rest of this window held nothing idle */
}

/* ---- invariants ---------------------------------------------------------- */

const char *zp__cp_check(const zp__clockpro *cp) {
  size_t n = 0, nhot = 0, ncold = 0, ntest = 0;
  size_t hot_b = 0, cold_b = 0, test_b = 0;
  bool hh = false, hc = false, ht = false;
  uint32_t start = cp->hand_hot;
  if (start == NIL) {
    if (cp->hand_cold != NIL || cp->hand_test != NIL)
      return "a hand on an empty clock";
  } else {
    uint32_t i = start;
    do {
      const zp__cp_entry *x = &cp->e[i];
      if (i >= cp->fresh || !(x->flags & ZP__CP_USED))
        return "a free entry in the clock";
      if (cp->e[x->next].prev != i)
        return "clock links broken";
      if (x->cls >= cp->nclasses)
        return "bad class";
      size_t s = cp->class_size[x->cls];
      unsigned f = x->flags;
      if (x->credit > ZP__CP_CREDIT_MAX)
        return "credit above its bound";
      if (f & ZP__CP_RESIDENT) {
        if (f & ZP__CP_HOT) {
          if (f & ZP__CP_TEST)
            return "a hot entry in a test period";
          nhot++;
          hot_b += s;
        } else {
          ncold++;
          cold_b += s;
        }
      } else {
        if ((f & (ZP__CP_HOT | ZP__CP_REF)) || !(f & ZP__CP_TEST))
          return "a non-resident entry out of its test period";
        ntest++;
        test_b += s;
      }
      hh |= i == cp->hand_hot;
      hc |= i == cp->hand_cold;
      ht |= i == cp->hand_test;
      if (++n > cp->cap)
        return "the clock does not close";
      i = x->next;
    } while (i != start);
    if (!hh || !hc || !ht)
      return "a hand off the clock";
  }
  if (nhot != cp->nhot || ncold != cp->ncold || ntest != cp->ntest)
    return "entry counts disagree";
  if (hot_b != cp->hot_bytes || cold_b != cp->cold_bytes ||
      test_b != cp->test_bytes)
    return "byte counts disagree";
  /* Every clock entry is in exactly one class list, of its own class and
   * kind; the free list holds the rest. */
  size_t listed = 0;
  for (unsigned c = 0; c < cp->nclasses; c++) {
    size_t rc = 0;
    for (int kind = 0; kind < 2; kind++) {
      uint32_t prev = NIL;
      for (uint32_t i = kind ? cp->test_head[c] : cp->res_head[c]; i != NIL;
           i = cp->e[i].cnext) {
        const zp__cp_entry *x = &cp->e[i];
        if (x->cls != c || x->cprev != prev || !(x->flags & ZP__CP_USED) ||
            (!(x->flags & ZP__CP_RESIDENT)) != kind)
          return "class list broken";
        if (++listed > n)
          return "an entry in two class lists";
        rc += !kind;
        prev = i;
      }
    }
    if (rc != cp->res_count[c])
      return "resident count of a class disagrees";
  }
  if (listed != n)
    return "an entry in no class list";
  size_t nfree = 0;
  for (uint32_t i = cp->free_list; i != NIL; i = cp->e[i].next) {
    if (i >= cp->fresh)
      return "a never-used entry on the free list";
    if (cp->e[i].flags)
      return "a used entry on the free list";
    if (++nfree > cp->cap)
      return "the free list does not end";
  }
  if (cp->fresh > cp->cap || nfree + n != cp->fresh)
    return "entries lost";
  if (cp->cold_target < cp->cold_min || cp->cold_target > cp->budget)
    return "cold target out of range";
  if (cp->ntest > cp->max_resident + 1 || cp->test_bytes > 2 * cp->budget)
    return "too many test entries";
  if (cp->out_bytes > cp->demand_peak)
    return "demand peak below bytes out";
  if (cp->decay_quota > ZP__CP_DECAY_PER_PUT)
    return "decay quota out of range";
  if (cp->decay_ops >= ZP__CP_DECAY_WINDOW)
    return "decay window overran";
  return NULL;
}
