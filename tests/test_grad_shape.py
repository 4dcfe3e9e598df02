"""Gradients of the shape ops (csrc/backward_shape.c) against torch.autograd,
and the semantic choices of their rules.  The per-op gradchecks are rows
in tests/grad_rows/shape_ops.py."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pyframe as pf


def leaves(rng, *shapes):
    """The same float64 values as pyframe and torch leaves."""
    arrs = [rng.uniform(-2, 2, size=s) for s in shapes]
    return ([pf.tensor(a, dtype=pf.float64, requires_grad=True) for a in arrs],
            [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrs])


def check(pf_out, pt_out, pf_in, pt_in):
    """Values equal, and the gradients of sum(out * w) for a fixed w equal."""
    np.testing.assert_allclose(np.asarray(pf_out), pt_out.detach().numpy(), rtol=1e-12)
    w = np.random.default_rng(7).standard_normal(tuple(pt_out.shape))
    (pf_out * pf.tensor(w, dtype=pf.float64)).sum().backward()
    (pt_out * torch.tensor(w)).sum().backward()
    for a, b in zip(pf_in, pt_in):
        np.testing.assert_allclose(np.asarray(a.grad), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_joins_and_splits_match_torch():
    (a, b, c), (ta, tb, tc) = leaves(np.random.default_rng(0), (2, 3), (2, 4), (3, 7))
    pieces = pf.split(pf.concatenate([a, b * 2.0], axis=1), [2, 5], axis=1)
    y = pf.stack([pieces[0].sum(axis=1), pieces[2].sum(axis=1)], axis=-1)
    z = pf.concatenate(pf.chunk(c, 3, axis=1)[::-1], axis=1)
    out = pf.concatenate([y.reshape(-1), z.reshape(-1) * 0.5])
    tp = torch.tensor_split(torch.cat([ta, tb * 2.0], dim=1), [2, 5], dim=1)
    ty = torch.stack([tp[0].sum(dim=1), tp[2].sum(dim=1)], dim=-1)
    tz = torch.cat(torch.chunk(tc, 3, dim=1)[::-1], dim=1)
    t_out = torch.cat([ty.reshape(-1), tz.reshape(-1) * 0.5])
    check(out, t_out, [a, b, c], [ta, tb, tc])


def test_tile_repeat_flip_roll_match_torch():
    (a, b), (ta, tb) = leaves(np.random.default_rng(1), (2, 3), (3, 2))
    out = (pf.tile(a, (2, 1, 2)) * pf.flip(pf.roll(pf.tile(a, (1, 2)), (1, -2), axis=(0, 1)),
                                           axis=0)).sum(axis=0)
    out = out[:, 1:4] + pf.repeat(b, [1, 3], axis=1)[:2, :3] + pf.repeat(b, 2)[:6].reshape(2, 3)
    t_out = (ta.repeat(2, 1, 2) * torch.flip(torch.roll(ta.repeat(1, 2), (1, -2), (0, 1)),
                                             dims=(0,))).sum(dim=0)
    t_out = t_out[:, 1:4] + torch.repeat_interleave(tb, torch.tensor([1, 3]), dim=1)[:2, :3] \
        + torch.repeat_interleave(tb, 2)[:6].reshape(2, 3)
    check(out, t_out, [a, b], [ta, tb])


@pytest.mark.parametrize("mode,tmode", [("constant", "constant"), ("reflect", "reflect"),
                                        ("edge", "replicate")])
def test_pad_matches_torch(mode, tmode):
    (a,), (ta,) = leaves(np.random.default_rng(2), (4, 5))
    out = pf.pad(a * a, ((2, 1), (3, 2)), mode=mode)
    # torch pads the last dimension first; reflect/replicate want a channel axis
    t_out = F.pad((ta * ta)[None], (3, 2, 2, 1), mode=tmode)[0]
    check(out, t_out, [a], [ta])


def test_pad_second_derivative_matches_torch():
    (a,), (ta,) = leaves(np.random.default_rng(3), (3, 4))
    y = (pf.pad(a, ((1, 2), (2, 1)), mode="reflect") ** 3).sum()
    (g,) = pf.autograd.grad(y, [a], create_graph=True)
    (g * g).sum().backward()
    ty = (F.pad(ta[None], (2, 1, 1, 2), mode="reflect")[0] ** 3).sum()
    (tg,) = torch.autograd.grad(ty, [ta], create_graph=True)
    (tg * tg).sum().backward()
    np.testing.assert_allclose(np.asarray(g.detach()), tg.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(a.grad), ta.grad.numpy(), rtol=1e-10)


def test_tri_masked_fill_moveaxis_match_torch():
    (a, v), (ta, tv) = leaves(np.random.default_rng(4), (2, 3, 4), ())
    mask = np.random.default_rng(5).uniform(size=(3, 1)) > 0.4
    y = pf.masked_fill(pf.tril(a, k=1) + pf.triu(a, -1), pf.tensor(mask), v * 2.0)
    out = pf.moveaxis(y, (0, 2), (2, 1))
    ty = (torch.tril(ta, 1) + torch.triu(ta, -1)).masked_fill(torch.tensor(mask), tv * 2.0)
    t_out = torch.movedim(ty, (0, 2), (2, 1))
    check(out, t_out, [a, v], [ta, tv])


def test_masked_fill_inplace_matches_torch():
    (a, v), (ta, tv) = leaves(np.random.default_rng(6), (3, 4), (1,))
    mask = np.random.default_rng(8).uniform(size=(3, 4)) > 0.5
    y = a * 3.0
    y.masked_fill_(pf.tensor(mask), v)
    ty = ta * 3.0
    ty.masked_fill_(torch.tensor(mask), tv[0])
    check(y * a, ty * ta, [a, v], [ta, tv])


def test_masked_fill_inplace_on_a_leaf_raises():
    a = pf.ones((2, 2), dtype=pf.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="masked_fill_: writes in place into a leaf"):
        a.masked_fill_(pf.tensor([[True, False], [False, True]]), 0.0)


def test_unused_split_pieces_get_zero_gradient():
    x = pf.tensor(np.arange(10.0).reshape(5, 2), dtype=pf.float64, requires_grad=True)
    parts = pf.split(x, [1, 4])
    (parts[1] * 2.0).sum().backward()
    expect = np.zeros((5, 2))
    expect[1:4] = 2.0
    np.testing.assert_array_equal(np.asarray(x.grad), expect)


def test_split_points_going_backwards_add_up():
    # split(x, [3, 1]) gives x[:3], x[3:1] (empty) and x[1:]: rows 1 and 2 are in two pieces
    x = pf.tensor(np.arange(5.0), dtype=pf.float64, requires_grad=True)
    p = pf.split(x, [3, 1])
    (p[0].sum() + 10.0 * p[2].sum()).backward()
    np.testing.assert_array_equal(np.asarray(x.grad), [1.0, 11.0, 11.0, 10.0, 10.0])


def test_concatenate_with_inputs_that_need_no_gradient():
    a = pf.tensor(np.ones((2, 2)), dtype=pf.float64, requires_grad=True)
    b = pf.tensor(np.ones((1, 2)), dtype=pf.float64)        # no grad
    y = pf.concatenate([b, [[5.0, 6.0]], a, np.zeros((1, 2)), a], axis=0)
    w = np.arange(14.0).reshape(7, 2)
    (y * pf.tensor(w, dtype=pf.float64)).sum().backward()
    np.testing.assert_array_equal(np.asarray(a.grad), w[2:4] + w[5:7])
    assert b.grad is None


def test_pad_gradient_for_per_side_constant_values():
    # each (axis, side) constant gets the sum of the gradient over the elements
    # it filled; np.pad fills axis by axis, so the corners belong to the last axis
    a = pf.ones((2, 3), dtype=pf.float64, requires_grad=True)
    c = pf.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=pf.float64, requires_grad=True)
    w = np.arange(5.0 * 6).reshape(5, 6)
    y = pf.pad(a, ((1, 2), (2, 1)), constant_values=c)
    (y * pf.tensor(w, dtype=pf.float64)).sum().backward()
    owner = np.pad(np.zeros((2, 3)), ((1, 2), (2, 1)), constant_values=((1, 2), (3, 4)))
    expect = [[w[owner == k].sum() for k in (1, 2)], [w[owner == k].sum() for k in (3, 4)]]
    np.testing.assert_array_equal(np.asarray(c.grad), expect)
    assert pf.autograd.gradcheck(lambda x, v: pf.pad(x, 1, constant_values=v) ** 2,
                                 (pf.tensor(np.random.rand(3), dtype=pf.float64,
                                            requires_grad=True),
                                  pf.tensor([0.5, -1.5], dtype=pf.float64,
                                            requires_grad=True)))


def test_mask_changed_after_masked_fill_makes_backward_raise():
    a = pf.ones((2, 3), dtype=pf.float64, requires_grad=True)
    mask = pf.tensor([[True, False, True]])
    y = pf.masked_fill(a, mask, 0.0)
    mask[0, 0] = False
    with pytest.raises(RuntimeError, match=r"MaskedFillBackward: input 1 .* was modified"):
        y.sum().backward()
