"""The fused optimizer updates on CUDA (csrc/cuda/optim.cu) against the cpu's (csrc/optim.c,
csrc/kernels/optim_loops.h): the device kernel runs the cpu's loop itself at each element,
built without fused multiply-adds, so a step must give the same bits.

* Host self-test (where libpyframe_cuda.so is built, CI included): ``_C._cuda_host_optim_step``
  takes _optim_step's arguments and updates cpu tensors with the library's per-element code
  run on the host.  Every optimizer class (PyTorch and Keras formulas), every variant (momentum,
  Nesterov, AMSGrad, centered, weight decay, maximize, clipping), float32 and float64: the
  parameters and every state after three steps equal the cpu's bit for bit.  The cpu update
  itself is checked against NumPy float64 and torch.optim in test_optim.py.
* With a GPU: the same steps on device parameters equal the cpu's bit for bit, except where a
  gradient norm enters (clipnorm, global_clipnorm): the device sums the squares in another
  order, so the norm may differ in its last bits, and the update by a few float32 ulps
  (rtol 1e-6 for float32, 1e-13 for float64).
"""
import numpy as np
import pytest

import pyframe as pf
from pyframe import _C

CUDA = pf.cuda.is_available()
REASON = pf.cuda.status()
gpu = pytest.mark.skipif(not CUDA, reason="needs a usable CUDA GPU; here: " + REASON)
BUILT = _C._cuda_status()["kind"] != "not built"
host = pytest.mark.skipif(not BUILT, reason="libpyframe_cuda.so was not built here (no nvcc)")

CLIP = dict(clipnorm=0.5)
CASES = [
    (pf.optim.SGD, dict(lr=0.1)),
    (pf.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    (pf.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True, maximize=True)),
    (pf.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    (pf.optim.Adam, dict(lr=0.01, amsgrad=True, maximize=True)),
    (pf.optim.AdamW, dict(lr=0.01, weight_decay=0.1, clipvalue=0.3)),
    (pf.optim.RMSprop, dict(lr=0.01, weight_decay=0.1)),
    (pf.optim.RMSprop, dict(lr=0.01, alpha=0.9, momentum=0.7, centered=True)),
    (pf.optim.Adagrad, dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.3,
                            weight_decay=0.01)),
    (pf.optim.Adamax, dict(lr=0.02, betas=(0.5, 0.9), maximize=True)),
    (pf.optim.NAdam, dict(lr=0.01, momentum_decay=0.01, weight_decay=0.1)),
    (pf.optim.Lion, dict(lr=0.01, weight_decay=0.1)),
    (pf.optimizers.SGD, dict(learning_rate=0.05, momentum=0.9, nesterov=True)),
    (pf.optimizers.Adam, dict(learning_rate=0.01, amsgrad=True, **CLIP)),
    (pf.optimizers.RMSprop, dict(learning_rate=0.01, momentum=0.5, centered=True)),
    (pf.optimizers.Adagrad, dict(learning_rate=0.1)),
    (pf.optimizers.Adamax, dict(learning_rate=0.01, global_clipnorm=0.7)),
    (pf.optimizers.Nadam, dict(learning_rate=0.01)),
    (pf.optimizers.Lion, dict(learning_rate=0.01, weight_decay=0.05)),
]
IDS = [f"{c.__module__.split('.')[-1]}.{c.__name__}-{i}" for i, (c, _) in enumerate(CASES)]
NORMS = ("clipnorm", "global_clipnorm")

SHAPES = [(37, 5), (1000,), (3, 1, 4), ()]


def _data(dtype, steps=3):
    rng = np.random.default_rng(7)
    x0 = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) * (1 + k) for s in SHAPES] for k in range(steps)]
    if dtype == "float32":
        # a gradient of 0, a huge one and a NaN-free tiny one exercise the branches
        grads[0][1][:3] = (0.0, 1e30, 1e-30)
    return x0, grads


def _run(cls, kwargs, dtype, device="cpu", step_fn=None, monkeypatch=None):
    x0, grads = _data(dtype)
    params = [pf.tensor(x.astype(dtype), device=device).requires_grad_() for x in x0]
    opt = cls(**kwargs, params=params) if "learning_rate" in kwargs else cls(params, **kwargs)
    calls = []
    if step_fn is not None:
        def counted(*args, **kwargs):
            calls.append(args[0])
            return step_fn(*args, **kwargs)
        monkeypatch.setattr(_C, "_optim_step", counted)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = pf.tensor(g.astype(dtype), device=device)
        opt.step()
    if step_fn is not None:
        monkeypatch.undo()
        assert len(calls) == len(grads)         # every step went through step_fn
    states = [(k, v) for p in params for k, v in sorted(opt.state[p].items())]
    return params, states


def _arrays(ts):
    return [np.asarray(t.detach().cpu()) for t in ts]


@host
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cls,kwargs", CASES, ids=IDS)
def test_host_kernel_update_equals_the_cpu(cls, kwargs, dtype, monkeypatch):
    want_p, want_s = _run(cls, kwargs, dtype)
    got_p, got_s = _run(cls, kwargs, dtype, step_fn=_C._cuda_host_optim_step,
                        monkeypatch=monkeypatch)
    for a, b in zip(_arrays(got_p), _arrays(want_p)):
        assert a.tobytes() == b.tobytes()
    assert [k for k, _ in got_s] == [k for k, _ in want_s]
    for (k, a), (_, b) in zip(got_s, want_s):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), k


