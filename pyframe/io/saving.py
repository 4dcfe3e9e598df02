"""save_model / load_model / save_weights / load_weights: one safetensors file.

Tensors: the model's state_dict by key (a tensor shared by several layers is
stored once, under its first key; the other keys are listed as aliases) and,
with include_optimizer, the optimizer's state tensors, named
``optimizer.state.<index>.<name>``.  The metadata (strings; JSON for the
structured entries):

    pyframe.format          "model" (save_model) or "weights" (save_weights)
    pyframe.format_version  "1"
    pyframe.version         the pyframe that wrote the file (for people)
    pyframe.architecture    serialize_layer(model)                   model files
    pyframe.build_shapes    {layer path: the input shape it was built with}
    pyframe.training        {layer path: train/eval mode}            model files
    pyframe.aliases         {key: key it shares its tensor with}     tied weights
    pyframe.compile_config  model.get_compile_config()               compiled models
    pyframe.optimizer       class, parameter names, param_groups, iterations, and
                            the names of the state tensors

Loading checks everything before it writes into a model, so a failed
load_weights leaves the model as it was."""
import json
import re
import warnings

from .. import _C
from .format import read, write
from .serialization import (serialize_layer, deserialize_layer, apply_build_shapes, undo_builds,
                            submodule, dumps, custom_object_scope, _check_custom_objects,
                            _jsonable)

FORMAT_VERSION = 1
_OPT_PREFIX = "optimizer.state."


# ------------------------------------------------------------------ saving

def save_model(model, path, include_optimizer=True):
    """Write the architecture, the weights, the compile configuration and
    (with ``include_optimizer``) the optimizer's state to one file; the old
    file, if any, is replaced only once the new one is complete."""
    who = "save_model"
    _check_model(model, who)
    _check_bool(include_optimizer, "include_optimizer", who)
    try:
        arch = serialize_layer(model)
    except ValueError as e:
        raise ValueError(_reprefix(e, who)) from e
    tensors, aliases, names_by_id = _weight_tensors(model)
    metadata = _metadata("model", model, aliases)
    metadata["pyframe.architecture"] = dumps(arch)
    metadata["pyframe.training"] = dumps(_training_modes(model))
    compile_config = _compile_config(model, who)
    if compile_config is not None:
        metadata["pyframe.compile_config"] = dumps(compile_config)
    if include_optimizer:
        _add_optimizer(model, tensors, metadata, names_by_id, who)
    write(path, tensors, metadata, who)


def save_weights(model, path):
    """Write the model's state_dict (parameters and persistent buffers) to one file."""
    who = "save_weights"
    _check_model(model, who)
    tensors, aliases, _ = _weight_tensors(model)
    write(path, tensors, _metadata("weights", model, aliases), who)


def _metadata(kind, model, aliases):
    from .. import __version__
    meta = {"pyframe.format": kind, "pyframe.format_version": str(FORMAT_VERSION),
            "pyframe.version": __version__}
    shapes = {path: _jsonable(m.__dict__["_build_input_shape"], m._label(), "an input shape")
              for path, m in model.named_modules() if "_build_input_shape" in m.__dict__}
    if shapes:
        meta["pyframe.build_shapes"] = dumps(shapes)
    if aliases:
        meta["pyframe.aliases"] = dumps(aliases)
    return meta


def _weight_tensors(model):
    """(tensors by key, aliases, {id(tensor): key}): a tensor that several
    keys share (tied weights) is stored once, under its first key."""
    tensors, aliases, first = {}, {}, {}
    for key, t in model.state_dict(keep_vars=True).items():
        if id(t) in first:
            aliases[key] = first[id(t)]
            continue
        first[id(t)] = key
        tensors[key] = t
    return tensors, aliases, first


def _training_modes(model):
    root = bool(model.training)
    modes = {"": root}
    for path, m in model.named_modules():
        if path and bool(m.training) != root:
            modes[path] = bool(m.training)
    return modes


