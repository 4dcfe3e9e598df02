"""pf.metrics against scikit-learn (and NumPy float64 where scikit-learn has no
counterpart), fed in several uneven batches, with and without sample weights."""
import json

import numpy as np
import pytest
from sklearn import metrics as skm

import pyframe as pf

M = pf.metrics
N = 157
CUTS = (3, 4, 40, 41, 100)        # uneven batch boundaries, then the rest


def feed(metric, y_true, y_pred, sample_weight=None):
    """update_state over uneven batches; returns the result as float64 NumPy."""
    n = len(y_true)
    bounds = [0] + [c for c in CUTS if c < n] + [n]
    for a, b in zip(bounds, bounds[1:]):
        metric.update_state(y_true[a:b], y_pred[a:b],
                            None if sample_weight is None else sample_weight[a:b])
    return np.asarray(metric.result(), dtype=np.float64)


def batched_and_whole(make, y_true, y_pred, sample_weight=None):
    """The batched result, checked equal to one update_state on all the data."""
    got = feed(make(), y_true, y_pred, sample_weight)
    whole = make()
    whole.update_state(y_true, y_pred, sample_weight)
    np.testing.assert_allclose(got, np.asarray(whole.result(), np.float64), rtol=1e-6, atol=1e-7)
    return got


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def weights_or_none(rng, weighted, n=N):
    return rng.uniform(0.1, 2.0, n) if weighted else None


# ---------------------------------------------------------------- accuracy

@pytest.mark.parametrize("weighted", [False, True])
def test_accuracy_and_binary_accuracy(rng, weighted):
    w = weights_or_none(rng, weighted)
    y = rng.integers(0, 4, N)
    p = np.where(rng.random(N) < 0.6, y, rng.integers(0, 4, N))
    got = batched_and_whole(M.Accuracy, y, p, w)
    assert got == pytest.approx(skm.accuracy_score(y, p, sample_weight=w), abs=1e-6)

    yb = rng.integers(0, 2, (N, 1)).astype(np.float32)
    prob = rng.random((N, 1)).astype(np.float32)
    for t in (0.5, 0.3):
        got = batched_and_whole(lambda: M.BinaryAccuracy(threshold=t), yb, prob, w)
        want = skm.accuracy_score(yb.ravel(), prob.ravel() > t, sample_weight=w)
        assert got == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_categorical_and_sparse_accuracy(rng, weighted):
    w = weights_or_none(rng, weighted)
    c = 5
    y = rng.integers(0, c, N)
    scores = rng.random((N, c)).astype(np.float32)
    scores[np.arange(N), y] += rng.random(N) * 0.6          # better than chance
    want = skm.accuracy_score(y, scores.argmax(1), sample_weight=w)
    assert batched_and_whole(M.CategoricalAccuracy, np.eye(c)[y], scores, w) == \
        pytest.approx(want, abs=1e-6)
    for labels in (y, y[:, None], y.astype(np.float32)):
        assert batched_and_whole(M.SparseCategoricalAccuracy, labels, scores, w) == \
            pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_top_k_accuracy(rng, k, weighted):
    w = weights_or_none(rng, weighted)
    c = 7
    y = rng.integers(0, c, N)
    scores = rng.standard_normal((N, c))
    want = skm.top_k_accuracy_score(y, scores, k=k, labels=np.arange(c), sample_weight=w)
    got = batched_and_whole(lambda: M.SparseTopKCategoricalAccuracy(k=k), y, scores, w)
    assert got == pytest.approx(want, abs=1e-6)
    got = batched_and_whole(lambda: M.TopKCategoricalAccuracy(k=k), np.eye(c)[y], scores, w)
    assert got == pytest.approx(want, abs=1e-6)


# ---------------------------------------------------------- precision, recall

