"""Rows for composite ops built from elementwise ops (csrc/args.c)."""
import pyframe as pf

ROWS = {
    "isclose": {
        "tests": ["tests/test_composite.py::test_isclose_matches_numpy"],
        "bad": [
            (lambda: pf.isclose(pf.ones(3)), TypeError, r"isclose: missing required argument 'b'"),
            (lambda: pf.isclose(pf.ones(3), pf.ones(2)), ValueError,
             r"isclose: shapes \(3,\) and \(2,\) cannot be broadcast"),
            (lambda: pf.isclose(pf.ones(3), pf.ones(3), rtol="x"), TypeError,
             r"isclose: rtol must be a real number; got str"),
        ],
    },
}