def _compile_config(model, who):
    get = getattr(model, "get_compile_config", None)
    if not callable(get):
        return None
    config = get()
    if config is None:
        return None
    try:
        return json.loads(json.dumps(config))
    except (TypeError, ValueError) as e:
        raise ValueError("%s: the model's compile configuration cannot be stored as JSON (%s); "
                         "compile with names or serialisable objects" % (who, e)) from None


def _optimizer_of(model):
    # compile() keeps the optimizer in the trainer's state, and as model.optimizer
    # unless a layer already has that name
    state = model.__dict__.get("_compiled")
    opt = getattr(state, "optimizer", None)
    if opt is None:
        opt = model.__dict__.get("optimizer")
    return opt if hasattr(opt, "state_dict") and hasattr(opt, "param_groups") else None


def _add_optimizer(model, tensors, metadata, names_by_id, who):
    """The compiled optimizer's state, if it has any, into the file's tensors and metadata."""
    opt = _optimizer_of(model)
    if opt is not None and opt.param_groups:
        opt_meta, opt_tensors = _optimizer_payload(opt, names_by_id, tensors, who)
        tensors.update(opt_tensors)
        metadata["pyframe.optimizer"] = dumps(opt_meta)


def _optimizer_payload(opt, names_by_id, weights, who):
    sd = opt.state_dict()
    params = [p for g in opt.param_groups for p in g["params"]]
    names = []
    for i, p in enumerate(params):
        name = names_by_id.get(id(p))
        if name is None:
            raise ValueError("%s: the optimizer updates a tensor of shape %s (its parameter %d) "
                             "that is not a weight of the model, so its state could not be "
                             "matched when loading; save with include_optimizer=False"
                             % (who, tuple(p.shape), i))
        names.append(name)
    groups = []
    for g in sd["param_groups"]:
        groups.append({k: (list(v) if k == "params" else _encode_option(k, v, who))
                       for k, v in g.items()})
    state, tensors = {}, {}
    for index, entries in sd["state"].items():
        out = {}
        for key, v in entries.items():
            if isinstance(v, _C.Tensor):
                tname = "%s%d.%s" % (_OPT_PREFIX, int(index), key)
                if tname in weights:
                    raise ValueError("%s: the model has a weight named %r, the name the "
                                     "optimizer's state takes in the file; save with "
                                     "include_optimizer=False" % (who, tname))
                tensors[tname] = v
                out[key] = {"tensor": tname}
            else:
                out[key] = {"value": _encode_option(key, v, who)}
        state[str(int(index))] = out
    meta = {"class_name": type(opt).__name__, "param_names": names, "param_groups": groups,
            "state": state, "iterations": int(sd.get("iterations", 0))}
    return meta, tensors


def _encode_option(key, v, who):
    """An optimizer option as JSON: tuples and learning-rate schedules are tagged."""
    from ..optim.schedules import LearningRateSchedule, serialize
    if isinstance(v, LearningRateSchedule):
        return {"__pyframe__": "schedule", "config": serialize(v)}
    if isinstance(v, tuple):
        return {"__pyframe__": "tuple", "items": [_encode_option(key, x, who) for x in v]}
    if isinstance(v, _C.Tensor) and v.size == 1:
        return float(v.item())
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, list):
        return [_encode_option(key, x, who) for x in v]
    raise ValueError("%s: the optimizer option %r holds a %s, which cannot be saved; use a "
                     "number or a learning-rate schedule, or save with include_optimizer=False"
                     % (who, key, type(v).__name__))


def _decode_option(v):
    from ..optim.schedules import deserialize
    if isinstance(v, dict) and v.get("__pyframe__") == "schedule":
        return deserialize(v.get("config"))
    if isinstance(v, dict) and v.get("__pyframe__") == "tuple":
        items = v.get("items")
        if not isinstance(items, list):
            raise ValueError("a tagged tuple has no 'items' list")
        return tuple(_decode_option(x) for x in items)
    if isinstance(v, list):
        return [_decode_option(x) for x in v]
    return v


