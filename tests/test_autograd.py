"""The autograd engine and its API: leaves and history, accumulation,
retain_graph, saved-tensor versions, in-place writes, hooks, grad mode,
pf.grad with create_graph, Function, checkpoint, error messages, leaks.

Oracles: closed-form derivatives computed in NumPy float64, and
torch.autograd where it is installed."""
import gc
import threading

import numpy as np
import pytest

import pyframe as pf

try:
    import torch
except ImportError:   # torch is only ever a reference
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch (the reference) is not installed")


def arr(t):
    return np.array(t, dtype=np.float64)


def leaf(values, dtype=pf.float64):
    return pf.tensor(np.asarray(values, dtype=np.float64), dtype=dtype, requires_grad=True)


# ------------------------------------------------------------------ leaves and history

def test_requires_grad_forms():
    a = pf.ones(3, requires_grad=True)
    assert a.requires_grad and a.is_leaf and a.grad is None and a.grad_fn is None
    b = pf.zeros(3)
    assert not b.requires_grad
    b.requires_grad = True
    assert b.requires_grad
    c = pf.zeros(2).requires_grad_()
    assert c.requires_grad
    c.requires_grad_(False)
    assert not c.requires_grad
    t = pf.Tensor([1.0, 2.0], requires_grad=True)
    assert t.requires_grad


def test_requires_grad_needs_float():
    with pytest.raises(TypeError, match=r"requires_grad.*int64"):
        pf.arange(3).requires_grad_()
    with pytest.raises(TypeError, match=r"floating-point"):
        pf.zeros(3, dtype=pf.int32, requires_grad=True)


def test_non_leaf_cannot_stop_requiring_grad():
    x = pf.ones(2, requires_grad=True)
    y = x * 2
    assert not y.is_leaf and y.requires_grad
    with pytest.raises(RuntimeError, match=r"only leaf tensors.*MultiplyBackward.*detach"):
        y.requires_grad = False
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and np.shares_memory(arr(d), arr(y)) is False \
        or True   # detach shares memory; arr() copies, the flag check above is what matters
    assert np.shares_memory(np.asarray(d), np.asarray(y))


def test_grad_fn_names_and_next_functions():
    x = pf.ones(3, requires_grad=True)
    w = pf.ones(3)
    y = (x * w).exp() + x.sin()
    assert y.grad_fn.name() == "AddBackward"
    nf = y.grad_fn.next_functions
    assert [type(n).__name__ for n, _ in nf] == ["Node", "Node"]
    assert nf[0][0].name() == "ExpBackward" and nf[1][0].name() == "SinBackward"
    mul = nf[0][0].next_functions[0][0]
    assert mul.name() == "MultiplyBackward"
    acc, nr = mul.next_functions[0]
    assert acc.name() == "AccumulateGrad" and acc.variable is x
    assert mul.next_functions[1] == (None, 0)   # w does not require grad
    assert "ExpBackward" in repr(nf[0][0])


def test_results_of_non_differentiable_ops_do_not_require_grad():
    x = pf.tensor([1.0, -2.0, 3.0], requires_grad=True)
    for r in (x > 0, x == x, pf.argmax(x), pf.isnan(x), x.argsort()):
        assert not r.requires_grad and r.grad_fn is None
    assert (x.detach() * 2).grad_fn is None


def test_no_graph_without_requires_grad():
    x = pf.ones(3)
    y = (x * 2).exp().sum()
    assert y.grad_fn is None and not y.requires_grad
    with pytest.raises(RuntimeError, match=r"does not require grad and has no grad_fn"):
        y.backward()


# ------------------------------------------------------------------ backward basics

def test_scalar_backward_closed_form():
    xv = np.array([0.3, -1.2, 2.0])
    x = leaf(xv)
    y = (x * x).exp() + x.sin()
    y.sum().backward()
    np.testing.assert_allclose(arr(x.grad), 2 * xv * np.exp(xv ** 2) + np.cos(xv), rtol=1e-12)
    assert x.grad.dtype == pf.float64 and not x.grad.requires_grad


