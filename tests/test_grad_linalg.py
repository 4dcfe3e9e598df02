"""Gradients of the products beyond the table's finite differences: composites against
torch.autograd, second derivatives, the @ and @= operators, and einsum's special subscripts."""
import numpy as np
import pytest

import pyframe as pf

torch = pytest.importorskip("torch")


def leaf(a):
    return pf.tensor(np.asarray(a, dtype=np.float64), dtype=pf.float64, requires_grad=True)


def compare(pfn, tfn, shapes, seed=0, rtol=1e-10, atol=1e-12):
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-2, 2, size=s) for s in shapes]
    ps = [leaf(a) for a in arrays]
    pfn(*ps).backward()
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    tfn(*ts).backward()
    for i, (p, t) in enumerate(zip(ps, ts)):
        np.testing.assert_allclose(np.asarray(p.grad), t.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg="input %d" % i)


COMPOSITES = [
    ("mlp",
     lambda x, w1, w2: pf.tanh(x @ w1).matmul(w2).sum(),
     lambda x, w1, w2: torch.tanh(x @ w1).matmul(w2).sum(),
     [(5, 3), (3, 4), (4, 2)]),
    ("batched-broadcast",
     lambda a, b, v: ((a @ b) @ v).pow(2).sum(),
     lambda a, b, v: ((a @ b) @ v).pow(2).sum(),
     [(2, 1, 3, 4), (3, 4, 5), (5,)]),
    ("vector-forms",
     lambda u, m, v: pf.matmul(u, m) @ v + pf.dot(u, u) * pf.matmul(m, v).sum(),
     lambda u, m, v: torch.matmul(u, m) @ v + torch.dot(u, u) * torch.matmul(m, v).sum(),
     [(3,), (3, 4), (4,)]),
    ("mm-bmm",
     lambda a, b, c: pf.bmm(c, pf.mm(a, b) * pf.tensor([[[1.0]], [[-2.0]]])).sum(),
     lambda a, b, c: torch.bmm(c, torch.mm(a, b) * torch.tensor([[[1.0]], [[-2.0]]],
                                                                dtype=torch.float64)).sum(),
     [(3, 4), (4, 2), (2, 5, 3)]),
    ("outer-tensordot",
     lambda a, b, c: (pf.tensordot(pf.outer(a, b), c, axes=([0, 1], [1, 0])) ** 2),
     lambda a, b, c: (torch.tensordot(torch.outer(a, b), c, dims=([0, 1], [1, 0])) ** 2),
     [(3,), (4,), (4, 3)]),
    ("einsum-attention",
     lambda q, k, v: pf.einsum("bqd,bkd->bqk", q, k).softmax(axis=-1).matmul(v).sum(),
     lambda q, k, v: torch.einsum("bqd,bkd->bqk", q, k).softmax(dim=-1).matmul(v).sum(),
     [(2, 3, 4), (2, 5, 4), (2, 5, 2)]),
    ("einsum-diag-trace",
     lambda a, b, c: pf.einsum("ii->i", a) @ pf.einsum("ij,jk->ik", b, c).sum(axis=1)
     + pf.einsum("ii", a) * pf.einsum("ij->", b),
     lambda a, b, c: torch.einsum("ii->i", a) @ torch.einsum("ij,jk->ik", b, c).sum(dim=1)
     + torch.einsum("ii", a) * torch.einsum("ij->", b),
     [(3, 3), (3, 4), (4, 2)]),
    ("einsum-ellipsis",
     lambda a, b: pf.einsum("...ij,...j->...i", a, b).pow(2).sum(),
     lambda a, b: torch.einsum("...ij,...j->...i", a, b).pow(2).sum(),
     [(2, 3, 4), (2, 1, 4)]),
]


@pytest.mark.parametrize("name,pfn,tfn,shapes", COMPOSITES, ids=[c[0] for c in COMPOSITES])
def test_composites_match_torch(name, pfn, tfn, shapes):
    def scalar(f):
        return lambda *a: f(*a).sum()
    compare(scalar(pfn), scalar(tfn), shapes)


