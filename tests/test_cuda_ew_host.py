"""The CUDA elementwise kernels' element code, run on the host, against the cpu backend.

``_C._cuda_host_ew(name, inputs, params, out=None)`` takes an elementwise op through
dispatch's CUDA path (the same dtype rules, broadcasting, Python scalars by value, mixed
dtypes converted by the cast kernel, out= through a temporary) and runs the very functions
the kernels of csrc/cuda/elementwise.cu call per thread, over host buffers.
``_C._cuda_host_cast(t, dtype)`` does the same for the cast kernel.  That checks on a machine
without a GPU (CI) the math, the dtype handling and the index arithmetic of every ported op in
every dtype, with broadcast, transposed, strided and negative-stride operands; only the launch
and device memory are left to tests/test_cuda_elementwise.py on a GPU.

The oracle is the cpu backend, itself checked against NumPy in float64 by
tests/test_op_table.py: integer and bool results must match exactly; float results within
the tolerances below (both sides compute float16 / bfloat16 in float32 and round; float32
differs by the cpu's own exp / log / tanh / sigmoid (tests/test_vmath.py, at most 4 ULP)
against the C library's the host code calls).
"""
import itertools

import numpy as np
import pytest

import pyframe as pf
from pyframe import _C
from op_rows import all_rows
from test_op_table import LAYOUTS, gen_scalar, gen_values, make_tensor

if _C._cuda_status()["kind"] == "not built":
    pytest.skip("libpyframe_cuda.so was not built here (no nvcc)", allow_module_level=True)

TABLE = {r["name"]: r for r in _C._op_table()}
ROWS = all_rows()
PORTED = [n for n, r in TABLE.items() if r["kind"] != "custom" and r["cuda"] == "kernel"]
NAMES = ("bool", "uint8", "int8", "int16", "int32", "int64",
         "float16", "bfloat16", "float32", "float64")
FLOATS = NAMES[6:]

# (rtol, atol) by result dtype: a few units in the last place, two subnormal steps
TOL = {
    "float16": (2 * 2.0 ** -10, 2 * 2.0 ** -24),
    "bfloat16": (2 * 2.0 ** -7, 2 * 2.0 ** -133),
    "float32": (8 * 2.0 ** -23, 2 * 2.0 ** -149),
    "float64": (4 * 2.0 ** -52, 2 * 2.0 ** -1074),
}


def host_params(name, params):
    """The row's keyword params as the numbers the kernels take, in the table's order."""
    out = []
    for p in TABLE[name]["params"]:
        v = params.get(p)
        if p == "approximate":
            v = {None: 0.0, "none": 0.0, "tanh": 1.0}[v]
        out.append(None if v is None else float(v))
    return tuple(out)


