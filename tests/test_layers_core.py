"""Keras-named core and recurrent layers against NumPy float64 references
(the Keras formulas written out here), through the shared layer check."""
import numpy as np
import pytest

import pyframe as pf
from pyframe import layers as L
from helpers_layers import check_layer

RNG = np.random.default_rng(0)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_dense_reference_shape_inference_and_regularizer():
    x = RNG.standard_normal((4, 6))
    check_layer(lambda: L.Dense(3, activation="tanh", kernel_regularizer="l2"), x,
                lambda w, x: np.tanh(x @ w["kernel"] + w["bias"]))
    d = L.Dense(5, kernel_regularizer=pf.regularizers.L2(0.1))
    d(pf.ones((2, 7)))
    assert d.kernel.shape == (7, 5) and d.bias.shape == (5,)
    (pen,) = d.losses
    np.testing.assert_allclose(float(pen), 0.1 * (np.array(d.kernel) ** 2).sum(), rtol=1e-6)
    assert L.Dense(2, input_shape=(3,)).built


def test_dense_errors_name_the_layer():
    d = L.Dense(4, name="dense_2")
    d(pf.ones((2, 784)))
    with pytest.raises(ValueError, match=r"Dense 'dense_2' expects last dim 784, got 512"):
        d(pf.ones((2, 512)))
    with pytest.raises(ValueError, match=r"Dense: units must be a positive integer; got 0"):
        L.Dense(0)
    with pytest.raises(ValueError, match=r"unknown activation 'relux'"):
        L.Dense(2, activation="relux")
    with pytest.raises(TypeError, match=r"Dense: unexpected keyword arguments \['unit'\]"):
        L.Dense(2, unit=3)


@pytest.mark.parametrize("name, ref", [
    ("relu", lambda x: np.maximum(x, 0)), ("sigmoid", sigmoid), ("tanh", np.tanh),
    ("softplus", lambda x: np.log1p(np.exp(x))), ("softsign", lambda x: x / (1 + np.abs(x))),
    ("swish", lambda x: x * sigmoid(x)), ("elu", lambda x: np.where(x > 0, x, np.expm1(x))),
    ("softmax", lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)), ("linear", lambda x: x),
    ("hard_sigmoid", lambda x: np.clip(x / 6 + 0.5, 0, 1))])
def test_activation_layer(name, ref):
    x = RNG.standard_normal((3, 5)) * 2
    check_layer(lambda: L.Activation(name), x, lambda w, x: ref(x))


def test_relu_leaky_softmax_layers():
    x = RNG.standard_normal((3, 5)) * 4
    check_layer(lambda: L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2), x,
                lambda w, x: np.minimum(np.where(x > 0.2, x, (x - 0.2) * 0.1), 1.5))
    check_layer(lambda: L.LeakyReLU(), x, lambda w, x: np.where(x > 0, x, 0.3 * x))
    check_layer(lambda: L.Softmax(axis=0), x,
                lambda w, x: np.exp(x) / np.exp(x).sum(0, keepdims=True))


def test_reshaping_layers():
    x = RNG.standard_normal((2, 3, 4))
    check_layer(lambda: L.Flatten(), x, lambda w, x: x.reshape(2, 12))
    check_layer(lambda: L.Reshape((4, -1)), x, lambda w, x: x.reshape(2, 4, 3))
    check_layer(lambda: L.Permute((2, 1)), x, lambda w, x: x.transpose(0, 2, 1))
    with pytest.raises(ValueError, match=r"cannot reshape samples of shape \(3, 4\) \(12 values\) "
                                         r"to \(5,\)"):
        L.Reshape((5,))(pf.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"Permute: dims must be a permutation of 1..2"):
        L.Permute((0, 1))


