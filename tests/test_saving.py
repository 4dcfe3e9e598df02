"""pf.saving: models and weights in one safetensors file.

Round trips are checked against the model that was saved (bit-identical
predictions and state_dicts); malformed files against the promise that
every one of them raises a ValueError naming the file, and that a failed
load changes nothing."""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import pyframe as pf
from pyframe import saving

L = pf.layers


# ------------------------------------------------------------------ helpers

def bits(t):
    """A tensor's bytes (bfloat16 through ml_dtypes, a test dependency)."""
    return np.asarray(t).tobytes()


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        assert tuple(sa[k].shape) == tuple(sb[k].shape), k
        assert bits(sa[k]) == bits(sb[k]), k


def outputs(model, x):
    y = model(x)
    if isinstance(y, (tuple, list)):
        y = y[0]
    return np.asarray(y)


def round_trip(model, path, **kw):
    saving.save_model(model, path)
    return pf.load_model(path, **kw)


def header_of(raw):
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def with_header(header, data, pad=True):
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


@pytest.fixture
def small(tmp_path):
    """A small built model, its file and an input."""
    pf.manual_seed(1)
    model = pf.Sequential([L.Dense(8, activation="relu"), L.BatchNormalization(), L.Dense(3)])
    x = pf.randn(5, 4)
    model(x)
    model.eval()
    path = str(tmp_path / "small.safetensors")
    saving.save_model(model, path)
    return model, path, x


# ------------------------------------------------------------------ round trips

def _int_input(shape):
    return pf.randint(0, 10, shape)


MODELS = {
    "dense": (lambda: pf.Sequential([L.Dense(8, activation="tanh"),
                                     L.Dense(3, use_bias=False)]), (5, 4)),
    "conv_bn_dropout": (lambda: pf.Sequential([
        L.Conv2D(4, 3, padding="same", strides=2, activation="relu"), L.BatchNormalization(),
        L.MaxPooling2D(), L.Flatten(), L.Dropout(0.3), L.Dense(2)]), (2, 8, 8, 3)),
    "conv1d_pooling": (lambda: pf.Sequential([
        L.Conv1D(4, 3, dilation_rate=2), L.AveragePooling1D(),
        L.GlobalMaxPooling1D(keepdims=True)]), (2, 12, 3)),
    "depthwise_separable_transpose": (lambda: pf.Sequential([
        L.DepthwiseConv2D(3, depth_multiplier=2), L.SeparableConv2D(5, 3, padding="same"),
        L.Conv2DTranspose(3, 3, strides=2, padding="same"), L.GlobalAveragePooling2D()]),
        (2, 7, 7, 3)),
    "embedding_recurrent": (lambda: pf.Sequential([
        L.Embedding(20, 6), L.LSTM(5, return_sequences=True),
        L.GRU(4, reset_after=False, return_sequences=True), L.SimpleRNN(3)]), "int"),
    "bidirectional_layernorm": (lambda: pf.Sequential([
        L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode="sum"),
        L.LayerNormalization(), L.Dense(2)]), (2, 5, 3)),
    "norms_and_shapes": (lambda: pf.Sequential([
        L.GroupNormalization(2, center=False), L.RMSNormalization(), L.Rescaling(0.5, 1.0),
        L.Reshape((4, 2)), L.Permute((2, 1)), L.Flatten(), L.Activation("gelu"),
        L.ReLU(max_value=0.5), L.LeakyReLU(0.1), L.Softmax()]), (2, 8)),
    "transformer": (lambda: pf.Sequential([L.TransformerEncoder(16, 2), L.Dense(3)]),
                    (2, 5, 8)),
    "nested_sequential": (lambda: pf.Sequential([
        L.Dense(6), pf.Sequential([L.Dense(5, activation="relu"), pf.Sequential([L.Dense(4)])]),
        L.Dense(2)]), (3, 4)),
    "padding_channels_first_flatten": (lambda: pf.Sequential([
        L.ZeroPadding2D(((1, 2), (0, 1))), L.UpSampling2D(2),
        L.Flatten(data_format="channels_first")]), (1, 3, 3, 2)),
    "torch_modules": (lambda: pf.nn.Sequential(
        pf.nn.Conv2d(3, 4, 3, padding=1), pf.nn.BatchNorm2d(4), pf.nn.ReLU(), pf.nn.MaxPool2d(2),
        pf.nn.Flatten(), pf.nn.Linear(16, 5), pf.nn.LayerNorm(5), pf.nn.GELU(approximate="tanh"),
        pf.nn.Dropout(0.2), pf.nn.Linear(5, 2)), (2, 3, 4, 4)),
    "torch_recurrent": (lambda: pf.nn.Sequential(
        pf.nn.Embedding(10, 4, padding_idx=0),
        pf.nn.GRU(4, 3, num_layers=2, batch_first=True, bidirectional=True)), "int"),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_is_bit_identical(name, tmp_path):
    make, shape = MODELS[name]
    pf.manual_seed(0)
    model = make()
    x = _int_input((3, 7)) if shape == "int" else pf.randn(*shape)
    model(x)            # builds, and moves the batch-norm statistics off their start
    model.eval()
    expected = outputs(model, x)
    loaded = round_trip(model, str(tmp_path / "m.safetensors"))
    assert type(loaded) is type(model)
    assert not loaded.training
    assert_same_state(model, loaded)
    assert np.array_equal(outputs(loaded, x), expected)
    # and the loaded model saves to the same file contents
    saving.save_model(loaded, str(tmp_path / "again.safetensors"))
    a, b = (open(str(tmp_path / n), "rb").read() for n in ("m.safetensors", "again.safetensors"))
    assert header_of(a)[1] == header_of(b)[1]


