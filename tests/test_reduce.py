"""Reductions, scans and softmax (csrc/reduce.c) against NumPy in float64.

Inputs are drawn by hypothesis: shapes of 0 to 4 dimensions (0-d and 0-size
included), every dtype an op takes, and five layouts -- contiguous,
transposed, reversed (negative strides), stepped (non-contiguous) and
broadcast (stride 0).  The oracle is NumPy on the same values in float64
(int64 for integer sums and products, which wrap in both).

Tolerances, relative to the size of what is summed (sum |x| for sums, the
mean square for variances): float64 1e-12, float32 2e-5, float16 2e-3 and
bfloat16 1e-2 -- float16 and bfloat16 are accumulated in float32, so their
error is the final rounding to 11 and 8 significant bits.
"""
import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import pyframe as pf
from helpers_core import np_dtype
from op_rows import reduce as reduce_rows

FLOATS = ["float16", "bfloat16", "float32", "float64"]
INTS = ["uint8", "int8", "int16", "int32", "int64"]
ALL = ["bool"] + INTS + FLOATS
LAYOUTS = ["contiguous", "transposed", "reversed", "stepped", "broadcast"]
RTOL = {"float16": 2e-3, "bfloat16": 1e-2, "float32": 2e-5, "float64": 1e-12}

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------ inputs

def _values(rng, shape, dtype, kind):
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype in INTS:
        lo = 0 if dtype == "uint8" else -4
        hi = 3 if kind == "prod" else 9
        return rng.integers(lo if kind != "prod" else -2 * (dtype != "uint8"), hi, shape)
    if kind == "prod":
        # near 1 with random signs: long products stay in range
        return rng.uniform(0.95, 1.05, shape) * rng.choice([-1.0, 1.0], shape)
    if kind == "ties":
        return rng.integers(-3, 4, shape).astype(np.float64)
    return rng.normal(size=shape) * 3


def make_input(shape, dtype, layout, seed, kind="normal"):
    """(NumPy view, pf view) holding the same values in `dtype` with the same layout."""
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    nd = len(shape)
    if layout == "transposed" and nd >= 2:
        base_shape = shape[::-1]
    elif layout == "stepped":
        base_shape = tuple(2 * s for s in shape)
    elif layout == "broadcast" and nd >= 1:
        base_shape = (1,) + shape[1:]
    else:
        base_shape = shape
    base = _values(rng, base_shape, dtype, kind).astype(np_dtype(dtype))
    t = pf.tensor(base)
    if layout == "transposed" and nd >= 2:
        return base.T, t.T
    if layout == "reversed" and nd >= 1:
        key = tuple(slice(None, None, -1) for _ in range(nd))
        return base[key], t[key]
    if layout == "stepped":
        key = tuple(slice(None, None, 2) for _ in range(nd))
        return base[key], t[key]
    if layout == "broadcast" and nd >= 1:
        return np.broadcast_to(base, shape), t.expand(*shape)
    return base, t


@st.composite
def inputs(draw, dtypes=ALL, min_ndim=0, max_ndim=4, max_side=6):
    nd = draw(st.integers(min_ndim, max_ndim))
    shape = draw(st.lists(st.integers(0, max_side), min_size=nd, max_size=nd))
    return (tuple(shape), draw(st.sampled_from(dtypes)), draw(st.sampled_from(LAYOUTS)),
            draw(st.integers(0, 2**32 - 1)))


@st.composite
def axes(draw, ndim, single=False):
    """None, an int (maybe negative) or, unless single, a tuple of distinct axes."""
    if ndim == 0:
        return draw(st.sampled_from([None, 0, -1] if single else [None, 0, -1, ()]))
    choice = draw(st.sampled_from(["none", "int", "tuple"] if not single else ["none", "int"]))
    if choice == "none":
        return None
    if choice == "int":
        a = draw(st.integers(0, ndim - 1))
        return a - ndim if draw(st.booleans()) else a
    picked = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    return tuple(a - ndim if draw(st.booleans()) else a for a in picked)


