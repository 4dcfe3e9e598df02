"""Normalisation, dropout, losses and attention (csrc/nn_ops.c, csrc/kernels/nn_kernels.c,
csrc/backward_nnops.c): values against float64 NumPy references written here and against
torch.nn.functional, gradients against torch.autograd, the fused backward paths against the
composite ones, thread-count independence, and the error messages."""
import numpy as np
import pytest

import pyframe as pf

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # torch is a second oracle only
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

# (rtol, atol) against a float64 reference, by result dtype
TOL = {"float64": (1e-12, 1e-12), "float32": (2e-5, 2e-6), "float16": (4e-3, 4e-3),
       "bfloat16": (3e-2, 3e-2)}


def T(a, dtype=None, grad=False):
    return pf.tensor(np.asarray(a), dtype=dtype, requires_grad=grad)


def A(t):
    return np.asarray(t.astype(pf.float64))


def close(got, want, dtype="float64", scale=1.0):
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(A(got) if isinstance(got, pf.Tensor) else got, want,
                               rtol=rtol * scale, atol=atol * scale)


def strided(a):
    """A non-contiguous tensor holding a's values (every other element of a wider array)."""
    base = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    base[..., ::2] = a
    t = pf.from_numpy(base)[..., ::2]
    assert not t.is_contiguous()
    return t


def tt(a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


# ------------------------------------------------------------ references (float64 NumPy)

def ln_ref(x, k, w=None, b=None, eps=1e-5):
    ax = tuple(range(x.ndim - k, x.ndim))
    mu = x.mean(ax, keepdims=True)
    y = (x - mu) / np.sqrt(((x - mu) ** 2).mean(ax, keepdims=True) + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


def rms_ref(x, k, w=None, eps=1e-5):
    ax = tuple(range(x.ndim - k, x.ndim))
    return x / np.sqrt((x ** 2).mean(ax, keepdims=True) + eps) * (1 if w is None else w)


def gn_ref(x, G, w=None, b=None, eps=1e-5):
    N, C = x.shape[:2]
    xr = x.reshape(N, G, -1)
    mu = xr.mean(2, keepdims=True)
    y = ((xr - mu) / np.sqrt(((xr - mu) ** 2).mean(2, keepdims=True) + eps)).reshape(x.shape)
    cs = (1, C) + (1,) * (x.ndim - 2)
    return y * (1 if w is None else w.reshape(cs)) + (0 if b is None else b.reshape(cs))


def bn_ref(x, axis, mean, var, w=None, b=None, eps=1e-5):
    cs = [1] * x.ndim
    cs[axis] = x.shape[axis]
    y = (x - mean.reshape(cs)) / np.sqrt(var.reshape(cs) + eps)
    return y * (1 if w is None else w.reshape(cs)) + (0 if b is None else b.reshape(cs))


def logsoftmax_ref(x, axis):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


def ce_ref(x, t, w=None, ignore=-100, red="mean", eps=0.0):
    """cross_entropy on (N, C, d...) logits and (N, d...) indices or (N, C, d...) probabilities."""
    C = x.shape[1]
    lp = logsoftmax_ref(x, 1)
    wv = np.ones(C) if w is None else w
    cs = (1, C) + (1,) * (x.ndim - 2)
    if t.dtype.kind == "f":
        q = (t * (1 - eps) + eps / C) * wv.reshape(cs)
        loss = -(q * lp).sum(1)
        return {"none": loss, "sum": loss.sum(), "mean": loss.sum() / loss.size}[red]
    keep = t != ignore
    ts = np.where(keep, t, 0)
    nll = -np.take_along_axis(lp, ts[:, None], 1)[:, 0] * wv[ts]
    smooth = -(lp * wv.reshape(cs)).sum(1)
    loss = np.where(keep, (1 - eps) * nll + eps / C * smooth, 0.0)
    if red == "none":
        return loss
    if red == "sum":
        return loss.sum()
    return loss.sum() / np.where(keep, wv[ts], 0.0).sum()


def attention_ref(q, k, v, mask=None, causal=False, scale=None, keep=None):
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    L, S = s.shape[-2:]
    if causal:
        mask = np.tril(np.ones((L, S), dtype=bool))
    if mask is not None and mask.dtype == bool:
        s = np.where(mask, s, -np.inf)
    elif mask is not None:
        s = s + mask
    m = s.max(-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(m), m, 0))
    den = e.sum(-1, keepdims=True)
    p = e / np.where(den == 0, 1, den)
    if keep is not None:
        p = p * keep
    return p @ v


# ------------------------------------------------------------ normalisations


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_layer_norm_matches_numpy(dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (4, 5, 6)).astype(dtype)
    w, b = rng.normal(size=6).astype(dtype), rng.normal(size=6).astype(dtype)
    x64 = x.astype(np.float64)
    for args, k, ref_w, ref_b in [(((6,), T(w), T(b)), 1, w, b), (((6,),), 1, None, None),
                                  (((6,), None, T(b)), 1, None, b),
                                  ((6, T(w)), 1, w, None)]:
        got = pf.layer_norm(T(x), *args)
        assert got.dtype.name == dtype and got.shape == x.shape
        close(got, ln_ref(x64, k, ref_w, ref_b), dtype, scale=4)
    w2 = rng.normal(size=(5, 6)).astype(dtype)
    close(pf.layer_norm(T(x), (5, 6), T(w2), eps=1e-3), ln_ref(x64, 2, w2, eps=1e-3), dtype, 4)
    # a non-contiguous input, and a 1-D one (a single row)
    close(pf.layer_norm(strided(x), (6,)), ln_ref(x64, 1), dtype, 4)
    close(pf.layer_norm(T(x[0, 0]), 6), ln_ref(x64[0, 0], 1), dtype, 4)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_rms_norm_and_group_norm_match_numpy(dtype):
    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 2.0, (3, 6, 4, 2)).astype(dtype)
    w, b = rng.normal(size=6).astype(dtype), rng.normal(size=6).astype(dtype)
    x64 = x.astype(np.float64)
    eps = np.finfo(dtype).eps        # rms_norm's default, as PyTorch
    close(pf.rms_norm(T(x), (2,)), rms_ref(x64, 1, eps=eps), dtype, 4)
    w2 = rng.normal(size=(4, 2)).astype(dtype)
    close(pf.rms_norm(T(x), (4, 2), T(w2), eps=1e-3), rms_ref(x64, 2, w2, 1e-3), dtype, 4)
    for G in (1, 2, 3, 6):
        close(pf.group_norm(T(x), G, T(w), T(b)), gn_ref(x64, G, w, b), dtype, 4)
    close(pf.group_norm(T(x[:, :, 0, 0]), 3), gn_ref(x64[:, :, 0, 0], 3), dtype, 4)
    close(pf.group_norm(strided(x), 2, T(w)), gn_ref(x64, 2, w), dtype, 4)


