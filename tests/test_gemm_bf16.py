"""bfloat16 matrix products (csrc/kernels/gemm_bf16.c): every path this CPU runs -- AMX tiles,
AVX512-BF16, and the generic float32 engine -- against NumPy float64.

Oracle: NumPy float64 on the values the bfloat16 tensors actually hold (each input is rounded
to bfloat16 once, then the exact product is taken in float64).

Tolerance (tol below).  A path multiplies bfloat16 values exactly in float32 (the product of
two 8-bit significands fits float32's 24 bits), sums the k products in float32 in some order,
and rounds the sum to bfloat16 once.  The float32 sum of k terms is off by at most
(k - 1) * 2^-24 * sum|a_i b_i| whatever the order (the rounding error of recursive summation,
which a pairwise or tiled order only improves); the final rounding to bfloat16 (8 significant
bits, round to nearest even) adds at most 2^-9 of the result.  So

    |got - exact| <= 2^-8 * |exact| + k * 2^-24 * sum_i |a_i| |b_i|

with a factor 2 of slack on the bfloat16 rounding.  A wrong element (a lost k chunk, a
misplaced tile, a transposed operand) is off by the size of a whole term, orders of magnitude
more.  Two paths, each within tol of the exact value, are within 2 * tol of each other.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import pyframe as pf

PATHS = [p for p, why in pf._C._bf16_gemm_paths().items() if why is None]


@pytest.fixture(params=PATHS)
def path(request):
    """Run the test on one available path, restoring the active one afterwards."""
    prev = pf._C._set_bf16_gemm_path(request.param)
    yield request.param
    pf._C._set_bf16_gemm_path(prev)


def bf16(shape, rng, scale=1.0):
    return (pf.tensor(rng.standard_normal(shape) * scale)).astype(pf.bfloat16)


def f64(t):
    return np.asarray(t.astype(pf.float64))


def tol(a64, b64, prod=np.matmul):
    """The bound of the module docstring for prod(a64, b64) (a matmul by default)."""
    k = a64.shape[-1] if a64.ndim else 1
    want = prod(a64, b64)
    mag = prod(np.abs(a64), np.abs(b64))
    return want, 2.0 ** -8 * np.abs(want) + k * 2.0 ** -24 * mag + 1e-30


def check(got, a, b, prod=np.matmul, dtype="bfloat16"):
    assert str(got.dtype) == dtype
    want, bound = tol(f64(a), f64(b), prod)
    g = f64(got)
    assert g.shape == want.shape
    err = np.abs(g - want)
    assert np.all(err <= bound), (np.max(err / bound), g, want)


def test_paths_are_reported():
    paths = pf._C._bf16_gemm_paths()
    assert set(paths) == {"amx", "avx512", "generic"}
    assert paths["generic"] is None          # always available
    for why in paths.values():
        assert why is None or isinstance(why, str) and why
    assert pf._C._bf16_gemm_path() in PATHS
    c = pf.config()
    assert c["bf16_gemm"] == pf._C._bf16_gemm_path()
    assert c["bf16_gemm_paths"] == paths


def test_show_config_names_the_path(capsys, path):
    pf.show_config()
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("bfloat16 GEMM")]
    assert len(line) == 1 and line[0].split()[2] == path


def cpu_vendor():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("vendor_id"):
                return line.split(":")[1].strip()
    return ""


def test_default_path():
    # amx where it works; avx512 only on AMD (on Intel VDPBF16PS is slower than float32 FMA)
    code = "import pyframe as pf; print(pf._C._bf16_gemm_path())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if k != "PYFRAME_BF16_GEMM"})
    if "amx" in PATHS:
        best = "amx"
    elif "avx512" in PATHS and cpu_vendor() == "AuthenticAMD":
        best = "avx512"
    else:
        best = "generic"
    assert out.stdout.strip() == best


def test_set_path_returns_the_previous_one():
    first = pf._C._bf16_gemm_path()
    try:
        for p in PATHS:
            before = pf._C._bf16_gemm_path()
            assert pf._C._set_bf16_gemm_path(p) == before
            assert pf._C._bf16_gemm_path() == p
    finally:
        pf._C._set_bf16_gemm_path(first)


@pytest.mark.parametrize("arg, exc, msg", [
    ("sse", ValueError, r"_set_bf16_gemm_path: unknown path 'sse'; expected 'amx', 'avx512' or "
                        r"'generic'"),
    (2, TypeError, r"_set_bf16_gemm_path: expected a path name, 'amx', 'avx512' or 'generic'; "
                   r"got int"),
    (None, TypeError, r"got NoneType"),
])
def test_set_path_rejects_bad_names(arg, exc, msg):
    before = pf._C._bf16_gemm_path()
    with pytest.raises(exc, match=msg):
        pf._C._set_bf16_gemm_path(arg)
    assert pf._C._bf16_gemm_path() == before


CAP_SCRIPT = """
import numpy as np, pyframe as pf
print(pf._C._bf16_gemm_path())
paths = pf._C._bf16_gemm_paths()
print(paths["amx"])
try:
    pf._C._set_bf16_gemm_path("amx")
    print("no error")
