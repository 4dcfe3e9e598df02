"""pf.callbacks: the Keras callbacks that fit/evaluate/predict call::

    model.fit(x, y, validation_split=0.2, epochs=50, callbacks=[
        pf.callbacks.EarlyStopping(patience=5, restore_best_weights=True),
        pf.callbacks.ModelCheckpoint("ckpt/{epoch:02d}-{val_loss:.4f}.pfm", save_best_only=True),
        pf.callbacks.CSVLogger("training.csv"),
    ])

Subclass ``Callback`` and override the ``on_*`` hooks for your own.
"""
from .training.callback import Callback, CallbackList, History, ProgbarLogger
from .training.backup import BackupAndRestore
from .training.liveplot import LivePlot
from .training.callbacks import (EarlyStopping, ModelCheckpoint, ReduceLROnPlateau,
                                 LearningRateScheduler, CSVLogger, TerminateOnNaN, LambdaCallback)

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping",
           "ModelCheckpoint", "ReduceLROnPlateau", "LearningRateScheduler", "CSVLogger",
           "TerminateOnNaN", "LambdaCallback", "BackupAndRestore", "LivePlot"]