def test_batch_norm_training_updates_running_statistics():
    rng = np.random.default_rng(2)
    x = rng.normal(2.0, 3.0, (5, 3, 4, 2))
    w, b = rng.normal(size=3), rng.normal(size=3)
    rm, rv = pf.tensor(np.full(3, 0.5)), pf.tensor(np.full(3, 2.0))
    v0 = rm._version if hasattr(rm, "_version") else None
    y = pf.batch_norm(T(x), rm, rv, T(w), T(b), training=True, momentum=0.2)
    ax = (0, 2, 3)
    mean, var = x.mean(ax), x.var(ax)
    close(y, bn_ref(x, 1, mean, var, w, b))
    n = x.size / 3
    close(rm, 0.8 * 0.5 + 0.2 * mean)
    close(rv, 0.8 * 2.0 + 0.2 * var * n / (n - 1))     # the unbiased variance
    if v0 is not None:
        assert rm._version > v0
    # eval: the running statistics; training without buffers: batch statistics only
    close(pf.batch_norm(T(x), rm, rv, T(w), T(b)), bn_ref(x, 1, A(rm), A(rv), w, b))
    close(pf.batch_norm(T(x), None, None, training=True), bn_ref(x, 1, mean, var))
    # channels last with axis=-1 is the same as NCHW, without a transpose
    xl = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    yl = pf.batch_norm(T(xl), None, None, T(w), T(b), training=True, axis=-1)
    close(yl, np.moveaxis(bn_ref(x, 1, mean, var, w, b), 1, -1))
    # (N, C) and non-contiguous buffers and input
    x2 = rng.normal(size=(8, 3))
    base = np.zeros(6)
    rm2 = pf.from_numpy(base)[::2]
    pf.batch_norm(strided(x2), rm2, pf.ones(3, dtype=pf.float64), training=True, momentum=1.0)
    np.testing.assert_allclose(base[::2], x2.mean(0), rtol=1e-12)
    assert (base[1::2] == 0).all()


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_norms_match_torch(dtype):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 6, 3, 5)).astype(dtype)
    w, b = rng.normal(size=5).astype(dtype), rng.normal(size=5).astype(dtype)
    wc, bc = rng.normal(size=6).astype(dtype), rng.normal(size=6).astype(dtype)
    close(pf.layer_norm(T(x), (5,), T(w), T(b)), F.layer_norm(tt(x), (5,), tt(w), tt(b)).numpy(),
          dtype, 4)
    close(pf.rms_norm(T(x), (3, 5)), F.rms_norm(tt(x), (3, 5)).numpy(), dtype, 4)
    close(pf.group_norm(T(x), 3, T(wc), T(bc)), F.group_norm(tt(x), 3, tt(wc), tt(bc)).numpy(),
          dtype, 4)
    rm, rv = pf.zeros(6, dtype=dtype), pf.ones(6, dtype=dtype)
    trm, trv = torch.zeros(6, dtype=getattr(torch, dtype)), torch.ones(6, dtype=getattr(torch,
                                                                                        dtype))
    for training in (True, False, True):
        got = pf.batch_norm(T(x), rm, rv, T(wc), T(bc), training=training, momentum=0.3)
        want = F.batch_norm(tt(x), trm, trv, tt(wc), tt(bc), training=training, momentum=0.3)
        close(got, want.numpy(), dtype, 4)
        close(rm, trm.numpy(), dtype, 4)
        close(rv, trv.numpy(), dtype, 4)


def test_batch_and_layer_norm_are_stable_for_a_large_mean():
    # float32 data around 1e4 with unit spread: E[x^2] - E[x]^2 would lose every digit
    rng = np.random.default_rng(4)
    x = (1e4 + rng.normal(size=(64, 8, 5))).astype(np.float32)
    x64 = x.astype(np.float64)
    ax = (0, 2)
    close(pf.batch_norm(T(x), None, None, training=True),
          bn_ref(x64, 1, x64.mean(ax), x64.var(ax)), "float32", 20)
    close(pf.layer_norm(T(x), (8, 5)), ln_ref(x64, 2), "float32", 20)
    close(pf.group_norm(T(x), 4), gn_ref(x64, 4), "float32", 20)


