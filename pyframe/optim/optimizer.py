"""pyframe.optim.Optimizer: the base of the optimizers, usable the PyTorch way
and the Keras way.

PyTorch::

    opt = pf.optim.Adam(model.parameters(), lr=1e-3)
    opt.zero_grad(); loss.backward(); opt.step()

Keras::

    opt = pf.optim.Adam(learning_rate=1e-3)          # no parameters yet
    opt.apply_gradients(zip(grads, params))         # builds on the first call

Each ``step()`` makes one C call per parameter group (``_C._optim_step``)
that updates every parameter of the group and its states in place; there is
no per-parameter Python work on the steady path beyond reading ``p.grad``.
The per-parameter state lives in ``optimizer.state[param]`` as a dict of
tensors with PyTorch's names (``step``, ``exp_avg``, ...), and
``state_dict()`` has PyTorch's layout.
"""
from .. import _C
from .schedules import LearningRateSchedule, serialize as _serialize_schedule

_Tensor = _C.Tensor
_FLOATS = (_C.float32, _C.float64)


class _Unset:
    def __repr__(self):
        return "<unset>"


UNSET = _Unset()


def pick(label, torch_name, torch_value, keras_name, keras_value, default):
    """One hyper-parameter accepted under its PyTorch and its Keras name."""
    if torch_value is not UNSET and keras_value is not UNSET:
        raise TypeError(f"{label}: got both {torch_name}={torch_value!r} and "
                        f"{keras_name}={keras_value!r}; they are the same option, pass one")
    if torch_value is not UNSET:
        return torch_value
    if keras_value is not UNSET:
        return keras_value
    return default


def pick_betas(label, betas, beta_1, beta_2, default):
    """betas=(b1, b2) (PyTorch) or beta_1= / beta_2= (Keras)."""
    if betas is not UNSET and (beta_1 is not UNSET or beta_2 is not UNSET):
        raise TypeError(f"{label}: got both betas={betas!r} and beta_1/beta_2; pass one form")
    if betas is not UNSET:
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"{label}: betas must be a pair (beta1, beta2); got {betas!r}") \
                from None
        return (b1, b2)
    return (default[0] if beta_1 is UNSET else beta_1, default[1] if beta_2 is UNSET else beta_2)


def check_torch_flags(label, capturable, differentiable):
    # foreach / fused are accepted and ignored: every update here is one fused call
    if capturable:
        raise ValueError(f"{label}: capturable=True (CUDA graphs) is not supported; leave it False")
    if differentiable:
        raise ValueError(f"{label}: differentiable=True (autograd through the update) is not "
                         "supported; leave it False")


def _is_schedule(lr):
    return isinstance(lr, LearningRateSchedule) or (callable(lr) and not isinstance(lr, _Tensor))


