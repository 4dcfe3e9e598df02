"""Keras-named losses against NumPy float64 references of the Keras formulas,
with reductions, sample weights, gradients and error messages."""
import numpy as np
import pytest

import pyframe as pf
from pyframe import losses

RNG = np.random.default_rng(0)
EPS = 1e-7


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ref_per_sample(name, yt, yp, **kw):
    if name == "mse":
        return ((yp - yt) ** 2).mean(-1)
    if name == "mae":
        return np.abs(yp - yt).mean(-1)
    if name == "msle":
        return ((np.log1p(np.maximum(yp, 0)) - np.log1p(np.maximum(yt, 0))) ** 2).mean(-1)
    if name == "huber":
        a = np.abs(yp - yt)
        return np.where(a <= 1, 0.5 * a * a, a - 0.5).mean(-1)
    if name == "log_cosh":
        return np.log(np.cosh(yp - yt)).mean(-1)
    if name == "binary_crossentropy":
        p = np.clip(yp, EPS, 1 - EPS)
        return -(yt * np.log(p) + (1 - yt) * np.log(1 - p)).mean(-1)
    if name == "categorical_crossentropy":
        p = np.clip(yp / yp.sum(-1, keepdims=True), EPS, 1 - EPS)
        return -(yt * np.log(p)).sum(-1)
    if name == "kl_divergence":
        t, p = np.clip(yt, EPS, 1), np.clip(yp, EPS, 1)
        return (t * np.log(t / p)).sum(-1)
    if name == "poisson":
        return (yp - yt * np.log(yp + EPS)).mean(-1)
    if name == "hinge":
        return np.maximum(1 - np.where(yt == 0, -1, yt) * yp, 0).mean(-1)
    if name == "squared_hinge":
        return (np.maximum(1 - np.where(yt == 0, -1, yt) * yp, 0) ** 2).mean(-1)
    if name == "cosine_similarity":
        u = yt / np.linalg.norm(yt, axis=-1, keepdims=True)
        v = yp / np.linalg.norm(yp, axis=-1, keepdims=True)
        return -(u * v).sum(-1)
    raise KeyError(name)


def data(name):
    if name in ("binary_crossentropy",):
        return RNG.integers(0, 2, (6, 3)).astype(float), RNG.uniform(0.05, 0.95, (6, 3))
    if name in ("categorical_crossentropy", "kl_divergence"):
        return softmax(RNG.standard_normal((6, 4))), softmax(RNG.standard_normal((6, 4)))
    if name in ("poisson",):
        return RNG.uniform(0, 3, (6, 3)), RNG.uniform(0.1, 3, (6, 3))
    if name in ("hinge", "squared_hinge"):
        return RNG.integers(0, 2, (6, 3)).astype(float), RNG.standard_normal((6, 3))
    return RNG.standard_normal((6, 3)), RNG.standard_normal((6, 3))


NAMES = ["mse", "mae", "msle", "huber", "log_cosh", "binary_crossentropy",
         "categorical_crossentropy", "kl_divergence", "poisson", "hinge", "squared_hinge",
         "cosine_similarity"]


@pytest.mark.parametrize("name", NAMES)
def test_loss_matches_reference_with_reductions_and_weights(name):
    yt, yp = data(name)
    ref = ref_per_sample(name, yt, yp)
    loss = losses.get(name)
    got = float(loss(pf.tensor(yt, dtype=pf.float64), pf.tensor(yp, dtype=pf.float64)))
    np.testing.assert_allclose(got, ref.mean(), rtol=1e-9)
    sw = RNG.uniform(0, 2, 6)
    cls = type(loss)
    weighted = cls(reduction="sum")(yt, pf.tensor(yp, dtype=pf.float64), sample_weight=sw)
    np.testing.assert_allclose(float(weighted), (ref * sw).sum(), rtol=1e-9)
    per = cls(reduction="none")(yt, pf.tensor(yp, dtype=pf.float64))
    np.testing.assert_allclose(np.array(per), ref, rtol=1e-9)


