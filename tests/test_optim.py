"""pyframe.optim / pyframe.optimizers: the fused updates against closed forms
written here in NumPy float64 and against torch.optim, clipping, schedules,
state_dict, param groups, the Keras idiom, bad inputs and small training runs."""
import math
import subprocess
import sys

import numpy as np
import pytest

import pyframe as pf

try:
    import torch
except ImportError:     # the torch comparisons are skipped, nothing else
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

SHAPES = [(5, 7), (3,), (2, 3, 4)]


def leaf(a):
    t = pf.tensor(a)
    t.requires_grad_(True)
    return t


def grads_for(seed, shapes, dtype, steps):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]


# --------------------------------------------------------------- references

def np_update(algo, o, p, g, st, t, keras=False):
    """One step of `algo` on float64 arrays: p, g arrays; st a dict of arrays
    (updated in place); t the step number after incrementing.  Returns the new p.
    Written from the published formulas (PyTorch's docs, Keras's sources)."""
    lr, wd = o["lr"], o.get("weight_decay", 0.0)
    decoupled = o.get("decoupled", False) or algo == "lion"
    if o.get("maximize"):
        g = -g
    if wd and decoupled:
        p = p - lr * wd * p
    elif wd:
        g = g + wd * p
    if algo == "sgd":
        mom, damp = o.get("momentum", 0.0), o.get("dampening", 0.0)
        if mom == 0:
            return p - lr * g
        if keras:
            st["b"] = mom * st["b"] - lr * g
            return p + (mom * st["b"] - lr * g if o.get("nesterov") else st["b"])
        st["b"] = g.copy() if t == 1 else mom * st["b"] + (1 - damp) * g
        d = g + mom * st["b"] if o.get("nesterov") else st["b"]
        return p - lr * d
    if algo == "adam":
        b1, b2, eps = o["b1"], o["b2"], o["eps"]
        st["m"] = b1 * st["m"] + (1 - b1) * g
        st["v"] = b2 * st["v"] + (1 - b2) * g * g
        v = st["v"]
        if o.get("amsgrad"):
            st["vm"] = np.maximum(st["vm"], st["v"])
            v = st["vm"]
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        if keras:
            return p - lr * math.sqrt(bc2) / bc1 * st["m"] / (np.sqrt(v) + eps)
        return p - lr / bc1 * st["m"] / (np.sqrt(v) / math.sqrt(bc2) + eps)
    if algo == "rmsprop":
        a, eps, mom = o["alpha"], o["eps"], o.get("momentum", 0.0)
        st["sq"] = a * st["sq"] + (1 - a) * g * g
        q = st["sq"]
        if o.get("centered"):
            st["ga"] = a * st["ga"] + (1 - a) * g
            q = q - st["ga"] ** 2
        if keras:
            inc = lr * g / np.sqrt(q + eps)
            if mom > 0:
                st["b"] = mom * st["b"] + inc
                return p - st["b"]
            return p - inc
        den = np.sqrt(q) + eps
        if mom > 0:
            st["b"] = mom * st["b"] + g / den
            return p - lr * st["b"]
        return p - lr * g / den
    if algo == "adagrad":
        st["s"] = st["s"] + g * g
        clr = lr / (1 + (t - 1) * o.get("lr_decay", 0.0))
        if keras:
            return p - clr * g / np.sqrt(st["s"] + o["eps"])
        return p - clr * g / (np.sqrt(st["s"]) + o["eps"])
    if algo == "adamax":
        b1, b2, eps = o["b1"], o["b2"], o["eps"]
        st["m"] = b1 * st["m"] + (1 - b1) * g
        if keras:
            st["u"] = np.maximum(b2 * st["u"], np.abs(g))
            return p - lr / (1 - b1 ** t) * st["m"] / (st["u"] + eps)
        st["u"] = np.maximum(b2 * st["u"], np.abs(g) + eps)
        return p - lr / (1 - b1 ** t) * st["m"] / st["u"]
    if algo == "nadam":
        b1, b2, eps, md = o["b1"], o["b2"], o["eps"], o["md"]
        mu = b1 * (1 - 0.5 * 0.96 ** (t * md))
        mu1 = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * md))
        st["mp"] = st["mp"] * mu
        st["m"] = b1 * st["m"] + (1 - b1) * g
        st["v"] = b2 * st["v"] + (1 - b2) * g * g
        den = np.sqrt(st["v"] / (1 - b2 ** t)) + eps
        m_hat = mu1 * st["m"] / (1 - st["mp"] * mu1) + (1 - mu) * g / (1 - st["mp"])
        return p - lr * m_hat / den
    if algo == "lion":
        b1, b2 = o["b1"], o["b2"]
        p = p - lr * np.sign(b1 * st["m"] + (1 - b1) * g)
        st["m"] = b2 * st["m"] + (1 - b2) * g
        return p
    raise AssertionError(algo)


def np_init(algo, shape, o):
    z = np.zeros(shape)
    return {"m": z.copy(), "v": z.copy(), "vm": z.copy(), "b": z.copy(), "sq": z.copy(),
            "ga": z.copy(), "u": z.copy(), "mp": 1.0,
            "s": np.full(shape, o.get("init_acc", 0.0))}


