"""Gathers, scatters, indexing and sorts on a CUDA device: pyframe vs torch.cuda, with
pyframe on the cpu as a third column (pf_cpu).

Every callable ends with a device synchronisation (pf.cuda.synchronize,
torch.cuda.synchronize), so a sample is the op's whole device time plus the launch
overheads; the ops that check indices on the device (raise mode) or size their output
(nonzero, masks, unique) already wait once inside.  Needs a GPU: without one it prints why
and exits.  Run: python bench/bench_cuda_gather.py [--quick] [--filter S]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import reexec_clean_env  # noqa: E402

reexec_clean_env()

from harness import Bench  # noqa: E402


def main():
    import pyframe as pf
    if not pf.cuda.is_available():
        print("bench_cuda_gather: needs a usable CUDA GPU; here: " + pf.cuda.status())
        return
    bench = Bench("cuda_gather", references=("pf_cpu",))
    np, torch = bench.numpy, bench.torch
    tcuda = torch is not None and torch.cuda.is_available()
    rng = np.random.default_rng(0)

    def pf_sync(fn):
        return lambda: (fn(), pf.cuda.synchronize())

    def t_sync(fn):
        return (lambda: (fn(), torch.cuda.synchronize())) if tcuda else None

    def arrays(a):
        """(pyframe cuda, pyframe cpu, torch cuda) versions of ndarray a."""
        c = pf.tensor(a)
        return c.to("cuda"), c, (torch.from_numpy(a).cuda() if tcuda else None)

    x, xc, xt = arrays(rng.standard_normal((4096, 512), dtype=np.float32))
    rows, rowsc, rowst = arrays(rng.integers(0, 4096, 8192))
    bench.case("index_select 8192 rows of 4096x512",
               pyframe=pf_sync(lambda: pf.index_select(x, 0, rows)),
               pf_cpu=lambda: pf.index_select(xc, 0, rowsc),
               torch=t_sync(lambda: torch.index_select(xt, 0, rowst)))
    bench.case("x[idx] 8192 rows",
               pyframe=pf_sync(lambda: x[rows]), pf_cpu=lambda: xc[rowsc],
               torch=t_sync(lambda: xt[rowst]))
    i, ic, it = arrays(rng.integers(0, 512, (4096, 64)))
    bench.case("gather 4096x512 -> 4096x64",
               pyframe=pf_sync(lambda: pf.gather(x, 1, i)), pf_cpu=lambda: pf.gather(xc, 1, ic),
               torch=t_sync(lambda: torch.gather(xt, 1, it)))
    s, sc, st = arrays(rng.standard_normal((4096, 64), dtype=np.float32))
    bench.case("scatter_add 4096x64 into 4096x512",
               pyframe=pf_sync(lambda: pf.scatter_add(x, 1, i, s)),
               pf_cpu=lambda: pf.scatter_add(xc, 1, ic, sc),
               torch=t_sync(lambda: torch.scatter_add(xt, 1, it, st)))
    lab, labc, labt = arrays(rng.integers(0, 1000, 65536))
    bench.case("one_hot 65536 x 1000 classes",
               pyframe=pf_sync(lambda: pf.one_hot(lab, 1000)),
               pf_cpu=lambda: pf.one_hot(labc, 1000),
               torch=t_sync(lambda: torch.nn.functional.one_hot(labt, 1000)))
    m, mc, mt = arrays(rng.random((4096, 512)) < 0.5)
    bench.case("masked_fill 4096x512",
               pyframe=pf_sync(lambda: pf.masked_fill(x, m, 0.0)),
               pf_cpu=lambda: pf.masked_fill(xc, mc, 0.0),
               torch=t_sync(lambda: xt.masked_fill(mt, 0.0)))
    bench.case("x[mask] 2M elements",
               pyframe=pf_sync(lambda: x[m]), pf_cpu=lambda: xc[mc],
               torch=t_sync(lambda: xt[mt]))
    bench.case("argwhere 2M elements",
               pyframe=pf_sync(lambda: pf.argwhere(m)), pf_cpu=lambda: pf.argwhere(mc),
               torch=t_sync(lambda: torch.argwhere(mt)))
    v, vc, vt = arrays(rng.standard_normal((1000, 1000), dtype=np.float32))
    bench.case("sort rows 1000x1000",
               pyframe=pf_sync(lambda: pf.sort(v)), pf_cpu=lambda: pf.sort(vc),
               torch=t_sync(lambda: torch.sort(vt, stable=True)))
    bench.case("topk k=10 rows 1000x1000",
               pyframe=pf_sync(lambda: pf.topk(v, 10)), pf_cpu=lambda: pf.topk(vc, 10),
               torch=t_sync(lambda: torch.topk(vt, 10)))
    big, bigc, bigt = arrays(rng.standard_normal(1 << 20, dtype=np.float32))
    bench.case("sort 1M float32 (one row)",
               pyframe=pf_sync(lambda: pf.sort(big)), pf_cpu=lambda: pf.sort(bigc),
               torch=t_sync(lambda: torch.sort(bigt, stable=True)))
    u, uc, ut = arrays(rng.integers(0, 1000, 1 << 20))
    bench.case("unique 1M ints in [0, 1000)",
               pyframe=pf_sync(lambda: pf.unique(u)), pf_cpu=lambda: pf.unique(uc),
               torch=t_sync(lambda: torch.unique(ut)))


if __name__ == "__main__":
    main()