def np_axis(axis, ndim):
    """The axis argument NumPy gets for ours (0-d tensors take 0 / -1 as 'everything')."""
    if ndim == 0 and axis in (0, -1):
        return None
    return axis


def reduced_count(shape, axis):
    if axis is None:
        return math.prod(shape)
    axs = (axis,) if isinstance(axis, int) else axis
    return math.prod(shape[a] for a in axs)


def result(t):
    """A pf result as a float64 (or int64 / bool) NumPy array."""
    a = np.asarray(t)
    if a.dtype.kind == "f" or a.dtype.name == "bfloat16":
        return a.astype(np.float64)
    return a


def check_close(got, want, res_dtype, scale=None, rtol=None):
    """got, want float64; the error allowed is rtol of |want| plus rtol of `scale`."""
    rtol = RTOL[res_dtype] if rtol is None else rtol
    # round the oracle to the result dtype: float16 overflow and rounding are not errors
    want = np.asarray(want, dtype=np.float64).astype(np_dtype(res_dtype)).astype(np.float64)
    atol = 0.0 if scale is None else rtol * np.asarray(scale, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == want.shape
    fin = np.isfinite(want)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)])
    with np.errstate(invalid="ignore"):    # inf - inf where both overflowed: not compared
        err = np.abs(got - want)
        bound = rtol * np.abs(want) + 1e-300 + (np.broadcast_to(atol, want.shape)
                                                if scale is not None else 0)
    bad = fin & ~(err <= bound)
    assert not bad.any(), "max error %g over bound at %s" % (err[bad].max(), np.argwhere(bad)[:3])


# ------------------------------------------------------------ reductions

SUM_LIKE = ["sum", "mean", "prod", "max", "min", "all", "any", "var", "std", "logsumexp"]


def result_dtype(op, dtype):
    if op in ("sum", "prod"):
        return dtype if dtype in FLOATS else "int64"
    if op in ("mean", "var", "std", "logsumexp", "norm"):
        return dtype if dtype in FLOATS else "float32"
    if op in ("all", "any"):
        return "bool"
    if op in ("argmax", "argmin"):
        return "int64"
    return dtype


def np_logsumexp(x, axis, keepdims):
    if x.size == 0 or reduced_count(x.shape, axis) == 0:
        with np.errstate(divide="ignore"):
            return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))
    m = np.max(x, axis=axis, keepdims=True)
    c = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = np.sum(np.exp(x - c), axis=axis, keepdims=True)
        r = np.log(s) + c
    return r if keepdims else np.squeeze(r, axis=axis) if axis is not None else r.reshape(())