def test_half_precision_inputs_compute_in_float32():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 6)).astype(np.float32)
    for dt in ("float16", "bfloat16"):
        xh = T(x).astype(dt)
        ref = A(xh)
        got = pf.layer_norm(xh, (6,))
        assert got.dtype.name == dt
        close(got, ln_ref(ref, 1), dt)
        r = pf.rms_norm(xh, (6,))
        close(r, rms_ref(ref, 1, eps=float(np.finfo(np.float16).eps) if dt == "float16"
                         else 2.0 ** -7), dt)
        assert pf.batch_norm(xh, None, None, training=True).dtype.name == dt
        assert pf.cross_entropy(xh, pf.tensor([0, 1, 2, 3])).dtype.name == dt
        assert pf.dropout(xh, 0.5).dtype.name == dt
        q = xh.reshape(2, 2, 6)
        assert pf.scaled_dot_product_attention(q, q, q).dtype.name == dt


# ------------------------------------------------------------ cross-entropy and nll


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cross_entropy_matches_numpy(dtype):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(7, 5)).astype(dtype) * 3
    t = rng.integers(0, 5, 7)
    t[[2, 5]] = -100
    w = rng.uniform(0.5, 2, 5).astype(dtype)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    for red in ("mean", "sum", "none"):
        for eps in (0.0, 0.1):
            got = pf.cross_entropy(T(x), T(t), T(w), reduction=red, label_smoothing=eps)
            assert got.dtype.name == dtype
            close(got, ce_ref(x64, t, w64, red=red, eps=eps), dtype, 4)
    t1 = np.where(t == -100, 0, t)
    close(pf.cross_entropy(T(x), T(t1), ignore_index=1), ce_ref(x64, t1, ignore=1), dtype, 4)
    # (N, C, d1, d2) with the class axis second, int32 targets, a strided input
    x4 = rng.normal(size=(3, 4, 2, 5)).astype(dtype)
    t4 = rng.integers(0, 4, (3, 2, 5)).astype(np.int32)
    close(pf.cross_entropy(T(x4), T(t4), reduction="none"),
          ce_ref(x4.astype(np.float64), t4.astype(np.int64), red="none"), dtype, 4)
    close(pf.cross_entropy(strided(x), T(t)), ce_ref(x64, t), dtype, 4)
    # probabilities, unbatched
    p = rng.dirichlet(np.ones(5), 7).astype(dtype)
    close(pf.cross_entropy(T(x), T(p), T(w), label_smoothing=0.2),
          ce_ref(x64, p.astype(np.float64), w64, eps=0.2), dtype, 4)
    close(pf.cross_entropy(T(x[0]), T(t[0])), ce_ref(x64[:1], t[:1]), dtype, 4)
    # every target ignored: the mean is 0 / 0, as PyTorch
    assert np.isnan(A(pf.cross_entropy(T(x), pf.full((7,), -100, dtype=pf.int64))))


def test_cross_entropy_is_stable_for_large_logits():
    x = np.array([[1e4, 0.0, -1e4], [-3e4, 3e4, 0.0], [88.0, 89.0, 90.0]], dtype=np.float32)
    t = np.array([1, 1, 0])
    got = A(pf.cross_entropy(T(x), T(t), reduction="none"))
    np.testing.assert_allclose(got, ce_ref(x.astype(np.float64), t, red="none"), rtol=1e-6)
    assert np.isfinite(got).all()


def test_nll_loss_matches_numpy():
    rng = np.random.default_rng(7)
    lp = logsoftmax_ref(rng.normal(size=(6, 4)), 1)
    t = np.array([0, 3, -100, 2, 1, 3])
    w = rng.uniform(0.5, 2, 4)
    ts = np.where(t == -100, 0, t)
    per = np.where(t == -100, 0, -lp[np.arange(6), ts] * w[ts])
    close(pf.nll_loss(T(lp), T(t), T(w), reduction="none"), per)
    close(pf.nll_loss(T(lp), T(t), T(w)), per.sum() / np.where(t == -100, 0, w[ts]).sum())
    close(pf.nll_loss(T(lp), T(t), reduction="sum"),
          -lp[np.arange(6), ts][t != -100].sum())
    lp3 = logsoftmax_ref(rng.normal(size=(2, 4, 3)), 1)
    t3 = rng.integers(0, 4, (2, 3))
    close(pf.nll_loss(T(lp3), T(t3), reduction="none"),
          -np.take_along_axis(lp3, t3[:, None], 1)[:, 0])


@needs_torch
def test_class_losses_match_torch():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(6, 5, 3))
    t = rng.integers(0, 5, (6, 3))
    t[0, 1] = 2
    w = rng.uniform(0.2, 2, 5)
    for red in ("mean", "sum", "none"):
        got = pf.cross_entropy(T(x), T(t), T(w), ignore_index=2, reduction=red,
                               label_smoothing=0.3)
        want = F.cross_entropy(tt(x), tt(t), tt(w), ignore_index=2, reduction=red,
                               label_smoothing=0.3)
        close(got, want.numpy())
        close(pf.nll_loss(T(x), T(t), T(w), reduction=red),
              F.nll_loss(tt(x), tt(t), tt(w), reduction=red).numpy())


