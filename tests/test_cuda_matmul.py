"""Matrix products on CUDA through cuBLAS (csrc/cuda/blas.cu, routed from csrc/linalg.c).

Three groups:

* The mapping, on every machine (CI has no GPU and no cuBLAS):
  ``_C._cuda_host_matmul(name, ...)`` runs matmul, mm, bmm, dot, tensordot and
  einsum on CPU tensors with every product planned exactly as for cuBLAS --
  row-major or column-major result, N/T per operand, leading dimensions,
  merged batch dimensions as a strided batch (stride 0 where an operand
  broadcasts) plus a loop -- and then computed by a host loop that reads the
  operands as cuBLAS's parameters say.  Oracle: NumPy in float64.
* Loading cuBLAS: the message when it is missing (what was looked for, the
  fix), a file that is not a library, a library without cuBLAS's symbols.
* With a GPU (skipped elsewhere, naming the reason): values and gradients
  against the cpu, TF32 on and off.

Tolerances, relative to sum_k |a_ik| |b_kj| (the size of what one output
adds up): float64 1e-12; float32 2e-6 (k <= 64 float32 roundings); float16
and bfloat16 products accumulate in float32 and round once at the end, so
2^-11 and 2^-8 of |c| plus the float32 term; TF32 inputs keep 10 mantissa
bits: 2e-3.
"""
import os
import shutil

import numpy as np
import pytest

import pyframe as pf
from pyframe import _C
from helpers_core import np_dtype

FLOATS = ["float16", "bfloat16", "float32", "float64"]
RTOL = {"float16": 2**-11, "bfloat16": 2**-8, "float32": 2e-6, "float64": 1e-12}
CUDA = pf.cuda.is_available()
gpu = pytest.mark.skipif(not CUDA, reason="needs a usable CUDA GPU; here: " + pf.cuda.status())
BUILT = _C._cuda_status()["kind"] != "not built"
built = pytest.mark.skipif(not BUILT, reason="libpyframe_cuda.so was not built here (no nvcc)")


def host(name, *args, **kw):
    return _C._cuda_host_matmul(name, *args, **kw)


def f64(t):
    return np.asarray(t).astype(np.float64)


def arr(rng, shape, dtype):
    return rng.normal(size=shape).astype(np_dtype(dtype))


def assert_product(got, want, size, dtype, rtol=None):
    """got vs the float64 oracle want; size = the same product of |a| and |b|."""
    rtol = RTOL[dtype] if rtol is None else rtol
    g = f64(got)
    assert g.shape == want.shape, (g.shape, want.shape)
    bound = rtol * np.abs(want) + max(rtol, 2e-6) * size + 1e-300
    assert (np.abs(g - want) <= bound).all(), np.abs(g - want).max()


def layouts(rng, shape, dtype, device="cpu"):
    """(NumPy array, pf tensor on device) pairs of the same values: contiguous, transposed in
    memory (column-major last two dims), a sliced view, and with a broadcast (stride 0) batch;
    the views are taken on the device."""
    def put(x):
        return pf.tensor(x).to(device)
    a = arr(rng, shape, dtype)
    out = [(a, put(a))]
    if len(shape) >= 2:
        t = put(np.ascontiguousarray(np.swapaxes(a, -1, -2))).mT
        out.append((a, t))
        big = arr(rng, shape[:-1] + (shape[-1] * 2,), dtype)
        out.append((big[..., ::2], put(big)[..., ::2]))
    if len(shape) >= 3:
        one = arr(rng, (1,) + shape[1:], dtype)
        out.append((np.broadcast_to(one, shape), put(one).expand(*shape)))
    return out


CASES = [
    ((5, 7), (7, 3)),
    ((4, 5, 6), (4, 6, 2)),
    ((3, 1, 5, 4), (2, 4, 6)),        # batch broadcast both ways
    ((7,), (7, 4)),                   # 1-D row
    ((6, 3), (3,)),                   # 1-D column
    ((8,), (8,)),                     # inner product
    ((2, 3, 1, 4), (2, 3, 4, 1)),     # m = n = 1
    ((3, 0), (0, 4)),                 # k = 0 writes zeros
    ((0, 3), (3, 4)),
]


