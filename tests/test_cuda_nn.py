"""The CUDA nn kernels (csrc/cuda/conv.cu, pool.cu, norm.cu): convolution, pooling and the
norms, with their gradients.

Two groups:

* Host self-test (any machine where libpyframe_cuda.so is built, CI included):
  ``_C._cuda_host_nn_selftest(True)`` routes these ops' cpu tensors to the library's host
  entry, which runs the very __host__ __device__ functions the kernels run -- the
  implicit-GEMM tiles phase by phase for all 256 threads of a block, the per-element pooling
  and the block reductions of the norms -- over host memory.  Values and gradients (through
  autograd, so the backward rules' CUDA branches run too) are compared with the cpu backend,
  which tests/test_nn_conv.py and tests/test_nn_ops.py check against float64 NumPy and
  torch; the convolutions are also compared with torch float64 directly.
* On a GPU (skipped elsewhere, naming the reason): the same cases on the device, values and
  gradients against the cpu backend.

Tolerances, relative to the largest magnitude of the reference (max(1, |ref|max)): the
kernels sum in another order than the cpu (tiles, block trees), and half types round the
float32 sum once, so they may differ from the cpu by an ulp of the result.
"""
import contextlib

import numpy as np
import pytest

import pyframe as pf
from pyframe import _C

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # torch is a second oracle only
    torch = None

BUILT = _C._cuda_status()["kind"] != "not built"
needs_lib = pytest.mark.skipif(not BUILT, reason="libpyframe_cuda.so was not built here "
                                                 "(no nvcc)")
CUDA = pf.cuda.is_available()
gpu = pytest.mark.skipif(not CUDA, reason="needs a usable CUDA GPU; here: " + pf.cuda.status())
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

# per-dtype tolerance, times max(1, max |reference|)
TOL = {"float64": 1e-10, "float32": 3e-5, "float16": 4e-3, "bfloat16": 3e-2}
DTYPES = list(TOL)

rng = np.random.default_rng(8)


@contextlib.contextmanager
def host_kernels():
    prev = _C._cuda_host_nn_selftest(True)
    try:
        yield
    finally:
        _C._cuda_host_nn_selftest(prev)


def to_np(t):
    return np.asarray(t.detach().cpu().astype(pf.float64))


def assert_close(got, want, dtype, what, factor=1.0):
    g, w = to_np(got), to_np(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert g.shape == w.shape, f"{what}: shape {g.shape} != {w.shape}"
    scale = max(1.0, float(np.nanmax(np.abs(w))) if w.size and not np.all(np.isnan(w))
                else 1.0)
    tol = TOL[dtype] * factor * scale
    np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"{what}: NaNs differ")
    err = np.nanmax(np.abs(g - w)) if g.size else 0.0
    assert err <= tol, f"{what} ({dtype}): max error {err:.3g} > {tol:.3g}"


def leaves(arrays, dtype, where, grad):
    """pf tensors from float64 arrays: on the cpu, or on the GPU ('cuda'); a value may be a
    (array, transform) pair, the transform giving the layout (a permuted view)."""
    out = {}
    for k, a in arrays.items():
        layout = None
        if isinstance(a, tuple):
            a, layout = a
        t = pf.tensor(a, dtype=dtype)
        if where == "cuda":
            t = t.to("cuda")
        if layout is not None:
            t = layout(t)
        if grad and k in grad:
            t = t.detach()
            t.requires_grad_(True)
        out[k] = t
    return out


def run(fn, arrays, dtype, where, grad=()):
    """fn(**tensors) on the cpu kernels ('cpu'), the host self-test ('host') or the GPU;
    with grad, also the gradients of the named inputs for a fixed random output gradient."""
    ts = leaves(arrays, dtype, where, grad)
    ctx = host_kernels() if where == "host" else contextlib.nullcontext()
    with ctx:
        out = fn(**ts)
        grads = {}
        if grad:
            seed = np.random.default_rng(99).standard_normal(tuple(out.shape))
            g = pf.tensor(seed, dtype=dtype)
            out.backward(g.to("cuda") if where == "cuda" else g)
            grads = {k: ts[k].grad for k in grad}
    return out, grads


