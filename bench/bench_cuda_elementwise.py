"""Elementwise ops and casts on a CUDA device: pyframe vs PyTorch (torch.cuda).

Each call is followed by a device synchronisation on both sides, so a sample times the
kernels, not the queueing. The 16M-element cases are memory-bound (a float32 add moves
192 MB per call); the 4-element case is the per-op cost (dispatch plus one launch); the
strided, broadcast, scalar, half-precision, mixed-dtype and cast cases show the paths of
csrc/ew_cuda.c (docs/architecture.md, "CUDA backend: elementwise ops").

For the memory-bound cases it also prints the bytes moved per second (every input read
once, the output written once) as a share of the H100's 3.35 TB/s HBM3 peak: issue 8's
goal is >= 75%.

Needs a GPU (and torch with CUDA for the ratios); without one it says so and exits.
Run: python bench/bench_cuda_elementwise.py [--quick] [--filter S]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import reexec_clean_env  # noqa: E402

reexec_clean_env()

from harness import Bench  # noqa: E402

PEAK_BYTES_PER_S = 3.35e12     # H100 SXM HBM3


def bandwidth(rec, nbytes):
    """Print GB/s and the share of the H100's peak of each competitor of a timed case."""
    if rec is None:
        return
    parts = ["%s %.0f GB/s = %.0f%%" % (k, nbytes / (ns * 1e-9) / 1e9,
                                         100 * nbytes / (ns * 1e-9) / PEAK_BYTES_PER_S)
             for k, ns in rec["median"].items()]
    print("   %s: %s of 3.35 TB/s" % (rec["case"], "; ".join(parts)))


def main():
    import numpy as np

    bench = Bench("cuda_elementwise", libraries=("pyframe", "torch"))
    torch, pf = bench.torch, bench.pyframe
    if pf is None or not pf.cuda.is_available():
        print("bench_cuda_elementwise: no usable GPU here (%s); nothing measured" %
              (pf.cuda.status() if pf else "pyframe is not importable"))
        return
    if torch is not None and not torch.cuda.is_available():
        torch = None
    rng = np.random.default_rng(0)
    n = 1 << 24

    def pair(shape, dtype="float32"):
        a = rng.standard_normal(shape).astype(np.float32)
        p = pf.tensor(a).astype(dtype).to("cuda")
        t = torch.from_numpy(a).to("cuda").to(getattr(torch, dtype)) if torch else None
        return p, t

    def sync_pf(fn):
        return lambda: (fn(), pf.cuda.synchronize())

    def sync_torch(fn):
        return (lambda: (fn(), torch.cuda.synchronize())) if torch else None

    x, tx = pair((n,))
    y, ty = pair((n,))
    bandwidth(bench.case("add f32 16M", pyframe=sync_pf(lambda: x + y),
                         torch=sync_torch(lambda: tx + ty)), 3 * 4 * n)
    bandwidth(bench.case("mul scalar f32 16M", pyframe=sync_pf(lambda: x * 2.0),
                         torch=sync_torch(lambda: tx * 2.0)), 2 * 4 * n)
    bandwidth(bench.case("exp f32 16M", pyframe=sync_pf(lambda: pf.exp(x)),
                         torch=sync_torch(lambda: torch.exp(tx))), 2 * 4 * n)
    m, tm = pair((4096, 4096))
    r, tr = pair((4096,))
    bench.case("add row broadcast 4096^2", pyframe=sync_pf(lambda: m + r),
               torch=sync_torch(lambda: tm + tr))
    bench.case("add transposed 4096^2", pyframe=sync_pf(lambda: m.T + m),
               torch=sync_torch(lambda: tm.T + tm))
    h, th = pair((n,), "float16")
    bench.case("gelu f16 16M", pyframe=sync_pf(lambda: pf.gelu(h, approximate="tanh")),
               torch=sync_torch(lambda: torch.nn.functional.gelu(th, approximate="tanh")))
    b, tb = pair((n,), "bfloat16")
    bandwidth(bench.case("add bf16 16M", pyframe=sync_pf(lambda: b + b),
                         torch=sync_torch(lambda: tb + tb)), 3 * 2 * n)
    i, ti = pair((n,), "int32")
    bench.case("int32 + f32 16M (mixed)", pyframe=sync_pf(lambda: i + x),
               torch=sync_torch(lambda: ti + tx))
    bench.case("astype f32->f16 16M", pyframe=sync_pf(lambda: x.astype(pf.float16)),
               torch=sync_torch(lambda: tx.to(torch.float16)))
    s, ts = pair((4,))
    bench.case("add 4 elements", pyframe=sync_pf(lambda: s + s), torch=sync_torch(lambda: ts + ts))


if __name__ == "__main__":
    main()
