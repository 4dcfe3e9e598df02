"""LivePlot: quiet outside a notebook; in a notebook, one output that is
updated in place with a PNG of the curves, throttled and every N epochs."""
import base64
import collections
import io
import os
import sys
import types

import numpy as np
import pytest

import pyframe as pf
from pyframe.training import liveplot

pytest.importorskip("matplotlib")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, y


def _model(metrics=("accuracy",)):
    pf.manual_seed(0)
    model = pf.Sequential([pf.layers.Dense(8, activation="relu", input_shape=(4,)),
                           pf.layers.Dense(2)])
    model.compile(optimizer=pf.optimizers.Adam(0.01),
                  loss=pf.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=list(metrics))
    return model


class FakeKernel:
    """Stands in for IPython.display in a kernel: records display and
    update_display calls."""

    def __init__(self):
        self.calls = []

    def display(self, obj, raw=False, display_id=None):
        self.calls.append(("display", display_id, obj, raw))

    def update_display(self, obj, raw=False, display_id=None):
        self.calls.append(("update", display_id, obj, raw))

    def of(self, kind):
        return [c for c in self.calls if c[0] == kind]


@pytest.fixture
def kernel(monkeypatch):
    fake = FakeKernel()
    monkeypatch.setattr(liveplot, "_kernel_display", lambda: (fake.display, fake.update_display))
    return fake


def _png(bundle):
    from matplotlib.image import imread
    raw = base64.b64decode(bundle["image/png"])
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(io.BytesIO(raw))


# ------------------------------------------------------------ arguments

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(metrics=3), TypeError, r"LivePlot: metrics must be a metric name or a list"),
    (dict(metrics=[]), ValueError, r"LivePlot: metrics is empty"),
    (dict(metrics=["loss", ""]), TypeError, r"LivePlot: metrics must hold metric names.*''"),
    (dict(metrics=["loss", 2]), TypeError, r"LivePlot: metrics must hold metric names.*got 2"),
    (dict(metrics="val_loss"), ValueError, r"without the 'val_' prefix.*use 'loss'"),
    (dict(metrics=["loss", "loss"]), ValueError, r"LivePlot: metrics names a curve twice"),
    (dict(every=0), ValueError, r"LivePlot: every must be a positive number of epochs.*got 0"),
    (dict(every=1.5), ValueError, r"LivePlot: every must be a positive.*got 1.5"),
    (dict(every=True), ValueError, r"LivePlot: every must be a positive.*got True"),
    (dict(figsize=(4,)), ValueError, r"LivePlot: figsize must be \(width, height\).*\(4,\)"),
    (dict(figsize=(4, -1)), ValueError, r"LivePlot: figsize must be.*\(4, -1\)"),
    (dict(figsize="big"), ValueError, r"LivePlot: figsize must be.*'big'"),
    (dict(figsize=(4, float("nan"))), ValueError, r"LivePlot: figsize must be"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        pf.callbacks.LivePlot(**kwargs)


def test_exported_from_callbacks():
    assert pf.callbacks.LivePlot is liveplot.LivePlot
    assert "LivePlot" in pf.callbacks.__all__


# ------------------------------------------------------- outside a notebook

class _Shell:
    """A terminal IPython shell: an IPython, but no kernel."""


@pytest.mark.parametrize("ipython", ["absent", "no shell", "terminal"])
def test_quiet_outside_a_notebook(ipython, monkeypatch, capsys):
    if ipython == "absent":
        monkeypatch.delitem(sys.modules, "IPython", raising=False)
    else:
        fake = types.ModuleType("IPython")
        fake.get_ipython = (lambda: None) if ipython == "no shell" else (lambda: _Shell())
        monkeypatch.setitem(sys.modules, "IPython", fake)
    import matplotlib.figure
    made = []
    init = matplotlib.figure.Figure.__init__
    monkeypatch.setattr(matplotlib.figure.Figure, "__init__",
                        lambda self, *a, **k: (made.append(1), init(self, *a, **k))[1])
    live = pf.callbacks.LivePlot()
    x, y = _data()
    history = _model().fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[live])
    assert len(history.epoch) == 3
    assert made == [] and live.figure is None
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    if ipython == "absent":
        assert "IPython" not in sys.modules          # and it did not import it