# (pf class, constructor kwargs, reference options, torch class name or None)
CASES = [
    ("sgd", pf.optim.SGD, dict(lr=0.1), dict(lr=0.1), "SGD"),
    ("sgd", pf.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01),
     dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01), "SGD"),
    ("sgd", pf.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True, maximize=True),
     dict(lr=0.05, momentum=0.8, nesterov=True, maximize=True), "SGD"),
    ("adam", pf.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
     dict(lr=0.01, b1=0.8, b2=0.99, eps=1e-6, weight_decay=0.05), "Adam"),
    ("adam", pf.optim.Adam, dict(lr=0.01, amsgrad=True, maximize=True),
     dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-8, amsgrad=True, maximize=True), "Adam"),
    ("adam", pf.optim.AdamW, dict(lr=0.01, weight_decay=0.1),
     dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.1, decoupled=True), "AdamW"),
    ("adam", pf.optim.AdamW, dict(lr=0.01, amsgrad=True),
     dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.01, decoupled=True,
          amsgrad=True), "AdamW"),
    ("rmsprop", pf.optim.RMSprop, dict(lr=0.01, weight_decay=0.1),
     dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.1), "RMSprop"),
    ("rmsprop", pf.optim.RMSprop, dict(lr=0.01, alpha=0.9, momentum=0.7, centered=True),
     dict(lr=0.01, alpha=0.9, eps=1e-8, momentum=0.7, centered=True), "RMSprop"),
    ("rmsprop", pf.optim.RMSprop, dict(lr=0.01, momentum=0.5, maximize=True),
     dict(lr=0.01, alpha=0.99, eps=1e-8, momentum=0.5, maximize=True), "RMSprop"),
    ("adagrad", pf.optim.Adagrad, dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.3,
                                       weight_decay=0.01),
     dict(lr=0.1, lr_decay=0.05, init_acc=0.3, eps=1e-10, weight_decay=0.01), "Adagrad"),
    ("adamax", pf.optim.Adamax, dict(lr=0.01, weight_decay=0.1),
     dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.1), "Adamax"),
    ("adamax", pf.optim.Adamax, dict(lr=0.02, betas=(0.5, 0.9), maximize=True),
     dict(lr=0.02, b1=0.5, b2=0.9, eps=1e-8, maximize=True), "Adamax"),
    ("nadam", pf.optim.NAdam, dict(lr=0.01, weight_decay=0.1),
     dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-8, md=4e-3, weight_decay=0.1), "NAdam"),
    ("nadam", pf.optim.NAdam, dict(lr=0.01, momentum_decay=0.01, weight_decay=0.1,
                                   decoupled_weight_decay=True),
     dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-8, md=0.01, weight_decay=0.1, decoupled=True),
     "NAdam"),
    ("lion", pf.optim.Lion, dict(lr=0.01, weight_decay=0.1),
     dict(lr=0.01, b1=0.9, b2=0.99, weight_decay=0.1), None),
]
IDS = [f"{c[1].__name__}-{i}" for i, c in enumerate(CASES)]


def run_pf(cls, kwargs, x0s, grad_steps, dtype):
    params = [leaf(x.astype(dtype)) for x in x0s]
    opt = cls(params, **kwargs)
    for gs in grad_steps:
        for p, g in zip(params, gs):
            p.grad = pf.tensor(g.astype(dtype))
        opt.step()
    return [np.asarray(p) for p in params], opt


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_against_numpy_closed_form(case):
    algo, cls, kwargs, ref, _ = case
    rng = np.random.default_rng(1)
    x0s = [rng.standard_normal(s) for s in SHAPES]
    steps = grads_for(2, SHAPES, np.float64, 4)
    got, opt = run_pf(cls, kwargs, x0s, steps, np.float64)
    for k, (x, shape) in enumerate(zip(x0s, SHAPES)):
        st = np_init(algo, shape, ref)
        p = x.copy()
        for t, gs in enumerate(steps, 1):
            p = np_update(algo, ref, p, gs[k], st, t)
        np.testing.assert_allclose(got[k], p, rtol=1e-12, atol=1e-13)
    assert opt.iterations == 4
    assert float(opt.state[opt.param_groups[0]["params"][0]]["step"]) == 4.0
    # float32 follows the same formula in float32 arithmetic
    got32, _ = run_pf(cls, kwargs, x0s, steps, np.float32)
    for k in range(len(SHAPES)):
        np.testing.assert_allclose(got32[k], got[k], rtol=0, atol=5e-6)


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [c for c in CASES if c[4]], ids=[i for c, i in zip(CASES, IDS)
                                                                  if c[4]])
def test_against_torch_optim(case, dtype):
    algo, cls, kwargs, _, tname = case
    rng = np.random.default_rng(3)
    x0s = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    steps = grads_for(4, SHAPES, dtype, 10)
    got, _ = run_pf(cls, kwargs, x0s, steps, dtype)
    tparams = [torch.tensor(x, requires_grad=True) for x in x0s]
    topt = getattr(torch.optim, tname)(tparams, **kwargs)
    for gs in steps:
        for p, g in zip(tparams, gs):
            p.grad = torch.tensor(g)
        topt.step()
    for a, b in zip(got, tparams):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=0, atol=1e-6)


