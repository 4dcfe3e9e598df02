"""The tiled path of contiguous copies of transposed matrices (tensor.c
copy_transposed) against NumPy, at sizes around the tile and for every item size."""
import numpy as np
import pytest

import pyframe as pf


@pytest.mark.parametrize("shape", [(32, 32), (33, 70), (100, 37), (257, 64), (31, 200)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int32", "int64", "int8"])
def test_transposed_copies_match_numpy(shape, dtype):
    a = (np.random.default_rng(0).random(shape) * 100).astype(dtype)
    t = pf.tensor(a)
    np.testing.assert_array_equal(np.array(t.T.contiguous()), a.T)
    np.testing.assert_array_equal(np.array(t.T[3:, 5:].clone()), a.T[3:, 5:])
    np.testing.assert_array_equal(np.array(t.T.astype(pf.float64)), a.T.astype(np.float64))
    # a transpose inside a larger row pitch (a column block of a wider matrix)
    wide = pf.tensor(np.concatenate([a, a], axis=1))
    np.testing.assert_array_equal(np.array(wide[:, :shape[1]].T.contiguous()), a.T)
