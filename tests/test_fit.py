"""compile / fit / evaluate / predict: the loop against hand-written loops
(pyframe's own and PyTorch's), every input kind, several inputs and outputs,
the options of fit, and the errors a user meets."""
import math

import numpy as np
import pytest

import pyframe as pf
from pyframe.training.callback import Callback

try:
    import torch
except ImportError:          # the comparisons with PyTorch are skipped without it
    torch = None


def _data(n=96, d=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(d, classes))
    y = np.argmax(x @ w, axis=1).astype(np.int64)
    return x, y


def _mlp(d=5, classes=3, hidden=8):
    pf.manual_seed(1)
    m = pf.Sequential([pf.layers.Dense(hidden, activation="tanh", input_shape=(d,)),
                       pf.layers.Dense(classes)])
    m(pf.zeros((1, d)))         # every layer built now, from the same generator state
    return m


def _loss():
    return pf.losses.SparseCategoricalCrossentropy(from_logits=True)


# ---------------------------------------------------------------- the loop itself

def test_fit_equals_a_hand_written_pyframe_loop():
    x, y = _data()
    a, b = _mlp(), _mlp()
    a.compile(optimizer=pf.optimizers.SGD(0.1), loss=_loss())
    hist = a.fit(x, y, batch_size=10, epochs=3, shuffle=False, verbose=0)
    opt = pf.optimizers.SGD(0.1, params=list(b.parameters()))
    fn = _loss()
    means = []
    for _ in range(3):
        total = 0.0
        for s in range(0, len(y), 10):
            opt.zero_grad()
            loss = fn(y[s:s + 10], b(pf.tensor(x[s:s + 10])))
            loss.backward()
            opt.step()
            total += float(loss) * len(y[s:s + 10])
        means.append(total / len(y))
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(np.asarray(pa), np.asarray(pb))
    np.testing.assert_allclose(hist.history["loss"], means, rtol=1e-6)
    assert hist.epoch == [0, 1, 2]


