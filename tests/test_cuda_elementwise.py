"""The elementwise ops and dtype conversions on a CUDA device, against the cpu backend.

Every op of the op table whose kind is not custom (csrc/cuda/elementwise.cu, dispatch's CUDA
path in csrc/ew_cuda.c): values in every dtype with broadcasting, transposed, strided and
negative-stride operands, Python scalars, out=, the in-place forms, mixed dtypes; astype / to
between every pair of dtypes on the device; gradients of the differentiable ops computed on
the device.  Needs a GPU: skipped elsewhere with pf.cuda's reason (the same element code is
checked on the host, in CI, by tests/test_cuda_ew_host.py).

Tolerances, by result dtype (rtol; atol two subnormal steps): the device's libm (CUDA's
math functions: up to 2 to 4 ULP for exp, sinh, pow, erfc, ..., 1 ULP for float64 most of
them) against the cpu's (glibc, and pyframe's own float32 exp / log / tanh / sigmoid, at most
4 ULP): 16 ULP of float32 and float64; float16 and bfloat16 are computed in float32 and
rounded on both sides, so a result may land one step away: 2 ULP.  Integer and bool results
must match exactly.
"""
import itertools

import numpy as np
import pytest

import pyframe as pf
from op_rows import all_rows
from test_op_table import LAYOUTS, gen_scalar, gen_values, make_tensor

CUDA = pf.cuda.is_available()
pytestmark = pytest.mark.skipif(not CUDA, reason="needs a usable CUDA GPU; here: " +
                                pf.cuda.status())

TABLE = {r["name"]: r for r in pf._C._op_table()}
ROWS = all_rows()
PORTED = [n for n, r in TABLE.items() if r["kind"] != "custom" and r["cuda"] == "kernel"]
NAMES = ("bool", "uint8", "int8", "int16", "int32", "int64",
         "float16", "bfloat16", "float32", "float64")
FLOATS = NAMES[6:]
TOL = {
    "float16": (2 * 2.0 ** -10, 2 * 2.0 ** -24),
    "bfloat16": (2 * 2.0 ** -7, 2 * 2.0 ** -133),
    "float32": (16 * 2.0 ** -23, 2 * 2.0 ** -149),
    "float64": (16 * 2.0 ** -52, 2 * 2.0 ** -1074),
}


def dev(a):
    return a.to("cuda") if isinstance(a, pf.Tensor) else a


