"""Keras convolution and pooling layers.  channels_last (N, ..., C) by
default: the input is handed to the NCHW kernels as a permuted view (no copy;
the kernels read channels-last memory directly and write channels-last
output), and the result is permuted back.  Kernels have Keras's layout
(kh, kw, in, out) and are viewed as PyTorch's (out, in, kh, kw)."""
import math

from .. import _C, activations
from .base import Layer, as_tensor
from ..nn.module import call_named as _named



def _tuple(v, n, what, who):
    if isinstance(v, int) and not isinstance(v, bool):
        return (v,) * n
    v = tuple(v)
    if len(v) != n or not all(isinstance(i, int) and i > 0 for i in v):
        raise ValueError("%s: %s must be a positive int or a tuple of %d of them; got %r"
                         % (who, what, n, v))
    return v


def _same_pads(size, k, s, d):
    """TensorFlow's "same": output ceil(size / s), the extra padding at the end."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def _check_padding(p, who):
    p = str(p).lower()
    if p not in ("valid", "same"):
        raise ValueError("%s: padding must be 'valid' or 'same'; got %r" % (who, p))
    return p


class _Conv(Layer):
    _n = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        who = type(self).__name__
        if not isinstance(filters, int) or filters <= 0:
            raise ValueError("%s: filters must be a positive integer; got %r" % (who, filters))
        self.filters, self.groups = filters, groups
        self.kernel_size = _tuple(kernel_size, self._n, "kernel_size", who)
        self.strides = _tuple(strides, self._n, "strides", who)
        self.dilation_rate = _tuple(dilation_rate, self._n, "dilation_rate", who)
        self.padding = _check_padding(padding, who)
        self.data_format = data_format or "channels_last"
        if self.data_format not in ("channels_last", "channels_first"):
            raise ValueError("%s: data_format must be 'channels_last' or 'channels_first'; got "
                             "%r" % (who, data_format))
        self.activation, self.use_bias = activations.get(activation), bool(use_bias)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self._build_now_if_shape_known()

    def _channels(self, shape):
        return shape[-1] if self.data_format == "channels_last" else shape[1]

    def build(self, input_shape):
        if len(input_shape) != self._n + 2:
            raise ValueError("%s expects input of rank %d (batch, %s); got shape %s"
                             % (self._label(), self._n + 2, "spatial..., channels"
                                if self.data_format == "channels_last" else "channels, spatial...",
                                tuple(input_shape)))
        c = self._channels(input_shape)
        if c % self.groups or self.filters % self.groups:
            raise ValueError("%s: input channels (%d) and filters (%d) must be divisible by "
                             "groups (%d)" % (self._label(), c, self.filters, self.groups))
        self.add_weight("kernel", self.kernel_size + (c // self.groups, self.filters),
                        self.kernel_initializer, self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer,
                            self.bias_regularizer)

    def _to_nchw(self, x):
        if x.ndim != self._n + 2:
            raise ValueError("%s expects input of rank %d; got shape %s"
                             % (self._label(), self._n + 2, tuple(x.shape)))
        c = self._channels(x.shape)
        want = self.kernel.shape[-2] * self.groups
        if c != want:
            raise ValueError("%s expects %d input channels; got %d (input shape %s)"
                             % (self._label(), want, c, tuple(x.shape)))
        if self.data_format == "channels_last":
            return x.permute(0, self._n + 1, *range(1, self._n + 1))
        return x

    def _from_nchw(self, y):
        if self.data_format == "channels_last":
            return y.permute(0, *range(2, self._n + 2), 1)
        return y

    def _pad_same(self, x):
        """Explicit 'same' padding (symmetric ones go to the kernel; odd totals pad first)."""
        if self.padding == "valid":
            return x, 0
        pads = [_same_pads(x.shape[2 + i], self.kernel_size[i], self.strides[i],
                           self.dilation_rate[i]) for i in range(self._n)]
        if all(a == b for a, b in pads):
            return x, tuple(a for a, _ in pads)
        return _C.pad(x, ((0, 0), (0, 0)) + tuple(pads)), 0

    def _weight(self):
        # (k..., in, out) -> (out, in, k...)
        return self.kernel.permute(self._n + 1, self._n, *range(self._n))

    def forward(self, x):
        x, pad = self._pad_same(self._to_nchw(as_tensor(x)))
        fn = _C.conv1d if self._n == 1 else _C.conv2d
        bias = self.bias if self.use_bias else None
        y = _named(self, fn, x, self._weight(), bias, self.strides, pad, self.dilation_rate,
                   self.groups)
        return self.activation(self._from_nchw(y))

    def get_config(self):
        return dict(super().get_config(), filters=self.filters,
                    kernel_size=list(self.kernel_size), strides=list(self.strides),
                    padding=self.padding, data_format=self.data_format,
                    dilation_rate=list(self.dilation_rate), groups=self.groups,
                    activation=activations.name_of(self.activation), use_bias=self.use_bias)


class Conv1D(_Conv):
    _n = 1


class Conv2D(_Conv):
    _n = 2


class Conv2DTranspose(_Conv):
    """Kernel (kh, kw, filters, in) as Keras; 'same' gives input size * strides."""

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError("%s expects 4-D input; got shape %s" % (self._label(), input_shape))
        c = self._channels(input_shape)
        self.add_weight("kernel", self.kernel_size + (self.filters, c), self.kernel_initializer,
                        self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer,
                            self.bias_regularizer)

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim != 4 or self._channels(x.shape) != self.kernel.shape[-1]:
            raise ValueError("%s expects 4-D input with %d channels; got shape %s"
                             % (self._label(), self.kernel.shape[-1], tuple(x.shape)))
        x = x.permute(0, 3, 1, 2) if self.data_format == "channels_last" else x
        pads, outpads = [], []
        for k, s, d in zip(self.kernel_size, self.strides, self.dilation_rate):
            if self.padding == "valid":
                pads.append(0)
                outpads.append(0)
            else:
                extra = (k - 1) * d + 1 - s     # 2p - output_padding
                if extra >= 0:
                    pads.append((extra + 1) // 2)
                    outpads.append((extra + 1) // 2 * 2 - extra)
                else:
                    pads.append(0)
                    outpads.append(-extra)
        w = self.kernel.permute(3, 2, 0, 1)     # (in, out, kh, kw)
        bias = self.bias if self.use_bias else None
        y = _named(self, _C.conv_transpose2d, x, w, bias, self.strides, tuple(pads),
                   tuple(outpads), 1, self.dilation_rate)
        return self.activation(self._from_nchw(y))


class DepthwiseConv2D(_Conv):
    """One filter bank per input channel: depthwise_kernel (kh, kw, in, depth_multiplier)."""

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, **kwargs):
        self.depth_multiplier = depth_multiplier
        super().__init__(1, kernel_size, strides, padding, data_format, dilation_rate, 1,
                         activation, use_bias, depthwise_initializer, bias_initializer,
                         depthwise_regularizer, bias_regularizer, **kwargs)

    def build(self, input_shape):
        c = self._channels(input_shape)
        self.add_weight("depthwise_kernel", self.kernel_size + (c, self.depth_multiplier),
                        self.kernel_initializer, self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (c * self.depth_multiplier,), self.bias_initializer,
                            self.bias_regularizer)

    def forward(self, x):
        x = as_tensor(x)
        c = self.depthwise_kernel.shape[2]
        if x.ndim != 4 or self._channels(x.shape) != c:
            raise ValueError("%s expects 4-D input with %d channels; got shape %s"
                             % (self._label(), c, tuple(x.shape)))
        x = x.permute(0, 3, 1, 2) if self.data_format == "channels_last" else x
        x, pad = self._pad_same(x)
        kh, kw = self.kernel_size
        w = self.depthwise_kernel.reshape(kh, kw, c * self.depth_multiplier) \
            .permute(2, 0, 1).unsqueeze(1)
        y = _named(self, _C.conv2d, x, w, self.bias if self.use_bias else None, self.strides, pad,
                      self.dilation_rate, c)
        return self.activation(self._from_nchw(y))

    def get_config(self):
        config = super().get_config()
        del config["filters"], config["groups"]
        return dict(config, depth_multiplier=self.depth_multiplier)


class SeparableConv2D(_Conv):
    """A depthwise convolution followed by a 1x1 pointwise one."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        self.depth_multiplier = depth_multiplier
        self.pointwise_initializer = pointwise_initializer
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, 1,
                         activation, use_bias, depthwise_initializer, bias_initializer, **kwargs)

    def build(self, input_shape):
        c = self._channels(input_shape)
        self.add_weight("depthwise_kernel", self.kernel_size + (c, self.depth_multiplier),
                        self.kernel_initializer)
        self.add_weight("pointwise_kernel", (1, 1, c * self.depth_multiplier, self.filters),
                        self.pointwise_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer)

    def forward(self, x):
        x = as_tensor(x)
        c = self.depthwise_kernel.shape[2]
        if x.ndim != 4 or self._channels(x.shape) != c:
            raise ValueError("%s expects 4-D input with %d channels; got shape %s"
                             % (self._label(), c, tuple(x.shape)))
        x = x.permute(0, 3, 1, 2) if self.data_format == "channels_last" else x
        x, pad = self._pad_same(x)
        kh, kw = self.kernel_size
        dw = self.depthwise_kernel.reshape(kh, kw, c * self.depth_multiplier) \
            .permute(2, 0, 1).unsqueeze(1)
        y = _named(self, _C.conv2d, x, dw, None, self.strides, pad, self.dilation_rate, c)
        pw = self.pointwise_kernel.permute(3, 2, 0, 1)
        y = _named(self, _C.conv2d, y, pw, self.bias if self.use_bias else None)
        return self.activation(self._from_nchw(y))

    def get_config(self):
        config = super().get_config()
        del config["groups"]
        return dict(config, depth_multiplier=self.depth_multiplier)