# ------------------------------------------------------------ elementwise losses


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_pointwise_losses_match_numpy(dtype):
    rng = np.random.default_rng(9)
    x, y = (rng.normal(size=(4, 5)) * 2).astype(dtype), rng.normal(size=(4, 5)).astype(dtype)
    d = x.astype(np.float64) - y
    a = np.abs(d)
    refs = {
        "mse_loss": (d * d, {}),
        "l1_loss": (a, {}),
        "huber_loss": (np.where(a < 0.7, 0.5 * d * d, 0.7 * (a - 0.35)), {"delta": 0.7}),
        "smooth_l1_loss": (np.where(a < 0.5, 0.5 * d * d / 0.5, a - 0.25), {"beta": 0.5}),
    }
    for name, (per, kw) in refs.items():
        fn = getattr(pf, name)
        close(fn(T(x), T(y), reduction="none", **kw), per, dtype, 4)
        close(fn(T(x), T(y), reduction="sum", **kw), per.sum(), dtype, 4)
        close(fn(T(x), T(y), **kw), per.mean(), dtype, 4)
        close(fn(strided(x), T(y), **kw), per.mean(), dtype, 4)
    # beta 0 is the L1 loss; huber with delta 1 is smooth_l1 with beta 1
    close(pf.smooth_l1_loss(T(x), T(y), beta=0.0), a.mean(), dtype, 4)
    close(pf.huber_loss(T(x), T(y)), A(pf.smooth_l1_loss(T(x), T(y))), dtype, 4)
    # shapes that differ broadcast, with PyTorch's warning
    with pytest.warns(UserWarning, match=r"mse_loss: target shape \(5,\) differs"):
        got = pf.mse_loss(T(x), T(y[0]))
    close(got, ((x.astype(np.float64) - y[0]) ** 2).mean(), dtype, 4)


@needs_torch
def test_binary_cross_entropies_match_torch():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(4, 3)) * 4
    t = rng.uniform(size=(4, 3))
    w = rng.uniform(0.5, 2, (4, 1))
    pw = rng.uniform(0.5, 3, 3)
    p = 1 / (1 + np.exp(-x))
    for red in ("mean", "sum", "none"):
        close(pf.binary_cross_entropy(T(p), T(t), T(w), reduction=red),
              F.binary_cross_entropy(tt(p), tt(t), tt(np.broadcast_to(w, p.shape).copy()),
                                     reduction=red).numpy())
        close(pf.binary_cross_entropy_with_logits(T(x), T(t), T(w), reduction=red,
                                                  pos_weight=T(pw)),
              F.binary_cross_entropy_with_logits(tt(x), tt(t), tt(w), reduction=red,
                                                 pos_weight=tt(pw)).numpy())


def test_binary_cross_entropies_extremes():
    # probabilities 0 and 1: each log clamped at -100 (PyTorch's rule), so the loss is 100
    got = A(pf.binary_cross_entropy(T([0.0, 1.0, 0.0, 1.0]), T([1.0, 0.0, 0.0, 1.0]),
                                    reduction="none"))
    np.testing.assert_array_equal(got, [100.0, 100.0, 0.0, 0.0])
    # logits far out: softplus(-x) never overflows, and small losses keep their digits
    x = np.array([-1000.0, 1000.0, 40.0, -40.0, 0.0])
    t = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    got = A(pf.binary_cross_entropy_with_logits(T(x, pf.float32), T(t, pf.float32),
                                                reduction="none"))
    want = np.logaddexp(0, -x) * t + np.logaddexp(0, x) * (1 - t)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got[2] > 0         # 4e-18, not 0


# ------------------------------------------------------------ dropout


def test_dropout_mask_is_the_generators_draw():
    x = pf.ones((37, 53), dtype=pf.float64)
    pf.manual_seed(11)
    y = A(pf.dropout(x, 0.3))
    pf.manual_seed(11)
    u = A(pf.rand(37, 53, dtype=pf.float64))
    np.testing.assert_array_equal(y, np.where(u >= 0.3, 1 / 0.7, 0.0))
    # the same seed gives the same mask, the next call another
    pf.manual_seed(11)
    again = A(pf.dropout(x, 0.3))
    np.testing.assert_array_equal(again, y)
    assert not np.array_equal(A(pf.dropout(x, 0.3)), y)
    # p == 0 and training=False return the input itself; p == 1 gives zeros
    assert pf.dropout(x, 0.0) is x and pf.dropout(x, 0.5, training=False) is x
    np.testing.assert_array_equal(A(pf.dropout(x, 1.0)), 0.0)
    frac = (A(pf.dropout(pf.ones(100000), 0.25)) != 0).mean()
    assert abs(frac - 0.75) < 0.01


def test_dropout_same_mask_on_one_and_two_threads():
    x = pf.ones(200001)
    n = pf.get_num_threads()
    try:
        out = []
        for k in (1, 2):
            pf.set_num_threads(k)
            pf.manual_seed(12)
            out.append(A(pf.dropout(x, 0.5)))
    finally:
        pf.set_num_threads(n)
    np.testing.assert_array_equal(out[0], out[1])


def test_dropout_gradient_is_the_mask():
    rng = np.random.default_rng(13)
    x = T(rng.normal(size=(5, 6)), grad=True)
    pf.manual_seed(14)
    y = pf.dropout(x, 0.4)
    assert y.grad_fn is not None
    g = rng.normal(size=(5, 6))
    y.backward(T(g))
    mask = A(y) / A(x)
    np.testing.assert_allclose(A(x.grad), g * mask, rtol=1e-12)
    with pf.no_grad():
        assert pf.dropout(x, 0.4).grad_fn is None
    # checkpoint replays the generator's state: the recomputed mask is the forward's
    x.grad = None
    y = pf.autograd.checkpoint(lambda t: pf.dropout(t, 0.5) * 3.0, x)
    y.backward(T(g))
    np.testing.assert_allclose(A(x.grad), g * 3.0 * (A(y) / (3.0 * A(x))), rtol=1e-12)


