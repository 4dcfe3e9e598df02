"""Convolution and pooling (csrc/nn_conv.c, csrc/kernels/conv.c, pool.c).

Values are checked against float64 NumPy references written here (direct
sums over the window taps, independent of the kernels' im2col and GEMM),
and against torch.nn.functional where torch is installed; gradients against
torch.autograd (second derivatives are in tests/grad_rows/nn_conv.py).
Every geometry runs in several memory layouts -- contiguous NCHW,
channels-last (an NHWC array viewed as NCHW), reversed strides and a sliced
view -- because the kernels pick different paths for them.
"""
import numpy as np
import pytest

import pyframe as pf

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # torch is a second oracle only
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

RTOL64, ATOL64 = 1e-12, 1e-12
RTOL32, ATOL32 = 2e-5, 2e-5


# ------------------------------------------------------------------ references


def _pair(v, nd=2):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd


def ref_conv(x, w, b=None, stride=1, pads=((0, 0), (0, 0)), dilation=1, groups=1,
             out_size=None):
    """float64 convolution of x (N, C, H, W) with w (O, C/groups, KH, KW): a sum over
    taps of strided slices of the zero-padded input.  pads: ((top, bottom), (left, right))."""
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), pads[0], pads[1]))
    if out_size is None:
        OH = (xp.shape[2] - dh * (KH - 1) - 1) // sh + 1
        OW = (xp.shape[3] - dw * (KW - 1) - 1) // sw + 1
    else:
        OH, OW = out_size
        need_h = (OH - 1) * sh + (KH - 1) * dh + 1
        need_w = (OW - 1) * sw + (KW - 1) * dw + 1
        xp = np.pad(xp, ((0, 0), (0, 0), (0, max(0, need_h - xp.shape[2])),
                         (0, max(0, need_w - xp.shape[3]))))
    og = O // groups
    y = np.zeros((N, O, OH, OW))
    for g in range(groups):
        xg = xp[:, g * Cg:(g + 1) * Cg]
        wg = w[g * og:(g + 1) * og].astype(np.float64)
        for i in range(KH):
            for j in range(KW):
                tap = xg[:, :, i * dh:i * dh + sh * (OH - 1) + 1:sh,
                         j * dw:j * dw + sw * (OW - 1) + 1:sw]
                y[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", tap, wg[:, :, i, j])
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def ref_conv_transpose(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                       dilation=1):
    """float64 transposed convolution: every input pixel scatters weight * value."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    oph, opw = _pair(output_padding)
    dh, dw = _pair(dilation)
    N, Cin, H, W = x.shape
    _, Cog, KH, KW = w.shape
    Hout = (H - 1) * sh - 2 * ph + dh * (KH - 1) + oph + 1
    Wout = (W - 1) * sw - 2 * pw + dw * (KW - 1) + opw + 1
    yf = np.zeros((N, Cog * groups, (H - 1) * sh + dh * (KH - 1) + 1 + oph,
                   (W - 1) * sw + dw * (KW - 1) + 1 + opw))
    cig = Cin // groups
    for g in range(groups):
        xg = x[:, g * cig:(g + 1) * cig].astype(np.float64)
        for i in range(KH):
            for j in range(KW):
                c = np.einsum("nchw,co->nohw", xg, w[g * cig:(g + 1) * cig, :, i, j])
                yf[:, g * Cog:(g + 1) * Cog, i * dh:i * dh + sh * (H - 1) + 1:sh,
                   j * dw:j * dw + sw * (W - 1) + 1:sw] += c
    y = yf[:, :, ph:ph + Hout, pw:pw + Wout]
    if b is not None:
        y = y + np.asarray(b, np.float64)[None, :, None, None]
    return y


def pool_out(n, k, s, p, d, ceil):
    """PyTorch's pooled size."""
    num = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)
    o = num // s + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def _pool_taps(x, k, s, p, d, ceil, fill):
    """The taps of every window of x (N, C, H, W) as (N, C, OH, OW, KH*KW), padding = fill."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _pair(k), _pair(s), _pair(p), _pair(d)
    N, C, H, W = x.shape
    OH, OW = pool_out(H, kh, sh, ph, dh, ceil), pool_out(W, kw, sw, pw, dw, ceil)
    eh, ew = (OH - 1) * sh + (kh - 1) * dh + 1, (OW - 1) * sw + (kw - 1) * dw + 1
    xp = np.full((N, C, max(eh, H + ph), max(ew, W + pw)), fill, np.float64)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    taps = [xp[:, :, i * dh:i * dh + sh * (OH - 1) + 1:sh, j * dw:j * dw + sw * (OW - 1) + 1:sw]
            for i in range(kh) for j in range(kw)]
    return np.stack(taps, axis=-1), OH, OW


def ref_max_pool(x, k, s=None, p=0, d=1, ceil=False):
    taps, _, _ = _pool_taps(x, k, s if s is not None else k, p, d, ceil, -np.inf)
    return taps.max(axis=-1)


def ref_avg_pool(x, k, s=None, p=0, ceil=False, count_include_pad=True, divisor=None):
    s = s if s is not None else k
    (kh, kw), (sh, sw), (ph, pw) = _pair(k), _pair(s), _pair(p)
    taps, OH, OW = _pool_taps(x, k, s, p, 1, ceil, 0.0)
    total = taps.sum(axis=-1)
    H, W = x.shape[2:]
    div = np.empty((OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * sh - ph, ow * sw - pw
            h1, w1 = min(h0 + kh, H + ph), min(w0 + kw, W + pw)
            n = (h1 - h0) * (w1 - w0)
            if not count_include_pad:
                n = (min(h1, H) - max(h0, 0)) * (min(w1, W) - max(w0, 0))
            div[oh, ow] = divisor if divisor else n
    return total / div


# ------------------------------------------------------------------ layouts

LAYOUTS = ["nchw", "cl", "rev", "slice"]


def as_layout(a, layout, dtype=pf.float64):
    """A pyframe tensor holding a's values (N, C, ...) in the given memory layout."""
    npd = {pf.float64: np.float64, pf.float32: np.float32}[dtype]
    a = a.astype(npd)
    if layout == "nchw":
        return pf.tensor(a, dtype=dtype)
    if layout == "cl":
        perm = (0,) + tuple(range(2, a.ndim)) + (1,)
        return pf.from_numpy(np.ascontiguousarray(a.transpose(perm))).permute(*np.argsort(perm))
    if layout == "rev":
        return pf.from_numpy(np.asfortranarray(a))
    big = np.zeros(tuple(2 * d for d in a.shape), npd)
    big[tuple(slice(None, None, 2) for _ in a.shape)] = a
    return pf.from_numpy(big)[tuple(slice(None, None, 2) for _ in a.shape)]


