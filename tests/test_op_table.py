"""The op table against its test rows, and the elementwise sweep.

1. Every op of ``pf._C._op_table()`` has a row in ``tests/op_rows`` and every
   row's "tests" entries name test functions that exist.
2. Every row's ``bad`` inputs raise the declared exception with a message
   that names the op.
3. Elementwise rows drive a hypothesis sweep against NumPy in float64:
   random shapes (0-d and empty included), broadcasting, non-contiguous,
   transposed and negative-step views, every dtype, weak Python scalars,
   the function / method / in-place / operator forms and out=.  The result
   dtype is checked against the promotion table in docs/dtypes.md, and
   against torch.result_type where torch has the same rule.
"""
import ast
import math
import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyframe as pf
from helpers_core import np_dtype
from op_rows import all_rows

try:
    import torch
except ImportError:  # torch is a second oracle only
    torch = None

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Tolerance per result dtype, (rtol, atol).  The oracle is rounded to the
# result dtype before comparing, so a correct kernel is within about one unit
# in the last place of that dtype plus its own float32 compute error (vmath's
# bounds are at most 4 ULP, tests/test_vmath.py).  atol is two steps of the
# dtype's subnormal spacing: results that round into the subnormal range.
TOL = {
    "float16": (2 * 2.0 ** -10, 2 * 2.0 ** -24),
    "bfloat16": (2 * 2.0 ** -7, 2 * 2.0 ** -133),
    "float32": (8 * 2.0 ** -23, 2 * 2.0 ** -149),
    "float64": (64 * 2.0 ** -52, 2 * 2.0 ** -1074),
}

TABLE = {r["name"]: r for r in pf._C._op_table()}
EW_KINDS = ("ufloat", "usame", "upred", "ulogical", "ubitwise", "barith", "bfloat", "compare",
            "logical", "bitwise", "where")
EW_NAMES = [n for n, r in TABLE.items() if r["kind"] in EW_KINDS]
ROWS = all_rows()

NAMES = ("bool", "uint8", "int8", "int16", "int32", "int64",
         "float16", "bfloat16", "float32", "float64")
FLOATS = ("float16", "bfloat16", "float32", "float64")
KIND_RANK = {n: (0 if n == "bool" else 2 if n in FLOATS else 1) for n in NAMES}


# ------------------------------------------------------------------ promotion
#
# The promotion table is read from docs/dtypes.md, so that the document and
# the code cannot drift apart.

def _read_promotion_table():
    abbrev = {"bool": "bool", "u8": "uint8", "i8": "int8", "i16": "int16", "i32": "int32",
              "i64": "int64", "f16": "float16", "bf16": "bfloat16", "f32": "float32",
              "f64": "float64"}
    with open(os.path.join(ROOT, "docs", "dtypes.md")) as f:
        lines = [ln for ln in f if ln.startswith("| **")]
    table = {}
    for ln in lines:
        cells = [c.strip() for c in ln.strip().strip("|").split("|")]
        row = abbrev[cells[0].strip("*")]
        for col, cell in zip(NAMES, cells[1:]):
            table[row, col] = abbrev[cell]
    assert len(table) == 100, "docs/dtypes.md: the promotion table is not 10 x 10"
    return table


PROMOTE = _read_promotion_table()
DEFAULT_FOR_KIND = {0: "bool", 1: "int64", 2: "float32"}


def scalar_kind(v):
    return 0 if isinstance(v, bool) else 1 if isinstance(v, int) else 2


