"""Matrix products (csrc/linalg.c, csrc/kernels/gemm.c) against NumPy in float64.

Inputs are made in every dtype and then laid out contiguous, transposed (the
last two axes stored the other way round, which BLAS reads through its
transposition flags), strided (every other element of a bigger buffer) or
reversed (negative strides, which force a copy); the oracle is NumPy on the
float64 values the pyframe inputs actually hold.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyframe as pf

SETTINGS = settings(max_examples=40, deadline=None)

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16",
          "float32", "float64"]
FLOATS = ["float16", "bfloat16", "float32", "float64"]
LAYOUTS = ["contig", "transposed", "strided", "reversed"]
# relative error allowed against sum(|a| |b|); integers and bool must be exact
RTOL = {"float64": 1e-10, "float32": 1e-5, "float16": 2e-3, "bfloat16": 1.6e-2}


def make(shape, dtype, rng):
    """A contiguous pyframe tensor of small values that every dtype holds exactly."""
    if dtype == "bool":
        vals = rng.integers(0, 2, shape).astype(np.float64)
    elif dtype == "uint8":
        vals = rng.integers(0, 4, shape).astype(np.float64)
    elif dtype.startswith("int"):
        vals = rng.integers(-3, 4, shape).astype(np.float64)
    else:
        vals = rng.standard_normal(shape)
    return pf.tensor(vals).astype(getattr(pf, dtype))


def relayout(t, layout):
    """The same values as t in another memory layout."""
    nd = t.ndim
    if layout == "transposed" and nd >= 2:
        return t.mT.contiguous().mT
    if layout == "strided" and nd >= 1:
        big = pf.zeros(tuple(2 * s for s in t.shape), dtype=t.dtype)
        view = big[(slice(None, None, 2),) * nd]
        view[...] = t
        return view
    if layout == "reversed" and nd >= 1:
        flip = (slice(None, None, -1),) * nd
        return t[flip].contiguous()[flip]
    return t


def f64(t):
    return np.asarray(t.astype(pf.float64))


def check_product(got, want, mag, dtype, computed_in=None):
    """got (pyframe) against want (float64); mag bounds the rounding error."""
    assert str(got.dtype) == str(dtype)
    g = f64(got)
    assert g.shape == want.shape
    tol = max(RTOL.get(str(dtype), 0), RTOL.get(str(computed_in), 0))
    if str(dtype) == "bool":
        np.testing.assert_array_equal(g != 0, want != 0)
    elif tol:
        assert np.all(np.abs(g - want) <= tol * mag + 1e-300), (g, want)
    else:
        np.testing.assert_array_equal(g, want)


# ---------------------------------------------------------------- matmul

@st.composite
def matmul_cases(draw):
    kind = draw(st.sampled_from(["1,1", "2,1", "1,2", "2,2", "nd,2", "2,nd", "nd,nd", "nd,1",
                                 "1,nd"]))
    m, k, n = (draw(st.integers(0, 5)) for _ in range(3))
    batch = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))

    def batch_of():
        # a suffix of the batch shape, some dimensions broadcast (size 1)
        cut = draw(st.integers(0, len(batch) - 1))
        return tuple(1 if draw(st.booleans()) else s for s in batch[cut:])

    sa = {"1": (k,), "2": (m, k), "nd": batch_of() + (m, k)}[kind.split(",")[0]]
    sb = {"1": (k,), "2": (k, n), "nd": batch_of() + (k, n)}[kind.split(",")[1]]
    da = draw(st.sampled_from(DTYPES))
    db = da if draw(st.booleans()) else draw(st.sampled_from(DTYPES))
    return sa, sb, da, db, draw(st.sampled_from(LAYOUTS)), draw(st.sampled_from(LAYOUTS)), \
        draw(st.sampled_from(["function", "operator", "method"])), draw(st.integers(0, 2**31))


@SETTINGS
@given(matmul_cases())
def test_matmul_matches_numpy(case):
    sa, sb, da, db, la, lb, form, seed = case
    rng = np.random.default_rng(seed)
    a = relayout(make(sa, da, rng), la)
    b = relayout(make(sb, db, rng), lb)
    got = {"function": lambda: pf.matmul(a, b), "operator": lambda: a @ b,
           "method": lambda: a.matmul(b)}[form]()
    a64, b64 = f64(a), f64(b)
    check_product(got, np.matmul(a64, b64), np.matmul(np.abs(a64), np.abs(b64)),
                  pf.promote_types(a.dtype, b.dtype))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("sa,sb", [
    ((7, 33, 65), (65, 17)),            # batch folded into one taller GEMM
    ((6, 40, 50), (6, 50, 30)),         # batch split over threads
    ((3, 1, 20, 30), (4, 30, 10)),      # broadcast batch split over threads
    ((2, 130, 140), (2, 140, 120)),     # fewer products than threads: BLAS threads
    ((150, 160), (160, 170)),
])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_matmul_bigger_shapes_every_path(sa, sb, dtype, threads):
    rng = np.random.default_rng(1)
    old = pf.get_num_threads()
    pf.set_num_threads(threads)
    try:
        for la, lb in [("contig", "contig"), ("transposed", "transposed"), ("strided", "contig")]:
            a = relayout(make(sa, dtype, rng), la)
            b = relayout(make(sb, dtype, rng), lb)
            a64, b64 = f64(a), f64(b)
            check_product(a @ b, a64 @ b64, np.abs(a64) @ np.abs(b64), dtype)
    finally:
        pf.set_num_threads(old)


def allocations(fn):
    before = pf.memory_stats()["cpu"]["alloc_calls"]
    result = fn()
    return pf.memory_stats()["cpu"]["alloc_calls"] - before, result


def test_matmul_transposed_operands_are_not_copied():
    # BLAS reads transposed views and row slices in place (transposition flags,
    # leading dimensions): the only allocation is the result.  A view with
    # neither rows nor columns contiguous is copied once.
    rng = np.random.default_rng(2)
    w = make((784, 128), "float32", rng)
    x = make((64, 784), "float32", rng)
    dy = make((64, 128), "float32", rng)
    for a, b, copies in [(x, w, 0), (dy, w.T, 0), (x.T, dy, 0), (x[::2], w, 0),
                         (w[::2].T, x[:, :392].T, 0), (x[:, :100].T, dy[::-1], 1),
                         (w[::2].T, x[:, ::2].T, 1)]:
        n, got = allocations(lambda: pf.matmul(a, b))
        assert n == 1 + copies, (a.shape, a.strides, b.shape, b.strides)
        check_product(got, f64(a) @ f64(b), np.abs(f64(a)) @ np.abs(f64(b)), "float32")
    q, k = make((2, 3, 4, 5), "float32", rng), make((2, 3, 6, 5), "float32", rng)
    n, got = allocations(lambda: pf.einsum("bhqd,bhkd->bhqk", q, k))
    assert n == 1
    np.testing.assert_allclose(f64(got), np.einsum("bhqd,bhkd->bhqk", f64(q), f64(k)), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_k_zero_gives_zeros(dtype):
    a = pf.zeros((2, 3, 0), dtype=getattr(pf, dtype))
    b = pf.zeros((0, 4), dtype=getattr(pf, dtype))
    got = a @ b
    assert got.shape == (2, 3, 4) and str(got.dtype) == dtype
    assert not f64(got).any()
    assert (pf.zeros(0, dtype=getattr(pf, dtype)) @ pf.zeros(0, dtype=getattr(pf, dtype))
            ).shape == ()
    assert (pf.ones((0, 3)) @ pf.ones((3, 5))).shape == (0, 5)
    assert (pf.ones((2, 0, 4, 3)) @ pf.ones((3, 5))).shape == (2, 0, 4, 5)


def test_matmul_integers_wrap_like_numpy():
    rng = np.random.default_rng(3)
    for dtype in ["int8", "uint8", "int16", "int32", "int64"]:
        info = np.iinfo(dtype)
        a = rng.integers(info.min // 2, info.max // 2, (4, 9), dtype=dtype, endpoint=True)
        b = rng.integers(info.min // 2, info.max // 2, (9, 3), dtype=dtype, endpoint=True)
        got = np.asarray(pf.tensor(a) @ pf.tensor(b))
        np.testing.assert_array_equal(got, np.matmul(a, b))
        assert got.dtype == np.dtype(dtype)


def test_matmul_bool_is_or_of_and():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 2, (5, 40)).astype(bool)
    b = rng.integers(0, 2, (40, 6)).astype(bool)
    a[0] = False
    got = pf.tensor(a) @ pf.tensor(b)
    assert str(got.dtype) == "bool"
    np.testing.assert_array_equal(np.asarray(got), a @ b)


def test_matmul_python_inputs_and_arrays():
    got = pf.matmul([[1.0, 2.0], [3.0, 4.0]], np.array([1.0, 1.0]))
    np.testing.assert_allclose(np.asarray(got), [3.0, 7.0])
    assert str(pf.matmul([[1, 2]], [[3], [4]]).dtype) == "int64"
    np.testing.assert_allclose(np.asarray(np.eye(2) @ pf.ones((2, 2))), np.ones((2, 2)))


@pytest.mark.parametrize("out_layout", ["contig", "transposed", "strided"])
@pytest.mark.parametrize("out_dtype", ["float32", "float64", "float16"])
def test_matmul_out(out_layout, out_dtype):
    rng = np.random.default_rng(5)
    a, b = make((2, 3, 4), "float32", rng), make((4, 5), "float32", rng)
    out = relayout(pf.zeros((2, 3, 5), dtype=getattr(pf, out_dtype)), out_layout)
    r = pf.matmul(a, b, out=out)
    assert r is out
    check_product(out, f64(a) @ f64(b), np.abs(f64(a)) @ np.abs(f64(b)), out_dtype, "float32")
    # a 1-D operand's dropped axis is dropped from out too
    v = make((4,), "float32", rng)
    out1 = pf.zeros((2, 3))
    pf.matmul(a, v, out=out1)
    np.testing.assert_allclose(f64(out1), f64(a) @ f64(v), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sa,sb", [((6, 5), (5, 4)), ((6, 5), (5,)), ((5,), (5, 4)), ((5,), (5,)),
                                   ((3, 6, 5), (5,)), ((6, 5), (5, 1)), ((1, 5), (5, 4)),
                                   ((1, 5), (5, 1))])
def test_matmul_out_full_of_nan_is_overwritten(sa, sb, dtype):
    # BLAS is called with beta = 0: whatever out= held (NaN here) must not leak in;
    # the shapes take the gemm, gemv (both ways round) and dot paths
    rng = np.random.default_rng(13)
    a, b = make(sa, dtype, rng), make(sb, dtype, rng)
    for la, lb in [("contig", "contig"), ("transposed", "transposed"), ("strided", "strided")]:
        x, y = relayout(a, la), relayout(b, lb)
        want = f64(x) @ f64(y)
        out = pf.full(want.shape, float("nan"), dtype=getattr(pf, dtype))
        pf.matmul(x, y, out=out)
        check_product(out, np.asarray(want), np.abs(f64(x)) @ np.abs(f64(y)), dtype)


def test_matmul_out_aliasing_an_input():
    rng = np.random.default_rng(6)
    a = make((4, 4), "float64", rng)
    b = make((4, 4), "float64", rng)
    want = f64(a) @ f64(b)
    pf.matmul(a, b, out=a)
    np.testing.assert_allclose(f64(a), want, rtol=1e-12)
    # out is a shifted view of the same buffer as the input
    buf = make((5, 4), "float64", rng)
    x, y = buf[:4], buf[1:]
    want = f64(x) @ f64(b)
    pf.matmul(x, b, out=y)
    np.testing.assert_allclose(f64(y), want, rtol=1e-12)


def test_imatmul():
    rng = np.random.default_rng(7)
    a = make((3, 4, 4), "float32", rng)
    b = make((4, 4), "float32", rng)
    want = f64(a) @ f64(b)
    ident = id(a)
    a @= b
    assert id(a) == ident
    np.testing.assert_allclose(f64(a), want, rtol=1e-5, atol=1e-5)
    x = make((4, 4), "float64", rng)
    want = f64(x) @ f64(x)
    x @= x
    np.testing.assert_allclose(f64(x), want, rtol=1e-12)
    i = pf.ones((2, 2), dtype=pf.int32)
    i @= [[1, 2], [3, 4]]
    np.testing.assert_array_equal(np.asarray(i), [[4, 6], [4, 6]])
    assert str(i.dtype) == "int32"
    with pytest.raises(ValueError, match=r"matmul: the output has shape \(2, 2\) but the result "
                                         r"has shape \(2, 3\)"):
        y = pf.ones((2, 2))
        y @= pf.ones((2, 3))
    with pytest.raises(TypeError, match=r"matmul: the result has dtype float32, which cannot be "
                                        r"stored in the int64 output"):
        z = pf.ones((2, 2), dtype=pf.int64)
        z @= pf.ones((2, 2))


def test_matmul_operator_refuses_non_tensors():
    t = pf.ones((2, 2))
    with pytest.raises(TypeError, match="unsupported operand"):
        t @ "ab"
    with pytest.raises(TypeError, match="unsupported operand"):
        {} @ t


def test_mm_and_bmm():
    rng = np.random.default_rng(8)
    a, b = make((3, 4), "float64", rng), make((4, 2), "float64", rng)
    np.testing.assert_allclose(f64(pf.mm(a, b)), f64(a) @ f64(b), rtol=1e-12)
    np.testing.assert_allclose(f64(a.mm(b)), f64(a) @ f64(b), rtol=1e-12)
    x, y = make((5, 3, 4), "float32", rng), make((5, 4, 2), "float32", rng)
    np.testing.assert_allclose(f64(pf.bmm(x, y)), f64(x) @ f64(y), rtol=1e-5, atol=1e-5)
    out = pf.empty((5, 3, 2))
    assert pf.bmm(x, y, out=out) is out
    with pytest.raises(ValueError, match=r"mm: expected two 2-D tensors; got shapes \(3,\) and "
                                         r"\(3, 4\)"):
        pf.mm(pf.ones(3), pf.ones((3, 4)))
    with pytest.raises(ValueError, match=r"bmm: the batch sizes differ: shapes \(2, 3, 4\) and "
                                         r"\(1, 4, 2\)"):
        pf.bmm(pf.ones((2, 3, 4)), pf.ones((1, 4, 2)))
    with pytest.raises(ValueError, match=r"bmm: expected two 3-D tensors"):
        pf.bmm(pf.ones((3, 4)), pf.ones((4, 2)))
    with pytest.raises(ValueError, match=r"mm: shapes \(3, 4\) and \(3, 4\) are not aligned"):
        pf.mm(pf.ones((3, 4)), pf.ones((3, 4)))


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: pf.matmul(pf.ones((2, 3)), pf.ones((4, 5))), ValueError,
     r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned: dimension 1 of a \(3\) != "
     r"dimension 0 of b \(4\); the last dimension of a must equal the second-to-last"),
    (lambda: pf.matmul(pf.ones(3), pf.ones(4)), ValueError,
     r"matmul: shapes \(3,\) and \(4,\) are not aligned: dimension 0 of a \(3\) != dimension 0 "
     r"of b \(4\)"),
    (lambda: pf.ones((2, 2, 3)) @ pf.ones((3, 3, 5)), ValueError,
     r"matmul: the batch dimensions of shapes \(2, 2, 3\) and \(3, 3, 5\) cannot be broadcast "
     r"together \(2 vs 3\)"),
    (lambda: pf.matmul(pf.ones(3), 2.0), ValueError,
     r"matmul: operand b is 0-d \(shapes \(3,\) and \(\)\).*use multiply"),
    (lambda: pf.ones((2, 2)) @ pf.tensor(1.0), ValueError, r"matmul: operand b is 0-d"),
    (lambda: pf.matmul(pf.ones((2, 3)), pf.ones((3, 3)), out=pf.ones((2, 2))), ValueError,
     r"matmul: the output has shape \(2, 2\) but the result has shape \(2, 3\)"),
    (lambda: pf.matmul(pf.ones((2, 3)), pf.ones((3, 3)), out=np.ones((2, 3))), TypeError,
     r"matmul: out must be a pyframe Tensor; got numpy.ndarray"),
    (lambda: pf.matmul(pf.ones((2, 3)), pf.ones((3, 3)), out=pf.ones((2, 3), dtype=pf.int32)),
     TypeError, r"matmul: the result has dtype float32, which cannot be stored in the int32"),
    (lambda: pf.matmul(pf.ones(3)), TypeError, r"matmul: missing required argument 'b'"),
    (lambda: pf.matmul(pf.ones((2, 3)), pf.ones((3, 3)), out=pf.ones((3,)).expand(2, 3)),
     RuntimeError, r"matmul: cannot write into an expanded"),
])
def test_matmul_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


# ------------------------------------------------------------------- dot

@SETTINGS
@given(st.integers(0, 3), st.integers(0, 3), st.sampled_from(DTYPES), st.sampled_from(LAYOUTS),
       st.sampled_from(LAYOUTS), st.integers(0, 2**31))
def test_dot_matches_numpy(na, nb, dtype, la, lb, seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(0, 4))
    sa = tuple(int(s) for s in rng.integers(1, 4, na))
    sb = tuple(int(s) for s in rng.integers(1, 4, nb))
    if na >= 1:
        sa = sa[:-1] + (k,)
    if nb >= 2:
        sb = sb[:-2] + (k,) + sb[-1:]
    elif nb == 1:
        sb = (k,)
    a = relayout(make(sa, dtype, rng), la)
    b = relayout(make(sb, dtype, rng), lb)
    a64, b64 = f64(a), f64(b)
    got = pf.dot(a, b) if seed % 2 else a.dot(b)
    check_product(got, np.asarray(np.dot(a64, b64)), np.asarray(np.dot(np.abs(a64), np.abs(b64))),
                  dtype)


def test_dot_bad_input():
    with pytest.raises(ValueError, match=r"dot: shapes \(2, 3\) and \(4, 5\) are not aligned: "
                                         r"dimension 1 of a \(3\) != dimension 0 of b \(4\)"):
        pf.dot(pf.ones((2, 3)), pf.ones((4, 5)))
    with pytest.raises(ValueError, match=r"dot: shapes \(2, 3\) and \(2, 4, 5\) are not aligned: "
                                         r"dimension 1 of a \(3\) != dimension 1 of b \(4\)"):
        pf.dot(pf.ones((2, 3)), pf.ones((2, 4, 5)))


# ----------------------------------------------------------------- outer

@pytest.mark.parametrize("dtype", DTYPES)
def test_outer_matches_numpy(dtype):
    rng = np.random.default_rng(9)
    for sa, sb in [((4,), (3,)), ((2, 3), (5,)), ((0,), (3,)), ((), (2, 2))]:
        for la in LAYOUTS:
            a = relayout(make(sa, dtype, rng), la)
            b = relayout(make(sb, dtype, rng), "reversed")
            got = pf.outer(a, b) if la != "strided" else a.outer(b)
            want = np.outer(f64(a), f64(b))
            check_product(got, want, np.abs(want), pf.promote_types(a.dtype, b.dtype))


# ------------------------------------------------------------- tensordot

@pytest.mark.parametrize("sa,sb,axes", [
    ((2, 3, 4), (3, 4, 5), 2),
    ((2, 3, 4), (4, 5), 1),
    ((2, 3), (4, 5), 0),
    ((2, 3, 4), (4, 3, 5), ([1, 2], [1, 0])),
    ((3, 4, 2), (4, 3), ((0, 1), (1, 0))),
    ((2, 3, 4), (5, 3), (1, 1)),
    ((2, 3, 4), (5, 3), ([-2], [-1])),
    ((2, 0, 3), (0, 3, 4), ([1, 2], [0, 1])),
    ((3, 3), (3, 3), 2),
])
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "bfloat16"])
def test_tensordot_matches_numpy(sa, sb, axes, dtype):
    rng = np.random.default_rng(10)
    for la, lb in [("contig", "contig"), ("transposed", "reversed"), ("strided", "transposed")]:
        a = relayout(make(sa, dtype, rng), la)
        b = relayout(make(sb, dtype, rng), lb)
        a64, b64 = f64(a), f64(b)
        got = pf.tensordot(a, b, axes) if la != "strided" else pf.tensordot(a, b, dims=axes)
        check_product(got, np.tensordot(a64, b64, axes),
                      np.tensordot(np.abs(a64), np.abs(b64), axes), dtype)


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: pf.tensordot(pf.ones((2, 3)), pf.ones((4, 5)), 1), ValueError,
     r"tensordot: shapes \(2, 3\) and \(4, 5\) are not aligned: dimension 1 of a \(3\) != "
     r"dimension 0 of b \(4\)"),
    (lambda: pf.tensordot(pf.ones((2, 3)), pf.ones((3,)), 3), ValueError,
     r"tensordot: axes=3 but a has 2 and b 1 dimensions"),
    (lambda: pf.tensordot(pf.ones((2, 3)), pf.ones((3, 2)), ([0, 1], [0])), ValueError,
     r"tensordot: 2 axes of a but 1 of b given"),
    (lambda: pf.tensordot(pf.ones((2, 3)), pf.ones((3, 2)), ([5], [0])), IndexError,
     r"tensordot: axis 5 is out of range for a tensor with 2 dimension"),
    (lambda: pf.tensordot(pf.ones((2, 3)), pf.ones((3, 2)), ([0, 0], [0, 1])), ValueError,
     r"tensordot: axis 0 is given more than once"),
    (lambda: pf.tensordot(pf.ones((2, 3)), pf.ones((3, 2)), "x"), TypeError,
     r"tensordot: axes must be an int or a pair"),
    (lambda: pf.tensordot(pf.ones((2, 3)), pf.ones((3, 2)), 1.5), TypeError,
     r"tensordot: axes must be an int or a pair"),
    (lambda: pf.tensordot(pf.ones((2,) * 5), pf.ones((2,) * 5), 0), ValueError,
     r"tensordot: the result of shapes \(2, 2, 2, 2, 2\) and \(2, 2, 2, 2, 2\) would have 10 "
     r"dimensions"),
    (lambda: pf.tensordot(pf.ones(2), pf.ones(2), axes=1, dims=1), TypeError,
     r"tensordot: give axes or dims, not both"),
])
def test_tensordot_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


# ---------------------------------------------------------------- einsum

EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("ij,kj->ik", [(3, 4), (5, 4)]),
    ("ji,jk->ik", [(4, 3), (4, 5)]),
    ("ij,jk->ki", [(3, 4), (4, 5)]),
    ("ij->ji", [(3, 4)]),
    ("ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ij->j", [(3, 4)]),
    ("ijk->j", [(2, 3, 4)]),
    ("ijk->ki", [(2, 3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("iij->j", [(3, 3, 2)]),
    ("iji->ij", [(3, 2, 3)]),
    ("i,i", [(5,), (5,)]),
    ("i,i->i", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,j", [(3,), (4,)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bij,bkj->bki", [(2, 3, 4), (2, 5, 4)]),
    ("bij,jk->bik", [(2, 3, 4), (4, 5)]),
    ("ijb,jkb->ikb", [(3, 4, 2), (4, 5, 2)]),
    ("abc,cd->adb", [(2, 3, 4), (4, 5)]),
    ("abcd,dcbe->ae", [(2, 3, 4, 2), (2, 4, 3, 5)]),
    ("ab,ab->ab", [(3, 4), (3, 4)]),
    ("ab,ab->", [(3, 4), (3, 4)]),
    ("ab,ab->ba", [(3, 4), (3, 4)]),
    ("ij,ij->ij", [(1, 4), (3, 4)]),
    ("ij,j->i", [(3, 1), (4,)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ij,jk,kl", [(2, 3), (3, 4), (4, 5)]),
    ("i,i,i->", [(4,), (4,), (4,)]),
    ("a,b,c->abc", [(2,), (3,), (4,)]),
    ("ij,ij,ij->i", [(2, 3), (2, 3), (2, 3)]),
    ("ijk,ikl->jl", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk", [(2, 1, 3, 4), (5, 4, 2)]),
    ("...ij,jk->...ik", [(2, 3, 4), (4, 5)]),
    ("i...->...", [(2, 3, 4)]),
    ("...i,...i->...", [(3, 4), (2, 1, 4)]),
    ("ij...,jk...->ik...", [(2, 3, 5), (3, 4, 5)]),
    ("...", [(2, 3)]),
    ("...->...", [(2, 3)]),
    (" i j -> j i ", [(2, 3)]),
    ("Ab,bC->AC", [(2, 3), (3, 4)]),
    ("bA", [(2, 3)]),
    ("i,->i", [(3,), ()]),
    (",->", [(), ()]),
    ("ij,jk->ik", [(0, 4), (4, 5)]),
    ("ij,jk->ik", [(3, 0), (0, 5)]),
    ("ij,jk->", [(3, 0), (0, 5)]),
    ("abcdefg,gfedcba->", [(1, 2, 1, 2, 1, 2, 1), (1, 2, 1, 2, 1, 2, 1)]),
]


@pytest.mark.parametrize("sub,shapes", EINSUM_CASES)
def test_einsum_matches_numpy(sub, shapes):
    rng = np.random.default_rng(11)
    ops = [make(s, "float64", rng) for s in shapes]
    arrs = [f64(t) for t in ops]
    got = pf.einsum(sub, *ops)
    want = np.einsum(sub, *arrs)
    np.testing.assert_allclose(f64(got), want, rtol=1e-12, atol=1e-12)
    assert got.shape == np.shape(want)


@SETTINGS
@given(st.sampled_from(EINSUM_CASES), st.sampled_from(DTYPES), st.lists(
    st.sampled_from(LAYOUTS), min_size=3, max_size=3), st.booleans(), st.integers(0, 2**31))
def test_einsum_dtypes_and_layouts(case, dtype, layouts, as_list, seed):
    sub, shapes = case
    rng = np.random.default_rng(seed)
    ops = [relayout(make(s, dtype, rng), la) for s, la in zip(shapes, layouts)]
    arrs = [f64(t) for t in ops]
    got = pf.einsum(sub, ops) if as_list else pf.einsum(sub, *ops)
    want = np.asarray(np.einsum(sub, *arrs))
    mag = np.asarray(np.einsum(sub, *[np.abs(x) for x in arrs]))
    check_product(got, want, mag, dtype)


def test_einsum_mixed_dtypes_promote():
    rng = np.random.default_rng(12)
    a = make((3, 4), "int8", rng)
    b = make((4, 2), "float16", rng)
    c = make((2,), "float32", rng)
    got = pf.einsum("ij,jk,k->i", a, b, c)
    assert str(got.dtype) == "float32"
    want = np.einsum("ij,jk,k->i", f64(a), f64(b), f64(c))
    np.testing.assert_allclose(f64(got), want, rtol=1e-5, atol=1e-5)
    assert str(pf.einsum("ij->i", make((2, 3), "int8", rng)).dtype) == "int8"
    assert str(pf.einsum("ij,jk", make((2, 3), "bool", rng), make((3, 2), "bool", rng)).dtype) \
        == "bool"


def test_einsum_transpose_and_diagonal_are_views():
    # as NumPy and PyTorch: a pure permutation or diagonal shares the input's memory
    t = pf.arange(9.0).reshape(3, 3)
    tr = pf.einsum("ij->ji", t)
    d = pf.einsum("ii->i", t)
    t[0, 1] = 100.0
    t[2, 2] = -1.0
    assert tr[1, 0].item() == 100.0
    assert d[2].item() == -1.0
    # a reduction is a new tensor
    s = pf.einsum("ij->i", t)
    t[0, 0] = 50.0
    assert s[0].item() == 102.0    # 0 + 100 + 2, before the write


def test_einsum_integer_wraps_like_numpy():
    a = np.array([[100, 100], [-128, 127]], dtype=np.int8)
    b = np.array([[3, 1], [2, 5]], dtype=np.int8)
    np.testing.assert_array_equal(np.asarray(pf.einsum("ij,jk->ik", pf.tensor(a), pf.tensor(b))),
                                  np.einsum("ij,jk->ik", a, b))


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: pf.einsum("ij,jk->ik", pf.ones((2, 3))), ValueError,
     r"einsum: subscripts 'ij,jk->ik' name 2 operand\(s\) but 1 were given"),
    (lambda: pf.einsum("ij", pf.ones((2, 3)), pf.ones(3)), ValueError,
     r"einsum: subscripts 'ij' name 1 operand\(s\) but 2 were given"),
    (lambda: pf.einsum("i1", pf.ones((2, 3))), ValueError,
     r"einsum: invalid character '1' in subscripts 'i1'; subscripts are letters"),
    (lambda: pf.einsum("i.j", pf.ones((2, 3))), ValueError,
     r"einsum: subscripts 'i.j' have a '.' that is not part of one ellipsis"),
    (lambda: pf.einsum("i->k", pf.ones(3)), ValueError,
     r"einsum: output subscript 'k' of 'i->k' appears in no input"),
    (lambda: pf.einsum("ij->ii", pf.ones((2, 3))), ValueError,
     r"einsum: output subscript 'i' appears more than once in 'ij->ii'"),
    (lambda: pf.einsum("...i->i", pf.ones((2, 3))), ValueError,
     r"einsum: the operands have dimensions under '...' but the output subscripts of '...i->i' "
     r"have no '...'"),
    (lambda: pf.einsum("i,i", pf.ones(3), pf.ones(4)), ValueError,
     r"einsum: subscript 'i' has size 3 in operand 0 but 4 in operand 1"),
    (lambda: pf.einsum("...,...", pf.ones((2, 3)), pf.ones((4, 3))), ValueError,
     r"einsum: the dimensions under '...' of operands 0 \(shape \(2, 3\)\) and 1 \(shape \(4, 3\)\) "
     r"cannot be broadcast together \(2 vs 4\)"),
    (lambda: pf.einsum("ii->i", pf.ones((2, 3))), ValueError,
     r"einsum: subscript 'i' is repeated in operand 0 \(a diagonal\), but the dimensions it names "
     r"differ in size \(2 != 3\)"),
    (lambda: pf.einsum("ijk", pf.ones((2, 3))), ValueError,
     r"einsum: operand 0 has shape \(2, 3\) \(2 dimensions\) but its subscripts name 3"),
    (lambda: pf.einsum("i", pf.ones((2, 3))), ValueError,
     r"einsum: operand 0 has shape \(2, 3\) \(2 dimensions\) but its subscripts name 1; give one "
     r"letter per dimension, or '...' for the others"),
    (lambda: pf.einsum(pf.ones(3), "i"), TypeError,
     r"einsum: the first argument must be the subscripts string"),
    (lambda: pf.einsum("i"), ValueError, r"einsum: no operands given"),
    (lambda: pf.einsum("i->i->i", pf.ones(3)), ValueError,
     r"einsum: subscripts 'i->i->i' have a '-' that does not start the one '->'"),
    (lambda: pf.einsum("i->i,i", pf.ones(3)), ValueError,
     r"einsum: subscripts 'i->i,i' have a ',' after '->'"),
    (lambda: pf.einsum("ijklmnopq", pf.ones(3)), ValueError,
     r"einsum: a term of subscripts 'ijklmnopq' names more than 8 dimensions"),
    (lambda: pf.einsum("i", pf.ones(3), optimize=True), TypeError,
     r"einsum: unexpected keyword argument 'optimize'"),
    (lambda: pf.einsum("abcde,fghij->abcdefghij", pf.ones((1,) * 5), pf.ones((1,) * 5)),
     ValueError, r"einsum: a term of subscripts 'abcde,fghij->abcdefghij' names more than 8 "
     r"dimensions"),
    (lambda: pf.einsum("...ab,...cd->...abcd", pf.ones((1,) * 7), pf.ones((1,) * 7)), ValueError,
     r"einsum: the output of '...ab,...cd->...abcd' would have 9 dimensions, more than the 8"),
    (lambda: pf.einsum("abcde,fghij,abcde,fghij->", *[pf.ones((2,) * 5)] * 4), ValueError,
     r"einsum: an intermediate result would have 10 dimensions, more than the 8"),
    (lambda: pf.einsum("ij", "x"), TypeError, r"einsum: cannot make a tensor from str"),
])
def test_einsum_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


# ------------------------------------------------------------- op table rows

def test_linalg_rows_bad_inputs_raise_as_declared():
    from op_rows.linalg import ROWS
    import re
    for name, row in ROWS.items():
        assert row["bad"], name
        for call, exc, pattern in row["bad"]:
            with pytest.raises(exc) as info:
                call()
            assert re.search(pattern, str(info.value)), (name, str(info.value))
            assert str(info.value).startswith(name) or name in str(info.value), name
