"""Reductions and scans on CUDA (csrc/cuda/reduce.cu, routed from csrc/reduce.c).

Two groups:

* On every machine (CI has no GPU): ``_C._cuda_host_reduce(name, ...)`` runs a
  reduction on CPU tensors with each of its passes done by libpyframe_cuda.so's
  host self-test -- the device kernels' own init/push/combine/finish functions
  in a plain loop -- while parsing, dtypes, shapes and the passes of
  multi-pass ops stay reduce.c's.  It must agree with the cpu path (itself
  checked against NumPy float64 in test_reduce.py) for every op, every dtype,
  five layouts, every axis form, dtype=, ddof, norm orders, NaN, ties and
  empty reductions, and with NumPy float64 directly for the sums.
* With a GPU (skipped elsewhere, naming the reason): the same ops on device
  tensors against the cpu, at sizes that reach each kernel (a thread per
  output, the column kernel, a block per output, segmented rows), and
  gradients, including sum-to-shape in the backward of a broadcasting op.

Tolerances.  Integer results, max/min, all/any, argmax/argmin (ties go to the
first index whatever the combining tree) and the scans of short lines (one
thread runs a line in order, as the cpu does) must be equal; long lines are
scanned in chunks, whose float sums are held to the tolerance below.  Float sums are added in
another order than the cpu's blocked pairwise order: the host self-test in
order, the device in a tree.  Both accumulate float16/bfloat16/float32 in
float32, so the allowed error is RTOL of the result dtype times the size of
what was summed (sum |x| for sums, the mean square for variances), plus
RTOL of |result|: float64 1e-12, float32 2e-5 (n eps for the n <= 10^5 of
the GPU tests), float16 2e-3 and bfloat16 1e-2 (one rounding to the result).
"""
import warnings

import numpy as np
import pytest

import pyframe as pf
from pyframe import _C
from helpers_core import np_dtype
from test_reduce import make_input

FLOATS = ["float16", "bfloat16", "float32", "float64"]
INTS = ["uint8", "int8", "int16", "int32", "int64"]
ALL = ["bool"] + INTS + FLOATS
LAYOUTS = ["contiguous", "transposed", "reversed", "stepped", "broadcast"]
RTOL = {"float16": 2e-3, "bfloat16": 1e-2, "float32": 2e-5, "float64": 1e-12}

REDUCTIONS = ["sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "std",
              "logsumexp", "norm", "all", "any"]
SCANS = ["cumsum", "cumprod"]
# results that must match bit for bit whatever the order of combining
EXACT = {"max", "min", "argmax", "argmin", "all", "any", "cumsum", "cumprod"}  # (short scans)

CUDA = pf.cuda.is_available()
gpu = pytest.mark.skipif(not CUDA, reason="needs a usable CUDA GPU; here: " + pf.cuda.status())


def host(name, *args, **kw):
    return _C._cuda_host_reduce(name, *args, **kw)


def as64(t):
    a = np.asarray(t)
    if a.dtype.kind == "f" or a.dtype.name == "bfloat16":
        return a.astype(np.float64)
    return a


def scale_of(op, x64, kw):
    """The size of what `op` adds up, per output (see the module docstring)."""
    axis, keepdims = kw.get("axis"), kw.get("keepdims", False)
    if x64.ndim == 0:
        axis = None
    ax = axis
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the mean of an empty slice
        ab = np.abs(np.nan_to_num(x64, nan=0.0, posinf=0.0, neginf=0.0))
        if op in ("sum", "norm"):
            return np.sum(ab if op == "sum" else ab * ab, axis=ax, keepdims=keepdims) ** (
                1 if op == "sum" else 0.5)
        if op in ("mean", "logsumexp"):
            return np.mean(ab, axis=ax, keepdims=keepdims) if op == "mean" else 1.0
        if op in ("var", "std"):
            ms = np.mean(ab * ab, axis=ax, keepdims=keepdims)
            return ms if op == "var" else np.sqrt(ms)
    return 0.0


