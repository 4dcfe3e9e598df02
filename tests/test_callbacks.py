"""pf.callbacks: EarlyStopping, ModelCheckpoint, ReduceLROnPlateau,
LearningRateScheduler, CSVLogger, TerminateOnNaN, LambdaCallback.

The callbacks are driven hook by hook through a CallbackList, with epoch logs
made by hand, against the rule each one implements (written out in the
test), against PyTorch's ReduceLROnPlateau, or against the logs themselves."""
import csv
import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyframe as pf
from pyframe.callbacks import (Callback, CallbackList, CSVLogger, EarlyStopping, LambdaCallback,
                               LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau,
                               TerminateOnNaN)
from pyframe.training.callback import LazyLogs


def make_model(lr=0.1):
    model = pf.Sequential([pf.layers.Dense(4), pf.layers.Dense(1)])
    model(pf.zeros((2, 3)))
    model.optimizer = pf.optimizers.SGD(lr, params=model.parameters())
    model.stop_training = False
    return model


def run_epochs(callbacks, values, key="val_loss", model=None, on_epoch=None):
    """Drives fit's epoch hooks with ``{key: values[e]}`` until a callback
    sets stop_training; returns the number of epochs run and the model."""
    model = model or make_model()
    cbs = CallbackList(callbacks, model=model, epochs=len(values), steps=1, verbose=0)
    cbs.on_train_begin()
    ran = 0
    for epoch, v in enumerate(values):
        cbs.on_epoch_begin(epoch)
        if on_epoch is not None:
            on_epoch(epoch, model)
        cbs.on_epoch_end(epoch, {key: float(v)})
        ran += 1
        if model.stop_training:
            break
    cbs.on_train_end()
    return ran, model


# ------------------------------------------------------------- EarlyStopping

def reference_stop(values, patience, min_delta=0.0, maximize=False, baseline=None, start=0):
    """The early-stopping rule, stated directly: an epoch counts as progress
    when it beats the last value that counted as an improvement (and the
    baseline, if any) by more than min_delta; training stops at the first
    epoch that ends max(patience, 1) epochs without progress.  Returns the
    stopping epoch or None."""
    sign = -1.0 if maximize else 1.0
    best = None
    last_progress = start - 1
    for e in range(start, len(values)):
        v = sign * values[e]
        improved = not math.isnan(v) and (best is None or v + min_delta < best)
        if improved:
            best = v
        if improved and (baseline is None or v + min_delta < sign * baseline):
            last_progress = e
        if e - last_progress >= max(patience, 1):
            return e
    return None


@pytest.mark.parametrize("patience", [0, 1, 3])
@pytest.mark.parametrize("last_improving", [0, 2, 5])
def test_early_stopping_stops_patience_epochs_after_the_last_improvement(patience,
                                                                         last_improving):
    # improving until epoch k, flat after: epochs k+1 .. k+patience do not
    # improve, so the stop comes at epoch k + max(patience, 1)
    n = last_improving + patience + 5
    values = [1.0 - 0.1 * min(e, last_improving) for e in range(n)]
    es = EarlyStopping(patience=patience)
    ran, model = run_epochs([es], values)
    expected = last_improving + max(patience, 1)
    assert es.stopped_epoch == expected and ran == expected + 1
    assert model.stop_training
    assert es.best == pytest.approx(values[last_improving])
    assert es.best_epoch == last_improving


def test_early_stopping_never_stops_a_steadily_improving_run():
    values = np.linspace(2.0, 1.0, 12)
    es = EarlyStopping(patience=1)
    ran, model = run_epochs([es], values)
    assert ran == len(values) and not model.stop_training and es.stopped_epoch == 0


def test_early_stopping_min_delta_ignores_small_changes():
    delta = 0.01
    # every step is smaller than min_delta: nothing after epoch 0 improves
    small = [1.0 - 0.5 * delta * e for e in range(10)]
    es = EarlyStopping(monitor="loss", min_delta=delta, patience=2)
    assert run_epochs([es], small, key="loss")[0] == 2 + 1
    # every step is larger: it never stops
    large = [1.0 - 2.0 * delta * e for e in range(10)]
    es = EarlyStopping(monitor="loss", min_delta=-delta, patience=2)   # sign ignored, as Keras
    assert es.min_delta == delta
    assert run_epochs([es], large, key="loss")[0] == 10


@pytest.mark.parametrize("monitor,mode,maximize", [
    ("val_accuracy", "auto", True), ("val_auc", "auto", True), ("precision", "auto", True),
    ("val_recall", "auto", True), ("f1_score", "auto", True), ("val_r2_score", "auto", True),
    ("val_sparse_categorical_accuracy", "auto", True), ("val_loss", "auto", False),
    ("layer2_loss", "auto", False), ("val_mean_absolute_error", "auto", False),
    ("val_accuracy", "min", False), ("val_loss", "max", True)])
def test_early_stopping_direction_from_mode_or_name(monitor, mode, maximize):
    rng = np.random.default_rng(len(monitor))
    values = list(rng.normal(size=30))
    es = EarlyStopping(monitor=monitor, mode=mode, patience=2)
    ran, _ = run_epochs([es], values, key=monitor)
    stop = reference_stop(values, 2, maximize=maximize)
    assert ran == (len(values) if stop is None else stop + 1)


