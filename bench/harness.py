"""Shared benchmark harness for pyframe and its peers.

A benchmark script does, in this order:

    from harness import reexec_clean_env
    reexec_clean_env()            # before numpy, torch or pyframe are imported
    from harness import Bench
    bench = Bench("creation")     # parses flags, imports libraries, pins threads
    np, torch, pf = bench.numpy, bench.torch, bench.pyframe   # None if absent
    bench.case("zeros((4,4))", pyframe=lambda: pf.zeros((4, 4)),
               numpy=lambda: np.zeros((4, 4), np.float32),
               torch=lambda: torch.zeros((4, 4)))

Competitors of one case run round-robin (every round runs each once, the
starting competitor rotating), so drift in machine speed hits all of them
alike. Each sample is a batch of calls, calibrated to last about 10 ms.
"""
import argparse
import atexit
import gc
import io
import itertools
import json
import os
import platform
import re
import statistics
import sys
from contextlib import redirect_stdout
from time import perf_counter_ns

LIBRARIES = ("pyframe", "numpy", "torch")
# OpenBLAS reads these once, when it is loaded; a benchmark must not run on a
# core type or cache size forced by whoever set up the shell or CI.
_UNSET_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
_REEXEC_GUARD = "PYFRAME_BENCH_REEXEC"
TARGET_SAMPLE_NS = 10_000_000  # calibrated samples land in ~5-20 ms


def _parse_args(known_only=False):
    p = argparse.ArgumentParser(description="pyframe benchmark (ratio = pyframe / peer; < 1 means pyframe is faster)")
    p.add_argument("--quick", action="store_true", help="few rounds: a smoke test, not a measurement")
    p.add_argument("--filter", default="", metavar="SUBSTR", help="run only cases whose name contains SUBSTR")
    p.add_argument("--json-only", action="store_true", help="print only the BENCH_JSON lines")
    p.add_argument("--rounds", type=int, default=None, help="measured rounds (default 40, 5 with --quick)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every library (default: all cores)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where benchmarks that support it run (default: cpu)")
    p.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"), help="mixed precision for the training benchmarks: autocast to this dtype (default: none)")
    return p.parse_known_args()[0] if known_only else p.parse_args()


def reexec_clean_env():
    """Re-execute this script with OpenBLAS overrides unset and thread counts pinned.

    Must be called before numpy/torch/pyframe are imported: OpenBLAS reads its
    environment only when it loads. Benchmark scripts only; tests and CI must
    never call this.
    """
    threads = str(_parse_args(known_only=True).threads)
    reexeced = os.environ.pop(_REEXEC_GUARD, None)
    if all(v not in os.environ for v in _UNSET_VARS) and all(os.environ.get(v) == threads for v in _THREAD_VARS):
        return
    if reexeced:  # the environment did not stick: run as is rather than loop
        print("warning: could not clean the OpenBLAS environment", file=sys.stderr)
        return
    for v in _UNSET_VARS:
        os.environ.pop(v, None)
    for v in _THREAD_VARS:
        os.environ[v] = threads
    os.environ[_REEXEC_GUARD] = "1"
    sys.stdout.flush()
    # orig_argv keeps interpreter flags and "-m module"; [0] may be a bare "python".
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def _import(name):
    try:
        mod = __import__(name)
    except Exception as e:  # ImportError, or OSError from a missing shared library
        return None, f"{type(e).__name__}: {e}"
    if getattr(mod, "__file__", None) is None:  # a bare directory on sys.path, e.g. a source tree
        return None, f"{name} is a namespace package (no __init__.py), not the real library"
    return mod, None


