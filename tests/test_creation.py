"""Constructors and conversions: pf.tensor, asarray, from_numpy, the filled
constructors and their _like forms, arange/linspace/eye, item/tolist,
float16/bfloat16 rounding and astype between every pair of dtypes.

Oracles: NumPy (float64, or the same dtype where NumPy's own conversion is
the reference), ml_dtypes for bfloat16, Python's range() for integer
ranges, and a re-implementation of the casting rules written in
csrc/kernels/cast.c.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import pyframe as pf
from helpers_core import (DTYPE_NAMES, FLOAT_NAMES, INT_NAMES, from_numpy_copy,
                          np_dtype, to_numpy)

NUMPY_NAMES = tuple(n for n in DTYPE_NAMES if n != "bfloat16")


def values64(t):
    """Tensor values as a float64 NumPy array, converted by NumPy/ml_dtypes."""
    return to_numpy(t).astype(np.float64)


def needs_bf16(name):
    if name == "bfloat16":
        pytest.importorskip("ml_dtypes")


# ===================================================================== pf.tensor

def test_python_scalars_infer_bool_int64_float32():
    for v, dt in ((True, pf.bool), (False, pf.bool), (7, pf.int64), (-2**63, pf.int64),
                  (2.5, pf.float32), (float("inf"), pf.float32)):
        t = pf.tensor(v)
        assert t.dtype is dt and t.shape == () and t.ndim == 0 and t.size == 1
        assert t.item() == v and type(t.item()) is type(v)


def test_numpy_scalars_keep_their_dtype():
    assert pf.tensor(np.float32(2.5)).dtype is pf.float32
    assert pf.tensor(np.float64(2.5)).dtype is pf.float64
    assert pf.tensor(np.int16(-3)).dtype is pf.int16
    assert pf.tensor(np.bool_(True)).dtype is pf.bool
    assert pf.tensor(np.int16(-3)).item() == -3


def _expected_dtype(arr):
    if arr.size == 0:
        return pf.float32                 # [] is float32, as PyTorch
    return {"b": pf.bool, "i": pf.int64, "f": pf.float32}[arr.dtype.kind]


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


nested_arrays = st.one_of(
    hnp.arrays(np.bool_, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)),
    hnp.arrays(np.int64, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)),
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
               elements=st.floats(allow_nan=True, allow_infinity=True)),
)


@settings(max_examples=50, deadline=None)
@given(nested_arrays, st.booleans())
def test_nested_lists_and_tuples_infer_shape_dtype_and_values(arr, as_tuples):
    data = arr.tolist()
    if as_tuples:
        data = _tuples(data)
    t = pf.tensor(data)
    want = np.array(data)                          # NumPy infers the shape
    assert t.shape == want.shape
    dt = _expected_dtype(want)
    assert t.dtype is dt
    with np.errstate(over="ignore"):       # float64 beyond float32 becomes inf
        want_values = np.array(data, dtype=np_dtype(dt.name))
    np.testing.assert_array_equal(to_numpy(t), want_values)


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_nested_list_with_dtype_override(name):
    needs_bf16(name)
    data = [[0, 1, 2], [3, 100, 127]]
    t = pf.tensor(data, dtype=getattr(pf, name))
    assert t.dtype is getattr(pf, name) and t.shape == (2, 3)
    np.testing.assert_array_equal(values64(t), np.array(data, dtype=np.float64).astype(
        np_dtype(name)).astype(np.float64))
    # positional dtype, and dtype given as a string, mean the same
    assert pf.tensor(data, name).dtype is getattr(pf, name)
    fl = pf.tensor([[0.5, -1.0], [2.75, 3.0]], dtype=name)
    want = np.array([[0.5, -1.0], [2.75, 3.0]])
    if name in INT_NAMES:
        want = np.trunc(want)
        if name == "uint8":
            want = np.maximum(want, 0)            # saturates: cast.c rules
    elif name == "bool":
        want = want != 0
    np.testing.assert_array_equal(values64(fl), want.astype(np.float64))


def test_empty_nested_lists():
    assert pf.tensor([]).shape == (0,) and pf.tensor([]).dtype is pf.float32
    assert pf.tensor([[], []]).shape == (2, 0)
    assert pf.tensor([[[]]]).shape == (1, 1, 0)
    assert pf.tensor([], dtype=pf.int8).dtype is pf.int8


def test_eight_levels_of_nesting_are_allowed():
    data = 1.5
    for _ in range(8):
        data = [data]
    t = pf.tensor(data)
    assert t.shape == (1,) * 8 and t.item() == 1.5


@pytest.mark.parametrize("name", NUMPY_NAMES)
def test_numpy_arrays_are_copied_with_their_dtype(name):
    a = (np.arange(12) % 5).astype(name).reshape(3, 4)
    t = pf.tensor(a)
    assert t.dtype is getattr(pf, name) and t.shape == (3, 4)
    np.testing.assert_array_equal(to_numpy(t), a)
    before = a.copy()
    a[...] = 1 if name != "bool" else False
    a[0, 0] = 0
    np.testing.assert_array_equal(to_numpy(t), before)   # a copy, not a view
    assert not np.shares_memory(np.asarray(t), a)


def test_numpy_strided_arrays_are_read_correctly():
    base = np.arange(60, dtype=np.float64).reshape(3, 4, 5)
    for a in (base[:, ::2, ::-1], base.transpose(2, 0, 1), base[::-1, 1, :], base[..., 3]):
        t = pf.tensor(a)
        assert t.shape == a.shape
        np.testing.assert_array_equal(to_numpy(t), a)


def test_numpy_array_with_dtype_override_and_unsupported_unsigned_widths():
    a = np.array([[1, 2], [3, 250]], dtype=np.uint8)
    np.testing.assert_array_equal(to_numpy(pf.tensor(a, dtype=pf.float16)),
                                  a.astype(np.float16))
    # uint16/uint32 have no pyframe dtype: pf.tensor widens without loss
    u16 = np.array([0, 65535], dtype=np.uint16)
    u32 = np.array([0, 2**32 - 1], dtype=np.uint32)
    assert pf.tensor(u16).dtype is pf.int32 and pf.tensor(u16).tolist() == [0, 65535]
    assert pf.tensor(u32).dtype is pf.int64 and pf.tensor(u32).tolist() == [0, 2**32 - 1]


def test_bfloat16_numpy_arrays_are_accepted():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    a = np.array([1.5, -2.0, 3.0e38, 0.0078125], dtype=ml_dtypes.bfloat16)
    for make in (pf.tensor, pf.asarray, pf.from_numpy):
        t = make(a)
        assert t.dtype is pf.bfloat16
        np.testing.assert_array_equal(values64(t), a.astype(np.float64))


def test_tensors_are_copied():
    src = pf.tensor([[1.0, 2.0], [3.0, 4.0]])
    t = pf.tensor(src)
    assert t is not src and t.dtype is pf.float32
    src.fill_(9.0)
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    t64 = pf.tensor(src, dtype=pf.float64)
    assert t64.dtype is pf.float64 and t64.tolist() == [[9.0, 9.0], [9.0, 9.0]]


def test_lists_of_tensors_and_arrays_stack_and_promote():
    t = pf.tensor([pf.tensor([1, 2], dtype=pf.int8), np.array([3, -4], dtype=np.int16)])
    assert t.shape == (2, 2) and t.dtype is pf.int16
    assert t.tolist() == [[1, 2], [3, -4]]
    u = pf.tensor([np.array([1, 2], dtype=np.uint8), pf.tensor([3, 4], dtype=pf.int8)])
    assert u.dtype is pf.int16                        # uint8 with int8
    h = pf.tensor([pf.tensor([0.5, 1.0], dtype=pf.float16),
                   pf.tensor([2.0, 3.0], dtype=pf.bfloat16)])
    assert h.dtype is pf.float32 and h.tolist() == [[0.5, 1.0], [2.0, 3.0]]
    # tensors and arrays of 2-d rows inside a list of lists
    m = pf.tensor([[np.array([1.5, 2.0])], [pf.tensor([3.0, 4.0], dtype=pf.float64)]])
    assert m.shape == (2, 1, 2) and m.dtype is pf.float64


def test_mixed_lists_of_tensors_and_python_numbers():
    t = pf.tensor([pf.tensor(1.5), 2, 3.25])
    assert t.shape == (3,) and t.tolist() == [1.5, 2.0, 3.25]
    assert t.dtype.is_floating_point
    r = pf.tensor([np.array([1, 2], dtype=np.int8), [3.5, 4]])
    assert r.dtype.is_floating_point and r.tolist() == [[1.0, 2.0], [3.5, 4.0]]


def test_requires_grad_on_float_constructors():
    for t in (pf.tensor([1.0, 2.0], requires_grad=True), pf.zeros(2, requires_grad=True),
              pf.ones((2, 2), dtype=pf.float64, requires_grad=True),
              pf.full((2,), 1.5, requires_grad=True), pf.tensor(3.0, requires_grad=True)):
        assert t.requires_grad is True and t.is_leaf and t.grad is None
    assert pf.tensor([1.0]).requires_grad is False


# ================================================================ from_numpy / asarray

@pytest.mark.parametrize("name", NUMPY_NAMES)
def test_from_numpy_shares_memory_both_ways(name):
    a = np.zeros((2, 3), dtype=name)
    t = pf.from_numpy(a)
    assert t.dtype is getattr(pf, name) and t.shape == (2, 3)
    assert np.shares_memory(np.asarray(t), a)
    a[1, 2] = 1
    assert to_numpy(t)[1, 2] == 1                  # array write seen by the tensor
    t[0, 0] = 1
    assert a[0, 0] == 1                             # tensor write seen by the array


def test_from_numpy_keeps_views_and_negative_strides():
    base = np.arange(24, dtype=np.int32).reshape(4, 6)
    v = base[::-1, 1::2]
    t = pf.from_numpy(v)
    assert t.shape == v.shape
    np.testing.assert_array_equal(to_numpy(t), v)
    base[0, 1] = -7                                 # lands at t[3, 0]
    assert t[3, 0].item() == -7


def test_asarray_shares_memory_when_it_can():
    a = np.arange(6, dtype=np.float32)
    t = pf.asarray(a)
    a[0] = 42
    assert t[0].item() == 42
    x = pf.zeros(3)
    assert pf.asarray(x) is x
    assert pf.asarray(x, dtype=pf.float32) is x
    y = pf.asarray(x, dtype=pf.float64)             # a conversion is a new tensor
    assert y.dtype is pf.float64
    y[0] = 5
    assert x[0].item() == 0
    assert pf.asarray([1, 2]).tolist() == [1, 2]


def test_read_only_arrays_give_read_only_tensors():
    a = np.arange(3.0)
    a.setflags(write=False)
    assert pf.from_numpy(a).readonly and pf.asarray(a).readonly
    assert not pf.tensor(a).readonly                 # pf.tensor copies


# ===================================================================== filled

FILLED = {"zeros": (pf.zeros, np.zeros), "ones": (pf.ones, np.ones)}


@pytest.mark.parametrize("fname", sorted(FILLED))
@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_zeros_ones_every_shape_form_and_dtype(fname, name):
    needs_bf16(name)
    f, npf = FILLED[fname]
    dt = getattr(pf, name)
    want = npf((2, 3), dtype=np_dtype(name))
    for t in (f(2, 3, dtype=dt), f((2, 3), dtype=dt), f([2, 3], dtype=dt),
              f(shape=(2, 3), dtype=dt), f((2, 3), dt), f([2, 3], name)):
        assert t.shape == (2, 3) and t.dtype is dt
        assert t.is_contiguous()
        np.testing.assert_array_equal(values64(t), want.astype(np.float64))


@pytest.mark.parametrize("fname", ["zeros", "ones", "empty"])
def test_filled_default_dtype_and_degenerate_shapes(fname):
    f = getattr(pf, fname)
    assert f(2).dtype is pf.float32
    assert f().shape == () and f(()).shape == ()
    assert f(0).shape == (0,) and f(3, 0, 2).shape == (3, 0, 2)
    assert f(*[1] * 8).shape == (1,) * 8
    assert f(np.int64(4)).shape == (4,)


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_empty_has_the_shape_and_dtype(name):
    t = pf.empty((4, 5), dtype=name)
    assert t.shape == (4, 5) and t.dtype is getattr(pf, name) and t.is_contiguous()
    t.fill_(1)                                      # and its memory is usable
    assert t.tolist() == pf.ones(4, 5, dtype=name).tolist()


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_full_every_dtype(name):
    needs_bf16(name)
    for v in (3, 1.5, True, -2.0):
        if name == "uint8" and v == -2.0:
            continue           # NumPy refuses the negative fill for uint8; cast.c saturates
        t = pf.full((2, 3), v, dtype=getattr(pf, name))
        assert t.dtype is getattr(pf, name)
        np.testing.assert_array_equal(
            values64(t), np.full((2, 3), v, dtype=np_dtype(name)).astype(np.float64))


def test_full_infers_the_dtype_from_the_value():
    assert pf.full((2,), 3).dtype is pf.int64
    assert pf.full((2,), 1.5).dtype is pf.float32
    assert pf.full((2,), True).dtype is pf.bool
    assert pf.full((2,), pf.tensor(2, dtype=pf.int8)).dtype is pf.int8
    assert pf.full((2, 2), 7).tolist() == [[7, 7], [7, 7]]
    assert pf.full(shape=[3], fill_value=0.25).tolist() == [0.25] * 3
    assert pf.full(3, 2.0, pf.float64).dtype is pf.float64


@pytest.mark.parametrize("proto_name", DTYPE_NAMES)
def test_like_constructors_follow_the_prototype(proto_name):
    needs_bf16(proto_name)
    proto = pf.zeros(2, 3, dtype=proto_name)
    npproto = np.zeros((2, 3), dtype=np_dtype(proto_name))
    for f, npf in ((pf.zeros_like, np.zeros_like), (pf.ones_like, np.ones_like)):
        t = f(proto)
        assert t.shape == (2, 3) and t.dtype is proto.dtype
        np.testing.assert_array_equal(values64(t), npf(npproto).astype(np.float64))
        assert f(proto, dtype=pf.float64).dtype is pf.float64
    e = pf.empty_like(proto)
    assert e.shape == (2, 3) and e.dtype is proto.dtype
    f = pf.full_like(proto, 2.5)                 # keeps the prototype's dtype, as NumPy
    assert f.dtype is proto.dtype
    np.testing.assert_array_equal(values64(f),
                                  np.full_like(npproto, 2.5).astype(np.float64))
    assert pf.full_like(proto, fill_value=1, dtype=pf.int16).tolist() == [[1] * 3] * 2


def test_like_constructors_accept_arrays_and_lists():
    assert pf.zeros_like(np.zeros((2, 4), dtype=np.int16)).dtype is pf.int16
    assert pf.ones_like([[1, 2, 3]]).shape == (1, 3)
    assert pf.ones_like([[1, 2, 3]]).dtype is pf.int64


# ===================================================================== ranges

def test_arange_forms():
    assert pf.arange(5).tolist() == list(range(5)) and pf.arange(5).dtype is pf.int64
    assert pf.arange(2, 9, 3).tolist() == [2, 5, 8]
    assert pf.arange(start=1, stop=4).tolist() == [1, 2, 3]
    assert pf.arange(10, 1, -3).tolist() == [10, 7, 4]
    assert pf.arange(5, 5).shape == (0,) and pf.arange(5, 0).shape == (0,)
    assert pf.arange(0.5, 3).dtype is pf.float32
    assert pf.arange(4, dtype=pf.float64).tolist() == [0.0, 1.0, 2.0, 3.0]
    assert pf.arange(0, 3, 1, pf.int8).dtype is pf.int8


@settings(max_examples=50, deadline=None)
@given(st.integers(-1000, 1000), st.integers(-1000, 1000),
       st.integers(-37, 37).filter(lambda s: s != 0))
def test_arange_integers_match_range(start, stop, step):
    t = pf.arange(start, stop, step)
    assert t.dtype is pf.int64
    assert t.tolist() == list(range(start, stop, step))
    np.testing.assert_array_equal(to_numpy(t), np.arange(start, stop, step))


@pytest.mark.parametrize("start,stop,step", [
    (-2**62, 2**62, 2**61),        # the span 2**63 does not fit in int64
    (0, 2**63 - 1, 2**62),
    (-2**63, 2**63 - 1, 2**62),
    (2**63 - 10, 2**63 - 1, 3),
    (0, 10, 2**63 - 1),
    (10, 0, -2**63),
    (2**63 - 1, -2**63, -2**62),
])
def test_arange_integer_lengths_are_exact_near_the_int64_limits(start, stop, step):
    assert pf.arange(start, stop, step).tolist() == list(range(start, stop, step))


@settings(max_examples=50, deadline=None)
@given(st.floats(-100, 100), st.floats(-100, 100),
       st.floats(0.01, 10) | st.floats(-10, -0.01),
       st.sampled_from(["float32", "float64"]))
def test_arange_floats_match_numpy(start, stop, step, name):
    t = pf.arange(start, stop, step, dtype=name)
    want = np.arange(start, stop, step)
    assert t.shape == want.shape                    # lengths exact
    # start + i * step in float64, rounded once to the output dtype
    exact = (np.arange(want.size, dtype=np.float64) * step + start).astype(name)
    np.testing.assert_array_equal(to_numpy(t), exact)
    np.testing.assert_allclose(to_numpy(t).astype(np.float64), want,
                               rtol=1e-6 if name == "float32" else 1e-12, atol=1e-9)


def test_arange_float_length_examples():
    assert pf.arange(0, 1, 0.1).shape == (10,)
    assert pf.arange(1, 1.3, 0.1).shape == np.arange(1, 1.3, 0.1).shape
    assert pf.arange(5, 0, -0.5).shape == (10,)


@settings(max_examples=50, deadline=None)
@given(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3), st.integers(0, 60), st.booleans(),
       st.sampled_from(["float32", "float64", "int64", "int32"]))
def test_linspace_matches_numpy(start, stop, num, endpoint, name):
    t = pf.linspace(start, stop, num, endpoint=endpoint, dtype=name)
    want = np.linspace(start, stop, num, endpoint=endpoint, dtype=np.float64)
    if name.startswith("int"):
        want = np.linspace(start, stop, num, endpoint=endpoint, dtype=name)
    assert t.shape == (num,) and t.dtype is getattr(pf, name)
    np.testing.assert_array_equal(to_numpy(t), want.astype(name))


def test_linspace_defaults_and_edge_counts():
    t = pf.linspace(0, 1)
    assert t.shape == (50,) and t.dtype is pf.float32
    np.testing.assert_array_equal(to_numpy(t), np.linspace(0, 1).astype(np.float32))
    assert pf.linspace(0, 1, 0).shape == (0,)
    assert pf.linspace(2, 3, 1).tolist() == [2.0]
    assert pf.linspace(2, 3, 1, endpoint=False).tolist() == [2.0]
    assert pf.linspace(0, 1, 5, endpoint=False).tolist() == pytest.approx([0, .2, .4, .6, .8])
    assert pf.linspace(0, 1, steps=3).tolist() == [0.0, 0.5, 1.0]     # torch spelling
    assert pf.linspace(-1, 7, 9, dtype=pf.float64).tolist()[-1] == 7.0


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 6), st.none() | st.integers(0, 6), st.integers(-7, 7),
       st.sampled_from(DTYPE_NAMES))
def test_eye_matches_numpy(n, m, k, name):
    needs_bf16(name)
    t = pf.eye(n, m, k, dtype=name)
    want = np.eye(n, m, k, dtype=np_dtype(name))
    assert t.shape == want.shape and t.dtype is getattr(pf, name)
    np.testing.assert_array_equal(values64(t), want.astype(np.float64))


def test_eye_keywords_and_default_dtype():
    assert pf.eye(3).dtype is pf.float32
    np.testing.assert_array_equal(to_numpy(pf.eye(N=2, M=4, k=1)), np.eye(2, 4, 1))
    assert pf.eye(3, k=2**63 - 1).tolist() == [[0.0] * 3] * 3
    assert pf.eye(3, k=-2**63).tolist() == [[0.0] * 3] * 3


# ============================================================ item / tolist

@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_tolist_and_item_match_numpy(name):
    needs_bf16(name)
    raw = np.array([[0, 1, -2, 3.5], [100, -0.25, 7, 120]])
    a = raw.astype(np_dtype(name)) if name != "uint8" else np.abs(raw).astype(np.uint8)
    t = from_numpy_copy(a)
    pytype = {"bool": bool}.get(name, int if name in INT_NAMES else float)
    want = a.tolist() if name != "bfloat16" else a.astype(np.float64).tolist()
    assert t.tolist() == want
    assert all(type(v) is pytype for row in t.tolist() for v in row)
    for i in range(2):
        for j in range(4):
            v = t[i, j].item()
            assert type(v) is pytype and v == want[i][j]
    # strided views read the right elements
    assert t[::-1, ::2].tolist() == [row[::2] for row in want[::-1]]


def test_item_of_one_element_tensors_of_any_rank():
    assert pf.tensor([[[2.5]]]).item() == 2.5
    assert pf.tensor([2**62 + 1]).item() == 2**62 + 1                # exact for int64
    assert pf.tensor([-2**63], dtype=pf.int64).item() == -2**63
    assert pf.tensor(0.1, dtype=pf.float64).item() == 0.1
    assert pf.tensor(0.1).item() == float(np.float32(0.1))


# ============================================== float16 / bfloat16 rounding

def _all_half_patterns():
    return np.arange(65536, dtype=np.uint32).astype(np.uint16)


def _midpoints_and_neighbours(sorted_f32):
    """Points halfway between consecutive values, and one float32 ulp each side."""
    lo, hi = sorted_f32[:-1].astype(np.float64), sorted_f32[1:].astype(np.float64)
    mid = ((lo + hi) / 2).astype(np.float32)       # exact: 12 (or 9) significant bits
    return np.concatenate([mid, np.nextafter(mid, np.float32(np.inf)),
                           np.nextafter(mid, np.float32(-np.inf))])


def _random_f32(n, seed):
    bits = np.random.default_rng(seed).integers(0, 2**32, size=n, dtype=np.uint64)
    return bits.astype(np.uint32).view(np.float32)


def _assert_same_bits(got, want):
    """Equal bit patterns, except that any NaN matches any NaN."""
    gn, wn = np.isnan(got.astype(np.float32)), np.isnan(want.astype(np.float32))
    np.testing.assert_array_equal(gn, wn)
    np.testing.assert_array_equal(got.view(np.uint16)[~gn], want.view(np.uint16)[~wn])


def _f16_probe_values():
    h = _all_half_patterns().view(np.float16)
    finite = np.unique(h[np.isfinite(h)].astype(np.float32))
    edges = np.array([65504, 65519, 65519.996, 65520, 65536, 1e9, 6.0e-8, 5.96e-8, 2.98e-8,
                      2.9802322e-8, 3.0e-8, 6.1035156e-05, 6.1e-05, 0.0, -0.0, np.inf,
                      -np.inf, np.nan, 1e-45, 1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11],
                     dtype=np.float32)
    return np.concatenate([finite, _midpoints_and_neighbours(finite), edges, -edges,
                           _random_f32(200_000, 1)])


def test_float32_to_float16_rounds_to_nearest_even_like_numpy():
    x = _f16_probe_values()
    with np.errstate(over="ignore", invalid="ignore"):
        want = x.astype(np.float16)
    got = to_numpy(pf.tensor(x).astype(pf.float16))
    assert got.dtype == np.float16
    _assert_same_bits(got, want)


def test_float16_to_float32_is_exact_for_every_pattern():
    h = _all_half_patterns().view(np.float16)
    got = to_numpy(pf.tensor(h).astype(pf.float32))
    want = h.astype(np.float32)
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got.view(np.uint32)[~nan], want.view(np.uint32)[~nan])


def test_float16_edge_values():
    t = pf.tensor([65504.0, 65519.0, 65520.0, -65520.0, 2.0**-24, 2.0**-25, 2.0**-25 * 1.5,
                   float("nan")], dtype=pf.float16)
    v = t.tolist()
    assert v[:3] == [65504.0, 65504.0, math.inf] and v[3] == -math.inf
    assert v[4] == 2.0**-24                      # smallest subnormal
    assert v[5] == 0.0                           # tie with 0: to even (0)
    assert v[6] == 2.0**-24
    assert math.isnan(v[7])


def test_python_floats_to_float16_round_through_float32():
    # csrc/kernels/cast.c: "to float16 / bfloat16: through float32".  So a
    # float64 just above a float16 tie first rounds onto the tie in float32
    # and then to even: the oracle does the same two roundings.
    vals = [1.0 + 2.0**-11 + 2.0**-40, 0.1, 1 / 3, 2.0**-24 * 0.75, 65519.99, 1e-30]
    t = pf.tensor(vals, dtype=pf.float16)
    want = np.array(vals).astype(np.float32).astype(np.float16)
    _assert_same_bits(to_numpy(t), want)


def test_float32_to_bfloat16_rounds_to_nearest_even_like_ml_dtypes():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf = _all_half_patterns().view(ml_dtypes.bfloat16)
    finite = np.unique(bf[np.isfinite(bf.astype(np.float32))].astype(np.float32))
    edges = np.array([3.3895314e38, 3.39e38, 3.4028235e38, np.inf, np.nan, 0.0, -0.0,
                      1e-40, 9.2e-41, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8], dtype=np.float32)
    x = np.concatenate([finite, _midpoints_and_neighbours(finite), edges, -edges,
                        _random_f32(200_000, 2)])
    got = to_numpy(pf.tensor(x).astype(pf.bfloat16))
    assert got.dtype == np.dtype(ml_dtypes.bfloat16)
    with np.errstate(invalid="ignore"):             # signalling NaNs among the patterns
        want = x.astype(ml_dtypes.bfloat16)
    _assert_same_bits(got, want)


def test_bfloat16_to_float32_is_exact_for_every_pattern():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    want = _all_half_patterns().view(ml_dtypes.bfloat16).astype(np.float32)
    with np.errstate(invalid="ignore"):             # signalling NaNs among the patterns
        exact = want.astype(np.float64).tolist()
    t = pf.tensor(exact, dtype=pf.bfloat16)
    got = to_numpy(t.astype(pf.float32))
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got.view(np.uint32)[~nan], want.view(np.uint32)[~nan])


# =========================================================== astype: 10 x 10

_INT_RANGE = {"uint8": (0, 255), "int8": (-128, 127), "int16": (-2**15, 2**15 - 1),
              "int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}

_FLOAT_PROBES = [0.0, -0.0, 0.4, 0.5, 0.6, -0.5, -0.6, 1.0, 1.9, -1.9, 2.5, 127.5, 127.9,
                 128.0, -128.9, -129.0, 255.5, 256.0, 32767.9, -32768.9, 65504.0, 65519.0,
                 65520.0, 2.0**31, -2.0**31 - 1.0, 3e9, -3e9, 2.0**63, -2.0**63, 1e19, -1e19,
                 1e30, 3.0e38, 1e300, -1e300, 6e-8, 1e-40, math.inf, -math.inf, math.nan,
                 1 / 3, 0.1, 2.0**24 + 1, 2.0**53 + 2]


def _source_values(name):
    """Edge values of dtype `name` plus random ones, as a NumPy array of that dtype."""
    rng = np.random.default_rng(sum(map(ord, name)))
    if name == "bool":
        return np.array([False, True, True, False] + list(rng.integers(0, 2, 20) == 1))
    if name in _INT_RANGE:
        lo, hi = _INT_RANGE[name]
        edges = [lo, lo + 1, -1, 0, 1, 2, 127, 128, 255, 256, 257, 2049, 32767, 32768, 65504,
                 65520, 2**24 + 1, 2**31 - 1, 2**31, 2**32 + 3, 2**53 + 1, 2**62 + 2**40 + 1,
                 hi - 1, hi]
        edges = [v for v in edges if lo <= v <= hi]
        rand = rng.integers(lo, hi, size=100, endpoint=True, dtype=np.int64)
        return np.array(edges + rand.tolist(), dtype=name)
    rand = rng.standard_normal(200) * 10.0 ** rng.uniform(-6, 25, 200)
    vals = np.array(_FLOAT_PROBES + rand.tolist(), dtype=np.float64)
    with np.errstate(over="ignore"):
        return vals.astype(np.float32).astype(np_dtype(name)) if name == "bfloat16" \
            else vals.astype(name)


def cast_oracle(a, dst):
    """The conversion rules of csrc/kernels/cast.c applied to NumPy array `a`,
    as a list of Python values (bool, int or float)."""
    src_is_float = a.dtype.kind in "fV"
    if dst == "bool":
        return [bool(v != 0) for v in a.astype(np.float64)] if src_is_float \
            else [bool(v) for v in a.tolist()]
    if dst in _INT_RANGE:
        lo, hi = _INT_RANGE[dst]
        out = []
        if src_is_float:
            for v in a.astype(np.float64).tolist():   # truncate, NaN -> 0, saturate
                out.append(0 if math.isnan(v) else lo if v <= lo else hi if v >= hi
                           else int(v))
        else:
            span = hi - lo + 1
            for v in (int(x) for x in a.tolist()):   # wrap modulo 2**bits
                out.append((v - lo) % span + lo)
        return out
    # float destinations: the C value converted once to float32/float64;
    # float16/bfloat16 go through float32 and round to nearest even
    src = a.astype(np.float64) if a.dtype.name == "bfloat16" else a
    with np.errstate(over="ignore", invalid="ignore"):
        if dst == "float64":
            return src.astype(np.float64).tolist()
        f32 = src.astype(np.float32)
        return f32.astype(np_dtype(dst)).astype(np.float64).tolist()


@pytest.mark.parametrize("src", DTYPE_NAMES)
@pytest.mark.parametrize("dst", DTYPE_NAMES)
def test_astype_between_every_pair_follows_the_cast_rules(src, dst):
    if "bfloat16" in (src, dst):
        pytest.importorskip("ml_dtypes")
    a = _source_values(src)
    t = from_numpy_copy(a)
    assert t.dtype is getattr(pf, src)
    out = t.astype(getattr(pf, dst))
    assert out.dtype is getattr(pf, dst) and out.shape == a.shape
    got = out.tolist()
    want = cast_oracle(a, dst)
    if dst in FLOAT_NAMES:
        g, w = np.array(got, dtype=np.float64), np.array(want, dtype=np.float64)
        np.testing.assert_array_equal(g, w, err_msg=f"{src} -> {dst}")
        ok = ~np.isnan(w)
        np.testing.assert_array_equal(np.signbit(g[ok]), np.signbit(w[ok]))   # -0.0 kept
    else:
        bad = [(a[i], g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
        assert bad == [], f"{src} -> {dst}: (value, got, want) {bad[:5]}"


def test_astype_keeps_shape_of_strided_tensors_and_copies():
    t = pf.tensor(np.arange(12, dtype=np.float64).reshape(3, 4))[::-1, 1::2]
    out = t.astype(pf.int16)
    assert out.shape == (3, 2) and out.is_contiguous()
    assert out.tolist() == [[9, 11], [5, 7], [1, 3]]
    same = t.astype(pf.float64)
    assert same is not t
    assert t.astype(pf.float64, copy=False) is t
