"""Keras normalisation layers over the fused C kernels: BatchNormalization
(gamma/beta, moving_mean/moving_variance), LayerNormalization,
GroupNormalization, RMSNormalization.  Keras defaults: axis -1
(channels_last), epsilon 1e-3 for batch/layer/group norm."""
from .. import _C
from .base import Layer, as_tensor


class BatchNormalization(Layer):
    """Normalise over every axis but ``axis`` with the batch statistics in
    training and the moving ones in inference.  Keras's momentum (0.99) is the
    weight of the old moving value; the moving variance takes the unbiased
    batch variance (as PyTorch; Keras uses the biased one, a difference of
    n/(n-1) on the running value only)."""

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError("BatchNormalization: momentum must be in [0, 1]; got %r" % (momentum,))
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = center, scale
        self.inits = (beta_initializer, gamma_initializer, moving_mean_initializer,
                      moving_variance_initializer)
        self.regs = (beta_regularizer, gamma_regularizer)
        self._build_now_if_shape_known()

    def build(self, input_shape):
        ax = self.axis % len(input_shape)
        c = input_shape[ax]
        if self.scale:
            self.add_weight("gamma", (c,), self.inits[1], self.regs[1])
        if self.center:
            self.add_weight("beta", (c,), self.inits[0], self.regs[0])
        from .. import initializers
        self.register_buffer("moving_mean", initializers.get(self.inits[2])((c,), self._dtype))
        self.register_buffer("moving_variance",
                             initializers.get(self.inits[3])((c,), self._dtype))

    def forward(self, x, training=None):
        x = as_tensor(x)
        ax = self.axis % x.ndim
        if x.shape[ax] != self.moving_mean.shape[0]:
            raise ValueError("%s expects %d channels on axis %d; got shape %s"
                             % (self._label(), self.moving_mean.shape[0], self.axis,
                                tuple(x.shape)))
        training = self.training if training is None else training
        return _C.batch_norm(x, self.moving_mean, self.moving_variance,
                             self.gamma if self.scale else None,
                             self.beta if self.center else None, training=bool(training),
                             momentum=1.0 - self.momentum, eps=self.epsilon, axis=ax)

    def get_config(self):
        return dict(super().get_config(), axis=self.axis, momentum=self.momentum,
                    epsilon=self.epsilon, center=self.center, scale=self.scale)


class LayerNormalization(Layer):
    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.axis = (axis,) if isinstance(axis, int) else tuple(axis)
        self.epsilon, self.center, self.scale = float(epsilon), center, scale
        self.inits = (beta_initializer, gamma_initializer)
        self._build_now_if_shape_known()

    def _trailing(self, ndim):
        axes = sorted(a % ndim for a in self.axis)
        if axes != list(range(ndim - len(axes), ndim)):
            raise ValueError("%s: axis %s must be the last axes of the input (rank %d)"
                             % (self._label(), self.axis, ndim))
        return len(axes)

    def build(self, input_shape):
        k = self._trailing(len(input_shape))
        shape = tuple(input_shape[-k:])
        if self.scale:
            self.add_weight("gamma", shape, self.inits[1])
        if self.center:
            self.add_weight("beta", shape, self.inits[0])

    def forward(self, x):
        x = as_tensor(x)
        k = self._trailing(x.ndim)
        return _C.layer_norm(x, tuple(x.shape[-k:]), self.gamma if self.scale else None,
                             self.beta if self.center else None, self.epsilon)

    def get_config(self):
        return dict(super().get_config(), axis=list(self.axis), epsilon=self.epsilon,
                    center=self.center, scale=self.scale)


class GroupNormalization(Layer):
    """Groups of channels on the last axis (channels_last), normalised together."""

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.groups, self.axis, self.epsilon = groups, axis, float(epsilon)
        self.center, self.scale = center, scale
        self._build_now_if_shape_known()

    def build(self, input_shape):
        c = input_shape[self.axis]
        if c % self.groups:
            raise ValueError("%s: %d channels cannot be split into %d groups"
                             % (self._label(), c, self.groups))
        if self.scale:
            self.add_weight("gamma", (c,), "ones")
        if self.center:
            self.add_weight("beta", (c,), "zeros")

    def forward(self, x):
        x = as_tensor(x)
        ax = self.axis % x.ndim
        # the kernel takes channels on axis 1: move them there (a view, no copy)
        xc = x.moveaxis(ax, 1) if ax != 1 else x
        y = _C.group_norm(xc, self.groups, self.gamma if self.scale else None,
                          self.beta if self.center else None, self.epsilon)
        return y.moveaxis(1, ax) if ax != 1 else y

    def get_config(self):
        return dict(super().get_config(), groups=self.groups, axis=self.axis,
                    epsilon=self.epsilon, center=self.center, scale=self.scale)


class RMSNormalization(Layer):
    def __init__(self, axis=-1, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.epsilon = axis, float(epsilon)
        self._build_now_if_shape_known()

    def build(self, input_shape):
        self.add_weight("scale", (input_shape[self.axis],), "ones")

    def forward(self, x):
        x = as_tensor(x)
        if self.axis % x.ndim != x.ndim - 1:
            raise ValueError("%s normalises the last axis; got axis %d" % (self._label(), self.axis))
        return _C.rms_norm(x, (x.shape[-1],), self.scale, self.epsilon)

    def get_config(self):
        return dict(super().get_config(), axis=self.axis, epsilon=self.epsilon)
