/*
 * nn_ops.c -- normalisation, dropout, losses and attention: the bindings.
 * Argument parsing and checks, the geometry the kernels take
 * (kernels/nn_kernels.c), dtype handling and reductions.  The backward
 * rules (backward_nnops.c) re-read a saved call with the same parsers
 * (nn_ops.h).
 *
 * Layout: every kernel reads contiguous buffers of the compute dtype
 * (float64 for float64 inputs, float32 for the other float dtypes); an
 * input of another layout or dtype is copied once on the way in and the
 * result cast back to the input's dtype.  Normalisations keep the
 * caller's layout (batch_norm's axis= takes channels-last data as it is);
 * the class axis of cross-entropy is moved last only when there are
 * positions after it (N, C, d1...).
 *
 * dropout and scaled_dot_product_attention are composite rows (flag C):
 * they run under the caller's grad mode, so that dropout is recorded as
 * the product x * mask (the mask a constant of the graph), and attention as
 * a call of _attention whose arguments carry the dropout draw's Philox
 * state, from which its rule regenerates the mask.
 */
#include "nn_ops.h"
#include "cuda_backend.h"
#include "nn_conv.h"
#include <float.h>
#include <math.h>

#pragma GCC diagnostic ignored "-Wfloat-equal"

static const pf_device CPU = {PF_DEV_CPU, 0};

/* ------------------------------------------------------------ helpers */

PfTensor *pf_nn_contig(PfTensor *t, pf_dtype dt, const char *op)
{
    if (t->dtype == dt && pf_tensor_is_contiguous(t)) {
        return (PfTensor *)Py_NewRef(t);
    }
    return pf_tensor_copy_as(t, dt, op);
}

PfTensor *pf_nn_tensor(PyObject *o, const char *op)
{
    if (PfTensor_Check(o)) {
        return (PfTensor *)Py_NewRef(o);
    }
    return pf_as_tensor(o, 0, PF_FLOAT32, op);
}

int pf_nn_need_float(const PfTensor *t, const char *op, const char *what)
{
    if (!pf_is_float(t->dtype)) {
        return PF_ERRI(PyExc_TypeError,
                       "%s: %s must be a floating-point tensor; got dtype %s (cast it with "
                       ".astype(pf.float32))", op, what, pf_dtypes[t->dtype].name);
    }
    return 0;
}

int pf_nn_need_vector(const PfTensor *t, int64_t n, const char *op, const char *what,
                      const char *per)
{
    if (pf_nn_need_float(t, op, what) < 0) {
        return -1;
    }
    if (t->ndim != 1 || t->shape[0] != n) {
        char s[PF_SHAPE_STRLEN];
        return PF_ERRI(PyExc_ValueError, "%s: %s must have shape (%lld,) (one value per %s); "
                       "got shape %s", op, what, (long long)n, per,
                       pf_shape_str(t->shape, t->ndim, s, sizeof(s)));
    }
    return 0;
}