def test_hessian_vector_product_matches_torch():
    rng = np.random.default_rng(1)
    xa, wa = rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (3, 3))

    def loss(lib, x, w):
        ein = pf.einsum if lib is pf else torch.einsum
        return ein("ij,jk,ik->", x, w, x) + (x @ w @ w).sum() ** 2

    x, w = leaf(xa), leaf(wa)
    gx, gw = pf.grad([loss(pf, x, w)], [x, w], create_graph=True)
    ((gx * gx).sum() + (gw * gw).sum()).backward()
    tx, tw = torch.tensor(xa, requires_grad=True), torch.tensor(wa, requires_grad=True)
    tgx, tgw = torch.autograd.grad(loss(torch, tx, tw), (tx, tw), create_graph=True)
    ((tgx * tgx).sum() + (tgw * tgw).sum()).backward()
    np.testing.assert_allclose(np.asarray(x.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(w.grad), tw.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_matmul_operator_is_recorded():
    a, b = leaf(np.ones((2, 3))), leaf(np.arange(6.0).reshape(3, 2))
    y = a @ b
    assert y.requires_grad and y.grad_fn is not None
    y.sum().backward()
    np.testing.assert_allclose(np.asarray(a.grad), np.tile(np.arange(6.0).reshape(3, 2).sum(1),
                                                           (2, 1)))
    np.testing.assert_allclose(np.asarray(b.grad), np.full((3, 2), 2.0))


def test_inplace_matmul_raises_when_recording_and_works_without():
    a = leaf(np.eye(2))
    c = pf.ones((2, 2), dtype=pf.float64)
    with pytest.raises(RuntimeError, match=r"matmul: a @= b .*a = a @ b"):
        c @= a
    with pf.no_grad():
        c @= a
    np.testing.assert_allclose(np.asarray(c), np.ones((2, 2)))


def test_einsum_diagonal_gradient_is_zero_off_the_diagonal():
    a = leaf(np.arange(9.0).reshape(3, 3))
    g = np.array([1.0, -2.0, 0.5])
    pf.einsum("ii->i", a).backward(pf.tensor(g, dtype=pf.float64))
    np.testing.assert_array_equal(np.asarray(a.grad), np.diag(g))


def test_einsum_summed_letter_gradient_is_constant_along_it():
    a = leaf(np.arange(6.0).reshape(2, 3))
    pf.einsum("ij->i", a).backward(pf.tensor([2.0, -1.0], dtype=pf.float64))
    np.testing.assert_array_equal(np.asarray(a.grad), [[2.0] * 3, [-1.0] * 3])


def test_operand_that_is_not_a_tensor_gets_no_gradient_but_is_read():
    b = np.arange(12.0).reshape(3, 4)
    a = leaf(np.ones((2, 3)))
    pf.einsum("ij,jk->ik", a, b).sum().backward()
    np.testing.assert_allclose(np.asarray(a.grad), np.tile(b.sum(1), (2, 1)))
    a.grad = None
    pf.tensordot(b.T, a, axes=([1], [1])).sum().backward()
    np.testing.assert_allclose(np.asarray(a.grad), np.tile(b.sum(1), (2, 1)))


def test_keyword_operands_map_to_their_slots():
    a, b = leaf(np.ones((2, 3))), leaf(np.arange(6.0).reshape(3, 2))
    pf.matmul(b=b, a=a).sum().backward()
    assert a.grad.shape == (2, 3) and b.grad.shape == (3, 2)
    np.testing.assert_allclose(np.asarray(b.grad), np.full((3, 2), 2.0))


def test_second_backward_through_einsum_raises():
    a = leaf(np.ones((2, 2)))
    y = pf.einsum("ij,jk->", a, a)
    y.backward()
    with pytest.raises(RuntimeError, match="EinsumBackward.*second time"):
        y.backward()
