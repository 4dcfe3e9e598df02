"""Normalisation and dropout modules with PyTorch's names: BatchNorm1d/2d,
LayerNorm, GroupNorm, RMSNorm, Dropout."""
from .. import _C
from .module import Module
from .parameter import Parameter
from .basic import param_dtype


class _BatchNorm(Module):
    _dims = None

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None):
        super().__init__()
        if not isinstance(num_features, int) or num_features <= 0:
            raise ValueError("%s: num_features must be a positive integer; got %r"
                             % (type(self).__name__, num_features))
        self.num_features, self.eps, self.momentum = num_features, float(eps), momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(_C.ones(num_features))
            self.bias = Parameter(_C.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", _C.zeros(num_features))
            self.register_buffer("running_var", _C.ones(num_features))
            self.register_buffer("num_batches_tracked", _C.zeros((), dtype=_C.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        if dtype is not None:
            self.to(dtype)

    def forward(self, x):
        if x.ndim not in self._dims:
            raise ValueError("%s expects input of rank %s (N, C, ...); got shape %s"
                             % (self._label(), " or ".join(map(str, self._dims)), tuple(x.shape)))
        if x.shape[1] != self.num_features:
            raise ValueError("%s expects %d channels (dim 1); got shape %s"
                             % (self._label(), self.num_features, tuple(x.shape)))
        training = self.training or not self.track_running_stats
        momentum = self.momentum
        if self.training and self.track_running_stats:
            with _NoGrad():
                self.num_batches_tracked += 1
            if momentum is None:   # cumulative average
                momentum = 1.0 / int(self.num_batches_tracked)
        return _C.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             training=training, momentum=momentum or 0.0, eps=self.eps)

    def extra_repr(self):
        return "%d, eps=%g, momentum=%s, affine=%s, track_running_stats=%s" % (
            self.num_features, self.eps, self.momentum, self.affine, self.track_running_stats)

    def get_config(self):
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "track_running_stats": self.track_running_stats,
                "dtype": param_dtype(self) or _buffer_dtype(self)}


class BatchNorm1d(_BatchNorm):
    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    _dims = (4,)


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=None):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) \
            else tuple(normalized_shape)
        self.eps = float(eps)
        if elementwise_affine:
            self.weight = Parameter(_C.ones(self.normalized_shape))
            self.bias = Parameter(_C.zeros(self.normalized_shape)) if bias else None
            if not bias:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if dtype is not None:
            self.to(dtype)

    def forward(self, x):
        return _C.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return "%s, eps=%g" % (self.normalized_shape, self.eps)

    def get_config(self):
        return {"normalized_shape": list(self.normalized_shape), "eps": self.eps,
                "elementwise_affine": self.weight is not None, "bias": self.bias is not None,
                "dtype": param_dtype(self)}


class GroupNorm(Module):
    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=None):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError("GroupNorm: num_channels (%d) must be divisible by num_groups (%d)"
                             % (num_channels, num_groups))
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, float(eps)
        if affine:
            self.weight = Parameter(_C.ones(num_channels))
            self.bias = Parameter(_C.zeros(num_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if dtype is not None:
            self.to(dtype)

    def forward(self, x):
        return _C.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return "%d, %d, eps=%g" % (self.num_groups, self.num_channels, self.eps)

    def get_config(self):
        return {"num_groups": self.num_groups, "num_channels": self.num_channels,
                "eps": self.eps, "affine": self.weight is not None, "dtype": param_dtype(self)}


class RMSNorm(Module):
    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, dtype=None):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) \
            else tuple(normalized_shape)
        self.eps = eps
        if elementwise_affine:
            self.weight = Parameter(_C.ones(self.normalized_shape))
        else:
            self.register_parameter("weight", None)
        if dtype is not None:
            self.to(dtype)

    def forward(self, x):
        return _C.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def get_config(self):
        return {"normalized_shape": list(self.normalized_shape), "eps": self.eps,
                "elementwise_affine": self.weight is not None, "dtype": param_dtype(self)}


class Dropout(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError("Dropout: p must be in [0, 1]; got %r" % (p,))
        self.p, self.inplace = float(p), inplace

    def forward(self, x):
        return _C.dropout(x, p=self.p, training=self.training)

    def extra_repr(self):
        return "p=%g" % self.p

    def get_config(self):
        return {"p": self.p, "inplace": self.inplace}


def _buffer_dtype(module):
    mean = module._buffers.get("running_mean")
    return str(mean.dtype) if mean is not None else None


class _NoGrad:
    def __enter__(self):
        self.prev = _C._set_grad_enabled(False)

    def __exit__(self, *exc):
        _C._set_grad_enabled(self.prev)
