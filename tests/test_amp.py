"""Mixed precision: pf.autocast, pf.amp.GradScaler, Keras dtype policies and
LossScaleOptimizer.

Oracles: NumPy in float64 on the bfloat16/float16-rounded operands (what a
16-bit product with float32 accumulation computes, up to the final rounding),
PyTorch's autocast and GradScaler on the CPU where torch is installed, and
the same training run in float32.
"""
import os

import ml_dtypes
import numpy as np
import pytest

import pyframe as pf

try:
    import torch
except ImportError:  # torch is a second oracle only
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")

BF16 = np.dtype(ml_dtypes.bfloat16)


@pytest.fixture(autouse=True)
def _reset_policy():
    yield
    pf.mixed_precision.set_global_policy("float32")
    assert pf.amp.get_autocast_dtype("cpu") is None


def rounded(a, dtype):
    """a rounded to a 16-bit dtype, back in float64 (the exact operand a 16-bit kernel sees)."""
    return np.asarray(a).astype(dtype).astype(np.float64)


# ------------------------------------------------------------------ autocast

def test_products_run_in_bfloat16_and_match_the_rounded_oracle():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((7, 33)).astype(np.float32)
    b = rng.standard_normal((33, 5)).astype(np.float32)
    with pf.autocast("cpu"):
        c = pf.tensor(a) @ pf.tensor(b)
        d = pf.matmul(pf.tensor(a), pf.tensor(b))
        e = pf.einsum("ij,jk->ik", pf.tensor(a), pf.tensor(b))
    for r in (c, d, e):
        assert r.dtype == pf.bfloat16
        want = rounded(a, BF16) @ rounded(b, BF16)
        got = np.asarray(r.astype(pf.float32), dtype=np.float64)
        # float32 accumulation, then one rounding to bfloat16 (8 significant bits)
        np.testing.assert_allclose(got, want, rtol=2 ** -8, atol=1e-6 * np.abs(want).max())
    # outside the block the same product is float32 again
    assert (pf.tensor(a) @ pf.tensor(b)).dtype == pf.float32


def test_float16_autocast_and_nesting():
    a = pf.ones((2, 3))
    with pf.autocast("cpu", dtype=pf.float16):
        assert (a @ a.T).dtype == pf.float16
        with pf.autocast("cpu", enabled=False):
            assert (a @ a.T).dtype == pf.float32
            with pf.autocast("cpu", dtype=pf.bfloat16):
                assert (a @ a.T).dtype == pf.bfloat16
            assert (a @ a.T).dtype == pf.float32
        assert (a @ a.T).dtype == pf.float16
        assert pf.amp.is_autocast_enabled("cpu")
        assert not pf.amp.is_autocast_enabled("cuda")
    assert not pf.amp.is_autocast_enabled("cpu")


def test_autocast_restores_after_an_exception_and_works_as_decorator():
    a = pf.ones((2, 2))
    with pytest.raises(ZeroDivisionError):
        with pf.autocast("cpu"):
            1 / 0
    assert (a @ a).dtype == pf.float32

    @pf.autocast("cpu")
    def f(x):
        return x @ x
    assert f(a).dtype == pf.bfloat16
    assert (a @ a).dtype == pf.float32


def test_float32_ops_cast_16_bit_inputs_up():
    x = pf.tensor(np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)).astype(pf.bfloat16)
    with pf.autocast("cpu"):
        s = pf.softmax(x, axis=-1)
        ls = pf.log_softmax(x, axis=-1)
        ln = pf.nn.functional.layer_norm(x, (4,))
    for r in (s, ls, ln):
        assert r.dtype == pf.float32
    xf = rounded(np.asarray(x.astype(pf.float32)), BF16)
    e = np.exp(xf - xf.max(-1, keepdims=True))
    np.testing.assert_allclose(np.asarray(s), e / e.sum(-1, keepdims=True), rtol=1e-6)
    # outside autocast softmax of bfloat16 stays bfloat16
    assert pf.softmax(x, axis=-1).dtype == pf.bfloat16