@pytest.mark.parametrize("weighted", [False, True])
def test_precision_recall_binary(rng, weighted):
    w = weights_or_none(rng, weighted)
    y = rng.integers(0, 2, N)
    p = np.clip(rng.random(N) * 0.7 + y * 0.3, 0, 1)
    for t in (None, 0.3, 0.75):
        thr = 0.5 if t is None else t
        make_p = (lambda: M.Precision()) if t is None else (lambda: M.Precision(thresholds=t))
        make_r = (lambda: M.Recall()) if t is None else (lambda: M.Recall(thresholds=t))
        assert batched_and_whole(make_p, y, p, w) == pytest.approx(
            skm.precision_score(y, p > thr, sample_weight=w, zero_division=0), abs=1e-6)
        assert batched_and_whole(make_r, y, p, w) == pytest.approx(
            skm.recall_score(y, p > thr, sample_weight=w, zero_division=0), abs=1e-6)
    # a list of thresholds gives one value per threshold
    ts = [0.2, 0.5, 0.9]
    got = batched_and_whole(lambda: M.Precision(thresholds=ts), y, p, w)
    want = [skm.precision_score(y, p > t, sample_weight=w, zero_division=0) for t in ts]
    np.testing.assert_allclose(got, want, atol=1e-6)
    got = batched_and_whole(lambda: M.Recall(thresholds=ts), y, p, w)
    want = [skm.recall_score(y, p > t, sample_weight=w, zero_division=0) for t in ts]
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_precision_recall_multiclass_class_id_top_k(rng, weighted):
    w = weights_or_none(rng, weighted)
    c = 4
    y = np.eye(c)[rng.integers(0, c, N)]
    s = rng.random((N, c))
    wf = None if w is None else np.repeat(w, c)
    # flattened: every entry is a binary decision
    assert batched_and_whole(M.Precision, y, s, w) == pytest.approx(
        skm.precision_score(y.ravel(), s.ravel() > 0.5, sample_weight=wf), abs=1e-6)
    # class_id picks one column
    assert batched_and_whole(lambda: M.Recall(class_id=2), y, s, w) == pytest.approx(
        skm.recall_score(y[:, 2], s[:, 2] > 0.5, sample_weight=w), abs=1e-6)
    # top_k: only each row's k best can be positive
    in_top2 = np.zeros_like(s, bool)
    np.put_along_axis(in_top2, np.argsort(-s, axis=1)[:, :2], True, axis=1)
    assert batched_and_whole(lambda: M.Precision(top_k=2), y, s, w) == pytest.approx(
        skm.precision_score(y.ravel(), in_top2.ravel(), sample_weight=wf), abs=1e-6)
    pred = in_top2[:, 1] & (s[:, 1] > 0.4)
    assert batched_and_whole(lambda: M.Recall(top_k=2, class_id=1, thresholds=0.4), y, s, w) \
        == pytest.approx(skm.recall_score(y[:, 1], pred, sample_weight=w), abs=1e-6)


# ----------------------------------------------------------------------- AUC

def grid(t):
    return np.array([-1e-7] + [i / (t - 1) for i in range(1, t - 1)] + [1 + 1e-7])


def roc_bound(y, p, t, w=None):
    """Half the weighted fraction of (positive, negative) pairs whose scores
    share a bucket of the threshold grid: the most the gridded ROC area can
    differ from the exact one."""
    w = np.ones(len(y)) if w is None else w
    b = np.searchsorted(grid(t), p, side="left")
    pos = np.bincount(b, weights=w * (y == 1), minlength=t + 1)
    neg = np.bincount(b, weights=w * (y == 0), minlength=t + 1)
    return 0.5 * (pos * neg).sum() / (pos.sum() * neg.sum())


@pytest.mark.parametrize("t", [2000, 200])
@pytest.mark.parametrize("weighted", [False, True])
def test_auc_roc_continuous_within_grid_bound(rng, t, weighted):
    n = 600
    w = weights_or_none(rng, weighted, n)
    y = rng.integers(0, 2, n)
    p = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
    got = feed(M.AUC(num_thresholds=t), y, p, w)
    bound = roc_bound(y, p, t, w)
    assert bound < 2.0 / t                                  # the check is meaningful
    assert abs(got - skm.roc_auc_score(y, p, sample_weight=w)) <= bound + 1e-6


def midpoints(rng, y, t):
    """Scores on the midpoints of the grid's buckets, correlated with y: the
    grid then sees every distinct score as its own operating point."""
    j = np.clip(rng.normal((t - 1) * (0.4 + 0.2 * y), (t - 1) * 0.2).astype(int), 0, t - 2)
    return (j + 0.5) / (t - 1)


@pytest.mark.parametrize("weighted", [False, True])
def test_auc_roc_exact_on_bucket_midpoints(rng, weighted):
    n, t = 500, 50
    w = weights_or_none(rng, weighted, n)
    y = rng.integers(0, 2, n)
    p = midpoints(rng, y, t)
    got = feed(M.AUC(num_thresholds=t, dtype="float64"), y, p, w)
    assert got == pytest.approx(skm.roc_auc_score(y, p, sample_weight=w), abs=1e-12)


def confusion(y, p, thr, w=None):
    """tp, fp, tn, fn at each threshold by direct comparison (NumPy float64)."""
    w = np.ones(len(y)) if w is None else w
    above = p[:, None] > thr[None, :]
    tp = (above * (w * y)[:, None]).sum(0)
    fp = (above * (w * (1 - y))[:, None]).sum(0)
    return tp, fp, (w * (1 - y)).sum() - fp, (w * y).sum() - tp


_trapezoid = getattr(np, "trapezoid", None) or np.trapz       # NumPy 2 renamed it


def pr_area_by_integration(tp, fp, fn):
    """The Davis-Goadrich area by integrating precision over recall numerically
    along each segment where tp grows linearly with predicted positives."""
    pp = tp + fp
    total = tp[0] + fn[0]
    area = 0.0
    for j in range(len(tp) - 1):
        a, b = pp[j + 1], pp[j]
        if b <= a:
            continue
        slope = (tp[j] - tp[j + 1]) / (b - a)
        x = np.linspace(a, b, 4001)
        tpx = tp[j + 1] + slope * (x - a)
        prec = np.divide(tpx, x, out=np.full_like(x, slope), where=x > 0)
        area += _trapezoid(prec, tpx / total)
    return area


