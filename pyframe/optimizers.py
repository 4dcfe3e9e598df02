"""pyframe.optimizers: the Keras-named optimizers, with Keras 3's defaults and
formulas, over the same fused C updates as ``pf.optim``::

    model.compile(optimizer=pf.optimizers.Adam(learning_rate=1e-3), ...)
    opt = pf.optimizers.get("adam")

Where these differ from the ``pf.optim`` classes (which follow PyTorch):

- defaults: ``epsilon=1e-7`` everywhere (PyTorch 1e-8, Adagrad 1e-10);
  ``learning_rate=1e-3`` (SGD 1e-2; PyTorch's RMSprop/Adagrad use 1e-2,
  Adamax/NAdam 2e-3, Lion 1e-4); RMSprop ``rho=0.9`` (PyTorch's alpha 0.99);
  Adagrad ``initial_accumulator_value=0.1`` (0); AdamW ``weight_decay=0.004``
  (1e-2).
- epsilon placement: Adam/AdamW add epsilon to the *uncorrected*
  ``sqrt(v)`` (``p -= lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps)``, PyTorch
  adds it after the bias correction); RMSprop and Adagrad put it inside the
  square root; Adamax adds it to the norm ``u`` instead of inside the max.
- SGD and RMSprop momentum keep the learning rate inside the buffer (the same
  as PyTorch's while the rate is constant; different when it changes).
- ``weight_decay`` is decoupled for every optimizer (``p -= lr * wd * p``
  before the update), where PyTorch's SGD/Adam/RMSprop/Adagrad/Adamax/NAdam
  add ``wd * p`` to the gradient.
- Nadam's momentum schedule is Keras 3's ``b1 (1 - 0.5 * 0.96^t)``
  (``momentum_decay=1``), where PyTorch's NAdam uses ``0.96^(0.004 t)``.

``use_ema`` and ``gradient_accumulation_steps`` are not supported (they
raise); ``loss_scale_factor`` is.  The first positional argument is the
learning rate, as in Keras; ``params=`` (or an iterable of tensors first)
attaches parameters at once, the PyTorch way.
"""
from .optim import algorithms as _alg
from .optim.optimizer import Optimizer
from .optim import schedules
from .optim.schedules import LearningRateSchedule

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "Nadam", "Lion",
           "schedules", "get", "serialize", "deserialize", "LossScaleOptimizer"]


def _split(label, learning_rate, params, kwargs):
    """Keras passes the learning rate first; PyTorch code may pass parameters there."""
    if "lr" in kwargs:
        learning_rate = kwargs.pop("lr")
    if kwargs.pop("use_ema", False):
        raise ValueError(f"{label}: use_ema=True is not supported by pyframe's optimizers")
    if kwargs.pop("gradient_accumulation_steps", None):
        raise ValueError(f"{label}: gradient_accumulation_steps is not supported by pyframe's "
                         "optimizers; accumulate .grad over several backward() calls instead")
    for k in ("ema_momentum", "ema_overwrite_frequency", "decay"):
        kwargs.pop(k, None)
    if kwargs:
        raise TypeError(f"{label}: argument(s) not recognized: {sorted(kwargs)}")
    if not isinstance(learning_rate, (int, float, LearningRateSchedule)) and \
            not callable(learning_rate) and hasattr(learning_rate, "__iter__"):
        if params is not None:
            raise TypeError(f"{label}: got parameters both first and as params=")
        return 1e-3 if label != "SGD" else 0.01, learning_rate
    return learning_rate, params


def _wd(weight_decay):
    return 0.0 if weight_decay is None else weight_decay


class SGD(_alg.SGD):
    """Keras SGD: ``m = momentum m - lr g``; ``p += m`` (or, with Nesterov,
    ``p += momentum m - lr g``); default ``learning_rate=0.01``."""

    _keras = True

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, loss_scale_factor=None,
                 name="SGD", *, params=None, **kwargs):
        learning_rate, params = _split("SGD", learning_rate, params, kwargs)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"SGD: momentum must be a float between 0 and 1 (Keras); got "
                             f"momentum={momentum!r}")
        super().__init__(params, learning_rate=learning_rate, momentum=momentum,
                         nesterov=nesterov, weight_decay=_wd(weight_decay), clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         loss_scale_factor=loss_scale_factor, name=name)

    def _options(self, g):
        opts = super()._options(g)
        # Keras SGD has no dampening, and Nesterov needs no momentum check of its own
        opts["dampening"] = 0.0
        return opts


