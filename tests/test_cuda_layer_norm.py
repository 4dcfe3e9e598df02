"""layer_norm forward and its fused backward on CUDA (csrc/cuda/layer_norm.cu, the device
paths of nn_ops.c's rownorm_entry and backward_nnops.c's bw_rownorm).

* Host self-test (where libpyframe_cuda.so is built, CI included):
  ``_C._cuda_host_layer_norm`` and ``_C._cuda_host_layer_norm_bwd`` run the kernels' per-lane,
  per-row and per-column code on the host; against NumPy float64 (the oracle) and the cpu
  backend: values, input gradient, weight and bias gradients, with and without the affine
  parameters, rows longer and shorter than a warp, more rows than one column chunk.
* With a GPU: pf.layer_norm of device tensors and its backward against the cpu.

Tolerances (float32 | float64): y and dx atol = rtol = 2e-5 | 1e-12; dw, db (sums over rows)
atol = rtol = 1e-4 | 1e-11, times sqrt(rows / 100) when there are more rows.
"""
import numpy as np
import pytest

import pyframe as pf
from pyframe import _C

CUDA = pf.cuda.is_available()
REASON = pf.cuda.status()
gpu = pytest.mark.skipif(not CUDA, reason="needs a usable CUDA GPU; here: " + REASON)
BUILT = _C._cuda_status()["kind"] != "not built"
host = pytest.mark.skipif(not BUILT, reason="libpyframe_cuda.so was not built here (no nvcc)")

SHAPES = [(8, 16), (3, 5, 100), (700, 7), (2, 1), (4, 1000)]
EPS = 1e-5


def _data(shape, dtype, affine):
    rng = np.random.default_rng(sum(shape))
    n = shape[-1]
    x = rng.standard_normal(shape) * 3 + 10          # a mean large next to the spread
    g = rng.standard_normal(shape)
    w = rng.standard_normal(n) if affine else None
    b = rng.standard_normal(n) if affine else None
    cast = (lambda a: None if a is None else a.astype(dtype))
    return cast(x), cast(g), cast(w), cast(b)


def _oracle(x, g, w, b):
    x, g = x.astype(np.float64), g.astype(np.float64)
    n = x.shape[-1]
    mean = x.mean(-1, keepdims=True)
    rstd = 1 / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + EPS)
    xh = (x - mean) * rstd
    wv = np.ones(n) if w is None else w.astype(np.float64)
    y = xh * wv + (0 if b is None else b.astype(np.float64))
    gw = g * wv
    dx = rstd * (gw - gw.mean(-1, keepdims=True) - xh * (gw * xh).mean(-1, keepdims=True))
    lead = tuple(range(x.ndim - 1))
    return y, dx, (g * xh).sum(lead), g.sum(lead)


def _close(got, want, dtype, sums=False, rows=1):
    f32 = dtype == "float32"
    tol = (1e-4 if f32 else 1e-11) if sums else (2e-5 if f32 else 1e-12)
    if sums:
        tol *= max(1.0, np.sqrt(rows / 100))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def _t(a):
    return None if a is None else pf.tensor(a)


@host
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES)
def test_host_kernels_match_numpy_and_the_cpu(shape, dtype, affine):
    x, g, w, b = _data(shape, dtype, affine)
    n, rows = shape[-1], int(np.prod(shape[:-1]))
    y_want, dx_want, dw_want, db_want = _oracle(x, g, w, b)
    # forward
    y = pf.empty(shape, dtype=dtype)
    _C._cuda_host_layer_norm(y, pf.tensor(x), _t(w), _t(b), EPS)
    _close(np.asarray(y), y_want, dtype)
    cpu = pf.layer_norm(pf.tensor(x), (n,), _t(w), _t(b), eps=EPS)
    _close(np.asarray(y), np.asarray(cpu).astype(np.float64), dtype)
    # backward: dx, dw, db together, then dx alone
    dx = pf.empty(shape, dtype=dtype)
    dw = pf.empty(n, dtype=dtype) if affine else None
    db = pf.empty(n, dtype=dtype) if affine else None
    _C._cuda_host_layer_norm_bwd(dx, dw, db, pf.tensor(g), pf.tensor(x), _t(w), EPS)
    _close(np.asarray(dx), dx_want, dtype)
    if affine:
        _close(np.asarray(dw), dw_want, dtype, sums=True, rows=rows)
        _close(np.asarray(db), db_want, dtype, sums=True, rows=rows)
    only = pf.empty(shape, dtype=dtype)
    _C._cuda_host_layer_norm_bwd(only, None, None, pf.tensor(g), pf.tensor(x), _t(w), EPS)
    assert np.asarray(only).tobytes() == np.asarray(dx).tobytes()
    # the cpu's fused backward (autograd with grad mode off inside backward)
    xc = pf.tensor(x).requires_grad_()
    wc = _t(w).requires_grad_() if affine else None
    bc = _t(b).requires_grad_() if affine else None
    pf.layer_norm(xc, (n,), wc, bc, eps=EPS).backward(pf.tensor(g))
    _close(np.asarray(dx), np.asarray(xc.grad).astype(np.float64), dtype)
    if affine:
        _close(np.asarray(dw), np.asarray(wc.grad).astype(np.float64), dtype, True, rows)
        _close(np.asarray(db), np.asarray(bc.grad).astype(np.float64), dtype, True, rows)


@host
def test_host_bindings_check_their_arguments():
    x = pf.ones((2, 3))
    with pytest.raises(TypeError, match=r"^_cuda_host_layer_norm: w must be a contiguous cpu "
                                        r"float32 tensor of 3 elements \(or None\)"):
        _C._cuda_host_layer_norm(pf.empty((2, 3)), x, pf.ones(4), None, EPS)
    with pytest.raises(TypeError, match=r"^_cuda_host_layer_norm_bwd: x must be a float32 or "
                                        r"float64 tensor of at least one dimension"):
        _C._cuda_host_layer_norm_bwd(None, None, None, x, pf.ones((2, 3), dtype=pf.int32),
                                     None, EPS)


# ============================================================ with a GPU


@gpu
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES)
def test_device_layer_norm_and_gradients_match_the_cpu(shape, dtype, affine):
    x, g, w, b = _data(shape, dtype, affine)
    n, rows = shape[-1], int(np.prod(shape[:-1]))
    out = {}
    for dev in ("cpu", "cuda"):
        xt = pf.tensor(x, device=dev).requires_grad_()
        wt = pf.tensor(w, device=dev).requires_grad_() if affine else None
        bt = pf.tensor(b, device=dev).requires_grad_() if affine else None
        y = pf.layer_norm(xt, (n,), wt, bt, eps=EPS)
        assert y.device == ("cuda:0" if dev == "cuda" else "cpu")
        y.backward(pf.tensor(g, device=dev))
        out[dev] = [np.asarray(t.detach().cpu()).astype(np.float64)
                    for t in (y, xt.grad) + ((wt.grad, bt.grad) if affine else ())]
    for k, (a, c) in enumerate(zip(out["cuda"], out["cpu"])):
        _close(a, c, dtype, sums=k >= 2, rows=rows)
