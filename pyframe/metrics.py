"""Keras-named stateful metrics: ``update_state`` every batch, ``result`` when
someone looks, ``reset_state`` between epochs.

    m = pf.metrics.AUC()
    for x, y in loader:
        m.update_state(y, model(x))
    float(m.result())

State lives in pyframe tensors and is updated by pyframe ops only, so the
trainer can call ``update_state`` on every batch without reading anything back
to the host; values leave the compute path when ``result()`` is converted.
Inputs may be tensors, NumPy arrays, lists or pandas objects; tensors that
carry autograd history are detached first, so metrics never grow the graph.

Precision choice: every accumulator is a float64 tensor (Keras keeps float32).
The state is a handful of scalars, or one vector per threshold or class, so
the extra width costs nothing, and sums of counts stay exact far beyond the
2**24 samples where float32 stops counting.  ``result()`` is computed in
float64 and returned in the metric's ``dtype`` (float32 unless asked).
"""
import numbers

from . import _C

__all__ = [
    "Metric", "Mean", "Sum", "MeanMetricWrapper",
    "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
    "Precision", "Recall", "AUC", "F1Score", "FBetaScore",
    "MeanSquaredError", "RootMeanSquaredError", "MeanAbsoluteError", "R2Score",
    "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
    "mean_squared_error", "mean_absolute_error",
    "get", "serialize", "deserialize",
]

_F64 = _C.float64
# Keras puts the outermost AUC thresholds just outside [0, 1], so that a
# prediction of exactly 0 counts as positive at the lowest one and a
# prediction of exactly 1 as negative at the highest one.
_EDGE = 1e-7


# --------------------------------------------------------------------------
# input helpers (shared by the metric classes and the functional forms)

def _tensor(who, arg, x, dtype=None):
    """x as a tensor without autograd history (Python numbers are read straight
    into ``dtype`` when one is given, so 0.1 does not pass through float32)."""
    if isinstance(x, _C.Tensor):
        return x.detach() if x.requires_grad else x
    if x is None:
        raise TypeError("%s: %s is None; expected a tensor, a NumPy array, a list or a pandas "
                        "object" % (who, arg))
    try:
        return _C.asarray(x) if dtype is None else _C.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise type(e)("%s: %s could not be made a tensor: %s" % (who, arg, e)) from None


def _as_float(t):
    """Floating values for arithmetic: integers and bools become float32, and
    half types too, so that a batch sum cannot overflow float16's range."""
    if t.dtype == _C.float32 or t.dtype == _F64:
        return t
    return t.astype(_C.float32)


def _float_pair(who, y_true, y_pred):
    """Both as floats of one dtype: y_pred's, or float64 when y_true is float64
    (so float64 targets are not rounded to float32)."""
    yt = _tensor(who, "y_true", y_true)
    yp = _as_float(_tensor(who, "y_pred", y_pred))
    dt = _F64 if yt.dtype == _F64 else yp.dtype
    if yp.dtype != dt:
        yp = yp.astype(dt)
    if yt.dtype != dt:
        yt = yt.astype(dt)
    return yt, yp


def _match_rank(who, yt, yp):
    """Drop a trailing axis of size 1 from whichever side has one more axis
    ((N, 1) labels against (N,) predictions and the reverse), then insist on
    equal shapes."""
    if yt.ndim == yp.ndim + 1 and yt.shape[-1] == 1:
        yt = yt.squeeze(-1)
    elif yp.ndim == yt.ndim + 1 and yp.shape[-1] == 1:
        yp = yp.squeeze(-1)
    if yt.shape != yp.shape:
        raise ValueError("%s: y_true of shape %s does not match y_pred of shape %s; both must "
                         "have the same shape (a trailing axis of size 1 on either side is "
                         "dropped)" % (who, yt.shape, yp.shape))
    return yt, yp


def _sample_weight(who, sample_weight, shape, dtype):
    """sample_weight as a tensor whose axes are 1 or equal to the leading axes
    of ``shape`` (one weight per sample, or per sample and output), in dtype."""
    w = _tensor(who, "sample_weight", sample_weight, dtype)
    if w.dtype != dtype:
        w = w.astype(dtype)
    if not shape:
        if w.size != 1:
            raise ValueError("%s: sample_weight of shape %s for a single value; expected one "
                             "weight" % (who, w.shape))
        return w.reshape(())
    while w.ndim > len(shape) and w.shape[-1] == 1:
        w = w.squeeze(-1)
    if w.ndim == 0:
        w = w.reshape((1,))
    if w.ndim > len(shape) or any(a not in (1, b) for a, b in zip(w.shape, shape)):
        raise ValueError("%s: sample_weight of shape %s does not fit a batch of shape %s; expected "
                         "one weight per sample, shape (%d,), or a shape matching the batch's "
                         "leading axes" % (who, w.shape, shape, shape[0]))
    return w


def _weights_like(who, sample_weight, shape, dtype):
    """sample_weight broadcast to the full ``shape`` (None stays None)."""
    if sample_weight is None:
        return None
    w = _sample_weight(who, sample_weight, shape, dtype)
    if w.ndim < len(shape):
        w = w.reshape(w.shape + (1,) * (len(shape) - w.ndim))
    return w.broadcast_to(shape) if w.shape != tuple(shape) else w


def _safe_div(a, b):
    """a / b, and 0 where b is 0 (no NaN from empty counts)."""
    ok = b > 0
    return _C.where(ok, a / _C.where(ok, b, 1.0), 0.0)