# Keras formulas and defaults (pf.optimizers) against the Keras update rules
KERAS = [
    ("sgd", pf.optimizers.SGD, dict(learning_rate=0.05, momentum=0.9),
     dict(lr=0.05, momentum=0.9)),
    ("sgd", pf.optimizers.SGD, dict(learning_rate=0.05, momentum=0.9, nesterov=True),
     dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("adam", pf.optimizers.Adam, dict(learning_rate=0.01),
     dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-7)),
    ("adam", pf.optimizers.AdamW, dict(learning_rate=0.01, amsgrad=True),
     dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-7, weight_decay=0.004, decoupled=True,
          amsgrad=True)),
    ("rmsprop", pf.optimizers.RMSprop, dict(learning_rate=0.01, momentum=0.5, centered=True),
     dict(lr=0.01, alpha=0.9, eps=1e-7, momentum=0.5, centered=True)),
    ("adagrad", pf.optimizers.Adagrad, dict(learning_rate=0.1),
     dict(lr=0.1, init_acc=0.1, eps=1e-7)),
    ("adamax", pf.optimizers.Adamax, dict(learning_rate=0.01, weight_decay=0.1),
     dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-7, weight_decay=0.1, decoupled=True)),
    ("nadam", pf.optimizers.Nadam, dict(learning_rate=0.01),
     dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-7, md=1.0)),
    ("lion", pf.optimizers.Lion, dict(learning_rate=0.01, weight_decay=0.1),
     dict(lr=0.01, b1=0.9, b2=0.99, weight_decay=0.1)),
]


@pytest.mark.parametrize("case", KERAS, ids=[f"{c[1].__name__}-{i}" for i, c in enumerate(KERAS)])
def test_keras_formulas(case):
    algo, cls, kwargs, ref = case
    rng = np.random.default_rng(5)
    x0s = [rng.standard_normal(s) for s in SHAPES]
    steps = grads_for(6, SHAPES, np.float64, 4)
    params = [leaf(x) for x in x0s]
    opt = cls(**kwargs)
    for gs in steps:
        opt.apply_gradients(zip([pf.tensor(g) for g in gs], params))
    for k, (x, shape) in enumerate(zip(x0s, SHAPES)):
        st = np_init(algo, shape, ref)
        p = x.copy()
        for t, gs in enumerate(steps, 1):
            p = np_update(algo, ref, p, gs[k], st, t, keras=True)
        np.testing.assert_allclose(np.asarray(params[k]), p, rtol=1e-12, atol=1e-13)
    assert opt.iterations == 4


def test_keras_defaults():
    assert pf.optimizers.Adam().get_config()["epsilon"] == 1e-7
    assert pf.optim.Adam(learning_rate=1e-3).defaults["eps"] == 1e-8
    assert pf.optimizers.SGD().learning_rate == 0.01
    assert pf.optimizers.RMSprop().defaults["alpha"] == 0.9
    assert pf.optimizers.Adagrad().defaults["initial_accumulator_value"] == 0.1
    assert pf.optimizers.AdamW().defaults["weight_decay"] == 0.004
    assert pf.optim.AdamW(learning_rate=1e-3).defaults["weight_decay"] == 0.01
    assert pf.optim.RMSprop(learning_rate=1e-3).defaults["alpha"] == 0.99
    assert isinstance(pf.optimizers.get("adam"), pf.optimizers.Adam)
    assert isinstance(pf.optimizers.get("RMSprop"), pf.optimizers.RMSprop)
    opt = pf.optimizers.Adam(0.02)           # Keras: the learning rate comes first
    assert opt.learning_rate == 0.02
    again = pf.optimizers.deserialize(pf.optimizers.serialize(opt))
    assert type(again) is pf.optimizers.Adam and again.get_config() == opt.get_config()


def test_spellings():
    a = pf.optim.Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-5)
    assert a.defaults["lr"] == 0.01 and a.defaults["betas"] == (0.8, 0.9)
    assert a.defaults["eps"] == 1e-5
    b = pf.optim.RMSprop(learning_rate=0.01, rho=0.8, epsilon=1e-6)
    assert b.defaults["alpha"] == 0.8 and b.defaults["eps"] == 1e-6
    assert pf.optim.SGD(0.5).learning_rate == 0.5
    with pytest.raises(TypeError, match="lr=.*learning_rate="):
        pf.optim.Adam(lr=0.1, learning_rate=0.2)
    # foreach / fused are accepted (the update is always fused)
    pf.optim.Adam([leaf(np.zeros(2))], lr=0.1, foreach=True, fused=True)


# ---------------------------------------------------------------- clipping

def clip_ref(gs, clipnorm=None, clipvalue=None, global_clipnorm=None):
    if clipnorm:
        return [g * clipnorm / max(np.linalg.norm(g), clipnorm) for g in gs]
    if global_clipnorm:
        n = math.sqrt(sum(float((g * g).sum()) for g in gs))
        return [g * global_clipnorm / max(n, global_clipnorm) for g in gs]
    if clipvalue:
        return [np.clip(g, -clipvalue, clipvalue) for g in gs]
    return gs


@pytest.mark.parametrize("clip", [dict(clipnorm=0.5), dict(clipvalue=0.3),
                                  dict(global_clipnorm=1.0), dict(global_clipnorm=100.0)])
@pytest.mark.parametrize("algo", ["sgd", "adam"])
def test_clipping(clip, algo):
    rng = np.random.default_rng(7)
    x0s = [rng.standard_normal(s) for s in SHAPES]
    steps = grads_for(8, SHAPES, np.float64, 3)
    if algo == "sgd":
        cls, kw, ref = pf.optim.SGD, dict(lr=0.1, momentum=0.9), dict(lr=0.1, momentum=0.9)
    else:
        cls, kw, ref = pf.optim.Adam, dict(lr=0.01), dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-8)
    got, _ = run_pf(cls, dict(kw, **clip), x0s, steps, np.float64)
    sts = [np_init(algo, s, ref) for s in SHAPES]
    ps = [x.copy() for x in x0s]
    for t, gs in enumerate(steps, 1):
        gs = clip_ref(gs, **clip)
        ps = [np_update(algo, ref, p, g, st, t) for p, g, st in zip(ps, gs, sts)]
    for a, b in zip(got, ps):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_global_clipnorm_spans_groups_and_loss_scale():
    rng = np.random.default_rng(9)
    xs = [rng.standard_normal((4, 3)), rng.standard_normal(5)]
    gs = [rng.standard_normal((4, 3)) * 10, rng.standard_normal(5) * 10]
    ps = [leaf(x) for x in xs]
    opt = pf.optim.SGD([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.5}], lr=0.1,
                       global_clipnorm=1.0, loss_scale_factor=4.0)
    for p, g in zip(ps, gs):
        p.grad = pf.tensor(g * 4.0)           # a scaled loss gives scaled gradients
    opt.step()
    clipped = clip_ref(gs, global_clipnorm=1.0)
    np.testing.assert_allclose(np.asarray(ps[0]), xs[0] - 0.1 * clipped[0], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(ps[1]), xs[1] - 0.5 * clipped[1], rtol=1e-12)
    assert opt.scale_loss(2.0) == 8.0


