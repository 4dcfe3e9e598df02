"""MultiHeadAttention (Keras) and a TransformerEncoder block."""
import math

from .. import _C, activations
from .base import Layer, as_tensor
from .core import Dense, Dropout
from .normalization import LayerNormalization


class _Projection(Layer):
    """x (..., d) -> (..., heads, size) with kernel (d, heads, size), bias (heads, size)."""

    def __init__(self, heads, size, use_bias=True, kernel_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(**kwargs)
        self.heads, self.size, self.use_bias = heads, size, use_bias
        self.kernel_initializer = kernel_initializer

    def build(self, input_shape):
        self.add_weight("kernel", (input_shape[-1], self.heads, self.size),
                        self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.heads, self.size), "zeros")

    def forward(self, x):
        d = self.kernel.shape[0]
        self._check_last_dim(x, d)
        y = x @ self.kernel.reshape(d, self.heads * self.size)
        y = y.reshape(tuple(x.shape[:-1]) + (self.heads, self.size))
        return y + self.bias if self.use_bias else y


class _OutProjection(Layer):
    """(..., heads, size) -> (..., out) with kernel (heads, size, out), bias (out,)."""

    def __init__(self, out_dim, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.out_dim, self.use_bias = out_dim, use_bias

    def build(self, input_shape):
        self.add_weight("kernel", (input_shape[-2], input_shape[-1], self.out_dim))
        if self.use_bias:
            self.add_weight("bias", (self.out_dim,), "zeros")

    def forward(self, x):
        h, s, o = self.kernel.shape
        y = x.reshape(tuple(x.shape[:-2]) + (h * s,)) @ self.kernel.reshape(h * s, o)
        return y + self.bias if self.use_bias else y


class MultiHeadAttention(Layer):
    """Keras's MultiHeadAttention: call(query, value, key=None,
    attention_mask=None, return_attention_scores=False, use_causal_mask=False);
    a boolean attention_mask (batch, T, S) is True where attention is allowed."""

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_shape=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        for what, v in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError("MultiHeadAttention: %s must be a positive integer; got %r"
                                 % (what, v))
        self.num_heads, self.key_dim = num_heads, key_dim
        self.value_dim = value_dim or key_dim
        self.dropout, self.use_bias, self._output_shape = float(dropout), use_bias, output_shape
        self.query_dense = _Projection(num_heads, key_dim, use_bias, kernel_initializer)
        self.key_dense = _Projection(num_heads, key_dim, use_bias, kernel_initializer)
        self.value_dense = _Projection(num_heads, self.value_dim, use_bias, kernel_initializer)
        self.output_dense = None

    def build(self, query_shape):
        # the output projection's size defaults to the query's feature size
        out_dim = self._output_shape or query_shape[-1]
        self.output_dense = _OutProjection(out_dim, self.use_bias)
        self.output_dense.to(self._dtype)

    def forward(self, query, value, key=None, attention_mask=None,
                return_attention_scores=False, training=None, use_causal_mask=False):
        query, value = as_tensor(query), as_tensor(value)
        key = value if key is None else as_tensor(key)
        q = self.query_dense(query)           # (B, T, H, k)
        k = self.key_dense(key)               # (B, S, H, k)
        v = self.value_dense(value)           # (B, S, H, v)
        q, k, v = q.moveaxis(-2, -3), k.moveaxis(-2, -3), v.moveaxis(-2, -3)
        scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.key_dim))  # (B, H, T, S)
        mask = None
        if attention_mask is not None:
            mask = as_tensor(attention_mask).astype(_C.bool)
            mask = mask.unsqueeze(-3) if mask.ndim == 3 else mask
        if use_causal_mask:
            T, S = scores.shape[-2], scores.shape[-1]
            causal = _C.tril(_C.ones((T, S), dtype=_C.bool))
            mask = causal if mask is None else _C.logical_and(mask, causal)
        if mask is not None:
            scores = _C.where(mask, scores, -1e9)
        w = _C.softmax(scores, axis=-1)
        training = self.training if training is None else training
        if self.dropout and training:
            w = _C.dropout(w, p=self.dropout, training=True)
        out = (w @ v).moveaxis(-3, -2)        # (B, T, H, v)
        out = self.output_dense(out)
        return (out, w) if return_attention_scores else out

    def get_config(self):
        return dict(super().get_config(), num_heads=self.num_heads, key_dim=self.key_dim,
                    value_dim=self.value_dim, dropout=self.dropout, use_bias=self.use_bias,
                    output_shape=self._output_shape)


class TransformerEncoder(Layer):
    """A transformer encoder block (as keras_hub's): self-attention and a
    feed-forward network, each with dropout, a residual connection and layer
    normalisation (after the residual, or before with normalize_first=True)."""

    def __init__(self, intermediate_dim, num_heads, dropout=0.0, activation="relu",
                 layer_norm_epsilon=1e-5, normalize_first=False, **kwargs):
        super().__init__(**kwargs)
        self.intermediate_dim, self.num_heads = intermediate_dim, num_heads
        self.dropout_rate, self.activation = float(dropout), activations.get(activation)
        self.epsilon, self.normalize_first = layer_norm_epsilon, normalize_first

    def build(self, input_shape):
        hidden = input_shape[-1]
        if hidden % self.num_heads:
            raise ValueError("%s: the hidden size %d must be divisible by num_heads %d"
                             % (self._label(), hidden, self.num_heads))
        self.self_attention = MultiHeadAttention(self.num_heads, hidden // self.num_heads,
                                                 dropout=self.dropout_rate)
        self.attention_norm = LayerNormalization(epsilon=self.epsilon)
        self.attention_dropout = Dropout(self.dropout_rate)
        self.intermediate_dense = Dense(self.intermediate_dim, activation=self.activation)
        self.output_dense = Dense(hidden)
        self.feedforward_norm = LayerNormalization(epsilon=self.epsilon)
        self.feedforward_dropout = Dropout(self.dropout_rate)
        for m in (self.self_attention, self.attention_norm, self.intermediate_dense,
                  self.output_dense, self.feedforward_norm):
            m.train(self.training)

    def forward(self, x, padding_mask=None, attention_mask=None, training=None):
        x = as_tensor(x)
        mask = None
        if padding_mask is not None:
            pm = as_tensor(padding_mask).astype(_C.bool)          # (B, S): True = real token
            mask = pm.unsqueeze(1)                                # (B, 1, S)
        if attention_mask is not None:
            am = as_tensor(attention_mask).astype(_C.bool)
            mask = am if mask is None else _C.logical_and(mask, am)
        h = self.attention_norm(x) if self.normalize_first else x
        a = self.self_attention(h, h, attention_mask=mask, training=training)
        a = self.attention_dropout(a, training=training)
        x = x + a
        if not self.normalize_first:
            x = self.attention_norm(x)
        h = self.feedforward_norm(x) if self.normalize_first else x
        f = self.output_dense(self.intermediate_dense(h))
        f = self.feedforward_dropout(f, training=training)
        x = x + f
        if not self.normalize_first:
            x = self.feedforward_norm(x)
        return x

    def get_config(self):
        return dict(super().get_config(), intermediate_dim=self.intermediate_dim,
                    num_heads=self.num_heads, dropout=self.dropout_rate,
                    activation=activations.name_of(self.activation),
                    layer_norm_epsilon=self.epsilon, normalize_first=self.normalize_first)
