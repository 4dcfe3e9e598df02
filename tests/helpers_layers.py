"""One shared check for layers: build in float64, output against a NumPy
reference, state_dict round trip into a fresh layer, and gradcheck with
respect to the input and every weight."""
import numpy as np

import pyframe as pf


def check_layer(make, x, reference=None, grad=True, atol=1e-10, input_grad=True):
    """make(): a new layer; x: a NumPy input (float64 unless integer indices);
    reference(layer_weights_dict, x) -> expected NumPy output."""
    layer = make()
    layer.to(pf.float64)
    xt = pf.tensor(x, dtype=pf.float64) if x.dtype.kind == "f" else pf.tensor(x)
    layer.eval()
    out = layer(xt)
    if not layer.built:
        raise AssertionError("layer not built after its first call")
    out_np = np.array(out, dtype=np.float64)
    if reference is not None:
        weights = {k: np.array(v, dtype=np.float64) for k, v in layer.state_dict().items()}
        np.testing.assert_allclose(out_np, reference(weights, x), rtol=1e-9, atol=atol)
    # a fresh layer loaded with the state gives the same output
    fresh = make()
    fresh.to(pf.float64)
    fresh.eval()
    fresh(xt)     # builds
    fresh.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(np.array(fresh(xt)), out_np)
    if not grad:
        return layer, out
    params = [p for p in layer.parameters() if p.requires_grad]
    names = [n for n, p in layer.named_parameters() if p.requires_grad]
    leaves = [pf.tensor(np.array(p), dtype=pf.float64, requires_grad=True) for p in params]
    use_x = input_grad and x.dtype.kind == "f"
    xin = pf.tensor(x, dtype=pf.float64, requires_grad=True) if use_x else xt

    def f(*args):
        # run the layer with the given weight values
        for n, a in zip(names, args[1 if use_x else 0:]):
            mod = layer
            *path, leaf = n.split(".")
            for part in path:
                mod = getattr(mod, part)
            mod._parameters[leaf] = a
        return layer(args[0] if use_x else xt)

    try:
        inputs = ([xin] if use_x else []) + leaves
        assert pf.autograd.gradcheck(f, tuple(inputs))
    finally:
        for n, p in zip(names, params):
            mod = layer
            *path, leaf = n.split(".")
            for part in path:
                mod = getattr(mod, part)
            mod._parameters[leaf] = p
    return layer, out