def close(got, want, dtype=pf.float64):
    got = np.asarray(got, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    rtol, atol = (RTOL64, ATOL64) if dtype == pf.float64 else (RTOL32, ATOL32)
    scale = max(1.0, float(np.abs(want).max()) if want.size else 1.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale)


RNG = np.random.default_rng(1234)


def rand(*shape):
    return RNG.standard_normal(shape)


# ------------------------------------------------------------------ convolution values

CONV2D_CASES = [
    # (x shape, w shape, kwargs, pads as the reference sees them)
    ((2, 3, 7, 6), (4, 3, 3, 3), {}, ((0, 0), (0, 0))),
    ((2, 4, 9, 8), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
     ((1, 1), (2, 2))),
    ((1, 2, 5, 6), (3, 2, 2, 3), dict(padding="same"), ((0, 1), (1, 1))),
    ((1, 2, 6, 6), (3, 2, 3, 3), dict(padding="same", dilation=2), ((2, 2), (2, 2))),
    ((2, 3, 6, 5), (2, 3, 3, 3), dict(padding=((2, 0), (0, 1))), ((2, 0), (0, 1))),
    ((2, 5, 4, 4), (3, 5, 1, 1), {}, ((0, 0), (0, 0))),                       # 1x1: a GEMM
    ((2, 5, 7, 7), (3, 5, 1, 1), dict(stride=2), ((0, 0), (0, 0))),            # strided 1x1
    ((2, 40, 5, 5), (40, 1, 3, 3), dict(padding=1, groups=40), ((1, 1), (1, 1))),  # depthwise
    ((1, 6, 7, 5), (12, 1, 2, 3), dict(stride=2, groups=6, dilation=(2, 1)), ((0, 0), (0, 0))),
    ((2, 1, 20, 19), (4, 1, 3, 3), dict(padding=1), ((1, 1), (1, 1))),        # channel-major im2col
    ((1, 3, 18, 17), (5, 3, 3, 3), dict(stride=2, padding=2, dilation=2), ((2, 2), (2, 2))),
    ((2, 16, 6, 6), (8, 16, 3, 3), dict(padding=1), ((1, 1), (1, 1))),       # pixel-major im2col
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", range(len(CONV2D_CASES)))
def test_conv2d_matches_numpy(case, layout):
    xs, ws, kw, pads = CONV2D_CASES[case]
    x, w, b = rand(*xs), rand(*ws), rand(ws[0])
    want = ref_conv(x, w, b, kw.get("stride", 1), pads, kw.get("dilation", 1),
                    kw.get("groups", 1))
    for dt in (pf.float64, pf.float32):
        y = pf.conv2d(as_layout(x, layout, dt), pf.tensor(w, dtype=dt), pf.tensor(b, dtype=dt),
                      **kw)
        assert y.dtype == dt
        close(y, want, dt)


@pytest.mark.parametrize("layout", ["nchw", "cl", "rev"])
def test_conv1d_matches_numpy(layout):
    for xs, ws, kw, pads in [((2, 3, 11), (4, 3, 3), {}, (0, 0)),
                             ((2, 4, 12), (6, 2, 3), dict(stride=2, padding=2, dilation=2,
                                                          groups=2), (2, 2)),
                             ((1, 2, 9), (3, 2, 4), dict(padding="same"), (1, 2)),
                             ((3, 1, 40), (5, 1, 5), dict(padding=2), (2, 2)),
                             ((2, 8, 6), (8, 1, 3), dict(groups=8, padding=1), (1, 1))]:
        x, w, b = rand(*xs), rand(*ws), rand(ws[0])
        want = ref_conv(x[:, :, None], w[:, :, None], b, (1, kw.get("stride", 1)),
                        ((0, 0), pads), (1, kw.get("dilation", 1)), kw.get("groups", 1))[:, :, 0]
        for dt in (pf.float64, pf.float32):
            y = pf.conv1d(as_layout(x, layout, dt), pf.tensor(w, dtype=dt),
                          pf.tensor(b, dtype=dt), **kw)
            close(y, want, dt)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_conv_transpose2d_matches_numpy(layout):
    for xs, ws, kw in [((2, 4, 3, 3), (4, 3, 3, 3), {}),
                       ((2, 4, 3, 4), (4, 3, 3, 2), dict(stride=2, padding=1, output_padding=1)),
                       ((1, 6, 3, 3), (6, 2, 2, 3), dict(stride=(2, 3), padding=(0, 1),
                                                         output_padding=(1, 2), groups=3)),
                       ((2, 4, 4, 3), (4, 2, 3, 3), dict(stride=1, dilation=2, groups=2,
                                                         padding=1)),
                       ((1, 2, 3, 3), (2, 3, 3, 3), dict(stride=2, dilation=3,
                                                         output_padding=2))]:
        x, w = rand(*xs), rand(*ws)
        b = rand(ws[1] * kw.get("groups", 1))
        want = ref_conv_transpose(x, w, b, **kw)
        for dt in (pf.float64, pf.float32):
            y = pf.conv_transpose2d(as_layout(x, layout, dt), pf.tensor(w, dtype=dt),
                                    pf.tensor(b, dtype=dt), **kw)
            close(y, want, dt)


# ------------------------------------------------------------------ pooling values

POOL2D_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0)),
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=2, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=1, padding=1),
]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_pools_match_numpy(layout):
    x = rand(2, 12, 7, 9)
    for kw in POOL2D_CASES:
        k, s, p, ceil = (kw["kernel_size"], kw.get("stride"), kw.get("padding", 0),
                         kw.get("ceil_mode", False))
        for dt in (pf.float64, pf.float32):
            xt = as_layout(x, layout, dt)
            close(pf.max_pool2d(xt, **kw), ref_max_pool(x, k, s, p, 1, ceil), dt)
            for incl in (True, False):
                close(pf.avg_pool2d(xt, count_include_pad=incl, **kw),
                      ref_avg_pool(x, k, s, p, ceil, incl), dt)
    # dilation (max only) and divisor_override (avg only)
    for dt in (pf.float64, pf.float32):
        xt = as_layout(x, layout, dt)
        close(pf.max_pool2d(xt, 2, stride=1, dilation=(2, 3), padding=1),
              ref_max_pool(x, 2, 1, 1, (2, 3)), dt)
        close(pf.avg_pool2d(xt, 3, stride=2, padding=1, divisor_override=4),
              ref_avg_pool(x, 3, 2, 1, divisor=4), dt)
    # 1-D
    x1 = rand(3, 10, 13)
    for dt in (pf.float64, pf.float32):
        xt = as_layout(x1, layout, dt)
        close(pf.max_pool1d(xt, 3, stride=2, padding=1, dilation=2, ceil_mode=True),
              ref_max_pool(x1[:, :, None], (1, 3), (1, 2), (0, 1), (1, 2), True)[:, :, 0], dt)
        close(pf.avg_pool1d(xt, 4, stride=3, padding=2, count_include_pad=False),
              ref_avg_pool(x1[:, :, None], (1, 4), (1, 3), (0, 2), False, False)[:, :, 0], dt)


