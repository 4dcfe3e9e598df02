/*
 * nn_losses_cuda.c -- the losses on a CUDA device, composed of ops that
 * already run there (elementwise kernels, the reductions), so their values
 * come from kernels checked elsewhere against the cpu.
 *
 * The cpu bindings (nn_ops.c) parse and check the arguments, then call here
 * when the input is on a device.  Each loss is computed in the compute
 * dtype (float64 for float64, else float32) and cast to the result dtype,
 * as on the cpu; the rules (backward_nnops.c) are written with elementwise
 * ops already, so the gradients run on the device unchanged.  The autograd
 * wrapper calls the bindings with grad disabled, so the ops below record
 * nothing; the node is the loss's own.
 */
#include "nn_ops.h"
#include "backward.h"
#include "cuda_backend.h"

#include <string.h>

#pragma GCC diagnostic ignored "-Wfloat-equal"

#define E1(op, a) A_ew1(A, PF_OP_##op, (a))
#define E2(op, a, b) A_ew2(A, PF_OP_##op, (a), (b))
#define F(v) A_f(A, (v))
#define MUL(a, b) E2(MUL, a, b)
#define ADD(a, b) E2(ADD, a, b)
#define SUB(a, b) E2(SUB, a, b)
#define DIV(a, b) E2(DIV, a, b)

/* t in dtype dt (the same tensor when it already is), kept in the arena */
static PyObject *as_dtype(pf_arena *A, PfTensor *t, pf_dtype dt, const char *op)
{
    if (t == NULL) {
        return NULL;
    }
    if (t->dtype == dt) {
        return pf_keep(A, Py_NewRef((PyObject *)t));
    }
    return pf_keep(A, (PyObject *)pf_tensor_copy_as(t, dt, op));
}

/* every tensor on x's device: an argument converted from a list lands on the cpu */
static int same_device(const char *op, PfTensor *x, PfTensor *o, const char *what)
{
    if (o == NULL || pf_device_eq(o->storage->device, x->storage->device)) {
        return 0;
    }
    char d1[32], d2[32];
    PyErr_Format(PyExc_RuntimeError, "%s: input is on %s but %s is on %s; move them to one "
                 "device with .to(...)", op, pf_device_str(x->storage->device, d1, sizeof(d1)),
                 what, pf_device_str(o->storage->device, d2, sizeof(d2)));
    return -1;
}

/* the per-element losses l reduced (none, mean, sum) and cast to res */
static PyObject *reduce_loss(pf_arena *A, PyObject *l, pf_nn_red red, pf_dtype res,
                             const char *op)
{
    if (l == NULL) {
        return NULL;
    }
    if (red != PF_RED_NONE) {
        l = pf_keep(A, pf_call(red == PF_RED_MEAN ? PF_OP_MEAN : PF_OP_SUM, &l, 1, NULL));
        if (l == NULL) {
            return NULL;
        }
    }
    return (PyObject *)pf_tensor_copy_as((PfTensor *)l, res, op);
}

static PyObject *pointwise_compose(const char *op, pf_ewloss kind, PfTensor *x, PfTensor *t,
                                   pf_nn_red red, double prm, pf_dtype res)
{
    pf_arena A_ = {0}, *A = &A_;
    pf_dtype comp = pf_nn_comp(res);
    PyObject *d = SUB(as_dtype(A, x, comp, op), as_dtype(A, t, comp, op)), *l;
    switch (kind) {
    case PF_LOSS_MSE:
        l = MUL(d, d);
        break;
    case PF_LOSS_HUBER:
    case PF_LOSS_SMOOTH_L1: {
        /*
         * with c = clip(d, -prm, prm): 0.5 c^2 + prm (|d| - |c|) is 0.5 d^2 inside
         * and prm (|d| - 0.5 prm) outside, huber's two branches with no select;
         * smooth_l1 is huber / beta
         */
        PyObject *c = d == NULL ? NULL : pf_keep(A, pf_ew_p(PF_OP_CLIP, d, -prm, prm));
        l = ADD(MUL(F(0.5), MUL(c, c)), MUL(F(prm), SUB(E1(ABS, d), E1(ABS, c))));
        if (kind == PF_LOSS_SMOOTH_L1) {
            l = DIV(l, F(prm));
        }
        break;
    }
    default:
        l = E1(ABS, d);
        break;
    }
    PyObject *r = A->err || PyErr_Occurred() ? NULL : reduce_loss(A, l, red, res, op);
    pf_arena_free(A);
    return r;
}