def test_layers_not_built_yet_stay_unbuilt(tmp_path):
    # never called and no input_shape: no weights, and the loaded model has none either
    model = pf.Sequential([L.Dense(4), L.Dense(2)])
    loaded = round_trip(model, str(tmp_path / "m.safetensors"))
    assert list(loaded.state_dict()) == [] and not loaded[0].built
    # an input_shape on the first layer builds the model at construction
    model = pf.Sequential([L.Dense(4, input_shape=(3,)), L.Dense(2)])
    loaded = round_trip(model, str(tmp_path / "m.safetensors"))
    assert loaded[1].built
    assert_same_state(model, loaded)


def test_normalization_statistics_from_adapt_round_trip(tmp_path):
    data = np.random.default_rng(0).normal(3.0, 2.0, (50, 3))
    model = pf.Sequential([L.Normalization(), L.Dense(2)])
    model[0].adapt(data)
    x = pf.tensor(data[:5], dtype=pf.float32)
    expected = outputs(model, x)
    loaded = round_trip(model, str(tmp_path / "m.safetensors"))
    assert loaded[0].count.dtype == pf.float64
    assert_same_state(model, loaded)
    assert np.array_equal(outputs(loaded, x), expected)


@pytest.mark.parametrize("dtype", [pf.float64, pf.float16, pf.bfloat16])
def test_float64_float16_bfloat16_weights_round_trip_bit_exactly(dtype, tmp_path):
    model = pf.Sequential([L.Dense(6, activation="relu"), L.Dense(3)])
    model(pf.randn(2, 4))
    model.to(dtype)
    # values a narrowing through another format would disturb
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-40, 3.0e38, 65504.0, 1.0 / 3])
    with pf.no_grad():
        model[0].kernel[0] = pf.tensor(special[:6] if dtype != pf.float16
                                       else special[2:8]).astype(dtype)
    loaded = round_trip(model, str(tmp_path / "m.safetensors"))
    assert loaded[0].kernel.dtype == dtype
    assert_same_state(model, loaded)
    x = pf.randn(3, 4).astype(dtype)
    assert outputs(loaded, x).tobytes() == outputs(model, x).tobytes()


def test_bfloat16_without_ml_dtypes(tmp_path, monkeypatch):
    # without ml_dtypes the bytes go through float32, whose top half a bfloat16 is
    from pyframe.io import format as fmt
    model = pf.Sequential([L.Dense(5, input_shape=(4,))]).to(pf.bfloat16)
    with pf.no_grad():
        model[0].kernel[0] = pf.tensor([np.inf, -0.0, 1e-40, -3.5, 2.0 ** -130])\
            .astype(pf.bfloat16)
    path = str(tmp_path / "m.safetensors")
    monkeypatch.setattr(fmt, "_ml_dtypes", lambda: None)
    saving.save_model(model, path)
    loaded = pf.load_model(path)
    monkeypatch.undo()
    assert_same_state(model, loaded)
    # the file holds what the one written with ml_dtypes holds
    other = str(tmp_path / "n.safetensors")
    saving.save_model(model, other)
    assert header_of(open(path, "rb").read()) == header_of(open(other, "rb").read())


def test_non_contiguous_weights(tmp_path):
    model = pf.Sequential([L.Dense(3, input_shape=(5,))])
    # a weight that is a transposed view of its storage
    t = pf.randn(3, 5).T
    assert not t.is_contiguous()
    model[0].kernel = pf.nn.Parameter(t)
    assert not model[0].kernel.is_contiguous()
    path = str(tmp_path / "m.safetensors")
    loaded = round_trip(model, path)
    assert_same_state(model, loaded)
    # and loading into a non-contiguous weight writes through its strides
    model2 = pf.Sequential([L.Dense(3, input_shape=(5,))])
    model2[0].kernel = pf.nn.Parameter(pf.zeros((3, 5)).T)
    saving.load_weights(model2, path)
    assert_same_state(model, model2)


@saving.register_serializable(package="tests")
class TiedAutoencoder(pf.nn.Module):
    """The decoder shares the encoder's weight (tied weights)."""

    def __init__(self, n=4):
        super().__init__()
        self.n = n
        self.enc = pf.nn.Linear(n, n)
        self.dec = pf.nn.Linear(n, n)
        self.dec.weight = self.enc.weight

    def forward(self, x):
        return self.dec(pf.tanh(self.enc(x)))

    def get_config(self):
        return {"n": self.n}


def test_tied_weights_are_stored_once_and_stay_tied(tmp_path):
    model = TiedAutoencoder(4)
    path = str(tmp_path / "m.safetensors")
    loaded = round_trip(model, path)
    header, _ = header_of(open(path, "rb").read())
    assert "dec.weight" not in header and "enc.weight" in header
    assert json.loads(header["__metadata__"]["pyframe.aliases"]) == {"dec.weight": "enc.weight"}
    assert loaded.dec.weight is loaded.enc.weight
    assert_same_state(model, loaded)
    fresh = TiedAutoencoder(4)
    saving.load_weights(fresh, path)
    assert fresh.dec.weight is fresh.enc.weight
    assert_same_state(model, fresh)


