"""Grad mode: whether ops record the autograd graph (per thread, as in PyTorch).

Each class works as a context manager and as a decorator (with or without
parentheses, on functions and generator functions alike)."""
import functools

from .. import _C


class _GradModeBase:
    _enabled = None      # the mode inside the block

    def __new__(cls, func=None, *args, **kwargs):
        self = super().__new__(cls)
        if func is not None and callable(func) and cls._enabled is not None:
            # used bare as a decorator: @pf.no_grad
            self.__init__()
            return self(func)
        return self

    def __enter__(self):
        self._prev = _C._set_grad_enabled(self._enabled)
        return self

    def __exit__(self, *exc):
        _C._set_grad_enabled(self._prev)
        return False

    def clone(self):
        return type(self)()

    def __call__(self, func):
        # CO_GENERATOR, read directly: importing inspect would cost `import pyframe` 7 ms
        if getattr(getattr(func, "__code__", None), "co_flags", 0) & 0x20:
            @functools.wraps(func)
            def gen_wrapper(*args, **kwargs):
                gen = func(*args, **kwargs)
                # the mode holds while the generator runs, not while the caller does
                with self.clone():
                    value = next(gen)
                while True:
                    try:
                        sent = yield value
                    except GeneratorExit:
                        gen.close()
                        raise
                    except BaseException as e:
                        with self.clone():
                            value = gen.throw(e)
                    else:
                        with self.clone():
                            try:
                                value = gen.send(sent)
                            except StopIteration as stop:
                                return stop.value
            return gen_wrapper

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.clone():
                return func(*args, **kwargs)
        return wrapper


class no_grad(_GradModeBase):
    """Run without recording the graph: results do not require grad.

        with pf.no_grad():
            w -= lr * w.grad          # an update autograd must not see

    Also a decorator: ``@pf.no_grad()`` or ``@pf.no_grad``."""
    _enabled = False


class enable_grad(_GradModeBase):
    """Record the graph again inside a ``no_grad`` block (or decorate a function)."""
    _enabled = True


class inference_mode(_GradModeBase):
    """``inference_mode(mode=True)``: like ``no_grad`` for evaluation and serving.

    pyframe's recording costs nothing when no input requires grad, so this is
    the same switch as ``no_grad``; ``inference_mode(False)`` leaves the mode
    as it is."""

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, type(True)):
            self = super().__new__(cls)
            self.__init__()
            return self(mode)
        return super().__new__(cls)

    def __init__(self, mode=True):
        self.mode = bool(mode)

    def __enter__(self):
        self._prev = _C.is_grad_enabled()
        if self.mode:
            _C._set_grad_enabled(False)
        return self

    def clone(self):
        return type(self)(self.mode)


class _scoped(_GradModeBase):
    """The mode `mode` for a block (what a decorating set_grad_enabled runs under)."""

    def __new__(cls, mode):
        return object.__new__(cls)

    def __init__(self, mode):
        self._enabled = mode

    def clone(self):
        return _scoped(self._enabled)


class set_grad_enabled(_GradModeBase):
    """``set_grad_enabled(mode)``: switch recording on or off.

    Takes effect at once when called as a function (``pf.set_grad_enabled(False)``);
    with ``with`` the previous mode comes back at the end of the block; as a
    decorator it applies while the function runs."""

    def __new__(cls, mode):
        return object.__new__(cls)

    def __init__(self, mode):
        if not isinstance(mode, type(True)):
            raise TypeError("set_grad_enabled: mode must be True or False; got %r" % (mode,))
        self.mode = mode
        self._prev = _C._set_grad_enabled(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _C._set_grad_enabled(self._prev)
        return False

    def clone(self):
        return _scoped(self.mode)

    def __call__(self, func):
        # decorating must not leave the mode switched
        _C._set_grad_enabled(self._prev)
        return _scoped(self.mode)(func)


def is_grad_enabled():
    """True when ops record the autograd graph in this thread."""
    return _C.is_grad_enabled()
