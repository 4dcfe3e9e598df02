"""The losses on CUDA (csrc/nn_losses_cuda.c): compositions of elementwise ops and reductions
that already run on a device; their rules (backward_nnops.c) are elementwise already.

* Host check (every machine): ``_C._cuda_host_loss`` runs the device composition itself on
  cpu tensors, compared with the fused cpu kernels and a NumPy float64 oracle, for every
  loss, reduction and float dtype -- this checks the algebra (huber without a select, the
  log clamps, the softplus split, casts) that the device runs.
* Fake device tensors (machines without a GPU): the losses ask for CUDA first.
* With a GPU: values and gradients of device tensors against the cpu backend.

Tolerances: the composition rounds each step in the compute dtype (float32 for float32,
float16, bfloat16; float64 for float64) where the cpu kernel works in float64 throughout:
rtol 1e-5 (float32), 1e-12 (float64), and the result dtype's own step for float16 (2e-3)
and bfloat16 (1.6e-2), each plus the same absolute term times the mean |loss|.
"""
import re

import numpy as np
import pytest

import pyframe as pf
from pyframe import _C

CUDA = pf.cuda.is_available()
REASON = pf.cuda.status()
gpu = pytest.mark.skipif(not CUDA, reason="needs a usable CUDA GPU; here: " + REASON)
fake = pytest.mark.skipif(CUDA, reason="_fake_cuda_tensor is for machines without a GPU")

TOL = {"float32": 1e-5, "float64": 1e-12, "float16": 2e-3, "bfloat16": 1.6e-2}
POINTWISE = [("mse_loss", None), ("l1_loss", None), ("huber_loss", 1.0),
             ("huber_loss", 0.3), ("smooth_l1_loss", 1.0), ("smooth_l1_loss", 2.5)]
REDUCTIONS = ["none", "mean", "sum"]


def _oracle_pointwise(name, x, t, prm):
    d = x.astype(np.float64) - t.astype(np.float64)
    a = np.abs(d)
    if name == "mse_loss":
        return d * d
    if name == "l1_loss":
        return a
    if name == "huber_loss":
        return np.where(a < prm, 0.5 * a * a, prm * (a - 0.5 * prm))
    return np.where(a < prm, 0.5 * a * a / prm, a - 0.5 * prm)


def _oracle_bce(x, t, w=None, pw=None, logits=False):
    x, t = x.astype(np.float64), t.astype(np.float64)
    if logits:
        lw = 1.0 if pw is None else 1.0 + (pw - 1.0) * t
        l = (1 - t) * x + lw * (np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x))))
    else:
        with np.errstate(divide="ignore"):
            lp = np.maximum(np.log(x), -100.0)
            lq = np.maximum(np.log1p(-x), -100.0)
        l = -(t * lp + (1 - t) * lq)
    return l if w is None else l * w


def _reduce(l, red):
    return l if red == "none" else (l.mean() if red == "mean" else l.sum())


def _close(got, want, dtype):
    got = np.asarray(got, dtype=np.float64)
    tol = TOL[dtype]
    scale = float(np.mean(np.abs(want))) if np.size(want) else 1.0
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


def _np(t):
    return np.asarray(t.cpu().astype(pf.float64))


def _data(shape, dtype, seed):
    g = np.random.default_rng(seed)
    x = g.normal(size=shape) * 2
    t = g.normal(size=shape) * 2
    return pf.tensor(x).astype(dtype), pf.tensor(t).astype(dtype)


# ------------------------------------------------------------ host check of the composition

@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("name,prm", POINTWISE)
def test_host_pointwise_composition(name, prm, red, dtype):
    x, t = _data((7, 33), dtype, 1)
    got = _C._cuda_host_loss(name, x, t, red, 1.0 if prm is None else prm)
    assert got.dtype == x.dtype
    kw = {} if prm is None else {"delta" if name == "huber_loss" else "beta": prm}
    cpu = getattr(pf, name)(x, t, reduction=red, **kw)
    want = _reduce(_oracle_pointwise(name, _np(x), _np(t), prm), red)
    _close(_np(got), want, dtype)
    _close(_np(got), _np(cpu), dtype)


