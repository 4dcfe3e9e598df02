"""Rich views for Jupyter: a tensor's shape, dtype and device with a preview
of its values, and a training history as a table.  Formatting only; the
numbers come from NumPy views of the tensor (the preview copies at most a few
hundred elements)."""
import html

import numpy as np

_EDGE = 5          # rows / columns shown at each end of a long axis


def _edges(n):
    """Indices shown along an axis of length n, and where the gap falls."""
    if n <= 2 * _EDGE:
        return list(range(n)), None
    return list(range(_EDGE)) + list(range(n - _EDGE, n)), _EDGE


def _fmt(v, kind):
    if kind == "b":
        return "True" if v else "False"
    if kind in "iu":
        return str(int(v))
    return np.format_float_positional(float(v), precision=4, trim="-") \
        if abs(float(v)) < 1e6 or not np.isfinite(v) else "%.3e" % float(v)


def _header(t):
    parts = ["<b>Tensor</b>", "shape %s" % (tuple(t.shape),),
             html.escape(str(t.dtype)), html.escape(str(t.device))]
    if t.requires_grad:
        parts.append("requires_grad" if t.grad_fn is None else
                     "grad_fn=%s" % html.escape(str(t.grad_fn.name())))
    return " &middot; ".join(parts)


def tensor_html(t):
    """The HTML Jupyter shows for a tensor."""
    head = _header(t)
    if t.size == 0:
        return "<div>%s &middot; empty</div>" % head
    import pyframe as pf
    t = t.detach()
    note = ""
    # at most 2-D on screen: the last two axes of the first slice
    if t.ndim > 2:
        note = "<div><small>showing [%s:, :]</small></div>" % ("0, " * (t.ndim - 2))
        t = t[(0,) * (t.ndim - 2)]
    t = t.cpu()     # a CUDA tensor's values, copied to the host to be shown
    if t.dtype in (pf.bfloat16, pf.float16):
        t = t.astype(pf.float32)
    a = np.asarray(t)
    if a.ndim == 0:
        return "<div>%s</div><pre>%s</pre>" % (head, html.escape(_fmt(a[()], a.dtype.kind)))
    if a.ndim == 1:
        a = a[None, :]
    rows, rgap = _edges(a.shape[0])
    cols, cgap = _edges(a.shape[1])
    block = a[np.ix_(rows, cols)]
    kind = a.dtype.kind
    out = ['<table style="font-family: monospace; font-size: 12px">']
    for i, r in enumerate(rows):
        if rgap is not None and i == rgap:
            out.append("<tr>%s</tr>" % ("<td>&vellip;</td>" * (len(cols) + (cgap is not None))))
        cells = []
        for j, _ in enumerate(cols):
            if cgap is not None and j == cgap:
                cells.append("<td>&hellip;</td>")
            cells.append('<td style="text-align: right">%s</td>'
                         % html.escape(_fmt(block[i, j], kind)))
        out.append("<tr>%s</tr>" % "".join(cells))
    out.append("</table>")
    return "<div>%s</div>%s%s" % (head, note, "".join(out))


def history_html(history, max_rows=12):
    """A History as a table: one row per epoch (the last ``max_rows``), one
    column per metric."""
    names = list(history.history)
    epochs = list(history.epoch)
    if not names:
        return "<div><b>History</b> &middot; no epochs recorded</div>"
    shown = list(range(len(epochs)))[-max_rows:]
    at = {n: dict(zip(history.epochs_of(n), history.history[n])) for n in names}
    head = "<tr><th>epoch</th>%s</tr>" % "".join("<th>%s</th>" % html.escape(n) for n in names)
    body = []
    for i in shown:
        cells = []
        for n in names:
            v = at[n].get(epochs[i] + 1)       # val_ metrics may skip epochs
            cells.append("<td>%s</td>" % ("" if v is None else
                                          html.escape("%.4f" % v if isinstance(v, float)
                                                      else str(v))))
        body.append("<tr><td>%d</td>%s</tr>" % (epochs[i] + 1, "".join(cells)))
    more = "" if len(shown) == len(epochs) else \
        "<div><small>last %d of %d epochs</small></div>" % (len(shown), len(epochs))
    return ('<div><b>History</b> &middot; %d epoch%s &middot; %s</div>%s'
            '<table style="font-size: 12px">%s%s</table>'
            % (len(epochs), "" if len(epochs) == 1 else "s", ", ".join(map(html.escape, names)),
               more, head, "".join(body)))
