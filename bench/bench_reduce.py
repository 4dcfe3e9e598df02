"""Reductions, scans and softmax: pyframe vs NumPy vs PyTorch.

The 16M-float32 cases are memory-bound (64 MB read per call); the others
show the loop paths: rows reduced in place, the "reduce the outer axis"
column path, short rows, gathered regions, and the small-tensor overhead.
NumPy has no softmax or logsumexp: those cases compare with PyTorch only.
Run: python bench/bench_reduce.py [--quick] [--filter S] [--threads N]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # also works as python -m bench.bench_reduce
from harness import reexec_clean_env  # noqa: E402

reexec_clean_env()  # before numpy, torch or pyframe load OpenBLAS

from harness import Bench  # noqa: E402


def main():
    bench = Bench("reduce")
    np, torch, pf = bench.numpy, bench.torch, bench.pyframe
    rng = np.random.default_rng(0)
    arrays = {}

    def data(shape):
        if shape not in arrays:
            arrays[shape] = rng.standard_normal(shape, dtype=np.float32)
        a = arrays[shape]
        return a, bench.setup("pyframe", lambda: pf.from_numpy(a)), \
            bench.setup("torch", lambda: torch.from_numpy(a))

    def both(name, shape, pf_fn, np_fn, torch_fn):
        a, t, tt = data(shape)
        bench.case(name,
                   pyframe=(lambda: pf_fn(t)) if t is not None else None,
                   numpy=(lambda: np_fn(a)) if np_fn else None,
                   torch=(lambda: torch_fn(tt)) if tt is not None else None)

    n = 1 << 24
    both("sum 16M", (n,), lambda t: pf.sum(t), np.sum, torch.sum if torch else None)
    both("max 16M", (n,), lambda t: pf.max(t), np.max, torch.amax if torch else None)
    both("softmax 16M (one row)", (n,), lambda t: pf.softmax(t), None,
         lambda t: torch.softmax(t, 0))
    both("softmax (16384, 1024) axis -1", (16384, 1024), lambda t: pf.softmax(t, axis=-1), None,
         lambda t: torch.softmax(t, -1))
    both("softmax (4096, 4096) axis 0", (4096, 4096), lambda t: pf.softmax(t, axis=0), None,
         lambda t: torch.softmax(t, 0))
    both("sum (4096, 4096) axis 0", (4096, 4096), lambda t: pf.sum(t, axis=0),
         lambda a: a.sum(axis=0), lambda t: t.sum(0))
    both("sum (4096, 4096) axis 1", (4096, 4096), lambda t: pf.sum(t, axis=1),
         lambda a: a.sum(axis=1), lambda t: t.sum(1))
    both("sum (4M, 4) axis 1", (n // 4, 4), lambda t: pf.sum(t, axis=1),
         lambda a: a.sum(axis=1), lambda t: t.sum(1))
    both("sum (4M, 4) axis 0", (n // 4, 4), lambda t: pf.sum(t, axis=0),
         lambda a: a.sum(axis=0), lambda t: t.sum(0))
    both("mean (256,256,256) axes (0,2)", (256, 256, 256), lambda t: pf.mean(t, axis=(0, 2)),
         lambda a: a.mean(axis=(0, 2)), lambda t: t.mean((0, 2)))
    both("var 16M", (n,), lambda t: pf.var(t), np.var,
         lambda t: torch.var(t, correction=0))
    both("argmax 16M", (n,), lambda t: pf.argmax(t), np.argmax, torch.argmax if torch else None)
    both("logsumexp 16M", (n,), lambda t: pf.logsumexp(t), None,
         lambda t: torch.logsumexp(t, 0))
    both("cumsum 16M", (n,), lambda t: pf.cumsum(t), np.cumsum, lambda t: torch.cumsum(t, 0))
    both("sum of 4 elements", (4,), lambda t: pf.sum(t), np.sum, torch.sum if torch else None)
    both("softmax (8, 10)", (8, 10), lambda t: pf.softmax(t), None,
         lambda t: torch.softmax(t, -1))


if __name__ == "__main__":
    main()
