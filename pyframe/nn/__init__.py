"""pyframe.nn: modules, containers and (as they land) layers, losses and the
functional API.  PyTorch-named modules keep PyTorch's parameter names and
shapes, so a converted PyTorch state_dict loads with load_state_dict."""
from .parameter import Parameter, Buffer
from .module import Module, RemovableHandle
from .containers import Sequential, ModuleList, ModuleDict
from .basic import (Identity, Linear, Flatten, Unflatten, Embedding, ReLU, ReLU6, LeakyReLU, ELU,
                    SELU, GELU, SiLU, Sigmoid, Tanh, Softplus, Softmax, LogSoftmax)
from .rnn import RNN, LSTM, GRU
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm, RMSNorm, Dropout
from .loss import (CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, HuberLoss, SmoothL1Loss, BCELoss,
                   BCEWithLogitsLoss)
from .attention import MultiheadAttention
from .conv import Conv1d, Conv2d, ConvTranspose2d, MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d
from . import functional, utils

__all__ = ["Parameter", "Buffer", "Module", "RemovableHandle", "Sequential", "ModuleList",
           "ModuleDict", "Identity", "Linear", "Flatten", "Unflatten", "Embedding", "ReLU",
           "ReLU6", "LeakyReLU", "ELU", "SELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Softplus",
           "Softmax", "LogSoftmax", "RNN", "LSTM", "GRU", "BatchNorm1d", "BatchNorm2d",
           "LayerNorm", "GroupNorm", "RMSNorm", "Dropout", "CrossEntropyLoss", "NLLLoss",
           "MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "BCELoss", "BCEWithLogitsLoss",
           "MultiheadAttention", "functional", "Conv1d", "Conv2d", "ConvTranspose2d",
           "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d"]
