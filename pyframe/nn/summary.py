"""Module.summary(): the Keras-style table, as text and as HTML for Jupyter."""
import html

from .. import _C


def _rows(model, input_shape):
    first = next(iter(model._modules.values()), None)
    if input_shape is None and model._last_output_shape is None and \
            getattr(first, "_input_shape", None) is not None:
        # a Keras model whose first layer declares input_shape: run one sample through it
        input_shape = (1,) + tuple(first._input_shape)
    if input_shape is not None:
        from .containers import _eval_no_grad
        with _eval_no_grad(model):
            model(_C.zeros(tuple(input_shape)))
    children = list(model.named_children())
    if not children:
        children = [("", model)]
    rows = []
    for key, m in children:
        shape = m._last_output_shape
        # a Sequential lists its layers by name (Keras); a subclassed model by attribute
        label = m.name if (type(model).__name__ == "Sequential" or not key) else key
        rows.append(("%s (%s)" % (label, type(m).__name__),
                     "?" if shape is None else _fmt_shape(shape),
                     sum(p.size for p in m.parameters())))
    trainable = sum(p.size for p in model.parameters() if p.requires_grad)
    frozen = sum(p.size for p in model.parameters() if not p.requires_grad) + \
        sum(b.size for _, b in model._persistent_buffers())
    return rows, trainable, frozen


def _fmt_shape(s, top=True):
    """(64, 10) -> "(None, 10)": the batch dimension shown as None, as Keras does."""
    if isinstance(s, tuple):
        dims = [("None" if top and i == 0 and len(s) > 1 else str(d)) for i, d in enumerate(s)]
        return "(" + ", ".join(dims) + ("," if len(s) == 1 else "") + ")"
    if isinstance(s, list):
        return "[" + ", ".join(_fmt_shape(x, top) for x in s) + "]"
    if isinstance(s, dict):
        return "{" + ", ".join("%s: %s" % (k, _fmt_shape(v, top)) for k, v in s.items()) + "}"
    return str(s)


def _note(model):
    if model._last_output_shape is not None:
        return ""
    return "output shapes marked ? are known after the first call (or pass input_shape=)"


def summary_text(model, input_shape=None):
    rows, trainable, frozen = _rows(model, input_shape)
    head = ("Layer (type)", "Output Shape", "Param #")
    w0 = max(len(head[0]), *(len(r[0]) for r in rows)) + 2
    w1 = max(len(head[1]), *(len(r[1]) for r in rows)) + 2
    w2 = max(len(head[2]), *(len("{:,}".format(r[2])) for r in rows))
    width = w0 + w1 + w2
    out = ['Model: "%s"' % model.name, "=" * width,
           head[0].ljust(w0) + head[1].ljust(w1) + head[2].rjust(w2), "-" * width]
    for r in rows:
        out.append(r[0].ljust(w0) + r[1].ljust(w1) + "{:,}".format(r[2]).rjust(w2))
    out += ["=" * width,
            "Total params: {:,}".format(trainable + frozen),
            "Trainable params: {:,}".format(trainable),
            "Non-trainable params: {:,}".format(frozen)]
    note = _note(model)
    if note:
        out.append(note)
    return "\n".join(out)


def summary_html(model):
    rows, trainable, frozen = _rows(model, None)
    e = html.escape
    body = "".join("<tr><td>%s</td><td>%s</td><td style='text-align:right'>{:,}</td></tr>"
                   .format(r[2]) % (e(r[0]), e(r[1])) for r in rows)
    note = _note(model)
    return ("<div><b>Model: %s</b><table><thead><tr><th>Layer (type)</th><th>Output Shape</th>"
            "<th>Param #</th></tr></thead><tbody>%s</tbody></table>"
            "<p>Total params: {:,}<br>Trainable params: {:,}<br>Non-trainable params: {:,}</p>"
            "%s</div>").format(trainable + frozen, trainable, frozen) % (
                e(model.name), body, ("<p><i>%s</i></p>" % e(note)) if note else "")
