"""Elementwise semantics the op-table sweep (test_op_table.py) does not pin
down: weak Python scalars, integer corner cases, Python-style division,
NaN rules, out= and in-place rules, overlapping writes, operators and
their reflected forms, parameters of the activation functions, and the
thread split.  Oracles: NumPy in float64, Python's own arithmetic, torch
where it is the reference for an op NumPy lacks.
"""
import math

import numpy as np
import pytest

import pyframe as pf
from helpers_core import np_dtype

try:
    import torch
except ImportError:
    torch = None

INTS = ("uint8", "int8", "int16", "int32", "int64")
SIGNED = ("int8", "int16", "int32", "int64")
FLOATS = ("float16", "bfloat16", "float32", "float64")


def arr(t):
    """A tensor's values as a float64 (floats) or int64/bool ndarray."""
    a = np.asarray(t)
    return a.astype(np.float64) if t.dtype.is_floating_point else a


# ------------------------------------------------------------ weak scalars

def test_weak_python_scalars_nep50():
    i8 = pf.tensor([1, -2, 127], dtype=pf.int8)
    r = i8 + 1
    assert r.dtype == pf.int8 and r.tolist() == [2, -1, -128]     # stays int8, wraps
    assert (1 + i8).dtype == pf.int8 and (i8 * True).dtype == pf.int8
    with pytest.raises(ValueError, match=r"^add: Python integer 300 is out of range for "
                                         r"dtype uint8"):
        pf.tensor([1], dtype=pf.uint8) + 300
    with pytest.raises(ValueError, match=r"^multiply: Python integer -1 is out of range"):
        pf.multiply(-1, pf.tensor([1], dtype=pf.uint8))
    h = pf.tensor([1.5, 2.0], dtype=pf.float16) + 1.0
    assert h.dtype == pf.float16 and h.tolist() == [2.5, 3.0]
    assert (pf.tensor([1.0], dtype=pf.bfloat16) * 3).dtype == pf.bfloat16
    f = pf.tensor([1, 2, 3]) * 2.5
    assert f.dtype == pf.float32 and f.tolist() == [2.5, 5.0, 7.5]
    assert (pf.tensor([1], dtype=pf.int8) / 2).dtype == pf.float32
    b = pf.tensor([True, False])
    assert (b + 1).dtype == pf.int64 and (b + 1).tolist() == [2, 1]
    assert (b * 1.5).dtype == pf.float32
    assert (b + True).dtype == pf.bool
    # a float too big for float16 becomes inf in float16, as NumPy 2 does
    assert (pf.zeros(1, dtype=pf.float16) + 1e6).tolist() == [math.inf]
    # NumPy scalars and 0-d tensors are strong (NumPy 2; PyTorch would keep int8)
    assert (pf.tensor([1], dtype=pf.int8) + np.int64(1)).dtype == pf.int64
    assert (pf.tensor([1], dtype=pf.int8) + pf.tensor(1)).dtype == pf.int64
    assert (pf.ones(2, dtype=pf.float16) + np.float64(1)).dtype == pf.float64
    # both operands scalars: the kinds' defaults
    assert pf.add(1, 2).dtype == pf.int64 and pf.add(1, 2.0).dtype == pf.float32
    assert pf.add(1, 2).shape == ()


@pytest.mark.skipif(torch is None, reason="torch is the second oracle")
@pytest.mark.parametrize("name", ["bool"] + list(INTS) + list(FLOATS))
def test_weak_scalar_result_dtypes_agree_with_torch(name):
    t = pf.ones(2, dtype=name)
    tt = torch.ones(2, dtype=getattr(torch, name))
    for s in (True, 3, 2.5):
        for f, g in ((lambda a, b: a + b, lambda a, b: a + b),
                     (lambda a, b: b * a, lambda a, b: b * a),
                     (lambda a, b: a > b, lambda a, b: a > b)):
            want = str(g(tt, s).dtype).split(".")[1]
            assert f(t, s).dtype.name == want, (name, s)


# ------------------------------------------------------------ integer corners