def test_autocast_leaves_float64_and_integers_alone():
    with pf.autocast("cpu"):
        assert (pf.ones((2, 2), dtype=pf.float64) @ pf.ones((2, 2), dtype=pf.float64)).dtype \
            == pf.float64
        assert (pf.ones((2, 2), dtype=pf.int64) @ pf.ones((2, 2), dtype=pf.int64)).dtype \
            == pf.int64
        # elementwise ops follow promotion, not autocast
        assert (pf.ones(3) + pf.ones(3)).dtype == pf.float32


def test_autocast_lists():
    ops = pf.amp.autocast_ops()
    assert {"matmul", "einsum", "bmm"} <= set(ops["lower"])
    assert {"softmax", "cross_entropy", "layer_norm", "conv2d"} <= set(ops["float32"])
    assert not set(ops["lower"]) & set(ops["float32"])
    table = {r["name"] for r in pf._C._op_table()}
    assert set(ops["lower"]) | set(ops["float32"]) <= table


def test_gradients_of_float32_weights_arrive_in_float32():
    rng = np.random.default_rng(1)
    xa = rng.standard_normal((4, 6)).astype(np.float32)
    wa = rng.standard_normal((6, 3)).astype(np.float32)
    x = pf.tensor(xa)
    w = pf.tensor(wa, requires_grad=True)
    with pf.autocast("cpu"):
        y = x @ w
        loss = (y.astype(pf.float32) ** 2).sum()
    loss.backward()
    assert w.grad.dtype == pf.float32
    # d/dw sum((x w)^2) = 2 x^T (x w), every product on bf16-rounded operands
    xb, wb = rounded(xa, BF16), rounded(wa, BF16)
    yb = rounded(xb @ wb, BF16)
    gy = rounded(2 * yb, BF16)
    want = xb.T @ gy
    np.testing.assert_allclose(np.asarray(w.grad, dtype=np.float64), want, rtol=2 ** -6,
                               atol=2 ** -6 * np.abs(want).max())


def test_autocast_bad_arguments():
    with pytest.raises(ValueError, match="autocast: device_type must be 'cpu' or 'cuda'"):
        pf.autocast("tpu")
    with pytest.raises(ValueError, match="autocast: dtype must be pf.bfloat16 or pf.float16; "
                                         "got float64"):
        pf.autocast("cpu", dtype=pf.float64)
    with pytest.raises(TypeError, match="autocast: enabled must be a bool"):
        pf.autocast("cpu", enabled="yes")
    with pytest.raises(ValueError, match="autocast: device_type must be"):
        pf._C._autocast_set("gpu", None)
    assert pf.autocast("cuda:1").device_type == "cuda"
    assert pf.autocast("cuda").fast_dtype == pf.float16
    assert pf.autocast("cpu").fast_dtype == pf.bfloat16


