"""Tests for pyframe/_pandas.py, the pandas -> NumPy bridge of pf.tensor.

The module is loaded straight from its file so these tests run even before
the pyframe C extension is built (importing the package would need it).
"""

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

_PATH = pathlib.Path(__file__).resolve().parents[1] / "pyframe" / "_pandas.py"


def _load():
    spec = importlib.util.spec_from_file_location("_pf_pandas_bridge", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bridge = _load()


@pytest.mark.skipif(int(pd.__version__.split(".")[0]) < 3, reason="read-only views come with pandas 3 copy-on-write")
def test_single_block_frame_is_zero_copy_and_read_only():
    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    # pandas 3 copies a 2-D array in the constructor unless told not to.
    df = pd.DataFrame(a, columns=["x", "y", "z"], copy=False)
    out = bridge.to_numpy(df)
    assert out.shape == (4, 3) and out.dtype == np.float32
    assert np.shares_memory(out, a)
    np.testing.assert_array_equal(out, a)
    # Default constructor: the frame owns a copy; we still view *its* block.
    df2 = pd.DataFrame(a, columns=["x", "y", "z"])
    out2 = bridge.to_numpy(df2)
    assert np.shares_memory(out2, df2["y"].to_numpy(copy=False))
    assert not out2.flags.writeable  # copy-on-write view stays read-only
    np.testing.assert_array_equal(out2, df2.to_numpy())


def test_series_and_index_zero_copy():
    s = pd.Series(np.arange(5, dtype=np.int64), name="n")
    out = bridge.to_numpy(s)
    assert out.ndim == 1 and out.dtype == np.int64
    assert np.shares_memory(out, s.to_numpy(copy=False))
    np.testing.assert_array_equal(out, np.arange(5))
    idx = pd.Index([1.5, 2.5])
    np.testing.assert_array_equal(bridge.to_numpy(idx), [1.5, 2.5])


def test_mixed_dtypes_promote():
    df = pd.DataFrame({"b": [True, False], "i8": np.array([1, -2], np.int8),
                       "f": np.array([0.5, 1.5], np.float32)})
    out = bridge.to_numpy(df)
    assert out.dtype == np.result_type(np.bool_, np.int8, np.float32)
    np.testing.assert_array_equal(out, df.to_numpy(dtype=out.dtype))
    df = pd.DataFrame({"a": np.array([1, 2], np.uint8),
                       "b": np.array([3, 4], np.int16)})
    assert bridge.to_numpy(df).dtype == np.int16


@pytest.mark.parametrize("dtype,np_dtype", [
    ("Int64", np.int64), ("Int8", np.int8), ("UInt16", np.uint16),
    ("Float32", np.float32), ("boolean", np.bool_)])
def test_nullable_without_missing_converts(dtype, np_dtype):
    s = pd.Series([1, 0, 1], dtype=dtype, name="v")
    out = bridge.to_numpy(s)
    assert out.dtype == np_dtype
    np.testing.assert_array_equal(out, np.array([1, 0, 1], np_dtype))
    df = pd.DataFrame({"v": s, "w": np.array([2.0, 3.0, 4.0])})
    out = bridge.to_numpy(df)
    assert out.dtype == np.result_type(np_dtype, np.float64)
    np.testing.assert_array_equal(out[:, 0], [1, 0, 1])
    np.testing.assert_array_equal(out[:, 1], [2, 3, 4])


def test_nullable_with_missing_raises_value_error():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0],
                       "age": pd.array([30, None, None, None], dtype="Int64")})
    with pytest.raises(ValueError, match=r"pf\.tensor: column 'age' \(dtype "
                       r"Int64\) has 3 missing values.*fillna.*astype"):
        bridge.to_numpy(df)
    s = pd.Series([True, None], dtype="boolean")
    with pytest.raises(ValueError, match=r"pf\.as_tensor: series <unnamed> "
                       r"\(dtype boolean\) has 1 missing value;"):
        bridge.to_numpy(s, op="pf.as_tensor")


@pytest.mark.parametrize("values", [
    ["a", "b"],                                   # pandas 3 'str' dtype
    pd.array(["a", "b"], dtype=object),
    pd.to_datetime(["2024-01-01", "2024-01-02"]),
    np.array([1 + 2j, 3j]),
])
def test_non_numeric_columns_raise_type_error(values):
    df = pd.DataFrame({"ok": [1, 2], "name": values})
    dtype = str(df["name"].dtype)
    with pytest.raises(TypeError) as info:
        bridge.to_numpy(df)
    msg = str(info.value)
    assert msg.startswith("pf.tensor: column 'name' has dtype ")
    assert dtype in msg and "astype('category')" in msg
    with pytest.raises(TypeError, match=r"series 'name' has dtype"):
        bridge.to_numpy(df["name"])


def test_categorical_becomes_codes():
    cat = pd.Categorical(["lo", "hi", None, "lo"], categories=["lo", "hi"])
    df = pd.DataFrame({"c": cat, "f": np.array([1, 2, 3, 4], np.float32)})
    codes = df["c"].cat.codes
    np.testing.assert_array_equal(bridge.to_numpy(df["c"]), codes)
    assert bridge.to_numpy(df["c"]).dtype == codes.dtype == np.int8
    out = bridge.to_numpy(df)
    assert out.dtype == np.result_type(np.int8, np.float32)
    np.testing.assert_array_equal(out[:, 0], [0, 1, -1, 0])


def test_empty_frames():
    assert bridge.to_numpy(pd.DataFrame(index=range(3))).shape == (3, 0)
    assert bridge.to_numpy(pd.DataFrame()).dtype == np.float64
    df = pd.DataFrame({"a": np.array([], np.int32), "b": np.array([], np.int8)})
    out = bridge.to_numpy(df)
    assert out.shape == (0, 2) and out.dtype == np.int32


def test_is_pandas():
    df = pd.DataFrame({"a": [1]})
    assert bridge.is_pandas(df) and bridge.is_pandas(df["a"])
    assert bridge.is_pandas(df.index)
    for other in ([1, 2], np.zeros(3), 3.0, None, "pandas"):
        assert not bridge.is_pandas(other)
    with pytest.raises(TypeError, match="expected a pandas"):
        bridge.to_numpy([1, 2])


def test_module_does_not_import_pandas(monkeypatch):
    # Loading the bridge and asking about a list must not pull pandas in.
    for name in [m for m in sys.modules if m.split(".")[0] == "pandas"]:
        monkeypatch.delitem(sys.modules, name)
    mod = _load()
    assert not mod.is_pandas([1, 2])
    assert "pandas" not in sys.modules
