"""Gradient rows of normalisation, dropout, losses and attention (rules in
csrc/backward_nnops.c).  gradcheck runs the rules' fused path, gradgradcheck their
forward-op path.  Integer targets and masks are built inside the functions; random ops
(dropout) reseed on every call, so that each evaluation draws the same mask."""
import warnings

import numpy as np

import pyframe as pf
from grad_rows import GradRow

_cls = pf.tensor([0, 2, -100, 1])
_cls3 = pf.tensor([[0, 2], [1, 1]])
_cw = pf.tensor([1.0, 2.0, 0.5], dtype=pf.float64)
_rm = pf.tensor([0.1, -0.2], dtype=pf.float64)
_rv = pf.tensor([1.5, 0.7], dtype=pf.float64)
_mask = pf.tensor(np.array([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 0, 1]], dtype=bool))


def _probs(rng):
    return [rng.uniform(-2, 2, (3, 4)), rng.dirichlet(np.ones(4), 3)]


def _bce(rng):
    return [rng.uniform(0.1, 0.9, (3, 4)), rng.uniform(0, 1, (3, 4)), rng.uniform(0.5, 2, 4)]


def _bce_logits(rng):
    return [rng.uniform(-3, 3, (3, 4)), rng.uniform(0, 1, (3, 4)), rng.uniform(0.5, 2, (3, 1)),
            rng.uniform(0.5, 2, 4)]


def _pairs(rng):
    # differences away from the kinks of l1 / huber / smooth_l1 (|d| = 0, delta, beta)
    x = rng.uniform(-2, 2, (3, 4))
    d = rng.choice([-1, 1], (3, 4)) * rng.uniform(0.1, 0.3, (3, 4)) * rng.choice([1, 5], (3, 4))
    return [x, x - d]


def _quiet(fn, *args, **kw):
    # shapes that differ broadcast with PyTorch's UserWarning; here on purpose
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kw)


def _seeded(f):
    def g(*a):
        pf.manual_seed(7)
        return f(*a)
    return g


ROWS = [
    GradRow("layer_norm", lambda x, w, b: pf.layer_norm(x, (4,), w, b), [(3, 4), (4,), (4,)]),
    GradRow("layer_norm", lambda x, w: pf.layer_norm(x, (2, 3), w), [(2, 2, 3), (2, 3)],
            note="2d"),
    GradRow("layer_norm", lambda x: pf.layer_norm(x, 5, eps=0.1), [(2, 5)], note="plain"),
    GradRow("rms_norm", lambda x, w: pf.rms_norm(x, (4,), w), [(3, 4), (4,)]),
    GradRow("rms_norm", lambda x: pf.rms_norm(x, (2, 3), eps=1e-3), [(2, 2, 3)], note="plain"),
    GradRow("group_norm", lambda x, w, b: pf.group_norm(x, 2, w, b), [(2, 4, 3), (4,), (4,)]),
    GradRow("group_norm", lambda x: pf.group_norm(x, 3), [(2, 3, 2, 2)], note="plain"),
    GradRow("batch_norm", lambda x, w, b: pf.batch_norm(x, None, None, w, b, training=True),
            [(3, 2, 2), (2,), (2,)], note="train"),
    GradRow("batch_norm", lambda x, w, b: pf.batch_norm(x, _rm, _rv, w, b), [(3, 2, 2), (2,), (2,)],
            note="eval"),
    GradRow("batch_norm", lambda x, w: pf.batch_norm(x, None, None, w, training=True, axis=-1),
            [(4, 3, 2), (2,)], note="channels-last"),
    GradRow("dropout", _seeded(lambda x: pf.dropout(x, 0.4)), [(3, 4)]),
    GradRow("cross_entropy", lambda x: pf.cross_entropy(x, _cls, _cw, label_smoothing=0.1),
            [(4, 3)]),
    GradRow("cross_entropy", lambda x: pf.cross_entropy(x, _cls3, reduction="none"), [(2, 3, 2)],
            note="spatial-none"),
    GradRow("cross_entropy", lambda x, t: pf.cross_entropy(x, t, label_smoothing=0.2),
            [(3, 4), (3, 4)], make=_probs, note="probs"),
    GradRow("nll_loss", lambda x: pf.nll_loss(x, _cls, _cw), [(4, 3)]),
    GradRow("nll_loss", lambda x: pf.nll_loss(x, _cls3, reduction="sum"), [(2, 3, 2)],
            note="spatial"),
    GradRow("binary_cross_entropy", lambda p, t, w: pf.binary_cross_entropy(p, t, w),
            [(3, 4), (3, 4), (4,)], make=_bce),
    GradRow("binary_cross_entropy_with_logits",
            lambda x, t, w, pw: pf.binary_cross_entropy_with_logits(x, t, w, pos_weight=pw),
            [(3, 4), (3, 4), (3, 1), (4,)], make=_bce_logits),
    GradRow("binary_cross_entropy_with_logits",
            lambda x, t: pf.binary_cross_entropy_with_logits(x, t, reduction="none"),
            [(3, 4), (3, 4)], make=lambda rng: _bce_logits(rng)[:2], note="plain"),
    GradRow("mse_loss", lambda x, t: pf.mse_loss(x, t), [(3, 4), (3, 4)]),
    GradRow("mse_loss", lambda x, t: _quiet(pf.mse_loss, x, t, reduction="sum"), [(3, 4), (4,)],
            note="broadcast-target"),
    GradRow("l1_loss", lambda x, t: pf.l1_loss(x, t, reduction="sum"), [(3, 4), (3, 4)],
            make=_pairs),
    GradRow("huber_loss", lambda x, t: pf.huber_loss(x, t, delta=0.7, reduction="none"),
            [(3, 4), (3, 4)], make=_pairs),
    GradRow("smooth_l1_loss", lambda x, t: pf.smooth_l1_loss(x, t, beta=0.5), [(3, 4), (3, 4)],
            make=_pairs),
    GradRow("scaled_dot_product_attention",
            lambda q, k, v: pf.scaled_dot_product_attention(q, k, v), [(2, 3, 4), (2, 5, 4),
                                                                      (2, 5, 3)]),
    GradRow("scaled_dot_product_attention",
            lambda q, k, v: pf.scaled_dot_product_attention(q, k, v, is_causal=True),
            [(3, 4), (3, 4), (3, 2)], note="causal"),
    GradRow("scaled_dot_product_attention",
            lambda q, k, v: pf.scaled_dot_product_attention(q, k, v, attn_mask=_mask),
            [(3, 4), (5, 4), (5, 2)], note="bool-mask"),
    GradRow("scaled_dot_product_attention",
            _seeded(lambda q, k, v: pf.scaled_dot_product_attention(q, k, v, dropout_p=0.3)),
            [(3, 4), (5, 4), (5, 2)], note="dropout"),
    GradRow("_attention", lambda q, k, v, m: pf._attention(q, k, v, m, scale=0.6),
            [(2, 1, 3, 4), (2, 5, 4), (5, 2), (3, 5)], note="float-mask-broadcast"),
]