@saving.register_serializable(package="tests")
class Scale(L.Layer):
    """A registered custom Keras-style layer with a weight of its own."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.add_weight("w", (input_shape[-1],), "random_normal")

    def forward(self, x):
        return x * self.w * self.factor

    def get_config(self):
        return dict(super().get_config(), factor=self.factor)


class Offset(L.Layer):
    """Not registered: it loads only through custom_objects."""

    def __init__(self, offset, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset

    def forward(self, x):
        return x + self.offset

    def get_config(self):
        return dict(super().get_config(), offset=self.offset)


def test_registered_custom_layer_round_trips(tmp_path):
    model = pf.Sequential([L.Dense(4), Scale(3.0), L.Dense(2)])
    x = pf.randn(3, 5)
    expected = outputs(model, x)
    config = saving.serialize_layer(model)
    assert config["config"]["layers"][1]["registered_name"] == "tests>Scale"
    assert saving.get_registered_object("tests>Scale") is Scale
    assert saving.get_registered_name(Scale) == "tests>Scale"
    loaded = round_trip(model, str(tmp_path / "m.safetensors"))
    assert isinstance(loaded[1], Scale) and loaded[1].factor == 3.0
    assert np.array_equal(outputs(loaded, x), expected)


def test_custom_objects_and_scope(tmp_path):
    model = pf.Sequential([L.Dense(3), Offset(0.5)])
    x = pf.randn(2, 3)
    expected = outputs(model, x)
    path = str(tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match=r"neither a built-in pyframe layer nor a registered "
                                         r"class.*register_serializable"):
        saving.save_model(model, path)
    # registered under a name of the test's choosing, then loaded by that name
    saving.register_serializable(package="tests", name="OffsetLayer")(Offset)
    saving.save_model(model, path)
    assert np.array_equal(outputs(pf.load_model(path), x), expected)
    # a file naming a registration this process lacks (as in a fresh session)
    raw = _rewritten(path, lambda h: h["__metadata__"].update({
        "pyframe.architecture": h["__metadata__"]["pyframe.architecture"].replace(
            "tests>OffsetLayer", "elsewhere>Offset")}))
    open(path, "wb").write(raw)
    with pytest.raises(ValueError, match=r"unknown layer class 'Offset' \(registered as "
                                         r"'elsewhere>Offset'\).*custom_objects=\{'Offset'"):
        pf.load_model(path)
    loaded = pf.load_model(path, custom_objects={"Offset": Offset})
    assert np.array_equal(outputs(loaded, x), expected)
    with saving.custom_object_scope({"Offset": Offset}):
        loaded = pf.load_model(path)
    assert np.array_equal(outputs(loaded, x), expected)


def test_custom_activation_through_custom_objects(tmp_path):
    def cube(x):
        return x * x * x
    model = pf.Sequential([L.Dense(3, activation=cube, input_shape=(2,))])
    path = str(tmp_path / "m.safetensors")
    saving.save_model(model, path)
    with pytest.raises(ValueError, match=r"unknown activation 'cube'.*custom_objects"):
        pf.load_model(path)
    loaded = pf.load_model(path, custom_objects={"cube": cube})
    x = pf.randn(4, 2)
    assert np.array_equal(outputs(loaded, x), outputs(model, x))


def test_pytorch_style_module_cannot_be_saved_whole_but_its_weights_can(tmp_path):
    class Net(pf.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = pf.nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x)

    net = Net()
    with pytest.raises(ValueError, match=r"save_model: Net 'net.*' is neither a built-in "
                                         r"pyframe layer nor a registered class.*"
                                         r"save_weights"):
        saving.save_model(net, str(tmp_path / "m.safetensors"))
    assert not os.listdir(str(tmp_path))
    saving.save_weights(net, str(tmp_path / "w.safetensors"))
    other = Net()
    saving.load_weights(other, str(tmp_path / "w.safetensors"))
    assert_same_state(net, other)


def test_registered_layer_whose_config_misses_an_argument_fails_at_save(tmp_path):
    @saving.register_serializable(package="tests")
    class Forgetful(L.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def forward(self, x):
            return x

    with pytest.raises(ValueError, match=r"Forgetful.*get_config\(\) leaves out the constructor "
                                         r"argument\(s\) units"):
        saving.save_model(pf.Sequential([Forgetful(3)]), str(tmp_path / "m.safetensors"))


def test_serialize_layer_is_json_and_deserialize_builds(tmp_path):
    layer = L.Dense(4, activation="relu")
    layer(pf.randn(2, 3))
    config = saving.serialize_layer(layer)
    assert json.loads(json.dumps(config)) == config
    assert config["module"] == "pyframe.layers" and config["class_name"] == "Dense"
    assert config["registered_name"] is None
    assert config["build_config"] == {"input_shapes": {"": [2, 3]}}
    again = saving.deserialize_layer(config)
    assert again.built and tuple(again.kernel.shape) == (3, 4)
    with pytest.raises(ValueError, match=r"unknown layer class 'Mystery'.*"
                                         r"register_serializable"):
        saving.deserialize_layer({"class_name": "Mystery", "config": {}})
    with pytest.raises(ValueError, match=r"cannot rebuild Dense from its config: .*units"):
        saving.deserialize_layer({"class_name": "Dense", "config": {"units": -1}})
    with pytest.raises(TypeError, match=r"serialize_layer: expected a layer"):
        saving.serialize_layer("Dense")


def test_loading_leaves_the_random_generator_alone(small, tmp_path):
    _, path, _ = small
    pf.manual_seed(5)
    before = pf.get_rng_state()
    pf.load_model(path)
    model = pf.Sequential([L.Dense(8), L.BatchNormalization(), L.Dense(3)])
    saving.load_weights(model, path)
    assert pf.get_rng_state() == before


def test_training_modes_are_restored(tmp_path):
    model = pf.Sequential([L.Dense(3, input_shape=(2,)), L.BatchNormalization(), L.Dropout(0.5)])
    model.train()
    model[1].eval()           # a frozen batch norm inside a training model
    loaded = round_trip(model, str(tmp_path / "m.safetensors"))
    assert loaded.training and not loaded[1].training and loaded[2].training


# ------------------------------------------------------------------ weights only

def test_save_weights_and_load_weights(small, tmp_path):
    model, _, x = small
    path = str(tmp_path / "w.safetensors")
    saving.save_weights(model, path)
    fresh = pf.Sequential([L.Dense(8, activation="relu"), L.BatchNormalization(), L.Dense(3)])
    # never called: load_weights builds the layers from the shapes in the file
    assert saving.load_weights(fresh, path) == ([], [])
    fresh.eval()
    assert_same_state(model, fresh)
    assert np.array_equal(outputs(fresh, x), outputs(model, x))
    with pytest.raises(ValueError, match=r"load_model: .* holds weights only .*load_weights"):
        pf.load_model(path)


def test_load_weights_accepts_a_model_file(small):
    model, path, x = small
    fresh = pf.Sequential([L.Dense(8, activation="relu"), L.BatchNormalization(), L.Dense(3)])
    saving.load_weights(fresh, path)
    assert_same_state(model, fresh)


def test_load_weights_strict_and_not(small, tmp_path):
    model, path, x = small
    bigger = pf.Sequential([L.Dense(8, activation="relu"), L.BatchNormalization(), L.Dense(3),
                            L.Dense(2)])
    bigger(x)
    before = {k: bits(v) for k, v in bigger.state_dict().items()}
    with pytest.raises(ValueError, match=r"does not match the model: the model's weights "
                                         r"\['3.kernel', '3.bias'\] are not in the file.*"
                                         r"strict=False"):
        saving.load_weights(bigger, path)
    assert {k: bits(v) for k, v in bigger.state_dict().items()} == before
    missing, unexpected = saving.load_weights(bigger, path, strict=False)
    assert missing == ["3.kernel", "3.bias"] and unexpected == []
    after = bigger.state_dict()
    assert bits(after["3.kernel"]) == before["3.kernel"]
    assert bits(after["0.kernel"]) == bits(model.state_dict()["0.kernel"])
    # the other way round: the file has weights the model lacks
    smaller = pf.Sequential([L.Dense(8, activation="relu"), L.BatchNormalization()])
    smaller(x)
    with pytest.raises(ValueError, match=r"the file's weights \['2.bias', '2.kernel'\] are not "
                                         r"in the model"):
        saving.load_weights(smaller, path)
    assert saving.load_weights(smaller, path, strict=False) == ([], ["2.bias", "2.kernel"])


def test_shape_mismatch_names_the_weight_and_both_shapes_and_changes_nothing(small, tmp_path):
    _, path, x = small
    other = pf.Sequential([L.Dense(8, activation="relu"), L.BatchNormalization(), L.Dense(4)])
    other(x)
    before = {k: bits(v) for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match=r"load_weights: weight '2.kernel' has shape \(8, 3\) "
                                         r"in '.*small.safetensors' but \(8, 4\) in the model"):
        saving.load_weights(other, path, strict=False)
    assert {k: bits(v) for k, v in other.state_dict().items()} == before


def test_a_failed_load_into_an_unbuilt_model_leaves_it_unbuilt(small):
    _, path, _ = small
    model = pf.Sequential([L.Dense(8), L.BatchNormalization(), L.Dense(5)])
    with pytest.raises(ValueError, match=r"'2.kernel' has shape \(8, 3\)"):
        saving.load_weights(model, path)
    assert not any(m.built for m in model.layers)
    assert list(model.state_dict()) == []


def test_bad_file_leaves_the_weights_unchanged(small, tmp_path):
    model, path, _ = small
    raw = open(path, "rb").read()
    bad = str(tmp_path / "bad.safetensors")
    open(bad, "wb").write(raw[:-3])
    before = {k: bits(v) for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"truncated"):
        saving.load_weights(model, bad)
    assert {k: bits(v) for k, v in model.state_dict().items()} == before


def test_load_weights_casts_to_the_model_dtype(small, tmp_path):
    model, path, _ = small
    wide = pf.Sequential([L.Dense(8, activation="relu"), L.BatchNormalization(), L.Dense(3)])
    wide(pf.randn(2, 4))
    wide.to(pf.float64)
    saving.load_weights(wide, path)
    assert wide[0].kernel.dtype == pf.float64
    np.testing.assert_array_equal(np.asarray(wide[0].kernel),
                                  np.asarray(model[0].kernel).astype(np.float64))


def test_weights_from_pytorch_through_safetensors(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file
    torch.manual_seed(0)
    tnet = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    path = str(tmp_path / "torch.safetensors")
    save_file(tnet.state_dict(), path)
    net = pf.nn.Sequential(pf.nn.Linear(4, 6), pf.nn.ReLU(), pf.nn.Linear(6, 2))
    saving.load_weights(net, path)
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    with torch.no_grad():
        want = tnet(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(outputs(net, pf.tensor(x)), want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"not a pyframe model: its metadata has no "
                                         r"'pyframe.format' entry.*load_weights"):
        pf.load_model(path)


# ------------------------------------------------------------------ optimizer state

@saving.register_serializable(package="tests")
class CompiledSequential(pf.Sequential):
    """Stands in for the trainer's compile: get_compile_config / compile_from_config."""

    def get_compile_config(self):
        return {"lr": self.optimizer.defaults["lr"]}

    def compile_from_config(self, config):
        self.optimizer = pf.optim.Adam(lr=config["lr"])


