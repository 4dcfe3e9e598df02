"""Small-tensor creation and NumPy round trips: pyframe vs NumPy vs PyTorch.

At these sizes the work is a few hundred bytes, so the numbers measure
per-call overhead: argument parsing, dtype inference, allocation, and the
bridge to NumPy. Run: python bench/bench_creation.py [--quick] [--filter S]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # also works as python -m bench.bench_creation
from harness import reexec_clean_env  # noqa: E402

reexec_clean_env()  # before numpy, torch or pyframe load OpenBLAS

from harness import Bench  # noqa: E402


def main():
    bench = Bench("creation")
    np, torch, pf = bench.numpy, bench.torch, bench.pyframe

    list8 = [0.5 * i for i in range(8)]
    list16x16 = [[float(16 * i + j) for j in range(16)] for i in range(16)]
    rng = np.random.default_rng(0)
    a64 = rng.standard_normal(64, dtype=np.float32)
    a8x8 = a64.reshape(8, 8)
    # Tensors that own their memory, for the to-NumPy and view rows.
    t_pf = bench.setup("pyframe", lambda: pf.zeros((8, 8)))
    t_torch = bench.setup("torch", lambda: torch.zeros((8, 8)))

    bench.case("tensor(list of 8 floats)",
               pyframe=lambda: pf.tensor(list8),
               numpy=lambda: np.array(list8, dtype=np.float32),
               torch=lambda: torch.tensor(list8))
    bench.case("tensor(16x16 nested list)",
               pyframe=lambda: pf.tensor(list16x16),
               numpy=lambda: np.array(list16x16, dtype=np.float32),
               torch=lambda: torch.tensor(list16x16))
    bench.case("zeros((4,4))",
               pyframe=lambda: pf.zeros((4, 4)),
               numpy=lambda: np.zeros((4, 4), np.float32),
               torch=lambda: torch.zeros((4, 4)))
    # Default dtypes on all three (int64 for NumPy and PyTorch).
    bench.case("arange(64)",
               pyframe=lambda: pf.arange(64),
               numpy=lambda: np.arange(64),
               torch=lambda: torch.arange(64))
    bench.case("full((8,8), 3.0)",
               pyframe=lambda: pf.full((8, 8), 3.0),
               numpy=lambda: np.full((8, 8), 3.0, np.float32),
               torch=lambda: torch.full((8, 8), 3.0))
    bench.case("randn(64)",
               pyframe=lambda: pf.randn(64),
               numpy=lambda: rng.standard_normal(64, dtype=np.float32),
               torch=lambda: torch.randn(64))
    # NumPy has nothing to wrap: np.asarray(a) of an ndarray is the floor.
    bench.case("from_numpy(a) zero-copy",
               pyframe=lambda: pf.from_numpy(a64),
               numpy=lambda: np.asarray(a64),
               torch=lambda: torch.from_numpy(a64))
    bench.case("to numpy: np.asarray(t)",
               pyframe=lambda: np.asarray(t_pf),
               numpy=lambda: np.asarray(a8x8),
               torch=lambda: np.asarray(t_torch))
    # PyTorch's fastest route out is t.numpy(); pyframe's is np.asarray(t).
    bench.case("to numpy: torch t.numpy()",
               pyframe=lambda: np.asarray(t_pf),
               torch=lambda: t_torch.numpy())
    bench.case("round trip numpy->t->numpy",
               pyframe=lambda: np.asarray(pf.from_numpy(a64)),
               numpy=lambda: np.asarray(np.asarray(a64)),
               torch=lambda: torch.from_numpy(a64).numpy())
    bench.case("view: t.reshape(4,16)",
               pyframe=lambda: t_pf.reshape(4, 16),
               numpy=lambda: a8x8.reshape(4, 16),
               torch=lambda: t_torch.reshape(4, 16))
    bench.case("view: t[1:3]",
               pyframe=lambda: t_pf[1:3],
               numpy=lambda: a8x8[1:3],
               torch=lambda: t_torch[1:3])


if __name__ == "__main__":
    main()
