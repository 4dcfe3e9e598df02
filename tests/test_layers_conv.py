"""Convolution and pooling layers: PyTorch-named modules against torch.nn,
Keras-named layers (channels_last, TF 'same' padding) against torch's
functional ops on the same weights in float64, through the shared layer check."""
import numpy as np
import pytest

import pyframe as pf
from pyframe import nn
from pyframe import layers as L
from helpers_layers import check_layer

torch = pytest.importorskip("torch", reason="torch is the reference for the convolution layers")
F = torch.nn.functional
RNG = np.random.default_rng(2)


def tt(a):
    return torch.tensor(np.ascontiguousarray(a))


def compare_module(m, t, x):
    m, t = m.double(), t.double()
    t.load_state_dict({k: tt(np.array(v)) for k, v in m.state_dict().items()})
    px = pf.tensor(x, dtype=pf.float64, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    po, to = m(px), t(tx)
    np.testing.assert_allclose(np.array(po), to.detach().numpy(), rtol=1e-9, atol=1e-11)
    w = RNG.standard_normal(to.shape)
    (po * pf.tensor(w, dtype=pf.float64)).sum().backward()
    (to * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(np.array(px.grad), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    named = dict(t.named_parameters())
    for n, p in m.named_parameters():
        np.testing.assert_allclose(np.array(p.grad), named[n].grad.numpy(), rtol=1e-9,
                                   atol=1e-11, err_msg=n)


@pytest.mark.parametrize("name, args, kw, shape", [
    ("Conv1d", (3, 4, 3), {"padding": 1}, (2, 3, 9)),
    ("Conv2d", (3, 6, 3), {"stride": 2, "padding": 1}, (2, 3, 8, 7)),
    ("Conv2d", (4, 4, 3), {"groups": 4, "dilation": 2, "bias": False}, (2, 4, 9, 9)),
    ("Conv2d", (3, 5, (3, 1)), {"padding": "same"}, (1, 3, 6, 5)),
    ("ConvTranspose2d", (4, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1},
     (2, 4, 5, 5)),
    ("MaxPool2d", (2,), {}, (2, 3, 6, 6)), ("MaxPool2d", (3,), {"stride": 2, "padding": 1},
                                             (1, 2, 7, 7)),
    ("AvgPool2d", (2,), {}, (2, 3, 6, 6)), ("MaxPool1d", (2,), {}, (2, 3, 8)),
    ("AvgPool1d", (3,), {"stride": 2, "padding": 1}, (2, 3, 9))])
def test_torch_named_modules_match_torch(name, args, kw, shape):
    m, t = getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    compare_module(m, t, RNG.standard_normal(shape))


def test_conv_module_errors():
    with pytest.raises(ValueError, match=r"Conv2d 'conv2d(_\d+)?' expects 3 input channels; got "
                                         r"4"):
        nn.Conv2d(3, 4, 3)(pf.ones((1, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)


def ref_conv2d_keras(w, x, strides, padding, dilation=(1, 1), groups=1):
    """Keras Conv2D on channels_last input, through torch's conv2d in float64."""
    k = w["kernel"]                                  # (kh, kw, in/g, out)
    xt = tt(x).permute(0, 3, 1, 2)
    wt = tt(k).permute(3, 2, 0, 1)
    if padding == "same":
        pads = []
        for i in range(2):
            size, kk, s, d = x.shape[1 + i], k.shape[i], strides[i], dilation[i]
            out = -(-size // s)
            total = max((out - 1) * s + (kk - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        xt = F.pad(xt, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
    y = F.conv2d(xt, wt, tt(w["bias"]) if "bias" in w else None, strides, 0, dilation, groups)
    return y.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("kw", [{}, {"strides": 2, "padding": "same"},
                                {"padding": "same", "dilation_rate": 2},
                                {"strides": (2, 1), "padding": "same", "kernel_size": (4, 3)},
                                {"groups": 2, "use_bias": False}])
def test_keras_conv2d(kw):
    kw = dict(kw)
    ks = kw.pop("kernel_size", 3)
    x = RNG.standard_normal((2, 7, 6, 4))
    strides = kw.get("strides", 1)
    strides = (strides, strides) if isinstance(strides, int) else strides
    d = kw.get("dilation_rate", 1)
    check_layer(lambda: L.Conv2D(6, ks, **kw), x,
                lambda w, x: ref_conv2d_keras(w, x, strides, kw.get("padding", "valid"), (d, d),
                                              kw.get("groups", 1)))


def test_keras_conv1d_channels_first_and_activation():
    x = RNG.standard_normal((2, 3, 10))
    check_layer(lambda: L.Conv1D(4, 3, data_format="channels_first", activation="relu"), x,
                lambda w, x: np.maximum(F.conv1d(tt(x), tt(w["kernel"]).permute(2, 1, 0),
                                                 tt(w["bias"])).numpy(), 0))


def test_keras_depthwise_separable_and_transpose():
    x = RNG.standard_normal((2, 6, 6, 3))
    check_layer(lambda: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"), x,
                lambda w, x: F.conv2d(F.pad(tt(x).permute(0, 3, 1, 2), (1, 1, 1, 1)),
                                      tt(w["depthwise_kernel"].reshape(3, 3, 6))
                                      .permute(2, 0, 1).unsqueeze(1), tt(w["bias"]),
                                      groups=3).permute(0, 2, 3, 1).numpy())

    def sep(w, x):
        y = F.conv2d(tt(x).permute(0, 3, 1, 2),
                     tt(w["depthwise_kernel"].reshape(3, 3, 3)).permute(2, 0, 1).unsqueeze(1),
                     groups=3)
        y = F.conv2d(y, tt(w["pointwise_kernel"]).permute(3, 2, 0, 1), tt(w["bias"]))
        return y.permute(0, 2, 3, 1).numpy()

    check_layer(lambda: L.SeparableConv2D(5, 3), x, sep)
    layer = L.Conv2DTranspose(4, 3, strides=2, padding="same")
    out = layer(pf.ones((1, 5, 5, 3)))
    assert out.shape == (1, 10, 10, 4)
    check_layer(lambda: L.Conv2DTranspose(4, 3, strides=2), x,
                lambda w, x: F.conv_transpose2d(tt(x).permute(0, 3, 1, 2),
                                                tt(w["kernel"]).permute(3, 2, 0, 1),
                                                tt(w["bias"]), 2).permute(0, 2, 3, 1).numpy())


def test_keras_pooling():
    x = RNG.standard_normal((2, 7, 6, 3))
    xt = tt(x).permute(0, 3, 1, 2)
    check_layer(lambda: L.MaxPooling2D(), x,
                lambda w, x: F.max_pool2d(xt, 2).permute(0, 2, 3, 1).numpy())
    check_layer(lambda: L.AveragePooling2D(3, strides=2), x,
                lambda w, x: F.avg_pool2d(xt, 3, 2).permute(0, 2, 3, 1).numpy())
    # 'same': windows cut at the border; averages over the elements inside only
    same_max = np.array(L.MaxPooling2D(2, padding="same")(pf.tensor(x, dtype=pf.float64)))
    padded = F.pad(xt, (0, 0, 0, 1), value=-np.inf)
    np.testing.assert_allclose(same_max, F.max_pool2d(padded, 2).permute(0, 2, 3, 1).numpy())
    same_avg = np.array(L.AveragePooling2D(2, padding="same")(pf.tensor(x, dtype=pf.float64)))
    ref = F.avg_pool2d(F.pad(xt, (0, 0, 0, 1)), 2) / F.avg_pool2d(
        F.pad(torch.ones_like(xt), (0, 0, 0, 1)), 2)
    np.testing.assert_allclose(same_avg, ref.permute(0, 2, 3, 1).numpy(), rtol=1e-12)
    x1 = RNG.standard_normal((2, 9, 3))
    check_layer(lambda: L.MaxPooling1D(3), x1,
                lambda w, x: F.max_pool1d(tt(x).permute(0, 2, 1), 3).permute(0, 2, 1).numpy())
    check_layer(lambda: L.GlobalAveragePooling2D(), x, lambda w, x: x.mean((1, 2)))
    check_layer(lambda: L.GlobalMaxPooling1D(), x1, lambda w, x: x.max(1))
    with pytest.raises(ValueError, match=r"pool_size \(3, 3\) is larger than the input's spatial "
                                         r"size \(2, 2\) under 'valid' padding"):
        L.MaxPooling2D(3)(pf.ones((1, 2, 2, 1)))


def test_keras_conv_errors():
    c = L.Conv2D(4, 3)
    c(pf.ones((1, 5, 5, 3)))
    with pytest.raises(ValueError, match=r"Conv2D 'conv2d(_\d+)?' expects 3 input channels; got "
                                         r"2"):
        c(pf.ones((1, 5, 5, 2)))
    with pytest.raises(ValueError, match=r"padding must be 'valid' or 'same'; got 'full'"):
        L.Conv2D(4, 3, padding="full")
    with pytest.raises(ValueError, match=r"expects input of rank 4"):
        L.Conv2D(4, 3)(pf.ones((5, 5, 3)))
    with pytest.raises(ValueError, match=r"Conv2D 'conv2d(_\d+)?': conv2d: the kernel spans 5 "
                                         r"input positions along the height"):
        L.Conv2D(4, 5)(pf.ones((1, 3, 3, 2)))
    with pytest.raises(ValueError, match=r"MaxPool2d 'max_pool2d(_\d+)?': max_pool2d: the output "
                                         r"would be empty"):
        nn.MaxPool2d(4)(pf.ones((1, 1, 2, 2)))


def test_small_cnn_trains_one_step_in_both_idioms():
    pf.manual_seed(0)
    keras_cnn = pf.Sequential([L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(),
                               L.Flatten(), L.Dense(3)])
    x = pf.randn(2, 8, 8, 1)
    loss = pf.losses.SparseCategoricalCrossentropy(from_logits=True)([0, 2], keras_cnn(x))
    loss.backward()
    assert all(p.grad is not None for p in keras_cnn.parameters())
    torch_cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(36, 3))
    out = torch_cnn(pf.randn(2, 1, 8, 8))
    nn.CrossEntropyLoss()(out, pf.tensor([0, 2])).backward()
    assert all(p.grad is not None for p in torch_cnn.parameters())
