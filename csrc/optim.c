/*
 * optim.c -- fused optimizer updates: pyframe._C._optim_step and
 * pyframe._C._optim_grad_norm, which pyframe.optim calls once per step
 * (once per parameter group).
 *
 *     _optim_step(algorithm, params, grads, steps, *, lr, <hyper-parameters>,
 *                 <state lists>, weight_decay=0, decoupled_weight_decay=False,
 *                 maximize=False, keras=False, clipnorm=None, clipvalue=None,
 *                 global_clipnorm=None, global_norm=None, grad_scale=1, name=None)
 *
 * params, grads and steps are equally long lists (or tuples); a None
 * gradient skips its parameter.  Each state list (exp_avg=[...], ...) holds
 * one tensor per parameter, shaped and typed like it; `steps` holds one
 * 1-element tensor per parameter, incremented here (PyTorch keeps a step per
 * parameter).  The Python side creates every state; this file only checks
 * and updates them.
 *
 * One call validates everything first (lengths, dtypes, shapes, overlaps,
 * hyper-parameters) and only then writes, so a failed call changes nothing.
 * The update then runs with the GIL released: each parameter's constants
 * (bias corrections, the clip-by-norm scale) are computed once, and the
 * element loops of optim_kernels.c run over runs of up to OPTIM_CHUNK
 * elements, split across OpenMP threads when the total is large.  Writes go
 * straight through the data pointers (no autograd: parameters are leaves),
 * and every written storage's version counter is bumped, as for any
 * in-place write.  A parameter, gradient or state that is not contiguous is
 * updated through a contiguous copy that is written back afterwards.
 */
#include "pyframe.h"
#include "kernels/kernels.h"
#include "ops.h"
#include "kernels/optim_kernels.h"
#include "cuda_backend.h"
#include <float.h>
#include <math.h>

/* elements per unit of parallel work: 64 KiB of float32 per array */
#define OPTIM_CHUNK 16384

/* ------------------------------------------------------------ keywords */

enum {
    /* common */
    K_LR, K_WEIGHT_DECAY, K_DECOUPLED, K_MAXIMIZE, K_KERAS, K_CLIPNORM, K_CLIPVALUE,
    K_GLOBAL_CLIPNORM, K_GLOBAL_NORM, K_GRAD_SCALE, K_NAME,
    /* hyper-parameters */
    K_MOMENTUM, K_DAMPENING, K_NESTEROV, K_BETA1, K_BETA2, K_EPS, K_AMSGRAD, K_ALPHA, K_CENTERED,
    K_LR_DECAY, K_MOMENTUM_DECAY,
    /* state lists */
    K_MOMENTUM_BUFFER, K_EXP_AVG, K_EXP_AVG_SQ, K_MAX_EXP_AVG_SQ, K_SQUARE_AVG, K_GRAD_AVG, K_SUM,
    K_EXP_INF, K_MU_PRODUCT,
    K_COUNT
};

#define K_NCOMMON (K_NAME + 1)

static const char *const kw_names[K_COUNT] = {
    "lr", "weight_decay", "decoupled_weight_decay", "maximize", "keras", "clipnorm", "clipvalue",
    "global_clipnorm", "global_norm", "grad_scale", "name",
    "momentum", "dampening", "nesterov", "beta1", "beta2", "eps", "amsgrad", "alpha", "centered",
    "lr_decay", "momentum_decay",
    "momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "square_avg", "grad_avg", "sum",
    "exp_inf", "mu_product",
};

/* interned copies of kw_names: keyword names from a call compare by pointer first */
static PyObject *kw_objs[K_COUNT];

#define BIT(k) ((uint64_t)1 << (k))

typedef struct {
    const char *name;       /* the algorithm argument */
    const char *label;      /* how messages name it when no name= is given */
    uint64_t options;       /* keywords it takes beyond the common ones */
} algo_info;

static const algo_info algos[PF_OPTIM_NALGOS] = {
    [PF_OPTIM_SGD] = {"sgd", "SGD",
                      BIT(K_MOMENTUM) | BIT(K_DAMPENING) | BIT(K_NESTEROV) |
                      BIT(K_MOMENTUM_BUFFER)},
    [PF_OPTIM_ADAM] = {"adam", "Adam",
                       BIT(K_BETA1) | BIT(K_BETA2) | BIT(K_EPS) | BIT(K_AMSGRAD) | BIT(K_EXP_AVG) |
                       BIT(K_EXP_AVG_SQ) | BIT(K_MAX_EXP_AVG_SQ)},
    [PF_OPTIM_RMSPROP] = {"rmsprop", "RMSprop",
                          BIT(K_ALPHA) | BIT(K_EPS) | BIT(K_MOMENTUM) | BIT(K_CENTERED) |
                          BIT(K_SQUARE_AVG) | BIT(K_MOMENTUM_BUFFER) | BIT(K_GRAD_AVG)},
    [PF_OPTIM_ADAGRAD] = {"adagrad", "Adagrad", BIT(K_LR_DECAY) | BIT(K_EPS) | BIT(K_SUM)},
    [PF_OPTIM_ADAMAX] = {"adamax", "Adamax",
                         BIT(K_BETA1) | BIT(K_BETA2) | BIT(K_EPS) | BIT(K_EXP_AVG) |
                         BIT(K_EXP_INF)},
    [PF_OPTIM_NADAM] = {"nadam", "NAdam",
                        BIT(K_BETA1) | BIT(K_BETA2) | BIT(K_EPS) | BIT(K_MOMENTUM_DECAY) |
                        BIT(K_EXP_AVG) | BIT(K_EXP_AVG_SQ) | BIT(K_MU_PRODUCT)},
    [PF_OPTIM_LION] = {"lion", "Lion", BIT(K_BETA1) | BIT(K_BETA2) | BIT(K_EXP_AVG)},
};

static int intern_keywords(void)
{
    if (kw_objs[0] != NULL) {
        return 0;
    }
    for (int k = 0; k < K_COUNT; k++) {
        PyObject *s = PyUnicode_InternFromString(kw_names[k]);
        if (s == NULL) {
            return -1;
        }
        kw_objs[k] = s;
    }
    return 0;
}

