"""Core Keras layers: Dense, Activation and the activation layers, Flatten,
Reshape, Permute, the merge layers, Rescaling, Normalization, Embedding,
Dropout, ZeroPadding2D, UpSampling2D."""
import math

from .. import _C, activations, initializers
from .base import Layer, as_tensor


def _positive_int(layer, what, v):
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise ValueError("%s: %s must be a positive integer; got %r" % (layer, what, v))


class Dense(Layer):
    """y = activation(x @ kernel + bias), kernel (input_dim, units) as in Keras."""

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        _positive_int("Dense", "units", units)
        self.units, self.use_bias = units, bool(use_bias)
        self.activation = activations.get(activation)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self._build_now_if_shape_known()

    def build(self, input_shape):
        if not input_shape or input_shape[-1] is None:
            raise ValueError("%s: the last dimension of the input must be known; got shape %s"
                             % (self._label(), input_shape))
        self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer,
                        self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, self.bias_regularizer)

    def forward(self, x):
        x = as_tensor(x)
        self._check_last_dim(x, self.kernel.shape[0])
        y = x @ self.kernel
        if self.use_bias:
            y = y + self.bias
        return self.activation(y)

    def extra_repr(self):
        return "units=%d, activation=%s" % (self.units, activations.name_of(self.activation))

    def get_config(self):
        return dict(super().get_config(), units=self.units,
                    activation=activations.name_of(self.activation), use_bias=self.use_bias)


class Activation(Layer):
    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x):
        return self.activation(as_tensor(x))

    def get_config(self):
        return dict(super().get_config(), activation=activations.name_of(self.activation))


class ReLU(Layer):
    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0:
            raise ValueError("ReLU: max_value must be >= 0; got %r" % (max_value,))
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def forward(self, x):
        return activations.relu(as_tensor(x), self.negative_slope, self.max_value,
                                self.threshold)

    def get_config(self):
        return dict(super().get_config(), max_value=self.max_value,
                    negative_slope=self.negative_slope, threshold=self.threshold)