def test_pool_paths_over_shapes():
    """Short and long rows, few and many channels: the plane and pixel loops, both layouts."""
    for shape in [(2, 3, 70, 66), (1, 20, 9, 80), (2, 300, 5, 5), (3, 1, 4, 4)]:
        x = rand(*shape)
        for layout in ("nchw", "cl"):
            xt = as_layout(x, layout)
            close(pf.max_pool2d(xt, 3, stride=2, padding=1), ref_max_pool(x, 3, 2, 1))
            close(pf.avg_pool2d(xt, 2), ref_avg_pool(x, 2))


def test_max_pool_ties_and_nan():
    """Ties: the gradient goes to the first maximal element of each window (row-major
    order); a NaN anywhere in a window is its maximum, and the first NaN gets the gradient."""
    for layout in ("nchw", "cl"):
        x = as_layout(np.ones((1, 2, 4, 4)), layout).detach().requires_grad_()
        pf.max_pool2d(x, 2).sum().backward()
        want = np.zeros((1, 2, 4, 4))
        want[:, :, ::2, ::2] = 1
        np.testing.assert_array_equal(np.asarray(x.grad), want)
        a = np.arange(16.0).reshape(1, 1, 4, 4)
        a[0, 0, 1, 0] = np.nan
        a[0, 0, 1, 1] = np.nan
        xn = as_layout(a, layout).detach().requires_grad_()
        y = pf.max_pool2d(xn, 2)
        yv = np.asarray(y)
        assert np.isnan(yv[0, 0, 0, 0]) and yv[0, 0, 0, 1] == 7 and yv[0, 0, 1, 1] == 15
        y.sum().backward()
        g = np.asarray(xn.grad)
        assert g[0, 0, 1, 0] == 1 and g[0, 0, 1, 1] == 0 and g.sum() == 4
        # -inf everywhere still has a first maximum: each window's top-left element
        z = as_layout(np.full((1, 1, 3, 3), -np.inf), layout).detach().requires_grad_()
        pf.max_pool2d(z, 2, stride=1).sum().backward()
        want = np.zeros((1, 1, 3, 3))
        want[0, 0, :2, :2] = 1
        np.testing.assert_array_equal(np.asarray(z.grad), want)
        # overlapping windows that share their maximum add up there
        a = np.zeros((1, 1, 3, 3))
        a[0, 0, 1, 1] = 5
        z = as_layout(a, layout).detach().requires_grad_()
        pf.max_pool2d(z, 2, stride=1).sum().backward()
        assert np.asarray(z.grad)[0, 0, 1, 1] == 4 and np.asarray(z.grad).sum() == 4


