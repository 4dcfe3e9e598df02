"""PyTorch-named modules: same parameter names and shapes as PyTorch, the
same outputs and gradients for the same weights (torch as the oracle, float64),
and clear errors."""
import numpy as np
import pytest

import pyframe as pf
from pyframe import nn

torch = pytest.importorskip("torch", reason="torch is the reference for these modules")


def load_into_torch(mod, tmod):
    tmod.load_state_dict({k: torch.tensor(np.array(v)) for k, v in mod.state_dict().items()})


def compare(mod, tmod, x, out_index=None, rtol=1e-10, atol=1e-12):
    mod, tmod = mod.double(), tmod.double()
    load_into_torch(mod, tmod)
    fl = x.dtype.kind == "f"
    px = pf.tensor(x, dtype=pf.float64, requires_grad=True) if fl else pf.tensor(x)
    tx = torch.tensor(x, requires_grad=fl)
    po, to = mod(px), tmod(tx)
    if out_index is not None:
        po, to = po[out_index], to[out_index]
    np.testing.assert_allclose(np.array(po), to.detach().numpy(), rtol=rtol, atol=atol)
    w = np.random.default_rng(1).standard_normal(to.shape)
    (po * pf.tensor(w, dtype=pf.float64)).sum().backward()
    (to * torch.tensor(w)).sum().backward()
    if x.dtype.kind == "f":
        np.testing.assert_allclose(np.array(px.grad), tx.grad.numpy(), rtol=rtol, atol=atol)
    named = dict(tmod.named_parameters())
    for name, p in mod.named_parameters():
        np.testing.assert_allclose(np.array(p.grad), named[name].grad.numpy(), rtol=rtol,
                                   atol=atol, err_msg=name)


def test_linear_matches_torch_and_names():
    m = nn.Linear(5, 3)
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    assert m.weight.shape == (3, 5)
    x = np.random.default_rng(0).standard_normal((4, 2, 5))
    compare(m, torch.nn.Linear(5, 3), x)
    compare(nn.Linear(5, 3, bias=False), torch.nn.Linear(5, 3, bias=False), x)
    assert "bias" not in nn.Linear(2, 2, bias=False).state_dict()


def test_linear_default_init_bounds():
    pf.manual_seed(0)
    w = np.array(nn.Linear(400, 300).weight)
    assert np.abs(w).max() <= 1 / 20 and w.std() > 0.8 * (1 / 20) / np.sqrt(3)


def test_linear_errors_name_the_layer():
    m = nn.Linear(4, 2)
    with pytest.raises(ValueError, match=r"Linear 'linear(_\d+)?' expects inputs whose last "
                                         r"dimension is 4 \(in_features\); got shape \(3, 5\)"):
        m(pf.ones((3, 5)))
    with pytest.raises(ValueError, match=r"Linear: in_features must be a positive integer"):
        nn.Linear(0, 2)


@pytest.mark.parametrize("name, kw", [("ReLU", {}), ("ReLU6", {}), ("LeakyReLU", {"negative_slope": 0.2}),
                                      ("ELU", {"alpha": 0.5}), ("SELU", {}), ("GELU", {}),
                                      ("GELU", {"approximate": "tanh"}), ("SiLU", {}),
                                      ("Sigmoid", {}), ("Tanh", {}),
                                      ("Softplus", {"beta": 2.0, "threshold": 1.0}),
                                      ("Softmax", {"dim": 1}), ("LogSoftmax", {"dim": -1})])
def test_activations_match_torch(name, kw):
    x = np.random.default_rng(2).standard_normal((3, 4)) * 3
    compare(getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw), x)


def test_flatten_unflatten_identity():
    x = pf.randn(2, 3, 4)
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    assert nn.Unflatten(1, (3, 1))(nn.Flatten()(x)[:, :3]).shape == (2, 3, 1)
    assert nn.Identity(54, unused=1)(x) is x


def test_embedding_matches_torch_with_padding():
    m = nn.Embedding(10, 3, padding_idx=0)
    assert np.all(np.array(m.weight)[0] == 0)
    idx = np.array([[1, 0, 4], [4, 9, 0]])
    compare(m, torch.nn.Embedding(10, 3, padding_idx=0), idx)
    m.zero_grad()
    m(pf.tensor(idx)).sum().backward()
    g = np.array(m.weight.grad)
    assert np.all(g[0] == 0) and np.all(g[4] == 2)


def test_embedding_errors():
    m = nn.Embedding(5, 2)
    with pytest.raises(IndexError, match=r"Embedding 'embedding(_\d+)?': index 7 is out of range "
                                         r"for 5 embeddings \(valid: 0 to 4\)"):
        m(pf.tensor([1, 7]))
    with pytest.raises(IndexError, match=r"index -1 is out of range"):
        m(pf.tensor([-1]))
    with pytest.raises(TypeError, match=r"expects integer indices; got float32"):
        m(pf.ones(2))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("kw", [{}, {"num_layers": 2, "bidirectional": True},
                                {"batch_first": True, "bias": False}])
