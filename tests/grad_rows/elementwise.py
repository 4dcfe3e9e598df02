"""Gradient rows of the elementwise ops (rules in csrc/backward.c)."""
import pyframe as pf
from grad_rows import GradRow

_UNARY_ANY = ["exp", "exp2", "expm1", "sin", "cos", "arctan", "sinh", "cosh", "tanh", "sigmoid",
              "silu", "gelu", "elu", "selu", "softplus", "leaky_relu", "erf", "negative", "abs",
              "sign", "square", "floor", "ceil", "round", "trunc", "relu", "relu6"]
_UNARY_POS = ["log", "log2", "log10", "log1p", "sqrt", "rsqrt", "reciprocal"]
_UNARY_UNIT = ["arcsin", "arccos", "tan"]

ROWS = []
for _n in _UNARY_ANY:
    ROWS.append(GradRow(_n, getattr(pf, _n), [(3, 4)]))
for _n in _UNARY_POS:
    ROWS.append(GradRow(_n, getattr(pf, _n), [(3, 4)], domain="positive"))
for _n in _UNARY_UNIT:
    ROWS.append(GradRow(_n, getattr(pf, _n), [(3, 4)], domain="unit"))

ROWS += [
    # parameters and the other gelu formula
    GradRow("gelu", lambda x: pf.gelu(x, approximate="tanh"), [(5,)], note="tanh"),
    GradRow("elu", lambda x: pf.elu(x, alpha=0.7), [(5,)], note="alpha"),
    GradRow("leaky_relu", lambda x: pf.leaky_relu(x, negative_slope=0.2), [(5,)], note="slope"),
    GradRow("softplus", lambda x: pf.softplus(x, beta=2.0, threshold=1.5), [(6,)],
            note="threshold"),
    GradRow("clip", lambda x: pf.clip(x, -0.5, 0.8), [(3, 4)]),
    GradRow("clip", lambda x, lo, hi: pf.clip(x, lo, hi), [(3, 4), (4,), (3, 1)],
            note="tensor-bounds"),
    # binary, with broadcasting both ways and Python scalars
    GradRow("add", lambda a, b: pf.add(a, b), [(3, 4), (4,)]),
    GradRow("add", lambda a: a + 2.5, [(3,)], note="scalar"),
    GradRow("subtract", lambda a, b: a - b, [(3, 1), (1, 4)]),
    GradRow("subtract", lambda a: 1.0 - a, [(3,)], note="rscalar"),
    GradRow("multiply", lambda a, b: a * b, [(2, 3, 4), (3, 1)]),
    GradRow("divide", lambda a, b: a / b, [(3, 4), (4,)], domain="positive"),
    GradRow("divide", lambda a: 2.0 / a, [(3,)], domain="positive", note="rscalar"),
    GradRow("floor_divide", lambda a, b: pf.floor_divide(a, b), [(3, 4), (4,)],
            domain="positive"),
    GradRow("remainder", lambda a, b: pf.remainder(a, b), [(3, 4), (4,)], domain="positive"),
    GradRow("power", lambda a, b: pf.power(a, b), [(3, 1), (4,)], domain="positive"),
    GradRow("power", lambda a: a ** 3, [(4,)], note="int-exponent"),
    GradRow("power", lambda b: 2.0 ** b, [(4,)], note="scalar-base"),
    GradRow("maximum", lambda a, b: pf.maximum(a, b), [(3, 4), (4,)]),
    GradRow("minimum", lambda a, b: pf.minimum(a, b), [(3, 4), (3, 1)]),
    GradRow("arctan2", lambda a, b: pf.arctan2(a, b), [(3, 4), (4,)]),
    GradRow("where", lambda a, b: pf.where(a > 0, a, b), [(3, 4), (4,)]),
]