# ------------------------------------------------------------------ loading

def load_model(path, custom_objects=None, compile=True):
    """Rebuild a model written by ``save_model``: the architecture from its
    config (classes resolve through pyframe's layers, the registry and
    ``custom_objects``; nothing in the file is executed), the weights bit for
    bit, and with ``compile`` the compile configuration and the optimizer's
    state.  The framework's random generator is left as it was."""
    who = "load_model"
    _check_custom_objects(custom_objects, who)
    _check_bool(compile, "compile", who)
    f = read(path, who)
    _check_format(f, who, ("model",))
    arch = _json_entry(f, "pyframe.architecture", dict, who, required=True)
    rng = _C.get_rng_state()
    try:
        model = deserialize_layer(arch, custom_objects)
    except ValueError as e:
        raise ValueError("%s: cannot rebuild the model saved in %r: %s"
                         % (who, f.path, _strip(e))) from e
    finally:
        _C.set_rng_state(rng)
    opt_meta = _optimizer_meta(f, who)
    weights = _file_weights(f, opt_meta, who)
    shapes = _json_entry(f, "pyframe.build_shapes", dict, who) or {}
    _rng_kept(lambda: _assign(model, weights, shapes, True, True, f.path, who))
    _apply_modes(model, _json_entry(f, "pyframe.training", dict, who) or {}, f.path, who)
    if compile:
        config = _json_entry(f, "pyframe.compile_config", dict, who)
        if config is not None:
            restore = getattr(model, "compile_from_config", None)
            if restore is None:
                warnings.warn("%s: %r holds a compile configuration, but %s has no "
                              "compile_from_config(); the model is returned uncompiled"
                              % (who, f.path, type(model).__name__), stacklevel=2)
            else:
                try:
                    with custom_object_scope(custom_objects):
                        restore(config)
                except Exception as e:
                    raise ValueError("%s: cannot restore the compile configuration saved in "
                                     "%r: %s: %s" % (who, f.path, type(e).__name__, e)) from e
        if opt_meta is not None:
            _restore_optimizer(model, opt_meta, f, who)
    return model


def load_weights(model, path, strict=True):
    """Copy the weights in ``path`` (a file from save_weights or save_model, or
    any safetensors file keyed like the model's state_dict) into ``model``.
    Layers not built yet are built first from the input shapes the file
    records.  ``strict``: every weight of the model, and no other, must be in
    the file; shapes must always agree; values are cast to the model's dtypes.
    Nothing is changed unless everything checks out.  Returns
    (missing_keys, unexpected_keys)."""
    who = "load_weights"
    _check_model(model, who)
    _check_bool(strict, "strict", who)
    f = read(path, who)
    _check_format(f, who, ("model", "weights", "checkpoint", None))
    weights = _file_weights(f, _optimizer_meta(f, who), who)
    shapes = _json_entry(f, "pyframe.build_shapes", dict, who) or {}
    return _rng_kept(lambda: _assign(model, weights, shapes, strict, False, f.path, who))


def _rng_kept(fn):
    # building a layer draws its (soon overwritten) initial weights from the generator
    rng = _C.get_rng_state()
    try:
        return fn()
    finally:
        _C.set_rng_state(rng)


