"""Basic indexing (ints, slices, ..., None) read and write, against NumPy.

Every basic index is a view: the tests check the values, the geometry
(shape, byte strides, where the first element lies) and that a write
through the result lands in the base exactly where NumPy's would.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyframe as pf
from helpers_views import (assert_same, basic_index, broadcastable_to, pair, sample_values,
                           shapes, shares, tensor_of)

SETTINGS = settings(max_examples=50, deadline=None)


def _ptr(t):
    return t.__array_interface__["data"][0]


def _np_view(a, key):
    """NumPy's result for `key` as an ndarray view (a 0-d view for all-int keys)."""
    k = key if isinstance(key, tuple) else (key,)
    if not any(x is Ellipsis for x in k):
        k = k + (Ellipsis,)
    v = a[k]
    assert v.base is not None or v is a
    return v


def _check_geometry(r, base, ev, a):
    """r = base[key] in pyframe, ev = a[key] in NumPy: same shape, strides, first element."""
    assert isinstance(r, pf.Tensor)
    assert r.shape == ev.shape
    assert r.dtype == base.dtype
    for n, s_pf, s_np in zip(r.shape, r.strides, ev.strides):
        if n > 1:
            assert s_pf == s_np, (r.strides, ev.strides)
    if r.size > 0:
        assert _ptr(r) - _ptr(base) == ev.ctypes.data - a.ctypes.data


# ------------------------------------------------------------------ reading

@SETTINGS
@given(data=st.data())
def test_getitem_matches_numpy(data):
    shape = data.draw(shapes(0, 4, 0, 5), label="shape")
    key = data.draw(basic_index(shape), label="key")
    t, a = pair(shape, pf.int32, seed=3)
    ev = _np_view(a, key)
    r = t[key]
    _check_geometry(r, t, ev, a)
    assert_same(r, ev)
    if r.size > 0:
        assert shares(r, t)
        # write through the view: the base changes where NumPy's does
        r.fill_(-1000)
        ev[...] = -1000
        assert_same(t, a)


@pytest.mark.parametrize("dtype", [pf.float64, pf.float16, pf.bool, pf.uint8, pf.bfloat16],
                         ids=lambda d: d.name)
def test_getitem_other_dtypes(dtype):
    t, a = pair((4, 5, 3), dtype, seed=1)
    for key in [(1, slice(None, None, -2)), (Ellipsis, -1), (None, slice(3, 0, -1), 2, None),
                (slice(None), slice(None), slice(None, None, 2))]:
        assert_same(t[key], a[key])


def test_all_int_index_gives_0d_view():
    t, a = pair((3, 4), pf.float64)
    r = t[1, -2]
    assert isinstance(r, pf.Tensor) and r.shape == () and r.ndim == 0
    assert r.item() == a[1, -2]
    r[...] = 99.5
    assert t[1, 2].item() == 99.5
    assert t[-1].shape == (4,)
    np.testing.assert_array_equal(t[-1].tolist(), a[-1])


def test_index_with_numpy_int_and_0d_int_tensor():
    t, a = pair((5, 4), pf.int64)
    assert_same(t[np.int64(3)], a[3])
    assert_same(t[pf.tensor(-2)], a[-2])
    assert_same(t[np.int8(1), np.int64(-1)], a[1, -1])


def test_slices_with_negative_and_large_steps():
    t, a = pair((10,), pf.float32)
    for key in [slice(None, None, -1), slice(8, 1, -3), slice(-1, -11, -4), slice(100, None, -2),
                slice(None, -100, -1), slice(2, 2), slice(7, 3), slice(None, None, 20),
                slice(-100, 100, 3)]:
        r = t[key]
        assert_same(r, a[key])
        if a[key].size > 1:
            assert r.strides == a[key].strides


def test_chained_indexing_views_of_views():
    t, a = pair((6, 7, 5), pf.int16)
    r = t[::-1][1:, ::2][..., None, 1::2][2]
    e = a[::-1][1:, ::2][..., None, 1::2][2]
    assert_same(r, e)
    r[...] = 0
    e[...] = 0
    assert_same(t, a)


# ------------------------------------------------------------------ writing

