"""The optimizers of pyframe.optim, with PyTorch's defaults and formulas
(torch.optim's), accepting Keras's spellings as well (``learning_rate=`` for
``lr=``, ``beta_1=`` / ``beta_2=`` for ``betas=``, ``epsilon=`` for ``eps=``,
``rho=`` for RMSprop's ``alpha=``) and Keras's gradient clipping
(``clipnorm``, ``clipvalue``, ``global_clipnorm``).  The Keras-named classes
with Keras's defaults and formulas are in ``pf.optimizers``.

Every update is one C call per parameter group (``_C._optim_step``, see
csrc/optim.c for the formulas).  ``foreach=`` and ``fused=`` are accepted for
compatibility and change nothing: the update is always fused.
"""
from .optimizer import Optimizer, UNSET, pick, pick_betas, check_torch_flags

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "Nadam", "Lion"]


def _params_or_lr(params, lr):
    """Keras code passes the learning rate first: ``Adam(1e-3)``."""
    if isinstance(params, (int, float)) and not isinstance(params, bool):
        if lr is not UNSET:
            raise TypeError(f"got a learning rate both as the first argument ({params!r}) and as "
                            f"lr={lr!r}")
        return None, params
    from .schedules import LearningRateSchedule
    if isinstance(params, LearningRateSchedule):
        return None, params
    return params, lr


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (PyTorch's formulation)::

        b = momentum * b + (1 - dampening) * g      (b = g on the first step)
        p -= lr * (g + momentum * b  if nesterov else  b)

    ``weight_decay`` adds ``weight_decay * p`` to the gradient; ``maximize``
    ascends.  State per parameter: ``step``, ``momentum_buffer`` (with
    momentum)."""

    _algorithm = "sgd"
    _all_slots = ("momentum_buffer",)

    def __init__(self, params=None, lr=UNSET, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, learning_rate=UNSET, foreach=None, fused=None,
                 differentiable=False, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 loss_scale_factor=None, name=None):
        params, lr = _params_or_lr(params, lr)
        check_torch_flags(type(self).__name__, False, differentiable)
        defaults = dict(lr=pick(type(self).__name__, "lr", lr, "learning_rate", learning_rate,
                                1e-3),
                        momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, fused=fused)
        super().__init__(params, defaults, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, loss_scale_factor=loss_scale_factor,
                         name=name)

    def _options(self, g):
        return {"momentum": g["momentum"], "dampening": g["dampening"],
                "nesterov": g["nesterov"], "weight_decay": g["weight_decay"],
                "maximize": g["maximize"], "decoupled_weight_decay": self._keras}

    def _slots(self, g):
        return ("momentum_buffer",) if g["momentum"] != 0 else ()

    def _may_start(self, name):
        # PyTorch's SGD keeps no step, and no buffer before its first step
        return True


class Adam(Optimizer):
    """Adam (PyTorch's formulation)::

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2   [amsgrad: vmax = max(vmax, v)]
        p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    ``weight_decay`` is L2 (added to the gradient) unless
    ``decoupled_weight_decay=True`` (then it is AdamW's).  State: ``step``,
    ``exp_avg``, ``exp_avg_sq`` and ``max_exp_avg_sq`` (amsgrad)."""

    _algorithm = "adam"
    _all_slots = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _default_lr = 1e-3
    _default_wd = 0.0
    _decoupled = False

    def __init__(self, params=None, lr=UNSET, betas=UNSET, eps=UNSET, weight_decay=UNSET,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=UNSET,
                 learning_rate=UNSET, beta_1=UNSET, beta_2=UNSET, epsilon=UNSET, foreach=None,
                 fused=None, capturable=False, differentiable=False, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, loss_scale_factor=None, name=None):
        label = type(self).__name__
        params, lr = _params_or_lr(params, lr)
        check_torch_flags(label, capturable, differentiable)
        defaults = dict(lr=pick(label, "lr", lr, "learning_rate", learning_rate, self._default_lr),
                        betas=pick_betas(label, betas, beta_1, beta_2, (0.9, 0.999)),
                        eps=pick(label, "eps", eps, "epsilon", epsilon, 1e-8),
                        weight_decay=self._default_wd if weight_decay is UNSET else weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=(self._decoupled if decoupled_weight_decay is UNSET
                                                else decoupled_weight_decay),
                        foreach=foreach, fused=fused)
        super().__init__(params, defaults, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, loss_scale_factor=loss_scale_factor,
                         name=name)

    def _options(self, g):
        b1, b2 = g["betas"]
        return {"beta1": b1, "beta2": b2, "eps": g["eps"], "weight_decay": g["weight_decay"],
                "amsgrad": g["amsgrad"], "maximize": g["maximize"],
                "decoupled_weight_decay": g["decoupled_weight_decay"]}

    def _slots(self, g):
        if g["amsgrad"]:
            return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
        return ("exp_avg", "exp_avg_sq")


class AdamW(Adam):
    """Adam with decoupled weight decay (``p *= 1 - lr * weight_decay`` before
    the step), PyTorch's default ``weight_decay=1e-2``."""

    _default_wd = 1e-2
    _decoupled = True


class RMSprop(Optimizer):
    """RMSprop (PyTorch's formulation)::

        sq = alpha sq + (1 - alpha) g^2;  [centered: ga = alpha ga + (1 - alpha) g]
        den = sqrt(sq [- ga^2]) + eps
        momentum: b = momentum b + g / den; p -= lr b     else: p -= lr g / den

    ``rho=`` is accepted for ``alpha=``.  State: ``step``, ``square_avg``,
    ``momentum_buffer`` (momentum > 0), ``grad_avg`` (centered)."""

    _algorithm = "rmsprop"
    _all_slots = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params=None, lr=UNSET, alpha=UNSET, eps=UNSET, weight_decay=0.0,
                 momentum=0.0, centered=False, *, maximize=False, learning_rate=UNSET, rho=UNSET,
                 epsilon=UNSET, foreach=None, capturable=False, differentiable=False,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, loss_scale_factor=None,
                 name=None):
        label = type(self).__name__
        params, lr = _params_or_lr(params, lr)
        check_torch_flags(label, capturable, differentiable)
        defaults = dict(lr=pick(label, "lr", lr, "learning_rate", learning_rate, 1e-2),
                        alpha=pick(label, "alpha", alpha, "rho", rho, 0.99),
                        eps=pick(label, "eps", eps, "epsilon", epsilon, 1e-8),
                        weight_decay=weight_decay, momentum=momentum, centered=centered,
                        maximize=maximize, foreach=foreach)
        super().__init__(params, defaults, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, loss_scale_factor=loss_scale_factor,
                         name=name)

    def _options(self, g):
        return {"alpha": g["alpha"], "eps": g["eps"], "weight_decay": g["weight_decay"],
                "momentum": g["momentum"], "centered": g["centered"], "maximize": g["maximize"],
                "decoupled_weight_decay": self._keras}

    def _slots(self, g):
        slots = ("square_avg",)
        if g["momentum"] > 0:
            slots += ("momentum_buffer",)
        if g["centered"]:
            slots += ("grad_avg",)
        return slots


class Adagrad(Optimizer):
    """Adagrad (PyTorch's formulation)::

        sum += g^2;  p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(sum) + eps)

    The accumulator starts at ``initial_accumulator_value``.  State: ``step``,
    ``sum``."""

    _algorithm = "adagrad"
    _all_slots = ("sum",)

    def __init__(self, params=None, lr=UNSET, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=UNSET, *, maximize=False,
                 learning_rate=UNSET, epsilon=UNSET, foreach=None, fused=None,
                 differentiable=False, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 loss_scale_factor=None, name=None):
        label = type(self).__name__
        params, lr = _params_or_lr(params, lr)
        check_torch_flags(label, False, differentiable)
        if not (isinstance(initial_accumulator_value, (int, float)) and
                0.0 <= initial_accumulator_value < float("inf")):
            raise ValueError(f"{label}: invalid initial_accumulator_value="
                             f"{initial_accumulator_value!r}; expected a finite number >= 0")
        defaults = dict(lr=pick(label, "lr", lr, "learning_rate", learning_rate, 1e-2),
                        lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value,
                        eps=pick(label, "eps", eps, "epsilon", epsilon, 1e-10), maximize=maximize,
                        foreach=foreach, fused=fused)
        super().__init__(params, defaults, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, loss_scale_factor=loss_scale_factor,
                         name=name)

    def _options(self, g):
        return {"lr_decay": g["lr_decay"], "eps": g["eps"], "weight_decay": g["weight_decay"],
                "maximize": g["maximize"], "decoupled_weight_decay": self._keras}

    def _slots(self, g):
        return ("sum",)

    def _slot_init(self, name, group):
        return float(group["initial_accumulator_value"])


class Adamax(Optimizer):
    """Adamax (PyTorch's formulation)::

        m = b1 m + (1 - b1) g;  u = max(b2 u, |g| + eps);  p -= lr / (1 - b1^t) * m / u

    State: ``step``, ``exp_avg``, ``exp_inf``."""

    _algorithm = "adamax"
    _all_slots = ("exp_avg", "exp_inf")

    def __init__(self, params=None, lr=UNSET, betas=UNSET, eps=UNSET, weight_decay=0.0, *,
                 maximize=False, learning_rate=UNSET, beta_1=UNSET, beta_2=UNSET, epsilon=UNSET,
                 foreach=None, capturable=False, differentiable=False, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, loss_scale_factor=None, name=None):
        label = type(self).__name__
        params, lr = _params_or_lr(params, lr)
        check_torch_flags(label, capturable, differentiable)
        defaults = dict(lr=pick(label, "lr", lr, "learning_rate", learning_rate, 2e-3),
                        betas=pick_betas(label, betas, beta_1, beta_2, (0.9, 0.999)),
                        eps=pick(label, "eps", eps, "epsilon", epsilon, 1e-8),
                        weight_decay=weight_decay, maximize=maximize, foreach=foreach)
        super().__init__(params, defaults, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, loss_scale_factor=loss_scale_factor,
                         name=name)

    def _options(self, g):
        b1, b2 = g["betas"]
        return {"beta1": b1, "beta2": b2, "eps": g["eps"], "weight_decay": g["weight_decay"],
                "maximize": g["maximize"], "decoupled_weight_decay": self._keras}

    def _slots(self, g):
        return ("exp_avg", "exp_inf")


class NAdam(Optimizer):
    """NAdam (PyTorch's formulation): Adam with Nesterov momentum and the
    momentum schedule ``mu_t = b1 (1 - 0.5 * 0.96^(t * momentum_decay))``.
    ``decoupled_weight_decay=True`` gives NAdamW.  State: ``step``,
    ``mu_product`` (a 1-element tensor), ``exp_avg``, ``exp_avg_sq``."""

    _algorithm = "nadam"
    _all_slots = ("mu_product", "exp_avg", "exp_avg_sq")
    _scalar_slots = ("mu_product",)
    _default_momentum_decay = 4e-3

    def __init__(self, params=None, lr=UNSET, betas=UNSET, eps=UNSET, weight_decay=0.0,
                 momentum_decay=UNSET, decoupled_weight_decay=False, *, maximize=False,
                 learning_rate=UNSET, beta_1=UNSET, beta_2=UNSET, epsilon=UNSET, foreach=None,
                 capturable=False, differentiable=False, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, loss_scale_factor=None, name=None):
        label = type(self).__name__
        params, lr = _params_or_lr(params, lr)
        check_torch_flags(label, capturable, differentiable)
        defaults = dict(lr=pick(label, "lr", lr, "learning_rate", learning_rate, 2e-3),
                        betas=pick_betas(label, betas, beta_1, beta_2, (0.9, 0.999)),
                        eps=pick(label, "eps", eps, "epsilon", epsilon, 1e-8),
                        weight_decay=weight_decay,
                        momentum_decay=(self._default_momentum_decay if momentum_decay is UNSET
                                        else momentum_decay),
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                        foreach=foreach)
        super().__init__(params, defaults, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, loss_scale_factor=loss_scale_factor,
                         name=name)

    def _options(self, g):
        b1, b2 = g["betas"]
        return {"beta1": b1, "beta2": b2, "eps": g["eps"], "weight_decay": g["weight_decay"],
                "momentum_decay": g["momentum_decay"], "maximize": g["maximize"],
                "decoupled_weight_decay": g["decoupled_weight_decay"]}

    def _slots(self, g):
        return ("mu_product", "exp_avg", "exp_avg_sq")


Nadam = NAdam


class Lion(Optimizer):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms")::

        p -= lr * sign(b1 m + (1 - b1) g);  m = b2 m + (1 - b2) g

    with decoupled weight decay (``p *= 1 - lr * weight_decay`` first).  The
    defaults are the paper's PyTorch ones (``lr=1e-4``, ``betas=(0.9, 0.99)``;
    use a learning rate 3-10x smaller than AdamW's).  State: ``step``,
    ``exp_avg``."""

    _algorithm = "lion"
    _all_slots = ("exp_avg",)

    def __init__(self, params=None, lr=UNSET, betas=UNSET, weight_decay=0.0, *, maximize=False,
                 learning_rate=UNSET, beta_1=UNSET, beta_2=UNSET, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, loss_scale_factor=None, name=None):
        label = type(self).__name__
        params, lr = _params_or_lr(params, lr)
        defaults = dict(lr=pick(label, "lr", lr, "learning_rate", learning_rate, 1e-4),
                        betas=pick_betas(label, betas, beta_1, beta_2, (0.9, 0.99)),
                        weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, loss_scale_factor=loss_scale_factor,
                         name=name)

    def _options(self, g):
        b1, b2 = g["betas"]
        return {"beta1": b1, "beta2": b2, "weight_decay": g["weight_decay"],
                "maximize": g["maximize"]}

    def _slots(self, g):
        return ("exp_avg",)
