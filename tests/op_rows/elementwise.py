"""Rows for the elementwise ops of the op table (kinds ufloat ... where).

Besides ``tests`` and ``bad`` (see ``__init__.py``), an elementwise row
carries what the sweep in ``tests/test_op_table.py`` needs:

    "oracle":  f(*arrays, **params) -> ndarray.  The sweep hands it the inputs
               already converted to the dtype the op computes in: float64
               arrays for float computation (holding exactly the float16 /
               bfloat16 / float32 / float64 values the kernel sees), arrays of
               the integer or bool compute dtype otherwise, so that NumPy's
               wrapping integer arithmetic is the reference.
    "domain":  one (lo, hi) per input for float values; integer inputs use
               the integers in [lo, hi] (clipped to the dtype's range), or the
               dtype's whole range half of the time where "int_domain" is
               "full".  "int_domain" may also give its own (lo, hi) per input.
    "dtypes":  the dtypes every input may take (every combination is valid).
    "params":  keyword arguments the sweep passes (defaults otherwise).
    "discrete": draw floats as multiples of 0.5 half of the time, so that
               ties (round), equal operands (comparisons) and zeros appear.
    "specials": sprinkle NaN, inf and -inf into float inputs.
"""
import math

import numpy as np

import pyframe as pf

ALL = ("bool", "uint8", "int8", "int16", "int32", "int64",
       "float16", "bfloat16", "float32", "float64")
NUMERIC = ALL[1:]
INTEGRAL = ALL[:6]                 # bool and the integers
FLOATS = ALL[6:]

SWEEP = ["tests/test_op_table.py::test_sweep", "tests/test_op_table.py::test_every_dtype"]
VMATH = "tests/test_vmath.py::test_float32_ulp_error_on_a_dense_grid"
VMATH_SPECIAL = "tests/test_vmath.py::test_float32_special_values"
TE = "tests/test_elementwise.py::"

_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _gelu(x, approximate="none"):
    if approximate in ("tanh", True):
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    # erfc keeps full relative accuracy for x << 0, where 1 + erf would cancel
    return 0.5 * x * _erfc(-x / math.sqrt(2.0))


def _softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.log1p(np.exp(beta * x)) / beta)


def _clip(x, min=None, max=None):
    # in float64, so that NumPy's own rules for Python-int bounds stay out of it
    y = np.asarray(x, dtype=np.float64)
    if min is not None:
        y = np.maximum(y, min)
    if max is not None:
        y = np.minimum(y, max)
    return y


def _relu(x):
    return np.where(x < 0, np.zeros_like(x), x)


def _relu6(x):
    return np.where(x < 0, np.zeros_like(x), np.where(x > 6, np.full_like(x, 6), x))


def _power(a, b):
    """NumPy's power, extended to negative integer exponents the way pyframe
    (and PyTorch, for tensor exponents) defines them: the truncated value of
    a ** b, which is 0 unless |a| == 1."""
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        return np.power(a, b)
    a, b = np.broadcast_arrays(a, b)
    neg = b < 0
    r = np.power(a, np.where(neg, np.zeros_like(b), b))
    one = np.ones_like(r)
    trunc = np.where(a == 1, one, np.zeros_like(r))
    if a.dtype.kind == "i":
        trunc = np.where(a == -1, np.where(b % 2 == 1, -one, one), trunc)
    return np.where(neg, trunc, r)


def _sign(x):
    if x.dtype == np.bool_:
        return x
    return np.sign(x)


# -------------------------------------------------------------- bad inputs
#
# Generated per kind; every regex starts with the op's own name, and the
# messages say what was received.

