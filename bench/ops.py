"""The CPU op library against PyTorch, NumPy, raw OpenBLAS and a STREAM triad.

Sections (--section picks one; all by default):
  small    per-op cost of 4-element add, mul, relu and sum   (goal: <= 0.15x PyTorch)
  stream   elementwise on 16M float32 vs a STREAM triad in the same run, on 1 and 2
           threads                                            (goal: >= 0.8x its bandwidth)
  matmul   64^3 .. 2048^3 and the MLP shapes vs a raw cblas_sgemm call into the same
           OpenBLAS, and vs PyTorch                           (goal: >= 0.95x raw OpenBLAS)
  reduce   sum, max, softmax on 16M float32 vs NumPy and PyTorch

Run: python bench/ops.py [--quick] [--section S] [--filter SUBSTR]
Ratios are pyframe's median time over the peer's: below 1 means pyframe is faster.
"""
import ctypes
import importlib.util
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import reexec_clean_env  # noqa: E402

reexec_clean_env()  # before numpy, torch or pyframe load OpenBLAS

import argparse  # noqa: E402

from harness import Bench  # noqa: E402

SECTIONS = ("small", "stream", "matmul", "reduce")


def _section():
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--section", default="all", choices=("all",) + SECTIONS)
    args, rest = p.parse_known_args()
    sys.argv[1:] = rest          # the harness parses the remaining flags
    return SECTIONS if args.section == "all" else (args.section,)


def raw_sgemm():
    """scipy_cblas_sgemm from the OpenBLAS library pyframe links (the same instance)."""
    spec = importlib.util.find_spec("scipy_openblas32")
    libdir = os.path.join(os.path.dirname(spec.origin), "lib")
    name = next(n for n in os.listdir(libdir) if n.startswith("libscipy_openblas"))
    lib = ctypes.CDLL(os.path.join(libdir, name))
    f = lib.scipy_cblas_sgemm
    f.restype = None
    f.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, ctypes.c_void_p, ctypes.c_int,
                                       ctypes.c_void_p, ctypes.c_int, ctypes.c_float,
                                       ctypes.c_void_p, ctypes.c_int]
    row_major, no_trans, trans = 101, 111, 112

    def call(a, b, c, ta=False, tb=False):
        """c = op(a) @ op(b) for C-contiguous NumPy float32 arrays (op = transpose when t*)."""
        m = a.shape[1] if ta else a.shape[0]
        k = a.shape[0] if ta else a.shape[1]
        n = b.shape[0] if tb else b.shape[1]
        f(row_major, trans if ta else no_trans, trans if tb else no_trans, m, n, k, 1.0,
          a.ctypes.data, a.shape[1], b.ctypes.data, b.shape[1], 0.0, c.ctypes.data, n)
    return call


def small(bench, np, torch, pf):
    a, t, n = pf.ones(4), torch.ones(4) if torch else None, np.ones(4, np.float32)
    bench.case("add 4 elements", pyframe=lambda: a + a, numpy=lambda: n + n,
               torch=(lambda: t + t) if torch else None)
    bench.case("mul 4 elements", pyframe=lambda: a * a, numpy=lambda: n * n,
               torch=(lambda: t * t) if torch else None)
    bench.case("relu 4 elements", pyframe=lambda: pf.relu(a), numpy=lambda: np.maximum(n, 0),
               torch=(lambda: torch.relu(t)) if torch else None)
    bench.case("sum 4 elements", pyframe=lambda: pf.sum(a), numpy=lambda: np.sum(n),
               torch=(lambda: torch.sum(t)) if torch else None)