def test_early_stopping_baseline_never_beaten_runs_patience_epochs():
    # improving every epoch, but never below the baseline: no epoch counts
    # as progress, so training runs `patience` epochs
    values = [2.0 - 0.1 * e for e in range(20)]
    es = EarlyStopping(monitor="loss", patience=4, baseline=0.5, restore_best_weights=True)
    ran, _ = run_epochs([es], values, key="loss")
    assert ran == 4
    assert es.best_epoch == 3          # still restores the best of those epochs


def test_early_stopping_baseline_beaten_resets_the_count():
    values = [0.9, 0.8, 0.4, 0.45, 0.45, 0.45, 0.45, 0.45]
    es = EarlyStopping(monitor="loss", patience=3, baseline=0.5)
    ran, _ = run_epochs([es], values, key="loss")
    # epoch 2 beats the baseline; epochs 3, 4, 5 do not improve on it
    assert es.stopped_epoch == 2 + 3 == reference_stop(values, 3, baseline=0.5)
    assert ran == 6


def test_early_stopping_start_from_epoch_ignores_the_warm_up():
    warm_up = 4
    values = [float(e) for e in range(warm_up)] + [10.0] * 10   # worsening, then flat
    es = EarlyStopping(monitor="loss", patience=2, start_from_epoch=warm_up)
    ran, _ = run_epochs([es], values, key="loss")
    # the first monitored epoch sets the best; two flat epochs follow
    assert es.stopped_epoch == warm_up + 2 == reference_stop(values, 2, start=warm_up)
    assert es.best_epoch == warm_up


def test_early_stopping_nan_never_improves():
    values = [1.0, 0.5, math.nan, math.nan, 0.1]
    es = EarlyStopping(monitor="loss", patience=2)
    assert run_epochs([es], values, key="loss")[0] == 4
    assert es.best == 0.5


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=25),
       patience=st.integers(0, 4), min_delta=st.sampled_from([0.0, 0.05]),
       maximize=st.booleans(), baseline=st.sampled_from([None, 0.3, 0.7]),
       start=st.integers(0, 3))
def test_early_stopping_matches_the_rule(values, patience, min_delta, maximize, baseline, start):
    es = EarlyStopping(monitor="m", patience=patience, min_delta=min_delta,
                       mode="max" if maximize else "min", baseline=baseline,
                       start_from_epoch=start)
    ran, model = run_epochs([es], values, key="m")
    stop = reference_stop(values, patience, min_delta, maximize, baseline, start)
    assert model.stop_training == (stop is not None)
    assert ran == (len(values) if stop is None else stop + 1)


def set_weights_to_epoch(epoch, model):
    model.set_weights([np.full(w.shape, float(epoch), np.float32) for w in model.get_weights()])


@pytest.mark.parametrize("values", [
    [1.0, 0.5, 0.7, 0.8, 0.9, 0.6],      # stops early: the best epoch is 1
    [1.0, 0.9, 0.3, 0.4, 0.35, 0.5],     # runs to the end: restored all the same (Keras 3)
])
def test_restore_best_weights_puts_back_the_best_epoch(values):
    es = EarlyStopping(monitor="loss", patience=3, restore_best_weights=True)
    ran, model = run_epochs([es], values, key="loss", on_epoch=set_weights_to_epoch)
    best = int(np.argmin(values[:ran]))
    assert es.best_epoch == best
    for w in model.get_weights():
        np.testing.assert_array_equal(w, np.full(w.shape, float(best), np.float32))
    # without the option the last epoch's weights stay
    es = EarlyStopping(monitor="loss", patience=3)
    ran, model = run_epochs([es], values, key="loss", on_epoch=set_weights_to_epoch)
    assert all((w == ran - 1).all() for w in model.get_weights())


def test_restore_best_weights_with_nothing_improving_restores_the_first_monitored_epoch():
    # NaN never improves, so the first monitored epoch stays the best (Keras)
    es = EarlyStopping(monitor="loss", patience=2, restore_best_weights=True, start_from_epoch=1)
    ran, model = run_epochs([es], [0.5] + [math.nan] * 5, key="loss",
                            on_epoch=set_weights_to_epoch)
    assert ran == 3 and es.best_epoch == 1
    assert all((w == 1.0).all() for w in model.get_weights())


def test_best_weights_are_copies_not_views():
    es = EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
    model = make_model()
    before = model.get_weights()

    def scramble(epoch, m):
        if epoch > 0:
            with pf.no_grad():
                for w in m.weights:
                    w.add_(1.0)     # in place: a view would follow it

    run_epochs([es], [0.1, 0.2, 0.3], key="loss", model=model, on_epoch=scramble)
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


def test_early_stopping_missing_key_warns_with_the_available_keys():
    es = EarlyStopping(monitor="val_acc", patience=0)
    model = make_model()
    cbs = CallbackList([es], model=model)
    cbs.on_train_begin()
    with pytest.warns(UserWarning, match=r"'val_acc' is not in the logs \(available: loss, "
                                         r"accuracy\)"):
        cbs.on_epoch_end(0, {"loss": 1.0, "accuracy": 0.5})
    assert not model.stop_training


def test_early_stopping_is_reset_by_each_fit():
    es = EarlyStopping(monitor="loss", patience=1)
    run_epochs([es], [0.1, 0.2, 0.3], key="loss")
    assert es.stopped_epoch == 1
    ran, _ = run_epochs([es], [5.0, 4.0, 3.0], key="loss")    # worse than the first fit's best
    assert ran == 3 and es.stopped_epoch == 0 and es.best == 3.0


