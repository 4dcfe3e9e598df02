"""PyTorch-style learning-rate schedulers: objects that rewrite
``optimizer.param_groups[i]["lr"]`` each time ``scheduler.step()`` is called
(once per epoch, or per batch for OneCycleLR)::

    opt = pf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = pf.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    for epoch in range(100):
        train(...); sched.step()

Each computes its rate in closed form from the epoch count (PyTorch updates
most of them recursively; the values agree to rounding).  The Keras-style
alternative is a schedule passed as the learning rate
(``pf.optim.schedules``), which needs no ``step()`` call.
"""
import bisect
import math

from .schedules import LearningRateSchedule, OneCycle

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR",
           "CosineAnnealingLR", "OneCycleLR"]


class LRScheduler:
    """Base class: subclasses define ``_rate(base_lr, epoch)``."""

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = optimizer
        label = type(self).__name__
        for gi, group in enumerate(optimizer.param_groups):
            if isinstance(group["lr"], LearningRateSchedule) or callable(group["lr"]):
                raise TypeError(f"{label}: group {gi} already has a schedule as its learning "
                                "rate; use either a schedule or a scheduler, not both")
            if last_epoch == -1:
                group.setdefault("initial_lr", float(group["lr"]))
            elif "initial_lr" not in group:
                raise KeyError(f"{label}: resuming from last_epoch={last_epoch} needs "
                               f"'initial_lr' in group {gi}")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def _rate(self, base_lr, epoch):
        raise NotImplementedError

    def get_lr(self):
        return [self._rate(base, self.last_epoch) for base in self.base_lrs]

    def step(self):
        self.last_epoch += 1
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self):
        """The rates the last ``step()`` set, one per group."""
        return list(self._last_lr)

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)


class LambdaLR(LRScheduler):
    """``base_lr * lr_lambda(epoch)`` (one function, or one per group)."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups)
        self.lr_lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else \
            [lr_lambda] * n
        if len(self.lr_lambdas) != n:
            raise ValueError(f"LambdaLR: expected {n} lr_lambdas (one per group); got "
                             f"{len(self.lr_lambdas)}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * f(self.last_epoch) for base, f in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}


class StepLR(LRScheduler):
    """``base_lr * gamma ** (epoch // step_size)``."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if not isinstance(step_size, int) or step_size <= 0:
            raise ValueError(f"StepLR: step_size must be a positive integer; got {step_size!r}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def _rate(self, base, epoch):
        return base * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """``base_lr * gamma ** (number of milestones <= epoch)``."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def _rate(self, base, epoch):
        return base * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class ExponentialLR(LRScheduler):
    """``base_lr * gamma ** epoch``."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _rate(self, base, epoch):
        return base * self.gamma ** epoch


class CosineAnnealingLR(LRScheduler):
    """``eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2``."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if not T_max > 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be > 0; got {T_max!r}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def _rate(self, base, epoch):
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * epoch /
                                                                    self.T_max)) / 2


class OneCycleLR(LRScheduler):
    """PyTorch's one-cycle policy, stepped once per batch: the learning rate
    follows ``pf.optim.schedules.OneCycle`` and, with ``cycle_momentum``, the
    momentum (SGD's ``momentum`` or Adam's ``betas[0]``) moves the opposite way
    between ``max_momentum`` and ``base_momentum``."""

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        groups = optimizer.param_groups
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        self.cycles = [OneCycle(m, total_steps, pct_start, anneal_strategy, div_factor,
                                final_div_factor, three_phase) for m in max_lrs]
        self.total_steps = total_steps
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "betas" not in optimizer.defaults and "momentum" not in optimizer.defaults:
                raise ValueError("OneCycleLR: cycle_momentum=True needs an optimizer with momentum "
                                 "or betas; pass cycle_momentum=False")
            self.use_beta1 = "betas" in optimizer.defaults
            self.momenta = (max_momentum, base_momentum)
        for group, cycle in zip(groups, self.cycles):
            if last_epoch == -1:
                group["initial_lr"] = float(cycle.max_lr) / div_factor
        super().__init__(optimizer, last_epoch)

    def _momentum(self, cycle, epoch):
        top, low = self.momenta
        ends = [(top, low), (low, top), (top, top)] if cycle.three_phase else [(top, low),
                                                                               (low, top)]
        begin = 0.0
        phases = cycle.phases()
        for i, ((end_step, _, _), (a, b)) in enumerate(zip(phases, ends)):
            if epoch <= end_step or i == len(phases) - 1:
                return cycle.anneal(a, b, (epoch - begin) / (end_step - begin))
            begin = end_step
        raise AssertionError("unreachable")

    def get_lr(self):
        if self.last_epoch > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {self.last_epoch} times; the schedule "
                             f"has total_steps={self.total_steps}")
        lrs = [cycle(self.last_epoch) for cycle in self.cycles]
        if self.cycle_momentum:
            for group, cycle in zip(self.optimizer.param_groups, self.cycles):
                m = self._momentum(cycle, self.last_epoch)
                if self.use_beta1:
                    group["betas"] = (m, group["betas"][1])
                else:
                    group["momentum"] = m
        return lrs