def test_clipping_nan_and_one_option_only():
    p = leaf(np.ones(3))
    opt = pf.optim.SGD([p], lr=0.1, global_clipnorm=1.0)
    p.grad = pf.tensor(np.array([1.0, float("inf"), 0.0]))
    opt.step()
    assert np.isnan(np.asarray(p)).all()          # Keras: a non-finite global norm gives NaN
    with pytest.raises(ValueError, match="SGD: only one of clipnorm, clipvalue and "
                                         "global_clipnorm"):
        pf.optim.SGD([leaf(np.ones(2))], lr=0.1, clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="Adam: invalid clipnorm=-1"):
        pf.optim.Adam([leaf(np.ones(2))], clipnorm=-1)


# ------------------------------------------------- layouts, threads, versions

def test_non_contiguous_parameter_and_gradient():
    rng = np.random.default_rng(11)
    base = rng.standard_normal((6, 8))
    steps = grads_for(12, [(8, 6)], np.float64, 3)
    big = pf.tensor(base)
    view = big.T                                  # a non-contiguous leaf sharing big's memory
    view.requires_grad_(True)
    assert view.stride() != (6, 1)
    opt = pf.optim.Adam([view], lr=0.01)
    ref = leaf(base.T.copy())
    ref_opt = pf.optim.Adam([ref], lr=0.01)
    for (g,) in steps:
        view.grad = pf.tensor(g)
        ref.grad = pf.tensor(g)
        opt.step()
        ref_opt.step()
    np.testing.assert_array_equal(np.asarray(big).T, np.asarray(ref))
    # a strided gradient
    q = leaf(np.zeros(4))
    g = pf.tensor(np.arange(8.0))[::2]
    q.grad = g
    pf.optim.SGD([q], lr=1.0).step()
    np.testing.assert_array_equal(np.asarray(q), -np.arange(0.0, 8.0, 2.0))


def test_large_parameters_threads_and_versions():
    rng = np.random.default_rng(13)
    x = rng.standard_normal(100_003).astype(np.float32)
    gs = [rng.standard_normal(100_003).astype(np.float32) for _ in range(3)]
    results = []
    old = pf.get_num_threads()
    try:
        for n in (1, 2):
            pf.set_num_threads(n)
            p = leaf(x)
            opt = pf.optim.Adam([p], lr=0.01, clipnorm=50.0)
            for g in gs:
                p.grad = pf.tensor(g)
                opt.step()
            results.append(np.asarray(p).copy())
    finally:
        pf.set_num_threads(old)
    np.testing.assert_array_equal(results[0], results[1])
    if torch is not None:
        tp = torch.tensor(x, requires_grad=True)
        topt = torch.optim.Adam([tp], lr=0.01)
        for g in gs:
            gg = torch.tensor(g, dtype=torch.float64)
            gg = gg * 50.0 / max(gg.norm().item(), 50.0)
            tp.grad = gg.float()
            topt.step()
        np.testing.assert_allclose(results[0], tp.detach().numpy(), atol=1e-6)


def test_update_bumps_versions():
    p = leaf(np.array([1.0, 2.0], dtype=np.float32))
    y = (p * p).sum()                 # mul saves p for its backward
    p.grad = pf.tensor([1.0, 1.0])
    pf.optim.SGD([p], lr=0.1).step()
    with pytest.raises(RuntimeError, match="version"):
        y.backward()


# ------------------------------------------------------- state_dict, groups

def test_state_dict_round_trip():
    rng = np.random.default_rng(15)
    x0s = [rng.standard_normal(s) for s in SHAPES]
    steps = grads_for(16, SHAPES, np.float64, 6)
    a = [leaf(x) for x in x0s]
    opt_a = pf.optim.NAdam(a, lr=0.01)
    for gs in steps[:3]:
        for p, g in zip(a, gs):
            p.grad = pf.tensor(g)
        opt_a.step()
    sd = opt_a.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2]
    assert sorted(sd["state"][0]) == ["exp_avg", "exp_avg_sq", "mu_product", "step"]
    assert sd["param_groups"][0]["params"] == [0, 1, 2] and sd["iterations"] == 3
    b = [leaf(np.asarray(p)) for p in a]
    opt_b = pf.optim.NAdam(b, lr=0.5)
    opt_b.load_state_dict(sd)
    assert opt_b.param_groups[0]["lr"] == 0.01 and opt_b.iterations == 3
    assert opt_b.state[b[0]]["exp_avg"] is not sd["state"][0]["exp_avg"]   # copied
    for gs in steps[3:]:
        for p, q, g in zip(a, b, gs):
            p.grad = pf.tensor(g)
            q.grad = pf.tensor(g)
        opt_a.step()
        opt_b.step()
    for p, q in zip(a, b):
        np.testing.assert_array_equal(np.asarray(p), np.asarray(q))