int pf_nn_reduction(PyObject *o, const char *op, pf_nn_red *red)
{
    *red = PF_RED_MEAN;
    if (o == NULL) {
        return 0;
    }
    if (PyUnicode_Check(o)) {
        if (PyUnicode_CompareWithASCIIString(o, "none") == 0) {
            *red = PF_RED_NONE;
            return 0;
        }
        if (PyUnicode_CompareWithASCIIString(o, "mean") == 0) {
            return 0;
        }
        if (PyUnicode_CompareWithASCIIString(o, "sum") == 0) {
            *red = PF_RED_SUM;
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError, "%s: reduction must be 'none', 'mean' or 'sum'; got %R", op,
                 o);
    return -1;
}

PfTensor *pf_nn_from_doubles(const double *v, int ndim, const int64_t *shape, pf_dtype dt,
                             const char *op)
{
    PfTensor *t = pf_tensor_empty(ndim, shape, dt, CPU, op);
    if (t == NULL) {
        return NULL;
    }
    int64_t n = pf_numel(shape, ndim);
    char *p = pf_tensor_data(t);
    if (dt == PF_FLOAT64) {
        memcpy(p, v, sizeof(double) * (size_t)n);
    }
    else if (dt == PF_FLOAT32) {
        for (int64_t i = 0; i < n; i++) {
            ((float *)p)[i] = (float)v[i];
        }
    }
    else {
        for (int64_t i = 0; i < n; i++) {
            pf_cast_one(&v[i], PF_FLOAT64, p + i * pf_dtypes[dt].itemsize, dt);
        }
    }
    return t;
}

double pf_nn_scalar(const PfTensor *t)
{
    double d;
    pf_cast_one(pf_tensor_data(t), t->dtype, &d, PF_FLOAT64);
    return d;
}

/* the n values of a 1-D tensor (any float dtype, any stride) as float64 */
static void read_vector(const PfTensor *t, double *out)
{
    int isz = pf_dtypes[t->dtype].itemsize;
    const char *p = pf_tensor_data(t);
    for (int64_t i = 0; i < t->shape[0]; i++) {
        pf_cast_one(p + i * t->strides[0] * isz, t->dtype, &out[i], PF_FLOAT64);
    }
}

static void write_vector(PfTensor *t, const double *v)
{
    int isz = pf_dtypes[t->dtype].itemsize;
    char *p = pf_tensor_data(t);
    for (int64_t i = 0; i < t->shape[0]; i++) {
        pf_cast_one(&v[i], PF_FLOAT64, p + i * t->strides[0] * isz, t->dtype);
    }
}

/* an optional tensor argument: NULL for a missing argument or None */
static int opt_tensor(PyObject *o, const char *op, PfTensor **out)
{
    *out = NULL;
    if (o == NULL || o == Py_None) {
        return 0;
    }
    *out = pf_nn_tensor(o, op);
    return *out == NULL ? -1 : 0;
}

static int opt_double(PyObject *o, const char *op, const char *what, double dflt, double *out)
{
    *out = dflt;
    return o == NULL ? 0 : pf_double_arg(o, op, what, out);
}

/* t broadcast to `shape` as a contiguous tensor of dtype dt (new reference) */
static PfTensor *expand_contig(PfTensor *t, const int64_t *shape, int ndim, pf_dtype dt,
                               const char *op)
{
    if (t->ndim == ndim && memcmp(t->shape, shape, sizeof(int64_t) * (size_t)ndim) == 0) {
        return pf_nn_contig(t, dt, op);
    }
    int64_t st[PF_MAX_DIMS];
    int lead = ndim - t->ndim;
    for (int d = 0; d < ndim; d++) {
        int td = d - lead;
        st[d] = td < 0 || t->shape[td] == 1 ? 0 : t->strides[td];
    }
    PfTensor *view = pf_tensor_view(t, ndim, shape, st, t->offset);
    if (view == NULL) {
        return NULL;
    }
    PfTensor *c = pf_tensor_copy_as(view, dt, op);
    Py_DECREF(view);
    return c;
}

/* ValueError unless `w` broadcasts to `shape` without enlarging it */
static int check_broadcasts_to(const PfTensor *w, const int64_t *shape, int ndim, const char *op,
                               const char *what)
{
    int ok = w->ndim <= ndim;
    for (int d = 0; ok && d < w->ndim; d++) {
        int64_t a = w->shape[d], b = shape[ndim - w->ndim + d];
        ok = a == b || a == 1;
    }
    if (!ok) {
        char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
        return PF_ERRI(PyExc_ValueError, "%s: %s of shape %s does not broadcast to the input "
                       "shape %s", op, what, pf_shape_str(w->shape, w->ndim, a, sizeof(a)),
                       pf_shape_str(shape, ndim, b, sizeof(b)));
    }
    return 0;
}

/* y (compute dtype) as the result in dtype `res`; steals y */
static PyObject *as_result(PfTensor *y, pf_dtype res, const char *op)
{
    if (y == NULL || y->dtype == res) {
        return (PyObject *)y;
    }
    PfTensor *r = pf_tensor_copy_as(y, res, op);
    Py_DECREF(y);
    return (PyObject *)r;
}

/* a 0-d tensor of dtype res holding v */
static PyObject *scalar_result(double v, pf_dtype res, const char *op)
{
    return (PyObject *)pf_nn_from_doubles(&v, 0, NULL, res, op);
}

/* ------------------------------------------------------------ argument names */

const char *const pf_nn_args_layer_norm[] = {"input", "normalized_shape", "weight", "bias",
                                             "eps", NULL};
const char *const pf_nn_args_rms_norm[] = {"input", "normalized_shape", "weight", "eps", NULL};
const char *const pf_nn_args_group_norm[] = {"input", "num_groups", "weight", "bias", "eps",
                                             NULL};
const char *const pf_nn_args_batch_norm[] = {"input", "running_mean", "running_var", "weight",
                                             "bias", "training", "momentum", "eps", "axis",
                                             NULL};
const char *const pf_nn_args_cross_entropy[] = {"input", "target", "weight", "ignore_index",
                                                "reduction", "label_smoothing", NULL};
const char *const pf_nn_args_nll_loss[] = {"input", "target", "weight", "ignore_index",
                                           "reduction", NULL};
const char *const pf_nn_args_pointwise_loss[] = {"input", "target", "reduction", NULL};
const char *const pf_nn_args_huber_loss[] = {"input", "target", "reduction", "delta", NULL};
const char *const pf_nn_args_smooth_l1_loss[] = {"input", "target", "reduction", "beta", NULL};
const char *const pf_nn_args_bce[] = {"input", "target", "weight", "reduction", NULL};
const char *const pf_nn_args_bce_logits[] = {"input", "target", "weight", "reduction",
                                             "pos_weight", NULL};
const char *const pf_nn_args_attention[] = {"query", "key", "value", "attn_mask", "is_causal",
                                            "scale", "dropout_p", "seed", "offset", NULL};

/* ------------------------------------------------------------ norms: geometry */

int pf_nn_layer_norm_geom(const PfTensor *x, PyObject *nshape, const char *op,
                          int64_t *norm_shape, int *k, pf_rownorm *P)
{
    int nd;
    if (pf_parse_shape(nshape, op, norm_shape, &nd) < 0) {
        return -1;
    }
    char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
    if (nd == 0) {
        return PF_ERRI(PyExc_ValueError, "%s: normalized_shape is empty; name the trailing "
                       "dimension(s) of the input to normalise over (input shape %s)", op,
                       pf_shape_str(x->shape, x->ndim, a, sizeof(a)));
    }
    int ok = nd <= x->ndim;
    for (int d = 0; ok && d < nd; d++) {
        ok = norm_shape[d] == x->shape[x->ndim - nd + d];
    }
    if (!ok) {
        /* "(3, 4)" -> "(*, 3, 4)" for the expected input shape */
        char e[PF_SHAPE_STRLEN + 4];
        pf_shape_str(norm_shape, nd, b, sizeof(b));
        size_t len = strlen(b) - 2 - (nd == 1);
        snprintf(e, sizeof(e), "(*, %.*s)", (int)len, b + 1);
        return PF_ERRI(PyExc_ValueError, "%s: normalized_shape %s must equal the last %d "
                       "dimension(s) of the input; got input shape %s (expected %s)", op, b, nd,
                       pf_shape_str(x->shape, x->ndim, a, sizeof(a)), e);
    }
    *k = nd;
    P->n = pf_numel(norm_shape, nd);
    P->rows = pf_numel(x->shape, x->ndim - nd);
    P->groups = 1;
    P->nch = P->n;
    P->inner = 1;
    P->rms = 0;
    P->eps = 1e-5;
    return 0;
}

int pf_nn_group_norm_geom(const PfTensor *x, PyObject *groups, const char *op, pf_rownorm *P)
{
    char a[PF_SHAPE_STRLEN];
    int64_t G;
    if (x->ndim < 2) {
        return PF_ERRI(PyExc_ValueError, "%s: input must have at least 2 dimensions (N, C, *); "
                       "got shape %s", op, pf_shape_str(x->shape, x->ndim, a, sizeof(a)));
    }
    if (pf_int_arg(groups, op, "num_groups", &G) < 0) {
        return -1;
    }
    int64_t C = x->shape[1];
    if (G < 1) {
        return PF_ERRI(PyExc_ValueError, "%s: num_groups must be a positive integer; got %lld",
                       op, (long long)G);
    }
    if (C % G != 0) {
        return PF_ERRI(PyExc_ValueError, "%s: the %lld channels of input shape %s do not divide "
                       "into num_groups=%lld groups; pick a num_groups that divides %lld", op,
                       (long long)C, pf_shape_str(x->shape, x->ndim, a, sizeof(a)),
                       (long long)G, (long long)C);
    }
    int64_t S = pf_numel(x->shape + 2, x->ndim - 2);
    P->rows = x->shape[0] * G;
    P->groups = G;
    P->nch = C / G;
    P->inner = S;
    P->n = P->nch * S;
    P->rms = 0;
    P->eps = 1e-5;
    return 0;
}

int pf_nn_rms_eps(PyObject *o, pf_dtype d, const char *op, double *eps)
{
    if (o != NULL && o != Py_None) {
        return pf_double_arg(o, op, "eps", eps);
    }
    /* PyTorch's default: the machine epsilon of the input's dtype */
    *eps = d == PF_FLOAT64 ? DBL_EPSILON : d == PF_FLOAT32 ? (double)FLT_EPSILON
           : d == PF_FLOAT16 ? 0.0009765625 : 0.0078125;
    return 0;
}

int pf_nn_batch_norm_geom(const PfTensor *x, PyObject *axis, const char *op, pf_bn_geom *G,
                          int *ax)
{
    char a[PF_SHAPE_STRLEN];
    if (x->ndim < 2) {
        return PF_ERRI(PyExc_ValueError, "%s: input must have at least 2 dimensions (N, C, *) or "
                       "(N, *, C) with axis=-1; got shape %s", op,
                       pf_shape_str(x->shape, x->ndim, a, sizeof(a)));
    }
    int64_t av = 1;
    if (axis != NULL && axis != Py_None && pf_int_arg(axis, op, "axis", &av) < 0) {
        return -1;
    }
    Py_ssize_t at = (Py_ssize_t)av;
    if (pf_normalize_axis(&at, x->ndim, op) < 0) {
        return -1;
    }
    *ax = (int)at;
    G->outer = pf_numel(x->shape, *ax);
    G->C = x->shape[*ax];
    G->inner = pf_numel(x->shape + *ax + 1, x->ndim - *ax - 1);
    return 0;
}

/* ------------------------------------------------------------ norms: bindings */

typedef enum { NORM_LAYER, NORM_RMS, NORM_GROUP } norm_kind;
/*
 * rms_norm or group_norm on a CUDA device (or the host self-test): x in its
 * own dtype, made contiguous on its device when it is not; the weight and
 * bias read in theirs.  The result is new, on x's device.
 */
static PyObject *rownorm_cuda(const char *op, const pf_rownorm *P, PfTensor *x, PfTensor *w,
                              PfTensor *b, int device, const PfCudaLib *lib)
{
    PfTensor *xc = NULL, *wc = NULL, *bc = NULL, *y = NULL;
    PyObject *res = NULL;
    if ((xc = pf_nn_contig(x, x->dtype, op)) == NULL ||
        (w != NULL && (wc = pf_nn_contig(w, w->dtype, op)) == NULL) ||
        (b != NULL && (bc = pf_nn_contig(b, b->dtype, op)) == NULL) ||
        (y = pf_tensor_empty(x->ndim, x->shape, x->dtype, x->storage->device, op)) == NULL) {
        goto done;
    }
    PfCudaRowNorm R = {P->rows, P->n, P->groups, P->nch, P->inner, P->eps, P->rms};
    PfCudaVec wv = pf_nn_cuda_vec(wc), bv = pf_nn_cuda_vec(bc);
    int status = lib->rownorm(device, (int)x->dtype, &R, pf_tensor_data(xc), &wv, &bv,
                              pf_tensor_data(y));
    if (status != 0) {
        pf_cuda_raise(lib, op, status);
        goto done;
    }
    res = (PyObject *)y;
    y = NULL;
done:
    Py_XDECREF(xc);
    Py_XDECREF(wc);
    Py_XDECREF(bc);
    Py_XDECREF(y);
    return res;
}


int pf_layer_norm_cuda(PfTensor *x, PfTensor *w, PfTensor *b, PfTensor *y, int64_t rows,
                       int64_t n, double eps, const char *op)
{
    const PfCudaLib *lib = pf_cuda_lib(op);
    if (lib == NULL) {
        return -1;
    }
    int status = lib->layer_norm(x->storage->device.index, pf_tensor_data(x),
                                 w != NULL ? pf_tensor_data(w) : NULL,
                                 b != NULL ? pf_tensor_data(b) : NULL, pf_tensor_data(y), rows, n,
                                 eps, x->dtype == PF_FLOAT64);
    return status == 0 ? 0 : pf_cuda_raise(lib, op, status);
}

int pf_layer_norm_bwd_cuda(PfTensor *g, PfTensor *x, PfTensor *w, PfTensor *dx, PfTensor *dw,
                           PfTensor *db, int64_t rows, int64_t n, double eps, const char *op)
{
    const PfCudaLib *lib = pf_cuda_lib(op);
    if (lib == NULL) {
        return -1;
    }
    int status = lib->layer_norm_bwd(x->storage->device.index, pf_tensor_data(g),
                                     pf_tensor_data(x), w != NULL ? pf_tensor_data(w) : NULL,
                                     dx != NULL ? pf_tensor_data(dx) : NULL,
                                     dw != NULL ? pf_tensor_data(dw) : NULL,
                                     db != NULL ? pf_tensor_data(db) : NULL, rows, n, eps,
                                     x->dtype == PF_FLOAT64);
    return status == 0 ? 0 : pf_cuda_raise(lib, op, status);
}

/*
 * layer_norm, rms_norm and group_norm: one row kernel (kernels/nn_kernels.c)
 * with the row and affine geometry of each.
 */
static PyObject *rownorm_entry(const char *op, norm_kind kind, PyObject *xo, PyObject *so,
                               PyObject *wo, PyObject *bo, PyObject *eo)
{
    PfTensor *x = NULL, *w = NULL, *b = NULL, *xc = NULL, *wc = NULL, *bc = NULL, *y = NULL;
    PyObject *res = NULL;
    pf_rownorm P;
    int64_t ns[PF_MAX_DIMS];
    int k = 0;
    char s1[PF_SHAPE_STRLEN], s2[PF_SHAPE_STRLEN];
    if ((x = pf_nn_tensor(xo, op)) == NULL || pf_nn_need_float(x, op, "input") < 0) {
        goto done;
    }
    if ((kind == NORM_GROUP ? pf_nn_group_norm_geom(x, so, op, &P)
                            : pf_nn_layer_norm_geom(x, so, op, ns, &k, &P)) < 0) {
        goto done;
    }
    P.rms = kind == NORM_RMS;
    if ((kind == NORM_RMS ? pf_nn_rms_eps(eo, x->dtype, op, &P.eps)
                          : opt_double(eo, op, "eps", 1e-5, &P.eps)) < 0 ||
        opt_tensor(wo, op, &w) < 0 || opt_tensor(bo, op, &b) < 0) {
        goto done;
    }
    PfTensor *aff[2] = {w, b};
    const char *names[2] = {"weight", "bias"};
    for (int i = 0; i < 2; i++) {
        if (aff[i] == NULL) {
            continue;
        }
        if (kind == NORM_GROUP) {
            if (pf_nn_need_vector(aff[i], x->shape[1], op, names[i], "channel") < 0) {
                goto done;
            }
        }
        else if (pf_nn_need_float(aff[i], op, names[i]) < 0) {
            goto done;
        }
        else if (aff[i]->ndim != k ||
                 memcmp(aff[i]->shape, ns, sizeof(int64_t) * (size_t)k) != 0) {
            PyErr_Format(PyExc_ValueError, "%s: %s must have the normalized shape %s; got "
                         "shape %s", op, names[i], pf_shape_str(ns, k, s1, sizeof(s1)),
                         pf_shape_str(aff[i]->shape, aff[i]->ndim, s2, sizeof(s2)));
            goto done;
        }
    }
    if (kind != NORM_LAYER) {
        PfTensor *ts[3] = {x, w, b};
        const PfCudaLib *lib = NULL;
        int where = pf_nn_cuda_route(op, ts, 3, &lib);
        if (where != PF_NN_ON_CPU) {
            res = where == PF_NN_ROUTE_ERROR ? NULL : rownorm_cuda(op, &P, x, w, b, where, lib);
            goto done;
        }
    }
    pf_dtype comp = pf_nn_comp(x->dtype);
    if ((xc = pf_nn_contig(x, comp, op)) == NULL ||
        (w != NULL && (wc = pf_nn_contig(w, comp, op)) == NULL) ||
        (b != NULL && (bc = pf_nn_contig(b, comp, op)) == NULL) ||
        (y = pf_tensor_empty(x->ndim, x->shape, comp, x->storage->device, op)) == NULL) {
        goto done;
    }
    if (!pf_tensor_on_cpu(x)) {
        /* layer_norm (the one row of the three with G): the library's kernel */
        if (pf_layer_norm_cuda(xc, wc, bc, y, P.rows, P.n, P.eps, op) < 0) {
            goto done;
        }
        res = as_result(y, x->dtype, op);
        y = NULL;
        goto done;
    }
    pf_rownorm_fwd(&P, comp, pf_tensor_data(xc), wc ? pf_tensor_data(wc) : NULL,
                   bc ? pf_tensor_data(bc) : NULL, pf_tensor_data(y));
    res = as_result(y, x->dtype, op);
    y = NULL;
done:
    Py_XDECREF(x);
    Py_XDECREF(w);
    Py_XDECREF(b);
    Py_XDECREF(xc);
    Py_XDECREF(wc);
    Py_XDECREF(bc);
    Py_XDECREF(y);
    return res;
}

/* layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5) */
PyObject *pf_op_layer_norm(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
    const char *op = "layer_norm";
    PyObject *v[5];
    if (pf_parse_args(op, args, nargs, kwnames, pf_nn_args_layer_norm, 2, v) < 0) {
        return NULL;
    }
    return rownorm_entry(op, NORM_LAYER, v[0], v[1], v[2], v[3], v[4]);
}

/* rms_norm(input, normalized_shape, weight=None, eps=None): eps None is the dtype's epsilon */
PyObject *pf_op_rms_norm(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames)
{
    const char *op = "rms_norm";
    PyObject *v[4];
    if (pf_parse_args(op, args, nargs, kwnames, pf_nn_args_rms_norm, 2, v) < 0) {
        return NULL;
    }
    return rownorm_entry(op, NORM_RMS, v[0], v[1], v[2], NULL, v[3]);
}

/* group_norm(input, num_groups, weight=None, bias=None, eps=1e-5) on (N, C, *) */
PyObject *pf_op_group_norm(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
    const char *op = "group_norm";
    PyObject *v[5];
    if (pf_parse_args(op, args, nargs, kwnames, pf_nn_args_group_norm, 2, v) < 0) {
        return NULL;
    }
    return rownorm_entry(op, NORM_GROUP, v[0], v[1], v[2], v[3], v[4]);
}

/*
 * batch_norm on a CUDA device (or the host self-test): x in its own dtype
 * (made contiguous on its device when it is not), the vectors read and the
 * running buffers written in place in theirs.
 */
static PyObject *batch_norm_cuda(const char *op, const pf_bn_geom *G, PfTensor *x, PfTensor *rm,
                                 PfTensor *rv, PfTensor *w, PfTensor *b, int training,
                                 double momentum, double eps, int device, const PfCudaLib *lib)
{
    PfTensor *xc = NULL, *y = NULL;
    PyObject *res = NULL;
    if ((xc = pf_nn_contig(x, x->dtype, op)) == NULL ||
        (y = pf_tensor_empty(x->ndim, x->shape, x->dtype, x->storage->device, op)) == NULL) {
        goto done;
    }
    PfCudaBatchNorm B = {G->outer, G->C, G->inner, training, momentum, eps};
    PfCudaVec vm = pf_nn_cuda_vec(rm), vv = pf_nn_cuda_vec(rv), vw = pf_nn_cuda_vec(w),
              vb = pf_nn_cuda_vec(b);
    int status = lib->batch_norm(device, (int)x->dtype, &B, pf_tensor_data(xc),
                                 pf_tensor_data(y), &vm, &vv, &vw, &vb);
    if (status != 0) {
        pf_cuda_raise(lib, op, status);
        goto done;
    }
    if (training && rm != NULL) {
        rm->storage->version++;
        rv->storage->version++;
    }
    res = (PyObject *)y;
    y = NULL;
done:
    Py_XDECREF(xc);
    Py_XDECREF(y);
    return res;
}

/*
 * batch_norm(input, running_mean, running_var, weight=None, bias=None,
 * training=False, momentum=0.1, eps=1e-5, axis=1).  Training normalises
 * with the batch's mean and biased variance and, when running buffers are
 * given, updates them in place with the unbiased variance (PyTorch's
 * rule): r = (1 - momentum) r + momentum * stat.  Eval uses the running
 * statistics.  The buffers never take part in autograd.
 */
PyObject *pf_op_batch_norm(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
    const char *op = "batch_norm";
    PyObject *v[9];
    if (pf_parse_args(op, args, nargs, kwnames, pf_nn_args_batch_norm, 1, v) < 0) {
        return NULL;
    }
    PfTensor *x = NULL, *rm = NULL, *rv = NULL, *w = NULL, *b = NULL, *xc = NULL, *y = NULL;
    PyObject *res = NULL;
    double *buf = NULL;
    char s1[PF_SHAPE_STRLEN];
    pf_bn_geom G;
    int ax, training;
    double momentum, eps;
    if ((x = pf_nn_tensor(v[0], op)) == NULL || pf_nn_need_float(x, op, "input") < 0 ||
        pf_nn_batch_norm_geom(x, v[8], op, &G, &ax) < 0 ||
        opt_tensor(v[1], op, &rm) < 0 || opt_tensor(v[2], op, &rv) < 0 ||
        opt_tensor(v[3], op, &w) < 0 || opt_tensor(v[4], op, &b) < 0 ||
        pf_parse_bool(v[5], op, "training", 0, &training) < 0 ||
        opt_double(v[6], op, "momentum", 0.1, &momentum) < 0 ||
        opt_double(v[7], op, "eps", 1e-5, &eps) < 0) {
        goto done;
    }
    int64_t C = G.C, count = G.outer * G.inner;
    if ((rm == NULL) != (rv == NULL)) {
        PyErr_Format(PyExc_ValueError, "%s: pass both running_mean and running_var, or neither "
                     "(got only %s)", op, rm != NULL ? "running_mean" : "running_var");
        goto done;
    }
    if (!training && rm == NULL) {
        PyErr_Format(PyExc_ValueError, "%s: running_mean and running_var are needed in eval "
                     "mode (training=False); pass them, or training=True to normalise with "
                     "the batch's statistics", op);
        goto done;
    }
    PfTensor *vecs[4] = {rm, rv, w, b};
    const char *vnames[4] = {"running_mean", "running_var", "weight", "bias"};
    for (int i = 0; i < 4; i++) {
        if (vecs[i] != NULL && pf_nn_need_vector(vecs[i], C, op, vnames[i], "channel") < 0) {
            goto done;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (vecs[i] != NULL && vecs[i]->requires_grad) {
            PyErr_Format(PyExc_ValueError, "%s: %s requires grad, but running statistics are "
                         "buffers updated in place outside autograd; pass a tensor without "
                         "requires_grad (detach() it)", op, vnames[i]);
            goto done;
        }
        if (vecs[i] != NULL && training && pf_tensor_check_writable(vecs[i], op) < 0) {
            goto done;
        }
    }
    if (training && count <= 1) {
        PyErr_Format(PyExc_ValueError, "%s: expected more than 1 value per channel when "
                     "training; got input shape %s (axis %d); use a bigger batch or "
                     "training=False", op, pf_shape_str(x->shape, x->ndim, s1, sizeof(s1)), ax);
        goto done;
    }
    {
        PfTensor *ts[5] = {x, rm, rv, w, b};
        const PfCudaLib *lib = NULL;
        int where = pf_nn_cuda_route(op, ts, 5, &lib);
        if (where != PF_NN_ON_CPU) {
            res = where == PF_NN_ROUTE_ERROR ? NULL
                  : batch_norm_cuda(op, &G, x, rm, rv, w, b, training, momentum, eps, where, lib);
            goto done;
        }
    }
    pf_dtype comp = pf_nn_comp(x->dtype);
    buf = PyMem_Malloc(sizeof(double) * (size_t)(4 * (C > 0 ? C : 1)));
    if (buf == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    double *mean = buf, *var = buf + C, *A = buf + 2 * C, *D = buf + 3 * C;
    if ((xc = pf_nn_contig(x, comp, op)) == NULL ||
        (y = pf_tensor_empty(x->ndim, x->shape, comp, CPU, op)) == NULL) {
        goto done;
    }
    if (training) {
        if (pf_bn_stats(&G, comp, pf_tensor_data(xc), mean, var) < 0) {
            goto done;
        }
    }
    else {
        read_vector(rm, mean);
        read_vector(rv, var);
    }
    if (w != NULL) {
        read_vector(w, A);
    }
    if (b != NULL) {
        read_vector(b, D);
    }
    for (int64_t c = 0; c < C; c++) {
        A[c] = (w != NULL ? A[c] : 1.0) / sqrt(var[c] + eps);
        D[c] = b != NULL ? D[c] : 0.0;
    }
    if (pf_bn_map(&G, comp, pf_tensor_data(xc), mean, A, NULL, NULL, NULL, D,
                  pf_tensor_data(y)) < 0) {
        goto done;
    }
    if (training && rm != NULL) {
        /* A and D are free again: they take the updated buffers */
        read_vector(rm, A);
        read_vector(rv, D);
        double unbias = (double)count / (double)(count - 1);
        for (int64_t c = 0; c < C; c++) {
            A[c] = (1.0 - momentum) * A[c] + momentum * mean[c];
            D[c] = (1.0 - momentum) * D[c] + momentum * var[c] * unbias;
        }
        write_vector(rm, A);
        write_vector(rv, D);
        rm->storage->version++;
        rv->storage->version++;
    }
    res = as_result(y, x->dtype, op);
    y = NULL;
done:
    PyMem_Free(buf);
    Py_XDECREF(x);
    Py_XDECREF(rm);
    Py_XDECREF(rv);
    Py_XDECREF(w);
    Py_XDECREF(b);
    Py_XDECREF(xc);
    Py_XDECREF(y);
    return res;
}

/* ------------------------------------------------------------ cross-entropy, nll */

int pf_nn_ce_geom(const PfTensor *x, const PfTensor *t, int allow_probs, const char *op,
                  pf_nn_ce *g)
{
    char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN], c[PF_SHAPE_STRLEN];
    if (x->ndim == 0) {
        return PF_ERRI(PyExc_ValueError, "%s: input must have a class dimension, (C,) or (N, C, "
                       "d1, ...); got a 0-d tensor", op);
    }
    g->unbatched = x->ndim == 1;
    g->N = g->unbatched ? 1 : x->shape[0];
    g->C = x->shape[g->unbatched ? 0 : 1];
    g->K = g->unbatched ? 1 : pf_numel(x->shape + 2, x->ndim - 2);
    g->probs = allow_probs && pf_is_float(t->dtype);
    if (g->probs) {
        if (t->ndim != x->ndim ||
            memcmp(t->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim) != 0) {
            return PF_ERRI(PyExc_ValueError, "%s: a floating-point target holds class "
                           "probabilities and must have the input's shape %s; got %s (class "
                           "indices must be an integer tensor)", op,
                           pf_shape_str(x->shape, x->ndim, a, sizeof(a)),
                           pf_shape_str(t->shape, t->ndim, b, sizeof(b)));
        }
        return 0;
    }
    if (!pf_is_int(t->dtype)) {
        return PF_ERRI(PyExc_TypeError, "%s: target must hold integer class indices%s; got "
                       "dtype %s", op, allow_probs ? " (or class probabilities of the input's "
                       "shape)" : "", pf_dtypes[t->dtype].name);
    }
    /* the index shape: the input's without the class dimension */
    int64_t want[PF_MAX_DIMS];
    int nw = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d != (g->unbatched ? 0 : 1)) {
            want[nw++] = x->shape[d];
        }
    }
    if (t->ndim != nw || memcmp(t->shape, want, sizeof(int64_t) * (size_t)nw) != 0) {
        return PF_ERRI(PyExc_ValueError, "%s: target shape %s does not match input shape %s; "
                       "class indices need shape %s", op,
                       pf_shape_str(t->shape, t->ndim, a, sizeof(a)),
                       pf_shape_str(x->shape, x->ndim, b, sizeof(b)),
                       pf_shape_str(want, nw, c, sizeof(c)));
    }
    return 0;
}