static int keyword_index(PyObject *key)
{
    for (int k = 0; k < K_COUNT; k++) {
        if (key == kw_objs[k]) {
            return k;
        }
    }
    for (int k = 0; k < K_COUNT; k++) {
        if (PyUnicode_Compare(key, kw_objs[k]) == 0) {
            return k;
        }
    }
    return -1;
}

/* ---------------------------------------------------- scalar arguments */

/* A real number argument (int or float, not bool); def when absent. */
static int real_kw(PyObject *o, double def, const char *label, const char *what, double *out)
{
    if (o == NULL) {
        *out = def;
        return 0;
    }
    if (PyBool_Check(o) || !(PyFloat_Check(o) || PyLong_Check(o))) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a number; got %.100s", label, what,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    *out = PyFloat_AsDouble(o);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* An optional positive bound (clipnorm, clipvalue, ...): 0 when None or absent. */
static int bound_kw(PyObject *o, const char *label, const char *what, double *out)
{
    if (o == NULL || o == Py_None) {
        *out = 0.0;
        return 0;
    }
    if (real_kw(o, 0.0, label, what, out) < 0) {
        return -1;
    }
    if (!(*out > 0.0) || isinf(*out)) {
        PyErr_Format(PyExc_ValueError, "%s: invalid %s=%R; expected a finite number > 0 (or None "
                     "for no clipping)", label, what, o);
        return -1;
    }
    return 0;
}

static int flag_kw(PyObject *o, int *out)
{
    if (o == NULL) {
        *out = 0;
        return 0;
    }
    int r = PyObject_IsTrue(o);
    if (r < 0) {
        return -1;
    }
    *out = r;
    return 0;
}

/* lo <= v < hi (hi_open) or lo <= v <= hi; NaN fails every test. */
static int check_in(double v, PyObject *o, double lo, double hi, int hi_open, const char *label,
                    const char *what, const char *expected)
{
    int ok = v >= lo && (hi_open ? v < hi : v <= hi);
    if (!ok) {
        if (o != NULL) {
            PyErr_Format(PyExc_ValueError, "%s: invalid %s=%R; expected %s", label, what, o,
                         expected);
        }
        else {
            PyErr_Format(PyExc_ValueError, "%s: invalid %s; expected %s", label, what, expected);
        }
        return -1;
    }
    return 0;
}

/* ------------------------------------------------- per-parameter work */

typedef struct {
    PfTensor *p, *g;                            /* the caller's (borrowed) */
    PfTensor *pw, *gw;                          /* what the loop uses: p/g or contiguous copies */
    PfTensor *s[PF_OPTIM_MAX_SLOTS];            /* borrowed; NULL for an unused slot */
    PfTensor *sw[PF_OPTIM_MAX_SLOTS];
    PfTensor *step, *scalar;                    /* borrowed 1-element states */
    int64_t n;
    int is_double;
    double sumsq;
    pf_optim_loop loop;                         /* the algorithm's loop for this dtype */
    pf_optim_coef coef;
} job;

typedef struct {
    int64_t j, lo, hi;
} chunk;

/* Everything one call read from its keywords. */
typedef struct {
    pf_optim_algo algo;
    const char *label;
    double lr, wd, momentum, dampening, beta1, beta2, eps, alpha, lr_decay, momentum_decay;
    double clipnorm, clipvalue, global_clipnorm, global_norm, grad_scale;
    int has_global_norm, decoupled, maximize, keras, nesterov, amsgrad, centered;
    int nslots;                                 /* tensor slots in loop order */
    int slot_kw[PF_OPTIM_MAX_SLOTS];            /* K_ of each, -1 when unused this call */
    int scalar_kw;                              /* K_MU_PRODUCT or -1 */
} config;

static const char *shape_str(const PfTensor *t, char *buf)
{
    return pf_shape_str(t->shape, t->ndim, buf, PF_SHAPE_STRLEN);
}

/* Read a 1-element tensor (step, mu_product) as a double. */
static double scalar_get(const PfTensor *t)
{
    const char *d = pf_tensor_data(t);
    double v = 0.0;
    pf_cast_one(d, t->dtype, &v, PF_FLOAT64);
    return v;
}

/* Store v into a 1-element tensor in its own dtype; returns the value as stored. */
static double scalar_set(PfTensor *t, double v)
{
    char *d = pf_tensor_data(t);
    pf_cast_one(&v, PF_FLOAT64, d, t->dtype);
    t->storage->version++;
    return scalar_get(t);
}

/* A 1-element float or integer tensor we may write (steps, mu_product). */
static int check_scalar_state(PyObject *o, Py_ssize_t i, const char *what, const char *label)
{
    if (!PfTensor_Check(o)) {
        return PF_ERRI(PyExc_TypeError, "%s: %s of parameter %zd must be a tensor; got %.100s",
                       label, what, i, Py_TYPE(o)->tp_name);
    }
    PfTensor *t = (PfTensor *)o;
    if (pf_numel(t->shape, t->ndim) != 1 || t->dtype == PF_BOOL || t->dtype == PF_FLOAT16 ||
        t->dtype == PF_BFLOAT16) {
        char b[PF_SHAPE_STRLEN];
        return PF_ERRI(PyExc_ValueError,
                       "%s: %s of parameter %zd must be a 1-element float32, float64 or integer "
                       "tensor; got shape %s, dtype %s", label, what, i, shape_str(t, b),
                       pf_dtypes[t->dtype].name);
    }
    if (!pf_tensor_on_cpu(t)) {
        char d[32];
        return PF_ERRI(PyExc_ValueError,
                       "%s: %s of parameter %zd is on %s; it must be a cpu tensor (the "
                       "optimizer keeps its step counters on the host for every device)", label,
                       what, i, pf_device_str(t->storage->device, d, sizeof(d)));
    }
    return pf_tensor_check_writable(t, label);
}

/* A state tensor: same shape and dtype as its parameter, writable. */
static int check_state(PyObject *o, const PfTensor *p, Py_ssize_t i, const char *what,
                       const char *label)
{
    if (!PfTensor_Check(o)) {
        return PF_ERRI(PyExc_TypeError, "%s: state '%s' of parameter %zd must be a tensor; got "
                       "%.100s", label, what, i, Py_TYPE(o)->tp_name);
    }
    PfTensor *s = (PfTensor *)o;
    if (s->ndim != p->ndim || memcmp(s->shape, p->shape, sizeof(int64_t) * (size_t)p->ndim) ||
        s->dtype != p->dtype) {
        char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
        return PF_ERRI(PyExc_ValueError,
                       "%s: state '%s' of parameter %zd has shape %s and dtype %s, but the "
                       "parameter has shape %s and dtype %s; a state must match its parameter "
                       "(was the state loaded for other parameters?)", label, what, i,
                       shape_str(s, a), pf_dtypes[s->dtype].name, shape_str(p, b),
                       pf_dtypes[p->dtype].name);
    }
    return pf_tensor_check_writable(s, label);
}

/* A contiguous tensor to run the loop on: t itself (new reference) or a copy. */
static PfTensor *working(PfTensor *t, const char *label)
{
    if (pf_tensor_is_contiguous(t)) {
        Py_INCREF(t);
        return t;
    }
    return pf_tensor_copy_as(t, t->dtype, label);
}

static int overlap_error(const char *label, Py_ssize_t i, const char *a, const char *b)
{
    return PF_ERRI(PyExc_ValueError, "%s: the %s and the %s of parameter %zd share memory; "
                   "each must be its own tensor (use .clone())", label, a, b, i);
}

/*
 * Check parameter i and its gradient, states and step, and fill J.  The
 * slot lists are sequences as long as the parameters.
 */
static int prepare(job *J, const config *C, Py_ssize_t i, PyObject *po, PyObject *go,
                   PyObject *so, PyObject *const *slot_items[], PyObject *const *scalar_items)
{
    const char *label = C->label;
    char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
    if (!PfTensor_Check(po)) {
        return PF_ERRI(PyExc_TypeError, "%s: parameter %zd must be a tensor; got %.100s", label, i,
                       Py_TYPE(po)->tp_name);
    }
    if (!PfTensor_Check(go)) {
        return PF_ERRI(PyExc_TypeError, "%s: the gradient of parameter %zd must be a tensor or "
                       "None; got %.100s", label, i, Py_TYPE(go)->tp_name);
    }
    PfTensor *p = (PfTensor *)po, *g = (PfTensor *)go;
    if (p->dtype != PF_FLOAT32 && p->dtype != PF_FLOAT64) {
        return PF_ERRI(PyExc_TypeError, "%s: parameter %zd has dtype %s; optimizers update "
                       "float32 or float64 parameters (keep float32 master weights and cast "
                       "copies for lower precision)", label, i, pf_dtypes[p->dtype].name);
    }
    if (g->dtype != p->dtype) {
        return PF_ERRI(PyExc_TypeError, "%s: the gradient of parameter %zd has dtype %s but the "
                       "parameter has dtype %s; convert the gradient with .astype(%s)", label, i,
                       pf_dtypes[g->dtype].name, pf_dtypes[p->dtype].name,
                       pf_dtypes[p->dtype].name);
    }
    if (g->ndim != p->ndim || memcmp(g->shape, p->shape, sizeof(int64_t) * (size_t)p->ndim)) {
        return PF_ERRI(PyExc_ValueError, "%s: the gradient of parameter %zd has shape %s but the "
                       "parameter has shape %s", label, i, shape_str(g, a), shape_str(p, b));
    }
    if (pf_tensor_check_writable(p, label) < 0) {
        return -1;
    }
    if (pf_tensor_may_overlap(p, g)) {
        return overlap_error(label, i, "parameter", "gradient");
    }
    if (check_scalar_state(so, i, "the step", label) < 0) {
        return -1;
    }
    J->p = p;
    J->g = g;
    J->step = (PfTensor *)so;
    if (pf_tensor_may_overlap(J->step, p)) {
        return overlap_error(label, i, "parameter", "step");
    }
    for (int k = 0; k < C->nslots; k++) {
        if (C->slot_kw[k] < 0) {
            continue;
        }
        const char *what = kw_names[C->slot_kw[k]];
        if (check_state(slot_items[k][i], p, i, what, label) < 0) {
            return -1;
        }
        PfTensor *s = (PfTensor *)slot_items[k][i];
        if (pf_tensor_may_overlap(s, p)) {
            return overlap_error(label, i, "parameter", what);
        }
        if (pf_tensor_may_overlap(s, g)) {
            return overlap_error(label, i, "gradient", what);
        }
        for (int q = 0; q < k; q++) {
            if (J->s[q] != NULL && pf_tensor_may_overlap(s, J->s[q])) {
                return overlap_error(label, i, kw_names[C->slot_kw[q]], what);
            }
        }
        J->s[k] = s;
    }
    if (C->scalar_kw >= 0) {
        if (check_scalar_state(scalar_items[i], i, kw_names[C->scalar_kw], label) < 0) {
            return -1;
        }
        J->scalar = (PfTensor *)scalar_items[i];
        if (J->scalar == J->step || pf_tensor_may_overlap(J->scalar, J->step)) {
            return overlap_error(label, i, "step", kw_names[C->scalar_kw]);
        }
    }
    J->n = pf_numel(p->shape, p->ndim);
    J->is_double = p->dtype == PF_FLOAT64;
    if ((J->pw = working(p, label)) == NULL || (J->gw = working(g, label)) == NULL) {
        return -1;
    }
    for (int k = 0; k < C->nslots; k++) {
        if (J->s[k] != NULL && (J->sw[k] = working(J->s[k], label)) == NULL) {
            return -1;
        }
    }
    return 0;
}

static void release(job *J)
{
    Py_XDECREF(J->pw);
    Py_XDECREF(J->gw);
    for (int k = 0; k < PF_OPTIM_MAX_SLOTS; k++) {
        Py_XDECREF(J->sw[k]);
    }
}

/*
 * The step's constants of one parameter, after its step counter became t
 * (and, for NAdam, its running product of momentum coefficients mu_prod).
 * `scale` is the clipping (and loss-scale) factor of its gradient.
 */
static void coefficients(const config *C, job *J, double t, double scale)
{
    pf_optim_coef *c = &J->coef;
    double lr = C->lr;
    memset(c, 0, sizeof(*c));
    c->gmul = C->maximize ? -scale : scale;
    c->clip = C->clipvalue > 0 ? C->clipvalue : INFINITY;
    /* Lion's decay is always decoupled (as in its paper and in Keras) */
    int decoupled = C->decoupled || C->algo == PF_OPTIM_LION;
    c->l2 = decoupled ? 0.0 : C->wd;
    c->decay = decoupled ? 1.0 - lr * C->wd : 1.0;
    double b1 = C->beta1, b2 = C->beta2;
    switch (C->algo) {
    case PF_OPTIM_SGD:
        if (C->momentum != 0) {
            c->variant = PF_OPTIM_V_BUF;
            if (C->keras) {
                c->c[0] = C->momentum;
                c->c[1] = -lr;
                c->c[2] = C->nesterov ? C->momentum : 1.0;
                c->c[3] = C->nesterov ? -lr : 0.0;
            }
            else {
                /* PyTorch starts the buffer at the first gradient, undamped */
                int first = t <= 1.0;
                c->c[0] = first ? 0.0 : C->momentum;
                c->c[1] = first ? 1.0 : 1.0 - C->dampening;
                c->c[2] = C->nesterov ? -lr * C->momentum : -lr;
                c->c[3] = C->nesterov ? -lr : 0.0;
            }
        }
        else {
            c->c[3] = -lr;
        }
        break;
    case PF_OPTIM_ADAM: {
        double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
        c->variant = C->amsgrad ? PF_OPTIM_V_AMSGRAD : 0;
        c->c[0] = 1.0 - b1;
        c->c[1] = b2;
        c->c[2] = 1.0 - b2;
        if (C->keras) {
            c->c[3] = -(lr * sqrt(bc2) / bc1);
            c->c[4] = 1.0;
        }
        else {
            c->c[3] = -(lr / bc1);
            c->c[4] = 1.0 / sqrt(bc2);
        }
        c->c[5] = C->eps;
        break;
    }
    case PF_OPTIM_RMSPROP:
        c->variant = (C->momentum > 0 ? PF_OPTIM_V_BUF : 0) |
                     (C->centered ? PF_OPTIM_V_CENTERED : 0);
        c->c[0] = C->alpha;
        c->c[1] = 1.0 - C->alpha;
        c->c[2] = C->keras ? C->eps : 0.0;
        c->c[3] = C->keras ? 0.0 : C->eps;
        c->c[4] = C->momentum;
        c->c[5] = C->keras ? lr : 1.0;
        c->c[6] = C->keras ? -1.0 : -lr;
        c->c[7] = -lr;
        break;
    case PF_OPTIM_ADAGRAD:
        c->c[0] = -(lr / (1.0 + (t - 1.0) * C->lr_decay));
        c->c[1] = C->keras ? C->eps : 0.0;
        c->c[2] = C->keras ? 0.0 : C->eps;
        break;
    case PF_OPTIM_ADAMAX:
        c->c[0] = 1.0 - b1;
        c->c[1] = b2;
        c->c[2] = C->keras ? 0.0 : C->eps;
        c->c[3] = C->keras ? C->eps : 0.0;
        c->c[4] = -(lr / (1.0 - pow(b1, t)));
        break;
    case PF_OPTIM_NADAM: {
        double md = C->momentum_decay;
        double mu = b1 * (1.0 - 0.5 * pow(0.96, t * md));
        double mu_next = b1 * (1.0 - 0.5 * pow(0.96, (t + 1.0) * md));
        /*
         * The running product lives in the state tensor, in its dtype: a
         * float32 product (PyTorch's layout) is multiplied in float32.
         */
        double prod = scalar_get(J->scalar);
        if (J->scalar->dtype == PF_FLOAT32) {
            prod = scalar_set(J->scalar, (double)((float)prod * (float)mu));
        }
        else {
            prod = scalar_set(J->scalar, prod * mu);
        }
        c->c[0] = 1.0 - b1;
        c->c[1] = b2;
        c->c[2] = 1.0 - b2;
        c->c[3] = 1.0 / (1.0 - pow(b2, t));
        c->c[4] = C->eps;
        c->c[5] = -lr * (1.0 - mu) / (1.0 - prod);
        c->c[6] = (-lr * mu_next) / (1.0 - prod * mu_next);
        break;
    }
    case PF_OPTIM_LION:
        c->c[0] = b1;
        c->c[1] = 1.0 - b1;
        c->c[2] = b2;
        c->c[3] = 1.0 - b2;
        c->c[4] = -lr;
        break;
    default:
        break;
    }
}


/* Run parameter J's loop over its elements [lo, hi); no Python calls. */
static void update_range(const job *J, int64_t lo, int64_t hi)
{
    int64_t isz = J->is_double ? 8 : 4;
    void *s[PF_OPTIM_MAX_SLOTS] = {NULL, NULL, NULL};
    for (int k = 0; k < PF_OPTIM_MAX_SLOTS; k++) {
        if (J->sw[k] != NULL) {
            s[k] = pf_tensor_data(J->sw[k]) + lo * isz;
        }
    }
    J->loop(pf_tensor_data(J->pw) + lo * isz, pf_tensor_data(J->gw) + lo * isz, s, hi - lo,
            &J->coef);
}

static int parse_algorithm(PyObject *o, pf_optim_algo *algo, int *adamw)
{
    *adamw = 0;
    if (PyUnicode_Check(o)) {
        for (int a = 0; a < PF_OPTIM_NALGOS; a++) {
            if (PyUnicode_CompareWithASCIIString(o, algos[a].name) == 0) {
                *algo = (pf_optim_algo)a;
                return 0;
            }
        }
        if (PyUnicode_CompareWithASCIIString(o, "adamw") == 0) {
            *algo = PF_OPTIM_ADAM;
            *adamw = 1;
            return 0;
        }
    }
    return PF_ERRI(PyExc_ValueError, "_optim_step: unknown algorithm %R; expected one of 'sgd', "
                   "'adam', 'adamw', 'rmsprop', 'adagrad', 'adamax', 'nadam', 'lion'", o);
}

/* The keywords of one call: values, ranges and which state lists it needs. */
static int parse_config(config *C, PyObject *const *kv)
{
    const char *L = C->label;
    PyObject *o;
#define REAL(K, DEF, FIELD, WHAT)                                                               \
    if (real_kw(kv[K], DEF, L, WHAT, &C->FIELD) < 0) {                                          \
        return -1;                                                                              \
    }
#define RANGE(K, FIELD, LO, HI, OPEN, WHAT, EXPECTED)                                           \
    if (check_in(C->FIELD, kv[K], LO, HI, OPEN, L, WHAT, EXPECTED) < 0) {                       \
        return -1;                                                                              \
    }
    if (kv[K_LR] == NULL) {
        return PF_ERRI(PyExc_TypeError, "%s: the learning rate lr= is required", L);
    }
    REAL(K_LR, 0.0, lr, "learning rate lr")
    RANGE(K_LR, lr, 0.0, INFINITY, 1, "learning rate lr", "a finite number >= 0")
    REAL(K_WEIGHT_DECAY, 0.0, wd, "weight_decay")
    RANGE(K_WEIGHT_DECAY, wd, 0.0, INFINITY, 1, "weight_decay", "a finite number >= 0")
    if (flag_kw(kv[K_DECOUPLED], &C->decoupled) < 0 || flag_kw(kv[K_MAXIMIZE], &C->maximize) < 0 ||
        flag_kw(kv[K_KERAS], &C->keras) < 0 || flag_kw(kv[K_NESTEROV], &C->nesterov) < 0 ||
        flag_kw(kv[K_AMSGRAD], &C->amsgrad) < 0 || flag_kw(kv[K_CENTERED], &C->centered) < 0) {
        return -1;
    }
    if (bound_kw(kv[K_CLIPNORM], L, "clipnorm", &C->clipnorm) < 0 ||
        bound_kw(kv[K_CLIPVALUE], L, "clipvalue", &C->clipvalue) < 0 ||
        bound_kw(kv[K_GLOBAL_CLIPNORM], L, "global_clipnorm", &C->global_clipnorm) < 0) {
        return -1;
    }
    o = kv[K_GLOBAL_NORM];
    C->has_global_norm = o != NULL && o != Py_None;
    if (C->has_global_norm && real_kw(o, 0.0, L, "global_norm", &C->global_norm) < 0) {
        return -1;
    }
    REAL(K_GRAD_SCALE, 1.0, grad_scale, "grad_scale")
    RANGE(K_GRAD_SCALE, grad_scale, DBL_MIN, INFINITY, 1, "grad_scale", "a finite number > 0")

    int a = C->algo;
    int beta_open = a != PF_OPTIM_LION;
    const char *beta_range = beta_open ? "0 <= beta < 1" : "0 <= beta <= 1";
    REAL(K_BETA1, 0.9, beta1, "beta1")
    RANGE(K_BETA1, beta1, 0.0, 1.0, beta_open, "beta1 (betas[0], beta_1)", beta_range)
    REAL(K_BETA2, a == PF_OPTIM_LION ? 0.99 : 0.999, beta2, "beta2")
    RANGE(K_BETA2, beta2, 0.0, 1.0, beta_open, "beta2 (betas[1], beta_2)", beta_range)
    REAL(K_EPS, a == PF_OPTIM_ADAGRAD ? 1e-10 : 1e-8, eps, "eps")
    RANGE(K_EPS, eps, 0.0, INFINITY, 1, "eps (epsilon)", "a finite number >= 0")
    REAL(K_MOMENTUM, 0.0, momentum, "momentum")
    RANGE(K_MOMENTUM, momentum, 0.0, INFINITY, 1, "momentum", "a finite number >= 0")
    REAL(K_DAMPENING, 0.0, dampening, "dampening")
    RANGE(K_DAMPENING, dampening, -INFINITY, INFINITY, 1, "dampening", "a finite number")
    REAL(K_ALPHA, 0.99, alpha, "alpha")
    RANGE(K_ALPHA, alpha, 0.0, 1.0, 0, "alpha (rho)", "0 <= alpha <= 1")
    REAL(K_LR_DECAY, 0.0, lr_decay, "lr_decay")
    RANGE(K_LR_DECAY, lr_decay, 0.0, INFINITY, 1, "lr_decay", "a finite number >= 0")
    REAL(K_MOMENTUM_DECAY, 4e-3, momentum_decay, "momentum_decay")
    RANGE(K_MOMENTUM_DECAY, momentum_decay, 0.0, INFINITY, 1, "momentum_decay",
          "a finite number >= 0")
#undef REAL
#undef RANGE
    if (C->nesterov && (C->momentum <= 0 || C->dampening != 0)) {
        return PF_ERRI(PyExc_ValueError, "%s: Nesterov momentum needs momentum > 0 and "
                       "dampening = 0; got momentum=%R, dampening=%R", L,
                       kv[K_MOMENTUM] ? kv[K_MOMENTUM] : Py_None,
                       kv[K_DAMPENING] ? kv[K_DAMPENING] : Py_None);
    }

    for (int k = 0; k < PF_OPTIM_MAX_SLOTS; k++) {
        C->slot_kw[k] = -1;
    }
    C->scalar_kw = -1;
    switch (C->algo) {
    case PF_OPTIM_SGD:
        C->nslots = 1;
        C->slot_kw[0] = C->momentum != 0 ? K_MOMENTUM_BUFFER : -1;
        break;
    case PF_OPTIM_ADAM:
        C->nslots = 3;
        C->slot_kw[0] = K_EXP_AVG;
        C->slot_kw[1] = K_EXP_AVG_SQ;
        C->slot_kw[2] = C->amsgrad ? K_MAX_EXP_AVG_SQ : -1;
        break;
    case PF_OPTIM_RMSPROP:
        C->nslots = 3;
        C->slot_kw[0] = K_SQUARE_AVG;
        C->slot_kw[1] = C->momentum > 0 ? K_MOMENTUM_BUFFER : -1;
        C->slot_kw[2] = C->centered ? K_GRAD_AVG : -1;
        break;
    case PF_OPTIM_ADAGRAD:
        C->nslots = 1;
        C->slot_kw[0] = K_SUM;
        break;
    case PF_OPTIM_ADAMAX:
        C->nslots = 2;
        C->slot_kw[0] = K_EXP_AVG;
        C->slot_kw[1] = K_EXP_INF;
        break;
    case PF_OPTIM_NADAM:
        C->nslots = 2;
        C->slot_kw[0] = K_EXP_AVG;
        C->slot_kw[1] = K_EXP_AVG_SQ;
        C->scalar_kw = K_MU_PRODUCT;
        break;
    default:
        C->nslots = 1;
        C->slot_kw[0] = K_EXP_AVG;
        break;
    }
    return 0;
}

/* A list argument as a fast sequence of exactly n items (n < 0: any length). */
static PyObject *list_arg(PyObject *o, Py_ssize_t n, const char *label, const char *what)
{
    if (!PyList_Check(o) && !PyTuple_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a list or tuple; got %.100s", label, what,
                     Py_TYPE(o)->tp_name);
        return NULL;
    }
    if (n >= 0 && PySequence_Fast_GET_SIZE(o) != n) {
        PyErr_Format(PyExc_ValueError, "%s: got %zd parameters but %zd %s; pass one per "
                     "parameter", label, n, PySequence_Fast_GET_SIZE(o), what);
        return NULL;
    }
    Py_INCREF(o);
    return o;
}