@needs_torch
def test_loads_a_torch_state_dict():
    rng = np.random.default_rng(17)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    gs = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(6)]
    for tname, kw in [("Adam", dict(lr=0.01, amsgrad=True)), ("SGD", dict(lr=0.1, momentum=0.9)),
                      ("RMSprop", dict(lr=0.01, centered=True, momentum=0.3))]:
        tp = torch.tensor(x, requires_grad=True)
        topt = getattr(torch.optim, tname)([tp], **kw)
        for g in gs[:3]:
            tp.grad = torch.tensor(g)
            topt.step()
        tsd = topt.state_dict()
        sd = {"state": {k: {n: (v.numpy() if torch.is_tensor(v) else v) for n, v in s.items()}
                        for k, s in tsd["state"].items()},
              "param_groups": tsd["param_groups"]}
        p = leaf(tp.detach().numpy().copy())
        opt = getattr(pf.optim, tname)([p], **kw)
        opt.load_state_dict(sd)
        for g in gs[3:]:
            tp.grad = torch.tensor(g)
            p.grad = pf.tensor(g)
            topt.step()
            opt.step()
        np.testing.assert_allclose(np.asarray(p), tp.detach().numpy(), atol=1e-6)


def test_load_state_dict_errors():
    p = leaf(np.zeros((2, 3)))
    opt = pf.optim.Adam([p], lr=0.1)
    p.grad = pf.tensor(np.ones((2, 3)))
    opt.step()
    sd = opt.state_dict()
    other = pf.optim.Adam([leaf(np.zeros((3, 2)))], lr=0.1)
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: state\[0\]\['exp_avg'\] has "
                                         r"shape \(2, 3\) but its parameter has shape \(3, 2\)"):
        other.load_state_dict(sd)
    two = pf.optim.Adam([leaf(np.zeros((2, 3))), leaf(np.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="group 0 has 1 parameters in the state_dict but 2"):
        two.load_state_dict(sd)
    bad = {"state": {0: dict(sd["state"][0], momentum_buffer=np.zeros((2, 3)))},
           "param_groups": sd["param_groups"]}
    fresh = pf.optim.Adam([leaf(np.zeros((2, 3)))], lr=0.1)
    with pytest.raises(ValueError, match=r"state\[0\] has an unknown entry 'momentum_buffer'"):
        fresh.load_state_dict(bad)
    missing = {"state": {0: {"step": 1.0, "exp_avg": np.zeros((2, 3))}},
               "param_groups": sd["param_groups"]}
    with pytest.raises(ValueError, match=r"state\[0\] has no 'exp_avg_sq' entry"):
        fresh.load_state_dict(missing)
    with pytest.raises(ValueError, match="has 0 parameter group"):
        fresh.load_state_dict({"state": {}, "param_groups": []})


@needs_torch
def test_param_groups_against_torch():
    rng = np.random.default_rng(19)
    xs = [rng.standard_normal((3, 3)).astype(np.float32), rng.standard_normal(4).astype(np.float32)]
    gs = [[rng.standard_normal(x.shape).astype(np.float32) for x in xs] for _ in range(5)]
    ps = [leaf(x) for x in xs]
    tps = [torch.tensor(x, requires_grad=True) for x in xs]
    groups = lambda a, b: [{"params": [a]}, {"params": [b], "lr": 0.1, "betas": (0.5, 0.9),
                                             "weight_decay": 0.1}]
    opt = pf.optim.Adam(groups(*ps), lr=0.01)
    topt = torch.optim.Adam(groups(*tps), lr=0.01)
    for k, step in enumerate(gs):
        for p, tp, g in zip(ps, tps, step):
            if k == 2 and p is ps[1]:         # a parameter without gradient is skipped
                p.grad = None
                tp.grad = None
                continue
            p.grad = pf.tensor(g)
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(np.asarray(p), tp.detach().numpy(), atol=1e-6)
    assert float(opt.state[ps[1]]["step"]) == 4.0
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(np.asarray(ps[0].grad), 0.0)
    opt.zero_grad()
    assert ps[0].grad is None
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [ps[0]]})


