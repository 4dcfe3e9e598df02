"""Learning-rate schedules: Keras's ``keras.optimizers.schedules`` and a
``OneCycle`` with PyTorch's ``OneCycleLR`` semantics.

A schedule is a callable of the optimizer step (0 on the first update) that
returns the learning rate as a Python float.  Pass one wherever a learning
rate goes::

    sched = pf.optim.schedules.CosineDecay(0.0, decay_steps=1000,
                                           warmup_target=1e-3, warmup_steps=100)
    opt = pf.optim.AdamW(model.parameters(), lr=sched)

The optimizer calls ``sched(optimizer.iterations)`` before each update, so the
n-th update (counting from 0) uses ``sched(n)``, as in Keras.  Every schedule
has ``get_config()`` / ``from_config()``, and ``serialize`` / ``deserialize``
turn one into a JSON-friendly dict and back.

The arithmetic is scalar Python (``math``), done once per step: nothing here
touches tensors.
"""
import math

__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay", "PolynomialDecay",
           "InverseTimeDecay", "CosineDecay", "CosineDecayRestarts", "OneCycle", "serialize",
           "deserialize", "get"]


def _step(step):
    # the step may be an int, a float, a NumPy scalar or a 1-element tensor
    return float(step)


def _positive(cls, what, value):
    if not value > 0:
        raise ValueError(f"{cls}: {what} must be > 0; got {what}={value!r}")