# ------------------------------------------------------------------ torch: values and gradients

TORCH_CASES = [
    ("conv2d", (2, 6, 8, 7), (4, 3, 3, 2), dict(stride=2, padding=1, dilation=(2, 1), groups=2)),
    ("conv2d", (2, 3, 6, 6), (4, 3, 2, 2), dict(padding="same")),
    ("conv2d", (2, 1, 20, 18), (6, 1, 3, 3), dict(padding=1)),
    ("conv2d", (2, 40, 5, 6), (80, 1, 3, 3), dict(padding=1, groups=40)),
    ("conv2d", (2, 8, 5, 5), (4, 8, 1, 1), {}),
    ("conv1d", (2, 4, 12), (6, 2, 3), dict(stride=2, padding=1, groups=2)),
    ("conv_transpose2d", (2, 6, 4, 3), (6, 2, 3, 3), dict(stride=2, padding=1, output_padding=1,
                                                           groups=3)),
    ("conv_transpose2d", (1, 4, 5, 5), (4, 3, 1, 1), {}),
]


@needs_torch
@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("layout", ["nchw", "cl", "rev"])
def test_values_and_gradients_match_torch(layout):
    for name, xs, ws, kw in TORCH_CASES:
        x, w = rand(*xs), rand(*ws)
        nb = ws[1] * kw.get("groups", 1) if name == "conv_transpose2d" else ws[0]
        b = rand(nb)
        tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
        ty = getattr(F, name)(tx, tw, tb, **kw)
        g = rand(*ty.shape)
        ty.backward(torch.tensor(g))
        px = as_layout(x, layout).detach().requires_grad_()
        pw, pb = (pf.tensor(v, requires_grad=True) for v in (w, b))
        py = getattr(pf, name)(px, pw, pb, **kw)
        close(py, ty.detach().numpy())
        py.backward(pf.tensor(g))
        for p, t in ((px, tx), (pw, tw), (pb, tb)):
            close(p.grad, t.grad.numpy())