@pytest.mark.parametrize("weighted", [False, True])
def test_auc_pr_interpolation_against_numeric_integral(rng, weighted):
    n, t = 400, 60
    w = weights_or_none(rng, weighted, n)
    y = rng.integers(0, 2, n)
    p = np.clip(rng.normal(0.4 + 0.2 * y, 0.25), 0, 1)
    got = feed(M.AUC(num_thresholds=t, curve="PR", dtype="float64"), y, p, w)
    tp, fp, tn, fn = confusion(y, p, grid(t), w)
    assert got == pytest.approx(pr_area_by_integration(tp, fp, fn), abs=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_auc_pr_against_average_precision(rng, weighted):
    # On bucket midpoints scikit-learn's step-wise average precision and the
    # interpolated area use the same operating points; on each segment the
    # interpolated precision lies between its two ends, so the two areas differ
    # by at most sum |precision change| * recall gain.
    n, t = 800, 200
    w = weights_or_none(rng, weighted, n)
    y = rng.integers(0, 2, n)
    p = midpoints(rng, y, t)
    got = feed(M.AUC(curve="PR"), y, p, w)
    tp, fp, _, fn = confusion(y, p, grid(t), w)
    prec = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=tp + fp > 0)
    start = np.where(tp[1:] + fp[1:] > 0, prec[1:], prec[:-1])   # from the origin: flat
    bound = (np.abs(prec[:-1] - start) * (tp[:-1] - tp[1:])).sum() / (tp[0] + fn[0])
    assert bound < 0.02
    want = skm.average_precision_score(y, p, sample_weight=w)
    assert abs(got - want) <= bound + 1e-6
    # and scikit-learn's trapezoid over its PR curve is within the same reach
    pr, rc, _ = skm.precision_recall_curve(y, p, sample_weight=w)
    assert abs(got - skm.auc(rc, pr)) <= 2 * bound + 1e-6


@pytest.mark.parametrize("curve", ["ROC", "PR"])
@pytest.mark.parametrize("method", ["minoring", "majoring", "interpolation"])
def test_auc_riemann_sums_against_numpy(rng, curve, method):
    n, t = 300, 40
    y = rng.integers(0, 2, n)
    p = np.clip(rng.normal(0.4 + 0.2 * y, 0.25), 0, 1)
    w = rng.uniform(0.1, 2.0, n)
    got = feed(M.AUC(num_thresholds=t, curve=curve, summation_method=method, dtype="float64"),
               y, p, w)
    tp, fp, tn, fn = confusion(y, p, grid(t), w)
    if curve == "PR" and method == "interpolation":
        want = pr_area_by_integration(tp, fp, fn)
    else:
        def ratio(a, b):
            return np.divide(a, b, out=np.zeros_like(a), where=b > 0)
        x, h = ((ratio(fp, fp + tn), ratio(tp, tp + fn)) if curve == "ROC"
                else (ratio(tp, tp + fn), ratio(tp, tp + fp)))
        pick = {"minoring": np.minimum, "majoring": np.maximum,
                "interpolation": lambda a, b: (a + b) / 2}[method]
        want = ((x[:-1] - x[1:]) * pick(h[:-1], h[1:])).sum()
    assert got == pytest.approx(want, abs=1e-6)


def test_auc_multi_label_flattened_logits_and_label_weights(rng):
    n, c, t = 400, 3, 50
    y = rng.integers(0, 2, (n, c))
    p = np.stack([midpoints(rng, y[:, i], t) for i in range(c)], axis=1)
    w = rng.uniform(0.1, 2.0, n)
    got = feed(M.AUC(num_thresholds=t, multi_label=True, dtype="float64"), y, p, w)
    assert got == pytest.approx(skm.roc_auc_score(y, p, average="macro", sample_weight=w),
                                abs=1e-12)
    lw = [0.2, 1.0, 3.0]
    got = feed(M.AUC(num_thresholds=t, multi_label=True, label_weights=lw, dtype="float64"),
               y, p, w)
    per = skm.roc_auc_score(y, p, average=None, sample_weight=w)
    assert got == pytest.approx(np.average(per, weights=lw), abs=1e-12)
    # default: one binary problem over all entries; label_weights weight columns
    got = feed(M.AUC(num_thresholds=t, dtype="float64"), y, p, w)
    assert got == pytest.approx(skm.roc_auc_score(y.ravel(), p.ravel(),
                                                  sample_weight=np.repeat(w, c)), abs=1e-12)
    got = feed(M.AUC(num_thresholds=t, label_weights=lw, dtype="float64"), y, p, w)
    assert got == pytest.approx(skm.roc_auc_score(
        y.ravel(), p.ravel(), sample_weight=(w[:, None] * np.array(lw)).ravel()), abs=1e-12)
    # from_logits applies the sigmoid first
    logits = np.log(p / (1 - p))
    got = feed(M.AUC(num_thresholds=t, multi_label=True, from_logits=True, dtype="float64"),
               y, logits, w)
    assert got == pytest.approx(skm.roc_auc_score(y, p, average="macro", sample_weight=w),
                                abs=1e-9)


def test_auc_predictions_on_thresholds_count_as_negative(rng):
    # a prediction equal to a threshold is not above it; 0 is above the lowest
    # threshold (just below 0) and 1 is not above the highest (just above 1)
    n, t = 300, 11
    y = rng.integers(0, 2, n)
    p = grid(t)[rng.integers(1, t - 1, n)]
    p[:20], p[20:40] = 0.0, 1.0
    m = M.AUC(num_thresholds=t, dtype="float64")
    feed(m, y, p)
    for got, want in zip((m.true_positives, m.false_positives, m.true_negatives,
                          m.false_negatives), confusion(y, p, grid(t))):
        np.testing.assert_array_equal(np.asarray(got), want)


