"""Test rows for the op table (csrc/ops.def), one module per op family.

Every op in ``pyframe._C._op_table()`` must have a row in exactly one of the
family modules below; ``tests/test_op_table.py`` fails for an op without one.

A row is a dict:

    "opname": {
        # where the op's values are checked against an independent oracle
        # (NumPy in float64, or finite differences / torch where stated):
        "tests": ["tests/test_reduce.py::test_sum_matches_numpy", ...],
        # bad inputs: (callable, exception type, regex the message must match);
        # the regex must name the op, and the message must say what was received
        "bad": [(lambda: pf.sum(pf.ones(3), axis=5), IndexError, r"sum: axis 5 is out of range")],
    }

Elementwise rows carry more (an oracle and a domain) and drive the hypothesis
sweep directly; see ``elementwise.py``.
"""
import importlib

FAMILIES = ["elementwise", "composite", "reduce", "linalg", "shape_ops", "gather", "nn_conv", "nn_ops"]


def all_rows():
    rows = {}
    for fam in FAMILIES:
        try:
            mod = importlib.import_module("op_rows." + fam)
        except ModuleNotFoundError as e:
            if e.name != "op_rows." + fam:
                raise
            continue
        for name, row in mod.ROWS.items():
            assert name not in rows, "op %r has rows in two families" % name
            rows[name] = dict(row, family=fam)
    return rows
