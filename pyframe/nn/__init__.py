"""pyframe.nn: modules, containers and (as they land) layers, losses and the
functional API.  PyTorch-named modules keep PyTorch's parameter names and
shapes, so a converted PyTorch state_dict loads with load_state_dict."""
from .parameter import Parameter, Buffer
from .module import Module, RemovableHandle
from .containers import Sequential, ModuleList, ModuleDict
from .basic import (Identity, Linear, Flatten, Unflatten, Embedding, ReLU, ReLU6, LeakyReLU, ELU,
                    SELU, GELU, SiLU, Sigmoid, Tanh, Softplus, Softmax, LogSoftmax)
from .rnn import RNN, LSTM, GRU

__all__ = ["Parameter", "Buffer", "Module", "RemovableHandle", "Sequential", "ModuleList",
           "ModuleDict", "Identity", "Linear", "Flatten", "Unflatten", "Embedding", "ReLU",
           "ReLU6", "LeakyReLU", "ELU", "SELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Softplus",
           "Softmax", "LogSoftmax", "RNN", "LSTM", "GRU"]