def dispatch_dtypes(kind, args):
    """The dtype each operand has once weak Python scalars are resolved (NEP 50):
    a scalar takes the tensors' promoted dtype unless it is of a higher kind,
    in which case it takes its kind's default (bool, int64, float32)."""
    strong = None
    for k, a in enumerate(args):
        if isinstance(a, pf.Tensor) and not (kind == "where" and k == 0):
            strong = a.dtype.name if strong is None else PROMOTE[strong, a.dtype.name]
    out = []
    for k, a in enumerate(args):
        if isinstance(a, pf.Tensor):
            out.append(a.dtype.name)
        elif kind == "where" and k == 0:
            out.append("bool")
        else:
            sk = scalar_kind(a)
            out.append(strong if strong is not None and KIND_RANK[strong] >= sk
                       else DEFAULT_FOR_KIND[sk])
    return out


def float_compute(d):
    return "float32" if d in ("float16", "bfloat16") else d


def expected_dtypes(name, kind, dts):
    """(compute, result) by the rules of csrc/ops.h, or the TypeError's reason.
    For clip, dts includes its bounds (as weak scalars): the result is that of
    minimum(maximum(x, min), max), as in NumPy 2 and PyTorch."""
    r = dts[0]
    for d in dts[1:]:
        r = PROMOTE[r, d]
    if kind in ("ufloat", "bfloat"):
        res = r if r in FLOATS else "float32"
        return float_compute(res), res
    if kind == "usame":
        if name == "negative" and r == "bool":
            return "error", "use logical_not"
        return ("uint8" if r == "bool" else float_compute(r)), r
    if kind == "upred":
        return ("float64" if r == "float64" else "float32"), "bool"
    if kind in ("ulogical", "logical"):
        return "bool", "bool"
    if kind in ("ubitwise", "bitwise"):
        if r in FLOATS:
            return "error", "bitwise operations need integer or bool"
        return r, r
    if kind == "barith":
        if r == "bool" and name not in ("add", "multiply", "maximum", "minimum"):
            return "error", "cast booleans to an integer dtype first"
        return float_compute(r), r
    if kind == "compare":
        return float_compute(r), "bool"
    if kind == "where":
        res = PROMOTE[dts[1], dts[2]]
        return res, res
    raise AssertionError(kind)


def torch_result_dtype(kind, args):
    """The same result dtype by torch's rules, or None where torch's rules
    differ by design (0-d tensors are weaker than dimensioned ones there)."""
    if torch is None or kind not in ("barith", "bfloat", "compare", "bitwise", "where"):
        return None
    vals = args[1:] if kind == "where" else args
    tens = [a for a in vals if isinstance(a, pf.Tensor)]
    if not tens or len({a.ndim == 0 for a in tens}) > 1:
        return None
    conv = [torch.zeros((1,) * max(a.ndim, 0), dtype=getattr(torch, a.dtype.name))
            if isinstance(a, pf.Tensor) else a for a in vals]
    if len(tens) == len(conv) and all(a.ndim == 0 for a in tens):
        conv = [torch.zeros((), dtype=c.dtype) for c in conv]
    rt = str(torch.result_type(*conv)).split(".")[1]
    if kind == "bfloat":
        return rt if rt in FLOATS else "float32"
    if kind == "compare":
        return "bool"
    return rt


# ------------------------------------------------------------------- oracle

def as_array(a, d):
    """Operand `a` (tensor or Python scalar) as an ndarray of dtype name d."""
    if isinstance(a, pf.Tensor):
        arr = np.asarray(a)
        assert arr.dtype == np_dtype(a.dtype.name)
        return arr.astype(np_dtype(d))
    return cast(np.asarray(a, dtype=np.float64 if isinstance(a, float) else None), d)


def oracle(name, row, args, dts, comp, res, params):
    """The expected result as an ndarray of the result dtype (rounded there)."""
    kind = TABLE[name]["kind"]
    ins = []
    for k, a in enumerate(args):
        d = dts[k]
        if kind in ("ulogical", "logical") or (kind == "where" and k == 0):
            ins.append(as_array(a, d).astype(bool))
            continue
        x = cast(as_array(a, d), comp)
        ins.append(x.astype(np.float64) if comp in FLOATS else x)
    with np.errstate(all="ignore"):
        want = np.asarray(row["oracle"](*ins, **params))
    return cast(want, res)