def assert_agrees(op, got, want, x64, kw):
    """got (the CUDA code) against want (the cpu path), per the module's tolerances."""
    assert got.dtype == want.dtype and got.shape == want.shape, (got, want)
    g, w = as64(got), as64(want)
    if op in EXACT or w.dtype.kind in "biu":
        np.testing.assert_array_equal(g, w)
        return
    np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
    inf = np.isinf(w)
    np.testing.assert_array_equal(g[inf], w[inf])
    rtol = RTOL[str(want.dtype)]
    if op == "prod":
        # a product's rounding errors are relative: n roundings of eps each
        bound = rtol * np.abs(w)
    else:
        scale = np.broadcast_to(np.asarray(scale_of(op, x64, kw), dtype=np.float64), w.shape)
        bound = rtol * (np.abs(w) + scale)
    fin = np.isfinite(w)
    with np.errstate(invalid="ignore"):
        err = np.abs(g - w)
    assert (err[fin] <= bound[fin]).all(), (op, kw, g, w)


def both(name, t, **kw):
    """(cpu result or exception, host self-test result or exception)."""
    out = []
    for fn in (getattr(pf, name), lambda *a, **k: host(name, *a, **k)):
        try:
            out.append(fn(t, **kw))
        except Exception as e:   # compared below: the same type and message
            out.append(e)
    return out


def check(name, a, t, **kw):
    want, got = both(name, t, **kw)
    if isinstance(want, Exception):
        assert type(got) is type(want) and str(got) == str(want), (want, got)
        return
    assert not isinstance(got, Exception), got
    assert_agrees(name, got, want, a.astype(np.float64), kw)


def axis_forms(ndim, single):
    forms = [None]
    if ndim >= 1:
        forms += [0, -1]
    if ndim >= 2 and not single:
        forms += [(0, ndim - 1), (1,), ()]
    return forms


# ------------------------------------------------------ host self-test (no GPU)

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_host_reduction_matches_the_cpu(name, dtype, layout):
    single = name in ("argmax", "argmin")
    for shape in [(3, 4, 5), (6,), (), (2, 0, 3), (1, 7)]:
        a, t = make_input(shape, dtype, layout, seed=len(shape) * 7 + len(name),
                          kind="prod" if name == "prod" else "normal")
        for axis in axis_forms(len(shape), single):
            for keepdims in (False, True):
                check(name, a, t, axis=axis, keepdims=keepdims)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("name", SCANS)
def test_host_scan_matches_the_cpu(name, dtype, layout):
    for shape in [(3, 4, 5), (9,), (), (2, 0)]:
        a, t = make_input(shape, dtype, layout, seed=3, kind="prod" if name == "cumprod"
                          else "normal")
        for axis in [None] + list(range(-len(shape), len(shape))):
            check(name, a, t, axis=axis)


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "int32", "bool"])
def test_host_long_scans_in_chunks(dtype):
    """Lines of n >= 2048 (few of them) are scanned in chunks of 256: chunk totals, their
    exclusive scan, then each chunk again from its start.  Integers (and bool, as int64)
    stay exact; float partial sums are added in another order than the cpu's, so they are
    held to RTOL times the running sum of |x|."""
    rng = np.random.default_rng(12)
    for shape, axis in [((5000,), None), ((3, 2049), 1), ((2, 2600, 3), 1), ((4100, 2), 0)]:
        a, t = make_input(shape, dtype, "contiguous", seed=sum(shape))
        for name in SCANS:
            if name == "cumprod" and dtype not in ("bool",):
                x = (rng.uniform(0.999, 1.001, shape) if dtype not in ("int32",)
                     else rng.integers(1, 2, shape)).astype(np_dtype(dtype))
                a, t = x, pf.tensor(x)
            want, got = getattr(pf, name)(t, axis=axis), host(name, t, axis=axis)
            assert got.dtype == want.dtype and got.shape == want.shape
            g, w = as64(got), as64(want)
            if w.dtype.kind in "iub":
                np.testing.assert_array_equal(g, w)
                continue
            a64 = np.abs(a.astype(np.float64))
            flat = a64.reshape(-1) if axis is None else a64
            run = (np.cumsum(flat, axis=0 if axis is None else axis) if name == "cumsum"
                   else np.abs(w))
            bound = RTOL[str(want.dtype)] * (np.abs(w) + run)
            assert (np.abs(g - w) <= bound).all(), (name, shape, np.abs(g - w).max())