def _find_core(obj):
    """First value under a key containing 'core' in nested dicts, else None."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if "core" in str(k).lower() and isinstance(v, str):
                return v
            found = _find_core(v)
            if found:
                return found
    return None


def openblas_core(pf):
    """OpenBLAS core name as pyframe reports it, or None; never raises."""
    if pf is None:
        return None
    for getter in ("config", "show_config"):
        fn = getattr(pf, getter, None)
        if not callable(fn):
            continue
        try:
            buf = io.StringIO()
            with redirect_stdout(buf):
                ret = fn()
            core = _find_core(ret)
            m = re.search(r"core\w*\W+([A-Za-z][\w-]*)", buf.getvalue() + (ret if isinstance(ret, str) else ""),
                          re.IGNORECASE)
            if core or m:
                return core or m.group(1)
        except Exception:
            pass
    return None


def _sample(fn, number):
    it = itertools.repeat(None, number)
    t0 = perf_counter_ns()
    for _ in it:
        fn()
    return perf_counter_ns() - t0


def _calibrate(fn):
    fn()  # first calls may initialise caches or lazy kernels: never calibrate on them
    number = 1
    while True:
        t = _sample(fn, number)
        if t >= TARGET_SAMPLE_NS // 2:
            return number
        # aim at 10 ms, but grow at most tenfold per step: early calls may be slow
        number = max(number * 2, min(number * 10, number * TARGET_SAMPLE_NS // max(t, 1)))


def fmt_ns(ns):
    if ns is None:
        return "-"
    for unit, scale in (("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.0f} ns"


class Bench:
    def __init__(self, name, libraries=LIBRARIES, references=()):
        """references: extra competitors that are not libraries to import (a raw
        OpenBLAS call, a STREAM triad); they are always present."""
        self.name = name
        self.args = _parse_args()
        self.rounds = max(2, self.args.rounds or (5 if self.args.quick else 40))  # quartiles need 2
        self.warmup = 1 if self.args.quick else 3
        self.libs, self.skipped = {}, {}
        for lib in libraries:
            self.libs[lib], why = _import(lib)
            if why:
                self.skipped[lib] = why
        self.numpy, self.torch, self.pyframe = (self.libs.get(k) for k in ("numpy", "torch", "pyframe"))
        for ref in references:
            self.libs[ref] = True
        self.threads = self.args.threads
        unpinned = []  # numpy's OpenBLAS is pinned through the environment by reexec_clean_env
        for lib in ("torch", "pyframe"):
            fn = getattr(self.libs.get(lib), "set_num_threads", None)
            if fn:
                fn(self.threads)
            elif self.libs.get(lib):
                unpinned.append(lib)
        self.meta = {
            "versions": {"python": platform.python_version(),
                         **{k: getattr(v, "__version__", "?") for k, v in self.libs.items()
                            if v and k not in references}},
            "openblas_core": openblas_core(self.pyframe),
            "threads": self.threads,
            "threads_unpinned": unpinned,
            "machine": platform.machine(),
        }
        self.call_overhead_ns = self._measure(lambda: None)[0][0][0]
        self._cols = [k for k in self.libs if self.libs[k]]
        self._peers = [k for k in self._cols if k != "pyframe"] if self.pyframe else []
        self.records = []
        atexit.register(self._print_json)  # after the table, even if a later case fails
        self._header()

    def _print_json(self):
        for record in self.records:
            print("BENCH_JSON " + json.dumps(record))
        sys.stdout.flush()

    def _header(self):
        if self.args.json_only:
            return
        print(f"== bench {self.name}: per-call median (IQR as % of median), {self.rounds} rounds"
              f"{' [--quick: smoke test, not a measurement]' if self.args.quick else ''}")
        print("   ratio = pyframe median / peer median; < 1 means pyframe is faster")
        print("   " + "  ".join(f"{k}={v}" for k, v in self.meta["versions"].items())
              + "".join(f"  {k}={self.meta[k]}" for k in ("openblas_core", "threads", "machine")))
        print(f"   every time includes ~{self.call_overhead_ns:.0f} ns of Python call overhead, the same for all")
        if self.meta["threads_unpinned"]:
            print(f"   threads not pinned (no set_num_threads): {', '.join(self.meta['threads_unpinned'])}")
        for lib, why in self.skipped.items():
            hint = "; pip install -e . or PYTHONPATH=<repo root>" if lib == "pyframe" else ""
            print(f"   skipped {lib}: not importable ({why}{hint})")
        print(f"{'case':<30}" + "".join(f"{c:>20}" for c in self._cols)
              + "".join(f"{'pf/' + p:>11}" for p in self._peers), flush=True)

    def _measure(self, *fns):
        """Round-robin over fns; returns per-call (median, iqr) in ns for each, and numbers."""
        numbers = [_calibrate(fn) for fn in fns]
        samples = [[] for _ in fns]
        gc.collect()
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for r in range(self.warmup + self.rounds):
                for j in range(len(fns)):
                    i = (r + j) % len(fns)  # rotate who goes first
                    t = _sample(fns[i], numbers[i]) / numbers[i]
                    if r >= self.warmup:
                        samples[i].append(t)
        finally:
            if gc_was_enabled:
                gc.enable()
        stats = []
        for s in samples:
            q1, med, q3 = statistics.quantiles(s, n=4, method="inclusive")
            stats.append((med, q3 - q1))
        return stats, numbers

    def setup(self, lib, fn):
        """fn() if library lib is present, else None; a failure is reported, not raised."""
        if self.libs.get(lib) is None:
            return None
        try:
            return fn()
        except Exception as e:
            self._note(f"setup for {lib} failed: {type(e).__name__}: {e}")
            return None

    def _note(self, msg):
        if not self.args.json_only:
            print(f"   note: {msg}", flush=True)

    def case(self, case, **competitors):
        """Time one case. Keyword = library name, value = zero-argument callable (or None)."""
        if self.args.filter not in case:
            return None
        unknown = set(competitors) - set(self.libs)
        if unknown:
            raise ValueError(f"case {case!r}: unknown competitors {sorted(unknown)}; expected some of {list(self.libs)}")
        run, errors = {}, {}
        for k, fn in competitors.items():
            if fn is None or self.libs[k] is None:
                continue
            try:  # a library under development may lack an API: report it, time the rest
                fn()
                run[k] = fn
            except Exception as e:
                errors[k] = f"{type(e).__name__}: {e}"
                self._note(f"{case}: {k} raised {errors[k]}")
        if not run:
            return None
        stats, numbers = self._measure(*run.values())
        med = {k: s[0] for k, s in zip(run, stats)}
        iqr = {k: s[1] for k, s in zip(run, stats)}
        ratios = {p: med["pyframe"] / m for p, m in med.items() if p != "pyframe" and "pyframe" in med}
        record = {"benchmark": self.name, "case": case, "unit": "ns/call",
                  "median": {k: round(v, 1) for k, v in med.items()},
                  "iqr": {k: round(v, 1) for k, v in iqr.items()},
                  "ratio_pyframe_over": {k: round(v, 3) for k, v in ratios.items()},
                  "calls_per_sample": dict(zip(run, numbers)), "errors": errors, "rounds": self.rounds,
                  "quick": self.args.quick, "skipped": sorted(self.skipped),
                  "call_overhead_ns": round(self.call_overhead_ns, 1), **self.meta}
        if not self.args.json_only:
            cells = [f"{fmt_ns(med[c])} ({100 * iqr[c] / med[c]:.0f}%)" if c in med else "-" for c in self._cols]
            rcells = [f"{ratios[p]:.2f}" if p in ratios else "-" for p in self._peers]
            print(f"{case:<30}" + "".join(f"{c:>20}" for c in cells) + "".join(f"{c:>11}" for c in rcells),
                  flush=True)
        self.records.append(record)
        return record


def alternating_times(comp, rounds, reps, sync):
    """Per-call seconds of each zero-argument callable in `comp`, `rounds` samples each.

    Each sample runs one competitor `reps` times between two calls of `sync` (a device
    synchronisation: GPU work is timed to its end), and the order rotates every round so
    that no competitor always runs after the same one.  Returns {name: [seconds per call]}.
    """
    times = {k: [] for k in comp}
    names = list(comp)
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            sync()
            t0 = perf_counter_ns()
            for _ in range(reps):
                comp[k]()
            sync()
            times[k].append((perf_counter_ns() - t0) * 1e-9 / reps)
    return times
