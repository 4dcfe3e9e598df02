"""compile / fit / evaluate / predict, inherited by every Module.

Layered as Keras's trainer: ``train_step`` (forward, loss, backward, one
optimizer update, metric updates) -> an epoch loop -> a ``CallbackList``
(History and the progress bar added by default).  ``evaluate`` runs
``test_step`` and gives the loop its ``val_`` values.  A PyTorch user can
override ``train_step(data)`` -- ``data`` is ``(x, y, sample_weight)`` -- or
ignore all this and write a plain loop.

Nothing here converts a value to Python per batch: the loss and metrics
accumulate in tensors, and only a callback that reads the batch logs (the
progress bar when it redraws) turns them into floats.

The training state lives in the instance's ``__dict__`` (``optimizer``,
``loss``, ``history``, ``stop_training``, ``_compiled``), never in class
attributes, so a PyTorch model with a submodule called ``loss`` keeps it."""
import numbers

import numpy as np

from .. import _C
from ..autograd import no_grad
from .callback import CallbackList, LazyLogs
from . import data_adapter

_ACCURACY_NAMES = ("accuracy", "acc")


class _CompileState:
    __slots__ = ("optimizer", "loss", "loss_weights", "metric_ids", "weighted_ids",
                 "metrics", "loss_sum", "output_losses", "built", "reg_terms", "given",
                 "loss_plan", "simple")


class _Mean:
    """Running mean of a scalar tensor, weighted by batch size (the loss
    trackers).  A batch costs a detach and two appends; the sum is formed
    only when the value is read (a progress-bar redraw, the epoch's end)."""

    __slots__ = ("name", "values", "sizes", "count")

    def __init__(self, name):
        self.name = name
        self.reset_state()

    def reset_state(self):
        self.values, self.sizes, self.count = [], [], 0

    def update(self, value, n):
        self.values.append(value.detach())
        self.sizes.append(n)
        self.count += n

    def result(self):
        if not self.count:
            return _C.tensor(float("nan"))
        if len(self.values) > 1 or self.values[0].dtype != _C.float64:
            # fold what was read once (in float64), so later reads do not redo the epoch
            stacked = _C.stack([v.astype(_C.float64) for v in self.values])
            sizes = _C.tensor(self.sizes, dtype=_C.float64)
            if stacked.device.type != "cpu":
                sizes = sizes.to(stacked.device)
            total = (stacked * sizes).sum()
            self.values, self.sizes = [total / self.count], [self.count]
        return self.values[0].astype(_C.float64)


def _label(model):
    return model._label() if hasattr(model, "_label") else type(model).__name__


def _reduce_loss(value, sample_weight):
    """A plain loss function's per-sample values -> the batch mean."""
    if not isinstance(value, _C.Tensor):
        value = _C.asarray(value)
    if value.ndim == 0:
        return value
    if sample_weight is not None:
        sw = sample_weight.astype(value.dtype)
        while sw.ndim < value.ndim:
            sw = sw.unsqueeze(-1)
        value = value * sw
    return value.mean()


def _call_loss(fn, y, y_pred, sw):
    if getattr(fn, "_is_keras_loss", False):
        return fn(y, y_pred, sample_weight=sw)
    return _reduce_loss(fn(y, y_pred), sw)


def _output_items(y_pred):
    """[(name, tensor)] of the model's outputs; name None for a single output."""
    if isinstance(y_pred, dict):
        return list(y_pred.items())
    if isinstance(y_pred, (list, tuple)):
        return [("output_%d" % i, v) for i, v in enumerate(y_pred)]
    return [(None, y_pred)]


def _select(struct, name, index, what, op):
    """The part of y / sample_weight that belongs to one output."""
    if struct is None:
        return None
    if name is None:
        return struct
    if isinstance(struct, dict):
        if name not in struct:
            raise ValueError("%s: the model has an output %r but %s has keys %s; give %s as a "
                             "dict with one entry per output" % (op, name, what,
                                                                 sorted(struct), what))
        return struct[name]
    if isinstance(struct, (list, tuple)):
        if index >= len(struct):
            raise ValueError("%s: the model has more outputs than %s has entries (%d); give "
                             "one per output" % (op, what, len(struct)))
        return struct[index]
    return struct


def _per_output(spec, outputs, what):
    """Spread a compile argument (one value, a list or a dict) over the outputs."""
    names = [n for n, _ in outputs]
    if names == [None]:
        return [spec]
    if isinstance(spec, dict):
        unknown = [k for k in spec if k not in names]
        if unknown:
            raise ValueError("compile: %s has keys %s that name no output; outputs: %s"
                             % (what, unknown, names))
        return [spec.get(n) for n in names]
    if isinstance(spec, (list, tuple)) and not (what.startswith("metrics") and
                                                not any(isinstance(s, (list, tuple))
                                                        for s in spec)):
        if len(spec) != len(names):
            raise ValueError("compile: %s has %d entries but the model has %d outputs (%s)"
                             % (what, len(spec), len(names), names))
        return list(spec)
    return [spec] * len(names)


