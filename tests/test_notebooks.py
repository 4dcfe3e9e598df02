"""The notebooks in notebooks/ run from top to bottom in a fresh Jupyter
kernel, are committed without outputs, and show the results they promise
(checked against NumPy or scikit-learn where they compare)."""
import json
import os
import re

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK_DIR = os.path.join(ROOT, "notebooks")
NAMES = ["01_quickstart", "02_tabular_pandas", "03_pytorch_style", "04_numpy_interop",
         "05_saving_checkpoints"]
CELL_TIMEOUT = 120          # seconds; every cell here takes a few
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def kernel_env(monkeypatch, extra_path=()):
    """The kernel inherits the environment: make this checkout importable,
    whether or not pyframe is installed."""
    path = list(extra_path) + [ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))


def execute(nb, cwd, name):
    """Run every cell of ``nb`` in place with the python3 kernel, in ``cwd``.
    A failing cell fails the test with its source and its error."""
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError:
        for index, cell in enumerate(nb.cells):
            for out in cell.get("outputs", []):
                if out.output_type == "error":
                    tb = _ANSI.sub("", "\n".join(out.traceback))
                    pytest.fail("%s: cell %d failed\n--- source ---\n%s\n--- error ---\n%s: %s"
                                "\n%s" % (name, index, cell.source, out.ename, out.evalue, tb),
                                pytrace=False)
        raise
    return nb


_executed = {}


def executed(name, tmp_path_factory, monkeypatch):
    """The notebook after a run, executed once per test session."""
    if name not in _executed:
        kernel_env(monkeypatch)
        cwd = tmp_path_factory.mktemp(name)
        nb = nbformat.read(os.path.join(NOTEBOOK_DIR, name + ".ipynb"), as_version=4)
        before = _listing()
        execute(nb, cwd, name)
        nb.metadata["_new_files"] = sorted(_listing() - before)
        _executed[name] = nb
    return _executed[name]


def _listing():
    return {os.path.join(d, f) for d in (ROOT, NOTEBOOK_DIR) for f in os.listdir(d)}


