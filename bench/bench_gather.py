"""Indexing, gathering, scattering and sorting: pyframe vs NumPy vs PyTorch.

Small cases measure per-call overhead (key parsing, index conversion);
large ones the gather/scatter loops and the sort. Run:
python bench/bench_gather.py [--quick] [--filter S]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import reexec_clean_env  # noqa: E402

reexec_clean_env()  # before numpy, torch or pyframe load OpenBLAS

from harness import Bench  # noqa: E402


def main():
    bench = Bench("gather")
    np, torch, pf = bench.numpy, bench.torch, bench.pyframe
    rng = np.random.default_rng(0)

    def trio(a):
        """(ndarray, pyframe tensor, torch tensor) of the same values."""
        return (a, bench.setup("pyframe", lambda: pf.tensor(a)),
                bench.setup("torch", lambda: torch.from_numpy(a.copy())))

    small, p_small, t_small = trio(rng.standard_normal((16, 8)).astype(np.float32))
    i4, pi4, ti4 = trio(np.array([3, 0, 7, 7]))
    table, p_table, t_table = trio(rng.standard_normal((100_000, 64)).astype(np.float32))
    rows, p_rows, t_rows = trio(rng.integers(0, 100_000, 50_000))
    vec, p_vec, t_vec = trio(rng.standard_normal(1_000_000).astype(np.float32))
    flat, p_flat, t_flat = trio(rng.integers(0, 1_000_000, 1_000_000))
    mask, p_mask, t_mask = trio(vec > 0)
    mat, p_mat, t_mat = trio(rng.standard_normal((1000, 1000)).astype(np.float32))
    cols, p_cols, t_cols = trio(np.argsort(mat, axis=1)[:, :10].copy())
    ints, p_ints, t_ints = trio(rng.integers(0, 1000, 1_000_000))

    # basic indexing must keep its speed: the advanced path is never entered
    bench.case("x[1:3, ::2] basic",
               pyframe=lambda: p_small[1:3, ::2], numpy=lambda: small[1:3, ::2],
               torch=lambda: t_small[1:3, ::2])
    bench.case("x[idx] 16x8, 4 rows",
               pyframe=lambda: p_small[pi4], numpy=lambda: small[i4],
               torch=lambda: t_small[ti4])
    bench.case("x[[3, 0, 7]] list",
               pyframe=lambda: p_small[[3, 0, 7]], numpy=lambda: small[[3, 0, 7]],
               torch=lambda: t_small[[3, 0, 7]])
    bench.case("x[mask] 16x8",
               pyframe=lambda: p_small[p_small > 0], numpy=lambda: small[small > 0],
               torch=lambda: t_small[t_small > 0])
    bench.case("table[50k rows] 100kx64",
               pyframe=lambda: p_table[p_rows], numpy=lambda: table[rows],
               torch=lambda: t_table[t_rows])
    bench.case("vec[1M random idx]",
               pyframe=lambda: p_vec[p_flat], numpy=lambda: vec[flat],
               torch=lambda: t_vec[t_flat])
    bench.case("vec[mask] 1M",
               pyframe=lambda: p_vec[p_mask], numpy=lambda: vec[mask],
               torch=lambda: t_vec[t_mask])

    def pf_set():
        p_vec[p_mask] = 0.0

    def np_set():
        vec[mask] = 0.0

    def t_set():
        t_vec[t_mask] = 0.0

    bench.case("vec[mask] = 0 1M", pyframe=pf_set, numpy=np_set, torch=t_set)
    # take_along_axis (NumPy) and gather (PyTorch) do the same work
    bench.case("take_along_axis 1000x1000",
               pyframe=lambda: pf.take_along_axis(p_mat, p_cols, axis=1),
               numpy=lambda: np.take_along_axis(mat, cols, axis=1),
               torch=lambda: torch.gather(t_mat, 1, t_cols))
    bench.case("nonzero 1M",
               pyframe=lambda: pf.nonzero(p_mask), numpy=lambda: np.nonzero(mask),
               torch=lambda: torch.nonzero(t_mask, as_tuple=True))
    # NumPy's default sort is not stable; kind="stable" is the like-for-like column
    bench.case("sort 1M float32",
               pyframe=lambda: pf.sort(p_vec), numpy=lambda: np.sort(vec, kind="stable"),
               torch=lambda: torch.sort(t_vec, stable=True))
    bench.case("argsort rows 1000x1000",
               pyframe=lambda: pf.argsort(p_mat, axis=1),
               numpy=lambda: np.argsort(mat, axis=1, kind="stable"),
               torch=lambda: torch.argsort(t_mat, dim=1, stable=True))
    bench.case("argsort 16x8",
               pyframe=lambda: pf.argsort(p_small), numpy=lambda: np.argsort(small, kind="stable"),
               torch=lambda: torch.argsort(t_small, stable=True))
    # NumPy has no topk; its column is argpartition + a sort of the k picked
    bench.case("topk k=10 rows 1000x1000",
               pyframe=lambda: pf.topk(p_mat, 10),
               numpy=lambda: np.sort(np.partition(mat, -10, axis=1)[:, -10:], axis=1),
               torch=lambda: torch.topk(t_mat, 10))
    bench.case("unique 1M ints in [0, 1000)",
               pyframe=lambda: pf.unique(p_ints), numpy=lambda: np.unique(ints),
               torch=lambda: torch.unique(t_ints))



if __name__ == "__main__":
    main()