@pytest.mark.parametrize("op", SUM_LIKE)
@SETTINGS
@given(data=st.data())
def test_reduction_matches_numpy(op, data):
    shape, dtype, layout, seed = data.draw(inputs())
    a, t = make_input(shape, dtype, layout, seed, kind="prod" if op == "prod" else "normal")
    axis = data.draw(axes(len(shape)))
    keepdims = data.draw(st.booleans())
    method = data.draw(st.booleans())
    kw = dict(axis=axis, keepdims=keepdims)
    ddof = 0
    if op in ("var", "std"):
        ddof = data.draw(st.sampled_from([0, 1, 2]))
        kw["correction" if data.draw(st.booleans()) else "ddof"] = ddof
    nax = np_axis(axis, len(shape))
    n = reduced_count(shape, nax)
    if op in ("max", "min") and n == 0:
        with pytest.raises(ValueError, match=op + r": the reduced axis is empty"):
            getattr(pf, op)(t, **kw)
        return
    got = getattr(t, op)(**kw) if method else getattr(pf, op)(t, **kw)
    res = result_dtype(op, dtype)
    assert str(got.dtype) == res
    x64 = a.astype(np.float64)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if op in ("sum", "prod") and res == "int64":
            want = getattr(np, op)(a.astype(np.int64), axis=nax, keepdims=keepdims)
            np.testing.assert_array_equal(np.asarray(got), want)
            return
        if op in ("all", "any"):
            want = getattr(np, op)(x64 != 0, axis=nax, keepdims=keepdims)
            np.testing.assert_array_equal(np.asarray(got), want)
            return
        if op in ("max", "min"):
            want = getattr(np, op)(x64, axis=nax, keepdims=keepdims)
            np.testing.assert_array_equal(result(got), want)
            return
        if op == "logsumexp":
            want = np_logsumexp(x64, nax, keepdims)
            scale = 1.0 + np.abs(want)
        elif op in ("var", "std"):
            want = getattr(np, op)(x64, axis=nax, keepdims=keepdims, ddof=ddof)
            scale = np.mean(x64 ** 2, axis=nax, keepdims=keepdims) * (4 if op == "var" else 0)
            if op == "std":
                scale = np.sqrt(np.mean(x64 ** 2, axis=nax, keepdims=keepdims))
            scale = scale * max(n, 1) / max(n - ddof, 1)
        elif op == "prod":
            want = np.prod(x64, axis=nax, keepdims=keepdims)
            scale = None
        else:
            want = getattr(np, op)(x64, axis=nax, keepdims=keepdims)
            scale = np.sum(np.abs(x64), axis=nax, keepdims=keepdims)
            if op == "mean":
                scale = scale / max(n, 1)
        rtol = RTOL[res]
        if op == "prod":
            rtol = max(rtol, 4 * n * (1e-15 if res == "float64" else 6e-8))
        check_close(result(got), want, res, scale, rtol=rtol)


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@SETTINGS
@given(data=st.data())
def test_argmax_argmin_match_numpy(op, data):
    shape, dtype, layout, seed = data.draw(inputs(dtypes=ALL))
    a, t = make_input(shape, dtype, layout, seed, kind="ties")
    if dtype in FLOATS and a.size and data.draw(st.booleans()):
        # NaN counts as the max and the min (NumPy): put some in
        a = np.array(a)
        flat = a.reshape(-1)
        flat[data.draw(st.integers(0, flat.size - 1))] = np.nan
        t = pf.tensor(a)
    axis = data.draw(axes(len(shape), single=True))
    keepdims = data.draw(st.booleans())
    nax = np_axis(axis, len(shape))
    if reduced_count(shape, nax) == 0:
        with pytest.raises(ValueError, match=op + r": the reduced axis is empty"):
            getattr(pf, op)(t, axis=axis)
        return
    got = getattr(pf, op)(t, axis=axis, keepdims=keepdims)
    assert got.dtype == pf.int64
    want = getattr(np, op)(a.astype(np.float64), axis=nax, keepdims=keepdims)
    if nax is None and keepdims:
        want = np.reshape(want, (1,) * len(shape))
    np.testing.assert_array_equal(np.asarray(got), want)


def np_norm(x, ord, axis, keepdims):
    """Vector norm of x over `axis` (all the given axes as one vector)."""
    nd = x.ndim
    axs = tuple(range(nd)) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    axs = tuple(a % nd for a in axs) if nd else ()
    kept = [d for d in range(nd) if d not in axs]
    moved = np.transpose(x, kept + list(axs)) if nd else x
    flat = moved.reshape([x.shape[d] for d in kept] + [math.prod(x.shape[d] for d in axs)])
    o = {None: 2, "fro": 2}.get(ord, ord)
    r = np.linalg.norm(flat, ord=o, axis=-1)
    if keepdims:
        r = r.reshape([1 if d in axs else x.shape[d] for d in range(nd)])
    return r