@needs_torch
@pytest.mark.parametrize("layout", ["nchw", "cl"])
def test_pool_gradients_match_torch(layout):
    x = RNG.permutation(2 * 5 * 9 * 8).reshape(2, 5, 9, 8) / 7.0    # no ties
    for name, kw in [("max_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
                     ("max_pool2d", dict(kernel_size=2, dilation=2, stride=1)),
                     ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1,
                                         count_include_pad=False, ceil_mode=True)),
                     ("avg_pool2d", dict(kernel_size=2, divisor_override=3))]:
        tx = torch.tensor(x, requires_grad=True)
        ty = getattr(F, name)(tx, **kw)
        g = rand(*ty.shape)
        ty.backward(torch.tensor(g))
        px = as_layout(x, layout).detach().requires_grad_()
        py = getattr(pf, name)(px, **kw)
        close(py, ty.detach().numpy())
        py.backward(pf.tensor(g))
        close(px.grad, tx.grad.numpy())
    x1 = RNG.permutation(2 * 3 * 11).reshape(2, 3, 11) / 5.0
    for name, kw in [("max_pool1d", dict(kernel_size=3, stride=2, padding=1)),
                     ("avg_pool1d", dict(kernel_size=3, stride=2, padding=1))]:
        tx = torch.tensor(x1, requires_grad=True)
        getattr(F, name)(tx, **kw).sum().backward()
        px = as_layout(x1, layout).detach().requires_grad_()
        getattr(pf, name)(px, **kw).sum().backward()
        close(px.grad, tx.grad.numpy())


# ------------------------------------------------------------------ the helpers


def _dot(a, b):
    return float((np.asarray(a, np.float64) * np.asarray(b, np.float64)).sum())


def test_helpers_are_each_others_adjoints():
    """<conv(x, w), g> = <x, input_grad(g, w)> = <w, weight_grad(x, g)> for one geometry
    (asymmetric padding, an output size chosen freely), in 2-D and 1-D; and the same for the
    pooling pairs."""
    geo = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    x, w = rand(2, 4, 7, 8), rand(6, 2, 3, 2)
    g = rand(2, 6, 4, 5)
    args = (geo["stride"], geo["padding"], geo["dilation"], geo["groups"])
    y = pf._conv(pf.tensor(x), pf.tensor(w), (4, 5), *args)
    close(y, ref_conv(x, w, None, (2, 1), ((1, 0), (2, 0)), (1, 2), 2, out_size=(4, 5)))
    gx = pf._conv_input_grad(pf.tensor(g), pf.tensor(w), (7, 8), *args)
    gw = pf._conv_weight_grad(pf.tensor(x), pf.tensor(g), (3, 2), *args)
    lhs = _dot(y, g)
    assert abs(lhs - _dot(x, gx)) < 1e-9 * max(1, abs(lhs))
    assert abs(lhs - _dot(w, gw)) < 1e-9 * max(1, abs(lhs))
    x1, w1, g1 = rand(2, 3, 9), rand(4, 3, 2), rand(2, 4, 5)
    y1 = pf._conv(pf.tensor(x1), pf.tensor(w1), (5,), 2, (1,), 1, 1)
    gx1 = pf._conv_input_grad(pf.tensor(g1), pf.tensor(w1), (9,), 2, 1, 1, 1)
    gw1 = pf._conv_weight_grad(pf.tensor(x1), pf.tensor(g1), 2, 2, 1, 1, 1)
    assert abs(_dot(y1, g1) - _dot(x1, gx1)) < 1e-9 and abs(_dot(y1, g1) - _dot(w1, gw1)) < 1e-9
    # max pooling: select and backward are adjoint in their first argument
    xp = RNG.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6).astype(np.float64)
    v, gp = rand(2, 3, 7, 6), rand(2, 3, 4, 4)
    sel = pf._max_pool_select(pf.tensor(v), pf.tensor(xp), 3, 2, 1, 1, True)
    bwd = pf._max_pool_backward(pf.tensor(gp), pf.tensor(xp), 3, 2, 1, 1, True)
    assert abs(_dot(sel, gp) - _dot(v, bwd)) < 1e-9
    close(pf._max_pool_select(pf.tensor(xp), pf.tensor(xp), 3, 2, 1, 1, True),
          ref_max_pool(xp, 3, 2, 1, 1, True))
    # average pooling and its backward
    ga = rand(2, 3, 4, 4)
    avg = pf.avg_pool2d(pf.tensor(v), 3, 2, 1, True, False)
    back = pf._avg_pool_backward(pf.tensor(ga), (7, 6), 3, 2, 1, True, False, None)
    assert abs(_dot(avg, ga) - _dot(v, back)) < 1e-9