except RuntimeError as e:
    print(e)
a = pf.tensor(np.arange(12.0).reshape(3, 4)).astype(pf.bfloat16)
b = pf.tensor(np.arange(8.0).reshape(4, 2)).astype(pf.bfloat16)
print((a @ b).astype(pf.float64).tolist())
pf.show_config()
"""


@pytest.mark.parametrize("cap", ["generic", "avx512", "nonsense"])
def test_env_cap_makes_paths_unavailable(cap):
    # how this suite sees a CPU without AMX: the cap reports the path as unavailable
    avx512_default = "avx512" in PATHS and cpu_vendor() == "AuthenticAMD"
    active = "avx512" if cap == "avx512" and avx512_default else "generic"
    env = dict(os.environ, PYFRAME_BF16_GEMM=cap)
    out = subprocess.run([sys.executable, "-c", CAP_SCRIPT], capture_output=True, text=True,
                         check=True, env=env).stdout.splitlines()
    assert out[0] == active
    why = ("PYFRAME_BF16_GEMM=nonsense is not one of amx, avx512, generic" if cap == "nonsense"
           else "disabled by PYFRAME_BF16_GEMM=%s" % cap)
    if "amx" in PATHS:      # otherwise the CPU's own reason stands
        assert why in out[1]
        assert out[2].startswith("_set_bf16_gemm_path: this CPU cannot run the 'amx' path: "
                                 + why)
    else:
        assert out[2].startswith("_set_bf16_gemm_path: this CPU cannot run the 'amx' path: ")
    want = (np.arange(12.0).reshape(3, 4) @ np.arange(8.0).reshape(4, 2)).tolist()
    assert out[3] == str(want)
    assert any(ln.startswith("bfloat16 GEMM") and ln.split()[2] == active for ln in out[4:])


# ------------------------------------------------------------------ values

SHAPES = [  # (m, k, n): ones, edges off the 16/32 grid, odd k, long k
    (1, 1, 1), (1, 7, 1), (1, 33, 17), (17, 1, 5), (5, 3, 1), (16, 32, 16), (32, 64, 32),
    (31, 33, 47), (33, 65, 15), (48, 31, 80), (17, 1001, 19), (3, 2049, 2), (100, 37, 129),
    (64, 300, 70), (130, 1030, 129), (300, 1100, 40),   # k > 1024: sums carried across k steps
]


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_matmul_matches_float64(path, m, k, n):
    rng = np.random.default_rng(m * 10007 + k * 101 + n)
    a, b = bf16((m, k), rng), bf16((k, n), rng)
    check(a @ b, a, b)
    check(pf.matmul(a, b), a, b)


@pytest.mark.parametrize("sa,sb", [
    ((4, 17, 33), (4, 33, 9)),          # batch of products
    ((8, 40, 50), (8, 50, 30)),         # as many products as threads: split by product
    ((3, 1, 5, 7), (2, 7, 6)),          # broadcast batches
    ((5, 17, 33), (33, 9)),             # stacked A times one B: one taller product
    ((17, 33), (6, 33, 9)),             # one A times a batch of B
    ((2, 3, 20, 64), (1, 64, 40)),
    ((33,), (2, 33, 4)),                # 1-D a
    ((2, 3, 4), (4,)),                  # 1-D b
    ((70,), (70,)),                     # inner product
])
def test_batched_and_broadcast(path, sa, sb):
    rng = np.random.default_rng(len(sa) * 7 + sb[-1])
    a, b = bf16(sa, rng), bf16(sb, rng)
    check(a @ b, a, b)


def relayout(t, layout):
    """The same values as t (2-D or more) in another memory layout."""
    if layout == "transposed":
        return t.mT.contiguous().mT
    if layout == "strided":
        big = pf.zeros(tuple(2 * s for s in t.shape), dtype=t.dtype)
        view = big[(slice(None, None, 2),) * t.ndim]
        view[...] = t
        return view
    if layout == "reversed":
        flip = (slice(None, None, -1),) * t.ndim
        return t[flip].contiguous()[flip]
    return t


@pytest.mark.parametrize("la", ["contig", "transposed", "strided", "reversed"])
@pytest.mark.parametrize("lb", ["contig", "transposed", "strided", "reversed"])
def test_any_strides(path, la, lb):
    rng = np.random.default_rng(3)
    a = relayout(bf16((2, 37, 70), rng), la)
    b = relayout(bf16((2, 70, 45), rng), lb)
    check(a @ b, a, b)
    # the Linear layout: x @ W.T with W row-major
    w = relayout(bf16((45, 70), rng), lb)
    check(a @ w.T, a, w.T)


@pytest.mark.parametrize("k", [70, 1100])
def test_out(path, k):
    rng = np.random.default_rng(4)
    a, b = bf16((3, 37, k), rng), bf16((k, 45), rng)
    out = pf.empty((3, 37, 45), dtype=pf.bfloat16)
    r = pf.matmul(a, b, out=out)
    assert r is out
    check(out, a, b)
    # a float32 out= receives the float32 sums, written directly
    out32 = pf.empty((3, 37, 45), dtype=pf.float32)
    pf.matmul(a, b, out=out32)
    check(out32, a, b, dtype="float32")
    # column-major and strided outputs
    outT = pf.empty((3, 45, 37), dtype=pf.float32).mT
    pf.matmul(a, b, out=outT)
    check(outT, a, b, dtype="float32")
    big = pf.zeros((3, 74, 90), dtype=pf.bfloat16)
    outS = big[:, ::2, ::2]
    pf.matmul(a, b, out=outS)
    check(outS, a, b)
    assert np.all(f64(big[:, 1::2, :]) == 0) and np.all(f64(big[:, :, 1::2]) == 0)
    # @= and an out= that overlaps an input
    c = bf16((37, 37), rng)
    c0 = c.clone()
    c @= bf16((37, 37), np.random.default_rng(5))
    check(c, c0, bf16((37, 37), np.random.default_rng(5)))


@pytest.mark.parametrize("sa,sb,shape", [
    ((0, 5), (5, 3), (0, 3)), ((4, 5), (5, 0), (4, 0)), ((4, 0), (0, 3), (4, 3)),
    ((0, 4, 5), (5, 3), (0, 4, 3)), ((2, 3, 0), (2, 0, 6), (2, 3, 6)),
])
def test_zero_size(path, sa, sb, shape):
    a, b = pf.ones(sa, dtype=pf.bfloat16), pf.ones(sb, dtype=pf.bfloat16)
    c = a @ b
    assert c.shape == shape and c.dtype == pf.bfloat16
    assert np.all(f64(c) == 0)


def test_special_values(path):
    a64 = np.random.default_rng(6).standard_normal((20, 40))
    b64 = np.random.default_rng(7).standard_normal((40, 18))
    a64[1, 2] = np.nan
    a64[3, 5] = np.inf
    b64[5, 4] = 0.0                      # inf * 0: NaN in that one element of row 3
    a, b = pf.tensor(a64).astype(pf.bfloat16), pf.tensor(b64).astype(pf.bfloat16)
    with np.errstate(invalid="ignore"):
        g, want = f64(a @ b), f64(a) @ f64(b)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(g), np.isinf(want))
    np.testing.assert_array_equal(np.sign(g[np.isinf(g)]), np.sign(want[np.isinf(want)]))
    # large but finite sums stay finite (float32 range), and round to bfloat16's range
    big = pf.full((4, 64), 1e18, dtype=pf.bfloat16)
    assert np.all(np.isfinite(f64(big @ big.T)))


@pytest.mark.parametrize("kernel", [p for p in PATHS if p != "generic"])
def test_same_bits_on_any_thread_count(kernel):
    # pyframe's kernels give every block of C to one thread (OpenBLAS, on the generic path,
    # does not promise this, and does not keep it)
    rng = np.random.default_rng(8)
    a, b = bf16((3, 130, 700), rng), bf16((700, 150), rng)
    before, prev = pf.get_num_threads(), pf._C._set_bf16_gemm_path(kernel)
    try:
        pf.set_num_threads(1)
        one = f64(a @ b)
        pf.set_num_threads(2)
        two = f64(a @ b)
        pf.set_num_threads(3)
        three = f64(a @ b)
    finally:
        pf.set_num_threads(before)
        pf._C._set_bf16_gemm_path(prev)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, three)


def test_paths_agree():
    rng = np.random.default_rng(9)
    a, b = bf16((2, 77, 300), rng), bf16((300, 61), rng)
    want, bound = tol(f64(a), f64(b))
    prev = pf._C._bf16_gemm_path()
    try:
        results = {}
        for p in PATHS:
            pf._C._set_bf16_gemm_path(p)
            results[p] = f64(a @ b)
    finally:
        pf._C._set_bf16_gemm_path(prev)
    for p, r in results.items():
        assert np.all(np.abs(r - results["generic"]) <= 2 * bound), p


def test_matches_torch(path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    a, b = bf16((4, 50, 300), rng), bf16((300, 70), rng)
    ta = torch.from_numpy(f64(a)).to(torch.bfloat16)
    tb = torch.from_numpy(f64(b)).to(torch.bfloat16)
    theirs = (ta @ tb).to(torch.float64).numpy()
    _, bound = tol(f64(a), f64(b))
    assert np.all(np.abs(f64(a @ b) - theirs) <= 2 * bound)


# ------------------------------------------- what shares the engine

def test_dot_einsum_tensordot(path):
    rng = np.random.default_rng(11)
    a, b = bf16((5, 6, 40), rng), bf16((40, 7), rng)
    check(pf.dot(a, b), a, b, prod=np.dot)
    c = bf16((3, 40, 7), rng)
    check(pf.dot(a, c), a, c, prod=np.dot)
    check(pf.einsum("bij,jk->bik", a, b), a, b, prod=lambda x, y: np.einsum("bij,jk->bik", x, y))
    check(pf.einsum("bij,kj->bki", a, b.T), a, b.T,
          prod=lambda x, y: np.einsum("bij,kj->bki", x, y))
    check(pf.tensordot(a, c, ([2], [1])), a, c,
          prod=lambda x, y: np.tensordot(x, y, ([2], [1])))
    m1, m2 = bf16((33, 40), rng), bf16((40, 20), rng)
    check(pf.mm(m1, m2), m1, m2)
    x, y = bf16((2, 9, 40), rng), bf16((2, 40, 3), rng)
    check(pf.bmm(x, y), x, y)


def check_affine(got, x, w, bias):
    """got = x @ w + bias in bfloat16: the product's bound, then one more rounding (the add)."""
    want, bound = tol(f64(x), f64(w))
    full = want + f64(bias)
    assert str(got.dtype) == "bfloat16"
    assert np.all(np.abs(f64(got) - full) <= bound + 2.0 ** -8 * np.abs(full))