@SETTINGS
@given(data=st.data(), ord=st.sampled_from([None, "fro", 1, 2, np.inf, -np.inf, 0, 3, 0.5]))
def test_norm_matches_numpy(data, ord):
    shape, dtype, layout, seed = data.draw(inputs(dtypes=FLOATS + ["int32", "bool"]))
    a, t = make_input(shape, dtype, layout, seed)
    axis = data.draw(axes(len(shape)))
    keepdims = data.draw(st.booleans())
    nax = np_axis(axis, len(shape))
    if reduced_count(shape, nax) == 0 and ord in (np.inf, -np.inf):
        with pytest.raises(ValueError, match=r"norm: the reduced axis is empty"):
            pf.norm(t, ord=ord, axis=axis)
        return
    got = pf.norm(t, ord, axis, keepdims) if data.draw(st.booleans()) else \
        t.norm(ord=ord, axis=axis, keepdims=keepdims)
    res = result_dtype("norm", dtype)
    assert str(got.dtype) == res
    x64 = a.astype(np.float64)
    with np.errstate(all="ignore"):
        want = np_norm(x64, ord, nax, keepdims)
    rtol = RTOL[res] * (4 if ord == 0.5 else 1)
    check_close(result(got), want, res, rtol=rtol)


# ------------------------------------------------------------ scans, softmax

@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
@SETTINGS
@given(data=st.data())
def test_cumsum_cumprod_match_numpy(op, data):
    shape, dtype, layout, seed = data.draw(inputs())
    a, t = make_input(shape, dtype, layout, seed, kind="prod" if op == "cumprod" else "normal")
    axis = data.draw(axes(len(shape), single=True))
    got = getattr(pf, op)(t, axis=axis) if data.draw(st.booleans()) else getattr(t, op)(axis)
    res = result_dtype("sum", dtype)
    assert str(got.dtype) == res
    nax = np_axis(axis, len(shape))
    if res == "int64":
        want = getattr(np, op)(a.astype(np.int64), axis=nax)
        np.testing.assert_array_equal(np.asarray(got), want)
        return
    x64 = a.astype(np.float64)
    want = getattr(np, op)(x64, axis=nax)
    if op == "cumsum":
        scale = np.cumsum(np.abs(x64), axis=nax)
        check_close(result(got), want, res, scale)
    else:
        n = x64.shape[nax] if nax is not None else x64.size
        check_close(result(got), want, res, rtol=max(RTOL[res], 4 * n * 6e-8))


def np_softmax(x, axis, log):
    ax = axis
    m = np.max(x, axis=ax, keepdims=True)
    e = np.exp(x - m)
    s = np.sum(e, axis=ax, keepdims=True)
    return (x - m) - np.log(s) if log else e / s


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@SETTINGS
@given(data=st.data())
def test_softmax_matches_numpy(op, data):
    shape, dtype, layout, seed = data.draw(inputs(dtypes=FLOATS + ["int16", "bool"]))
    a, t = make_input(shape, dtype, layout, seed)
    default = data.draw(st.booleans())
    axis = -1 if default else data.draw(axes(len(shape), single=True))
    got = getattr(pf, op)(t) if default else getattr(t, op)(axis=axis)
    res = dtype if dtype in FLOATS else "float32"
    assert str(got.dtype) == res and got.shape == tuple(shape)
    if a.size == 0:
        return
    nax = np_axis(axis, len(shape))
    x64 = a.astype(np.float64)
    want = np_softmax(x64, nax, op == "log_softmax")
    scale = 1.0 + np.abs(want) if op == "log_softmax" else None
    check_close(result(got), want, res, scale, rtol=max(RTOL[res], 1e-6 if res == "float32" else 0))


def test_softmax_edge_values():
    # -inf entries get probability 0; a row with a NaN is NaN (as PyTorch)
    x = pf.tensor([[0.0, -np.inf, 1.0], [np.nan, 1.0, 2.0]])
    got = np.asarray(pf.softmax(x))
    e = np.exp([0.0 - 1.0, 0.0])
    np.testing.assert_allclose(got[0], [e[0] / e.sum(), 0.0, e[1] / e.sum()], rtol=1e-6)
    assert np.isnan(got[1]).all()
    got = np.asarray(pf.log_softmax(pf.tensor([[1000.0, 0.0]])))
    np.testing.assert_allclose(got, [[0.0, -1000.0]])
    # a long row (many blocks), along a strided axis, and float64
    rng = np.random.default_rng(3)
    a = rng.normal(size=(3, 20000)) * 5
    for ax in (1, 0):
        for dt in (pf.float32, pf.float64):
            got = np.asarray(pf.softmax(pf.tensor(a, dtype=dt), axis=ax)).astype(np.float64)
            np.testing.assert_allclose(got, np_softmax(a, ax, False),
                                       rtol=1e-5 if dt == pf.float32 else 1e-12, atol=1e-12)
    got = pf.softmax(pf.tensor(a), axis=None)
    np.testing.assert_allclose(np.asarray(got), np_softmax(a, None, False), rtol=1e-5, atol=1e-12)
    got = pf.log_softmax(pf.tensor(a.astype(np.float32)), axis=0, dtype=pf.float64)
    assert got.dtype == pf.float64