class LearningRateSchedule:
    """Base class: subclasses implement ``__call__(step)`` and ``get_config()``."""

    def __call__(self, step):
        raise NotImplementedError(f"learning rate schedule {type(self).__name__} must implement "
                                  "__call__(self, step)")

    def get_config(self):
        raise NotImplementedError(f"learning rate schedule {type(self).__name__} must implement "
                                  "get_config() to be serialised")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with
    ``staircase=True`` the exponent is floored (decay in discrete intervals)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        _positive("ExponentialDecay", "decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name

    def __call__(self, step):
        p = _step(step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return float(self.initial_learning_rate) * float(self.decay_rate) ** p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last
    boundary (Keras's convention: a boundary step still belongs to the
    interval before it)."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) != len(values) - 1:
            raise ValueError("PiecewiseConstantDecay: expected one more value than boundaries; "
                             f"got {len(boundaries)} boundaries {boundaries} and {len(values)} "
                             f"values {values}")
        if any(not a < b for a, b in zip(boundaries, boundaries[1:])):
            raise ValueError("PiecewiseConstantDecay: boundaries must be strictly increasing; got "
                             f"{boundaries}")
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step):
        s = _step(step)
        for b, v in zip(self.boundaries, self.values):
            if s <= b:
                return float(v)
        return float(self.values[-1])

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """From ``initial_learning_rate`` to ``end_learning_rate`` in
    ``decay_steps`` along ``(1 - step / decay_steps) ** power``, then constant;
    with ``cycle=True`` the horizon grows to the next multiple of
    ``decay_steps`` instead (Keras)."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False, name="PolynomialDecay"):
        _positive("PolynomialDecay", "decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.cycle = cycle
        self.name = name

    def __call__(self, step):
        s = _step(step)
        horizon = float(self.decay_steps)
        if self.cycle:
            horizon *= 1.0 if s == 0 else math.ceil(s / self.decay_steps)
        else:
            s = min(s, horizon)
        start, end = float(self.initial_learning_rate), float(self.end_learning_rate)
        return (start - end) * (1.0 - s / horizon) ** self.power + end

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``
    (the quotient floored with ``staircase=True``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        _positive("InverseTimeDecay", "decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name

    def __call__(self, step):
        p = _step(step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return float(self.initial_learning_rate) / (1.0 + float(self.decay_rate) * p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Cosine decay with an optional linear warmup (Keras 3).

    Without ``warmup_target``: from ``initial_learning_rate`` down to
    ``initial_learning_rate * alpha`` over ``decay_steps``, then constant.
    With it: a linear ramp from ``initial_learning_rate`` to ``warmup_target``
    over ``warmup_steps``, then the cosine from ``warmup_target`` down to
    ``warmup_target * alpha`` over ``decay_steps``."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        _positive("CosineDecay", "decay_steps", decay_steps)
        if warmup_steps < 0:
            raise ValueError(f"CosineDecay: warmup_steps must be >= 0; got {warmup_steps!r}")
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps

    def _decay(self, s, start):
        cosine = 0.5 * (1.0 + math.cos(math.pi * s / self.decay_steps))
        return start * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        s = _step(step)
        initial = float(self.initial_learning_rate)
        if self.warmup_target is None:
            return self._decay(min(s, float(self.decay_steps)), initial)
        target, warm = float(self.warmup_target), float(self.warmup_steps)
        s = min(s, self.decay_steps + warm)
        if s < warm:
            return (target - initial) * (s / warm) + initial
        return self._decay(s - warm, target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR, as Keras): the first period lasts
    ``first_decay_steps``, each next one ``t_mul`` times longer and starting
    ``m_mul`` times lower; within a period the rate falls from its start to
    ``alpha`` times ``initial_learning_rate``."""

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0,
                 name="SGDRDecay"):
        _positive("CosineDecayRestarts", "first_decay_steps", first_decay_steps)
        _positive("CosineDecayRestarts", "t_mul", t_mul)
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self.t_mul = t_mul
        self.m_mul = m_mul
        self.alpha = alpha
        self.name = name

    def __call__(self, step):
        frac = _step(step) / self.first_decay_steps
        t_mul = float(self.t_mul)
        if t_mul == 1.0:
            restart = math.floor(frac)
            frac -= restart
        else:
            # period i starts at (1 - t_mul**i) / (1 - t_mul) first periods
            restart = math.floor(math.log(1.0 - frac * (1.0 - t_mul)) / math.log(t_mul))
            start = (1.0 - t_mul ** restart) / (1.0 - t_mul)
            frac = (frac - start) / t_mul ** restart
        cosine = 0.5 * float(self.m_mul) ** restart * (1.0 + math.cos(math.pi * frac))
        return float(self.initial_learning_rate) * ((1.0 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self.t_mul,
                "m_mul": self.m_mul, "alpha": self.alpha, "name": self.name}


class OneCycle(LearningRateSchedule):
    """The one-cycle policy with PyTorch's ``OneCycleLR`` arithmetic: from
    ``max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start`` of
    ``total_steps``, then down to ``max_lr / div_factor / final_div_factor``
    (with ``three_phase=True``: up, back down to the initial rate, then to the
    minimum).  ``anneal_strategy`` is ``"cos"`` or ``"linear"``.  Steps run
    from 0 to ``total_steps``; a later step raises, as in PyTorch.  Only the
    learning rate is scheduled; ``pf.optim.lr_scheduler.OneCycleLR`` also
    cycles the momentum."""

    def __init__(self, max_lr, total_steps, pct_start=0.3, anneal_strategy="cos",
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, name="OneCycle"):
        if not isinstance(total_steps, int) or total_steps <= 0:
            raise ValueError(f"OneCycle: total_steps must be a positive integer; got {total_steps!r}")
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"OneCycle: pct_start must be between 0 and 1; got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("OneCycle: anneal_strategy must be 'cos' or 'linear'; got "
                             f"{anneal_strategy!r}")
        self.max_lr = max_lr
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.anneal_strategy = anneal_strategy
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.three_phase = three_phase
        self.name = name

    def phases(self):
        """[(end_step, start_lr, end_lr), ...] as OneCycleLR lays them out."""
        top = float(self.max_lr)
        initial = top / self.div_factor
        low = initial / self.final_div_factor
        n = self.total_steps
        up = float(self.pct_start * n) - 1
        if self.three_phase:
            return [(up, initial, top), (float(2 * self.pct_start * n) - 2, top, initial),
                    (n - 1, initial, low)]
        return [(up, initial, top), (n - 1, top, low)]

    def anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def __call__(self, step):
        s = _step(step)
        if s > self.total_steps:
            raise ValueError(f"OneCycle: step {step} is past total_steps={self.total_steps}; "
                             "make total_steps cover the whole run")
        phases = self.phases()
        begin = 0.0
        for i, (end_step, start, end) in enumerate(phases):
            if s <= end_step or i == len(phases) - 1:
                return self.anneal(start, end, (s - begin) / (end_step - begin))
            begin = end_step
        raise AssertionError("unreachable")

    def get_config(self):
        return {"max_lr": self.max_lr, "total_steps": self.total_steps,
                "pct_start": self.pct_start, "anneal_strategy": self.anneal_strategy,
                "div_factor": self.div_factor, "final_div_factor": self.final_div_factor,
                "three_phase": self.three_phase, "name": self.name}


_BUILTIN = {c.__name__: c for c in (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay,
                                     InverseTimeDecay, CosineDecay, CosineDecayRestarts,
                                     OneCycle)}


def serialize(schedule):
    """A schedule as ``{"class_name": ..., "config": {...}}`` (JSON-friendly)."""
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(f"serialize: expected a LearningRateSchedule; got {type(schedule).__name__}")
    return {"module": "pyframe.optim.schedules", "class_name": type(schedule).__name__,
            "config": schedule.get_config()}


def deserialize(config, custom_objects=None):
    """The schedule a ``serialize`` dict describes; ``custom_objects`` maps the
    names of user-defined schedule classes to the classes."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError("deserialize: expected a dict with 'class_name' and 'config'; got "
                         f"{config!r}")
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or _BUILTIN.get(name)
    if cls is None:
        raise ValueError(f"deserialize: unknown schedule {name!r}; known: {sorted(_BUILTIN)} "
                         "(pass custom_objects={name: cls} for your own)")
    return cls.from_config(dict(config.get("config", {})))


def get(identifier):
    """A schedule from a schedule, or from a ``serialize`` dict."""
    if isinstance(identifier, LearningRateSchedule):
        return identifier
    return deserialize(identifier)