def test_linear_and_dense(path):
    rng = np.random.default_rng(14)
    x, w, bias = bf16((8, 6, 96), rng), bf16((40, 96), rng), bf16((40,), rng)
    check(pf.nn.functional.linear(x, w), x, w.T)
    check_affine(pf.nn.functional.linear(x, w, bias), x, w.T, bias)
    layer = pf.layers.Dense(24, dtype="bfloat16")
    y = layer(x)
    check_affine(y, x, layer.kernel, layer.bias)


# ------------------------------------------------------------ gradients

@pytest.mark.parametrize("sa,sb", [((37, 70), (70, 45)), ((3, 20, 33), (33, 17)),
                                   ((2, 1, 9, 40), (3, 40, 5))])
def test_gradients(path, sa, sb):
    rng = np.random.default_rng(15)
    a, b = bf16(sa, rng), bf16(sb, rng)
    a.requires_grad_(True)
    b.requires_grad_(True)
    y = a @ b
    g = bf16(y.shape, rng)
    y.backward(g)
    assert a.grad.dtype == pf.bfloat16 and b.grad.dtype == pf.bfloat16
    a64, b64, g64 = f64(a.detach()), f64(b.detach()), f64(g)
    # ga = g @ b^T and gb = a^T @ g, summed over broadcast batch dimensions: each a bf16
    # product (the bound above), then the batch sum in bfloat16 (one more rounding per term)
    ga = g64 @ np.swapaxes(b64, -1, -2)
    ga_mag = np.abs(g64) @ np.swapaxes(np.abs(b64), -1, -2)
    ga, ga_mag = _sum_to(ga, a64.shape), _sum_to(ga_mag, a64.shape)
    gb = np.swapaxes(a64, -1, -2) @ g64
    gb_mag = np.swapaxes(np.abs(a64), -1, -2) @ np.abs(g64)
    gb, gb_mag = _sum_to(gb, b64.shape), _sum_to(gb_mag, b64.shape)
    for got, want, mag, k in ((a.grad, ga, ga_mag, sb[-1]), (b.grad, gb, gb_mag, 2 * sa[-2])):
        bound = 2.0 ** -7 * mag + k * 2.0 ** -24 * mag + 1e-30
        assert np.all(np.abs(f64(got) - want) <= bound)