def _labels(who, y_true, y_pred):
    """Integer class indices of shape y_pred.shape[:-1], range-checked against
    the class axis.  The check rides on a gather (whose C bounds check raises)
    instead of reading min/max back to the host on every batch."""
    yt = y_true
    if yt.ndim == y_pred.ndim and yt.ndim and yt.shape[-1] == 1:
        yt = yt.squeeze(-1)
    if yt.shape != y_pred.shape[:-1]:
        hint = (" (y_true looks one-hot: use the non-sparse metric)"
                if yt.shape == y_pred.shape else "")
        raise ValueError("%s: integer labels y_true of shape %s do not match y_pred of shape %s; "
                         "expected labels of shape %s or %s%s"
                         % (who, yt.shape, y_pred.shape, y_pred.shape[:-1],
                            y_pred.shape[:-1] + (1,), hint))
    if yt.dtype != _C.int64:
        yt = yt.astype(_C.int64)
    n = y_pred.shape[-1]
    # negative labels would wrap around in the gather: send them past the end
    probe = _C.where(yt < 0, n, yt).unsqueeze(-1)
    try:
        picked = _C.take_along_axis(y_pred, probe, axis=-1).squeeze(-1)
    except IndexError:
        # the error path may read values back: say which label is wrong
        lo = int(yt.min())
        bad = lo if lo < 0 else int(yt.max())
        raise ValueError("%s: label %d is out of range for y_pred with %d classes; labels must be "
                         "class indices in [0, %d)" % (who, bad, n, n)) from None
    return yt, picked


def _need_class_axis(who, y_true, y_pred, sparse):
    if y_pred.ndim < 2 or y_pred.shape[-1] < 1:
        other = ("BinaryAccuracy" if sparse else "BinaryAccuracy or SparseCategoricalAccuracy")
        raise ValueError("%s: y_pred of shape %s has no class axis; expected scores of shape "
                         "(N, C)%s (y_true has shape %s; for one score per sample use %s)"
                         % (who, y_pred.shape, " with integer labels y_true of shape (N,)"
                            if sparse else " with one-hot y_true of the same shape",
                            y_true.shape, other))


def _check_k(who, k):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError("%s: k must be a positive integer; got %r" % (who, k))
    return int(k)


def _check_threshold(who, threshold, arg="threshold"):
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) \
            or not 0 <= threshold <= 1:
        raise ValueError("%s: %s must be a number in [0, 1]; got %r" % (who, arg, threshold))
    return float(threshold)


# --------------------------------------------------------------------------
# functional forms: per-sample values, as Keras's keras.metrics.<name> functions

def _accuracy(who, y_true, y_pred):
    yt = _tensor(who, "y_true", y_true)
    yp = _tensor(who, "y_pred", y_pred)
    yt, yp = _match_rank(who, yt, yp)
    return yt == yp


def _binary_accuracy(who, y_true, y_pred, threshold=0.5):
    yt = _tensor(who, "y_true", y_true)
    yp = _tensor(who, "y_pred", y_pred)
    yt, yp = _match_rank(who, yt, yp)
    return (yp > threshold).astype(yt.dtype) == yt


def _categorical_accuracy(who, y_true, y_pred):
    yt = _tensor(who, "y_true", y_true)
    yp = _tensor(who, "y_pred", y_pred)
    _need_class_axis(who, yt, yp, sparse=False)
    if yt.shape != yp.shape:
        raise ValueError("%s: one-hot y_true of shape %s does not match y_pred of shape %s; "
                         "expected the same shape (for integer labels use "
                         "SparseCategoricalAccuracy)" % (who, yt.shape, yp.shape))
    return _C.argmax(yt, axis=-1) == _C.argmax(yp, axis=-1)


def _sparse_categorical_accuracy(who, y_true, y_pred):
    yt = _tensor(who, "y_true", y_true)
    yp = _tensor(who, "y_pred", y_pred)
    _need_class_axis(who, yt, yp, sparse=True)
    labels, _ = _labels(who, yt, yp)
    return _C.argmax(yp, axis=-1) == labels


def _in_top_k(yp, picked, k):
    # the true class is in the top k when fewer than k classes score strictly
    # higher; ties with the true class count in its favour
    return (yp > picked.unsqueeze(-1)).sum(axis=-1) < k


def _top_k_categorical_accuracy(who, y_true, y_pred, k=5):
    yt = _tensor(who, "y_true", y_true)
    yp = _tensor(who, "y_pred", y_pred)
    _need_class_axis(who, yt, yp, sparse=False)
    if yt.shape != yp.shape:
        raise ValueError("%s: one-hot y_true of shape %s does not match y_pred of shape %s; "
                         "expected the same shape (for integer labels use "
                         "SparseTopKCategoricalAccuracy)" % (who, yt.shape, yp.shape))
    picked = _C.take_along_axis(yp, _C.argmax(yt, axis=-1).unsqueeze(-1), axis=-1).squeeze(-1)
    return _in_top_k(yp, picked, k)


def _sparse_top_k_categorical_accuracy(who, y_true, y_pred, k=5):
    yt = _tensor(who, "y_true", y_true)
    yp = _tensor(who, "y_pred", y_pred)
    _need_class_axis(who, yt, yp, sparse=True)
    _, picked = _labels(who, yt, yp)
    return _in_top_k(yp, picked, k)


def _squared_error(who, y_true, y_pred):
    yt, yp = _match_rank(who, *_float_pair(who, y_true, y_pred))
    d = yp - yt
    return (d * d).mean(axis=-1) if d.ndim > 1 else d * d


def _absolute_error(who, y_true, y_pred):
    yt, yp = _match_rank(who, *_float_pair(who, y_true, y_pred))
    d = _C.abs(yp - yt)
    return d.mean(axis=-1) if d.ndim > 1 else d


def accuracy(y_true, y_pred):
    """1 where y_pred equals y_true exactly, per element."""
    return _accuracy("accuracy", y_true, y_pred)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1 where (y_pred > threshold) equals the 0/1 label, per element."""
    return _binary_accuracy("binary_accuracy", y_true, y_pred, threshold)


def categorical_accuracy(y_true, y_pred):
    """1 per sample where the argmax of y_pred is the argmax of one-hot y_true."""
    return _categorical_accuracy("categorical_accuracy", y_true, y_pred)


def sparse_categorical_accuracy(y_true, y_pred):
    """1 per sample where the argmax of y_pred is the integer label."""
    return _sparse_categorical_accuracy("sparse_categorical_accuracy", y_true, y_pred)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1 per sample where one-hot y_true's class is among y_pred's k highest."""
    return _top_k_categorical_accuracy("top_k_categorical_accuracy", y_true, y_pred,
                                       _check_k("top_k_categorical_accuracy", k))


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1 per sample where the integer label is among y_pred's k highest scores."""
    return _sparse_top_k_categorical_accuracy("sparse_top_k_categorical_accuracy", y_true,
                                              y_pred,
                                              _check_k("sparse_top_k_categorical_accuracy", k))