@pytest.mark.parametrize("name", ["mse", "huber", "log_cosh", "binary_crossentropy",
                                  "categorical_crossentropy", "cosine_similarity", "poisson"])
def test_loss_gradients(name):
    yt, yp = data(name)
    t = pf.tensor(yt, dtype=pf.float64)
    assert pf.autograd.gradcheck(lambda p: losses.get(name)(t, p),
                                 (pf.tensor(yp, dtype=pf.float64, requires_grad=True),))


def test_crossentropies_from_logits_and_smoothing():
    logits = RNG.standard_normal((5, 4)) * 3
    labels = RNG.integers(0, 4, 5)
    onehot = np.eye(4)[labels]
    logp = np.log(softmax(logits))
    lt = pf.tensor(logits, dtype=pf.float64)
    sce = losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(float(sce(labels, lt)), -logp[np.arange(5), labels].mean(),
                               rtol=1e-10)
    cce = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    smooth = onehot * 0.9 + 0.1 / 4
    np.testing.assert_allclose(float(cce(onehot, lt)), -(smooth * logp).sum(-1).mean(),
                               rtol=1e-10)
    bce = losses.BinaryCrossentropy(from_logits=True)
    y = RNG.integers(0, 2, (5, 4)).astype(float)
    ref = (np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits)))).mean()
    np.testing.assert_allclose(float(bce(y, lt)), ref, rtol=1e-10)
    # stable for huge logits
    big = pf.tensor([[1000.0, -1000.0]], dtype=pf.float64)
    assert np.isfinite(float(bce([[0.0, 1.0]], big)))
    assert pf.autograd.gradcheck(lambda p: sce(labels, p),
                                 (pf.tensor(logits, dtype=pf.float64, requires_grad=True),))


def test_sparse_crossentropy_probabilities_ignore_class_and_shapes():
    p = softmax(RNG.standard_normal((2, 3, 5)))
    labels = RNG.integers(0, 5, (2, 3))
    labels[0, 1] = -1
    sce = losses.SparseCategoricalCrossentropy(ignore_class=-1, reduction="none")
    got = np.array(sce(labels, pf.tensor(p, dtype=pf.float64)))
    ref = -np.log(np.clip(np.take_along_axis(p, np.where(labels < 0, 0, labels)[..., None], -1)[..., 0],
                          EPS, 1 - EPS))
    ref[0, 1] = 0
    np.testing.assert_allclose(got, ref, rtol=1e-9)
    with pytest.raises(IndexError, match=r"sparse_categorical_crossentropy: label 5 is out of "
                                          r"range for 5 classes"):
        losses.SparseCategoricalCrossentropy()([5, 0], pf.ones((2, 5)))
    with pytest.raises(ValueError, match=r"labels of shape \(3,\) do not match predictions of "
                                         r"shape \(2, 5\)"):
        losses.SparseCategoricalCrossentropy()([1, 2, 3], pf.ones((2, 5)))


def test_loss_errors():
    with pytest.raises(ValueError, match=r"unknown loss 'msee'"):
        losses.get("msee")
    with pytest.raises(ValueError, match=r"mean_squared_error: y_true of shape \(2, 4\) does not "
                                         r"match y_pred of shape \(2, 3\)"):
        losses.MeanSquaredError()(np.ones((2, 4)), pf.ones((2, 3)))
    with pytest.raises(ValueError, match=r"reduction must be"):
        losses.MeanSquaredError(reduction="avg")
    with pytest.raises(ValueError, match=r"Huber: delta must be positive"):
        losses.Huber(delta=0)
    with pytest.raises(ValueError, match=r"for integer labels use sparse_categorical_crossentropy"):
        losses.CategoricalCrossentropy()([1, 0], pf.ones((2, 3)))