def test_non_scalar_backward_needs_gradient():
    x = leaf([1.0, 2.0])
    y = x * 3
    with pytest.raises(RuntimeError, match=r"only for a tensor of one element.*shape \(2,\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"gradient for tensor 0 has shape \(3,\).*\(2,\)"):
        y.backward(pf.ones(3, dtype=pf.float64))
    y.backward(pf.tensor([1.0, 10.0], dtype=pf.float64))
    np.testing.assert_array_equal(arr(x.grad), [3.0, 30.0])


def test_gradient_accumulates_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [2 + 3, 4 + 3])
    x.grad = None
    (x * 5).sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [5, 5])


def test_tensor_used_several_times_accumulates():
    xv = np.array([0.5, -1.5])
    x = leaf(xv)
    y = x * x + x * 3 + x.exp() * x
    y.sum().backward()
    np.testing.assert_allclose(arr(x.grad), 2 * xv + 3 + np.exp(xv) * (1 + xv), rtol=1e-12)


def test_broadcast_gradients_are_summed_to_each_shape():
    a = leaf(np.ones((2, 3, 4)))
    b = leaf(np.arange(4.0))
    c = leaf(np.arange(3.0).reshape(3, 1))
    ((a * b) + c).sum().backward()
    np.testing.assert_array_equal(arr(a.grad), np.broadcast_to(np.arange(4.0), (2, 3, 4)))
    np.testing.assert_array_equal(arr(b.grad), np.full(4, 6.0))
    np.testing.assert_array_equal(arr(c.grad), np.full((3, 1), 8.0))


def test_gradients_take_each_inputs_dtype():
    a = leaf([1.0, 2.0], dtype=pf.float32)
    b = leaf([3.0, 4.0], dtype=pf.float64)
    h = leaf([1.0, 2.0], dtype=pf.float16)
    ((a * b) + h * 2).sum().backward()
    assert a.grad.dtype == pf.float32 and b.grad.dtype == pf.float64
    assert h.grad.dtype == pf.float16
    np.testing.assert_array_equal(arr(a.grad), [3, 4])
    np.testing.assert_array_equal(arr(h.grad), [2, 2])


def test_python_scalars_and_integer_tensors_get_no_edge():
    x = leaf([1.0, 2.0])
    k = pf.tensor([2, 3])
    y = (x * k + 2.5 - k) / 2
    assert y.grad_fn.next_functions[1] == (None, 0)
    y.sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [1.0, 1.5])


def test_deep_chain_backward_is_iterative():
    # 100 000 recorded ops: a recursive engine (or a recursive free) would
    # overflow the C stack long before this
    x = leaf([1.0])
    y = x
    for _ in range(100_000):
        y = y * 1.0000001
    y.sum().backward()
    np.testing.assert_allclose(arr(x.grad), [1.0000001 ** 100_000], rtol=1e-9)
    del y
    gc.collect()


# ------------------------------------------------------------------ retain_graph, versions

def test_second_backward_needs_retain_graph():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"SumBackward: trying to backward through the "
                                           r"graph a second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_pass():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(arr(x.grad), [4.0, 8.0])


def test_inplace_change_of_a_saved_tensor_raises():
    x = leaf([0.5, 1.0])
    a = x * 2
    y = a * a                      # saves a
    a.add_(1)
    with pytest.raises(RuntimeError, match=r"MultiplyBackward: input 0 \(shape \(2,\), float64\)"
                                           r".*modified by an in-place operation.*version 0, "
                                           r"now 1"):
        y.sum().backward()


def test_inplace_change_of_a_saved_output_raises():
    x = leaf([0.5, 1.0])
    s = (x * 1).sigmoid()          # sigmoid's rule reads its output
    s.mul_(2)
    with pytest.raises(RuntimeError, match=r"SigmoidBackward: output 0.*in-place"):
        pf.grad(s.sum(), x)


def test_inplace_change_of_an_unsaved_tensor_is_fine():
    x = leaf([0.5, 1.0])
    a = x * 2
    s = (a + 1).sum()              # add saves nothing
    a.add_(100)
    s.backward()
    np.testing.assert_array_equal(arr(x.grad), [2.0, 2.0])


# ------------------------------------------------------------------ in-place ops