@needs_torch
def test_helpers_match_torch_gradients():
    x, w = rand(2, 4, 9, 7), rand(6, 2, 3, 3)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = F.conv2d(tx, tw, stride=2, padding=(1, 0), groups=2)
    g = rand(*ty.shape)
    ty.backward(torch.tensor(g))
    gx = pf._conv_input_grad(pf.tensor(g), pf.tensor(w), (9, 7), 2, (1, 0), 1, 2)
    gw = pf._conv_weight_grad(pf.tensor(x), pf.tensor(g), (3, 3), 2, (1, 0), 1, 2)
    close(gx, tx.grad.numpy())
    close(gw, tw.grad.numpy())


# ------------------------------------------------------------------ layouts and paths


def test_output_layout_follows_input():
    x = rand(2, 6, 8, 8)
    w = pf.tensor(rand(4, 6, 3, 3))
    wt = pf.tensor(rand(6, 4, 3, 3))
    for layout in ("nchw", "cl"):
        xt = as_layout(x, layout)
        for y in (pf.conv2d(xt, w, padding=1), pf.conv_transpose2d(xt, wt),
                  pf.max_pool2d(xt, 2), pf.avg_pool2d(xt, 3, 1, 1)):
            n, c, h, ww = y.shape
            want = (c * h * ww, 1, ww * c, c) if layout == "cl" else (c * h * ww, h * ww, ww, 1)
            assert y.stride() == want, (layout, y.stride())
    x1 = as_layout(rand(2, 5, 9), "cl")
    y1 = pf.conv1d(x1, pf.tensor(rand(3, 5, 3)))
    assert y1.stride() == (7 * 3, 1, 3)


def test_channels_last_input_is_read_in_place():
    """A channels-last float32 input is never copied: the op allocates its output only
    (im2col blocks are L2-sized scratch, not pyframe tensors)."""
    x = as_layout(rand(4, 16, 12, 12), "cl", pf.float32)
    w = pf.tensor(rand(8, 16, 3, 3), dtype=pf.float32)
    wd = pf.tensor(rand(16, 1, 3, 3), dtype=pf.float32)
    for fn in (lambda: pf.conv2d(x, w, padding=1), lambda: pf.max_pool2d(x, 2),
               lambda: pf.avg_pool2d(x, 2), lambda: pf.conv2d(x, wd, groups=16)):
        fn()
        before = pf.memory_stats()["cpu"]["alloc_calls"]
        y = fn()
        assert pf.memory_stats()["cpu"]["alloc_calls"] - before == 1
        assert y.stride()[1] == 1


