"""nn.Module: the container of parameters, buffers and submodules.

The PyTorch idiom (``class Net(pf.nn.Module)`` with ``forward``) and the
Keras idiom (layers that build their weights on the first call, ``trainable``,
``summary()``) share this one base class."""
import itertools
import re
from collections import OrderedDict

from .. import _C
from .parameter import Parameter, Buffer
from ..training.trainer import Trainer

_name_counts = {}


def _snake(name):
    s = re.sub(r"(?<=[a-z])([A-Z])", r"_\1", name)
    return re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", s).lower()


def _auto_name(cls_name):
    base = _snake(cls_name)
    n = _name_counts.get(base, 0)
    _name_counts[base] = n + 1
    return base if n == 0 else "%s_%d" % (base, n)


class RemovableHandle:
    """Returned by ``register_*_hook``: ``remove()`` unregisters the hook."""
    _ids = itertools.count()

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = next(RemovableHandle._ids)

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class Module(Trainer):
    """Base class of every layer and model.

    Attributes that are ``Parameter``s, ``Module``s or ``Buffer``s are
    registered under their attribute name; nested names are dotted
    (``encoder.0.weight``).  Subclasses implement ``forward``; Keras-style
    layers may implement ``build(input_shape)``, which runs once, on the first
    call, before ``forward``."""

    _version = 1

    def __init__(self, *, name=None):
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_forward_pre_hooks"] = OrderedDict()
        d["training"] = True
        d["built"] = not hasattr(type(self), "build")
        d["name"] = name if name is not None else _auto_name(type(self).__name__)
        d["_last_output_shape"] = None

    # ------------------------------------------------------------ attributes

    def _check_init(self):
        if "_parameters" not in self.__dict__:
            raise AttributeError("%s: call super().__init__() at the start of __init__, before "
                                 "assigning parameters or submodules" % type(self).__name__)

    def __setattr__(self, key, value):
        if isinstance(value, Parameter):
            self._check_init()
            self._buffers.pop(key, None)
            self._modules.pop(key, None)
            self.__dict__.pop(key, None)
            self._parameters[key] = value
        elif isinstance(value, Module):
            self._check_init()
            self._parameters.pop(key, None)
            self._buffers.pop(key, None)
            self.__dict__.pop(key, None)
            self._modules[key] = value
        elif isinstance(value, Buffer):
            self.register_buffer(key, value.data, value.persistent)
        elif "_parameters" in self.__dict__ and key in self._parameters:
            if value is not None:
                raise TypeError("%s: cannot assign %s to parameter %r; assign a "
                                "pf.nn.Parameter (or None)" % (self._label(), type(value).__name__,
                                                               key))
            self._parameters[key] = None
        elif "_buffers" in self.__dict__ and key in self._buffers:
            if value is not None and not isinstance(value, _C.Tensor):
                raise TypeError("%s: buffer %r must be a tensor or None; got %s"
                                % (self._label(), key, type(value).__name__))
            self._buffers[key] = value
        elif "_modules" in self.__dict__ and key in self._modules and value is None:
            self._modules[key] = None
        else:
            object.__setattr__(self, key, value)

    def __getattr__(self, key):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            s = d.get(store)
            if s is not None and key in s:
                return s[key]
        raise AttributeError("%r object has no attribute %r" % (type(self).__name__, key))

    def __delattr__(self, key):
        for store in (self._parameters, self._buffers, self._modules):
            if key in store:
                del store[key]
                self._non_persistent.discard(key)
                return
        object.__delattr__(self, key)

    def __dir__(self):
        return sorted(set(object.__dir__(self)) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def _label(self):
        return "%s '%s'" % (type(self).__name__, self.name)

    # ------------------------------------------------------------ registration

    def register_parameter(self, name, param):
        self._check_init()
        if param is not None and not isinstance(param, Parameter):
            raise TypeError("%s.register_parameter: %r must be a pf.nn.Parameter or None; got %s"
                            % (self._label(), name, type(param).__name__))
        self._validate_name(name, "register_parameter")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        self._check_init()
        if tensor is not None and not isinstance(tensor, _C.Tensor):
            raise TypeError("%s.register_buffer: %r must be a tensor or None; got %s"
                            % (self._label(), name, type(tensor).__name__))
        self._validate_name(name, "register_buffer")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        self._check_init()
        if module is not None and not isinstance(module, Module):
            raise TypeError("%s.add_module: %r must be a Module or None; got %s"
                            % (self._label(), name, type(module).__name__))
        self._validate_name(name, "add_module")
        self._modules[name] = module

    register_module = add_module

    def _validate_name(self, name, who):
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError("%s.%s: names must be non-empty strings without '.'; got %r"
                             % (self._label(), who, name))

    # ------------------------------------------------------------ calling

    def forward(self, *args, **kwargs):
        raise NotImplementedError("%s: a Module subclass must define forward()"
                                  % type(self).__name__)

    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            r = hook(self, args)
            if r is not None:
                args = r if isinstance(r, tuple) else (r,)
        if not self.built:
            self._build_from(args)
        dt = self.__dict__.get("_autocast")
        if dt is None:
            out = self.forward(*args, **kwargs)
        else:
            out = self._forward_autocast(dt, args, kwargs)
        for hook in list(self._forward_hooks.values()):
            r = hook(self, args, out)
            if r is not None:
                out = r
        self.__dict__["_last_output_shape"] = _shape_of(out)
        return out

    def _forward_autocast(self, dtype, args, kwargs):
        """forward under pf.autocast on its input's device type (a mixed dtype policy)."""
        from ..amp import autocast
        device = "cpu"
        for a in args:
            if isinstance(a, _C.Tensor):
                device = a.device.type
                break
        with autocast(device, dtype):
            return self.forward(*args, **kwargs)

    def _build_from(self, args):
        if not args:
            raise ValueError("%s: needs an input on its first call to build its weights"
                             % self._label())
        self.build(_shape_of(args[0]))
        self.__dict__["built"] = True

    def register_forward_hook(self, hook):
        """hook(module, args, output) after forward; may return a replacement output."""
        h = RemovableHandle(self._forward_hooks)
        self._forward_hooks[h.id] = hook
        return h

    def register_forward_pre_hook(self, hook):
        """hook(module, args) before forward; may return replacement args."""
        h = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[h.id] = hook
        return h

    # ------------------------------------------------------------ traversal

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, prefix + ("." if prefix else "") + name,
                                       remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, getter, prefix, recurse, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for k, v in getter(m).items():
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield mprefix + ("." if mprefix else "") + k, v

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members(lambda m: m._parameters, prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members(lambda m: m._buffers, prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # Keras names
    @property
    def weights(self):
        return list(self.parameters()) + [b for _, b in self._persistent_buffers()]

    @property
    def trainable_weights(self):
        return [p for p in self.parameters() if p.requires_grad]

    @property
    def non_trainable_weights(self):
        return [p for p in self.parameters() if not p.requires_grad] + \
            [b for _, b in self._persistent_buffers()]

    def _persistent_buffers(self):
        for mprefix, m in self.named_modules():
            for k, b in m._buffers.items():
                if b is not None and k not in m._non_persistent:
                    yield mprefix + ("." if mprefix else "") + k, b

    def count_params(self):
        return sum(p.size for p in self.parameters())

    # ------------------------------------------------------------ state

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Parameters and persistent buffers by dotted name (detached, sharing memory)."""
        out = OrderedDict() if destination is None else destination
        for mprefix, m in self.named_modules(prefix=prefix.rstrip(".")):
            base = mprefix + ("." if mprefix else "")
            for k, p in m._parameters.items():
                if p is not None:
                    out[base + k] = p if keep_vars else p.detach()
            for k, b in m._buffers.items():
                if b is not None and k not in m._non_persistent:
                    out[base + k] = b if keep_vars else b.detach()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy values into the parameters and buffers, in place.

        Values may be tensors, NumPy arrays or anything pf.asarray takes (a
        PyTorch state_dict converted with ``{k: v.numpy() ...}``).  With
        ``strict``, missing and unexpected keys raise; a shape mismatch always
        raises, naming the key.  Nothing is written unless every entry checks
        out.  Returns (missing_keys, unexpected_keys)."""
        if not hasattr(state_dict, "items"):
            raise TypeError("%s.load_state_dict: expected a mapping of names to tensors; got %s"
                            % (self._label(), type(state_dict).__name__))
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append("missing keys %s" % missing)
            if unexpected:
                parts.append("unexpected keys %s" % unexpected)
            raise KeyError("%s.load_state_dict: %s (pass strict=False to load the keys that "
                           "match)" % (self._label(), " and ".join(parts)))
        plan = []
        for k, target in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            src = v if isinstance(v, _C.Tensor) else _C.asarray(v)
            if tuple(src.shape) != tuple(target.shape):
                raise ValueError("%s.load_state_dict: %r has shape %s in the module but %s in "
                                 "the state_dict" % (self._label(), k, tuple(target.shape),
                                                     tuple(src.shape)))
            plan.append((target, src))
        with _no_grad():
            for target, src in plan:
                target.copy_(src)
        return missing, unexpected

    def get_weights(self):
        """Keras: the weights as NumPy arrays, in weights order."""
        import numpy as np
        return [np.array(w) for w in self.weights]

    def set_weights(self, arrays):
        ws = self.weights
        if len(arrays) != len(ws):
            raise ValueError("%s.set_weights: %d arrays for %d weights"
                             % (self._label(), len(arrays), len(ws)))
        with _no_grad():
            for i, (w, a) in enumerate(zip(ws, arrays)):
                src = _C.asarray(a)
                if tuple(src.shape) != tuple(w.shape):
                    raise ValueError("%s.set_weights: weight %d has shape %s; got an array of "
                                     "shape %s" % (self._label(), i, tuple(w.shape),
                                                   tuple(src.shape)))
                w.copy_(src)

    # ------------------------------------------------------------ modes

    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise TypeError("%s.train: mode must be True or False; got %r" % (self._label(), mode))
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    @property
    def trainable(self):
        params = list(self.parameters())
        return all(p.requires_grad for p in params) if params else True

    @trainable.setter
    def trainable(self, value):
        self.requires_grad_(bool(value))

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                with _no_grad():
                    p.grad.zero_()

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def to(self, *args, **kwargs):
        """to(dtype), to(device) or to(device, dtype): parameters (with their gradients) and
        buffers moved and converted in place, as in PyTorch.  The Parameter objects stay the
        same, so an optimizer built before keeps working; only floating-point tensors change
        dtype.  Every new tensor is made before any is swapped in: when one fails (no CUDA,
        out of memory) the module is left as it was."""
        return self._move("%s.to" % self._label(), args, kwargs)

    def cuda(self, device=None):
        """to(device) onto a CUDA device: the current one when device is None."""
        return self._move("%s.cuda" % self._label(),
                          ("cuda" if device is None else
                           device if isinstance(device, (str, _C.device)) else int(device),), {})

    def cpu(self):
        """to("cpu")."""
        return self._move("%s.cpu" % self._label(), ("cpu",), {})

    def _move(self, caller, args, kwargs):
        kwargs = dict(kwargs)
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError("%s: unexpected arguments %s" % (caller, sorted(kwargs)))
        for a in args:
            if isinstance(a, _C.dtype):
                dtype = a
            elif isinstance(a, (str, _C.device)) or (isinstance(a, int)
                                                     and not isinstance(a, bool)):
                try:
                    device = _C.device(a) if not isinstance(a, int) else a
                except (TypeError, ValueError):
                    dtype = _C.dtype(a)
            else:
                dtype = _C.dtype(a)
        if device is not None:
            # "cuda" becomes one device for all the tensors; raises naming this call
            device = _C._resolve_device(device, caller)
        if dtype is not None:
            dtype = _C.dtype(dtype)
            if not dtype.is_floating_point:
                raise TypeError("%s: modules convert to floating-point dtypes only; got %s"
                                % (caller, dtype))
        if device is None and dtype is None:
            return self

        def convert(t):
            d = dtype if dtype is not None and t.dtype.is_floating_point else None
            return t.to(device=device, dtype=d)

        params, buffers, seen = [], [], set()
        for m in self.modules():
            for k, p in m._parameters.items():
                if p is None or id(p) in seen:      # a tied weight moves once
                    continue
                seen.add(id(p))
                data = convert(p.detach())
                grad = convert(p.grad) if p.grad is not None else None
                params.append((p, data, grad))
            for k, b in m._buffers.items():
                if b is not None:
                    buffers.append((m, k, convert(b)))
        for p, data, grad in params:
            p.data = data
            if grad is not None:
                p.grad = grad
        for m, k, b in buffers:
            m._buffers[k] = b
        for m in self.modules():
            # Keras layers not built yet make their weights in this dtype, on this device
            if "_dtype" in m.__dict__ and dtype is not None:
                m.__dict__["_dtype"] = dtype
            if "_device" in m.__dict__ and device is not None:
                m.__dict__["_device"] = device
        return self

    def float(self):
        return self.to(_C.float32)

    def double(self):
        return self.to(_C.float64)

    def half(self):
        return self.to(_C.float16)

    def bfloat16(self):
        return self.to(_C.bfloat16)

    # ------------------------------------------------------------ display

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        for name, m in self._modules.items():
            body = repr(m).replace("\n", "\n  ")
            lines.append("(%s): %s" % (name, body))
        head = type(self).__name__ + "("
        if not lines:
            return head + extra + ")"
        inner = ([extra] if extra else []) + lines
        return head + "\n  " + "\n  ".join(inner) + "\n)"

    def summary(self, print_fn=None, input_shape=None):
        """A Keras-style table: layer (type), output shape, parameters, and the
        trainable / non-trainable totals.  Output shapes come from the last
        call; give ``input_shape`` (with the batch dimension) to run one call
        on zeros first."""
        from .summary import summary_text
        text = summary_text(self, input_shape)
        if print_fn is None:
            print(text)
            return None
        print_fn(text)
        return None

    def _repr_html_(self):
        from .summary import summary_html
        return summary_html(self)


def call_named(layer, fn, *args, **kwargs):
    """Run a kernel for a layer; its shape and type errors say which layer called it."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as e:
        raise type(e)("%s: %s" % (layer._label(), e)) from None


def _shape_of(x):
    if isinstance(x, _C.Tensor):
        return tuple(x.shape)
    if isinstance(x, (tuple, list)):
        return [_shape_of(v) for v in x]
    if isinstance(x, dict):
        return {k: _shape_of(v) for k, v in x.items()}
    shape = getattr(x, "shape", None)
    return tuple(shape) if shape is not None else None


class _no_grad:
    def __enter__(self):
        self.prev = _C._set_grad_enabled(False)

    def __exit__(self, *exc):
        _C._set_grad_enabled(self.prev)
