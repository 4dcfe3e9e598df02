"""pyframe.autograd: reverse-mode differentiation.

The graph, the engine and the backward rules are in C (csrc/autograd.c,
csrc/backward*.c); this package holds the Python-facing pieces: grad mode,
``backward`` / ``grad``, custom ``Function``s, checkpointing and the
finite-difference checks."""
from .. import _C
from .grad_mode import no_grad, enable_grad, inference_mode, set_grad_enabled, is_grad_enabled
from .function import Function, checkpoint
from .gradcheck import gradcheck, gradgradcheck, GradcheckError

Node = _C.Node
RemovableHandle = _C.RemovableHandle


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of ``tensors`` (with ``grad_tensors`` as the
    incoming gradients; implied 1 for one-element tensors) into the ``.grad``
    of the leaves, or of ``inputs`` only when given."""
    return _C._backward(tensors, grad_tensors, retain_graph, create_graph, inputs)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """The gradients of ``outputs`` with respect to ``inputs``, as a tuple,
    without touching any ``.grad``.  ``create_graph=True`` records the
    computation so that the result can be differentiated again (Hessian-vector
    products, gradient penalties)."""
    return _C._grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused)


__all__ = ["no_grad", "enable_grad", "inference_mode", "set_grad_enabled", "is_grad_enabled",
           "Function", "checkpoint", "gradcheck", "gradgradcheck", "GradcheckError", "backward",
           "grad", "Node", "RemovableHandle"]
