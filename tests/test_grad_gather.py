"""Gradients of the gathers, scatters and sorts (csrc/backward_gather.c) and
of indexing (x[key], x[key] = v: the view rules in csrc/backward.c) against
torch.autograd, and the semantic choices of their rules.  The per-op
gradchecks are rows in tests/grad_rows/gather.py."""
import numpy as np
import pytest
import torch

import pyframe as pf


def leaves(rng, *shapes):
    arrs = [rng.uniform(-2, 2, size=s) for s in shapes]
    return ([pf.tensor(a, dtype=pf.float64, requires_grad=True) for a in arrs],
            [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrs])


def weights(shape, seed=7):
    return np.random.default_rng(seed).standard_normal(tuple(shape))


def check(pf_out, pt_out, pf_in, pt_in):
    """Values equal, and the gradients of sum(out * w) for a fixed w equal."""
    np.testing.assert_allclose(np.asarray(pf_out), pt_out.detach().numpy(), rtol=1e-12)
    w = weights(pt_out.shape)
    (pf_out * pf.tensor(w, dtype=pf.float64)).sum().backward()
    (pt_out * torch.tensor(w)).sum().backward()
    for a, b in zip(pf_in, pt_in):
        np.testing.assert_allclose(np.asarray(a.grad), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def ints(a):
    return pf.tensor(np.array(a, dtype=np.int64)), torch.tensor(np.array(a, dtype=np.int64))


def test_gathers_match_torch():
    (a, b), (ta, tb) = leaves(np.random.default_rng(0), (3, 4), (4, 2))
    i1, t1 = ints([[0, 3, 3], [1, 1, 0], [2, 0, 2]])
    i2, t2 = ints([2, 0, 2, 1])
    i3, t3 = ints([[7, 0], [7, 11]])
    y = pf.gather(a, 1, i1) * 2.0 + pf.take_along_axis(a * a, i1, axis=1)
    z = pf.index_select(b, 0, i2).sum(axis=1) + pf.take(a, i3).reshape(-1)
    out = pf.concatenate([y.reshape(-1), z])
    ty = torch.gather(ta, 1, t1) * 2.0 + torch.take_along_dim(ta * ta, t1, dim=1)
    tz = torch.index_select(tb, 0, t2).sum(dim=1) + torch.take(ta, t3).reshape(-1)
    check(out, torch.cat([ty.reshape(-1), tz]), [a, b], [ta, tb])


def test_scatters_match_torch():
    # distinct positions per scatter, where PyTorch's rule is the exact gradient
    (a, s, c), (ta, ts, tc) = leaves(np.random.default_rng(1), (3, 4), (2, 5), (3, 4))
    i1, t1 = ints([[2, 0, 1, 3], [0, 2, 3, 1]])
    i2, t2 = ints([[1, 1, 0, 2], [2, 0, 0, 2]])
    y = pf.scatter(a * 1.5, 1, i1, s) + pf.scatter_add(c, 0, i2, s * s)
    y2 = y * 1.0
    y2.scatter_(0, i2[:1], c[1:2] * 3.0)
    y2.scatter_add_(1, i1, s)
    ty = torch.scatter(ta * 1.5, 1, t1, ts[:, :4]) + torch.scatter_add(tc, 0, t2, (ts * ts)[:, :4])
    ty2 = ty * 1.0
    ty2.scatter_(0, t2[:1], tc[1:2] * 3.0)
    ty2.scatter_add_(1, t1, ts[:, :4])
    check(y2, ty2, [a, s, c], [ta, ts, tc])


def test_scatter_value_matches_torch():
    (a,), (ta,) = leaves(np.random.default_rng(2), (3, 3))
    i, ti = ints([[1], [0], [1]])
    check(pf.scatter(a, 1, i, value=4.0) * a, torch.scatter(ta, 1, ti, value=4.0) * ta, [a], [ta])


def test_scatter_with_repeated_positions_gives_the_gradient_to_the_last_write():
    """scatter writes src in row-major order over index, so with repeated
    positions the last write wins, and only that element of src reaches
    the output.  Its rule gives the others zero: the true gradient.
    (PyTorch's gives every duplicate the gradient of the position.)"""
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(2, 5))
    src = rng.uniform(size=(3, 4))
    index = np.array([[1, 1, 4, 1], [0, 3, 3, 0]])
    g = weights((2, 5))
    # the oracle: replay the writes of scatter(x, 1, index, src) in their order
    gx = g.copy()
    gsrc = np.zeros_like(src)
    last = {}
    for r, c in np.ndindex(index.shape):
        last[(r, index[r, c])] = (r, c)
    for (r, col), (sr, sc) in last.items():
        gx[r, col] = 0.0
        gsrc[sr, sc] = g[r, col]
    px = pf.tensor(x, dtype=pf.float64, requires_grad=True)
    ps = pf.tensor(src, dtype=pf.float64, requires_grad=True)
    out = pf.scatter(px, 1, pf.tensor(index), ps)
    (out * pf.tensor(g, dtype=pf.float64)).sum().backward()
    np.testing.assert_array_equal(np.asarray(px.grad), gx)
    np.testing.assert_array_equal(np.asarray(ps.grad), gsrc)
    assert (gsrc[0, :2] == 0).all() and gsrc[0, 3] != 0     # writes 0 and 1 were overwritten