def test_auc_explicit_thresholds_and_soft_labels(rng):
    thr = [0.25, 0.5, 0.75]
    m = M.AUC(thresholds=thr, dtype="float64")
    assert m.num_thresholds == 5 and m.thresholds[1:4] == thr
    n = 200
    soft = rng.random(n)
    p = rng.random(n)
    m.update_state(soft, p)
    # a soft label y counts y as positive and 1 - y as negative: the same as two
    # hard samples weighted y and 1 - y
    hard = M.AUC(thresholds=thr, dtype="float64")
    hard.update_state(np.r_[np.ones(n), np.zeros(n)], np.r_[p, p], np.r_[soft, 1 - soft])
    assert float(m.result()) == pytest.approx(float(hard.result()), abs=1e-12)
    tp, fp, tn, fn = confusion(np.r_[np.ones(n), np.zeros(n)], np.r_[p, p],
                               np.array([-1e-7] + thr + [1 + 1e-7]), np.r_[soft, 1 - soft])
    np.testing.assert_allclose(np.asarray(m.true_positives), tp, atol=1e-9)
    np.testing.assert_allclose(np.asarray(m.false_negatives), fn, atol=1e-9)


# ----------------------------------------------------------------- F-scores

@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
@pytest.mark.parametrize("threshold", [None, 0.4])
@pytest.mark.parametrize("weighted", [False, True])
def test_f1_and_fbeta(rng, average, threshold, weighted):
    w = weights_or_none(rng, weighted)
    c = 4
    if threshold is None:                                   # single-label, argmax
        y = np.eye(c)[rng.integers(0, c, N)]
        s = rng.random((N, c)) + 0.5 * y
        pred = np.eye(c)[s.argmax(1)]
    else:                                                   # multi-label, threshold
        y = (rng.random((N, c)) < 0.4).astype(float)
        s = np.clip(rng.random((N, c)) * 0.7 + 0.3 * y, 0, 1)
        pred = (s > threshold).astype(float)
    got = batched_and_whole(lambda: M.F1Score(average=average, threshold=threshold), y, s, w)
    want = skm.f1_score(y, pred, average=average, sample_weight=w, zero_division=0)
    np.testing.assert_allclose(got, want, atol=1e-6)
    got = batched_and_whole(lambda: M.FBetaScore(average=average, beta=2.0, threshold=threshold),
                            y, s, w)
    want = skm.fbeta_score(y, pred, beta=2.0, average=average, sample_weight=w, zero_division=0)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_f1_class_without_support_or_predictions_scores_zero():
    y = np.array([[1, 0, 0], [0, 1, 0]], float)
    s = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]])
    m = M.F1Score()
    np.testing.assert_allclose(np.asarray(m(y, s)), [1.0, 1.0, 0.0])
    assert float(M.F1Score(average="weighted")(y, s)) == pytest.approx(1.0)


# --------------------------------------------------------------- regression

@pytest.mark.parametrize("shape", [(N,), (N, 1), (N, 3)])
@pytest.mark.parametrize("weighted", [False, True])
def test_regression_errors(rng, shape, weighted):
    w = weights_or_none(rng, weighted)
    y = rng.standard_normal(shape)
    p = y + rng.standard_normal(shape) * 0.5
    mse = skm.mean_squared_error(y, p, sample_weight=w)
    assert batched_and_whole(M.MeanSquaredError, y, p, w) == pytest.approx(mse, rel=1e-5)
    assert batched_and_whole(M.RootMeanSquaredError, y, p, w) == \
        pytest.approx(np.sqrt(mse), rel=1e-5)
    assert batched_and_whole(M.MeanAbsoluteError, y, p, w) == \
        pytest.approx(skm.mean_absolute_error(y, p, sample_weight=w), rel=1e-5)


@pytest.mark.parametrize("aggregation,multioutput", [
    ("uniform_average", "uniform_average"), ("variance_weighted", "variance_weighted"),
    (None, "raw_values")])
@pytest.mark.parametrize("weighted", [False, True])
def test_r2_score(rng, aggregation, multioutput, weighted):
    w = weights_or_none(rng, weighted)
    # outputs of different scales and an offset far from 0, where a float32
    # sum-of-squares formula would cancel badly
    y = rng.standard_normal((N, 3)) * [1.0, 10.0, 0.1] + 1000.0
    p = y + rng.standard_normal((N, 3)) * [0.5, 4.0, 0.08]
    if not weighted:                       # float32 inputs: the sums must still be float64
        y, p = (a.astype(np.float32) for a in (y, p))
    got = batched_and_whole(lambda: M.R2Score(class_aggregation=aggregation), y, p, w)
    want = skm.r2_score(y.astype(np.float64), p.astype(np.float64), sample_weight=w,
                        multioutput=multioutput)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # one output
    got = batched_and_whole(M.R2Score, y[:, 1], p[:, 1], w)
    assert got == pytest.approx(skm.r2_score(y[:, 1].astype(np.float64),
                                             p[:, 1].astype(np.float64), sample_weight=w),
                                abs=1e-5)


