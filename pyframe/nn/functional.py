"""pf.nn.functional: the functional forms (PyTorch names).  The kernels are
the C ops of the table (pf.conv2d, pf.layer_norm, pf.cross_entropy, ...);
this module gathers them under PyTorch's spellings and adds the few that are
compositions."""
from .. import _C

_FORWARDED = (
    "relu", "relu6", "elu", "selu", "gelu", "silu", "sigmoid", "tanh", "softplus",
    "leaky_relu", "softmax", "log_softmax", "one_hot", "pad", "dropout", "batch_norm",
    "layer_norm", "group_norm", "rms_norm", "cross_entropy", "nll_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "l1_loss",
    "huber_loss", "smooth_l1_loss", "scaled_dot_product_attention", "conv1d", "conv2d",
    "conv_transpose2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
)


def __getattr__(name):
    if name in _FORWARDED:
        fn = getattr(_C, name, None)
        if fn is not None:
            return fn
    raise AttributeError("pyframe.nn.functional has no attribute %r" % (name,))


def __dir__():
    return sorted(set(globals()) | {n for n in _FORWARDED if hasattr(_C, n)})


def linear(input, weight, bias=None):
    """input @ weight.T + bias, weight (out_features, in_features)."""
    y = input @ weight.T
    return y + bias if bias is not None else y


def embedding(input, weight, padding_idx=None):
    out = weight[input]
    if padding_idx is not None:
        out = out * (input != padding_idx).astype(out.dtype).unsqueeze(-1)
    return out


def tanhshrink(x):
    return x - _C.tanh(x)


def softsign(x):
    return x / (_C.abs(x) + 1)


def hardtanh(x, min_val=-1.0, max_val=1.0):
    return _C.clip(x, min_val, max_val)


def normalize(input, p=2.0, dim=1, eps=1e-12):
    n = _C.norm(input, ord=p, axis=dim, keepdims=True)
    return input / _C.maximum(n, eps)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    num = (x1 * x2).sum(axis=dim)
    den = _C.maximum(_C.norm(x1, axis=dim) * _C.norm(x2, axis=dim), eps)
    return num / den


def kl_div(input, target, reduction="mean", log_target=False):
    """KL(target || exp(input)) with input as log-probabilities, as PyTorch."""
    if log_target:
        v = _C.exp(target) * (target - input)
    else:
        v = _C.where(target > 0, target * (_C.log(_C.maximum(target, 1e-45)) - input), 0.0)
    return _reduce(v, reduction, "kl_div", batch=input.shape[0] if input.ndim else 1)


def _reduce(v, reduction, who, batch=1):
    if reduction == "none":
        return v
    if reduction == "sum":
        return v.sum()
    if reduction == "mean":
        return v.mean()
    if reduction == "batchmean":
        return v.sum() / batch
    raise ValueError("%s: reduction must be 'none', 'mean' or 'sum'; got %r" % (who, reduction))