/*
 * binary_cross_entropy's probability check on the device: one flag read
 * back (any value outside [0, 1], NaN included), then the first such value
 * for the message.
 */
static int check_probabilities(pf_arena *A, PyObject *xc, const char *op)
{
    PyObject *bad = E1(LOGICAL_NOT, E2(LOGICAL_AND, E2(GE, xc, F(0.0)),
                                       E2(LE, xc, F(1.0))));
    PyObject *any = bad == NULL ? NULL : pf_keep(A, pf_call(PF_OP_ANY, &bad, 1, NULL));
    if (any == NULL) {
        return -1;
    }
    int found = PyObject_IsTrue(any);
    if (found <= 0) {
        return found;
    }
    /* the position as a Python int: a device tensor as an index would be advanced indexing */
    PyObject *am = pf_keep(A, pf_call(PF_OP_ARGMAX, &bad, 1, NULL));
    PyObject *at = am == NULL ? NULL : pf_keep(A, PyObject_CallMethod(am, "item", NULL));
    PyObject *flat = pf_keep(A, PyObject_CallMethod(xc, "reshape", "(i)", -1));
    PyObject *v = at == NULL || flat == NULL ? NULL : pf_keep(A, PyObject_GetItem(flat, at));
    PyObject *f = v == NULL ? NULL : pf_keep(A, PyObject_CallMethod(v, "item", NULL));
    if (f == NULL) {
        return -1;
    }
    char s[64];
    PyErr_Format(PyExc_ValueError, "%s: input values must be probabilities in [0, 1]; got %s "
                 "(apply sigmoid first, or use binary_cross_entropy_with_logits)", op,
                 pf_fmt_double(PyFloat_AsDouble(f), s, sizeof(s)));
    return -1;
}

static PyObject *bce_compose(const char *op, int logits, PfTensor *x, PfTensor *t, PfTensor *w,
                             PfTensor *pw, pf_nn_red red)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *r = NULL;
    pf_dtype comp = pf_nn_comp(x->dtype);
    PyObject *xc = as_dtype(A, x, comp, op), *tc = as_dtype(A, t, comp, op), *l;
    if (xc == NULL || tc == NULL) {
        goto done;
    }
    if (!logits) {
        if (check_probabilities(A, xc, op) < 0) {
            goto done;
        }
        /* PyTorch's clamp of each log at -100; NaN stays NaN through maximum */
        PyObject *lp = E2(MAXIMUM, E1(LOG, xc), F(-100.0));
        PyObject *lq = E2(MAXIMUM, E1(LOG1P, E1(NEG, xc)), F(-100.0));
        l = E1(NEG, ADD(MUL(tc, lp), MUL(SUB(F(1.0), tc), lq)));
    }
    else {
        /* (1 - t) x + lw softplus(-x), softplus(-x) = relu(-x) + log1p(exp(-|x|)) */
        PyObject *pwc = pw != NULL ? as_dtype(A, pw, comp, op) : NULL;
        PyObject *lw = pwc != NULL ? ADD(F(1.0), MUL(SUB(pwc, F(1.0)), tc)) : NULL;
        PyObject *rl = E1(RELU, E1(NEG, xc));
        PyObject *lg = E1(LOG1P, E1(EXP, E1(NEG, E1(ABS, xc))));
        PyObject *base = MUL(SUB(F(1.0), tc), xc);
        l = lw != NULL ? ADD(ADD(base, MUL(lw, rl)), MUL(lw, lg)) : ADD(ADD(base, rl), lg);
    }
    if (w != NULL) {
        l = MUL(l, as_dtype(A, w, comp, op));
    }
    if (!A->err && !PyErr_Occurred()) {
        r = reduce_loss(A, l, red, x->dtype, op);
    }
done:
    pf_arena_free(A);
    return r;
}