# ------------------------------------------------------------ attention


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_attention_matches_numpy(dtype):
    rng = np.random.default_rng(15)
    q = rng.normal(size=(2, 3, 4, 8)).astype(dtype)
    k = rng.normal(size=(3, 6, 8)).astype(dtype)        # broadcast over the first batch dim
    v = rng.normal(size=(2, 1, 6, 5)).astype(dtype)
    r = [a.astype(np.float64) for a in (q, k, v)]
    sdpa = pf.scaled_dot_product_attention
    close(sdpa(T(q), T(k), T(v)), attention_ref(*r), dtype, 4)
    close(sdpa(T(q), T(k), T(v), scale=0.3), attention_ref(*r, scale=0.3), dtype, 4)
    bm = rng.uniform(size=(4, 6)) > 0.4
    bm[2] = False                                      # a query that attends to nothing
    got = sdpa(T(q), T(k), T(v), attn_mask=T(bm))
    close(got, attention_ref(*r, mask=bm), dtype, 4)
    assert (A(got)[:, :, 2] == 0).all()
    fm = rng.normal(size=(3, 1, 6)).astype(dtype)
    fm[1, 0, 2] = -np.inf
    close(sdpa(T(q), T(k), T(v), attn_mask=T(fm)), attention_ref(*r, mask=fm), dtype, 4)
    # causal, top-left aligned, with L > S and L < S
    for L in (6, 3):
        qq = rng.normal(size=(2, L, 8)).astype(dtype)
        close(sdpa(T(qq), T(k[0]), T(v[0, 0]), is_causal=True),
              attention_ref(qq.astype(np.float64), r[1][0], r[2][0, 0], causal=True), dtype, 4)
    close(sdpa(strided(q), T(k), T(v)), attention_ref(*r), dtype, 4)


def test_attention_dropout_uses_the_generators_draw():
    rng = np.random.default_rng(16)
    q, k, v = (rng.normal(size=s) for s in [(2, 3, 4), (2, 5, 4), (2, 5, 3)])
    pf.manual_seed(17)
    got = pf.scaled_dot_product_attention(T(q), T(k), T(v), dropout_p=0.4)
    pf.manual_seed(17)
    keep = np.where(A(pf.rand(2, 3, 5, dtype=pf.float64)) >= 0.4, 1 / 0.6, 0.0)
    close(got, attention_ref(q, k, v, keep=keep))


def test_attention_in_several_chunks():
    # 256 x 256 float64 scores are 512 KB per batch entry: one entry per chunk, so masks,
    # causality and dropout are indexed across chunk boundaries, forward and backward
    rng = np.random.default_rng(23)
    q, k, v = (rng.normal(size=s) for s in [(3, 2, 256, 4), (2, 256, 4), (3, 1, 256, 3)])
    bm = rng.uniform(size=(2, 1, 256)) > 0.3
    bm[1, 0, :] = False
    sdpa = pf.scaled_dot_product_attention
    close(sdpa(T(q), T(k), T(v), attn_mask=T(bm)), attention_ref(q, k, v, mask=bm))
    close(sdpa(T(q), T(k), T(v), is_causal=True), attention_ref(q, k, v, causal=True))
    pf.manual_seed(24)
    got = sdpa(T(q), T(k), T(v), dropout_p=0.2)
    pf.manual_seed(24)
    keep = np.where(A(pf.rand(3, 2, 256, 256, dtype=pf.float64)) >= 0.2, 1 / 0.8, 0.0)
    close(got, attention_ref(q, k, v, keep=keep))
    # one thread goes chunk by chunk, two run whole entries per thread: the same bits
    n = pf.get_num_threads()
    res = []
    try:
        for th in (1, 2):
            pf.set_num_threads(th)
            ins = [T(a, grad=True) for a in (q, k, v)]
            pf.manual_seed(26)
            out = sdpa(*ins, attn_mask=T(bm), dropout_p=0.1)
            out.backward(pf.ones_like(out))
            res.append([A(out)] + [A(t.grad) for t in ins])
    finally:
        pf.set_num_threads(n)
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)
    fm = rng.normal(size=(256, 256))
    for kw in ({"attn_mask": T(fm, grad=True)}, {"dropout_p": 0.3, "is_causal": True}):
        ins = [T(a, grad=True) for a in (q, k, v)]
        pf.manual_seed(25)
        out = sdpa(*ins, **kw)
        wrt = ins + ([kw["attn_mask"]] if "attn_mask" in kw else [])
        g = T(rng.normal(size=out.shape))
        fast = pf.autograd.grad(out, wrt, g, retain_graph=True)
        comp = pf.autograd.grad(out, wrt, g, create_graph=True)
        for a, b in zip(fast, comp):
            np.testing.assert_allclose(A(a), A(b), rtol=1e-9, atol=1e-12)


@needs_torch
def test_attention_matches_torch():
    rng = np.random.default_rng(18)
    q, k, v = (rng.normal(size=s) for s in [(2, 2, 5, 4), (2, 2, 7, 4), (2, 2, 7, 3)])
    m = rng.uniform(size=(5, 7)) > 0.5
    m[0] = False
    sdpa = pf.scaled_dot_product_attention
    close(sdpa(T(q), T(k), T(v), attn_mask=T(m)),
          F.scaled_dot_product_attention(tt(q), tt(k), tt(v), attn_mask=tt(m)).numpy())
    close(sdpa(T(q), T(k), T(v), is_causal=True, scale=0.7),
          F.scaled_dot_product_attention(tt(q), tt(k), tt(v), is_causal=True,
                                         scale=0.7).numpy())