def compare(fn, arrays, dtype, where, grad=(), factor=1.0, same_strides=True):
    want, wgrads = run(fn, arrays, dtype, "cpu", grad)
    got, ggrads = run(fn, arrays, dtype, where, grad)
    assert got.device == ("cpu" if where == "host" else "cuda:0")
    assert_close(got, want, dtype, "value", factor)
    if same_strides:
        assert got.strides == want.strides, "the output's layout follows the cpu path's"
    for k in grad:
        assert ggrads[k] is not None, f"no gradient for {k}"
        assert_close(ggrads[k], wgrads[k], dtype, f"gradient of {k}", factor * 4)
    return got


def randn(*shape):
    return rng.standard_normal(shape)


def channels_last(t):
    """the same values, NHWC in memory (an NHWC tensor viewed as NCHW)"""
    return t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)


# ------------------------------------------------------------------ cases

# (input shape, weight shape, stride, padding, dilation, groups, bias)
CONV2D = [
    ((2, 3, 9, 11), (5, 3, 3, 3), 1, 1, 1, 1, True),            # odd sizes, 'same'-like
    ((1, 4, 13, 7), (6, 2, 3, 2), (2, 1), (1, 2), (1, 2), 2, True),
    ((3, 6, 8, 8), (6, 1, 3, 3), 2, 1, 1, 6, False),             # depthwise
    ((1, 5, 20, 20), (70, 5, 1, 1), 1, 0, 1, 1, True),           # pointwise, O > one tile
    ((2, 9, 12, 10), (66, 3, 5, 4), (3, 2), (2, 1), 1, 3, True),  # K > 16, tails in all dims
    ((1, 3, 6, 6), (2, 3, 7, 7), 1, 3, 1, 1, True),              # kernel larger than the image
    ((2, 4, 37, 35), (8, 4, 3, 3), 1, 1, 1, 1, True),            # weight grad in several splits
    ((1, 2, 5, 5), (4, 2, 2, 2), 1, "same", 2, 1, False),        # asymmetric 'same'
]
CONV_IDS = ["odd", "strided-dilated-groups", "depthwise", "pointwise-70", "k5x4-groups3",
            "big-kernel", "split-k", "same-dilated"]


def conv2d_case(case, layout=None):
    xs, ws, stride, padding, dilation, groups, bias = case
    arrays = {"x": (randn(*xs), layout) if layout else randn(*xs), "w": randn(*ws) * 0.3}
    if bias:
        arrays["b"] = randn(ws[0])

    def fn(x, w, b=None):
        return pf.nn.functional.conv2d(x, w, b, stride=stride, padding=padding,
                                       dilation=dilation, groups=groups)
    return fn, arrays, tuple(arrays)


# ================================================================== host self-test

@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV2D, ids=CONV_IDS)
def test_host_conv2d_matches_the_cpu(case, dtype):
    fn, arrays, grad = conv2d_case(case)
    compare(fn, arrays, dtype, "host", grad)


