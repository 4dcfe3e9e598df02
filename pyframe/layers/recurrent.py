"""Keras recurrent layers: SimpleRNN, LSTM (gates i, f, c, o), GRU (gates z,
r, h; reset_after=True by default, as Keras) and Bidirectional.  Inputs are
batch-major (batch, time, features); weights are kernel (features, k*units),
recurrent_kernel (units, k*units) and bias, as in Keras."""
from .. import _C, activations
from .base import Layer, as_tensor

_GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}


class _Recurrent(Layer):
    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False,
                 unit_forget_bias=True, reset_after=True, **kwargs):
        super().__init__(**kwargs)
        kind = type(self).__name__
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError("%s: units must be a positive integer; got %r" % (kind, units))
        for what, v in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0 <= v < 1:
                raise ValueError("%s: %s must be in [0, 1); got %r" % (kind, what, v))
        self.units, self.use_bias = units, bool(use_bias)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.inits = (kernel_initializer, recurrent_initializer, bias_initializer)
        self.regs = (kernel_regularizer, recurrent_regularizer, bias_regularizer)
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.unit_forget_bias, self.reset_after = bool(unit_forget_bias), bool(reset_after)
        self._build_now_if_shape_known()

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError("%s expects input of shape (batch, time, features); got %s"
                             % (self._label(), input_shape))
        k = _GATES[type(self).__name__] * self.units
        self.add_weight("kernel", (input_shape[-1], k), self.inits[0], self.regs[0])
        self.add_weight("recurrent_kernel", (self.units, k), self.inits[1], self.regs[1])
        if self.use_bias:
            shape = (2, k) if (type(self).__name__ == "GRU" and self.reset_after) else (k,)
            b = self.add_weight("bias", shape, self.inits[2], self.regs[2])
            if type(self).__name__ == "LSTM" and self.unit_forget_bias:
                with _NoGrad():
                    b[self.units:2 * self.units] = 1.0

    def _cell(self, xw, h, c):
        """One step; xw = x_t @ kernel (+ input bias)."""
        U = self.units
        act, ract = self.activation, self.recurrent_activation
        kind = type(self).__name__
        if kind == "SimpleRNN":
            return act(xw + h @ self.recurrent_kernel), None
        if kind == "LSTM":
            g = xw + h @ self.recurrent_kernel
            i, f = ract(g[:, :U]), ract(g[:, U:2 * U])
            cc, o = act(g[:, 2 * U:3 * U]), ract(g[:, 3 * U:])
            c = f * c + i * cc
            return o * act(c), c
        # GRU: z, r, h
        hr = h @ self.recurrent_kernel
        if self.use_bias and self.reset_after:
            hr = hr + self.bias[1]
        z = ract(xw[:, :U] + hr[:, :U])
        r = ract(xw[:, U:2 * U] + hr[:, U:2 * U])
        if self.reset_after:
            hh = act(xw[:, 2 * U:] + r * hr[:, 2 * U:])
        else:
            hh = act(xw[:, 2 * U:] + (r * h) @ self.recurrent_kernel[:, 2 * U:])
        return z * h + (1 - z) * hh, None

    def forward(self, x, initial_state=None, training=None, mask=None):
        x = as_tensor(x)
        if x.ndim != 3:
            raise ValueError("%s expects input of shape (batch, time, features); got %s"
                             % (self._label(), tuple(x.shape)))
        self._check_last_dim(x, self.kernel.shape[0], "features")
        B, T = x.shape[0], x.shape[1]
        training = self.training if training is None else training
        if self.dropout and training:
            keep = (_C.rand(B, 1, x.shape[2]) >= self.dropout).astype(x.dtype)
            x = x * keep / (1 - self.dropout)
        xw = x.reshape(B * T, x.shape[2]) @ self.kernel
        if self.use_bias:
            xw = xw + (self.bias[0] if self.bias.ndim == 2 else self.bias)
        xw = xw.reshape(B, T, xw.shape[-1])
        lstm = type(self).__name__ == "LSTM"
        zeros = _C.zeros((B, self.units), dtype=x.dtype)
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) \
                else [initial_state]
            h = as_tensor(states[0])
            c = as_tensor(states[1]) if lstm else None
        else:
            h, c = zeros, (zeros if lstm else None)
        rmask = None
        if self.recurrent_dropout and training:
            rmask = (_C.rand(B, self.units) >= self.recurrent_dropout).astype(x.dtype) / \
                (1 - self.recurrent_dropout)
        steps = range(T - 1, -1, -1) if self.go_backwards else range(T)
        seq = []
        for t in steps:
            h_in = h * rmask if rmask is not None else h
            h_new, c_new = self._cell(xw[:, t], h_in, c)
            if mask is not None:
                m = as_tensor(mask)[:, t].astype(x.dtype).unsqueeze(1)
                h_new = h_new * m + h * (1 - m)
                if lstm:
                    c_new = c_new * m + c * (1 - m)
            h, c = h_new, c_new
            seq.append(h)
        out = _C.stack(seq, axis=1) if self.return_sequences else h
        if self.return_state:
            return [out, h, c] if lstm else [out, h]
        return out

    def get_config(self):
        return dict(super().get_config(), units=self.units,
                    activation=activations.name_of(self.activation),
                    recurrent_activation=activations.name_of(self.recurrent_activation),
                    use_bias=self.use_bias, dropout=self.dropout,
                    recurrent_dropout=self.recurrent_dropout,
                    return_sequences=self.return_sequences, return_state=self.return_state,
                    go_backwards=self.go_backwards)


