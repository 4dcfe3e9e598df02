"""model.fit() against hand-written training loops, one epoch at a time.

Every competitor trains the same MLP (same initial weights) for one epoch on
the same random MNIST-shaped data, in order (shuffle=False), with Adam(1e-3)
and sparse categorical cross-entropy from logits:

  pyframe  model.fit(x, y, batch_size, epochs=1, verbose=0, shuffle=False) on
           NumPy arrays: everything fit does per call (adapting the data,
           checking it for NaN, callbacks, loss tracking) counts -- its
           overhead is what is measured
  pf_raw   a plain pyframe loop over the same model class, loss and optimizer
           classes: per batch x[i:i+b], zero_grad, loss(y, model(x)).backward(),
           step                                      goal: pyframe <= 1.1x pf_raw
  torch    the same plain loop in PyTorch (nn.Linear, nn.CrossEntropyLoss,
           torch.optim.Adam)
  keras    Keras 3's model.fit on the same data (backend from KERAS_BACKEND,
           default jax, else tensorflow)     goal: pyframe <= 0.3x keras

With metrics=["accuracy"], fit tracks sparse categorical accuracy, Keras too,
and the plain loops add up (argmax(logits) == y) in a tensor per batch, so the
work stays the same.  Times are per epoch; the lines under each case divide by
the number of steps.  The first epochs of every competitor (Keras's and JAX's
tracing and compilation among them) run before the timed rounds: they are
warm-up, not measured.  Keras is optional: without it the keras column is
empty.
fit and the plain loop are timed in a case of their own ("MLP ..."), the peers
in a second one ("MLP ... peers"), so that the fit/loop ratio never inherits
another framework's threads spinning on the cores.  On a shared 2-core machine
quote the --threads 1 run: with 2 threads, other jobs preempting one OpenMP
thread make epochs jump by several times (IQR in the hundreds of per cent).
Run: python bench/fit.py [--quick] [--filter S] [--threads N]
"""
import importlib.util
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import _parse_args, reexec_clean_env  # noqa: E402

reexec_clean_env()  # before numpy, torch or pyframe load OpenBLAS

if "KERAS_BACKEND" not in os.environ:  # keras reads it once, when imported
    os.environ["KERAS_BACKEND"] = "jax" if importlib.util.find_spec("jax") else "tensorflow"
if _parse_args(known_only=True).threads == 1 and "XLA_FLAGS" not in os.environ:
    # XLA (the jax backend) runs on a pool over every core unless told not to
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

import numpy as np  # noqa: E402

from harness import Bench  # noqa: E402

GOALS = {"pf_raw": 1.1, "keras": 0.3}  # pyframe fit time / peer time, at most
SAMPLES = 6000
CASES = (  # (name, layer sizes, batch size, metrics)
    ("MLP 784-128-10 b64", (784, 128, 10), 64, []),
    ("MLP 784-128-10 b64 +acc", (784, 128, 10), 64, ["accuracy"]),
    ("MLP 64-32-10 b32", (64, 32, 10), 32, []),
    ("MLP 64-32-10 b32 +acc", (64, 32, 10), 32, ["accuracy"]),
)


def pf_model(pf, sizes):
    layers = [pf.layers.Dense(n, activation="relu") for n in sizes[1:-1]]
    model = pf.Sequential(layers + [pf.layers.Dense(sizes[-1])])
    model(pf.zeros((1, sizes[0])))  # build the lazy Dense layers
    return model


def pf_epoch(pf, model, x, y, batch, accuracy):
    """The plain loop: one epoch over (x, y) in order, as fit would run it."""
    opt = pf.optimizers.Adam(learning_rate=1e-3, params=list(model.parameters()))
    loss_fn = pf.losses.SparseCategoricalCrossentropy(from_logits=True)
    px, py = pf.asarray(x), pf.asarray(y)
    n = px.shape[0]

    def epoch():
        correct = None
        for i in range(0, n, batch):
            xb, yb = px[i:i + batch], py[i:i + batch]
            opt.zero_grad()
            logits = model(xb)
            loss_fn(yb, logits).backward()
            opt.step()
            if accuracy:
                hits = (pf.argmax(logits.detach(), axis=-1) == yb).sum()
                correct = hits if correct is None else correct + hits
        return correct
    return epoch


def torch_epoch(torch, weights, x, y, batch, accuracy):
    nn = torch.nn
    mods = []
    for i, (k, b) in enumerate(weights):
        lin = nn.Linear(*k.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(k.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        mods += [lin] if i == len(weights) - 1 else [lin, nn.ReLU()]
    model = nn.Sequential(*mods)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    n = tx.shape[0]

    def epoch():
        correct = None
        for i in range(0, n, batch):
            xb, yb = tx[i:i + batch], ty[i:i + batch]
            opt.zero_grad()
            logits = model(xb)
            loss_fn(logits, yb).backward()
            opt.step()
            if accuracy:
                with torch.no_grad():
                    hits = (logits.argmax(-1) == yb).sum()
                correct = hits if correct is None else correct + hits
        return correct
    return epoch


def keras_fit(keras, weights, x, y, batch, metrics):
    layers = [keras.Input((weights[0][0].shape[0],))]
    for i, (k, _) in enumerate(weights):
        layers.append(keras.layers.Dense(k.shape[1], activation=None if i == len(weights) - 1
                                          else "relu"))
    model = keras.Sequential(layers)
    for layer, (k, b) in zip(model.layers, weights):
        layer.set_weights([k, b])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=list(metrics))
    return lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)