@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_host_bce_composition(red, dtype, weighted):
    g = np.random.default_rng(2)
    p = g.uniform(0, 1, size=(5, 9))
    p[0, :3] = [0.0, 1.0, 1e-30]             # the log clamps at -100
    t = g.uniform(0, 1, size=(5, 9))
    w = g.uniform(0.5, 2, size=(9,)) if weighted else None
    xp, tp = pf.tensor(p).astype(dtype), pf.tensor(t).astype(dtype)
    wp = None if w is None else pf.tensor(w).astype(dtype)
    got = _C._cuda_host_loss("binary_cross_entropy", xp, tp, red, 0.0, wp)
    cpu = pf.binary_cross_entropy(xp, tp, weight=wp, reduction=red)
    want = _reduce(_oracle_bce(_np(xp), _np(tp), None if w is None else _np(wp)), red)
    _close(_np(got), want, dtype)
    _close(_np(got), _np(cpu), dtype)


@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("extra", ["none", "weight", "pos_weight", "both"])
def test_host_bce_logits_composition(red, dtype, extra):
    g = np.random.default_rng(3)
    x = g.normal(size=(6, 8)) * 4
    x[0, :2] = [-60.0, 60.0]                  # softplus far out on both sides
    t = g.uniform(0, 1, size=(6, 8))
    xp, tp = pf.tensor(x).astype(dtype), pf.tensor(t).astype(dtype)
    wp = pf.tensor(g.uniform(0.5, 2, size=(8,))).astype(dtype) \
        if extra in ("weight", "both") else None
    pwp = pf.tensor(g.uniform(0.5, 3, size=(8,))).astype(dtype) \
        if extra in ("pos_weight", "both") else None
    got = _C._cuda_host_loss("binary_cross_entropy_with_logits", xp, tp, red, 0.0, wp, pwp)
    cpu = pf.binary_cross_entropy_with_logits(xp, tp, weight=wp, pos_weight=pwp,
                                              reduction=red)
    want = _reduce(_oracle_bce(_np(xp), _np(tp), None if wp is None else _np(wp),
                               None if pwp is None else _np(pwp), logits=True), red)
    _close(_np(got), want, dtype)
    _close(_np(got), _np(cpu), dtype)


def test_host_bce_composition_names_a_bad_probability():
    x = pf.tensor([[0.5, 1.5], [0.2, 0.1]])
    msg = (r"^binary_cross_entropy: input values must be probabilities in \[0, 1\]; got 1\.5 "
           r"\(apply sigmoid first, or use binary_cross_entropy_with_logits\)$")
    with pytest.raises(ValueError, match=msg):
        _C._cuda_host_loss("binary_cross_entropy", x, pf.zeros((2, 2)), "mean", 0.0)
    with pytest.raises(ValueError, match=msg):
        pf.binary_cross_entropy(x, pf.zeros((2, 2)))
    x = pf.tensor([0.5, float("nan")])
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]; got nan"):
        _C._cuda_host_loss("binary_cross_entropy", x, pf.zeros(2), "mean", 0.0)


# ------------------------------------------------------------ fake device tensors

LOSSES = ["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "binary_cross_entropy",
          "binary_cross_entropy_with_logits"]


@fake
@pytest.mark.parametrize("name", LOSSES)
def test_fake_device_losses_ask_for_cuda(name):
    x = _C._fake_cuda_tensor((2, 3), pf.float32, 0)
    y = _C._fake_cuda_tensor((2, 3), pf.float32, 0)
    with pytest.raises(RuntimeError, match="^" + re.escape(name) + ": CUDA is not available"):
        getattr(pf, name)(x, y)


@fake
def test_fake_device_loss_with_a_cpu_target_names_both_devices():
    x = _C._fake_cuda_tensor((3,), pf.float32, 0)
    with pytest.raises(RuntimeError, match=r"^mse_loss: tensors on (cuda:0 and cpu|cpu and "
                                           r"cuda:0); move them to one device"):
        pf.mse_loss(x, pf.ones(3))


# ------------------------------------------------------------ on a GPU