def test_early_stopping_verbose_says_when_it_stops_and_restores(capsys):
    es = EarlyStopping(monitor="loss", patience=1, verbose=1, restore_best_weights=True)
    run_epochs([es], [0.1, 0.2, 0.3], key="loss")
    out = capsys.readouterr().out
    assert "Epoch 2: early stopping" in out and "best epoch: 1" in out


# ----------------------------------------------------------- ReduceLROnPlateau

def torch_rates(values, lr, factor, patience, min_delta, cooldown, min_lr, maximize):
    """The rate after each epoch under torch's ReduceLROnPlateau.  Its
    conventions are one off from Keras's: it reduces after more than
    ``patience`` bad epochs (Keras: at ``patience``), and the epoch that
    ends a Keras cooldown already counts (torch's cooldown c-1 matches)."""
    import torch
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="max" if maximize else "min", factor=factor, patience=patience - 1,
        threshold=min_delta, threshold_mode="abs", cooldown=max(cooldown - 1, 0), min_lr=min_lr)
    out = []
    for v in values:
        sched.step(v)
        out.append(opt.param_groups[0]["lr"])
    return out


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30),
       patience=st.integers(1, 4), cooldown=st.integers(0, 3),
       min_delta=st.sampled_from([0.0, 1e-4, 0.05]), maximize=st.booleans(),
       factor=st.sampled_from([0.1, 0.5]))
def test_reduce_lr_on_plateau_matches_torch(values, patience, cooldown, min_delta, maximize,
                                            factor):
    lr, min_lr = 1.0, 0.004
    rlr = ReduceLROnPlateau(monitor="m", factor=factor, patience=patience, cooldown=cooldown,
                            min_delta=min_delta, min_lr=min_lr,
                            mode="max" if maximize else "min")
    model = make_model(lr)
    cbs = CallbackList([rlr], model=model)
    cbs.on_train_begin()
    seen = []
    for e, v in enumerate(values):
        logs = {"m": v}
        cbs.on_epoch_end(e, logs)
        seen.append(model.optimizer.learning_rate)
    expected = torch_rates(values, lr, factor, patience, min_delta, cooldown, min_lr, maximize)
    np.testing.assert_allclose(seen, expected, rtol=1e-12)


def test_reduce_lr_logs_the_epochs_rate_and_keeps_min_lr():
    rlr = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_lr=0.03)
    model = make_model(0.1)
    hist = pf.callbacks.History()
    cbs = CallbackList([rlr, hist], model=model)
    cbs.on_train_begin()
    for e in range(6):
        cbs.on_epoch_end(e, {"loss": 1.0})       # flat: a bad epoch from epoch 1 on
    # the log holds the rate the epoch trained with, before any reduction
    rates = [0.1, 0.1, 0.05, 0.03, 0.03, 0.03]
    assert hist.history["learning_rate"] == pytest.approx(rates)
    assert model.optimizer.learning_rate == pytest.approx(0.03)


def test_reduce_lr_with_a_schedule_raises_a_clear_type_error():
    model = make_model()
    model.optimizer = pf.optimizers.SGD(pf.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9),
                                        params=model.parameters())
    cbs = CallbackList([ReduceLROnPlateau(monitor="loss", patience=0)], model=model)
    cbs.on_train_begin()
    cbs.on_epoch_end(0, {"loss": 1.0})
    with pytest.raises(TypeError, match="ReduceLROnPlateau: cannot set the learning rate.*"
                                        "LearningRateSchedule"):
        cbs.on_epoch_end(1, {"loss": 1.0})


def test_reduce_lr_needs_a_compiled_optimizer():
    model = make_model()
    model.optimizer = None
    with pytest.raises(RuntimeError, match="ReduceLROnPlateau: the model has no optimizer; "
                                           "compile"):
        CallbackList([ReduceLROnPlateau()], model=model).on_train_begin()


def test_reduce_lr_missing_key_warns_and_leaves_the_rate():
    model = make_model(0.1)
    cbs = CallbackList([ReduceLROnPlateau(patience=0)], model=model)
    cbs.on_train_begin()
    with pytest.warns(UserWarning, match="'val_loss' is not in the logs .*available: loss"):
        for e in range(3):
            cbs.on_epoch_end(e, {"loss": 1.0})
    assert model.optimizer.learning_rate == 0.1


# ------------------------------------------------------- LearningRateScheduler

def test_scheduler_sets_each_epochs_rate_from_the_schedule():
    model = make_model(0.2)
    hist = pf.callbacks.History()
    sched = LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch >= 2 else lr)
    cbs = CallbackList([sched, hist], model=model)
    cbs.on_train_begin()
    for e in range(6):
        cbs.on_epoch_begin(e)
        cbs.on_epoch_end(e, {"loss": 1.0})
    expected = 0.2 * 0.5 ** np.maximum(np.arange(6) - 1, 0)
    np.testing.assert_allclose(hist.history["learning_rate"], expected, rtol=1e-15)


def test_scheduler_accepts_a_one_argument_schedule_and_numpy_values():
    model = make_model()
    cbs = CallbackList([LearningRateScheduler(lambda epoch: np.float32(0.5) ** epoch)],
                       model=model)
    for e in range(3):
        cbs.on_epoch_begin(e)
        assert model.optimizer.learning_rate == pytest.approx(0.5 ** e)


