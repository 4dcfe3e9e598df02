"""From what the user hands to fit/evaluate/predict to batches of tensors.

Two kinds of input:

- array data: NumPy arrays, tensors, pandas DataFrames/Series, Python lists,
  or lists/tuples/dicts of those for several inputs or outputs.  They become
  tensors once (zero-copy where pf.asarray can), are validated once (same
  number of samples, no NaN or inf), and each batch is a slice (a view) or,
  when shuffling, one ``take`` per tensor with indices from pyframe's
  generator -- so ``pf.manual_seed`` fixes the order.
- streams: a pf.data.Dataset (batched by a DataLoader), a DataLoader, or a
  Python generator/iterator yielding ``x``, ``(x, y)`` or ``(x, y,
  sample_weight)``.

Floating-point inputs of another precision than the model's (float64 NumPy
arrays, typically) are cast per batch to the model's dtype, as Keras does;
integer inputs (token ids) are left alone."""
import math

import numpy as np

from .. import _C


def map_structure(fn, s):
    if isinstance(s, (list, tuple)) and not _is_array_leaf_list(s):
        return type(s)(map_structure(fn, v) for v in s)
    if isinstance(s, dict):
        return {k: map_structure(fn, v) for k, v in s.items()}
    return fn(s)


def leaves(s):
    out = []
    map_structure(out.append, s)
    return out


def _is_array_like(v):
    return isinstance(v, (_C.Tensor, np.ndarray)) or type(v).__module__.startswith("pandas")


def _is_array_leaf_list(s):
    """A (nested) list of numbers -- one input -- rather than a list of
    arrays: several inputs."""
    return not any(_is_array_like(v) or isinstance(v, dict) or
                   (isinstance(v, (list, tuple)) and not _is_array_leaf_list(v)) for v in s)


def is_stream(obj):
    """A Dataset, DataLoader, generator or other iterator (not array data)."""
    from ..data import Dataset, DataLoader
    if isinstance(obj, (Dataset, DataLoader)):
        return True
    if _is_array_like(obj) or isinstance(obj, (list, tuple, dict, str, bytes)):
        return False
    return hasattr(obj, "__next__") or (hasattr(obj, "__iter__") and not hasattr(obj, "shape"))


def _column_names(v):
    cols = getattr(v, "columns", None)
    if cols is not None:
        return [str(c) for c in cols]
    name = getattr(v, "name", None)
    return [str(name)] if name is not None and type(v).__module__.startswith("pandas") else None


class Leaf:
    """One input/target/weight array as a tensor, with its column names (pandas)."""

    __slots__ = ("t", "names", "what")

    def __init__(self, value, what, op):
        self.what = what
        self.names = _column_names(value)
        if isinstance(value, _C.Tensor):
            t = value.detach() if value.requires_grad else value
        else:
            try:
                t = _C.asarray(value)
            except (TypeError, ValueError) as e:
                raise type(e)("%s: could not use %s as an array: %s" % (op, what, e)) from None
        if t.ndim == 0:
            raise ValueError("%s: %s is a scalar; expected one value per sample (an array whose "
                             "first dimension is the sample count)" % (op, what))
        self.t = t


def _check_finite(leaf, op):
    t = leaf.t
    if not t.dtype.is_floating_point or t.size == 0:
        return
    # NaN and inf carry into a sum, so a finite sum proves every value finite
    # (one pass, no mask); a sum that overflows falls back to the exact test
    if bool(_C.isfinite(t.sum())) or bool(_C.isfinite(t).all()):
        return
    a = np.asarray(t.astype(_C.float64) if t.dtype in (_C.bfloat16,) else t)
    bad = np.argwhere(~np.isfinite(a))[0]
    value = a[tuple(bad)]
    where = "sample %d" % bad[0]
    if len(bad) > 1:
        if leaf.names is not None and len(leaf.names) == a.shape[-1] and a.ndim == 2:
            where += ", column %r (feature %d)" % (leaf.names[bad[1]], bad[1])
        else:
            where += ", position %s" % (tuple(int(i) for i in bad[1:]),)
    elif leaf.names is not None and len(leaf.names) == 1:
        where += " of %r" % leaf.names[0]
    count = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
    raise ValueError("%s: %s contains %s at %s (%d non-finite value%s in all); fill or drop "
                     "missing values first (df.fillna / df.dropna, or np.nan_to_num)"
                     % (op, leaf.what, "NaN" if np.isnan(value) else "inf", where, count,
                        "" if count == 1 else "s"))


