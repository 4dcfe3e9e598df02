"""Gradient rows of the joining, splitting and reordering ops (rules in
csrc/backward_shape.c)."""
import numpy as np

import pyframe as pf
from grad_rows import GradRow


def _mask(shape, seed=3):
    """A fixed bool mask (not random per run: the rows must be reproducible)."""
    m = np.random.default_rng(seed).uniform(size=shape) > 0.5
    return pf.tensor(m)


ROWS = [
    # concatenate: axis forms, aliases, inputs that need no gradient, one input twice
    GradRow("concatenate", lambda a, b: pf.concatenate([a, b]), [(2, 3), (1, 3)]),
    GradRow("concatenate", lambda a, b: pf.concatenate((a, b), axis=1), [(2, 3), (2, 2)],
            note="axis1"),
    GradRow("concatenate", lambda a, b, c: pf.concatenate([a, b, c], axis=-1),
            [(2, 1), (2, 3), (2, 2)], note="three-neg-axis"),
    GradRow("concatenate", lambda a, b: pf.concatenate([a, b], axis=None), [(2, 3), (4,)],
            note="axis-none"),
    GradRow("concatenate", lambda a: pf.cat([pf.ones((1, 3), dtype=pf.float64), a,
                                             [[1.0, 2.0, 3.0]]], dim=0), [(2, 3)],
            note="cat-consts"),
    GradRow("concatenate", lambda a: pf.concat([a, a * 2.0], axis=0), [(2, 2)],
            note="concat-twice"),
    GradRow("concatenate", lambda a: pf.concatenate(a, axis=1), [(3, 2, 2)],
            note="tensor-of-rows"),
    GradRow("concatenate", lambda a, b: pf.concatenate([a, b], axis=0), [(0, 3), (2, 3)],
            note="empty-input"),
    # stack
    GradRow("stack", lambda a, b: pf.stack([a, b]), [(2, 3), (2, 3)]),
    GradRow("stack", lambda a, b: pf.stack([a, b, a], axis=-1), [(2, 3), (2, 3)],
            note="neg-axis-twice"),
    GradRow("stack", lambda a: pf.stack([pf.zeros(3, dtype=pf.float64), a], axis=0), [(3,)],
            note="const"),
    GradRow("stack", lambda a: pf.stack(a, axis=1), [(3, 2)], note="tensor-of-rows"),
    GradRow("stack", lambda a, b: pf.stack([a, b], axis=0), [(), ()], note="scalars"),
    # split: every piece, one piece, unused pieces, point lists (also going backwards)
    GradRow("split", lambda a: pf.split(a, 2, axis=1), [(2, 4)]),
    GradRow("split", lambda a: pf.split(a, 3)[1], [(6, 2)], note="one-piece"),
    GradRow("split", lambda a: pf.split(a, [1, -1], axis=-1), [(2, 5)], note="points"),
    GradRow("split", lambda a: pf.split(a, [3, 1])[2] * 2.0, [(5, 2)],
            note="points-backwards"),
    GradRow("split", lambda a: pf.split(a, [3, 1]), [(5, 2)], note="overlap-all"),
    GradRow("split", lambda a: pf.split(a, [2, 9], axis=0)[0], [(4,)], note="past-end"),
    # chunk
    GradRow("chunk", lambda a: a.chunk(3), [(5, 2)]),
    GradRow("chunk", lambda a: pf.chunk(a, 2, dim=-1)[1], [(2, 5)], note="last-dim"),
    GradRow("chunk", lambda a: pf.chunk(a, 4, axis=0), [(2, 3)], note="fewer-pieces"),
    # tile
    GradRow("tile", lambda a: pf.tile(a, 3), [(2, 3)]),
    GradRow("tile", lambda a: pf.tile(a, (2, 1, 3)), [(2, 3)], note="longer-reps"),
    GradRow("tile", lambda a: a.tile((2,)), [(2, 2, 3)], note="shorter-reps"),
    GradRow("tile", lambda a: pf.tile(a, (2, 3)), [()], note="scalar"),
    GradRow("tile", lambda a: pf.tile(a, (0, 2)), [(2, 3)], note="zero-reps"),
    # repeat
    GradRow("repeat", lambda a: pf.repeat(a, 2), [(2, 3)]),
    GradRow("repeat", lambda a: a.repeat(3, axis=-1), [(2, 3)], note="axis"),
    GradRow("repeat", lambda a: pf.repeat(a, [1, 0, 3], axis=1), [(2, 3)], note="counts"),
    GradRow("repeat", lambda a: pf.repeat(a, [2], axis=0), [(2, 20)], note="one-count-wide"),
    GradRow("repeat", lambda a: pf.repeat(a, pf.tensor([2, 1, 1, 3]), axis=None), [(2, 2)],
            note="tensor-counts-flat"),
    # flip (a view)
    GradRow("flip", lambda a: pf.flip(a), [(2, 3)]),
    GradRow("flip", lambda a: a.flip(axis=-1) * a, [(2, 3)], note="axis-mul"),
    GradRow("flip", lambda a: pf.flip(a, dims=(0, 2)), [(2, 3, 2)], note="dims"),
    # roll
    GradRow("roll", lambda a: pf.roll(a, 5), [(3, 4)]),
    GradRow("roll", lambda a: pf.roll(a, (1, -2), axis=(0, 1)), [(3, 4)], note="tuples"),
    GradRow("roll", lambda a: a.roll(shifts=[2, 1], dims=[1, 1]), [(3, 4)],
            note="same-axis-twice"),
    GradRow("roll", lambda a: pf.roll(a, -1, axis=(0, 1)), [(3, 4)], note="one-shift"),
    # pad: constant, reflect, edge; per-axis widths; a constant that requires grad
    GradRow("pad", lambda a: pf.pad(a, 1), [(2, 3)]),
    GradRow("pad", lambda a: pf.pad(a, ((1, 2), (0, 1)), constant_values=3.0), [(2, 3)],
            note="pairs-value"),
    GradRow("pad", lambda a: pf.pad(a, ((1, 2), (2, 1)), mode="reflect"), [(3, 4)],
            note="reflect"),
    GradRow("pad", lambda a: pf.pad(a, (2, 1), mode="edge"), [(3, 2)], note="edge"),
    GradRow("pad", lambda a: pf.pad(a, ((0, 0), (3, 0), (1, 1)), mode="replicate"),
            [(2, 1, 3)], note="replicate"),
    GradRow("pad", lambda a, c: pf.pad(a, 1, constant_values=c), [(2, 2), ()],
            note="value-grad"),
    # tril / triu
    GradRow("tril", lambda a: pf.tril(a), [(3, 4)]),
    GradRow("tril", lambda a: a.tril(k=-1), [(2, 3, 3)], note="batch-k"),
    GradRow("triu", lambda a: pf.triu(a, diagonal=1), [(4, 3)]),
    GradRow("triu", lambda a: pf.triu(a, -2), [(3, 3)], note="k-neg"),
    # masked_fill and its in-place form (on a non-leaf)
    GradRow("masked_fill", lambda a: pf.masked_fill(a, _mask((3, 4)), 1.5), [(3, 4)]),
    GradRow("masked_fill", lambda a, v: a.masked_fill(_mask((4,)), v), [(3, 4), ()],
            note="bcast-mask-tensor-value"),
    GradRow("masked_fill_", lambda a: (a * 1.0).masked_fill_(_mask((3, 4)), -1.0), [(3, 4)]),
    GradRow("masked_fill_", lambda a, v: pf.masked_fill_(a * 2.0, _mask((3, 1)), v),
            [(3, 4), (1,)], note="value-grad"),
    # moveaxis
    GradRow("moveaxis", lambda a: pf.moveaxis(a, 0, -1), [(2, 3, 4)]),
    GradRow("moveaxis", lambda a: pf.movedim(a, (0, 1), (2, 0)), [(2, 3, 4)], note="tuples"),
]