PfTensor *pf_nn_class_rows(PfTensor *x, const pf_nn_ce *g, pf_dtype dt, const char *op)
{
    if (g->K == 1) {
        return pf_nn_contig(x, dt, op);
    }
    /* (N, C, d...) viewed as (N, d..., C): the copy puts each position's classes together */
    int64_t shape[PF_MAX_DIMS], st[PF_MAX_DIMS];
    int nd = x->ndim;
    shape[0] = x->shape[0];
    st[0] = x->strides[0];
    for (int d = 2; d < nd; d++) {
        shape[d - 1] = x->shape[d];
        st[d - 1] = x->strides[d];
    }
    shape[nd - 1] = x->shape[1];
    st[nd - 1] = x->strides[1];
    PfTensor *view = pf_tensor_view(x, nd, shape, st, x->offset);
    if (view == NULL) {
        return NULL;
    }
    PfTensor *c = pf_tensor_copy_as(view, dt, op);
    Py_DECREF(view);
    return c;
}

PfTensor *pf_nn_class_unrows(PfTensor *rows, const PfTensor *like, const pf_nn_ce *g)
{
    int64_t st[PF_MAX_DIMS];
    int nd = like->ndim;
    if (g->unbatched) {
        st[0] = 1;
    }
    else {
        /* strides of the (N, d..., C) layout, put in the order of (N, C, d...) */
        int64_t acc = g->C;
        for (int d = nd - 1; d >= 2; d--) {
            st[d] = acc;
            acc *= like->shape[d];
        }
        st[0] = acc;
        st[1] = 1;
    }
    return pf_tensor_view(rows, nd, like->shape, st, rows->offset);
}