# ------------------------------------------------------------ semantics

def test_dtype_rules_and_arguments():
    i8 = pf.tensor(np.array([[100, 100], [100, 27]], dtype=np.int8))
    assert pf.sum(i8).dtype == pf.int64 and pf.sum(i8).item() == 327
    assert pf.prod(pf.tensor([True, True])).dtype == pf.int64
    assert pf.mean(i8).dtype == pf.float32 and pf.mean(i8).item() == pytest.approx(81.75)
    assert pf.sum(i8, dtype=pf.int8).item() == np.int8(327 - 256)   # wraps, as NumPy
    assert pf.sum(i8, dtype=pf.float64).dtype == pf.float64
    assert pf.mean(i8, dtype="float64").dtype == pf.float64
    assert pf.cumsum(i8, axis=1, dtype=pf.float32).dtype == pf.float32
    assert pf.cumprod(pf.tensor([True, False])).dtype == pf.int64
    h = pf.tensor(np.full(5000, 0.1, dtype=np.float16))
    # float32 accumulation: a float16 running sum would stall at 256
    assert pf.sum(h).dtype == pf.float16
    assert pf.sum(h).item() == pytest.approx(500, rel=1e-3)
    assert pf.max(pf.tensor([True, False])).dtype == pf.bool
    assert pf.argmax(pf.tensor([1, 3, 3])).item() == 1       # first occurrence
    assert pf.argmin(pf.tensor([[4.0, 1.0], [1.0, 0.0]])).item() == 3   # flat index
    assert pf.argmax(pf.tensor([1.0, np.nan, 5.0, np.nan])).item() == 1
    assert np.isnan(pf.max(pf.tensor([1.0, np.nan, 3.0])).item())
    assert np.isnan(pf.min(pf.tensor([np.nan, 1.0])).item())
    assert pf.all(pf.tensor([np.nan, 1.0])).item() is True
    # empty reductions with an identity
    e = pf.zeros(0, 3)
    assert pf.sum(e).item() == 0 and pf.prod(e).item() == 1
    assert np.isnan(pf.mean(e).item()) and np.isnan(pf.var(e, axis=0).numpy()).all()
    assert pf.logsumexp(e).item() == -np.inf and pf.norm(e).item() == 0
    assert pf.all(e).item() is True and pf.any(e).item() is False
    assert pf.max(pf.zeros(3, 0), axis=0).shape == (0,)       # nothing to reduce into
    # PyTorch spellings: dim / keepdim / correction / unbiased / p, amax / amin
    x = pf.tensor(np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(np.asarray(x.sum(dim=1, keepdim=True)), [[6], [22], [38]])
    assert x.var(dim=0, correction=1).numpy().tolist() == [16.0] * 4
    assert x.std(unbiased=True).item() == pytest.approx(np.std(np.arange(12.0), ddof=1))
    assert pf.norm(x, p=1).item() == 66 and pf.norm(x, "fro").item() == pytest.approx(
        np.sqrt((np.arange(12.0) ** 2).sum()))
    assert pf.amax(x, axis=0).numpy().tolist() == [8, 9, 10, 11]
    assert x.amin(1).numpy().tolist() == [0, 4, 8]
    assert x.max().item() == 11 and not isinstance(x.max(axis=0), tuple)
    # axis=() reduces nothing (NumPy); keepdims with axis=None keeps every axis as 1
    assert pf.sum(x, axis=()).shape == (3, 4)
    assert pf.mean(x, keepdims=True).shape == (1, 1)
    assert pf.cumsum(x).shape == (12,)                         # axis None flattens
    # lists are accepted as input
    assert pf.sum([[1, 2], [3, 4]], axis=0).numpy().tolist() == [4, 6]


def test_out_argument():
    x = pf.tensor(np.arange(12.0).reshape(3, 4))
    out = pf.zeros(4)
    r = pf.sum(x, axis=0, out=out)
    assert r is out and out.numpy().tolist() == [12, 15, 18, 21]
    out64 = pf.zeros(3, dtype=pf.float64)
    pf.mean(x, axis=1, out=out64)
    assert out64.numpy().tolist() == [1.5, 5.5, 9.5]
    idx = pf.zeros(4, dtype=pf.int64)
    pf.argmax(x, axis=0, out=idx)
    assert idx.numpy().tolist() == [2, 2, 2, 2]
    c = pf.zeros(3, 4)
    pf.cumsum(x, axis=1, out=c)
    np.testing.assert_array_equal(c.numpy(), np.cumsum(np.arange(12.0).reshape(3, 4), axis=1))


# ------------------------------------------------------------ determinism

@pytest.mark.parametrize("shape,axis", [
    ((1 << 21,), None),            # one long row: its blocks are shared between threads
    ((1024, 2048), 0),             # the column path, many chunks
    ((2048, 1024), 1),             # many rows, threads over rows
    ((64, 128, 256), (0, 2)),      # gathered blocks
])
def test_same_bits_on_one_and_two_threads(shape, axis):
    rng = np.random.default_rng(11)
    a = (rng.normal(size=shape) * 10 + 3).astype(np.float32)
    t = pf.tensor(a)
    ops = [lambda: pf.sum(t, axis=axis), lambda: pf.mean(t, axis=axis),
           lambda: pf.var(t, axis=axis), lambda: pf.norm(t, axis=axis),
           lambda: pf.logsumexp(t, axis=axis), lambda: pf.max(t, axis=axis),
           lambda: pf.prod(t * 0 + 1.0000001, axis=axis)]
    if axis is None or isinstance(axis, int):
        ops += [lambda: pf.argmax(t, axis=axis), lambda: pf.softmax(t, axis=axis),
                lambda: pf.log_softmax(t, axis=axis)]
    saved = pf.get_num_threads()
    try:
        results = []
        for nth in (1, 2):
            pf.set_num_threads(nth)
            results.append([np.asarray(f()).copy() for f in ops])
    finally:
        pf.set_num_threads(saved)
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()
    # and the float32 blocked sum stays close to the float64 one
    want = a.astype(np.float64).sum(axis=axis)
    np.testing.assert_allclose(results[0][0], want,
                               atol=1e-6 * np.abs(a).astype(np.float64).sum(axis=axis).max())


def test_large_reductions_match_numpy():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(3000, 700)).astype(np.float32)
    x64 = a.astype(np.float64)
    t = pf.tensor(a)
    for axis in (None, 0, 1, (0, 1)):
        np.testing.assert_allclose(np.asarray(pf.sum(t, axis=axis)), x64.sum(axis=axis),
                                   atol=2e-6 * np.abs(x64).sum(axis=axis).max())
        np.testing.assert_allclose(np.asarray(pf.var(t, axis=axis)), x64.var(axis=axis),
                                   rtol=1e-5)
        np.testing.assert_array_equal(np.asarray(pf.max(t, axis=axis)), a.max(axis=axis))
    for axis in (None, 0, 1):
        np.testing.assert_array_equal(np.asarray(pf.argmin(t, axis=axis)),
                                      a.argmin(axis=axis))
    # float16 in, column path with conversion, tall-thin and short rows
    h = rng.normal(size=(5000, 3)).astype(np.float16)
    np.testing.assert_allclose(np.asarray(pf.sum(pf.tensor(h), axis=0)).astype(np.float64),
                               h.astype(np.float64).sum(axis=0), rtol=2e-3, atol=0.1)
    np.testing.assert_allclose(np.asarray(pf.mean(pf.tensor(a[:, :5]), axis=1)),
                               x64[:, :5].mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(pf.std(pf.tensor(a[:, :4]), axis=0)),
                               x64[:, :4].std(axis=0), rtol=1e-5)


