"""The CUDA path of the gathering, scattering and indexing ops (csrc/cuda/gather.cu,
csrc/gather_cuda.c; docs/architecture.md, "CUDA backend: gathers, scatters, indexing").

Two groups:

* Host self-test (any machine with the CUDA library built, CI included): ``_C._cuda_host_run``
  routes cpu tensors through the library's host path, which runs the kernels' own
  per-element functors in plain loops.  Every op, every dtype, every index dtype and the
  bounds errors are compared with the cpu backend (itself checked against NumPy and PyTorch
  in test_gather.py), and with NumPy directly where it is the oracle.
* With a GPU (skipped here with pf.cuda's reason): device values and gradients against the
  cpu backend.  Tolerances: every op is a copy and matches bit for bit, except scatter_add,
  whose float atomics add in an order the hardware picks: float64 1e-12, float32 1e-5,
  float16 1e-2, bfloat16 2e-2 (relative, on sums of a few terms of magnitude <= 4); integer
  sums are exact.  A scatter (or x[idx] = v) with repeated positions keeps one of the
  values on a GPU, not necessarily the last, so those tests use distinct positions.
"""
import gc
import re
import sys

import numpy as np
import pytest

import pyframe as pf
from pyframe import _C

BUILT = _C._cuda_status()["kind"] != "not built"
needs_lib = pytest.mark.skipif(not BUILT, reason="libpyframe_cuda.so was not built here (no nvcc)")
CUDA = pf.cuda.is_available()
gpu = pytest.mark.skipif(not CUDA, reason="needs a usable CUDA GPU; here: " + pf.cuda.status())

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
          "float64"]
INDEX_DTYPES = ["uint8", "int8", "int16", "int32", "int64"]
H = _C._cuda_host_run if BUILT else None


@pytest.fixture(autouse=True, scope="module")
def _collect_at_the_end():
    """The bounds tests keep tracebacks (frames holding tensors) in reference cycles: free
    them here, so that later tests counting live storages start from a clean slate."""
    yield
    gc.collect()


def values(shape, dtype, rng):
    """Random values of `dtype` with ties; floats include NaN, -0.0 and infinities."""
    n = int(np.prod(shape))
    if dtype == "bool":
        v = rng.integers(0, 2, n).astype(bool)
    elif dtype == "uint8":
        v = rng.integers(0, 256, n).astype(np.uint8)
    elif dtype.startswith("int"):
        v = rng.integers(-100, 100, n).astype(dtype)
    else:
        v = rng.integers(-8, 9, n) / 4.0
        for s in (np.nan, -0.0, np.inf, -np.inf):
            v[rng.random(n) < 0.05] = s
    return pf.tensor(v.reshape(shape)).astype(getattr(pf, dtype))


def host(t):
    """Values as float64 NumPy (exact for every dtype but int64 beyond 2**53, unused here)."""
    return np.asarray(t.cpu().astype(pf.float64))


