"""``python -m pyframe.examples.digits``: a small CNN learns the 8x8
handwritten digits that ship with scikit-learn (1,797 images, 10 classes),
with the progress bar, then is saved, loaded back and checked to predict
exactly as before.

Options: --epochs N, --quiet (no progress bar), --out PATH (where the model
is saved; a temporary directory by default)."""
import argparse
import os
import tempfile
import time

import numpy as np

import pyframe as pf
from . import need_sklearn


def load(seed=0):
    """Images as (N, 8, 8, 1) float32 in [0, 1] and int64 labels, shuffled
    once with a fixed seed (so the validation split is the same every run)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    return x[order], y[order]


def build():
    return pf.Sequential([
        pf.layers.Conv2D(32, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
        pf.layers.MaxPooling2D(),
        pf.layers.Conv2D(64, 3, padding="same", activation="relu"),
        pf.layers.MaxPooling2D(),
        pf.layers.Flatten(),
        pf.layers.Dropout(0.25),
        pf.layers.Dense(64, activation="relu"),
        pf.layers.Dense(10),
    ], name="digits_cnn")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    need_sklearn("pyframe.examples.digits")

    pf.manual_seed(0)
    x, y = load()
    model = build()
    model.compile(optimizer=pf.optimizers.Adam(2e-3),
                  loss=pf.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.summary()
    t0 = time.perf_counter()
    history = model.fit(x, y, batch_size=32, epochs=args.epochs, validation_split=0.2,
                        verbose=0 if args.quiet else 1)
    seconds = time.perf_counter() - t0
    val_acc = history.history["val_accuracy"][-1]
    print("trained %d epochs in %.1f s: validation accuracy %.2f%%"
          % (args.epochs, seconds, 100 * val_acc))

    with tempfile.TemporaryDirectory() as tmp:
        path = args.out or os.path.join(tmp, "digits.safetensors")
        model.save(path)
        again = pf.load_model(path)
        same = np.array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))
        print("saved to %s (%d bytes) and loaded back: predictions identical: %s"
              % (path if args.out else os.path.basename(path), os.path.getsize(path), same))
    if not same:
        raise SystemExit("the reloaded model predicts differently")
    return {"val_accuracy": val_acc, "seconds": seconds}


if __name__ == "__main__":
    main()