@needs_torch
def test_kernel_paths_match_torch():
    """Shapes chosen to take each path: pixel-major im2col (many channels), channel-major
    (one channel, long rows), 1x1 views, depthwise with a multiplier and a channel tail,
    grouped; batches of one (OpenBLAS threads) and many (pyframe threads); each with the
    input gradient and the weight gradient, in both layouts, in float32 as well."""
    cases = [((1, 1, 40, 37), (8, 1, 5, 5), dict(padding=2)),
             ((16, 24, 9, 9), (32, 24, 3, 3), dict(padding=1)),
             ((3, 24, 9, 9), (32, 24, 3, 3), dict(stride=2)),
             ((5, 12, 6, 6), (20, 12, 1, 1), {}),
             ((1, 12, 30, 30), (20, 12, 1, 1), {}),
             ((4, 35, 7, 7), (70, 1, 3, 3), dict(padding=1, groups=35)),
             ((2, 33, 20, 21), (33, 1, 3, 3), dict(stride=2, padding=1, groups=33)),
             ((6, 16, 8, 8), (16, 4, 3, 3), dict(padding=1, groups=4))]
    for xs, ws, kw in cases:
        x, w = rand(*xs), rand(*ws)
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        ty = F.conv2d(tx, tw, **kw)
        g = rand(*ty.shape)
        ty.backward(torch.tensor(g))
        for layout in ("nchw", "cl"):
            for dt in (pf.float64, pf.float32):
                px = as_layout(x, layout, dt).detach().requires_grad_()
                pw = pf.tensor(w, dtype=dt, requires_grad=True)
                py = pf.conv2d(px, pw, **kw)
                close(py, ty.detach().numpy(), dt)
                py.backward(as_layout(g, layout, dt))
                close(px.grad, tx.grad.numpy(), dt)
                close(pw.grad, tw.grad.numpy(), dt)


def test_same_results_on_one_and_two_threads():
    x, w = rand(8, 16, 10, 10), rand(24, 16, 3, 3)
    out = []
    for n in (1, 2):
        old = pf.get_num_threads()
        pf.set_num_threads(n)
        try:
            px = pf.tensor(x, requires_grad=True)
            pw = pf.tensor(w, requires_grad=True)
            y = pf.conv2d(px, pw, padding=1)
            y.sum().backward()
            out.append((np.asarray(y), np.asarray(px.grad), np.asarray(pw.grad),
                        np.asarray(pf.max_pool2d(px, 3, 2))))
        finally:
            pf.set_num_threads(old)
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_half_precision_computes_in_float32():
    x, w, b = rand(2, 3, 6, 6), rand(4, 3, 3, 3), rand(4)
    for dt in (pf.float16, pf.bfloat16):
        for layout in ("nchw", "cl"):
            xh = as_layout(x, layout, pf.float32).astype(dt)
            wh, bh = pf.tensor(w).astype(dt), pf.tensor(b).astype(dt)
            y = pf.conv2d(xh, wh, bh, padding=1)
            assert y.dtype == dt
            want = pf.conv2d(xh.astype(pf.float32), wh.astype(pf.float32),
                             bh.astype(pf.float32), padding=1).astype(dt)
            np.testing.assert_array_equal(np.asarray(y.astype(pf.float32)),
                                          np.asarray(want.astype(pf.float32)))
            m = pf.max_pool2d(xh, 2)
            assert m.dtype == dt
            np.testing.assert_array_equal(
                np.asarray(m.astype(pf.float32)),
                np.asarray(pf.max_pool2d(xh.astype(pf.float32), 2)))
            a = pf.avg_pool2d(xh, 2)
            assert a.dtype == dt
            xg = xh.detach().requires_grad_()
            pf.conv2d(xg, wh).sum().backward()
            assert xg.grad.dtype == dt


def test_unbatched_and_empty_inputs():
    x, w = rand(3, 6, 5), rand(4, 3, 3, 3)
    close(pf.conv2d(pf.tensor(x), pf.tensor(w), padding=1),
          ref_conv(x[None], w, None, 1, ((1, 1), (1, 1)))[0])
    close(pf.conv1d(pf.tensor(x[:, 0]), pf.tensor(w[:, :, 0])),
          ref_conv(x[None, :, :1], w[:, :, :1], None)[0, :, 0])
    close(pf.max_pool2d(pf.tensor(x), 2), ref_max_pool(x[None], 2)[0])
    close(pf.avg_pool1d(pf.tensor(x[0]), 2), ref_avg_pool(x[None, :1], (1, 2))[0, 0])
    assert pf.conv2d(pf.zeros((0, 3, 5, 5)), pf.zeros((4, 3, 3, 3))).shape == (0, 4, 3, 3)
    assert pf.max_pool2d(pf.zeros((0, 3, 4, 4)), 2).shape == (0, 3, 2, 2)
    assert pf.conv_transpose2d(pf.zeros((0, 3, 2, 2)), pf.zeros((3, 2, 3, 3))).shape == \
        (0, 2, 4, 4)
    # an unbatched input's gradient keeps its shape
    xu = pf.tensor(x, requires_grad=True)
    pf.conv2d(xu, pf.tensor(w)).sum().backward()
    assert xu.grad.shape == (3, 6, 5)