@built
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("sa,sb", CASES)
def test_host_matmul_mapping_matches_numpy(sa, sb, dtype):
    rng = np.random.default_rng(len(sa) * 10 + len(sb))
    for a, ta in layouts(rng, sa, dtype):
        for b, tb in layouts(rng, sb, dtype):
            got = host("matmul", ta, tb)
            assert got.dtype == getattr(pf, dtype)
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            assert_product(got, a64 @ b64, np.abs(a64) @ np.abs(b64), dtype)


@built
@pytest.mark.parametrize("dtype", FLOATS)
def test_host_matmul_into_a_column_major_out(dtype):
    """out= transposed in memory: the result is written column-major (no swap)."""
    rng = np.random.default_rng(4)
    a, b = arr(rng, (3, 5, 4), dtype), arr(rng, (3, 4, 6), dtype)
    out = pf.zeros((3, 6, 5), dtype=getattr(pf, dtype)).mT
    r = host("matmul", pf.tensor(a), pf.tensor(b), out=out)
    assert r is out
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert_product(out, a64 @ b64, np.abs(a64) @ np.abs(b64), dtype)


@built
def test_host_batches_that_do_not_merge_loop():
    """Batch dims whose strides do not chain: a loop of strided-batch calls."""
    rng = np.random.default_rng(5)
    big = arr(rng, (4, 6, 3, 5), "float32")
    a = big[:, ::2]                       # (4, 3, 3, 5): batch strides 90, 30 do not merge
    b = arr(rng, (3, 5, 2), "float32")
    got = host("matmul", pf.tensor(big)[:, ::2], pf.tensor(b))
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert_product(got, a64 @ b64, np.abs(a64) @ np.abs(b64), "float32")


@built
@pytest.mark.parametrize("dtype", FLOATS)
def test_host_other_products(dtype):
    rng = np.random.default_rng(6)
    a, b = arr(rng, (2, 3, 4), dtype), arr(rng, (4, 3, 5), dtype)
    A, B = pf.tensor(a), pf.tensor(b)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    abs_a, abs_b = np.abs(a64), np.abs(b64)
    for spec in ["ijk,kjl->il", "ijk,klm->ijlm", "ijk,kjl->lji", "ijk,kjl->ijl"]:
        assert_product(host("einsum", spec, A, B), np.einsum(spec, a64, b64),
                       np.einsum(spec, abs_a, abs_b), dtype)
    c = arr(rng, (2, 4, 5), dtype)
    assert_product(host("einsum", "bij,bjk->bki", A, pf.tensor(c)),
                   np.einsum("bij,bjk->bki", a64, c.astype(np.float64)),
                   np.einsum("bij,bjk->bki", abs_a, np.abs(c.astype(np.float64))), dtype)
    # a label of one operand only is summed through a product with ones
    assert_product(host("einsum", "ijk->k", A), np.einsum("ijk->k", a64),
                   np.einsum("ijk->k", abs_a), dtype)
    assert_product(host("tensordot", A, B, axes=([1, 2], [1, 0])),
                   np.tensordot(a64, b64, axes=([1, 2], [1, 0])),
                   np.tensordot(abs_a, abs_b, axes=([1, 2], [1, 0])), dtype)
    assert_product(host("dot", A, pf.tensor(b[:, 0, :])), np.dot(a64, b64[:, 0, :]),
                   np.dot(abs_a, abs_b[:, 0, :]), dtype)
    m1, m2 = arr(rng, (3, 4), dtype), arr(rng, (4, 2), dtype)
    assert_product(host("mm", pf.tensor(m1), pf.tensor(m2)),
                   m1.astype(np.float64) @ m2.astype(np.float64),
                   np.abs(m1.astype(np.float64)) @ np.abs(m2.astype(np.float64)), dtype)
    assert_product(host("bmm", A, pf.tensor(c)), a64 @ c.astype(np.float64),
                   abs_a @ np.abs(c.astype(np.float64)), dtype)


