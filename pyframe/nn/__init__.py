"""pyframe.nn: modules, containers and (as they land) layers, losses and the
functional API.  PyTorch-named modules keep PyTorch's parameter names and
shapes, so a converted PyTorch state_dict loads with load_state_dict."""
from .parameter import Parameter, Buffer
from .module import Module, RemovableHandle
from .containers import Sequential, ModuleList, ModuleDict

__all__ = ["Parameter", "Buffer", "Module", "RemovableHandle", "Sequential", "ModuleList",
           "ModuleDict"]