def test_inplace_on_a_leaf_that_requires_grad_raises():
    w = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"add_: writes in place into a leaf tensor that "
                                           r"requires grad.*pf.no_grad"):
        w.add_(1)
    with pytest.raises(RuntimeError, match=r"leaf tensor that requires grad"):
        w += 1
    with pytest.raises(RuntimeError, match=r"__setitem__: writes in place into a leaf"):
        w[0] = 3.0
    with pytest.raises(RuntimeError, match=r"fill_: writes in place into a leaf"):
        w.fill_(0)
    np.testing.assert_array_equal(arr(w), [1.0, 2.0])   # nothing was written
    with pf.no_grad():
        w.add_(1)
        w[0] = 7.0
    np.testing.assert_array_equal(arr(w), [7.0, 3.0])


def test_inplace_ops_rebase_history():
    xv = np.array([0.2, -0.7])
    x = leaf(xv)
    a = x * 2
    a.mul_(3)
    assert a.grad_fn.name() == "MultiplyBackward"
    a.exp_()
    a.sum().backward()
    np.testing.assert_allclose(arr(x.grad), 6 * np.exp(6 * xv), rtol=1e-12)


def test_inplace_with_an_input_that_requires_grad():
    x = leaf([1.0, 2.0])
    buf = pf.zeros(2, dtype=pf.float64)     # does not require grad
    buf += x * x
    assert buf.requires_grad and buf.grad_fn.name() == "AddBackward"
    buf.sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [2.0, 4.0])


def test_inplace_into_a_view_of_the_graph_raises():
    x = leaf([1.0, 2.0, 3.0])
    h = x * 2
    v = h[1:]
    with pytest.raises(RuntimeError, match=r"multiply_: writes in place into a view \(made by "
                                           r"IndexBackward\).*clone"):
        v.mul_(2)


def test_setitem_records_both_sides():
    x = leaf([1.0, 2.0, 3.0])
    v = leaf([10.0])
    h = x * 2
    h[1] = v * 3
    h.sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [2.0, 0.0, 2.0])
    np.testing.assert_array_equal(arr(v.grad), [3.0])


def test_setitem_into_a_plain_buffer():
    xs = [leaf([float(i)]) for i in range(3)]
    out = pf.zeros((3, 1), dtype=pf.float64)
    for i, xi in enumerate(xs):
        out[i] = xi * (i + 1)
    (out * out).sum().backward()
    for i, xi in enumerate(xs):
        np.testing.assert_allclose(arr(xi.grad), [2 * (i + 1) ** 2 * i])


def test_copy_fill_and_zero():
    x = leaf([1.0, 2.0])
    buf = pf.empty(2, dtype=pf.float64)
    buf.copy_(x * 4)
    buf.sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [4.0, 4.0])
    x.grad = None
    h = x * 1
    h.fill_(3.0)
    assert h.grad_fn.name() == "FillBackward"
    (h * x).sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [3.0, 3.0])   # only through the second factor


def test_out_argument_is_refused_under_autograd():
    x = leaf([1.0])
    out = pf.empty(1, dtype=pf.float64)
    with pytest.raises(RuntimeError, match=r"exp: out= does not take part in autograd"):
        pf.exp(x, out=out)
    with pf.no_grad():
        pf.exp(x, out=out)
    np.testing.assert_allclose(arr(out), [np.e])


# ------------------------------------------------------------------ views and copies

def test_views_and_copies_carry_gradients():
    xv = np.arange(6.0).reshape(2, 3)
    x = leaf(xv)
    parts = [x.T.reshape(6) * 1, x.permute(1, 0)[0] * 2, x[:, ::-1].flatten() * 3,
             x.unsqueeze(0).squeeze(0).clone() * 4, x.astype(pf.float32) * 5,
             x[None].expand(4, 2, 3) * 6, x.contiguous().view(3, 2) * 7]
    total = parts[0].sum()
    for p in parts[1:]:
        total = total + p.sum()
    total.backward()
    expect = 1 + 6 * 4 + 3 + 4 + 5 + 7 + np.array([[2, 0, 0], [2, 0, 0]])
    np.testing.assert_array_equal(arr(x.grad), expect)


def test_advanced_indexing_with_repeats_accumulates():
    x = leaf([1.0, 2.0, 3.0, 4.0])
    y = x[pf.tensor([0, 2, 0, 0])] * pf.tensor([1.0, 2.0, 3.0, 4.0], dtype=pf.float64)
    y.sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [8.0, 0.0, 2.0, 0.0])
    x.grad = None
    x[x > 2.5].sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [0.0, 0.0, 1.0, 1.0])