@needs_lib
@needs_torch
@pytest.mark.parametrize("case", CONV2D[:5], ids=CONV_IDS[:5])
def test_host_conv2d_matches_torch_float64(case):
    fn, arrays, grad = conv2d_case(case)
    got, grads = run(fn, arrays, "float64", "host", grad)
    xs, ws, stride, padding, dilation, groups, bias = case
    tx = torch.tensor(arrays["x"], requires_grad=True)
    tw = torch.tensor(arrays["w"], requires_grad=True)
    tb = torch.tensor(arrays["b"], requires_grad=True) if bias else None
    ty = F.conv2d(tx, tw, tb, stride=stride, padding=padding, dilation=dilation, groups=groups)
    ty.backward(torch.tensor(np.random.default_rng(99).standard_normal(tuple(ty.shape))))
    np.testing.assert_allclose(to_np(got), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(to_np(grads["x"]), tx.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(to_np(grads["w"]), tw.grad.numpy(), rtol=1e-10, atol=1e-10)


@needs_lib
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("case", [CONV2D[1], CONV2D[3]], ids=["groups", "pointwise"])
def test_host_conv2d_channels_last_keeps_the_layout(case, dtype):
    fn, arrays, grad = conv2d_case(case, layout=channels_last)
    got = compare(fn, arrays, dtype, "host", grad)
    assert got.strides[1] < got.strides[3], "channels innermost, as the input"


@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
def test_host_conv1d_unbatched_and_batched(dtype):
    w, b = randn(6, 2, 4) * 0.3, randn(6)
    for x in (randn(4, 17), randn(3, 4, 17)):
        compare(lambda x, w, b: pf.nn.functional.conv1d(x, w, b, stride=2, padding=3,
                                                        dilation=2, groups=2),
                {"x": x, "w": w, "b": b}, dtype, "host", ("x", "w", "b"))


@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride,padding,output_padding,groups,dilation", [
    (1, 0, 0, 1, 1), (2, 1, 1, 1, 1), ((3, 2), (1, 0), (2, 1), 2, 1), (2, 2, 0, 3, 2)])
def test_host_conv_transpose2d(dtype, stride, padding, output_padding, groups, dilation):
    x, w = randn(2, 6, 5, 7), randn(6, 2, 3, 3) * 0.3
    b = randn(w.shape[1] * groups)
    fn = lambda x, w, b: pf.nn.functional.conv_transpose2d(  # noqa: E731
        x, w, b, stride=stride, padding=padding, output_padding=output_padding, groups=groups,
        dilation=dilation)
    compare(fn, {"x": x, "w": w, "b": b}, dtype, "host", ("x", "w", "b"))


@needs_lib
@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
def test_host_conv_helpers_and_their_second_derivatives(dtype):
    """_conv (output size given), _conv_input_grad and _conv_weight_grad called directly, and
    differentiated once more (their rules call each other)."""
    x, w, gy = randn(2, 4, 9, 8), randn(6, 2, 3, 2) * 0.3, randn(2, 6, 4, 5)
    geo = dict(stride=(2, 2), padding=(1, 1), dilation=(1, 2), groups=2)
    compare(lambda x, w: _C._conv(x, w, (4, 5), **geo), {"x": x, "w": w}, dtype, "host",
            ("x", "w"))
    compare(lambda g, w: _C._conv_input_grad(g, w, (9, 8), **geo), {"g": gy, "w": w}, dtype,
            "host", ("g", "w"))
    compare(lambda x, g: _C._conv_weight_grad(x, g, (3, 2), **geo), {"x": x, "g": gy}, dtype,
            "host", ("x", "g"), same_strides=False)


# (input, kernel, stride, padding, dilation, ceil_mode)
POOL2D = [
    ((2, 3, 9, 11), 3, 2, 1, 1, False),
    ((1, 4, 10, 7), (3, 2), (2, 1), (1, 0), (2, 1), True),
    ((2, 2, 8, 8), 2, None, 0, 1, False),
    ((1, 70, 5, 6), (2, 3), (3, 2), (1, 1), 1, True),
]


@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL2D)
def test_host_max_pool2d(case, dtype):
    shape, k, s, p, d, ceil = case
    x = randn(*shape)
    compare(lambda x: pf.nn.functional.max_pool2d(x, k, s, p, d, ceil_mode=ceil), {"x": x},
            dtype, "host", ("x",))


@needs_lib
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_host_max_pool_ties_and_nans_follow_the_cpu(dtype):
    """Small integers tie often: the first maximum of a window takes the gradient; a NaN
    beats every number and the first NaN wins."""
    x = rng.integers(0, 3, size=(2, 3, 8, 9)).astype(np.float64)
    x[0, 0, 2, 3] = x[1, 2, 5, 5] = x[1, 2, 5, 6] = np.nan
    for layout in (None, channels_last):
        arrays = {"x": (x, layout) if layout else x}
        compare(lambda x: pf.nn.functional.max_pool2d(x, 3, 2, 1), arrays, dtype, "host",
                ("x",))
        compare(lambda x: pf.nn.functional.max_pool1d(x[:, :, 0], 4, 1, 2, dilation=1),
                arrays, dtype, "host", ("x",), same_strides=False)


