"""Keras's built-in callbacks beyond History and the progress bar:
EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, LearningRateScheduler,
CSVLogger, TerminateOnNaN and LambdaCallback, with Keras 3's argument names
and behaviour (the differences are listed in docs/architecture.md).

They work at epoch granularity on the epoch logs (plain dicts of floats).
The only one that reads a value every batch is TerminateOnNaN, by design; a
ModelCheckpoint with ``save_freq=N`` reads the batch logs only when it saves.
"""
import csv
import inspect
import math
import numbers
import os
import re
import shutil
import string
import tempfile
import warnings

import numpy as np

from .callback import Callback, _BATCH_HOOKS

__all__ = ["EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau", "LearningRateScheduler",
           "CSVLogger", "TerminateOnNaN", "LambdaCallback"]


# --------------------------------------------------------------- validation

def _check_bool(who, name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError("%s: %s must be True or False; got %r" % (who, name, value))
    return bool(value)


def _check_int(who, name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError("%s: %s must be an integer >= %d; got %r (%s)"
                        % (who, name, minimum, value, type(value).__name__))
    if value < minimum:
        raise ValueError("%s: %s must be an integer >= %d; got %r" % (who, name, minimum, value))
    return int(value)


def _check_real(who, name, value, what="a finite number"):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError("%s: %s must be %s; got %r (%s)"
                        % (who, name, what, value, type(value).__name__))
    value = float(value)
    if not math.isfinite(value):
        raise ValueError("%s: %s must be %s; got %r" % (who, name, what, value))
    return value


def _check_path(who, name, value):
    try:
        path = os.fspath(value)
    except TypeError:
        raise TypeError("%s: %s must be a str or os.PathLike path; got %r (%s)"
                        % (who, name, value, type(value).__name__)) from None
    if not isinstance(path, str):
        raise TypeError("%s: %s must be a str path; got bytes %r (decode it with "
                        "os.fsdecode)" % (who, name, path))
    if not path:
        raise ValueError("%s: %s is empty; give a file path" % (who, name))
    return path


# ------------------------------------------------------------- the monitor

_MODES = ("auto", "min", "max")
# Words that mark a metric to maximise in "auto" mode (accuracy and its
# variants, AUC, precision, recall, F1/F-beta, R^2, IoU); any other name is
# minimised.  Matched at the start of a word of the name, so "layer2_loss"
# is not taken for an R^2.
_MAXIMISED = ("acc", "auc", "precision", "recall", "f1", "fbeta", "r2", "iou")


def _infers_max(monitor):
    name = monitor[4:] if monitor.startswith("val_") else monitor
    words = [w for w in re.split(r"[^0-9a-z]+", name.lower()) if w]
    if "loss" in words or any(w.endswith("loss") for w in words):
        return False
    return any(w.startswith(m) for w in words for m in _MAXIMISED)


class _Monitored:
    """What EarlyStopping, ModelCheckpoint and ReduceLROnPlateau share: a
    monitored key, its direction and the improvement test."""

    def _init_monitor(self, monitor, mode, min_delta):
        who = type(self).__name__
        if not isinstance(monitor, str) or not monitor:
            raise TypeError("%s: monitor must be the name of a logged quantity, such as "
                            "'val_loss' or 'accuracy'; got %r" % (who, monitor))
        if not isinstance(mode, str) or mode not in _MODES:
            raise ValueError("%s: mode must be one of 'auto', 'min', 'max'; got %r ('auto' "
                             "picks 'max' for accuracy, AUC, precision, recall, F1 and R2 "
                             "names, 'min' otherwise)" % (who, mode))
        self.monitor = monitor
        self.mode = mode
        # an absolute change, whatever the sign the user wrote (as Keras)
        self.min_delta = abs(_check_real(who, "min_delta", min_delta))
        self._maximize = mode == "max" or (mode == "auto" and _infers_max(monitor))

    def _worst(self):
        return -math.inf if self._maximize else math.inf

    def _improves(self, value, reference):
        """True when ``value`` beats ``reference`` by more than min_delta
        (NaN never does)."""
        if self._maximize:
            return value - self.min_delta > reference
        return value + self.min_delta < reference

    def _current(self, logs, consequence):
        """The monitored value as a float, or None (with a warning naming the
        keys there are) when the logs do not have it."""
        value = logs.get(self.monitor) if logs else None
        if value is None:
            keys = ", ".join(logs) if logs else "none"
            warnings.warn("%s: the monitored quantity %r is not in the logs (available: %s); "
                          "%s. Monitor one of the available keys, or pass validation data to "
                          "fit() for the val_ ones." % (type(self).__name__, self.monitor, keys,
                                                        consequence), stacklevel=3)
            return None
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        if getattr(value, "ndim", None) == 0:
            return float(value)
        raise TypeError("%s: the monitored quantity %r is %r, not a number (a per-class "
                        "metric?); monitor a scalar metric" % (type(self).__name__, self.monitor,
                                                                value))


def _optimizer(callback):
    """The compiled optimizer of the callback's model, checked for a
    learning_rate."""
    who = type(callback).__name__
    opt = getattr(callback.model, "optimizer", None)
    if opt is None:
        raise RuntimeError("%s: the model has no optimizer; compile() it with an optimizer "
                           "before fit()" % who)
    if not hasattr(opt, "learning_rate"):
        raise TypeError("%s: the model's optimizer (%s) has no learning_rate attribute to "
                        "adjust; use a pf.optimizers optimizer" % (who, type(opt).__name__))
    return opt


def _set_learning_rate(callback, opt, value):
    try:
        opt.learning_rate = value
    except TypeError as e:
        raise TypeError("%s: cannot set the learning rate to %r: %s"
                        % (type(callback).__name__, value, e)) from e


# ----------------------------------------------------------- EarlyStopping

class EarlyStopping(_Monitored, Callback):
    """Stops training when ``monitor`` has not improved for ``patience``
    epochs.

    An epoch improves when the monitored value beats the best so far by more
    than ``min_delta`` (downwards in "min" mode, upwards in "max").  An epoch
    that improves and, with a ``baseline``, also beats the baseline resets
    the count of epochs without progress; any other epoch adds one, and
    training stops when the count reaches ``patience`` (a first epoch that
    improves never stops it).  With a baseline that is never beaten, training
    therefore runs ``patience`` epochs.  Epochs before ``start_from_epoch``
    are not monitored.

    ``restore_best_weights=True`` keeps a copy of the weights of the best
    epoch and puts them back when training ends (stopped early or not).
    After fit, ``stopped_epoch`` is the (0-based) epoch that stopped training
    (0 when none did), ``best`` the best value and ``best_epoch`` its epoch.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        who = "EarlyStopping"
        self._init_monitor(monitor, mode, min_delta)
        self.patience = _check_int(who, "patience", patience, 0)
        self.verbose = _check_int(who, "verbose", verbose, 0)
        self.baseline = None if baseline is None else _check_real(who, "baseline", baseline,
                                                                  "None or a finite number")
        self.restore_best_weights = _check_bool(who, "restore_best_weights",
                                                restore_best_weights)
        self.start_from_epoch = _check_int(who, "start_from_epoch", start_from_epoch, 0)
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = self._worst()
        self.best_epoch = 0
        self.best_weights = None
        self._stopped = False

    def on_train_begin(self, logs=None):
        # one instance may serve several fits, each judged on its own
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        current = self._current(logs, "early stopping ignores this epoch")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # until something improves, the first monitored epoch is the best
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._improves(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
        if self.wait >= max(self.patience, 1):
            self.stopped_epoch = epoch
            self._stopped = True
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self._stopped and self.verbose > 0:
            print("Epoch %d: early stopping (%s has not improved for %d epochs)"
                  % (self.stopped_epoch + 1, self.monitor, self.wait))
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print("Restoring model weights from the end of the best epoch: %d."
                      % (self.best_epoch + 1))
            self.model.set_weights(self.best_weights)


# --------------------------------------------------------- ModelCheckpoint

class _PathFields:
    """The values a checkpoint path may name: ``epoch`` (1-based), ``batch``
    (1-based, batch-level saves only) and any log key, each read only when
    the path names it (batch logs are lazy)."""

    def __init__(self, epoch, batch, logs):
        self.epoch, self.batch, self.logs = epoch, batch, logs or {}

    def __getitem__(self, key):
        if key == "epoch":
            return self.epoch + 1
        if key == "batch" and self.batch is not None:
            return self.batch + 1
        return self.logs[key]


class ModelCheckpoint(_Monitored, Callback):
    """Saves the model (``model.save``) or its weights (``model.save_weights``)
    at the end of every epoch, or every ``save_freq`` batches.

    ``filepath`` is formatted with ``str.format``: ``{epoch}`` is the 1-based
    epoch, ``{batch}`` the 1-based batch of a batch-level save, and any log
    key can be named, e.g. ``"ckpt/{epoch:02d}-{val_loss:.4f}.pfm"``.  Missing
    folders are created.  With ``save_best_only`` a save happens only when
    ``monitor`` beats the best value saved so far (``initial_value_threshold``
    to start from; the best value is kept across fits, so a later fit does not
    overwrite a better checkpoint with a worse one).
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__()
        who = "ModelCheckpoint"
        self.filepath = _check_path(who, "filepath", filepath)
        self._check_fields()
        self._init_monitor(monitor, mode, 0)
        self.verbose = _check_int(who, "verbose", verbose, 0)
        self.save_best_only = _check_bool(who, "save_best_only", save_best_only)
        self.save_weights_only = _check_bool(who, "save_weights_only", save_weights_only)
        if save_freq != "epoch":
            if isinstance(save_freq, bool) or not isinstance(save_freq, numbers.Integral) \
                    or save_freq < 1:
                raise ValueError("ModelCheckpoint: save_freq must be 'epoch' or a positive "
                                 "number of batches; got %r" % (save_freq,))
            save_freq = int(save_freq)
        self.save_freq = save_freq
        if initial_value_threshold is None:
            self.best = self._worst()
        else:
            self.best = _check_real(who, "initial_value_threshold", initial_value_threshold,
                                    "None or a finite number")
        self._epoch = 0
        self._batches_since_save = 0

    def _check_fields(self):
        # A malformed pattern fails here rather than after the first epoch.
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(self.filepath)
                      if f is not None]
        except ValueError as e:
            raise ValueError("ModelCheckpoint: filepath %r is not a valid format pattern (%s); "
                             "write literal braces as {{ and }}" % (self.filepath, e)) from None
        for f in fields:
            if f == "" or f.split(".")[0].split("[")[0].isdigit():
                raise ValueError("ModelCheckpoint: filepath %r has a positional field {%s}; "
                                 "name the value instead, as in {epoch} or {val_loss:.4f}"
                                 % (self.filepath, f))

    def on_train_begin(self, logs=None):
        save = "save_weights" if self.save_weights_only else "save"
        if not callable(getattr(self.model, save, None)):
            raise TypeError("ModelCheckpoint: the model (%s) has no %s() method to checkpoint "
                            "with" % (type(self.model).__name__, save))
        self._batches_since_save = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def _path(self, epoch, batch, logs):
        try:
            return self.filepath.format_map(_PathFields(epoch, batch, logs))
        except KeyError as e:
            key = e.args[0] if e.args else "?"
            available = ["epoch"] + (["batch"] if batch is not None else []) + list(logs or {})
            raise KeyError("ModelCheckpoint: filepath %r names {%s}, which is not in the logs "
                           "at this %s; the available keys are %s"
                           % (self.filepath, key, "epoch" if batch is None else "batch",
                              ", ".join(available))) from None
        except (ValueError, TypeError, IndexError, AttributeError) as e:
            raise ValueError("ModelCheckpoint: cannot format filepath %r at epoch %d: %s"
                             % (self.filepath, epoch + 1, e)) from None

    def _save(self, epoch, batch, logs):
        path = self._path(epoch, batch, logs)
        if self.save_best_only:
            current = self._current(logs, "no checkpoint is saved")
            if current is None:
                return
            if not self._improves(current, self.best):
                if self.verbose > 0:
                    print("Epoch %d: %s did not improve from %.5f"
                          % (epoch + 1, self.monitor, self.best))
                return
            if self.verbose > 0:
                print("Epoch %d: %s improved from %.5f to %.5f, saving model to %s"
                      % (epoch + 1, self.monitor, self.best, current, path))
            self.best = current
        elif self.verbose > 0:
            print("Epoch %d: saving model to %s" % (epoch + 1, path))
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if os.path.isdir(path):
            raise IsADirectoryError("ModelCheckpoint: the checkpoint path %r is a folder; give "
                                    "a file path" % path)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


# ------------------------------------------------------- ReduceLROnPlateau

class ReduceLROnPlateau(_Monitored, Callback):
    """Multiplies the optimizer's learning rate by ``factor`` when
    ``monitor`` has not improved (by more than ``min_delta``) for
    ``patience`` epochs, never going below ``min_lr``; after a reduction it
    waits ``cooldown`` epochs before counting again.  Adds the epoch's
    learning rate to the epoch logs as ``"learning_rate"`` (so History and
    CSVLogger record it).  The optimizer must have a settable float rate:
    one driven by a LearningRateSchedule raises TypeError when reduced."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__()
        who = "ReduceLROnPlateau"
        self._init_monitor(monitor, mode, min_delta)
        factor = _check_real(who, "factor", factor, "a number between 0 and 1")
        if not 0.0 < factor < 1.0:
            raise ValueError("ReduceLROnPlateau: factor must be between 0 and 1 (exclusive): "
                             "the new rate is rate * factor; got factor=%r" % factor)
        self.factor = factor
        self.patience = _check_int(who, "patience", patience, 0)
        self.verbose = _check_int(who, "verbose", verbose, 0)
        self.cooldown = _check_int(who, "cooldown", cooldown, 0)
        min_lr = _check_real(who, "min_lr", min_lr, "a finite number >= 0")
        if min_lr < 0:
            raise ValueError("ReduceLROnPlateau: min_lr must be >= 0; got %r" % min_lr)
        self.min_lr = min_lr
        self._reset()

    def _reset(self):
        self.wait = 0
        self.cooldown_counter = 0
        self.best = self._worst()

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        _optimizer(self)
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        opt = _optimizer(self)
        rate = float(opt.learning_rate)
        if logs is not None:
            logs["learning_rate"] = rate
        current = self._current(logs, "the learning rate is left unchanged")
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improves(current, self.best):
            self.best = current
            self.wait = 0
            return
        if self.in_cooldown():
            return
        self.wait += 1
        if self.wait >= self.patience and rate > self.min_lr:
            new_rate = max(rate * self.factor, self.min_lr)
            _set_learning_rate(self, opt, new_rate)
            if self.verbose > 0:
                print("Epoch %d: ReduceLROnPlateau reducing learning rate to %g."
                      % (epoch + 1, new_rate))
            self.cooldown_counter = self.cooldown
            self.wait = 0


# --------------------------------------------------- LearningRateScheduler

class LearningRateScheduler(Callback):
    """Sets the optimizer's learning rate at the start of each epoch to
    ``schedule(epoch, lr)`` (0-based epoch, current rate; a one-argument
    ``schedule(epoch)`` is accepted too).  The schedule must return a finite
    number >= 0.  The epoch's rate is added to the epoch logs as
    ``"learning_rate"``."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError("LearningRateScheduler: schedule must be a function "
                            "schedule(epoch, lr) -> new lr; got %r (%s)"
                            % (schedule, type(schedule).__name__))
        self.schedule = schedule
        self.verbose = _check_int("LearningRateScheduler", "verbose", verbose, 0)
        self._takes_lr = self._arity(schedule)

    @staticmethod
    def _arity(schedule):
        # Decided once from the signature, so that a TypeError raised inside
        # the schedule is never mistaken for a call with the wrong arity.
        try:
            sig = inspect.signature(schedule)
        except (TypeError, ValueError):
            return True
        for args, takes_lr in (((0, 0.1), True), ((0,), False)):
            try:
                sig.bind(*args)
                return takes_lr
            except TypeError:
                pass
        raise TypeError("LearningRateScheduler: schedule must accept (epoch, lr) or (epoch); "
                        "got a callable with signature %s" % sig)

    def on_train_begin(self, logs=None):
        _optimizer(self)

    def on_epoch_begin(self, epoch, logs=None):
        opt = _optimizer(self)
        if self._takes_lr:
            value = self.schedule(epoch, float(opt.learning_rate))
        else:
            value = self.schedule(epoch)
        rate = None
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            rate = float(value)
        elif getattr(value, "ndim", None) == 0 and getattr(value, "dtype", None) is not None:
            rate = float(value)
        if rate is None or not 0.0 <= rate < math.inf:
            raise ValueError("LearningRateScheduler: schedule(%d, ...) returned %r; expected a "
                             "finite learning rate >= 0 (a float)" % (epoch, value))
        _set_learning_rate(self, opt, rate)
        if self.verbose > 0:
            print("Epoch %d: LearningRateScheduler setting learning rate to %g."
                  % (epoch + 1, rate))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(_optimizer(self).learning_rate)


