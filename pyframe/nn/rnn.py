"""Recurrent modules with PyTorch's parameter names, shapes and gate order:
RNN (tanh or relu), LSTM (gates i, f, g, o) and GRU (gates r, z, n).

The input projection of every time step is one GEMM over the whole sequence;
the loop over time steps runs the recurrent GEMM and the gate arithmetic,
each a call into C."""
import math

from .. import _C
from .module import Module
from .parameter import Parameter
from .basic import param_dtype

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class _RNNBase(Module):
    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=None):
        super().__init__()
        name = type(self).__name__
        for what, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError("%s: %s must be a positive integer; got %r" % (name, what, v))
        if not 0 <= dropout < 1:
            raise ValueError("%s: dropout must be in [0, 1); got %r" % (name, dropout))
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        gates = _GATES[mode] * hidden_size
        k = 1.0 / math.sqrt(hidden_size)
        dirs = 2 if bidirectional else 1
        for layer in range(num_layers):
            for d in range(dirs):
                sfx = "_l%d%s" % (layer, "_reverse" if d else "")
                in_sz = input_size if layer == 0 else hidden_size * dirs
                setattr(self, "weight_ih" + sfx, Parameter(_C.uniform(-k, k, (gates, in_sz))))
                setattr(self, "weight_hh" + sfx,
                        Parameter(_C.uniform(-k, k, (gates, hidden_size))))
                if bias:
                    setattr(self, "bias_ih" + sfx, Parameter(_C.uniform(-k, k, (gates,))))
                    setattr(self, "bias_hh" + sfx, Parameter(_C.uniform(-k, k, (gates,))))
        if dtype is not None:
            self.to(dtype)

    def get_config(self):
        config = {"input_size": self.input_size, "hidden_size": self.hidden_size,
                  "num_layers": self.num_layers, "bias": self.bias,
                  "batch_first": self.batch_first, "dropout": self.dropout,
                  "bidirectional": self.bidirectional, "dtype": param_dtype(self)}
        if self.mode.startswith("RNN_"):
            config["nonlinearity"] = self.mode[4:].lower()
        return config

    def extra_repr(self):
        s = "%d, %d" % (self.input_size, self.hidden_size)
        if self.num_layers != 1:
            s += ", num_layers=%d" % self.num_layers
        if self.batch_first:
            s += ", batch_first=True"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    def _check_input(self, x, hx):
        if not isinstance(x, _C.Tensor):
            x = _C.asarray(x)
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError("%s expects input of shape (seq, batch, %d)%s or unbatched "
                             "(seq, %d); got %s" % (
                                 self._label(), self.input_size,
                                 " (batch_first: (batch, seq, %d))" % self.input_size
                                 if self.batch_first else "", self.input_size, tuple(x.shape)))
        return x

    def _step(self, xw, h, c, whh, bhh):
        """One time step: xw is the input projection (batch, gates) with its bias."""
        H = self.hidden_size
        hw = h @ whh.T
        if bhh is not None:
            hw = hw + bhh
        if self.mode == "LSTM":
            g = xw + hw
            i, f, gg, o = g[:, :H].sigmoid(), g[:, H:2 * H].sigmoid(), g[:, 2 * H:3 * H].tanh(), \
                g[:, 3 * H:].sigmoid()
            c = f * c + i * gg
            return o * c.tanh(), c
        if self.mode == "GRU":
            r = (xw[:, :H] + hw[:, :H]).sigmoid()
            z = (xw[:, H:2 * H] + hw[:, H:2 * H]).sigmoid()
            n = (xw[:, 2 * H:] + r * hw[:, 2 * H:]).tanh()
            return (1 - z) * n + z * h, None
        pre = xw + hw
        return (pre.tanh() if self.mode == "RNN_TANH" else pre.relu()), None

    def forward(self, x, hx=None):
        x = self._check_input(x, hx)
        unbatched = x.ndim == 2
        if unbatched:
            x = x.unsqueeze(1)
        if self.batch_first and not unbatched:
            x = x.transpose(0, 1)
        T, B = x.shape[0], x.shape[1]
        dirs = 2 if self.bidirectional else 1
        lstm = self.mode == "LSTM"
        h0 = c0 = None
        if hx is not None:
            h0, c0 = (hx if lstm else (hx, None))
            if unbatched:
                h0 = h0.unsqueeze(1)
                c0 = c0.unsqueeze(1) if c0 is not None else None
            want = (self.num_layers * dirs, B, self.hidden_size)
            for what, t in (("h_0", h0), ("c_0", c0)):
                if t is not None and tuple(t.shape) != want:
                    raise ValueError("%s: %s must have shape %s; got %s"
                                     % (self._label(), what, want, tuple(t.shape)))
        zeros = _C.zeros((B, self.hidden_size), dtype=x.dtype)
        h_n, c_n = [], []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                sfx = "_l%d%s" % (layer, "_reverse" if d else "")
                wih, whh = getattr(self, "weight_ih" + sfx), getattr(self, "weight_hh" + sfx)
                bih = getattr(self, "bias_ih" + sfx) if self.bias else None
                bhh = getattr(self, "bias_hh" + sfx) if self.bias else None
                # the input projection of all steps at once: (T*B, gates)
                xw = layer_in.reshape(T * B, layer_in.shape[-1]) @ wih.T
                if bih is not None:
                    xw = xw + bih
                xw = xw.reshape(T, B, xw.shape[-1])
                k = layer * dirs + d
                h = h0[k] if h0 is not None else zeros
                c = (c0[k] if c0 is not None else zeros) if lstm else None
                steps = range(T - 1, -1, -1) if d else range(T)
                seq = [None] * T
                for t in steps:
                    h, c = self._step(xw[t], h, c, whh, bhh)
                    seq[t] = h
                outs.append(_C.stack(seq, axis=0) if T else
                            _C.zeros((0, B, self.hidden_size), dtype=x.dtype))
                h_n.append(h)
                if lstm:
                    c_n.append(c)
            layer_in = outs[0] if dirs == 1 else _C.concatenate(outs, axis=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                keep = (_C.rand(*layer_in.shape) >= self.dropout).astype(layer_in.dtype)
                layer_in = layer_in * keep / (1 - self.dropout)
        out = layer_in
        hn = _C.stack(h_n, axis=0)
        cn = _C.stack(c_n, axis=0) if lstm else None
        if unbatched:
            out, hn = out.squeeze(1), hn.squeeze(1)
            cn = cn.squeeze(1) if cn is not None else None
        elif self.batch_first:
            out = out.transpose(0, 1)
        return (out, (hn, cn)) if lstm else (out, hn)


class RNN(_RNNBase):
    """Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (nonlinearity='relu' too)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError("RNN: nonlinearity must be 'tanh' or 'relu'; got %r" % (nonlinearity,))
        super().__init__("RNN_" + nonlinearity.upper(), input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, dtype)


class LSTM(_RNNBase):
    """LSTM with PyTorch's layout: returns (output, (h_n, c_n))."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype)


class GRU(_RNNBase):
    """GRU with PyTorch's layout: returns (output, h_n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype)