def bits_equal(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    x, y = host(a), host(b)
    assert np.array_equal(x, y, equal_nan=True), (x, y)
    # -0.0 stays -0.0: compare the sign bits too
    assert np.array_equal(np.signbit(x), np.signbit(y))


def via_library(fn, *args, **kwargs):
    """fn(*args, **kwargs) through the library's host path, which must be taken."""
    before = _C._cuda_host_routes()
    r = H(fn, *args, **kwargs)
    assert _C._cuda_host_routes() > before, "the call never reached the CUDA library"
    return r


# ================================================================ host self-test

@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("idt", ["int64", "int8", "uint8"])
def test_host_take_along_axis_and_gather(dtype, idt):
    rng = np.random.default_rng(1)
    x = values((4, 5, 3), dtype, rng)
    lo = 0 if idt == "uint8" else -5
    i = pf.tensor(rng.integers(lo, 5, (4, 7, 3))).astype(getattr(pf, idt))
    for axis in (1, -2):
        bits_equal(via_library(pf.take_along_axis, x, i, axis=axis),
                   pf.take_along_axis(x, i, axis=axis))
    # the oracle itself: NumPy on the same indices
    want = np.take_along_axis(host(x), np.asarray(i.astype(pf.int64)), axis=1)
    assert np.array_equal(host(via_library(pf.take_along_axis, x, i, axis=1)), want,
                          equal_nan=True)
    j = i[:3, :2, :]                               # PyTorch's gather: index no longer than x
    bits_equal(via_library(pf.gather, x.T, 1, j.T), pf.gather(x.T, 1, j.T))
    bits_equal(via_library(pf.take_along_axis, x, i[:, :, :1], axis=1),   # broadcast off the axis
               pf.take_along_axis(x, i[:, :, :1], axis=1))
    bits_equal(via_library(pf.take_along_axis, x.reshape(-1)[::-2], i[0, :, 0], axis=None),
               pf.take_along_axis(x.reshape(-1)[::-2], i[0, :, 0], axis=None))


@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
def test_host_scatter_and_put_along_axis(dtype):
    rng = np.random.default_rng(2)
    x = values((4, 6), dtype, rng)
    i = pf.tensor(rng.integers(-6, 6, (4, 5)))
    src = values((4, 5), dtype, rng)
    for fn in (pf.scatter, pf.scatter_add):
        bits_equal(via_library(fn, x, 1, i, src), fn(x, 1, i, src))
        i0 = pf.tensor(rng.integers(-4, 4, (3, 4))).T                 # transposed index
        bits_equal(via_library(fn, x, 0, i0, src.T), fn(x, 0, i0, src.T))
        bits_equal(via_library(fn, x, 1, i, 1), fn(x, 1, i, 1))          # a number
    a, b = x.clone(), x.clone()
    via_library(a.scatter_add_, 1, i, src)
    b.scatter_add_(1, i, src)
    bits_equal(a, b)
    a, b = x.clone(), x.clone()
    via_library(pf.put_along_axis, a, i, src[:, :1], 1)             # broadcast values
    pf.put_along_axis(b, i, src[:, :1], 1)
    bits_equal(a, b)
    a, b = x.clone().T, x.clone().T                                  # axis=None, non-contiguous
    via_library(pf.put_along_axis, a, pf.tensor([0, 23, -1, 5]), 7, None)
    pf.put_along_axis(b, pf.tensor([0, 23, -1, 5]), 7, None)
    bits_equal(a, b)


@needs_lib
@pytest.mark.parametrize("dtype", ["int32", "int64", "float64", "uint8"])
def test_host_scatter_add_against_numpy_add_at(dtype):
    rng = np.random.default_rng(3)
    x = values((3, 8), dtype, rng)
    if dtype == "float64":
        x = pf.tensor(rng.normal(size=(3, 8)))
    i = rng.integers(0, 8, (3, 20))
    s = pf.tensor(rng.integers(0, 50, (3, 20))).astype(x.dtype)
    want = np.asarray(x).copy()
    for r in range(3):
        np.add.at(want[r], i[r], np.asarray(s)[r])
    got = np.asarray(via_library(pf.scatter_add, x, 1, pf.tensor(i), s))
    assert np.array_equal(got, want) if dtype != "float64" else np.allclose(got, want, 0, 1e-12)


@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("idt", INDEX_DTYPES)
def test_host_index_select_and_take(dtype, idt):
    rng = np.random.default_rng(4)
    x = values((5, 6), dtype, rng)
    lo = 0 if idt == "uint8" else -6
    i = pf.tensor(rng.integers(lo, 6, 9)).astype(getattr(pf, idt))
    bits_equal(via_library(pf.index_select, x, 1, i), pf.index_select(x, 1, i))
    bits_equal(via_library(pf.index_select, x.T, 0, i[::2]), pf.index_select(x.T, 0, i[::2]))
    k = pf.tensor(rng.integers(0, 30, (2, 3))).astype(getattr(pf, idt))
    bits_equal(via_library(pf.take, x, k), pf.take(x, k))
    big = pf.tensor([-40, -7, 0, 29, 31, 100])
    for mode in ("wrap", "clip"):
        bits_equal(via_library(pf.take, x, big, mode=mode), pf.take(x, big, mode=mode))
        bits_equal(via_library(pf.take, x, big, axis=1, mode=mode),
                   pf.take(x, big, axis=1, mode=mode))
    want = np.take(host(x), np.asarray(big), mode="clip")
    assert np.array_equal(host(via_library(pf.take, x, big, mode="clip")), want, equal_nan=True)


@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
def test_host_getitem_and_setitem(dtype):
    rng = np.random.default_rng(5)
    x = values((4, 5, 3), dtype, rng)
    mask = pf.tensor(rng.random((4, 5)) < 0.4)
    keys = [
        [1, -1, 2],
        (slice(None), [0, 4, 4]),
        ([[0], [3]], slice(1, None), [2, 0, 1, 1]),        # split advanced items: B first
        (mask,),
        (mask, 1),
        (Ellipsis, pf.tensor([2, 0]).astype(pf.int16)),
        (None, [True, False, True, True]),
        (1, mask[1]),
        (slice(None, None, -1), pf.tensor([[1, 2], [3, 0]])),
    ]
    for key in keys:
        bits_equal(via_library(lambda: x[key]), x[key])
    for key in keys[:3] + keys[4:]:                # distinct positions where written
        def write(t, key=key):
            t = t.clone()
            v = t[key]
            t[key] = values(tuple(v.shape), dtype, np.random.default_rng(6))
            return t

        bits_equal(via_library(write, x), write(x))

    def write_scalar(t):
        t = t.clone()
        t[mask] = 1
        t[[0, 2], :, [1, 0]] = 0
        return t

    bits_equal(via_library(write_scalar, x), write_scalar(x))


@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
def test_host_nonzero_argwhere_masked_fill(dtype):
    rng = np.random.default_rng(7)
    for shape in [(0,), (7,), (3, 4), (2, 3, 5), (5000,)]:       # 5000: two chunks
        x = values(shape, dtype, rng)
        bits_equal(via_library(pf.argwhere, x), pf.argwhere(x))
        for a, b in zip(via_library(pf.nonzero, x), pf.nonzero(x)):
            bits_equal(a, b)
        want = np.argwhere(host(x) != 0)                         # -0.0 is zero, NaN is not
        assert np.array_equal(np.asarray(via_library(pf.argwhere, x)), want)
    x = values((3, 4), dtype, rng)
    bits_equal(via_library(pf.argwhere, x.T), pf.argwhere(x.T))
    bits_equal(via_library(pf.argwhere, x[0, 0]), pf.argwhere(x[0, 0]))      # 0-d
    mask = pf.tensor(rng.random((1, 4)) < 0.5)
    for value in (2, -1.5, True):
        if dtype == "bool" or not (dtype.startswith("int") or dtype == "uint8") or \
                isinstance(value, int):
            bits_equal(via_library(pf.masked_fill, x.T, mask.T, value),
                       pf.masked_fill(x.T, mask.T, value))
    a, b = x.clone(), x.clone()
    via_library(a.masked_fill_, mask, 0)
    b.masked_fill_(mask, 0)
    bits_equal(a, b)


@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("idt", INDEX_DTYPES)
def test_host_one_hot(dtype, idt):
    rng = np.random.default_rng(8)
    i = pf.tensor(rng.integers(0, 5, (3, 4))).astype(getattr(pf, idt))
    for axis in (-1, 0, 1):
        bits_equal(via_library(pf.one_hot, i.T, 5, axis=axis, dtype=getattr(pf, dtype)),
                   pf.one_hot(i.T, 5, axis=axis, dtype=getattr(pf, dtype)))
    want = np.eye(5)[np.asarray(i.astype(pf.int64))]
    assert np.array_equal(host(via_library(pf.one_hot, i, 5)), want)
    b = pf.tensor([[True, False, True]])                    # bool class indices: 0 and 1
    bits_equal(via_library(pf.one_hot, b, 2, dtype=getattr(pf, dtype)),
               pf.one_hot(b, 2, dtype=getattr(pf, dtype)))


@needs_lib
def test_host_bounds_errors_match_the_cpu():
    """The first bad index in row-major order, named with the op, as the cpu's serial loop."""
    x = pf.arange(24.0).reshape(4, 6)
    src = pf.ones((4, 2))
    cases = [
        (lambda: pf.take_along_axis(x, pf.tensor([[0, 6], [1, 1], [-9, 0], [0, 0]]), axis=1),
         "take_along_axis: index 6 is out of bounds for axis 1 with size 6"),
        (lambda: pf.gather(x, 0, pf.tensor([[0, 1], [4, -5]]).astype(pf.int8)),
         "gather: index 4 is out of bounds for axis 0 with size 4"),
        (lambda: pf.scatter_add(x, 1, pf.tensor([[0, 1], [2, 2], [1, -7], [9, 0]]), src),
         "scatter_add: index -7 is out of bounds for axis 1 with size 6"),
        (lambda: pf.scatter(x, 1, pf.tensor([[0, 1], [2, 2], [1, 0], [0, 6]]), 1.0),
         "scatter: index 6 is out of bounds for axis 1 with size 6"),
        (lambda: pf.index_select(x, 0, pf.tensor([1, 4, 9]).astype(pf.int32)),
         "index_select: index 4 is out of bounds for axis 0 with size 4"),
        (lambda: pf.take(x, pf.tensor([3, -25])),
         "take: index -25 is out of bounds for axis 0 with size 24"),
        (lambda: x[[0, 1], [2, 6]],
         "Tensor.__getitem__: index 6 is out of bounds for axis 1 with size 6"),
        (lambda: x.__setitem__(([5, 0],), 1.0),
         "Tensor.__setitem__: index 5 is out of bounds for axis 0 with size 4"),
        (lambda: pf.one_hot(pf.tensor([[0, 1], [5, 2]]), 5),
         "one_hot: index 5 at position (1, 0) is out of range for num_classes=5; every index "
         "must be in [0, 5)"),
    ]
    for fn, msg in cases:
        for run in (fn, lambda fn=fn: via_library(fn)):
            with pytest.raises(IndexError, match="^" + re.escape(msg) + "$"):
                run()


@needs_lib
def test_host_scatter_writes_nothing_when_an_index_is_bad():
    x = pf.zeros((2, 3))
    with pytest.raises(IndexError, match=r"^scatter_: index 3 is out of bounds"):
        via_library(x.scatter_, 1, pf.tensor([[0, 1], [2, 3]]), 5.0)
    assert np.array_equal(np.asarray(x), np.zeros((2, 3)))


@needs_lib
def test_host_run_validates_and_restores():
    with pytest.raises(TypeError, match=r"^_cuda_host_run: the first argument must be a "
                                        r"callable"):
        _C._cuda_host_run(3)
    with pytest.raises(ZeroDivisionError):
        _C._cuda_host_run(lambda: 1 / 0)
    # afterwards the cpu path runs again: the cpu keeps the last of repeated writes
    x = pf.zeros(3)
    x[[0, 0, 0]] = pf.tensor([1.0, 2.0, 3.0])
    assert x.tolist() == [3.0, 0.0, 0.0]


@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
def test_host_sort_argsort_topk(dtype):
    rng = np.random.default_rng(9)
    for shape in [(1,), (7,), (3, 17), (4, 5, 33), (2, 300)]:
        x = values(shape, dtype, rng)
        for axis in range(-1, -len(shape) - 1, -1):
            for desc in (False, True):
                bits_equal(via_library(pf.sort, x, axis=axis, descending=desc),
                           pf.sort(x, axis=axis, descending=desc))
                bits_equal(via_library(pf.argsort, x, axis=axis, descending=desc),
                           pf.argsort(x, axis=axis, descending=desc))
        # the oracle: NumPy's stable argsort (NaN last, -0.0 tied with 0.0)
        want = np.argsort(host(x), axis=-1, kind="stable")
        assert np.array_equal(np.asarray(via_library(pf.argsort, x)), want)
        k = min(3, shape[-1])
        for largest in (True, False):
            for a, b in zip(via_library(pf.topk, x, k, largest=largest),
                            pf.topk(x, k, largest=largest)):
                bits_equal(a, b)
    x = values((6, 5), dtype, rng)
    bits_equal(via_library(pf.sort, x.T[::-1], axis=0), pf.sort(x.T[::-1], axis=0))
    bits_equal(via_library(pf.argsort, x, axis=None), pf.argsort(x, axis=None))
    bits_equal(via_library(pf.sort, x[0, 0], axis=None), pf.sort(x[0, 0], axis=None))  # 0-d


@needs_lib
@pytest.mark.parametrize("dtype", ["int8", "int32", "float16", "bfloat16", "float32",
                                   "float64"])
def test_host_searchsorted(dtype):
    rng = np.random.default_rng(14)
    a = pf.sort(values((40,), dtype, rng))
    v = values((3, 7), dtype, rng)
    for right in (False, True):
        bits_equal(via_library(pf.searchsorted, a, v, right=right),
                   pf.searchsorted(a, v, right=right))
        want = np.searchsorted(host(a), host(v), side="right" if right else "left")
        assert np.array_equal(np.asarray(via_library(pf.searchsorted, a, v, right=right)), want)
    rows = pf.sort(values((3, 20), dtype, rng), axis=1)
    bits_equal(via_library(pf.searchsorted, rows, v), pf.searchsorted(rows, v))
    perm = pf.tensor(rng.permutation(40))
    shuffled = a[perm]
    order = pf.argsort(shuffled)
    bits_equal(via_library(pf.searchsorted, shuffled, v, sorter=order),
               pf.searchsorted(shuffled, v, sorter=order))


@needs_lib
@pytest.mark.parametrize("dtype", DTYPES)
def test_host_unique(dtype):
    rng = np.random.default_rng(16)
    for shape in [(0,), (1,), (9,), (4, 7), (3000,)]:
        x = values(shape, dtype, rng)
        for equal_nan in (True, False):
            kw = dict(return_index=True, return_inverse=True, return_counts=True,
                      equal_nan=equal_nan)
            got, want = via_library(pf.unique, x, **kw), pf.unique(x, **kw)
            for a, b in zip(got, want):
                bits_equal(a, b)
        bits_equal(via_library(pf.unique, x.T), pf.unique(x.T))
        # NumPy's unique on the values (NaNs as one, -0.0 with 0.0)
        vals, counts = np.unique(host(x), return_counts=True, equal_nan=True)
        g = via_library(pf.unique, x, return_counts=True)
        assert np.array_equal(host(g[0]), vals, equal_nan=True)
        assert np.array_equal(np.asarray(g[1]), counts)


# ================================================================ on a GPU

def dev(t):
    return t.to("cuda")


SCATTER_ADD_RTOL = {"float64": 1e-12, "float32": 1e-5, "float16": 1e-2, "bfloat16": 2e-2}


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_gathers_match_the_cpu(dtype):
    rng = np.random.default_rng(10)
    x = values((6, 7, 5), dtype, rng)
    i = pf.tensor(rng.integers(-7, 7, (6, 9, 5))).astype(pf.int32)
    d = dev(x)
    bits_equal(pf.take_along_axis(d, dev(i), axis=1), pf.take_along_axis(x, i, axis=1))
    bits_equal(pf.gather(d.T, 1, dev(i[:4, :3].T)), pf.gather(x.T, 1, i[:4, :3].T))
    j = pf.tensor(rng.integers(-5, 5, 11))
    bits_equal(pf.index_select(d, 2, dev(j)), pf.index_select(x, 2, j))
    bits_equal(pf.take(d, dev(j * 20), mode="wrap"), pf.take(x, j * 20, mode="wrap"))
    mask = x != 0 if dtype != "bool" else x
    bits_equal(d[dev(mask)], x[mask])
    bits_equal(d[[0, -1], :, dev(j[:2])], x[[0, -1], :, j[:2]])
    bits_equal(pf.argwhere(d), pf.argwhere(x))
    for a, b in zip(pf.nonzero(d[0]), pf.nonzero(x[0])):
        bits_equal(a, b)
    bits_equal(pf.masked_fill(d, dev(mask[:1]), 1), pf.masked_fill(x, mask[:1], 1))
    bits_equal(pf.one_hot(dev(i[0] + 7), 14, dtype=getattr(pf, dtype)),
               pf.one_hot(i[0] + 7, 14, dtype=getattr(pf, dtype)))
    big = values((300, 1000), dtype, rng)                 # many chunks and blocks
    bits_equal(pf.argwhere(dev(big)), pf.argwhere(big))


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_scatters_match_the_cpu(dtype):
    rng = np.random.default_rng(11)
    x = values((5, 8), dtype, rng)
    perm = np.stack([rng.permutation(8)[:6] for _ in range(5)])   # distinct per row
    i = pf.tensor(perm)
    src = values((5, 6), dtype, rng)
    bits_equal(pf.scatter(dev(x), 1, dev(i), dev(src)), pf.scatter(x, 1, i, src))
    a = dev(x)
    pf.put_along_axis(a, dev(i), 3, 1)
    b = x.clone()
    pf.put_along_axis(b, i, 3, 1)
    bits_equal(a, b)
    rows = pf.tensor([4, 0, 2])
    a = dev(x)
    a[dev(rows), 1:3] = 0
    b = x.clone()
    b[rows, 1:3] = 0
    bits_equal(a, b)
    # repeated positions: sums, by atomics
    rep = pf.tensor(rng.integers(0, 8, (5, 40)))
    s = values((5, 40), dtype, np.random.default_rng(12))
    if dtype in SCATTER_ADD_RTOL:
        s = pf.tensor(rng.integers(-8, 9, (5, 40)) / 2.0).astype(getattr(pf, dtype))
        got, want = host(pf.scatter_add(dev(x), 1, dev(rep), dev(s))), host(
            pf.scatter_add(x, 1, rep, s))
        fin = np.isfinite(want)
        assert np.array_equal(np.isnan(got), np.isnan(want))
        assert np.allclose(got[fin], want[fin], rtol=SCATTER_ADD_RTOL[dtype], atol=0)
    else:
        bits_equal(pf.scatter_add(dev(x), 1, dev(rep), dev(s)), pf.scatter_add(x, 1, rep, s))


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_sorts_match_the_cpu(dtype):
    rng = np.random.default_rng(15)
    for shape in [(7,), (5, 33), (3, 1000), (2, 70000)]:
        x = values(shape, dtype, rng)
        d = dev(x)
        for desc in (False, True):
            bits_equal(pf.sort(d, descending=desc), pf.sort(x, descending=desc))
            bits_equal(pf.argsort(d, axis=0, descending=desc),
                       pf.argsort(x, axis=0, descending=desc))
        for a, b in zip(pf.topk(d, min(5, shape[-1])), pf.topk(x, min(5, shape[-1]))):
            bits_equal(a, b)
    a = pf.sort(values((50,), dtype, rng))
    v = values((4, 9), dtype, rng)
    for right in (False, True):
        bits_equal(pf.searchsorted(dev(a), dev(v), right=right),
                   pf.searchsorted(a, v, right=right))


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_unique_matches_the_cpu(dtype):
    rng = np.random.default_rng(17)
    x = values((300, 70), dtype, rng)
    kw = dict(return_index=True, return_inverse=True, return_counts=True)
    for a, b in zip(pf.unique(dev(x), **kw), pf.unique(x, **kw)):
        bits_equal(a, b)


@gpu
def test_gpu_bounds_errors_and_nothing_written():
    x = dev(pf.zeros((2, 3)))
    with pytest.raises(IndexError, match=r"^scatter_add_: index 3 is out of bounds for axis 1 "
                                         r"with size 3$"):
        x.scatter_add_(1, dev(pf.tensor([[0, 1], [3, 1]])), dev(pf.ones((2, 2))))
    assert x.cpu().tolist() == [[0.0] * 3] * 2
    with pytest.raises(IndexError, match=r"^gather: index -4 is out of bounds"):
        pf.gather(x, 1, dev(pf.tensor([[0, -4]])))
    with pytest.raises(IndexError, match=r"^Tensor.__getitem__: index 2 is out of bounds"):
        x[dev(pf.tensor([0, 2]))]
    with pytest.raises(IndexError, match=r"^one_hot: index 9 at position \(1,\)"):
        pf.one_hot(dev(pf.tensor([1, 9])), 4)


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gpu_gradients_match_the_cpu(dtype):
    """Backward of the gathers is a scatter_add into zeros on the gradient's device."""
    rng = np.random.default_rng(13)
    t = getattr(pf, dtype)
    xn = rng.normal(size=(4, 6))
    i = pf.tensor(rng.integers(-6, 6, (4, 9)))
    mask = pf.tensor(xn > 0)
    rows = pf.tensor([3, 0, 3, 1, 2])                 # a repeated row: gradients add up
    # forwards over x and the index-like arguments (moved with x)
    cases = [
        lambda x, i, m, r: pf.take_along_axis(x, i, axis=1),
        lambda x, i, m, r: pf.gather(x, 1, i),
        lambda x, i, m, r: pf.index_select(x, 1, i[0]),
        lambda x, i, m, r: pf.take(x, i[:2]),
        lambda x, i, m, r: x[r],
        lambda x, i, m, r: x[m],
        lambda x, i, m, r: pf.scatter_add(x, 1, i, x.detach()[:, :1].expand(4, 9)),
        lambda x, i, m, r: pf.masked_fill(x, m, 0.0),
        lambda x, i, m, r: pf.sort(x, axis=1),
        lambda x, i, m, r: pf.topk(x, 3)[0],
    ]
    for fwd in cases:
        grads, gy = [], None
        for move in (lambda v: v, dev):
            x = move(pf.tensor(xn).astype(t))
            x.requires_grad_()
            y = fwd(x, move(i), move(mask), move(rows))
            if gy is None:      # the cpu run comes first and fixes the output gradient
                gy = pf.tensor(rng.normal(size=tuple(y.shape))).astype(t)
            y.backward(move(gy))
            grads.append(x.grad.cpu())
        assert np.allclose(host(grads[1]), host(grads[0]),
                           rtol=1e-6 if dtype == "float32" else 1e-12, atol=0)


@needs_lib
@pytest.mark.parametrize("name,dtype", [
    ("test_gpu_gathers_match_the_cpu", "bfloat16"), ("test_gpu_gathers_match_the_cpu", "int8"),
    ("test_gpu_scatters_match_the_cpu", "float16"), ("test_gpu_scatters_match_the_cpu", "bool"),
    ("test_gpu_sorts_match_the_cpu", "float32"), ("test_gpu_unique_matches_the_cpu", "int64"),
    ("test_gpu_gradients_match_the_cpu", "float32"),
    ("test_gpu_gradients_match_the_cpu", "float64"),
    ("test_gpu_bounds_errors_and_nothing_written", None)])
def test_gpu_test_bodies_hold_on_the_host_path(monkeypatch, name, dtype):
    """The GPU tests' own bodies, with 'to the device' a copy and every call routed through the
    library's host path: their arguments are valid and their expectations are the cpu's,
    gradients included (backward's scatter_adds run there too)."""
    monkeypatch.setattr(sys.modules[__name__], "dev", lambda t: t.clone())
    fn = globals()[name]
    via_library(fn, *([dtype] if dtype else []))


@pytest.mark.skipif(CUDA, reason="_fake_cuda_tensor is for machines without a GPU")
def test_fake_device_tensors_are_refused_before_their_memory_is_read():
    """Tensors that claim a device over unreadable host pages: every path asks for CUDA (or
    names the mixed devices) before it touches them; a missed check would crash here."""
    def fake(shape=(2, 3), dtype="float32"):
        return _C._fake_cuda_tensor(shape, dtype, 0)

    x, c = fake(), pf.zeros((2, 3))
    unavailable = r": CUDA is not available: "
    cases = [
        (lambda: x[[0, 1]], RuntimeError, r"^Tensor\.__getitem__" + unavailable),
        (lambda: x[pf.tensor([True, False])], RuntimeError, r"^Tensor\.__getitem__" + unavailable),
        (lambda: x.__setitem__([0], 1.0), RuntimeError, r"^Tensor\.__setitem__" + unavailable),
        (lambda: c.__setitem__([0], x[0]), RuntimeError,
         r"^Tensor\.__setitem__: the tensor is on cpu and the value on cuda:0; move the value"),
        (lambda: pf.one_hot(fake((3,), "int64"), 4), RuntimeError, r"^one_hot" + unavailable),
        (lambda: pf.take(x, [0, 1]), RuntimeError, r"^take" + unavailable),
        (lambda: pf.masked_fill(x, [True, False, True], 0.0), RuntimeError,
         r"^masked_fill" + unavailable),
        (lambda: pf.scatter_add(x, 1, fake((2, 2), "int64"), 1.0), RuntimeError,
         r"^scatter_add" + unavailable),
        (lambda: pf.unique(x, return_counts=True), RuntimeError, r"^unique" + unavailable),
    ]
    for fn, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            fn()
