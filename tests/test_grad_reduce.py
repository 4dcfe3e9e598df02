"""Gradients of the reductions, scans and softmax beyond the table's finite differences:
ties (split evenly), zeros in prod/cumprod (against closed forms), and composites
against torch.autograd."""
import itertools

import numpy as np
import pytest

import pyframe as pf


def leaf(a):
    return pf.tensor(np.asarray(a, dtype=np.float64), dtype=pf.float64, requires_grad=True)


def grad_of(fn, x, seed=None):
    """d sum(seed * fn(x)) / dx as a NumPy array."""
    t = leaf(x)
    y = fn(t)
    g = None if seed is None else pf.tensor(seed, dtype=pf.float64)
    (gx,) = pf.grad([y], [t], [g] if g is not None else None)
    return np.asarray(gx)


def hessian(fn, x):
    """The Hessian of the scalar fn(x), one create_graph backward per row."""
    t = leaf(x)
    (g,) = pf.grad([fn(t)], [t], create_graph=True)
    flat = g.reshape(-1)
    rows = []
    for i in range(x.size):
        (h,) = pf.grad([flat[i]], [t], retain_graph=True, allow_unused=True)
        rows.append(np.zeros(x.size) if h is None else np.asarray(h).ravel())
    return np.array(rows)


# ------------------------------------------------------------------ ties

def tie_oracle(x, axis, pick):
    """NumPy oracle: each group's gradient 1 split evenly between its tied extremes."""
    m = pick(x, axis=axis, keepdims=True)
    hit = (x == m).astype(np.float64)
    return hit / hit.sum(axis=axis, keepdims=True)


TIED = np.array([[1.0, 3.0, 3.0, -2.0],
                 [-5.0, -5.0, -5.0, 0.5],
                 [2.0, 2.0, 2.0, 2.0]])


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)])
@pytest.mark.parametrize("name,pick", [("max", np.max), ("min", np.min),
                                       ("amax", np.max), ("amin", np.min)])
def test_ties_share_the_gradient_evenly(name, pick, axis):
    fn = getattr(pf, name)
    got = grad_of(lambda t: fn(t, axis=axis).sum(), TIED)
    np.testing.assert_allclose(got, tie_oracle(TIED, axis, pick), rtol=0, atol=1e-15)


def test_ties_with_keepdims_and_an_upstream_gradient():
    seed = np.array([[2.0], [-3.0], [0.5]])
    got = grad_of(lambda t: pf.max(t, axis=1, keepdims=True), TIED, seed)
    np.testing.assert_allclose(got, tie_oracle(TIED, 1, np.max) * seed, atol=1e-15)
    # every group's gradient still sums to its upstream value
    np.testing.assert_allclose(got.sum(axis=1), seed[:, 0], atol=1e-15)


def test_norm_inf_ties_split_between_signs():
    x = np.array([3.0, -3.0, 1.0, 2.0])
    got = grad_of(lambda t: pf.norm(t, ord=np.inf), x)
    np.testing.assert_allclose(got, [0.5, -0.5, 0.0, 0.0], atol=1e-15)
    got = grad_of(lambda t: pf.norm(t, ord=-np.inf), np.array([1.0, -1.0, 4.0]))
    np.testing.assert_allclose(got, [0.5, -0.5, 0.0], atol=1e-15)


def test_ties_match_torch_amax():
    torch = pytest.importorskip("torch")
    x = np.array([[0.0, 1.0, 1.0], [4.0, 4.0, -1.0]])
    for axis in (0, 1):
        tx = torch.tensor(x, requires_grad=True)
        torch.amax(tx, dim=axis).sum().backward()
        np.testing.assert_allclose(grad_of(lambda t: pf.amax(t, axis=axis).sum(), x),
                                   tx.grad.numpy(), atol=1e-15)


# ------------------------------------------------------------------ zeros

def others_product(x):
    """d prod(x) / dx_i = the product of the other elements (no division)."""
    flat = x.ravel()
    return np.array([np.prod(np.delete(flat, i)) for i in range(flat.size)]).reshape(x.shape)


def prod_hessian(x):
    flat = x.ravel()
    n = flat.size
    h = np.zeros((n, n))
    for i, j in itertools.permutations(range(n), 2):
        h[i, j] = np.prod(np.delete(flat, [i, j]))
    return h


@pytest.mark.parametrize("zeros", [[], [2], [0, 3], [1, 2, 4]], ids=["none", "one", "two",
                                                                      "three"])
def test_prod_gradient_and_hessian_with_zeros(zeros):
    x = np.array([1.5, -0.7, 2.0, 0.9, -1.3])
    x[zeros] = 0.0
    np.testing.assert_allclose(grad_of(pf.prod, x), others_product(x), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hessian(pf.prod, x), prod_hessian(x), rtol=1e-12, atol=1e-14)


def test_prod_zeros_along_an_axis():
    x = np.array([[0.0, 2.0, 3.0], [1.0, 0.0, 0.0], [2.0, -1.0, 0.5]])
    got = grad_of(lambda t: pf.prod(t, axis=1).sum(), x)
    want = np.stack([others_product(r) for r in x])
    np.testing.assert_allclose(got, want, atol=1e-14)
    got = grad_of(lambda t: pf.prod(t, axis=0, keepdims=True).sum(), x)
    want = np.stack([others_product(c) for c in x.T]).T
    np.testing.assert_allclose(got, want, atol=1e-14)


def cumprod_grad(x, g):
    """d sum(g * cumprod(x)) / dx_k = sum_{i >= k} g_i prod_{j <= i, j != k} x_j."""
    n = x.size
    return np.array([sum(g[i] * np.prod(np.delete(x[:i + 1], k)) for i in range(k, n))
                     for k in range(n)])


