"""Activation functions by Keras name, for ``activation=`` arguments."""
from . import _C


def linear(x):
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return _C.relu(x)
    y = _C.where(x > threshold, x, (x - threshold) * negative_slope)
    return _C.minimum(y, max_value) if max_value is not None else y


def leaky_relu(x, negative_slope=0.2):
    return _C.leaky_relu(x, negative_slope=negative_slope)


def softmax(x, axis=-1):
    return _C.softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    return _C.log_softmax(x, axis=axis)


def gelu(x, approximate=False):
    return _C.gelu(x, approximate=bool(approximate))


def elu(x, alpha=1.0):
    return _C.elu(x, alpha=alpha)


def softsign(x):
    return x / (_C.abs(x) + 1)


def hard_sigmoid(x):
    return _C.clip(x * (1 / 6) + 0.5, 0.0, 1.0)


def exponential(x):
    return _C.exp(x)


_BY_NAME = {
    "linear": linear, "relu": relu, "relu6": _C.relu6, "leaky_relu": leaky_relu,
    "sigmoid": _C.sigmoid, "tanh": _C.tanh, "softmax": softmax, "log_softmax": log_softmax,
    "gelu": gelu, "elu": elu, "selu": _C.selu, "softplus": _C.softplus, "softsign": softsign,
    "silu": _C.silu, "swish": _C.silu, "exponential": exponential, "hard_sigmoid": hard_sigmoid,
}


def get(identifier):
    """A callable from a name ("relu"), None (identity) or a callable."""
    if identifier is None:
        return linear
    if callable(identifier):
        return identifier
    if isinstance(identifier, str):
        fn = _BY_NAME.get(identifier.lower())
        if fn is None:
            raise ValueError("unknown activation %r; known: %s"
                             % (identifier, ", ".join(sorted(_BY_NAME))))
        return fn
    raise TypeError("activation must be a name, a callable or None; got %s"
                    % type(identifier).__name__)


def name_of(fn):
    for k, v in _BY_NAME.items():
        if v is fn:
            return k
    return getattr(fn, "__name__", repr(fn))