def text_of(nb):
    """Everything the notebook printed (stdout streams and plain-text results)."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stdout":
                parts.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                parts.append(out.get("data", {}).get("text/plain", ""))
    return _ANSI.sub("", "\n".join(parts))


def number(text, label):
    m = re.search(re.escape(label) + r"\s*(-?[0-9.]+(?:e-?[0-9]+)?)", text)
    assert m, "%r not found in the notebook's output:\n%s" % (label, text[-3000:])
    return float(m.group(1))


def test_the_five_notebooks_are_there():
    found = sorted(f[:-6] for f in os.listdir(NOTEBOOK_DIR) if f.endswith(".ipynb"))
    assert found == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, tmp_path_factory, monkeypatch):
    nb = executed(name, tmp_path_factory, monkeypatch)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.execution_count is not None, "%s: cell %d did not run" % (name, index)
        for out in cell.outputs:
            # stray warnings and tracebacks on stderr mean something is off
            if out.output_type == "stream" and out.name == "stderr":
                assert not re.search(r"Warning|Traceback|Error", out.text), \
                    "%s: cell %d wrote to stderr:\n%s\n--- source ---\n%s" \
                    % (name, index, out.text, cell.source)
    # the notebook ran in its own directory: nothing new in the checkout
    assert nb.metadata["_new_files"] == [], nb.metadata["_new_files"]


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_stripped(name):
    path = os.path.join(NOTEBOOK_DIR, name + ".ipynb")
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    nb = nbformat.from_dict(raw)
    nbformat.validate(nb)
    assert raw["metadata"]["kernelspec"]["name"] == "python3"
    assert "widgets" not in raw["metadata"], "%s: saved widget state; clear it" % name
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    assert code, "%s has no code cells" % name
    for index, cell in enumerate(raw["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert cell["outputs"] == [], \
            "%s: cell %d has outputs; strip them (jupyter nbconvert --clear-output " \
            "--inplace notebooks/*.ipynb)" % (name, index)
        assert cell["execution_count"] is None, "%s: cell %d has an execution count" \
            % (name, index)
        assert "execution" not in cell.get("metadata", {}), "%s: cell %d keeps timings" \
            % (name, index)


# ------------------------------------------------------------ key results
# Each notebook prints what it claims; the numbers it compares come from
# independent references computed in the notebook (scikit-learn, NumPy,
# derivatives worked out by hand, an uninterrupted run).

def _flag(text, label):
    m = re.search(re.escape(label) + r"\s*(True|False)", text)
    assert m, "%r not found in the notebook's output:\n%s" % (label, text[-3000:])
    return m.group(1) == "True"


def _vector(text, label):
    m = re.search(re.escape(label) + r"\s*\[([^\]]*)\]", text)
    assert m, "%r not found in the notebook's output:\n%s" % (label, text[-3000:])
    return [float(v) for v in m.group(1).replace(",", " ").split()]


def test_quickstart_results(tmp_path_factory, monkeypatch):
    nb = executed("01_quickstart", tmp_path_factory, monkeypatch)
    text = text_of(nb)
    assert number(text, "final validation accuracy:") >= 0.95
    test_accuracy = number(text, "test accuracy")
    assert test_accuracy >= 0.95
    assert _flag(text, "same as scikit-learn:")
    # the confusion matrix's diagonal agrees with evaluate()'s accuracy
    assert abs(number(text, "test accuracy from the matrix:") - test_accuracy) < 1e-4
    # the fit cell: one LivePlot output showing the last epoch, one bar per epoch
    fit = next(c for c in nb.cells if "LivePlot()" in c.source)
    images = [o for o in fit.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1
    assert images[0].data["text/plain"].startswith("LivePlot after epoch 12/12")
    assert "Epoch 12/12" in "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                                      for o in fit.outputs)


def test_tabular_results(tmp_path_factory, monkeypatch):
    text = text_of(executed("02_tabular_pandas", tmp_path_factory, monkeypatch))
    assert _flag(text, "the layer's means are pandas' column means:")
    for name in ("auc", "precision", "recall"):
        line = re.search(r"test %s\s+pyframe ([0-9.]+)\s+scikit-learn ([0-9.]+)" % name, text)
        assert line, text
        ours, theirs = float(line.group(1)), float(line.group(2))
        # precision and recall are exact; the AUC is on a 200-threshold grid
        assert abs(ours - theirs) <= (0.01 if name == "auc" else 1e-4), line.group(0)
    assert number(text, "test auc       pyframe") >= 0.95


def test_pytorch_style_results(tmp_path_factory, monkeypatch):
    text = text_of(executed("03_pytorch_style", tmp_path_factory, monkeypatch))
    assert number(text, "epoch 30  last batch loss") < 0.5
    assert number(text, "validation accuracy") >= 0.9
    assert number(text, "largest error in f':") < 1e-9
    assert number(text, "largest error in f'':") < 1e-9
    ours, theirs = _vector(text, "autograd:"), _vector(text, "by hand:")
    assert len(ours) == 3 and all(abs(a - b) <= 1e-6 * max(1, abs(b))
                                  for a, b in zip(ours, theirs))
    assert _flag(text, "gradcheck:")
    assert "GradcheckError: gradcheck: the gradient" in text
    robust = number(text, "log-cosh fit:      slope"), number(text, "intercept")
    lsq_intercept = float(re.search(r"least squares fit: slope [-0-9.]+, intercept ([-0-9.]+)",
                                    text).group(1))
    # the data were drawn around slope 2, intercept 1, with 5% outliers pulling upwards
    assert abs(robust[0] - 2) < 0.1 and abs(robust[1] - 1) < 0.2
    assert abs(lsq_intercept - 1) > 1.0


def test_numpy_interop_results(tmp_path_factory, monkeypatch):
    text = text_of(executed("04_numpy_interop", tmp_path_factory, monkeypatch))
    expected = {"from_numpy shares memory:": True, "asarray shares memory:": True,
                "tensor shares memory:": False, "shares memory with t:": True,
                "a slice shares memory too:": True, "float32 -> float64 shares memory:": False,
                "read-only tensor:": True, "all one memory:": True,
                "shares memory with the frame:": True, "read-only:": True,
                "the clone:": False, "a Series too:": True,
                "DataFrame over the tensor's memory:": True}
    for label, value in expected.items():
        assert _flag(text, label) is value, label
    assert "ValueError: Tensor.__setitem__: tensor is read-only" in text
    assert "TypeError: pf.tensor: column 'name'" in text
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "PyTorch is not installed" in text
    else:
        assert _vector(text, "pyframe sees torch's write: tensor(") == [5.0] * 4


def test_saving_results(tmp_path_factory, monkeypatch):
    text = text_of(executed("05_saving_checkpoints", tmp_path_factory, monkeypatch))
    ran = int(number(text, "ran"))
    assert ran < 200
    best_epoch = int(number(text, "best epoch:"))
    assert best_epoch == ran - 3                    # patience 3
    assert number(text, "best val_loss in the history:") == \
        number(text, "val_loss of the model now:")
    assert _flag(text, "best checkpoint predicts like the restored model:")
    assert _flag(text, "identical predictions:")
    assert "epochs run after the restart: [5, 6, 7, 8]" in text
    assert _flag(text, "final weights identical to the uninterrupted run:")
    assert _flag(text, "backup removed once the run finished:")