@built
def test_host_large_enough_to_accumulate():
    """k = 512: float16 products accumulate in float32 (a float16 sum would be off by far
    more than the bound)."""
    rng = np.random.default_rng(7)
    a = rng.uniform(0, 1, (4, 512)).astype(np.float16)
    b = rng.uniform(0, 1, (512, 3)).astype(np.float16)
    got = host("matmul", pf.tensor(a), pf.tensor(b))
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert_product(got, a64 @ b64, np.abs(a64) @ np.abs(b64), "float16")


@built
def test_host_errors():
    i = pf.ones((2, 2), dtype=pf.int32)
    with pytest.raises(TypeError, match=r"^matmul: integer and bool products do not run on "
                                        r"CUDA \(cuBLAS multiplies floating-point matrices\); "
                                        r"got int32 and int32 on cpu; cast the operands to a "
                                        r"float dtype"):
        host("matmul", i, i)
    with pytest.raises(ValueError, match=r"^_cuda_host_matmul: outer is not a product that "
                                         r"runs through cuBLAS; expected one of matmul"):
        host("outer", i, i)
    with pytest.raises(TypeError, match=r"^_cuda_host_matmul: the first argument must be the "
                                        r"name of a product \(a str\)"):
        _C._cuda_host_matmul(i)


def test_float32_matmul_precision_switch():
    assert pf.get_float32_matmul_precision() == "highest"
    try:
        pf.set_float32_matmul_precision("high")
        assert pf.get_float32_matmul_precision() == "high"
        pf.set_float32_matmul_precision("medium")
        assert pf.get_float32_matmul_precision() == "high"
    finally:
        pf.set_float32_matmul_precision("highest")
    assert pf.get_float32_matmul_precision() == "highest"
    with pytest.raises(ValueError, match=r"^set_float32_matmul_precision: precision must be "
                                         r"'highest' \(float32\), 'high' or 'medium' \(TF32 "
                                         r"tensor cores on CUDA\); got 'low'"):
        pf.set_float32_matmul_precision("low")
    with pytest.raises(TypeError, match=r"^set_float32_matmul_precision: precision must be a "
                                        r"str"):
        pf.set_float32_matmul_precision(3)


# ------------------------------------------------------------ loading cuBLAS

@built
def test_cublas_status_names_the_library_or_the_fix():
    s = pf.cuda.cublas_status()
    assert set(s) == {"loaded", "library", "message"}
    if s["loaded"]:
        assert "libcublas" in os.path.basename(s["library"]) and s["message"] == s["library"]
        return
    assert s["library"] is None
    msg = s["message"]
    assert msg.startswith("cuBLAS (libcublas.so.13) was not found; tried the dynamic "
                          "loader's search path and ")
    assert "\n  libcublas.so.13: " in msg
    for d in pf.cuda._cublas_search_dirs():
        assert "\n  " + os.path.join(d, "libcublas.so.13") + ": " in msg
    assert "pip install nvidia-cublas" in msg and "CUDA 13 toolkit" in msg