def _steps(model, x, y, n):
    for _ in range(n):
        model.optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        model.optimizer.apply_gradients(
            [(p.grad, p) for p in model.parameters() if p.requires_grad])


def test_optimizer_state_restored_and_training_continues_identically(tmp_path):
    pf.manual_seed(3)
    model = CompiledSequential([L.Dense(6, activation="tanh"), L.Dense(2)])
    model.optimizer = pf.optim.Adam(lr=0.01)
    x, y = pf.randn(8, 3), pf.randn(8, 2)
    _steps(model, x, y, 3)
    path = str(tmp_path / "m.safetensors")
    saving.save_model(model, path)
    header, _ = header_of(open(path, "rb").read())
    assert "optimizer.state.0.exp_avg" in header
    loaded = pf.load_model(path)
    assert loaded.optimizer.iterations == model.optimizer.iterations == 3
    _steps(model, x, y, 4)
    _steps(loaded, x, y, 4)
    assert_same_state(model, loaded)
    # compile=False: the architecture and weights only
    plain = pf.load_model(path, compile=False)
    assert "optimizer" not in plain.__dict__
    # include_optimizer=False leaves the state out
    saving.save_model(model, path, include_optimizer=False)
    assert not any(k.startswith("optimizer.") for k in header_of(open(path, "rb").read())[0])


