"""Gradient rows of the reductions, scans and softmax (rules in csrc/backward_reduce.c)."""
import numpy as np

import pyframe as pf
from grad_rows import GradRow


def distinct(*shapes):
    """Inputs without ties (max/min and norm(inf) are not differentiable at a tie)."""
    def make(rng):
        out = []
        for s in shapes:
            n = int(np.prod(s))
            vals = rng.permutation(n) / n * 3.0 - 1.5 + rng.uniform(0, 0.1 / n, size=n)
            out.append(vals.reshape(s))
        return out
    return make


def with_zeros(shape, where):
    """uniform(0.5, 1.5) with random signs, and exact zeros at the flat positions `where`."""
    def make(rng):
        x = rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        x.reshape(-1)[list(where)] = 0.0
        return [x]
    return make


def away_from_zero(*shapes):
    """|x| in [0.3, 2) with random signs: norms with p < 2 have a kink at 0."""
    def make(rng):
        return [rng.uniform(0.3, 2.0, size=s) * rng.choice([-1.0, 1.0], size=s) for s in shapes]
    return make


ROWS = [
    GradRow("sum", lambda x: pf.sum(x), [(3, 4)]),
    GradRow("sum", lambda x: pf.sum(x, axis=(0, 2), keepdims=True), [(2, 3, 4)], note="keep"),
    GradRow("sum", lambda x: x.sum(dim=-1), [(3, 4)], note="dim"),
    GradRow("mean", lambda x: pf.mean(x, axis=1), [(3, 4)]),
    GradRow("mean", lambda x: x.mean(axis=(-1, 0), keepdims=True), [(2, 3, 4)], note="keep"),

    GradRow("prod", lambda x: pf.prod(x), [(2, 3)], domain="positive"),
    GradRow("prod", lambda x: pf.prod(x, axis=1), [(3, 4)]),
    GradRow("prod", lambda x: x.prod(axis=(0, -1), keepdims=True), [(2, 3, 2)], note="keep"),
    GradRow("prod", lambda x: pf.prod(x), [()], note="0d"),
    # zeros: one per row, two in a row, three in a row, a zero-free row (axis 1 of (4, 4))
    GradRow("prod", lambda x: pf.prod(x, axis=1), [(4, 4)], note="zeros",
            make=with_zeros((4, 4), [1, 4, 6, 8, 9, 10])),
    GradRow("prod", lambda x: pf.prod(x), [(5,)], note="one-zero", make=with_zeros((5,), [2])),
    GradRow("prod", lambda x: pf.prod(x), [(5,)], note="two-zeros", make=with_zeros((5,), [0, 3])),

    GradRow("max", lambda x: pf.max(x), [(3, 4)], make=distinct((3, 4))),
    GradRow("max", lambda x: pf.max(x, axis=0), [(3, 4)], make=distinct((3, 4)), note="axis0"),
    GradRow("max", lambda x: pf.amax(x, axis=(-1, 0), keepdims=True), [(2, 3, 4)],
            make=distinct((2, 3, 4)), note="keep"),
    GradRow("max", lambda x: x.max(dim=1, keepdim=True), [(3, 4)], make=distinct((3, 4)),
            note="torch-names"),
    GradRow("min", lambda x: pf.min(x), [(3, 4)], make=distinct((3, 4))),
    GradRow("min", lambda x: pf.amin(x, axis=-1), [(3, 4)], make=distinct((3, 4)), note="axis"),
    GradRow("min", lambda x: pf.min(x, axis=0) * pf.max(x, axis=0), [(3, 4)],
            make=distinct((3, 4)), note="with-max"),

    GradRow("var", lambda x: pf.var(x), [(3, 4)]),
    GradRow("var", lambda x: pf.var(x, axis=1, ddof=1), [(3, 4)], note="ddof"),
    GradRow("var", lambda x: x.var(dim=(0, 2), correction=1, keepdim=True), [(3, 2, 4)],
            note="correction"),
    GradRow("var", lambda x: pf.var(x, axis=0, unbiased=True), [(3, 4)], note="unbiased"),
    GradRow("std", lambda x: pf.std(x), [(3, 4)]),
    GradRow("std", lambda x: pf.std(x, axis=-1, ddof=1, keepdims=True), [(3, 4)], note="ddof"),
    GradRow("std", lambda x: x.std(dim=0, unbiased=False), [(3, 4)], note="unbiased"),

    GradRow("logsumexp", lambda x: pf.logsumexp(x), [(3, 4)]),
    GradRow("logsumexp", lambda x: pf.logsumexp(x, axis=1, keepdims=True), [(3, 4)],
            note="keep"),
    GradRow("logsumexp", lambda x: x.logsumexp(dim=(0, 2)), [(2, 3, 4)], note="axes"),

    GradRow("norm", lambda x: pf.norm(x), [(3, 4)]),
    GradRow("norm", lambda x: pf.norm(x, ord="fro", axis=(0, 1)), [(3, 4)], note="fro"),
    GradRow("norm", lambda x: pf.norm(x, ord=2, axis=1, keepdims=True), [(3, 4)], note="2"),
    GradRow("norm", lambda x: pf.norm(x, ord=1, axis=0), [(3, 4)], make=away_from_zero((3, 4)),
            note="1"),
    GradRow("norm", lambda x: pf.norm(x, ord=float("inf"), axis=1), [(3, 4)],
            make=distinct((3, 4)), note="inf"),
    GradRow("norm", lambda x: pf.norm(x, ord=-np.inf), [(3, 4)], make=distinct((3, 4)),
            note="-inf"),
    GradRow("norm", lambda x: pf.norm(x, ord=3, axis=-1), [(3, 4)], note="3"),
    GradRow("norm", lambda x: pf.norm(x, p=1.5, dim=0), [(3, 4)], make=away_from_zero((3, 4)),
            note="1.5"),
    GradRow("norm", lambda x: pf.norm(x, ord=-2, axis=1), [(3, 4)], make=away_from_zero((3, 4)),
            note="-2"),
    GradRow("norm", lambda x: pf.norm(x, ord=0, axis=1) * x.sum(), [(3, 4)], note="0"),

    GradRow("cumsum", lambda x: pf.cumsum(x), [(3, 4)], note="flat"),
    GradRow("cumsum", lambda x: pf.cumsum(x, axis=0), [(3, 4)], note="axis0"),
    GradRow("cumsum", lambda x: x.cumsum(dim=-1), [(2, 3, 4)], note="axis-1"),
    GradRow("cumsum", lambda x: pf.cumsum(x, axis=0), [()], note="0d"),
    GradRow("cumprod", lambda x: pf.cumprod(x), [(3, 4)], note="flat"),
    GradRow("cumprod", lambda x: pf.cumprod(x, axis=1), [(3, 4)], note="axis1"),
    GradRow("cumprod", lambda x: x.cumprod(dim=0), [(3, 2, 2)], note="axis0"),
    # zeros: lines with one, two and three zeros and a zero-free one
    GradRow("cumprod", lambda x: pf.cumprod(x, axis=1), [(4, 5)], note="zeros",
            make=with_zeros((4, 5), [2, 5, 8, 11, 12, 14])),
    GradRow("cumprod", lambda x: pf.cumprod(x), [(2, 3)], note="flat-zeros",
            make=with_zeros((2, 3), [1, 4])),

    GradRow("softmax", lambda x: pf.softmax(x), [(3, 4)]),
    GradRow("softmax", lambda x: pf.softmax(x, axis=0), [(3, 4)], note="axis0"),
    GradRow("softmax", lambda x: pf.softmax(x, axis=None), [(3, 4)], note="all"),
    GradRow("softmax", lambda x: x.softmax(dim=1), [(2, 3, 4)], note="dim"),
    GradRow("log_softmax", lambda x: pf.log_softmax(x), [(3, 4)]),
    GradRow("log_softmax", lambda x: pf.log_softmax(x, axis=0), [(3, 4)], note="axis0"),
    GradRow("log_softmax", lambda x: pf.log_softmax(x, axis=None), [(2, 3)], note="all"),
    # an op used twice: both uses add into the gradient
    GradRow("softmax", lambda x: pf.softmax(x, axis=1) * pf.log_softmax(x, axis=1), [(3, 4)],
            note="twice"),
]