def _sum_to(x, shape):
    """Sum x over the leading and size-1 dimensions that shape broadcasts."""
    while x.ndim > len(shape):
        x = x.sum(axis=0)
    for i, s in enumerate(shape):
        if s == 1 and x.shape[i] != 1:
            x = x.sum(axis=i, keepdims=True)
    return x


def test_gradient_against_torch(path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(16)
    a, b, g = bf16((30, 64), rng), bf16((64, 50), rng), bf16((30, 50), rng)
    a.requires_grad_(True)
    b.requires_grad_(True)
    (a @ b).backward(g)
    ta = torch.from_numpy(f64(a.detach())).to(torch.bfloat16).requires_grad_(True)
    tb = torch.from_numpy(f64(b.detach())).to(torch.bfloat16).requires_grad_(True)
    (ta @ tb).backward(torch.from_numpy(f64(g)).to(torch.bfloat16))
    for mine, theirs, mag in ((a.grad, ta.grad, np.abs(f64(g)) @ np.abs(f64(b.detach())).T),
                              (b.grad, tb.grad, np.abs(f64(a.detach())).T @ np.abs(f64(g)))):
        diff = np.abs(f64(mine) - theirs.to(torch.float64).numpy())
        assert np.all(diff <= 2 * (2.0 ** -8 + 64 * 2.0 ** -24) * mag + 1e-30)


# ------------------------------------------------------------ bad input

def test_mixed_dtypes_keep_their_promotion(path):
    rng = np.random.default_rng(17)
    a16, a32 = bf16((9, 20), rng), pf.tensor(rng.standard_normal((20, 7)), dtype=pf.float32)
    r = a16 @ a32
    assert r.dtype == pf.float32
    want = f64(a16) @ f64(a32)
    assert np.allclose(f64(r), want, rtol=1e-5, atol=1e-5 * np.abs(f64(a16)) @ np.abs(f64(a32)))
    i8 = pf.tensor(rng.integers(-3, 4, (20, 7)), dtype=pf.int8)
    r = a16 @ i8                        # the float32 engine, as before: int8 is widened
    assert r.dtype == pf.bfloat16
    check(r, a16, i8)
    h = pf.tensor(rng.standard_normal((20, 7)), dtype=pf.float16)
    r = a16 @ h
    assert r.dtype == pf.float32
    assert np.allclose(f64(r), f64(a16) @ f64(h), rtol=1e-5,
                       atol=1e-5 * (np.abs(f64(a16)) @ np.abs(f64(h))))


@pytest.mark.parametrize("call, exc, msg", [
    (lambda a: a @ pf.ones((4, 5), dtype=pf.bfloat16), ValueError,
     r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned: dimension 1 of a \(3\) != "
     r"dimension 0 of b \(4\)"),
    (lambda a: pf.mm(a, pf.ones((4,), dtype=pf.bfloat16)), ValueError,
     r"mm: expected two 2-D tensors; got shapes \(2, 3\) and \(4,\)"),
    (lambda a: pf.bmm(a[None], pf.ones((2, 3, 4), dtype=pf.bfloat16)), ValueError,
     r"bmm: the batch sizes differ: shapes \(1, 2, 3\) and \(2, 3, 4\)"),
    (lambda a: pf.matmul(a, pf.ones((3, 4), dtype=pf.bfloat16),
                         out=pf.empty((2, 5), dtype=pf.bfloat16)), ValueError,
     r"matmul: the output has shape \(2, 5\) but the result has shape \(2, 4\)"),
    (lambda a: pf.matmul(a, pf.ones((3, 4), dtype=pf.bfloat16),
                         out=pf.empty((2, 4), dtype=pf.int32)), TypeError,
     r"matmul: the result has dtype bfloat16, which cannot be stored in the int32 output"),
    (lambda a: pf.einsum("ij,kl->il", a, pf.ones((4, 5), dtype=pf.bfloat16)) * 0 +
     pf.einsum("ij,jl->il", a, pf.ones((4, 5), dtype=pf.bfloat16)), ValueError,
     r"einsum: subscript 'j' has size 3 in operand 0 but 4 in operand 1"),
])
def test_bad_input(path, call, exc, msg):
    a = pf.ones((2, 3), dtype=pf.bfloat16)
    with pytest.raises(exc, match=msg):
        call(a)
