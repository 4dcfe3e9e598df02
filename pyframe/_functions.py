"""Module-level forms of the tensor view methods (NumPy style: pf.reshape(x, shape)),
type promotion over values, and seeding.  Each is one call into C."""
import os

from . import _C
from ._C import asarray


def reshape(x, *shape):
    """pf.reshape(x, shape): see Tensor.reshape."""
    return asarray(x).reshape(*shape)


def transpose(x, *axes):
    """pf.transpose(x, axes=None): reverse or permute axes (NumPy); two axes swap them."""
    return asarray(x).transpose(*axes)


def permute(x, *axes):
    return asarray(x).permute(*axes)


def swapaxes(x, axis1, axis2):
    return asarray(x).swapaxes(axis1, axis2)


def squeeze(x, axis=None):
    return asarray(x).squeeze(axis)


def expand_dims(x, axis):
    return asarray(x).expand_dims(axis)


def unsqueeze(x, dim):
    return asarray(x).unsqueeze(dim)


def broadcast_to(x, shape):
    return asarray(x).broadcast_to(shape)


def flatten(x, start_dim=0, end_dim=-1):
    return asarray(x).flatten(start_dim, end_dim)


_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}
_DEFAULT_BY_RANK = {0: _C.bool, 1: _C.int64, 2: _C.float32}


def result_type(*args):
    """The dtype an operation on args produces.

    Tensors and dtypes take part fully; Python scalars are "weak" (NEP 50, as
    PyTorch): they only raise the kind, so ``int8 tensor + 1`` stays int8 and
    ``float16 tensor + 1.0`` stays float16, while ``int tensor * 2.5`` is float32.
    """
    if not args:
        raise ValueError("pf.result_type: needs at least one tensor, dtype or scalar")
    strong = None
    weak_rank = -1
    for a in args:
        if isinstance(a, _C.Tensor):
            d = a.dtype
        elif isinstance(a, (int, float)):   # bool is an int
            rank = 0 if isinstance(a, type(True)) else (1 if isinstance(a, int) else 2)
            weak_rank = max(weak_rank, rank)
            continue
        else:
            try:
                d = _C.dtype(a)
            except TypeError as e:
                raise TypeError("pf.result_type: %s" % str(e).replace("pf.dtype: ", "")) from None
        strong = d if strong is None else _C.promote_types(strong, d)
    if strong is None:
        return _DEFAULT_BY_RANK[weak_rank]
    if weak_rank > _KIND_RANK[strong.kind]:
        return _DEFAULT_BY_RANK[weak_rank]
    return strong


def seed():
    """Seed the generator from the operating system's entropy and return the seed."""
    s = int.from_bytes(os.urandom(8), "little")
    _C.manual_seed(s)
    return s
