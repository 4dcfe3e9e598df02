"""Mixed precision the PyTorch way: ``pf.autocast`` and ``pf.amp.GradScaler``.

Inside ``with pf.autocast("cpu")`` (bfloat16 by default on the CPU, float16
on CUDA) the matrix products cast float32 arguments to the 16-bit dtype and
the ops that need float32's range (softmax, losses, normalisations) cast
16-bit arguments up; ``pf.amp.autocast_ops()`` lists both.  The weights stay
float32 and their gradients arrive in float32.

float16's narrow range makes small gradients vanish: ``GradScaler`` multiplies
the loss by a large factor before ``backward()``, divides the gradients back
inside the optimizer's fused update, skips the step when a gradient is
infinite or NaN, and adapts the factor (halve on overflow, double after
``growth_interval`` clean steps).  bfloat16 has float32's range and needs no
scaler.
"""
import functools

from . import _C

__all__ = ["autocast", "GradScaler", "autocast_ops", "is_autocast_enabled",
           "get_autocast_dtype"]

_DEFAULT_DTYPE = {"cpu": "bfloat16", "cuda": "float16"}


def _device_type(device, who):
    """'cpu' or 'cuda' from a device string ('cuda:1' is 'cuda') or a pf.device."""
    s = str(device) if not isinstance(device, str) else device
    kind = s.split(":", 1)[0]
    if kind not in _DEFAULT_DTYPE:
        raise ValueError(f"{who}: device_type must be 'cpu' or 'cuda' (or 'cuda:N'); got "
                         f"{device!r}")
    return kind


class autocast:
    """Runs the ops inside it in mixed precision on one device type.

    ``device_type`` is "cpu" or "cuda"; ``dtype`` is ``pf.bfloat16`` or
    ``pf.float16`` (default: bfloat16 on the CPU, float16 on CUDA);
    ``enabled=False`` turns it off for the block (inside an enabled one, as
    PyTorch allows).  Contexts nest and restore what was there before; it
    also works as a decorator.  The state is process-wide, like
    ``pf.no_grad``.
    """

    def __init__(self, device_type="cuda", dtype=None, enabled=True, cache_enabled=None):
        self.device_type = _device_type(device_type, "autocast")
        if dtype is None:
            dtype = _DEFAULT_DTYPE[self.device_type]
        d = _C.dtype(dtype)
        if d not in (_C.bfloat16, _C.float16):
            raise ValueError(f"autocast: dtype must be pf.bfloat16 or pf.float16; got {d} "
                             "(leave autocast off to compute in float32)")
        if not isinstance(enabled, bool):
            raise TypeError(f"autocast: enabled must be a bool; got {enabled!r}")
        self.fast_dtype = d
        self.enabled = enabled
        self._saved = []

    def __enter__(self):
        prev = _C._autocast_set(self.device_type, self.fast_dtype if self.enabled else None)
        self._saved.append(prev)
        return self

    def __exit__(self, *exc):
        _C._autocast_set(self.device_type, self._saved.pop())
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self.enabled):
                return fn(*args, **kwargs)
        return wrapper

    def __repr__(self):
        return (f"autocast(device_type={self.device_type!r}, dtype={self.fast_dtype}, "
                f"enabled={self.enabled})")


def is_autocast_enabled(device_type="cuda"):
    """Whether autocast is on for this device type."""
    return _C._autocast_get(_device_type(device_type, "is_autocast_enabled")) is not None


def get_autocast_dtype(device_type="cuda"):
    """The dtype autocast uses on this device type now, or None when it is off."""
    return _C._autocast_get(_device_type(device_type, "get_autocast_dtype"))


def autocast_ops():
    """{"lower": ops run in the 16-bit dtype, "float32": ops run in float32}."""
    return _C._autocast_ops()


_READY, _UNSCALED, _STEPPED = 0, 1, 2


def _number(value, who, what, low, high=float("inf"), open_low=True):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
        (value > low if open_low else value >= low) and value < high
    if not ok:
        raise ValueError(f"{who}: {what} must be a number in "
                         f"{'(' if open_low else '['}{low}, {high}); got {value!r}")
    return float(value)