GEOMETRIES = [
    ("rows, several blocks", (3, 9000), lambda z: z, 1),
    ("column, narrow", (9000, 3), lambda z: z, 0),
    ("column, chunks", (300, 40), lambda z: z, 0),
    ("column, strips", (2, 3, 1100), lambda z: z, 1),
    ("gathered region", (20, 30, 40), lambda z: z, (0, 2)),
    ("gathered blocks", (20, 7, 450), lambda z: z, (0, 2)),
    ("strided rows", (9000, 3), lambda z: z.T, 1),
    ("reversed rows", (50, 200), lambda z: z[:, ::-1], 1),
    ("everything", (4, 5000), lambda z: z, None),
]


@pytest.mark.parametrize("dtype", ["float32", "float16", "int32"])
@pytest.mark.parametrize("name,shape,view,axis", GEOMETRIES, ids=[g[0] for g in GEOMETRIES])
def test_reduction_paths_match_numpy(name, shape, view, axis, dtype):
    # sizes past one block (4096) and one column chunk (128), each loop path, 1 and 2 threads
    rng = np.random.default_rng(len(name) * 7 + sum(shape))
    base = (rng.normal(size=shape) * 4).astype(dtype)
    a = view(base)
    t = view(pf.tensor(base))
    x64 = a.astype(np.float64)
    saved = pf.get_num_threads()
    try:
        for nth in (1, 2):
            pf.set_num_threads(nth)
            for op in ["sum", "mean", "max", "min", "var", "logsumexp", "any"]:
                got = getattr(pf, op)(t, axis=axis)
                res = result_dtype(op, dtype)
                if op == "logsumexp":
                    want = np_logsumexp(x64, axis, False)
                else:
                    want = getattr(np, op)(x64, axis=axis)
                if op in ("max", "min", "any") or res == "int64":
                    np.testing.assert_array_equal(result(got), want)
                else:
                    scale = {"sum": np.sum(np.abs(x64), axis=axis),
                             "mean": np.mean(np.abs(x64), axis=axis),
                             "var": 4 * np.mean(x64 ** 2, axis=axis)}.get(op, 1 + np.abs(want))
                    check_close(result(got), want, res, scale)
            if not isinstance(axis, tuple):
                np.testing.assert_array_equal(np.asarray(pf.argmax(t, axis=axis)),
                                              np.argmax(x64, axis=axis))
            check_close(result(pf.norm(t, 1, axis)), np.sum(np.abs(x64), axis=axis),
                        result_dtype("norm", dtype))
    finally:
        pf.set_num_threads(saved)