class _Pooling(Layer):
    _n = 2
    _max = True

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        who = type(self).__name__
        self.pool_size = _tuple(pool_size, self._n, "pool_size", who)
        self.strides = _tuple(strides, self._n, "strides", who) if strides is not None \
            else self.pool_size
        self.padding = _check_padding(padding, who)
        self.data_format = data_format or "channels_last"

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim != self._n + 2:
            raise ValueError("%s expects input of rank %d; got shape %s"
                             % (self._label(), self._n + 2, tuple(x.shape)))
        if self.data_format == "channels_last":
            x = x.permute(0, self._n + 1, *range(1, self._n + 1))
        spatial = x.shape[2:]
        for i in range(self._n):
            if self.padding == "valid" and spatial[i] < self.pool_size[i]:
                raise ValueError("%s: pool_size %s is larger than the input's spatial size %s "
                                 "under 'valid' padding" % (self._label(), self.pool_size,
                                                            tuple(spatial)))
        op = getattr(_C, ("max_pool%dd" if self._max else "avg_pool%dd") % self._n)
        ks, st = self.pool_size if self._n > 1 else self.pool_size[0], \
            self.strides if self._n > 1 else self.strides[0]
        if self.padding == "valid":
            y = _named(self, op, x, ks, st, 0)
        else:
            pads = tuple(_same_pads(spatial[i], self.pool_size[i], self.strides[i], 1)
                         for i in range(self._n))
            full = ((0, 0), (0, 0)) + pads
            if self._max:
                y = _named(self, op, _C.pad(x, full, constant_values=-math.inf), ks, st, 0)
            else:
                # the average over the window's elements inside the input only
                s = _named(self, op, _C.pad(x, full), ks, st, 0)
                ones = _C.ones((1, 1) + tuple(spatial), dtype=x.dtype)
                y = s / _named(self, op, _C.pad(ones, full), ks, st, 0)
        if self.data_format == "channels_last":
            y = y.permute(0, *range(2, self._n + 2), 1)
        return y

    def get_config(self):
        return dict(super().get_config(), pool_size=list(self.pool_size),
                    strides=list(self.strides), padding=self.padding,
                    data_format=self.data_format)


class MaxPooling1D(_Pooling):
    _n = 1


class MaxPooling2D(_Pooling):
    _n = 2


class AveragePooling1D(_Pooling):
    _n, _max = 1, False


class AveragePooling2D(_Pooling):
    _n, _max = 2, False


class _GlobalPooling(Layer):
    _n = 2
    _max = False

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format, self.keepdims = data_format or "channels_last", keepdims

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim != self._n + 2:
            raise ValueError("%s expects input of rank %d; got shape %s"
                             % (self._label(), self._n + 2, tuple(x.shape)))
        axes = tuple(range(1, self._n + 1)) if self.data_format == "channels_last" \
            else tuple(range(2, self._n + 2))
        fn = _C.max if self._max else _C.mean
        return fn(x, axis=axes, keepdims=self.keepdims)

    def get_config(self):
        return dict(super().get_config(), data_format=self.data_format, keepdims=self.keepdims)


class GlobalAveragePooling1D(_GlobalPooling):
    _n = 1


class GlobalAveragePooling2D(_GlobalPooling):
    _n = 2


class GlobalMaxPooling1D(_GlobalPooling):
    _n, _max = 1, True


class GlobalMaxPooling2D(_GlobalPooling):
    _n, _max = 2, True