@pytest.mark.skipif(torch is None, reason="PyTorch is the reference here")
def test_fit_matches_pytorch_loop_step_for_step():
    x, y = _data(n=64)
    model = _mlp()
    model.compile(optimizer=pf.optimizers.SGD(0.05, momentum=0.9), loss=_loss())
    w0 = [np.array(w, dtype=np.float64) for w in model.get_weights()]
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    lin1, lin2 = torch.nn.Linear(5, 8).double(), torch.nn.Linear(8, 3).double()
    with torch.no_grad():
        lin1.weight.copy_(torch.tensor(w0[0].T)); lin1.bias.copy_(torch.tensor(w0[1]))
        lin2.weight.copy_(torch.tensor(w0[2].T)); lin2.bias.copy_(torch.tensor(w0[3]))
    params = list(lin1.parameters()) + list(lin2.parameters())
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
    for _ in range(2):
        for s in range(0, 64, 16):
            opt.zero_grad()
            out = lin2(torch.tanh(lin1(torch.tensor(x[s:s + 16], dtype=torch.float64))))
            torch.nn.functional.cross_entropy(out, torch.tensor(y[s:s + 16])).backward()
            opt.step()
    got = model.get_weights()
    np.testing.assert_allclose(got[0], lin1.weight.detach().numpy().T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[3], lin2.bias.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_training_reduces_the_loss_and_evaluate_agrees_with_a_numpy_oracle():
    x, y = _data(n=200)
    model = _mlp()
    model.compile(optimizer=pf.optimizers.Adam(0.02), loss=_loss())
    hist = model.fit(x, y, batch_size=20, epochs=15, verbose=0)
    assert hist.history["loss"][-1] < 0.6 * hist.history["loss"][0]
    logits = model.predict(x, batch_size=7, verbose=0).astype(np.float64)
    assert isinstance(logits, np.ndarray) and logits.shape == (200, 3)
    ref = np.log(np.exp(logits).sum(1)) - logits[np.arange(200), y]
    assert model.evaluate(x, y, batch_size=13, verbose=0) == pytest.approx(ref.mean(), rel=1e-5)


def test_shuffle_follows_the_framework_seed():
    x, y = _data()
    out = []
    for _ in range(2):
        m = _mlp()
        m.compile(optimizer=pf.optimizers.SGD(0.1), loss=_loss())
        pf.manual_seed(42)
        m.fit(x, y, batch_size=8, epochs=2, verbose=0)
        out.append(m.get_weights())
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
    m = _mlp()
    m.compile(optimizer=pf.optimizers.SGD(0.1), loss=_loss())
    pf.manual_seed(43)
    m.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert not np.array_equal(m.get_weights()[0], out[0][0])


def test_validation_split_holds_out_the_last_fraction_before_shuffling():
    x, y = _data(n=50)
    m = _mlp()
    m.compile(optimizer=pf.optimizers.SGD(0.0), loss=_loss())   # weights never move
    hist = m.fit(x, y, batch_size=8, epochs=2, validation_split=0.2, verbose=0)
    split_at = int(math.ceil(50 * 0.8))
    expected_val = m.evaluate(x[split_at:], y[split_at:], verbose=0)
    expected_train = m.evaluate(x[:split_at], y[:split_at], verbose=0)
    assert hist.history["val_loss"] == pytest.approx([expected_val] * 2, rel=1e-6)
    assert hist.history["loss"] == pytest.approx([expected_train] * 2, rel=1e-6)


def test_validation_data_freq_steps_and_initial_epoch():
    x, y = _data(n=60)
    m = _mlp()
    m.compile(optimizer="sgd", loss=_loss())
    hist = m.fit(x, y, batch_size=10, epochs=5, initial_epoch=1, steps_per_epoch=4,
                 validation_data=(x[:20], y[:20]), validation_freq=2, verbose=0,
                 )
    assert hist.epoch == [1, 2, 3, 4]
    assert len(hist.history["loss"]) == 4
    # epochs 2 and 4 (1-based) are the multiples of validation_freq
    assert len(hist.history["val_loss"]) == 2


class _Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(("batch", batch, logs["loss"]))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch", epoch, dict(logs)))


def test_batch_logs_are_floats_and_steps_per_epoch_limits_the_batches():
    x, y = _data(n=60)
    m = _mlp()
    m.compile(optimizer="sgd", loss=_loss())
    rec = _Recorder()
    m.fit(x, y, batch_size=10, epochs=2, steps_per_epoch=4, verbose=0, callbacks=[rec])
    batches = [e for e in rec.events if e[0] == "batch"]
    assert [b for _, b, _ in batches] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert all(isinstance(v, float) for _, _, v in batches)
    epochs = [e for e in rec.events if e[0] == "epoch"]
    # the epoch's loss is the running mean the last batch saw
    assert epochs[0][2]["loss"] == pytest.approx(batches[3][2])


# ---------------------------------------------------------------- input kinds

def _fit_weights(x, y=None, **kw):
    m = _mlp()
    m.compile(optimizer=pf.optimizers.SGD(0.1), loss=_loss())
    m.fit(x, y, batch_size=kw.pop("batch_size", 16), epochs=2, shuffle=False, verbose=0, **kw)
    return m.get_weights()


def test_every_array_kind_trains_identically():
    pd = pytest.importorskip("pandas")
    x, y = _data()
    ref = _fit_weights(x, y)
    cols = ["f%d" % i for i in range(5)]
    kinds = [
        (pf.tensor(x), pf.tensor(y)),
        (x.tolist(), y.tolist()),
        (pd.DataFrame(x, columns=cols), pd.Series(y)),
        (x.astype(np.float64), y),          # cast to the model's float32 per batch
    ]
    for xk, yk in kinds:
        for a, b in zip(ref, _fit_weights(xk, yk)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_datasets_loaders_and_generators():
    x, y = _data()
    ref = _fit_weights(x, y)
    ds = pf.data.TensorDataset(pf.tensor(x), pf.tensor(y))
    for a, b in zip(ref, _fit_weights(ds)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    loader = pf.data.DataLoader(ds, batch_size=16)
    for a, b in zip(ref, _fit_weights(loader)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

    def gen():
        while True:
            for s in range(0, len(y), 16):
                yield x[s:s + 16], y[s:s + 16]
    for a, b in zip(ref, _fit_weights(gen(), steps_per_epoch=6)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_generator_with_sample_weights_and_finite_generator_errors():
    x, y = _data(n=32)
    m = _mlp()
    m.compile(optimizer="sgd", loss=_loss())

    def gen():
        for s in range(0, 32, 8):
            yield x[s:s + 8], y[s:s + 8], np.ones(8, np.float32)
    hist = m.fit(gen(), epochs=1, verbose=0)
    assert len(hist.history["loss"]) == 1
    with pytest.raises(ValueError, match="generator can be read only once.*steps_per_epoch"):
        m.fit(gen(), epochs=2, verbose=0)
    with pytest.raises(ValueError, match="validation_split works with arrays.*generator"):
        m.fit(gen(), validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="y must not be given when x is a generator"):
        m.fit(gen(), y, verbose=0)


def test_sample_weight_and_class_weight():
    x, y = _data()
    m = _mlp()
    m.compile(optimizer=pf.optimizers.SGD(0.0), loss=_loss())
    sw = np.random.default_rng(3).uniform(0.2, 2.0, size=len(y)).astype(np.float32)
    full = m.evaluate(x, y, batch_size=len(y), verbose=0)
    weighted = m.evaluate(x, y, sample_weight=sw, batch_size=len(y), verbose=0)
    logits = m.predict(x, verbose=0).astype(np.float64)
    per = np.log(np.exp(logits).sum(1)) - logits[np.arange(len(y)), y]
    assert full == pytest.approx(per.mean(), rel=1e-5)
    # Keras's sum_over_batch_size: the weighted sum over the batch size
    assert weighted == pytest.approx((per * sw).mean(), rel=1e-5)
    cw = {0: 0.5, 1: 2.0, 2: 1.5}
    a = _fit_weights(x, y, class_weight=cw)
    b = _fit_weights(x, y, sample_weight=np.array([cw[c] for c in y], np.float32))
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-6)
    with pytest.raises(ValueError, match="class_weight gives no weight for class\\(es\\) \\[1\\]"):
        _fit_weights(x, y, class_weight={0: 1.0, 2: 1.0})
    with pytest.raises(ValueError, match="y holds class 2 but class_weight covers classes 0..1"):
        _fit_weights(x, y, class_weight={0: 1.0, 1: 1.0})


# ---------------------------------------------------------------- several inputs and outputs

class TwoHeads(pf.Model):
    def __init__(self):
        super().__init__()
        self.a = pf.layers.Dense(6, activation="relu")
        self.b = pf.layers.Dense(6, activation="relu")
        self.cls = pf.layers.Dense(3)
        self.reg = pf.layers.Dense(1)

    def call(self, inputs, training=None):
        h = pf.concatenate([self.a(inputs["num"]), self.b(inputs["extra"])], axis=-1)
        return {"cls": self.cls(h), "reg": self.reg(h)}


def test_dict_inputs_and_outputs_with_loss_weights():
    x, y = _data(n=64)
    rng = np.random.default_rng(5)
    extra = rng.normal(size=(64, 2)).astype(np.float32)
    target = (x[:, :1] * 2.0).astype(np.float32)
    pf.manual_seed(0)
    m = TwoHeads()
    m.compile(optimizer=pf.optimizers.SGD(0.0), loss={"cls": _loss(), "reg": "mse"},
              loss_weights={"cls": 1.0, "reg": 0.5})
    res = m.evaluate({"num": x, "extra": extra}, {"cls": y, "reg": target}, verbose=0,
                     return_dict=True)
    assert set(res) == {"loss", "cls_loss", "reg_loss"}
    out = m.predict({"num": x, "extra": extra}, verbose=0)
    assert set(out) == {"cls", "reg"} and out["cls"].shape == (64, 3)
    logits = out["cls"].astype(np.float64)
    ce = (np.log(np.exp(logits).sum(1)) - logits[np.arange(64), y]).mean()
    mse = ((out["reg"].astype(np.float64) - target) ** 2).mean()
    assert res["cls_loss"] == pytest.approx(ce, rel=1e-5)
    assert res["reg_loss"] == pytest.approx(mse, rel=1e-5)
    assert res["loss"] == pytest.approx(ce + 0.5 * mse, rel=1e-5)
    m.compile(optimizer="adam", loss={"cls": _loss(), "reg": "mse"})
    hist = m.fit({"num": x, "extra": extra}, {"cls": y, "reg": target}, epochs=3,
                 validation_split=0.25, verbose=0)
    assert {"loss", "cls_loss", "reg_loss", "val_loss", "val_cls_loss"} <= set(hist.history)


class ListModel(pf.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = pf.nn.Linear(5, 4)
        self.l2 = pf.nn.Linear(3, 4)

    def forward(self, xs):
        h = self.l1(xs[0]) + self.l2(xs[1])
        return [h, h.sum(axis=1, keepdims=True)]


def test_list_inputs_outputs_on_a_pytorch_style_module():
    x, _ = _data(n=40)
    x2 = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    t1 = np.zeros((40, 4), np.float32)
    t2 = np.ones((40, 1), np.float32)
    m = ListModel()
    m.compile(optimizer="adam", loss=["mse", "mae"])
    hist = m.fit([x, x2], [t1, t2], epochs=2, batch_size=8, verbose=0)
    assert {"loss", "output_0_loss", "output_1_loss"} == set(hist.history)
    out = m.predict([x, x2], verbose=0)
    assert isinstance(out, list) and out[0].shape == (40, 4) and out[1].shape == (40, 1)


def test_regularization_losses_are_added():
    x, y = _data(n=30)
    pf.manual_seed(0)
    m = pf.Sequential([pf.layers.Dense(3, kernel_regularizer=pf.regularizers.L2(0.1),
                                       input_shape=(5,))])
    m.compile(optimizer="sgd", loss=_loss())
    got = m.evaluate(x, y, batch_size=30, verbose=0)
    logits = m.predict(x, verbose=0).astype(np.float64)
    ce = (np.log(np.exp(logits).sum(1)) - logits[np.arange(30), y]).mean()
    k = np.asarray(m.layers[0].kernel, dtype=np.float64)
    assert got == pytest.approx(ce + 0.1 * (k ** 2).sum(), rel=1e-5)


def test_custom_train_step_and_pf_model_training_flag():
    class Custom(pf.Model):
        def __init__(self):
            super().__init__()
            self.d = pf.layers.Dense(1)
            self.flags = []

        def call(self, x, training=None):
            self.flags.append(training)
            return self.d(x)

        def train_step(self, data):
            x, y, _ = data
            out = self(x)
            loss = ((out - y) ** 2).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            return {"my_loss": loss, "twice": loss * 2}

    x = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
    y = x.sum(1, keepdims=True)
    m = Custom()
    m.compile(optimizer=pf.optimizers.SGD(0.1, params=None), loss="mse")
    m.optimizer.build  # noqa: B018 (the Keras-style optimizer builds on first use)
    m.d(pf.tensor(x[:1]))
    m.optimizer.build(list(m.parameters()))
    hist = m.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert set(hist.history) == {"my_loss", "twice"}
    assert hist.history["twice"][-1] == pytest.approx(2 * hist.history["my_loss"][-1])
    assert hist.history["my_loss"][-1] < hist.history["my_loss"][0]
    m.flags.clear()
    m.predict(x, verbose=0)
    assert set(m.flags) == {False}


def test_train_test_predict_on_batch():
    x, y = _data(n=20)
    m = _mlp()
    m.compile(optimizer=pf.optimizers.SGD(0.0), loss=_loss())
    before = m.test_on_batch(x, y)
    assert before == pytest.approx(m.evaluate(x, y, batch_size=20, verbose=0), rel=1e-6)
    assert m.train_on_batch(x, y) == pytest.approx(before, rel=1e-6)
    np.testing.assert_allclose(m.predict_on_batch(x), m.predict(x, verbose=0), rtol=1e-6)
    assert m.test_on_batch(x, y, return_dict=True) == {"loss": pytest.approx(before, rel=1e-6)}


def test_fit_restores_the_training_mode_and_stop_training():
    x, y = _data(n=40)
    m = _mlp()
    m.compile(optimizer="sgd", loss=_loss())
    m.eval()

    class Stop(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True
    rec = _Recorder()
    hist = m.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[Stop(), rec])
    assert hist.epoch == [0]
    assert len([e for e in rec.events if e[0] == "batch"]) == 2
    assert m.training is False


def test_progress_bar_and_verbose_2(capsys):
    x, y = _data(n=40)
    m = _mlp()
    m.compile(optimizer="sgd", loss=_loss())
    m.fit(x, y, batch_size=8, epochs=2, verbose=2, validation_split=0.25)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("Epoch")]
    assert len(lines) == 2 and "loss: " in lines[0] and "val_loss: " in lines[0]
    m.fit(x, y, batch_size=8, epochs=2, verbose=1)
    out = capsys.readouterr().out
    # a short epoch is drawn once, when it ends: one line per epoch, no flood
    assert out.count("Epoch 1/2") == 1 and out.count("Epoch 2/2") == 1
    assert out.count("\n") == 2 and "loss: " in out
    m.fit(x, y, batch_size=8, epochs=1, verbose=0)
    m.evaluate(x, y, verbose=0)
    m.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_history_plot_draws_each_metric():
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    x, y = _data(n=40)
    m = _mlp()
    m.compile(optimizer="sgd", loss=_loss())
    hist = m.fit(x, y, epochs=3, validation_split=0.25, verbose=0)
    fig = hist.plot()
    ax = fig.axes[0]
    assert ax.get_title() == "loss"
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["loss"].get_ydata(), hist.history["loss"])
    np.testing.assert_allclose(lines["val_loss"].get_ydata(), hist.history["val_loss"])
    with pytest.raises(ValueError, match="no metric named \\['acc'\\]; recorded: \\['loss'\\]"):
        hist.plot(metrics="acc")


# ---------------------------------------------------------------- bad input

def test_errors_name_what_was_wrong():
    pd = pytest.importorskip("pandas")
    x, y = _data(n=30)
    m = _mlp()
    with pytest.raises(RuntimeError, match="must be compiled first"):
        m.fit(x, y)
    with pytest.raises(ValueError, match="unknown loss 'msee'; known: .*mean_squared_error"):
        m.compile(optimizer="adam", loss="msee")
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'"):
        m.compile(optimizer="adamm", loss="mse")
    m.compile(optimizer="sgd", loss=_loss())
    with pytest.raises(ValueError, match="x has 30, y has 29"):
        m.fit(x, y[:29], verbose=0)
    bad = x.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match="x contains NaN at sample 7, position \\(2,\\)"):
        m.fit(bad, y, verbose=0)
    df = pd.DataFrame(x, columns=["a", "b", "c", "d", "e"])
    df.loc[4, "d"] = np.nan
    with pytest.raises(ValueError, match="x contains NaN at sample 4, column 'd' \\(feature 3\\)"):
        m.fit(df, y, verbose=0)
    obj = pd.DataFrame({"a": ["x"] * 30, "b": x[:, 0]})
    with pytest.raises((ValueError, TypeError), match="'a'"):
        m.fit(obj, y, verbose=0)
    with pytest.raises(IndexError, match="label 7 is out of range for 3 classes"):
        m.fit(x, np.full(30, 7), verbose=0)
    with pytest.raises(ValueError, match="expects last dim 5, got 4"):
        m.predict(x[:, :4], verbose=0)
    with pytest.raises(ValueError, match="validation_split must be a number in \\[0, 1\\)"):
        m.fit(x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        m.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="validation_data must be \\(x_val, y_val\\)"):
        m.fit(x, y, validation_data=x, verbose=0)
    with pytest.raises(ValueError, match="fit need targets y|need targets y"):
        m.fit(x, verbose=0)
    with pytest.raises(TypeError, match="callbacks\\[0\\]: expected a pf.callbacks.Callback"):
        m.fit(x, y, callbacks=[print], verbose=0)
    with pytest.raises(ValueError, match="verbose must be 'auto', 0, 1 or 2"):
        m.fit(x, y, verbose=3)


def test_compile_config_round_trip():
    m = _mlp()
    m.compile(optimizer=pf.optimizers.Adam(learning_rate=0.01), loss="mse")
    cfg = m.get_compile_config()
    import json
    cfg = json.loads(json.dumps(cfg))
    other = _mlp()
    other.compile_from_config(cfg)
    assert type(other.optimizer) is pf.optimizers.Adam
    assert other.optimizer.learning_rate == pytest.approx(0.01)
    m.compile(optimizer=pf.optim.SGD(lr=0.2), loss=_loss())
    other.compile_from_config(json.loads(json.dumps(m.get_compile_config())))
    assert type(other.optimizer) is pf.optim.SGD
    assert isinstance(other.loss, pf.losses.SparseCategoricalCrossentropy)
    assert other.loss.from_logits if hasattr(other.loss, "from_logits") else True


# ---------------------------------------------------------------- metrics in the loop

def test_accuracy_follows_the_loss_and_matches_numpy():
    x, y = _data(n=90)
    m = _mlp()
    m.compile(optimizer="adam", loss=_loss(), metrics=["accuracy", "sparse_top_k_categorical_accuracy"])
    hist = m.fit(x, y, epochs=3, batch_size=16, validation_split=0.2, verbose=0)
    assert {"loss", "accuracy", "val_loss", "val_accuracy",
            "sparse_top_k_categorical_accuracy"} <= set(hist.history)
    res = m.evaluate(x, y, verbose=0, return_dict=True)
    pred = m.predict(x, verbose=0)
    assert res["accuracy"] == pytest.approx(float((pred.argmax(1) == y).mean()), abs=1e-7)
    assert m.metrics_names == ["loss", "accuracy", "sparse_top_k_categorical_accuracy"]
    assert isinstance(m.evaluate(x, y, verbose=0), list)
    # one-hot targets with categorical cross-entropy: "accuracy" is categorical accuracy
    onehot = np.eye(3, dtype=np.float32)[y]
    m.compile(optimizer="sgd", loss=pf.losses.CategoricalCrossentropy(from_logits=True),
              metrics=["acc"])
    res = m.evaluate(x, onehot, verbose=0, return_dict=True)
    assert res["acc"] == pytest.approx(float((m.predict(x, verbose=0).argmax(1) == y).mean()))
    # a sigmoid output with binary cross-entropy: thresholded at 0.5
    pf.manual_seed(0)
    b = pf.Sequential([pf.layers.Dense(1, activation="sigmoid", input_shape=(5,))])
    b.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"],
              weighted_metrics=["accuracy"])
    yb = (x[:, 0] > 0).astype(np.float32)
    sw = np.linspace(0.1, 2.0, len(yb)).astype(np.float32)
    res = b.evaluate(x, yb, sample_weight=sw, verbose=0, return_dict=True)
    hit = ((b.predict(x, verbose=0)[:, 0] > 0.5) == (yb > 0.5)).astype(np.float64)
    assert res["accuracy"] == pytest.approx(hit.mean())
    assert res["weighted_accuracy"] == pytest.approx((hit * sw).sum() / sw.sum())


def test_per_output_metrics_are_named_after_the_output():
    x, y = _data(n=64)
    extra = np.zeros((64, 2), np.float32)
    m = TwoHeads()
    m.compile(optimizer="adam", loss={"cls": _loss(), "reg": "mse"},
              metrics={"cls": ["accuracy"], "reg": ["mae"]})
    res = m.evaluate({"num": x, "extra": extra}, {"cls": y, "reg": x[:, :1]}, verbose=0,
                     return_dict=True)
    assert set(res) == {"loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae"}
    out = m.predict({"num": x, "extra": extra}, verbose=0)
    assert res["reg_mae"] == pytest.approx(np.abs(out["reg"] - x[:, :1]).mean(), rel=1e-5)


def test_unknown_metric_lists_the_valid_names():
    m = _mlp()
    with pytest.raises(ValueError, match="unknown metric 'acuracy'.*sparse_categorical_accuracy"):
        m.compile(optimizer="adam", loss="mse", metrics=["acuracy"])


def test_pandas_categorical_codes_and_nullable_columns():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({"size": rng.normal(size=n).astype(np.float32),
                          "colour": pd.Categorical(rng.choice(["red", "green", "blue"], n)),
                          "count": pd.array(rng.integers(0, 5, n), dtype="Int64")})
    y = pd.Series((frame["size"] > 0).astype(np.float32))
    pf.manual_seed(0)
    m = pf.Sequential([pf.layers.Dense(1, activation="sigmoid", input_shape=(3,))])
    m.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    m.fit(frame, y, epochs=1, verbose=0)
    # the categorical column enters as its codes, the nullable one as its numbers
    expected = np.stack([frame["size"].to_numpy(np.float64),
                         frame["colour"].cat.codes.to_numpy(np.float64),
                         frame["count"].to_numpy(np.float64)], axis=1)
    k = np.asarray(m.layers[0].kernel, dtype=np.float64)
    b = np.asarray(m.layers[0].bias, dtype=np.float64)
    ref = 1 / (1 + np.exp(-(expected @ k + b)))
    np.testing.assert_allclose(m.predict(frame, verbose=0), ref, rtol=1e-5, atol=1e-6)
    missing = frame.copy()
    missing.loc[3, "count"] = pd.NA
    with pytest.raises((ValueError, TypeError), match="'count'"):
        m.fit(missing, y, verbose=0)


def test_repeated_fits_leave_no_tensor_behind():
    import gc
    x, y = _data(n=120)
    m = _mlp()
    m.compile(optimizer="adam", loss=_loss(), metrics=["accuracy"])
    m.fit(x, y, epochs=2, validation_split=0.2, verbose=0)
    gc.collect()
    before = pf.memory_stats()["cpu"]
    for _ in range(3):
        m.fit(x, y, epochs=2, validation_split=0.2, verbose=0)
        m.evaluate(x, y, verbose=0)
        m.predict(x, verbose=0)
    gc.collect()
    after = pf.memory_stats()["cpu"]
    assert after["live_tensors"] == before["live_tensors"]
    assert after["live_bytes"] == before["live_bytes"]
