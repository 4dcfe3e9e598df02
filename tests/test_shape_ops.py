"""Joining, splitting and reordering ops (csrc/shape_ops.c) against NumPy (torch for chunk).

Inputs come from the `arrays` strategy: every dtype, 0-d and 0-size shapes, and
contiguous, strided, negative-step and transposed layouts, each built the same
way on a NumPy array and on a tensor copied from it.  Values are small integers,
exact in every dtype, so results compare exactly in float64.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyframe as pf
from op_rows.shape_ops import ROWS

try:
    import ml_dtypes
except ImportError:  # pragma: no cover - ml_dtypes is in the test environment
    ml_dtypes = None

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64",
          "float16", "bfloat16", "float32", "float64"]
SETTINGS = settings(max_examples=40, deadline=None)


def np_dtype(name):
    if name == "bfloat16":
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def sample(shape, name, seed=0):
    """Distinct-ish small integers, exact in every dtype (bool: a pattern of both values)."""
    n = int(np.prod(shape, dtype=np.int64))
    v = (np.arange(n) * 7 + seed) % 23 - 11
    if name == "bool":
        v = v % 3 == 0
    elif name == "uint8":
        v = v + 11
    return v.astype(np_dtype(name)).reshape(shape)


def f64(x):
    """Values of a tensor or array as float64 (bfloat16 and bool included)."""
    return np.asarray(x).astype(np.float64)


def check(got, want, dtype):
    assert isinstance(got, pf.Tensor)
    assert got.dtype == dtype, (got.dtype, dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_array_equal(f64(got), want)


def shares(view, base):
    return np.shares_memory(np.asarray(view), np.asarray(base))


@st.composite
def arrays(draw, shape, dtypes=DTYPES, seed=None):
    """(tensor, ndarray, base tensor, base ndarray): the same values in the same layout.

    The layout is contiguous, or a strided / negative-step slice of a larger
    base, optionally transposed; the tensor is a view of `base` and the array
    a view of the base array (a copy of `base`, not sharing its memory)."""
    name = draw(st.sampled_from(dtypes))
    nd = len(shape)
    layout = draw(st.sampled_from(["contiguous", "strided", "transposed"]))
    steps = [1] * nd
    perm = list(range(nd))
    if layout == "strided":
        steps = [draw(st.sampled_from([1, 2, -1, -2])) for _ in range(nd)]
    if layout == "transposed" and nd >= 2:
        perm = draw(st.permutations(range(nd)))
    pre = [0] * nd                      # shape before the transpose
    for i, p in enumerate(perm):
        pre[p] = shape[i]
    base_shape = tuple(d * abs(s) for d, s in zip(pre, steps))
    seed = draw(st.integers(0, 22)) if seed is None else seed
    base_np = sample(base_shape, name, seed)
    base = pf.tensor(base_np)
    sl = tuple(slice(None, None, s) for s in steps)
    a, t = base_np[sl + (Ellipsis,)], base[sl]
    if nd >= 2:
        a, t = a.transpose(perm), t.transpose(perm)
    assert t.shape == a.shape == tuple(shape)
    return t, a, base, base_np


def shapes(min_dims=0, max_dims=4, min_side=0, max_side=4):
    return st.lists(st.integers(min_side, max_side), min_size=min_dims,
                    max_size=max_dims).map(tuple)


def promoted(ts):
    d = ts[0].dtype
    for t in ts[1:]:
        d = pf.promote_types(d, t.dtype)
    return d


# ---------------------------------------------------------------- concatenate / stack

@SETTINGS
@given(data=st.data(), shape=shapes(1, 4), n=st.integers(1, 4))
def test_concatenate_matches_numpy(data, shape, n):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    ins = []
    for _ in range(n):
        s = list(shape)
        s[axis] = data.draw(st.integers(0, 3))
        ins.append(data.draw(arrays(tuple(s))))
    ts = [t for t, _, _, _ in ins]
    want = np.concatenate([f64(a) for _, a, _, _ in ins], axis=axis)
    check(pf.concatenate(ts, axis=axis), want, promoted(ts))
    check(pf.concatenate(tuple(ts), dim=axis), want, promoted(ts))
    # dtype= overrides the promotion
    check(pf.concatenate(ts, axis, dtype=pf.float64), want, pf.float64)


@SETTINGS
@given(data=st.data(), n=st.integers(1, 3))
def test_concatenate_flat_matches_numpy(data, n):
    ins = [data.draw(arrays(data.draw(shapes(0, 3)))) for _ in range(n)]
    ts = [t for t, _, _, _ in ins]
    want = np.concatenate([f64(a) for _, a, _, _ in ins], axis=None)
    check(pf.concatenate(ts, axis=None), want, promoted(ts))


@SETTINGS
@given(data=st.data(), shape=shapes(0, 4), n=st.integers(1, 4))
def test_stack_matches_numpy(data, shape, n):
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    ins = [data.draw(arrays(shape)) for _ in range(n)]
    ts = [t for t, _, _, _ in ins]
    want = np.stack([f64(a) for _, a, _, _ in ins], axis=axis)
    check(pf.stack(ts, axis=axis), want, promoted(ts))
    # lists and arrays are accepted as inputs, as NumPy
    check(pf.stack([a for _, a, _, _ in ins], axis), want, promoted(ts))


# ---------------------------------------------------------------- split / chunk

@SETTINGS
@given(data=st.data(), shape=shapes(1, 3))
def test_split_matches_numpy(data, shape):
    t, a, base, _ = data.draw(arrays(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    if data.draw(st.booleans()):
        spec = data.draw(st.sampled_from([k for k in range(1, 5) if n % k == 0]))
    else:
        spec = data.draw(st.lists(st.integers(-n - 2, n + 2), max_size=4))
    got = pf.split(t, spec, axis=axis)
    want = np.split(f64(a), spec, axis=axis)
    assert isinstance(got, list) and len(got) == len(want)
    for g, w in zip(got, want):
        check(g, w, t.dtype)
        if g.numel() > 0:
            assert shares(g, base), "split must return views"


@SETTINGS
@given(data=st.data(), shape=shapes(1, 3, max_side=7), chunks=st.integers(1, 8))
def test_chunk_matches_torch(data, shape, chunks):
    torch = pytest.importorskip("torch")
    t, a, base, _ = data.draw(arrays(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    got = t.chunk(chunks, axis=axis)
    want = torch.chunk(torch.from_numpy(f64(a)), chunks, dim=axis)
    assert isinstance(got, tuple) and len(got) == len(want)
    for g, w in zip(got, want):
        check(g, w.numpy(), t.dtype)
        if g.numel() > 0:
            assert shares(g, base), "chunk must return views"
    # the function form and dim=
    assert [g.shape for g in pf.chunk(t, chunks, dim=axis)] == [g.shape for g in got]


# ---------------------------------------------------------------- tile / repeat

@SETTINGS
@given(data=st.data(), shape=shapes(0, 4, max_side=3))
def test_tile_matches_numpy(data, shape):
    t, a, _, _ = data.draw(arrays(shape))
    if data.draw(st.booleans()):
        reps = data.draw(st.integers(0, 3))
    else:
        reps = tuple(data.draw(st.lists(st.integers(0, 3), max_size=5)))
    want = np.tile(f64(a), reps)
    check(pf.tile(t, reps), want, t.dtype)
    check(t.tile(reps), want, t.dtype)


def test_tile_eight_dims():
    # 8 axes each repeated: 16 copy dimensions, more than the iterator takes at once
    a = sample((2,) * 8, "float32")
    t = pf.tensor(a).permute(7, 6, 5, 4, 3, 2, 1, 0)
    reps = (2, 3, 1, 2, 2, 3, 2, 2)
    check(pf.tile(t, reps), np.tile(f64(a).transpose(), reps), pf.float32)


@SETTINGS
@given(data=st.data(), shape=shapes(0, 3))
def test_repeat_matches_numpy(data, shape):
    t, a, _, _ = data.draw(arrays(shape))
    axis = None
    if shape and data.draw(st.booleans()):
        axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = a.size if axis is None else shape[axis]
    kind = data.draw(st.sampled_from(["int", "one", "each", "tensor"]))
    if kind == "int":
        reps = data.draw(st.integers(0, 3))
    elif kind == "one":
        reps = [data.draw(st.integers(0, 3))]
    else:
        reps = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    want = np.repeat(f64(a), reps, axis=axis)
    if kind == "tensor":
        reps = pf.tensor(np.array(reps, dtype=np.int32))
    check(pf.repeat(t, reps, axis=axis), want, t.dtype)
    check(t.repeat(reps, axis=axis), want, t.dtype)


# ---------------------------------------------------------------- flip / roll

@SETTINGS
@given(data=st.data(), shape=shapes(0, 4))
def test_flip_matches_numpy_and_is_a_view(data, shape):
    t, a, base, _ = data.draw(arrays(shape))
    nd = len(shape)
    form = data.draw(st.sampled_from(["none", "int", "tuple"]))
    axis = None
    if form == "int" and nd:
        axis = data.draw(st.integers(-nd, nd - 1))
    elif form == "tuple":
        axis = tuple(data.draw(st.lists(st.integers(0, max(nd - 1, 0)), unique=True,
                                        max_size=nd)))
        axis = tuple(ax - nd if i % 2 else ax for i, ax in enumerate(axis))  # some negative
    got = pf.flip(t, axis=axis)
    check(got, np.flip(f64(a), axis=axis), t.dtype)
    if got.numel() > 0:
        assert shares(got, base), "flip must return a view"
    check(t.flip(dims=axis), np.flip(f64(a), axis=axis), t.dtype)


def test_flip_view_writes_through():
    t = pf.arange(6, dtype=pf.float32).reshape(2, 3)
    f = t.flip(1)
    assert f.stride() == (3, -1)
    f[0, 0] = 100.0
    assert t.tolist() == [[0.0, 1.0, 100.0], [3.0, 4.0, 5.0]]


@SETTINGS
@given(data=st.data(), shape=shapes(0, 4))
def test_roll_matches_numpy(data, shape):
    t, a, _, _ = data.draw(arrays(shape))
    nd = len(shape)
    small = st.integers(-9, 9)
    if nd == 0 or data.draw(st.booleans()):
        axis = None
        shift = data.draw(st.one_of(small, st.lists(small, min_size=1, max_size=3).map(tuple)))
    else:
        k = data.draw(st.integers(1, 3))
        axis = tuple(data.draw(st.lists(st.integers(-nd, nd - 1), min_size=k, max_size=k)))
        if k == 1 and data.draw(st.booleans()):
            axis = axis[0]
        if data.draw(st.booleans()):
            shift = data.draw(small)
        else:
            shift = tuple(data.draw(st.lists(small, min_size=k, max_size=k)))
    want = np.roll(f64(a), shift, axis=axis)
    check(pf.roll(t, shift, axis=axis), want, t.dtype)
    check(t.roll(shifts=shift, dims=axis), want, t.dtype)


# ---------------------------------------------------------------- pad

@SETTINGS
@given(data=st.data(), shape=shapes(0, 3), mode=st.sampled_from(
    ["constant", "reflect", "edge", "replicate"]))
def test_pad_matches_numpy(data, shape, mode):
    if mode != "constant":
        shape = tuple(max(d, 1) for d in shape)
    t, a, _, _ = data.draw(arrays(shape))
    nd = len(shape)
    # the largest pad each axis takes: reflect needs pads smaller than the axis
    his = [d - 1 if mode == "reflect" else 3 for d in shape]
    pad = st.integers(0, min(his, default=3))
    form = data.draw(st.sampled_from(["int", "pair", "per_axis", "one_pair"]))
    if form == "int" or nd == 0:
        pw = data.draw(pad)
    elif form == "pair":
        pw = (data.draw(pad), data.draw(pad))
    elif form == "one_pair":
        pw = ((data.draw(pad), data.draw(pad)),)
    else:
        pw = tuple((data.draw(st.integers(0, hi)), data.draw(st.integers(0, hi))) for hi in his)
    kwargs = {}
    if mode == "constant" and data.draw(st.booleans()):
        if nd and data.draw(st.booleans()):
            kwargs["constant_values"] = tuple((data.draw(st.integers(0, 5)),
                                               data.draw(st.integers(0, 5))) for _ in shape)
        else:
            kwargs["constant_values"] = data.draw(st.integers(0, 1))
    np_mode = "edge" if mode == "replicate" else mode
    np_kwargs = {}
    if "constant_values" in kwargs:
        # the values are stored in the tensor's dtype (2 becomes True in a bool tensor)
        np_kwargs["constant_values"] = f64(np.asarray(kwargs["constant_values"]).astype(a.dtype))
    want = np.pad(f64(a), pw, mode=np_mode, **np_kwargs)
    check(pf.pad(t, pw, mode=mode, **kwargs), want, t.dtype)


# ---------------------------------------------------------------- tril / triu

@SETTINGS
@given(data=st.data(), shape=shapes(2, 4), k=st.integers(-5, 5))
def test_tril_triu_match_numpy(data, shape, k):
    t, a, _, _ = data.draw(arrays(shape))
    check(pf.tril(t, k), np.tril(f64(a), k), t.dtype)
    check(pf.triu(t, k=k), np.triu(f64(a), k), t.dtype)
    check(t.tril(diagonal=k), np.tril(f64(a), k), t.dtype)
    check(t.triu(), np.triu(f64(a)), t.dtype)


def test_tril_huge_offsets():
    t = pf.ones(3, 4)
    big = 2 ** 62
    check(t.tril(big), np.ones((3, 4)), pf.float32)
    check(t.tril(-big), np.zeros((3, 4)), pf.float32)
    check(t.triu(big), np.zeros((3, 4)), pf.float32)
    check(t.triu(-big), np.ones((3, 4)), pf.float32)


# ---------------------------------------------------------------- one_hot

@SETTINGS
@given(data=st.data(), shape=shapes(0, 3), classes=st.integers(1, 5),
       idx_dtype=st.sampled_from(["uint8", "int8", "int32", "int64"]),
       dtype=st.sampled_from([None, "float32", "float64", "bfloat16", "int64", "bool"]))
def test_one_hot_matches_eye(data, shape, classes, idx_dtype, dtype):
    idx = np.asarray(data.draw(st.lists(st.integers(0, classes - 1), min_size=int(np.prod(shape)),
                                        max_size=int(np.prod(shape))))).astype(idx_dtype)
    idx = idx.reshape(shape)
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    t = pf.tensor(idx)
    if data.draw(st.booleans()) and len(shape) >= 1:
        # a negative-step view of the same indices
        t = pf.tensor(np.ascontiguousarray(idx[::-1]))[::-1]
    want = np.moveaxis(np.eye(classes)[idx], -1, axis)
    kwargs = {} if dtype is None else {"dtype": getattr(pf, dtype)}
    check(pf.one_hot(t, classes, axis=axis, **kwargs), want,
          pf.float32 if dtype is None else getattr(pf, dtype))


def test_one_hot_defaults():
    got = pf.one_hot(pf.tensor([2, 0]), 3)
    check(got, np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]), pf.float32)
    check(pf.one_hot(pf.tensor([True, False]), 2), np.array([[0.0, 1.0], [1.0, 0.0]]), pf.float32)
    check(pf.one_hot(pf.zeros(0, dtype=pf.int64), 0), np.zeros((0, 0)), pf.float32)


# ---------------------------------------------------------------- masked_fill

@pytest.mark.skipif(int(np.__version__.split(".")[0]) < 2, reason="NumPy 2 semantics (copy=, DLPack 1.0, matrix_transpose, unique, ml_dtypes promotion) are the oracle")
@SETTINGS
@given(data=st.data(), shape=shapes(0, 3))
def test_masked_fill_matches_where(data, shape):
    t, a, base, base_np = data.draw(arrays(shape))
    # a mask of the same shape, or one that broadcasts (size-1 and missing leading dims)
    lead = data.draw(st.integers(0, len(shape)))
    mshape = tuple(d if data.draw(st.booleans()) else 1 for d in shape[lead:])
    mask = np.asarray(data.draw(st.lists(st.booleans(), min_size=int(np.prod(mshape)),
                                         max_size=int(np.prod(mshape))))).astype(bool)
    mask = mask.reshape(mshape)
    value = data.draw(st.sampled_from([0, 1, True] if t.dtype == pf.bool
                                      else [0, 1, 7] if t.dtype == pf.uint8 else [0, -3, 7]))
    want = np.where(mask, float(value), f64(a))
    pm = pf.tensor(mask)
    check(pf.masked_fill(t, pm, value), want, t.dtype)
    check(t.masked_fill(pm, pf.tensor(value)), want, t.dtype)
    np.testing.assert_array_equal(f64(t), f64(a))   # the input is left alone
    # in place, through a (possibly strided) view: exactly the view's masked elements change
    r = t.masked_fill_(pm, value)
    assert r is t
    a[...] = np.where(mask, value, a)
    check(t, want, t.dtype)
    np.testing.assert_array_equal(f64(base), f64(base_np))
    r = pf.masked_fill_(t, pm, 0)
    assert r is t


def test_masked_fill_readonly_and_float_value():
    a = np.arange(4.0)
    a.flags.writeable = False
    t = pf.from_numpy(a)
    m = pf.tensor([True, False, True, False])
    check(t.masked_fill(m, 2.5), np.array([2.5, 1.0, 2.5, 3.0]), pf.float64)
    with pytest.raises(ValueError, match=r"masked_fill_: tensor is read-only"):
        t.masked_fill_(m, 0.0)
    # a value is stored in the input's dtype, as PyTorch
    check(pf.tensor([1, 2, 3]).masked_fill(pf.tensor([True, False, True]), 2.0),
          np.array([2, 2, 2]), pf.int64)


# ---------------------------------------------------------------- moveaxis

@SETTINGS
@given(data=st.data(), shape=shapes(1, 5))
def test_moveaxis_matches_numpy(data, shape):
    t, a, base, _ = data.draw(arrays(shape))
    nd = len(shape)
    k = data.draw(st.integers(1, nd))
    src = data.draw(st.lists(st.integers(-nd, nd - 1), min_size=k, max_size=k,
                             unique_by=lambda v: v % nd))
    dst = data.draw(st.lists(st.integers(-nd, nd - 1), min_size=k, max_size=k,
                             unique_by=lambda v: v % nd))
    if k == 1 and data.draw(st.booleans()):
        src, dst = src[0], dst[0]
    got = pf.moveaxis(t, src, dst)
    check(got, np.moveaxis(f64(a), src, dst), t.dtype)
    if got.numel() > 0:
        assert shares(got, base), "moveaxis must return a view"
    check(t.movedim(src, dst), np.moveaxis(f64(a), src, dst), t.dtype)


# ---------------------------------------------------------------- big inputs, threads

@pytest.mark.parametrize("threads", [1, 2])
def test_large_inputs_match_numpy(threads):
    """Inputs above the parallel grain, on one and on two threads."""
    old = pf.get_num_threads()
    pf.set_num_threads(threads)
    try:
        rng = np.random.default_rng(0)
        a = rng.integers(-100, 100, size=(300, 400)).astype(np.float32)
        t = pf.tensor(a)
        tt = t.T                                  # transposed (non-contiguous) input
        check(pf.concatenate([t, t[:, ::-1]], axis=0), np.concatenate([a, a[:, ::-1]]),
              pf.float32)
        check(pf.tile(tt, (2, 1)), np.tile(a.T, (2, 1)), pf.float32)
        reps = rng.integers(0, 4, size=400)
        check(t.repeat(pf.tensor(reps), axis=1), np.repeat(a, reps, axis=1), pf.float32)
        check(tt.repeat(reps.tolist(), axis=0), np.repeat(a.T, reps, axis=0), pf.float32)
        check(tt.tril(-7), np.tril(a.T, -7), pf.float32)
        idx = rng.integers(0, 10, size=(200, 50))
        check(pf.one_hot(idx, 10, axis=1), np.moveaxis(np.eye(10)[idx], -1, 1), pf.float32)
        mask = a > 0
        check(tt.masked_fill(pf.tensor(mask.T), -1.0), np.where(mask.T, -1.0, a.T), pf.float32)
        check(pf.pad(tt, ((3, 4), (5, 6)), mode="reflect"),
              np.pad(a.T, ((3, 4), (5, 6)), mode="reflect"), pf.float32)
        check(pf.roll(tt, (17, -5), (0, 1)), np.roll(a.T, (17, -5), (0, 1)), pf.float32)
    finally:
        pf.set_num_threads(old)


# ---------------------------------------------------------------- API surface

def test_aliases_and_methods():
    a = np.arange(6).reshape(2, 3)
    t = pf.tensor(a)
    for f in (pf.concatenate, pf.cat, pf.concat):
        check(f([t, t], axis=1), np.concatenate([a, a], axis=1), pf.int64)
    # Tensor.repeat is np.repeat (PyTorch's Tensor.repeat is tile)
    check(pf.tensor([1, 2]).repeat(2), np.array([1, 1, 2, 2]), pf.int64)
    check(pf.tensor([1, 2]).tile(2), np.array([1, 2, 1, 2]), pf.int64)
    check(pf.movedim(t, 0, 1), a.T, pf.int64)
    # split has NumPy's meaning, so Tensor has no split method (PyTorch's differs)
    assert not hasattr(pf.Tensor, "split")
    for name in ("chunk", "tile", "repeat", "flip", "roll", "tril", "triu", "masked_fill",
                 "masked_fill_", "moveaxis", "movedim"):
        assert hasattr(pf.Tensor, name), name
    # 0-d inputs where they make sense
    s = pf.tensor(5.0)
    check(s.flip(), np.array(5.0), pf.float32)
    check(s.roll(3), np.array(5.0), pf.float32)
    check(s.repeat(3), np.array([5.0, 5.0, 5.0]), pf.float32)
    check(pf.pad(s, 2), np.array(5.0), pf.float32)
    check(pf.stack([s, s]), np.array([5.0, 5.0]), pf.float32)
    check(pf.concatenate([s, pf.tensor([1.0, 2.0])], axis=None), np.array([5.0, 1.0, 2.0]),
          pf.float32)


# ---------------------------------------------------------------- declared bad inputs

BAD = [(name, i, case) for name, row in ROWS.items() for i, case in enumerate(row["bad"])]


@pytest.mark.parametrize("name,i,case", BAD, ids=["%s-%d" % (n, i) for n, i, _ in BAD])
def test_bad_inputs_raise_with_message(name, i, case):
    fn, exc, pattern = case
    assert pattern.startswith(name + ":"), "the message must name the op"
    with pytest.raises(exc, match=pattern):
        fn()


def test_no_leaks_on_success_or_error():
    """Results, views and every error path give back their tensors and bytes."""
    import gc

    def live():
        gc.collect()
        s = pf.memory_stats()["cpu"]
        return s["live_tensors"], s["live_bytes"]

    x = pf.arange(24, dtype=pf.float32).reshape(2, 3, 4).transpose(2, 0, 1)
    mask = pf.tensor([True, False, True])
    calls = [
        lambda: pf.concatenate([x, x], axis=1), lambda: pf.concatenate([x, x], axis=None),
        lambda: pf.stack([x, x], axis=-1), lambda: pf.split(x, [1, 3], axis=0),
        lambda: x.chunk(3), lambda: x.tile((2, 1, 1, 2)), lambda: x.repeat(2, axis=1),
        lambda: x.repeat([1, 0, 2, 1], axis=0), lambda: x.repeat(2),
        lambda: x.flip((0, 2)), lambda: x.roll((1, 2), (0, 2)), lambda: x.roll(5),
        lambda: pf.pad(x, 1, mode="reflect"), lambda: pf.pad(x, ((1, 0), (0, 2), (1, 1))),
        lambda: x.tril(), lambda: x.triu(1), lambda: pf.one_hot([[1, 2]], 3, axis=0),
        lambda: x.masked_fill(mask, 0.0), lambda: x.clone().masked_fill_(mask, 1.0),
        lambda: x.moveaxis(0, -1),
    ]
    bad = [case[0] for row in ROWS.values() for case in row["bad"]]
    for fn in calls + bad:       # warm the allocator's free lists first
        try:
            fn()
        except Exception:
            pass
    before = live()
    for _ in range(3):
        for fn in calls + bad:
            try:
                fn()
            except Exception:
                pass
    assert live() == before