def test_r2_adjusted_and_constant_targets(rng):
    y = rng.standard_normal((N, 2))
    p = y + rng.standard_normal((N, 2)) * 0.3
    r2 = skm.r2_score(y, p)
    got = feed(M.R2Score(num_regressors=4), y, p)
    assert got == pytest.approx(1 - (1 - r2) * (N - 1) / (N - 4 - 1), abs=1e-5)
    # too few samples for the adjustment: the plain score
    assert float(M.R2Score(num_regressors=10)(y[:5], p[:5])) == \
        pytest.approx(skm.r2_score(y[:5], p[:5]), abs=1e-5)
    # a constant target scores 1 when hit exactly and 0 otherwise (scikit-learn's rule)
    yc = np.c_[np.full(N, 2.0), y[:, 0]]
    for pc in (np.c_[np.full(N, 2.0), p[:, 0]], np.c_[np.full(N, 2.5), p[:, 0]]):
        np.testing.assert_allclose(feed(M.R2Score(class_aggregation=None), yc, pc),
                                   skm.r2_score(yc, pc, multioutput="raw_values"), atol=1e-5)
        assert feed(M.R2Score(class_aggregation="variance_weighted"), yc, pc) == \
            pytest.approx(skm.r2_score(yc, pc, multioutput="variance_weighted"), abs=1e-5)


# ------------------------------------------------------- Mean, Sum, wrapper

def test_mean_and_sum(rng):
    v = rng.standard_normal(N)
    w = rng.uniform(0.1, 2.0, N)
    for weights, want in ((None, v.mean()), (w, np.average(v, weights=w))):
        m = M.Mean()
        s = M.Sum()
        for a, b in ((0, 5), (5, 6), (6, N)):
            m.update_state(v[a:b], None if weights is None else weights[a:b])
            s.update_state(v[a:b], None if weights is None else weights[a:b])
        assert float(m.result()) == pytest.approx(want, rel=1e-6)
        assert float(s.result()) == pytest.approx((v * (1 if weights is None else weights)).sum(),
                                                  rel=1e-6)
    # each row counts once; per-element weights weigh elements
    v2 = rng.standard_normal((N, 4))
    w2 = rng.uniform(0.1, 2.0, (N, 4))
    assert float(M.Mean()(v2)) == pytest.approx(v2.mean(), rel=1e-6)
    assert float(M.Mean()(v2, w)) == pytest.approx(np.average(v2.mean(1), weights=w), rel=1e-6)
    assert float(M.Mean()(v2, w[:, None])) == \
        pytest.approx(np.average(v2.mean(1), weights=w), rel=1e-6)
    assert float(M.Mean()(v2, w2)) == pytest.approx(np.average(v2, weights=w2), rel=1e-6)
    # a scalar weight applies to every sample; scalars count as one sample
    assert float(M.Mean()(v, 3.0)) == pytest.approx(v.mean(), rel=1e-6)
    m = M.Mean()
    m.update_state(2.0)
    m.update_state(pf.tensor(4.0), sample_weight=3.0)
    assert float(m.result()) == pytest.approx((2.0 + 12.0) / 4.0)
    # nothing seen yet (or only empty batches): 0
    assert float(M.Mean().result()) == 0.0
    for make in (M.Mean, M.MeanSquaredError, M.AUC, M.Precision, M.R2Score,
                 M.SparseCategoricalAccuracy):
        m = make()
        if make is M.Mean:
            m.update_state(np.zeros(0))
        elif make is M.SparseCategoricalAccuracy:
            m.update_state(np.zeros(0, np.int64), np.zeros((0, 3)))
        else:
            m.update_state(np.zeros(0), np.zeros(0))
        assert float(m.result()) == 0.0, make.__name__


def test_mean_metric_wrapper_and_get_callable(rng):
    def abs_err(y_true, y_pred):
        return pf.abs(y_true - y_pred)
    y, p = rng.standard_normal(N), rng.standard_normal(N)
    w = rng.uniform(0.1, 2.0, N)
    m = M.get(abs_err)
    assert isinstance(m, M.MeanMetricWrapper) and m.name == "abs_err"
    assert feed(m, y, p, w) == pytest.approx(np.average(np.abs(y - p), weights=w), rel=1e-6)
    # a function returning NumPy is accepted too
    m = M.MeanMetricWrapper(lambda a, b: np.asarray(a) * 0 + 1, name="ones")
    assert feed(m, y, p) == pytest.approx(1.0)
    # keyword arguments reach the function and the config
    m = M.MeanMetricWrapper(M.binary_accuracy, threshold=0.2)
    yb, pb = rng.integers(0, 2, N), rng.random(N)
    assert feed(m, yb, pb) == pytest.approx(skm.accuracy_score(yb, pb > 0.2), abs=1e-6)
    assert m.get_config()["threshold"] == 0.2 and m.get_config()["fn"] == "binary_accuracy"