# ------------------------------------------------- with a (fake) kernel

def test_one_output_updated_each_epoch(kernel):
    live = pf.callbacks.LivePlot(figsize=(6, 2.5))
    live.budget = float("inf")                       # no throttling here
    x, y = _data()
    history = _model().fit(x, y, epochs=4, validation_split=0.25, verbose=0, callbacks=[live])

    displays, updates = kernel.of("display"), kernel.of("update")
    assert len(displays) == 1 and len(updates) == 4
    display_id = displays[0][1]
    assert display_id and all(u[1] == display_id for u in updates)
    assert all(c[3] is True for c in kernel.calls)   # raw mime bundles
    for epoch, update in enumerate(updates, 1):
        assert update[2]["text/plain"].startswith("LivePlot after epoch %d/4:" % epoch)
    image = _png(updates[-1][2])
    assert image.shape[:2] == (round(2.5 * live.dpi), round(6 * live.dpi))

    # the figure: a panel per metric, the training and validation curves in each,
    # holding exactly the values History recorded
    axes = live.figure.axes
    assert [a.get_title() for a in axes] == ["loss", "accuracy"]
    for ax in axes:
        lines = {line.get_label(): line for line in ax.get_lines()}
        name = ax.get_title()
        assert set(lines) == {name, "val_" + name}
        for key, line in lines.items():
            np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4])
            np.testing.assert_array_equal(line.get_ydata(), history.history[key])
        assert lines[name].get_linestyle() == "-" and lines["val_" + name].get_linestyle() == "--"


def test_every_n_epochs_and_the_last_one(kernel):
    live = pf.callbacks.LivePlot(every=2)
    live.budget = float("inf")
    x, y = _data()
    _model().fit(x, y, epochs=5, verbose=0, callbacks=[live])
    texts = [u[2]["text/plain"] for u in kernel.of("update")]
    assert [t.split(":")[0] for t in texts] == ["LivePlot after epoch %d/5" % e for e in (2, 4, 5)]


def test_throttled_by_the_time_budget(kernel):
    # with no budget, the first epoch is drawn (nothing spent yet), the rest
    # only once, at the end of training
    live = pf.callbacks.LivePlot()
    live.budget = 0.0
    x, y = _data()
    _model().fit(x, y, epochs=6, verbose=0, callbacks=[live])
    texts = [u[2]["text/plain"].split(":")[0] for u in kernel.of("update")]
    assert texts == ["LivePlot after epoch 1/6", "LivePlot after epoch 6/6"]
    assert len(kernel.of("display")) == 1