def stream(bench, np, torch, pf):
    size = 1 << 24
    nbytes = 3 * 4 * size     # two streams read, one written
    b, c, out = pf.randn(size), pf.randn(size), pf.empty(size)
    nb, nc, nout = np.asarray(b), np.asarray(c), np.empty(size, np.float32)
    tb, tc, tout = (torch.from_numpy(nb), torch.from_numpy(nc), torch.empty(size)) if torch \
        else (None, None, None)
    for threads in (1, 2):
        pf.set_num_threads(threads)
        if torch:
            torch.set_num_threads(threads)
        for name, fpf, fnp, ftorch in [
            ("add 16M f32", lambda: pf.add(b, c, out=out), lambda: np.add(nb, nc, out=nout),
             lambda: torch.add(tb, tc, out=tout)),
            ("mul 16M f32", lambda: pf.multiply(b, c, out=out),
             lambda: np.multiply(nb, nc, out=nout), lambda: torch.mul(tb, tc, out=tout)),
        ]:
            rec = bench.case(f"{name} {threads}T", pyframe=fpf, numpy=fnp,
                             torch=ftorch if torch else None,
                             triad=lambda: pf._C._stream_triad(out, b, c, 3.0))
            if rec and not bench.args.json_only:
                bw = {k: nbytes / v for k, v in rec["median"].items()}   # bytes/ns = GB/s
                print("      bandwidth GB/s: " + ", ".join(f"{k} {v:.1f}" for k, v in bw.items())
                      + f"; pyframe/triad bandwidth = {bw['pyframe'] / bw['triad']:.2f}")
        # exp reads one stream and writes one: compared with the triad's time per byte
        rec = bench.case(f"exp 16M f32 {threads}T", pyframe=lambda: pf.exp(b, out=out),
                         numpy=lambda: np.exp(nb, out=nout),
                         torch=(lambda: torch.exp(tb, out=tout)) if torch else None)
    pf.set_num_threads(bench.threads)
    if torch:
        torch.set_num_threads(bench.threads)


def matmul(bench, np, torch, pf):
    sgemm = raw_sgemm()
    rng = np.random.default_rng(0)
    shapes = [("64^3", 64, 64, 64, False, False), ("256^3", 256, 256, 256, False, False),
              ("1024^3", 1024, 1024, 1024, False, False)]
    if not bench.args.quick:
        shapes.append(("2048^3", 2048, 2048, 2048, False, False))
    # the MLP layer 784 -> 128 at batch 64: forward, and the two backward products
    shapes += [("mlp fwd 64x784 @ 784x128", 64, 784, 128, False, False),
               ("mlp dX 64x128 @ (784x128)^T", 64, 128, 784, False, True),
               ("mlp dW (64x784)^T @ 64x128", 784, 64, 128, True, False)]
    for name, m, k, n, ta, tb in shapes:
        a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
        c = np.empty((m, n), np.float32)
        pa, pb = pf.from_numpy(a), pf.from_numpy(b)
        pa, pb = (pa.T if ta else pa), (pb.T if tb else pb)
        ta_, tb_ = (torch.from_numpy(a), torch.from_numpy(b)) if torch else (None, None)
        if torch:
            ta_, tb_ = (ta_.T if ta else ta_), (tb_.T if tb else tb_)
        bench.case(f"matmul {name}", pyframe=lambda: pa @ pb,
                   openblas=lambda: sgemm(a, b, c, ta, tb),
                   torch=(lambda: ta_ @ tb_) if torch else None)


def reduce(bench, np, torch, pf):
    size = 1 << 24
    x = pf.randn(size)
    nx = np.asarray(x)
    tx = torch.from_numpy(nx) if torch else None
    x2 = x.reshape(4096, 4096)
    nx2, tx2 = nx.reshape(4096, 4096), (tx.reshape(4096, 4096) if torch else None)

    def np_softmax(v):
        e = np.exp(v - v.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    bench.case("sum 16M f32", pyframe=lambda: pf.sum(x), numpy=lambda: np.sum(nx),
               torch=(lambda: torch.sum(tx)) if torch else None)
    bench.case("max 16M f32", pyframe=lambda: pf.max(x), numpy=lambda: np.max(nx),
               torch=(lambda: torch.max(tx)) if torch else None)
    bench.case("sum axis=0 4096x4096", pyframe=lambda: pf.sum(x2, axis=0),
               numpy=lambda: np.sum(nx2, axis=0),
               torch=(lambda: torch.sum(tx2, dim=0)) if torch else None)
    bench.case("softmax rows 4096x4096", pyframe=lambda: pf.softmax(x2, axis=-1),
               numpy=lambda: np_softmax(nx2),
               torch=(lambda: torch.softmax(tx2, dim=-1)) if torch else None)


def main():
    sections = _section()
    refs = ()
    if "stream" in sections:
        refs += ("triad",)
    if "matmul" in sections:
        refs += ("openblas",)
    bench = Bench("ops", references=refs)
    np, torch, pf = bench.numpy, bench.torch, bench.pyframe
    if pf is None:
        print("pyframe is not importable: pip install -e . first")
        return
    for s in sections:
        globals()[s](bench, np, torch, pf)


if __name__ == "__main__":
    main()