def _resolve_metric(identifier, loss):
    """A metric object; the string "accuracy" becomes the accuracy that fits
    the loss, as in Keras."""
    from .. import metrics as M
    from .. import losses as L
    if isinstance(identifier, str) and identifier.lower() in _ACCURACY_NAMES:
        name = identifier
        loss = L.get(loss) if isinstance(loss, str) else loss
        if isinstance(loss, L.SparseCategoricalCrossentropy):
            return M.SparseCategoricalAccuracy(name=name)
        if isinstance(loss, L.CategoricalCrossentropy):
            return M.CategoricalAccuracy(name=name)
        if isinstance(loss, L.BinaryCrossentropy):
            return M.BinaryAccuracy(name=name)
        return _ShapeAccuracy(name)
    m = M.get(identifier)
    if isinstance(identifier, str):
        m.name = identifier         # Keras logs a metric given by name under that name
    return m


class _ShapeAccuracy:
    """"accuracy" with a loss that does not say which kind: picked from the
    shapes of the first batch (Keras's rule)."""

    def __init__(self, name):
        self.name = name
        self.metric = None

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.metric is None:
            from .. import metrics as M
            yp = tuple(y_pred.shape)
            yt = tuple(getattr(y_true, "shape", ()))
            if len(yp) >= 1 and yp[-1] == 1 or len(yp) == 1:
                self.metric = M.BinaryAccuracy(name=self.name)
            elif len(yt) == len(yp) and yt[-1] == yp[-1]:
                self.metric = M.CategoricalAccuracy(name=self.name)
            else:
                self.metric = M.SparseCategoricalAccuracy(name=self.name)
        self.metric.update_state(y_true, y_pred, sample_weight)

    def result(self):
        return self.metric.result() if self.metric is not None else _C.tensor(float("nan"))

    def reset_state(self):
        if self.metric is not None:
            self.metric.reset_state()

    def get_config(self):
        return {"name": self.name}


def _check_fraction(op, name, value):
    if not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError("%s: %s must be a number in [0, 1); got %r" % (op, name, value))


def _check_verbose(op, verbose):
    if verbose not in ("auto", 0, 1, 2):
        raise ValueError("%s: verbose must be 'auto', 0, 1 or 2; got %r" % (op, verbose))


def _check_positive_int(op, name, value, allow_none=True):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError("%s: %s must be a positive integer%s; got %r"
                         % (op, name, " or None" if allow_none else "", value))