def test_recurrent_modules_match_torch(kind, kw):
    m, t = getattr(nn, kind)(3, 5, **kw), getattr(torch.nn, kind)(3, 5, **kw)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    x = np.random.default_rng(3).standard_normal((4, 2, 3))
    compare(m, t, x, out_index=0)


def test_recurrent_state_in_and_out_and_unbatched():
    m, t = nn.LSTM(3, 4, num_layers=2).double(), torch.nn.LSTM(3, 4, num_layers=2).double()
    load_into_torch(m, t)
    rng = np.random.default_rng(4)
    x, h0, c0 = rng.standard_normal((5, 2, 3)), rng.standard_normal((2, 2, 4)), \
        rng.standard_normal((2, 2, 4))
    po, (ph, pc) = m(pf.tensor(x, dtype=pf.float64), (pf.tensor(h0, dtype=pf.float64),
                                                       pf.tensor(c0, dtype=pf.float64)))
    to, (th, tc) = t(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    for a, b in ((po, to), (ph, th), (pc, tc)):
        np.testing.assert_allclose(np.array(a), b.detach().numpy(), rtol=1e-10, atol=1e-12)
    uo, uh = nn.GRU(3, 4)(pf.randn(6, 3))
    assert uo.shape == (6, 4) and uh.shape == (1, 4)


def test_recurrent_errors():
    with pytest.raises(ValueError, match=r"LSTM 'lstm(_\d+)?' expects input of shape "
                                         r"\(seq, batch, 3\)"):
        nn.LSTM(3, 4)(pf.ones((2, 2, 5)))
    with pytest.raises(ValueError, match=r"h_0 must have shape \(1, 2, 4\); got \(1, 3, 4\)"):
        nn.GRU(3, 4)(pf.ones((2, 2, 3)), pf.zeros((1, 3, 4)))
    with pytest.raises(ValueError, match=r"RNN: nonlinearity must be 'tanh' or 'relu'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"GRU: dropout must be in \[0, 1\)"):
        nn.GRU(3, 4, dropout=1.5)


# ------------------------------------------------------------------ norms, dropout, losses, MHA

@pytest.mark.parametrize("make", [
    lambda lib: lib.nn.BatchNorm1d(4), lambda lib: lib.nn.BatchNorm2d(4),
    lambda lib: lib.nn.LayerNorm((3, 5)), lambda lib: lib.nn.GroupNorm(2, 4),
    lambda lib: lib.nn.RMSNorm(5, eps=1e-6)])
def test_norm_modules_match_torch_train_and_eval(make):
    m, t = make(pf), make(torch)
    name = type(m).__name__
    shape = {"BatchNorm1d": (6, 4), "BatchNorm2d": (3, 4, 2, 5), "LayerNorm": (2, 3, 5),
             "GroupNorm": (3, 4, 5), "RMSNorm": (2, 3, 5)}[name]
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert list(m.state_dict()) == list(t.state_dict())
    x = np.random.default_rng(5).standard_normal(shape) * 2 + 1
    compare(m, t, x, rtol=1e-9, atol=1e-10)
    if name.startswith("BatchNorm"):
        np.testing.assert_allclose(np.array(m.running_var), t.running_var.detach().numpy(),
                                   rtol=1e-10)
        assert int(m.num_batches_tracked) == int(t.num_batches_tracked) == 1
        m.eval(), t.eval()
        np.testing.assert_allclose(np.array(m(pf.tensor(x, dtype=pf.float64))),
                                   t(torch.tensor(x)).detach().numpy(), rtol=1e-9, atol=1e-10)


def test_batchnorm_errors():
    with pytest.raises(ValueError, match=r"BatchNorm2d 'batch_norm2d(_\d+)?' expects 4 channels "
                                         r"\(dim 1\); got shape \(2, 3, 5, 5\)"):
        nn.BatchNorm2d(4)(pf.ones((2, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"expects input of rank 4"):
        nn.BatchNorm2d(4)(pf.ones((2, 4)))
    with pytest.raises(ValueError, match=r"GroupNorm: num_channels \(5\) must be divisible"):
        nn.GroupNorm(2, 5)


def test_dropout_module():
    pf.manual_seed(3)
    d = nn.Dropout(0.5)
    y = np.array(d(pf.ones(1000)))
    assert set(np.unique(y).tolist()) <= {0.0, 2.0} and 400 < (y == 0).sum() < 600
    d.eval()
    np.testing.assert_array_equal(np.array(d(pf.ones(10))), 1.0)


@pytest.mark.parametrize("name, kw, target", [
    ("CrossEntropyLoss", {}, "class"), ("CrossEntropyLoss", {"label_smoothing": 0.1}, "class"),
    ("NLLLoss", {}, "class"), ("MSELoss", {}, "same"), ("L1Loss", {"reduction": "sum"}, "same"),
    ("HuberLoss", {"delta": 0.5}, "same"), ("SmoothL1Loss", {"beta": 0.5}, "same"),
    ("BCEWithLogitsLoss", {}, "binary"), ("BCELoss", {}, "binary")])
def test_loss_modules_match_torch(name, kw, target):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 4))
    if name == "BCELoss":
        x = 1 / (1 + np.exp(-x))
    if name == "NLLLoss":
        x = x - np.log(np.exp(x).sum(1, keepdims=True))
    y = {"class": rng.integers(0, 4, 5), "same": rng.standard_normal((5, 4)),
         "binary": rng.integers(0, 2, (5, 4)).astype(float)}[target]
    px = pf.tensor(x, dtype=pf.float64, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    py = pf.tensor(y, dtype=pf.float64) if y.dtype.kind == "f" else pf.tensor(y)
    lp, lt = getattr(nn, name)(**kw)(px, py), getattr(torch.nn, name)(**kw)(tx, torch.tensor(y))
    np.testing.assert_allclose(float(lp), lt.item(), rtol=1e-10)
    lp.backward()
    lt.backward()
    np.testing.assert_allclose(np.array(px.grad), tx.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kw, masks", [({}, False), ({"batch_first": True}, True),
                                       ({"kdim": 3, "vdim": 5}, False)])
def test_multihead_attention_matches_torch(kw, masks):
    m, t = nn.MultiheadAttention(8, 2, **kw).double(), \
        torch.nn.MultiheadAttention(8, 2, **kw).double()
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    load_into_torch(m, t)
    rng = np.random.default_rng(7)
    L, S, N = 4, 6, 2
    shp = (lambda a, b: (N, a, b)) if kw.get("batch_first") else (lambda a, b: (a, N, b))
    q = rng.standard_normal(shp(L, 8))
    k = rng.standard_normal(shp(S, kw.get("kdim", 8)))
    v = rng.standard_normal(shp(S, kw.get("vdim", 8)))
    extra_p, extra_t = {}, {}
    if masks:
        kpm = np.zeros((N, S), bool)
        kpm[0, -2:] = True
        am = np.triu(np.ones((L, S), bool), 1)
        extra_p = dict(key_padding_mask=pf.tensor(kpm), attn_mask=pf.tensor(am))
        extra_t = dict(key_padding_mask=torch.tensor(kpm), attn_mask=torch.tensor(am))
    pq = pf.tensor(q, dtype=pf.float64, requires_grad=True)
    tq = torch.tensor(q, requires_grad=True)
    po, pw = m(pq, pf.tensor(k, dtype=pf.float64), pf.tensor(v, dtype=pf.float64), **extra_p)
    to, tw = t(tq, torch.tensor(k), torch.tensor(v), **extra_t)
    np.testing.assert_allclose(np.array(po), to.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.array(pw), tw.detach().numpy(), rtol=1e-9, atol=1e-12)
    (po * po).sum().backward()
    (to * to).sum().backward()
    np.testing.assert_allclose(np.array(pq.grad), tq.grad.numpy(), rtol=1e-8, atol=1e-11)
    named = dict(t.named_parameters())
    for n_, p in m.named_parameters():
        np.testing.assert_allclose(np.array(p.grad), named[n_].grad.numpy(), rtol=1e-8,
                                   atol=1e-11, err_msg=n_)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_multihead_attention_fused_path_matches_torch(causal, batch_first):
    m, t = nn.MultiheadAttention(8, 2, batch_first=batch_first).double(), \
        torch.nn.MultiheadAttention(8, 2, batch_first=batch_first).double()
    load_into_torch(m, t)
    x = np.random.default_rng(8).standard_normal((2, 5, 8) if batch_first else (5, 2, 8))
    px = pf.tensor(x, dtype=pf.float64, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    tmask = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1) if causal else None
    po, pw = m(px, px, px, need_weights=False, is_causal=causal)
    to, _ = t(tx, tx, tx, need_weights=False, attn_mask=tmask, is_causal=causal)
    assert pw is None
    np.testing.assert_allclose(np.array(po), to.detach().numpy(), rtol=1e-9, atol=1e-12)
    po.sum().backward()
    to.sum().backward()
    np.testing.assert_allclose(np.array(px.grad), tx.grad.numpy(), rtol=1e-8, atol=1e-11)