def main():
    bench = Bench("fit", libraries=("pyframe", "torch", "keras"), references=("pf_raw",))
    torch, pf, keras = bench.torch, bench.pyframe, bench.libs.get("keras")
    quiet = bench.args.json_only
    if not quiet:
        if keras is None:
            print("   keras %s: no keras column (optional peer: pip install keras jax)"
                  % ("not installed" if importlib.util.find_spec("keras") is None
                     else "not importable (see above)"))
        else:
            print("   keras: %s backend; its threads are %s" % (
                keras.backend.backend(), "pinned to 1 (XLA_FLAGS)" if os.environ.get(
                    "XLA_FLAGS", "").endswith("threads=1") else "the backend's default pool"))
        print("   times per epoch (%d samples); warm-up epochs, incl. Keras/JAX compilation, "
              "excluded" % SAMPLES)
    if pf is None:
        return
    has_metrics = importlib.util.find_spec("pyframe.metrics") is not None
    rng = np.random.default_rng(0)
    summary = {}
    for name, sizes, batch, metrics in CASES:
        if bench.args.filter not in name + " peers":
            continue
        if metrics and not has_metrics:
            bench._note("%s skipped: pyframe.metrics is not available yet" % name)
            continue
        x = rng.standard_normal((SAMPLES, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], SAMPLES)
        steps = -(-SAMPLES // batch)
        fit_model, raw_model = pf_model(pf, sizes), pf_model(pf, sizes)
        raw_model.load_state_dict(fit_model.state_dict())
        weights = [(np.array(fit_model.state_dict()["%d.kernel" % i]),
                    np.array(fit_model.state_dict()["%d.bias" % i])) for i in range(len(sizes) - 1)]
        fit_model.compile(optimizer=pf.optimizers.Adam(learning_rate=1e-3),
                          loss=pf.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=list(metrics))

        def fit_epoch(model=fit_model, x=x, y=y, batch=batch):
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)

        raw_epoch = pf_epoch(pf, raw_model, x, y, batch, bool(metrics))
        # the same work: from the same weights, one epoch of each ends on the same weights
        fit_epoch()
        raw_epoch()
        diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in
                   zip(fit_model.state_dict().values(), raw_model.state_dict().values()))
        if diff > 1e-5 or not quiet:
            print("   %s: after one epoch, fit's and the plain loop's weights differ by %.1e%s"
                  % (name, diff, "" if diff <= 1e-5 else " -- NOT the same work"))
        # fit against the plain loop alone, so that neither follows another
        # framework's spinning threads in the round-robin; then against the peers
        ratios, per_step = {}, {}
        for case, competitors in (
                (name, dict(pyframe=fit_epoch, pf_raw=raw_epoch)),
                (name + " peers", dict(
                    pyframe=fit_epoch,
                    torch=bench.setup("torch", lambda: torch_epoch(torch, weights, x, y, batch,
                                                                   bool(metrics))),
                    keras=bench.setup("keras", lambda: keras_fit(keras, weights, x, y, batch,
                                                                 metrics))))):
            rec = bench.case(case, **competitors)
            if rec is None:
                continue
            rec["steps_per_epoch"] = steps
            rec["us_per_step"] = {k: round(v / steps / 1e3, 2) for k, v in rec["median"].items()}
            ratios.update(rec["ratio_pyframe_over"])
            per_step.update({k if "pf_raw" in competitors or k != "pyframe" else "pyframe_peers": v
                             for k, v in rec["us_per_step"].items()})
            if not quiet:
                print("   %d steps/epoch; per step: %s" % (steps, ", ".join(
                    "%s %.0f us" % kv for kv in rec["us_per_step"].items())))
        summary[name] = {"ratio_pyframe_over": ratios, "us_per_step": per_step}
        for peer, goal in GOALS.items():
            if peer in ratios and not quiet:
                print("   fit / %s = %.2f (goal <= %.1f: %s)"
                      % (peer, ratios[peer], goal, "met" if ratios[peer] <= goal else "NOT met"))
    bench.records.append({"benchmark": "fit", "case": "summary", "goals": GOALS,
                          "cases": summary, "quick": bench.args.quick, "rounds": bench.rounds,
                          **bench.meta})
    if not quiet:
        print("   summary: " + json.dumps({k: v["ratio_pyframe_over"]
                                           for k, v in summary.items()}))


if __name__ == "__main__":
    main()