# ------------------------------------------------------------ gradients


def _grad_cases(rng):
    def r(*s):
        return rng.normal(size=s)
    cls = rng.integers(0, 4, (5, 2))
    cls[1, 0] = -100
    cw = rng.uniform(0.5, 2, 4)
    pw = rng.uniform(0.5, 2, 4)
    bm = rng.uniform(size=(3, 5)) > 0.4
    bm[1] = False
    return [
        ("layer_norm", [r(3, 4, 5), r(5), r(5)],
         lambda m, x, w, b: m.layer_norm(x, (5,), w, b)),
        ("rms_norm", [r(3, 4, 5), r(4, 5)], lambda m, x, w: m.rms_norm(x, (4, 5), w)),
        ("group_norm", [r(2, 6, 3), r(6), r(6)], lambda m, x, w, b: m.group_norm(x, 3, w, b)),
        ("batch_norm", [r(4, 3, 5), r(3), r(3)],
         lambda m, x, w, b: m.batch_norm(x, None, None, w, b, training=True)),
        ("cross_entropy", [r(5, 4, 2)],
         lambda m, x: m.cross_entropy(x, (pf.tensor if m is pf else torch.tensor)(cls),
                                      (pf.tensor if m is pf else torch.tensor)(cw),
                                      label_smoothing=0.2)),
        ("cross_entropy-probs", [r(3, 4), rng.dirichlet(np.ones(4), 3)],
         lambda m, x, t: m.cross_entropy(x, t, reduction="sum", label_smoothing=0.1)),
        # torch has no gradient for pos_weight (pyframe's is checked in tests/grad_rows)
        ("bce_with_logits", [r(3, 4), rng.uniform(size=(3, 4))],
         lambda m, x, t: m.binary_cross_entropy_with_logits(
             x, t, pos_weight=(pf.tensor if m is pf else torch.tensor)(pw))),
        ("sdpa", [r(2, 3, 4), r(2, 5, 4), r(2, 5, 2)],
         lambda m, q, k, v: m.scaled_dot_product_attention(
             q, k, v, attn_mask=(pf.tensor if m is pf else torch.tensor)(bm))),
    ]


@needs_torch
def test_gradients_match_torch_autograd():
    rng = np.random.default_rng(19)
    for name, arrays, fn in _grad_cases(rng):
        pins = [T(a, grad=True) for a in arrays]
        tins = [tt(a, grad=True) for a in arrays]
        pout, tout = fn(pf, *pins), fn(F, *tins)
        g = rng.normal(size=tuple(tout.shape))
        pout.backward(T(g))
        tout.backward(tt(g))
        for i, (p_, t_) in enumerate(zip(pins, tins)):
            np.testing.assert_allclose(A(p_.grad), t_.grad.numpy(), rtol=1e-9, atol=1e-11,
                                       err_msg="%s: input %d" % (name, i))


def test_fused_and_composite_backward_agree():
    """The rules' fast path (no create_graph) and their forward-op path give the same gradients."""
    rng = np.random.default_rng(20)
    for name, arrays, fn in _grad_cases(rng):
        ins = [T(a, grad=True) for a in arrays]
        out = fn(pf, *ins)
        g = T(rng.normal(size=out.shape))
        fast = pf.autograd.grad(out, ins, g, retain_graph=True)
        comp = pf.autograd.grad(out, ins, g, create_graph=True)
        for i, (a, b) in enumerate(zip(fast, comp)):
            np.testing.assert_allclose(A(a), A(b), rtol=1e-10, atol=1e-12,
                                       err_msg="%s: input %d" % (name, i))
    # batch_norm in eval and cross_entropy with class indices, float32
    x = T(rng.normal(size=(6, 3, 4)).astype(np.float32), grad=True)
    for f in (lambda x: pf.batch_norm(x, pf.tensor([0.1, 0.2, 0.3]), pf.tensor([1.0, 2.0, 0.5]),
                                      pf.tensor([1.5, -1.0, 2.0])),
              lambda x: pf.cross_entropy(x, pf.tensor(rng.integers(0, 3, (6, 4))))):
        out = f(x)
        g = pf.ones_like(out)
        a, = pf.autograd.grad(out, [x], g, retain_graph=True)
        b, = pf.autograd.grad(out, [x], g, create_graph=True)
        np.testing.assert_allclose(A(a), A(b), rtol=1e-5, atol=1e-6)


def test_norm_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(21)
    x = rng.normal(size=(64, 32, 40)).astype(np.float32)
    w = rng.normal(size=32).astype(np.float32)
    n = pf.get_num_threads()
    res = []
    try:
        for k in (1, 2):
            pf.set_num_threads(k)
            xs = [T(x, grad=True) for _ in range(3)]
            ws = [T(w, grad=True) for _ in range(2)]
            outs = [pf.batch_norm(xs[0], None, None, ws[0], training=True),
                    pf.layer_norm(xs[1], (32, 40)),
                    pf.group_norm(xs[2], 4, ws[1])]
            for o in outs:
                o.backward(pf.ones_like(o))
            res.append([A(o) for o in outs] + [A(t.grad) for t in xs + ws])
    finally:
        pf.set_num_threads(n)
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)