def assert_same(host, cpu, what):
    assert host.device == "cpu", what
    assert host.dtype == cpu.dtype and host.shape == cpu.shape, (
        "%s: %s %s, cpu %s %s" % (what, host.dtype, host.shape, cpu.dtype, cpu.shape))
    h, c = np.asarray(host.astype(pf.float64) if host.dtype == pf.bfloat16 else host), \
        np.asarray(cpu.astype(pf.float64) if cpu.dtype == pf.bfloat16 else cpu)
    d = cpu.dtype.name
    if d in TOL:
        rtol, atol = TOL[d]
        np.testing.assert_allclose(h.astype(np.float64), c.astype(np.float64), rtol=rtol,
                                   atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(h, c, err_msg=what)


def run_both(name, args, params, out=None, out_host=None):
    """The cpu result (or its exception) and the host self-test's, compared."""
    fn = getattr(pf, name)
    try:
        cpu = fn(*args, **params) if out is None else fn(*args, out=out, **params)
    except (TypeError, ValueError) as e:
        if name == "clip" and isinstance(e, ValueError):
            return None     # pf.clip's own check of its bounds, before the op runs
        with pytest.raises(type(e)) as info:
            _C._cuda_host_ew(name, tuple(args), host_params(name, params), out=out_host)
        assert str(info.value) == str(e).replace("no kernel", "no CUDA kernel")
        return None
    if name == "clip" and isinstance(args[0], pf.Tensor) and cpu.dtype != args[0].dtype:
        # pf.clip first promotes a tensor its bounds do not fit (an astype), then clips
        args = [args[0].astype(cpu.dtype)]
    host = _C._cuda_host_ew(name, tuple(args), host_params(name, params), out=out_host)
    if out is not None:
        assert host is out_host
    return cpu, host


def combos(nin):
    if nin == 1:
        return [(d,) for d in NAMES]
    if nin == 2:
        return list(itertools.product(NAMES, NAMES))
    return [("bool", a, b) for a in NAMES for b in NAMES] + [(c, "float32", "int64")
                                                              for c in NAMES]


@pytest.mark.parametrize("name", PORTED)
def test_every_dtype_with_broadcasting_and_layouts(name):
    """Every dtype (pair, triple) the cpu takes, broadcast shapes, cycling through the
    contiguous, transposed, negative-stride and strided layouts; refusals match the cpu's."""
    row, nin = ROWS[name], TABLE[name]["nin"]
    params = row.get("params", {})
    rng = np.random.default_rng(abs(hash(name)) % 2 ** 32)
    shapes = [(3, 4), (4,), (3, 1)][:nin] if nin > 1 else [(3, 4)]
    layout = itertools.cycle(LAYOUTS)
    for combo in combos(nin):
        vals = [gen_values(rng, row, k, d, s) for k, (d, s) in enumerate(zip(combo, shapes))]
        args = [make_tensor(v, next(layout)) for v in vals]
        r = run_both(name, args, params)
        if r is not None:
            assert_same(r[1], r[0], "%s%s" % (name, combo))


@pytest.mark.parametrize("name", PORTED)
def test_shapes_scalars_and_out(name):
    """0-d, empty and higher-dimensional broadcasts, Python scalars in each slot (passed
    to the kernel by value), and out= of another dtype and layout."""
    row, nin = ROWS[name], TABLE[name]["nin"]
    params = row.get("params", {})
    rng = np.random.default_rng(7)
    shapes = [[(), (2, 0, 3), (5, 1, 3, 1, 2)], [(), (0, 3), (4, 1, 2)],
              [(), (3,), (1, 3, 2)]][:nin]
    dtypes = row["dtypes"]
    for case in range(3):
        dts = [dtypes[(case * 3 + k) % len(dtypes)] for k in range(nin)]
        vals = [gen_values(rng, row, k, dts[k], shapes[k][case]) for k in range(nin)]
        args = [make_tensor(v, LAYOUTS[(case + k) % 4]) for k, v in enumerate(vals)]
        r = run_both(name, args, params)
        if r is not None:
            assert_same(r[1], r[0], "%s shapes %s" % (name, [a.shape for a in args]))
    # a Python scalar in each slot
    for k in range(nin):
        for sk in (0, 1, 2):
            if (TABLE[name]["kind"] == "where" and k == 0 and sk != 0) or name == "clip":
                continue    # (pf.clip of a Python number is a cpu op of its binding)
            dt = dtypes[(k + sk) % len(dtypes)]
            args = [make_tensor(gen_values(rng, row, j, dt, (2, 3)), "transposed")
                    for j in range(nin)]
            args[k] = gen_scalar(rng, row, k, sk, dt)
            r = run_both(name, args, params)
            if r is not None:
                assert_same(r[1], r[0], "%s scalar %r in slot %d" % (name, args[k], k))
    # out= in float64 (every result kind fits) and in the result's own dtype, strided
    args = [make_tensor(gen_values(rng, row, k, dtypes[-1], (3, 4)), "contiguous")
            for k in range(nin)]
    expected = getattr(pf, name)(*args, **params)
    for od in ("float64", expected.dtype.name):
        o_cpu = make_tensor(np.zeros((3, 4), dtype=np.float64), "strided").astype(od)
        o_host = make_tensor(np.zeros((3, 4), dtype=np.float64), "strided").astype(od)
        r = run_both(name, args, params, out=o_cpu, out_host=o_host)
        if r is not None:
            assert_same(r[1], r[0], "%s out=%s" % (name, od))


PARAM_CASES = [
    ("gelu", {"approximate": "tanh"}, (-10, 10)),
    ("gelu", {"approximate": "none"}, (-30, 30)),
    ("round", {"decimals": 1}, (-100, 100)),
    ("round", {"decimals": -1}, (-1000, 1000)),
    ("round", {"decimals": -2}, (-1000, 1000)),
    ("clip", {"min": -1.5}, (-5, 5)),
    ("clip", {"max": 2}, (-5, 5)),
    ("clip", {"min": 3, "max": -1}, (-5, 5)),
    ("leaky_relu", {"negative_slope": 0.3}, (-5, 5)),
    ("elu", {"alpha": 2.0}, (-5, 5)),
    ("softplus", {"beta": 0.5, "threshold": 3.0}, (-20, 20)),
]


@pytest.mark.parametrize("name,params,domain", PARAM_CASES,
                         ids=["%s-%s" % (n, "-".join(map(str, p.values())))
                              for n, p, _ in PARAM_CASES])
def test_parameters(name, params, domain):
    rng = np.random.default_rng(3)
    for d in ROWS[name]["dtypes"]:
        if d == "bool":
            continue
        v = rng.uniform(*domain, size=(6, 5))
        v[0, :3] = [0.5, -2.5, 25.0]     # ties for round
        x = pf.tensor(v.astype(np.float64)).astype(d)
        r = run_both(name, [x], params)
        if r is None:
            assert name == "clip" and d == "uint8"      # max -1 does not fit: pf.clip refuses
            continue
        assert_same(r[1], r[0], "%s(%s) %s" % (name, d, params))


def test_integer_edge_cases_match_exactly():
    """Division by zero, INT_MIN // -1, signs of floor division and remainder, integer
    power with negative exponents, NaN in maximum / minimum and in comparisons."""
    for d in ("int8", "int16", "int32", "int64"):
        info = np.iinfo(d)
        a = pf.tensor(np.array([info.min, info.min, -7, 7, -7, 7, 0, 5, -1, 1, 2, -2],
                               dtype=d))
        b = pf.tensor(np.array([-1, 0, 2, -2, -2, 2, 0, 0, -3, -3, -1, -1], dtype=d))
        for name in ("floor_divide", "remainder", "power", "add", "subtract", "multiply",
                     "maximum", "minimum", "bitwise_and", "bitwise_xor", "less_equal"):
            cpu, host = run_both(name, [a, b], {})
            assert_same(host, cpu, "%s %s" % (name, d))
        for name in ("negative", "abs", "square", "sign", "bitwise_not"):
            cpu, host = run_both(name, [a], {})
            assert_same(host, cpu, "%s %s" % (name, d))
    for d in FLOATS:
        nan = float("nan")
        a = pf.tensor([nan, 1.0, nan, -0.0, 0.0, float("inf"), -5.5, 5.5]).astype(d)
        b = pf.tensor([1.0, nan, nan, 0.0, -0.0, float("inf"), 2.0, -2.0]).astype(d)
        for name in ("maximum", "minimum", "equal", "not_equal", "less", "greater_equal",
                     "floor_divide", "remainder", "arctan2", "power"):
            cpu, host = run_both(name, [a, b], {})
            assert_same(host, cpu, "%s %s" % (name, d))


@pytest.mark.parametrize("src", NAMES)
def test_cast_kernel_matches_the_cpu_conversions_bit_for_bit(src):
    """Every pair of dtypes, from strided and negative-stride views: saturation of floats
    into integers, NaN to 0, wrapping between integers, rounding to float16 / bfloat16."""
    rng = np.random.default_rng(11)
    if src in FLOATS:
        v = np.concatenate([rng.standard_normal(40) * 10.0 ** rng.integers(-3, 12, 40),
                            [np.nan, np.inf, -np.inf, 0.0, -0.0, 2.5, -2.5, 65519.0, 65520.0,
                             3.0e38, -1e20, 1e-8, 255.9, -128.5, 2.0 ** 63, -2.0 ** 63]])
        t = pf.tensor(v).astype(src)
    else:
        t = make_tensor(gen_values(rng, {"domain": [(-300, 300)], "int_domain": "full"}, 0,
                                   src, (56,)), "contiguous")
    for layout in ("strided", "negative"):
        x = make_tensor(np.asarray(t.astype(pf.float64)) if src == "bfloat16" else
                        np.asarray(t), layout)
        x = x.astype(src)[::-1] if layout == "negative" else x.astype(src)
        for dst in NAMES:
            cpu = x.astype(dst)
            host = _C._cuda_host_cast(x, dst)
            assert host.dtype == cpu.dtype and host.shape == cpu.shape
            if dst in FLOATS:
                h = np.asarray(host.astype(pf.float64))
                c = np.asarray(cpu.astype(pf.float64))
                np.testing.assert_array_equal(h, c, err_msg="%s -> %s" % (src, dst))
                assert np.array_equal(np.signbit(h), np.signbit(c)), (src, dst)
            else:
                np.testing.assert_array_equal(np.asarray(host), np.asarray(cpu),
                                              err_msg="%s -> %s" % (src, dst))


def test_host_self_test_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match=r"^_cuda_host_ew: 'sum' is not an elementwise op of "
                                         r"the op table"):
        _C._cuda_host_ew("sum", (pf.ones(3),))
    with pytest.raises(ValueError, match=r"^_cuda_host_ew: add takes a tuple of 2 inputs"):
        _C._cuda_host_ew("add", (pf.ones(3),))
    with pytest.raises(TypeError, match=r"^_cuda_host_ew: out must be None or a cpu tensor"):
        _C._cuda_host_ew("exp", (pf.ones(3),), None, out=3)
    with pytest.raises(TypeError, match=r"^_cuda_host_cast: expected a cpu tensor; got list"):
        _C._cuda_host_cast([1.0], "float32")
