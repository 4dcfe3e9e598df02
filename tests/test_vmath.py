"""Accuracy of pyframe's own float32 exp, log, tanh, sigmoid and gelu
(csrc/kernels/vmath.h, reached through pf.exp etc. on float32 tensors).

The error is counted in units in the last place of float32 against a
float64 reference rounded to float32: the distance between the two results
in the ordered sequence of float32 values (so that crossing a power of two,
the subnormal range and overflow to inf all count alike).  The points are
(a) a dense grid of float32 bit patterns over the whole line, subnormals
included, (b) every float32 within a few thousand ULPs of the thresholds
where the algorithms change regime or the result overflows / underflows,
and (c) the special values.

The bounds are the ones stated in vmath.h's header and docs/architecture.md.
"""
import math

import numpy as np
import pytest

import pyframe as pf

BOUNDS = {"exp": 2, "log": 2, "tanh": 3, "sigmoid": 3, "gelu": 4}

_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _gelu_ref(x):
    # 0.5 x erfc(-x / sqrt 2) in float64; beyond |x| = 40 it is x or (-)0 exactly
    out = np.where(x > 40, x, -0.0 * np.abs(x))
    mid = np.abs(x) <= 40
    out[mid] = 0.5 * x[mid] * _erfc(-x[mid] / math.sqrt(2.0))
    return out


REFERENCE = {
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "gelu": _gelu_ref,
}

FLT_MIN = float(np.finfo(np.float32).tiny)
FLT_MAX = float(np.finfo(np.float32).max)
# where each algorithm changes regime, overflows or underflows
THRESHOLDS = {
    "exp": [0.0, math.log(FLT_MAX), math.log(FLT_MIN), math.log(2.0 ** -149),
            math.log(2.0 ** -150), math.log(2) / 2, -math.log(2) / 2, 1.0, -1.0],
    "log": [1.0, FLT_MIN, 2.0 ** -149, math.sqrt(2.0), math.sqrt(0.5), 2.0, 0.5, FLT_MAX],
    "tanh": [0.0, 0.55, -0.55, 9.01, -9.01, 44.0, 2.0 ** -20, 1.0],
    "sigmoid": [0.0, -math.log(FLT_MAX), math.log(FLT_MIN), math.log(2.0 ** -149), 16.6,
                -16.6, 88.7],
    "gelu": [0.0, -5.0, 5.0, -13.2, -14.1, 1.0, -1.0, 2.0 ** -60],
}


def ordered(a):
    """float32 values as integers in the same order, consecutive floats one apart."""
    i = np.asarray(a, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)


def from_ordered(o):
    o = np.asarray(o, dtype=np.int64)
    bits = np.where(o < 0, (-o) | 0x80000000, o).astype(np.uint32)
    return bits.view(np.float32)


def dense_grid(stride=1021):
    """Every stride-th float32 bit pattern, both signs: ~4 million finite floats
    spread evenly in ULP space, so every binade, subnormals included, is covered."""
    bits = np.arange(0, 2 ** 32, stride, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    return x[np.isfinite(x)]


def around(points, n=2048):
    """Every float32 within n ULPs of each point."""
    o = ordered(np.array(points, dtype=np.float32))
    x = from_ordered((o[:, None] + np.arange(-n, n + 1)[None, :]).ravel())
    return x[np.isfinite(x)]


def ulp_errors(name, x):
    got = np.asarray(getattr(pf, name)(pf.tensor(x)))
    assert got.dtype == np.float32
    with np.errstate(all="ignore"):
        want = REFERENCE[name](x.astype(np.float64)).astype(np.float32)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), (
        "%s: NaN where the reference has none (or the reverse) at x = %r"
        % (name, x[np.isnan(got) != nan][:5]))
    err = np.abs(ordered(got) - ordered(want))
    return np.where(nan, 0, err), got, want