def test_functional_forms_give_per_sample_values(rng):
    y = rng.integers(0, 3, 10)
    s = rng.random((10, 3))
    np.testing.assert_array_equal(np.asarray(M.sparse_categorical_accuracy(y, s)),
                                  s.argmax(1) == y)
    np.testing.assert_array_equal(np.asarray(M.categorical_accuracy(np.eye(3)[y], s)),
                                  s.argmax(1) == y)
    np.testing.assert_allclose(np.asarray(M.mean_squared_error(s, s * 2)), (s ** 2).mean(1),
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(M.mean_absolute_error(s, s * 2)), s.mean(1), rtol=1e-6)
    rank = (s > s[np.arange(10), y][:, None]).sum(1)
    np.testing.assert_array_equal(np.asarray(M.sparse_top_k_categorical_accuracy(y, s, k=2)),
                                  rank < 2)
    np.testing.assert_array_equal(np.asarray(M.top_k_categorical_accuracy(np.eye(3)[y], s, k=1)),
                                  rank < 1)


# ------------------------------------------------------------------- state

def test_reset_state_keeps_tensors_and_forgets_data(rng):
    y, p = rng.integers(0, 2, N), rng.random(N)
    onehot, scores = np.eye(2)[y], np.c_[1 - p, p]
    cases = [(M.AUC, y, p), (M.Precision, y, p), (M.Recall, y, p), (M.BinaryAccuracy, y, p),
             (M.RootMeanSquaredError, y, p), (lambda: M.F1Score(threshold=0.5), onehot, scores),
             (M.R2Score, y, p), (lambda: M.AUC(multi_label=True), onehot, scores)]
    for make, yy, pp in cases:
        m = make()
        m.update_state(np.ones_like(yy[:50]), pp[:50])       # data to be forgotten
        before = m.variables
        assert before and all(v.dtype == pf.float64 for v in before)
        m.reset_state()
        assert all(a is b for a, b in zip(before, m.variables))
        assert all(not np.asarray(v).any() for v in m.variables)
        fresh = make()
        m.update_state(yy, pp)
        fresh.update_state(yy, pp)
        np.testing.assert_allclose(np.asarray(m.result()), np.asarray(fresh.result()))


def test_state_is_float64_and_counts_exactly():
    # 2**24 + 1 is the first integer float32 cannot hold
    s = M.Sum(dtype="float64")
    s.update_state(2.0 ** 24)
    s.update_state(1.0)
    assert float(s.result()) == 2.0 ** 24 + 1
    # float16 batches are summed in float32: no overflow past 65504
    x = pf.ones(100_000, dtype=pf.float16)
    assert float(M.Sum()(x)) == 100_000
    m = M.Mean()
    assert float(m(x)) == 1.0 and float(m.count) == 100_000


def test_result_dtype_and_float64_vs_float32_inputs(rng):
    y = rng.standard_normal((N, 2))
    p = y + rng.standard_normal((N, 2)) * 0.3
    yb, pb = rng.integers(0, 2, N), rng.random(N)
    for make, a, b in ((M.MeanSquaredError, y, p), (M.R2Score, y, p), (M.AUC, yb, pb),
                       (M.BinaryAccuracy, yb, pb), (M.Precision, yb, pb)):
        r32 = make()(a.astype(np.float32), b.astype(np.float32))
        r64 = make()(a, b)
        assert r32.dtype == pf.float32 and r64.dtype == pf.float32
        assert float(r32) == pytest.approx(float(r64), rel=1e-5, abs=1e-6)
        exact = make(dtype="float64")(a, b)
        assert exact.dtype == pf.float64
    assert float(M.MeanSquaredError(dtype=pf.float64)(y, p)) == \
        pytest.approx(skm.mean_squared_error(y, p), rel=1e-13)
    assert float(M.R2Score(dtype="float64")(y, p)) == \
        pytest.approx(skm.r2_score(y, p), rel=1e-12)


def test_inputs_lists_pandas_tensors_without_autograd(rng):
    import pandas as pd
    y = rng.integers(0, 3, 20)
    s = rng.random((20, 3))
    want = skm.accuracy_score(y, s.argmax(1))
    df = pd.DataFrame(s, columns=["a", "b", "c"])
    for labels, scores in ((y.tolist(), s.tolist()), (pd.Series(y), df),
                           (pf.tensor(y), pf.tensor(s.astype(np.float32)))):
        assert float(M.SparseCategoricalAccuracy()(labels, scores)) == pytest.approx(want)
    leaf = pf.tensor(s.astype(np.float32), requires_grad=True)
    scores = leaf * 2.0                                     # carries history
    for m in (M.SparseCategoricalAccuracy(), M.AUC(multi_label=True), M.MeanSquaredError(),
              M.F1Score(), M.R2Score()):
        target = y if isinstance(m, M.SparseCategoricalAccuracy) else np.eye(3)[y]
        r = m(target, scores)
        assert not r.requires_grad and r.grad_fn is None
        assert all(not v.requires_grad and v.grad_fn is None for v in m.variables)
    assert leaf.grad is None


# ------------------------------------------------- lookup and serialisation

