"""The random draws and dropout masks on CUDA (csrc/cuda/random.cu) against the cpu's
(csrc/random.c): both compute through csrc/kernels/philox.h, so the same generator state
must give the same bits.

Two groups:

* Host self-test (any machine where libpyframe_cuda.so is built, CI included): the
  kernels' per-block code run on the host by ``_C._cuda_host_rng_fill`` and
  ``_C._cuda_host_dropout_mask`` equals the cpu's draws bit for bit, for every dtype, and
  the shared normal transform (its own log and sin/cos, no libm) agrees with a NumPy
  float64 Box-Muller over the same Philox words.
* With a GPU: ``pf.randn(n, device="cuda").cpu()`` and friends equal the cpu draw from the
  same state bit for bit, the generator advances alike, and dropout on the device equals
  dropout on the cpu.  Skipped with the reason where no GPU is usable.
"""
import re

import numpy as np
import pytest

import pyframe as pf
from pyframe import _C
from helpers_core import FLOAT_NAMES

CUDA = pf.cuda.is_available()
REASON = pf.cuda.status()
gpu = pytest.mark.skipif(not CUDA, reason="needs a usable CUDA GPU; here: " + REASON)
BUILT = _C._cuda_status()["kind"] != "not built"
host = pytest.mark.skipif(not BUILT, reason="libpyframe_cuda.so was not built here (no nvcc)")

INT_NAMES = ("bool", "uint8", "int8", "int16", "int32", "int64")


def _bits(t):
    return np.asarray(t.cpu()).view(np.uint8).tobytes()


# (kind, a, b, the cpu draw of n elements in a dtype)
FLOAT_DRAWS = {
    "rand": ("uniform", 0.0, 1.0, lambda n, dt, **kw: pf.rand(n, dtype=dt, **kw)),
    "uniform": ("uniform", -1.0, 4.0, lambda n, dt, **kw: pf.uniform(-1.0, 4.0, (n,), dtype=dt,
                                                                      **kw)),
    "uniform_narrow": ("uniform", 0.999, 1.0,
                       lambda n, dt, **kw: pf.uniform(0.999, 1.0, (n,), dtype=dt, **kw)),
    "randn": ("normal", 0.0, 1.0, lambda n, dt, **kw: pf.randn(n, dtype=dt, **kw)),
    "normal": ("normal", 2.0, 3.0, lambda n, dt, **kw: pf.normal(2.0, 3.0, (n,), dtype=dt, **kw)),
    "normal_std0": ("normal", -1.5, 0.0,
                    lambda n, dt, **kw: pf.normal(-1.5, 0.0, (n,), dtype=dt, **kw)),
}

# (low, high) per integer dtype: ranges that fit it
INT_RANGES = {"bool": (0, 2), "uint8": (3, 250), "int8": (-100, 100), "int16": (-3000, 30000),
              "int32": (-2**31, 2**31 - 1), "int64": (-2**62, 2**62 + 12345),
              "float16": (-50, 50), "bfloat16": (0, 7), "float32": (-2**40, 2**40),
              "float64": (-2**60, 2**60)}


# ============================================================ host self-test


@host
@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("draw", sorted(FLOAT_DRAWS))
def test_host_kernel_float_draws_equal_the_cpu(draw, name):
    kind, a, b, f = FLOAT_DRAWS[draw]
    for n, state in ((1, (3, 0)), (7, (2**64 - 1, 2**64 - 2)), (20_001, (12345, 678))):
        pf.set_rng_state(state)
        want = f(n, name)
        got = pf.empty(n, dtype=name)
        _C._cuda_host_rng_fill(got, kind, a, b, 0, 0, *state)
        assert _bits(got) == _bits(want), (draw, name, n)


@host
def test_host_kernel_keeps_float32_rand_below_one():
    # the state of test_random's rounding case: the second float64 sample rounds to 1.0f
    pf.set_rng_state((0, 24962728))
    want = pf.rand(2, dtype=pf.float32)
    got = pf.empty(2, dtype=pf.float32)
    _C._cuda_host_rng_fill(got, "uniform", 0.0, 1.0, 0, 0, 0, 24962728)
    assert _bits(got) == _bits(want)
    assert (np.asarray(got) < 1.0).all()