def test_scheduler_errors_inside_the_schedule_propagate_unchanged():
    def schedule(epoch, lr):
        raise TypeError("bug inside the schedule")
    cbs = CallbackList([LearningRateScheduler(schedule)], model=make_model())
    with pytest.raises(TypeError, match="bug inside the schedule"):
        cbs.on_epoch_begin(0)


@pytest.mark.parametrize("value", [None, "0.1", -0.1, math.nan, math.inf, [0.1], True])
def test_scheduler_rejects_a_bad_rate(value):
    cbs = CallbackList([LearningRateScheduler(lambda e, lr: value)], model=make_model())
    with pytest.raises(ValueError, match=r"LearningRateScheduler: schedule\(0, \.\.\.\) returned "
                                         r".*expected a finite learning rate >= 0"):
        cbs.on_epoch_begin(0)


def test_scheduler_verbose_prints_the_rate(capsys):
    cbs = CallbackList([LearningRateScheduler(lambda e, lr: 0.25, verbose=1)], model=make_model())
    cbs.on_epoch_begin(0)
    assert "Epoch 1: LearningRateScheduler setting learning rate to 0.25" in capsys.readouterr().out


# ----------------------------------------------------------------- CSVLogger

def read_csv(path, sep=","):
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=sep))
    return rows[0], rows[1:]


def epoch_logs(n, val_every=1, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for e in range(n):
        logs = {"loss": float(rng.random()), "accuracy": float(rng.random())}
        if (e + 1) % val_every == 0:
            logs.update(val_loss=float(rng.random()), val_accuracy=float(rng.random()))
        out.append(logs)
    return out


def drive_csv(logger, logs_list, after_epoch=None):
    cbs = CallbackList([logger], model=make_model())
    cbs.on_train_begin()
    for e, logs in enumerate(logs_list):
        cbs.on_epoch_begin(e)
        cbs.on_epoch_end(e, dict(logs))
        if after_epoch is not None:
            after_epoch(e)
    cbs.on_train_end()


def test_csv_logger_writes_every_epoch_exactly(tmp_path):
    path = tmp_path / "log.csv"
    logs = epoch_logs(5)
    seen_rows = []
    drive_csv(CSVLogger(path), logs, after_epoch=lambda e: seen_rows.append(len(read_csv(path)[1])))
    assert seen_rows == [1, 2, 3, 4, 5]          # flushed after each epoch
    header, rows = read_csv(path)
    keys = sorted(logs[0])
    assert header == ["epoch"] + keys
    for e, (row, expected) in enumerate(zip(rows, logs)):
        assert int(row[0]) == e
        assert [float(x) for x in row[1:]] == [expected[k] for k in keys]    # exact round trip


def test_csv_logger_validation_every_other_epoch_leaves_empty_fields(tmp_path):
    path = tmp_path / "log.csv"
    logs = epoch_logs(6, val_every=2)
    drive_csv(CSVLogger(path), logs)
    header, rows = read_csv(path)
    assert header == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    for row, expected in zip(rows, logs):
        for k, field in zip(header[1:], row[1:]):
            assert field == ("" if k not in expected else repr(expected[k]))
    import pandas as pd
    frame = pd.read_csv(path)
    assert frame["val_loss"].isna().tolist() == ["val_loss" not in lg for lg in logs]


def test_csv_logger_keys_added_by_other_callbacks_become_columns(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path, separator=";")
    model = make_model(0.1)
    cbs = CallbackList([ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5), logger],
                       model=model)
    cbs.on_train_begin()
    for e in range(3):
        cbs.on_epoch_end(e, {"loss": 1.0})
    cbs.on_train_end()
    header, rows = read_csv(path, sep=";")
    assert header == ["epoch", "learning_rate", "loss"]
    assert [float(r[1]) for r in rows] == [0.1, 0.1, 0.05]


def test_csv_logger_append_continues_the_log_and_adds_late_columns(tmp_path):
    path = tmp_path / "log.csv"
    first = [{"loss": 0.5}, {"loss": 0.25}]
    drive_csv(CSVLogger(path), first)
    second = [{"loss": 0.125, "val_loss": 0.375}]
    drive_csv(CSVLogger(path, append=True), second)
    header, rows = read_csv(path)
    assert header == ["epoch", "loss", "val_loss"]
    assert rows == [["0", "0.5", ""], ["1", "0.25", ""], ["0", "0.125", "0.375"]]
    drive_csv(CSVLogger(path), first)         # append=False replaces the file
    assert read_csv(path)[1] == [["0", "0.5"], ["1", "0.25"]]


