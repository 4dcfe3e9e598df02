"""Build facts, threads and show_config."""
import subprocess
import sys

import pytest

import pyframe as pf


def test_show_config_names_every_fact(capsys):
    pf.show_config()
    out = capsys.readouterr().out
    for key in ("pyframe", "BLAS", "BLAS core", "threads", "SIMD", "CUDA", "OpenMP"):
        assert key in out
    c = pf.config()
    assert c["version"] == pf.__version__
    assert "OpenBLAS" in c["blas"]
    # the core named in the config string is the one OpenBLAS reports picking
    assert c["blas_core"] and c["blas_core"] in c["blas"] or c["blas_core"] != ""
    assert c["simd"] in ("AVX512", "AVX2", "AVX", "SSE2", "NEON", "scalar")
    assert c["cuda_available"] is False


def test_set_num_threads_sets_pyframe_and_openblas_together():
    before = pf.get_num_threads()
    try:
        for n in (1, 2, 3):
            pf.set_num_threads(n)
            c = pf.config()
            assert pf.get_num_threads() == n
            assert c["num_threads"] == n
            assert c["blas_threads"] == n
    finally:
        pf.set_num_threads(before)


@pytest.mark.parametrize("bad, exc, msg", [
    (0, ValueError, r"set_num_threads: expected 1 <= n <= 1024; got 0"),
    (-3, ValueError, r"got -3"),
    (2.0, TypeError, r"set_num_threads: expected an integer; got float"),
    ("4", TypeError, r"got str"),
])
def test_set_num_threads_rejects_bad_counts(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        pf.set_num_threads(bad)


def test_import_does_not_import_numpy_or_pandas():
    # `import pyframe` stays light: NumPy loads on the first exchange, pandas never by itself
    code = ("import sys, pyframe as pf; t = pf.ones(3); "
            "print('numpy' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_demo_module_runs():
    out = subprocess.run([sys.executable, "-m", "pyframe"], capture_output=True, text=True,
                         check=True)
    assert "shares memory with x: True" in out.stdout
