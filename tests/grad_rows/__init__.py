"""Gradient test rows: every differentiable op of the op table (flag D in
csrc/ops.def) has at least one row here, in the module of its family;
``tests/test_grad_table.py`` fails for a differentiable op without one.

A row says how to call the op on float64 leaf tensors; the driver checks
its gradient with ``pf.autograd.gradcheck`` (central differences) and, unless
``second=False``, its second derivative with ``gradgradcheck`` -- on
contiguous inputs and again on non-contiguous leaves (transposed or strided
views of NumPy arrays).

    GradRow("sum", lambda x: pf.sum(x, axis=1), [(3, 4)])
    GradRow("power", lambda a, b: pf.power(a, b), [(3, 1), (4,)], domain="positive")

``domain`` picks the input values: "any" uniform(-2, 2), "positive"
uniform(0.3, 2), "unit" uniform(-0.9, 0.9); ``make(rng)`` may return the
input arrays itself (distinct values for sort, ties avoided for max...).
Integer arguments (indices) are built inside ``fn``.
"""
import importlib
from dataclasses import dataclass, field
from typing import Callable, Optional

FAMILIES = ["elementwise", "reduce", "linalg", "shape_ops", "gather", "nn_conv", "nn_ops"]


@dataclass
class GradRow:
    op: str
    fn: Callable
    shapes: list
    domain: str = "any"
    second: bool = True
    make: Optional[Callable] = None
    note: str = ""
    atol: float = 1e-5
    rtol: float = 1e-3
    extra: dict = field(default_factory=dict)

    @property
    def id(self):
        return "%s-%s%s" % (self.op, "x".join(
            "".join(str(d) for d in s) if len(s) else "s" for s in self.shapes),
            "-" + self.note if self.note else "")


def all_rows():
    rows = []
    for fam in FAMILIES:
        try:
            mod = importlib.import_module("grad_rows." + fam)
        except ModuleNotFoundError as e:
            if e.name != "grad_rows." + fam:
                raise
            continue
        rows.extend(mod.ROWS)
    return rows
