"""Gathering, scattering, sorting and searching ops against NumPy and PyTorch.

NumPy is the oracle for take_along_axis, put_along_axis, take, nonzero,
argwhere, sort, argsort, unique and searchsorted; PyTorch for gather,
scatter, scatter_add, index_select, topk and descending sorts.  Inputs
come in every dtype, with ties, NaN, -0.0 and infinities where the dtype
has them, and as contiguous, transposed and negatively strided tensors.
"""
import re

import numpy as np
import pytest
try:
    import torch
except ImportError:     # torch is a test oracle only, never a dependency
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch (the oracle here) is not installed")
from hypothesis import given, settings, strategies as st

import pyframe as pf

SETTINGS = settings(max_examples=40, deadline=None)
DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
          "float64"]
TORCH = {} if torch is None else {"bool": torch.bool, "uint8": torch.uint8, "int8": torch.int8, "int16": torch.int16,
         "int32": torch.int32, "int64": torch.int64, "float16": torch.float16,
         "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}


# ---------------------------------------------------------------- helpers

def values(shape, dtype, rng, special=True):
    """Values of `dtype` (a name) with many ties; floats get NaN, +-0.0 and +-inf."""
    n = int(np.prod(shape))
    if dtype == "bool":
        v = rng.integers(0, 2, n).astype(bool)
    elif dtype in ("uint8",):
        v = rng.integers(0, 256, n).astype(np.uint8)
    elif dtype.startswith("int"):
        info = np.iinfo(dtype)
        v = rng.integers(-6, 7, n)
        v[rng.random(n) < 0.1] = info.min
        v[rng.random(n) < 0.1] = info.max
        v = v.astype(dtype)
    else:
        v = (rng.integers(-8, 9, n) / 2.0)
        if special and n:
            for x in (np.nan, -0.0, 0.0, np.inf, -np.inf):
                v[rng.random(n) < 0.08] = x
        v = v.astype(np.float32 if dtype == "bfloat16" else dtype)
    return v.reshape(shape)


def make(a, dtype, layout="contiguous"):
    """A tensor with the values of ndarray `a` in `dtype`, in the given memory layout."""
    pdt = getattr(pf, dtype)
    if layout == "transposed" and a.ndim >= 2:
        return pf.tensor(np.ascontiguousarray(a.T), dtype=pdt).T
    if layout == "reversed" and a.ndim >= 1:
        # every other element of a bigger tensor, read backwards
        big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
        key = tuple(slice(None, None, 2) for _ in a.shape)
        rev = tuple(slice(None, None, -1) for _ in a.shape)
        big[key] = a[rev]
        return pf.tensor(big, dtype=pdt)[key][rev]
    return pf.tensor(a, dtype=pdt)


def to_np(t):
    """A tensor's values as NumPy (bfloat16 as float32)."""
    if t.dtype == pf.bfloat16:
        return np.asarray(t.astype(pf.float32))
    return np.asarray(t)


def to_torch(a, dtype):
    return torch.from_numpy(np.ascontiguousarray(a)).to(TORCH[dtype])


def same(t, expected, dtype=None, signs=True):
    """Shape, dtype and values; with `signs` -0.0 must be where the oracle has it."""
    got = to_np(t)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if dtype is not None:
        assert t.dtype == getattr(pf, dtype) if isinstance(dtype, str) else dtype
    np.testing.assert_array_equal(got, expected)
    if got.dtype.kind == "f" and signs:
        real = ~np.isnan(got)
        np.testing.assert_array_equal(np.signbit(got[real]),
                                      np.signbit(expected.astype(got.dtype)[real]))


layouts = st.sampled_from(["contiguous", "transposed", "reversed"])
dtypes = st.sampled_from(DTYPES)


def small_shapes(min_dims=1, max_dims=3, max_side=5):
    return st.lists(st.integers(0, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


# ------------------------------------------------------- take_along_axis, gather

@SETTINGS
@given(shape=small_shapes(), dtype=dtypes, layout=layouts, data=st.data())
def test_take_along_axis_matches_numpy(shape, dtype, layout, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    a = values(shape, dtype, rng)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    ax = axis % len(shape)
    # indices broadcast with arr off the axis (dims of 1 either side), any length along it
    ishape = tuple(data.draw(st.integers(0, 4)) if d == ax else
                   data.draw(st.sampled_from([shape[d], 1])) for d in range(len(shape)))
    if shape[ax] == 0:
        ishape = tuple(0 if d == ax else s for d, s in enumerate(ishape))
    n = max(shape[ax], 1)
    idx = rng.integers(-n, n, size=ishape)
    got = pf.take_along_axis(make(a, dtype, layout), pf.tensor(idx), axis=axis)
    same(got, np.take_along_axis(a, idx, axis=axis), dtype)
    if data.draw(st.booleans()):
        flat = rng.integers(-max(a.size, 1), max(a.size, 1), size=5) if a.size else np.zeros(0, int)
        same(pf.take_along_axis(make(a, dtype, layout), flat, axis=None),
             np.take_along_axis(a, flat, axis=None))


def test_take_along_axis_method_default_axis_and_index_dtypes():
    a = np.arange(24.0).reshape(2, 3, 4)
    t = pf.tensor(a)
    idx = np.argsort(-a, axis=-1)
    for dt in (np.int8, np.int16, np.int32, np.uint8, np.int64):
        same(t.take_along_axis(pf.tensor(idx.astype(dt))), np.take_along_axis(a, idx, -1))
    part = idx[:, :1, :2]
    same(pf.take_along_axis(t, part.tolist(), 2), np.take_along_axis(a, part, 2))


@needs_torch
@SETTINGS
@given(shape=small_shapes(), dtype=dtypes, layout=layouts, data=st.data())
def test_gather_matches_torch(shape, dtype, layout, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    a = values(shape, dtype, rng, special=False)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    d = dim % len(shape)
    # PyTorch: index no longer than input off the dim, any length along it
    ishape = tuple(data.draw(st.integers(0, 4)) if k == d else data.draw(st.integers(0, s))
                   for k, s in enumerate(shape))
    if shape[d] == 0:
        ishape = tuple(0 if k == d else s for k, s in enumerate(ishape))
    idx = rng.integers(0, max(shape[d], 1), size=ishape)
    want = torch.gather(to_torch(a, dtype), dim, torch.from_numpy(idx))
    t = make(a, dtype, layout)
    got = pf.gather(t, dim, pf.tensor(idx))
    same(got, want.to(torch.float32 if dtype == "bfloat16" else want.dtype).numpy(), dtype)
    same(t.gather(dim, pf.tensor(idx)), to_np(got))


def test_gather_negative_indices_and_0d():
    t = pf.tensor([[1, 2, 3], [4, 5, 6]])
    same(pf.gather(t, 1, [[-1, 0], [-3, -2]]), [[3, 1], [4, 5]])
    same(pf.gather(pf.tensor(7.0), 0, pf.tensor(0)), np.float32(7.0))
    same(pf.gather(pf.tensor([5, 6, 7]), 0, pf.tensor([2, 2, 0])), [7, 7, 5])


# --------------------------------------------------------- put_along_axis

def _loop_put(a, idx, vals, axis):
    """np.put_along_axis by a Python loop in C order: with duplicates the last write wins."""
    out = a.copy()
    shape = np.broadcast_shapes(tuple(1 if d == axis else s for d, s in enumerate(a.shape)),
                                tuple(1 if d == axis else s for d, s in enumerate(idx.shape)))
    full = tuple(idx.shape[axis] if d == axis else s for d, s in enumerate(shape))
    ib = np.broadcast_to(idx, full)
    vb = np.broadcast_to(vals, full)
    for pos in np.ndindex(*full):
        tgt = list(pos)
        tgt = [0 if (d != axis and a.shape[d] == 1) else p for d, p in enumerate(tgt)]
        tgt[axis] = ib[pos]
        out[tuple(tgt)] = vb[pos]
    return out


@SETTINGS
@given(shape=small_shapes(), dtype=dtypes, layout=layouts, data=st.data())
def test_put_along_axis_matches_numpy(shape, dtype, layout, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    a = values(shape, dtype, rng, special=False)
    axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
    n = shape[axis]
    ishape = tuple(data.draw(st.integers(0, 3)) if d == axis else
                   data.draw(st.sampled_from([shape[d], 1])) for d in range(len(shape)))
    if n == 0:
        ishape = tuple(0 if d == axis else s for d, s in enumerate(ishape))
    idx = rng.integers(-max(n, 1), max(n, 1), size=ishape)
    full = tuple(s if d == axis else max(s, shape[d]) if s and shape[d] else 0
                 for d, s in enumerate(ishape))
    vshape = tuple(data.draw(st.sampled_from([s, 1])) for s in full)
    vals = values(vshape, dtype, rng, special=False)
    t = make(a, dtype, layout)
    assert pf.put_along_axis(t, pf.tensor(idx), make(vals, dtype), axis) is None
    expected = _loop_put(a, idx, vals, axis)
    dupes = False
    try:
        b = a.copy()
        np.put_along_axis(b, idx, vals, axis)
    except ValueError:
        b = None
    if b is not None and not dupes:
        pos = np.take_along_axis(np.arange(a.size).reshape(a.shape), idx, axis)
        if len(np.unique(pos)) == pos.size:
            np.testing.assert_array_equal(b, expected)   # the loop reference is NumPy's
    same(t, expected)


def test_put_along_axis_broadcast_values_flat_and_noncontiguous():
    a = np.zeros((3, 4))
    t = pf.tensor(a)
    idx = np.array([[1], [3], [0]])
    pf.put_along_axis(t, idx, 9.5, axis=1)
    np.put_along_axis(a, idx, 9.5, axis=1)
    same(t, a)
    pf.put_along_axis(t, pf.tensor([0, 5, 11]), [1.0, 2.0, 3.0], axis=None)
    np.put_along_axis(a, np.array([0, 5, 11]), [1.0, 2.0, 3.0], axis=None)
    same(t, a)
    tt = pf.tensor(np.zeros((4, 3))).T       # not viewable flat: written through a copy
    b = np.zeros((4, 3)).T
    pf.put_along_axis(tt, [2, 7], [4.0, 5.0], None)
    b.flat[[2, 7]] = [4.0, 5.0]     # "as if a flattened 1d view had been created" (NumPy)
    same(tt, b)
    d = pf.zeros(5, dtype=pf.int32)
    pf.put_along_axis(d, [1, 1, 1], [7, 8, 9], 0)
    assert d.tolist() == [0, 9, 0, 0, 0]        # duplicates: the last write wins


# --------------------------------------------------------- scatter family

def _unique_index(rng, ishape, d, n):
    """An index whose entries along dim d are distinct for each position (no write races)."""
    idx = np.zeros(ishape, np.int64)
    for pos in np.ndindex(*[s for k, s in enumerate(ishape) if k != d]):
        perm = rng.permutation(n)[:ishape[d]]
        sl = list(pos)
        sl.insert(d, slice(None))
        idx[tuple(sl)] = perm
    return idx


@needs_torch
@SETTINGS
@given(shape=small_shapes(), dtype=dtypes, layout=layouts, data=st.data())
def test_scatter_matches_torch(shape, dtype, layout, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    a = values(shape, dtype, rng, special=False)
    d = data.draw(st.integers(0, len(shape) - 1), label="dim")
    ishape = tuple(data.draw(st.integers(0, s)) for s in shape)
    idx = _unique_index(rng, ishape, d, shape[d]) if shape[d] else np.zeros(ishape, np.int64)
    src = values(tuple(s + data.draw(st.integers(0, 1)) for s in ishape), dtype, rng,
                 special=False)
    want = torch.scatter(to_torch(a, dtype), d, torch.from_numpy(idx), to_torch(src, dtype))
    want = want.to(torch.float32 if dtype == "bfloat16" else want.dtype).numpy()
    t = make(a, dtype, layout)
    same(pf.scatter(t, d, pf.tensor(idx), make(src, dtype)), want, dtype)
    same(t, a)      # scatter returns a new tensor
    r = t.scatter_(d, pf.tensor(idx), make(src, dtype, layout))
    assert r is t
    same(t, want)


@needs_torch
@SETTINGS
@given(shape=small_shapes(), dtype=dtypes, data=st.data())
def test_scatter_add_matches_torch(shape, dtype, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    a = values(shape, dtype, rng, special=False)
    d = data.draw(st.integers(0, len(shape) - 1), label="dim")
    ishape = tuple(data.draw(st.integers(0, 4)) if k == d else data.draw(st.integers(0, s))
                   for k, s in enumerate(shape))
    if shape[d] == 0:
        ishape = tuple(0 if k == d else s for k, s in enumerate(ishape))
    idx = rng.integers(0, max(shape[d], 1), size=ishape)      # duplicates accumulate
    src = values(ishape, dtype, rng, special=False)
    t = make(a, dtype, data.draw(layouts))
    got = pf.scatter_add(t, d, pf.tensor(idx), make(src, dtype))
    if dtype in ("float16", "bfloat16", "float32"):
        # the oracle sums in float64; ours rounds after each addition in the dtype
        want = torch.scatter_add(torch.from_numpy(a.astype(np.float64)), d,
                                 torch.from_numpy(idx), torch.from_numpy(src.astype(np.float64)))
        tol = {"float16": 2e-2, "bfloat16": 5e-2, "float32": 1e-5}[dtype]
        np.testing.assert_allclose(to_np(got).astype(np.float64), want.numpy(), rtol=tol, atol=tol)
    elif dtype == "bool":
        want = a.copy()
        for pos in np.ndindex(*ishape):
            tgt = list(pos)
            tgt[d] = idx[pos]
            want[tuple(tgt)] |= src[pos]
        same(got, want)
    else:
        want = torch.scatter_add(to_torch(a, dtype), d, torch.from_numpy(idx),
                                 to_torch(src, dtype))
        same(got, want.numpy(), dtype)
    t.scatter_add_(d, pf.tensor(idx), make(src, dtype))
    same(t, to_np(got))


def test_scatter_value_forms_and_order():
    x = pf.zeros((2, 3))
    same(pf.scatter(x, 1, [[2], [0]], 5.0), [[0, 0, 5], [5, 0, 0]])
    same(pf.scatter(x, 1, [[2], [0]], value=-1), [[0, 0, -1], [-1, 0, 0]])
    same(pf.scatter(x, 0, [[1, 1, 0]], pf.tensor(3.0)), [[0, 0, 3], [3, 3, 0]])
    # duplicates: sequential, so the last write in C order wins
    same(pf.scatter(pf.zeros(3), 0, [1, 1, 1], [1.0, 2.0, 3.0]), [0, 3, 0])
    same(pf.scatter_add(pf.zeros(3, dtype=pf.int8), 0, [0, 0, 0], pf.tensor([100, 100, 100],
                                                                              dtype=pf.int8)),
         np.array([44, 0, 0], np.int8))      # integer sums wrap, as NumPy and PyTorch
    # a source sharing memory with the destination is read before any write
    y = pf.tensor([1.0, 2.0, 3.0, 4.0])
    y.scatter_(0, [3, 2, 1, 0], y)
    same(y, [4.0, 3.0, 2.0, 1.0])


# ------------------------------------------------------- index_select, take

@needs_torch
@SETTINGS
@given(shape=small_shapes(), dtype=dtypes, layout=layouts, data=st.data())
def test_index_select_matches_torch(shape, dtype, layout, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    a = values(shape, dtype, rng, special=False)
    d = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    n = shape[d]
    idx = rng.integers(0, n, size=data.draw(st.integers(0, 6))) if n else np.zeros(0, np.int64)
    want = torch.index_select(to_torch(a, dtype), d, torch.from_numpy(idx))
    want = want.to(torch.float32 if dtype == "bfloat16" else want.dtype).numpy()
    t = make(a, dtype, layout)
    same(pf.index_select(t, d, pf.tensor(idx)), want, dtype)
    same(t.index_select(dim=d, index=idx.astype(np.int32)), want, dtype)


def test_index_select_0d_index_and_input():
    t = pf.tensor([[1, 2, 3], [4, 5, 6]])
    same(pf.index_select(t, 1, pf.tensor(2)), [[3], [6]])
    same(pf.index_select(pf.tensor(5), 0, pf.tensor([0, 0])), [5, 5])


@SETTINGS
@given(shape=small_shapes(0, 3), dtype=dtypes, layout=layouts, data=st.data())
def test_take_matches_numpy(shape, dtype, layout, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    a = values(shape, dtype, rng)
    mode = data.draw(st.sampled_from(["raise", "wrap", "clip"]), label="mode")
    ishape = data.draw(small_shapes(0, 2, 3), label="index shape")
    axis = data.draw(st.none() | st.integers(-len(shape), len(shape) - 1), label="axis") \
        if shape else None
    n = a.size if axis is None else shape[axis]
    if n == 0:
        ishape = (0,)
    span = max(n, 1) * (3 if mode != "raise" else 1)
    idx = rng.integers(-span, span, size=ishape)
    t = make(a, dtype, layout)
    same(pf.take(t, pf.tensor(idx), axis=axis, mode=mode), np.take(a, idx, axis=axis, mode=mode),
         dtype)
    if axis is None and mode == "raise":
        same(t.take(idx), np.take(a, idx))


# ---------------------------------------------------------- nonzero, argwhere

@SETTINGS
@given(shape=small_shapes(1, 4), dtype=dtypes, layout=layouts, data=st.data())
def test_nonzero_and_argwhere_match_numpy(shape, dtype, layout, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    a = values(shape, dtype, rng)
    t = make(a, dtype, layout)
    got = pf.nonzero(t)
    want = np.nonzero(a)
    assert isinstance(got, tuple) and len(got) == len(want)
    for g, w in zip(got, want):
        same(g, w, "int64")
    same(pf.argwhere(t), np.argwhere(a), "int64")
    same(t.nonzero(as_tuple=False), np.argwhere(a))
    same(t.argwhere(), np.argwhere(a))


def test_nonzero_large_split_across_threads_and_0d():
    rng = np.random.default_rng(3)
    a = rng.random((300, 500)) < 0.3
    a[:, ::7] = False
    got = pf.nonzero(pf.tensor(a))
    for g, w in zip(got, np.nonzero(a)):
        same(g, w)
    same(pf.argwhere(pf.tensor(a.T)), np.argwhere(a.T))
    same(pf.argwhere(pf.tensor(3.0)), np.argwhere(np.array(3.0)))
    same(pf.argwhere(pf.tensor(0)), np.argwhere(np.array(0)))
    same(pf.nonzero(pf.tensor([0.0, -0.0, np.nan, 1e-30]))[0], [2, 3])


# ------------------------------------------------------------ sort, argsort

@SETTINGS
@given(shape=small_shapes(1, 3, 7), dtype=dtypes, layout=layouts, data=st.data())
def test_sort_and_argsort_match_numpy_stable(shape, dtype, layout, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    a = values(shape, dtype, rng)
    axis = data.draw(st.none() | st.integers(-len(shape), len(shape) - 1), label="axis")
    t = make(a, dtype, layout)
    kw = {} if axis == -1 and data.draw(st.booleans()) else {"axis": axis}
    same(pf.sort(t, **kw), np.sort(a, axis=axis, kind="stable"), dtype)
    same(pf.argsort(t, **kw), np.argsort(a, axis=axis, kind="stable"), "int64")
    if axis is not None:
        same(t.argsort(dim=axis), np.argsort(a, axis=axis, kind="stable"))


@needs_torch
@SETTINGS
@given(shape=small_shapes(1, 3, 7), dtype=dtypes, data=st.data())
def test_descending_sort_matches_torch_stable(shape, dtype, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    a = values(shape, dtype, rng)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    v, i = torch.sort(to_torch(a, dtype), dim=axis, descending=True, stable=True)
    t = make(a, dtype, data.draw(layouts))
    same(pf.argsort(t, axis=axis, descending=True), i.numpy())
    same(pf.sort(t, axis, descending=True),
         v.to(torch.float32 if dtype == "bfloat16" else v.dtype).numpy())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_sort_nan_last_and_signed_zeros_tie(dtype):
    a = np.array([0.0, -0.0, np.nan, -np.inf, 1.0, -0.0, np.nan, np.inf, 0.0, -1.0])
    t = pf.tensor(a, dtype=getattr(pf, dtype))
    want_i = np.argsort(a, kind="stable")
    same(pf.argsort(t), want_i)
    assert want_i.tolist() == [3, 9, 0, 1, 5, 8, 4, 7, 2, 6]
    s = to_np(pf.sort(t))
    np.testing.assert_array_equal(np.signbit(s), np.signbit(a[want_i]))
    # descending: NaN first, ties keep their order
    assert pf.argsort(t, descending=True).tolist() == [2, 6, 7, 4, 0, 1, 5, 8, 9, 3]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 15, 16, 17, 300, 513, 5000])
def test_sort_every_length_path(dtype, n):
    # insertion sort, merge sort and radix sort paths, on long rows full of ties
    rng = np.random.default_rng(n)
    a = values((3, n), dtype, rng)
    t = pf.tensor(a, dtype=getattr(pf, dtype))
    same(pf.argsort(t), np.argsort(a, axis=-1, kind="stable"))
    same(pf.sort(t, axis=0), np.sort(a, axis=0, kind="stable"))


def test_sort_big_rows_in_parallel_and_keywords():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(64, 2000)).astype(np.float32)
    a[:, ::5] = np.round(a[:, ::5])
    t = pf.tensor(a)
    same(pf.argsort(t, axis=1, kind="quicksort", stable=True), np.argsort(a, 1, kind="stable"))
    same(pf.sort(t.T, axis=0), np.sort(a.T, axis=0, kind="stable"))
    same(pf.sort(pf.tensor(a[0].astype(np.int64) * 1000)), np.sort(a[0].astype(np.int64) * 1000))
    same(pf.sort(pf.zeros((0, 3)), axis=1), np.zeros((0, 3), np.float32))
    same(pf.sort(pf.tensor(2.5), axis=None), [2.5])


# ------------------------------------------------------------------ topk

@needs_torch
@SETTINGS
@given(shape=small_shapes(1, 3, 40), dtype=dtypes, data=st.data())
def test_topk_matches_torch(shape, dtype, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    a = values(shape, dtype, rng)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    k = data.draw(st.integers(0, shape[axis]), label="k")
    largest = data.draw(st.booleans(), label="largest")
    tt = to_torch(a, dtype)
    if dtype in ("bool",) or (dtype == "uint8" and not largest):
        tv = None     # PyTorch's topk has no bool kernel; compare with its sort instead
    else:
        tv, _ = torch.topk(tt, k, dim=axis, largest=largest)
    sv, si = torch.sort(tt, dim=axis, descending=largest, stable=True)
    sv, si = sv.narrow(axis, 0, k), si.narrow(axis, 0, k)
    t = make(a, dtype, data.draw(layouts))
    v, i = pf.topk(t, k, axis=axis, largest=largest)
    conv = (lambda x: x.to(torch.float32 if dtype == "bfloat16" else x.dtype).numpy())
    same(v, conv(sv), dtype)
    if tv is not None:
        same(v, conv(tv), signs=False)     # which of -0.0 and 0.0 comes first is PyTorch's whim
    # ties: the lower index first (PyTorch leaves their order unspecified)
    same(i, si.numpy(), "int64")
    v2, i2 = t.topk(k, dim=axis, largest=largest, sorted=False)
    same(i2, si.numpy())


@needs_torch
def test_topk_heap_path_on_long_rows():
    rng = np.random.default_rng(9)
    a = rng.integers(0, 50, size=(8, 4000)).astype(np.float64)
    t = pf.tensor(a)
    for k in (1, 5, 100):
        v, i = pf.topk(t, k)
        sv, si = torch.sort(torch.from_numpy(a), descending=True, stable=True)
        same(v, sv[:, :k].numpy())
        same(i, si[:, :k].numpy())
        v, i = pf.topk(t, k, largest=False, axis=1)
        sv, si = torch.sort(torch.from_numpy(a), descending=False, stable=True)
        same(i, si[:, :k].numpy())


# ------------------------------------------------------------------ unique

@pytest.mark.skipif(int(np.__version__.split(".")[0]) < 2, reason="NumPy 2 semantics (copy=, DLPack 1.0, matrix_transpose, unique, ml_dtypes promotion) are the oracle")
@SETTINGS
@given(shape=small_shapes(0, 3, 6), dtype=dtypes, layout=layouts, data=st.data())
def test_unique_matches_numpy(shape, dtype, layout, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    a = values(shape, dtype, rng)
    flags = {k: data.draw(st.booleans(), label=k)
             for k in ("return_index", "return_inverse", "return_counts")}
    equal_nan = data.draw(st.booleans(), label="equal_nan")
    t = make(a, dtype, layout)
    got = pf.unique(t, equal_nan=equal_nan, **flags)
    want = np.unique(a, equal_nan=equal_nan, **flags)
    if not any(flags.values()):
        got, want = (got,), (want,)
    assert isinstance(got, tuple) and len(got) == len(want)
    # NumPy picks any of -0.0 and 0.0 for their value (an unstable sort); ours is the first seen
    same(got[0], want[0], dtype, signs=False)
    nan = np.isnan(a) if a.dtype.kind == "f" else np.zeros(a.shape, bool)
    names = [k for k in ("return_index", "return_inverse", "return_counts") if flags[k]]
    groups_differ = not equal_nan and nan.any()
    for name, g, w in zip(names, got[1:], want[1:]):
        if groups_differ and name == "return_inverse":
            # which NaN group each NaN gets follows NumPy's unstable sort; ours: first seen first
            same(g.astype(pf.int64)[pf.tensor(~nan)], w[~nan])
            assert len(set(to_np(g)[nan].tolist())) == nan.sum()
        elif groups_differ and name == "return_index":
            # the NaN groups come last, one per NaN, in an order of each library's own
            k = len(w) - int(nan.sum())
            same(g[:k], w[:k], "int64")
            assert sorted(to_np(g)[k:].tolist()) == np.flatnonzero(nan.ravel()).tolist()
        else:
            same(g, w, "int64")
    if flags["return_inverse"]:
        inv = got[1 + flags["return_index"]]
        np.testing.assert_array_equal(to_np(got[0])[to_np(inv)], a)


@needs_torch
def test_unique_torch_spellings():
    x = torch.tensor([[3, 1, 2], [3, 3, 1]])
    out, inv, cnt = torch.unique(x, return_inverse=True, return_counts=True)
    got = pf.unique(pf.tensor(x.numpy()), return_inverse=True, return_counts=True)
    same(got[0], out.numpy())
    same(got[1], inv.numpy())
    same(got[2], cnt.numpy())
    same(pf.tensor(x.numpy()).unique(), out.numpy())


# ----------------------------------------------------------- searchsorted

@SETTINGS
@given(n=st.integers(0, 12), dtype=st.sampled_from(["int8", "int32", "int64", "float16",
                                                     "float32", "float64", "uint8"]),
       data=st.data())
def test_searchsorted_matches_numpy(n, dtype, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    a = np.sort(values((n,), dtype, rng))
    v = values(data.draw(small_shapes(0, 2, 4)), dtype, rng)
    side = data.draw(st.sampled_from(["left", "right"]))
    same(pf.searchsorted(pf.tensor(a), pf.tensor(v), side=side), np.searchsorted(a, v, side=side))
    perm = rng.permutation(n)
    unsorted = np.empty_like(a)
    unsorted[perm] = a
    same(pf.searchsorted(pf.tensor(unsorted), pf.tensor(v), side=side, sorter=perm),
         np.searchsorted(unsorted, v, side=side, sorter=perm))


@needs_torch
def test_searchsorted_promotes_and_batches_like_torch():
    a = np.array([1, 2, 2, 5])
    same(pf.searchsorted(pf.tensor(a), pf.tensor([2.5, 2.0, -1.0])),
         np.searchsorted(a, [2.5, 2.0, -1.0]))
    same(pf.tensor(a).searchsorted(2, right=True), np.searchsorted(a, 2, side="right"))
    b = torch.sort(torch.randn(3, 6, generator=torch.Generator().manual_seed(0)), dim=1).values
    q = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    for right in (False, True):
        same(pf.searchsorted(pf.tensor(b.numpy()), pf.tensor(q.numpy()), right=right),
             torch.searchsorted(b, q, right=right).numpy())


# ----------------------------------------------------------- bad inputs

def test_bad_inputs_raise_with_messages():
    t = pf.ones((3, 4))
    with pytest.raises(IndexError, match=r"take_along_axis: index 7 is out of bounds for axis 1 "
                                         r"with size 4"):
        pf.take_along_axis(t, [[7]], axis=1)
    with pytest.raises(ValueError, match=r"take_along_axis: indices has 1 dimension\(s\) but arr "
                                         r"has 2"):
        pf.take_along_axis(t, [0], axis=1)
    with pytest.raises(TypeError, match=r"gather: index must be an integer tensor; got dtype "
                                        r"float32"):
        pf.gather(t, 1, pf.tensor([[0.0]]))
    with pytest.raises(ValueError, match=r"gather: index has 1 dimension\(s\) but input has 2 "
                                         r"\(shapes \(2,\) and \(3, 4\)\)"):
        pf.gather(t, 0, [0, 1])
    with pytest.raises(ValueError, match=r"gather: index of shape \(4, 1\) is longer than input "
                                         r"of shape \(3, 4\) at dimension 0"):
        pf.gather(t, 1, [[0]] * 4)
    with pytest.raises(IndexError, match=r"scatter_: index -9 is out of bounds for axis 0 with "
                                         r"size 3"):
        t.scatter_(0, [[-9]], 1.0)
    assert t.tolist() == [[1.0] * 4] * 3     # nothing was written
    with pytest.raises(TypeError, match=r"scatter: give exactly one of src"):
        pf.scatter(t, 0, [[0]])
    with pytest.raises(ValueError, match=r"topk: k=5 is out of range for axis 1 of size 4"):
        pf.topk(t, 5)
    with pytest.raises(ValueError, match=r"topk: k=-1"):
        pf.topk(t, -1)
    with pytest.raises(IndexError, match=r"sort: axis 2 is out of range for a tensor with 2 "
                                         r"dimension\(s\)"):
        pf.sort(t, axis=2)
    with pytest.raises(ValueError, match=r"argsort: kind must be .*got 'bogus'"):
        pf.argsort(t, kind="bogus")
    with pytest.raises(IndexError, match=r"take: index 12 is out of bounds for axis 0 with size "
                                         r"12"):
        pf.take(t, [12])
    with pytest.raises(ValueError, match=r"take: mode must be 'raise', 'wrap' or 'clip'"):
        pf.take(t, [0], mode="nearest")
    with pytest.raises(IndexError, match=r"take: cannot take 1 element\(s\) from axis 0, which "
                                         r"has size 0"):
        pf.take(pf.zeros(0), [1], mode="wrap")
    with pytest.raises(ValueError, match=r"index_select: index must be 1-D; got shape \(1, 1\)"):
        pf.index_select(t, 0, [[0]])
    with pytest.raises(TypeError, match=r"put_along_axis: arr must be a pyframe Tensor"):
        pf.put_along_axis(np.zeros(3), [0], 1.0, 0)
    with pytest.raises(ValueError, match=r"put_along_axis: values of shape \(2,\) cannot be "
                                         r"broadcast to the indexed shape \(3, 1\)"):
        pf.put_along_axis(t, [[0], [1], [2]], [1.0, 2.0], 1)
    with pytest.raises(ValueError, match=r"nonzero: a 0-d tensor has no dimensions"):
        pf.nonzero(pf.tensor(1.0))
    with pytest.raises(ValueError, match=r"searchsorted: side must be 'left' or 'right'"):
        pf.searchsorted(pf.tensor([1, 2]), 1, side="middle")
    with pytest.raises(TypeError, match=r"unique: return_counts must be True or False"):
        pf.unique(t, return_counts="yes")


# ------------------------------------------------------------ op table rows

def _rows():
    from op_rows.gather import ROWS
    return ROWS


def test_every_family_op_has_a_row_with_real_tests():
    rows = _rows()
    ops = {r["name"] for r in pf._C._op_table()}
    mine = {"take_along_axis", "gather", "put_along_axis", "scatter", "scatter_", "scatter_add",
            "scatter_add_", "index_select", "take", "nonzero", "argwhere", "sort", "argsort",
            "topk", "unique", "searchsorted"}
    assert mine <= ops
    assert set(rows) == mine
    import sys
    this = sys.modules[__name__]
    for name, row in rows.items():
        assert row["tests"] and row["bad"], name
        for ref in row["tests"]:
            path, func = ref.split("::")
            if path.endswith("test_gather.py"):
                assert callable(getattr(this, func)), ref
            else:
                import importlib
                mod = importlib.import_module(path.split("/")[-1][:-3])
                assert callable(getattr(mod, func)), ref


@pytest.mark.parametrize("name", sorted(_rows()))
def test_row_bad_inputs(name):
    for fn, exc, pattern in _rows()[name]["bad"]:
        assert re.search(r"\b" + re.escape(name.rstrip("_")), pattern), (name, pattern)
        with pytest.raises(exc, match=pattern):
            fn()
