"""pyframe: tensors, kernels and autograd in C, with a Keras-like Python layer.

    import pyframe as pf
    x = pf.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = np.asarray(x)            # zero-copy
"""
from ._loader import load_extension

_C = load_extension()
from ._C import (  # noqa: F401
    Tensor, dtype, device, promote_types, MAX_DIMS,
    bool, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64,
    tensor, asarray, from_numpy, from_dlpack,
    zeros, ones, empty, full, zeros_like, ones_like, empty_like, full_like,
    arange, linspace, eye,
    rand, randn, randint, normal, uniform, manual_seed, get_rng_state, set_rng_state,
    set_num_threads, get_num_threads, memory_stats, empty_cache,
    set_float32_matmul_precision, get_float32_matmul_precision,
)
# every row of the op table (csrc/ops.def) and its aliases: pf.add, pf.exp, pf.sub ...
for _row in _C._op_table():
    globals()[_row["name"]] = getattr(_C, _row["name"])
for _alias in _C._op_aliases():
    globals()[_alias] = getattr(_C, _alias)
del _row, _alias

from ._config import show_config, config  # noqa: F401,E402
from . import autograd  # noqa: E402
from .autograd import (  # noqa: F401,E402
    no_grad, enable_grad, inference_mode, set_grad_enabled, is_grad_enabled, grad, checkpoint,
)
from ._functions import (  # noqa: F401
    reshape, transpose, permute, swapaxes, squeeze, expand_dims, unsqueeze, broadcast_to,
    flatten, result_type, seed,
)


def _pandas_to_numpy(obj, op):
    # imported on first use: `import pyframe` loads neither pandas nor NumPy
    from ._pandas import to_numpy
    return to_numpy(obj, op)


_C._set_pandas_hook(_pandas_to_numpy)


def _tensor_html(t):
    # imported on first use: Jupyter's rich view needs NumPy
    from ._display import tensor_html
    return tensor_html(t)


_C._set_html_hook(_tensor_html)

__version__ = _C._build_info()["version"]

# PyTorch-style aliases that conflict with nothing
half = float16
double = float64
long = int64


# The model layer loads on first use (pf.nn, pf.layers, pf.optim, ...), so that
# `import pyframe` costs the extension and autograd's few Python lines only.
# pf.cuda too, and it loads the CUDA library only when one of its functions needs it.
_LAZY_SUBMODULES = ("nn", "layers", "losses", "initializers", "activations", "regularizers",
                    "data", "optim", "optimizers", "metrics", "saving", "callbacks", "cuda", "amp",
                    "mixed_precision")


def __getattr__(name):
    import importlib
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module("." + name, __name__)
        globals()[name] = module
        return module
    if name == "autocast":
        from .amp import autocast
        globals()[name] = autocast
        return autocast
    if name == "Sequential":
        from .nn import Sequential
        globals()[name] = Sequential
        return Sequential
    if name == "Model":
        from .training.model import Model
        globals()[name] = Model
        return Model
    if name == "load_model":
        from .io import load_model
        globals()[name] = load_model
        return load_model
    raise AttributeError(f"module 'pyframe' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES) | {"Sequential", "Model", "load_model", "autocast"})