class SimpleRNN(_Recurrent):
    def __init__(self, units, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)


class LSTM(_Recurrent):
    pass


class GRU(_Recurrent):
    def get_config(self):
        return dict(super().get_config(), reset_after=self.reset_after)


class Bidirectional(Layer):
    """Run a recurrent layer forwards and a copy of it backwards; merge_mode
    "concat" (default), "sum", "mul", "ave" or None (a list of both)."""

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, _Recurrent):
            raise TypeError("Bidirectional wraps a recurrent layer (SimpleRNN, LSTM, GRU); got %s"
                            % type(layer).__name__)
        if merge_mode not in ("concat", "sum", "mul", "ave", None):
            raise ValueError("Bidirectional: merge_mode must be 'concat', 'sum', 'mul', 'ave' "
                             "or None; got %r" % (merge_mode,))
        self.merge_mode = merge_mode
        self.forward_layer = layer
        if backward_layer is None:
            cfg = layer.get_config()
            cfg.pop("name", None)
            cfg.pop("input_shape", None)
            cfg["go_backwards"] = not layer.go_backwards
            backward_layer = type(layer)(**cfg)
        self.backward_layer = backward_layer

    def forward(self, x, training=None, mask=None):
        f = self.forward_layer(x, training=training, mask=mask)
        b = self.backward_layer(x, training=training, mask=mask)
        states = []
        if self.forward_layer.return_state:
            f, fs = f[0], f[1:]
            b, bs = b[0], b[1:]
            states = list(fs) + list(bs)
        if self.forward_layer.return_sequences:
            b = _C.flip(b, axis=1)      # the backward layer's sequence runs from the end
        if self.merge_mode == "concat":
            out = _C.concatenate([f, b], axis=-1)
        elif self.merge_mode == "sum":
            out = f + b
        elif self.merge_mode == "mul":
            out = f * b
        elif self.merge_mode == "ave":
            out = (f + b) * 0.5
        else:
            out = [f, b]
        if states:
            return ([out] if not isinstance(out, list) else out) + states
        return out

    def get_config(self):
        from ..io.serialization import serialize_layer
        return dict(super().get_config(), layer=serialize_layer(self.forward_layer),
                    backward_layer=serialize_layer(self.backward_layer),
                    merge_mode=self.merge_mode)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from ..io.serialization import deserialize_layer
        config = dict(config)
        for key in ("layer", "backward_layer"):
            if config.get(key) is not None:
                config[key] = deserialize_layer(config[key], custom_objects)
        return cls(**config)


class _NoGrad:
    def __enter__(self):
        self.prev = _C._set_grad_enabled(False)

    def __exit__(self, *exc):
        _C._set_grad_enabled(self.prev)
