"""Convolution and pooling modules with PyTorch's names, layouts (NCHW) and
initialisation, over the C kernels (pf.conv2d, pf.max_pool2d, ...)."""
import math

from .. import _C
from .module import Module
from .parameter import Parameter
from .module import call_named as _named
from .basic import param_dtype



def _tuple(v, n, what, who):
    if isinstance(v, int) and not isinstance(v, bool):
        return (v,) * n
    v = tuple(v)
    if len(v) != n or not all(isinstance(i, int) for i in v):
        raise ValueError("%s: %s must be an int or a tuple of %d ints; got %r" % (who, what, n, v))
    return v


class _ConvNd(Module):
    _n = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", output_padding=0, dtype=None):
        super().__init__()
        who = type(self).__name__
        for what, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("groups", groups)):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError("%s: %s must be a positive integer; got %r" % (who, what, v))
        if in_channels % groups or out_channels % groups:
            raise ValueError("%s: in_channels (%d) and out_channels (%d) must be divisible by "
                             "groups (%d)" % (who, in_channels, out_channels, groups))
        if padding_mode != "zeros":
            raise ValueError("%s: padding_mode %r is not available; use 'zeros' (or pad the "
                             "input with pf.pad first)" % (who, padding_mode))
        n = self._n
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", who)
        self.stride = _tuple(stride, n, "stride", who)
        self.padding = padding if isinstance(padding, str) else _tuple(padding, n, "padding", who)
        self.dilation = _tuple(dilation, n, "dilation", who)
        self.output_padding = _tuple(output_padding, n, "output_padding", who)
        if self._transposed:
            wshape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            wshape = (out_channels, in_channels // groups) + self.kernel_size
        fan_in = wshape[1] * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in)
        self.weight = Parameter(_C.uniform(-bound, bound, wshape))
        if bias:
            self.bias = Parameter(_C.uniform(-bound, bound, (out_channels,)))
        else:
            self.register_parameter("bias", None)
        if dtype is not None:
            self.to(dtype)

    def _check(self, x):
        want = self._n + 2
        if x.ndim not in (want, want - 1):
            raise ValueError("%s expects input of shape (N, C, %s) or unbatched; got %s"
                             % (self._label(), ", ".join("LHW"[3 - self._n:] if self._n == 1
                                                         else "HW"), tuple(x.shape)))
        c = x.shape[-self._n - 1]
        if c != self.in_channels:
            raise ValueError("%s expects %d input channels; got %d (input shape %s)"
                             % (self._label(), self.in_channels, c, tuple(x.shape)))

    def extra_repr(self):
        s = "%d, %d, kernel_size=%s, stride=%s" % (self.in_channels, self.out_channels,
                                                   self.kernel_size, self.stride)
        if self.padding not in (0, (0,) * self._n):
            s += ", padding=%s" % (self.padding,)
        if self.dilation != (1,) * self._n:
            s += ", dilation=%s" % (self.dilation,)
        if self.groups != 1:
            s += ", groups=%d" % self.groups
        if self.bias is None:
            s += ", bias=False"
        return s

    def get_config(self):
        config = {"in_channels": self.in_channels, "out_channels": self.out_channels,
                  "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                  "padding": self.padding if isinstance(self.padding, str)
                  else list(self.padding),
                  "dilation": list(self.dilation), "groups": self.groups,
                  "bias": self.bias is not None, "dtype": param_dtype(self)}
        if self._transposed:
            config["output_padding"] = list(self.output_padding)
        return config


class Conv1d(_ConvNd):
    _n = 1

    def forward(self, x):
        self._check(x)
        return _named(self, _C.conv1d, x, self.weight, self.bias, self.stride, self.padding,
                      self.dilation, self.groups)


class Conv2d(_ConvNd):
    def forward(self, x):
        self._check(x)
        return _named(self, _C.conv2d, x, self.weight, self.bias, self.stride, self.padding,
                      self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, dtype)

    def forward(self, x):
        self._check(x)
        return _named(self, _C.conv_transpose2d, x, self.weight, self.bias, self.stride,
                      self.padding, self.output_padding, self.groups, self.dilation)


class _Pool(Module):
    _n = 2
    _op = None

    def __init__(self, kernel_size, stride=None, padding=0, **opts):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.opts = kernel_size, stride, padding, opts

    def forward(self, x):
        return _named(self, getattr(_C, self._op), x, self.kernel_size, self.stride, self.padding,
                      **self.opts)

    def extra_repr(self):
        return "kernel_size=%s, stride=%s, padding=%s" % (self.kernel_size, self.stride,
                                                         self.padding)

    def get_config(self):
        return dict({"kernel_size": self.kernel_size, "stride": self.stride,
                     "padding": self.padding}, **self.opts)


class MaxPool1d(_Pool):
    _op = "max_pool1d"

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation=dilation, ceil_mode=ceil_mode)


class MaxPool2d(MaxPool1d):
    _op = "max_pool2d"


class AvgPool1d(_Pool):
    _op = "avg_pool1d"

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad)


class AvgPool2d(AvgPool1d):
    _op = "avg_pool2d"