@pytest.mark.parametrize("name", INTS)
def test_integer_division_by_zero_and_overflow_never_trap(name):
    info = np.iinfo(name)
    vals = np.array([info.min, -7 if info.min else 3, -1 if info.min else 2, 0, 1, 7, info.max],
                    dtype=name)
    x = pf.tensor(vals)
    zero = pf.zeros(7, dtype=name)
    assert (x // 0).tolist() == [0] * 7
    assert (x % 0).tolist() == [0] * 7
    assert pf.floor_divide(x, zero).tolist() == [0] * 7
    assert pf.remainder(x, zero).tolist() == [0] * 7
    with np.errstate(all="ignore"):
        assert (x // zero).tolist() == (vals // np.zeros(7, name)).tolist()
        assert (x % zero).tolist() == (vals % np.zeros(7, name)).tolist()
    if name in SIGNED:
        m = pf.tensor([info.min], dtype=name)
        assert (m // -1).tolist() == [info.min]          # wraps, as NumPy
        assert (m % -1).tolist() == [0]
        assert (m * -1).tolist() == [info.min]
        assert (-m).tolist() == [info.min] and abs(m).tolist() == [info.min]
    # the same through the thread split and the strided loops
    big = pf.tensor(np.resize(vals, 70001))
    np.testing.assert_array_equal(np.asarray(big[::3] // 0), 0)
    np.testing.assert_array_equal(np.asarray(big[::-3] % 0), 0)


def test_floor_divide_and_remainder_signs_follow_python():
    ints = [-7, -6, -3, -1, 0, 1, 3, 6, 7]
    pairs = [(a, b) for a in ints for b in ints if b != 0]
    a = pf.tensor([p[0] for p in pairs])
    b = pf.tensor([p[1] for p in pairs])
    assert (a // b).tolist() == [x // y for x, y in pairs]
    assert (a % b).tolist() == [x % y for x, y in pairs]
    # NumPy's floor_divide / remainder agree; C's truncation (np.fmod) does not
    an, bn = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    assert (a % b).tolist() == np.remainder(an, bn).tolist()
    assert (a % b).tolist() != np.fmod(an, bn).tolist()
    # floats: the result takes the divisor's sign, zeros included
    fl = [(-7.5, 2.0), (7.5, -2.0), (-7.5, -2.0), (5.0, -5.0), (-5.0, 5.0), (0.0, -3.0),
          (-0.0, 3.0), (1.0, math.inf), (-1.0, math.inf), (1.0, -math.inf), (1e300, 1e-300)]
    for dtype in ("float32", "float64"):
        fa = pf.tensor([p[0] for p in fl], dtype=dtype)
        fb = pf.tensor([p[1] for p in fl], dtype=dtype)
        with np.errstate(all="ignore"):
            na = np.array([p[0] for p in fl], dtype=dtype)
            nb = np.array([p[1] for p in fl], dtype=dtype)
            want_r, want_q = np.remainder(na, nb), np.floor_divide(na, nb)
        got_r, got_q = np.asarray(fa % fb), np.asarray(fa // fb)
        np.testing.assert_array_equal(got_r, want_r)
        np.testing.assert_array_equal(got_q, want_q)
        assert (np.signbit(got_r) == np.signbit(want_r)).all(), dtype
        for (x, y), r in zip(fl[:7], got_r[:7].tolist()):
            assert r == x % y and math.copysign(1, r) == math.copysign(1, x % y)


def test_integer_power():
    base = pf.tensor([2, 1, -1, -1, 0, -2, 3])
    exp = pf.tensor([-1, -5, -3, -2, -1, -2, 0])
    # the truncated value of a ** b: 0 unless |a| == 1 (PyTorch's rule; NumPy raises)
    assert (base ** exp).tolist() == [0, 1, -1, 1, 0, 0, 1]
    if torch is not None:
        tb = torch.tensor(base.tolist())
        assert (base ** exp).tolist() == (tb ** torch.tensor(exp.tolist())).tolist()
    assert (pf.tensor([2, 1, -1]) ** -1).tolist() == [0, 1, -1]
    # wrapping like NumPy
    assert (pf.tensor([3], dtype=pf.uint8) ** 200).tolist() == \
        (np.array([3], np.uint8) ** np.uint8(200)).tolist()
    assert (pf.tensor([3]) ** 41).tolist() == (np.array([3]) ** 41).tolist()
    assert (pf.tensor([0, 5]) ** 0).tolist() == [1, 1]
    # a float exponent makes it float32
    r = pf.tensor([4, 9]) ** 0.5
    assert r.dtype == pf.float32 and r.tolist() == [2.0, 3.0]
    assert (2 ** pf.tensor([0, 3, 10])).tolist() == [1, 8, 1024]
    with pytest.raises(TypeError, match=r"^power: not supported for dtypes bool, bool"):
        pf.tensor([True]) ** pf.tensor([True])
    with pytest.raises(TypeError, match=r"^power: the three-argument form"):
        pow(pf.tensor([2]), 2, 5)


@pytest.mark.parametrize("dtype", FLOATS)
def test_maximum_minimum_propagate_nan(dtype):
    nan = math.nan
    a = pf.tensor([1.0, nan, nan, 2.0, -0.5], dtype=dtype)
    b = pf.tensor([nan, 1.0, nan, 3.0, -1.0], dtype=dtype)
    for f, nf in ((pf.maximum, np.maximum), (pf.minimum, np.minimum)):
        for x, y in ((a, b), (b, a)):
            got = arr(f(x, y))
            want = nf(arr(x), arr(y))
            np.testing.assert_array_equal(got, want)
            assert np.isnan(got[:3]).all()
    # with a scalar NaN, and clip, which is built on the same rule
    assert np.isnan(arr(pf.maximum(pf.ones(3, dtype=dtype), nan))).all()
    assert np.isnan(arr(pf.clip(pf.tensor([1.0, nan], dtype=dtype), 0, 2))[1])


# ------------------------------------------------------------ out= and in-place

def test_out_must_have_the_broadcast_shape():
    a, b = pf.ones((2, 3)), pf.ones(3)
    for bad in ((3,), (1, 3), (2, 3, 1), ()):
        with pytest.raises(ValueError, match=r"^add: the output has shape .* but the inputs "
                                             r"broadcast to \(2, 3\)"):
            pf.add(a, b, out=pf.zeros(bad))
    with pytest.raises(ValueError, match=r"^add: the output has shape \(3,\) but the inputs "
                                         r"broadcast to \(2, 3\)"):
        b.add_(a)
    o = pf.zeros((2, 3))
    assert pf.add(a, b, out=o) is o and o.tolist() == [[2.0] * 3] * 2
    a.add_(b)
    assert a.tolist() == [[2.0] * 3] * 2


def test_out_dtype_rules():
    f, i = pf.ones(3), pf.ones(3, dtype=pf.int32)
    with pytest.raises(TypeError, match=r"^add: the result has dtype float32, which cannot be "
                                        r"stored in the int64 output"):
        pf.add(f, f, out=pf.zeros(3, dtype=pf.int64))
    with pytest.raises(TypeError, match=r"^divide: the result has dtype float32, which cannot "
                                        r"be stored in the int32 output"):
        i /= 2
    with pytest.raises(TypeError, match=r"^exp: the result has dtype float32.*int32 output"):
        i.exp_()
    with pytest.raises(TypeError, match=r"^add: the result has dtype int32.*bool output"):
        pf.add(i, i, out=pf.zeros(3, dtype=pf.bool))
    # same kind or a higher one is fine, and the values are cast
    o = pf.zeros(3, dtype=pf.int8)
    pf.add(pf.tensor([100, 200, 300], dtype=pf.int32), 0, out=o)
    assert o.tolist() == np.array([100, 200, 300], np.int32).astype(np.int8).tolist()
    of = pf.zeros(3, dtype=pf.float64)
    pf.multiply(i, 3, out=of)
    assert of.tolist() == [3.0, 3.0, 3.0]
    # comparisons write bool outputs, or any other dtype as 0 / 1
    ob = pf.zeros(3, dtype=pf.bool)
    assert pf.less(pf.tensor([1, 5, 3]), 4, out=ob) is ob and ob.tolist() == [True, False, True]
    of32 = pf.zeros(3)
    pf.greater(pf.tensor([1, 5, 3]), 2, out=of32)
    assert of32.tolist() == [0.0, 1.0, 1.0]
    with pytest.raises(TypeError, match=r"^add: out must be a pyframe Tensor; got numpy.ndarray"):
        pf.add(f, f, out=np.zeros(3, np.float32))


def test_out_of_another_dtype_gets_the_result_rounded_to_its_dtype():
    # float16 results are computed in float32, but out= must hold what
    # assigning the float16 result would: the same as NumPy and PyTorch
    a = pf.tensor([60000.0, 1.0], dtype=pf.float16)
    for dtype in (pf.float32, pf.float64, pf.bfloat16):
        o = pf.zeros(2, dtype=dtype)
        pf.add(a, pf.tensor([60000.0, 1e-4], dtype=pf.float16), out=o)
        assert o.tolist() == [math.inf, 1.0], dtype
        with np.errstate(over="ignore"):
            want = np.add(np.array([60000.0, 1.0], np.float16),
                          np.array([60000.0, 1e-4], np.float16), dtype=np.float16)
        assert o.tolist() == want.astype(np.float64).tolist()
    b = pf.tensor([1.0, 3.0], dtype=pf.bfloat16)
    o = pf.zeros(2, dtype=pf.float64)
    pf.divide(b, 3, out=o)
    assert o.tolist() == (b / 3).tolist() == [float(pf.tensor(1 / 3, dtype=pf.bfloat16)), 1.0]


def test_out_and_in_place_on_views_write_through():
    base = pf.zeros((4, 6))
    view = base[::2, ::-3]                        # (2, 2), strided, negative step
    pf.add(pf.ones((2, 2)), pf.tensor([1.0, 2.0]), out=view)
    want = np.zeros((4, 6))
    want[::2, ::-3] = np.ones((2, 2)) + np.array([1.0, 2.0])
    np.testing.assert_array_equal(np.asarray(base), want)
    t = base.T
    t.mul_(2)
    np.testing.assert_array_equal(np.asarray(base), want * 2)
    # a read-only tensor (shares a read-only NumPy array) refuses in-place writes
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"^add: tensor is read-only"):
        pf.from_numpy(ro).add_(1)


@pytest.mark.parametrize("dtype", ["float32", "float16", "int64"])
def test_overlapping_in_place_writes_match_numpy(dtype):
    n = 50
    cases = [
        lambda x: x[1:].__iadd__(x[:-1]),
        lambda x: x[:-1].__iadd__(x[1:]),
        lambda x: x[::-1].__imul__(x),
        lambda x: x[2:].__isub__(x[:-2] * 1),
    ]
    for k, case in enumerate(cases):
        x = pf.tensor(np.arange(n), dtype=dtype)
        xn = np.arange(n).astype(np_dtype(dtype))
        case(x)
        case(xn)
        np.testing.assert_array_equal(arr(x), xn.astype(arr(x).dtype), err_msg=str(k))
    # a square matrix plus its own transpose, and out= overlapping an input
    m = np.arange(16).reshape(4, 4).astype(np_dtype(dtype))
    t = pf.tensor(m)
    t += t.T
    m += m.T
    np.testing.assert_array_equal(arr(t), m.astype(arr(t).dtype))
    x = pf.tensor(np.arange(n), dtype=dtype)
    xn = np.arange(n).astype(np_dtype(dtype))
    pf.add(x[:-1], x[1:], out=x[1:])
    np.add(xn[:-1], xn[1:], out=xn[1:])
    np.testing.assert_array_equal(arr(x), xn.astype(arr(x).dtype))


def test_overlapping_in_place_writes_above_the_thread_grain():
    n = 100_003
    x = pf.tensor(np.arange(n, dtype=np.float64))
    xn = np.arange(n, dtype=np.float64)
    x[1:] += x[:-1]
    xn[1:] += xn[:-1]
    np.testing.assert_array_equal(np.asarray(x), xn)


# ------------------------------------------------------------ operators

BINOPS = [
    ("add", lambda a, b: a + b), ("subtract", lambda a, b: a - b),
    ("multiply", lambda a, b: a * b), ("divide", lambda a, b: a / b),
    ("floor_divide", lambda a, b: a // b), ("remainder", lambda a, b: a % b),
    ("power", lambda a, b: a ** b), ("bitwise_and", lambda a, b: a & b),
    ("bitwise_or", lambda a, b: a | b), ("bitwise_xor", lambda a, b: a ^ b),
    ("equal", lambda a, b: a == b), ("not_equal", lambda a, b: a != b),
    ("less", lambda a, b: a < b), ("less_equal", lambda a, b: a <= b),
    ("greater", lambda a, b: a > b), ("greater_equal", lambda a, b: a >= b),
]


@pytest.mark.parametrize("name,op", BINOPS, ids=[n for n, _ in BINOPS])
def test_operators_match_functions(name, op):
    fn = getattr(pf, name)
    an = np.array([[3, -4, 5], [7, 2, -9]], dtype=np.int32)
    bn = np.array([2, 3, 4], dtype=np.int32)
    a, b = pf.tensor(an), pf.tensor(bn)
    if name == "power":
        a, b, an = abs(a), abs(b), np.abs(an)

    def same(x, y):
        assert isinstance(x, pf.Tensor) and x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))

    same(op(a, b), fn(a, b))
    same(op(a, 2), fn(a, 2))
    same(op(2, b), fn(2, b))                      # reflected, Python scalar on the left
    # NumPy arrays on either side give tensors (NumPy defers to the tensor)
    bn_ = np.abs(bn) if name == "power" else bn
    r = op(a, bn_)
    same(r, fn(a, pf.tensor(bn_)))
    r = op(np.asarray(a), b)
    same(r, fn(a, b))
    # and the values are NumPy's (in NumPy's own dtype rules for int32 pairs)
    with np.errstate(all="ignore"):
        want = op(an, bn)
    np.testing.assert_allclose(arr(op(a, b)).astype(np.float64), want.astype(np.float64),
                               rtol=1e-6)


def test_unary_operators():
    t = pf.tensor([1, -2, 3], dtype=pf.int16)
    assert (-t).tolist() == [-1, 2, -3] and (-t).dtype == pf.int16
    assert abs(t).tolist() == [1, 2, 3]
    assert (~t).tolist() == [~1, ~-2, ~3]
    assert (+t) is t
    assert (~pf.tensor([True, False])).tolist() == [False, True]
    with pytest.raises(TypeError, match=r"^negative: not supported for dtype bool; use "
                                        r"logical_not"):
        -pf.tensor([True])
    with pytest.raises(TypeError, match=r"^bitwise_not: not supported for dtype float32"):
        ~pf.ones(2)


def test_in_place_operators_with_arrays_and_scalars():
    t = pf.tensor([1.0, 2.0, 3.0])
    ident = id(t)
    t += np.array([1.0, 1.0, 1.0])
    t *= 2
    t -= pf.tensor([1.0])
    t /= 2
    t **= 2
    t //= 1
    t %= 5
    assert id(t) == ident
    want = np.array([1.0, 2.0, 3.0]) + 1
    want = (((want * 2 - 1) / 2) ** 2 // 1) % 5
    np.testing.assert_array_equal(np.asarray(t), want.astype(np.float32))
    i = pf.tensor([12, 10], dtype=pf.uint8)
    i &= 6
    i |= 1
    i ^= 2
    assert i.tolist() == [((12 & 6) | 1) ^ 2, ((10 & 6) | 1) ^ 2] and i.dtype == pf.uint8


def test_comparisons_return_tensors_and_tensors_stay_hashable():
    a = pf.tensor([1.0, 2.0, math.nan])
    b = pf.tensor([1.0, 3.0, math.nan])
    eq = a == b
    assert isinstance(eq, pf.Tensor) and eq.dtype == pf.bool
    assert eq.tolist() == [True, False, False]          # NaN != NaN
    assert (a != b).tolist() == [False, True, True]
    assert (a < 2).tolist() == [True, False, False] and (2 > a).tolist() == [True, False, False]
    # tensors hash by identity, so sets and dicts of tensors work
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b" and len({a, b, a}) == 2
    assert hash(a) == hash(a)
    # equality with things that are not numbers is False, not an error
    assert (a == None) is False and (a != "x") is True     # noqa: E711
    with pytest.raises(ValueError, match=r"truth value of a tensor with shape \(3,\) is "
                                         r"ambiguous"):
        bool(a == b)


def test_comparison_with_out_of_range_python_int():
    u = pf.tensor([0, 255], dtype=pf.uint8)
    assert (u == 300).tolist() == [False, False] and (u != 300).tolist() == [True, True]
    assert (u < 256).tolist() == [True, True] and (u > -1).tolist() == [True, True]
    assert (u >= -(2 ** 70)).tolist() == [True, True]
    i = pf.tensor([-2 ** 63, 2 ** 63 - 1])
    assert (i < 2 ** 63).tolist() == [True, True] and (i == 2 ** 63).tolist() == [False, False]
    assert (i > -2 ** 63 - 1).tolist() == [True, True]
    assert (2 ** 64 > i).tolist() == [True, True]
    # as NumPy 2
    np.testing.assert_array_equal(np.asarray(u == 300), np.array([0, 255], np.uint8) == 300)
    np.testing.assert_array_equal(np.asarray(u < -1), np.array([0, 255], np.uint8) < -1)
    # arithmetic with such an integer is still an error (NEP 50)
    with pytest.raises(ValueError, match=r"^subtract: Python integer 300 is out of range"):
        u - 300


@pytest.mark.parametrize("other", ["a", None, object(), 1j, {1}, [1, "a"]],
                         ids=["str", "None", "object", "complex", "set", "list"])
def test_unsupported_operand_types_give_type_error(other):
    t = pf.ones(3)
    for op in (lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a ** b,
               lambda a, b: a & b, lambda a, b: a < b):
        with pytest.raises(TypeError):
            op(t, other)
        with pytest.raises(TypeError):
            op(other, t)
    with pytest.raises(TypeError):
        t += other


def test_function_forms_reject_bad_operands_naming_the_op():
    with pytest.raises(TypeError, match=r"^add: cannot make a tensor from str"):
        pf.add(pf.ones(2), "a")
    with pytest.raises(TypeError, match=r"^bitwise_and: not supported for dtypes int64, "
                                        r"float32"):
        pf.tensor([1]) & 1.5


def test_aliases_are_the_same_ops():
    aliases = pf._C._op_aliases()
    assert aliases["clamp"] == "clip" and aliases["pow"] == "power"
    x = pf.tensor([0.25, 0.5, 2.0])
    rows = {r["name"]: r for r in pf._C._op_table()}
    for alias, name in aliases.items():
        if rows[name]["kind"] == "custom":
            continue        # aliases of other families are tested with their ops
        f, g = getattr(pf, alias), getattr(pf, name)
        args = (x,) if rows[name]["nin"] == 1 else (x, x)
        kw = {"min": 0.3} if name == "clip" else {}
        np.testing.assert_array_equal(np.asarray(f(*args, **kw)), np.asarray(g(*args, **kw)))
        if hasattr(pf.Tensor, name):
            assert hasattr(pf.Tensor, alias), alias
    y = pf.tensor([1.0, 5.0])
    y.clamp_(max=2)
    assert y.tolist() == [1.0, 2.0]


# ------------------------------------------------------------ per-op semantics

def test_round_decimals():
    vals = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 1.2345, -1.2355, 123.456, 1250.0, -1350.0])
    for dtype in ("float32", "float64"):
        x = pf.tensor(vals, dtype=dtype)
        xn = vals.astype(dtype)
        for dec in (0, 1, 2, -1, -2):
            got = np.asarray(pf.round(x, dec))
            # pyframe scales in float64 even for float32 (NumPy scales in float32)
            want = np.round(xn.astype(np.float64), dec).astype(dtype)
            np.testing.assert_array_equal(got, want, err_msg="%s %d" % (dtype, dec))
        # no NaN when the scale overflows: Python's round gives the same
        big = pf.tensor([1.5, -2.25, 1e30], dtype=dtype)
        assert pf.round(big, 400).tolist() == big.tolist()
        assert pf.round(big, -400).tolist() == [0.0, -0.0, 0.0]
    assert pf.rint(pf.tensor([2.5, 3.5])).tolist() == [2.0, 4.0]
    assert pf.tensor([2.5]).round(decimals=0).tolist() == [2.0]
    f16 = pf.round(pf.tensor([2.5, 0.125], dtype=pf.float16), 1)
    assert f16.dtype == pf.float16 and f16.tolist() == [2.5, float(np.float16(0.1))]


@pytest.mark.parametrize("name", INTS)
def test_round_integers_exactly(name):
    info = np.iinfo(name)
    rng = np.random.default_rng(1)
    vals = rng.integers(info.min, info.max, size=200, endpoint=True, dtype=name)
    vals[:6] = [info.min, info.max, 0, 5 if name == "uint8" else -5, 15, 25]
    x = pf.tensor(vals)
    for dec in (0, 3, -1, -2, -5, -19, -20, -400):
        got = pf.round(x, dec).tolist()
        # Python's round on ints is exact, half to even; then wrap to the dtype
        want = np.array([round(int(v), dec) for v in vals], dtype=object)
        want = np.array([int(w) % 2 ** 64 for w in want], dtype=np.uint64).astype(name)
        assert got == want.tolist(), (name, dec)
    # exact, not via float64 (where 2**62 + 1 is 2**62)
    assert pf.round(pf.tensor([2 ** 62 + 1]), -1).tolist() == [2 ** 62 - 4]
    assert pf.round(pf.tensor([2 ** 62 + 6]), -1).tolist() == [2 ** 62 + 6]
    assert pf.round(pf.tensor([1250, 1350, -1250]), -2).tolist() == [1200, 1400, -1200]


def test_clip_bounds():
    x = pf.tensor([-3.0, 0.0, 1.0, 4.0, math.nan])
    xn = np.asarray(x)
    for lo, hi in ((-1, 2), (0.5, None), (None, 0.5), (3, 1), (-math.inf, math.inf)):
        got = np.asarray(pf.clip(x, lo, hi))
        want = np.clip(xn, lo, hi)      # NumPy: minimum(maximum(x, lo), hi)
        np.testing.assert_array_equal(got, want, err_msg=str((lo, hi)))
    # min > max gives max everywhere (NumPy, PyTorch)
    assert pf.clip(pf.tensor([0.0, 5.0, 9.0]), 5, 2).tolist() == [2.0, 2.0, 2.0]
    assert pf.clip(pf.tensor([0, 5, 9]), 5, 2).tolist() == [2, 2, 2]
    # a NaN bound gives NaN
    assert np.isnan(np.asarray(pf.clip(pf.ones(2), math.nan, 2))).all()
    # keyword spellings: NumPy's a_min/a_max, Keras' min_value/max_value, PyTorch's clamp
    y = pf.tensor([-5.0, 5.0])
    for kw in ({"min": -1, "max": 1}, {"a_min": -1, "a_max": 1},
               {"min_value": -1, "max_value": 1}):
        assert pf.clip(y, **kw).tolist() == [-1.0, 1.0]
    assert pf.clamp(y, min=0).tolist() == [0.0, 5.0]
    assert y.clip(None, 0).tolist() == [-5.0, 0.0]
    # integer bounds beyond an integer dtype clip nothing; bounds that cannot be met raise
    u = pf.tensor([0, 7, 255], dtype=pf.uint8)
    assert pf.clip(u, -5, 300).tolist() == [0, 7, 255]
    assert pf.clip(u, -5, 6).dtype == pf.uint8
    with pytest.raises(ValueError, match=r"^clip: min 300 is above the largest uint8 \(255\)"):
        pf.clip(u, 300)
    with pytest.raises(ValueError, match=r"^clip: max -1 is below the smallest uint8 \(0\)"):
        pf.clip(u, None, -1)
    # int64 bounds beyond 2**53 are exact
    big = pf.tensor([2 ** 53 + 1, 2 ** 60, -2 ** 62])
    assert pf.clip(big, 2 ** 53 + 2, 2 ** 60 - 1).tolist() == [2 ** 53 + 2, 2 ** 60 - 1,
                                                                2 ** 53 + 2]
    assert pf.clip(big, -2 ** 70, 2 ** 70).tolist() == big.tolist()
    # in place, and into out=
    z = pf.tensor([-2, 0, 2], dtype=pf.int8)
    assert z.clip_(-1, 1) is z and z.tolist() == [-1, 0, 1]
    o = pf.zeros(3)
    assert pf.clip(pf.tensor([-2.0, 0.0, 2.0]), -1, 1, out=o) is o and o.tolist() == [-1, 0, 1]
    with pytest.raises(TypeError, match=r"^clip: min must be a number or a tensor; got str"):
        pf.clip(pf.ones(2), "a")


def test_clip_integer_tensor_with_float_bounds_promotes():
    # NumPy and PyTorch: the bounds are weak scalars of a higher kind
    i = pf.tensor([1, 5, 10])
    r = pf.clip(i, 2.5, 7.5)
    assert r.dtype == pf.float32 and r.tolist() == [2.5, 5.0, 7.5]
    np.testing.assert_array_equal(np.asarray(r), np.clip(np.array([1, 5, 10]), 2.5, 7.5))
    if torch is not None:
        t = torch.clamp(torch.tensor([1, 5, 10]), 2.5, 7.5)
        assert str(t.dtype) == "torch.float32" and t.tolist() == r.tolist()
    b = pf.clip(pf.tensor([True, False]), 2)
    assert b.dtype == pf.int64 and b.tolist() == [2, 2]
    # ... which an integer tensor cannot hold in place
    with pytest.raises(TypeError, match=r"^clip: the result has dtype float32, which cannot "
                                        r"be stored in the int64 output"):
        i.clip_(2.5)
    # an int bound keeps the dtype, a float bound on a float tensor too
    assert pf.clip(pf.tensor([1, 5], dtype=pf.int16), 2, 4).dtype == pf.int16
    assert pf.clip(pf.ones(2, dtype=pf.float16), 0.5, 0.75).dtype == pf.float16


def test_clip_tensor_bounds():
    x = pf.tensor([[-3.0, 0.5, 4.0], [1.0, 2.0, 3.0]])
    lo = pf.tensor([0.0, 1.0, 0.0])
    hi = pf.tensor([[1.0], [2.5]])
    got = pf.clip(x, lo, hi)
    want = np.clip(np.asarray(x), np.asarray(lo), np.asarray(hi))
    np.testing.assert_array_equal(np.asarray(got), want)
    np.testing.assert_array_equal(np.asarray(pf.clip(x, np.asarray(lo))),
                                  np.maximum(np.asarray(x), np.asarray(lo)))
    # a strong float64 bound promotes, as in NumPy
    assert pf.clip(x, pf.tensor(0.0, dtype=pf.float64)).dtype == pf.float64
    with pytest.raises(ValueError, match=r"^clip: shapes \(2, 3\) and \(2,\) cannot be "
                                         r"broadcast"):
        pf.clip(x, pf.ones(2))


def test_softplus_defaults_and_threshold():
    x = np.array([-30.0, -1.0, 0.0, 1.0, 10.0, 19.0, 21.0, 40.0])
    t = pf.tensor(x, dtype=pf.float64)
    # log(1 + e^x), and x itself above the threshold (20 by default, as PyTorch)
    want = np.where(x > 20, x, np.logaddexp(0, x))
    np.testing.assert_allclose(np.asarray(pf.softplus(t)), want, rtol=1e-12)
    got = np.asarray(pf.softplus(t, beta=2.0, threshold=5.0))
    want = np.where(2 * x > 5, x, np.log1p(np.exp(2 * x)) / 2)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    if torch is not None:
        tt = torch.tensor(x)
        for kw in ({}, {"beta": 2.0, "threshold": 5.0}, {"beta": 0.5}):
            np.testing.assert_allclose(
                np.asarray(pf.softplus(t, **kw)),
                torch.nn.functional.softplus(tt, **kw).numpy(), rtol=1e-12)
    assert pf.softplus(pf.tensor([math.inf, -math.inf, math.nan])).tolist()[:2] == [math.inf, 0]


def test_activation_parameters_and_defaults():
    x = np.linspace(-4, 4, 33)
    t = pf.tensor(x, dtype=pf.float64)
    np.testing.assert_allclose(np.asarray(pf.leaky_relu(t)), np.where(x > 0, x, 0.01 * x))
    np.testing.assert_allclose(np.asarray(pf.leaky_relu(t, 0.3)), np.where(x > 0, x, 0.3 * x))
    np.testing.assert_allclose(np.asarray(pf.elu(t, alpha=2.0)),
                               np.where(x > 0, x, 2.0 * np.expm1(x)))
    if torch is not None:
        tt = torch.tensor(x)
        F = torch.nn.functional
        for mine, theirs in ((pf.selu(t), F.selu(tt)), (pf.silu(t), F.silu(tt)),
                             (pf.gelu(t), F.gelu(tt)), (pf.elu(t), F.elu(tt)),
                             (pf.relu6(t), F.relu6(tt)), (pf.sigmoid(t), torch.sigmoid(tt)),
                             (pf.erf(t), torch.erf(tt))):
            np.testing.assert_allclose(np.asarray(mine), theirs.numpy(), rtol=1e-12,
                                       atol=1e-300)
    # -inf gives the limit of silu and gelu (-0), not -inf * 0 = NaN
    inf = pf.tensor([-math.inf, math.inf])
    for dtype in (pf.float32, pf.float64):
        assert pf.silu(inf.astype(dtype)).tolist() == [0.0, math.inf]
        assert pf.gelu(inf.astype(dtype)).tolist() == [0.0, math.inf]
        assert pf.gelu(inf.astype(dtype), approximate="tanh").tolist() == [0.0, math.inf]
    with pytest.raises(TypeError, match=r"^leaky_relu: too many positional arguments"):
        pf.leaky_relu(t, 0.1, 0.2)
    with pytest.raises(TypeError, match=r"^softplus: beta given twice"):
        pf.softplus(t, 1.0, beta=2.0)


def test_gelu_tanh_approximation():
    x = np.linspace(-8, 8, 161)
    for dtype, rtol in (("float64", 1e-13), ("float32", 2e-6)):
        t = pf.tensor(x, dtype=dtype)
        xs = np.asarray(t).astype(np.float64)
        ref = 0.5 * xs * (1 + np.tanh(math.sqrt(2 / math.pi) * (xs + 0.044715 * xs ** 3)))
        eps = np.finfo(dtype).eps
        for approx in ("tanh", True):
            got = np.asarray(pf.gelu(t, approximate=approx)).astype(np.float64)
            # 1 + tanh cancels for x << 0: the error there is absolute, about |x| eps
            np.testing.assert_allclose(got, ref, rtol=rtol, atol=8 * eps * np.abs(xs).max())
        exact = np.asarray(pf.gelu(t, approximate="none")).astype(np.float64)
        assert np.abs(exact - ref).max() < 1e-3       # the two differ, by < 1e-3
        assert np.abs(exact - ref).max() > 1e-5
    if torch is not None:
        got = np.asarray(pf.gelu(pf.tensor(x, dtype=pf.float64), approximate="tanh"))
        want = torch.nn.functional.gelu(torch.tensor(x), approximate="tanh").numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"^gelu: approximate must be 'none' or 'tanh'"):
        pf.gelu(pf.ones(2), approximate="erf")


def test_where_scalars_and_condition_dtypes():
    c = pf.tensor([True, False, True])
    assert pf.where(c, 1, 0).tolist() == [1, 0, 1] and pf.where(c, 1, 0).dtype == pf.int64
    assert pf.where(c, 1.0, 0).dtype == pf.float32
    x = pf.tensor([1, 2, 3], dtype=pf.int8)
    assert pf.where(c, x, -1).dtype == pf.int8          # weak scalar adapts
    assert pf.where(c, x, 0.5).dtype == pf.float32
    assert pf.where(c, x, pf.zeros(3, dtype=pf.float16)).dtype == pf.float16
    # any dtype is a condition: nonzero (NaN included) is True
    cond = pf.tensor([0.0, math.nan, -2.0])
    assert pf.where(cond, 1, 2).tolist() == [2, 1, 1]
    assert pf.where(pf.tensor([0, 3, 0], dtype=pf.uint8), 1, 2).tolist() == [2, 1, 2]
    assert pf.where(True, x, 0).tolist() == [1, 2, 3]
    # broadcasting of all three
    got = pf.where(pf.tensor([[True], [False]]), pf.tensor([1.0, 2.0, 3.0]), pf.zeros((2, 1)))
    assert got.tolist() == [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]
    # bfloat16 and float16 values are moved, not converted
    v = pf.tensor([1.5, 2.5], dtype=pf.bfloat16)
    assert pf.where(pf.tensor([False, True]), v, v[::-1]).tolist() == [2.5, 2.5]


def test_predicates_and_logical_ops_on_every_dtype():
    for name in ("bool",) + INTS + FLOATS:
        x = pf.tensor([0, 1, 2], dtype=name)
        assert pf.isfinite(x).tolist() == [True] * 3
        assert pf.isnan(x).tolist() == [False] * 3
        assert pf.logical_not(x).tolist() == [True, False, False]
        assert pf.logical_xor(x, 1).tolist() == [True, False, False]
    f = pf.tensor([math.inf, -math.inf, math.nan, 1.0], dtype=pf.float16)
    assert pf.isinf(f).tolist() == [True, True, False, False]
    assert pf.isfinite(f).tolist() == [False, False, False, True]
    # the in-place logical forms keep the tensor's dtype and store 0 / 1
    y = pf.tensor([0.0, 2.0, math.nan])
    assert y.logical_not_() is y and y.tolist() == [1.0, 0.0, 0.0]


# ------------------------------------------------------------ threads

def _thread_cases():
    rng = np.random.default_rng(7)
    n = 3 * 32768 + 17                                    # above the grain, ragged
    a = rng.normal(size=n)
    b = rng.normal(size=(n // 7, 7))
    return [
        ("exp", lambda: pf.exp(pf.tensor(a, dtype=pf.float32))),
        ("add bcast", lambda: pf.tensor(b) + pf.tensor(b[0])),
        ("transposed", lambda: pf.tensor(b).T * 2.5),
        ("negative step", lambda: pf.tensor(a)[::-1] - pf.tensor(a)),
        ("float16", lambda: pf.sigmoid(pf.tensor(a, dtype=pf.float16))),
        ("int floordiv", lambda: pf.tensor((a * 100).astype(np.int32)) // 7),
        ("compare", lambda: pf.tensor(a) < 0.1),
        ("where", lambda: pf.where(pf.tensor(a) > 0, pf.tensor(a), 0.0)),
        ("in place", lambda: pf.tensor(a).mul_(pf.tensor(a))),
        ("gelu", lambda: pf.gelu(pf.tensor(b[:, ::2], dtype=pf.float32))),
    ]


def test_big_tensors_same_on_one_and_two_threads():
    before = pf.get_num_threads()
    try:
        results = {}
        for nth in (1, 2):
            pf.set_num_threads(nth)
            assert pf.get_num_threads() == nth
            results[nth] = [(name, np.asarray(f()).copy()) for name, f in _thread_cases()]
    finally:
        pf.set_num_threads(before)
    for (name, one), (_, two) in zip(results[1], results[2]):
        np.testing.assert_array_equal(one, two, err_msg=name)
    # and they are right: a few against NumPy
    rng = np.random.default_rng(7)
    a = rng.normal(size=3 * 32768 + 17)
    np.testing.assert_allclose(results[2][0][1], np.exp(a.astype(np.float32)), rtol=3e-7)
    np.testing.assert_array_equal(results[2][3][1], a[::-1] - a)