def test_picked_metrics_and_vector_metrics(kernel):
    # a per-class F1 vector has no single curve and is left out; metrics= picks panels
    model = _model()
    x, y = _data()
    y_onehot = np.eye(2, dtype=np.float32)[y]
    model.compile(optimizer=pf.optimizers.Adam(0.01),
                  loss=pf.losses.CategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy", pf.metrics.F1Score(average=None, name="f1")])
    live = pf.callbacks.LivePlot()
    history = model.fit(x, y_onehot, epochs=2, verbose=0, callbacks=[live])
    assert isinstance(history.history["f1"][0], list)
    assert [a.get_title() for a in live.figure.axes] == ["loss", "accuracy"]

    picked = pf.callbacks.LivePlot(metrics="accuracy")
    model.fit(x, y_onehot, epochs=2, verbose=0, callbacks=[picked])
    assert [a.get_title() for a in picked.figure.axes] == ["accuracy"]
    assert "loss" not in kernel.of("update")[-1][2]["text/plain"]


def test_unknown_metric_is_named_at_the_first_epoch(kernel):
    live = pf.callbacks.LivePlot(metrics=["loss", "auc"])
    x, y = _data()
    with pytest.raises(ValueError, match=r"LivePlot: no curve named \['auc'\] in the logs; "
                                         r"logged: \['accuracy', 'loss'\]"):
        _model().fit(x, y, epochs=2, verbose=0, callbacks=[live])


def test_late_validation_curve_and_a_second_fit(kernel):
    live = pf.callbacks.LivePlot()
    live.budget = float("inf")
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=4, validation_split=0.25, validation_freq=2, verbose=0,
              callbacks=[live])
    lines = {line.get_label(): line for line in live.figure.axes[0].get_lines()}
    np.testing.assert_array_equal(lines["loss"].get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(lines["val_loss"].get_xdata(), [2, 4])
    # a second fit draws in an output of its own (the cell it runs in)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[live])
    first, second = [d[1] for d in kernel.of("display")]
    assert first != second
    assert {u[1] for u in kernel.of("update")[-2:]} == {second}
    assert len(live.figure.axes[0].get_lines()) == 1      # no validation this time


def test_missing_matplotlib_in_a_notebook_says_how_to_fix(kernel, monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # import matplotlib fails
    x, y = _data()
    with pytest.raises(ImportError, match=r"LivePlot needs matplotlib.*pip install matplotlib"):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[pf.callbacks.LivePlot()])


# ------------------------------------------------- in a real Jupyter kernel

NOTEBOOK = """
import numpy as np
import pyframe as pf
pf.manual_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(96, 4)).astype(np.float32)
y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
model = pf.Sequential([pf.layers.Dense(8, activation="relu"), pf.layers.Dense(2)])
model.compile(optimizer="adam", loss=pf.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
live = pf.callbacks.LivePlot()
live.budget = float("inf")
history = model.fit(x, y, epochs=5, validation_split=0.25, callbacks=[live])
"""


def _run_in_kernel(monkeypatch, tmp_path, hide_ipywidgets):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    path = [ROOT]
    if hide_ipywidgets:
        # a package that shadows ipywidgets and fails to import: a Jupyter without widgets
        fake = tmp_path / "hide" / "ipywidgets"
        fake.mkdir(parents=True)
        (fake / "__init__.py").write_text("raise ImportError('ipywidgets hidden by the test')\n")
        path.insert(0, str(tmp_path / "hide"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path + [os.environ.get("PYTHONPATH", "")]))

    messages = []

    class Recording(nbclient.NotebookClient):
        def process_message(self, msg, cell, cell_index):
            transient = msg["content"].get("transient") or {}
            messages.append((msg["msg_type"], transient.get("display_id")))
            return super().process_message(msg, cell, cell_index)

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK)])
    Recording(nb, timeout=120, kernel_name="python3",
              resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb.cells[0].outputs, messages


@pytest.mark.parametrize("hide_ipywidgets", [False, True], ids=["widgets", "no-widgets"])
def test_in_a_jupyter_kernel(hide_ipywidgets, monkeypatch, tmp_path):
    outputs, messages = _run_in_kernel(monkeypatch, tmp_path, hide_ipywidgets)
    ours = [(kind, did) for kind, did in messages if did and did.startswith("pyframe-liveplot-")]
    counts = collections.Counter(kind for kind, _ in ours)
    assert counts == {"display_data": 1, "update_display_data": 5}, ours
    assert len({did for _, did in ours}) == 1

    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1 and images[0].output_type == "display_data"
    assert images[0].data["text/plain"].startswith("LivePlot after epoch 5/5: loss ")
    assert _png(images[0].data).ndim == 3
    # the plot sits above the progress bars: it was put in place when training began
    assert outputs[0] is images[0]

    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    widgets = [o for o in outputs
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    if hide_ipywidgets:
        assert not widgets and "Epoch 5/5" in text      # tqdm fell back to a text bar
    else:
        assert len(widgets) == 5                        # one bar per epoch
    assert "Traceback" not in text