@pytest.mark.parametrize("dtype", ALL)
def test_host_dtype_argument(dtype):
    a, t = make_input((4, 6), dtype, "transposed", seed=11)
    for name in ("sum", "prod", "cumsum", "cumprod"):
        for out in ("int32", "int64", "float16", "bfloat16", "float32", "float64"):
            check(name, a, t, axis=0, dtype=getattr(pf, out))
    for out in FLOATS:
        check("mean", a, t, axis=1, dtype=getattr(pf, out))


def test_host_ddof_and_norm_orders():
    for dtype in ("float32", "float64", "bfloat16", "int16"):
        a, t = make_input((5, 3, 4), dtype, "stepped", seed=5)
        for name in ("var", "std"):
            for kw in ({"ddof": 0}, {"ddof": 1}, {"ddof": 4}, {"ddof": 9}, {"correction": 2},
                       {"unbiased": False}):
                check(name, a, t, axis=(0, 2), **kw)
        for ord_ in (None, "fro", 1, 2, 3, 0.5, 0, float("inf"), float("-inf"), -1.5):
            check("norm", a, t, ord=ord_, axis=1)
            check("norm", a, t, ord=ord_)


def test_host_nan_inf_and_ties():
    x = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 5.0, 5.0, -1.0],
                  [np.inf, -np.inf, 0.0, 1.0], [-0.0, 0.0, -0.0, 0.0]], np.float32)
    for dtype in ("float16", "bfloat16", "float32", "float64"):
        t = pf.tensor(x.astype(np_dtype(dtype)))
        for name in REDUCTIONS:
            for axis in (None, 0, 1):
                check(name, x, t, axis=axis)
        # NaN wins max/min and its first position wins argmax/argmin
        assert host("argmax", t, axis=1).tolist() == pf.argmax(t, axis=1).tolist()
        assert host("argmax", t, axis=1).tolist()[:2] == [1, 1]
        assert np.isnan(as64(host("max", t, axis=1))[0])
    ties = pf.tensor(np.array([[3, 1, 3, 3], [0, 0, -2, -2]], np.int8))
    assert host("argmax", ties, axis=1).tolist() == [0, 0]
    assert host("argmin", ties, axis=1).tolist() == [1, 2]


def test_host_integer_sums_wrap_as_on_the_cpu():
    big = pf.tensor(np.array([2**62, 2**62, 2**62, 7], np.int64))
    assert host("sum", big).item() == pf.sum(big).item() == int(
        np.sum(np.array([2**62] * 3 + [7], np.int64)))
    assert host("prod", big).item() == pf.prod(big).item()
    small = pf.tensor(np.full(300, 100, np.int8))
    assert host("sum", small).dtype == pf.int64 and host("sum", small).item() == 30000


def test_host_sums_against_numpy_float64():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(37, 53)).astype(np.float32)
    t = pf.tensor(x)
    x64 = x.astype(np.float64)
    for axis in (None, 0, 1):
        s = as64(host("sum", t, axis=axis))
        np.testing.assert_allclose(s, np.sum(x64, axis=axis), rtol=0,
                                   atol=2e-5 * np.sum(np.abs(x64), axis=axis).max())
        v = as64(host("var", t, axis=axis, ddof=1))
        np.testing.assert_allclose(v, np.var(x64, axis=axis, ddof=1), rtol=2e-5)
        lse = as64(host("logsumexp", t, axis=axis))
        m = np.max(x64, axis=axis, keepdims=True)
        want = np.log(np.sum(np.exp(x64 - m), axis=axis)) + np.squeeze(m, axis=axis)
        np.testing.assert_allclose(lse, want, rtol=2e-6)


def test_host_out_argument():
    t = pf.tensor(np.arange(12, dtype=np.float32).reshape(3, 4))
    out = pf.zeros(4, dtype=pf.float64)
    r = host("sum", t, axis=0, out=out)
    assert r is out and out.tolist() == [12.0, 15.0, 18.0, 21.0]


