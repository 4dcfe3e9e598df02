"""Autograd overhead on small tensors: pyframe vs PyTorch.

What a small model pays per op once its parameters require grad:
  - recording: one op on an input that requires grad (the node, its edges
    and what the rule saves), against the same op without grad;
  - a whole step: forward and backward of small graphs, gradients
    accumulating into .grad as in training.
Issue 4's goal: pyframe at most 0.3x PyTorch's time on these.
Run: python bench/bench_autograd.py [--quick] [--filter S] [--threads N]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import reexec_clean_env  # noqa: E402

reexec_clean_env()  # before numpy, torch or pyframe load OpenBLAS

from harness import Bench  # noqa: E402


def main():
    bench = Bench("autograd")
    np, torch, pf = bench.numpy, bench.torch, bench.pyframe
    rng = np.random.default_rng(0)

    def pair(shape, grad):
        a = rng.standard_normal(shape).astype(np.float32)
        t = bench.setup("pyframe", lambda: pf.tensor(a, requires_grad=grad))
        tt = bench.setup("torch", lambda: torch.tensor(a, requires_grad=grad))
        return t, tt

    x4, tx4 = pair((4,), True)
    w4, tw4 = pair((4,), False)
    bench.case("record: x * w, (4,), x requires grad",
               pyframe=lambda: x4 * w4, torch=lambda: tx4 * tw4)
    bench.case("no record: x * w, (4,), nothing requires grad",
               pyframe=lambda: w4 * w4, torch=lambda: tw4 * tw4)
    x64, tx64 = pair((64,), True)
    bench.case("record: exp(x), (64,)", pyframe=lambda: x64.exp(), torch=lambda: tx64.exp())
    bench.case("record: x.sum(), (64,)", pyframe=lambda: x64.sum(), torch=lambda: tx64.sum())
    xm, txm = pair((16, 16), True)
    bench.case("record: x.T.reshape(256), (16, 16)",
               pyframe=lambda: xm.T.reshape(256), torch=lambda: txm.T.reshape(256))

    b4, tb4 = pair((4,), True)

    def pf_three():
        ((x4 * w4).tanh() + b4).sum().backward()

    def torch_three():
        ((tx4 * tw4).tanh() + tb4).sum().backward()

    bench.case("forward+backward: ((x*w).tanh() + b).sum(), (4,)",
               pyframe=pf_three, torch=torch_three)

    W, tW = pair((32, 32), True)
    bias, tbias = pair((32,), True)
    xin, txin = pair((16, 32), False)

    def pf_layer():
        ((xin @ W + bias).tanh() * 0.5).mean().backward()

    def torch_layer():
        ((txin @ tW + tbias).tanh() * 0.5).mean().backward()

    bench.case("forward+backward: dense layer (16,32)@(32,32) + tanh + mean",
               pyframe=pf_layer, torch=torch_layer)

    def pf_chain():
        y = x64
        for _ in range(20):
            y = y * 1.001 + 0.001
        y.sum().backward()

    def torch_chain():
        y = tx64
        for _ in range(20):
            y = y * 1.001 + 0.001
        y.sum().backward()

    bench.case("forward+backward: chain of 40 elementwise ops, (64,)",
               pyframe=pf_chain, torch=torch_chain)


if __name__ == "__main__":
    main()
