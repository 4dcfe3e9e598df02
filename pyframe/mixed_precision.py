"""Mixed precision the Keras way: dtype policies and ``LossScaleOptimizer``.

``pf.mixed_precision.set_global_policy("mixed_bfloat16")`` makes the layers
created afterwards keep their weights in float32 and compute in bfloat16:
each such layer runs its call under ``pf.autocast`` on the device of its
input, so its matrix products run in bfloat16 (AMX on the CPU where it
exists, tensor cores on a GPU) while softmax, normalisations and losses stay
in float32.  A layer's ``dtype=`` takes a policy name too, so one layer can
opt out (``dtype="float32"``).  "mixed_float16" does the same in float16;
``compile`` then wraps the optimizer in a ``LossScaleOptimizer`` (Keras does
too), since float16's small range needs loss scaling.

Where Keras casts a mixed layer's inputs and outputs to the compute dtype,
pyframe casts per op (autocast): a Dense layer's product is bfloat16 and its
float32 bias makes the output float32.  The arithmetic of the products is
the same; activations between layers stay float32.
"""
from . import _C

__all__ = ["DTypePolicy", "Policy", "set_global_policy", "global_policy", "dtype_policy",
           "set_dtype_policy", "LossScaleOptimizer"]

_POLICIES = {
    "float32": ("float32", "float32"),
    "float64": ("float64", "float64"),
    "float16": ("float16", "float16"),
    "bfloat16": ("bfloat16", "bfloat16"),
    "mixed_float16": ("float16", "float32"),
    "mixed_bfloat16": ("bfloat16", "float32"),
}


class DTypePolicy:
    """A layer's dtypes: ``variable_dtype`` for its weights, ``compute_dtype`` for its math.

    Names: "float32", "float64", "float16", "bfloat16" (both dtypes the same),
    "mixed_float16" and "mixed_bfloat16" (float32 weights, 16-bit compute).
    """

    def __init__(self, name="float32"):
        if isinstance(name, DTypePolicy):
            name = name.name
        if not isinstance(name, str):
            try:
                name = str(_C.dtype(name))
            except (TypeError, ValueError):
                raise TypeError(f"DTypePolicy: expected a policy name or a dtype; got "
                                f"{name!r}") from None
        if name not in _POLICIES:
            raise ValueError(f"DTypePolicy: unknown policy {name!r}; expected one of "
                             f"{sorted(_POLICIES)}")
        self._name = name
        self._compute, self._variable = _POLICIES[name]

    @property
    def name(self):
        return self._name

    @property
    def compute_dtype(self):
        return self._compute

    @property
    def variable_dtype(self):
        return self._variable

    @property
    def is_mixed(self):
        return self._compute != self._variable

    def get_config(self):
        return {"name": self._name}

    @classmethod
    def from_config(cls, config):
        return cls(config["name"])

    def __eq__(self, other):
        return isinstance(other, DTypePolicy) and other._name == self._name

    def __hash__(self):
        return hash(self._name)

    def __repr__(self):
        return f'<DTypePolicy "{self._name}">'


Policy = DTypePolicy

_global = [DTypePolicy("float32")]


def set_global_policy(policy):
    """The policy of layers created from now on without a ``dtype=`` ("float32" to reset)."""
    _global[0] = DTypePolicy("float32" if policy is None else policy)


def global_policy():
    return _global[0]


dtype_policy = global_policy
set_dtype_policy = set_global_policy


def _optimizer_base():
    from .optim.optimizer import Optimizer
    return Optimizer


class LossScaleOptimizer:
    """Wraps an optimizer with dynamic loss scaling (Keras's API, for float16).

    ``scale_loss(loss)`` multiplies the loss by the current scale; ``step()``
    (and ``apply``) skip the update when a gradient is inf or NaN and halve
    the scale, and double it after ``dynamic_growth_steps`` clean steps.
    Everything else (learning rate, iterations, state) is the inner
    optimizer's.
    """

    def __init__(self, inner_optimizer, initial_scale=2.0 ** 15, dynamic_growth_steps=2000,
                 name=None, **kwargs):
        if kwargs:
            raise TypeError(f"LossScaleOptimizer: unexpected keyword arguments {sorted(kwargs)}")
        if isinstance(inner_optimizer, LossScaleOptimizer):
            raise TypeError("LossScaleOptimizer: the inner optimizer is already a "
                            "LossScaleOptimizer")
        if not isinstance(inner_optimizer, _optimizer_base()):
            raise TypeError(f"LossScaleOptimizer: inner_optimizer must be a pyframe optimizer "
                            f"(pf.optimizers.Adam(...)); got {type(inner_optimizer).__name__}")
        from .amp import GradScaler
        d = self.__dict__
        d["inner_optimizer"] = inner_optimizer
        d["_scaler"] = GradScaler(device=None, init_scale=initial_scale,
                                  growth_interval=dynamic_growth_steps)
        d["initial_scale"] = float(initial_scale)
        d["dynamic_growth_steps"] = dynamic_growth_steps
        d["name"] = name if name is not None else "loss_scale_optimizer"

    def __getattr__(self, name):
        return getattr(self.__dict__["inner_optimizer"], name)

    def __setattr__(self, name, value):
        if name in self.__dict__:
            self.__dict__[name] = value
        else:
            setattr(self.inner_optimizer, name, value)

    @property
    def loss_scale_factor(self):
        """The current scale (the trainer multiplies the loss by it before backward)."""
        return self._scaler.get_scale()

    @property
    def dynamic_scale(self):
        return self._scaler.get_scale()

    def scale_loss(self, loss):
        return self._scaler.scale(loss)

    def step(self, closure=None):
        loss = None
        if closure is not None:
            from .autograd import enable_grad
            with enable_grad():
                loss = closure()
        self._scaler.step(self.inner_optimizer)
        self._scaler.update()
        return loss

    def apply(self, grads, trainable_variables=None):
        """Keras's apply with scaled gradients: skipped (and the scale halved) if any is inf/NaN."""
        grads = list(grads)
        if self._scaler._non_finite([g for g in grads if g is not None]):
            self._scaler._scale *= self._scaler.get_backoff_factor()
            self._scaler._growth_tracker = 0
            return
        inner = self.inner_optimizer
        saved = inner.loss_scale_factor
        inner.loss_scale_factor = self._scaler.get_scale() * (saved or 1.0)
        try:
            inner.apply(grads, trainable_variables)
        finally:
            inner.loss_scale_factor = saved
        s = self._scaler
        s._growth_tracker += 1
        if s._growth_tracker == s.get_growth_interval():
            s._scale *= s.get_growth_factor()
            s._growth_tracker = 0

    def apply_gradients(self, grads_and_vars):
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def state_dict(self):
        sd = self.inner_optimizer.state_dict()
        sd = dict(sd)
        sd["loss_scale"] = self._scaler.state_dict()
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        scale = state_dict.pop("loss_scale", None)
        self.inner_optimizer.load_state_dict(state_dict)
        if scale:
            self._scaler.load_state_dict(scale)

    def get_config(self):
        from .optimizers import serialize
        return {"name": self.name, "inner_optimizer": serialize(self.inner_optimizer),
                "initial_scale": self.initial_scale,
                "dynamic_growth_steps": self.dynamic_growth_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from .optimizers import deserialize
        config = dict(config)
        inner = deserialize(config.pop("inner_optimizer"))
        return cls(inner, **config)

    def __repr__(self):
        return (f"LossScaleOptimizer({self.inner_optimizer!r}, "
                f"scale={self._scaler.get_scale()})")
