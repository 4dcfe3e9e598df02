"""``python -m pyframe.examples.tabular``: a pandas DataFrame straight into
fit().  scikit-learn's breast-cancer data (569 tumours, 30 numeric
measurements) as a DataFrame, a Normalization layer adapted to the
training rows, class weights for the unbalanced classes, and a small MLP.

Options: --epochs N, --quiet."""
import argparse
import time

import numpy as np

import pyframe as pf
from . import need_sklearn


def load(seed=0):
    """(features DataFrame, label Series), rows shuffled once with a fixed seed."""
    from sklearn.datasets import load_breast_cancer
    frame = load_breast_cancer(as_frame=True).frame
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return frame.drop(columns="target"), frame["target"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    need_sklearn("pyframe.examples.tabular")

    pf.manual_seed(0)
    features, label = load()
    split = int(np.ceil(len(label) * 0.8))          # fit's validation_split keeps the last 20%
    norm = pf.layers.Normalization()
    norm.adapt(features.iloc[:split])                # statistics of the training rows only
    model = pf.Sequential([
        norm,
        pf.layers.Dense(32, activation="relu"),
        pf.layers.Dropout(0.2),
        pf.layers.Dense(16, activation="relu"),
        pf.layers.Dense(1, activation="sigmoid"),
    ], name="breast_cancer_mlp")
    model.compile(optimizer=pf.optimizers.Adam(1e-3), loss="binary_crossentropy",
                  metrics=["accuracy", pf.metrics.AUC(name="auc")])
    counts = np.bincount(label.iloc[:split].to_numpy())
    class_weight = {c: len(label[:split]) / (2.0 * counts[c]) for c in (0, 1)}
    t0 = time.perf_counter()
    history = model.fit(features, label.astype("float32"), batch_size=16, epochs=args.epochs,
                        validation_split=0.2, class_weight=class_weight,
                        verbose=0 if args.quiet else 1)
    seconds = time.perf_counter() - t0
    val_acc = history.history["val_accuracy"][-1]
    print("trained %d epochs in %.1f s on %d rows x %d columns: validation accuracy %.2f%%, "
          "AUC %.3f" % (args.epochs, seconds, split, features.shape[1], 100 * val_acc,
                        history.history["val_auc"][-1]))
    return {"val_accuracy": val_acc, "seconds": seconds}


if __name__ == "__main__":
    main()