def test_host_errors_name_the_op():
    t = pf.tensor(np.zeros((2, 0), np.float32))
    with pytest.raises(ValueError, match=r"^max: the reduced axis is empty \(input shape "
                                         r"\(2, 0\), reducing axes \(1,\)\)"):
        host("max", t, axis=1)
    with pytest.raises(ValueError, match=r"^_cuda_host_reduce: softmax is not a reduction or "
                                         r"scan with a CUDA kernel; expected one of sum"):
        host("softmax", t)
    with pytest.raises(TypeError, match=r"^_cuda_host_reduce: the first argument must be the "
                                        r"name of a reduction or scan \(a str\)"):
        _C._cuda_host_reduce(t)


def test_library_registers_every_dtype():
    if _C._cuda_status()["kind"] == "not built":
        pytest.skip("libpyframe_cuda.so was not built here (no nvcc)")
    kernels = _C._cuda_kernel_dtypes()
    for name in REDUCTIONS + SCANS:
        assert sorted(kernels[name]) == sorted(ALL), name


# ------------------------------------------------------------ on a GPU

def dev(a):
    return pf.tensor(a).to("cuda")


# shapes and axes that reach each kernel: (shape, axis)
KERNEL_CASES = [
    ((1000, 7), 1),           # a thread per output (n <= 32)
    ((3000, 300), 0),         # columns: contiguous outputs, strided reduced axis
    ((200000, 4), 0),         # columns, segmented: few outputs over a long region
    ((500, 2000), 1),         # a block per output
    ((3, 200000), 1),         # segmented rows, then the segment states combined
    ((64, 33, 40), (0, 2)),   # two reduced dims, kept dim in the middle
    ((100000,), None),        # everything into one output, segmented
]


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int32",
                                   "int64", "uint8", "bool"])
@pytest.mark.parametrize("shape,axis", KERNEL_CASES)
def test_gpu_reductions_match_the_cpu(shape, axis, dtype):
    rng = np.random.default_rng(1)
    if dtype == "bool":
        x = rng.integers(0, 2, shape).astype(bool)
    elif dtype in INTS:
        x = rng.integers(0, 5, shape).astype(dtype)
    else:
        x = rng.normal(size=shape).astype(np_dtype(dtype))
    c, d = pf.tensor(x), dev(x)
    for name in REDUCTIONS:
        if name in ("argmax", "argmin") and isinstance(axis, tuple):
            continue
        if name == "prod" and dtype not in INTS + ["bool"]:
            continue   # a long product of normals under/overflows: checked on small shapes
        want = getattr(pf, name)(c, axis=axis)
        got = getattr(pf, name)(d, axis=axis)
        assert got.device == "cuda:0"
        assert_agrees(name, got.cpu(), want, x.astype(np.float64), {"axis": axis})


def views(x, t, layout):
    """The same view of NumPy array x and tensor t (any device), as test_reduce's layouts."""
    nd = x.ndim
    if layout == "transposed":
        return x.T, t.T
    if layout == "reversed":
        key = tuple(slice(None, None, -1) for _ in range(nd))
        return x[key], t[key]
    if layout == "stepped":
        key = tuple(slice(None, None, 2) for _ in range(nd))
        return x[key], t[key]
    if layout == "broadcast":
        shape = (4,) + x.shape[1:]
        return np.broadcast_to(x[:1], shape), t[:1].expand(*shape)
    return x, t


@gpu
@pytest.mark.parametrize("dtype", ALL)
def test_gpu_all_ops_all_dtypes_small(dtype):
    """Every op and dtype on device views (taken on the device) of five layouts."""
    for layout in LAYOUTS:
        base, _ = make_input((6, 8, 7), dtype, "contiguous", seed=9)
        a, d = views(base, pf.tensor(base).to("cuda"), layout)
        _, c = views(base, pf.tensor(base), layout)
        for name in REDUCTIONS + SCANS:
            for axis in ([None, 0, -1] if name in SCANS + ["argmax", "argmin"]
                         else [None, 0, (1, 2), -1]):
                want, _ = both(name, c, axis=axis)
                if isinstance(want, Exception):
                    with pytest.raises(type(want)):
                        getattr(pf, name)(d, axis=axis)
                    continue
                g = getattr(pf, name)(d, axis=axis)
                assert g.device == "cuda:0"
                assert_agrees(name, g.cpu(), want, np.asarray(a).astype(np.float64),
                              {"axis": axis})