/*
 * One call of _optim_step.  host_kernels (the _cuda_host_optim_step twin,
 * for tests): cpu tensors updated by the CUDA library's per-element code
 * run on the host instead of the cpu loops.
 */
static PyObject *optim_step(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                            int host_kernels)
{
    PyObject *kv[K_COUNT] = {NULL};
    PyObject *lp = NULL, *lg = NULL, *ls = NULL, *lslot[PF_OPTIM_MAX_SLOTS] = {NULL, NULL, NULL};
    PyObject *lscalar = NULL;
    PyObject *const *slot_items[PF_OPTIM_MAX_SLOTS] = {NULL, NULL, NULL};
    PyObject *const *scalar_items = NULL;
    job *jobs = NULL;
    chunk *chunks = NULL;
    double *partial = NULL;
    double *scale = NULL;
    int64_t njobs = 0, nchunks = 0;
    PyObject *result = NULL;
    config C;
    memset(&C, 0, sizeof(C));

    if (intern_keywords() < 0) {
        return NULL;
    }
    if (nargs != 4) {
        return PF_ERR(PyExc_TypeError, "_optim_step(algorithm, params, grads, steps, **options) "
                      "takes 4 positional arguments; got %zd", nargs);
    }
    int adamw;
    if (parse_algorithm(args[0], &C.algo, &adamw) < 0) {
        return NULL;
    }
    C.label = algos[C.algo].label;
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t j = 0; j < nkw; j++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, j);
        int k = keyword_index(key);
        if (k < 0 || (k >= K_NCOMMON && !(algos[C.algo].options & BIT(k)))) {
            return PF_ERR(PyExc_TypeError, "%s: unexpected option %R for the '%s' update",
                          C.label, key, algos[C.algo].name);
        }
        kv[k] = args[nargs + j];
    }
    if (kv[K_NAME] != NULL && kv[K_NAME] != Py_None) {
        if (!PyUnicode_Check(kv[K_NAME]) || (C.label = PyUnicode_AsUTF8(kv[K_NAME])) == NULL) {
            return PF_ERR(PyExc_TypeError, "_optim_step: name must be a string");
        }
    }
    if (parse_config(&C, kv) < 0) {
        return NULL;
    }
    if (adamw) {
        C.decoupled = 1;
    }

    /* ----- the lists */
    if ((lp = list_arg(args[1], -1, C.label, "params")) == NULL) {
        goto fail;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(lp);
    if ((lg = list_arg(args[2], n, C.label, "gradients")) == NULL ||
        (ls = list_arg(args[3], n, C.label, "step tensors")) == NULL) {
        goto fail;
    }
    for (int k = 0; k < C.nslots; k++) {
        int K = C.slot_kw[k];
        if (K < 0) {
            continue;
        }
        if (kv[K] == NULL && n == 0) {
            continue;       /* a call that only validates its options */
        }
        if (kv[K] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s: the state list %s= is required (one tensor per "
                         "parameter)", C.label, kw_names[K]);
            goto fail;
        }
        if ((lslot[k] = list_arg(kv[K], n, C.label, kw_names[K])) == NULL) {
            goto fail;
        }
        slot_items[k] = PySequence_Fast_ITEMS(lslot[k]);
    }
    if (C.scalar_kw >= 0 && (kv[C.scalar_kw] != NULL || n > 0)) {
        if (kv[C.scalar_kw] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s: the state list %s= is required (one tensor per "
                         "parameter)", C.label, kw_names[C.scalar_kw]);
            goto fail;
        }
        if ((lscalar = list_arg(kv[C.scalar_kw], n, C.label, kw_names[C.scalar_kw])) == NULL) {
            goto fail;
        }
        scalar_items = PySequence_Fast_ITEMS(lscalar);
    }

    /* ----- check every parameter before anything is written */
    jobs = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(job));
    if (jobs == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    PyObject *const *pi = PySequence_Fast_ITEMS(lp), *const *gi = PySequence_Fast_ITEMS(lg);
    PyObject *const *si = PySequence_Fast_ITEMS(ls);
    pf_optim_loop loops[2] = {pf_optim_get_loop(C.algo, 0), pf_optim_get_loop(C.algo, 1)};
    int64_t total = 0;
    /*
     * A parameter, its gradient and its state tensors on one device, and every parameter
     * of the call on that device: the cpu, or one CUDA device, where the library's
     * kernels run the same update (cuda/optim.cu).  The step counter and the scalar
     * state are 1-element host tensors whatever the device, as PyTorch keeps `step`.
     */
    pf_device dev = {PF_DEV_CPU, 0};
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *mine[2 + PF_OPTIM_MAX_SLOTS];
        int nm = 0;
        mine[nm++] = pi[i];
        mine[nm++] = gi[i];
        for (int k = 0; k < C.nslots; k++) {
            if (slot_items[k] != NULL) {
                mine[nm++] = slot_items[k][i];
            }
        }
        pf_device d;
        if (pf_dispatch_device(C.label, !host_kernels, mine, nm, &d) < 0) {
            goto fail;
        }
        if (i > 0 && !pf_device_eq(d, dev)) {
            char a[32], b[32];
            PyErr_Format(PyExc_RuntimeError, "%s: parameter 0 is on %s but parameter %zd on %s; "
                         "one step updates the parameters of one device (move the model with "
                         ".to(...), or give each device its own optimizer)", C.label,
                         pf_device_str(dev, a, sizeof(a)), i, pf_device_str(d, b, sizeof(b)));
            goto fail;
        }
        dev = d;
    }
    const PfCudaLib *lib = NULL;
    if (dev.type != PF_DEV_CPU && (lib = pf_cuda_lib(C.label)) == NULL) {
        goto fail;
    }
    if (host_kernels && (lib = pf_cuda_library(C.label)) == NULL) {
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (gi[i] == Py_None) {
            continue;
        }
        job *J = &jobs[njobs++];
        if (prepare(J, &C, i, pi[i], gi[i], si[i], slot_items, scalar_items) < 0) {
            goto fail;
        }
        J->loop = loops[J->is_double];
        total += J->n;
    }
    if (njobs == 0) {
        result = Py_NewRef(Py_None);
        goto fail;
    }

    /*
     * Work units: big parameters are cut into OPTIM_CHUNK-element runs so
     * that the threads share them; small ones are one unit each.
     */
    int on_cpu = dev.type == PF_DEV_CPU;
    int par = on_cpu && pf_get_num_threads() > 1 && total >= PF_GRAIN;
    int nogil = total >= PF_GRAIN;
    if (par) {
        for (int64_t j = 0; j < njobs; j++) {
            nchunks += (jobs[j].n + OPTIM_CHUNK - 1) / OPTIM_CHUNK;
        }
        chunks = PyMem_Malloc(sizeof(chunk) * (size_t)(nchunks > 0 ? nchunks : 1));
        if (chunks == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        int64_t c = 0;
        for (int64_t j = 0; j < njobs; j++) {
            for (int64_t lo = 0; lo < jobs[j].n; lo += OPTIM_CHUNK, c++) {
                chunks[c].j = j;
                chunks[c].lo = lo;
                chunks[c].hi = lo + OPTIM_CHUNK < jobs[j].n ? lo + OPTIM_CHUNK : jobs[j].n;
            }
        }
    }

    /* ----- gradient norms for clipping, in a fixed order */
    int need_norm = C.clipnorm > 0 || (C.global_clipnorm > 0 && !C.has_global_norm);
    if (need_norm) {
        if (par) {
            partial = PyMem_Malloc(sizeof(double) * (size_t)(nchunks > 0 ? nchunks : 1));
            if (partial == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
            Py_BEGIN_ALLOW_THREADS
            #pragma omp parallel for schedule(dynamic, 1)
            for (int64_t c = 0; c < nchunks; c++) {
                const job *J = &jobs[chunks[c].j];
                partial[c] = pf_optim_sumsq(pf_tensor_data(J->gw) + chunks[c].lo *
                                            (J->is_double ? 8 : 4),
                                            chunks[c].hi - chunks[c].lo, J->is_double);
            }
            Py_END_ALLOW_THREADS
            for (int64_t c = 0; c < nchunks; c++) {
                jobs[chunks[c].j].sumsq += partial[c];
            }
        }
        else if (on_cpu) {
            for (int64_t j = 0; j < njobs; j++) {
                jobs[j].sumsq = pf_optim_sumsq(pf_tensor_data(jobs[j].gw), jobs[j].n,
                                               jobs[j].is_double);
            }
        }
        else {
            for (int64_t j = 0; j < njobs; j++) {
                int status = lib->optim_sumsq(dev.index, pf_tensor_data(jobs[j].gw), jobs[j].n,
                                              jobs[j].is_double, &jobs[j].sumsq);
                if (status != 0) {
                    pf_cuda_raise(lib, C.label, status);
                    goto fail;
                }
            }
        }
    }
    scale = PyMem_Malloc(sizeof(double) * (size_t)njobs);
    if (scale == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    double global_scale = C.grad_scale;
    if (C.global_clipnorm > 0) {
        double gn = C.global_norm;
        if (!C.has_global_norm) {
            double ss = 0.0;
            for (int64_t j = 0; j < njobs; j++) {
                ss += jobs[j].sumsq;
            }
            gn = sqrt(ss) * C.grad_scale;
        }
        /* Keras: a non-finite global norm turns every gradient into NaN */
        global_scale = isfinite(gn) ? C.grad_scale * C.global_clipnorm /
                                          (gn > C.global_clipnorm ? gn : C.global_clipnorm)
                                    : NAN;
    }
    for (int64_t j = 0; j < njobs; j++) {
        scale[j] = global_scale;
        if (C.clipnorm > 0) {
            double nj = sqrt(jobs[j].sumsq) * C.grad_scale;
            scale[j] = C.grad_scale * C.clipnorm / (nj > C.clipnorm ? nj : C.clipnorm);
        }
    }

    /* ----- from here on the call writes: steps, the per-step constants, the loops */
    for (int64_t j = 0; j < njobs; j++) {
        job *J = &jobs[j];
        double t = scalar_set(J->step, scalar_get(J->step) + 1.0);
        coefficients(&C, J, t, scale[j]);
    }
    if (lib != NULL) {
        /* the library's kernels (queued on the device), or their code run on the host */
        for (int64_t j = 0; j < njobs; j++) {
            job *J = &jobs[j];
            void *sp[PF_OPTIM_MAX_SLOTS] = {NULL, NULL, NULL};
            for (int k = 0; k < PF_OPTIM_MAX_SLOTS; k++) {
                sp[k] = J->sw[k] != NULL ? pf_tensor_data(J->sw[k]) : NULL;
            }
            pf_cuda_optim_update_fn *run = host_kernels ? lib->optim_update_host
                                                        : lib->optim_update;
            int status = run(dev.index, (int)C.algo, J->is_double, pf_tensor_data(J->pw),
                             pf_tensor_data(J->gw), sp, J->n, &J->coef);
            if (status != 0) {
                pf_cuda_raise(lib, C.label, status);
                goto fail;
            }
        }
    }
    else if (par) {
        Py_BEGIN_ALLOW_THREADS
        #pragma omp parallel for schedule(dynamic, 1)
        for (int64_t c = 0; c < nchunks; c++) {
            update_range(&jobs[chunks[c].j], chunks[c].lo, chunks[c].hi);
        }
        Py_END_ALLOW_THREADS
    }
    else if (nogil) {
        Py_BEGIN_ALLOW_THREADS
        for (int64_t j = 0; j < njobs; j++) {
            update_range(&jobs[j], 0, jobs[j].n);
        }
        Py_END_ALLOW_THREADS
    }
    else {
        for (int64_t j = 0; j < njobs; j++) {
            update_range(&jobs[j], 0, jobs[j].n);
        }
    }

    /* ----- copies back into non-contiguous tensors; version counters */
    for (int64_t j = 0; j < njobs; j++) {
        job *J = &jobs[j];
        if (J->pw != J->p) {
            if (pf_tensor_assign(J->p, J->pw, C.label) < 0) {
                goto fail;
            }
        }
        else {
            J->p->storage->version++;
        }
        for (int k = 0; k < PF_OPTIM_MAX_SLOTS; k++) {
            if (J->s[k] == NULL) {
                continue;
            }
            if (J->sw[k] != J->s[k]) {
                if (pf_tensor_assign(J->s[k], J->sw[k], C.label) < 0) {
                    goto fail;
                }
            }
            else {
                J->s[k]->storage->version++;
            }
        }
    }
    result = Py_NewRef(Py_None);

fail:
    for (int64_t j = 0; j < njobs; j++) {
        release(&jobs[j]);
    }
    PyMem_Free(jobs);
    PyMem_Free(chunks);
    PyMem_Free(partial);
    PyMem_Free(scale);
    Py_XDECREF(lp);
    Py_XDECREF(lg);
    Py_XDECREF(ls);
    for (int k = 0; k < PF_OPTIM_MAX_SLOTS; k++) {
        Py_XDECREF(lslot[k]);
    }
    Py_XDECREF(lscalar);
    return result;
}

static PyObject *py_optim_step(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames)
{
    return optim_step(args, nargs, kwnames, 0);
}

/*
 * _cuda_host_optim_step(...): _optim_step's arguments, cpu tensors, updated
 * by the CUDA library's per-element code run on the host (the host
 * self-test of cuda/optim.cu, which needs no GPU).
 */
static PyObject *py_cuda_host_optim_step(PyObject *Py_UNUSED(m), PyObject *const *args,
                                         Py_ssize_t nargs, PyObject *kwnames)
{
    return optim_step(args, nargs, kwnames, 1);
}

/* _optim_grad_norm(tensors): the L2 norm of all elements of all tensors (None skipped). */
static PyObject *py_optim_grad_norm(PyObject *Py_UNUSED(m), PyObject *arg)
{
    const char *label = "_optim_grad_norm";
    PyObject *seq = list_arg(arg, -1, label, "tensors");
    if (seq == NULL) {
        return NULL;
    }
    double ss = 0.0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *const *items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (items[i] == Py_None) {
            continue;
        }
        if (!PfTensor_Check(items[i])) {
            PyErr_Format(PyExc_TypeError, "%s: item %zd must be a tensor or None; got %.100s",
                         label, i, Py_TYPE(items[i])->tp_name);
            Py_DECREF(seq);
            return NULL;
        }
        PfTensor *t = (PfTensor *)items[i];
        if (t->dtype != PF_FLOAT32 && t->dtype != PF_FLOAT64) {
            PyErr_Format(PyExc_TypeError, "%s: item %zd has dtype %s; expected float32 or "
                         "float64", label, i, pf_dtypes[t->dtype].name);
            Py_DECREF(seq);
            return NULL;
        }
        PfTensor *w = working(t, label);
        if (w == NULL) {
            Py_DECREF(seq);
            return NULL;
        }
        int64_t nw = pf_numel(w->shape, w->ndim);
        if (pf_tensor_on_cpu(w)) {
            ss += pf_optim_sumsq(pf_tensor_data(w), nw, w->dtype == PF_FLOAT64);
        }
        else {
            /* a device tensor: the library's sum (its order, not the cpu's: see optim.cu) */
            const PfCudaLib *lib = pf_cuda_lib(label);
            double part = 0.0;
            int status = lib == NULL ? -1 : lib->optim_sumsq(w->storage->device.index,
                                                             pf_tensor_data(w), nw,
                                                             w->dtype == PF_FLOAT64, &part);
            if (status != 0) {
                if (lib != NULL) {
                    pf_cuda_raise(lib, label, status);
                }
                Py_DECREF(w);
                Py_DECREF(seq);
                return NULL;
            }
            ss += part;
        }
        Py_DECREF(w);
    }
    Py_DECREF(seq);
    return PyFloat_FromDouble(sqrt(ss));
}

PyMethodDef pf_optim_module_methods[] = {
    {"_optim_step", (PyCFunction)(void (*)(void))py_optim_step, METH_FASTCALL | METH_KEYWORDS,
     "_optim_step(algorithm, params, grads, steps, **options): one fused optimizer update "
     "of many parameters in place (see csrc/optim.c)"},
    {"_cuda_host_optim_step", (PyCFunction)(void (*)(void))py_cuda_host_optim_step,
     METH_FASTCALL | METH_KEYWORDS,
     "_cuda_host_optim_step(algorithm, params, grads, steps, **options): _optim_step run by "
     "the CUDA kernels' code on the host (tests)"},
    {"_optim_grad_norm", py_optim_grad_norm, METH_O,
     "_optim_grad_norm(tensors): the global L2 norm of a list of tensors"},
    {NULL, NULL, 0, NULL},
};