PyObject *pf_nn_pointwise_loss_cuda(const char *op, pf_ewloss kind, PfTensor *x, PfTensor *t,
                                    pf_nn_red red, double prm, pf_dtype res)
{
    if (pf_cuda_lib(op) == NULL || same_device(op, x, t, "target") < 0) {
        return NULL;
    }
    return pointwise_compose(op, kind, x, t, red, prm, res);
}

PyObject *pf_nn_bce_cuda(const char *op, int logits, PfTensor *x, PfTensor *t, PfTensor *w,
                         PfTensor *pw, pf_nn_red red)
{
    if (pf_cuda_lib(op) == NULL || same_device(op, x, t, "target") < 0 ||
        same_device(op, x, w, "weight") < 0 || same_device(op, x, pw, "pos_weight") < 0) {
        return NULL;
    }
    return bce_compose(op, logits, x, t, w, pw, red);
}

/* ------------------------------------------------ cross-entropy, nll */

/*
 * Class indices on a device: the label check reads back one flag (any
 * target outside [0, C) that is not ignore_index), then the first such
 * label for the message the cpu gives.
 */
static int check_labels(pf_arena *A, PyObject *ti, int64_t C, int64_t ignore, const char *op)
{
    PyObject *ig = pf_keep(A, PyLong_FromLongLong(ignore));
    PyObject *lo = pf_keep(A, PyLong_FromLong(0)), *hi = pf_keep(A, PyLong_FromLongLong(C));
    PyObject *bad = E2(LOGICAL_AND, E2(NE, ti, ig), E2(LOGICAL_OR, E2(LT, ti, lo),
                                                      E2(GE, ti, hi)));
    PyObject *any = bad == NULL ? NULL : pf_keep(A, pf_call(PF_OP_ANY, &bad, 1, NULL));
    if (any == NULL) {
        return -1;
    }
    int found = PyObject_IsTrue(any);
    if (found <= 0) {
        return found;
    }
    /* the position as a Python int: a device tensor as an index would be advanced indexing */
    PyObject *am = pf_keep(A, pf_call(PF_OP_ARGMAX, &bad, 1, NULL));
    PyObject *at = am == NULL ? NULL : pf_keep(A, PyObject_CallMethod(am, "item", NULL));
    PyObject *flat = pf_keep(A, PyObject_CallMethod(ti, "reshape", "(i)", -1));
    PyObject *v = at == NULL || flat == NULL ? NULL : pf_keep(A, PyObject_GetItem(flat, at));
    PyObject *lab = v == NULL ? NULL : pf_keep(A, PyObject_CallMethod(v, "item", NULL));
    if (lab == NULL) {
        return -1;
    }
    PyErr_Format(PyExc_IndexError, "%s: target %lld is out of range for %lld classes; class "
                 "indices must be in [0, %lld) or equal ignore_index (%lld)", op,
                 PyLong_AsLongLong(lab), (long long)C, (long long)C, (long long)ignore);
    return -1;
}