def _value_for(data, shape, npdtype, seed=5):
    vshape = data.draw(broadcastable_to(shape), label="value shape")
    # leading dimensions may be dropped and the value still broadcasts; a tensor
    # holds at most MAX_DIMS of them (a None-heavy key can reach 8 already)
    vshape = tuple(vshape)[-pf.MAX_DIMS:]
    return sample_values(vshape, npdtype, seed)


@SETTINGS
@given(data=st.data(), how=st.sampled_from(["scalar", "list", "ndarray", "tensor",
                                            "expanded tensor"]))
def test_setitem_matches_numpy(data, how):
    shape = data.draw(shapes(1, 4, 1, 5), label="shape")
    key = data.draw(basic_index(shape), label="key")
    t, a = pair(shape, pf.float64, seed=2)
    target_shape = np.asarray(a[key]).shape
    if how == "scalar":
        value = -7.5
    else:
        v = _value_for(data, target_shape, np.dtype(np.float64))
        if how == "list":
            value = v.tolist() if v.size else v    # [] cannot spell shape (0, 1)
        elif how == "ndarray":
            value = v
        elif how == "tensor":
            value = tensor_of(v)
        else:
            # a stride-0 tensor as the source
            value = tensor_of(v)
            if len(target_shape) >= value.ndim:
                value = value.broadcast_to(target_shape)
                v = np.broadcast_to(v, target_shape)
    # through NumPy's view: a[0] = [x] on a 1-d array is refused by NumPy's
    # scalar path, while the 0-d view takes the (1,) value as a broadcast
    _np_view(a, key)[...] = v if how != "scalar" else value
    t[key] = value
    assert_same(t, a)


@pytest.mark.parametrize("dtype", [pf.int8, pf.uint8, pf.int32, pf.float16, pf.bool],
                         ids=lambda d: d.name)
def test_setitem_scalar_per_dtype(dtype):
    t, a = pair((4, 6), dtype)
    t[1::2, ::-3] = 1
    a[1::2, ::-3] = 1
    t[..., 0] = True
    a[..., 0] = True
    assert_same(t, a)


def test_setitem_casts_like_numpy():
    t, a = pair((2, 3), pf.int32)
    t[0] = [2.7, -2.7, 0.5]          # read in the target dtype: truncation toward zero
    a[0] = [2.7, -2.7, 0.5]
    t[1] = np.array([1.9, -1.9, 3.0])
    a[1] = np.array([1.9, -1.9, 3.0])
    assert_same(t, a)
    f, fa = pair((3,), pf.float32)
    f[:] = pf.tensor([1, 2, 3], dtype=pf.int64)
    fa[:] = np.array([1, 2, 3])
    assert_same(f, fa)
    f[1:] = np.array([True, False])
    fa[1:] = np.array([True, False])
    assert_same(f, fa)


def test_setitem_extra_leading_ones_in_value():
    t, a = pair((3, 4), pf.float32)
    v = sample_values((1, 1, 4), np.dtype(np.float32), seed=9)
    t[1] = v
    a[1] = v
    assert_same(t, a)


# ------------------------------------------------------ overlapping writes

def test_overlapping_shift_right_and_left():
    t, a = pair((8,), pf.int64)
    t[1:] = t[:-1]
    a[1:] = a[:-1]
    assert_same(t, a)
    t[:-1] = t[1:]
    a[:-1] = a[1:]
    assert_same(t, a)


def test_overlapping_reverse_and_transpose():
    t, a = pair((5, 5), pf.float32)
    t[:, ::-1] = t
    a[:, ::-1] = a.copy()    # NumPy resolves the overlap as if the source were copied
    assert_same(t, a)
    t[...] = t.T
    a[...] = a.T.copy()
    assert_same(t, a)
    t[1:, 1:] = t[:-1, :-1]
    a[1:, 1:] = a[:-1, :-1].copy()
    assert_same(t, a)