def test_merge_layers():
    a, b, c = (pf.tensor(RNG.standard_normal((2, 3)), dtype=pf.float64) for _ in range(3))
    na, nb, nc = (np.array(t) for t in (a, b, c))
    np.testing.assert_allclose(np.array(L.Add()([a, b, c])), na + nb + nc)
    np.testing.assert_allclose(np.array(L.Subtract()([a, b])), na - nb)
    np.testing.assert_allclose(np.array(L.Multiply()([a, b])), na * nb)
    np.testing.assert_allclose(np.array(L.Average()([a, b])), (na + nb) / 2)
    np.testing.assert_allclose(np.array(L.Maximum()([a, b])), np.maximum(na, nb))
    np.testing.assert_allclose(np.array(L.Concatenate(axis=0)([a, b])), np.concatenate([na, nb]))
    with pytest.raises(ValueError, match=r"Add 'add(_\d+)?' expects a list of at least 2 tensors"):
        L.Add()(a)


def test_rescaling_and_normalization_adapt():
    img = (RNG.random((2, 4, 4, 3)) * 255).astype(np.uint8)
    out = L.Rescaling(1 / 255)(pf.tensor(img))
    np.testing.assert_allclose(np.array(out), img / 255, rtol=1e-6)
    data = RNG.standard_normal((200, 3)) * [1, 5, 10] + [0, 3, -2]
    n = L.Normalization()
    n.adapt(data)
    np.testing.assert_allclose(np.array(n.mean), data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(np.array(n.variance), data.var(0), rtol=1e-5)
    z = np.array(n(pf.tensor(data, dtype=pf.float64)))
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1, rtol=1e-4)
    # adapt over batches gives the same statistics
    nb = L.Normalization().adapt([data[:50], data[50:120], data[120:]])
    np.testing.assert_allclose(np.array(nb.mean), np.array(n.mean), rtol=1e-6)
    inv = L.Normalization(mean=n.mean, variance=n.variance, invert=True)
    np.testing.assert_allclose(np.array(inv(pf.tensor(z))), data, rtol=1e-4, atol=1e-4)
    with pytest.raises(RuntimeError, match=r"call adapt\(data\) first"):
        L.Normalization()(pf.ones((2, 3)))
    with pytest.raises(ValueError, match=r"give both mean and variance"):
        L.Normalization(mean=[0.0])
    assert "mean" in n.state_dict()


def test_embedding_layer():
    idx = np.array([[0, 3, 9], [2, 2, 1]])
    check_layer(lambda: L.Embedding(10, 4), idx, lambda w, x: w["embeddings"][x])
    e = L.Embedding(10, 4)
    with pytest.raises(IndexError, match=r"index 10 is out of range for input_dim 10"):
        e(pf.tensor([10]))
    assert np.abs(np.array(e.embeddings)).max() <= 0.05


def test_dropout_layer():
    pf.manual_seed(0)
    d = L.Dropout(0.25)
    x = pf.ones((200, 100))
    y = np.array(d(x))
    assert set(np.unique(y).tolist()) <= {0.0, float(np.float32(1 / 0.75))}
    assert abs((y == 0).mean() - 0.25) < 0.02
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match=r"Dropout: rate must be in \[0, 1\)"):
        L.Dropout(1.0)


def test_padding_and_upsampling():
    x = RNG.standard_normal((2, 3, 4, 2))
    check_layer(lambda: L.ZeroPadding2D(((1, 2), (0, 1))), x,
                lambda w, x: np.pad(x, ((0, 0), (1, 2), (0, 1), (0, 0))))
    check_layer(lambda: L.UpSampling2D((2, 3)), x,
                lambda w, x: x.repeat(2, axis=1).repeat(3, axis=2))
    check_layer(lambda: L.UpSampling2D(2, data_format="channels_first"), x,
                lambda w, x: x.repeat(2, axis=2).repeat(2, axis=3))


# ------------------------------------------------------------------ recurrent