class GradScaler:
    """Dynamic loss scaling for float16 training (PyTorch's API).

    Each step::

        with pf.autocast("cuda"):
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)      # skipped when a gradient is inf or NaN
        scaler.update()

    ``unscale_(optimizer)`` before ``step`` gives true gradients (to clip
    them); otherwise the division is folded into the optimizer's fused update
    (its ``loss_scale_factor``), with no extra pass over the gradients.
    """

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0,
                 backoff_factor=0.5, growth_interval=2000, enabled=True):
        who = "GradScaler"
        if device is not None:
            _device_type(device, who)
        self.device = device
        self._scale = _number(init_scale, who, "init_scale", 0.0)
        self._growth_factor = _number(growth_factor, who, "growth_factor", 1.0)
        self._backoff_factor = _number(backoff_factor, who, "backoff_factor", 0.0, 1.0)
        if not isinstance(growth_interval, int) or isinstance(growth_interval, bool) or \
                growth_interval < 1:
            raise ValueError(f"{who}: growth_interval must be an int >= 1; got "
                             f"{growth_interval!r}")
        self._growth_interval = growth_interval
        self._enabled = bool(enabled)
        self._growth_tracker = 0
        self._per_optimizer = {}    # id(optimizer) -> [stage, found_inf]

    # ------------------------------------------------------------------ state

    def is_enabled(self):
        return self._enabled

    def get_scale(self):
        """The current scale factor (1.0 when disabled)."""
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self):
        return self._growth_factor

    def get_backoff_factor(self):
        return self._backoff_factor

    def get_growth_interval(self):
        return self._growth_interval

    def state_dict(self):
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict):
        if not self._enabled:
            return
        if not isinstance(state_dict, dict) or "scale" not in state_dict:
            raise ValueError("GradScaler.load_state_dict: expected the dict state_dict() "
                             f"returns, with a 'scale' entry; got {state_dict!r:.200}")
        self._scale = _number(state_dict["scale"], "GradScaler.load_state_dict", "scale", 0.0)
        self._growth_factor = float(state_dict.get("growth_factor", self._growth_factor))
        self._backoff_factor = float(state_dict.get("backoff_factor", self._backoff_factor))
        self._growth_interval = int(state_dict.get("growth_interval", self._growth_interval))
        self._growth_tracker = int(state_dict.get("_growth_tracker", 0))

    # ------------------------------------------------------------------ steps

    def scale(self, outputs):
        """outputs times the scale: a tensor, or lists/tuples/dicts of them."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, _C.Tensor):
            if not outputs.dtype.is_floating_point:
                raise TypeError(f"GradScaler.scale: expected a floating-point tensor (the "
                                f"loss); got dtype {outputs.dtype}")
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        if isinstance(outputs, dict):
            return {k: self.scale(v) for k, v in outputs.items()}
        raise TypeError(f"GradScaler.scale: expected a tensor or a list/tuple/dict of tensors; "
                        f"got {type(outputs).__name__}")

    def _record(self, optimizer):
        return self._per_optimizer.setdefault(id(optimizer), [_READY, False, optimizer])

    @staticmethod
    def _grads(optimizer):
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"GradScaler: expected a pyframe optimizer; got "
                            f"{type(optimizer).__name__}")
        return [p.grad for group in optimizer.param_groups for p in group["params"]
                if p.grad is not None]

    @staticmethod
    def _non_finite(grads):
        """One pass over every gradient: is any element inf or NaN?"""
        if not grads:
            return False
        norm = _C._optim_grad_norm(grads)
        return not (norm == norm and norm != float("inf"))

    def unscale_(self, optimizer):
        """Divide optimizer's gradients by the scale now (before clipping them)."""
        if not self._enabled:
            return
        rec = self._record(optimizer)
        if rec[0] == _UNSCALED:
            raise RuntimeError("GradScaler.unscale_: already called for this optimizer since "
                               "the last update(); call it once per step")
        if rec[0] == _STEPPED:
            raise RuntimeError("GradScaler.unscale_: called after step(); unscale before the "
                               "step, then call update()")
        grads = self._grads(optimizer)
        inv = 1.0 / self._scale
        from .autograd import no_grad
        with no_grad():
            for g in grads:
                g.mul_(inv)
        rec[1] = self._non_finite(grads)
        rec[0] = _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """optimizer.step(...) unless a gradient is inf or NaN; returns its result or None."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        rec = self._record(optimizer)
        if rec[0] == _STEPPED:
            raise RuntimeError("GradScaler.step: already called for this optimizer since the "
                               "last update(); call update() after each step")
        if rec[0] == _READY:
            rec[1] = self._non_finite(self._grads(optimizer))
        if rec[1]:
            rec[0] = _STEPPED
            return None
        if rec[0] == _UNSCALED:
            result = optimizer.step(*args, **kwargs)
        else:
            # fold 1/scale into the fused update instead of a pass over the gradients
            saved = optimizer.loss_scale_factor
            optimizer.loss_scale_factor = self._scale * (saved or 1.0)
            try:
                result = optimizer.step(*args, **kwargs)
            finally:
                optimizer.loss_scale_factor = saved
        rec[0] = _STEPPED
        return result

    def update(self, new_scale=None):
        """Adapt the scale after the step(s): backoff on overflow, growth after a clean run."""
        if not self._enabled:
            return
        if new_scale is not None:
            if isinstance(new_scale, _C.Tensor):
                new_scale = float(new_scale.item())
            self._scale = _number(new_scale, "GradScaler.update", "new_scale", 0.0)
        else:
            stepped = [r for r in self._per_optimizer.values() if r[0] != _READY]
            if not stepped:
                raise RuntimeError("GradScaler.update: no step(optimizer) since the last "
                                   "update(); call scaler.step(optimizer) first")
            if any(r[1] for r in stepped):
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_optimizer.clear()

    def __repr__(self):
        return (f"GradScaler(scale={self.get_scale()}, growth_interval={self._growth_interval}, "
                f"enabled={self._enabled})")