@pytest.mark.parametrize("zeros", [[], [0], [2], [1, 3], [0, 2, 4]])
def test_cumprod_gradient_with_zeros(zeros):
    x = np.array([1.5, -0.7, 2.0, 0.9, -1.3])
    x[zeros] = 0.0
    g = np.array([0.3, -1.1, 0.8, 2.0, -0.4])
    np.testing.assert_allclose(grad_of(pf.cumprod, x, g), cumprod_grad(x, g), atol=1e-14)


def test_cumprod_hessian_with_zeros_matches_torch():
    torch = pytest.importorskip("torch")
    w = np.array([0.3, -1.1, 0.8, 2.0, -0.4])
    for zeros in ([2], [1, 3]):
        x = np.array([1.5, -0.7, 2.0, 0.9, -1.3])
        x[zeros] = 0.0
        got = hessian(lambda t: (pf.cumprod(t) * pf.tensor(w)).sum(), x)
        want = torch.autograd.functional.hessian(
            lambda t: (torch.cumprod(t, 0) * torch.tensor(w)).sum(), torch.tensor(x))
        np.testing.assert_allclose(got, want.numpy(), atol=1e-12)


# ------------------------------------------------------------------ undefined points

def test_norm_and_std_at_zero_have_zero_gradient():
    z = np.zeros((2, 3))
    assert np.all(grad_of(lambda t: pf.norm(t), z) == 0)
    assert np.all(grad_of(lambda t: pf.norm(t, axis=1).sum(), z) == 0)
    assert np.all(grad_of(lambda t: pf.std(t, axis=0).sum(), np.ones((3, 2))) == 0)
    got = grad_of(lambda t: pf.norm(t, ord=3), np.array([0.0, 2.0, -1.0]))
    assert got[0] == 0 and np.all(np.isfinite(got))


# ------------------------------------------------------------------ against torch

def torch_grads(tfn, arrays):
    torch = pytest.importorskip("torch")
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    tfn(torch, *ts).backward()
    return [t.grad.numpy() for t in ts]


def pf_grads(pfn, arrays):
    ts = [leaf(a) for a in arrays]
    pfn(*ts).backward()
    return [np.asarray(t.grad) for t in ts]


COMPOSITES = [
    ("softmax-logsumexp",
     lambda x, w: (pf.softmax(x, axis=1) * w).sum() + pf.logsumexp(x * w, axis=0).sum(),
     lambda T, x, w: (T.softmax(x, 1) * w).sum() + T.logsumexp(x * w, 0).sum()),
    ("log_softmax-var",
     lambda x, w: (pf.log_softmax(x, axis=0) * w).sum() * pf.var(x, ddof=1),
     lambda T, x, w: (T.log_softmax(x, 0) * w).sum() * T.var(x, correction=1)),
    ("std-norm",
     lambda x, w: pf.std(x * w, axis=1, keepdims=True).sum() + pf.norm(x, ord=3, axis=0).sum(),
     lambda T, x, w: T.std(x * w, 1, correction=0, keepdim=True).sum()
     + T.linalg.vector_norm(x, ord=3, dim=0).sum()),
    ("cumsum-cumprod-prod",
     lambda x, w: (pf.cumsum(x, axis=1) * pf.cumprod(w, axis=0)).sum() + pf.prod(x, axis=1).sum(),
     lambda T, x, w: (T.cumsum(x, 1) * T.cumprod(w, 0)).sum() + T.prod(x, 1).sum()),
    ("max-min-mean",
     lambda x, w: (pf.max(x, axis=0) * pf.min(w, axis=0)).sum() + pf.mean(x * w),
     lambda T, x, w: (T.amax(x, 0) * T.amin(w, 0)).sum() + T.mean(x * w)),
    ("norm-1-2-inf",
     lambda x, w: pf.norm(x, ord=1) * pf.norm(w) + pf.norm(x - w, ord=np.inf, axis=1).sum(),
     lambda T, x, w: T.linalg.vector_norm(x, 1) * T.linalg.vector_norm(w)
     + T.linalg.vector_norm(x - w, float("inf"), dim=1).sum()),
]


@pytest.mark.parametrize("name,pfn,tfn", COMPOSITES, ids=[c[0] for c in COMPOSITES])
def test_composites_match_torch(name, pfn, tfn):
    rng = np.random.default_rng(7)
    arrays = [rng.uniform(-2, 2, size=(3, 4)), rng.uniform(-2, 2, size=(3, 4))]
    want = torch_grads(tfn, arrays)
    for got, w in zip(pf_grads(pfn, arrays), want):
        np.testing.assert_allclose(got, w, rtol=1e-10, atol=1e-12)


def test_hessian_vector_product_matches_torch():
    """create_graph through softmax, var and logsumexp: a gradient penalty."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(3, 4))
    t = leaf(x)
    loss = (pf.softmax(t, axis=1) * pf.var(t, axis=0)).sum() + pf.logsumexp(t)
    (g,) = pf.grad([loss], [t], create_graph=True)
    (g * g).sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    tl = (torch.softmax(tt, 1) * torch.var(tt, 0, correction=0)).sum() + torch.logsumexp(tt, (0, 1))
    (tg,) = torch.autograd.grad(tl, tt, create_graph=True)
    (tg * tg).sum().backward()
    np.testing.assert_allclose(np.asarray(t.grad), tt.grad.numpy(), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ errors

def test_second_backward_without_retain_graph_raises():
    t = leaf(np.arange(1.0, 5.0))
    y = pf.prod(t)
    y.backward()
    with pytest.raises(RuntimeError, match="ProdBackward.*second time"):
        y.backward()
