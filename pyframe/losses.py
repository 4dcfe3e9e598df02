"""Keras-named losses (classes and strings).  ``loss(y_true, y_pred,
sample_weight=None)`` returns the reduced loss: "sum_over_batch_size" (the
mean over samples, Keras's default), "sum", or "none" (one value per sample).
Class axis last, as in Keras.  Built from pyframe ops, so every loss is
differentiable with respect to y_pred."""
from . import _C

_EPS = 1e-7
_NO_INDEX = -(2 ** 63)      # an ignore_index no label can hold


def _t(x, like=None):
    if isinstance(x, _C.Tensor):
        return x
    t = _C.asarray(x)
    if like is not None and t.dtype.is_floating_point and t.dtype != like.dtype:
        t = t.astype(like.dtype)
    return t


def _float(t, like):
    return t if t.dtype == like.dtype else t.astype(like.dtype)


class Loss:
    _is_keras_loss = True       # the trainer calls it with sample_weight=
    _sparse_targets = False     # targets are class indices, one fewer dimension than y_pred
    def __init__(self, reduction="sum_over_batch_size", name=None):
        if reduction not in ("sum_over_batch_size", "sum", "none", None, "mean"):
            raise ValueError("%s: reduction must be 'sum_over_batch_size', 'sum' or 'none'; got "
                             "%r" % (type(self).__name__, reduction))
        self.reduction = "none" if reduction is None else reduction
        self.name = name or _snake(type(self).__name__)

    def call(self, y_true, y_pred):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_pred = _t(y_pred)
        if not y_pred.dtype.is_floating_point or y_pred.dtype in (_C.float16, _C.bfloat16):
            # a loss is a sum over the batch: float32 (mixed precision, as Keras)
            y_pred = y_pred.astype(_C.float32)
        y_true = _t(y_true, y_pred)
        if not self._sparse_targets and y_true.ndim + 1 == y_pred.ndim and y_pred.ndim >= 2 \
                and y_pred.shape[-1] == 1 and tuple(y_true.shape) == tuple(y_pred.shape)[:-1]:
            # labels (N,) against one output column (N, 1): Keras lines them up
            y_true = y_true.unsqueeze(-1)
        return self._reduce(self.call(y_true, y_pred), sample_weight)

    def _reduce(self, per, sample_weight):
        """Per-sample (or per-element) values -> the loss, with sample weights."""
        if sample_weight is not None:
            sw = _float(_t(sample_weight), per)
            if sw.ndim > per.ndim or tuple(sw.shape) != tuple(per.shape)[:sw.ndim]:
                if sw.size != 1:
                    raise ValueError("%s: sample_weight of shape %s does not match the loss's "
                                     "shape %s" % (self.name, tuple(sw.shape), tuple(per.shape)))
            while sw.ndim < per.ndim:
                sw = sw.unsqueeze(-1)
            per = per * sw
        if self.reduction == "none":
            return per
        total = per.sum()
        if self.reduction == "sum":
            return total
        return total / max(per.size, 1)

    def get_config(self):
        return {"reduction": self.reduction, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _snake(n):
    out = []
    for i, ch in enumerate(n):
        if ch.isupper() and i and (not n[i - 1].isupper() or (i + 1 < len(n) and n[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _check_same_shape(name, y_true, y_pred):
    if tuple(y_true.shape) != tuple(y_pred.shape):
        try:
            y_true.broadcast_to(tuple(y_pred.shape))
        except ValueError:
            raise ValueError("%s: y_true of shape %s does not match y_pred of shape %s"
                             % (name, tuple(y_true.shape), tuple(y_pred.shape))) from None


class MeanSquaredError(Loss):
    def call(self, y_true, y_pred):
        _check_same_shape(self.name, y_true, y_pred)
        d = y_pred - y_true
        return (d * d).mean(axis=-1) if y_pred.ndim > 1 else d * d


class MeanAbsoluteError(Loss):
    def call(self, y_true, y_pred):
        _check_same_shape(self.name, y_true, y_pred)
        d = _C.abs(y_pred - y_true)
        return d.mean(axis=-1) if y_pred.ndim > 1 else d


class MeanSquaredLogarithmicError(Loss):
    def call(self, y_true, y_pred):
        _check_same_shape(self.name, y_true, y_pred)
        d = _C.log1p(_C.maximum(y_pred, 0.0)) - _C.log1p(_C.maximum(y_true, 0.0))
        return (d * d).mean(axis=-1) if y_pred.ndim > 1 else d * d


class Huber(Loss):
    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss"):
        super().__init__(reduction, name)
        if delta <= 0:
            raise ValueError("Huber: delta must be positive; got %r" % (delta,))
        self.delta = float(delta)

    def call(self, y_true, y_pred):
        _check_same_shape(self.name, y_true, y_pred)
        a = _C.abs(y_pred - y_true)
        q = _C.minimum(a, self.delta)
        v = 0.5 * q * q + self.delta * (a - q)
        return v.mean(axis=-1) if y_pred.ndim > 1 else v

    def get_config(self):
        return dict(super().get_config(), delta=self.delta)


class LogCosh(Loss):
    def call(self, y_true, y_pred):
        _check_same_shape(self.name, y_true, y_pred)
        d = y_pred - y_true
        # log(cosh(d)) = |d| + log1p(exp(-2|d|)) - log 2, without overflow
        a = _C.abs(d)
        v = a + _C.log1p(_C.exp(-2.0 * a)) - 0.6931471805599453
        return v.mean(axis=-1) if y_pred.ndim > 1 else v


class BinaryCrossentropy(Loss):
    def __init__(self, from_logits=False, label_smoothing=0.0, reduction="sum_over_batch_size",
                 name="binary_crossentropy"):
        super().__init__(reduction, name)
        if not 0 <= label_smoothing <= 1:
            raise ValueError("BinaryCrossentropy: label_smoothing must be in [0, 1]; got %r"
                             % (label_smoothing,))
        self.from_logits, self.label_smoothing = bool(from_logits), float(label_smoothing)

    def call(self, y_true, y_pred):
        _check_same_shape(self.name, y_true, y_pred)
        y = _float(y_true, y_pred)
        if self.label_smoothing:
            y = y * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        if self.from_logits:
            # max(x, 0) - x y + log(1 + e^-|x|): stable for any x
            v = _C.relu(y_pred) - y_pred * y + _C.log1p(_C.exp(-_C.abs(y_pred)))
        else:
            p = _C.clip(y_pred, _EPS, 1 - _EPS)
            v = -(y * _C.log(p) + (1 - y) * _C.log(1 - p))
        return v.mean(axis=-1) if y_pred.ndim > 1 else v

    def get_config(self):
        return dict(super().get_config(), from_logits=self.from_logits,
                    label_smoothing=self.label_smoothing)


class CategoricalCrossentropy(Loss):
    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy"):
        super().__init__(reduction, name)
        if not 0 <= label_smoothing <= 1:
            raise ValueError("CategoricalCrossentropy: label_smoothing must be in [0, 1]; got %r"
                             % (label_smoothing,))
        self.from_logits, self.label_smoothing, self.axis = \
            bool(from_logits), float(label_smoothing), axis

    def call(self, y_true, y_pred):
        if tuple(y_true.shape) != tuple(y_pred.shape):
            raise ValueError("%s: y_true (one-hot or probabilities) must have y_pred's shape %s; "
                             "got %s (for integer labels use sparse_categorical_crossentropy)"
                             % (self.name, tuple(y_pred.shape), tuple(y_true.shape)))
        y = _float(y_true, y_pred)
        if self.label_smoothing:
            k = y_pred.shape[self.axis]
            y = y * (1 - self.label_smoothing) + self.label_smoothing / k
        if self.from_logits:
            logp = _C.log_softmax(y_pred, axis=self.axis)
        else:
            p = y_pred / y_pred.sum(axis=self.axis, keepdims=True)
            logp = _C.log(_C.clip(p, _EPS, 1 - _EPS))
        return -(y * logp).sum(axis=self.axis)

    def get_config(self):
        return dict(super().get_config(), from_logits=self.from_logits,
                    label_smoothing=self.label_smoothing, axis=self.axis)


class SparseCategoricalCrossentropy(Loss):
    _sparse_targets = True
    def __init__(self, from_logits=False, ignore_class=None, axis=-1,
                 reduction="sum_over_batch_size", name="sparse_categorical_crossentropy"):
        super().__init__(reduction, name)
        self.from_logits, self.ignore_class, self.axis = bool(from_logits), ignore_class, axis

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_pred = _t(y_pred)
        y_true = _t(y_true)
        if y_true.dtype.is_floating_point:
            y_true = y_true.astype(_C.int64)
        if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
            y_true = y_true.squeeze(-1)
        if tuple(y_true.shape) != tuple(y_pred.shape[:-1]):
            raise ValueError("%s: integer labels of shape %s do not match predictions of shape %s "
                             "(labels need the predictions' shape without the class axis)"
                             % (self.name, tuple(y_true.shape), tuple(y_pred.shape)))
        if self.from_logits and self.ignore_class is None and y_pred.ndim == 2 \
                and y_pred.dtype.is_floating_point:
            # the fused kernel: log-softmax and the pick in one pass; it checks the labels
            # itself (no min/max read back), and no label can equal this ignore_index
            try:
                if sample_weight is None and self.reduction == "sum_over_batch_size":
                    return _C.cross_entropy(y_pred, y_true, ignore_index=_NO_INDEX)
                per = _C.cross_entropy(y_pred, y_true, ignore_index=_NO_INDEX, reduction="none")
            except IndexError as e:
                # the kernel's message, in this loss's words (it has no ignore_index)
                msg = str(e).split(" or equal ignore_index")[0].replace("cross_entropy: ", "")
                raise IndexError("%s: %s" % (self.name, msg.replace("target", "label"))) \
                    from None
            return self._reduce(per, sample_weight)
        k = y_pred.shape[-1]
        valid = None
        if self.ignore_class is not None:
            valid = y_true != self.ignore_class
            y_true = _C.where(valid, y_true, 0)
        if y_true.size:
            lo, hi = int(y_true.min()), int(y_true.max())
            if lo < 0 or hi >= k:
                raise IndexError("%s: label %d is out of range for %d classes (valid: 0 to %d)"
                                 % (self.name, lo if lo < 0 else hi, k, k - 1))
        self._valid = valid
        self._labels = y_true
        return Loss.__call__(self, y_true.astype(y_pred.dtype) if y_pred.dtype.is_floating_point
                             else y_true, y_pred, sample_weight)

    def call(self, y_true, y_pred):
        labels = self._labels.unsqueeze(-1)
        if self.from_logits:
            logp = _C.log_softmax(y_pred, axis=-1)
        else:
            p = y_pred / y_pred.sum(axis=-1, keepdims=True)
            logp = _C.log(_C.clip(p, _EPS, 1 - _EPS))
        v = -_C.take_along_axis(logp, labels, axis=-1).squeeze(-1)
        if self._valid is not None:
            v = v * self._valid.astype(v.dtype)
        return v

    def get_config(self):
        return dict(super().get_config(), from_logits=self.from_logits,
                    ignore_class=self.ignore_class)


class KLDivergence(Loss):
    def call(self, y_true, y_pred):
        _check_same_shape(self.name, y_true, y_pred)
        t = _C.clip(y_true, _EPS, 1.0)
        p = _C.clip(y_pred, _EPS, 1.0)
        return (t * _C.log(t / p)).sum(axis=-1)


class Poisson(Loss):
    def call(self, y_true, y_pred):
        _check_same_shape(self.name, y_true, y_pred)
        v = y_pred - y_true * _C.log(y_pred + _EPS)
        return v.mean(axis=-1) if y_pred.ndim > 1 else v


def _pm1(y):
    """Labels in {0, 1} become {-1, 1} (Keras's hinge convention)."""
    return _C.where(y == 0, -1.0, y).astype(y.dtype)


class Hinge(Loss):
    def call(self, y_true, y_pred):
        _check_same_shape(self.name, y_true, y_pred)
        v = _C.relu(1 - _pm1(y_true) * y_pred)
        return v.mean(axis=-1) if y_pred.ndim > 1 else v


class SquaredHinge(Loss):
    def call(self, y_true, y_pred):
        _check_same_shape(self.name, y_true, y_pred)
        h = _C.relu(1 - _pm1(y_true) * y_pred)
        v = h * h
        return v.mean(axis=-1) if y_pred.ndim > 1 else v


class CosineSimilarity(Loss):
    """-cos(y_true, y_pred) along axis (so that minimising aligns them), as Keras."""

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity"):
        super().__init__(reduction, name)
        self.axis = axis

    def call(self, y_true, y_pred):
        _check_same_shape(self.name, y_true, y_pred)

        def unit(v):
            n = _C.sqrt(_C.maximum((v * v).sum(axis=self.axis, keepdims=True), 1e-12))
            return v / n
        return -(unit(y_true) * unit(y_pred)).sum(axis=self.axis)

    def get_config(self):
        return dict(super().get_config(), axis=self.axis)


_BY_NAME = {
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError, "huber": Huber, "huber_loss": Huber,
    "log_cosh": LogCosh, "logcosh": LogCosh, "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "poisson": Poisson, "hinge": Hinge,
    "squared_hinge": SquaredHinge, "cosine_similarity": CosineSimilarity,
}


def get(identifier):
    """A loss from a Keras name, a Loss instance or class, or a callable(y_true, y_pred)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError("unknown loss %r; known: %s" % (identifier, ", ".join(sorted(_BY_NAME))))
        return cls()
    if callable(identifier):
        return identifier
    raise TypeError("loss must be a name, a Loss or a callable; got %s"
                    % type(identifier).__name__)