# ------------------------------------------------------------------ hooks, retain_grad

def test_leaf_hook_can_replace_the_gradient_and_be_removed():
    x = leaf([1.0, 2.0])
    seen = []
    h = x.register_hook(lambda g: seen.append(arr(g)) or g * 10)
    (x * 3).sum().backward()
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    np.testing.assert_array_equal(arr(x.grad), [30.0, 30.0])
    h.remove()
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [3.0, 3.0])
    assert len(seen) == 1


def test_non_leaf_hook_changes_what_flows_on():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.register_hook(lambda g: g * 0.5)
    (y * y).sum().backward()
    # d/dy = 2y = [4, 8], halved by the hook, times dy/dx = 2
    np.testing.assert_array_equal(arr(x.grad), [4.0, 8.0])


def test_hook_errors():
    x = leaf([1.0, 2.0])
    with pytest.raises(TypeError, match=r"register_hook: expected a callable"):
        x.register_hook(3)
    with pytest.raises(RuntimeError, match=r"register_hook: this tensor does not require grad"):
        pf.ones(2).register_hook(lambda g: g)
    x.register_hook(lambda g: pf.ones(5))
    with pytest.raises(ValueError, match=r"hook returned a tensor of another shape.*\(2,\)"):
        (x * 1).sum().backward()


def test_retain_grad_keeps_non_leaf_gradients():
    x = leaf([1.0, 2.0])
    y = x * 3
    z = y * y
    y.retain_grad()
    assert y.retains_grad and not z.retains_grad
    z.sum().backward()
    np.testing.assert_array_equal(arr(y.grad), [6.0, 12.0])
    assert z.grad is None


# ------------------------------------------------------------------ grad mode

def test_no_grad_and_enable_grad_nest():
    x = leaf([1.0])
    with pf.no_grad():
        assert not pf.is_grad_enabled()
        assert not (x * 2).requires_grad
        with pf.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    assert pf.is_grad_enabled() and (x * 2).requires_grad


def test_grad_mode_decorators():
    x = leaf([1.0])

    @pf.no_grad()
    def f(a):
        return a * 2

    @pf.no_grad
    def g(a):
        return a * 2

    @pf.inference_mode()
    def h(a):
        return a * 2

    @pf.set_grad_enabled(False)
    def k(a):
        return a * 2

    for fn in (f, g, h, k):
        assert not fn(x).requires_grad
    assert pf.is_grad_enabled()

    @pf.no_grad()
    def gen(a):
        for _ in range(2):
            yield pf.is_grad_enabled(), (a * 2).requires_grad

    it = gen(x)
    assert next(it) == (False, False)
    assert pf.is_grad_enabled()      # the caller keeps its mode between items
    assert next(it) == (False, False)


def test_set_grad_enabled_as_call_and_context():
    x = leaf([1.0])
    try:
        pf.set_grad_enabled(False)
        assert not (x * 2).requires_grad
    finally:
        pf.set_grad_enabled(True)
    with pf.set_grad_enabled(False):
        assert not pf.is_grad_enabled()
    assert pf.is_grad_enabled()
    with pytest.raises(TypeError, match=r"set_grad_enabled: mode must be True or False"):
        pf.set_grad_enabled("no")
    with pf.inference_mode(False):
        assert pf.is_grad_enabled()


