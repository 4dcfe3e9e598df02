"""Normalisation, losses and attention: pyframe vs PyTorch, float32.

Forward alone and forward+backward (gradients of every input that has
one, accumulated into .grad as in training) at sizes from the models of
issue 5: layer norm over a transformer's rows, batch norm after a 3x3 conv
on MNIST, cross-entropy on MNIST logits and on 1000 classes, attention of
the d_model 256 / 4 heads / sequence 128 / batch 16 encoder block.  One
case writes layer norm with pyframe's own ops instead of the fused kernels,
to show what the fused forward and backward buy.
Run: python bench/bench_nn_ops.py [--quick] [--filter S] [--threads N]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import reexec_clean_env  # noqa: E402

reexec_clean_env()  # before numpy, torch or pyframe load OpenBLAS

from harness import Bench  # noqa: E402


def main():
    bench = Bench("nn_ops", libraries=("pyframe", "torch"))
    np, torch, pf = bench.numpy, bench.torch, bench.pyframe
    if np is None:
        import numpy as np
    rng = np.random.default_rng(0)
    F = torch.nn.functional if torch is not None else None

    def pair(a, grad=False):
        a = np.asarray(a)
        p = bench.setup("pyframe", lambda: pf.tensor(a, requires_grad=grad))
        t = bench.setup("torch", lambda: torch.tensor(a, requires_grad=grad))
        return p, t

    def randn(*shape, grad=False):
        return pair(rng.standard_normal(shape).astype(np.float32), grad)

    def step(fn, g):
        """forward, then backward with the fixed output gradient g"""
        def run():
            fn().backward(g)
        return run

    # ---------------------------------------------------------------- layer norm
    for rows in (64, 16 * 128):
        x, tx = randn(rows, 256, grad=True)
        w, tw = pair(np.ones(256, np.float32), True)
        b, tb = pair(np.zeros(256, np.float32), True)
        g, tg = randn(rows, 256)
        bench.case(f"layer_norm ({rows},256) fwd",
                   pyframe=lambda: pf.layer_norm(x, (256,), w, b),
                   torch=lambda: F.layer_norm(tx, (256,), tw, tb))
        bench.case(f"layer_norm ({rows},256) fwd+bwd",
                   pyframe=step(lambda: pf.layer_norm(x, (256,), w, b), g),
                   torch=step(lambda: F.layer_norm(tx, (256,), tw, tb), tg))

    def composite_ln():
        mu = x.mean(axis=-1, keepdims=True)
        xc = x - mu
        return xc * pf.rsqrt((xc * xc).mean(axis=-1, keepdims=True) + 1e-5) * w + b

    bench.case("layer_norm (2048,256) fwd+bwd, written with pf ops",
               pyframe=step(composite_ln, g),
               torch=step(lambda: F.layer_norm(tx, (256,), tw, tb), tg))

    # ---------------------------------------------------------------- batch norm
    x, tx = randn(64, 32, 26, 26, grad=True)
    w, tw = pair(np.ones(32, np.float32), True)
    b, tb = pair(np.zeros(32, np.float32), True)
    rm, trm = pair(np.zeros(32, np.float32))
    rv, trv = pair(np.ones(32, np.float32))
    g, tg = randn(64, 32, 26, 26)
    bench.case("batch_norm (64,32,26,26) train fwd",
               pyframe=lambda: pf.batch_norm(x, rm, rv, w, b, training=True),
               torch=lambda: F.batch_norm(tx, trm, trv, tw, tb, training=True))
    bench.case("batch_norm (64,32,26,26) train fwd+bwd",
               pyframe=step(lambda: pf.batch_norm(x, rm, rv, w, b, training=True), g),
               torch=step(lambda: F.batch_norm(tx, trm, trv, tw, tb, training=True), tg))

    # ---------------------------------------------------------------- cross-entropy
    for n, c in ((64, 10), (256, 1000)):
        x, tx = randn(n, c, grad=True)
        t, tt = pair(rng.integers(0, c, n))
        bench.case(f"cross_entropy ({n},{c}) fwd",
                   pyframe=lambda: pf.cross_entropy(x, t),
                   torch=lambda: F.cross_entropy(tx, tt))
        bench.case(f"cross_entropy ({n},{c}) fwd+bwd",
                   pyframe=lambda: pf.cross_entropy(x, t).backward(),
                   torch=lambda: F.cross_entropy(tx, tt).backward())

    # ---------------------------------------------------------------- attention
    q, tq = randn(16, 4, 128, 64, grad=True)
    k, tk = randn(16, 4, 128, 64, grad=True)
    v, tv = randn(16, 4, 128, 64, grad=True)
    g, tg = randn(16, 4, 128, 64)
    bench.case("sdpa (16,4,128,64) fwd",
               pyframe=lambda: pf.scaled_dot_product_attention(q, k, v),
               torch=lambda: F.scaled_dot_product_attention(tq, tk, tv))
    bench.case("sdpa (16,4,128,64) fwd+bwd",
               pyframe=step(lambda: pf.scaled_dot_product_attention(q, k, v), g),
               torch=step(lambda: F.scaled_dot_product_attention(tq, tk, tv), tg))
    bench.case("sdpa (16,4,128,64) causal fwd+bwd",
               pyframe=step(lambda: pf.scaled_dot_product_attention(q, k, v, is_causal=True), g),
               torch=step(lambda: F.scaled_dot_product_attention(tq, tk, tv, is_causal=True), tg))


if __name__ == "__main__":
    main()