def test_sort_with_ties_matches_torch_stable_sort():
    x = np.array([[1.0, 3.0, 1.0, 2.0, 3.0, 1.0], [0.5, 0.5, -1.0, 2.0, 0.5, 7.0]])
    px = pf.tensor(x, dtype=pf.float64, requires_grad=True)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    for desc in (False, True):
        px.grad = None
        tx.grad = None
        out = pf.sort(px * px, axis=1, descending=desc)
        t_out = torch.sort(tx * tx, dim=1, descending=desc, stable=True).values
        check(out, t_out, [px], [tx])


def test_sort_flat_and_topk_match_torch():
    rng = np.random.default_rng(4)
    x = (rng.permutation(20) * 0.25 - 2.0).reshape(4, 5)
    px = pf.tensor(x, dtype=pf.float64, requires_grad=True)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    vals, idx = pf.topk(px.exp(), 2, axis=0, largest=False)
    out = pf.concatenate([pf.sort(px, axis=None, descending=True), vals.reshape(-1)])
    t_vals, t_idx = torch.topk(tx.exp(), 2, dim=0, largest=False)
    t_out = torch.cat([torch.sort(tx.reshape(-1), descending=True).values, t_vals.reshape(-1)])
    np.testing.assert_array_equal(np.asarray(idx), t_idx.numpy())
    assert not idx.requires_grad and idx.grad_fn is None
    check(out, t_out, [px], [tx])


def test_topk_gradient_lands_on_the_returned_indices():
    # equal values: topk keeps the lower index first, and the gradient follows its indices
    x = np.array([2.0, 5.0, 5.0, 1.0, 5.0])
    px = pf.tensor(x, dtype=pf.float64, requires_grad=True)
    vals, idx = pf.topk(px, 2)
    (vals * pf.tensor([10.0, 1.0], dtype=pf.float64)).sum().backward()
    np.testing.assert_array_equal(np.asarray(idx), [1, 2])
    np.testing.assert_array_equal(np.asarray(px.grad), [0.0, 10.0, 1.0, 0.0, 0.0])


def test_inplace_scatter_on_a_leaf_raises():
    a = pf.zeros((2, 2), dtype=pf.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="scatter_: writes in place into a leaf"):
        a.scatter_(0, pf.tensor([[0, 1]]), 1.0)
    with pytest.raises(RuntimeError, match="scatter_add_: writes in place into a leaf"):
        a.scatter_add_(0, pf.tensor([[0, 1]]), 1.0)


# ------------------------------------------------------ indexing (backward.c)

def test_getitem_basic_slices_and_negative_steps():
    (a,), (ta,) = leaves(np.random.default_rng(5), (4, 5))
    # torch has no negative steps: flip first, as x[::-1] means
    out = a[1:, ::2] * a[:3, 4:1:-1]
    t_out = ta[1:, ::2] * torch.flip(ta, dims=(1,))[:3, 0:3]
    check(out, t_out, [a], [ta])


