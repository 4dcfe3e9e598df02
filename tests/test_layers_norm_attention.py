"""Keras normalisation and attention layers against NumPy float64 references."""
import numpy as np
import pytest

import pyframe as pf
from pyframe import layers as L
from helpers_layers import check_layer

RNG = np.random.default_rng(1)


def test_batch_normalization_inference_and_training():
    x = RNG.standard_normal((4, 3, 3, 6)) * 2 + 1
    check_layer(lambda: L.BatchNormalization(gamma_initializer="random_normal",
                                             beta_initializer="random_normal"), x,
                lambda w, x: (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + 1e-3)
                * w["gamma"] + w["beta"])
    bn = L.BatchNormalization(momentum=0.9).to(pf.float64)
    y = np.array(bn(pf.tensor(x, dtype=pf.float64), training=True))
    mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-9, atol=1e-12)
    n = x.size / 6
    np.testing.assert_allclose(np.array(bn.moving_mean), 0.1 * mean, rtol=1e-10)
    np.testing.assert_allclose(np.array(bn.moving_variance), 0.9 + 0.1 * var * n / (n - 1),
                               rtol=1e-10)
    assert "moving_mean" in bn.state_dict() and len(bn.non_trainable_weights) == 2
    with pytest.raises(ValueError, match=r"BatchNormalization 'batch_normalization(_\d+)?' "
                                         r"expects 6 channels on axis -1"):
        bn(pf.ones((2, 5)))


def test_batch_normalization_channels_first_axis():
    x = RNG.standard_normal((4, 3, 5))
    bn = L.BatchNormalization(axis=1).to(pf.float64)
    y = np.array(bn(pf.tensor(x, dtype=pf.float64), training=True))
    m, v = x.mean((0, 2), keepdims=True), x.var((0, 2), keepdims=True)
    np.testing.assert_allclose(y, (x - m) / np.sqrt(v + 1e-3), rtol=1e-9, atol=1e-12)


def test_layer_group_rms_normalization():
    x = RNG.standard_normal((2, 4, 6)) * 3 + 2

    def ln(w, x):
        m, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - m) / np.sqrt(v + 1e-3) * w["gamma"] + w["beta"]

    check_layer(lambda: L.LayerNormalization(gamma_initializer="random_normal"), x, ln)

    def ln2(w, x):
        m, v = x.mean((-2, -1), keepdims=True), x.var((-2, -1), keepdims=True)
        return (x - m) / np.sqrt(v + 1e-3) * w["gamma"] + w["beta"]

    check_layer(lambda: L.LayerNormalization(axis=(-2, -1)), x, ln2)

    def gn(w, x):
        g = x.reshape(2, 4, 3, 2)
        m, v = g.mean((1, 3), keepdims=True), g.var((1, 3), keepdims=True)
        return ((g - m) / np.sqrt(v + 1e-3)).reshape(x.shape) * w["gamma"] + w["beta"]

    check_layer(lambda: L.GroupNormalization(groups=3), x, gn)

    def rms(w, x):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * w["scale"]

    check_layer(lambda: L.RMSNormalization(), x, rms)
    with pytest.raises(ValueError, match=r"6 channels cannot be split into 4 groups"):
        L.GroupNormalization(groups=4)(pf.ones((2, 6)))
    with pytest.raises(ValueError, match=r"axis \(0,\) must be the last axes"):
        L.LayerNormalization(axis=0)(pf.ones((2, 6)))


def np_mha(w, q, v, heads, kd, mask=None, prefix=""):
    def proj(name, x):
        return np.einsum("btd,dhk->bthk", x, w[prefix + name + ".kernel"]) + \
            w[prefix + name + ".bias"]
    Q, K, V = proj("query_dense", q), proj("key_dense", v), proj("value_dense", v)
    s = np.einsum("bthk,bshk->bhts", Q, K) / np.sqrt(kd)
    if mask is not None:
        s = np.where(mask[:, None], s, -1e9)
    e = np.exp(s - s.max(-1, keepdims=True))
    a = e / e.sum(-1, keepdims=True)
    o = np.einsum("bhts,bshk->bthk", a, V)
    return np.einsum("bthk,hko->bto", o, w[prefix + "output_dense.kernel"]) + \
        w[prefix + "output_dense.bias"]


def test_multi_head_attention_against_reference():
    x = RNG.standard_normal((2, 5, 6))
    check_layer(lambda: _SelfMHA(), x, lambda w, x: np_mha(w, x, x, 2, 3, prefix="mha."))
    mask = RNG.random((2, 5, 5)) > 0.3
    mask[:, :, 0] = True
    mha = L.MultiHeadAttention(2, 3).to(pf.float64)
    q = pf.tensor(x, dtype=pf.float64)
    out, scores = mha(q, q, attention_mask=pf.tensor(mask), return_attention_scores=True)
    w = {k: np.array(v) for k, v in mha.state_dict().items()}
    np.testing.assert_allclose(np.array(out), np_mha(w, x, x, 2, 3, mask), rtol=1e-9)
    assert scores.shape == (2, 2, 5, 5)
    causal = np.array(mha(q, q, use_causal_mask=True))
    tri = np.broadcast_to(np.tril(np.ones((5, 5), bool)), (2, 5, 5))
    np.testing.assert_allclose(causal, np_mha(w, x, x, 2, 3, tri), rtol=1e-9)
    with pytest.raises(ValueError, match=r"MultiHeadAttention: key_dim must be a positive"):
        L.MultiHeadAttention(2, 0)


class _SelfMHA(L.Layer):
    def __init__(self):
        super().__init__()
        self.mha = L.MultiHeadAttention(2, 3)

    def forward(self, x):
        return self.mha(x, x)


def test_transformer_encoder_against_reference():
    x = RNG.standard_normal((2, 4, 6))

    def ref(w, x):
        def ln(x, p):
            m, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
            return (x - m) / np.sqrt(v + 1e-5) * w[p + ".gamma"] + w[p + ".beta"]
        a = np_mha(w, x, x, 2, 3, prefix="self_attention.")
        h = ln(x + a, "attention_norm")
        f = np.maximum(h @ w["intermediate_dense.kernel"] + w["intermediate_dense.bias"], 0)
        f = f @ w["output_dense.kernel"] + w["output_dense.bias"]
        return ln(h + f, "feedforward_norm")

    check_layer(lambda: L.TransformerEncoder(8, 2), x, ref)
    enc = L.TransformerEncoder(8, 2, normalize_first=True)
    assert enc(pf.randn(2, 4, 6), padding_mask=pf.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])).shape \
        == (2, 4, 6)
    with pytest.raises(ValueError, match=r"hidden size 7 must be divisible by num_heads 2"):
        L.TransformerEncoder(8, 2)(pf.ones((1, 3, 7)))