PfTensor *pf_nn_class_targets(PfTensor *t, const pf_nn_ce *g, int64_t ignore, const char *op)
{
    PfTensor *ti = pf_nn_contig(t, PF_INT64, op);
    if (ti == NULL) {
        return NULL;
    }
    const int64_t *p = (const int64_t *)pf_tensor_data(ti);
    int64_t n = g->N * g->K;
    for (int64_t i = 0; i < n; i++) {
        if (p[i] != ignore && (p[i] < 0 || p[i] >= g->C)) {
            PyErr_Format(PyExc_IndexError, "%s: target %lld is out of range for %lld classes; "
                         "class indices must be in [0, %lld) or equal ignore_index (%lld)", op,
                         (long long)p[i], (long long)g->C, (long long)g->C, (long long)ignore);
            Py_DECREF(ti);
            return NULL;
        }
    }
    return ti;
}

/* the per-row losses reduced: none (the target's shape), mean over `den`, or sum */
static PyObject *reduce_rows(const double *loss, const double *wrow, int64_t rows,
                             pf_nn_red red, const PfTensor *x, const pf_nn_ce *g, int by_weight,
                             pf_dtype res, const char *op)
{
    if (red == PF_RED_NONE) {
        int64_t shape[PF_MAX_DIMS];
        int nd = 0;
        for (int d = 0; d < x->ndim; d++) {
            if (d != (g->unbatched ? 0 : 1)) {
                shape[nd++] = x->shape[d];
            }
        }
        return (PyObject *)pf_nn_from_doubles(loss, nd, shape, res, op);
    }
    double s = 0, den = 0;
    for (int64_t r = 0; r < rows; r++) {
        s += loss[r];
        den += by_weight ? wrow[r] : 1.0;
    }
    return scalar_result(red == PF_RED_MEAN ? s / den : s, res, op);
}