def test_running_buffers_stay_out_of_autograd():
    x = T(np.random.default_rng(22).normal(size=(4, 2)), grad=True)
    rm, rv = pf.zeros(2, dtype=pf.float64), pf.ones(2, dtype=pf.float64)
    y = pf.batch_norm(x, rm, rv, training=True)
    y2 = pf.batch_norm(x, rm, rv, training=True)       # updates the buffers again
    (y.sum() + (y2 * y2).sum()).backward()             # training does not read them
    assert x.grad is not None and not rm.requires_grad
    with pytest.raises(ValueError, match="batch_norm: running_mean requires grad"):
        pf.batch_norm(x, pf.zeros(2, requires_grad=True), rv, training=True)
    # eval reads them: changing them before backward is caught
    z = pf.batch_norm(x, rm, rv)
    pf.batch_norm(x.detach(), rm, rv, training=True)
    with pytest.raises(RuntimeError, match="modified|version|changed"):
        z.sum().backward()


# ------------------------------------------------------------ bad inputs


def test_bad_inputs_name_the_op_and_the_values():
    x = pf.ones((2, 3))
    cases = [
        (lambda: pf.layer_norm(x, (4,)), ValueError,
         r"layer_norm: normalized_shape \(4,\) must equal the last 1 dimension\(s\) of the "
         r"input; got input shape \(2, 3\) \(expected \(\*, 4\)\)"),
        (lambda: pf.layer_norm(x, (3,), pf.ones(4)), ValueError,
         r"layer_norm: weight must have the normalized shape \(3,\); got shape \(4,\)"),
        (lambda: pf.layer_norm(pf.ones(3, dtype=pf.int64), 3), TypeError,
         r"layer_norm: input must be a floating-point tensor; got dtype int64"),
        (lambda: pf.group_norm(pf.ones((2, 6, 3)), 4), ValueError,
         r"group_norm: the 6 channels of input shape \(2, 6, 3\) do not divide into "
         r"num_groups=4 groups"),
        (lambda: pf.batch_norm(x, None, None), ValueError,
         r"batch_norm: running_mean and running_var are needed in eval mode"),
        (lambda: pf.batch_norm(pf.ones((1, 3)), None, None, training=True), ValueError,
         r"batch_norm: expected more than 1 value per channel when training; got input shape "
         r"\(1, 3\)"),
        (lambda: pf.batch_norm(x, pf.zeros(2), pf.ones(3)), ValueError,
         r"batch_norm: running_mean must have shape \(3,\) \(one value per channel\); got "
         r"shape \(2,\)"),
        (lambda: pf.cross_entropy(x, pf.tensor([0, 3])), IndexError,
         r"cross_entropy: target 3 is out of range for 3 classes; class indices must be in "
         r"\[0, 3\) or equal ignore_index \(-100\)"),
        (lambda: pf.cross_entropy(x, pf.tensor([0, -1])), IndexError,
         r"cross_entropy: target -1 is out of range for 3 classes"),
        (lambda: pf.cross_entropy(x, pf.tensor([[0, 1]])), ValueError,
         r"cross_entropy: target shape \(1, 2\) does not match input shape \(2, 3\); class "
         r"indices need shape \(2,\)"),
        (lambda: pf.cross_entropy(x, pf.tensor([0.5, 0.5])), ValueError,
         r"cross_entropy: a floating-point target holds class probabilities and must have "
         r"the input's shape \(2, 3\); got \(2,\)"),
        (lambda: pf.cross_entropy(x, pf.tensor([0, 1]), reduction="avg"), ValueError,
         r"cross_entropy: reduction must be 'none', 'mean' or 'sum'; got 'avg'"),
        (lambda: pf.cross_entropy(x, pf.tensor([0, 1]), label_smoothing=1.5), ValueError,
         r"cross_entropy: label_smoothing must be in \[0, 1\]; got 1.5"),
        (lambda: pf.nll_loss(x, pf.tensor([0.0, 1.0])), TypeError,
         r"nll_loss: target must hold integer class indices; got dtype float32"),
        (lambda: pf.nll_loss(x, pf.tensor([0, 7])), IndexError,
         r"nll_loss: target 7 is out of range for 3 classes"),
        (lambda: pf.huber_loss(x, x, delta=0.0), ValueError,
         r"huber_loss: delta must be positive; got 0"),
        (lambda: pf.smooth_l1_loss(x, x, beta=-1.0), ValueError,
         r"smooth_l1_loss: beta must be >= 0; got -1"),
        (lambda: pf.mse_loss(x, pf.ones(4)), ValueError,
         r"mse_loss: shapes \(2, 3\) and \(4,\) cannot be broadcast together"),
        (lambda: pf.binary_cross_entropy(x * 1.5, x), ValueError,
         r"binary_cross_entropy: input values must be probabilities in \[0, 1\]; got 1.5"),
        (lambda: pf.binary_cross_entropy_with_logits(x, pf.ones(3)), ValueError,
         r"binary_cross_entropy_with_logits: target shape \(3,\) differs from input shape "
         r"\(2, 3\)"),
        (lambda: pf.binary_cross_entropy_with_logits(x, x, pos_weight=pf.ones(2)), ValueError,
         r"binary_cross_entropy_with_logits: pos_weight of shape \(2,\) does not broadcast to "
         r"the input shape \(2, 3\)"),
        (lambda: pf.dropout(x, 1.5), ValueError,
         r"dropout: p must be a probability in \[0, 1\]; got 1.5"),
        (lambda: pf.dropout(pf.ones(3, dtype=pf.int32)), TypeError,
         r"dropout: input must be a floating-point tensor; got dtype int32"),
        (lambda: pf.scaled_dot_product_attention(pf.ones((2, 4)), pf.ones((3, 5)),
                                                 pf.ones((3, 2))), ValueError,
         r"scaled_dot_product_attention: query and key must have the same last dimension "
         r"\(E\); got shapes \(2, 4\) and \(3, 5\)"),
        (lambda: pf.scaled_dot_product_attention(pf.ones((2, 4)), pf.ones((3, 4)),
                                                 pf.ones((2, 2))), ValueError,
         r"scaled_dot_product_attention: key and value must have the same number of "
         r"positions S"),
        (lambda: pf.scaled_dot_product_attention(pf.ones((2, 4)), pf.ones((3, 4)),
                                                 pf.ones((3, 2)), attn_mask=pf.ones((3, 3))),
         ValueError, r"scaled_dot_product_attention: attn_mask of shape \(3, 3\) does not "
                     r"broadcast to the attention shape \(2, 3\)"),
        (lambda: pf.scaled_dot_product_attention(pf.ones((2, 4)), pf.ones((3, 4)),
                                                 pf.ones((3, 2)), pf.ones((2, 3)) > 0,
                                                 is_causal=True), ValueError,
         r"scaled_dot_product_attention: pass either attn_mask or is_causal=True, not both"),
        (lambda: pf.scaled_dot_product_attention(pf.ones((2, 4)), pf.ones((3, 4)),
                                                 pf.ones((3, 2)), dropout_p=2.0), ValueError,
         r"scaled_dot_product_attention: dropout_p must be a probability in \[0, 1\]; got 2"),
        (lambda: pf.scaled_dot_product_attention(pf.ones((2, 4)),
                                                 pf.ones((3, 4), dtype=pf.float64),
                                                 pf.ones((3, 2))), TypeError,
         r"scaled_dot_product_attention: query, key and value must have the same dtype; got "
         r"float32, float64 and float32"),
    ]
    for call, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            call()
    # the weight of a class loss has no gradient (as in PyTorch): a clear error, not None
    w = pf.ones(3, requires_grad=True)
    loss = pf.cross_entropy(pf.ones((2, 3), requires_grad=True), pf.tensor([0, 1]), w)
    with pytest.raises(RuntimeError, match="cross_entropy: no gradient with respect to weight"):
        loss.backward()