def mean_squared_error(y_true, y_pred):
    """Squared error per sample (mean over the last axis when there is one beyond the batch)."""
    return _squared_error("mean_squared_error", y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    """Absolute error per sample (mean over the last axis when there is one beyond the batch)."""
    return _absolute_error("mean_absolute_error", y_true, y_pred)


_FUNCTIONS = {f.__name__: f for f in (
    accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
    top_k_categorical_accuracy, sparse_top_k_categorical_accuracy, mean_squared_error,
    mean_absolute_error)}


# --------------------------------------------------------------------------
# base classes

def _result_dtype(cls_name, dtype):
    if dtype is None:
        return _C.float32
    if isinstance(dtype, str):
        dt = {"float16": _C.float16, "bfloat16": _C.bfloat16, "float32": _C.float32,
              "float64": _F64}.get(dtype)
    else:
        dt = dtype if isinstance(dtype, _C.dtype) else None
    if dt is None or not dt.is_floating_point:
        raise TypeError("%s: dtype must be a floating dtype (pf.float32, pf.float64 or their "
                        "names); got %r" % (cls_name, dtype))
    return dt


class Metric:
    """Base of every metric.  Subclasses create their state with
    ``_add_state`` and implement ``update_state`` and ``result``."""

    _default_name = "metric"

    def __init__(self, name=None, dtype=None):
        if name is not None and not isinstance(name, str):
            raise TypeError("%s: name must be a string; got %s"
                            % (type(self).__name__, type(name).__name__))
        self.name = name or self._default_name
        self.dtype = _result_dtype(type(self).__name__, dtype)
        self._states = {}

    @property
    def _who(self):
        # how error messages name this metric: its class, and its name if custom
        cls = type(self).__name__
        return cls if self.name == self._default_name else "%s %r" % (cls, self.name)

    def _add_state(self, key, shape=()):
        t = _C.zeros(shape, dtype=_F64)
        self._states[key] = t
        return t

    def _to_device(self, device):
        """Move the state and the constants of this metric to ``device``, keeping the
        tensor objects (their data is swapped), so references stay valid."""
        for t in list(vars(self).values()) + list(self._states.values()):
            if isinstance(t, _C.Tensor) and t.device != device:
                t.data = t.to(device)

    @property
    def variables(self):
        """The state tensors (updated in place, so references stay valid)."""
        return list(self._states.values())

    def reset_state(self):
        """Zero the state, keeping its tensors (and any shape learnt from data)."""
        for t in self._states.values():
            t.zero_()

    def update_state(self, *args, **kwargs):
        raise NotImplementedError("%s must implement update_state" % type(self).__name__)

    def result(self):
        raise NotImplementedError("%s must implement result" % type(self).__name__)

    def _out(self, t):
        return t.astype(self.dtype) if t.dtype != self.dtype else t

    def __call__(self, *args, **kwargs):
        """Update the state with one batch and return the result so far."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        """Constructor arguments as a JSON-able dict."""
        return {"name": self.name, "dtype": str(self.dtype)}

    @classmethod
    def from_config(cls, config):
        if not isinstance(config, dict):
            raise TypeError("%s.from_config: expected a dict from get_config(); got %s"
                            % (cls.__name__, type(config).__name__))
        try:
            return cls(**config)
        except TypeError as e:
            raise TypeError("%s.from_config: the config does not fit the constructor (%s)"
                            % (cls.__name__, e)) from None

    def __repr__(self):
        return "<%s name=%r>" % (type(self).__name__, self.name)


class Mean(Metric):
    """The (weighted) mean of the values given to ``update_state``.

    Values with axes beyond the sample weight's are averaged over those axes
    first, so each sample counts once whatever its shape; without weights, each
    entry of the first axis is a sample."""

    _default_name = "mean"

    def __init__(self, name=None, dtype=None):
        super().__init__(name, dtype)
        self.total = self._add_state("total")
        self.count = self._add_state("count")

    def update_state(self, values, sample_weight=None):
        self._accumulate(_as_float(_tensor(self._who, "values", values)), sample_weight)

    def _accumulate(self, v, sample_weight):
        if not v.dtype.is_floating_point:
            v = v.astype(_C.float32)
        if sample_weight is None:
            if v.ndim == 0:
                self.total.add_(v)
                self.count.add_(1)
                return
            n = v.shape[0]
            s = v.sum()
            if v.ndim > 1 and v.size:
                s = s * (n / v.size)          # sum of the per-sample means
            self.total.add_(s)
            self.count.add_(n)
            return
        w = _sample_weight(self._who, sample_weight, v.shape, v.dtype)
        if v.ndim > w.ndim:
            v = v.mean(axis=tuple(range(w.ndim, v.ndim)))
        if w.shape != v.shape:
            w = w.broadcast_to(v.shape)
        self.total.add_((v * w).sum())
        self.count.add_(w.sum())

    def result(self):
        return self._out(_safe_div(self.total, self.count))


class Sum(Metric):
    """The (weighted) sum of the values given to ``update_state``."""

    _default_name = "sum"

    def __init__(self, name=None, dtype=None):
        super().__init__(name, dtype)
        self.total = self._add_state("total")

    def update_state(self, values, sample_weight=None):
        v = _as_float(_tensor(self._who, "values", values))
        if sample_weight is not None:
            v = v * _weights_like(self._who, sample_weight, v.shape, v.dtype)
        self.total.add_(v.sum())

    def result(self):
        return self._out(self.total)


class MeanMetricWrapper(Mean):
    """The mean of ``fn(y_true, y_pred, **kwargs)``, a function giving one
    value per sample (or per element), weighted by ``sample_weight``."""

    _default_name = None
    _impl = None     # built-in subclasses: impl(who, y_true, y_pred, **kwargs)

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        if not callable(fn):
            raise TypeError("%s: fn must be a callable fn(y_true, y_pred) giving per-sample "
                            "values; got %s" % (type(self).__name__, type(fn).__name__))
        super().__init__(name or self._default_name or getattr(fn, "__name__", None)
                         or "mean_metric_wrapper", dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self._impl is not None:
            values = type(self)._impl(self._who, y_true, y_pred, **self._fn_kwargs)
        else:
            yt = _tensor(self._who, "y_true", y_true)
            yp = _tensor(self._who, "y_pred", y_pred)
            values = _tensor(self._who, "the value returned by %s" % self.name,
                             self.fn(yt, yp, **self._fn_kwargs))
        self._accumulate(_as_float(values), sample_weight)

    def get_config(self):
        config = super().get_config()
        if self._impl is None:
            config["fn"] = getattr(self.fn, "__name__", repr(self.fn))
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config):
        if cls is MeanMetricWrapper and isinstance(config, dict) \
                and isinstance(config.get("fn"), str):
            fn = _FUNCTIONS.get(config["fn"])
            if fn is None:
                raise ValueError("MeanMetricWrapper.from_config: unknown function %r; built-in "
                                 "ones are %s; for your own function pass it in custom_objects "
                                 "to pf.metrics.deserialize" % (config["fn"], ", ".join(
                                     sorted(_FUNCTIONS))))
            config = dict(config, fn=fn)
        return super().from_config(config)


# --------------------------------------------------------------------------
# accuracy

class Accuracy(MeanMetricWrapper):
    """How often y_pred equals y_true exactly."""

    _default_name = "accuracy"
    _impl = staticmethod(_accuracy)

    def __init__(self, name=None, dtype=None):
        super().__init__(accuracy, name, dtype)


class BinaryAccuracy(MeanMetricWrapper):
    """How often (y_pred > threshold) matches a 0/1 label."""

    _default_name = "binary_accuracy"
    _impl = staticmethod(_binary_accuracy)

    def __init__(self, name=None, dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name, dtype,
                         threshold=_check_threshold("BinaryAccuracy", threshold))


class CategoricalAccuracy(MeanMetricWrapper):
    """How often y_pred's argmax is the class of one-hot y_true."""

    _default_name = "categorical_accuracy"
    _impl = staticmethod(_categorical_accuracy)

    def __init__(self, name=None, dtype=None):
        super().__init__(categorical_accuracy, name, dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often y_pred's argmax (N, C) is the integer label y_true (N,) or (N, 1)."""

    _default_name = "sparse_categorical_accuracy"
    _impl = staticmethod(_sparse_categorical_accuracy)

    def __init__(self, name=None, dtype=None):
        super().__init__(sparse_categorical_accuracy, name, dtype)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often one-hot y_true's class is among y_pred's k highest scores."""

    _default_name = "top_k_categorical_accuracy"
    _impl = staticmethod(_top_k_categorical_accuracy)

    def __init__(self, k=5, name=None, dtype=None):
        super().__init__(top_k_categorical_accuracy, name, dtype,
                         k=_check_k("TopKCategoricalAccuracy", k))


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among y_pred's k highest scores."""

    _default_name = "sparse_top_k_categorical_accuracy"
    _impl = staticmethod(_sparse_top_k_categorical_accuracy)

    def __init__(self, k=5, name=None, dtype=None):
        super().__init__(sparse_top_k_categorical_accuracy, name, dtype,
                         k=_check_k("SparseTopKCategoricalAccuracy", k))


# --------------------------------------------------------------------------
# regression

class MeanSquaredError(MeanMetricWrapper):
    """The mean of (y_pred - y_true)**2."""

    _default_name = "mean_squared_error"
    _impl = staticmethod(_squared_error)

    def __init__(self, name=None, dtype=None):
        super().__init__(mean_squared_error, name, dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    """The mean of |y_pred - y_true|."""

    _default_name = "mean_absolute_error"
    _impl = staticmethod(_absolute_error)

    def __init__(self, name=None, dtype=None):
        super().__init__(mean_absolute_error, name, dtype)


class RootMeanSquaredError(Mean):
    """sqrt of the mean of (y_pred - y_true)**2 over all samples and outputs."""

    _default_name = "root_mean_squared_error"

    def update_state(self, y_true, y_pred, sample_weight=None):
        yt, yp = _match_rank(self._who, *_float_pair(self._who, y_true, y_pred))
        d = yp - yt
        self._accumulate(d * d, sample_weight)

    def result(self):
        return self._out(_C.sqrt(_safe_div(self.total, self.count)))


class R2Score(Metric):
    """The coefficient of determination, 1 - SS_res / SS_tot, per output column,
    aggregated by ``class_aggregation``: "uniform_average" (the mean over
    outputs), "variance_weighted" (weighted by each output's SS_tot) or None
    (one value per output).  With ``num_regressors`` p > 0 the adjusted score
    1 - (1 - R2)(n - 1)/(n - p - 1) is returned (n counts samples).

    The state is weighted sums of y, y**2 and residual**2 per output, in
    float64; SS_tot is sum(w y**2) - sum(w y)**2 / sum(w).  An output whose
    targets are constant scores 1 when predicted exactly and 0 otherwise, as
    scikit-learn's r2_score does."""

    _default_name = "r2_score"

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name=None,
                 dtype=None):
        super().__init__(name, dtype)
        if class_aggregation not in ("uniform_average", "variance_weighted", None):
            raise ValueError("R2Score: class_aggregation must be 'uniform_average', "
                             "'variance_weighted' or None; got %r" % (class_aggregation,))
        if isinstance(num_regressors, bool) or not isinstance(num_regressors, int) \
                or num_regressors < 0:
            raise ValueError("R2Score: num_regressors must be a non-negative integer; got %r"
                             % (num_regressors,))
        self.class_aggregation = class_aggregation
        self.num_regressors = num_regressors
        self._outputs = None
        self.num_samples = self._add_state("num_samples")

    def update_state(self, y_true, y_pred, sample_weight=None):
        who = self._who
        yt, yp = _match_rank(who, *_float_pair(who, y_true, y_pred))
        if yt.ndim == 1:
            yt, yp = yt.unsqueeze(-1), yp.unsqueeze(-1)
        if yt.ndim != 2:
            raise ValueError("%s: expected y_true and y_pred of shape (N,) or (N, outputs); got "
                             "shape %s" % (who, yt.shape))
        k = yt.shape[1]
        if self._outputs is None:
            self._outputs = k
            self.weight_sum = self._add_state("weight_sum", (k,))
            self.target_sum = self._add_state("target_sum", (k,))
            self.target_square_sum = self._add_state("target_square_sum", (k,))
            self.residual_sum = self._add_state("residual_sum", (k,))
        elif k != self._outputs:
            raise ValueError("%s: y_true has %d output columns but earlier batches had %d; every "
                             "batch needs the same number of outputs" % (who, k, self._outputs))
        # float64 before squaring: sum(y**2) - sum(y)**2/n cancels badly in float32
        yt, yp = yt.astype(_F64), yp.astype(_F64)
        r = yp - yt
        n = yt.shape[0]
        if sample_weight is None:
            self.weight_sum.add_(n)
            wy = yt
        else:
            w = _weights_like(who, sample_weight, yt.shape, _F64)
            self.weight_sum.add_(w.sum(axis=0))
            wy = w * yt
            r = r * _C.sqrt(w)
        self.target_sum.add_(wy.sum(axis=0))
        self.target_square_sum.add_((wy * yt).sum(axis=0))
        self.residual_sum.add_((r * r).sum(axis=0))
        self.num_samples.add_(n)

    def result(self):
        if self._outputs is None:
            return self._out(_C.zeros((), dtype=_F64) if self.class_aggregation else
                             _C.zeros((0,), dtype=_F64))
        ss_tot = self.target_square_sum - _safe_div(self.target_sum * self.target_sum,
                                                    self.weight_sum)
        ss_tot = _C.maximum(ss_tot, 0.0)        # rounding can leave a tiny negative
        ss_res = self.residual_sum
        per = _C.where(ss_tot > 0, 1.0 - _safe_div(ss_res, ss_tot),
                       _C.where(ss_res > 0, 0.0, 1.0))
        per = _C.where(self.weight_sum > 0, per, 0.0)        # no samples yet: 0
        if self.class_aggregation is None:
            score = per
        elif self.class_aggregation == "uniform_average":
            score = per.mean()
        else:
            total = ss_tot.sum()
            score = _C.where(total > 0, _safe_div((per * ss_tot).sum(), total), per.mean())
        if self.num_regressors:
            n = self.num_samples
            dof = n - self.num_regressors - 1.0
            # too few samples for the adjustment: keep the plain score
            score = _C.where(dof > 0, 1.0 - (1.0 - score) * _safe_div(n - 1.0, dof), score)
        return self._out(score)

    def get_config(self):
        return dict(super().get_config(), class_aggregation=self.class_aggregation,
                    num_regressors=self.num_regressors)


# --------------------------------------------------------------------------
# confusion-matrix metrics

def _parse_thresholds(who, thresholds, default):
    if thresholds is None:
        return [default], True
    if isinstance(thresholds, numbers.Real) and not isinstance(thresholds, bool):
        return [_check_threshold(who, thresholds, "thresholds")], True
    try:
        values = list(thresholds)
    except TypeError:
        raise TypeError("%s: thresholds must be a number or a list of numbers in [0, 1]; got %s"
                        % (who, type(thresholds).__name__)) from None
    if not values:
        raise ValueError("%s: thresholds is empty; give at least one threshold in [0, 1]" % who)
    return [_check_threshold(who, t, "every threshold") for t in values], len(values) == 1


class _Confusion(Metric):
    """Precision and Recall: weighted true/false positive and false negative
    counts at each threshold.  A prediction is positive when it is above the
    threshold (strictly); a label is positive when it is nonzero.  Every entry
    of y_pred counts (multi-class and multi-label data are flattened), unless
    ``class_id`` picks one column; with ``top_k`` only each row's k highest
    scores can be positive."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name, dtype)
        cls = type(self).__name__
        if top_k is not None:
            _check_k(cls + " (top_k)", top_k)
        if class_id is not None and (isinstance(class_id, bool) or not isinstance(class_id, int)
                                     or class_id < 0):
            raise ValueError("%s: class_id must be a non-negative integer (a column of y_pred) "
                             "or None; got %r" % (cls, class_id))
        # with top_k and no thresholds, being in the top k is the whole test
        values, self._scalar = _parse_thresholds(cls, thresholds,
                                                 0.5 if top_k is None else float("-inf"))
        self.thresholds = values
        # the constructor's argument, for get_config (None keeps the default)
        self._init_thresholds = (None if thresholds is None else
                                 values[0] if isinstance(thresholds, numbers.Real) else values)
        self.top_k, self.class_id = top_k, class_id
        self._thr = _C.tensor(values, dtype=_F64).reshape(1, -1)
        n = len(values)
        self.true_positives = self._add_state("true_positives", (n,))

    def _counts(self, y_true, y_pred, sample_weight):
        """(tp, positives, predicted positives) of this batch, each (T,)."""
        who = self._who
        yt = _tensor(who, "y_true", y_true)
        yp = _as_float(_tensor(who, "y_pred", y_pred))
        yt, yp = _match_rank(who, yt, yp)
        w = _weights_like(who, sample_weight, yp.shape, _F64)
        keep = None
        if self.top_k is not None or self.class_id is not None:
            if yp.ndim < 1:
                raise ValueError("%s: top_k and class_id need y_pred with a class axis; got a "
                                 "single value" % who)
            c = yp.shape[-1]
        if self.top_k is not None:
            k = min(self.top_k, c)
            _, idx = _C.topk(yp, k, axis=-1)
            keep = _C.one_hot(idx, c).sum(axis=-2) > 0
        if self.class_id is not None:
            if self.class_id >= c:
                raise ValueError("%s: class_id=%d is out of range for y_pred with %d classes "
                                 "(shape %s)" % (who, self.class_id, c, yp.shape))
            yt, yp = yt[..., self.class_id], yp[..., self.class_id]
            w = None if w is None else w[..., self.class_id]
            keep = None if keep is None else keep[..., self.class_id]
        above = yp.reshape(-1, 1) > self._thr                    # (M, T)
        if keep is not None:
            above = above & keep.reshape(-1, 1)
        positive = (yt != 0).reshape(-1)
        above = above.astype(_F64)
        if w is None:
            pos = positive.astype(_F64)
            predicted = above.sum(axis=0)
        else:
            w = w.reshape(-1)
            pos = _C.where(positive, w, 0.0)
            predicted = _C.matmul(w.unsqueeze(0), above).squeeze(0)
        tp = _C.matmul(pos.unsqueeze(0), above).squeeze(0)
        return tp, pos.sum(), predicted

    def _finish(self, t):
        return self._out(t[0] if self._scalar else t)

    def get_config(self):
        return dict(super().get_config(), thresholds=self._init_thresholds, top_k=self.top_k,
                    class_id=self.class_id)


class Precision(_Confusion):
    """tp / (tp + fp) at each threshold (0 while nothing was predicted positive).
    A scalar for a single threshold, else one value per threshold."""

    _default_name = "precision"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(thresholds, top_k, class_id, name, dtype)
        self.false_positives = self._add_state("false_positives", self.true_positives.shape)

    def update_state(self, y_true, y_pred, sample_weight=None):
        tp, _, predicted = self._counts(y_true, y_pred, sample_weight)
        self.true_positives.add_(tp)
        self.false_positives.add_(predicted - tp)

    def result(self):
        tp = self.true_positives
        return self._finish(_safe_div(tp, tp + self.false_positives))


class Recall(_Confusion):
    """tp / (tp + fn) at each threshold (0 while no positive label was seen).
    A scalar for a single threshold, else one value per threshold."""

    _default_name = "recall"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(thresholds, top_k, class_id, name, dtype)
        self.false_negatives = self._add_state("false_negatives", self.true_positives.shape)

    def update_state(self, y_true, y_pred, sample_weight=None):
        tp, positives, _ = self._counts(y_true, y_pred, sample_weight)
        self.true_positives.add_(tp)
        self.false_negatives.add_(positives - tp)

    def result(self):
        tp = self.true_positives
        return self._finish(_safe_div(tp, tp + self.false_negatives))


class AUC(Metric):
    """Area under the ROC or precision-recall curve, from weighted confusion
    counts at ``num_thresholds`` thresholds spread evenly over [0, 1] (the
    outermost just outside it), or at the given ``thresholds``.

    Each batch costs a searchsorted of the predictions into the thresholds and
    a scatter-add into a histogram per label; a reversed cumulative sum turns
    the histogram into "how much weight lies above each threshold".  Labels
    may be soft: a label y adds y*w to the positives and (1-y)*w to the
    negatives.  The ROC area is the trapezoid rule ("interpolation"); the PR
    area interpolates between operating points as Davis & Goadrich (2006)
    describe, where true positives grow linearly with predicted positives.
    "minoring"/"majoring" use lower/upper Riemann sums instead.

    The grid limits the accuracy: a positive and a negative whose scores fall
    between the same two thresholds count half, so the ROC area can differ
    from the exact one by at most half the fraction of such pairs.

    By default all entries are flattened into one binary problem (with
    ``label_weights`` weighting columns); ``multi_label=True`` keeps one curve
    per column of y_pred and averages their areas (weighted by label_weights)."""

    _default_name = "auc"

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        super().__init__(name, dtype)
        if not isinstance(curve, str) or curve.upper() not in ("ROC", "PR"):
            raise ValueError("AUC: curve must be 'ROC' or 'PR'; got %r" % (curve,))
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError("AUC: summation_method must be 'interpolation', 'minoring' or "
                             "'majoring'; got %r" % (summation_method,))
        if thresholds is not None:
            values, _ = _parse_thresholds("AUC", thresholds, None)
            self._interior = sorted(values)
            num_thresholds = len(values) + 2
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, int) \
                    or num_thresholds < 2:
                raise ValueError("AUC: num_thresholds must be an integer > 1; got %r"
                                 % (num_thresholds,))
            self._interior = None
        if num_labels is not None and (isinstance(num_labels, bool)
                                       or not isinstance(num_labels, int) or num_labels < 1):
            raise ValueError("AUC: num_labels must be a positive integer or None; got %r"
                             % (num_labels,))
        self.num_thresholds = num_thresholds
        self.curve = curve.upper()
        self.summation_method = summation_method
        self.multi_label = bool(multi_label)
        self.from_logits = bool(from_logits)
        self.num_labels = num_labels
        if label_weights is not None:
            lw = _tensor("AUC", "label_weights", label_weights, _F64)
            if lw.ndim != 1:
                raise ValueError("AUC: label_weights must be a 1-D list, one weight per label; "
                                 "got shape %s" % (lw.shape,))
            self.label_weights = [float(v) for v in lw.astype(_F64).tolist()]
            self._label_weights = lw.astype(_F64)
        else:
            self.label_weights = self._label_weights = None
        if self._interior is not None:
            grid = [-_EDGE] + self._interior + [1.0 + _EDGE]
        else:
            # thresholds i/(T-1) for i = 1 .. T-2, plus the two edges
            grid = [-_EDGE] + [i / (num_thresholds - 1) for i in range(1, num_thresholds - 1)] \
                + [1.0 + _EDGE]
        self._grid = _C.tensor(grid, dtype=_F64)
        self._labels = None
        if not self.multi_label:
            self._build(1)
        elif num_labels is not None:
            self._build(num_labels)

    def _build(self, labels):
        self._labels = labels
        shape = (self.num_thresholds,) if not self.multi_label else (self.num_thresholds, labels)
        for key in ("true_positives", "false_positives", "true_negatives", "false_negatives"):
            setattr(self, key, self._add_state(key, shape))
        self._columns = _C.arange(labels, dtype=_C.int64)

    @property
    def thresholds(self):
        """The thresholds used, as a list (the edges included)."""
        return self._grid.tolist()

    def update_state(self, y_true, y_pred, sample_weight=None):
        who = self._who
        yt, yp = _match_rank(who, *_float_pair(who, y_true, y_pred))
        if self.from_logits:
            yp = _C.sigmoid(yp)
        w = _weights_like(who, sample_weight, yp.shape, _F64)
        if self.multi_label:
            if yp.ndim < 2:
                raise ValueError("%s: multi_label=True needs y_pred of shape (N, labels); got "
                                 "shape %s" % (who, yp.shape))
            labels = yp.shape[-1]
            if self._labels is None:
                self._build(labels)
            elif labels != self._labels:
                raise ValueError("%s: y_pred has %d labels but the metric was built for %d; "
                                 "every batch needs the same number of labels"
                                 % (who, labels, self._labels))
        else:
            labels = 1
            if self._label_weights is not None:
                if yp.ndim < 1 or yp.shape[-1] != self._label_weights.shape[0]:
                    raise ValueError("%s: label_weights has %d entries but y_pred's last axis "
                                     "is %s" % (who, self._label_weights.shape[0],
                                                yp.shape[-1] if yp.ndim else "missing"))
                lw = self._label_weights.broadcast_to(yp.shape)
                w = lw if w is None else w * lw
        p = yp.astype(_F64).reshape(-1, labels)
        y = yt.astype(_F64).reshape(-1, labels)
        if w is None:
            pos, neg = y, 1.0 - y
        else:
            w = w.reshape(-1, labels)
            pos, neg = y * w, (1.0 - y) * w
        t = self.num_thresholds
        # bucket b = how many thresholds lie strictly below the prediction: the
        # prediction is positive at thresholds 0 .. b-1
        bucket = _C.searchsorted(self._grid, p)
        flat = (bucket * labels + self._columns).reshape(-1)
        size = (t + 1) * labels

        def above(weights):
            hist = _C.scatter_add(_C.zeros(size, dtype=_F64), 0, flat, weights.reshape(-1))
            hist = hist.reshape(t + 1, labels)
            suffix = _C.flip(_C.cumsum(_C.flip(hist, axis=0), axis=0), axis=0)
            # suffix[j] = weight in buckets >= j; suffix[0] is the total
            return suffix[1:], suffix[:1]

        tp, pos_total = above(pos)
        fp, neg_total = above(neg)
        if not self.multi_label:
            tp, fp, pos_total, neg_total = (tp.reshape(-1), fp.reshape(-1),
                                            pos_total.reshape(-1), neg_total.reshape(-1))
        self.true_positives.add_(tp)
        self.false_negatives.add_(pos_total - tp)
        self.false_positives.add_(fp)
        self.true_negatives.add_(neg_total - fp)

    def result(self):
        if self._labels is None:
            return self._out(_C.zeros((), dtype=_F64))
        tp, fp = self.true_positives, self.false_positives
        tn, fn = self.true_negatives, self.false_negatives
        if self.curve == "PR" and self.summation_method == "interpolation":
            per = self._pr_interpolated(tp, fp, fn)
        else:
            if self.curve == "ROC":
                x, y = _safe_div(fp, fp + tn), _safe_div(tp, tp + fn)
            else:
                x, y = _safe_div(tp, tp + fn), _safe_div(tp, tp + fp)
            if self.summation_method == "interpolation":
                heights = (y[:-1] + y[1:]) * 0.5
            elif self.summation_method == "minoring":
                heights = _C.minimum(y[:-1], y[1:])
            else:
                heights = _C.maximum(y[:-1], y[1:])
            # thresholds rise along axis 0, so x falls: x[i] - x[i+1] >= 0
            per = ((x[:-1] - x[1:]) * heights).sum(axis=0)
        if not self.multi_label:
            return self._out(per)
        if self._label_weights is None:
            return self._out(per.mean())
        if self._label_weights.shape[0] != self._labels:
            raise ValueError("%s: label_weights has %d entries but the data has %d labels"
                             % (self._who, self._label_weights.shape[0], self._labels))
        lw = self._label_weights
        return self._out(_safe_div((per * lw).sum(), lw.sum()))

    @staticmethod
    def _pr_interpolated(tp, fp, fn):
        # Between two neighbouring thresholds, predicted positives go from
        # a = p[i+1] to b = p[i] and true positives rise linearly with them:
        # tp(x) = c + s x.  Precision is tp(x)/x and recall tp(x)/P, so the
        # segment's area is  (1/P) \int_a^b (s + c/x) s dx
        #                  = (s/P) (s (b - a) + c log(b/a)).
        p = tp + fp
        dtp = tp[:-1] - tp[1:]
        slope = _safe_div(dtp, p[:-1] - p[1:])
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        # from x = 0 the intercept is 0 and the log term drops out (ratio 1)
        log_ratio = _C.log(_C.where(both, p[:-1] / _C.where(both, p[1:], 1.0), 1.0))
        positives = tp[1:] + fn[1:]
        return _safe_div(slope * (dtp + intercept * log_ratio), positives).sum(axis=0)

    def get_config(self):
        return dict(super().get_config(), num_thresholds=self.num_thresholds, curve=self.curve,
                    summation_method=self.summation_method, thresholds=self._interior,
                    multi_label=self.multi_label, num_labels=self.num_labels,
                    label_weights=self.label_weights, from_logits=self.from_logits)


# --------------------------------------------------------------------------
# F-scores

class FBetaScore(Metric):
    """F-beta per class from one-hot or multi-label y_true (N, C) and scores
    y_pred (N, C): (1 + b**2) tp / ((1 + b**2) tp + b**2 fn + fp), 0 for a class
    with no true and no predicted positive.  With ``threshold=None`` each row's
    highest score is its predicted class; otherwise scores above ``threshold``
    are positive.  ``average``: None (one value per class), "micro" (pool the
    counts), "macro" (plain mean) or "weighted" (by each class's weighted
    support)."""

    _default_name = "fbeta_score"

    def __init__(self, average=None, beta=1.0, threshold=None, name=None, dtype=None):
        super().__init__(name, dtype)
        cls = type(self).__name__
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError("%s: average must be None, 'micro', 'macro' or 'weighted'; got %r"
                             % (cls, average))
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not beta > 0:
            raise ValueError("%s: beta must be a positive number; got %r" % (cls, beta))
        if threshold is not None:
            threshold = _check_threshold(cls, threshold)
            if threshold == 0:
                raise ValueError("%s: threshold must be in (0, 1]; got 0" % cls)
        self.average, self.beta, self.threshold = average, float(beta), threshold
        self._classes = None

    def update_state(self, y_true, y_pred, sample_weight=None):
        who = self._who
        yt, yp = _float_pair(who, y_true, y_pred)
        if yp.ndim != 2 or yt.shape != yp.shape:
            raise ValueError("%s: expected one-hot or multi-label y_true and scores y_pred of the "
                             "same shape (N, classes); got y_true %s and y_pred %s (for integer "
                             "labels, one-hot encode them first, e.g. pf.one_hot(labels, C))"
                             % (who, yt.shape, yp.shape))
        c = yp.shape[1]
        if self._classes is None:
            self._classes = c
            for key in ("true_positives", "false_positives", "false_negatives",
                        "intermediate_weights"):
                setattr(self, key, self._add_state(key, (c,)))
        elif c != self._classes:
            raise ValueError("%s: y_pred has %d classes but earlier batches had %d"
                             % (who, c, self._classes))
        if self.threshold is None:
            pred = _C.one_hot(_C.argmax(yp, axis=-1), c).astype(_F64)
        else:
            pred = (yp > self.threshold).astype(_F64)
        y = yt.astype(_F64)
        if sample_weight is not None:
            w = _sample_weight(who, sample_weight, yp.shape, _F64)
            if w.ndim == 1:
                w = w.unsqueeze(-1)
            y_w, pred_w = y * w, pred * w
        else:
            y_w, pred_w = y, pred
        tp = (y_w * pred).sum(axis=0)
        self.true_positives.add_(tp)
        self.false_positives.add_(pred_w.sum(axis=0) - tp)
        support = y_w.sum(axis=0)
        self.false_negatives.add_(support - tp)
        self.intermediate_weights.add_(support)

    def result(self):
        if self._classes is None:
            return self._out(_C.zeros((), dtype=_F64) if self.average else
                             _C.zeros((0,), dtype=_F64))
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        if self.average == "micro":
            tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
        b2 = self.beta * self.beta
        score = _safe_div((1.0 + b2) * tp, (1.0 + b2) * tp + b2 * fn + fp)
        if self.average == "macro":
            score = score.mean()
        elif self.average == "weighted":
            support = self.intermediate_weights
            score = _safe_div((score * support).sum(), support.sum())
        return self._out(score)

    def get_config(self):
        return dict(super().get_config(), average=self.average, beta=self.beta,
                    threshold=self.threshold)


class F1Score(FBetaScore):
    """FBetaScore with beta = 1: the harmonic mean of precision and recall."""

    _default_name = "f1_score"

    def __init__(self, average=None, threshold=None, name=None, dtype=None):
        super().__init__(average, 1.0, threshold, name, dtype)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config


# --------------------------------------------------------------------------
# lookup and (de)serialisation

_CLASSES = {cls.__name__: cls for cls in (
    Mean, Sum, MeanMetricWrapper, Accuracy, BinaryAccuracy, CategoricalAccuracy,
    SparseCategoricalAccuracy, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, Precision,
    Recall, AUC, F1Score, FBetaScore, MeanSquaredError, RootMeanSquaredError, MeanAbsoluteError,
    R2Score)}

_BY_NAME = {cls._default_name: cls for cls in _CLASSES.values() if cls._default_name}
_BY_NAME.update({"acc": Accuracy, "mse": MeanSquaredError, "mae": MeanAbsoluteError,
                 "rmse": RootMeanSquaredError, "r2": R2Score, "f1": F1Score})


def get(identifier):
    """A metric from a name ("accuracy", "mse", "auc", ...), a class, an
    instance (returned as is), a config from ``serialize``, or a plain
    function fn(y_true, y_pred) -> per-sample values (wrapped in a
    MeanMetricWrapper named after it)."""
    if identifier is None or isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type):
        if issubclass(identifier, Metric) and identifier is not MeanMetricWrapper:
            return identifier()
        raise TypeError("metrics.get: %s is not a metric class (subclass of pf.metrics.Metric "
                        "other than MeanMetricWrapper, which needs a function)"
                        % identifier.__name__)
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None or cls is MeanMetricWrapper:
            raise ValueError("metrics.get: unknown metric %r; valid names: %s"
                             % (identifier, ", ".join(sorted(_BY_NAME))))
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError("metrics.get: expected a metric name, class, instance, config dict or a "
                    "function fn(y_true, y_pred); got %s" % type(identifier).__name__)


def serialize(metric):
    """{"class_name": ..., "config": ...}: JSON-able, rebuilt by ``deserialize``."""
    if not isinstance(metric, Metric):
        raise TypeError("metrics.serialize: expected a pf.metrics.Metric; got %s"
                        % type(metric).__name__)
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config, custom_objects=None):
    """A metric from ``serialize``'s dict (or a name, as ``get``).
    ``custom_objects`` maps names to your own Metric classes or to the
    functions wrapped by a MeanMetricWrapper."""
    custom = dict(custom_objects or {})
    if isinstance(config, str):
        if config in custom:
            return get(custom[config])
        return get(config)
    if not isinstance(config, dict) or "class_name" not in config:
        raise TypeError("metrics.deserialize: expected a dict {'class_name': ..., 'config': "
                        "...} from pf.metrics.serialize or a name; got %r" % (config,))
    name = config["class_name"]
    cls = custom.get(name) or _CLASSES.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Metric)):
        raise ValueError("metrics.deserialize: unknown metric class %r; known: %s (pass your "
                         "own classes in custom_objects)"
                         % (name, ", ".join(sorted(set(_CLASSES) | set(custom)))))
    inner = dict(config.get("config") or {})
    fn = inner.get("fn")
    if isinstance(fn, str) and fn in custom:
        inner["fn"] = custom[fn]
    return cls.from_config(inner)