/* cross_entropy and nll_loss share their parsing; is_nll picks the kernel */
static PyObject *class_loss_entry(const char *op, int is_nll, PyObject *const *v)
{
    PfTensor *x = NULL, *t = NULL, *w = NULL, *xr = NULL, *tr = NULL, *wc = NULL;
    PyObject *res = NULL;
    double *buf = NULL;
    pf_nn_ce g;
    pf_nn_red red;
    int64_t ignore = -100;
    double smoothing = 0;
    if ((x = pf_nn_tensor(v[0], op)) == NULL || pf_nn_need_float(x, op, "input") < 0 ||
        (t = pf_nn_tensor(v[1], op)) == NULL || pf_nn_ce_geom(x, t, !is_nll, op, &g) < 0 ||
        opt_tensor(v[2], op, &w) < 0 ||
        (v[3] != NULL && pf_int_arg(v[3], op, "ignore_index", &ignore) < 0) ||
        pf_nn_reduction(v[4], op, &red) < 0 ||
        (!is_nll && opt_double(v[5], op, "label_smoothing", 0.0, &smoothing) < 0)) {
        goto done;
    }
    if (!(smoothing >= 0.0 && smoothing <= 1.0)) {
        char s[32];
        PyErr_Format(PyExc_ValueError, "%s: label_smoothing must be in [0, 1]; got %s", op,
                     pf_fmt_double(smoothing, s, sizeof(s)));
        goto done;
    }
    if (w != NULL && pf_nn_need_vector(w, g.C, op, "weight", "class") < 0) {
        goto done;
    }
    if (!pf_tensor_on_cpu(x) || !pf_tensor_on_cpu(t)) {
        res = pf_nn_class_loss_cuda(op, is_nll, x, t, w, &g, ignore, smoothing, red);
        goto done;
    }
    pf_dtype comp = pf_nn_comp(x->dtype);
    int64_t rows = g.N * g.K;
    if ((xr = pf_nn_class_rows(x, &g, comp, op)) == NULL ||
        (tr = g.probs ? pf_nn_class_rows(t, &g, comp, op)
                      : pf_nn_class_targets(t, &g, ignore, op)) == NULL ||
        (w != NULL && (wc = pf_nn_contig(w, comp, op)) == NULL)) {
        goto done;
    }
    buf = PyMem_Malloc(sizeof(double) * (size_t)(2 * (rows > 0 ? rows : 1)));
    if (buf == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    pf_xent P = {rows, g.C, g.probs ? NULL : (const int64_t *)pf_tensor_data(tr),
                 g.probs ? pf_tensor_data(tr) : NULL, wc ? pf_tensor_data(wc) : NULL, ignore,
                 smoothing};
    if (is_nll) {
        pf_nll_fwd(&P, comp, pf_tensor_data(xr), buf, buf + rows);
    }
    else if (pf_xent_fwd(&P, comp, pf_tensor_data(xr), buf, buf + rows) < 0) {
        goto done;
    }
    res = reduce_rows(buf, buf + rows, rows, red, x, &g, !g.probs, x->dtype, op);
done:
    PyMem_Free(buf);
    Py_XDECREF(x);
    Py_XDECREF(t);
    Py_XDECREF(w);
    Py_XDECREF(xr);
    Py_XDECREF(tr);
    Py_XDECREF(wc);
    return res;
}

/*
 * cross_entropy(input, target, weight=None, ignore_index=-100,
 * reduction="mean", label_smoothing=0.0): log-softmax over axis 1 and the
 * negative log-likelihood, fused (one row kernel).  With class indices and
 * reduction="mean" the sum is divided by the summed weights of the
 * targets that are not ignored (PyTorch); with probabilities by the number
 * of rows.
 */
PyObject *pf_op_cross_entropy(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames)
{
    const char *op = "cross_entropy";
    PyObject *v[6];
    if (pf_parse_args(op, args, nargs, kwnames, pf_nn_args_cross_entropy, 2, v) < 0) {
        return NULL;
    }
    return class_loss_entry(op, 0, v);
}

/* nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean") on log-probabilities */
PyObject *pf_op_nll_loss(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames)
{
    const char *op = "nll_loss";
    PyObject *v[6] = {NULL};
    if (pf_parse_args(op, args, nargs, kwnames, pf_nn_args_nll_loss, 2, v) < 0) {
        return NULL;
    }
    return class_loss_entry(op, 1, v);
}

/* ------------------------------------------------ elementwise losses */

/*
 * mse_loss, l1_loss, huber_loss, smooth_l1_loss: input and target
 * broadcast (with a UserWarning when their shapes differ, as PyTorch);
 * the loss is computed in float64 per element and summed in blocks.
 */
static PyObject *pointwise_entry(const char *op, pf_ewloss kind, PyObject *xo, PyObject *to,
                                 PyObject *ro, PyObject *po, const char *pname)
{
    PfTensor *x = NULL, *t = NULL, *xb = NULL, *tb = NULL, *y = NULL;
    PyObject *res = NULL;
    pf_nn_red red;
    double prm = 1.0;
    char s1[PF_SHAPE_STRLEN], s2[PF_SHAPE_STRLEN], s3[PF_SHAPE_STRLEN];
    if ((x = pf_nn_tensor(xo, op)) == NULL || (t = pf_nn_tensor(to, op)) == NULL ||
        pf_nn_reduction(ro, op, &red) < 0 ||
        (pname != NULL && opt_double(po, op, pname, 1.0, &prm) < 0)) {
        goto done;
    }
    if (kind == PF_LOSS_HUBER && !(prm > 0)) {
        PyErr_Format(PyExc_ValueError, "%s: delta must be positive; got %s", op,
                     pf_fmt_double(prm, s1, sizeof(s1)));
        goto done;
    }
    if (kind == PF_LOSS_SMOOTH_L1 && !(prm >= 0)) {
        PyErr_Format(PyExc_ValueError, "%s: beta must be >= 0; got %s", op,
                     pf_fmt_double(prm, s1, sizeof(s1)));
        goto done;
    }
    if (kind == PF_LOSS_SMOOTH_L1 && prm == 0) {
        kind = PF_LOSS_L1;      /* beta 0 is the L1 loss (PyTorch) */
    }
    pf_dtype rdt = pf_promote(x->dtype, t->dtype);
    if (!pf_is_float(rdt)) {
        PyErr_Format(PyExc_TypeError, "%s: input and target must be floating point (at least "
                     "one of them); got dtypes %s and %s", op, pf_dtypes[x->dtype].name,
                     pf_dtypes[t->dtype].name);
        goto done;
    }
    int64_t bs[PF_MAX_DIMS];
    int bnd;
    if (pf_broadcast_shapes(x->shape, x->ndim, t->shape, t->ndim, bs, &bnd, op) < 0) {
        goto done;
    }
    if (x->ndim != t->ndim ||
        memcmp(x->shape, t->shape, sizeof(int64_t) * (size_t)x->ndim) != 0) {
        if (PyErr_WarnFormat(PyExc_UserWarning, 1, "%s: target shape %s differs from input "
                             "shape %s; they are broadcast to %s, which is likely a mistake "
                             "(make their shapes equal)", op,
                             pf_shape_str(t->shape, t->ndim, s1, sizeof(s1)),
                             pf_shape_str(x->shape, x->ndim, s2, sizeof(s2)),
                             pf_shape_str(bs, bnd, s3, sizeof(s3))) < 0) {
            goto done;
        }
    }
    if (!pf_tensor_on_cpu(x) || !pf_tensor_on_cpu(t)) {
        res = pf_nn_pointwise_loss_cuda(op, kind, x, t, red, prm, rdt);
        goto done;
    }
    pf_dtype comp = pf_nn_comp(rdt);
    if ((xb = expand_contig(x, bs, bnd, comp, op)) == NULL ||
        (tb = expand_contig(t, bs, bnd, comp, op)) == NULL) {
        goto done;
    }
    int64_t n = pf_numel(bs, bnd);
    if (red == PF_RED_NONE) {
        if ((y = pf_tensor_empty(bnd, bs, comp, CPU, op)) == NULL) {
            goto done;
        }
        pf_ewloss_run(kind, comp, pf_tensor_data(xb), pf_tensor_data(tb), NULL, NULL, n, prm,
                      pf_tensor_data(y));
        res = as_result(y, rdt, op);
        y = NULL;
        goto done;
    }
    double s = pf_ewloss_run(kind, comp, pf_tensor_data(xb), pf_tensor_data(tb), NULL, NULL, n,
                             prm, NULL);
    res = scalar_result(red == PF_RED_MEAN ? s / (double)n : s, rdt, op);
done:
    Py_XDECREF(x);
    Py_XDECREF(t);
    Py_XDECREF(xb);
    Py_XDECREF(tb);
    Py_XDECREF(y);
    return res;
}

/* mse_loss(input, target, reduction="mean") */
PyObject *pf_op_mse_loss(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames)
{
    PyObject *v[3];
    if (pf_parse_args("mse_loss", args, nargs, kwnames, pf_nn_args_pointwise_loss, 2, v) < 0) {
        return NULL;
    }
    return pointwise_entry("mse_loss", PF_LOSS_MSE, v[0], v[1], v[2], NULL, NULL);
}

/* l1_loss(input, target, reduction="mean") */
PyObject *pf_op_l1_loss(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames)
{
    PyObject *v[3];
    if (pf_parse_args("l1_loss", args, nargs, kwnames, pf_nn_args_pointwise_loss, 2, v) < 0) {
        return NULL;
    }
    return pointwise_entry("l1_loss", PF_LOSS_L1, v[0], v[1], v[2], NULL, NULL);
}

/* huber_loss(input, target, reduction="mean", delta=1.0) */
PyObject *pf_op_huber_loss(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
    PyObject *v[4];
    if (pf_parse_args("huber_loss", args, nargs, kwnames, pf_nn_args_huber_loss, 2, v) < 0) {
        return NULL;
    }
    return pointwise_entry("huber_loss", PF_LOSS_HUBER, v[0], v[1], v[2], v[3], "delta");
}

/* smooth_l1_loss(input, target, reduction="mean", beta=1.0); beta 0 is l1_loss */
PyObject *pf_op_smooth_l1_loss(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames)
{
    PyObject *v[4];
    if (pf_parse_args("smooth_l1_loss", args, nargs, kwnames, pf_nn_args_smooth_l1_loss, 2,
                      v) < 0) {
        return NULL;
    }
    return pointwise_entry("smooth_l1_loss", PF_LOSS_SMOOTH_L1, v[0], v[1], v[2], v[3], "beta");
}

/*
 * binary_cross_entropy(input, target, weight=None, reduction="mean") on
 * probabilities, and binary_cross_entropy_with_logits(input, target,
 * weight=None, reduction="mean", pos_weight=None).  Target has the input's
 * shape (no broadcasting, as PyTorch); weight and pos_weight broadcast to
 * it.  On probabilities each log is clamped at -100 (PyTorch's rule), so
 * p = 0 or 1 gives a finite loss; logits use
 * (1 - t) x + (1 + (pw - 1) t) (max(-x, 0) + log1p(exp(-|x|))), which
 * never overflows.
 */
static PyObject *bce_entry(const char *op, int logits, PyObject *const *v)
{
    PfTensor *x = NULL, *t = NULL, *w = NULL, *pw = NULL, *xc = NULL, *tc = NULL, *wc = NULL,
             *pwc = NULL, *y = NULL;
    PyObject *res = NULL;
    pf_nn_red red;
    char s1[PF_SHAPE_STRLEN], s2[PF_SHAPE_STRLEN];
    if ((x = pf_nn_tensor(v[0], op)) == NULL || pf_nn_need_float(x, op, "input") < 0 ||
        (t = pf_nn_tensor(v[1], op)) == NULL || opt_tensor(v[2], op, &w) < 0 ||
        pf_nn_reduction(v[3], op, &red) < 0 || (logits && opt_tensor(v[4], op, &pw) < 0)) {
        goto done;
    }
    if (t->ndim != x->ndim || memcmp(t->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim)) {
        PyErr_Format(PyExc_ValueError, "%s: target shape %s differs from input shape %s; they "
                     "must be equal", op, pf_shape_str(t->shape, t->ndim, s1, sizeof(s1)),
                     pf_shape_str(x->shape, x->ndim, s2, sizeof(s2)));
        goto done;
    }
    if ((w != NULL && (pf_nn_need_float(w, op, "weight") < 0 ||
                       check_broadcasts_to(w, x->shape, x->ndim, op, "weight") < 0)) ||
        (pw != NULL && (pf_nn_need_float(pw, op, "pos_weight") < 0 ||
                        check_broadcasts_to(pw, x->shape, x->ndim, op, "pos_weight") < 0))) {
        goto done;
    }
    if (!pf_tensor_on_cpu(x) || !pf_tensor_on_cpu(t)) {
        res = pf_nn_bce_cuda(op, logits, x, t, w, pw, red);
        goto done;
    }
    pf_dtype comp = pf_nn_comp(x->dtype);
    if ((xc = pf_nn_contig(x, comp, op)) == NULL || (tc = pf_nn_contig(t, comp, op)) == NULL ||
        (w != NULL && (wc = expand_contig(w, x->shape, x->ndim, comp, op)) == NULL) ||
        (pw != NULL && (pwc = expand_contig(pw, x->shape, x->ndim, comp, op)) == NULL)) {
        goto done;
    }
    int64_t n = pf_numel(x->shape, x->ndim);
    if (!logits) {
        for (int64_t i = 0; i < n; i++) {
            double p = comp == PF_FLOAT64 ? ((const double *)pf_tensor_data(xc))[i]
                                          : ((const float *)pf_tensor_data(xc))[i];
            if (!(p >= 0.0 && p <= 1.0)) {
                PyErr_Format(PyExc_ValueError, "%s: input values must be probabilities in "
                             "[0, 1]; got %s (apply sigmoid first, or use "
                             "binary_cross_entropy_with_logits)", op,
                             pf_fmt_double(p, s1, sizeof(s1)));
                goto done;
            }
        }
    }
    pf_ewloss kind = logits ? PF_LOSS_BCE_LOGITS : PF_LOSS_BCE;
    void *wd = wc ? pf_tensor_data(wc) : NULL, *pd = pwc ? pf_tensor_data(pwc) : NULL;
    if (red == PF_RED_NONE) {
        if ((y = pf_tensor_empty(x->ndim, x->shape, comp, CPU, op)) == NULL) {
            goto done;
        }
        pf_ewloss_run(kind, comp, pf_tensor_data(xc), pf_tensor_data(tc), wd, pd, n, 0,
                      pf_tensor_data(y));
        res = as_result(y, x->dtype, op);
        y = NULL;
        goto done;
    }
    double s = pf_ewloss_run(kind, comp, pf_tensor_data(xc), pf_tensor_data(tc), wd, pd, n, 0,
                             NULL);
    res = scalar_result(red == PF_RED_MEAN ? s / (double)n : s, x->dtype, op);
done:
    Py_XDECREF(x);
    Py_XDECREF(t);
    Py_XDECREF(w);
    Py_XDECREF(pw);
    Py_XDECREF(xc);
    Py_XDECREF(tc);
    Py_XDECREF(wc);
    Py_XDECREF(pwc);
    Py_XDECREF(y);
    return res;
}

PyObject *pf_op_binary_cross_entropy(PyObject *Py_UNUSED(m), PyObject *const *args,
                                     Py_ssize_t nargs, PyObject *kwnames)
{
    const char *op = "binary_cross_entropy";
    PyObject *v[5] = {NULL};
    if (pf_parse_args(op, args, nargs, kwnames, pf_nn_args_bce, 2, v) < 0) {
        return NULL;
    }
    return bce_entry(op, 0, v);
}

PyObject *pf_op_binary_cross_entropy_with_logits(PyObject *Py_UNUSED(m), PyObject *const *args,
                                                 Py_ssize_t nargs, PyObject *kwnames)
{
    const char *op = "binary_cross_entropy_with_logits";
    PyObject *v[5];
    if (pf_parse_args(op, args, nargs, kwnames, pf_nn_args_bce_logits, 2, v) < 0) {
        return NULL;
    }
    return bce_entry(op, 1, v);
}

/* ------------------------------------------------------------ dropout */

/*
 * dropout(input, p=0.5, training=True, inplace=False): a composite row.
 * The mask (1 / (1 - p) where the draw's uniform is >= p, else 0) comes
 * from the Philox generator -- the same seed gives the same mask on any
 * thread count, and equals pf.rand(shape) >= p drawn from the same state
 * -- and the result is input * mask through the multiply op, which
 * records under autograd and saves the mask for the backward pass.
 * p == 0 or training=False return the input itself (no copy).
 */
PyObject *pf_op_dropout(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames)
{
    const char *op = "dropout";
    static const char *const names[] = {"input", "p", "training", "inplace", NULL};
    PyObject *v[4];
    double p = 0.5;
    int training, inplace;
    char s[32];
    if (pf_parse_args(op, args, nargs, kwnames, names, 1, v) < 0 ||
        opt_double(v[1], op, "p", 0.5, &p) < 0 ||
        pf_parse_bool(v[2], op, "training", 1, &training) < 0 ||
        pf_parse_bool(v[3], op, "inplace", 0, &inplace) < 0) {
        return NULL;
    }
    if (!(p >= 0.0 && p <= 1.0)) {
        return PF_ERR(PyExc_ValueError, "%s: p must be a probability in [0, 1]; got %s", op,
                      pf_fmt_double(p, s, sizeof(s)));
    }
    if (inplace) {
        return PF_ERR(PyExc_ValueError, "%s: inplace=True is not supported; use the returned "
                      "tensor (x = dropout(x, p))", op);
    }
    PfTensor *x = pf_nn_tensor(v[0], op), *mask = NULL;
    PyObject *res = NULL;
    if (x == NULL || pf_nn_need_float(x, op, "input") < 0) {
        goto done;
    }
    if (!training || p == 0.0) {
        res = Py_NewRef(x);
        goto done;
    }
    int64_t n = pf_numel(x->shape, x->ndim);
    if (!pf_tensor_on_cpu(x)) {
        /* the mask drawn on the device (the cpu's numbers: kernels/philox.h), in x's dtype */
        if ((mask = pf_dropout_mask_cuda(x, p, op)) == NULL) {
            goto done;
        }
        PyObject *in[2] = {(PyObject *)x, (PyObject *)mask};
        res = pf_elementwise_as(PF_OP_MUL, in, NULL, NULL, op);
        goto done;
    }
    pf_dtype comp = pf_nn_comp(x->dtype);
    if ((mask = pf_tensor_empty(x->ndim, x->shape, comp, CPU, op)) == NULL) {
        goto done;
    }
    if (p == 1.0) {
        memset(pf_tensor_data(mask), 0, (size_t)n * pf_dtypes[comp].itemsize);
    }
    else {
        uint64_t seed = pf_random_seed(), offset = pf_random_next_offset((uint64_t)n);
        pf_dropout_mask(comp, pf_tensor_data(mask), n, p, seed, offset);
    }
    if (comp != x->dtype) {
        Py_SETREF(mask, pf_tensor_copy_as(mask, x->dtype, op));
        if (mask == NULL) {
            goto done;
        }
    }
    PyObject *in[2] = {(PyObject *)x, (PyObject *)mask};
    res = pf_elementwise_as(PF_OP_MUL, in, NULL, NULL, op);
done:
    Py_XDECREF(x);
    Py_XDECREF(mask);
    return res;
}

/* ------------------------------------------------------------ attention */

/* seed= and offset= of _attention: a Philox state, taken modulo 2^64 */
static int attn_seed_arg(PyObject *o, const char *op, const char *what, uint64_t *out)
{
    *out = 0;
    if (o == NULL || o == Py_None) {
        return 0;
    }
    if (!PyLong_Check(o)) {
        return PF_ERRI(PyExc_TypeError, "%s: %s must be an int; got %.100s", op, what,
                       Py_TYPE(o)->tp_name);
    }
    *out = PyLong_AsUnsignedLongLongMask(o);
    return PyErr_Occurred() ? -1 : 0;
}

int pf_nn_attn_parse(PyObject **v, const char *op, pf_nn_attn *A, PfTensor **q, PfTensor **k,
                     PfTensor **val, PfTensor **mask)
{
    char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN], c[PF_SHAPE_STRLEN];
    *q = *k = *val = *mask = NULL;
    if ((*q = pf_nn_tensor(v[0], op)) == NULL || (*k = pf_nn_tensor(v[1], op)) == NULL ||
        (*val = pf_nn_tensor(v[2], op)) == NULL || opt_tensor(v[3], op, mask) < 0 ||
        pf_nn_need_float(*q, op, "query") < 0 || pf_nn_need_float(*k, op, "key") < 0 ||
        pf_nn_need_float(*val, op, "value") < 0) {
        goto fail;
    }
    PfTensor *Q = *q, *K = *k, *V = *val, *M = *mask;
    if (Q->dtype != K->dtype || Q->dtype != V->dtype) {
        PyErr_Format(PyExc_TypeError, "%s: query, key and value must have the same dtype; got "
                     "%s, %s and %s", op, pf_dtypes[Q->dtype].name, pf_dtypes[K->dtype].name,
                     pf_dtypes[V->dtype].name);
        goto fail;
    }
    pf_shape_str(Q->shape, Q->ndim, a, sizeof(a));
    pf_shape_str(K->shape, K->ndim, b, sizeof(b));
    pf_shape_str(V->shape, V->ndim, c, sizeof(c));
    if (Q->ndim < 2 || K->ndim < 2 || V->ndim < 2) {
        PyErr_Format(PyExc_ValueError, "%s: query, key and value need at least 2 dimensions "
                     "(..., L, E), (..., S, E), (..., S, Ev); got shapes %s, %s and %s", op, a,
                     b, c);
        goto fail;
    }
    A->L = Q->shape[Q->ndim - 2];
    A->E = Q->shape[Q->ndim - 1];
    A->S = K->shape[K->ndim - 2];
    A->Ev = V->shape[V->ndim - 1];
    if (K->shape[K->ndim - 1] != A->E) {
        PyErr_Format(PyExc_ValueError, "%s: query and key must have the same last dimension "
                     "(E); got shapes %s and %s", op, a, b);
        goto fail;
    }
    if (V->shape[V->ndim - 2] != A->S) {
        PyErr_Format(PyExc_ValueError, "%s: key and value must have the same number of "
                     "positions S (dimension -2); got shapes %s and %s", op, b, c);
        goto fail;
    }
    int64_t t1[PF_MAX_DIMS];
    int n1;
    if (pf_broadcast_shapes(Q->shape, Q->ndim - 2, K->shape, K->ndim - 2, t1, &n1, op) < 0 ||
        pf_broadcast_shapes(t1, n1, V->shape, V->ndim - 2, A->bshape, &A->nbd, op) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s: the batch dimensions (all but the last two) of "
                     "query %s, key %s and value %s do not broadcast together", op, a, b, c);
        goto fail;
    }
    if (A->nbd > PF_MAX_DIMS - 2) {
        PyErr_Format(PyExc_ValueError, "%s: at most %d batch dimensions are supported; got %d",
                     op, PF_MAX_DIMS - 2, A->nbd);
        goto fail;
    }
    A->nb = pf_numel(A->bshape, A->nbd);
    int causal = 0;
    if (pf_parse_bool(v[4], op, "is_causal", 0, &causal) < 0) {
        goto fail;
    }
    A->causal = causal;
    A->scale = 1.0 / sqrt((double)A->E);
    if (v[5] != NULL && v[5] != Py_None && pf_double_arg(v[5], op, "scale", &A->scale) < 0) {
        goto fail;
    }
    if (opt_double(v[6], op, "dropout_p", 0.0, &A->dropout_p) < 0 ||
        attn_seed_arg(v[7], op, "seed", &A->seed) < 0 ||
        attn_seed_arg(v[8], op, "offset", &A->offset) < 0) {
        goto fail;
    }
    if (!(A->dropout_p >= 0.0 && A->dropout_p <= 1.0)) {
        char s[32];
        PyErr_Format(PyExc_ValueError, "%s: dropout_p must be a probability in [0, 1]; got %s",
                     op, pf_fmt_double(A->dropout_p, s, sizeof(s)));
        goto fail;
    }
    if (M != NULL) {
        if (causal) {
            PyErr_Format(PyExc_ValueError, "%s: pass either attn_mask or is_causal=True, not "
                         "both", op);
            goto fail;
        }
        if (M->dtype != PF_BOOL && !pf_is_float(M->dtype)) {
            PyErr_Format(PyExc_TypeError, "%s: attn_mask must be bool (True = attend) or "
                         "floating point (added to the scores); got dtype %s", op,
                         pf_dtypes[M->dtype].name);
            goto fail;
        }
        int64_t full[PF_MAX_DIMS];
        memcpy(full, A->bshape, sizeof(int64_t) * (size_t)A->nbd);
        full[A->nbd] = A->L;
        full[A->nbd + 1] = A->S;
        int ok = M->ndim <= A->nbd + 2;
        for (int d = 0; ok && d < M->ndim; d++) {
            int64_t md = M->shape[d], fd = full[A->nbd + 2 - M->ndim + d];
            ok = md == fd || md == 1;
        }
        if (!ok) {
            PyErr_Format(PyExc_ValueError, "%s: attn_mask of shape %s does not broadcast to the "
                         "attention shape %s (batch..., L, S)", op,
                         pf_shape_str(M->shape, M->ndim, a, sizeof(a)),
                         pf_shape_str(full, A->nbd + 2, b, sizeof(b)));
            goto fail;
        }
    }
    return 0;