def _to_numpy(out):
    if isinstance(out, _C.Tensor):
        return np.asarray(out if out.device.type == "cpu" else out.cpu())
    if isinstance(out, dict):
        return {k: _to_numpy(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return type(out)(_to_numpy(v) for v in out)
    return out


def _concat(parts):
    first = parts[0]
    if isinstance(first, dict):
        return {k: _concat([p[k] for p in parts]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(_concat([p[i] for p in parts]) for i in range(len(first)))
    if len(parts) == 1:
        return first
    return np.concatenate(parts, axis=0)


class Trainer:
    """The Keras training API; mixed into Module."""

    # ------------------------------------------------------------ compile

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=None, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True):
        """Choose the optimizer, the loss and the metrics for ``fit``.

        Each may be a Keras name (``"adam"``, ``"sparse_categorical_crossentropy"``,
        ``"accuracy"``) or an object; ``loss`` may also be any ``fn(y_true,
        y_pred)``.  Several outputs take a list or a dict of losses (and
        ``loss_weights``), and ``metrics`` as a list of lists or a dict.
        ``run_eagerly``, ``jit_compile`` and ``steps_per_execution`` are
        accepted for Keras compatibility: pyframe always runs eagerly."""
        from .. import optimizers, losses
        label = "%s.compile" % _label(self)
        if loss is None:
            raise ValueError("%s: give a loss (a name such as 'mse' or "
                             "'sparse_categorical_crossentropy', a pf.losses object or a "
                             "function(y_true, y_pred))" % label)
        try:
            opt = optimizers.get(optimizer)
        except ValueError as e:
            raise ValueError("%s: %s" % (label, e)) from None
        if not hasattr(opt, "step"):
            raise TypeError("%s: optimizer must be a name or a pf.optimizers / pf.optim "
                            "optimizer; got %s" % (label, type(optimizer).__name__))
        if auto_scale_loss and not isinstance(opt, optimizers.LossScaleOptimizer) and any(
                getattr(m, "_dtype_policy", None) is not None and
                m._dtype_policy.name == "mixed_float16" for m in self.modules()):
            # float16's range needs loss scaling (Keras wraps the optimizer the same way)
            opt = optimizers.LossScaleOptimizer(opt)

        def get_loss(spec):
            if spec is None:
                return None
            try:
                return losses.get(spec)
            except (ValueError, TypeError) as e:
                raise type(e)("%s: %s" % (label, e)) from None
        if isinstance(loss, dict):
            loss_fn = {k: get_loss(v) for k, v in loss.items()}
        elif isinstance(loss, (list, tuple)):
            loss_fn = [get_loss(v) for v in loss]
        else:
            loss_fn = get_loss(loss)
        if loss_weights is not None and not isinstance(loss_weights, (dict, list, tuple)):
            raise TypeError("%s: loss_weights must be a list or a dict (one weight per output); "
                            "got %s" % (label, type(loss_weights).__name__))
        # metric names are checked now, so a typo fails here rather than in fit
        for ids in (metrics, weighted_metrics):
            for m in _flat_ids(ids):
                if isinstance(m, str) and m.lower() not in _ACCURACY_NAMES:
                    from .. import metrics as M
                    try:
                        M.get(m)
                    except ValueError as e:
                        raise ValueError("%s: %s" % (label, e)) from None
        state = _CompileState()
        state.optimizer, state.loss, state.loss_weights = opt, loss_fn, loss_weights
        state.metric_ids, state.weighted_ids = metrics, weighted_metrics
        state.metrics, state.output_losses = [], []
        state.loss_sum = _Mean("loss")
        state.built = False
        state.reg_terms = None
        state.given = {"optimizer": optimizer, "loss": loss, "metrics": metrics,
                       "loss_weights": loss_weights, "weighted_metrics": weighted_metrics}
        d = self.__dict__
        d["_compiled"] = state
        taken = set(d.get("_parameters", ())) | set(d.get("_modules", ())) | \
            set(d.get("_buffers", ()))
        for k, v in (("optimizer", opt), ("loss", loss_fn), ("compiled", True)):
            if k not in taken:
                d[k] = v
        d["stop_training"] = False
        return None

    def _compile_state(self, op):
        state = self.__dict__.get("_compiled")
        if state is None:
            raise RuntimeError("%s.%s: the model must be compiled first: call model.compile("
                               "optimizer=..., loss=..., metrics=[...])" % (_label(self), op))
        return state

    def _build_metrics(self, state, y_pred):
        """Per-output metric objects and loss trackers, once the outputs are known."""
        outputs = _output_items(y_pred)
        losses = _per_output(state.loss, outputs, "loss")
        state.metrics = []
        state.output_losses = []
        multi = outputs[0][0] is not None
        weights = _per_output(state.loss_weights, outputs, "loss_weights") \
            if state.loss_weights is not None else [1.0] * len(outputs)
        plan = []
        for i, ((name, _), fn, w) in enumerate(zip(outputs, losses, weights)):
            plan.append((name, i, fn, 1.0 if w is None else float(w)))
            if multi and fn is not None:
                state.output_losses.append(_Mean(name + "_loss"))
        state.loss_plan = plan
        state.simple = len(plan) == 1 and plan[0][0] is None and plan[0][2] is not None \
            and plan[0][3] == 1.0
        seen = {"loss"} | {m.name for m in state.output_losses}
        for ids, weighted in ((state.metric_ids, False), (state.weighted_ids, True)):
            if ids is None:
                continue
            if multi:
                per = _per_output(ids, outputs, "metrics")
            else:
                per = [ids]
            for (name, i, fn, _), group in zip(plan, per):
                if group is None:
                    continue
                if not isinstance(group, (list, tuple)):
                    group = [group]
                for ident in group:
                    m = _resolve_metric(ident, fn)
                    base = m.name
                    if weighted and base in seen:
                        base = "weighted_" + base
                    full = base if name is None else "%s_%s" % (name, base)
                    if full in seen:
                        raise ValueError("compile: two metrics are named %r; give one of them "
                                         "name=..." % full)
                    seen.add(full)
                    state.metrics.append((full, name, i, m, weighted))
        state.built = True

    # ------------------------------------------------------------ steps

    def _regularization(self, state):
        if state.reg_terms is None:
            state.reg_terms = [(m, name, reg) for m in self.modules()
                               for name, reg in getattr(m, "_regularized", ())]
        if not state.reg_terms:
            return ()
        return [reg(getattr(m, name)) for m, name, reg in state.reg_terms
                if getattr(m, name) is not None]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        """The compiled loss (summed over outputs with ``loss_weights``) plus
        the layers' weight penalties; per-output losses are tracked too."""
        state = self._compile_state("compute_loss")
        if not state.built:
            self._build_metrics(state, y_pred)
        if y is None:
            raise ValueError("%s: fit/evaluate need targets y; got y=None (give y, or yield "
                             "(x, y) pairs from the dataset)" % _label(self))
        if state.simple and not self._regularization(state):
            # one output, weight 1, no penalties: the loss itself
            return _call_loss(state.loss, y, y_pred, sample_weight)
        outputs = _output_items(y_pred)
        total = None
        tracked = iter(state.output_losses)
        for (name, i, fn, w), (_, out) in zip(state.loss_plan, outputs):
            if fn is None:
                continue
            yi = _select(y, name, i, "y", "fit")
            swi = _select(sample_weight, name, i, "sample_weight", "fit")
            value = _call_loss(fn, yi, out, swi)
            if name is not None:
                next(tracked).update(value, _batch_len(out))
            if w != 1.0:
                value = value * w
            total = value if total is None else total + value
        for term in self._regularization(state):
            total = total + term
        return total

    def _update_metrics(self, state, y, y_pred, sample_weight, loss):
        n = _batch_len(y_pred)
        state.loss_sum.update(loss, n)
        if not state.metrics:
            return
        prev = _C._set_grad_enabled(False)
        try:
            if state.simple:
                out = y_pred.detach()
                for _, _, _, m, weighted in state.metrics:
                    m.update_state(y, out, sample_weight=sample_weight if weighted else None)
                return
            outputs = _output_items(y_pred)
            for full, name, i, m, weighted in state.metrics:
                out = outputs[i][1].detach()
                sw = _select(sample_weight, name, i, "sample_weight", "fit") \
                    if weighted else None
                m.update_state(_select(y, name, i, "y", "fit"), out, sample_weight=sw)
        finally:
            _C._set_grad_enabled(prev)

    def train_step(self, data):
        """One update on a batch ``data = (x, y, sample_weight)``: forward, loss,
        backward, optimizer step, metrics.  Override it for custom training;
        return None (the compiled metrics are reported) or a dict of values to
        report."""
        x, y, sw = data
        state = self.__dict__["_compiled"]
        y_pred = self(x)
        loss = self.compute_loss(x, y, y_pred, sw)
        opt = state.optimizer
        if not opt.built:
            opt.build([p for p in self.parameters() if p.requires_grad])
        opt.zero_grad()
        (opt.scale_loss(loss) if opt.loss_scale_factor else loss).backward()
        opt.step()
        self._update_metrics(state, y, y_pred, sw, loss)
        return None

    def test_step(self, data):
        """Loss and metrics on a batch, without updating the weights."""
        x, y, sw = data
        state = self.__dict__["_compiled"]
        y_pred = self(x)
        loss = self.compute_loss(x, y, y_pred, sw)
        self._update_metrics(state, y, y_pred, sw, loss)
        return None

    def predict_step(self, data):
        """The model's output on a batch (``data = (x, None, None)``)."""
        return self(data[0])

    # ------------------------------------------------------------ metrics

    def _trackers(self, state):
        out = [("loss", state.loss_sum)]
        out += [(m.name, m) for m in state.output_losses]
        out += [(full, m) for full, _, _, m, _ in state.metrics]
        return out

    def reset_metrics(self):
        state = self.__dict__.get("_compiled")
        if state is None:
            return
        for _, m in self._trackers(state):
            m.reset_state()

    def _thunks(self, state):
        return {name: m.result for name, m in self._trackers(state)}

    def _logs(self, state, returned):
        """What a custom train_step/test_step returned, else the compiled
        trackers' values (computed when read)."""
        return returned if returned is not None else LazyLogs(self._thunks(state))

    def get_metrics_result(self):
        """The current values of the loss and metrics, as Python floats."""
        state = self._compile_state("get_metrics_result")
        return dict(LazyLogs(self._thunks(state)))

    @property
    def metrics_names(self):
        state = self.__dict__.get("_compiled")
        if state is None:
            return []
        if not state.built:
            return ["loss"]
        return [name for name, _ in self._trackers(state)]

    # ------------------------------------------------------------ loops

    def _model_dtype(self):
        for p in self.parameters():
            if p.dtype.is_floating_point:
                return p.dtype
        return getattr(self, "_dtype", None) or _C.float32

    def _epoch_batches(self, data, batch_size, shuffle, steps, class_weight=None):
        if isinstance(data, data_adapter.StreamData):
            it = data.batches(steps)
        else:
            it = data.batches(batch_size, shuffle)
            if steps is not None:
                it = _limit(it, steps)
        # floating inputs of another precision are cast to the model's dtype (looked
        # up once per epoch: the model is built by the first batch at the latest)
        dt = None
        dev = None
        for x, y, sw in it:
            if dt is None:
                dt = self._model_dtype()
                dev = self._model_device()
                if dev is not None:
                    self._place_trackers(dev)
            if class_weight is not None:
                sw = class_weight(y, sw)
            if dev is not None:
                # a model on a GPU: each batch goes there (the metrics went above)
                x, y, sw = data_adapter.map_structure(
                    lambda t: t.to(dev, non_blocking=True) if isinstance(t, _C.Tensor) else t,
                    (x, y, sw))
            if isinstance(x, _C.Tensor):
                if x.dtype != dt and x.dtype.is_floating_point:
                    x = x.astype(dt)
            else:
                x = data_adapter.map_structure(
                    lambda t: t.astype(dt) if t.dtype.is_floating_point and t.dtype != dt
                    else t, x)
            yield x, y, sw

    def _model_device(self):
        """The device of the model's weights when it is not the cpu, else None.
        A model not built yet answers with the device ``to()`` gave its layers."""
        for p in self.parameters():
            return p.device if p.device.type != "cpu" else None
        for m in self.modules():
            dev = m.__dict__.get("_device")
            if dev is not None:
                dev = _C.device(dev)
                return dev if dev.type != "cpu" else None
        return None

    def _place_trackers(self, dev):
        """The compiled metrics' state onto the model's device (once: a no-op after)."""
        state = self.__dict__.get("_compiled")
        if state is None:
            return
        for _, m in self._trackers(state):
            to_device = getattr(m, "_to_device", None)
            if to_device is not None:
                to_device(dev)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs; returns a ``History``.

        ``x``/``y``: NumPy arrays, tensors, pandas DataFrames/Series, lists,
        or lists/dicts of them for several inputs/outputs; or a pf.data
        Dataset/DataLoader or a generator yielding ``(x, y)`` or ``(x, y,
        sample_weight)`` (then no ``y``).  ``validation_split`` holds out the
        last fraction of array data, before shuffling."""
        op = "%s.fit" % _label(self)
        state = self._compile_state("fit")
        _check_positive_int(op, "batch_size", batch_size)
        _check_positive_int(op, "epochs", epochs, allow_none=False)
        _check_positive_int(op, "steps_per_epoch", steps_per_epoch)
        _check_positive_int(op, "validation_steps", validation_steps)
        _check_positive_int(op, "validation_batch_size", validation_batch_size)
        _check_positive_int(op, "validation_freq", validation_freq, allow_none=False)
        _check_fraction(op, "validation_split", validation_split)
        _check_verbose(op, verbose)
        if not isinstance(initial_epoch, numbers.Integral) or not 0 <= initial_epoch:
            raise ValueError("%s: initial_epoch must be an integer >= 0; got %r"
                             % (op, initial_epoch))
        if shuffle not in (True, False):
            raise ValueError("%s: shuffle must be True or False; got %r" % (op, shuffle))
        batch_size = batch_size or 32
        data = data_adapter.adapt(x, y, sample_weight, batch_size=batch_size, shuffle=shuffle,
                                  op=op)
        val = None
        if validation_split:
            if isinstance(data, data_adapter.StreamData):
                raise ValueError("%s: validation_split works with arrays, tensors and pandas "
                                 "data only; x is a %s. Give validation_data=(x_val, y_val) or "
                                 "a validation Dataset instead" % (op, data.kind))
            if validation_data is None:
                data, val = data.split(validation_split)
        if validation_data is not None:
            val = _adapt_validation(validation_data, validation_batch_size or batch_size, op)
        cw = _class_weight_fn(class_weight, data, op) if class_weight is not None else None
        steps = steps_per_epoch or data.num_batches(batch_size)

        cbs = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=self,
                           epochs=epochs, steps=steps, verbose=1 if verbose == "auto"
                           else verbose)
        d = self.__dict__
        d["stop_training"] = False
        was_training = self.training
        train_step = self.train_step
        batch_end = cbs.wants("on_train_batch_end")
        batch_begin = cbs.wants("on_train_batch_begin")
        cbs.on_train_begin()
        # BackupAndRestore leaves where to resume: an epoch, the batches of it
        # already done, and the generator's state at the epoch's start and now
        resume = d.pop("_resume", None) or {}
        start = max(initial_epoch, resume.get("epoch", 0))
        skip = resume.get("step", 0) if resume.get("epoch", -1) >= initial_epoch else 0
        epoch_logs = {}
        try:
            for epoch in range(start, epochs):
                self.reset_metrics()
                if resume.get("rng_epoch_start") is not None:
                    _C.set_rng_state(tuple(resume.pop("rng_epoch_start")))
                cbs.on_epoch_begin(epoch)
                self.train()
                logs = None
                for step, batch in enumerate(self._epoch_batches(data, batch_size, shuffle,
                                                                 steps_per_epoch, cw)):
                    if skip:
                        # replay the epoch's order up to the batch where the backup was made
                        if step < skip:
                            continue
                        skip = 0
                        if resume.get("rng") is not None:
                            _C.set_rng_state(tuple(resume["rng"]))
                    if batch_begin:
                        cbs.on_train_batch_begin(step)
                    returned = train_step(batch)
                    if returned is not None:
                        logs = _returned_logs(returned)
                    if batch_end:
                        cbs.on_train_batch_end(step, self._logs(state, logs))
                    if d["stop_training"]:
                        break
                epoch_logs = dict(self._logs(state, logs))
                if val is not None and (epoch + 1) % validation_freq == 0:
                    val_logs = self._evaluate_data(val, validation_batch_size or batch_size,
                                                   validation_steps, cbs)
                    epoch_logs.update(("val_" + k, v) for k, v in val_logs.items())
                cbs.on_epoch_end(epoch, epoch_logs)
                if d["stop_training"]:
                    break
        finally:
            self.train(was_training)
        cbs.on_train_end(epoch_logs)
        return cbs.history

    def _evaluate_data(self, data, batch_size, steps, cbs):
        state = self.__dict__["_compiled"]
        self.reset_metrics()
        self.eval()
        cbs.on_test_begin()
        batch_end = cbs.wants("on_test_batch_end")
        batch_begin = cbs.wants("on_test_batch_begin")
        test_step = self.test_step
        logs = None
        with no_grad():
            for step, batch in enumerate(self._epoch_batches(data, batch_size, False, steps)):
                if batch_begin:
                    cbs.on_test_batch_begin(step)
                returned = test_step(batch)
                if returned is not None:
                    logs = _returned_logs(returned)
                if batch_end:
                    cbs.on_test_batch_end(step, self._logs(state, logs))
        if not state.built:
            raise ValueError("%s.evaluate: the data gave no batches" % _label(self))
        out = dict(self._logs(state, logs))
        cbs.on_test_end(out)
        return out

    def _loop_setup(self, what, x, y, sample_weight, batch_size, steps, verbose, callbacks):
        """evaluate's and predict's shared start: checked arguments, the data
        adapter and the callbacks."""
        op = "%s.%s" % (_label(self), what)
        _check_positive_int(op, "batch_size", batch_size)
        _check_positive_int(op, "steps", steps)
        _check_verbose(op, verbose)
        batch_size = batch_size or 32
        data = data_adapter.adapt(x, y, sample_weight, batch_size=batch_size, op=op)
        cbs = CallbackList(callbacks, add_progbar=verbose != 0, model=self,
                           steps=steps or data.num_batches(batch_size),
                           verbose=1 if verbose == "auto" else verbose)
        return data, cbs, batch_size

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """The loss and metrics over the data: a float when there are no
        metrics, else a list in ``metrics_names`` order (or a dict)."""
        self._compile_state("evaluate")
        data, cbs, batch_size = self._loop_setup("evaluate", x, y, sample_weight, batch_size,
                                                 steps, verbose, callbacks)
        was_training = self.training
        try:
            logs = self._evaluate_data(data, batch_size, steps, cbs)
        finally:
            self.train(was_training)
        return _format_results(logs, return_dict)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """The model's outputs over ``x``, batch by batch, as NumPy arrays
        (a list or dict of them for several outputs)."""
        op = "%s.predict" % _label(self)
        data, cbs, batch_size = self._loop_setup("predict", x, None, None, batch_size, steps,
                                                 verbose, callbacks)
        was_training = self.training
        self.eval()
        parts = []
        cbs.on_predict_begin()
        batch_end = cbs.wants("on_predict_batch_end")
        try:
            with no_grad():
                for step, batch in enumerate(self._epoch_batches(data, batch_size, False,
                                                                 steps)):
                    out = self.predict_step(batch)
                    parts.append(_to_numpy(out))
                    if batch_end:
                        cbs.on_predict_batch_end(step, {"outputs": out})
        finally:
            self.train(was_training)
        cbs.on_predict_end()
        if not parts:
            raise ValueError("%s: x gave no batches" % op)
        return _concat(parts)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One ``train_step`` on this batch; returns the loss and metrics of
        this batch alone."""
        op = "%s.train_on_batch" % _label(self)
        self._compile_state("train_on_batch")
        data = data_adapter.ArrayData(x, y, sample_weight, op=op)
        cw = _class_weight_fn(class_weight, data, op) if class_weight is not None else None
        self.reset_metrics()
        was_training = self.training
        self.train()
        try:
            logs = None
            for batch in self._epoch_batches(data, max(data.n, 1), False, None, cw):
                returned = self.train_step(batch)
                logs = _returned_logs(returned) if returned is not None else None
        finally:
            self.train(was_training)
        return _format_results(dict(self._logs(self.__dict__["_compiled"], logs)), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        op = "%s.test_on_batch" % _label(self)
        self._compile_state("test_on_batch")
        data = data_adapter.ArrayData(x, y, sample_weight, op=op)
        cbs = CallbackList(None, model=self)
        was_training = self.training
        try:
            logs = self._evaluate_data(data, max(data.n, 1), None, cbs)
        finally:
            self.train(was_training)
        return _format_results(logs, return_dict)

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=max(data_adapter.ArrayData(
            x, op="%s.predict_on_batch" % _label(self), check=False).n, 1), verbose=0)

    # ------------------------------------------------------------ saving

    def save(self, filepath, include_optimizer=True):
        """One safetensors file: the architecture (JSON), the weights and, when
        compiled, the optimizer state.  ``pf.load_model`` reads it back."""
        from ..io import save_model
        save_model(self, filepath, include_optimizer=include_optimizer)

    def save_weights(self, filepath):
        """The weights alone (the state_dict) in a safetensors file."""
        from ..io import save_weights
        save_weights(self, filepath)

    def load_weights(self, filepath, strict=True):
        """Load weights saved by ``save_weights`` (or ``save``); nothing changes
        when the file does not fit the model."""
        from ..io import load_weights
        return load_weights(self, filepath, strict=strict)

    def get_compile_config(self):
        """The compile arguments as JSON-able data (None before compile), so a
        saved model can be compiled again when it is loaded."""
        state = self.__dict__.get("_compiled")
        if state is None:
            return None
        from .. import optimizers
        given = state.given
        opt = state.optimizer
        return {"optimizer": dict(optimizers.serialize(opt), module=type(opt).__module__),
                "loss": _serialize(given["loss"], "loss"),
                "metrics": _serialize(given["metrics"], "metric"),
                "weighted_metrics": _serialize(given["weighted_metrics"], "metric"),
                "loss_weights": given["loss_weights"]}

    def compile_from_config(self, config):
        """compile() with what get_compile_config() returned."""
        if not isinstance(config, dict):
            raise TypeError("%s.compile_from_config: expected a dict from get_compile_config(); "
                            "got %s" % (_label(self), type(config).__name__))
        self.compile(optimizer=_deserialize_optimizer(config["optimizer"]),
                     loss=_deserialize(config.get("loss"), "loss"),
                     metrics=_deserialize(config.get("metrics"), "metric"),
                     weighted_metrics=_deserialize(config.get("weighted_metrics"), "metric"),
                     loss_weights=config.get("loss_weights"))


def _flat_ids(ids):
    if ids is None:
        return []
    if isinstance(ids, dict):
        return [m for v in ids.values() for m in _flat_ids(v)]
    if isinstance(ids, (list, tuple)):
        return [m for v in ids for m in _flat_ids(v)]
    return [ids]


def _serialize(spec, kind):
    if spec is None or isinstance(spec, (str, int, float)):
        return spec
    if isinstance(spec, dict):
        return {k: _serialize(v, kind) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [_serialize(v, kind) for v in spec]
    if isinstance(spec, type):
        return {"class_name": spec.__name__, "module": spec.__module__, "config": None}
    if hasattr(spec, "get_config"):
        return {"class_name": type(spec).__name__, "module": type(spec).__module__,
                "config": spec.get_config()}
    raise ValueError("cannot save the %s %r with the model: only names, pf.%ss objects and "
                     "registered classes with get_config() can be saved; compile the loaded "
                     "model again yourself (load_model(path, compile=False))"
                     % (kind, spec, kind if kind == "metric" else "losse"))


def _find_class(entry, kind):
    import importlib
    name, module = entry.get("class_name"), entry.get("module") or ""
    home = {"loss": "pyframe.losses", "metric": "pyframe.metrics"}[kind]
    cls = None
    if module.startswith("pyframe."):
        cls = getattr(importlib.import_module(home), name, None)
    if cls is None:
        try:
            from ..io import get_registered_object
            cls = get_registered_object(name)
        except ImportError:
            cls = None
    if cls is None:
        raise ValueError("cannot rebuild the %s %r: it is neither a pyframe class nor "
                         "registered; register it with @pf.saving.register_serializable() or "
                         "pass custom_objects" % (kind, name))
    return cls


def _deserialize(spec, kind):
    if spec is None or isinstance(spec, (str, int, float)):
        return spec
    if isinstance(spec, list):
        return [_deserialize(v, kind) for v in spec]
    if isinstance(spec, dict) and "class_name" in spec:
        cls = _find_class(spec, kind)
        cfg = spec.get("config")
        return cls() if cfg is None else cls.from_config(cfg)
    if isinstance(spec, dict):
        return {k: _deserialize(v, kind) for k, v in spec.items()}
    raise ValueError("cannot rebuild a %s from %r" % (kind, spec))


def _deserialize_optimizer(config):
    from .. import optimizers, optim
    module = str(config.get("module", ""))
    if module.startswith("pyframe.optim.") and module != "pyframe.optimizers":
        cls = getattr(optim, str(config.get("class_name")), None)
        if cls is not None and isinstance(cls, type) and issubclass(cls, optimizers.Optimizer):
            return cls.from_config(config.get("config", {}))
    return optimizers.deserialize({k: v for k, v in config.items() if k != "module"})


def _returned_logs(returned):
    if not isinstance(returned, dict):
        raise TypeError("train_step/test_step must return None or a dict of values to report; "
                        "got %s" % type(returned).__name__)
    return LazyLogs({k: (lambda v=v: v) for k, v in returned.items()})


def _format_results(logs, return_dict):
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def _batch_len(out):
    if isinstance(out, _C.Tensor):
        return out.shape[0] if out.ndim else 1
    if isinstance(out, dict):
        return _batch_len(next(iter(out.values())))
    if isinstance(out, (list, tuple)):
        return _batch_len(out[0])
    return 1


def _limit(it, steps):
    for i, batch in enumerate(it):
        if i >= steps:
            return
        yield batch


def _adapt_validation(validation_data, batch_size, op):
    if data_adapter.is_stream(validation_data):
        return data_adapter.adapt(validation_data, batch_size=batch_size, op=op)
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError("%s: validation_data must be (x_val, y_val), (x_val, y_val, "
                         "sample_weight), a Dataset, a DataLoader or a generator; got %s"
                         % (op, type(validation_data).__name__ if not isinstance(
                             validation_data, (tuple, list)) else
                            "a sequence of length %d" % len(validation_data)))
    vx, vy = validation_data[0], validation_data[1]
    vsw = validation_data[2] if len(validation_data) == 3 else None
    return data_adapter.ArrayData(vx, vy, vsw, op=op + " (validation_data)")


def _class_weight_fn(class_weight, data, op):
    """A function (y, sample_weight) -> sample_weight with each sample's class weight."""
    if not isinstance(class_weight, dict) or not class_weight:
        raise TypeError("%s: class_weight must be a non-empty dict {class index: weight}; got %r"
                        % (op, class_weight))
    try:
        keys = sorted(int(k) for k in class_weight)
    except (TypeError, ValueError):
        raise ValueError("%s: class_weight keys must be class indices (integers); got %s"
                         % (op, sorted(class_weight, key=str))) from None
    if keys[0] < 0:
        raise ValueError("%s: class_weight has a negative class index %d" % (op, keys[0]))
    missing = sorted(set(range(keys[-1] + 1)) - set(keys))
    if missing:
        raise ValueError("%s: class_weight gives no weight for class(es) %s; give one for every "
                         "class 0..%d" % (op, missing, keys[-1]))
    if isinstance(data, data_adapter.ArrayData) and not isinstance(data.y, data_adapter.Leaf) \
            and data.y is not None:
        raise ValueError("%s: class_weight works with a single output only; for several "
                         "outputs give sample_weight per output" % op)
    table = _C.tensor([float(class_weight[k]) for k in keys], dtype=_C.float32)
    n_classes = len(keys)

    def labels_of(y):
        if y.ndim >= 2 and y.shape[-1] > 1:
            return _C.argmax(y, axis=-1).reshape(-1)
        return y.reshape(-1).astype(_C.int64)

    if isinstance(data, data_adapter.ArrayData) and data.labels() is not None:
        labels = labels_of(data.labels())
        if labels.size:
            lo, hi = int(labels.min()), int(labels.max())
            if lo < 0 or hi >= n_classes:
                raise ValueError("%s: y holds class %d but class_weight covers classes 0..%d; "
                                 "give a weight for every class"
                                 % (op, hi if hi >= n_classes else lo, n_classes - 1))

    def apply(y, sw):
        if y is None:
            raise ValueError("%s: class_weight needs targets y" % op)
        try:
            w = _C.take(table, labels_of(y), axis=0)
        except IndexError:
            raise ValueError("%s: a batch holds a class outside 0..%d, the classes class_weight "
                             "covers" % (op, n_classes - 1)) from None
        if sw is not None:
            w = w * sw.reshape(-1).astype(_C.float32)
        return w
    return apply