def coarser(a, b):
    """Of two dtype names, the one whose tolerance is wider."""
    if a not in TOL:
        return b
    if b not in TOL:
        return a
    return a if TOL[a][0] >= TOL[b][0] else b


def cast(want, d):
    """The oracle's result cast to dtype name d (overflow to inf is intended)."""
    with np.errstate(all="ignore"):
        return want.astype(np_dtype(d))


def assert_matches(got, want, tol_dtype, what):
    """got: a tensor; want: an ndarray already in got's dtype (or castable)."""
    g = np.asarray(got)
    assert g.shape == want.shape, "%s: shape %s, expected %s" % (what, g.shape, want.shape)
    if tol_dtype in TOL or got.dtype.name in TOL:
        rtol, atol = TOL[coarser(tol_dtype, got.dtype.name)]
        np.testing.assert_allclose(g.astype(np.float64), want.astype(np.float64), rtol=rtol,
                                   atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(g, want.astype(g.dtype), err_msg=what)


def assert_identical(a, b, what):
    """Two tensors from the same computation path: same dtype, shape, bits."""
    assert a.dtype == b.dtype and a.shape == b.shape, what
    x, y = np.asarray(a), np.asarray(b)
    if a.dtype.is_floating_point:    # NaN == NaN here; ml_dtypes' bfloat16 NaN is not
        x, y = x.astype(np.float64), y.astype(np.float64)
    np.testing.assert_array_equal(x, y, err_msg=what)


# ------------------------------------------------------------ inputs

LAYOUTS = ("contiguous", "transposed", "negative", "strided")


def make_tensor(values, layout):
    """A tensor holding `values` (an ndarray) in the given memory layout."""
    v = np.asarray(values)
    nd = v.ndim
    if layout == "transposed" and nd >= 2:
        return pf.tensor(np.ascontiguousarray(v.T)).T
    if layout == "negative" and nd >= 1:
        idx = (slice(None, None, -1),) * nd
        return pf.tensor(np.ascontiguousarray(v[idx]))[idx]
    if layout == "strided" and nd >= 1:
        base = np.zeros([2 * n + 1 for n in v.shape], dtype=v.dtype)
        idx = (slice(1, None, 2),) * nd
        base[idx] = v
        return pf.tensor(base)[idx]
    return pf.tensor(v)


def int_range(row, k, d):
    info = np.iinfo(np_dtype(d))
    dom = row.get("int_domain")
    lo, hi = dom[k] if isinstance(dom, list) else row["domain"][k]
    return max(math.ceil(lo), info.min), min(math.floor(hi), info.max)


def gen_values(rng, row, k, d, shape):
    if d == "bool":
        return rng.random(shape) < 0.5
    if d not in FLOATS:
        info = np.iinfo(np_dtype(d))
        if row.get("int_domain") == "full" and rng.random() < 0.5:
            return rng.integers(info.min, info.max, size=shape, dtype=np_dtype(d),
                                endpoint=True)
        lo, hi = int_range(row, k, d)
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(np_dtype(d))
    lo, hi = row["domain"][k]
    if row.get("discrete") and rng.random() < 0.5:
        v = rng.integers(math.ceil(2 * lo), math.floor(2 * hi), size=shape, endpoint=True) / 2
    else:
        v = rng.uniform(lo, hi, size=shape)
    if row.get("specials") and rng.random() < 0.5:
        mask = rng.random(shape) < 0.25
        v = np.where(mask, rng.choice([np.nan, np.inf, -np.inf], size=shape), v)
    return v.astype(np_dtype(d))


def gen_scalar(rng, row, k, sk, strong):
    """A Python scalar of kind sk (0 bool, 1 int, 2 float) that fits `strong`."""
    if sk == 0:
        return bool(rng.random() < 0.5)
    if sk == 1:
        d = strong if strong is not None and KIND_RANK[strong] == 1 else "int64"
        lo, hi = int_range(row, k, d)
        return int(rng.integers(lo, hi, endpoint=True))
    lo, hi = row["domain"][k]
    if row.get("specials") and rng.random() < 0.2:
        return float(rng.choice([np.nan, np.inf, -np.inf]))
    if row.get("discrete") and rng.random() < 0.5:
        return float(rng.integers(math.ceil(2 * lo), math.floor(2 * hi), endpoint=True) / 2)
    return float(rng.uniform(lo, hi))


def scalar_kinds(row, kind, k):
    if kind == "where" and k == 0:
        return [0, 1, 2]
    kinds = []
    if "bool" in row["dtypes"]:
        kinds.append(0)
    if any(d in row["dtypes"] for d in ("uint8", "int8", "int16", "int32", "int64")):
        kinds.append(1)
    if any(d in row["dtypes"] for d in FLOATS):
        kinds.append(2)
    return kinds


@st.composite
def sub_shape(draw, shape):
    """A shape that broadcasts to `shape`: leading dims dropped, some set to 1."""
    drop = draw(st.integers(0, len(shape)))
    return tuple(1 if draw(st.integers(0, 3)) == 0 else n for n in shape[drop:])


# ------------------------------------------------------------ forms

BINARY_OPERATORS = {
    "add": lambda a, b: a + b, "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b, "divide": lambda a, b: a / b,
    "floor_divide": lambda a, b: a // b, "remainder": lambda a, b: a % b,
    "power": lambda a, b: a ** b, "bitwise_and": lambda a, b: a & b,
    "bitwise_or": lambda a, b: a | b, "bitwise_xor": lambda a, b: a ^ b,
    "equal": lambda a, b: a == b, "not_equal": lambda a, b: a != b,
    "less": lambda a, b: a < b, "less_equal": lambda a, b: a <= b,
    "greater": lambda a, b: a > b, "greater_equal": lambda a, b: a >= b,
}
INPLACE_OPERATORS = {
    "add": "__iadd__", "subtract": "__isub__", "multiply": "__imul__",
    "divide": "__itruediv__", "floor_divide": "__ifloordiv__", "remainder": "__imod__",
    "power": "__ipow__", "bitwise_and": "__iand__", "bitwise_or": "__ior__",
    "bitwise_xor": "__ixor__",
}
UNARY_OPERATORS = {"negative": lambda a: -a, "abs": abs, "bitwise_not": lambda a: ~a}


def broadcast_shape(args):
    return np.broadcast_shapes(*[a.shape if isinstance(a, pf.Tensor) else () for a in args])


def run_case(name, args, params, rebuild, out_dtype=None, out_layout="contiguous"):
    """Check every form of `name` on `args`; rebuild() gives fresh copies of
    args (for the in-place form, which overwrites its first input)."""
    info, row = TABLE[name], ROWS[name]
    kind = info["kind"]
    fn = getattr(pf, name)
    dts = dispatch_dtypes(kind, args)
    if name == "clip":
        bounds = [v for v in params.values() if v is not None]
        comp, res = expected_dtypes(name, kind, dispatch_dtypes(kind, args + bounds))
    else:
        comp, res = expected_dtypes(name, kind, dts)
    if comp == "error":
        with pytest.raises(TypeError, match=r"^%s: not supported for dtypes? .*%s" % (name, res)):
            fn(*args, **params)
        return
    shape = broadcast_shape(args)
    what = "%s(%s)" % (name, ", ".join(
        "%s%s" % (a.dtype.name, a.shape) if isinstance(a, pf.Tensor) else repr(a)
        for a in args))
    got = fn(*args, **params)
    assert isinstance(got, pf.Tensor), what
    assert got.dtype.name == res, "%s: dtype %s, docs/dtypes.md says %s" % (what, got.dtype, res)
    trd = torch_result_dtype(kind, args)
    if trd is not None:
        assert res == trd, "%s: torch.result_type gives %s, pyframe %s" % (what, trd, res)
    want = oracle(name, row, args, dts, comp, res, params)
    assert_matches(got, want, res, what)

    # method form
    if info["method"] and isinstance(args[0], pf.Tensor):
        assert_identical(getattr(args[0], name)(*args[1:], **params), got, what + " method")

    # operators, reflected ones included (a Python scalar on the left)
    if name in BINARY_OPERATORS and not params:
        assert_identical(BINARY_OPERATORS[name](*args), got, what + " operator")
    if name in UNARY_OPERATORS and isinstance(args[0], pf.Tensor):
        assert_identical(UNARY_OPERATORS[name](args[0]), got, what + " operator")

    # out=
    if out_dtype is not None:
        o = make_tensor(np.zeros(shape, dtype=np_dtype(out_dtype)), out_layout)
        if KIND_RANK[res] > KIND_RANK[out_dtype]:
            with pytest.raises(TypeError, match=r"^%s: the result has dtype %s, which cannot be "
                               r"stored in the %s output" % (name, res, out_dtype)):
                fn(*args, out=o, **params)
        else:
            r = fn(*args, out=o, **params)
            assert r is o, what + " out= returns out"
            assert_matches(o, cast(want, out_dtype), coarser(res, comp),
                           what + " out=" + out_dtype)

    # in-place method and operator, on fresh copies
    if info["inplace"] and isinstance(args[0], pf.Tensor):
        fresh = rebuild()
        x = fresh[0]
        meth = getattr(x, name + "_")
        if tuple(x.shape) != tuple(shape):
            with pytest.raises(ValueError, match=r"^%s: the output has shape" % name):
                meth(*fresh[1:], **params)
        elif KIND_RANK[res] > KIND_RANK[x.dtype.name]:
            with pytest.raises(TypeError, match=r"^%s: the result has dtype %s" % (name, res)):
                meth(*fresh[1:], **params)
        else:
            xd = x.dtype.name
            assert meth(*fresh[1:], **params) is x, what + " in-place returns self"
            assert x.dtype.name == xd
            assert_matches(x, cast(want, xd), coarser(res, comp), what + " in-place")
            if name in INPLACE_OPERATORS and not params:
                fresh2 = rebuild()
                y = fresh2[0]
                r = getattr(y, INPLACE_OPERATORS[name])(*fresh2[1:])
                assert r is y
                assert_identical(y, x, what + " in-place operator")


# ------------------------------------------------------------ table <-> rows

def test_every_op_has_a_row():
    missing = sorted(n for n in TABLE if n not in ROWS)
    assert not missing, "ops in csrc/ops.def without a test row in tests/op_rows: %s" % missing
    stale = sorted(n for n in ROWS if n not in TABLE)
    assert not stale, "test rows for ops that are not in the op table: %s" % stale


def _test_functions(path):
    with open(os.path.join(ROOT, path)) as f:
        tree = ast.parse(f.read())
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_every_row_names_existing_tests():
    cache = {}
    problems = []
    for name, row in sorted(ROWS.items()):
        assert row.get("tests"), "%s: the row names no test" % name
        for entry in row["tests"]:
            path, _, func = entry.partition("::")
            if not os.path.isfile(os.path.join(ROOT, path)):
                problems.append("%s: %s does not exist" % (name, path))
                continue
            if path not in cache:
                cache[path] = _test_functions(path)
            if func not in cache[path]:
                problems.append("%s: %s has no function %s" % (name, path, func))
    assert not problems, "\n".join(problems)


def test_elementwise_rows_carry_an_oracle_and_a_domain():
    for name in EW_NAMES:
        row = ROWS[name]
        assert row["family"] == "elementwise", name
        assert callable(row["oracle"]), name
        assert len(row["domain"]) == TABLE[name]["nin"], name
        assert set(row["dtypes"]) <= set(NAMES), name
        assert set(row.get("params", {})) <= set(TABLE[name]["params"]), name


BAD_CASES = [(name, i) for name, row in sorted(ROWS.items()) for i in range(len(row["bad"]))]


@pytest.mark.parametrize("name,i", BAD_CASES, ids=["%s-%d" % c for c in BAD_CASES])
def test_bad_inputs_raise_naming_the_op(name, i):
    call, exc, pattern = ROWS[name]["bad"][i]
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    assert re.search(pattern, msg), "message %r does not match %r" % (msg, pattern)
    assert name in msg, "message %r does not name the op %r" % (msg, name)


def test_every_op_declares_bad_inputs():
    assert not [n for n, r in ROWS.items() if not r["bad"]]


# ------------------------------------------------------------ every dtype

@pytest.mark.parametrize("name", EW_NAMES)
def test_every_dtype(name):
    """Each dtype (each pair for binary ops) once, with broadcasting: result
    dtype from the docs' table, values from the oracle, and a TypeError where
    the kind rules refuse the combination."""
    info, row = TABLE[name], ROWS[name]
    nin = info["nin"]
    params = row.get("params", {})
    rng = np.random.default_rng(0)
    shapes = [(2, 3), (3,), (2, 1)][:nin] if nin > 1 else [(2, 3)]
    if nin == 1:
        combos = [(d,) for d in NAMES]
    elif nin == 2:
        combos = [(a, b) for a in NAMES for b in NAMES]
    else:
        combos = [("bool", a, b) for a in NAMES for b in NAMES] + \
                 [(c, "float32", "int64") for c in NAMES]
    for combo in combos:
        vals = [gen_values(rng, row, k, d, s) for k, (d, s) in enumerate(zip(combo, shapes))]
        args = [make_tensor(v, "contiguous") for v in vals]
        run_case(name, args, params, lambda: [make_tensor(v, "contiguous") for v in vals],
                 out_dtype=None)


# ------------------------------------------------------------ the sweep

@pytest.mark.parametrize("name", EW_NAMES)
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_sweep(name, data):
    info, row = TABLE[name], ROWS[name]
    kind, nin = info["kind"], info["nin"]
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    full = data.draw(st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple),
                     label="shape")
    scalar_at = data.draw(st.sampled_from([None, None] + list(range(nin))), label="scalar_at")
    dtypes = [data.draw(st.sampled_from(row["dtypes"]), label="dtype%d" % k) for k in range(nin)]
    shapes = [data.draw(sub_shape(full), label="shape%d" % k) for k in range(nin)]
    layouts = [data.draw(st.sampled_from(LAYOUTS), label="layout%d" % k) for k in range(nin)]
    same = nin == 2 and scalar_at is None and data.draw(st.integers(0, 4)) == 0
    if same:
        dtypes[1], shapes[1], layouts[1] = dtypes[0], shapes[0], layouts[0]
    vals = [None if k == scalar_at else gen_values(rng, row, k, dtypes[k], shapes[k])
            for k in range(nin)]
    if scalar_at is not None:
        strong = None
        for k in range(nin):
            if k != scalar_at and not (kind == "where" and k == 0):
                strong = dtypes[k] if strong is None else PROMOTE[strong, dtypes[k]]
        sk = data.draw(st.sampled_from(scalar_kinds(row, kind, scalar_at)), label="scalar kind")
        scalar = gen_scalar(rng, row, scalar_at, sk, strong)

    def build():
        ts = [scalar if k == scalar_at else make_tensor(vals[k], layouts[k]) for k in range(nin)]
        if same:
            ts[1] = ts[0]
        return ts

    args = build()
    out_dtype = data.draw(st.sampled_from(NAMES), label="out dtype")
    out_layout = data.draw(st.sampled_from(LAYOUTS), label="out layout")
    run_case(name, args, row.get("params", {}), build, out_dtype, out_layout)
