"""Finite-difference checks of gradients: gradcheck and gradgradcheck.

Both compare the Jacobian autograd computes with central differences in
float64, entry by entry: |analytic - numerical| <= atol + rtol |numerical|.
NumPy is imported on first use only (``import pyframe`` stays light)."""
from .. import _C


class GradcheckError(RuntimeError):
    """Raised by gradcheck / gradgradcheck when the gradients disagree."""


def _as_tuple(x):
    if isinstance(x, tuple):
        return x
    if isinstance(x, list):
        return tuple(x)
    return (x,)


def _differentiable(inputs):
    return [i for i, t in enumerate(inputs) if isinstance(t, _C.Tensor) and t.requires_grad]


def _check_inputs(inputs, who):
    wanted = _differentiable(inputs)
    if not wanted:
        raise ValueError("%s: no input requires grad; pass at least one tensor created with "
                         "requires_grad=True" % who)
    for i in wanted:
        if inputs[i].dtype != _C.float64:
            raise ValueError("%s: input %d is %s; finite differences need float64 to be "
                             "accurate (pass x.astype(pf.float64) with requires_grad=True)"
                             % (who, i, inputs[i].dtype))
        if inputs[i].grad_fn is not None:
            raise ValueError("%s: input %d is not a leaf (it has grad_fn %s); pass leaf tensors"
                             % (who, i, inputs[i].grad_fn))
    return wanted


def _outputs(func, inputs, who):
    out = _as_tuple(func(*inputs))
    for k, o in enumerate(out):
        if not isinstance(o, _C.Tensor):
            raise TypeError("%s: the function returned %s as output %d; it must return "
                            "tensors" % (who, type(o).__name__, k))
    return out


def _numerical(func, inputs, wanted, eps, who):
    """J[k][i]: (numel(output k), numel(input i)) by central differences."""
    import numpy as np
    base = _outputs(func, inputs, who)
    sizes = [o.size for o in base]
    jac = [[np.zeros((n, inputs[i].size)) for i in wanted] for n in sizes]
    for col, i in enumerate(wanted):
        arr = np.asarray(inputs[i])    # the tensor's own memory: perturb in place
        if not arr.flags.writeable:
            raise ValueError("%s: input %d is read-only, so it cannot be perturbed; pass a "
                             "writable copy" % (who, i))
        for j, idx in enumerate(np.ndindex(arr.shape)):
            orig = arr[idx].item()
            arr[idx] = orig + eps
            # evaluated with grad mode as it is: the function may itself use
            # autograd (gradgradcheck differentiates a vector-Jacobian product)
            plus = [np.array(o, dtype=np.float64).ravel() for o in _outputs(func, inputs, who)]
            arr[idx] = orig - eps
            minus = [np.array(o, dtype=np.float64).ravel() for o in _outputs(func, inputs, who)]
            arr[idx] = orig
            for k in range(len(sizes)):
                jac[k][col][:, j] = (plus[k] - minus[k]) / (2 * eps)
    return jac


def _analytic(func, inputs, wanted, who):
    """The same Jacobians, one backward pass per output element."""
    import numpy as np
    outs = _outputs(func, inputs, who)
    targets = [inputs[i] for i in wanted]
    jac = [[np.zeros((o.size, inputs[i].size)) for i in wanted] for o in outs]
    for k, o in enumerate(outs):
        if not o.requires_grad or not o.dtype.is_floating_point:
            continue
        for r in range(o.size):
            seed = np.zeros(o.size, dtype=np.float64)
            seed[r] = 1.0
            g = _C.tensor(seed.reshape(o.shape), dtype=o.dtype)
            grads = _C._grad([o], targets, [g], True, False, True)
            for col, gi in enumerate(grads):
                if gi is None:
                    continue
                if gi.shape != targets[col].shape:
                    raise GradcheckError(
                        "%s: the gradient for input %d has shape %s but the input has shape %s"
                        % (who, wanted[col], gi.shape, targets[col].shape))
                jac[k][col][r, :] = np.array(gi, dtype=np.float64).ravel()
    return jac


def _compare(ana, num, wanted, atol, rtol, who, raise_exception):
    import numpy as np
    for k in range(len(ana)):
        for col, i in enumerate(wanted):
            a, n = ana[k][col], num[k][col]
            bad = ~(np.abs(a - n) <= atol + rtol * np.abs(n))
            if bad.any():
                r, c = np.argwhere(bad)[0]
                msg = ("%s: the gradient of output %d with respect to input %d disagrees with "
                       "finite differences at output element %d, input element %d: analytic "
                       "%.10g, numerical %.10g (%d of %d entries differ; atol=%g, rtol=%g)\n"
                       "analytic:\n%s\nnumerical:\n%s"
                       % (who, k, i, r, c, a[r, c], n[r, c], int(bad.sum()), bad.size,
                          atol, rtol, a, n))
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Check the gradients of ``func(*inputs)`` against central differences.

    ``inputs``: a tensor or a tuple of tensors (and other values passed
    through); those with ``requires_grad=True`` must be float64 leaves.
    Returns True, or raises GradcheckError naming the output, the input and
    the first entry that disagrees (returns False if ``raise_exception`` is
    False)."""
    inputs = _as_tuple(inputs)
    wanted = _check_inputs(inputs, "gradcheck")
    num = _numerical(func, inputs, wanted, eps, "gradcheck")
    ana = _analytic(func, inputs, wanted, "gradcheck")
    return _compare(ana, num, wanted, atol, rtol, "gradcheck", raise_exception)


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True, seed=0):
    """Check second derivatives: gradcheck of the map (inputs, v) -> the
    vector-Jacobian product v^T J computed with ``create_graph=True``.

    ``grad_outputs`` (the v's) default to random float64 tensors drawn from a
    fixed seed."""
    import numpy as np
    inputs = _as_tuple(inputs)
    wanted = _check_inputs(inputs, "gradgradcheck")
    outs = _outputs(func, inputs, "gradgradcheck")
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        grad_outputs = tuple(_C.tensor(rng.standard_normal(o.shape), dtype=_C.float64,
                                       requires_grad=True) for o in outs)
    grad_outputs = _as_tuple(grad_outputs)
    if len(grad_outputs) != len(outs):
        raise ValueError("gradgradcheck: %d grad_outputs for %d outputs"
                         % (len(grad_outputs), len(outs)))
    n = len(inputs)

    def vjp(*args):
        ins, vs = args[:n], args[n:]
        o = _outputs(func, ins, "gradgradcheck")
        pairs = [(oo, v) for oo, v in zip(o, vs) if oo.requires_grad]
        targets = [ins[i] for i in wanted]
        if not pairs:
            return tuple(_C.zeros_like(t) for t in targets)
        g = _C._grad([p[0] for p in pairs], targets, [p[1] for p in pairs], True, True, True)
        return tuple(_C.zeros_like(t) if gi is None else gi for gi, t in zip(g, targets))

    return gradcheck(vjp, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