@needs_torch
def test_mlp_step_matches_torch_autocast():
    rng = np.random.default_rng(2)
    xa = rng.standard_normal((16, 10)).astype(np.float32)
    w1 = rng.standard_normal((10, 32)).astype(np.float32) * 0.3
    w2 = rng.standard_normal((32, 4)).astype(np.float32) * 0.3
    labels = rng.integers(0, 4, 16)

    p1, p2 = pf.tensor(w1, requires_grad=True), pf.tensor(w2, requires_grad=True)
    with pf.autocast("cpu"):
        h = pf.relu(pf.tensor(xa) @ p1)
        logits = h @ p2
        loss = pf.nn.functional.cross_entropy(logits, pf.tensor(labels))
    loss.backward()

    t1 = torch.tensor(w1, requires_grad=True)
    t2 = torch.tensor(w2, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        th = torch.relu(torch.tensor(xa) @ t1)
        tl = th @ t2
        tloss = torch.nn.functional.cross_entropy(tl, torch.tensor(labels))
    tloss.backward()
    assert logits.dtype == pf.bfloat16 and tl.dtype == torch.bfloat16
    assert loss.dtype == pf.float32 and tloss.dtype == torch.float32
    # both round the same float32 sums to bfloat16: a few bf16 ulps apart at most
    np.testing.assert_allclose(float(loss), float(tloss.detach()), rtol=2e-2)
    for g, tg in ((p1.grad, t1.grad), (p2.grad, t2.grad)):
        assert g.dtype == pf.float32
        tgn = tg.numpy()
        np.testing.assert_allclose(np.asarray(g), tgn, rtol=5e-2, atol=3e-2 * np.abs(tgn).max())


# ------------------------------------------------------------------ GradScaler

def _model_and_opt(seed=0, lr=0.1):
    pf.manual_seed(seed)
    model = pf.nn.Sequential(pf.nn.Linear(5, 8), pf.nn.ReLU(), pf.nn.Linear(8, 2))
    return model, pf.optim.SGD(model.parameters(), lr=lr)


def _data(seed=3):
    rng = np.random.default_rng(seed)
    return (pf.tensor(rng.standard_normal((32, 5)).astype(np.float32)),
            pf.tensor(rng.integers(0, 2, 32)))


def _loss(model, x, y):
    return pf.nn.functional.cross_entropy(model(x), y)


def test_scaled_steps_equal_unscaled_steps():
    """A power-of-two scale is exact in float32: scaled training equals plain training."""
    x, y = _data()
    m1, o1 = _model_and_opt()
    m2, o2 = _model_and_opt()
    scaler = pf.amp.GradScaler("cpu", init_scale=2.0 ** 12)
    for _ in range(5):
        o1.zero_grad()
        _loss(m1, x, y).backward()
        o1.step()
        o2.zero_grad()
        scaler.scale(_loss(m2, x, y)).backward()
        scaler.step(o2)
        scaler.update()
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(np.asarray(p1), np.asarray(p2), rtol=1e-6, atol=1e-7)
    assert scaler.get_scale() == 2.0 ** 12
    assert o2.loss_scale_factor is None     # the fold into the update is undone


def test_unscale_then_clip_then_step():
    x, y = _data()
    m1, o1 = _model_and_opt()
    m2, o2 = _model_and_opt()
    scaler = pf.amp.GradScaler("cpu", init_scale=1024.0)
    o1.zero_grad()
    _loss(m1, x, y).backward()
    pf.nn.utils.clip_grad_norm_(m1.parameters(), 0.1)
    o1.step()
    o2.zero_grad()
    scaler.scale(_loss(m2, x, y)).backward()
    scaler.unscale_(o2)
    pf.nn.utils.clip_grad_norm_(m2.parameters(), 0.1)
    scaler.step(o2)
    scaler.update()
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(np.asarray(p1), np.asarray(p2), rtol=1e-5, atol=1e-6)


def test_overflow_skips_the_step_and_backs_off():
    x, y = _data()
    model, opt = _model_and_opt()
    before = [np.asarray(p).copy() for p in model.parameters()]
    scaler = pf.amp.GradScaler("cpu", init_scale=256.0, growth_interval=2)
    opt.zero_grad()
    scaler.scale(_loss(model, x, y)).backward()
    first = next(iter(model.parameters()))
    g = np.asarray(first.grad)
    g[0, 0] = np.inf                      # an overflowed gradient
    assert scaler.step(opt) is None
    scaler.update()
    for b, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(b, np.asarray(p))
    assert scaler.get_scale() == 128.0
    # two clean steps grow it back
    for _ in range(2):
        opt.zero_grad()
        scaler.scale(_loss(model, x, y)).backward()
        scaler.step(opt)
        scaler.update()
    assert scaler.get_scale() == 256.0


@needs_torch
def test_scale_schedule_matches_torch():
    """The same pattern of overflowing and clean steps gives PyTorch's scales."""
    pattern = [False, True, False, False, False, True, True, False, False, False, False]
    scaler = pf.amp.GradScaler("cpu", init_scale=64.0, growth_factor=3.0, backoff_factor=0.25,
                               growth_interval=3)
    tscaler = torch.amp.GradScaler("cpu", init_scale=64.0, growth_factor=3.0,
                                   backoff_factor=0.25, growth_interval=3)
    w = pf.tensor(np.ones(3, np.float32), requires_grad=True)
    opt = pf.optim.SGD([w], lr=0.01)
    tw = torch.ones(3, requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.01)
    for bad in pattern:
        opt.zero_grad()
        topt.zero_grad()
        scaler.scale((w * 2.0).sum()).backward()
        tscaler.scale((tw * 2.0).sum()).backward()
        if bad:
            np.asarray(w.grad)[1] = np.nan
            tw.grad[1] = float("nan")
        scaler.step(opt)
        tscaler.step(topt)
        scaler.update()
        tscaler.update()
        assert scaler.get_scale() == tscaler.get_scale()
        np.testing.assert_allclose(np.asarray(w), tw.detach().numpy(), rtol=1e-6)


def test_scaler_state_dict_round_trip_and_disabled():
    s = pf.amp.GradScaler("cpu", init_scale=8.0, growth_interval=5)
    s._growth_tracker = 3
    t = pf.amp.GradScaler("cpu")
    t.load_state_dict(s.state_dict())
    assert t.get_scale() == 8.0 and t.state_dict() == s.state_dict()
    off = pf.amp.GradScaler("cpu", enabled=False)
    loss = pf.ones(())
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}
    assert s.scale([pf.ones(()), (pf.ones(()),)])[1][0].item() == 8.0