fail:
    Py_CLEAR(*q);
    Py_CLEAR(*k);
    Py_CLEAR(*val);
    Py_CLEAR(*mask);
    return -1;
}

int pf_nn_attn_mask(const pf_nn_attn *A, PfTensor *mask, pf_dtype dt, const char *op,
                    PfTensor **mc, int64_t **moff, pf_attn *K)
{
    *mc = NULL;
    *moff = NULL;
    K->mask = NULL;
    K->moff = NULL;
    K->mask_bool = 0;
    K->mrs = K->mcs = 0;
    if (mask == NULL) {
        return 0;
    }
    int is_bool = mask->dtype == PF_BOOL;
    if ((*mc = pf_nn_contig(mask, is_bool ? PF_BOOL : dt, op)) == NULL) {
        return -1;
    }
    *moff = PyMem_Malloc(sizeof(int64_t) * (size_t)(A->nb > 0 ? A->nb : 1));
    if (*moff == NULL) {
        Py_CLEAR(*mc);
        PyErr_NoMemory();
        return -1;
    }
    /* element strides of the mask seen with the full shape: 0 where it broadcasts */
    int full = A->nbd + 2, lead = full - (*mc)->ndim;
    int64_t st[PF_MAX_DIMS];
    for (int d = 0; d < full; d++) {
        int md = d - lead;
        st[d] = md < 0 || (*mc)->shape[md] == 1 ? 0 : (*mc)->strides[md];
    }
    for (int64_t b = 0; b < A->nb; b++) {
        int64_t rest = b, off = 0;
        for (int d = A->nbd - 1; d >= 0; d--) {
            off += (rest % A->bshape[d]) * st[d];
            rest /= A->bshape[d];
        }
        (*moff)[b] = off;
    }
    K->mask = pf_tensor_data(*mc);
    K->mask_bool = is_bool;
    K->moff = *moff;
    K->mrs = st[A->nbd];
    K->mcs = st[A->nbd + 1];
    return 0;
}