def test_getitem_integer_arrays_with_repeats():
    (a,), (ta,) = leaves(np.random.default_rng(6), (4, 3))
    rows, cols = [3, 0, 3, 3], [1, 1, 2, 1]
    out = a[rows] * 2.0 + a[rows, cols][:, None] + a[pf.tensor(rows), 1:][:, :1]
    t_out = ta[rows] * 2.0 + ta[rows, cols][:, None] + ta[torch.tensor(rows), 1:][:, :1]
    check(out, t_out, [a], [ta])


def test_getitem_boolean_mask():
    (a,), (ta,) = leaves(np.random.default_rng(7), (3, 4))
    mask = np.random.default_rng(8).uniform(size=(3, 4)) > 0.4
    out = a[pf.tensor(mask)] ** 2 + a[pf.tensor(mask[:, 0])].sum()
    t_out = ta[torch.tensor(mask)] ** 2 + ta[torch.tensor(mask[:, 0])].sum()
    check(out, t_out, [a], [ta])


def test_setitem_tensor_that_requires_grad_into_one_that_does_not():
    (a, b), (ta, tb) = leaves(np.random.default_rng(9), (2, 3), (3,))
    z = pf.zeros((4, 3), dtype=pf.float64)
    z[1:3] = a * 2.0
    z[[0, 3]] = b
    tz = torch.zeros((4, 3), dtype=torch.float64)
    tz[1:3] = ta * 2.0
    tz[[0, 3]] = tb
    assert z.requires_grad
    check(z * z, tz * tz, [a, b], [ta, tb])


def test_setitem_overwrites_part_of_a_tensor_in_the_graph():
    (a, v), (ta, tv) = leaves(np.random.default_rng(10), (3, 4), (4,))
    y = a * 3.0
    y[1] = v
    y[:, ::3] = 0.5
    ty = ta * 3.0
    ty[1] = tv
    ty[:, ::3] = 0.5
    check(y * a, ty * ta, [a, v], [ta, tv])


# ------------------------------------------------------ saved values, memory

def test_index_changed_after_the_op_makes_backward_raise():
    a = pf.ones((2, 3), dtype=pf.float64, requires_grad=True)
    index = pf.tensor([[0, 1, 2]])
    y = pf.gather(a, 1, index)
    index[0, 0] = 2
    with pytest.raises(RuntimeError, match=r"GatherBackward: input 1 .* was modified by an "
                                           r"in-place operation"):
        y.sum().backward()


def test_sorted_input_changed_after_the_sort_makes_backward_raise():
    a = pf.ones((2, 3), dtype=pf.float64, requires_grad=True)
    y = a * 1.0
    s = pf.sort(y)
    y.mul_(2.0)
    with pytest.raises(RuntimeError, match=r"SortBackward: input 0 .* was modified"):
        s.sum().backward()


def test_shape_and_gather_rules_leave_no_live_tensors():
    """Every row of both families, first and second derivatives: the live
    tensor count and bytes return to where they were."""
    import gc
    from grad_rows import gather, shape_ops

    def live():
        gc.collect()
        s = pf.memory_stats()["cpu"]
        return s["live_tensors"], s["live_bytes"]

    rng = np.random.default_rng(0)
    for row in shape_ops.ROWS + gather.ROWS:
        arrs = row.make(rng) if row.make else [rng.uniform(-2, 2, size=s) for s in row.shapes]

        def once():
            ins = [pf.tensor(np.asarray(x), dtype=pf.float64, requires_grad=True) for x in arrs]
            outs = row.fn(*ins)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            total = sum(o.sum() for o in outs if o.requires_grad)
            gs = pf.autograd.grad(total, ins, create_graph=True, allow_unused=True)
            second = sum((g * g).sum() for g in gs if g is not None)
            if getattr(second, "requires_grad", False):
                second.backward()

        once()
        before = live()
        for _ in range(2):
            once()
        assert live() == before, row.id
