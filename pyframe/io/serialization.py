"""Layers as JSON and back: the registry of user classes, serialize_layer and
deserialize_layer.

A serialised layer is Keras's nested dict::

    {"module": "pyframe.layers", "class_name": "Dense", "config": {...},
     "registered_name": None, "build_config": {"input_shapes": {"": [None, 4]}}}

Deserialising never imports a module or evaluates anything: ``class_name``
resolves only through ``custom_objects``, the registry filled by
``@register_serializable`` and the tables of pyframe's own layers.
``build_config`` holds the input shape each layer of the subtree was built
with (by path; layers serialised on their own, such as a Sequential's
children, keep theirs), so a rebuilt model makes the same weights before any
data flows through it."""
import contextlib
import inspect
import json
import threading

from ..nn.module import Module

_REGISTRY = {}        # "Package>Name" -> class or function
_NAMES = {}           # class or function -> "Package>Name"
_local = threading.local()

_BUILTIN_NAMESPACES = ("pyframe.layers", "pyframe.nn")
_builtin = None       # {(namespace, class name): class}, filled on first use
_builtin_names = None  # {class: namespace}

# config keys whose string values name functions (activations), which custom
# objects and registered functions may supply
_FUNCTION_KEYS = ("activation", "recurrent_activation")


def register_serializable(package="Custom", name=None):
    """Class decorator: make a layer (or a function, such as an activation)
    loadable by name.  The registered name is ``"package>name"`` (``name``
    defaults to the class's).  Registering the same name again replaces the
    earlier entry, so re-running a notebook cell works::

        @pf.saving.register_serializable(package="my_models")
        class Scale(pf.layers.Layer):
            def __init__(self, factor=2.0, **kwargs):
                super().__init__(**kwargs)
                self.factor = factor
            def get_config(self):
                return dict(super().get_config(), factor=self.factor)
    """
    if not isinstance(package, str) or not package or ">" in package:
        raise ValueError("register_serializable: package must be a non-empty string without "
                         "'>'; got %r" % (package,))
    if name is not None and (not isinstance(name, str) or not name or ">" in name):
        raise ValueError("register_serializable: name must be None or a non-empty string "
                         "without '>'; got %r" % (name,))

    def decorator(obj):
        if not callable(obj):
            raise TypeError("register_serializable: decorate a class or a function; got %s"
                            % type(obj).__name__)
        if isinstance(obj, type) and not hasattr(obj, "get_config"):
            raise TypeError("register_serializable: %s has no get_config(); give it one that "
                            "returns its constructor arguments" % obj.__name__)
        registered = "%s>%s" % (package, name or obj.__name__)
        old = _REGISTRY.get(registered)
        if old is not None:
            _NAMES.pop(old, None)
        _REGISTRY[registered] = obj
        _NAMES[obj] = registered
        return obj

    return decorator


register_keras_serializable = register_serializable


def get_registered_name(obj):
    """``"package>name"`` for a registered class or function, else its own name."""
    return _NAMES.get(obj, getattr(obj, "__name__", type(obj).__name__))


def get_registered_object(name, custom_objects=None):
    """The class or function registered (or given in ``custom_objects`` or an
    active ``custom_object_scope``) under ``name``; ``name`` may be the full
    ``"package>name"`` or, when it is unambiguous, the bare name.  None when
    nothing matches."""
    if not isinstance(name, str):
        raise TypeError("get_registered_object: name must be a string; got %s"
                        % type(name).__name__)
    for scope in ([custom_objects] if custom_objects else []) + _scopes()[::-1]:
        if name in scope:
            return scope[name]
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ">" not in name:
        hits = [obj for key, obj in _REGISTRY.items() if key.split(">", 1)[1] == name]
        if len(hits) == 1:
            return hits[0]
    return None


@contextlib.contextmanager
def custom_object_scope(custom_objects):
    """``with custom_object_scope({"Scale": Scale}): load_model(path)``: the
    names resolve inside the block as if passed as ``custom_objects``."""
    _check_custom_objects(custom_objects, "custom_object_scope")
    stack = _scopes()
    stack.append(dict(custom_objects or {}))
    try:
        yield
    finally:
        stack.pop()