def _bad_common(name, nin, dtype=pf.float32, kw=None):
    fn = getattr(pf, name)
    ones = [pf.ones(3, dtype=dtype)] * nin
    kw = kw or {}
    bad = [
        (lambda: fn(), TypeError,
         r"^%s: expected %d tensor argument\(s\), got 0" % (name, nin)),
        (lambda: fn(*ones[:-1], "abc", **kw), TypeError,
         r"^%s: cannot make a tensor from str" % name),
        (lambda: fn(*ones, bogus=1), TypeError, r"^%s: unexpected keyword argument 'bogus'" % name),
        (lambda: fn(*ones, out=[0.0, 0.0, 0.0], **kw), TypeError,
         r"^%s: out must be a pyframe Tensor; got list" % name),
        (lambda: fn(*ones, out=pf.zeros(2, dtype=pf.bool), **kw), ValueError,
         r"^%s: the output has shape \(2,\) but the inputs broadcast to \(3,\)" % name),
    ]
    if nin >= 2:
        bad.append((lambda: fn(*ones[:-1], pf.ones(2, dtype=dtype)), ValueError,
                    r"^%s: shapes \(3,\) and \(2,\) cannot be broadcast together" % name))
    return bad


def _bad_inplace(name, nin, dtype=pf.float32, kw=None):
    """The in-place method refuses out= and outputs of the wrong shape."""
    meth = name + "_"
    kw = kw or {}
    return [
        (lambda: getattr(pf.ones(3, dtype=dtype), meth)(*[pf.ones(3, dtype=dtype)] * (nin - 1),
                                                        out=pf.ones(3)),
         TypeError, r"^%s: unexpected keyword argument 'out'" % name),
        (lambda: getattr(pf.ones(1, dtype=dtype), meth)(*[pf.ones(3, dtype=dtype)] * (nin - 1))
         if nin > 1 else getattr(pf.ones(3, dtype=dtype).expand(2, 3), meth)(**kw),
         ValueError if nin > 1 else RuntimeError,
         (r"^%s: the output has shape \(1,\) but the inputs broadcast to \(3,\)" % name)
         if nin > 1 else (r"^%s: cannot write into an expanded \(broadcast\) tensor" % name)),
    ]


def _bad_float_result(name, nin):
    """A float result cannot go into an integer output."""
    fn = getattr(pf, name)
    ints = [pf.ones(3, dtype=pf.int32)] * nin
    return [
        (lambda: fn(*ints, out=pf.zeros(3, dtype=pf.int64)), TypeError,
         r"^%s: the result has dtype float32, which cannot be stored in the int64 output" % name),
    ]


def _bad_int_scalar(name):
    """A Python int that does not fit the tensor's dtype (NEP 50)."""
    fn = getattr(pf, name)
    return [
        (lambda: fn(pf.ones(3, dtype=pf.uint8), 300), ValueError,
         r"^%s: Python integer 300 is out of range for dtype uint8" % name),
        (lambda: fn(pf.ones(3, dtype=pf.int8), -129), ValueError,
         r"^%s: Python integer -129 is out of range for dtype int8" % name),
    ]


def _bad_bool(name, nin):
    fn = getattr(pf, name)
    args = [pf.ones(3, dtype=pf.bool)] * nin
    got = ", ".join(["bool"] * nin)
    return [(lambda: fn(*args), TypeError,
             r"^%s: not supported for dtypes? %s; " % (name, got))]


def _bad_float_bitwise(name, nin):
    fn = getattr(pf, name)
    return [
        (lambda: fn(*[pf.ones(3)] * nin), TypeError,
         r"^%s: not supported for dtypes? float32.*bitwise operations need integer or bool" % name),
        (lambda: fn(*[pf.ones(3, dtype=pf.int8)] * (nin - 1), 1.5) if nin > 1
         else fn(pf.ones(3, dtype=pf.float16)), TypeError,
         r"^%s: not supported for dtypes? (int8, )?float(32|16)" % name),
    ]


def _bad_param(name, param, value, exc, msg):
    fn = getattr(pf, name)
    return [(lambda: fn(pf.ones(3), **{param: value}), exc, "^%s: %s" % (name, msg))]


# ------------------------------------------------------------------- rows

def _bad_dtype(kind):
    return pf.int32 if kind in ("ubitwise", "bitwise") else pf.float32


