"""Bridge from pandas objects to NumPy arrays for the tensor constructor.

pandas is never imported here at module import time: ``is_pandas`` only looks
at ``sys.modules``, and ``to_numpy`` is only reached with a pandas object in
hand, so pandas is already loaded by then.

Memory: numeric data is taken *without copying* whenever pandas allows it.
A DataFrame whose columns share one NumPy dtype and live in one block (for
example one built from a 2-D array), a plain numeric Series or Index, and a
nullable column without missing values all give views of pandas' own memory.
Under pandas 3 copy-on-write these views are read-only, and we leave them so:
a tensor built from them is read-only too, because writing into it would
change the user's frame behind pandas' back.  Call ``.copy()`` on the tensor
(or the frame) to get writable memory.  Frames with mixed dtypes are promoted
with ``np.result_type`` into a fresh (writable) array.
"""

import sys

import numpy as np

# The dtypes a tensor can hold; anything else is refused with a hint.
_NUMERIC = frozenset(np.dtype(t) for t in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
    "uint64", "float16", "float32", "float64"))

_TYPE_HINT = ("convert it to numbers first (pd.to_numeric({ref}) or "
              "{ref}.astype('float32')), or use categorical codes "
              "({ref}.astype('category'))")


def is_pandas(obj):
    """True for a pandas DataFrame, Series or Index (subclasses included).

    Never imports pandas: if pandas is not loaded, obj cannot be one of its
    objects.  The cheap module-name test on the MRO keeps the common case
    (lists, ndarrays, tensors) away from the isinstance check.
    """
    pd = sys.modules.get("pandas")
    if pd is None:
        return False
    if not any(getattr(c, "__module__", "").startswith("pandas")
               for c in type(obj).__mro__):
        return False
    return isinstance(obj, (pd.DataFrame, pd.Series, pd.Index))


def _column(values, dtype, what, ref, op):
    """values: a pandas ExtensionArray / ndarray-backed array of one column.

    Returns a 1-D ndarray of a dtype in _NUMERIC, or raises with a message
    naming the op, the column (``what``) and how to fix it.
    """
    if isinstance(dtype, np.dtype):
        if dtype in _NUMERIC:
            return None  # plain NumPy column: the caller takes it as is
        nd = None
    elif getattr(dtype, "name", None) == "category":
        # Codes keep pandas' narrow dtype (int8 for < 128 categories) and
        # -1 for a missing value, exactly like Series.cat.codes.
        return values.codes
    else:
        # Masked (Int64, Float64, boolean) and Arrow dtypes say which NumPy
        # dtype they hold; string/datetime/period/interval ones do not map to
        # a numeric one.
        nd = getattr(dtype, "numpy_dtype", None)
    if nd is None or np.dtype(nd) not in _NUMERIC:
        raise TypeError(f"{op}: {what} has dtype {dtype}, which is not "
                        f"numeric; " + _TYPE_HINT.format(ref=ref))
    missing = int(np.count_nonzero(values.isna()))
    if missing:
        raise ValueError(
            f"{op}: {what} (dtype {dtype}) has {missing} missing value"
            f"{'s' if missing != 1 else ''}; fill them ({ref}.fillna(...)) "
            f"or cast to float with NaN ({ref}.astype('float64')) first")
    # No missing values: masked arrays hand out their data buffer, no copy.
    return values.to_numpy(dtype=np.dtype(nd), copy=False)


def to_numpy(obj, op="pf.tensor"):
    """Convert a pandas DataFrame, Series or Index to a NumPy array.

    DataFrame -> 2-D (n_rows, n_cols), columns in frame order; Series and
    Index -> 1-D.  See the module docstring for when the result is a
    read-only view of pandas' memory.  Raises TypeError for non-numeric
    columns and ValueError for nullable columns holding missing values.
    """
    pd = sys.modules.get("pandas")
    if pd is None or not is_pandas(obj):
        raise TypeError(f"{op}: expected a pandas DataFrame, Series or "
                        f"Index, got {type(obj).__name__}")
    if isinstance(obj, (pd.Series, pd.Index)):
        kind = "series" if isinstance(obj, pd.Series) else "index"
        name = "<unnamed>" if obj.name is None else repr(obj.name)
        arr = _column(obj.array, obj.dtype, f"{kind} {name}",
                      "s" if kind == "series" else "idx", op)
        return obj.to_numpy(copy=False) if arr is None else arr

    # DataFrame: check every column first so errors come before any copy.
    # items() yields positionally, so duplicate column labels are fine.
    cols, dtypes = [], set()
    for label, col in obj.items():
        arr = _column(col.array, col.dtype, f"column {label!r}",
                      f"df[{label!r}]", op)
        cols.append((col, arr))
        dtypes.add(col.dtype if arr is None else arr.dtype)
    if not cols:
        return np.empty((len(obj), 0), dtype=np.float64)
    # A set: at most 12 distinct dtypes, never more than result_type's
    # argument limit however wide the frame.
    dtype = np.result_type(*dtypes)
    if all(arr is None for _, arr in cols):
        # pandas returns a view of its block when the frame is a single
        # block of this dtype, and interleaves (copies) otherwise.
        return obj.to_numpy(dtype=dtype, copy=False)
    out = np.empty((len(obj), len(cols)), dtype=dtype)
    for j, (col, arr) in enumerate(cols):
        out[:, j] = col.to_numpy(copy=False) if arr is None else arr
    return out
