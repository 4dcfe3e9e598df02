"""Rows for reductions, scans and softmax (csrc/reduce.c)."""
import pyframe as pf

T = "tests/test_reduce.py::"
REDUCTIONS = T + "test_reduction_matches_numpy"
PATHS = T + "test_reduction_paths_match_numpy"
SEMANTICS = T + "test_dtype_rules_and_arguments"
THREADS = T + "test_same_bits_on_one_and_two_threads"
ARG = T + "test_argmax_argmin_match_numpy"
ARG_TIES = T + "test_argmax_ties_and_nans_across_blocks"


def _axis_bad(op):
    return [
        (lambda: getattr(pf, op)(pf.ones(2, 3), axis=2), IndexError,
         op + r": axis 2 is out of range for a tensor with 2 dimension\(s\); expected -2 <= "
         r"axis < 2"),
        (lambda: getattr(pf, op)(pf.ones(2, 3), axis=(1, -1)), ValueError,
         op + r": axis 1 is given more than once"),
        (lambda: getattr(pf, op)(pf.ones(2, 3), axis="0"), TypeError,
         op + r": axis must be an integer; got str"),
    ]


def _empty_bad(op):
    return [(lambda: getattr(pf, op)(pf.zeros(2, 0), axis=1), ValueError,
             op + r": the reduced axis is empty \(input shape \(2, 0\), reducing axes \(1,\)\)")]


def _one_axis_bad(op):
    return [
        (lambda: getattr(pf, op)(pf.ones(2, 3), axis=(0, 1)), TypeError,
         op + r": axis must be None or an int; got a tuple"),
        (lambda: getattr(pf, op)(pf.ones(2, 3), axis=-3), IndexError,
         op + r": axis -3 is out of range for a tensor with 2 dimension\(s\)"),
    ]


ROWS = {
    "sum": {
        "tests": [PATHS, REDUCTIONS, SEMANTICS, THREADS, T + "test_out_argument"],
        "bad": _axis_bad("sum") + [
            (lambda: pf.sum(pf.ones(2, 3), axis=0, out=pf.zeros(2)), ValueError,
             r"sum: out has shape \(2,\) but the result has shape \(3,\)"),
            (lambda: pf.sum(pf.ones(2), dtype="float7"), TypeError, r"sum: .*float7"),
        ],
    },
    "mean": {
        "tests": [PATHS, REDUCTIONS, SEMANTICS, THREADS],
        "bad": _axis_bad("mean") + [
            (lambda: pf.mean(pf.ones(2), dtype=pf.int32), TypeError,
             r"mean: dtype must be a floating dtype .* got int32"),
        ],
    },
    "prod": {
        "tests": [REDUCTIONS, SEMANTICS, THREADS],
        "bad": _axis_bad("prod") + [
            (lambda: pf.prod(pf.ones(2), out=[1.0]), TypeError,
             r"prod: out must be a pyframe Tensor; got list"),
        ],
    },
    "max": {
        "tests": [PATHS, REDUCTIONS, SEMANTICS, THREADS],
        "bad": _axis_bad("max") + _empty_bad("max"),
    },
    "min": {
        "tests": [PATHS, REDUCTIONS, SEMANTICS],
        "bad": _axis_bad("min") + _empty_bad("min"),
    },
    "argmax": {
        "tests": [PATHS, ARG, ARG_TIES, SEMANTICS, THREADS],
        "bad": _one_axis_bad("argmax") + _empty_bad("argmax"),
    },
    "argmin": {
        "tests": [ARG, ARG_TIES, SEMANTICS],
        "bad": _one_axis_bad("argmin") + _empty_bad("argmin"),
    },
    "var": {
        "tests": [PATHS, REDUCTIONS, SEMANTICS, THREADS],
        "bad": _axis_bad("var") + [
            (lambda: pf.var(pf.ones(3), ddof="1"), TypeError,
             r"var: ddof must be a number .*got str"),
            (lambda: pf.var(pf.ones(3), ddof=1, correction=1), TypeError,
             r"var: give only one of ddof, correction"),
            (lambda: pf.var(pf.ones(3), correction=float("nan")), ValueError,
             r"var: correction must be finite; got nan"),
        ],
    },
    "std": {
        "tests": [REDUCTIONS, SEMANTICS],
        "bad": _axis_bad("std") + [
            (lambda: pf.std(pf.ones(3), ddof=None, unbiased="no"), TypeError,
             r"std: unbiased must be True or False; got str"),
        ],
    },
    "logsumexp": {
        "tests": [PATHS, REDUCTIONS, THREADS],
        "bad": _axis_bad("logsumexp"),
    },
    "norm": {
        "tests": [PATHS, T + "test_norm_matches_numpy", SEMANTICS, THREADS],
        "bad": _axis_bad("norm") + [
            (lambda: pf.norm(pf.ones(2, 2), ord="nuc"), ValueError,
             r"norm: ord='nuc' is not supported"),
            (lambda: pf.norm(pf.ones(2, 2), ord=True), TypeError,
             r"norm: ord must be None, 'fro' or a real number .*got bool"),
            (lambda: pf.norm(pf.ones(2, 2), ord=1, p=2), TypeError,
             r"norm: give ord or p"),
            (lambda: pf.norm(pf.zeros(0), ord=float("inf")), ValueError,
             r"norm: the reduced axis is empty \(input shape \(0,\), reducing axes \(0,\)\)"),
        ],
    },
    "all": {
        "tests": [REDUCTIONS, SEMANTICS],
        "bad": _axis_bad("all") + [
            (lambda: pf.all(pf.ones(2), keepdims="yes"), TypeError,
             r"all: keepdims must be True or False; got str"),
        ],
    },
    "any": {
        "tests": [PATHS, REDUCTIONS, SEMANTICS],
        "bad": _axis_bad("any"),
    },
    "cumsum": {
        "tests": [T + "test_cumsum_cumprod_match_numpy", SEMANTICS, T + "test_out_argument"],
        "bad": _one_axis_bad("cumsum") + [
            (lambda: pf.cumsum(pf.ones(2), out=pf.zeros(3)), ValueError,
             r"cumsum: out has shape \(3,\) but the result has shape \(2,\)"),
        ],
    },
    "cumprod": {
        "tests": [T + "test_cumsum_cumprod_match_numpy", SEMANTICS],
        "bad": _one_axis_bad("cumprod"),
    },
    "softmax": {
        "tests": [T + "test_softmax_matches_numpy", T + "test_softmax_edge_values", THREADS],
        "bad": _one_axis_bad("softmax") + [
            (lambda: pf.softmax(pf.ones(2), dtype=pf.int32), TypeError,
             r"softmax: dtype must be a floating dtype .*got int32"),
        ],
    },
    "log_softmax": {
        "tests": [T + "test_softmax_matches_numpy", T + "test_softmax_edge_values", THREADS],
        "bad": _one_axis_bad("log_softmax") + [
            (lambda: pf.log_softmax(pf.ones(2), bogus=1), TypeError,
             r"log_softmax: unexpected keyword argument 'bogus'"),
        ],
    },
}