class LeakyReLU(Layer):
    def __init__(self, negative_slope=0.3, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = negative_slope

    def forward(self, x):
        return _C.leaky_relu(as_tensor(x), negative_slope=self.negative_slope)

    def get_config(self):
        return dict(super().get_config(), negative_slope=self.negative_slope)


class Softmax(Layer):
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def forward(self, x, mask=None):
        x = as_tensor(x)
        if mask is not None:
            x = _C.where(as_tensor(mask), x, -1e9)
        return _C.softmax(x, axis=self.axis)

    def get_config(self):
        return dict(super().get_config(), axis=self.axis)


class Flatten(Layer):
    """(batch, ...) -> (batch, prod(...))."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim == 0:
            raise ValueError("%s expects a batch of inputs; got a scalar" % self._label())
        if self.data_format == "channels_first" and x.ndim > 2:
            x = x.permute(0, *range(2, x.ndim), 1)
        return x.reshape(x.shape[0], -1)

    def get_config(self):
        return dict(super().get_config(), data_format=self.data_format)


class Reshape(Layer):
    """Reshape every sample to target_shape (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(target_shape)

    def forward(self, x):
        x = as_tensor(x)
        per = math.prod(x.shape[1:]) if x.ndim else 1
        known = math.prod(d for d in self.target_shape if d != -1)
        if (-1 not in self.target_shape and known != per) or \
                (-1 in self.target_shape and (known == 0 or per % known)):
            raise ValueError("%s: cannot reshape samples of shape %s (%d values) to %s"
                             % (self._label(), tuple(x.shape[1:]), per, self.target_shape))
        return x.reshape((x.shape[0],) + self.target_shape)

    def get_config(self):
        return dict(super().get_config(), target_shape=list(self.target_shape))


class Permute(Layer):
    """Permute the non-batch axes; dims are 1-based, as in Keras (Permute((2, 1)))."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError("Permute: dims must be a permutation of 1..%d; got %s"
                             % (len(self.dims), self.dims))

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim != len(self.dims) + 1:
            raise ValueError("%s: dims %s need inputs of rank %d; got shape %s"
                             % (self._label(), self.dims, len(self.dims) + 1, tuple(x.shape)))
        return x.permute(0, *self.dims)

    def get_config(self):
        return dict(super().get_config(), dims=list(self.dims))


class _Merge(Layer):
    def _inputs(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError("%s expects a list of at least 2 tensors; got %s"
                             % (self._label(), type(inputs).__name__))
        return [as_tensor(t) for t in inputs]


class Add(_Merge):
    def forward(self, inputs):
        ts = self._inputs(inputs)
        out = ts[0]
        for t in ts[1:]:
            out = out + t
        return out


class Subtract(_Merge):
    def forward(self, inputs):
        ts = self._inputs(inputs)
        if len(ts) != 2:
            raise ValueError("%s expects exactly 2 tensors; got %d" % (self._label(), len(ts)))
        return ts[0] - ts[1]


class Multiply(_Merge):
    def forward(self, inputs):
        ts = self._inputs(inputs)
        out = ts[0]
        for t in ts[1:]:
            out = out * t
        return out


class Average(_Merge):
    def forward(self, inputs):
        ts = self._inputs(inputs)
        out = ts[0]
        for t in ts[1:]:
            out = out + t
        return out / len(ts)


class Maximum(_Merge):
    def forward(self, inputs):
        ts = self._inputs(inputs)
        out = ts[0]
        for t in ts[1:]:
            out = _C.maximum(out, t)
        return out


class Concatenate(_Merge):
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def forward(self, inputs):
        return _C.concatenate(self._inputs(inputs), axis=self.axis)

    def get_config(self):
        return dict(super().get_config(), axis=self.axis)


class Rescaling(Layer):
    """x * scale + offset (images: Rescaling(1 / 255))."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = float(scale), float(offset)

    def forward(self, x):
        x = as_tensor(x)
        if not x.dtype.is_floating_point:
            x = x.astype(self._dtype)
        return x * self.scale + self.offset

    def get_config(self):
        return dict(super().get_config(), scale=self.scale, offset=self.offset)


class Normalization(Layer):
    """(x - mean) / sqrt(variance) per feature along ``axis``; the statistics
    come from ``adapt(data)`` (arrays, tensors, pandas, lists of batches) or
    from the mean= / variance= arguments.  ``invert=True`` undoes it."""

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = (axis,) if isinstance(axis, int) or axis is None else tuple(axis)
        self.invert = bool(invert)
        if (mean is None) != (variance is None):
            raise ValueError("Normalization: give both mean and variance, or neither (and "
                             "call adapt())")
        self.register_buffer("mean", None)
        self.register_buffer("variance", None)
        self.register_buffer("count", None)
        if mean is not None:
            self.mean = _C.asarray(mean).astype(self._dtype)
            self.variance = _C.asarray(variance).astype(self._dtype)
            self.count = _C.zeros((), dtype=_C.float64)

    def _feature_axes(self, ndim):
        if self.axis == (None,):
            return ()
        return tuple(a % ndim for a in self.axis)

    def adapt(self, data, batch_size=None, steps=None):
        """Compute the mean and variance of ``data`` (all batches, exactly, in float64)."""
        import numpy as np
        batches = _iter_batches(data)
        total, s1, s2, shape = 0, None, None, None
        for i, b in enumerate(batches):
            if steps is not None and i >= steps:
                break
            a = np.asarray(b if not hasattr(b, "to_numpy") else b.to_numpy(), dtype=np.float64)
            if a.ndim == 1 and self.axis == (-1,):
                a = a[:, None]
            feats = self._feature_axes(a.ndim)
            red = tuple(k for k in range(a.ndim) if k not in feats)
            n = int(np.prod([a.shape[k] for k in red])) if red else 1
            bs1, bs2 = a.sum(axis=red, keepdims=True), (a * a).sum(axis=red, keepdims=True)
            if s1 is None:
                s1, s2, shape = bs1, bs2, bs1.shape
            else:
                if bs1.shape != shape:
                    raise ValueError("%s.adapt: batches disagree in their feature shape (%s, "
                                     "then %s)" % (self._label(), shape[1:], bs1.shape[1:]))
                s1, s2 = s1 + bs1, s2 + bs2
            total += n
        if total == 0:
            raise ValueError("%s.adapt: the data is empty" % self._label())
        mean = s1 / total
        var = np.maximum(s2 / total - mean * mean, 0.0)
        squeeze = tuple(range(len(shape) - 1)) if self.axis == (-1,) else ()
        self.mean = _C.tensor(mean.squeeze(axis=squeeze) if squeeze else mean, dtype=self._dtype)
        self.variance = _C.tensor(var.squeeze(axis=squeeze) if squeeze else var,
                                  dtype=self._dtype)
        self.count = _C.tensor(float(total), dtype=_C.float64)
        return self

    def forward(self, x):
        if self.mean is None:
            raise RuntimeError("%s: call adapt(data) first (or pass mean= and variance=)"
                               % self._label())
        x = as_tensor(x)
        if not x.dtype.is_floating_point:
            x = x.astype(self._dtype)
        std = _C.maximum(_C.sqrt(self.variance), 1e-7)
        if self.invert:
            return x * std + self.mean
        return (x - self.mean) / std

    def get_config(self):
        return dict(super().get_config(), axis=list(self.axis), invert=self.invert)


def _iter_batches(data):
    if isinstance(data, _C.Tensor) or hasattr(data, "__array__") or hasattr(data, "to_numpy"):
        yield data
        return
    if isinstance(data, (list, tuple)) and data and not isinstance(data[0], (int, float)):
        for b in data:
            yield b[0] if isinstance(b, tuple) else b
        return
    if hasattr(data, "__iter__") and not isinstance(data, (list, tuple)):
        for b in data:
            yield b[0] if isinstance(b, (tuple, list)) else b
        return
    yield data


class Embedding(Layer):
    """Integer indices -> vectors; weight ``embeddings`` (input_dim, output_dim),
    RandomUniform(-0.05, 0.05) as in Keras."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, mask_zero=False, **kwargs):
        super().__init__(**kwargs)
        _positive_int("Embedding", "input_dim", input_dim)
        _positive_int("Embedding", "output_dim", output_dim)
        self.input_dim, self.output_dim, self.mask_zero = input_dim, output_dim, mask_zero
        init = initializers.RandomUniform() if embeddings_initializer == "uniform" \
            else embeddings_initializer
        self.add_weight("embeddings", (input_dim, output_dim), init, embeddings_regularizer)

    def forward(self, idx):
        idx = as_tensor(idx)
        if idx.dtype.is_floating_point:
            # Keras accepts float indices holding integers
            idx = idx.astype(_C.int64)
        if idx.dtype == _C.bool:
            raise TypeError("%s expects integer indices; got bool" % self._label())
        if idx.size:
            lo, hi = int(idx.min()), int(idx.max())
            if lo < 0 or hi >= self.input_dim:
                raise IndexError("%s: index %d is out of range for input_dim %d (valid: 0 to %d)"
                                 % (self._label(), lo if lo < 0 else hi, self.input_dim,
                                    self.input_dim - 1))
        return self.embeddings[idx]

    def compute_mask(self, idx):
        return (as_tensor(idx) != 0) if self.mask_zero else None

    def get_config(self):
        return dict(super().get_config(), input_dim=self.input_dim, output_dim=self.output_dim,
                    mask_zero=self.mask_zero)


def dropout(x, rate, training):
    """Inverted dropout from the framework's generator."""
    if not training or rate == 0:
        return x
    fused = getattr(_C, "dropout", None)
    if fused is not None:
        return fused(x, p=rate, training=True)
    keep = (_C.rand(*x.shape) >= rate).astype(x.dtype)
    return x * keep * (1.0 / (1.0 - rate))


class Dropout(Layer):
    """Zero a fraction ``rate`` of the inputs during training, scaling the rest by 1/(1-rate)."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError("Dropout: rate must be in [0, 1); got %r" % (rate,))
        self.rate, self.noise_shape, self.seed = float(rate), noise_shape, seed

    def forward(self, x, training=None):
        x = as_tensor(x)
        training = self.training if training is None else training
        if self.noise_shape is None:
            return dropout(x, self.rate, training)
        if not training or self.rate == 0:
            return x
        shape = tuple(x.shape[i] if d is None else d for i, d in enumerate(self.noise_shape))
        keep = (_C.rand(*shape) >= self.rate).astype(x.dtype)
        return x * keep * (1.0 / (1.0 - self.rate))

    def get_config(self):
        noise = list(self.noise_shape) if self.noise_shape is not None else None
        return dict(super().get_config(), rate=self.rate, noise_shape=noise, seed=self.seed)


def _pair(v, what, layer):
    if isinstance(v, int):
        return ((v, v), (v, v)) if what == "padding" else (v, v)
    v = tuple(v)
    if what == "padding":
        if len(v) == 2 and all(isinstance(p, int) for p in v):
            return ((v[0], v[0]), (v[1], v[1]))
        if len(v) == 2 and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in v):
            return tuple(tuple(p) for p in v)
    elif len(v) == 2:
        return v
    raise ValueError("%s: %s must be an int or a pair; got %r" % (layer, what, v))


class ZeroPadding2D(Layer):
    """Zeros around the spatial dims of (batch, H, W, C) (channels_last) images."""

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _pair(padding, "padding", "ZeroPadding2D")
        self.data_format = data_format or "channels_last"

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim != 4:
            raise ValueError("%s expects 4-D input (batch, H, W, C); got shape %s"
                             % (self._label(), tuple(x.shape)))
        (t, b), (l, r) = self.padding
        pads = ((0, 0), (t, b), (l, r), (0, 0)) if self.data_format == "channels_last" \
            else ((0, 0), (0, 0), (t, b), (l, r))
        return _C.pad(x, pads)

    def get_config(self):
        return dict(super().get_config(), padding=[list(p) for p in self.padding],
                    data_format=self.data_format)


class UpSampling2D(Layer):
    """Repeat rows and columns (nearest neighbour)."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        if interpolation != "nearest":
            raise ValueError("UpSampling2D: interpolation %r is not available; use 'nearest'"
                             % (interpolation,))
        self.size = _pair(size, "size", "UpSampling2D")
        self.data_format = data_format or "channels_last"

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim != 4:
            raise ValueError("%s expects 4-D input; got shape %s" % (self._label(), tuple(x.shape)))
        ha, wa = (1, 2) if self.data_format == "channels_last" else (2, 3)
        return _C.repeat(_C.repeat(x, self.size[0], axis=ha), self.size[1], axis=wa)

    def get_config(self):
        return dict(super().get_config(), size=list(self.size), data_format=self.data_format)