def _check_format(f, who, kinds):
    meta = f.metadata
    kind = meta.get("pyframe.format")
    if kind is None:
        if None in kinds:
            return
        raise ValueError("%s: %r is a safetensors file but not a pyframe model: its metadata has "
                         "no 'pyframe.format' entry. If it holds tensors named like a model's "
                         "state_dict, build the model in code and call model.load_weights(path)"
                         % (who, f.path))
    if kind not in ("model", "weights", "checkpoint"):
        raise ValueError("%s: %r has an unknown pyframe.format %r (expected 'model', 'weights' "
                         "or 'checkpoint')" % (who, f.path, kind))
    if kind not in kinds:
        if kind == "checkpoint" or "checkpoint" in kinds:
            raise ValueError("%s: %r is a pyframe %s file, not a %s" % (
                who, f.path, kind, " or ".join(k for k in kinds if k)))
        raise ValueError("%s: %r holds weights only (written by save_weights), not a model; "
                         "build the model in code and call model.load_weights(path)"
                         % (who, f.path))
    version = meta.get("pyframe.format_version")
    if version is None or not re.fullmatch(r"[0-9]{1,9}", version) or int(version) < 1:
        raise ValueError("%s: %r is damaged: its pyframe.format_version is %r (expected a "
                         "positive integer)" % (who, f.path, version))
    if int(version) > FORMAT_VERSION:
        raise ValueError("%s: %r was written by a newer pyframe (file format version %s; this "
                         "pyframe %s reads version %d); upgrade pyframe to load it"
                         % (who, f.path, version, _version(), FORMAT_VERSION))


def _version():
    from .. import __version__
    return __version__


def _json_entry(f, key, kind, who, required=False):
    text = f.metadata.get(key)
    if text is None:
        if required:
            raise ValueError("%s: %r is damaged: its metadata has no %r entry"
                             % (who, f.path, key))
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ValueError("%s: %r is damaged: its metadata entry %r is not valid JSON (%s)"
                         % (who, f.path, key, e)) from None
    if not isinstance(value, kind):
        raise ValueError("%s: %r is damaged: its metadata entry %r is a JSON %s; expected an "
                         "object" % (who, f.path, key, type(value).__name__))
    return value


def _optimizer_meta(f, who):
    """The 'pyframe.optimizer' entry, checked for shape (types, references to tensors)."""
    meta = _json_entry(f, "pyframe.optimizer", dict, who)
    if meta is None:
        return None

    def bad(what):
        return ValueError("%s: %r is damaged: its optimizer state %s" % (who, f.path, what))

    names, groups, state = meta.get("param_names"), meta.get("param_groups"), meta.get("state")
    if not isinstance(meta.get("class_name"), str):
        raise bad("names no optimizer class")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise bad("has no list of parameter names")
    if not isinstance(groups, list) or not all(isinstance(g, dict) and
                                               isinstance(g.get("params"), list)
                                               for g in groups):
        raise bad("has no list of parameter groups")
    indices = [i for g in groups for i in g["params"]]
    if not all(type(i) is int for i in indices) or sorted(indices) != list(range(len(names))):
        raise bad("numbers its parameters %s, not 0 to %d once each"
                  % (_short(indices), len(names) - 1))
    if not isinstance(state, dict):
        raise bad("has no state table")
    for index, entries in state.items():
        if not re.fullmatch(r"[0-9]{1,9}", index) or int(index) >= len(names) or \
                not isinstance(entries, dict):
            raise bad("has an entry for parameter %r, which does not exist" % index)
        for key, ref in entries.items():
            if not isinstance(ref, dict) or len(ref) != 1 or not ("tensor" in ref or
                                                                  "value" in ref):
                raise bad("entry %s[%r] is malformed" % (index, key))
            if "tensor" in ref and ref["tensor"] not in f.tensors:
                raise bad("entry %s[%r] refers to a tensor %r the file does not hold"
                          % (index, key, ref["tensor"]))
    iterations = meta.get("iterations", 0)
    if type(iterations) is not int or iterations < 0:
        raise bad("has iterations %r; expected a non-negative integer" % (iterations,))
    return meta


def _file_weights(f, opt_meta, who):
    """The file's weights by state_dict key: every tensor but the optimizer's,
    plus the aliases of tied weights."""
    taken = set()
    if opt_meta is not None:
        for entries in opt_meta["state"].values():
            taken.update(ref["tensor"] for ref in entries.values() if "tensor" in ref)
    weights = {k: t for k, t in f.tensors.items() if k not in taken}
    aliases = _json_entry(f, "pyframe.aliases", dict, who) or {}
    for key, source in aliases.items():
        if not isinstance(source, str) or source not in weights or key in weights:
            raise ValueError("%s: %r is damaged: the alias %r -> %r does not name a stored weight"
                             % (who, f.path, key, source))
        weights[key] = weights[source]
    return weights


