"""The CUDA nn kernels (csrc/cuda/conv.cu, pool.cu, norm.cu): pyframe vs PyTorch on the GPU.

PyTorch runs cuDNN; pyframe runs its own implicit-GEMM convolution (no cuDNN in the
toolkit it builds with, see docs/architecture.md, "CUDA backend: convolution, pooling and
the norms").  Each call is followed by a device synchronisation on both sides, so a time is
the kernels' time plus one launch round trip.  Cases: the layers of bench_nn.py's CNN and a
few larger shapes (forward, and forward + the gradients of input and weight via pf.grad /
torch.autograd.grad), in float32 and bfloat16; max pooling; batch_norm in training; group_norm.

Needs a usable CUDA GPU (prints why not and exits 0 otherwise), and torch with CUDA for the
ratios.  Run: python bench/bench_cuda_nn.py [--quick] [--filter S]
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
        print("bench_cuda_nn: skipped, CUDA is not usable here: " + pf.cuda.status())
        return
    bench = Bench("cuda_nn", libraries=("torch", "pyframe"))
    import numpy as np
    torch = bench.torch
    if torch is not None and not torch.cuda.is_available():
        print("   note: torch has no CUDA here; pyframe times only")
        torch = None
    F = torch.nn.functional if torch is not None else None
    rng = np.random.default_rng(0)
    tdt = {"float32": "float32", "bfloat16": "bfloat16"}

    def synced_pf(fn):
        def run():
            r = fn()
            pf.cuda.synchronize()
            return r
        return run

    def synced_torch(fn):
        def run():
            r = fn()
            torch.cuda.synchronize()
            return r
        return run

    def pair(shape, dtype, scale=1.0, grad=False):
        a = (rng.standard_normal(shape) * scale).astype(np.float32)
        p = pf.tensor(a, dtype=dtype).to("cuda")
        if grad:
            p.requires_grad_(True)
        t = None
        if torch is not None:
            t = torch.tensor(a).to("cuda", getattr(torch, tdt[dtype]))
            t.requires_grad_(grad)
        return p, t

    def layer(name, pf_fn, torch_fn, inputs, wrt):
        pins = [p for p, _ in inputs]
        tins = [t for _, t in inputs]
        bench.case(name + " fwd", pyframe=synced_pf(lambda: pf_fn(*pins)),
                   torch=synced_torch(lambda: torch_fn(*tins)) if torch else None)
        y = pf_fn(*pins)
        gp = pf.ones(tuple(y.shape), dtype=y.dtype, device="cuda")
        gt = torch.ones_like(torch_fn(*tins)) if torch else None
        bench.case(name + " fwd+bwd",
                   pyframe=synced_pf(lambda: pf.grad(pf_fn(*pins), [pins[i] for i in wrt], gp)),
                   torch=synced_torch(lambda: torch.autograd.grad(
                       torch_fn(*tins), [tins[i] for i in wrt], gt)) if torch else None)

    for dtype in ("float32", "bfloat16"):
        convs = [((64, 1, 28, 28), (32, 1, 3, 3), 0), ((64, 32, 13, 13), (64, 32, 3, 3), 0),
                 ((32, 64, 32, 32), (64, 64, 3, 3), 1), ((32, 128, 56, 56), (128, 128, 3, 3), 1),
                 ((32, 256, 14, 14), (256, 256, 3, 3), 1)]
        for xs, ws, pad in convs:
            x, w = pair(xs, dtype, grad=True), pair(ws, dtype, 0.1, grad=True)
            layer(f"conv {xs[1]}->{ws[0]} {xs[2]}x{xs[3]} b{xs[0]} {dtype}",
                  lambda x, w, pad=pad: pf.conv2d(x, w, padding=pad),
                  lambda x, w, pad=pad: F.conv2d(x, w, padding=pad), [x, w], [0, 1])
        x = pair((64, 32, 26, 26), dtype, grad=True)
        layer(f"maxpool 2 32x26x26 b64 {dtype}", lambda x: pf.max_pool2d(x, 2),
              lambda x: F.max_pool2d(x, 2), [x], [0])
        x = pair((32, 64, 32, 32), dtype, grad=True)
        w, b = pair((64,), dtype, grad=True), pair((64,), dtype, grad=True)
        layer(f"batch_norm train 64x32x32 b32 {dtype}",
              lambda x, w, b: pf.batch_norm(x, None, None, w, b, training=True),
              lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [x, w, b],
              [0, 1])
        layer(f"group_norm 8 64x32x32 b32 {dtype}",
              lambda x, w, b: pf.group_norm(x, 8, w, b),
              lambda x, w, b: F.group_norm(x, 8, w, b), [x, w, b], [0, 1])


if __name__ == "__main__":
    main()
