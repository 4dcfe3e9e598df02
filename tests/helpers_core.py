"""Small helpers shared by the core tests (dtypes, creation, random, bad input).

NumPy is the oracle: these convert between pyframe tensors and NumPy arrays
without going through the pyframe code under test where that matters.
"""
import numpy as np

import pyframe as pf

try:
    import ml_dtypes
except ImportError:  # bfloat16 checks that need it use pytest.importorskip
    ml_dtypes = None

# pf dtype names in the enum order of csrc/pyframe.h
DTYPE_NAMES = ("bool", "uint8", "int8", "int16", "int32", "int64",
               "float16", "bfloat16", "float32", "float64")
INT_NAMES = ("uint8", "int8", "int16", "int32", "int64")
FLOAT_NAMES = ("float16", "bfloat16", "float32", "float64")
ALL_DTYPES = tuple(getattr(pf, n) for n in DTYPE_NAMES)


def np_dtype(name):
    """The NumPy dtype matching a pf dtype name (ml_dtypes for bfloat16)."""
    name = str(name)
    if name == "bfloat16":
        if ml_dtypes is None:
            raise RuntimeError("bfloat16 oracle needs ml_dtypes")
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def to_numpy(t):
    """A NumPy copy of a tensor, in the tensor's own dtype (bfloat16 via ml_dtypes)."""
    return np.array(np.asarray(t), copy=True)


def from_numpy_copy(a):
    """A tensor holding the values of `a` in a.dtype, built without pf.from_numpy
    for bfloat16 (whose NumPy import is tested on its own)."""
    if a.dtype.name == "bfloat16":
        return pf.tensor(a.astype(np.float64).tolist(), dtype=pf.bfloat16)
    return pf.tensor(a)