@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL2D)
@pytest.mark.parametrize("incl,div", [(True, None), (False, None), (True, 5)])
def test_host_avg_pool2d(case, dtype, incl, div):
    shape, k, s, p, d, ceil = case
    if d != 1:
        return  # average pooling has no dilation
    x = randn(*shape)
    compare(lambda x: pf.nn.functional.avg_pool2d(x, k, s, p, ceil_mode=ceil,
                                                  count_include_pad=incl, divisor_override=div),
            {"x": x}, dtype, "host", ("x",))


@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
def test_host_pool1d_unbatched_and_batched(dtype):
    for x in (randn(3, 13), randn(2, 3, 13)):
        compare(lambda x: pf.nn.functional.max_pool1d(x, 3, 2, 1, dilation=2, ceil_mode=True),
                {"x": x}, dtype, "host", ("x",))
        compare(lambda x: pf.nn.functional.avg_pool1d(x, 4, 3, 2, ceil_mode=True,
                                                      count_include_pad=False),
                {"x": x}, dtype, "host", ("x",))


@needs_lib
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_host_pool_helpers(dtype):
    x, v, gy = randn(2, 3, 9, 8), randn(2, 3, 9, 8), randn(2, 3, 5, 4)
    geo = dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)
    compare(lambda g, x: _C._max_pool_backward(g, x, **geo), {"g": gy, "x": x}, dtype, "host",
            ("g",))
    compare(lambda v, x: _C._max_pool_select(v, x, **geo), {"v": v, "x": x}, dtype, "host",
            ("v",))
    compare(lambda g: _C._avg_pool_backward(g, (9, 8), 3, 2, 1, False, False, None),
            {"g": gy}, dtype, "host", ("g",))


def bn_call(training, axis=1, momentum=0.1):
    def fn(x, w=None, b=None, rm=None, rv=None):
        return pf.batch_norm(x, rm, rv, w, b, training=training, momentum=momentum, eps=1e-4,
                             axis=axis)
    return fn


@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((6, 5, 7, 3), 1), ((4, 9, 5), -1), ((300, 5), 1)])
@pytest.mark.parametrize("training", [True, False])
def test_host_batch_norm(dtype, shape, axis, training):
    C = shape[axis]
    arrays = {"x": randn(*shape) * 2 + 3, "w": randn(C), "b": randn(C)}
    rm0, rv0 = randn(C), rng.uniform(0.5, 2, C)
    bufs = {}
    for where in ("cpu", "host"):
        rm, rv = pf.tensor(rm0, dtype=dtype), pf.tensor(rv0, dtype=dtype)
        fn = bn_call(training, axis)
        bufs[where] = (rm, rv, fn)
    outs = {}
    for where in ("cpu", "host"):
        rm, rv, fn = bufs[where]
        outs[where] = run(lambda x, w, b: fn(x, w, b, rm, rv), arrays, dtype, where,
                          ("x", "w", "b"))
    (yc, gc), (yh, gh) = outs["cpu"], outs["host"]
    assert_close(yh, yc, dtype, "value")
    for k in gc:
        assert_close(gh[k], gc[k].astype(gh[k].dtype), dtype, f"gradient of {k}", 4)
    # the running statistics are updated (training) or read (eval) the same way
    for a, b in zip(bufs["host"][:2], bufs["cpu"][:2]):
        assert_close(a, b, dtype, "running statistics")
    if not training:
        assert np.array_equal(to_np(bufs["host"][0]), to_np(pf.tensor(rm0, dtype=dtype)))