def test_get_names_aliases_and_objects():
    expect = {"accuracy": M.Accuracy, "acc": M.Accuracy, "binary_accuracy": M.BinaryAccuracy,
              "categorical_accuracy": M.CategoricalAccuracy,
              "sparse_categorical_accuracy": M.SparseCategoricalAccuracy,
              "top_k_categorical_accuracy": M.TopKCategoricalAccuracy,
              "sparse_top_k_categorical_accuracy": M.SparseTopKCategoricalAccuracy,
              "precision": M.Precision, "recall": M.Recall, "auc": M.AUC, "AUC": M.AUC,
              "f1_score": M.F1Score, "fbeta_score": M.FBetaScore,
              "mse": M.MeanSquaredError, "mean_squared_error": M.MeanSquaredError,
              "mae": M.MeanAbsoluteError, "mean_absolute_error": M.MeanAbsoluteError,
              "rmse": M.RootMeanSquaredError, "root_mean_squared_error": M.RootMeanSquaredError,
              "r2_score": M.R2Score, "mean": M.Mean, "sum": M.Sum, "BinaryAccuracy":
              M.BinaryAccuracy}
    for name, cls in expect.items():
        m = M.get(name)
        assert type(m) is cls
        assert m.name == cls._default_name
    assert M.get("mse").name == "mean_squared_error"
    m = M.AUC(curve="PR")
    assert M.get(m) is m
    assert type(M.get(M.Recall)) is M.Recall
    assert M.get(None) is None
    assert type(M.get(M.serialize(M.F1Score(average="macro")))) is M.F1Score
    with pytest.raises(ValueError, match=r"unknown metric 'accuracyy'; valid names: .*acc, "
                                         r"accuracy, auc, .*mse.*rmse.*sparse_categorical"):
        M.get("accuracyy")
    with pytest.raises(TypeError, match="int is not a metric class"):
        M.get(int)
    with pytest.raises(TypeError, match="expected a metric name.*got float"):
        M.get(1.5)


CONFIGURED = [
    lambda: M.Mean(name="m"), lambda: M.Sum(dtype="float64"), M.Accuracy,
    lambda: M.BinaryAccuracy(threshold=0.3, name="bin"), M.CategoricalAccuracy,
    M.SparseCategoricalAccuracy, lambda: M.TopKCategoricalAccuracy(k=2),
    lambda: M.SparseTopKCategoricalAccuracy(k=2),
    lambda: M.Precision(thresholds=[0.2, 0.6], class_id=1),
    lambda: M.Recall(top_k=2), lambda: M.AUC(num_thresholds=33, curve="PR",
                                             summation_method="majoring"),
    lambda: M.AUC(thresholds=[0.1, 0.5], multi_label=True, num_labels=3,
                  label_weights=[1, 2, 3], from_logits=True),
    lambda: M.F1Score(average="weighted", threshold=0.4),
    lambda: M.FBetaScore(average="micro", beta=0.5), M.MeanSquaredError,
    M.RootMeanSquaredError, M.MeanAbsoluteError,
    lambda: M.R2Score(class_aggregation=None, num_regressors=1),
    lambda: M.MeanMetricWrapper(M.mean_absolute_error, name="mae_fn"),
]


@pytest.mark.parametrize("make", CONFIGURED)
def test_config_round_trip(rng, make):
    m = make()
    config = json.loads(json.dumps(m.get_config()))
    clone = type(m).from_config(config)
    assert clone.get_config() == m.get_config()
    again = M.deserialize(json.loads(json.dumps(M.serialize(m))))
    assert type(again) is type(m) and again.get_config() == m.get_config()
    # both compute the same thing on the same data
    y = np.eye(3)[rng.integers(0, 3, 30)]
    s = rng.random((30, 3))
    if isinstance(m, (M.Mean, M.Sum)) and not isinstance(m, (M.MeanMetricWrapper,
                                                              M.RootMeanSquaredError)):
        args = (s,)
    elif isinstance(m, (M.SparseCategoricalAccuracy, M.SparseTopKCategoricalAccuracy)):
        args = (y.argmax(1), s)
    else:
        args = (y, s)
    np.testing.assert_allclose(np.asarray(m(*args)), np.asarray(again(*args)))


def test_custom_function_needs_custom_objects():
    def halved(y_true, y_pred):
        return (y_true - y_pred) * 0.5
    config = M.serialize(M.MeanMetricWrapper(halved))
    with pytest.raises(ValueError, match="unknown function 'halved'.*custom_objects"):
        M.deserialize(config)
    m = M.deserialize(config, custom_objects={"halved": halved})
    assert m.fn is halved and float(m([2.0, 4.0], [0.0, 0.0])) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="unknown metric class 'Nope'.*AUC"):
        M.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(TypeError, match="from_config: the config does not fit"):
        M.AUC.from_config({"bogus": 1})


# --------------------------------------------------------------- bad input

def test_sparse_shapes_and_label_range_messages():
    m = M.SparseCategoricalAccuracy()
    with pytest.raises(ValueError, match=r"SparseCategoricalAccuracy: y_pred of shape \(4,\) has "
                                         r"no class axis; expected scores of shape \(N, C\).*"
                                         r"y_true has shape \(4,\)"):
        m.update_state([0, 1, 2, 1], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match=r"SparseCategoricalAccuracy: label 3 is out of range "
                                         r"for y_pred with 3 classes.*\[0, 3\)"):
        m.update_state([0, 3], np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"SparseTopKCategoricalAccuracy 'top2': label -1 is out "
                                         r"of range.*\[0, 3\)"):
        M.SparseTopKCategoricalAccuracy(k=2, name="top2").update_state([-1, 0], np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"labels y_true of shape \(2, 3\) do not match y_pred of "
                                         r"shape \(2, 3\).*looks one-hot"):
        m.update_state(np.eye(3)[:2], np.ones((2, 3)))
    assert float(m.count) == 0                              # failed batches leave no trace