def test_scaler_misuse_raises():
    model, opt = _model_and_opt()
    x, y = _data()
    s = pf.amp.GradScaler("cpu")
    with pytest.raises(RuntimeError, match="GradScaler.update: no step"):
        s.update()
    opt.zero_grad()
    s.scale(_loss(model, x, y)).backward()
    s.unscale_(opt)
    with pytest.raises(RuntimeError, match="GradScaler.unscale_: already called"):
        s.unscale_(opt)
    s.step(opt)
    with pytest.raises(RuntimeError, match="GradScaler.step: already called"):
        s.step(opt)
    with pytest.raises(RuntimeError, match="GradScaler.unscale_: called after step"):
        s.unscale_(opt)
    s.update()
    with pytest.raises(TypeError, match="GradScaler.scale: expected a floating-point tensor"):
        s.scale(pf.ones(2, dtype=pf.int64))
    with pytest.raises(TypeError, match="GradScaler.scale: expected a tensor"):
        s.scale("loss")
    with pytest.raises(ValueError, match="GradScaler: backoff_factor must be a number in"):
        pf.amp.GradScaler(backoff_factor=1.5)
    with pytest.raises(ValueError, match="GradScaler: growth_interval must be an int >= 1"):
        pf.amp.GradScaler(growth_interval=0)
    with pytest.raises(ValueError, match="GradScaler: device_type must be"):
        pf.amp.GradScaler("tpu")


# ------------------------------------------------------------------ Keras policies

def test_policies():
    p = pf.mixed_precision.Policy("mixed_bfloat16")
    assert (p.compute_dtype, p.variable_dtype, p.is_mixed) == ("bfloat16", "float32", True)
    assert pf.mixed_precision.DTypePolicy(pf.float64).name == "float64"
    with pytest.raises(ValueError, match="DTypePolicy: unknown policy 'mixed_int8'"):
        pf.mixed_precision.Policy("mixed_int8")
    pf.mixed_precision.set_global_policy("mixed_float16")
    assert pf.mixed_precision.global_policy().name == "mixed_float16"
    layer = pf.layers.Dense(4)
    assert layer.dtype == pf.float32 and layer.compute_dtype == pf.float16
    assert layer.dtype_policy == pf.mixed_precision.Policy("mixed_float16")
    assert pf.layers.Dense(4, dtype="float32").compute_dtype == pf.float32
    assert layer.get_config()["dtype"] == "mixed_float16"
    assert pf.layers.Dense.from_config(layer.get_config()).compute_dtype == pf.float16