PfTensor *pf_nn_attn_full(PfTensor *t, const pf_nn_attn *A, int64_t rows, int64_t cols,
                          pf_dtype dt, const char *op)
{
    int64_t shape[PF_MAX_DIMS];
    memcpy(shape, A->bshape, sizeof(int64_t) * (size_t)A->nbd);
    shape[A->nbd] = rows;
    shape[A->nbd + 1] = cols;
    return expand_contig(t, shape, A->nbd + 2, dt, op);
}

/*
 * _attention(query, key, value, attn_mask=None, is_causal=False,
 * scale=None, dropout_p=0.0, seed=0, offset=0): softmax(Q K^T scale +
 * mask) V, the form scaled_dot_product_attention records.  Per batch
 * entry: one GEMM, one pass over the score rows (scale, mask, safe
 * softmax, dropout regenerated from (seed, offset)), one GEMM
 * (pf_attn_forward, kernels/nn_kernels.c).  A row that attends to nothing
 * gives zeros, as PyTorch does.
 */
PyObject *pf_op__attention(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
    const char *op = "scaled_dot_product_attention";
    PyObject *v[9];
    if (pf_parse_args(op, args, nargs, kwnames, pf_nn_args_attention, 3, v) < 0) {
        return NULL;
    }
    pf_nn_attn A;
    PfTensor *q, *k, *val, *mask, *qc = NULL, *kc = NULL, *vc = NULL, *mc = NULL, *out = NULL;
    int64_t *moff = NULL;
    PyObject *res = NULL;
    if (pf_nn_attn_parse(v, op, &A, &q, &k, &val, &mask) < 0) {
        return NULL;
    }
    pf_dtype comp = pf_nn_comp(q->dtype);
    int64_t oshape[PF_MAX_DIMS];
    memcpy(oshape, A.bshape, sizeof(int64_t) * (size_t)A.nbd);
    oshape[A.nbd] = A.L;
    oshape[A.nbd + 1] = A.Ev;
    pf_attn K = {0, A.nb, A.L, A.S, A.scale, A.causal, NULL, 0, NULL, 0, 0, A.dropout_p, A.seed,
                 A.offset};
    if ((qc = pf_nn_attn_full(q, &A, A.L, A.E, comp, op)) == NULL ||
        (kc = pf_nn_attn_full(k, &A, A.S, A.E, comp, op)) == NULL ||
        (vc = pf_nn_attn_full(val, &A, A.S, A.Ev, comp, op)) == NULL ||
        pf_nn_attn_mask(&A, mask, comp, op, &mc, &moff, &K) < 0 ||
        (out = pf_tensor_empty(A.nbd + 2, oshape, comp, CPU, op)) == NULL ||
        pf_attn_forward(&K, comp, A.E, A.Ev, pf_tensor_data(qc), pf_tensor_data(kc),
                        pf_tensor_data(vc), pf_tensor_data(out)) < 0) {
        goto done;
    }
    res = as_result(out, q->dtype, op);
    out = NULL;
done:
    PyMem_Free(moff);
    Py_XDECREF(q);
    Py_XDECREF(k);
    Py_XDECREF(val);
    Py_XDECREF(mask);
    Py_XDECREF(qc);
    Py_XDECREF(kc);
    Py_XDECREF(vc);
    Py_XDECREF(mc);
    Py_XDECREF(out);
    return res;
}