def test_csv_logger_refuses_to_append_to_a_foreign_file(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("name,score\nx,1\n")
    with pytest.raises(ValueError, match="CSVLogger: cannot append to .*not a CSVLogger header"):
        drive_csv(CSVLogger(path, append=True), [{"loss": 1.0}])
    assert path.read_text() == "name,score\nx,1\n"


def test_csv_logger_writes_vectors_and_closes_on_train_end(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    drive_csv(logger, [{"loss": 0.5, "f1": [0.25, 0.75]}])
    assert logger._file is None
    assert read_csv(path)[1] == [["0", "[0.25, 0.75]", "0.5"]]


# ----------------------------------------------------------- ModelCheckpoint

class SaveSpy:
    """Stands in for model.save / save_weights: records each path and writes
    a small file there, so the test sees when and where saves happen."""

    def __init__(self):
        self.paths = []

    def __call__(self, path):
        self.paths.append(str(path))
        with open(path, "w") as f:
            f.write("checkpoint %d" % len(self.paths))


def spied_model():
    model = make_model()
    model.save, model.save_weights = SaveSpy(), SaveSpy()
    return model


def test_checkpoint_formats_epoch_and_log_keys_into_the_path(tmp_path):
    pattern = str(tmp_path / "ckpt" / "m-{epoch:02d}-{val_loss:.4f}.pfm")
    model = spied_model()
    values = [0.73125, 0.5, 0.6]
    run_epochs([ModelCheckpoint(pattern)], values, model=model)
    expected = [pattern.format(epoch=e + 1, val_loss=v) for e, v in enumerate(values)]
    assert model.save.paths == expected and model.save_weights.paths == []
    assert all(os.path.isfile(p) for p in expected)       # the folder was created


def test_checkpoint_save_best_only_saves_each_new_best(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.random(15)
    model = spied_model()
    cb = ModelCheckpoint(str(tmp_path / "{epoch}.pfm"), save_best_only=True)
    run_epochs([cb], values, model=model)
    new_best = np.flatnonzero(values < np.minimum.accumulate(np.r_[np.inf, values[:-1]]))
    assert model.save.paths == [str(tmp_path / ("%d.pfm" % (e + 1))) for e in new_best]
    assert cb.best == values.min()


def test_checkpoint_max_mode_weights_only_and_initial_threshold(tmp_path):
    values = [0.5, 0.7, 0.65, 0.9, 0.8]
    model = spied_model()
    cb = ModelCheckpoint(str(tmp_path / "w.pfw"), monitor="val_accuracy", save_best_only=True,
                         save_weights_only=True, initial_value_threshold=0.6)
    run_epochs([cb], values, key="val_accuracy", model=model)
    # saves where the accuracy beats both the threshold and every earlier value
    running = np.maximum.accumulate(np.r_[0.6, values[:-1]])
    assert len(model.save_weights.paths) == int(np.sum(np.array(values) > running)) == 2
    assert model.save.paths == []


def test_checkpoint_every_n_batches_counts_across_epochs(tmp_path):
    every, steps, epochs = 3, 4, 3
    model = spied_model()
    cbs = CallbackList([ModelCheckpoint(str(tmp_path / "e{epoch}-b{batch}-{loss:.2f}.pfm"),
                                        save_freq=every)], model=model)
    cbs.on_train_begin()
    expected, seen = [], 0
    for e in range(epochs):
        cbs.on_epoch_begin(e)
        for b in range(steps):
            cbs.on_train_batch_end(b, LazyLogs({"loss": lambda: 0.5}))
            seen += 1
            if seen % every == 0:
                expected.append(str(tmp_path / ("e%d-b%d-0.50.pfm" % (e + 1, b + 1))))
        cbs.on_epoch_end(e, {"loss": 0.5})
    assert model.save.paths == expected


def test_checkpoint_path_naming_a_missing_key_is_a_clear_error(tmp_path):
    cb = ModelCheckpoint(str(tmp_path / "{epoch}-{val_acc:.2f}.pfm"))
    with pytest.raises(KeyError, match=r"ModelCheckpoint: filepath .* names \{val_acc\}, which "
                                       r"is not in the logs.*available keys are epoch, val_loss"):
        run_epochs([cb], [0.5], model=spied_model())


def test_checkpoint_missing_monitor_warns_and_does_not_save(tmp_path):
    model = spied_model()
    with pytest.warns(UserWarning, match="ModelCheckpoint: the monitored quantity 'val_loss' is "
                                         "not in the logs .*no checkpoint is saved"):
        run_epochs([ModelCheckpoint(str(tmp_path / "m.pfm"), save_best_only=True)], [0.5],
                   key="loss", model=model)
    assert model.save.paths == []


def test_checkpoint_verbose_messages(tmp_path, capsys):
    run_epochs([ModelCheckpoint(str(tmp_path / "m.pfm"), save_best_only=True, verbose=1)],
               [0.5, 0.25, 0.75], model=spied_model())
    out = capsys.readouterr().out
    assert "Epoch 2: val_loss improved from 0.50000 to 0.25000, saving model to" in out
    assert "Epoch 3: val_loss did not improve from 0.25000" in out


def test_checkpoint_needs_a_model_that_can_save(tmp_path):
    model = make_model()
    model.save_weights = None
    with pytest.raises(TypeError, match=r"ModelCheckpoint: the model .* has no save_weights\(\)"):
        CallbackList([ModelCheckpoint(str(tmp_path / "w"), save_weights_only=True)],
                     model=model).on_train_begin()


# ------------------------------------------------------------ TerminateOnNaN

@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_terminate_on_nan_stops_at_the_first_bad_batch(bad, capsys):
    model = make_model()
    cbs = CallbackList([TerminateOnNaN()], model=model)
    losses = [1.0, 0.5, bad, 0.25]
    reads = {"loss": 0, "accuracy": 0}

    def thunk(key, value):
        def read():
            reads[key] += 1
            return value
        return read

    stopped_at = None
    for b, loss in enumerate(losses):
        cbs.on_train_batch_end(b, LazyLogs({"loss": thunk("loss", loss),
                                            "accuracy": thunk("accuracy", 0.5)}))
        if model.stop_training:
            stopped_at = b
            break
    assert stopped_at == losses.index(bad)
    assert reads == {"loss": stopped_at + 1, "accuracy": 0}    # reads the loss and nothing else
    assert "Batch 2: the loss is" in capsys.readouterr().out


# ------------------------------------------------------------ LambdaCallback

def test_lambda_callback_calls_each_given_hook_with_its_arguments():
    calls = []
    cb = LambdaCallback(
        on_train_begin=lambda logs: calls.append(("train_begin", logs)),
        on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch)),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, logs["loss"])),
        on_train_batch_end=lambda batch, logs: calls.append(("batch_end", batch, logs["loss"])),
        on_test_end=lambda logs: calls.append(("test_end", logs)),
        on_train_end=lambda logs: calls.append(("train_end", logs)))
    assert isinstance(cb, LambdaCallback)
    cbs = CallbackList([cb], model=make_model())
    assert cbs.wants("on_train_batch_end")
    assert not cbs.wants("on_train_batch_begin") and not cbs.wants("on_test_batch_end")
    cbs.on_train_begin({"a": 1})
    cbs.on_epoch_begin(0)
    cbs.on_train_batch_begin(0, None)             # not given: nothing happens
    cbs.on_train_batch_end(0, LazyLogs({"loss": lambda: 2.0}))
    cbs.on_test_end({"val": 1})
    cbs.on_epoch_end(0, {"loss": 1.5})
    cbs.on_train_end()
    assert calls == [("train_begin", {"a": 1}), ("epoch_begin", 0), ("batch_end", 0, 2.0),
                     ("test_end", {"val": 1}), ("epoch_end", 0, 1.5), ("train_end", None)]


