"""Gradient rows of the gathers, scatters and sorts (rules in
csrc/backward_gather.c).  Index arguments are built inside the functions;
sort and topk get inputs without near-ties (``_spread``), so that central
differences do not reorder them."""
import numpy as np

import pyframe as pf
from grad_rows import GradRow


def _i(a):
    return pf.tensor(np.array(a, dtype=np.int64))


def _spread(*shapes):
    """Inputs with distinct values at least 0.1 apart, in random order."""
    def make(rng):
        out = []
        for s in shapes:
            n = int(np.prod(s))
            out.append((rng.permutation(n) * 0.1 - 0.05 * n).reshape(s))
        return out
    return make


IDX_23 = [[0, 2, 2], [1, 1, 0]]

ROWS = [
    # take_along_axis: default axis -1, axis 0, repeated and negative indices,
    # broadcasting either way, axis None
    GradRow("take_along_axis", lambda a: pf.take_along_axis(a, _i(IDX_23)), [(2, 3)]),
    GradRow("take_along_axis", lambda a: pf.take_along_axis(a, _i([[1, -1, 0, 1]]), axis=0),
            [(2, 4)], note="axis0-neg"),
    GradRow("take_along_axis", lambda a: pf.take_along_axis(a, _i([[0], [3], [3]]), axis=1),
            [(1, 4)], note="arr-bcast"),
    GradRow("take_along_axis", lambda a: pf.take_along_axis(a, _i([[2, 0]]), axis=1), [(3, 4)],
            note="idx-bcast"),
    GradRow("take_along_axis", lambda a: pf.take_along_axis(a, _i([0, 5, 5]), axis=None),
            [(2, 3)], note="axis-none"),
    GradRow("take_along_axis", lambda a: a.take_along_axis(pf.argsort(a, axis=1), axis=1),
            [(3, 4)], make=_spread((3, 4)), note="argsort"),
    # gather (PyTorch): index shorter than input off the axis, dim=, 0-d
    GradRow("gather", lambda a: pf.gather(a, 1, _i([[0, 0], [2, 1]])), [(3, 3)]),
    GradRow("gather", lambda a: a.gather(dim=0, index=_i([[1, 1, 0, -1]])), [(2, 4)],
            note="dim-kw"),
    GradRow("gather", lambda a: pf.gather(a, 0, _i(2)), [(3,)], note="0d-index"),
    GradRow("gather", lambda a: pf.gather(a, 0, _i(0)), [()], note="0d-input"),
    # scatter: distinct and repeated positions, src longer than index, a number
    GradRow("scatter", lambda a, s: pf.scatter(a, 0, _i([[1, 0, 2]]), s), [(3, 3), (2, 3)]),
    GradRow("scatter", lambda a, s: a.scatter(1, _i([[1, 1, 2], [0, 0, 0]]), s),
            [(2, 3), (2, 4)], note="dup-longer-src"),
    GradRow("scatter", lambda a: pf.scatter(a, -1, _i([[2], [0]]), value=7.0), [(2, 3)],
            note="value"),
    GradRow("scatter", lambda a, s: pf.scatter(a, 0, _i([[0, 1], [0, 1]]), s), [(2, 2), ()],
            note="0d-src"),
    GradRow("scatter_add", lambda a, s: pf.scatter_add(a, 1, _i([[1, 1, 2]]), s),
            [(3, 3), (2, 4)]),
    GradRow("scatter_add", lambda a, s: a.scatter_add(dim=0, index=_i([[0, 0], [0, -1]]),
                                                      src=s * s), [(2, 2), (2, 2)],
            note="dup-kw"),
    # in-place forms, on non-leaves; self's old history takes part too
    GradRow("scatter_", lambda a, s: (a * 2.0).scatter_(1, _i([[1, 1, 2]]), s),
            [(3, 3), (1, 3)]),
    GradRow("scatter_", lambda a: pf.scatter_(a + 1.0, 0, _i([[2, 0]]), 5.0), [(3, 2)],
            note="value"),
    GradRow("scatter_add_", lambda a, s: (a * 2.0).scatter_add_(0, _i([[1, 1], [0, 1]]), s),
            [(3, 2), (2, 3)]),
    # index_select, take
    GradRow("index_select", lambda a: pf.index_select(a, 1, _i([2, 0, 2, -1])), [(2, 3)]),
    GradRow("index_select", lambda a: a.index_select(0, _i(1)), [(3, 2)], note="0d-index"),
    GradRow("index_select", lambda a: pf.index_select(a, 0, _i([0, 0])), [()],
            note="0d-input"),
    GradRow("take", lambda a: pf.take(a, _i([[0, 5], [5, -1]])), [(2, 3)]),
    GradRow("take", lambda a: pf.take(a, _i([[1], [1]]), axis=-1), [(2, 3)], note="axis"),
    GradRow("take", lambda a: a.take(_i([4, -7, 1]), axis=1, mode="wrap"), [(2, 3)],
            note="wrap"),
    GradRow("take", lambda a: pf.take(a, _i([4, -7, 1, 0]), axis=0, mode="clip"), [(2, 3)],
            note="clip"),
    # sort (values) and topk (values differentiable, indices not)
    GradRow("sort", lambda a: pf.sort(a), [(3, 4)], make=_spread((3, 4))),
    GradRow("sort", lambda a: pf.sort(a, axis=0, descending=True), [(3, 4)],
            make=_spread((3, 4)), note="axis0-desc"),
    GradRow("sort", lambda a: pf.sort(a, axis=None) * pf.arange(6.0), [(2, 3)],
            make=_spread((2, 3)), note="flat"),
    GradRow("topk", lambda a: pf.topk(a, 2)[0], [(3, 4)], make=_spread((3, 4))),
    GradRow("topk", lambda a: pf.topk(a, 2, axis=0, largest=False), [(3, 4)],
            make=_spread((3, 4)), note="both-outputs-smallest"),
    GradRow("topk", lambda a: a.topk(3, dim=-1)[0] ** 2, [(2, 5)], make=_spread((2, 5)),
            note="square"),
]
