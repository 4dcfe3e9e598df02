"""LivePlot: the loss and metric curves redrawn in place while fit runs in a
Jupyter notebook.

    model.fit(x, y, validation_split=0.2, epochs=30,
              callbacks=[pf.callbacks.LivePlot()])

At the start of training the callback puts one output in the cell (through
IPython's ``display`` with a ``display_id``) and at the end of an epoch it
replaces that output's content (``update_display``) with a PNG of the
curves: one panel per metric, the training curve solid and the ``val_``
curve dashed.  One output is updated; no new output appears per epoch.

The figure is a bare ``matplotlib.figure.Figure`` on the Agg canvas: pyplot
is never touched, so the user's backend and pyplot's figure list stay as they
were, and the inline backend does not show the figure a second time when the
cell ends.

Drawing costs tens of milliseconds, so it is throttled: an epoch's redraw is
skipped when the time spent drawing would exceed ``budget`` (10%) of the time
since training began; the last epoch is always drawn when training ends.

Outside a notebook (plain Python, a terminal IPython, a test run) the
callback does nothing at all: it checks once, in ``on_train_begin``, for an
IPython kernel, and neither imports matplotlib nor creates a figure."""
import base64
import io
import math
import numbers
import sys
import time
import uuid

from .callback import Callback

__all__ = ["LivePlot"]