class Adam(_alg.Adam):
    """Keras Adam: ``epsilon=1e-7`` added to the uncorrected ``sqrt(v)``."""

    _keras = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 loss_scale_factor=None, name="adam", *, params=None, **kwargs):
        learning_rate, params = _split(type(self).__name__, learning_rate, params, kwargs)
        super().__init__(params, learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, amsgrad=amsgrad, weight_decay=_wd(weight_decay),
                         decoupled_weight_decay=True, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, loss_scale_factor=loss_scale_factor,
                         name=name)


class AdamW(Adam):
    """Keras AdamW: Adam with ``weight_decay=0.004`` (decoupled)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 loss_scale_factor=None, name="adamw", *, params=None, **kwargs):
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         loss_scale_factor=loss_scale_factor, name=name, params=params, **kwargs)


class RMSprop(_alg.RMSprop):
    """Keras RMSprop: ``rho=0.9``, ``epsilon=1e-7`` inside the square root,
    the learning rate inside the momentum buffer."""

    _keras = True

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 loss_scale_factor=None, name="rmsprop", *, params=None, **kwargs):
        learning_rate, params = _split("RMSprop", learning_rate, params, kwargs)
        super().__init__(params, learning_rate=learning_rate, rho=rho, momentum=momentum,
                         epsilon=epsilon, centered=centered, weight_decay=_wd(weight_decay),
                         clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         loss_scale_factor=loss_scale_factor, name=name)


class Adagrad(_alg.Adagrad):
    """Keras Adagrad: ``initial_accumulator_value=0.1``, ``epsilon=1e-7``
    inside the square root."""

    _keras = True

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 loss_scale_factor=None, name="adagrad", *, params=None, **kwargs):
        learning_rate, params = _split("Adagrad", learning_rate, params, kwargs)
        super().__init__(params, learning_rate=learning_rate,
                         initial_accumulator_value=initial_accumulator_value, epsilon=epsilon,
                         weight_decay=_wd(weight_decay), clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, loss_scale_factor=loss_scale_factor,
                         name=name)


class Adamax(_alg.Adamax):
    """Keras Adamax: ``epsilon=1e-7`` added to the infinity norm."""

    _keras = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 loss_scale_factor=None, name="adamax", *, params=None, **kwargs):
        learning_rate, params = _split("Adamax", learning_rate, params, kwargs)
        super().__init__(params, learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, weight_decay=_wd(weight_decay), clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         loss_scale_factor=loss_scale_factor, name=name)


class Nadam(_alg.NAdam):
    """Keras Nadam: ``epsilon=1e-7`` and Keras 3's momentum schedule
    ``b1 (1 - 0.5 * 0.96^t)``."""

    _keras = True
    _default_momentum_decay = 1.0

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 loss_scale_factor=None, name="nadam", *, params=None, **kwargs):
        learning_rate, params = _split("Nadam", learning_rate, params, kwargs)
        super().__init__(params, learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, weight_decay=_wd(weight_decay),
                         decoupled_weight_decay=True, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, loss_scale_factor=loss_scale_factor,
                         name=name)


class Lion(_alg.Lion):
    """Keras Lion: ``learning_rate=0.001``, ``beta_1=0.9``, ``beta_2=0.99``."""

    _keras = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, loss_scale_factor=None,
                 name="lion", *, params=None, **kwargs):
        learning_rate, params = _split("Lion", learning_rate, params, kwargs)
        super().__init__(params, learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         weight_decay=_wd(weight_decay), clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, loss_scale_factor=loss_scale_factor,
                         name=name)


from .mixed_precision import LossScaleOptimizer  # noqa: E402

_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad,
            "adamax": Adamax, "nadam": Nadam, "lion": Lion,
            "lossscaleoptimizer": LossScaleOptimizer}


def serialize(optimizer):
    """``{"class_name": ..., "config": optimizer.get_config()}``."""
    return {"module": "pyframe.optimizers", "class_name": type(optimizer).__name__,
            "config": optimizer.get_config()}


def deserialize(config, custom_objects=None):
    """The optimizer a ``serialize`` dict describes (a new one, without state)."""
    name = config.get("class_name") if isinstance(config, dict) else None
    cls = (custom_objects or {}).get(name) or _BY_NAME.get(str(name).lower())
    if cls is None:
        raise ValueError(f"optimizers.deserialize: unknown optimizer {name!r}; known: "
                         f"{sorted(_BY_NAME)}")
    return cls.from_config(config.get("config", {}), custom_objects)


def get(identifier):
    """An optimizer from a name (``"adam"``), a config dict or an optimizer
    (returned as is), as ``keras.optimizers.get``."""
    if isinstance(identifier, (Optimizer, LossScaleOptimizer)):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(f"optimizers.get: unknown optimizer {identifier!r}; known: "
                             f"{sorted(_BY_NAME)}")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"optimizers.get: could not interpret optimizer identifier {identifier!r}")
