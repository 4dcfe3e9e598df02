"""pf.nn.utils.clip_grad_norm_ / clip_grad_value_ against PyTorch and NumPy float64."""
import numpy as np
import pytest

import pyframe as pf

try:
    import torch
except ImportError:
    torch = None


def _grads(seed, scale):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) * scale for s in ((3, 4), (5,), (2, 2, 2))]


def _params(grads):
    ps = []
    for g in grads:
        p = pf.tensor(np.zeros_like(g), requires_grad=True)
        p.grad = pf.tensor(g.copy())
        ps.append(p)
    return ps


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("scale", [0.01, 10.0])
def test_clip_grad_norm_matches_float64(norm_type, scale):
    grads = _grads(0, scale)
    ps = _params(grads)
    total = pf.nn.utils.clip_grad_norm_(ps, 1.0, norm_type=norm_type)
    flat = np.concatenate([g.ravel() for g in grads]).astype(np.float64)
    want = np.abs(flat).max() if np.isinf(norm_type) else (np.abs(flat) ** norm_type).sum() ** (
        1 / norm_type)
    np.testing.assert_allclose(float(total), want, rtol=1e-5)
    coef = min(1.0, 1.0 / (want + 1e-6))
    for p, g in zip(ps, grads):
        np.testing.assert_allclose(np.asarray(p.grad), g * coef, rtol=1e-5, atol=1e-7)
    if torch is not None:
        tps = [torch.zeros(g.shape, requires_grad=True) for g in grads]
        for tp, g in zip(tps, grads):
            tp.grad = torch.tensor(g)
        tt = torch.nn.utils.clip_grad_norm_(tps, 1.0, norm_type=norm_type)
        np.testing.assert_allclose(float(total), float(tt), rtol=1e-5)
        for p, tp in zip(ps, tps):
            np.testing.assert_allclose(np.asarray(p.grad), tp.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_value_and_errors():
    grads = _grads(1, 3.0)
    ps = _params(grads)
    pf.nn.utils.clip_grad_value_(ps, 0.5)
    for p, g in zip(ps, grads):
        np.testing.assert_array_equal(np.asarray(p.grad), np.clip(g, -0.5, 0.5))
    bad = _params([np.array([np.inf, 1.0], np.float32)])
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total norm of order 2.0"):
        pf.nn.utils.clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="clip_grad_norm_: norm_type must be >= 1"):
        pf.nn.utils.clip_grad_norm_(ps, 1.0, norm_type=0.5)
    with pytest.raises(ValueError, match="clip_grad_value_: clip_value must be >= 0"):
        pf.nn.utils.clip_grad_value_(ps, -1)
    with pytest.raises(TypeError, match="clip_grad_norm_: expected a tensor or an iterable"):
        pf.nn.utils.clip_grad_norm_(3, 1.0)
    assert float(pf.nn.utils.clip_grad_norm_([pf.zeros(2, requires_grad=True)], 1.0)) == 0.0
