"""Tensor properties and the view operations, against NumPy (and torch where
its semantics are the reference: transpose(d0, d1), expand(-1), flatten).

A view is checked three ways: the values equal NumPy's, np.shares_memory
with the base is true, and a write through the view shows in the base.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyframe as pf
from helpers_views import (NATIVE_DTYPES, NATIVE_IDS, assert_same, np_can_view, pair,
                           sample_values, shapes, shares, tensor_of, values)

SETTINGS = settings(max_examples=50, deadline=None)


def _assert_writes_through(view, base, npview, npbase, value=-99):
    """A write through `view` shows in `base` exactly where NumPy's does."""
    if view.size == 0:
        return
    view.fill_(value)
    npview[...] = value
    assert_same(base, npbase)


def _broadcast_to(x, shape):
    return x.broadcast_to(shape) if isinstance(x, pf.Tensor) else np.broadcast_to(x, shape)


# Geometries: the same steps applied to a tensor and to its NumPy twin.
GEOMETRIES = {
    "contiguous": lambda x: x,
    "transposed": lambda x: x.transpose(),
    "sliced": lambda x: x[1:, ::2],
    "reversed": lambda x: x[::-1, :, ::-1],
    "expanded": lambda x: _broadcast_to(x[:, :1, :], (3, 5, 4)),
    "row": lambda x: x[1],
    "scalar": lambda x: x[1, 2, 3],
}


# ---------------------------------------------------------------- properties

@pytest.mark.parametrize("pfdtype,npdtype", NATIVE_DTYPES, ids=NATIVE_IDS)
@pytest.mark.parametrize("geom", list(GEOMETRIES))
def test_properties_match_numpy(pfdtype, npdtype, geom):
    t, a = pair((3, 5, 4), pfdtype)
    tv, av = GEOMETRIES[geom](t), GEOMETRIES[geom](a)
    assert tv.shape == av.shape and isinstance(tv.shape, tuple)
    assert tv.ndim == av.ndim == tv.dim()
    assert tv.size == av.size == tv.numel()
    assert tv.dtype == pfdtype and tv.dtype.name == npdtype.name
    assert tv.itemsize == av.itemsize == npdtype.itemsize
    assert tv.nbytes == av.nbytes
    assert tv.strides == av.strides                                  # bytes, as NumPy
    assert tv.stride() == tuple(s // av.itemsize for s in av.strides)  # elements, as torch
    for d in range(-tv.ndim, tv.ndim):
        assert tv.stride(d) == av.strides[d] // av.itemsize
    assert tv.is_contiguous() == av.flags.c_contiguous
    assert str(tv.device) == "cpu" and tv.device == "cpu" and tv.device.type == "cpu"
    assert_same(tv, av)


def test_bfloat16_properties():
    t = pf.zeros((2, 3), dtype=pf.bfloat16)
    assert t.itemsize == 2 and t.nbytes == 12 and t.strides == (6, 2) and t.stride() == (3, 1)
    assert t.T.strides == (2, 6) and not t.T.is_contiguous()


def test_stride_errors():
    t, _ = pair((2, 3))
    with pytest.raises(IndexError, match=r"Tensor\.stride: axis 2 is out of range for a tensor "
                                         r"with 2 dimension\(s\)"):
        t.stride(2)


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4, 2), (1, 1), (5, 1, 1)])
def test_contiguity_edge_cases(shape):
    t, a = pair(shape)
    assert t.is_contiguous()
    if t.size:      # NumPy 2.4 gives empty arrays zero strides; any strides are valid there
        assert t.strides == np.zeros(shape, np.float32).strides
    # size-1 axes may have any stride and stay contiguous (NumPy's relaxed rule)
    tu = t[..., None]
    assert tu.is_contiguous() == np.asarray(a[..., None]).flags.c_contiguous


@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 3, 4), (2, 1, 3, 2), ()])
def test_T_reverses_axes(shape):
    t, a = pair(shape)
    r = t.T
    assert_same(r, a.T)
    assert r.strides == a.T.strides
    if r.size:
        assert shares(r, t)
    if r.ndim:
        _assert_writes_through(r[..., :1], t, a.T[..., :1], a)