def test_shape_and_weight_messages():
    with pytest.raises(ValueError, match=r"MeanSquaredError: y_true of shape \(4, 2\) does not "
                                         r"match y_pred of shape \(4, 3\)"):
        M.MeanSquaredError().update_state(np.ones((4, 2)), np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"CategoricalAccuracy: one-hot y_true of shape \(4, 2\) "
                                         r"does not match y_pred of shape \(4, 3\).*Sparse"):
        M.CategoricalAccuracy().update_state(np.ones((4, 2)), np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"BinaryAccuracy: sample_weight of shape \(3,\) does not "
                                         r"fit a batch of shape \(4,\); expected one weight per "
                                         r"sample, shape \(4,\)"):
        M.BinaryAccuracy().update_state(np.ones(4), np.ones(4), sample_weight=np.ones(3))
    with pytest.raises(ValueError, match=r"AUC: sample_weight of shape \(5,\) does not fit"):
        M.AUC().update_state(np.ones(4), np.ones(4), sample_weight=np.ones(5))
    with pytest.raises(TypeError, match=r"Accuracy: y_true could not be made a tensor"):
        M.Accuracy().update_state(["a", "b"], [1, 2])
    with pytest.raises(TypeError, match=r"Mean: values is None"):
        M.Mean().update_state(None)
    with pytest.raises(ValueError, match=r"F1Score: expected one-hot or multi-label y_true.*"
                                         r"got y_true \(4,\) and y_pred \(4, 3\).*one_hot"):
        M.F1Score().update_state([0, 1, 2, 1], np.ones((4, 3)))
    f1 = M.F1Score()
    f1.update_state(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="F1Score: y_pred has 4 classes but earlier batches had 3"):
        f1.update_state(np.eye(4), np.eye(4))
    auc = M.AUC(multi_label=True)
    auc.update_state(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="AUC: y_pred has 2 labels but the metric was built for 3"):
        auc.update_state(np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match=r"AUC: multi_label=True needs y_pred of shape"):
        M.AUC(multi_label=True).update_state([0, 1], [0.2, 0.8])
    with pytest.raises(ValueError, match=r"Precision: class_id=5 is out of range for y_pred with "
                                         r"3 classes"):
        M.Precision(class_id=5).update_state(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="R2Score: y_true has 3 output columns but earlier"):
        r2 = M.R2Score()
        r2.update_state(np.ones((2, 2)), np.ones((2, 2)))
        r2.update_state(np.ones((2, 3)), np.ones((2, 3)))


@pytest.mark.parametrize("make,exc,pattern", [
    (lambda: M.BinaryAccuracy(threshold=2), ValueError, r"BinaryAccuracy: threshold must be a "
                                                        r"number in \[0, 1\]; got 2"),
    (lambda: M.TopKCategoricalAccuracy(k=0), ValueError, r"k must be a positive integer; got 0"),
    (lambda: M.Precision(thresholds=[0.5, 1.5]), ValueError, r"Precision: every threshold must "
                                                             r"be a number in \[0, 1\]; got 1.5"),
    (lambda: M.Recall(thresholds=[]), ValueError, r"Recall: thresholds is empty"),
    (lambda: M.Recall(class_id=-1), ValueError, r"Recall: class_id must be a non-negative"),
    (lambda: M.AUC(curve="XY"), ValueError, r"AUC: curve must be 'ROC' or 'PR'; got 'XY'"),
    (lambda: M.AUC(num_thresholds=1), ValueError, r"AUC: num_thresholds must be an integer > 1"),
    (lambda: M.AUC(summation_method="simpson"), ValueError, r"summation_method must be"),
    (lambda: M.AUC(label_weights=[[1.0]]), ValueError, r"label_weights must be a 1-D list"),
    (lambda: M.F1Score(average="samples"), ValueError, r"F1Score: average must be None, "
                                                       r"'micro', 'macro' or 'weighted'"),
    (lambda: M.F1Score(threshold=0), ValueError, r"F1Score: threshold must be in \(0, 1\]"),
    (lambda: M.FBetaScore(beta=0), ValueError, r"FBetaScore: beta must be a positive number"),
    (lambda: M.R2Score(class_aggregation="median"), ValueError, r"R2Score: class_aggregation"),
    (lambda: M.R2Score(num_regressors=-1), ValueError, r"num_regressors must be a non-negative"),
    (lambda: M.Mean(dtype="int32"), TypeError, r"Mean: dtype must be a floating dtype"),
    (lambda: M.Mean(name=3), TypeError, r"Mean: name must be a string; got int"),
    (lambda: M.MeanMetricWrapper(3), TypeError, r"fn must be a callable"),
])
def test_constructor_validation(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()
