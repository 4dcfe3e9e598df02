"""PyTorch-named modules built on existing ops: Identity, Linear, Flatten,
Unflatten, Embedding and the activation modules."""
import math

from .. import _C
from .module import Module
from .parameter import Parameter


def _uniform_(shape, bound):
    return Parameter(_C.uniform(-bound, bound, tuple(shape)))


def param_dtype(module):
    """The dtype of a module's first parameter, as a config value (None without one)."""
    for p in module.parameters():
        return str(p.dtype)
    return None


class Identity(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x

    def get_config(self):
        return {}


class Linear(Module):
    """y = x W^T + b, W of shape (out_features, in_features) as in PyTorch.
    Initialised as PyTorch does: U(-1/sqrt(in), 1/sqrt(in)) for both."""

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        for what, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError("Linear: %s must be a positive integer; got %r" % (what, v))
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = _uniform_((out_features, in_features), bound)
        self.bias = _uniform_((out_features,), bound) if bias else None
        if bias is False:
            self.register_parameter("bias", None)
        if dtype is not None:
            self.to(dtype)

    def forward(self, x):
        if not isinstance(x, _C.Tensor):
            x = _C.asarray(x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError("%s expects inputs whose last dimension is %d (in_features); got "
                             "shape %s" % (self._label(), self.in_features, tuple(x.shape)))
        y = x @ self.weight.T
        return y + self.bias if self.bias is not None else y

    def extra_repr(self):
        return "in_features=%d, out_features=%d, bias=%s" % (
            self.in_features, self.out_features, self.bias is not None)

    def get_config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias is not None, "dtype": param_dtype(self)}


class Flatten(Module):
    """Flatten dims start_dim..end_dim (default: all but the batch dimension)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return "start_dim=%d, end_dim=%d" % (self.start_dim, self.end_dim)

    def get_config(self):
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}


class Unflatten(Module):
    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        d = self.dim % x.ndim
        return x.reshape(tuple(x.shape[:d]) + self.unflattened_size + tuple(x.shape[d + 1:]))

    def get_config(self):
        return {"dim": self.dim, "unflattened_size": list(self.unflattened_size)}


class Embedding(Module):
    """A lookup table: integer indices -> rows of weight (num_embeddings,
    embedding_dim), N(0, 1) initialised as in PyTorch.  The row at
    padding_idx is zero and gets no gradient."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=None,
                 _weight=None):
        super().__init__()
        for what, v in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError("Embedding: %s must be a positive integer; got %r" % (what, v))
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError("Embedding: padding_idx %d is out of range for %d embeddings"
                                 % (padding_idx, num_embeddings))
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        w = _weight if _weight is not None else _C.randn(num_embeddings, embedding_dim)
        if padding_idx is not None:
            w[padding_idx] = 0.0
        self.weight = Parameter(w)
        if dtype is not None:
            self.to(dtype)

    def forward(self, idx):
        if not isinstance(idx, _C.Tensor):
            idx = _C.asarray(idx)
        if idx.dtype.is_floating_point or idx.dtype == _C.bool:
            raise TypeError("%s expects integer indices; got %s (cast with .astype(pf.int64))"
                            % (self._label(), idx.dtype))
        if idx.size:
            lo, hi = int(idx.min()), int(idx.max())
            if lo < 0 or hi >= self.num_embeddings:
                bad = lo if lo < 0 else hi
                raise IndexError("%s: index %d is out of range for %d embeddings (valid: 0 to %d)"
                                 % (self._label(), bad, self.num_embeddings,
                                    self.num_embeddings - 1))
        out = self.weight[idx]
        if self.padding_idx is not None and self.weight.requires_grad and _C.is_grad_enabled():
            keep = (idx != self.padding_idx).astype(out.dtype)
            out = out * keep.unsqueeze(-1)
        return out

    def extra_repr(self):
        s = "%d, %d" % (self.num_embeddings, self.embedding_dim)
        return s + (", padding_idx=%d" % self.padding_idx if self.padding_idx is not None else "")

    def get_config(self):
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim,
                "padding_idx": self.padding_idx, "dtype": param_dtype(self)}


def _act(name, fn, doc, params=()):
    def __init__(self, *args, **kwargs):
        Module.__init__(self)
        vals = dict(zip(params, args))
        vals.update(kwargs)
        unknown = set(vals) - {p for p, _ in params}
        if unknown:
            raise TypeError("%s: unexpected arguments %s" % (name, sorted(unknown)))
        for p, default in params:
            setattr(self, p, vals.get(p, default))

    def forward(self, x):
        return fn(self, x)

    def extra_repr(self):
        return ", ".join("%s=%r" % (p, getattr(self, p)) for p, _ in params)

    def get_config(self):
        return {p: getattr(self, p) for p, _ in params}

    params = tuple(params)
    return type(name, (Module,), {"__init__": __init__, "forward": forward,
                                  "extra_repr": extra_repr, "get_config": get_config,
                                  "__doc__": doc})


ReLU = _act("ReLU", lambda s, x: _C.relu(x), "max(x, 0)", [("inplace", False)])
ReLU6 = _act("ReLU6", lambda s, x: _C.relu6(x), "min(max(x, 0), 6)", [("inplace", False)])
LeakyReLU = _act("LeakyReLU", lambda s, x: _C.leaky_relu(x, negative_slope=s.negative_slope),
                 "x for x > 0, negative_slope * x otherwise",
                 [("negative_slope", 0.01), ("inplace", False)])
ELU = _act("ELU", lambda s, x: _C.elu(x, alpha=s.alpha), "x, or alpha (e^x - 1) below 0",
           [("alpha", 1.0), ("inplace", False)])
SELU = _act("SELU", lambda s, x: _C.selu(x), "scaled ELU (self-normalising)", [("inplace", False)])
GELU = _act("GELU", lambda s, x: _C.gelu(x, approximate=s.approximate),
            "x Phi(x); approximate='tanh' for the tanh formula", [("approximate", "none")])
SiLU = _act("SiLU", lambda s, x: _C.silu(x), "x sigmoid(x)", [("inplace", False)])
Sigmoid = _act("Sigmoid", lambda s, x: _C.sigmoid(x), "1 / (1 + e^-x)")
Tanh = _act("Tanh", lambda s, x: _C.tanh(x), "tanh(x)")
Softplus = _act("Softplus", lambda s, x: _C.softplus(x, beta=s.beta, threshold=s.threshold),
                "log(1 + e^(beta x)) / beta", [("beta", 1.0), ("threshold", 20.0)])
Softmax = _act("Softmax", lambda s, x: _C.softmax(x, axis=-1 if s.dim is None else s.dim),
               "softmax along dim", [("dim", None)])
LogSoftmax = _act("LogSoftmax",
                  lambda s, x: _C.log_softmax(x, axis=-1 if s.dim is None else s.dim),
                  "log_softmax along dim", [("dim", None)])