class Optimizer:
    """Base class.  Subclasses set ``_algorithm`` (the C update), define
    ``_options(group)`` (the group's hyper-parameters as C keywords) and
    ``_slots(group)`` (the state tensors a step needs), and may override
    ``_slot_init``."""

    _algorithm = None
    _keras = False                  # Keras formulas (the pf.optimizers classes)
    _all_slots = ()                 # every state name the class may keep, besides "step"
    _scalar_slots = ()              # states that are 1-element tensors (NAdam's mu_product)

    def __init__(self, params, defaults, *, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 loss_scale_factor=None, name=None):
        self._label = type(self).__name__
        self.name = name if name is not None else self._label.lower()
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        self.iterations = 0
        self._cache = {}
        self._epoch = 0
        given = [k for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                ("global_clipnorm", global_clipnorm)) if v is not None]
        if len(given) > 1:
            raise ValueError(f"{self._label}: only one of clipnorm, clipvalue and global_clipnorm "
                             f"can be set (as in Keras); got clipnorm={clipnorm!r}, "
                             f"clipvalue={clipvalue!r}, global_clipnorm={global_clipnorm!r}")
        for what, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                        ("global_clipnorm", global_clipnorm),
                        ("loss_scale_factor", loss_scale_factor)):
            if v is not None and not (isinstance(v, (int, float)) and 0 < v < float("inf")):
                raise ValueError(f"{self._label}: invalid {what}={v!r}; expected a finite number "
                                 "> 0 or None")
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.loss_scale_factor = loss_scale_factor
        self._check_group(self.defaults, "")
        if params is None:
            return
        if isinstance(params, _Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{self._label}: parameters must be an ordered collection (a list, a "
                            "generator such as model.parameters()); a set has no stable order")
        params = list(params)
        if not params:
            raise ValueError(f"{self._label}: got an empty parameter list; pass "
                             "model.parameters(), or no parameters at all and call build() or "
                             "apply_gradients() later (the Keras way)")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for group in params:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups

    def _options(self, group):
        raise NotImplementedError

    def _slots(self, group):
        raise NotImplementedError

    def _slot_init(self, name, group):
        """The initial value of a state tensor (a float) or of a scalar state."""
        return 1.0 if name in self._scalar_slots else 0.0

    def _check_group(self, group, where):
        """Validate a group's hyper-parameters with the C update's own checks."""
        lr = group["lr"]
        if _is_schedule(lr):
            lr = 0.0
        elif isinstance(lr, bool) or not isinstance(lr, (int, float, _Tensor)):
            raise TypeError(f"{self._label}: the learning rate{where} must be a float or a "
                            f"learning-rate schedule; got {type(lr).__name__}")
        else:
            lr = float(lr)
        _C._optim_step(self._algorithm, [], [], [], lr=lr, name=self._label,
                       keras=self._keras, **self._options(group))

    def add_param_group(self, param_group):
        """Add a group of parameters with its own options (PyTorch)::

            opt.add_param_group({"params": head.parameters(), "lr": 1e-2})
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._label}.add_param_group: expected a dict with a 'params' "
                            f"entry; got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{self._label}.add_param_group: the group has no 'params' entry")
        params = param_group["params"]
        if isinstance(params, _Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{self._label}: parameters must be an ordered collection, not a set")
        params = list(params)
        names = None
        if params and isinstance(params[0], tuple):
            # model.named_parameters()
            names = [n for n, _ in params]
            params = [p for _, p in params]
        gi = len(self.param_groups)
        seen = set()
        for i, p in enumerate(params):
            if not isinstance(p, _Tensor):
                raise TypeError(f"{self._label}: parameter {i} of group {gi} is a "
                                f"{type(p).__name__}; expected a tensor")
            if p.grad_fn is not None:
                raise ValueError(f"{self._label}: parameter {i} of group {gi} is not a leaf (it "
                                 "was computed by an op); optimize the leaf tensors "
                                 "(model parameters), or .detach().requires_grad_() a copy")
            if p.dtype not in _FLOATS:
                raise TypeError(f"{self._label}: parameter {i} of group {gi} has dtype {p.dtype}; "
                                "optimizers update float32 or float64 parameters")
            if id(p) in seen:
                raise ValueError(f"{self._label}: parameter {i} of group {gi} appears twice in the "
                                 "group; list each parameter once")
            seen.add(id(p))
        for other in self.param_groups:
            for q in other["params"]:
                if id(q) in seen:
                    raise ValueError(f"{self._label}: some parameters appear in more than one "
                                     "parameter group")
        group = dict(self.defaults)
        group.update((k, v) for k, v in param_group.items() if k != "params")
        group["params"] = params
        if names is not None:
            group["param_names"] = names
        self._check_group(group, f" of group {gi}")
        self.param_groups.append(group)
        self._epoch += 1

    # ------------------------------------------------------------ learning rate

    def _lr_value(self, lr):
        if isinstance(lr, float):
            return lr
        if isinstance(lr, LearningRateSchedule):
            return float(lr(self.iterations))
        if callable(lr) and not isinstance(lr, _Tensor):
            return float(lr())          # Keras: a callable without arguments
        return float(lr)

    @property
    def learning_rate(self):
        """The current learning rate (of the first group), a float; a schedule is
        evaluated at ``iterations``.  Setting it changes every group; it raises
        when the rate is a schedule (as Keras), unless a new schedule is set."""
        group = self.param_groups[0] if self.param_groups else self.defaults
        return self._lr_value(group["lr"])

    @learning_rate.setter
    def learning_rate(self, value):
        groups = self.param_groups or [self.defaults]
        if not _is_schedule(value):
            if any(isinstance(g["lr"], LearningRateSchedule) for g in groups):
                raise TypeError(f"{self._label}: this optimizer was created with a "
                                "LearningRateSchedule as its learning rate, so the rate cannot be "
                                "set; create the optimizer with a float learning_rate to make "
                                "it settable")
            value = float(value)
            if not 0.0 <= value < float("inf"):
                raise ValueError(f"{self._label}: invalid learning rate {value!r}; expected a "
                                 "finite number >= 0")
        for g in {id(g): g for g in groups + [self.defaults]}.values():
            g["lr"] = value

    lr = learning_rate

    # ------------------------------------------------------------------- state

    def _new_state(self, p, group, state):
        """Create the missing entries of p's state (zeros, or the slot's initial value)."""
        if state is None:
            state = self.state[p] = {}
        if "step" not in state:
            state["step"] = _C.zeros((), dtype=_C.float32)
        for name in self._slots(group):
            if state.get(name) is None:
                v = self._slot_init(name, group)
                if name in self._scalar_slots:
                    # in the parameter's dtype: float32 rounds as PyTorch's float32 scalar state
                    state[name] = _C.full((), v, dtype=p.dtype)
                elif v == 0.0:
                    state[name] = _C.zeros_like(p)
                else:
                    state[name] = _C.full_like(p, v)
        return state

    def _lists(self, gi, group, params, grads):
        """The step tensors and state lists of a group, cached while nothing changes."""
        slots = self._slots(group)
        key = (id(params), len(params), slots, self._epoch)
        cached = self._cache.get(gi)
        if cached is not None and cached[0] == key:
            missing = cached[3]
            if not missing or all(grads[i] is None for i in missing):
                return cached[1], cached[2]
        state = self.state
        steps = []
        lists = {name: [] for name in slots}
        missing = []
        for i, p in enumerate(params):
            s = state.get(p)
            if grads[i] is not None and (s is None or "step" not in s or
                                         any(s.get(n) is None for n in slots)):
                s = self._new_state(p, group, s)
            if s is None:
                missing.append(i)
                steps.append(None)
                for name in slots:
                    lists[name].append(None)
                continue
            steps.append(s["step"])
            for name in slots:
                lists[name].append(s.get(name))
        self._cache[gi] = (key, steps, lists, missing)
        return steps, lists

    def _clip_options(self):
        scale = None if self.loss_scale_factor is None else 1.0 / self.loss_scale_factor
        return {"clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm, "grad_scale": scale}

    def _update(self, work):
        """work: [(group index, group, params, grads)] -> one C call per group."""
        clip = self._clip_options()
        if clip["grad_scale"] is None:
            del clip["grad_scale"]
        if self.global_clipnorm is not None and len(work) > 1:
            # one norm over every group's gradients, computed once
            norm = _C._optim_grad_norm([g for w in work for g in w[3]])
            clip["global_norm"] = norm / self.loss_scale_factor if self.loss_scale_factor else norm
        step = _C._optim_step
        for gi, group, params, grads in work:
            steps, lists = self._lists(gi, group, params, grads)
            step(self._algorithm, params, grads, steps, lr=self._lr_value(group["lr"]),
                 name=self._label, keras=self._keras, **self._options(group), **lists, **clip)
        self.iterations += 1

    # ---------------------------------------------------------- PyTorch idiom

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of every parameter (to None by default, as PyTorch)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    g = p.grad
                    if g.grad_fn is not None:
                        p.grad = g.detach()
                    p.grad.fill_(0.0)

    def step(self, closure=None):
        """One update of every parameter that has a ``.grad``.  ``closure``, if
        given, recomputes the loss (with gradients enabled) and is called first;
        its value is returned."""
        loss = None
        if closure is not None:
            from ..autograd import enable_grad
            with enable_grad():
                loss = closure()
        if not self.param_groups:
            raise RuntimeError(f"{self._label}.step(): the optimizer has no parameters; pass them "
                               "to the constructor (model.parameters()), or use "
                               "apply_gradients(zip(grads, params)) / build(params)")
        self._update([(gi, g, g["params"], [p.grad for p in g["params"]])
                      for gi, g in enumerate(self.param_groups)])
        return loss

    # ------------------------------------------------------------ Keras idiom

    @property
    def built(self):
        return bool(self.param_groups)

    def build(self, var_list):
        """Attach the optimizer to ``var_list`` and create every state (Keras).
        An optimizer made with parameters is built already; then this only
        creates the states of the listed ones."""
        var_list = list(var_list)
        if not self.param_groups:
            self.add_param_group({"params": var_list})
        wanted = {id(v) for v in var_list}
        for group in self.param_groups:
            for p in group["params"]:
                if id(p) in wanted:
                    self._new_state(p, group, self.state.get(p))
        self._epoch += 1

    def _positions(self):
        cache = self._cache.get("positions")
        if cache is None or cache[0] != self._epoch:
            pos = {}
            for gi, group in enumerate(self.param_groups):
                for i, p in enumerate(group["params"]):
                    pos[id(p)] = (gi, i)
            cache = self._cache["positions"] = (self._epoch, pos)
        return cache[1]

    def apply(self, grads, trainable_variables=None):
        """Update ``trainable_variables`` with ``grads`` (Keras).  Without
        variables, ``grads`` must match the built variables one to one.  The
        first call builds the optimizer.  Returns ``iterations``."""
        grads = list(grads)
        if not grads:
            return self.iterations
        if trainable_variables is None:
            if not self.param_groups:
                raise ValueError(f"{self._label}.apply: when grads come without variables the "
                                 "optimizer must already be built; call "
                                 "optimizer.build(trainable_variables) first")
            variables = [p for g in self.param_groups for p in g["params"]]
            if len(variables) != len(grads):
                raise ValueError(f"{self._label}.apply: got {len(grads)} gradients but the "
                                 f"optimizer tracks {len(variables)} variables; pass one gradient "
                                 "per variable")
        else:
            variables = list(trainable_variables)
            if len(variables) != len(grads):
                raise ValueError(f"{self._label}.apply: got {len(grads)} gradients for "
                                 f"{len(variables)} variables")
            if not self.param_groups:
                self.build(variables)
        if all(g is None for g in grads):
            raise ValueError(f"{self._label}.apply: no gradients provided for any variable")
        pos = self._positions()
        per_group = [[None] * len(g["params"]) for g in self.param_groups]
        for v, g in zip(variables, grads):
            where = pos.get(id(v))
            if where is None:
                shape = getattr(v, "shape", None)
                raise ValueError(f"{self._label}: unknown variable (shape {shape}); this optimizer "
                                 "can only update the variables it was built with; create a new "
                                 "optimizer for a new set of variables")
            if g is not None and (not isinstance(g, _Tensor) or g.dtype != v.dtype):
                g = _C.tensor(g, dtype=v.dtype) if not isinstance(g, _Tensor) else g.astype(v.dtype)
            per_group[where[0]][where[1]] = g
        self._update([(gi, group, group["params"], per_group[gi])
                      for gi, group in enumerate(self.param_groups)
                      if any(x is not None for x in per_group[gi])])
        return self.iterations

    def apply_gradients(self, grads_and_vars):
        """``apply_gradients(zip(grads, variables))`` (Keras); returns ``iterations``."""
        pairs = list(grads_and_vars)
        return self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def scale_loss(self, loss):
        """The loss times ``loss_scale_factor`` (Keras; the update divides it back out)."""
        return loss if self.loss_scale_factor is None else loss * self.loss_scale_factor

    @property
    def variables(self):
        """Every state tensor, parameter by parameter (Keras's optimizer variables)."""
        out = []
        for group in self.param_groups:
            for p in group["params"]:
                s = self.state.get(p)
                if s:
                    out.extend(v for v in s.values() if isinstance(v, _Tensor))
        return out

    # ------------------------------------------------------------ state_dict

    def state_dict(self):
        """PyTorch's layout: ``{"state": {index: {name: tensor}}, "param_groups":
        [{options..., "params": [indices]}]}``, parameters numbered across groups
        in order; plus ``"iterations"``.  The tensors are the live states (copy
        them to keep a snapshot while training goes on)."""
        state, groups, index = {}, [], 0
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = list(range(index, index + len(group["params"])))
            for p in group["params"]:
                s = self.state.get(p)
                if s:
                    state[index] = dict(s)
                index += 1
            groups.append(packed)
        return {"state": state, "param_groups": groups, "iterations": self.iterations}

    def _load_tensor(self, value, p, where, name):
        if isinstance(value, _Tensor) and value.device != "cpu":
            value = value.cpu()          # converted on the host, then placed with p below
        try:
            t = _C.tensor(value, dtype=p.dtype)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{self._label}.load_state_dict: {where}[{name!r}] is not a tensor "
                            f"({type(value).__name__}): {e}") from None
        if t.shape != p.shape:
            raise ValueError(f"{self._label}.load_state_dict: {where}[{name!r}] has shape "
                             f"{tuple(t.shape)} but its parameter has shape {tuple(p.shape)}; "
                             "was the state_dict saved for another model?")
        # a state lives on its parameter's device (the update runs there)
        return t if t.device == p.device else t.to(p.device)

    def _load_scalar(self, value, where, name, dtype):
        if isinstance(value, _Tensor) and value.device != "cpu":
            value = value.cpu()          # steps and scalar states stay on the host
        t = _C.tensor(value, dtype=dtype)
        if t.numel() != 1:
            raise ValueError(f"{self._label}.load_state_dict: {where}[{name!r}] must hold one "
                             f"number; got shape {tuple(t.shape)}")
        return t.reshape(())

    def _load_param_state(self, p, saved, where, group):
        if not isinstance(saved, dict):
            raise TypeError(f"{self._label}.load_state_dict: {where} must be a dict of state "
                            f"tensors; got {type(saved).__name__}")
        known = set(self._all_slots) | {"step"}
        for name in saved:
            if name not in known:
                raise ValueError(f"{self._label}.load_state_dict: {where} has an unknown entry "
                                 f"{name!r}; {self._label} keeps {sorted(known)} (was the "
                                 "state_dict saved by another optimizer?)")
        out = {}
        for name, value in saved.items():
            if value is None:
                continue
            if name == "step" or name in self._scalar_slots:
                out[name] = self._load_scalar(value, where, name,
                                              _C.float32 if name == "step" else p.dtype)
            else:
                out[name] = self._load_tensor(value, p, where, name)
        for name in self._slots(group):
            if name not in out and not self._may_start(name):
                raise ValueError(f"{self._label}.load_state_dict: {where} has no {name!r} entry, "
                                 f"which {self._label} needs with these options")
        if "step" not in out:
            if not self._may_start("step"):
                raise ValueError(f"{self._label}.load_state_dict: {where} has no 'step' entry")
            out["step"] = _C.full((), 1.0 if out else 0.0, dtype=_C.float32)
        return out

    def _may_start(self, name):
        """True for a state a loaded dict may lack (it then starts afresh)."""
        return False

    def load_state_dict(self, state_dict):
        """Load a ``state_dict()`` of an optimizer over parameters of the same
        shapes (groups of the same sizes).  Options in the saved groups replace
        the current ones; states are copied (cast to the parameter's dtype),
        so the two optimizers share nothing afterwards."""
        label = self._label
        if not isinstance(state_dict, dict) or "state" not in state_dict or \
                "param_groups" not in state_dict:
            raise ValueError(f"{label}.load_state_dict: expected a dict with 'state' and "
                             "'param_groups' (what state_dict() returns)")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{label}.load_state_dict: the state_dict has {len(saved_groups)} "
                             f"parameter group(s) but this optimizer has {len(self.param_groups)}")
        by_index, new_groups = {}, []
        for gi, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            ids = list(saved["params"])
            if len(ids) != len(group["params"]):
                raise ValueError(f"{label}.load_state_dict: parameter group {gi} has "
                                 f"{len(ids)} parameters in the state_dict but "
                                 f"{len(group['params'])} in this optimizer")
            new = dict(group)
            new.update((k, v) for k, v in saved.items() if k != "params")
            self._check_group(new, f" of group {gi}")
            new_groups.append(new)
            for i, p in zip(ids, group["params"]):
                by_index[int(i)] = (p, new)
        new_state = {}
        for key, saved in dict(state_dict["state"]).items():
            try:
                index = int(key)
            except (TypeError, ValueError):
                raise ValueError(f"{label}.load_state_dict: state key {key!r} is not a parameter "
                                 "index") from None
            if index not in by_index:
                raise ValueError(f"{label}.load_state_dict: state[{index}] belongs to no parameter "
                                 "of the saved groups")
            p, group = by_index[index]
            new_state[p] = self._load_param_state(p, saved, f"state[{index}]", group)
        iterations = state_dict.get("iterations")
        if iterations is None:
            steps = [float(s["step"]) for s in new_state.values()]
            iterations = int(max(steps)) if steps else 0
        for group, new in zip(self.param_groups, new_groups):
            group.clear()
            group.update(new)
        self.state = new_state
        self.iterations = int(iterations)
        self._cache.clear()
        self._epoch += 1

    # ---------------------------------------------------------------- config

    _config_aliases = {"learning_rate": "lr", "epsilon": "eps", "rho": "alpha"}

    def get_config(self):
        """The constructor arguments that rebuild this optimizer (without state)."""
        import inspect
        config, emitted = {}, set()
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if name in ("self", "params") or param.kind in (param.VAR_KEYWORD,
                                                             param.VAR_POSITIONAL):
                continue
            if name in ("clipnorm", "clipvalue", "global_clipnorm", "loss_scale_factor", "name"):
                config[name] = getattr(self, name)
                continue
            key = self._config_aliases.get(name, name)
            if key in emitted and name not in ("beta_1", "beta_2"):
                continue            # the PyTorch and the Keras name of one option: keep the first
            if name in ("beta_1", "beta_2") and "betas" in emitted:
                continue            # betas=(b1, b2) came first: the constructor refuses both
            emitted.add(key)
            if name in ("beta_1", "beta_2"):
                value = self.defaults["betas"][0 if name == "beta_1" else 1]
            elif key in self.defaults:
                value = self.defaults[key]
            else:
                continue
            if key == "lr" and isinstance(value, LearningRateSchedule):
                value = _serialize_schedule(value)
            config[name] = value
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("learning_rate", "lr"):
            if isinstance(config.get(key), dict):
                from .schedules import deserialize
                config[key] = deserialize(config[key], custom_objects)
        return cls(**config)

    def __repr__(self):
        lines = [f"{self._label} ("]
        for gi, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {gi}")
            for k in sorted(group):
                if k not in ("params", "param_names"):
                    lines.append(f"    {k}: {group[k]}")
        if not self.param_groups:
            lines.append("not built: " + ", ".join(f"{k}={v}" for k, v in
                                                   sorted(self.defaults.items())))
        lines.append(")")
        return "\n".join(lines)