def test_lambda_callbacks_with_different_hooks_do_not_share_them():
    a, b = [], []
    ca = LambdaCallback(on_train_batch_end=lambda i, logs: a.append(i))
    cb = LambdaCallback(on_test_batch_begin=lambda i, logs: b.append(i))
    cbs = CallbackList([ca, cb])
    cbs.on_train_batch_end(3, None)
    cbs.on_test_batch_begin(4, None)
    assert a == [3] and b == [4]
    assert not CallbackList([LambdaCallback(on_epoch_end=print)]).wants("on_train_batch_end")


# ------------------------------------------------------------ bad arguments

BAD_ARGS = [
    (EarlyStopping, dict(mode="minimum"), ValueError,
     r"EarlyStopping: mode must be one of 'auto', 'min', 'max'; got 'minimum'"),
    (EarlyStopping, dict(patience=-1), ValueError, r"EarlyStopping: patience must be an integer "
                                                   r">= 0; got -1"),
    (EarlyStopping, dict(patience=2.5), TypeError, r"EarlyStopping: patience must be an integer"),
    (EarlyStopping, dict(monitor=""), TypeError, r"EarlyStopping: monitor must be the name"),
    (EarlyStopping, dict(min_delta="0.1"), TypeError, r"EarlyStopping: min_delta must be a "
                                                      r"finite number; got '0.1'"),
    (EarlyStopping, dict(baseline=math.nan), ValueError, r"EarlyStopping: baseline must be None "
                                                         r"or a finite number; got nan"),
    (EarlyStopping, dict(restore_best_weights="yes"), TypeError,
     r"EarlyStopping: restore_best_weights must be True or False; got 'yes'"),
    (EarlyStopping, dict(start_from_epoch=-2), ValueError, r"EarlyStopping: start_from_epoch"),
    (ReduceLROnPlateau, dict(factor=1.0), ValueError,
     r"ReduceLROnPlateau: factor must be between 0 and 1 \(exclusive\).*got factor=1.0"),
    (ReduceLROnPlateau, dict(factor=0), ValueError, r"ReduceLROnPlateau: factor must be between"),
    (ReduceLROnPlateau, dict(min_lr=-1e-3), ValueError, r"ReduceLROnPlateau: min_lr must be >= 0"),
    (ReduceLROnPlateau, dict(cooldown=-1), ValueError, r"ReduceLROnPlateau: cooldown must be"),
    (ReduceLROnPlateau, dict(mode=None), ValueError, r"ReduceLROnPlateau: mode must be one of"),
    (ModelCheckpoint, dict(filepath="m.pfm", save_freq="batch"), ValueError,
     r"ModelCheckpoint: save_freq must be 'epoch' or a positive number of batches; got 'batch'"),
    (ModelCheckpoint, dict(filepath="m.pfm", save_freq=0), ValueError, r"got 0"),
    (ModelCheckpoint, dict(filepath=3), TypeError, r"ModelCheckpoint: filepath must be a str or "
                                                   r"os.PathLike path; got 3"),
    (ModelCheckpoint, dict(filepath="m-{epoch.pfm"), ValueError,
     r"ModelCheckpoint: filepath 'm-\{epoch.pfm' is not a valid format pattern"),
    (ModelCheckpoint, dict(filepath="m-{}.pfm"), ValueError, r"has a positional field \{\}; name "
                                                             r"the value"),
    (ModelCheckpoint, dict(filepath="m.pfm", save_best_only=1), TypeError,
     r"ModelCheckpoint: save_best_only must be True or False"),
    (ModelCheckpoint, dict(filepath="m.pfm", initial_value_threshold="x"), TypeError,
     r"ModelCheckpoint: initial_value_threshold must be None or a finite number"),
    (LearningRateScheduler, dict(schedule=0.1), TypeError,
     r"LearningRateScheduler: schedule must be a function schedule\(epoch, lr\)"),
    (LearningRateScheduler, dict(schedule=lambda: 0.1), TypeError,
     r"LearningRateScheduler: schedule must accept \(epoch, lr\) or \(epoch\); got a callable "
     r"with signature \(\)"),
    (CSVLogger, dict(filename="log.csv", separator=",,"), ValueError,
     r"CSVLogger: separator must be one character"),
    (CSVLogger, dict(filename="log.csv", separator="\n"), ValueError, r"CSVLogger: separator"),
    (CSVLogger, dict(filename=None), TypeError, r"CSVLogger: filename must be a str"),
    (CSVLogger, dict(filename="log.csv", append="no"), TypeError, r"CSVLogger: append must be "
                                                                  r"True or False"),
    (LambdaCallback, dict(on_epoch_end=3), TypeError,
     r"LambdaCallback: on_epoch_end must be a function \(or None\); got 3"),
    (LambdaCallback, dict(on_epoch_ends=print), TypeError,
     r"LambdaCallback: unknown hook\(s\) \['on_epoch_ends'\]; the hooks are on_epoch_begin"),
]