def _grads(fn, *ts):
    ts = [t.detach().requires_grad_(True) for t in ts]
    out = fn(*ts)
    out.backward(pf.ones_like(out))
    return out, [t.grad for t in ts]


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("name,prm", POINTWISE)
def test_gpu_pointwise_losses_match_the_cpu(name, prm, red, dtype):
    x, t = _data((16, 65), dtype, 4)
    kw = {} if prm is None else {"delta" if name == "huber_loss" else "beta": prm}
    fn = lambda a, b: getattr(pf, name)(a, b, reduction=red, **kw)      # noqa: E731
    yc, gc = _grads(fn, x, t)
    yd, gd = _grads(fn, x.cuda(), t.cuda())
    assert yd.device == "cuda:0" and yd.dtype == yc.dtype
    _close(_np(yd), _np(yc), dtype)
    for a, b in zip(gd, gc):
        assert a.device == "cuda:0"
        _close(_np(a), _np(b), dtype)


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("logits", [False, True])
def test_gpu_bce_matches_the_cpu(logits, red, dtype):
    g = np.random.default_rng(5)
    x = g.normal(size=(8, 12)) * 3 if logits else g.uniform(0.01, 0.99, size=(8, 12))
    xs = pf.tensor(x).astype(dtype)
    ts = pf.tensor(g.uniform(0, 1, size=(8, 12))).astype(dtype)
    ws = pf.tensor(g.uniform(0.5, 2, size=(12,))).astype(dtype)
    name = "binary_cross_entropy_with_logits" if logits else "binary_cross_entropy"
    fn = lambda a, b, w: getattr(pf, name)(a, b, weight=w, reduction=red)  # noqa: E731
    yc, gc = _grads(fn, xs, ts, ws)
    yd, gd = _grads(fn, xs.cuda(), ts.cuda(), ws.cuda())
    assert yd.device == "cuda:0"
    _close(_np(yd), _np(yc), dtype)
    for a, b in zip(gd, gc):
        _close(_np(a), _np(b), dtype)


@gpu
def test_gpu_bce_names_a_bad_probability():
    x = pf.tensor([0.5, -0.25, 0.1]).cuda()
    with pytest.raises(ValueError, match=r"^binary_cross_entropy: input values must be "
                                         r"probabilities in \[0, 1\]; got -0\.25 "):
        pf.binary_cross_entropy(x, pf.zeros(3).cuda())


# ------------------------------------------------------------ cross_entropy and nll_loss

torch = pytest.importorskip("torch")

# (input shape, smoothing, weighted, probabilities, with an ignored target)
CLASS_CASES = [((8, 5), 0.0, False, False, False), ((8, 5), 0.1, True, False, True),
               ((4, 3, 6), 0.0, True, False, True), ((4, 3, 2, 3), 0.2, False, False, False),
               ((7,), 0.0, False, False, False), ((6, 4), 0.15, True, True, False),
               ((3, 4, 5), 0.0, False, True, False)]


def _class_data(shape, weighted, probs, ignored, dtype, seed=7):
    g = np.random.default_rng(seed)
    x = g.normal(size=shape) * 2
    cls = 0 if len(shape) == 1 else 1
    C = shape[cls]
    if probs:
        t = g.uniform(0, 1, size=shape)
        t = t / t.sum(axis=cls, keepdims=True)
        tp = pf.tensor(t).astype(dtype)
    else:
        t = g.integers(0, C, size=shape[:cls] + shape[cls + 1:])
        if ignored:
            t.reshape(-1)[1] = -100
        tp = pf.tensor(t.astype(np.int64))
    w = g.uniform(0.5, 2, size=(C,)) if weighted else None
    wp = None if w is None else pf.tensor(w).astype(dtype)
    return pf.tensor(x).astype(dtype), tp, wp


