#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Runs the benchmark executables, merges their JSON and writes the report.

  python3 bench/zpb_run.py            the full suite (make bench): every
                                      implementation in its own process, in
                                      --passes interleaved passes; the median
                                      of the passes goes to BENCHMARKS.md, the
                                      plots to docs/img/
  python3 bench/zpb_run.py --smoke    every workload over every
                                      implementation, briefly (make
                                      bench-smoke); the report goes to
                                      bench/results/smoke/ and the run fails
                                      when a benchmark failed or is missing
  python3 bench/zpb_run.py --report-only
                                      regenerate the report from the JSON
                                      files already in --out

Standard library only; gnuplot draws the plots. The workloads are described
in bench/zp_bench.cpp.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# One executable per allocator family (bench/CMakeLists.txt).
EXECUTABLES = ["zp_bench", "zp_bench_mimalloc", "zp_bench_jemalloc",
               "zp_bench_tcmalloc"]

# Implementation flags (bench/zpb_shim.h).
ZEROED, POOL, GENERAL, SECURE = 1, 2, 4, 8

POOL_NAME = "zeropool"  # the default pool: the one the targets judge
# The same pool built with each eviction policy named (bench/zpb_shim.c):
# the issue 4 comparison is between these two, whatever the default is.
LIFO_NAME, CP_NAME = "zeropool-lifo", "zeropool-clockpro"
POLICY_OF = {"lifo": LIFO_NAME, "clock-pro": CP_NAME}
# The eviction workloads (zp_bench.cpp section 5) and their budgets, as
# divisors of the trace's peak idle bytes.
EVICT_WORKLOADS = [("evict_phase", "phase: 8+32 KiB, then 128+512 KiB, "
                    "then 8+32 KiB again"),
                   ("evict_scan", "scan: 4+64 KiB steady; mid-way 1000 × "
                    "1 MiB used once (32 out)"),
                   ("evict_mixed", "mixed: 4 KiB / 64 KiB / 1 MiB, each with "
                    "its own demand cycle")]
EVICT_DIVS = [4, 8]
SIZES = [1 << 10, 4 << 10, 64 << 10, 1 << 20, 16 << 20]
THREADS = [1, 2, 4, 8, 16]