# ------------------------------------------------------------------ bad input

BAD = [
    (lambda: pf.conv2d(pf.ones((2, 3, 5)), pf.ones((4, 3, 3))), ValueError,
     r"conv2d: weight must be 4-D \(out_channels, in_channels / groups, kH, kW\); got 3-D "
     r"with shape \(4, 3, 3\)"),
    (lambda: pf.conv2d(pf.ones((5,)), pf.ones((4, 3, 3, 3))), ValueError,
     r"conv2d: expected input to be 4-D \(N, C, H, W\), or 3-D without the batch dimension; "
     r"got 1-D with shape \(5,\)"),
    (lambda: pf.conv2d(pf.ones((1, 5, 6, 6)), pf.ones((4, 3, 3, 3))), ValueError,
     r"conv2d: input has 5 channels, but weight of shape \(4, 3, 3, 3\) expects in_channels "
     r"= weight.shape\[1\] \* groups = 3"),
    (lambda: pf.conv2d(pf.ones((1, 3, 2, 6)), pf.ones((4, 3, 3, 3))), ValueError,
     r"conv2d: the kernel spans 3 input positions along the height \(size 3, dilation 1\), "
     r"more than the padded input \(2 \+ padding 0 \+ 0 = 2\)"),
    (lambda: pf.conv2d(pf.ones((1, 3, 6, 6)), pf.ones((4, 3, 3, 3)), stride=2, padding="same"),
     ValueError, r"conv2d: padding='same' needs stride 1 \(as in PyTorch\); got stride \(2, 2\)"),
    (lambda: pf.conv2d(pf.ones((1, 4, 6, 6)), pf.ones((3, 2, 3, 3)), groups=2), ValueError,
     r"conv2d: out_channels \(weight.shape\[0\]\) \(3\) must be divisible by groups \(2\)"),
    (lambda: pf.conv2d(pf.ones((1, 3, 6, 6)), pf.ones((4, 3, 3, 3)), pf.ones(3)), ValueError,
     r"conv2d: bias must have shape \(4,\) \(one value per output channel\); got shape \(3,\)"),
    (lambda: pf.conv2d(pf.ones((1, 3, 6, 6)), pf.ones((4, 3, 3, 3), dtype=pf.float64)),
     TypeError, r"conv2d: input \(float32\) and weight \(float64\) must have the same dtype"),
    (lambda: pf.conv2d(pf.ones((1, 3, 6, 6), dtype=pf.int32), pf.ones((4, 3, 3, 3))), TypeError,
     r"conv2d: input must be a floating-point tensor .* got int32"),
    (lambda: pf.conv2d(pf.ones((1, 3, 6, 6)), pf.ones((4, 3, 3, 3)), padding=-1), ValueError,
     r"conv2d: padding must be >= 0; got -1"),
    (lambda: pf.conv2d(pf.ones((1, 3, 6, 6)), pf.ones((4, 3, 3, 3)), padding="full"), ValueError,
     r"conv2d: padding must be 'valid', 'same', an int or a sequence of 2 ints; got 'full'"),
    (lambda: pf.conv2d(pf.ones((1, 3, 6, 6)), pf.ones((4, 3, 3, 3)), stride=(1, 0)), ValueError,
     r"conv2d: stride must be >= 1; got 0"),
    (lambda: pf.conv2d(pf.ones((1, 3, 6, 6)), pf.ones((4, 3, 3, 3)), stride=(1, 1, 1)),
     ValueError, r"conv2d: stride must be an int or a sequence of 2 ints; got a sequence of 3"),
    (lambda: pf.conv2d(pf.ones((1, 3, 6, 6)), pf.ones((4, 3, 3, 3)), groups=0), ValueError,
     r"conv2d: groups must be >= 1; got 0"),
    (lambda: pf.conv2d(pf.ones((1, 3, 6, 6)), None), TypeError, r"conv2d: weight must be a "
     r"tensor; got None"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_inputs_raise_clear_errors(i):
    fn, exc, msg = BAD[i]
    with pytest.raises(exc, match=msg):
        fn()