def test_optimizer_state_of_another_optimizer_is_refused(tmp_path):
    model = CompiledSequential([L.Dense(2, input_shape=(3,))])
    model.optimizer = pf.optim.Adam(lr=0.01)
    _steps(model, pf.randn(4, 3), pf.randn(4, 2), 1)
    path = str(tmp_path / "m.safetensors")
    saving.save_model(model, path)
    raw = open(path, "rb").read()
    header, data = header_of(raw)
    meta = json.loads(header["__metadata__"]["pyframe.optimizer"])
    meta["class_name"] = "SGD"
    header["__metadata__"]["pyframe.optimizer"] = json.dumps(meta)
    open(path, "wb").write(with_header(header, data))
    with pytest.raises(ValueError, match=r"holds the state of a SGD optimizer, but the model was "
                                         r"compiled with a Adam"):
        pf.load_model(path)


def _edit_optimizer(edit):
    def apply(header):
        meta = json.loads(header["__metadata__"]["pyframe.optimizer"])
        edit(meta)
        header["__metadata__"]["pyframe.optimizer"] = json.dumps(meta)
    return apply


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(param_names="0.kernel"), r"has no list of parameter names"),
    (lambda m: m["param_groups"][0].update(params=[0, 0]), r"numbers its parameters \[0, 0\]"),
    (lambda m: m["state"]["0"].update(exp_avg={"tensor": "gone"}),
     r"refers to a tensor 'gone' the file does not hold"),
    (lambda m: m.update(iterations=-1), r"has iterations -1"),
    (lambda m: m.update(param_names=["0.bias", "0.kernel"]),
     r"cannot restore the optimizer state .*shape"),
])
def test_damaged_optimizer_state(tmp_path, edit, message):
    model = CompiledSequential([L.Dense(2, input_shape=(3,))])
    model.optimizer = pf.optim.Adam(lr=0.01)
    _steps(model, pf.randn(4, 3), pf.randn(4, 2), 1)
    path = str(tmp_path / "m.safetensors")
    saving.save_model(model, path)
    bad = _write(tmp_path, _rewritten(path, _edit_optimizer(edit)))
    with pytest.raises(ValueError, match=message):
        pf.load_model(bad)


def test_dtype_the_config_does_not_record_comes_from_the_file(tmp_path):
    model = TiedAutoencoder(4).double()     # its config is {"n": 4}: no dtype
    loaded = round_trip(model, str(tmp_path / "m.safetensors"))
    assert loaded.enc.weight.dtype == pf.float64 and loaded.enc.weight.requires_grad
    assert loaded.dec.weight is loaded.enc.weight
    assert_same_state(model, loaded)


def _schedule():
    return pf.optim.schedules.ExponentialDecay(0.05, decay_steps=3, decay_rate=0.5)