def _kernel_display():
    """IPython's ``(display, update_display)`` when running in a Jupyter kernel,
    else None.  Looked up in sys.modules so that plain Python never imports
    IPython; a terminal IPython shell has no ``kernel`` and gets None too."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        shell = ipython.get_ipython()
    except Exception:           # a half-imported or stubbed IPython: no notebook
        return None
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    from IPython.display import display, update_display
    return display, update_display


class LivePlot(Callback):
    """Redraw the training curves in place at the end of each epoch, in a
    Jupyter notebook; do nothing elsewhere.

    metrics: the names to draw (``"loss"``, ``["loss", "accuracy"]``), without
    the ``val_`` prefix: each panel draws the training and validation curves
    of one name.  None draws every number in the logs.
    every: redraw every ``every`` epochs (the last epoch is always drawn).
    figsize: (width, height) in inches of the whole figure; by default 4.2 x
    3.0 per panel, up to three panels in a row.

    After training, ``figure`` is the matplotlib Figure last drawn (to save
    it: ``live.figure.savefig("curves.png")``)."""

    budget = 0.1        # the most of the training time drawing may take
    dpi = 80

    def __init__(self, metrics=None, every=1, figsize=None):
        super().__init__()
        self.metrics = _check_metrics(metrics)
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise ValueError("LivePlot: every must be a positive number of epochs (1 redraws "
                             "after each epoch); got %r" % (every,))
        self.every = int(every)
        self.figsize = _check_figsize(figsize)
        self.figure = None
        self._display = None

    # ------------------------------------------------------------- hooks

    def on_train_begin(self, logs=None):
        self._display = _kernel_display()
        if self._display is None:
            return
        try:
            # imported here, not in the first draw, so the import (most of a
            # second) is not charged to the drawing budget
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError("LivePlot needs matplotlib to draw in a notebook: pip install "
                              "matplotlib (or pip install 'pyframe[examples]'), or drop the "
                              "callback") from None
        self._mpl = Figure, FigureCanvasAgg
        self.figure = None
        self._panels = None
        self._curves = {}               # key -> ([epoch numbers], [values])
        self._seen = 0                  # epochs recorded in this fit
        self._pending = False           # an epoch recorded but not drawn yet
        self._spent = 0.0               # seconds spent drawing in this fit
        self._last_cost = 0.0
        self._t0 = time.perf_counter()
        # a fresh id per fit: a second fit draws in its own cell, not the first one's
        self._display_id = "pyframe-liveplot-" + uuid.uuid4().hex
        display, _ = self._display
        display({"text/plain": "LivePlot: the curves appear here after the first epoch"},
                raw=True, display_id=self._display_id)

    def on_epoch_end(self, epoch, logs=None):
        if self._display is None:
            return
        self._record(epoch, logs or {})
        self._seen += 1
        self._pending = True
        if self._seen % self.every:
            return
        elapsed = time.perf_counter() - self._t0
        if self._spent + self._last_cost > self.budget * elapsed:
            return                      # drawing now would cost more than its share
        self._draw()

    def on_train_end(self, logs=None):
        if self._display is None:
            return
        if self._pending:
            self._draw()
        self._display = None

    # ----------------------------------------------------------- drawing

    def _record(self, epoch, logs):
        for key, value in logs.items():
            # per-class vectors and non-numbers have no single curve
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                continue
            xs, ys = self._curves.setdefault(key, ([], []))
            xs.append(epoch + 1)
            ys.append(float(value))
        if self._seen == 0 and self.metrics is not None:
            names = {k[4:] if k.startswith("val_") else k for k in self._curves}
            unknown = [m for m in self.metrics if m not in names]
            if unknown:
                raise ValueError("LivePlot: no curve named %s in the logs; logged: %s. Pass "
                                 "some of these as metrics=, or metrics=None for all"
                                 % (unknown, sorted(self._curves)))

    def _panel_names(self):
        if self.metrics is not None:
            return list(self.metrics)
        names = [k for k in self._curves if not k.startswith("val_")]
        names += [k[4:] for k in self._curves if k.startswith("val_") and k[4:] not in names]
        return names

    def _draw(self):
        t = time.perf_counter()
        Figure, FigureCanvasAgg = self._mpl
        names = self._panel_names()
        relayout = self.figure is None or names != self._panels
        if relayout:
            # a new name (a val_ curve that starts late) changes the layout
            cols = min(len(names), 3) or 1
            rows = max(1, math.ceil(len(names) / cols))
            fig = Figure(figsize=self.figsize or (4.2 * cols, 3.0 * rows), dpi=self.dpi)
            FigureCanvasAgg(fig)
            self._axes = [fig.add_subplot(rows, cols, i + 1) for i in range(len(names))]
            self.figure, self._panels = fig, names
        summary = []
        last_epoch = 0
        for ax, name in zip(self._axes, names):
            ax.clear()
            parts = []
            for key, style in ((name, "-"), ("val_" + name, "--")):
                if key not in self._curves:
                    continue
                xs, ys = self._curves[key]
                ax.plot(xs, ys, style, marker="o", markersize=3, label=key)
                last_epoch = max(last_epoch, xs[-1])
                parts.append("%s %.4g" % (key, ys[-1]))
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend(loc="best", fontsize="small")
            summary.append(", ".join(parts))
        if relayout:
            # margins fitted to the first drawing and kept: tight_layout would
            # add a third to the cost of every redraw
            self.figure.tight_layout()
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png")
        epochs = self.params.get("epochs")
        text = "LivePlot after epoch %d%s: %s" % (last_epoch, "/%s" % epochs if epochs else "",
                                                  "; ".join(summary))
        _, update_display = self._display
        update_display({"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
                        "text/plain": text}, raw=True, display_id=self._display_id)
        self._pending = False
        self._last_cost = time.perf_counter() - t
        self._spent += self._last_cost


def _check_metrics(metrics):
    if metrics is None:
        return None
    names = [metrics] if isinstance(metrics, str) else metrics
    try:
        names = list(names)
    except TypeError:
        raise TypeError("LivePlot: metrics must be a metric name or a list of names such as "
                        "['loss', 'accuracy']; got %r (%s)"
                        % (metrics, type(metrics).__name__)) from None
    if not names:
        raise ValueError("LivePlot: metrics is empty; give names such as ['loss'], or None to "
                         "draw every logged metric")
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError("LivePlot: metrics must hold metric names (non-empty strings); "
                            "got %r" % (name,))
        if name.startswith("val_"):
            raise ValueError("LivePlot: name the metric without the 'val_' prefix (each panel "
                             "draws the training and the validation curve); got %r, use %r"
                             % (name, name[4:]))
    if len(set(names)) != len(names):
        raise ValueError("LivePlot: metrics names a curve twice: %r" % (names,))
    return names


def _check_figsize(figsize):
    if figsize is None:
        return None
    try:
        w, h = figsize
        ok = all(not isinstance(v, bool) and isinstance(v, numbers.Real) and
                 math.isfinite(v) and v > 0 for v in (w, h))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError("LivePlot: figsize must be (width, height) in inches, two positive "
                         "numbers; got %r" % (figsize,))
    return (float(w), float(h))
