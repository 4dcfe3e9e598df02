"""The Keras-style Layer: weights made by build() on the first call (shapes
inferred from the input), ``activation=``, initialiser and regulariser
arguments, ``trainable``, ``losses`` and ``get_config``."""
from .. import _C, initializers, regularizers
from ..nn.module import Module, _shape_of
from ..nn.parameter import Parameter


class Layer(Module):
    def __init__(self, *, name=None, trainable=True, dtype=None, input_shape=None,
                 input_dim=None, **unexpected):
        if unexpected:
            raise TypeError("%s: unexpected keyword arguments %s"
                            % (type(self).__name__, sorted(unexpected)))
        super().__init__(name=name)
        d = self.__dict__
        d["_regularized"] = []
        d["_trainable_flag"] = bool(trainable)
        # a dtype or a policy name ("mixed_bfloat16"): weights in the variable
        # dtype; a mixed policy runs call() under pf.autocast (Module.__call__)
        from ..mixed_precision import DTypePolicy, global_policy
        policy = global_policy() if dtype is None else DTypePolicy(dtype)
        d["_dtype_policy"] = policy
        d["_dtype"] = _C.dtype(policy.variable_dtype)
        d["_autocast"] = _C.dtype(policy.compute_dtype) if policy.is_mixed else None
        d["_device"] = None     # set by to(device): where build() puts the weights
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        d["_input_shape"] = tuple(input_shape) if input_shape is not None else None

    def _build_now_if_shape_known(self):
        """Layers given input_shape= build at construction, as in Keras."""
        if self._input_shape is not None and not self.built:
            shape = (None,) + self._input_shape
            self.build(shape)
            self.__dict__["built"] = True
            self.__dict__["_build_input_shape"] = shape

    def _build_from(self, args):
        super()._build_from(args)
        # kept so that a saved model can make the same weights again before
        # any data flows through it (pf.saving)
        self.__dict__["_build_input_shape"] = _shape_of(args[0])

    def build(self, input_shape):
        """Make the weights for inputs of this shape (the batch dimension included)."""

    def add_weight(self, name, shape, initializer="glorot_uniform", regularizer=None,
                   trainable=True, dtype=None):
        init = initializers.get(initializer)
        value = init(tuple(int(s) for s in shape), dtype or self._dtype)
        if self._device is not None:
            value = value.to(self._device)
        p = Parameter(value, requires_grad=bool(trainable) and self._trainable_flag)
        setattr(self, name, p)
        reg = regularizers.get(regularizer)
        if reg is not None:
            self._regularized.append((name, reg))
        return p

    def register_buffer(self, name, tensor, persistent=True):
        if tensor is not None and self._device is not None and isinstance(tensor, _C.Tensor):
            tensor = tensor.to(self._device)
        super().register_buffer(name, tensor, persistent)

    @property
    def losses(self):
        """The weight penalties of this layer and the layers inside it."""
        out = []
        for m in self.modules():
            for name, reg in getattr(m, "_regularized", ()):
                w = getattr(m, name)
                if w is not None:
                    out.append(reg(w))
        return out

    @property
    def dtype(self):
        """The dtype of the weights (Keras: the policy's variable dtype)."""
        return self._dtype

    @property
    def dtype_policy(self):
        return self._dtype_policy

    @property
    def compute_dtype(self):
        return _C.dtype(self._dtype_policy.compute_dtype)

    @property
    def variable_dtype(self):
        return self._dtype

    def _check_last_dim(self, x, expected, what="last dim"):
        if x.ndim == 0 or x.shape[-1] != expected:
            raise ValueError("%s expects %s %d, got %s (input shape %s)"
                             % (self._label(), what, expected,
                                x.shape[-1] if x.ndim else "a scalar", tuple(x.shape)))

    def get_config(self):
        policy = self._dtype_policy
        cfg = {"name": self.name, "trainable": self.trainable,
               "dtype": policy.name if policy.is_mixed else str(self._dtype)}
        # weight penalties travel with the config (kernel -> kernel_regularizer,
        # depthwise_kernel -> depthwise_regularizer), so a reloaded model trains the same
        if self._regularized:
            import inspect
            accepted = inspect.signature(type(self).__init__).parameters
            for weight, reg in self._regularized:
                arg = weight.replace("_kernel", "") + "_regularizer"
                if arg in accepted:
                    cfg[arg] = regularizers.serialize(reg)
        if self._input_shape is not None:
            cfg["input_shape"] = list(self._input_shape)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def as_tensor(x):
    return x if isinstance(x, _C.Tensor) else _C.asarray(x)