def np_keras_rnn(kind, w, x, units, reset_after=True, go_backwards=False, seq=False):
    B, T, _ = x.shape
    h = np.zeros((B, units))
    c = np.zeros((B, units))
    K, R = w["kernel"], w["recurrent_kernel"]
    b = w.get("bias")
    outs = []
    for t in (range(T - 1, -1, -1) if go_backwards else range(T)):
        xt = x[:, t]
        if kind == "SimpleRNN":
            h = np.tanh(xt @ K + h @ R + b)
        elif kind == "LSTM":
            g = xt @ K + h @ R + b
            U = units
            i, f, cc, o = sigmoid(g[:, :U]), sigmoid(g[:, U:2 * U]), np.tanh(g[:, 2 * U:3 * U]), \
                sigmoid(g[:, 3 * U:])
            c = f * c + i * cc
            h = o * np.tanh(c)
        else:
            U = units
            xw = xt @ K + (b[0] if reset_after else b)
            hr = h @ R + (b[1] if reset_after else 0)
            z, r = sigmoid(xw[:, :U] + hr[:, :U]), sigmoid(xw[:, U:2 * U] + hr[:, U:2 * U])
            if reset_after:
                hh = np.tanh(xw[:, 2 * U:] + r * hr[:, 2 * U:])
            else:
                hh = np.tanh(xw[:, 2 * U:] + (r * h) @ R[:, 2 * U:])
            h = z * h + (1 - z) * hh
        outs.append(h)
    return np.stack(outs, 1) if seq else h


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("seq", [False, True])
def test_recurrent_layers_match_the_keras_formulas(kind, seq):
    x = RNG.standard_normal((2, 4, 3))
    make = lambda: getattr(L, kind)(5, return_sequences=seq)   # noqa: E731
    layer, _ = check_layer(make, x, lambda w, x: np_keras_rnn(kind, w, x, 5, seq=seq))
    assert layer.kernel.shape == (3, 5 * {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}[kind])
    if kind == "LSTM":   # unit_forget_bias
        np.testing.assert_array_equal(np.array(layer.bias)[5:10], 1.0)


def test_gru_reset_before_and_go_backwards():
    x = RNG.standard_normal((2, 4, 3))
    check_layer(lambda: L.GRU(3, reset_after=False, go_backwards=True, bias_initializer="ones"),
                x, lambda w, x: np_keras_rnn("GRU", w, x, 3, reset_after=False,
                                             go_backwards=True))


def test_bidirectional_and_states():
    x = RNG.standard_normal((2, 4, 3))
    bi = L.Bidirectional(L.LSTM(4, return_sequences=True)).to(pf.float64)
    out = np.array(bi(pf.tensor(x, dtype=pf.float64)))
    fw = {k.split(".", 1)[1]: np.array(v) for k, v in bi.state_dict().items()
          if k.startswith("forward_layer")}
    bw = {k.split(".", 1)[1]: np.array(v) for k, v in bi.state_dict().items()
          if k.startswith("backward_layer")}
    ref_f = np_keras_rnn("LSTM", fw, x, 4, seq=True)
    ref_b = np_keras_rnn("LSTM", bw, x, 4, go_backwards=True, seq=True)[:, ::-1]
    np.testing.assert_allclose(out, np.concatenate([ref_f, ref_b], -1), rtol=1e-10)
    o, h, c = L.LSTM(4, return_state=True)(pf.randn(2, 5, 3))
    assert o.shape == h.shape == c.shape == (2, 4)
    with pytest.raises(TypeError, match=r"Bidirectional wraps a recurrent layer"):
        L.Bidirectional(L.Dense(3))
    with pytest.raises(ValueError, match=r"LSTM 'lstm(_\d+)?' expects input of shape \(batch, "
                                         r"time, features\)"):
        L.LSTM(3)(pf.ones((2, 3)))


def test_sequential_of_keras_layers_summary_without_a_call():
    m = pf.Sequential([L.Dense(16, activation="relu", input_shape=(8,)), L.Dense(3)])
    lines = []
    m.summary(print_fn=lines.append)
    assert "(None, 16)" in lines[0] and "(None, 3)" in lines[0]
    assert "Total params: 195" in lines[0]