def _scopes():
    stack = getattr(_local, "scopes", None)
    if stack is None:
        stack = _local.scopes = []
    return stack


def _check_custom_objects(custom_objects, who):
    if custom_objects is None:
        return
    if not isinstance(custom_objects, dict) or \
            not all(isinstance(k, str) for k in custom_objects):
        raise TypeError("%s: custom_objects must be a dict of names to classes or functions "
                        "(e.g. {'Scale': Scale}); got %s" % (who, type(custom_objects).__name__))


# ------------------------------------------------------------------ built-in tables

def _tables():
    global _builtin, _builtin_names
    if _builtin is None:
        from .. import layers, nn
        table, names = {}, {}
        for namespace, mod in (("pyframe.layers", layers), ("pyframe.nn", nn)):
            for attr in dir(mod):
                obj = getattr(mod, attr)
                if isinstance(obj, type) and issubclass(obj, Module) and attr == obj.__name__:
                    table[(namespace, attr)] = obj
                    names.setdefault(obj, namespace)
        _builtin, _builtin_names = table, names
    return _builtin, _builtin_names


def _resolve(class_name, registered, module, custom_objects):
    for key in (registered, class_name):
        if key:
            obj = get_registered_object(key, custom_objects)
            if obj is not None:
                return obj
    table, _ = _tables()
    spaces = (module,) if module in _BUILTIN_NAMESPACES else _BUILTIN_NAMESPACES
    for space in spaces:
        cls = table.get((space, class_name))
        if cls is not None:
            return cls
    label = repr(class_name) + (" (registered as %r)" % registered if registered else "")
    where = " from module %r" % module if module and module not in _BUILTIN_NAMESPACES else ""
    raise ValueError("deserialize_layer: unknown layer class %s%s; it is not a pyframe layer. "
                     "Decorate the class with @pf.saving.register_serializable() before loading, "
                     "or pass custom_objects={%r: %s}" % (label, where, class_name, class_name))


# ------------------------------------------------------------------ serialize

def serialize_layer(layer):
    """A layer (or a whole Sequential) as a JSON-able dict."""
    if not isinstance(layer, Module):
        raise TypeError("serialize_layer: expected a layer (a pf.nn.Module); got %s"
                        % type(layer).__name__)
    cls = type(layer)
    registered = _NAMES.get(cls)
    _, names = _tables()
    namespace = names.get(cls)
    label = layer._label()
    if registered is None and namespace is None:
        raise ValueError(
            "serialize_layer: %s is neither a built-in pyframe layer nor a registered class, so "
            "its architecture cannot be saved. Decorate %s with "
            "@pf.saving.register_serializable() and give it get_config() (returning its "
            "constructor arguments), or save the weights only with model.save_weights(path) "
            "and rebuild the model in code" % (label, cls.__name__))
    if not callable(getattr(layer, "get_config", None)):
        raise ValueError("serialize_layer: %s has no get_config(), so its architecture cannot be "
                         "saved; save the weights only with model.save_weights(path), or give "
                         "the class a get_config()" % label)
    stack = _serializing()
    stack.append(set())
    try:
        config = layer.get_config()
    finally:
        nested = stack.pop()
    if stack:
        stack[-1].add(id(layer))
    if not isinstance(config, dict):
        raise TypeError("serialize_layer: %s.get_config() must return a dict; got %s"
                        % (label, type(config).__name__))
    config = _jsonable(config, label, "config")
    _check_config_complete(layer, config)
    out = {"module": namespace or cls.__module__, "class_name": cls.__name__, "config": config,
           "registered_name": registered}
    shapes = _build_shapes(layer, nested)
    if shapes:
        out["build_config"] = {"input_shapes": shapes}
    return out


def _serializing():
    stack = getattr(_local, "serializing", None)
    if stack is None:
        stack = _local.serializing = []
    return stack


