"""BackupAndRestore: a fit that is killed (SIGKILL, a pre-empted machine, a
closed notebook) and started again with the same callback resumes where the
last backup was made, and ends with the weights an uninterrupted fit gives.

A backup is one safetensors file (pf.saving.save_checkpoint, written to a
temporary file and renamed, so a kill mid-write leaves the previous backup
whole) holding the weights, the optimizer's state and, as JSON, the epoch,
the number of batches of it done, and pyframe's generator state at the
epoch's start and at the backup.  Resuming replays the epoch's shuffle from
the first state, skips the batches already done and continues from the
second, so the batches, the dropout masks and the updates are the same bits.
Array data, Datasets and DataLoaders resume exactly; a Python generator
cannot be rewound, so with one a resumed fit continues with its next items."""
import os

from .. import _C
from .callback import Callback

_FILE = "backup.safetensors"


class BackupAndRestore(Callback):
    """backup_dir: where the backup lives (created if needed).
    save_freq: "epoch" (after each epoch) or a number of batches (also after
    each epoch).  delete_checkpoint: remove the backup when fit ends normally
    (True, as Keras), so the next fit starts afresh."""

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if not isinstance(backup_dir, (str, os.PathLike)) or not os.fspath(backup_dir):
            raise ValueError("BackupAndRestore: backup_dir must be a directory path; got %r"
                             % (backup_dir,))
        if save_freq != "epoch" and (isinstance(save_freq, bool) or
                                     not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError("BackupAndRestore: save_freq must be 'epoch' or a positive number "
                             "of batches; got %r" % (save_freq,))
        if not isinstance(delete_checkpoint, bool):
            raise TypeError("BackupAndRestore: delete_checkpoint must be True or False; got %r"
                            % (delete_checkpoint,))
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self.path = os.path.join(self.backup_dir, _FILE)
        self._batches = 0

    def on_train_begin(self, logs=None):
        from ..io import load_checkpoint
        os.makedirs(self.backup_dir, exist_ok=True)
        self._batches = 0
        if not os.path.exists(self.path):
            return
        state = load_checkpoint(self.model, self.path)
        epoch, step = state.get("epoch"), state.get("step")
        if not isinstance(epoch, int) or not isinstance(step, int) or epoch < 0 or step < 0:
            raise ValueError("BackupAndRestore: %r is damaged: its epoch/step are %r/%r"
                             % (self.path, epoch, step))
        for key in ("rng", "rng_epoch_start"):
            rng = state.get(key)
            if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, int) and
                                                                   v >= 0 for v in rng)):
                raise ValueError("BackupAndRestore: %r is damaged: its generator state %r is %r"
                                 % (self.path, key, rng))
        _C.set_rng_state(tuple(state["rng"]))
        self.model.__dict__["_resume"] = {"epoch": epoch, "step": step,
                                          "rng_epoch_start": state["rng_epoch_start"],
                                          "rng": state["rng"]}

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        # the epoch's shuffle is drawn after this: a backup made inside the
        # epoch replays the order from this state
        self._rng_epoch_start = list(_C.get_rng_state())

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches += 1
        if self._batches % self.save_freq == 0:
            self._save(self._epoch, batch + 1, self._rng_epoch_start)

    def on_epoch_end(self, epoch, logs=None):
        # resume at the start of the next epoch, whose shuffle starts from now
        rng = list(_C.get_rng_state())
        self._save(epoch + 1, 0, rng)

    def _save(self, epoch, step, rng_epoch_start):
        from ..io import save_checkpoint
        save_checkpoint(self.model, self.path,
                        {"epoch": int(epoch), "step": int(step),
                         "rng": list(_C.get_rng_state()), "rng_epoch_start": rng_epoch_start})

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self.path):
            os.remove(self.path)
