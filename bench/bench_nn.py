"""Neural-network kernels: pyframe vs PyTorch, forward and forward+backward.

The layers of issue 5's CNN benchmark (MNIST-sized input 28x28x1, batch 64:
Conv 32 3x3 -> max-pool 2 -> Conv 64 3x3 -> max-pool 2), each timed alone,
in both memory layouts:
  - NCHW: contiguous (N, C, H, W), PyTorch's default;
  - NHWC: channels-last memory seen as NCHW (x.permute(0, 3, 1, 2) in pyframe,
    memory_format=torch.channels_last in PyTorch), which is how the Keras-style
    layers call the kernels.
"fwd+bwd" is the forward and the gradients of every input that a network
needs (weights and bias; the input too except for the first layer), taken
with pf.grad / torch.autograd.grad so that neither library's .grad
accumulation is timed.  A few other shapes follow (a CIFAR-sized 3x3 layer,
a depthwise and a 1x1 convolution, a transposed convolution, average pooling).

On a 2-core machine run the 2-thread figures with OMP_WAIT_POLICY=PASSIVE
(see bench/README.md), or quote --threads 1.
Run: python bench/bench_nn.py [--quick] [--filter S] [--threads N]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import reexec_clean_env  # noqa: E402

reexec_clean_env()  # before numpy, torch or pyframe load OpenBLAS

from harness import Bench  # noqa: E402


def main():
    bench = Bench("nn")
    np, torch, pf = bench.numpy, bench.torch, bench.pyframe
    F = torch.nn.functional if torch is not None else None
    rng = np.random.default_rng(0)

    def act(shape, cl, grad=False):
        """(pyframe, torch) copies of one random NCHW activation in the given layout."""
        a = rng.standard_normal(shape).astype(np.float32)

        def make_pf():
            if cl:
                t = pf.from_numpy(np.ascontiguousarray(a.transpose(0, 2, 3, 1))).permute(0, 3, 1, 2)
            else:
                t = pf.tensor(a)
            return t.requires_grad_() if grad else t

        def make_torch():
            t = torch.tensor(a)
            if cl:
                t = t.contiguous(memory_format=torch.channels_last)
            return t.requires_grad_() if grad else t

        return bench.setup("pyframe", make_pf), bench.setup("torch", make_torch)

    def param(shape):
        a = (rng.standard_normal(shape) * 0.1).astype(np.float32)
        return (bench.setup("pyframe", lambda: pf.tensor(a, requires_grad=True)),
                bench.setup("torch", lambda: torch.tensor(a, requires_grad=True)))

    def layer(name, pf_fn, torch_fn, inputs, wrt):
        """Time forward, then forward + gradients of inputs[i] for i in wrt."""
        pins = [p for p, _ in inputs]
        tins = [t for _, t in inputs]
        bench.case(name + " fwd",
                   pyframe=(lambda: pf_fn(*pins)) if pf else None,
                   torch=(lambda: torch_fn(*tins)) if torch else None)
        gp = gt = None
        if pf is not None and torch is not None:
            y = torch_fn(*tins).detach()
            g = rng.standard_normal(tuple(y.shape)).astype(np.float32)
            cl = y.ndim == 4 and y.stride(1) == 1 and y.shape[1] > 1
            gt = torch.tensor(g)
            if cl:
                gt = gt.contiguous(memory_format=torch.channels_last)
                gp = pf.from_numpy(np.ascontiguousarray(g.transpose(0, 2, 3, 1)))
                gp = gp.permute(0, 3, 1, 2)
            else:
                gp = pf.tensor(g)

        def pf_step():
            return pf.grad(pf_fn(*pins), [pins[i] for i in wrt], gp)

        def torch_step():
            return torch.autograd.grad(torch_fn(*tins), [tins[i] for i in wrt], gt)

        bench.case(name + " fwd+bwd", pyframe=pf_step if pf else None,
                   torch=torch_step if torch else None)

    for cl in (False, True):
        tag = "NHWC" if cl else "NCHW"
        # the CNN of issue 5, layer by layer (conv1's input is data: no input gradient)
        x1 = act((64, 1, 28, 28), cl)
        w1, b1 = param((32, 1, 3, 3)), param((32,))
        layer(f"conv 1->32 3x3 28x28 b64 {tag}", lambda x, w, b: pf.conv2d(x, w, b),
              lambda x, w, b: F.conv2d(x, w, b), [x1, w1, b1], [1, 2])
        p1 = act((64, 32, 26, 26), cl, grad=True)
        layer(f"maxpool 2 32x26x26 b64 {tag}", lambda x: pf.max_pool2d(x, 2),
              lambda x: F.max_pool2d(x, 2), [p1], [0])
        x2 = act((64, 32, 13, 13), cl, grad=True)
        w2, b2 = param((64, 32, 3, 3)), param((64,))
        layer(f"conv 32->64 3x3 13x13 b64 {tag}", lambda x, w, b: pf.conv2d(x, w, b),
              lambda x, w, b: F.conv2d(x, w, b), [x2, w2, b2], [0, 1, 2])
        p2 = act((64, 64, 11, 11), cl, grad=True)
        layer(f"maxpool 2 64x11x11 b64 {tag}", lambda x: pf.max_pool2d(x, 2),
              lambda x: F.max_pool2d(x, 2), [p2], [0])

    # other realistic shapes, NCHW and channels-last
    for cl in (False, True):
        tag = "NHWC" if cl else "NCHW"
        x = act((32, 64, 32, 32), cl, grad=True)
        w, b = param((64, 64, 3, 3)), param((64,))
        layer(f"conv 64->64 3x3 pad 1 32x32 b32 {tag}",
              lambda x, w, b: pf.conv2d(x, w, b, padding=1),
              lambda x, w, b: F.conv2d(x, w, b, padding=1), [x, w, b], [0, 1, 2])
        xd = act((16, 64, 56, 56), cl, grad=True)
        wd = param((64, 1, 3, 3))
        layer(f"depthwise 64 3x3 pad 1 56x56 b16 {tag}",
              lambda x, w: pf.conv2d(x, w, padding=1, groups=64),
              lambda x, w: F.conv2d(x, w, padding=1, groups=64), [xd, wd], [0, 1])
        xp = act((32, 128, 16, 16), cl, grad=True)
        wp = param((64, 128, 1, 1))
        layer(f"conv 128->64 1x1 16x16 b32 {tag}", lambda x, w: pf.conv2d(x, w),
              lambda x, w: F.conv2d(x, w), [xp, wp], [0, 1])
        xt = act((32, 64, 8, 8), cl, grad=True)
        wt = param((64, 32, 3, 3))
        layer(f"conv_transpose 64->32 3x3 s2 8x8 b32 {tag}",
              lambda x, w: pf.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
              lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
              [xt, wt], [0, 1])
        xa = act((32, 64, 32, 32), cl, grad=True)
        layer(f"avgpool 2 64x32x32 b32 {tag}", lambda x: pf.avg_pool2d(x, 2),
              lambda x: F.avg_pool2d(x, 2), [xa], [0])


if __name__ == "__main__":
    main()