def _assign(model, weights, shapes, strict, adopt_dtypes, path, who):
    """Check every weight against the model, then copy.  ``adopt_dtypes``
    (load_model) gives a weight the file's dtype where the rebuilt model
    differs; load_weights casts to the model's instead."""
    built = []
    try:
        try:
            apply_build_shapes(model, shapes, built)
        except ValueError as e:
            raise ValueError("%s: cannot build the model's layers from the shapes recorded in %r:"
                             " %s" % (who, path, _strip(e))) from e
        own = model.state_dict(keep_vars=True)
        empty = _empty_buffers(model)
        missing = [k for k in own if k not in weights]
        unexpected = sorted(k for k in weights if k not in own and k not in empty)
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append("the model's weights %s are not in the file" % _names(missing))
            if unexpected:
                parts.append("the file's weights %s are not in the model" % _names(unexpected))
            raise ValueError("%s: %r does not match the model: %s (pass strict=False to load the "
                             "weights that match)" % (who, path, "; ".join(parts)))
        plan = []
        for key, target in own.items():
            src = weights.get(key)
            if src is None:
                continue
            if tuple(src.shape) != tuple(target.shape):
                raise ValueError("%s: weight %r has shape %s in %r but %s in the model"
                                 % (who, key, tuple(src.shape), path, tuple(target.shape)))
            plan.append((target, src))
        fills = [(empty[k], weights[k]) for k in weights if k in empty]
    except BaseException:
        undo_builds(built)
        raise
    from ..nn.module import _no_grad
    from ..nn.parameter import Parameter
    owners = _owners(model) if adopt_dtypes else None
    replaced = {}
    with _no_grad():
        for target, src in plan:
            if adopt_dtypes and src.dtype != target.dtype:
                if id(target) not in replaced:
                    new = Parameter(src.clone(), requires_grad=target.requires_grad) \
                        if isinstance(target, Parameter) else src.clone()
                    for store, name in owners[id(target)]:
                        store[name] = new
                    replaced[id(target)] = new
            else:
                target.copy_(src)
        for (module, name), src in fills:
            module._buffers[name] = src.clone()
    return missing, unexpected


def _empty_buffers(model):
    """Persistent buffers registered as None (filled later, as Normalization's
    statistics by adapt()), by key: the file may fill them."""
    out = {}
    for prefix, m in model.named_modules():
        for k, b in m._buffers.items():
            if b is None and k not in m._non_persistent:
                out[prefix + "." + k if prefix else k] = (m, k)
    return out


def _owners(model):
    out = {}
    for _, m in model.named_modules(remove_duplicate=False):
        for store in (m._parameters, m._buffers):
            for k, t in store.items():
                if t is not None:
                    out.setdefault(id(t), []).append((store, k))
    return out


def _apply_modes(model, modes, path, who):
    root = modes.get("", True)
    if not isinstance(root, bool) or not all(isinstance(v, bool) for v in modes.values()):
        raise ValueError("%s: %r is damaged: its training modes must be true or false"
                         % (who, path))
    model.train(root)
    for p, mode in modes.items():
        m = submodule(model, p) if p else None
        if m is not None:
            m.__dict__["training"] = mode