@SETTINGS
@given(n=st.integers(2, 20), data=st.data())
def test_overlapping_1d_slices_match_numpy(n, data):
    step_d = data.draw(st.sampled_from([1, 2, 3, -1, -2, -3]), label="dst step")
    step_s = data.draw(st.sampled_from([1, 2, 3, -1, -2, -3]), label="src step")
    length = data.draw(st.integers(1, n), label="length")
    idx = np.arange(n)

    def pick(step):
        starts = [s for s in range(n) if len(idx[s::step][:length]) == length]
        if not starts:
            return None
        s = data.draw(st.sampled_from(starts))
        stop = s + step * length
        return slice(s, stop if stop >= 0 else None, step)

    dst, src = pick(step_d), pick(step_s)
    if dst is None or src is None:
        return
    t, a = pair((n,), pf.int32)
    t[dst] = t[src]
    a[dst] = a[src].copy()
    assert_same(t, a)


# ------------------------------------------------------------------ errors

def test_index_out_of_bounds():
    t, _ = pair((3, 4))
    with pytest.raises(IndexError, match=r"Tensor\.__getitem__: index 3 is out of bounds for "
                                         r"axis 0 with size 3"):
        t[3]
    with pytest.raises(IndexError, match=r"index -5 is out of bounds for axis 1 with size 4"):
        t[0, -5]
    with pytest.raises(IndexError, match=r"Tensor\.__setitem__: index 4 is out of bounds for "
                                         r"axis 1 with size 4"):
        t[..., 4] = 1.0


def test_too_many_indices():
    t, _ = pair((3, 4))
    with pytest.raises(IndexError, match=r"Tensor\.__getitem__: too many indices: the tensor "
                                         r"has 2 dimension\(s\) but 3 were indexed"):
        t[0, 0, 0]
    with pytest.raises(IndexError, match=r"has 0 dimension\(s\) but 1 were indexed"):
        pf.tensor(1.0)[0]


def test_two_ellipses_and_zero_step():
    t, _ = pair((3, 4))
    with pytest.raises(IndexError, match=r"Tensor\.__getitem__: an index can only have a single "
                                         r"ellipsis"):
        t[..., 0, ...]
    with pytest.raises(ValueError, match=r"Tensor\.__getitem__: slice step cannot be zero "
                                         r"\(axis 1\)"):
        t[:, ::0]


def test_invalid_index_types():
    t, _ = pair((3, 4))
    with pytest.raises(IndexError, match=r"Tensor\.__getitem__: only integers, slices .* got "
                                         r"float"):
        t[1.0]
    with pytest.raises(IndexError, match=r"Tensor\.__getitem__: only integers, slices .* got str"):
        t["a"]


def test_0d_ndarray_is_a_basic_integer_index():
    # an ndarray has __index__, but only a 0-d one is an integer index (a view);
    # arrays with dimensions are advanced indices (tests/test_advanced_indexing.py)
    t, a = pair((3, 4))
    r = t[np.array(2)]
    assert_same(r, a[2])
    assert shares(r, t)


def test_setitem_errors():
    t, _ = pair((3, 4))
    with pytest.raises(TypeError, match=r"Tensor\.__setitem__: tensor elements cannot be "
                                        r"deleted"):
        del t[0]
    with pytest.raises(ValueError, match=r"Tensor\.__setitem__: .*\(5,\).*\(4,\)"):
        t[0] = np.ones(5)
    with pytest.raises(ValueError, match=r"Tensor\.__setitem__: cannot broadcast a value of "
                                         r"shape \(2, 4\) into a tensor of shape \(4,\)"):
        t[1] = np.ones((2, 4))
    i8, _ = pair((3,), pf.int8)
    with pytest.raises(ValueError, match=r"Tensor\.__setitem__: Python integer 300 is out of "
                                         r"range for dtype int8"):
        i8[0] = 300
    with pytest.raises(TypeError, match=r"Tensor\.__setitem__: .*str"):
        t[0] = "abc"


def test_setitem_into_expanded_raises():
    base, _ = pair((3, 1))
    e = base.expand(3, 4)
    with pytest.raises(RuntimeError, match=r"Tensor\.__setitem__: cannot write into an expanded "
                                           r"\(broadcast\) tensor"):
        e[0] = 1.0
    with pytest.raises(RuntimeError, match=r"cannot write into an expanded"):
        e[...] = np.zeros((3, 4))
    # a None axis has stride 0 but size 1: writing through it is fine
    base[None][0, 1, 0] = 42.0
    assert base[1, 0].item() == 42.0