@pytest.mark.parametrize("dtype", ["float32", "float16", "int32", "uint8"])
def test_argmax_ties_and_nans_across_blocks(dtype):
    # many equal maxima spread over several blocks, column chunks and threads:
    # the first one wins, and a NaN beats them all
    rng = np.random.default_rng(2)
    a = rng.integers(0, 4, size=(9000, 40)).astype(dtype)
    a[[100, 5000, 8000], 3] = 9
    a[7000, :] = 9
    saved = pf.get_num_threads()
    try:
        for nth in (1, 2):
            pf.set_num_threads(nth)
            for view in (lambda z: z, lambda z: z.T, lambda z: z[::-1]):
                v = view(a)
                t = view(pf.tensor(a))
                for axis in (None, 0, 1):
                    for op in ("argmax", "argmin"):
                        np.testing.assert_array_equal(np.asarray(getattr(pf, op)(t, axis=axis)),
                                                      getattr(np, op)(v, axis=axis))
            if dtype.startswith("float"):
                b = a.copy()
                b[[6000, 8500], 5] = np.nan
                t = pf.tensor(b)
                for axis in (None, 0):
                    for op in ("argmax", "argmin"):
                        np.testing.assert_array_equal(np.asarray(getattr(pf, op)(t, axis=axis)),
                                                      getattr(np, op)(b, axis=axis))
    finally:
        pf.set_num_threads(saved)