def die(msg):
    print("zpb_run: " + msg, file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- running ----

class Impl:
    def __init__(self, name, flags, what, exe):
        self.name, self.flags, self.what, self.exe = name, flags, what, exe

    def has(self, flag):
        return bool(self.flags & flag)


def list_impls(build):
    """The implementations of every executable, in executable order."""
    impls = []
    for exe in EXECUTABLES:
        path = os.path.join(build, exe)
        if not os.access(path, os.X_OK):
            die("%s is missing: build the release preset first "
                "(make release)" % path)
        out = subprocess.run([path, "--list-impls"], check=True,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            name, flags, what = line.split("\t", 2)
            impls.append(Impl(name, int(flags or 0), what, exe))
    return impls


def run_one(cmd, log_path):
    t0 = time.monotonic()
    with open(log_path, "w") as log:
        rc = subprocess.run(cmd, stdout=log,
                            stderr=subprocess.STDOUT).returncode
    if rc != 0:
        with open(log_path) as log:
            tail = log.read()[-2000:]
        die("%s failed (exit %d); its output ends with:\n%s"
            % (" ".join(cmd), rc, tail))
    return time.monotonic() - t0


def run_full(args, impls):
    """passes x implementations, one process each; the order rotates from
    one pass to the next so that slow drifts of the machine spread evenly."""
    os.makedirs(args.out, exist_ok=True)
    for f in os.listdir(args.out):
        if re.match(r"pass\d+-.*\.(json|log)$", f):
            os.remove(os.path.join(args.out, f))
    # The floor runs in zeropool's process: each floor benchmark just before
    # zeropool's of the same size, so that their ratio sees the same machine.
    procs = [(im, im.name + (",floor" if im.name == POOL_NAME else ""))
             for im in impls if im.name != "floor"]
    n = len(procs)
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump({"passes": args.passes, "min_time": args.min_time}, f)
    t_start = time.monotonic()
    for p in range(args.passes):
        order = procs[p % n:] + procs[:p % n]
        for im, selection in order:
            stem = os.path.join(args.out, "pass%d-%s" % (p + 1, im.name))
            cmd = [os.path.join(args.build, im.exe), "--impl=" + selection,
                   "--benchmark_min_time=%g" % args.min_time,
                   "--benchmark_out=" + stem + ".json",
                   "--benchmark_out_format=json"]
            if args.filter:
                cmd.append("--benchmark_filter=" + args.filter)
            dt = run_one(cmd, stem + ".log")
            print("zpb_run: pass %d/%d %-16s %5.1fs (total %.0fs)"
                  % (p + 1, args.passes, im.name, dt,
                     time.monotonic() - t_start), flush=True)


def run_smoke(args):
    """Every executable once, every implementation in one process."""
    os.makedirs(args.out, exist_ok=True)
    for f in os.listdir(args.out):
        if re.match(r"pass\d+-.*\.(json|log)$", f):
            os.remove(os.path.join(args.out, f))
    for exe in EXECUTABLES:
        stem = os.path.join(args.out, "pass1-" + exe)
        cmd = [os.path.join(args.build, exe), "--quick",
               "--benchmark_out=" + stem + ".json",
               "--benchmark_out_format=json"]
        if args.filter:
            cmd.append("--benchmark_filter=" + args.filter)
        dt = run_one(cmd, stem + ".log")
        print("zpb_run: smoke %-18s %5.1fs" % (exe, dt), flush=True)


# ---------------------------------------------------------------- merging ----

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
COUNTERS = ["faults", "hit_ratio", "evictions", "peak_rss_mib", "rss_hwm_mib",
            "rss_growth_mib", "others_cpus", "steal_cpus", "items_per_second",
            "xcore_ns",  # prodcons: the cross-core latency probe
            "bytes_per_second",
            # the eviction workloads' (zp_bench.cpp section 5)
            "budget_mib", "misses", "misses_per_kget", "evictions_total",
            "os_mib", "os_maps", "peak_mapped_mib", "replay_equal"]


def parse_name(name):
    """workload/impl/param[/real_time][/threads:N] -> key, real_time."""
    parts = name.split("/")
    threads = 1
    real = False
    for extra in parts[3:]:
        if extra == "real_time":
            real = True
        elif extra.startswith("threads:"):
            threads = int(extra[8:])
    return (parts[0], parts[1], int(parts[2]), threads), real


def load(out_dir):
    """Every pass*.json of out_dir -> (results, contexts).

    results[key] = {"ns": [...], "real": bool, counter: [...], "errors": [...]}
    with one sample per pass; key = (workload, impl, param, threads)."""
    results, contexts = {}, []
    files = sorted(f for f in os.listdir(out_dir)
                   if re.match(r"pass\d+-.*\.json$", f))
    if not files:
        die("no pass*.json in %s: run the benchmarks first" % out_dir)
    for f in files:
        with open(os.path.join(out_dir, f)) as fh:
            data = json.load(fh)
        contexts.append(data.get("context", {}))
        for b in data.get("benchmarks", []):
            if b.get("run_type", "iteration") != "iteration":
                continue
            key, real = parse_name(b["name"])
            r = results.setdefault(key, {"ns": [], "real": real, "errors": []})
            if b.get("error_occurred"):
                r["errors"].append(b.get("error_message", "error"))
                continue
            scale = UNIT_NS[b.get("time_unit", "ns")]
            r["ns"].append(b["real_time" if real else "cpu_time"] * scale)
            for c in COUNTERS:
                if c in b:
                    r.setdefault(c, []).append(b[c])
    return results, contexts


def median(xs):
    return statistics.median(xs) if xs else None


class Data:
    """Medians over the passes."""

    def __init__(self, results):
        self.results = results

    def ns(self, workload, impl, param, threads=1):
        r = self.results.get((workload, impl, param, threads))
        return median(r["ns"]) if r else None

    def counter(self, name, workload, impl, param, threads=1):
        r = self.results.get((workload, impl, param, threads))
        return median(r.get(name, [])) if r else None

    def peak_rss(self, impl):
        """The peak RSS of the implementation's process over the suite:
        the largest ru_maxrss it reported, median over the passes."""
        per_pass = []
        for key, r in self.results.items():
            if key[1] == impl and r.get("peak_rss_mib"):
                for i, v in enumerate(r["peak_rss_mib"]):
                    while len(per_pass) <= i:
                        per_pass.append(0.0)
                    per_pass[i] = max(per_pass[i], v)
        return median(per_pass)

    def errors(self):
        return {k: r["errors"] for k, r in self.results.items() if r["errors"]}


# ---------------------------------------------------------------- machine ----

def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True,
                              check=False).stdout.strip()
    except OSError:
        return ""


def machine_info(contexts):
    info = {}
    model = ""
    for line in sh(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    info["cpu"] = model or platform.processor() or "unknown"
    info["cpus"] = os.cpu_count()
    info["kernel"] = platform.release()
    info["date"] = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")
    loads = [c.get("load_avg", [None])[0] for c in contexts
             if c.get("load_avg")]
    info["load"] = (min(loads), max(loads)) if loads else None
    info["gb_build"] = sorted({c.get("library_build_type", "?")
                               for c in contexts})
    info["mhz"] = contexts[0].get("mhz_per_cpu") if contexts else None
    caches = contexts[0].get("caches", []) if contexts else []
    info["l2"] = next((c["size"] for c in caches if c.get("level") == 2), None)
    info["compiler"] = sh(["gcc", "--version"]).split("\n")[0]
    info["zp_defaults"] = next((c["zeropool_defaults"] for c in contexts
                                if c.get("zeropool_defaults")), None)
    versions = []
    for pkg in ["libc6", "libmimalloc2.0", "libjemalloc2",
                "libgoogle-perftools4", "libsodium23", "libssl3",
                "libbenchmark1debian"]:
        v = sh(["dpkg-query", "-W", "-f=${Version}", pkg])
        if v:
            versions.append("%s %s" % (pkg, v))
    info["versions"] = versions
    rev = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = sh(["git", "-C", ROOT, "status", "--porcelain", "--", "src",
                "include", "bench"])
    info["commit"] = (rev + (" + uncommitted changes" if dirty else "")
                      if rev else "unknown")
    return info


# ------------------------------------------------------------- formatting ----

def fmt_ns(v):
    if v is None:
        return "–"
    if v < 10:
        return "%.1f ns" % v
    if v < 1e3:
        return "%.0f ns" % v
    if v < 1e4:
        return "%.2f µs" % (v / 1e3)
    if v < 1e6:
        return "%.1f µs" % (v / 1e3)
    if v < 1e7:
        return "%.2f ms" % (v / 1e6)
    return "%.1f ms" % (v / 1e6)


def fmt_size(n):
    if n >= 1 << 20:
        return "%d MiB" % (n >> 20)
    return "%d KiB" % (n >> 10)


def fmt_ratio(v):
    if v is None:
        return "–"
    return ("%.3f×" if v < 0.1 else "%.2f×") % v


def fmt_num(v, f="%.2f"):
    return "–" if v is None else f % v


def fmt_rate(ns):
    """Total ops per second from ns per op (wall / all threads' ops)."""
    return "–" if not ns else "%.2f M/s" % (1e3 / ns)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] * len(header)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def pass_fail(ok):
    if ok is None:
        return "n/a"
    if isinstance(ok, str):  # a target reported as a figure, not judged
        return ok
    return "**PASS**" if ok else "**MISS**"


# ----------------------------------------------------------------- report ----

class Report:
    def __init__(self, data, impls, info, args):
        self.d, self.impls, self.info, self.args = data, impls, info, args
        self.names = [im.name for im in impls]
        self.by_name = {im.name: im for im in impls}
        self.general = [im.name for im in impls if im.has(GENERAL)]
        self.zeroing = [im.name for im in impls
                        if im.has(GENERAL) and im.has(ZEROED)]
        self.targets = []  # (target, figure, ok)
        self.out = []

    def w(self, s=""):
        self.out.append(s)

    def best(self, workload, param, threads=1, among=None):
        """(ns, name) of the fastest of `among` (default: the general-purpose
        peers) on one benchmark."""
        cands = []
        for n in among if among is not None else self.general:
            v = self.d.ns(workload, n, param, threads)
            if v is not None:
                cands.append((v, n))
        return min(cands) if cands else (None, None)

    # Rows = implementations, columns = params; then the best general peer
    # and zeropool / best peer.
    def impl_table(self, workload, params, head, threads=1, among=None,
                   floor=None, extra_rows=()):
        header = ["implementation"] + head
        rows = []
        if floor:
            rows.append(["floor (write + explicit_bzero, no allocator)"] +
                        [fmt_ns(self.d.ns(floor, "floor", p)) for p in params])
        for n in self.names:
            if all(self.d.ns(workload, n, p, threads) is None for p in params):
                continue
            label = "**%s**" % n if n == POOL_NAME else n
            rows.append([label] + [fmt_ns(self.d.ns(workload, n, p, threads))
                                   for p in params])
        best, ratio = ["best general-purpose peer"], ["zeropool ÷ best peer"]
        for p in params:
            v, n = self.best(workload, p, threads, among)
            z = self.d.ns(workload, POOL_NAME, p, threads)
            best.append("%s (%s)" % (fmt_ns(v), n) if v else "–")
            ratio.append(fmt_ratio(z / v if z and v else None))
        rows += [best, ratio]
        for label, fn in extra_rows:
            rows.append([label] + [fn(p) for p in params])
        self.w(table(header, rows))

    def hit_row(self, workload, threads=1):
        return ("zeropool hit ratio",
                lambda p: fmt_num(self.d.counter("hit_ratio", workload,
                                                 POOL_NAME, p, threads),
                                  "%.4f"))

    def target(self, what, figure, ok):
        self.targets.append((what, figure, ok))

    # ---------------------------------------------------------- targets ----

    def scaling_context(self, wl, s, ratio, ta, tb):
        """The same scaling ratio for the floor and glibc-malloc, and how
        busy other processes kept the machine, as context for a thread
        target."""
        parts = []
        for n in ("floor", "glibc-malloc"):
            a, b = self.d.ns(wl, n, s, ta), self.d.ns(wl, n, s, tb)
            if a and b:
                parts.append("%s %.3f×" % (n, ratio(a, b)))
        busy = [self.d.counter("others_cpus", wl, POOL_NAME, s, t)
                for t in (ta, tb)]
        if all(b is not None for b in busy):
            parts.append("other processes kept %.2f / %.2f CPUs busy during "
                         "zeropool's T=%d / T=%d runs" % (busy[0], busy[1],
                                                          ta, tb))
        return " (same run: " + "; ".join(parts) + ")" if parts else ""

    def compute_targets(self):
        d = self.d
        # 1. The pool's own cost.
        book = [(s, d.ns("bookkeeping", POOL_NAME, s)) for s in SIZES]
        have = [v for _, v in book if v is not None]
        over = []
        for s in SIZES:
            z, f = d.ns("cycle_full", POOL_NAME, s), d.ns("floor_full",
                                                          "floor", s)
            if z is not None and f is not None:
                over.append("%s %+.1f ns" % (fmt_size(s), z - f))
        self.target(
            "Pool's own cost < 10 ns on a thread-cache hit at every size "
            "(zp_get + zp_put_used(0), no byte touched)",
            ", ".join("%s %s" % (fmt_size(s), "%.1f ns" % v if v else "–")
                      for s, v in book) +
            ". For reference, full cycle − floor: " + "; ".join(over),
            all(v < 10 for v in have) if len(have) == len(SIZES) else None)
        # 2. Whole buffer written: <= 1.15 x (write + explicit_bzero).
        figs, oks = [], []
        for s in (64 << 10, 1 << 20):
            z, f = d.ns("cycle_full", POOL_NAME, s), d.ns("floor_full",
                                                          "floor", s)
            if z and f:
                figs.append("%s: %s vs %s = %.3f×" % (fmt_size(s), fmt_ns(z),
                                                      fmt_ns(f), z / f))
                oks.append(z / f <= 1.15)
        self.target("Whole buffer written: cycle ≤ 1.15 × (write + "
                    "explicit_bzero) at 64 KiB and 1 MiB", "; ".join(figs),
                    all(oks) if len(oks) == 2 else None)
        # 3. 1 KiB of 1 MiB: >= 20x cheaper than calloc + free.
        z = d.ns("cycle_1k", POOL_NAME, 1 << 20)
        c = d.ns("cycle_1k", "glibc-calloc", 1 << 20)
        self.target("1 KiB of a 1 MiB buffer written, zp_put_used: ≥ 20× "
                    "cheaper than calloc + free of 1 MiB",
                    "%s vs %s = %s" % (fmt_ns(z), fmt_ns(c),
                                       fmt_ratio(c / z if z and c else None)),
                    (c / z >= 20) if z and c else None)
        # 4a. At least as fast as the best general-purpose peer.
        cells, misses = 0, []
        for s in SIZES:
            z = d.ns("cycle_full", POOL_NAME, s)
            v, n = self.best("cycle_full", s)
            if z and v:
                cells += 1
                if z > v:
                    misses.append("cycle_full %s: %s vs %s %s (%.2f×)"
                                  % (fmt_size(s), fmt_ns(z), n, fmt_ns(v),
                                     z / v))
        for wl, s in (("threads_4k", 4 << 10), ("threads_64k", 64 << 10)):
            for t in THREADS:
                z = d.ns(wl, POOL_NAME, s, t)
                v, n = self.best(wl, s, t)
                if z and v:
                    cells += 1
                    if z > v:
                        misses.append("%s T=%d: %s vs %s %s (%.2f×)"
                                      % (wl, t, fmt_ns(z), n, fmt_ns(v),
                                         z / v))
        fig = "%d of %d size/thread cells at or below the best peer" % (
            cells - len(misses), cells)
        if misses:
            fig += "; slower in: " + "; ".join(misses)
        self.target("At every size and thread count at least as fast as the "
                    "best of glibc, mimalloc, jemalloc, tcmalloc doing the "
                    "same work (cycle_full; threads_4k, threads_64k; "
                    "ns per op, ratio > 1.00 is a miss)", fig,
                    (not misses) if cells else None)
        # 4b. >= 10x faster than sodium and OpenSSL at 2 threads.
        figs, oks = [], []
        for wl, s in (("threads_4k", 4 << 10), ("threads_64k", 64 << 10)):
            z = d.ns(wl, POOL_NAME, s, 2)
            f = d.ns(wl, "floor", s, 2)
            for peer in ("sodium", "openssl-secure"):
                v = d.ns(wl, peer, s, 2)
                if z and v:
                    bound = (" (a pool costing nothing beyond the floor: "
                             "%.1f×)" % (v / f)) if f else ""
                    figs.append("%s %s %.1f×%s" % (fmt_size(s), peer, v / z,
                                                   bound))
                    oks.append(v / z >= 10)
        self.target("At 2 threads ≥ 10× faster than sodium_malloc and "
                    "OpenSSL's secure heap (threads_4k, threads_64k)",
                    "; ".join(figs), all(oks) if len(oks) == 4 else None)
        # 5a/b. Thread scaling.
        for wl, s in (("threads_4k", 4 << 10), ("threads_64k", 64 << 10)):
            t1 = d.ns(wl, POOL_NAME, s, 1)
            t2 = d.ns(wl, POOL_NAME, s, 2)
            t16 = d.ns(wl, POOL_NAME, s, 16)
            # per-thread throughput at T = (1/ns) / T
            r2 = (t1 / (2 * t2)) if t1 and t2 else None
            ctx = self.scaling_context(wl, s, lambda a, b: a / (2 * b), 1, 2)
            self.target("%s: per-thread throughput at 2 threads ≥ 0.9× one "
                        "thread" % wl,
                        "%s%s" % (fmt_num(r2, "%.4f×"), ctx),
                        r2 >= 0.9 if r2 is not None else None)
            r16 = (t2 / t16) if t2 and t16 else None
            ctx = self.scaling_context(wl, s, lambda a, b: a / b, 2, 16)
            self.target("%s: total throughput at 16 threads on %s cores ≥ "
                        "0.8× the 2-thread total" % (wl, self.info["cpus"]),
                        "%s%s" % (fmt_num(r16, "%.4f×"), ctx),
                        r16 >= 0.8 if r16 is not None else None)
        # 5c. Producer/consumer.
        for s, wl in ((4 << 10, "threads_4k"), (64 << 10, "threads_64k")):
            pc = d.ns("prodcons", POOL_NAME, s)
            hit = d.counter("hit_ratio", "prodcons", POOL_NAME, s)
            same = d.ns(wl, POOL_NAME, s, 1)
            rate = same / pc if pc and same else None
            ok = (hit >= 0.99 and rate >= 0.5) if (hit is not None and
                                                   rate is not None) else None
            ctx = []
            for n in ("floor", "glibc-malloc"):
                a, b = d.ns("prodcons", n, s), d.ns(wl, n, s, 1)
                if a and b:
                    ctx.append("%s %.2f×" % (n, b / a))
            # Every hand-off pays the cross-core latency, which the host's
            # placement of the vCPUs sets: each pass with its probe.
            for n in (POOL_NAME, "floor"):
                r = d.results.get(("prodcons", n, s, 1)) or {}
                pairs = list(zip(r.get("ns", []), r.get("xcore_ns", [])))
                if pairs:
                    ctx.append("%s per pass, ns per op @ cross-core latency: "
                               "%s" % (n, ", ".join(
                                   "%.0f @ %.0f" % p for p in pairs)))
            self.target("Producer/consumer at %s: ≥ 99%% pool hits and ≥ 0.5× "
                        "the same-thread rate" % fmt_size(s),
                        "hits %s, rate %s of one thread cycling (%s vs %s "
                        "per op)%s" % (fmt_num(hit, "%.4f"),
                                       fmt_num(rate, "%.4f×"),
                                       fmt_ns(pc), fmt_ns(same),
                                       " (same run: " + "; ".join(ctx) + ")"
                                       if ctx else ""), ok)

        # 6. Issue 4: the two eviction policies.
        self.target_policy_fast_path()
        self.target_policy_misses()

    def ratios(self, wl, a, b, params, threads=1):
        """a's time ÷ b's on wl at each param where both ran."""
        out = []
        for p in params:
            x, y = self.d.ns(wl, a, p, threads), self.d.ns(wl, b, p, threads)
            if x and y:
                out.append(x / y)
        return out

    @staticmethod
    def fmt_spread(rs):
        return "%.2f× median (%.2f–%.2f× over %d sizes)" % (
            statistics.median(rs), min(rs), max(rs), len(rs))

    def target_policy_fast_path(self):
        """CLOCK-Pro ÷ LIFO where no eviction happens: the policies run only
        under a shard's lock, so the thread-cache path should not see them.
        Reported as a figure, with the gap between two pools running the
        same code as the scale of the noise."""
        figs = []
        for wl in ("cycle_bare", "bookkeeping"):
            rs = self.ratios(wl, CP_NAME, LIFO_NAME, SIZES)
            if rs:
                figs.append("%s %s" % (wl, self.fmt_spread(rs)))
        if not figs:
            self.target("CLOCK-Pro fast-path cost equals LIFO's (cycle_bare / "
                        "bookkeeping within noise)", "–", None)
            return
        twin = self.default_twin()
        if twin:
            same = []
            for wl in ("cycle_bare", "bookkeeping"):
                same += self.ratios(wl, POOL_NAME, twin, SIZES)
            if same:
                figs.append("for scale, zeropool ÷ %s (the same code): %s" %
                            (twin, self.fmt_spread(same)))
        self.target("CLOCK-Pro fast-path cost equals LIFO's (cycle_bare / "
                    "bookkeeping within noise; %s ÷ %s, ns per op)" %
                    (CP_NAME, LIFO_NAME), "; ".join(figs), "figure")

    def target_policy_misses(self):
        figs, oks = [], []
        for wl, _ in EVICT_WORKLOADS:
            for div in EVICT_DIVS:
                lifo = self.d.counter("misses", wl, LIFO_NAME, div)
                cp = self.d.counter("misses", wl, CP_NAME, div)
                if lifo is None or cp is None:
                    continue
                oks.append(cp <= lifo)
                figs.append("%s 1/%d: %.0f vs %.0f (%s)" % (
                    wl[len("evict_"):], div, cp, lifo,
                    fmt_ratio(cp / lifo) if lifo else "–"))
        n = len(EVICT_WORKLOADS) * len(EVICT_DIVS)
        self.target("CLOCK-Pro misses ≤ LIFO's on phase / scan / mixed under "
                    "a byte budget (1/4 and 1/8 of the trace's peak idle "
                    "bytes; CLOCK-Pro vs LIFO misses)", "; ".join(figs),
                    all(oks) if len(oks) == n else None)

    # ---------------------------------------------------------- sections ----

    def write(self):
        info = self.info
        self.compute_targets()
        w = self.w
        w("<!-- SPDX-License-Identifier: MIT OR Apache-2.0 -->")
        w("# zeropool benchmarks")
        w()
        w("Generated by `%s` (bench/zpb_run.py); do not edit, rerun it. "
          "The workloads and their parameters are described at the top of "
          "[bench/zp_bench.cpp](bench/zp_bench.cpp)."
          % ("make bench-smoke" if self.args.smoke else "make bench"))
        w()
        w("**The question:** is zeropool faster than what you use now, at the "
          "same level of safety? Every implementation below writes the same "
          "bytes and leaves none of them behind: zeropool wipes in `zp_put` / "
          "`zp_put_used`, the malloc families call `explicit_bzero` on the "
          "written bytes before `free`, libsodium and OpenSSL wipe the whole "
          "block themselves. zeropool and the `*-calloc` variants also hand "
          "out zeroed memory; the `*-malloc` variants, sodium and OpenSSL do "
          "not.")
        w()
        w("## Machine and method")
        w()
        load = info["load"]
        w("- %s, %s CPUs%s, L2 %s per core; Linux %s; %s." % (
            info["cpu"], info["cpus"],
            " at %s MHz" % info["mhz"] if info["mhz"] else "",
            fmt_size(info["l2"]) if info["l2"] else "?", info["kernel"],
            info["compiler"]))
        w("- Run %s, zeropool at %s; load average %s during the run "
          "(a shared VM: other tenants' work shows as noise)." % (
              info["date"], info["commit"],
              "%.2f-%.2f" % load if load else "unknown"))
        w("- Peers: " + ", ".join(info["versions"]) + ".")
        if info["zp_defaults"]:
            twin = self.default_twin()
            w("- zeropool's defaults on this machine: %s.%s" % (
                info["zp_defaults"],
                " The default policy is %s, so `zeropool` and `%s` run the "
                "same code: the gap between their rows is a direct measure "
                "of the noise%s." % (
                    "LIFO" if twin == LIFO_NAME else "CLOCK-Pro", twin,
                    self.noise(twin)) if twin else ""))
        if self.args.smoke:
            w("- **Smoke run** (`--quick`, minimal iterations): the figures "
              "are not measurements; this file only shows that every "
              "workload runs over every implementation.")
        else:
            w("- Each implementation runs in its own process (so peak RSS is "
              "its own) in %d passes; the order of the implementations "
              "rotates from pass to pass, and every cell is the **median of "
              "the %d passes**. google-benchmark minimum time %g s per "
              "benchmark." % (self.args.passes, self.args.passes,
                              self.args.min_time))
        busy = [v for r in self.d.results.values()
                for v in r.get("others_cpus", [])]
        steal = [v for r in self.d.results.values()
                 for v in r.get("steal_cpus", [])]
        if busy:
            w("- Interference: other processes kept %.2f CPUs busy on "
              "average over the benchmarks (median %.2f, max %.2f), the "
              "hypervisor stole %.2f on average; counters others_cpus and "
              "steal_cpus of each benchmark in bench/results/merged.json." %
              (statistics.mean(busy), statistics.median(busy), max(busy),
               statistics.mean(steal) if steal else 0.0))
        w("- Times are ns per op. One-thread rows are CPU time of the "
          "thread (system time included); threads_* and prodcons are wall "
          "time divided by the ops of all threads; churn and rust_threads "
          "(which start threads in every op) are CPU time of the whole "
          "process per op, since their wall time mostly measures the "
          "scheduler of a busy machine.")
        w("- Ratios: zeropool ÷ the best general-purpose peer (glibc, "
          "mimalloc, jemalloc, tcmalloc; malloc or calloc variant, whichever "
          "is faster) on the same workload; below 1.00 zeropool is faster.")
        if "debug" in info["gb_build"]:
            w("- Debian's libbenchmark reports itself as a debug build; that "
              "concerns the harness, not the code measured (built Release, "
              "-O3).")
        w()
        self.section_glance()
        w("## Targets")
        w()
        rows = [[what, fig, pass_fail(ok)] for what, fig, ok in self.targets]
        w(table(["target", "figure from this run", "result"], rows))
        w("Every figure is computed from this run's medians; a MISS is "
          "reported as measured (the workloads are not tuned to avoid it). "
          "On this shared machine single-thread cells move by about ±5 ns "
          "at 1-4 KiB and ±10 % above from pass to pass, so ratios within "
          "that band of 1.00 or of a threshold can flip between runs.")
        w()
        self.section_single()
        self.section_rust()
        self.section_threads()
        self.section_realistic()
        self.section_eviction()
        self.section_memory()
        self.section_impls()
        errs = self.d.errors()
        if errs:
            w("## Benchmarks that did not run")
            w()
            for k, e in sorted(errs.items()):
                w("- `%s/%s/%d` (threads %d): %s" % (k + (e[0],)))
            w()
        return "\n".join(self.out).rstrip() + "\n"

    def default_twin(self):
        """The named variant that runs the default pool's policy (from the
        zeropool_defaults context: "... eviction lifo"), or None."""
        d = self.info.get("zp_defaults") or ""
        return POLICY_OF.get(d.rsplit("eviction ", 1)[-1]) \
            if "eviction " in d else None

    def noise(self, twin):
        """How far apart the default pool's row and its twin's (the same
        code) are on the one-thread cycles."""
        gaps = []
        for (wl, n, p, t), r in self.d.results.items():
            if n == POOL_NAME and wl.startswith("cycle_") and t == 1:
                a = median(r["ns"])
                b = self.d.ns(wl, twin, p, t)
                if a and b:
                    gaps.append(abs(b / a - 1))
        if not gaps:
            return ""
        return (": over the %d one-thread cycle cells they differ by %.0f %% "
                "at the median and by up to %.0f %%" %
                (len(gaps), 100 * statistics.median(gaps), 100 * max(gaps)))

    def section_glance(self):
        w = self.w
        w("## At a glance")
        w()
        w("Speed-up of zeropool = the peer's time ÷ zeropool's time on the "
          "same workload (above 1.00 zeropool is faster). \"malloc + wipe\" "
          "is the fastest of the glibc, mimalloc, jemalloc and tcmalloc "
          "malloc variants (their memory is not zeroed when handed out); "
          "\"calloc + wipe\" the fastest of their zeroing variants, the "
          "same guarantee as zeropool's.")
        w()
        malloc_only = [n for n in self.general if n not in self.zeroing]
        rows_spec = [("cycle_full", s, 1, "get, write all, put: %s" %
                      fmt_size(s)) for s in SIZES]
        rows_spec += [("cycle_1k", 1 << 20, 1,
                       "1 KiB written into 1 MiB (zp_put_used)"),
                      ("pingpong", 0, 1, "Rust crate ping-pong 1K/1M"),
                      ("multisize", 0, 1, "Rust crate multi-size"),
                      ("threads_4k", 4 << 10, 2, "2 threads, 4 KiB"),
                      ("threads_64k", 64 << 10, 2, "2 threads, 64 KiB"),
                      ("threads_64k", 64 << 10, 16, "16 threads, 64 KiB"),
                      ("prodcons", 64 << 10, 1,
                       "producer → consumer, 64 KiB"),
                      ("churn", 0, 1, "thread churn"),
                      ("file_stream", 64 << 10, 1, "stream a file, 64 KiB "
                       "buffers"),
                      ("socket_echo", 64 << 10, 1, "socketpair echo, 1 KiB")]
        rows = []
        for wl, p, t, label in rows_spec:
            z = self.d.ns(wl, POOL_NAME, p, t)
            if z is None:
                continue
            cells = [label, fmt_ns(z)]
            for among in (malloc_only, self.zeroing):
                v, n = self.best(wl, p, t, among)
                cells.append("%s (%s)" % (fmt_ratio(v / z), n) if v else "–")
            for peer in ("sodium", "openssl-secure"):
                v = self.d.ns(wl, peer, p, t)
                cells.append(fmt_ratio(v / z) if v else "–")
            rows.append(cells)
        w(table(["workload", "zeropool per op", "vs malloc + wipe",
                 "vs calloc + wipe", "vs sodium_malloc",
                 "vs OpenSSL secure heap"], rows))

    def section_single(self):
        w = self.w
        sizes = [fmt_size(s) for s in SIZES]
        w("## 1. One thread: get, write, put")
        w()
        w("### Whole buffer written (`cycle_full`)")
        w()
        w("![ns per cycle against buffer size](%s)" % self.img_link(
            "bench-latency-size.png"))
        w()
        self.impl_table("cycle_full", SIZES, sizes, floor="floor_full",
                        extra_rows=[self.hit_row("cycle_full")])
        w("### 1 KiB written, declared with `zp_put_used` (`cycle_1k`)")
        w()
        w("A short read into a big buffer: peers wipe only the 1 KiB too. "
          "zeropool hands out zeroed memory, so the like-for-like peers are "
          "the calloc variants; the malloc variants are shown as the "
          "allocator's floor.")
        w()
        w("![ns per cycle, 1 KiB written](%s)" % self.img_link(
            "bench-short-read.png"))
        w()
        p = SIZES[1:]
        self.impl_table(
            "cycle_1k", p, [fmt_size(s) for s in p], floor="floor_1k",
            among=self.zeroing,
            extra_rows=[self.best_row("cycle_1k", "best malloc variant"),
                        self.hit_row("cycle_1k")])
        w("(Here \"best general-purpose peer\" is the best calloc variant.)")
        w()
        w("### 10 % of the buffer written (`cycle_10pct`)")
        w()
        self.impl_table("cycle_10pct", SIZES, sizes, floor="floor_10pct",
                        among=self.zeroing,
                        extra_rows=[self.best_row("cycle_10pct",
                                                  "best malloc variant")])
        w("(Best peer: the best calloc variant, as above.)")
        w()
        w("### Nothing written: the allocator's own cost (`cycle_bare`)")
        w()
        w("get + put(used 0) through the shim (an indirect call each); "
          "`bookkeeping` is zeropool's zp_get + zp_put_used(0) called "
          "directly. calloc variants still zero the whole buffer.")
        w()
        self.impl_table(
            "cycle_bare", SIZES, sizes,
            extra_rows=[("%s bookkeeping (direct calls)" % n,
                         lambda s, n=n: fmt_ns(self.d.ns("bookkeeping", n, s)))
                        for n in self.pools()])

    def pools(self):
        """The zeropool variants of this run, the default first."""
        return [n for n in self.names if self.by_name[n].has(POOL)]

    def best_row(self, workload, label):
        malloc_only = [n for n in self.general if n not in self.zeroing]

        def cell(p):
            v, n = self.best(workload, p, 1, malloc_only)
            return "%s (%s)" % (fmt_ns(v), n) if v else "–"
        return (label, cell)

    def section_rust(self):
        w = self.w
        w("## 2. The Rust crate's workloads")
        w()
        w("The cache_behavior benchmarks of the Rust crate zeropool with its "
          "parameters (see bench/zp_bench.cpp); every buffer is written and "
          "put whole. ns per op; one op is several gets and puts. The last "
          "column gives the pool a 320 KiB budget while 640 KiB are out at "
          "once, so that it must release buffers to the OS and map them "
          "again: the peers keep no budget, and the column shows what "
          "enforcing one costs.")
        w()
        cols = [("pingpong", 0, "ping-pong 1K/1M (100 pairs)"),
                ("hotcold", 0, "hot/cold (3 × 64 KiB)"),
                ("multisize", 0, "multi-size (100 × 3)"),
                ("tcache", 2, "thread cache k=2"),
                ("tcache", 4, "k=4"), ("tcache", 8, "k=8"),
                ("eviction", 0, "eviction pressure (10 × 64 KiB)"),
                ("eviction_budget", 320, "the same, 320 KiB budget")]
        header = ["implementation"] + [c[2] for c in cols]
        rows = []
        for n in self.names:
            cells = [self.d.ns(wl, n, p) for wl, p, _ in cols]
            if all(c is None for c in cells):
                continue
            label = "**%s**" % n if n == POOL_NAME else n
            rows.append([label] + [fmt_ns(c) for c in cells])
        best, ratio = ["best general-purpose peer"], ["zeropool ÷ best peer"]
        for wl, p, _ in cols:
            v, n = self.best(wl, p)
            z = self.d.ns(wl, POOL_NAME, p)
            best.append("%s (%s)" % (fmt_ns(v), n) if v else "–")
            ratio.append(fmt_ratio(z / v if z and v else None))
        rows += [best, ratio]
        rows.append(["zeropool hit ratio"] + [
            fmt_num(self.d.counter("hit_ratio", wl, POOL_NAME, p), "%.4f")
            for wl, p, _ in cols])
        rows.append(["zeropool evictions per op"] + [
            fmt_num(self.d.counter("evictions", wl, POOL_NAME, p), "%.2f")
            for wl, p, _ in cols])
        rows.append(["zeropool faults per op"] + [
            fmt_num(self.d.counter("faults", wl, POOL_NAME, p), "%.2f")
            for wl, p, _ in cols])
        w(table(header, rows))
        w("### T threads × 1000 ops (`rust_threads`)")
        w()
        w("Each op starts T threads that each do 1000 × {get 1 KiB, write, "
          "put} and joins them (pool: tls_cache_size 1, 4 shards); CPU time "
          "of the whole process per op, thread start-up included.")
        w()
        ts = [1, 4, 8, 16]
        self.impl_table("rust_threads", ts, ["T=%d" % t for t in ts])

    def section_threads(self):
        w = self.w
        w("## 3. Threads")
        w()
        w("![total throughput against threads](%s)" % self.img_link(
            "bench-threads.png"))
        w()
        for wl, s in (("threads_4k", 4 << 10), ("threads_64k", 64 << 10)):
            w("### Every thread cycling on its own, %s (`%s`)" % (
                fmt_size(s), wl))
            w()
            w("Total throughput (million cycles per second, all threads) on "
              "one shared instance; the machine has %s cores." %
              self.info["cpus"])
            w()
            header = ["implementation"] + ["T=%d" % t for t in THREADS]
            rows = [["floor (write + explicit_bzero, a buffer per thread)"] +
                    [fmt_rate(self.d.ns(wl, "floor", s, t)) for t in THREADS]]
            for n in self.names:
                vals = [self.d.ns(wl, n, s, t) for t in THREADS]
                if all(v is None for v in vals):
                    continue
                label = "**%s**" % n if n == POOL_NAME else n
                rows.append([label] + [fmt_rate(v) for v in vals])
            best, ratio = ["best general-purpose peer"], [
                "zeropool ÷ best peer (time)"]
            per = ["zeropool per thread"]
            for t in THREADS:
                v, n = self.best(wl, s, t)
                z = self.d.ns(wl, POOL_NAME, s, t)
                best.append("%s (%s)" % (fmt_rate(v), n) if v else "–")
                ratio.append(fmt_ratio(z / v if z and v else None))
                per.append("%.2f M/s" % (1e3 / z / t) if z else "–")
            hits = ["zeropool hit ratio"] + [
                fmt_num(self.d.counter("hit_ratio", wl, POOL_NAME, s, t),
                        "%.4f") for t in THREADS]
            others = ["other processes' CPUs during zeropool's run"] + [
                fmt_num(self.d.counter("others_cpus", wl, POOL_NAME, s, t))
                for t in THREADS]
            w(table(header, rows + [best, ratio, per, hits, others]))
        w("### Producer thread gets, consumer thread puts (`prodcons`)")
        w()
        w("Buffers pass through a lock-free SPSC ring of 64 slots. ns per "
          "buffer (wall); \"same thread\" is the T=1 row above.")
        w()
        rows = []
        for n in ["floor"] + self.names:
            vals = [self.d.ns("prodcons", n, s) for s in (4 << 10, 64 << 10)]
            if all(v is None for v in vals):
                continue
            same = [self.d.ns(wl, n, s, 1) for wl, s in
                    (("threads_4k", 4 << 10), ("threads_64k", 64 << 10))]
            hit = [self.d.counter("hit_ratio", "prodcons", n, s)
                   for s in (4 << 10, 64 << 10)]
            label = "**%s**" % n if n == POOL_NAME else (
                "floor (the same hand-off, no allocator)" if n == "floor"
                else n)
            xcore = [self.d.counter("xcore_ns", "prodcons", n, s)
                     for s in (4 << 10, 64 << 10)]
            rows.append([label] + [fmt_ns(v) for v in vals] +
                        [fmt_ratio(s / v if s and v else None)
                         for s, v in zip(same, vals)] +
                        [fmt_num(h, "%.4f") for h in hit] +
                        [fmt_num(x, "%.0f ns") for x in xcore])
        w(table(["implementation", "4 KiB", "64 KiB",
                 "rate ÷ same thread, 4 KiB", "64 KiB", "hit ratio 4 KiB",
                 "64 KiB", "cross-core latency 4 KiB", "64 KiB"], rows))
        w("Cross-core latency: one-way time of a cache line between two "
          "threads, probed just before and after each run (median over the "
          "passes). Every hand-off pays it a few times per buffer, and on "
          "this VM it swings between about 40 and 200 ns as the host moves "
          "the vCPUs; the target row lists each pass with its probe.")
        w()
        w("### Thread churn (`churn`)")
        w()
        w("Per op a thread starts, gets 4 × 64 KiB, writes them, puts 2 and "
          "exits holding 2, which the main thread puts. CPU time of the "
          "whole process per op (thread start and join included).")
        w()
        rows = []
        for n in self.names:
            v = self.d.ns("churn", n, 0)
            if v is None:
                continue
            label = "**%s**" % n if n == POOL_NAME else n
            rows.append([label, fmt_ns(v),
                         fmt_num(self.d.counter("hit_ratio", "churn", n, 0),
                                 "%.4f"),
                         fmt_num(self.d.counter("faults", "churn", n, 0),
                                 "%.2f")])
        w(table(["implementation", "ns per op", "hit ratio", "faults per op"],
                rows))

    def section_realistic(self):
        w = self.w
        w("## 4. A realistic job")
        w()
        w("`file_stream`: a %s file in /tmp read with read(2) from the page "
          "cache, each 64 KiB chunk into a fresh buffer put with the bytes "
          "read as used. `socket_echo`: write a 1 KiB message on one end of "
          "an AF_UNIX socketpair, read it into a fresh 64 KiB buffer from "
          "the other, put with used = 1 KiB." %
          ("4 MiB" if self.args.smoke else "64 MiB"))
        w()
        rows = []
        for n in self.names:
            f = self.d.ns("file_stream", n, 64 << 10)
            s = self.d.ns("socket_echo", n, 64 << 10)
            if f is None and s is None:
                continue
            bps = self.d.counter("bytes_per_second", "file_stream", n,
                                 64 << 10)
            label = "**%s**" % n if n == POOL_NAME else n
            rows.append([label, fmt_ns(f),
                         "%.1f GB/s" % (bps / 1e9) if bps else "–",
                         fmt_ns(s)])
        best = ["best general-purpose peer"]
        ratio = ["zeropool ÷ best peer"]
        for wl in ("file_stream", None, "socket_echo"):
            if wl is None:
                best.append("")
                ratio.append("")
                continue
            v, n = self.best(wl, 64 << 10)
            z = self.d.ns(wl, POOL_NAME, 64 << 10)
            best.append("%s (%s)" % (fmt_ns(v), n) if v else "–")
            ratio.append(fmt_ratio(z / v if z and v else None))
        w(table(["implementation", "file_stream, per file",
                 "file_stream throughput", "socket_echo, per message"],
                rows + [best, ratio]))

    def section_eviction(self):
        w = self.w
        d = self.d
        w("## 5. Eviction under a byte budget (issue 4)")
        w()
        w("The traces of the simulator `tools/sim/zp_sim` (same generator, "
          "seeds and length: see [docs/clockpro.md](docs/clockpro.md)) "
          "replayed once, on one thread, through a real pool built with "
          "each policy: one shard, `tls_cache_size` 2 (so that the shard "
          "and its policy see nearly every get and put), `max_pooled_bytes` "
          "= 1/4 or 1/8 of the trace's peak idle bytes when nothing is "
          "released (the simulator's budgets), `max_buffers_per_shard` = "
          "budget / 4 KiB + 1. Each get writes the buffer's first 4 KiB and "
          "is put with that as used: the rows measure the policy and the "
          "mappings its misses and evictions cost, not memset (a miss's "
          "page faults beyond the first page are not in ns per op). One op "
          "= a get or a put; the trace is replayed exactly once per run.")
        w()
        w("Misses: gets that needed fresh memory, per 1000 gets. MiB from "
          "the OS: the bytes the pool mapped during the replay (the sum of "
          "the rises of `zp_stats.mapped_bytes`, mappings in brackets), and "
          "peak mapped: the most it held at once; both from a second, "
          "untimed replay that reads the pool's counters after every get. "
          "RSS growth: the process's high-water mark during the timed "
          "replay minus its RSS at the start (only the touched first pages "
          "count). The replay is deterministic (one thread, one shard; "
          "CLOCK-Pro's decay counts operations), so misses, evictions and "
          "MiB are the same in every pass; ns per op is the median of the "
          "passes.")
        w()
        pools = self.pools()
        for wl, label in EVICT_WORKLOADS:
            w("### %s (`%s`)" % (label[0].upper() + label[1:], wl))
            w()
            rows = []
            for div in EVICT_DIVS:
                budget = next((d.counter("budget_mib", wl, n, div)
                               for n in pools
                               if d.counter("budget_mib", wl, n, div)), None)
                bl = "1/%d (%s)" % (div, "%.1f MiB" % budget if budget
                                    else "–")
                for n in pools:
                    ns = d.ns(wl, n, div)
                    if ns is None:
                        continue
                    def c(name, n=n, div=div):
                        return d.counter(name, wl, n, div)
                    maps = c("os_maps")
                    rss = c("rss_growth_mib")
                    rows.append([
                        bl, "**%s**" % n if n == POOL_NAME else n,
                        fmt_num(c("misses_per_kget"), "%.2f"),
                        fmt_num(c("misses"), "%.0f"),
                        fmt_num(c("evictions_total"), "%.0f"),
                        fmt_ns(ns),
                        "%s (%s)" % (fmt_num(c("os_mib"), "%.0f"),
                                     fmt_num(maps, "%.0f")),
                        fmt_num(c("peak_mapped_mib"), "%.1f"),
                        "%.1f MiB" % rss if rss is not None and rss >= 0
                        else "–"])
                ratio = [bl, "CLOCK-Pro ÷ LIFO"]
                for name in ("misses_per_kget", "misses", "evictions_total"):
                    a = d.counter(name, wl, CP_NAME, div)
                    b = d.counter(name, wl, LIFO_NAME, div)
                    ratio.append(fmt_ratio(a / b) if a is not None and b
                                 else "–")
                a, b = d.ns(wl, CP_NAME, div), d.ns(wl, LIFO_NAME, div)
                ratio.append(fmt_ratio(a / b) if a and b else "–")
                for name in ("os_mib", "peak_mapped_mib"):
                    a = d.counter(name, wl, CP_NAME, div)
                    b = d.counter(name, wl, LIFO_NAME, div)
                    ratio.append(fmt_ratio(a / b) if a is not None and b
                                 else "–")
                ratio.append("")
                rows.append(ratio)
            w(table(["budget", "implementation", "misses / 1000 gets",
                     "misses", "evictions", "ns per op",
                     "MiB from the OS (mappings)", "peak mapped MiB",
                     "RSS growth"], rows))
        # What would make the figures above untrustworthy, said if it
        # happened: a replay that differed from its twin or between passes.
        odd = []
        for (wl, n, p, t), r in sorted(d.results.items()):
            if not wl.startswith("evict_"):
                continue
            if any(v < 1 for v in r.get("replay_equal", [])):
                odd.append("`%s/%s/%d`: the untimed replay missed "
                           "differently from the timed one" % (wl, n, p))
            ms = r.get("misses", [])
            if ms and min(ms) != max(ms):
                odd.append("`%s/%s/%d`: misses varied between passes "
                           "(%.0f–%.0f)" % (wl, n, p, min(ms), max(ms)))
        if odd:
            w("Not deterministic in this run: " + "; ".join(odd) + ".")
            w()

    def section_memory(self):
        w = self.w
        w("## Memory")
        w()
        w("Peak RSS of the process: ru_maxrss of the implementation's own "
          "process over the whole suite (its largest moment: a 16 MiB "
          "buffer, 16 threads...). Growth during a workload: the kernel's "
          "RSS high-water mark during the benchmark (VmHWM, reset at its "
          "start) minus the RSS when it started, i.e. what the workload "
          "added; memory a malloc kept from earlier benchmarks and reuses "
          "does not count again, while each zeropool benchmark starts from a "
          "new pool. Faults: minor page faults of the process per op. "
          "Medians over the passes.")
        w()
        hwm = [("multisize", 0, 1, "growth, multi-size"),
               ("threads_64k", 64 << 10, 16, "growth, 16 threads × 64 KiB"),
               ("prodcons", 64 << 10, 1, "growth, prodcons 64 KiB")]
        rows = []
        for n in self.names:
            rss = self.d.peak_rss(n)
            if rss is None:
                continue
            peaks = [self.d.counter("rss_growth_mib", wl, n, p, t)
                     for wl, p, t, _ in hwm]
            f = [self.d.counter("faults", "cycle_full", n, s)
                 for s in (64 << 10, 1 << 20, 16 << 20)]
            label = "**%s**" % n if n == POOL_NAME else n
            rows.append([label, "%.1f MiB" % rss] +
                        ["%.1f MiB" % v if v is not None and v >= 0 else "–"
                         for v in peaks] + [fmt_num(x) for x in f])
        w(table(["implementation", "peak RSS of the process"] +
                [h[3] for h in hwm] +
                ["faults/op cycle_full 64 KiB", "1 MiB", "16 MiB"], rows))

    def section_impls(self):
        w = self.w
        w("## Implementations")
        w()
        rows = [["floor", "zp_bench", "one pre-faulted buffer: write + "
                 "explicit_bzero (no allocator)", "–"]]
        for im in self.impls:
            rows.append([im.name, im.exe, im.what,
                         "yes" if im.has(ZEROED) else "no"])
        w(table(["name", "executable", "get; put", "zeroed on get"], rows))

    def img_link(self, name):
        return os.path.relpath(os.path.join(self.args.img, name),
                               os.path.dirname(os.path.abspath(
                                   self.args.report)))


# ------------------------------------------------------------------ plots ----

def plots(data, impls, args):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        die("gnuplot not found (Debian: apt-get install gnuplot-nox)")
    os.makedirs(args.img, exist_ok=True)
    work = args.out
    names = ["floor"] + [im.name for im in impls]

    def write_dat(path, xs, series):
        with open(path, "w") as f:
            f.write("# x " + " ".join(n for n, _ in series) + "\n")
            for i, x in enumerate(xs):
                vals = []
                for _, ys in series:
                    y = ys[i]
                    vals.append("%.6g" % y if y else "NaN")
                f.write("%s %s\n" % (x, " ".join(vals)))

    def size_series(workload, floor):
        series = []
        for n in names:
            if n == "floor":
                ys = [data.ns(floor, "floor", s) for s in SIZES]
            else:
                ys = [data.ns(workload, n, s) for s in SIZES]
            if any(ys):
                series.append((n, ys))
        return series

    kib = [s // 1024 for s in SIZES]
    lat = size_series("cycle_full", "floor_full")
    floor = dict(lat).get("floor")
    rel = [(n, [y / f if y and f else None for y, f in zip(ys, floor)])
           for n, ys in lat] if floor else []
    write_dat(os.path.join(work, "plot-latency-rel.dat"), kib, rel)
    short = size_series("cycle_1k", "floor_1k")
    write_dat(os.path.join(work, "plot-latency.dat"), kib, lat)
    write_dat(os.path.join(work, "plot-short.dat"), kib, short)
    thr = {}
    for wl, s in (("threads_4k", 4 << 10), ("threads_64k", 64 << 10)):
        series = []
        for n in names:
            ys = [data.ns(wl, n, s, t) for t in THREADS]
            if any(ys):
                series.append((n, [1e3 / y if y else None for y in ys]))
        thr[wl] = series
        write_dat(os.path.join(work, "plot-%s.dat" % wl), THREADS, series)

    # One colour per family; the calloc variant dashed; zeropool thick.
    colours = {"floor": "#000000", "zeropool": "#1b7837",
               "zeropool-lifo": "#7fbf7b", "zeropool-clockpro": "#35978f",
               "glibc": "#e08214",
               "mimalloc": "#762a83", "jemalloc": "#2166ac",
               "tcmalloc": "#d6604d", "sodium": "#8c510a",
               "openssl-secure": "#878787"}

    def style(n):
        family = n.split("-")[0] if n.endswith(("-malloc", "-calloc")) else n
        lw = 3 if n == POOL_NAME else 1.5
        dt = 2 if n.endswith("-calloc") or n == "floor" else 1
        return "lw %g dt %d lc rgb '%s'" % (lw, dt,
                                            colours.get(family, "#000000"))

    def plot_cmd(dat, series):
        parts = []
        for i, (n, _) in enumerate(series):
            parts.append("'%s' using 1:%d with linespoints %s title '%s'"
                         % (dat, i + 2, style(n), n))
        return "plot " + ", \\\n  ".join(parts) + "\n"

    smoke = " (SMOKE RUN: not measurements)" if args.smoke else ""
    common = ("set terminal pngcairo size 1000,620 font 'sans,10'\n"
              "set grid\nset key outside right top\nset logscale xy 2\n"
              "set logscale y 10\nset format y '10^{%L}'\n")
    script = common
    script += ("set output '%s'\n" % os.path.join(args.img,
                                                  "bench-latency-size.png"))
    script += "set terminal pngcairo size 1000,1000 font 'sans,10'\n"
    script += ("set multiplot layout 2,1 title 'get, write the whole buffer, "
               "put: one thread, median of passes%s'\n" % smoke)
    script += "set title 'ns per cycle'\n"
    script += "set xlabel 'buffer size (KiB)'\nset ylabel 'ns per cycle'\n"
    script += plot_cmd(os.path.join(work, "plot-latency.dat"), lat)
    script += ("set title 'ns per cycle ÷ floor (write + explicit\\_bzero "
               "of the same bytes, no allocator); clipped at 8'\n"
               "set ylabel 'ratio to the floor'\nset yrange [0.8:8]\n"
               "set format y '%g'\nset ytics (0.8, 1, 1.15, 1.5, 2, 3, 4, "
               "6, 8)\n")
    script += plot_cmd(os.path.join(work, "plot-latency-rel.dat"), rel)
    script += ("unset multiplot\nset autoscale y\nset ytics auto\n"
               "set format y '10^{%L}'\nset ylabel 'ns per cycle'\n"
               "set terminal pngcairo size 1000,620 font 'sans,10'\n")
    script += ("set output '%s'\n" % os.path.join(args.img,
                                                  "bench-short-read.png"))
    script += ("set title '1 KiB written into a buffer of the given size, "
               "zp\\_put\\_used(1 KiB) / wipe 1 KiB: ns per cycle%s'\n"
               % smoke)
    script += plot_cmd(os.path.join(work, "plot-short.dat"), short)
    script += ("set output '%s'\n" % os.path.join(args.img,
                                                  "bench-threads.png"))
    script += "set terminal pngcairo size 1200,720 font 'sans,10'\n"
    script += ("set multiplot layout 1,2 title 'Total throughput, every "
               "thread cycling get/write/put on one shared instance, %s "
               "cores%s'\n" % (os.cpu_count(), smoke))
    script += "set key outside below horizontal maxcols 4 font ',8'\n"
    script += "set xlabel 'threads'\nset ylabel 'million cycles per second'\n"
    for wl, label in (("threads_4k", "4 KiB"), ("threads_64k", "64 KiB")):
        script += "set title '%s'\n" % label
        script += plot_cmd(os.path.join(work, "plot-%s.dat" % wl), thr[wl])
    script += "unset multiplot\n"
    gp = os.path.join(work, "plots.gp")
    with open(gp, "w") as f:
        f.write(script)
    r = subprocess.run([gnuplot, gp], capture_output=True, text=True)
    if r.returncode != 0:
        die("gnuplot failed:\n" + r.stderr)


# ------------------------------------------------------------------- main ----

def expected_keys(impls):
    """What every full or smoke run must produce (benchmarks whose size an
    implementation cannot serve are not registered: OpenSSL's heap)."""
    keys = {("floor_full", "floor", s, 1) for s in SIZES}
    for t in THREADS:
        keys.add(("threads_4k", "floor", 4 << 10, t))
        keys.add(("threads_64k", "floor", 64 << 10, t))
    for im in impls:
        big = im.name != "openssl-secure"  # the only one with max_size
        for s in SIZES:
            if s == 16 << 20 and not big:
                continue
            keys.add(("cycle_full", im.name, s, 1))
        for wl in ("pingpong", "hotcold", "multisize", "eviction", "churn"):
            keys.add((wl, im.name, 0, 1))
        keys.add(("eviction_budget", im.name, 320, 1))
        for t in THREADS:
            keys.add(("threads_4k", im.name, 4 << 10, t))
            keys.add(("threads_64k", im.name, 64 << 10, t))
        for wl in ("file_stream", "socket_echo"):
            keys.add((wl, im.name, 64 << 10, 1))
        for s in (4 << 10, 64 << 10):
            keys.add(("prodcons", im.name, s, 1))
            keys.add(("prodcons", "floor", s, 1))
        if im.has(POOL):
            for s in SIZES:
                keys.add(("bookkeeping", im.name, s, 1))
            for wl, _ in EVICT_WORKLOADS:
                for div in EVICT_DIVS:
                    keys.add((wl, im.name, div, 1))
    return keys


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release",
                                                    "bench"))
    ap.add_argument("--out", default=None,
                    help="JSON and logs (bench/results, or bench/results/"
                    "smoke with --smoke)")
    ap.add_argument("--report", default=None,
                    help="the Markdown report (BENCHMARKS.md; smoke: in "
                    "--out)")
    ap.add_argument("--img", default=None,
                    help="PNG plots (docs/img; smoke: --out/img)")
    ap.add_argument("--passes", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.05)
    ap.add_argument("--filter", default=None,
                    help="google-benchmark filter (partial runs)")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    if args.out is None:
        args.out = os.path.join(HERE, "results", "smoke" if args.smoke else "")
        args.out = args.out.rstrip("/")
    if args.report is None:
        args.report = (os.path.join(args.out, "BENCHMARKS.md") if args.smoke
                       else os.path.join(ROOT, "BENCHMARKS.md"))
    if args.img is None:
        args.img = (os.path.join(args.out, "img") if args.smoke
                    else os.path.join(ROOT, "docs", "img"))
    if args.smoke:
        args.passes = 1

    t0 = time.monotonic()
    impls = list_impls(args.build)
    if not args.report_only:
        if args.smoke:
            run_smoke(args)
        else:
            run_full(args, impls)
    results, contexts = load(args.out)
    data = Data(results)
    if args.report_only and not args.smoke:
        # Describe the run that produced the JSON, not today's defaults.
        try:
            with open(os.path.join(args.out, "run.json")) as f:
                run = json.load(f)
            args.passes, args.min_time = run["passes"], run["min_time"]
        except (OSError, ValueError, KeyError):
            pass
    impls = [im for im in impls if im.name != "floor"]  # a pseudo one
    info = machine_info(contexts)
    report = Report(data, impls, info, args).write()
    with open(args.report, "w") as f:
        f.write(report)
    plots(data, impls, args)
    with open(os.path.join(args.out, "merged.json"), "w") as f:
        json.dump({"machine": info,
                   "results": [{"workload": k[0], "impl": k[1], "param": k[2],
                                "threads": k[3], "median_ns": median(r["ns"]),
                                "samples_ns": r["ns"],
                                "wall_time": r["real"],
                                "counters": {c: median(r[c]) for c in COUNTERS
                                             if r.get(c)},
                                "errors": r["errors"]}
                               for k, r in sorted(results.items())]},
                  f, indent=1)
    print("zpb_run: wrote %s, plots in %s, merged JSON in %s (%.0fs)"
          % (os.path.relpath(args.report, ROOT), os.path.relpath(args.img,
                                                                  ROOT),
             os.path.relpath(args.out, ROOT), time.monotonic() - t0))

    problems = ["%s/%s/%d threads=%d: %s" % (k + (e[0],))
                for k, e in sorted(data.errors().items())]
    if not args.filter:
        missing = sorted(expected_keys(impls) - {
            k for k, r in results.items() if r["ns"]})
        problems += ["%s/%s/%d threads=%d: missing" % k for k in missing]
    if problems:
        print("zpb_run: %d benchmark(s) failed or are missing:\n  %s"
              % (len(problems), "\n  ".join(problems)), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
