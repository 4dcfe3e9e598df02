"""Gradients of every differentiable op, driven by the op table.

Each row of tests/grad_rows/ is checked with gradcheck (central differences
in float64) and gradgradcheck, on contiguous leaves and on non-contiguous
ones; an op marked differentiable in csrc/ops.def without a row, or without
a backward rule in C, fails here."""
import numpy as np
import pytest

import pyframe as pf
from grad_rows import all_rows

ROWS = all_rows()
DIFFERENTIABLE = sorted(r["name"] for r in pf._C._op_table() if r["differentiable"])
LOW = {"any": (-2.0, 2.0), "positive": (0.3, 2.0), "unit": (-0.9, 0.9)}


def test_every_differentiable_op_has_a_gradient_row():
    covered = {r.op for r in ROWS}
    missing = [op for op in DIFFERENTIABLE if op not in covered]
    assert not missing, "differentiable ops without a row in tests/grad_rows/: %s" % missing
    unknown = sorted(covered - set(DIFFERENTIABLE))
    assert not unknown, "gradient rows for ops not marked differentiable: %s" % unknown


def test_every_differentiable_op_has_a_backward_rule():
    have = set(pf._C._bw_rules())
    missing = [op for op in DIFFERENTIABLE if op not in have]
    assert not missing, "differentiable ops without a backward rule in csrc/backward*.c: %s" \
        % missing


def make_arrays(row, rng):
    if row.make is not None:
        return [np.asarray(a, dtype=np.float64) for a in row.make(rng)]
    lo, hi = LOW[row.domain]
    return [rng.uniform(lo, hi, size=s) for s in row.shapes]


def leaf(arr, contiguous):
    """A float64 leaf holding arr's values; non-contiguous when asked (and possible)."""
    if contiguous or arr.ndim == 0 or arr.size <= 1:
        return pf.tensor(arr, dtype=pf.float64, requires_grad=True)
    if arr.ndim >= 2:
        view = np.ascontiguousarray(arr.T).T
    else:
        base = np.zeros(arr.size * 2)
        base[::2] = arr
        view = base[::2]
    t = pf.from_numpy(view).requires_grad_()
    return t


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
@pytest.mark.parametrize("contiguous", [True, False], ids=["contig", "strided"])
def test_gradient(row, contiguous):
    rng = np.random.default_rng(abs(hash(row.id)) % (2 ** 32))
    inputs = [leaf(a, contiguous) for a in make_arrays(row, rng)]
    assert pf.autograd.gradcheck(row.fn, tuple(inputs), atol=row.atol, rtol=row.rtol)
    if row.second:
        assert pf.autograd.gradgradcheck(row.fn, tuple(inputs), atol=row.atol, rtol=row.rtol)


# ------------------------------------------------------------------ random shapes

from hypothesis import given, settings, HealthCheck, strategies as st  # noqa: E402

EW_KINDS = ("ufloat", "usame", "barith", "bfloat")
EW_OPS = sorted(r["name"] for r in pf._C._op_table()
                if r["differentiable"] and r["kind"] in EW_KINDS)
DOMAIN = {}
for _r in ROWS:
    DOMAIN.setdefault(_r.op, _r.domain)


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast together (either side may be the smaller)."""
    nd = draw(st.integers(0, 3))
    full = [draw(st.integers(1, 3)) for _ in range(nd)]
    def side():
        keep = draw(st.integers(0, nd))
        return tuple(d if draw(st.booleans()) else 1 for d in full[nd - keep:])
    return side(), side()


@pytest.mark.parametrize("op", EW_OPS)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes=broadcast_pair(), contiguous=st.booleans(), seed=st.integers(0, 2 ** 31))
def test_elementwise_gradients_on_random_broadcasts(op, shapes, contiguous, seed):
    # clip needs its bounds; every other op runs with its defaults
    fn = (lambda x: pf.clip(x, -0.5, 0.5)) if op == "clip" else getattr(pf, op)
    nin = next(r["nin"] for r in pf._C._op_table() if r["name"] == op)
    lo, hi = LOW[DOMAIN.get(op, "any")]
    rng = np.random.default_rng(seed)
    inputs = [leaf(rng.uniform(lo, hi, size=s), contiguous) for s in shapes[:nin]]
    assert pf.autograd.gradcheck(fn, tuple(inputs))