@pytest.mark.parametrize("cls,kwargs,exc,match", BAD_ARGS,
                         ids=["%s-%s" % (c.__name__, "-".join(k)) for c, k, _, _ in BAD_ARGS])
def test_bad_constructor_arguments(cls, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cls(**kwargs)


def test_monitoring_a_vector_is_a_clear_error():
    cbs = CallbackList([EarlyStopping(monitor="f1")], model=make_model())
    cbs.on_train_begin()
    with pytest.raises(TypeError, match=r"EarlyStopping: the monitored quantity 'f1' is "
                                        r"\[0.5, 0.25\], not a number"):
        cbs.on_epoch_end(0, {"f1": [0.5, 0.25]})


def test_public_module():
    assert pf.callbacks.Callback is Callback
    for name in pf.callbacks.__all__:
        obj = getattr(pf.callbacks, name)
        assert issubclass(obj, Callback), name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(pf.callbacks.EarlyStopping(), Callback)


# ------------------------------------------------------- inside a real fit()

def regression(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.1 * rng.normal(size=(n, 1))).astype(np.float32)
    return x, y


def linear_model(lr):
    pf.manual_seed(0)
    model = pf.Sequential([pf.layers.Dense(1, input_shape=(3,))])
    model.compile(optimizer=pf.optimizers.SGD(lr), loss="mse")
    return model


@pytest.mark.parametrize("patience", [1, 3])
def test_fit_early_stopping_on_a_plateau(patience):
    # Full-batch gradient descent with a small rate lowers the loss every
    # epoch; from epoch `flat` on the rate is 0, so the weights and the
    # validation loss stop moving: the last improving val_loss is epoch
    # flat - 1 (it already sees the final weights), and training stops
    # `patience` epochs later.
    x, y = regression()
    flat = 4
    model = linear_model(0.05)
    es = EarlyStopping(patience=patience)
    hist = model.fit(x, y, batch_size=len(x), epochs=20, verbose=0, validation_data=(x, y),
                     callbacks=[LearningRateScheduler(lambda e, lr: 0.05 if e < flat else 0.0),
                                es])
    val = hist.history["val_loss"]
    assert np.all(np.diff(val[:flat]) < 0) and len(set(val[flat - 1:])) == 1
    assert es.stopped_epoch == flat - 1 + patience == reference_stop(val, patience)
    assert len(val) == es.stopped_epoch + 1 and hist.epoch[-1] == es.stopped_epoch


def test_fit_early_stopping_never_stops_a_decreasing_loss():
    x, y = regression()
    model = linear_model(0.05)
    hist = model.fit(x, y, batch_size=len(x), epochs=8, verbose=0,
                     callbacks=[EarlyStopping(monitor="loss", patience=0)])
    assert len(hist.history["loss"]) == 8 and np.all(np.diff(hist.history["loss"]) < 0)


def test_fit_restore_best_weights_after_divergence():
    # a good rate for 4 epochs, then one too large: the validation loss
    # climbs, training stops, and the weights of the best epoch come back
    x, y = regression()
    model = linear_model(0.05)
    es = EarlyStopping(patience=2, restore_best_weights=True)
    hist = model.fit(x, y, batch_size=len(x), epochs=20, verbose=0, validation_data=(x, y),
                     callbacks=[LearningRateScheduler(lambda e, lr: 0.05 if e < 4 else 1.5), es])
    val = hist.history["val_loss"]
    assert es.best_epoch == int(np.argmin(val)) == 3 and len(val) == 4 + 2
    assert model.evaluate(x, y, verbose=0) == pytest.approx(min(val), rel=1e-6)


def test_fit_reduce_lr_on_plateau_changes_the_optimizers_rate():
    # min_delta larger than any change: after epoch 0 nothing improves, so
    # the rate drops every `patience` epochs; torch's scheduler fed the
    # recorded losses gives the same rates
    x, y = regression()
    model = linear_model(0.04)
    rlr = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_delta=100.0,
                            min_lr=0.004)
    hist = model.fit(x, y, batch_size=16, epochs=9, verbose=0, callbacks=[rlr])
    rates = hist.history["learning_rate"]
    after = torch_rates(hist.history["loss"], 0.04, 0.5, 2, 100.0, 0, 0.004, False)
    np.testing.assert_allclose(rates[1:], after[:-1], rtol=1e-12)
    assert model.optimizer.learning_rate == pytest.approx(after[-1])
    assert rates[0] == 0.04 and min(rates) < 0.04


