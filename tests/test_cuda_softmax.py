"""softmax and log_softmax on CUDA (csrc/cuda/softmax.cu, the device path of reduce.c's
softmax_entry).

* Host self-test (where libpyframe_cuda.so is built, CI included): ``_C._cuda_host_softmax``
  runs the kernel's per-lane code (one warp per row, butterfly reductions) on the host;
  against NumPy float64 (the oracle) and the cpu backend, for rows along the last axis and
  along inner axes, short and long rows, -inf and NaN entries.
* With a GPU: pf.softmax / pf.log_softmax of device tensors against the cpu, values and
  gradients.  exp and log are each side's own, so device results agree with the cpu's to a
  few ulps, not bit for bit.

Tolerances (float32 | float64): softmax atol 1e-7 | 1e-15 plus rtol 2e-6 | 1e-13;
log_softmax atol 2e-6 | 1e-13 times (1 + |y|).
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

# (shape, axis)
CASES = [((64, 10), -1), ((3, 50, 7), 1), ((5, 3), 0), ((1000,), 0), ((2, 5000), 1),
         ((4, 1), 1), ((2, 3, 33, 2), 2)]


def _oracle(a, axis, is_log):
    a = a.astype(np.float64)
    m = np.max(a, axis=axis, keepdims=True)
    d = a - m
    s = np.sum(np.exp(d), axis=axis, keepdims=True)
    return d - np.log(s) if is_log else np.exp(d) / s


def _check(got, want, dtype, is_log):
    f32 = dtype == "float32"
    with np.errstate(invalid="ignore"):
        if is_log:
            ok = np.abs(got - want) <= (2e-6 if f32 else 1e-13) * (1 + np.abs(want))
        else:
            ok = np.abs(got - want) <= (1e-7 if f32 else 1e-15) + \
                (2e-6 if f32 else 1e-13) * np.abs(want)
    assert (np.isnan(got) == np.isnan(want)).all()
    with np.errstate(invalid="ignore"):
        ok |= (got == want) | np.isnan(want)        # equal infinities, NaN where the cpu has NaN
    assert ok.all(), np.nanmax(np.abs(got - want))


def _geometry(shape, axis):
    axis = axis % len(shape)
    pre = int(np.prod(shape[:axis]))
    post = int(np.prod(shape[axis + 1:]))
    return pre, shape[axis], post


def _host(x, axis, is_log):
    out = pf.empty(x.shape, dtype=x.dtype)
    _C._cuda_host_softmax(out, x.contiguous(), *_geometry(x.shape, axis), is_log)
    return np.asarray(out)


@host
@pytest.mark.parametrize("is_log", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,axis", CASES)
def test_host_kernel_matches_numpy_and_the_cpu(shape, axis, dtype, is_log):
    a = (np.random.default_rng(5).standard_normal(shape) * 4).astype(dtype)
    x = pf.tensor(a)
    got = _host(x, axis, is_log)
    _check(got, _oracle(a, axis, is_log), dtype, is_log)
    cpu = np.asarray((pf.log_softmax if is_log else pf.softmax)(x, axis=axis))
    _check(got, cpu.astype(np.float64), dtype, is_log)


@host
@pytest.mark.parametrize("is_log", [False, True])
def test_host_kernel_infinities_and_nan_follow_the_cpu(is_log):
    a = np.random.default_rng(2).standard_normal((4, 40)).astype(np.float32)
    a[0, 3] = -np.inf                    # a masked entry: probability 0
    a[1, :] = -np.inf                    # a fully masked row: NaN, as on the cpu
    a[2, 7] = np.nan                     # NaN spreads over its row
    a[3, 9] = 1e30                       # one huge logit takes everything
    x = pf.tensor(a)
    got = _host(x, -1, is_log)
    cpu = np.asarray((pf.log_softmax if is_log else pf.softmax)(x, axis=-1)).astype(np.float64)
    _check(got, cpu, "float32", is_log)


@host
def test_host_binding_checks_its_arguments():
    x = pf.ones((2, 3))
    with pytest.raises(TypeError, match=r"^_cuda_host_softmax: out and x must be contiguous cpu "
                                        r"tensors of one dtype, float32 or float64"):
        _C._cuda_host_softmax(pf.empty((2, 3), dtype=pf.float64), x, 1, 2, 3, False)
    with pytest.raises(ValueError, match=r"^_cuda_host_softmax: pre \* n \* post = 1 \* 2 \* 2 "
                                         r"must be the number of elements of x and out \(6\)"):
        _C._cuda_host_softmax(pf.empty((2, 3)), x, 1, 2, 2, False)


# ============================================================ with a GPU


@gpu
@pytest.mark.parametrize("is_log", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,axis", CASES)
def test_device_softmax_matches_the_cpu(shape, axis, dtype, is_log):
    a = (np.random.default_rng(5).standard_normal(shape) * 4).astype(dtype)
    f = pf.log_softmax if is_log else pf.softmax
    y = f(pf.tensor(a, device="cuda"), axis=axis)
    assert y.device == "cuda:0" and y.dtype == pf.dtype(dtype) and y.shape == shape
    _check(np.asarray(y.cpu()), np.asarray(f(pf.tensor(a), axis=axis)).astype(np.float64),
           dtype, is_log)
    # a transposed (non-contiguous) input goes through one contiguous copy on the device
    yt = f(pf.tensor(a, device="cuda").T, axis=0)
    _check(np.asarray(yt.cpu()), _oracle(a.T, 0, is_log), dtype, is_log)


@gpu
@pytest.mark.parametrize("is_log", [False, True])
def test_device_softmax_gradient_matches_the_cpu(is_log):
    a = np.random.default_rng(9).standard_normal((16, 12))
    w = np.random.default_rng(10).standard_normal((16, 12))
    f = pf.log_softmax if is_log else pf.softmax
    grads = []
    for dev in ("cpu", "cuda"):
        x = pf.tensor(a, device=dev).requires_grad_()
        (f(x, axis=-1) * pf.tensor(w, device=dev)).sum().backward()
        grads.append(np.asarray(x.grad.cpu()))
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-14)