@pytest.mark.skipif(int(np.__version__.split(".")[0]) < 2, reason="NumPy 2 semantics (copy=, DLPack 1.0, matrix_transpose, unique, ml_dtypes promotion) are the oracle")
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (2, 1, 3, 2)])
def test_mT_swaps_last_two(shape):
    t, a = pair(shape)
    e = np.matrix_transpose(a)
    assert_same(t.mT, e)
    assert t.mT.strides == e.strides
    assert shares(t.mT, t)


def test_mT_needs_two_dims():
    with pytest.raises(ValueError, match=r"Tensor\.mT: needs at least 2 dimensions .*got 1"):
        pair((3,))[0].mT


# ------------------------------------------------------------ reshape / view

def _factorizations(n, parts):
    """Strategy: a tuple of `parts` positive ints whose product is n."""
    primes = []
    m, p = n, 2
    while m > 1 and p * p <= m:
        while m % p == 0:
            primes.append(p)
            m //= p
        p += 1
    if m > 1:
        primes.append(m)

    @st.composite
    def _s(draw):
        dims = [1] * parts
        for f in primes:
            dims[draw(st.integers(0, parts - 1))] *= f
        return tuple(dims)
    return _s()


@st.composite
def reshape_case(draw):
    """A base shape, a geometry (transpose / slice / flip) and a target shape."""
    shape = draw(shapes(1, 4, 1, 5), label="base shape")
    geom = draw(st.sampled_from(["contiguous", "transposed", "permuted", "sliced", "flipped",
                                 "unsqueezed"]), label="geometry")
    parts = draw(st.integers(1, 4), label="target ndim")
    size = math.prod(shape)
    if geom == "sliced":
        size = math.prod((s + 1) // 2 for s in shape[:1]) * math.prod(shape[1:])
    target = draw(_factorizations(size, parts), label="target")
    if draw(st.booleans(), label="use -1"):
        i = draw(st.integers(0, parts - 1))
        target = target[:i] + (-1,) + target[i + 1:]
    perm = draw(st.permutations(range(len(shape))), label="perm")
    return shape, geom, tuple(perm), target


def _apply(x, geom, perm):
    if geom == "transposed":
        return x.transpose()
    if geom == "permuted":
        return x.transpose(perm)
    if geom == "sliced":
        return x[::2]
    if geom == "flipped":
        return x[..., ::-1]
    if geom == "unsqueezed":
        return x[:, None]
    return x


@pytest.mark.skipif(int(np.__version__.split(".")[0]) < 2, reason="NumPy 2 semantics (copy=, DLPack 1.0, matrix_transpose, unique, ml_dtypes promotion) are the oracle")
@SETTINGS
@given(case=reshape_case())
def test_reshape_and_view_match_numpy(case):
    shape, geom, perm, target = case
    t, a = pair(shape, pf.int64, seed=7)
    tv, av = _apply(t, geom, perm), _apply(a, geom, perm)
    expected = np.reshape(av, target)
    can_view = np_can_view(av, target)

    r = tv.reshape(target)
    assert_same(r, expected)
    assert shares(r, t) == can_view, f"NumPy can view: {can_view}"
    if can_view:
        v = tv.view(*target)
        assert_same(v, expected)
        assert shares(v, t)
        _assert_writes_through(v, t, np.reshape(av, target, copy=False), a)
    else:
        assert r.is_contiguous()
        with pytest.raises(RuntimeError, match=r"Tensor\.view: a tensor of shape .* with strides "
                                               r".* cannot be viewed as shape .* without "
                                               r"copying"):
            tv.view(target)
        before = values(t)
        r.fill_(0)                  # the copy is independent of the base
        np.testing.assert_array_equal(values(t), before)


@pytest.mark.parametrize("shape,target", [((0, 3), (3, 0)), ((0, 3), (-1, 3)), ((2, 0, 4), (0,)),
                                          ((2, 0, 4), (8, -1)), ((1,), ()), ((), (1, 1)),
                                          ((), (-1,))])
def test_reshape_empty_and_scalar(shape, target):
    t, a = pair(shape)
    e = np.reshape(a, target)
    assert_same(t.reshape(target), e)
    assert_same(t.view(target), e)


def test_reshape_argument_spellings():
    t, a = pair((2, 3, 4))
    for args in [((4, -1),), ([4, -1],), (4, -1), (-1,), ((24,),)]:
        e = a.reshape(*args)
        assert_same(t.reshape(*args), e)
        assert_same(t.view(*args), e)
        assert_same(pf.reshape(t, *args), e)


def test_view_on_transposed_raises_reshape_copies():
    t, a = pair((3, 4))
    tt = t.T
    with pytest.raises(RuntimeError, match=r"Tensor\.view: a tensor of shape \(4, 3\) with "
                                           r"strides \(1, 4\) cannot be viewed as shape \(12,\)"):
        tt.view(-1)
    r = tt.reshape(-1)
    assert_same(r, a.T.reshape(-1))
    assert not shares(r, t)
    # a transposed tensor can still be viewed where NumPy can: splitting an axis
    v = tt.view(2, 2, 3)
    assert_same(v, a.T.reshape(2, 2, 3))
    assert shares(v, t)


def test_reshape_errors():
    t, _ = pair((2, 3))
    with pytest.raises(ValueError, match=r"Tensor\.reshape: only one dimension can be -1"):
        t.reshape(-1, -1)
    with pytest.raises(ValueError, match=r"Tensor\.reshape: cannot reshape a tensor of shape "
                                         r"\(2, 3\) \(6 elements\) into shape \(4,\) "
                                         r"\(4 elements\)"):
        t.reshape(4)
    with pytest.raises(ValueError, match=r"Tensor\.view: cannot reshape a tensor of shape \(2, 3\) "
                                         r"\(6 elements\) so that the -1 dimension is whole: the "
                                         r"other dimensions multiply to 4"):
        t.view(4, -1)
    with pytest.raises(ValueError, match=r"Tensor\.reshape: invalid dimension -2 at position 1"):
        t.reshape(3, -2)
    with pytest.raises(TypeError, match=r"Tensor\.reshape: shape entry must be an integer; got "
                                        r"float"):
        t.reshape(2.0, 3)


# --------------------------------------------------- transpose / permute / swapaxes

@SETTINGS
@given(shape=shapes(0, 5, 1, 4), data=st.data())
def test_transpose_permute_swapaxes(shape, data):
    t, a = pair(shape, pf.float32, seed=4)
    nd = len(shape)
    # no argument: reverse (NumPy)
    assert_same(t.transpose(), np.transpose(a))
    assert_same(pf.transpose(t), np.transpose(a))
    # all axes: permute, as a tuple, a list or separate ints, negative allowed
    perm = data.draw(st.permutations(range(nd)), label="perm")
    neg = tuple(p - nd if data.draw(st.booleans()) else p for p in perm)
    e = np.transpose(a, perm)
    for r in (t.transpose(neg), t.transpose(list(neg)), t.permute(*neg), t.permute(neg)):
        assert_same(r, e)
        assert r.strides == e.strides
    if nd != 2:
        assert_same(t.transpose(*neg), e)
    if nd >= 2:
        # two axes: swap them (PyTorch), as swapaxes (NumPy)
        i = data.draw(st.integers(-nd, nd - 1), label="axis1")
        j = data.draw(st.integers(-nd, nd - 1), label="axis2")
        e = np.swapaxes(a, i, j)
        for r in (t.swapaxes(i, j), pf.swapaxes(t, i, j), t.swapdims(i, j)):
            assert_same(r, e)
            assert r.strides == e.strides
        if nd > 2:      # 2-D: see test_transpose_two_axes_2d_swaps_as_torch
            assert_same(t.transpose(i, j), e)
        r = t.permute(*neg)
        assert shares(r, t)
        _assert_writes_through(r[:1], t, np.transpose(a, perm)[:1], a)


def test_transpose_two_axes_2d_swaps_as_torch():
    # For a 2-D tensor two ints could be read as a NumPy permutation or a
    # PyTorch swap.  x.transpose(0, 1) is the PyTorch idiom for the matrix
    # transpose (NumPy's reading, the identity, is never what is meant), so
    # two ints swap; a tuple stays a NumPy permutation.
    torch = pytest.importorskip("torch")
    t, a = pair((2, 3))
    ta = torch.from_numpy(a.copy())
    for i, j in [(0, 1), (1, 0), (-1, 0), (0, 0), (1, 1), (0, -2)]:
        assert_same(t.transpose(i, j), ta.transpose(i, j).numpy())
        assert_same(t.swapaxes(i, j), np.swapaxes(a, i, j))
    assert_same(t.transpose((0, 1)), np.transpose(a, (0, 1)))
    assert_same(t.transpose([1, 0]), np.transpose(a, (1, 0)))


def test_transpose_errors():
    t, _ = pair((2, 3, 4))
    with pytest.raises(ValueError, match=r"Tensor\.transpose: got 1 axes for a tensor with 3 "
                                         r"dimensions"):
        t.transpose(0)
    with pytest.raises(ValueError, match=r"Tensor\.permute: axis 0 appears twice"):
        t.permute(0, 0, 1)
    with pytest.raises(ValueError, match=r"Tensor\.permute: the permutation has 2 axes but the "
                                         r"tensor has 3 dimensions"):
        t.permute(1, 0)
    with pytest.raises(IndexError, match=r"Tensor\.swapaxes: axis 3 is out of range for a tensor "
                                         r"with 3 dimension\(s\)"):
        t.swapaxes(0, 3)


# ------------------------------------------------- squeeze / unsqueeze / expand_dims

@SETTINGS
@given(shape=shapes(0, 5, 1, 3), data=st.data())
def test_squeeze_matches_numpy(shape, data):
    t, a = pair(shape)
    assert_same(t.squeeze(), np.squeeze(a))
    ones = [i for i, s in enumerate(shape) if s == 1]
    if ones:
        axes = tuple(data.draw(st.lists(st.sampled_from(ones), min_size=1, unique=True)))
        e = np.squeeze(a, axis=axes)
        assert_same(t.squeeze(axes), e)
        assert_same(pf.squeeze(t, axes[0]), np.squeeze(a, axes[0]))
        assert_same(t.squeeze(dim=axes[0] - len(shape)), np.squeeze(a, axes[0]))
        r = t.squeeze(axes)
        if r.size:
            assert shares(r, t)
    not_ones = [i for i, s in enumerate(shape) if s != 1]
    if not_ones:
        i = data.draw(st.sampled_from(not_ones))
        with pytest.raises(ValueError, match=rf"Tensor\.squeeze: cannot remove axis {i}: it has "
                                             rf"size {shape[i]}, not 1"):
            t.squeeze(i)


@SETTINGS
@given(shape=shapes(0, 4, 0, 3), data=st.data())
def test_unsqueeze_expand_dims_match_numpy(shape, data):
    t, a = pair(shape)
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    e = np.expand_dims(a, axis)
    for r in (t.unsqueeze(axis), t.expand_dims(axis), pf.unsqueeze(t, axis),
              pf.expand_dims(t, axis)):
        assert_same(r, e)
        assert r.is_contiguous() == t.is_contiguous()
        if r.size:
            assert shares(r, t)
    _assert_writes_through(t.unsqueeze(axis), t, np.expand_dims(a, axis), a)


def test_unsqueeze_errors():
    t, _ = pair((2, 3))
    with pytest.raises(IndexError, match=r"Tensor\.unsqueeze: axis 3 is out of range for a tensor "
                                         r"with 3 dimension\(s\)"):
        t.unsqueeze(3)
    big = pf.zeros((1,) * 8)
    with pytest.raises(ValueError, match=r"Tensor\.expand_dims: the tensor already has the "
                                         r"maximum of 8 dimensions"):
        big.expand_dims(0)


# --------------------------------------------------------- expand / broadcast_to

@SETTINGS
@given(data=st.data())
def test_broadcast_to_and_expand_match_numpy(data):
    shape = data.draw(shapes(0, 3, 1, 3), label="shape")
    lead = data.draw(st.lists(st.integers(0, 3), max_size=2), label="leading")
    target = tuple(lead) + tuple(data.draw(st.sampled_from([1, 3])) if s == 1 else s
                                 for s in shape)
    t, a = pair(shape)
    e = np.broadcast_to(a, target)
    for r in (t.broadcast_to(target), pf.broadcast_to(t, target), t.expand(*target)):
        assert_same(r, e)
        assert r.shape == target
        for n, s_pf, s_np in zip(r.shape, r.strides, e.strides):
            if n > 1:
                assert s_pf == s_np    # 0 on broadcast axes
        if r.size:
            assert shares(r, t)
    # -1 keeps a size (PyTorch expand): the kept axis is not broadcast
    keep = tuple(lead) + tuple(-1 if data.draw(st.booleans()) else s
                               for s in target[len(lead):])
    resolved = tuple(lead) + tuple(s if k == -1 else k
                                   for k, s in zip(keep[len(lead):], shape))
    assert_same(t.expand(*keep), np.broadcast_to(a, resolved))


def test_expand_is_stride_zero_view_and_writes_raise():
    t, a = pair((3, 1))
    e = t.expand(2, -1, 4)
    assert e.shape == (2, 3, 4)
    assert e.strides == (0, 4, 0)
    assert not e.is_contiguous()
    assert shares(e, t)
    t[1, 0] = 5.0           # a write into the base shows through the view
    assert_same(e[:, 1], np.full((2, 4), 5.0))
    with pytest.raises(RuntimeError, match=r"Tensor\.fill_: cannot write into an expanded "
                                           r"\(broadcast\) tensor"):
        e.fill_(1.0)
    with pytest.raises(RuntimeError, match=r"Tensor\.copy_: cannot write into an expanded"):
        e.copy_(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(RuntimeError, match=r"Tensor\.zero_: cannot write into an expanded"):
        t.broadcast_to((3, 2)).zero_()


def test_expand_errors():
    t, _ = pair((3, 1))
    with pytest.raises(ValueError, match=r"Tensor\.expand: cannot broadcast shape \(3, 1\) to "
                                         r"\(4, 4\): dimension 0 has size 3; only a size equal "
                                         r"to the target's \(4\) or 1 broadcasts"):
        t.expand(4, 4)
    with pytest.raises(ValueError, match=r"Tensor\.broadcast_to: cannot broadcast shape \(3, 1\) "
                                         r"to \(3,\): the target has fewer dimensions"):
        t.broadcast_to((3,))
    with pytest.raises(ValueError, match=r"Tensor\.expand: invalid size -1 at position 0"):
        t.expand(-1, 3, 2)
    with pytest.raises(ValueError, match=r"Tensor\.broadcast_to: invalid size -1 at position 1"):
        t.broadcast_to((3, -1))


# ------------------------------------------------------------ flatten / ravel

@pytest.mark.skipif(int(np.__version__.split(".")[0]) < 2, reason="NumPy 2 semantics (copy=, DLPack 1.0, matrix_transpose, unique, ml_dtypes promotion) are the oracle")
@SETTINGS
@given(shape=shapes(0, 4, 1, 4), data=st.data(),
       geom=st.sampled_from(["contiguous", "transposed", "sliced", "flipped", "unsqueezed"]))
def test_flatten_ravel_view_when_possible(shape, data, geom):
    t, a = pair(shape, pf.int32)
    if len(shape) == 0:
        geom = "contiguous"
    tv, av = _apply(t, geom, None), _apply(a, geom, None)
    # ravel: 1-D, a view exactly when NumPy's reshape(-1) can be one
    r = tv.ravel()
    assert_same(r, np.ravel(av))
    assert shares(r, t) == (np_can_view(av, -1) and av.size > 0)
    # flatten(start, end): merge the axes in between (torch semantics)
    nd = max(av.ndim, 1)
    s = data.draw(st.integers(-nd, nd - 1), label="start")
    e = data.draw(st.integers(-nd, nd - 1), label="end")
    s0, e0 = s % nd, e % nd
    if s0 > e0:
        with pytest.raises(ValueError, match=r"Tensor\.flatten: start_dim \(\d\) must not come "
                                             r"after end_dim \(\d\)"):
            tv.flatten(s, e)
        return
    if av.ndim == 0:
        tshape = (1,)
    else:
        tshape = av.shape[:s0] + (math.prod(av.shape[s0:e0 + 1]),) + av.shape[e0 + 1:]
    f = tv.flatten(s, e)
    assert_same(f, np.reshape(av, tshape))
    assert_same(pf.flatten(tv, start_dim=s, end_dim=e), np.reshape(av, tshape))
    assert shares(f, t) == (np_can_view(av, tshape) and av.size > 0)
    assert_same(tv.flatten(), np.reshape(av, -1))
    if np_can_view(av, tshape):
        _assert_writes_through(f, t, np.reshape(av, tshape, copy=False), a)


# ------------------------------------------------- contiguous / clone / copy_

def test_contiguous_returns_self_or_a_copy():
    t, a = pair((3, 4))
    assert t.contiguous() is t
    tt = t.T
    c = tt.contiguous()
    assert c is not tt
    assert c.is_contiguous() and c.strides == np.ascontiguousarray(a.T).strides
    assert_same(c, a.T)
    assert not shares(c, t)
    c.fill_(0)
    assert_same(t, a)


@pytest.mark.parametrize("geom", ["contiguous", "transposed", "reversed", "expanded", "row"])
def test_clone_owns_its_memory(geom):
    t, a = pair((3, 5, 4), pf.float64)
    tv, av = GEOMETRIES[geom](t), GEOMETRIES[geom](a)
    c = tv.clone()
    assert_same(c, av)
    assert c.dtype == tv.dtype and c.is_contiguous()
    assert not shares(c, t)
    c.fill_(123.0)                  # also legal for a clone of an expanded tensor
    assert_same(t, a)


def _cast_safe(shape, src_np, dst_np, seed=0):
    """Values of src_np that every dst_np represents (so casts are well defined)."""
    v = sample_values(shape, np.dtype(np.float64), seed)
    if src_np.kind == "u" or dst_np.kind == "u":
        v = np.abs(v)
    return v.astype(src_np)


@pytest.mark.parametrize("src", NATIVE_DTYPES, ids=NATIVE_IDS)
@pytest.mark.parametrize("dst", NATIVE_DTYPES, ids=NATIVE_IDS)
def test_copy_casts_and_broadcasts_like_copyto(src, dst):
    (src_pf, src_np), (dst_pf, dst_np) = src, dst
    d, da = pair((2, 3, 4), dst_pf, seed=1)
    sv = _cast_safe((3, 1), src_np, dst_np, seed=3)
    s = tensor_of(sv, src_pf)
    r = d.copy_(s)
    assert r is d
    np.copyto(da, sv, casting="unsafe")
    assert_same(d, da, dtype=dst_pf)


def test_copy_from_arrays_lists_and_into_views():
    t, a = pair((4, 5), pf.float32)
    v = sample_values((5,), np.dtype(np.float64), seed=2)
    t[::2].copy_(v)
    a[::2] = v
    t.T[1:3].copy_([[1.5], [2.5]])
    a.T[1:3] = [[1.5], [2.5]]
    assert_same(t, a)
    # overlapping copy: reversed source in the same memory
    t.copy_(t[::-1])
    a[...] = a[::-1].copy()
    assert_same(t, a)


def test_copy_errors():
    t, _ = pair((3,))
    with pytest.raises(ValueError, match=r"Tensor\.copy_: .*\(4,\).*\(3,\)"):
        t.copy_(np.zeros(4))
    with pytest.raises(ValueError, match=r"Tensor\.copy_: cannot broadcast a value of shape "
                                         r"\(2, 3\) into a tensor of shape \(3,\)"):
        t.copy_(np.zeros((2, 3)))


# ------------------------------------------------------------- astype / to

@pytest.mark.parametrize("src", NATIVE_DTYPES, ids=NATIVE_IDS)
@pytest.mark.parametrize("dst", NATIVE_DTYPES, ids=NATIVE_IDS)
def test_astype_and_to_match_numpy(src, dst):
    (src_pf, src_np), (dst_pf, dst_np) = src, dst
    av = _cast_safe((3, 4), src_np, dst_np, seed=5)
    t = tensor_of(av, src_pf)
    e = av.astype(dst_np)
    for r in (t.astype(dst_pf), t.astype(dst_np), t.astype(dst_pf.name), t.to(dst_pf),
              t.to(dtype=dst_pf), t.T.astype(dst_pf).T):
        assert r.dtype == dst_pf
        assert_same(r, e)
    c = t.astype(dst_pf)
    assert c is not t and not shares(c, t)


def test_astype_bfloat16_round_trip():
    t, a = pair((2, 5), pf.float32)
    b = t.astype(pf.bfloat16)
    assert b.dtype == pf.bfloat16
    assert_same(b, a)                       # halves in [-64, 64) are exact in bfloat16
    assert_same(b.astype(pf.float64), a)
    # rounding to nearest-even on the 8-bit mantissa
    x = pf.tensor([1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, 257.0], dtype=pf.float32)
    assert x.astype(pf.bfloat16).tolist() == [1.0, 1.015625, 256.0]


def test_astype_to_copy_flags():
    t, _ = pair((2, 2))
    assert t.astype(pf.float32, copy=False) is t
    c = t.astype(pf.float32)
    assert c is not t and not shares(c, t)
    assert t.to(pf.float32) is t
    assert t.to("cpu") is t
    c = t.to(pf.float32, copy=True)
    assert c is not t and not shares(c, t)
    other = pf.zeros(1, dtype=pf.int16)
    assert t.to(other).dtype == pf.int16
    assert t.to("cpu", pf.float64).dtype == pf.float64


def test_astype_errors():
    t, _ = pair((2,))
    with pytest.raises(TypeError, match=r"Tensor\.astype: .*complex"):
        t.astype("complex64")


# --------------------------------------------------- Python scalars and lists

@pytest.mark.parametrize("pfdtype,npdtype", NATIVE_DTYPES + [(pf.bfloat16, None)],
                         ids=NATIVE_IDS + ["bfloat16"])
def test_item_and_tolist(pfdtype, npdtype):
    t, a = pair((2, 3), pfdtype, seed=3)
    lst = t.tolist()
    assert lst == a.tolist()
    pytype = bool if pfdtype == pf.bool else (float if pfdtype.is_floating_point else int)
    assert all(type(x) is pytype for row in lst for x in row)
    x = t[1, 2].item()
    assert type(x) is pytype and x == a[1, 2].item()
    assert t[1:2, 2:].item() == a[1, 2].item()      # any one-element shape
    assert t[0, 0].tolist() == a[0, 0].item()       # 0-d tolist is a scalar
    assert t.T.tolist() == a.T.tolist()


def test_item_errors():
    t, _ = pair((2, 3))
    with pytest.raises(ValueError, match=r"Tensor\.item: only a tensor with exactly one element "
                                         r"can be converted to a Python scalar; got shape "
                                         r"\(2, 3\)"):
        t.item()
    with pytest.raises(ValueError, match=r"got shape \(0,\)"):
        pf.zeros(0).item()


def test_len_and_iteration_yield_row_views():
    t, a = pair((4, 3, 2), pf.int32)
    assert len(t) == 4 and len(t.T) == 2 and len(t[0]) == 3
    rows = list(t)
    assert len(rows) == 4
    for i, row in enumerate(rows):
        assert isinstance(row, pf.Tensor) and row.shape == (3, 2)
        assert_same(row, a[i])
        assert shares(row, t)
    rows[2].fill_(-5)
    a[2] = -5
    assert_same(t, a)
    # iteration over a transposed view walks its first axis
    cols = [c.tolist() for c in t.T]
    assert cols == [c.tolist() for c in a.T]
    assert list(pf.zeros((0, 3))) == []


def test_len_of_0d_raises():
    with pytest.raises(TypeError, match=r"len\(\) of a 0-d tensor"):
        len(pf.tensor(1.0))
    with pytest.raises(TypeError, match=r"iteration over a 0-d tensor"):
        iter(pf.tensor(1.0)).__next__()


@pytest.mark.parametrize("value,expected", [(0.0, False), (2.5, True), (-1, True), (0, False),
                                            (True, True), (False, False)])
def test_bool_of_one_element(value, expected):
    assert bool(pf.tensor(value)) is expected
    assert bool(pf.tensor([[value]])) is expected


def test_bool_of_many_raises():
    with pytest.raises(ValueError, match=r"bool\(Tensor\): the truth value of a tensor with shape "
                                         r"\(2,\) is ambiguous"):
        bool(pf.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"shape \(0,\) is ambiguous"):
        bool(pf.zeros(0))


# ------------------------------------------------------------------- repr

def test_repr_examples():
    assert repr(pf.tensor([1.5, 2.0])) == "tensor([1.5, 2. ], dtype=float32)"
    assert repr(pf.tensor([[1, 2], [3, 4]])) == ("tensor([[1, 2],\n"
                                                 "        [3, 4]], dtype=int64)")
    assert repr(pf.tensor(3.0)) == "tensor(3., dtype=float32)"
    assert repr(pf.tensor([True, False])) == "tensor([ True, False], dtype=bool)"
    assert repr(pf.tensor([1.5, -2.0], dtype=pf.bfloat16)) == \
        "tensor([ 1.5, -2. ], dtype=bfloat16)"


@pytest.mark.parametrize("pfdtype,npdtype", NATIVE_DTYPES, ids=NATIVE_IDS)
def test_repr_is_numpy_like(pfdtype, npdtype):
    t, a = pair((3, 4), pfdtype)
    for tv, av in ((t, a), (t.T, a.T), (t[::-1, 1], a[::-1, 1])):
        body = np.array2string(av, separator=", ", prefix="tensor(")
        assert repr(tv) == f"tensor({body}, dtype={pfdtype.name})"


def test_repr_summarises_large_tensors():
    r = repr(pf.arange(5000))
    assert "..." in r and r.endswith("dtype=int64)") and len(r) < 200