def _restore_optimizer(model, meta, f, who):
    opt = _optimizer_of(model)
    if opt is None:
        warnings.warn("%s: %r holds an optimizer's state, but the loaded model has no optimizer "
                      "(it was not compiled); the state was not restored" % (who, f.path),
                      stacklevel=3)
        return
    if meta["class_name"] != type(opt).__name__:
        raise ValueError("%s: %r holds the state of a %s optimizer, but the model was compiled "
                         "with a %s" % (who, f.path, meta["class_name"], type(opt).__name__))
    by_name = model.state_dict(keep_vars=True)
    params = []
    for name in meta["param_names"]:
        p = by_name.get(name)
        if p is None:
            raise ValueError("%s: %r: the optimizer state refers to a weight %r the model does "
                             "not have" % (who, f.path, name))
        params.append(p)
    if not opt.param_groups:
        # a Keras-style optimizer from compile() is attached on the first step;
        # attach it now, group by group, in the saved order
        for g in meta["param_groups"]:
            opt.add_param_group({"params": [params[i] for i in g["params"]]})
    else:
        live = [id(p) for g in opt.param_groups for p in g["params"]]
        if live != [id(p) for p in params]:
            raise ValueError("%s: %r: the optimizer's parameters are not the ones its saved "
                             "state belongs to" % (who, f.path))
    try:
        groups = []
        for g, live in zip(meta["param_groups"], opt.param_groups):
            out = {}
            for k, v in g.items():
                v = _decode_option(v)
                if isinstance(v, list) and isinstance(live.get(k), tuple):
                    v = tuple(v)
                out[k] = v
            groups.append(out)
        state = {}
        for index, entries in meta["state"].items():
            state[int(index)] = {k: (f.tensors[ref["tensor"]] if "tensor" in ref
                                     else _decode_option(ref["value"]))
                                 for k, ref in entries.items()}
        opt.load_state_dict({"state": state, "param_groups": groups,
                             "iterations": meta.get("iterations", 0)})
    except Exception as e:
        raise ValueError("%s: cannot restore the optimizer state saved in %r: %s: %s"
                         % (who, f.path, type(e).__name__, e)) from e


# ------------------------------------------------------------------ training checkpoints

def save_checkpoint(model, path, state):
    """The training state of a fit in one file: the weights, the optimizer's
    state and ``state`` (JSON: the epoch, the generator's state...).  Written
    atomically, as every save.  Used by BackupAndRestore."""
    who = "save_checkpoint"
    _check_model(model, who)
    tensors, aliases, names_by_id = _weight_tensors(model)
    metadata = _metadata("checkpoint", model, aliases)
    metadata["pyframe.checkpoint"] = dumps(state)
    _add_optimizer(model, tensors, metadata, names_by_id, who)
    write(path, tensors, metadata, who)


def load_checkpoint(model, path):
    """Restore what save_checkpoint wrote into ``model`` (built from the
    recorded shapes where needed) and its compiled optimizer; returns the
    saved ``state``.  Everything is checked before the weights change."""
    who = "load_checkpoint"
    _check_model(model, who)
    f = read(path, who)
    _check_format(f, who, ("checkpoint",))
    state = _json_entry(f, "pyframe.checkpoint", dict, who, required=True)
    opt_meta = _optimizer_meta(f, who)
    weights = _file_weights(f, opt_meta, who)
    shapes = _json_entry(f, "pyframe.build_shapes", dict, who) or {}
    _rng_kept(lambda: _assign(model, weights, shapes, True, False, f.path, who))
    if opt_meta is not None:
        _restore_optimizer(model, opt_meta, f, who)
    return state


# ------------------------------------------------------------------ helpers

def _check_model(model, who):
    from ..nn.module import Module
    if not isinstance(model, Module):
        raise TypeError("%s: expected a model or layer (a pf.nn.Module); got %s"
                        % (who, type(model).__name__))


def _check_bool(v, what, who):
    if not isinstance(v, bool):
        raise TypeError("%s: %s must be True or False; got %r" % (who, what, v))


def _names(keys, limit=8):
    shown = ", ".join(repr(k) for k in keys[:limit])
    return "[%s%s]" % (shown, ", ... (%d in all)" % len(keys) if len(keys) > limit else "")


def _short(v, limit=60):
    s = repr(v)
    return s if len(s) <= limit else s[:limit] + "..."


def _strip(e):
    """A nested message without its function prefix."""
    s = str(e)
    for p in ("deserialize_layer: ", "serialize_layer: "):
        if s.startswith(p):
            return s[len(p):]
    return s


def _reprefix(e, who):
    return "%s: %s" % (who, _strip(e))