def _jsonable(value, label, where):
    """A copy of a config with tuples as lists and NumPy scalars as numbers;
    anything JSON cannot hold raises, naming the key."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, label, "%s[%d]" % (where, i)) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError("serialize_layer: %s: %s has a key %r that is not a string; "
                                 "JSON keys are strings" % (label, where, k))
            out[k] = _jsonable(v, label, "%s[%r]" % (where, k))
        return out
    item = getattr(value, "item", None)
    if type(value).__module__ == "numpy" and callable(item):
        return _jsonable(item(), label, where)
    from .. import _C
    if isinstance(value, _C.dtype):
        return str(value)
    if callable(value):
        try:
            return _NAMES[value]
        except (KeyError, TypeError):
            pass
    raise ValueError("serialize_layer: %s: %s holds a %s, which JSON cannot hold; make "
                     "get_config() return names, numbers, strings, lists or dicts (for an "
                     "object, its own get_config())" % (label, where, type(value).__name__))


def _check_config_complete(layer, config):
    """A get_config() that leaves out a required constructor argument saves a
    model that cannot be loaded: say so now, not at load time."""
    cls = type(layer)
    if "from_config" in _own_attrs(cls):
        return
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return
    required = [p.name for p in params if p.default is p.empty and
                p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    missing = [r for r in required if r not in config]
    if missing:
        raise ValueError("serialize_layer: %s.get_config() leaves out the constructor "
                         "argument(s) %s, so the layer could not be rebuilt; return them from "
                         "get_config() (or define from_config())"
                         % (layer._label(), ", ".join(missing)))


def _own_attrs(cls):
    """Attributes defined by cls or a base outside pyframe's own modules."""
    out = set()
    for base in cls.__mro__:
        if base.__module__.startswith("pyframe.") or base is object:
            continue
        out.update(vars(base))
    return out


def _build_shapes(layer, nested_ids):
    """{path: input shape} for every layer of the subtree that was built from
    an input, skipping the subtrees of layers serialised on their own."""
    shapes, skip = {}, []
    for path, m in layer.named_modules():
        if any(path == s or path.startswith(s + ".") for s in skip):
            continue
        if path and id(m) in nested_ids:
            skip.append(path)
            continue
        shape = m.__dict__.get("_build_input_shape")
        if shape is not None:
            shapes[path] = _jsonable(shape, layer._label(), "an input shape")
    return shapes


# ------------------------------------------------------------------ deserialize

def deserialize_layer(config, custom_objects=None):
    """The layer a ``serialize_layer`` dict describes, with its weights built
    (fresh values) from the recorded input shapes.  Unknown classes raise,
    naming the class and how to register it; nothing is imported or run but
    the resolved class's from_config (or constructor)."""
    _check_custom_objects(custom_objects, "deserialize_layer")
    if not isinstance(config, dict):
        raise ValueError("deserialize_layer: expected a dict with 'class_name' and 'config' (what "
                         "serialize_layer returns); got %s" % type(config).__name__)
    class_name = config.get("class_name")
    registered = config.get("registered_name")
    module = config.get("module")
    inner = config.get("config", {})
    if not isinstance(class_name, str) or not class_name:
        raise ValueError("deserialize_layer: 'class_name' must be a non-empty string; got %r"
                         % (class_name,))
    if registered is not None and not isinstance(registered, str):
        raise ValueError("deserialize_layer: 'registered_name' must be a string or null; got %r"
                         % (registered,))
    if module is not None and not isinstance(module, str):
        raise ValueError("deserialize_layer: 'module' must be a string or null; got %r"
                         % (module,))
    if not isinstance(inner, dict):
        raise ValueError("deserialize_layer: the config of %s must be a dict; got %s"
                         % (class_name, type(inner).__name__))
    scope = _scopes()
    scope.append(dict(custom_objects or {}))
    try:
        cls = _resolve(class_name, registered, module, None)
        if not (isinstance(cls, type) and issubclass(cls, Module)):
            raise ValueError("deserialize_layer: %r resolves to %r, which is not a layer class "
                             "(a pf.nn.Module subclass)" % (class_name, cls))
        inner = _resolve_functions(inner)
        layer = _construct(cls, class_name, inner, custom_objects)
        build = config.get("build_config")
        if build is not None:
            apply_build_shapes(layer, _input_shapes(build, class_name))
    finally:
        scope.pop()
    return layer