def test_search_dirs_name_the_wheel_and_the_toolkit(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    dirs = pf.cuda._cublas_search_dirs()
    assert os.path.join(str(tmp_path), "lib64") in dirs
    assert dirs[-1] == "/usr/local/cuda/lib64" and len(dirs) == len(set(dirs))
    # the wheel's directory comes from its package spec, when the wheel is installed
    import importlib.util
    spec = importlib.util.find_spec("nvidia.cublas") if importlib.util.find_spec("nvidia") \
        else None
    if spec is not None:
        assert os.path.join(list(spec.submodule_search_locations)[0], "lib") == dirs[0]


def _probe_with(monkeypatch, path):
    monkeypatch.setattr(pf.cuda, "_cublas_search_dirs", lambda: [str(path)])
    return pf.cuda.cublas_status()


@built
def test_a_broken_cublas_is_reported(monkeypatch, tmp_path):
    if pf.cuda.cublas_status()["loaded"]:
        pytest.skip("cuBLAS is loaded in this process: the search no longer runs")
    (tmp_path / "libcublas.so.13").write_bytes(b"not a library")
    s = _probe_with(monkeypatch, tmp_path)
    assert not s["loaded"]
    line = "\n  %s: " % (tmp_path / "libcublas.so.13")
    assert line in s["message"]
    # a real shared library that is not cuBLAS: named, with the symbol it lacks
    lib = os.path.join(os.path.dirname(pf.__file__), "libpyframe_cuda.so")
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(lib, other / "libcublas.so.13")
    s = _probe_with(monkeypatch, other)
    assert not s["loaded"]
    assert ("%s: loaded, but it has no cublasCreate_v2 (not a cuBLAS 13?)"
            % (other / "libcublas.so.13")) in s["message"]


def test_fake_device_products_need_cuda():
    """A product of (fake) device tensors reaches its CUDA path, which needs a device."""
    if CUDA:
        pytest.skip("_fake_cuda_tensor is for machines without a GPU")
    x = _C._fake_cuda_tensor((2, 3), pf.float32, 0)
    y = _C._fake_cuda_tensor((3, 2), pf.float32, 0)
    for fn in (lambda: x @ y, lambda: pf.matmul(x, y), lambda: pf.einsum("ij,jk->ik", x, y),
               lambda: pf.tensordot(x, y, axes=1), lambda: pf.dot(x, y),
               lambda: pf.mm(x, y)):
        with pytest.raises(RuntimeError, match=r": CUDA is not available"):
            fn()
    with pytest.raises(RuntimeError, match=r"^matmul: tensors on cuda:0 and cpu"):
        x @= pf.ones((3, 3))


# ------------------------------------------------------------ on a GPU

@gpu
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("sa,sb", CASES + [((64, 300, 200), (200, 100)),
                                           ((2, 8, 128, 64), (2, 8, 64, 128))])
def test_gpu_matmul_matches_numpy(sa, sb, dtype):
    rng = np.random.default_rng(8)
    for a, ta in layouts(rng, sa, dtype, "cuda"):
        for b, tb in layouts(rng, sb, dtype, "cuda"):
            got = pf.matmul(ta, tb)
            assert got.device == "cuda:0" and got.dtype == getattr(pf, dtype)
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            assert_product(got.cpu(), a64 @ b64, np.abs(a64) @ np.abs(b64), dtype,
                           rtol=max(RTOL[dtype], 1e-5))


@gpu
def test_gpu_tf32_switch():
    rng = np.random.default_rng(9)
    a, b = arr(rng, (256, 512), "float32"), arr(rng, (512, 128), "float32")
    da, db = pf.tensor(a).to("cuda"), pf.tensor(b).to("cuda")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    size = np.abs(a64) @ np.abs(b64)
    full = pf.matmul(da, db).cpu()
    assert_product(full, a64 @ b64, size, "float32", rtol=1e-5)
    try:
        pf.set_float32_matmul_precision("high")
        tf32 = pf.matmul(da, db).cpu()
    finally:
        pf.set_float32_matmul_precision("highest")
    assert_product(tf32, a64 @ b64, size, "float32", rtol=2e-3)


@gpu
def test_gpu_products_and_gradients_match_the_cpu():
    rng = np.random.default_rng(10)
    a, b = arr(rng, (3, 4, 5), "float32"), arr(rng, (3, 5, 6), "float32")
    for fn in (lambda x, y: x @ y, lambda x, y: pf.einsum("bij,bjk->bik", x, y),
               lambda x, y: pf.tensordot(x, y, axes=([0, 2], [0, 1])),
               lambda x, y: pf.bmm(x, y)):
        res, grads = [], []
        for device in ("cpu", "cuda"):
            ta = pf.tensor(a).to(device).requires_grad_()
            tb = pf.tensor(b).to(device).requires_grad_()
            r = fn(ta, tb)
            r.sum().backward()
            res.append(np.asarray(r.detach().cpu()))
            grads.append((np.asarray(ta.grad.cpu()), np.asarray(tb.grad.cpu())))
        np.testing.assert_allclose(res[1], res[0], rtol=1e-5, atol=1e-5)
        for g1, g0 in zip(grads[1], grads[0]):
            np.testing.assert_allclose(g1, g0, rtol=1e-5, atol=1e-5)


@gpu
def test_gpu_integer_products_are_refused():
    x = pf.ones((2, 2), dtype=pf.int64, device="cuda")
    with pytest.raises(TypeError, match=r"^matmul: integer and bool products do not run on "
                                        r"CUDA .* on cuda:0"):
        x @ x
