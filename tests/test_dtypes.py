"""dtype objects, dtype parsing, type promotion and result_type.

Oracles: NumPy's dtype attributes, the promotion rules written in
csrc/dtype.c (re-implemented here from the comment, not from the code),
torch.promote_types / torch.result_type, and NumPy for same-kind pairs.
"""
import itertools

import numpy as np
import pytest

import pyframe as pf
from helpers_core import DTYPE_NAMES, FLOAT_NAMES, INT_NAMES, ALL_DTYPES, np_dtype

ITEMSIZE = {"bool": 1, "uint8": 1, "int8": 1, "int16": 2, "int32": 4, "int64": 8,
            "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


# ------------------------------------------------------------ the objects

@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_dtype_objects_have_name_itemsize_and_flags(name):
    d = getattr(pf, name)
    assert isinstance(d, pf.dtype)
    assert d.name == name == str(d)
    assert repr(d) == f"pyframe.{name}"
    assert d.itemsize == ITEMSIZE[name]
    assert d.is_floating_point == (name in FLOAT_NAMES)
    # signed: every int except uint8, every float; bool is not signed (as torch)
    assert d.is_signed == (name not in ("bool", "uint8"))
    if name != "bfloat16":
        assert d.itemsize == np.dtype(name).itemsize
        assert d.kind == np.dtype(name).kind


def test_dtype_flags_agree_with_torch():
    torch = pytest.importorskip("torch")
    for name in DTYPE_NAMES:
        td = getattr(torch, name)
        d = getattr(pf, name)
        assert d.is_floating_point == td.is_floating_point, name
        assert d.is_signed == td.is_signed, name
        assert d.itemsize == td.itemsize, name


def test_the_ten_dtypes_are_distinct_singletons():
    assert len({id(d) for d in ALL_DTYPES}) == 10
    for d in ALL_DTYPES:
        assert pf.dtype(d) is d
        assert pf.dtype(d.name) is d


def test_torch_style_aliases_on_the_module():
    assert pf.half is pf.float16
    assert pf.double is pf.float64
    assert pf.long is pf.int64


# ------------------------------------------------------------ parsing

# spelling -> canonical name; from the alias table's intent in csrc/dtype.c,
# and the NumPy meanings of the type codes
SPELLINGS = {
    "bool": "bool", "bool_": "bool", "?": "bool", "b1": "bool", "|b1": "bool",
    "uint8": "uint8", "u1": "uint8", "|u1": "uint8",
    "int8": "int8", "i1": "int8",
    "int16": "int16", "i2": "int16", "short": "int16", "<i2": "int16",
    "int32": "int32", "i4": "int32", "=i4": "int32",
    "int64": "int64", "i8": "int64", "int": "int64", "long": "int64",
    "float16": "float16", "f2": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float32": "float32", "f4": "float32", "single": "float32", "<f4": "float32",
    "float64": "float64", "f8": "float64", "double": "float64",
    # NumPy: np.dtype("float") is float64
    "float": "float64",
}


@pytest.mark.parametrize("spelling,name", sorted(SPELLINGS.items()))
def test_dtype_from_strings(spelling, name):
    assert pf.dtype(spelling) is getattr(pf, name)


@pytest.mark.parametrize("name", [n for n in DTYPE_NAMES if n != "bfloat16"])
def test_dtype_from_numpy_dtypes_and_scalar_types(name):
    d = getattr(pf, name)
    assert pf.dtype(np.dtype(name)) is d
    assert pf.dtype(np.dtype(name).type) is d   # np.float32, np.int16, np.bool_ ...


def test_dtype_from_ml_dtypes_bfloat16():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    assert pf.dtype(ml_dtypes.bfloat16) is pf.bfloat16
    assert pf.dtype(np.dtype(ml_dtypes.bfloat16)) is pf.bfloat16


def test_dtype_from_python_types_follows_numpy():
    assert pf.dtype(float) is pf.float64
    assert pf.dtype(int) is pf.int64
    assert pf.dtype(bool) is pf.bool
    for t in (float, int, bool):
        assert pf.dtype(t).name == np.dtype(t).name


@pytest.mark.parametrize("bad", ["float128", "complex64", "foo", "", "Float32", "f16",
                                 "uint16", "str"])
def test_unknown_dtype_names_raise_type_error_naming_the_op(bad):
    with pytest.raises(TypeError, match=rf"pf\.dtype: unknown dtype '{bad}'"):
        pf.dtype(bad)


@pytest.mark.parametrize("bad", [np.complex64, np.dtype("uint16"), np.dtype("U3"), object(),
                                 3, 2.5, [pf.float32]])
def test_unknown_dtype_objects_raise_type_error(bad):
    with pytest.raises(TypeError, match=r"pf\.dtype: unknown dtype .*expected one of pf\.bool"):
        pf.dtype(bad)


def test_dtype_none_is_refused():
    # pyframe.h: "None is refused here; callers that accept None test for it
    # first".  (np.dtype(None) would say float64: pf.dtype must not follow it.)
    with pytest.raises(TypeError, match=r"pf\.dtype: dtype None is not a dtype"):
        pf.dtype(None)


@pytest.mark.parametrize("spelling", [">f4", ">i8", ">i2", np.dtype(">f4"), np.dtype(">i4")])
def test_non_native_byte_order_does_not_name_a_dtype(spelling):
    # csrc/dtype.c: "only native order names a dtype"; a big-endian float32 is
    # not pf.float32 (NumPy agrees: np.dtype('>f4') != np.float32).
    with pytest.raises(TypeError, match=r"pf\.dtype: unknown dtype"):
        pf.dtype(spelling)


def test_non_native_float32_is_not_equal_to_float32():
    assert pf.float32 != np.dtype(">f4")
    assert pf.float32 != ">f4"


def test_dtype_keyword_form():
    assert pf.dtype(dtype="f8") is pf.float64


# ------------------------------------------------------------ equality

@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_equality_with_names_numpy_and_each_other(name):
    d = getattr(pf, name)
    assert d == name and name == d
    assert not (d != name)
    if name != "bfloat16":
        assert d == np.dtype(name) and np.dtype(name) == d
        assert d == np.dtype(name).type
    for other in DTYPE_NAMES:
        if other != name:
            assert d != other
            assert d != getattr(pf, other)
    assert d != None  # noqa: E711  (the comparison itself is under test)
    assert d != "no-such-dtype"
    assert d != object()
    # hash follows the name, so dtypes and names can share dict keys
    assert hash(d) == hash(name)
    assert {name: 1}[d] == 1


def test_equality_with_aliases():
    assert pf.float32 == "f4" and pf.int64 == "long" and pf.float16 == "half"
    assert pf.float64 == float and pf.int64 == int and pf.bool == bool


# ------------------------------------------------------------ promotion

_KIND = {"bool": 0, "uint8": 1, "int8": 1, "int16": 1, "int32": 1, "int64": 1,
         "float16": 2, "bfloat16": 2, "float32": 2, "float64": 2}
_ORDER = {n: i for i, n in enumerate(DTYPE_NAMES)}


def promote_oracle(a, b):
    """The rules of the comment above promote_slow in csrc/dtype.c."""
    if a == b:
        return a
    ka, kb = _KIND[a], _KIND[b]
    if ka != kb:                     # bool < integer < float: the higher kind wins
        return a if ka > kb else b
    if {a, b} == {"float16", "bfloat16"}:
        return "float32"             # neither holds the other
    if {a, b} == {"uint8", "int8"}:
        return "int16"
    return a if _ORDER[a] > _ORDER[b] else b   # within a kind, the wider type


@pytest.mark.parametrize("a", DTYPE_NAMES)
def test_promote_types_table_follows_the_written_rules(a):
    for b in DTYPE_NAMES:
        got = pf.promote_types(getattr(pf, a), getattr(pf, b))
        assert got.name == promote_oracle(a, b), (a, b)
        assert pf.promote_types(a, b) is got          # strings work as well
        assert pf.promote_types(b, a) is got          # symmetric


def test_promote_types_agrees_with_torch_everywhere():
    torch = pytest.importorskip("torch")
    mismatches = []
    for a, b in itertools.product(DTYPE_NAMES, repeat=2):
        want = str(torch.promote_types(getattr(torch, a), getattr(torch, b))).split(".")[1]
        got = pf.promote_types(a, b).name
        if got != want:
            mismatches.append((a, b, got, want))
    assert mismatches == []


def test_promote_types_agrees_with_numpy_within_a_kind():
    # NumPy 2 differs across kinds (int64 + float16 is float64 there, float16
    # here, as in PyTorch) and has no bfloat16; within a kind both agree.
    names = [n for n in DTYPE_NAMES if n != "bfloat16"]
    for a, b in itertools.product(names, repeat=2):
        if _KIND[a] == _KIND[b]:
            assert pf.promote_types(a, b).name == np.promote_types(a, b).name, (a, b)


def test_promote_types_is_associative():
    # the result of a chain of binary ops must not depend on the grouping
    P = pf.promote_types
    for a, b, c in itertools.product(ALL_DTYPES, repeat=3):
        assert P(a, P(b, c)) is P(P(a, b), c), (a, b, c)


def test_promote_types_accepts_numpy_dtypes():
    assert pf.promote_types(np.int8, np.dtype("uint8")) is pf.int16
    assert pf.promote_types(np.float16, pf.int64) is pf.float16


# ------------------------------------------------------------ result_type

def test_result_type_weak_python_scalars_examples_from_the_issue():
    assert pf.result_type(pf.zeros(3, dtype=pf.int8), 1) is pf.int8
    assert pf.result_type(pf.zeros(3, dtype=pf.float16), 1.0) is pf.float16
    assert pf.result_type(pf.zeros(3, dtype=pf.int64), 2.5) is pf.float32


def test_result_type_scalars_alone_give_the_defaults():
    assert pf.result_type(True) is pf.bool
    assert pf.result_type(1) is pf.int64
    assert pf.result_type(1.5) is pf.float32
    assert pf.result_type(True, 3) is pf.int64
    assert pf.result_type(1, 2.0) is pf.float32


def test_result_type_of_tensors_and_dtypes_is_promotion():
    for a, b in itertools.product(DTYPE_NAMES, repeat=2):
        ta = pf.zeros(1, dtype=a)
        want = promote_oracle(a, b)
        assert pf.result_type(ta, pf.zeros(2, dtype=b)).name == want
        assert pf.result_type(ta, getattr(pf, b)).name == want   # dtype objects are strong
        assert pf.result_type(a, np.dtype("int8")).name == promote_oracle(a, "int8")


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_result_type_with_scalars_agrees_with_torch(name):
    torch = pytest.importorskip("torch")
    t = pf.zeros(2, dtype=name)
    tt = torch.zeros(2, dtype=getattr(torch, name))
    for scalar in (True, 1, -3, 2.5):
        want = str(torch.result_type(tt, scalar)).split(".")[1]
        assert pf.result_type(t, scalar).name == want, (name, scalar)
        assert pf.result_type(scalar, t).name == want, (name, scalar)


def test_result_type_mixes_several_arguments():
    i8, u8, f16 = (pf.zeros(1, dtype=d) for d in (pf.int8, pf.uint8, pf.float16))
    assert pf.result_type(i8, u8, 1) is pf.int16
    assert pf.result_type(i8, u8, 1.0) is pf.float32      # int kind raised to default float
    assert pf.result_type(i8, f16, 7, True) is pf.float16


def test_result_type_errors_name_the_op():
    with pytest.raises(ValueError, match=r"pf\.result_type: needs at least one"):
        pf.result_type()
    with pytest.raises(TypeError, match=r"pf\.result_type.*unknown dtype 'foo'"):
        pf.result_type(pf.zeros(1), "foo")


def test_np_dtype_helper_matches_pf_names():
    # the oracle helper itself: every pf dtype has a NumPy twin of the same size
    for name in DTYPE_NAMES:
        if name == "bfloat16":
            pytest.importorskip("ml_dtypes")
        assert np_dtype(name).itemsize == getattr(pf, name).itemsize
    assert set(INT_NAMES) | set(FLOAT_NAMES) | {"bool"} == set(DTYPE_NAMES)
