"""MultiheadAttention with PyTorch's parameters (in_proj_weight, in_proj_bias,
out_proj) and semantics (boolean masks mark positions NOT allowed to attend;
averaged attention weights returned unless need_weights=False)."""
import math

from .. import _C, initializers
from .basic import Linear, param_dtype
from .module import Module
from .parameter import Parameter


class MultiheadAttention(Module):
    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, kdim=None, vdim=None,
                 batch_first=False, dtype=None):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError("MultiheadAttention: embed_dim (%d) must be divisible by num_heads "
                             "(%d)" % (embed_dim, num_heads))
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, float(dropout)
        self.head_dim = embed_dim // num_heads
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self.batch_first = batch_first
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        glorot = initializers.GlorotUniform(layout="oi")
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(glorot((3 * embed_dim, embed_dim)))
        else:
            self.q_proj_weight = Parameter(glorot((embed_dim, embed_dim)))
            self.k_proj_weight = Parameter(glorot((embed_dim, self.kdim)))
            self.v_proj_weight = Parameter(glorot((embed_dim, self.vdim)))
        self.in_proj_bias = Parameter(_C.zeros(3 * embed_dim)) if bias else None
        if not bias:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        if bias:
            with _NoGrad():
                self.out_proj.bias.zero_()
        if dtype is not None:
            self.to(dtype)

    def get_config(self):
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "dropout": self.dropout, "bias": self.in_proj_bias is not None,
                "kdim": self.kdim, "vdim": self.vdim, "batch_first": self.batch_first,
                "dtype": param_dtype(self)}

    def _project(self, x, i):
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight[i * E:(i + 1) * E]
        else:
            w = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[i]
        y = x @ w.T
        if self.in_proj_bias is not None:
            y = y + self.in_proj_bias[i * E:(i + 1) * E]
        return y

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        L, N, E = query.shape
        S = key.shape[0]
        if E != self.embed_dim:
            raise ValueError("%s expects query with embed_dim %d; got shape %s"
                             % (self._label(), self.embed_dim, tuple(query.shape)))
        H, hd = self.num_heads, self.head_dim
        if not need_weights and attn_mask is None and key_padding_mask is None and \
                not (self.dropout and self.training):
            # no weights to return: the fused attention kernel, on batch-major views
            qb, kb, vb = (t.transpose(0, 1) for t in (query, key, value))       # (N, L, E)
            q = self._project(qb, 0).reshape(N, L, H, hd).permute(0, 2, 1, 3)
            k = self._project(kb, 1).reshape(N, S, H, hd).permute(0, 2, 1, 3)
            v = self._project(vb, 2).reshape(N, S, H, hd).permute(0, 2, 1, 3)
            o = _C.scaled_dot_product_attention(q, k, v, is_causal=is_causal)   # (N, H, L, hd)
            out = self.out_proj(o.permute(0, 2, 1, 3).reshape(N, L, E))         # (N, L, E)
            if unbatched:
                return out.squeeze(0), None
            return (out if self.batch_first else out.transpose(0, 1)), None
        q = self._project(query, 0).reshape(L, N * H, hd).transpose(0, 1)   # (N*H, L, hd)
        k = self._project(key, 1).reshape(S, N * H, hd).transpose(0, 1)
        v = self._project(value, 2).reshape(S, N * H, hd).transpose(0, 1)
        scores = (q @ k.transpose(1, 2)) * (1.0 / math.sqrt(hd))            # (N*H, L, S)
        scores = scores.reshape(N, H, L, S)
        neg = -math.inf
        if is_causal and attn_mask is None:
            attn_mask = _C.triu(_C.ones((L, S), dtype=_C.bool), k=1)
        if attn_mask is not None:
            m = attn_mask if isinstance(attn_mask, _C.Tensor) else _C.asarray(attn_mask)
            if m.ndim == 3:
                m = m.reshape(N, H, L, S)
            scores = _C.where(m, neg, scores) if m.dtype == _C.bool else scores + m
        if key_padding_mask is not None:
            kp = key_padding_mask if isinstance(key_padding_mask, _C.Tensor) \
                else _C.asarray(key_padding_mask)
            kp = kp.reshape(N, 1, 1, S)
            scores = _C.where(kp, neg, scores) if kp.dtype == _C.bool else scores + kp
        w = _C.softmax(scores, axis=-1)
        if self.dropout and self.training:
            w = _C.dropout(w, p=self.dropout, training=True)
        out = (w.reshape(N * H, L, S) @ v)                                   # (N*H, L, hd)
        out = out.transpose(0, 1).reshape(L, N, E)
        out = self.out_proj(out)
        if unbatched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        weights = w.mean(axis=1) if average_attn_weights else w
        if unbatched:
            weights = weights.squeeze(0)
        return out, weights


class _NoGrad:
    def __enter__(self):
        self.prev = _C._set_grad_enabled(False)

    def __exit__(self, *exc):
        _C._set_grad_enabled(self.prev)
