"""Shared helpers for the view, indexing, bridge and memory tests.

The oracle is NumPy: every tensor under test is paired with a NumPy array
holding the same values in the same geometry, and the helpers compare a
tensor with that array without trusting the code under test more than
needed (values are read back with ``tolist()``, which walks the tensor's
own strides in C and never goes through the NumPy bridge).
"""
import numpy as np
from hypothesis import strategies as st

import pyframe as pf

# (pyframe dtype, NumPy dtype) for every dtype NumPy has natively.
NATIVE_DTYPES = [
    (pf.bool, np.dtype(np.bool_)),
    (pf.uint8, np.dtype(np.uint8)),
    (pf.int8, np.dtype(np.int8)),
    (pf.int16, np.dtype(np.int16)),
    (pf.int32, np.dtype(np.int32)),
    (pf.int64, np.dtype(np.int64)),
    (pf.float16, np.dtype(np.float16)),
    (pf.float32, np.dtype(np.float32)),
    (pf.float64, np.dtype(np.float64)),
]
NATIVE_IDS = [d.name for d, _ in NATIVE_DTYPES]


def sample_values(shape, npdtype, seed=0):
    """Distinct-ish values of `npdtype` that every dtype represents exactly."""
    n = int(np.prod(shape, dtype=np.int64))
    if npdtype == np.bool_:
        vals = (np.arange(n) * 7 + seed) % 3 == 0
    elif npdtype.kind == "u":
        vals = (np.arange(n) * 5 + seed) % 251
    elif npdtype.kind == "i":
        vals = ((np.arange(n) * 5 + seed) % 251) - 125
    else:
        # halves in [-64, 64): exact in bfloat16 (8 significant bits) and wider
        vals = (((np.arange(n) * 13 + seed) % 256) - 128) / 2.0
    return vals.astype(npdtype).reshape(shape)


def pair(shape, pfdtype=pf.float32, seed=0):
    """(tensor, ndarray) holding the same values; the tensor owns its memory.

    The tensor is made from nested Python lists (see tensor_of) so that
    creating it does not depend on the NumPy bridge.
    """
    npdtype = np.dtype(pfdtype.name) if pfdtype != pf.bfloat16 else np.dtype(np.float32)
    a = sample_values(shape, npdtype, seed)
    t = tensor_of(a, pfdtype)
    assert t.shape == a.shape
    return t, a


def tensor_of(a, pfdtype=None):
    """A tensor owning a copy of ndarray `a`, made without the NumPy bridge.

    Nested lists cannot spell an empty shape such as (0, 3), so empty
    tensors come from pf.zeros."""
    a = np.asarray(a)
    pfdtype = pfdtype or pf.dtype(a.dtype.name)
    if a.size == 0:
        return pf.zeros(a.shape, dtype=pfdtype)
    return pf.tensor(a.tolist() if a.ndim else a.item(), dtype=pfdtype)


def values(t):
    """The tensor's values as a float64/int64/bool ndarray, read via tolist()."""
    lst = t.tolist()
    if t.dtype == pf.bool:
        kind = np.bool_
    elif t.dtype.is_floating_point:
        kind = np.float64
    else:
        kind = np.int64
    out = np.array(lst, dtype=kind)
    if out.size == 0:
        out = out.reshape(t.shape)   # [] loses the shape of an empty tensor
    assert out.shape == t.shape, (out.shape, t.shape)
    return out


def assert_same(t, expected, dtype=None):
    """Shape and values of tensor t equal NumPy's `expected` (compared in float64)."""
    expected = np.asarray(expected)
    assert t.shape == expected.shape, f"shape {t.shape} != expected {expected.shape}"
    if dtype is not None:
        assert t.dtype == dtype, f"dtype {t.dtype} != {dtype}"
    got = values(t)
    if expected.dtype == np.bool_ or got.dtype == np.bool_:
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_array_equal(got.astype(np.float64), expected.astype(np.float64))


def data_ptr(t):
    """Address of the first element, from __array_interface__ (falls back to NumPy)."""
    return np.asarray(t).__array_interface__["data"][0]


def shares(x, y):
    """np.shares_memory of the NumPy views of two tensors (or arrays)."""
    return np.shares_memory(np.asarray(x), np.asarray(y))


def np_can_view(a, shape):
    """True when NumPy can reshape `a` to `shape` without copying (the oracle)."""
    try:
        np.reshape(a, shape, copy=False)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- strategies

def shapes(min_dims=0, max_dims=4, min_side=0, max_side=5):
    return st.lists(st.integers(min_side, max_side), min_size=min_dims,
                    max_size=max_dims).map(tuple)


@st.composite
def basic_index(draw, shape, allow_none=True, allow_ellipsis=True):
    """A valid basic index key for an array of `shape`: ints (also negative),
    slices with any step and out-of-range bounds, at most one ..., None."""
    ndim = len(shape)

    def axis_item(dim):
        n = shape[dim]
        if n > 0 and draw(st.booleans()):
            return draw(st.integers(-n, n - 1))
        bound = st.none() | st.integers(-n - 2, n + 2)
        step = st.none() | st.integers(-3, 3).filter(lambda s: s != 0)
        return slice(draw(bound), draw(bound), draw(step))

    items = []
    dim = 0
    after_ellipsis = False
    nones = 0
    for _ in range(draw(st.integers(0, ndim + 2))):
        kinds = ["axis"] * 3
        # each None adds a dimension: the result keeps at most MAX_DIMS (8) of them
        if allow_none and ndim + nones < 8:
            kinds.append("none")
        if allow_ellipsis and not after_ellipsis:
            kinds.append("ellipsis")
        kind = draw(st.sampled_from(kinds))
        if kind == "axis" and dim < ndim:
            items.append(axis_item(dim))
            dim += 1
        elif kind == "none":
            items.append(None)
            nones += 1
        elif kind == "ellipsis":
            items.append(Ellipsis)
            after_ellipsis = True
            # the ellipsis stands for some axes; the items after it index
            # the last ones, so they are drawn for exactly those axes
            dim = ndim - draw(st.integers(0, ndim - dim))
    if after_ellipsis:
        while dim < ndim:
            items.append(axis_item(dim))
            dim += 1
    if len(items) == 1 and draw(st.booleans()):
        return items[0]     # a bare key, not a tuple
    return tuple(items)


def broadcastable_to(shape):
    """Strategy for a shape that broadcasts to `shape` (NumPy rules, source side)."""
    ndim = len(shape)

    @st.composite
    def _s(draw):
        keep = draw(st.integers(0, ndim))
        tail = shape[ndim - keep:]
        out = tuple(1 if draw(st.booleans()) else s for s in tail)
        if draw(st.booleans()):
            out = (1,) + out    # NumPy allows extra leading 1-dims on the value
        return out
    return _s()
