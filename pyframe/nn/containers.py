"""Containers: Sequential, ModuleList, ModuleDict."""
from collections import OrderedDict

from .. import _C
from .module import Module


class Sequential(Module):
    """Layers applied in order.

        pf.Sequential([pf.layers.Dense(64, activation="relu"), pf.layers.Dense(10)])
        pf.nn.Sequential(pf.nn.Linear(784, 128), pf.nn.ReLU(), pf.nn.Linear(128, 10))
        pf.nn.Sequential(OrderedDict(fc1=..., act=...))

    Children are named "0", "1", ... (or by the OrderedDict keys), as in
    PyTorch, so state_dict keys match (``0.weight``).  Index by position,
    slice, or a layer's name (``model["dense_1"]``); ``add()`` appends."""

    def __init__(self, *layers, name=None):
        super().__init__(name=name)
        if len(layers) == 1 and isinstance(layers[0], OrderedDict):
            for k, m in layers[0].items():
                self.add_module(k, _check(m, self, k))
            return
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for m in layers:
            self.add(m)

    def add(self, layer):
        """Append a layer (Keras).  When the first layer declares its
        ``input_shape``, each added layer is built at once (Keras builds a
        Sequential whose input is known), so weights exist before fit."""
        k = str(len(self._modules))
        self.add_module(k, _check(layer, self, k))
        self._build_added(layer)
        return self

    def _build_added(self, layer):
        d = self.__dict__
        if len(self._modules) == 1:
            declared = getattr(layer, "_input_shape", None)
            if declared is None:
                d["_known_shape"] = None
                return
            # token ids for an Embedding first layer, floats for everything else
            dtype = _C.int64 if type(layer).__name__ == "Embedding" else None
            d["_known_shape"] = ((1,) + tuple(declared), dtype)
        known = d.get("_known_shape")
        if known is None:
            return
        shape, dtype = known
        d["_known_shape"] = None
        try:
            x = _C.zeros(shape, dtype=dtype) if dtype is not None else _C.zeros(shape)
            with _eval_no_grad(layer):
                out = layer(x)
        except Exception:       # noqa: BLE001 -- the same error surfaces, named, at the first call
            return
        if isinstance(out, _C.Tensor):
            d["_known_shape"] = (tuple(out.shape), None)

    append = add

    def _find(self, key):
        for k, m in self._modules.items():
            if k == key or getattr(m, "name", None) == key:
                return m
        raise KeyError("%s: no layer named %r; layers: %s" % (
            self._label(), key, [getattr(m, "name", k) for k, m in self._modules.items()]))

    def __getitem__(self, idx):
        if isinstance(idx, str):
            return self._find(idx)
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(mods[idx])
        try:
            return mods[idx]
        except IndexError:
            raise IndexError("%s: index %d is out of range for %d layers"
                             % (self._label(), idx, len(mods))) from None

    def get_layer(self, name=None, index=None):
        return self._find(name) if name is not None else self[index]

    @property
    def layers(self):
        return list(self._modules.values())

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def pop(self):
        if not self._modules:
            raise IndexError("%s.pop: there are no layers" % self._label())
        k = next(reversed(self._modules))
        return self._modules.pop(k)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def get_config(self):
        """The layers, serialised in order (Keras's Sequential config); the
        children's keys too when they are not "0", "1", ..."""
        from ..io.serialization import serialize_layer
        keys = list(self._modules)
        config = {"name": self.name, "layers": [serialize_layer(m) for m in self._modules.values()]}
        if keys != [str(i) for i in range(len(keys))]:
            config["keys"] = keys
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from ..io.serialization import deserialize_layer
        config = dict(config)
        layers = config.pop("layers", [])
        keys = config.pop("keys", None)
        if not isinstance(layers, list):
            raise ValueError("Sequential.from_config: 'layers' must be a list of serialised "
                             "layers; got %s" % type(layers).__name__)
        layers = [deserialize_layer(c, custom_objects) for c in layers]
        if keys is None:
            return cls(layers, **config)
        if not isinstance(keys, list) or len(keys) != len(layers) or \
                len(set(keys)) != len(keys) or not all(isinstance(k, str) for k in keys):
            raise ValueError("Sequential.from_config: 'keys' must be %d distinct strings, one "
                             "per layer; got %r" % (len(layers), keys))
        return cls(OrderedDict(zip(keys, layers)), **config)


class ModuleList(Module):
    """A list of modules, registered as children "0", "1", ..."""

    def __init__(self, modules=None):
        super().__init__()
        for m in modules or ():
            self.append(m)

    def append(self, module):
        k = str(len(self._modules))
        self.add_module(k, _check(module, self, k))
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return ModuleList(mods[idx])
        try:
            return mods[idx]
        except IndexError:
            raise IndexError("%s: index %d is out of range for %d modules"
                             % (self._label(), idx, len(mods))) from None

    def __setitem__(self, idx, module):
        keys = list(self._modules)
        self._modules[keys[idx]] = _check(module, self, keys[idx])

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList is a container: iterate over it in your forward()")


class ModuleDict(Module):
    """A dict of modules, registered under their keys."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for k, m in items:
            self[k] = m

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, _check(module, self, key))

    def __delitem__(self, key):
        del self._modules[key]

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict is a container: index it in your forward()")


def _check(m, owner, key):
    if not isinstance(m, Module):
        raise TypeError("%s: entry %r must be a layer (a pf.nn.Module); got %s"
                        % (owner._label(), key, type(m).__name__))
    return m


class _eval_no_grad:
    """Run a module once in eval mode without recording (building, summaries):
    dropout draws nothing and batch norm keeps its statistics."""

    def __init__(self, module):
        self.module = module

    def __enter__(self):
        self.modes = [(m, m.training) for m in self.module.modules()]
        self.module.eval()
        self.prev = _C._set_grad_enabled(False)

    def __exit__(self, *exc):
        _C._set_grad_enabled(self.prev)
        for m, mode in self.modes:
            m.__dict__["training"] = mode
