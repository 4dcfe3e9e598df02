"""Custom differentiable ops in Python, and gradient checkpointing."""
from .. import _C
from .grad_mode import no_grad, enable_grad


class Function:
    """A differentiable op written in Python: subclass with static ``forward``
    and ``backward`` and call ``apply``.

        class Cube(pf.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x * x

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 3 * x * x * g

        y = Cube.apply(x)

    ``ctx`` is the graph node itself (``y.grad_fn``): ``save_for_backward``
    keeps tensors with their versions (changing one in place afterwards makes
    backward raise), ``mark_non_differentiable`` marks outputs that get no
    gradient, ``needs_input_grad`` says which inputs want one, and any other
    attribute can be set on it.  ``forward`` runs without recording;
    ``backward`` returns one gradient (or None) per argument of ``forward``
    and is itself recorded under ``create_graph=True``.
    """

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError("a pf.autograd.Function subclass must define forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("a pf.autograd.Function subclass must define "
                                  "backward(ctx, *grads)")

    def __init__(self, *args, **kwargs):
        raise TypeError("pf.autograd.Function is not instantiated: call %s.apply(...)"
                        % type(self).__name__)

    @classmethod
    def apply(cls, *args):
        if cls.forward is Function.forward or cls.backward is Function.backward:
            raise TypeError("%s.apply: the subclass must define both forward and backward "
                            "as static methods" % cls.__name__)
        ctx = _C._function_ctx(cls, args)
        with no_grad():
            out = cls.forward(ctx, *args)
        if not (isinstance(out, _C.Tensor) or (isinstance(out, tuple) and out
                                                 and any(isinstance(o, _C.Tensor) for o in out))):
            raise TypeError("%s.forward must return a tensor or a tuple holding tensors; "
                            "got %s" % (cls.__name__, type(out).__name__))
        d = ctx.__dict__
        saved = d.pop("_pf_saved", ())
        nondiff = d.pop("_pf_nondiff", ())
        if not _C.is_grad_enabled():
            return out
        return _C._function_finish(ctx, out, saved, nondiff)


class _Checkpoint(Function):
    @staticmethod
    def forward(ctx, fn, preserve_rng_state, kwargs, anchor, *args):
        ctx.fn = fn
        ctx.kwargs = kwargs
        ctx.rng = _C.get_rng_state() if preserve_rng_state else None
        tensors = tuple(a for a in args if isinstance(a, _C.Tensor))
        ctx.save_for_backward(*tensors)
        ctx.layout = [isinstance(a, _C.Tensor) for a in args]
        ctx.others = [a for a in args if not isinstance(a, _C.Tensor)]
        ctx.wants = [isinstance(a, _C.Tensor) and a.requires_grad for a in args]
        out = fn(*args, **kwargs)
        ctx.single = isinstance(out, _C.Tensor)
        return out

    @staticmethod
    def backward(ctx, *grads):
        saved = iter(ctx.saved_tensors)
        others = iter(ctx.others)
        args = []
        for is_tensor, wants in zip(ctx.layout, ctx.wants):
            if is_tensor:
                t = next(saved).detach()
                if wants:
                    t.requires_grad_(True)
                args.append(t)
            else:
                args.append(next(others))
        # recompute with the random state of the forward pass (dropout masks
        # come out the same), then put the caller's state back
        now = _C.get_rng_state() if ctx.rng is not None else None
        if ctx.rng is not None:
            _C.set_rng_state(ctx.rng)
        try:
            with enable_grad():
                out = ctx.fn(*args, **ctx.kwargs)
        finally:
            if now is not None:
                _C.set_rng_state(now)
        outs = (out,) if isinstance(out, _C.Tensor) else tuple(out)
        roots, root_grads = [], []
        for o, g in zip(outs, grads):
            if isinstance(o, _C.Tensor) and o.requires_grad and g is not None:
                roots.append(o)
                root_grads.append(g)
        if roots:
            _C._backward(roots, root_grads)
        return (None, None, None, None) + tuple(
            a.grad if (isinstance(a, _C.Tensor) and a.requires_grad) else None for a in args)


def checkpoint(fn, *args, preserve_rng_state=True, **kwargs):
    """``checkpoint(fn, *args)``: run ``fn(*args)`` without keeping its
    intermediate values, and run it again during backward to get them.

    Trades compute for memory on deep models.  The random state of the
    forward pass is replayed in the recomputation (``preserve_rng_state``),
    so dropout draws the same masks.  Gradients reach ``fn``'s arguments and
    the parameters it uses through ``backward()``; ``pf.grad`` with respect
    to tensors used only inside ``fn`` is not supported (their paths are
    recomputed only when ``backward`` accumulates into ``.grad``).
    """
    if not callable(fn):
        raise TypeError("checkpoint: the first argument must be the function to run; got %s"
                        % type(fn).__name__)
    if not _C.is_grad_enabled():
        return fn(*args, **kwargs)
    # an anchor that requires grad gives the node an edge even when no
    # argument requires grad (the parameters inside fn still want theirs)
    anchor = _C.zeros(()).requires_grad_(True)
    return _Checkpoint.apply(fn, preserve_rng_state, kwargs, anchor, *args)
