"""BackupAndRestore: a fit killed with SIGKILL and started again with the same
callback ends with the same weights, bit for bit, as a fit never killed."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import pyframe as pf
from pyframe.training.backup import BackupAndRestore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import os, signal, sys
import numpy as np
import pyframe as pf
from pyframe.training.backup import BackupAndRestore
from pyframe.training.callback import Callback

backup, out, kill_at, save_freq = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
save_freq = save_freq if save_freq == "epoch" else int(save_freq)


class KillAt(Callback):
    # SIGKILL: no Python cleanup, no finally blocks, no flushing -- a real crash
    def __init__(self, at):
        super().__init__()
        self.at, self.n = at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.n += 1
        if self.n == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


rng = np.random.default_rng(0)
x = rng.normal(size=(240, 8)).astype(np.float32)
y = np.argmax(x[:, :3] + 0.3 * rng.normal(size=(240, 3)), axis=1)
pf.manual_seed(0)
model = pf.Sequential([pf.layers.Dense(16, activation="relu", input_shape=(8,)),
                       pf.layers.Dropout(0.3),          # draws from the generator every batch
                       pf.layers.Dense(3)])
model.compile(optimizer=pf.optimizers.Adam(0.01),
              loss=pf.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])

class ForgetGenerator(BackupAndRestore):
    # the control: restore weights and optimizer but not the generator's state
    def on_train_begin(self, logs=None):
        before = pf.get_rng_state()
        super().on_train_begin(logs)
        pf.set_rng_state(before)
        r = self.model.__dict__.get("_resume")
        if r:
            r["rng"] = r["rng_epoch_start"] = None


cls = ForgetGenerator if os.environ.get("FORGET_GENERATOR") else BackupAndRestore
callbacks = [cls(backup, save_freq=save_freq)]
if kill_at:
    callbacks.append(KillAt(kill_at))
hist = model.fit(x, y, batch_size=16, epochs=5, validation_split=0.2, callbacks=callbacks,
                 verbose=0)
np.savez(out, *model.get_weights(), epochs=np.array(hist.epoch))
"""


def _run(tmp_path, backup, out, kill_at, save_freq, **extra_env):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               **extra_env)
    return subprocess.run([sys.executable, str(script), str(backup), str(out), str(kill_at),
                           str(save_freq)], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.parametrize("save_freq, kill_at, resumed_epochs", [
    # 12 batches an epoch: killed in the 3rd epoch, resumed from the end of the 2nd
    ("epoch", 30, [2, 3, 4]),
    # a backup every 5 batches: the last before the kill is mid-epoch (batch 25 = epoch 2,
    # batch 1), so the resumed fit replays epoch 2's order and continues from its 2nd batch
    (5, 28, [2, 3, 4]),
])
def test_a_killed_fit_resumes_to_the_same_weights(tmp_path, save_freq, kill_at,
                                                  resumed_epochs):
    backup = tmp_path / "backup"
    killed = _run(tmp_path, backup, tmp_path / "never.npz", kill_at, save_freq)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (tmp_path / "never.npz").exists()
    assert (backup / "backup.safetensors").exists()
    resumed = _run(tmp_path, backup, tmp_path / "resumed.npz", 0, save_freq)
    assert resumed.returncode == 0, resumed.stderr
    # a finished fit removes its backup, so the next fit starts afresh
    assert not (backup / "backup.safetensors").exists()
    straight = _run(tmp_path, tmp_path / "other", tmp_path / "straight.npz", 0, save_freq)
    assert straight.returncode == 0, straight.stderr
    a, b = np.load(tmp_path / "resumed.npz"), np.load(tmp_path / "straight.npz")
    assert list(a["epochs"]) == resumed_epochs and list(b["epochs"]) == [0, 1, 2, 3, 4]
    weights = [k for k in a.files if k.startswith("arr_")]
    assert len(weights) == 4
    for k in weights:
        np.testing.assert_array_equal(a[k], b[k])


def test_the_generator_state_is_part_of_the_backup(tmp_path):
    # the control: resumed without the generator's state (new shuffles, new dropout
    # masks), the weights differ -- the comparison above can fail
    backup = tmp_path / "backup"
    assert _run(tmp_path, backup, tmp_path / "x.npz", 30, "epoch").returncode == -signal.SIGKILL
    r = _run(tmp_path, backup, tmp_path / "forgot.npz", 0, "epoch", FORGET_GENERATOR="1")
    assert r.returncode == 0, r.stderr
    assert _run(tmp_path, tmp_path / "o", tmp_path / "straight.npz", 0, "epoch").returncode == 0
    a, b = np.load(tmp_path / "forgot.npz"), np.load(tmp_path / "straight.npz")
    assert list(a["epochs"]) == [2, 3, 4]
    assert not np.array_equal(a["arr_0"], b["arr_0"])


def test_arguments_and_a_damaged_backup(tmp_path):
    with pytest.raises(ValueError, match="save_freq must be 'epoch' or a positive number"):
        BackupAndRestore(tmp_path, save_freq=0)
    with pytest.raises(ValueError, match="backup_dir must be a directory path"):
        BackupAndRestore("")
    (tmp_path / "backup.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    model = pf.Sequential([pf.layers.Dense(2, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="backup.safetensors"):
        model.fit(np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32), verbose=0,
                  callbacks=[BackupAndRestore(tmp_path)])