@needs_lib
def test_host_batch_norm_without_affine_or_buffers_and_mixed_dtypes():
    x = randn(8, 3, 4)
    compare(lambda x: pf.batch_norm(x, None, None, training=True), {"x": x}, "float32", "host",
            ("x",))
    # float32 buffers and weight with a float16 input: each vector keeps its dtype
    rm, rv = pf.zeros(3), pf.ones(3)
    w = pf.tensor(randn(3), dtype=pf.float32)
    xh = pf.tensor(x, dtype=pf.float16)
    with host_kernels():
        y = pf.batch_norm(xh, rm, rv, w, None, training=True)
    rm2, rv2 = pf.zeros(3), pf.ones(3)
    y2 = pf.batch_norm(xh, rm2, rv2, w, None, training=True)
    assert_close(y, y2, "float16", "value")
    assert rm.dtype == pf.float32
    assert_close(rm, rm2, "float32", "running mean", 10)
    assert_close(rv, rv2, "float32", "running var", 10)


@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,groups", [((2, 6, 5, 3), 3), ((3, 4, 7), 1), ((1, 8, 2), 8),
                                          ((2, 6, 300), 2)])
def test_host_group_norm(dtype, shape, groups):
    C = shape[1]
    compare(lambda x, w, b: pf.group_norm(x, groups, w, b, eps=1e-4),
            {"x": randn(*shape) * 3 + 1, "w": randn(C), "b": randn(C)}, dtype, "host",
            ("x", "w", "b"))
    compare(lambda x: pf.group_norm(x, groups), {"x": randn(*shape)}, dtype, "host", ("x",))


@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,nshape", [((4, 7), (7,)), ((2, 3, 5, 6), (5, 6)),
                                          ((3, 700), (700,))])
def test_host_rms_norm(dtype, shape, nshape):
    compare(lambda x, w: pf.rms_norm(x, nshape, w), {"x": randn(*shape), "w": randn(*nshape)},
            dtype, "host", ("x", "w"))
    compare(lambda x: pf.rms_norm(x, nshape, eps=1e-3), {"x": randn(*shape)}, dtype, "host",
            ("x",))


@needs_lib
def test_host_norms_on_non_contiguous_inputs():
    x = pf.tensor(randn(5, 6, 4)).transpose(0, 2)
    with host_kernels():
        got = [pf.group_norm(x, 2), pf.rms_norm(x, (5,)), pf.batch_norm(x, None, None,
                                                                          training=True)]
    want = [pf.group_norm(x, 2), pf.rms_norm(x, (5,)), pf.batch_norm(x, None, None,
                                                                      training=True)]
    for g, w in zip(got, want):
        assert_close(g, w, "float32", "value")


@needs_lib
def test_host_selftest_switch_reports_and_restores():
    prev = _C._cuda_host_nn_selftest(True)
    try:
        assert _C._cuda_host_nn_selftest(True) is True
    finally:
        _C._cuda_host_nn_selftest(prev)
    assert _C._cuda_host_nn_selftest(False) is False


# ================================================================== on the GPU

@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV2D, ids=CONV_IDS)
def test_gpu_conv2d_matches_the_cpu(case, dtype):
    fn, arrays, grad = conv2d_case(case)
    compare(fn, arrays, dtype, "cuda", grad)


@gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_gpu_conv2d_channels_last(dtype):
    fn, arrays, grad = conv2d_case(CONV2D[1], layout=channels_last)
    compare(fn, arrays, dtype, "cuda", grad)


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_conv1d_and_transpose(dtype):
    compare(lambda x, w, b: pf.nn.functional.conv1d(x, w, b, stride=2, padding=3, dilation=2,
                                                    groups=2),
            {"x": randn(3, 4, 17), "w": randn(6, 2, 4) * 0.3, "b": randn(6)}, dtype, "cuda",
            ("x", "w", "b"))
    compare(lambda x, w, b: pf.nn.functional.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                              output_padding=1, groups=2),
            {"x": randn(2, 6, 5, 7), "w": randn(6, 2, 3, 3) * 0.3, "b": randn(4)}, dtype,
            "cuda", ("x", "w", "b"))


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL2D)
def test_gpu_pooling(case, dtype):
    shape, k, s, p, d, ceil = case
    x = randn(*shape)
    compare(lambda x: pf.nn.functional.max_pool2d(x, k, s, p, d, ceil_mode=ceil), {"x": x},
            dtype, "cuda", ("x",))
    if d == 1:
        compare(lambda x: pf.nn.functional.avg_pool2d(x, k, s, p, ceil_mode=ceil,
                                                      count_include_pad=False),
                {"x": x}, dtype, "cuda", ("x",))


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
def test_gpu_batch_norm(dtype, training):
    C = 5
    arrays = {"x": randn(6, C, 7, 3) * 2 + 3, "w": randn(C), "b": randn(C)}
    rm0, rv0 = randn(C), rng.uniform(0.5, 2, C)
    res = {}
    for where in ("cpu", "cuda"):
        rm, rv = pf.tensor(rm0, dtype=dtype), pf.tensor(rv0, dtype=dtype)
        if where == "cuda":
            rm, rv = rm.to("cuda"), rv.to("cuda")
        fn = bn_call(training)
        out, grads = run(lambda x, w, b: fn(x, w, b, rm, rv), arrays, dtype, where,
                         ("x", "w", "b"))
        res[where] = (out, grads, rm, rv)
    (yc, gc, rmc, rvc), (yd, gd, rmd, rvd) = res["cpu"], res["cuda"]
    assert_close(yd, yc, dtype, "value")
    for k in gc:
        assert_close(gd[k], gc[k].astype(gd[k].dtype), dtype, f"gradient of {k}", 4)
    assert_close(rmd, rmc, dtype, "running mean")
    assert_close(rvd, rvc, dtype, "running var")


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_group_and_rms_norm(dtype):
    compare(lambda x, w, b: pf.group_norm(x, 3, w, b), {"x": randn(2, 6, 5, 3) * 3 + 1,
                                                        "w": randn(6), "b": randn(6)},
            dtype, "cuda", ("x", "w", "b"))
    compare(lambda x, w: pf.rms_norm(x, (5, 6), w), {"x": randn(2, 3, 5, 6),
                                                     "w": randn(5, 6)},
            dtype, "cuda", ("x", "w"))


@gpu
def test_gpu_mixed_devices_name_both():
    x = pf.randn(1, 2, 5, 5, device="cuda")
    w = pf.randn(3, 2, 3, 3)
    with pytest.raises(RuntimeError, match=r"^conv2d: tensors on cuda:0 and cpu"):
        pf.nn.functional.conv2d(x, w)


@needs_lib
def test_host_conv_with_an_empty_batch_gives_zero_weight_gradients():
    x, w, b = randn(0, 3, 6, 6), randn(4, 3, 3, 3), randn(4)
    got = compare(lambda x, w, b: pf.nn.functional.conv2d(x, w, b, padding=1),
                  {"x": x, "w": w, "b": b}, "float32", "host", ("x", "w", "b"))
    assert got.shape == (0, 4, 6, 6)
    with host_kernels():
        gw = _C._conv_weight_grad(pf.tensor(x, dtype=pf.float32), pf.zeros((0, 4, 6, 6)), 3,
                                  padding=1)
    assert gw.shape == (4, 3, 3, 3) and not np.any(to_np(gw))


fake = pytest.mark.skipif(CUDA, reason="_fake_cuda_tensor is for machines without a GPU")


@fake
def test_an_array_argument_with_a_device_tensor_names_both_devices():
    """An array or list argument becomes a cpu tensor: with a device input that is a mix."""
    x = _C._fake_cuda_tensor((1, 2, 5, 5), "float32", 0)
    w = np.ones((3, 2, 3, 3), np.float32)
    with pytest.raises(RuntimeError, match=r"^conv2d: tensors on cuda:0 and cpu; move them to "
                                           r"one device with \.to\(\.\.\.\)"):
        pf.nn.functional.conv2d(x, w)
    with pytest.raises(RuntimeError, match=r"^group_norm: tensors on cuda:0 and cpu"):
        pf.group_norm(_C._fake_cuda_tensor((2, 4, 3), "float32", 0), 2, [1.0] * 4)
