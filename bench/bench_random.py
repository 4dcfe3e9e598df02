"""The random draws on the cpu: pyframe vs NumPy vs PyTorch at 1M elements.

pyframe computes them through csrc/kernels/philox.h (Philox 4x32-10, Box-Muller with its
own log and sin/cos), the code the CUDA kernels share.  To compare two builds of pyframe
(say before and after a change to that header), run this script alternately with each on
PYTHONPATH and compare the pyframe medians of the JSON lines.
Run: python bench/bench_random.py [--quick] [--filter S] [--threads N]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import reexec_clean_env  # noqa: E402

reexec_clean_env()  # before numpy, torch or pyframe load OpenBLAS

from harness import Bench  # noqa: E402

N = 1 << 20


def main():
    bench = Bench("random")
    np, torch, pf = bench.numpy, bench.torch, bench.pyframe
    rng = np.random.default_rng(0) if np else None
    x_pf = bench.setup("pyframe", lambda: pf.ones(N))
    x_torch = bench.setup("torch", lambda: torch.ones(N))
    bench.case("rand(1M) float32",
               pyframe=lambda: pf.rand(N),
               numpy=lambda: rng.random(N, dtype=np.float32),
               torch=lambda: torch.rand(N))
    bench.case("randn(1M) float32",
               pyframe=lambda: pf.randn(N),
               numpy=lambda: rng.standard_normal(N, dtype=np.float32),
               torch=lambda: torch.randn(N))
    bench.case("randn(1M) float64",
               pyframe=lambda: pf.randn(N, dtype=pf.float64),
               numpy=lambda: rng.standard_normal(N),
               torch=lambda: torch.randn(N, dtype=torch.float64))
    bench.case("randint(0, 1000, 1M)",
               pyframe=lambda: pf.randint(0, 1000, (N,)),
               numpy=lambda: rng.integers(0, 1000, N),
               torch=lambda: torch.randint(0, 1000, (N,)))
    bench.case("dropout(1M, p=0.5)",
               pyframe=lambda: pf.nn.functional.dropout(x_pf, 0.5, training=True),
               torch=lambda: torch.nn.functional.dropout(x_torch, 0.5, training=True))


if __name__ == "__main__":
    main()