@host
@pytest.mark.parametrize("name", INT_NAMES + tuple(FLOAT_NAMES))
def test_host_kernel_randint_equals_the_cpu(name):
    low, high = INT_RANGES[name]
    for n, state in ((5, (9, 1)), (10_001, (2**63 + 7, 99))):
        pf.set_rng_state(state)
        want = pf.randint(low, high, (n,), dtype=name)
        got = pf.empty(n, dtype=name)
        _C._cuda_host_rng_fill(got, "int", 0.0, 0.0, low, high, *state)
        assert _bits(got) == _bits(want), (name, n)


@host
@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 1e-9])
def test_host_kernel_dropout_mask_equals_the_cpu(name, p):
    n = 10_001
    pf.manual_seed(31)
    pf.rand(3)                                     # start mid-stream, at an odd block
    seed, offset = pf.get_rng_state()
    want = pf.nn.functional.dropout(pf.ones(n, dtype=name), p, training=True)
    got = pf.empty(n, dtype=name)
    _C._cuda_host_dropout_mask(got, p, seed, offset)
    assert _bits(got) == _bits(want)
    assert pf.get_rng_state() == (seed, offset + (n + 1) // 2)


def _philox_words(seed, offset, blocks):
    return np.array([_C._philox(offset + j, seed) for j in range(blocks)], dtype=np.uint64)


def _u53(hi, lo):
    return ((hi << np.uint64(32) | lo) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def test_normal_transform_matches_a_numpy_box_muller():
    """The shared log and sin/cos (no libm) against NumPy's, over the same Philox words.

    Oracle: u1 = 1 - u53(w0, w1), u2 = u53(w2, w3), sqrt(-2 log u1) (cos, sin)(2 pi u2) in
    NumPy float64.  NumPy's own 2 pi u2 rounds (by up to half an ulp of 2 pi), and that
    error is scaled by the radius, so the two agree to a few ulps of the radius, not of each
    result (a result near 0 has a large relative error in the oracle itself):
    |diff| <= 16 eps (1 + r).
    """
    seed, offset, n = 2024, 77, 40_000
    pf.set_rng_state((seed, offset))
    x = np.asarray(pf.randn(n, dtype=pf.float64))
    w = _philox_words(seed, offset, n // 2)
    u1, u2 = 1.0 - _u53(w[:, 0], w[:, 1]), _u53(w[:, 2], w[:, 3])
    r = np.sqrt(-2.0 * np.log(u1))
    ref = np.empty(n)
    ref[0::2], ref[1::2] = r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)
    eps = np.finfo(np.float64).eps
    radius = np.repeat(r, 2)
    assert np.all(np.abs(x - ref) <= 16 * eps * (1 + radius))


def test_uniform_and_int_transforms_match_numpy():
    seed, offset, n = 5, 2**40, 10_000
    w = _philox_words(seed, offset, n // 2)
    pf.set_rng_state((seed, offset))
    u = np.asarray(pf.uniform(-3.0, 5.0, (n,), dtype=pf.float64))
    ref = np.empty(n)
    ref[0::2], ref[1::2] = _u53(w[:, 0], w[:, 1]), _u53(w[:, 2], w[:, 3])
    np.testing.assert_array_equal(u, -3.0 + 8.0 * ref)      # exact: one product, one sum
    pf.set_rng_state((seed, offset))
    k = np.asarray(pf.randint(-7, 1000, (n,)))
    x = np.empty(n, dtype=object)
    x[0::2] = [int(a) << 32 | int(b) for a, b in w[:, :2]]
    x[1::2] = [int(a) << 32 | int(b) for a, b in w[:, 2:]]
    np.testing.assert_array_equal(k, np.array([-7 + (v * 1007 >> 64) for v in x]))


@host
def test_host_self_test_bindings_check_their_arguments():
    out = pf.empty((4, 4))
    with pytest.raises(TypeError, match=r"^_cuda_host_rng_fill: out must be a contiguous cpu "
                                        r"tensor; got"):
        _C._cuda_host_rng_fill(out.T, "normal", 0.0, 1.0, 0, 0, 1, 0)
    with pytest.raises(TypeError, match=r"^_cuda_host_dropout_mask: out must be a contiguous "
                                        r"cpu tensor; got list"):
        _C._cuda_host_dropout_mask([1.0], 0.5, 1, 0)
    with pytest.raises(ValueError, match=re.escape(
            "_cuda_host_rng_fill: kind must be 'uniform', 'normal' or 'int'; got 'gamma'")):
        _C._cuda_host_rng_fill(out, "gamma", 0.0, 1.0, 0, 0, 1, 0)
    with pytest.raises(ValueError, match=r"^_cuda_host_rng_fill: pf_cuda_rng_fill: no kernel "
                                         r"for dtype number 5"):
        _C._cuda_host_rng_fill(pf.empty(3, dtype=pf.int64), "normal", 0.0, 1.0, 0, 0, 1, 0)
    with pytest.raises(ValueError, match=r"^_cuda_host_dropout_mask: pf_cuda_dropout_mask: bad "
                                         r"arguments \(p must be in \[0, 1\)\)"):
        _C._cuda_host_dropout_mask(out, 1.0, 1, 0)


# ============================================================ with a GPU


@gpu
@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("draw", sorted(FLOAT_DRAWS))
def test_device_float_draws_equal_the_cpu(draw, name):
    f = FLOAT_DRAWS[draw][3]
    for n in (1, 1001, 1_000_003):
        pf.manual_seed(99)
        pf.rand(5)
        state = pf.get_rng_state()
        want = f(n, name)
        after = pf.get_rng_state()
        pf.set_rng_state(state)
        got = f(n, name, device="cuda")
        assert got.device == "cuda:0" and got.dtype == want.dtype and got.shape == (n,)
        assert pf.get_rng_state() == after
        assert _bits(got) == _bits(want), (draw, name, n)


@gpu
@pytest.mark.parametrize("name", INT_NAMES + tuple(FLOAT_NAMES))
def test_device_randint_equals_the_cpu(name):
    low, high = INT_RANGES[name]
    pf.manual_seed(4)
    want = pf.randint(low, high, (100_001,), dtype=name)
    pf.manual_seed(4)
    got = pf.randint(low, high, (100_001,), dtype=name, device="cuda")
    assert got.device == "cuda:0" and _bits(got) == _bits(want)


@gpu
def test_device_draw_shapes_and_requires_grad():
    pf.manual_seed(8)
    want = pf.randn(3, 4, 5)
    pf.manual_seed(8)
    got = pf.randn(3, 4, 5, device="cuda", requires_grad=True)
    assert got.shape == (3, 4, 5) and got.requires_grad and _bits(got) == _bits(want)
    assert pf.rand(0, device="cuda").shape == (0,)


@gpu
@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("p", [0.2, 0.7, 1.0])
def test_device_dropout_equals_the_cpu(name, p):
    x = pf.randn(257, 33, dtype=name)
    pf.manual_seed(6)
    want = pf.nn.functional.dropout(x, p, training=True)
    pf.manual_seed(6)
    got = pf.nn.functional.dropout(x.to("cuda"), p, training=True)
    assert got.device == "cuda:0" and _bits(got) == _bits(want)


@gpu
def test_device_dropout_gradient_equals_the_cpu():
    x = pf.randn(64, 9)
    xc = x.detach().requires_grad_()
    xg = x.to("cuda").detach().requires_grad_()
    pf.manual_seed(12)
    pf.nn.functional.dropout(xc, 0.3, training=True).backward(pf.ones((64, 9)))
    pf.manual_seed(12)
    pf.nn.functional.dropout(xg, 0.3, training=True).backward(pf.ones((64, 9), device="cuda"))
    assert _bits(xg.grad) == _bits(xc.grad)