def _row(oracle, kind, nin, domain, dtypes=ALL, tests=(), bad=(), **extra):
    name = extra.pop("_name")
    row = {
        "oracle": oracle,
        "domain": list(domain) if nin > 1 or isinstance(domain[0], tuple) else [domain],
        "dtypes": dtypes,
        "tests": SWEEP + list(tests),
        "bad": _bad_common(name, nin, _bad_dtype(kind), extra.get("params")) + list(bad),
    }
    row.update(extra)
    if kind in ("ufloat", "bfloat"):
        row["bad"] += _bad_float_result(name, nin)
    return row


ROWS = {}


def _add(name, oracle, kind, nin, domain, inplace=True, **kw):
    row = _row(oracle, kind, nin, domain, _name=name, **kw)
    if inplace:
        row["bad"] += _bad_inplace(name, nin, _bad_dtype(kind), kw.get("params"))
    ROWS[name] = row


# unary, float result --------------------------------------------------------
_add("exp", np.exp, "ufloat", 1, (-10, 10), tests=[VMATH, VMATH_SPECIAL])
_add("exp2", np.exp2, "ufloat", 1, (-14, 14))
_add("log", np.log, "ufloat", 1, (0, 100), tests=[VMATH, VMATH_SPECIAL])
_add("log2", np.log2, "ufloat", 1, (0, 100))
_add("log10", np.log10, "ufloat", 1, (0, 100))
_add("log1p", np.log1p, "ufloat", 1, (-1, 50))
_add("expm1", np.expm1, "ufloat", 1, (-10, 10))
_add("sqrt", np.sqrt, "ufloat", 1, (-1, 100))
_add("rsqrt", lambda x: 1.0 / np.sqrt(x), "ufloat", 1, (0, 100))
_add("reciprocal", lambda x: 1.0 / x, "ufloat", 1, (-10, 10), discrete=True)
_add("sin", np.sin, "ufloat", 1, (-10, 10))
_add("cos", np.cos, "ufloat", 1, (-10, 10))
_add("tan", np.tan, "ufloat", 1, (-1.5, 1.5))
_add("arcsin", np.arcsin, "ufloat", 1, (-1, 1))
_add("arccos", np.arccos, "ufloat", 1, (-1, 1))
_add("arctan", np.arctan, "ufloat", 1, (-10, 10), specials=True)
_add("sinh", np.sinh, "ufloat", 1, (-10, 10))
_add("cosh", np.cosh, "ufloat", 1, (-10, 10))
_add("tanh", np.tanh, "ufloat", 1, (-10, 10), specials=True, tests=[VMATH, VMATH_SPECIAL])
_add("sigmoid", _sigmoid, "ufloat", 1, (-30, 30), specials=True,
     tests=[VMATH, VMATH_SPECIAL])
_add("silu", lambda x: x * _sigmoid(x), "ufloat", 1, (-30, 30))
_add("gelu", _gelu, "ufloat", 1, (-10, 10), tests=[VMATH, VMATH_SPECIAL,
                                                     TE + "test_gelu_tanh_approximation"],
     bad=_bad_param("gelu", "approximate", "fast", ValueError,
                    r"approximate must be 'none' or 'tanh' \(or a bool\); got 'fast'"))
_add("elu", lambda x, alpha=1.0: np.where(x > 0, x, alpha * np.expm1(x)), "ufloat", 1,
     (-10, 10), params={"alpha": 0.5},
     bad=_bad_param("elu", "alpha", "1", TypeError, r"alpha must be a number; got str"))
_add("selu", lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)), "ufloat", 1,
     (-10, 10))
_add("softplus", _softplus, "ufloat", 1, (-30, 30), params={"beta": 2.0, "threshold": 15.0},
     tests=[TE + "test_softplus_defaults_and_threshold"],
     bad=_bad_param("softplus", "beta", [1.0], TypeError, r"beta must be a number; got list"))
