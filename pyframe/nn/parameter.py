"""nn.Parameter: a leaf tensor that a Module registers as one of its weights."""
from .. import _C


class Parameter(_C.Tensor):
    """A tensor that is a module's weight: assigning one to a Module attribute
    registers it (``parameters()``, ``state_dict()``).  It shares the memory of
    the tensor it wraps and requires grad by default.  Ops on it return plain
    tensors.

        self.weight = pf.nn.Parameter(pf.randn(out, inp))
    """

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = _C.empty(0)
        elif not isinstance(data, _C.Tensor):
            data = _C.tensor(data)
        return _C._make_subclass(cls, data.detach(), bool(requires_grad))

    def __init__(self, data=None, requires_grad=True):
        pass

    def __repr__(self):
        return "Parameter containing:\n" + _C.Tensor.__repr__(self)

    def __reduce__(self):
        raise TypeError("pf.nn.Parameter is not pickled (pyframe never pickles weights); "
                        "use module.state_dict() with pf.save / safetensors")


class Buffer:
    """Marks a tensor as a module buffer when assigned (``self.running_mean = Buffer(t)``)."""

    def __init__(self, data, persistent=True):
        self.data = data if isinstance(data, _C.Tensor) else _C.tensor(data)
        self.persistent = persistent