def test_empty_inputs_and_zero_channels():
    """Empty batches, rows, classes and positions give empty or NaN results, never a crash."""
    assert pf.layer_norm(pf.ones((0, 4)), 4).shape == (0, 4)
    assert pf.layer_norm(pf.ones((3, 0)), 0).shape == (3, 0)
    assert pf.group_norm(pf.ones((0, 4, 2)), 2).shape == (0, 4, 2)
    assert pf.batch_norm(pf.ones((4, 0)), None, None, training=True).shape == (4, 0)
    assert pf.batch_norm(pf.ones((0, 3)), pf.zeros(3), pf.ones(3)).shape == (0, 3)
    assert np.isnan(A(pf.cross_entropy(pf.ones((0, 3)), pf.zeros(0, dtype=pf.int64))))
    assert pf.cross_entropy(pf.ones((0, 3)), pf.zeros(0, dtype=pf.int64),
                            reduction="none").shape == (0,)
    assert np.isnan(A(pf.mse_loss(pf.ones(0), pf.ones(0))))
    assert pf.dropout(pf.ones(0), 0.5).shape == (0,)
    sdpa = pf.scaled_dot_product_attention
    assert sdpa(pf.ones((0, 4)), pf.ones((3, 4)), pf.ones((3, 2))).shape == (0, 2)
    assert sdpa(pf.ones((0, 2, 4)), pf.ones((0, 3, 4)), pf.ones((0, 3, 2))).shape == (0, 2, 2)
    x = pf.ones((2, 4), requires_grad=True)
    out = sdpa(x, pf.ones((0, 4)), pf.ones((0, 2)))       # no keys: zeros, zero gradient
    assert (A(out) == 0).all()
    out.sum().backward()
    assert (A(x.grad) == 0).all()


def test_no_tensor_outlives_a_training_step():
    def step():
        x = pf.tensor(np.random.default_rng(26).normal(size=(4, 6, 5)), requires_grad=True)
        w = pf.ones(5, dtype=pf.float64, requires_grad=True)
        rm, rv = pf.zeros(6, dtype=pf.float64), pf.ones(6, dtype=pf.float64)
        loss = (pf.layer_norm(x, 5, w).sum() + pf.batch_norm(x, rm, rv, training=True).sum()
                + pf.group_norm(x, 3).sum() + pf.rms_norm(x, 5, w).sum()
                + pf.cross_entropy(x, pf.zeros((4, 5), dtype=pf.int64))
                + pf.mse_loss(x, x * 0.5) + pf.binary_cross_entropy_with_logits(x, pf.sigmoid(x))
                + pf.dropout(x, 0.3).sum()
                + pf.scaled_dot_product_attention(x, x, x, dropout_p=0.2, is_causal=True).sum())
        loss.backward()
        g, = pf.autograd.grad(pf.layer_norm(x, 5).sum()
                              + pf.scaled_dot_product_attention(x, x, x).sum(), [x],
                              create_graph=True)
        g.sum().backward()
    step()
    before = pf.memory_stats()["cpu"]
    for _ in range(20):
        step()
    after = pf.memory_stats()["cpu"]
    assert after["live_tensors"] == before["live_tensors"]
    assert after["live_bytes"] == before["live_bytes"]
