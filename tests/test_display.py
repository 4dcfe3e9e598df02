"""Jupyter's rich views: a tensor's HTML preview shows its own values (read
back from the HTML and compared with NumPy), with the long axes cut in the
middle; a History renders as a table of its epochs."""
import re

import numpy as np
import pytest

import pyframe as pf


def _cells(html):
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    return [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]


@pytest.mark.parametrize("shape", [(3, 4), (12, 3), (4, 13), (12, 13), (7,), (2, 3, 11, 12)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool", "bfloat16"])
def test_tensor_preview_shows_the_values(shape, dtype):
    rng = np.random.default_rng(0)
    a = rng.normal(size=shape) * 10
    if dtype == "bool":
        a = a > 0
    t = pf.tensor(a).astype(getattr(pf, dtype))
    html = t._repr_html_()
    assert "shape %s" % (shape,) in html and dtype in html and "cpu" in html
    ref = np.asarray(t.astype(pf.float64)) if dtype not in ("bool", "int64") else np.asarray(t)
    while ref.ndim > 2:
        ref = ref[0]
    if ref.ndim == 1:
        ref = ref[None]
    rows = _cells(html)
    keep_r = list(range(ref.shape[0])) if ref.shape[0] <= 10 else list(range(5)) + \
        list(range(ref.shape[0] - 5, ref.shape[0]))
    keep_c = list(range(ref.shape[1])) if ref.shape[1] <= 10 else list(range(5)) + \
        list(range(ref.shape[1] - 5, ref.shape[1]))
    data_rows = [r for r in rows if "&vellip;" not in "".join(r)]
    assert len(data_rows) == len(keep_r)
    assert (len(rows) - len(data_rows)) == (1 if ref.shape[0] > 10 else 0)
    for r, i in zip(data_rows, keep_r):
        values = [c for c in r if c != "&hellip;"]
        assert len(values) == len(keep_c)
        assert ("&hellip;" in r) == (ref.shape[1] > 10)
        for text, j in zip(values, keep_c):
            if dtype == "bool":
                assert text == str(bool(ref[i, j]))
            else:
                assert float(text) == pytest.approx(float(ref[i, j]), rel=1e-3, abs=1e-4)
    if len(shape) > 2:
        assert "showing [0, 0, :, :]" in html


def test_tensor_preview_small_cases_and_grad():
    assert "<pre>3.5</pre>" in pf.tensor(3.5)._repr_html_()
    assert "empty" in pf.zeros((0, 3))._repr_html_()
    x = pf.randn(3, requires_grad=True)
    assert "requires_grad" in x._repr_html_()
    assert "grad_fn=MulBackward" in (x * 2)._repr_html_() or "grad_fn=" in (x * 2)._repr_html_()


def test_history_table():
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = x.sum(1, keepdims=True)
    m = pf.Sequential([pf.layers.Dense(1, input_shape=(3,))])
    m.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    hist = m.fit(x, y, epochs=3, validation_split=0.25, validation_freq=2, verbose=0)
    html = hist._repr_html_()
    assert "3 epochs" in html and repr(hist) == "<History: 3 epochs of loss, mae, val_loss, val_mae>"
    rows = [r for r in _cells(html) if r]          # the header row has <th> cells
    assert [r[0] for r in rows] == ["1", "2", "3"]
    names = list(hist.history)
    for i, r in enumerate(rows):
        assert float(r[1 + names.index("loss")]) == pytest.approx(hist.history["loss"][i],
                                                                  abs=1e-4)
    # validation ran in epoch 2 only: the other epochs' cells are empty
    col = 1 + names.index("val_loss")
    assert [r[col] != "" for r in rows] == [False, True, False]
    assert float(rows[1][col]) == pytest.approx(hist.history["val_loss"][0], abs=1e-4)
    assert hist.epochs_of("val_loss") == [2] and hist.epochs_of("loss") == [1, 2, 3]
