"""pf.nn.Module, Parameter, containers, state_dict, hooks, summary; pf.initializers."""
from collections import OrderedDict

import numpy as np
import pytest

import pyframe as pf
from pyframe import nn
from pyframe import initializers as init


class Affine(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.weight = nn.Parameter(pf.randn(o, i))
        self.bias = nn.Parameter(pf.zeros(o))
        self.register_buffer("calls", pf.zeros(()))
        self.register_buffer("scratch", pf.zeros(2), persistent=False)

    def forward(self, x):
        with pf.no_grad():
            self.calls += 1
        return x @ self.weight.T + self.bias


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = Affine(4, 8)
        self.fc2 = Affine(8, 2)
        self.blocks = nn.ModuleList([Affine(2, 2), Affine(2, 2)])

    def forward(self, x):
        x = self.fc1(x).tanh()
        x = self.fc2(x)
        for b in self.blocks:
            x = b(x)
        return x


def test_parameter_is_a_leaf_sharing_memory():
    t = pf.ones(3)
    p = nn.Parameter(t)
    assert isinstance(p, pf.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf
    assert np.shares_memory(np.asarray(p), np.asarray(t))
    assert type(p * 2) is pf.Tensor
    assert repr(p).startswith("Parameter containing:")
    assert not nn.Parameter(pf.ones(2), requires_grad=False).requires_grad
    with pytest.raises(TypeError, match=r"Parameter: only floating-point tensors can require"):
        nn.Parameter(pf.arange(3))


def test_registration_and_dotted_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "blocks.0.weight",
                     "blocks.0.bias", "blocks.1.weight", "blocks.1.bias"]
    assert [n for n, _ in net.named_buffers()] == ["fc1.calls", "fc1.scratch", "fc2.calls",
                                                   "fc2.scratch", "blocks.0.calls",
                                                   "blocks.0.scratch", "blocks.1.calls",
                                                   "blocks.1.scratch"]
    assert [n for n, _ in net.named_children()] == ["fc1", "fc2", "blocks"]
    assert len(list(net.modules())) == 6
    assert net.count_params() == 4 * 8 + 8 + 8 * 2 + 2 + 2 * (4 + 2)


def test_shared_parameters_are_counted_once():
    a = Affine(3, 3)
    seq = nn.Sequential(a, a)
    assert len(list(seq.parameters())) == 2


def test_state_dict_round_trip_and_persistence():
    pf.manual_seed(1)
    a, b = Net(), Net()
    sd = a.state_dict()
    assert "fc1.calls" in sd and "fc1.scratch" not in sd
    assert not sd["fc1.weight"].requires_grad
    b.load_state_dict(sd)
    x = pf.randn(5, 4)
    np.testing.assert_array_equal(np.asarray(a(x)), np.asarray(b(x)))
    # NumPy values (a converted PyTorch state_dict) load too
    b.load_state_dict({k: np.array(v) * 0 for k, v in a.state_dict().items()})
    assert float(pf.abs(b.fc1.weight).sum()) == 0


def test_load_state_dict_errors_name_the_key_and_write_nothing():
    net = Net()
    sd = net.state_dict()
    before = np.array(net.fc1.weight)
    bad = dict(sd)
    bad["fc1.weight"] = pf.zeros((9, 9))
    with pytest.raises(ValueError, match=r"load_state_dict: 'fc1.weight' has shape \(8, 4\) in "
                                         r"the module but \(9, 9\) in the state_dict"):
        net.load_state_dict(bad)
    missing = {k: v for k, v in sd.items() if k != "fc2.bias"}
    with pytest.raises(KeyError, match=r"missing keys \['fc2.bias'\]"):
        net.load_state_dict(missing)
    extra = dict(sd, **{"fc3.weight": pf.zeros(1)})
    with pytest.raises(KeyError, match=r"unexpected keys \['fc3.weight'\].*strict=False"):
        net.load_state_dict(extra)
    assert net.load_state_dict(missing, strict=False) == (["fc2.bias"], [])
    np.testing.assert_array_equal(np.array(net.fc1.weight), before)
    with pytest.raises(TypeError, match=r"expected a mapping"):
        net.load_state_dict([1, 2])


def test_train_eval_zero_grad_requires_grad_and_trainable():
    net = Net()
    assert net.training and net.fc1.training
    net.eval()
    assert not net.training and not net.blocks[1].training
    net.train()
    assert net.blocks[0].training
    net(pf.randn(3, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(float(pf.abs(p.grad).sum()) == 0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.fc1.trainable = False
    assert not net.fc1.weight.requires_grad and net.fc2.weight.requires_grad
    assert len(net.trainable_weights) == 6 and not net.trainable
    net.requires_grad_(True)
    assert net.trainable


def test_to_dtype_keeps_parameter_objects_registered():
    net = Net().to(pf.float64)
    assert all(p.dtype == pf.float64 for p in net.parameters())
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())
    assert net.fc1.calls.dtype == pf.float64
    out = net(pf.randn(2, 4).astype(pf.float64))
    assert out.dtype == pf.float64
    with pytest.raises(TypeError, match=r"Net 'net(_\d+)?'.to: modules convert to floating"):
        net.to(pf.int32)
    assert net.double() is net and net.float().fc1.weight.dtype == pf.float32


def test_forward_hooks_and_pre_hooks():
    m = Affine(2, 2)
    seen = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    h2 = m.register_forward_hook(lambda mod, args, out: seen.append(out.shape) or out + 1)
    y = m(pf.ones((3, 2)))
    np.testing.assert_allclose(np.asarray(y), np.ones((3, 2)))   # zeros in, bias 0, +1
    assert seen == [(3, 2)]
    h1.remove()
    h2.remove()
    y = m(pf.ones((1, 2)))
    assert seen == [(3, 2)]


def test_apply_and_repr():
    net = Net()
    kinds = []
    net.apply(lambda mod: kinds.append(type(mod).__name__))
    assert kinds[-1] == "Net" and kinds.count("Affine") == 4
    r = repr(net)
    assert "(fc1): Affine()" in r and "(blocks): ModuleList(" in r and "(0): Affine()" in r


def test_attribute_errors():
    class NoInit(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(pf.ones(1))

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\)"):
        NoInit()
    m = Affine(2, 2)
    with pytest.raises(TypeError, match=r"cannot assign Tensor to parameter 'weight'"):
        m.weight = pf.ones((2, 2))
    with pytest.raises(AttributeError, match=r"'Affine' object has no attribute 'nope'"):
        m.nope
    with pytest.raises(ValueError, match=r"names must be non-empty strings without '.'"):
        m.register_buffer("a.b", pf.ones(1))
    with pytest.raises(TypeError, match=r"register_parameter: 'p' must be a pf.nn.Parameter"):
        m.register_parameter("p", pf.ones(1))


def test_sequential_forms_indexing_and_state_dict_names():
    a, b = Affine(3, 4), Affine(4, 2)
    s = nn.Sequential(a, b)
    assert list(s.state_dict())[:2] == ["0.weight", "0.bias"]
    assert s[0] is a and s[-1] is b and s[b.name] is b and len(s) == 2
    assert isinstance(s[:1], nn.Sequential) and s[:1][0] is a
    s2 = nn.Sequential([Affine(3, 4)]).add(Affine(4, 1))
    assert s2(pf.ones((2, 3))).shape == (2, 1)
    named = nn.Sequential(OrderedDict(first=Affine(3, 3), second=Affine(3, 1)))
    assert list(named.state_dict())[0] == "first.weight"
    with pytest.raises(KeyError, match=r"no layer named 'zzz'"):
        s["zzz"]
    with pytest.raises(IndexError, match=r"index 5 is out of range for 2 layers"):
        s[5]
    with pytest.raises(TypeError, match=r"entry '2' must be a layer \(a pf.nn.Module\); got int"):
        s.add(3)
    assert pf.Sequential is nn.Sequential


def test_module_dict():
    d = nn.ModuleDict({"a": Affine(2, 2)})
    d["b"] = Affine(2, 3)
    assert "b" in d and len(d) == 2 and list(d.keys()) == ["a", "b"]
    assert [n for n, _ in d.named_parameters()][:2] == ["a.weight", "a.bias"]


def test_summary_text_and_html(capsys):
    pf.manual_seed(0)
    s = nn.Sequential(Affine(4, 8), Affine(8, 2), name="demo")
    s.summary()
    out = capsys.readouterr().out
    assert 'Model: "demo"' in out and "?" in out            # not called yet
    s(pf.ones((5, 4)))
    lines = []
    s.summary(print_fn=lines.append)
    text = lines[0]
    assert "(None, 8)" in text and "(None, 2)" in text
    assert "Total params: 60" in text            # 40 + 18 + 2 scalar buffers
    assert "Trainable params: 58" in text and "Non-trainable params: 4" not in text
    assert "Non-trainable params: 2" in text
    html = s._repr_html_()
    assert "<table>" in html and "Affine" in html and "58" in html


def test_summary_with_input_shape_for_a_subclassed_model():
    net = Net()
    lines = []
    net.summary(print_fn=lines.append, input_shape=(7, 4))
    assert "(None, 8)" in lines[0] and "blocks (ModuleList)" in lines[0]


# ------------------------------------------------------------------ initializers

@pytest.mark.parametrize("cls, var", [
    (init.GlorotUniform, 2 / (200 + 300)), (init.GlorotNormal, 2 / (200 + 300)),
    (init.HeUniform, 2 / 200), (init.HeNormal, 2 / 200),
    (init.LecunUniform, 1 / 200), (init.LecunNormal, 1 / 200)])
def test_variance_scaling_statistics(cls, var):
    pf.manual_seed(0)
    w = np.array(cls()((200, 300)), dtype=np.float64)
    assert abs(w.var() / var - 1) < 0.03
    assert abs(w.mean()) < 0.01 * np.sqrt(var) * 10
    if "Uniform" in cls.__name__:
        assert np.abs(w).max() <= np.sqrt(3 * var) * (1 + 1e-6)
    else:   # truncated at two (untruncated) standard deviations
        assert np.abs(w).max() <= 2 * np.sqrt(var) / 0.8796256610342398 * (1 + 1e-6)


def test_fans_follow_the_layout():
    assert init.compute_fans((3, 3, 16, 32)) == (3 * 3 * 16, 3 * 3 * 32)
    assert init.compute_fans((32, 16, 3, 3), layout="oi") == (16 * 9, 32 * 9)
    assert init.compute_fans((10,)) == (10, 10)
    with pytest.raises(ValueError, match=r"layout must be 'io'"):
        init.compute_fans((2, 2), layout="xy")


def test_initializers_are_reproducible_and_seedable():
    pf.manual_seed(5)
    a = np.array(init.GlorotUniform()((8, 8)))
    pf.manual_seed(5)
    b = np.array(init.GlorotUniform()((8, 8)))
    np.testing.assert_array_equal(a, b)
    c = np.array(init.HeNormal(seed=3)((8, 8)))
    d = np.array(init.HeNormal(seed=3)((8, 8)))
    np.testing.assert_array_equal(c, d)
    assert not np.array_equal(a, np.array(init.GlorotUniform()((8, 8))))


def test_orthogonal_constant_and_lookup():
    q = np.array(init.Orthogonal(gain=2.0)((30, 20)), dtype=np.float64)
    np.testing.assert_allclose(q.T @ q, 4 * np.eye(20), atol=1e-5)
    wide = np.array(init.Orthogonal()((5, 12)), dtype=np.float64)
    np.testing.assert_allclose(wide @ wide.T, np.eye(5), atol=1e-5)
    np.testing.assert_array_equal(np.array(init.Constant(1.5)((2, 2))), np.full((2, 2), 1.5))
    assert isinstance(init.get("glorot_uniform"), init.GlorotUniform)
    assert isinstance(init.get("kaiming_normal"), init.HeNormal)
    assert init.get(init.Zeros) is not None
    with pytest.raises(ValueError, match=r"unknown initializer 'glorot'"):
        init.get("glorot")
    with pytest.raises(ValueError, match=r"Orthogonal: needs a weight of at least 2 dimensions"):
        init.Orthogonal()((4,))
    with pytest.raises(ValueError, match=r"VarianceScaling: mode must be"):
        init.VarianceScaling(mode="fan")
    t = np.array(init.TruncatedNormal(stddev=1.0)((1000,)))
    assert np.abs(t).max() <= 2.0


def test_sequential_with_declared_input_builds_every_layer_and_summary_changes_nothing():
    import pyframe as pf
    import numpy as np
    model = pf.Sequential([pf.layers.Dense(6, input_shape=(4,)), pf.layers.BatchNormalization(),
                           pf.layers.Dropout(0.5), pf.layers.Dense(3)])
    # Keras builds a Sequential whose input is known: every weight exists before any call
    assert [tuple(w.shape) for w in model.trainable_weights] == [(4, 6), (6,), (6,), (6,), (6, 3),
                                                                 (3,)]
    assert model.training
    mean = np.array(model.layers[1].moving_mean)
    state = pf.get_rng_state()
    model.summary(print_fn=lambda s: None)
    np.testing.assert_array_equal(np.array(model.layers[1].moving_mean), mean)
    assert np.array_equal(np.asarray(pf.get_rng_state()), np.asarray(state))
    assert model.training and all(m.training for m in model.modules())
    lazy = pf.Sequential([pf.layers.Dense(6), pf.layers.Dense(3)])
    assert lazy.weights == []