# --------------------------------------------------------------- CSVLogger

def _csv_field(value):
    if value is None:
        return ""           # missing this epoch (validation every few epochs)
    if isinstance(value, str):
        return value
    if getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, (list, tuple)):
        return "[%s]" % ", ".join(_csv_field(v) for v in value)
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))     # the shortest text that reads back exactly
    return str(value)


class CSVLogger(Callback):
    """Writes one row per epoch to a CSV file: ``epoch`` (0-based, as Keras),
    then the epoch logs' keys in sorted order.  The header comes from the
    first epoch; a key that appears later (validation every few epochs, a
    rate added by ReduceLROnPlateau) becomes a new column, the file being
    rewritten with an empty field in the earlier rows.  A missing value is
    an empty field.  The file is flushed after every epoch and closed when
    training ends.  ``append=True`` continues an existing log (its header
    gives the columns) instead of replacing it."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        who = "CSVLogger"
        self.filename = _check_path(who, "filename", filename)
        if not isinstance(separator, str) or len(separator) != 1 or separator in "\"\r\n":
            raise ValueError("CSVLogger: separator must be one character other than a quote or "
                             "a line break, such as ',' or ';' or '\\t'; got %r" % (separator,))
        self.sep = separator
        self.append = _check_bool(who, "append", append)
        self._file = None
        self._writer = None
        self.keys = None

    def _open(self):
        self._close()
        self.keys = None
        mode = "w"
        if self.append and os.path.isfile(self.filename) and os.path.getsize(self.filename):
            with open(self.filename, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f, delimiter=self.sep), [])
            if not header or header[0] != "epoch":
                raise ValueError("CSVLogger: cannot append to %r: its first line %r is not a "
                                 "CSVLogger header (epoch%s...); use another file or "
                                 "append=False" % (self.filename, self.sep.join(header),
                                                   self.sep))
            with open(self.filename, "rb") as f:
                f.seek(-1, os.SEEK_END)
                # a log cut short by a crash may lack its last line break
                broken = f.read(1) not in (b"\n", b"\r")
            self.keys = header[1:]
            mode = "a"
        self._file = open(self.filename, mode, newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, delimiter=self.sep, lineterminator="\n")
        if mode == "a" and broken:
            self._file.write("\n")

    def _close(self):
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None

    def _add_columns(self, new_keys):
        """Rewrites the file with the extra columns (empty in the rows so
        far), through a temporary file and os.replace."""
        keys = sorted(self.keys + new_keys)
        self._close()
        with open(self.filename, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter=self.sep))
        folder = os.path.dirname(os.path.abspath(self.filename))
        fd, tmp = tempfile.mkstemp(prefix=".csvlogger-", dir=folder)
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as out:
                w = csv.writer(out, delimiter=self.sep, lineterminator="\n")
                w.writerow(["epoch"] + keys)
                old = rows[0] if rows else ["epoch"] + self.keys
                for row in rows[1:]:
                    values = dict(zip(old, row))
                    w.writerow([values.get("epoch", "")] + [values.get(k, "") for k in keys])
            shutil.copymode(self.filename, tmp)
            os.replace(tmp, self.filename)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.keys = keys
        self._file = open(self.filename, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, delimiter=self.sep, lineterminator="\n")

    def on_train_begin(self, logs=None):
        self._open()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._file is None:
            self._open()
        if self.keys is None:
            self.keys = sorted(logs)
            self._writer.writerow(["epoch"] + self.keys)
        new = [k for k in logs if k not in self.keys]
        if new:
            self._add_columns(new)
        self._writer.writerow([epoch] + [_csv_field(logs.get(k)) for k in self.keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        self._close()


# ---------------------------------------------------------- TerminateOnNaN

class TerminateOnNaN(Callback):
    """Stops training as soon as a batch's loss is NaN or infinite.

    This callback reads ``logs["loss"]`` in ``on_train_batch_end``, so the
    loss leaves the compute path after every batch: a deliberate per-batch
    read (it is the only way to catch the first bad batch), which costs one
    synchronisation per step."""

    def on_train_batch_end(self, batch, logs=None):
        if not logs:
            return
        loss = logs.get("loss")
        if loss is None:
            return
        if not math.isfinite(float(loss)):
            print("Batch %d: the loss is %s; terminating training" % (batch, loss))
            self.model.stop_training = True


# ---------------------------------------------------------- LambdaCallback

_EPOCH_HOOKS = ("on_epoch_begin", "on_epoch_end")
_RUN_HOOKS = ("on_train_begin", "on_train_end", "on_test_begin", "on_test_end",
              "on_predict_begin", "on_predict_end")
_HOOKS = _EPOCH_HOOKS + _RUN_HOOKS + _BATCH_HOOKS


class LambdaCallback(Callback):
    """A callback made of plain functions, one per hook you want::

        LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))

    Epoch hooks take ``(epoch, logs)``, batch hooks ``(batch, logs)``, the
    begin/end hooks of train, test and predict ``(logs)``.  Any hook of
    Callback may be given by name (``on_test_batch_end=...``)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        super().__init__()
        unknown = sorted(k for k in kwargs if k not in _HOOKS)
        if unknown:
            raise TypeError("LambdaCallback: unknown hook(s) %s; the hooks are %s"
                            % (unknown, ", ".join(_HOOKS)))
        given = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for hook, fn in given.items():
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError("LambdaCallback: %s must be a function (or None); got %r (%s)"
                                % (hook, fn, type(fn).__name__))
            # the function is the hook: CallbackList sees hooks set on the instance
            setattr(self, hook, fn)