_add("leaky_relu", lambda x, negative_slope=0.01: np.where(x > 0, x, negative_slope * x),
     "ufloat", 1, (-10, 10), params={"negative_slope": 0.2},
     bad=_bad_param("leaky_relu", "negative_slope", True, TypeError,
                    r"negative_slope must be a number; got bool"))
_add("erf", _erf, "ufloat", 1, (-4, 4))

# unary, result in the input's dtype ------------------------------------------
_add("negative", np.negative, "usame", 1, (-100, 100), dtypes=NUMERIC, int_domain="full",
     bad=_bad_bool("negative", 1))
_add("abs", np.abs, "usame", 1, (-100, 100), int_domain="full", specials=True)
_add("sign", _sign, "usame", 1, (-3, 3), discrete=True, specials=True)
_add("square", np.square, "usame", 1, (-100, 100), int_domain="full")
_add("floor", np.floor, "usame", 1, (-100, 100), discrete=True)
_add("ceil", np.ceil, "usame", 1, (-100, 100), discrete=True)
_add("round", lambda x, decimals=0: np.round(x, decimals), "usame", 1, (-100, 100),
     discrete=True, tests=[TE + "test_round_decimals", TE + "test_round_integers_exactly"],
     bad=_bad_param("round", "decimals", 1.5, TypeError,
                    r"decimals must be an integer; got 1.5"))
_add("trunc", np.trunc, "usame", 1, (-100, 100), discrete=True)
_add("relu", _relu, "usame", 1, (-10, 10), int_domain="full", specials=True)
_add("relu6", _relu6, "usame", 1, (-10, 10), discrete=True, specials=True)
_add("clip", _clip, "usame", 1, (-5, 5), params={"min": -1, "max": 3}, discrete=True,
     specials=True,
     tests=[TE + "test_clip_bounds", TE + "test_clip_integer_tensor_with_float_bounds_promotes",
            TE + "test_clip_tensor_bounds"],
     bad=[(lambda: pf.clip(pf.ones(3)), ValueError, r"^clip: give at least one of min and max"),
          (lambda: pf.clip(pf.ones(3), "a"), TypeError, r"^clip: min must be a number"),
          (lambda: pf.clip(pf.ones(3, dtype=pf.uint8), 300), ValueError,
           r"^clip: min 300 is above the largest uint8 \(255\)"),
          (lambda: pf.clip(pf.ones(3, dtype=pf.int8), None, -200), ValueError,
           r"^clip: max -200 is below the smallest int8 \(-128\)")])

# unary predicates and negations ----------------------------------------------
_add("isnan", np.isnan, "upred", 1, (-10, 10), specials=True, inplace=False)
_add("isinf", np.isinf, "upred", 1, (-10, 10), specials=True, inplace=False)
_add("isfinite", np.isfinite, "upred", 1, (-10, 10), specials=True, inplace=False)
_add("logical_not", np.logical_not, "ulogical", 1, (-2, 2), discrete=True, specials=True)
_add("bitwise_not", np.invert, "ubitwise", 1, (-100, 100), dtypes=INTEGRAL, int_domain="full",
     bad=_bad_float_bitwise("bitwise_not", 1))

# binary, promoted result ------------------------------------------------------
_FULL2 = dict(int_domain="full")
_add("add", np.add, "barith", 2, [(-100, 100)] * 2, discrete=True, **_FULL2,
     tests=[TE + "test_weak_python_scalars_nep50"], bad=_bad_int_scalar("add"))
_add("subtract", np.subtract, "barith", 2, [(-100, 100)] * 2, dtypes=NUMERIC, **_FULL2,
     bad=_bad_bool("subtract", 2) + _bad_int_scalar("subtract"))
_add("multiply", np.multiply, "barith", 2, [(-100, 100)] * 2, **_FULL2,
     tests=[TE + "test_weak_python_scalars_nep50"], bad=_bad_int_scalar("multiply"))
