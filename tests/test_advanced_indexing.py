"""Advanced indexing (integer arrays, boolean masks, True/False) against NumPy.

Keys are drawn by hypothesis: index arrays that broadcast together (as
pf tensors, NumPy arrays or nested lists, of every integer dtype), masks
over one or more axes, mixed with ints, slices, None and ..., with the
advanced items side by side or apart (NumPy moves the broadcast dims to the
front when they are apart).  Reading must give NumPy's shape and values as
a copy; writing must land where NumPy's would, with the value broadcast and
cast, and with duplicate targets taking the last value in C order.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyframe as pf
from helpers_views import assert_same, pair, sample_values, shares, tensor_of

SETTINGS = settings(max_examples=40, deadline=None)
INT_DTYPES = [np.int64, np.int32, np.int16, np.int8, np.uint8]


# ------------------------------------------------------------- strategies

@st.composite
def adv_key(draw, shape, allow_mask=True):
    """(pf key, NumPy key) for an array of `shape`, with at least one advanced item.

    Index arrays broadcast to a drawn shape B; a mask's nonzero() arrays are
    1-D, so masks appear only while B is 1-D (its length is then the mask's
    number of True values) or still empty (the mask then fixes it)."""
    ndim = len(shape)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    state = {"B": tuple(draw(st.lists(st.integers(1, 3), max_size=2), label="B")),
             "adv": 0, "mask": False, "none": 0}

    def form(arr):
        how = draw(st.sampled_from(["tensor", "ndarray", "list"]), label="form")
        if how == "ndarray":
            return arr, arr
        if how == "list" and arr.size > 0:
            return arr.tolist(), arr
        return tensor_of(arr), arr

    def int_array(n):
        b = state["B"]
        keep = draw(st.integers(0, len(b)))
        ishape = tuple(1 if draw(st.booleans()) else s for s in b[len(b) - keep:]) or (1,)
        dt = draw(st.sampled_from(INT_DTYPES), label="index dtype")
        vals = rng.integers(0 if dt == np.uint8 else -n, n, size=ishape).astype(dt)
        state["adv"] += 1
        return form(vals)

    def mask(sub):
        total = int(np.prod(sub))
        b = state["B"]
        nnz = b[0] if len(b) == 1 else draw(st.integers(0, total), label="nnz")
        if nnz > total:
            return None
        m = np.zeros(total, bool)
        m[rng.choice(total, size=nnz, replace=False)] = True
        state["B"] = (nnz,)
        state["adv"] += 1
        state["mask"] = True
        return form(m.reshape(sub))

    def axis_items(dim, stop):
        out = []
        while dim < stop:
            n = shape[dim]
            kinds = ["int", "slice", "array", "array", "array"]
            if draw(st.integers(0, 4), label="allow True") == 0:
                kinds.append("true")
            if state["none"] < 2:
                kinds.append("none")
            if allow_mask and len(state["B"]) <= 1 and not state["mask"]:
                kinds.append("mask")
            kind = draw(st.sampled_from(kinds), label="kind")
            if kind == "int" and n > 0:
                v = draw(st.integers(-n, n - 1))
                out.append((v, v))
                dim += 1
            elif kind == "array" and n > 0:
                out.append(int_array(n))
                dim += 1
            elif kind == "mask":
                k = draw(st.integers(1, stop - dim), label="mask dims")
                m = mask(shape[dim:dim + k])
                if m is not None:
                    out.append(m)
                    dim += k
            elif kind == "none":
                out.append((None, None))
                state["none"] += 1
            elif kind == "true":
                out.append((True, True))
                state["adv"] += 1
            else:
                bound = st.none() | st.integers(-n - 1, n + 1)
                step = st.none() | st.sampled_from([1, 2, -1, -3])
                s = slice(draw(bound), draw(bound), draw(step))
                out.append((s, s))
                dim += 1
        return out

    lead = draw(st.integers(0, ndim), label="leading axes")
    items = axis_items(0, lead)
    if draw(st.booleans(), label="ellipsis"):
        items.append((Ellipsis, Ellipsis))
        items += axis_items(ndim - draw(st.integers(0, ndim - lead)), ndim)
    if state["adv"] == 0:
        # no advanced item drawn: index the next axis with an array if there is one
        consumed = sum(1 for _, x in items if x is not None and x is not True)
        if Ellipsis not in [x for _, x in items] and consumed < ndim and shape[consumed] > 0:
            items.append(int_array(shape[consumed]))
        else:
            items.insert(draw(st.integers(0, len(items))), (True, True))
    pf_key = tuple(i[0] for i in items)
    np_key = tuple(i[1] for i in items)
    if len(items) == 1 and draw(st.booleans()):
        return pf_key[0], np_key[0]
    return pf_key, np_key


def _base(data, shape, dtype=pf.float64):
    """(tensor, ndarray) of `shape`, sometimes a non-contiguous view of a bigger one."""
    layout = data.draw(st.sampled_from(["contiguous", "transposed", "strided"]), label="layout")
    if layout == "transposed" and len(shape) >= 2:
        t, a = pair(tuple(reversed(shape)), dtype, seed=7)
        return t.T, a.T
    if layout == "strided":
        big = tuple(2 * s for s in shape)
        t, a = pair(big, dtype, seed=11)
        key = tuple(slice(None, None, -2) for _ in shape)
        return t[key], a[key]
    return pair(shape, dtype, seed=3)


def _shapes():
    return st.lists(st.integers(0, 4), min_size=1, max_size=4).map(tuple)


# ------------------------------------------------------------------ reading

@SETTINGS
@given(data=st.data())
def test_getitem_matches_numpy(data):
    shape = data.draw(_shapes(), label="shape")
    t, a = _base(data, shape)
    pk, nk = data.draw(adv_key(shape), label="key")
    try:
        expected = a[nk]
    except IndexError as e:
        with pytest.raises(IndexError, match=r"Tensor\.__getitem__"):
            t[pk]
        assert "shape mismatch" in str(e) or "too many" in str(e), e
        return
    r = t[pk]
    assert_same(r, expected, dtype=t.dtype)
    if r.size > 0 and t.size > 0:
        assert not shares(r, t)     # advanced indexing reads a copy


@pytest.mark.parametrize("dtype", [pf.bool, pf.uint8, pf.int8, pf.int16, pf.int32, pf.int64,
                                   pf.float16, pf.bfloat16, pf.float32, pf.float64],
                         ids=lambda d: d.name)
def test_getitem_every_dtype(dtype):
    t, a = pair((4, 5, 3), dtype, seed=2)
    keys = [([3, 0, -1],), (slice(None), [[1], [4]], [0, 2]), (a[..., 0] > 0,),
            (1, slice(None), [2, 2]), ([0, 1], slice(None), [1, 0]), (True, 2),
            (np.array([0, 3]), None, slice(1, None), -1)]
    for k in keys:
        assert_same(t[k], a[k], dtype=dtype)


def test_placement_of_broadcast_dims():
    # side by side: the broadcast dims replace the indexed ones in place
    t, a = pair((2, 3, 4, 5), pf.int32)
    for k in [(slice(None), [0, 2], [1, 3]), (slice(None), [[0], [1]], [1, 3], slice(None)),
              (slice(None), 0, [1, 2]), (slice(None), slice(None), [1], 0)]:
        assert t[k].shape == a[k].shape
        assert_same(t[k], a[k])
    # apart (a slice, None or ... between them): the broadcast dims go first
    for k in [([0, 1], slice(None), [1, 3]), (0, slice(None), [1, 2]),
              ([1], None, [2]), (slice(None), [0], Ellipsis, [1]),
              ([0, 1], Ellipsis, [[1], [2]])]:
        assert t[k].shape == a[k].shape, k
        assert_same(t[k], a[k])


def test_masks():
    t, a = pair((3, 4, 5), pf.float32)
    m2 = (a[:, :, 0] > 0)
    for k in [(a > 0,), (m2,), (slice(None), a[0] > 0), (m2, [1]), (Ellipsis, a[0, 0] > 0),
              (np.zeros((3, 4), bool),), (pf.tensor(m2.tolist()),), (m2.tolist(),),
              ([True, False, True],), (1, [True, False, True, True], slice(1, 3))]:
        assert_same(t[k], a[tuple(np.asarray(x) if isinstance(x, pf.Tensor) else x
                                  for x in k)])


def test_scalar_bools_and_0d_bool_arrays():
    t, a = pair((3, 4), pf.int64)
    for k in [True, False, (True,), (0, True), (True, [1, 2]), ([1], True),
              (slice(None), False), (True, True, 1)]:
        assert_same(t[k], a[k])
    assert_same(t[np.array(True)], a[np.array(True)])
    assert_same(t[np.True_], a[np.True_])
    assert_same(t[pf.tensor(False)], a[np.array(False)])
    s, sa = pair((), pf.float32)
    assert_same(s[True], sa[True])
    assert_same(s[False], sa[False])


def test_empty_and_zero_size():
    t, a = pair((3, 0, 2), pf.float32)
    assert_same(t[[]], a[[]])
    assert_same(t[[0, 2]], a[[0, 2]])
    assert_same(t[:, []], a[:, []])
    assert_same(t[np.zeros((3, 0), bool)], a[np.zeros((3, 0), bool)])
    u, b = pair((4,), pf.int16)
    assert_same(u[np.array([], dtype=np.int64)], b[np.array([], dtype=np.int64)])
    assert_same(u[[[]]], b[np.zeros((1, 0), np.intp)])


def test_negative_indices_wrap_and_result_is_a_copy():
    t, a = pair((5, 3), pf.float64)
    r = t[[-1, -5, 2]]
    assert_same(r, a[[-1, -5, 2]])
    r.fill_(0.0)
    assert_same(t, a)


def test_gather_rows_of_a_large_tensor_uses_threads_correctly():
    # big enough to split across threads: rows of a (N, D) table and a scatter back
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3000, 40)).astype(np.float32)
    idx = rng.integers(-3000, 3000, size=2500)
    t = pf.tensor(a)
    np.testing.assert_array_equal(np.asarray(t[idx]), a[idx])
    np.testing.assert_array_equal(np.asarray(t[:, [3, 1, 0]]), a[:, [3, 1, 0]])
    flat = rng.integers(0, 3000, size=100000)
    np.testing.assert_array_equal(np.asarray(t[flat, flat % 40]), a[flat, flat % 40])
    m = a > 0.5
    np.testing.assert_array_equal(np.asarray(t[pf.tensor(m)]), a[m])
    t[:, [5, 7]] = 0.0
    a[:, [5, 7]] = 0.0
    np.testing.assert_array_equal(np.asarray(t), a)


# ------------------------------------------------------------------ writing

def _reference_write(a, nk, value):
    """a[nk] = value with C-order last-write-wins, by a Python loop over targets."""
    pos = np.arange(a.size).reshape(a.shape)[nk]
    v = np.asarray(value)
    while v.ndim > pos.ndim and v.shape[0] == 1:
        v = v[0]
    vb = np.broadcast_to(v.astype(a.dtype), pos.shape)
    out = a.copy().ravel()
    for p, x in zip(pos.ravel(), vb.ravel()):
        out[p] = x
    return out.reshape(a.shape), len(np.unique(pos)) != pos.size


@SETTINGS
@given(data=st.data(), how=st.sampled_from(["scalar", "list", "ndarray", "tensor", "int tensor"]))
def test_setitem_matches_numpy(data, how):
    shape = data.draw(_shapes(), label="shape")
    t, a = _base(data, shape)
    pk, nk = data.draw(adv_key(shape), label="key")
    try:
        target = a[nk].shape
    except IndexError:
        return
    if how == "scalar":
        value = -7.5
        nvalue = value
    else:
        keep = data.draw(st.integers(0, len(target)), label="value dims")
        vshape = tuple(1 if data.draw(st.booleans()) else s
                       for s in target[len(target) - keep:])
        if data.draw(st.booleans()):
            vshape = (1,) + vshape
        nvalue = sample_values(vshape, np.dtype(np.float64), seed=5) + 0.25
        if how == "list":
            value = nvalue.tolist() if nvalue.size else nvalue
        elif how == "ndarray":
            value = nvalue
        elif how == "int tensor":
            nvalue = np.floor(nvalue).astype(np.int64)
            value = tensor_of(nvalue)
        else:
            value = tensor_of(nvalue)
    expected, dupes = _reference_write(a, nk, nvalue)
    if not dupes:
        b = a.copy()
        try:
            b[nk] = nvalue
        except TypeError as e:
            # NumPy's lone-mask assignment refuses values of 2+ dims that still broadcast
            assert "boolean array indexing assignment" in str(e)
        else:
            np.testing.assert_array_equal(b, expected)     # the loop reference is NumPy's
    t[pk] = value
    assert_same(t, expected)


def test_setitem_duplicates_last_wins():
    t, a = pair((6,), pf.int64)
    t[[1, 3, 1, 1]] = pf.tensor([10, 20, 30, 40])
    a[[1, 3, 1, 1]] = [10, 20, 30, 40]
    assert_same(t, a)
    m, b = pair((3, 4), pf.float32)
    m[[0, 0], [1, 1]] = [5.0, 6.0]
    assert m[0, 1].item() == 6.0
    b[0, 1] = 6.0
    m[[2, 2, 2], :] = pf.tensor([[1.0], [2.0], [3.0]])
    b[[2, 2, 2], :] = np.array([[1.0], [2.0], [3.0]], np.float32)
    assert_same(m, b)


def test_setitem_masks_casts_and_broadcasts():
    t, a = pair((3, 4), pf.int32)
    t[a > 0] = 2.9                  # cast to the tensor's dtype (truncation)
    a[a > 0] = 2.9
    assert_same(t, a)
    t[pf.tensor(a < 0)] = pf.tensor([-1.7])
    a[a < 0] = np.float64(-1.7)
    assert_same(t, a)
    t[:, [True, False, True, False]] = [[7], [8], [9]]
    a[:, [True, False, True, False]] = [[7], [8], [9]]
    assert_same(t, a)
    f, fa = pair((2, 3, 4), pf.float16)
    f[[1, 0], ..., [3, 2]] = np.arange(3.0)
    fa[[1, 0], ..., [3, 2]] = np.arange(3.0)
    assert_same(f, fa)
    bt, ba = pair((5,), pf.bool)
    bt[[0, 4]] = True
    ba[[0, 4]] = True
    assert_same(bt, ba)


def test_setitem_value_overlapping_the_tensor():
    t, a = pair((6,), pf.float64)
    t[[0, 1, 2, 3, 4, 5]] = t[::-1]
    a[[0, 1, 2, 3, 4, 5]] = a[::-1].copy()
    assert_same(t, a)
    t[[5, 4, 3]] = np.asarray(t)[:3]   # shares memory through NumPy
    a[[5, 4, 3]] = a[:3].copy()
    assert_same(t, a)
    t[t > 0] = t[t > 0] * 2
    a[a > 0] = a[a > 0] * 2
    assert_same(t, a)


def test_setitem_big_scatter_with_pre_dims_split_across_threads():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 300)).astype(np.float64)
    t = pf.tensor(a)
    cols = rng.integers(0, 300, size=500)     # duplicates: last wins within each row
    vals = rng.normal(size=(200, 500))
    t[:, cols] = vals
    expected, _ = _reference_write(a, (slice(None), cols), vals)
    np.testing.assert_array_equal(np.asarray(t), expected)


# ------------------------------------------------------------------ errors

def test_out_of_range_names_value_axis_and_size():
    t, _ = pair((3, 4))
    with pytest.raises(IndexError, match=r"Tensor\.__getitem__: index 5 is out of bounds for "
                                         r"axis 1 with size 4"):
        t[:, [0, 5]]
    with pytest.raises(IndexError, match=r"index -4 is out of bounds for axis 0 with size 3"):
        t[np.array([-4])]
    with pytest.raises(IndexError, match=r"Tensor\.__setitem__: index 3 is out of bounds for "
                                         r"axis 0 with size 3"):
        t[[3]] = 1.0
    with pytest.raises(IndexError, match=r"index 4 is out of bounds for axis 1 with size 4"):
        t[[0], 4]


def test_mask_shape_mismatch_names_both_shapes():
    t, _ = pair((3, 4))
    with pytest.raises(IndexError, match=r"Tensor\.__getitem__: boolean index of shape \(3, 5\) "
                                         r"does not match the indexed dimensions \(3, 4\)"):
        t[np.zeros((3, 5), bool)]
    with pytest.raises(IndexError, match=r"boolean index of shape \(3,\) does not match the "
                                         r"indexed dimensions \(4,\).*axis 1 has size 4"):
        t[:, [True, False, True]]
    with pytest.raises(IndexError, match=r"Tensor\.__setitem__: boolean index of shape \(2,\)"):
        t[[True, False]] = 0.0


def test_float_index_and_bad_items():
    t, _ = pair((3, 4))
    with pytest.raises(IndexError, match=r"Tensor\.__getitem__: arrays used as indices must be of "
                                         r"integer or boolean type; got an index of dtype "
                                         r"float64"):
        t[np.array([0.0, 1.0])]
    with pytest.raises(IndexError, match=r"dtype float32"):
        t[pf.tensor([1.0])]
    with pytest.raises(IndexError, match=r"dtype float32 \(convert it with \.astype"):
        t[[0.5, 1.0]]
    with pytest.raises(IndexError, match=r"Tensor\.__getitem__: only integers, slices .* got "
                                         r"float"):
        t[[0], 1.5]
    with pytest.raises(TypeError, match=r"Tensor\.__getitem__: cannot make a tensor from an "
                                        r"element of type slice"):
        t[[0, slice(None)]]


def test_broadcast_mismatch_and_too_many_indices():
    t, _ = pair((3, 4))
    with pytest.raises(IndexError, match=r"Tensor\.__getitem__: shape mismatch: the index arrays "
                                         r"have shapes \(2,\), \(3,\), which cannot be "
                                         r"broadcast"):
        t[[0, 1], [0, 1, 2]]
    with pytest.raises(IndexError, match=r"too many indices: the tensor has 2 dimension\(s\) but "
                                         r"3 were indexed"):
        t[[0], 0, 0]
    with pytest.raises(IndexError, match=r"too many indices.*but 3 were indexed"):
        t[np.ones((3, 4), bool), 0]
    with pytest.raises(IndexError, match=r"single ellipsis"):
        t[..., [0], ...]


def test_setitem_value_shape_mismatch():
    t, _ = pair((3, 4))
    with pytest.raises(ValueError, match=r"Tensor\.__setitem__: cannot broadcast a value of shape "
                                         r"\(3,\) to the indexed shape \(2, 4\)"):
        t[[0, 1]] = np.ones(3)
    with pytest.raises(ValueError, match=r"Tensor\.__setitem__: Python integer 300 is out of "
                                         r"range for dtype int8"):
        pair((3,), pf.int8)[0][[0]] = 300
    base, _ = pair((3, 1))
    with pytest.raises(RuntimeError, match=r"Tensor\.__setitem__: cannot write into an expanded"):
        base.expand(3, 4)[[0]] = 1.0
    ro = pf.from_numpy(np.zeros(3)).clone()
    arr = np.zeros(3)
    arr.flags.writeable = False
    ro = pf.from_numpy(arr)
    with pytest.raises(ValueError, match=r"Tensor\.__setitem__: tensor is read-only"):
        ro[[0]] = 1.0


def test_failed_write_leaves_tensor_unchanged():
    t, a = pair((4,), pf.float32)
    with pytest.raises(IndexError):
        t[[0, 1, 9]] = 5.0
    assert_same(t, a)