def test_param_group_added_later_and_named_parameters():
    a, b = leaf(np.ones(2, np.float32)), leaf(np.ones(3, np.float32))
    opt = pf.optim.SGD([("w", a)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["w"]
    opt.add_param_group({"params": b, "lr": 1.0})
    a.grad = pf.tensor([1.0, 1.0])
    b.grad = pf.tensor([1.0, 1.0, 1.0])
    opt.step()
    np.testing.assert_allclose(np.asarray(a), 0.9)
    np.testing.assert_allclose(np.asarray(b), 0.0)
    b.grad = pf.tensor([1.0, 1.0, 1.0])
    a.grad = None
    opt.step()                                   # the cached lists still see the grads
    np.testing.assert_allclose(np.asarray(a), 0.9)
    np.testing.assert_allclose(np.asarray(b), -1.0)


# ------------------------------------------------------------ Keras idiom

def test_keras_idiom_build_and_apply():
    w, b = leaf(np.ones((2, 2))), leaf(np.zeros(2))
    opt = pf.optim.Adam(learning_rate=0.1)
    assert not opt.built
    it = opt.apply_gradients([(pf.tensor(np.ones((2, 2))), w), (np.ones(2), b)])
    assert it == 1 and opt.built and opt.iterations == 1
    np.testing.assert_allclose(np.asarray(w), 0.9, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(b), -0.1, rtol=1e-6)
    assert len(opt.variables) == 6          # step, exp_avg, exp_avg_sq per variable
    opt.apply([pf.tensor(np.ones((2, 2))), None])
    assert float(opt.state[b]["step"]) == 1.0 and float(opt.state[w]["step"]) == 2.0
    with pytest.raises(ValueError, match="Adam: unknown variable"):
        opt.apply_gradients([(pf.tensor(np.ones(3)), leaf(np.ones(3)))])
    with pytest.raises(ValueError, match="no gradients provided"):
        opt.apply([None, None])
    built = pf.optimizers.SGD(0.1)
    built.build([w])
    assert float(built.state[w]["step"]) == 0.0
    with pytest.raises(RuntimeError, match="SGD.step\\(\\): the optimizer has no parameters"):
        pf.optim.SGD(lr=0.1).step()


def test_learning_rate_property_and_schedules():
    p = leaf(np.zeros(1, np.float32))
    opt = pf.optim.SGD([p], lr=0.1)
    assert opt.lr == 0.1 and opt.learning_rate == 0.1
    opt.lr = 0.5                                 # what ReduceLROnPlateau does
    assert opt.param_groups[0]["lr"] == 0.5
    with pytest.raises(ValueError, match="SGD: invalid learning rate -1.0"):
        opt.learning_rate = -1.0
    sched = pf.optim.schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
    opt = pf.optimizers.SGD(learning_rate=sched)
    for k in range(3):
        assert opt.learning_rate == 0.5 ** k
        opt.apply_gradients([(pf.tensor([1.0]), p)])
    np.testing.assert_allclose(np.asarray(p), -1.75, rtol=1e-12)
    with pytest.raises(TypeError, match="LearningRateSchedule as its learning rate"):
        opt.learning_rate = 0.1
    opt.learning_rate = pf.optim.schedules.InverseTimeDecay(1.0, 1, 1.0)
    assert opt.learning_rate == 1.0 / (1 + 3)
    assert pf.optim.Adam(learning_rate=lambda: 0.25).learning_rate == 0.25


# --------------------------------------------------------------- schedules

S = pf.optim.schedules


def test_schedules_closed_forms():
    e = S.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert e(0) == 0.1 and math.isclose(e(5), 0.1 * 0.5 ** 0.5) and math.isclose(e(20), 0.025)
    assert S.ExponentialDecay(0.1, 10, 0.5, staircase=True)(19) == 0.05
    pw = S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [pw(s) for s in (0, 10, 11, 20, 21, 1000)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    pd = S.PolynomialDecay(1.0, 10, end_learning_rate=0.1, power=2.0)
    assert math.isclose(pd(5), 0.9 * 0.25 + 0.1) and math.isclose(pd(50), 0.1)
    pc = S.PolynomialDecay(1.0, 10, end_learning_rate=0.0, cycle=True)
    assert pc(0) == 1.0 and math.isclose(pc(15), 1 - 15 / 20)
    it = S.InverseTimeDecay(1.0, decay_steps=2, decay_rate=0.5)
    assert math.isclose(it(3), 1 / (1 + 0.5 * 1.5))
    assert math.isclose(S.InverseTimeDecay(1.0, 2, 0.5, staircase=True)(3), 1 / 1.5)
    c = S.CosineDecay(1.0, decay_steps=10, alpha=0.1)
    assert c(0) == 1.0 and math.isclose(c(5), 0.9 * 0.5 + 0.1) and math.isclose(c(99), 0.1)
    w = S.CosineDecay(0.0, decay_steps=10, warmup_target=2.0, warmup_steps=4)
    assert w(0) == 0.0 and math.isclose(w(2), 1.0) and w(4) == 2.0
    assert math.isclose(w(9), 2.0 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert math.isclose(w(100), 0.0, abs_tol=1e-15)
    r = S.CosineDecayRestarts(1.0, first_decay_steps=10, t_mul=2.0, m_mul=0.5)
    assert math.isclose(r(10), 0.5)                       # second period starts at m_mul
    assert math.isclose(r(20), 0.5 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert math.isclose(r(30), 0.25)                      # third period, 40 steps from 30
    r1 = S.CosineDecayRestarts(1.0, first_decay_steps=4, t_mul=1.0, alpha=0.2)
    assert math.isclose(r1(6), 0.8 * 0.5 * (1 + math.cos(math.pi * 0.5)) + 0.2)
    for sched in (e, pw, pd, pc, it, c, w, r, S.OneCycle(0.1, 100)):
        again = S.deserialize(S.serialize(sched))
        assert type(again) is type(sched) and again.get_config() == sched.get_config()
        assert again(7) == sched(7)
        assert type(sched).from_config(sched.get_config())(3) == sched(3)
    with pytest.raises(ValueError, match="OneCycle: step 101 is past total_steps=100"):
        S.OneCycle(0.1, 100)(101)
    with pytest.raises(ValueError, match="expected one more value than boundaries"):
        S.PiecewiseConstantDecay([1, 2], [1.0])
    with pytest.raises(ValueError, match="CosineDecay: decay_steps must be > 0"):
        S.CosineDecay(1.0, 0)


def torch_lrs(make, n, lr=1.0):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr, momentum=0.9)
    sched = make(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@needs_torch
def test_schedules_against_torch():
    L = torch.optim.lr_scheduler
    cases = [
        # (PyTorch's cosine goes back up after T_max; Keras's stays at the floor)
        (S.CosineDecay(1.0, 20, alpha=0.1), lambda o: L.CosineAnnealingLR(o, 20, eta_min=0.1), 21),
        (S.ExponentialDecay(1.0, 1, 0.9), lambda o: L.ExponentialLR(o, 0.9), 10),
        (S.PiecewiseConstantDecay([4, 9], [1.0, 0.1, 0.01]),
         lambda o: L.MultiStepLR(o, [5, 10], 0.1), 15),
        (S.PolynomialDecay(1.0, 10, end_learning_rate=0.0, power=2.0),
         lambda o: L.PolynomialLR(o, 10, 2.0), 15),
        (S.CosineDecayRestarts(1.0, 5, t_mul=2.0, alpha=0.05),
         lambda o: L.CosineAnnealingWarmRestarts(o, 5, T_mult=2, eta_min=0.05), 40),
        (S.OneCycle(1.0, 50), lambda o: L.OneCycleLR(o, 1.0, total_steps=50), 50),
        (S.OneCycle(1.0, 50, pct_start=0.4, anneal_strategy="linear", three_phase=True),
         lambda o: L.OneCycleLR(o, 1.0, total_steps=50, pct_start=0.4,
                                anneal_strategy="linear", three_phase=True), 50),
    ]
    for sched, make, n in cases:
        ours = [sched(k) for k in range(n)]
        np.testing.assert_allclose(ours, torch_lrs(make, n), rtol=1e-10, atol=1e-12,
                                   err_msg=type(sched).__name__)


@needs_torch
def test_lr_scheduler_wrappers_against_torch():
    L, PL = torch.optim.lr_scheduler, pf.optim.lr_scheduler
    for ours, theirs, n in [
        (lambda o: PL.StepLR(o, 3, 0.5), lambda o: L.StepLR(o, 3, 0.5), 10),
        (lambda o: PL.MultiStepLR(o, [2, 5], 0.1), lambda o: L.MultiStepLR(o, [2, 5], 0.1), 8),
        (lambda o: PL.ExponentialLR(o, 0.8), lambda o: L.ExponentialLR(o, 0.8), 8),
        (lambda o: PL.CosineAnnealingLR(o, 6, 0.01), lambda o: L.CosineAnnealingLR(o, 6, 0.01), 6),
        (lambda o: PL.LambdaLR(o, lambda e: 1 / (e + 1)),
         lambda o: L.LambdaLR(o, lambda e: 1 / (e + 1)), 6),
        (lambda o: PL.OneCycleLR(o, 1.0, total_steps=20),
         lambda o: L.OneCycleLR(o, 1.0, total_steps=20), 20),
    ]:
        p = leaf(np.zeros(1, np.float32))
        opt = pf.optim.SGD([p], lr=1.0, momentum=0.9)
        sched = ours(opt)
        got, mom = [], []
        for _ in range(n):
            got.append(opt.param_groups[0]["lr"])
            mom.append(opt.param_groups[0]["momentum"])
            p.grad = pf.tensor([0.0])
            opt.step()
            sched.step()
        tp = torch.zeros(1, requires_grad=True)
        topt = torch.optim.SGD([tp], lr=1.0, momentum=0.9)
        tsched = theirs(topt)
        want, tmom = [], []
        for _ in range(n):
            want.append(topt.param_groups[0]["lr"])
            tmom.append(topt.param_groups[0]["momentum"])
            topt.step()
            tsched.step()
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(mom, tmom, rtol=1e-10)
        assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]


# -------------------------------------------------------------- bad inputs

def test_bad_hyper_parameters():
    p = [leaf(np.zeros(2))]
    with pytest.raises(ValueError, match=r"Adam: invalid learning rate lr=-0.001; expected a "
                                         r"finite number >= 0"):
        pf.optim.Adam(p, lr=-0.001)
    with pytest.raises(ValueError, match=r"Adam: invalid beta1 \(betas\[0\], beta_1\)=1.0; "
                                         r"expected 0 <= beta < 1"):
        pf.optim.Adam(p, betas=(1.0, 0.999))
    with pytest.raises(ValueError, match=r"Adamax: invalid beta2 .*=-0.5"):
        pf.optim.Adamax(p, beta_2=-0.5)
    with pytest.raises(ValueError, match=r"RMSprop: invalid alpha \(rho\)=1.5"):
        pf.optim.RMSprop(p, rho=1.5)
    with pytest.raises(ValueError, match=r"SGD: invalid momentum=-0.9"):
        pf.optim.SGD(p, lr=0.1, momentum=-0.9)
    with pytest.raises(ValueError, match="SGD: Nesterov momentum needs momentum > 0"):
        pf.optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"Adagrad: invalid initial_accumulator_value=-1"):
        pf.optim.Adagrad(p, initial_accumulator_value=-1)
    with pytest.raises(ValueError, match=r"NAdam: invalid eps \(epsilon\)=-1e-08"):
        pf.optim.NAdam(p, eps=-1e-8)
    with pytest.raises(ValueError, match=r"Adam: invalid weight_decay=nan"):
        pf.optim.Adam(p, weight_decay=float("nan"))
    with pytest.raises(ValueError, match="Lion: invalid beta1 .*=1.5"):
        pf.optim.Lion(p, betas=(1.5, 0.99))
    with pytest.raises(ValueError, match="Adam: got an empty parameter list"):
        pf.optim.Adam([])
    with pytest.raises(ValueError, match="capturable=True"):
        pf.optim.Adam(p, capturable=True)
    with pytest.raises(ValueError, match="use_ema=True is not supported"):
        pf.optimizers.Adam(use_ema=True)
    with pytest.raises(TypeError, match="not recognized"):
        pf.optimizers.Adam(bogus=1)
    # a group edited to a bad value is caught by the update itself
    opt = pf.optim.Adam(p, lr=0.1)
    opt.param_groups[0]["lr"] = -1.0
    p[0].grad = pf.tensor([1.0, 1.0])
    with pytest.raises(ValueError, match="Adam: invalid learning rate lr=-1.0"):
        opt.step()


def test_bad_parameters_and_gradients():
    with pytest.raises(TypeError, match="Adam: parameter 0 of group 0 has dtype int64"):
        pf.optim.Adam([pf.tensor([1, 2])])
    x = leaf(np.ones(2))
    with pytest.raises(ValueError, match="parameter 0 of group 0 is not a leaf"):
        pf.optim.SGD([x * 2], lr=0.1)
    with pytest.raises(TypeError, match="parameter 1 of group 0 is a list"):
        pf.optim.SGD([x, [1.0]], lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        pf.optim.SGD([x, x], lr=0.1)
    with pytest.raises(TypeError, match="ordered collection"):
        pf.optim.SGD({x}, lr=0.1)
    p = leaf(np.ones((2, 3)))
    opt = pf.optim.Adam([p], lr=0.1)
    before = np.asarray(p).copy()
    with pytest.raises(ValueError, match=r"Adam: the gradient of parameter 0 has shape \(3, 2\) "
                                         r"but the parameter has shape \(2, 3\)"):
        opt.apply([pf.tensor(np.ones((3, 2)))], [p])
    p.grad = pf.tensor(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="Adam: the gradient of parameter 0 has dtype float32 but "
                                        "the parameter has dtype float64"):
        opt.step()
    np.testing.assert_array_equal(np.asarray(p), before)      # failed calls write nothing
    assert float(opt.state[p]["step"]) == 0.0
    C = pf._C
    q = pf.tensor(np.ones(3))
    with pytest.raises(ValueError, match="SGD: the parameter and the gradient of parameter 0 "
                                         "share memory"):
        C._optim_step("sgd", [q], [q], [pf.zeros(())], lr=0.1)
    with pytest.raises(ValueError, match="Adam: got 1 parameters but 2 gradients"):
        C._optim_step("adam", [q], [q, q], [pf.zeros(())], lr=0.1)
    with pytest.raises(ValueError, match=r"Adam: state 'exp_avg' of parameter 0 has shape \(2,\)"):
        C._optim_step("adam", [q], [pf.ones(3, dtype=pf.float64)], [pf.zeros(())], lr=0.1,
                      exp_avg=[pf.zeros(2)], exp_avg_sq=[pf.zeros(3)])
    with pytest.raises(TypeError, match="unexpected option 'momentum' for the 'adam' update"):
        C._optim_step("adam", [], [], [], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="unknown algorithm 'adadelta'"):
        C._optim_step("adadelta", [], [], [], lr=0.1)
    with pytest.raises(TypeError, match="Adam: parameter 0 has dtype int64"):
        C._optim_step("adam", [pf.tensor([1, 2])], [pf.tensor([1, 2])], [pf.zeros(())], lr=0.1,
                      exp_avg=[pf.zeros(2)], exp_avg_sq=[pf.zeros(2)])


# ------------------------------------------------------------ training runs

def quadratic(x, c):
    return (((x - c) * (x - c)) * pf.tensor([1.0, 3.0, 0.5])).sum()


def rosenbrock(x):
    a, b = x[0], x[1]
    return (1.0 - a) * (1.0 - a) + 100.0 * (b - a * a) * (b - a * a)


@pytest.mark.parametrize("make,steps", [
    (lambda p: pf.optim.SGD(p, lr=0.1, momentum=0.9), 200),
    (lambda p: pf.optim.Adam(p, lr=0.1), 300),
    (lambda p: pf.optim.AdamW(p, lr=0.1, weight_decay=0.0), 300),
    (lambda p: pf.optim.RMSprop(p, lr=0.01), 400),
    (lambda p: pf.optim.Adagrad(p, lr=0.5), 300),
    (lambda p: pf.optim.Adamax(p, lr=0.1), 300),
    (lambda p: pf.optim.NAdam(p, lr=0.1), 300),
    (lambda p: pf.optim.Lion(p, lr=pf.optim.schedules.CosineDecay(0.02, 600)), 600),
    (lambda p: pf.optimizers.Adam(0.1, params=p), 300),
])
def test_minimises_a_quadratic(make, steps):
    x = leaf(np.array([3.0, -2.0, 1.0]))
    c = pf.tensor([1.0, 0.5, -1.0])
    opt = make([x])
    for _ in range(steps):
        opt.zero_grad()
        quadratic(x, c).backward()
        opt.step()
    np.testing.assert_allclose(np.asarray(x), [1.0, 0.5, -1.0], atol=2e-2)


def test_rosenbrock_with_a_closure():
    x = leaf(np.array([-1.5, 2.0]))
    opt = pf.optim.Adam([x], lr=0.05)

    def closure():
        opt.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    for _ in range(2500):
        loss = opt.step(closure)
    assert float(loss) < 1e-6
    np.testing.assert_allclose(np.asarray(x), [1.0, 1.0], atol=2e-3)


def test_import_is_lazy():
    code = ("import sys, pyframe; assert 'pyframe.optim' not in sys.modules; "
            "pyframe.optim.Adam; assert 'pyframe.optim' in sys.modules; "
            "import pyframe as pf; assert pf.optimizers.schedules is pf.optim.schedules")
    subprocess.run([sys.executable, "-c", code], check=True)