@host
def test_host_kernel_update_of_non_contiguous_parameters():
    """A transposed parameter goes through a contiguous copy and back, as on the cpu."""
    base = np.random.default_rng(3).standard_normal((6, 4)).astype(np.float32)
    out = []
    for fn in (_C._optim_step, _C._cuda_host_optim_step):
        p = pf.tensor(base).T
        g = pf.tensor(base * 0.5).T
        m, v = pf.zeros((4, 6)).T.contiguous().T, pf.zeros((4, 6))
        fn("adam", [p], [g], [pf.zeros(())], lr=0.1, exp_avg=[m], exp_avg_sq=[v])
        out.append((np.asarray(p).copy(), np.asarray(m).copy(), np.asarray(v).copy()))
    for a, b in zip(*out):
        assert a.tobytes() == b.tobytes()


@host
def test_host_optim_step_checks_like_optim_step():
    p = pf.zeros(3)
    with pytest.raises(TypeError, match=r"^SGD: parameter 0 has dtype float16; optimizers update "
                                        r"float32 or float64 parameters"):
        _C._cuda_host_optim_step("sgd", [p.astype(pf.float16)], [p.astype(pf.float16)],
                                 [pf.zeros(())], lr=0.1)
    with pytest.raises(ValueError, match=r"^SGD: invalid learning rate lr=-1; expected a finite "
                                         r"number >= 0"):
        _C._cuda_host_optim_step("sgd", [p], [p.clone()], [pf.zeros(())], lr=-1)


# ============================================================ with a GPU


def _close(a, b, dtype, exact):
    if exact:
        assert a.tobytes() == b.tobytes()
    else:
        np.testing.assert_allclose(a, b, rtol=1e-6 if dtype == "float32" else 1e-13,
                                   atol=1e-7 if dtype == "float32" else 1e-15)


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cls,kwargs", CASES, ids=IDS)
def test_device_update_equals_the_cpu(cls, kwargs, dtype):
    want_p, want_s = _run(cls, kwargs, dtype)
    got_p, got_s = _run(cls, kwargs, dtype, device="cuda")
    exact = not any(k in kwargs for k in NORMS)
    for t in got_p:
        assert t.device == "cuda:0"
    for a, b in zip(_arrays(got_p), _arrays(want_p)):
        _close(a, b, dtype, exact)
    for (k, a), (_, b) in zip(got_s, want_s):
        if k == "step":
            assert a.device == "cpu"
        else:
            assert a.device == "cuda:0", k
        _close(np.asarray(a.cpu()), np.asarray(b), dtype, exact)


@gpu
def test_device_grad_norm_matches_numpy():
    rng = np.random.default_rng(1)
    arrs = [rng.standard_normal(s) for s in ((1000, 33), (7,), ())]
    ts = [pf.tensor(a.astype(np.float32), device="cuda") for a in arrs]
    want = np.sqrt(sum(float((a.astype(np.float32).astype(np.float64) ** 2).sum())
                       for a in arrs))
    assert abs(_C._optim_grad_norm(ts + [None]) - want) <= 1e-12 * want


@gpu
def test_device_step_refuses_mixed_devices():
    p, q = pf.ones(3, device="cuda").requires_grad_(), pf.ones(3).requires_grad_()
    p.grad, q.grad = pf.ones(3, device="cuda"), pf.ones(3)
    with pytest.raises(RuntimeError, match=r"^SGD: parameter 0 is on cuda:0 but parameter 1 on "
                                           r"cpu; one step updates the parameters of one device"):
        pf.optim.SGD([p, q], lr=0.1).step()
    p.grad = pf.ones(3)
    with pytest.raises(RuntimeError, match=r"^SGD: tensors on cuda:0 and cpu; move them to one "
                                           r"device"):
        pf.optim.SGD([p], lr=0.1).step()


@gpu
def test_device_state_dict_round_trip():
    """Loaded states land on their parameters' device; steps stay on the host."""
    x0, grads = _data("float32")
    made = []
    for _ in range(2):
        params = [pf.tensor(x, device="cuda").requires_grad_() for x in x0]
        made.append((params, pf.optim.Adam(params, lr=0.01, amsgrad=True)))
    (pa, oa), (pb, ob) = made
    for p, g in zip(pa, grads[0]):
        p.grad = pf.tensor(g, device="cuda")
    oa.step()
    for p, q in zip(pa, pb):
        q.data = p.detach().clone()
    ob.load_state_dict(oa.state_dict())
    for p in pb:
        for k, v in ob.state[p].items():
            assert v.device == ("cpu" if k == "step" else "cuda:0"), k
    for params, opt in made:
        for p, g in zip(params, grads[1]):
            p.grad = pf.tensor(g, device="cuda")
        opt.step()
    for a, b in zip(_arrays(pa), _arrays(pb)):
        assert a.tobytes() == b.tobytes()