def report(name, x, err, got, want):
    i = int(np.argmax(err))
    return ("%s: %d ULP at x = %r (got %r, reference %r), bound %d"
            % (name, err[i], float(x[i]), float(got[i]), float(want[i]), BOUNDS[name]))


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_float32_ulp_error_on_a_dense_grid(name):
    x = dense_grid()
    if name == "log":
        x = x[x >= 0]            # negative inputs: NaN, checked with the special values
    x = np.concatenate([x, around(THRESHOLDS[name])])
    err, got, want = ulp_errors(name, x)
    assert err.max() <= BOUNDS[name], report(name, x, err, got, want)


def test_the_grid_reaches_every_regime():
    # the test above is only as good as its points: subnormals, both signs,
    # the largest finite floats and values near 1 must all be in it
    x = dense_grid()
    a = np.abs(x)
    assert ((a > 0) & (a < FLT_MIN)).sum() > 1000
    assert (x < 0).sum() > 1_000_000 and (x > 0).sum() > 1_000_000
    assert (a > 1e38).sum() > 100
    assert ((a > 0.999) & (a < 1.001)).sum() > 10


SPECIAL = [0.0, -0.0, math.inf, -math.inf, math.nan]
EXPECTED = {
    # name: results for 0, -0, inf, -inf, nan (sign of zeros checked too)
    "exp": [1.0, 1.0, math.inf, 0.0, math.nan],
    "log": [-math.inf, -math.inf, math.inf, math.nan, math.nan],
    "tanh": [0.0, -0.0, 1.0, -1.0, math.nan],
    "sigmoid": [0.5, 0.5, 1.0, 0.0, math.nan],
    "gelu": [0.0, -0.0, math.inf, -0.0, math.nan],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("dtype", [pf.float32, pf.float64])
def test_float32_special_values(name, dtype):
    # float64 goes through libm (and pyframe's limits for gelu); both must agree
    got = getattr(pf, name)(pf.tensor(SPECIAL, dtype=dtype)).tolist()
    for x, g, w in zip(SPECIAL, got, EXPECTED[name]):
        if math.isnan(w):
            assert math.isnan(g), (name, x, g)
        else:
            assert g == w and math.copysign(1, g) == math.copysign(1, w), (name, x, g, w)


def test_log_of_negative_numbers_and_exact_values():
    x = pf.tensor([-1.0, -FLT_MIN, -2.0 ** -149, 1.0, 2.0, 0.5])
    got = np.asarray(pf.log(x))
    assert np.isnan(got[:3]).all()
    assert got[3] == 0.0
    assert got[4] == np.float32(math.log(2)) and got[5] == np.float32(-math.log(2))


def test_exp_overflow_and_underflow_edges():
    # the largest float32 whose exp rounds to a finite float32, found from float64
    big = np.float32(math.log(FLT_MAX))
    with np.errstate(over="ignore"):
        while not np.isfinite(np.float32(np.exp(np.float64(big)))):
            big = np.nextafter(big, np.float32(0))
    got = np.asarray(pf.exp(pf.tensor([big, np.nextafter(big, np.float32(np.inf)),
                                       np.float32(-103.97), np.float32(-104.0)])))
    assert np.isfinite(got[0]) and got[1] == np.inf
    assert got[2] == np.float32(2.0 ** -149)    # the smallest subnormal, rounded up
    assert got[3] == 0.0


def test_sigmoid_keeps_subnormal_results():
    # 1 / (1 + exp(-x)) gives 0 here (exp overflows); sigmoid(x) ~ exp(x) does not
    x = np.array([-88.0, -90.0, -95.0, -100.0, -103.0], dtype=np.float32)
    got = np.asarray(pf.sigmoid(pf.tensor(x)))
    want = np.exp(x.astype(np.float64)).astype(np.float32)
    assert (got > 0).all()
    assert (np.abs(ordered(got) - ordered(want)) <= BOUNDS["sigmoid"]).all()
