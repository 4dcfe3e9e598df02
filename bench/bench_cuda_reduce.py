"""CUDA reductions: pyframe against torch (where it has CUDA), as bandwidth.

Each case reads its input once per pass (var and logsumexp make two): GB/s is the bytes of
the input read per call over the median time, also as a percentage of the H100 SXM's HBM3
bandwidth (3.35 TB/s).  The shapes reach each kernel: one output from 64M elements (the
segmented rows), rows of 8192 (a block per output), the outer axis of (8192, 8192) (the
column kernel) and short rows of 8 (a thread per output).

Competitors alternate round by round; each sample times `reps` calls between two device
synchronisations.  One BENCH_JSON line at the end.  Without a usable GPU it prints why and
exits 0.

Run: python bench/bench_cuda_reduce.py [--quick]
"""
import argparse
import json
import os
import statistics
import sys

import numpy as np

import pyframe as pf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import alternating_times  # noqa: E402


def _sync(torch):
    """Wait for both libraries' queued GPU work."""
    pf.cuda.synchronize()
    if torch is not None:
        torch.cuda.synchronize()

H100_HBM_BYTES_PER_S = 3.35e12


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 rounds: a smoke test")
    args = p.parse_args()
    if not pf.cuda.is_available():
        print("bench_cuda_reduce: skipped, no usable CUDA GPU: " + pf.cuda.status())
        return 0
    try:
        import torch
        torch = torch if torch.cuda.is_available() else None
    except ImportError:
        torch = None
    rounds = 3 if args.quick else 15
    rng = np.random.default_rng(0)
    cases = [
        ("sum 64M", (1 << 26,), None, "sum", 1),
        ("max 64M", (1 << 26,), None, "max", 1),
        ("argmax 64M", (1 << 26,), 0, "argmax", 1),
        ("var 64M", (1 << 26,), None, "var", 2),
        ("sum (8192, 8192) axis 1", (8192, 8192), 1, "sum", 1),
        ("sum (8192, 8192) axis 0", (8192, 8192), 0, "sum", 1),
        ("logsumexp (8192, 8192) axis 1", (8192, 8192), 1, "logsumexp", 2),
        ("sum (8M, 8) axis 1", (1 << 23, 8), 1, "sum", 1),
    ]
    rows = []
    print(f"device: {pf.cuda.status()}\ntorch: {torch.__version__ if torch else 'none with CUDA'}")
    for name, shape, axis, op, passes in cases:
        x = rng.standard_normal(shape, dtype=np.float32)
        d = pf.tensor(x).to("cuda")
        comp = {"pyframe": lambda d=d, op=op, axis=axis: getattr(pf, op)(d, axis=axis)}
        if torch is not None:
            t = torch.from_numpy(x).to("cuda")
            tfn = {"sum": torch.sum, "max": torch.amax, "argmax": torch.argmax,
                   "var": lambda v, dim: torch.var(v, dim=dim, unbiased=False),
                   "logsumexp": torch.logsumexp}[op]
            dims = tuple(range(len(shape))) if axis is None else axis
            if op == "argmax" and axis is None:
                dims = None
            comp["torch"] = lambda t=t, tfn=tfn, dims=dims: tfn(t, dim=dims)
        for fn in comp.values():
            fn()
        pf.cuda.synchronize()
        reps = 20
        times = alternating_times(comp, rounds, reps, lambda: _sync(torch))
        names = list(comp)
        nbytes = x.nbytes * passes
        for k in names:
            med = statistics.median(times[k])
            row = {"case": name, "impl": k, "median_ms": round(med * 1e3, 4),
                   "gb_per_s": round(nbytes / med / 1e9, 1),
                   "pct_h100_hbm": round(100 * nbytes / med / H100_HBM_BYTES_PER_S, 1)}
            if k != "pyframe":
                row["ratio_pyframe_over"] = round(statistics.median(times["pyframe"]) / med, 3)
            rows.append(row)
            print(f"{name:>32} {k:>8}: {med * 1e3:8.3f} ms  {row['gb_per_s']:7.1f} GB/s  "
                  f"{row['pct_h100_hbm']:5.1f}% of HBM"
                  + (f"  pyframe/{k} {row['ratio_pyframe_over']:.3f}"
                     if "ratio_pyframe_over" in row else ""))
    print("BENCH_JSON " + json.dumps({"bench": "cuda_reduce", "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
