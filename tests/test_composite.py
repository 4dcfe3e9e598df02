"""Composite ops (built from elementwise ops) against NumPy."""
import numpy as np
import pytest

import pyframe as pf


@pytest.mark.parametrize("equal_nan", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64"])
def test_isclose_matches_numpy(dtype, equal_nan):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 7)).astype(dtype)
    b = (a + rng.normal(scale=1e-3, size=(5, 7)) * rng.integers(0, 2, (5, 7))).astype(dtype)
    if dtype.startswith("float"):
        a[0, :3] = [np.nan, np.inf, -np.inf]
        b[0, :3] = [np.nan, np.inf, np.inf]
    for rtol, atol in [(1e-5, 1e-8), (1e-2, 0.0), (0.0, 1e-3)]:
        got = np.asarray(pf.isclose(pf.tensor(a), pf.tensor(b), rtol=rtol, atol=atol,
                                    equal_nan=equal_nan))
        want = np.isclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol, atol=atol,
                          equal_nan=equal_nan)
        if dtype == "float16":
            # the tolerance is compared in float16 there; only clear-cut cases must agree
            clear = np.abs(a.astype(np.float64) - b) > 4 * (atol + rtol * np.abs(b)) + 1e-3
            assert not got[clear & ~np.isnan(a)].any()
        else:
            np.testing.assert_array_equal(got, want)
    # broadcasting and the method form
    got = pf.tensor(a).isclose(pf.tensor(a[0]))
    np.testing.assert_array_equal(np.asarray(got), np.isclose(a, a[0]))