# ------------------------------------------------------------ bad input

def test_bad_input_messages():
    x = pf.ones(2, 3)
    with pytest.raises(IndexError, match=r"sum: axis 2 is out of range for a tensor with 2 "
                                         r"dimension\(s\)"):
        pf.sum(x, axis=2)
    with pytest.raises(ValueError, match=r"mean: axis 0 is given more than once"):
        pf.mean(x, axis=(0, -2))
    with pytest.raises(ValueError, match=r"max: the reduced axis is empty \(input shape "
                                         r"\(0, 3\), reducing axes \(0,\)\)"):
        pf.max(pf.zeros(0, 3), axis=0)
    with pytest.raises(ValueError, match=r"argmin: the reduced axis is empty"):
        pf.argmin(pf.zeros(0))
    with pytest.raises(ValueError, match=r"norm: ord='nuc' is not supported"):
        pf.norm(x, ord="nuc")
    with pytest.raises(TypeError, match=r"norm: ord must be None, 'fro' or a real number.*"
                                        r"got list"):
        pf.norm(x, ord=[1])
    with pytest.raises(TypeError, match=r"var: ddof must be a number.*got str"):
        pf.var(x, ddof="1")
    with pytest.raises(TypeError, match=r"std: give only one of ddof, correction"):
        pf.std(x, ddof=1, correction=1)
    with pytest.raises(TypeError, match=r"argmax: axis must be None or an int; got a tuple"):
        pf.argmax(x, axis=(0, 1))
    with pytest.raises(TypeError, match=r"cumsum: axis must be None or an int; got a list"):
        pf.cumsum(x, axis=[0])
    with pytest.raises(TypeError, match=r"softmax: dtype must be a floating dtype.*got int32"):
        pf.softmax(x, dtype=pf.int32)
    with pytest.raises(TypeError, match=r"mean: dtype must be a floating dtype.*got int64"):
        pf.mean(x, dtype=pf.int64)
    with pytest.raises(ValueError, match=r"sum: out has shape \(2,\) but the result has shape "
                                         r"\(3,\)"):
        pf.sum(x, axis=0, out=pf.zeros(2))
    with pytest.raises(TypeError, match=r"mean: the result has dtype float32, which cannot be "
                                        r"stored in the int64 out"):
        pf.mean(x, axis=0, out=pf.zeros(3, dtype=pf.int64))
    with pytest.raises(TypeError, match=r"prod: out must be a pyframe Tensor; got list"):
        pf.prod(x, out=[0])
    with pytest.raises(TypeError, match=r"all: keepdims must be True or False; got str"):
        pf.all(x, keepdims="yes")
    with pytest.raises(TypeError, match=r"logsumexp: unexpected keyword argument 'dtype'"):
        pf.logsumexp(x, dtype=pf.float32)
    with pytest.raises(TypeError, match=r"any: axis must be an integer; got float"):
        pf.any(x, axis=0.5)
    with pytest.raises(TypeError, match=r"min: missing required argument 'x'"):
        pf.min()


def test_every_row_declared_and_its_bad_inputs_raise():
    # every op of the family section of ops.def has a row, each test named exists here
    names = {"sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "std", "logsumexp",
             "norm", "all", "any", "cumsum", "cumprod", "softmax", "log_softmax"}
    assert set(reduce_rows.ROWS) == names
    table = {row["name"] for row in pf._C._op_table()}
    assert names <= table
    for name, row in reduce_rows.ROWS.items():
        assert row["tests"] and row["bad"], name
        for ref in row["tests"]:
            path, func = ref.split("::")
            assert path == "tests/test_reduce.py" and func in globals(), ref
        for fn, exc, pattern in row["bad"]:
            assert re.search(r"\b" + name + r"\b", pattern) or name in pattern, (name, pattern)
            with pytest.raises(exc, match=pattern):
                fn()