def test_fit_csv_logger_matches_history(tmp_path):
    x, y = regression()
    path = tmp_path / "train.csv"
    model = linear_model(0.05)
    hist = model.fit(x, y, batch_size=16, epochs=5, verbose=0, validation_split=0.25,
                     validation_freq=2, callbacks=[CSVLogger(path)])
    header, rows = read_csv(path)
    assert header == ["epoch"] + sorted(hist.history)
    assert [int(r[0]) for r in rows] == hist.epoch
    for j, key in enumerate(header[1:], start=1):
        column = [float(r[j]) for r in rows if r[j] != ""]
        assert column == hist.history[key], key       # exact: the floats round-trip
    # validation ran after epochs 2 and 4 only
    assert [r[header.index("val_loss")] != "" for r in rows] == [False, True, False, True, False]


def test_fit_model_checkpoint_writes_the_formatted_names(tmp_path, monkeypatch):
    x, y = regression()
    model = linear_model(0.05)
    spy = SaveSpy()
    monkeypatch.setattr(model, "save", spy, raising=False)
    pattern = str(tmp_path / "ckpt" / "{epoch:02d}-{val_loss:.4f}.pfm")
    hist = model.fit(x, y, batch_size=16, epochs=4, verbose=0, validation_data=(x, y),
                     callbacks=[ModelCheckpoint(pattern)])
    expected = [pattern.format(epoch=e + 1, val_loss=v)
                for e, v in zip(hist.epoch, hist.history["val_loss"])]
    assert spy.paths == expected
    assert sorted(os.listdir(tmp_path / "ckpt")) == sorted(os.path.basename(p) for p in expected)


def test_fit_terminate_on_nan_stops_a_diverging_fit():
    x, y = regression(n=256)
    model = linear_model(50.0)       # far beyond 2 / (largest curvature): the loss explodes
    seen = []
    hist = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[
        LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(logs["loss"])),
        TerminateOnNaN()])
    first_bad = next(i for i, v in enumerate(seen) if not math.isfinite(v))
    assert len(seen) == first_bad + 1 < len(x) // 4        # stopped at that very batch
    assert len(hist.epoch) == 1 and not math.isfinite(hist.history["loss"][0])


def test_fit_with_metrics_monitors_val_accuracy_upwards(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    y = (x @ rng.normal(size=(4, 3))).argmax(axis=1)
    pf.manual_seed(2)
    model = pf.Sequential([pf.layers.Dense(8, activation="tanh", input_shape=(4,)),
                           pf.layers.Dense(3)])
    model.compile(optimizer=pf.optimizers.SGD(0.05),
                  loss=pf.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    es = EarlyStopping(monitor="val_accuracy", patience=2)
    path = tmp_path / "log.csv"
    hist = model.fit(x, y, batch_size=16, epochs=25, verbose=0, validation_split=0.25,
                     shuffle=False, callbacks=[es, CSVLogger(path)])
    acc = hist.history["val_accuracy"]
    stop = reference_stop(acc, 2, maximize=True)
    assert len(acc) == (25 if stop is None else stop + 1)
    assert es.best == max(acc)
    header, rows = read_csv(path)
    assert header == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [float(r[3]) for r in rows] == acc


# ------------------------------------------- checkpoints through real saving

def test_fit_checkpoints_load_back_the_weights_of_their_epoch(tmp_path):
    # each epoch's file holds the weights that epoch's validation loss was
    # measured with; the last one predicts exactly as the trained model
    x, y = regression()
    model = linear_model(0.05)
    pattern = str(tmp_path / "m-{epoch}.pfm")
    hist = model.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_data=(x, y),
                     callbacks=[ModelCheckpoint(pattern)])
    for e, val in zip(hist.epoch, hist.history["val_loss"]):
        loaded = pf.load_model(pattern.format(epoch=e + 1))
        assert loaded.evaluate(x, y, verbose=0) == pytest.approx(val, rel=1e-6)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_fit_best_weights_checkpoint_equals_early_stoppings_restored_weights(tmp_path):
    # two independent routes to the best epoch's weights: the file that
    # save_best_only kept, and EarlyStopping's restored copy
    x, y = regression()
    model = linear_model(0.05)
    path = tmp_path / "best.pfw"
    hist = model.fit(x, y, batch_size=len(x), epochs=20, verbose=0, validation_data=(x, y),
                     callbacks=[LearningRateScheduler(lambda e, lr: 0.05 if e < 4 else 1.5),
                                ModelCheckpoint(path, save_best_only=True,
                                                save_weights_only=True),
                                EarlyStopping(patience=2, restore_best_weights=True)])
    assert int(np.argmin(hist.history["val_loss"])) < hist.epoch[-1]     # it did get worse
    fresh = linear_model(0.05)
    fresh.load_weights(path)
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
