"""pf.Model: the Keras subclassing style -- layers made in ``__init__``, the
computation in ``call(inputs, training=None)``.  Everything else (compile,
fit, summary, save...) comes from Module."""
import inspect

from ..nn.module import Module


class Model(Module):
    """Subclass it and define ``call`` (Keras) or ``forward`` (PyTorch).
    ``training`` is passed to ``call`` when it takes it: True inside fit,
    False in evaluate/predict (the module's train/eval mode)."""

    def __init__(self, *args, name=None, **kwargs):
        if args or "inputs" in kwargs or "outputs" in kwargs:
            raise TypeError("pf.Model(inputs, outputs): the Keras functional API is not "
                            "supported; stack layers with pf.Sequential([...]) or subclass "
                            "pf.Model and define call()")
        if kwargs:
            raise TypeError("pf.Model: unexpected arguments %s" % sorted(kwargs))
        super().__init__(name=name)
        call = type(self).call
        self.__dict__["_call_takes_training"] = call is not Model.call and (
            "training" in inspect.signature(call).parameters)

    def call(self, *args, **kwargs):
        raise NotImplementedError("%s: a pf.Model subclass must define call(inputs, "
                                  "training=None) (or forward)" % type(self).__name__)

    def forward(self, *args, **kwargs):
        if self._call_takes_training and "training" not in kwargs:
            kwargs["training"] = self.training
        return self.call(*args, **kwargs)