/*
 * scaled_dot_product_attention(query, key, value, attn_mask=None,
 * dropout_p=0.0, is_causal=False, scale=None): a composite row that draws
 * the dropout state (when dropout_p > 0) and calls _attention, which
 * records one node whose rule regenerates the same mask.
 */
PyObject *pf_op_scaled_dot_product_attention(PyObject *Py_UNUSED(m), PyObject *const *args,
                                             Py_ssize_t nargs, PyObject *kwnames)
{
    const char *op = "scaled_dot_product_attention";
    static const char *const names[] = {"query", "key", "value", "attn_mask", "dropout_p",
                                        "is_causal", "scale", NULL};
    PyObject *v[7];
    if (pf_parse_args(op, args, nargs, kwnames, names, 3, v) < 0) {
        return NULL;
    }
    /* check everything here, so that errors never mention _attention's extra arguments */
    PyObject *pv[9] = {v[0], v[1], v[2], v[3], v[5], v[6], v[4], NULL, NULL};
    pf_nn_attn A;
    PfTensor *q, *k, *val, *mask;
    if (pf_nn_attn_parse(pv, op, &A, &q, &k, &val, &mask) < 0) {
        return NULL;
    }
    Py_DECREF(q);
    Py_DECREF(k);
    Py_DECREF(val);
    Py_XDECREF(mask);
    uint64_t seed = 0, offset = 0;
    if (A.dropout_p > 0) {
        seed = pf_random_seed();
        offset = pf_random_next_offset((uint64_t)(A.nb * A.L * A.S));
    }
    PyObject *argv[9] = {v[0], v[1], v[2], v[3] ? v[3] : Py_None, A.causal ? Py_True : Py_False,
                         NULL, NULL, NULL, NULL};
    PyObject *res = NULL;
    if ((argv[5] = PyFloat_FromDouble(A.scale)) != NULL &&
        (argv[6] = PyFloat_FromDouble(A.dropout_p)) != NULL &&
        (argv[7] = PyLong_FromUnsignedLongLong(seed)) != NULL &&
        (argv[8] = PyLong_FromUnsignedLongLong(offset)) != NULL) {
        res = pf_call(PF_OP_ATTENTION, argv, 9, NULL);
    }
    for (int i = 5; i < 9; i++) {
        Py_XDECREF(argv[i]);
    }
    return res;
}

/* ------------------------------------------------ CUDA kernels on the host */

/* t as a contiguous cpu tensor of dtype dt with last dimension n (None: NULL), or -1 */
static int host_arg(PyObject *o, const char *op, const char *what, pf_dtype dt, int64_t numel,
                    PfTensor **out)
{
    *out = NULL;
    if (o == Py_None) {
        return 0;
    }
    PfTensor *t = (PfTensor *)o;
    if (!PfTensor_Check(o) || !pf_tensor_on_cpu(t) || !pf_tensor_is_contiguous(t) ||
        t->dtype != dt || pf_numel(t->shape, t->ndim) != numel) {
        return PF_ERRI(PyExc_TypeError, "%s: %s must be a contiguous cpu %s tensor of %lld "
                       "elements (or None)", op, what, pf_dtypes[dt].name, (long long)numel);
    }
    *out = t;
    return 0;
}

/*
 * _cuda_host_layer_norm(y, x, w, b, eps) and _cuda_host_layer_norm_bwd(dx, dw,
 * db, g, x, w, eps): the CUDA layer_norm kernels' code run on the host over
 * contiguous cpu float32/float64 tensors, normalising over x's last
 * dimension (w, b, dw, db of that length; any of them None).  For the
 * tests that check the kernels without a GPU.
 */
static PyObject *py_cuda_host_layer_norm(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *op = "_cuda_host_layer_norm";
    PyObject *yo, *xo, *wo, *bo;
    double eps;
    PfTensor *y, *x, *w, *b;
    if (!PyArg_ParseTuple(args, "OOOOd:_cuda_host_layer_norm", &yo, &xo, &wo, &bo, &eps)) {
        return NULL;
    }
    if (!PfTensor_Check(xo) || ((PfTensor *)xo)->ndim < 1 ||
        (((PfTensor *)xo)->dtype != PF_FLOAT32 && ((PfTensor *)xo)->dtype != PF_FLOAT64)) {
        return PF_ERR(PyExc_TypeError, "%s: x must be a float32 or float64 tensor of at least "
                      "one dimension", op);
    }
    PfTensor *xt = (PfTensor *)xo;
    int64_t numel = pf_numel(xt->shape, xt->ndim), n = xt->shape[xt->ndim - 1];
    if (host_arg(xo, op, "x", xt->dtype, numel, &x) < 0 ||
        host_arg(yo, op, "y", xt->dtype, numel, &y) < 0 ||
        host_arg(wo, op, "w", xt->dtype, n, &w) < 0 ||
        host_arg(bo, op, "b", xt->dtype, n, &b) < 0) {
        return NULL;
    }
    if (y == NULL) {
        return PF_ERR(PyExc_TypeError, "%s: y is required", op);
    }
    const PfCudaLib *lib = pf_cuda_library(op);
    if (lib == NULL) {
        return NULL;
    }
    int status = lib->layer_norm_host(0, pf_tensor_data(x), w ? pf_tensor_data(w) : NULL,
                                      b ? pf_tensor_data(b) : NULL, pf_tensor_data(y),
                                      n > 0 ? numel / n : 0, n, eps, x->dtype == PF_FLOAT64);
    if (status != 0) {
        pf_cuda_raise(lib, op, status);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_cuda_host_layer_norm_bwd(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *op = "_cuda_host_layer_norm_bwd";
    PyObject *dxo, *dwo, *dbo, *go, *xo, *wo;
    double eps;
    PfTensor *dx, *dw, *db, *g, *x, *w;
    if (!PyArg_ParseTuple(args, "OOOOOOd:_cuda_host_layer_norm_bwd", &dxo, &dwo, &dbo, &go, &xo,
                          &wo, &eps)) {
        return NULL;
    }
    if (!PfTensor_Check(xo) || ((PfTensor *)xo)->ndim < 1 ||
        (((PfTensor *)xo)->dtype != PF_FLOAT32 && ((PfTensor *)xo)->dtype != PF_FLOAT64)) {
        return PF_ERR(PyExc_TypeError, "%s: x must be a float32 or float64 tensor of at least "
                      "one dimension", op);
    }
    PfTensor *xt = (PfTensor *)xo;
    int64_t numel = pf_numel(xt->shape, xt->ndim), n = xt->shape[xt->ndim - 1];
    pf_dtype dt = xt->dtype;
    if (host_arg(xo, op, "x", dt, numel, &x) < 0 || host_arg(go, op, "g", dt, numel, &g) < 0 ||
        host_arg(dxo, op, "dx", dt, numel, &dx) < 0 || host_arg(wo, op, "w", dt, n, &w) < 0 ||
        host_arg(dwo, op, "dw", dt, n, &dw) < 0 || host_arg(dbo, op, "db", dt, n, &db) < 0) {
        return NULL;
    }
    if (g == NULL) {
        return PF_ERR(PyExc_TypeError, "%s: g is required", op);
    }
    const PfCudaLib *lib = pf_cuda_library(op);
    if (lib == NULL) {
        return NULL;
    }
    int status = lib->layer_norm_bwd_host(0, pf_tensor_data(g), pf_tensor_data(x),
                                          w ? pf_tensor_data(w) : NULL,
                                          dx ? pf_tensor_data(dx) : NULL,
                                          dw ? pf_tensor_data(dw) : NULL,
                                          db ? pf_tensor_data(db) : NULL, n > 0 ? numel / n : 0,
                                          n, eps, dt == PF_FLOAT64);
    if (status != 0) {
        pf_cuda_raise(lib, op, status);
        return NULL;
    }
    Py_RETURN_NONE;
}

PyMethodDef pf_layer_norm_cuda_host_methods[] = {
    {"_cuda_host_layer_norm", py_cuda_host_layer_norm, METH_VARARGS,
     "_cuda_host_layer_norm(y, x, w, b, eps): the CUDA layer_norm kernel's code on the host "
     "(tests)"},
    {"_cuda_host_layer_norm_bwd", py_cuda_host_layer_norm_bwd, METH_VARARGS,
     "_cuda_host_layer_norm_bwd(dx, dw, db, g, x, w, eps): the CUDA layer_norm backward "
     "kernels' code on the host (tests)"},
    {NULL, NULL, 0, NULL},
};