def _structure(value, what, op):
    if isinstance(value, dict):
        return {k: _structure(v, "%s[%r]" % (what, k), op) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not _is_array_leaf_list(value):
        return type(value)(_structure(v, "%s[%d]" % (what, i), op) for i, v in enumerate(value))
    return Leaf(value, what, op)


def _leaf_list(s):
    out = []

    def walk(v):
        if isinstance(v, Leaf):
            out.append(v)
        elif isinstance(v, dict):
            for w in v.values():
                walk(w)
        elif isinstance(v, (list, tuple)):
            for w in v:
                walk(w)
    walk(s)
    return out


def _map_leaves(fn, s):
    if isinstance(s, Leaf):
        return fn(s)
    if isinstance(s, dict):
        return {k: _map_leaves(fn, v) for k, v in s.items()}
    if isinstance(s, (list, tuple)):
        return type(s)(_map_leaves(fn, v) for v in s)
    return s


class ArrayData:
    """Array data (x, y, sample_weight) held as tensors; batches by slicing."""

    def __init__(self, x, y=None, sample_weight=None, *, op="fit", check=True):
        self.op = op
        self.x = _structure(x, "x", op)
        self.y = None if y is None else _structure(y, "y", op)
        self.sw = None if sample_weight is None else _structure(sample_weight, "sample_weight",
                                                                 op)
        parts = [("x", self.x), ("y", self.y), ("sample_weight", self.sw)]
        counts = [(leaf.what, leaf.t.shape[0]) for _, s in parts if s is not None
                  for leaf in _leaf_list(s)]
        if not counts:
            raise ValueError("%s: x is empty; give at least one input array" % op)
        if len({n for _, n in counts}) > 1:
            desc = ", ".join("%s has %d" % (w, n) for w, n in counts)
            raise ValueError("%s: inputs disagree on the number of samples (%s); x, y and "
                             "sample_weight need the same first dimension" % (op, desc))
        self.n = counts[0][1]
        if check:
            for _, s in parts:
                if s is not None:
                    for leaf in _leaf_list(s):
                        _check_finite(leaf, op)

    def _tensors(self, s):
        return None if s is None else _map_leaves(lambda leaf: leaf.t, s)

    def split(self, validation_split):
        """(train, validation): the last fraction of the samples, before any
        shuffling, is held out (Keras's rule)."""
        split_at = int(math.ceil(self.n * (1.0 - validation_split)))
        if split_at <= 0 or split_at >= self.n:
            raise ValueError("%s: validation_split=%r leaves %d training and %d validation "
                             "samples out of %d; both need at least one"
                             % (self.op, validation_split, split_at, self.n - split_at, self.n))
        train, val = _Sliced(self, 0, split_at), _Sliced(self, split_at, self.n)
        return train, val

    def num_batches(self, batch_size):
        return int(math.ceil(self.n / batch_size)) if self.n else 0

    def batches(self, batch_size, shuffle=False):
        """An iterator of (x, y, sample_weight) batches over one epoch."""
        x, y, sw = self._tensors(self.x), self._tensors(self.y), self._tensors(self.sw)
        n = self.n
        if shuffle:
            perm = _C.argsort(_C.rand(n))
            for start in range(0, n, batch_size):
                idx = perm[start:start + batch_size]
                yield _take(x, idx), _take(y, idx), _take(sw, idx)
        else:
            for start in range(0, n, batch_size):
                sl = slice(start, start + batch_size)
                yield _slice(x, sl), _slice(y, sl), _slice(sw, sl)

    def labels(self):
        """y as a single tensor, or None (for class_weight)."""
        return self.y.t if isinstance(self.y, Leaf) else None


class _Sliced(ArrayData):
    """Samples [start, stop) of another ArrayData, sharing its tensors."""

    def __init__(self, parent, start, stop):
        self.op = parent.op
        sl = slice(start, stop)

        def cut(s):
            if s is None:
                return None
            return _map_leaves(lambda leaf: _cut_leaf(leaf, sl), s)
        self.x, self.y, self.sw = cut(parent.x), cut(parent.y), cut(parent.sw)
        self.n = stop - start


def _cut_leaf(leaf, sl):
    new = Leaf.__new__(Leaf)
    new.t, new.names, new.what = leaf.t[sl], leaf.names, leaf.what
    return new


def _take(s, idx):
    if s is None:
        return None
    if isinstance(s, _C.Tensor):
        return _C.take(s, idx, axis=0)
    return map_structure(lambda t: _C.take(t, idx, axis=0), s)


def _slice(s, sl):
    if s is None:
        return None
    if isinstance(s, _C.Tensor):
        return s[sl]
    return map_structure(lambda t: t[sl], s)


class StreamData:
    """A Dataset, DataLoader or generator; each element is unpacked into
    (x, y, sample_weight) and its arrays turned into tensors."""

    def __init__(self, obj, *, batch_size=None, shuffle=False, op="fit"):
        from ..data import Dataset, DataLoader
        self.op = op
        self.kind = type(obj).__name__
        if isinstance(obj, Dataset):
            obj = DataLoader(obj, batch_size=batch_size or 32, shuffle=shuffle)
        self.loader = obj if isinstance(obj, DataLoader) else None
        self.reiterable = self.loader is not None or (
            hasattr(obj, "__iter__") and not hasattr(obj, "__next__"))
        self.obj = obj
        self._it = None
        self._exhausted = False

    def num_batches(self, batch_size=None):
        try:
            return len(self.obj)
        except TypeError:
            return None

    def batches(self, steps=None):
        """One epoch: ``steps`` elements (continuing where the last epoch
        stopped, for a generator), or until the data runs out."""
        if self.reiterable:
            it = iter(self.obj)
        else:
            if self._it is None:
                self._it = iter(self.obj)
            it = self._it
        count = 0
        while steps is None or count < steps:
            try:
                item = next(it)
            except StopIteration:
                if not self.reiterable:
                    self._exhausted = True
                break
            count += 1
            yield self._unpack(item)
        if count == 0:
            raise ValueError("%s: the %s gave no batches this epoch; a Python generator can "
                             "be read only once, so give an infinite generator with "
                             "steps_per_epoch=, or a pf.data.Dataset / DataLoader that can be "
                             "iterated every epoch" % (self.op, self.kind))

    def _unpack(self, item):
        if isinstance(item, (tuple, list)) and 1 <= len(item) <= 3:
            x = item[0]
            y = item[1] if len(item) > 1 else None
            sw = item[2] if len(item) > 2 else None
        elif isinstance(item, (tuple, list)):
            raise ValueError("%s: each element of the %s must be x, (x, y) or (x, y, "
                             "sample_weight); got a %s of length %d"
                             % (self.op, self.kind, type(item).__name__, len(item)))
        else:
            x, y, sw = item, None, None
        conv = _map_leaves
        return tuple(None if v is None else conv(lambda leaf: leaf.t,
                                                 _structure(v, what, self.op))
                     for v, what in ((x, "x"), (y, "y"), (sw, "sample_weight")))


def adapt(x, y=None, sample_weight=None, *, batch_size=None, shuffle=False, op="fit",
          check=True):
    """ArrayData or StreamData for the given input, validating the combination."""
    if is_stream(x):
        if y is not None:
            raise ValueError("%s: y must not be given when x is a %s (it yields (x, y) pairs "
                             "itself); got y of type %s" % (op, type(x).__name__,
                                                            type(y).__name__))
        if sample_weight is not None:
            raise ValueError("%s: sample_weight must not be given when x is a %s; yield "
                             "(x, y, sample_weight) from it instead" % (op, type(x).__name__))
        return StreamData(x, batch_size=batch_size, shuffle=shuffle, op=op)
    if x is None:
        raise ValueError("%s: x is None; give the input data (arrays, a DataFrame, a Dataset, "
                         "a DataLoader or a generator)" % op)
    return ArrayData(x, y, sample_weight, op=op, check=check)
