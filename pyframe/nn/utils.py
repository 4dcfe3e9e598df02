"""Gradient clipping as PyTorch spells it: ``clip_grad_norm_`` and ``clip_grad_value_``.

The 2-norm over every gradient is one C pass (the one the optimizers' own
``global_clipnorm`` uses), accumulated in float64.
"""
import math

from .. import _C
from ..autograd import no_grad

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters, who):
    if isinstance(parameters, _C.Tensor):
        parameters = [parameters]
    try:
        params = list(parameters)
    except TypeError:
        raise TypeError(f"{who}: expected a tensor or an iterable of tensors (model.parameters());"
                        f" got {type(parameters).__name__}") from None
    for p in params:
        if not isinstance(p, _C.Tensor):
            raise TypeError(f"{who}: expected tensors; got {type(p).__name__}")
    return [p.grad for p in params if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients in place so that their joint norm is at most max_norm.

    Returns the norm before clipping, as a float32 tensor.  norm_type 2 (the
    default), any p >= 1, or inf (the largest absolute value).
    """
    who = "clip_grad_norm_"
    grads = _grads(parameters, who)
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if not max_norm >= 0:
        raise ValueError(f"{who}: max_norm must be >= 0; got {max_norm}")
    if not (norm_type >= 1 or math.isinf(norm_type)):
        raise ValueError(f"{who}: norm_type must be >= 1 or inf; got {norm_type}")
    if not grads:
        return _C.tensor(0.0)
    with no_grad():
        if norm_type == 2.0:
            total = _C._optim_grad_norm(grads)
        elif math.isinf(norm_type):
            total = max(float(g.abs().max()) if g.size else 0.0 for g in grads)
        else:
            total = sum(float((g.abs().astype(_C.float64) ** norm_type).sum())
                        for g in grads) ** (1.0 / norm_type)
        if error_if_nonfinite and not math.isfinite(total):
            raise RuntimeError(f"{who}: the total norm of order {norm_type} of the gradients is "
                               f"{total}; pass error_if_nonfinite=False to clip anyway")
        coef = max_norm / (total + 1e-6)
        if coef < 1.0:
            for g in grads:
                g.mul_(coef)
    return _C.tensor(total, dtype=_C.float32)


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    who = "clip_grad_value_"
    grads = _grads(parameters, who)
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"{who}: clip_value must be >= 0; got {clip_value}")
    with no_grad():
        for g in grads:
            g.clip_(-clip_value, clip_value)
