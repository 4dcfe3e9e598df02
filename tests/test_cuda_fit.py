"""fit / evaluate / predict with the model on a CUDA device, and mixed precision there.

On a machine with a GPU, training on the device is compared with the same
training on the CPU (the CPU backend is the reference): the loss curves agree
to a tolerance that covers the different summation order of device
reductions.  Without a GPU, the checks that need none run: the trainer sends
each batch and the metrics' state to the model's device (seen through a
model whose weights are fake device tensors, which stops at the first
transfer with "CUDA is not available", not at a mixed-device op).
"""
import numpy as np
import pytest

import pyframe as pf
from pyframe import _C

CUDA = pf.cuda.is_available()
REASON = pf.cuda.status()
gpu = pytest.mark.skipif(not CUDA, reason="needs a usable CUDA GPU; here: " + REASON)
fake = pytest.mark.skipif(CUDA, reason="_fake_cuda_tensor is for machines without a GPU")


def _data(n=512, d=16, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    return x, y


def _model(seed=0, d=16, classes=3):
    pf.manual_seed(seed)
    return pf.Sequential([pf.layers.Dense(32, activation="relu", input_shape=(d,)),
                          pf.layers.Dense(classes)])


def _compile(model):
    model.compile(optimizer=pf.optimizers.Adam(1e-2),
                  loss=pf.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy", pf.metrics.AUC(multi_label=True, num_labels=3,
                                                       from_logits=True)])
    return model


@fake
def test_fit_moves_batches_to_the_models_device():
    x, y = _data(64)
    model = _compile(_model())
    for p in model.parameters():
        p.data = _C._fake_cuda_tensor(tuple(p.shape), "float32", 0)
    assert model._model_device() == pf.device("cuda:0")
    # the first thing that touches the device is moving the metrics' state, then
    # the batch: on this machine that is where it stops (not at a mixed-device op)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        model.predict(x, verbose=0)


def test_model_device_of_a_cpu_model_is_none():
    model = _model()
    assert model._model_device() is None
    lazy = pf.Sequential([pf.layers.Dense(4)])
    assert lazy._model_device() is None


@gpu
def test_fit_on_the_gpu_matches_the_cpu(tmp_path):
    x, y = _data()
    cpu = _compile(_model())
    dev = _compile(_model().to("cuda"))
    assert dev._model_device() == pf.device("cuda:0")
    cb = [pf.callbacks.ModelCheckpoint(str(tmp_path / "best.pfm"), save_best_only=True),
          pf.callbacks.EarlyStopping(patience=10)]
    h_cpu = cpu.fit(x, y, epochs=3, batch_size=64, verbose=0, validation_split=0.25,
                    shuffle=False)
    h_dev = dev.fit(x, y, epochs=3, batch_size=64, verbose=0, validation_split=0.25,
                    shuffle=False, callbacks=cb)
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        # float32 on both; device reductions sum in another order
        np.testing.assert_allclose(h_dev.history[key], h_cpu.history[key], rtol=1e-3,
                                   atol=1e-4)
    for p in dev.parameters():
        assert p.device == pf.device("cuda:0")
    pred = dev.predict(x[:10], verbose=0)
    assert isinstance(pred, np.ndarray)
    np.testing.assert_allclose(pred, cpu.predict(x[:10], verbose=0), rtol=1e-3, atol=1e-4)
    res = dev.evaluate(x, y, verbose=0, return_dict=True)
    assert set(res) == {"loss", "accuracy", "auc"}
    again = pf.load_model(str(tmp_path / "best.pfm"))
    assert isinstance(again.predict(x[:2], verbose=0), np.ndarray)


@gpu
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_autocast_step_on_the_gpu(dtype):
    x, y = _data(128)
    model = _model().to("cuda")
    opt = pf.optim.SGD(model.parameters(), lr=0.1)
    scaler = pf.amp.GradScaler("cuda", enabled=dtype == "float16")
    xd, yd = pf.tensor(x, device="cuda"), pf.tensor(y, device="cuda")
    losses = []
    for _ in range(5):
        opt.zero_grad()
        with pf.autocast("cuda", dtype=getattr(pf, dtype)):
            logits = model(xd)
            loss = pf.nn.functional.cross_entropy(logits, yd)
        assert loss.dtype == pf.float32
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(float(loss))
    assert losses[-1] < losses[0]


@gpu
def test_mixed_bfloat16_fit_on_the_gpu():
    pf.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        x, y = _data()
        model = _compile(_model().to("cuda"))
        hist = model.fit(x, y, epochs=3, batch_size=64, verbose=0)
        assert hist.history["loss"][-1] < hist.history["loss"][0]
    finally:
        pf.mixed_precision.set_global_policy("float32")