int pf_nn_class_q_cuda(const char *op, PfTensor *x, PfTensor *t, PfTensor *w,
                       const pf_nn_ce *g, int64_t ignore, double eps, PyObject **q,
                       PyObject **den)
{
    pf_arena A_ = {0}, *A = &A_;
    int rc = -1, cls = g->unbatched ? 0 : 1;
    pf_dtype comp = pf_nn_comp(x->dtype);
    int64_t cs[PF_MAX_DIMS], ts[PF_MAX_DIMS];
    *q = *den = NULL;
    /* (1, C, 1, ...) or (C,): a class vector against the input's layout */
    for (int d = 0; d < x->ndim; d++) {
        cs[d] = d == cls ? g->C : 1;
    }
    PyObject *wb = w == NULL ? NULL : A_reshape(A, as_dtype(A, w, comp, op), cs, x->ndim);
    if (w != NULL && wb == NULL) {
        goto done;
    }
    PyObject *Q, *D;
    if (g->probs) {
        /* w (t (1 - eps) + eps / C); the mean is over rows */
        Q = ADD(MUL(as_dtype(A, t, comp, op), F(1.0 - eps)), F(eps / (double)g->C));
        if (wb != NULL) {
            Q = MUL(Q, wb);
        }
        D = F((double)(g->N * g->K));
    }
    else {
        PyObject *ti = as_dtype(A, t, PF_INT64, op);
        if (ti == NULL || check_labels(A, ti, g->C, ignore, op) < 0) {
            goto done;
        }
        /* the target with a class axis of 1, against arange(C) on the device */
        for (int d = 0, k = 0; d < x->ndim; d++) {
            ts[d] = d == cls ? 1 : t->shape[k++];
        }
        PfTensor *ar = (PfTensor *)pf_keep(A, pf_bw_arange(0, g->C));
        PyObject *ad = ar == NULL ? NULL : pf_keep(A, (PyObject *)pf_tensor_to_device(
                                                  ar, x->storage->device, PF_INT64, op));
        PyObject *tr = A_reshape(A, ti, ts, x->ndim);
        PyObject *ig = pf_keep(A, PyLong_FromLongLong(ignore));
        PyObject *valid = E2(NE, tr, ig);
        PyObject *hot = E2(LOGICAL_AND, E2(EQ, tr, A_reshape(A, ad, cs, x->ndim)), valid);
        PyObject *hard = hot == NULL ? NULL : as_dtype(A, (PfTensor *)hot, comp, op);
        if (wb != NULL) {
            hard = MUL(hard, wb);           /* w[t] at the target, 0 elsewhere */
        }
        /* (1 - eps) w[t] at the target plus eps / C w_c on every class of a kept row */
        Q = eps == 0 ? hard : MUL(hard, F(1.0 - eps));
        if (eps != 0) {
            PyObject *vf = valid == NULL ? NULL : as_dtype(A, (PfTensor *)valid, comp, op);
            PyObject *sm = MUL(vf, F(eps / (double)g->C));
            Q = ADD(Q, wb != NULL ? MUL(sm, wb) : sm);
        }
        /* the mean's denominator: the summed weights of the kept targets */
        D = hard == NULL ? NULL : pf_keep(A, pf_call(PF_OP_SUM, &hard, 1, NULL));
    }
    if (Q == NULL || D == NULL || A->err || PyErr_Occurred()) {
        goto done;
    }
    *q = Py_NewRef(Q);
    *den = Py_NewRef(D);
    rc = 0;
done:
    pf_arena_free(A);
    return rc;
}

static PyObject *class_compose(const char *op, int is_nll, PfTensor *x, PfTensor *t,
                               PfTensor *w, const pf_nn_ce *g, int64_t ignore, double eps,
                               pf_nn_red red)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *q = NULL, *den = NULL, *r = NULL;
    int cls = g->unbatched ? 0 : 1;
    if (pf_nn_class_q_cuda(op, x, t, w, g, ignore, eps, &q, &den) < 0) {
        goto done;
    }
    pf_keep(A, q);
    pf_keep(A, den);
    PyObject *xc = as_dtype(A, x, pf_nn_comp(x->dtype), op), *lp = xc;
    PyObject *ax = pf_keep(A, PyLong_FromLong(cls));
    if (!is_nll) {
        lp = xc == NULL || ax == NULL ? NULL
             : pf_keep(A, pf_call_kw(PF_OP_LOG_SOFTMAX, &xc, 1, "axis", ax, NULL, NULL));
    }
    /* -sum_c q_c lp_c, with the classes q leaves out dropped (an lp of -inf there adds 0) */
    PyObject *term = lp == NULL ? NULL
                     : pf_keep(A, pf_ew3(PF_OP_WHERE, E2(NE, q, F(0.0)), MUL(q, lp), F(0.0)));
    PyObject *rows = term == NULL ? NULL
                     : E1(NEG, pf_keep(A, pf_call_kw(PF_OP_SUM, &term, 1, "axis", ax, NULL,
                                                     NULL)));
    if (rows == NULL || A->err || PyErr_Occurred()) {
        goto done;
    }
    if (red == PF_RED_NONE) {
        r = (PyObject *)pf_tensor_copy_as((PfTensor *)rows, x->dtype, op);
        goto done;
    }
    PyObject *s = pf_keep(A, pf_call(PF_OP_SUM, &rows, 1, NULL));
    if (red == PF_RED_MEAN) {
        s = DIV(s, den);
    }
    if (s != NULL && !A->err && !PyErr_Occurred()) {
        r = (PyObject *)pf_tensor_copy_as((PfTensor *)s, x->dtype, op);
    }