_add("floor_divide", np.floor_divide, "barith", 2, [(-50, 50)] * 2, dtypes=NUMERIC,
     discrete=True, **_FULL2,
     tests=[TE + "test_integer_division_by_zero_and_overflow_never_trap",
            TE + "test_floor_divide_and_remainder_signs_follow_python"],
     bad=_bad_bool("floor_divide", 2))
_add("remainder", np.remainder, "barith", 2, [(-50, 50)] * 2, dtypes=NUMERIC, discrete=True,
     **_FULL2,
     tests=[TE + "test_integer_division_by_zero_and_overflow_never_trap",
            TE + "test_floor_divide_and_remainder_signs_follow_python"],
     bad=_bad_bool("remainder", 2))
_add("power", _power, "barith", 2, [(0.25, 4), (-3, 3)], dtypes=NUMERIC,
     int_domain=[(-1 << 62, 1 << 62), (0, 6)], tests=[TE + "test_integer_power"],
     bad=_bad_bool("power", 2))
_add("maximum", np.maximum, "barith", 2, [(-10, 10)] * 2, discrete=True, specials=True,
     **_FULL2, tests=[TE + "test_maximum_minimum_propagate_nan"])
_add("minimum", np.minimum, "barith", 2, [(-10, 10)] * 2, discrete=True, specials=True,
     **_FULL2, tests=[TE + "test_maximum_minimum_propagate_nan"])

# binary, float result ---------------------------------------------------------
_add("divide", np.divide, "bfloat", 2, [(-100, 100)] * 2, discrete=True,
     tests=[TE + "test_operators_match_functions"])
_add("arctan2", np.arctan2, "bfloat", 2, [(-10, 10)] * 2, discrete=True, specials=True)

# comparisons -------------------------------------------------------------------
_CMP = dict(discrete=True, specials=True, inplace=False, int_domain="full",
            tests=[TE + "test_comparisons_return_tensors_and_tensors_stay_hashable",
                   TE + "test_comparison_with_out_of_range_python_int"])
_add("equal", np.equal, "compare", 2, [(-3, 3)] * 2, **_CMP)
_add("not_equal", np.not_equal, "compare", 2, [(-3, 3)] * 2, **_CMP)
_add("less", np.less, "compare", 2, [(-3, 3)] * 2, **_CMP)
_add("less_equal", np.less_equal, "compare", 2, [(-3, 3)] * 2, **_CMP)
_add("greater", np.greater, "compare", 2, [(-3, 3)] * 2, **_CMP)
_add("greater_equal", np.greater_equal, "compare", 2, [(-3, 3)] * 2, **_CMP)

# logical and bitwise -------------------------------------------------------------
_add("logical_and", np.logical_and, "logical", 2, [(-2, 2)] * 2, discrete=True, specials=True)
_add("logical_or", np.logical_or, "logical", 2, [(-2, 2)] * 2, discrete=True, specials=True)
_add("logical_xor", np.logical_xor, "logical", 2, [(-2, 2)] * 2, discrete=True,
     specials=True)
_add("bitwise_and", np.bitwise_and, "bitwise", 2, [(-100, 100)] * 2, dtypes=INTEGRAL,
     **_FULL2, bad=_bad_float_bitwise("bitwise_and", 2))
_add("bitwise_or", np.bitwise_or, "bitwise", 2, [(-100, 100)] * 2, dtypes=INTEGRAL, **_FULL2,
     bad=_bad_float_bitwise("bitwise_or", 2))
_add("bitwise_xor", np.bitwise_xor, "bitwise", 2, [(-100, 100)] * 2, dtypes=INTEGRAL,
     **_FULL2, bad=_bad_float_bitwise("bitwise_xor", 2))

# where(cond, x, y) ---------------------------------------------------------------
_add("where", lambda c, x, y: np.where(c, x, y), "where", 3, [(-1, 1), (-100, 100), (-100, 100)],
     discrete=True, specials=True, inplace=False, int_domain="full",
     tests=[TE + "test_where_scalars_and_condition_dtypes"])