def test_grad_mode_is_per_thread():
    seen = []
    with pf.no_grad():
        t = threading.Thread(target=lambda: seen.append(pf.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


# ------------------------------------------------------------------ pf.grad

def test_grad_returns_without_touching_dot_grad():
    x = leaf([1.0, 2.0])
    y = leaf([3.0])
    (gx, gy) = pf.grad((x * y).sum(), (x, y))
    np.testing.assert_array_equal(arr(gx), [3.0, 3.0])
    np.testing.assert_array_equal(arr(gy), [3.0])
    assert x.grad is None and y.grad is None


def test_grad_of_a_non_leaf_and_unused_inputs():
    x = leaf([1.0, 2.0])
    h = x * 2
    out = (h * h).sum()
    (gh,) = pf.grad(out, h, retain_graph=True)
    np.testing.assert_array_equal(arr(gh), [4.0, 8.0])
    unused = leaf([5.0])
    with pytest.raises(RuntimeError, match=r"pf.grad: input 1 was not used.*allow_unused=True"):
        pf.grad(out, (x, unused), retain_graph=True)
    gx, gu = pf.grad(out, (x, unused), allow_unused=True)
    assert gu is None
    np.testing.assert_array_equal(arr(gx), [8.0, 16.0])


def test_grad_errors():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match=r"pf.grad: input 0 does not require grad"):
        pf.grad((x * 2).sum(), pf.ones(1))
    with pytest.raises(TypeError, match=r"pf.grad: outputs must be a tensor"):
        pf.grad(3.0, x)
    with pytest.raises(ValueError, match=r"pf.grad: 2 gradients for 1 tensors"):
        pf.grad(x * 2, x, grad_outputs=[pf.ones(1), pf.ones(1)])


def test_hessian_vector_product_with_create_graph():
    # f(x) = sum(x^3) + (x0 x1)^2: H v in closed form
    xv = np.array([0.7, -1.3])
    v = np.array([0.5, 2.0])
    x = leaf(xv)
    f = (x ** 3).sum() + (x[0] * x[1]) ** 2
    (g,) = pf.grad(f, x, create_graph=True)
    assert g.requires_grad
    (hv,) = pf.grad(g, x, grad_outputs=pf.tensor(v, dtype=pf.float64))
    a, b = xv
    H = np.array([[6 * a + 2 * b * b, 4 * a * b], [4 * a * b, 6 * b + 2 * a * a]])
    np.testing.assert_allclose(arr(hv), H @ v, rtol=1e-12)


def test_backward_with_create_graph_makes_grad_differentiable():
    x = leaf([1.5])
    (x ** 4).sum().backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(arr(x.grad), [12 * 1.5 ** 2])


def test_backward_inputs_limits_accumulation():
    x = leaf([1.0])
    y = leaf([2.0])
    (x * y).sum().backward(inputs=[x])
    assert y.grad is None
    np.testing.assert_array_equal(arr(x.grad), [2.0])


@needs_torch
def test_gradient_penalty_matches_torch():
    rng = np.random.default_rng(3)
    wv, xv = rng.standard_normal((4, 3)), rng.standard_normal((5, 4))

    def run(lib, w, x):
        h = lib.tanh(x @ w)
        out = (h * h).sum()
        (gx,) = (pf.grad if lib is pf else torch.autograd.grad)(out, x, create_graph=True)
        return ((gx * gx).sum() + out)

    w = leaf(wv)
    x = leaf(xv)
    run(pf, w, x).backward()
    tw = torch.tensor(wv, requires_grad=True)
    tx = torch.tensor(xv, requires_grad=True)
    run(torch, tw, tx).backward()
    np.testing.assert_allclose(arr(w.grad), tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(arr(x.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@needs_torch
def test_composite_functions_match_torch():
    rng = np.random.default_rng(7)
    vals = [rng.uniform(0.2, 1.5, (3, 4)), rng.standard_normal((4,)), rng.standard_normal((3, 1))]

    def f(lib, a, b, c):
        r = (a.sqrt() * b).sigmoid() + (a / (c * c + 1)).log() - (b - c).abs() * 0.5
        r = lib.maximum(r, c) ** 2 + lib.where(a > 1, a.exp(), -a) * lib.clip(b, -0.5, 0.5)
        return r.sum() + (r * c).mean()

    ps = [leaf(v) for v in vals]
    f(pf, *ps).backward()
    ts = [torch.tensor(v, requires_grad=True) for v in vals]
    f(torch, *ts).backward()
    for p, t in zip(ps, ts):
        np.testing.assert_allclose(arr(p.grad), t.grad.numpy(), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ Function

class Cube(pf.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * x * g


def test_function_gradients_and_second_order():
    x = leaf([0.5, -2.0])
    assert pf.autograd.gradcheck(Cube.apply, (x,))
    assert pf.autograd.gradgradcheck(Cube.apply, (x,))
    y = Cube.apply(x)
    assert y.grad_fn.name() == "CubeBackward"
    assert y.grad_fn.needs_input_grad == (True,)


def test_function_with_several_inputs_outputs_and_attributes():
    class ScaledSplit(pf.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, k):
            ctx.k = k
            ctx.save_for_backward(a, b)
            idx = pf.argmax(a)
            ctx.mark_non_differentiable(idx)
            return a * b * k, a + b, idx

        @staticmethod
        def backward(ctx, g1, g2, g3):
            a, b = ctx.saved_tensors
            assert g3 is None
            return g1 * b * ctx.k + g2, g1 * a * ctx.k + g2, None

    a, b = leaf([1.0, 2.0]), leaf([3.0, 5.0])
    p, s, idx = ScaledSplit.apply(a, b, 2.0)
    assert not idx.requires_grad and p.requires_grad and s.requires_grad
    (p.sum() + 10 * s.sum()).backward()
    np.testing.assert_array_equal(arr(a.grad), [16.0, 20.0])
    np.testing.assert_array_equal(arr(b.grad), [12.0, 14.0])


def test_function_saved_tensor_changed_in_place_raises():
    x = leaf([1.0, 2.0])
    h = x * 1
    y = Cube.apply(h)
    h.add_(1)
    with pytest.raises(RuntimeError, match=r"CubeBackward: saved tensor 0.*in-place"):
        y.sum().backward()


def test_function_errors():
    class WrongCount(pf.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g

    class WrongShape(pf.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a.sum()

        @staticmethod
        def backward(ctx, g):
            return pf.ones(7, dtype=pf.float64)

    a, b = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match=r"WrongCountBackward: backward returned 1 gradients "
                                           r"but forward took 2 arguments"):
        WrongCount.apply(a, b).sum().backward()
    with pytest.raises(RuntimeError, match=r"WrongShapeBackward: backward returned a gradient "
                                           r"of shape \(7,\) for argument 0, whose shape is \(1,\)"):
        WrongShape.apply(a).backward()
    with pytest.raises(TypeError, match=r"call WrongShape.apply"):
        WrongShape()


# ------------------------------------------------------------------ checkpoint

def test_checkpoint_gives_the_same_gradients_and_replays_randomness():
    rng = np.random.default_rng(0)
    wv, xv = rng.standard_normal((4, 4)), rng.standard_normal((3, 4))

    def block(x, w):
        keep = (pf.rand(*x.shape) > 0.3).astype(pf.float64)    # dropout-like
        return (x @ w).tanh() * keep

    grads = []
    for use_cp in (False, True):
        pf.manual_seed(11)
        w, x = leaf(wv), leaf(xv)
        y = pf.checkpoint(block, x, w) if use_cp else block(x, w)
        (y * y).sum().backward()
        grads.append((arr(w.grad), arr(x.grad)))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-13)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-13)


def test_checkpoint_reaches_parameters_used_inside():
    w = leaf([2.0, 3.0])
    x = pf.tensor([1.0, 4.0], dtype=pf.float64)          # does not require grad
    y = pf.checkpoint(lambda a: a * w, x)
    assert y.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(arr(w.grad), [1.0, 4.0])


# ------------------------------------------------------------------ memory

def test_graph_is_freed_and_nothing_leaks():
    w = leaf(np.ones((8, 8)) * 0.1)
    b = leaf(np.zeros(8))

    def step():
        x = pf.ones((4, 8), dtype=pf.float64)
        h = (x @ w + b).tanh()
        h2 = h[:, 1:] * h[:, :-1]
        loss = (h2 * h2).mean() + h.sum() * 0.01
        loss.backward()

    for _ in range(20):
        step()
    gc.collect()
    base = pf.memory_stats()["cpu"]
    for _ in range(10_000):
        step()
    gc.collect()
    now = pf.memory_stats()["cpu"]
    assert now["live_tensors"] == base["live_tensors"]
    assert now["live_bytes"] == base["live_bytes"]


def test_data_attribute_as_in_pytorch():
    w = leaf([1.0, 2.0])
    (w * w).sum().backward()
    w.data -= 0.5 * w.grad          # the classic manual update, outside the graph
    np.testing.assert_array_equal(arr(w), [0.0, 0.0])
    assert w.requires_grad and w.is_leaf and not w.data.requires_grad
    w.data = pf.ones(3, dtype=pf.float64)
    assert w.shape == (3,) and w.requires_grad
    with pytest.raises(TypeError, match=r"Tensor.data must be set to a Tensor"):
        w.data = [1.0]
    with pytest.raises(TypeError, match=r"must be floating point; got int64"):
        w.data = pf.arange(3)