@pytest.mark.parametrize("make_optimizer", [
    lambda: pf.optimizers.Adam(learning_rate=0.01),
    lambda: pf.optimizers.Adam(learning_rate=_schedule()),
    lambda: pf.optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
    lambda: pf.optim.NAdam(lr=0.01),
    lambda: "rmsprop",
], ids=["keras_adam", "adam_schedule", "torch_sgd_nesterov", "torch_nadam", "by_name"])
def test_fit_save_load_continues_training_identically(make_optimizer, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    pf.manual_seed(0)
    model = pf.Sequential([L.Dense(16, activation="relu"), L.Dropout(0.2), L.Dense(2)])
    model.compile(optimizer=make_optimizer(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    path = str(tmp_path / "m.safetensors")
    model.save(path)
    loaded = pf.load_model(path)
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    saving.save_model(model, str(tmp_path / "no_opt.safetensors"), include_optimizer=False)
    fresh_optimizer = pf.load_model(str(tmp_path / "no_opt.safetensors"))
    for m in (model, loaded, fresh_optimizer):
        pf.manual_seed(7)      # the same shuffles and dropout masks for each
        m.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert_same_state(model, loaded)
    assert np.array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert model.evaluate(x, y, verbose=0) == loaded.evaluate(x, y, verbose=0)
    # the control: without the optimizer's state the same steps end elsewhere
    assert bits(fresh_optimizer.state_dict()["0.kernel"]) != bits(model.state_dict()["0.kernel"])


def test_model_save_and_load_weights_methods(tmp_path):
    model = pf.Sequential([L.Dense(3, input_shape=(2,))])
    model.save(str(tmp_path / "m.safetensors"))
    model.save_weights(str(tmp_path / "w.safetensors"))
    other = pf.Sequential([L.Dense(3, input_shape=(2,))])
    assert other.load_weights(str(tmp_path / "w.safetensors")) == ([], [])
    assert_same_state(model, other)
    assert_same_state(model, pf.load_model(str(tmp_path / "m.safetensors")))


# ------------------------------------------------------------------ malformed files

def _write(tmp_path, raw, name="bad.safetensors"):
    p = str(tmp_path / name)
    with open(p, "wb") as f:
        f.write(raw)
    return p


def _rewritten(path, edit):
    header, data = header_of(open(path, "rb").read())
    edit(header)
    return with_header(header, data)


@pytest.mark.parametrize("make_raw, message", [
    (lambda raw: raw[:5], r"not a safetensors file: it is 5 bytes long"),
    (lambda raw: b"hello world, this is text\n" * 4, r"above the format's limit"),
    (lambda raw: raw[:-1], r"truncated or damaged: tensor '.*' ends at byte"),
    (lambda raw: struct.pack("<Q", len(raw)) + raw[8:], r"header length is \d+ bytes but only"),
    (lambda raw: struct.pack("<Q", 2 ** 64 - 1) + raw[8:], r"above the format's limit"),
    (lambda raw: struct.pack("<Q", 6) + b"{nope}" + raw[14:], r"header is not valid JSON"),
    (lambda raw: struct.pack("<Q", 2) + b"[]", r"does not start with '\{'"),
    (lambda raw: raw + b"\0\0\0\0", r"trailing bytes"),
])
def test_damaged_files_raise_value_errors(small, tmp_path, make_raw, message):
    _, path, _ = small
    bad = _write(tmp_path, make_raw(open(path, "rb").read()))
    for load in (pf.load_model, lambda p: saving.load_weights(small[0], p)):
        with pytest.raises(ValueError, match=message):
            load(bad)


def _entry(header, name="2.kernel"):
    return header[name]


@pytest.mark.parametrize("edit, message", [
    (lambda h: _entry(h).update(data_offsets=[0, 8]),
     r"tensor '2.kernel' \(F32, shape \[8, 3\]\) needs 96 bytes but its data_offsets \[0, 8\]"),
    (lambda h: _entry(h).update(shape=[8, 4]), r"needs 128 bytes"),
    (lambda h: _entry(h).update(dtype="F99"), r"unknown dtype 'F99'"),
    (lambda h: _entry(h).update(dtype="U16", shape=[8, 6]),
     r"holds tensor '2.kernel' of dtype U16, which pyframe has no dtype for"),
    (lambda h: _entry(h).update(shape=[-8, -3]), r"a shape is a list of at most 8 non-negative"),
    (lambda h: _entry(h).update(shape=[1] * 9), r"a shape is a list of at most 8"),
    (lambda h: _entry(h).update(data_offsets=[5]), r"expected \[begin, end\]"),
    (lambda h: _entry(h).update(extra=1), r"exactly 'dtype', 'shape' and 'data_offsets'"),
    (lambda h: h.update(x={"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}),
     r"overlaps the tensor before it"),
    (lambda h: h.update({"2.kernel": dict(_entry(h), data_offsets=[
        _entry(h)["data_offsets"][0] + 10 ** 6, _entry(h)["data_offsets"][1] + 10 ** 6])}),
     r"ends at byte \d+ of the data section, which has only"),
    (lambda h: h.pop("0.bias"), r"belong to no tensor|trailing bytes"),
    (lambda h: h["__metadata__"].update({"pyframe.format": "notebook"}),
     r"unknown pyframe.format 'notebook'"),
    (lambda h: h["__metadata__"].update({"pyframe.format_version": "7"}),
     r"written by a newer pyframe \(file format version 7; this pyframe .* reads version 1\)"),
    (lambda h: h["__metadata__"].update({"pyframe.format_version": "one"}),
     r"format_version is 'one'"),
    (lambda h: h["__metadata__"].update({"pyframe.aliases": "{\"a\": \"nothing\"}"}),
     r"the alias 'a' -> 'nothing' does not name a stored weight"),
    (lambda h: h.update(__metadata__={"pyframe.format": 3}), r"__metadata__ must map strings"),
])
def test_malformed_headers_raise_clear_errors(small, tmp_path, edit, message):
    model, path, _ = small
    bad = _write(tmp_path, _rewritten(path, edit))
    before = {k: bits(v) for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        saving.load_weights(model, bad)
    assert {k: bits(v) for k, v in model.state_dict().items()} == before


@pytest.mark.parametrize("edit, message", [
    (lambda h: h["__metadata__"].pop("pyframe.format"), r"not a pyframe model"),
    (lambda h: h["__metadata__"].update({"pyframe.architecture": "{oops"}),
     r"metadata entry 'pyframe.architecture' is not valid JSON"),
    (lambda h: h["__metadata__"].update({"pyframe.architecture": "[1, 2]"}),
     r"'pyframe.architecture' is a JSON list; expected an object"),
    (lambda h: h["__metadata__"].update({"pyframe.architecture": "[" * 100000 + "]" * 100000}),
     r"'pyframe.architecture' is not valid JSON"),
    (lambda h: h["__metadata__"].update({"pyframe.architecture": json.dumps(
        {"class_name": "os.system", "config": {"command": "echo hi"}})}),
     r"unknown layer class 'os.system'.*register_serializable"),
    (lambda h: h["__metadata__"].update({"pyframe.architecture": json.dumps(
        {"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense",
                                                            "config": {"units": "many"}}]}})}),
     r"cannot rebuild the model saved in .*: cannot rebuild Dense from its config"),
    (lambda h: h["__metadata__"].pop("pyframe.architecture"),
     r"its metadata has no 'pyframe.architecture' entry"),
])
def test_malformed_model_metadata(small, tmp_path, edit, message):
    _, path, _ = small
    bad = _write(tmp_path, _rewritten(path, edit))
    with pytest.raises(ValueError, match=message):
        pf.load_model(bad)


def test_duplicate_names_in_the_header(small, tmp_path):
    _, path, _ = small
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    text = raw[8:8 + n].decode().rstrip()
    # repeat the last entry's key inside the same object
    first = text.index('"0.bias":')
    entry_end = text.index("}", first) + 1
    doubled = text[:-1] + "," + text[first:entry_end] + "}"
    bad = _write(tmp_path, struct.pack("<Q", len(doubled)) + doubled.encode() + raw[8 + n:])
    with pytest.raises(ValueError, match=r"names '0.bias' twice"):
        pf.load_model(bad)


def test_paths_that_are_not_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"load_model: there is no file at"):
        pf.load_model(str(tmp_path / "nothing.safetensors"))
    with pytest.raises(IsADirectoryError, match=r"is a directory"):
        pf.load_model(str(tmp_path))
    model = pf.Sequential([L.Dense(2, input_shape=(2,))])
    with pytest.raises(FileNotFoundError, match=r"the directory .* does not exist"):
        saving.save_model(model, str(tmp_path / "no" / "such" / "m.safetensors"))
    with pytest.raises(IsADirectoryError, match=r"is a directory; give a file path"):
        saving.save_model(model, str(tmp_path))
    with pytest.raises(TypeError, match=r"save_model: the path must be a str or os.PathLike; "
                                        r"got int"):
        saving.save_model(model, 3)
    with pytest.raises(TypeError, match=r"save_model: expected a model or layer"):
        saving.save_model("model", str(tmp_path / "m"))
    with pytest.raises(TypeError, match=r"load_model: custom_objects must be a dict"):
        pf.load_model(str(tmp_path / "m"), custom_objects=[Scale])
    with pytest.raises(TypeError, match=r"load_weights: strict must be True or False"):
        saving.load_weights(model, str(tmp_path / "m"), strict="yes")


def test_fuzzed_files_raise_value_error_or_load(small, tmp_path):
    """Mutations of a valid file: truncations, flipped header bytes, rewritten
    header lengths, random offsets.  Every load either works or raises a
    ValueError; nothing else escapes, and nothing crashes."""
    model, path, x = small
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    rng = np.random.default_rng(1234)
    header, data = header_of(raw)
    names = [k for k in header if k != "__metadata__"]
    cases = []
    for cut in sorted(set(rng.integers(0, len(raw), 120).tolist()) | {0, 7, 8, 9, 8 + n}):
        cases.append(raw[:cut])
    for _ in range(300):
        b = bytearray(raw)
        for pos in rng.integers(8, 8 + n, rng.integers(1, 4)):
            b[pos] ^= int(rng.integers(1, 256))
        cases.append(bytes(b))
    for value in [0, 1, 2, n - 1, n + 1, n + 8, len(raw), 2 ** 31, 2 ** 63, 2 ** 64 - 1] + \
            rng.integers(0, 2 ** 40, 20).tolist():
        cases.append(struct.pack("<Q", value) + raw[8:])
    for _ in range(120):
        h = json.loads(json.dumps(header))
        entry = h[names[int(rng.integers(len(names)))]]
        a, b = sorted(rng.integers(-5, len(data) + 50, 2).tolist())
        entry["data_offsets"] = [a, b] if rng.random() < 0.8 else [b, a]
        if rng.random() < 0.3:
            entry["shape"] = rng.integers(0, 40, int(rng.integers(0, 4))).tolist()
        cases.append(with_header(h, data, pad=bool(rng.random() < 0.5)))
    outcomes = {"ok": 0, "ValueError": 0}
    target = pf.Sequential([L.Dense(8, activation="relu"), L.BatchNormalization(), L.Dense(3)])
    target(x)
    for i, case in enumerate(cases):
        p = _write(tmp_path, case, "fuzz.safetensors")
        for load in (pf.load_model, lambda q: saving.load_weights(target, q)):
            try:
                load(p)
                outcomes["ok"] += 1
            except ValueError as e:
                assert p in str(e), str(e)      # every message names the file
                outcomes["ValueError"] += 1
    assert outcomes["ValueError"] > 0.9 * 2 * len(cases)
    assert sum(outcomes.values()) == 2 * len(cases)


# ------------------------------------------------------------------ atomic writes

@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_crash_mid_save_leaves_the_old_file_and_no_temporary(small, tmp_path, monkeypatch,
                                                               error):
    model, path, _ = small
    old = open(path, "rb").read()
    from pyframe.io import format as fmt
    real = fmt._serialize_file

    def half_then_fail(arrays, codes, filename, metadata):
        real(arrays, codes, filename, metadata)
        with open(filename, "r+b") as f:
            f.truncate(os.path.getsize(filename) // 2)
        raise error

    monkeypatch.setattr(fmt, "_serialize_file", half_then_fail)
    with pytest.raises(type(error)):
        saving.save_model(model, path)
    with pytest.raises(type(error)):
        saving.save_weights(model, path)
    assert open(path, "rb").read() == old
    assert sorted(os.listdir(str(tmp_path))) == ["small.safetensors"]
    monkeypatch.undo()
    pf.load_model(path)


def test_save_replaces_an_existing_file_and_keeps_its_mode(small, tmp_path):
    model, path, x = small
    os.chmod(path, 0o640)
    with pf.no_grad():
        model[2].kernel.fill_(0.25)
    saving.save_model(model, path)
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert np.array_equal(outputs(pf.load_model(path), x), outputs(model, x))
    assert sorted(os.listdir(str(tmp_path))) == ["small.safetensors"]


def test_save_through_a_symlink_and_under_a_long_name(small, tmp_path):
    model, path, x = small
    link = str(tmp_path / "link.safetensors")
    os.symlink(path, link)
    with pf.no_grad():
        model[2].kernel.fill_(0.5)
    saving.save_model(model, link)
    assert os.path.islink(link)          # the file behind the link was replaced, not the link
    assert np.array_equal(outputs(pf.load_model(path), x), outputs(model, x))
    long = str(tmp_path / ("m" * 240 + ".safetensors"))
    saving.save_model(model, long)
    assert np.array_equal(outputs(pf.load_model(long), x), outputs(model, x))


# ------------------------------------------------------------------ the namespace

def test_namespace_and_lazy_imports():
    assert pf.saving.save_model is saving.save_model
    assert pf.load_model is saving.load_model
    assert saving.register_keras_serializable is saving.register_serializable
    code = ("import sys, pyframe as pf; import pyframe.saving; "
            "print('safetensors' in sys.modules, 'pyframe.io' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(pf.__file__)))
    assert out.stdout.split() == ["False", "True"]


def test_checkpoint_files_are_told_apart(tmp_path):
    model = pf.Sequential([pf.layers.Dense(2, input_shape=(3,))])
    path = str(tmp_path / "ck.safetensors")
    pf.saving.save_checkpoint(model, path, {"epoch": 1})
    with pytest.raises(ValueError, match="is a pyframe checkpoint file, not a model"):
        pf.load_model(path)
    other = pf.Sequential([pf.layers.Dense(2, input_shape=(3,))])
    assert pf.saving.load_checkpoint(other, path) == {"epoch": 1}
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.save_weights(path)
    with pytest.raises(ValueError, match="is a pyframe weights file, not a checkpoint"):
        pf.saving.load_checkpoint(other, path)


def test_weight_penalties_are_saved_with_the_layers(tmp_path):
    pf.manual_seed(0)
    model = pf.Sequential([
        pf.layers.DepthwiseConv2D(3, depthwise_regularizer=pf.regularizers.L2(0.3),
                                  input_shape=(6, 6, 2)),
        pf.layers.Flatten(),
        pf.layers.Dense(3, kernel_regularizer="l1", bias_regularizer=pf.regularizers.L1L2(0.1, 0.2)),
    ])
    path = str(tmp_path / "m.safetensors")
    model.save(path)
    again = pf.load_model(path)

    def penalty(m):
        return sum(float(v) for layer in m.layers for v in layer.losses)
    ref = 0.3 * (np.asarray(model.layers[0].depthwise_kernel, np.float64) ** 2).sum() + \
        0.01 * np.abs(np.asarray(model.layers[2].kernel, np.float64)).sum() + \
        0.1 * np.abs(np.asarray(model.layers[2].bias, np.float64)).sum() + \
        0.2 * (np.asarray(model.layers[2].bias, np.float64) ** 2).sum()
    assert penalty(model) == pytest.approx(ref, rel=1e-5)
    assert penalty(again) == pytest.approx(ref, rel=1e-5)
    with pytest.raises(ValueError, match="unknown regularizer config"):
        pf.regularizers.get({"class_name": "L3", "config": {}})
