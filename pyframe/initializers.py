"""Weight initialisers (Keras names), drawn from pyframe's Philox generator,
so ``pf.manual_seed(s)`` makes them reproducible on any thread count.

An initialiser is called with a shape and a dtype and returns a new tensor:

    init = pf.initializers.GlorotUniform()
    w = init((784, 128))

Fans follow the layout of the weight: Keras kernels are (..., in, out)
(``layout="io"``, the default), PyTorch weights are (out, in, ...)
(``layout="oi"``); the receptive field (convolution taps) multiplies both.
"""
import math

from . import _C

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
           "TruncatedNormal", "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform",
           "HeNormal", "LecunUniform", "LecunNormal", "Orthogonal", "get", "compute_fans"]


def compute_fans(shape, layout="io"):
    """(fan_in, fan_out) of a weight of this shape."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if layout == "io":
        receptive = math.prod(shape[:-2])
        return shape[-2] * receptive, shape[-1] * receptive
    if layout == "oi":
        receptive = math.prod(shape[2:])
        return shape[1] * receptive, shape[0] * receptive
    raise ValueError("compute_fans: layout must be 'io' (Keras kernels) or 'oi' (PyTorch "
                     "weights); got %r" % (layout,))


class Initializer:
    layout = "io"

    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join("%s=%r" % kv for kv in self.get_config().items())
        return "%s(%s)" % (type(self).__name__, args)


def _dtype(dtype):
    return _C.float32 if dtype is None else _C.dtype(dtype)


class Zeros(Initializer):
    def __call__(self, shape, dtype=None):
        return _C.zeros(tuple(shape), dtype=_dtype(dtype))


class Ones(Initializer):
    def __call__(self, shape, dtype=None):
        return _C.ones(tuple(shape), dtype=_dtype(dtype))


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = float(value)

    def __call__(self, shape, dtype=None):
        return _C.full(tuple(shape), self.value, dtype=_dtype(dtype))

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05):
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype=None):
        return _C.normal(self.mean, self.stddev, tuple(shape)).astype(_dtype(dtype))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05):
        if not maxval > minval:
            raise ValueError("RandomUniform: maxval (%r) must be greater than minval (%r)"
                             % (maxval, minval))
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, dtype=None):
        return _C.uniform(self.minval, self.maxval, tuple(shape)).astype(_dtype(dtype))

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval}


def _truncated(shape, stddev, mean=0.0):
    """Normal values redrawn until they lie within two standard deviations."""
    t = _C.randn(*shape) if len(shape) else _C.randn(())
    for _ in range(100):
        bad = _C.abs(t) > 2.0
        n = int(_C.sum(bad).item())
        if n == 0:
            break
        t[bad] = _C.randn(n)
    return t * stddev + mean


class TruncatedNormal(Initializer):
    """Normal(mean, stddev) with values beyond two standard deviations redrawn."""

    def __init__(self, mean=0.0, stddev=0.05):
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype=None):
        return _truncated(tuple(shape), self.stddev, self.mean).astype(_dtype(dtype))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class VarianceScaling(Initializer):
    """scale / fan (fan_in, fan_out or their average) as the variance of a
    truncated normal, an untruncated normal or a uniform distribution."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", layout="io"):
        if scale <= 0:
            raise ValueError("VarianceScaling: scale must be positive; got %r" % (scale,))
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError("VarianceScaling: mode must be 'fan_in', 'fan_out' or 'fan_avg'; "
                             "got %r" % (mode,))
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform", "normal"):
            raise ValueError("VarianceScaling: distribution must be 'truncated_normal', "
                             "'untruncated_normal' or 'uniform'; got %r" % (distribution,))
        self.scale, self.mode, self.distribution, self.layout = \
            float(scale), mode, distribution, layout

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        fan_in, fan_out = compute_fans(shape, self.layout)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, fan)
        if self.distribution == "uniform":
            lim = math.sqrt(3.0 * var)
            t = _C.uniform(-lim, lim, shape)
        elif self.distribution in ("untruncated_normal", "normal"):
            t = _C.normal(0.0, math.sqrt(var), shape)
        else:
            # the standard deviation of a unit normal truncated at +-2
            t = _truncated(shape, math.sqrt(var) / 0.87962566103423978)
        return t.astype(_dtype(dtype))

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "layout": self.layout}


def _scaled(name, scale, mode, distribution, doc):
    def __init__(self, seed=None, layout="io"):
        VarianceScaling.__init__(self, scale, mode, distribution, layout)
        self.seed = seed

    def __call__(self, shape, dtype=None):
        if self.seed is not None:
            state = _C.get_rng_state()
            _C.manual_seed(self.seed)
            try:
                return VarianceScaling.__call__(self, shape, dtype)
            finally:
                _C.set_rng_state(state)
        return VarianceScaling.__call__(self, shape, dtype)

    def get_config(self):
        return {"seed": self.seed, "layout": self.layout}

    return type(name, (VarianceScaling,), {"__init__": __init__, "__call__": __call__,
                                           "get_config": get_config, "__doc__": doc})


GlorotUniform = _scaled("GlorotUniform", 1.0, "fan_avg", "uniform",
                        "U(-l, l), l = sqrt(6 / (fan_in + fan_out)): Keras's Dense default.")
GlorotNormal = _scaled("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                       "Truncated normal with variance 2 / (fan_in + fan_out).")
HeUniform = _scaled("HeUniform", 2.0, "fan_in", "uniform", "U(-l, l), l = sqrt(6 / fan_in).")
HeNormal = _scaled("HeNormal", 2.0, "fan_in", "truncated_normal",
                   "Truncated normal with variance 2 / fan_in.")
LecunUniform = _scaled("LecunUniform", 1.0, "fan_in", "uniform", "U(-l, l), l = sqrt(3 / fan_in).")
LecunNormal = _scaled("LecunNormal", 1.0, "fan_in", "truncated_normal",
                      "Truncated normal with variance 1 / fan_in.")


class Orthogonal(Initializer):
    """An orthogonal matrix (times gain), from the QR decomposition of a normal
    draw; weights of more than two dimensions are flattened to (prod(shape[:-1]), shape[-1])."""

    def __init__(self, gain=1.0, seed=None):
        self.gain, self.seed = float(gain), seed

    def __call__(self, shape, dtype=None):
        import numpy as np
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError("Orthogonal: needs a weight of at least 2 dimensions; got shape %s"
                             % (shape,))
        rows, cols = math.prod(shape[:-1]), shape[-1]
        state = None
        if self.seed is not None:
            state = _C.get_rng_state()
            _C.manual_seed(self.seed)
        try:
            a = np.array(_C.randn(max(rows, cols), min(rows, cols)), dtype=np.float64)
        finally:
            if state is not None:
                _C.set_rng_state(state)
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))   # a unique (uniformly distributed) choice of signs
        if rows < cols:
            q = q.T
        return _C.tensor(self.gain * q.reshape(shape), dtype=_dtype(dtype))

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal, "orthogonal": Orthogonal,
    "xavier_uniform": GlorotUniform, "xavier_normal": GlorotNormal,
    "kaiming_uniform": HeUniform, "kaiming_normal": HeNormal,
}


def get(identifier):
    """An initialiser from a name ("glorot_uniform"), an instance, a class or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, Initializer) or (callable(identifier)
                                               and not isinstance(identifier, type)):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _BY_NAME:
            raise ValueError("unknown initializer %r; known: %s"
                             % (identifier, ", ".join(sorted(_BY_NAME))))
        return _BY_NAME[key]()
    raise TypeError("initializer must be a name, an Initializer or a callable; got %s"
                    % type(identifier).__name__)