def test_mixed_layer_computes_its_product_in_bfloat16():
    pf.mixed_precision.set_global_policy("mixed_bfloat16")
    pf.manual_seed(0)
    layer = pf.layers.Dense(6, use_bias=False)
    rng = np.random.default_rng(4)
    xa = rng.standard_normal((3, 9)).astype(np.float32)
    out = layer(pf.tensor(xa))
    assert out.dtype == pf.bfloat16 and layer.kernel.dtype == pf.float32
    want = rounded(xa, BF16) @ rounded(np.asarray(layer.kernel), BF16)
    np.testing.assert_allclose(np.asarray(out.astype(pf.float32), dtype=np.float64), want,
                               rtol=2 ** -8, atol=1e-6 * np.abs(want).max())
    # the global policy does not leak autocast out of the layer
    assert (pf.ones((2, 2)) @ pf.ones((2, 2))).dtype == pf.float32


def _fit(policy, epochs=4):
    pf.mixed_precision.set_global_policy(policy)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 12)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    pf.manual_seed(0)
    model = pf.Sequential([pf.layers.Dense(32, activation="relu", input_shape=(12,)),
                           pf.layers.Dense(3)])
    model.compile(optimizer="adam",
                  loss=pf.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    hist = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, validation_split=0.2,
                     shuffle=False)
    return model, hist.history


def test_fit_with_mixed_policies_tracks_float32():
    _, ref = _fit("float32")
    for policy in ("mixed_bfloat16", "mixed_float16"):
        model, hist = _fit(policy)
        # 16-bit products perturb each step slightly; the curves stay together
        np.testing.assert_allclose(hist["loss"], ref["loss"], rtol=2e-2)
        np.testing.assert_allclose(hist["val_loss"], ref["val_loss"], rtol=2e-2)
        assert hist["loss"][-1] < hist["loss"][0]
        opt = model.__dict__["_compiled"].optimizer
        is_lso = isinstance(opt, pf.optimizers.LossScaleOptimizer)
        assert is_lso == (policy == "mixed_float16")


def test_loss_scale_optimizer_skips_overflow_and_saves(tmp_path):
    pf.mixed_precision.set_global_policy("mixed_float16")
    model, _ = _fit("mixed_float16", epochs=1)
    opt = model.__dict__["_compiled"].optimizer
    assert isinstance(opt, pf.optimizers.LossScaleOptimizer)
    scale = opt.loss_scale_factor
    assert 1.0 <= scale <= 2.0 ** 15
    path = os.path.join(tmp_path, "mixed.pfm")
    model.save(path)
    pf.mixed_precision.set_global_policy("float32")
    again = pf.load_model(path)
    assert again.layers[0].dtype_policy.name == "mixed_float16"
    x = pf.tensor(np.ones((2, 12), np.float32))
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(model(x)))
    assert isinstance(again.__dict__["_compiled"].optimizer, pf.optimizers.LossScaleOptimizer)

    # apply() with an infinite gradient: no update, the scale halves
    w = pf.tensor(np.ones(2, np.float32), requires_grad=True)
    lso = pf.optimizers.LossScaleOptimizer(pf.optimizers.SGD(0.1), initial_scale=64.0)
    lso.build([w])
    lso.apply([pf.tensor([np.inf, 1.0])], [w])
    np.testing.assert_array_equal(np.asarray(w), [1.0, 1.0])
    assert lso.loss_scale_factor == 32.0
    lso.apply([pf.tensor([32.0, 64.0])], [w])
    np.testing.assert_allclose(np.asarray(w), [0.9, 0.8], rtol=1e-6)


def test_loss_scale_optimizer_bad_input():
    with pytest.raises(TypeError, match="LossScaleOptimizer: inner_optimizer must be a pyframe "
                                        "optimizer"):
        pf.optimizers.LossScaleOptimizer("adam")
    inner = pf.optimizers.LossScaleOptimizer(pf.optimizers.Adam())
    with pytest.raises(TypeError, match="already a LossScaleOptimizer"):
        pf.optimizers.LossScaleOptimizer(inner)