def assert_close(d, c, what):
    assert d.device == "cuda:0", what
    assert d.dtype == c.dtype and d.shape == c.shape, (what, d.dtype, d.shape, c.dtype, c.shape)
    h = d.cpu()
    if c.dtype.name in TOL:
        rtol, atol = TOL[c.dtype.name]
        np.testing.assert_allclose(np.asarray(h.astype(pf.float64)),
                                   np.asarray(c.astype(pf.float64)), rtol=rtol, atol=atol,
                                   equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(np.asarray(h), np.asarray(c), err_msg=what)


def both(name, args, params, **kw):
    """(cpu result, device result), or None when the cpu refuses (the device must too)."""
    fn = getattr(pf, name)
    try:
        c = fn(*args, **params, **kw)
    except (TypeError, ValueError) as e:
        with pytest.raises(type(e), match="^" + name):
            fn(*[dev(a) for a in args], **params)
        return None
    return c, fn(*[dev(a) for a in args], **params)


@pytest.mark.parametrize("name", PORTED)
def test_values_in_every_dtype_with_broadcasting_and_layouts(name):
    row, nin = ROWS[name], TABLE[name]["nin"]
    params = row.get("params", {})
    rng = np.random.default_rng(1)
    shapes = [(5, 33), (33,), (5, 1)][:nin] if nin > 1 else [(5, 33)]
    layout = itertools.cycle(LAYOUTS)
    if nin == 1:
        combos = [(d,) for d in NAMES]
    elif nin == 2:
        combos = list(itertools.product(NAMES, NAMES))
    else:
        combos = [("bool", a, b) for a in NAMES for b in NAMES]
    for combo in combos:
        vals = [gen_values(rng, row, k, d, s) for k, (d, s) in enumerate(zip(combo, shapes))]
        r = both(name, [make_tensor(v, next(layout)) for v in vals], params)
        if r is not None:
            assert_close(r[1], r[0], "%s%s" % (name, combo))


@pytest.mark.parametrize("name", PORTED)
def test_large_scalars_out_and_in_place(name):
    """A tensor big enough for many blocks (the grid-stride loop), Python scalars in each
    slot, out= on the device in another dtype, and the in-place method."""
    row, nin = ROWS[name], TABLE[name]["nin"]
    params = row.get("params", {})
    rng = np.random.default_rng(2)
    d = row["dtypes"][-1]
    vals = [gen_values(rng, row, k, d, (1 << 16) + 3) for k in range(nin)]
    r = both(name, [pf.tensor(v) for v in vals], params)
    assert_close(r[1], r[0], name + " large")
    for k in range(nin if name != "clip" else 0):
        args = [make_tensor(gen_values(rng, row, j, d, (4, 6)), "transposed")
                for j in range(nin)]
        args[k] = gen_scalar(rng, row, k, 0 if TABLE[name]["kind"] == "where" and k == 0
                             else 2, d)
        r = both(name, args, params)
        if r is not None:
            assert_close(r[1], r[0], "%s scalar in slot %d" % (name, k))
    args = [make_tensor(gen_values(rng, row, k, d, (4, 6)), "contiguous") for k in range(nin)]
    c = getattr(pf, name)(*args, **params)
    o = pf.zeros((4, 6), dtype=pf.float64, device="cuda")
    assert getattr(pf, name)(*[dev(a) for a in args], out=o, **params) is o
    assert_close(o, c.astype(pf.float64), name + " out=float64")
    if TABLE[name]["inplace"]:
        x = dev(args[0]).clone()
        getattr(x, name + "_")(*[dev(a) for a in args[1:]], **params)
        assert_close(x, c.astype(args[0].dtype), name + " in place")


@pytest.mark.parametrize("src", NAMES)
def test_astype_between_every_pair_on_the_device(src):
    rng = np.random.default_rng(3)
    v = np.concatenate([rng.standard_normal(64) * 10.0 ** rng.integers(-3, 12, 64),
                        [np.nan, np.inf, -np.inf, 0.0, -0.0, 2.5, 65520.0, 3e38, 2.0 ** 63]])
    t = pf.tensor(v).astype(src)
    for view in (lambda u: u, lambda u: u[::-2]):
        d = view(t.to("cuda"))
        for dst in NAMES:
            got = d.astype(dst)
            assert got.device == "cuda:0" and got.dtype == pf.dtype(dst)
            want = view(t).astype(dst)
            if dst in FLOATS:
                np.testing.assert_array_equal(np.asarray(got.cpu().astype(pf.float64)),
                                              np.asarray(want.astype(pf.float64)))
            else:
                np.testing.assert_array_equal(np.asarray(got.cpu()), np.asarray(want))
            assert np.array_equal(np.asarray(d.to(pf.float64).cpu()),
                                  np.asarray(view(t).astype(pf.float64)), equal_nan=True)


DIFF = [n for n in PORTED if TABLE[n]["differentiable"]]


@pytest.mark.parametrize("name", DIFF)
def test_gradients_on_the_device_match_the_cpu(name):
    """Same-shape inputs (a broadcast input's gradient is a sum: the reductions' kernels),
    an explicit output gradient; float32 and float64."""
    row, nin = ROWS[name], TABLE[name]["nin"]
    params = row.get("params", {})
    rng = np.random.default_rng(4)
    for d in ("float32", "float64"):
        if d not in row["dtypes"]:
            continue
        vals = [gen_values(rng, row, k, "bool" if TABLE[name]["kind"] == "where" and k == 0
                           else d, (3, 7)) for k in range(nin)]
        gv = rng.standard_normal((3, 7)).astype(d)
        grads = {}
        for where in ("cpu", "cuda"):
            xs = [pf.tensor(v).to(where) for v in vals]
            for x in xs:
                if x.dtype.is_floating_point:
                    x.requires_grad_()
            y = getattr(pf, name)(*xs, **params)
            y.backward(pf.tensor(gv).to(where))
            grads[where] = [x.grad for x in xs if x.requires_grad]
        for gc, gd in zip(grads["cpu"], grads["cuda"]):
            assert_close(gd, gc, "d%s/dx (%s)" % (name, d))


# ------------------------------------------------ shape ops that are copies on the device

SHAPE_CASES = [
    ("concatenate", lambda x, y: pf.concatenate([x, y.astype(pf.int32), x.T.T], axis=1)),
    ("concatenate", lambda x, y: pf.concatenate([x, y], axis=None)),
    ("stack", lambda x, y: pf.stack([x, y[::-1]], axis=1)),
    ("split", lambda x, y: pf.split(x, [1, 3], axis=1)),
    ("chunk", lambda x, y: pf.chunk(y, 2, axis=0)),
    ("tile", lambda x, y: pf.tile(x.T, (2, 1, 3))),
    ("flip", lambda x, y: pf.flip(x, axis=(0, 1))),
    ("roll", lambda x, y: pf.roll(x, 3)),
    ("roll", lambda x, y: pf.roll(x[:, ::-1], (1, -2), axis=(0, 1))),
    ("pad", lambda x, y: pf.pad(x, ((1, 2), (0, 3)), constant_values=7)),
    ("pad", lambda x, y: pf.pad(x, 2, mode="reflect")),
    ("pad", lambda x, y: pf.pad(x.T, (1, 2), mode="edge")),
    ("moveaxis", lambda x, y: pf.moveaxis(x[None], 0, 2)),
    ("isclose", lambda x, y: pf.isclose(x, y + 1e-7, equal_nan=True)),
    ("tril", lambda x, y: pf.tril(x, -1)),
    ("triu", lambda x, y: pf.triu(pf.stack([x, y]).T, 2)),
]


@pytest.mark.parametrize("i", range(len(SHAPE_CASES)), ids=[c[0] for c in SHAPE_CASES])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int64", "bool"])
def test_shape_ops_copy_on_the_device(i, dtype):
    name, fn = SHAPE_CASES[i]
    rng = np.random.default_rng(5)
    x = pf.tensor(rng.standard_normal((4, 5)) * 4).astype(dtype)
    y = pf.tensor(rng.standard_normal((4, 5)) * 4).astype(dtype)
    want = fn(x, y)
    got = fn(x.to("cuda"), y.to("cuda"))
    wants = want if isinstance(want, (list, tuple)) else [want]
    gots = got if isinstance(got, (list, tuple)) else [got]
    assert len(gots) == len(wants)
    for g, w in zip(gots, wants):
        assert g.device == "cuda:0" and g.dtype == w.dtype and g.shape == w.shape, name
        np.testing.assert_array_equal(np.asarray(g.cpu().astype(pf.float64)),
                                      np.asarray(w.astype(pf.float64)), err_msg=name)


@pytest.mark.parametrize("i", [i for i, c in enumerate(SHAPE_CASES)
                               if c[0] not in ("tile", "isclose")],
                         ids=[c[0] for c in SHAPE_CASES if c[0] not in ("tile", "isclose")])
def test_shape_op_gradients_on_the_device(i):
    """(tile's gradient sums the copies: it needs the reductions' kernels)"""
    name, fn = SHAPE_CASES[i]
    rng = np.random.default_rng(6)
    xv, yv = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    shapes = fn(pf.tensor(xv), pf.tensor(yv))
    gvs = [rng.standard_normal(tuple(o.shape))
           for o in (shapes if isinstance(shapes, (list, tuple)) else [shapes])]
    grads = {}
    for where in ("cpu", "cuda"):
        x = pf.tensor(xv, dtype=pf.float32).to(where).requires_grad_()
        y = pf.tensor(yv, dtype=pf.float32).to(where).requires_grad_()
        outs = fn(x, y)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        gs = [pf.tensor(g, dtype=o.dtype).to(where) for g, o in zip(gvs, outs)]
        pf.autograd.backward(list(outs), gs)
        grads[where] = [x.grad, y.grad]
    for gc, gd in zip(grads["cpu"], grads["cuda"]):
        if gc is None:
            assert gd is None
        else:
            assert_close(gd, gc, "d%s" % name)