def _construct(cls, class_name, inner, custom_objects):
    from_config = getattr(cls, "from_config", None)
    try:
        if from_config is None:
            layer = cls(**inner)
        elif "custom_objects" in _parameters(from_config):
            layer = from_config(inner, custom_objects=custom_objects)
        else:
            layer = from_config(inner)
    except ValueError as e:
        if str(e).startswith("deserialize_layer:"):
            raise        # a nested layer's own message
        raise ValueError("deserialize_layer: cannot rebuild %s from its config: %s"
                         % (class_name, e)) from e
    except RecursionError:
        raise ValueError("deserialize_layer: the config of %s nests too deeply" % class_name) \
            from None
    except Exception as e:  # the config comes from a file: any failure means a bad config
        raise ValueError("deserialize_layer: cannot rebuild %s from its config: %s: %s"
                         % (class_name, type(e).__name__, e)) from e
    if not isinstance(layer, Module):
        raise ValueError("deserialize_layer: %s.from_config returned a %s, not a layer"
                         % (class_name, type(layer).__name__))
    return layer


def _parameters(fn):
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}


def _resolve_functions(inner):
    """Activation names that are registered or custom functions become the functions."""
    from .. import activations
    out = dict(inner)
    for key in _FUNCTION_KEYS:
        name = out.get(key)
        if not isinstance(name, str):
            continue
        try:
            activations.get(name)
            continue
        except ValueError:
            pass
        fn = get_registered_object(name)
        if fn is not None:
            out[key] = fn
        else:
            raise ValueError("deserialize_layer: unknown activation %r; pass "
                             "custom_objects={%r: fn} or register the function with "
                             "@pf.saving.register_serializable()" % (name, name))
    return out


def _input_shapes(build, class_name):
    shapes = build.get("input_shapes") if isinstance(build, dict) else None
    if not isinstance(shapes, dict):
        raise ValueError("deserialize_layer: the build_config of %s must be "
                         "{'input_shapes': {path: shape}}; got %r" % (class_name, build))
    return shapes


def as_shape(value, where):
    """A saved shape back as tuples: a list of ints/None is a shape; lists
    and dicts of shapes (layers called on several inputs) stay containers."""
    if isinstance(value, list) and all(v is None or (isinstance(v, int) and
                                                     not isinstance(v, bool)) for v in value):
        if any(v is not None and v < 0 for v in value):
            raise ValueError("%s: input shape %s has a negative dimension" % (where, value))
        return tuple(value)
    if isinstance(value, list):
        return [as_shape(v, where) for v in value]
    if isinstance(value, dict):
        return {k: as_shape(v, where) for k, v in value.items()}
    raise ValueError("%s: %r is not an input shape (a list of integers and nulls)"
                     % (where, value))


def submodule(model, path):
    m = model
    for part in path.split(".") if path else ():
        m = m._modules.get(part) if isinstance(m, Module) else None
        if m is None:
            return None
    return m


def apply_build_shapes(model, shapes, built=None):
    """Build every unbuilt layer listed in ``shapes`` (path -> input shape),
    parents first (a parent's build may make its children).  ``built``, when
    given, collects the layers built here."""
    order = sorted(shapes, key=lambda p: 0 if p == "" else p.count(".") + 1)
    for path in order:
        m = submodule(model, path)
        if m is None or m.built or not callable(getattr(m, "build", None)):
            continue
        where = "%s (at %r)" % (m._label(), path) if path else m._label()
        shape = as_shape(shapes[path], "deserialize_layer: " + where)
        if built is not None:
            built.append((m, _snapshot(m)))
        try:
            m.build(shape)
        except Exception as e:
            raise ValueError("deserialize_layer: %s could not be built for input shape %s: %s: %s"
                             % (where, shape, type(e).__name__, e)) from e
        m.__dict__["built"] = True
        m.__dict__["_build_input_shape"] = shape


def _snapshot(m):
    """Enough of a module to undo a build(): its attributes, with the
    registries copied (build adds weights and sublayers to them)."""
    snap = dict(m.__dict__)
    for k, v in snap.items():
        if isinstance(v, (dict, list, set)):
            snap[k] = type(v)(v) if not isinstance(v, dict) else v.copy()
    return snap


def undo_builds(built):
    for m, snap in reversed(built):
        m.__dict__.clear()
        m.__dict__.update(snap)


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"))
