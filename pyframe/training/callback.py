"""The callback protocol of fit/evaluate/predict, as Keras defines it, and the
two callbacks every fit gets: History and the progress bar.

A callback overrides any of the ``on_*`` hooks.  ``CallbackList`` calls them
in order; batch hooks are only called for callbacks that override them, so a
fit with the default callbacks pays for no Python call per batch beyond the
progress bar's.

Batch logs are a mapping whose values are computed (a metric's ``result()``,
then a Python float) only when a callback reads them: values leave the
compute path only when something wants to show them.  Epoch logs are plain
dicts of floats."""
import collections.abc
import sys
import time

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger"]


class Callback:
    """Base class: override the hooks you need.  ``self.model`` is the model
    being trained and ``self.params`` holds ``epochs``, ``steps`` and
    ``verbose``."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass


_BATCH_HOOKS = tuple("on_%s_batch_%s" % (mode, when) for mode in ("train", "test", "predict")
                     for when in ("begin", "end"))


class LazyLogs(collections.abc.Mapping):
    """Batch logs: ``{name: float}``, each value computed on first access from
    a thunk (a metric's result)."""

    __slots__ = ("_thunks", "_values")

    def __init__(self, thunks):
        self._thunks = thunks
        self._values = {}

    def __getitem__(self, key):
        try:
            return self._values[key]
        except KeyError:
            pass
        value = _pythonify(self._thunks[key]())
        self._values[key] = value
        return value

    def __iter__(self):
        return iter(self._thunks)

    def __len__(self):
        return len(self._thunks)

    def __repr__(self):
        return repr(dict(self))


def _pythonify(value):
    """A float for 0-d tensors and one-element arrays; a list for vectors
    (per-class F1, say); other values as they are."""
    if hasattr(value, "ndim") and hasattr(value, "tolist"):
        return float(value) if value.ndim == 0 or getattr(value, "size", 2) == 1 \
            else value.tolist()
    return value


class CallbackList(Callback):
    """The user's callbacks plus History and the progress bar (added unless
    already given), called in order."""

    def __init__(self, callbacks=None, *, add_history=False, add_progbar=False, model=None,
                 **params):
        super().__init__()
        if callbacks is None:
            callbacks = []
        elif isinstance(callbacks, Callback):
            callbacks = [callbacks]
        else:
            try:
                callbacks = list(callbacks)
            except TypeError:
                raise TypeError("callbacks: expected a list of pf.callbacks.Callback objects; "
                                "got %s" % type(callbacks).__name__) from None
        for i, cb in enumerate(callbacks):
            if not isinstance(cb, Callback):
                raise TypeError("callbacks[%d]: expected a pf.callbacks.Callback (subclass it and "
                                "override the on_* hooks you need); got %s"
                                % (i, type(cb).__name__))
        self.callbacks = list(callbacks)
        self.history = next((c for c in self.callbacks if isinstance(c, History)), None)
        if add_history and self.history is None:
            self.history = History()
            self.callbacks.append(self.history)
        if add_progbar and not any(isinstance(c, ProgbarLogger) for c in self.callbacks):
            self.callbacks.append(ProgbarLogger())
        if model is not None:
            self.set_model(model)
        self.set_params(params)

    def set_model(self, model):
        super().set_model(model)
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for cb in self.callbacks:
            cb.set_params(params)
        self._refresh_batch_hooks()

    def _refresh_batch_hooks(self):
        # A batch hook is worth a Python call only where a callback overrides it
        # (in its class, or on the instance: a LambdaCallback's functions).
        self._batch = {}
        for hook in _BATCH_HOOKS:
            self._batch[hook] = [getattr(cb, hook) for cb in self.callbacks
                                 if hook in cb.__dict__ or
                                 getattr(type(cb), hook) is not getattr(Callback, hook)]

    def wants(self, hook):
        """True when some callback overrides this batch hook."""
        return bool(self._batch[hook])

    def append(self, callback):
        self.callbacks.append(callback)
        callback.set_model(self.model)
        callback.set_params(self.params)
        self._refresh_batch_hooks()

    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs)

    def _batch_call(self, hook, batch, logs):
        for fn in self._batch[hook]:
            fn(batch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._batch_call("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._batch_call("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._batch_call("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._batch_call("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._batch_call("on_predict_batch_end", batch, logs)


class History(Callback):
    """Records the epoch logs: ``history.history["loss"]`` is the list of
    per-epoch values, ``history.epoch`` the epoch numbers.  ``fit`` returns
    it; ``plot()`` draws the curves."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []
        self._epochs_of = {}        # key -> the epochs its values belong to (val_ may skip)

    def on_train_begin(self, logs=None):
        # A History given to several fits keeps growing, as in Keras.
        if self.model is not None:
            self.model.__dict__["history"] = self

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
            self._epochs_of.setdefault(k, []).append(epoch)

    def epochs_of(self, key):
        """The 1-based epochs the values of ``key`` were recorded in (validation
        metrics skip epochs when validation_freq > 1)."""
        values = self.history[key]
        known = self._epochs_of.get(key)
        if known is None or len(known) != len(values):
            # filled in by hand: assume the values belong to the last epochs
            return [e + 1 for e in self.epoch[len(self.epoch) - len(values):]]
        return [e + 1 for e in known]

    def _repr_html_(self):
        from .._display import history_html
        return history_html(self)

    def __repr__(self):
        return "<History: %d epoch%s of %s>" % (len(self.epoch), "" if len(self.epoch) == 1
                                                else "s", ", ".join(self.history) or "nothing")

    def plot(self, metrics=None, ax=None, figsize=None):
        """Draw each metric (training and ``val_`` curves together) against the
        epoch with matplotlib, one panel per metric; returns the figure.
        ``metrics`` picks some (``["loss"]``); ``ax`` draws one metric into
        given axes."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("History.plot needs matplotlib, an optional dependency of pyframe: "
                              "pip install matplotlib (or pip install 'pyframe[examples]')") \
                from None
        names = [k for k in self.history if not k.startswith("val_")]
        names += [k[4:] for k in self.history if k.startswith("val_") and k[4:] not in names]
        if metrics is not None:
            metrics = [metrics] if isinstance(metrics, str) else list(metrics)
            unknown = [m for m in metrics if m not in names]
            if unknown:
                raise ValueError("History.plot: no metric named %s; recorded: %s"
                                 % (unknown, names))
            names = metrics
        if not names:
            raise ValueError("History.plot: nothing recorded yet; call fit() first")
        if ax is not None:
            if len(names) != 1:
                raise ValueError("History.plot: ax= draws one metric; got %d (%s); pass "
                                 "metrics=['loss'] or leave ax=None for one panel per metric"
                                 % (len(names), names))
            axes, fig = [ax], ax.figure
        else:
            fig, axes = plt.subplots(1, len(names), squeeze=False,
                                     figsize=figsize or (4.5 * len(names), 3.2))
            axes = axes[0]
        for a, name in zip(axes, names):
            for key, style in ((name, "-"), ("val_" + name, "--")):
                values = self.history.get(key)
                if values and not isinstance(values[0], list):
                    a.plot(self.epochs_of(key), values, style, marker="o", markersize=3,
                           label=key)
            a.set_xlabel("epoch")
            a.set_title(name)
            a.grid(alpha=0.3)
            a.legend()
        fig.tight_layout()
        return fig


def _fmt(logs):
    parts = []
    for k, v in logs.items():
        v = _pythonify(v)
        if isinstance(v, float):
            parts.append("%s: %.4f" % (k, v))
        elif isinstance(v, list):
            parts.append("%s: [%s]" % (k, ", ".join("%.3f" % x for x in v)))
        else:
            parts.append("%s: %s" % (k, v))
    return " - ".join(parts)


def _bar_class():
    """(tqdm class, in a notebook?): the widget bar in a Jupyter kernel that has
    ipywidgets, else the text bar.  (tqdm.auto makes the same choice but warns
    when a kernel lacks ipywidgets; a missing optional package is not worth a
    warning on every fit.)"""
    from tqdm.std import tqdm as text_bar
    shell = sys.modules.get("IPython")
    shell = shell.get_ipython() if shell is not None and hasattr(shell, "get_ipython") else None
    if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm as widget_bar
            return widget_bar, True
        except ImportError:
            pass
    return text_bar, False


class ProgbarLogger(Callback):
    """The progress bar, on tqdm (a text bar in a terminal, a widget in
    Jupyter when ipywidgets is installed, else a text bar there too).  Keras's ``verbose``: 1 draws a bar per epoch with the
    running loss and metrics, 2 prints one line per epoch, 0 is silent.

    Redraws are throttled (``interval`` seconds); only a redraw reads the
    metric values, so between redraws nothing is converted to Python."""

    def __init__(self, interval=None):
        super().__init__()
        self.interval = interval
        self._bar = None
        self._in_fit = False

    def _verbose(self):
        v = self.params.get("verbose", 1)
        return 1 if v == "auto" else int(v)

    def _open(self, desc, total):
        import sys
        tqdm, notebook = _bar_class()
        if self.interval is None:
            self._interval = 0.5 if notebook else 0.1
        else:
            self._interval = float(self.interval)
        # delay: in a terminal, an epoch shorter than one redraw interval is drawn once,
        # when it ends.  Not in a notebook: there the widget is put in the page only
        # when the delay runs out, and closing an undisplayed one shows nothing at all.
        self._bar = tqdm(total=total, desc=desc, file=sys.stdout, leave=True, unit="step",
                         mininterval=0, delay=0 if notebook else self._interval,
                         dynamic_ncols=not notebook)
        self._pending = 0
        self._last = time.monotonic()
        self._t0 = self._last

    def _step(self, logs):
        self._pending += 1
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            if logs:
                self._bar.set_postfix_str(_fmt(logs), refresh=False)
            self._bar.update(self._pending)
            self._pending = 0

    def _close(self, logs):
        if self._bar is None:
            return
        if logs:
            self._bar.set_postfix_str(_fmt(logs), refresh=False)
        self._bar.n += self._pending
        self._bar.delay = 0               # close() then draws the final state once, even
        self._bar.close()                 # for an epoch shorter than the delay
        self._bar = None

    def on_train_begin(self, logs=None):
        self._in_fit = True
        self._epochs = self.params.get("epochs")

    def on_train_end(self, logs=None):
        self._in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_t0 = time.monotonic()
        if self._verbose() == 1:
            self._open("Epoch %d/%s" % (epoch + 1, self._epochs), self.params.get("steps"))

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._step(logs)

    def on_epoch_end(self, epoch, logs=None):
        verbose = self._verbose()
        if verbose == 1:
            self._close(logs)
        elif verbose == 2:
            print("Epoch %d/%s - %.1fs - %s" % (epoch + 1, self._epochs,
                                               time.monotonic() - self._epoch_t0, _fmt(logs or {})),
                  flush=True)

    def on_test_begin(self, logs=None):
        # validation inside fit is summarised in the epoch's line, not drawn
        if not self._in_fit and self._verbose() == 1:
            self._open("Evaluate", self.params.get("steps"))

    def on_test_batch_end(self, batch, logs=None):
        if self._bar is not None and not self._in_fit:
            self._step(logs)

    def on_test_end(self, logs=None):
        if not self._in_fit:
            if self._verbose() == 1:
                self._close(logs)
            elif self._verbose() == 2 and logs:
                print(_fmt(logs), flush=True)

    def on_predict_begin(self, logs=None):
        if self._verbose() == 1:
            self._open("Predict", self.params.get("steps"))

    def on_predict_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._step(None)

    def on_predict_end(self, logs=None):
        self._close(None)