done:
    pf_arena_free(A);
    return r;
}

PyObject *pf_nn_class_loss_cuda(const char *op, int is_nll, PfTensor *x, PfTensor *t,
                                PfTensor *w, const pf_nn_ce *g, int64_t ignore, double eps,
                                pf_nn_red red)
{
    if (pf_cuda_lib(op) == NULL || same_device(op, x, t, "target") < 0 ||
        same_device(op, x, w, "weight") < 0) {
        return NULL;
    }
    return class_compose(op, is_nll, x, t, w, g, ignore, eps, red);
}

/*
 * _cuda_host_loss(name, input, target, reduction, param, weight, pos_weight,
 * ignore_index) (param: delta, beta or label_smoothing; pos_weight None for the
 * class losses):
 * the device composition above run on cpu tensors (its ops then take their
 * cpu kernels), so that a machine without a GPU checks its algebra -- the
 * select-free huber, the clamps, the softplus split, the reductions and
 * casts -- against the fused cpu kernels.  No checks beyond the names: the
 * tests pass valid arguments.
 */
static PyObject *py_cuda_host_loss(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *name, *rs;
    PyObject *xo, *to, *wo = Py_None, *pwo = Py_None, *res = NULL;
    double prm;
    long long ignore = -100;
    if (!PyArg_ParseTuple(args, "sOOsd|OOL:_cuda_host_loss", &name, &xo, &to, &rs, &prm, &wo,
                          &pwo, &ignore)) {
        return NULL;
    }
    static const struct { const char *name; int kind; } kinds[] = {
        {"mse_loss", PF_LOSS_MSE}, {"l1_loss", PF_LOSS_L1}, {"huber_loss", PF_LOSS_HUBER},
        {"smooth_l1_loss", PF_LOSS_SMOOTH_L1}, {"binary_cross_entropy", PF_LOSS_BCE},
        {"binary_cross_entropy_with_logits", PF_LOSS_BCE_LOGITS},
        {"cross_entropy", 100}, {"nll_loss", 101},
    };
    int kind = -1;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(name, kinds[i].name) == 0) {
            kind = kinds[i].kind;
        }
    }
    if (kind < 0) {
        return PF_ERR(PyExc_ValueError, "_cuda_host_loss: unknown loss '%s'", name);
    }
    const char *op = "_cuda_host_loss";
    PyObject *ro = PyUnicode_FromString(rs);
    pf_nn_red red;
    PfTensor *x = pf_nn_tensor(xo, op), *t = x == NULL ? NULL : pf_nn_tensor(to, op);
    PfTensor *w = wo == Py_None || t == NULL ? NULL : pf_nn_tensor(wo, op);
    PfTensor *pw = pwo == Py_None || t == NULL ? NULL : pf_nn_tensor(pwo, op);
    if (ro == NULL || t == NULL || (wo != Py_None && w == NULL) ||
        (pwo != Py_None && pw == NULL) || pf_nn_reduction(ro, op, &red) < 0) {
        goto done;
    }
    if (kind >= 100) {
        pf_nn_ce g;
        if (pf_nn_ce_geom(x, t, kind == 100, name, &g) == 0) {
            res = class_compose(name, kind == 101, x, t, w, &g, ignore, prm, red);
        }
    }
    else if (kind == PF_LOSS_BCE || kind == PF_LOSS_BCE_LOGITS) {
        res = bce_compose(name, kind == PF_LOSS_BCE_LOGITS, x, t, w, pw, red);
    }
    else {
        res = pointwise_compose(name, (pf_ewloss)kind, x, t, red, prm,
                                pf_promote(x->dtype, t->dtype));
    }
done:
    Py_XDECREF(ro);
    Py_XDECREF(x);
    Py_XDECREF(t);
    Py_XDECREF(w);
    Py_XDECREF(pw);
    return res;
}

PyMethodDef pf_nn_losses_cuda_host_methods[] = {
    {"_cuda_host_loss", py_cuda_host_loss, METH_VARARGS,
     "_cuda_host_loss(name, input, target, reduction, param, weight=None, pos_weight=None, "
     "ignore_index=-100): "
     "the losses' device composition run on cpu tensors (tests)"},
    {NULL, NULL, 0, NULL},
};
