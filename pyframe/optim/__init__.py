"""pyframe.optim: optimizers whose update is one fused C call over all
parameters, and learning-rate schedules.

Both idioms work::

    opt = pf.optim.Adam(model.parameters(), lr=1e-3)      # PyTorch
    opt = pf.optim.Adam(learning_rate=1e-3)               # Keras: attach later
    opt.apply_gradients(zip(grads, params))

These classes use PyTorch's defaults and formulas; ``pf.optimizers`` has the
Keras-named classes with Keras's.  ``schedules`` holds the Keras-style
schedules (usable as the learning rate), ``lr_scheduler`` PyTorch-style
schedulers that edit ``param_groups``.
"""
from .optimizer import Optimizer
from .algorithms import SGD, Adam, AdamW, RMSprop, Adagrad, Adamax, NAdam, Nadam, Lion
from . import schedules, lr_scheduler

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "Nadam",
           "Lion", "schedules", "lr_scheduler"]