def _torch_loss(name, x, t, w, red, eps):
    xt = torch.tensor(_np(x))
    tt = torch.tensor(np.asarray(t.cpu().astype(pf.float64 if t.dtype.is_floating_point
                                                 else pf.int64)))
    wt = None if w is None else torch.tensor(_np(w))
    if name == "nll_loss":
        return torch.nn.functional.nll_loss(xt, tt, weight=wt, reduction=red).numpy()
    return torch.nn.functional.cross_entropy(xt, tt, weight=wt, reduction=red,
                                             label_smoothing=eps).numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("case", CLASS_CASES, ids=[str(c) for c in CLASS_CASES])
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_host_class_loss_composition(name, case, red, dtype):
    shape, eps, weighted, probs, ignored = case
    if name == "nll_loss" and (probs or eps):
        pytest.skip("nll_loss takes class indices and no label smoothing")
    x, t, w = _class_data(shape, weighted, probs, ignored, dtype)
    if name == "nll_loss":
        x = pf.log_softmax(x.astype(pf.float64), axis=0 if len(shape) == 1 else 1).astype(dtype)
    got = _C._cuda_host_loss(name, x, t, red, eps, w)
    assert got.dtype == x.dtype
    kw = {} if name == "nll_loss" else {"label_smoothing": eps}
    cpu = getattr(pf, name)(x, t, weight=w, reduction=red, **kw)
    want = _torch_loss(name, x, t, w, red, eps)
    _close(_np(got), want, dtype)
    _close(_np(got), _np(cpu), dtype)


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_host_class_loss_composition_names_a_bad_label(name):
    x = pf.zeros((4, 3))
    msg = (r"^" + name + r": target 7 is out of range for 3 classes; class indices must be "
           r"in \[0, 3\) or equal ignore_index \(-100\)$")
    t = pf.tensor(np.array([0, 2, 7, 1], dtype=np.int64))
    with pytest.raises(IndexError, match=msg):
        _C._cuda_host_loss(name, x, t, "mean", 0.0)
    with pytest.raises(IndexError, match=msg):
        getattr(pf, name)(x, t)
    t = pf.tensor(np.array([0, -1, 1, -5], dtype=np.int64))      # the first bad one is named
    with pytest.raises(IndexError, match=r"target -1 is out of range"):
        _C._cuda_host_loss(name, x, t, "mean", 0.0)
    t = pf.tensor(np.array([0, 5, 1, 2], dtype=np.int64))        # ignore_index 5 is allowed
    got = _C._cuda_host_loss(name, x, t, "sum", 0.0, None, None, 5)
    np.testing.assert_allclose(_np(got), _np(getattr(pf, name)(x, t, ignore_index=5,
                                                                reduction="sum")), rtol=1e-6)


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("case", CLASS_CASES, ids=[str(c) for c in CLASS_CASES])
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_gpu_class_losses_match_the_cpu(name, case, red, dtype):
    shape, eps, weighted, probs, ignored = case
    if name == "nll_loss" and (probs or eps):
        pytest.skip("nll_loss takes class indices and no label smoothing")
    x, t, w = _class_data(shape, weighted, probs, ignored, dtype)
    kw = {} if name == "nll_loss" else {"label_smoothing": eps}
    fn = lambda a, b: getattr(pf, name)(a, b, weight=w if a.device == "cpu"  # noqa: E731
                                         else w.cuda() if w is not None else None,
                                         reduction=red, **kw)
    if probs:
        yc, gc = _grads(fn, x, t)
        yd, gd = _grads(fn, x.cuda(), t.cuda())
    else:
        yc, gc = _grads(lambda a: fn(a, t), x)
        yd, gd = _grads(lambda a: fn(a, t.cuda()), x.cuda())
    assert yd.device == "cuda:0" and yd.dtype == yc.dtype
    _close(_np(yd), _np(yc), dtype)
    for a, b in zip(gd, gc):
        assert a.device == "cuda:0"
        _close(_np(a), _np(b), dtype)


@gpu
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_gpu_class_loss_names_a_bad_label(name):
    x = pf.zeros((4, 3)).cuda()
    t = pf.tensor(np.array([0, 2, 3, 1], dtype=np.int64)).cuda()
    with pytest.raises(IndexError, match=r"^" + name + r": target 3 is out of range for 3 "
                                         r"classes"):
        getattr(pf, name)(x, t)


@fake
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_fake_device_class_losses_ask_for_cuda(name):
    x = _C._fake_cuda_tensor((2, 3), pf.float32, 0)
    t = _C._fake_cuda_tensor((2,), pf.int64, 0)
    with pytest.raises(RuntimeError, match="^" + re.escape(name) + ": CUDA is not available"):
        getattr(pf, name)(x, t)


# ------------------------------------------------------------ outer (a broadcast multiply)

@fake
def test_fake_device_outer_asks_for_cuda():
    x = _C._fake_cuda_tensor((2, 3), pf.float32, 0)
    with pytest.raises(RuntimeError, match=r"^outer: CUDA is not available"):
        pf.outer(x, x)


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_gpu_outer_matches_the_cpu(dtype):
    g = np.random.default_rng(9)
    a = pf.tensor(g.normal(size=(3, 4)) * 3).astype(dtype)
    b = pf.tensor(g.normal(size=(5,)) * 3).astype(dtype)
    want = np.outer(np.asarray(a).ravel(), np.asarray(b))
    got = pf.outer(a.cuda(), b.cuda())
    assert got.device == "cuda:0" and got.dtype == a.dtype
    np.testing.assert_allclose(np.asarray(got.cpu()), want, rtol=1e-6 if dtype == "float32"
                               else 1e-15)
    if dtype != "int32":
        ac, bc = a.cuda().requires_grad_(True), b.cuda().requires_grad_(True)
        pf.outer(ac, bc).sum().backward()
        np.testing.assert_allclose(np.asarray(ac.grad.cpu()),
                                   np.full((3, 4), np.asarray(b).sum()), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(bc.grad.cpu()),
                                   np.full((5,), np.asarray(a).sum()), rtol=1e-5)