@gpu
def test_gpu_nan_ties_and_empty():
    x = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 5.0, 5.0, -1.0]], np.float32)
    d = dev(x)
    assert pf.argmax(d, axis=1).cpu().tolist() == [1, 1]
    assert np.isnan(pf.max(d, axis=1).cpu().tolist()[0])
    assert np.isnan(pf.sum(d, axis=1).cpu().tolist()[0])
    big = np.zeros(300000, np.float32)
    big[[12345, 200000, 299999]] = 7.0
    assert pf.argmax(dev(big)).item() == 12345       # first of the ties, across segments
    e = dev(np.zeros((3, 0), np.float32))
    assert pf.sum(e, axis=1).cpu().tolist() == [0.0, 0.0, 0.0]
    assert pf.prod(e, axis=1).cpu().tolist() == [1.0, 1.0, 1.0]
    assert all(np.isnan(v) for v in pf.mean(e, axis=1).cpu().tolist())
    with pytest.raises(ValueError, match=r"^max: the reduced axis is empty"):
        pf.max(e, axis=1)


@gpu
def test_gpu_gradients_match_the_cpu():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 5)).astype(np.float32)
    for name, kw in [("sum", {"axis": 0}), ("mean", {"axis": 1}), ("max", {"axis": 1}),
                     ("var", {"axis": 0, "ddof": 1}), ("std", {}), ("logsumexp", {"axis": 1}),
                     ("norm", {"axis": 0}), ("prod", {"axis": 1}), ("cumsum", {"axis": 1})]:
        grads = []
        for device in ("cpu", "cuda"):
            t = pf.tensor(x).to(device).requires_grad_()
            getattr(pf, name)(t, **kw).sum().backward()
            grads.append(np.asarray(t.grad.cpu()))
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6, err_msg=name)


@gpu
def test_gpu_sum_to_shape_in_broadcast_backward():
    """The backward of a broadcasting op sums the gradient to each input's shape."""
    rng = np.random.default_rng(3)
    a = rng.normal(size=(4, 1, 3)).astype(np.float32)
    b = rng.normal(size=(5, 1)).astype(np.float32)
    grads = []
    for device in ("cpu", "cuda"):
        ta = pf.tensor(a).to(device).requires_grad_()
        tb = pf.tensor(b).to(device).requires_grad_()
        (ta * tb).sum().backward()
        assert ta.grad.device == device if device == "cpu" else ta.grad.device == "cuda:0"
        grads.append((np.asarray(ta.grad.cpu()), np.asarray(tb.grad.cpu())))
    for g_dev, g_cpu in zip(grads[1], grads[0]):
        np.testing.assert_allclose(g_dev, g_cpu, rtol=1e-5, atol=1e-6)


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_gpu_scans_short_and_long_lines(dtype):
    """Short lines (a thread each, exact) and long ones (chunked) against the cpu."""
    rng = np.random.default_rng(13)
    for shape, axis in [((1 << 20,), None), ((3, 100000), 1), ((50000, 3), 0), ((4000, 7), 1)]:
        x = (rng.integers(-3, 4, shape) if dtype == "int32" else
             rng.normal(size=shape)).astype(dtype)
        want = pf.cumsum(pf.tensor(x), axis=axis)
        got = pf.cumsum(pf.tensor(x).to("cuda"), axis=axis).cpu()
        assert got.dtype == want.dtype and got.shape == want.shape
        g, w = as64(got), as64(want)
        n = x.size if axis is None else x.shape[axis]
        if dtype == "int32" or n < 2048:
            np.testing.assert_array_equal(g, w)
            continue
        ab = np.abs(x.astype(np.float64))
        run = np.cumsum(ab.reshape(-1) if axis is None else ab, axis=0 if axis is None else axis)
        assert (np.abs(g - w) <= RTOL[dtype] * (np.abs(w) + run)).all()
